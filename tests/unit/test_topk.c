/* test_topk.c - top-k heap and merge against a sort-based oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "topk.h"

static uint64_t rng_state = 4242;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int cmp_dist_id(const void *pa, const void *pb)
{
    const struct topk_entry *a = pa, *b = pb;
    if (a->dist != b->dist)
        return a->dist < b->dist ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Oracle: sort everything by (dist, id) and take the first k. */
static size_t oracle(const struct topk_entry *in, size_t n, size_t k, struct topk_entry *out)
{
    struct topk_entry *tmp = malloc((n ? n : 1) * sizeof *tmp);
    memcpy(tmp, in, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp_dist_id);
    size_t m = n < k ? n : k;
    memcpy(out, tmp, m * sizeof *out);
    free(tmp);
    return m;
}

static void assert_entries_equal(const struct topk_entry *a, const struct topk_entry *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].id != b[i].id || a[i].dist != b[i].dist)
            fail_msg("entry %zu: got (%g, %llu) want (%g, %llu)", i, (double)a[i].dist,
                     (unsigned long long)a[i].id, (double)b[i].dist, (unsigned long long)b[i].id);
    }
}

/* Random data with many distance ties (quantised) and some duplicate entries. */
static void fill(struct topk_entry *e, size_t n, int levels)
{
    for (size_t i = 0; i < n; i++) {
        e[i].dist = (float)(rng() % (uint64_t)levels) * 0.25f - 3.0f;
        e[i].id = rng() % (n * 4 + 1);
    }
}

static void test_against_oracle(void **state)
{
    static const size_t ks[] = {1, 2, 3, 10, 100, 999, 1000, 5000};
    static const size_t ns[] = {0, 1, 5, 100, 1000, 3000};
    struct topk t;
    topk_init(&t, 0);
    for (int rep = 0; rep < 5; rep++) {
        for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++) {
            for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
                size_t k = ks[a], n = ns[b];
                struct topk_entry *in = malloc((n + 1) * sizeof *in);
                struct topk_entry *want = malloc((n + 1) * sizeof *want);
                struct topk_entry *got = malloc((n + 1) * sizeof *got);
                fill(in, n, rep == 0 ? 3 : 1000);
                /* Reuse one heap across rounds, as a search thread would. */
                topk_reset_k(&t, k);
                for (size_t i = 0; i < n; i++) {
                    assert_int_equal(topk_push(&t, in[i].dist, in[i].id), DV_OK);
                    /* Now and then: the threshold is the oracle's k-th best so far. */
                    if (i % 97 == 0 && i + 1 >= k) {
                        oracle(in, i + 1, k, want);
                        assert_true(topk_worst(&t) == want[k - 1].dist);
                    }
                }
                size_t m = oracle(in, n, k, want);
                assert_int_equal(topk_size(&t), m);
                assert_int_equal(topk_sorted(&t, got), m);
                assert_entries_equal(got, want, m);
                if (m == k && k > 0)
                    assert_true(topk_worst(&t) == want[k - 1].dist);
                else
                    assert_true(topk_worst(&t) == INFINITY);
                /* Extraction leaves the heap intact: a second extraction is the same. */
                assert_int_equal(topk_sorted(&t, got), m);
                assert_entries_equal(got, want, m);
                free(in);
                free(want);
                free(got);
            }
        }
    }
    topk_free(&t);
}

static void test_k_zero(void **state)
{
    struct topk t;
    topk_init(&t, 0);
    assert_true(topk_worst(&t) == -INFINITY);
    for (int i = 0; i < 100; i++)
        assert_int_equal(topk_push(&t, (float)i, (uint64_t)i), DV_OK);
    assert_int_equal(topk_size(&t), 0);
    assert_int_equal(topk_sorted(&t, NULL), 0);
    assert_null(t.heap);
    topk_free(&t);
}

static void test_k_one(void **state)
{
    struct topk t;
    struct topk_entry e;
    topk_init(&t, 1);
    assert_true(topk_worst(&t) == INFINITY);
    assert_int_equal(topk_push(&t, 5.0f, 10), DV_OK);
    assert_int_equal(topk_push(&t, 7.0f, 1), DV_OK);
    assert_true(topk_worst(&t) == 5.0f);
    /* A tie on distance goes to the smaller id. */
    assert_int_equal(topk_push(&t, 5.0f, 3), DV_OK);
    assert_int_equal(topk_push(&t, 5.0f, 4), DV_OK);
    assert_int_equal(topk_sorted(&t, &e), 1);
    assert_true(e.dist == 5.0f);
    assert_int_equal(e.id, 3);
    assert_int_equal(topk_push(&t, -INFINITY, 99), DV_OK);
    assert_int_equal(topk_sorted(&t, &e), 1);
    assert_int_equal(e.id, 99);
    topk_reset(&t);
    assert_int_equal(topk_size(&t), 0);
    assert_true(topk_worst(&t) == INFINITY);
    topk_free(&t);
}

/* The kept set does not depend on push order, even with ties and duplicates. */
static void test_order_independent(void **state)
{
    struct topk_entry in[200], a[20], b[20];
    for (int i = 0; i < 200; i++) {
        in[i].dist = (float)(i % 7);
        in[i].id = (uint64_t)(i % 50); /* duplicates of (dist, id) pairs too */
    }
    struct topk t;
    topk_init(&t, 20);
    for (int i = 0; i < 200; i++)
        topk_push(&t, in[i].dist, in[i].id);
    topk_sorted(&t, a);
    topk_reset(&t);
    for (int i = 199; i >= 0; i--)
        topk_push(&t, in[i].dist, in[i].id);
    topk_sorted(&t, b);
    assert_entries_equal(a, b, 20);
    struct topk_entry want[20];
    oracle(in, 200, 20, want);
    assert_entries_equal(a, want, 20);
    topk_free(&t);
}

static void test_nan_rejected(void **state)
{
    struct topk t;
    topk_init(&t, 4);
    assert_int_equal(topk_push(&t, NAN, 1), DV_ENAN);
    assert_int_equal(topk_size(&t), 0);
    assert_int_equal(topk_push(&t, INFINITY, 2), DV_OK);
    assert_int_equal(topk_push(&t, 1.0f, 3), DV_OK);
    assert_int_equal(topk_push(&t, -NAN, 4), DV_ENAN);
    assert_int_equal(topk_size(&t), 2);
    struct topk_entry out[2];
    topk_sorted(&t, out);
    assert_int_equal(out[0].id, 3);
    assert_int_equal(out[1].id, 2);
    topk_free(&t);
}

/* Merge oracle: best distance per id, then sort by (dist, id), first k. */
static size_t merge_oracle(struct topk_entry **lists, size_t *lens, size_t nl, size_t k,
                           struct topk_entry *out)
{
    size_t total = 0;
    for (size_t i = 0; i < nl; i++)
        total += lens[i];
    struct topk_entry *u = malloc((total + 1) * sizeof *u);
    size_t nu = 0;
    for (size_t i = 0; i < nl; i++) {
        for (size_t j = 0; j < lens[i]; j++) {
            size_t x;
            for (x = 0; x < nu; x++)
                if (u[x].id == lists[i][j].id)
                    break;
            if (x == nu)
                u[nu++] = lists[i][j];
            else if (lists[i][j].dist < u[x].dist)
                u[x].dist = lists[i][j].dist;
        }
    }
    size_t m = oracle(u, nu, k, out);
    free(u);
    return m;
}

static void test_merge(void **state)
{
    for (int rep = 0; rep < 300; rep++) {
        size_t nl = (size_t)(rng() % 6), k = (size_t)(rng() % 40);
        struct topk_entry *lists[6];
        size_t lens[6];
        for (size_t i = 0; i < nl; i++) {
            lens[i] = (size_t)(rng() % 50);
            lists[i] = malloc((lens[i] + 1) * sizeof *lists[i]);
            for (size_t j = 0; j < lens[i]; j++) {
                lists[i][j].dist = (float)(rng() % 20);
                /* Small id space: the same id shows up in several lists. */
                lists[i][j].id = rng() % 80;
            }
        }
        struct topk_entry got[40], want[40];
        size_t n = 12345;
        assert_int_equal(topk_merge((const struct topk_entry *const *)lists, lens, nl, k, got, &n),
                         DV_OK);
        size_t m = merge_oracle(lists, lens, nl, k, want);
        assert_int_equal(n, m);
        assert_entries_equal(got, want, m);
        for (size_t i = 0; i + 1 < n; i++)
            assert_int_not_equal(got[i].id, got[i + 1].id);
        for (size_t i = 0; i < nl; i++)
            free(lists[i]);
    }
}

/* The coordinator's case: per-node sorted top-k lists of disjoint ids. */
static void test_merge_per_node_lists(void **state)
{
    enum { NODES = 4, K = 10 };
    struct topk_entry all[NODES * 100], node[NODES][K];
    const struct topk_entry *lists[NODES];
    size_t lens[NODES];
    for (int i = 0; i < NODES * 100; i++) {
        all[i].dist = (float)(rng() % 100000) / 1000.0f;
        all[i].id = (uint64_t)i;
    }
    for (int nd = 0; nd < NODES; nd++) {
        struct topk t;
        topk_init(&t, K);
        for (int i = nd; i < NODES * 100; i += NODES)
            topk_push(&t, all[i].dist, all[i].id);
        lens[nd] = topk_sorted(&t, node[nd]);
        lists[nd] = node[nd];
        topk_free(&t);
    }
    struct topk_entry got[K], want[K];
    size_t n;
    assert_int_equal(topk_merge(lists, lens, NODES, K, got, &n), DV_OK);
    assert_int_equal(n, K);
    oracle(all, NODES * 100, K, want);
    assert_entries_equal(got, want, K);
}

static void test_merge_nan_and_empty(void **state)
{
    struct topk_entry l0[2] = {{1.0f, 1}, {NAN, 2}};
    const struct topk_entry *lists[1] = {l0};
    size_t lens[1] = {2}, n = 7;
    struct topk_entry out[4];
    assert_int_equal(topk_merge(lists, lens, 1, 4, out, &n), DV_ENAN);
    assert_int_equal(n, 0);
    assert_int_equal(topk_merge(NULL, NULL, 0, 4, out, &n), DV_OK);
    assert_int_equal(n, 0);
    lens[0] = 1;
    assert_int_equal(topk_merge(lists, lens, 1, 0, out, &n), DV_OK);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_oracle),
        cmocka_unit_test(test_k_zero),
        cmocka_unit_test(test_k_one),
        cmocka_unit_test(test_order_independent),
        cmocka_unit_test(test_nan_rejected),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_per_node_lists),
        cmocka_unit_test(test_merge_nan_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
