/* shard_case.h - cmocka helpers shared by the integration tests that drive dvec-shard
 * processes (test_shard, test_pull): clients closed by the teardown, processes of the pool
 * that fail the test when they cannot be had. Include after cmocka.h and shard_proc.h. */
#ifndef DV_SHARD_CASE_H
#define DV_SHARD_CASE_H

#include "msg.h"
#include "rpc.h"
#include "shard_proc.h"

static struct rpc *clients[16];

/* A client of p with the given per-call timeout; closed by the teardown. */
static struct rpc *client(const struct sp_proc *p, uint32_t timeout_ms)
{
    struct rpc_opts o;
    struct rpc *r;
    char err[DV_ERRMSG_SIZE] = "";
    rpc_opts_default(&o);
    o.timeout_ms = timeout_ms;
    int rc = rpc_open(p->url, &o, &r, err);
    if (rc != DV_OK)
        print_error("rpc_open %s: %s\n", p->url, err);
    assert_int_equal(rc, DV_OK);
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++)
        if (clients[i] == NULL) {
            clients[i] = r;
            return r;
        }
    fail_msg("too many clients");
    return NULL;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++) {
        rpc_close(clients[i]);
        clients[i] = NULL;
    }
    sp_cleanup_all();
    return 0;
}

/* A process of the pool, or fails the test. */
static struct sp_proc *new_proc(bool http, const char *const *extra, size_t n_extra)
{
    struct sp_proc *p = sp_new(http, extra, n_extra);
    assert_non_null(p);
    return p;
}

/* Starts p or fails the test (the log's tail is printed by sp_start). */
static void start(struct sp_proc *p)
{
    int rc = sp_start(p);
    if (rc != DV_OK)
        print_error("dvec-shard did not start: %s (wait status %d)\n", dv_errname(rc), p->status);
    assert_int_equal(rc, DV_OK);
}

/* One call; the reply stays in *rep (free it), the error text in err. */
static int call(struct rpc *r, const struct msg *req, struct msg_reply *rep, char *err)
{
    err[0] = '\0';
    return rpc_call(r, req, rep, err);
}

/* A call that must succeed. */
static void call_ok(struct rpc *r, const struct msg *req, struct msg_reply *rep)
{
    char err[DV_ERRMSG_SIZE];
    int rc = call(r, req, rep, err);
    if (rc != DV_OK)
        print_error("%s: %s: %s\n", msg_type_name(req->type), dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
}

/* A call that must fail with `code` (and, for DV_ESTALE, name `epoch`); returns nothing. */
static void call_fails(struct rpc *r, const struct msg *req, int code, uint64_t epoch,
                       const char *text)
{
    char err[DV_ERRMSG_SIZE];
    struct msg_reply rep;
    int rc = call(r, req, &rep, err);
    printf("# %s: %s \"%s\"\n", msg_type_name(req->type), dv_errname(rc), err);
    if (rc != code || (text && strstr(err, text) == NULL))
        print_error("%s: got %s \"%s\", want %s \"%s\"\n", msg_type_name(req->type), dv_errname(rc),
                    err, dv_errname(code), text ? text : "");
    assert_int_equal(rc, code);
    if (text)
        assert_non_null(strstr(err, text));
    if (code == DV_ESTALE)
        assert_int_equal(rep.m.err.epoch, epoch);
    msg_reply_free(&rep);
}

static void hello_ok(struct rpc *r)
{
    struct msg m = {.type = MSG_HELLO};
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    msg_reply_free(&rep);
}

#endif
