/* combine.c - searches bound for the same node, sent as one request when the node is busy.
 *
 * A batch lives from the first caller that had to wait ("the sender") until its last member
 * released its share. Members' query structs are copied shallowly: the vectors and filters
 * they point to belong to the members' own requests, alive while the members wait.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "combine.h"
#include "err.h"

#define BATCH_MAX_QUERIES 64

struct cbatch {
    struct msg req; /* MSG_SEARCH; the sender's collection and partitions */
    struct msg_query *queries;
    uint32_t n, cap;
    uint32_t timeout_ms; /* the shortest of the members' (0: none given) */
    bool done;
    int rc;
    char err[DV_ERRMSG_SIZE];
    struct msg_reply rep;
    uint32_t refs; /* members holding it (under the combiner's lock) */
    struct combiner *cb;
    struct cbatch *next; /* in the combiner's queue of batches waiting to be sent */
};

struct combiner {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct tr_peer *r;
    uint32_t max_inflight, inflight;
    struct cbatch *head, *tail; /* gathering members while the node is busy, oldest first */
    struct combiner_stats st;
};

struct combiner *combiner_new(struct tr_peer *r, uint32_t max_inflight)
{
    struct combiner *cb = calloc(1, sizeof *cb);
    if (cb == NULL)
        return NULL;
    pthread_mutex_init(&cb->mu, NULL);
    pthread_cond_init(&cb->cv, NULL);
    cb->r = r;
    cb->max_inflight = max_inflight ? max_inflight : 1;
    return cb;
}

void combiner_free(struct combiner *cb)
{
    if (cb == NULL)
        return;
    pthread_cond_destroy(&cb->cv);
    pthread_mutex_destroy(&cb->mu);
    free(cb);
}

void combiner_stats(struct combiner *cb, struct combiner_stats *out)
{
    pthread_mutex_lock(&cb->mu);
    *out = cb->st;
    pthread_mutex_unlock(&cb->mu);
}

/* Same collection, same partitions at the same epochs: one request can carry both. */
static bool same_target(const struct msg *a, const struct msg *b)
{
    const struct msg_search_req *x = &a->u.search_req, *y = &b->u.search_req;
    return a->addr.coll.len == b->addr.coll.len &&
           memcmp(a->addr.coll.p, b->addr.coll.p, a->addr.coll.len) == 0 &&
           x->n_parts == y->n_parts &&
           memcmp(x->parts, y->parts, x->n_parts * sizeof *x->parts) == 0;
}

static uint32_t min_timeout(uint32_t a, uint32_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

/* Appends req's queries to b; returns the offset of the first, or UINT32_MAX without room. */
static uint32_t join(struct cbatch *b, const struct msg *req, uint32_t timeout_ms)
{
    const struct msg_search_req *s = &req->u.search_req;
    if (b->n + s->n_queries > b->cap) {
        uint32_t cap = b->cap ? b->cap : 8;
        while (cap < b->n + s->n_queries)
            cap *= 2;
        void *p = realloc(b->queries, cap * sizeof *b->queries);
        if (p == NULL)
            return UINT32_MAX;
        b->queries = p;
        b->cap = cap;
    }
    uint32_t off = b->n;
    memcpy(b->queries + off, s->queries, s->n_queries * sizeof *s->queries);
    b->n += s->n_queries;
    b->timeout_ms = min_timeout(b->timeout_ms, timeout_ms);
    b->refs++;
    return off;
}

static struct cbatch *batch_new(struct combiner *cb, const struct msg *req)
{
    struct cbatch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->req = *req;
    b->cb = cb;
    return b;
}

static void batch_unref(struct cbatch *b)
{
    if (--b->refs > 0)
        return;
    msg_reply_free(&b->rep);
    free(b->queries);
    free(b);
}

/* Sends b (outside the lock); wakes the members. Called with the lock held, returns with it. */
static void send_batch(struct combiner *cb, struct cbatch *b)
{
    cb->inflight++;
    cb->st.requests++;
    cb->st.queries += b->n;
    b->req.u.search_req.queries = b->queries;
    b->req.u.search_req.n_queries = b->n;
    pthread_mutex_unlock(&cb->mu);
    b->err[0] = '\0';
    int rc = tr_call(cb->r, &b->req, &b->rep, b->timeout_ms, b->err);
    pthread_mutex_lock(&cb->mu);
    b->rc = rc;
    b->done = true;
    cb->inflight--;
    pthread_cond_broadcast(&cb->cv);
}

/* The member's view of b's reply: its queries [off, off + n) of every partition. */
static int share_of(struct cbatch *b, uint32_t off, uint32_t n, struct comb_share *out,
                    char *errmsg)
{
    if (b->rc != DV_OK) {
        snprintf(errmsg, DV_ERRMSG_SIZE, "%s", b->err);
        return b->rc;
    }
    const struct msg_search_rep *r = &b->rep.m.u.search_rep;
    out->p_ = calloc(r->n_parts ? r->n_parts : 1, sizeof *out->p_);
    if (out->p_ == NULL) {
        dv_errmsg_set(errmsg, "out of memory");
        return DV_ENOMEM;
    }
    for (uint32_t j = 0; j < r->n_parts; j++) {
        out->p_[j] = r->parts[j];
        if (r->parts[j].err.code == 0) {
            if (r->parts[j].n < off + n) {
                dv_errmsg_set(errmsg, "node answered %u results for partition %u, asked %u",
                              r->parts[j].n, r->parts[j].part, b->n);
                free(out->p_);
                out->p_ = NULL;
                return DV_EPROTO;
            }
            out->p_[j].results = r->parts[j].results + off;
            out->p_[j].n = n;
        }
    }
    out->rep = (struct msg_search_rep){out->p_, r->n_parts};
    return DV_OK;
}

int combiner_search(struct combiner *cb, const struct msg *req, uint32_t timeout_ms,
                    struct comb_share *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    uint32_t nq = req->u.search_req.n_queries, off = UINT32_MAX;
    struct cbatch *b;
    pthread_mutex_lock(&cb->mu);
    cb->st.searches++;
    for (b = cb->head; b; b = b->next)
        if (same_target(&b->req, req) && b->n + nq <= BATCH_MAX_QUERIES &&
            (off = join(b, req, timeout_ms)) != UINT32_MAX)
            break;
    if (b == NULL) {
        /* The first of a new batch: it sends the batch when the node has a free slot and the
         * batches queued before it have gone (first come, first served). */
        b = batch_new(cb, req);
        if (b == NULL || (off = join(b, req, timeout_ms)) == UINT32_MAX) {
            pthread_mutex_unlock(&cb->mu);
            free(b);
            dv_errmsg_set(errmsg, "out of memory");
            return DV_ENOMEM;
        }
        if (cb->inflight >= cb->max_inflight || cb->head) {
            if (cb->tail)
                cb->tail->next = b;
            else
                cb->head = b;
            cb->tail = b;
            while (cb->head != b || cb->inflight >= cb->max_inflight)
                pthread_cond_wait(&cb->cv, &cb->mu);
            cb->head = b->next;
            if (cb->head == NULL)
                cb->tail = NULL;
            pthread_cond_broadcast(&cb->cv); /* the next batch's sender re-checks */
        }
        send_batch(cb, b);
    }
    while (!b->done)
        pthread_cond_wait(&cb->cv, &cb->mu);
    int rc = share_of(b, off, nq, out, errmsg);
    if (rc == DV_OK)
        out->batch = b;
    else
        batch_unref(b);
    pthread_mutex_unlock(&cb->mu);
    return rc;
}

bool combiner_try_take(struct combiner *cb, uint32_t nq)
{
    pthread_mutex_lock(&cb->mu);
    bool ok = cb->inflight < COMB_PLAIN_FACTOR * cb->max_inflight && cb->head == NULL;
    if (ok) {
        cb->inflight++;
        cb->st.searches++;
        cb->st.requests++;
        cb->st.queries += nq;
    }
    pthread_mutex_unlock(&cb->mu);
    return ok;
}

void combiner_put(struct combiner *cb)
{
    pthread_mutex_lock(&cb->mu);
    cb->inflight--;
    pthread_cond_broadcast(&cb->cv);
    pthread_mutex_unlock(&cb->mu);
}

void comb_share_release(struct comb_share *s)
{
    if (s->batch) {
        struct combiner *cb = s->batch->cb;
        pthread_mutex_lock(&cb->mu);
        batch_unref(s->batch);
        pthread_mutex_unlock(&cb->mu);
    }
    free(s->p_);
    memset(s, 0, sizeof *s);
}
