/* test_rpc.c - the native-protocol client against a real rpcsrv on 127.0.0.1: calls, a peer
 * that is not there (fails fast with connect_wait, at the timeout without), a peer that
 * stops and comes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "net_util.h"
#include "rpc.h"
#include "rpcsrv.h"

/* The handler: answers every request with its own bytes reversed. */
static int echo(void *arg, const void *in, size_t n, struct buf *out, struct rpcsrv_result *res)
{
    (void)arg;
    res->type = 0;
    res->code = DV_OK;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = ((const uint8_t *)in)[n - 1 - i];
        if (buf_append(out, &c, 1) != DV_OK)
            return DV_ENOMEM;
    }
    return DV_OK;
}

static struct rpcsrv *serve(const char *url)
{
    struct rpcsrv_opts o = {
        .listen = url, .workers = 2, .contexts = 4, .recv_max = 1 << 20, .handle = echo};
    struct rpcsrv *s;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(rpcsrv_new(&o, &s, err), DV_OK);
    assert_int_equal(rpcsrv_listen(s, err), DV_OK);
    return s;
}

static int call(struct rpc *r, const char *text, char *err)
{
    void *reply = NULL;
    size_t len = 0;
    int rc = rpc_call_raw(r, text, strlen(text), &reply, &len, err);
    if (rc == DV_OK) {
        assert_int_equal(len, strlen(text));
        for (size_t i = 0; i < len; i++)
            assert_int_equal(((char *)reply)[i], text[len - 1 - i]);
    }
    free(reply);
    return rc;
}

static void test_nobody_there(void **state)
{
    (void)state;
    char url[64], err[DV_ERRMSG_SIZE] = "";
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", (unsigned)net_free_port());
    struct rpc_opts o;
    rpc_opts_default(&o);
    o.timeout_ms = 5000;
    o.connect_wait_ms = 150;
    struct rpc *r;
    assert_int_equal(rpc_open(url, &o, &r, err), DV_OK);
    uint64_t t0 = clock_mono_ms();
    int rc = call(r, "hello", err);
    uint64_t dt = clock_mono_ms() - t0;
    printf("# nobody at %s, connect_wait 150 ms: %s \"%s\" after %llu ms\n", url, dv_errname(rc),
           err, (unsigned long long)dt);
    assert_int_equal(rc, DV_EIO);
    assert_non_null(strstr(err, "not connected"));
    assert_true(dt >= 140 && dt < 2000);
    rpc_close(r);

    /* Without connect_wait the request waits out its timeout. */
    o.timeout_ms = 300;
    o.connect_wait_ms = 0;
    assert_int_equal(rpc_open(url, &o, &r, err), DV_OK);
    t0 = clock_mono_ms();
    rc = call(r, "hello", err);
    dt = clock_mono_ms() - t0;
    assert_int_equal(rc, DV_ETIMEDOUT);
    assert_true(dt >= 290 && dt < 3000);
    rpc_close(r);
}

static void test_peer_stops_and_returns(void **state)
{
    (void)state;
    char url[64], err[DV_ERRMSG_SIZE] = "";
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", (unsigned)net_free_port());
    struct rpcsrv *s = serve(url);
    struct rpc_opts o;
    rpc_opts_default(&o);
    o.timeout_ms = 5000;
    o.connect_wait_ms = 1000; /* the first call may come before the dial completes */
    struct rpc *r;
    assert_int_equal(rpc_open(url, &o, &r, err), DV_OK);
    for (int i = 0; i < 20; i++)
        assert_int_equal(call(r, "one two three", err), DV_OK);
    assert_true(rpc_connected(r));

    /* The server goes away: once the connection is gone, calls fail after connect_wait. */
    assert_int_equal(rpcsrv_drain(s, 1000), 0);
    rpcsrv_stop(s);
    uint64_t gone = clock_mono_ms();
    while (rpc_connected(r) && clock_mono_ms() - gone < 2000)
        clock_sleep_ms(5);
    printf("# the client noticed the server was gone after %llu ms\n",
           (unsigned long long)(clock_mono_ms() - gone));
    assert_false(rpc_connected(r));
    int rc = DV_OK;
    uint64_t t0 = clock_mono_ms(), dt = 0;
    for (int i = 0; i < 50 && rc == DV_OK; i++) {
        t0 = clock_mono_ms();
        rc = call(r, "again", err);
        dt = clock_mono_ms() - t0;
    }
    printf("# server stopped: %s \"%s\" after %llu ms\n", dv_errname(rc), err,
           (unsigned long long)dt);
    assert_int_equal(rc, DV_EIO);
    assert_non_null(strstr(err, "not connected"));
    assert_true(dt < 3000);

    /* It comes back on the same URL: the client redials and calls work again. */
    s = serve(url);
    rc = call(r, "back", err);
    if (rc != DV_OK)
        print_error("after the restart: %s: %s\n", dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    rpc_close(r);
    rpcsrv_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nobody_there),
        cmocka_unit_test(test_peer_stops_and_returns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
