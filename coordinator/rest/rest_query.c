/* rest_query.c - the Query API's trees: prefetch (nested), fusion (rrf, dbsf), re-scoring a
 * prefetch's points with another query, recommend (average_vector, best_score, sum_scores),
 * discover and context; and the recommend and discover endpoints, which are such queries.
 *
 * A tree runs on a worker, node by node: every search is a native search of the whole
 * collection (the coordinator merges its partitions' answers), so what is fused or re-scored
 * here is the collection's global top list, never a partition's. Re-scoring is a search
 * restricted to the candidates (a has_id filter, an exact pass on the nodes). Queries scored by
 * several examples (best_score, sum_scores, discover, context) take their candidates from the
 * prefetch, or else from each example's nearest neighbours, and score every candidate exactly
 * against every example. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rest_int.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

#define RQ_MAX_DEPTH    16 /* nested prefetches */
#define RQ_MAX_PREFETCH 64 /* prefetches of one query */
#define RQ_MAX_EXAMPLES 64 /* positive + negative (+ target, context pairs) of one query */
#define RQ_CAND_FACTOR  4  /* candidates per example: this many times what is asked for */
#define RQ_RRF_K        2  /* Qdrant's default k of rrf */

/* One tree's run. */
struct qrun {
    struct rx *x;
    const char *coll;
    uint32_t timeout_ms;
};

void rq_list_free(struct rq_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int sp_by_id(const void *a, const void *b)
{
    return pid_cmp(&((const struct rq_hit *)a)->id, &((const struct rq_hit *)b)->id);
}

static int sp_by_score(const void *a, const void *b)
{
    float x = ((const struct rq_hit *)a)->score, y = ((const struct rq_hit *)b)->score;
    return x > y   ? -1
           : x < y ? 1
                   : pid_cmp(&((const struct rq_hit *)a)->id, &((const struct rq_hit *)b)->id);
}

/* The similarity of a score: higher is better. */
static float sim(const struct rq_list *l, float s)
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

/*
 * Runs nq queries (qv[j], k results each, at most PROTO_MAX_K) over the collection with the
 * JSON filter f (may be NULL), restricted to the points of `only` when not NULL; the hits of
 * query j into res[j] (its own vector's direction), without the point a query excludes.
 */
static int search(struct qrun *r, const struct rs_qvec *qv, size_t nq, uint32_t k, uint32_t ef,
                  json_t *f, const struct rq_list *only, struct rq_list *res)
{
    struct rx *x = r->x;
    json_t *ff = only ? filter_ids(f, only) : (f ? json_incref(f) : NULL);
    if (only && ff == NULL)
        return rx_oom(x);
    struct buf mp = BUF_INIT;
    size_t off = 0, len = 0;
    int st = rj_filter(x, ff, "filter", &mp, &off, &len);
    json_decref(ff);
    struct msg_query *qs = calloc(nq ? nq : 1, sizeof *qs);
    if (st == 200 && qs == NULL)
        st = rx_oom(x);
    for (size_t j = 0; st == 200 && j < nq; j++) {
        uint32_t kj = k + (qv[j].exclude ? 1 : 0);
        qs[j] = (struct msg_query){.vec = qv[j].vec,
                                   .dim = qv[j].dim,
                                   .k = kj > PROTO_MAX_K ? PROTO_MAX_K : kj,
                                   .ef = ef,
                                   .filter = rx_bytes(&mp, off, len),
                                   .using = S(qv[j].using),
                                   .idx = qv[j].idx,
                                   .rows = qv[j].rows};
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
        res[j] = (struct rq_list){calloc(h->n ? h->n : 1, sizeof *res[j].v), 0,
                                  rs_lower(x, r->coll, qv[j].using)};
        if (res[j].v == NULL) {
            st = rx_oom(x);
            break;
        }
        for (uint32_t i = 0; i < h->n && res[j].n < k; i++)
            if (!(qv[j].exclude && pid_eq(&h->hits[i].id, &qv[j].excl)))
                res[j].v[res[j].n++] = (struct rq_hit){h->hits[i].id, h->hits[i].score};
    }
    msg_reply_free(&rep);
    free(qs);
    buf_free(&mp);
    return st;
}

/* The first `limit` points in id order that match f (a query without `query`); score 0. */
static int scroll(struct qrun *r, json_t *f, uint32_t limit, struct rq_list *out)
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
            out->v[out->n++] = (struct rq_hit){h->hits[i].id, 0};
    }
    msg_reply_free(&rep);
    buf_free(&mp);
    return st;
}

/* ---- fusion ------------------------------------------------------------------------------ */

/* The distinct points of the lists, by id (scores 0) into *out. */
static int union_of(struct rx *x, const struct rq_list *l, size_t n, struct rq_list *out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += l[i].n;
    *out = (struct rq_list){calloc(total ? total : 1, sizeof *out->v), 0, false};
    if (out->v == NULL)
        return rx_oom(x);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < l[i].n; j++)
            out->v[out->n++] = (struct rq_hit){l[i].v[j].id, 0};
    qsort(out->v, out->n, sizeof *out->v, sp_by_id);
    size_t m = 0;
    for (size_t i = 0; i < out->n; i++)
        if (m == 0 || !pid_eq(&out->v[m - 1].id, &out->v[i].id))
            out->v[m++] = out->v[i];
    out->n = m;
    return 200;
}

/* Where id is in u (sorted by id), or -1. */
static long find(const struct rq_list *u, const struct pid *id)
{
    struct rq_hit key = {*id, 0};
    const struct rq_hit *at = bsearch(&key, u->v, u->n, sizeof key, sp_by_id);
    return at ? at - u->v : -1;
}

/*
 * Fuses the lists into *out, best first: rrf (dbsf false) adds 1 / ((rank + 1) / w + k - 1)
 * for each list a point is in (rank from 0, w the list's weight, 1 without weights; Qdrant's
 * form); dbsf adds the point's score in each list normalised by that list's mean +- 3
 * standard deviations and clamped into [0, 1].
 */
static int fuse(struct rx *x, const struct rq_list *l, size_t n, bool dbsf, double k,
                const double *w, struct rq_list *out)
{
    int st = union_of(x, l, n, out);
    for (size_t i = 0; st == 200 && i < n; i++) {
        double mean = 0, var = 0;
        for (size_t j = 0; dbsf && j < l[i].n; j++)
            mean += sim(&l[i], l[i].v[j].score);
        mean = l[i].n ? mean / (double)l[i].n : 0;
        for (size_t j = 0; dbsf && j < l[i].n; j++) {
            double d = sim(&l[i], l[i].v[j].score) - mean;
            var += d * d;
        }
        double sd = l[i].n ? sqrt(var / (double)l[i].n) : 0, lo = mean - 3 * sd, hi = mean + 3 * sd;
        for (size_t j = 0; j < l[i].n; j++) {
            double add;
            if (dbsf) {
                add = hi > lo ? (sim(&l[i], l[i].v[j].score) - lo) / (hi - lo) : 0.5;
                add = add < 0 ? 0 : add > 1 ? 1 : add;
            } else {
                double wi = w ? w[i] : 1.0;
                add = wi > 0 ? 1.0 / ((double)(j + 1) / wi + k - 1.0) : 0;
            }
            out->v[find(out, &l[i].v[j].id)].score += (float)add;
        }
    }
    if (st == 200)
        qsort(out->v, out->n, sizeof *out->v, sp_by_score);
    return st;
}

/* {"fusion": "rrf" | "dbsf"} or {"rrf": {"k": n, "weights": [w...]}} over the prefetches. */
static int fusion(struct qrun *r, json_t *q, const struct rq_list *l, size_t n, struct rq_list *out)
{
    struct rx *x = r->x;
    json_t *fu = json_object_get(q, "fusion"), *rrf = json_object_get(q, "rrf");
    bool dbsf = false;
    double k = RQ_RRF_K, w[RQ_MAX_PREFETCH];
    bool weighted = false;
    if (fu != NULL) {
        const char *s = json_is_string(fu) ? json_string_value(fu) : "";
        if (strcmp(s, "dbsf") == 0)
            dbsf = true;
        else if (strcmp(s, "rrf") != 0)
            return rx_fail(x, 400,
                           "Format error in JSON body: query.fusion: unknown variant, expected "
                           "`rrf` or `dbsf`");
    } else {
        if (!json_is_object(rrf))
            return rj_type_error(x, "query.rrf", "expected an object");
        uint64_t kk;
        int st = rj_u64(x, rrf, "k", RQ_RRF_K, 1, 1u << 20, &kk);
        if (st != 200)
            return st;
        k = (double)kk;
        json_t *ws = rj_get(rrf, "weights");
        if (ws != NULL) {
            if (!json_is_array(ws))
                return rj_type_error(x, "query.rrf.weights", "expected an array of numbers");
            if (json_array_size(ws) != n)
                return rx_fail(x, 400,
                               "Wrong input: Number of weights in RRF should match number of "
                               "pre-fetches: got %zu, expected %zu",
                               json_array_size(ws), n);
            for (size_t i = 0; i < n; i++) {
                json_t *wi = json_array_get(ws, i);
                if (!json_is_number(wi) || json_number_value(wi) < 0)
                    return rj_type_error(x, "query.rrf.weights", "expected non-negative numbers");
                w[i] = json_number_value(wi);
            }
            weighted = true;
        }
    }
    if (n == 0)
        return rx_fail(x, 400, "Wrong input: fusion needs prefetches to fuse (`prefetch`)");
    return fuse(x, l, n, dbsf, k, weighted ? w : NULL, out);
}

/* ---- examples: recommend, discover, context ---------------------------------------------- */

/* A query's example vectors: ex[i] of kind kind[i]. */
enum { EX_POS, EX_NEG, EX_TARGET, EX_CPOS, EX_CNEG };

struct examples {
    struct rs_qvec v[RQ_MAX_EXAMPLES];
    uint8_t kind[RQ_MAX_EXAMPLES];
    size_t n;
};

static void examples_free(struct examples *e)
{
    for (size_t i = 0; i < e->n; i++)
        rs_qvec_free(&e->v[i]);
    e->n = 0;
}

/* One example (a vector or a point id) of kind `kind` for the vector `using`. */
static int example(struct qrun *r, struct examples *e, json_t *v, const char *field, int kind,
                   const char *using)
{
    if (e->n == RQ_MAX_EXAMPLES)
        return rx_fail(r->x, 400, "Wrong input: more than %d examples in one query",
                       RQ_MAX_EXAMPLES);
    struct rs_qvec *q = &e->v[e->n];
    memset(q, 0, sizeof *q);
    snprintf(q->using, sizeof q->using, "%s", using);
    int st = rs_vector_input(r->x, r->coll, v, field, q);
    if (st != 200) {
        rs_qvec_free(q);
        return st;
    }
    e->kind[e->n++] = (uint8_t)kind;
    return 200;
}

/* A list of examples (absent or null: none). */
static int example_list(struct qrun *r, struct examples *e, json_t *list, const char *field,
                        int kind, const char *using)
{
    if (list == NULL || json_is_null(list))
        return 200;
    if (!json_is_array(list))
        return rj_type_error(r->x, field, "expected an array of vectors or point ids");
    char f[64];
    for (size_t i = 0; i < json_array_size(list); i++) {
        snprintf(f, sizeof f, "%s[%zu]", field, i);
        int st = example(r, e, json_array_get(list, i), f, kind, using);
        if (st != 200)
            return st;
    }
    return 200;
}

/* Context pairs [{"positive": v, "negative": v}...]. */
static int pairs(struct qrun *r, struct examples *e, json_t *list, const char *field,
                 const char *using)
{
    if (list == NULL || json_is_null(list))
        return 200;
    if (json_is_object(list)) /* a single pair */
        list = json_pack("[O]", list);
    else if (json_is_array(list))
        json_incref(list);
    else
        return rj_type_error(r->x, field, "expected a list of {positive, negative} pairs");
    int st = 200;
    char f[64];
    for (size_t i = 0; st == 200 && i < json_array_size(list); i++) {
        json_t *p = json_array_get(list, i), *pos = json_object_get(p, "positive"),
               *neg = json_object_get(p, "negative");
        if (!json_is_object(p) || pos == NULL || neg == NULL) {
            snprintf(f, sizeof f, "%s[%zu]", field, i);
            st = rj_type_error(r->x, f, "expected {\"positive\": ..., \"negative\": ...}");
            break;
        }
        snprintf(f, sizeof f, "%s[%zu].positive", field, i);
        if ((st = example(r, e, pos, f, EX_CPOS, using)) != 200)
            break;
        snprintf(f, sizeof f, "%s[%zu].negative", field, i);
        st = example(r, e, neg, f, EX_CNEG, using);
    }
    json_decref(list);
    return st;
}

/* The shape of a vector: dense, sparse or multi. */
static int shape(const struct rs_qvec *v)
{
    return v->idx ? 1 : v->rows ? 2 : 0;
}

/* average_vector: avg(positive) + (avg(positive) - avg(negative)) (or avg(positive) alone),
 * one vector of the examples' shape into *out; `sum`: sum(positive) - sum(negative) instead
 * (sum_scores' direction: for Dot and Cosine its nearest are sum_scores' best). */
static int average(struct rx *x, const struct examples *e, bool sum, struct rs_qvec *out)
{
    size_t np = 0, nn = 0, nrows = 0, nterms = 0;
    int sh = -1;
    uint32_t dim = 0;
    for (size_t i = 0; i < e->n; i++) {
        const struct rs_qvec *v = &e->v[i];
        if (sh >= 0 &&
            (shape(v) != sh || (sh == 0 && v->dim != dim) || (sh == 2 && v->dim / v->rows != dim)))
            return rx_fail(x, 400, "Wrong input: the examples are vectors of different shapes");
        sh = shape(v);
        dim = sh == 2 ? v->dim / v->rows : v->dim;
        np += e->kind[i] == EX_POS;
        nn += e->kind[i] == EX_NEG;
        nrows += v->rows;
        nterms += v->idx ? v->dim : 0;
    }
    if (np == 0)
        return rx_fail(x, 400,
                       "Wrong input: Positive vectors should not be empty with `average` "
                       "strategy");
    snprintf(out->using, sizeof out->using, "%s", e->v[0].using);
    if (sh == 2) { /* multi: the positives' rows, then the negatives' negated (Qdrant's) */
        out->rows = (uint32_t)nrows;
        out->dim = out->rows * dim;
        if ((out->vec = malloc(out->dim * sizeof *out->vec)) == NULL)
            return rx_oom(x);
        size_t at = 0;
        for (int neg = 0; neg < 2; neg++)
            for (size_t i = 0; i < e->n; i++)
                for (uint32_t j = 0; (e->kind[i] == EX_NEG) == neg && j < e->v[i].dim; j++)
                    out->vec[at++] = neg ? -e->v[i].vec[j] : e->v[i].vec[j];
        out->rows = (uint32_t)(at / dim);
        out->dim = (uint32_t)at;
        return 200;
    }
    if (sh == 1) { /* sparse: per term, merged through a sorted list of (term, value) */
        struct rq_hit *t = calloc(nterms ? nterms : 1, sizeof *t);
        out->idx = malloc((nterms ? nterms : 1) * sizeof *out->idx);
        out->vec = malloc((nterms ? nterms : 1) * sizeof *out->vec);
        if (t == NULL || out->idx == NULL || out->vec == NULL) {
            free(t);
            return rx_oom(x);
        }
        size_t m = 0;
        for (size_t i = 0; i < e->n; i++)
            for (uint32_t j = 0; j < e->v[i].dim; j++) {
                float f = sum                    ? (e->kind[i] == EX_POS ? 1.0f : -1.0f)
                          : e->kind[i] == EX_POS ? (nn ? 2.0f : 1.0f) / (float)np
                                                 : -1.0f / (float)nn;
                t[m++] = (struct rq_hit){{0, e->v[i].idx[j], PID_NUM}, f * e->v[i].vec[j]};
            }
        qsort(t, m, sizeof *t, sp_by_id);
        out->dim = 0;
        for (size_t i = 0; i < m; i++) {
            if (out->dim && out->idx[out->dim - 1] == (uint32_t)t[i].id.lo) {
                out->vec[out->dim - 1] += t[i].score;
                continue;
            }
            out->idx[out->dim] = (uint32_t)t[i].id.lo;
            out->vec[out->dim++] = t[i].score;
        }
        free(t);
        return 200;
    }
    out->dim = dim;
    if ((out->vec = calloc(dim ? dim : 1, sizeof *out->vec)) == NULL)
        return rx_oom(x);
    for (size_t i = 0; i < e->n; i++) {
        float f = sum                    ? (e->kind[i] == EX_POS ? 1.0f : -1.0f)
                  : e->kind[i] == EX_POS ? (nn ? 2.0f : 1.0f) / (float)np
                                         : -1.0f / (float)nn;
        for (uint32_t j = 0; j < dim; j++)
            out->vec[j] += f * e->v[i].vec[j];
    }
    return 200;
}

/* x / (1 + |x|), and Qdrant's scaled form into (0, 1). */
static float fast_sigmoid(float v)
{
    return v / (1.0f + fabsf(v));
}

static float scaled_sigmoid(float v)
{
    return 0.5f * (fast_sigmoid(v) + 1.0f);
}

enum { SC_BEST, SC_SUM, SC_DISCOVER, SC_CONTEXT };

/* The score of a candidate from its similarity s[i] to each example (Qdrant's formulas). */
static float score_of(int how, const struct examples *e, const float *s)
{
    float best_p = -INFINITY, best_n = -INFINITY, sum = 0, target = 0;
    int rank = 0;
    for (size_t i = 0; i < e->n; i++) {
        switch (e->kind[i]) {
        case EX_POS:
            best_p = s[i] > best_p ? s[i] : best_p;
            sum += s[i];
            break;
        case EX_NEG:
            best_n = s[i] > best_n ? s[i] : best_n;
            sum -= s[i];
            break;
        case EX_TARGET:
            target = s[i];
            break;
        case EX_CPOS: /* its negative is next */
            if (how == SC_DISCOVER)
                rank += s[i] > s[i + 1] ? 1 : -1;
            else {
                float d = s[i] - s[i + 1] - 1.1920929e-7f;
                sum += fast_sigmoid(d < 0 ? d : 0);
            }
            break;
        }
    }
    if (how == SC_BEST)
        return best_p > best_n ? scaled_sigmoid(best_p) : -scaled_sigmoid(best_n);
    if (how == SC_DISCOVER)
        return (float)rank + scaled_sigmoid(target);
    return sum;
}

/*
 * Scores candidates against every example: the candidates are `cands` (a prefetch's), or
 * else the `want` nearest of each example whose kind is in the mask `from` (or of every
 * example when those give none). Into *out, best first, without example points.
 */
static int score_examples(struct qrun *r, int how, const struct examples *e, unsigned from,
                          const struct rs_qvec *extra, json_t *f, uint32_t want, uint32_t ef,
                          const struct rq_list *cands, struct rq_list *out)
{
    struct rx *x = r->x;
    struct rq_list res[RQ_MAX_EXAMPLES] = {0}, u = {0};
    int st = 200;
    uint32_t per = want * RQ_CAND_FACTOR + (uint32_t)e->n;
    per = per > PROTO_MAX_K / RQ_MAX_EXAMPLES ? PROTO_MAX_K / RQ_MAX_EXAMPLES : per;
    if (cands == NULL) {
        /* zeroed: gcc 12 -O3 (release) cannot see that search() reads only src[0, ns) */
        struct rs_qvec src[RQ_MAX_EXAMPLES + 1] = {0};
        size_t ns = 0;
        if (extra != NULL)
            src[ns++] = *extra;
        for (size_t i = 0; i < e->n; i++)
            if (from & (1u << e->kind[i]))
                src[ns++] = e->v[i];
        if (ns == (extra != NULL))
            for (size_t i = 0; i < e->n; i++)
                src[ns++] = e->v[i];
        st = search(r, src, ns, per, ef > per ? ef : per, f, NULL, res);
        if (st == 200)
            st = union_of(x, res, ns, &u);
        for (size_t i = 0; i < ns; i++)
            rq_list_free(&res[i]);
        cands = &u;
    }
    float *s = calloc(e->n ? e->n : 1, sizeof *s);
    if (st == 200 && s == NULL)
        st = rx_oom(x);
    if (st == 200 && cands->n > PROTO_MAX_K)
        st = rx_fail(x, 400, "Wrong input: %zu candidates to score, at most %u", cands->n,
                     PROTO_MAX_K);
    if (st == 200 && cands->n > 0)
        st = search(r, e->v, e->n, (uint32_t)cands->n, 0, f, cands, res);
    /* every candidate's similarity to each example, then its score */
    struct rq_list all = {0};
    if (st == 200 && (st = union_of(x, cands, 1, &all)) == 200) {
        float *m = malloc((all.n ? all.n : 1) * e->n * sizeof *m);
        if (m == NULL)
            st = rx_oom(x);
        for (size_t i = 0; m && i < all.n * e->n; i++)
            m[i] = NAN;
        for (size_t j = 0; m && cands->n > 0 && j < e->n; j++)
            for (size_t i = 0; i < res[j].n; i++) {
                long at = find(&all, &res[j].v[i].id);
                if (at >= 0)
                    m[(size_t)at * e->n + j] = sim(&res[j], res[j].v[i].score);
            }
        *out = (struct rq_list){calloc(all.n ? all.n : 1, sizeof *out->v), 0, false};
        if (m && out->v == NULL)
            st = rx_oom(x);
        for (size_t i = 0; st == 200 && i < all.n; i++) {
            bool ok = true, is_example = false;
            for (size_t j = 0; j < e->n; j++) {
                s[j] = m[i * e->n + j];
                ok = ok && !isnan(s[j]);
                is_example = is_example || (e->v[j].exclude && pid_eq(&e->v[j].excl, &all.v[i].id));
            }
            if (ok && !is_example)
                out->v[out->n++] = (struct rq_hit){all.v[i].id, score_of(how, e, s)};
        }
        free(m);
        if (st == 200)
            qsort(out->v, out->n, sizeof *out->v, sp_by_score);
    }
    for (size_t j = 0; j < e->n; j++)
        rq_list_free(&res[j]);
    rq_list_free(&all);
    rq_list_free(&u);
    free(s);
    return st;
}

/* ---- the tree ---------------------------------------------------------------------------- */

static int eval(struct qrun *r, json_t *o, json_t *pf, uint32_t limit, int depth,
                struct rq_list *out);

/* A query `q` with prefetch results l[n]: the query's own points into *out (limit of them). */
static int run_query(struct qrun *r, json_t *o, json_t *q, json_t *f, const struct rq_list *l,
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
    if (n > 0 && (st = union_of(x, l, n, &cands)) != 200)
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
        st = fusion(r, q, l, n, out);
    } else if (json_is_object(q) && (k = json_object_get(q, "recommend")) != NULL) {
        struct examples e = {.n = 0};
        const char *strategy = "average_vector";
        json_t *sv = json_is_object(k) ? rj_get(k, "strategy") : NULL;
        if (!json_is_object(k))
            st = rj_type_error(x, "query.recommend", "expected {positive, negative, strategy}");
        else if (sv && !json_is_string(sv))
            st = rj_type_error(x, "query.recommend.strategy", "expected a string");
        if (sv && st == 200)
            strategy = json_string_value(sv);
        if (st == 200)
            st = example_list(r, &e, rj_get(k, "positive"), "positive", EX_POS, base.using);
        if (st == 200)
            st = example_list(r, &e, rj_get(k, "negative"), "negative", EX_NEG, base.using);
        if (st == 200 && strcmp(strategy, "average_vector") == 0) {
            struct rs_qvec avg = {0};
            if ((st = average(x, &e, false, &avg)) == 200) {
                /* the examples given by id are not results */
                struct rq_list one = {0};
                uint32_t nex = 0;
                for (size_t i = 0; i < e.n; i++)
                    nex += e.v[i].exclude;
                st = search(r, &avg, 1, limit + nex, ef, f, only, &one);
                *out = (struct rq_list){one.v, 0, one.lower};
                for (size_t i = 0; st == 200 && i < one.n && out->n < limit; i++) {
                    bool ex = false;
                    for (size_t j = 0; j < e.n; j++)
                        ex = ex || (e.v[j].exclude && pid_eq(&e.v[j].excl, &one.v[i].id));
                    if (!ex)
                        out->v[out->n++] = one.v[i];
                }
            }
            rs_qvec_free(&avg);
        } else if (st == 200 &&
                   (strcmp(strategy, "best_score") == 0 || strcmp(strategy, "sum_scores") == 0)) {
            /* candidates: near each positive, and near sum(positive) - sum(negative) */
            struct rs_qvec dir = {0};
            bool has_dir = false;
            for (size_t i = 0; i < e.n; i++)
                has_dir = has_dir || e.kind[i] == EX_POS;
            if (e.n == 0)
                st = rx_fail(x, 400, "Wrong input: recommend needs examples");
            else if (has_dir)
                st = average(x, &e, true, &dir);
            if (st == 200)
                st = score_examples(r, strategy[0] == 'b' ? SC_BEST : SC_SUM, &e, 1u << EX_POS,
                                    has_dir ? &dir : NULL, f, limit, ef, only, out);
            rs_qvec_free(&dir);
        } else if (st == 200) {
            st = rx_fail(x, 400,
                         "Format error in JSON body: query.recommend.strategy: unknown variant "
                         "`%.32s`, expected one of `average_vector`, `best_score`, `sum_scores`",
                         strategy);
        }
        examples_free(&e);
    } else if (json_is_object(q) && ((k = json_object_get(q, "discover")) != NULL ||
                                     (k = json_object_get(q, "context")) != NULL)) {
        bool disc = json_object_get(q, "discover") != NULL;
        struct examples e = {.n = 0};
        if (disc && !json_is_object(k))
            st = rj_type_error(x, "query.discover", "expected {target, context}");
        else if (disc && rj_get(k, "target") == NULL)
            st = rx_fail(x, 400, "Format error in JSON body: missing field `target`");
        if (st == 200 && disc)
            st = example(r, &e, rj_get(k, "target"), "target", EX_TARGET, base.using);
        if (st == 200)
            st = pairs(r, &e, disc ? rj_get(k, "context") : k, "context", base.using);
        if (st == 200 && !disc && e.n == 0)
            st = rx_fail(x, 400, "Wrong input: context needs at least one pair");
        if (st == 200)
            st = score_examples(r, disc ? SC_DISCOVER : SC_CONTEXT, &e,
                                disc ? (1u << EX_TARGET) : (1u << EX_CPOS), NULL, f, limit, ef,
                                only, out);
        examples_free(&e);
    } else if (json_is_object(q) &&
               (json_object_get(q, "order_by") || json_object_get(q, "sample"))) {
        st = rx_fail(x, 400, "Wrong input: query `%s` is not supported by dvec yet",
                     json_object_get(q, "order_by") ? "order_by" : "sample");
    } else {
        /* nearest (a vector, {"nearest": v}, a point id) */
        json_t *v = q;
        if (json_is_object(q) && json_object_get(q, "indices") == NULL) {
            v = json_object_get(q, "nearest");
            if (v == NULL) {
                const char *kind = "?", *key;
                json_t *val;
                json_object_foreach(q, key, val)
                {
                    kind = key;
                    break;
                }
                st = rx_fail(x, 400, "Wrong input: query type `%.32s` is not supported by dvec",
                             kind);
            } else if (rj_get(q, "mmr"))
                st = rx_fail(x, 400, "Wrong input: `mmr` is not supported by dvec");
        }
        if (st == 200)
            st = rs_vector_input(x, r->coll, v, "query", &base);
        if (st == 200)
            st = search(r, &base, 1, limit, ef, f, only, out);
    }
    rs_qvec_free(&base);
    rq_list_free(&cands);
    if (st == 200 && has_thr) { /* best first: cut at the first one past the threshold */
        size_t m = 0;
        while (m < out->n && (out->lower ? out->v[m].score <= thr : out->v[m].score >= thr))
            m++;
        out->n = m;
    }
    if (st == 200 && out->n > limit)
        out->n = limit;
    return st;
}

/* Evaluates query (or prefetch) o under the parent's filter pf: its `limit` best points. */
static int eval(struct qrun *r, json_t *o, json_t *pf, uint32_t limit, int depth,
                struct rq_list *out)
{
    struct rx *x = r->x;
    *out = (struct rq_list){0};
    if (!json_is_object(o))
        return rj_type_error(x, "prefetch", "expected an object");
    if (depth > RQ_MAX_DEPTH)
        return rx_fail(x, 400, "Wrong input: prefetches nested more than %d deep", RQ_MAX_DEPTH);
    static const char *const unsupported[] = {"lookup_from", "shard_key", NULL};
    int st = rj_unsupported(x, o, unsupported);
    if (st != 200)
        return st;
    json_t *own = rj_get(o, "filter");
    if (own && !json_is_object(own))
        return rj_type_error(x, "filter", "expected an object");
    json_t *f = filter_and(pf, own); /* a parent's filter holds for its prefetches too */
    json_t *pre = rj_get(o, "prefetch");
    size_t n = pre == NULL ? 0 : json_is_array(pre) ? json_array_size(pre) : 1;
    if (n > RQ_MAX_PREFETCH) {
        json_decref(f);
        return rx_fail(x, 400, "Wrong input: %zu prefetches in one query, at most %d", n,
                       RQ_MAX_PREFETCH);
    }
    struct rq_list *l = calloc(n ? n : 1, sizeof *l);
    if (l == NULL)
        st = rx_oom(x);
    for (size_t i = 0; st == 200 && i < n; i++) {
        json_t *c = json_is_array(pre) ? json_array_get(pre, i) : pre;
        uint64_t cl = 10;
        if (json_is_object(c) && (st = rj_u64(x, c, "limit", 10, 1, PROTO_MAX_K, &cl)) != 200)
            break;
        st = eval(r, c, f, (uint32_t)cl, depth + 1, &l[i]);
    }
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
static int render(struct qrun *r, json_t *o, const struct rq_list *res, uint32_t offset)
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
    struct qrun r = {x, coll, x->timeout_ms};
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
    struct qrun r = {x, coll, x->timeout_ms};
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

/* A RecommendRequest {positive, negative, strategy, ...} or a DiscoverRequest {target,
 * context, ...} as the query request it is (a new reference). */
static json_t *as_query(json_t *o, bool discover)
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
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    json_t *list = x->json;
    size_t n = 1;
    if (batch) {
        list = json_object_get(x->json, "searches");
        if (list == NULL)
            return rx_fail(x, 400, "Format error in JSON body: missing field `searches`");
        if (!json_is_array(list))
            return rj_type_error(x, "searches", "expected an array");
        n = json_array_size(list);
        if (n > 1024)
            return rx_fail(x, 400, "Wrong input: %zu requests in one batch, at most 1024", n);
    }
    json_t **reqs = calloc(n ? n : 1, sizeof *reqs);
    if (reqs == NULL)
        return rx_oom(x);
    for (size_t i = 0; i < n && st == 200; i++) {
        json_t *o = batch ? json_array_get(list, i) : list;
        if (!json_is_object(o))
            st = rj_type_error(x, "searches[]", "expected an object");
        else if (rj_get(o, "limit") == NULL)
            st = rx_fail(x, 400, "Format error in JSON body: missing field `limit`");
        else if ((reqs[i] = as_query(o, discover)) == NULL)
            st = rx_oom(x);
    }
    if (st == 200)
        st = rq_run(x, coll, reqs, n, batch, "", "");
    for (size_t i = 0; i < n; i++)
        json_decref(reqs[i]);
    free(reqs);
    return st;
}
