/* test_pindex.c - payload indexes (keyword, integer) and the planner: candidates are a superset
 * of the brute-force matches, estimates bound the true counts. */
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
#include "filter.h"
#include "jsonmp.h"
#include "mpk.h"
#include "pindex.h"

static void enc(struct buf *b, const char *json)
{
    buf_reset(b);
    assert_int_equal(jsonmp_from_text(json, strlen(json), b, NULL), DV_OK);
}

static void expect_list(struct pindex_list l, const uint32_t *want, size_t n)
{
    assert_int_equal(l.n, n);
    assert_non_null(l.slots);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(l.slots[i], want[i]);
}

static void test_create(void **state)
{
    struct pindex *ix = NULL;
    assert_int_equal(pindex_create("", PINDEX_KEYWORD, &ix), DV_EINVAL);
    assert_int_equal(pindex_create("a..b", PINDEX_KEYWORD, &ix), DV_EINVAL);
    assert_int_equal(pindex_create("a", (enum pindex_kind)42, &ix), DV_EINVAL);
    assert_null(ix);
    assert_int_equal(pindex_create("city.name", PINDEX_INTEGER, &ix), DV_OK);
    assert_string_equal(pindex_key(ix), "city.name");
    assert_int_equal(pindex_kind_of(ix), PINDEX_INTEGER);
    assert_int_equal(pindex_values(ix), 0);
    pindex_free(ix);
    pindex_free(NULL);
}

static void test_keyword_add_remove(void **state)
{
    struct pindex *ix;
    struct buf b = BUF_INIT;
    assert_int_equal(pindex_create("tags", PINDEX_KEYWORD, &ix), DV_OK);
    size_t mem0 = pindex_mem(ix);
    const char *p[] = {
        "{\"tags\":\"a\"}",
        "{\"tags\":[\"a\",\"b\",\"a\"]}",
        "{\"tags\":[1,\"b\",null,[\"c\"],{\"x\":\"d\"},true]}", /* only \"b\" is a keyword */
        "{\"other\":\"a\"}",
        "{\"tags\":5}",
    };
    for (uint32_t i = 0; i < 5; i++) {
        enc(&b, p[i]);
        assert_int_equal(pindex_add(ix, i * 10, b.data, b.len), DV_OK);
        assert_int_equal(pindex_add(ix, i * 10, b.data, b.len), DV_OK); /* idempotent */
    }
    assert_int_equal(pindex_add(ix, 99, NULL, 0), DV_OK);
    expect_list(pindex_get_str(ix, "a", 1), (const uint32_t[]){0, 10}, 2);
    expect_list(pindex_get_str(ix, "b", 1), (const uint32_t[]){10, 20}, 2);
    assert_int_equal(pindex_get_str(ix, "c", 1).n, 0);
    assert_int_equal(pindex_get_str(ix, "d", 1).n, 0);
    assert_int_equal(pindex_get_int(ix, 1).n, 0); /* wrong kind */
    assert_int_equal(pindex_values(ix), 2);
    assert_true(pindex_mem(ix) > mem0);

    /* Remove slot 10 (its payload has "a" twice), then again: no-op. */
    enc(&b, p[1]);
    pindex_remove(ix, 10, b.data, b.len);
    pindex_remove(ix, 10, b.data, b.len);
    expect_list(pindex_get_str(ix, "a", 1), (const uint32_t[]){0}, 1);
    expect_list(pindex_get_str(ix, "b", 1), (const uint32_t[]){20}, 1);
    enc(&b, p[0]);
    pindex_remove(ix, 0, b.data, b.len);
    assert_int_equal(pindex_get_str(ix, "a", 1).n, 0);
    assert_int_equal(pindex_values(ix), 1);
    /* Re-add. */
    assert_int_equal(pindex_add(ix, 5, b.data, b.len), DV_OK);
    expect_list(pindex_get_str(ix, "a", 1), (const uint32_t[]){5}, 1);
    enc(&b, p[2]);
    pindex_remove(ix, 20, b.data, b.len);
    enc(&b, p[0]);
    pindex_remove(ix, 5, b.data, b.len);
    assert_int_equal(pindex_values(ix), 0);
    buf_free(&b);
    pindex_free(ix);
}

/* {"o":[{"n":1},{"n":[2.5,-3,"x",UINT64_MAX]},{"n":1}]} (JSON text cannot hold UINT64_MAX). */
static void enc_mixed(struct buf *b)
{
    buf_reset(b);
    assert_int_equal(mpw_map(b, 1), DV_OK);
    assert_int_equal(mpw_str(b, "o", 1), DV_OK);
    assert_int_equal(mpw_array(b, 3), DV_OK);
    assert_int_equal(mpw_map(b, 1), DV_OK);
    assert_int_equal(mpw_str(b, "n", 1), DV_OK);
    assert_int_equal(mpw_i64(b, 1), DV_OK);
    assert_int_equal(mpw_map(b, 1), DV_OK);
    assert_int_equal(mpw_str(b, "n", 1), DV_OK);
    assert_int_equal(mpw_array(b, 4), DV_OK);
    assert_int_equal(mpw_f64(b, 2.5), DV_OK);
    assert_int_equal(mpw_i64(b, -3), DV_OK);
    assert_int_equal(mpw_str(b, "x", 1), DV_OK);
    assert_int_equal(mpw_u64(b, UINT64_MAX), DV_OK);
    assert_int_equal(mpw_map(b, 1), DV_OK);
    assert_int_equal(mpw_str(b, "n", 1), DV_OK);
    assert_int_equal(mpw_i64(b, 1), DV_OK);
}

static void test_integer_types(void **state)
{
    struct pindex *ix;
    struct buf b = BUF_INIT;
    assert_int_equal(pindex_create("o[].n", PINDEX_INTEGER, &ix), DV_OK);
    enc_mixed(&b);
    assert_int_equal(pindex_add(ix, 7, b.data, b.len), DV_OK);
    enc(&b, "{\"o\":[{\"n\":-3}],\"n\":4}");
    assert_int_equal(pindex_add(ix, 3, b.data, b.len), DV_OK);
    expect_list(pindex_get_int(ix, 1), (const uint32_t[]){7}, 1);
    expect_list(pindex_get_int(ix, -3), (const uint32_t[]){3, 7}, 2);
    assert_int_equal(pindex_get_int(ix, 4).n, 0);
    expect_list(pindex_other_numbers(ix), (const uint32_t[]){7}, 1);
    assert_int_equal(pindex_get_str(ix, "x", 1).n, 0);
    enc_mixed(&b);
    pindex_remove(ix, 7, b.data, b.len);
    assert_int_equal(pindex_other_numbers(ix).n, 0);
    expect_list(pindex_get_int(ix, -3), (const uint32_t[]){3}, 1);
    assert_int_equal(pindex_values(ix), 1);
    buf_free(&b);
    pindex_free(ix);
}

static bool collect_fn(void *ctx, struct pindex_list l)
{
    uint64_t *sum = ctx;
    for (size_t i = 0; i < l.n; i++)
        sum[0] += l.slots[i], sum[1]++;
    return false;
}

/* Many distinct values added and removed in random order: lookups and ranges stay exact
 * through the merges of the ordered view and the hash table's deletions. */
static void test_integer_churn(void **state)
{
    enum { N = 20000 };
    struct pindex *ix;
    struct buf b = BUF_INIT;
    static int64_t val[N];
    static bool live[N];
    assert_int_equal(pindex_create("v", PINDEX_INTEGER, &ix), DV_OK);
    srand(5);
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < N; k++) {
            uint32_t s = (uint32_t)(rand() % N);
            char text[64];
            if (live[s]) {
                snprintf(text, sizeof text, "{\"v\":%lld}", (long long)val[s]);
                enc(&b, text);
                pindex_remove(ix, s, b.data, b.len);
                live[s] = false;
            } else {
                val[s] = (int64_t)(rand() % 50000) - 25000;
                snprintf(text, sizeof text, "{\"v\":%lld}", (long long)val[s]);
                enc(&b, text);
                assert_int_equal(pindex_add(ix, s, b.data, b.len), DV_OK);
                live[s] = true;
            }
        }
        for (int q = 0; q < 200; q++) {
            int64_t lo = rand() % 60000 - 30000, hi = lo + rand() % 3000;
            if (q == 0)
                lo = INT64_MIN, hi = INT64_MAX;
            uint64_t got[2] = {0, 0}, want[2] = {0, 0};
            pindex_range(ix, lo, hi, collect_fn, got);
            for (uint32_t s = 0; s < N; s++)
                if (live[s] && val[s] >= lo && val[s] <= hi)
                    want[0] += s, want[1]++;
            assert_int_equal(got[0], want[0]);
            assert_int_equal(got[1], want[1]);
        }
        for (uint32_t s = 0; s < N; s += 97) {
            struct pindex_list l = pindex_get_int(ix, val[s]);
            bool found = false;
            for (size_t i = 0; i < l.n; i++) {
                found |= l.slots[i] == s;
                if (i > 0)
                    assert_true(l.slots[i - 1] < l.slots[i]);
            }
            assert_int_equal(found, live[s]);
        }
    }
    /* Empty everything: the index shrinks back to no values. */
    for (uint32_t s = 0; s < N; s++) {
        if (!live[s])
            continue;
        char text[64];
        snprintf(text, sizeof text, "{\"v\":%lld}", (long long)val[s]);
        enc(&b, text);
        pindex_remove(ix, s, b.data, b.len);
        live[s] = false;
    }
    assert_int_equal(pindex_values(ix), 0);
    uint64_t got[2] = {0, 0};
    pindex_range(ix, INT64_MIN, INT64_MAX, collect_fn, got);
    assert_int_equal(got[1], 0);
    buf_free(&b);
    pindex_free(ix);
}

/* ---- Planner against brute force ---- */

enum { NP = 1500 };
static const char *const kws[] = {"red", "green", "blue", "cyan", "magenta"};

static void rand_payload(struct buf *b)
{
    char text[256];
    int n = 0;
    n += snprintf(text + n, sizeof text - n, "{");
    if (rand() % 5)
        n += snprintf(text + n, sizeof text - n, "\"k\":\"%s\",", kws[rand() % 5]);
    if (rand() % 3 == 0)
        n += snprintf(text + n, sizeof text - n, "\"k\":[\"%s\",\"%s\",3],", kws[rand() % 5],
                      kws[rand() % 5]);
    int r = rand() % 6;
    if (r < 3)
        n += snprintf(text + n, sizeof text - n, "\"n\":%d,", rand() % 200 - 100);
    else if (r == 3)
        n += snprintf(text + n, sizeof text - n, "\"n\":%d.5,", rand() % 200 - 100);
    else if (r == 4)
        n += snprintf(text + n, sizeof text - n, "\"n\":[%d,%d],", rand() % 200 - 100,
                      rand() % 200 - 100);
    n += snprintf(text + n, sizeof text - n, "\"u\":%d}", rand() % 4);
    enc(b, text);
}

/* A random condition: indexed (k, n) or not (u, or n with match on a keyword index). */
static int rand_cond(char *out, size_t cap, int depth)
{
    int r = rand() % (depth > 0 ? 8 : 7);
    switch (r) {
    case 0:
        return snprintf(out, cap, "{\"key\":\"k\",\"match\":{\"value\":\"%s\"}}", kws[rand() % 5]);
    case 1:
        return snprintf(out, cap, "{\"key\":\"k\",\"match\":{\"any\":[\"%s\",\"%s\"]}}",
                        kws[rand() % 5], kws[rand() % 5]);
    case 2:
        return snprintf(out, cap, "{\"key\":\"n\",\"match\":{\"value\":%d}}", rand() % 200 - 100);
    case 3: {
        int lo = rand() % 200 - 100;
        const char *b1 = rand() % 2 ? "gt" : "gte", *b2 = rand() % 2 ? "lt" : "lte";
        if (rand() % 3 == 0)
            return snprintf(out, cap, "{\"key\":\"n\",\"range\":{\"%s\":%d.5}}", b1, lo);
        return snprintf(out, cap, "{\"key\":\"n\",\"range\":{\"%s\":%d,\"%s\":%d}}", b1, lo, b2,
                        lo + rand() % 40);
    }
    case 4:
        return snprintf(out, cap, "{\"key\":\"n\",\"match\":{\"any\":[%d,%d,%d]}}",
                        rand() % 200 - 100, rand() % 200 - 100, rand() % 200 - 100);
    case 5:
        return snprintf(out, cap, "{\"key\":\"u\",\"match\":{\"value\":%d}}", rand() % 4);
    case 6:
        return snprintf(out, cap, "{\"key\":\"k\",\"match\":{\"except\":[\"%s\"]}}",
                        kws[rand() % 5]);
    default: {
        int n = snprintf(out, cap, "{\"%s\":[", rand() % 2 ? "must" : "should");
        int k = 1 + rand() % 2;
        for (int i = 0; i < k; i++) {
            if (i)
                n += snprintf(out + n, cap - n, ",");
            n += rand_cond(out + n, cap - n, depth - 1);
        }
        return n + snprintf(out + n, cap - n, "]}");
    }
    }
}

static void rand_filter(struct buf *b)
{
    char text[2048];
    int n = snprintf(text, sizeof text, "{");
    const char *lists[] = {"must", "should", "must_not"};
    bool first = true;
    for (int l = 0; l < 3; l++) {
        if (rand() % 3 == 0)
            continue;
        n += snprintf(text + n, sizeof text - n, "%s\"%s\":[", first ? "" : ",", lists[l]);
        first = false;
        int k = rand() % 3 + (l == 0);
        for (int i = 0; i < k; i++) {
            if (i)
                n += snprintf(text + n, sizeof text - n, ",");
            n += rand_cond(text + n, sizeof text - n, 2);
        }
        n += snprintf(text + n, sizeof text - n, "]");
    }
    snprintf(text + n, sizeof text - n, "}");
    enc(b, text);
}

static void test_planner_random(void **state)
{
    static struct buf payload[NP];
    struct pindex *ix[3];
    struct buf b = BUF_INIT;
    assert_int_equal(pindex_create("k", PINDEX_KEYWORD, &ix[0]), DV_OK);
    assert_int_equal(pindex_create("n", PINDEX_INTEGER, &ix[1]), DV_OK);
    assert_int_equal(pindex_create("n", PINDEX_KEYWORD, &ix[2]), DV_OK); /* holds nothing */
    srand(99);
    for (uint32_t s = 0; s < NP; s++) {
        rand_payload(&payload[s]);
        for (int i = 0; i < 3; i++)
            assert_int_equal(pindex_add(ix[i], s, payload[s].data, payload[s].len), DV_OK);
    }
    int enumerated = 0, unsupported = 0;
    for (int iter = 0; iter < 1500; iter++) {
        /* Replace a few payloads between queries. */
        for (int k = 0; k < 3; k++) {
            uint32_t s = (uint32_t)(rand() % NP);
            for (int i = 0; i < 3; i++)
                pindex_remove(ix[i], s, payload[s].data, payload[s].len);
            rand_payload(&payload[s]);
            for (int i = 0; i < 3; i++)
                assert_int_equal(pindex_add(ix[i], s, payload[s].data, payload[s].len), DV_OK);
        }
        rand_filter(&b);
        struct filter *f;
        char err[DV_ERRMSG_SIZE];
        assert_int_equal(filter_compile(b.data, b.len, &f, err), DV_OK);
        static bool want[NP];
        uint64_t count = 0;
        for (uint32_t s = 0; s < NP; s++) {
            struct pid id = pid_num(s);
            want[s] = filter_match(f, &id, payload[s].data, payload[s].len);
            count += want[s];
        }
        bool exact;
        uint64_t est = filter_estimate(f, ix, 3, NP, &exact);
        uint32_t *slots = NULL;
        size_t n = 0;
        int rc = filter_candidates(f, ix, 3, &slots, &n);
        if (rc == DV_EUNSUPPORTED) {
            assert_false(exact);
            assert_int_equal(est, NP);
            unsupported++;
        } else {
            assert_int_equal(rc, DV_OK);
            assert_true(exact);
            assert_true(est >= count);
            assert_true(est <= NP);
            size_t j = 0;
            for (size_t i = 0; i < n; i++) {
                assert_true(slots[i] < NP);
                if (i > 0)
                    assert_true(slots[i - 1] < slots[i]);
            }
            /* Superset: every match is among the candidates. */
            for (uint32_t s = 0; s < NP; s++) {
                while (j < n && slots[j] < s)
                    j++;
                if (want[s])
                    assert_true(j < n && slots[j] == s);
            }
            if (n < NP)
                enumerated++;
        }
        free(slots);
        filter_free(f);
    }
    assert_true(enumerated > 200);
    assert_true(unsupported > 100);
    for (uint32_t s = 0; s < NP; s++)
        buf_free(&payload[s]);
    for (int i = 0; i < 3; i++)
        pindex_free(ix[i]);
    buf_free(&b);
}

/* Fixed plans: which lists the planner picks and what it returns. */
static void test_planner_fixed(void **state)
{
    struct pindex *ix[2];
    struct buf b = BUF_INIT;
    assert_int_equal(pindex_create("k", PINDEX_KEYWORD, &ix[0]), DV_OK);
    assert_int_equal(pindex_create("n", PINDEX_INTEGER, &ix[1]), DV_OK);
    const char *p[] = {"{\"k\":\"a\",\"n\":1}", "{\"k\":\"a\",\"n\":2}", "{\"k\":\"b\",\"n\":3}",
                       "{\"k\":\"a\",\"n\":2.5}", "{\"k\":\"c\"}"};
    for (uint32_t s = 0; s < 5; s++) {
        enc(&b, p[s]);
        assert_int_equal(pindex_add(ix[0], s, b.data, b.len), DV_OK);
        assert_int_equal(pindex_add(ix[1], s, b.data, b.len), DV_OK);
    }
    struct {
        const char *f;
        int rc;
        uint64_t est;
        size_t n;
        uint32_t slots[5];
    } cases[] = {
        /* The most selective must-condition wins: n=3 (1 slot) over k=a (3). */
        {"{\"must\":[{\"key\":\"k\",\"match\":{\"value\":\"a\"}},"
         "{\"key\":\"n\",\"match\":{\"value\":3}}]}",
         DV_OK,
         1,
         1,
         {2}},
        /* A range includes the float holders. */
        {"{\"must\":{\"key\":\"n\",\"range\":{\"gte\":2,\"lt\":3}}}", DV_OK, 2, 2, {1, 3}},
        {"{\"must\":{\"key\":\"n\",\"range\":{\"gt\":1.5,\"lte\":2.9}}}", DV_OK, 2, 2, {1, 3}},
        {"{\"must\":{\"key\":\"n\",\"range\":{\"gt\":100}}}", DV_OK, 1, 1, {3}},
        /* Should-union when all are indexed. */
        {"{\"should\":[{\"key\":\"k\",\"match\":{\"value\":\"b\"}},"
         "{\"key\":\"k\",\"match\":{\"value\":\"c\"}}]}",
         DV_OK,
         2,
         2,
         {2, 4}},
        {"{\"should\":[{\"key\":\"k\",\"match\":{\"value\":\"b\"}},"
         "{\"key\":\"x\",\"match\":{\"value\":\"c\"}}]}",
         DV_EUNSUPPORTED,
         5,
         0,
         {0}},
        /* Nested filter in must. */
        {"{\"must\":[{\"should\":[{\"key\":\"n\",\"match\":{\"any\":[1,3]}}]}]}",
         DV_OK,
         2,
         2,
         {0, 2}},
        /* Unindexed or unsupported conditions. */
        {"{\"must\":{\"key\":\"k\",\"match\":{\"except\":[\"a\"]}}}", DV_EUNSUPPORTED, 5, 0, {0}},
        {"{\"must\":{\"has_id\":[1]}}", DV_EUNSUPPORTED, 5, 0, {0}},
        {"{}", DV_EUNSUPPORTED, 5, 0, {0}},
        {"{\"must\":{\"key\":\"k\",\"match\":{\"value\":\"zzz\"}}}", DV_OK, 0, 0, {0}},
        {"{\"min_should\":{\"conditions\":[{\"key\":\"k\",\"match\":{\"value\":\"c\"}}],"
         "\"min_count\":1}}",
         DV_OK,
         1,
         1,
         {4}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct filter *f;
        enc(&b, cases[i].f);
        assert_int_equal(filter_compile(b.data, b.len, &f, NULL), DV_OK);
        bool exact;
        uint64_t est = filter_estimate(f, ix, 2, 5, &exact);
        uint32_t *slots = NULL;
        size_t n = 99;
        int rc = filter_candidates(f, ix, 2, &slots, &n);
        if (rc != cases[i].rc || est != cases[i].est)
            print_error("%s: rc %d est %llu\n", cases[i].f, rc, (unsigned long long)est);
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(est, cases[i].est);
        assert_int_equal(exact, rc == DV_OK);
        if (rc == DV_OK) {
            assert_int_equal(n, cases[i].n);
            for (size_t k = 0; k < n; k++)
                assert_int_equal(slots[k], cases[i].slots[k]);
            if (n == 0)
                assert_null(slots);
        }
        free(slots);
        filter_free(f);
    }
    for (int i = 0; i < 2; i++)
        pindex_free(ix[i]);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),         cmocka_unit_test(test_keyword_add_remove),
        cmocka_unit_test(test_integer_types),  cmocka_unit_test(test_integer_churn),
        cmocka_unit_test(test_planner_random), cmocka_unit_test(test_planner_fixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
