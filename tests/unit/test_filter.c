/* test_filter.c - payload filters: every condition kind, paths, combinations, compile errors,
 * and a randomized comparison with a reference evaluator written on jansson values. */
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
#include "err.h"
#include "filter.h"
#include "jsonmp.h"
#include "mpk.h"
#include "pid.h"

static struct filter *compile(const char *json)
{
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE] = "";
    assert_int_equal(jsonmp_from_text(json, strlen(json), &b, err), DV_OK);
    struct filter *f = NULL;
    int rc = filter_compile(b.data, b.len, &f, err);
    if (rc != DV_OK)
        print_error("%s: %s\n", json, err);
    assert_int_equal(rc, DV_OK);
    buf_free(&b);
    return f;
}

static bool match_id(const char *filter, const struct pid *id, const char *payload)
{
    struct filter *f = compile(filter);
    struct buf b = BUF_INIT;
    if (payload != NULL)
        assert_int_equal(jsonmp_from_text(payload, strlen(payload), &b, NULL), DV_OK);
    bool m = filter_match(f, id, b.data, b.len);
    buf_free(&b);
    filter_free(f);
    return m;
}

static bool match(const char *filter, const char *payload)
{
    struct pid id = pid_num(1);
    return match_id(filter, &id, payload);
}

#define YES(f, p) assert_true(match(f, p))
#define NO(f, p)  assert_false(match(f, p))

static void test_match_value(void **state)
{
    const char *f = "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}";
    YES(f, "{\"color\":\"red\"}");
    NO(f, "{\"color\":\"blue\"}");
    NO(f, "{\"color\":\"redd\"}");
    NO(f, "{\"colour\":\"red\"}");
    NO(f, "{\"color\":1}");
    NO(f, "{\"color\":null}");
    NO(f, "{}");
    NO(f, NULL);
    YES(f, "{\"color\":[\"blue\",\"red\"]}");
    NO(f, "{\"color\":[[\"red\"]]}"); /* one level of arrays only */
    f = "{\"must\":{\"key\":\"n\",\"match\":{\"value\":1}}}";
    YES(f, "{\"n\":1}");
    YES(f, "{\"n\":[3,1]}");
    NO(f, "{\"n\":1.0}"); /* integer match is on integer values */
    NO(f, "{\"n\":\"1\"}");
    NO(f, "{\"n\":true}");
    NO(f, "{\"n\":2}");
    YES("{\"must\":{\"key\":\"n\",\"match\":{\"value\":-70000}}}", "{\"n\":-70000}");
    f = "{\"must\":{\"key\":\"ok\",\"match\":{\"value\":true}}}";
    YES(f, "{\"ok\":true}");
    NO(f, "{\"ok\":false}");
    NO(f, "{\"ok\":1}");
    /* Big integers compare exactly. */
    f = "{\"must\":{\"key\":\"n\",\"match\":{\"value\":9223372036854775807}}}";
    YES(f, "{\"n\":9223372036854775807}");
    NO(f, "{\"n\":9223372036854775806}");
}

static void test_match_any_except(void **state)
{
    const char *f = "{\"must\":{\"key\":\"c\",\"match\":{\"any\":[\"red\",\"green\",\"b\"]}}}";
    YES(f, "{\"c\":\"green\"}");
    YES(f, "{\"c\":[\"x\",\"b\"]}");
    NO(f, "{\"c\":\"blue\"}");
    NO(f, "{\"c\":[]}");
    NO(f, "{}");
    f = "{\"must\":{\"key\":\"c\",\"match\":{\"any\":[5,-2,100000]}}}";
    YES(f, "{\"c\":-2}");
    YES(f, "{\"c\":[1,100000]}");
    NO(f, "{\"c\":5.0}");
    NO(f, "{\"c\":\"5\"}");
    NO("{\"must\":{\"key\":\"c\",\"match\":{\"any\":[]}}}", "{\"c\":\"x\"}");

    f = "{\"must\":{\"key\":\"c\",\"match\":{\"except\":[\"red\",\"green\"]}}}";
    YES(f, "{\"c\":\"blue\"}");
    NO(f, "{\"c\":\"red\"}");
    YES(f, "{\"c\":[\"red\",\"blue\"]}"); /* some element is not excluded */
    NO(f, "{\"c\":[\"red\",\"green\"]}");
    NO(f, "{\"c\":[]}");
    NO(f, "{}");
    NO(f, "{\"c\":null}");
    YES(f, "{\"c\":5}"); /* another type is "not in the list" */
    YES(f, "{\"c\":true}");
    YES(f, "{\"c\":{\"x\":1}}");
    f = "{\"must\":{\"key\":\"c\",\"match\":{\"except\":[1,2]}}}";
    YES(f, "{\"c\":3}");
    NO(f, "{\"c\":2}");
    YES(f, "{\"c\":2.0}");
    YES(f, "{\"c\":\"2\"}");
    YES(f, "{\"c\":[2,[1]]}"); /* a nested array is another type */
}

static void test_range(void **state)
{
    const char *f = "{\"must\":{\"key\":\"p\",\"range\":{\"gte\":10,\"lt\":20.5}}}";
    YES(f, "{\"p\":10}");
    YES(f, "{\"p\":10.0}");
    YES(f, "{\"p\":20}");
    YES(f, "{\"p\":20.4}");
    NO(f, "{\"p\":20.5}");
    NO(f, "{\"p\":9.999}");
    NO(f, "{\"p\":\"15\"}");
    NO(f, "{\"p\":null}");
    NO(f, "{}");
    YES(f, "{\"p\":[1,15]}");
    NO(f, "{\"p\":[1,25]}");
    f = "{\"must\":{\"key\":\"p\",\"range\":{\"gt\":-1.5,\"lte\":0}}}";
    YES(f, "{\"p\":-1}");
    YES(f, "{\"p\":0}");
    YES(f, "{\"p\":-0.0}");
    NO(f, "{\"p\":-1.5}");
    NO(f, "{\"p\":1}");
    /* Exact comparison of integers beyond 2^53 with floats. */
    f = "{\"must\":{\"key\":\"p\",\"range\":{\"gt\":9007199254740992.0}}}";
    YES(f, "{\"p\":9007199254740993}");
    NO(f, "{\"p\":9007199254740992}");
    f = "{\"must\":{\"key\":\"p\",\"range\":{\"lt\":9223372036854775807}}}";
    YES(f, "{\"p\":9223372036854775806}");
    NO(f, "{\"p\":9223372036854775807}");
    /* null bounds are absent bounds */
    YES("{\"must\":{\"key\":\"p\",\"range\":{\"gt\":null,\"lt\":3}}}", "{\"p\":-100}");
}

static void test_values_count(void **state)
{
    const char *f = "{\"must\":{\"key\":\"t\",\"values_count\":{\"gte\":2,\"lt\":4}}}";
    YES(f, "{\"t\":[1,2]}");
    YES(f, "{\"t\":[1,2,\"x\"]}");
    NO(f, "{\"t\":[1]}");
    NO(f, "{\"t\":[1,2,3,4]}");
    NO(f, "{\"t\":5}");
    NO(f, "{}");
    f = "{\"must\":{\"key\":\"t\",\"values_count\":{\"lt\":1}}}";
    YES(f, "{}");
    YES(f, "{\"t\":null}");
    YES(f, "{\"t\":[]}");
    NO(f, "{\"t\":0}");
    /* Values reached through an array of maps add up. */
    f = "{\"must\":{\"key\":\"o.v\",\"values_count\":{\"gt\":2}}}";
    YES(f, "{\"o\":[{\"v\":[1,2]},{\"v\":3}]}");
    NO(f, "{\"o\":[{\"v\":[1,2]},{\"w\":3}]}");
}

static void test_empty_null(void **state)
{
    const char *e = "{\"must\":{\"is_empty\":{\"key\":\"r\"}}}";
    YES(e, "{}");
    YES(e, NULL);
    YES(e, "{\"r\":null}");
    YES(e, "{\"r\":[]}");
    NO(e, "{\"r\":[null]}");
    NO(e, "{\"r\":0}");
    NO(e, "{\"r\":\"\"}");
    NO(e, "{\"r\":{}}");
    const char *n = "{\"must\":{\"is_null\":{\"key\":\"r\"}}}";
    YES(n, "{\"r\":null}");
    NO(n, "{}");
    NO(n, "{\"r\":[]}");
    NO(n, "{\"r\":[null]}");
    NO(n, "{\"r\":0}");
    /* Through arrays of maps: some value is null. */
    n = "{\"must\":{\"is_null\":{\"key\":\"a.b\"}}}";
    YES(n, "{\"a\":[{\"b\":1},{\"b\":null}]}");
    NO(n, "{\"a\":[{\"b\":1},{\"b\":2}]}");
    e = "{\"must\":{\"is_empty\":{\"key\":\"a.b\"}}}";
    YES(e, "{\"a\":[{\"b\":null},{\"c\":1},{\"b\":[]}]}");
    NO(e, "{\"a\":[{\"b\":null},{\"b\":1}]}");
    /* must_not is_empty: "has a value" */
    YES("{\"must_not\":{\"is_empty\":{\"key\":\"r\"}}}", "{\"r\":[1]}");
    /* [] on the key looks at elements */
    YES("{\"must\":{\"is_null\":{\"key\":\"r[]\"}}}", "{\"r\":[1,null]}");
}

static void test_paths(void **state)
{
    const char *p = "{\"city\":{\"name\":\"Paris\",\"geo\":{\"cc\":\"fr\"}},"
                    "\"items\":[{\"n\":1,\"tags\":[\"a\"]},{\"n\":5,\"tags\":[\"b\",\"c\"]},7],"
                    "\"grid\":[[1,2],[3,4]],\"tags\":[\"a\",\"b\"]}";
    YES("{\"must\":{\"key\":\"city.name\",\"match\":{\"value\":\"Paris\"}}}", p);
    YES("{\"must\":{\"key\":\"city.geo.cc\",\"match\":{\"value\":\"fr\"}}}", p);
    NO("{\"must\":{\"key\":\"city.geo\",\"match\":{\"value\":\"fr\"}}}", p);
    NO("{\"must\":{\"key\":\"city.name.x\",\"match\":{\"value\":\"Paris\"}}}", p);
    YES("{\"must\":{\"key\":\"tags\",\"match\":{\"value\":\"a\"}}}", p);
    YES("{\"must\":{\"key\":\"tags[]\",\"match\":{\"value\":\"b\"}}}", p);
    YES("{\"must\":{\"key\":\"items[].n\",\"range\":{\"gte\":5}}}", p);
    YES("{\"must\":{\"key\":\"items.n\",\"range\":{\"gte\":5}}}", p);
    NO("{\"must\":{\"key\":\"items.n\",\"range\":{\"gte\":6}}}", p);
    YES("{\"must\":{\"key\":\"items[].tags\",\"match\":{\"value\":\"c\"}}}", p);
    YES("{\"must\":{\"key\":\"items[].tags[]\",\"match\":{\"value\":\"c\"}}}", p);
    YES("{\"must\":{\"key\":\"items[1].n\",\"match\":{\"value\":5}}}", p);
    NO("{\"must\":{\"key\":\"items[0].n\",\"match\":{\"value\":5}}}", p);
    NO("{\"must\":{\"key\":\"items[9].n\",\"match\":{\"value\":5}}}", p);
    YES("{\"must\":{\"key\":\"items[2]\",\"match\":{\"value\":7}}}", p);
    YES("{\"must\":{\"key\":\"items[]\",\"match\":{\"value\":7}}}", p);
    YES("{\"must\":{\"key\":\"grid[][]\",\"match\":{\"value\":4}}}", p);
    YES("{\"must\":{\"key\":\"grid[1]\",\"match\":{\"value\":4}}}", p);
    NO("{\"must\":{\"key\":\"grid\",\"match\":{\"value\":4}}}", p);
    YES("{\"must\":{\"key\":\"items\",\"values_count\":{\"gte\":3,\"lte\":3}}}", p);
    /* Keys are compared as bytes, unicode included. */
    YES("{\"must\":{\"key\":\"\xc3\xa9t\xc3\xa9\",\"match\":{\"value\":\"\xe2\x82\xac\"}}}",
        "{\"\xc3\xa9t\xc3\xa9\":\"\xe2\x82\xac\"}");
}

static void test_has_id(void **state)
{
    const char *f = "{\"must\":{\"has_id\":[1,5,\"550e8400-e29b-41d4-a716-446655440000\",5]}}";
    struct pid a = pid_num(5), b = pid_num(6), u, v;
    assert_int_equal(pid_parse_uuid("550E8400E29B41D4A716446655440000", 32, &u), DV_OK);
    assert_int_equal(pid_parse_uuid("550e8400-e29b-41d4-a716-446655440001", 36, &v), DV_OK);
    assert_true(match_id(f, &a, "{}"));
    assert_false(match_id(f, &b, "{}"));
    assert_true(match_id(f, &u, NULL));
    assert_false(match_id(f, &v, NULL));
    assert_false(match_id(f, NULL, NULL));
    /* The number 0 is not a UUID of zeros. */
    struct pid z = pid_num(0), zu;
    assert_int_equal(pid_parse_uuid("00000000-0000-0000-0000-000000000000", 36, &zu), DV_OK);
    assert_true(match_id("{\"must\":{\"has_id\":[0]}}", &z, NULL));
    assert_false(match_id("{\"must\":{\"has_id\":[0]}}", &zu, NULL));
    /* A big list. */
    struct buf t = BUF_INIT;
    assert_int_equal(buf_appendf(&t, "{\"must_not\":{\"has_id\":["), DV_OK);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(buf_appendf(&t, "%s%d", i ? "," : "", i * 3), DV_OK);
    assert_int_equal(buf_appendf(&t, "]}}"), DV_OK);
    struct filter *fl = compile((const char *)t.data);
    for (int i = 0; i < 15000; i++) {
        struct pid id = pid_num((uint64_t)i);
        assert_int_equal(filter_match(fl, &id, NULL, 0), i % 3 != 0);
    }
    filter_free(fl);
    buf_free(&t);
}

static void test_combinations(void **state)
{
    const char *f = "{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1}},"
                    "{\"key\":\"b\",\"range\":{\"gt\":0}}],"
                    "\"should\":[{\"key\":\"c\",\"match\":{\"value\":\"x\"}},"
                    "{\"key\":\"c\",\"match\":{\"value\":\"y\"}}],"
                    "\"must_not\":[{\"key\":\"d\",\"match\":{\"value\":true}}]}";
    YES(f, "{\"a\":1,\"b\":2,\"c\":\"x\"}");
    YES(f, "{\"a\":1,\"b\":2,\"c\":\"y\",\"d\":false}");
    NO(f, "{\"a\":1,\"b\":2,\"c\":\"z\"}");
    NO(f, "{\"a\":2,\"b\":2,\"c\":\"x\"}");
    NO(f, "{\"a\":1,\"b\":0,\"c\":\"x\"}");
    NO(f, "{\"a\":1,\"b\":2,\"c\":\"x\",\"d\":true}");
    /* Empty filter and empty lists match everything. */
    YES("{}", "{}");
    YES("{}", NULL);
    YES("{\"must\":[],\"should\":[],\"must_not\":null}", "{\"x\":1}");
    YES("{\"must\":[{}]}", "{}");
    /* Nested filters. */
    f = "{\"should\":[{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1}},"
        "{\"key\":\"b\",\"match\":{\"value\":1}}]},"
        "{\"must_not\":[{\"is_empty\":{\"key\":\"c\"}}]}]}";
    YES(f, "{\"a\":1,\"b\":1}");
    YES(f, "{\"c\":[0]}");
    NO(f, "{\"a\":1,\"b\":2}");
    NO(f, "{\"c\":[]}");
    /* min_should */
    f = "{\"min_should\":{\"conditions\":[{\"key\":\"a\",\"match\":{\"value\":1}},"
        "{\"key\":\"b\",\"match\":{\"value\":1}},{\"key\":\"c\",\"match\":{\"value\":1}}],"
        "\"min_count\":2}}";
    YES(f, "{\"a\":1,\"c\":1}");
    YES(f, "{\"a\":1,\"b\":1,\"c\":1}");
    NO(f, "{\"a\":1,\"c\":2}");
    YES("{\"min_should\":{\"conditions\":[],\"min_count\":0}}", "{}");
    NO("{\"min_should\":{\"conditions\":[],\"min_count\":1}}", "{}");
}

/* Each bad filter fails with DV_EINVAL and a message naming the part. */
static void test_compile_errors(void **state)
{
    struct {
        const char *json, *msg;
    } cases[] = {
        {"{\"must\":[{},{},{\"key\":\"a\",\"range\":{\"gt\":\"x\"}}]}",
         "filter: must[2]: range: gt must be a number"},
        {"{\"must\":[{\"key\":\"a\",\"foo\":1}]}", "filter: must[0]: unknown condition \"foo\""},
        {"{\"should\":{\"key\":\"\",\"match\":{\"value\":1}}}",
         "filter: should: key must not be empty"},
        {"{\"must\":[{\"key\":\"a\",\"range\":{}}]}",
         "filter: must[0]: range: needs at least one of gt, gte, lt, lte"},
        {"{\"must\":[{\"key\":\"a\",\"range\":{\"gt\":1,\"between\":2}}]}",
         "filter: must[0]: range: unknown key \"between\""},
        {"{\"must\":[{\"has_id\":[1,\"nope\"]}]}",
         "filter: must[0]: has_id: [1]: id is not a UUID"},
        {"{\"must\":[{\"has_id\":[-1]}]}", "id must not be negative"},
        {"{\"must\":[{\"has_id\":[1.5]}]}", "id must be a non-negative integer or a UUID string"},
        {"{\"must\":[{\"has_id\":5}]}", "has_id: must be an array of ids"},
        {"{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1.5}}]}",
         "must[0]: match: value must be a string, integer or bool"},
        {"{\"must\":[{\"key\":\"a\",\"match\":{\"any\":[1,\"x\"]}}]}",
         "match: any must hold only strings or only integers"},
        {"{\"must\":[{\"key\":\"a\",\"match\":{\"except\":[null]}}]}",
         "match: except must hold only strings or only integers"},
        {"{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1,\"any\":[1]}}]}",
         "match: must hold exactly one of value, any, except"},
        {"{\"must\":[{\"key\":\"a\",\"match\":{\"text_any\":\"x\"}}]}",
         "match: text_any is not supported"},
        {"{\"must\":[{\"key\":\"a\"}]}", "a key needs exactly one of match, range, values_count"},
        {"{\"must\":[{\"match\":{\"value\":1}}]}", "match needs a key"},
        {"{\"must\":[{\"key\":5,\"match\":{\"value\":1}}]}", "key must be a string"},
        {"{\"must\":[{\"key\":\"a..b\",\"match\":{\"value\":1}}]}", "empty step"},
        {"{\"must\":[{\"key\":\"a[x]\",\"match\":{\"value\":1}}]}", "bad brackets"},
        {"{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1},\"has_id\":[1]}]}",
         "condition mixes kinds"},
        {"{\"must\":[{\"geo_radius\":{}}]}", "must[0]: geo_radius needs a key"},
        {"{\"must\":[{\"key\":\"a\",\"values_count\":{\"gt\":-1}}]}",
         "values_count: gt must be a non-negative integer"},
        {"{\"must\":[{\"is_empty\":{\"key\":\"a\",\"x\":1}}]}",
         "must[0]: is_empty: unknown key \"x\""},
        {"{\"must\":[{\"is_null\":{}}]}", "is_null: needs a key"},
        {"{\"min_should\":{\"conditions\":[]}}", "min_should: needs conditions and min_count"},
        {"{\"min_should\":{\"conditions\":[],\"min_count\":-1}}", "min_count must be"},
        {"{\"foo\":[]}", "filter: unknown key \"foo\""},
        {"{\"must\":5}", "must must be an array of conditions"},
        {"{\"must\":[5]}", "must[0]: condition must be a map"},
        {"[1]", "filter: must be a map"},
        {"{\"must\":[{\"should\":[{\"must_not\":[{\"key\":\"a\",\"range\":{\"lt\":true}}]}]}]}",
         "filter: must[0]: should[0]: must_not[0]: range: lt must be a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf b = BUF_INIT;
        char err[DV_ERRMSG_SIZE] = "";
        assert_int_equal(jsonmp_from_text(cases[i].json, strlen(cases[i].json), &b, NULL), DV_OK);
        struct filter *f = NULL;
        int rc = filter_compile(b.data, b.len, &f, err);
        if (rc != DV_EINVAL || strstr(err, cases[i].msg) == NULL)
            print_error("%s\n  got %d \"%s\"\n  want \"%s\"\n", cases[i].json, rc, err,
                        cases[i].msg);
        assert_int_equal(rc, DV_EINVAL);
        assert_null(f);
        assert_non_null(strstr(err, cases[i].msg));
        /* NULL errmsg is allowed. */
        assert_int_equal(filter_compile(b.data, b.len, &f, NULL), DV_EINVAL);
        buf_free(&b);
    }
    /* Duplicate keys (JSON text would merge them; msgpack keeps both). */
    {
        struct buf d = BUF_INIT;
        char e[DV_ERRMSG_SIZE] = "";
        struct filter *df = NULL;
        assert_int_equal(mpw_map(&d, 2), DV_OK);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(mpw_str(&d, "must", 4), DV_OK);
            assert_int_equal(mpw_array(&d, 0), DV_OK);
        }
        assert_int_equal(filter_compile(d.data, d.len, &df, e), DV_EINVAL);
        assert_string_equal(e, "filter: duplicate key \"must\"");
        buf_free(&d);
    }
    /* Nesting too deep. */
    struct buf t = BUF_INIT;
    for (int i = 0; i < 20; i++)
        assert_int_equal(buf_appendf(&t, "{\"must\":"), DV_OK);
    assert_int_equal(buf_appendf(&t, "{}"), DV_OK);
    for (int i = 0; i < 20; i++)
        assert_int_equal(buf_appendf(&t, "}"), DV_OK);
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    struct filter *f = NULL;
    assert_int_equal(jsonmp_from_text((const char *)t.data, t.len, &b, NULL), DV_OK);
    assert_int_equal(filter_compile(b.data, b.len, &f, err), DV_EINVAL);
    assert_non_null(strstr(err, "nested deeper"));
    /* Every truncation of a valid filter is refused cleanly. */
    const char *good = "{\"must\":[{\"key\":\"a.b[]\",\"match\":{\"any\":[\"x\",\"yy\"]}},"
                       "{\"has_id\":[1,\"550e8400-e29b-41d4-a716-446655440000\"]}],"
                       "\"should\":{\"key\":\"n\",\"range\":{\"gte\":1.5,\"lt\":7}}}";
    buf_reset(&b);
    assert_int_equal(jsonmp_from_text(good, strlen(good), &b, NULL), DV_OK);
    for (size_t k = 0; k < b.len; k++) {
        uint8_t *c = malloc(k ? k : 1);
        memcpy(c, b.data, k);
        assert_int_equal(filter_compile(c, k, &f, err), DV_EINVAL);
        free(c);
    }
    assert_int_equal(filter_compile(b.data, b.len, &f, err), DV_OK);
    filter_free(f);
    buf_free(&b);
    buf_free(&t);
}

/* A corrupt payload is never read out of bounds. */
static void test_corrupt_payload(void **state)
{
    struct filter *f =
        compile("{\"should\":[{\"key\":\"a.b\",\"match\":{\"value\":\"x\"}},"
                "{\"key\":\"t[]\",\"range\":{\"gt\":0}},{\"is_empty\":{\"key\":\"z\"}},"
                "{\"key\":\"t\",\"values_count\":{\"gt\":1}}]}");
    const char *p = "{\"t\":[1,2,3],\"a\":{\"b\":\"y\",\"c\":[1.5,\"s\"]},\"z\":null}";
    struct buf b = BUF_INIT;
    assert_int_equal(jsonmp_from_text(p, strlen(p), &b, NULL), DV_OK);
    for (size_t k = 0; k <= b.len; k++) {
        uint8_t *c = malloc(k ? k : 1);
        memcpy(c, b.data, k);
        (void)filter_match(f, NULL, c, k);
        free(c);
    }
    srand(3);
    for (int i = 0; i < 5000; i++) {
        uint8_t *c = malloc(b.len);
        memcpy(c, b.data, b.len);
        c[rand() % b.len] = (uint8_t)rand();
        (void)filter_match(f, NULL, c, b.len);
        free(c);
    }
    buf_free(&b);
    filter_free(f);
}

/* ---- Reference evaluator on jansson values ---- */

/* Path steps: a name, "[]" (-1) or "[i]" (i). */
struct rstep {
    char name[32];
    int idx; /* -2 name, -1 all, >= 0 index */
};

static int rparse(const char *key, struct rstep *st)
{
    int n = 0;
    const char *p = key;
    while (*p) {
        size_t l = strcspn(p, ".[");
        memcpy(st[n].name, p, l);
        st[n].name[l] = '\0';
        st[n++].idx = -2;
        p += l;
        while (*p == '[') {
            p++;
            st[n].idx = *p == ']' ? -1 : atoi(p);
            n++;
            p = strchr(p, ']') + 1;
        }
        if (*p == '.')
            p++;
    }
    return n;
}

static void rvisit(const struct rstep *st, int n, int i, json_t *v, json_t **out, int *nout)
{
    if (i == n) {
        out[(*nout)++] = v;
        return;
    }
    if (st[i].idx == -2) {
        if (json_is_object(v)) {
            json_t *c = json_object_get(v, st[i].name);
            if (c)
                rvisit(st, n, i + 1, c, out, nout);
        } else if (json_is_array(v)) {
            for (size_t k = 0; k < json_array_size(v); k++) {
                json_t *e = json_array_get(v, k);
                json_t *c = json_is_object(e) ? json_object_get(e, st[i].name) : NULL;
                if (c)
                    rvisit(st, n, i + 1, c, out, nout);
            }
        }
    } else if (json_is_array(v)) {
        for (size_t k = 0; k < json_array_size(v); k++)
            if (st[i].idx == -1 || (int)k == st[i].idx)
                rvisit(st, n, i + 1, json_array_get(v, k), out, nout);
    }
}

static int rvalues(const char *key, json_t *payload, json_t **out)
{
    struct rstep st[16];
    int n = rparse(key, st), nout = 0;
    if (payload)
        rvisit(st, n, 0, payload, out, &nout);
    return nout;
}

static bool in_list(json_t *list, json_t *v)
{
    for (size_t i = 0; i < json_array_size(list); i++)
        if (json_equal(json_array_get(list, i), v))
            return true;
    return false;
}

static bool rscalar(const char *kind, json_t *arg, json_t *v)
{
    if (strcmp(kind, "value") == 0) {
        if (json_is_string(arg) || json_is_integer(arg))
            return json_typeof(arg) == json_typeof(v) && json_equal(arg, v);
        return json_is_boolean(v) && json_boolean_value(v) == json_boolean_value(arg);
    }
    if (strcmp(kind, "any") == 0)
        return (json_is_string(v) || json_is_integer(v)) && in_list(arg, v);
    if (strcmp(kind, "except") == 0) {
        if (json_is_null(v))
            return false;
        bool strs = json_array_size(arg) == 0 || json_is_string(json_array_get(arg, 0));
        bool same = strs ? json_is_string(v) : json_is_integer(v);
        return !same || !in_list(arg, v);
    }
    /* range: arg is the bounds object */
    if (!json_is_number(v))
        return false;
    double x = json_number_value(v);
    const char *b;
    json_t *bv;
    json_object_foreach(arg, b, bv)
    {
        double y = json_number_value(bv);
        if ((!strcmp(b, "gt") && !(x > y)) || (!strcmp(b, "gte") && !(x >= y)) ||
            (!strcmp(b, "lt") && !(x < y)) || (!strcmp(b, "lte") && !(x <= y)))
            return false;
    }
    return true;
}

static bool reval(json_t *f, const struct pid *id, json_t *payload);

static bool rcond(json_t *c, const struct pid *id, json_t *payload)
{
    json_t *vals[256];
    json_t *key = json_object_get(c, "key");
    if (key) {
        int n = rvalues(json_string_value(key), payload, vals);
        json_t *m = json_object_get(c, "match"), *r = json_object_get(c, "range");
        json_t *vc = json_object_get(c, "values_count");
        if (vc) {
            long long cnt = 0;
            for (int i = 0; i < n; i++)
                cnt += json_is_array(vals[i]) ? (long long)json_array_size(vals[i])
                                              : !json_is_null(vals[i]);
            const char *b;
            json_t *bv;
            json_object_foreach(vc, b, bv)
            {
                long long y = json_integer_value(bv);
                if ((!strcmp(b, "gt") && !(cnt > y)) || (!strcmp(b, "gte") && !(cnt >= y)) ||
                    (!strcmp(b, "lt") && !(cnt < y)) || (!strcmp(b, "lte") && !(cnt <= y)))
                    return false;
            }
            return true;
        }
        const char *kind = "range";
        json_t *arg = r;
        if (m) {
            kind = json_object_iter_key(json_object_iter(m));
            arg = json_object_iter_value(json_object_iter(m));
        }
        for (int i = 0; i < n; i++) {
            if (json_is_array(vals[i])) {
                for (size_t k = 0; k < json_array_size(vals[i]); k++)
                    if (rscalar(kind, arg, json_array_get(vals[i], k)))
                        return true;
            } else if (rscalar(kind, arg, vals[i])) {
                return true;
            }
        }
        return false;
    }
    json_t *e = json_object_get(c, "is_empty"), *nl = json_object_get(c, "is_null");
    if (e || nl) {
        int n = rvalues(json_string_value(json_object_get(e ? e : nl, "key")), payload, vals);
        for (int i = 0; i < n; i++) {
            bool isnull = json_is_null(vals[i]);
            bool empty = isnull || (json_is_array(vals[i]) && json_array_size(vals[i]) == 0);
            if (e && !empty)
                return false;
            if (nl && isnull)
                return true;
        }
        return e != NULL;
    }
    json_t *ids = json_object_get(c, "has_id");
    if (ids) {
        for (size_t i = 0; i < json_array_size(ids); i++) {
            json_t *x = json_array_get(ids, i);
            struct pid p;
            if (json_is_integer(x))
                p = pid_num((uint64_t)json_integer_value(x));
            else
                pid_parse_uuid(json_string_value(x), json_string_length(x), &p);
            if (pid_eq(&p, id))
                return true;
        }
        return false;
    }
    return reval(c, id, payload);
}

static bool reval(json_t *f, const struct pid *id, json_t *payload)
{
    json_t *l;
    size_t i;
    json_t *c;
    if ((l = json_object_get(f, "must")))
        json_array_foreach(l, i, c) if (!rcond(c, id, payload)) return false;
    if ((l = json_object_get(f, "must_not")))
        json_array_foreach(l, i, c) if (rcond(c, id, payload)) return false;
    if ((l = json_object_get(f, "should")) && json_array_size(l) > 0) {
        bool any = false;
        json_array_foreach(l, i, c) any = any || rcond(c, id, payload);
        if (!any)
            return false;
    }
    if ((l = json_object_get(f, "min_should"))) {
        long long need = json_integer_value(json_object_get(l, "min_count")), got = 0;
        json_array_foreach(json_object_get(l, "conditions"), i, c) got += rcond(c, id, payload);
        if (got < need)
            return false;
    }
    return true;
}

/* ---- Random payloads and filters ---- */

static const char *const rkeys[] = {"a",         "b",   "tags",   "tags[]",  "objs.n", "objs[].n",
                                    "objs[0].n", "m.a", "m.tags", "missing", "objs",   "m"};
static const char *const rstrs[] = {"x", "y", "z", ""};

static json_t *rscalar_value(void)
{
    switch (rand() % 7) {
    case 0:
        return json_integer(rand() % 7 - 3);
    case 1:
        return json_real((rand() % 9 - 4) * 0.5);
    case 2:
        return json_string(rstrs[rand() % 4]);
    case 3:
        return json_boolean(rand() % 2);
    case 4:
        return json_null();
    default:
        return json_integer(rand() % 3);
    }
}

static json_t *rarray(void)
{
    json_t *a = json_array();
    int n = rand() % 4;
    for (int i = 0; i < n; i++)
        json_array_append_new(a, rand() % 8 ? rscalar_value() : json_array());
    return a;
}

static json_t *rpayload(void)
{
    json_t *p = json_object();
    const char *top[] = {"a", "b", "tags", "objs", "m"};
    for (int i = 0; i < 5; i++) {
        int r = rand() % 4;
        if (r == 0)
            continue;
        json_t *v;
        if (i == 3) { /* objs: array of maps, mixed with scalars, or a map */
            if (rand() % 5 == 0) {
                v = json_object();
                json_object_set_new(v, "n", rscalar_value());
            } else {
                v = json_array();
                int n = rand() % 4;
                for (int k = 0; k < n; k++) {
                    json_t *o = json_object();
                    if (rand() % 4)
                        json_object_set_new(o, "n", rand() % 3 ? rscalar_value() : rarray());
                    json_array_append_new(v, rand() % 6 ? o : (json_decref(o), rscalar_value()));
                }
            }
        } else if (i == 4) {
            v = json_object();
            if (rand() % 3)
                json_object_set_new(v, "a", rscalar_value());
            if (rand() % 3)
                json_object_set_new(v, "tags", rarray());
        } else {
            v = r == 1 ? rarray() : rscalar_value();
        }
        json_object_set_new(p, top[i], v);
    }
    return p;
}

static json_t *rbounds(bool count)
{
    const char *names[] = {"gt", "gte", "lt", "lte"};
    json_t *o = json_object();
    int n = 1 + rand() % 2;
    for (int i = 0; i < n; i++) {
        json_t *v = count             ? json_integer(rand() % 4)
                    : rand() % 2 == 0 ? json_integer(rand() % 7 - 3)
                                      : json_real((rand() % 9 - 4) * 0.5);
        json_object_set_new(o, names[rand() % 4], v);
    }
    return o;
}

static json_t *rlist(void)
{
    json_t *l = json_array();
    int n = rand() % 4;
    bool strs = rand() % 2;
    for (int i = 0; i < n; i++)
        json_array_append_new(l,
                              strs ? json_string(rstrs[rand() % 4]) : json_integer(rand() % 7 - 3));
    return l;
}

static json_t *rfilter(int depth);

static json_t *rcondition(int depth)
{
    json_t *c = json_object();
    const char *key = rkeys[rand() % (sizeof rkeys / sizeof rkeys[0])];
    int k = rand() % (depth > 0 ? 10 : 9);
    json_t *m;
    switch (k) {
    case 0:
    case 1: {
        json_object_set_new(c, "key", json_string(key));
        m = json_object();
        int t = rand() % 3;
        json_object_set_new(m, "value",
                            t == 0   ? json_integer(rand() % 7 - 3)
                            : t == 1 ? json_string(rstrs[rand() % 4])
                                     : json_boolean(rand() % 2));
        json_object_set_new(c, "match", m);
        break;
    }
    case 2:
    case 3:
        json_object_set_new(c, "key", json_string(key));
        m = json_object();
        json_object_set_new(m, k == 2 ? "any" : "except", rlist());
        json_object_set_new(c, "match", m);
        break;
    case 4:
        json_object_set_new(c, "key", json_string(key));
        json_object_set_new(c, "range", rbounds(false));
        break;
    case 5:
        json_object_set_new(c, "key", json_string(key));
        json_object_set_new(c, "values_count", rbounds(true));
        break;
    case 6:
    case 7:
        m = json_object();
        json_object_set_new(m, "key", json_string(key));
        json_object_set_new(c, k == 6 ? "is_empty" : "is_null", m);
        break;
    case 8: {
        json_t *ids = json_array();
        int n = rand() % 4;
        for (int i = 0; i < n; i++)
            json_array_append_new(ids, rand() % 4 ? json_integer(rand() % 6)
                                                  : json_string("00000000-0000-0000-0000-"
                                                                "000000000001"));
        json_object_set_new(c, "has_id", ids);
        break;
    }
    default:
        json_decref(c);
        return rfilter(depth - 1);
    }
    return c;
}

static json_t *rfilter(int depth)
{
    json_t *f = json_object();
    const char *lists[] = {"must", "should", "must_not"};
    for (int i = 0; i < 3; i++) {
        if (rand() % 2)
            continue;
        json_t *l = json_array();
        int n = rand() % 3;
        for (int k = 0; k < n; k++)
            json_array_append_new(l, rcondition(depth));
        json_object_set_new(f, lists[i], l);
    }
    if (rand() % 6 == 0) {
        json_t *ms = json_object(), *l = json_array();
        int n = rand() % 4;
        for (int k = 0; k < n; k++)
            json_array_append_new(l, rcondition(depth));
        json_object_set_new(ms, "conditions", l);
        json_object_set_new(ms, "min_count", json_integer(rand() % 3));
        json_object_set(f, "min_should", ms);
        json_decref(ms);
    }
    return f;
}

static void test_random_vs_reference(void **state)
{
    srand(20240611);
    struct pid uuid1;
    assert_int_equal(pid_parse_uuid("00000000-0000-0000-0000-000000000001", 36, &uuid1), DV_OK);
    int matched = 0;
    for (int iter = 0; iter < 10000; iter++) {
        json_t *fj = rfilter(2), *pj = rpayload();
        struct buf fb = BUF_INIT, pb = BUF_INIT;
        char err[DV_ERRMSG_SIZE] = "";
        assert_int_equal(jsonmp_from_json(fj, &fb, NULL), DV_OK);
        assert_int_equal(jsonmp_from_json(pj, &pb, NULL), DV_OK);
        struct filter *f = NULL;
        int rc = filter_compile(fb.data, fb.len, &f, err);
        if (rc != DV_OK) {
            char *t = json_dumps(fj, JSON_COMPACT);
            print_error("%s: %s\n", t, err);
            free(t);
        }
        assert_int_equal(rc, DV_OK);
        struct pid id = rand() % 5 ? pid_num((uint64_t)(rand() % 6)) : uuid1;
        bool got = filter_match(f, &id, pb.data, pb.len);
        bool want = reval(fj, &id, pj);
        if (got != want) {
            char *ft = json_dumps(fj, JSON_COMPACT), *pt = json_dumps(pj, JSON_COMPACT);
            print_error("filter %s\npayload %s\nid %llu got %d want %d\n", ft, pt,
                        (unsigned long long)id.lo, got, want);
            free(ft);
            free(pt);
        }
        assert_int_equal(got, want);
        matched += got;
        filter_free(f);
        buf_free(&fb);
        buf_free(&pb);
        json_decref(fj);
        json_decref(pj);
    }
    /* Both outcomes are well represented. */
    assert_true(matched > 1000 && matched < 9000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_value),
        cmocka_unit_test(test_match_any_except),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_values_count),
        cmocka_unit_test(test_empty_null),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_has_id),
        cmocka_unit_test(test_combinations),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_corrupt_payload),
        cmocka_unit_test(test_random_vs_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
