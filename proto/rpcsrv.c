/* rpcsrv.c - NNG rep socket with one context per in-flight request, and a worker pool.
 *
 * An nng callback never blocks: a received request is queued for the workers, a worker runs
 * it and starts the send, the send's callback posts the next receive on the same context
 * (LIBRARY-NOTES.md, nng). Searches over several partitions fork into the same pool; a
 * thread that waits for its forks runs forks itself, so the pool cannot deadlock.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "msg.h"
#include "rpcsrv.h"

enum ctx_state { CTX_RECV, CTX_WORK, CTX_SEND };

struct sctx {
    struct rpcsrv *s;
    nng_ctx ctx;
    nng_aio *aio;
    enum ctx_state state;
    nng_msg *msg;
    uint64_t t0;
    struct sctx *next; /* work queue */
    struct buf out;    /* the reply of a request run inline */
    bool requeued;     /* run_async handed it back */
};

/* A fork of parallel(): indices handed out one at a time to whoever asks. */
struct fork {
    void (*fn)(void *arg, size_t i);
    void *arg;
    size_t n, next, done;
    int helpers; /* workers currently inside it */
    struct fork *link;
    pthread_cond_t cv;
};

struct rpcsrv {
    struct rpcsrv_opts o;
    nng_socket sock;
    nng_listener lst;
    struct sctx *ctxs;
    uint32_t n_ctx;
    pthread_t *threads; /* n_threads workers, then the lane's */
    uint32_t n_threads, n_lane;

    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work or forks available, or stopping */
    pthread_cond_t idle_cv; /* a request finished (drain waits) */
    struct sctx *head, *tail;
    struct sctx *lane_head, *lane_tail; /* the lane's queue (opts.lane) */
    pthread_cond_t lane_cv;
    struct fork *forks;
    uint64_t queued, running; /* requests */
    atomic_uint_least64_t sending;
    bool stopping;
};

/* ---- forks ------------------------------------------------------------------------------- */

/* Runs indices of f until none is left. Called with s->mu held; returns with it held. */
static void fork_work(struct rpcsrv *s, struct fork *f)
{
    while (f->next < f->n) {
        size_t i = f->next++;
        pthread_mutex_unlock(&s->mu);
        f->fn(f->arg, i);
        pthread_mutex_lock(&s->mu);
        f->done++;
    }
    /* Exhausted: unlink it so no one else enters. */
    for (struct fork **pp = &s->forks; *pp; pp = &(*pp)->link)
        if (*pp == f) {
            *pp = f->link;
            break;
        }
}

void rpcsrv_parallel(void *pool, size_t n, void (*fn)(void *arg, size_t i), void *arg)
{
    struct rpcsrv *s = pool;
    struct fork f = {.fn = fn, .arg = arg, .n = n};
    pthread_cond_init(&f.cv, NULL);
    pthread_mutex_lock(&s->mu);
    f.link = s->forks;
    s->forks = &f;
    pthread_cond_broadcast(&s->cv);
    fork_work(s, &f);
    while (f.done < f.n || f.helpers > 0)
        pthread_cond_wait(&f.cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&f.cv);
}

/* ---- requests ---------------------------------------------------------------------------- */

static void ctx_recv(struct sctx *c)
{
    c->state = CTX_RECV;
    nng_ctx_recv(c->ctx, c->aio);
}

/* Logs a request that failed, reports it to the owner's done, and sends reply `out` (rc DV_OK)
 * or drops the request (no memory for a reply). */
static void reply(struct rpcsrv *s, struct sctx *c, nng_msg *m, int rc, const struct buf *out,
                  const struct rpcsrv_result *res)
{
    uint64_t ns = clock_mono_ns() - c->t0;
    if (res->code != DV_OK) {
        if (res->code == DV_ESTALE || res->code == DV_ESHUTDOWN)
            log_info("request refused", "op=%s req_id=%" PRIu64 " code=%s error=%s",
                     msg_type_name(res->type), res->req_id, dv_errname(res->code), res->errmsg);
        else
            log_warn("request failed", "op=%s req_id=%" PRIu64 " code=%s error=%s",
                     msg_type_name(res->type), res->req_id, dv_errname(res->code), res->errmsg);
    }
    if (s->o.done)
        s->o.done(s->o.done_arg, res, ns);
    nng_msg_clear(m);
    if (rc != DV_OK || nng_msg_append(m, out->data, out->len) != 0) {
        log_error("no memory for a reply; the request is dropped", "op=%s req_id=%" PRIu64,
                  msg_type_name(res->type), res->req_id);
        nng_msg_free(m);
        ctx_recv(c);
        return;
    }
    atomic_fetch_add(&s->sending, 1);
    c->state = CTX_SEND;
    nng_aio_set_msg(c->aio, m);
    nng_ctx_send(c->ctx, c->aio);
}

static void run_request(struct rpcsrv *s, struct sctx *c, struct buf *out)
{
    struct rpcsrv_result res;
    nng_msg *m = c->msg;
    c->msg = NULL;
    memset(&res, 0, sizeof res);
    res.requeued = c->requeued;
    c->requeued = false;
    buf_reset(out); /* the handler appends to an empty buffer */
    int rc = s->o.handle(s->o.handle_arg, nng_msg_body(m), nng_msg_len(m), out, &res);
    reply(s, c, m, rc, out, &res);
}

/* Queues a received request for the workers (or the lane's). */
static void enqueue(struct rpcsrv *s, struct sctx *c)
{
    bool lane = s->o.lane && s->o.lane(s->o.handle_arg, nng_msg_body(c->msg), nng_msg_len(c->msg));
    pthread_mutex_lock(&s->mu);
    struct sctx **head = lane ? &s->lane_head : &s->head, **tail = lane ? &s->lane_tail : &s->tail;
    c->next = NULL;
    if (*tail)
        (*tail)->next = c;
    else
        *head = c;
    *tail = c;
    s->queued++;
    pthread_cond_signal(lane ? &s->lane_cv : &s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* A request taken by run_async is no longer running here. */
static void async_end(struct rpcsrv *s)
{
    pthread_mutex_lock(&s->mu);
    s->running--;
    pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
}

void rpcsrv_finish(struct rpcsrv_req *h, const struct buf *out, const struct rpcsrv_result *res)
{
    struct sctx *c = (struct sctx *)h;
    struct rpcsrv *s = c->s;
    nng_msg *m = c->msg;
    c->msg = NULL;
    reply(s, c, m, DV_OK, out, res);
    async_end(s);
}

void rpcsrv_requeue(struct rpcsrv_req *h)
{
    struct sctx *c = (struct sctx *)h;
    struct rpcsrv *s = c->s;
    c->requeued = true;
    enqueue(s, c); /* counted as queued before it stops counting as running */
    async_end(s);
}

static void aio_cb(void *arg)
{
    struct sctx *c = arg;
    struct rpcsrv *s = c->s;
    int rv = nng_aio_result(c->aio);
    if (c->state == CTX_SEND) {
        atomic_fetch_sub(&s->sending, 1);
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio)); /* the peer went away */
            if (rv == NNG_ECLOSED)
                return;
        }
        ctx_recv(c);
        return;
    }
    if (rv != 0) {
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            return;
        ctx_recv(c); /* e.g. a connection reset: keep receiving */
        return;
    }
    c->msg = nng_aio_get_msg(c->aio);
    c->t0 = clock_mono_ns();
    c->state = CTX_WORK;
    c->next = NULL;
    if (s->o.run_inline &&
        s->o.run_inline(s->o.handle_arg, nng_msg_body(c->msg), nng_msg_len(c->msg))) {
        pthread_mutex_lock(&s->mu);
        bool now = !s->stopping; /* rpcsrv_stop waits for those running */
        if (now)
            s->running++;
        pthread_mutex_unlock(&s->mu);
        if (now) {
            run_request(s, c, &c->out);
            if (c->out.cap > (1u << 22))
                buf_free(&c->out);
            pthread_mutex_lock(&s->mu);
            s->running--;
            pthread_cond_broadcast(&s->idle_cv);
            pthread_mutex_unlock(&s->mu);
            return;
        }
    }
    if (s->o.run_async) {
        pthread_mutex_lock(&s->mu);
        bool now = !s->stopping;
        if (now)
            s->running++;
        pthread_mutex_unlock(&s->mu);
        if (now && s->o.run_async(s->o.handle_arg, nng_msg_body(c->msg), nng_msg_len(c->msg),
                                  (struct rpcsrv_req *)c))
            return; /* it finishes or requeues the request, maybe already has */
        if (now)
            async_end(s);
    }
    enqueue(s, c);
}

/* A thread of the lane: runs the lane's requests only. */
static void *lane_worker(void *arg)
{
    struct rpcsrv *s = arg;
    struct buf out;
    buf_init(&out);
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        if (s->lane_head == NULL) {
            pthread_cond_wait(&s->lane_cv, &s->mu);
            continue;
        }
        struct sctx *c = s->lane_head;
        s->lane_head = c->next;
        if (s->lane_head == NULL)
            s->lane_tail = NULL;
        s->queued--;
        s->running++;
        pthread_mutex_unlock(&s->mu);
        run_request(s, c, &out);
        if (out.cap > (1u << 22))
            buf_free(&out);
        pthread_mutex_lock(&s->mu);
        s->running--;
        pthread_cond_broadcast(&s->idle_cv);
    }
    pthread_mutex_unlock(&s->mu);
    buf_free(&out);
    return NULL;
}

static void *worker(void *arg)
{
    struct rpcsrv *s = arg;
    struct buf out;
    buf_init(&out);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->forks) {
            struct fork *f = s->forks;
            f->helpers++;
            fork_work(s, f);
            f->helpers--;
            pthread_cond_broadcast(&f->cv);
            continue;
        }
        if (s->stopping)
            break; /* queued requests are dropped by rpcsrv_stop */
        if (s->head) {
            struct sctx *c = s->head;
            s->head = c->next;
            if (s->head == NULL)
                s->tail = NULL;
            s->queued--;
            s->running++;
            pthread_mutex_unlock(&s->mu);
            run_request(s, c, &out);
            if (out.cap > (1u << 22))
                buf_free(&out); /* do not keep a huge reply buffer per thread */
            pthread_mutex_lock(&s->mu);
            s->running--;
            pthread_cond_broadcast(&s->idle_cv);
            continue;
        }
        pthread_cond_wait(&s->cv, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    buf_free(&out);
    return NULL;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

int rpcsrv_new(const struct rpcsrv_opts *o, struct rpcsrv **out, char *errmsg)
{
    struct rpcsrv *s = calloc(1, sizeof *s);
    if (s == NULL)
        return DV_ENOMEM;
    s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    pthread_cond_init(&s->lane_cv, NULL);

    int rv;
    if ((rv = nng_rep0_open(&s->sock)) != 0) {
        dv_errmsg_set(errmsg, "nng_rep0_open: %s", nng_strerror(rv));
        goto err_free;
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, (size_t)o->recv_max);
    s->n_ctx = o->contexts;
    s->ctxs = calloc(s->n_ctx, sizeof *s->ctxs);
    s->n_threads = o->workers;
    s->n_lane = o->lane ? (o->lane_workers ? o->lane_workers : 1) : 0;
    s->threads = calloc(s->n_threads + s->n_lane, sizeof *s->threads);
    if (s->ctxs == NULL || s->threads == NULL) {
        dv_errmsg_set(errmsg, "out of memory");
        goto err_close;
    }
    for (uint32_t i = 0; i < s->n_ctx; i++) {
        struct sctx *c = &s->ctxs[i];
        c->s = s;
        if ((rv = nng_ctx_open(&c->ctx, s->sock)) != 0 ||
            (rv = nng_aio_alloc(&c->aio, aio_cb, c)) != 0) {
            dv_errmsg_set(errmsg, "nng context: %s", nng_strerror(rv));
            goto err_close;
        }
    }
    uint32_t want = s->n_threads + s->n_lane;
    for (uint32_t i = 0; i < want; i++)
        if (pthread_create(&s->threads[i], NULL, i < s->n_threads ? worker : lane_worker, s) != 0) {
            s->n_lane = i > s->n_threads ? i - s->n_threads : 0;
            s->n_threads = i < s->n_threads ? i : s->n_threads;
            dv_errmsg_set(errmsg, "cannot start worker threads");
            rpcsrv_stop(s);
            return DV_EOS;
        }
    *out = s;
    return DV_OK;

err_close:
    nng_close(s->sock);
    for (uint32_t i = 0; s->ctxs && i < s->n_ctx; i++)
        if (s->ctxs[i].aio)
            nng_aio_free(s->ctxs[i].aio);
    free(s->ctxs);
    free(s->threads);
err_free:
    pthread_cond_destroy(&s->lane_cv);
    pthread_cond_destroy(&s->idle_cv);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return DV_EOS;
}

int rpcsrv_listen(struct rpcsrv *s, char *errmsg)
{
    int rv;
    if ((rv = nng_listener_create(&s->lst, s->sock, s->o.listen)) != 0 ||
        (rv = nng_listener_start(s->lst, 0)) != 0) {
        dv_errmsg_set(errmsg, "cannot listen on %s: %s", s->o.listen, nng_strerror(rv));
        return DV_EOS;
    }
    for (uint32_t i = 0; i < s->n_ctx; i++)
        ctx_recv(&s->ctxs[i]);
    return DV_OK;
}

uint64_t rpcsrv_inflight(struct rpcsrv *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->queued + s->running;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int rpcsrv_drain(struct rpcsrv *s, uint64_t timeout_ms)
{
    /* The listener stays open: closing an nng listener closes every connection it accepted,
     * which would cut the replies of the requests being finished. The handler refuses new
     * requests instead. */
    uint64_t deadline = clock_mono_ms() + timeout_ms;
    pthread_mutex_lock(&s->mu);
    while (s->queued + s->running > 0 && clock_mono_ms() < deadline) {
        pthread_mutex_unlock(&s->mu);
        clock_sleep_ms(5);
        pthread_mutex_lock(&s->mu);
    }
    int left = (int)(s->queued + s->running);
    pthread_mutex_unlock(&s->mu);
    /* Give the replies just sent a moment to leave (sends complete asynchronously). */
    while (atomic_load(&s->sending) > 0 && clock_mono_ms() < deadline)
        clock_sleep_ms(2);
    /* A finished send is queued on the connection, not yet written: let it leave. */
    clock_sleep_ms(50);
    return left;
}

void rpcsrv_stop(struct rpcsrv *s)
{
    /* Workers first: one still running a request sends its reply with nng_ctx_send, which
     * must not meet a closed socket (nng 1.5.2 panicked there, "pthread_mutex_lock: Invalid
     * argument", in test_rpc under ASan). They finish the request they run and leave the
     * queue; requests received meanwhile stay queued and are dropped below. */
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_cond_broadcast(&s->lane_cv);
    pthread_mutex_unlock(&s->mu);
    for (uint32_t i = 0; i < s->n_threads + s->n_lane; i++)
        pthread_join(s->threads[i], NULL);
    /* Requests running inline on nng's threads reply too: let them finish first. */
    pthread_mutex_lock(&s->mu);
    while (s->running > 0)
        pthread_cond_wait(&s->idle_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    nng_close(s->sock);
    for (uint32_t i = 0; i < s->n_ctx; i++)
        if (s->ctxs[i].aio)
            nng_aio_stop(s->ctxs[i].aio);
    /* Requests queued but never run: drop their messages. */
    for (struct sctx *c = s->head; c; c = c->next)
        nng_msg_free(c->msg);
    for (struct sctx *c = s->lane_head; c; c = c->next)
        nng_msg_free(c->msg);
    for (uint32_t i = 0; i < s->n_ctx; i++) {
        if (s->ctxs[i].aio)
            nng_aio_free(s->ctxs[i].aio);
        buf_free(&s->ctxs[i].out);
    }
    free(s->ctxs);
    free(s->threads);
    pthread_cond_destroy(&s->idle_cv);
    pthread_cond_destroy(&s->lane_cv);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int rpcsrv_request(const void *in, size_t n, uint64_t max, const char *who, struct msg *req,
                   struct rpcsrv_result *res)
{
    if (max && n > max) {
        msg_peek_header(in, n, &res->type, &res->req_id);
        dv_errmsg_set(res->errmsg, "message of %zu bytes exceeds this %s's maximum of %" PRIu64, n,
                      who, max);
        return DV_ETOOBIG;
    }
    int rc = msg_decode(in, n, req, res->errmsg);
    if (rc != DV_OK) {
        msg_peek_header(in, n, &res->type, &res->req_id);
        return rc;
    }
    res->type = req->type;
    res->req_id = req->req_id;
    if (req->reply) {
        dv_errmsg_set(res->errmsg, "got a reply (%s) where a request was expected",
                      msg_type_name(req->type));
        msg_free(req);
        return DV_EPROTO;
    }
    return DV_OK;
}

int rpcsrv_error_reply(struct buf *out, struct rpcsrv_result *res, int rc, uint64_t epoch)
{
    res->code = rc;
    return msg_encode_error(out, res->type, res->req_id, rc, res->errmsg, epoch);
}
