/* test_msg_search.c - what every sender of a search shares (proto/msg_search.c): one request per
 * node naming its partitions, and the merge of the nodes' hits against a sort of all of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msg.h"

static void test_group(void **state)
{
    (void)state;
    uint32_t via[] = {2, 0, 2, UINT32_MAX, 0, 1, 2};
    uint32_t np = sizeof via / sizeof via[0];
    struct msg_target t[7];
    struct msg_search_group g[7];
    uint32_t ng = msg_search_group(via, np, t, g);
    assert_int_equal(ng, 3);
    /* Nodes in the order of their first partition; every asked partition exactly once. */
    assert_int_equal(g[0].node, 2);
    assert_int_equal(g[0].n, 3);
    assert_int_equal(t[g[0].first].part, 0);
    assert_int_equal(t[g[0].first + 1].part, 2);
    assert_int_equal(t[g[0].first + 2].part, 6);
    assert_int_equal(g[1].node, 0);
    assert_int_equal(g[1].n, 2);
    assert_int_equal(t[g[1].first].part, 1);
    assert_int_equal(t[g[1].first + 1].part, 4);
    assert_int_equal(g[2].node, 1);
    assert_int_equal(g[2].n, 1);
    assert_int_equal(t[g[2].first].part, 5);
    assert_int_equal(g[2].first + g[2].n, 6); /* partition 3 was not asked */
    for (uint32_t p = 0; p < np; p++)
        assert_int_equal(via[p], UINT32_MAX);
    uint32_t none[] = {UINT32_MAX, UINT32_MAX};
    assert_int_equal(msg_search_group(none, 2, t, g), 0);
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (uint32_t)((z ^ (z >> 31)) % n);
}

#define NODES 4
#define PARTS 3 /* per node */
#define NQ    3
#define HITS  12 /* per list at most */

/* Random answers of NODES nodes (one failed, one partition in error), merged, against a sort
 * of every answered hit: the k best, best first, ties by id, for each metric's order. */
static void test_merge(void **state)
{
    (void)state;
    const char *seed_env = getenv("DVEC_TEST_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : 20261206;
    printf("# seed %llu (DVEC_TEST_SEED repeats it)\n", (unsigned long long)seed);
    rng_state = seed;
    static struct msg_hit store[NODES][PARTS][NQ][HITS];
    static struct msg_hits lists[NODES][PARTS][NQ];
    static struct msg_search_part parts[NODES][PARTS];
    static struct msg_search_rep reps[NODES];
    for (int round = 0; round < 200; round++) {
        uint32_t metric = rnd(3); /* l2, ip, cosine */
        int (*order)(const void *, const void *) = msg_hit_order(metric);
        const struct msg_search_rep *rp[NODES];
        struct msg_query qs[NQ] = {{0}};
        for (int q = 0; q < NQ; q++)
            qs[q].k = 1 + rnd(20);
        uint32_t dead = rnd(NODES), bad = rnd(NODES * PARTS);
        static struct msg_hit all[NQ][NODES * PARTS * HITS];
        size_t nall[NQ] = {0};
        for (int i = 0; i < NODES; i++) {
            for (int k = 0; k < PARTS; k++) {
                struct msg_search_part *sp = &parts[i][k];
                *sp = (struct msg_search_part){(uint32_t)(i * PARTS + k), {0}, lists[i][k], NQ};
                if ((uint32_t)(i * PARTS + k) == bad) {
                    sp->err.code = -1;
                    sp->n = 0;
                }
                for (int q = 0; q < NQ; q++) {
                    uint32_t n = rnd(HITS + 1);
                    for (uint32_t h = 0; h < n; h++) /* few scores: ties are common */
                        store[i][k][q][h] = (struct msg_hit){.id = pid_num(rnd(1000)),
                                                             .score = (float)rnd(8) / 4.0f};
                    qsort(store[i][k][q], n, sizeof(struct msg_hit), order);
                    lists[i][k][q] = (struct msg_hits){store[i][k][q], n};
                    if (sp->err.code == 0 && (uint32_t)i != dead) {
                        memcpy(&all[q][nall[q]], store[i][k][q], n * sizeof(struct msg_hit));
                        nall[q] += n;
                    }
                }
            }
            reps[i] = (struct msg_search_rep){parts[i], PARTS};
            rp[i] = (uint32_t)i == dead ? NULL : &reps[i];
        }
        size_t total = msg_hits_total(rp, NODES, NQ);
        assert_int_equal(total, nall[0] + nall[1] + nall[2]);
        struct msg_hit *pool = malloc((total ? total : 1) * sizeof *pool);
        struct msg_hits res[NQ];
        assert_non_null(pool);
        msg_hits_merge(rp, NODES, qs, NQ, metric, NULL, res, pool);
        for (int q = 0; q < NQ; q++) {
            qsort(all[q], nall[q], sizeof(struct msg_hit), order);
            size_t want = nall[q] < qs[q].k ? nall[q] : qs[q].k;
            assert_int_equal(res[q].n, want);
            for (size_t h = 0; h < want; h++) {
                assert_true(pid_eq(&res[q].hits[h].id, &all[q][h].id));
                assert_true(res[q].hits[h].score == all[q][h].score);
            }
        }
        free(pool);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
