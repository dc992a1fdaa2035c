/* coord_fixture.h - a dvec cluster in one process for unit tests: one real coordinator (real
 * Raft, single voter) and N real dvec-shard nodes, all talking over the fake transport. */
#ifndef DV_COORD_FIXTURE_H
#define DV_COORD_FIXTURE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "coord.h"
#include "handle.h"
#include "msg.h"
#include "node.h"
#include "tr_fake.h"

/*
 * In the spirit of canonical/raft's raft_fixture, but with threads and real clocks: the
 * coordinator is the real `struct coord` (coord_open: craft_start with one voter on 127.0.0.1,
 * its leader and mover threads), its outbound transport the tr_fake party "coord-1", and it
 * serves "fake://coord-1" (coord_handle). Node i (1-based) is node_open on a temporary dir
 * served at "fake://node-i" by handle_request, with its own party "node-i" for its pulls and
 * its reports; it joins the cluster as dvec-shard does, by MSG_NODE_REPORTs (report.c) to
 * fake://coord-1. Tests reach the coordinator as a client through cf_call (the party
 * "client"), and put faults on any link with tr_fake_set_rule / tr_fake_set_state on f->net.
 *
 * Every random choice of the network comes from the seed (cf_seed); data the tests generate
 * should come from it too (cf_rand).
 */

#define CF_MAX_NODES 8

struct cf_opts {
    unsigned n_nodes;
    uint32_t request_timeout_ms;  /* coordinator -> nodes, default 1000 */
    uint32_t node_inflight;       /* combiner slots per node, default 2 */
    uint32_t move_grace_ms;       /* default 60000: a moved replica stays for inspection */
    uint32_t write_retry_ms;      /* default 3000 */
    uint32_t pull_call_ms;        /* a pull's call timeout, default 100 */
    uint32_t suspect_ms, dead_ms; /* node liveness, default 60000 and 120000 */
    uint32_t dead_timeout_ms;     /* re-replication after a node is dead this long, 0: never */
};

struct cf_node {
    char id[16], url[32], dir[320];
    struct coord_fixture *f;
    struct node *node;
    struct handle_ctx hc;
    struct tr *tr; /* the party "node-i": pulls and reports */
    struct reporter *reporter;
    char *coord_urls[1];
    struct cfg_strlist coords;
    /* A fault of the node itself: the next `stale_searches` MSG_SEARCH requests are answered
     * DV_ESTALE ("stale map", an epoch ahead of the map's) without running. */
    atomic_uint stale_searches;
    atomic_uint reqs[MSG_TYPE_COUNT]; /* requests the node received, by type */
    atomic_uint search_ef;            /* the ef of the first query of the last MSG_SEARCH */
    uint32_t pull_call_ms;
};

struct coord_fixture {
    uint64_t seed;
    uint64_t rng;
    char dir[256];
    struct tr_fake_net *net;
    struct coord c;
    struct tr *client;
    struct tr_peer *to_coord;
    struct cf_node nodes[CF_MAX_NODES];
    unsigned n_nodes;
};

/* The tests' seed: DVEC_TEST_SEED when set, else a fixed one; printed on first use. */
uint64_t cf_seed(void);

/* A deterministic pseudo-random number from the fixture's seed (not thread-safe). */
uint64_t cf_rand(struct coord_fixture *f);

/*
 * Starts the cluster (o NULL: defaults with 3 nodes) and waits until the coordinator leads and
 * every node is ALIVE in the map. DV_* with errmsg. Close it with cf_close.
 */
int cf_open(uint64_t seed, const struct cf_opts *o, struct coord_fixture **out, char *errmsg);
void cf_close(struct coord_fixture *f);

/*
 * One client request to the coordinator as a native client sends it: over the fake network to
 * coord_handle (decode, coord_call, encode), so the tests cover the native path and the codec
 * too (REST calls coord_call directly). Returns tr_call's result; free *rep with
 * msg_reply_free whatever it is.
 */
int cf_call(struct coord_fixture *f, const struct msg *req, struct msg_reply *rep, char *errmsg);

/* Creates a collection (L2, dim, n_parts, rf) and waits until every node reports its replicas
 * (the leader's reconcile then leaves the nodes alone). */
int cf_create(struct coord_fixture *f, const char *coll, uint32_t dim, uint32_t n_parts,
              uint32_t rf, char *errmsg);

/* The index (0-based) of the node holding the primary of (coll, part) in the current map, -1
 * when none. */
int cf_part_node(struct coord_fixture *f, const char *coll, uint32_t part);

/* The node's replica of (coll, part): its point count, whether it holds id (vec, when not
 * NULL, gets its dim floats). DV_ESTALE when the node does not hold it. */
int cf_replica_count(struct cf_node *n, const char *coll, uint32_t part, uint64_t *count);
int cf_replica_has(struct cf_node *n, const char *coll, uint32_t part, const struct pid *id,
                   float *vec, uint32_t dim, bool *has);

/* Upserts n points (no payloads) through the router; DV_OK only when all n were written. */
int cf_upsert(struct coord_fixture *f, const char *coll, const struct pid *ids, const float *vecs,
              uint32_t n, uint32_t dim, char *errmsg);

/* An admin request (op, args: a msgpack map or NULL); *rep gets the reply (status). */
int cf_admin(struct coord_fixture *f, const char *op, const void *args, size_t args_len,
             struct msg_reply *rep, char *errmsg);

/* Node i (0-based) loses its disk: it stops, its directory is emptied, and it starts again
 * under the same id and URL (as a pod whose volume was lost, or a machine whose disk was
 * replaced). */
int cf_node_reset(struct coord_fixture *f, unsigned i, char *errmsg);

/* Waits (polling every 5 ms, at most timeout_ms) until pred(f, arg) holds. */
bool cf_wait(struct coord_fixture *f, bool (*pred)(struct coord_fixture *f, void *arg), void *arg,
             uint32_t timeout_ms);

#endif
