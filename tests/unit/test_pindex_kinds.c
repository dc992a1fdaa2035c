/* test_pindex_kinds.c - the payload index kinds of issue 19 (float, bool, geo, text, datetime,
 * uuid) and their params: add/remove, candidates that hold every brute-force match on random
 * payloads, planner exactness, facet counts and order_by order against brute force, params
 * encode/decode and field_schema errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "buf.h"
#include "dtime.h"
#include "err.h"
#include "filter.h"
#include "jsonmp.h"
#include "mpk.h"
#include "pid.h"
#include "pindex.h"

static void enc(struct buf *b, const char *json)
{
    buf_reset(b);
    assert_int_equal(jsonmp_from_text(json, strlen(json), b, NULL), DV_OK);
}

static unsigned seed_of(void)
{
    const char *e = getenv("DVEC_TEST_SEED");
    unsigned seed = e ? (unsigned)strtoul(e, NULL, 10) : 1919;
    print_message("# seed %u (DVEC_TEST_SEED=%u repeats this run)\n", seed, seed);
    return seed;
}

static void expect_list(struct pindex_list l, const uint32_t *want, size_t n)
{
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(l.slots[i], want[i]);
}

static struct pindex *mk(const char *key, const char *schema)
{
    struct buf b = BUF_INIT;
    struct pindex_params p;
    char err[DV_ERRMSG_SIZE] = "";
    struct pindex *ix = NULL;
    enc(&b, schema);
    int rc = pindex_params_parse(b.data, b.len, &p, err);
    if (rc != DV_OK)
        print_error("%s: %s\n", schema, err);
    assert_int_equal(rc, DV_OK);
    assert_int_equal(pindex_create_params(key, &p, &ix), DV_OK);
    buf_free(&b);
    return ix;
}

static void add(struct pindex *ix, uint32_t slot, const char *json)
{
    struct buf b = BUF_INIT;
    enc(&b, json);
    assert_int_equal(pindex_add(ix, slot, b.data, b.len), DV_OK);
    buf_free(&b);
}

static void rm(struct pindex *ix, uint32_t slot, const char *json)
{
    struct buf b = BUF_INIT;
    enc(&b, json);
    pindex_remove(ix, slot, b.data, b.len);
    buf_free(&b);
}

static void test_kinds_add_remove(void **state)
{
    /* float: every number, -0.0 as 0.0, NaN never (JSON has none; floats via ints too). */
    struct pindex *ix = mk("f", "\"float\"");
    add(ix, 1, "{\"f\":1.5}");
    add(ix, 2, "{\"f\":[1,-0.0,\"1.5\",true]}");
    add(ix, 3, "{\"f\":1.8446744073709552e19}");
    expect_list(pindex_get_int(ix, pindex_float_key(1.5)), (const uint32_t[]){1}, 1);
    expect_list(pindex_get_int(ix, pindex_float_key(1)), (const uint32_t[]){2}, 1);
    expect_list(pindex_get_int(ix, pindex_float_key(0.0)), (const uint32_t[]){2}, 1);
    expect_list(pindex_get_int(ix, pindex_float_key(1.8446744073709552e19)), (const uint32_t[]){3},
                1);
    assert_int_equal(pindex_points(ix), 3);
    assert_true(pindex_float_key(-2.0) < pindex_float_key(-1.0));
    assert_true(pindex_float_key(-1e-300) < pindex_float_key(0));
    assert_true(pindex_float_key(1e300) < pindex_float_key(1.0 / 0.0));
    assert_true(pindex_float_of_key(pindex_float_key(-3.25)) == -3.25);
    rm(ix, 2, "{\"f\":[1,-0.0,\"1.5\",true]}");
    assert_int_equal(pindex_get_int(ix, pindex_float_key(1)).n, 0);
    assert_int_equal(pindex_points(ix), 2);
    pindex_free(ix);

    /* bool */
    ix = mk("b", "{\"type\":\"bool\"}");
    add(ix, 1, "{\"b\":true}");
    add(ix, 2, "{\"b\":[false,true,1,\"true\"]}");
    add(ix, 3, "{\"b\":0}");
    expect_list(pindex_get_int(ix, 1), (const uint32_t[]){1, 2}, 2);
    expect_list(pindex_get_int(ix, 0), (const uint32_t[]){2}, 1);
    assert_int_equal(pindex_points(ix), 2);
    rm(ix, 1, "{\"b\":true}");
    expect_list(pindex_get_int(ix, 1), (const uint32_t[]){2}, 1);
    pindex_free(ix);

    /* datetime: instants, whatever the offset. */
    ix = mk("t", "\"datetime\"");
    add(ix, 1, "{\"t\":\"2023-02-08T10:49:00Z\"}");
    add(ix, 2, "{\"t\":[\"2023-02-08T11:49:00+01:00\",\"soon\",1675853340]}");
    expect_list(pindex_get_int(ix, 1675853340000000LL), (const uint32_t[]){1, 2}, 2);
    assert_int_equal(pindex_values(ix), 1);
    pindex_free(ix);

    /* uuid: any case, with or without dashes, is one value. */
    ix = mk("u", "\"uuid\"");
    add(ix, 1, "{\"u\":\"550e8400-e29b-41d4-a716-446655440000\"}");
    add(ix, 2, "{\"u\":\"550E8400E29B41D4A716446655440000\"}");
    add(ix, 3, "{\"u\":\"not-a-uuid\"}");
    struct pid id;
    uint8_t raw[16];
    assert_int_equal(pid_parse_uuid("550e8400-e29b-41d4-a716-446655440000", 36, &id), DV_OK);
    pid_uuid_bytes(&id, raw);
    expect_list(pindex_get_str(ix, (const char *)raw, 16), (const uint32_t[]){1, 2}, 2);
    assert_int_equal(pindex_points(ix), 2);
    pindex_free(ix);

    /* text: folded tokens; prefix indexes prefixes within the length limits. */
    ix = mk("d", "{\"type\":\"text\",\"tokenizer\":\"word\",\"min_token_len\":2}");
    add(ix, 1, "{\"d\":\"Hello, wide World! a\"}");
    expect_list(pindex_get_str(ix, "hello", 5), (const uint32_t[]){1}, 1);
    expect_list(pindex_get_str(ix, "world", 5), (const uint32_t[]){1}, 1);
    assert_int_equal(pindex_get_str(ix, "a", 1).n, 0); /* shorter than min_token_len */
    assert_int_equal(pindex_values(ix), 3);
    rm(ix, 1, "{\"d\":\"Hello, wide World! a\"}");
    assert_int_equal(pindex_values(ix), 0);
    /* A long token (folded in the index's scratch buffer). */
    {
        char t[700], upper[301], lower[301];
        memset(upper, 'X', 300);
        memset(lower, 'x', 300);
        upper[300] = lower[300] = '\0';
        snprintf(t, sizeof t, "{\"d\":\"ab %s\"}", upper);
        add(ix, 7, t);
        expect_list(pindex_get_str(ix, lower, 300), (const uint32_t[]){7}, 1);
        rm(ix, 7, t);
        assert_int_equal(pindex_values(ix), 0);
        assert_int_equal(pindex_points(ix), 0);
    }
    pindex_free(ix);
    ix = mk("d", "{\"type\":\"text\",\"tokenizer\":\"prefix\",\"min_token_len\":2,"
                 "\"max_token_len\":3,\"lowercase\":false}");
    add(ix, 1, "{\"d\":\"Apple\"}");
    expect_list(pindex_get_str(ix, "Ap", 2), (const uint32_t[]){1}, 1);
    expect_list(pindex_get_str(ix, "App", 3), (const uint32_t[]){1}, 1);
    assert_int_equal(pindex_get_str(ix, "Appl", 4).n, 0);
    assert_int_equal(pindex_get_str(ix, "ap", 2).n, 0);
    pindex_free(ix);

    /* geo: a cell per level; non-points are skipped. */
    ix = mk("g", "\"geo\"");
    add(ix, 1, "{\"g\":{\"lon\":13.4,\"lat\":52.5}}");
    add(ix, 2, "{\"g\":[{\"lon\":-180,\"lat\":-90},{\"lon\":1},{\"lat\":1,\"lon\":200}]}");
    assert_int_equal(pindex_points(ix), 2);
    assert_int_equal(pindex_get_int(ix, 0).n, 2); /* level 0: one cell */
    rm(ix, 2, "{\"g\":[{\"lon\":-180,\"lat\":-90},{\"lon\":1},{\"lat\":1,\"lon\":200}]}");
    assert_int_equal(pindex_get_int(ix, 0).n, 1);
    pindex_free(ix);
}

/* ---- Random payloads and filters over every kind ---- */

#define NP 400

static const char *const words[] = {"red", "green", "blue", "big", "small", "fast"};
static const char *const uuids[] = {
    "550e8400-e29b-41d4-a716-446655440000", "550E8400-E29B-41D4-A716-446655440000",
    "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "6ba7b8109dad11d180b400c04fd430c8", "no-uuid"};
static const char *const dts[] = {"2023-02-08T10:00:00Z",
                                  "2023-02-08T11:00:00+01:00",
                                  "2023-02-08T10:00:00.5Z",
                                  "2023-02-08",
                                  "2023-02-09 00:00:00-02:00",
                                  "2023-02-08T09:59:59.999999Z",
                                  "garbage"};

static int rnd(int n)
{
    return rand() % n;
}

static int put_point(char *o, size_t cap)
{
    return snprintf(o, cap, "{\"lon\":%d.%d,\"lat\":%d.%d}", rnd(40) - 20, rnd(10), rnd(40) - 20,
                    rnd(10));
}

static void rand_payload(struct buf *b)
{
    char t[1024];
    size_t cap = sizeof t;
    int n = snprintf(t, cap, "{\"k\":\"%s\"", words[rnd(6)]);
    if (rnd(3))
        n += snprintf(t + n, cap - n, ",\"n\":%d", rnd(40) - 20);
    if (rnd(3))
        n += snprintf(t + n, cap - n, ",\"f\":%s",
                      rnd(4) == 0   ? "[1, -0.0, 2.5]"
                      : rnd(3) == 0 ? "1.8446744073709552e19"
                                    : (rnd(2) ? "-3.25" : "7"));
    if (rnd(4))
        n += snprintf(t + n, cap - n, ",\"b\":%s",
                      rnd(3) == 0 ? "[true,false]"
                      : rnd(2)    ? "true"
                                  : "false");
    if (rnd(4))
        n += snprintf(t + n, cap - n, ",\"t\":\"%s\"", dts[rnd(7)]);
    if (rnd(4))
        n += snprintf(t + n, cap - n, ",\"u\":\"%s\"", uuids[rnd(5)]);
    if (rnd(5)) {
        n += snprintf(t + n, cap - n, ",\"d\":\"");
        for (int i = rnd(5); i >= 0; i--)
            n += snprintf(t + n, cap - n, "%s%s", words[rnd(6)], i ? (rnd(2) ? " " : ", ") : "");
        n += snprintf(t + n, cap - n, "\"");
    }
    if (rnd(5)) {
        n += snprintf(t + n, cap - n, ",\"g\":");
        if (rnd(4) == 0) {
            n += snprintf(t + n, cap - n, "[");
            n += put_point(t + n, cap - n);
            n += snprintf(t + n, cap - n, ",");
            n += put_point(t + n, cap - n);
            n += snprintf(t + n, cap - n, "]");
        } else {
            n += put_point(t + n, cap - n);
        }
    }
    snprintf(t + n, cap - n, "}");
    enc(b, t);
}

static int rand_cond(char *o, size_t cap, int depth)
{
    switch (rnd(depth > 0 ? 15 : 14)) {
    case 0:
        return snprintf(o, cap, "{\"key\":\"k\",\"match\":{\"any\":[\"%s\",\"%s\"]}}",
                        words[rnd(6)], words[rnd(6)]);
    case 1:
        return snprintf(o, cap, "{\"key\":\"n\",\"match\":{\"value\":%d}}", rnd(40) - 20);
    case 2:
        return snprintf(o, cap, "{\"key\":\"n\",\"range\":{\"gte\":%d,\"lt\":%d.5}}", rnd(40) - 20,
                        rnd(40) - 10);
    case 3: {
        static const char *const fb[] = {
            "-0.0", "0", "1", "2.5", "-3.25", "7", "1e30", "1.8446744073709552e19", "-1e300"};
        return snprintf(o, cap, "{\"key\":\"f\",\"range\":{\"%s\":%s,\"%s\":%s}}",
                        rnd(2) ? "gt" : "gte", fb[rnd(9)], rnd(2) ? "lt" : "lte", fb[rnd(9)]);
    }
    case 4:
        return snprintf(o, cap, "{\"key\":\"b\",\"match\":{\"value\":%s}}",
                        rnd(2) ? "true" : "false");
    case 5:
        return snprintf(o, cap, "{\"key\":\"t\",\"range\":{\"%s\":\"%s\",\"%s\":\"%s\"}}",
                        rnd(2) ? "gt" : "gte", dts[rnd(6)], rnd(2) ? "lt" : "lte", dts[rnd(6)]);
    case 6:
        return snprintf(o, cap, "{\"key\":\"u\",\"match\":{\"value\":\"%s\"}}", uuids[rnd(5)]);
    case 7:
        return snprintf(o, cap, "{\"key\":\"u\",\"match\":{\"any\":[\"%s\",\"%s\"]}}",
                        uuids[rnd(4)], uuids[rnd(4)]);
    case 8:
        return snprintf(o, cap, "{\"key\":\"d\",\"match\":{\"%s\":\"%s %s\"}}",
                        rnd(2) ? "text" : "phrase", words[rnd(6)], rnd(2) ? words[rnd(6)] : "");
    case 9:
        return snprintf(o, cap,
                        "{\"key\":\"g\",\"geo_radius\":{\"center\":{\"lon\":%d,\"lat\":%d},"
                        "\"radius\":%d}}",
                        rnd(40) - 20, rnd(40) - 20, rnd(1500000));
    case 10: {
        int lat = rnd(40) - 20, lon = rnd(40) - 20;
        return snprintf(o, cap,
                        "{\"key\":\"g\",\"geo_bounding_box\":{\"top_left\":{\"lon\":%d,\"lat\":%d},"
                        "\"bottom_right\":{\"lon\":%d,\"lat\":%d}}}",
                        lon, lat + rnd(20), lon + rnd(20), lat);
    }
    case 11: {
        int x = rnd(30) - 20, y = rnd(30) - 20, w = 1 + rnd(15);
        return snprintf(o, cap,
                        "{\"key\":\"g\",\"geo_polygon\":{\"exterior\":{\"points\":["
                        "{\"lon\":%d,\"lat\":%d},{\"lon\":%d,\"lat\":%d},{\"lon\":%d,\"lat\":%d},"
                        "{\"lon\":%d,\"lat\":%d}]},\"interiors\":[{\"points\":["
                        "{\"lon\":%d,\"lat\":%d},{\"lon\":%d,\"lat\":%d},{\"lon\":%d,\"lat\":%d},"
                        "{\"lon\":%d,\"lat\":%d}]}]}}",
                        x, y, x + w, y, x, y + w, x, y, x, y, x + w / 2, y, x, y + w / 2, x, y);
    }
    case 12:
        return snprintf(o, cap, "{\"key\":\"k\",\"match\":{\"value\":\"%s\"}}", words[rnd(6)]);
    case 13:
        return snprintf(o, cap, "{\"key\":\"n\",\"match\":{\"any\":[%d,%d]}}", rnd(40) - 20,
                        rnd(40) - 20);
    default: {
        int n = snprintf(o, cap, "{\"%s\":[", rnd(2) ? "must" : "should");
        for (int i = 0, k = 1 + rnd(2); i < k; i++) {
            if (i)
                n += snprintf(o + n, cap - n, ",");
            n += rand_cond(o + n, cap - n, depth - 1);
        }
        return n + snprintf(o + n, cap - n, "]}");
    }
    }
}

static void rand_filter(struct buf *b)
{
    char t[4096];
    int n = snprintf(t, sizeof t, "{");
    const char *lists[] = {"must", "should", "must_not"};
    bool first = true;
    for (int l = 0; l < 3; l++) {
        if (l > 0 && rnd(3) == 0)
            continue;
        n += snprintf(t + n, sizeof t - n, "%s\"%s\":[", first ? "" : ",", lists[l]);
        first = false;
        for (int i = 0, k = rnd(2) + (l == 0); i < k; i++) {
            if (i)
                n += snprintf(t + n, sizeof t - n, ",");
            n += rand_cond(t + n, sizeof t - n, 1);
        }
        n += snprintf(t + n, sizeof t - n, "]");
    }
    snprintf(t + n, sizeof t - n, "}");
    enc(b, t);
}

#define NIX 9

static void test_planner_kinds_random(void **state)
{
    srand(seed_of());
    static struct buf payload[NP];
    struct pindex *ix[NIX] = {
        mk("k", "\"keyword\""),
        mk("n", "{\"type\":\"integer\",\"lookup\":true,\"range\":true}"),
        mk("f", "\"float\""),
        mk("b", "\"bool\""),
        mk("t", "\"datetime\""),
        mk("u", "\"uuid\""),
        mk("d", "{\"type\":\"text\",\"tokenizer\":\"word\"}"),
        mk("g", "\"geo\""),
        mk("n", "{\"type\":\"integer\",\"lookup\":false,\"range\":true}"),
    };
    struct buf b = BUF_INIT;
    for (uint32_t s = 0; s < NP; s++) {
        rand_payload(&payload[s]);
        for (int i = 0; i < NIX; i++)
            assert_int_equal(pindex_add(ix[i], s, payload[s].data, payload[s].len), DV_OK);
    }
    int served = 0, exact = 0;
    for (int iter = 0; iter < 3000; iter++) {
        for (int k = 0; k < 2; k++) {
            uint32_t s = (uint32_t)rnd(NP);
            for (int i = 0; i < NIX; i++)
                pindex_remove(ix[i], s, payload[s].data, payload[s].len);
            rand_payload(&payload[s]);
            for (int i = 0; i < NIX; i++)
                assert_int_equal(pindex_add(ix[i], s, payload[s].data, payload[s].len), DV_OK);
        }
        rand_filter(&b);
        struct filter *f;
        char err[DV_ERRMSG_SIZE] = "";
        int rc = filter_compile(b.data, b.len, &f, err);
        if (rc != DV_OK) {
            char *t = NULL;
            jsonmp_to_text(b.data, b.len, &t, NULL);
            print_error("%s: %s\n", t, err);
            free(t);
        }
        assert_int_equal(rc, DV_OK);
        assert_int_equal(filter_bind(f, ix, NIX), DV_OK);
        static bool want[NP];
        uint64_t count = 0;
        for (uint32_t s = 0; s < NP; s++) {
            struct pid id = pid_num(s);
            want[s] = filter_match(f, &id, payload[s].data, payload[s].len);
            count += want[s];
        }
        bool ok;
        uint64_t est = filter_estimate(f, ix, NIX, NP, &ok);
        uint32_t *slots = NULL;
        size_t n = 0;
        rc = filter_candidates(f, ix, NIX, &slots, &n);
        if (rc == DV_EUNSUPPORTED) {
            assert_false(ok);
            assert_false(filter_index_exact(f, ix, NIX));
        } else {
            assert_int_equal(rc, DV_OK);
            assert_true(ok);
            assert_true(est >= count);
            served++;
            size_t j = 0;
            for (size_t i = 1; i < n; i++)
                assert_true(slots[i - 1] < slots[i]);
            for (uint32_t s = 0; s < NP; s++) {
                while (j < n && slots[j] < s)
                    j++;
                bool in = j < n && slots[j] == s;
                if (want[s] && !in) {
                    char *t = NULL;
                    jsonmp_to_text(b.data, b.len, &t, NULL);
                    char *pt = NULL;
                    jsonmp_to_text(payload[s].data, payload[s].len, &pt, NULL);
                    print_error("filter %s\npayload %s (slot %u) matches, not a candidate\n", t, pt,
                                s);
                    free(t);
                    free(pt);
                }
                assert_true(!want[s] || in);
            }
            if (filter_index_exact(f, ix, NIX)) {
                exact++;
                assert_int_equal(n, count);
            }
        }
        free(slots);
        filter_free(f);
    }
    print_message("# %d of 3000 filters served by indexes, %d exact\n", served, exact);
    assert_true(served > 800);
    assert_true(exact > 50);
    for (uint32_t s = 0; s < NP; s++)
        buf_free(&payload[s]);
    for (int i = 0; i < NIX; i++)
        pindex_free(ix[i]);
    buf_free(&b);
}

/* Each kind serves its own conditions (a filter of one condition is served by the index). */
static void test_planner_serves(void **state)
{
    struct pindex *ix[] = {
        mk("f", "\"float\""),
        mk("b", "\"bool\""),
        mk("t", "\"datetime\""),
        mk("u", "\"uuid\""),
        mk("d", "\"text\""),
        mk("g", "\"geo\""),
        mk("ni", "{\"type\":\"integer\",\"range\":false}"),
        mk("nl", "{\"type\":\"integer\",\"lookup\":false}"),
    };
    size_t nix = sizeof ix / sizeof ix[0];
    struct {
        const char *filter;
        bool served, exact;
    } cases[] = {
        {"{\"must\":{\"key\":\"f\",\"range\":{\"gt\":1}}}", true, false},
        {"{\"must\":{\"key\":\"f\",\"match\":{\"value\":1}}}", false, false},
        {"{\"must\":{\"key\":\"b\",\"match\":{\"value\":true}}}", true, true},
        {"{\"must\":{\"key\":\"t\",\"range\":{\"gt\":\"2023-01-01\"}}}", true, false},
        {"{\"must\":{\"key\":\"t\",\"range\":{\"gt\":5}}}", false, false},
        {"{\"must\":{\"key\":\"u\",\"match\":{\"value\":\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\"}}"
         "}",
         true, false},
        {"{\"must\":{\"key\":\"u\",\"match\":{\"any\":[\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\","
         "\"x\"]}}}",
         false, false},
        {"{\"must\":{\"key\":\"d\",\"match\":{\"text\":\"a b\"}}}", true, false},
        {"{\"must\":{\"key\":\"d\",\"match\":{\"phrase\":\"a b\"}}}", true, false},
        {"{\"must\":{\"key\":\"g\",\"geo_radius\":{\"center\":{\"lon\":0,\"lat\":0},"
         "\"radius\":5}}}",
         true, false},
        {"{\"must\":{\"key\":\"ni\",\"match\":{\"value\":1}}}", true, true},
        {"{\"must\":{\"key\":\"ni\",\"range\":{\"gt\":1}}}", false, false},
        {"{\"must\":{\"key\":\"nl\",\"match\":{\"value\":1}}}", false, false},
        {"{\"must\":{\"key\":\"nl\",\"range\":{\"gt\":1}}}", true, false},
        {"{\"must\":{\"nested\":{\"key\":\"d\",\"filter\":{}}}}", false, false},
    };
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct filter *f;
        enc(&b, cases[i].filter);
        assert_int_equal(filter_compile(b.data, b.len, &f, NULL), DV_OK);
        assert_int_equal(filter_bind(f, ix, nix), DV_OK);
        bool ok;
        filter_estimate(f, ix, nix, 100, &ok);
        if (ok != cases[i].served || filter_index_exact(f, ix, nix) != cases[i].exact)
            print_error("%s: served %d exact %d\n", cases[i].filter, ok,
                        filter_index_exact(f, ix, nix));
        assert_int_equal(ok, cases[i].served);
        assert_int_equal(filter_index_exact(f, ix, nix), cases[i].exact);
        filter_free(f);
    }
    /* An unbound text condition (substring semantics) is not served. */
    struct filter *f;
    enc(&b, "{\"must\":{\"key\":\"d\",\"match\":{\"text\":\"a\"}}}");
    assert_int_equal(filter_compile(b.data, b.len, &f, NULL), DV_OK);
    bool ok;
    filter_estimate(f, ix, nix, 100, &ok);
    assert_false(ok);
    filter_free(f);
    for (size_t i = 0; i < nix; i++)
        pindex_free(ix[i]);
    buf_free(&b);
}

/* ---- Facets ---- */

static const char *const fkw[] = {"a", "b", "c", "d", "ee"};

static void test_facet(void **state)
{
    srand(seed_of() + 1);
    enum { N = 300 };
    struct pindex *kw = mk("k", "\"keyword\""), *in = mk("n", "\"integer\""),
                  *bo = mk("b", "\"bool\""), *uu = mk("u", "\"uuid\""), *fl = mk("f", "\"float\"");
    /* has[s][v]: slot s holds value v (per kind: 5 keywords, ints -2..2, bools, 2 uuids). */
    static bool hk[N][5], hn[N][5], hb[N][2], hu[N][2];
    memset(hk, 0, sizeof hk);
    memset(hn, 0, sizeof hn);
    memset(hb, 0, sizeof hb);
    memset(hu, 0, sizeof hu);
    struct buf b = BUF_INIT;
    for (uint32_t s = 0; s < N; s++) {
        char t[512];
        int n = snprintf(t, sizeof t, "{\"k\":[");
        for (int i = rnd(4); i > 0; i--) {
            int v = rnd(5);
            hk[s][v] = true;
            n += snprintf(t + n, sizeof t - n, "\"%s\",", fkw[v]);
        }
        n += snprintf(t + n, sizeof t - n, "1],\"n\":[");
        for (int i = rnd(3); i > 0; i--) {
            int v = rnd(5);
            hn[s][v] = true;
            n += snprintf(t + n, sizeof t - n, "%d,", v - 2);
        }
        int bv = rnd(3);
        if (bv < 2)
            hb[s][bv] = true;
        int uv = rnd(3);
        if (uv < 2)
            hu[s][uv] = true;
        snprintf(t + n, sizeof t - n, "0.5],\"b\":%s,\"u\":\"%s\"}",
                 bv == 0   ? "false"
                 : bv == 1 ? "true"
                           : "null",
                 uv == 0   ? "550e8400-e29b-41d4-a716-446655440000"
                 : uv == 1 ? "6BA7B810-9DAD-11D1-80B4-00C04FD430C8"
                           : "x");
        enc(&b, t);
        assert_int_equal(pindex_add(kw, s, b.data, b.len), DV_OK);
        assert_int_equal(pindex_add(in, s, b.data, b.len), DV_OK);
        assert_int_equal(pindex_add(bo, s, b.data, b.len), DV_OK);
        assert_int_equal(pindex_add(uu, s, b.data, b.len), DV_OK);
    }
    struct pindex_facet_hit *h;
    size_t nh;
    assert_int_equal(pindex_facet(fl, NULL, 0, 0, &h, &nh), DV_EINVAL);
    for (int iter = 0; iter < 200; iter++) {
        /* A random restriction (or none). */
        uint32_t sel[N];
        size_t ns = 0;
        bool all = iter % 5 == 0;
        static bool in_sel[N];
        for (uint32_t s = 0; s < N; s++) {
            in_sel[s] = all || rnd(3) == 0;
            if (in_sel[s] && !all)
                sel[ns++] = s;
        }
        size_t limit = (size_t)rnd(6);
        for (int kind = 0; kind < 4; kind++) {
            struct pindex *ix = kind == 0 ? kw : kind == 1 ? in : kind == 2 ? bo : uu;
            int nv = kind < 2 ? 5 : 2;
            uint64_t cnt[5] = {0};
            for (uint32_t s = 0; s < N; s++)
                for (int v = 0; v < nv; v++)
                    if (in_sel[s] && (kind == 0   ? hk[s][v]
                                      : kind == 1 ? hn[s][v]
                                      : kind == 2 ? hb[s][v]
                                                  : hu[s][v]))
                        cnt[v]++;
            /* Expected order: count desc, then value asc (the value order is v's order for
             * every kind here: "a".."ee", -2..2, false/true, the two uuids bytewise). */
            int order[5], no = 0;
            for (int v = 0; v < nv; v++)
                if (cnt[v] > 0)
                    order[no++] = v;
            for (int i = 1; i < no; i++)
                for (int j = i; j > 0 && cnt[order[j]] > cnt[order[j - 1]]; j--) {
                    int tmp = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = tmp;
                }
            size_t want = limit && (size_t)no > limit ? limit : (size_t)no;
            assert_int_equal(pindex_facet(ix, all ? NULL : sel, ns, limit, &h, &nh), DV_OK);
            assert_int_equal(nh, want);
            for (size_t i = 0; i < nh; i++) {
                int v = order[i];
                assert_int_equal(h[i].count, cnt[v]);
                if (kind == 0) {
                    assert_int_equal(h[i].n, strlen(fkw[v]));
                    assert_memory_equal(h[i].s, fkw[v], h[i].n);
                } else if (kind == 1) {
                    assert_int_equal(h[i].i, v - 2);
                } else if (kind == 2) {
                    assert_int_equal(h[i].i, v);
                } else {
                    char txt[PID_TEXT_MAX];
                    pid_format(&h[i].id, txt);
                    assert_string_equal(txt, v == 0 ? "550e8400-e29b-41d4-a716-446655440000"
                                                    : "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
                }
            }
            free(h);
        }
    }
    pindex_free(kw);
    pindex_free(in);
    pindex_free(bo);
    pindex_free(uu);
    pindex_free(fl);
    buf_free(&b);
}

/* ---- order_by ---- */

struct pair {
    int64_t key; /* integer / datetime value, or pindex_float_key */
    uint32_t slot;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

struct got {
    struct pair *v;
    size_t n, stop;
    enum pindex_kind kind;
};

static bool got_fn(void *ctx, uint32_t slot, struct pindex_ordval v)
{
    struct got *g = ctx;
    int64_t key = g->kind == PINDEX_FLOAT ? pindex_float_key(v.f) : v.i;
    if (g->kind == PINDEX_FLOAT)
        assert_true(pindex_float_key(v.f) == v.i);
    g->v[g->n++] = (struct pair){key, slot};
    return g->n == g->stop;
}

static void test_order(void **state)
{
    srand(seed_of() + 2);
    enum { N = 500, MAXV = 3 };
    static struct pair all[3][N * MAXV];
    static struct pair got[N * MAXV];
    size_t nall[3] = {0};
    struct pindex *ix[3] = {mk("n", "\"integer\""), mk("f", "\"float\""), mk("t", "\"datetime\"")};
    struct pindex *kw = mk("k", "\"keyword\"");
    assert_int_equal(pindex_order(kw, false, NULL, got_fn, NULL), DV_EINVAL);
    pindex_free(kw);
    struct buf b = BUF_INIT;
    static char payloads[N][512];
    for (int round = 0; round < 2; round++) {
        for (uint32_t s = 0; s < N; s++) {
            if (round == 1) { /* replace a third of the payloads: stale and recent values */
                if (rnd(3))
                    continue;
                enc(&b, payloads[s]);
                for (int k = 0; k < 3; k++)
                    pindex_remove(ix[k], s, b.data, b.len);
            }
            char *t = payloads[s];
            int n = snprintf(t, 512, "{\"n\":[");
            for (int i = rnd(MAXV + 1); i > 0; i--)
                n += snprintf(t + n, 512 - n, "%d,", rnd(200) - 100);
            n += snprintf(t + n, 512 - n, "0.5],\"f\":[");
            for (int i = rnd(MAXV + 1); i > 0; i--)
                n += snprintf(t + n, 512 - n, "%d.%d,", rnd(20) - 10, rnd(4) * 25);
            n += snprintf(t + n, 512 - n, "\"x\"],\"t\":[");
            for (int i = rnd(MAXV + 1); i > 0; i--)
                n += snprintf(t + n, 512 - n, "\"2023-02-%02dT%02d:00:00+0%d:00\",", 1 + rnd(28),
                              rnd(24), rnd(3));
            snprintf(t + n, 512 - n, "null]}");
            enc(&b, t);
            for (int k = 0; k < 3; k++)
                assert_int_equal(pindex_add(ix[k], s, b.data, b.len), DV_OK);
        }
    }
    /* Brute force from the final payloads: distinct (value, slot) pairs. */
    for (uint32_t s = 0; s < N; s++) {
        enc(&b, payloads[s]);
        json_t *j;
        assert_int_equal(jsonmp_to_json(b.data, b.len, &j, NULL), DV_OK);
        const char *keys[3] = {"n", "f", "t"};
        for (int k = 0; k < 3; k++) {
            json_t *arr = json_object_get(j, keys[k]), *e;
            size_t i;
            json_array_foreach(arr, i, e)
            {
                int64_t key;
                if (k == 0 && json_is_integer(e))
                    key = json_integer_value(e);
                else if (k == 1 && json_is_number(e))
                    key = pindex_float_key(json_number_value(e));
                else if (k == 2 && json_is_string(e))
                    assert_true(dtime_parse(json_string_value(e), json_string_length(e), &key));
                else
                    continue;
                bool dup = false;
                for (size_t q = 0; q < nall[k]; q++)
                    dup |= all[k][q].slot == s && all[k][q].key == key;
                if (!dup)
                    all[k][nall[k]++] = (struct pair){key, s};
            }
        }
        json_decref(j);
    }
    for (int k = 0; k < 3; k++) {
        enum pindex_kind kind = k == 0 ? PINDEX_INTEGER : k == 1 ? PINDEX_FLOAT : PINDEX_DATETIME;
        qsort(all[k], nall[k], sizeof all[k][0], pair_cmp);
        for (int iter = 0; iter < 60; iter++) {
            bool desc = iter % 2;
            struct pindex_ordval from = {0, 0}, *fp = NULL;
            if (iter % 3 && nall[k] > 0) {
                int64_t key = all[k][rnd((int)nall[k])].key + rnd(3) - 1;
                from.i = key;
                from.f = pindex_float_of_key(key);
                if (kind == PINDEX_FLOAT) /* -0.0 reads as 0.0 */
                    from.i = pindex_float_key(from.f);
                fp = &from;
            }
            size_t stop = iter % 4 == 0 ? 0 : (size_t)rnd(50) + 1;
            struct got g = {got, 0, stop, kind};
            assert_int_equal(pindex_order(ix[k], desc, fp, got_fn, &g), DV_OK);
            /* The expected sequence. */
            size_t m = 0;
            for (size_t q = 0; q < nall[k]; q++) {
                size_t i = desc ? nall[k] - 1 - q : q;
                const struct pair *p = &all[k][i];
                if (fp != NULL && (desc ? p->key > fp->i : p->key < fp->i))
                    continue;
                if (stop && m == stop)
                    break;
                m++;
            }
            assert_int_equal(g.n, m);
            /* Compare: values in order, and per value the set of slots in ascending order. */
            for (size_t i = 1; i < g.n; i++) {
                if (desc)
                    assert_true(got[i - 1].key > got[i].key ||
                                (got[i - 1].key == got[i].key && got[i - 1].slot < got[i].slot));
                else
                    assert_true(pair_cmp(&got[i - 1], &got[i]) < 0);
            }
            for (size_t i = 0; i < g.n; i++) {
                assert_non_null(bsearch(&got[i], all[k], nall[k], sizeof all[k][0], pair_cmp));
                if (fp != NULL)
                    assert_true(desc ? got[i].key <= fp->i : got[i].key >= fp->i);
            }
        }
    }
    for (int k = 0; k < 3; k++)
        pindex_free(ix[k]);
    buf_free(&b);
}

/* ---- Params ---- */

static void params_equal(const struct pindex_params *a, const struct pindex_params *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->has_params, b->has_params);
    assert_int_equal(a->on_disk, b->on_disk);
    assert_int_equal(a->is_tenant, b->is_tenant);
    assert_int_equal(a->is_principal, b->is_principal);
    assert_int_equal(a->lookup, b->lookup);
    assert_int_equal(a->range, b->range);
    assert_int_equal(a->phrase_matching, b->phrase_matching);
    assert_int_equal(a->tok.tokenizer, b->tok.tokenizer);
    assert_int_equal(a->tok.lowercase, b->tok.lowercase);
    assert_int_equal(a->tok.min_len, b->tok.min_len);
    assert_int_equal(a->tok.max_len, b->tok.max_len);
}

static void test_params(void **state)
{
    const char *ok[] = {
        "\"keyword\"",
        "\"integer\"",
        "\"float\"",
        "\"bool\"",
        "\"geo\"",
        "\"text\"",
        "\"datetime\"",
        "\"uuid\"",
        "{\"type\":\"keyword\",\"is_tenant\":true,\"on_disk\":true}",
        "{\"type\":\"integer\",\"lookup\":false,\"range\":true,\"is_principal\":true}",
        "{\"type\":\"integer\",\"lookup\":null}",
        "{\"type\":\"float\",\"is_principal\":true,\"on_disk\":false}",
        "{\"type\":\"datetime\",\"is_principal\":true}",
        "{\"type\":\"geo\",\"on_disk\":true}",
        "{\"type\":\"bool\"}",
        "{\"type\":\"uuid\",\"is_tenant\":true}",
        "{\"type\":\"text\",\"tokenizer\":\"prefix\",\"lowercase\":false,\"min_token_len\":2,"
        "\"max_token_len\":10,\"phrase_matching\":true,\"on_disk\":true}",
        "{\"type\":\"text\",\"tokenizer\":\"multilingual\"}",
        "{\"tokenizer\":\"whitespace\",\"type\":\"text\"}",
    };
    struct buf b = BUF_INIT, e = BUF_INIT;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct pindex_params p, q;
        char err[DV_ERRMSG_SIZE] = "";
        enc(&b, ok[i]);
        int rc = pindex_params_parse(b.data, b.len, &p, err);
        if (rc != DV_OK)
            print_error("%s: %s\n", ok[i], err);
        assert_int_equal(rc, DV_OK);
        assert_int_equal(p.has_params, ok[i][0] == '{');
        buf_reset(&e);
        assert_int_equal(pindex_params_encode(&p, &e), DV_OK);
        assert_int_equal(pindex_params_decode(e.data, e.len, &q, err), DV_OK);
        params_equal(&p, &q);
        /* The index reports them. */
        struct pindex *ix;
        assert_int_equal(pindex_create_params("a.b", &p, &ix), DV_OK);
        params_equal(pindex_params_of(ix), &p);
        pindex_free(ix);
    }
    /* Defaults and particular values. */
    struct pindex_params p;
    enc(&b, "{\"type\":\"text\",\"min_token_len\":2,\"max_token_len\":10,\"tokenizer\":"
            "\"prefix\",\"lowercase\":false}");
    assert_int_equal(pindex_params_parse(b.data, b.len, &p, NULL), DV_OK);
    assert_int_equal(p.kind, PINDEX_TEXT);
    assert_int_equal(p.tok.tokenizer, FTEXT_PREFIX);
    assert_false(p.tok.lowercase);
    assert_int_equal(p.tok.min_len, 2);
    assert_int_equal(p.tok.max_len, 10);
    p = pindex_params_default(PINDEX_INTEGER);
    assert_true(p.lookup && p.range && !p.has_params);
    assert_string_equal(pindex_kind_name(PINDEX_DATETIME), "datetime");
    assert_string_equal(pindex_kind_name((enum pindex_kind)99), "?");

    /* payload_schema entries. */
    struct pindex *ix = mk("d", "{\"type\":\"text\",\"tokenizer\":\"word\",\"max_token_len\":5}");
    add(ix, 3, "{\"d\":\"hello world\"}");
    add(ix, 4, "{\"d\":\"hi\"}");
    add(ix, 5, "{\"d\":5}");
    buf_reset(&e);
    assert_int_equal(pindex_schema(ix, &e), DV_OK);
    char *t = NULL;
    assert_int_equal(jsonmp_to_text(e.data, e.len, &t, NULL), DV_OK);
    assert_string_equal(t,
                        "{\"data_type\":\"text\",\"params\":{\"type\":\"text\",\"on_disk\":false,"
                        "\"tokenizer\":\"word\",\"lowercase\":true,\"max_token_len\":5,"
                        "\"phrase_matching\":false},\"points\":2}");
    free(t);
    pindex_free(ix);
    ix = mk("k", "\"keyword\"");
    add(ix, 1, "{\"k\":\"x\"}");
    buf_reset(&e);
    assert_int_equal(pindex_schema(ix, &e), DV_OK);
    assert_int_equal(jsonmp_to_text(e.data, e.len, &t, NULL), DV_OK);
    assert_string_equal(t, "{\"data_type\":\"keyword\",\"points\":1}");
    free(t);
    pindex_free(ix);

    struct {
        const char *json, *msg;
    } bad[] = {
        {"\"keywords\"", "field_schema: unknown type \"keywords\" (keyword, integer, float, bool, "
                         "geo, text, datetime or uuid)"},
        {"5", "field_schema: must be a type name or an object with a type"},
        {"{\"on_disk\":true}", "field_schema: needs a type"},
        {"{\"type\":5}", "field_schema: type must be a string"},
        {"{\"type\":\"text\",\"tokenizer\":\"icu\"}",
         "field_schema: text: tokenizer must be one of word, whitespace, prefix, multilingual"},
        {"{\"type\":\"text\",\"min_token_len\":-1}",
         "field_schema: text: min_token_len must be a non-negative integer"},
        {"{\"type\":\"text\",\"min_token_len\":5,\"max_token_len\":2}",
         "field_schema: text: min_token_len must not exceed max_token_len"},
        {"{\"type\":\"text\",\"stopwords\":\"english\"}",
         "field_schema: text: unknown or unsupported parameter \"stopwords\""},
        {"{\"type\":\"keyword\",\"lookup\":true}",
         "field_schema: keyword: unknown or unsupported parameter \"lookup\""},
        {"{\"type\":\"integer\",\"lookup\":false,\"range\":false}",
         "field_schema: integer: lookup and range must not both be false"},
        {"{\"type\":\"integer\",\"range\":\"yes\"}", "field_schema: integer: range must be a bool"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[DV_ERRMSG_SIZE] = "";
        enc(&b, bad[i].json);
        int rc = pindex_params_parse(b.data, b.len, &p, err);
        if (rc != DV_EINVAL || strstr(err, bad[i].msg) == NULL)
            print_error("%s\n  got %d \"%s\"\n  want \"%s\"\n", bad[i].json, rc, err, bad[i].msg);
        assert_int_equal(rc, DV_EINVAL);
        assert_non_null(strstr(err, bad[i].msg));
    }
    /* Duplicate keys (JSON text would merge them; msgpack keeps both). */
    {
        char e2[DV_ERRMSG_SIZE] = "";
        buf_reset(&b);
        assert_int_equal(mpw_map(&b, 3), DV_OK);
        assert_int_equal(mpw_str(&b, "type", 4), DV_OK);
        assert_int_equal(mpw_str(&b, "geo", 3), DV_OK);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(mpw_str(&b, "on_disk", 7), DV_OK);
            assert_int_equal(mpw_bool(&b, i), DV_OK);
        }
        assert_int_equal(pindex_params_parse(b.data, b.len, &p, e2), DV_EINVAL);
        assert_string_equal(e2, "field_schema: geo: duplicate key \"on_disk\"");
        buf_reset(&b);
        assert_int_equal(mpw_map(&b, 2), DV_OK);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(mpw_str(&b, "type", 4), DV_OK);
            assert_int_equal(mpw_str(&b, "uuid", 4), DV_OK);
        }
        assert_int_equal(pindex_params_parse(b.data, b.len, &p, e2), DV_EINVAL);
        assert_string_equal(e2, "field_schema: duplicate key \"type\"");
    }
    /* decode names itself; truncations are refused. */
    char err[DV_ERRMSG_SIZE] = "";
    enc(&b, "{\"type\":\"text\",\"tokenizer\":\"prefix\",\"min_token_len\":2}");
    for (size_t k = 0; k < b.len; k++)
        assert_int_equal(pindex_params_decode(b.data, k, &p, err), DV_EINVAL);
    assert_non_null(strstr(err, "index params: "));
    /* Bad params to pindex_create_params. */
    struct pindex *x = NULL;
    p = pindex_params_default(PINDEX_TEXT);
    p.tok.min_len = 3;
    p.tok.max_len = 2;
    assert_int_equal(pindex_create_params("d", &p, &x), DV_EINVAL);
    p = pindex_params_default(PINDEX_TEXT);
    p.kind = 8;
    assert_int_equal(pindex_create_params("d", &p, &x), DV_EINVAL);
    assert_null(x);
    buf_free(&b);
    buf_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds_add_remove),
        cmocka_unit_test(test_planner_kinds_random),
        cmocka_unit_test(test_planner_serves),
        cmocka_unit_test(test_facet),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
