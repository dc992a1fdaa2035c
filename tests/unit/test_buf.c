/* test_buf.c - buffer growth, formatting, ownership hand-off, LE round trips, cursor overrun. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "err.h"

static void test_append_grows(void **state)
{
    struct buf b = BUF_INIT;
    uint8_t ref[10000];
    for (size_t i = 0; i < sizeof ref; i++)
        ref[i] = (uint8_t)(i * 7 + 3);
    size_t pos = 0, step = 1;
    while (pos < sizeof ref) {
        size_t n = step < sizeof ref - pos ? step : sizeof ref - pos;
        assert_int_equal(buf_append(&b, ref + pos, n), DV_OK);
        pos += n;
        step = step * 3 % 97 + 1;
        assert_int_equal(b.len, pos);
        assert_true(b.cap >= b.len);
    }
    assert_memory_equal(b.data, ref, sizeof ref);
    assert_int_equal(buf_append(&b, NULL, 0), DV_OK);
    assert_int_equal(b.len, sizeof ref);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_reserve(void **state)
{
    struct buf b;
    buf_init(&b);
    assert_int_equal(buf_reserve(&b, 1000), DV_OK);
    assert_true(b.cap >= 1000);
    assert_int_equal(b.len, 0);
    uint8_t *before = b.data;
    /* Appends within the reservation never move the memory. */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_put_u8(&b, (uint8_t)i), DV_OK);
    assert_ptr_equal(b.data, before);
    buf_free(&b);
}

/* Sizes that would overflow fail with DV_ENOMEM and leave the buffer as it was. */
static void test_overflow_is_enomem(void **state)
{
    struct buf b = BUF_INIT;
    assert_int_equal(buf_append(&b, "abc", 3), DV_OK);
    uint8_t *data = b.data;
    size_t cap = b.cap;
    assert_int_equal(buf_reserve(&b, SIZE_MAX), DV_ENOMEM);
    assert_int_equal(buf_reserve(&b, SIZE_MAX - 2), DV_ENOMEM);
    assert_int_equal(buf_reserve(&b, (size_t)PTRDIFF_MAX), DV_ENOMEM);
    assert_int_equal(buf_append(&b, "x", SIZE_MAX - 1), DV_ENOMEM);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "abc", 3);
    buf_free(&b);
}

static void test_appendf(void **state)
{
    struct buf b = BUF_INIT;
    assert_int_equal(buf_appendf(&b, "partition %d", 7), DV_OK);
    assert_int_equal(b.len, strlen("partition 7"));
    assert_string_equal((char *)b.data, "partition 7");
    assert_int_equal(buf_appendf(&b, ", %s=%zu", "points", (size_t)100), DV_OK);
    assert_string_equal((char *)b.data, "partition 7, points=100");
    /* A long piece forces growth in the middle of formatting. */
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(buf_appendf(&b, "[%s]", big), DV_OK);
    assert_int_equal(b.len, strlen("partition 7, points=100") + 2 + sizeof big - 1);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(b.data[b.len - 1], ']');
    /* Empty format adds nothing but keeps the terminator. */
    size_t len = b.len;
    assert_int_equal(buf_appendf(&b, "%s", ""), DV_OK);
    assert_int_equal(b.len, len);
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_true(b.cap > 0);
    assert_int_equal(buf_appendf(&b, "%u", 42u), DV_OK);
    assert_string_equal((char *)b.data, "42");
    buf_free(&b);
}

static void test_detach(void **state)
{
    struct buf b = BUF_INIT;
    size_t len = 99;
    assert_null(buf_detach(&b, &len));
    assert_int_equal(len, 0);
    assert_int_equal(buf_append(&b, "hello", 5), DV_OK);
    uint8_t *p = buf_detach(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "hello", 5);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(p);
    /* The emptied buffer is reusable. */
    assert_int_equal(buf_put_u8(&b, 1), DV_OK);
    buf_free(&b);
}

static void test_le_layout(void **state)
{
    struct buf b = BUF_INIT;
    assert_int_equal(buf_put_u8(&b, 0xab), DV_OK);
    assert_int_equal(buf_put_u16(&b, 0x1234), DV_OK);
    assert_int_equal(buf_put_u32(&b, 0xdeadbeefu), DV_OK);
    assert_int_equal(buf_put_u64(&b, 0x0102030405060708ULL), DV_OK);
    assert_int_equal(buf_put_f32(&b, 1.0f), DV_OK);
    assert_int_equal(buf_put_f64(&b, -2.0), DV_OK);
    static const uint8_t want[] = {
        0xab, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02,
        0x01, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0,
    };
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);

    struct cursor c;
    cursor_init(&c, b.data, b.len);
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f;
    double d;
    assert_int_equal(cursor_get_u8(&c, &u8), DV_OK);
    assert_int_equal(u8, 0xab);
    assert_int_equal(cursor_get_u16(&c, &u16), DV_OK);
    assert_int_equal(u16, 0x1234);
    assert_int_equal(cursor_get_u32(&c, &u32), DV_OK);
    assert_int_equal(u32, 0xdeadbeefu);
    assert_int_equal(cursor_get_u64(&c, &u64), DV_OK);
    assert_int_equal(u64, 0x0102030405060708ULL);
    assert_int_equal(cursor_get_f32(&c, &f), DV_OK);
    assert_true(f == 1.0f);
    assert_int_equal(cursor_get_f64(&c, &d), DV_OK);
    assert_true(d == -2.0);
    assert_int_equal(c.left, 0);
    assert_int_equal(cursor_get_u8(&c, &u8), DV_ECORRUPT);
    buf_free(&b);
}

static void test_raw_helpers(void **state)
{
    uint8_t m[9];
    for (int off = 0; off < 2; off++) {
        buf_wr_le64(m + off, 0x8877665544332211ULL);
        assert_int_equal(m[off], 0x11);
        assert_int_equal(m[off + 7], 0x88);
        assert_int_equal(buf_rd_le64(m + off), 0x8877665544332211ULL);
        buf_wr_le32(m + off, 0xa1b2c3d4u);
        assert_int_equal(buf_rd_le32(m + off), 0xa1b2c3d4u);
        buf_wr_le16(m + off, 0xfe01);
        assert_int_equal(buf_rd_le16(m + off), 0xfe01);
        buf_wr_lef32(m + off, -0.5f);
        assert_true(buf_rd_lef32(m + off) == -0.5f);
        buf_wr_lef32(m + off, INFINITY);
        assert_true(isinf(buf_rd_lef32(m + off)));
    }
}

/* Every read past the end fails with DV_ECORRUPT and changes neither cursor nor output. */
static void test_cursor_overrun(void **state)
{
    const uint8_t data[7] = {1, 2, 3, 4, 5, 6, 7};
    for (size_t have = 0; have <= sizeof data; have++) {
        struct cursor c;
        uint16_t u16 = 0x5555;
        uint32_t u32 = 0x55555555;
        uint64_t u64 = 0x5555555555555555ULL;
        float f = 3.0f;
        double d = 3.0;
        uint8_t out[8] = {0};
        const uint8_t *ref = NULL;

        cursor_init(&c, data, have);
        if (have < 2) {
            assert_int_equal(cursor_get_u16(&c, &u16), DV_ECORRUPT);
            assert_int_equal(u16, 0x5555);
        }
        if (have < 4) {
            assert_int_equal(cursor_get_u32(&c, &u32), DV_ECORRUPT);
            assert_int_equal(u32, 0x55555555);
            assert_int_equal(cursor_get_f32(&c, &f), DV_ECORRUPT);
            assert_true(f == 3.0f);
        }
        assert_int_equal(cursor_get_u64(&c, &u64), DV_ECORRUPT);
        assert_int_equal(u64, 0x5555555555555555ULL);
        assert_int_equal(cursor_get_f64(&c, &d), DV_ECORRUPT);
        assert_true(d == 3.0);
        assert_int_equal(cursor_get_bytes(&c, out, have + 1), DV_ECORRUPT);
        assert_int_equal(out[0], 0);
        assert_int_equal(cursor_get_ref(&c, have + 1, &ref), DV_ECORRUPT);
        assert_null(ref);
        assert_int_equal(cursor_skip(&c, SIZE_MAX), DV_ECORRUPT);
        assert_ptr_equal(c.p, data);
        assert_int_equal(c.left, have);

        /* Exactly what is left succeeds. */
        assert_int_equal(cursor_get_bytes(&c, out, have), DV_OK);
        assert_int_equal(c.left, 0);
        if (have > 0)
            assert_memory_equal(out, data, have);
    }
}

static void test_cursor_ref_and_skip(void **state)
{
    const uint8_t data[] = "abcdefgh";
    struct cursor c;
    const uint8_t *r;
    cursor_init(&c, data, 8);
    assert_int_equal(cursor_skip(&c, 2), DV_OK);
    assert_int_equal(cursor_get_ref(&c, 3, &r), DV_OK);
    assert_ptr_equal(r, data + 2);
    assert_int_equal(c.left, 3);
    assert_int_equal(cursor_get_ref(&c, 0, &r), DV_OK);
    assert_ptr_equal(r, data + 5);
}

/* Declared counts are checked against the bytes left, without overflow. */
static void test_check_count(void **state)
{
    uint8_t data[100] = {0};
    struct cursor c;
    cursor_init(&c, data, sizeof data);
    assert_int_equal(cursor_check_count(&c, 25, 4), DV_OK);
    assert_int_equal(cursor_check_count(&c, 26, 4), DV_ECORRUPT);
    assert_int_equal(cursor_check_count(&c, 0, 4), DV_OK);
    assert_int_equal(cursor_check_count(&c, UINT64_MAX, 8), DV_ECORRUPT);
    /* 2^62 * 4 wraps to 0 in 64 bits: must still be rejected. */
    assert_int_equal(cursor_check_count(&c, 1ULL << 62, 4), DV_ECORRUPT);
    assert_int_equal(cursor_check_count(&c, 100, 1), DV_OK);
    assert_int_equal(cursor_check_count(&c, 101, 1), DV_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_overflow_is_enomem),
        cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_le_layout),
        cmocka_unit_test(test_raw_helpers),
        cmocka_unit_test(test_cursor_overrun),
        cmocka_unit_test(test_cursor_ref_and_skip),
        cmocka_unit_test(test_check_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
