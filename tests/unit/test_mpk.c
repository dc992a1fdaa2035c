/* test_mpk.c - msgpack reader and writer, cross-checked against msgpack-c as the oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "buf.h"
#include "err.h"
#include "mpk.h"
#include "pid.h"

/* Walks one value with our reader and compares it to msgpack-c's decoded object. */
static void same_as_oracle(struct mpk *r, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        assert_int_equal(mpk_peek(r), MPK_NIL);
        assert_int_equal(mpk_nil(r), DV_OK);
        break;
    case MSGPACK_OBJECT_BOOLEAN: {
        bool v;
        assert_int_equal(mpk_peek(r), MPK_BOOL);
        assert_int_equal(mpk_bool(r, &v), DV_OK);
        assert_int_equal(v, o->via.boolean);
        break;
    }
    case MSGPACK_OBJECT_POSITIVE_INTEGER: {
        uint64_t v;
        assert_int_equal(mpk_peek(r), MPK_UINT);
        assert_int_equal(mpk_u64(r, &v), DV_OK);
        assert_true(v == o->via.u64);
        break;
    }
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: {
        int64_t v;
        assert_int_equal(mpk_peek(r), MPK_INT);
        assert_int_equal(mpk_i64(r, &v), DV_OK);
        assert_true(v == o->via.i64);
        break;
    }
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
        double v;
        assert_int_equal(mpk_peek(r), MPK_FLOAT);
        assert_int_equal(mpk_f64(r, &v), DV_OK);
        assert_memory_equal(&v, &o->via.f64, sizeof v);
        break;
    }
    case MSGPACK_OBJECT_STR: {
        const char *s;
        uint32_t n;
        assert_int_equal(mpk_peek(r), MPK_STR);
        assert_int_equal(mpk_str(r, &s, &n), DV_OK);
        assert_int_equal(n, o->via.str.size);
        assert_memory_equal(s, o->via.str.ptr, n);
        break;
    }
    case MSGPACK_OBJECT_BIN: {
        const void *p;
        uint32_t n;
        assert_int_equal(mpk_peek(r), MPK_BIN);
        assert_int_equal(mpk_bin(r, &p, &n), DV_OK);
        assert_int_equal(n, o->via.bin.size);
        assert_memory_equal(p, o->via.bin.ptr, n);
        break;
    }
    case MSGPACK_OBJECT_ARRAY: {
        uint32_t n;
        assert_int_equal(mpk_peek(r), MPK_ARRAY);
        assert_int_equal(mpk_array(r, &n), DV_OK);
        assert_int_equal(n, o->via.array.size);
        for (uint32_t i = 0; i < n; i++)
            same_as_oracle(r, &o->via.array.ptr[i]);
        break;
    }
    case MSGPACK_OBJECT_MAP: {
        uint32_t n;
        assert_int_equal(mpk_peek(r), MPK_MAP);
        assert_int_equal(mpk_map(r, &n), DV_OK);
        assert_int_equal(n, o->via.map.size);
        for (uint32_t i = 0; i < n; i++) {
            same_as_oracle(r, &o->via.map.ptr[i].key);
            same_as_oracle(r, &o->via.map.ptr[i].val);
        }
        break;
    }
    case MSGPACK_OBJECT_EXT: {
        assert_int_equal(mpk_peek(r), MPK_EXT);
        const uint8_t *s;
        size_t n;
        assert_int_equal(mpk_span(r, &s, &n), DV_OK);
        /* The payload is the tail of the span. */
        assert_true(n >= o->via.ext.size + 2);
        assert_memory_equal(s + n - o->via.ext.size, o->via.ext.ptr, o->via.ext.size);
        break;
    }
    default:
        fail();
    }
}

/* Decodes one whole document with msgpack-c and with our reader and compares them; also
 * checks that mpk_skip and mpk_span agree on the length. */
static void check_doc(const uint8_t *p, size_t n)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)p, n, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, n);
    struct mpk r;
    mpk_init(&r, p, n);
    same_as_oracle(&r, &u.data);
    assert_true(mpk_done(&r));
    mpk_init(&r, p, n);
    assert_int_equal(mpk_skip(&r), DV_OK);
    assert_true(mpk_done(&r));
    const uint8_t *s;
    size_t sn;
    mpk_init(&r, p, n);
    assert_int_equal(mpk_span(&r, &s, &sn), DV_OK);
    assert_ptr_equal(s, p);
    assert_int_equal(sn, n);
    msgpack_unpacked_destroy(&u);
}

/* Every proper prefix of a document, in a buffer of exactly that size (so ASan sees any
 * read past it), is DV_ECORRUPT for skip and never reads out of bounds for typed reads. */
static void check_truncations(const uint8_t *p, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        uint8_t *t = malloc(k ? k : 1);
        assert_non_null(t);
        memcpy(t, p, k);
        struct mpk r;
        mpk_init(&r, t, k);
        assert_int_equal(mpk_skip(&r), DV_ECORRUPT);
        assert_ptr_equal(r.p, t);
        const uint8_t *s;
        size_t sn;
        assert_int_equal(mpk_span(&r, &s, &sn), DV_ECORRUPT);
        /* Typed reads either fail or return something inside the buffer. */
        uint64_t u;
        int64_t i;
        double d;
        const char *str;
        const void *bin;
        uint32_t len;
        bool b;
        struct pid id;
        mpk_init(&r, t, k);
        if (mpk_u64(&r, &u) == DV_OK || mpk_i64(&r, &i) == DV_OK || mpk_f64(&r, &d) == DV_OK ||
            mpk_bool(&r, &b) == DV_OK || mpk_nil(&r) == DV_OK || mpk_pid(&r, &id) == DV_OK)
            assert_true(r.p <= r.end);
        mpk_init(&r, t, k);
        if (mpk_str(&r, &str, &len) == DV_OK)
            assert_true((const uint8_t *)str + len <= t + k);
        if (mpk_bin(&r, &bin, &len) == DV_OK)
            assert_true((const uint8_t *)bin + len <= t + k);
        if (mpk_array(&r, &len) == DV_OK || mpk_map(&r, &len) == DV_OK)
            assert_true(len <= k);
        free(t);
    }
}

/* Compares our writer's bytes with msgpack-c's packer's. */
static void same_bytes(const struct buf *b, const msgpack_sbuffer *sb)
{
    assert_int_equal(b->len, sb->size);
    assert_memory_equal(b->data, sb->data, b->len);
}

static const uint64_t ubounds[] = {0,
                                   1,
                                   127,
                                   128,
                                   255,
                                   256,
                                   65535,
                                   65536,
                                   4294967295ULL,
                                   4294967296ULL,
                                   (uint64_t)INT64_MAX,
                                   (uint64_t)INT64_MAX + 1,
                                   UINT64_MAX};
static const int64_t ibounds[] = {-1,
                                  -31,
                                  -32,
                                  -33,
                                  -127,
                                  -128,
                                  -129,
                                  -32767,
                                  -32768,
                                  -32769,
                                  INT32_MIN + 1,
                                  INT32_MIN,
                                  (int64_t)INT32_MIN - 1,
                                  INT64_MIN + 1,
                                  INT64_MIN,
                                  0,
                                  1,
                                  127,
                                  128,
                                  INT64_MAX};

static void test_integers(void **state)
{
    for (size_t i = 0; i < sizeof ubounds / sizeof ubounds[0]; i++) {
        uint64_t v = ubounds[i];
        struct buf b = BUF_INIT;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        assert_int_equal(mpw_u64(&b, v), DV_OK);
        msgpack_pack_uint64(&pk, v);
        same_bytes(&b, &sb);
        check_doc(b.data, b.len);
        check_truncations(b.data, b.len);
        struct mpk r;
        uint64_t u;
        int64_t s;
        double d;
        mpk_init(&r, b.data, b.len);
        assert_int_equal(mpk_u64(&r, &u), DV_OK);
        assert_true(u == v);
        mpk_init(&r, b.data, b.len);
        if (v > (uint64_t)INT64_MAX) {
            assert_int_equal(mpk_i64(&r, &s), DV_ERANGE);
            assert_ptr_equal(r.p, b.data);
        } else {
            assert_int_equal(mpk_i64(&r, &s), DV_OK);
            assert_true(s == (int64_t)v);
        }
        mpk_init(&r, b.data, b.len);
        assert_int_equal(mpk_f64(&r, &d), DV_OK);
        assert_true(d == (double)v);
        buf_free(&b);
        msgpack_sbuffer_destroy(&sb);
    }
    for (size_t i = 0; i < sizeof ibounds / sizeof ibounds[0]; i++) {
        int64_t v = ibounds[i];
        struct buf b = BUF_INIT;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        assert_int_equal(mpw_i64(&b, v), DV_OK);
        msgpack_pack_int64(&pk, v);
        same_bytes(&b, &sb);
        check_doc(b.data, b.len);
        check_truncations(b.data, b.len);
        struct mpk r;
        uint64_t u;
        int64_t s;
        mpk_init(&r, b.data, b.len);
        assert_int_equal(mpk_i64(&r, &s), DV_OK);
        assert_true(s == v);
        assert_true(mpk_done(&r));
        mpk_init(&r, b.data, b.len);
        assert_int_equal(mpk_u64(&r, &u), v < 0 ? DV_ERANGE : DV_OK);
        buf_free(&b);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* Signed formats holding non-negative values (other encoders write them) read as uint. */
static void test_signed_formats_nonnegative(void **state)
{
    const uint8_t docs[][9] = {
        {0xd0, 0x05},
        {0xd1, 0x00, 0x80},
        {0xd2, 0x00, 0x01, 0x00, 0x00},
        {0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
    };
    const size_t lens[] = {2, 3, 5, 9};
    const uint64_t want[] = {5, 128, 65536, (uint64_t)INT64_MAX};
    for (int i = 0; i < 4; i++) {
        struct mpk r;
        uint64_t u;
        mpk_init(&r, docs[i], lens[i]);
        assert_int_equal(mpk_peek(&r), MPK_UINT);
        assert_int_equal(mpk_u64(&r, &u), DV_OK);
        assert_true(u == want[i]);
        check_doc(docs[i], lens[i]);
    }
}

static void test_nil_bool_float(void **state)
{
    struct buf b = BUF_INIT;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const double dv[] = {0.0,      -0.0,      1.5, -1e300, 3.141592653589793,
                         INFINITY, -INFINITY, NAN, 5e-324};
    const float fv[] = {0.0f, 1.5f, -3.25f, 1e38f, INFINITY, NAN};
    assert_int_equal(mpw_array(&b, 4 + 9 + 6), DV_OK);
    msgpack_pack_array(&pk, 4 + 9 + 6);
    assert_int_equal(mpw_nil(&b), DV_OK);
    msgpack_pack_nil(&pk);
    assert_int_equal(mpw_bool(&b, true), DV_OK);
    msgpack_pack_true(&pk);
    assert_int_equal(mpw_bool(&b, false), DV_OK);
    msgpack_pack_false(&pk);
    assert_int_equal(mpw_nil(&b), DV_OK);
    msgpack_pack_nil(&pk);
    for (size_t i = 0; i < 9; i++) {
        assert_int_equal(mpw_f64(&b, dv[i]), DV_OK);
        msgpack_pack_double(&pk, dv[i]);
    }
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(mpw_f32(&b, fv[i]), DV_OK);
        msgpack_pack_float(&pk, fv[i]);
    }
    same_bytes(&b, &sb);
    check_doc(b.data, b.len);
    check_truncations(b.data, b.len);

    /* Type mismatches do not advance. */
    struct mpk r;
    uint32_t n;
    bool bv;
    double d;
    uint64_t u;
    mpk_init(&r, b.data, b.len);
    assert_int_equal(mpk_array(&r, &n), DV_OK);
    const uint8_t *at = r.p;
    assert_int_equal(mpk_bool(&r, &bv), DV_ETYPE);
    assert_int_equal(mpk_f64(&r, &d), DV_ETYPE);
    assert_int_equal(mpk_u64(&r, &u), DV_ETYPE);
    assert_int_equal(mpk_map(&r, &n), DV_ETYPE);
    assert_ptr_equal(r.p, at);
    assert_int_equal(mpk_nil(&r), DV_OK);
    assert_int_equal(mpk_nil(&r), DV_ETYPE);
    assert_int_equal(mpk_bool(&r, &bv), DV_OK);
    assert_true(bv);
    assert_int_equal(mpk_bool(&r, &bv), DV_OK);
    assert_false(bv);
    assert_int_equal(mpk_nil(&r), DV_OK);
    for (size_t i = 0; i < 9; i++) {
        assert_int_equal(mpk_u64(&r, &u), DV_ETYPE);
        assert_int_equal(mpk_f64(&r, &d), DV_OK);
        if (isnan(dv[i]))
            assert_true(isnan(d));
        else
            assert_true(d == dv[i] && signbit(d) == signbit(dv[i]));
    }
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(mpk_peek(&r), MPK_FLOAT);
        assert_int_equal(mpk_f64(&r, &d), DV_OK);
        if (isnan(fv[i]))
            assert_true(isnan(d));
        else
            assert_true(d == (double)fv[i]);
    }
    assert_true(mpk_done(&r));
    assert_int_equal(mpk_peek(&r), MPK_INVALID);
    assert_int_equal(mpk_nil(&r), DV_ECORRUPT);
    buf_free(&b);
    msgpack_sbuffer_destroy(&sb);
}

static const size_t size_bounds[] = {0, 1, 31, 32, 255, 256, 65535, 65536, 70000};

static void test_str_bin_sizes(void **state)
{
    char *src = malloc(70000);
    assert_non_null(src);
    for (size_t i = 0; i < 70000; i++)
        src[i] = (char)('a' + i % 26);
    for (size_t k = 0; k < sizeof size_bounds / sizeof size_bounds[0]; k++) {
        size_t n = size_bounds[k];
        for (int isbin = 0; isbin < 2; isbin++) {
            struct buf b = BUF_INIT;
            msgpack_sbuffer sb;
            msgpack_packer pk;
            msgpack_sbuffer_init(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            if (isbin) {
                assert_int_equal(mpw_bin(&b, src, n), DV_OK);
                msgpack_pack_bin(&pk, n);
                msgpack_pack_bin_body(&pk, src, n);
            } else {
                assert_int_equal(mpw_str(&b, src, n), DV_OK);
                msgpack_pack_str(&pk, n);
                msgpack_pack_str_body(&pk, src, n);
            }
            same_bytes(&b, &sb);
            check_doc(b.data, b.len);
            if (n <= 256)
                check_truncations(b.data, b.len);
            struct mpk r;
            const char *s;
            const void *p;
            uint32_t len;
            mpk_init(&r, b.data, b.len);
            if (isbin) {
                assert_int_equal(mpk_str(&r, &s, &len), DV_ETYPE);
                assert_int_equal(mpk_bin(&r, &p, &len), DV_OK);
                assert_int_equal(len, n);
                assert_memory_equal(p, src, n);
            } else {
                assert_int_equal(mpk_bin(&r, &p, &len), DV_ETYPE);
                assert_int_equal(mpk_str(&r, &s, &len), DV_OK);
                assert_int_equal(len, n);
                assert_memory_equal(s, src, n);
            }
            assert_true(mpk_done(&r));
            /* Truncations at the interesting points: in the header and one byte short. */
            for (size_t cut = 0; cut < b.len && cut < 6; cut++) {
                mpk_init(&r, b.data, cut);
                assert_int_equal(isbin ? mpk_bin(&r, &p, &len) : mpk_str(&r, &s, &len),
                                 DV_ECORRUPT);
            }
            if (n > 0) {
                mpk_init(&r, b.data, b.len - 1);
                assert_int_equal(isbin ? mpk_bin(&r, &p, &len) : mpk_str(&r, &s, &len),
                                 DV_ECORRUPT);
                assert_int_equal(mpk_skip(&r), DV_ECORRUPT);
            }
            buf_free(&b);
            msgpack_sbuffer_destroy(&sb);
        }
    }
    free(src);
}

static const uint32_t count_bounds[] = {0, 1, 15, 16, 65535, 65536};

static void test_array_map_sizes(void **state)
{
    for (size_t k = 0; k < sizeof count_bounds / sizeof count_bounds[0]; k++) {
        uint32_t n = count_bounds[k];
        for (int ismap = 0; ismap < 2; ismap++) {
            struct buf b = BUF_INIT;
            msgpack_sbuffer sb;
            msgpack_packer pk;
            msgpack_sbuffer_init(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            if (ismap) {
                assert_int_equal(mpw_map(&b, n), DV_OK);
                msgpack_pack_map(&pk, n);
            } else {
                assert_int_equal(mpw_array(&b, n), DV_OK);
                msgpack_pack_array(&pk, n);
            }
            for (uint32_t i = 0; i < n; i++) {
                assert_int_equal(mpw_u64(&b, i), DV_OK);
                msgpack_pack_uint32(&pk, i);
                if (ismap) {
                    assert_int_equal(mpw_i64(&b, -(int64_t)i - 1), DV_OK);
                    msgpack_pack_int64(&pk, -(int64_t)i - 1);
                }
            }
            same_bytes(&b, &sb);
            check_doc(b.data, b.len);
            if (n <= 16)
                check_truncations(b.data, b.len);
            struct mpk r;
            uint32_t got;
            mpk_init(&r, b.data, b.len);
            assert_int_equal(ismap ? mpk_array(&r, &got) : mpk_map(&r, &got), DV_ETYPE);
            assert_int_equal(ismap ? mpk_map(&r, &got) : mpk_array(&r, &got), DV_OK);
            assert_int_equal(got, n);
            if (n > 0) {
                /* One element missing: the count no longer fits, or the skip overruns. */
                mpk_init(&r, b.data, b.len - 1);
                assert_int_equal(mpk_skip(&r), DV_ECORRUPT);
            }
            buf_free(&b);
            msgpack_sbuffer_destroy(&sb);
        }
    }
}

/* Every first byte has the type the spec gives it. */
static void test_peek_table(void **state)
{
    for (int c = 0; c < 256; c++) {
        uint8_t doc[16] = {(uint8_t)c};
        struct mpk r;
        mpk_init(&r, doc, sizeof doc);
        enum mpk_type want;
        if (c <= 0x7f)
            want = MPK_UINT;
        else if (c <= 0x8f)
            want = MPK_MAP;
        else if (c <= 0x9f)
            want = MPK_ARRAY;
        else if (c <= 0xbf)
            want = MPK_STR;
        else if (c == 0xc0)
            want = MPK_NIL;
        else if (c == 0xc1)
            want = MPK_INVALID;
        else if (c <= 0xc3)
            want = MPK_BOOL;
        else if (c <= 0xc6)
            want = MPK_BIN;
        else if (c <= 0xc9)
            want = MPK_EXT;
        else if (c <= 0xcb)
            want = MPK_FLOAT;
        else if (c <= 0xd3)
            want = MPK_UINT; /* the zero payload makes the signed formats non-negative */
        else if (c <= 0xd8)
            want = MPK_EXT;
        else if (c <= 0xdb)
            want = MPK_STR;
        else if (c <= 0xdd)
            want = MPK_ARRAY;
        else if (c <= 0xdf)
            want = MPK_MAP;
        else
            want = MPK_INT;
        assert_int_equal(mpk_peek(&r), want);
        /* Whatever the byte, skipping never reads past the 16 bytes. */
        int rc = mpk_skip(&r);
        assert_true(rc == DV_OK || rc == DV_ECORRUPT);
        if (c == 0xc1)
            assert_int_equal(rc, DV_ECORRUPT);
    }
    struct mpk r;
    mpk_init(&r, NULL, 0);
    assert_true(mpk_done(&r));
    assert_int_equal(mpk_peek(&r), MPK_INVALID);
    assert_int_equal(mpk_skip(&r), DV_ECORRUPT);
}

/* Builds a document holding every type, ext included, and checks it whole and truncated. */
static void test_mixed_document(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "ints", 4);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int64(&pk, -200);
    msgpack_pack_uint64(&pk, 70000);
    msgpack_pack_int8(&pk, -5);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_str_with_body(&pk, "nested", 6);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_double(&pk, 2.5);
    msgpack_pack_bin_with_body(&pk, "\x01\x02\x03", 3);
    msgpack_pack_str_with_body(&pk, "ext", 3);
    msgpack_pack_array(&pk, 6);
    static const size_t ext_sizes[] = {1, 2, 4, 8, 16, 20};
    char payload[20] = {0};
    for (int i = 0; i < 6; i++) {
        msgpack_pack_ext(&pk, ext_sizes[i], 7);
        msgpack_pack_ext_body(&pk, payload, ext_sizes[i]);
    }
    msgpack_pack_uint8(&pk, 9);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_float(&pk, 0.5f);
    check_doc((const uint8_t *)sb.data, sb.size);
    check_truncations((const uint8_t *)sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* Declared counts and lengths larger than the input are rejected before anything trusts them
 * (msgpack-c would try to allocate them). */
static void test_huge_counts(void **state)
{
    const uint8_t a32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    const uint8_t m32[] = {0xdf, 0x0f, 0xff, 0xff, 0xff, 0xc0, 0xc0};
    const uint8_t a16[] = {0xdc, 0x00, 0x03, 0xc0, 0xc0};
    const uint8_t m16[] = {0xde, 0x00, 0x02, 0xc0, 0xc0, 0xc0};
    const uint8_t fixa[] = {0x93, 0xc0, 0xc0};
    const uint8_t s32[] = {0xdb, 0xff, 0xff, 0xff, 0xf0, 'a'};
    const uint8_t b32[] = {0xc6, 0x7f, 0xff, 0xff, 0xff, 'a'};
    const uint8_t e32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 1, 'a'};
    struct {
        const uint8_t *p;
        size_t n;
    } docs[] = {{a32, sizeof a32},   {m32, sizeof m32}, {a16, sizeof a16}, {m16, sizeof m16},
                {fixa, sizeof fixa}, {s32, sizeof s32}, {b32, sizeof b32}, {e32, sizeof e32}};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        struct mpk r;
        uint32_t n;
        const char *s;
        const void *p;
        mpk_init(&r, docs[i].p, docs[i].n);
        assert_int_equal(mpk_skip(&r), DV_ECORRUPT);
        mpk_init(&r, docs[i].p, docs[i].n);
        int rc = DV_OK;
        switch (mpk_peek(&r)) {
        case MPK_ARRAY:
            rc = mpk_array(&r, &n);
            break;
        case MPK_MAP:
            rc = mpk_map(&r, &n);
            break;
        case MPK_STR:
            rc = mpk_str(&r, &s, &n);
            break;
        case MPK_BIN:
            rc = mpk_bin(&r, &p, &n);
            break;
        default:
            rc = DV_ECORRUPT;
        }
        assert_int_equal(rc, DV_ECORRUPT);
        assert_ptr_equal(r.p, docs[i].p);
    }
    /* An exact fit is fine: a map of one pair needs two bytes. */
    const uint8_t ok[] = {0xde, 0x00, 0x01, 0xc0, 0xc0};
    struct mpk r;
    uint32_t n;
    mpk_init(&r, ok, sizeof ok);
    assert_int_equal(mpk_map(&r, &n), DV_OK);
    assert_int_equal(n, 1);
}

static void test_nesting_limit(void **state)
{
    uint8_t doc[200];
    for (int depth = 1; depth <= 70; depth++) {
        /* depth nested one-element arrays around a nil; then the same with an empty one. */
        for (int empty = 0; empty < 2; empty++) {
            size_t n = 0;
            for (int i = 0; i < depth - 1; i++)
                doc[n++] = 0x91;
            if (empty) {
                doc[n++] = 0x90;
            } else {
                doc[n++] = 0x91;
                doc[n++] = 0xc0;
            }
            struct mpk r;
            mpk_init(&r, doc, n);
            int rc = mpk_skip(&r);
            assert_int_equal(rc, depth <= MPK_MAX_DEPTH ? DV_OK : DV_ECORRUPT);
            if (rc == DV_OK)
                assert_true(mpk_done(&r));
        }
    }
    /* Maps nest the same way: {"k": {"k": ...}}. */
    size_t n = 0;
    for (int i = 0; i < 65; i++) {
        doc[n++] = 0x81;
        doc[n++] = 0xa0;
    }
    doc[n++] = 0xc0;
    struct mpk r;
    mpk_init(&r, doc, n);
    assert_int_equal(mpk_skip(&r), DV_ECORRUPT);
    mpk_init(&r, doc + 2, n - 2);
    assert_int_equal(mpk_skip(&r), DV_OK);
    /* A long run of array headers with no end does not recurse or overrun. */
    uint8_t *deep = malloc(100000);
    assert_non_null(deep);
    memset(deep, 0x91, 100000);
    mpk_init(&r, deep, 100000);
    assert_int_equal(mpk_skip(&r), DV_ECORRUPT);
    free(deep);
}

static void test_pid(void **state)
{
    struct buf b = BUF_INIT;
    struct pid num = pid_num(12345678901ULL), uuid, got;
    assert_int_equal(pid_parse_uuid("550e8400-e29b-41d4-a716-446655440000", 36, &uuid), DV_OK);
    uint8_t ub[16];
    pid_uuid_bytes(&uuid, ub);
    assert_int_equal(mpw_pid(&b, &num), DV_OK);
    assert_int_equal(mpw_pid(&b, &uuid), DV_OK);
    assert_int_equal(mpw_bin(&b, ub, 16), DV_OK);
    assert_int_equal(mpw_str(&b, "550E8400E29B41D4A716446655440000", 32), DV_OK);
    struct mpk r;
    mpk_init(&r, b.data, b.len);
    assert_int_equal(mpk_peek(&r), MPK_UINT);
    assert_int_equal(mpk_pid(&r, &got), DV_OK);
    assert_true(pid_eq(&got, &num));
    const uint8_t *at = r.p;
    const char *s;
    uint32_t n;
    struct mpk r2 = r;
    assert_int_equal(mpk_str(&r2, &s, &n), DV_OK);
    assert_int_equal(n, 36);
    assert_memory_equal(s, "550e8400-e29b-41d4-a716-446655440000", 36);
    assert_int_equal(mpk_pid(&r, &got), DV_OK);
    assert_true(r.p > at);
    assert_true(pid_eq(&got, &uuid));
    assert_int_equal(mpk_pid(&r, &got), DV_OK);
    assert_true(pid_eq(&got, &uuid));
    assert_int_equal(mpk_pid(&r, &got), DV_OK);
    assert_true(pid_eq(&got, &uuid));
    assert_true(mpk_done(&r));
    buf_reset(&b);

    /* Errors, none of which advance. */
    assert_int_equal(mpw_i64(&b, -3), DV_OK);
    assert_int_equal(mpw_str(&b, "not-a-uuid", 10), DV_OK);
    assert_int_equal(mpw_bin(&b, ub, 15), DV_OK);
    assert_int_equal(mpw_f64(&b, 1.0), DV_OK);
    assert_int_equal(mpw_nil(&b), DV_OK);
    const int want[] = {DV_ERANGE, DV_EPARSE, DV_EPARSE, DV_ETYPE, DV_ETYPE};
    mpk_init(&r, b.data, b.len);
    for (int i = 0; i < 5; i++) {
        at = r.p;
        assert_int_equal(mpk_pid(&r, &got), want[i]);
        assert_ptr_equal(r.p, at);
        assert_int_equal(mpk_skip(&r), DV_OK);
    }
    assert_int_equal(mpk_pid(&r, &got), DV_ECORRUPT);
    buf_free(&b);
}

static void test_map_find(void **state)
{
    struct buf b = BUF_INIT;
    assert_int_equal(mpw_map(&b, 5), DV_OK);
    assert_int_equal(mpw_str(&b, "a", 1), DV_OK);
    assert_int_equal(mpw_u64(&b, 1), DV_OK);
    assert_int_equal(mpw_u64(&b, 7), DV_OK); /* a non-string key */
    assert_int_equal(mpw_str(&b, "int key", 7), DV_OK);
    assert_int_equal(mpw_str(&b, "nested", 6), DV_OK);
    assert_int_equal(mpw_map(&b, 1), DV_OK);
    assert_int_equal(mpw_str(&b, "a", 1), DV_OK);
    assert_int_equal(mpw_array(&b, 2), DV_OK);
    assert_int_equal(mpw_nil(&b), DV_OK);
    assert_int_equal(mpw_bool(&b, true), DV_OK);
    assert_int_equal(mpw_str(&b, "ab", 2), DV_OK);
    assert_int_equal(mpw_str(&b, "first", 5), DV_OK);
    assert_int_equal(mpw_str(&b, "ab", 2), DV_OK);
    assert_int_equal(mpw_str(&b, "second", 6), DV_OK);

    const uint8_t *v;
    size_t vn;
    struct mpk r;
    uint64_t u;
    const char *s;
    uint32_t n;
    assert_int_equal(mpk_map_find(b.data, b.len, "a", 1, &v, &vn), DV_OK);
    mpk_init(&r, v, vn);
    assert_int_equal(mpk_u64(&r, &u), DV_OK);
    assert_int_equal(u, 1);
    assert_true(mpk_done(&r));
    assert_int_equal(mpk_map_find(b.data, b.len, "ab", 2, &v, &vn), DV_OK);
    mpk_init(&r, v, vn);
    assert_int_equal(mpk_str(&r, &s, &n), DV_OK);
    assert_int_equal(n, 5); /* the first of a repeated key */
    assert_int_equal(mpk_map_find(b.data, b.len, "nested", 6, &v, &vn), DV_OK);
    const uint8_t *v2;
    size_t vn2;
    assert_int_equal(mpk_map_find(v, vn, "a", 1, &v2, &vn2), DV_OK);
    assert_int_equal(vn2, 3);
    assert_int_equal(mpk_map_find(b.data, b.len, "b", 1, &v, &vn), DV_ENOTFOUND);
    assert_int_equal(mpk_map_find(b.data, b.len, "", 0, &v, &vn), DV_ENOTFOUND);
    assert_int_equal(mpk_map_find(b.data, b.len, "abc", 3, &v, &vn), DV_ENOTFOUND);
    /* Not a map; truncated maps. */
    assert_int_equal(mpk_map_find(b.data + 2, 1, "a", 1, &v, &vn), DV_ETYPE);
    assert_int_equal(mpk_map_find(b.data, 0, "a", 1, &v, &vn), DV_ECORRUPT);
    for (size_t cut = 1; cut < b.len; cut++) {
        uint8_t *t = malloc(cut);
        memcpy(t, b.data, cut);
        int rc = mpk_map_find(t, cut, "ab", 2, &v, &vn);
        /* The first "ab" pair ends 10 bytes before the end: cuts before that break the map
         * before it is found. */
        assert_int_equal(rc, cut >= b.len - 10 ? DV_OK : DV_ECORRUPT);
        rc = mpk_map_find(t, cut, "zz", 2, &v, &vn);
        assert_int_equal(rc, DV_ECORRUPT);
        free(t);
    }
    buf_free(&b);
}

/* Mutated documents: our reader never overruns, and whenever it accepts a document
 * msgpack-c accepts it too with the same length and the same values. */
static void test_mutations(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "vector", 6);
    msgpack_pack_bin_with_body(&pk, "0123456789abcdef", 16);
    msgpack_pack_str_with_body(&pk, "tags", 4);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_str_with_body(&pk, "red", 3);
    msgpack_pack_int64(&pk, -1000);
    msgpack_pack_double(&pk, 0.25);
    msgpack_pack_str_with_body(&pk, "m", 1);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_uint16(&pk, 300);
    msgpack_pack_array(&pk, 0);
    srand(7);
    size_t accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = sb.size;
        uint8_t *t = malloc(n);
        memcpy(t, sb.data, n);
        int flips = 1 + rand() % 3;
        for (int f = 0; f < flips; f++)
            t[rand() % n] = (uint8_t)rand();
        size_t len = (size_t)rand() % (n + 1);
        struct mpk r;
        mpk_init(&r, t, len);
        if (mpk_skip(&r) == DV_OK) {
            size_t used = (size_t)(r.p - t);
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            size_t off = 0;
            assert_int_equal(msgpack_unpack_next(&u, (const char *)t, used, &off),
                             MSGPACK_UNPACK_SUCCESS);
            assert_int_equal(off, used);
            mpk_init(&r, t, used);
            same_as_oracle(&r, &u.data);
            msgpack_unpacked_destroy(&u);
            accepted++;
        }
        free(t);
    }
    assert_true(accepted > 100);
    msgpack_sbuffer_destroy(&sb);
}

/* Field-checked decoding: values, and failures that name the field and leave the cursor. */
static void test_dec_values(void **state)
{
    (void)state;
    struct buf b = {0};
    char errmsg[DV_ERRMSG_SIZE] = "";
    assert_int_equal(mpw_array(&b, 8), DV_OK);
    assert_int_equal(mpw_u64(&b, UINT32_MAX), DV_OK);
    assert_int_equal(mpw_u64(&b, (uint64_t)UINT32_MAX + 1), DV_OK);
    assert_int_equal(mpw_str(&b, "name", 4), DV_OK);
    assert_int_equal(mpw_nil(&b), DV_OK);
    assert_int_equal(mpw_bin(&b, "\x01\x02", 2), DV_OK);
    assert_int_equal(mpw_array(&b, 1), DV_OK);
    assert_int_equal(mpw_bool(&b, true), DV_OK);
    assert_int_equal(mpw_nil(&b), DV_OK);
    assert_int_equal(mpw_i64(&b, -5), DV_OK);

    struct mpk_dec d = {.errmsg = errmsg};
    mpk_init(&d.r, b.data, b.len);
    uint32_t n, u32;
    int64_t i64;
    const void *p;
    const uint8_t *raw;
    char name[5];
    assert_int_equal(mpk_dec_tuple(&d, 8, "top"), DV_OK);
    assert_int_equal(mpk_dec_u32(&d, &u32, "a"), DV_OK);
    assert_true(u32 == UINT32_MAX);
    /* Above 2^32 - 1: DV_ERANGE through the default hook, read past the value. */
    struct mpk at = d.r;
    assert_int_equal(mpk_dec_u32(&d, &u32, "b"), DV_EPROTO);
    assert_string_equal(errmsg, "b: value out of range (14 bytes left)");
    d.r = at;
    uint64_t u64;
    assert_int_equal(mpk_dec_u64(&d, &u64, "b"), DV_OK);
    assert_true(u64 == (uint64_t)UINT32_MAX + 1);
    /* A copied string: one byte short of room fails, room for it copies. */
    at = d.r;
    assert_int_equal(mpk_dec_strcpy(&d, name, 3, "name"), DV_EPROTO);
    assert_true(strstr(errmsg, "name: ") == errmsg);
    d.r = at;
    assert_int_equal(mpk_dec_strcpy(&d, name, 4, "name"), DV_OK);
    assert_string_equal(name, "name");
    /* nil and bin through bin_or_nil */
    assert_int_equal(mpk_dec_bin_or_nil(&d, &p, &n, "x"), DV_OK);
    assert_null(p);
    assert_int_equal(n, 0);
    assert_int_equal(mpk_dec_bin_or_nil(&d, &p, &n, "y"), DV_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "\x01\x02", 2);
    /* raw: the bytes of [true], then nil */
    assert_int_equal(mpk_dec_raw_or_nil(&d, &raw, &n, "raw"), DV_OK);
    assert_int_equal(n, 2);
    assert_int_equal(raw[0], 0x91);
    assert_int_equal(raw[1], 0xc3);
    assert_int_equal(mpk_dec_raw_or_nil(&d, &raw, &n, "raw"), DV_OK);
    assert_null(raw);
    assert_int_equal(n, 0);
    /* wrong type */
    assert_int_equal(mpk_dec_u64(&d, &u64, "neg"), DV_EPROTO);
    assert_non_null(strstr(errmsg, "neg: "));
    assert_int_equal(mpk_dec_i64(&d, &i64, "neg"), DV_OK);
    assert_true(i64 == -5);
    assert_true(mpk_done(&d.r));
    assert_int_equal(mpk_dec_nil(&d, "end"), DV_EPROTO);
    assert_string_equal(errmsg, "end: data is corrupt (0 bytes left)");
    free(b.data);
}

struct hooked {
    struct mpk_dec d;
    int calls;
    int last_rc;
};

/* A hook in the style of the users': its own wording and return code. */
static int hook(struct mpk_dec *d, int rc, const char *field)
{
    struct hooked *h = (struct hooked *)d;
    h->calls++;
    h->last_rc = rc;
    dv_errmsg_set(d->errmsg, "test: %s", field);
    return DV_ECORRUPT;
}

/* Tuples and lists: wrong lengths, counts the bytes cannot hold or above the maximum. */
static void test_dec_lists(void **state)
{
    (void)state;
    struct buf b = {0};
    char errmsg[DV_ERRMSG_SIZE] = "";
    uint32_t n;
    assert_int_equal(mpw_array(&b, 3), DV_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mpw_u64(&b, 1), DV_OK);

    struct hooked h = {.d = {.errmsg = errmsg, .fail = hook}};
    mpk_init(&h.d.r, b.data, b.len);
    assert_int_equal(mpk_dec_tuple(&h.d, 2, "pair"), DV_ECORRUPT);
    assert_string_equal(errmsg, "test: pair");
    assert_int_equal(h.last_rc, DV_ECORRUPT);
    mpk_init(&h.d.r, b.data, b.len);
    assert_int_equal(mpk_dec_list(&h.d, &n, 2, 10, "items"), DV_ECORRUPT); /* 3 x 2 > 3 */
    mpk_init(&h.d.r, b.data, b.len);
    assert_int_equal(mpk_dec_list(&h.d, &n, 1, 2, "items"), DV_ECORRUPT); /* 3 > max 2 */
    assert_string_equal(errmsg, "test: items");
    h.d.count_in_errors = true;
    mpk_init(&h.d.r, b.data, b.len);
    assert_int_equal(mpk_dec_list(&h.d, &n, 1, 2, "items"), DV_ECORRUPT);
    assert_string_equal(errmsg, "test: items count 3");
    assert_int_equal(h.calls, 4);
    mpk_init(&h.d.r, b.data, b.len);
    assert_int_equal(mpk_dec_list(&h.d, &n, 1, 3, "items"), DV_OK);
    assert_int_equal(n, 3);
    assert_int_equal(mpk_dec_failf(&h.d, DV_EINVAL, "item %u of %s", 2u, "items"), DV_ECORRUPT);
    assert_string_equal(errmsg, "test: item 2 of items");
    assert_int_equal(h.last_rc, DV_EINVAL);
    free(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),        cmocka_unit_test(test_signed_formats_nonnegative),
        cmocka_unit_test(test_nil_bool_float),  cmocka_unit_test(test_str_bin_sizes),
        cmocka_unit_test(test_array_map_sizes), cmocka_unit_test(test_peek_table),
        cmocka_unit_test(test_mixed_document),  cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_nesting_limit),   cmocka_unit_test(test_pid),
        cmocka_unit_test(test_map_find),        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_dec_values),      cmocka_unit_test(test_dec_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
