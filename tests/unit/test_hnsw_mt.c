/* test_hnsw_mt.c - the index under concurrency (run under ThreadSanitizer by scripts/test):
 * inserts, searches, deletes, repair, growth and SQ8 training all at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <sched.h>

#include <cmocka.h>

#include "err.h"
#include "hnsw_oracle.h"

#define DIM        16
#define PER_WRITER 1500
#define WRITERS    2
#define N          (PER_WRITER * WRITERS)

struct shared {
    struct hnsw_index *ix;
    float *base;
    uint32_t slot_of[N]; /* written by the inserting thread before `inserted` counts it */
    int inserted;        /* atomic */
    int deleted_rows[N]; /* atomic flags */
    int stop;            /* atomic */
    int searches;        /* atomic */
    int bad;             /* atomic: a search result was out of order or an error occurred */
};

struct writer_arg {
    struct shared *sh;
    int first;
};

static void *writer(void *arg)
{
    struct writer_arg *w = arg;
    for (int i = w->first; i < w->first + PER_WRITER; i++) {
        uint32_t slot;
        if (hnsw_insert(w->sh->ix, w->sh->base + (size_t)i * DIM, &slot) != DV_OK) {
            __atomic_store_n(&w->sh->bad, 1, __ATOMIC_RELAXED);
            break;
        }
        __atomic_store_n(&w->sh->slot_of[i], slot, __ATOMIC_RELEASE);
        __atomic_fetch_add(&w->sh->inserted, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void *searcher(void *arg)
{
    struct shared *sh = arg;
    uint64_t seed = (uint64_t)(uintptr_t)&seed;
    float q[DIM];
    struct hnsw_hit hits[10];
    while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
        for (int d = 0; d < DIM; d++)
            q[d] = orc_gauss(&seed);
        struct hnsw_query hq = {q, 10, 32, NULL, NULL, HNSW_QUANT_AUTO, 0};
        uint32_t n;
        if (hnsw_search(sh->ix, &hq, hits, &n, NULL) != DV_OK)
            __atomic_store_n(&sh->bad, 1, __ATOMIC_RELAXED);
        for (uint32_t i = 1; i < n; i++)
            if (hits[i - 1].dist > hits[i].dist)
                __atomic_store_n(&sh->bad, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&sh->searches, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* Deletes rows 0, 7, 14, ... once they are inserted, and runs a repair half way. */
static void *deleter(void *arg)
{
    struct shared *sh = arg;
    int repaired = 0;
    for (int row = 0; row < PER_WRITER; row += 7) {
        /* Rows of writer 0 are inserted in order. */
        while (__atomic_load_n(&sh->slot_of[row], __ATOMIC_ACQUIRE) == UINT32_MAX)
            sched_yield();
        if (hnsw_delete(sh->ix, sh->slot_of[row]) != DV_OK)
            __atomic_store_n(&sh->bad, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&sh->deleted_rows[row], 1, __ATOMIC_RELEASE);
        if (!repaired && row > PER_WRITER / 2) {
            size_t freed;
            if (hnsw_repair(sh->ix, &freed) != DV_OK || freed == 0)
                __atomic_store_n(&sh->bad, 1, __ATOMIC_RELAXED);
            repaired = 1;
        }
    }
    return NULL;
}

static bool keep_live(uint32_t row, void *arg)
{
    return !((struct shared *)arg)->deleted_rows[row];
}

/* One round: everything at once, then counts and recall. */
static void concurrent_round(void)
{
    static struct shared sh;
    struct hnsw_params p;
    pthread_t wt[WRITERS], rt[2], dt;
    struct writer_arg wa[WRITERS];

    memset(&sh, 0, sizeof sh);
    for (int i = 0; i < N; i++)
        sh.slot_of[i] = UINT32_MAX;
    hnsw_params_default(&p);
    p.dim = DIM;
    p.m = 8;
    p.ef_construction = 64;
    p.capacity = 16; /* growth happens while everything runs */
    p.sq8 = true;
    p.sq8_train_min = 500; /* and SQ8 (re)training too */
    assert_int_equal(hnsw_create(&p, &sh.ix), DV_OK);
    sh.base = orc_embed(N, DIM, 10, 1, 1);

    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&rt[i], NULL, searcher, &sh), 0);
    for (int i = 0; i < WRITERS; i++) {
        wa[i].sh = &sh;
        wa[i].first = i * PER_WRITER;
        assert_int_equal(pthread_create(&wt[i], NULL, writer, &wa[i]), 0);
    }
    assert_int_equal(pthread_create(&dt, NULL, deleter, &sh), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(wt[i], NULL);
    pthread_join(dt, NULL);
    __atomic_store_n(&sh.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(rt[i], NULL);

    assert_int_equal(sh.bad, 0);
    assert_true(sh.searches > 0);
    int ndel = 0;
    for (int i = 0; i < N; i++)
        ndel += sh.deleted_rows[i];
    struct hnsw_info info;
    hnsw_get_info(sh.ix, &info);
    assert_int_equal(info.live, N - ndel);
    assert_true(info.capacity >= (uint64_t)(N - ndel));
    assert_true(hnsw_sq8_ready(sh.ix));

    /* Every live point findable: recall against brute force over the live rows. */
    uint32_t *row_of = malloc(info.slots * sizeof(uint32_t));
    for (int i = 0; i < N; i++)
        if (!sh.deleted_rows[i])
            row_of[sh.slot_of[i]] = (uint32_t)i;
    float *qs = orc_embed(50, DIM, 10, 1, 2);
    double sum = 0;
    for (int qi = 0; qi < 50; qi++) {
        struct hnsw_hit hits[10];
        uint32_t n, truth[10], found[10];
        struct hnsw_query hq = {qs + qi * DIM, 10, 64, NULL, NULL, HNSW_QUANT_OFF, 0};
        assert_int_equal(hnsw_search(sh.ix, &hq, hits, &n, NULL), DV_OK);
        for (uint32_t i = 0; i < n; i++) {
            assert_true(hnsw_is_live(sh.ix, hits[i].slot));
            found[i] = row_of[hits[i].slot];
        }
        uint32_t nt = orc_knn(HNSW_L2, sh.base, N, DIM, qs + qi * DIM, 10, keep_live, &sh, truth);
        sum += orc_overlap(found, n, truth, nt);
    }
    printf("# concurrent build: %d searches ran alongside, recall@10 after %.4f\n", sh.searches,
           sum / 50);
    assert_true(sum / 50 >= 0.95);
    free(qs);
    free(row_of);
    free(sh.base);
    hnsw_destroy(sh.ix);
}

/* Several rounds: the interleavings differ each time (repair racing with inserts, growth). */
static void test_concurrent(void **state)
{
    for (int round = 0; round < 4; round++)
        concurrent_round();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
