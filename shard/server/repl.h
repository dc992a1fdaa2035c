/* repl.h - a primary replicates its writes to the in-sync secondaries of a partition. */
#ifndef DV_REPL_H
#define DV_REPL_H

#include <stdint.h>

#include "err.h"
#include "msg.h"
#include "part.h"

/*
 * Primary-backup replication of one replica (docs/architecture.md, "Replication"). The
 * coordinator sends a write to the partition's primary only, naming the in-sync secondaries
 * (msg.secondaries). The primary logs and applies the write like any write; the replica's tap
 * (part_set_tap) copies every record appended meanwhile into a queue, in LSN order. Before
 * the primary answers, every secondary must have the write: the waiting writers send the
 * queued records to each secondary in order, one MSG_REPLICATE call at a time per secondary,
 * each call carrying every record queued so far (group replication, as group commit does for
 * fsync: concurrent writers share one round trip). A secondary that refuses or does not answer
 * in time is failed for the rest of the map epoch and named in the write's reply; the
 * coordinator takes it out of the in-sync set (a Raft command) before acknowledging.
 *
 * One struct repl per replica (owned by the node, shard/server/node.c); one struct repl_net per
 * node: the connections to the other nodes, shared by every replica.
 *
 * Threading: every function may be called from any thread. Lock order: the replica's write
 * lock (part.c) before repl's mutex (the tap runs under the former).
 */

struct tr;
struct repl;
struct repl_net;

/* Replication calls wait at most this long for a secondary (node_opts.repl_timeout_ms 0). */
#define REPL_TIMEOUT_MS 1000

/* A replicate call made while no connection to the secondary is up fails after this long. */
#define REPL_CONNECT_WAIT_MS 100

/* Most record bytes one replicate call carries (more go in the next call). */
#define REPL_MAX_CALL_BYTES (16u << 20)

/* Runs fn(arg, 0 .. n-1), in parallel when it can (handle.h's handle_parallel_fn). */
typedef void (*repl_parallel_fn)(void *pool, size_t n, void (*fn)(void *arg, size_t i), void *arg);

/* The node's connections to other nodes, over transport `tr` (the caller keeps it). */
int repl_net_new(struct tr *tr, uint32_t timeout_ms, struct repl_net **out);
void repl_net_free(struct repl_net *net);

struct repl *repl_new(struct repl_net *net);
void repl_free(struct repl *rp);

/* The part tap (part_set_tap's fn) with the replica's struct repl as `arg`. */
void repl_tap(void *arg, uint64_t lsn, uint8_t type, const void *body, size_t len);

/*
 * Before a replicated write: makes `peers` the secondaries of the replica for map epoch
 * `epoch`. The list of the newest epoch seen wins: a request of an older epoch keeps the
 * current list. A secondary new to the list is taken to hold every record logged so far (it
 * was in-sync when the map put it there); one that left is forgotten. DV_ENOMEM, DV_EINVAL
 * (a URL the transport cannot dial) with errmsg.
 */
int repl_targets(struct repl *rp, uint64_t epoch, const struct msg_peer *peers, uint32_t n,
                 char *errmsg);

/* A secondary that does not have a write: its node id, a DV_* code and why. */
struct repl_fail {
    char node_id[65];
    int code;
    char text[DV_ERRMSG_SIZE];
};

/*
 * After the primary's own write of `lsn`: waits until every secondary has every record up to
 * lsn or has failed, sending what is queued (addr: the partition, the map epoch and the
 * primary's term, stamped on every call; term_start: the LSN where the primary's term began).
 * fails[*n_fails] (room for PROTO_MAX_REPLICAS) get the secondaries that failed, this call or
 * earlier in the epoch. `parallel` may be NULL.
 */
void repl_wait(struct repl *rp, const struct msg_addr *addr, uint64_t term_start, uint64_t lsn,
               repl_parallel_fn parallel, void *pool, struct repl_fail *fails, uint32_t *n_fails);

/* Calls fn for each secondary of the replica as its primary sees it: node id, records it lacks
 * (logged here, not yet acknowledged by it) and whether it failed in this epoch. */
void repl_each_target(struct repl *rp,
                      void (*fn)(void *arg, const char *node_id, uint64_t lag, bool failed),
                      void *arg);

/*
 * On a secondary: applies `recs` (in LSN order) of a primary to replica p. Records at or below
 * p's applied LSN are skipped (a repeated call); the first must then follow it, else
 * DV_ESTALE "records L.. do not follow this replica's LSN A" (the primary fails this
 * secondary, which must catch up). *applied gets p's applied LSN after the call.
 */
int repl_apply(struct part *p, const struct msg_wal_rec *recs, uint32_t n, uint64_t *applied,
               char *errmsg);

#endif
