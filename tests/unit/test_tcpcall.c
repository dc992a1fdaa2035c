/* test_tcpcall.c - calls to search ports (proto/tcpcall.c) against real tcpsrv servers on
 * 127.0.0.1: several servers in one call, a reply's error code, a slow server timing out while
 * the others answer, a server that gives no reply, nobody listening, and 8 threads sharing the
 * pools. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "msg.h"
#include "tcpcall.h"
#include "tcpsrv.h"

/* What a server does with a request: answer hello with its name, refuse stats with
 * DV_ESTALE, and, when told to, answer late or not at all. */
struct srv {
    const char *name;
    atomic_int delay_ms, drop;
    struct tcpsrv *s;
    struct tcpcall *c;
};

static int handle(void *arg, const void *in, size_t n, struct buf *out, struct rpcsrv_result *res)
{
    struct srv *v = arg;
    struct msg q;
    if (msg_decode(in, n, &q, res->errmsg) != DV_OK)
        return DV_EPROTO;
    res->type = q.type;
    res->req_id = q.req_id;
    int d = atomic_load(&v->delay_ms);
    if (d)
        clock_sleep_ms((uint64_t)d);
    int rc;
    if (atomic_load(&v->drop)) {
        rc = DV_EINVAL; /* no reply */
    } else if (q.type == MSG_STATS) {
        res->code = DV_ESTALE;
        rc = msg_encode_error(out, q.type, q.req_id, DV_ESTALE, "stale on purpose", 7);
    } else {
        struct msg r = {.type = q.type, .reply = true, .req_id = q.req_id};
        r.u.hello_rep.node_id = (struct msg_str){v->name, (uint32_t)strlen(v->name)};
        r.u.hello_rep.version = (struct msg_str){"t", 1};
        rc = msg_encode(&r, out, res->errmsg);
    }
    msg_free(&q);
    return rc;
}

static struct srv srvs[3] = {{.name = "alpha"}, {.name = "beta"}, {.name = "gamma"}};

static int setup(void **state)
{
    (void)state;
    char err[DV_ERRMSG_SIZE], url[64];
    for (int i = 0; i < 3; i++) {
        struct tcpsrv_opts o = {.listen = "tcp://127.0.0.1:0",
                                .max_message = 1 << 20,
                                .handle = handle,
                                .handle_arg = &srvs[i]};
        if (tcpsrv_open(&o, &srvs[i].s, err) != DV_OK)
            return -1;
        snprintf(url, sizeof url, "tcp://127.0.0.1:%u", tcpsrv_port(srvs[i].s));
        if (tcpcall_open(url, 4, &srvs[i].c, err) != DV_OK)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        tcpcall_close(srvs[i].c);
        tcpsrv_close(srvs[i].s);
    }
    return 0;
}

static const struct msg hello = {.type = MSG_HELLO};

static void test_three_servers(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) { /* the second and third reuse the connections */
        struct tcpcall_job j[3];
        for (int i = 0; i < 3; i++)
            j[i] = (struct tcpcall_job){.c = srvs[i].c, .req = &hello, .timeout_ms = 2000};
        tcpcall_many(j, 3);
        for (int i = 0; i < 3; i++) {
            if (j[i].rc != DV_OK)
                fail_msg("round %d server %d: %s %s", round, i, dv_errname(j[i].rc), j[i].errmsg);
            const struct msg_str *id = &j[i].rep.m.u.hello_rep.node_id;
            assert_int_equal(id->len, strlen(srvs[i].name));
            assert_memory_equal(id->p, srvs[i].name, id->len);
            msg_reply_free(&j[i].rep);
        }
    }
    assert_int_equal(tcpsrv_conns(srvs[0].s), 1); /* one connection, kept and reused */
}

static void test_error_reply(void **state)
{
    (void)state;
    struct msg stats = {.type = MSG_STATS};
    struct tcpcall_job j = {.c = srvs[1].c, .req = &stats, .timeout_ms = 2000};
    tcpcall_many(&j, 1);
    assert_int_equal(j.rc, DV_ESTALE);
    assert_string_equal(j.errmsg, "stale on purpose");
    msg_reply_free(&j.rep);
    j = (struct tcpcall_job){.c = srvs[1].c, .req = &hello, .timeout_ms = 2000};
    tcpcall_many(&j, 1); /* the connection still serves */
    assert_int_equal(j.rc, DV_OK);
    msg_reply_free(&j.rep);
}

static void test_slow_and_silent(void **state)
{
    (void)state;
    atomic_store(&srvs[0].delay_ms, 400);
    atomic_store(&srvs[2].drop, 1);
    struct tcpcall_job j[3];
    for (int i = 0; i < 3; i++)
        j[i] = (struct tcpcall_job){.c = srvs[i].c, .req = &hello, .timeout_ms = 150};
    uint64_t t0 = clock_mono_ms();
    tcpcall_many(j, 3);
    uint64_t took = clock_mono_ms() - t0;
    assert_int_equal(j[0].rc, DV_ETIMEDOUT);
    assert_non_null(strstr(j[0].errmsg, "within 150 ms"));
    assert_int_equal(j[1].rc, DV_OK);
    assert_int_equal(j[2].rc, DV_EIO); /* no reply: the server closed the connection */
    assert_non_null(strstr(j[2].errmsg, "connection lost"));
    assert_true(took >= 150 && took < 400); /* waited for the slow one's timeout, not more */
    for (int i = 0; i < 3; i++)
        msg_reply_free(&j[i].rep);
    atomic_store(&srvs[0].delay_ms, 0);
    atomic_store(&srvs[2].drop, 0);
    clock_sleep_ms(300); /* the slow request ends on the server */
    for (int i = 0; i < 3; i++)
        j[i] = (struct tcpcall_job){.c = srvs[i].c, .req = &hello, .timeout_ms = 2000};
    tcpcall_many(j, 3); /* new connections where the old ones were closed */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(j[i].rc, DV_OK);
        msg_reply_free(&j[i].rep);
    }
}

static void test_nobody_there(void **state)
{
    (void)state;
    char err[DV_ERRMSG_SIZE];
    struct tcpsrv_opts o = {
        .listen = "tcp://127.0.0.1:0", .max_message = 1024, .handle = handle, .handle_arg = srvs};
    struct tcpsrv *s;
    assert_int_equal(tcpsrv_open(&o, &s, err), DV_OK);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", tcpsrv_port(s));
    tcpsrv_close(s); /* the port is free again: nobody listens there */
    struct tcpcall *c;
    assert_int_equal(tcpcall_open(url, 0, &c, err), DV_OK);
    struct tcpcall_job j = {.c = c, .req = &hello, .timeout_ms = 500};
    tcpcall_many(&j, 1);
    assert_int_equal(j.rc, DV_EIO);
    assert_non_null(strstr(j.errmsg, "cannot connect"));
    tcpcall_close(c);
    assert_int_equal(tcpcall_open("ipc:///x", 0, &c, err), DV_EINVAL);
}

static void *caller_main(void *arg)
{
    (void)arg;
    for (int k = 0; k < 200; k++) {
        struct tcpcall_job j[3];
        for (int i = 0; i < 3; i++)
            j[i] = (struct tcpcall_job){.c = srvs[i].c, .req = &hello, .timeout_ms = 5000};
        tcpcall_many(j, 3);
        for (int i = 0; i < 3; i++) {
            if (j[i].rc != DV_OK || j[i].rep.m.u.hello_rep.node_id.p[0] != srvs[i].name[0])
                fail_msg("call %d server %d: %s", k, i, j[i].errmsg);
            msg_reply_free(&j[i].rep);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, caller_main, NULL), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_true(tcpsrv_conns(srvs[0].s) <= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_servers),   cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_slow_and_silent), cmocka_unit_test(test_nobody_there),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
