/* test_err.c - the error table: every code has a distinct name and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"

static void test_names_unique(void **state)
{
    static const int codes[] = {
#define C(code, v, n, m) code,
        DV_ERR_TABLE(C)
#undef C
    };
    size_t n = sizeof codes / sizeof codes[0];
    assert_int_equal(n, DV_ERR_COUNT);
    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] <= 0);
        assert_string_not_equal(dv_errname(codes[i]), "unknown");
        assert_string_not_equal(dv_strerror(codes[i]), "unknown error");
        for (size_t j = i + 1; j < n; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            assert_string_not_equal(dv_errname(codes[i]), dv_errname(codes[j]));
        }
    }
    assert_string_equal(dv_errname(12345), "unknown");
    assert_string_equal(dv_strerror(-9999), "unknown error");
    assert_string_equal(dv_errname(DV_ENOTFOUND), "not_found");
}

static void test_prefix(void **state)
{
    char buf[DV_ERRMSG_SIZE];
    dv_errmsg_set(buf, "crc mismatch at offset %d", 4096);
    dv_errmsg_prefix(buf, "segment %d", 12);
    dv_errmsg_prefix(buf, "wal");
    dv_errmsg_prefix(buf, "partition %d", 7);
    assert_string_equal(buf, "partition 7: wal: segment 12: crc mismatch at offset 4096");
    buf[0] = '\0';
    dv_errmsg_prefix(buf, "only");
    assert_string_equal(buf, "only");
    /* Overlong messages are cut, never overflow. */
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    dv_errmsg_set(buf, "%s", big);
    dv_errmsg_prefix(buf, "p");
    assert_int_equal(strlen(buf), DV_ERRMSG_SIZE - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_unique),
        cmocka_unit_test(test_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
