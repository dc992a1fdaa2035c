/* rest_query.c - the Query API's trees: prefetch (nested), re-scoring a prefetch's points with
 * another query, the points in id order, and the recommend and discover endpoints, which are
 * such queries; fusion, recommend, discover and context are scored in rest_explore.c.
 *
 * A tree runs on a worker, node by node: every search is a native search of the whole
 * collection (the coordinator merges its partitions' answers), so what is fused or re-scored
 * is the collection's global top list, never a partition's. Re-scoring is a search restricted
 * to the candidates (a has_id filter, an exact pass on the nodes). A query's plain nearest
 * prefetches run as one native batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rest_int.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

#define RQ_MAX_DEPTH 16 /* nested prefetches */

void rq_list_free(struct rq_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int rq_by_id(const void *a, const void *b)
{
    return pid_cmp(&((const struct rq_hit *)a)->id, &((const struct rq_hit *)b)->id);
}

int rq_by_score(const void *a, const void *b)
{
    float x = ((const struct rq_hit *)a)->score, y = ((const struct rq_hit *)b)->score;
    return x > y   ? -1
           : x < y ? 1
                   : pid_cmp(&((const struct rq_hit *)a)->id, &((const struct rq_hit *)b)->id);
}

/* The similarity of a score: higher is better. */
float rq_sim(const struct rq_list *l, float s)
{
    return l->lower ? -s : s;
}

/* ---- filters ----------------------------------------------------------------------------- */

/* A point id as JSON (a new reference). */
static json_t *json_pid(const struct pid *id)
{
    if (id->kind == PID_NUM)
        return json_integer((json_int_t)id->lo);
    char t[PID_TEXT_MAX];
    pid_format(id, t);
    return json_string(t);
}

/* {"must": [a, b]} of the filters present (new reference or NULL for none). */
static json_t *filter_and(json_t *a, json_t *b)
{
    if (a == NULL || b == NULL) {
        json_t *one = a ? a : b;
        return one ? json_incref(one) : NULL;
    }
    return json_pack("{s:[O,O]}", "must", a, b);
}

/* f restricted to the points of `ids` (new reference). */
static json_t *filter_ids(json_t *f, const struct rq_list *ids)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < ids->n; i++)
        if (json_array_append_new(arr, json_pid(&ids->v[i].id)) != 0) {
            json_decref(arr);
            return NULL;
        }
    json_t *h = arr ? json_pack("{s:[{s:o}]}", "must", "has_id", arr) : NULL;
    json_t *out = h ? filter_and(f, h) : NULL;
    json_decref(h);
    return out;
}

/* ---- searches ---------------------------------------------------------------------------- */

/* One search of a native batch: vector v, k results, ef, under the JSON filter f (may be
 * NULL; borrowed). */
struct leaf {
    const struct rs_qvec *v;
    uint32_t k, ef;
    json_t *f;
};

/* Runs the searches lq[nq] in one native request over the collection: the hits of search j
 * into res[j] (its own vector's direction), at most lq[j].k of them, without the point its
 * vector excludes. */
static int search_many(struct rq_ctx *r, const struct leaf *lq, size_t nq, struct rq_list *res)
{
    struct rx *x = r->x;
    struct buf mp = BUF_INIT;
    size_t *off = calloc(nq ? 2 * nq : 1, sizeof *off);
    struct msg_query *qs = calloc(nq ? nq : 1, sizeof *qs);
    int st = off && qs ? 200 : rx_oom(x);
    for (size_t j = 0; st == 200 && j < nq; j++)
        st = rj_filter(x, lq[j].f, "filter", &mp, &off[2 * j], &off[2 * j + 1]);
    for (size_t j = 0; st == 200 && j < nq; j++) { /* mp does not move any more */
        const struct rs_qvec *v = lq[j].v;
        uint32_t kj = lq[j].k + (v->exclude ? 1 : 0);
        qs[j] = (struct msg_query){.vec = v->vec,
                                   .dim = v->dim,
                                   .k = kj > PROTO_MAX_K ? PROTO_MAX_K : kj,
                                   .ef = lq[j].ef,
                                   .filter = rx_bytes(&mp, off[2 * j], off[2 * j + 1]),
                                   .using = S(v->using),
                                   .idx = v->idx,
                                   .rows = v->rows};
    }
    struct msg_reply rep = {0};
    if (st == 200) {
        struct msg q = {.type = MSG_P_SEARCH};
        q.addr.coll = S(r->coll);
        q.u.csearch_req = (struct msg_csearch_req){qs, (uint32_t)nq, false, r->timeout_ms};
        st = rx_call(x, &q, &rep);
    }
    for (size_t j = 0; st == 200 && j < nq; j++) {
        const struct msg_hits *h = &rep.m.u.csearch_rep.results[j];
        const struct rs_qvec *v = lq[j].v;
        res[j] = (struct rq_list){calloc(h->n ? h->n : 1, sizeof *res[j].v), 0,
                                  rs_lower(x, r->coll, v->using)};
        if (res[j].v == NULL) {
            st = rx_oom(x);
            break;
        }
        for (uint32_t i = 0; i < h->n && res[j].n < lq[j].k; i++)
            if (!(v->exclude && pid_eq(&h->hits[i].id, &v->excl)))
                res[j].v[res[j].n++] =
                    (struct rq_hit){.id = h->hits[i].id, .score = h->hits[i].score};
    }
    msg_reply_free(&rep);
    free(qs);
    free(off);
    buf_free(&mp);
    return st;
}

/* search_many of nq vectors with the same k, ef and filter f, restricted to the points of
 * `only` when not NULL. */
int rq_search(struct rq_ctx *r, const struct rs_qvec *qv, size_t nq, uint32_t k, uint32_t ef,
              json_t *f, const struct rq_list *only, struct rq_list *res)
{
    json_t *ff = only ? filter_ids(f, only) : f;
    struct leaf *lq = calloc(nq ? nq : 1, sizeof *lq);
    int st = lq && (ff || !only) ? 200 : rx_oom(r->x);
    for (size_t j = 0; st == 200 && j < nq; j++)
        lq[j] = (struct leaf){&qv[j], k, ef, ff};
    if (st == 200)
        st = search_many(r, lq, nq, res);
    if (only)
        json_decref(ff);
    free(lq);
    return st;
}

/* The first `limit` points in id order that match f (a query without `query`); score 0. */
static int scroll(struct rq_ctx *r, json_t *f, uint32_t limit, struct rq_list *out)
{
    struct buf mp = BUF_INIT;
    size_t off = 0, len = 0;
    int st = rj_filter(r->x, f, "filter", &mp, &off, &len);
    struct msg_reply rep = {0};
    if (st == 200) {
        struct msg q = {.type = MSG_P_SCROLL};
        q.addr.coll = S(r->coll);
        q.u.scroll_req =
            (struct msg_scroll_req){false, {0}, limit, rx_bytes(&mp, off, len), false, false};
        st = rx_call(r->x, &q, &rep);
    }
    if (st == 200) {
        const struct msg_hits *h = &rep.m.u.scroll_rep.hits;
        *out = (struct rq_list){calloc(h->n ? h->n : 1, sizeof *out->v), 0, false};
        if (out->v == NULL)
            st = rx_oom(r->x);
        for (uint32_t i = 0; st == 200 && i < h->n; i++)
            out->v[out->n++] = (struct rq_hit){.id = h->hits[i].id};
    }
    msg_reply_free(&rep);
    buf_free(&mp);
    return st;
}

/* ---- lists ------------------------------------------------------------------------------- */

/* The distinct points of the lists, by id (scores 0) into *out. */
int rq_union(struct rx *x, const struct rq_list *l, size_t n, struct rq_list *out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += l[i].n;
    *out = (struct rq_list){calloc(total ? total : 1, sizeof *out->v), 0, false};
    if (out->v == NULL)
        return rx_oom(x);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < l[i].n; j++)
            out->v[out->n++] = (struct rq_hit){.id = l[i].v[j].id};
    qsort(out->v, out->n, sizeof *out->v, rq_by_id);
    size_t m = 0;
    for (size_t i = 0; i < out->n; i++)
        if (m == 0 || !pid_eq(&out->v[m - 1].id, &out->v[i].id))
            out->v[m++] = out->v[i];
    out->n = m;
    return 200;
}

/* Where id is in u (sorted by id), or -1. */
long rq_pos(const struct rq_list *u, const struct pid *id)
{
    struct rq_hit key = {.id = *id};
    const struct rq_hit *at = bsearch(&key, u->v, u->n, sizeof key, rq_by_id);
    return at ? at - u->v : -1;
}

/* ---- the tree ---------------------------------------------------------------------------- */

static int eval(struct rq_ctx *r, json_t *o, json_t *pf, uint32_t limit, int depth,
                struct rq_list *out);

/* A nearest query's vector: a vector, {"nearest": v} or a point id, for the vector v->using. */
static int nearest_input(struct rq_ctx *r, json_t *q, struct rs_qvec *v)
{
    json_t *in = q;
    if (json_is_object(q) && json_object_get(q, "indices") == NULL) {
        in = json_object_get(q, "nearest");
        if (in == NULL) {
            const char *kind = "?", *key;
            json_t *val;
            json_object_foreach(q, key, val)
            {
                kind = key;
                break;
            }
            return rx_fail(r->x, 400, "Wrong input: query type `%.32s` is not supported by dvec",
                           kind);
        }
        if (rj_get(q, "mmr"))
            return rx_fail(r->x, 400, "Wrong input: `mmr` is not supported by dvec");
    }
    return rs_vector_input(r->x, r->coll, in, "query", v);
}

/* Cuts a result (best first) at the first point past score_threshold, and to `limit`. */
static void cut(struct rq_list *l, bool has_thr, float thr, uint32_t limit)
{
    size_t m = 0;
    while (has_thr && m < l->n && (l->lower ? l->v[m].score <= thr : l->v[m].score >= thr))
        m++;
    if (has_thr)
        l->n = m;
    if (l->n > limit)
        l->n = limit;
}

/*
 * order_by (rest_order.c's ordered scroll): the points matching f, among `only` when given (a
 * prefetch's), in the order of a payload value, each scored by its value; a point holding
 * several values comes once per value.
 */
static int order_by(struct rq_ctx *r, json_t *ob, json_t *f, const struct rq_list *only,
                    uint32_t limit, struct rq_list *out)
{
    json_t *ff = only ? filter_ids(f, only) : (f ? json_incref(f) : NULL);
    if (only && ff == NULL)
        return rx_oom(r->x);
    struct msg_reply rep;
    bool desc = false;
    int st = ro_scroll(r->x, r->coll, ob, "query.order_by", ff, limit, false, false, &desc, &rep);
    json_decref(ff);
    if (st != 200)
        return st;
    const struct msg_oscroll_rep *o = &rep.m.u.oscroll_rep;
    *out = (struct rq_list){calloc(o->hits.n ? o->hits.n : 1, sizeof *out->v), 0, !desc};
    if (out->v == NULL)
        st = rx_oom(r->x);
    for (uint32_t i = 0; st == 200 && i < o->hits.n; i++)
        out->v[out->n++] = (struct rq_hit){.id = o->hits.hits[i].id,
                                           .score = o->vals[i].is_float ? (float)o->vals[i].f
                                                                        : (float)o->vals[i].i,
                                           .has_ov = true,
                                           .ov = o->vals[i]};
    msg_reply_free(&rep);
    return st;
}

int rq_sample(struct rq_ctx *r, json_t *f, const struct rq_list *only, uint32_t limit,
              struct rq_list *out)
{
    json_t *ff = only ? filter_ids(f, only) : f;
    if (only && ff == NULL)
        return rx_oom(r->x);
    struct msg_reply rep;
    int st = ro_sample(r->x, r->coll, ff, limit, &rep);
    if (only)
        json_decref(ff);
    if (st != 200)
        return st;
    const struct msg_oscroll_rep *o = &rep.m.u.oscroll_rep;
    *out = (struct rq_list){calloc(o->hits.n ? o->hits.n : 1, sizeof *out->v), 0, false};
    if (out->v == NULL)
        st = rx_oom(r->x);
    for (uint32_t i = 0; st == 200 && i < o->hits.n; i++)
        out->v[out->n++] = (struct rq_hit){.id = o->hits.hits[i].id};
    msg_reply_free(&rep);
    return st;
}

/* A query `q` with prefetch results l[n]: the query's own points into *out (limit of them). */
static int run_query(struct rq_ctx *r, json_t *o, json_t *q, json_t *f, const struct rq_list *l,
                     size_t n, uint32_t limit, struct rq_list *out)
{
    struct rx *x = r->x;
    int st;
    uint32_t ef;
    bool has_thr;
    float thr;
    if ((st = rs_params(x, o, &ef, &has_thr, &thr)) != 200)
        return st;
    struct rs_qvec base = {0};
    if ((st = rs_using(x, rj_get(o, "using"), "using", &base)) != 200)
        return st;
    struct rq_list cands = {0};
    if (n > 0 && (st = rq_union(x, l, n, &cands)) != 200)
        return st;
    const struct rq_list *only = n > 0 ? &cands : NULL;
    if (q == NULL) {
        /* no query: the one prefetch's points, or the first points in id order */
        if (n > 1)
            st = rx_fail(x, 400,
                         "Wrong input: %zu prefetches and no query to combine them (`fusion`)", n);
        else if (n == 1) {
            *out = (struct rq_list){malloc((l[0].n ? l[0].n : 1) * sizeof *out->v), 0, l[0].lower};
            if (out->v == NULL)
                st = rx_oom(x);
            for (size_t i = 0; st == 200 && i < l[0].n && out->n < limit; i++)
                out->v[out->n++] = l[0].v[i];
        } else
            st = scroll(r, f, limit, out);
        rq_list_free(&cands);
        return st;
    }
    json_t *k;
    if (json_is_object(q) && ((k = json_object_get(q, "fusion")) || json_object_get(q, "rrf"))) {
        st = rq_fusion(r, q, l, n, out);
    } else if (json_is_object(q) && (k = json_object_get(q, "recommend")) != NULL) {
        st = rq_recommend(r, k, base.using, f, limit, ef, only, out);
    } else if (json_is_object(q) && ((k = json_object_get(q, "discover")) != NULL ||
                                     (k = json_object_get(q, "context")) != NULL)) {
        st = rq_discover(r, k, json_object_get(q, "discover") != NULL, base.using, f, limit, ef,
                         only, out);
    } else if (json_is_object(q) && json_object_get(q, "order_by") != NULL) {
        st = order_by(r, json_object_get(q, "order_by"), f, only, limit, out);
    } else if (json_is_object(q) && json_object_get(q, "sample") != NULL) {
        json_t *how = json_object_get(q, "sample");
        if (!json_is_string(how) || strcmp(json_string_value(how), "random") != 0)
            st = rx_fail(x, 400,
                         "Format error in JSON body: query.sample: unknown variant, expected "
                         "`random`");
        else /* a random sample of the matching points (of the prefetches' if any) */
            st = rq_sample(r, f, only, limit, out);
    } else {
        st = nearest_input(r, q, &base); /* a vector, {"nearest": v}, a point id */
        if (st == 200)
            st = rq_search(r, &base, 1, limit, ef, f, only, out);
    }
    rs_qvec_free(&base);
    rq_list_free(&cands);
    if (st == 200)
        cut(out, has_thr, thr, limit);
    return st;
}

/* A prefetch that is a plain nearest search, parsed: prefetch number i of its parent. */
struct pleaf {
    size_t i;
    struct rs_qvec v;
    json_t *f; /* the parent's filter and its own (owned) */
    uint32_t limit, ef;
    bool has_thr;
    float thr;
};

/* Checks that o (a prefetch or a query) asks for nothing dvec refuses, and gives its filter
 * joined with the parent's pf (a new reference or NULL) in *f. */
static int own_filter(struct rq_ctx *r, json_t *o, json_t *pf, json_t **f)
{
    static const char *const unsupported[] = {"lookup_from", "shard_key", NULL};
    *f = NULL;
    int st = rj_unsupported(r->x, o, unsupported);
    if (st != 200)
        return st;
    json_t *own = rj_get(o, "filter");
    if (own && !json_is_object(own))
        return rj_type_error(r->x, "filter", "expected an object");
    *f = filter_and(pf, own); /* a parent's filter holds for its prefetches too */
    return 200;
}

static int leaf_prepare(struct rq_ctx *r, json_t *c, json_t *pf, struct pleaf *pl)
{
    int st = own_filter(r, c, pf, &pl->f);
    if (st == 200)
        st = rs_params(r->x, c, &pl->ef, &pl->has_thr, &pl->thr);
    if (st == 200)
        st = rs_using(r->x, rj_get(c, "using"), "using", &pl->v);
    if (st == 200)
        st = nearest_input(r, rj_get(c, "query"), &pl->v);
    return st;
}

/* The searches of the leaves pl[n], in one native request; leaf j's points into l[pl[j].i]. */
static int run_leaves(struct rq_ctx *r, struct pleaf *pl, size_t n, struct rq_list *l)
{
    struct leaf *lq = calloc(n, sizeof *lq);
    struct rq_list *res = calloc(n, sizeof *res);
    int st = lq && res ? 200 : rx_oom(r->x);
    for (size_t j = 0; st == 200 && j < n; j++)
        lq[j] = (struct leaf){&pl[j].v, pl[j].limit, pl[j].ef, pl[j].f};
    if (st == 200)
        st = search_many(r, lq, n, res);
    for (size_t j = 0; res && j < n; j++) {
        if (st == 200) {
            cut(&res[j], pl[j].has_thr, pl[j].thr, pl[j].limit);
            l[pl[j].i] = res[j];
        } else {
            rq_list_free(&res[j]);
        }
    }
    free(lq);
    free(res);
    return st;
}

/* Evaluates query (or prefetch) o under the parent's filter pf: its `limit` best points. */
static int eval(struct rq_ctx *r, json_t *o, json_t *pf, uint32_t limit, int depth,
                struct rq_list *out)
{
    struct rx *x = r->x;
    *out = (struct rq_list){0};
    if (!json_is_object(o))
        return rj_type_error(x, "prefetch", "expected an object");
    if (depth > RQ_MAX_DEPTH)
        return rx_fail(x, 400, "Wrong input: prefetches nested more than %d deep", RQ_MAX_DEPTH);
    json_t *f;
    int st = own_filter(r, o, pf, &f);
    if (st != 200)
        return st;
    json_t *pre = rj_get(o, "prefetch");
    size_t n = pre == NULL ? 0 : json_is_array(pre) ? json_array_size(pre) : 1;
    if (n > RQ_MAX_PREFETCH) {
        json_decref(f);
        return rx_fail(x, 400, "Wrong input: %zu prefetches in one query, at most %d", n,
                       RQ_MAX_PREFETCH);
    }
    struct rq_list *l = calloc(n ? n : 1, sizeof *l);
    struct pleaf *pl = calloc(n ? n : 1, sizeof *pl);
    if (l == NULL || pl == NULL)
        st = rx_oom(x);
    size_t nl = 0;
    for (size_t i = 0; st == 200 && i < n; i++) {
        json_t *c = json_is_array(pre) ? json_array_get(pre, i) : pre;
        uint64_t cl = 10;
        if (json_is_object(c) && (st = rj_u64(x, c, "limit", 10, 1, PROTO_MAX_K, &cl)) != 200)
            break;
        if (json_is_object(c) && rj_get(c, "prefetch") == NULL && rj_get(c, "query") != NULL &&
            !rq_wants(c)) {
            /* a plain nearest search: batched with its siblings below */
            pl[nl].i = i;
            pl[nl].limit = (uint32_t)cl;
            st = leaf_prepare(r, c, f, &pl[nl++]);
        } else {
            st = eval(r, c, f, (uint32_t)cl, depth + 1, &l[i]);
        }
    }
    if (st == 200 && nl > 0)
        st = run_leaves(r, pl, nl, l);
    for (size_t i = 0; pl && i < nl; i++) {
        rs_qvec_free(&pl[i].v);
        json_decref(pl[i].f);
    }
    free(pl);
    if (st == 200)
        st = run_query(r, o, rj_get(o, "query"), f, l, n, limit, out);
    for (size_t i = 0; l && i < n; i++)
        rq_list_free(&l[i]);
    free(l);
    json_decref(f);
    if (st != 200)
        rq_list_free(out);
    return st;
}

/* ---- results ----------------------------------------------------------------------------- */

static int hit_by_id(const void *a, const void *b)
{
    return pid_cmp(&((const struct msg_hit *)a)->id, &((const struct msg_hit *)b)->id);
}

int rq_fetch(struct rx *x, const char *coll, struct pid *ids, size_t n, bool with_vector,
             bool with_payload, struct msg_reply *rep, struct msg_hits *got)
{
    struct msg q = {.type = MSG_P_GET};
    q.addr.coll = S(coll);
    q.u.get_req = (struct msg_get_req){ids, (uint32_t)n, with_vector, with_payload};
    *got = (struct msg_hits){0};
    int st = rx_call(x, &q, rep);
    if (st != 200)
        return st;
    *got = rep->m.u.get_rep;
    qsort(got->hits, got->n, sizeof *got->hits, hit_by_id);
    return 200;
}

const struct msg_hit *rq_find(const struct msg_hits *got, const struct pid *id)
{
    struct msg_hit key = {.id = *id};
    return got->n ? bsearch(&key, got->hits, got->n, sizeof key, hit_by_id) : NULL;
}

/* Writes the points of res past `offset` as ScoredPoints, with payload and vectors as o asks
 * (fetched in one call). */
static int render(struct rq_ctx *r, json_t *o, const struct rq_list *res, uint32_t offset)
{
    struct rx *x = r->x;
    struct psel sel;
    bool with_vector;
    int st;
    if ((st = rj_psel(x, o, "with_payload", false, &sel)) != 200 ||
        (st = rj_with_vector(x, o, false, &with_vector)) != 200)
        return st;
    size_t n = res->n > offset ? res->n - offset : 0;
    struct pid *ids = malloc((n ? n : 1) * sizeof *ids);
    if (ids == NULL)
        return rx_oom(x);
    for (size_t i = 0; i < n; i++)
        ids[i] = res->v[offset + i].id;
    struct msg_reply rep = {0};
    struct msg_hits got = {0};
    if (n > 0 && (sel.on || with_vector) &&
        (st = rq_fetch(x, r->coll, ids, n, with_vector, sel.on, &rep, &got)) != 200) {
        free(ids);
        return st;
    }
    struct msg_coll_cfg cfg;
    bool known = rx_cfg(x, r->coll, &cfg);
    struct rv_out vo = {known ? &cfg : NULL, rj_vector_names(o)};
    int rc = jw_raw(&x->res, "[");
    size_t written = 0;
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        struct msg_hit h = {.id = ids[i], .score = res->v[offset + i].score};
        if (sel.on || with_vector) {
            const struct msg_hit *g = rq_find(&got, &ids[i]);
            if (g == NULL)
                continue; /* deleted since */
            h = *g;
            h.score = res->v[offset + i].score;
        }
        if (written++)
            rc = jw_raw(&x->res, ",");
        if (rc == DV_OK)
            rc = jw_point(&x->res, &h, true, &sel, with_vector, &vo);
        if (rc == DV_OK && res->v[offset + i].has_ov) { /* order_by: the value, inside the } */
            x->res.len--;
            rc = jw_raw(&x->res, ",\"order_value\":");
            if (rc == DV_OK)
                rc = jw_ordval(&x->res, &res->v[offset + i].ov);
            if (rc == DV_OK)
                rc = jw_raw(&x->res, "}");
        }
    }
    if (rc == DV_OK)
        rc = jw_raw(&x->res, "]");
    msg_reply_free(&rep);
    free(ids);
    if (rc == DV_ENOMEM)
        return rx_oom(x);
    return rc == DV_OK
               ? 200
               : rx_fail(x, 500, "Service internal error: a payload cannot be shown as JSON (%s)",
                         dv_strerror(rc));
}

int rq_eval(struct rx *x, const char *coll, json_t *o, uint32_t limit, struct rq_list *out)
{
    struct rq_ctx r = {x, coll, x->timeout_ms};
    return eval(&r, o, NULL, limit, 0, out);
}

bool rq_wants(json_t *o)
{
    json_t *q = json_object_get(o, "query");
    if (json_object_get(o, "prefetch") != NULL)
        return true;
    if (!json_is_object(q))
        return false;
    static const char *const kinds[] = {"fusion",  "rrf",      "recommend", "discover",
                                        "context", "order_by", "sample",    NULL};
    for (int i = 0; kinds[i]; i++)
        if (json_object_get(q, kinds[i]) != NULL)
            return true;
    return false;
}

int rq_run(struct rx *x, const char *coll, json_t *const *reqs, size_t n, bool batch,
           const char *open, const char *close)
{
    if (x->fast)
        return REST_SLOW; /* several calls: a worker's */
    struct rq_ctx r = {x, coll, x->timeout_ms};
    int st = 200;
    int rc = batch ? jw_raw(&x->res, "[") : DV_OK;
    for (size_t i = 0; i < n && st == 200 && rc == DV_OK; i++) {
        json_t *o = reqs[i];
        if (!json_is_object(o))
            return rj_type_error(x, "searches[]", "expected an object");
        uint64_t limit, offset;
        if ((st = rj_u64(x, o, "limit", 10, 1, PROTO_MAX_K, &limit)) != 200 ||
            (st = rj_u64(x, o, "offset", 0, 0, PROTO_MAX_K, &offset)) != 200)
            return st;
        if (limit + offset > PROTO_MAX_K) {
            char what[64];
            snprintf(what, sizeof what, "limit + offset must be %u or smaller", PROTO_MAX_K);
            return rj_invalid(x, "limit", what);
        }
        struct rq_list res;
        if ((st = eval(&r, o, NULL, (uint32_t)(limit + offset), 0, &res)) != 200)
            return st;
        if (batch && i)
            rc = jw_raw(&x->res, ",");
        if (rc == DV_OK)
            rc = jw_raw(&x->res, open);
        if (rc == DV_OK)
            st = render(&r, o, &res, (uint32_t)offset);
        if (st == 200 && rc == DV_OK)
            rc = jw_raw(&x->res, close);
        rq_list_free(&res);
    }
    if (st == 200 && rc == DV_OK && batch)
        rc = jw_raw(&x->res, "]");
    if (st == 200 && rc != DV_OK)
        return rx_oom(x);
    return st;
}

json_t *rq_as_query(json_t *o, bool discover)
{
    json_t *q = json_copy(o), *inner;
    if (q == NULL)
        return NULL;
    if (discover) {
        json_t *t = rj_get(o, "target"), *c = json_object_get(o, "context");
        inner = t ? json_pack("{s:{s:O,s:O*}}", "discover", "target", t, "context", c)
                  : json_pack("{s:O*}", "context", c ? c : json_null());
        json_object_del(q, "target");
        json_object_del(q, "context");
    } else {
        inner = json_pack(
            "{s:{s:O*,s:O*,s:O*}}", "recommend", "positive", json_object_get(o, "positive"),
            "negative", json_object_get(o, "negative"), "strategy", json_object_get(o, "strategy"));
        json_object_del(q, "positive");
        json_object_del(q, "negative");
        json_object_del(q, "strategy");
    }
    if (inner == NULL || json_object_set_new(q, "query", inner) != 0) {
        json_decref(q);
        return NULL;
    }
    return q;
}

int rh_recommend(struct rx *x, const char *coll, bool batch, bool discover)
{
    json_t *list;
    size_t n;
    int st = rs_batch(x, batch, &list, &n);
    if (st != 200)
        return st;
    json_t **reqs = calloc(n ? n : 1, sizeof *reqs);
    if (reqs == NULL)
        return rx_oom(x);
    for (size_t i = 0; i < n && st == 200; i++) {
        json_t *o = batch ? json_array_get(list, i) : list;
        if (!json_is_object(o))
            st = rj_type_error(x, "searches[]", "expected an object");
        else if (rj_get(o, "limit") == NULL)
            st = rx_fail(x, 400, "Format error in JSON body: missing field `limit`");
        else if ((reqs[i] = rq_as_query(o, discover)) == NULL)
            st = rx_oom(x);
    }
    if (st == 200)
        st = rq_run(x, coll, reqs, n, batch, "", "");
    for (size_t i = 0; i < n; i++)
        json_decref(reqs[i]);
    free(reqs);
    return st;
}
