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
    pthread_mutex_t mu; /* pipes, the condition callers wait on for a connection, free */
    pthread_cond_t cv;
    int pipes;           /* connections up */
    struct slot *free;   /* contexts and aios of finished calls, for the next ones */
    struct slot *broken; /* slots that lost their context (slot_renew), for rpc_close */
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

static void slots_free(struct rpc *r);

void rpc_close(struct rpc *r)
{
    if (r == NULL)
        return;
    slots_free(r);      /* no call runs any more (the caller's contract) */
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
 * Calls in flight, driven by NNG's callbacks. A call sends on its context with an aio that has
 * no callback (NNG completes such an aio on the sending thread: no task is dispatched, no
 * thread woken) and posts the receive right after (a req context takes a receive as soon as
 * its send is queued); the receive's completion finishes the call on NNG's thread (decodes the
 * reply, runs the caller's done). A synchronous caller sleeps once per call (or once per
 * rpc_call_many), an asynchronous one not at all, and NNG wakes one thread per call, for the
 * reply. A slot (an NNG context and its two aios) serves one call at a time and goes back to
 * its connection's free list after it: the receive aio is never freed in a callback
 * (LIBRARY-NOTES.md, nng), only by rpc_close. After a failed receive the send may still be
 * queued in the context (no connection came up): the slot's context is closed, which ends the
 * send, and a new one opened (slot_renew).
 */
struct slot {
    struct rpc *r;
    nng_ctx ctx;
    nng_aio *aio;  /* the receive's */
    nng_aio *saio; /* the send's: no callback */
    bool broken;   /* no context (slot_renew failed): freed by rpc_close */
    uint32_t timeout_ms;
    void (*fin)(struct slot *s, int rc, nng_msg *reply, char *errmsg); /* on NNG's thread */
    void *arg;
    struct slot *next; /* free list */
};

/* After a failed receive: ends the send (closing the context finishes it), frees what it held
 * and gives the slot a new context and send aio. Safe on NNG's thread: the send aio has no
 * callback and is done once the context is closed. Returns the send's result. */
static int slot_renew(struct slot *s)
{
    nng_ctx_close(s->ctx);
    nng_aio_wait(s->saio); /* done or about to be: no callback to wait for */
    int rv = nng_aio_result(s->saio);
    nng_msg_free(nng_aio_get_msg(s->saio)); /* NULL once sent (the protocol took it) */
    nng_aio_set_msg(s->saio, NULL);
    if (nng_ctx_open(&s->ctx, s->r->sock) != 0)
        s->broken = true;
    return rv;
}

static void slot_cb(void *arg)
{
    struct slot *s = arg;
    int rv = nng_aio_result(s->aio);
    char errmsg[DV_ERRMSG_SIZE] = "";
    nng_msg *reply = NULL;
    int rc = DV_OK;
    if (rv != 0) {
        int srv = slot_renew(s);
        /* NNG_ESTATE: the context had no request to wait for, so the send failed at once. */
        bool sending = rv == NNG_ESTATE && srv != 0;
        rc = transport_err(s->r, sending ? srv : rv, sending ? "sending to" : "waiting for",
                           s->timeout_ms, errmsg);
    } else {
        reply = nng_aio_get_msg(s->aio);
    }
    s->fin(s, rc, reply, errmsg); /* gives the slot back */
}

static struct slot *slot_get(struct rpc *r, char *errmsg)
{
    pthread_mutex_lock(&r->mu);
    struct slot *s = r->free;
    if (s)
        r->free = s->next;
    pthread_mutex_unlock(&r->mu);
    if (s)
        return s;
    if ((s = calloc(1, sizeof *s)) == NULL) {
        dv_errmsg_set(errmsg, "out of memory");
        return NULL;
    }
    s->r = r;
    int rv;
    if ((rv = nng_ctx_open(&s->ctx, r->sock)) != 0) {
        transport_err(r, rv, "context", 0, errmsg);
        free(s);
        return NULL;
    }
    if ((rv = nng_aio_alloc(&s->aio, slot_cb, s)) != 0 ||
        (rv = nng_aio_alloc(&s->saio, NULL, NULL)) != 0) {
        nng_aio_free(s->aio);
        nng_ctx_close(s->ctx);
        free(s);
        dv_errmsg_set(errmsg, "out of memory");
        return NULL;
    }
    return s;
}

static void slot_put(struct slot *s)
{
    struct rpc *r = s->r;
    pthread_mutex_lock(&r->mu);
    if (s->broken) { /* kept for rpc_close, which frees its aios */
        s->next = r->broken;
        r->broken = s;
    } else {
        s->next = r->free;
        r->free = s;
    }
    pthread_mutex_unlock(&r->mu);
}

static void slot_list_free(struct slot *s)
{
    while (s) {
        struct slot *next = s->next;
        if (!s->broken)
            nng_ctx_close(s->ctx);
        nng_aio_free(s->aio);
        nng_aio_free(s->saio);
        free(s);
        s = next;
    }
}

static void slots_free(struct rpc *r)
{
    slot_list_free(r->free);
    slot_list_free(r->broken);
    r->free = r->broken = NULL;
}

/* Starts sending p[n]; fin(s, ...) runs once with the outcome, on NNG's thread. On an error
 * (errmsg says why) nothing was started and fin does not run. */
static int slot_start(struct rpc *r, const void *p, size_t n, uint32_t timeout_ms,
                      void (*fin)(struct slot *, int, nng_msg *, char *), void *arg, char *errmsg)
{
    if (r->o.connect_wait_ms > 0) {
        uint32_t wait = r->o.connect_wait_ms < timeout_ms ? r->o.connect_wait_ms : timeout_ms;
        if (!wait_connected(r, wait)) {
            dv_errmsg_set(errmsg, "not connected to %s (no connection within %u ms)", r->url, wait);
            return DV_EIO;
        }
    }
    nng_msg *m;
    if (nng_msg_alloc(&m, 0) != 0)
        return DV_ENOMEM;
    if (nng_msg_append(m, p, n) != 0) {
        nng_msg_free(m);
        return DV_ENOMEM;
    }
    struct slot *s = slot_get(r, errmsg);
    if (s == NULL) {
        nng_msg_free(m);
        return DV_EIO;
    }
    s->timeout_ms = timeout_ms;
    s->fin = fin;
    s->arg = arg;
    /* The receive's timeout covers the send too (a send waiting for a connection). */
    nng_aio_set_timeout(s->aio, (nng_duration)timeout_ms);
    /* A send that waited for a connection is finished after the message went out, so its
     * reply (and this slot's reuse) can come first: the wait is for that instant. */
    nng_aio_wait(s->saio);
    nng_aio_set_msg(s->saio, m);
    nng_ctx_send(s->ctx, s->saio);
    nng_ctx_recv(s->ctx, s->aio); /* may finish the call at once, on another thread */
    return DV_OK;
}

/* A caller that sleeps until its calls are done. */
struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t left;
};

static void waiter_init(struct waiter *w, size_t n)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->left = n;
}

static void waiter_one_done(struct waiter *w)
{
    pthread_mutex_lock(&w->mu);
    if (--w->left == 0)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_wait(struct waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->left > 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* ---- raw calls --------------------------------------------------------------------------- */

struct raw_call {
    struct waiter w;
    int rc;
    void *out;
    size_t len;
    char *errmsg;
};

static void raw_fin(struct slot *s, int rc, nng_msg *reply, char *errmsg)
{
    struct raw_call *k = s->arg;
    if (reply) {
        k->len = nng_msg_len(reply);
        if ((k->out = malloc(k->len ? k->len : 1)) == NULL)
            rc = DV_ENOMEM;
        else
            memcpy(k->out, nng_msg_body(reply), k->len);
        nng_msg_free(reply);
    }
    k->rc = rc;
    if (rc != DV_OK)
        dv_errmsg_set(k->errmsg, "%s", errmsg[0] ? errmsg : dv_strerror(rc));
    slot_put(s);
    waiter_one_done(&k->w);
}

static int call_raw(struct rpc *r, const void *p, size_t n, void **out, size_t *out_len,
                    uint32_t timeout_ms, char *errmsg)
{
    struct raw_call k = {.errmsg = errmsg};
    *out = NULL;
    *out_len = 0;
    waiter_init(&k.w, 1); /* before the start: raw_fin may run before slot_start returns */
    int rc = slot_start(r, p, n, timeout_ms, raw_fin, &k, errmsg);
    if (rc != DV_OK)
        waiter_one_done(&k.w);
    waiter_wait(&k.w);
    if (rc != DV_OK)
        return rc;
    if (k.rc != DV_OK) {
        free(k.out);
        return k.rc;
    }
    *out = k.out;
    *out_len = k.len;
    return DV_OK;
}

/* ---- calls of messages ------------------------------------------------------------------- */

/* Decodes the reply into job->rep and runs the job's done. */
static void job_fin(struct slot *s, int rc, nng_msg *reply, char *errmsg)
{
    struct rpc_job *j = s->arg;
    if (reply) {
        size_t len = nng_msg_len(reply);
        if ((j->rep.mem_ = malloc(len ? len : 1)) == NULL) {
            rc = DV_ENOMEM;
        } else {
            memcpy(j->rep.mem_, nng_msg_body(reply), len);
            rc = tr_reply_take(&j->rep, len, &j->sent_, s->r->url, j->errmsg);
        }
        nng_msg_free(reply);
    } else {
        dv_errmsg_set(j->errmsg, "%s", errmsg);
    }
    j->rc = rc;
    slot_put(s);
    j->done_(j->arg_, j);
}

void rpc_call_start(struct rpc_job *j, void (*done)(void *arg, struct rpc_job *j), void *arg)
{
    memset(&j->rep, 0, sizeof j->rep);
    j->errmsg[0] = '\0';
    j->done_ = done;
    j->arg_ = arg;
    uint32_t tmo = j->timeout_ms ? j->timeout_ms : j->r->o.timeout_ms;
    struct buf b;
    buf_init(&b);
    /* Once started, the call may finish (job_fin sets j->rc) before slot_start returns: j is
     * not touched after a start that succeeded. */
    char e[DV_ERRMSG_SIZE] = "";
    int rc = tr_req_encode(j->req, &j->r->next_id, &j->sent_, &b, e);
    if (rc == DV_OK)
        rc = slot_start(j->r, b.data, b.len, tmo, job_fin, j, e);
    buf_free(&b);
    if (rc != DV_OK) {
        j->rc = rc;
        dv_errmsg_set(j->errmsg, "%s", e);
        done(arg, j);
    }
}

static void many_done(void *arg, struct rpc_job *j)
{
    (void)j;
    waiter_one_done(arg);
}

void rpc_call_many(struct rpc_job *jobs, size_t n)
{
    struct waiter w;
    waiter_init(&w, n);
    for (size_t i = 0; i < n; i++)
        rpc_call_start(&jobs[i], many_done, &w);
    waiter_wait(&w);
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
    struct rpc_job j = {.r = r, .req = req, .timeout_ms = timeout_ms};
    rpc_call_many(&j, 1);
    *rep = j.rep;
    if (j.rc != DV_OK)
        dv_errmsg_set(errmsg, "%s", j.errmsg);
    return j.rc;
}
