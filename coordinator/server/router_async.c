/* router_async.c - a coordinator's search without a worker thread: taken on the NNG thread that
 * received it (rpcsrv's run_async), sent to the nodes from there, merged and answered on the
 * NNG thread that receives the last node's reply. Only the plain case goes this way: a search
 * of the default read consistency whose every partition has an in-sync replica on a serving
 * node. Anything else, and any failure of a node call, goes to a worker (router_search.c),
 * which retries other replicas, reads the map again and names errors: the request is then
 * run from the start, so the two paths cannot answer differently. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "router_int.h"

/* One search in flight. */
struct asearch {
    struct coord *c;
    struct rpcsrv_req *h;
    struct msg req; /* decoded; points into the request's bytes (valid until finish/requeue) */
    uint32_t metric;
    struct tr_job *jobs;
    size_t n_jobs;
    atomic_size_t left;
    struct msg *reqs;
    struct msg_target *targets;
    char coll[CMAP_NAME_MAX + 1];
};

static void asearch_free(struct asearch *a)
{
    for (size_t i = 0; a->jobs && i < a->n_jobs; i++)
        msg_reply_free(&a->jobs[i].rep);
    free(a->jobs);
    free(a->reqs);
    free(a->targets);
    msg_free(&a->req);
    free(a);
}

/* True when every node answered every partition it was asked for, each with the request's
 * number of result lists. */
static bool all_answered(const struct asearch *a)
{
    uint32_t nq = a->req.u.csearch_req.n_queries;
    for (size_t i = 0; i < a->n_jobs; i++) {
        const struct tr_job *j = &a->jobs[i];
        if (j->rc != DV_OK)
            return false;
        const struct msg_search_rep *sr = &j->rep.m.u.search_rep;
        if (sr->n_parts != j->req->u.search_req.n_parts)
            return false;
        for (uint32_t k = 0; k < sr->n_parts; k++)
            if (sr->parts[k].err.code != 0 || sr->parts[k].n != nq)
                return false;
    }
    return true;
}

/* Merges the nodes' hits per query (best first, the k best) and encodes the reply into out. */
static int answer(struct asearch *a, struct buf *out, char *errmsg)
{
    const struct msg_csearch_req *s = &a->req.u.csearch_req;
    uint32_t nq = s->n_queries;
    size_t total = 0;
    for (size_t i = 0; i < a->n_jobs; i++) {
        const struct msg_search_rep *sr = &a->jobs[i].rep.m.u.search_rep;
        for (uint32_t k = 0; k < sr->n_parts; k++)
            for (uint32_t q = 0; q < nq; q++)
                total += sr->parts[k].results[q].n;
    }
    struct msg_hits *results = calloc(nq ? nq : 1, sizeof *results);
    struct msg_hit *pool = malloc((total ? total : 1) * sizeof *pool);
    int rc = DV_ENOMEM;
    if (results && pool) {
        int (*order)(const void *, const void *) = msg_hit_order(a->metric);
        size_t used = 0;
        for (uint32_t q = 0; q < nq; q++) {
            struct msg_hit *h = pool + used;
            size_t cnt = 0;
            for (size_t i = 0; i < a->n_jobs; i++) {
                const struct msg_search_rep *sr = &a->jobs[i].rep.m.u.search_rep;
                for (uint32_t k = 0; k < sr->n_parts; k++) {
                    const struct msg_hits *x = &sr->parts[k].results[q];
                    memcpy(h + cnt, x->hits, x->n * sizeof *h);
                    cnt += x->n;
                }
            }
            qsort(h, cnt, sizeof *h, order);
            uint32_t k = s->queries[q].k;
            results[q] = (struct msg_hits){h, (uint32_t)(cnt < k ? cnt : k)};
            used += cnt;
        }
        struct msg rep = {.type = MSG_P_SEARCH, .reply = true, .req_id = a->req.req_id};
        rep.u.csearch_rep = (struct msg_csearch_rep){results, nq, false, NULL, 0};
        rc = msg_encode(&rep, out, errmsg);
    }
    free(results);
    free(pool);
    return rc;
}

/* The last node's reply is in (on its NNG thread): answer, or hand the request to a worker. */
static void finish(struct asearch *a)
{
    struct rpcsrv_result res = {.type = MSG_P_SEARCH, .req_id = a->req.req_id, .code = DV_OK};
    struct buf out;
    buf_init(&out);
    if (!all_answered(a) || answer(a, &out, res.errmsg) != DV_OK) {
        struct rpcsrv_req *h = a->h;
        buf_free(&out);
        asearch_free(a); /* before the requeue: the request's bytes go with it */
        rpcsrv_requeue(h);
        return;
    }
    struct rpcsrv_req *h = a->h;
    asearch_free(a);
    rpcsrv_finish(h, &out, &res);
    buf_free(&out);
}

static void job_done(void *arg, struct tr_job *j)
{
    (void)j;
    struct asearch *a = arg;
    if (atomic_fetch_sub(&a->left, 1) == 1)
        finish(a);
}

/* The calls of a plain search from the map: one per node, each naming the partitions read from
 * it. False when the search is not a plain one. */
static bool plan(struct coord *c, struct asearch *a)
{
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    const struct cmap_coll *cl = cmap_coll_find(m, a->coll);
    const struct msg_csearch_req *s = &a->req.u.csearch_req;
    bool ok = cl != NULL;
    for (uint32_t q = 0; ok && q < s->n_queries; q++)
        ok = s->queries[q].dim == cl->cfg.dim;
    uint32_t np = ok ? cl->cfg.n_parts : 0;
    uint32_t *via = ok ? malloc(np * sizeof *via) : NULL;
    if (ok) {
        a->metric = cl->cfg.metric;
        a->targets = malloc(np * sizeof *a->targets);
        a->reqs = calloc(np, sizeof *a->reqs);
        a->jobs = calloc(np, sizeof *a->jobs);
        ok = via && a->targets && a->reqs && a->jobs;
    }
    uint64_t turn = atomic_fetch_add(&c->read_turn, 1);
    for (uint32_t p = 0; ok && p < np; p++) {
        via[p] = router_read_node(m, &cl->parts[p], UINT32_MAX, turn + p);
        ok = via[p] != UINT32_MAX && router_serves(m, via[p]);
    }
    uint32_t nt = 0;
    for (uint32_t p = 0; ok && p < np; p++) {
        if (via[p] == UINT32_MAX)
            continue;
        uint32_t node = via[p], start = nt;
        for (uint32_t p2 = p; p2 < np; p2++)
            if (via[p2] == node) {
                a->targets[nt++] = (struct msg_target){p2, cl->parts[p2].epoch};
                via[p2] = UINT32_MAX;
            }
        struct call k = {0};
        router_aim(c, m, node, &k);
        if (k.r == NULL) {
            ok = false;
            break;
        }
        struct msg *q = &a->reqs[a->n_jobs];
        q->type = MSG_SEARCH;
        q->addr.coll = S(a->coll);
        q->u.search_req =
            (struct msg_search_req){&a->targets[start], nt - start, s->queries, s->n_queries};
        struct tr_job *j = &a->jobs[a->n_jobs++];
        j->p = k.r;
        j->req = q;
        j->timeout_ms = s->timeout_ms;
    }
    free(via);
    craft_map_release(c->raft, ref);
    return ok;
}

bool coord_run_async(void *arg, const void *in, size_t n, struct rpcsrv_req *h)
{
    struct coord *c = arg;
    int type = MSG_ERROR;
    uint64_t id;
    msg_peek_header(in, n, &type, &id);
    if (type != MSG_P_SEARCH || atomic_load(&c->draining))
        return false;
    struct asearch *a = calloc(1, sizeof *a);
    char err[DV_ERRMSG_SIZE];
    if (a == NULL)
        return false;
    a->c = c;
    a->h = h;
    if (msg_decode(in, n, &a->req, err) != DV_OK || a->req.reply || a->req.read_consistency != 0 ||
        a->req.addr.coll.len == 0 || a->req.addr.coll.len > CMAP_NAME_MAX) {
        asearch_free(a);
        return false;
    }
    memcpy(a->coll, a->req.addr.coll.p, a->req.addr.coll.len);
    a->coll[a->req.addr.coll.len] = '\0';
    const struct msg_csearch_req *s = &a->req.u.csearch_req;
    bool ok = strlen(a->coll) == a->req.addr.coll.len && s->n_queries > 0;
    for (uint32_t q = 0; ok && q < s->n_queries; q++)
        ok = msg_query_check(&s->queries[q], q, err) == DV_OK;
    if (!ok || !plan(c, a) || a->n_jobs == 0) {
        asearch_free(a);
        return false;
    }
    /* From here the request is ours: the last reply finishes it (maybe before the loop ends). */
    atomic_init(&a->left, a->n_jobs);
    size_t n_jobs = a->n_jobs;
    struct tr_job *jobs = a->jobs;
    for (size_t i = 0; i < n_jobs; i++)
        tr_call_start(&jobs[i], job_done, a);
    return true;
}
