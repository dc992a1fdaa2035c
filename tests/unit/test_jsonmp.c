/* test_jsonmp.c - JSON <-> msgpack: round trips, integer and float forms, unicode, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "jsonmp.h"
#include "mpk.h"

/* text -> msgpack -> text gives back exactly `want` (compact form). */
static void text_round_trip(const char *in, const char *want)
{
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE] = "";
    int prc = jsonmp_from_text(in, strlen(in), &b, err);
    if (prc != DV_OK)
        print_error("%s: %s\n", in, err);
    assert_int_equal(prc, DV_OK);
    char *out = NULL;
    int rc = jsonmp_to_text(b.data, b.len, &out, err);
    if (rc != DV_OK)
        print_error("%s: %s\n", in, err);
    assert_int_equal(rc, DV_OK);
    if (strcmp(out, want) != 0)
        print_error("in %s\nout %s\nwant %s\n", in, out, want);
    assert_string_equal(out, want);
    free(out);
    /* And through a jansson value: the same tree. */
    json_t *v = NULL, *ref = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(ref);
    assert_int_equal(jsonmp_to_json(b.data, b.len, &v, err), DV_OK);
    assert_true(json_equal(v, ref));
    json_decref(v);
    json_decref(ref);
    buf_free(&b);
}

static void test_text_round_trips(void **state)
{
    const char *same[] = {
        "null",
        "true",
        "false",
        "0",
        "-1",
        "[]",
        "{}",
        "\"\"",
        "{\"b\":1,\"a\":2,\"c\":[1,-2,3]}",
        "{\"z\":{\"y\":{\"x\":[[],[{}],[null,true,false]]}}}",
        "[1.5,-0.25,0.1,1.0,-0.0,1e+20,1e-07,3.141592653589793,123456789.125]",
        "[9223372036854775807,-9223372036854775808,4294967296,-4294967297]",
        "\"tab\\there \\\"q\\\" back\\\\slash\\nnl \\u0001\\u001f\"",
        "{\"h\\u00e9llo\":\"w\\u00f6rld\"}",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        /* The escapes of non-ASCII characters come back as raw UTF-8. */
        if (strstr(same[i], "\\u00e9") != NULL)
            text_round_trip(same[i], "{\"h\xc3\xa9llo\":\"w\xc3\xb6rld\"}");
        else
            text_round_trip(same[i], same[i]);
    }
    /* Whitespace goes; key order stays. */
    text_round_trip(" { \"k\" : [ 1 , 2 ] ,\n \"a\" : { } } ", "{\"k\":[1,2],\"a\":{}}");
    /* Unicode: raw UTF-8, escaped BMP, surrogate pairs, and an embedded NUL. */
    text_round_trip("\"\xe6\x97\xa5\xe6\x9c\xac \\ud83d\\ude00 \xf0\x9f\x98\x80\"",
                    "\"\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xf0\x9f\x98\x80\"");
    text_round_trip("\"a\\u0000b\"", "\"a\\u0000b\"");
    text_round_trip("1E3", "1000.0");
    text_round_trip("2.50", "2.5");
}

static void test_integer_encodings(void **state)
{
    struct {
        const char *text;
        uint8_t first;
        size_t len;
    } cases[] = {
        {"0", 0x00, 1},     {"127", 0x7f, 1},        {"128", 0xcc, 2},    {"65535", 0xcd, 3},
        {"65536", 0xce, 5}, {"4294967296", 0xcf, 9}, {"-1", 0xff, 1},     {"-32", 0xe0, 1},
        {"-33", 0xd0, 2},   {"-129", 0xd1, 3},       {"-32769", 0xd2, 5}, {"-2147483649", 0xd3, 9},
        {"1.0", 0xcb, 9},   {"0.0", 0xcb, 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf b = BUF_INIT;
        assert_int_equal(jsonmp_from_text(cases[i].text, strlen(cases[i].text), &b, NULL), DV_OK);
        assert_int_equal(b.len, cases[i].len);
        assert_int_equal(b.data[0], cases[i].first);
        buf_free(&b);
    }
}

/* A random JSON tree of bounded depth. */
static json_t *random_json(int depth)
{
    int k = rand() % (depth > 0 ? 9 : 6);
    switch (k) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rand() % 2);
    case 2: {
        json_int_t v = (json_int_t)((uint64_t)rand() << 40 ^ (uint64_t)rand() << 20 ^ rand());
        int shift = rand() % 64;
        v >>= shift;
        return json_integer(rand() % 2 ? v : -v);
    }
    case 3:
        return json_real((rand() % 2 ? 1 : -1) * ldexp(rand(), rand() % 200 - 100));
    case 4:
    case 5: {
        char s[16];
        int n = rand() % 8;
        for (int i = 0; i < n; i++)
            s[i] = (char)(" az\"\\\n\x01\x7f"[rand() % 9]);
        return json_stringn(s, (size_t)n);
    }
    case 6:
    case 7: {
        json_t *a = json_array();
        int n = rand() % 5;
        for (int i = 0; i < n; i++)
            json_array_append_new(a, random_json(depth - 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        int n = rand() % 5;
        for (int i = 0; i < n; i++) {
            char key[8];
            snprintf(key, sizeof key, "k%d", rand() % 10);
            json_object_set_new(o, key, random_json(depth - 1));
        }
        return o;
    }
    }
}

static void test_random_trees(void **state)
{
    srand(11);
    for (int iter = 0; iter < 2000; iter++) {
        json_t *v = random_json(5), *back = NULL;
        struct buf b = BUF_INIT;
        char err[DV_ERRMSG_SIZE];
        assert_int_equal(jsonmp_from_json(v, &b, err), DV_OK);
        /* The reader accepts the whole encoding. */
        struct mpk r;
        mpk_init(&r, b.data, b.len);
        assert_int_equal(mpk_skip(&r), DV_OK);
        assert_true(mpk_done(&r));
        assert_int_equal(jsonmp_to_json(b.data, b.len, &back, err), DV_OK);
        assert_true(json_equal(v, back));
        /* Text output parses back to an equal tree, and matches jansson's own compact
         * output when no reals are involved (jansson prints reals differently). */
        char *text = NULL;
        assert_int_equal(jsonmp_to_text(b.data, b.len, &text, err), DV_OK);
        json_t *parsed = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(parsed);
        assert_true(json_equal(v, parsed));
        if (strchr(text, '.') == NULL && strchr(text, 'e') == NULL) {
            char *ref = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            assert_string_equal(text, ref);
            free(ref);
        }
        free(text);
        json_decref(parsed);
        json_decref(back);
        json_decref(v);
        buf_free(&b);
    }
}

static void test_parse_errors(void **state)
{
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(mpw_nil(&b), DV_OK); /* failures leave what was there */
    const char *bad = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    assert_int_equal(jsonmp_from_text(bad, strlen(bad), &b, err), DV_EPARSE);
    assert_non_null(strstr(err, "line 3"));
    assert_non_null(strstr(err, "column"));
    assert_int_equal(jsonmp_from_text("", 0, &b, err), DV_EPARSE);
    assert_int_equal(jsonmp_from_text("[1,]", 4, &b, err), DV_EPARSE);
    assert_int_equal(jsonmp_from_text("1 2", 3, &b, err), DV_EPARSE);
    assert_int_equal(jsonmp_from_text("\"\xff\"", 3, &b, err), DV_EPARSE);
    assert_int_equal(b.len, 1);
    buf_free(&b);
}

/* Nesting is limited both ways to what the msgpack reader accepts. */
static void test_depth_limit(void **state)
{
    char text[300];
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    for (int depth = 63; depth <= 66; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            text[n++] = '[';
        for (int i = 0; i < depth; i++)
            text[n++] = ']';
        buf_reset(&b);
        int rc = jsonmp_from_text(text, n, &b, err);
        assert_int_equal(rc, depth <= MPK_MAX_DEPTH ? DV_OK : DV_EINVAL);
        assert_int_equal(b.len, depth <= MPK_MAX_DEPTH ? (size_t)depth : 0);
    }
    /* 65 nested arrays in msgpack are refused by the decoder. */
    uint8_t mp[66];
    memset(mp, 0x91, 65);
    mp[64] = 0x90;
    json_t *v;
    char *t;
    assert_int_equal(jsonmp_to_json(mp, 65, &v, err), DV_ECORRUPT);
    assert_int_equal(jsonmp_to_text(mp, 65, &t, err), DV_ECORRUPT);
    assert_int_equal(jsonmp_to_json(mp + 1, 64, &v, err), DV_OK);
    json_decref(v);
    buf_free(&b);
}

/* Each msgpack input that JSON cannot carry fails with the documented code, from both
 * outputs, and names the byte offset. */
static void test_decode_errors(void **state)
{
    struct {
        uint8_t mp[16];
        size_t n;
        int rc;
    } cases[] = {
        {{0xc4, 0x01, 0x00}, 3, DV_EUNSUPPORTED},             /* bin */
        {{0xd4, 0x01, 0x00}, 3, DV_EUNSUPPORTED},             /* fixext1 */
        {{0x81, 0x01, 0xc0}, 3, DV_EUNSUPPORTED},             /* int key */
        {{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, DV_ERANGE},    /* > INT64_MAX */
        {{0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0}, 9, DV_ERANGE}, /* NaN */
        {{0xca, 0x7f, 0x80, 0, 0}, 5, DV_ERANGE},             /* inf f32 */
        {{0xa2, 0xc3, 0x28}, 3, DV_EPARSE},                   /* bad UTF-8 */
        {{0xa3, 0xed, 0xa0, 0x80}, 4, DV_EPARSE},             /* surrogate */
        {{0xa2, 0xc0, 0x80}, 3, DV_EPARSE},                   /* overlong */
        {{0x81, 0xa2, 0xff, 0xfe, 0x01}, 5, DV_EPARSE},       /* bad key */
        {{0xc0, 0xc0}, 2, DV_ECORRUPT},                       /* trailing */
        {{0xc1}, 1, DV_ECORRUPT},                             /* reserved */
        {{0x92, 0x01}, 2, DV_ECORRUPT},                       /* short */
        {{0}, 0, DV_ECORRUPT},                                /* empty */
        {{0x92, 0x01, 0xc4, 0x00}, 4, DV_EUNSUPPORTED},       /* nested bin */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = NULL;
        char *t = NULL;
        char err[DV_ERRMSG_SIZE] = "";
        assert_int_equal(jsonmp_to_json(cases[i].mp, cases[i].n, &v, err), cases[i].rc);
        assert_null(v);
        assert_non_null(strstr(err, "msgpack: at byte"));
        err[0] = '\0';
        assert_int_equal(jsonmp_to_text(cases[i].mp, cases[i].n, &t, err), cases[i].rc);
        assert_null(t);
        assert_non_null(strstr(err, "msgpack: at byte"));
        /* NULL errmsg is allowed. */
        assert_int_equal(jsonmp_to_json(cases[i].mp, cases[i].n, &v, NULL), cases[i].rc);
    }
}

/* Every truncation of a document fails cleanly (ASan checks the reads). */
static void test_truncations(void **state)
{
    const char *doc = "{\"a\":[1,-300,70000,2.5,\"x\\u00e9y\"],\"b\":{\"c\":null,\"d\":true},"
                      "\"e\":\"a longer string that needs str8 encoding, 32+ bytes long\"}";
    struct buf b = BUF_INIT;
    assert_int_equal(jsonmp_from_text(doc, strlen(doc), &b, NULL), DV_OK);
    for (size_t k = 0; k < b.len; k++) {
        uint8_t *t = malloc(k ? k : 1);
        memcpy(t, b.data, k);
        json_t *v;
        char *text;
        assert_int_equal(jsonmp_to_json(t, k, &v, NULL), DV_ECORRUPT);
        assert_int_equal(jsonmp_to_text(t, k, &text, NULL), DV_ECORRUPT);
        free(t);
    }
    buf_free(&b);
}

/* Floats print in the shortest form that reads back to the same bits. */
static void test_float_text(void **state)
{
    struct buf b = BUF_INIT;
    const double dv[] = {0.1, 1.0 / 3, 1e300, -2.2250738585072014e-308, 5e-324, 100.0, 0.5};
    const char *dwant[] = {
        "0.1", "0.3333333333333333", "1e+300", "-2.2250738585072014e-308", "5e-324", "100.0",
        "0.5"};
    for (size_t i = 0; i < sizeof dv / sizeof dv[0]; i++) {
        buf_reset(&b);
        assert_int_equal(mpw_f64(&b, dv[i]), DV_OK);
        char *t;
        assert_int_equal(jsonmp_to_text(b.data, b.len, &t, NULL), DV_OK);
        assert_string_equal(t, dwant[i]);
        assert_true(strtod(t, NULL) == dv[i]);
        free(t);
    }
    const float fv[] = {0.1f, 16777216.0f, 3.4028235e38f, 1.17549435e-38f};
    const char *fwant[] = {"0.1", "16777216.0", "3.4028235e+38", "1.1754944e-38"};
    for (size_t i = 0; i < sizeof fv / sizeof fv[0]; i++) {
        buf_reset(&b);
        assert_int_equal(mpw_f32(&b, fv[i]), DV_OK);
        char *t;
        assert_int_equal(jsonmp_to_text(b.data, b.len, &t, NULL), DV_OK);
        assert_string_equal(t, fwant[i]);
        assert_true(strtof(t, NULL) == fv[i]);
        free(t);
        /* The jansson value holds the float's exact double. */
        json_t *v;
        assert_int_equal(jsonmp_to_json(b.data, b.len, &v, NULL), DV_OK);
        assert_true(json_real_value(v) == (double)fv[i]);
        json_decref(v);
    }
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_round_trips), cmocka_unit_test(test_integer_encodings),
        cmocka_unit_test(test_random_trees),     cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_depth_limit),      cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_truncations),      cmocka_unit_test(test_float_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
