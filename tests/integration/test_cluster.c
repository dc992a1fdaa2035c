/* test_cluster.c - integration tests of a whole dvec cluster: 3 dvec-coord and 3 dvec-shard
 * processes on 127.0.0.1, driven through the client API (docs/protocol.md, "Client API"):
 * loading and querying through every coordinator, bad input, a collection dropped and created
 * again under its name, kill -9 of the Raft leader and of a node, a full restart. argv[1] is
 * dvec-coord, argv[2] dvec-shard.
 * The cases share one cluster (loading 50,000 points is the expensive part); a case that fails
 * leaves it to the next one to start a fresh cluster. DVEC_ITEST_ONLY='test_node*' runs
 * matching cases only; DVEC_ITEST_PORT sets the first port (shard_proc.h). */
#include "cluster_util.h"

/* ---- 1. load, count, search, get, scroll, payloads, filters, status ---------------------- */

/* Many clients at once through one coordinator: the coordinator combines searches bound for
 * the same node into one node request (combine.c) and must hand each client exactly its own
 * queries' results. Requests of 1, 2 and 3 queries; no cmocka calls on these threads. */
struct conc {
    const uint64_t (*want)[K];
    atomic_uint next; /* next chunk */
    atomic_uint wrong, failed, done;
};

static void *conc_main(void *arg)
{
    struct conc *x = arg;
    for (;;) {
        uint32_t c = atomic_fetch_add(&x->next, 1), first = c, n = c % 3 + 1;
        if (first >= NQ)
            break;
        if (first + n > NQ)
            n = NQ - first;
        struct msg_reply rep;
        char err[DV_ERRMSG_SIZE];
        if (search(C.cli[0], first, n, false, NULL, &rep, err) != DV_OK ||
            rep.m.u.csearch_rep.n != n) {
            atomic_fetch_add(&x->failed, 1);
            msg_reply_free(&rep);
            continue;
        }
        for (uint32_t i = 0; i < n; i++) {
            const struct msg_hits *h = &rep.m.u.csearch_rep.results[i];
            bool same = h->n == K;
            for (uint32_t j = 0; same && j < K; j++)
                same = h->hits[j].id.lo == x->want[first + i][j];
            if (!same)
                atomic_fetch_add(&x->wrong, 1);
            atomic_fetch_add(&x->done, 1);
        }
        msg_reply_free(&rep);
    }
    return NULL;
}

static void concurrent_searches(const uint64_t (*want)[K])
{
    enum { T = 8 };
    struct conc x = {.want = want};
    pthread_t th[T];
    uint64_t t0 = clock_mono_ms();
    for (int i = 0; i < T; i++)
        assert_int_equal(pthread_create(&th[i], NULL, conc_main, &x), 0);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    printf("# %d clients at once through coordinator 1: %u query results in %" PRIu64
           " ms, %u differ from the one-client results, %u requests failed\n",
           T, atomic_load(&x.done), clock_mono_ms() - t0, atomic_load(&x.wrong),
           atomic_load(&x.failed));
    assert_int_equal(atomic_load(&x.failed), 0);
    assert_int_equal(atomic_load(&x.wrong), 0);
    assert_true(atomic_load(&x.done) >= NQ); /* every query, most of them more than once */
}

static void test_load_and_query(void **state)
{
    (void)state;
    case_ok = false;
    if (C.loaded) /* a previous run of this case in the same program */
        cluster_destroy();
    if (!cluster_running())
        cluster_destroy();
    if (!C.up)
        cluster_start();
    load(); /* created through coordinator 1, loaded through coordinator 2 */

    /* The default partition count: one per node, one replica each. */
    int node_of[64];
    uint32_t np = placement(C.cli[2], node_of, 64);
    assert_int_equal(np, NND);

    for (int i = 0; i < NCO; i++)
        assert_int_equal(count_ok(C.cli[i], COLL, NULL), NPTS);

    /* The status lists the group (one leader) and the replicas placed on each node. */
    {
        char err[DV_ERRMSG_SIZE];
        json_t *st = status_of(C.cli[1], err), *x;
        assert_non_null(st);
        size_t i, leaders = 0, placed = 0;
        json_t *group = json_object_get(st, "coordinators");
        assert_int_equal(json_array_size(group), NCO);
        json_array_foreach(group, i, x)
        {
            leaders += json_is_true(json_object_get(x, "leader"));
            assert_true(strncmp(jstr(x, "url"), "tcp://127.0.0.1:", 16) == 0);
        }
        json_array_foreach(json_object_get(st, "nodes"), i, x)
        {
            placed += jint(x, "partitions");
            /* every node reported its search port; node-3's is one nobody listens on */
            bool third = strcmp(jstr(x, "id"), node_ids[2]) == 0;
            if (third)
                assert_string_equal(jstr(x, "search_url"), C.node_search_advertise[2]);
            else
                assert_true(strncmp(jstr(x, "search_url"), "tcp://127.0.0.1:", 16) == 0);
        }
        assert_int_equal(leaders, 1);
        assert_int_equal(placed, np);
        json_decref(st);
    }

    /* Recall at the default ef against brute force, and the same ids through every
     * coordinator. */
    static uint64_t ids[NCO][NQ][K];
    uint64_t t0 = clock_mono_ms();
    double recall[NCO];
    for (int i = 0; i < NCO; i++)
        recall[i] = recall_via(i, ids[i]);
    printf("# %d queries x %d coordinators (with the oracle) in %" PRIu64
           " ms; recall@%d %.4f %.4f %.4f\n",
           NQ, NCO, clock_mono_ms() - t0, K, recall[0], recall[1], recall[2]);
    for (int i = 0; i < NCO; i++)
        assert_true(recall[i] >= 0.95);
    assert_memory_equal(ids[0], ids[1], sizeof ids[0]);
    assert_memory_equal(ids[0], ids[2], sizeof ids[0]);
    concurrent_searches((const uint64_t(*)[K])ids[0]);

    /* Get: the points found, in request order, with vector and payload; missing ids left
     * out. */
    struct pid gid[8] = {pid_num(49999), pid_num(7), pid_num(NPTS + 5),
                         pid_num(12345), pid_num(0), pid_num(ID_SPACE + 1),
                         pid_num(31000), pid_num(2)};
    struct msg m = creq(MSG_P_GET, COLL);
    m.u.get_req = (struct msg_get_req){gid, 8, true, true};
    struct msg_reply rep;
    call_ok(C.cli[2], &m, &rep);
    const uint64_t want_get[] = {49999, 7, 12345, 0, 31000, 2};
    assert_int_equal(rep.m.u.get_rep.n, 6);
    struct buf pl = BUF_INIT;
    for (uint32_t i = 0; i < 6; i++) {
        const struct msg_hit *h = &rep.m.u.get_rep.hits[i];
        float v[DIM];
        assert_int_equal(h->id.lo, want_get[i]);
        pu_vec(want_get[i], 0, DIM, v);
        assert_int_equal(h->dim, DIM);
        assert_memory_equal(h->vec, v, sizeof v);
        pu_payload(want_get[i], 0, &pl);
        assert_int_equal(h->payload.len, pl.len);
        assert_memory_equal(h->payload.p, pl.data, pl.len);
    }
    msg_reply_free(&rep);
    buf_free(&pl);

    /* Scroll: pages through every coordinator in turn with the cursor; each id once, in id
     * order. */
    uint8_t *seen = calloc(NPTS, 1);
    assert_non_null(seen);
    struct pid from = {0};
    bool has_from = false, more = true;
    uint64_t total = 0, last = 0;
    int pages = 0;
    while (more) {
        struct msg s = creq(MSG_P_SCROLL, COLL);
        s.u.scroll_req = (struct msg_scroll_req){has_from, from, 4000, {NULL, 0}, false, false};
        call_ok(C.cli[pages % NCO], &s, &rep);
        const struct msg_scroll_rep *sr = &rep.m.u.scroll_rep;
        assert_true(sr->hits.n <= 4000);
        for (uint32_t i = 0; i < sr->hits.n; i++) {
            uint64_t id = sr->hits.hits[i].id.lo;
            assert_true(id < NPTS);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
            if (total > 0)
                assert_true(id > last);
            last = id;
            total++;
        }
        more = sr->more;
        if (more) {
            assert_int_equal(sr->hits.n, 4000);
            from = sr->next;
            has_from = true;
            assert_true(from.lo > last);
        }
        msg_reply_free(&rep);
        pages++;
        assert_true(pages <= NPTS / 4000 + 1);
    }
    free(seen);
    assert_int_equal(total, NPTS);
    assert_int_equal(pages, (NPTS + 3999) / 4000);

    /* Set payload on ids of every partition through coordinator 1, seen through 3. */
    struct pid sid[30];
    for (int i = 0; i < 30; i++)
        sid[i] = pid_num((uint64_t)i * 1601 + 3);
    struct buf data = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(jsonmp_from_text("{\"mark\":\"set\"}", 14, &data, err), DV_OK);
    m = creq(MSG_P_SET_PAYLOAD, COLL);
    m.u.set_payload_req = (struct msg_set_payload_req){1, sid, 30, {data.data, (uint32_t)data.len}};
    call_ok(C.cli[0], &m, &rep);
    assert_int_equal(rep.m.u.write_rep.affected, 30);
    msg_reply_free(&rep);
    bool touched[64] = {false};
    for (int i = 0; i < 30; i++)
        touched[place_partition_of(&sid[i], np)] = true;
    for (uint32_t p = 0; p < np; p++)
        assert_true(touched[p]);
    m = creq(MSG_P_GET, COLL);
    m.u.get_req = (struct msg_get_req){sid, 30, false, true};
    call_ok(C.cli[2], &m, &rep);
    assert_int_equal(rep.m.u.get_rep.n, 30);
    for (int i = 0; i < 30; i++) {
        const struct msg_hit *h = &rep.m.u.get_rep.hits[i];
        char c[16] = "";
        sp_payload_str(&h->payload, "mark", c, sizeof c);
        assert_string_equal(c, "set");
        sp_payload_str(&h->payload, "color", c, sizeof c); /* merged, not replaced */
        assert_string_equal(c, pu_colors[sid[i].lo % 5]);
    }
    msg_reply_free(&rep);
    buf_free(&data);
    assert_int_equal(count_ok(C.cli[1], COLL,
                              "{\"must\":[{\"key\":\"mark\",\"match\":{\"value\":"
                              "\"set\"}}]}"),
                     30);

    /* Filtered search and count: color is pu_colors[id % 5] ("red" for id % 5 == 0). */
    const char *red = "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}";
    assert_int_equal(count_ok(C.cli[2], COLL, red), NPTS / 5);
    assert_int_equal(search(C.cli[1], 0, 20, false, red, &rep, err), DV_OK);
    for (uint32_t i = 0; i < 20; i++) {
        const struct msg_hits *h = &rep.m.u.csearch_rep.results[i];
        assert_int_equal(h->n, K);
        for (uint32_t j = 0; j < h->n; j++) {
            char c[16];
            assert_int_equal(h->hits[j].id.lo % 5, 0);
            sp_payload_str(&h->hits[j].payload, "color", c, sizeof c);
            assert_string_equal(c, "red");
        }
    }
    msg_reply_free(&rep);

    /* The cluster status through every coordinator: the same leader, 3 nodes alive, the
     * collection. */
    uint64_t leader = 0;
    for (int i = 0; i < NCO; i++) {
        json_t *st = status_of(C.cli[i], err);
        assert_non_null(st);
        json_t *me = json_object_get(st, "coordinator");
        assert_int_equal(jint(me, "id"), (uint64_t)(i + 1));
        if (i == 0)
            leader = jint(me, "leader_id");
        assert_true(leader >= 1 && leader <= NCO);
        assert_int_equal(jint(me, "leader_id"), leader);
        assert_int_equal(nodes_in_state(st, "alive"), NND);
        json_t *colls = json_object_get(st, "collections");
        assert_int_equal(json_array_size(colls), 1);
        json_t *cl = json_array_get(colls, 0);
        assert_string_equal(jstr(cl, "name"), COLL);
        assert_int_equal(jint(cl, "dim"), DIM);
        assert_int_equal(jint(cl, "partitions"), np);
        json_decref(st);
    }
    logs_clean();
    case_ok = true;
}

/* ---- bad input --------------------------------------------------------------------------- */

static void test_bad_input(void **state)
{
    (void)state;
    need_cluster();
    struct rpc *r = C.cli[1];
    char err[DV_ERRMSG_SIZE];

    struct msg m = creq(MSG_P_COUNT, "no_such_collection");
    call_fails(r, &m, DV_ENOTFOUND, "no_such_collection");
    m = creq(MSG_COLL_INFO, "no_such_collection");
    call_fails(r, &m, DV_ENOTFOUND, "no_such_collection");

    /* Wrong dimension: an upsert and a search (nothing is sent to the nodes). */
    uint64_t id = 377777;
    int rc = upsert_ids(r, COLL, DIM / 2, &id, 1, err);
    printf("# upsert of dimension %d: %s \"%s\"\n", DIM / 2, dv_errname(rc), err);
    assert_int_equal(rc, DV_EDIM);
    assert_non_null(strstr(err, "dimension"));
    float q[DIM / 2] = {0};
    struct msg_query qq = {.vec = q, .dim = DIM / 2, .k = K};
    m = creq(MSG_P_SEARCH, COLL);
    m.u.csearch_req = (struct msg_csearch_req){&qq, 1, true, 0};
    call_fails(r, &m, DV_EDIM, "dimension");

    /* Garbage bytes, then a truncated message: error replies, not silence. */
    static const uint8_t garbage[] = {0xc1, 0xff, 0x00, 0x13, 'g', 'a', 'r', 'b', 'a', 'g', 'e'};
    struct msg full = creq(MSG_P_COUNT, COLL);
    struct buf enc = BUF_INIT;
    full.req_id = 99;
    assert_int_equal(msg_encode(&full, &enc, err), DV_OK);
    const struct {
        const void *p;
        size_t n;
    } raw[] = {{garbage, sizeof garbage}, {enc.data, enc.len - 3}};
    for (size_t i = 0; i < 2; i++) {
        void *out = NULL;
        size_t len = 0;
        rc = rpc_call_raw(r, raw[i].p, raw[i].n, &out, &len, err);
        assert_int_equal(rc, DV_OK);
        struct msg rep;
        assert_int_equal(msg_decode(out, len, &rep, err), DV_OK);
        printf("# %zu raw bytes: %s \"%.*s\"\n", raw[i].n, dv_errname(rep.err.code),
               (int)rep.err.text.len, rep.err.text.p ? rep.err.text.p : "");
        assert_true(rep.reply);
        assert_int_equal(rep.err.code, DV_EPROTO);
        assert_true(rep.err.text.len > 0);
        msg_free(&rep);
        free(out);
    }
    buf_free(&enc);

    /* Create with dimension 0 (through a follower and through the leader), and a bad name. */
    int leader = wait_leader(5000);
    assert_true(leader >= 0);
    for (int i = 0; i < 2; i++) {
        rc = coll_create(C.cli[i == 0 ? leader : (leader + 1) % NCO], "dim_zero", 0, 0, err);
        printf("# create with dim 0: %s \"%s\"\n", dv_errname(rc), err);
        assert_int_equal(rc, DV_EINVAL);
        assert_non_null(strstr(err, "dimension"));
    }
    rc = coll_create(r, "bad name!", 4, 0, err);
    printf("# create named 'bad name!': %s \"%s\"\n", dv_errname(rc), err);
    assert_int_equal(rc, DV_EINVAL);
    rc = coll_create(r, COLL, DIM, 0, err);
    assert_int_equal(rc, DV_EEXIST);

    /* Every coordinator still serves, and nothing was created. */
    for (int i = 0; i < NCO; i++) {
        assert_int_equal(count_ok(C.cli[i], COLL, NULL), C.n_pts);
        m = creq(MSG_COLL_LIST, NULL);
        struct msg_reply rep;
        call_ok(C.cli[i], &m, &rep);
        for (uint32_t k = 0; k < rep.m.u.coll_list_rep.n; k++) {
            const struct msg_str *s = &rep.m.u.coll_list_rep.names[k];
            assert_true((s->len == strlen(COLL) && memcmp(s->p, COLL, s->len) == 0) ||
                        (s->len == strlen(COLL2) && memcmp(s->p, COLL2, s->len) == 0));
        }
        msg_reply_free(&rep);
    }
    logs_clean();
    case_ok = true;
}

/* ---- drop, then create the same name ----------------------------------------------------- */

#define COLL3 "reborn" /* dropped and created again */

static void coll_drop_ok(struct rpc *r, const char *name)
{
    struct msg m = creq(MSG_COLL_DROP, name);
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    msg_reply_free(&rep);
}

/* Upserts ids [first, first + n) into COLL3 through r. */
static void reborn_upsert(struct rpc *r, uint64_t first, uint32_t n)
{
    uint64_t ids[200];
    char err[DV_ERRMSG_SIZE];
    assert_true(n <= 200);
    for (uint32_t i = 0; i < n; i++)
        ids[i] = first + i;
    int rc = upsert_ids(r, COLL3, DIM, ids, n, err);
    if (rc != DV_OK)
        print_error("upsert into %s: %s: %s\n", COLL3, dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
}

/* Searches of COLL3 through r find nothing. */
static void reborn_search_empty(struct rpc *r)
{
    struct msg_reply rep;
    char err[DV_ERRMSG_SIZE];
    int rc = search_in(r, COLL3, 0, 3, false, NULL, &rep, err);
    if (rc != DV_OK)
        print_error("search %s: %s: %s\n", COLL3, dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    assert_int_equal(rep.m.u.csearch_rep.n, 3);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(rep.m.u.csearch_rep.results[i].n, 0);
    msg_reply_free(&rep);
}

/* Occurrences of `text` in the current logs of the nodes. */
static int in_node_logs(const char *text)
{
    struct buf b = BUF_INIT;
    int found = 0;
    for (int i = 0; i < NND; i++) {
        sp_read_file(C.nd[i]->log, &b);
        for (const char *t = b.data ? (const char *)b.data : ""; (t = strstr(t, text)) != NULL;
             t += strlen(text))
            found++;
    }
    buf_free(&b);
    return found;
}

/*
 * A collection dropped and at once created again under the same name (through another
 * coordinator) starts empty: the drop removes the replicas from the nodes before it answers.
 * Then with a node down during the drop and the create: when it comes back it still holds the
 * dropped collection's replicas, reports them with their old incarnation, and the leader has
 * them replaced by empty ones.
 */
static void test_drop_recreate(void **state)
{
    (void)state;
    need_cluster();
    int replaced0 = in_node_logs("replica of a dropped collection replaced");

    coll_create_ok(C.cli[0], COLL3, DIM);
    reborn_upsert(C.cli[0], 0, 200);
    assert_int_equal(count_ok(C.cli[0], COLL3, NULL), 200);
    coll_drop_ok(C.cli[0], COLL3);
    coll_create_ok(C.cli[1], COLL3, DIM);
    for (int i = 0; i < NCO; i++)
        assert_int_equal(count_ok(C.cli[i], COLL3, NULL), 0);
    reborn_search_empty(C.cli[1]);
    reborn_upsert(C.cli[1], 1000, 200);
    for (int i = 0; i < NCO; i++)
        assert_int_equal(count_ok(C.cli[i], COLL3, NULL), 200);
    /* the drop removed them: no create had to replace a replica */
    assert_int_equal(in_node_logs("replica of a dropped collection replaced"), replaced0);

    /* A node down while the collection is dropped and created again. */
    sp_kill9(C.nd[0]);
    coll_drop_ok(C.cli[2], COLL3);
    coll_create_ok(C.cli[0], COLL3, DIM);
    uint64_t t0 = clock_mono_ms();
    node_start(0);
    uint64_t n = UINT64_MAX, end = clock_mono_ms() + 15000;
    char err[DV_ERRMSG_SIZE];
    while (clock_mono_ms() < end) {
        if (count_of(C.cli[1], COLL3, NULL, &n, err) == DV_OK && n == 0)
            break;
        clock_sleep_ms(50);
    }
    printf("# node back after a drop and create it missed: the collection counts %" PRIu64
           " points %" PRIu64 " ms after its restart\n",
           n, clock_mono_ms() - t0);
    assert_int_equal(n, 0);
    assert_true(in_node_logs("replica of a dropped collection replaced") > 0);
    wait_nodes_alive(1, 10000);
    for (int i = 0; i < NCO; i++)
        assert_int_equal(count_ok(C.cli[i], COLL3, NULL), 0);
    reborn_search_empty(C.cli[2]);
    reborn_upsert(C.cli[2], 5000, 7);
    for (int i = 0; i < NCO; i++)
        assert_int_equal(count_ok(C.cli[i], COLL3, NULL), 7);

    coll_drop_ok(C.cli[1], COLL3);
    assert_int_equal(count_ok(C.cli[0], COLL, NULL), C.n_pts);
    logs_clean();
    case_ok = true;
}

/* ---- 2. kill -9 the raft leader ---------------------------------------------------------- */

/* Kills the ready leader and measures until another coordinator is the ready leader. */
static int kill_leader(double *ms)
{
    int old = wait_leader(5000);
    assert_true(old >= 0);
    /* Every coordinator agrees on it. */
    for (int i = 0; i < NCO; i++) {
        char err[DV_ERRMSG_SIZE];
        json_t *st = status_of(C.cli[i], err);
        assert_non_null(st);
        json_t *me = json_object_get(st, "coordinator");
        if (jint(me, "leader_id") != (uint64_t)(old + 1)) {
            char *text = json_dumps(me, JSON_COMPACT);
            print_error("coordinator %d: %s\n", i + 1, text);
            free(text);
        }
        assert_int_equal(jint(me, "leader_id"), (uint64_t)(old + 1));
        json_decref(st);
    }
    uint64_t t0 = clock_mono_ns();
    sp_kill9(C.co[old].p);
    int now = wait_leader(5000);
    *ms = (double)(clock_mono_ns() - t0) / 1e6;
    printf("# kill -9 of leader %d: coordinator %d is the ready leader after %.0f ms\n", old + 1,
           now + 1, *ms);
    assert_true(now >= 0 && now != old);
    return old;
}

/* Waits until coordinator i names coordinator `leader` as the leader. */
static bool knows_leader(int i, int leader, uint64_t timeout_ms)
{
    uint64_t end = clock_mono_ms() + timeout_ms;
    do {
        char err[DV_ERRMSG_SIZE];
        json_t *st = status_of(C.cli[i], err);
        bool knows =
            st && jint(json_object_get(st, "coordinator"), "leader_id") == (uint64_t)(leader + 1);
        json_decref(st);
        if (knows)
            return true;
        clock_sleep_ms(5);
    } while (clock_mono_ms() < end);
    return false;
}

/* Searches 20 queries through each running coordinator: the same ids everywhere. */
static void same_search_everywhere(void)
{
    uint64_t first[20][K];
    bool have = false;
    for (int i = 0; i < NCO; i++) {
        if (C.co[i].p->pid == 0)
            continue;
        struct msg_reply rep;
        char err[DV_ERRMSG_SIZE];
        int rc = search(C.cli[i], 0, 20, false, NULL, &rep, err);
        if (rc != DV_OK)
            print_error("search through coordinator %d: %s: %s\n", i + 1, dv_errname(rc), err);
        assert_int_equal(rc, DV_OK);
        for (uint32_t q = 0; q < 20; q++) {
            const struct msg_hits *h = &rep.m.u.csearch_rep.results[q];
            assert_int_equal(h->n, K);
            for (uint32_t j = 0; j < K; j++) {
                if (have)
                    assert_int_equal(first[q][j], h->hits[j].id.lo);
                first[q][j] = h->hits[j].id.lo;
            }
        }
        have = true;
        msg_reply_free(&rep);
    }
}

static void test_leader_failover(void **state)
{
    (void)state;
    need_cluster();
    double ms[2];
    for (int round = 0; round < 2; round++) {
        int dead = kill_leader(&ms[round]);
        assert_true(ms[round] < 2000);
        int a = (dead + 1) % NCO, b = (dead + 2) % NCO;

        /* Clients keep working through the two others: searches, upserts, counts. */
        same_search_everywhere();
        uint64_t ids[500];
        for (int i = 0; i < 500; i++)
            ids[i] = 100000 + (uint64_t)round * 1000 + (uint64_t)i;
        upsert_ok(C.cli[a], ids, 250);
        upsert_ok(C.cli[b], ids + 250, 250);
        assert_int_equal(count_ok(C.cli[a], COLL, NULL), C.n_pts);
        assert_int_equal(count_ok(C.cli[b], COLL, NULL), C.n_pts);

        /* A map change through a follower: forwarded to the new leader. */
        int leader = wait_leader(5000);
        int follower = leader == a ? b : a;
        if (round == 0) {
            coll_create_ok(C.cli[follower], COLL2, DIM2);
            uint64_t id2[100];
            for (int i = 0; i < 100; i++)
                id2[i] = (uint64_t)i;
            char err[DV_ERRMSG_SIZE];
            int rc = upsert_ids(C.cli[follower], COLL2, DIM2, id2, 100, err);
            if (rc != DV_OK)
                print_error("upsert into %s: %s: %s\n", COLL2, dv_errname(rc), err);
            assert_int_equal(rc, DV_OK);
            C.coll2_points = 100;
            assert_int_equal(count_ok(C.cli[leader], COLL2, NULL), 100);
        } else {
            /* A second create of the same name through the follower: DV_EEXIST. */
            char err[DV_ERRMSG_SIZE];
            assert_int_equal(coll_create(C.cli[follower], COLL2, DIM2, 0, err), DV_EEXIST);
        }

        /* The killed coordinator comes back on its dir and catches up with the map. */
        co_spawn(dead);
        int rc = co_wait(dead, 20000);
        if (rc != DV_OK)
            sp_dump_log(C.co[dead].p, 2000);
        assert_int_equal(rc, DV_OK);
        /* raft's transport redials a peer it lost after up to a second: until then the
         * restarted one times out, asks for pre-votes (refused) and knows no leader. */
        uint64_t t0 = clock_mono_ms();
        int leader_now = wait_leader(5000);
        assert_true(leader_now >= 0);
        assert_true(knows_leader(dead, leader_now, 5000));
        printf("# coordinator %d restarted; it follows coordinator %d after %" PRIu64 " ms\n",
               dead + 1, leader_now + 1, clock_mono_ms() - t0);
        uint64_t end = clock_mono_ms() + 10000;
        uint64_t n2 = 0;
        char err[DV_ERRMSG_SIZE];
        while (clock_mono_ms() < end &&
               (count_of(C.cli[dead], COLL2, NULL, &n2, err) != DV_OK || n2 != C.coll2_points))
            clock_sleep_ms(20);
        assert_int_equal(n2, C.coll2_points);
        assert_int_equal(count_ok(C.cli[dead], COLL, NULL), C.n_pts);
    }
    printf("# leader failover: %.0f ms, %.0f ms (limit 2000)\n", ms[0], ms[1]);
    same_search_everywhere();
    logs_clean();
    case_ok = true;
}

/* ---- 3. kill -9 a node ------------------------------------------------------------------- */

#define RF2_N 3000 /* points of the replicated collection of the node-kill case */
static uint64_t rf2_before[20][K];

static void test_node_kill(void **state)
{
    (void)state;
    need_cluster();
    int node_of[64];
    uint32_t np = placement(C.cli[0], node_of, 64);
    /* The victim: the node with the most partitions; another one must hold some too. */
    int held[NND] = {0}, victim = 0, others = 0;
    for (uint32_t p = 0; p < np; p++)
        held[node_of[p]]++;
    for (int k = 1; k < NND; k++)
        if (held[k] > held[victim])
            victim = k;
    for (int k = 0; k < NND; k++)
        others += k != victim ? held[k] : 0;
    assert_true(held[victim] > 0 && others > 0);
    bool down[64] = {false};
    for (uint32_t p = 0; p < np; p++)
        down[p] = node_of[p] == victim;
    /* New ids on the victim's partitions and on the others'. */
    uint64_t on_victim[50], elsewhere[500];
    int nv = 0, ne = 0;
    for (uint64_t id = 200000; nv < 50 || ne < 500; id++) {
        struct pid p = pid_num(id);
        if (down[place_partition_of(&p, np)]) {
            if (nv < 50)
                on_victim[nv++] = id;
        } else if (ne < 500) {
            elsewhere[ne++] = id;
        }
    }
    const char *vid = node_ids[victim];

    /* A collection with 2 replicas of each partition: its reads must survive the kill. */
    char err[DV_ERRMSG_SIZE];
    struct msg_reply rep;
    {
        struct msg m = creq(MSG_COLL_CREATE, "rf2");
        m.u.coll_cfg = (struct msg_coll_cfg){.dim = DIM, .replication = 2, .partitions = 6};
        call_ok(C.cli[0], &m, &rep);
        msg_reply_free(&rep);
        uint64_t rf2_ids[RF2_N];
        for (uint32_t i = 0; i < RF2_N; i++)
            rf2_ids[i] = i;
        int rc = upsert_ids(C.cli[1], "rf2", DIM, rf2_ids, RF2_N, err);
        if (rc != DV_OK)
            print_error("rf2 upsert: %s: %s\n", dv_errname(rc), err);
        assert_int_equal(rc, DV_OK);
        rc = search_in(C.cli[2], "rf2", 0, 20, false, NULL, &rep, err);
        assert_int_equal(rc, DV_OK);
        for (uint32_t q = 0; q < 20; q++)
            for (uint32_t j = 0; j < K; j++)
                rf2_before[q][j] = rep.m.u.csearch_rep.results[q].hits[j].id.lo;
        msg_reply_free(&rep);
    }

    printf("# killing node %s (%d of %u partitions)\n", vid, held[victim], np);
    sp_kill9(C.nd[victim]);

    /* rf2 at once (the map still says alive: the dead primary's partitions are read again
     * from the other replica) and the same results as before; count and get too once the
     * map knows (checked after the suspect state below). */
    {
        uint64_t t1 = clock_mono_ms();
        int rc = search_in(C.cli[2], "rf2", 0, 20, false, NULL, &rep, err);
        uint64_t d1 = clock_mono_ms() - t1;
        printf("# rf2 search, node down: %s \"%s\" after %" PRIu64 " ms\n", dv_errname(rc), err,
               d1);
        assert_int_equal(rc, DV_OK);
        assert_false(rep.m.u.csearch_rep.partial);
        for (uint32_t q = 0; q < 20; q++) {
            assert_int_equal(rep.m.u.csearch_rep.results[q].n, K);
            for (uint32_t j = 0; j < K; j++)
                assert_int_equal(rep.m.u.csearch_rep.results[q].hits[j].id.lo, rf2_before[q][j]);
        }
        msg_reply_free(&rep);
    }

    /* Search without allow_partial: a clear error naming the node, within the timeout. */
    uint64_t t0 = clock_mono_ms();
    int rc = search(C.cli[0], 0, 5, false, NULL, &rep, err);
    uint64_t dt = clock_mono_ms() - t0;
    printf("# search, node down: %s \"%s\" after %" PRIu64 " ms\n", dv_errname(rc), err, dt);
    assert_int_not_equal(rc, DV_OK);
    assert_non_null(strstr(err, vid));
    assert_true(dt <= TIMEOUT_MS + SLACK_MS);
    msg_reply_free(&rep);
    /* ... and naming every partition that failed. */
    char list[128];
    size_t len = (size_t)snprintf(list, sizeof list, "partition%s ", held[victim] > 1 ? "s" : "");
    for (uint32_t p = 0, k = 0; p < np; p++)
        if (down[p])
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%u", k++ ? "," : "", p);
    snprintf(list + len, sizeof list - len, ")");
    if (strstr(err, list) == NULL)
        print_error("the error does not name \"%s\"\n", list);
    assert_non_null(strstr(err, list));

    /* With allow_partial: the other partitions' best hits, the failed ones listed. */
    t0 = clock_mono_ms();
    rc = search(C.cli[1], 0, 20, true, NULL, &rep, err);
    dt = clock_mono_ms() - t0;
    if (rc != DV_OK)
        print_error("partial search: %s: %s\n", dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    const struct msg_csearch_rep *s = &rep.m.u.csearch_rep;
    printf("# partial search, node down: %u partitions failed after %" PRIu64 " ms\n", s->n_failed,
           dt);
    assert_true(dt <= TIMEOUT_MS + SLACK_MS);
    assert_true(s->partial);
    assert_int_equal(s->n_failed, held[victim]);
    for (uint32_t i = 0; i < s->n_failed; i++) {
        assert_true(s->failed[i] < np && down[s->failed[i]]);
        if (i > 0)
            assert_true(s->failed[i] > s->failed[i - 1]);
    }
    size_t good = 0;
    assert_int_equal(s->n, 20);
    for (uint32_t q = 0; q < 20; q++)
        good += check_hits(q, &s->results[q], down, np);
    printf("# partial search: recall@%d %.3f over the partitions that answered\n", K,
           (double)good / (20 * K));
    assert_true((double)good / (20 * K) >= 0.95);
    msg_reply_free(&rep);

    /* Writes to its partitions fail naming partition and node; others still work. */
    t0 = clock_mono_ms();
    rc = upsert_ids(C.cli[2], COLL, DIM, on_victim, 50, err);
    dt = clock_mono_ms() - t0;
    printf("# upsert to its partitions: %s \"%s\" after %" PRIu64 " ms\n", dv_errname(rc), err, dt);
    assert_int_not_equal(rc, DV_OK);
    assert_non_null(strstr(err, vid));
    assert_non_null(strstr(err, "partition "));
    assert_true(dt <= TIMEOUT_MS + SLACK_MS);
    bool named = false;
    for (uint32_t p = 0; p < np; p++) {
        char word[32];
        snprintf(word, sizeof word, "partition %u ", p);
        named = named || (down[p] && strstr(err, word) != NULL);
    }
    assert_true(named);
    for (int i = 0; i < NCO; i++)
        upsert_ok(C.cli[i], elsewhere + i * 150, 150);
    upsert_ok(C.cli[0], elsewhere + 450, 50);

    /* The leader has noticed the silence. */
    char state_was[16] = "";
    uint64_t end = clock_mono_ms() + 10000;
    while (clock_mono_ms() < end) {
        json_t *st = status_of(C.cli[0], err);
        json_t *n;
        size_t i;
        json_array_foreach(st ? json_object_get(st, "nodes") : NULL, i, n)
        {
            if (strcmp(jstr(n, "id"), vid) == 0)
                snprintf(state_was, sizeof state_was, "%s", jstr(n, "state"));
        }
        json_decref(st);
        if (strcmp(state_was, "suspect") == 0 || strcmp(state_was, "dead") == 0)
            break;
        clock_sleep_ms(20);
    }
    printf("# node %s is %s in the map\n", vid, state_was);
    assert_true(strcmp(state_was, "suspect") == 0 || strcmp(state_was, "dead") == 0);
    /* Now the map says so: reads of rf2 go to the serving replicas at once. */
    assert_int_equal(count_ok(C.cli[0], "rf2", NULL), RF2_N);
    {
        struct pid gp[4] = {pid_num(0), pid_num(1), pid_num(RF2_N - 1), pid_num(RF2_N + 7)};
        struct msg gm = creq(MSG_P_GET, "rf2");
        gm.u.get_req = (struct msg_get_req){gp, 4, true, false};
        call_ok(C.cli[0], &gm, &rep);
        assert_int_equal(rep.m.u.get_rep.n, 3);
        msg_reply_free(&rep);
    }

    /* The node restarts on its data dir, re-registers, and every acknowledged point is
     * there. */
    t0 = clock_mono_ms();
    node_start(victim);
    uint64_t t_up = clock_mono_ms() - t0;
    end = clock_mono_ms() + 15000;
    rc = DV_EIO;
    while (clock_mono_ms() < end && rc != DV_OK) {
        rc = search(C.cli[0], 0, 1, false, NULL, &rep, err);
        msg_reply_free(&rep);
        if (rc != DV_OK)
            clock_sleep_ms(20);
    }
    printf("# node %s restarted: answers after %" PRIu64 " ms, searched through a coordinator "
           "after %" PRIu64 " ms\n",
           vid, t_up, clock_mono_ms() - t0);
    assert_int_equal(rc, DV_OK);
    wait_nodes_alive(1, 10000);
    struct buf nlog = BUF_INIT;
    sp_read_file(C.nd[victim]->log, &nlog);
    assert_non_null(strstr((const char *)nlog.data, "registered with the coordinators"));
    buf_free(&nlog);
    for (int i = 0; i < NCO; i++)
        assert_int_equal(count_ok(C.cli[i], COLL, NULL), C.n_pts);
    check_all_acked(C.cli[2]);
    /* The writes that failed wrote nothing, and can be retried now. */
    struct pid vp[50];
    for (int i = 0; i < 50; i++)
        vp[i] = pid_num(on_victim[i]);
    struct msg m = creq(MSG_P_GET, COLL);
    m.u.get_req = (struct msg_get_req){vp, 50, false, false};
    call_ok(C.cli[1], &m, &rep);
    assert_int_equal(rep.m.u.get_rep.n, 0);
    msg_reply_free(&rep);
    upsert_ok(C.cli[1], on_victim, 50);
    assert_int_equal(count_ok(C.cli[0], COLL, NULL), C.n_pts);
    m = creq(MSG_COLL_DROP, "rf2");
    call_ok(C.cli[0], &m, &rep);
    msg_reply_free(&rep);
    logs_clean();
    case_ok = true;
}

/* ---- 4. full cluster restart ------------------------------------------------------------- */

static void test_full_restart(void **state)
{
    (void)state;
    need_cluster();
    int before[64];
    uint32_t np = placement(C.cli[0], before, 64);
    static uint64_t ids[NQ][K];

    uint64_t t0 = clock_mono_ms();
    for (int i = 0; i < NND; i++)
        sp_signal(C.nd[i], SIGTERM);
    for (int i = 0; i < NCO; i++)
        sp_signal(C.co[i].p, SIGTERM);
    for (int i = 0; i < NND + NCO; i++) {
        struct sp_proc *p = i < NND ? C.nd[i] : C.co[i - NND].p;
        bool gone = sp_wait_exit(p, 30000);
        if (!gone || !WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
            sp_dump_log(p, 2000);
            sp_kill9(p);
        }
        assert_true(gone);
        assert_true(WIFEXITED(p->status));
        assert_int_equal(WEXITSTATUS(p->status), 0);
    }
    printf("# SIGTERM: every process exited 0 within %" PRIu64 " ms\n", clock_mono_ms() - t0);

    t0 = clock_mono_ms();
    for (int i = 0; i < NCO; i++)
        co_spawn(i);
    for (int i = 0; i < NCO; i++) {
        int rc = co_wait(i, 20000);
        if (rc != DV_OK)
            sp_dump_log(C.co[i].p, 2000);
        assert_int_equal(rc, DV_OK);
    }
    for (int i = 0; i < NND; i++)
        node_start(i);
    assert_true(wait_leader(10000) >= 0);
    /* Every partition answers again. */
    uint64_t end = clock_mono_ms() + 15000, n = 0;
    char err[DV_ERRMSG_SIZE];
    int rc = DV_EIO;
    while (clock_mono_ms() < end && (rc = count_of(C.cli[2], COLL, NULL, &n, err)) != DV_OK)
        clock_sleep_ms(20);
    if (rc != DV_OK)
        print_error("count after the restart: %s: %s\n", dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    printf("# restarted: every partition answers after %" PRIu64 " ms\n", clock_mono_ms() - t0);
    wait_nodes_alive(0, 10000);

    /* The map: both collections, the same partitions on the same nodes. */
    int after[64];
    assert_int_equal(placement(C.cli[1], after, 64), np);
    assert_memory_equal(before, after, np * sizeof *after);
    for (int i = 0; i < NCO; i++) {
        json_t *st = status_of(C.cli[i], err);
        assert_non_null(st);
        json_t *colls = json_object_get(st, "collections");
        assert_int_equal(json_array_size(colls), C.coll2_points ? 2 : 1);
        json_decref(st);
        if (C.coll2_points)
            assert_int_equal(count_ok(C.cli[i], COLL2, NULL), C.coll2_points);
    }

    /* Every acknowledged point, and searches. */
    check_all_acked(C.cli[0]);
    double recall = recall_via(1, ids);
    printf("# after the restart: recall@%d %.4f over %zu points\n", K, recall, C.n_pts);
    assert_true(recall >= 0.95);
    uint64_t more[100];
    for (int i = 0; i < 100; i++)
        more[i] = 300000 + (uint64_t)i;
    upsert_ok(C.cli[2], more, 100);
    assert_int_equal(count_ok(C.cli[0], COLL, NULL), C.n_pts);
    logs_clean();
    case_ok = true;
}

/*
 * 5. Coordinators at run time: a 4th coordinator whose id is not in `group`, named by host
 * names (localhost) for raft and clients, asks the group to add it by itself (raft_add, then
 * voter), serves reads and forwards map changes to the leader; asking again through a follower
 * is a no-op; with its disk lost it rejoins by itself; it is removed again; the group keeps
 * serving throughout.
 */
static pid_t start_coord4(struct sp_proc *p, uint16_t raft_port)
{
    char raft_adv[32], raft_bind[32], adv[48];
    snprintf(raft_adv, sizeof raft_adv, "localhost:%u", (unsigned)raft_port);
    snprintf(raft_bind, sizeof raft_bind, "127.0.0.1:%u", (unsigned)raft_port);
    snprintf(adv, sizeof adv, "tcp://localhost:%u", (unsigned)p->port);
    const char *argv[] = {
        C.coord_exe, "--id",        "4", "--data_dir",    p->data,   "--listen",
        p->url,      "--advertise", adv, "--raft.listen", raft_bind, "--raft.advertise",
        raft_adv,    "--http",      "",  "--group",       C.group,   "--request_timeout",
        "2s",        NULL};
    return sp_fork_exec((char *const *)argv, p->log);
}

/* Waits until coordinator `id` is listed by the coordinator behind r (5 s at most). */
static bool listed(struct rpc *r, uint64_t id)
{
    char err[DV_ERRMSG_SIZE];
    uint64_t end = clock_mono_ms() + 5000;
    while (clock_mono_ms() < end) {
        json_t *st = status_of(r, err);
        json_t *e;
        size_t i;
        bool found = false;
        json_array_foreach(st ? json_object_get(st, "coordinators") : NULL, i, e) found =
            found || (uint64_t)jint(e, "id") == id;
        json_decref(st);
        if (found)
            return true;
        clock_sleep_ms(20);
    }
    return false;
}

static void test_coordinator_membership(void **state)
{
    (void)state;
    need_cluster();
    int leader = wait_leader(5000);
    assert_true(leader >= 0);
    int follower = (leader + 1) % NCO;
    struct sp_proc *p = sp_new(false, NULL, 0);
    assert_non_null(p);
    p->port = free_port();
    uint16_t raft_port = free_port();
    snprintf(p->url, sizeof p->url, "tcp://127.0.0.1:%u", (unsigned)p->port);
    char raft_addr[32], adv[48];
    snprintf(raft_addr, sizeof raft_addr, "localhost:%u", (unsigned)raft_port);
    snprintf(adv, sizeof adv, "tcp://localhost:%u", (unsigned)p->port);
    snprintf(p->log, sizeof p->log, "%s/log.1", p->base);
    uint64_t t0 = clock_mono_ms();
    p->pid = start_coord4(p, raft_port);
    assert_true(p->pid > 0);
    assert_true(listed(C.cli[leader], 4));
    printf("# coordinator 4 joined by itself in %" PRIu64 " ms\n", clock_mono_ms() - t0);

    /* Asking again (a joiner whose answer was lost) changes nothing. */
    struct msg m = creq(MSG_COORD_ADD, NULL);
    m.u.coord_req = (struct msg_coord_req){
        4, {raft_addr, (uint32_t)strlen(raft_addr)}, {adv, (uint32_t)strlen(adv)}};
    struct msg_reply rep;
    call_ok(C.cli[follower], &m, &rep);
    msg_reply_free(&rep);

    /* It has the map (caught up from the leader) and answers reads from it. */
    struct rpc_opts o;
    rpc_opts_default(&o);
    o.timeout_ms = CALL_MS;
    struct rpc *r4;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(rpc_open(p->url, &o, &r4, err), DV_OK);
    uint64_t n = 0;
    uint64_t end = clock_mono_ms() + 5000;
    while (clock_mono_ms() < end && count_of(r4, COLL, NULL, &n, err) != DV_OK)
        clock_sleep_ms(20);
    assert_int_equal(count_ok(r4, COLL, NULL), C.n_pts);
    /* A map change through it reaches the leader (once it has heard from one; the
     * coordinator itself waits up to half its request timeout for that); the others see it. */
    end = clock_mono_ms() + 5000;
    for (;;) {
        json_t *s4 = status_of(r4, err);
        uint64_t lid = s4 ? jint(json_object_get(s4, "coordinator"), "leader_id") : 0;
        json_decref(s4);
        if (lid > 0 || clock_mono_ms() > end)
            break;
        clock_sleep_ms(20);
    }
    coll_create_ok(r4, "vecs4", DIM2);
    assert_int_equal(count_ok(C.cli[leader], "vecs4", NULL), 0);
    json_t *st = status_of(r4, err);
    assert_non_null(st);
    assert_true(jint(json_object_get(st, "coordinator"), "leader_id") > 0);
    json_decref(st);

    /* Its disk lost: started again empty with the same settings, it rejoins by itself (a
     * voter at the same address: the leader only catches it up) and serves the map. */
    rpc_close(r4);
    sp_kill9(p);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", p->data, p->data);
    assert_int_equal(system(cmd), 0);
    snprintf(p->log, sizeof p->log, "%s/log.2", p->base);
    p->pid = start_coord4(p, raft_port);
    assert_true(p->pid > 0);
    assert_int_equal(rpc_open(p->url, &o, &r4, err), DV_OK);
    end = clock_mono_ms() + 10000;
    n = 0;
    while (clock_mono_ms() < end && (count_of(r4, "vecs4", NULL, &n, err) != DV_OK))
        clock_sleep_ms(50);
    assert_int_equal(count_ok(r4, COLL, NULL), C.n_pts);
    assert_true(listed(C.cli[follower], 4));

    /* Removed again (through the leader), then stopped. */
    m = creq(MSG_COORD_REMOVE, NULL);
    m.u.coord_req.id = 4;
    call_ok(C.cli[leader], &m, &rep);
    msg_reply_free(&rep);
    rpc_close(r4);
    sp_signal(p, SIGTERM);
    assert_true(sp_wait_exit(p, 15000));
    assert_int_equal(count_ok(C.cli[follower], COLL, NULL), C.n_pts);
    m = creq(MSG_COLL_DROP, "vecs4");
    call_ok(C.cli[follower], &m, &rep);
    msg_reply_free(&rep);
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
    /* Node 3 advertises a search port that refuses connections: searches that need it go to
     * the nodes over NNG instead (the coordinator leaves that port alone a while), and every
     * case below still gets the same answers. */
    C.node_search_advertise[2] = "tcp://127.0.0.1:1";
    sp_init_ports();
    signal(SIGPIPE, SIG_IGN);
    if (getenv("DVEC_ITEST_ONLY"))
        cmocka_set_test_filter(getenv("DVEC_ITEST_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_and_query, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_recreate, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader_failover, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_kill, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_restart, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_coordinator_membership, sp_case_setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
