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

/*
 * Calls in flight, driven by NNG's callbacks: the send's completion starts the receive on NNG's
 * thread, so the caller sleeps once per batch (not once per send and once per receive), and the
 * calls of a batch to several servers overlap.
 */
struct batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t left;
};

struct slot {
    struct batch *g;
    struct rpc *r;
    nng_ctx ctx;
    nng_aio *aio;
    bool receiving, open;
    nng_msg *reply; /* when it came */
    int rv;         /* NNG's result of the failed step */
};

static void slot_cb(void *arg)
{
    struct slot *s = arg;
    int rv = nng_aio_result(s->aio);
    if (!s->receiving && rv == 0) {
        s->receiving = true;
        nng_ctx_recv(s->ctx, s->aio);
        return;
    }
    if (rv != 0) {
        if (!s->receiving)
            nng_msg_free(nng_aio_get_msg(s->aio));
        s->rv = rv;
    } else {
        s->reply = nng_aio_get_msg(s->aio);
    }
    pthread_mutex_lock(&s->g->mu);
    if (--s->g->left == 0)
        pthread_cond_signal(&s->g->cv);
    pthread_mutex_unlock(&s->g->mu);
}

/* Starts sending p[n] on s (s->r set); an error (errmsg says why) when it could not start. */
static int slot_start(struct slot *s, const void *p, size_t n, uint32_t timeout_ms, char *errmsg)
{
    struct rpc *r = s->r;
    nng_msg *m;
    int rv;
    if (r->o.connect_wait_ms > 0) {
        uint32_t wait = r->o.connect_wait_ms < timeout_ms ? r->o.connect_wait_ms : timeout_ms;
        if (!wait_connected(r, wait)) {
            dv_errmsg_set(errmsg, "not connected to %s (no connection within %u ms)", r->url, wait);
            return DV_EIO;
        }
    }
    if ((rv = nng_ctx_open(&s->ctx, r->sock)) != 0)
        return transport_err(r, rv, "context", timeout_ms, errmsg);
    if ((rv = nng_aio_alloc(&s->aio, slot_cb, s)) != 0) {
        nng_ctx_close(s->ctx);
        return DV_ENOMEM;
    }
    s->open = true;
    nng_aio_set_timeout(s->aio, (nng_duration)timeout_ms);
    if (nng_msg_alloc(&m, 0) != 0)
        return DV_ENOMEM;
    if (nng_msg_append(m, p, n) != 0) {
        nng_msg_free(m);
        return DV_ENOMEM;
    }
    nng_aio_set_msg(s->aio, m);
    nng_ctx_send(s->ctx, s->aio);
    return DV_OK;
}

/* The outcome of a finished slot: its reply's bytes (malloc'd) or a transport error. Frees the
 * slot's NNG objects. */
static int slot_end(struct slot *s, uint32_t timeout_ms, void **out, size_t *out_len, char *errmsg)
{
    int rc = DV_OK;
    if (s->reply) {
        *out_len = nng_msg_len(s->reply);
        *out = malloc(*out_len ? *out_len : 1);
        if (*out == NULL)
            rc = DV_ENOMEM;
        else
            memcpy(*out, nng_msg_body(s->reply), *out_len);
        nng_msg_free(s->reply);
        s->reply = NULL;
    } else {
        rc = transport_err(s->r, s->rv, s->receiving ? "waiting for" : "sending to", timeout_ms,
                           errmsg);
    }
    return rc;
}

static void slot_close(struct slot *s)
{
    if (!s->open)
        return;
    nng_aio_free(s->aio); /* waits for a callback still running */
    nng_ctx_close(s->ctx);
    s->open = false;
}

static void batch_wait(struct batch *g)
{
    pthread_mutex_lock(&g->mu);
    while (g->left > 0)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static int call_raw(struct rpc *r, const void *p, size_t n, void **out, size_t *out_len,
                    uint32_t timeout_ms, char *errmsg)
{
    struct batch g = {.left = 1};
    struct slot s = {.g = &g, .r = r};
    *out = NULL;
    *out_len = 0;
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    int rc = slot_start(&s, p, n, timeout_ms, errmsg);
    if (rc == DV_OK) {
        batch_wait(&g);
        rc = slot_end(&s, timeout_ms, out, out_len, errmsg);
    }
    slot_close(&s);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    return rc;
}

void rpc_call_many(struct rpc_job *jobs, size_t n)
{
    struct batch g = {.left = 0};
    struct slot *s = calloc(n ? n : 1, sizeof *s);
    struct msg *sent = calloc(n ? n : 1, sizeof *sent);
    if (s == NULL || sent == NULL) {
        for (size_t i = 0; i < n; i++) {
            memset(&jobs[i].rep, 0, sizeof jobs[i].rep);
            jobs[i].rc = DV_ENOMEM;
            dv_errmsg_set(jobs[i].errmsg, "out of memory");
        }
        free(s);
        free(sent);
        return;
    }
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    for (size_t i = 0; i < n; i++) {
        struct rpc_job *j = &jobs[i];
        memset(&j->rep, 0, sizeof j->rep);
        j->errmsg[0] = '\0';
        uint32_t tmo = j->timeout_ms ? j->timeout_ms : j->r->o.timeout_ms;
        struct buf b;
        buf_init(&b);
        s[i].g = &g;
        s[i].r = j->r;
        j->rc = tr_req_encode(j->req, &j->r->next_id, &sent[i], &b, j->errmsg);
        if (j->rc == DV_OK) {
            pthread_mutex_lock(&g.mu);
            g.left++;
            pthread_mutex_unlock(&g.mu);
            j->rc = slot_start(&s[i], b.data, b.len, tmo, j->errmsg);
            if (j->rc != DV_OK) {
                pthread_mutex_lock(&g.mu);
                g.left--;
                pthread_mutex_unlock(&g.mu);
            }
        }
        buf_free(&b);
        if (j->rc != DV_OK)
            s[i].rv = -1; /* not in flight */
    }
    batch_wait(&g);
    for (size_t i = 0; i < n; i++) {
        struct rpc_job *j = &jobs[i];
        if (s[i].rv != -1) {
            uint32_t tmo = j->timeout_ms ? j->timeout_ms : j->r->o.timeout_ms;
            size_t len = 0;
            j->rc = slot_end(&s[i], tmo, &j->rep.mem_, &len, j->errmsg);
            if (j->rc == DV_OK)
                j->rc = tr_reply_take(&j->rep, len, &sent[i], j->r->url, j->errmsg);
        }
        slot_close(&s[i]);
    }
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    free(s);
    free(sent);
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
