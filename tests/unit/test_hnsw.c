/* test_hnsw.c - the HNSW index against a brute-force oracle: recall, metrics, deletes,
 * repair, replace, filters, growth, SQ8, bad input, the layout of the large arrays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "err.h"
#include "hnsw_oracle.h"

#define K 10

struct fixture {
    struct hnsw_index *ix;
    float *base;
    size_t n;
    uint32_t dim;
    enum hnsw_metric metric;
    uint32_t *slot_of; /* row -> slot */
    uint32_t *row_of;  /* slot -> row */
    size_t row_cap;
};

static void build(struct fixture *f, float *base, size_t n, uint32_t dim, enum hnsw_metric m,
                  bool sq8, unsigned threads)
{
    struct hnsw_params p;
    hnsw_params_default(&p);
    p.dim = dim;
    p.metric = m;
    p.sq8 = sq8;
    p.capacity = 64; /* exercise growth */
    memset(f, 0, sizeof *f);
    assert_int_equal(hnsw_create(&p, &f->ix), DV_OK);
    f->base = base;
    f->n = n;
    f->dim = dim;
    f->metric = m;
    f->slot_of = malloc(n * sizeof(uint32_t));
    assert_int_equal(hnsw_insert_batch(f->ix, base, n, threads, f->slot_of), DV_OK);
    f->row_cap = 2 * n + 16;
    f->row_of = malloc(f->row_cap * sizeof(uint32_t));
    for (size_t i = 0; i < f->row_cap; i++)
        f->row_of[i] = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        assert_true(f->slot_of[i] < f->row_cap);
        f->row_of[f->slot_of[i]] = (uint32_t)i;
    }
}

static void teardown_fx(struct fixture *f)
{
    hnsw_destroy(f->ix);
    free(f->base);
    free(f->slot_of);
    free(f->row_of);
}

/* Mean recall@K over nq queries; `keep` restricts the oracle (and must match the filter). */
static double recall(struct fixture *f, const float *queries, size_t nq, uint32_t ef,
                     enum hnsw_quant quant, hnsw_filter_fn filter, void *farg, orc_keep_fn keep,
                     void *karg)
{
    double sum = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        const float *q = queries + qi * f->dim;
        struct hnsw_query hq = {q, K, ef, filter, farg, quant, 0};
        struct hnsw_hit hits[K];
        uint32_t nh, truth[K], found[K];
        assert_int_equal(hnsw_search(f->ix, &hq, hits, &nh, NULL), DV_OK);
        for (uint32_t i = 0; i < nh; i++) {
            if (i > 0)
                assert_true(hits[i - 1].dist <= hits[i].dist);
            found[i] = f->row_of[hits[i].slot];
        }
        uint32_t nt = orc_knn(f->metric, f->base, f->n, f->dim, q, K, keep, karg, truth);
        assert_int_equal(nh, nt < K ? nt : K);
        sum += orc_overlap(found, nh, truth, nt);
    }
    return sum / nq;
}

static void test_params(void **state)
{
    struct hnsw_params p;
    struct hnsw_index *ix;
    hnsw_params_default(&p);
    assert_int_equal(hnsw_create(&p, &ix), DV_EINVAL); /* dim 0 */
    p.dim = 8;
    p.m = 1;
    assert_int_equal(hnsw_create(&p, &ix), DV_EINVAL);
    p.m = 16;
    p.metric = (enum hnsw_metric)9;
    assert_int_equal(hnsw_create(&p, &ix), DV_EINVAL);
    p.metric = HNSW_L2;
    assert_int_equal(hnsw_create(&p, &ix), DV_OK);

    /* Empty index: no results, no error. */
    float q[8] = {0};
    struct hnsw_hit h[4];
    uint32_t n = 99;
    struct hnsw_query hq = {q, 4, 0, NULL, NULL, HNSW_QUANT_AUTO, 0};
    assert_int_equal(hnsw_search(ix, &hq, h, &n, NULL), DV_OK);
    assert_int_equal(n, 0);

    /* Bad input is refused and leaves the index as it was. */
    float bad[8] = {0, 1, 2, NAN, 4, 5, 6, 7};
    uint32_t slot;
    assert_int_equal(hnsw_insert(ix, bad, &slot), DV_ENAN);
    bad[3] = INFINITY;
    assert_int_equal(hnsw_insert(ix, bad, &slot), DV_ENAN);
    hq.vec = bad;
    assert_int_equal(hnsw_search(ix, &hq, h, &n, NULL), DV_ENAN);
    hq.vec = q;
    hq.k = 0;
    assert_int_equal(hnsw_search(ix, &hq, h, &n, NULL), DV_EINVAL);
    hq.k = 4;
    hq.quant = HNSW_QUANT_ON;
    assert_int_equal(hnsw_search(ix, &hq, h, &n, NULL), DV_EUNSUPPORTED);
    assert_int_equal(hnsw_delete(ix, 0), DV_ENOTFOUND);
    assert_int_equal(hnsw_replace(ix, 3, q), DV_ENOTFOUND);
    float out[8];
    assert_int_equal(hnsw_get_vector(ix, 0, out), DV_ENOTFOUND);

    /* One point: found, read back, deleted twice. */
    float one[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(hnsw_insert(ix, one, &slot), DV_OK);
    hq.quant = HNSW_QUANT_AUTO;
    assert_int_equal(hnsw_search(ix, &hq, h, &n, NULL), DV_OK);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].slot, slot);
    assert_int_equal(hnsw_get_vector(ix, slot, out), DV_OK);
    assert_memory_equal(out, one, sizeof one);
    assert_true(hnsw_is_live(ix, slot));
    assert_int_equal(hnsw_delete(ix, slot), DV_OK);
    assert_false(hnsw_is_live(ix, slot));
    assert_int_equal(hnsw_delete(ix, slot), DV_EDELETED);
    assert_int_equal(hnsw_search(ix, &hq, h, &n, NULL), DV_OK);
    assert_int_equal(n, 0);
    hnsw_destroy(ix);
}

static void check_recall(float *base, size_t n, uint32_t dim, enum hnsw_metric m, float *q,
                         uint32_t ef, double want, const char *what)
{
    struct fixture f;
    build(&f, base, n, dim, m, false, 1);
    double r = recall(&f, q, 100, ef, HNSW_QUANT_AUTO, NULL, NULL, NULL, NULL);
    printf("# %s: recall@10 %.4f (ef %u)\n", what, r, ef);
    assert_true(r >= want);
    struct hnsw_info info;
    hnsw_get_info(f.ix, &info);
    assert_int_equal(info.live, n);
    assert_true(info.capacity >= n);
    free(q);
    teardown_fx(&f);
}

/* Embedding-like data, queries from the same distribution. */
static void test_recall_embed_l2(void **state)
{
    check_recall(orc_embed(20000, 64, 40, 1, 1), 20000, 64, HNSW_L2, orc_embed(100, 64, 40, 1, 2),
                 64, 0.95, "embedding-like 20k x 64 l2");
}

/* Uniform random 64-d data is the hard case (hnswlib: 0.77 at ef 64, 0.96 at ef 200). */
static void test_recall_random_l2(void **state)
{
    check_recall(orc_random(20000, 64, 1), 20000, 64, HNSW_L2, orc_random(100, 64, 2), 200, 0.93,
                 "uniform random 20k x 64 l2");
}

static void test_recall_clustered_l2(void **state)
{
    float *base = orc_clustered(20000, 64, 50, 2);
    float *q = malloc(100 * 64 * sizeof(float)); /* base points moved a little */
    uint64_t seed = 5;
    for (size_t i = 0; i < 100 * 64; i++)
        q[i] = base[(i / 64) * 64 * 97 + i % 64] + 0.05f * orc_gauss(&seed);
    check_recall(base, 20000, 64, HNSW_L2, q, 64, 0.95, "clustered 20k x 64 l2");
}

static void test_recall_ip(void **state)
{
    check_recall(orc_embed(5000, 32, 20, 3, 1), 5000, 32, HNSW_IP, orc_embed(100, 32, 20, 3, 2), 64,
                 0.95, "embedding-like 5k x 32 ip");
}

static void test_recall_cosine(void **state)
{
    check_recall(orc_embed(5000, 32, 20, 4, 1), 5000, 32, HNSW_COSINE, orc_embed(100, 32, 20, 4, 2),
                 64, 0.95, "embedding-like 5k x 32 cosine");
}

static void test_recall_l1(void **state)
{
    check_recall(orc_embed(5000, 32, 20, 5, 1), 5000, 32, HNSW_L1, orc_embed(100, 32, 20, 5, 2), 64,
                 0.95, "embedding-like 5k x 32 l1");
}

static void test_parallel_build(void **state)
{
    struct fixture f;
    float *q = orc_embed(100, 48, 30, 6, 2);
    build(&f, orc_embed(10000, 48, 30, 6, 1), 10000, 48, HNSW_L2, false, 4);
    double r = recall(&f, q, 100, 64, HNSW_QUANT_AUTO, NULL, NULL, NULL, NULL);
    printf("# parallel build (4 threads) 10k x 48: recall@10 %.4f\n", r);
    assert_true(r >= 0.95);
    free(q);
    teardown_fx(&f);
}

/* Deleted rows, for the oracle and the filter. */
struct delset {
    uint8_t *del;      /* by row */
    struct fixture *f; /* slot -> row */
};

static bool keep_live_row(uint32_t row, void *arg)
{
    return !((struct delset *)arg)->del[row];
}

static void delete_and_repair(float *base, float *q, size_t n, uint32_t dim, uint32_t ef,
                              const char *what)
{
    struct fixture f;
    uint64_t seed = 99;
    build(&f, base, n, dim, HNSW_L2, false, 1);
    struct delset ds = {calloc(n, 1), &f};

    /* Delete 60% of the points, the entry point among them. */
    size_t ndel = 0;
    for (size_t i = 0; i < n; i++) {
        if (orc_uniform(&seed) < 0.6f) {
            assert_int_equal(hnsw_delete(f.ix, f.slot_of[i]), DV_OK);
            ds.del[i] = 1;
            ndel++;
        }
    }
    double r0 = recall(&f, q, 100, ef, HNSW_QUANT_AUTO, NULL, NULL, keep_live_row, &ds);
    size_t freed;
    assert_int_equal(hnsw_repair(f.ix, &freed), DV_OK);
    assert_int_equal(freed, ndel);
    struct hnsw_info info;
    hnsw_get_info(f.ix, &info);
    assert_int_equal(info.live, n - ndel);
    assert_int_equal(info.deleted, 0);
    double r1 = recall(&f, q, 100, ef, HNSW_QUANT_AUTO, NULL, NULL, keep_live_row, &ds);
    printf("# %s, 60%% deleted: recall@10 %.4f with tombstones, %.4f after repair\n", what, r0, r1);
    assert_true(r1 >= 0.93);
    assert_true(r1 >= r0 - 0.02);

    /* Freed slots are reused: re-insert the deleted rows, recall over all rows again. */
    for (size_t i = 0; i < n; i++) {
        if (!ds.del[i])
            continue;
        uint32_t slot;
        assert_int_equal(hnsw_insert(f.ix, f.base + i * dim, &slot), DV_OK);
        assert_true(slot < n); /* a reused slot, no growth */
        f.slot_of[i] = slot;
        f.row_of[slot] = (uint32_t)i;
        ds.del[i] = 0;
    }
    hnsw_get_info(f.ix, &info);
    assert_int_equal(info.live, n);
    assert_int_equal(info.slots, n);
    double r2 = recall(&f, q, 100, ef, HNSW_QUANT_AUTO, NULL, NULL, NULL, NULL);
    printf("# %s, after re-inserting into freed slots: recall@10 %.4f\n", what, r2);
    assert_true(r2 >= 0.93);

    /* Delete everything: searches return nothing; repair empties the index. */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(hnsw_delete(f.ix, f.slot_of[i]), DV_OK);
    struct hnsw_hit h[K];
    uint32_t nh;
    struct hnsw_query hq = {q, K, 32, NULL, NULL, HNSW_QUANT_AUTO, 0};
    assert_int_equal(hnsw_search(f.ix, &hq, h, &nh, NULL), DV_OK);
    assert_int_equal(nh, 0);
    assert_int_equal(hnsw_repair(f.ix, &freed), DV_OK);
    assert_int_equal(freed, n);
    assert_int_equal(hnsw_search(f.ix, &hq, h, &nh, NULL), DV_OK);
    assert_int_equal(nh, 0);
    uint32_t slot;
    assert_int_equal(hnsw_insert(f.ix, q, &slot), DV_OK);
    assert_int_equal(hnsw_search(f.ix, &hq, h, &nh, NULL), DV_OK);
    assert_int_equal(nh, 1);
    assert_int_equal(h[0].slot, slot);
    free(ds.del);
    free(q);
    teardown_fx(&f);
}

static void test_delete_and_repair(void **state)
{
    delete_and_repair(orc_embed(10000, 32, 30, 7, 1), orc_embed(100, 32, 30, 7, 2), 10000, 32, 64,
                      "embedding-like 10k x 32");
}

static void test_delete_and_repair_hard(void **state)
{
    delete_and_repair(orc_random(10000, 32, 7), orc_random(100, 32, 8), 10000, 32, 100,
                      "uniform 10k x 32");
}

static void test_replace(void **state)
{
    struct fixture f;
    size_t n = 5000;
    uint32_t dim = 32;
    float *q = orc_embed(100, dim, 30, 8, 2);
    build(&f, orc_embed(n, dim, 30, 8, 1), n, dim, HNSW_L2, false, 1);
    float *fresh = orc_embed(n, dim, 30, 8, 3);
    /* Move 30% of the points somewhere else. */
    for (size_t i = 0; i < n; i += 3) {
        assert_int_equal(hnsw_replace(f.ix, f.slot_of[i], fresh + i * dim), DV_OK);
        memcpy(f.base + i * dim, fresh + i * dim, dim * sizeof(float));
    }
    float v[32];
    assert_int_equal(hnsw_get_vector(f.ix, f.slot_of[3], v), DV_OK);
    assert_memory_equal(v, fresh + 3 * dim, sizeof v);
    double r = recall(&f, q, 100, 64, HNSW_QUANT_AUTO, NULL, NULL, NULL, NULL);
    printf("# 1/3 replaced: recall@10 %.4f\n", r);
    assert_true(r >= 0.95);
    float bad[32] = {NAN};
    assert_int_equal(hnsw_replace(f.ix, f.slot_of[1], bad), DV_ENAN);
    assert_int_equal(hnsw_delete(f.ix, f.slot_of[1]), DV_OK);
    assert_int_equal(hnsw_replace(f.ix, f.slot_of[1], fresh), DV_EDELETED);
    free(fresh);
    free(q);
    teardown_fx(&f);
}

struct modsel {
    struct fixture *f;
    uint32_t mod;
};

static bool filter_slot(uint32_t slot, void *arg)
{
    struct modsel *m = arg;
    return m->f->row_of[slot] % m->mod == 0;
}

static bool keep_row(uint32_t row, void *arg)
{
    return row % ((struct modsel *)arg)->mod == 0;
}

static void test_filter(void **state)
{
    struct fixture f;
    size_t n = 10000;
    uint32_t dim = 32;
    float *q = orc_embed(100, dim, 30, 10, 2);
    build(&f, orc_embed(n, dim, 30, 10, 1), n, dim, HNSW_L2, false, 1);
    uint32_t mods[] = {2, 10, 100, 5000};
    for (size_t i = 0; i < 4; i++) {
        struct modsel ms = {&f, mods[i]};
        double r = recall(&f, q, 100, 64, HNSW_QUANT_AUTO, filter_slot, &ms, keep_row, &ms);
        printf("# filter keeps 1/%u: recall@10 %.4f\n", mods[i], r);
        assert_true(r >= 0.95);
    }
    free(q);
    teardown_fx(&f);
}

static void test_sq8(void **state)
{
    struct fixture f;
    size_t n = 20000;
    uint32_t dim = 64;
    float *q = orc_embed(100, dim, 40, 11, 2);
    build(&f, orc_embed(n, dim, 40, 11, 1), n, dim, HNSW_L2, true, 1);
    assert_true(hnsw_sq8_ready(f.ix)); /* trained automatically past sq8_train_min */
    double rf = recall(&f, q, 100, 64, HNSW_QUANT_OFF, NULL, NULL, NULL, NULL);
    double rq = recall(&f, q, 100, 64, HNSW_QUANT_ON, NULL, NULL, NULL, NULL);
    printf("# sq8 20k x 64: recall@10 float %.4f, sq8+rerank %.4f\n", rf, rq);
    assert_true(rq >= 0.93);
    assert_true(rq >= rf - 0.03);
    /* Distances after re-rank are exact float distances. */
    struct hnsw_hit h[K];
    uint32_t nh;
    struct hnsw_query hq = {q, K, 64, NULL, NULL, HNSW_QUANT_ON, 0};
    assert_int_equal(hnsw_search(f.ix, &hq, h, &nh, NULL), DV_OK);
    double d = orc_dist(HNSW_L2, q, f.base + (size_t)f.row_of[h[0].slot] * dim, dim);
    assert_float_equal(h[0].dist, d, 1e-3 * d + 1e-5);

    /* Queries far outside the trained ranges cannot be coded; they use the asymmetric
     * kernel and must still find their neighbours. */
    float *far = malloc(100 * dim * sizeof(float));
    for (size_t i = 0; i < 100 * dim; i++)
        far[i] = 3.0f * q[i];
    double rfar = recall(&f, far, 100, 64, HNSW_QUANT_ON, NULL, NULL, NULL, NULL);
    printf("# sq8 with out-of-range queries: recall@10 %.4f\n", rfar);
    assert_true(rfar >= 0.9);
    free(far);
    teardown_fx(&f);

    /* Other metrics with SQ8. */
    enum hnsw_metric ms[] = {HNSW_IP, HNSW_COSINE, HNSW_L1};
    for (int i = 0; i < 3; i++) {
        float *q2 = orc_embed(100, 32, 20, 12 + i, 2);
        build(&f, orc_embed(5000, 32, 20, 12 + i, 1), 5000, 32, ms[i], true, 1);
        double r = recall(&f, q2, 100, 64, HNSW_QUANT_ON, NULL, NULL, NULL, NULL);
        free(q2);
        printf("# sq8 metric %d: recall@10 %.4f\n", ms[i], r);
        assert_true(r >= 0.90);
        teardown_fx(&f);
    }
    free(q);
}

/* In-memory parts for save/load: three growable byte arrays and read positions. */
struct parts {
    uint8_t *b[3];
    size_t len[3], pos[3];
    long fail_after; /* reads allowed before one fails (-1: never) */
};

static int save_part(void *arg, enum hnsw_part part, const void *buf, size_t n)
{
    struct parts *pp = arg;
    pp->b[part] = realloc(pp->b[part], pp->len[part] + n);
    memcpy(pp->b[part] + pp->len[part], buf, n);
    pp->len[part] += n;
    return DV_OK;
}

static int load_part(void *arg, enum hnsw_part part, void *buf, size_t n)
{
    struct parts *pp = arg;
    if (pp->fail_after == 0)
        return DV_EIO;
    if (pp->fail_after > 0)
        pp->fail_after--;
    if (pp->pos[part] + n > pp->len[part])
        return DV_ECORRUPT;
    memcpy(buf, pp->b[part] + pp->pos[part], n);
    pp->pos[part] += n;
    return DV_OK;
}

static void rewind_parts(struct parts *pp, long fail_after)
{
    for (int i = 0; i < 3; i++)
        pp->pos[i] = 0;
    pp->fail_after = fail_after;
}

/* A saved and reloaded index answers every query exactly like the original, inserts go on. */
static void test_save_load(void **state)
{
    uint32_t dim = 24;
    size_t n = 3000;
    for (int sq8 = 0; sq8 <= 1; sq8++) {
        struct fixture f;
        float *base = orc_clustered(n, dim, 20, 31 + (uint64_t)sq8);
        float *q = orc_clustered(50, dim, 20, 77);
        build(&f, base, n, dim, HNSW_L2, sq8, 1);
        for (size_t i = 0; i < n; i += 7)
            assert_int_equal(hnsw_delete(f.ix, f.slot_of[i]), DV_OK);
        assert_int_equal(hnsw_repair(f.ix, NULL), DV_OK);
        for (size_t i = 1; i < n; i += 11)
            hnsw_delete(f.ix, f.slot_of[i]); /* tombstones saved as such */

        struct parts pp = {0};
        assert_int_equal(hnsw_save(f.ix, save_part, &pp), DV_OK);
        struct hnsw_params p;
        hnsw_params_default(&p);
        p.dim = dim;
        p.sq8 = sq8;
        struct hnsw_index *ix2;
        char err[DV_ERRMSG_SIZE] = "";
        rewind_parts(&pp, -1);
        assert_int_equal(hnsw_load(&p, load_part, &pp, &ix2, err), DV_OK);
        struct hnsw_info a, b;
        hnsw_get_info(f.ix, &a);
        hnsw_get_info(ix2, &b);
        assert_int_equal(a.live, b.live);
        assert_int_equal(a.deleted, b.deleted);
        assert_int_equal(a.slots, b.slots);
        assert_int_equal(a.max_level, b.max_level);
        assert_int_equal(a.sq8_ready, b.sq8_ready);
        for (size_t i = 0; i < 50; i++) {
            struct hnsw_query hq = {.vec = q + i * dim, .k = 10, .ef = 64};
            struct hnsw_hit h1[10], h2[10];
            uint32_t n1, n2;
            assert_int_equal(hnsw_search(f.ix, &hq, h1, &n1, NULL), DV_OK);
            assert_int_equal(hnsw_search(ix2, &hq, h2, &n2, NULL), DV_OK);
            assert_int_equal(n1, n2);
            for (uint32_t j = 0; j < n1; j++) {
                assert_int_equal(h1[j].slot, h2[j].slot);
                assert_true(h1[j].dist == h2[j].dist);
            }
        }
        /* The loaded index keeps growing: reuses freed slots, then grows. */
        float *more = orc_clustered(2 * n, dim, 20, 99);
        uint32_t *slots = malloc(2 * n * sizeof(uint32_t));
        assert_int_equal(hnsw_insert_batch(ix2, more, 2 * n, 2, slots), DV_OK);
        free(slots);
        free(more);

        /* Wrong parameters, short parts, a bad link and a failed read are refused. */
        p.dim = dim + 1;
        rewind_parts(&pp, -1);
        struct hnsw_index *none;
        assert_int_equal(hnsw_load(&p, load_part, &pp, &none, err), DV_ECORRUPT);
        assert_null(none);
        assert_non_null(strstr(err, "dim"));
        p.dim = dim;
        for (long k = 0; k < 12; k++) {
            struct hnsw_index *ix3 = NULL;
            rewind_parts(&pp, k);
            int rc = hnsw_load(&p, load_part, &pp, &ix3, err);
            if (rc == DV_OK)
                hnsw_destroy(ix3);
            else
                assert_null(ix3);
        }
        /* the level-0 block of a live slot */
        size_t l0 = 128 + (sq8 ? (4 * dim + 1) * 4 : 0) + 7 * n + f.slot_of[2] * (2 * 16 + 1) * 4;
        uint32_t bad = (uint32_t)n * 5;
        uint32_t saved;
        memcpy(&saved, pp.b[0] + l0 + 4, 4);
        memcpy(pp.b[0] + l0 + 4, &bad, 4);
        struct hnsw_index *ix3 = NULL;
        rewind_parts(&pp, -1);
        assert_int_equal(hnsw_load(&p, load_part, &pp, &ix3, err), DV_ECORRUPT);
        assert_non_null(strstr(err, "link"));
        memcpy(pp.b[0] + l0 + 4, &saved, 4);
        pp.len[1] -= 4;
        rewind_parts(&pp, -1);
        assert_int_equal(hnsw_load(&p, load_part, &pp, &ix3, err), DV_ECORRUPT);
        assert_non_null(strstr(err, "vectors"));

        hnsw_destroy(ix2);
        for (int i = 0; i < 3; i++)
            free(pp.b[i]);
        teardown_fx(&f);
        free(q);
    }
}

/* The exact scan over chosen slots equals the brute-force answer restricted to them. */
static void test_search_slots(void **state)
{
    struct fixture f;
    uint32_t dim = 16;
    size_t n = 2000;
    float *base = orc_random(n, dim, 5);
    build(&f, base, n, dim, HNSW_COSINE, false, 1);
    uint32_t *pick = malloc(n * sizeof(uint32_t));
    size_t np = 0;
    for (size_t i = 0; i < n; i += 3)
        pick[np++] = f.slot_of[i];
    hnsw_delete(f.ix, f.slot_of[0]);
    float *q = orc_random(1, dim, 6);
    struct hnsw_hit hits[10];
    uint32_t nh;
    assert_int_equal(hnsw_search_slots(f.ix, q, 10, pick, np, NULL, NULL, hits, &nh), DV_OK);
    assert_int_equal(nh, 10);
    /* oracle over rows 3, 6, 9, ... (row 0 is deleted) */
    double best[10];
    size_t nb = 0;
    for (size_t i = 3; i < n; i += 3) {
        double d = orc_dist(HNSW_COSINE, q, base + i * dim, dim);
        size_t j = nb < 10 ? nb++ : 10;
        if (j == 10 && d >= best[9])
            continue;
        if (j == 10)
            j = 9;
        while (j > 0 && best[j - 1] > d) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = d;
    }
    for (int i = 0; i < 10; i++) {
        assert_true(fabs(hits[i].dist - best[i]) < 1e-4);
        assert_true(f.row_of[hits[i].slot] % 3 == 0 && f.row_of[hits[i].slot] != 0);
    }
    free(pick);
    free(q);
    teardown_fx(&f);
}

/*
 * The large arrays are 2 MiB-aligned mappings of whole 2 MiB once they reach 2 MiB, also after
 * growing by mremap (huge pages move whole only between aligned addresses), and growth keeps
 * every vector.
 */
static void test_regions(void **state)
{
    const size_t huge = (size_t)2 << 20;
    struct hnsw_region r[HNSW_REGIONS];
    struct fixture f;
    uint32_t dim = 512;
    size_t n = 3000; /* capacity 64 grows to 4096: vectors 8 MiB, codes 2 MiB */
    float *base = orc_random(n, dim, 7);
    float *v = malloc(dim * sizeof(float));
    (void)state;
    build(&f, base, n, dim, HNSW_L2, true, 2);
    hnsw_get_regions(f.ix, r);
    assert_true(r[HNSW_REGION_VECTORS].bytes >= 4096 * dim * sizeof(float));
    assert_true(r[HNSW_REGION_CODES].bytes >= 4096 * dim);
    for (int i = 0; i < HNSW_REGIONS; i++) {
        if (r[i].bytes < huge) {
            assert_int_equal(r[i].bytes % 4096, 0);
            continue;
        }
        assert_int_equal((uintptr_t)r[i].addr % huge, 0);
        assert_int_equal(r[i].bytes % huge, 0);
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(hnsw_get_vector(f.ix, f.slot_of[i], v), DV_OK);
        assert_memory_equal(v, base + i * dim, dim * sizeof(float));
    }
    free(v);
    teardown_fx(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_recall_embed_l2),
        cmocka_unit_test(test_recall_random_l2),
        cmocka_unit_test(test_recall_clustered_l2),
        cmocka_unit_test(test_recall_ip),
        cmocka_unit_test(test_recall_cosine),
        cmocka_unit_test(test_recall_l1),
        cmocka_unit_test(test_parallel_build),
        cmocka_unit_test(test_delete_and_repair),
        cmocka_unit_test(test_delete_and_repair_hard),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_sq8),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_search_slots),
        cmocka_unit_test(test_regions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
