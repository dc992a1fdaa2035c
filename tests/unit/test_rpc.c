/* test_rpc.c - the native-protocol client against a real rpcsrv on 127.0.0.1: calls, a peer
 * that is not there (fails fast with connect_wait, at the timeout without), a peer that
 * stops and comes back, requests run inline on nng's threads next to ones run by workers. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
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

struct waiting_call {
    struct rpc *r;
    int rc;
    char err[DV_ERRMSG_SIZE];
};

static void *waiting_main(void *arg)
{
    struct waiting_call *w = arg;
    w->rc = call(w->r, "sent before the server listens", w->err);
    return NULL;
}

/* Calls sent while nobody listens wait in their contexts for the connection and are answered
 * once it comes (their replies can overtake the end of their sends: the slot is reused at
 * once); a call that times out waiting leaves its slot usable (slot_renew). Five rounds on one
 * connection. */
static void test_send_waits_for_connection(void **state)
{
    (void)state;
    char url[64], err[DV_ERRMSG_SIZE] = "";
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", (unsigned)net_free_port());
    struct rpc_opts o;
    rpc_opts_default(&o);
    o.timeout_ms = 200;
    o.reconnect_ms = 10;
    struct rpc *r;
    assert_int_equal(rpc_open(url, &o, &r, err), DV_OK);
    for (int round = 0; round < 5; round++) {
        assert_int_equal(call(r, "nobody yet", err), DV_ETIMEDOUT); /* its send never went */
        struct waiting_call w[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            w[i] = (struct waiting_call){.r = r};
            assert_int_equal(pthread_create(&t[i], NULL, waiting_main, &w[i]), 0);
        }
        clock_sleep_ms(20);
        struct rpcsrv *srv = serve(url); /* well within their 200 ms */
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            if (w[i].rc != DV_OK)
                fail_msg("round %d call %d: %s %s", round, i, dv_errname(w[i].rc), w[i].err);
        }
        for (int i = 0; i < 50; i++)
            assert_int_equal(call(r, "and then many more", err), DV_OK);
        assert_int_equal(rpcsrv_drain(srv, 1000), 0);
        rpcsrv_stop(srv);
        uint64_t gone = clock_mono_ms();
        while (rpc_connected(r) && clock_mono_ms() - gone < 2000)
            clock_sleep_ms(5);
        assert_false(rpc_connected(r));
    }
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

/* ---- run_inline ---------------------------------------------------------------------------- */

/* Requests starting with 'i' run inline; "i-slow" ones take 30 ms. The handler checks each ran
 * where it should: nng names its threads "nng:...", the pool's workers keep the program's. */
static atomic_int g_misplaced, g_inline_ran, g_worker_ran;

static bool inline_ok(void *arg, const void *in, size_t n)
{
    (void)arg;
    return n > 0 && ((const char *)in)[0] == 'i';
}

static int echo_where(void *arg, const void *in, size_t n, struct buf *out,
                      struct rpcsrv_result *res)
{
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    bool on_nng = strncmp(name, "nng:", 4) == 0;
    bool want = inline_ok(arg, in, n);
    if (on_nng != want)
        atomic_fetch_add(&g_misplaced, 1);
    atomic_fetch_add(want ? &g_inline_ran : &g_worker_ran, 1);
    if (n >= 6 && memcmp(in, "i-slow", 6) == 0)
        clock_sleep_ms(30);
    return echo(arg, in, n, out, res);
}

struct caller {
    const char *url;
    int id;
    atomic_bool *stop;
    int ok, failed;
};

static void *caller_main(void *arg)
{
    struct caller *c = arg;
    struct rpc_opts o;
    rpc_opts_default(&o);
    o.timeout_ms = 3000;
    o.connect_wait_ms = 1000;
    struct rpc *r;
    char err[DV_ERRMSG_SIZE], text[64];
    if (rpc_open(c->url, &o, &r, err) != DV_OK)
        return NULL;
    for (int i = 0; !atomic_load(c->stop) && i < 100000; i++) {
        snprintf(text, sizeof text, "%s-%d-%d", i % 2 ? "inline" : "worker", c->id, i);
        if (call(r, text, err) == DV_OK)
            c->ok++;
        else
            c->failed++;
    }
    rpc_close(r);
    return NULL;
}

struct slow {
    const char *url;
    int rc;
};

static void *slow_main(void *arg)
{
    struct slow *sl = arg;
    struct rpc_opts o;
    rpc_opts_default(&o);
    o.timeout_ms = 3000;
    o.connect_wait_ms = 1000;
    struct rpc *r;
    char err[DV_ERRMSG_SIZE];
    sl->rc = rpc_open(sl->url, &o, &r, err);
    if (sl->rc != DV_OK)
        return NULL;
    sl->rc = call(r, "i-slow-request", err);
    rpc_close(r);
    return NULL;
}

static void test_inline(void **state)
{
    (void)state;
    char url[64], err[DV_ERRMSG_SIZE] = "";
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", (unsigned)net_free_port());
    struct rpcsrv_opts so = {.listen = url,
                             .workers = 2,
                             .contexts = 8,
                             .recv_max = 1 << 20,
                             .handle = echo_where,
                             .run_inline = inline_ok};
    struct rpcsrv *s;
    assert_int_equal(rpcsrv_new(&so, &s, err), DV_OK);
    assert_int_equal(rpcsrv_listen(s, err), DV_OK);

    /* Four clients mixing both kinds: every reply is its own request's (call checks). */
    atomic_bool stop = false;
    struct caller c[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (struct caller){.url = url, .id = i, .stop = &stop};
        pthread_create(&t[i], NULL, caller_main, &c[i]);
    }
    clock_sleep_ms(500);
    atomic_store(&stop, true);
    int ok = 0, failed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ok += c[i].ok;
        failed += c[i].failed;
    }
    printf("# %d calls answered (%d inline, %d by workers), %d failed, %d misplaced\n", ok,
           atomic_load(&g_inline_ran), atomic_load(&g_worker_ran), failed,
           atomic_load(&g_misplaced));
    assert_int_equal(failed, 0);
    assert_true(atomic_load(&g_inline_ran) > 10 && atomic_load(&g_worker_ran) > 10);
    assert_int_equal(atomic_load(&g_misplaced), 0);

    /* A slow inline request in flight when the server drains: drain waits for it and it is
     * answered; stop returns afterwards and nothing crashes (ASan/TSan builds). */
    struct slow sl = {.url = url};
    pthread_t st;
    int before = atomic_load(&g_inline_ran);
    pthread_create(&st, NULL, slow_main, &sl);
    for (int i = 0; i < 400 && atomic_load(&g_inline_ran) == before; i++)
        clock_sleep_ms(5); /* until the handler runs it */
    int left = rpcsrv_drain(s, 2000);
    pthread_join(st, NULL);
    rpcsrv_stop(s);
    printf("# slow inline request during drain: %s, %d left at the deadline\n", dv_errname(sl.rc),
           left);
    assert_int_equal(left, 0);
    assert_int_equal(sl.rc, DV_OK);
}

/* ---- one connection shared by threads ---------------------------------------------------- */

/* "late-..." requests take 40 ms, longer than the callers' 20 ms timeout. */
static int echo_late(void *arg, const void *in, size_t n, struct buf *out,
                     struct rpcsrv_result *res)
{
    if (n >= 5 && memcmp(in, "late-", 5) == 0)
        clock_sleep_ms(40);
    return echo(arg, in, n, out, res);
}

struct sharer {
    struct rpc *r;
    int id, ok, timed_out, failed;
};

static void *sharer_main(void *arg)
{
    struct sharer *c = arg;
    char err[DV_ERRMSG_SIZE], text[64];
    for (int i = 0; i < 300; i++) {
        bool late = i % 50 == 7;
        snprintf(text, sizeof text, "%s-%d-%d", late ? "late" : "call", c->id, i);
        void *reply = NULL;
        size_t len = 0;
        int rc =
            rpc_call_raw_timeout(c->r, text, strlen(text), &reply, &len, late ? 20 : 2000, err);
        if (rc == DV_OK) {
            /* the reply is this call's, never another's or a late one of an earlier call */
            bool mine = len == strlen(text);
            for (size_t k = 0; mine && k < len; k++)
                mine = ((char *)reply)[k] == text[len - 1 - k];
            if (mine)
                c->ok++;
            else
                c->failed++;
        } else if (rc == DV_ETIMEDOUT && late) {
            c->timed_out++;
        } else {
            c->failed++;
        }
        free(reply);
    }
    return NULL;
}

/* Eight threads share one connection (its contexts are reused from call to call), some calls
 * time out and their replies come late: every reply a call gets is its own. */
static void test_shared_connection(void **state)
{
    (void)state;
    char url[64], err[DV_ERRMSG_SIZE] = "";
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", (unsigned)net_free_port());
    struct rpcsrv_opts so = {
        .listen = url, .workers = 4, .contexts = 16, .recv_max = 1 << 20, .handle = echo_late};
    struct rpcsrv *s;
    assert_int_equal(rpcsrv_new(&so, &s, err), DV_OK);
    assert_int_equal(rpcsrv_listen(s, err), DV_OK);
    struct rpc_opts o;
    rpc_opts_default(&o);
    o.connect_wait_ms = 1000;
    struct rpc *r;
    assert_int_equal(rpc_open(url, &o, &r, err), DV_OK);
    struct sharer c[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        c[i] = (struct sharer){.r = r, .id = i};
        pthread_create(&t[i], NULL, sharer_main, &c[i]);
    }
    int ok = 0, late = 0, failed = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ok += c[i].ok;
        late += c[i].timed_out;
        failed += c[i].failed;
    }
    printf("# one connection, 8 threads: %d answered, %d timed out as meant, %d wrong\n", ok, late,
           failed);
    assert_int_equal(failed, 0);
    assert_true(late > 0);
    rpc_close(r);
    rpcsrv_stop(s);
}

/* ---- run_async ------------------------------------------------------------------------------ */

/* Requests starting with 'a' are taken and answered from another thread ("a-now" ones before
 * run_async returns); 'r' ones are taken and handed back to the workers. */
static atomic_int g_async_done, g_requeued, g_handled;

struct later {
    struct rpcsrv_req *h;
    struct buf out;
};

static void *later_main(void *arg)
{
    struct later *l = arg;
    clock_sleep_ms(2);
    struct rpcsrv_result res = {.code = DV_OK};
    rpcsrv_finish(l->h, &l->out, &res);
    buf_free(&l->out);
    free(l);
    return NULL;
}

static bool take_async(void *arg, const void *in, size_t n, struct rpcsrv_req *h)
{
    const char *p = in;
    if (n == 0 || (p[0] != 'a' && p[0] != 'r'))
        return false;
    if (p[0] == 'r') {
        atomic_fetch_add(&g_requeued, 1);
        rpcsrv_requeue(h);
        return true;
    }
    struct later *l = calloc(1, sizeof *l);
    struct rpcsrv_result res0;
    l->h = h;
    buf_init(&l->out);
    assert_int_equal(echo(arg, in, n, &l->out, &res0), DV_OK);
    atomic_fetch_add(&g_async_done, 1);
    if (n >= 5 && memcmp(p, "a-now", 5) == 0) {
        struct rpcsrv_result res = {.code = DV_OK};
        rpcsrv_finish(h, &l->out, &res);
        buf_free(&l->out);
        free(l);
        return true;
    }
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, later_main, l), 0);
    pthread_detach(t);
    return true;
}

static int echo_count(void *arg, const void *in, size_t n, struct buf *out,
                      struct rpcsrv_result *res)
{
    atomic_fetch_add(&g_handled, 1);
    return echo(arg, in, n, out, res);
}

/* Requests a server's owner takes (answered later from another thread, or at once), hands back
 * (run by a worker) or leaves to the workers all get their own reply; drain waits for the
 * ones taken. */
static void test_async(void **state)
{
    (void)state;
    char url[64], err[DV_ERRMSG_SIZE] = "";
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", (unsigned)net_free_port());
    struct rpcsrv_opts so = {.listen = url,
                             .workers = 2,
                             .contexts = 8,
                             .recv_max = 1 << 20,
                             .handle = echo_count,
                             .run_async = take_async};
    struct rpcsrv *s;
    assert_int_equal(rpcsrv_new(&so, &s, err), DV_OK);
    assert_int_equal(rpcsrv_listen(s, err), DV_OK);
    struct rpc_opts o;
    rpc_opts_default(&o);
    o.connect_wait_ms = 1000;
    struct rpc *r;
    assert_int_equal(rpc_open(url, &o, &r, err), DV_OK);
    const char *kinds[] = {"a-later", "a-now", "requeued", "worker"};
    char text[64];
    for (int i = 0; i < 200; i++) {
        snprintf(text, sizeof text, "%s-%d", kinds[i % 4], i);
        assert_int_equal(call(r, text, err), DV_OK); /* checks the reply is this one's */
    }
    printf("# 200 calls: %d answered by the owner, %d handed back, %d run by workers\n",
           atomic_load(&g_async_done), atomic_load(&g_requeued), atomic_load(&g_handled));
    assert_int_equal(atomic_load(&g_async_done), 100);
    assert_int_equal(atomic_load(&g_requeued), 50);
    assert_int_equal(atomic_load(&g_handled), 100);
    assert_int_equal(rpcsrv_drain(s, 1000), 0);
    rpc_close(r);
    rpcsrv_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nobody_there),
        cmocka_unit_test(test_peer_stops_and_returns),
        cmocka_unit_test(test_send_waits_for_connection),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_shared_connection),
        cmocka_unit_test(test_async),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
