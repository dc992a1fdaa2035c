/* test_tcpsrv.c - the search port (proto/tcpsrv.c) on 127.0.0.1: frames answered in order,
 * a frame over the limit or a handler without a reply closing the connection, the connection
 * cap, many clients at once, and a close with connections open. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "tcpsrv.h"

static atomic_int handled, done_calls;

/* Answers a request with its bytes reversed; "drop" gets no reply. */
static int echo(void *arg, const void *in, size_t n, struct buf *out, struct rpcsrv_result *res)
{
    (void)arg;
    atomic_fetch_add(&handled, 1);
    res->code = DV_OK;
    if (n == 4 && memcmp(in, "drop", 4) == 0)
        return DV_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (buf_append(out, (const uint8_t *)in + n - 1 - i, 1) != DV_OK)
            return DV_ENOMEM;
    return DV_OK;
}

static void on_done(void *arg, const struct rpcsrv_result *res, uint64_t ns)
{
    (void)arg, (void)res, (void)ns;
    atomic_fetch_add(&done_calls, 1);
}

static struct tcpsrv *serve(uint32_t max_conns)
{
    struct tcpsrv_opts o = {.listen = "tcp://127.0.0.1:0",
                            .max_conns = max_conns,
                            .max_message = 1 << 16,
                            .handle = echo,
                            .done = on_done};
    struct tcpsrv *s;
    char err[DV_ERRMSG_SIZE] = "";
    int rc = tcpsrv_open(&o, &s, err);
    if (rc != DV_OK)
        fail_msg("tcpsrv_open: %s: %s", dv_errname(rc), err);
    assert_int_not_equal(tcpsrv_port(s), 0);
    return s;
}

static int dial(struct tcpsrv *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(tcpsrv_port(s)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {5, 0}; /* a broken server fails the test, it does not hang it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_frame(int fd, const void *p, uint32_t n)
{
    assert_int_equal(tcp_write_frame(fd, p, n), 0);
}

/* One request and its reply (false: the connection closed instead). */
static bool roundtrip(int fd, const char *text)
{
    size_t n = strlen(text);
    send_frame(fd, text, (uint32_t)n);
    uint32_t be;
    if (tcp_read_full(fd, &be, 4) != 0)
        return false;
    assert_int_equal(ntohl(be), n);
    char got[256];
    assert_true(n < sizeof got);
    assert_int_equal(tcp_read_full(fd, got, n), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], text[n - 1 - i]);
    return true;
}

/* The server closed the connection: read sees the end. */
static bool closed(int fd)
{
    char c;
    return read(fd, &c, 1) == 0;
}

static void test_frames(void **state)
{
    (void)state;
    struct tcpsrv *s = serve(0);
    int fd = dial(s);
    int d0 = atomic_load(&done_calls);
    assert_true(roundtrip(fd, "one"));
    assert_true(roundtrip(fd, "two three"));
    assert_true(roundtrip(fd, "")); /* an empty request is a request */
    assert_int_equal(atomic_load(&done_calls) - d0, 3);
    /* Two frames in one write: answered in order. */
    char both[] = {0, 0, 0, 2, 'a', 'b', 0, 0, 0, 1, 'c'};
    assert_int_equal(write(fd, both, sizeof both), (ssize_t)sizeof both);
    char rep[11];
    assert_int_equal(tcp_read_full(fd, rep, 6 + 5), 0);
    assert_memory_equal(rep, ((char[]){0, 0, 0, 2, 'b', 'a', 0, 0, 0, 1, 'c'}), 11);
    close(fd);

    /* A frame over max_message: the connection closes, nothing is run. */
    fd = dial(s);
    int h0 = atomic_load(&handled);
    uint32_t be = htonl((1 << 16) + 1);
    assert_int_equal(write(fd, &be, 4), 4);
    assert_true(closed(fd));
    assert_int_equal(atomic_load(&handled), h0);
    close(fd);

    /* A request the handler gives no reply: the connection closes (the client's signal). */
    fd = dial(s);
    send_frame(fd, "drop", 4);
    assert_true(closed(fd));
    close(fd);

    /* Half a frame, then the client goes: the server lets go of it. */
    fd = dial(s);
    assert_int_equal(write(fd, "\0\0\0\x10xy", 6), 6);
    close(fd);
    uint64_t t0 = clock_mono_ms();
    while (tcpsrv_conns(s) > 0 && clock_mono_ms() - t0 < 2000)
        clock_sleep_ms(5);
    assert_int_equal(tcpsrv_conns(s), 0);
    tcpsrv_close(s);
}

static void test_cap_and_close(void **state)
{
    (void)state;
    struct tcpsrv *s = serve(2);
    int a = dial(s), b = dial(s);
    assert_true(roundtrip(a, "first"));
    assert_true(roundtrip(b, "second"));
    int c = dial(s); /* the third is closed at accept */
    assert_true(closed(c));
    close(c);
    assert_int_equal(tcpsrv_conns(s), 2);
    close(b); /* room again once b's thread ends */
    uint64_t t0 = clock_mono_ms();
    while (tcpsrv_conns(s) > 1 && clock_mono_ms() - t0 < 2000)
        clock_sleep_ms(5);
    int d = dial(s);
    assert_true(roundtrip(d, "fourth"));
    /* Close with a and d open and idle: it returns, and they see the end. */
    t0 = clock_mono_ms();
    tcpsrv_close(s);
    assert_true(clock_mono_ms() - t0 < 2000);
    assert_true(closed(a));
    assert_true(closed(d));
    close(a);
    close(d);
}

static struct tcpsrv *g_srv;

static void *client_main(void *arg)
{
    (void)arg;
    int fd = dial(g_srv);
    char text[32];
    for (int i = 0; i < 300; i++) {
        snprintf(text, sizeof text, "request %d of a client", i);
        if (!roundtrip(fd, text))
            fail_msg("request %d: the connection closed", i);
    }
    close(fd);
    return NULL;
}

static void test_many_clients(void **state)
{
    (void)state;
    g_srv = serve(0);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, client_main, NULL), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    tcpsrv_close(g_srv);
}

static void test_bad_address(void **state)
{
    (void)state;
    char err[DV_ERRMSG_SIZE];
    struct tcpsrv *s;
    struct tcpsrv_opts o = {.listen = "ipc:///tmp/x", .max_message = 1024, .handle = echo};
    assert_int_equal(tcpsrv_open(&o, &s, err), DV_EINVAL);
    assert_non_null(strstr(err, "tcp://HOST:PORT"));
    o.listen = "tcp://no.such.host.invalid:1";
    assert_int_equal(tcpsrv_open(&o, &s, err), DV_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_cap_and_close),
        cmocka_unit_test(test_many_clients),
        cmocka_unit_test(test_bad_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
