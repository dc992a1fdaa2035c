/* cluster_util.h - a whole dvec cluster of real processes for integration tests: 3 dvec-coord
 * and 3 dvec-shard on 127.0.0.1, a client per coordinator, the collection COLL loaded with
 * NPTS points, what was acknowledged (C.has, C.pts_*), brute-force recall and exact checks.
 * Shared by test_cluster.c and test_rebalance.c (each uses part of it). */
#ifndef DV_CLUSTER_UTIL_H
#define DV_CLUSTER_UTIL_H

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "cmap.h"
#include "jsonmp.h"
#include "msg.h"
#include "part_util.h"
#include "place.h"
#include "rpc.h"
#include "shard_proc.h"

#pragma GCC diagnostic ignored "-Wunused-function"

#define NCO 3 /* coordinators */
#ifndef NND
#define NND 3 /* nodes (a test may define 2 to 4 before including this) */
#endif
#define DIM        32      /* dimension of the main collection */
#define NPTS       50000   /* points loaded: ids [0, NPTS) */
#define BATCH      2500    /* points per upsert request while loading */
#define NQ         200     /* queries of the recall check */
#define K          10      /* hits per query */
#define ID_SPACE   400000  /* ids the tests use stay below this */
#define COLL       "vecs"  /* the main collection */
#define COLL2      "vecs2" /* created through a follower after a failover */
#define DIM2       8
#define TIMEOUT_MS 2000  /* the coordinators' --request_timeout */
#define SLACK_MS   1500  /* what an answer "within the request timeout" may take beyond it */
#define CALL_MS    20000 /* the test's own client timeout */

static const char *const node_ids[] = {"cnode-a", "cnode-b", "cnode-c", "cnode-d"};
_Static_assert(NND <= sizeof node_ids / sizeof node_ids[0], "a name per node");

/* ---- the cluster ------------------------------------------------------------------------- */

/* One coordinator: its process (temp dir, client URL) and its raft port. */
struct co {
    struct sp_proc *p;
    uint16_t raft_port;
    char id[8];
};

/* The shared cluster and what the tests know it holds. Points are version 0 of pu_vec /
 * pu_payload; `pts_*` lists every acknowledged point of COLL in the order acknowledged. */
static struct {
    const char *coord_exe;
    struct co co[NCO];
    struct sp_proc *nd[NND];
    char group[512];
    char coord_urls[256];
    const char *node_extra[NND][10];
    const char *node_search_advertise[NND]; /* dvec-shard --search_advertise, NULL: none */
    const char *nd_ckpt_interval; /* dvec-shard --checkpoint.interval, NULL: its default */
    struct rpc *cli[NCO];         /* one client per coordinator, kept across its restarts */
    bool up;                      /* every process started */
    bool loaded;                  /* COLL created and its NPTS points acknowledged */
    uint8_t *has;                 /* [ID_SPACE]: acknowledged in COLL */
    uint64_t *pts_id;
    float *pts_vec; /* [cap * DIM] */
    size_t n_pts, cap_pts;
    uint64_t coll2_points;   /* acknowledged in COLL2 (0: not created) */
    const char *co_extra[8]; /* extra flags of every coordinator */
    int n_co_extra;
} C;

static bool case_ok; /* set at the end of each case: the teardown prints logs otherwise */

static void print_logs(void)
{
    for (int i = 0; i < NCO; i++)
        if (C.co[i].p)
            sp_dump_log(C.co[i].p, 1500);
    for (int i = 0; i < NND; i++)
        if (C.nd[i])
            sp_dump_log(C.nd[i], 1000);
}

/* Kills every process, removes every temp dir, forgets what the cluster held. */
static void cluster_destroy(void)
{
    for (int i = 0; i < NCO; i++) {
        rpc_close(C.cli[i]);
        C.cli[i] = NULL;
    }
    sp_cleanup_all();
    free(C.has);
    free(C.pts_id);
    free(C.pts_vec);
    const char *exe = C.coord_exe, *extra[8], *sadv[NND];
    int n_extra = C.n_co_extra;
    memcpy(extra, C.co_extra, sizeof extra);
    memcpy(sadv, C.node_search_advertise, sizeof sadv);
    memset(&C, 0, sizeof C);
    C.coord_exe = exe;
    C.n_co_extra = n_extra;
    memcpy(C.co_extra, extra, sizeof extra);
    memcpy(C.node_search_advertise, sadv, sizeof sadv); /* the program's, like the rest */
}

/* A port nothing listens on right now (a later collision is still retried). */
static uint16_t free_port(void)
{
    for (int i = 0; i < 64; i++) {
        uint16_t port = sp_port();
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return port;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc == 0)
            return port;
    }
    return sp_port();
}

/* The cluster status of a coordinator as JSON (NULL with err when it does not answer). */
static json_t *status_of(struct rpc *r, char *err)
{
    struct msg m = {.type = MSG_CLUSTER};
    struct msg_reply rep;
    err[0] = '\0';
    int rc = rpc_call(r, &m, &rep, err);
    json_t *j = NULL;
    if (rc == DV_OK) {
        const struct msg_bytes *s = &rep.m.u.cluster_rep.status;
        if (jsonmp_to_json(s->p, s->len, &j, err) != DV_OK)
            j = NULL;
    }
    msg_reply_free(&rep);
    return j;
}

static uint64_t jint(const json_t *obj, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(obj, key));
}

static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* Starts coordinator i on its data dir (the ports and group are set). */
static void co_spawn(int i)
{
    struct sp_proc *p = C.co[i].p;
    snprintf(p->log, sizeof p->log, "%s/log.%d", p->base, ++p->runs);
    /* DVEC_ITEST_REQUEST_TIMEOUT: longer for runs against sanitizer builds (TSan). */
    const char *rtimeout =
        getenv("DVEC_ITEST_REQUEST_TIMEOUT") ? getenv("DVEC_ITEST_REQUEST_TIMEOUT") : "2s";
    const char *argv[24] = {C.coord_exe, "--id",     C.co[i].id, "--data_dir",
                            p->data,     "--listen", p->url,     "--http",
                            "",          "--group",  C.group,    "--request_timeout",
                            rtimeout,    NULL};
    for (int k = 0; k < C.n_co_extra && k < 8; k++)
        argv[13 + k] = C.co_extra[k];
    p->exited = false;
    p->pid = sp_fork_exec((char *const *)argv, p->log);
    if (p->pid < 0)
        p->pid = 0;
}

/*
 * Waits (at most timeout_ms) until coordinator i answers a cluster request as itself.
 * DV_OK; DV_EEXIST when it exited because a port was taken; DV_EOS when it exited otherwise;
 * DV_ETIMEDOUT.
 */
static int co_wait(int i, uint64_t timeout_ms)
{
    struct sp_proc *p = C.co[i].p;
    struct rpc_opts o;
    rpc_opts_default(&o);
    o.timeout_ms = 250;
    uint64_t end = clock_mono_ms() + timeout_ms;
    while (clock_mono_ms() < end) {
        if (sp_reap(p)) {
            struct buf b = BUF_INIT;
            sp_read_file(p->log, &b);
            const char *t = b.data ? (const char *)b.data : "";
            /* The client port: "Address in use"; raft's port: raft_start fails. */
            bool taken = strstr(t, "in use") != NULL || strstr(t, "raft_start") != NULL;
            buf_free(&b);
            return taken ? DV_EEXIST : DV_EOS;
        }
        struct rpc *r;
        char err[DV_ERRMSG_SIZE];
        /* Dial only a listening port: closing an nng socket whose dialer is still retrying
         * a refused connection leaked nng's pipe objects now and then (LeakSanitizer, an
         * ASan CI run; all indirect, inside libnng). */
        if (p->pid > 0 && sp_port_open(p->port) && rpc_open(p->url, &o, &r, err) == DV_OK) {
            json_t *st = status_of(r, err);
            rpc_close(r);
            bool me = st && jint(json_object_get(st, "coordinator"), "id") == (uint64_t)(i + 1);
            json_decref(st);
            if (me)
                return DV_OK;
        }
        clock_sleep_ms(10);
    }
    return DV_ETIMEDOUT;
}

/* Starts the 3 coordinators on fresh ports; on a port collision all start over on others. */
static void coords_start(void)
{
    for (int attempt = 0; attempt < 6; attempt++) {
        size_t len = 0, ulen = 0;
        for (int i = 0; i < NCO; i++) {
            struct co *c = &C.co[i];
            if (c->p == NULL) {
                c->p = sp_new(false, NULL, 0);
                assert_non_null(c->p);
                snprintf(c->id, sizeof c->id, "%d", i + 1);
            }
            c->p->port = free_port();
            c->raft_port = free_port();
            snprintf(c->p->url, sizeof c->p->url, "tcp://127.0.0.1:%u", (unsigned)c->p->port);
            len += (size_t)snprintf(C.group + len, sizeof C.group - len, "%s%d=127.0.0.1:%u=%s",
                                    i ? "," : "", i + 1, (unsigned)c->raft_port, c->p->url);
            ulen += (size_t)snprintf(C.coord_urls + ulen, sizeof C.coord_urls - ulen, "%s%s",
                                     i ? "," : "", c->p->url);
        }
        for (int i = 0; i < NCO; i++)
            co_spawn(i);
        int rc = DV_OK, bad = 0;
        for (int i = 0; i < NCO && rc == DV_OK; i++)
            if ((rc = co_wait(i, 20000)) != DV_OK)
                bad = i;
        if (rc == DV_OK)
            return;
        /* A bootstrapped raft dir remembers the group's addresses: start over empty. */
        for (int i = 0; i < NCO; i++) {
            sp_kill9(C.co[i].p);
            char cmd[160];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", C.co[i].p->data);
            assert_int_equal(system(cmd), 0);
        }
        if (rc != DV_EEXIST) {
            sp_dump_log(C.co[bad].p, 2000);
            fail_msg("dvec-coord %d did not start: %s", bad + 1, dv_errname(rc));
        }
        printf("# coordinator ports taken (%s); retrying on others\n", C.group);
    }
    fail_msg("no free ports for the coordinators");
}

/* Polls every running coordinator until one is the ready leader; its index, -1 on timeout. */
static int wait_leader(uint64_t timeout_ms)
{
    uint64_t end = clock_mono_ms() + timeout_ms;
    do {
        for (int i = 0; i < NCO; i++) {
            if (C.co[i].p->pid == 0)
                continue;
            char err[DV_ERRMSG_SIZE];
            json_t *st = status_of(C.cli[i], err);
            json_t *me = st ? json_object_get(st, "coordinator") : NULL;
            bool leader = me && strcmp(jstr(me, "state"), "leader") == 0 &&
                          json_is_true(json_object_get(me, "leader_ready"));
            json_decref(st);
            if (leader)
                return i;
        }
        clock_sleep_ms(5);
    } while (clock_mono_ms() < end);
    return -1;
}

/* Number of our nodes the status lists as `state`. */
static int nodes_in_state(const json_t *st, const char *state)
{
    json_t *nodes = json_object_get(st, "nodes"), *n;
    size_t i;
    int count = 0;
    json_array_foreach(nodes, i, n)
    {
        for (int k = 0; k < NND; k++)
            if (strcmp(jstr(n, "id"), node_ids[k]) == 0 && strcmp(jstr(n, "state"), state) == 0)
                count++;
    }
    return count;
}

/* Waits until coordinator `via` sees every node alive. */
static void wait_nodes_alive(int via, uint64_t timeout_ms)
{
    uint64_t end = clock_mono_ms() + timeout_ms;
    int alive = 0;
    while (clock_mono_ms() < end) {
        char err[DV_ERRMSG_SIZE];
        json_t *st = status_of(C.cli[via], err);
        alive = st ? nodes_in_state(st, "alive") : 0;
        json_decref(st);
        if (alive == NND)
            return;
        clock_sleep_ms(20);
    }
    print_logs();
    fail_msg("%d of %d nodes alive after %" PRIu64 " ms", alive, NND, timeout_ms);
}

/* Starts node i (again, on its data dir). */
static void node_start(int i)
{
    int rc = sp_start(C.nd[i]);
    if (rc != DV_OK)
        fail_msg("dvec-shard %s did not start: %s", node_ids[i], dv_errname(rc));
}

/* Starts the coordinators, a client of each, and the first n_started of the nodes (all of
 * them are set up), and waits for a leader. */
static void cluster_spawn(int n_started)
{
    C.has = calloc(ID_SPACE, 1);
    assert_non_null(C.has);
    coords_start();
    for (int i = 0; i < NCO; i++) {
        struct rpc_opts o;
        char err[DV_ERRMSG_SIZE];
        rpc_opts_default(&o);
        o.timeout_ms = CALL_MS;
        assert_int_equal(rpc_open(C.co[i].p->url, &o, &C.cli[i], err), DV_OK);
    }
    for (int i = 0; i < NND; i++) {
        const char **x = C.node_extra[i];
        x[0] = "--coordinators", x[1] = C.coord_urls, x[2] = "--report_interval";
        x[3] = "200ms", x[4] = "--node_id", x[5] = node_ids[i];
        size_t nx = 6;
        if (C.nd_ckpt_interval)
            x[nx++] = "--checkpoint.interval", x[nx++] = C.nd_ckpt_interval;
        if (C.node_search_advertise[i])
            x[nx++] = "--search_advertise", x[nx++] = C.node_search_advertise[i];
        C.nd[i] = sp_new(false, x, nx);
        assert_non_null(C.nd[i]);
        if (i < n_started)
            node_start(i);
    }
    assert_true(wait_leader(10000) >= 0);
}

/* Starts 3 coordinators and 3 nodes that register with them. */
static void cluster_start(void)
{
    uint64_t t0 = clock_mono_ms();
    cluster_spawn(NND);
    wait_nodes_alive(0, 10000);
    C.up = true;
    printf("# cluster of %d coordinators and %d nodes up in %" PRIu64 " ms\n", NCO, NND,
           clock_mono_ms() - t0);
}

/* True when every process of the cluster runs. */
static bool cluster_running(void)
{
    if (!C.up)
        return false;
    for (int i = 0; i < NCO; i++)
        if (sp_reap(C.co[i].p))
            return false;
    for (int i = 0; i < NND; i++)
        if (sp_reap(C.nd[i]))
            return false;
    return true;
}

/* Fails the case when a process of the cluster reported a sanitizer error (ASan and UBSan
 * builds): a child's report would otherwise go unseen in its log. */
static void logs_clean(void)
{
    struct buf b = BUF_INIT;
    for (int i = 0; i < NCO + NND; i++) {
        const struct sp_proc *p = i < NCO ? C.co[i].p : C.nd[i - NCO];
        for (int run = 1; p && run <= p->runs; run++) {
            char path[sizeof p->base + 16];
            snprintf(path, sizeof path, "%s/log.%d", p->base, run);
            sp_read_file(path, &b);
            const char *t = b.data ? (const char *)b.data : "";
            if (strstr(t, "Sanitizer") || strstr(t, "runtime error:")) {
                struct sp_proc q = *p;
                snprintf(q.log, sizeof q.log, "%s", path);
                sp_dump_log(&q, 4000);
                fail_msg("sanitizer report in %s", path);
            }
        }
    }
    buf_free(&b);
}

static int teardown(void **state)
{
    (void)state;
    if (!case_ok) {
        print_logs();
        cluster_destroy();
    } else if (!cluster_running()) {
        cluster_destroy();
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cluster_destroy();
    return 0;
}

/* ---- requests ---------------------------------------------------------------------------- */

static struct msg creq(int type, const char *coll)
{
    struct msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    if (coll)
        m.addr.coll = (struct msg_str){coll, (uint32_t)strlen(coll)};
    return m;
}

static int call(struct rpc *r, const struct msg *req, struct msg_reply *rep, char *err)
{
    err[0] = '\0';
    return rpc_call(r, req, rep, err);
}

static void call_ok(struct rpc *r, const struct msg *req, struct msg_reply *rep)
{
    char err[DV_ERRMSG_SIZE];
    int rc = call(r, req, rep, err);
    if (rc != DV_OK)
        print_error("%s: %s: %s\n", msg_type_name(req->type), dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
}

/* A request that must fail with `code` and a message holding `text` (when not NULL). */
static void call_fails(struct rpc *r, const struct msg *req, int code, const char *text)
{
    char err[DV_ERRMSG_SIZE];
    struct msg_reply rep;
    int rc = call(r, req, &rep, err);
    printf("# %s: %s \"%s\"\n", msg_type_name(req->type), dv_errname(rc), err);
    if (rc != code || (text && strstr(err, text) == NULL))
        print_error("%s: got %s \"%s\", want %s \"%s\"\n", msg_type_name(req->type), dv_errname(rc),
                    err, dv_errname(code), text ? text : "");
    assert_int_equal(rc, code);
    assert_true(err[0] != '\0');
    if (text)
        assert_non_null(strstr(err, text));
    msg_reply_free(&rep);
}

static int coll_create(struct rpc *r, const char *name, uint32_t dim, uint32_t parts, char *err)
{
    struct msg m = creq(MSG_COLL_CREATE, name);
    m.u.coll_cfg = (struct msg_coll_cfg){.dim = dim, .metric = CMAP_METRIC_L2, .partitions = parts};
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    msg_reply_free(&rep);
    return rc;
}

static void coll_create_ok(struct rpc *r, const char *name, uint32_t dim)
{
    char err[DV_ERRMSG_SIZE];
    int rc = coll_create(r, name, dim, 0, err);
    if (rc != DV_OK)
        print_error("create %s: %s: %s\n", name, dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
}

/* Upserts version 0 of `ids` (vectors of `dim`, payloads) into `coll`. */
static int upsert_ids(struct rpc *r, const char *coll, uint32_t dim, const uint64_t *ids,
                      uint32_t n, char *err)
{
    struct msg m = creq(MSG_P_UPSERT, coll);
    struct pid *pids = calloc(n, sizeof *pids);
    float *vecs = malloc((size_t)n * dim * sizeof *vecs);
    struct msg_bytes *pl = calloc(n, sizeof *pl);
    size_t *off = calloc(n, sizeof *off);
    struct buf all = BUF_INIT, one = BUF_INIT;
    assert_true(pids && vecs && pl && off);
    for (uint32_t i = 0; i < n; i++) {
        pids[i] = pid_num(ids[i]);
        pu_vec(ids[i], 0, dim, vecs + (size_t)i * dim);
        pu_payload(ids[i], 0, &one);
        off[i] = all.len;
        assert_int_equal(buf_append(&all, one.data, one.len), DV_OK);
        pl[i].len = (uint32_t)one.len;
    }
    for (uint32_t i = 0; i < n; i++)
        pl[i].p = all.data + off[i];
    m.u.upsert_req = (struct msg_upsert_req){pids, vecs, pl, n, dim, NULL};
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    if (rc == DV_OK && rep.m.u.write_rep.affected != n) {
        snprintf(err, DV_ERRMSG_SIZE, "upsert of %u points says %" PRIu64 " written", n,
                 rep.m.u.write_rep.affected);
        rc = DV_EPROTO;
    }
    msg_reply_free(&rep);
    free(pids);
    free(vecs);
    free(pl);
    free(off);
    buf_free(&all);
    buf_free(&one);
    return rc;
}

/* Notes ids as acknowledged in COLL. */
static void ack(const uint64_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        assert_true(ids[i] < ID_SPACE);
        if (C.has[ids[i]])
            continue;
        if (C.n_pts == C.cap_pts) {
            C.cap_pts = C.cap_pts ? C.cap_pts * 2 : 65536;
            C.pts_id = realloc(C.pts_id, C.cap_pts * sizeof *C.pts_id);
            C.pts_vec = realloc(C.pts_vec, C.cap_pts * DIM * sizeof *C.pts_vec);
            assert_true(C.pts_id && C.pts_vec);
        }
        C.has[ids[i]] = 1;
        C.pts_id[C.n_pts] = ids[i];
        pu_vec(ids[i], 0, DIM, C.pts_vec + C.n_pts * DIM);
        C.n_pts++;
    }
}

/* Upserts ids into COLL through r; they must be acknowledged. */
static void upsert_ok(struct rpc *r, const uint64_t *ids, uint32_t n)
{
    char err[DV_ERRMSG_SIZE];
    int rc = upsert_ids(r, COLL, DIM, ids, n, err);
    if (rc != DV_OK)
        print_error("upsert of %u points: %s: %s\n", n, dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    ack(ids, n);
}

static int count_of(struct rpc *r, const char *coll, const char *filter_json, uint64_t *out,
                    char *err)
{
    struct buf f = BUF_INIT;
    struct msg m = creq(MSG_P_COUNT, coll);
    if (filter_json) {
        assert_int_equal(jsonmp_from_text(filter_json, strlen(filter_json), &f, err), DV_OK);
        m.u.count_req.filter = (struct msg_bytes){f.data, (uint32_t)f.len};
    }
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    if (rc == DV_OK)
        *out = rep.m.u.count_rep.count;
    msg_reply_free(&rep);
    buf_free(&f);
    return rc;
}

static uint64_t count_ok(struct rpc *r, const char *coll, const char *filter_json)
{
    char err[DV_ERRMSG_SIZE];
    uint64_t n = 0;
    int rc = count_of(r, coll, filter_json, &n, err);
    if (rc != DV_OK)
        print_error("count %s: %s: %s\n", coll, dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    return n;
}

/* Query i of the tests (not a point of the collection). */
static void query_vec(uint32_t i, float *v)
{
    pu_vec(5000000 + (uint64_t)i, 7, DIM, v);
}

/* Searches queries [first, first + n) of collection coll for K hits at the default ef;
 * fills *rep. */
static int search_in(struct rpc *r, const char *coll, uint32_t first, uint32_t n,
                     bool allow_partial, const char *filter, struct msg_reply *rep, char *err)
{
    float *qv = malloc((size_t)n * DIM * sizeof *qv);
    struct msg_query *q = calloc(n, sizeof *q);
    struct buf f = BUF_INIT;
    assert_true(qv && q);
    if (filter)
        assert_int_equal(jsonmp_from_text(filter, strlen(filter), &f, err), DV_OK);
    for (uint32_t i = 0; i < n; i++) {
        query_vec(first + i, qv + (size_t)i * DIM);
        q[i] = (struct msg_query){.vec = qv + (size_t)i * DIM, .dim = DIM, .k = K};
        if (filter) {
            q[i].filter = (struct msg_bytes){f.data, (uint32_t)f.len};
            q[i].with_payload = true;
        }
    }
    struct msg m = creq(MSG_P_SEARCH, coll);
    m.u.csearch_req = (struct msg_csearch_req){q, n, allow_partial, 0};
    int rc = call(r, &m, rep, err);
    free(qv);
    free(q);
    buf_free(&f);
    return rc;
}

static int search(struct rpc *r, uint32_t first, uint32_t n, bool allow_partial, const char *filter,
                  struct msg_reply *rep, char *err)
{
    return search_in(r, COLL, first, n, allow_partial, filter, rep, err);
}

static double l2sq(const float *a, const float *b)
{
    double s = 0;
    for (int d = 0; d < DIM; d++) {
        double x = (double)a[d] - b[d];
        s += x * x;
    }
    return s;
}

/* The exact K nearest acknowledged points to query qi; `skip` (NULL: none) leaves out the
 * points of the partitions it flags. Returns how many (< K only for tiny sets). */
static size_t oracle(uint32_t qi, const bool *skip, uint32_t np, uint64_t *ids)
{
    float q[DIM];
    double dist[K];
    size_t nb = 0;
    query_vec(qi, q);
    for (size_t i = 0; i < C.n_pts; i++) {
        if (skip) {
            struct pid id = pid_num(C.pts_id[i]);
            if (skip[place_partition_of(&id, np)])
                continue;
        }
        pu_topk_offer(dist, ids, &nb, K, l2sq(q, C.pts_vec + i * DIM), C.pts_id[i]);
    }
    return nb;
}

static size_t overlap(const uint64_t *a, size_t na, const struct msg_hits *h)
{
    size_t c = 0;
    for (size_t i = 0; i < na; i++)
        for (uint32_t j = 0; j < h->n; j++)
            if (h->hits[j].id.lo == a[i]) {
                c++;
                break;
            }
    return c;
}

/*
 * Checks one query's hits: ids acknowledged, best first, scores the distances (the merge of
 * per-partition lists must keep the K best in order). Returns the hits that are among the
 * oracle's K.
 */
static size_t check_hits(uint32_t qi, const struct msg_hits *h, const bool *skip, uint32_t np)
{
    float q[DIM], v[DIM];
    query_vec(qi, q);
    assert_int_equal(h->n, K);
    for (uint32_t j = 0; j < h->n; j++) {
        const struct msg_hit *x = &h->hits[j];
        assert_int_equal(x->id.kind, PID_NUM);
        assert_true(x->id.lo < ID_SPACE && C.has[x->id.lo]);
        pu_vec(x->id.lo, 0, DIM, v);
        assert_float_equal(x->score, sqrt(l2sq(q, v)), 1e-4);
        if (j > 0)
            assert_true(x->score >= h->hits[j - 1].score);
        if (skip)
            assert_false(skip[place_partition_of(&x->id, np)]);
    }
    uint64_t want[K];
    size_t nw = oracle(qi, skip, np, want);
    return overlap(want, nw, h);
}

/* Searches the NQ queries through coordinator `via`; returns recall@K, ids into out[NQ][K]. */
static double recall_via(int via, uint64_t (*out)[K])
{
    size_t good = 0;
    for (uint32_t first = 0; first < NQ; first += 50) {
        struct msg_reply rep;
        char err[DV_ERRMSG_SIZE];
        int rc = search(C.cli[via], first, 50, false, NULL, &rep, err);
        if (rc != DV_OK)
            print_error("search through coordinator %d: %s: %s\n", via + 1, dv_errname(rc), err);
        assert_int_equal(rc, DV_OK);
        const struct msg_csearch_rep *s = &rep.m.u.csearch_rep;
        assert_int_equal(s->n, 50);
        assert_false(s->partial);
        assert_int_equal(s->n_failed, 0);
        for (uint32_t i = 0; i < 50; i++) {
            good += check_hits(first + i, &s->results[i], NULL, 0);
            for (uint32_t j = 0; j < K; j++)
                out[first + i][j] = s->results[i].hits[j].id.lo;
        }
        msg_reply_free(&rep);
    }
    return (double)good / (NQ * K);
}

/*
 * Gets every acknowledged point of COLL through r (with vectors) and checks each is there
 * with its vector; and that the count is exactly the acknowledged number.
 */
static void check_all_acked(struct rpc *r)
{
    assert_int_equal(count_ok(r, COLL, NULL), C.n_pts);
    uint64_t good = 0;
    bool printed = false;
    struct pid *ids = calloc(5000, sizeof *ids);
    assert_non_null(ids);
    for (size_t at = 0; at < C.n_pts; at += 5000) {
        uint32_t n = (uint32_t)(C.n_pts - at < 5000 ? C.n_pts - at : 5000);
        for (uint32_t i = 0; i < n; i++)
            ids[i] = pid_num(C.pts_id[at + i]);
        struct msg m = creq(MSG_P_GET, COLL);
        m.u.get_req = (struct msg_get_req){ids, n, true, false};
        struct msg_reply rep;
        call_ok(r, &m, &rep);
        const struct msg_hits *h = &rep.m.u.get_rep;
        uint32_t j = 0;
        for (uint32_t i = 0; i < n; i++) {
            const float *want = C.pts_vec + (at + i) * DIM;
            bool ok = j < h->n && h->hits[j].id.lo == C.pts_id[at + i];
            if (ok) {
                const struct msg_hit *x = &h->hits[j++];
                ok = x->vec && x->dim == DIM && memcmp(x->vec, want, DIM * sizeof(float)) == 0;
            }
            if (ok)
                good++;
            else if (!printed) {
                printf("# acknowledged point %" PRIu64 " is missing or differs\n",
                       C.pts_id[at + i]);
                printed = true;
            }
        }
        msg_reply_free(&rep);
    }
    free(ids);
    assert_int_equal(good, C.n_pts);
}

/* The placement of COLL as coll_info says: the primary node's index (in node_ids) per
 * partition. Returns the partition count. */
static uint32_t placement(struct rpc *r, int *node_of, uint32_t cap)
{
    struct msg m = creq(MSG_COLL_INFO, COLL);
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    const struct msg_coll_info_rep *in = &rep.m.u.coll_info_rep;
    assert_true(in->n_parts <= cap);
    for (uint32_t p = 0; p < in->n_parts; p++) {
        assert_int_equal(in->parts[p].part, p);
        assert_int_equal(in->parts[p].n_nodes, 1);
        node_of[p] = -1;
        for (int k = 0; k < NND; k++)
            if (in->parts[p].nodes[0].len == strlen(node_ids[k]) &&
                memcmp(in->parts[p].nodes[0].p, node_ids[k], strlen(node_ids[k])) == 0)
                node_of[p] = k;
        assert_true(node_of[p] >= 0);
    }
    uint32_t np = in->n_parts;
    msg_reply_free(&rep);
    return np;
}

/* ---- loading ----------------------------------------------------------------------------- */

/* Creates COLL through coordinator 0 and loads NPTS points through coordinator 1. */
static void load(void)
{
    uint64_t t0 = clock_mono_ms();
    coll_create_ok(C.cli[0], COLL, DIM);
    uint64_t t1 = clock_mono_ms();
    uint64_t *ids = malloc(BATCH * sizeof *ids);
    assert_non_null(ids);
    for (uint64_t at = 0; at < NPTS; at += BATCH) {
        for (uint32_t i = 0; i < BATCH; i++)
            ids[i] = at + i;
        upsert_ok(C.cli[1], ids, BATCH);
    }
    free(ids);
    C.loaded = true;
    uint64_t t2 = clock_mono_ms();
    printf("# collection created in %" PRIu64 " ms; %d points loaded in %" PRIu64
           " ms (%.0f points/s)\n",
           t1 - t0, NPTS, t2 - t1, NPTS * 1000.0 / (double)(t2 - t1 ? t2 - t1 : 1));
}

/* Makes sure the cluster runs and holds the loaded collection (a case run alone, or after a
 * failed one, builds it). */
static void need_cluster(void)
{
    case_ok = false;
    if (!cluster_running())
        cluster_destroy();
    if (!C.up)
        cluster_start();
    if (!C.loaded)
        load();
}

#endif
