/* tr_nng.c - the transport over NNG: each peer is an rpc.h connection (a req socket). */
#include <stdlib.h>

#include "err.h"
#include "rpc.h"
#include "transport.h"

static int tr_nng_open(struct tr *t, const char *url, const struct tr_opts *o, void **conn,
                       char *errmsg)
{
    (void)t;
    struct rpc_opts ro;
    rpc_opts_default(&ro);
    ro.timeout_ms = o->timeout_ms;
    ro.recv_max = o->recv_max;
    ro.reconnect_ms = o->reconnect_ms;
    ro.connect_wait_ms = o->connect_wait_ms;
    struct rpc *r;
    int rc = rpc_open(url, &ro, &r, errmsg);
    if (rc == DV_OK)
        *conn = r;
    return rc;
}

static void tr_nng_close(struct tr *t, void *conn)
{
    (void)t;
    rpc_close(conn);
}

static bool tr_nng_connected(struct tr *t, void *conn)
{
    (void)t;
    return rpc_connected(conn);
}

static int tr_nng_call(struct tr *t, void *conn, const struct msg *req, struct msg_reply *rep,
                       uint32_t timeout_ms, char *errmsg)
{
    (void)t;
    return rpc_call_timeout(conn, req, rep, timeout_ms, errmsg);
}

static int tr_nng_call_raw(struct tr *t, void *conn, const void *in, size_t n, void **out,
                           size_t *out_len, uint32_t timeout_ms, char *errmsg)
{
    (void)t;
    return rpc_call_raw_timeout(conn, in, n, out, out_len, timeout_ms, errmsg);
}

static void nng_job_done(void *arg, struct rpc_job *rj)
{
    struct tr_job *j = arg;
    j->rep = rj->rep;
    j->rc = rj->rc;
    if (rj->rc != DV_OK)
        dv_errmsg_set(j->errmsg, "%s", rj->errmsg);
    free(rj);
    tr_job_done(j);
}

static void tr_nng_call_start(struct tr *t, void *conn, struct tr_job *j)
{
    (void)t;
    struct rpc_job *rj = calloc(1, sizeof *rj);
    if (rj == NULL) {
        j->rc = DV_ENOMEM;
        dv_errmsg_set(j->errmsg, "out of memory");
        tr_job_done(j);
        return;
    }
    rj->r = conn;
    rj->req = j->req;
    rj->timeout_ms = j->timeout_ms;
    rpc_call_start(rj, nng_job_done, j);
}

static void tr_nng_destroy(struct tr *t)
{
    free(t);
}

static const struct tr_ops tr_nng_ops = {
    .open = tr_nng_open,
    .close = tr_nng_close,
    .connected = tr_nng_connected,
    .call = tr_nng_call,
    .call_raw = tr_nng_call_raw,
    .call_start = tr_nng_call_start,
    .destroy = tr_nng_destroy,
};

int tr_nng_new(struct tr **out)
{
    struct tr *t = calloc(1, sizeof *t);
    if (t == NULL)
        return DV_ENOMEM;
    t->ops = &tr_nng_ops;
    *out = t;
    return DV_OK;
}
