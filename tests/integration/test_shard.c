/* test_shard.c - integration tests of dvec-shard: real processes on 127.0.0.1 driven with the
 * native protocol (proto/rpc.h): every operation, epochs, bad input, kill -9 and SIGTERM under
 * write load, command line, HTTP endpoints. argv[1] is the dvec-shard executable.
 * DVEC_ITEST_ONLY='test_sigterm*' runs matching cases only; DVEC_ITEST_PORT sets the first
 * port (shard_proc.h). */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "jsonmp.h"
#include "msg.h"
#include "part_util.h"
#include "rpc.h"
#include "shard_cfg.h"
#include "tcpcall.h"
#include "shard_proc.h"
#include "shard_case.h"

#define DIM  16
#define COLL "itest"

/* ---- clients and requests ---------------------------------------------------------------- */

static struct msg req_of(int type, const char *coll, uint32_t part, uint64_t epoch)
{
    struct msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.addr.coll = (struct msg_str){coll, (uint32_t)strlen(coll)};
    m.addr.part = part;
    m.addr.epoch = epoch;
    return m;
}

static int create(struct rpc *r, const char *coll, uint32_t part, uint64_t epoch, uint32_t dim,
                  uint32_t fsync, char *err)
{
    struct msg m = req_of(MSG_REPLICA_CREATE, coll, part, epoch);
    m.u.create_req =
        (struct msg_create_req){.cfg = {.dim = dim, .metric = HNSW_L2, .fsync = fsync}};
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    msg_reply_free(&rep);
    return rc;
}

static void create_ok(struct rpc *r, const char *coll, uint32_t part, uint64_t epoch,
                      uint32_t fsync)
{
    char err[DV_ERRMSG_SIZE];
    int rc = create(r, coll, part, epoch, DIM, fsync, err);
    if (rc != DV_OK)
        print_error("create %s/%u: %s: %s\n", coll, part, dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
}

/* An upsert of ids [first, first + n), version ver (vectors pu_vec, payloads pu_payload
 * written with mpw_*), encoded into m; free with upsert_free. vec_dim may differ from dim
 * to make a wrong-dimension request. */
struct upsert_data {
    struct pid *ids;
    float *vecs;
    struct msg_bytes *pl;
    struct buf all;
};

static void upsert_free(struct upsert_data *u);

/* Fills *u and m's upsert body. DV_ENOMEM (u then holds nothing). Thread-safe. */
static int upsert_build(struct msg *m, struct upsert_data *u, uint64_t first, uint32_t n,
                        uint32_t ver, uint32_t dim, bool payloads)
{
    u->ids = calloc(n ? n : 1, sizeof *u->ids);
    u->vecs = malloc(((size_t)n * dim + 1) * sizeof *u->vecs);
    u->pl = calloc(n ? n : 1, sizeof *u->pl);
    buf_init(&u->all);
    size_t *off = calloc(n ? n : 1, sizeof *off);
    struct buf one = BUF_INIT;
    int rc = u->ids && u->vecs && u->pl && off ? DV_OK : DV_ENOMEM;
    for (uint32_t i = 0; i < n && rc == DV_OK; i++) {
        u->ids[i] = pid_num(first + i);
        pu_vec(first + i, ver, dim, u->vecs + (size_t)i * dim);
        if (payloads) {
            pu_payload(first + i, ver, &one);
            off[i] = u->all.len;
            rc = buf_append(&u->all, one.data, one.len);
            u->pl[i].len = (uint32_t)one.len;
        }
    }
    for (uint32_t i = 0; rc == DV_OK && payloads && i < n; i++)
        u->pl[i].p = u->all.data + off[i];
    free(off);
    buf_free(&one);
    if (rc != DV_OK) {
        upsert_free(u);
        return rc;
    }
    m->u.upsert_req = (struct msg_upsert_req){u->ids, u->vecs, u->pl, n, dim, NULL};
    return DV_OK;
}

static void upsert_free(struct upsert_data *u)
{
    free(u->ids);
    free(u->vecs);
    free(u->pl);
    buf_free(&u->all);
}

/* Upserts ids [first, first + n) in version ver. Thread-safe (no cmocka asserts on the
 * success path). */
static int upsert_range(struct rpc *r, const char *coll, uint32_t part, uint64_t epoch,
                        uint64_t first, uint32_t n, uint32_t ver, uint64_t *lsn, char *err)
{
    struct msg m = req_of(MSG_UPSERT, coll, part, epoch);
    struct upsert_data u;
    if (upsert_build(&m, &u, first, n, ver, DIM, true) != DV_OK) {
        snprintf(err, DV_ERRMSG_SIZE, "out of memory");
        return DV_ENOMEM;
    }
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    if (rc == DV_OK) {
        if (lsn)
            *lsn = rep.m.u.write_rep.lsn;
        if (rep.m.u.write_rep.affected != n) {
            snprintf(err, DV_ERRMSG_SIZE, "upsert of %u points says %" PRIu64 " written", n,
                     rep.m.u.write_rep.affected);
            rc = DV_EPROTO;
        }
    }
    msg_reply_free(&rep);
    upsert_free(&u);
    return rc;
}

static uint64_t upsert_ok(struct rpc *r, const char *coll, uint32_t part, uint64_t epoch,
                          uint64_t first, uint32_t n)
{
    char err[DV_ERRMSG_SIZE];
    uint64_t lsn = 0;
    int rc = upsert_range(r, coll, part, epoch, first, n, 0, &lsn, err);
    if (rc != DV_OK)
        print_error("upsert: %s: %s\n", dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    return lsn;
}

/* A filter (or set-payload data) from JSON text, as one msgpack value. */
static struct msg_bytes mp_of(struct buf *b, const char *json)
{
    char err[DV_ERRMSG_SIZE];
    buf_reset(b);
    int rc = jsonmp_from_text(json, strlen(json), b, err);
    if (rc != DV_OK)
        print_error("bad JSON in the test: %s: %s\n", json, err);
    assert_int_equal(rc, DV_OK);
    return (struct msg_bytes){b->data, (uint32_t)b->len};
}

static uint64_t count_of(struct rpc *r, const char *coll, uint32_t part, uint64_t epoch,
                         const char *filter_json)
{
    struct buf f = BUF_INIT;
    struct msg m = req_of(MSG_COUNT, coll, part, epoch);
    if (filter_json)
        m.u.count_req.filter = mp_of(&f, filter_json);
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    uint64_t n = rep.m.u.count_rep.count;
    msg_reply_free(&rep);
    buf_free(&f);
    return n;
}

static struct msg_info_rep info_of(struct rpc *r, const char *coll, uint32_t part, uint64_t epoch)
{
    struct msg m = req_of(MSG_REPLICA_INFO, coll, part, epoch);
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    struct msg_info_rep in = rep.m.u.info_rep;
    msg_reply_free(&rep);
    return in;
}

/*
 * Gets ids [first, first + n) and counts those present with the vector (and, when
 * `payload`, the payload) of version ver, in request order. Prints the first mismatch.
 */
static uint64_t check_range(struct rpc *r, const char *coll, uint32_t part, uint64_t epoch,
                            uint64_t first, uint64_t n, uint32_t ver, bool payload)
{
    uint64_t good = 0;
    bool printed = false;
    struct buf want = BUF_INIT;
    float v[DIM];
    for (uint64_t at = first; at < first + n; at += 1000) {
        uint32_t k = (uint32_t)(first + n - at < 1000 ? first + n - at : 1000);
        struct pid *ids = calloc(k, sizeof *ids);
        assert_non_null(ids);
        for (uint32_t i = 0; i < k; i++)
            ids[i] = pid_num(at + i);
        struct msg m = req_of(MSG_GET, coll, part, epoch);
        m.u.get_req = (struct msg_get_req){ids, k, true, payload};
        struct msg_reply rep;
        call_ok(r, &m, &rep);
        const struct msg_hits *h = &rep.m.u.get_rep;
        uint32_t j = 0;
        for (uint32_t i = 0; i < k; i++) {
            uint64_t id = at + i;
            bool ok = j < h->n && h->hits[j].id.kind == PID_NUM && h->hits[j].id.lo == id;
            const char *why = "missing";
            if (ok) {
                const struct msg_hit *x = &h->hits[j++];
                pu_vec(id, ver, DIM, v);
                if (x->vec == NULL || x->dim != DIM || memcmp(x->vec, v, sizeof v) != 0) {
                    ok = false;
                    why = "vector differs";
                } else if (payload) {
                    pu_payload(id, ver, &want);
                    if (x->payload.p == NULL || x->payload.len != want.len ||
                        memcmp(x->payload.p, want.data, want.len) != 0) {
                        ok = false;
                        why = "payload differs";
                    }
                }
            }
            if (ok)
                good++;
            else if (!printed) {
                printf("# %s/%u id %" PRIu64 ": %s\n", coll, part, id, why);
                printed = true;
            }
        }
        msg_reply_free(&rep);
        free(ids);
    }
    buf_free(&want);
    return good;
}

/* How many of ids [first, first + n) the replica holds (n <= 1000). */
static uint32_t present(struct rpc *r, const char *coll, uint32_t part, uint64_t epoch,
                        uint64_t first, uint32_t n)
{
    struct pid ids[1000];
    assert_true(n <= 1000);
    for (uint32_t i = 0; i < n; i++)
        ids[i] = pid_num(first + i);
    struct msg m = req_of(MSG_GET, coll, part, epoch);
    m.u.get_req = (struct msg_get_req){ids, n, false, false};
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    uint32_t got = rep.m.u.get_rep.n;
    msg_reply_free(&rep);
    return got;
}

/* ---- brute-force oracle ------------------------------------------------------------------ */

static double l2sq(const float *a, const float *b)
{
    double s = 0;
    for (int d = 0; d < DIM; d++) {
        double x = (double)a[d] - b[d];
        s += x * x;
    }
    return s;
}

/* The exact k nearest of ids [first, first + n) (version 0) to q. */
static void oracle(const float *q, uint64_t first, uint64_t n, size_t k, uint64_t *ids,
                   double *dist)
{
    float v[DIM];
    size_t nb = 0;
    for (uint64_t id = first; id < first + n; id++) {
        pu_vec(id, 0, DIM, v);
        pu_topk_offer(dist, ids, &nb, k, l2sq(q, v), id);
    }
}

static size_t overlap(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    size_t c = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (a[i] == b[j]) {
                c++;
                break;
            }
    return c;
}

static bool payload_has(const struct msg_bytes *pl, const char *key)
{
    const uint8_t *v;
    size_t vl;
    return pl->p && mpk_map_find(pl->p, pl->len, key, strlen(key), &v, &vl) == DV_OK;
}

static int64_t payload_int(const struct msg_bytes *pl, const char *key)
{
    const uint8_t *v;
    size_t vl;
    struct mpk r;
    int64_t x;
    if (pl->p == NULL || mpk_map_find(pl->p, pl->len, key, strlen(key), &v, &vl) != DV_OK)
        return -1;
    mpk_init(&r, v, vl);
    return mpk_i64(&r, &x) == DV_OK ? x : -1;
}

/* ---- 1. every operation ------------------------------------------------------------------ */

#define N0 3000 /* part 0: ids [0, N0) */
#define N1 2000 /* part 1: ids [N0, N0 + N1) */
#define NQ 20
#define K  10

/* Searches NQ queries on the given partitions; checks recall@K per partition and over the
 * merged results against the oracle. */
static void check_search(struct rpc *r, const uint32_t *parts, uint32_t np)
{
    float qv[NQ][DIM];
    struct msg_query q[NQ];
    struct msg_target t[2];
    for (uint32_t i = 0; i < np; i++)
        t[i] = (struct msg_target){parts[i], 1};
    for (int i = 0; i < NQ; i++) {
        pu_vec(1000000 + (uint64_t)i, 7, DIM, qv[i]);
        q[i] = (struct msg_query){.vec = qv[i], .dim = DIM, .k = K, .ef = 128};
    }
    struct msg m = req_of(MSG_SEARCH, COLL, 0, 0);
    m.u.search_req = (struct msg_search_req){t, np, q, NQ};
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    const struct msg_search_rep *s = &rep.m.u.search_rep;
    assert_int_equal(s->n_parts, np);
    size_t hit_part = 0, hit_all = 0;
    for (int i = 0; i < NQ; i++) {
        uint64_t merged[2 * K];
        float mscore[2 * K];
        size_t nm = 0;
        for (uint32_t p = 0; p < np; p++) {
            const struct msg_search_part *sp = &s->parts[p];
            assert_int_equal(sp->part, parts[p]);
            assert_int_equal(sp->err.code, DV_OK);
            assert_int_equal(sp->n, NQ);
            const struct msg_hits *h = &sp->results[i];
            assert_int_equal(h->n, K);
            uint64_t first = parts[p] == 0 ? 0 : N0, n = parts[p] == 0 ? N0 : N1;
            uint64_t want[K], got[K];
            double wd[K];
            oracle(qv[i], first, n, K, want, wd);
            float v[DIM];
            for (int j = 0; j < K; j++) {
                got[j] = h->hits[j].id.lo;
                assert_true(got[j] >= first && got[j] < first + n);
                /* The score is the Euclidean distance to the point, best first. */
                pu_vec(got[j], 0, DIM, v);
                assert_float_equal(h->hits[j].score, sqrt(l2sq(qv[i], v)), 1e-4);
                if (j > 0)
                    assert_true(h->hits[j].score >= h->hits[j - 1].score);
                merged[nm] = got[j];
                mscore[nm++] = h->hits[j].score;
            }
            hit_part += overlap(got, K, want, K);
        }
        /* Merged: the K best of all partitions against the oracle over all of them. */
        for (size_t a = 1; a < nm; a++)
            for (size_t b = a; b > 0 && mscore[b] < mscore[b - 1]; b--) {
                float ts = mscore[b];
                uint64_t ti = merged[b];
                mscore[b] = mscore[b - 1];
                merged[b] = merged[b - 1];
                mscore[b - 1] = ts;
                merged[b - 1] = ti;
            }
        uint64_t want[K];
        double wd[K];
        oracle(qv[i], np == 1 ? (parts[0] == 0 ? 0 : N0) : 0,
               np == 1 ? (parts[0] == 0 ? N0 : N1) : N0 + N1, K, want, wd);
        hit_all += overlap(merged, K, want, K);
    }
    double recall_part = (double)hit_part / (NQ * K * np), recall_all = (double)hit_all / (NQ * K);
    printf("# search on %u partition(s): recall@%d %.3f per partition, %.3f merged\n", np, K,
           recall_part, recall_all);
    assert_true(recall_part >= 0.95);
    assert_true(recall_all >= 0.95);
    msg_reply_free(&rep);
}

static void check_filtered_search(struct rpc *r, const char *color)
{
    char json[128];
    snprintf(json, sizeof json, "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"%s\"}}]}",
             color);
    struct buf f = BUF_INIT;
    float qv[5][DIM];
    struct msg_query q[5];
    struct msg_target t[2] = {{0, 1}, {1, 1}};
    struct msg_bytes filter = mp_of(&f, json);
    for (int i = 0; i < 5; i++) {
        pu_vec(2000000 + (uint64_t)i, 7, DIM, qv[i]);
        q[i] = (struct msg_query){
            .vec = qv[i], .dim = DIM, .k = K, .filter = filter, .with_payload = true};
    }
    struct msg m = req_of(MSG_SEARCH, COLL, 0, 0);
    m.u.search_req = (struct msg_search_req){t, 2, q, 5};
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    for (uint32_t p = 0; p < 2; p++) {
        const struct msg_search_part *sp = &rep.m.u.search_rep.parts[p];
        assert_int_equal(sp->err.code, DV_OK);
        for (int i = 0; i < 5; i++) {
            assert_int_equal(sp->results[i].n, K);
            for (uint32_t j = 0; j < sp->results[i].n; j++) {
                const struct msg_hit *h = &sp->results[i].hits[j];
                char c[32];
                sp_payload_str(&h->payload, "color", c, sizeof c);
                if (strcmp(c, color) != 0)
                    print_error("filtered search: id %" PRIu64 " has color '%s'\n", h->id.lo, c);
                assert_string_equal(c, color);
            }
        }
    }
    msg_reply_free(&rep);
    buf_free(&f);
}

/* Payload operation `op` with `data_json` (NULL: nil) on ids. */
static int set_payload(struct rpc *r, uint32_t op, const uint64_t *idv, uint32_t n,
                       const char *data_json, char *err)
{
    struct pid ids[8];
    struct buf d = BUF_INIT;
    for (uint32_t i = 0; i < n; i++)
        ids[i] = pid_num(idv[i]);
    struct msg m = req_of(MSG_SET_PAYLOAD, COLL, 0, 1);
    m.u.set_payload_req = (struct msg_set_payload_req){op, ids, n, {NULL, 0}};
    if (data_json)
        m.u.set_payload_req.data = mp_of(&d, data_json);
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    msg_reply_free(&rep);
    buf_free(&d);
    return rc;
}

/* Gets one point's payload into *out (copied, caller frees out->p); false when absent. */
static bool get_payload(struct rpc *r, uint64_t id, struct msg_bytes *out)
{
    struct pid pid = pid_num(id);
    struct msg m = req_of(MSG_GET, COLL, 0, 1);
    m.u.get_req = (struct msg_get_req){&pid, 1, false, true};
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    bool found = rep.m.u.get_rep.n == 1;
    *out = (struct msg_bytes){NULL, 0};
    if (found && rep.m.u.get_rep.hits[0].payload.p) {
        const struct msg_bytes *p = &rep.m.u.get_rep.hits[0].payload;
        uint8_t *c = malloc(p->len);
        assert_non_null(c);
        memcpy(c, p->p, p->len);
        *out = (struct msg_bytes){c, p->len};
    }
    msg_reply_free(&rep);
    return found;
}

static int payload_index(struct rpc *r, uint32_t op, uint32_t kind, const char *key, uint64_t *lsn,
                         char *err)
{
    struct msg m = req_of(MSG_PAYLOAD_INDEX, COLL, 0, 1);
    m.u.index_req = (struct msg_index_req){op, kind, {key, (uint32_t)strlen(key)}, {NULL, 0}};
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    if (rc == DV_OK && lsn)
        *lsn = rep.m.u.write_rep.lsn;
    msg_reply_free(&rep);
    return rc;
}

static void test_every_op(void **state)
{
    (void)state;
    static const char *const extra[] = {"--node_id", "itest-node-1"};
    struct sp_proc *p = new_proc(false, extra, 2);
    start(p);
    struct rpc *r = client(p, 10000);
    char err[DV_ERRMSG_SIZE];
    struct msg_reply rep;

    /* hello on an empty node */
    struct msg m = {.type = MSG_HELLO};
    call_ok(r, &m, &rep);
    assert_int_equal(rep.m.u.hello_rep.node_id.len, strlen("itest-node-1"));
    assert_memory_equal(rep.m.u.hello_rep.node_id.p, "itest-node-1", strlen("itest-node-1"));
    assert_true(rep.m.u.hello_rep.version.len > 0);
    assert_int_equal(rep.m.u.hello_rep.n_replicas, 0);
    msg_reply_free(&rep);

    /* create: idempotent with the same parameters, DV_EEXIST with another dimension */
    create_ok(r, COLL, 0, 1, 1);
    create_ok(r, COLL, 0, 1, 1);
    assert_int_equal(create(r, COLL, 0, 1, DIM * 2, 1, err), DV_EEXIST);
    assert_non_null(strstr(err, "dimension"));
    create_ok(r, COLL, 1, 1, 1);

    m = (struct msg){.type = MSG_REPLICA_LIST};
    call_ok(r, &m, &rep);
    assert_int_equal(rep.m.u.list_rep.n, 2);
    bool seen[2] = {false, false};
    for (uint32_t i = 0; i < 2; i++) {
        const struct msg_replica *x = &rep.m.u.list_rep.replicas[i];
        assert_int_equal(x->coll.len, strlen(COLL));
        assert_memory_equal(x->coll.p, COLL, strlen(COLL));
        assert_true(x->part < 2);
        assert_int_equal(x->applied_lsn, 0);
        seen[x->part] = true;
    }
    assert_true(seen[0] && seen[1]);
    msg_reply_free(&rep);

    /* upsert: one WAL record per batch, LSNs increasing */
    uint64_t lsn0 = 0, lsn1 = 0, l;
    for (uint64_t at = 0; at < N0; at += 500) {
        l = upsert_ok(r, COLL, 0, 1, at, 500);
        assert_true(l > lsn0);
        lsn0 = l;
    }
    for (uint64_t at = N0; at < N0 + N1; at += 500) {
        l = upsert_ok(r, COLL, 1, 1, at, 500);
        assert_true(l > lsn1);
        lsn1 = l;
    }

    /* hello lists both replicas with their applied LSNs; info agrees */
    m = (struct msg){.type = MSG_HELLO};
    call_ok(r, &m, &rep);
    assert_int_equal(rep.m.u.hello_rep.n_replicas, 2);
    for (uint32_t i = 0; i < 2; i++) {
        const struct msg_replica *x = &rep.m.u.hello_rep.replicas[i];
        assert_int_equal(x->applied_lsn, x->part == 0 ? lsn0 : lsn1);
    }
    msg_reply_free(&rep);
    struct msg_info_rep in = info_of(r, COLL, 0, 1);
    assert_int_equal(in.dim, DIM);
    assert_int_equal(in.metric, HNSW_L2);
    assert_int_equal(in.points, N0);
    assert_int_equal(in.applied_lsn, lsn0);
    assert_true(in.durable_lsn <= in.applied_lsn);
    assert_true(in.wal_bytes > 0);
    assert_true(in.payload_bytes > 0);
    assert_int_equal(info_of(r, COLL, 1, 1).points, N1);

    /* get: every vector and payload as written; a missing id is left out */
    assert_int_equal(check_range(r, COLL, 0, 1, 0, N0, 0, true), N0);
    assert_int_equal(check_range(r, COLL, 1, 1, N0, N1, 0, true), N1);
    {
        struct pid ids[3] = {pid_num(5), pid_num(999999), pid_num(7)};
        m = req_of(MSG_GET, COLL, 0, 1);
        m.u.get_req = (struct msg_get_req){ids, 3, false, false};
        call_ok(r, &m, &rep);
        assert_int_equal(rep.m.u.get_rep.n, 2);
        assert_int_equal(rep.m.u.get_rep.hits[0].id.lo, 5);
        assert_int_equal(rep.m.u.get_rep.hits[1].id.lo, 7);
        assert_null(rep.m.u.get_rep.hits[0].vec);
        assert_null(rep.m.u.get_rep.hits[0].payload.p);
        msg_reply_free(&rep);
    }

    /* count: all, and with filters (color = pu_colors[id % 5], n = id % 1000) */
    assert_int_equal(count_of(r, COLL, 0, 1, NULL), N0);
    assert_int_equal(count_of(r, COLL, 0, 1,
                              "{\"must\":[{\"key\":\"color\",\"match\":"
                              "{\"value\":\"red\"}}]}"),
                     N0 / 5);
    assert_int_equal(count_of(r, COLL, 0, 1, "{\"must\":[{\"key\":\"n\",\"range\":{\"lt\":100}}]}"),
                     N0 / 10);
    uint64_t not_t3 = 0;
    for (uint64_t id = N0; id < N0 + N1; id++)
        not_t3 += id % 7 != 3;
    assert_int_equal(count_of(r, COLL, 1, 1,
                              "{\"must_not\":[{\"key\":\"tags\",\"match\":"
                              "{\"value\":\"t3\"}}]}"),
                     not_t3);

    /* scroll: pages of 37 give every id exactly once, in order */
    {
        uint64_t next_want = 0, pages = 0;
        struct pid from = {0};
        bool has_from = false;
        for (;;) {
            m = req_of(MSG_SCROLL, COLL, 0, 1);
            m.u.scroll_req =
                (struct msg_scroll_req){.has_from = has_from, .from = from, .limit = 37};
            call_ok(r, &m, &rep);
            const struct msg_scroll_rep *s = &rep.m.u.scroll_rep;
            assert_true(s->hits.n <= 37);
            for (uint32_t i = 0; i < s->hits.n; i++) {
                if (s->hits.hits[i].id.lo != next_want)
                    print_error("scroll: got id %" PRIu64 ", want %" PRIu64 "\n",
                                s->hits.hits[i].id.lo, next_want);
                assert_int_equal(s->hits.hits[i].id.lo, next_want);
                next_want++;
            }
            pages++;
            bool more = s->more;
            if (more) {
                assert_int_equal(s->hits.n, 37);
                from = s->next;
                has_from = true;
            }
            msg_reply_free(&rep);
            if (!more)
                break;
            assert_true(pages < N0);
        }
        assert_int_equal(next_want, N0);
        assert_int_equal(pages, (N0 + 36) / 37);
    }

    /* scroll with a filter: only matching ids, still in order */
    {
        struct buf f = BUF_INIT;
        struct msg_bytes red =
            mp_of(&f, "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}");
        uint64_t next_want = 0, pages = 0;
        struct pid from = {0};
        bool has_from = false, more = true;
        while (more) {
            assert_true(pages++ < N0);
            m = req_of(MSG_SCROLL, COLL, 0, 1);
            m.u.scroll_req = (struct msg_scroll_req){.has_from = has_from,
                                                     .from = from,
                                                     .limit = 50,
                                                     .filter = red,
                                                     .with_payload = true};
            call_ok(r, &m, &rep);
            const struct msg_scroll_rep *s = &rep.m.u.scroll_rep;
            for (uint32_t i = 0; i < s->hits.n; i++) {
                char c[32];
                assert_int_equal(s->hits.hits[i].id.lo, next_want);
                sp_payload_str(&s->hits.hits[i].payload, "color", c, sizeof c);
                assert_string_equal(c, "red");
                next_want += 5;
            }
            more = s->more;
            from = s->next;
            has_from = true;
            msg_reply_free(&rep);
        }
        assert_int_equal(next_want, N0);
        buf_free(&f);
    }

    /* search: one partition, two partitions in one request (recall against the oracle),
     * and filtered (every hit matches) */
    uint32_t one[1] = {0}, two[2] = {0, 1};
    check_search(r, one, 1);
    check_search(r, two, 2);
    check_filtered_search(r, "red");

    /* set payload: set (merge), overwrite, delete keys, clear; then get */
    uint64_t ids12[2] = {1, 2}, id3 = 3, id4 = 4, id1 = 1, missing = 999999;
    struct msg_bytes pl;
    assert_int_equal(
        set_payload(r, PART_PAYLOAD_SET, ids12, 2, "{\"color\":\"purple\",\"extra\":7}", err),
        DV_OK);
    for (int i = 0; i < 2; i++) {
        char c[32];
        assert_true(get_payload(r, ids12[i], &pl));
        sp_payload_str(&pl, "color", c, sizeof c);
        assert_string_equal(c, "purple");
        assert_int_equal(payload_int(&pl, "extra"), 7);
        assert_int_equal(payload_int(&pl, "n"), (int64_t)ids12[i]);
        assert_true(payload_has(&pl, "tags"));
        free((void *)pl.p);
    }
    assert_int_equal(set_payload(r, PART_PAYLOAD_OVERWRITE, &id3, 1, "{\"only\":1}", err), DV_OK);
    assert_true(get_payload(r, 3, &pl));
    {
        struct buf want = BUF_INIT;
        mp_of(&want, "{\"only\":1}");
        assert_int_equal(pl.len, want.len);
        assert_memory_equal(pl.p, want.data, want.len);
        buf_free(&want);
    }
    free((void *)pl.p);
    assert_int_equal(set_payload(r, PART_PAYLOAD_DELETE, &id1, 1, "[\"extra\",\"tags\"]", err),
                     DV_OK);
    assert_true(get_payload(r, 1, &pl));
    {
        char c[32];
        sp_payload_str(&pl, "color", c, sizeof c);
        assert_string_equal(c, "purple");
        assert_false(payload_has(&pl, "extra"));
        assert_false(payload_has(&pl, "tags"));
        assert_int_equal(payload_int(&pl, "n"), 1);
    }
    free((void *)pl.p);
    assert_int_equal(set_payload(r, PART_PAYLOAD_CLEAR, &id4, 1, NULL, err), DV_OK);
    assert_true(get_payload(r, 4, &pl));
    assert_null(pl.p);
    assert_int_equal(set_payload(r, PART_PAYLOAD_SET, &missing, 1, "{\"a\":1}", err), DV_ENOTFOUND);
    assert_non_null(strstr(err, "999999"));
    assert_int_equal(count_of(r, COLL, 0, 1,
                              "{\"must\":[{\"key\":\"color\",\"match\":"
                              "{\"value\":\"purple\"}}]}"),
                     2);
    assert_int_equal(count_of(r, COLL, 0, 1, "{\"must\":[{\"is_empty\":{\"key\":\"color\"}}]}"),
                     2); /* 3 (overwritten) and 4 (cleared) */

    /* payload indexes: create (keyword, integer), use, drop; a bad kind is refused */
    uint64_t ilsn = 0, ilsn2 = 0;
    assert_int_equal(payload_index(r, MSG_INDEX_CREATE, PINDEX_KEYWORD, "color", &ilsn, err),
                     DV_OK);
    assert_true(ilsn > lsn0);
    assert_int_equal(payload_index(r, MSG_INDEX_CREATE, PINDEX_INTEGER, "n", &ilsn2, err), DV_OK);
    assert_true(ilsn2 > ilsn);
    assert_int_equal(count_of(r, COLL, 0, 1,
                              "{\"must\":[{\"key\":\"color\",\"match\":"
                              "{\"value\":\"red\"}}]}"),
                     N0 / 5);
    /* 3 and 4 have no "n" any more */
    assert_int_equal(count_of(r, COLL, 0, 1, "{\"must\":[{\"key\":\"n\",\"range\":{\"lt\":100}}]}"),
                     N0 / 10 - 2);
    check_filtered_search(r, "red");
    /* the same key with another kind exists; dropping is idempotent */
    assert_int_equal(payload_index(r, MSG_INDEX_CREATE, PINDEX_INTEGER, "color", NULL, err),
                     DV_EEXIST);
    assert_int_equal(payload_index(r, MSG_INDEX_DROP, 0, "color", NULL, err), DV_OK);
    assert_int_equal(payload_index(r, MSG_INDEX_DROP, 0, "color", NULL, err), DV_OK);
    assert_int_equal(payload_index(r, MSG_INDEX_CREATE, PINDEX_KIND_COUNT, "x", NULL, err),
                     DV_EINVAL);
    assert_int_equal(payload_index(r, MSG_INDEX_CREATE, PINDEX_KEYWORD, "", NULL, err), DV_EINVAL);
    check_filtered_search(r, "red");

    /* delete ids [0, 100) and one that does not exist, then count */
    {
        struct pid ids[101];
        for (int i = 0; i < 100; i++)
            ids[i] = pid_num((uint64_t)i);
        ids[100] = pid_num(999999);
        m = req_of(MSG_DELETE, COLL, 0, 1);
        m.u.delete_req = (struct msg_ids_req){ids, 101};
        call_ok(r, &m, &rep);
        assert_int_equal(rep.m.u.write_rep.affected, 100);
        msg_reply_free(&rep);
        call_ok(r, &m, &rep);
        assert_int_equal(rep.m.u.write_rep.affected, 0);
        msg_reply_free(&rep);
    }
    assert_int_equal(count_of(r, COLL, 0, 1, NULL), N0 - 100);
    assert_int_equal(present(r, COLL, 0, 1, 0, 100), 0);
    assert_int_equal(check_range(r, COLL, 0, 1, 100, N0 - 100, 0, false), N0 - 100);

    /* stats */
    m = (struct msg){.type = MSG_STATS};
    call_ok(r, &m, &rep);
    {
        int found = 0;
        for (uint32_t i = 0; i < rep.m.u.stats_rep.n; i++) {
            const struct msg_stat *st = &rep.m.u.stats_rep.stats[i];
            if (st->name.len == 8 && memcmp(st->name.p, "replicas", 8) == 0) {
                assert_int_equal(st->value, 2);
                found++;
            } else if (st->name.len == 6 && memcmp(st->name.p, "points", 6) == 0) {
                assert_int_equal(st->value, N0 - 100 + N1);
                found++;
            } else if (st->name.len == 9 && memcmp(st->name.p, "uptime_ms", 9) == 0) {
                assert_true(st->value > 0);
                found++;
            }
        }
        assert_int_equal(found, 3);
    }
    msg_reply_free(&rep);

    /* WAL read from LSN 1: every record in LSN order up to applied_lsn, in several chunks
     * (read before the snapshot, whose checkpoint may drop the WAL) */
    in = info_of(r, COLL, 0, 1);
    {
        uint64_t from = 1, chunks = 0;
        for (;;) {
            m = req_of(MSG_WAL_READ, COLL, 0, 1);
            m.u.wal_req = (struct msg_wal_req){from, 16384};
            call_ok(r, &m, &rep);
            const struct msg_wal_rep *w = &rep.m.u.wal_rep;
            assert_int_equal(w->applied_lsn, in.applied_lsn);
            for (uint32_t i = 0; i < w->n; i++) {
                if (w->recs[i].lsn != from)
                    print_error("wal read: record %u has lsn %" PRIu64 ", want %" PRIu64 "\n", i,
                                w->recs[i].lsn, from);
                assert_int_equal(w->recs[i].lsn, from);
                assert_true(w->recs[i].body.len > 0);
                from++;
            }
            uint32_t n = w->n;
            msg_reply_free(&rep);
            chunks++;
            if (from > in.applied_lsn)
                break;
            assert_true(n > 0); /* progress */
        }
        assert_int_equal(from, in.applied_lsn + 1);
        assert_true(chunks > 1);
        /* Past the end: an empty list. */
        m = req_of(MSG_WAL_READ, COLL, 0, 1);
        m.u.wal_req = (struct msg_wal_req){in.applied_lsn + 1, 0};
        call_ok(r, &m, &rep);
        assert_int_equal(rep.m.u.wal_rep.n, 0);
        msg_reply_free(&rep);
    }

    /* snapshot read: every chunk until done; restored elsewhere it holds the same points */
    {
        struct membuf snap = {BUF_INIT, 0};
        uint64_t session = 0, offset = 0, total = 0, slsn = 0;
        for (int i = 0;; i++) {
            assert_true(i < 10000);
            m = req_of(MSG_SNAPSHOT_READ, COLL, 0, 1);
            m.u.snapshot_req = (struct msg_snapshot_req){session, offset, 65536};
            call_ok(r, &m, &rep);
            const struct msg_snapshot_rep *s = &rep.m.u.snapshot_rep;
            assert_int_not_equal(s->session, 0);
            if (session != 0) {
                assert_int_equal(s->session, session);
                assert_int_equal(s->total, total);
                assert_int_equal(s->lsn, slsn);
            }
            session = s->session;
            total = s->total;
            slsn = s->lsn;
            assert_true(s->data.len <= 65536);
            assert_int_equal(buf_append(&snap.b, s->data.p, s->data.len), DV_OK);
            offset += s->data.len;
            bool done = s->done;
            msg_reply_free(&rep);
            if (done)
                break;
            assert_true(offset < total); /* progress, and not past the end */
        }
        assert_int_equal(offset, total);
        assert_int_equal(snap.b.len, total);
        assert_true(total > 65536); /* several chunks */
        assert_int_equal(slsn, in.applied_lsn);
        printf("# snapshot: %" PRIu64 " bytes at lsn %" PRIu64 "\n", total, slsn);
        /* An unknown session is refused. */
        m = req_of(MSG_SNAPSHOT_READ, COLL, 0, 1);
        m.u.snapshot_req = (struct msg_snapshot_req){session + 1000, 0, 0};
        call_fails(r, &m, DV_ENOTFOUND, 0, NULL);

        char dir[4096], rerr[DV_ERRMSG_SIZE];
        pu_tmpdir(dir, sizeof dir, "restored");
        struct part_opts o;
        part_opts_default(&o);
        o.background = false;
        struct part *rp = NULL;
        int rc = part_restore(io_posix(), dir, pu_mem_source, &snap, &o, &rp, rerr);
        if (rc != DV_OK)
            print_error("part_restore: %s: %s\n", dv_errname(rc), rerr);
        assert_int_equal(rc, DV_OK);
        uint64_t n = 0;
        assert_int_equal(part_count(rp, NULL, &n, rerr), DV_OK);
        assert_int_equal(n, N0 - 100);
        struct part_info ri;
        part_get_info(rp, &ri);
        assert_int_equal(ri.applied_lsn, slsn);
        struct pid ids[2] = {pid_num(500), pid_num(50)};
        struct part_result res = {0};
        assert_int_equal(part_get(rp, ids, 2, true, true, &res, rerr), DV_OK);
        assert_int_equal(res.n, 1); /* 50 was deleted */
        float v[DIM];
        pu_vec(500, 0, DIM, v);
        assert_memory_equal(res.hits[0].vec, v, sizeof v);
        part_result_free(&res);
        part_close(rp);
        pu_tmpdir_free(dir);
        buf_free(&snap.b);
    }

    /* The snapshot's checkpoint may have dropped the WAL it covers: a read from LSN 1 then
     * fails cleanly, and never returns a chunk that starts past the LSN asked for. */
    m = req_of(MSG_WAL_READ, COLL, 0, 1);
    m.u.wal_req = (struct msg_wal_req){1, 0};
    {
        int rc = call(r, &m, &rep, err);
        printf("# wal read from 1 after the snapshot: %s %s\n", dv_errname(rc), err);
        if (rc == DV_OK) {
            assert_true(rep.m.u.wal_rep.n > 0);
            assert_int_equal(rep.m.u.wal_rep.recs[0].lsn, 1);
        } else {
            assert_int_equal(rc, DV_ENOTFOUND);
        }
        msg_reply_free(&rep);
    }

    /* drop: then every request on it is a stale map (epoch 0: not held) */
    m = req_of(MSG_REPLICA_DROP, COLL, 1, 1);
    call_ok(r, &m, &rep);
    msg_reply_free(&rep);
    m = req_of(MSG_COUNT, COLL, 1, 1);
    call_fails(r, &m, DV_ESTALE, 0, "not held");
    m = req_of(MSG_REPLICA_DROP, COLL, 1, 1);
    call_fails(r, &m, DV_ESTALE, 0, NULL);
    m = (struct msg){.type = MSG_REPLICA_LIST};
    call_ok(r, &m, &rep);
    assert_int_equal(rep.m.u.list_rep.n, 1);
    assert_int_equal(rep.m.u.list_rep.replicas[0].part, 0);
    msg_reply_free(&rep);
    assert_int_equal(count_of(r, COLL, 0, 1, NULL), N0 - 100);
}

/* ---- 2. epochs --------------------------------------------------------------------------- */

static void test_epochs(void **state)
{
    (void)state;
    struct sp_proc *p = new_proc(false, NULL, 0);
    start(p);
    struct rpc *r = client(p, 10000);
    char err[DV_ERRMSG_SIZE];
    struct msg_reply rep;

    create_ok(r, COLL, 0, 5, 1);
    upsert_ok(r, COLL, 0, 5, 0, 100);

    /* lower epoch: stale, with the replica's epoch */
    struct msg m = req_of(MSG_COUNT, COLL, 0, 3);
    call_fails(r, &m, DV_ESTALE, 5, "stale map");
    assert_int_equal(upsert_range(r, COLL, 0, 4, 1000, 10, 0, NULL, err), DV_ESTALE);
    assert_int_equal(count_of(r, COLL, 0, 5, NULL), 100);
    {
        float q[DIM];
        pu_vec(7, 0, DIM, q);
        struct msg_query qq = {.vec = q, .dim = DIM, .k = 3};
        struct msg_target t = {0, 3};
        m = req_of(MSG_SEARCH, COLL, 0, 0);
        m.u.search_req = (struct msg_search_req){&t, 1, &qq, 1};
        call_ok(r, &m, &rep); /* the request succeeds; the partition's result is stale */
        assert_int_equal(rep.m.u.search_rep.n_parts, 1);
        assert_int_equal(rep.m.u.search_rep.parts[0].err.code, DV_ESTALE);
        assert_int_equal(rep.m.u.search_rep.parts[0].err.epoch, 5);
        assert_int_equal(rep.m.u.search_rep.parts[0].n, 0);
        msg_reply_free(&rep);
    }

    /* one partition's stale map does not fail the others */
    create_ok(r, COLL, 1, 1, 1);
    upsert_ok(r, COLL, 1, 1, 500, 50);
    {
        float q[DIM];
        pu_vec(501, 0, DIM, q);
        struct msg_query qq = {.vec = q, .dim = DIM, .k = 1};
        struct msg_target t[2] = {{0, 3}, {1, 1}};
        m = req_of(MSG_SEARCH, COLL, 0, 0);
        m.u.search_req = (struct msg_search_req){t, 2, &qq, 1};
        call_ok(r, &m, &rep);
        assert_int_equal(rep.m.u.search_rep.n_parts, 2);
        assert_int_equal(rep.m.u.search_rep.parts[0].err.code, DV_ESTALE);
        assert_int_equal(rep.m.u.search_rep.parts[0].err.epoch, 5);
        assert_int_equal(rep.m.u.search_rep.parts[1].err.code, DV_OK);
        assert_int_equal(rep.m.u.search_rep.parts[1].n, 1);
        assert_int_equal(rep.m.u.search_rep.parts[1].results[0].n, 1);
        assert_int_equal(rep.m.u.search_rep.parts[1].results[0].hits[0].id.lo, 501);
        msg_reply_free(&rep);
    }

    /* higher epoch: accepted, and from then on the old one is stale */
    assert_int_equal(count_of(r, COLL, 0, 7, NULL), 100);
    m = req_of(MSG_COUNT, COLL, 0, 5);
    call_fails(r, &m, DV_ESTALE, 7, NULL);
    m = req_of(MSG_REPLICA_INFO, COLL, 0, 6);
    call_fails(r, &m, DV_ESTALE, 7, NULL);
    assert_int_equal(create(r, COLL, 0, 3, DIM, 1, err), DV_ESTALE);

    /* the raised epoch survives a restart */
    sp_signal(p, SIGTERM);
    assert_true(sp_wait_exit(p, 15000));
    assert_true(WIFEXITED(p->status));
    assert_int_equal(WEXITSTATUS(p->status), 0);
    start(p);
    m = req_of(MSG_COUNT, COLL, 0, 5);
    call_fails(r, &m, DV_ESTALE, 7, NULL);
    m = req_of(MSG_REPLICA_DROP, COLL, 0, 6);
    call_fails(r, &m, DV_ESTALE, 7, NULL);
    assert_int_equal(count_of(r, COLL, 0, 7, NULL), 100);
    assert_int_equal(check_range(r, COLL, 0, 7, 0, 100, 0, true), 100);
}

/* ---- incarnations -------------------------------------------------------------------------- */

/* A create of partition `part` for the collection's `incarnation` (0: none given). */
static int create_inc(struct rpc *r, uint32_t part, uint64_t epoch, uint64_t incarnation, char *err)
{
    struct msg m = req_of(MSG_REPLICA_CREATE, COLL, part, epoch);
    m.u.create_req = (struct msg_create_req){.cfg = {.dim = DIM, .metric = HNSW_L2, .fsync = 1},
                                             .incarnation = incarnation};
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    msg_reply_free(&rep);
    return rc;
}

static void create_inc_ok(struct rpc *r, uint32_t part, uint64_t epoch, uint64_t incarnation)
{
    char err[DV_ERRMSG_SIZE];
    int rc = create_inc(r, part, epoch, incarnation, err);
    if (rc != DV_OK)
        print_error("create %s/%u incarnation %" PRIu64 ": %s: %s\n", COLL, part, incarnation,
                    dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
}

/* The node.meta text of replica `part` of p (stopped or running) into *out. */
static void meta_text(const struct sp_proc *p, uint32_t part, struct buf *out)
{
    char path[256];
    snprintf(path, sizeof path, "%s/replicas/%s.%u/node.meta", p->data, COLL, part);
    sp_read_file(path, out);
}

/* Replaces the node.meta of replica `part` of a stopped p with `text`. */
static void meta_put(const struct sp_proc *p, uint32_t part, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/replicas/%s.%u/node.meta", p->data, COLL, part);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void stop(struct sp_proc *p)
{
    sp_signal(p, SIGTERM);
    assert_true(sp_wait_exit(p, 15000));
    assert_true(WIFEXITED(p->status));
    assert_int_equal(WEXITSTATUS(p->status), 0);
}

/* The value of stat `name` of the node (fails when it is missing). */
static uint64_t stat_of(struct rpc *r, const char *name)
{
    struct msg m = {.type = MSG_STATS};
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    uint64_t v = UINT64_MAX;
    for (uint32_t i = 0; i < rep.m.u.stats_rep.n; i++) {
        const struct msg_stat *st = &rep.m.u.stats_rep.stats[i];
        if (st->name.len == strlen(name) && memcmp(st->name.p, name, st->name.len) == 0)
            v = st->value;
    }
    msg_reply_free(&rep);
    assert_true(v != UINT64_MAX);
    return v;
}

/*
 * A collection's identity is (name, incarnation): a create of the same incarnation keeps the
 * replica and its points; one of a later incarnation (a collection of the same name created
 * after a drop) replaces it with an empty one, which a restart keeps; an earlier one is stale.
 * A replica whose node.meta has no incarnation line (written before incarnations existed)
 * opens, keeps its points on a create and takes the create's incarnation.
 */
static void test_incarnations(void **state)
{
    (void)state;
    struct sp_proc *p = new_proc(false, NULL, 0);
    start(p);
    struct rpc *r = client(p, 10000);
    char err[DV_ERRMSG_SIZE];
    struct buf meta = BUF_INIT;

    create_inc_ok(r, 0, 5, 5);
    upsert_ok(r, COLL, 0, 5, 0, 100);
    create_inc_ok(r, 0, 5, 5); /* same incarnation: idempotent */
    assert_int_equal(count_of(r, COLL, 0, 5, NULL), 100);
    assert_int_equal(check_range(r, COLL, 0, 5, 0, 100, 0, true), 100);
    create_inc_ok(r, 0, 6, 0); /* none given: keeps what exists */
    assert_int_equal(count_of(r, COLL, 0, 6, NULL), 100);

    /* a later incarnation: the old points are gone */
    create_inc_ok(r, 0, 9, 9);
    assert_int_equal(count_of(r, COLL, 0, 9, NULL), 0);
    assert_int_equal(info_of(r, COLL, 0, 9).applied_lsn, 0);
    sp_read_file(p->log, &meta);
    assert_non_null(strstr((const char *)meta.data, "replica of a dropped collection replaced"));
    upsert_ok(r, COLL, 0, 9, 1000, 10);
    assert_int_equal(count_of(r, COLL, 0, 9, NULL), 10);
    create_inc_ok(r, 0, 9, 9);
    assert_int_equal(count_of(r, COLL, 0, 9, NULL), 10);
    /* an earlier incarnation never replaces a later one, whatever the epoch */
    assert_int_equal(create_inc(r, 0, 10, 7, err), DV_ESTALE);
    assert_non_null(strstr(err, "incarnation 9"));
    assert_int_equal(create_inc(r, 0, 8, 11, err), DV_ESTALE); /* epoch 8 < 9 */
    assert_int_equal(count_of(r, COLL, 0, 9, NULL), 10);
    meta_text(p, 0, &meta);
    assert_non_null(strstr((const char *)meta.data, "\nincarnation 9\n"));

    /* a restart keeps the incarnation and the new points */
    create_inc_ok(r, 1, 3, 3);
    upsert_ok(r, COLL, 1, 3, 0, 20);
    stop(p);
    start(p);
    assert_int_equal(count_of(r, COLL, 0, 9, NULL), 10);
    assert_int_equal(check_range(r, COLL, 0, 9, 1000, 10, 0, true), 10);
    assert_int_equal(present(r, COLL, 0, 9, 0, 100), 0);
    create_inc_ok(r, 0, 9, 9);
    assert_int_equal(count_of(r, COLL, 0, 9, NULL), 10);
    assert_int_equal(create_inc(r, 0, 10, 7, err), DV_ESTALE);

    /* node.meta without the incarnation line (an older build's): the replica opens, keeps its
     * points on a create and takes its incarnation; a later one then replaces it. A broken
     * incarnation line keeps a replica from opening, as any bad node.meta does. */
    stop(p);
    meta_put(p, 0, "dvec-node-meta 1\nepoch 9\nfsync interval\n");
    meta_put(p, 1, "dvec-node-meta 1\nepoch 3\nfsync interval\nincarnation x\n");
    start(p);
    assert_int_equal(stat_of(r, "replicas_failed_to_open"), 1);
    assert_int_equal(count_of(r, COLL, 0, 9, NULL), 10);
    create_inc_ok(r, 0, 11, 11);
    assert_int_equal(count_of(r, COLL, 0, 11, NULL), 10);
    meta_text(p, 0, &meta);
    assert_non_null(strstr((const char *)meta.data, "epoch 11\n"));
    assert_non_null(strstr((const char *)meta.data, "\nincarnation 11\n"));
    create_inc_ok(r, 0, 12, 12);
    assert_int_equal(count_of(r, COLL, 0, 12, NULL), 0);
    buf_free(&meta);
}

/* ---- 3. bad input ------------------------------------------------------------------------ */

/* The decoded error reply of a raw request. */
struct raw_rep {
    int type;
    uint64_t req_id;
    int code;
    uint64_t epoch;
    char text[DV_ERRMSG_SIZE];
};

/* Sends raw bytes; the node must answer with an error reply (decoded into *out). */
static void raw_call(struct rpc *r, const void *p, size_t n, struct raw_rep *out)
{
    void *reply = NULL;
    size_t len = 0;
    char err[DV_ERRMSG_SIZE] = "";
    memset(out, 0, sizeof *out);
    int rc = rpc_call_raw(r, p, n, &reply, &len, err);
    if (rc != DV_OK)
        print_error("raw request of %zu bytes: no reply: %s: %s\n", n, dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    struct msg m;
    rc = msg_decode(reply, len, &m, err);
    if (rc != DV_OK)
        print_error("the reply does not decode: %s\n", err);
    assert_int_equal(rc, DV_OK);
    assert_true(m.reply);
    out->type = m.type;
    out->req_id = m.req_id;
    out->code = m.err.code;
    out->epoch = m.err.epoch;
    snprintf(out->text, sizeof out->text, "%.*s", (int)m.err.text.len,
             m.err.text.p ? m.err.text.p : "");
    msg_free(&m);
    free(reply);
}

/* Sends raw bytes and checks the error reply: code and a word of its text; then the node
 * must still answer a hello. */
static void bad(struct rpc *r, const char *what, const void *p, size_t n, int code,
                const char *text)
{
    struct raw_rep rr;
    raw_call(r, p, n, &rr);
    printf("# %s: %s \"%s\"\n", what, dv_errname(rr.code), rr.text);
    if (rr.code != code || (text && strstr(rr.text, text) == NULL))
        print_error("%s: got %s \"%s\", want %s \"%s\"\n", what, dv_errname(rr.code), rr.text,
                    dv_errname(code), text ? text : "");
    assert_int_equal(rr.code, code);
    assert_true(rr.text[0] != '\0');
    if (text)
        assert_non_null(strstr(rr.text, text));
    hello_ok(r);
}

static void encode(struct msg *m, uint64_t req_id, struct buf *out)
{
    char err[DV_ERRMSG_SIZE];
    m->req_id = req_id;
    buf_reset(out);
    int rc = msg_encode(m, out, err);
    if (rc != DV_OK)
        print_error("msg_encode: %s\n", err);
    assert_int_equal(rc, DV_OK);
}

/* An addressed request header written by hand: [1, type, 0, req_id, [coll, 0, 1, ...]]
 * with `fields` more body fields to follow. */
static void hand_header(struct buf *b, int type, uint32_t fields)
{
    buf_reset(b);
    mpw_array(b, 5);
    mpw_u64(b, PROTO_VERSION);
    mpw_u64(b, (uint64_t)type);
    mpw_u64(b, 0);
    mpw_u64(b, 4242);
    mpw_array(b, 3 + fields);
    mpw_str(b, COLL, strlen(COLL));
    mpw_u64(b, 0);
    mpw_u64(b, 1);
}

static void test_bad_input(void **state)
{
    (void)state;
    static const char *const extra[] = {"--max_message", "1MiB"};
    struct sp_proc *p = new_proc(false, extra, 2);
    start(p);
    struct rpc *r = client(p, 10000);
    create_ok(r, COLL, 0, 1, 1);
    upsert_ok(r, COLL, 0, 1, 0, 500);
    struct buf b = BUF_INIT;
    struct raw_rep rr;

    /* garbage */
    static const uint8_t garbage[] = {0xc1, 0xff, 0x00, 'g', 'a', 'r', 'b', 'a', 'g', 'e'};
    bad(r, "garbage", garbage, sizeof garbage, DV_EPROTO, NULL);
    bad(r, "empty message", "", 0, DV_EPROTO, NULL);
    {
        uint8_t rnd[1000];
        uint64_t s = 99;
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (uint8_t)pu_rng(&s);
        bad(r, "random bytes", rnd, sizeof rnd, DV_EPROTO, NULL);
    }

    /* a valid upsert truncated at several cut points */
    {
        struct msg m = req_of(MSG_UPSERT, COLL, 0, 1);
        struct upsert_data u;
        assert_int_equal(upsert_build(&m, &u, 100000, 10, 0, DIM, true), DV_OK);
        encode(&m, 777, &b);
        size_t cuts[] = {1, 2, 4, 6, 7, 12, b.len / 4, b.len / 2, b.len * 3 / 4, b.len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            char what[64];
            snprintf(what, sizeof what, "upsert cut at %zu of %zu bytes", cuts[i], b.len);
            bad(r, what, b.data, cuts[i], DV_EPROTO, NULL);
            raw_call(r, b.data, cuts[i], &rr);
            if (cuts[i] >= 7) {
                /* The header is readable: the reply names the request it answers. */
                assert_int_equal(rr.type, MSG_UPSERT);
                assert_int_equal(rr.req_id, 777);
            }
        }
        /* and a byte too many */
        assert_int_equal(buf_append(&b, "\x01", 1), DV_OK);
        bad(r, "upsert with a trailing byte", b.data, b.len, DV_EPROTO, "trailing");
        upsert_free(&u);
    }

    /* wrong protocol version, unknown type, type 0 (error) as a request */
    {
        struct msg m = {.type = MSG_HELLO};
        encode(&m, 5, &b);
        assert_int_equal(b.data[0], 0x95); /* fixarray of 5 */
        assert_int_equal(b.data[1], PROTO_VERSION);
        b.data[1] = 2;
        bad(r, "version 2", b.data, b.len, DV_EPROTO, "version 2");
        b.data[1] = PROTO_VERSION;
        assert_int_equal(b.data[2], MSG_HELLO);
        b.data[2] = 99;
        bad(r, "type 99", b.data, b.len, DV_EPROTO, "99");
        raw_call(r, b.data, b.len, &rr);
        assert_int_equal(rr.req_id, 5);
        b.data[2] = MSG_ERROR;
        bad(r, "type 0", b.data, b.len, DV_EPROTO, NULL);
    }

    /* a reply sent as a request */
    {
        struct msg m = {.type = MSG_HELLO, .reply = true};
        m.u.hello_rep.node_id = (struct msg_str){"x", 1};
        m.u.hello_rep.version = (struct msg_str){"y", 1};
        encode(&m, 6, &b);
        bad(r, "a reply as a request", b.data, b.len, DV_EPROTO, "reply");
    }

    /* wrong dimension, NaN, +Inf */
    {
        struct msg m = req_of(MSG_UPSERT, COLL, 0, 1);
        struct upsert_data u;
        assert_int_equal(upsert_build(&m, &u, 100000, 3, 0, DIM / 2, true), DV_OK);
        encode(&m, 8, &b);
        bad(r, "wrong dimension", b.data, b.len, DV_EDIM, "dimension");
        upsert_free(&u);

        m = req_of(MSG_UPSERT, COLL, 0, 1);
        assert_int_equal(upsert_build(&m, &u, 100000, 3, 0, DIM, true), DV_OK);
        u.vecs[1 * DIM + 5] = NAN;
        encode(&m, 9, &b);
        bad(r, "NaN", b.data, b.len, DV_ENAN, NULL);
        u.vecs[1 * DIM + 5] = INFINITY;
        encode(&m, 10, &b);
        bad(r, "+Inf", b.data, b.len, DV_ENAN, NULL);
        upsert_free(&u);

        /* a search query of the wrong dimension fails that partition */
        float q[DIM / 2] = {0};
        struct msg_query qq = {.vec = q, .dim = DIM / 2, .k = 3};
        struct msg_target t = {0, 1};
        m = req_of(MSG_SEARCH, COLL, 0, 0);
        m.u.search_req = (struct msg_search_req){&t, 1, &qq, 1};
        struct msg_reply rep;
        call_ok(r, &m, &rep);
        assert_int_equal(rep.m.u.search_rep.parts[0].err.code, DV_EDIM);
        msg_reply_free(&rep);
    }

    /* unknown partition, unknown collection */
    {
        struct msg m = req_of(MSG_COUNT, COLL, 99, 1);
        encode(&m, 11, &b);
        bad(r, "unknown partition", b.data, b.len, DV_ESTALE, "not held");
        raw_call(r, b.data, b.len, &rr);
        assert_int_equal(rr.epoch, 0);
        m = req_of(MSG_COUNT, "nope", 0, 1);
        encode(&m, 12, &b);
        bad(r, "unknown collection", b.data, b.len, DV_ESTALE, "nope");
    }

    /* huge declared counts */
    {
        static const uint8_t top[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03};
        bad(r, "top array of 2^32-1", top, sizeof top, DV_EPROTO, NULL);

        hand_header(&b, MSG_UPSERT, 4);
        static const uint8_t ids[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03};
        mpw_raw(&b, ids, sizeof ids);
        bad(r, "upsert ids array of 2^32-1", b.data, b.len, DV_EPROTO, NULL);

        hand_header(&b, MSG_UPSERT, 4);
        mpw_array(&b, 1);
        mpw_u64(&b, 1);
        mpw_u64(&b, DIM);
        static const uint8_t bin[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0};
        mpw_raw(&b, bin, sizeof bin);
        bad(r, "upsert vector bin of 2^32-1 bytes", b.data, b.len, DV_EPROTO, NULL);

        buf_reset(&b);
        mpw_array(&b, 5);
        mpw_u64(&b, PROTO_VERSION);
        mpw_u64(&b, MSG_COUNT);
        mpw_u64(&b, 0);
        mpw_u64(&b, 4243);
        mpw_array(&b, 4);
        static const uint8_t str[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b'};
        mpw_raw(&b, str, sizeof str);
        bad(r, "collection str of 2^32-1 bytes", b.data, b.len, DV_EPROTO, NULL);

        hand_header(&b, MSG_COUNT, 1);
        static const uint8_t map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a', 0x01};
        mpw_raw(&b, map, sizeof map);
        bad(r, "filter map of 2^32-1 pairs", b.data, b.len, DV_EPROTO, NULL);

        hand_header(&b, MSG_GET, 3);
        static const uint8_t arr16[] = {0xdc, 0xff, 0xff, 0x01};
        mpw_raw(&b, arr16, sizeof arr16);
        bad(r, "get ids array of 65535", b.data, b.len, DV_EPROTO, NULL);
    }

    /* well-formed requests with bad values */
    {
        struct buf f = BUF_INIT;
        struct msg m = req_of(MSG_COUNT, COLL, 0, 1);
        m.u.count_req.filter = mp_of(&f, "{\"must\":[{\"key\":\"n\",\"range\":{\"lt\":\"x\"}}]}");
        encode(&m, 13, &b);
        bad(r, "bad filter", b.data, b.len, DV_EINVAL, "filter");
        m = req_of(MSG_SET_PAYLOAD, COLL, 0, 1);
        struct pid one = pid_num(1);
        m.u.set_payload_req = (struct msg_set_payload_req){9, &one, 1, {NULL, 0}};
        encode(&m, 14, &b);
        bad(r, "payload op 9", b.data, b.len, DV_EINVAL, "9");
        m = req_of(MSG_REPLICA_CREATE, "bad name!", 0, 1);
        m.u.create_req = (struct msg_create_req){.cfg = {.dim = DIM}};
        encode(&m, 15, &b);
        bad(r, "bad collection name", b.data, b.len, DV_EINVAL, "collection");
        m = req_of(MSG_REPLICA_CREATE, COLL, 5, 1);
        m.u.create_req = (struct msg_create_req){.cfg = {.dim = DIM, .metric = 9}};
        encode(&m, 16, &b);
        bad(r, "metric 9", b.data, b.len, DV_EINVAL, "metric");
        float q[DIM] = {0};
        struct msg_query qq = {.vec = q, .dim = DIM, .k = 0};
        struct msg_target t = {0, 1};
        m = req_of(MSG_SEARCH, COLL, 0, 0);
        m.u.search_req = (struct msg_search_req){&t, 1, &qq, 1};
        encode(&m, 17, &b);
        bad(r, "search k 0", b.data, b.len, DV_ERANGE, "k");
        buf_free(&f);
    }

    /* oversized: 1.5 MiB gets DV_ETOOBIG; 3 MiB is over the transport limit (2x): the
     * connection is dropped, the call fails, and a new call works */
    {
        struct msg m = req_of(MSG_UPSERT, COLL, 0, 1);
        struct upsert_data u;
        assert_int_equal(upsert_build(&m, &u, 200000, 24576, 0, DIM, false), DV_OK);
        encode(&m, 18, &b);
        assert_true(b.len > 1536 * 1024 && b.len < 2048 * 1024);
        bad(r, "1.5 MiB upsert", b.data, b.len, DV_ETOOBIG, "exceeds");
        raw_call(r, b.data, b.len, &rr);
        assert_int_equal(rr.type, MSG_UPSERT);
        assert_int_equal(rr.req_id, 18);
        upsert_free(&u);

        m = req_of(MSG_UPSERT, COLL, 0, 1);
        assert_int_equal(upsert_build(&m, &u, 300000, 49152, 0, DIM, false), DV_OK);
        encode(&m, 19, &b);
        assert_true(b.len > 3072 * 1024);
        struct rpc *quick = client(p, 1500);
        void *reply = NULL;
        size_t len = 0;
        char err[DV_ERRMSG_SIZE] = "";
        uint64_t t0 = clock_mono_ms();
        int rc = rpc_call_raw(quick, b.data, b.len, &reply, &len, err);
        printf("# 3 MiB upsert: %s after %" PRIu64 " ms: %s\n", dv_errname(rc),
               clock_mono_ms() - t0, err);
        free(reply);
        assert_true(rc == DV_EIO || rc == DV_ETIMEDOUT);
        upsert_free(&u);
        /* the dropped connection is redialed (50 ms, backing off): a hello on the same client
         * succeeds within seconds; the other client never noticed */
        struct msg hm = {.type = MSG_HELLO};
        struct msg_reply hr;
        t0 = clock_mono_ms();
        int tries = 0;
        do {
            rc = call(quick, &hm, &hr, err);
            msg_reply_free(&hr);
            tries++;
        } while (rc != DV_OK && clock_mono_ms() - t0 < 10000);
        printf("# hello on the same client after the drop: %s after %d tries, %" PRIu64 " ms\n",
               dv_errname(rc), tries, clock_mono_ms() - t0);
        assert_int_equal(rc, DV_OK);
        hello_ok(r);
    }

    /* nothing of the above was written */
    assert_int_equal(count_of(r, COLL, 0, 1, NULL), 500);
    assert_int_equal(check_range(r, COLL, 0, 1, 0, 500, 0, true), 500);
    assert_int_equal(present(r, COLL, 0, 1, 100000, 10), 0);
    assert_int_equal(present(r, COLL, 0, 1, 200000, 1000), 0);
    assert_int_equal(present(r, COLL, 0, 1, 300000, 1000), 0);
    buf_free(&b);
    sp_signal(p, SIGTERM);
    assert_true(sp_wait_exit(p, 15000));
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
}

/* ---- 4. and 5. writes while the node is killed or stopped -------------------------------- */

/* A client thread upserting batches of distinct ids [first + i * batch, ...) until told to
 * stop or a call fails; it records what was acknowledged. No cmocka calls on this thread. */
struct writer {
    pthread_t th;
    struct rpc *r;
    uint32_t part;
    uint64_t first;
    uint32_t batch;
    atomic_bool *stop;
    uint64_t acked;    /* batches acknowledged: ids [first, first + acked * batch) */
    uint64_t last_lsn; /* LSN of the last acknowledged batch */
    int end_rc;        /* the failure that ended it (DV_OK: told to stop) */
    char end_err[DV_ERRMSG_SIZE];
    uint64_t end_ms; /* clock_mono_ms when it ended */
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    while (!atomic_load(w->stop)) {
        uint64_t lsn = 0;
        int rc = upsert_range(w->r, COLL, w->part, 1, w->first + w->acked * w->batch, w->batch, 0,
                              &lsn, w->end_err);
        if (rc != DV_OK) {
            w->end_rc = rc;
            break;
        }
        w->acked++;
        w->last_lsn = lsn;
    }
    w->end_ms = clock_mono_ms();
    return NULL;
}

/* Starts w on its own thread with client r (created beforehand: nothing between the
 * thread's start and its join may fail the test, as w lives on the test's stack). Returns
 * pthread_create's result. */
static int writer_start(struct writer *w, struct rpc *r, uint32_t part, uint64_t first,
                        uint32_t batch, atomic_bool *stop)
{
    *w = (struct writer){.r = r, .part = part, .first = first, .batch = batch, .stop = stop};
    return pthread_create(&w->th, NULL, writer_main, w);
}

static void test_kill9_under_load(void **state)
{
    (void)state;
    /* Checkpoints every second, so the kill may also land in one. */
    static const char *const extra[] = {"--checkpoint.interval", "1s"};
    struct sp_proc *p = new_proc(false, extra, 2);
    start(p);
    struct rpc *r = client(p, 10000);
    create_ok(r, COLL, 0, 1, WAL_SYNC_ALWAYS);

    enum { NW = 2, BATCH = 50 };
    atomic_bool stop;
    atomic_init(&stop, false);
    struct writer w[NW];
    struct rpc *wr[NW];
    for (int i = 0; i < NW; i++)
        wr[i] = client(p, 3000);
    int started = 0, trc = 0;
    while (started < NW &&
           (trc = writer_start(&w[started], wr[started], 0, (uint64_t)(started + 1) * 1000000,
                               BATCH, &stop)) == 0)
        started++;
    if (trc == 0)
        clock_sleep_ms(1500);
    sp_kill9(p);
    uint64_t killed = clock_mono_ms();
    atomic_store(&stop, true);
    for (int i = 0; i < started; i++)
        pthread_join(w[i].th, NULL);
    assert_int_equal(trc, 0);

    uint64_t acked = 0;
    for (int i = 0; i < NW; i++) {
        printf("# writer %d: %" PRIu64 " batches acknowledged, then %s after %" PRId64 " ms: %s\n",
               i, w[i].acked, dv_errname(w[i].end_rc), (int64_t)(w[i].end_ms - killed),
               w[i].end_err);
        assert_true(w[i].acked > 0); /* there was write load */
        acked += w[i].acked * BATCH;
    }
    assert_true(WIFSIGNALED(p->status) && WTERMSIG(p->status) == SIGKILL);

    start(p);
    for (int i = 0; i < NW; i++)
        assert_int_equal(check_range(r, COLL, 0, 1, w[i].first, w[i].acked * BATCH, 0, true),
                         w[i].acked * BATCH);
    /* At most the batch each writer had in flight may have been applied too. */
    uint64_t n = count_of(r, COLL, 0, 1, NULL);
    printf("# %" PRIu64 " points acknowledged, %" PRIu64 " after the restart\n", acked, n);
    assert_true(n >= acked);
    assert_true(n <= acked + NW * BATCH);
}

static bool find_replica(const struct msg_list_rep *l, uint32_t part, uint64_t *lsn)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->replicas[i].part == part && l->replicas[i].coll.len == strlen(COLL) &&
            memcmp(l->replicas[i].coll.p, COLL, strlen(COLL)) == 0) {
            *lsn = l->replicas[i].applied_lsn;
            return true;
        }
    return false;
}

static void test_sigterm_drains(void **state)
{
    (void)state;
    static const char *const extra[] = {"--shutdown_timeout", "10s"};
    struct sp_proc *p = new_proc(false, extra, 2);
    start(p);
    struct rpc *r = client(p, 10000);
    create_ok(r, COLL, 0, 1, WAL_SYNC_INTERVAL);
    create_ok(r, COLL, 1, 1, WAL_SYNC_NEVER);
    uint64_t lsn1 = 0;
    for (uint64_t at = 0; at < 600; at += 200)
        lsn1 = upsert_ok(r, COLL, 1, 1, at, 200);
    uint64_t lsn0_start = info_of(r, COLL, 0, 1).applied_lsn;

    enum { BATCH = 100 };
    atomic_bool stop;
    atomic_init(&stop, false);
    struct writer w;
    struct rpc *wr = client(p, 5000);
    assert_int_equal(writer_start(&w, wr, 0, 0, BATCH, &stop), 0);
    clock_sleep_ms(800);
    uint64_t t0 = clock_mono_ms();
    sp_signal(p, SIGTERM);
    bool exited = sp_wait_exit(p, 12000);
    uint64_t took = clock_mono_ms() - t0;
    atomic_store(&stop, true);
    pthread_join(w.th, NULL);

    printf("# SIGTERM: exited after %" PRIu64 " ms; the writer had %" PRIu64
           " batches acknowledged, then %s %" PRId64 " ms after the signal: %s\n",
           took, w.acked, dv_errname(w.end_rc), (int64_t)(w.end_ms - t0), w.end_err);
    if (!exited || took >= 10000 || !WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0)
        sp_dump_log(p, 3000);
    assert_true(exited);
    assert_true(took < 10000);
    assert_true(WIFEXITED(p->status));
    assert_int_equal(WEXITSTATUS(p->status), 0);
    assert_true(w.acked > 0);
    {
        struct buf log = BUF_INIT;
        sp_read_file(p->log, &log);
        assert_non_null(strstr((const char *)log.data, "stopped"));
        buf_free(&log);
    }

    start(p);
    struct msg m = {.type = MSG_REPLICA_LIST};
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    assert_int_equal(rep.m.u.list_rep.n, 2);
    uint64_t after0 = 0, after1 = 0;
    assert_true(find_replica(&rep.m.u.list_rep, 0, &after0));
    assert_true(find_replica(&rep.m.u.list_rep, 1, &after1));
    msg_reply_free(&rep);
    /* The idle replica is exactly as it was. The written one holds every acknowledged batch,
     * and at most the one that was in flight when the signal came (applied but not
     * acknowledged when its reply could not be delivered). */
    assert_int_equal(after1, lsn1);
    assert_int_equal(count_of(r, COLL, 1, 1, NULL), 600);
    assert_true(after0 >= w.last_lsn);
    assert_true(after0 <= w.last_lsn + 1);
    uint64_t n0 = count_of(r, COLL, 0, 1, NULL);
    assert_int_equal(n0, (after0 - lsn0_start) * BATCH);
    assert_int_equal(check_range(r, COLL, 0, 1, 0, w.acked * BATCH, 0, true), w.acked * BATCH);
    if (after0 != w.last_lsn)
        printf("# the batch in flight at SIGTERM was applied but its reply was lost (%s)\n",
               dv_errname(w.end_rc));
}

/* One long upsert on its own thread (no cmocka calls on it). */
struct big_write {
    pthread_t th;
    struct rpc *r;
    uint32_t n;
    uint64_t lsn, start_ms, end_ms;
    int rc;
    char err[DV_ERRMSG_SIZE];
};

static void *big_write_main(void *arg)
{
    struct big_write *b = arg;
    b->start_ms = clock_mono_ms();
    b->rc = upsert_range(b->r, COLL, 0, 1, 0, b->n, 0, &b->lsn, b->err);
    b->end_ms = clock_mono_ms();
    return NULL;
}

/*
 * SIGTERM while a request runs: that request is finished AND answered, a request that
 * arrives during the drain on an open connection is answered DV_ESHUTDOWN, and the process
 * exits 0 with the write on disk.
 */
static void test_sigterm_answers_in_flight(void **state)
{
    (void)state;
    static const char *const extra[] = {"--shutdown_timeout", "10s"};
    struct sp_proc *p = new_proc(true, extra, 2);
    start(p);
    struct rpc *r = client(p, 20000), *other = client(p, 5000);
    create_ok(r, COLL, 0, 1, WAL_SYNC_ALWAYS);
    hello_ok(other); /* connected before the signal */

    struct big_write b = {.r = r, .n = 15000};
    assert_int_equal(pthread_create(&b.th, NULL, big_write_main, &b), 0);
    clock_sleep_ms(200);
    uint64_t t0 = clock_mono_ms();
    sp_signal(p, SIGTERM);
    clock_sleep_ms(50);
    struct buf body = BUF_INIT;
    int ready = 0, healthy = 0;
    sp_http_get(p->http_port, "/readyz", &ready, &body);
    sp_http_get(p->http_port, "/healthz", &healthy, &body);
    buf_free(&body);
    struct msg m = {.type = MSG_HELLO};
    struct msg_reply rep;
    char err[DV_ERRMSG_SIZE];
    int during = call(other, &m, &rep, err);
    msg_reply_free(&rep);
    bool exited = sp_wait_exit(p, 12000);
    uint64_t exit_ms = clock_mono_ms() - t0;
    pthread_join(b.th, NULL);

    printf("# upsert of %u points: %s after %" PRIu64 " ms (%" PRId64 " ms after SIGTERM): %s\n",
           b.n, dv_errname(b.rc), b.end_ms - b.start_ms, (int64_t)(b.end_ms - t0), b.err);
    if (!exited || !WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0)
        sp_dump_log(p, 3000);
    printf("# during the drain: hello %s \"%s\", /readyz %d, /healthz %d; exit after %" PRIu64
           " ms\n",
           dv_errname(during), err, ready, healthy, exit_ms);
    assert_true(exited);
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
    if (b.end_ms <= t0)
        fail_msg("the write ended before the signal: nothing was in flight (make it bigger)");
    start(p);
    uint64_t n = count_of(r, COLL, 0, 1, NULL);
    printf("# after the restart: %" PRIu64 " points\n", n);
    assert_int_equal(ready, 503);
    assert_int_equal(healthy, 200);
    assert_int_equal(during, DV_ESHUTDOWN);
    assert_int_equal(b.rc, DV_OK);
    assert_int_equal(n, b.n);
}

/* ---- 6. command line --------------------------------------------------------------------- */

/* Runs dvec-shard with args; checks the exit status and that the output names `text`. */
static void run_expect(const char *const *args, int status, const char *text)
{
    struct buf out = BUF_INIT;
    int st = sp_run(args, 15000, &out);
    const char *o = (const char *)out.data;
    bool ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == status &&
              (text == NULL || strstr(o, text) != NULL);
    if (!ok)
        print_error("dvec-shard %s ...: wait status %d, want exit %d and \"%s\"; output:\n%s\n",
                    args[0] ? args[0] : "", st, status, text ? text : "", o);
    assert_true(ok);
    buf_free(&out);
}

static void test_cli(void **state)
{
    (void)state;
    struct sp_proc *p = new_proc(false, NULL, 0);
    start(p);
    struct rpc *r = client(p, 10000);

    /* a second process on the same data dir */
    char listen[64];
    snprintf(listen, sizeof listen, "tcp://127.0.0.1:%u", (unsigned)sp_port());
    const char *second[] = {"--data_dir", p->data,           "--listen", listen, "--http",
                            "",           "--search_listen", "",         NULL};
    run_expect(second, 2, "in use");
    hello_ok(r);

    /* --help lists every key of the schema */
    struct buf out = BUF_INIT;
    const char *help[] = {"--help", NULL};
    int st = sp_run(help, 15000, &out);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (const struct cfg_field *f = shard_cfg_schema; f->key; f++) {
        if (strstr((const char *)out.data, f->key) == NULL)
            print_error("--help does not list %s\n", f->key);
        assert_non_null(strstr((const char *)out.data, f->key));
    }
    buf_free(&out);
    const char *version[] = {"--version", NULL};
    run_expect(version, 0, "dvec-shard");

    /* bad flags and values exit 2 naming them (the data dir is never touched) */
    char dir[128];
    snprintf(dir, sizeof dir, "%s/never", p->base);
    const char *unknown[] = {"--data_dir", dir, "--no_such_key", "1", NULL};
    run_expect(unknown, 2, "no_such_key");
    const char *bytes[] = {"--data_dir", dir, "--max_message", "lots", NULL};
    run_expect(bytes, 2, "max_message");
    const char *small[] = {"--data_dir", dir, "--max_message=1KiB", NULL};
    run_expect(small, 2, "max_message");
    const char *range[] = {"--data_dir", dir, "--contexts", "0", NULL};
    run_expect(range, 2, "contexts");
    const char *enumv[] = {"--data_dir", dir, "--fsync", "sometimes", NULL};
    run_expect(enumv, 2, "fsync");
    const char *dur[] = {"--data_dir", dir, "--checkpoint.interval", "5 parsecs", NULL};
    run_expect(dur, 2, "checkpoint.interval");
    const char *novalue[] = {"--data_dir", dir, "--listen", NULL};
    run_expect(novalue, 2, "listen");
    const char *positional[] = {"--data_dir", dir, "stray", NULL};
    run_expect(positional, 2, "stray");
    const char *nodir[] = {"--listen", listen, NULL};
    run_expect(nodir, 2, "data_dir");
    const char *noconf[] = {"--config", "/nonexistent/shard.yaml", NULL};
    run_expect(noconf, 2, "shard.yaml");
    assert_int_equal(access(dir, F_OK), -1);
    hello_ok(r);
}

/* ---- 7. HTTP ----------------------------------------------------------------------------- */

/* The value of the sample of `name` whose labels include every one of `labels` (each like
 * op="upsert"); -1 when there is none. */
static double metric_value(const char *text, const char *name, const char *const *labels)
{
    size_t nl = strlen(name);
    for (const char *line = text, *eol; line && *line; line = eol ? eol + 1 : NULL) {
        eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len <= nl || strncmp(line, name, nl) != 0 || (line[nl] != '{' && line[nl] != ' '))
            continue;
        char l[1024];
        snprintf(l, sizeof l, "%.*s", (int)len, line);
        bool all = true;
        for (size_t i = 0; labels && labels[i]; i++)
            all = all && strstr(l, labels[i]) != NULL;
        if (!all)
            continue;
        const char *v = strrchr(l, ' ');
        return v ? strtod(v + 1, NULL) : -1;
    }
    return -1;
}

/* One call through the node's search port. */
static int port_call(struct tcpcall *tc, const struct msg *m, struct msg_reply *rep, char *err)
{
    struct tcpcall_job j = {.c = tc, .req = m, .timeout_ms = 10000};
    tcpcall_many(&j, 1);
    *rep = j.rep;
    snprintf(err, DV_ERRMSG_SIZE, "%s", j.errmsg);
    return j.rc;
}

/* The search port (search_listen): searches, gets and hello answer as on the native URL;
 * anything that would change the node is refused, naming the native URL, and changes nothing. */
static void test_search_port(void **state)
{
    (void)state;
    struct sp_proc *p = new_proc(false, NULL, 0);
    start(p);
    struct rpc *r = client(p, 10000);
    create_ok(r, COLL, 0, 1, 1);
    upsert_ok(r, COLL, 0, 1, 0, 500);
    struct tcpcall *tc;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(tcpcall_open(p->search_url, 0, &tc, err), DV_OK);

    struct msg m = {.type = MSG_HELLO};
    struct msg_reply rep, want;
    assert_int_equal(port_call(tc, &m, &rep, err), DV_OK);
    assert_int_equal(rep.m.u.hello_rep.n_replicas, 1);
    msg_reply_free(&rep);

    float qv[DIM];
    pu_vec(77, 0, DIM, qv);
    struct msg_query q = {.vec = qv, .dim = DIM, .k = K, .ef = 64};
    struct msg_target t = {0, 1};
    m = req_of(MSG_SEARCH, COLL, 0, 0);
    m.u.search_req = (struct msg_search_req){&t, 1, &q, 1};
    assert_int_equal(port_call(tc, &m, &rep, err), DV_OK);
    call_ok(r, &m, &want);
    const struct msg_hits *a = &rep.m.u.search_rep.parts[0].results[0],
                          *b = &want.m.u.search_rep.parts[0].results[0];
    assert_int_equal(a->n, K);
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->hits[0].id.lo, 77);
    for (uint32_t i = 0; i < a->n; i++)
        assert_true(a->hits[i].id.lo == b->hits[i].id.lo);
    msg_reply_free(&rep);
    msg_reply_free(&want);

    /* writes and replica changes: refused, the connection kept */
    struct upsert_data u;
    m = req_of(MSG_UPSERT, COLL, 0, 1);
    assert_int_equal(upsert_build(&m, &u, 1000, 10, 0, DIM, false), DV_OK);
    assert_int_equal(port_call(tc, &m, &rep, err), DV_EINVAL);
    assert_non_null(strstr(err, "native URL"));
    assert_non_null(strstr(err, "upsert"));
    msg_reply_free(&rep);
    upsert_free(&u);
    m = req_of(MSG_REPLICA_DROP, COLL, 0, 1);
    assert_int_equal(port_call(tc, &m, &rep, err), DV_EINVAL);
    msg_reply_free(&rep);
    m = (struct msg){.type = MSG_HELLO};
    assert_int_equal(port_call(tc, &m, &rep, err), DV_OK);
    msg_reply_free(&rep);
    struct msg_info_rep in = info_of(r, COLL, 0, 1);
    assert_int_equal(in.points, 500);
    tcpcall_close(tc); /* r: closed by the teardown */
}

static void test_http(void **state)
{
    (void)state;
    struct sp_proc *p = new_proc(true, NULL, 0);
    start(p);
    struct rpc *r = client(p, 10000);
    create_ok(r, COLL, 0, 1, 1);
    upsert_ok(r, COLL, 0, 1, 0, 100);
    upsert_ok(r, COLL, 0, 1, 100, 100);
    assert_int_equal(count_of(r, COLL, 0, 1, NULL), 200);
    struct msg m = req_of(MSG_COUNT, COLL, 0, 0);
    call_fails(r, &m, DV_ESTALE, 1, NULL);
    m = req_of(MSG_COUNT, COLL, 9, 1);
    call_fails(r, &m, DV_ESTALE, 0, NULL);
    struct raw_rep rr;
    raw_call(r, "\xc1", 1, &rr);
    assert_int_equal(rr.code, DV_EPROTO);

    struct buf body = BUF_INIT;
    int status = 0;
    assert_int_equal(sp_http_get(p->http_port, "/healthz", &status, &body), DV_OK);
    assert_int_equal(status, 200);
    assert_int_equal(sp_http_get(p->http_port, "/readyz", &status, &body), DV_OK);
    assert_int_equal(status, 200);
    assert_int_equal(sp_http_get(p->http_port, "/no-such-page", &status, &body), DV_OK);
    assert_int_equal(status, 404);
    assert_int_equal(sp_http_get(p->http_port, "/metrics", &status, &body), DV_OK);
    assert_int_equal(status, 200);
    const char *text = (const char *)body.data;

    /* request counters of what ran above */
    struct {
        const char *labels[3];
        double want;
    } want[] = {
        {{"op=\"upsert\"", "outcome=\"ok\""}, 2},
        {{"op=\"count\"", "outcome=\"ok\""}, 1},
        {{"op=\"count\"", "outcome=\"stale_map\""}, 2},
        {{"op=\"replica_create\"", "outcome=\"ok\""}, 1},
        {{"op=\"error\"", "outcome=\"client_error\""}, 1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double v = metric_value(text, "dvec_shard_requests_total", want[i].labels);
        if (v != want[i].want)
            print_error("dvec_shard_requests_total{%s,%s} = %g, want %g\n", want[i].labels[0],
                        want[i].labels[1], v, want[i].want);
        assert_true(v == want[i].want);
    }
    const char *hello_ok_lbl[] = {"op=\"hello\"", "outcome=\"ok\"", NULL};
    assert_true(metric_value(text, "dvec_shard_requests_total", hello_ok_lbl) >= 1);
    const char *lat[] = {"op=\"upsert\"", NULL};
    assert_true(metric_value(text, "dvec_shard_request_duration_seconds_count", lat) == 2);
    const char *rep_lbl[] = {"partition=\"0\"", NULL};
    assert_true(metric_value(text, "dvec_shard_replica_points", rep_lbl) == 200);
    assert_true(metric_value(text, "dvec_shard_replicas", NULL) == 1);

    /* promtool accepts the exposition */
    if (access("/usr/bin/promtool", X_OK) != 0 && system("command -v promtool >/dev/null") != 0) {
        printf("# promtool not found (Debian package prometheus): metrics not linted\n");
    } else {
        char path[128], cmd[512];
        snprintf(path, sizeof path, "%s/metrics.txt", p->base);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(body.data, 1, body.len, f), body.len);
        fclose(f);
        snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' > '%s.out' 2>&1", path, path);
        int st = system(cmd);
        if (st != 0) {
            struct buf o = BUF_INIT;
            snprintf(cmd, sizeof cmd, "%s.out", path);
            sp_read_file(cmd, &o);
            print_error("promtool check metrics: status %d:\n%s\n", st, (const char *)o.data);
            buf_free(&o);
        }
        assert_int_equal(st, 0);
    }
    buf_free(&body);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-dvec-shard\n", argv[0]);
        return 2;
    }
    sp_exe = argv[1];
    sp_init_ports();
    signal(SIGPIPE, SIG_IGN);
    if (getenv("DVEC_ITEST_ONLY")) /* e.g. DVEC_ITEST_ONLY='test_sigterm*' */
        cmocka_set_test_filter(getenv("DVEC_ITEST_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_op, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_incarnations, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_under_load, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_drains, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_answers_in_flight, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_port, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_http, sp_case_setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
