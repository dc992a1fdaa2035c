/* rpc.h - a client of the native protocol: one request, one reply, over an NNG req socket. */
#ifndef DV_RPC_H
#define DV_RPC_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"

/*
 * One connection to one server URL (a REQ socket dialed to it; nng reconnects by itself).
 * Thread-safe: each call uses its own NNG context, so many threads may call at once.
 * Requests are never resent by the transport (NNG_OPT_REQ_RESENDTIME is infinite): a call
 * whose connection broke fails, and the caller decides whether to retry.
 */
struct rpc;

struct rpc_opts {
    uint32_t timeout_ms;   /* per call, default 10000 */
    uint64_t recv_max;     /* largest reply accepted, default PROTO_MAX_MSG */
    uint32_t reconnect_ms; /* first reconnect delay, default 50 (at most 10x backoff) */
    /* A call made while no connection is up waits this long for one, then fails with
     * DV_EIO "not connected" instead of waiting out its timeout (a dead peer refuses at
     * once, but NNG would hold the request until the timeout). 0 (default): no limit. */
    uint32_t connect_wait_ms;
};

void rpc_opts_default(struct rpc_opts *o);

/* Opens the socket and starts dialing `url` (non-blocking: the server may start later). */
int rpc_open(const char *url, const struct rpc_opts *o, struct rpc **out, char *errmsg);
void rpc_close(struct rpc *r);

/* Whether a connection to the peer is up now (NNG's pipe events; a peer that just went away
 * may still count for the moment it takes to notice). */
bool rpc_connected(struct rpc *r);

/*
 * Sends `req` (req->req_id 0: one is assigned) and waits for its reply, decoded into *rep
 * (free it with msg_reply_free whatever the result). Returns DV_OK, or the error of the reply
 * (rep->m.err holds code, text and stale epoch; errmsg gets the text), or a transport error:
 * DV_ETIMEDOUT (no reply in time), DV_EIO (connection failed), DV_EPROTO (the reply does
 * not decode or does not match the request).
 */
int rpc_call(struct rpc *r, const struct msg *req, struct msg_reply *rep, char *errmsg);

/* rpc_call with its own timeout (0: the connection's). */
int rpc_call_timeout(struct rpc *r, const struct msg *req, struct msg_reply *rep,
                     uint32_t timeout_ms, char *errmsg);

/* One call of rpc_call_many or rpc_call_start: r, req and timeout_ms (0: the connection's) in
 * (req need not outlive the start); rep (free it with msg_reply_free whatever the result), rc
 * and errmsg out, as rpc_call_timeout's. The fields ending in _ are the call's own. */
struct rpc_job {
    struct rpc *r;
    const struct msg *req;
    uint32_t timeout_ms;
    struct msg_reply rep;
    int rc;
    char errmsg[DV_ERRMSG_SIZE];
    struct msg sent_;
    void (*done_)(void *arg, struct rpc_job *j);
    void *arg_;
};

/* Runs the n calls at once (to one server or several) and returns when every one has its reply
 * or its error. The calling thread sleeps once for all of them. */
void rpc_call_many(struct rpc_job *jobs, size_t n);

/*
 * Starts call j and returns; done(arg, j) runs once when it has its reply or error: on NNG's
 * thread (it must not block, close a connection or wait for another call), or on the calling
 * thread before rpc_call_start returns when the call could not be sent. j must stay in place
 * until then.
 */
void rpc_call_start(struct rpc_job *j, void (*done)(void *arg, struct rpc_job *j), void *arg);

/* Sends raw bytes and returns the raw reply (malloc'd, caller frees): for tests that send
 * malformed messages. Same transport errors as rpc_call. */
int rpc_call_raw(struct rpc *r, const void *p, size_t n, void **out, size_t *out_len, char *errmsg);

/* rpc_call_raw with its own timeout (0: the connection's). */
int rpc_call_raw_timeout(struct rpc *r, const void *p, size_t n, void **out, size_t *out_len,
                         uint32_t timeout_ms, char *errmsg);

#endif
