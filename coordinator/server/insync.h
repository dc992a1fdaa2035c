/* insync.h - the coordinator's side of a partition's in-sync set: who a write goes to, and
 * taking the secondaries a primary could not reach out of the set before a write is
 * acknowledged. */
#ifndef DV_INSYNC_H
#define DV_INSYNC_H

#include <stdint.h>

#include "cmap.h"
#include "msg.h"

struct coord;

/*
 * The replication group of partition p of `cl` for a write: the in-sync (ACTIVE) replicas
 * other than the primary go to peers[*n] (room for CMAP_MAX_REPLICAS; strings point into m).
 * DV_EBUSY (retryable) naming the partition and the replicas that are not in-sync when the
 * partition has no primary or fewer ACTIVE replicas than the collection's
 * write_consistency_factor.
 */
int insync_group(const struct cmap *m, const struct cmap_coll *cl, uint32_t p,
                 struct msg_peer *peers, uint32_t *n, char *errmsg);

/*
 * A primary of partition p (of term `term`) answered a write, which it could not replicate to
 * the secondaries in w->failed: each is set DEAD in the map (a Raft command, forwarded to the
 * leader when this coordinator is not it) before the write may be acknowledged. DV_OK when
 * every one is out of the in-sync set (or already was); otherwise the write must not be
 * acknowledged: DV_ESTALE when the partition's term moved on (the primary was replaced: the
 * write may be lost, retry it), another code when the map could not be changed, with errmsg.
 */
int insync_settle(struct coord *c, const char *coll, uint32_t p, uint64_t term,
                  const struct msg_write_rep *w, char *errmsg);

/*
 * The admin op "replica_state" (admin.c) on the leader: args collection, partition, node,
 * state ("active", "dead", ...), expect_term (0 or absent: any). Applies
 * CMAP_CMD_REPLICA_STATE; *epoch gets the map epoch after it.
 */
int insync_set_state(struct coord *c, const char *coll, uint32_t part, const char *node, int state,
                     uint64_t expect_term, uint64_t *epoch, char *errmsg);

/* How long the leader waits for a node's answer when it checks a primary or a candidate. */
#define INSYNC_PROBE_MS 300
/* A primary on a node that failed a probe this recently is not probed again: a dead node's
 * partitions fail over one after the other without a probe timeout each. */
#define INSYNC_DOWN_MEMO_MS 2000

/*
 * On the leader: the primary of partition p of `coll` (in term `term`, 0: any) is down, said
 * a router whose write got no answer (check: the leader first asks the primary itself and
 * refuses with DV_EBUSY when it answers) or the leader's own liveness tracking. Promotes the
 * in-sync replica with the highest applied LSN among those that answer (PART_PROMOTE; the old
 * primary becomes DEAD). DV_OK also when the term moved on already; DV_EBUSY when no in-sync
 * replica answers.
 */
int insync_failover(struct coord *c, const char *coll, uint32_t p, uint64_t term, bool check,
                    char *errmsg);

/* A router's write to the primary of partition p (term `term`) got no answer: asks the leader
 * to fail over (admin op "primary_failed"). DV_OK when the partition has a new primary. */
int insync_primary_failed(struct coord *c, const char *coll, uint32_t p, uint64_t term,
                          char *errmsg);

#endif
