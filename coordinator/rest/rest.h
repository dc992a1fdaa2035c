/* rest.h - the coordinator's Qdrant-compatible REST API: JSON over HTTP, translated to the
 * native client requests and run through the same handler as native clients. */
#ifndef DV_REST_H
#define DV_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "httpd.h"
#include "metrics.h"
#include "msg.h"
#include "rpcsrv.h"

/*
 * Every REST call becomes one or more native requests (proto/msg.h, as structs) that run
 * through `call` in-process (dvec-coord passes coord_call, its typed entry point, so leader
 * forwarding and routing are the native clients' and nothing is encoded or decoded inside the
 * process), and their replies are rendered as Qdrant's JSON. docs/api.md lists the
 * calls and where dvec differs from Qdrant.
 *
 * Threads: httpd hands each request over on an nng thread; it is queued and answered by one
 * of the REST layer's own worker threads, which may block in `call`. A search (search, query,
 * and their batches) with a small body is parsed on the nng thread instead and started with
 * `search`; its reply is rendered and sent from the thread that runs `done`, so a plain search
 * wakes no REST worker. Anything else about it (a query by id, a read consistency, a node that
 * fails) sends it to a worker as any other request.
 */
struct rest;

/* Runs one native request and fills *rep with its reply (an error reply included); DV_OK when
 * *rep holds one. The caller frees *rep with msg_reply_free in every case (coord_call). */
typedef int (*rest_call_fn)(void *arg, const struct msg *req, struct msg_reply *rep,
                            struct rpcsrv_result *res);

/* The config of a collection (or of an alias's) as this coordinator's map knows it: its
 * dimension and metric (CMAP_METRIC_* / enum hnsw_metric numbering) and its named vectors;
 * false when it does not know the collection. Any thread. */
typedef bool (*rest_meta_fn)(void *arg, const char *name, struct msg_coll_cfg *cfg);

/* A plain search started without blocking (coord_search_start): done(done_arg, rep, metric)
 * runs later on another thread with the merged hits (valid during the call), or rep NULL when
 * the search needs `call` (the REST layer then runs the request again on a worker). False:
 * nothing started. */
typedef void (*rest_search_done)(void *done_arg, const struct msg_csearch_rep *rep,
                                 uint32_t metric);
typedef bool (*rest_search_fn)(void *arg, const struct msg *req, rest_search_done done,
                               void *done_arg);

struct rest_opts {
    rest_call_fn call;
    void *call_arg;
    rest_search_fn search; /* may be NULL: every request goes to a worker */
    void *search_arg;
    rest_meta_fn meta;
    void *meta_arg;
    uint64_t peer_id;    /* this coordinator's raft id (Qdrant's peer_id) */
    uint32_t workers;    /* threads answering requests (>= 1) */
    uint32_t max_queue;  /* requests waiting for a worker before 503; 0: 64 per worker */
    uint64_t max_body;   /* larger request bodies are answered 413 */
    const char *version; /* reported by GET / */
    struct metrics *reg; /* request counters and latencies; may be NULL */
};

/* Starts the workers. DV_ENOMEM, DV_EOS (threads), DV_EINVAL (bad options). */
int rest_new(const struct rest_opts *o, struct rest **out, char *errmsg);

/* Serves the API on `h` under "/" (paths registered on h, such as /metrics, keep theirs). */
int rest_attach(struct rest *r, struct httpd *h, char *errmsg);

/* Joins the workers and frees. Call after httpd_stop()/httpd_free() of the server it is
 * attached to (which waits for the requests it handed over to be answered). NULL: no-op. */
void rest_free(struct rest *r);

#endif
