/* router_async.c - a coordinator's search without a worker thread: taken on the NNG thread that
 * received it (rpcsrv's run_async), sent to the nodes from there, merged and answered on the
 * NNG thread that receives the last node's reply. Only the plain case goes this way: a search
 * of the default read consistency whose every partition has an in-sync replica on a serving
 * node. Anything else, and any failure of a node call, goes to a worker (router_search.c),
 * which retries other replicas, reads the map again and names errors: the request is then
 * run from the start, so the two paths cannot answer differently.
 *
 * When every node of the search has a search port (node_search_port, on by default), the
 * receiving thread sends the requests there and waits for the replies itself (tcpcall_many):
 * no NNG operation and no other thread per node call. It blocks that NNG thread for the
 * search's time, as a worker would be. A port that refuses or drops the connection is left
 * alone for ROUTER_SILENT_MS and the same calls go over NNG. */
#include <pthread.h>
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
    struct rpcsrv_req *h; /* taken from rpcsrv; NULL: a thread waits or cb is called */
    coord_search_done cb; /* coord_search_start's */
    void *cb_arg;
    pthread_mutex_t mu; /* the waiting thread's */
    pthread_cond_t cv;
    bool done;
    const struct msg *reqp; /* the request: &req, or the waiting thread's */
    struct msg req; /* decoded; points into the request's bytes (valid until finish/requeue) */
    uint32_t metric;
    struct tr_job *jobs;
    struct combiner **combs;    /* [n_jobs] the node's combiner whose slot the job holds */
    uint32_t *nodes;            /* [n_jobs] the node's number in the map */
    struct coord_sport **ports; /* [n_jobs] the node's search port, NULL: none */
    bool use_ports;             /* every node has a usable one: no combiner slots taken */
    size_t n_jobs;
    atomic_size_t left;
    struct msg *reqs;
    struct msg_target *targets;
    char coll[CMAP_NAME_MAX + 1];
};

static void asearch_free(struct asearch *a)
{
    for (size_t i = 0; a->jobs && i < a->n_jobs; i++)
        msg_reply_free(&a->jobs[i].rep); /* a no-op for the replies taken */
    for (size_t i = 0; a->combs && i < a->n_jobs; i++)
        if (a->combs[i]) /* not started (a plan given up) */
            combiner_put(a->combs[i]);
    free(a->combs);
    free(a->nodes);
    free(a->ports);
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
    uint32_t nq = a->reqp->u.csearch_req.n_queries;
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

/* The nodes' replies, for msg_hits_merge; NULL when out of memory. */
static const struct msg_search_rep **replies(const struct asearch *a)
{
    const struct msg_search_rep **reps = malloc((a->n_jobs ? a->n_jobs : 1) * sizeof *reps);
    for (size_t i = 0; reps && i < a->n_jobs; i++)
        reps[i] = &a->jobs[i].rep.m.u.search_rep;
    return reps;
}

/* The merged hits as an encoded points_search reply, into out. */
static int answer(struct asearch *a, struct buf *out, char *errmsg)
{
    const struct msg_csearch_req *s = &a->reqp->u.csearch_req;
    uint32_t nq = s->n_queries;
    const struct msg_search_rep **reps = replies(a);
    size_t total = reps ? msg_hits_total(reps, a->n_jobs, nq) : 0;
    struct msg_hits *results = calloc(nq ? nq : 1, sizeof *results);
    struct msg_hit *pool = malloc((total ? total : 1) * sizeof *pool);
    int rc = DV_ENOMEM;
    if (reps && results && pool) {
        msg_hits_merge(reps, a->n_jobs, s->queries, nq, a->metric, NULL, results, pool);
        struct msg rep = {.type = MSG_P_SEARCH, .reply = true, .req_id = a->reqp->req_id};
        rep.u.csearch_rep = (struct msg_csearch_rep){results, nq, false, NULL, 0};
        rc = msg_encode(&rep, out, errmsg);
    }
    free(reps);
    free(results);
    free(pool);
    return rc;
}

/* coord_search_start's finish: the merged hits to the callback, or NULL. */
static void callback(struct asearch *a)
{
    const struct msg_csearch_req *s = &a->reqp->u.csearch_req;
    uint32_t nq = s->n_queries;
    bool ok = all_answered(a);
    const struct msg_search_rep **reps = ok ? replies(a) : NULL;
    size_t total = reps ? msg_hits_total(reps, a->n_jobs, nq) : 0;
    struct msg_hits *results = reps ? calloc(nq, sizeof *results) : NULL;
    struct msg_hit *pool = reps ? malloc((total ? total : 1) * sizeof *pool) : NULL;
    coord_search_done cb = a->cb;
    void *arg = a->cb_arg;
    if (results && pool) {
        msg_hits_merge(reps, a->n_jobs, s->queries, nq, a->metric, NULL, results, pool);
        struct msg_csearch_rep rep = {results, nq, false, NULL, 0};
        cb(arg, &rep, a->metric);
    } else {
        asearch_free(a); /* the caller may free the request: nothing may point into it */
        a = NULL;
        cb(arg, NULL, 0);
    }
    free(reps);
    free(results);
    free(pool);
    if (a)
        asearch_free(a);
}

/* The last node's reply is in (on its NNG thread): answer, or hand the request to a worker. */
static void finish(struct asearch *a)
{
    if (a->cb) {
        callback(a);
        return;
    }
    if (a->h == NULL) { /* a thread waits for it */
        pthread_mutex_lock(&a->mu);
        a->done = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        return;
    }
    struct rpcsrv_result res = {.type = MSG_P_SEARCH, .req_id = a->reqp->req_id, .code = DV_OK};
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
    struct asearch *a = arg;
    size_t i = (size_t)(j - a->jobs);
    combiner_put(a->combs[i]); /* the node's slot is free again */
    a->combs[i] = NULL;
    router_note(a->c, a->nodes[i], j->rc);
    if (atomic_fetch_sub(&a->left, 1) == 1)
        finish(a);
}

/* The calls of a plain search from the map: one per node, each naming the partitions read from
 * it. False when the search is not a plain one. */
static bool plan(struct coord *c, struct asearch *a)
{
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    const struct cmap_coll *cl = cmap_coll_resolve(m, a->coll);
    const struct msg_csearch_req *s = &a->reqp->u.csearch_req;
    bool ok = cl != NULL;
    if (ok) /* the nodes know the collection, not its aliases */
        snprintf(a->coll, sizeof a->coll, "%s", cl->name);
    for (uint32_t q = 0; ok && q < s->n_queries; q++)
        ok = s->queries[q].dim == cl->cfg.dim && cl->cfg.n_spaces == 0 &&
             s->queries[q].using.len == 0;
    uint32_t np = ok ? cl->cfg.n_parts : 0;
    uint32_t *via = ok ? malloc(np * sizeof *via) : NULL;
    if (ok) {
        a->metric = cl->cfg.metric;
        router_default_ef(cl, s->queries, s->n_queries);
        a->targets = malloc(np * sizeof *a->targets);
        a->reqs = calloc(np, sizeof *a->reqs);
        a->jobs = calloc(np, sizeof *a->jobs);
        a->combs = calloc(np, sizeof *a->combs);
        a->nodes = calloc(np, sizeof *a->nodes);
        a->ports = calloc(np, sizeof *a->ports);
        ok = via && a->targets && a->reqs && a->jobs && a->combs && a->nodes && a->ports;
    }
    uint64_t turn = atomic_fetch_add(&c->read_turn, 1);
    for (uint32_t p = 0; ok && p < np; p++) {
        via[p] = router_read_node(c, m, &cl->parts[p], UINT32_MAX, turn + p);
        /* A node that did not answer lately: the worker path says so, or waits for it once. */
        ok = via[p] != UINT32_MAX && router_serves(m, via[p]) && !router_silent(c, via[p]);
    }
    struct msg_search_group *groups = ok ? malloc(np * sizeof *groups) : NULL;
    uint32_t ng = ok && groups ? msg_search_group(via, np, a->targets, groups) : 0;
    ok = ok && groups;
    for (uint32_t g = 0; ok && g < ng; g++) {
        struct msg_target *first = a->targets + groups[g].first;
        for (uint32_t j = 0; j < groups[g].n; j++)
            first[j].epoch = cl->parts[first[j].part].epoch;
        struct call k = {0};
        router_aim(c, m, groups[g].node, &k);
        if (k.r == NULL || k.comb == NULL) {
            ok = false;
            break;
        }
        a->combs[a->n_jobs] = k.comb; /* a candidate until its slot is taken, below */
        a->nodes[a->n_jobs] = groups[g].node;
        const struct cmap_node *nd = cmap_node_get(m, groups[g].node);
        struct coord_sport *sp = c->o.node_search_port && nd && nd->search_url[0]
                                     ? coord_search_port(c, nd->search_url)
                                     : NULL;
        if (sp && sp->tc && atomic_load(&sp->off_until_ms) <= clock_mono_ms())
            a->ports[a->n_jobs] = sp;
        struct msg *q = &a->reqs[a->n_jobs];
        q->type = MSG_SEARCH;
        q->addr.coll = S(a->coll);
        q->u.search_req = (struct msg_search_req){first, groups[g].n, s->queries, s->n_queries};
        struct tr_job *j = &a->jobs[a->n_jobs++];
        j->p = k.r;
        j->req = q;
        j->timeout_ms = s->timeout_ms;
    }
    /* Over NNG, a node with node_inflight searches out: the worker path combines them. Over
     * the search ports a node takes each search on a thread of its own: no slot. */
    a->use_ports = ok;
    for (size_t i = 0; ok && i < a->n_jobs; i++)
        a->use_ports = a->use_ports && a->ports[i] != NULL;
    for (size_t i = 0; i < a->n_jobs; i++) {
        struct combiner *cb = a->combs[i];
        a->combs[i] = NULL;
        if (ok && !a->use_ports) {
            if (combiner_try_take(cb, s->n_queries))
                a->combs[i] = cb; /* taken: put back when its reply is in */
            else
                ok = false;
        }
    }
    free(groups);
    free(via);
    craft_map_release(c->raft, ref);
    return ok;
}

/* The request's checks and plan (a->reqp set): false when it is not a plain search. */
static bool plain(struct coord *c, struct asearch *a)
{
    const struct msg *r = a->reqp;
    char err[DV_ERRMSG_SIZE];
    if (r->read_consistency != 0 || r->addr.coll.len == 0 || r->addr.coll.len > CMAP_NAME_MAX)
        return false;
    memcpy(a->coll, r->addr.coll.p, r->addr.coll.len);
    a->coll[r->addr.coll.len] = '\0';
    const struct msg_csearch_req *s = &r->u.csearch_req;
    bool ok = strlen(a->coll) == r->addr.coll.len && s->n_queries > 0;
    for (uint32_t q = 0; ok && q < s->n_queries; q++)
        ok = msg_query_check(&s->queries[q], q, err) == DV_OK;
    return ok && plan(c, a) && a->n_jobs > 0;
}

/* The node calls through the nodes' search ports (a->use_ports), waited for on this thread:
 * true. False when one refused (that port is then left alone for ROUTER_SILENT_MS): nothing
 * is answered, and the request goes to the worker path. */
static bool run_ports(struct asearch *a)
{
    uint64_t now = clock_mono_ms();
    struct tcpcall_job *tj = calloc(a->n_jobs, sizeof *tj);
    if (tj == NULL)
        return false;
    for (size_t i = 0; i < a->n_jobs; i++) {
        uint32_t tmo = a->jobs[i].timeout_ms ? a->jobs[i].timeout_ms : a->c->o.request_timeout_ms;
        tj[i] =
            (struct tcpcall_job){.c = a->ports[i]->tc, .req = a->jobs[i].req, .timeout_ms = tmo};
    }
    tcpcall_many(tj, a->n_jobs);
    /* DV_EIO: no connection, or closed without a reply; a timeout is the node's, as over NNG */
    bool refused = false;
    for (size_t i = 0; i < a->n_jobs; i++)
        if (tj[i].rc == DV_EIO) {
            atomic_store(&a->ports[i]->off_until_ms, now + ROUTER_SILENT_MS);
            refused = true;
        }
    if (refused) {
        for (size_t i = 0; i < a->n_jobs; i++)
            msg_reply_free(&tj[i].rep);
        free(tj);
        return false;
    }
    for (size_t i = 0; i < a->n_jobs; i++) {
        struct tr_job *j = &a->jobs[i];
        j->rc = tj[i].rc;
        j->rep = tj[i].rep;
        memcpy(j->errmsg, tj[i].errmsg, sizeof j->errmsg);
        router_note(a->c, a->nodes[i], j->rc);
    }
    free(tj);
    return true;
}

/* Runs every node call: on the search ports, then finish(), true; or started over NNG, where
 * the last one to finish runs finish(), true. False when the search ports refused: the caller
 * still owns the request (nothing was answered) and a is freed. */
static bool start(struct asearch *a)
{
    if (a->use_ports) {
        if (!run_ports(a)) {
            asearch_free(a);
            return false;
        }
        finish(a);
        return true;
    }
    atomic_init(&a->left, a->n_jobs);
    size_t n_jobs = a->n_jobs;
    struct tr_job *jobs = a->jobs;
    for (size_t i = 0; i < n_jobs; i++) /* a may be gone once the last has started */
        tr_call_start(&jobs[i], job_done, a);
    return true;
}

bool router_search_plain(struct coord *c, const struct msg *req, struct msg *rep,
                         struct coord_tmp *t)
{
    struct asearch *a = calloc(1, sizeof *a);
    if (a == NULL)
        return false;
    a->c = c;
    a->reqp = req;
    if (!plain(c, a)) {
        asearch_free(a);
        return false;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (!start(a))
        return false;
    pthread_mutex_lock(&a->mu);
    while (!a->done)
        pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    bool ok = all_answered(a);
    uint32_t nq = req->u.csearch_req.n_queries;
    const struct msg_search_rep **reps = ok ? replies(a) : NULL;
    size_t total = reps ? msg_hits_total(reps, a->n_jobs, nq) : 0;
    struct msg_hits *results = reps ? router_tmp_alloc(t, nq * sizeof *results) : NULL;
    struct msg_hit *pool = reps ? router_tmp_alloc(t, (total ? total : 1) * sizeof *pool) : NULL;
    t->calls = ok ? calloc(a->n_jobs, sizeof *t->calls) : NULL;
    ok = ok && reps && results && pool && t->calls;
    if (!ok) {
        free(t->calls);
        t->calls = NULL;
    } else {
        msg_hits_merge(reps, a->n_jobs, req->u.csearch_req.queries, nq, a->metric, NULL, results,
                       pool);
        for (size_t i = 0; i < a->n_jobs; i++) { /* the hits point into the replies */
            t->calls[i].rep = a->jobs[i].rep;
            memset(&a->jobs[i].rep, 0, sizeof a->jobs[i].rep);
        }
        t->n_calls = a->n_jobs;
        rep->u.csearch_rep = (struct msg_csearch_rep){results, nq, false, NULL, 0};
    }
    free(reps);
    asearch_free(a);
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
    a->reqp = &a->req;
    if (msg_decode(in, n, &a->req, err) != DV_OK || a->req.reply || !plain(c, a)) {
        asearch_free(a);
        return false;
    }
    /* the request is ours now: the last reply finishes it, maybe before start returns */
    return start(a);
}

bool coord_search_start(void *arg, const struct msg *req, coord_search_done done, void *done_arg)
{
    struct coord *c = arg;
    if (req->type != MSG_P_SEARCH || atomic_load(&c->draining))
        return false;
    struct asearch *a = calloc(1, sizeof *a);
    if (a == NULL)
        return false;
    a->c = c;
    a->reqp = req;
    a->cb = done;
    a->cb_arg = done_arg;
    if (!plain(c, a)) {
        asearch_free(a);
        return false;
    }
    return start(a);
}
