/* client_int.h - what libdvec's files share: the client, calls with failover, errors, ids,
 * JSON and records. Internal: never installed. */
#ifndef DVEC_CLIENT_INT_H
#define DVEC_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "dvec.h"
#include "err.h"
#include "msg.h"
#include "pid.h"
#include "rpc.h"
#include "tcpcall.h"

#define CL_MAX_URLS         64    /* coordinator URLs of one client */
#define CL_MAX_SCROLL       10000 /* points per scroll page */
#define CL_SEARCH_LEEWAY_MS 2000  /* transport wait beyond a search's own deadline */

/* A collection's metric as this client last learned it (score thresholds). */
struct cl_metric {
    char name[129];
    uint32_t metric;
};

/* A connection to a node, opened on first use and kept until dvec_close. */
/* A connection to a node: its native URL over NNG (rpc), or its search port (tcp). Allocated
 * one by one, never moved: routes point at them. */
struct cl_conn {
    char *url;
    struct rpc *rpc;     /* NULL for a search port */
    struct tcpcall *tcp; /* NULL for a native URL */
    /* A search port that refused or dropped a connection is not used (the node's native URL
     * is) until this time (clock_mono_ms). */
    _Atomic uint64_t off_until_ms;
};

/*
 * A collection's routing table as a coordinator gave it (MSG_ROUTE), shared by the calls that
 * use it: taken with cl_route_get, given back with cl_route_put. none: the coordinator did not
 * give one (it predates one hop, or the collection does not exist); calls go through a
 * coordinator until the next fetch.
 */
struct cl_route {
    char name[PROTO_MAX_NAME + 1];
    bool none;
    struct msg_reply rep;    /* rep.m.u.route_rep */
    struct rpc **conns;      /* [n_nodes]: the connection to each of the route's nodes */
    struct cl_conn **search; /* [n_nodes]: each node's search port, NULL when it has none */
    uint64_t fetched_ms;
    int refs; /* under the client's mu; the cache holds one while listed */
    struct cl_route *next;
};

struct dvec_client {
    size_t n;          /* coordinator URLs */
    char **urls;       /* [n] */
    struct rpc **rpcs; /* [n], one NNG socket each */
    atomic_size_t cur; /* the coordinator calls go to first */
    uint32_t timeout_ms, max_attempts;
    _Atomic uint32_t read_consistency; /* dvec_set_read_consistency */
    pthread_mutex_t mu;                /* metrics, routes, conns */
    struct cl_metric *metrics;
    size_t n_metrics;
    bool direct;               /* one hop (dvec_options.via_coordinator false) */
    uint32_t route_ttl_ms;     /* dvec_options.route_ttl_ms, 0 replaced */
    bool search_port;          /* one hop uses nodes' search ports (!no_search_port) */
    struct rpc_opts node_opts; /* of the connections to nodes */
    struct cl_route *routes;   /* one per collection, the newest */
    struct cl_conn **conns;    /* to nodes, by URL */
    size_t n_conns, cap_conns;
    atomic_uint_least64_t turn; /* which in-sync replica a read goes to, in turn */
};

/* How long a route is used before it is fetched again (ms), by default (route_ttl_ms): a
 * replica that left the in-sync set stops taking this client's reads within it
 * (docs/architecture.md, "One hop"). */
#define CL_ROUTE_TTL_MS 1000
/* After a coordinator gave no route: how long calls go through coordinators before asking
 * again (ms). */
#define CL_ROUTE_RETRY_MS 5000

/* The route of collection `coll` (fresh from memory, or fetched from a coordinator); NULL when
 * one hop is off or no route could be had (then the call goes through a coordinator). */
struct cl_route *cl_route_get(dvec_client *c, const char *coll);
/* Gives back what cl_route_get returned (NULL: nothing). */
void cl_route_put(dvec_client *c, struct cl_route *r);
/* Drops route `r` of the cache (a node said the map moved on, or did not answer): the next
 * call fetches a new one. */
void cl_route_stale(dvec_client *c, struct cl_route *r);
/* Frees every route and node connection (dvec_close). */
void cl_routes_free(dvec_client *c);

/*
 * A search of `coll` straight to the nodes: one request per node naming the partitions read
 * from it, the hits merged here. true with *rep as a coordinator's points_search reply would
 * be; false (rep empty) when it could not be done that way (no route, a node did not answer or
 * said the map moved on, a partition with no in-sync replica, a request the nodes refused):
 * the caller sends the request to a coordinator, which answers or says what is wrong.
 */
/*
 * An upsert, delete or set-payload (MSG_P_*) of `coll` straight to the partitions' primaries
 * (direct_write.c). true with *rep as a coordinator's write reply would be (affected); false
 * (rep empty) when it was not done that way or not acknowledged by every primary and secondary:
 * the caller sends the same request to a coordinator (writes are idempotent).
 */
bool cl_direct_write(dvec_client *c, const char *coll, const struct msg *req, uint32_t timeout_ms,
                     struct msg_reply *rep);

bool cl_direct_search(dvec_client *c, const char *coll, const struct msg_csearch_req *s,
                      uint32_t timeout_ms, struct msg_reply *rep);

/*
 * Sends `req` to the current coordinator and, when it does not answer (DV_EIO, DV_ETIMEDOUT
 * from the transport, or DV_ESHUTDOWN), to the next ones, at most c->max_attempts times; a
 * coordinator that answered becomes current. timeout_ms 0: the client's. On DV_OK *rep holds
 * the reply (free it with msg_reply_free); on failure *rep owns nothing and errmsg
 * (DV_ERRMSG_SIZE) says why.
 */
int cl_call(dvec_client *c, const struct msg *req, uint32_t timeout_ms, struct msg_reply *rep,
            char *errmsg);

/* A request of `type` naming collection `coll` (NULL: none). */
struct msg cl_req(int type, const char *coll);

/* Fills err (may be NULL) with code and the message "<prefix>: <msg>" (no prefix when
 * prefix is NULL) and returns code. */
int cl_fail(dvec_error *err, int code, const char *prefix, const char *msg);
int cl_failf(dvec_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Clears err to DVEC_OK and an empty message; returns DVEC_OK. */
int cl_ok(dvec_error *err);

/* Checks a collection name argument (not NULL, 1..128 bytes): DVEC_EINVAL otherwise. */
int cl_check_coll(const char *coll, dvec_error *err);

/* The metric of collection `coll`, from this client's memory or asked once (coll_info). */
int cl_metric_of(dvec_client *c, const char *coll, uint32_t *metric, char *errmsg);
/* Forgets what this client knows of collection `coll` (created or dropped through it). */
void cl_metric_forget(dvec_client *c, const char *coll);

/* ids */
struct pid cl_pid(const dvec_id *id);
dvec_id cl_id(const struct pid *p);
/* A malloc'd array of the n ids as pids (NULL with DVEC_ENOMEM in err; n 0 gives a valid
 * pointer). */
struct pid *cl_pids(const dvec_id *ids, size_t n);

enum cl_json_kind {
    CL_JSON_ANY = 0,
    CL_JSON_OBJECT = 1,
    CL_JSON_ARRAY = 2,
    CL_JSON_KEYS = 3, /* an array of strings */
};

/*
 * JSON text -> one msgpack value appended to `out`, if it is of the kind wanted. DV_EPARSE when the
 * text does not parse ("json: line L column C (byte B): ...") or is not of the kind wanted;
 * DV_EINVAL for nesting deeper than the codec takes; DV_ENOMEM.
 */
int cl_json_to_mp(const char *json, enum cl_json_kind want, struct buf *out, char *errmsg);

/* Hits of a reply -> records the caller owns (out->items malloc'd, each vector and payload
 * too). with_score copies scores. DV_ENOMEM, or a payload that does not convert. */
int cl_records(const struct msg_hits *h, bool with_score, dvec_records *out, char *errmsg);

#endif
