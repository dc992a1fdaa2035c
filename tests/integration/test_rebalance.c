/* test_rebalance.c - rebalancing on real processes: 3 dvec-coord and up to 3 dvec-shard on
 * 127.0.0.1. A collection of 50,000 points on 2 nodes under continuous writes and searches
 * from client threads; a third node joins and partitions flow to it; a node is drained and
 * removed; every acknowledged write is there afterwards (counted exactly, payload versions
 * checked), no search failed or lost recall, and the placement ends ideal. Then kill -9 of
 * the source, the target and the Raft leader in the middle of a move.
 * argv[1] is dvec-coord, argv[2] dvec-shard. DVEC_ITEST_ONLY selects cases. */
#include "cluster_util.h"

#define NPARTS    6      /* partitions of COLL: 3 + 3 on two nodes, 2 + 2 + 2 on three */
#define FAR_FIRST 100000 /* ids the writer adds: far from every query, so recall is unchanged */
#define WBATCH    50

/* ---- admin calls ---------------------------------------------------------------------------- */

/* Runs admin op with args (JSON text or NULL); *out (may be NULL) gets the answer. */
static int admin(struct rpc *r, const char *op, const char *args, json_t **out, char *err)
{
    struct buf a = BUF_INIT;
    struct msg m = creq(MSG_ADMIN, NULL);
    m.u.admin_req.op = (struct msg_str){op, (uint32_t)strlen(op)};
    if (args) {
        assert_int_equal(jsonmp_from_text(args, strlen(args), &a, err), DV_OK);
        m.u.admin_req.args = (struct msg_bytes){a.data, (uint32_t)a.len};
    }
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    if (rc == DV_OK && out)
        assert_int_equal(
            jsonmp_to_json(rep.m.u.cluster_rep.status.p, rep.m.u.cluster_rep.status.len, out, err),
            DV_OK);
    msg_reply_free(&rep);
    buf_free(&a);
    return rc;
}

static json_t *admin_ok(struct rpc *r, const char *op, const char *args)
{
    char err[DV_ERRMSG_SIZE];
    json_t *out = NULL;
    int rc = admin(r, op, args, &out, err);
    if (rc != DV_OK)
        print_error("%s %s: %s: %s\n", op, args ? args : "", dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    return out;
}

/* Replicas the map places on node `id` (cluster status), -1 when it is not listed. */
static int held_on(const json_t *st, const char *id)
{
    json_t *n;
    size_t i;
    json_array_foreach(json_object_get(st, "nodes"), i,
                       n) if (strcmp(jstr(n, "id"), id) == 0) return (int)jint(n, "partitions");
    return -1;
}

/* Waits (3 s at most: a follower learns of a commit with the leader's next heartbeat) until
 * coordinator 1 places a, b, c replicas on the three nodes; fails otherwise. */
static void expect_held(int a, int b, int c)
{
    char err[DV_ERRMSG_SIZE];
    int got[3] = {-2, -2, -2};
    uint64_t end = clock_mono_ms() + 3000;
    for (;;) {
        json_t *st = status_of(C.cli[0], err);
        for (int k = 0; k < 3; k++)
            got[k] = st ? held_on(st, node_ids[k]) : -2;
        json_decref(st);
        if ((got[0] == a && got[1] == b && got[2] == c) || clock_mono_ms() > end)
            break;
        clock_sleep_ms(20);
    }
    if (got[0] != a || got[1] != b || got[2] != c)
        fail_msg("replicas per node %d %d %d, want %d %d %d", got[0], got[1], got[2], a, b, c);
}

/* Moves not finished (planned .. switching) in a rebalance status. */
static uint64_t active_moves(const json_t *rs)
{
    const json_t *c = json_object_get(rs, "counts");
    return jint(c, "planned") + jint(c, "copying") + jint(c, "catching_up") + jint(c, "switching");
}

/* A client to whichever coordinator leads now (the admin ops are forwarded anyway). */
static struct rpc *any_cli(void)
{
    for (int i = 0; i < NCO; i++)
        if (C.co[i].p && C.co[i].p->pid > 0)
            return C.cli[i];
    return C.cli[0];
}

/*
 * Waits until no move is under way, the plan is empty and every done move dropped its old
 * replica. Prints the moves as they go. Fails after timeout_ms.
 */
static void wait_settled(uint64_t timeout_ms, const char *what)
{
    uint64_t t0 = clock_mono_ms(), end = t0 + timeout_ms, last_print = 0;
    char err[DV_ERRMSG_SIZE];
    for (;;) {
        json_t *rs = NULL, *pl = NULL;
        int rc = admin(any_cli(), "rebalance_status", NULL, &rs, err);
        if (rc == DV_OK)
            rc = admin(any_cli(), "rebalance_plan", NULL, &pl, err);
        bool settled = false;
        if (rc == DV_OK) {
            bool dropped = true;
            json_t *mv;
            size_t i;
            json_array_foreach(json_object_get(rs, "moves"), i,
                               mv) if (strcmp(jstr(mv, "state"), "done") == 0 &&
                                       !json_is_true(json_object_get(mv, "old_replica_dropped")))
                dropped = false;
            settled = active_moves(rs) == 0 && json_array_size(json_object_get(pl, "moves")) == 0 &&
                      dropped;
            if (clock_mono_ms() - last_print > 2000 || settled) {
                last_print = clock_mono_ms();
                printf("# %s: %.1f s: %" PRIu64 " moves under way, %" PRIu64 " done, %" PRIu64
                       " failed, plan %zu\n",
                       what, (double)(clock_mono_ms() - t0) / 1000, active_moves(rs),
                       jint(json_object_get(rs, "counts"), "done"),
                       jint(json_object_get(rs, "counts"), "failed"),
                       json_array_size(json_object_get(pl, "moves")));
            }
        }
        json_decref(rs);
        json_decref(pl);
        if (settled)
            return;
        if (clock_mono_ms() > end) {
            print_logs();
            fail_msg("%s: moves did not settle in %" PRIu64 " ms (last: %s)", what, timeout_ms,
                     rc == DV_OK ? "still moving" : err);
        }
        clock_sleep_ms(200);
    }
}

/* Prints the done moves of the last rebalance status (time, writes paused). */
static void print_moves(void)
{
    json_t *rs = admin_ok(any_cli(), "rebalance_status", NULL);
    json_t *mv;
    size_t i;
    json_array_foreach(json_object_get(rs, "moves"), i, mv)
    {
        printf("#   %s/%" PRIu64 " %s -> %s: %s in %" PRIu64 " ms, writes paused %" PRIu64
               " ms %s\n",
               jstr(mv, "collection"), jint(mv, "partition"), jstr(mv, "from"), jstr(mv, "to"),
               jstr(mv, "state"), jint(mv, "elapsed_ms"), jint(mv, "writes_paused_ms"),
               jstr(mv, "error"));
    }
    json_decref(rs);
}

/* ---- traffic: a writer and searchers on their own threads -------------------------------------
 */

/* No cmocka calls on these threads: they count, the case asserts after joining them. */
static struct {
    pthread_t writer, searcher[2];
    atomic_bool stop;
    bool running;
    int phase; /* 0 before, 1 during, 2 after: set by the case */
    /* writer: last acknowledged payload version of ids [0, NPTS), far ids added */
    uint32_t *ver;
    uint8_t *far; /* [ID_SPACE]: 1 acknowledged, 2 unknown (the write failed) */
    uint64_t next_far;
    atomic_uint w_ok, w_failed;
    char w_err[DV_ERRMSG_SIZE];
    /* searchers: per phase, queries run, failed, hits among the oracle's */
    atomic_uint s_queries[3], s_failed[3], s_good[3];
    char s_err[DV_ERRMSG_SIZE];
    uint64_t (*want)[K];
} T;

/* The vector of a far id: its normal vector shifted by 100 in every dimension. */
static void far_vec(uint64_t id, float *v)
{
    pu_vec(id, 0, DIM, v);
    for (int d = 0; d < DIM; d++)
        v[d] += 100.0f;
}

/* Upserts ids (far ones with far vectors) with payload version `ver`. */
static int upsert_ver(struct rpc *r, const uint64_t *ids, uint32_t n, uint32_t ver, char *err)
{
    struct pid pids[WBATCH];
    float vecs[WBATCH * DIM];
    struct msg_bytes pl[WBATCH];
    struct buf all = BUF_INIT, one = BUF_INIT;
    size_t off[WBATCH];
    for (uint32_t i = 0; i < n; i++) {
        pids[i] = pid_num(ids[i]);
        if (ids[i] >= FAR_FIRST)
            far_vec(ids[i], vecs + (size_t)i * DIM);
        else
            pu_vec(ids[i], 0, DIM, vecs + (size_t)i * DIM);
        pu_payload(ids[i], ver, &one);
        off[i] = all.len;
        if (buf_append(&all, one.data, one.len) != DV_OK)
            return DV_ENOMEM;
        pl[i].len = (uint32_t)one.len;
    }
    for (uint32_t i = 0; i < n; i++)
        pl[i].p = all.data + off[i];
    struct msg m = creq(MSG_P_UPSERT, COLL);
    m.u.upsert_req = (struct msg_upsert_req){pids, vecs, pl, n, DIM, NULL};
    struct msg_reply rep;
    err[0] = '\0';
    int rc = rpc_call(r, &m, &rep, err);
    msg_reply_free(&rep);
    buf_free(&all);
    buf_free(&one);
    return rc;
}

static void *writer_main(void *arg)
{
    struct rpc *r = arg;
    uint64_t s = 12345;
    for (uint32_t round = 1; !atomic_load(&T.stop); round++) {
        uint64_t ids[WBATCH];
        char err[DV_ERRMSG_SIZE];
        /* new far points */
        for (uint32_t i = 0; i < WBATCH; i++)
            ids[i] = T.next_far + i;
        T.next_far += WBATCH;
        int rc = upsert_ver(r, ids, WBATCH, 0, err);
        for (uint32_t i = 0; i < WBATCH; i++)
            T.far[ids[i]] = rc == DV_OK ? 1 : 2;
        /* new payload versions of loaded points */
        for (uint32_t i = 0; i < WBATCH; i++)
            ids[i] = pu_rng(&s) % NPTS;
        int rc2 = upsert_ver(r, ids, WBATCH, round, err);
        if (rc2 == DV_OK)
            for (uint32_t i = 0; i < WBATCH; i++)
                T.ver[ids[i]] = round;
        else
            for (uint32_t i = 0; i < WBATCH; i++)
                T.ver[ids[i]] = UINT32_MAX; /* unknown now */
        if (rc == DV_OK && rc2 == DV_OK) {
            atomic_fetch_add(&T.w_ok, 2);
        } else {
            atomic_fetch_add(&T.w_failed, (rc != DV_OK) + (rc2 != DV_OK));
            snprintf(T.w_err, sizeof T.w_err, "%s", err);
        }
        clock_sleep_ms(5);
    }
    return NULL;
}

static void *searcher_main(void *arg)
{
    struct rpc *r = arg;
    for (uint32_t first = 0; !atomic_load(&T.stop); first = (first + 10) % NQ) {
        int ph = __atomic_load_n(&T.phase, __ATOMIC_RELAXED);
        struct msg_reply rep;
        char err[DV_ERRMSG_SIZE];
        int rc = search(r, first, 10, false, NULL, &rep, err);
        if (rc != DV_OK || rep.m.u.csearch_rep.n != 10) {
            atomic_fetch_add(&T.s_failed[ph], 1);
            snprintf(T.s_err, sizeof T.s_err, "%s: %.200s", dv_errname(rc), err);
            msg_reply_free(&rep);
            continue;
        }
        uint32_t good = 0;
        for (uint32_t i = 0; i < 10; i++)
            good += (uint32_t)overlap(T.want[first + i], K, &rep.m.u.csearch_rep.results[i]);
        atomic_fetch_add(&T.s_good[ph], good);
        atomic_fetch_add(&T.s_queries[ph], 10);
        msg_reply_free(&rep);
    }
    return NULL;
}

static void traffic_start(void)
{
    if (T.want == NULL) {
        T.want = calloc(NQ, sizeof *T.want);
        T.ver = calloc(NPTS, sizeof *T.ver);
        T.far = calloc(ID_SPACE, 1);
        assert_true(T.want && T.ver && T.far);
        T.next_far = FAR_FIRST;
        for (uint32_t q = 0; q < NQ; q++)
            assert_int_equal(oracle(q, NULL, 0, T.want[q]), K);
    }
    atomic_store(&T.stop, false);
    for (int p = 0; p < 3; p++) {
        atomic_store(&T.s_queries[p], 0);
        atomic_store(&T.s_failed[p], 0);
        atomic_store(&T.s_good[p], 0);
    }
    atomic_store(&T.w_ok, 0);
    atomic_store(&T.w_failed, 0);
    assert_int_equal(pthread_create(&T.writer, NULL, writer_main, C.cli[1]), 0);
    assert_int_equal(pthread_create(&T.searcher[0], NULL, searcher_main, C.cli[2]), 0);
    assert_int_equal(pthread_create(&T.searcher[1], NULL, searcher_main, C.cli[0]), 0);
    T.running = true;
}

static void traffic_stop(void)
{
    if (!T.running)
        return;
    atomic_store(&T.stop, true);
    pthread_join(T.writer, NULL);
    pthread_join(T.searcher[0], NULL);
    pthread_join(T.searcher[1], NULL);
    T.running = false;
}

static double phase_recall(int p)
{
    unsigned q = atomic_load(&T.s_queries[p]);
    return q ? (double)atomic_load(&T.s_good[p]) / ((double)q * K) : 0;
}

/*
 * Every acknowledged write is there: the loaded points with their vectors and the last
 * acknowledged payload version, the far points acknowledged; the count is exact (far writes
 * that failed may or may not have been applied: each is looked up and counted).
 */
static void check_writes(struct rpc *r)
{
    uint64_t want = NPTS, unknown_present = 0;
    size_t bad_ver = 0, missing = 0;
    struct pid *ids = calloc(5000, sizeof *ids);
    assert_non_null(ids);
    /* loaded points: vectors and payload versions */
    for (uint64_t at = 0; at < NPTS; at += 5000) {
        for (uint32_t i = 0; i < 5000; i++)
            ids[i] = pid_num(at + i);
        struct msg m = creq(MSG_P_GET, COLL);
        m.u.get_req = (struct msg_get_req){ids, 5000, true, true};
        struct msg_reply rep;
        call_ok(r, &m, &rep);
        const struct msg_hits *h = &rep.m.u.get_rep;
        missing += 5000 - h->n;
        for (uint32_t j = 0; j < h->n; j++) {
            uint64_t id = h->hits[j].id.lo;
            float v[DIM];
            pu_vec(id, 0, DIM, v);
            assert_true(h->hits[j].vec && memcmp(h->hits[j].vec, v, sizeof v) == 0);
            uint32_t got = pu_ver_of(h->hits[j].payload.p, h->hits[j].payload.len);
            if (T.ver && T.ver[id] != UINT32_MAX && got != T.ver[id])
                bad_ver++;
        }
        msg_reply_free(&rep);
    }
    /* far points */
    uint64_t acked_far = 0;
    for (uint64_t id = FAR_FIRST; T.far && id < T.next_far; id += 5000) {
        uint32_t n = (uint32_t)(T.next_far - id < 5000 ? T.next_far - id : 5000);
        for (uint32_t i = 0; i < n; i++)
            ids[i] = pid_num(id + i);
        struct msg m = creq(MSG_P_GET, COLL);
        m.u.get_req = (struct msg_get_req){ids, n, false, false};
        struct msg_reply rep;
        call_ok(r, &m, &rep);
        const struct msg_hits *h = &rep.m.u.get_rep;
        uint32_t j = 0;
        for (uint32_t i = 0; i < n; i++) {
            bool there = j < h->n && h->hits[j].id.lo == id + i;
            j += there;
            if (T.far[id + i] == 1) {
                acked_far++;
                missing += !there;
            } else if (T.far[id + i] == 2) {
                unknown_present += there;
            }
        }
        msg_reply_free(&rep);
    }
    free(ids);
    want += acked_far + unknown_present;
    uint64_t n = count_ok(r, COLL, NULL);
    printf("# writes checked: %" PRIu64 " points (%" PRIu64 " acknowledged far points, %" PRIu64
           " of unknown fate present), %zu missing, %zu stale payload versions\n",
           n, acked_far, unknown_present, missing, bad_ver);
    assert_int_equal(missing, 0);
    assert_int_equal(bad_ver, 0);
    assert_int_equal(n, want);
}

/* ---- the cluster of this test: nodes a and b first, c later -----------------------------------
 */

static void start_two_nodes(void)
{
    static const char *extra[] = {"--moves.grace",      "1s", "--nodes.suspect_after", "1s",
                                  "--nodes.dead_after", "4s"};
    C.n_co_extra = 6;
    memcpy(C.co_extra, extra, sizeof extra);
    cluster_spawn(2);
    uint64_t end = clock_mono_ms() + 10000;
    for (;;) {
        char err[DV_ERRMSG_SIZE];
        json_t *st = status_of(C.cli[0], err);
        int alive = st ? nodes_in_state(st, "alive") : 0;
        json_decref(st);
        if (alive == 2)
            break;
        assert_true(clock_mono_ms() < end);
        clock_sleep_ms(20);
    }
    C.up = true;
}

static void load_parts(void)
{
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(coll_create(C.cli[0], COLL, DIM, NPARTS, err), DV_OK);
    uint64_t *ids = malloc(BATCH * sizeof *ids);
    assert_non_null(ids);
    for (uint64_t at = 0; at < NPTS; at += BATCH) {
        for (uint32_t i = 0; i < BATCH; i++)
            ids[i] = at + i;
        upsert_ok(C.cli[1], ids, BATCH);
    }
    free(ids);
    C.loaded = true;
}

static void need_rb_cluster(void)
{
    case_ok = false;
    if (C.up && C.loaded)
        return;
    traffic_stop();
    cluster_destroy();
    free(T.want);
    free(T.ver);
    free(T.far);
    memset(&T, 0, sizeof T);
    start_two_nodes();
    load_parts();
}

static int rb_teardown(void **state)
{
    traffic_stop();
    if (!case_ok) {
        print_logs();
        cluster_destroy();
    }
    return 0;
}

/* ---- 1. scale out, then in ----------------------------------------------------------------------
 */

static void test_scale_out_in(void **state)
{
    (void)state;
    need_rb_cluster();
    char err[DV_ERRMSG_SIZE];
    expect_held(3, 3, -1);

    traffic_start();
    clock_sleep_ms(2000);
    __atomic_store_n(&T.phase, 1, __ATOMIC_RELAXED);

    /* A third node joins: automatic rebalancing moves a partition from each to it. */
    uint64_t t0 = clock_mono_ms();
    node_start(2);
    wait_settled(120000, "scale out");
    printf("# third node: rebalanced in %.1f s\n", (double)(clock_mono_ms() - t0) / 1000);
    print_moves();
    expect_held(2, 2, 2);

    /* Drain node a: its partitions go to b and c. */
    t0 = clock_mono_ms();
    json_t *d = admin_ok(C.cli[2], "node_drain", "{\"id\": \"cnode-a\"}");
    assert_int_equal(jint(d, "replicas"), 2);
    json_decref(d);
    wait_settled(120000, "drain");
    printf("# drain: done in %.1f s\n", (double)(clock_mono_ms() - t0) / 1000);
    print_moves();
    __atomic_store_n(&T.phase, 2, __ATOMIC_RELAXED);
    clock_sleep_ms(2000);
    traffic_stop();

    expect_held(0, 3, 3);
    /* The final placement is the ideal one: nothing left to plan, nothing stuck. */
    json_t *pl = admin_ok(C.cli[1], "rebalance_plan", NULL);
    assert_int_equal(json_array_size(json_object_get(pl, "moves")), 0);
    assert_int_equal(json_array_size(json_object_get(pl, "stuck")), 0);
    json_decref(pl);

    for (int p = 0; p < 3; p++)
        printf("# %s: %u queries, %u failed, recall@%d %.4f\n",
               p == 0   ? "searches before"
               : p == 1 ? "searches during the moves"
                        : "searches after",
               atomic_load(&T.s_queries[p]), atomic_load(&T.s_failed[p]), K, phase_recall(p));
    printf("# writes: %u acknowledged batches, %u failed (%s)\n", atomic_load(&T.w_ok),
           atomic_load(&T.w_failed), T.w_err);
    if (atomic_load(&T.s_failed[1]))
        printf("# last search error: %s\n", T.s_err);
    for (int p = 0; p < 3; p++) {
        assert_int_equal(atomic_load(&T.s_failed[p]), 0);
        assert_true(atomic_load(&T.s_queries[p]) > 0);
    }
    assert_true(phase_recall(1) >= phase_recall(0) - 0.01);
    assert_true(phase_recall(2) >= phase_recall(0) - 0.01);
    assert_int_equal(atomic_load(&T.w_failed), 0);
    assert_true(atomic_load(&T.w_ok) > 0);
    check_writes(C.cli[0]);

    /* The drained node holds nothing: it can be removed; the old replicas are gone from it. */
    json_t *rm = admin_ok(C.cli[0], "node_remove", "{\"id\": \"cnode-a\"}");
    assert_int_equal(json_array_size(json_object_get(rm, "unavailable")), 0);
    json_decref(rm);
    /* a node holding replicas cannot be removed, and the error says what to do */
    assert_int_equal(admin(C.cli[0], "node_remove", "{\"id\": \"cnode-b\"}", NULL, err), DV_EBUSY);
    printf("# %s\n", err);
    assert_non_null(strstr(err, "drain it first"));
    assert_int_equal(admin(C.cli[0], "node_drain", "{\"id\": \"nope\"}", NULL, err), DV_ENOTFOUND);
    assert_int_equal(admin(C.cli[0], "rebalance_nope", NULL, NULL, err), DV_EINVAL);
    assert_non_null(strstr(err, "unknown admin op"));
    case_ok = true;
}

/* ---- 2-4. faults in the middle of a move ----------------------------------------------------- */

/* Starts a slow rebalance: node a (removed or drained) comes back or gets a higher weight;
 * returns once a move is copying, with its source and target (indexes into node_ids). */
static void slow_move(int *src, int *dst)
{
    json_decref(admin_ok(any_cli(), "rebalance_set", "{\"rate\": 400000}"));
    char err[DV_ERRMSG_SIZE];
    /* cnode-a back (it was removed by the first case, or never drained here) */
    if (C.nd[0]->pid == 0 || sp_reap(C.nd[0]))
        node_start(0);
    json_t *st = status_of(any_cli(), err);
    bool known = false;
    json_t *n;
    size_t i;
    json_array_foreach(json_object_get(st, "nodes"), i,
                       n) if (strcmp(jstr(n, "id"), "cnode-a") == 0 &&
                              strcmp(jstr(n, "state"), "removed") != 0) known = true;
    json_decref(st);
    if (!known) {
        char args[256];
        snprintf(args, sizeof args, "{\"id\": \"cnode-a\", \"url\": \"%s\"}", C.nd[0]->url);
        admin(any_cli(), "node_add", args, NULL, err);
    }
    admin(any_cli(), "node_undrain", "{\"id\": \"cnode-a\"}", NULL, err);
    uint64_t end = clock_mono_ms() + 60000;
    while (clock_mono_ms() < end) {
        json_t *rs = NULL;
        if (admin(any_cli(), "rebalance_status", NULL, &rs, err) == DV_OK) {
            json_t *mv;
            json_array_foreach(json_object_get(rs, "moves"), i, mv)
            {
                if (strcmp(jstr(mv, "state"), "copying") != 0 || jint(mv, "bytes_done") == 0)
                    continue;
                for (int k = 0; k < NND; k++) {
                    if (strcmp(jstr(mv, "from"), node_ids[k]) == 0)
                        *src = k;
                    if (strcmp(jstr(mv, "to"), node_ids[k]) == 0)
                        *dst = k;
                }
                printf("# move of %s/%" PRIu64 " from %s to %s copying: %" PRIu64 " of %" PRIu64
                       " bytes\n",
                       jstr(mv, "collection"), jint(mv, "partition"), jstr(mv, "from"),
                       jstr(mv, "to"), jint(mv, "bytes_done"), jint(mv, "bytes_total"));
                json_decref(rs);
                return;
            }
        }
        json_decref(rs);
        clock_sleep_ms(50);
    }
    print_logs();
    fail_msg("no move started copying");
}

/* After a fault: rate back to unlimited, plan again until the placement is ideal, and check
 * every acknowledged write. */
static void recover_and_check(const char *what)
{
    traffic_stop();
    uint64_t end = clock_mono_ms() + 30000;
    char err[DV_ERRMSG_SIZE];
    while (admin(any_cli(), "rebalance_set", "{\"rate\": 0}", NULL, err) != DV_OK &&
           clock_mono_ms() < end)
        clock_sleep_ms(100);
    /* The moves under way end (done, or failed) without help. */
    end = clock_mono_ms() + 60000;
    for (;;) {
        json_t *rs = NULL;
        bool idle =
            admin(any_cli(), "rebalance_status", NULL, &rs, err) == DV_OK && active_moves(rs) == 0;
        json_decref(rs);
        if (idle)
            break;
        if (clock_mono_ms() > end) {
            print_logs();
            fail_msg("%s: moves still under way after 60 s", what);
        }
        clock_sleep_ms(200);
    }
    printf("# %s: the moves ended:\n", what);
    print_moves();
    /* A failed move is planned again (automatic rebalancing waits a while after a failure;
     * apply now). */
    for (int i = 0; i < 3; i++) {
        json_t *ap = NULL;
        if (admin(any_cli(), "rebalance_apply", NULL, &ap, err) == DV_OK)
            json_decref(ap);
        clock_sleep_ms(200);
    }
    wait_settled(120000, what);
    print_moves();
    check_writes(any_cli());
    printf("# %s: writes %u acknowledged, %u failed (%s); searches %u, failed %u\n", what,
           atomic_load(&T.w_ok), atomic_load(&T.w_failed), T.w_err, atomic_load(&T.s_queries[1]),
           atomic_load(&T.s_failed[1]));
}

static void test_kill_source(void **state)
{
    (void)state;
    need_rb_cluster();
    traffic_start();
    __atomic_store_n(&T.phase, 1, __ATOMIC_RELAXED);
    int src = -1, dst = -1;
    slow_move(&src, &dst);
    printf("# kill -9 the source, %s\n", node_ids[src]);
    sp_kill9(C.nd[src]);
    clock_sleep_ms(2000);
    node_start(src);
    recover_and_check("source killed");
    case_ok = true;
}

static void test_kill_target(void **state)
{
    (void)state;
    need_rb_cluster();
    /* move cnode-a's partitions away again first, so that it is a target */
    char err[DV_ERRMSG_SIZE];
    admin(any_cli(), "rebalance_set", "{\"rate\": 0}", NULL, err);
    json_decref(admin_ok(any_cli(), "node_drain", "{\"id\": \"cnode-a\"}"));
    wait_settled(120000, "drain before the target test");
    traffic_start();
    __atomic_store_n(&T.phase, 1, __ATOMIC_RELAXED);
    int src = -1, dst = -1;
    slow_move(&src, &dst);
    printf("# kill -9 the target, %s\n", node_ids[dst]);
    sp_kill9(C.nd[dst]);
    clock_sleep_ms(1000);
    node_start(dst);
    recover_and_check("target killed");
    case_ok = true;
}

static void test_kill_leader(void **state)
{
    (void)state;
    need_rb_cluster();
    char err[DV_ERRMSG_SIZE];
    admin(any_cli(), "rebalance_set", "{\"rate\": 0}", NULL, err);
    json_decref(admin_ok(any_cli(), "node_drain", "{\"id\": \"cnode-a\"}"));
    wait_settled(120000, "drain before the leader test");
    traffic_start();
    __atomic_store_n(&T.phase, 1, __ATOMIC_RELAXED);
    int src = -1, dst = -1;
    slow_move(&src, &dst);
    int leader = wait_leader(5000);
    assert_true(leader >= 0);
    printf("# kill -9 the leader, coordinator %d\n", leader + 1);
    sp_kill9(C.co[leader].p);
    C.co[leader].p->pid = 0;
    int next = wait_leader(15000);
    assert_true(next >= 0 && next != leader);
    printf("# coordinator %d leads now\n", next + 1);
    recover_and_check("leader killed");
    /* the old leader comes back and follows */
    co_spawn(leader);
    assert_int_equal(co_wait(leader, 20000), DV_OK);
    case_ok = true;
}

/* ---- 5. removing a dead node --------------------------------------------------------------- */

static void test_remove_dead(void **state)
{
    (void)state;
    need_rb_cluster();
    char err[DV_ERRMSG_SIZE];
    admin(any_cli(), "rebalance_set", "{\"rate\": 0}", NULL, err);
    wait_settled(120000, "before the dead node");
    /* node c dies for good (as far as the cluster knows) */
    sp_kill9(C.nd[2]);
    uint64_t end = clock_mono_ms() + 20000;
    for (;;) {
        json_t *st = status_of(any_cli(), err);
        bool dead = false;
        json_t *n;
        size_t i;
        json_array_foreach(json_object_get(st, "nodes"), i,
                           n) if (strcmp(jstr(n, "id"), "cnode-c") == 0 &&
                                  strcmp(jstr(n, "state"), "dead") == 0) dead = true;
        json_decref(st);
        if (dead)
            break;
        assert_true(clock_mono_ms() < end);
        clock_sleep_ms(100);
    }
    /* without force: refused, and told why and what to do */
    assert_int_equal(admin(any_cli(), "node_remove", "{\"id\": \"cnode-c\"}", NULL, err), DV_EBUSY);
    printf("# %s\n", err);
    assert_non_null(strstr(err, "force"));
    json_t *rm = admin_ok(any_cli(), "node_remove", "{\"id\": \"cnode-c\", \"force\": true}");
    size_t lost = json_array_size(json_object_get(rm, "unavailable"));
    printf("# removed with force: %zu partitions unavailable: %s\n", lost, jstr(rm, "message"));
    assert_true(lost > 0);
    assert_non_null(strstr(jstr(rm, "message"), "start dvec-shard"));
    json_decref(rm);
    json_t *pl = admin_ok(any_cli(), "rebalance_plan", NULL);
    assert_int_equal(json_array_size(json_object_get(pl, "stuck")), lost);
    json_decref(pl);
    /* searches fail plainly, or answer partially when asked to */
    struct msg_reply rep;
    assert_int_equal(search(any_cli(), 0, 5, true, NULL, &rep, err), DV_OK);
    assert_true(rep.m.u.csearch_rep.partial);
    assert_int_equal(rep.m.u.csearch_rep.n_failed, lost);
    msg_reply_free(&rep);
    /* (a follower learns of the removal with the leader's next heartbeat) */
    uint64_t until = clock_mono_ms() + 3000;
    do {
        assert_int_not_equal(search(any_cli(), 0, 5, false, NULL, &rep, err), DV_OK);
        msg_reply_free(&rep);
    } while (strstr(err, "unavailable") == NULL && clock_mono_ms() < until);
    printf("# search without allow_partial: %s\n", err);
    assert_non_null(strstr(err, "unavailable"));
    /* a write to an unavailable partition fails plainly too (not silently dropped) */
    uint64_t ids[WBATCH];
    for (uint32_t i = 0; i < WBATCH; i++)
        ids[i] = i;
    assert_int_not_equal(upsert_ver(any_cli(), ids, WBATCH, 7, err), DV_OK);
    for (uint32_t i = 0; T.ver && i < WBATCH; i++)
        T.ver[ids[i]] = UINT32_MAX; /* applied on the partitions still there */
    printf("# write: %s\n", err);
    assert_non_null(strstr(err, "unavailable"));
    /* The disk comes back: the node starts, is added back, its replicas are adopted. */
    node_start(2);
    char args[256];
    snprintf(args, sizeof args, "{\"id\": \"cnode-c\", \"url\": \"%s\"}", C.nd[2]->url);
    json_decref(admin_ok(any_cli(), "node_add", args));
    end = clock_mono_ms() + 30000;
    for (;;) {
        json_t *p2 = admin_ok(any_cli(), "rebalance_plan", NULL);
        size_t stuck = json_array_size(json_object_get(p2, "stuck"));
        json_decref(p2);
        if (stuck == 0)
            break;
        if (clock_mono_ms() > end) {
            print_logs();
            fail_msg("%zu partitions still unavailable after the node came back", stuck);
        }
        clock_sleep_ms(200);
    }
    wait_settled(120000, "node back");
    /* (the coordinator asked next may learn of the adoption a heartbeat later) */
    uint64_t n_now = 0;
    end = clock_mono_ms() + 5000;
    while (count_of(any_cli(), COLL, NULL, &n_now, err) != DV_OK && clock_mono_ms() < end)
        clock_sleep_ms(50);
    check_writes(any_cli());
    case_ok = true;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PATH-TO-dvec-coord PATH-TO-dvec-shard\n", argv[0]);
        return 2;
    }
    C.coord_exe = argv[1];
    sp_exe = argv[2];
    sp_init_ports();
    signal(SIGPIPE, SIG_IGN);
    if (getenv("DVEC_ITEST_ONLY"))
        cmocka_set_test_filter(getenv("DVEC_ITEST_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scale_out_in, sp_case_setup, rb_teardown),
        cmocka_unit_test_setup_teardown(test_kill_source, sp_case_setup, rb_teardown),
        cmocka_unit_test_setup_teardown(test_kill_target, sp_case_setup, rb_teardown),
        cmocka_unit_test_setup_teardown(test_kill_leader, sp_case_setup, rb_teardown),
        cmocka_unit_test_setup_teardown(test_remove_dead, sp_case_setup, rb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
