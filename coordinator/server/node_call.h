/* node_call.h - the leader's calls to nodes about one partition's replica (the mover's and the
 * recovery's): a call by node number, pull, fence, drop. */
#ifndef DV_NODE_CALL_H
#define DV_NODE_CALL_H

#include <stdbool.h>
#include <stdint.h>

#include "cmap.h"
#include "msg.h"

struct coord;

/* The id of node `num` ("?" when unknown). */
const char *ncall_node_id(const struct cmap *m, uint32_t num);

/* Whether node `num` serves (ALIVE, JOINING or DRAINING). */
bool ncall_node_up(const struct cmap *m, uint32_t num);

/* Whether node `num` is dead, removed or unknown. */
bool ncall_node_gone(const struct cmap *m, uint32_t num);

/* A request addressed to partition (coll, part) with `epoch` (coll must outlive it). */
struct msg ncall_addressed(int type, const char *coll, uint32_t part, uint64_t epoch);

/* A call to node `num` (rep must be freed whatever the result); errors name the node. */
int ncall(struct coord *c, const struct cmap *m, uint32_t num, const struct msg *req,
          struct msg_reply *rep, uint32_t timeout_ms, char *err);

/* A pull on node `to` of partition (coll, part) from node `from`: start, status, finish (until
 * `until`) or abort. *out (may be NULL) gets the pull's state; a FAILED pull's reason goes to
 * err. */
int ncall_pull(struct coord *c, const struct cmap *m, const char *coll, uint32_t part, uint32_t to,
               uint32_t from, uint32_t op, uint64_t until, struct msg_pull_rep *out,
               uint32_t timeout_ms, char *err);

/* Fences (MSG_FENCE_ON) or unfences the replica of (coll, part) on node `num`, naming `epoch`;
 * *lsn (may be NULL) gets its applied LSN. */
int ncall_fence(struct coord *c, const struct cmap *m, const char *coll, uint32_t part,
                uint32_t num, uint32_t op, uint64_t epoch, uint64_t *lsn, char *err);

#endif
