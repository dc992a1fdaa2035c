/* coord.h - a dvec-coord process: its raft instance, its connections, its request handling. */
#ifndef DV_COORD_H
#define DV_COORD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "cmap.h"
#include "combine.h"
#include "craft.h"
#include "msg.h"
#include "rpcsrv.h"
#include "tcpcall.h"
#include "transport.h"

/* Settings the daemon passes down (coord_cfg.c fills them from YAML and flags). */
struct coord_opts {
    uint64_t id;
    uint32_t request_timeout_ms; /* to nodes and to the leader, default 5000 */
    uint32_t suspect_ms;         /* no report from a node for this long: SUSPECT */
    uint32_t dead_ms;            /* ... and this long: DEAD */
    uint32_t dead_timeout_ms;    /* a node DEAD this long gets its replicas re-created elsewhere */
    uint32_t report_every_ms;    /* what nodes are told; the leader checks at this pace */
    uint32_t max_batch;          /* points per client upsert */
    uint32_t node_inflight;      /* search requests outstanding per node before combining */
    bool node_search_port;       /* native searches to the nodes' search ports (router_async.c) */
    uint32_t connect_wait_ms;    /* a call with no connection up fails after this long */
    uint32_t move_grace_ms;      /* a moved replica stays on its old node this long */
    uint32_t write_retry_ms;     /* a write meeting a moving partition retries this long */
    uint32_t move_tick_ms;       /* the mover's pace (mover.c), 0: 100 ms */
};

/* A connection to a node or a coordinator, by URL; made on first use and kept. */
struct coord_conn {
    char url[CRAFT_ADDR_MAX * 2];
    struct tr_peer *peer;
    struct combiner *comb; /* searches to this peer (combine.h) */
};

/* A node's search port, by URL; made on first use and kept. A port that refused or dropped a
 * connection is not used until off_until_ms (clock_mono_ms). */
struct coord_sport {
    char url[CMAP_URL_MAX + 1];
    struct tcpcall *tc;
    _Atomic uint64_t off_until_ms;
};

/* The leader's view of node liveness (not replicated: rebuilt from reports after a change of
 * leader). */
struct coord_seen {
    char id[CMAP_ID_MAX + 1];
    uint64_t last_ms; /* local monotonic clock */
    /* its last report named a replica of another incarnation than its collection's: the next
     * reconcile sends it a create for every replica placed on it */
    bool stale;
};

/* A move the leader drives (coordinator/server/mover.c): what the map does not record. Rebuilt from
 * the map and the nodes after a change of leader. */
struct coord_move {
    char coll[CMAP_NAME_MAX + 1];
    uint32_t part, from, to; /* node numbers */
    uint64_t started_ms;     /* first pull start by this leader */
    uint64_t done_ms;        /* switch committed (or first seen done) */
    uint64_t next_try_ms;    /* cleanup and drop attempts are spaced out */
    uint64_t bytes_done, bytes_total, applied_lsn, source_lsn;
    uint64_t rate_ms, rate_bytes; /* previous sample for the transfer rate */
    double rate;                  /* bytes/s, smoothed */
    uint32_t starts;              /* pull starts (a lost or failed pull starts over) */
    uint32_t fence_ms;            /* how long writes were paused at the switch */
    uint64_t switch_since;        /* first switch attempt */
    bool dropped;                 /* the old replica is gone (done moves) */
    bool cleaned;                 /* failed moves: source unfenced, copy aborted */
    uint32_t unfence;             /* done moves: a primary still to unfence, CMAP_NONE: none */
    char error[DV_ERRMSG_SIZE];
};

struct recover_set;

struct coord {
    struct coord_opts o;
    struct tr *tr; /* outbound calls: to nodes and to the leader (the caller frees it) */
    struct craft *raft;
    struct rpcsrv *srv;
    atomic_bool draining;
    uint64_t client_id; /* request ids of commands this coordinator submits: (client_id, seq) */
    atomic_uint_least64_t seq;
    atomic_uint_least64_t read_turn; /* spreads reads over a partition's in-sync replicas */
    /* insync.c: nodes a failover probe found unreachable, and when (a slot per node number
     * modulo the table; a lost entry costs one more probe) */
    struct {
        atomic_uint_least32_t num;
        atomic_uint_least64_t at_ms;
    } probe_down[64];
    /* router.c: nodes whose last call did not answer, and until when reads avoid them (a slot
     * per node number modulo the table, as probe_down) */
    struct {
        atomic_uint_least32_t num;
        atomic_uint_least64_t until_ms;
    } silent[64];

    pthread_mutex_t conns_mu;
    struct coord_conn *conns;
    size_t n_conns, cap_conns;
    struct coord_sport **sports; /* under conns_mu; each allocated alone (never moves) */
    size_t n_sports, cap_sports;

    pthread_mutex_t seen_mu;
    struct coord_seen *seen;
    size_t n_seen, cap_seen;

    pthread_t leader_thread;
    pthread_t stall_thread;             /* notices this process was stalled (coord_leader.c) */
    atomic_uint_least64_t beat_ms;      /* the stall thread's last wake (monotonic ms) */
    atomic_uint_least64_t stall_end_ms; /* when the last stall it noticed ended (0: none) */
    atomic_bool stop;

    /* the mover (leader only) */
    pthread_t mover_thread;
    pthread_mutex_t moves_mu;
    struct recover_set *recoveries; /* recover.c's jobs: the mover thread's only */
    struct coord_move *moves;
    size_t n_moves, cap_moves;
    uint64_t plan_after_ms; /* automatic rebalancing waits until then (after failures) */
};

/* ---- coord.c ----------------------------------------------------------------------------- */

/*
 * Sets up the coordinator in *c (zeroed by the caller, which keeps it at a fixed address): its
 * options, request ids and locks, `tr` for its outbound calls (the caller keeps it and frees
 * it after coord_close), raft (craft_start with `ro`) and the request server's worker pool
 * (rpcsrv_new with `so`; it listens on so->listen only when `listen`: a test drives
 * coord_handle without a socket). The leader's work starts separately (coord_leader_start).
 * DV_* with errmsg (logged); nothing is left running on failure.
 */
int coord_open(struct coord *c, const struct coord_opts *o, const struct craft_opts *ro,
               struct tr *tr, const struct rpcsrv_opts *so, bool listen, char *errmsg);

/* Stops raft and the request server and frees the connections (after coord_leader_stop and
 * once no request runs); the caller frees c->tr next. */
void coord_close(struct coord *c);

/* The connection to `url` (made if needed on c->tr); NULL with errmsg when it cannot be opened.
 * *comb (if comb is not NULL) gets the connection's search combiner. */
struct tr_peer *coord_conn(struct coord *c, const char *url, struct combiner **comb, char *errmsg);

/* The search port pool for `url` (made if needed); NULL when out of memory, and tc NULL when
 * the URL does not parse (logged once). */
struct coord_sport *coord_search_port(struct coord *c, const char *url);

/* A fresh request id for a command this coordinator submits. */
struct cmap_reqid coord_reqid(struct coord *c);

/*
 * Applies a map command: on the leader through raft; elsewhere the caller forwards the
 * client's request instead (see coord_handle.c). Retries with the same request id when raft
 * loses leadership mid-apply. *res gets the command's result.
 */
int coord_apply(struct coord *c, const struct cmap_cmd *cmd, struct cmap_result *res, char *errmsg);

/* Notes a report from a node (leader's liveness table). */
void coord_seen(struct coord *c, const char *node_id);

/* Marks a node (already seen) as holding a replica of a dropped collection; coord_take_stale
 * returns the mark and clears it. */
void coord_mark_stale(struct coord *c, const char *node_id);
bool coord_take_stale(struct coord *c, const char *node_id);

/*
 * Makes node n hold the replicas the map places on it: creates those it did not report (all
 * of them when `all`), each with its collection's incarnation, and drops those it reported
 * that the map does not place on it. only_coll != NULL limits it to creating every replica
 * of that collection (right after its creation). Returns the number of failed calls.
 */
int coord_reconcile_node(struct coord *c, const struct cmap *m, const struct cmap_node *n,
                         const char *only_coll, bool all);

/* Starts / stops the leader's background work (coord_leader.c): liveness and reconcile, and
 * the mover. */
int coord_leader_start(struct coord *c);
void coord_leader_stop(struct coord *c);

/* ---- mover.c ----------------------------------------------------------------------------- */

/* The mover's thread: on the ready leader, drives the map's moves and plans new ones when
 * automatic rebalancing is on. */
void *mover_main(void *arg);

/*
 * Applies a plan (plan.h) made from map `m`: removes the records of finished moves (except
 * done ones still waiting to drop their old replica) and adds one PLANNED move per plan move.
 * Leader only. *added gets the number added. DV_* with errmsg.
 */
struct plan;
int mover_apply(struct coord *c, const struct cmap *m, const struct plan *pl, size_t *added,
                char *errmsg);

/* Appends the moves of map `m` with the leader's progress as a msgpack array to `b`. */
struct buf;
int mover_status(struct coord *c, const struct cmap *m, struct buf *b);

/* ---- admin.c ----------------------------------------------------------------------------- */

/* An admin request (MSG_ADMIN) on the ready leader: fills `status` (a msgpack map). */
int admin_run(struct coord *c, const struct msg *req, struct buf *status, char *errmsg);

/* The coordinator's status map (native `cluster`, msgpack) appended to `b` (coord_status.c).
 * DV_ENOMEM. */
int coord_cluster_status(struct coord *c, struct buf *b);

/* Admin ops on aliases (admin_alias.c): `alias_update` applies Qdrant's {"actions": [...]} as
 * one map command, `alias_list` lists them ({"collection": name} for one collection's);
 * `index_record` records a payload index definition created or dropped through the router. */
struct mpk;
int admin_alias_update(struct coord *c, const uint8_t *args, size_t n, struct buf *b, char *errmsg);
int admin_alias_list(struct coord *c, const uint8_t *args, size_t n, struct buf *b, char *errmsg);
int admin_index_record(struct coord *c, const uint8_t *args, size_t n, struct buf *b, char *errmsg);
/* Records in the map (admin op index_record, on the leader) the payload index `ix` created or
 * dropped on collection `coll`'s replicas; a failure is logged and returned. */
struct msg_index_req;
int coord_index_note(struct coord *c, const char *coll, const struct msg_index_req *ix);

/* A route request (MSG_ROUTE) for collection `name`, from this coordinator's map (leader or
 * not): fills rep->u.route_rep, which points into *mem until coord_route_free(*mem).
 * DV_ENOTFOUND, DV_ENOMEM (*mem NULL). route.c. */
int coord_route(struct coord *c, const char *name, struct msg *rep, void **mem, char *errmsg);
void coord_route_free(void *mem);

/* ---- coord_handle.c ---------------------------------------------------------------------- */

/*
 * The coordinator's typed entry point (`arg` is the struct coord): runs one request of the
 * client API, a node report or a forwarded map change, and fills *rep with its reply, an
 * error reply (rep->m.err: code, text) included; res gets the request's type, id, code and
 * error text for metrics and logs. Leader-only requests on a follower are forwarded to the
 * leader. REST calls it in-process (rest.h, rest_call_fn), so nothing is encoded or decoded
 * inside the process. Returns DV_OK when *rep holds a reply, DV_ENOMEM when none could be
 * made. Free *rep with msg_reply_free whatever the result; `req` must outlive *rep (a reply
 * may point into it). Any thread; may block (calls nodes and the leader).
 */
int coord_call(void *arg, const struct msg *req, struct msg_reply *rep, struct rpcsrv_result *res);

/* rpcsrv_handle_fn for the native protocol: decode, coord_call, encode. */
int coord_handle(void *arg, const void *in, size_t n, struct buf *out, struct rpcsrv_result *res);

/* rpcsrv's run_async (router_async.c): takes a plain search (default read consistency, every
 * partition with an in-sync replica on a serving node) and answers it from NNG's threads, no
 * worker involved; anything else, or a node call that fails, goes to coord_handle on a worker. */
bool coord_run_async(void *arg, const void *in, size_t n, struct rpcsrv_req *h);

/* What coord_search_start calls when the search is done, on an NNG thread: the merged hits
 * (valid during the call; metric: the collection's, for the order of scores), or rep NULL
 * when the search needs the full path (a node failed or moved on): the caller then runs it
 * through coord_call, with rpcsrv_result.requeued set. */
typedef void (*coord_search_done)(void *done_arg, const struct msg_csearch_rep *rep,
                                  uint32_t metric);

/* router_async.c for in-process callers (the REST API): starts a plain search (type
 * MSG_P_SEARCH; req and what it points to stay valid until `done` runs) and returns true, or
 * false when it is not a plain one (nothing started: use coord_call). Never blocks. */
bool coord_search_start(void *arg, const struct msg *req, coord_search_done done, void *done_arg);

/* ---- router.c ---------------------------------------------------------------------------- */

/* Data requests routed from the local map copy: fills rep (reply body) or returns an error
 * with errmsg. `tmp` keeps memory the reply points into until it is encoded. plain_ok: a
 * search may first try router_search_plain (false for one that already failed that way). */
struct coord_tmp;
int router_run(struct coord *c, const struct msg *req, struct msg *rep, struct coord_tmp **tmp,
               bool plain_ok, char *errmsg);
void router_tmp_free(struct coord_tmp *t);

#endif
