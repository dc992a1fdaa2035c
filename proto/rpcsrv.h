/* rpcsrv.h - the server side of the native protocol: an NNG rep socket with one context per
 * in-flight request, and a pool of worker threads running a handler (dvec-shard, dvec-coord). */
#ifndef DV_RPCSRV_H
#define DV_RPCSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "msg.h"

struct rpcsrv;

/* A request taken by the owner's run_async (opaque). */
struct rpcsrv_req;

/* What a request was, for metrics and logs (filled by the handler). */
struct rpcsrv_result {
    int type; /* enum msg_type, MSG_ERROR when unreadable */
    int code; /* DV_OK or the error answered */
    uint64_t req_id;
    char errmsg[DV_ERRMSG_SIZE];
    bool requeued; /* set by rpcsrv: run_async took the request and handed it back */
};

/*
 * Runs one request of n bytes and appends the encoded reply to `out` (empty on entry). Runs on
 * a worker thread (or NNG's, see run_inline); may block (it holds that worker). Returns DV_OK when
 * `out` holds a reply, anything else drops the request without a reply (the client times out).
 */
typedef int (*rpcsrv_handle_fn)(void *arg, const void *in, size_t n, struct buf *out,
                                struct rpcsrv_result *res);

/* Called on the thread that ran it (a worker's or NNG's) after each request with what it was and
 * how long it took. */
typedef void (*rpcsrv_done_fn)(void *arg, const struct rpcsrv_result *res, uint64_t ns);

struct rpcsrv_opts {
    const char *listen; /* NNG URL */
    uint32_t workers;   /* threads running requests (>= 1) */
    uint32_t contexts;  /* requests received concurrently (>= 1) */
    uint64_t recv_max;  /* transport limit (NNG_OPT_RECVMAXSZ); larger messages are dropped */
    rpcsrv_handle_fn handle;
    void *handle_arg;
    rpcsrv_done_fn done; /* may be NULL */
    void *done_arg;
    /*
     * May be NULL. Called with handle_arg and each request received, on the NNG thread that
     * received it: true runs the request right there instead of handing it to a worker, which
     * saves two thread wake-ups per request (about 15-20% of a small request's round trip on
     * the test machine). Only for requests that are short (tens of microseconds) and never
     * wait on NNG, or NNG's threads stall; everything else goes to the workers.
     */
    bool (*run_inline)(void *arg, const void *in, size_t n);
    /*
     * May be NULL. Called like run_inline (after it): true queues the request for the
     * `lane_workers` threads of its own lane instead of the workers. A request that waits on
     * other servers' requests (a primary's write waits for its secondaries' replicate) must not
     * share workers with those: when every worker of every node holds such a write, no node
     * runs the requests they wait for. Requests of the lane must not wait on other servers.
     */
    bool (*lane)(void *arg, const void *in, size_t n);
    uint32_t lane_workers; /* threads of the lane (>= 1 when lane is set) */
    /*
     * May be NULL. Called after run_inline (when that did not take the request), on the NNG
     * thread that received it: true means the owner took the request and finishes it without a
     * worker, from whatever thread it is on then (typically NNG's, when the replies of the
     * calls it started come in): exactly one of rpcsrv_finish(h, ...) or rpcsrv_requeue(h),
     * possibly before run_async returns. `in` stays valid until then. For requests that only
     * wait on other servers (a coordinator's search): no worker wakes up for them.
     */
    bool (*run_async)(void *arg, const void *in, size_t n, struct rpcsrv_req *h);
};

/* Sends the reply `out` (an encoded message) to request h taken by run_async, with res for the
 * owner's done and the log, as if a worker had run it. */
void rpcsrv_finish(struct rpcsrv_req *h, const struct buf *out, const struct rpcsrv_result *res);

/* Hands request h taken by run_async to the workers after all (its handler runs it). */
void rpcsrv_requeue(struct rpcsrv_req *h);

/*
 * The start every handler shares (dvec-shard's and dvec-coord's): a message over `max` bytes
 * (0: no limit) is refused as DV_ETOOBIG naming the limit and `who` ("node"), then the message
 * is decoded into *req and a reply where a request was expected is refused (DV_EPROTO). On
 * DV_OK res has the request's type and id and the caller msg_free's *req; on any other code
 * res->errmsg says why, *req holds nothing, and the caller answers with rpcsrv_error_reply.
 */
int rpcsrv_request(const void *in, size_t n, uint64_t max, const char *who, struct msg *req,
                   struct rpcsrv_result *res);

/* Replaces `out` with the error reply to the request res describes: code rc, text
 * res->errmsg, the epoch when rc is DV_ESTALE. Sets res->code. What a handler returns. */
int rpcsrv_error_reply(struct buf *out, struct rpcsrv_result *res, int rc, uint64_t epoch);

/* Opens the socket and starts the workers; nothing is received before rpcsrv_listen(). */
int rpcsrv_new(const struct rpcsrv_opts *o, struct rpcsrv **out, char *errmsg);

/* Starts listening and receiving. DV_EOS with the NNG error in errmsg when the URL cannot be
 * listened on (call rpcsrv_stop then). */
int rpcsrv_listen(struct rpcsrv *s, char *errmsg);

/*
 * Runs fn(arg, 0) .. fn(arg, n - 1) on the pool's workers and the calling thread, and returns
 * when all ran. May be called from a handler (the caller runs tasks while it waits, so the
 * pool cannot deadlock). `pool` is a struct rpcsrv.
 */
void rpcsrv_parallel(void *pool, size_t n, void (*fn)(void *arg, size_t i), void *arg);

/*
 * Graceful stop, first half: waits (at most timeout_ms) until every request being run has been
 * answered. The caller makes its handler refuse new requests first (connections stay open so
 * that replies in flight reach their clients: closing an nng listener closes the connections
 * it accepted). Returns the number of requests still running at the deadline (0: drained).
 */
int rpcsrv_drain(struct rpcsrv *s, uint64_t timeout_ms);

/* Closes the socket and joins the workers. May hang inside nng (LIBRARY-NOTES: run it under
 * a watchdog). */
void rpcsrv_stop(struct rpcsrv *s);

/* Requests currently queued or running (for /metrics). */
uint64_t rpcsrv_inflight(struct rpcsrv *s);

#endif
