/* test_part.c - replicas: operations, filters, reopen, checkpoints, corruption, fault sweep,
 * snapshots, rebasing an open replica onto its renamed directory. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "clock.h"
#include "jsonmp.h"
#include "part_int.h"
#include "part_util.h"

#define DIM 16

static void opts(struct part_opts *o, enum hnsw_metric m)
{
    part_opts_default(o);
    o->index.dim = DIM;
    o->index.metric = m;
    o->index.m = 8;
    o->index.ef_construction = 64;
    o->wal.sync = WAL_SYNC_NEVER;
    o->background = false;
}

static struct filter *compile(const char *json)
{
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    struct filter *f = NULL;
    assert_int_equal(jsonmp_from_text(json, strlen(json), &b, err), DV_OK);
    int rc = filter_compile(b.data, b.len, &f, err);
    if (rc != DV_OK)
        print_message("filter %s: %s\n", json, err);
    assert_int_equal(rc, DV_OK);
    buf_free(&b);
    return f;
}

/* Checks that ids [0, n) are present exactly with version ver[i] (UINT32_MAX: absent). */
static size_t extra_points; /* points outside ids [0, n) that count() sees */

static void check_content(struct part *p, const uint32_t *ver, size_t n)
{
    char err[DV_ERRMSG_SIZE];
    struct pid *ids = malloc(n * sizeof *ids);
    size_t expect = 0;
    for (size_t i = 0; i < n; i++) {
        ids[i] = pid_num(i);
        expect += ver[i] != UINT32_MAX;
    }
    struct part_result r;
    assert_int_equal(part_get(p, ids, n, true, true, &r, err), DV_OK);
    assert_int_equal(r.n, expect);
    float v[DIM];
    struct part_info in;
    part_get_info(p, &in);
    for (size_t i = 0; i < r.n; i++) {
        uint64_t id = r.hits[i].id.lo;
        assert_true(id < n && ver[id] != UINT32_MAX);
        assert_int_equal(pu_ver_of(r.hits[i].payload, r.hits[i].payload_len), ver[id]);
        pu_vec(id, ver[id], DIM, v);
        if (in.index.metric == HNSW_COSINE) {
            double nn = 0;
            for (int d = 0; d < DIM; d++)
                nn += (double)v[d] * v[d];
            for (int d = 0; d < DIM; d++)
                assert_true(fabs(v[d] / sqrt(nn) - r.hits[i].vec[d]) < 1e-5);
            continue;
        }
        assert_memory_equal(v, r.hits[i].vec, sizeof v);
    }
    part_result_free(&r);
    uint64_t cnt;
    assert_int_equal(part_count(p, NULL, &cnt, err), DV_OK);
    assert_int_equal(cnt, expect + extra_points);
    free(ids);
}

/* Every operation, its errors, and the content after close + reopen (WAL replay). */
static void test_ops(void **state)
{
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    size_t n = 1500;
    uint32_t *ver = malloc(n * sizeof *ver);
    pu_tmpdir(dir, sizeof dir, "r");
    opts(&o, HNSW_L2);
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    struct part *p2 = (struct part *)1;
    assert_int_equal(part_create(io_posix(), dir, &o, &p2, err), DV_EEXIST);
    assert_null(p2);
    for (size_t i = 0; i < n; i += 250)
        assert_int_equal(pu_upsert_range(p, i, 250, 0, NULL, err), DV_OK);
    for (size_t i = 0; i < n; i++)
        ver[i] = 0;
    /* replace some, delete some (and some missing ids) */
    assert_int_equal(pu_upsert_range(p, 100, 50, 1, NULL, err), DV_OK);
    for (size_t i = 100; i < 150; i++)
        ver[i] = 1;
    struct pid del[30];
    for (int i = 0; i < 30; i++)
        del[i] = pid_num(200 + (uint64_t)i * 2);
    del[29] = pid_num(999999);
    size_t deleted;
    assert_int_equal(part_delete(p, del, 30, NULL, &deleted, err), DV_OK);
    assert_int_equal(deleted, 29);
    for (int i = 0; i < 29; i++)
        ver[200 + i * 2] = UINT32_MAX;
    check_content(p, ver, n);

    /* UUID ids keep their kind */
    struct pid u;
    assert_int_equal(pid_parse("6f1c2a3b-0000-4000-8000-00000000abcd", 36, &u), DV_OK);
    float vec[DIM];
    pu_vec(42, 7, DIM, vec);
    struct part_point pt = {u, vec, DIM, NULL, 0, NULL, 0};
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_OK);
    extra_points = 1;
    struct part_result r;
    assert_int_equal(part_get(p, &u, 1, false, true, &r, err), DV_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.hits[0].id.kind, PID_UUID);
    assert_true(pid_eq(&r.hits[0].id, &u));
    assert_null(r.hits[0].payload);
    part_result_free(&r);

    /* bad input: nothing written */
    uint64_t before = 0, after = 0;
    struct part_info in;
    part_get_info(p, &in);
    before = in.applied_lsn;
    pt.id = pid_num(5000);
    pt.dim = DIM + 1;
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_EDIM);
    assert_non_null(strstr(err, "dimensions"));
    pt.dim = DIM;
    vec[3] = NAN;
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_ENAN);
    assert_non_null(strstr(err, "vector[3]"));
    vec[3] = INFINITY;
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_ENAN);
    vec[3] = 0;
    uint8_t notmap[] = {0x93, 1, 2, 3};
    pt.payload = notmap;
    pt.payload_len = sizeof notmap;
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_EINVAL);
    assert_non_null(strstr(err, "map"));
    uint8_t trunc[] = {0x82, 0xa1, 'a'};
    pt.payload = trunc;
    pt.payload_len = sizeof trunc;
    assert_int_equal(part_upsert(p, &pt, 1, NULL, err), DV_EINVAL);
    assert_int_equal(part_upsert(p, &pt, 0, NULL, err), DV_EINVAL);
    struct pid missing = pid_num(777777);
    uint8_t empty_map[] = {0x80};
    assert_int_equal(part_set_payload(p, PART_PAYLOAD_SET, &missing, 1, empty_map, 1, NULL, err),
                     DV_ENOTFOUND);
    assert_non_null(strstr(err, "777777"));
    part_get_info(p, &in);
    after = in.applied_lsn;
    assert_int_equal(before, after);

    /* payload operations */
    struct pid one = pid_num(7);
    struct buf b = BUF_INIT;
    mpw_map(&b, 2);
    mpw_str(&b, "ver", 3);
    mpw_u64(&b, 9);
    mpw_str(&b, "extra", 5);
    mpw_bool(&b, true);
    assert_int_equal(part_set_payload(p, PART_PAYLOAD_SET, &one, 1, b.data, b.len, NULL, err),
                     DV_OK);
    assert_int_equal(part_get(p, &one, 1, false, true, &r, err), DV_OK);
    assert_int_equal(pu_ver_of(r.hits[0].payload, r.hits[0].payload_len), 9);
    const uint8_t *val;
    size_t vl;
    assert_int_equal(mpk_map_find(r.hits[0].payload, r.hits[0].payload_len, "color", 5, &val, &vl),
                     DV_OK); /* merged: old keys stay */
    part_result_free(&r);
    buf_reset(&b);
    mpw_array(&b, 1);
    mpw_str(&b, "color", 5);
    assert_int_equal(part_set_payload(p, PART_PAYLOAD_DELETE, &one, 1, b.data, b.len, NULL, err),
                     DV_OK);
    assert_int_equal(part_get(p, &one, 1, false, true, &r, err), DV_OK);
    assert_int_equal(mpk_map_find(r.hits[0].payload, r.hits[0].payload_len, "color", 5, &val, &vl),
                     DV_ENOTFOUND);
    part_result_free(&r);
    /* set at a key: {"tags": "x", "meta": {"a": 1, "deep": {"b": 2}}} + [meta.deep, {"c": 3}]
     * -> meta.deep has b and c; "tags" (no object) at a key path is replaced by an object */
    assert_int_equal(part_set_payload(p, PART_PAYLOAD_CLEAR, &one, 1, NULL, 0, NULL, err), DV_OK);
    struct buf j = BUF_INIT;
    const char *start = "{\"tags\": \"x\", \"meta\": {\"a\": 1, \"deep\": {\"b\": 2}}}";
    assert_int_equal(jsonmp_from_text(start, strlen(start), &j, err), DV_OK);
    assert_int_equal(part_set_payload(p, PART_PAYLOAD_SET, &one, 1, j.data, j.len, NULL, err),
                     DV_OK);
    const char *cases[][2] = {
        {"[\"meta.deep\", {\"c\": 3}]",
         "{\"tags\":\"x\",\"meta\":{\"a\":1,\"deep\":{\"b\":2,\"c\":3}}}"},
        {"[\"meta\", {\"a\": 5}]",
         "{\"tags\":\"x\",\"meta\":{\"deep\":{\"b\":2,\"c\":3},\"a\":5}}"},
        {"[\"tags.t\", {\"n\": 1}]",
         "{\"meta\":{\"deep\":{\"b\":2,\"c\":3},\"a\":5},\"tags\":{\"t\":{\"n\":1}}}"},
    };
    for (size_t c = 0; c < 3; c++) {
        buf_reset(&j);
        assert_int_equal(jsonmp_from_text(cases[c][0], strlen(cases[c][0]), &j, err), DV_OK);
        assert_int_equal(
            part_set_payload(p, PART_PAYLOAD_SET_KEY, &one, 1, j.data, j.len, NULL, err), DV_OK);
        assert_int_equal(part_get(p, &one, 1, false, true, &r, err), DV_OK);
        char *text = NULL;
        assert_int_equal(jsonmp_to_text(r.hits[0].payload, r.hits[0].payload_len, &text, err),
                         DV_OK);
        if (strcmp(text, cases[c][1]) != 0)
            print_message("set at a key %zu: %s, want %s\n", c, text, cases[c][1]);
        assert_string_equal(text, cases[c][1]);
        free(text);
        part_result_free(&r);
    }
    const char *bad[] = {"[\"\", {\"c\": 3}]", "[\"a..b\", {}]", "[\"a[0]\", {}]", "[\"a\", 3]",
                         "{\"a\": 1}"};
    for (size_t c = 0; c < 5; c++) {
        buf_reset(&j);
        assert_int_equal(jsonmp_from_text(bad[c], strlen(bad[c]), &j, err), DV_OK);
        assert_int_equal(
            part_set_payload(p, PART_PAYLOAD_SET_KEY, &one, 1, j.data, j.len, NULL, err),
            DV_EINVAL);
    }
    buf_free(&j);
    assert_int_equal(part_set_payload(p, PART_PAYLOAD_CLEAR, &one, 1, NULL, 0, NULL, err), DV_OK);
    buf_reset(&b);
    pu_payload(7, 0, &b);
    assert_int_equal(part_set_payload(p, PART_PAYLOAD_OVERWRITE, &one, 1, b.data, b.len, NULL, err),
                     DV_OK);
    buf_free(&b);
    check_content(p, ver, n);

    /* scroll: every id once, in order, across pages */
    struct pid from, next;
    bool more = true, first = true;
    /* k, ef and limit are bounded */
    struct part_query big = {.vec = vec,
                             .k = PART_MAX_K + 1,
                             .ef = 0,
                             .filter = NULL,
                             .with_payload = false,
                             .with_vector = false,
                             .quant = HNSW_QUANT_AUTO};
    assert_int_equal(part_search(p, &big, &r, NULL, err), DV_ERANGE);
    assert_non_null(strstr(err, "at most"));
    bool more2;
    assert_int_equal(
        part_scroll(p, NULL, PART_MAX_K + 1, NULL, false, false, &r, &next, &more2, err),
        DV_ERANGE);

    size_t seen = 0;
    uint64_t last = 0;
    while (more) {
        assert_int_equal(
            part_scroll(p, first ? NULL : &from, 97, NULL, false, false, &r, &next, &more, err),
            DV_OK);
        for (size_t i = 0; i < r.n; i++) {
            if (r.hits[i].id.kind == PID_NUM) {
                assert_true(seen == 0 || r.hits[i].id.lo > last);
                last = r.hits[i].id.lo;
            }
            seen++;
        }
        part_result_free(&r);
        from = next;
        first = false;
    }
    assert_int_equal(seen, n - 29 + 1);

    /* reopen: the WAL alone brings everything back */
    part_close(p);
    assert_int_equal(part_open(io_posix(), dir, &o, &p, err), DV_OK);
    check_content(p, ver, n);
    assert_int_equal(part_get(p, &u, 1, true, false, &r, err), DV_OK);
    assert_int_equal(r.n, 1);
    part_result_free(&r);
    part_close(p);
    pu_tmpdir_free(dir);
    free(ver);
    extra_points = 0;
}

/* Brute-force oracle: the k nearest matching points among ids [0, n) with versions ver. */
static size_t oracle(const float *q, const uint32_t *ver, size_t n, const struct filter *f,
                     uint32_t k, uint64_t *out)
{
    double *bd = malloc(k * sizeof *bd);
    size_t nb = 0;
    float v[DIM];
    struct buf pl = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (ver[i] == UINT32_MAX)
            continue;
        struct pid id = pid_num(i);
        pu_payload(i, ver[i], &pl);
        if (f != NULL && !filter_match(f, &id, pl.data, pl.len))
            continue;
        pu_vec(i, ver[i], DIM, v);
        double d = 0;
        for (int j = 0; j < DIM; j++)
            d += (double)(q[j] - v[j]) * (q[j] - v[j]);
        pu_topk_offer(bd, out, &nb, k, d, i);
    }
    buf_free(&pl);
    free(bd);
    return nb;
}

/* Filtered search at many selectivities: the planner's choice and recall against brute force. */
static void test_filtered_search(void **state)
{
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    size_t n = 6000;
    uint32_t *ver = calloc(n, sizeof *ver);
    pu_tmpdir(dir, sizeof dir, "r");
    opts(&o, HNSW_L2);
    o.exact_threshold = 400;
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    for (size_t i = 0; i < n; i += 1000)
        assert_int_equal(pu_upsert_range(p, i, 1000, 0, NULL, err), DV_OK);

    struct {
        const char *json;
        bool indexed_after; /* answered from the payload index once it exists */
    } cases[] = {
        {"{\"must\":[{\"key\":\"n\",\"match\":{\"value\":17}}]}", true},           /* 0.1% */
        {"{\"must\":[{\"key\":\"n\",\"range\":{\"gte\":10,\"lt\":60}}]}", true},   /* 5% */
        {"{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}", false}, /* 20% */
        {"{\"must\":[{\"key\":\"color\",\"match\":{\"any\":[\"red\",\"blue\"]}}],"
         "\"must_not\":[{\"key\":\"tags\",\"match\":{\"value\":\"t3\"}}]}",
         false}, /* 34% */
        {"{\"should\":[{\"key\":\"n\",\"range\":{\"lt\":5}},{\"has_id\":[4000,4001]}]}", false},
        {"{\"must\":[{\"key\":\"tags\",\"match\":{\"value\":\"all\"}}]}", false},     /* 100% */
        {"{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"purple\"}}]}", false}, /* none */
        /* has_id: the listed points are the candidates (an id that does not exist too) */
        {"{\"must\":[{\"has_id\":[5,17,300,2999,5999,99999,1200,1201,1202,4444,77,78]},"
         "{\"key\":\"n\",\"range\":{\"lt\":90}}]}",
         true},
    };
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            assert_int_equal(part_create_index(p, "n", PINDEX_INTEGER, NULL, err), DV_OK);
            assert_int_equal(part_create_index(p, "color", PINDEX_KEYWORD, NULL, err), DV_OK);
            assert_int_equal(part_create_index(p, "color", PINDEX_INTEGER, NULL, err), DV_EEXIST);
        }
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            struct filter *f = compile(cases[c].json);
            double hit = 0, tot = 0;
            uint64_t cnt, want = 0;
            for (size_t i = 0; i < n; i++) {
                struct buf pl = BUF_INIT;
                struct pid id = pid_num(i);
                pu_payload(i, 0, &pl);
                want += filter_match(f, &id, pl.data, pl.len);
                buf_free(&pl);
            }
            assert_int_equal(part_count(p, f, &cnt, err), DV_OK);
            assert_int_equal(cnt, want);
            for (int qi = 0; qi < 20; qi++) {
                float q[DIM];
                pu_vec(100000 + (uint64_t)qi, 0, DIM, q);
                uint64_t truth[10];
                size_t nt = oracle(q, ver, n, f, 10, truth);
                struct part_query pq = {.vec = q,
                                        .k = 10,
                                        .ef = 64,
                                        .filter = f,
                                        .with_payload = true,
                                        .with_vector = false,
                                        .quant = HNSW_QUANT_AUTO};
                struct part_result r;
                enum part_plan plan;
                assert_int_equal(part_search(p, &pq, &r, &plan, err), DV_OK);
                assert_int_equal(r.n, nt);
                if ((round == 1 || c == 7) && cases[c].indexed_after)
                    assert_int_equal(plan, PART_PLAN_INDEXED);
                for (size_t i = 0; i < r.n; i++) {
                    /* every result matches the filter */
                    assert_true(
                        filter_match(f, &r.hits[i].id, r.hits[i].payload, r.hits[i].payload_len));
                    for (size_t j = 0; j < nt; j++)
                        hit += r.hits[i].id.lo == truth[j];
                    if (i > 0)
                        assert_true(r.hits[i].score >= r.hits[i - 1].score);
                }
                tot += (double)nt;
                part_result_free(&r);
            }
            double rec = tot > 0 ? hit / tot : 1.0;
            if (rec < 0.95)
                print_message("round %d filter %zu: recall %.3f\n", round, c, rec);
            assert_true(rec >= 0.95);
            filter_free(f);
        }
    }
    /* indexes survive reopen (rebuilt from the payloads) */
    part_close(p);
    assert_int_equal(part_open(io_posix(), dir, &o, &p, err), DV_OK);
    struct part_info in;
    part_get_info(p, &in);
    assert_int_equal(in.n_indexes, 2);
    part_close(p);
    pu_tmpdir_free(dir);
    free(ver);
}

/* Checkpoint + WAL tail, reopen without rebuilding: identical answers; WAL segments dropped. */
static void test_checkpoint_reopen(void **state)
{
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    size_t n = 3000;
    uint32_t *ver = calloc(n, sizeof *ver);
    pu_tmpdir(dir, sizeof dir, "r");
    opts(&o, HNSW_COSINE);
    o.index.sq8 = true;
    o.index.sq8_train_min = 500;
    o.wal.segment_bytes = 64 * 1024;
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    for (size_t i = 0; i < 2000; i += 200)
        assert_int_equal(pu_upsert_range(p, i, 200, 0, NULL, err), DV_OK);
    assert_int_equal(part_create_index(p, "color", PINDEX_KEYWORD, NULL, err), DV_OK);
    struct part_info a, b;
    part_get_info(p, &a);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    part_get_info(p, &b);
    assert_int_equal(b.ckpt_lsn, a.applied_lsn);
    assert_true(b.wal_bytes < a.wal_bytes);
    assert_int_equal(part_checkpoint(p, err), DV_OK); /* nothing new: no-op */
    for (size_t i = 2000; i < n; i += 250)
        assert_int_equal(pu_upsert_range(p, i, 250, 0, NULL, err), DV_OK);
    struct pid del[100];
    for (int i = 0; i < 100; i++) {
        del[i] = pid_num((uint64_t)i * 13);
        ver[i * 13] = UINT32_MAX;
    }
    assert_int_equal(part_delete(p, del, 100, NULL, NULL, err), DV_OK);
    assert_int_equal(part_compact(p, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    assert_int_equal(pu_upsert_range(p, 10, 5, 3, NULL, err), DV_OK);
    for (int i = 10; i < 15; i++)
        ver[i] = 3;

    float q[DIM];
    pu_vec(123456, 0, DIM, q);
    struct part_query pq = {.vec = q,
                            .k = 10,
                            .ef = 50,
                            .filter = NULL,
                            .with_payload = false,
                            .with_vector = false,
                            .quant = HNSW_QUANT_AUTO};
    struct part_result r1, r2;
    assert_int_equal(part_search(p, &pq, &r1, NULL, err), DV_OK);
    part_close(p);
    assert_int_equal(part_open(io_posix(), dir, &o, &p, err), DV_OK);
    check_content(p, ver, n);
    assert_int_equal(part_search(p, &pq, &r2, NULL, err), DV_OK);
    assert_int_equal(r1.n, r2.n);
    for (size_t i = 0; i < r1.n; i++) {
        assert_true(pid_eq(&r1.hits[i].id, &r2.hits[i].id));
        assert_true(fabsf(r1.hits[i].score - r2.hits[i].score) < 1e-6f);
    }
    part_result_free(&r1);
    part_result_free(&r2);
    /* only the current checkpoint directory is left */
    char **names;
    size_t nn, nck = 0;
    assert_int_equal(io_posix()->list(io_posix(), dir, &names, &nn), 0);
    for (size_t i = 0; i < nn; i++)
        nck += strncmp(names[i], "ckpt-", 5) == 0;
    io_free_list(names, nn);
    assert_int_equal(nck, 1);
    part_close(p);
    pu_tmpdir_free(dir);
    free(ver);
}

/* An open whose WAL replay takes ckpt_replay_ms checkpoints soon after in the background (a
 * process killed again and again replays less each time); with 0 it waits for the interval. */
static void test_checkpoint_after_replay(void **state)
{
    (void)state;
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    struct part_info in;
    pu_tmpdir(dir, sizeof dir, "r");
    opts(&o, HNSW_L2);
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    for (size_t i = 0; i < 2000; i += 100)
        assert_int_equal(pu_upsert_range(p, i, 100, 0, NULL, err), DV_OK);
    part_close(p);
    /* 0: no checkpoint after the replay (the interval is 300 s) */
    o.background = true;
    o.ckpt_replay_ms = 0;
    assert_int_equal(part_open(io_posix(), dir, &o, &p, err), DV_OK);
    clock_sleep_ms(300);
    part_get_info(p, &in);
    assert_int_equal(in.ckpt_lsn, 0);
    part_close(p);
    /* 1 ms: replaying 2000 inserts takes longer; the background thread checkpoints */
    o.ckpt_replay_ms = 1;
    assert_int_equal(part_open(io_posix(), dir, &o, &p, err), DV_OK);
    part_get_info(p, &in);
    assert_true(in.open_ms >= 1);
    uint64_t end = clock_mono_ms() + 20000;
    do {
        clock_sleep_ms(10);
        part_get_info(p, &in);
        /* the count goes up at the end of a checkpoint, after its LSN is published: wait for
         * the count (a CI run read the LSN, then a count of 0) */
    } while (in.ckpt_count == 0 && clock_mono_ms() < end);
    assert_int_equal(in.ckpt_lsn, in.applied_lsn);
    assert_true(in.ckpt_count == 1);
    part_close(p);
    pu_tmpdir_free(dir);
}

/*
 * part_rebase: a replica written with sync never (as a pulled copy is) has its directory
 * renamed while open and goes on at the new path with sync always: later writes, a rotation,
 * a checkpoint and a compaction land there, the old path is gone, and a reopen at the new path
 * has everything (the records before the rename replayed from the WAL, none lost).
 */
static void test_rebase(void **state)
{
    (void)state;
    char base[4096], from[4200], to[4200], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    size_t n = 1200;
    uint32_t *ver = calloc(n, sizeof *ver);
    pu_tmpdir(base, sizeof base, "rb");
    snprintf(from, sizeof from, "%s/copy", base);
    snprintf(to, sizeof to, "%s/replica", base);
    assert_int_equal(mkdir(base, 0755), 0);
    opts(&o, HNSW_L2);
    o.wal.segment_bytes = 64 * 1024;
    o.background = true; /* paused and restarted around the rename */
    int crc = part_create(io_posix(), from, &o, &p, err);
    if (crc != DV_OK)
        print_error("part_create %s: %s\n", from, err);
    assert_int_equal(crc, DV_OK);
    assert_int_equal(pu_upsert_range(p, 0, 300, 0, NULL, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    for (size_t i = 300; i < 600; i += 100) /* after the checkpoint: only in the WAL */
        assert_int_equal(pu_upsert_range(p, i, 100, 0, NULL, err), DV_OK);

    part_pause_bg(p);
    assert_int_equal(rename(from, to), 0);
    int rc = part_rebase(p, to, WAL_SYNC_ALWAYS, err);
    if (rc != DV_OK)
        print_error("part_rebase: %s\n", err);
    assert_int_equal(rc, DV_OK);
    struct stat st;
    assert_int_not_equal(stat(from, &st), 0);
    check_content(p, ver, 600);

    /* Writes at the new path: new WAL segments, a checkpoint, a compaction. */
    uint64_t before = p->wal != NULL ? wal_durable_lsn(p->wal) : 0;
    for (size_t i = 600; i < n; i += 100)
        assert_int_equal(pu_upsert_range(p, i, 100, 0, NULL, err), DV_OK);
    assert_true(wal_durable_lsn(p->wal) > before); /* sync always now */
    struct pid del[50];
    for (int i = 0; i < 50; i++) {
        del[i] = pid_num((uint64_t)i * 7);
        ver[i * 7] = UINT32_MAX;
    }
    assert_int_equal(part_delete(p, del, 50, NULL, NULL, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    assert_int_equal(pu_upsert_range(p, 1000, 10, 2, NULL, err), DV_OK);
    for (int i = 1000; i < 1010; i++)
        ver[i] = 2;
    check_content(p, ver, n);
    assert_int_not_equal(stat(from, &st), 0); /* nothing was recreated at the old path */
    part_close(p);

    o.wal.sync = WAL_SYNC_ALWAYS;
    assert_int_equal(part_open(io_posix(), to, &o, &p, err), DV_OK);
    check_content(p, ver, n);
    part_close(p);
    pu_tmpdir_free(base);
    free(ver);
}

/* Flips one byte at `off` of file `path` (negative: from the end). */
static void flip(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    fstat(fd, &st);
    off_t at = off >= 0 ? off : st.st_size + off;
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void copy_tree(const char *from, const char *to)
{
    char cmd[13000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

/* Damaged files of every kind: the replica refuses with a message naming the file. */
static void test_corruption(void **state)
{
    char dir[4096], work[4200], path[8800], err[DV_ERRMSG_SIZE], ck[64];
    struct part_opts o;
    struct part *p;
    pu_tmpdir(dir, sizeof dir, "r");
    snprintf(work, sizeof work, "%s.work", dir);
    opts(&o, HNSW_L2);
    o.index.sq8 = true;
    o.index.sq8_train_min = 100;
    o.wal.segment_bytes = 64 * 1024;
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    for (size_t i = 0; i < 1000; i += 100)
        assert_int_equal(pu_upsert_range(p, i, 100, 0, NULL, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    for (size_t i = 1000; i < 2600; i += 100)
        assert_int_equal(pu_upsert_range(p, i, 100, 0, NULL, err), DV_OK);
    struct part_info in;
    part_get_info(p, &in);
    snprintf(ck, sizeof ck, "ckpt-%020llu", (unsigned long long)in.ckpt_lsn);
    part_close(p);

    /* every checkpoint file: header byte and body byte */
    static const char *const files[] = {"ids.dvi",       "payloads.dvp", "graph-0.dvg",
                                        "vectors-0.dvv", "codes-0.dvq",  "vmap-0.dvm"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        long offs[] = {5, 4096 + 3, -1};
        for (int k = 0; k < 3; k++) {
            copy_tree(dir, work);
            snprintf(path, sizeof path, "%s/%s/%s", work, ck, files[f]);
            flip(path, offs[k]);
            int rc = part_open(io_posix(), work, &o, &p, err);
            if (rc == DV_OK)
                print_message("file %s offset %ld: opened\n", files[f], offs[k]);
            assert_int_equal(rc, DV_ECORRUPT);
            assert_non_null(strstr(err, files[f]));
        }
    }
    /* meta */
    copy_tree(dir, work);
    snprintf(path, sizeof path, "%s/meta.dvm", work);
    flip(path, 20);
    assert_int_equal(part_open(io_posix(), work, &o, &p, err), DV_ECORRUPT);
    assert_non_null(strstr(err, "meta.dvm"));
    /* a missing checkpoint file */
    copy_tree(dir, work);
    snprintf(path, sizeof path, "%s/%s/ids.dvi", work, ck);
    unlink(path);
    assert_int_equal(part_open(io_posix(), work, &o, &p, err), DV_ECORRUPT);
    assert_non_null(strstr(err, "ids.dvi"));

    /* WAL: a damaged record before the tail refuses to open, names file and offset; repair
     * cuts there and the replica opens with the records before it */
    copy_tree(dir, work);
    char wdir[4400];
    snprintf(wdir, sizeof wdir, "%s/wal", work);
    char **names;
    size_t nn;
    assert_int_equal(io_posix()->list(io_posix(), wdir, &names, &nn), 0);
    assert_true(nn >= 2);
    qsort(names, nn, sizeof *names, name_cmp);
    snprintf(path, sizeof path, "%s/%s", wdir, names[0]);
    flip(path, 200);
    assert_int_equal(part_open(io_posix(), work, &o, &p, err), DV_ECORRUPT);
    assert_non_null(strstr(err, names[0]));
    assert_non_null(strstr(err, "offset"));
    io_free_list(names, nn);
    assert_int_equal(part_repair(io_posix(), work, err), DV_OK);
    assert_int_equal(part_open(io_posix(), work, &o, &p, err), DV_OK);
    uint64_t cnt;
    part_count(p, NULL, &cnt, err);
    assert_true(cnt >= 1000 && cnt < 2600);
    part_close(p);

    /* a torn tail is cut silently and everything before it is there */
    copy_tree(dir, work);
    assert_int_equal(io_posix()->list(io_posix(), wdir, &names, &nn), 0);
    qsort(names, nn, sizeof *names, name_cmp);
    snprintf(path, sizeof path, "%s/%s", wdir, names[nn - 1]);
    io_free_list(names, nn);
    struct stat st;
    stat(path, &st);
    assert_int_equal(truncate(path, st.st_size - 7), 0);
    int orc = part_open(io_posix(), work, &o, &p, err);
    if (orc != DV_OK)
        print_message("torn tail: %s\n", err);
    assert_int_equal(orc, DV_OK);
    part_count(p, NULL, &cnt, err);
    assert_int_equal(cnt, 2500);
    part_close(p);
    pu_rmtree(work);
    pu_tmpdir_free(dir);
}

/*
 * Fault sweep: fail the 1st, 2nd, ... IO operation of a workload (writes, checkpoints,
 * deletes, reopen) until none fails. Each run reports errors cleanly; reopening afterwards
 * with the real io gives every acknowledged write and nothing never attempted.
 */
static void sweep(enum io_fault_kind kind, int err_no)
{
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    opts(&o, HNSW_L2);
    o.wal.sync = WAL_SYNC_ALWAYS;
    o.wal.segment_bytes = 64 * 1024;
    for (long at = 1;; at++) {
        struct io_fault f;
        struct part *p = NULL;
        io_fault_init(&f, io_posix());
        f.kind = kind;
        f.err = err_no;
        f.only_writes = true;
        f.fail_at = at;
        pu_tmpdir(dir, sizeof dir, "r");
        bool acked[8] = {false};
        int rc = part_create(&f.io, dir, &o, &p, err);
        if (rc == DV_OK) {
            for (int b = 0; b < 8; b++) {
                if (b == 4 || b == 6)
                    part_checkpoint(p, err); /* may fail: the replica stays usable */
                if (pu_upsert_range(p, (uint64_t)b * 50, 50, 0, NULL, err) == DV_OK)
                    acked[b] = true;
            }
            part_close(p);
        }
        bool fired = f.fired;
        /* reopen with the real io */
        struct part *q = NULL;
        rc = part_open(io_posix(), dir, &o, &q, err);
        if (rc == DV_OK) {
            uint64_t cnt;
            part_count(q, NULL, &cnt, err);
            for (int b = 0; b < 8; b++) {
                struct pid ids[50];
                for (int i = 0; i < 50; i++)
                    ids[i] = pid_num((uint64_t)b * 50 + (uint64_t)i);
                struct part_result r;
                assert_int_equal(part_get(q, ids, 50, false, false, &r, err), DV_OK);
                if (acked[b])
                    assert_int_equal(r.n, 50);
                else
                    assert_true(r.n == 0 || r.n == 50); /* a batch is all or nothing */
                part_result_free(&r);
            }
            part_close(q);
        } else {
            /* only acceptable when the replica was never fully created */
            bool any = false;
            for (int b = 0; b < 8; b++)
                any |= acked[b];
            if (any)
                print_message("fault at %ld: reopen failed: %s\n", at, err);
            assert_false(any);
        }
        pu_tmpdir_free(dir);
        if (!fired)
            break;
        assert_true(at < 2000);
    }
}

static void test_fault_sweep_enospc(void **state)
{
    sweep(IO_FAULT_ERRNO, ENOSPC);
}

static void test_fault_sweep_eio(void **state)
{
    sweep(IO_FAULT_ERRNO, EIO);
}

static void test_fault_sweep_crash(void **state)
{
    sweep(IO_FAULT_CRASH, EIO);
}

/* Number of checkpoint directories in `dir` (a failed checkpoint must leave none behind). */
static size_t ckpt_dirs(const char *dir)
{
    char **names;
    size_t n, k = 0;
    assert_int_equal(io_posix()->list(io_posix(), dir, &names, &n), 0);
    for (size_t i = 0; i < n; i++)
        k += strncmp(names[i], "ckpt-", 5) == 0;
    io_free_list(names, n);
    return k;
}

/*
 * A full disk (io_fault_set_full): writes fail with DV_EFULL and change nothing, reads (get,
 * search, count, scroll) still answer every point written before, a checkpoint fails and leaves
 * nothing behind; once space is back, the next write succeeds without a reopen; a reopen (the
 * disk full again: nothing to write) gives every acknowledged write.
 */
static void test_disk_full(void **state)
{
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    struct io_fault f;
    uint32_t ver[200];
    opts(&o, HNSW_L2);
    o.wal.sync = WAL_SYNC_ALWAYS;
    o.wal.segment_bytes = 64 * 1024;
    io_fault_init(&f, io_posix());
    pu_tmpdir(dir, sizeof dir, "full");
    assert_int_equal(part_create(&f.io, dir, &o, &p, err), DV_OK);
    for (int b = 0; b < 4; b++)
        assert_int_equal(pu_upsert_range(p, (uint64_t)b * 50, 50, 0, NULL, err), DV_OK);
    for (size_t i = 0; i < 200; i++)
        ver[i] = 0;
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    size_t ckpts = ckpt_dirs(dir);

    io_fault_set_full(&f, true);
    struct part_info before, after;
    part_get_info(p, &before);
    for (int i = 0; i < 3; i++) {
        err[0] = '\0';
        assert_int_equal(pu_upsert_range(p, 0, 50, 1, NULL, err), DV_EFULL);
        assert_non_null(strstr(err, "No space left on device"));
    }
    struct pid gone = pid_num(7);
    size_t deleted = 9;
    uint64_t lsn;
    assert_int_equal(part_delete(p, &gone, 1, &lsn, &deleted, err), DV_EFULL);
    part_get_info(p, &after);
    assert_int_equal(after.applied_lsn, before.applied_lsn);
    assert_int_equal(after.points, 200);
    check_content(p, ver, 200);
    float q[DIM];
    pu_vec(3, 0, DIM, q);
    struct part_query pq = {.vec = q,
                            .k = 5,
                            .ef = 64,
                            .filter = NULL,
                            .with_payload = false,
                            .with_vector = true,
                            .quant = HNSW_QUANT_AUTO};
    struct part_result r;
    assert_int_equal(part_search(p, &pq, &r, NULL, err), DV_OK);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.hits[0].id.lo, 3);
    part_result_free(&r);
    struct pid next;
    bool more;
    assert_int_equal(part_scroll(p, NULL, 300, NULL, false, true, &r, &next, &more, err), DV_OK);
    assert_int_equal(r.n, 200);
    part_result_free(&r);

    /* Space is back: the next write succeeds, on the same open replica. */
    io_fault_set_full(&f, false);
    assert_int_equal(pu_upsert_range(p, 0, 50, 1, NULL, err), DV_OK);
    for (size_t i = 0; i < 50; i++)
        ver[i] = 1;
    assert_int_equal(part_delete(p, &gone, 1, &lsn, &deleted, err), DV_OK);
    ver[7] = UINT32_MAX;
    check_content(p, ver, 200);
    io_fault_set_full(&f, true);
    assert_int_equal(pu_upsert_range(p, 50, 50, 2, NULL, err), DV_EFULL);
    /* A checkpoint with something new to write fails and leaves nothing behind. */
    assert_int_not_equal(part_checkpoint(p, err), DV_OK);
    assert_non_null(strstr(err, "No space left on device"));
    assert_int_equal(ckpt_dirs(dir), ckpts);
    check_content(p, ver, 200);
    part_close(p);

    /* Reopen on the still-full disk: every acknowledged write, nothing refused. */
    assert_int_equal(part_open(&f.io, dir, &o, &p, err), DV_OK);
    check_content(p, ver, 200);
    part_close(p);
    pu_tmpdir_free(dir);
}

/*
 * Fault sweep over recovery: open a replica (checkpoint + WAL tail) with the 1st, 2nd, ... IO
 * operation failing (reads too). The open either fails cleanly or gives the full content; and
 * whatever it did, a later open with the real io gives the full content.
 */
static void sweep_open(enum io_fault_kind kind)
{
    char dir[4096], work[4200], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    size_t n = 600;
    uint32_t ver[600];
    opts(&o, HNSW_L2);
    o.wal.segment_bytes = 64 * 1024;
    pu_tmpdir(dir, sizeof dir, "r");
    snprintf(work, sizeof work, "%s.work", dir);
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    assert_int_equal(pu_upsert_range(p, 0, 300, 0, NULL, err), DV_OK);
    assert_int_equal(part_create_index(p, "color", PINDEX_KEYWORD, NULL, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    assert_int_equal(pu_upsert_range(p, 300, 300, 0, NULL, err), DV_OK);
    assert_int_equal(pu_upsert_range(p, 0, 50, 1, NULL, err), DV_OK);
    struct pid del[10];
    for (int i = 0; i < 10; i++)
        del[i] = pid_num(100 + (uint64_t)i);
    assert_int_equal(part_delete(p, del, 10, NULL, NULL, err), DV_OK);
    part_close(p);
    for (size_t i = 0; i < n; i++)
        ver[i] = i < 50 ? 1 : (i >= 100 && i < 110 ? UINT32_MAX : 0);
    for (long at = 1;; at++) {
        struct io_fault f;
        io_fault_init(&f, io_posix());
        f.kind = kind;
        f.fail_at = at;
        copy_tree(dir, work);
        p = (struct part *)1;
        int rc = part_open(&f.io, work, &o, &p, err);
        if (rc == DV_OK) {
            check_content(p, ver, n);
            part_close(p);
        } else {
            assert_null(p);
            assert_true(err[0] != '\0');
        }
        assert_int_equal(part_open(io_posix(), work, &o, &p, err), DV_OK);
        check_content(p, ver, n);
        part_close(p);
        if (!f.fired)
            break;
        assert_true(at < 5000);
    }
    pu_rmtree(work);
    pu_tmpdir_free(dir);
}

static void test_fault_sweep_open(void **state)
{
    sweep_open(IO_FAULT_ERRNO);
    sweep_open(IO_FAULT_CRASH);
}

/* Snapshot stream of a live replica under writes, restore, catch up from the WAL. */
struct writer {
    struct part *p;
    atomic_int stop;
    uint64_t next;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char err[DV_ERRMSG_SIZE];
    while (!atomic_load(&w->stop) && w->next < 20000) {
        assert_int_equal(pu_upsert_range(w->p, w->next, 20, 0, NULL, err), DV_OK);
        w->next += 20;
    }
    return NULL;
}

static int catch_up(uint64_t lsn, uint8_t type, const void *body, size_t len, void *arg)
{
    char err[DV_ERRMSG_SIZE];
    int rc = part_apply(arg, lsn, type, body, len, err);
    if (rc != DV_OK)
        print_message("apply %llu: %s\n", (unsigned long long)lsn, err);
    return rc;
}

static void test_snapshot(void **state)
{
    char dir[4096], dir2[4200], dir3[4200], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p, *q;
    pu_tmpdir(dir, sizeof dir, "src");
    snprintf(dir2, sizeof dir2, "%s.copy", dir);
    snprintf(dir3, sizeof dir3, "%s.bad", dir);
    opts(&o, HNSW_L2);
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    assert_int_equal(pu_upsert_range(p, 0, 1000, 0, NULL, err), DV_OK);
    assert_int_equal(part_create_index(p, "n", PINDEX_INTEGER, NULL, err), DV_OK);
    struct writer w = {p, 0, 1000};
    pthread_t t;
    pthread_create(&t, NULL, writer_main, &w);
    struct membuf m = {BUF_INIT, 0};
    uint64_t lsn;
    usleep(20000);
    assert_int_equal(part_snapshot(p, pu_mem_sink, &m, &lsn, err), DV_OK);
    usleep(20000);
    atomic_store(&w.stop, 1);
    pthread_join(t, NULL);
    assert_int_equal(part_restore(io_posix(), dir2, pu_mem_source, &m, &o, &q, err), DV_OK);
    struct part_info a, b;
    part_get_info(q, &b);
    assert_int_equal(b.applied_lsn, lsn);
    assert_int_equal(part_read_wal(p, lsn + 1, catch_up, q, err), DV_OK);
    part_get_info(p, &a);
    part_get_info(q, &b);
    assert_int_equal(a.applied_lsn, b.applied_lsn);
    assert_int_equal(a.points, b.points);
    assert_int_equal(b.points, w.next);
    assert_int_equal(b.n_indexes, 1);
    uint32_t *ver = calloc(w.next, sizeof *ver);
    check_content(q, ver, w.next);
    free(ver);
    /* a damaged stream is refused and leaves nothing behind */
    m.b.data[m.b.len / 2] ^= 0x40;
    m.pos = 0;
    struct part *bad;
    assert_int_equal(part_restore(io_posix(), dir3, pu_mem_source, &m, &o, &bad, err), DV_ECORRUPT);
    assert_int_equal(access(dir3, F_OK), -1);
    /* a truncated one too */
    m.b.data[m.b.len / 2] ^= 0x40;
    m.b.len -= 100;
    m.pos = 0;
    assert_int_equal(part_restore(io_posix(), dir3, pu_mem_source, &m, &o, &bad, err), DV_ECORRUPT);
    buf_free(&m.b);
    part_close(p);
    part_close(q);
    pu_rmtree(dir2);
    pu_tmpdir_free(dir);
}

static int count_rec(uint64_t lsn, uint8_t type, const void *body, size_t len, void *arg)
{
    (void)lsn, (void)type, (void)body, (void)len;
    (*(uint64_t *)arg)++;
    return 0;
}

/* part_hold_wal: checkpoints keep the records a peer still has to read, and drop them again
 * once the hold is cleared; the checkpoint LSN still limits the drop when the hold is later. */
static void test_hold_wal(void **state)
{
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    struct part_info in;
    uint64_t lsn, n;
    pu_tmpdir(dir, sizeof dir, "hold");
    opts(&o, HNSW_L2);
    o.wal.segment_bytes = WAL_MIN_SEGMENT_BYTES; /* many segments: drops are per segment */
    o.wal.compress = false;
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    for (int i = 0; i < 50; i++)
        assert_int_equal(pu_upsert_range(p, (uint64_t)i * 40, 40, 0, NULL, err), DV_OK);
    /* without a hold a checkpoint drops the records it covers */
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    assert_int_equal(part_read_wal(p, 1, count_rec, &n, err), DV_ENOTFOUND);

    /* a hold at H keeps H and everything after it through later checkpoints */
    part_get_info(p, &in);
    uint64_t hold = in.applied_lsn + 1;
    part_hold_wal(p, hold);
    part_get_info(p, &in);
    assert_int_equal(in.wal_hold, hold);
    for (int i = 0; i < 50; i++)
        assert_int_equal(pu_upsert_range(p, 4000 + (uint64_t)i * 40, 40, 1, &lsn, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    n = 0;
    assert_int_equal(part_read_wal(p, hold, count_rec, &n, err), DV_OK);
    assert_int_equal(n, lsn - hold + 1);

    /* the hold moves on (the peer read up to here): what lies before it may go */
    uint64_t hold2 = lsn - 5;
    part_hold_wal(p, hold2);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pu_upsert_range(p, 8000 + (uint64_t)i * 40, 40, 2, &lsn, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    assert_int_equal(part_read_wal(p, hold, count_rec, &n, err), DV_ENOTFOUND);
    n = 0;
    assert_int_equal(part_read_wal(p, hold2, count_rec, &n, err), DV_OK);
    assert_int_equal(n, lsn - hold2 + 1);

    /* a hold after the checkpoint LSN: the checkpoint's LSN limits the drop as without one */
    part_hold_wal(p, lsn + 1000);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pu_upsert_range(p, 9000 + (uint64_t)i * 40, 40, 3, &lsn, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    assert_int_equal(part_read_wal(p, hold2, count_rec, &n, err), DV_ENOTFOUND);

    /* cleared: the next checkpoint drops everything it covers */
    uint64_t hold3 = lsn + 1;
    part_hold_wal(p, hold3);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pu_upsert_range(p, 10000 + (uint64_t)i * 40, 40, 4, NULL, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    n = 0;
    assert_int_equal(part_read_wal(p, hold3, count_rec, &n, err), DV_OK);
    assert_int_equal(n, 10);
    part_hold_wal(p, 0);
    part_get_info(p, &in);
    assert_int_equal(in.wal_hold, 0);
    assert_int_equal(pu_upsert_range(p, 20000, 40, 5, &lsn, err), DV_OK);
    assert_int_equal(part_checkpoint(p, err), DV_OK);
    assert_int_equal(part_read_wal(p, hold3, count_rec, &n, err), DV_ENOTFOUND);
    n = 0;
    assert_int_equal(part_read_wal(p, lsn + 1, count_rec, &n, err), DV_OK);
    assert_int_equal(n, 0);
    part_close(p);
    pu_tmpdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_filtered_search),
        cmocka_unit_test(test_checkpoint_reopen),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_fault_sweep_enospc),
        cmocka_unit_test(test_fault_sweep_eio),
        cmocka_unit_test(test_fault_sweep_crash),
        cmocka_unit_test(test_fault_sweep_open),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_hold_wal),
        cmocka_unit_test(test_rebase),
        cmocka_unit_test(test_checkpoint_after_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
