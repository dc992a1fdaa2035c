/* test_part_vec.c - a replica with several named vectors (dense, sparse, multi): writes,
 * searches against brute force, update and delete of vectors, recovery and snapshots. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "filter.h"
#include "io.h"
#include "jsonmp.h"
#include "multi.h"
#include "part_util.h"
#include "sparse.h"

enum { S_TEXT, S_IMG, S_SPARSE, S_BM25, S_COLBERT, NSP };
#define N        700
#define D_TEXT   8
#define D_IMG    5
#define D_COL    4
#define MAXTERMS 12
#define MAXROWS  5

/* The model of what a point holds: per space present or not, and its values. */
struct mpoint {
    bool live;
    bool has[NSP];
    float text[D_TEXT], img[D_IMG];
    uint32_t nt[2];
    uint32_t idx[2][MAXTERMS];
    float val[2][MAXTERMS];
    uint32_t rows;
    float col[MAXROWS * D_COL];
    uint32_t color;
};

static struct mpoint model[N];
static uint64_t seed_state;

static float frand(void)
{
    return (float)((pu_rng(&seed_state) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void defs(struct part_space *d)
{
    memset(d, 0, NSP * sizeof *d);
    static const char *const names[NSP] = {"text", "img", "sparse", "bm25", "colbert"};
    for (int i = 0; i < NSP; i++) {
        snprintf(d[i].name, sizeof d[i].name, "%s", names[i]);
        hnsw_params_default(&d[i].index);
    }
    d[S_TEXT].kind = PART_VEC_DENSE;
    d[S_TEXT].index.dim = D_TEXT;
    d[S_TEXT].index.metric = HNSW_COSINE;
    d[S_TEXT].index.m = 8;
    d[S_IMG].kind = PART_VEC_DENSE;
    d[S_IMG].index.dim = D_IMG;
    d[S_IMG].index.metric = HNSW_L2;
    d[S_IMG].index.m = 8;
    d[S_SPARSE].kind = PART_VEC_SPARSE;
    d[S_BM25].kind = PART_VEC_SPARSE;
    d[S_BM25].idf = true;
    d[S_COLBERT].kind = PART_VEC_MULTI;
    d[S_COLBERT].index.dim = D_COL;
    d[S_COLBERT].index.metric = HNSW_COSINE;
}

static void make_point(uint32_t i, struct mpoint *m)
{
    memset(m, 0, sizeof *m);
    m->live = true;
    m->color = (uint32_t)(pu_rng(&seed_state) % 3);
    for (int s = 0; s < NSP; s++)
        m->has[s] = pu_rng(&seed_state) % 4 != 0;
    for (int d = 0; d < D_TEXT; d++)
        m->text[d] = frand();
    for (int d = 0; d < D_IMG; d++)
        m->img[d] = frand();
    for (int k = 0; k < 2; k++) {
        uint32_t t = (uint32_t)(pu_rng(&seed_state) % 5);
        m->nt[k] = 1 + (uint32_t)(pu_rng(&seed_state) % (MAXTERMS - 1));
        for (uint32_t j = 0; j < m->nt[k]; j++) { /* distinct terms, given unsorted */
            t += 1 + (uint32_t)(pu_rng(&seed_state) % 9);
            m->idx[k][m->nt[k] - 1 - j] = t;
            m->val[k][m->nt[k] - 1 - j] = fabsf(frand()) + 0.01f;
        }
    }
    m->rows = 1 + (uint32_t)(pu_rng(&seed_state) % MAXROWS);
    for (uint32_t r = 0; r < m->rows * D_COL; r++)
        m->col[r] = frand();
    (void)i;
}

/* The part_point of model point i (vecs has room for NSP; pl keeps the payload). */
static void to_point(uint32_t i, const struct mpoint *m, struct part_point *pt, struct part_vec *v,
                     struct buf *pl)
{
    memset(pt, 0, sizeof *pt);
    pt->id = pid_num(i);
    buf_reset(pl);
    mpw_map(pl, 1);
    mpw_str(pl, "color", 5);
    mpw_u64(pl, m->color);
    pt->payload = pl->data;
    pt->payload_len = pl->len;
    pt->vecs = v;
    for (uint32_t s = 0; s < NSP; s++) {
        if (!m->has[s])
            continue;
        struct part_vec *x = &v[pt->n_vecs++];
        memset(x, 0, sizeof *x);
        x->space = s;
        switch (s) {
        case S_TEXT:
            *x = (struct part_vec){s, D_TEXT, m->text, NULL};
            break;
        case S_IMG:
            *x = (struct part_vec){s, D_IMG, m->img, NULL};
            break;
        case S_SPARSE:
        case S_BM25:
            *x = (struct part_vec){s, m->nt[s - S_SPARSE], m->val[s - S_SPARSE],
                                   m->idx[s - S_SPARSE]};
            break;
        case S_COLBERT:
            *x = (struct part_vec){s, m->rows, m->col, NULL};
            break;
        }
    }
}

static void upsert_model(struct part *p, uint32_t from, uint32_t to)
{
    char err[DV_ERRMSG_SIZE];
    size_t n = to - from;
    struct part_point *pts = calloc(n, sizeof *pts);
    struct part_vec *v = calloc(n * NSP, sizeof *v);
    struct buf *pl = calloc(n, sizeof *pl);
    for (uint32_t i = from; i < to; i++) {
        model[i].live = true;
        to_point(i, &model[i], &pts[i - from], &v[(i - from) * NSP], &pl[i - from]);
    }
    int rc = part_upsert(p, pts, n, NULL, err);
    if (rc != DV_OK)
        print_message("upsert: %s\n", err);
    assert_int_equal(rc, DV_OK);
    for (size_t i = 0; i < n; i++)
        buf_free(&pl[i]);
    free(pl);
    free(v);
    free(pts);
}

static float norm_dot(const float *a, const float *b, int n)
{
    float na = 0, nb = 0, d = 0;
    for (int i = 0; i < n; i++) {
        na += a[i] * a[i];
        nb += b[i] * b[i];
        d += a[i] * b[i];
    }
    return d / (sqrtf(na) * sqrtf(nb));
}

static float sparse_score(const struct mpoint *m, int k, const uint32_t *qi, const float *qv,
                          uint32_t qn, const float *idf)
{
    float s = 0;
    for (uint32_t j = 0; j < qn; j++)
        for (uint32_t t = 0; t < m->nt[k]; t++)
            if (m->idx[k][t] == qi[j])
                s += qv[j] * m->val[k][t] * (idf ? idf[j] : 1.0f);
    return s;
}

static float colbert_score(const struct mpoint *m, const float *q, uint32_t qrows)
{
    float sum = 0;
    for (uint32_t i = 0; i < qrows; i++) {
        float best = -INFINITY;
        for (uint32_t j = 0; j < m->rows; j++) {
            float s = norm_dot(q + i * D_COL, m->col + j * D_COL, D_COL);
            best = s > best ? s : best;
        }
        sum += best;
    }
    return sum;
}

/* Brute force: the model's score of point i for a query on space s (NAN: no match). */
struct query {
    uint32_t space;
    float vec[MAXROWS * D_TEXT];
    uint32_t n;
    uint32_t idx[MAXTERMS];
    float idf[MAXTERMS];
    int color; /* -1: no filter */
};

static float model_score(const struct query *q, uint32_t i)
{
    const struct mpoint *m = &model[i];
    if (!m->live || !m->has[q->space] || (q->color >= 0 && (int)m->color != q->color))
        return NAN;
    switch (q->space) {
    case S_TEXT:
        return norm_dot(q->vec, m->text, D_TEXT);
    case S_IMG: {
        float d = 0;
        for (int k = 0; k < D_IMG; k++)
            d += (q->vec[k] - m->img[k]) * (q->vec[k] - m->img[k]);
        return sqrtf(d);
    }
    case S_SPARSE:
    case S_BM25: {
        int k = (int)q->space - S_SPARSE;
        bool any = false;
        for (uint32_t j = 0; j < q->n; j++)
            for (uint32_t t = 0; t < m->nt[k]; t++)
                any |= m->idx[k][t] == q->idx[j];
        if (!any)
            return NAN;
        return sparse_score(m, k, q->idx, q->vec, q->n, q->space == S_BM25 ? q->idf : NULL);
    }
    default:
        return colbert_score(m, q->vec, q->n);
    }
}

static void random_query(struct query *q, uint32_t space, int color)
{
    memset(q, 0, sizeof *q);
    q->space = space;
    q->color = color;
    if (space == S_SPARSE || space == S_BM25) {
        q->n = 1 + (uint32_t)(pu_rng(&seed_state) % 4);
        for (uint32_t j = 0; j < q->n; j++) {
            q->idx[j] = 1 + (uint32_t)(pu_rng(&seed_state) % 40);
            q->vec[j] = fabsf(frand()) + 0.1f;
            for (uint32_t k = 0; k < j; k++) /* distinct */
                if (q->idx[k] == q->idx[j])
                    q->idx[j] += 100;
        }
    } else if (space == S_COLBERT) {
        q->n = 1 + (uint32_t)(pu_rng(&seed_state) % 3);
        for (uint32_t r = 0; r < q->n * D_COL; r++)
            q->vec[r] = frand();
    } else {
        for (int d = 0; d < D_TEXT; d++)
            q->vec[d] = frand();
    }
}

/* IDF from the model, as the replica computes it from its own statistics. */
static void model_idf(struct query *q)
{
    uint64_t docs = 0, df[MAXTERMS] = {0};
    for (uint32_t i = 0; i < N; i++) {
        if (!model[i].live || !model[i].has[S_BM25])
            continue;
        docs++;
        for (uint32_t j = 0; j < q->n; j++)
            for (uint32_t t = 0; t < model[i].nt[1]; t++)
                df[j] += model[i].idx[1][t] == q->idx[j];
    }
    for (uint32_t j = 0; j < q->n; j++)
        q->idf[j] = sparse_idf(docs, df[j]);
}

static struct filter *color_filter(int color)
{
    char json[64], err[DV_ERRMSG_SIZE];
    struct buf b = BUF_INIT;
    struct filter *f = NULL;
    snprintf(json, sizeof json, "{\"must\": [{\"key\": \"color\", \"match\": {\"value\": %d}}]}",
             color);
    assert_int_equal(jsonmp_from_text(json, strlen(json), &b, err), DV_OK);
    assert_int_equal(filter_compile(b.data, b.len, &f, err), DV_OK);
    buf_free(&b);
    return f;
}

/* Runs q against the replica and brute force: same ids; scores equal (exact kinds) or recall
 * of the dense walk >= 0.9 with ef = N. */
static void check_query(struct part *p, struct query *q, uint32_t k)
{
    char err[DV_ERRMSG_SIZE];
    struct part_result r;
    struct filter *f = q->color >= 0 ? color_filter(q->color) : NULL;
    if (q->space == S_BM25)
        model_idf(q);
    struct part_query pq = {q->vec,   k,    N,      f,    false, false, HNSW_QUANT_AUTO,
                            q->space, q->n, q->idx, NULL, 0,     0};
    if (q->space == S_TEXT || q->space == S_IMG)
        pq.n = 0;
    int rc = part_search(p, &pq, &r, NULL, err);
    if (rc != DV_OK)
        print_message("search: %s\n", err);
    assert_int_equal(rc, DV_OK);
    /* brute force top k */
    uint32_t best[64];
    float bs[64];
    uint32_t nb = 0;
    bool higher = q->space != S_IMG;
    for (uint32_t i = 0; i < N; i++) {
        float s = model_score(q, i);
        if (isnan(s))
            continue;
        uint32_t at = nb < k ? nb++ : k;
        if (at == k) {
            if (higher ? s <= bs[k - 1] : s >= bs[k - 1])
                continue;
            at = k - 1;
        }
        while (at > 0 && (higher ? bs[at - 1] < s : bs[at - 1] > s)) {
            best[at] = best[at - 1];
            bs[at] = bs[at - 1];
            at--;
        }
        best[at] = i;
        bs[at] = s;
    }
    if (q->space == S_TEXT || q->space == S_IMG) {
        uint32_t found = 0;
        for (uint32_t a = 0; a < nb; a++)
            for (size_t b = 0; b < r.n; b++)
                found += r.hits[b].id.lo == best[a];
        assert_true(r.n == nb);
        assert_true(found * 10 >= nb * 9);
    } else {
        assert_int_equal(r.n, nb);
        for (size_t a = 0; a < r.n; a++) {
            /* exact: the same scores in order (ids may swap on exact ties) */
            assert_true(fabsf(r.hits[a].score - bs[a]) <= 1e-4f * (1 + fabsf(bs[a])));
            assert_false(isnan(model_score(q, (uint32_t)r.hits[a].id.lo)));
        }
    }
    part_result_free(&r);
    filter_free(f);
}

static void check_all(struct part *p)
{
    for (uint32_t s = 0; s < NSP; s++) {
        for (int round = 0; round < 6; round++) {
            struct query q;
            random_query(&q, s, round % 2 ? (int)(round % 3) : -1);
            check_query(p, &q, 10);
        }
    }
}

/* The vectors a point has, read back, equal the model's. */
static void check_points(struct part *p)
{
    char err[DV_ERRMSG_SIZE];
    for (uint32_t i = 0; i < N; i += 7) {
        struct pid id = pid_num(i);
        struct part_result r;
        assert_int_equal(part_get(p, &id, 1, true, false, &r, err), DV_OK);
        assert_int_equal(r.n, model[i].live ? 1 : 0);
        if (r.n == 1) {
            const struct part_hit *h = &r.hits[0];
            assert_null(h->vec); /* no unnamed vector in this collection */
            uint32_t k = 0;
            for (uint32_t s = 0; s < NSP; s++) {
                if (!model[i].has[s])
                    continue;
                assert_true(k < h->n_vecs);
                assert_int_equal(h->vecs[k].space, s);
                if (s == S_SPARSE || s == S_BM25) {
                    assert_int_equal(h->vecs[k].n, model[i].nt[s - S_SPARSE]);
                    for (uint32_t t = 1; t < h->vecs[k].n; t++)
                        assert_true(h->vecs[k].idx[t] > h->vecs[k].idx[t - 1]);
                } else if (s == S_IMG) {
                    assert_memory_equal(h->vecs[k].v, model[i].img, sizeof model[i].img);
                } else if (s == S_COLBERT) {
                    assert_int_equal(h->vecs[k].n, model[i].rows);
                }
                k++;
            }
            assert_int_equal(h->n_vecs, k);
        }
        part_result_free(&r);
    }
}

static void digest_of(struct part *p, uint64_t *d, uint64_t *cnt)
{
    char err[DV_ERRMSG_SIZE];
    uint64_t lsn;
    assert_int_equal(part_digest(p, d, cnt, &lsn, err), DV_OK);
}

static void test_named_vectors(void **state)
{
    char dir[4096], dir2[4096], err[DV_ERRMSG_SIZE];
    struct part_space d[NSP];
    struct part_opts o;
    struct part *p, *q;
    uint64_t dg, dg2, cnt, cnt2;

    seed_state = (uint64_t)time(NULL);
    print_message("# seed %llu\n", (unsigned long long)seed_state);
    defs(d);
    part_opts_default(&o);
    o.spaces = d;
    o.n_spaces = NSP;
    o.background = false;
    pu_tmpdir(dir, sizeof dir, "r");
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    uint32_t ns;
    const struct part_space *got = part_spaces(p, &ns);
    assert_int_equal(ns, NSP);
    assert_string_equal(got[S_BM25].name, "bm25");
    assert_int_equal(part_space_find(p, "colbert", 7), S_COLBERT);
    assert_int_equal(part_space_find(p, "nope", 4), -1);
    for (uint32_t i = 0; i < N; i++)
        make_point(i, &model[i]);
    upsert_model(p, 0, N / 2);
    upsert_model(p, N / 2, N);
    check_all(p);
    check_points(p);

    /* Replace whole points: vectors not given are gone. */
    for (uint32_t i = 0; i < N; i += 5)
        make_point(i, &model[i]);
    for (uint32_t i = 0; i < N; i += 50)
        upsert_model(p, i, i + 1);
    for (uint32_t i = 0; i < N; i += 5)
        if (i % 50 != 0)
            upsert_model(p, i, i + 1);
    /* Update vectors: only the given ones change. */
    for (uint32_t i = 1; i < N; i += 9) {
        struct mpoint nm;
        make_point(i, &nm);
        struct part_point pt;
        struct part_vec v[NSP];
        struct buf pl = BUF_INIT;
        nm.has[S_TEXT] = true;
        nm.has[S_IMG] = nm.has[S_COLBERT] = false;
        nm.has[S_SPARSE] = i % 2;
        nm.has[S_BM25] = false;
        to_point(i, &nm, &pt, v, &pl);
        assert_int_equal(part_update_vectors(p, &pt, 1, NULL, err), DV_OK);
        memcpy(model[i].text, nm.text, sizeof nm.text);
        model[i].has[S_TEXT] = true;
        if (nm.has[S_SPARSE]) {
            model[i].has[S_SPARSE] = true;
            model[i].nt[0] = nm.nt[0];
            memcpy(model[i].idx[0], nm.idx[0], sizeof nm.idx[0]);
            memcpy(model[i].val[0], nm.val[0], sizeof nm.val[0]);
        }
        buf_free(&pl);
    }
    /* Delete vectors and points. */
    for (uint32_t i = 2; i < N; i += 11) {
        struct pid id = pid_num(i);
        uint32_t sp[2] = {S_BM25, S_IMG};
        assert_int_equal(part_delete_vectors(p, &id, 1, sp, 2, NULL, err), DV_OK);
        model[i].has[S_BM25] = model[i].has[S_IMG] = false;
    }
    for (uint32_t i = 3; i < N; i += 13) {
        struct pid id = pid_num(i);
        assert_int_equal(part_delete(p, &id, 1, NULL, NULL, err), DV_OK);
        model[i].live = false;
    }
    /* A point whose every vector was deleted stays, with its payload. */
    {
        struct pid id = pid_num(4);
        uint32_t all[NSP] = {0, 1, 2, 3, 4};
        assert_int_equal(part_delete_vectors(p, &id, 1, all, NSP, NULL, err), DV_OK);
        memset(model[4].has, 0, sizeof model[4].has);
        struct part_result r;
        assert_int_equal(part_get(p, &id, 1, true, true, &r, err), DV_OK);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.hits[0].n_vecs, 0);
        assert_non_null(r.hits[0].payload);
        part_result_free(&r);
    }
    check_all(p);
    check_points(p);
    digest_of(p, &dg, &cnt);

    /* WAL replay gives the same replica. */
    part_close(p);
    assert_int_equal(part_open(io_posix(), dir, &o, &p, err), DV_OK);
    digest_of(p, &dg2, &cnt2);
    assert_true(dg == dg2 && cnt == cnt2);
    check_all(p);
    /* So does a checkpoint, after compaction freed index slots. */
    assert_int_equal(part_compact(p, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    upsert_model(p, 10, 20); /* and writes after it, in the WAL */
    digest_of(p, &dg, &cnt);
    part_close(p);
    assert_int_equal(part_open(io_posix(), dir, &o, &p, err), DV_OK);
    digest_of(p, &dg2, &cnt2);
    assert_true(dg == dg2 && cnt == cnt2);
    check_all(p);
    check_points(p);

    /* A snapshot restores the same replica elsewhere. */
    struct membuf m = {BUF_INIT, 0};
    uint64_t lsn;
    assert_int_equal(part_snapshot(p, pu_mem_sink, &m, &lsn, err), DV_OK);
    pu_tmpdir(dir2, sizeof dir2, "r2");
    assert_int_equal(part_restore(io_posix(), dir2, pu_mem_source, &m, &o, &q, err), DV_OK);
    digest_of(q, &dg2, &cnt2);
    assert_true(dg == dg2 && cnt == cnt2);
    check_all(q);
    part_close(q);
    buf_free(&m.b);
    part_close(p);
    pu_tmpdir_free(dir2);
    pu_tmpdir_free(dir);
}

/* Every kind of bad vector gets a clear error and nothing is written. */
static void test_bad_vectors(void **state)
{
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_space d[NSP];
    struct part_opts o;
    struct part *p;
    defs(d);
    part_opts_default(&o);
    o.spaces = d;
    o.n_spaces = NSP;
    o.background = false;
    pu_tmpdir(dir, sizeof dir, "r");
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    float v[D_TEXT] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint32_t idx[3] = {5, 1, 5};
    struct part_vec pv = {S_TEXT, D_IMG, v, NULL};
    struct part_point pt = {pid_num(1), NULL, 0, NULL, 0, &pv, 1};
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_EDIM);
    assert_non_null(strstr(err, "\"text\" has 5 dimensions"));
    pv = (struct part_vec){S_SPARSE, 3, v, idx};
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_EINVAL);
    assert_non_null(strstr(err, "holds index 5 twice"));
    v[1] = NAN;
    pv = (struct part_vec){S_SPARSE, 2, v, idx};
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_ENAN);
    v[1] = 2;
    pv = (struct part_vec){NSP, D_TEXT, v, NULL};
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_EINVAL);
    assert_non_null(strstr(err, "no vector number"));
    pv = (struct part_vec){S_COLBERT, PART_MAX_ROWS + 1, v, NULL};
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_ETOOBIG);
    struct part_vec two[2] = {{S_TEXT, D_TEXT, v, NULL}, {S_TEXT, D_TEXT, v, NULL}};
    pt.vecs = two;
    pt.n_vecs = 2;
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_EINVAL);
    assert_non_null(strstr(err, "given twice"));
    /* the unnamed vector of a collection that has none */
    pt = (struct part_point){pid_num(1), v, D_TEXT, NULL, 0, NULL, 0};
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_EINVAL);
    assert_non_null(strstr(err, "no unnamed vector"));
    /* update of a missing point */
    pt = (struct part_point){pid_num(99), NULL, 0, NULL, 0, two, 1};
    assert_int_equal(part_update_vectors(p, &pt, 1, NULL, err), DV_ENOTFOUND);
    struct part_info in;
    part_get_info(p, &in);
    assert_int_equal(in.points, 0);
    assert_int_equal(in.applied_lsn, 0);
    /* a point with no vector at all is a point */
    pt = (struct part_point){pid_num(7), NULL, 0, NULL, 0, NULL, 0};
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_OK);
    part_get_info(p, &in);
    assert_int_equal(in.points, 1);
    part_close(p);
    pu_tmpdir_free(dir);

    /* Definitions: duplicate names, bad dims. */
    d[1] = d[0];
    pu_tmpdir(dir, sizeof dir, "r");
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_EINVAL);
    assert_non_null(strstr(err, "defined twice"));
    defs(d);
    d[S_IMG].index.dim = 0;
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_EINVAL);
    pu_tmpdir_free(dir);

    /* In a collection with only the unnamed vector, a point needs it and keeps it. */
    part_opts_default(&o);
    o.index.dim = 4;
    o.background = false;
    pu_tmpdir(dir, sizeof dir, "r");
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    pt = (struct part_point){pid_num(7), NULL, 0, NULL, 0, NULL, 0};
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_EINVAL);
    assert_non_null(strstr(err, "no vector"));
    struct pid id = pid_num(7);
    uint32_t zero = 0;
    assert_int_equal(part_delete_vectors(p, &id, 1, &zero, 1, NULL, err), DV_EINVAL);
    part_close(p);
    pu_tmpdir_free(dir);
}

/* Sparse vectors with IDF from outside (the coordinator's collection-wide statistics). */
static void test_sparse_stats(void **state)
{
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_space d[NSP];
    struct part_opts o;
    struct part *p;
    defs(d);
    part_opts_default(&o);
    o.spaces = d;
    o.n_spaces = NSP;
    o.background = false;
    pu_tmpdir(dir, sizeof dir, "r");
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    uint32_t i1[2] = {1, 2}, i2[1] = {2};
    float w1[2] = {1, 1}, w2[1] = {3};
    struct part_vec a = {S_BM25, 2, w1, i1}, b = {S_BM25, 1, w2, i2};
    struct part_point pts[2] = {{pid_num(1), NULL, 0, NULL, 0, &a, 1},
                                {pid_num(2), NULL, 0, NULL, 0, &b, 1}};
    assert_int_equal(part_upsert(p, pts, 2, NULL, err), DV_OK);
    uint64_t df[2], docs;
    assert_int_equal(part_sparse_stats(p, S_BM25, i1, 2, df, &docs, err), DV_OK);
    assert_true(docs == 2 && df[0] == 1 && df[1] == 2);
    assert_int_equal(part_sparse_stats(p, S_TEXT, i1, 2, df, &docs, err), DV_EINVAL);
    /* statistics of the whole collection replace the local ones: 10 points, term 1 in 1 of
     * them, term 2 in all 10 */
    float qv[2] = {1, 1};
    uint64_t given[2] = {1, 10};
    struct part_query pq = {qv,     5, 0,  NULL,  false, false, HNSW_QUANT_AUTO,
                            S_BM25, 2, i1, given, 10,    0};
    struct part_result r;
    assert_int_equal(part_search(p, &pq, &r, NULL, err), DV_OK);
    assert_int_equal(r.n, 2);
    float x1 = sparse_idf(10, 1), x2 = sparse_idf(10, 10);
    assert_true(r.hits[0].id.lo == 1 && fabsf(r.hits[0].score - (x1 + x2)) < 1e-5f);
    assert_true(r.hits[1].id.lo == 2 && fabsf(r.hits[1].score - 3 * x2) < 1e-5f);
    part_result_free(&r);
    /* exact scores of given ids */
    struct pid ids[3] = {pid_num(2), pid_num(9), pid_num(1)};
    pq.idf_df = NULL;
    assert_int_equal(part_score_ids(p, &pq, ids, 3, &r, err), DV_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.hits[0].id.lo, 2);
    float idf2 = sparse_idf(2, 2), idf1 = sparse_idf(2, 1);
    assert_true(fabsf(r.hits[0].score - 3 * idf2) < 1e-5f);
    assert_true(fabsf(r.hits[1].score - (idf1 + idf2)) < 1e-5f);
    part_result_free(&r);
    part_close(p);
    pu_tmpdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_vectors),
        cmocka_unit_test(test_bad_vectors),
        cmocka_unit_test(test_sparse_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
