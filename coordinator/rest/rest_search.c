/* rest_search.c - the REST API's search and query calls (single and batch): parsing them into
 * plans, the native search, and rendering the scored points. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rest_int.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})
#define oom    rx_oom
#define mbytes rx_bytes

/* Higher scores are better for Cosine and Dot; lower for Euclid and Manhattan. */
static bool lower_better(uint32_t metric)
{
    return metric == 0 || metric == 3;
}

/* One search of a batch, as parsed: a nearest-vector search, or (a query without `query`)
 * points in id order. */
struct plan {
    bool scroll;
    struct rs_qvec q;
    json_t *vnames; /* with_vector's names (borrowed), NULL: all */
    uint32_t limit, offset, ef;
    size_t f_off, f_len; /* filter in the batch's msgpack buffer */
    bool has_thr;
    float thr;
    struct psel sel;
    bool with_vector;
    uint32_t qi; /* its query in the native request */
};

void rs_qvec_free(struct rs_qvec *v)
{
    free(v->vec);
    free(v->idx);
    v->vec = NULL;
    v->idx = NULL;
}

static void plans_free(struct plan *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        rs_qvec_free(&p[i].q);
    free(p);
}

/* Takes a query vector parsed into v (from the arena) as the plan's own. */
static int plan_take(struct rx *x, struct rs_qvec *p, const struct msg_nvec *v)
{
    p->dim = v->nv;
    p->vec = malloc((p->dim ? p->dim : 1) * sizeof *p->vec);
    p->idx = v->idx ? malloc((v->n ? v->n : 1) * sizeof *p->idx) : NULL;
    if (p->vec == NULL || (v->idx && p->idx == NULL))
        return oom(x);
    memcpy(p->vec, v->v, (size_t)p->dim * sizeof *p->vec);
    if (v->idx)
        memcpy(p->idx, v->idx, (size_t)v->n * sizeof *p->idx);
    p->rows = v->idx == NULL && v->n != v->nv ? v->n : 0;
    return 200;
}

bool rs_qvec_of_hit(struct rx *x, const struct msg_hit *h, struct rs_qvec *p, int *st)
{
    const struct msg_nvec *found = NULL;
    struct msg_nvec unnamed;
    if (h->vec != NULL && p->using[0] == '\0') {
        unnamed = (struct msg_nvec){{"", 0}, h->dim, h->dim, h->vec, NULL};
        found = &unnamed;
    }
    for (uint32_t k = 0; k < h->named.n && !found; k++) {
        const struct msg_nvec *v = &h->named.v[k];
        if (v->name.len == strlen(p->using) && memcmp(v->name.p, p->using, v->name.len) == 0)
            found = v;
    }
    if (found == NULL)
        return false;
    *st = plan_take(x, p, found);
    p->exclude = true;
    p->excl = h->id;
    return true;
}

/* Looks up the vector of point `id` (a query by id), the named one the plan uses. */
static int vector_of(struct rx *x, const char *coll, const struct pid *id, struct rs_qvec *p)
{
    struct msg q = {.type = MSG_P_GET};
    q.addr.coll = S(coll);
    struct pid one = *id;
    q.u.get_req = (struct msg_get_req){&one, 1, true, false};
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    if (st != 200)
        return st;
    const struct msg_hits *h = &rep.m.u.get_rep;
    bool exists = h->n > 0;
    if (!exists || !rs_qvec_of_hit(x, &h->hits[0], p, &st)) {
        msg_reply_free(&rep);
        char t[PID_TEXT_MAX];
        pid_format(id, t);
        if (exists)
            return rx_fail(x, 400, "Wrong input: point %s has no vector \"%s\"", t, p->using);
        return rx_fail(x, 404, "Not found: No point with id %s found", t);
    }
    msg_reply_free(&rep);
    return st;
}

/* A vector input: a dense vector, a sparse {indices, values}, a multivector, or a point id
 * whose vector is used; of the named vector p->using when the collection has named vectors. */
int rs_vector_input(struct rx *x, const char *coll, json_t *v, const char *field, struct rs_qvec *p)
{
    if (json_is_integer(v) || json_is_string(v)) {
        struct pid id;
        int st = rj_id(x, v, field, &id);
        if (st == 200 && x->fast)
            return REST_SLOW; /* the lookup is a call: a worker's */
        return st == 200 ? vector_of(x, coll, &id, p) : st;
    }
    struct msg_coll_cfg cfg;
    bool known = rx_cfg(x, coll, &cfg);
    const struct msg_vspace *sp = NULL;
    if (known && cfg.n_spaces > 0) {
        sp = rv_space(&cfg, p->using, strlen(p->using));
        if (sp == NULL)
            return p->using[0] == '\0'
                       ? rx_fail(x, 400,
                                 "Wrong input: collection `%s` has named vectors only: say which "
                                 "(`using`)",
                                 coll)
                       : rx_fail(x, 400, "Wrong input: Not existing vector name error: %.64s",
                                 p->using);
    } else if (p->using[0] != '\0') {
        return rx_fail(x, 400, "Wrong input: Not existing vector name error: %.64s", p->using);
    }
    if (sp == NULL && !json_is_array(v))
        return rx_fail(x, 400,
                       "Wrong input: %s: expected a dense vector or a point id (the collection "
                       "has one unnamed dense vector)",
                       field);
    if (sp == NULL) {
        int st = rj_vector(x, v, field, NULL, &p->dim);
        if (st != 200)
            return st;
        if (known && cfg.dim != p->dim)
            return rx_fail(x, 400, "Wrong input: Vector dimension error: expected dim: %u, got %u",
                           cfg.dim, p->dim);
        if ((p->vec = malloc((p->dim ? p->dim : 1) * sizeof *p->vec)) == NULL)
            return oom(x);
        return rj_vector(x, v, field, p->vec, &p->dim);
    }
    struct rv_arena a = {0};
    struct msg_nvec nv;
    int st = rv_vector(x, sp, v, field, &nv, &a);
    if (st == 200)
        st = plan_take(x, p, &nv);
    if (st == 200 && sp->kind == 2)
        p->rows = nv.n; /* even a one-row multivector query */
    rv_free(&a);
    return st;
}

int rs_params(struct rx *x, json_t *o, uint32_t *ef_out, bool *has_thr, float *thr)
{
    int st;
    json_t *params = rj_get(o, "params");
    uint64_t ef = 0;
    if (params) {
        bool exact;
        if (!json_is_object(params))
            return rj_type_error(x, "params", "expected an object");
        if ((st = rj_u64(x, params, "hnsw_ef", 0, 0, PROTO_MAX_EF, &ef)) != 200 ||
            (st = rj_bool(x, params, "exact", false, &exact)) != 200)
            return st;
        /* No exhaustive scan in dvec: a wide walk stands in for it. */
        if (exact && ef < 2000)
            ef = 2000;
    }
    *ef_out = (uint32_t)ef;
    json_t *t = rj_get(o, "score_threshold");
    *has_thr = t != NULL;
    if (t && !json_is_number(t))
        return rj_type_error(x, "score_threshold", "expected a number");
    *thr = t ? (float)json_number_value(t) : 0;
    return 200;
}

bool rs_lower(struct rx *x, const char *coll, const char *using)
{
    struct msg_coll_cfg cfg;
    uint32_t metric = 2;
    if (rx_cfg(x, coll, &cfg)) {
        const struct msg_vspace *sp = rv_space(&cfg, using, strlen(using));
        if (sp)
            return sp->kind != 1 && lower_better(sp->metric);
        metric = cfg.metric;
    } else {
        rx_meta(x, coll, NULL, &metric);
    }
    return lower_better(metric);
}

/* The members search and query requests share: filter, params, score_threshold, limit,
 * offset, with_payload, with_vector. */
static int common_params(struct rx *x, json_t *o, bool limit_required, struct plan *p,
                         struct buf *mp)
{
    int st;
    static const char *const unsupported[] = {"shard_key", "lookup_from", NULL};
    if ((st = rj_unsupported(x, o, unsupported)) != 200)
        return st;
    if ((st = rj_filter(x, json_object_get(o, "filter"), "filter", mp, &p->f_off, &p->f_len)) !=
        200)
        return st;
    if ((st = rs_params(x, o, &p->ef, &p->has_thr, &p->thr)) != 200)
        return st;
    uint64_t limit, offset;
    if (limit_required && rj_get(o, "limit") == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `limit`");
    if ((st = rj_u64(x, o, "limit", 10, 1, PROTO_MAX_K, &limit)) != 200 ||
        (st = rj_u64(x, o, "offset", 0, 0, PROTO_MAX_K, &offset)) != 200)
        return st;
    if (limit + offset > PROTO_MAX_K) {
        char what[64];
        snprintf(what, sizeof what, "limit + offset must be %u or smaller", PROTO_MAX_K);
        return rj_invalid(x, "limit", what);
    }
    p->limit = (uint32_t)limit;
    p->offset = (uint32_t)offset;
    if ((st = rj_psel(x, o, "with_payload", false, &p->sel)) != 200 ||
        (st = rj_with_vector(x, o, false, &p->with_vector)) != 200)
        return st;
    p->vnames = rj_vector_names(o);
    return 200;
}

/* A vector name (`using`, a NamedVector's `name`) into p->using. */
int rs_using(struct rx *x, json_t *name, const char *field, struct rs_qvec *p)
{
    if (name == NULL || json_is_null(name))
        return 200;
    if (!json_is_string(name))
        return rj_type_error(x, field, "expected a string (a vector name)");
    if (strlen(json_string_value(name)) > PROTO_MAX_VNAME)
        return rx_fail(x, 400, "Wrong input: Not existing vector name error: %.64s",
                       json_string_value(name));
    snprintf(p->using, sizeof p->using, "%s", json_string_value(name));
    return 200;
}

/* A SearchRequest: {vector, filter, params, limit, offset, with_payload, with_vector,
 * score_threshold}. */
static int parse_search(struct rx *x, const char *coll, json_t *o, struct plan *p, struct buf *mp)
{
    if (!json_is_object(o))
        return rj_type_error(x, "searches[]", "expected an object");
    json_t *v = json_object_get(o, "vector");
    if (v == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `vector`");
    int st;
    if (json_is_object(v) && json_object_get(v, "vector") != NULL) {
        /* NamedVector / NamedSparseVector {"name", "vector"} */
        if ((st = rs_using(x, json_object_get(v, "name"), "vector.name", &p->q)) != 200)
            return st;
        v = json_object_get(v, "vector");
    }
    if ((st = common_params(x, o, true, p, mp)) != 200)
        return st;
    return rs_vector_input(x, coll, v, "vector", &p->q);
}

/* A QueryRequest: {query, using, prefetch, filter, params, score_threshold, limit, offset,
 * with_payload, with_vector}. */
static int parse_query(struct rx *x, const char *coll, json_t *o, struct plan *p, struct buf *mp)
{
    if (!json_is_object(o))
        return rj_type_error(x, "searches[]", "expected an object");
    int st;
    if ((st = rs_using(x, rj_get(o, "using"), "using", &p->q)) != 200)
        return st;
    if ((st = common_params(x, o, false, p, mp)) != 200)
        return st;
    json_t *q = rj_get(o, "query");
    if (q == NULL) {
        p->scroll = true; /* no query: points in id order */
        return 200;
    }
    if (json_is_object(q) && json_object_get(q, "indices") == NULL) {
        json_t *near = json_object_get(q, "nearest");
        if (near == NULL) {
            const char *kind = "?";
            const char *key;
            json_t *val;
            json_object_foreach(q, key, val)
            {
                kind = key;
                break;
            }
            return rx_fail(x, 400,
                           "Wrong input: query type `%.32s` is not supported by dvec "
                           "(nearest only)",
                           kind);
        }
        if (rj_get(q, "mmr"))
            return rx_fail(x, 400, "Wrong input: `mmr` is not supported by dvec");
        q = near;
    }
    return rs_vector_input(x, coll, q, "query", &p->q);
}

/* The native queries of the vector plans (p[i].qi set), into *out (free()). */
static int build_queries(struct rx *x, struct plan *p, size_t n, const struct buf *mp,
                         struct msg_query **out, size_t *nq_out)
{
    size_t nq = 0;
    for (size_t i = 0; i < n; i++)
        if (!p[i].scroll)
            p[i].qi = (uint32_t)nq++;
    struct msg_query *qs = calloc(nq ? nq : 1, sizeof *qs);
    if (qs == NULL)
        return oom(x);
    for (size_t i = 0; i < n; i++) {
        if (p[i].scroll)
            continue;
        struct msg_query *q = &qs[p[i].qi];
        q->vec = p[i].q.vec;
        q->dim = p[i].q.dim;
        q->k = p[i].limit + p[i].offset + (p[i].q.exclude ? 1 : 0);
        if (q->k > PROTO_MAX_K)
            q->k = PROTO_MAX_K;
        q->ef = p[i].ef;
        q->filter = mbytes(mp, p[i].f_off, p[i].f_len);
        q->with_payload = p[i].sel.on;
        q->with_vector = p[i].with_vector;
        q->using = S(p[i].q.using);
        q->idx = p[i].q.idx;
        q->rows = p[i].q.rows;
    }
    *out = qs;
    *nq_out = nq;
    return 200;
}

/* Writes each plan's result list with `open` and `close` around it: the vector plans' from
 * srep, the id-order plans' from a scroll each (a worker's only). `lower`: lower scores are
 * better (score_threshold's direction). */
static int render(struct rx *x, const char *coll, struct plan *p, size_t n, struct buf *mp,
                  bool batch, const char *open, const char *close,
                  const struct msg_csearch_rep *srep, uint32_t metric)
{
    int st = 200;
    struct msg_coll_cfg cfg;
    bool known = rx_cfg(x, coll, &cfg);
    int rc = batch ? jw_raw(&x->res, "[") : DV_OK;
    for (size_t i = 0; i < n && st == 200 && rc == DV_OK; i++) {
        if (batch && i)
            rc = jw_raw(&x->res, ",");
        if (rc == DV_OK)
            rc = jw_raw(&x->res, open);
        if (rc != DV_OK)
            break;
        const struct msg_hit *hits;
        uint32_t nh;
        struct msg_reply r2 = {0};
        if (p[i].scroll) {
            /* Points in id order: the first offset + limit, the offset skipped; score 0. */
            struct msg q = {.type = MSG_P_SCROLL};
            q.addr.coll = S(coll);
            q.u.scroll_req = (struct msg_scroll_req){false,
                                                     {0},
                                                     p[i].limit + p[i].offset,
                                                     mbytes(mp, p[i].f_off, p[i].f_len),
                                                     p[i].with_vector,
                                                     p[i].sel.on};
            if ((st = rx_call(x, &q, &r2)) != 200)
                break;
            hits = r2.m.u.scroll_rep.hits.hits;
            nh = r2.m.u.scroll_rep.hits.n;
        } else {
            const struct msg_hits *h = &srep->results[p[i].qi];
            hits = h->hits;
            nh = h->n;
        }
        uint32_t skipped = 0, written = 0;
        /* the direction of score_threshold: the searched vector's */
        const struct msg_vspace *sp =
            known ? rv_space(&cfg, p[i].q.using, strlen(p[i].q.using)) : NULL;
        bool lower = sp ? sp->kind != 1 && lower_better(sp->metric) : lower_better(metric);
        struct rv_out vo = {known ? &cfg : NULL, p[i].vnames};
        rc = jw_raw(&x->res, "[");
        for (uint32_t k = 0; k < nh && rc == DV_OK && written < p[i].limit; k++) {
            const struct msg_hit *h = &hits[k];
            if (p[i].q.exclude && pid_eq(&h->id, &p[i].q.excl))
                continue;
            if (!p[i].scroll && p[i].has_thr && (lower ? h->score > p[i].thr : h->score < p[i].thr))
                break; /* best first: the rest are worse */
            if (skipped < p[i].offset) {
                skipped++;
                continue;
            }
            if (written++)
                rc = jw_raw(&x->res, ",");
            if (rc == DV_OK)
                rc = jw_point(&x->res, h, true, &p[i].sel, p[i].with_vector, &vo);
        }
        if (rc == DV_OK)
            rc = jw_raw(&x->res, "]");
        if (rc == DV_OK)
            rc = jw_raw(&x->res, close);
        msg_reply_free(&r2);
    }
    if (st == 200 && rc == DV_OK && batch)
        rc = jw_raw(&x->res, "]");
    if (st != 200)
        return st;
    if (rc == DV_ENOMEM)
        return oom(x);
    return rc == DV_OK ? 200
                       : rx_fail(x, 500,
                                 "Service internal error: a payload cannot be "
                                 "shown as JSON (%s)",
                                 dv_strerror(rc));
}

/* Runs the plans on a worker: one native search for every vector plan, a scroll for each
 * id-order plan. */
static int run_plans(struct rx *x, const char *coll, struct plan *p, size_t n, struct buf *mp,
                     bool batch, const char *open, const char *close)
{
    struct msg_query *qs;
    size_t nq;
    int st = build_queries(x, p, n, mp, &qs, &nq);
    if (st != 200)
        return st;
    struct msg_reply srep = {0};
    if (nq) {
        struct msg q = {.type = MSG_P_SEARCH};
        q.addr.coll = S(coll);
        q.u.csearch_req = (struct msg_csearch_req){qs, (uint32_t)nq, false, x->timeout_ms};
        st = rx_call(x, &q, &srep);
    }
    free(qs);
    if (st != 200)
        return st;
    uint32_t metric = 2;
    rx_meta(x, coll, NULL, &metric);
    st = render(x, coll, p, n, mp, batch, open, close, &srep.m.u.csearch_rep, metric);
    msg_reply_free(&srep);
    return st;
}

/* A fast search between its start and its reply (x->search). */
struct rx_search {
    const char *coll; /* in x->path */
    struct plan *p;
    size_t n;
    struct buf mp;
    struct msg_query *qs;
    struct msg req;
    bool batch;
    const char *open, *close;
};

static void rx_search_free(struct rx_search *sr)
{
    plans_free(sr->p, sr->n);
    buf_free(&sr->mp);
    free(sr->qs);
    free(sr);
}

/* The search's done (rest_search_done, on an nng thread): render and answer, or hand the
 * request to a worker. */
static void search_done(void *arg, const struct msg_csearch_rep *rep, uint32_t metric)
{
    struct rx *x = arg;
    struct rx_search *sr = x->search;
    x->search = NULL;
    if (rep == NULL) {
        rx_search_free(sr);
        rx_requeue(x);
        return;
    }
    int st =
        render(x, sr->coll, sr->p, sr->n, &sr->mp, sr->batch, sr->open, sr->close, rep, metric);
    rx_search_free(sr);
    rx_finish(x, st);
}

/* Starts the plans of a fast search: REST_STARTED, REST_SLOW (an id-order plan, or not a plain
 * search), or an error status. Takes p and mp in every case. */
static int start_plans(struct rx *x, const char *coll, struct plan *p, size_t n, struct buf *mp,
                       bool batch, const char *open, const char *close)
{
    int st = REST_SLOW;
    for (size_t i = 0; i < n; i++)
        if (p[i].scroll)
            goto out; /* a scroll is a call */
    struct rx_search *sr = calloc(1, sizeof *sr);
    if (sr == NULL) {
        st = oom(x);
        goto out;
    }
    size_t nq;
    if ((st = build_queries(x, p, n, mp, &sr->qs, &nq)) != 200) {
        free(sr);
        goto out;
    }
    *sr = (struct rx_search){coll, p, n, *mp, sr->qs, {.type = MSG_P_SEARCH}, batch, open, close};
    sr->req.addr.coll = S(coll);
    sr->req.req_id = 0;
    sr->req.u.csearch_req = (struct msg_csearch_req){sr->qs, (uint32_t)nq, false, x->timeout_ms};
    x->search = sr;
    if (x->r->o.search(x->r->o.search_arg, &sr->req, search_done, x))
        return REST_STARTED; /* x may be answered and gone already */
    x->search = NULL;
    rx_search_free(sr);
    return REST_SLOW;
out:
    plans_free(p, n);
    buf_free(mp);
    return st;
}

int rs_batch(struct rx *x, bool batch, json_t **list, size_t *n)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    *list = x->json;
    *n = 1;
    if (!batch)
        return 200;
    *list = json_object_get(x->json, "searches");
    if (*list == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `searches`");
    if (!json_is_array(*list))
        return rj_type_error(x, "searches", "expected an array");
    *n = json_array_size(*list);
    if (*n > 1024)
        return rx_fail(x, 400, "Wrong input: %zu searches in one batch, at most 1024", *n);
    return 200;
}

/* Search and query, single or batch ({"searches": [...]}). */
static int searches(struct rx *x, const char *coll, bool batch, bool query)
{
    json_t *list;
    size_t n;
    int st = rs_batch(x, batch, &list, &n);
    if (st != 200)
        return st;
    for (size_t i = 0; query && i < n; i++) {
        json_t *o = batch ? json_array_get(list, i) : list;
        if (json_is_object(o) && rq_wants(o)) {
            /* a tree in the batch: every query of it runs as one (rest_query.c) */
            json_t **reqs = malloc(n * sizeof *reqs);
            if (reqs == NULL)
                return oom(x);
            for (size_t j = 0; j < n; j++)
                reqs[j] = batch ? json_array_get(list, j) : list;
            st = rq_run(x, coll, reqs, n, batch, "{\"points\":", "}");
            free(reqs);
            return st;
        }
    }
    struct plan *p = calloc(n ? n : 1, sizeof *p);
    if (p == NULL)
        return oom(x);
    struct buf mp = BUF_INIT;
    /* Filters are appended to mp while parsing; their offsets stay valid as it grows. */
    for (size_t i = 0; i < n && st == 200; i++) {
        json_t *o = batch ? json_array_get(list, i) : list;
        st = query ? parse_query(x, coll, o, &p[i], &mp) : parse_search(x, coll, o, &p[i], &mp);
    }
    const char *open = query ? "{\"points\":" : "", *close = query ? "}" : "";
    if (st == 200 && x->fast)
        return start_plans(x, coll, p, n, &mp, batch, open, close);
    if (st == 200)
        st = run_plans(x, coll, p, n, &mp, batch, open, close);
    plans_free(p, n);
    buf_free(&mp);
    return st;
}

int rh_search(struct rx *x, const char *coll, bool batch)
{
    return searches(x, coll, batch, false);
}

int rh_query(struct rx *x, const char *coll, bool batch)
{
    return searches(x, coll, batch, true);
}

/* ---- scroll and count -------------------------------------------------------------------- */
