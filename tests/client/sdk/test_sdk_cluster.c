/*
 * test_sdk_cluster.c - libdvec against a real local cluster (deploy/local/cluster: 3
 * coordinators and 2 nodes on 127.0.0.1): every call with its results checked (recall against
 * brute force, get order, scroll pages, counts, payload operations, deletes, UUID ids, batch
 * search, score thresholds), errors, 8 threads sharing a client, the quickstart example, and
 * failover when a coordinator is killed.
 *
 * argv[1]: the build root (dvec-coord, dvec-shard, the example); argv[2]: the source root
 * (deploy/local/cluster). The cluster lives in a temp dir on ports 21000-21999 (a block of 120
 * chosen from the PID, the next one when taken) and is stopped in the group teardown, or by
 * the per-case watchdog. DVEC_SDK_ONLY='test_x*' runs matching cases only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "dvec.h"

#define NCOORD     3
#define NNODE      2
#define PORT_BASE  21000
#define PORT_BLOCK 120 /* a cluster uses P .. P+22 (coordinators) and P+100 .. P+111 (nodes) */
#define PORT_SLOTS 8
#define CASE_LIMIT 240 /* seconds per case before the watchdog stops everything */

#define COLL   "sdk_main" /* the main collection: N random points */
#define DIM    32
#define N      4000
#define NQ     50 /* queries of the recall check */
#define K      10
#define NCOLOR 5

static const char *const colors[NCOLOR] = {"red", "green", "blue", "white", "black"};

static struct {
    const char *build, *source;
    char script[1024], dir[64], urls[256], url[NCOORD][64];
    int port;
    bool up;
    dvec_client *c;       /* connected to every coordinator */
    float *vecs;          /* [N * DIM] the main collection's points, id i at i * DIM */
    bool loaded;          /* COLL holds them */
    uint64_t want[NQ][K]; /* ids of the single searches of the recall check */
    bool have_want;
} T;

/* ---- processes --------------------------------------------------------------------------- */

/* Runs argv with stdout and stderr appended to `log`; the exit status (-1: did not run). */
static int run(const char *const *argv, const char *log)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void print_file(const char *path, size_t tail)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, len > (long)tail ? len - (long)tail : 0, SEEK_SET);
    char line[1024];
    printf("# ---- %s (last %zu bytes)\n", path, tail);
    while (fgets(line, sizeof line, f)) /* as TAP comments */
        printf("#   %s%s", line, strchr(line, '\n') ? "" : "\n");
    printf("# ----\n");
    fclose(f);
}

static int cluster(const char *cmd)
{
    char port[16], log[128];
    snprintf(port, sizeof port, "%d", T.port);
    snprintf(log, sizeof log, "%s.log", T.dir);
    const char *start[] = {"/bin/bash", T.script, cmd,        "--bin", T.build,   "--dir", T.dir,
                           "--port",    port,     "--coords", "3",     "--nodes", "2",     NULL};
    const char *other[] = {"/bin/bash", T.script, cmd, "--dir", T.dir, NULL};
    return run(strcmp(cmd, "start") == 0 ? start : other, log);
}

/* The watchdog: a case that hangs stops the cluster (only the PIDs the script wrote) and ends
 * the program, instead of waiting for meson's timeout with the processes left running. */
static void on_alarm(int sig)
{
    (void)sig;
    static const char text[] = "test_sdk_cluster: a case ran over its limit; stopping the "
                               "cluster\n";
    if (write(2, text, sizeof text - 1) < 0)
        _exit(1);
    const char *argv[] = {"/bin/bash", T.script, "stop", "--dir", T.dir, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
    _exit(1);
}

static int case_setup(void **state)
{
    (void)state;
    signal(SIGALRM, on_alarm);
    alarm(CASE_LIMIT);
    return 0;
}

static int case_teardown(void **state)
{
    (void)state;
    alarm(0);
    return 0;
}

/* True when nothing listens on the ports a cluster at `p` uses. */
static bool ports_free(int p)
{
    for (int i = 0; i < 112; i++) {
        if (i > 22 && i < 100)
            continue;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return false;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(p + i))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc != 0)
            return false;
    }
    return true;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(T.script, sizeof T.script, "%s/deploy/local/cluster", T.source);
    int slot0 = (int)(getpid() % PORT_SLOTS);
    for (int k = 0; k < PORT_SLOTS && !T.up; k++) {
        T.port = PORT_BASE + ((slot0 + k) % PORT_SLOTS) * PORT_BLOCK;
        if (!ports_free(T.port))
            continue;
        snprintf(T.dir, sizeof T.dir, "/tmp/dvec-sdk-XXXXXX");
        if (mkdtemp(T.dir) == NULL)
            return -1;
        alarm(CASE_LIMIT);
        signal(SIGALRM, on_alarm);
        int rc = cluster("start");
        alarm(0);
        if (rc == 0) {
            T.up = true;
            break;
        }
        char log[128];
        snprintf(log, sizeof log, "%s.log", T.dir);
        print_file(log, 2000);
        cluster("stop");
        const char *rm[] = {"/bin/rm", "-rf", T.dir, log, NULL};
        run(rm, "/dev/null");
        printf("# cluster on port %d did not start; trying the next block\n", T.port);
    }
    if (!T.up) {
        print_error("no local cluster could be started on ports %d-%d\n", PORT_BASE,
                    PORT_BASE + PORT_SLOTS * PORT_BLOCK - 1);
        return -1;
    }
    size_t len = 0;
    for (int i = 0; i < NCOORD; i++) {
        snprintf(T.url[i], sizeof T.url[i], "tcp://127.0.0.1:%d", T.port + 10 * i);
        len += (size_t)snprintf(T.urls + len, sizeof T.urls - len, "%s%s", i ? "," : "", T.url[i]);
    }
    printf("# cluster of %d coordinators and %d nodes under %s: %s\n", NCOORD, NNODE, T.dir,
           T.urls);
    dvec_error e;
    if (dvec_connect(T.urls, NULL, &T.c, &e) != DVEC_OK) {
        print_error("connect: %s\n", e.message);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    dvec_close(T.c);
    free(T.vecs);
    if (T.dir[0]) {
        cluster("stop");
        char log[128];
        snprintf(log, sizeof log, "%s.log", T.dir);
        const char *rm[] = {"/bin/rm", "-rf", T.dir, log, NULL};
        run(rm, "/dev/null");
    }
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* An SDK call that must succeed. */
#define OK(call)                                                                                   \
    do {                                                                                           \
        dvec_error e_;                                                                             \
        dvec_error *err = &e_;                                                                     \
        int rc_ = (call);                                                                          \
        if (rc_ != DVEC_OK)                                                                        \
            print_error("%s: %s (%s)\n", #call, e_.message, dvec_code_name(rc_));                  \
        assert_int_equal(rc_, DVEC_OK);                                                            \
        (void)err;                                                                                 \
    } while (0)

/* rc must be `code` and e's message must hold each of the NULL-terminated words. */
static void expect_err(int rc, const dvec_error *e, int code, ...)
{
    printf("# %s \"%s\"\n", dvec_code_name(rc), e->message);
    if (rc != code)
        print_error("got %s \"%s\", want %s\n", dvec_code_name(rc), e->message,
                    dvec_code_name(code));
    assert_int_equal(rc, code);
    va_list ap;
    va_start(ap, code);
    for (const char *w; (w = va_arg(ap, const char *)) != NULL;) {
        if (strstr(e->message, w) == NULL)
            print_error("the message \"%s\" does not say \"%s\"\n", e->message, w);
        assert_non_null(strstr(e->message, w));
    }
    va_end(ap);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Drops a collection while the coordinators may still be electing (after a SIGSTOP/SIGCONT:
 * "not the leader" is busy): retried for up to 20 s; a drop that timed out may have been
 * committed, so its retry's "does not exist" is success.
 */
static int drop_retry(dvec_client *c, const char *name, dvec_error *e)
{
    uint64_t t0 = now_ms();
    bool again, unsure = false;
    int rc;
    do {
        rc = dvec_collection_drop(c, name, e);
        if (rc == DVEC_ENOTFOUND && unsure)
            rc = DVEC_OK;
        again = rc == DVEC_EBUSY || rc == DVEC_ETIMEDOUT || rc == DVEC_EIO;
        unsure |= rc == DVEC_ETIMEDOUT || rc == DVEC_EIO;
        if (again)
            usleep(100 * 1000);
    } while (again && now_ms() - t0 < 20000);
    return rc;
}

/* Deterministic random floats in [-1, 1) (xorshift64*). */
static void rand_vec(uint64_t seed, uint32_t dim, float *v)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (uint32_t d = 0; d < dim; d++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t r = x * 0x2545F4914F6CDD1Dull;
        v[d] = (float)(r >> 40) / (float)(1 << 23) - 1.0f;
    }
}

static void payload_of(uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "{\"n\":%" PRIu64 ",\"color\":\"%s\",\"grp\":%" PRIu64 "}", id,
             colors[id % NCOLOR], id % 10);
}

static void query_of(uint32_t qi, float *v)
{
    rand_vec(1000000 + qi, DIM, v);
}

static double l2(const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t d = 0; d < dim; d++)
        s += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
    return sqrt(s);
}

/* The exact K nearest points of COLL to q among ids with keep(id) (NULL: all). */
static void brute_force(const float *q, bool (*keep)(uint64_t), uint64_t *ids)
{
    double best[K];
    for (int j = 0; j < K; j++)
        best[j] = INFINITY, ids[j] = UINT64_MAX;
    for (uint64_t i = 0; i < N; i++) {
        if (keep && !keep(i))
            continue;
        double d = l2(q, T.vecs + i * DIM, DIM);
        if (d >= best[K - 1])
            continue;
        int j = K - 1;
        while (j > 0 && best[j - 1] > d) {
            best[j] = best[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        best[j] = d;
        ids[j] = i;
    }
}

static size_t overlap(const uint64_t *want, const dvec_records *r)
{
    size_t n = 0;
    for (int j = 0; j < K; j++)
        for (size_t i = 0; i < r->n; i++)
            if (!r->items[i].id.is_uuid && r->items[i].id.num == want[j]) {
                n++;
                break;
            }
    return n;
}

static bool json_same(const char *a, const char *b)
{
    json_t *x = a ? json_loads(a, JSON_DECODE_ANY, NULL) : NULL;
    json_t *y = b ? json_loads(b, JSON_DECODE_ANY, NULL) : NULL;
    bool same = (x == NULL && y == NULL) || (x && y && json_equal(x, y));
    json_decref(x);
    json_decref(y);
    return same;
}

static const char *json_str(const char *doc, const char *key, char *buf, size_t cap)
{
    buf[0] = '\0';
    json_t *x = doc ? json_loads(doc, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(x, key));
    snprintf(buf, cap, "%s", s ? s : "");
    json_decref(x);
    return buf;
}

static void create(const char *name, uint32_t dim, dvec_metric metric, uint32_t parts)
{
    dvec_collection_config cfg;
    dvec_collection_config_init(&cfg, dim);
    cfg.metric = metric;
    cfg.partitions = parts;
    dvec_error e;
    int rc = dvec_collection_drop(T.c, name, &e); /* a previous run in the same cluster */
    assert_true(rc == DVEC_OK || rc == DVEC_ENOTFOUND);
    OK(dvec_collection_create(T.c, name, &cfg, err));
}

/* Upserts ids [from, to) of the main data set (vectors T.vecs, payloads payload_of). */
static void upsert_range(dvec_client *c, const char *coll, uint64_t from, uint64_t to)
{
    size_t n = (size_t)(to - from);
    dvec_point *pts = calloc(n, sizeof *pts);
    char(*pl)[96] = calloc(n, sizeof *pl);
    assert_true(pts && pl);
    for (size_t i = 0; i < n; i++) {
        payload_of(from + i, pl[i], sizeof pl[i]);
        pts[i] = (dvec_point){dvec_id_num(from + i), T.vecs + (from + i) * DIM, pl[i]};
    }
    OK(dvec_upsert(c, coll, pts, n, DIM, err));
    free(pts);
    free(pl);
}

/* Makes sure COLL holds the N points (a case run alone loads them). */
static void need_main(void)
{
    if (T.loaded)
        return;
    if (T.vecs == NULL) {
        T.vecs = malloc((size_t)N * DIM * sizeof *T.vecs);
        assert_non_null(T.vecs);
        for (uint64_t i = 0; i < N; i++)
            rand_vec(i, DIM, T.vecs + i * DIM);
    }
    create(COLL, DIM, DVEC_EUCLID, 4);
    uint64_t t0 = now_ms();
    for (uint64_t at = 0; at < N; at += 1000)
        upsert_range(T.c, COLL, at, at + 1000);
    printf("# %d points of %d dimensions upserted in %" PRIu64 " ms\n", N, DIM, now_ms() - t0);
    T.loaded = true;
}

/* ---- collections and the cluster --------------------------------------------------------- */

static void test_collections(void **state)
{
    (void)state;
    dvec_error e;
    create("sdk_coll", 16, DVEC_COSINE, 3);
    dvec_collection_config cfg;
    dvec_collection_config_init(&cfg, 16);
    expect_err(dvec_collection_create(T.c, "sdk_coll", &cfg, &e), &e, DVEC_EEXIST, "sdk_coll",
               NULL);

    char **names;
    size_t n;
    OK(dvec_collection_list(T.c, &names, &n, err));
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        found = found || strcmp(names[i], "sdk_coll") == 0;
        if (i > 0)
            assert_true(strcmp(names[i - 1], names[i]) < 0); /* byte order */
    }
    assert_true(found);
    dvec_strings_free(names, n);

    dvec_point pts[30];
    float vs[30][16];
    for (int i = 0; i < 30; i++) {
        rand_vec(500 + (uint64_t)i, 16, vs[i]);
        pts[i] = (dvec_point){dvec_id_num((uint64_t)i), vs[i], NULL};
    }
    OK(dvec_upsert(T.c, "sdk_coll", pts, 30, 16, err));
    dvec_collection_info info;
    OK(dvec_collection_info_get(T.c, "sdk_coll", &info, err));
    assert_int_equal(info.config.dim, 16);
    assert_int_equal(info.config.metric, DVEC_COSINE);
    assert_int_equal(info.config.m, 16); /* defaults come back resolved */
    assert_int_equal(info.config.ef_construction, 200);
    assert_int_equal(info.config.ef_search, 64);
    assert_int_equal(info.config.partitions, 3);
    assert_int_equal(info.config.replication, 1);
    assert_int_equal(info.config.fsync, DVEC_FSYNC_ALWAYS);
    assert_int_equal(info.points, 30);
    assert_int_equal(info.n_partitions, 3);
    uint64_t sum = 0;
    for (size_t p = 0; p < info.n_partitions; p++) {
        assert_int_equal(info.partitions[p].id, p);
        assert_int_equal(info.partitions[p].n_nodes, 1);
        assert_true(strcmp(info.partitions[p].nodes[0], "node-1") == 0 ||
                    strcmp(info.partitions[p].nodes[0], "node-2") == 0);
        assert_true(info.partitions[p].epoch > 0);
        sum += info.partitions[p].points;
    }
    assert_int_equal(sum, 30);
    dvec_collection_info_free(&info);
    dvec_collection_info_free(&info); /* twice is harmless */

    /* The cluster status: JSON with the coordinators, the nodes and the collection. */
    char *st;
    OK(dvec_cluster_status(T.c, &st, err));
    json_error_t je;
    json_t *j = json_loads(st, 0, &je);
    if (j == NULL)
        print_error("status is not JSON: %s: %s\n", je.text, st);
    assert_non_null(j);
    json_t *x;
    size_t i, alive = 0, leaders = 0, colls = 0;
    assert_int_equal(json_array_size(json_object_get(j, "coordinators")), NCOORD);
    json_array_foreach(json_object_get(j, "coordinators"), i, x)
    {
        leaders += json_is_true(json_object_get(x, "leader"));
    }
    json_array_foreach(json_object_get(j, "nodes"), i, x)
    {
        alive += strcmp(json_string_value(json_object_get(x, "state")), "alive") == 0;
    }
    json_array_foreach(json_object_get(j, "collections"), i, x)
    {
        colls += strcmp(json_string_value(json_object_get(x, "name")), "sdk_coll") == 0;
    }
    assert_int_equal(leaders, 1);
    assert_int_equal(alive, NNODE);
    assert_int_equal(colls, 1);
    json_decref(j);
    free(st);

    OK(dvec_collection_drop(T.c, "sdk_coll", err));
    expect_err(dvec_collection_drop(T.c, "sdk_coll", &e), &e, DVEC_ENOTFOUND, "sdk_coll", NULL);
    expect_err(dvec_collection_info_get(T.c, "sdk_coll", &info, &e), &e, DVEC_ENOTFOUND, "sdk_coll",
               NULL);
}

/* ---- search ------------------------------------------------------------------------------ */

static bool is_red(uint64_t id)
{
    return id % NCOLOR == 0;
}

static void test_search(void **state)
{
    (void)state;
    need_main();
    uint64_t n;
    OK(dvec_count(T.c, COLL, NULL, &n, err));
    assert_int_equal(n, N);

    /* Recall@10 against brute force; scores are the distances, closest first. */
    static float qs[NQ][DIM];
    dvec_search_params sp;
    dvec_search_params_init(&sp);
    size_t good = 0;
    uint64_t t0 = now_ms();
    for (uint32_t q = 0; q < NQ; q++) {
        query_of(q, qs[q]);
        dvec_records r;
        bool partial = true;
        OK(dvec_search(T.c, COLL, qs[q], DIM, &sp, &r, &partial, err));
        assert_false(partial);
        assert_int_equal(r.n, K);
        for (size_t j = 0; j < r.n; j++) {
            const dvec_record *x = &r.items[j];
            assert_false(x->id.is_uuid);
            assert_true(x->id.num < N);
            assert_null(x->vector);
            assert_null(x->payload_json);
            assert_float_equal(x->score, l2(qs[q], T.vecs + x->id.num * DIM, DIM), 1e-3);
            if (j > 0)
                assert_true(x->score >= r.items[j - 1].score);
            T.want[q][j] = x->id.num;
        }
        uint64_t truth[K];
        brute_force(qs[q], NULL, truth);
        good += overlap(truth, &r);
        dvec_records_free(&r);
    }
    T.have_want = true;
    double recall = (double)good / (NQ * K);
    printf("# recall@%d over %d queries: %.4f (%" PRIu64 " ms)\n", K, NQ, recall, now_ms() - t0);
    assert_true(recall >= 0.95);

    /* The same queries in one batch: the same ids. */
    dvec_records br[NQ];
    OK(dvec_search_batch(T.c, COLL, &qs[0][0], NQ, DIM, &sp, br, NULL, err));
    for (uint32_t q = 0; q < NQ; q++) {
        assert_int_equal(br[q].n, K);
        for (size_t j = 0; j < K; j++)
            assert_true(br[q].items[j].id.num == T.want[q][j]);
        dvec_records_free(&br[q]);
    }

    /* With payloads and vectors, and a filter: only red points, near the filtered truth. */
    sp.with_payload = true;
    sp.with_vector = true;
    sp.filter_json = "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}";
    good = 0;
    for (uint32_t q = 0; q < 20; q++) {
        dvec_records r;
        OK(dvec_search(T.c, COLL, qs[q], DIM, &sp, &r, NULL, err));
        assert_int_equal(r.n, K);
        for (size_t j = 0; j < r.n; j++) {
            const dvec_record *x = &r.items[j];
            char want[96], c[16];
            assert_true(is_red(x->id.num));
            payload_of(x->id.num, want, sizeof want);
            assert_true(json_same(x->payload_json, want));
            assert_string_equal(json_str(x->payload_json, "color", c, sizeof c), "red");
            assert_int_equal(x->dim, DIM);
            assert_memory_equal(x->vector, T.vecs + x->id.num * DIM, DIM * sizeof(float));
        }
        uint64_t truth[K];
        brute_force(qs[q], is_red, truth);
        good += overlap(truth, &r);
        dvec_records_free(&r);
    }
    printf("# filtered recall@%d: %.4f\n", K, (double)good / (20 * K));
    assert_true((double)good / (20 * K) >= 0.9);

    /* k and ef: k 3 gives the first 3 of k 10; a large ef still finds the same first hit. */
    dvec_search_params_init(&sp);
    sp.k = 3;
    sp.ef = 400;
    dvec_records r;
    OK(dvec_search(T.c, COLL, qs[0], DIM, &sp, &r, NULL, err));
    assert_int_equal(r.n, 3);
    assert_true(r.items[0].id.num == T.want[0][0]);
    dvec_records_free(&r);
    /* A point's own vector finds it first, at distance 0. */
    OK(dvec_search(T.c, COLL, T.vecs + 1234 * DIM, DIM, &sp, &r, NULL, err));
    assert_true(r.items[0].id.num == 1234);
    assert_float_equal(r.items[0].score, 0.0, 1e-4);
    dvec_records_free(&r);
}

static void test_score_threshold(void **state)
{
    (void)state;
    need_main();
    float q[DIM];
    query_of(3, q);
    dvec_search_params sp;
    dvec_search_params_init(&sp);
    dvec_records all, r;
    OK(dvec_search(T.c, COLL, q, DIM, &sp, &all, NULL, err));
    assert_int_equal(all.n, K);
    /* Euclid: at most the 5th distance keeps the first 5 (more only on ties). */
    sp.has_score_threshold = true;
    sp.score_threshold = all.items[4].score;
    OK(dvec_search(T.c, COLL, q, DIM, &sp, &r, NULL, err));
    assert_true(r.n >= 5 && r.n <= K);
    for (size_t j = 0; j < r.n; j++) {
        assert_true(r.items[j].score <= sp.score_threshold);
        assert_true(r.items[j].id.num == all.items[j].id.num);
    }
    dvec_records_free(&r);
    /* One hit (the order cannot tell): below the best distance, nothing; at it, the one. */
    sp.k = 1;
    sp.score_threshold = all.items[0].score * 0.99f;
    OK(dvec_search(T.c, COLL, q, DIM, &sp, &r, NULL, err));
    assert_int_equal(r.n, 0);
    sp.score_threshold = all.items[0].score;
    OK(dvec_search(T.c, COLL, q, DIM, &sp, &r, NULL, err));
    assert_int_equal(r.n, 1);
    dvec_records_free(&r);
    dvec_records_free(&all);

    /* Cosine: larger is closer. */
    create("sdk_cos", 8, DVEC_COSINE, 2);
    dvec_point pts[200];
    static float vs[200][8];
    for (int i = 0; i < 200; i++) {
        rand_vec(7000 + (uint64_t)i, 8, vs[i]);
        pts[i] = (dvec_point){dvec_id_num((uint64_t)i), vs[i], NULL};
    }
    OK(dvec_upsert(T.c, "sdk_cos", pts, 200, 8, err));
    float cq[8];
    rand_vec(99, 8, cq);
    dvec_search_params_init(&sp);
    OK(dvec_search(T.c, "sdk_cos", cq, 8, &sp, &all, NULL, err));
    assert_int_equal(all.n, K);
    for (size_t j = 1; j < all.n; j++)
        assert_true(all.items[j].score <= all.items[j - 1].score);
    sp.has_score_threshold = true;
    sp.score_threshold = all.items[4].score;
    OK(dvec_search(T.c, "sdk_cos", cq, 8, &sp, &r, NULL, err));
    assert_true(r.n >= 5 && r.n <= K);
    for (size_t j = 0; j < r.n; j++)
        assert_true(r.items[j].score >= sp.score_threshold);
    dvec_records_free(&r);
    sp.k = 1;
    sp.score_threshold = all.items[0].score + 0.01f;
    OK(dvec_search(T.c, "sdk_cos", cq, 8, &sp, &r, NULL, err));
    assert_int_equal(r.n, 0);
    sp.score_threshold = all.items[0].score - 0.01f;
    OK(dvec_search(T.c, "sdk_cos", cq, 8, &sp, &r, NULL, err));
    assert_int_equal(r.n, 1);
    dvec_records_free(&r);
    dvec_records_free(&all);
    OK(dvec_collection_drop(T.c, "sdk_cos", err));
}

/* ---- get, scroll, count ------------------------------------------------------------------ */

static void test_get_scroll_count(void **state)
{
    (void)state;
    need_main();
    /* Get: in the order asked, missing ids (a number, a UUID) left out. */
    dvec_id ids[7] = {dvec_id_num(3999), dvec_id_num(7),    dvec_id_num(1000000),
                      dvec_id_num(0),    dvec_id_num(1234), dvec_id_num(N)};
    assert_int_equal(dvec_id_parse("00000000-0000-4000-8000-000000000001", &ids[6]), DVEC_OK);
    const uint64_t want[] = {3999, 7, 0, 1234};
    dvec_records r;
    OK(dvec_get(T.c, COLL, ids, 7, true, true, &r, err));
    assert_int_equal(r.n, 4);
    for (size_t i = 0; i < 4; i++) {
        char pl[96];
        assert_true(r.items[i].id.num == want[i]);
        assert_int_equal(r.items[i].dim, DIM);
        assert_memory_equal(r.items[i].vector, T.vecs + want[i] * DIM, DIM * sizeof(float));
        payload_of(want[i], pl, sizeof pl);
        assert_true(json_same(r.items[i].payload_json, pl));
    }
    dvec_records_free(&r);
    OK(dvec_get(T.c, COLL, ids, 2, false, false, &r, err));
    assert_int_equal(r.n, 2);
    assert_null(r.items[0].vector);
    assert_null(r.items[0].payload_json);
    dvec_records_free(&r);
    OK(dvec_get(T.c, COLL, ids, 0, false, false, &r, err));
    assert_int_equal(r.n, 0);

    /* Scroll: every id exactly once, in id order, 700 per page. */
    uint8_t *seen = calloc(N, 1);
    assert_non_null(seen);
    dvec_scroll_params sc = {.limit = 700};
    dvec_id next;
    bool more = true;
    size_t total = 0, pages = 0;
    uint64_t last = 0;
    while (more) {
        OK(dvec_scroll(T.c, COLL, &sc, &r, &next, &more, err));
        pages++;
        assert_true(r.n <= 700);
        if (more)
            assert_int_equal(r.n, 700);
        for (size_t i = 0; i < r.n; i++) {
            uint64_t id = r.items[i].id.num;
            assert_true(id < N);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
            if (total > 0)
                assert_true(id > last);
            last = id;
            total++;
        }
        dvec_records_free(&r);
        sc.offset = &next;
        assert_true(pages <= N / 700 + 1);
    }
    assert_int_equal(total, N);
    assert_int_equal(pages, (N + 699) / 700);

    /* With a filter, vectors and payloads: the red ones, each once. */
    memset(seen, 0, N);
    sc = (dvec_scroll_params){.limit = 300,
                              .filter_json =
                                  "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}",
                              .with_vector = true,
                              .with_payload = true};
    more = true;
    total = 0;
    while (more) {
        OK(dvec_scroll(T.c, COLL, &sc, &r, &next, &more, err));
        for (size_t i = 0; i < r.n; i++) {
            uint64_t id = r.items[i].id.num;
            char c[16];
            assert_true(is_red(id));
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
            assert_memory_equal(r.items[i].vector, T.vecs + id * DIM, DIM * sizeof(float));
            assert_string_equal(json_str(r.items[i].payload_json, "color", c, sizeof c), "red");
            total++;
        }
        dvec_records_free(&r);
        sc.offset = &next;
    }
    assert_int_equal(total, N / NCOLOR);
    free(seen);

    /* Count with filters. */
    uint64_t n;
    OK(dvec_count(T.c, COLL, "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}", &n,
                  err));
    assert_int_equal(n, N / NCOLOR);
    OK(dvec_count(T.c, COLL,
                  "{\"must\":[{\"key\":\"grp\",\"match\":{\"value\":3}}],"
                  "\"must_not\":[{\"key\":\"color\",\"match\":{\"value\":\"blue\"}}]}",
                  &n, err));
    uint64_t expect = 0;
    for (uint64_t i = 0; i < N; i++)
        expect += i % 10 == 3 && colors[i % NCOLOR] != colors[2];
    assert_int_equal(n, expect);
    /* A payload index changes nothing in the answers. */
    OK(dvec_payload_index_create(T.c, COLL, "color", "keyword", err));
    OK(dvec_payload_index_create(T.c, COLL, "grp", "integer", err));
    OK(dvec_count(T.c, COLL, "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}", &n,
                  err));
    assert_int_equal(n, N / NCOLOR);
}

/* ---- writes ------------------------------------------------------------------------------ */

static void test_payload_ops(void **state)
{
    (void)state;
    create("sdk_pay", 4, DVEC_EUCLID, 2);
    float v[4] = {1, 2, 3, 4};
    dvec_point pts[20];
    for (int i = 0; i < 20; i++)
        pts[i] = (dvec_point){dvec_id_num((uint64_t)i), v, "{\"color\":\"red\",\"size\":3}"};
    OK(dvec_upsert(T.c, "sdk_pay", pts, 20, 4, err));
    dvec_id ids[5] = {dvec_id_num(1), dvec_id_num(5), dvec_id_num(9), dvec_id_num(13),
                      dvec_id_num(17)};
    dvec_records r;

    OK(dvec_set_payload(T.c, "sdk_pay", DVEC_PAYLOAD_SET, ids, 5, "{\"mark\":\"x\",\"size\":4}",
                        err));
    OK(dvec_get(T.c, "sdk_pay", ids, 5, false, true, &r, err));
    assert_int_equal(r.n, 5);
    for (size_t i = 0; i < r.n; i++) /* merged: color kept, size replaced, mark added */
        assert_true(
            json_same(r.items[i].payload_json, "{\"color\":\"red\",\"size\":4,\"mark\":\"x\"}"));
    dvec_records_free(&r);
    uint64_t n;
    OK(dvec_count(T.c, "sdk_pay", "{\"must\":[{\"key\":\"mark\",\"match\":{\"value\":\"x\"}}]}", &n,
                  err));
    assert_int_equal(n, 5);

    OK(dvec_set_payload(T.c, "sdk_pay", DVEC_PAYLOAD_OVERWRITE, ids, 2, "{\"only\":1}", err));
    OK(dvec_set_payload(T.c, "sdk_pay", DVEC_PAYLOAD_DELETE_KEYS, ids + 2, 2,
                        "[\"color\",\"mark\"]", err));
    OK(dvec_set_payload(T.c, "sdk_pay", DVEC_PAYLOAD_CLEAR, ids + 4, 1, NULL, err));
    OK(dvec_get(T.c, "sdk_pay", ids, 5, false, true, &r, err));
    assert_int_equal(r.n, 5);
    assert_true(json_same(r.items[0].payload_json, "{\"only\":1}"));
    assert_true(json_same(r.items[1].payload_json, "{\"only\":1}"));
    assert_true(json_same(r.items[2].payload_json, "{\"size\":4}"));
    assert_true(json_same(r.items[3].payload_json, "{\"size\":4}"));
    assert_true(r.items[4].payload_json == NULL || json_same(r.items[4].payload_json, "{}"));
    dvec_records_free(&r);
    OK(dvec_count(T.c, "sdk_pay", "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}",
                  &n, err));
    assert_int_equal(n, 15);
    OK(dvec_collection_drop(T.c, "sdk_pay", err));
}

static void test_delete(void **state)
{
    (void)state;
    need_main();
    create("sdk_del", DIM, DVEC_EUCLID, 3);
    upsert_range(T.c, "sdk_del", 0, 500);
    dvec_id ids[52];
    for (int i = 0; i < 50; i++)
        ids[i] = dvec_id_num((uint64_t)i * 10);
    ids[50] = dvec_id_num(100000);
    ids[51] = dvec_id_num(100001);
    uint64_t deleted = 0, n;
    OK(dvec_delete(T.c, "sdk_del", ids, 52, &deleted, err));
    assert_int_equal(deleted, 50); /* the two missing ones did not exist */
    OK(dvec_delete(T.c, "sdk_del", ids, 52, &deleted, err));
    assert_int_equal(deleted, 0);
    OK(dvec_count(T.c, "sdk_del", NULL, &n, err));
    assert_int_equal(n, 450);
    dvec_records r;
    OK(dvec_get(T.c, "sdk_del", ids, 52, false, false, &r, err));
    assert_int_equal(r.n, 0);
    /* Searching for a deleted point's own vector does not find it. */
    dvec_search_params sp;
    dvec_search_params_init(&sp);
    OK(dvec_search(T.c, "sdk_del", T.vecs + 20 * DIM, DIM, &sp, &r, NULL, err));
    for (size_t i = 0; i < r.n; i++)
        assert_true(r.items[i].id.num % 10 != 0);
    dvec_records_free(&r);
    /* Upserting again brings it back; an upsert replaces. */
    upsert_range(T.c, "sdk_del", 20, 21);
    OK(dvec_count(T.c, "sdk_del", NULL, &n, err));
    assert_int_equal(n, 451);
    OK(dvec_delete(T.c, "sdk_del", NULL, 0, NULL, err));
    OK(dvec_collection_drop(T.c, "sdk_del", err));
}

static void test_uuid_ids(void **state)
{
    (void)state;
    create("sdk_uuid", 8, DVEC_EUCLID, 4);
    static float vs[200][8];
    dvec_point pts[200];
    dvec_id uu[100];
    for (int i = 0; i < 200; i++) {
        rand_vec(9000 + (uint64_t)i, 8, vs[i]);
        if (i < 100) {
            char text[40];
            snprintf(text, sizeof text, "%08x-0000-4000-8000-%012x", 0xa0000000u - (unsigned)i * 7,
                     (unsigned)i);
            assert_int_equal(dvec_id_parse(text, &uu[i]), DVEC_OK);
            assert_true(uu[i].is_uuid);
            pts[i] = (dvec_point){uu[i], vs[i], "{\"kind\":\"uuid\"}"};
        } else {
            pts[i] = (dvec_point){dvec_id_num((uint64_t)i), vs[i], "{\"kind\":\"num\"}"};
        }
    }
    OK(dvec_upsert(T.c, "sdk_uuid", pts, 200, 8, err));
    uint64_t n;
    OK(dvec_count(T.c, "sdk_uuid", NULL, &n, err));
    assert_int_equal(n, 200);

    /* Get by UUID, in the order asked. */
    dvec_id ask[3] = {uu[42], dvec_id_num(150), uu[7]};
    dvec_records r;
    OK(dvec_get(T.c, "sdk_uuid", ask, 3, true, true, &r, err));
    assert_int_equal(r.n, 3);
    assert_true(r.items[0].id.is_uuid);
    assert_memory_equal(r.items[0].id.uuid, uu[42].uuid, 16);
    assert_memory_equal(r.items[0].vector, vs[42], sizeof vs[42]);
    assert_false(r.items[1].id.is_uuid);
    assert_true(r.items[1].id.num == 150);
    assert_memory_equal(r.items[2].id.uuid, uu[7].uuid, 16);
    char buf[DVEC_ID_TEXT_MAX], want[DVEC_ID_TEXT_MAX];
    dvec_id_format(&r.items[2].id, buf);
    dvec_id_format(&uu[7], want);
    assert_string_equal(buf, want);
    dvec_records_free(&r);

    /* A UUID point's own vector finds it. */
    dvec_search_params sp;
    dvec_search_params_init(&sp);
    sp.k = 1;
    OK(dvec_search(T.c, "sdk_uuid", vs[13], 8, &sp, &r, NULL, err));
    assert_int_equal(r.n, 1);
    assert_true(r.items[0].id.is_uuid);
    assert_memory_equal(r.items[0].id.uuid, uu[13].uuid, 16);
    dvec_records_free(&r);

    /* Scroll: the numbers first, then the UUIDs in byte order, with a UUID as the cursor. */
    dvec_scroll_params sc = {.limit = 70};
    dvec_id next;
    bool more = true;
    size_t total = 0, nums = 0;
    dvec_id prev = {0};
    while (more) {
        OK(dvec_scroll(T.c, "sdk_uuid", &sc, &r, &next, &more, err));
        for (size_t i = 0; i < r.n; i++, total++) {
            const dvec_id *id = &r.items[i].id;
            if (!id->is_uuid) {
                assert_int_equal(total, nums); /* no number after a UUID */
                nums++;
            } else if (prev.is_uuid) {
                assert_true(memcmp(prev.uuid, id->uuid, 16) < 0);
            }
            prev = *id;
        }
        dvec_records_free(&r);
        sc.offset = &next;
    }
    assert_int_equal(total, 200);
    assert_int_equal(nums, 100);

    uint64_t deleted;
    OK(dvec_delete(T.c, "sdk_uuid", uu, 10, &deleted, err));
    assert_int_equal(deleted, 10);
    OK(dvec_count(T.c, "sdk_uuid", "{\"must\":[{\"key\":\"kind\",\"match\":{\"value\":\"uuid\"}}]}",
                  &n, err));
    assert_int_equal(n, 90);
    OK(dvec_collection_drop(T.c, "sdk_uuid", err));
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_errors(void **state)
{
    (void)state;
    need_main();
    dvec_error e;
    uint64_t n;
    float v[DIM] = {0};
    dvec_point p = {dvec_id_num(1), v, NULL};
    dvec_records r;
    dvec_search_params sp;
    dvec_search_params_init(&sp);

    expect_err(dvec_count(T.c, "sdk_nope", NULL, &n, &e), &e, DVEC_ENOTFOUND, "sdk_nope", NULL);
    expect_err(dvec_search(T.c, "sdk_nope", v, DIM, &sp, &r, NULL, &e), &e, DVEC_ENOTFOUND,
               "sdk_nope", NULL);
    expect_err(dvec_upsert(T.c, "sdk_nope", &p, 1, DIM, &e), &e, DVEC_ENOTFOUND, "sdk_nope", NULL);

    expect_err(dvec_upsert(T.c, COLL, &p, 1, DIM - 1, &e), &e, DVEC_EDIM, COLL, "dimension", NULL);
    float v1[DIM + 1] = {0};
    expect_err(dvec_search(T.c, COLL, v1, DIM + 1, &sp, &r, NULL, &e), &e, DVEC_EDIM, COLL,
               "dimension", NULL);
    v[5] = NAN;
    expect_err(dvec_upsert(T.c, COLL, &p, 1, DIM, &e), &e, DVEC_ENAN, COLL, "point 0 (id 1)", NULL);
    v[5] = 0;
    p.payload_json = "{\"color\": red}";
    expect_err(dvec_upsert(T.c, COLL, &p, 1, DIM, &e), &e, DVEC_EPARSE, COLL, "point 0 (id 1)",
               "line 1 column", NULL);
    p.payload_json = NULL;

    dvec_collection_config cfg;
    dvec_collection_config_init(&cfg, DIM);
    expect_err(dvec_collection_create(T.c, COLL, &cfg, &e), &e, DVEC_EEXIST, COLL, NULL);
    cfg.dim = 0;
    expect_err(dvec_collection_create(T.c, "sdk_dim0", &cfg, &e), &e, DVEC_EINVAL, "sdk_dim0",
               "dimension", NULL);
    cfg.dim = 4;
    expect_err(dvec_collection_create(T.c, "bad name!", &cfg, &e), &e, DVEC_EINVAL, NULL);
    /* A filter that parses but makes no sense to the nodes. */
    expect_err(dvec_count(T.c, COLL, "{\"must\":[{\"key\":\"color\",\"nonsense\":1}]}", &n, &e), &e,
               DVEC_EINVAL, COLL, NULL);
    /* k 0 is the default 10. */
    sp.k = 0;
    OK(dvec_search(T.c, COLL, v, DIM, &sp, &r, NULL, err));
    assert_int_equal(r.n, 10);
    dvec_records_free(&r);
    /* Nothing was written by the failed calls. */
    OK(dvec_count(T.c, COLL, NULL, &n, err));
    assert_int_equal(n, N);
}

/* ---- threads ----------------------------------------------------------------------------- */

struct conc {
    atomic_uint failed, wrong, searches;
    pthread_mutex_t mu;
    char first_error[DVEC_ERRMSG_SIZE];
};

struct conc_arg {
    struct conc *x;
    int t;
};

static void conc_fail(struct conc *x, const dvec_error *e)
{
    pthread_mutex_lock(&x->mu);
    if (x->first_error[0] == '\0')
        snprintf(x->first_error, sizeof x->first_error, "%s", e->message);
    pthread_mutex_unlock(&x->mu);
    atomic_fetch_add(&x->failed, 1);
}

/* Even threads search (the results must be the single-thread ones), odd threads upsert their
 * own 500 ids into sdk_conc. No cmocka calls here. */
static void *conc_main(void *arg)
{
    struct conc_arg *a = arg;
    struct conc *x = a->x;
    dvec_error e;
    if (a->t % 2 == 0) {
        dvec_search_params sp;
        dvec_search_params_init(&sp);
        for (int round = 0; round < 3; round++)
            for (uint32_t q = (uint32_t)a->t; q < NQ; q++) {
                float v[DIM];
                query_of(q, v);
                dvec_records r;
                if (dvec_search(T.c, COLL, v, DIM, &sp, &r, NULL, &e) != DVEC_OK) {
                    conc_fail(x, &e);
                    continue;
                }
                bool same = r.n == K;
                for (size_t j = 0; same && j < K; j++)
                    same = r.items[j].id.num == T.want[q][j];
                if (!same)
                    atomic_fetch_add(&x->wrong, 1);
                atomic_fetch_add(&x->searches, 1);
                dvec_records_free(&r);
            }
    } else {
        for (uint64_t at = 0; at < 500; at += 50) {
            dvec_point pts[50];
            char pl[50][96];
            for (int i = 0; i < 50; i++) {
                uint64_t id = (uint64_t)a->t * 1000 + at + (uint64_t)i;
                payload_of(id, pl[i], sizeof pl[i]);
                pts[i] = (dvec_point){dvec_id_num(id), T.vecs + ((id * 7) % N) * DIM, pl[i]};
            }
            if (dvec_upsert(T.c, "sdk_conc", pts, 50, DIM, &e) != DVEC_OK)
                conc_fail(x, &e);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    need_main();
    if (!T.have_want)
        test_search(state);
    create("sdk_conc", DIM, DVEC_EUCLID, 4);
    enum { THREADS = 8 };
    struct conc x = {0};
    pthread_mutex_init(&x.mu, NULL);
    struct conc_arg a[THREADS];
    pthread_t th[THREADS];
    uint64_t t0 = now_ms();
    for (int t = 0; t < THREADS; t++) {
        a[t] = (struct conc_arg){&x, t};
        assert_int_equal(pthread_create(&th[t], NULL, conc_main, &a[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    printf("# %d threads on one client: %u searches (%u differ), 2000 points upserted, %u calls "
           "failed, %" PRIu64 " ms\n",
           THREADS, atomic_load(&x.searches), atomic_load(&x.wrong), atomic_load(&x.failed),
           now_ms() - t0);
    if (x.first_error[0])
        print_error("first failure: %s\n", x.first_error);
    assert_int_equal(atomic_load(&x.failed), 0);
    assert_int_equal(atomic_load(&x.wrong), 0);
    uint64_t n;
    OK(dvec_count(T.c, "sdk_conc", NULL, &n, err));
    assert_int_equal(n, 4 * 500);
    OK(dvec_collection_drop(T.c, "sdk_conc", err));
    pthread_mutex_destroy(&x.mu);
}

/* ---- the example ------------------------------------------------------------------------- */

static void test_example(void **state)
{
    (void)state;
    char exe[1024], log[128];
    snprintf(exe, sizeof exe, "%s/client/examples/quickstart", T.build);
    snprintf(log, sizeof log, "%s/quickstart.log", T.dir);
    const char *argv[] = {exe, T.urls, NULL};
    uint64_t t0 = now_ms();
    int rc = run(argv, log);
    printf("# quickstart exited %d after %" PRIu64 " ms\n", rc, now_ms() - t0);
    print_file(log, rc == 0 ? 400 : 4000);
    assert_int_equal(rc, 0);
}

/* ---- failover ---------------------------------------------------------------------------- */

static pid_t read_pid(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/run/%s.pid", T.dir, name);
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

/* Coordinator 1 is killed (kill -9 of the PID the cluster script started for this test):
 * a client given every URL keeps working through the others; one given only its URL fails with
 * DVEC_EIO after about a second; once it is started again, that client works again. */
static void test_failover(void **state)
{
    (void)state;
    need_main();
    dvec_client *all, *one;
    dvec_error e;
    OK(dvec_connect(T.urls, NULL, &all, err));
    OK(dvec_connect(T.url[0], NULL, &one, err));
    uint64_t n;
    OK(dvec_count(all, COLL, NULL, &n, err)); /* coordinator 1 is current */
    OK(dvec_count(one, COLL, NULL, &n, err));

    pid_t pid = read_pid("coord-1");
    assert_true(pid > 1);
    printf("# kill -9 coordinator 1 (pid %ld)\n", (long)pid);
    assert_int_equal(kill(pid, SIGKILL), 0);
    usleep(200 * 1000);

    /* Data calls go on through the others at once. */
    uint64_t t0 = now_ms();
    OK(dvec_count(all, COLL, NULL, &n, err));
    uint64_t dt = now_ms() - t0;
    printf("# count through the client of 3 URLs after the kill: %" PRIu64 " ms\n", dt);
    assert_int_equal(n, N);
    assert_true(dt < 3000);
    float q[DIM];
    query_of(0, q);
    dvec_search_params sp;
    dvec_search_params_init(&sp);
    dvec_records r;
    OK(dvec_search(all, COLL, q, DIM, &sp, &r, NULL, err));
    assert_int_equal(r.n, K);
    if (T.have_want)
        for (size_t j = 0; j < K; j++)
            assert_true(r.items[j].id.num == T.want[0][j]);
    dvec_records_free(&r);
    dvec_point p = {dvec_id_num(N + 1), T.vecs, "{\"after\":\"kill\"}"};
    OK(dvec_upsert(all, COLL, &p, 1, DIM, err));
    dvec_id id = dvec_id_num(N + 1);
    OK(dvec_get(all, COLL, &id, 1, false, true, &r, err));
    assert_int_equal(r.n, 1);
    assert_true(json_same(r.items[0].payload_json, "{\"after\":\"kill\"}"));
    dvec_records_free(&r);
    uint64_t deleted;
    OK(dvec_delete(all, COLL, &id, 1, &deleted, err));
    assert_int_equal(deleted, 1);
    /* Map changes too, once a leader is elected (coordinator 1 may have been the leader). */
    dvec_collection_config cfg;
    dvec_collection_config_init(&cfg, 4);
    t0 = now_ms();
    int rc;
    do {
        rc = dvec_collection_create(all, "sdk_after_kill", &cfg, &e);
        if (rc == DVEC_EBUSY)
            usleep(100 * 1000);
    } while (rc == DVEC_EBUSY && now_ms() - t0 < 15000);
    if (rc != DVEC_OK)
        print_error("create after the kill: %s\n", e.message);
    assert_int_equal(rc, DVEC_OK);
    printf("# collection created through the others %" PRIu64 " ms after the kill\n",
           now_ms() - t0);
    OK(dvec_collection_drop(all, "sdk_after_kill", err));

    /* The client of coordinator 1 alone: DVEC_EIO within about a second, naming the URL. */
    t0 = now_ms();
    rc = dvec_count(one, COLL, NULL, &n, &e);
    dt = now_ms() - t0;
    printf("# the client of coordinator 1 alone: %" PRIu64 " ms\n", dt);
    expect_err(rc, &e, DVEC_EIO, T.url[0], NULL);
    assert_true(dt < 1600);
    t0 = now_ms();
    rc = dvec_count(one, COLL, NULL, &n, &e);
    expect_err(rc, &e, DVEC_EIO, T.url[0], NULL);
    assert_true(now_ms() - t0 < 1600);

    /* Started again (the script starts what is not running): the same client works again. */
    assert_int_equal(cluster("start"), 0);
    t0 = now_ms();
    do {
        rc = dvec_count(one, COLL, NULL, &n, &e);
        if (rc != DVEC_OK)
            usleep(100 * 1000);
    } while (rc != DVEC_OK && now_ms() - t0 < 15000);
    if (rc != DVEC_OK)
        print_error("coordinator 1 after its restart: %s\n", e.message);
    assert_int_equal(rc, DVEC_OK);
    assert_int_equal(n, N);
    printf("# coordinator 1 restarted; its client answered after %" PRIu64 " ms\n", now_ms() - t0);
    dvec_close(one);
    dvec_close(all);
}

/* ---- one hop ----------------------------------------------------------------------------- */

static void signal_coords(int sig)
{
    char name[16];
    for (int i = 1; i <= NCOORD; i++) {
        snprintf(name, sizeof name, "coord-%d", i);
        pid_t pid = read_pid(name);
        assert_true(pid > 1);
        assert_int_equal(kill(pid, sig), 0);
    }
}

/* The ids of query qi's results through client c (k K, default ef). */
static int search_ids(dvec_client *c, const char *coll, uint32_t qi, uint64_t *ids, size_t *n,
                      dvec_error *e)
{
    float q[DIM];
    query_of(qi, q);
    dvec_search_params sp;
    dvec_search_params_init(&sp);
    dvec_records r;
    int rc = dvec_search(c, coll, q, DIM, &sp, &r, NULL, e);
    *n = 0;
    if (rc == DVEC_OK) {
        for (size_t j = 0; j < r.n && j < K; j++)
            ids[(*n)++] = r.items[j].id.num;
        dvec_records_free(&r);
    }
    return rc;
}

/* Requests the nodes answered on their search ports (dvec_shard_search_port_requests_total of
 * every node's /metrics, read with curl; node J's HTTP port is the script's P+100+10(J-1)+1). */
static double search_port_requests(void)
{
    double total = 0;
    for (int j = 0; j < NNODE; j++) {
        char cmd[128], line[512];
        snprintf(cmd, sizeof cmd, "curl -s --max-time 5 http://127.0.0.1:%d/metrics",
                 T.port + 100 + 10 * j + 1);
        FILE *f = popen(cmd, "r");
        assert_non_null(f);
        bool seen = false;
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "dvec_shard_search_port_requests_total ", 38) == 0) {
                total += strtod(line + 38, NULL);
                seen = true;
            }
        pclose(f);
        assert_true(seen);
    }
    return total;
}

/*
 * One hop: a client searches the nodes themselves, on their search ports (the nodes count
 * them), or on their native URLs with no_search_port. With every coordinator stopped (SIGSTOP),
 * a client holding the collection's routing table answers searches, the same ids as before,
 * either way; one made with via_coordinator cannot. A stale table is corrected, never wrong: after
 * the collection is dropped and made again with other ids, and after it is made again with another
 * dimension, the client (which keeps its table 10 minutes here) answers from the new collection.
 */
static void test_one_hop(void **state)
{
    (void)state;
    need_main();
    dvec_options o = {.timeout_ms = 1000, .max_attempts = 1, .route_ttl_ms = 600000};
    dvec_client *one, *nng, *via;
    OK(dvec_connect(T.urls, &o, &one, err));
    o.no_search_port = true;
    OK(dvec_connect(T.urls, &o, &nng, err));
    o.via_coordinator = true;
    OK(dvec_connect(T.urls, &o, &via, err));
    enum { NHOP = 10 };
    uint64_t before[NHOP][K], ids[K];
    size_t n;
    double port0 = search_port_requests();
    for (uint32_t q = 0; q < NHOP; q++) {
        OK(search_ids(one, COLL, q, before[q], &n, err));
        assert_int_equal(n, K);
    }
    double port1 = search_port_requests();
    for (uint32_t q = 0; q < NHOP; q++) {
        OK(search_ids(nng, COLL, q, ids, &n, err));
        assert_int_equal(n, K);
        assert_memory_equal(ids, before[q], sizeof ids);
    }
    double port2 = search_port_requests();
    printf("# search port requests: %.0f for %d one-hop searches, %.0f with no_search_port\n",
           port1 - port0, NHOP, port2 - port1);
    assert_true(port1 - port0 >= NHOP); /* one per node holding a partition, per search */
    assert_true(port2 == port1);

    /* Writes one hop: a collection of 2 partitions x 2 replicas, its route fetched before the
     * coordinators stop. */
    const char *wcoll = "sdk_hop_writes";
    dvec_collection_config wcfg;
    dvec_collection_config_init(&wcfg, DIM);
    wcfg.partitions = 2;
    wcfg.replication = 2;
    OK(dvec_collection_create(one, wcoll, &wcfg, err));
    enum { NW = 40 };
    dvec_point wp[NW];
    dvec_id wid[NW];
    for (int i = 0; i < NW; i++) {
        wid[i] = dvec_id_num(5000 + (uint64_t)i);
        wp[i] = (dvec_point){wid[i], T.vecs + (size_t)i * DIM, NULL};
    }
    OK(dvec_upsert(one, wcoll, wp, 1, DIM, err)); /* the route, before the stop */
    /* Aliases: their routes name the collection, so one hop works through them too. */
    char *arep = NULL;
    OK(dvec_admin(one, "alias_update",
                  "{\"actions\": [{\"create_alias\": {\"collection_name\": \"" COLL
                  "\", \"alias_name\": \"sdk_alias\"}}, {\"create_alias\": "
                  "{\"collection_name\": \"sdk_hop_writes\", \"alias_name\": \"sdk_walias\"}}]}",
                  &arep, err));
    free(arep);
    OK(search_ids(one, "sdk_alias", 0, ids, &n, err)); /* the routes, before the stop */
    assert_memory_equal(ids, before[0], sizeof ids);
    dvec_id aid = dvec_id_num(6000);
    dvec_point ap = {aid, T.vecs, NULL};
    OK(dvec_upsert(one, "sdk_walias", &ap, 1, DIM, err));

    signal_coords(SIGSTOP);
    printf("# every coordinator stopped\n");
    /* upsert, delete and set payload go to the primaries, which replicate them */
    dvec_error we;
    int wrc = dvec_upsert(one, wcoll, wp, NW, DIM, &we);
    uint64_t deleted = 0;
    int drc = wrc == DVEC_OK ? dvec_delete(one, wcoll, wid, 10, &deleted, &we) : wrc;
    int prc = drc == DVEC_OK ? dvec_set_payload(one, wcoll, DVEC_PAYLOAD_SET, wid + 10, 10,
                                                "{\"hop\": 1}", &we)
                             : drc;
    printf("# one-hop writes with the coordinators stopped: upsert %s, delete %s (%" PRIu64
           "), set payload %s\n",
           dvec_code_name(wrc), dvec_code_name(drc), deleted, dvec_code_name(prc));
    if (prc != DVEC_OK)
        printf("# the one that failed: %s\n", we.message);
    int bad = 0;
    for (uint32_t q = 0; q < 2 * NHOP; q++) {
        dvec_error e;
        int rc = search_ids(q < NHOP ? one : nng, COLL, q % NHOP, ids, &n, &e);
        if (rc != DVEC_OK || n != K || memcmp(ids, before[q % NHOP], sizeof ids) != 0) {
            printf("# one hop, query %u: %s \"%s\", %zu ids\n", q, dvec_code_name(rc), e.message,
                   n);
            bad++;
        }
    }
    for (uint32_t q = 0; q < NHOP; q++) {
        dvec_error e;
        int rc = search_ids(one, "sdk_alias", q, ids, &n, &e);
        if (rc != DVEC_OK || n != K || memcmp(ids, before[q], sizeof ids) != 0) {
            printf("# one hop through the alias, query %u: %s \"%s\"\n", q, dvec_code_name(rc),
                   e.message);
            bad++;
        }
    }
    dvec_id aid2 = dvec_id_num(6001);
    dvec_point ap2 = {aid2, T.vecs + DIM, NULL};
    int arc = dvec_upsert(one, "sdk_walias", &ap2, 1, DIM, &we);
    printf("# one-hop upsert through an alias with the coordinators stopped: %s\n",
           dvec_code_name(arc));
    dvec_error e;
    int rc = search_ids(via, COLL, 0, ids, &n, &e);
    printf("# via the coordinator while they are stopped: %s \"%s\"\n", dvec_code_name(rc),
           e.message);
    signal_coords(SIGCONT);
    printf("# %d of %d one-hop searches differed or failed while the coordinators were stopped\n",
           bad, 3 * NHOP);
    assert_int_equal(bad, 0);
    assert_int_equal(arc, DVEC_OK);
    assert_true(rc == DVEC_ETIMEDOUT || rc == DVEC_EIO);
    assert_int_equal(wrc, DVEC_OK);
    assert_int_equal(drc, DVEC_OK);
    assert_int_equal(deleted, 10);
    assert_int_equal(prc, DVEC_OK);
    /* Read through the coordinators, twice per replica (reads take the replicas in turn):
     * every replica holds the writes. */
    for (int round = 0; round < 4; round++) {
        dvec_records got;
        dvec_error ge;
        int grc;
        uint64_t t0 = now_ms();
        do /* the coordinators may still be electing after the stop */
            grc = dvec_get(via, wcoll, wid, NW, false, true, &got, &ge);
        while ((grc == DVEC_EBUSY || grc == DVEC_ETIMEDOUT || grc == DVEC_EIO) &&
               now_ms() - t0 < 20000 && (usleep(100 * 1000), true));
        if (grc != DVEC_OK)
            print_error("get %s: %s\n", wcoll, ge.message);
        assert_int_equal(grc, DVEC_OK);
        assert_int_equal(got.n, NW - 10);
        for (size_t j = 0; j < got.n; j++) {
            uint64_t id = got.items[j].id.num;
            assert_true(id >= 5010 && id < 5000 + NW);
            bool hop = got.items[j].payload_json && strstr(got.items[j].payload_json, "\"hop\"");
            assert_int_equal(hop, id < 5020);
        }
        dvec_records_free(&got);
    }
    /* the writes through the alias are in the collection */
    dvec_id both[2] = {aid, aid2};
    dvec_records agot;
    OK(dvec_get(via, wcoll, both, 2, false, false, &agot, err));
    assert_int_equal(agot.n, 2);
    dvec_records_free(&agot);
    OK(drop_retry(via, wcoll, err));
    char *alist = NULL;
    OK(dvec_admin(via, "alias_list", NULL, &alist, err));
    assert_non_null(strstr(alist, "sdk_alias")); /* the drop took sdk_walias only */
    assert_null(strstr(alist, "sdk_walias"));
    free(alist);

    /* A stale table: the collection made again under the same name. */
    const char *hop = "sdk_hop";
    dvec_collection_config cfg;
    dvec_collection_config_init(&cfg, DIM);
    cfg.partitions = 3;
    dvec_point pts[200];
    for (int round = 0; round < 3; round++) {
        uint32_t dim = round == 2 ? DIM / 2 : DIM;
        cfg.dim = dim;
        if (round > 0)
            OK(drop_retry(one, hop, err));
        uint64_t t0 = now_ms();
        /* The coordinators may still be electing after the stop (busy; "not the leader" from
         * one that lost its leadership under the create is busy too). */
        bool again, unsure = false;
        do {
            rc = dvec_collection_create(one, hop, &cfg, &e);
            /* a create that timed out may have been committed: its retry finds it */
            if (rc == DVEC_EEXIST && unsure)
                rc = DVEC_OK;
            again = rc == DVEC_EBUSY || rc == DVEC_ETIMEDOUT || rc == DVEC_EIO;
            unsure |= rc == DVEC_ETIMEDOUT || rc == DVEC_EIO;
            if (again)
                usleep(100 * 1000);
        } while (again && now_ms() - t0 < 20000);
        if (rc != DVEC_OK)
            print_error("create %s: %s\n", hop, e.message);
        assert_int_equal(rc, DVEC_OK);
        for (int i = 0; i < 200; i++)
            pts[i] = (dvec_point){dvec_id_num((uint64_t)round * 1000 + (uint64_t)i),
                                  T.vecs + (size_t)i * DIM, NULL};
        OK(dvec_upsert(one, hop, pts, 200, dim, err));
        float q[DIM];
        query_of(3, q);
        dvec_search_params sp;
        dvec_search_params_init(&sp);
        dvec_records r;
        OK(dvec_search(one, hop, q, dim, &sp, &r, NULL, err));
        printf("# %s, round %d (dimension %u): %zu results, first id %" PRIu64 "\n", hop, round,
               dim, r.n, r.n ? r.items[0].id.num : 0);
        assert_int_equal(r.n, K);
        for (size_t j = 0; j < r.n; j++)
            assert_true(r.items[j].id.num / 1000 == (uint64_t)round);
        dvec_records_free(&r);
    }
    OK(dvec_collection_drop(one, hop, err));
    dvec_close(one);
    dvec_close(nng);
    dvec_close(via);
}

/* No process of the cluster reported a sanitizer error (ASan and UBSan builds). */
static void test_logs_clean(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -l -E 'Sanitizer|runtime error:' %s/log/*.log", T.dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char line[256];
    bool dirty = false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        print_file(line, 4000);
        dirty = true;
    }
    pclose(f);
    assert_false(dirty);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s BUILD-ROOT SOURCE-ROOT\n", argv[0]);
        return 2;
    }
    T.build = argv[1];
    T.source = argv[2];
    signal(SIGPIPE, SIG_IGN);
    if (getenv("DVEC_SDK_ONLY"))
        cmocka_set_test_filter(getenv("DVEC_SDK_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_collections, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_search, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_score_threshold, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_get_scroll_count, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_payload_ops, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_delete, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_uuid_ids, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_errors, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_threads, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_example, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_failover, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_one_hop, case_setup, case_teardown),
        cmocka_unit_test_setup_teardown(test_logs_clean, case_setup, case_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
