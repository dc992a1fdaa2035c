/* test_proto.c - round trips, truncation and malformed input for proto/msg (node messages, the
 * client API and node reports). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "mpk.h"
#include "msg.h"
#include "pid.h"

#define S(lit) ((struct msg_str){lit, sizeof(lit) - 1})

static char errmsg[DV_ERRMSG_SIZE];
static const uint8_t filter[] = {0x81, 0xa3, 'k', 'e', 'y', 0x07}; /* {"key": 7} */
static const uint8_t payload[] = {0x81, 0xa1, 'a', 0xc3};          /* {"a": true} */

static struct pid test_id(uint32_t i)
{
    if (i % 3 == 0) {
        struct pid p = {0x0123456789abcdefULL + i, 0xfedcba9876543210ULL ^ i, PID_UUID};
        return p;
    }
    return pid_num((uint64_t)i * 0x10001ULL + (i == 1 ? UINT64_MAX - 0x10001ULL : 0));
}

/*
 * Encodes m, decodes it, re-encodes the decoded message and checks the bytes are equal; then
 * checks that every shorter prefix fails to decode with DV_EPROTO (ASan catches any read past
 * the end, since each prefix is copied into its own allocation).
 */
static struct buf last; /* the encoding the last decoded message points into */

static void round_trip(const struct msg *m, struct msg *out)
{
    struct buf b = BUF_INIT;
    buf_free(&last);
    struct buf a = BUF_INIT;
    assert_int_equal(msg_encode(m, &a, errmsg), DV_OK);
    assert_int_equal(msg_decode(a.data, a.len, out, errmsg), DV_OK);
    assert_int_equal(out->type, m->type);
    assert_int_equal(out->reply, m->reply);
    assert_true(out->req_id == m->req_id);
    assert_int_equal(msg_encode(out, &b, errmsg), DV_OK);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    size_t step = a.len > 20000 ? 97 : 1;
    for (size_t len = 0; len < a.len; len += step) {
        uint8_t *cut = malloc(len ? len : 1);
        assert_non_null(cut);
        memcpy(cut, a.data, len);
        struct msg t;
        int rc = msg_decode(cut, len, &t, errmsg);
        assert_int_equal(rc, DV_EPROTO);
        msg_free(&t);
        free(cut);
    }
    last = a; /* `out` points into it: kept until the next round trip */
    buf_free(&b);
}

static void check_simple(void **state)
{
    struct msg m = {0}, out;
    int simple[] = {MSG_HELLO, MSG_REPLICA_LIST, MSG_STATS, MSG_REPLICA_DROP, MSG_REPLICA_INFO};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        memset(&m, 0, sizeof m);
        m.type = simple[i];
        m.req_id = UINT64_MAX - i;
        if (msg_type_addressed(m.type)) {
            m.addr.coll = S("docs");
            m.addr.part = 4000000000u;
            m.addr.epoch = 77;
        }
        round_trip(&m, &out);
        assert_int_equal(out.addr.part, m.addr.part);
        assert_true(out.addr.epoch == m.addr.epoch);
        msg_free(&out);
        /* the empty replies */
        m.reply = true;
        round_trip(&m, &out);
        msg_free(&out);
    }
}

static void check_hello_list_info_stats(void **state)
{
    struct msg_replica reps[3] = {
        {S("a"), 0, 0}, {S("coll-b"), 7, 123456789012ULL}, {S(""), UINT32_MAX, UINT64_MAX}};
    struct msg m = {.type = MSG_HELLO, .reply = true, .req_id = 9}, out;
    m.u.hello_rep = (struct msg_hello_rep){S("node-1"), S("0.1.0"), 1000000, reps, 3};
    round_trip(&m, &out);
    assert_int_equal(out.u.hello_rep.n_replicas, 3);
    assert_memory_equal(out.u.hello_rep.node_id.p, "node-1", 6);
    assert_true(out.u.hello_rep.replicas[1].applied_lsn == 123456789012ULL);
    msg_free(&out);

    m.type = MSG_REPLICA_LIST;
    m.u.list_rep = (struct msg_list_rep){reps, 3};
    round_trip(&m, &out);
    assert_int_equal(out.u.list_rep.replicas[2].part, UINT32_MAX);
    msg_free(&out);
    m.u.list_rep.n = 0;
    round_trip(&m, &out);
    msg_free(&out);

    m.type = MSG_REPLICA_INFO;
    m.u.info_rep = (struct msg_info_rep){768, 1, 16, 200, 64, true, 5, 6, 7, 8, 9, 10, 11};
    round_trip(&m, &out);
    assert_int_equal(out.u.info_rep.dim, 768);
    assert_true(out.u.info_rep.sq8);
    assert_true(out.u.info_rep.payload_bytes == 11);
    msg_free(&out);

    struct msg_stat st[2] = {{S("requests"), 12}, {S("points"), UINT64_MAX}};
    m.type = MSG_STATS;
    m.u.stats_rep = (struct msg_stats_rep){st, 2};
    round_trip(&m, &out);
    assert_true(out.u.stats_rep.stats[1].value == UINT64_MAX);
    msg_free(&out);

    memset(&m, 0, sizeof m);
    m.type = MSG_REPLICA_CREATE;
    m.addr = (struct msg_addr){S("docs"), 3, 5, 0};
    m.u.create_req = (struct msg_create_req){{.dim = 128,
                                              .metric = 2,
                                              .m = 32,
                                              .ef_construction = 400,
                                              .ef_search = 100,
                                              .fsync = 1,
                                              .sq8 = true},
                                             UINT64_MAX - 1};
    round_trip(&m, &out);
    assert_int_equal(out.u.create_req.cfg.ef_construction, 400);
    assert_int_equal(out.u.create_req.cfg.fsync, 1);
    assert_true(out.u.create_req.cfg.sq8);
    assert_true(out.u.create_req.incarnation == UINT64_MAX - 1);
    msg_free(&out);
    m.u.create_req.incarnation = 0;
    round_trip(&m, &out);
    assert_true(out.u.create_req.incarnation == 0);
    msg_free(&out);
}

/* Upsert (node or client API) of n points of dim floats, with UUID and integer ids and some
 * nil payloads. */
static void upsert_n(int type, uint32_t n, uint32_t dim)
{
    struct pid *ids = calloc(n ? n : 1, sizeof *ids);
    float *vecs = calloc((size_t)n * dim + 1, sizeof *vecs);
    struct msg_bytes *pl = calloc(n ? n : 1, sizeof *pl);
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = test_id(i);
        for (uint32_t j = 0; j < dim; j++)
            vecs[(size_t)i * dim + j] = (float)i - 0.25f * (float)j;
        if (i % 2)
            pl[i] = (struct msg_bytes){payload, sizeof payload};
    }
    struct msg m = {.type = type, .req_id = 42}, out;
    m.addr = (struct msg_addr){S("vectors"), 11, 1234, 0};
    m.u.upsert_req = (struct msg_upsert_req){ids, vecs, pl, n, dim, NULL};
    round_trip(&m, &out);
    assert_int_equal(out.addr.coll.len, 7);
    assert_memory_equal(out.addr.coll.p, "vectors", 7);
    /* the client API names the collection only */
    assert_int_equal(out.addr.part, type == MSG_UPSERT ? 11 : 0);
    assert_true(out.addr.epoch == (type == MSG_UPSERT ? 1234 : 0));
    const struct msg_upsert_req *u = &out.u.upsert_req;
    assert_int_equal(u->n, n);
    assert_int_equal(u->dim, dim);
    for (uint32_t i = 0; i < n; i++) {
        assert_true(pid_eq(&u->ids[i], &ids[i]));
        assert_int_equal(u->payloads[i].p != NULL, i % 2);
    }
    if (n && dim) {
        assert_memory_equal(u->vecs, vecs, (size_t)n * dim * 4);
        assert_true((uintptr_t)u->vecs % _Alignof(float) == 0);
    }
    msg_free(&out);
    free(ids);
    free(vecs);
    free(pl);
}

static void check_upsert(void **state)
{
    const int types[] = {MSG_UPSERT, MSG_P_UPSERT};
    for (int i = 0; i < 2; i++) {
        upsert_n(types[i], 0, 4);
        upsert_n(types[i], 1, 3);
        upsert_n(types[i], 5, 17);
        upsert_n(types[i], 2000, 128); /* big: prefixes are sampled */
    }
}

#define T(name) (cl ? MSG_P_##name : MSG_##name)

/* The same writes and reads to one partition (node messages) or to a whole collection (client
 * API, `cl`): same bodies, but the client API's address is the collection's name only. */
static void writes_reads(bool cl)
{
    struct pid ids[4] = {test_id(0), test_id(1), test_id(2), test_id(3)};
    struct msg m = {.type = T(DELETE), .req_id = 1}, out;
    m.addr = (struct msg_addr){S("c"), 1, 2, 0};
    m.u.delete_req = (struct msg_ids_req){ids, 4};
    round_trip(&m, &out);
    assert_true(pid_eq(&out.u.delete_req.ids[3], &ids[3]));
    assert_int_equal(out.addr.coll.len, 1);
    assert_int_equal(out.addr.part, cl ? 0 : 1);
    assert_true(out.addr.epoch == (cl ? 0 : 2));
    msg_free(&out);
    m.u.delete_req.n = 0;
    round_trip(&m, &out);
    msg_free(&out);

    m.type = T(GET);
    m.u.get_req = (struct msg_get_req){ids, 4, true, false};
    round_trip(&m, &out);
    assert_true(out.u.get_req.with_vector);
    msg_free(&out);

    m.type = T(SET_PAYLOAD);
    m.u.set_payload_req = (struct msg_set_payload_req){1, ids, 2, {payload, sizeof payload}};
    round_trip(&m, &out);
    assert_int_equal(out.u.set_payload_req.data.len, sizeof payload);
    msg_free(&out);
    m.u.set_payload_req = (struct msg_set_payload_req){4, ids, 1, {NULL, 0}};
    round_trip(&m, &out);
    assert_null(out.u.set_payload_req.data.p);
    msg_free(&out);

    m.type = T(COUNT);
    m.u.count_req.filter = (struct msg_bytes){filter, sizeof filter};
    round_trip(&m, &out);
    assert_memory_equal(out.u.count_req.filter.p, filter, sizeof filter);
    msg_free(&out);

    m.type = cl ? MSG_P_INDEX : MSG_PAYLOAD_INDEX;
    m.u.index_req = (struct msg_index_req){MSG_INDEX_CREATE, 1, S("meta.year"), {NULL, 0}};
    round_trip(&m, &out);
    assert_int_equal(out.u.index_req.kind, 1);
    assert_memory_equal(out.u.index_req.key.p, "meta.year", 9);
    msg_free(&out);

    m.type = T(SCROLL);
    m.u.scroll_req = (struct msg_scroll_req){true, ids[0], 100, {filter, sizeof filter}, 1, 1};
    round_trip(&m, &out);
    assert_true(out.u.scroll_req.has_from && pid_eq(&out.u.scroll_req.from, &ids[0]));
    msg_free(&out);
    m.u.scroll_req = (struct msg_scroll_req){false, {0}, 10, {NULL, 0}, 0, 0};
    round_trip(&m, &out);
    assert_false(out.u.scroll_req.has_from);
    msg_free(&out);

    /* replies with hits */
    float v[3] = {1.5f, -2, 0.125f};
    struct msg_hit hits[3] = {{ids[0], 0.5f, v, 3, {payload, sizeof payload}, {NULL, 0}},
                              {ids[1], -1.0f, NULL, 0, {NULL, 0}, {NULL, 0}},
                              {ids[2], 3e30f, v, 3, {NULL, 0}, {NULL, 0}}};
    struct msg r = {.type = T(GET), .reply = true, .req_id = 5};
    r.u.get_rep = (struct msg_hits){hits, 3};
    round_trip(&r, &out);
    assert_int_equal(out.u.get_rep.n, 3);
    assert_memory_equal(out.u.get_rep.hits[0].vec, v, sizeof v);
    assert_null(out.u.get_rep.hits[1].vec);
    assert_true(out.u.get_rep.hits[2].score == 3e30f);
    msg_free(&out);

    r.type = T(SCROLL);
    r.u.scroll_rep = (struct msg_scroll_rep){{hits, 2}, true, ids[3]};
    round_trip(&r, &out);
    assert_true(out.u.scroll_rep.more && pid_eq(&out.u.scroll_rep.next, &ids[3]));
    msg_free(&out);

    int wt[] = {T(UPSERT), T(DELETE), T(SET_PAYLOAD), cl ? MSG_P_INDEX : MSG_PAYLOAD_INDEX};
    for (int i = 0; i < 4; i++) {
        r.type = wt[i];
        r.u.write_rep = (struct msg_write_rep){UINT64_MAX, 3, NULL, 0};
        round_trip(&r, &out);
        assert_true(out.u.write_rep.lsn == UINT64_MAX);
        msg_free(&out);
    }
    r.type = T(COUNT);
    r.u.count_rep.count = 1ULL << 40;
    round_trip(&r, &out);
    assert_true(out.u.count_rep.count == 1ULL << 40);
    msg_free(&out);
}

/* Facet and order_by scroll, node and client forms: requests, replies, and malformed ones. */
static void facet_order(bool cl)
{
    static const uint8_t emptymap[] = {0x80}; /* {} */
    struct msg m = {.type = T(FACET), .req_id = 9}, out;
    if (!cl)
        m.addr = (struct msg_addr){S("c"), 3, 12, 2};
    else
        m.addr.coll = S("c");
    m.u.facet_req = (struct msg_facet_req){S("meta.city"), {emptymap, sizeof emptymap}, 0, true};
    round_trip(&m, &out);
    assert_memory_equal(out.u.facet_req.key.p, "meta.city", 9);
    assert_int_equal(out.u.facet_req.limit, 0);
    assert_true(out.u.facet_req.exact);
    assert_int_equal(out.u.facet_req.filter.len, 1);
    msg_free(&out);
    m.u.facet_req = (struct msg_facet_req){S("k"), {NULL, 0}, 10, false};
    round_trip(&m, &out);
    assert_null(out.u.facet_req.filter.p);
    msg_free(&out);

    struct msg r = {.type = T(FACET), .reply = true, .req_id = 9};
    struct msg_facet_hit fh[4] = {{MSG_FV_STR, S("Berlin"), 0, 7},
                                  {MSG_FV_INT, {NULL, 0}, -42, 3},
                                  {MSG_FV_INT, {NULL, 0}, INT64_MAX, 2},
                                  {MSG_FV_BOOL, {NULL, 0}, 1, UINT64_MAX}};
    r.u.facet_rep = (struct msg_facet_rep){fh, 4};
    round_trip(&r, &out);
    assert_int_equal(out.u.facet_rep.n, 4);
    assert_int_equal(out.u.facet_rep.hits[0].type, MSG_FV_STR);
    assert_memory_equal(out.u.facet_rep.hits[0].s.p, "Berlin", 6);
    assert_int_equal(out.u.facet_rep.hits[1].i, -42);
    assert_true(out.u.facet_rep.hits[2].i == INT64_MAX);
    assert_int_equal(out.u.facet_rep.hits[3].type, MSG_FV_BOOL);
    assert_true(out.u.facet_rep.hits[3].count == UINT64_MAX);
    msg_free(&out);
    r.u.facet_rep = (struct msg_facet_rep){NULL, 0};
    round_trip(&r, &out);
    assert_int_equal(out.u.facet_rep.n, 0);
    msg_free(&out);
    fh[0].type = 9; /* not a value type */
    r.u.facet_rep = (struct msg_facet_rep){fh, 1};
    struct buf b = BUF_INIT;
    assert_int_equal(msg_encode(&r, &b, errmsg), DV_EINVAL);

    m.type = T(SCROLL_ORDER);
    const struct msg_start starts[4] = {{MSG_START_NONE, 0, 0, {NULL, 0}},
                                        {MSG_START_INT, -5, 0, {NULL, 0}},
                                        {MSG_START_FLOAT, 0, 2.75, {NULL, 0}},
                                        {MSG_START_STR, 0, 0, S("2024-03-01T10:00:00Z")}};
    for (int i = 0; i < 5; i++) {
        /* the fifth: a sample (the optional last field), no key */
        m.u.oscroll_req = (struct msg_oscroll_req){.key = i < 4 ? S("ts") : S(""),
                                                   .desc = i % 2 == 1,
                                                   .start = starts[i % 4],
                                                   .limit = 100,
                                                   .filter = {emptymap, sizeof emptymap},
                                                   .with_vector = i == 2,
                                                   .with_payload = i != 2,
                                                   .sample = i == 4 ? 0x8000000000000001ull : 0};
        round_trip(&m, &out);
        assert_true(out.u.oscroll_req.sample == m.u.oscroll_req.sample);
        if (i == 4) {
            msg_free(&out);
            continue;
        }
        const struct msg_oscroll_req *o = &out.u.oscroll_req;
        assert_memory_equal(o->key.p, "ts", 2);
        assert_int_equal(o->desc, i % 2 == 1);
        assert_int_equal(o->start.type, starts[i].type);
        assert_true(o->start.i == starts[i].i && o->start.f == starts[i].f);
        assert_int_equal(o->start.s.len, starts[i].s.len);
        assert_int_equal(o->limit, 100);
        assert_int_equal(o->with_vector, i == 2);
        assert_int_equal(o->with_payload, i != 2);
        msg_free(&out);
    }
    struct pid ids[2] = {pid_num(4), pid_num(1)};
    struct msg_hit hits[2] = {{ids[0], 0, NULL, 0, {emptymap, sizeof emptymap}, {NULL, 0}},
                              {ids[1], 0, NULL, 0, {NULL, 0}, {NULL, 0}}};
    struct msg_ordval vals[2] = {{false, INT64_MIN, 0}, {true, 0, -0.5}};
    r.type = T(SCROLL_ORDER);
    r.u.oscroll_rep = (struct msg_oscroll_rep){{hits, 2}, vals};
    round_trip(&r, &out);
    assert_int_equal(out.u.oscroll_rep.hits.n, 2);
    assert_false(out.u.oscroll_rep.vals[0].is_float);
    assert_true(out.u.oscroll_rep.vals[0].i == INT64_MIN);
    assert_true(out.u.oscroll_rep.vals[1].is_float && out.u.oscroll_rep.vals[1].f == -0.5);
    msg_free(&out);
    /* values and hits must agree in number */
    buf_reset(&b);
    assert_int_equal(msg_encode(&r, &b, errmsg), DV_OK);
    uint8_t *bad = malloc(b.len);
    memcpy(bad, b.data, b.len);
    /* the values' array header is the third byte from the end before the two values: a
     * fixarray of 2 then an int64 (9 bytes) and a float64 (9 bytes) */
    size_t at = b.len - 19;
    assert_int_equal(bad[at], 0x92);
    bad[at] = 0x91;
    assert_int_equal(msg_decode(bad, b.len - 9, &out, errmsg), DV_EPROTO);
    assert_non_null(strstr(errmsg, "order values count"));
    free(bad);
    buf_free(&b);
}

static void check_facet_order(void **state)
{
    (void)state;
    facet_order(false);
    facet_order(true);
    assert_int_equal(MSG_FACET, 24);
    assert_int_equal(MSG_SCROLL_ORDER, 25);
    assert_int_equal(MSG_P_FACET, 50);
    assert_int_equal(MSG_P_SCROLL_ORDER, 51);
    assert_true(msg_type_addressed(MSG_FACET) && msg_type_addressed(MSG_SCROLL_ORDER));
    assert_true(msg_type_collection(MSG_P_FACET) && msg_type_collection(MSG_P_SCROLL_ORDER));
    assert_false(msg_type_replicated(MSG_FACET) || msg_type_consistent_read(MSG_P_FACET));
    assert_string_equal(msg_type_name(MSG_P_SCROLL_ORDER), "points_scroll_order");
}

static void check_writes_reads(void **state)
{
    writes_reads(false);
    writes_reads(true);
}

#undef T

static void check_search(void **state)
{
    float v1[4] = {1, 2, 3, 4}, v2[4] = {0, 0, 0, 1};
    struct msg_target parts[3] = {{0, 1}, {5, 2}, {9, 3}};
    struct msg_query qs[2] = {
        {v1, 4, 10, 0, {filter, sizeof filter}, true, false, {NULL, 0}, NULL, 0, NULL, 0, NULL, 0},
        {v2, 4, 1, 128, {NULL, 0}, false, true, {NULL, 0}, NULL, 0, NULL, 0, NULL, 0}};
    struct msg m = {.type = MSG_SEARCH, .req_id = 3}, out;
    m.addr.coll = S("docs");
    m.u.search_req = (struct msg_search_req){parts, 3, qs, 2};
    round_trip(&m, &out);
    assert_int_equal(out.u.search_req.n_parts, 3);
    assert_int_equal(out.u.search_req.queries[1].ef, 128);
    assert_memory_equal(out.u.search_req.queries[0].vec, v1, sizeof v1);
    assert_memory_equal(out.addr.coll.p, "docs", 4);
    msg_free(&out);

    struct msg_hit hits[2] = {{test_id(3), 0.9f, v1, 4, {payload, sizeof payload}, {NULL, 0}},
                              {test_id(4), 0.1f, NULL, 0, {NULL, 0}, {NULL, 0}}};
    struct msg_hits res[2] = {{hits, 2}, {hits, 0}};
    struct msg_search_part sp[2] = {{5, {0}, res, 2},
                                    {9, {DV_ESTALE, S("stale map"), 99}, NULL, 0}};
    struct msg r = {.type = MSG_SEARCH, .reply = true, .req_id = 3};
    r.u.search_rep = (struct msg_search_rep){sp, 2};
    round_trip(&r, &out);
    assert_int_equal(out.u.search_rep.parts[0].n, 2);
    assert_int_equal(out.u.search_rep.parts[0].results[0].n, 2);
    assert_int_equal(out.u.search_rep.parts[1].err.code, DV_ESTALE);
    assert_true(out.u.search_rep.parts[1].err.epoch == 99);
    msg_free(&out);
}

static void check_errors(void **state)
{
    struct msg m = {.type = MSG_UPSERT, .reply = true, .req_id = 8}, out;
    m.err = (struct msg_error){DV_ESTALE, S("partition 3: map epoch 4 < 6"), 6};
    round_trip(&m, &out);
    assert_int_equal(out.err.code, DV_ESTALE);
    assert_true(out.err.epoch == 6);
    msg_free(&out);
    m.type = MSG_ERROR;
    m.err = (struct msg_error){DV_EPROTO, S("bad message"), 0};
    round_trip(&m, &out);
    assert_int_equal(out.type, MSG_ERROR);
    msg_free(&out);

    struct buf b = BUF_INIT;
    m.err.code = -1000; /* not a DV_* code */
    assert_int_equal(msg_encode(&m, &b, errmsg), DV_EINVAL);
    m.err.code = 0; /* MSG_ERROR without an error */
    assert_int_equal(msg_encode(&m, &b, errmsg), DV_EINVAL);
    m.type = MSG_COUNT;
    m.reply = false;
    m.u.count_req.filter = (struct msg_bytes){filter, sizeof filter - 1}; /* not one value */
    assert_int_equal(msg_encode(&m, &b, errmsg), DV_EINVAL);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

/* Builds [version, type, 0, id, body...] by hand. */
static void header(struct buf *b, uint64_t version, uint64_t type)
{
    assert_int_equal(mpw_array(b, 5), DV_OK);
    assert_int_equal(mpw_u64(b, version), DV_OK);
    assert_int_equal(mpw_u64(b, type), DV_OK);
    assert_int_equal(mpw_u64(b, 0), DV_OK);
    assert_int_equal(mpw_u64(b, 1), DV_OK);
}

static void check_malformed(void **state)
{
    struct buf b = BUF_INIT;
    struct msg out;

    header(&b, 2, MSG_HELLO);
    mpw_array(&b, 0);
    assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_EPROTO);
    assert_non_null(strstr(errmsg, "version 2"));
    assert_non_null(strstr(errmsg, "version 1"));

    buf_reset(&b);
    header(&b, 1, 26);
    mpw_array(&b, 0);
    assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_EPROTO);
    assert_non_null(strstr(errmsg, "unknown message type 26"));
    buf_reset(&b);
    header(&b, 1, 1u << 31);
    mpw_array(&b, 0);
    assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_EPROTO);

    /* a delete declaring 2^32 - 1 ids in a few bytes */
    buf_reset(&b);
    header(&b, 1, MSG_DELETE);
    mpw_array(&b, 6);
    mpw_str(&b, "c", 1);
    mpw_u64(&b, 0);
    mpw_u64(&b, 0);
    mpw_u64(&b, 0);
    mpw_array(&b, UINT32_MAX);
    mpw_u64(&b, 1);
    assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_EPROTO);

    /* upsert whose vector bin is one float short, then one byte long */
    for (int delta = -4; delta <= 1; delta += 5) {
        float v[9] = {0};
        buf_reset(&b);
        header(&b, 1, MSG_UPSERT);
        mpw_array(&b, 9);
        mpw_str(&b, "c", 1);
        mpw_u64(&b, 0);
        mpw_u64(&b, 0);
        mpw_u64(&b, 0);
        mpw_array(&b, 2);
        mpw_u64(&b, 1);
        mpw_u64(&b, 2);
        mpw_u64(&b, 4);
        mpw_bin(&b, v, (size_t)(32 + delta));
        mpw_array(&b, 2);
        mpw_nil(&b);
        mpw_nil(&b);
        assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_EPROTO);
        assert_non_null(strstr(errmsg, "vector"));
    }

    /* trailing bytes, and garbage */
    buf_reset(&b);
    header(&b, 1, MSG_HELLO);
    mpw_array(&b, 0);
    assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_OK);
    msg_free(&out);
    mpw_nil(&b);
    assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_EPROTO);
    const uint8_t junk[] = {0xc1, 0xdd, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(msg_decode(junk, sizeof junk, &out, errmsg), DV_EPROTO);

    /* oversized: checked before any byte is read */
    assert_int_equal(msg_decode(junk, (size_t)PROTO_MAX_MSG + 1, &out, errmsg), DV_ETOOBIG);
    buf_free(&b);
}

/* Builds [version, type, 1, id, nil, body...] by hand: a successful reply. */
static void reply_header(struct buf *b, uint64_t type)
{
    assert_int_equal(mpw_array(b, 6), DV_OK);
    assert_int_equal(mpw_u64(b, 1), DV_OK);
    assert_int_equal(mpw_u64(b, type), DV_OK);
    assert_int_equal(mpw_u64(b, 1), DV_OK);
    assert_int_equal(mpw_u64(b, 1), DV_OK);
    assert_int_equal(mpw_nil(b), DV_OK);
}

/* The address of a partition-addressed request body of n elements in all. */
static void addressed_body(struct buf *b, uint32_t n)
{
    assert_int_equal(mpw_array(b, n), DV_OK);
    assert_int_equal(mpw_str(b, "c", 1), DV_OK);
    assert_int_equal(mpw_u64(b, 2), DV_OK);
    assert_int_equal(mpw_u64(b, 3), DV_OK);
    assert_int_equal(mpw_u64(b, 1), DV_OK); /* term */
}

static void expect_eproto(const struct buf *b, const char *field)
{
    struct msg out;
    assert_int_equal(msg_decode(b->data, b->len, &out, errmsg), DV_EPROTO);
    if (field && !strstr(errmsg, field))
        fail_msg("\"%s\" does not name %s", errmsg, field);
    msg_free(&out);
}

/* A client read's read consistency: one more field at the end, only when set; each level
 * round-trips; a number past PROTO_MAX_RF (and not a named level) does not decode; a write
 * never carries it. */
static void check_read_consistency(void **state)
{
    (void)state;
    struct pid id = pid_num(7);
    struct msg m = {.type = MSG_P_GET, .req_id = 9}, out;
    m.addr.coll = S("docs");
    m.u.get_req = (struct msg_get_req){&id, 1, false, true};
    struct buf plain = BUF_INIT, with = BUF_INIT;
    assert_int_equal(msg_encode(&m, &plain, errmsg), DV_OK);
    const uint32_t levels[] = {1,           3, PROTO_MAX_RF, MSG_READ_MAJORITY, MSG_READ_QUORUM,
                               MSG_READ_ALL};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        m.read_consistency = levels[i];
        round_trip(&m, &out);
        assert_int_equal(out.read_consistency, levels[i]);
        msg_free(&out);
    }
    m.read_consistency = 0;
    round_trip(&m, &out);
    assert_int_equal(out.read_consistency, 0);
    msg_free(&out);
    m.read_consistency = PROTO_MAX_RF + 1;
    assert_int_equal(msg_encode(&m, &with, errmsg), DV_OK);
    assert_true(with.len == plain.len + 1);
    assert_int_equal(msg_decode(with.data, with.len, &out, errmsg), DV_EPROTO);
    assert_non_null(strstr(errmsg, "read consistency"));
    msg_free(&out);
    buf_free(&with);
    /* count, scroll and search carry it too; an upsert does not */
    struct msg c = {.type = MSG_P_COUNT, .req_id = 3, .read_consistency = MSG_READ_ALL};
    c.addr.coll = S("docs");
    round_trip(&c, &out);
    assert_int_equal(out.read_consistency, MSG_READ_ALL);
    msg_free(&out);
    struct msg u = {.type = MSG_P_DELETE, .req_id = 4, .read_consistency = 2};
    u.addr.coll = S("docs");
    u.u.delete_req = (struct msg_ids_req){&id, 1};
    round_trip(&u, &out);
    assert_int_equal(out.read_consistency, 0);
    msg_free(&out);
    buf_free(&plain);
}

/* replica_create: the incarnation is the last field; a request without it (a sender that
 * predates it) reads as incarnation 0; one field less, or an incarnation that is not an
 * unsigned integer, does not decode. */
static void check_create_incarnation(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct msg out;
    for (int k = 0; k < 4; k++) {
        buf_reset(&b);
        header(&b, 1, MSG_REPLICA_CREATE);
        uint32_t n = k == 0 ? 12 : k == 1 ? 11 : k == 2 ? 10 : 12;
        addressed_body(&b, n);
        for (uint32_t i = 0; i < 5 && 4 + i < n; i++)
            mpw_u64(&b, 8 + i);
        if (n > 9)
            mpw_bool(&b, true);
        if (n > 10)
            mpw_u64(&b, 2);
        if (k == 0)
            mpw_u64(&b, 1ULL << 40);
        else if (k == 3)
            mpw_i64(&b, -5);
        if (k >= 2) {
            expect_eproto(&b, k == 2 ? "body length" : "incarnation");
            continue;
        }
        assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_OK);
        const struct msg_create_req *c = &out.u.create_req;
        assert_int_equal(c->cfg.dim, 8);
        assert_int_equal(c->cfg.ef_search, 12);
        assert_true(c->cfg.sq8);
        assert_int_equal(c->cfg.fsync, 2);
        assert_true(c->incarnation == (k == 0 ? 1ULL << 40 : 0));
        assert_int_equal(out.addr.part, 2);
        assert_true(out.addr.epoch == 3);
        msg_free(&out);
    }
    buf_free(&b);
}

static void check_new_types(void **state)
{
    const int types[] = {MSG_SNAPSHOT_READ, MSG_WAL_READ, MSG_PAYLOAD_INDEX};
    const char *names[] = {"snapshot_read", "wal_read", "payload_index"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(msg_type_name(types[i]), names[i]);
        assert_true(msg_type_addressed(types[i]));
    }
    assert_string_equal(msg_type_name(MSG_TYPE_COUNT), "unknown");

    /* each of them as an error reply, e.g. an expired snapshot session */
    for (int i = 0; i < 3; i++) {
        struct msg m = {.type = types[i], .reply = true, .req_id = 70 + i}, out;
        m.err = (struct msg_error){DV_ENOTFOUND, S("snapshot session 7 expired"), 0};
        round_trip(&m, &out);
        assert_int_equal(out.err.code, DV_ENOTFOUND);
        assert_memory_equal(out.err.text.p, "snapshot session 7 expired", 26);
        msg_free(&out);
    }
}

static void check_snapshot(void **state)
{
    struct msg m = {.type = MSG_SNAPSHOT_READ, .req_id = 21}, out;
    m.addr = (struct msg_addr){S("docs"), 12, 9, 0};
    m.u.snapshot_req = (struct msg_snapshot_req){0, 0, 4u << 20};
    round_trip(&m, &out);
    assert_memory_equal(out.addr.coll.p, "docs", 4);
    assert_int_equal(out.addr.part, 12);
    assert_true(out.addr.epoch == 9);
    assert_true(out.u.snapshot_req.session == 0 && out.u.snapshot_req.offset == 0);
    assert_int_equal(out.u.snapshot_req.max_bytes, 4u << 20);
    msg_free(&out);
    m.u.snapshot_req = (struct msg_snapshot_req){UINT64_MAX, (1ULL << 40) + 3, UINT32_MAX};
    round_trip(&m, &out);
    assert_true(out.u.snapshot_req.session == UINT64_MAX);
    assert_true(out.u.snapshot_req.offset == (1ULL << 40) + 3);
    assert_int_equal(out.u.snapshot_req.max_bytes, UINT32_MAX);
    msg_free(&out);

    uint8_t chunk[300];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (uint8_t)(i * 7);
    struct msg r = {.type = MSG_SNAPSHOT_READ, .reply = true, .req_id = 21};
    r.u.snapshot_rep = (struct msg_snapshot_rep){5, 1000, 1ULL << 33, {chunk, sizeof chunk}, 0};
    round_trip(&r, &out);
    const struct msg_snapshot_rep *o = &out.u.snapshot_rep;
    assert_true(o->session == 5 && o->lsn == 1000 && o->total == 1ULL << 33);
    assert_int_equal(o->data.len, sizeof chunk);
    assert_memory_equal(o->data.p, chunk, sizeof chunk);
    assert_false(o->done);
    msg_free(&out);

    /* the last chunk may be empty (a snapshot whose size is a multiple of max_bytes) */
    r.u.snapshot_rep = (struct msg_snapshot_rep){5, 1000, 600, {NULL, 0}, true};
    round_trip(&r, &out);
    assert_int_equal(out.u.snapshot_rep.data.len, 0);
    assert_true(out.u.snapshot_rep.done);
    msg_free(&out);
    r.u.snapshot_rep.data = (struct msg_bytes){chunk, 0};
    round_trip(&r, &out);
    assert_int_equal(out.u.snapshot_rep.data.len, 0);
    msg_free(&out);

    /* NULL data with a length is the caller's bug */
    struct buf b = BUF_INIT;
    r.u.snapshot_rep.data = (struct msg_bytes){NULL, 4};
    assert_int_equal(msg_encode(&r, &b, errmsg), DV_EINVAL);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void check_wal_read(void **state)
{
    struct msg m = {.type = MSG_WAL_READ, .req_id = 31}, out;
    m.addr = (struct msg_addr){S("docs"), 1, 2, 0};
    m.u.wal_req = (struct msg_wal_req){123456789, 1u << 20};
    round_trip(&m, &out);
    assert_true(out.u.wal_req.from == 123456789);
    assert_int_equal(out.u.wal_req.max_bytes, 1u << 20);
    msg_free(&out);
    m.u.wal_req = (struct msg_wal_req){UINT64_MAX, 0};
    round_trip(&m, &out);
    assert_true(out.u.wal_req.from == UINT64_MAX);
    msg_free(&out);

    uint8_t big[1000];
    memset(big, 0xab, sizeof big);
    struct msg_wal_rec recs[3] = {{7, 1, {payload, sizeof payload}},
                                  {8, 255, {NULL, 0}},
                                  {UINT64_MAX, UINT32_MAX, {big, sizeof big}}};
    struct msg r = {.type = MSG_WAL_READ, .reply = true, .req_id = 31};
    struct msg_term terms[2] = {{1, 1}, {UINT64_MAX, 40}};
    r.u.wal_rep = (struct msg_wal_rep){recs, 3, 99, terms, 2};
    round_trip(&r, &out);
    const struct msg_wal_rep *w = &out.u.wal_rep;
    assert_int_equal(w->n, 3);
    assert_true(w->applied_lsn == 99);
    assert_int_equal(w->n_terms, 2);
    assert_memory_equal(w->terms, terms, sizeof terms);
    for (int i = 0; i < 3; i++) {
        assert_true(w->recs[i].lsn == recs[i].lsn);
        assert_int_equal(w->recs[i].type, recs[i].type);
        assert_int_equal(w->recs[i].body.len, recs[i].body.len);
        if (recs[i].body.len)
            assert_memory_equal(w->recs[i].body.p, recs[i].body.p, recs[i].body.len);
    }
    msg_free(&out);

    /* nothing at or after `from` */
    r.u.wal_rep = (struct msg_wal_rep){NULL, 0, 6, NULL, 0};
    round_trip(&r, &out);
    assert_int_equal(out.u.wal_rep.n, 0);
    assert_true(out.u.wal_rep.applied_lsn == 6);
    assert_int_equal(out.u.wal_rep.n_terms, 0);
    msg_free(&out);

    struct buf b = BUF_INIT;
    recs[0].body = (struct msg_bytes){NULL, 1};
    r.u.wal_rep = (struct msg_wal_rep){recs, 1, 6, NULL, 0};
    assert_int_equal(msg_encode(&r, &b, errmsg), DV_EINVAL);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void check_payload_index(void **state)
{
    struct msg m = {.type = MSG_PAYLOAD_INDEX, .req_id = 41}, out;
    m.addr = (struct msg_addr){S("docs"), 3, 4, 0};
    m.u.index_req = (struct msg_index_req){MSG_INDEX_CREATE, 0, S("tags"), {NULL, 0}};
    round_trip(&m, &out);
    assert_int_equal(out.u.index_req.op, MSG_INDEX_CREATE);
    assert_int_equal(out.u.index_req.kind, 0);
    assert_int_equal(out.u.index_req.key.len, 4);
    assert_memory_equal(out.u.index_req.key.p, "tags", 4);
    msg_free(&out);
    m.u.index_req = (struct msg_index_req){MSG_INDEX_DROP, 1, S("meta.year"), {NULL, 0}};
    round_trip(&m, &out);
    assert_int_equal(out.u.index_req.op, MSG_INDEX_DROP);
    assert_int_equal(out.u.index_req.kind, 1);
    msg_free(&out);
    /* the codec leaves op, kind and an empty key to the node to judge */
    m.u.index_req = (struct msg_index_req){UINT32_MAX, UINT32_MAX, {NULL, 0}, {NULL, 0}};
    round_trip(&m, &out);
    assert_int_equal(out.u.index_req.op, UINT32_MAX);
    assert_int_equal(out.u.index_req.key.len, 0);
    msg_free(&out);

    struct msg r = {.type = MSG_PAYLOAD_INDEX, .reply = true, .req_id = 41};
    r.u.write_rep = (struct msg_write_rep){77, 1, NULL, 0};
    round_trip(&r, &out);
    assert_true(out.u.write_rep.lsn == 77 && out.u.write_rep.affected == 1);
    msg_free(&out);
}

/* Hand-made malformed bodies of the new messages: declared counts and lengths larger than the
 * input, wrong shapes, values out of range. */
static void check_new_malformed(void **state)
{
    struct buf b = BUF_INIT;

    /* WAL reply declaring 2^32 - 1 records, then 10 records in 20 bytes (the one-byte-per-
     * element bound of the reader passes, five bytes per record does not) */
    uint32_t counts[] = {UINT32_MAX, 10};
    for (int i = 0; i < 2; i++) {
        buf_reset(&b);
        reply_header(&b, MSG_WAL_READ);
        mpw_array(&b, 2);
        mpw_array(&b, counts[i]);
        for (int j = 0; j < 19; j++)
            mpw_nil(&b);
        mpw_u64(&b, 1);
        expect_eproto(&b, "records");
    }
    /* two records declared, one present (the bytes left could hold two) */
    buf_reset(&b);
    reply_header(&b, MSG_WAL_READ);
    mpw_array(&b, 2);
    mpw_array(&b, 2);
    mpw_array(&b, 3);
    mpw_u64(&b, 1);
    mpw_u64(&b, 1);
    mpw_bin(&b, "0123456789", 10);
    mpw_u64(&b, 1);
    expect_eproto(&b, "record");
    /* a record body declaring more bytes than follow */
    buf_reset(&b);
    reply_header(&b, MSG_WAL_READ);
    mpw_array(&b, 2);
    mpw_array(&b, 1);
    mpw_array(&b, 3);
    mpw_u64(&b, 1);
    mpw_u64(&b, 1);
    const uint8_t bin32[] = {0xc6, 0x7f, 0xff, 0xff, 0xff, 'x', 'y'};
    mpw_raw(&b, bin32, sizeof bin32);
    mpw_u64(&b, 1);
    expect_eproto(&b, "record body");
    /* a node that predates term histories: two fields, no terms */
    buf_reset(&b);
    reply_header(&b, MSG_WAL_READ);
    mpw_array(&b, 2);
    mpw_array(&b, 0);
    mpw_u64(&b, 5);
    {
        struct msg old;
        char em[DV_ERRMSG_SIZE];
        assert_int_equal(msg_decode(b.data, b.len, &old, em), DV_OK);
        assert_int_equal(old.u.wal_rep.n_terms, 0);
        assert_true(old.u.wal_rep.applied_lsn == 5);
        msg_free(&old);
    }
    /* more term entries than PROTO_MAX_TERMS */
    buf_reset(&b);
    reply_header(&b, MSG_WAL_READ);
    mpw_array(&b, 3);
    mpw_array(&b, 0);
    mpw_u64(&b, 5);
    mpw_array(&b, PROTO_MAX_TERMS + 1);
    for (int j = 0; j <= PROTO_MAX_TERMS; j++) {
        mpw_array(&b, 2);
        mpw_u64(&b, (uint64_t)j + 1);
        mpw_u64(&b, 1);
    }
    expect_eproto(&b, "terms");
    /* a record type that does not fit u32 */
    buf_reset(&b);
    reply_header(&b, MSG_WAL_READ);
    mpw_array(&b, 2);
    mpw_array(&b, 1);
    mpw_array(&b, 3);
    mpw_u64(&b, 1);
    mpw_u64(&b, 1ULL << 32);
    mpw_bin(&b, "", 0);
    mpw_u64(&b, 1);
    expect_eproto(&b, "record type");

    /* snapshot chunk declaring 1000 bytes with 10 present; data given as nil */
    buf_reset(&b);
    reply_header(&b, MSG_SNAPSHOT_READ);
    mpw_array(&b, 5);
    mpw_u64(&b, 1);
    mpw_u64(&b, 2);
    mpw_u64(&b, 3);
    const uint8_t bin16[] = {0xc5, 0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    mpw_raw(&b, bin16, sizeof bin16);
    mpw_bool(&b, true);
    expect_eproto(&b, "data");
    buf_reset(&b);
    reply_header(&b, MSG_SNAPSHOT_READ);
    mpw_array(&b, 5);
    mpw_u64(&b, 1);
    mpw_u64(&b, 2);
    mpw_u64(&b, 3);
    mpw_nil(&b);
    mpw_bool(&b, true);
    expect_eproto(&b, "data");

    /* snapshot request without max_bytes, and with max_bytes beyond u32 */
    buf_reset(&b);
    header(&b, 1, MSG_SNAPSHOT_READ);
    addressed_body(&b, 6);
    mpw_u64(&b, 0);
    mpw_u64(&b, 0);
    expect_eproto(&b, "body length");
    buf_reset(&b);
    header(&b, 1, MSG_SNAPSHOT_READ);
    addressed_body(&b, 7);
    mpw_u64(&b, 0);
    mpw_u64(&b, 0);
    mpw_u64(&b, 1ULL << 32);
    expect_eproto(&b, "max_bytes");

    /* WAL read with a negative from */
    buf_reset(&b);
    header(&b, 1, MSG_WAL_READ);
    addressed_body(&b, 6);
    mpw_i64(&b, -1);
    mpw_u64(&b, 10);
    expect_eproto(&b, "from");

    /* payload index whose key declares 2^31 bytes, and whose key is not a string */
    buf_reset(&b);
    header(&b, 1, MSG_PAYLOAD_INDEX);
    addressed_body(&b, 8);
    mpw_u64(&b, 1);
    const uint8_t str32[] = {0xdb, 0x80, 0, 0, 0, 'k'};
    mpw_raw(&b, str32, sizeof str32);
    mpw_u64(&b, 0);
    expect_eproto(&b, "key");
    buf_reset(&b);
    header(&b, 1, MSG_PAYLOAD_INDEX);
    addressed_body(&b, 8);
    mpw_u64(&b, 1);
    mpw_u64(&b, 5);
    mpw_u64(&b, 0);
    expect_eproto(&b, "key");
    buf_free(&b);
}

/* ---- the client API and node reports -------------------------------------------------- */

/* Every type in 0..MSG_TYPE_COUNT is known with a name of its own, or a gap that decodes to
 * "unknown message type N" and does not encode. */
static void check_type_table(void **state)
{
    const struct {
        int type;
        const char *name;
        bool coll;
    } client[] = {
        {MSG_COLL_CREATE, "coll_create", true},
        {MSG_COLL_DROP, "coll_drop", true},
        {MSG_COLL_LIST, "coll_list", false},
        {MSG_COLL_INFO, "coll_info", true},
        {MSG_P_UPSERT, "points_upsert", true},
        {MSG_P_DELETE, "points_delete", true},
        {MSG_P_GET, "points_get", true},
        {MSG_P_SET_PAYLOAD, "points_set_payload", true},
        {MSG_P_COUNT, "points_count", true},
        {MSG_P_SCROLL, "points_scroll", true},
        {MSG_P_SEARCH, "points_search", true},
        {MSG_P_INDEX, "points_index", true},
        {MSG_CLUSTER, "cluster", false},
        {MSG_NODE_REPORT, "node_report", false},
        {MSG_COORD_ADD, "coord_add", false},
        {MSG_COORD_REMOVE, "coord_remove", false},
        {MSG_ADMIN, "admin", false},
        {MSG_ROUTE, "route", true},
    };
    for (size_t i = 0; i < sizeof client / sizeof client[0]; i++) {
        assert_int_equal(client[i].type, 32 + (int)i);
        assert_true(msg_type_known(client[i].type));
        assert_string_equal(msg_type_name(client[i].type), client[i].name);
        assert_int_equal(msg_type_collection(client[i].type), client[i].coll);
        assert_false(msg_type_addressed(client[i].type));
    }
    /* named vectors: node writes (addressed, replicated) and their client API */
    assert_int_equal(MSG_UPDATE_VECTORS, 21);
    assert_int_equal(MSG_DELETE_VECTORS, 22);
    assert_int_equal(MSG_SPARSE_STATS, 23);
    assert_false(msg_type_addressed(MSG_SPARSE_STATS) || msg_type_replicated(MSG_SPARSE_STATS));
    assert_true(msg_type_addressed(MSG_UPDATE_VECTORS) && msg_type_replicated(MSG_UPDATE_VECTORS));
    assert_true(msg_type_addressed(MSG_DELETE_VECTORS) && msg_type_replicated(MSG_DELETE_VECTORS));
    assert_string_equal(msg_type_name(MSG_P_UPDATE_VECTORS), "points_update_vectors");
    assert_string_equal(msg_type_name(MSG_P_DELETE_VECTORS), "points_delete_vectors");
    assert_true(msg_type_collection(MSG_P_UPDATE_VECTORS));
    assert_true(msg_type_collection(MSG_P_DELETE_VECTORS));
    assert_int_equal(MSG_TYPE_COUNT, 62);

    struct buf b = BUF_INIT;
    for (int t = -1; t <= MSG_TYPE_COUNT; t++) {
        bool gap = t < 0 || (t >= 26 && t <= 31) || (t >= 52 && t <= 59) || t >= MSG_TYPE_COUNT;
        assert_int_equal(msg_type_known(t), !gap);
        assert_false(msg_type_addressed(t) && msg_type_collection(t));
        if (gap) {
            assert_string_equal(msg_type_name(t), "unknown");
            assert_false(msg_type_addressed(t) || msg_type_collection(t));
        } else {
            assert_string_not_equal(msg_type_name(t), "unknown");
            for (int u = 0; u < t; u++)
                assert_string_not_equal(msg_type_name(t), msg_type_name(u));
        }
        if (t < 0)
            continue;
        struct msg out;
        char want[64];
        snprintf(want, sizeof want, "unknown message type %d", t);
        buf_reset(&b);
        header(&b, 1, (uint64_t)t);
        mpw_array(&b, 0);
        int rc = msg_decode(b.data, b.len, &out, errmsg);
        if (gap) {
            assert_int_equal(rc, DV_EPROTO);
            assert_non_null(strstr(errmsg, want));
        } else if (rc != DV_OK) {
            assert_int_equal(rc, DV_EPROTO); /* the body does not fit the type */
            assert_null(strstr(errmsg, "unknown message type"));
        }
        msg_free(&out);
        if (!gap)
            continue;
        /* a gap is not encoded, neither as a request nor as an error reply */
        struct msg m = {.type = t, .req_id = 1};
        buf_reset(&b);
        assert_int_equal(msg_encode(&m, &b, errmsg), DV_EINVAL);
        m.reply = true;
        m.err = (struct msg_error){DV_EPROTO, S("bad"), 0};
        assert_int_equal(msg_encode(&m, &b, errmsg), DV_EINVAL);
        assert_int_equal(b.len, 0);
    }
    buf_free(&b);
}

/* A route reply (MSG_ROUTE): nodes, a primary or none, readers, the write group; node indexes
 * beyond the node list are refused. */
static void check_route(void **state)
{
    (void)state;
    struct msg m = {.type = MSG_ROUTE, .req_id = 70}, out;
    m.addr = (struct msg_addr){S("docs"), 0, 0, 0};
    round_trip(&m, &out);
    assert_memory_equal(out.addr.coll.p, "docs", 4);
    msg_free(&out);

    struct msg_peer nodes[3] = {
        {S("n1"), S("tcp://a:1")}, {S("n2"), S("tcp://b:2")}, {S("n3"), S("tcp://c:3")}};
    uint32_t r0[] = {0, 1, 2}, s0[] = {1, 2}, r1[] = {2};
    struct msg_route_part parts[2] = {{5, 2, 0, r0, 3, true, s0, 2},
                                      {9, 1, UINT32_MAX, r1, 1, false, NULL, 0}};
    m.reply = true;
    m.u.route_rep = (struct msg_route_rep){77,
                                           {.dim = 128,
                                            .metric = 1,
                                            .m = 16,
                                            .ef_construction = 200,
                                            .ef_search = 64,
                                            .fsync = 0,
                                            .partitions = 2,
                                            .replication = 3,
                                            .sq8 = false},
                                           nodes,
                                           NULL,
                                           3,
                                           parts,
                                           2,
                                           {NULL, 0}};
    round_trip(&m, &out);
    const struct msg_route_rep *r = &out.u.route_rep;
    assert_true(r->map_epoch == 77);
    assert_int_equal(r->cfg.dim, 128);
    assert_int_equal(r->cfg.metric, 1);
    assert_int_equal(r->cfg.partitions, 2);
    assert_int_equal(r->n_nodes, 3);
    assert_memory_equal(r->nodes[2].url.p, "tcp://c:3", 9);
    assert_int_equal(r->n_parts, 2);
    assert_true(r->parts[0].epoch == 5 && r->parts[0].term == 2);
    assert_int_equal(r->parts[0].primary, 0);
    assert_int_equal(r->parts[0].n_readers, 3);
    assert_int_equal(r->parts[0].readers[2], 2);
    assert_true(r->parts[0].writable);
    assert_int_equal(r->parts[0].n_secondaries, 2);
    assert_int_equal(r->parts[0].secondaries[1], 2);
    assert_int_equal(r->parts[1].primary, UINT32_MAX);
    assert_false(r->parts[1].writable);
    assert_int_equal(r->parts[1].n_readers, 1);
    assert_int_equal(r->parts[1].n_secondaries, 0);
    assert_int_equal(r->coll.len, 0); /* not asked by an alias */
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(r->search_urls[i].len, 0); /* none sent: every node without one */
    msg_free(&out);

    /* search ports: a node entry's third element, only for the nodes that have one */
    struct msg_str search[3] = {S("tcp://a:11"), {NULL, 0}, S("tcp://c:33")};
    m.u.route_rep.search_urls = search;
    struct buf sb = BUF_INIT;
    assert_int_equal(msg_encode(&m, &sb, errmsg), DV_OK);
    size_t with = sb.len;
    buf_free(&sb);
    round_trip(&m, &out);
    r = &out.u.route_rep;
    assert_int_equal(r->search_urls[0].len, 10);
    assert_memory_equal(r->search_urls[0].p, "tcp://a:11", 10);
    assert_int_equal(r->search_urls[1].len, 0);
    assert_memory_equal(r->search_urls[2].p, "tcp://c:33", 10);
    assert_memory_equal(r->nodes[2].url.p, "tcp://c:3", 9);
    msg_free(&out);
    m.u.route_rep.search_urls = NULL;
    assert_int_equal(msg_encode(&m, &sb, errmsg), DV_OK);
    assert_true(sb.len == with - 2 * (1 + 10)); /* two strings less, same array headers */
    buf_free(&sb);

    /* asked by an alias: the collection's name as a 5th element; without it, 4 (as before) */
    m.u.route_rep.coll = S("docs_v2");
    round_trip(&m, &out);
    assert_int_equal(out.u.route_rep.coll.len, 7);
    assert_memory_equal(out.u.route_rep.coll.p, "docs_v2", 7);
    assert_int_equal(out.u.route_rep.n_parts, 2);
    msg_free(&out);
    assert_int_equal(msg_encode(&m, &sb, errmsg), DV_OK);
    assert_true(sb.len == with - 2 * (1 + 10) + 1 + 7);
    buf_free(&sb);
    m.u.route_rep.coll = (struct msg_str){NULL, 0};

    /* a reader naming node 3 of 3 */
    r1[0] = 3;
    struct buf b = BUF_INIT;
    assert_int_equal(msg_encode(&m, &b, errmsg), DV_OK);
    assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_EPROTO);
    assert_non_null(strstr(errmsg, "readers"));
    buf_free(&b);
    r1[0] = 2;
    parts[1].primary = 7; /* a primary beyond the nodes */
    assert_int_equal(msg_encode(&m, &b, errmsg), DV_OK);
    assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_EPROTO);
    assert_non_null(strstr(errmsg, "primary"));
    buf_free(&b);
}

static void check_coll_admin(void **state)
{
    struct msg m = {.type = MSG_COLL_CREATE, .req_id = 50}, out;
    m.addr = (struct msg_addr){S("docs"), 7, 8, 0}; /* part and epoch are not sent */
    m.u.coll_cfg = (struct msg_coll_cfg){.dim = 768,
                                         .metric = 2,
                                         .m = 32,
                                         .ef_construction = 400,
                                         .ef_search = 128,
                                         .fsync = 1,
                                         .partitions = 16,
                                         .replication = 3,
                                         .sq8 = true};
    round_trip(&m, &out);
    const struct msg_coll_cfg *c = &out.u.coll_cfg;
    assert_int_equal(out.addr.coll.len, 4);
    assert_memory_equal(out.addr.coll.p, "docs", 4);
    assert_int_equal(out.addr.part, 0);
    assert_true(out.addr.epoch == 0);
    assert_int_equal(c->dim, 768);
    assert_int_equal(c->metric, 2);
    assert_int_equal(c->m, 32);
    assert_int_equal(c->ef_construction, 400);
    assert_int_equal(c->ef_search, 128);
    assert_int_equal(c->fsync, 1);
    assert_int_equal(c->partitions, 16);
    assert_int_equal(c->replication, 3);
    assert_true(c->sq8);
    msg_free(&out);
    /* defaults (0) and extremes pass the codec: the coordinator judges them */
    m.u.coll_cfg = (struct msg_coll_cfg){0};
    round_trip(&m, &out);
    assert_int_equal(out.u.coll_cfg.partitions, 0);
    assert_int_equal(out.u.coll_cfg.replication, 0);
    assert_false(out.u.coll_cfg.sq8);
    msg_free(&out);
    m.u.coll_cfg = (struct msg_coll_cfg){.dim = UINT32_MAX,
                                         .metric = UINT32_MAX,
                                         .m = UINT32_MAX,
                                         .ef_construction = UINT32_MAX,
                                         .ef_search = UINT32_MAX,
                                         .fsync = UINT32_MAX,
                                         .partitions = UINT32_MAX,
                                         .replication = UINT32_MAX,
                                         .sq8 = true};
    round_trip(&m, &out);
    assert_int_equal(out.u.coll_cfg.replication, UINT32_MAX);
    msg_free(&out);
    m.addr.coll = (struct msg_str){NULL, 0}; /* an empty name is the coordinator's to refuse */
    round_trip(&m, &out);
    assert_int_equal(out.addr.coll.len, 0);
    msg_free(&out);

    /* the name-only requests and the empty replies */
    const int named[] = {MSG_COLL_CREATE, MSG_COLL_DROP, MSG_COLL_INFO, MSG_COLL_LIST, MSG_CLUSTER};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        memset(&m, 0, sizeof m);
        m.type = named[i];
        m.req_id = 60 + i;
        m.addr = (struct msg_addr){S("images"), 1, 2, 0};
        if (m.type != MSG_COLL_CREATE) {
            round_trip(&m, &out);
            if (msg_type_collection(m.type))
                assert_memory_equal(out.addr.coll.p, "images", 6);
            else
                assert_int_equal(out.addr.coll.len, 0); /* list and cluster name nothing */
            msg_free(&out);
        }
        if (m.type == MSG_COLL_CREATE || m.type == MSG_COLL_DROP) {
            m.reply = true;
            round_trip(&m, &out);
            msg_free(&out);
        }
        m.reply = true;
        m.err = (struct msg_error){DV_ENOTFOUND, S("collection \"images\" does not exist"), 0};
        round_trip(&m, &out);
        assert_int_equal(out.err.code, DV_ENOTFOUND);
        msg_free(&out);
    }

    struct msg_str names[3] = {S("a"), S("docs"), S("")};
    struct msg r = {.type = MSG_COLL_LIST, .reply = true, .req_id = 70};
    r.u.coll_list_rep = (struct msg_coll_list_rep){names, 3};
    round_trip(&r, &out);
    assert_int_equal(out.u.coll_list_rep.n, 3);
    assert_memory_equal(out.u.coll_list_rep.names[1].p, "docs", 4);
    assert_int_equal(out.u.coll_list_rep.names[2].len, 0);
    msg_free(&out);
    r.u.coll_list_rep = (struct msg_coll_list_rep){NULL, 0};
    round_trip(&r, &out);
    assert_int_equal(out.u.coll_list_rep.n, 0);
    msg_free(&out);

    struct msg_str nodes[3] = {S("node-1"), S("node-2"), S("n3")};
    uint8_t states[3] = {0, 1, 4};
    struct msg_coll_part parts[3] = {{0, 5, nodes, 3, 100, 7, states},
                                     {1, UINT64_MAX, nodes + 1, 1, 0, 1, NULL},
                                     {UINT32_MAX, 0, NULL, 0, UINT64_MAX, 0, NULL}};
    r.type = MSG_COLL_INFO;
    r.u.coll_info_rep = (struct msg_coll_info_rep){{.dim = 128,
                                                    .metric = 1,
                                                    .m = 16,
                                                    .ef_construction = 200,
                                                    .ef_search = 64,
                                                    .fsync = 0,
                                                    .partitions = 3,
                                                    .replication = 2,
                                                    .sq8 = false},
                                                   1ULL << 40,
                                                   parts,
                                                   3};
    round_trip(&r, &out);
    const struct msg_coll_info_rep *f = &out.u.coll_info_rep;
    assert_int_equal(f->cfg.dim, 128);
    assert_int_equal(f->cfg.partitions, 3);
    assert_int_equal(f->cfg.replication, 2);
    assert_true(f->points == 1ULL << 40);
    assert_int_equal(f->n_parts, 3);
    assert_int_equal(f->parts[0].n_nodes, 3);
    assert_memory_equal(f->parts[0].nodes[2].p, "n3", 2);
    assert_true(f->parts[0].points == 100);
    assert_true(f->parts[1].epoch == UINT64_MAX);
    assert_memory_equal(f->parts[1].nodes[0].p, "node-2", 6);
    assert_int_equal(f->parts[2].part, UINT32_MAX);
    assert_int_equal(f->parts[2].n_nodes, 0);
    assert_true(f->parts[2].points == UINT64_MAX);
    assert_true(f->parts[0].term == 7 && f->parts[1].term == 1);
    assert_int_equal(f->parts[0].states[1], 1);
    assert_int_equal(f->parts[0].states[2], 4);
    assert_int_equal(f->parts[1].states[0], 0); /* NULL encodes as all active */
    msg_free(&out);
    r.u.coll_info_rep.n_parts = 0;
    round_trip(&r, &out);
    assert_int_equal(out.u.coll_info_rep.n_parts, 0);
    msg_free(&out);
}

static void check_csearch(void **state)
{
    float v1[4] = {1, 2, 3, 4}, v2[4] = {0, 0, 0, 1};
    struct msg_query qs[2] = {
        {v1, 4, 10, 0, {filter, sizeof filter}, true, false, {NULL, 0}, NULL, 0, NULL, 0, NULL, 0},
        {v2, 4, 1, 128, {NULL, 0}, false, true, {NULL, 0}, NULL, 0, NULL, 0, NULL, 0}};
    struct msg m = {.type = MSG_P_SEARCH, .req_id = 80}, out;
    m.addr.coll = S("docs");
    m.u.csearch_req = (struct msg_csearch_req){qs, 2, true, 2500};
    round_trip(&m, &out);
    const struct msg_csearch_req *q = &out.u.csearch_req;
    assert_memory_equal(out.addr.coll.p, "docs", 4);
    assert_int_equal(q->n_queries, 2);
    assert_memory_equal(q->queries[0].vec, v1, sizeof v1);
    assert_int_equal(q->queries[0].filter.len, sizeof filter);
    assert_int_equal(q->queries[1].ef, 128);
    assert_true(q->queries[1].with_vector);
    assert_true(q->allow_partial);
    assert_int_equal(q->timeout_ms, 2500);
    msg_free(&out);
    m.u.csearch_req = (struct msg_csearch_req){qs + 1, 1, false, UINT32_MAX};
    round_trip(&m, &out);
    assert_false(out.u.csearch_req.allow_partial);
    assert_int_equal(out.u.csearch_req.timeout_ms, UINT32_MAX);
    msg_free(&out);
    m.u.csearch_req = (struct msg_csearch_req){NULL, 0, false, 0};
    round_trip(&m, &out);
    assert_int_equal(out.u.csearch_req.n_queries, 0);
    msg_free(&out);

    struct msg_hit hits[2] = {{test_id(3), 0.9f, v1, 4, {payload, sizeof payload}, {NULL, 0}},
                              {test_id(4), 0.1f, NULL, 0, {NULL, 0}, {NULL, 0}}};
    struct msg_hits res[2] = {{hits, 2}, {hits, 0}};
    uint32_t failed[2] = {3, UINT32_MAX};
    struct msg r = {.type = MSG_P_SEARCH, .reply = true, .req_id = 80};
    r.u.csearch_rep = (struct msg_csearch_rep){res, 2, true, failed, 2};
    round_trip(&r, &out);
    const struct msg_csearch_rep *o = &out.u.csearch_rep;
    assert_int_equal(o->n, 2);
    assert_int_equal(o->results[0].n, 2);
    assert_true(pid_eq(&o->results[0].hits[1].id, &hits[1].id));
    assert_memory_equal(o->results[0].hits[0].vec, v1, sizeof v1);
    assert_int_equal(o->results[1].n, 0);
    assert_true(o->partial);
    assert_int_equal(o->n_failed, 2);
    assert_int_equal(o->failed[0], 3);
    assert_int_equal(o->failed[1], UINT32_MAX);
    msg_free(&out);
    r.u.csearch_rep = (struct msg_csearch_rep){res, 1, false, NULL, 0};
    round_trip(&r, &out);
    assert_false(out.u.csearch_rep.partial);
    assert_int_equal(out.u.csearch_rep.n_failed, 0);
    msg_free(&out);
    r.u.csearch_rep = (struct msg_csearch_rep){NULL, 0, false, NULL, 0};
    round_trip(&r, &out);
    assert_int_equal(out.u.csearch_rep.n, 0);
    msg_free(&out);

    /* without allow_partial a partition that does not answer fails the request */
    r.err = (struct msg_error){DV_ETIMEDOUT, S("partition 3: no answer within 2500 ms"), 0};
    round_trip(&r, &out);
    assert_int_equal(out.err.code, DV_ETIMEDOUT);
    msg_free(&out);
}

static void check_cluster_node_report(void **state)
{
    struct msg m = {.type = MSG_CLUSTER, .reply = true, .req_id = 90}, out;
    m.u.cluster_rep.status = (struct msg_bytes){payload, sizeof payload};
    round_trip(&m, &out);
    assert_int_equal(out.u.cluster_rep.status.len, sizeof payload);
    assert_memory_equal(out.u.cluster_rep.status.p, payload, sizeof payload);
    msg_free(&out);
    m.u.cluster_rep.status = (struct msg_bytes){NULL, 0};
    round_trip(&m, &out);
    assert_null(out.u.cluster_rep.status.p);
    msg_free(&out);
    struct buf b = BUF_INIT;
    m.u.cluster_rep.status = (struct msg_bytes){filter, sizeof filter - 1}; /* not one value */
    assert_int_equal(msg_encode(&m, &b, errmsg), DV_EINVAL);
    m.u.cluster_rep.status = (struct msg_bytes){payload, 0};
    assert_int_equal(msg_encode(&m, &b, errmsg), DV_EINVAL);
    assert_int_equal(b.len, 0);
    buf_free(&b);

    struct msg_replica_report reps[3] = {{S("docs"), 3, 41, 1000, 17},
                                         {S("images"), 0, 0, 0, 0},
                                         {S(""), UINT32_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}};
    m = (struct msg){.type = MSG_NODE_REPORT, .req_id = 91};
    m.u.node_report_req = (struct msg_node_report_req){S("node-1"),
                                                       S("tcp://127.0.0.1:7001"),
                                                       S("http://127.0.0.1:8001"),
                                                       1.5,
                                                       1000000,
                                                       reps,
                                                       3,
                                                       0,
                                                       {NULL, 0}};
    round_trip(&m, &out);
    const struct msg_node_report_req *q = &out.u.node_report_req;
    assert_int_equal(q->node_id.len, 6);
    assert_memory_equal(q->node_id.p, "node-1", 6);
    assert_memory_equal(q->url.p, "tcp://127.0.0.1:7001", 20);
    assert_memory_equal(q->http_url.p, "http://127.0.0.1:8001", 21);
    assert_true(q->weight == 1.5);
    assert_true(q->capacity == 1000000);
    assert_int_equal(q->n, 3);
    assert_memory_equal(q->replicas[1].coll.p, "images", 6);
    assert_int_equal(q->replicas[0].part, 3);
    assert_true(q->replicas[0].applied_lsn == 41 && q->replicas[0].points == 1000);
    assert_int_equal(q->replicas[2].part, UINT32_MAX);
    assert_true(q->replicas[2].applied_lsn == UINT64_MAX && q->replicas[2].points == UINT64_MAX);
    assert_true(q->replicas[0].incarnation == 17 && q->replicas[1].incarnation == 0);
    assert_true(q->replicas[2].incarnation == UINT64_MAX);
    assert_true(q->flags == 0);
    msg_free(&out);
    /* flags travel as a 7th field, only when set; a report of 6 fields reads as no flags */
    struct buf fb = BUF_INIT;
    assert_int_equal(msg_encode(&m, &fb, errmsg), DV_OK);
    size_t len_without = fb.len;
    buf_free(&fb);
    m.u.node_report_req.flags = MSG_REPORT_REJOIN;
    assert_int_equal(msg_encode(&m, &fb, errmsg), DV_OK);
    assert_true(fb.len == len_without + 1);
    buf_free(&fb);
    round_trip(&m, &out);
    assert_true(out.u.node_report_req.flags == MSG_REPORT_REJOIN);
    assert_int_equal(out.u.node_report_req.search_url.len, 0);
    msg_free(&out);
    /* a search port comes after the flags, which are then sent even when 0 */
    m.u.node_report_req.search_url = S("tcp://127.0.0.1:7401");
    round_trip(&m, &out);
    assert_true(out.u.node_report_req.flags == MSG_REPORT_REJOIN);
    assert_int_equal(out.u.node_report_req.search_url.len, 20);
    assert_memory_equal(out.u.node_report_req.search_url.p, "tcp://127.0.0.1:7401", 20);
    msg_free(&out);
    m.u.node_report_req.flags = 0;
    assert_int_equal(msg_encode(&m, &fb, errmsg), DV_OK);
    assert_true(fb.len == len_without + 1 + 21);
    buf_free(&fb);
    round_trip(&m, &out);
    assert_true(out.u.node_report_req.flags == 0);
    assert_memory_equal(out.u.node_report_req.search_url.p, "tcp://127.0.0.1:7401", 20);
    msg_free(&out);
    m.u.node_report_req.search_url = (struct msg_str){NULL, 0};
    /* no replicas, no HTTP URL; any weight passes the codec (NaN included) */
    const double weights[] = {0, -1, 1e300, 0.1, NAN};
    for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++) {
        m.u.node_report_req = (struct msg_node_report_req){
            S("n"), S("tcp://h:1"), {NULL, 0}, weights[i], 0, NULL, 0, 0, {NULL, 0}};
        round_trip(&m, &out);
        if (isnan(weights[i]))
            assert_true(isnan(out.u.node_report_req.weight));
        else
            assert_true(out.u.node_report_req.weight == weights[i]);
        assert_int_equal(out.u.node_report_req.http_url.len, 0);
        assert_int_equal(out.u.node_report_req.n, 0);
        msg_free(&out);
    }

    struct msg r = {.type = MSG_NODE_REPORT, .reply = true, .req_id = 91};
    r.u.node_report_rep = (struct msg_node_report_rep){77, S("tcp://10.0.0.1:7000")};
    round_trip(&r, &out);
    assert_true(out.u.node_report_rep.map_epoch == 77);
    assert_memory_equal(out.u.node_report_rep.leader_url.p, "tcp://10.0.0.1:7000", 19);
    msg_free(&out);
    r.u.node_report_rep = (struct msg_node_report_rep){UINT64_MAX, {NULL, 0}};
    round_trip(&r, &out);
    assert_true(out.u.node_report_rep.map_epoch == UINT64_MAX);
    assert_int_equal(out.u.node_report_rep.leader_url.len, 0);
    msg_free(&out);
}

/* The start of a collection-level request body of n elements in all: the name "c". */
static void coll_body(struct buf *b, uint64_t type, uint32_t n)
{
    header(b, 1, type);
    assert_int_equal(mpw_array(b, n), DV_OK);
    assert_int_equal(mpw_str(b, "c", 1), DV_OK);
}

/* Nine collection parameters: dim, metric, m, ef_construction, ef_search, sq8, fsync,
 * partitions, replication. */
static void coll_cfg_fields(struct buf *b)
{
    for (int i = 0; i < 5; i++)
        mpw_u64(b, 1);
    mpw_bool(b, false);
    for (int i = 0; i < 3; i++)
        mpw_u64(b, 1);
}

/* Hand-made malformed bodies of the client API and node reports. */
static void check_client_malformed(void **state)
{
    struct buf b = BUF_INIT;

    /* a name that is not a string; a partition-addressed body where a name is expected */
    buf_reset(&b);
    header(&b, 1, MSG_P_DELETE);
    mpw_array(&b, 2);
    mpw_u64(&b, 5);
    mpw_array(&b, 0);
    expect_eproto(&b, "collection");
    buf_reset(&b);
    header(&b, 1, MSG_P_DELETE);
    addressed_body(&b, 4);
    mpw_array(&b, 0);
    expect_eproto(&b, "body length");
    /* coll_list takes no name */
    buf_reset(&b);
    coll_body(&b, MSG_COLL_LIST, 1);
    expect_eproto(&b, "body length");

    /* coll_create without replication; with replication beyond u32; sq8 not a bool */
    buf_reset(&b);
    coll_body(&b, MSG_COLL_CREATE, 9);
    for (int i = 0; i < 5; i++)
        mpw_u64(&b, 1);
    mpw_bool(&b, true);
    mpw_u64(&b, 0);
    mpw_u64(&b, 0);
    expect_eproto(&b, "body length");
    buf_reset(&b);
    coll_body(&b, MSG_COLL_CREATE, 10);
    for (int i = 0; i < 5; i++)
        mpw_u64(&b, 1);
    mpw_bool(&b, true);
    mpw_u64(&b, 0);
    mpw_u64(&b, 0);
    mpw_u64(&b, 1ULL << 32);
    expect_eproto(&b, "replication");
    buf_reset(&b);
    coll_body(&b, MSG_COLL_CREATE, 10);
    for (int i = 0; i < 5; i++)
        mpw_u64(&b, 1);
    mpw_u64(&b, 1);
    mpw_u64(&b, 0);
    mpw_u64(&b, 0);
    mpw_u64(&b, 0);
    expect_eproto(&b, "sq8");

    /* coll_list reply declaring 2^32 - 1 names, then 10 names in 9 bytes */
    uint32_t counts[] = {UINT32_MAX, 10};
    for (int i = 0; i < 2; i++) {
        buf_reset(&b);
        reply_header(&b, MSG_COLL_LIST);
        mpw_array(&b, 1);
        mpw_array(&b, counts[i]);
        for (int j = 0; j < 9; j++)
            mpw_str(&b, "", 0);
        expect_eproto(&b, "names");
    }
    /* a name that is not a string */
    buf_reset(&b);
    reply_header(&b, MSG_COLL_LIST);
    mpw_array(&b, 1);
    mpw_array(&b, 1);
    mpw_nil(&b);
    expect_eproto(&b, "names");

    /* coll_info reply: two partitions declared, 9 bytes left (two need 10); a partition of
     * three elements; a partition declaring 100 nodes in 3 bytes */
    buf_reset(&b);
    reply_header(&b, MSG_COLL_INFO);
    mpw_array(&b, 11);
    coll_cfg_fields(&b);
    mpw_u64(&b, 0);
    mpw_array(&b, 2);
    for (int j = 0; j < 9; j++)
        mpw_nil(&b);
    expect_eproto(&b, "partition list");
    buf_reset(&b);
    reply_header(&b, MSG_COLL_INFO);
    mpw_array(&b, 11);
    coll_cfg_fields(&b);
    mpw_u64(&b, 0);
    mpw_array(&b, 1);
    mpw_array(&b, 3);
    mpw_u64(&b, 0);
    mpw_u64(&b, 0);
    mpw_array(&b, 0);
    mpw_u64(&b, 0);
    expect_eproto(&b, "partition");
    buf_reset(&b);
    reply_header(&b, MSG_COLL_INFO);
    mpw_array(&b, 11);
    coll_cfg_fields(&b);
    mpw_u64(&b, 0);
    mpw_array(&b, 1);
    mpw_array(&b, 4);
    mpw_u64(&b, 0);
    mpw_u64(&b, 0);
    mpw_array(&b, 100);
    mpw_str(&b, "a", 1);
    mpw_u64(&b, 0);
    expect_eproto(&b, "partition nodes");
    /* a coll_info reply of the old shape (10 elements) */
    buf_reset(&b);
    reply_header(&b, MSG_COLL_INFO);
    mpw_array(&b, 10);
    coll_cfg_fields(&b);
    mpw_u64(&b, 0);
    expect_eproto(&b, "body");

    /* points_search request: timeout beyond u32, allow_partial not a bool */
    buf_reset(&b);
    coll_body(&b, MSG_P_SEARCH, 4);
    mpw_array(&b, 0);
    mpw_bool(&b, true);
    mpw_u64(&b, 1ULL << 32);
    expect_eproto(&b, "timeout_ms");
    buf_reset(&b);
    coll_body(&b, MSG_P_SEARCH, 4);
    mpw_array(&b, 0);
    mpw_nil(&b);
    mpw_u64(&b, 0);
    expect_eproto(&b, "allow_partial");
    /* the node search's shape (partitions, then queries) is not a points_search */
    buf_reset(&b);
    coll_body(&b, MSG_P_SEARCH, 3);
    mpw_array(&b, 0);
    mpw_array(&b, 0);
    expect_eproto(&b, "body length");

    /* points_search reply: a failed partition beyond u32; 5 failed partitions in 4 bytes;
     * 2^32 - 1 result lists */
    buf_reset(&b);
    reply_header(&b, MSG_P_SEARCH);
    mpw_array(&b, 3);
    mpw_array(&b, 0);
    mpw_bool(&b, true);
    mpw_array(&b, 1);
    mpw_u64(&b, 1ULL << 32);
    expect_eproto(&b, "failed partition");
    buf_reset(&b);
    reply_header(&b, MSG_P_SEARCH);
    mpw_array(&b, 3);
    mpw_array(&b, 0);
    mpw_bool(&b, true);
    mpw_array(&b, 5);
    for (int j = 0; j < 4; j++)
        mpw_u64(&b, 1);
    expect_eproto(&b, "failed partitions");
    buf_reset(&b);
    reply_header(&b, MSG_P_SEARCH);
    mpw_array(&b, 3);
    mpw_array(&b, UINT32_MAX);
    mpw_bool(&b, false);
    mpw_array(&b, 0);
    expect_eproto(&b, "results");

    /* node_report: a weight that is a string; replicas of three elements; 1000 replicas in a
     * few bytes */
    buf_reset(&b);
    header(&b, 1, MSG_NODE_REPORT);
    mpw_array(&b, 6);
    mpw_str(&b, "n", 1);
    mpw_str(&b, "u", 1);
    mpw_str(&b, "", 0);
    mpw_str(&b, "1.0", 3);
    mpw_u64(&b, 0);
    mpw_array(&b, 0);
    expect_eproto(&b, "weight");
    for (int k = 0; k < 2; k++) {
        buf_reset(&b);
        header(&b, 1, MSG_NODE_REPORT);
        mpw_array(&b, 6);
        mpw_str(&b, "n", 1);
        mpw_str(&b, "u", 1);
        mpw_str(&b, "", 0);
        mpw_f64(&b, 1.0);
        mpw_u64(&b, 0);
        mpw_array(&b, k ? 1000 : 1);
        mpw_array(&b, 3);
        mpw_str(&b, "docs", 4);
        mpw_u64(&b, 1);
        mpw_u64(&b, 1);
        expect_eproto(&b, k ? "replicas" : "replica");
    }
    /* two replicas declared and one present: its 9 bytes could hold two at one byte each */
    buf_reset(&b);
    header(&b, 1, MSG_NODE_REPORT);
    mpw_array(&b, 6);
    mpw_str(&b, "n", 1);
    mpw_str(&b, "u", 1);
    mpw_str(&b, "", 0);
    mpw_f64(&b, 1.0);
    mpw_u64(&b, 0);
    mpw_array(&b, 2);
    mpw_array(&b, 4);
    mpw_str(&b, "docs", 4);
    mpw_u64(&b, 1);
    mpw_u64(&b, 1);
    mpw_u64(&b, 1);
    expect_eproto(&b, "replicas: malformed or truncated msgpack (9 bytes left)");
    /* a replica of a node that predates incarnations (4 elements) reads as incarnation 0;
     * 6 elements, or an incarnation that is not an unsigned integer, do not decode */
    for (int k = 0; k < 3; k++) {
        buf_reset(&b);
        header(&b, 1, MSG_NODE_REPORT);
        mpw_array(&b, 6);
        mpw_str(&b, "n", 1);
        mpw_str(&b, "u", 1);
        mpw_str(&b, "", 0);
        mpw_f64(&b, 1.0);
        mpw_u64(&b, 0);
        mpw_array(&b, 1);
        mpw_array(&b, k == 0 ? 4 : k == 1 ? 6 : 5);
        mpw_str(&b, "docs", 4);
        mpw_u64(&b, 7);
        mpw_u64(&b, 8);
        mpw_u64(&b, 9);
        if (k == 1) {
            mpw_u64(&b, 10);
            mpw_u64(&b, 11);
        } else if (k == 2) {
            mpw_str(&b, "10", 2);
        }
        if (k > 0) {
            expect_eproto(&b, k == 1 ? "replica" : "replica incarnation");
            continue;
        }
        struct msg out;
        assert_int_equal(msg_decode(b.data, b.len, &out, errmsg), DV_OK);
        assert_int_equal(out.u.node_report_req.n, 1);
        assert_int_equal(out.u.node_report_req.replicas[0].part, 7);
        assert_true(out.u.node_report_req.replicas[0].points == 9);
        assert_true(out.u.node_report_req.replicas[0].incarnation == 0);
        msg_free(&out);
    }
    /* node_report reply with a nil leader URL */
    buf_reset(&b);
    reply_header(&b, MSG_NODE_REPORT);
    mpw_array(&b, 2);
    mpw_u64(&b, 1);
    mpw_nil(&b);
    expect_eproto(&b, "leader_url");
    buf_free(&b);
}

static void check_too_big_encode(void **state)
{
    uint32_t dim = 4096, n = PROTO_MAX_MSG / (dim * 4) + 1;
    float *vecs = calloc((size_t)n * dim, sizeof(float));
    struct pid *ids = calloc(n, sizeof *ids);
    assert_non_null(vecs);
    assert_non_null(ids);
    struct msg m = {.type = MSG_UPSERT};
    m.addr.coll = S("c");
    m.u.upsert_req = (struct msg_upsert_req){ids, vecs, NULL, n, dim, NULL};
    struct buf b = BUF_INIT;
    assert_int_equal(msg_encode(&m, &b, errmsg), DV_ETOOBIG);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    free(vecs);
    free(ids);
}

static void check_coord_membership(void **state)
{
    (void)state;
    struct msg m = {.type = MSG_COORD_ADD, .req_id = 95}, out;
    m.u.coord_req = (struct msg_coord_req){4, S("127.0.0.1:7313"), S("tcp://127.0.0.1:7303")};
    round_trip(&m, &out);
    assert_true(out.u.coord_req.id == 4);
    assert_int_equal(out.u.coord_req.raft_addr.len, 14);
    assert_memory_equal(out.u.coord_req.raft_addr.p, "127.0.0.1:7313", 14);
    assert_memory_equal(out.u.coord_req.client_url.p, "tcp://127.0.0.1:7303", 20);
    assert_string_equal(msg_type_name(MSG_COORD_ADD), "coord_add");
    assert_false(msg_type_collection(MSG_COORD_ADD));
    assert_false(msg_type_addressed(MSG_COORD_ADD));
    msg_free(&out);
    m = (struct msg){.type = MSG_COORD_REMOVE, .req_id = 96};
    m.u.coord_req.id = UINT64_MAX;
    round_trip(&m, &out);
    assert_true(out.u.coord_req.id == UINT64_MAX);
    msg_free(&out);
    /* Replies: empty bodies. */
    m = (struct msg){.type = MSG_COORD_ADD, .reply = true, .req_id = 97};
    round_trip(&m, &out);
    msg_free(&out);
    m = (struct msg){.type = MSG_COORD_REMOVE, .reply = true, .req_id = 98};
    round_trip(&m, &out);
    msg_free(&out);
}

/* Moving replicas: pull (start with its source and create parameters, finish with an LSN,
 * every state in the reply), fence, and the admin envelope with and without arguments. */
static void check_move_messages(void **state)
{
    assert_string_equal(msg_type_name(MSG_REPLICA_PULL), "replica_pull");
    assert_string_equal(msg_type_name(MSG_REPLICA_FENCE), "replica_fence");
    assert_true(msg_type_addressed(MSG_REPLICA_PULL) && msg_type_addressed(MSG_REPLICA_FENCE));
    assert_false(msg_type_addressed(MSG_ADMIN) || msg_type_collection(MSG_ADMIN));

    struct msg m = {.type = MSG_REPLICA_PULL, .req_id = 5}, out;
    m.addr = (struct msg_addr){S("docs"), 7, 41, 0};
    m.u.pull_req = (struct msg_pull_req){MSG_PULL_START,
                                         S("tcp://127.0.0.1:7400"),
                                         64u << 20,
                                         0,
                                         {{.dim = 128,
                                           .metric = 2,
                                           .m = 16,
                                           .ef_construction = 200,
                                           .ef_search = 64,
                                           .fsync = 1,
                                           .sq8 = true},
                                          39}};
    round_trip(&m, &out);
    const struct msg_pull_req *p = &out.u.pull_req;
    assert_int_equal(p->op, MSG_PULL_START);
    assert_memory_equal(p->source.p, "tcp://127.0.0.1:7400", 20);
    assert_int_equal(p->source.len, 20);
    assert_true(p->rate == 64u << 20 && p->until_lsn == 0);
    assert_int_equal(p->create.cfg.dim, 128);
    assert_int_equal(p->create.cfg.ef_construction, 200);
    assert_true(p->create.cfg.sq8 && p->create.incarnation == 39);
    assert_true(out.addr.part == 7 && out.addr.epoch == 41);
    msg_free(&out);
    m.u.pull_req = (struct msg_pull_req){.op = MSG_PULL_FINISH, .until_lsn = UINT64_MAX};
    round_trip(&m, &out);
    assert_int_equal(out.u.pull_req.op, MSG_PULL_FINISH);
    assert_true(out.u.pull_req.until_lsn == UINT64_MAX);
    assert_int_equal(out.u.pull_req.source.len, 0);
    msg_free(&out);

    for (uint32_t st = MSG_PULL_NONE; st <= MSG_PULL_FAILED; st++) {
        struct msg r = {.type = MSG_REPLICA_PULL, .reply = true, .req_id = 6};
        r.u.pull_rep = (struct msg_pull_rep){
            st, 100 * st, 1ULL << 36, 17, 19, st == MSG_PULL_FAILED ? S("source gone") : S("")};
        round_trip(&r, &out);
        const struct msg_pull_rep *q = &out.u.pull_rep;
        assert_int_equal(q->state, st);
        assert_true(q->bytes_done == 100 * st && q->bytes_total == 1ULL << 36);
        assert_true(q->applied_lsn == 17 && q->source_lsn == 19);
        assert_int_equal(q->error.len, st == MSG_PULL_FAILED ? 11 : 0);
        msg_free(&out);
    }

    m = (struct msg){.type = MSG_REPLICA_FENCE, .req_id = 8};
    m.addr = (struct msg_addr){S("docs"), 1, 99, 0};
    m.u.fence_req.op = MSG_FENCE_ON;
    round_trip(&m, &out);
    assert_int_equal(out.u.fence_req.op, MSG_FENCE_ON);
    msg_free(&out);
    struct msg r = {.type = MSG_REPLICA_FENCE, .reply = true, .req_id = 8};
    r.u.write_rep = (struct msg_write_rep){12345, 0, NULL, 0};
    round_trip(&r, &out);
    assert_true(out.u.write_rep.lsn == 12345);
    msg_free(&out);

    static const uint8_t args[] = {0x81, 0xa4, 'n', 'o', 'd', 'e', 0xa2, 'n', '3'}; /* {node:n3} */
    m = (struct msg){.type = MSG_ADMIN, .req_id = 9};
    m.u.admin_req = (struct msg_admin_req){S("node_drain"), {args, sizeof args}};
    round_trip(&m, &out);
    assert_memory_equal(out.u.admin_req.op.p, "node_drain", 10);
    assert_int_equal(out.u.admin_req.args.len, sizeof args);
    assert_memory_equal(out.u.admin_req.args.p, args, sizeof args);
    msg_free(&out);
    m.u.admin_req = (struct msg_admin_req){S("rebalance_status"), {NULL, 0}};
    round_trip(&m, &out);
    assert_null(out.u.admin_req.args.p);
    msg_free(&out);
    /* args that are not exactly one msgpack value are the caller's bug */
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    m.u.admin_req.args = (struct msg_bytes){args, sizeof args - 1};
    assert_int_equal(msg_encode(&m, &b, err), DV_EINVAL);
    r = (struct msg){.type = MSG_ADMIN, .reply = true, .req_id = 9};
    r.u.cluster_rep.status = (struct msg_bytes){args, sizeof args};
    round_trip(&r, &out);
    assert_memory_equal(out.u.cluster_rep.status.p, args, sizeof args);
    msg_free(&out);
    buf_free(&b);
}

/* The limits on a query's k and ef (proto_limits.h), checked where a search enters. */
static void check_query_limits(void **state)
{
    (void)state;
    char emsg[DV_ERRMSG_SIZE];
    struct msg_query q = {.k = PROTO_MAX_K, .ef = PROTO_MAX_EF};
    assert_int_equal(msg_query_check(&q, 0, emsg), DV_OK);
    q.ef = 0; /* the collection's ef_search */
    assert_int_equal(msg_query_check(&q, 0, emsg), DV_OK);
    q.k = 0;
    assert_int_equal(msg_query_check(&q, 3, emsg), DV_ERANGE);
    assert_string_equal(emsg, "query 3: k must be 1 to 100000, got 0");
    q.k = PROTO_MAX_K + 1;
    assert_int_equal(msg_query_check(&q, 0, emsg), DV_ERANGE);
    assert_string_equal(emsg, "query 0: k must be 1 to 100000, got 100001");
    q.k = 10;
    q.ef = 200000;
    assert_int_equal(msg_query_check(&q, 1, emsg), DV_ERANGE);
    assert_string_equal(emsg, "query 1: ef must be 100000 or smaller, got 200000");
}

/* Replication: the term in every address, the secondaries of a replicated write, the failed
 * secondaries of its reply, a replicate request; bad failure codes and too many secondaries. */
static void check_replication(void **state)
{
    (void)state;
    assert_string_equal(msg_type_name(MSG_REPLICATE), "replicate");
    assert_true(msg_type_addressed(MSG_REPLICATE));
    assert_true(msg_type_replicated(MSG_UPSERT) && msg_type_replicated(MSG_PAYLOAD_INDEX));
    assert_false(msg_type_replicated(MSG_REPLICATE) || msg_type_replicated(MSG_P_UPSERT) ||
                 msg_type_replicated(MSG_GET));

    struct pid ids[2] = {pid_num(1), pid_num(2)};
    struct msg_peer peers[2] = {{S("node-2"), S("tcp://127.0.0.1:7402")},
                                {S("node-3"), S("tcp://127.0.0.1:7403")}};
    struct msg m = {.type = MSG_DELETE, .req_id = 3}, out;
    m.addr = (struct msg_addr){S("docs"), 4, 17, 6};
    m.u.delete_req = (struct msg_ids_req){ids, 2};
    m.secondaries = peers;
    m.n_secondaries = 2;
    round_trip(&m, &out);
    assert_true(out.addr.epoch == 17 && out.addr.term == 6);
    assert_int_equal(out.n_secondaries, 2);
    assert_memory_equal(out.secondaries[1].node_id.p, "node-3", 6);
    assert_memory_equal(out.secondaries[1].url.p, "tcp://127.0.0.1:7403", 20);
    msg_free(&out);
    m.n_secondaries = 0;
    round_trip(&m, &out);
    assert_int_equal(out.n_secondaries, 0);
    msg_free(&out);

    struct msg_peer_fail fails[1] = {{S("node-3"), DV_ETIMEDOUT, S("no answer in 1000 ms")}};
    struct msg r = {.type = MSG_UPSERT, .reply = true, .req_id = 3};
    r.u.write_rep = (struct msg_write_rep){9, 2, fails, 1};
    round_trip(&r, &out);
    assert_int_equal(out.u.write_rep.n_failed, 1);
    assert_int_equal(out.u.write_rep.failed[0].code, DV_ETIMEDOUT);
    assert_memory_equal(out.u.write_rep.failed[0].text.p, "no answer in 1000 ms", 20);
    msg_free(&out);
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    fails[0].code = 7; /* not a DV_* code */
    assert_int_equal(msg_encode(&r, &b, err), DV_EINVAL);

    static const uint8_t body[] = {0x91, 0x01};
    struct msg_wal_rec recs[2] = {{41, 2, {body, sizeof body}}, {42, 1, {NULL, 0}}};
    m = (struct msg){.type = MSG_REPLICATE, .req_id = 4};
    m.addr = (struct msg_addr){S("docs"), 4, 17, 7};
    m.u.replicate_req = (struct msg_replicate_req){recs, 2, 40};
    round_trip(&m, &out);
    assert_true(out.u.replicate_req.term_start == 40);
    assert_int_equal(out.u.replicate_req.n, 2);
    assert_true(out.u.replicate_req.recs[1].lsn == 42 && out.u.replicate_req.recs[0].type == 2);
    assert_memory_equal(out.u.replicate_req.recs[0].body.p, body, sizeof body);
    assert_true(out.addr.term == 7);
    msg_free(&out);
    m = (struct msg){.type = MSG_REPLICA_DIGEST, .req_id = 5};
    m.addr = (struct msg_addr){S("docs"), 4, 17, 0};
    round_trip(&m, &out);
    assert_int_equal(out.addr.part, 4);
    msg_free(&out);
    r = (struct msg){.type = MSG_REPLICA_DIGEST, .reply = true, .req_id = 5};
    r.u.digest_rep = (struct msg_digest_rep){UINT64_MAX, 12, 99};
    round_trip(&r, &out);
    assert_true(out.u.digest_rep.digest == UINT64_MAX && out.u.digest_rep.points == 12 &&
                out.u.digest_rep.lsn == 99);
    msg_free(&out);
    r = (struct msg){.type = MSG_REPLICATE, .reply = true, .req_id = 4};
    r.u.write_rep = (struct msg_write_rep){42, 0, NULL, 0};
    round_trip(&r, &out);
    assert_true(out.u.write_rep.lsn == 42);
    msg_free(&out);

    /* a write naming more secondaries than a partition can have replicas */
    buf_reset(&b);
    header(&b, 1, MSG_DELETE);
    addressed_body(&b, 6);
    mpw_array(&b, 0);
    mpw_array(&b, PROTO_MAX_REPLICAS + 1);
    for (int i = 0; i <= PROTO_MAX_REPLICAS; i++) {
        mpw_array(&b, 2);
        mpw_str(&b, "n", 1);
        mpw_str(&b, "u", 1);
    }
    expect_eproto(&b, "secondaries");
    buf_free(&b);
}

/* Named vectors: points' in upserts and vector updates, hits', queries', a collection's
 * definitions in coll_create and replica create, delete vectors. */
static void check_named_vectors(void **state)
{
    struct pid ids[2] = {test_id(0), test_id(1)};
    float dense[4] = {1, 2, 3, 4}, sw[3] = {0.5f, 1.5f, 2.5f}, rows[6] = {1, 0, 0, 1, 1, 1};
    uint32_t terms[3] = {7, 1, 900000};
    struct msg_nvec a[2] = {{S("text"), 4, 4, dense, NULL}, {S("bm25"), 3, 3, sw, terms}};
    struct msg_nvec b[1] = {{S("colbert"), 3, 6, rows, NULL}};
    struct msg_nvecs named[2] = {{a, 2}, {b, 1}};
    struct msg_bytes pl[2] = {{NULL, 0}, {NULL, 0}};
    const int types[] = {MSG_UPSERT, MSG_P_UPSERT, MSG_UPDATE_VECTORS, MSG_P_UPDATE_VECTORS};
    for (int t = 0; t < 4; t++) {
        struct msg m = {.type = types[t], .req_id = 9}, out;
        m.addr = (struct msg_addr){S("c"), 1, 2, 3};
        m.u.upsert_req = (struct msg_upsert_req){ids, NULL, pl, 2, 0, named};
        round_trip(&m, &out);
        const struct msg_upsert_req *u = &out.u.upsert_req;
        assert_non_null(u->named);
        assert_int_equal(u->named[0].n, 2);
        assert_int_equal(u->named[0].v[1].n, 3);
        assert_int_equal(u->named[0].v[1].idx[2], 900000);
        assert_true(u->named[0].v[1].v[1] == 1.5f);
        assert_null(u->named[0].v[0].idx);
        assert_int_equal(u->named[1].v[0].nv, 6);
        msg_free(&out);
    }
    /* delete vectors */
    const int dtypes[] = {MSG_DELETE_VECTORS, MSG_P_DELETE_VECTORS};
    struct msg_str names[2] = {S("text"), S("bm25")};
    for (int t = 0; t < 2; t++) {
        struct msg m = {.type = dtypes[t], .req_id = 9}, out;
        m.addr = (struct msg_addr){S("c"), 1, 2, 3};
        m.u.delvec_req = (struct msg_delvec_req){ids, 2, names, 2};
        round_trip(&m, &out);
        assert_int_equal(out.u.delvec_req.n_names, 2);
        assert_int_equal(out.u.delvec_req.names[1].len, 4);
        msg_free(&out);
    }
    /* a query on a named sparse vector with IDF weights, and one on a multivector */
    uint64_t df[3] = {1, 2, 3};
    struct msg_str want[1] = {S("text")};
    struct msg_query qs[2] = {
        {sw, 3, 10, 0, {NULL, 0}, false, true, S("bm25"), terms, 0, df, 40, want, 1},
        {rows, 6, 5, 0, {NULL, 0}, true, false, S("colbert"), NULL, 3, NULL, 0, NULL, 0}};
    struct msg_target parts[1] = {{0, 7}};
    struct msg m = {.type = MSG_SEARCH, .req_id = 4}, out;
    m.addr = (struct msg_addr){S("c"), 0, 0, 0};
    m.u.search_req = (struct msg_search_req){parts, 1, qs, 2};
    round_trip(&m, &out);
    const struct msg_query *q = out.u.search_req.queries;
    assert_int_equal(q[0].using.len, 4);
    assert_int_equal(q[0].idx[0], 7);
    assert_true(q[0].idf_df[2] == 3 && q[0].idf_docs == 40);
    assert_int_equal(q[0].n_vec_names, 1);
    assert_int_equal(q[1].rows, 3);
    assert_null(q[1].idx);
    msg_free(&out);
    /* hits with named vectors */
    struct msg_hit hits[2] = {{ids[0], 0.5f, NULL, 0, {NULL, 0}, {a, 2}},
                              {ids[1], 0.25f, NULL, 0, {NULL, 0}, {NULL, 0}}};
    struct msg r = {.type = MSG_GET, .reply = true, .req_id = 5};
    r.u.get_rep = (struct msg_hits){hits, 2};
    round_trip(&r, &out);
    assert_int_equal(out.u.get_rep.hits[0].named.n, 2);
    assert_null(out.u.get_rep.hits[1].named.v);
    msg_free(&out);
    /* a payload index with params (its field_schema object) */
    const uint8_t schema[] = {0x81, 0xa4, 't', 'y', 'p', 'e', 0xa4, 't', 'e', 'x', 't'};
    struct msg ix = {.type = MSG_P_INDEX, .req_id = 8};
    ix.addr.coll = S("docs");
    ix.u.index_req =
        (struct msg_index_req){MSG_INDEX_CREATE, 5, S("title"), {schema, sizeof schema}};
    round_trip(&ix, &out);
    assert_int_equal(out.u.index_req.params.len, sizeof schema);
    assert_memory_equal(out.u.index_req.params.p, schema, sizeof schema);
    msg_free(&out);
    ix.type = MSG_PAYLOAD_INDEX;
    ix.addr = (struct msg_addr){S("docs"), 1, 2, 3};
    round_trip(&ix, &out);
    assert_int_equal(out.u.index_req.kind, 5);
    assert_int_equal(out.u.index_req.params.len, sizeof schema);
    msg_free(&out);
    /* sparse_stats: a request and its answer, one partition failed */
    struct msg_target st[2] = {{0, 7}, {3, 7}};
    struct msg sq = {.type = MSG_SPARSE_STATS, .req_id = 11};
    sq.addr.coll = S("docs");
    sq.u.sstats_req = (struct msg_sstats_req){st, 2, S("bm25"), terms, 3};
    round_trip(&sq, &out);
    assert_int_equal(out.u.sstats_req.n_parts, 2);
    assert_int_equal(out.u.sstats_req.n_terms, 3);
    assert_int_equal(out.u.sstats_req.terms[2], 900000);
    assert_int_equal(out.u.sstats_req.using.len, 4);
    msg_free(&out);
    uint64_t counts[3] = {5, 0, 9};
    struct msg_sstats_part spp[2] = {{0, {0, {NULL, 0}, 0}, 20, counts, 3},
                                     {3, {DV_ESTALE, S("stale map"), 9}, 0, NULL, 0}};
    struct msg sr = {.type = MSG_SPARSE_STATS, .reply = true, .req_id = 11};
    sr.u.sstats_rep = (struct msg_sstats_rep){spp, 2};
    round_trip(&sr, &out);
    assert_int_equal(out.u.sstats_rep.n_parts, 2);
    assert_true(out.u.sstats_rep.parts[0].docs == 20 && out.u.sstats_rep.parts[0].df[2] == 9);
    assert_int_equal(out.u.sstats_rep.parts[1].err.code, DV_ESTALE);
    assert_int_equal(out.u.sstats_rep.parts[1].n, 0);
    msg_free(&out);
    /* a collection's named vectors */
    struct msg_vspace sp[2] = {{"text", 0, 384, 2, 16, 100, true, false},
                               {"bm25", 1, 0, 0, 0, 0, false, true}};
    struct msg c = {.type = MSG_COLL_CREATE, .req_id = 6};
    c.addr.coll = S("docs");
    c.u.coll_cfg = (struct msg_coll_cfg){.partitions = 2, .replication = 1, .n_spaces = 2};
    memcpy(c.u.coll_cfg.spaces, sp, sizeof sp);
    round_trip(&c, &out);
    assert_int_equal(out.u.coll_cfg.n_spaces, 2);
    assert_int_equal(out.u.coll_cfg.spaces[0].dim, 384);
    assert_true(out.u.coll_cfg.spaces[1].idf);
    assert_string_equal(out.u.coll_cfg.spaces[1].name, "bm25");
    msg_free(&out);
    c = (struct msg){.type = MSG_REPLICA_CREATE, .req_id = 7};
    c.addr = (struct msg_addr){S("docs"), 1, 2, 0};
    c.u.create_req.cfg = (struct msg_coll_cfg){.n_spaces = 2};
    memcpy(c.u.create_req.cfg.spaces, sp, sizeof sp);
    c.u.create_req.incarnation = 5;
    round_trip(&c, &out);
    assert_int_equal(out.u.create_req.cfg.n_spaces, 2);
    assert_int_equal(out.u.create_req.incarnation, 5);
    msg_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_move_messages),
        cmocka_unit_test(check_simple),
        cmocka_unit_test(check_hello_list_info_stats),
        cmocka_unit_test(check_upsert),
        cmocka_unit_test(check_named_vectors),
        cmocka_unit_test(check_writes_reads),
        cmocka_unit_test(check_search),
        cmocka_unit_test(check_errors),
        cmocka_unit_test(check_malformed),
        cmocka_unit_test(check_create_incarnation),
        cmocka_unit_test(check_read_consistency),
        cmocka_unit_test(check_too_big_encode),
        cmocka_unit_test(check_new_types),
        cmocka_unit_test(check_snapshot),
        cmocka_unit_test(check_wal_read),
        cmocka_unit_test(check_payload_index),
        cmocka_unit_test(check_new_malformed),
        cmocka_unit_test(check_type_table),
        cmocka_unit_test(check_facet_order),
        cmocka_unit_test(check_coll_admin),
        cmocka_unit_test(check_route),
        cmocka_unit_test(check_csearch),
        cmocka_unit_test(check_cluster_node_report),
        cmocka_unit_test(check_client_malformed),
        cmocka_unit_test(check_coord_membership),
        cmocka_unit_test(check_query_limits),
        cmocka_unit_test(check_replication),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    buf_free(&last);
    return failed;
}
