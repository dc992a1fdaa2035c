/* transport.h - the seam between dvec's servers and the network: one synchronous request/reply
 * to a peer by URL, behind a struct of function pointers (NNG in tr_nng.c, a fake in tr_fake.c). */
#ifndef DV_TRANSPORT_H
#define DV_TRANSPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "msg.h"

/*
 * Every outbound call of dvec-coord (to nodes and to the leader) and of dvec-shard (pulls from
 * another node, reports to the coordinators) goes through a `struct tr`, in the spirit of
 * raft's raft_io and SQLite's VFS: the daemons make the NNG one (tr_nng_new), unit tests an
 * in-memory one (tr_fake.h) that loses, delays and partitions messages deterministically.
 * Issue 15 (replication) sends its messages through the same seam.
 *
 * The primary operation is a synchronous call with a deadline: every caller is a thread that
 * may block (a worker of rpcsrv, the leader's loop, the mover, a pull's thread, the reporter).
 *
 * Threading: a transport and its peers may be used from any number of threads at once; a peer
 * must not be closed while a call on it runs.
 */

/* Per-peer options (the same as rpc.h's struct rpc_opts). */
struct tr_opts {
    uint32_t timeout_ms;   /* per call, default 10000 */
    uint64_t recv_max;     /* largest reply accepted, default PROTO_MAX_MSG; larger: dropped */
    uint32_t reconnect_ms; /* first reconnect delay, default 50 */
    /* A call made while no connection is up waits at most this long for one, then fails with
     * DV_EIO "not connected" instead of waiting out its timeout. 0 (default): no limit. */
    uint32_t connect_wait_ms;
};

void tr_opts_default(struct tr_opts *o);

struct tr;

/*
 * What an implementation provides. `conn` is what its open returned for one peer. Each
 * function follows the contract of the tr_* function of the same name below.
 */
struct tr_job;

struct tr_ops {
    int (*open)(struct tr *t, const char *url, const struct tr_opts *o, void **conn, char *errmsg);
    void (*close)(struct tr *t, void *conn);
    bool (*connected)(struct tr *t, void *conn);
    /* timeout_ms is never 0 here: the generic layer substitutes the peer's default. */
    int (*call)(struct tr *t, void *conn, const struct msg *req, struct msg_reply *rep,
                uint32_t timeout_ms, char *errmsg);
    int (*call_raw)(struct tr *t, void *conn, const void *in, size_t n, void **out, size_t *out_len,
                    uint32_t timeout_ms, char *errmsg);
    /* May be NULL (tr_call_start then makes a call and runs done before it returns). Starts
     * job j on conn (its timeout_ms never 0) and returns; the implementation runs
     * tr_job_done(j) once when it has its outcome (rep, rc, errmsg filled). */
    void (*call_start)(struct tr *t, void *conn, struct tr_job *j);
    /* Frees the transport itself (every peer is closed by then). */
    void (*destroy)(struct tr *t);
};

struct tr {
    const struct tr_ops *ops;
    void *impl; /* the implementation's state */
};

/* One peer by URL, opened on a transport (opaque). */
struct tr_peer;

/* Frees a transport (NULL: nothing). Close its peers first. */
void tr_free(struct tr *t);

/*
 * Opens a peer (o NULL: tr_opts_default). Non-blocking: the server may start later. DV_EINVAL
 * for a URL the transport cannot dial, DV_EIO, DV_ENOMEM, with errmsg. The caller closes *out
 * with tr_peer_close.
 */
int tr_open(struct tr *t, const char *url, const struct tr_opts *o, struct tr_peer **out,
            char *errmsg);
void tr_peer_close(struct tr_peer *p);

/* The URL the peer was opened with (valid until tr_peer_close). */
const char *tr_peer_url(const struct tr_peer *p);

/* Whether a connection to the peer is up now (a peer that just went away may still count for
 * the moment it takes to notice). */
bool tr_connected(struct tr_peer *p);

/*
 * Sends `req` (req->req_id 0: one is assigned) and waits at most timeout_ms (0: the peer's
 * timeout) for its reply, decoded into *rep; free it with msg_reply_free whatever the result.
 * Returns DV_OK, or the error of the reply (rep->m.err holds code, text and stale epoch;
 * errmsg gets the text), or a transport error: DV_ETIMEDOUT (no reply in time), DV_EIO
 * (connection failed, or none within connect_wait_ms), DV_EPROTO (the reply does not decode
 * or does not match the request).
 */
int tr_call(struct tr_peer *p, const struct msg *req, struct msg_reply *rep, uint32_t timeout_ms,
            char *errmsg);

/*
 * A call that does not wait: p, req and timeout_ms (0: the peer's) in, rep (free it with
 * msg_reply_free whatever the result), rc and errmsg out, as tr_call's. Fields ending in _ are
 * the call's own.
 */
struct tr_job {
    struct tr_peer *p;
    const struct msg *req;
    uint32_t timeout_ms;
    struct msg_reply rep;
    int rc;
    char errmsg[DV_ERRMSG_SIZE];
    void (*done_)(void *arg, struct tr_job *j);
    void *arg_;
    void *impl_;
};

/*
 * Starts job j and returns; done(arg, j) runs once with its outcome: on the transport's thread
 * (it must not block or wait for another call), or on the calling thread before this returns
 * (when the call could not be sent, or the transport has no asynchronous calls). j stays in
 * place until then.
 */
void tr_call_start(struct tr_job *j, void (*done)(void *arg, struct tr_job *j), void *arg);

/* For implementations: j has its outcome; runs its done. */
void tr_job_done(struct tr_job *j);

/* Sends raw bytes and returns the raw reply (*out malloc'd, the caller frees it; NULL on
 * failure) within timeout_ms (0: the peer's): for forwarding a request unread. Same transport
 * errors as tr_call. */
int tr_call_raw(struct tr_peer *p, const void *in, size_t n, void **out, size_t *out_len,
                uint32_t timeout_ms, char *errmsg);

/* ---- for implementations ------------------------------------------------------------------ */

/*
 * Encodes `req` for sending into `b` (empty on entry); *sent gets the request as sent, with a
 * request id taken from *next_id when req->req_id is 0. DV_* with errmsg.
 */
int tr_req_encode(const struct msg *req, atomic_uint_least64_t *next_id, struct msg *sent,
                  struct buf *b, char *errmsg);

/*
 * Decodes the len bytes of reply held by rep->mem_ (malloc'd; rep then owns them) into rep->m
 * and checks that it answers `sent`. Returns DV_OK, the reply's error code (errmsg gets its
 * text) or DV_EPROTO (errmsg names `url`).
 */
int tr_reply_take(struct msg_reply *rep, size_t len, const struct msg *sent, const char *url,
                  char *errmsg);

/* ---- the NNG implementation (tr_nng.c, in rpc_dep) ---------------------------------------- */

/* A transport over NNG req sockets (rpc.h): one socket per peer. DV_ENOMEM. */
int tr_nng_new(struct tr **out);

#endif
