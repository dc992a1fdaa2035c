/* rest_explore.c - the queries that score points otherwise than by one vector: fusion of
 * prefetch lists (rrf, dbsf), recommend (average_vector, best_score, sum_scores), discover and
 * context (rest_query.c runs the tree around them).
 *
 * best_score, sum_scores, discover and context score candidates exactly against every example:
 * the candidates are the prefetch's points, or else each example's nearest neighbours (for
 * recommend also those of sum(positive) - sum(negative), whose nearest are sum_scores' best for
 * Dot and Cosine); the nodes score every candidate against every example in one batch (a
 * search restricted to the candidates by has_id, an exact pass). Qdrant's formulas. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rest_int.h"

#define RQ_MAX_EXAMPLES 64 /* positive + negative (+ target, context pairs) of one query */
#define RQ_CAND_FACTOR  4  /* candidates per example: this many times what is asked for */
#define RQ_RRF_K        2  /* Qdrant's default k of rrf */

/* ---- fusion ------------------------------------------------------------------------------ */

/*
 * Fuses the lists into *out, best first: rrf (dbsf false) adds 1 / ((rank + 1) / w + k - 1)
 * for each list a point is in (rank from 0, w the list's weight, 1 without weights; Qdrant's
 * form); dbsf adds the point's score in each list normalised by that list's mean +- 3
 * standard deviations and clamped into [0, 1].
 */
static int fuse(struct rx *x, const struct rq_list *l, size_t n, bool dbsf, double k,
                const double *w, struct rq_list *out)
{
    int st = rq_union(x, l, n, out);
    for (size_t i = 0; st == 200 && i < n; i++) {
        double mean = 0, var = 0;
        for (size_t j = 0; dbsf && j < l[i].n; j++)
            mean += rq_sim(&l[i], l[i].v[j].score);
        mean = l[i].n ? mean / (double)l[i].n : 0;
        for (size_t j = 0; dbsf && j < l[i].n; j++) {
            double d = rq_sim(&l[i], l[i].v[j].score) - mean;
            var += d * d;
        }
        double sd = l[i].n ? sqrt(var / (double)l[i].n) : 0, lo = mean - 3 * sd, hi = mean + 3 * sd;
        for (size_t j = 0; j < l[i].n; j++) {
            double add;
            if (dbsf) {
                add = hi > lo ? (rq_sim(&l[i], l[i].v[j].score) - lo) / (hi - lo) : 0.5;
                add = add < 0 ? 0 : add > 1 ? 1 : add;
            } else {
                double wi = w ? w[i] : 1.0;
                add = wi > 0 ? 1.0 / ((double)(j + 1) / wi + k - 1.0) : 0;
            }
            out->v[rq_pos(out, &l[i].v[j].id)].score += (float)add;
        }
    }
    if (st == 200)
        qsort(out->v, out->n, sizeof *out->v, rq_by_score);
    return st;
}

/* {"fusion": "rrf" | "dbsf"} or {"rrf": {"k": n, "weights": [w...]}} over the prefetches. */
int rq_fusion(struct rq_ctx *r, json_t *q, const struct rq_list *l, size_t n, struct rq_list *out)
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
static int example(struct rq_ctx *r, struct examples *e, json_t *v, const char *field, int kind,
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
static int example_list(struct rq_ctx *r, struct examples *e, json_t *list, const char *field,
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
static int pairs(struct rq_ctx *r, struct examples *e, json_t *list, const char *field,
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
                t[m++] = (struct rq_hit){.id = {0, e->v[i].idx[j], PID_NUM},
                                         .score = f * e->v[i].vec[j]};
            }
        qsort(t, m, sizeof *t, rq_by_id);
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
static int score_examples(struct rq_ctx *r, int how, const struct examples *e, unsigned from,
                          const struct rs_qvec *extra, json_t *f, uint32_t want, uint32_t ef,
                          const struct rq_list *cands, struct rq_list *out)
{
    struct rx *x = r->x;
    struct rq_list res[RQ_MAX_EXAMPLES] = {0}, u = {0};
    int st = 200;
    uint32_t per = want * RQ_CAND_FACTOR + (uint32_t)e->n;
    per = per > PROTO_MAX_K / RQ_MAX_EXAMPLES ? PROTO_MAX_K / RQ_MAX_EXAMPLES : per;
    if (cands == NULL) {
        struct rs_qvec src[RQ_MAX_EXAMPLES + 1];
        memset(src, 0, sizeof src);
        size_t ns = 0;
        if (extra != NULL)
            src[ns++] = *extra;
        for (size_t i = 0; i < e->n; i++)
            if (from & (1u << e->kind[i]))
                src[ns++] = e->v[i];
        if (ns == (extra != NULL))
            for (size_t i = 0; i < e->n; i++)
                src[ns++] = e->v[i];
        st = rq_search(r, src, ns, per, ef > per ? ef : per, f, NULL, res);
        if (st == 200)
            st = rq_union(x, res, ns, &u);
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
        st = rq_search(r, e->v, e->n, (uint32_t)cands->n, 0, f, cands, res);
    /* every candidate's similarity to each example, then its score */
    struct rq_list all = {0};
    if (st == 200 && (st = rq_union(x, cands, 1, &all)) == 200) {
        float *m = malloc((all.n ? all.n : 1) * e->n * sizeof *m);
        if (m == NULL)
            st = rx_oom(x);
        for (size_t i = 0; m && i < all.n * e->n; i++)
            m[i] = NAN;
        for (size_t j = 0; m && cands->n > 0 && j < e->n; j++)
            for (size_t i = 0; i < res[j].n; i++) {
                long at = rq_pos(&all, &res[j].v[i].id);
                if (at >= 0)
                    m[(size_t)at * e->n + j] = rq_sim(&res[j], res[j].v[i].score);
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
                out->v[out->n++] = (struct rq_hit){.id = all.v[i].id, .score = score_of(how, e, s)};
        }
        free(m);
        if (st == 200)
            qsort(out->v, out->n, sizeof *out->v, rq_by_score);
    }
    for (size_t j = 0; j < e->n; j++)
        rq_list_free(&res[j]);
    rq_list_free(&all);
    rq_list_free(&u);
    free(s);
    return st;
}

int rq_recommend(struct rq_ctx *r, json_t *k, const char *using, json_t *f, uint32_t limit,
                 uint32_t ef, const struct rq_list *only, struct rq_list *out)
{
    struct rx *x = r->x;
    int st = 200;
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
        st = example_list(r, &e, rj_get(k, "positive"), "positive", EX_POS, using);
    if (st == 200)
        st = example_list(r, &e, rj_get(k, "negative"), "negative", EX_NEG, using);
    if (st == 200 && strcmp(strategy, "average_vector") == 0) {
        struct rs_qvec avg = {0};
        if ((st = average(x, &e, false, &avg)) == 200) {
            /* the examples given by id are not results */
            struct rq_list one = {0};
            uint32_t nex = 0;
            for (size_t i = 0; i < e.n; i++)
                nex += e.v[i].exclude;
            st = rq_search(r, &avg, 1, limit + nex, ef, f, only, &one);
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
    return st;
}

int rq_discover(struct rq_ctx *r, json_t *k, bool disc, const char *using, json_t *f,
                uint32_t limit, uint32_t ef, const struct rq_list *only, struct rq_list *out)
{
    struct rx *x = r->x;
    int st = 200;
    struct examples e = {.n = 0};
    if (disc && !json_is_object(k))
        st = rj_type_error(x, "query.discover", "expected {target, context}");
    else if (disc && rj_get(k, "target") == NULL)
        st = rx_fail(x, 400, "Format error in JSON body: missing field `target`");
    if (st == 200 && disc)
        st = example(r, &e, rj_get(k, "target"), "target", EX_TARGET, using);
    if (st == 200)
        st = pairs(r, &e, disc ? rj_get(k, "context") : k, "context", using);
    if (st == 200 && !disc && e.n == 0)
        st = rx_fail(x, 400, "Wrong input: context needs at least one pair");
    if (st == 200)
        st = score_examples(r, disc ? SC_DISCOVER : SC_CONTEXT, &e,
                            disc ? (1u << EX_TARGET) : (1u << EX_CPOS), NULL, f, limit, ef, only,
                            out);
    examples_free(&e);
    return st;
}
