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
 * of the REST layer's own worker threads, which may block in `call`.
 */
struct rest;

/* Runs one native request and fills *rep with its reply (an error reply included); DV_OK when
 * *rep holds one. The caller frees *rep with msg_reply_free in every case (coord_call). */
typedef int (*rest_call_fn)(void *arg, const struct msg *req, struct msg_reply *rep,
                            struct rpcsrv_result *res);

/* Dimension and metric (CMAP_METRIC_* / enum hnsw_metric numbering) of a collection as this
 * coordinator's map knows it; false when it does not know the collection. Any thread. */
typedef bool (*rest_meta_fn)(void *arg, const char *name, uint32_t *dim, uint32_t *metric);

struct rest_opts {
    rest_call_fn call;
    void *call_arg;
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
