/* test_craft_tr.c - raft's transport with host names: a peer named "localhost:PORT" is resolved
 * and reached, IPv4 literals skip the resolver, the handshake carries the advertised name, a
 * bad address fails at once, close cancels resolutions in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "craft_tr.h"
#include "net_util.h"

struct seen {
    int accepted, connected, status, closed;
    raft_id peer_id;
    char peer_addr[64];
};

static struct seen S;

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                      struct uv_stream_s *stream)
{
    S.accepted++;
    S.peer_id = id;
    snprintf(S.peer_addr, sizeof S.peer_addr, "%s", address);
    uv_close((uv_handle_t *)stream, free_handle);
}

static void on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    S.connected++;
    S.status = status;
    if (stream)
        uv_close((uv_handle_t *)stream, free_handle);
}

static void on_close(struct raft_uv_transport *t)
{
    S.closed++;
}

/* Runs the loop until cond holds (at most ~5 s). */
#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        for (int i_ = 0; i_ < 5000 && !(cond); i_++) {                                             \
            uv_run(loop, UV_RUN_NOWAIT);                                                           \
            struct timespec ts_ = {0, 1000000};                                                    \
            nanosleep(&ts_, NULL);                                                                 \
        }                                                                                          \
    } while (0)

static void test_names(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&S, 0, sizeof S);
    uint16_t p1 = net_free_port(), p2 = net_free_port();
    char bind[32], self1[32], self2[32], name1[32], lit1[32];
    snprintf(bind, sizeof bind, "127.0.0.1:%u", p1);
    snprintf(self1, sizeof self1, "localhost:%u", p1);
    snprintf(self2, sizeof self2, "localhost:%u", p2);
    snprintf(name1, sizeof name1, "localhost:%u", p1);
    snprintf(lit1, sizeof lit1, "127.0.0.1:%u", p1);

    struct raft_uv_transport srv = {0}, cli = {0};
    assert_int_equal(craft_tr_init(&srv, &loop, bind), 0);
    assert_int_equal(srv.init(&srv, 1, self1), 0);
    assert_int_equal(srv.listen(&srv, on_accept), 0);
    assert_int_equal(craft_tr_init(&cli, &loop, NULL), 0);
    assert_int_equal(cli.init(&cli, 2, self2), 0);

    /* by name: resolved, connected, and the server sees the client's advertised name */
    struct raft_uv_connect req = {0};
    assert_int_equal(cli.connect(&cli, &req, 1, name1, on_connect), 0);
    RUN_UNTIL(&loop, S.connected == 1 && S.accepted == 1);
    assert_int_equal(S.connected, 1);
    assert_int_equal(S.status, 0);
    assert_int_equal(S.accepted, 1);
    assert_int_equal(S.peer_id, 2);
    assert_string_equal(S.peer_addr, self2);
    assert_int_equal(craft_tr_resolved(&cli), 1);

    /* an IPv4 literal goes straight to raft's own transport */
    assert_int_equal(cli.connect(&cli, &req, 1, lit1, on_connect), 0);
    RUN_UNTIL(&loop, S.connected == 2 && S.accepted == 2);
    assert_int_equal(S.status, 0);
    assert_int_equal(S.accepted, 2);
    assert_int_equal(craft_tr_resolved(&cli), 1);

    /* no port, no host: refused at once, the callback never fires */
    assert_int_equal(cli.connect(&cli, &req, 1, "localhost", on_connect), RAFT_NOCONNECTION);
    assert_non_null(strstr(cli.errmsg, "not HOST:PORT"));
    assert_int_equal(cli.connect(&cli, &req, 1, ":7310", on_connect), RAFT_NOCONNECTION);

    /* a name nobody listens on: resolved, then refused by the peer's host */
    char dead[32];
    snprintf(dead, sizeof dead, "localhost:%u", net_free_port());
    assert_int_equal(cli.connect(&cli, &req, 1, dead, on_connect), 0);
    RUN_UNTIL(&loop, S.connected == 3);
    assert_int_equal(S.connected, 3);
    assert_int_not_equal(S.status, 0);
    assert_int_equal(craft_tr_resolved(&cli), 2);

    /* close with a resolution in flight: its connect fails as cancelled, then the close
     * callback fires */
    assert_int_equal(cli.connect(&cli, &req, 1, name1, on_connect), 0);
    cli.close(&cli, on_close);
    srv.close(&srv, on_close);
    RUN_UNTIL(&loop, S.closed == 2 && S.connected == 4);
    assert_int_equal(S.connected, 4);
    assert_int_equal(S.status, RAFT_CANCELED);
    assert_int_equal(S.closed, 2);
    while (uv_run(&loop, UV_RUN_NOWAIT))
        ;
    craft_tr_close(&cli);
    craft_tr_close(&srv);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_bad_bind(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct raft_uv_transport t = {0};
    assert_int_equal(craft_tr_init(&t, &loop, "dvec-coord-0:7310"), RAFT_INVALID);
    assert_non_null(strstr(t.errmsg, "not an IPv4 address"));
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bad_bind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
