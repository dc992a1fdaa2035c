/* rpc.c - native protocol client over NNG req contexts. */
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "clock.h"
#include "err.h"
#include "rpc.h"
#include "transport.h"

struct rpc {
    nng_socket sock;
    nng_dialer dialer;
    struct rpc_opts o;
    char url[256];
    atomic_uint_least64_t next_id;
    pthread_mutex_t mu; /* pipes, and the condition callers wait on for a connection */
    pthread_cond_t cv;
    int pipes; /* connections up */
};

/* NNG's pipe events (on its threads): keeps the count of connections up. */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    struct rpc *r = arg;
    pthread_mutex_lock(&r->mu);
    r->pipes += ev == NNG_PIPE_EV_ADD_POST ? 1 : -1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

bool rpc_connected(struct rpc *r)
{
    pthread_mutex_lock(&r->mu);
    bool up = r->pipes > 0;
    pthread_mutex_unlock(&r->mu);
    return up;
}

/* Waits (at most ms) for a connection; false when none came up. */
static bool wait_connected(struct rpc *r, uint32_t ms)
{
    struct timespec ts;
    clock_deadline_ms(&ts, ms);
    pthread_mutex_lock(&r->mu);
    while (r->pipes <= 0)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0)
            break;
    bool up = r->pipes > 0;
    pthread_mutex_unlock(&r->mu);
    return up;
}

void rpc_opts_default(struct rpc_opts *o)
{
    memset(o, 0, sizeof *o); /* connect_wait_ms 0 too (it was left as found) */
    o->timeout_ms = 10000;
    o->recv_max = PROTO_MAX_MSG;
    o->reconnect_ms = 50;
}

int rpc_open(const char *url, const struct rpc_opts *o, struct rpc **out, char *errmsg)
{
    struct rpc *r = calloc(1, sizeof *r);
    if (r == NULL)
        return DV_ENOMEM;
    if (o)
        r->o = *o;
    else
        rpc_opts_default(&r->o);
    snprintf(r->url, sizeof r->url, "%s", url);
    atomic_init(&r->next_id, 1);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rv;
    if ((rv = nng_req0_open(&r->sock)) != 0) {
        dv_errmsg_set(errmsg, "nng_req0_open: %s", nng_strerror(rv));
        free(r);
        return DV_EIO;
    }
    nng_socket_set_ms(r->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_ms(r->sock, NNG_OPT_RECONNMINT, (nng_duration)r->o.reconnect_ms);
    nng_socket_set_ms(r->sock, NNG_OPT_RECONNMAXT, (nng_duration)r->o.reconnect_ms * 10);
    nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, (size_t)r->o.recv_max);
    nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_POST, on_pipe, r);
    nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, on_pipe, r);
    if ((rv = nng_dialer_create(&r->dialer, r->sock, url)) != 0 ||
        (rv = nng_dialer_start(r->dialer, NNG_FLAG_NONBLOCK)) != 0) {
        dv_errmsg_set(errmsg, "cannot dial %s: %s", url, nng_strerror(rv));
        nng_close(r->sock);
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? DV_EINVAL : DV_EIO;
    }
    *out = r;
    return DV_OK;
}

void rpc_close(struct rpc *r)
{
    if (r == NULL)
        return;
    nng_close(r->sock); /* no pipe callbacks after it returns */
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static int transport_err(struct rpc *r, int rv, const char *what, uint32_t timeout_ms, char *errmsg)
{
    if (rv == NNG_ETIMEDOUT) {
        dv_errmsg_set(errmsg, "%s: no reply from %s within %u ms", what, r->url, timeout_ms);
        return DV_ETIMEDOUT;
    }
    dv_errmsg_set(errmsg, "%s %s: %s", what, r->url, nng_strerror(rv));
    return DV_EIO;
}

static int call_raw(struct rpc *r, const void *p, size_t n, void **out, size_t *out_len,
                    uint32_t timeout_ms, char *errmsg)
{
    nng_ctx ctx;
    nng_aio *aio;
    nng_msg *m;
    int rv, rc = DV_OK;
    *out = NULL;
    *out_len = 0;
    if (r->o.connect_wait_ms > 0) {
        uint32_t wait = r->o.connect_wait_ms < timeout_ms ? r->o.connect_wait_ms : timeout_ms;
        if (!wait_connected(r, wait)) {
            dv_errmsg_set(errmsg, "not connected to %s (no connection within %u ms)", r->url, wait);
            return DV_EIO;
        }
    }
    if ((rv = nng_ctx_open(&ctx, r->sock)) != 0)
        return transport_err(r, rv, "context", timeout_ms, errmsg);
    if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
        nng_ctx_close(ctx);
        return DV_ENOMEM;
    }
    nng_aio_set_timeout(aio, (nng_duration)timeout_ms);
    if ((rv = nng_msg_alloc(&m, 0)) != 0 || (rv = nng_msg_append(m, p, n)) != 0) {
        rc = DV_ENOMEM;
        goto out;
    }
    nng_aio_set_msg(aio, m);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        nng_msg_free(m);
        rc = transport_err(r, rv, "sending to", timeout_ms, errmsg);
        goto out;
    }
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        rc = transport_err(r, rv, "waiting for", timeout_ms, errmsg);
        goto out;
    }
    m = nng_aio_get_msg(aio);
    *out_len = nng_msg_len(m);
    *out = malloc(*out_len ? *out_len : 1);
    if (*out == NULL)
        rc = DV_ENOMEM;
    else
        memcpy(*out, nng_msg_body(m), *out_len);
    nng_msg_free(m);
out:
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return rc;
}

int rpc_call_raw(struct rpc *r, const void *p, size_t n, void **out, size_t *out_len, char *errmsg)
{
    return call_raw(r, p, n, out, out_len, r->o.timeout_ms, errmsg);
}

int rpc_call_raw_timeout(struct rpc *r, const void *p, size_t n, void **out, size_t *out_len,
                         uint32_t timeout_ms, char *errmsg)
{
    return call_raw(r, p, n, out, out_len, timeout_ms ? timeout_ms : r->o.timeout_ms, errmsg);
}

int rpc_call(struct rpc *r, const struct msg *req, struct msg_reply *rep, char *errmsg)
{
    return rpc_call_timeout(r, req, rep, r->o.timeout_ms, errmsg);
}

int rpc_call_timeout(struct rpc *r, const struct msg *req, struct msg_reply *rep,
                     uint32_t timeout_ms, char *errmsg)
{
    memset(rep, 0, sizeof *rep);
    struct msg copy;
    struct buf b;
    buf_init(&b);
    int rc = tr_req_encode(req, &r->next_id, &copy, &b, errmsg);
    if (rc != DV_OK) {
        buf_free(&b);
        return rc;
    }
    size_t len;
    rc = call_raw(r, b.data, b.len, &rep->mem_, &len, timeout_ms ? timeout_ms : r->o.timeout_ms,
                  errmsg);
    buf_free(&b);
    if (rc != DV_OK)
        return rc;
    return tr_reply_take(rep, len, &copy, r->url, errmsg);
}
