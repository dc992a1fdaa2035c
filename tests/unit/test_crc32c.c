/* test_crc32c.c - check vectors, incremental use, hardware path against the table path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"

static uint64_t rng_state = 777;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Bit-at-a-time reference straight from the definition, independent of both fast paths. */
static uint32_t crc_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}

/* Check values from RFC 3720 (iSCSI) appendix B.4 and the CRC catalogue. */
static void check_vectors(void)
{
    uint8_t buf[48];
    assert_int_equal(crc32c("123456789", 9), 0xe3069283u);
    assert_int_equal(crc32c("", 0), 0);
    assert_int_equal(crc32c(NULL, 0), 0);
    assert_int_equal(crc32c("a", 1), 0xc1d04330u);
    memset(buf, 0, 32);
    assert_int_equal(crc32c(buf, 32), 0x8a9136aau);
    memset(buf, 0xff, 32);
    assert_int_equal(crc32c(buf, 32), 0x62a8ab43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(crc32c(buf, 32), 0x46dd794eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(crc32c(buf, 32), 0x113fdb5cu);
    /* RFC 3720 B.4: an iSCSI read command PDU. */
    static const uint8_t pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    assert_int_equal(crc32c(pdu, sizeof pdu), 0xd9963a56u);
}

static void test_vectors_best(void **state)
{
    crc32c_force_table(false);
    check_vectors();
}

static void test_vectors_table(void **state)
{
    crc32c_force_table(true);
    assert_string_equal(crc32c_impl(), "table");
    check_vectors();
    crc32c_force_table(false);
}

static void test_impl_name(void **state)
{
    crc32c_force_table(false);
    const char *n = crc32c_impl();
    assert_true(strcmp(n, "sse4.2") == 0 || strcmp(n, "armv8") == 0 || strcmp(n, "table") == 0);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        assert_string_equal(n, "sse4.2");
#endif
}

/* Every length 0..1024 at every start offset 0..7: fast path == table == reference. */
static void test_hw_equals_table(void **state)
{
    static uint8_t buf[1024 + 16];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rng();
    crc32c_force_table(false);
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len <= 1024; len++) {
            uint32_t t = crc32c_update_table(0, buf + off, len);
            uint32_t h = crc32c_update(0, buf + off, len);
            if (t != h)
                fail_msg("offset %zu length %zu: best %08x table %08x", off, len, h, t);
            if (len < 200 || len % 61 == 0)
                assert_int_equal(t, crc_ref(buf + off, len));
        }
    }
}

/* Any split of a buffer into pieces gives the same CRC as one call, on both paths. */
static void test_incremental(void **state)
{
    static uint8_t buf[3000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rng();
    uint32_t whole = crc_ref(buf, sizeof buf);
    for (int pass = 0; pass < 2; pass++) {
        crc32c_force_table(pass == 1);
        for (int trial = 0; trial < 200; trial++) {
            uint32_t c = 0;
            size_t pos = 0;
            while (pos < sizeof buf) {
                size_t n = (size_t)(rng() % 100);
                if (n > sizeof buf - pos)
                    n = sizeof buf - pos;
                c = crc32c_update(c, buf + pos, n);
                pos += n;
            }
            assert_int_equal(c, whole);
        }
    }
    crc32c_force_table(false);
}

static void test_detects_bit_flips(void **state)
{
    uint8_t buf[256];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rng();
    uint32_t c = crc32c(buf, sizeof buf);
    for (size_t bit = 0; bit < sizeof buf * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(crc32c(buf, sizeof buf), c);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_best), cmocka_unit_test(test_vectors_table),
        cmocka_unit_test(test_impl_name),    cmocka_unit_test(test_hw_equals_table),
        cmocka_unit_test(test_incremental),  cmocka_unit_test(test_detects_bit_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
