/* test_router.c - the router and the search combiner on a cluster of fake nodes in one process
 * (coord_fixture.h): fan-out with silent, slow and stale nodes, writes split over partitions,
 * get and delete by id, combining. */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "coord_fixture.h"
#include "err.h"
#include "mpk.h"
#include "place.h"

#define DIM  8
#define NPTS 200
#define COLL "c"
#define K    10
#define MAXP 16

struct env {
    struct coord_fixture *f;
    uint32_t n_parts;
    struct pid ids[NPTS];
    float vecs[NPTS * DIM];
};

static float frand(struct coord_fixture *f)
{
    return (float)(cf_rand(f) >> 40) / (float)(1u << 24);
}

/* A cluster of n nodes with collection COLL (n_parts partitions, one replica each) holding NPTS
 * points upserted through the router. */
static struct env *env_new_rf(unsigned n_nodes, uint32_t n_parts, uint32_t inflight, uint32_t rf)
{
    char err[DV_ERRMSG_SIZE] = "";
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    struct cf_opts o = {.n_nodes = n_nodes, .request_timeout_ms = 1000, .node_inflight = inflight};
    int rc = cf_open(cf_seed(), &o, &e->f, err);
    if (rc != DV_OK)
        fail_msg("cf_open: %s: %s", dv_errname(rc), err);
    e->n_parts = n_parts;
    rc = cf_create(e->f, COLL, DIM, n_parts, rf, err);
    if (rc != DV_OK)
        fail_msg("create: %s: %s", dv_errname(rc), err);
    for (uint32_t i = 0; i < NPTS; i++) {
        e->ids[i] = pid_num(1000 + i);
        for (uint32_t d = 0; d < DIM; d++)
            e->vecs[i * DIM + d] = frand(e->f);
    }
    rc = cf_upsert(e->f, COLL, e->ids, e->vecs, NPTS, DIM, err);
    if (rc != DV_OK)
        fail_msg("upsert: %s: %s", dv_errname(rc), err);
    return e;
}

static struct env *env_new(unsigned n_nodes, uint32_t n_parts, uint32_t inflight)
{
    return env_new_rf(n_nodes, n_parts, inflight, 1);
}

static void env_free(struct env *e)
{
    cf_close(e->f);
    free(e);
}

/* Partitions held by node i, as a bit set. */
static uint32_t parts_of(struct env *e, int node)
{
    uint32_t set = 0;
    for (uint32_t p = 0; p < e->n_parts; p++)
        if (cf_part_node(e->f, COLL, p) == node)
            set |= 1u << p;
    return set;
}

static int search(struct env *e, const float *q, bool partial, uint32_t timeout_ms,
                  struct msg_reply *rep, char *err)
{
    struct msg_query qu = {.vec = (float *)q, .dim = DIM, .k = K};
    struct msg req = {.type = MSG_P_SEARCH};
    req.addr.coll = (struct msg_str){COLL, 1};
    req.u.csearch_req = (struct msg_csearch_req){&qu, 1, partial, timeout_ms};
    return cf_call(e->f, &req, rep, err);
}

static double dist2(const float *a, const float *b)
{
    double s = 0;
    for (uint32_t d = 0; d < DIM; d++)
        s += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
    return s;
}

/* The brute-force top K over the points of the partitions in `parts` must equal `hits`, in
 * order. */
static void check_topk(struct env *e, const float *q, uint32_t parts, const struct msg_hits *hits)
{
    uint32_t best[K];
    double bd[K];
    uint32_t nb = 0;
    for (uint32_t i = 0; i < NPTS; i++) {
        if (!(parts & (1u << place_partition_of(&e->ids[i], e->n_parts))))
            continue;
        double d = dist2(q, e->vecs + i * DIM);
        uint32_t j = nb < K ? nb++ : K;
        if (j == K && d >= bd[K - 1])
            continue;
        if (j == K)
            j = K - 1;
        while (j > 0 && bd[j - 1] > d) {
            bd[j] = bd[j - 1];
            best[j] = best[j - 1];
            j--;
        }
        bd[j] = d;
        best[j] = i;
    }
    assert_int_equal(hits->n, nb);
    for (uint32_t j = 0; j < nb; j++)
        assert_true(pid_eq(&hits->hits[j].id, &e->ids[best[j]]));
}

static void query(struct env *e, float *q)
{
    for (uint32_t d = 0; d < DIM; d++)
        q[d] = frand(e->f);
}

/* Every node of the fan-out tests holds at least one partition. */
static struct env *fanout_env(void)
{
    struct env *e = env_new(5, 10, 2);
    for (int i = 0; i < 5; i++)
        assert_int_not_equal(parts_of(e, i), 0);
    return e;
}

/* ---- must-have A: one silent, one slow and one stale node among five ---------------------- */

static void test_search_silent_slow_stale(void **state)
{
    (void)state;
    struct env *e = fanout_env();
    struct coord_fixture *f = e->f;
    char err[DV_ERRMSG_SIZE];
    float q[DIM];
    query(e, q);
    /* node-1 silent (a hung process), node-2 slow but within the search's timeout, node-3
     * answers "stale map" once. */
    assert_int_equal(tr_fake_set_state(f->net, f->nodes[0].url, TR_FAKE_SILENT), DV_OK);
    struct tr_fake_rule slow = {.delay_ms = 40};
    assert_int_equal(tr_fake_set_rule(f->net, "coord-1", f->nodes[1].url, &slow), DV_OK);
    atomic_store(&f->nodes[2].stale_searches, 1);
    unsigned before[5];
    for (int i = 0; i < 5; i++)
        before[i] = atomic_load(&f->nodes[i].reqs[MSG_SEARCH]);

    /* allow_partial: the silent node's partitions are reported failed, the rest merged. The
     * stale answer makes the router retry the whole request once with the newest map. */
    struct msg_reply rep;
    uint64_t t0 = clock_mono_ms();
    int rc = search(e, q, true, 150, &rep, err);
    uint64_t took = clock_mono_ms() - t0;
    assert_int_equal(rc, DV_OK);
    const struct msg_csearch_rep *r = &rep.m.u.csearch_rep;
    assert_true(r->partial);
    uint32_t silent = parts_of(e, 0), failed = 0;
    for (uint32_t j = 0; j < r->n_failed; j++)
        failed |= 1u << r->failed[j];
    assert_int_equal(failed, silent);
    assert_int_equal(r->n, 1);
    check_topk(e, q, ((1u << e->n_parts) - 1) & ~silent, &r->results[0]);
    msg_reply_free(&rep);
    assert_int_equal(atomic_load(&f->nodes[2].stale_searches), 0);
    /* exactly one retry: two rounds reached every answering node */
    for (int i = 1; i < 5; i++)
        assert_int_equal(atomic_load(&f->nodes[i].reqs[MSG_SEARCH]) - before[i], 2);
    assert_int_equal(atomic_load(&f->nodes[0].reqs[MSG_SEARCH]) - before[0], 0);
    assert_true(took >= 300 && took < 900); /* two rounds waiting out the silent node */

    /* Without allow_partial the search fails, naming the node and its partitions. */
    atomic_store(&f->nodes[2].stale_searches, 1);
    rc = search(e, q, false, 150, &rep, err);
    msg_reply_free(&rep);
    assert_int_equal(rc, DV_ETIMEDOUT);
    char want[64];
    snprintf(want, sizeof want, "node %s (partition", f->nodes[0].id);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "did not answer"));
    for (uint32_t p = 0; p < e->n_parts; p++)
        if (silent & (1u << p)) {
            char num[16];
            snprintf(num, sizeof num, "%u", p);
            assert_non_null(strstr(strstr(err, "(partition"), num));
        }
    env_free(e);
}

/* A replica that did not answer is avoided by the next searches (ROUTER_SILENT_MS): a hung node
 * costs one timeout, not one per search until it is declared dead. */
static void test_search_avoids_silent(void **state)
{
    (void)state;
    struct env *e = env_new_rf(3, 6, 2, 2);
    struct coord_fixture *f = e->f;
    char err[DV_ERRMSG_SIZE];
    float q[DIM];
    query(e, q);
    assert_int_equal(tr_fake_set_state(f->net, f->nodes[0].url, TR_FAKE_SILENT), DV_OK);
    struct msg_reply rep;
    /* Searches until one meets the silent node (reads take the replicas in turn): it waits out
     * the timeout, then reads the other replica. */
    uint64_t took = 0;
    for (int i = 0; i < 8 && took < 150; i++) {
        uint64_t t0 = clock_mono_ms();
        assert_int_equal(search(e, q, false, 150, &rep, err), DV_OK);
        took = clock_mono_ms() - t0;
        check_topk(e, q, (1u << e->n_parts) - 1, &rep.m.u.csearch_rep.results[0]);
        msg_reply_free(&rep);
    }
    assert_true(took >= 150);
    /* The next ones never wait for it: under the timeout, whole, every time. */
    for (int i = 0; i < 6; i++) {
        uint64_t t0 = clock_mono_ms();
        assert_int_equal(search(e, q, false, 150, &rep, err), DV_OK);
        assert_true(clock_mono_ms() - t0 < 150);
        assert_false(rep.m.u.csearch_rep.partial);
        check_topk(e, q, (1u << e->n_parts) - 1, &rep.m.u.csearch_rep.results[0]);
        msg_reply_free(&rep);
    }
    env_free(e);
}

static void test_search_slow_node(void **state)
{
    (void)state;
    struct env *e = fanout_env();
    struct coord_fixture *f = e->f;
    char err[DV_ERRMSG_SIZE];
    float q[DIM];
    query(e, q);
    /* Within the timeout: its results are merged with everyone's. */
    struct tr_fake_rule slow = {.delay_ms = 60};
    assert_int_equal(tr_fake_set_rule(f->net, "coord-1", f->nodes[3].url, &slow), DV_OK);
    struct msg_reply rep;
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(search(e, q, false, 250, &rep, err), DV_OK);
    assert_true(clock_mono_ms() - t0 >= 60);
    assert_false(rep.m.u.csearch_rep.partial);
    check_topk(e, q, (1u << e->n_parts) - 1, &rep.m.u.csearch_rep.results[0]);
    msg_reply_free(&rep);
    /* Beyond it: the search times out naming the node. */
    slow.delay_ms = 300;
    assert_int_equal(tr_fake_set_rule(f->net, "coord-1", f->nodes[3].url, &slow), DV_OK);
    assert_int_equal(search(e, q, false, 150, &rep, err), DV_ETIMEDOUT);
    msg_reply_free(&rep);
    char want[64];
    snprintf(want, sizeof want, "node %s (partition", f->nodes[3].id);
    assert_non_null(strstr(err, want));
    env_free(e);
}

static void test_search_stale_once(void **state)
{
    (void)state;
    struct env *e = fanout_env();
    struct coord_fixture *f = e->f;
    char err[DV_ERRMSG_SIZE];
    float q[DIM];
    query(e, q);
    atomic_store(&f->nodes[4].stale_searches, 1);
    struct msg_reply rep;
    assert_int_equal(search(e, q, false, 500, &rep, err), DV_OK);
    assert_false(rep.m.u.csearch_rep.partial);
    check_topk(e, q, (1u << e->n_parts) - 1, &rep.m.u.csearch_rep.results[0]);
    msg_reply_free(&rep);
    /* the stale answer, then the retry */
    assert_int_equal(atomic_load(&f->nodes[4].reqs[MSG_SEARCH]), 2);
    assert_int_equal(atomic_load(&f->nodes[4].stale_searches), 0);
    env_free(e);
}

/* ---- the default search ef ------------------------------------------------------------- */

/* Searches without an ef get the collection's from the map, and a coll_set changes it for the
 * searches after it (REST's PATCH hnsw_config.ef); an ef given stays. */
static void test_default_ef(void **state)
{
    (void)state;
    struct env *e = env_new(2, 2, 2);
    struct coord_fixture *f = e->f;
    char err[DV_ERRMSG_SIZE];
    float q[DIM];
    query(e, q);
    struct msg_reply rep;
    assert_int_equal(search(e, q, false, 500, &rep, err), DV_OK);
    check_topk(e, q, (1u << e->n_parts) - 1, &rep.m.u.csearch_rep.results[0]);
    msg_reply_free(&rep);
    int n = cf_part_node(f, COLL, 0);
    assert_int_equal(atomic_load(&f->nodes[n].search_ef), 64); /* the create's default */

    struct buf a = BUF_INIT;
    mpw_map(&a, 2);
    mpw_str(&a, "collection", 10);
    mpw_str(&a, COLL, strlen(COLL));
    mpw_str(&a, "ef_search", 9);
    mpw_u64(&a, 300);
    int rc = cf_admin(f, "coll_set", a.data, a.len, &rep, err);
    if (rc != DV_OK)
        fail_msg("coll_set: %s: %s", dv_errname(rc), err);
    msg_reply_free(&rep);
    assert_int_equal(search(e, q, false, 500, &rep, err), DV_OK);
    check_topk(e, q, (1u << e->n_parts) - 1, &rep.m.u.csearch_rep.results[0]);
    msg_reply_free(&rep);
    assert_int_equal(atomic_load(&f->nodes[n].search_ef), 300);

    struct msg_query qu = {.vec = q, .dim = DIM, .k = K, .ef = 20};
    struct msg req = {.type = MSG_P_SEARCH};
    req.addr.coll = (struct msg_str){COLL, 1};
    req.u.csearch_req = (struct msg_csearch_req){&qu, 1, false, 500};
    assert_int_equal(cf_call(f, &req, &rep, err), DV_OK);
    msg_reply_free(&rep);
    assert_int_equal(atomic_load(&f->nodes[n].search_ef), 20);

    /* out of range: refused, the map unchanged */
    a.len = 0;
    mpw_map(&a, 2);
    mpw_str(&a, "collection", 10);
    mpw_str(&a, COLL, strlen(COLL));
    mpw_str(&a, "ef_search", 9);
    mpw_u64(&a, PROTO_MAX_CFG_EF + 1);
    assert_int_equal(cf_admin(f, "coll_set", a.data, a.len, &rep, err), DV_EINVAL);
    msg_reply_free(&rep);
    buf_free(&a);
    assert_int_equal(search(e, q, false, 500, &rep, err), DV_OK);
    msg_reply_free(&rep);
    assert_int_equal(atomic_load(&f->nodes[n].search_ef), 300);
    env_free(e);
}

/* ---- writes ---------------------------------------------------------------------------- */

static void test_upsert_split(void **state)
{
    (void)state;
    struct env *e = env_new(4, 8, 2);
    struct coord_fixture *f = e->f;
    /* Each partition's replica holds exactly the points that hash to it; each node got one
     * upsert per partition it holds. */
    uint32_t per[MAXP] = {0};
    for (uint32_t i = 0; i < NPTS; i++)
        per[place_partition_of(&e->ids[i], e->n_parts)]++;
    for (uint32_t p = 0; p < e->n_parts; p++) {
        int n = cf_part_node(f, COLL, p);
        assert_true(n >= 0);
        uint64_t cnt = 0;
        assert_int_equal(cf_replica_count(&f->nodes[n], COLL, p, &cnt), DV_OK);
        assert_int_equal(cnt, per[p]);
        for (int o = 0; o < 4; o++)
            if (o != n)
                assert_int_equal(cf_replica_count(&f->nodes[o], COLL, p, &cnt), DV_ESTALE);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&f->nodes[i].reqs[MSG_UPSERT]),
                         __builtin_popcount(parts_of(e, i)));

    /* A refused node (a dead process): the write fails naming a partition of it and the node;
     * the other partitions were written. */
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(tr_fake_set_state(f->net, f->nodes[2].url, TR_FAKE_REFUSED), DV_OK);
    struct pid ids[40];
    float vecs[40 * DIM];
    for (uint32_t i = 0; i < 40; i++) {
        ids[i] = pid_num(5000 + i);
        for (uint32_t d = 0; d < DIM; d++)
            vecs[i * DIM + d] = frand(f);
    }
    assert_int_equal(cf_upsert(f, COLL, ids, vecs, 40, DIM, err), DV_EIO);
    uint32_t dead = parts_of(e, 2);
    bool named = false;
    for (uint32_t p = 0; p < e->n_parts; p++) {
        char want[64];
        snprintf(want, sizeof want, "partition %u on node %s", p, f->nodes[2].id);
        if ((dead & (1u << p)) && strstr(err, want))
            named = true;
    }
    assert_true(named);
    for (uint32_t i = 0; i < 40; i++) {
        uint32_t p = place_partition_of(&ids[i], e->n_parts);
        int n = cf_part_node(f, COLL, p);
        bool has = false;
        if (n == 2)
            continue;
        assert_int_equal(cf_replica_has(&f->nodes[n], COLL, p, &ids[i], NULL, DIM, &has), DV_OK);
        assert_true(has);
    }
    env_free(e);
}

static void test_get_delete(void **state)
{
    (void)state;
    struct env *e = env_new(3, 6, 2);
    struct coord_fixture *f = e->f;
    char err[DV_ERRMSG_SIZE];
    struct pid ids[12];
    uint32_t idx[12];
    for (uint32_t i = 0; i < 12; i++) {
        idx[i] = (uint32_t)(cf_rand(f) % NPTS);
        for (uint32_t j = 0; j < i; j++)
            if (idx[j] == idx[i]) {
                idx[i] = (idx[i] + 1) % NPTS;
                j = (uint32_t)-1;
            }
        ids[i] = e->ids[idx[i]];
    }
    struct msg req = {.type = MSG_P_GET};
    req.addr.coll = (struct msg_str){COLL, 1};
    req.u.get_req = (struct msg_get_req){ids, 12, true, false};
    struct msg_reply rep;
    assert_int_equal(cf_call(f, &req, &rep, err), DV_OK);
    assert_int_equal(rep.m.u.get_rep.n, 12);
    for (uint32_t h = 0; h < 12; h++) {
        const struct msg_hit *x = &rep.m.u.get_rep.hits[h];
        uint32_t i = 0;
        while (i < 12 && !pid_eq(&ids[i], &x->id))
            i++;
        assert_true(i < 12);
        assert_int_equal(x->dim, DIM);
        assert_memory_equal(x->vec, e->vecs + idx[i] * DIM, DIM * sizeof(float));
    }
    msg_reply_free(&rep);

    /* Delete the first 5 (one unknown id too): 5 deleted; a get finds the other 7. */
    struct pid del[6];
    memcpy(del, ids, 5 * sizeof *del);
    del[5] = pid_num(999999);
    req = (struct msg){.type = MSG_P_DELETE};
    req.addr.coll = (struct msg_str){COLL, 1};
    req.u.delete_req = (struct msg_ids_req){del, 6};
    assert_int_equal(cf_call(f, &req, &rep, err), DV_OK);
    assert_int_equal(rep.m.u.write_rep.affected, 5);
    msg_reply_free(&rep);
    req = (struct msg){.type = MSG_P_GET};
    req.addr.coll = (struct msg_str){COLL, 1};
    req.u.get_req = (struct msg_get_req){ids, 12, false, false};
    assert_int_equal(cf_call(f, &req, &rep, err), DV_OK);
    assert_int_equal(rep.m.u.get_rep.n, 7);
    for (uint32_t h = 0; h < 7; h++)
        for (uint32_t i = 0; i < 5; i++)
            assert_false(pid_eq(&rep.m.u.get_rep.hits[h].id, &ids[i]));
    msg_reply_free(&rep);
    req = (struct msg){.type = MSG_P_COUNT};
    req.addr.coll = (struct msg_str){COLL, 1};
    assert_int_equal(cf_call(f, &req, &rep, err), DV_OK);
    assert_int_equal(rep.m.u.count_rep.count, NPTS - 5);
    msg_reply_free(&rep);
    env_free(e);
}

/* ---- combining ---------------------------------------------------------------------------- */

#define THREADS 12
#define ROUNDS  4

struct searcher {
    struct env *e;
    float q[ROUNDS][DIM];
    struct msg_reply rep[ROUNDS];
    int rc[ROUNDS];
};

static void *search_thread(void *arg)
{
    struct searcher *s = arg;
    char err[DV_ERRMSG_SIZE];
    for (int r = 0; r < ROUNDS; r++)
        s->rc[r] = search(s->e, s->q[r], false, 2000, &s->rep[r], err);
    return NULL;
}

static void test_combine_concurrent(void **state)
{
    (void)state;
    /* One partition on one node, reached slowly: concurrent searches queue behind the two
     * requests in flight and travel together. */
    struct env *e = env_new(2, 1, 2);
    struct coord_fixture *f = e->f;
    int n = cf_part_node(f, COLL, 0);
    assert_true(n >= 0);
    struct tr_fake_rule slow = {.delay_ms = 20};
    assert_int_equal(tr_fake_set_rule(f->net, "coord-1", f->nodes[n].url, &slow), DV_OK);
    struct tr_fake_counts k0, k1;
    tr_fake_counts(f->net, "coord-1", f->nodes[n].url, &k0);
    unsigned s0 = atomic_load(&f->nodes[n].reqs[MSG_SEARCH]);
    static struct searcher s[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        s[t].e = e;
        for (int r = 0; r < ROUNDS; r++)
            query(e, s[t].q[r]);
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, search_thread, &s[t]), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    tr_fake_counts(f->net, "coord-1", f->nodes[n].url, &k1);
    unsigned node_searches = atomic_load(&f->nodes[n].reqs[MSG_SEARCH]) - s0;
    for (int t = 0; t < THREADS; t++)
        for (int r = 0; r < ROUNDS; r++) {
            assert_int_equal(s[t].rc[r], DV_OK);
            check_topk(e, s[t].q[r], 1, &s[t].rep[r].m.u.csearch_rep.results[0]);
            msg_reply_free(&s[t].rep[r]);
        }
    print_message("# %d searches, %u node requests\n", THREADS * ROUNDS, node_searches);
    assert_true(node_searches < THREADS * ROUNDS);
    assert_true(k1.sent - k0.sent < THREADS * ROUNDS);
    assert_true(k1.sent - k0.sent >= node_searches);
    env_free(e);
}

int main(void)
{
    cf_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_silent_slow_stale),
        cmocka_unit_test(test_search_avoids_silent),
        cmocka_unit_test(test_search_slow_node),
        cmocka_unit_test(test_search_stale_once),
        cmocka_unit_test(test_default_ef),
        cmocka_unit_test(test_upsert_split),
        cmocka_unit_test(test_get_delete),
        cmocka_unit_test(test_combine_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
