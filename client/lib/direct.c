/* direct.c - one hop: a search sent by libdvec straight to the nodes that hold the collection's
 * partitions (one request per node, all at once: to their search ports when every node of the
 * search has one, else over NNG), and the hits merged here as a coordinator would. Anything
 * unusual goes back to the caller, which asks a coordinator instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "clock.h"

/* A search port that refused or dropped a connection is left alone this long (ms). */
#define CL_SEARCH_OFF_MS 1000

/* What a direct search's reply points into. */
struct direct_mem {
    struct rpc_job *jobs;
    uint32_t *nodes; /* [n_jobs]: the route node of each job */
    size_t n_jobs;
    struct msg *reqs;
    struct msg_target *targets;
    struct msg_hits *results;
    struct msg_hit *pool;
};

static void direct_free(void *p)
{
    struct direct_mem *d = p;
    if (d == NULL)
        return;
    for (size_t i = 0; d->jobs && i < d->n_jobs; i++)
        msg_reply_free(&d->jobs[i].rep);
    free(d->jobs);
    free(d->nodes);
    free(d->reqs);
    free(d->targets);
    free(d->results);
    free(d->pool);
    free(d);
}

/* One request per node for every partition, each partition read from one of its in-sync
 * replicas in turn. False when a partition has none. */
static bool plan(dvec_client *c, struct cl_route *r, const char *coll,
                 const struct msg_csearch_req *s, struct direct_mem *d)
{
    const struct msg_route_rep *t = &r->rep.m.u.route_rep;
    uint32_t np = t->n_parts;
    uint32_t *via = malloc(np * sizeof *via);
    d->targets = malloc(np * sizeof *d->targets);
    d->reqs = calloc(np, sizeof *d->reqs);
    d->jobs = calloc(np, sizeof *d->jobs);
    d->nodes = calloc(np, sizeof *d->nodes);
    bool ok = via && d->targets && d->reqs && d->jobs && d->nodes;
    uint64_t turn = atomic_fetch_add(&c->turn, 1);
    for (uint32_t p = 0; ok && p < np; p++) {
        const struct msg_route_part *rp = &t->parts[p];
        if (rp->n_readers == 0)
            ok = false;
        else
            via[p] = rp->readers[(turn + p) % rp->n_readers];
    }
    struct msg_search_group *groups = ok ? malloc(np * sizeof *groups) : NULL;
    uint32_t ng = groups ? msg_search_group(via, np, d->targets, groups) : 0;
    ok = ok && groups;
    for (uint32_t g = 0; ok && g < ng; g++) {
        struct msg_target *first = d->targets + groups[g].first;
        for (uint32_t j = 0; j < groups[g].n; j++)
            first[j].epoch = t->parts[first[j].part].epoch;
        struct msg *q = &d->reqs[d->n_jobs];
        q->type = MSG_SEARCH;
        /* an alias's route names the collection the nodes know */
        q->addr.coll = t->coll.len ? t->coll : (struct msg_str){coll, (uint32_t)strlen(coll)};
        q->u.search_req = (struct msg_search_req){first, groups[g].n, s->queries, s->n_queries};
        d->nodes[d->n_jobs] = groups[g].node;
        struct rpc_job *j = &d->jobs[d->n_jobs++];
        j->r = r->conns[groups[g].node];
        j->req = q;
    }
    free(groups);
    free(via);
    return ok;
}

/* Errors that say the route is out of date: a node that did not answer, is stopping, has a
 * newer map, or does not hold the partition (any longer). */
static bool route_error(int code)
{
    return code == DV_EIO || code == DV_ETIMEDOUT || code == DV_ESHUTDOWN || code == DV_ESTALE ||
           code == DV_ENOTFOUND;
}

/* True when every node answered every partition it was asked for; *stale when a failure says
 * the route is out of date. */
static bool all_answered(const struct direct_mem *d, bool *stale)
{
    bool ok = true;
    *stale = false;
    for (size_t i = 0; i < d->n_jobs; i++) {
        const struct rpc_job *j = &d->jobs[i];
        if (j->rc != DV_OK) {
            ok = false;
            *stale |= route_error(j->rc);
            continue;
        }
        const struct msg_search_rep *sr = &j->rep.m.u.search_rep;
        if (sr->n_parts != j->req->u.search_req.n_parts)
            ok = false;
        for (uint32_t k = 0; k < sr->n_parts; k++)
            if (sr->parts[k].err.code != 0) {
                ok = false;
                *stale |= route_error(sr->parts[k].err.code);
            }
    }
    return ok;
}

/* Per query, every partition's hits best first, the k best. */
static bool merge(const struct msg_route_rep *t, const struct msg_csearch_req *s,
                  struct direct_mem *d, struct msg_csearch_rep *out)
{
    uint32_t nq = s->n_queries;
    const struct msg_search_rep **reps = malloc((d->n_jobs ? d->n_jobs : 1) * sizeof *reps);
    if (reps == NULL)
        return false;
    bool ok = true;
    for (size_t i = 0; i < d->n_jobs; i++) {
        reps[i] = &d->jobs[i].rep.m.u.search_rep;
        for (uint32_t k = 0; k < reps[i]->n_parts; k++)
            ok = ok && reps[i]->parts[k].n == nq;
    }
    size_t total = ok ? msg_hits_total(reps, d->n_jobs, nq) : 0;
    d->results = ok ? calloc(nq ? nq : 1, sizeof *d->results) : NULL;
    d->pool = ok ? malloc((total ? total : 1) * sizeof *d->pool) : NULL;
    ok = ok && d->results && d->pool;
    if (ok) {
        msg_hits_merge(reps, d->n_jobs, s->queries, nq, t->cfg.metric, NULL, d->results, d->pool);
        *out = (struct msg_csearch_rep){d->results, nq, false, NULL, 0};
    }
    free(reps);
    return ok;
}

/* The calls of d through the nodes' search ports, when every node of them has one that is not
 * left alone; false when they did not run, or one found its port refusing or closing (that
 * port is then left alone for a while and the caller runs them over NNG). */
static bool call_search_ports(struct cl_route *r, struct direct_mem *d, uint32_t timeout_ms)
{
    uint64_t now = clock_mono_ms();
    for (size_t i = 0; i < d->n_jobs; i++) {
        const struct cl_conn *k = r->search[d->nodes[i]];
        if (k == NULL || atomic_load(&k->off_until_ms) > now)
            return false;
    }
    struct tcpcall_job *tj = calloc(d->n_jobs ? d->n_jobs : 1, sizeof *tj);
    if (tj == NULL)
        return false;
    for (size_t i = 0; i < d->n_jobs; i++)
        tj[i] = (struct tcpcall_job){
            .c = r->search[d->nodes[i]]->tcp, .req = d->jobs[i].req, .timeout_ms = timeout_ms};
    tcpcall_many(tj, d->n_jobs);
    /* DV_EIO: no connection, or it closed without a reply (the node stopped, or a port in
     * the route that is not the node's); a timeout is the node's, as over NNG */
    bool refused = false;
    for (size_t i = 0; i < d->n_jobs; i++)
        if (tj[i].rc == DV_EIO) {
            atomic_store(&r->search[d->nodes[i]]->off_until_ms, now + CL_SEARCH_OFF_MS);
            refused = true;
        }
    for (size_t i = 0; i < d->n_jobs; i++) {
        if (refused) {
            msg_reply_free(&tj[i].rep);
            continue;
        }
        d->jobs[i].rc = tj[i].rc;
        d->jobs[i].rep = tj[i].rep;
        memcpy(d->jobs[i].errmsg, tj[i].errmsg, sizeof tj[i].errmsg);
    }
    free(tj);
    return !refused;
}

bool cl_direct_search(dvec_client *c, const char *coll, const struct msg_csearch_req *s,
                      uint32_t timeout_ms, struct msg_reply *rep)
{
    memset(rep, 0, sizeof *rep);
    if (atomic_load(&c->read_consistency) != 0)
        return false; /* reads of several replicas are a coordinator's */
    struct cl_route *r = cl_route_get(c, coll);
    if (r == NULL)
        return false;
    const struct msg_route_rep *t = &r->rep.m.u.route_rep;
    for (uint32_t q = 0; q < s->n_queries; q++)
        if (s->queries[q].dim != t->cfg.dim || t->cfg.n_spaces > 0 ||
            s->queries[q].using.len > 0) { /* named vectors: a coordinator's */
            cl_route_put(c, r);            /* the coordinator says what is wrong */
            return false;
        }
    /* A query without an ef gets the collection's default from the route (the map's, which a
     * collection update may have changed since the replicas were created), as a coordinator
     * gives it (router_default_ef). */
    for (uint32_t q = 0; q < s->n_queries; q++)
        if (s->queries[q].ef == 0)
            s->queries[q].ef = t->cfg.ef_search;
    struct direct_mem *d = calloc(1, sizeof *d);
    bool ok = d && plan(c, r, coll, s, d);
    if (ok) {
        for (size_t i = 0; i < d->n_jobs; i++)
            d->jobs[i].timeout_ms = timeout_ms;
        if (!call_search_ports(r, d, timeout_ms))
            rpc_call_many(d->jobs, d->n_jobs);
        bool stale;
        ok = all_answered(d, &stale);
        if (stale)
            cl_route_stale(c, r); /* the next call asks for a new route */
    }
    if (ok)
        ok = merge(t, s, d, &rep->m.u.csearch_rep);
    cl_route_put(c, r);
    if (!ok) {
        direct_free(d);
        memset(rep, 0, sizeof *rep);
        return false;
    }
    rep->m.type = MSG_P_SEARCH;
    rep->m.reply = true;
    rep->mem_ = d;
    rep->free_ = direct_free;
    return true;
}
