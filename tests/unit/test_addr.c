/* test_addr.c - listen versus advertise (wildcards refused, fallbacks), URL splitting, ordinals
 * from StatefulSet host names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"
#include "err.h"

static void test_split(void **state)
{
    char h[ADDR_HOST_MAX];
    unsigned port;
    assert_true(addr_split("tcp://dvec-node-0.dvec-node:7400", h, sizeof h, &port));
    assert_string_equal(h, "dvec-node-0.dvec-node");
    assert_int_equal(port, 7400);
    assert_true(addr_split("http://10.0.0.2:7480/metrics", h, sizeof h, &port));
    assert_string_equal(h, "10.0.0.2");
    assert_int_equal(port, 7480);
    assert_true(addr_split("tcp://[::1]:7400", h, sizeof h, &port));
    assert_string_equal(h, "[::1]");
    assert_true(addr_split("localhost:7310", h, sizeof h, &port));
    assert_string_equal(h, "localhost");
    assert_true(addr_split("tcp://:7400", h, sizeof h, &port));
    assert_string_equal(h, "");
    assert_true(addr_split("http://example", h, sizeof h, &port));
    assert_int_equal(port, 0);
    assert_false(addr_split("tcp://host:", h, sizeof h, &port));
    assert_false(addr_split("tcp://host:99999", h, sizeof h, &port));
    assert_false(addr_split("tcp://host:0", h, sizeof h, &port));
    assert_false(addr_split("tcp://host:7x", h, sizeof h, &port));
    assert_false(addr_split("tcp://[::1", h, sizeof h, &port));
    char small[4];
    assert_false(addr_split("tcp://longhost:1", small, sizeof small, &port));
}

static void test_wildcard(void **state)
{
    assert_true(addr_is_wildcard("tcp://0.0.0.0:7400"));
    assert_true(addr_is_wildcard("tcp://*:7400"));
    assert_true(addr_is_wildcard("tcp://:7400"));
    assert_true(addr_is_wildcard("tcp://[::]:7400"));
    assert_true(addr_is_wildcard("0.0.0.0:7310"));
    assert_false(addr_is_wildcard("tcp://127.0.0.1:7400"));
    assert_false(addr_is_wildcard("tcp://dvec-node-0.dvec-node:7400"));
}

static void test_loopback(void **state)
{
    assert_true(addr_is_loopback("tcp://127.0.0.1:7401"));
    assert_true(addr_is_loopback("tcp://127.3.2.1:7401"));
    assert_true(addr_is_loopback("tcp://localhost:7401"));
    assert_true(addr_is_loopback("tcp://[::1]:7401"));
    assert_false(addr_is_loopback("tcp://10.0.0.1:7401"));
    assert_false(addr_is_loopback("tcp://0.0.0.0:7401"));
    assert_false(addr_is_loopback("tcp://dvec-node-0.dvec-node:7401"));
    assert_false(addr_is_loopback("tcp://127host:7401"));
    assert_false(addr_is_loopback("not a url"));
}

static void test_advertise(void **state)
{
    char out[128], err[DV_ERRMSG_SIZE];
    /* advertise wins; listen when it names a host */
    assert_int_equal(addr_advertise("advertise", "tcp://0.0.0.0:7400", "tcp://n0.dvec:7400", NULL,
                                    out, sizeof out, err),
                     DV_OK);
    assert_string_equal(out, "tcp://n0.dvec:7400");
    assert_int_equal(
        addr_advertise("advertise", "tcp://127.0.0.1:7401", NULL, NULL, out, sizeof out, err),
        DV_OK);
    assert_string_equal(out, "tcp://127.0.0.1:7401");
    assert_int_equal(
        addr_advertise("advertise", "tcp://127.0.0.1:7401", "", NULL, out, sizeof out, err), DV_OK);
    assert_string_equal(out, "tcp://127.0.0.1:7401");
    /* a wildcard listen: the fallback host with listen's scheme and port, else an error naming
     * the key to set */
    assert_int_equal(addr_advertise("http_advertise", "http://0.0.0.0:7480", NULL, "n0.dvec", out,
                                    sizeof out, err),
                     DV_OK);
    assert_string_equal(out, "http://n0.dvec:7480");
    assert_int_equal(
        addr_advertise("advertise", "tcp://0.0.0.0:7400", NULL, NULL, out, sizeof out, err),
        DV_EINVAL);
    assert_non_null(strstr(err, "every interface"));
    assert_non_null(strstr(err, "set advertise"));
    /* an advertised wildcard or an address without a port is refused */
    assert_int_equal(addr_advertise("advertise", "tcp://127.0.0.1:1", "tcp://0.0.0.0:7400", NULL,
                                    out, sizeof out, err),
                     DV_EINVAL);
    assert_non_null(strstr(err, "names every interface"));
    assert_int_equal(
        addr_advertise("advertise", "tcp://127.0.0.1:1", "tcp://n0", NULL, out, sizeof out, err),
        DV_EINVAL);
    assert_non_null(strstr(err, "host and a port"));
    /* too long for the output */
    char tiny[8];
    assert_int_equal(
        addr_advertise("advertise", "tcp://127.0.0.1:1", NULL, NULL, tiny, sizeof tiny, err),
        DV_EINVAL);
}

static void test_ordinal(void **state)
{
    uint64_t o = 99;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(addr_ordinal("dvec-coord-2", &o, err), DV_OK);
    assert_int_equal(o, 2);
    assert_int_equal(addr_ordinal("dvec-node-0.dvec-node.db.svc.cluster.local", &o, err), DV_OK);
    assert_int_equal(o, 0);
    assert_int_equal(addr_ordinal("web-12", &o, err), DV_OK);
    assert_int_equal(o, 12);
    assert_int_equal(addr_ordinal("dvec-coord", &o, err), DV_EINVAL);
    assert_non_null(strstr(err, "does not end in -N"));
    assert_int_equal(addr_ordinal("node7", &o, err), DV_EINVAL);
    assert_int_equal(addr_ordinal("-3", &o, err), DV_EINVAL);
    assert_int_equal(addr_ordinal("x-1234567890", &o, err), DV_EINVAL);
    char h[ADDR_HOST_MAX];
    assert_int_equal(addr_hostname(h, sizeof h, err), DV_OK);
    assert_true(h[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),    cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_loopback), cmocka_unit_test(test_advertise),
        cmocka_unit_test(test_ordinal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
