/* part_read.c - a replica's reads: get by id, search (the planner: walk, exact pass or scan),
 * count, scroll. */
#include "part_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "hash.h"
#include "multi.h"
#include "topk.h"
#include "log.h"
#include "mpk.h"

/* ---- reads ------------------------------------------------------------------------------ */

void part_result_free(struct part_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->hits[i].vec);
        free(r->hits[i].payload);
        for (uint32_t j = 0; j < r->hits[i].n_vecs; j++) {
            free(r->hits[i].vecs[j].v);
            free(r->hits[i].vecs[j].idx);
        }
        free(r->hits[i].vecs);
    }
    free(r->hits);
    r->hits = NULL;
    r->n = 0;
}

static bool default_only(const struct part *p)
{
    return p->nsp == 1 && p->sp[0].def.kind == PART_VEC_DENSE && p->sp[0].def.name[0] == '\0';
}

/* Copies the vector of space i at point slot s into hv (caller holds rw shared). */
static int copy_vec(struct part *p, uint32_t i, uint32_t s, struct part_hvec *hv)
{
    const struct vspace *v = &p->sp[i];
    uint32_t dim = v->def.index.dim;
    memset(hv, 0, sizeof *hv);
    hv->space = i;
    if (v->def.kind == PART_VEC_DENSE) {
        hv->n = dim;
        hv->v = malloc((dim ? dim : 1) * sizeof(float));
        if (hv->v == NULL)
            return DV_ENOMEM;
        return hnsw_get_vector(v->ix, v->pmap[s], hv->v) == DV_OK ? DV_OK : DV_ECORRUPT;
    }
    const struct blob *b = v->vb[s];
    uint32_t n = buf_rd_le32(b->data);
    hv->n = n;
    if (v->def.kind == PART_VEC_MULTI) {
        hv->v = malloc((size_t)n * dim * sizeof(float));
        if (hv->v == NULL)
            return DV_ENOMEM;
        memcpy(hv->v, b->data + 4, (size_t)n * dim * sizeof(float));
        return DV_OK;
    }
    hv->v = malloc((n ? n : 1) * sizeof(float));
    hv->idx = malloc((n ? n : 1) * sizeof(uint32_t));
    if (hv->v == NULL || hv->idx == NULL)
        return DV_ENOMEM;
    memcpy(hv->idx, b->data + 4, (size_t)n * 4);
    memcpy(hv->v, b->data + 4 + (size_t)n * 4, (size_t)n * 4);
    return DV_OK;
}

/* Fills hit h for point slot s (caller holds rw shared); mask: the spaces of `vecs` (0: all). */
static int fill_hit_mask(struct part *p, uint32_t s, bool wv, uint32_t mask, bool wp,
                         struct part_hit *h)
{
    memset(h, 0, sizeof *h);
    h->id = p->ids[s];
    if (wv && default_only(p) && (mask == 0 || (mask & 1))) {
        h->vec = malloc(p->o.index.dim * sizeof(float));
        if (h->vec == NULL || hnsw_get_vector(p->sp[0].ix, p->sp[0].pmap[s], h->vec) != DV_OK)
            return DV_ENOMEM;
    }
    if (wv && !default_only(p)) {
        h->vecs = calloc(p->nsp, sizeof *h->vecs);
        if (h->vecs == NULL)
            return DV_ENOMEM;
        for (uint32_t i = 0; i < p->nsp; i++) {
            if ((mask != 0 && !(mask & (1u << i))) || !part_slot_has(p, i, s))
                continue;
            int rc = copy_vec(p, i, s, &h->vecs[h->n_vecs]);
            h->n_vecs++;
            if (rc != DV_OK)
                return rc;
        }
    }
    if (wp && p->pay[s] != NULL) {
        h->payload = malloc(p->pay[s]->len);
        if (h->payload == NULL)
            return DV_ENOMEM;
        memcpy(h->payload, p->pay[s]->data, p->pay[s]->len);
        h->payload_len = p->pay[s]->len;
    }
    return DV_OK;
}

int part_fill_hit(struct part *p, uint32_t s, bool with_vector, bool with_payload,
                  struct part_hit *h)
{
    return fill_hit_mask(p, s, with_vector, 0, with_payload, h);
}

int part_get(struct part *p, const struct pid *ids, size_t n, bool with_vector, bool with_payload,
             struct part_result *out, char *errmsg)
{
    int rc = DV_OK;
    out->hits = calloc(n ? n : 1, sizeof *out->hits);
    out->n = 0;
    if (out->hits == NULL)
        return DV_ENOMEM;
    pthread_rwlock_rdlock(&p->rw);
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &ids[i]);
        if (s == IDMAP_EMPTY)
            continue;
        rc = part_fill_hit(p, s, with_vector, with_payload, &out->hits[out->n]);
        out->n++;
    }
    pthread_rwlock_unlock(&p->rw);
    if (rc != DV_OK) {
        part_result_free(out);
        dv_errmsg_set(errmsg, "out of memory reading points");
    }
    return rc;
}

struct accept_ctx {
    struct part *p;
    const struct filter *f;
    const struct vspace *v; /* accept_vslot: the dense space whose index slots are given */
};

int part_bind_filter(struct part *p, struct filter *f)
{
    if (f == NULL)
        return DV_OK;
    pthread_rwlock_rdlock(&p->rw);
    int rc = filter_bind(f, p->pidx, p->n_pidx);
    pthread_rwlock_unlock(&p->rw);
    return rc;
}

struct has_vec_ctx {
    const struct part *p;
    uint32_t s;
};

/* has_vector: whether point slot s has the vector `name`. */
static bool has_vector(void *arg, const char *name, size_t n)
{
    const struct has_vec_ctx *h = arg;
    int i = part_space_find(h->p, name, n);
    return i >= 0 && part_slot_has(h->p, (uint32_t)i, h->s);
}

/* The filter of every read: visible points that match the user's filter. */
static bool accept(uint32_t s, void *arg)
{
    const struct accept_ctx *c = arg;
    const struct part *p = c->p;
    if (s >= p->cap || !p->pub[s])
        return false;
    if (c->f == NULL)
        return true;
    const struct blob *b = p->pay[s];
    struct has_vec_ctx h = {p, s};
    struct filter_point fp = {&p->ids[s], b ? b->data : NULL, b ? b->len : 0, has_vector, &h};
    return filter_match_point(c->f, &fp);
}

bool part_slot_match(const struct part *p, const struct filter *f, uint32_t s)
{
    struct accept_ctx c = {(struct part *)p, f, NULL};
    return accept(s, &c);
}

/* The same for an index slot of the dense space c->v. */
static bool accept_vslot(uint32_t vs, void *arg)
{
    const struct accept_ctx *c = arg;
    if (vs >= c->v->vcap)
        return false;
    uint32_t s = c->v->vmap[vs];
    return s != PART_NO_SLOT && accept(s, arg);
}

static float user_score(enum hnsw_metric m, float d)
{
    switch (m) {
    case HNSW_L2:
        return sqrtf(d > 0 ? d : 0);
    case HNSW_IP:
    case HNSW_COSINE:
        return 1.0f - d;
    default:
        return d;
    }
}

/* Every slot that may hold a visible point (caller holds rw shared). */
static int all_slots(struct part *p, uint32_t **out, size_t *n)
{
    uint32_t *v = malloc((p->cap ? p->cap : 1) * sizeof *v);
    size_t k = 0;
    if (v == NULL)
        return DV_ENOMEM;
    for (size_t s = 0; s < p->cap; s++)
        if (p->pub[s])
            v[k++] = (uint32_t)s;
    *out = v;
    *n = k;
    return DV_OK;
}

/*
 * What checking a filter on one candidate's payload costs, in distance computations (64-d):
 * about 300 ns against 20-40 ns, measured by `dvec-bench filters` (an exact pass over 10% of
 * 50,000 points re-checking a range filter ran at half the speed of the filtered walk that the
 * old weight of 1 had ruled out). It moves the exact pass's break-even to a few percent.
 */
#define RECHECK_COST 7.0

/* The slots of the points `ids` (n distinct ones) that exist, into *out (free()). */
static int id_slots(struct part *p, const struct pid *ids, size_t n, uint32_t **out, size_t *nc)
{
    uint32_t *v = malloc((n ? n : 1) * sizeof *v);
    size_t k = 0;
    if (v == NULL)
        return DV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &ids[i]);
        if (s != IDMAP_EMPTY)
            v[k++] = s;
    }
    *out = v;
    *nc = k;
    return DV_OK;
}

/* Estimated points matching an unindexed filter, from a fixed sample of slots. */
static uint64_t sample_estimate(struct part *p, const struct accept_ctx *c)
{
    size_t step = p->cap / 512 + 1, seen = 0, hit = 0;
    for (size_t s = 0; s < p->cap; s += step) {
        if (!p->pub[s])
            continue;
        seen++;
        hit += accept((uint32_t)s, (void *)c);
    }
    if (seen == 0)
        return p->map.n;
    return (uint64_t)((double)hit / (double)seen * (double)p->map.n) + (hit ? 1 : 0);
}

/* Query weights of a sparse search: the query's, times IDF when the space asks for it. */
static int sparse_weights(struct part *p, const struct vspace *v, const struct part_query *q,
                          float **out)
{
    float *w = malloc((q->n ? q->n : 1) * sizeof *w);
    if (w == NULL)
        return DV_ENOMEM;
    uint64_t docs = q->idf_df ? q->idf_docs : sparse_docs(v->inv);
    for (uint32_t j = 0; j < q->n; j++) {
        w[j] = q->vec[j];
        if (v->def.idf)
            w[j] *= sparse_idf(docs, q->idf_df ? q->idf_df[j] : sparse_df(v->inv, q->idx[j]));
    }
    (void)p;
    *out = w;
    return DV_OK;
}

/* The multivector of point slot s of space v (rows, data). */
static const float *multi_rows(const struct vspace *v, uint32_t s, uint32_t *rows)
{
    const struct blob *b = v->vb[s];
    *rows = buf_rd_le32(b->data);
    return (const float *)(b->data + 4);
}

/* A query's vector normalised like the space's stored ones (multi with cosine). */
static int query_rows(const struct vspace *v, const struct part_query *q, float **out)
{
    uint32_t dim = v->def.index.dim, rows = q->n ? q->n : 1;
    float *r = malloc((size_t)rows * dim * sizeof *r);
    if (r == NULL)
        return DV_ENOMEM;
    memcpy(r, q->vec, (size_t)rows * dim * sizeof *r);
    if (v->def.index.metric == HNSW_COSINE)
        for (uint32_t i = 0; i < rows; i++)
            dist_normalize(r + (size_t)i * dim, dim);
    *out = r;
    return DV_OK;
}

/* Exact MaxSim over candidates (point slots; NULL: every slot), best first into hits. */
static int multi_scan(struct part *p, const struct vspace *v, const float *qr, uint32_t qrows,
                      uint32_t k, const uint32_t *cands, size_t nc, struct accept_ctx *c,
                      struct hnsw_hit *hits, uint32_t *n)
{
    struct topk t;
    bool higher = multi_higher_better(v->def.index.metric);
    int rc = DV_OK;
    topk_init(&t, k);
    size_t lim = cands ? nc : p->cap;
    for (size_t i = 0; i < lim && rc == DV_OK; i++) {
        uint32_t s = cands ? cands[i] : (uint32_t)i;
        uint32_t rows;
        if (s >= p->cap || v->vb[s] == NULL || !accept(s, c))
            continue;
        const float *d = multi_rows(v, s, &rows);
        float sc = multi_maxsim(v->def.index.metric, d, rows, qr, qrows, v->def.index.dim);
        rc = topk_push(&t, higher ? -sc : sc, s);
    }
    struct topk_entry *best = malloc((topk_size(&t) + 1) * sizeof *best);
    if (rc == DV_OK && best == NULL)
        rc = DV_ENOMEM;
    if (rc == DV_OK) {
        size_t got = topk_sorted(&t, best);
        for (size_t i = 0; i < got; i++)
            hits[i] = (struct hnsw_hit){best[i].dist, (uint32_t)best[i].id};
        *n = (uint32_t)got;
    }
    free(best);
    topk_free(&t);
    return rc;
}

int part_search(struct part *p, const struct part_query *q, struct part_result *out,
                enum part_plan *plan_out, char *errmsg)
{
    struct accept_ctx c = {p, q->filter, NULL};
    enum part_plan plan = PART_PLAN_WALK;
    uint32_t *cands = NULL, n = 0;
    size_t nc = 0;
    float *qw = NULL;
    int rc = DV_OK;

    out->hits = NULL;
    out->n = 0;
    if (q->space >= p->nsp) {
        dv_errmsg_set(errmsg, "search: no vector number %u", q->space);
        return DV_EINVAL;
    }
    struct vspace *v = &p->sp[q->space];
    c.v = v;
    if (q->k == 0 || (q->vec == NULL && !(v->def.kind == PART_VEC_SPARSE && q->n == 0))) {
        dv_errmsg_set(errmsg, "search needs a vector and k >= 1");
        return DV_EINVAL;
    }
    if (q->k > PART_MAX_K || q->ef > PART_MAX_K) {
        dv_errmsg_set(errmsg, "search: k %u and ef %u must be at most %u", q->k, q->ef, PART_MAX_K);
        return DV_ERANGE;
    }
    if ((v->def.kind == PART_VEC_MULTI && (q->n == 0 || q->n > PART_MAX_ROWS)) ||
        (v->def.kind == PART_VEC_SPARSE && (q->n > PART_MAX_TERMS || (q->n && !q->idx)))) {
        dv_errmsg_set(errmsg, "search: a query of %u %s for vector \"%s\"", q->n,
                      v->def.kind == PART_VEC_MULTI ? "rows" : "terms", v->def.name);
        return DV_EINVAL;
    }
    struct hnsw_hit *hits = malloc(q->k * sizeof *hits);
    if (hits == NULL)
        return DV_ENOMEM;
    if (v->def.kind == PART_VEC_SPARSE && (rc = sparse_weights(p, v, q, &qw)) != DV_OK)
        goto out_free;
    if (v->def.kind == PART_VEC_MULTI && (rc = query_rows(v, q, &qw)) != DV_OK)
        goto out_free;
    pthread_rwlock_rdlock(&p->rw);
    if (q->filter != NULL && v->def.kind != PART_VEC_SPARSE) {
        /*
         * Cost model, in distance computations: a filtered walk expands about ef / s nodes
         * of 2m links each (s = selectivity); an exact pass over indexed candidates costs a
         * distance each, plus a filter check unless the index answers the filter exactly; a
         * scan checks the filter on every point. Multivectors are always scored exactly.
         */
        bool exact_ok = false;
        uint64_t total = p->map.n ? p->map.n : 1;
        uint64_t est = filter_estimate(q->filter, p->pidx, p->n_pidx, p->map.n, &exact_ok);
        if (!exact_ok)
            est = sample_estimate(p, &c);
        double sel = (double)(est ? est : 1) / (double)total;
        double ef = q->ef ? q->ef : v->def.index.ef_search;
        double walk = (ef > q->k ? ef : q->k) * 2.0 * v->def.index.m / sel;
        bool by_index = exact_ok && filter_index_exact(q->filter, p->pidx, p->n_pidx);
        double exact = (by_index ? 1.0 : 1.0 + RECHECK_COST) * (double)est,
               scan = (double)total + (double)est;
        bool multi = v->def.kind == PART_VEC_MULTI;
        size_t nid;
        const struct pid *ids = filter_must_ids(q->filter, &nid);
        if (ids != NULL && (multi || nid <= p->o.exact_threshold || 2.0 * (double)nid < walk) &&
            (!exact_ok || nid <= est)) {
            /* has_id: the candidates are the listed points (a re-scoring query's) */
            plan = PART_PLAN_INDEXED;
            rc = id_slots(p, ids, nid, &cands, &nc);
            if (rc != DV_OK)
                goto out_unlock;
        } else if (exact_ok && (multi || est <= p->o.exact_threshold || exact < walk) &&
                   filter_candidates(q->filter, p->pidx, p->n_pidx, &cands, &nc) == DV_OK) {
            plan = PART_PLAN_INDEXED;
            if (by_index)
                c.f = NULL; /* every candidate matches: only visibility is left to check */
        } else if (multi || (!exact_ok && (est <= p->o.exact_threshold || scan < walk)))
            plan = PART_PLAN_SCAN;
    } else if (v->def.kind != PART_VEC_DENSE) {
        plan = PART_PLAN_SCAN; /* sparse and multi: exact */
    }
    if (v->def.kind == PART_VEC_SPARSE) {
        struct sparse_hit *sh = malloc(q->k * sizeof *sh);
        rc = sh ? sparse_search(v->inv, q->idx, qw, q->n, q->k, accept, &c, sh, &n) : DV_ENOMEM;
        for (uint32_t i = 0; i < n && rc == DV_OK; i++)
            hits[i] = (struct hnsw_hit){-sh[i].score, sh[i].slot};
        free(sh);
    } else if (v->def.kind == PART_VEC_MULTI) {
        rc = multi_scan(p, v, qw, q->n, q->k, plan == PART_PLAN_INDEXED ? cands : NULL, nc, &c,
                        hits, &n);
    } else {
        if (plan == PART_PLAN_SCAN && (rc = all_slots(p, &cands, &nc)) != DV_OK)
            goto out_unlock;
        if (plan == PART_PLAN_WALK) {
            struct hnsw_query hq = {q->vec, q->k, q->ef, accept_vslot, &c, q->quant, 0};
            rc = hnsw_search(v->ix, &hq, hits, &n, NULL);
            if (rc == DV_OK && n < q->k && q->filter != NULL) {
                /* Too few matches reached by the walk: an exact scan is the complete answer. */
                plan = PART_PLAN_WALK_SCAN;
                if ((rc = all_slots(p, &cands, &nc)) != DV_OK)
                    goto out_unlock;
            }
        }
        if (plan != PART_PLAN_WALK) {
            /* point slots -> the space's index slots (points without the vector drop out) */
            size_t k = 0;
            for (size_t i = 0; i < nc; i++)
                if (cands[i] < p->cap && v->pmap[cands[i]] != PART_NO_SLOT)
                    cands[k++] = v->pmap[cands[i]];
            rc = hnsw_search_slots(v->ix, q->vec, q->k, cands, k, accept_vslot, &c, hits, &n);
        }
        for (uint32_t i = 0; i < n && rc == DV_OK; i++) {
            hits[i].slot = v->vmap[hits[i].slot];
            hits[i].dist = user_score(v->def.index.metric, hits[i].dist);
        }
    }
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "search: %s", dv_strerror(rc));
        goto out_unlock;
    }
    out->hits = calloc(n ? n : 1, sizeof *out->hits);
    if (out->hits == NULL) {
        rc = DV_ENOMEM;
        goto out_unlock;
    }
    bool negate = v->def.kind == PART_VEC_SPARSE ||
                  (v->def.kind == PART_VEC_MULTI && multi_higher_better(v->def.index.metric));
    for (uint32_t i = 0; i < n && rc == DV_OK; i++) {
        rc = fill_hit_mask(p, hits[i].slot, q->with_vector, q->vec_mask, q->with_payload,
                           &out->hits[i]);
        out->hits[i].score = negate ? -hits[i].dist : hits[i].dist;
        out->n++;
    }
out_unlock:
    pthread_rwlock_unlock(&p->rw);
out_free:
    free(cands);
    free(hits);
    free(qw);
    if (rc != DV_OK)
        part_result_free(out);
    if (rc == DV_ENOMEM)
        dv_errmsg_set(errmsg, "out of memory in a search");
    if (plan_out != NULL)
        *plan_out = plan;
    return rc;
}

int part_sparse_stats(struct part *p, uint32_t space, const uint32_t *idx, uint32_t n, uint64_t *df,
                      uint64_t *docs, char *errmsg)
{
    if (space >= p->nsp || p->sp[space].def.kind != PART_VEC_SPARSE) {
        dv_errmsg_set(errmsg, "vector number %u is not a sparse vector", space);
        return DV_EINVAL;
    }
    pthread_rwlock_rdlock(&p->rw);
    *docs = sparse_docs(p->sp[space].inv);
    for (uint32_t j = 0; j < n; j++)
        df[j] = sparse_df(p->sp[space].inv, idx[j]);
    pthread_rwlock_unlock(&p->rw);
    return DV_OK;
}

int part_score_ids(struct part *p, const struct part_query *q, const struct pid *ids, size_t n,
                   struct part_result *out, char *errmsg)
{
    float *qw = NULL;
    int rc = DV_OK;
    out->hits = NULL;
    out->n = 0;
    if (q->space >= p->nsp || q->vec == NULL) {
        dv_errmsg_set(errmsg, "score: no vector number %u or no query", q->space);
        return DV_EINVAL;
    }
    struct vspace *v = &p->sp[q->space];
    if (v->def.kind == PART_VEC_SPARSE)
        rc = sparse_weights(p, v, q, &qw);
    else
        rc = query_rows(v, q, &qw);
    out->hits = calloc(n ? n : 1, sizeof *out->hits);
    if (rc != DV_OK || out->hits == NULL) {
        free(qw);
        free(out->hits);
        out->hits = NULL;
        return DV_ENOMEM;
    }
    const struct dist_ops *d = dist_get();
    uint32_t dim = v->def.index.dim;
    float *tmp = v->def.kind == PART_VEC_DENSE ? malloc((dim ? dim : 1) * sizeof *tmp) : NULL;
    pthread_rwlock_rdlock(&p->rw);
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &ids[i]);
        if (s == IDMAP_EMPTY || !part_slot_has(p, q->space, s))
            continue;
        float sc;
        if (v->def.kind == PART_VEC_SPARSE) {
            const struct blob *b = v->vb[s];
            uint32_t nt = buf_rd_le32(b->data);
            sc = sparse_dot((const uint32_t *)(b->data + 4),
                            (const float *)(b->data + 4 + 4 * (size_t)nt), nt, q->idx, qw, q->n);
        } else if (v->def.kind == PART_VEC_MULTI) {
            uint32_t rows;
            const float *dr = multi_rows(v, s, &rows);
            sc = multi_maxsim(v->def.index.metric, dr, rows, qw, q->n ? q->n : 1, dim);
        } else {
            if (tmp == NULL || hnsw_get_vector(v->ix, v->pmap[s], tmp) != DV_OK) {
                rc = DV_ENOMEM;
                break;
            }
            switch (v->def.index.metric) {
            case HNSW_L2:
                sc = sqrtf(d->l2sq(qw, tmp, dim));
                break;
            case HNSW_L1:
                sc = d->l1(qw, tmp, dim);
                break;
            default: /* stored normalised for cosine; the query was normalised above */
                sc = d->dot(qw, tmp, dim);
            }
        }
        rc = fill_hit_mask(p, s, q->with_vector, q->vec_mask, q->with_payload, &out->hits[out->n]);
        out->hits[out->n].score = sc;
        out->n++;
    }
    pthread_rwlock_unlock(&p->rw);
    free(tmp);
    free(qw);
    if (rc != DV_OK) {
        part_result_free(out);
        dv_errmsg_set(errmsg, "out of memory scoring points");
    }
    return rc;
}

int part_count(struct part *p, const struct filter *f, uint64_t *n, char *errmsg)
{
    struct accept_ctx c = {p, f, NULL};
    uint32_t *cands = NULL;
    size_t nc = 0;
    uint64_t cnt = 0;

    pthread_rwlock_rdlock(&p->rw);
    if (f == NULL) {
        cnt = p->map.n;
    } else {
        bool exact_ok = false;
        filter_estimate(f, p->pidx, p->n_pidx, p->map.n, &exact_ok);
        if (exact_ok && filter_candidates(f, p->pidx, p->n_pidx, &cands, &nc) == DV_OK) {
            if (filter_index_exact(f, p->pidx, p->n_pidx))
                c.f = NULL;
            for (size_t i = 0; i < nc; i++)
                cnt += accept(cands[i], &c);
        } else {
            for (size_t s = 0; s < p->cap; s++)
                cnt += accept((uint32_t)s, &c);
        }
    }
    pthread_rwlock_unlock(&p->rw);
    free(cands);
    *n = cnt;
    return DV_OK;
}

/* Max-heap of slots by id, for the `limit` smallest ids of a scroll. */
static void idheap_sift_up(const struct part *p, uint32_t *h, size_t i)
{
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (pid_cmp(&p->ids[h[up]], &p->ids[h[i]]) >= 0)
            break;
        uint32_t t = h[up];
        h[up] = h[i];
        h[i] = t;
        i = up;
    }
}

static void idheap_sift_down(const struct part *p, uint32_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, big = i;
        if (l < n && pid_cmp(&p->ids[h[l]], &p->ids[h[big]]) > 0)
            big = l;
        if (l + 1 < n && pid_cmp(&p->ids[h[l + 1]], &p->ids[h[big]]) > 0)
            big = l + 1;
        if (big == i)
            return;
        uint32_t t = h[big];
        h[big] = h[i];
        h[i] = t;
        i = big;
    }
}

static int slot_id_cmp(const void *a, const void *b, void *arg)
{
    const struct part *p = arg;
    return pid_cmp(&p->ids[*(const uint32_t *)a], &p->ids[*(const uint32_t *)b]);
}

int part_scroll(struct part *p, const struct pid *from, uint32_t limit, const struct filter *f,
                bool with_vector, bool with_payload, struct part_result *out, struct pid *next,
                bool *more, char *errmsg)
{
    struct accept_ctx c = {p, f, NULL};
    size_t want = (size_t)limit + 1, n = 0;
    int rc = DV_OK;

    out->hits = NULL;
    out->n = 0;
    *more = false;
    if (limit == 0 || limit > PART_MAX_K) {
        dv_errmsg_set(errmsg, "scroll limit must be 1 to %u, not %u", PART_MAX_K, limit);
        return limit == 0 ? DV_EINVAL : DV_ERANGE;
    }
    uint32_t *h = malloc(want * sizeof *h);
    if (h == NULL)
        return DV_ENOMEM;
    pthread_rwlock_rdlock(&p->rw);
    for (size_t s = 0; s < p->cap; s++) {
        if (!p->pub[s] || (from != NULL && pid_cmp(&p->ids[s], from) < 0))
            continue;
        if (n == want && pid_cmp(&p->ids[s], &p->ids[h[0]]) >= 0)
            continue;
        if (!accept((uint32_t)s, &c))
            continue;
        if (n < want) {
            h[n++] = (uint32_t)s;
            idheap_sift_up(p, h, n - 1);
        } else {
            h[0] = (uint32_t)s;
            idheap_sift_down(p, h, n, 0);
        }
    }
    /* Sorting by id under the read lock: ids cannot change meanwhile. */
    qsort_r(h, n, sizeof *h, slot_id_cmp, p);
    if (n == want) {
        *more = true;
        *next = p->ids[h[limit]];
        n = limit;
    }
    out->hits = calloc(n ? n : 1, sizeof *out->hits);
    if (out->hits == NULL)
        rc = DV_ENOMEM;
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        rc = part_fill_hit(p, h[i], with_vector, with_payload, &out->hits[i]);
        out->n++;
    }
    pthread_rwlock_unlock(&p->rw);
    free(h);
    if (rc != DV_OK) {
        part_result_free(out);
        dv_errmsg_set(errmsg, "out of memory in a scroll");
    }
    return rc;
}

int part_digest(struct part *p, uint64_t *digest, uint64_t *count, uint64_t *lsn, char *errmsg)
{
    uint32_t maxdim = 1;
    for (uint32_t i = 0; i < p->nsp; i++)
        if (p->sp[i].def.kind == PART_VEC_DENSE && p->sp[i].def.index.dim > maxdim)
            maxdim = p->sp[i].def.index.dim;
    float *v = malloc(maxdim * sizeof *v);
    if (v == NULL)
        return DV_ENOMEM;
    bool plain = default_only(p);
    uint64_t sum = 0, n = 0;
    int rc = DV_OK;
    /* The write lock keeps writers out, so the digest and the LSN go together. */
    pthread_mutex_lock(&p->wmu);
    pthread_rwlock_rdlock(&p->rw);
    for (size_t s = 0; s < p->cap && rc == DV_OK; s++) {
        if (!p->pub[s])
            continue;
        const uint64_t id[3] = {p->ids[s].hi, p->ids[s].lo, p->ids[s].kind};
        uint64_t h = hash64_bytes(id, sizeof id, 0x64696765ull);
        /* Each vector the point has, in space order; the space's number goes first except in
         * a replica with only the unnamed vector (the digest of the format before). */
        for (uint32_t i = 0; i < p->nsp && rc == DV_OK; i++) {
            const struct vspace *sp = &p->sp[i];
            if (!part_slot_has(p, i, (uint32_t)s))
                continue;
            if (!plain)
                h = hash64_bytes(&i, sizeof i, h);
            if (sp->def.kind == PART_VEC_DENSE) {
                if ((rc = hnsw_get_vector(sp->ix, sp->pmap[s], v)) != DV_OK) {
                    dv_errmsg_set(errmsg, "slot %zu: vector unreadable", s);
                    break;
                }
                h = hash64_bytes(v, sp->def.index.dim * sizeof *v, h);
            } else {
                h = hash64_bytes(sp->vb[s]->data, sp->vb[s]->len, h);
            }
        }
        if (p->pay[s])
            h = hash64_bytes(p->pay[s]->data, p->pay[s]->len, h);
        sum += h;
        n++;
    }
    *lsn = __atomic_load_n(&p->applied_lsn, __ATOMIC_ACQUIRE);
    pthread_rwlock_unlock(&p->rw);
    pthread_mutex_unlock(&p->wmu);
    free(v);
    *digest = sum;
    *count = n;
    return rc;
}
