/* test_place.c - placement: jump hash of points, weighted rendezvous of partitions onto nodes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmap.h"
#include "cmap_util.h"
#include "err.h"
#include "hash.h"
#include "place.h"
#include "plan.h"

/* Applies a command built in memory and expects success. */
static void must(struct cmap *m, struct cmap_cmd cmd)
{
    struct cmap_result r;
    assert_int_equal(cmap_apply_cmd(m, &cmd, &r), DV_OK);
    if (r.code != DV_OK)
        fail_msg("%s: %s", cmap_cmd_type_name(cmd.type), r.msg);
    cmap_cmd_free(&cmd);
}

static void add_node(struct cmap *m, int i, double weight)
{
    char id[32];
    snprintf(id, sizeof id, "node-%d", i);
    must(m, cu_reg(id, CMAP_NODE_ALIVE, weight));
}

/* A map with nodes node-0 .. node-(n-1), all of weight 1. */
static void nodes_map(struct cmap *m, int n)
{
    assert_int_equal(cmap_init(m, 0), DV_OK);
    for (int i = 0; i < n; i++)
        add_node(m, i, 1.0);
}

static struct place_part *ideal(const struct cmap *m, const char *coll, uint32_t n_parts,
                                uint32_t rf)
{
    struct place_part *p = calloc(n_parts, sizeof *p);
    assert_int_equal(place_ideal(m, coll, n_parts, rf, p), DV_OK);
    return p;
}

static bool holds(const struct place_part *p, uint32_t num)
{
    for (uint32_t k = 0; k < p->n; k++)
        if (p->nodes[k] == num)
            return true;
    return false;
}

/* ---- point -> partition ------------------------------------------------------------------ */

/* A compatibility contract, like test_hash's table: these place points in partitions. */
static void test_partition_golden(void **state)
{
    struct pid uuid;
    assert_int_equal(pid_parse_uuid("550e8400-e29b-41d4-a716-446655440000", 36, &uuid), DV_OK);
    static const uint64_t nums[] = {0, 1, 42, 123456789, UINT64_MAX};
    static const uint32_t sizes[] = {1, 4, 16, 1024};
    static const uint32_t want_num[][4] = {
        {0, 3, 8, 258}, {0, 3, 15, 527}, {0, 0, 0, 151}, {0, 0, 10, 534}, {0, 3, 3, 650},
    };
    static const uint32_t want_uuid[4] = {0, 1, 8, 899};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        for (size_t s = 0; s < 4; s++) {
            struct pid id = pid_num(nums[i]);
            uint32_t p = place_partition_of(&id, sizes[s]);
            assert_int_equal(
                p, (uint32_t)jump_consistent_hash(hash64_u64(nums[i]), (int32_t)sizes[s]));
            assert_int_equal(p, want_num[i][s]);
        }
    for (size_t s = 0; s < 4; s++) {
        uint8_t b[16];
        pid_uuid_bytes(&uuid, b);
        uint32_t p = place_partition_of(&uuid, sizes[s]);
        assert_int_equal(p,
                         (uint32_t)jump_consistent_hash(hash64_bytes(b, 16, 0), (int32_t)sizes[s]));
        assert_int_equal(p, want_uuid[s]);
    }
}

static void test_partition_uniform(void **state)
{
    static const uint32_t sizes[] = {7, 64, 1024};
    const uint32_t ids = 1u << 20;
    uint32_t *count = calloc(1024, sizeof *count);
    for (size_t s = 0; s < 3; s++) {
        uint32_t n = sizes[s];
        memset(count, 0, 1024 * sizeof *count);
        for (uint32_t i = 0; i < ids; i++) {
            struct pid id = pid_num(i);
            count[place_partition_of(&id, n)]++;
        }
        /* Binomial: 6 standard deviations around ids/n. */
        double want = (double)ids / n, sd = sqrt(want * (1 - 1.0 / n));
        for (uint32_t p = 0; p < n; p++)
            if (fabs(count[p] - want) > 6 * sd)
                fail_msg("P=%u: partition %u holds %u, want %.0f", n, p, count[p], want);
    }
    free(count);
}

static void test_partition_grow(void **state)
{
    static const uint32_t sizes[] = {4, 10, 100, 1023};
    const uint32_t ids = 200000;
    for (size_t s = 0; s < 4; s++) {
        uint32_t n = sizes[s], moved = 0;
        for (uint32_t i = 0; i < ids; i++) {
            struct pid id = pid_num(hash64_u64(i) ^ 0x5555); /* not 0..n: any ids */
            uint32_t a = place_partition_of(&id, n), b = place_partition_of(&id, n + 1);
            if (a != b) {
                assert_int_equal(b, n); /* only ever to the new partition */
                moved++;
            }
        }
        double p = 1.0 / (n + 1), want = ids * p, sd = sqrt(ids * p * (1 - p));
        if (fabs(moved - want) > 6 * sd)
            fail_msg("P %u -> %u moved %u ids, want %.0f", n, n + 1, moved, want);
    }
    struct pid id = pid_num(5);
    assert_int_equal(place_partition_of(&id, 1), 0);
    assert_int_equal(place_partition_of(&id, 0), 0);
}

/* ---- partition -> nodes ------------------------------------------------------------------ */

static void test_rendezvous_golden(void **state)
{
    /* Pinned: a change here re-places every partition of every cluster on upgrade. */
    assert_true(place_hash("node-0", "c", 0) == 0x8265f3822372eeebULL);
    assert_true(place_hash("node-1", "c", 0) == 0xb2fab6ae5d6f4d3bULL);
    assert_true(place_hash("node-0", "c", 1) == 0x5b7ff15542e85a39ULL);
    assert_true(place_hash("node-0", "d", 0) == 0x5bf55c3a383992dcULL);
    /* Score: -w / ln(u), increasing in the hash and proportional to the weight. */
    assert_true(place_score(0, 1.0) < place_score(UINT64_MAX, 1.0));
    assert_true(place_score(1ULL << 63, 2.0) == 2 * place_score(1ULL << 63, 1.0));
    assert_true(isfinite(place_score(UINT64_MAX, 1.0)) && place_score(0, 1.0) > 0);

    struct cmap m;
    nodes_map(&m, 5);
    struct place_part *p = ideal(&m, "golden", 8, 2);
    /* Pinned too. Every node holds 3 or 4 replicas and is primary of 1 or 2 partitions;
     * plain rendezvous gave {3,4} {3,1} {3,2} {4,3} {2,4} {4,1} {4,3} {2,3}: node 0 empty,
     * node 3 with 6 replicas. */
    static const uint32_t want[8][2] = {{3, 4}, {3, 1}, {2, 3}, {4, 3},
                                        {2, 0}, {1, 0}, {0, 4}, {1, 2}};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(p[i].n, 2);
        if (p[i].nodes[0] != want[i][0] || p[i].nodes[1] != want[i][1])
            fail_msg("partition %d: {%u, %u}", i, p[i].nodes[0], p[i].nodes[1]);
    }
    free(p);
    cmap_free(&m);
}

/* Replicas of `after` that `before` did not have, over all partitions. */
static uint32_t replicas_moved(const struct place_part *before, const struct place_part *after,
                               uint32_t P)
{
    uint32_t moved = 0;
    for (uint32_t p = 0; p < P; p++)
        for (uint32_t k = 0; k < after[p].n; k++)
            moved += !holds(&before[p], after[p].nodes[k]);
    return moved;
}

/* Every node holds at most its share of replicas (bounded loads), give or take rf: the last
 * partitions may find fewer nodes with room than replicas to place; and of primaries within
 * 5% (a primary is one of its partition's replicas, which limits the choice). */
static void check_balanced(const struct place_part *pp, uint32_t P, uint32_t rf, int n)
{
    uint32_t load[64] = {0}, prim[64] = {0};
    for (uint32_t p = 0; p < P; p++) {
        prim[pp[p].nodes[0]]++;
        for (uint32_t k = 0; k < pp[p].n; k++)
            load[pp[p].nodes[k]]++;
    }
    uint32_t cap = (P * rf + (uint32_t)n - 1) / (uint32_t)n,
             pcap = (P + (uint32_t)n - 1) / (uint32_t)n;
    for (int i = 0; i < n; i++)
        if (load[i] > cap + rf || prim[i] > pcap + pcap / 20 + rf)
            fail_msg("N=%d P=%u rf=%u: node %d holds %u replicas (cap %u), %u primaries (cap %u)",
                     n, P, rf, i, load[i], cap, prim[i], pcap);
}

/* Adding a node moves about rf * P/(N+1) replicas (most of them to the new node), and
 * every placement is balanced. */
static void test_add_node(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1024, 64, 6};
    for (size_t s = 0; s < 3; s++) {
        uint32_t P = sizes[s];
        for (int n = 3; n <= 10; n++) {
            for (uint32_t rf = 1; rf <= 3; rf += 2) {
                struct cmap m;
                nodes_map(&m, n);
                struct place_part *before = ideal(&m, "coll", P, rf);
                check_balanced(before, P, rf, n);
                add_node(&m, n, 1.0);
                struct place_part *after = ideal(&m, "coll", P, rf);
                check_balanced(after, P, rf, n + 1);
                uint32_t to_new = 0;
                for (uint32_t p = 0; p < P; p++) {
                    assert_int_equal(after[p].n, rf);
                    to_new += holds(&after[p], (uint32_t)n);
                }
                uint32_t moved = replicas_moved(before, after, P);
                double want = (double)rf * P / (n + 1);
                if (P == 1024)
                    printf("# N=%d -> %d, P %u, rf %u: %u replicas moved (%u to the new node), "
                           "ideal %.0f\n",
                           n, n + 1, P, rf, moved, to_new, want);
                /* The new node gets its share; what moves is within 2x of the minimum. */
                assert_true(to_new + rf >= (uint32_t)(0.9 * want));
                if (moved > 2.0 * want + 2)
                    fail_msg("N=%d P=%u rf=%u: %u replicas moved, want about %.0f", n, P, rf, moved,
                             want);
                free(before);
                free(after);
                cmap_free(&m);
            }
        }
    }
}

/* Removing (or losing) a node moves its replicas and about as many more, no more. */
static void test_remove_node(void **state)
{
    (void)state;
    const uint32_t P = 1024;
    static const int gone_states[] = {CMAP_NODE_DEAD, CMAP_NODE_SUSPECT, CMAP_NODE_DRAINING,
                                      CMAP_NODE_REMOVED};
    for (int n = 4; n <= 10; n += 3)
        for (size_t g = 0; g < 4; g++) {
            struct cmap m;
            nodes_map(&m, n);
            struct place_part *before = ideal(&m, "coll", P, 2);
            const uint32_t victim = 1;
            uint32_t held = 0;
            for (uint32_t p = 0; p < P; p++)
                held += holds(&before[p], victim);
            if (gone_states[g] == CMAP_NODE_REMOVED)
                must(&m, cu_remove("node-1", false));
            else
                must(&m, cu_state("node-1", gone_states[g], 0));
            struct place_part *after = ideal(&m, "coll", P, 2);
            for (uint32_t p = 0; p < P; p++)
                assert_false(holds(&after[p], victim));
            uint32_t moved = replicas_moved(before, after, P);
            if (g == 0)
                printf("# N=%d -> %d, P %u, rf 2: the node held %u replicas; %u moved\n", n, n - 1,
                       P, held, moved);
            assert_true(moved >= held);
            if (moved > 2 * held)
                fail_msg("N=%d: %u replicas moved, the node held %u", n, moved, held);
            free(before);
            free(after);
            cmap_free(&m);
        }
}

/* Over 4 collections of 1024 partitions, each node gets partitions in proportion to its
 * weight, within 15%. */
static void test_weights(void **state)
{
    const uint32_t P = 4 * 1024;
    static const double w[] = {1, 1, 1, 2, 0.5};
    struct cmap m;
    assert_int_equal(cmap_init(&m, 0), DV_OK);
    double total = 0;
    for (int i = 0; i < 5; i++) {
        add_node(&m, i, w[i]);
        total += w[i];
    }
    uint32_t count[5] = {0};
    struct place_part *p;
    for (int c = 0; c < 4; c++) {
        char name[16];
        snprintf(name, sizeof name, "weighted%d", c);
        p = ideal(&m, name, CMAP_MAX_PARTS, 1);
        for (uint32_t i = 0; i < CMAP_MAX_PARTS; i++)
            count[p[i].nodes[0]]++;
        free(p);
    }
    for (int i = 0; i < 5; i++) {
        double want = P * w[i] / total;
        if (fabs(count[i] - want) > 0.15 * want)
            fail_msg("node %d (weight %.1f): %u partitions, want %.0f", i, w[i], count[i], want);
    }

    /* Only ALIVE and JOINING nodes are eligible. */
    must(&m, cu_reg("joiner", CMAP_NODE_JOINING, 1.0));
    must(&m, cu_state("node-0", CMAP_NODE_SUSPECT, 0));
    must(&m, cu_state("node-1", CMAP_NODE_DEAD, 0));
    must(&m, cu_state("node-2", CMAP_NODE_DRAINING, 0));
    p = ideal(&m, "weighted", CMAP_MAX_PARTS, 2);
    uint32_t joiner = cmap_node_find(&m, "joiner")->num, jcount = 0;
    for (uint32_t i = 0; i < CMAP_MAX_PARTS; i++) {
        assert_int_equal(p[i].n, 2);
        for (uint32_t k = 0; k < 2; k++)
            assert_true(p[i].nodes[k] >= 3);
        jcount += holds(&p[i], joiner);
    }
    assert_true(jcount > 0);
    free(p);
    /* rf above the eligible count gives what there is. */
    p = ideal(&m, "weighted", 16, 5);
    for (uint32_t i = 0; i < 16; i++)
        assert_int_equal(p[i].n, 3);
    free(p);
    cmap_free(&m);
}

/* The same nodes registered in another order (so with other numbers) get the same ids. */
static void test_order_independent(void **state)
{
    struct cmap a, b;
    assert_int_equal(cmap_init(&a, 0), DV_OK);
    assert_int_equal(cmap_init(&b, 0), DV_OK);
    for (int i = 0; i < 7; i++) {
        add_node(&a, i, 1.0 + i % 3);
        add_node(&b, 6 - i, 1.0 + (6 - i) % 3);
    }
    struct place_part *pa = ideal(&a, "x", 256, 3), *pb = ideal(&b, "x", 256, 3);
    for (uint32_t p = 0; p < 256; p++) {
        assert_int_equal(pa[p].n, pb[p].n);
        for (uint32_t k = 0; k < pa[p].n; k++)
            assert_string_equal(cmap_node_get(&a, pa[p].nodes[k])->id,
                                cmap_node_get(&b, pb[p].nodes[k])->id);
    }
    /* Collections are placed independently of each other. */
    struct place_part *pc = ideal(&a, "y", 256, 3);
    uint32_t same = 0;
    for (uint32_t p = 0; p < 256; p++)
        same += pa[p].nodes[0] == pc[p].nodes[0];
    assert_true(same < 128);
    free(pa);
    free(pb);
    free(pc);
    cmap_free(&a);
    cmap_free(&b);
}

static void test_default_parts(void **state)
{
    struct cmap m;
    assert_int_equal(cmap_init(&m, 0), DV_OK);
    assert_int_equal(place_default_parts(&m), CMAP_MIN_PARTS);
    add_node(&m, 0, 1);
    assert_int_equal(place_default_parts(&m), 1);
    add_node(&m, 1, 1);
    add_node(&m, 2, 1);
    assert_int_equal(place_default_parts(&m), 3);
    must(&m, cu_state("node-2", CMAP_NODE_DEAD, 0));
    assert_int_equal(place_default_parts(&m), 2);
    for (int i = 3; i < 1100; i++)
        add_node(&m, i, 1);
    assert_int_equal(place_default_parts(&m), CMAP_MAX_PARTS);
    cmap_free(&m);
}

/* The leader's helper: the command it fills places exactly the ideal placement. */
static void test_fill_create(void **state)
{
    struct cmap m;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(cmap_init(&m, 0), DV_OK);
    struct cmap_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = CMAP_CMD_COLL_CREATE;
    cmd.req = cu_rid();
    snprintf(cmd.u.coll_create.name, sizeof cmd.u.coll_create.name, "vectors");
    cmd.u.coll_create.cfg = cu_cfg(0, 2);
    assert_int_equal(place_fill_create(&m, &cmd, err), DV_EINVAL); /* no node */
    for (int i = 0; i < 5; i++)
        add_node(&m, i, 1);
    must(&m, cu_state("node-3", CMAP_NODE_DEAD, 0));
    assert_int_equal(place_fill_create(&m, &cmd, err), DV_OK);
    assert_int_equal(cmd.u.coll_create.cfg.n_parts, 4); /* one per alive node */
    assert_int_equal(cmd.u.coll_create.n_node_ids, 4);
    assert_int_equal(place_fill_create(&m, &cmd, err), DV_EINVAL); /* filled already */
    must(&m, cmd);
    const struct cmap_coll *c = cmap_coll_find(&m, "vectors");
    struct place_part *p = ideal(&m, "vectors", 4, 2);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(c->parts[i].n, p[i].n);
        assert_memory_equal(c->parts[i].nodes, p[i].nodes, p[i].n * sizeof(uint32_t));
        assert_int_equal(c->parts[i].primary, p[i].nodes[0]);
    }
    free(p);

    /* The whole-map plan matches per-collection placement. */
    memset(&cmd, 0, sizeof cmd);
    cmd.type = CMAP_CMD_COLL_CREATE;
    cmd.req = cu_rid();
    snprintf(cmd.u.coll_create.name, sizeof cmd.u.coll_create.name, "other");
    cmd.u.coll_create.cfg = cu_cfg(32, 3);
    assert_int_equal(place_fill_create(&m, &cmd, err), DV_OK);
    must(&m, cmd);
    must(&m, cu_state("node-3", CMAP_NODE_ALIVE, 0)); /* the ideal now differs from the map */
    struct place_plan plan;
    assert_int_equal(place_ideal_map(&m, &plan), DV_OK);
    assert_int_equal(plan.n_colls, 2);
    for (uint32_t i = 0; i < plan.n_colls; i++) {
        const struct cmap_coll *cc = m.colls[i];
        struct place_part *want = ideal(&m, cc->name, cc->cfg.n_parts, cc->cfg.rf);
        assert_memory_equal(plan.colls[i], want, cc->cfg.n_parts * sizeof *want);
        free(want);
    }
    place_plan_free(&plan);

    memset(&cmd, 0, sizeof cmd);
    cmd.type = CMAP_CMD_COLL_CREATE;
    cmd.u.coll_create.cfg = cu_cfg(4, 0);
    assert_int_equal(place_fill_create(&m, &cmd, err), DV_EINVAL);
    cmd.u.coll_create.cfg = cu_cfg(2000, 1);
    assert_int_equal(place_fill_create(&m, &cmd, err), DV_EINVAL);
    cmap_free(&m);
}

/* ---- the rebalance plan -------------------------------------------------------------------- */

/* Creates collection `name` through the leader's path (placement on the current nodes). */
static void create_placed(struct cmap *m, const char *name, uint32_t P, uint32_t rf)
{
    char err[DV_ERRMSG_SIZE];
    struct cmap_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = CMAP_CMD_COLL_CREATE;
    cmd.req = cu_rid();
    snprintf(cmd.u.coll_create.name, sizeof cmd.u.coll_create.name, "%s", name);
    cmd.u.coll_create.cfg = cu_cfg(P, rf);
    assert_int_equal(place_fill_create(m, &cmd, err), DV_OK);
    must(m, cmd);
}

/* Carries out a plan's moves on the map the way the mover does (add, switching, done). */
static void apply_plan(struct cmap *m, const struct plan *pl)
{
    for (size_t i = 0; i < pl->n; i++) {
        const struct plan_move *mv = &pl->moves[i];
        const char *from = cmap_node_get(m, mv->from)->id, *to = cmap_node_get(m, mv->to)->id;
        char coll[CMAP_NAME_MAX + 1];
        snprintf(coll, sizeof coll, "%s", mv->coll->name);
        must(m, cu_move(CMAP_CMD_MOVE_ADD, coll, mv->part, from, to, CMAP_MOVE_SWITCHING));
    }
    /* the plan points into the map: collect the keys before changing it further */
    for (uint32_t i = 0; i < m->n_moves; i++) {
        struct cmap_move mv = m->moves[i];
        if (mv.state != CMAP_MOVE_SWITCHING)
            continue;
        must(m, cu_move(CMAP_CMD_MOVE_UPDATE, mv.coll, mv.part, cmap_node_get(m, mv.from)->id,
                        cmap_node_get(m, mv.to)->id, CMAP_MOVE_DONE));
    }
}

/* The map's placement equals the ideal one. */
static void assert_ideal(const struct cmap *m)
{
    struct place_plan ideal_map;
    assert_int_equal(place_ideal_map(m, &ideal_map), DV_OK);
    for (uint32_t c = 0; c < m->n_colls; c++)
        for (uint32_t p = 0; p < m->colls[c]->cfg.n_parts; p++) {
            const struct cmap_part *pt = &m->colls[c]->parts[p];
            const struct place_part *w = &ideal_map.colls[c][p];
            assert_int_equal(pt->n, w->n);
            for (uint32_t k = 0; k < w->n; k++) {
                bool found = false;
                for (uint32_t j = 0; j < pt->n; j++)
                    found = found || pt->nodes[j] == w->nodes[k];
                assert_true(found);
            }
        }
    place_plan_free(&ideal_map);
}

static void test_plan(void **state)
{
    struct cmap m;
    struct plan pl;
    nodes_map(&m, 2);
    create_placed(&m, "docs", 8, 1);
    create_placed(&m, "pairs", 12, 2);
    assert_int_equal(plan_make(&m, &pl), DV_OK);
    assert_int_equal(pl.n, 0); /* placed ideally at creation */
    assert_int_equal(pl.n_stuck, 0);
    plan_free(&pl);

    /* A third node: about a third of the replicas move to it, all of them to it. */
    add_node(&m, 2, 1.0);
    assert_int_equal(plan_make(&m, &pl), DV_OK);
    size_t to_new = 0;
    for (size_t i = 0; i < pl.n; i++)
        to_new += pl.moves[i].to == 2;
    print_message("# plan after adding a third node: %zu moves (%zu to it) of 32 replicas\n", pl.n,
                  to_new);
    assert_true(pl.n >= 10 && pl.n <= 13); /* (8 + 24) / 3 = 10.7 */
    assert_true(to_new >= pl.n - 2);
    apply_plan(&m, &pl);
    plan_free(&pl);
    assert_ideal(&m);
    assert_int_equal(plan_make(&m, &pl), DV_OK);
    assert_int_equal(pl.n, 0);
    plan_free(&pl);

    /* A node that is down keeps its share: nothing moves; when its replicas should move it
     * is reported stuck. */
    must(&m, cu_state("node-1", CMAP_NODE_DEAD, 0));
    assert_int_equal(plan_make(&m, &pl), DV_OK);
    assert_int_equal(pl.n, 0);
    plan_free(&pl);
    must(&m, cu_weight("node-0", 3.0)); /* node-0 should take some of node-1's */
    assert_int_equal(plan_make(&m, &pl), DV_OK);
    size_t down = 0;
    for (size_t i = 0; i < pl.n_stuck; i++) {
        assert_true(pl.stuck[i].why == PLAN_SOURCE_DOWN || pl.stuck[i].why == PLAN_TARGET_DOWN);
        down += pl.stuck[i].node == 1;
    }
    for (size_t i = 0; i < pl.n; i++)
        assert_true(pl.moves[i].from != 1 && pl.moves[i].to != 1);
    assert_true(down > 0);
    plan_free(&pl);
    must(&m, cu_weight("node-0", 1.0));
    must(&m, cu_state("node-1", CMAP_NODE_ALIVE, 0));

    /* Draining node-0: every replica on it moves, to the two others, nothing else moves. */
    must(&m, cu_state("node-0", CMAP_NODE_DRAINING, 0));
    struct cmap_held *held;
    size_t nheld;
    assert_int_equal(cmap_node_parts(&m, 0, &held, &nheld), DV_OK);
    free(held);
    assert_int_equal(plan_make(&m, &pl), DV_OK);
    assert_true(pl.n >= nheld); /* every replica of node-0, maybe a few more to rebalance */
    size_t from0 = 0;
    for (size_t i = 0; i < pl.n; i++) {
        from0 += pl.moves[i].from == 0;
        assert_true(pl.moves[i].to != 0);
    }
    assert_int_equal(from0, nheld);
    print_message("# drain: %zu replicas on the node, %zu moves\n", nheld, pl.n);
    /* a move under way keeps its partition out of the next plan */
    const struct plan_move *first = &pl.moves[0];
    char coll[CMAP_NAME_MAX + 1];
    snprintf(coll, sizeof coll, "%s", first->coll->name);
    uint32_t part = first->part;
    must(&m, cu_move(CMAP_CMD_MOVE_ADD, coll, part, cmap_node_get(&m, first->from)->id,
                     cmap_node_get(&m, first->to)->id, CMAP_MOVE_COPYING));
    plan_free(&pl);
    assert_int_equal(plan_make(&m, &pl), DV_OK);
    bool stuck_moving = false;
    for (size_t i = 0; i < pl.n; i++)
        assert_false(pl.moves[i].part == part && strcmp(pl.moves[i].coll->name, coll) == 0);
    for (size_t i = 0; i < pl.n_stuck; i++)
        stuck_moving = stuck_moving || (pl.stuck[i].why == PLAN_MOVING && pl.stuck[i].part == part);
    assert_true(stuck_moving);
    assert_int_equal(plan_part_moving(&m, coll, part), 1);
    plan_free(&pl);
    cmap_free(&m);

    /* A forced removal of a partition's only node: unavailable, no move. */
    nodes_map(&m, 2);
    create_placed(&m, "solo", 4, 1);
    must(&m, cu_remove("node-1", true));
    assert_int_equal(plan_make(&m, &pl), DV_OK);
    assert_int_equal(pl.n, 0);
    assert_true(pl.n_stuck > 0);
    for (size_t i = 0; i < pl.n_stuck; i++)
        assert_int_equal(pl.stuck[i].why, PLAN_UNAVAILABLE);
    assert_string_equal(plan_why_name(PLAN_UNAVAILABLE), "unavailable");
    plan_free(&pl);
    cmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_partition_golden),
        cmocka_unit_test(test_partition_uniform),
        cmocka_unit_test(test_partition_grow),
        cmocka_unit_test(test_rendezvous_golden),
        cmocka_unit_test(test_add_node),
        cmocka_unit_test(test_remove_node),
        cmocka_unit_test(test_weights),
        cmocka_unit_test(test_order_independent),
        cmocka_unit_test(test_default_parts),
        cmocka_unit_test(test_fill_create),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
