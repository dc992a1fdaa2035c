/* test_conditions.c - the issue 19 filter conditions on hand-made payloads: match text and
 * phrase (substring without an index, tokens with one), datetime ranges, geo radius, bounding
 * box and polygon, nested, has_vector, and their compile errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "dtime.h"
#include "err.h"
#include "filter.h"
#include "ftext.h"
#include "geo.h"
#include "jsonmp.h"
#include "pid.h"
#include "pindex.h"

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

/* Matches with the indexes `ix` bound (nix 0: none). */
static bool match_ix(const char *filter, const char *payload, struct pindex **ix, size_t nix)
{
    struct filter *f = compile(filter);
    assert_int_equal(filter_bind(f, ix, nix), DV_OK);
    struct buf b = BUF_INIT;
    if (payload != NULL)
        assert_int_equal(jsonmp_from_text(payload, strlen(payload), &b, NULL), DV_OK);
    struct pid id = pid_num(1);
    bool m = filter_match(f, &id, b.data, b.len);
    buf_free(&b);
    filter_free(f);
    return m;
}

#define YES(f, p) assert_true(match_ix(f, p, NULL, 0))
#define NO(f, p)  assert_false(match_ix(f, p, NULL, 0))

static void test_dtime(void **state)
{
    struct {
        const char *s;
        int64_t us;
    } ok[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1970-01-01", 0},
        {"1970-01-01T00:00", 0},
        {"1970-01-01 00:00:01", 1000000},
        {"1970-01-01t00:00:01z", 1000000},
        {"1970-01-01T01:00:00+01:00", 0},
        {"1970-01-01T01:00:00+0100", 0},
        {"1970-01-01T01:00:00+01", 0},
        {"1969-12-31T23:00:00-01:00", 0},
        {"1970-01-01T00:00:00.5Z", 500000},
        {"1970-01-01T00:00:00.123456789Z", 123456},
        {"1969-12-31T23:59:59.999999Z", -1},
        {"2023-02-08T10:49:00Z", 1675853340000000LL},
        {"2000-02-29", 951782400000000LL},
        {"2016-12-31T23:59:60Z", 1483228800000000LL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t us = 42;
        if (!dtime_parse(ok[i].s, strlen(ok[i].s), &us))
            print_error("%s refused\n", ok[i].s);
        assert_true(dtime_parse(ok[i].s, strlen(ok[i].s), &us));
        assert_int_equal(us, ok[i].us);
    }
    const char *bad[] = {"",
                         "2023",
                         "2023-02",
                         "2023-2-08",
                         "2023-02-30",
                         "2023-13-01",
                         "1900-02-29",
                         "2023-02-08T",
                         "2023-02-08T10",
                         "2023-02-08T24:00:00Z",
                         "2023-02-08T10:60:00Z",
                         "2023-02-08T10:49:00.Z",
                         "2023-02-08T10:49:00.1234567890Z",
                         "2023-02-08T10:49:00+24:00",
                         "2023-02-08T10:49:00X",
                         "2023-02-08T10:49:00Z ",
                         "now"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us;
        if (dtime_parse(bad[i], strlen(bad[i]), &us))
            print_error("%s accepted\n", bad[i]);
        assert_false(dtime_parse(bad[i], strlen(bad[i]), &us));
    }
    char buf[32];
    assert_int_equal(dtime_format(0, buf), 20);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    dtime_format(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
    dtime_format(1675853340000000LL, buf);
    assert_string_equal(buf, "2023-02-08T10:49:00Z");
    /* Round trip over random instants between years 1 and 9999. */
    srand(5);
    for (int i = 0; i < 2000; i++) {
        int64_t us = ((int64_t)rand() << 31 ^ rand()) % 253402300799000000LL - 62135596800000000LL;
        int64_t back;
        size_t n = dtime_format(us, buf);
        assert_true(dtime_parse(buf, n, &back));
        assert_int_equal(back, us);
    }
}

static void test_datetime_range(void **state)
{
    const char *f = "{\"must\":{\"key\":\"t\",\"range\":{\"gte\":\"2023-02-08T10:00:00Z\","
                    "\"lt\":\"2023-02-08T12:00:00+01:00\"}}}"; /* [10:00Z, 11:00Z) */
    YES(f, "{\"t\":\"2023-02-08T10:00:00Z\"}");
    YES(f, "{\"t\":\"2023-02-08T11:30:00+01:00\"}"); /* 10:30Z */
    YES(f, "{\"t\":\"2023-02-08T10:59:59.999999Z\"}");
    YES(f, "{\"t\":\"2023-02-08 10:30\"}"); /* no zone: UTC */
    YES(f, "{\"t\":\"2023-02-08T05:30:00-05:00\"}");
    NO(f, "{\"t\":\"2023-02-08T11:00:00Z\"}");
    NO(f, "{\"t\":\"2023-02-08T09:59:59.999Z\"}");
    NO(f, "{\"t\":\"2023-02-08T10:30:00+01:00\"}"); /* 09:30Z */
    NO(f, "{\"t\":\"2023-02-08\"}");                /* midnight */
    NO(f, "{\"t\":\"yesterday\"}");
    NO(f, "{\"t\":1675850400}"); /* numbers are not datetimes */
    NO(f, "{\"t\":null}");
    NO(f, "{}");
    NO(f, NULL);
    YES(f, "{\"t\":[\"bad\",\"2023-02-08T10:10:00Z\"]}");
    NO(f, "{\"t\":[\"2023-02-07\",\"2023-02-09\"]}");
    /* gt / lte, and a null bound is no bound. */
    f = "{\"must\":{\"key\":\"t\",\"range\":{\"gt\":\"2023-02-08\",\"lte\":null}}}";
    YES(f, "{\"t\":\"2023-02-08T00:00:00.000001Z\"}");
    NO(f, "{\"t\":\"2023-02-08T00:00:00Z\"}");
    NO(f, "{\"t\":\"2023-02-08T01:00:00+01:00\"}");
}

static void test_text_substring(void **state)
{
    /* Without a text index: substring, case-sensitive (Qdrant's rule). */
    const char *f = "{\"must\":{\"key\":\"d\",\"match\":{\"text\":\"good cheap\"}}}";
    YES(f, "{\"d\":\"a good cheap car\"}");
    NO(f, "{\"d\":\"cheap and good\"}");
    NO(f, "{\"d\":\"Good cheap\"}");
    YES(f, "{\"d\":[1,\"so good cheap\"]}");
    NO(f, "{\"d\":5}");
    NO(f, "{}");
    NO(f, "{\"d\":null}");
    YES("{\"must\":{\"key\":\"d\",\"match\":{\"text\":\"\"}}}", "{\"d\":\"x\"}");
    f = "{\"must\":{\"key\":\"d\",\"match\":{\"phrase\":\"od ch\"}}}";
    YES(f, "{\"d\":\"good cheap\"}");
    NO(f, "{\"d\":\"good  cheap\"}");
}

static void test_text_index(void **state)
{
    struct pindex *ix[2];
    struct pindex_params p = pindex_params_default(PINDEX_TEXT);
    assert_int_equal(pindex_create_params("d", &p, &ix[0]), DV_OK);
    p.tok.tokenizer = FTEXT_PREFIX;
    p.tok.min_len = 2;
    p.tok.max_len = 4;
    assert_int_equal(pindex_create_params("items[].name", &p, &ix[1]), DV_OK);
    const char *f = "{\"must\":{\"key\":\"d\",\"match\":{\"text\":\"Cheap, GOOD\"}}}";
    /* Every token present, any order, case folded. */
    assert_true(match_ix(f, "{\"d\":\"good and cheap\"}", ix, 2));
    assert_true(match_ix(f, "{\"d\":\"CHEAP-good\"}", ix, 2));
    assert_false(match_ix(f, "{\"d\":\"goods cheap\"}", ix, 2));
    assert_false(match_ix(f, "{\"d\":\"good\"}", ix, 2));
    assert_true(match_ix(f, "{\"d\":[\"good\",\"cheap good\"]}", ix, 2));
    assert_false(match_ix(f, "{\"d\":[\"good\",\"cheap\"]}", ix, 2)); /* one value holds all */
    /* Without binding the same filter is a substring match. */
    assert_false(match_ix(f, "{\"d\":\"good and cheap\"}", NULL, 0));
    /* A query without tokens matches nothing. */
    assert_false(match_ix("{\"must\":{\"key\":\"d\",\"match\":{\"text\":\" ,;\"}}}",
                          "{\"d\":\"a\"}", ix, 1));
    /* Phrase: consecutive and in order. */
    f = "{\"must\":{\"key\":\"d\",\"match\":{\"phrase\":\"very good\"}}}";
    assert_true(match_ix(f, "{\"d\":\"a very, very GOOD car\"}", ix, 1));
    assert_false(match_ix(f, "{\"d\":\"good very\"}", ix, 1));
    assert_false(match_ix(f, "{\"d\":\"very nice good\"}", ix, 1));
    assert_true(match_ix(f, "{\"d\":\"very good\"}", ix, 1));
    assert_false(match_ix(f, "{\"d\":\"very\"}", ix, 1));
    /* Whitespace tokenizer, case kept. */
    struct pindex *ws;
    p = pindex_params_default(PINDEX_TEXT);
    p.tok.tokenizer = FTEXT_WHITESPACE;
    p.tok.lowercase = false;
    assert_int_equal(pindex_create_params("d", &p, &ws), DV_OK);
    f = "{\"must\":{\"key\":\"d\",\"match\":{\"text\":\"a-b C\"}}}";
    assert_true(match_ix(f, "{\"d\":\"C x a-b\"}", &ws, 1));
    assert_false(match_ix(f, "{\"d\":\"c a-b\"}", &ws, 1));
    assert_false(match_ix(f, "{\"d\":\"a b C\"}", &ws, 1));
    pindex_free(ws);
    /* Prefix tokenizer inside nested: "items[].name" binds to ix[1]; query tokens match the
     * beginnings of field tokens; tokens under 2 characters are dropped. */
    f = "{\"must\":{\"nested\":{\"key\":\"items\",\"filter\":{\"must\":{\"key\":\"name\","
        "\"match\":{\"text\":\"app x ju\"}}}}}}";
    assert_true(match_ix(f, "{\"items\":[{\"name\":\"apple juice\"}]}", ix, 2));
    assert_false(match_ix(f, "{\"items\":[{\"name\":\"apple\"},{\"name\":\"juice\"}]}", ix, 2));
    assert_false(match_ix(f, "{\"items\":[{\"name\":\"pineapple juice\"}]}", ix, 2));
    pindex_free(ix[0]);
    pindex_free(ix[1]);
}

/* Points near the poles, holes in polygons, boxes across the antimeridian. */
static void test_geo(void **state)
{
    /* About 111.2 km per degree of latitude. */
    const char *f = "{\"must\":{\"key\":\"loc\",\"geo_radius\":{\"center\":{\"lon\":13.4,"
                    "\"lat\":52.5},\"radius\":1000}}}";
    YES(f, "{\"loc\":{\"lon\":13.4,\"lat\":52.5}}");
    YES(f, "{\"loc\":{\"lat\":52.508,\"lon\":13.4}}"); /* ~890 m */
    NO(f, "{\"loc\":{\"lon\":13.4,\"lat\":52.51}}");   /* ~1112 m */
    YES(f, "{\"loc\":[{\"lon\":0,\"lat\":0},{\"lon\":13.401,\"lat\":52.5}]}");
    NO(f, "{\"loc\":{\"lon\":13.4}}");
    NO(f, "{\"loc\":{\"lon\":\"13.4\",\"lat\":52.5}}");
    NO(f, "{\"loc\":{\"lon\":13.4,\"lat\":152.5}}");
    NO(f, "{\"loc\":[13.4,52.5]}");
    NO(f, "{\"loc\":null}");
    NO(f, "{}");
    /* A circle around the north pole holds every longitude. */
    f = "{\"must\":{\"key\":\"loc\",\"geo_radius\":{\"center\":{\"lon\":0,\"lat\":90},"
        "\"radius\":20000}}}";
    YES(f, "{\"loc\":{\"lon\":-179,\"lat\":89.9}}");
    YES(f, "{\"loc\":{\"lon\":95,\"lat\":89.85}}");
    NO(f, "{\"loc\":{\"lon\":95,\"lat\":89.8}}");
    f = "{\"must\":{\"key\":\"loc\",\"geo_radius\":{\"center\":{\"lon\":0,\"lat\":0},"
        "\"radius\":0}}}";
    YES(f, "{\"loc\":{\"lon\":0,\"lat\":0}}");
    NO(f, "{\"loc\":{\"lon\":0.000001,\"lat\":0}}");

    f = "{\"must\":{\"key\":\"loc\",\"geo_bounding_box\":{\"top_left\":{\"lon\":10,\"lat\":50},"
        "\"bottom_right\":{\"lon\":20,\"lat\":40}}}}";
    YES(f, "{\"loc\":{\"lon\":15,\"lat\":45}}");
    YES(f, "{\"loc\":{\"lon\":10,\"lat\":50}}");
    NO(f, "{\"loc\":{\"lon\":21,\"lat\":45}}");
    NO(f, "{\"loc\":{\"lon\":15,\"lat\":39}}");
    /* Across the antimeridian: lon >= 170 or lon <= -170. */
    f = "{\"must\":{\"key\":\"loc\",\"geo_bounding_box\":{\"top_left\":{\"lon\":170,\"lat\":10},"
        "\"bottom_right\":{\"lon\":-170,\"lat\":-10}}}}";
    YES(f, "{\"loc\":{\"lon\":175,\"lat\":0}}");
    YES(f, "{\"loc\":{\"lon\":-175,\"lat\":0}}");
    NO(f, "{\"loc\":{\"lon\":0,\"lat\":0}}");

    /* A square with a square hole. */
    f = "{\"must\":{\"key\":\"loc\",\"geo_polygon\":{\"exterior\":{\"points\":["
        "{\"lon\":0,\"lat\":0},{\"lon\":10,\"lat\":0},{\"lon\":10,\"lat\":10},"
        "{\"lon\":0,\"lat\":10},{\"lon\":0,\"lat\":0}]},\"interiors\":[{\"points\":["
        "{\"lon\":4,\"lat\":4},{\"lon\":6,\"lat\":4},{\"lon\":6,\"lat\":6},"
        "{\"lon\":4,\"lat\":6},{\"lon\":4,\"lat\":4}]}]}}}";
    YES(f, "{\"loc\":{\"lon\":2,\"lat\":2}}");
    YES(f, "{\"loc\":{\"lon\":7,\"lat\":5}}");
    NO(f, "{\"loc\":{\"lon\":5,\"lat\":5}}"); /* in the hole */
    NO(f, "{\"loc\":{\"lon\":11,\"lat\":5}}");
    NO(f, "{\"loc\":{\"lon\":-1,\"lat\":-1}}");
    /* A triangle (concave shapes follow the ring). */
    f = "{\"must\":{\"key\":\"loc\",\"geo_polygon\":{\"exterior\":{\"points\":["
        "{\"lon\":0,\"lat\":0},{\"lon\":10,\"lat\":0},{\"lon\":0,\"lat\":10},"
        "{\"lon\":0,\"lat\":0}]}}}}";
    YES(f, "{\"loc\":{\"lon\":2,\"lat\":2}}");
    NO(f, "{\"loc\":{\"lon\":6,\"lat\":6}}");

    /* Haversine against a known distance: Berlin - Paris about 878 km. */
    double d = geo_distance((struct geo_point){13.405, 52.52}, (struct geo_point){2.3522, 48.8566});
    assert_true(d > 876000 && d < 880000);
    /* The radius box holds the circle. */
    srand(11);
    for (int i = 0; i < 5000; i++) {
        struct geo_point c = {rand() % 36000 / 100.0 - 180, rand() % 18000 / 100.0 - 90};
        double r = rand() % 2000000;
        struct geo_box b = geo_radius_box(c, r);
        struct geo_point q = {c.lon + (rand() % 2000 - 1000) / 100.0,
                              c.lat + (rand() % 2000 - 1000) / 100.0};
        if (q.lon < -180 || q.lon > 180 || q.lat < -90 || q.lat > 90)
            continue;
        if (geo_distance(c, q) <= r)
            assert_true(geo_in_box(&b, q));
    }
}

static void test_nested(void **state)
{
    const char *f = "{\"must\":{\"nested\":{\"key\":\"diet\",\"filter\":{\"must\":["
                    "{\"key\":\"food\",\"match\":{\"value\":\"meat\"}},"
                    "{\"key\":\"likes\",\"match\":{\"value\":true}}]}}}}";
    YES(f, "{\"diet\":[{\"food\":\"meat\",\"likes\":true}]}");
    YES(f, "{\"diet\":[{\"food\":\"veg\",\"likes\":true},{\"food\":\"meat\",\"likes\":true}]}");
    /* The conditions hold, but on different elements. */
    NO(f, "{\"diet\":[{\"food\":\"meat\",\"likes\":false},{\"food\":\"veg\",\"likes\":true}]}");
    /* The flat filter matches that one. */
    assert_true(match_ix("{\"must\":[{\"key\":\"diet[].food\",\"match\":{\"value\":\"meat\"}},"
                         "{\"key\":\"diet[].likes\",\"match\":{\"value\":true}}]}",
                         "{\"diet\":[{\"food\":\"meat\",\"likes\":false},"
                         "{\"food\":\"veg\",\"likes\":true}]}",
                         NULL, 0));
    YES(f, "{\"diet\":{\"food\":\"meat\",\"likes\":true}}"); /* a map is one element */
    NO(f, "{\"diet\":[]}");
    NO(f, "{\"diet\":null}");
    NO(f, "{\"diet\":[1,\"meat\",[{\"food\":\"meat\",\"likes\":true}]]}");
    NO(f, "{}");
    /* must_not inside nested applies per element. */
    f = "{\"must\":{\"nested\":{\"key\":\"a.b\",\"filter\":{\"must_not\":{\"key\":\"x\","
        "\"match\":{\"value\":1}}}}}}";
    YES(f, "{\"a\":{\"b\":[{\"x\":1},{\"x\":2}]}}");
    NO(f, "{\"a\":{\"b\":[{\"x\":1},{\"x\":[3,1]}]}}");
    YES(f, "{\"a\":{\"b\":[{}]}}");
    /* Nested inside nested, and is_empty inside nested. */
    f = "{\"must\":{\"nested\":{\"key\":\"o\",\"filter\":{\"must\":[{\"nested\":{\"key\":\"i\","
        "\"filter\":{\"must\":{\"key\":\"v\",\"range\":{\"gt\":5}}}}},"
        "{\"is_empty\":{\"key\":\"e\"}}]}}}}";
    YES(f, "{\"o\":[{\"i\":[{\"v\":1},{\"v\":6}]}]}");
    NO(f, "{\"o\":[{\"i\":[{\"v\":1},{\"v\":6}],\"e\":[1]}]}");
    NO(f, "{\"o\":[{\"i\":[{\"v\":1}]},{\"v\":6}]}");
}

static bool has_vec(void *arg, const char *name, size_t n)
{
    const char *p = arg; /* names separated by commas ("a," holds "a" and "") */
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        if (e == NULL)
            return false;
        p = e + 1;
    }
}

static void test_has_vector(void **state)
{
    struct filter *f = compile("{\"must\":{\"has_vector\":\"image\"},"
                               "\"must_not\":{\"has_vector\":\"\"}}");
    struct pid id = pid_num(3);
    struct filter_point pt = {&id, NULL, 0, has_vec, "text,image"};
    assert_true(filter_match_point(f, &pt));
    pt.arg = "text";
    assert_false(filter_match_point(f, &pt));
    pt.arg = "image,"; /* "" = the unnamed vector */
    assert_false(filter_match_point(f, &pt));
    pt.has_vector = NULL;
    assert_false(filter_match_point(f, &pt));
    assert_false(filter_match(f, &id, NULL, 0));
    filter_free(f);
    f = compile("{\"must_not\":{\"has_vector\":\"x\"}}");
    assert_true(filter_match(f, &id, NULL, 0));
    filter_free(f);
}

/* Each bad condition fails with DV_EINVAL and a message naming the part. */
static void test_errors(void **state)
{
    struct {
        const char *json, *msg;
    } cases[] = {
        {"{\"must\":{\"key\":\"d\",\"match\":{\"text\":5}}}",
         "filter: must: match: text must be a string"},
        {"{\"must\":{\"key\":\"d\",\"match\":{\"phrase\":null}}}",
         "match: phrase must be a string"},
        {"{\"must\":{\"key\":\"d\",\"match\":{\"text\":\"a\",\"phrase\":\"b\"}}}",
         "match: must hold exactly one of value, any, except, text, phrase"},
        {"{\"must\":{\"key\":\"d\",\"match\":{\"word\":\"a\"}}}",
         "match: unknown key \"word\" (value, any, except, text or phrase)"},
        {"{\"must\":{\"key\":\"t\",\"range\":{\"gt\":\"2023-02-30\"}}}",
         "filter: must: range: gt must be a number or an RFC 3339 datetime (e.g. "
         "2023-02-08T10:49:00Z), not \"2023-02-30\""},
        {"{\"must\":{\"key\":\"t\",\"range\":{\"gt\":1,\"lt\":\"2023-02-08\"}}}",
         "range: lt: bounds must be all numbers or all datetimes"},
        {"{\"must\":{\"key\":\"t\",\"range\":{\"gt\":\"2023-02-08\",\"lt\":5}}}",
         "range: lt: bounds must be all numbers or all datetimes"},
        {"{\"must\":{\"key\":\"g\",\"geo_radius\":{\"center\":{\"lon\":1,\"lat\":2}}}}",
         "filter: must: geo_radius: needs center and radius"},
        {"{\"must\":{\"key\":\"g\",\"geo_radius\":{\"center\":{\"lon\":1,\"lat\":2},"
         "\"radius\":-1}}}",
         "geo_radius: radius must be a non-negative number of meters"},
        {"{\"must\":{\"key\":\"g\",\"geo_radius\":{\"center\":{\"lon\":1},\"radius\":1}}}",
         "geo_radius: center: needs lon and lat"},
        {"{\"must\":{\"key\":\"g\",\"geo_radius\":{\"center\":{\"lon\":181,\"lat\":0},"
         "\"radius\":1}}}",
         "geo_radius: center: lon must be within [-180, 180]"},
        {"{\"must\":{\"key\":\"g\",\"geo_radius\":{\"center\":{\"lon\":1,\"lat\":\"2\"},"
         "\"radius\":1}}}",
         "geo_radius: center: lat must be a number"},
        {"{\"must\":{\"key\":\"g\",\"geo_radius\":{\"center\":[1,2],\"radius\":1}}}",
         "geo_radius: center: must be a map with lon and lat"},
        {"{\"must\":{\"key\":\"g\",\"geo_radius\":{\"centre\":{},\"radius\":1}}}",
         "geo_radius: unknown or duplicate key \"centre\" (center, radius)"},
        {"{\"must\":{\"key\":\"g\",\"geo_bounding_box\":{\"top_left\":{\"lon\":0,\"lat\":0},"
         "\"bottom_right\":{\"lon\":1,\"lat\":1}}}}",
         "geo_bounding_box: top_left.lat must not be below bottom_right.lat"},
        {"{\"must\":{\"key\":\"g\",\"geo_bounding_box\":{\"top_left\":{\"lon\":0,\"lat\":0}}}}",
         "geo_bounding_box: needs top_left and bottom_right"},
        {"{\"must\":{\"key\":\"g\",\"geo_polygon\":{\"interiors\":[]}}}",
         "geo_polygon: needs exterior"},
        {"{\"must\":{\"key\":\"g\",\"geo_polygon\":{\"exterior\":{\"points\":["
         "{\"lon\":0,\"lat\":0},{\"lon\":1,\"lat\":0},{\"lon\":0,\"lat\":0}]}}}}",
         "geo_polygon: exterior: points: a ring needs at least 4 points"},
        {"{\"must\":{\"key\":\"g\",\"geo_polygon\":{\"exterior\":{\"points\":["
         "{\"lon\":0,\"lat\":0},{\"lon\":1,\"lat\":0},{\"lon\":1,\"lat\":1},"
         "{\"lon\":0,\"lat\":1}]}}}}",
         "geo_polygon: exterior: points: a ring must be closed"},
        {"{\"must\":{\"key\":\"g\",\"geo_polygon\":{\"exterior\":{\"points\":["
         "{\"lon\":0,\"lat\":0},{\"lon\":1,\"lat\":0},{\"lon\":1,\"lat\":1},"
         "{\"lon\":0,\"lat\":0}]},\"interiors\":[{\"points\":[{\"lon\":0,\"lat\":95}]}]}}}",
         "geo_polygon: interiors[0]: points[0]: lat must be within [-90, 90]"},
        {"{\"must\":{\"key\":\"g\",\"geo_polygon\":{\"exterior\":{\"pts\":[]}}}}",
         "geo_polygon: exterior: unknown or duplicate key \"pts\" (points)"},
        {"{\"must\":{\"key\":\"g\",\"geo_radius\":{},\"match\":{\"value\":1}}}",
         "a key needs exactly one of match, range, values_count, geo_radius"},
        {"{\"must\":{\"nested\":{\"key\":\"a\"}}}", "filter: must: nested: needs key and filter"},
        {"{\"must\":{\"nested\":{\"key\":\"a\",\"filter\":{\"must\":{\"has_id\":[1]}}}}}",
         "must: nested: filter: has_id is not supported inside nested"},
        {"{\"must\":{\"nested\":{\"key\":\"a\",\"filter\":{\"should\":[{\"must\":"
         "{\"has_vector\":\"v\"}}]}}}}",
         "nested: filter: has_vector is not supported inside nested"},
        {"{\"must\":{\"nested\":{\"key\":\"a\",\"filter\":{\"must\":{\"key\":\"x\","
         "\"range\":{\"gt\":[]}}}}}}",
         "filter: must: nested: filter: must: range: gt must be a number"},
        {"{\"must\":{\"nested\":{\"key\":\"a..b\",\"filter\":{}}}}",
         "nested: key \"a..b\": empty step"},
        {"{\"must\":{\"nested\":{\"key\":\"a\",\"filter\":{},\"x\":1}}}",
         "nested: unknown or duplicate key \"x\" (key, filter)"},
        {"{\"must\":{\"nested\":{\"key\":\"a\",\"filter\":{}},\"key\":\"b\"}}",
         "condition mixes kinds"},
        {"{\"must\":{\"has_vector\":1}}", "must: has_vector must be a vector name (a string)"},
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
        buf_free(&b);
    }
    /* Every truncation of a valid filter with the new conditions is refused cleanly. */
    const char *good =
        "{\"must\":[{\"key\":\"g\",\"geo_polygon\":{\"exterior\":{\"points\":["
        "{\"lon\":0,\"lat\":0},{\"lon\":1,\"lat\":0},{\"lon\":1,\"lat\":1},{\"lon\":0,\"lat\":0}]},"
        "\"interiors\":[]}},{\"nested\":{\"key\":\"n\",\"filter\":{\"must\":{\"key\":\"t\","
        "\"range\":{\"gte\":\"2023-02-08T10:49:00.5+01:00\"}}}}},{\"has_vector\":\"v\"},"
        "{\"key\":\"d\",\"match\":{\"phrase\":\"a b\"}}],\"should\":{\"key\":\"g\","
        "\"geo_radius\":{\"center\":{\"lon\":1,\"lat\":2},\"radius\":3.5}}}";
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    struct filter *f = NULL;
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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtime),
        cmocka_unit_test(test_datetime_range),
        cmocka_unit_test(test_text_substring),
        cmocka_unit_test(test_text_index),
        cmocka_unit_test(test_geo),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_has_vector),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
