/* router_int.h - the router's internals, shared by router.c (writes, gets, count, scroll, the
 * request loop), router_search.c (search) and router_read.c (read consistency). */
#ifndef DV_ROUTER_INT_H
#define DV_ROUTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "coord.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

/* One request to one node. */
struct call {
    struct tr_peer *r;
    struct combiner *comb; /* searches: the node's combiner */
    struct comb_share share;
    struct msg req;
    struct msg_reply rep;
    int rc;
    uint32_t part;
    uint32_t node;       /* number in the map */
    uint32_t timeout_ms; /* 0: the connection's (request_timeout) */
    const char *node_id;
    char err[DV_ERRMSG_SIZE];
};

/* Memory a reply points into until the reply is freed (msg_reply_free). */
struct coord_tmp {
    struct call *calls;
    size_t n_calls;
    void *blocks[24];
    size_t n_blocks;
    struct coord_tmp *subs[PROTO_MAX_RF]; /* a consistent read's answers, one per replica */
};

/* Memory freed with the request's tmp (at most 8 blocks per tmp); NULL when out. */
void *router_tmp_alloc(struct coord_tmp *t, size_t size);
/* Runs the calls in parallel (one on the calling thread). */
void router_run_calls(struct coord *c, struct call *calls, size_t n);
/* Points a call at node `num` of the map (the connection, or an error without sending). */
void router_aim(struct coord *c, const struct cmap *m, uint32_t num, struct call *k);
/* A node serving reads: ALIVE, or JOINING / DRAINING. */
bool router_serves(const struct cmap *m, uint32_t num);
/* The in-sync replica to read pt from, in turn, not `avoid`, and one that answered its last
 * call when there is one (router.c). */
uint32_t router_read_node(struct coord *c, const struct cmap *m, const struct cmap_part *pt,
                          uint32_t avoid, uint64_t turn);

/* Reads avoid a node this long after a call to it went unanswered (a timeout, a closed
 * connection), while another in-sync replica is there: a hung node costs one timeout, not one
 * per search until it is declared dead. */
#define ROUTER_SILENT_MS 3000

/* Notes the outcome of a call to node `num` (rc: DV_OK, or the call's error). */
void router_note(struct coord *c, uint32_t num, int rc);
/* True while node `num` is avoided for reads (router_note). */
bool router_silent(struct coord *c, uint32_t num);

/* Checks query i against collection cl (the vector it uses exists, its dimension) and gives
 * the metric its hits are ordered by (a sparse vector's: dot). DV_EDIM / DV_EINVAL. */
int router_check_query(const struct cmap_coll *cl, const struct msg_query *q, uint32_t i,
                       uint32_t *metric, char *errmsg);

/* Checks an upsert's or vector update's vectors against collection cl: the unnamed ones'
 * dimension, or that every named one exists (DV_EDIM / DV_EINVAL naming it). */
int router_check_vectors(const struct cmap_coll *cl, const struct msg_upsert_req *u, char *errmsg);

/* The reads, each from one in-sync replica per partition (read_node with `turn`); get goes
 * through router_by_ids with the writes. Replies point into t. */
int router_by_ids(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                  const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                  char *errmsg);
int router_count(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                 const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                 char *errmsg);
int router_scroll(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                  const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                  char *errmsg);
/* One call of `sub` per partition to one of its in-sync replicas (read_node with `turn`);
 * the calls and their replies are in t. The first error, naming the partition. */
int router_fan_out(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                   const struct msg *sub, struct coord_tmp *t, uint64_t turn, char *errmsg);
/* Facet and order_by scroll (router_order.c): every partition asked, the answers merged. */
int router_facet(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                 const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                 char *errmsg);
int router_scroll_order(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                        const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                        char *errmsg);
int router_search(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                  const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                  char *errmsg);

/* Gives the queries q[n] that name no ef (0) the collection's default search ef from the map
 * (ef_search, which coll_set and REST's PATCH hnsw_config.ef change), in place: a replica's
 * own default is the one it was created with. The queries belong to the request being
 * routed; nothing reads their ef 0 afterwards. */
void router_default_ef(const struct cmap_coll *cl, struct msg_query *q, uint32_t n);

/* A plain search (router_async.c: default read consistency, every partition with an in-sync
 * replica on a serving node) sent to the nodes without waking a worker, the calling thread
 * waiting once for all of them: true with rep filled (pointing into t); false when it is not
 * a plain search or a node call failed (the caller runs router_search, which says why). */
bool router_search_plain(struct coord *c, const struct msg *req, struct msg *rep,
                         struct coord_tmp *t);

/* A read (get, count, scroll, search) with req->read_consistency (router_read.c). */
int router_consistent_read(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                           const struct msg *req, struct msg *rep, struct coord_tmp *t,
                           char *errmsg);

#endif
