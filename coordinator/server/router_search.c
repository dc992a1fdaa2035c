/* router_search.c - a search through the cluster: one request per node naming the partitions
 * read from it, a second round on other replicas for those that did not answer, the hits
 * merged best first. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "router_int.h"

/* ---- search ------------------------------------------------------------------------------ */

/* Search calls, one per node, for the partitions `want` marks, each read from via[p].
 * Appends to calls[*ncalls]; targets[*nt] gets the partitions' (part, epoch). */
static void search_calls(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                         const struct msg_csearch_req *s, const bool *want, const uint32_t *via,
                         uint32_t timeout_ms, struct call *calls, size_t *ncalls,
                         struct msg_target *targets, uint32_t *nt, uint32_t *scratch,
                         struct msg_search_group *groups)
{
    uint32_t np = cl->cfg.n_parts;
    for (uint32_t p = 0; p < np; p++) {
        scratch[p] = want[p] ? via[p] : UINT32_MAX;
        if (want[p] && via[p] == CMAP_NONE) {
            /* No replica left: a call that is not sent, its error naming why (router_aim). */
            struct call *k = &calls[(*ncalls)++];
            k->req.type = MSG_SEARCH;
            k->req.addr.coll = S(cl->name);
            k->part = p;
            targets[*nt] = (struct msg_target){p, cl->parts[p].epoch};
            k->req.u.search_req =
                (struct msg_search_req){&targets[(*nt)++], 1, s->queries, s->n_queries};
            router_aim(c, m, CMAP_NONE, k);
        }
    }
    struct msg_target *tg = targets + *nt;
    uint32_t ng = msg_search_group(scratch, np, tg, groups);
    for (uint32_t g = 0; g < ng; g++) {
        struct call *k = &calls[(*ncalls)++];
        k->req.type = MSG_SEARCH;
        k->req.addr.coll = S(cl->name);
        struct msg_target *first = tg + groups[g].first;
        for (uint32_t j = 0; j < groups[g].n; j++)
            first[j].epoch = cl->parts[first[j].part].epoch;
        k->part = first[0].part;
        k->req.u.search_req = (struct msg_search_req){first, groups[g].n, s->queries, s->n_queries};
        k->timeout_ms = timeout_ms;
        router_aim(c, m, groups[g].node, k);
        *nt += groups[g].n;
    }
}

/* Marks in answered[] the partitions calls[from, to) answered without error. */
static void mark_answered(const struct call *calls, size_t from, size_t to, bool *answered)
{
    for (size_t i = from; i < to; i++) {
        if (calls[i].rc != DV_OK)
            continue;
        const struct msg_search_rep *r = &calls[i].rep.m.u.search_rep;
        for (uint32_t j = 0; j < r->n_parts; j++)
            if (r->parts[j].err.code == 0)
                answered[r->parts[j].part] = true;
    }
}

int router_check_query(const struct cmap_coll *cl, const struct msg_query *q, uint32_t i,
                       uint32_t *metric, char *errmsg)
{
    const struct cmap_coll_cfg *g = &cl->cfg;
    if (g->n_spaces == 0) {
        if (q->using.len > 0) {
            dv_errmsg_set(errmsg, "query %u: collection %s has no named vectors (using \"%.*s\")",
                          i, cl->name, (int)q->using.len, q->using.p);
            return DV_EINVAL;
        }
        if (q->dim != g->dim) {
            dv_errmsg_set(errmsg, "query %u: wrong dimension: %u, collection %s has %u dimensions",
                          i, q->dim, cl->name, g->dim);
            return DV_EDIM;
        }
        *metric = g->metric;
        return DV_OK;
    }
    for (uint32_t k = 0; k < g->n_spaces; k++) {
        const struct cmap_vspace *v = &g->spaces[k];
        if (strlen(v->name) != q->using.len || memcmp(v->name, q->using.p, q->using.len) != 0)
            continue;
        uint32_t rows = q->rows ? q->rows : 1;
        if ((v->kind == 0 && q->dim != v->dim) || (v->kind == 2 && q->dim != rows * v->dim)) {
            dv_errmsg_set(errmsg,
                          "query %u: wrong dimension: %u, vector \"%s\" of collection %s has %u "
                          "dimensions",
                          i, v->kind == 2 ? q->dim / rows : q->dim, v->name, cl->name, v->dim);
            return DV_EDIM;
        }
        if (v->kind == 1 && q->dim > 0 && q->idx == NULL) {
            dv_errmsg_set(errmsg, "query %u: sparse vector \"%s\" needs indices", i, v->name);
            return DV_EINVAL;
        }
        *metric = v->kind == 1 ? CMAP_METRIC_IP : v->metric;
        return DV_OK;
    }
    if (q->using.len == 0)
        dv_errmsg_set(errmsg, "query %u: collection %s has named vectors only: say which (using)",
                      i, cl->name);
    else
        dv_errmsg_set(errmsg, "query %u: collection %s has no vector named \"%.*s\"", i, cl->name,
                      (int)q->using.len, q->using.p);
    return DV_EINVAL;
}

/* The sparse vector with IDF that query q uses, NULL for any other query. */
static const struct cmap_vspace *idf_space(const struct cmap_coll *cl, const struct msg_query *q)
{
    for (uint32_t k = 0; k < cl->cfg.n_spaces; k++) {
        const struct cmap_vspace *v = &cl->cfg.spaces[k];
        if (v->kind == 1 && v->idf && strlen(v->name) == q->using.len &&
            memcmp(v->name, q->using.p, q->using.len) == 0)
            return v;
    }
    return NULL;
}

/*
 * IDF of the whole collection (Qdrant computes it from the collection's statistics): for each
 * query on a sparse vector with the idf modifier, one sparse_stats call per node for the
 * partitions read from it (via[]), the counts summed into the query, so that every partition
 * weighs the terms alike. qs is the request's queries, copied, and gets the counts.
 */
static int collection_idf(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                          struct msg_query *qs, uint32_t nq, const uint32_t *via,
                          struct coord_tmp *t, char *errmsg)
{
    uint32_t np = cl->cfg.n_parts;
    int rc = DV_OK;
    for (uint32_t q = 0; q < nq && rc == DV_OK; q++) {
        if (np < 2 || qs[q].dim == 0 || qs[q].idf_df != NULL || idf_space(cl, &qs[q]) == NULL)
            continue;
        struct msg_target *tg = router_tmp_alloc(t, np * sizeof *tg);
        uint64_t *df = router_tmp_alloc(t, qs[q].dim * sizeof *df);
        struct call *calls = calloc(np, sizeof *calls);
        if (tg == NULL || df == NULL || calls == NULL) {
            free(calls);
            return DV_ENOMEM;
        }
        memset(df, 0, qs[q].dim * sizeof *df);
        size_t nc = 0;
        uint32_t used = 0;
        for (uint32_t p = 0; p < np; p++) { /* one call per node, in the order nodes appear */
            bool seen = false;
            for (uint32_t e = 0; e < p && !seen; e++)
                seen = via[e] == via[p];
            if (seen)
                continue;
            struct call *k = &calls[nc++];
            uint32_t first = used;
            for (uint32_t e = p; e < np; e++)
                if (via[e] == via[p])
                    tg[used++] = (struct msg_target){e, cl->parts[e].epoch};
            k->req.type = MSG_SPARSE_STATS;
            k->req.addr.coll = S(cl->name);
            k->req.u.sstats_req = (struct msg_sstats_req){tg + first, used - first, qs[q].using,
                                                          qs[q].idx, qs[q].dim};
            k->part = p;
            router_aim(c, m, via[p], k);
        }
        router_run_calls(c, calls, nc);
        uint64_t docs = 0;
        for (size_t i = 0; i < nc && rc == DV_OK; i++) {
            if (calls[i].rc != DV_OK) {
                dv_errmsg_set(errmsg, "query %u: IDF statistics of partition %u on node %s: %s", q,
                              calls[i].part, calls[i].node_id ? calls[i].node_id : "?",
                              calls[i].err);
                rc = calls[i].rc;
                break;
            }
            const struct msg_sstats_rep *r = &calls[i].rep.m.u.sstats_rep;
            for (uint32_t j = 0; j < r->n_parts && rc == DV_OK; j++) {
                const struct msg_sstats_part *sp = &r->parts[j];
                if (sp->err.code != 0 || sp->n != qs[q].dim) {
                    dv_errmsg_set(errmsg, "query %u: IDF statistics of partition %u: %.*s", q,
                                  sp->part, (int)sp->err.text.len,
                                  sp->err.text.p ? sp->err.text.p : "wrong length");
                    rc = sp->err.code ? sp->err.code : DV_EPROTO;
                    break;
                }
                docs += sp->docs;
                for (uint32_t k = 0; k < sp->n; k++)
                    df[k] += sp->df[k];
            }
        }
        for (size_t i = 0; i < nc; i++)
            msg_reply_free(&calls[i].rep);
        free(calls);
        qs[q].idf_df = df;
        qs[q].idf_docs = docs;
    }
    return rc;
}

void router_default_ef(const struct cmap_coll *cl, struct msg_query *q, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (q[i].ef == 0)
            q[i].ef = cl->cfg.ef_search;
}

int router_search(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                  const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                  char *errmsg)
{
    const struct msg_csearch_req *s = &req->u.csearch_req;
    uint32_t np = cl->cfg.n_parts, nq = s->n_queries;
    int rc;
    for (uint32_t q = 0; q < nq; q++)
        if ((rc = msg_query_check(&s->queries[q], q, errmsg)) != DV_OK)
            return rc;
    uint32_t *metrics = router_tmp_alloc(t, (nq ? nq : 1) * sizeof *metrics);
    if (metrics == NULL)
        return DV_ENOMEM;
    for (uint32_t q = 0; q < nq; q++)
        if ((rc = router_check_query(cl, &s->queries[q], q, &metrics[q], errmsg)) != DV_OK)
            return rc;
    router_default_ef(cl, s->queries, nq);
    uint64_t t0 = clock_mono_ms();
    /* One request per node naming the partitions read from it; a second round for the
     * partitions whose node failed, on another replica when there is one. */
    uint32_t *via = router_tmp_alloc(t, 3 * (size_t)np * sizeof *via); /* + scratch, failed */
    struct msg_target *targets = router_tmp_alloc(t, 2 * np * sizeof *targets);
    bool *flags = router_tmp_alloc(t, 2 * np * sizeof *flags);
    uint32_t *scratch = via ? via + np : NULL;
    struct msg_search_group *groups = router_tmp_alloc(t, np * sizeof *groups);
    struct call *calls = calloc(2 * (size_t)np, sizeof *calls);
    if (!via || !targets || !flags || !scratch || !groups || !calls) {
        free(calls);
        return DV_ENOMEM;
    }
    bool *want = flags, *answered = flags + np;
    size_t ncalls = 0;
    uint32_t nt = 0;
    for (uint32_t p = 0; p < np; p++) {
        want[p] = true;
        via[p] = router_read_node(c, m, &cl->parts[p], UINT32_MAX, turn + p);
    }
    /* Sparse queries with IDF get the collection's statistics first (a copy of the request). */
    struct msg_csearch_req s_idf = *s;
    for (uint32_t q = 0; q < nq; q++) {
        if (np < 2 || idf_space(cl, &s->queries[q]) == NULL)
            continue;
        struct msg_query *qs = router_tmp_alloc(t, nq * sizeof *qs);
        if (qs == NULL) {
            free(calls);
            return DV_ENOMEM;
        }
        memcpy(qs, s->queries, nq * sizeof *qs);
        s_idf.queries = qs;
        if ((rc = collection_idf(c, m, cl, qs, nq, via, t, errmsg)) != DV_OK) {
            free(calls);
            return rc;
        }
        s = &s_idf;
        break;
    }
    search_calls(c, m, cl, s, want, via, s->timeout_ms, calls, &ncalls, targets, &nt, scratch,
                 groups);
    router_run_calls(c, calls, ncalls);
    t->calls = calls;
    t->n_calls = ncalls;
    mark_answered(calls, 0, ncalls, answered);

    /* Worth another replica: partitions whose node did not answer, or answered that it
     * does not hold them; not errors of the request itself (a bad filter, k 0). */
    size_t first_round = ncalls;
    uint32_t retry = 0;
    memset(want, 0, np * sizeof *want);
    for (size_t i = 0; i < ncalls; i++) {
        const struct call *k = &calls[i];
        const struct msg_search_req *sr = &k->req.u.search_req;
        if (k->rc == DV_EIO || k->rc == DV_ETIMEDOUT || k->rc == DV_ESHUTDOWN) {
            for (uint32_t j = 0; j < sr->n_parts; j++)
                want[sr->parts[j].part] = true;
        } else if (k->rc == DV_OK) {
            const struct msg_search_rep *r = &k->rep.m.u.search_rep;
            for (uint32_t j = 0; j < r->n_parts; j++) {
                int e = r->parts[j].err.code;
                if (e == DV_ESTALE || e == DV_EIO || e == DV_ESHUTDOWN || e == DV_ENOTFOUND)
                    want[r->parts[j].part] = true;
            }
        }
    }
    for (uint32_t p = 0; p < np; p++) {
        if (answered[p] || !want[p]) {
            want[p] = false;
            continue;
        }
        want[p] = false;
        uint32_t other = router_read_node(c, m, &cl->parts[p], via[p], turn + p);
        if (other != UINT32_MAX) {
            want[p] = true;
            via[p] = other;
            retry++;
        }
    }
    uint64_t spent = clock_mono_ms() - t0;
    if (retry > 0 && (s->timeout_ms == 0 || spent < s->timeout_ms)) {
        search_calls(c, m, cl, s, want, via, s->timeout_ms ? s->timeout_ms - (uint32_t)spent : 0,
                     calls, &ncalls, targets, &nt, scratch, groups);
        log_info("search: reading from other replicas", "collection=%s partitions=%u", cl->name,
                 retry);
        router_run_calls(c, calls + first_round, ncalls - first_round);
        t->n_calls = ncalls;
        mark_answered(calls, first_round, ncalls, answered);
    }

    /* Which partitions did not answer; the error of the first failure among them. */
    uint32_t *failed = via + 2 * np;
    uint32_t nfailed = 0;
    for (uint32_t p = 0; p < np; p++)
        if (!answered[p])
            failed[nfailed++] = p;
    int err = DV_OK;
    for (size_t i = 0; i < ncalls && err == DV_OK && nfailed > 0; i++) {
        struct call *k = &calls[i];
        const struct msg_search_req *sr = &k->req.u.search_req;
        if (k->rc != DV_OK) {
            /* Name every partition the node was asked for (docs/protocol.md): the client
             * cannot tell which ones failed otherwise. */
            char list[96] = "";
            size_t len = 0;
            for (uint32_t j = 0; j < sr->n_parts && len < sizeof list; j++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%u", j ? "," : "",
                                        sr->parts[j].part);
            if (len >= sizeof list)
                memcpy(list + sizeof list - 4, "...", 4);
            err = k->rc;
            bool silent = k->rc == DV_EIO || k->rc == DV_ETIMEDOUT || k->rc == DV_ESHUTDOWN;
            if (k->node == CMAP_NONE)
                dv_errmsg_set(errmsg, "collection %s partition%s %s: %s", cl->name,
                              sr->n_parts > 1 ? "s" : "", list, k->err);
            else
                dv_errmsg_set(errmsg, "node %s (partition%s %s)%s: %s",
                              k->node_id ? k->node_id : "?", sr->n_parts > 1 ? "s" : "", list,
                              silent ? " did not answer" : "", k->err);
            continue;
        }
        const struct msg_search_rep *r = &k->rep.m.u.search_rep;
        for (uint32_t j = 0; j < r->n_parts && err == DV_OK; j++)
            if (r->parts[j].err.code != 0 && !answered[r->parts[j].part]) {
                err = r->parts[j].err.code;
                dv_errmsg_set(errmsg, "partition %u on node %s: %.*s", r->parts[j].part,
                              k->node_id ? k->node_id : "?", (int)r->parts[j].err.text.len,
                              r->parts[j].err.text.p);
            }
    }
    if (err != DV_OK && !s->allow_partial)
        return err;

    /* Merge: per query, every partition's hits, best first, the k best. */
    const struct msg_search_rep **reps = router_tmp_alloc(t, ncalls * sizeof *reps);
    if (reps == NULL)
        return DV_ENOMEM;
    for (size_t i = 0; i < ncalls; i++)
        reps[i] = calls[i].rc == DV_OK ? &calls[i].rep.m.u.search_rep : NULL;
    size_t total = msg_hits_total(reps, ncalls, nq);
    struct msg_hits *results = router_tmp_alloc(t, (nq ? nq : 1) * sizeof *results);
    struct msg_hit *pool = router_tmp_alloc(t, (total ? total : 1) * sizeof *pool);
    if (results == NULL || pool == NULL)
        return DV_ENOMEM;
    msg_hits_merge(reps, ncalls, s->queries, nq, cl->cfg.metric, metrics, results, pool);
    rep->u.csearch_rep = (struct msg_csearch_rep){results, nq, nfailed > 0, failed, nfailed};
    return DV_OK;
}
