/* test_transport.c - the transport seam (proto/transport.h): the in-memory fake's faults,
 * determinism, partitions and reply ownership, and the NNG implementation against a real
 * rpcsrv on 127.0.0.1; both run the same handler through the real encoder and decoder. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "msg.h"
#include "net_util.h"
#include "rpcsrv.h"
#include "tr_fake.h"
#include "transport.h"

#define T_MS 50 /* the timeout of calls meant to time out (OK ones must answer within it) */

/* ---- the server: MSG_REPLICA_INFO answers points = partition + 1000 ---------------------- */

#define PART_ERROR    99 /* answers DV_ENOTFOUND "no partition 99" */
#define PART_NOREPLY  98 /* the handler fails: no reply */
#define PART_SLOW     97 /* the handler takes 3 * T_MS */
#define PART_RECORDED 50 /* and above (below 90): arrival order is recorded */

static atomic_uint runs; /* handler runs */
static pthread_mutex_t order_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t order[16];
static unsigned n_order;

static int handle(void *arg, const void *in, size_t n, struct buf *out, struct rpcsrv_result *res)
{
    (void)arg;
    atomic_fetch_add(&runs, 1);
    struct msg m;
    char err[DV_ERRMSG_SIZE];
    if (msg_decode(in, n, &m, err) != DV_OK)
        return DV_EPROTO;
    uint32_t part = m.addr.part;
    uint64_t id = m.req_id;
    int type = m.type;
    msg_free(&m);
    res->type = type;
    res->code = DV_OK;
    if (part == PART_NOREPLY)
        return DV_EIO;
    if (part == PART_SLOW)
        clock_sleep_ms(3 * T_MS);
    if (part >= PART_RECORDED && part < 90) {
        pthread_mutex_lock(&order_mu);
        if (n_order < 16)
            order[n_order++] = part;
        pthread_mutex_unlock(&order_mu);
    }
    if (part == PART_ERROR)
        return msg_encode_error(out, type, id, DV_ENOTFOUND, "no partition 99", 0);
    struct msg r = {.type = type, .reply = true, .req_id = id};
    r.u.info_rep.points = part + 1000;
    return msg_encode(&r, out, err);
}

static struct msg info_req(uint32_t part)
{
    struct msg q = {.type = MSG_REPLICA_INFO};
    q.addr = (struct msg_addr){{"c", 1}, part, 1, 0};
    return q;
}

/* One call of partition `part`; checks the answer when it succeeds. */
static int info(struct tr_peer *p, uint32_t part, uint32_t timeout_ms, char *err)
{
    struct msg q = info_req(part);
    struct msg_reply rep;
    int rc = tr_call(p, &q, &rep, timeout_ms, err);
    if (rc == DV_OK) {
        assert_true(rep.m.reply);
        assert_int_equal(rep.m.type, MSG_REPLICA_INFO);
        assert_int_equal(rep.m.u.info_rep.points, part + 1000);
    }
    msg_reply_free(&rep);
    return rc;
}

/* A fake net serving "fake://n1" (party node-1) and "fake://n2" (node-2). */
static struct tr_fake_net *net_up(uint64_t seed)
{
    struct tr_fake_net *net;
    assert_int_equal(tr_fake_net_new(seed, &net), DV_OK);
    assert_int_equal(tr_fake_serve(net, "node-1", "fake://n1", handle, NULL), DV_OK);
    assert_int_equal(tr_fake_serve(net, "node-2", "fake://n2", handle, NULL), DV_OK);
    assert_int_equal(tr_fake_serve(net, "node-2", "fake://n2", handle, NULL), DV_EEXIST);
    return net;
}

static void net_down(struct tr_fake_net *net)
{
    tr_fake_unserve(net, "fake://n1");
    tr_fake_unserve(net, "fake://n2");
    tr_fake_net_free(net);
}

static struct tr_peer *peer(struct tr *t, const char *url, uint32_t timeout_ms,
                            uint32_t connect_wait_ms)
{
    struct tr_opts o;
    tr_opts_default(&o);
    o.timeout_ms = timeout_ms;
    o.connect_wait_ms = connect_wait_ms;
    struct tr_peer *p;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(tr_open(t, url, &o, &p, err), DV_OK);
    assert_string_equal(tr_peer_url(p), url);
    return p;
}

/* ---- the fake ----------------------------------------------------------------------------- */

/* Calls, an error reply, a raw call, and replies that outlive the server that made them. */
static void test_fake_calls_and_ownership(void **state)
{
    (void)state;
    struct tr_fake_net *net = net_up(1);
    struct tr *t = tr_fake_new(net, "coord-1");
    assert_non_null(t);
    struct tr_peer *p = peer(t, "fake://n1", 1000, 500);
    char err[DV_ERRMSG_SIZE];
    assert_true(tr_connected(p));
    atomic_store(&runs, 0);
    assert_int_equal(info(p, 3, 0, err), DV_OK);

    struct msg q = info_req(PART_ERROR);
    struct msg_reply rep_err;
    assert_int_equal(tr_call(p, &q, &rep_err, 0, err), DV_ENOTFOUND);
    assert_string_equal(err, "no partition 99");

    q = info_req(5);
    q.req_id = 77;
    struct msg_reply rep_ok;
    assert_int_equal(tr_call(p, &q, &rep_ok, 0, err), DV_OK);
    assert_int_equal(rep_ok.m.req_id, 77);

    /* Raw bytes in and out: the encoded request, its encoded reply. */
    struct buf b;
    buf_init(&b);
    q = info_req(6);
    q.req_id = 9;
    assert_int_equal(msg_encode(&q, &b, err), DV_OK);
    void *raw;
    size_t raw_len;
    assert_int_equal(tr_call_raw(p, b.data, b.len, &raw, &raw_len, 0, err), DV_OK);
    struct msg m;
    assert_int_equal(msg_decode(raw, raw_len, &m, err), DV_OK);
    assert_int_equal(m.req_id, 9);
    assert_int_equal(m.u.info_rep.points, 1006);
    msg_free(&m);
    free(raw);
    buf_free(&b);
    assert_int_equal(atomic_load(&runs), 4);

    struct tr_fake_counts k;
    tr_fake_counts(net, "coord-1", "fake://n1", &k);
    assert_int_equal(k.sent, 4);
    assert_int_equal(k.delivered, 4);
    assert_int_equal(k.answered, 4);
    assert_int_equal(k.dropped + k.refused, 0);
    tr_fake_counts(net, NULL, "fake://n2", &k);
    assert_int_equal(k.sent, 0);

    /* The replies own their memory: the server and the net may be gone. */
    tr_peer_close(p);
    tr_free(t);
    net_down(net);
    assert_int_equal(rep_err.m.err.code, DV_ENOTFOUND);
    assert_int_equal(rep_err.m.err.text.len, strlen("no partition 99"));
    assert_memory_equal(rep_err.m.err.text.p, "no partition 99", rep_err.m.err.text.len);
    assert_int_equal(rep_ok.m.u.info_rep.points, 1005);
    msg_reply_free(&rep_err);
    msg_reply_free(&rep_ok);
    msg_reply_free(&rep_ok); /* a freed reply frees nothing */
}

/* A lost request: the handler does not run, the caller times out. A lost reply: it ran. */
static void test_fake_drop_request_and_reply(void **state)
{
    (void)state;
    struct tr_fake_net *net = net_up(2);
    struct tr *t = tr_fake_new(net, "coord-1");
    struct tr_peer *p = peer(t, "fake://n1", T_MS, 500);
    char err[DV_ERRMSG_SIZE];

    struct tr_fake_rule r = {.drop_req_next = 1};
    assert_int_equal(tr_fake_set_rule(net, "coord-1", "fake://n1", &r), DV_OK);
    atomic_store(&runs, 0);
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(info(p, 1, 0, err), DV_ETIMEDOUT);
    assert_true(clock_mono_ms() - t0 >= T_MS);
    assert_non_null(strstr(err, "no reply from fake://n1"));
    assert_int_equal(atomic_load(&runs), 0);
    assert_int_equal(info(p, 1, 0, err), DV_OK); /* the budget is spent */

    r = (struct tr_fake_rule){.drop_rep_next = 1};
    assert_int_equal(tr_fake_set_rule(net, "coord-1", "fake://n1", &r), DV_OK);
    atomic_store(&runs, 0);
    t0 = clock_mono_ms();
    assert_int_equal(info(p, 1, 0, err), DV_ETIMEDOUT);
    assert_true(clock_mono_ms() - t0 >= T_MS);
    assert_int_equal(atomic_load(&runs), 1);
    assert_int_equal(info(p, 1, 0, err), DV_OK);

    /* The rule is the link's: another party's calls are not touched. */
    r = (struct tr_fake_rule){.drop_req_every = 1};
    assert_int_equal(tr_fake_set_rule(net, "coord-1", "fake://n1", &r), DV_OK);
    struct tr *t2 = tr_fake_new(net, "coord-2");
    struct tr_peer *p2 = peer(t2, "fake://n1", T_MS, 500);
    assert_int_equal(info(p2, 1, 0, err), DV_OK);
    assert_int_equal(info(p, 1, 0, err), DV_ETIMEDOUT);
    assert_int_equal(tr_fake_set_rule(net, "coord-1", "fake://n1", NULL), DV_OK);
    assert_int_equal(info(p, 1, 0, err), DV_OK);

    struct tr_fake_counts k;
    tr_fake_counts(net, "coord-1", "fake://n1", &k);
    assert_int_equal(k.sent, 6);
    assert_int_equal(k.delivered, 4);
    assert_int_equal(k.answered, 3);
    assert_int_equal(k.dropped, 3);
    tr_fake_counts(net, NULL, NULL, &k);
    assert_int_equal(k.sent, 7);
    assert_int_equal(k.answered, 4);

    /* A handler that fails, a reply over recv_max, a reply after the deadline: lost. */
    atomic_store(&runs, 0);
    assert_int_equal(info(p, PART_NOREPLY, 0, err), DV_ETIMEDOUT);
    assert_int_equal(info(p, PART_SLOW, 0, err), DV_ETIMEDOUT);
    assert_int_equal(atomic_load(&runs), 2);
    struct tr_opts o;
    tr_opts_default(&o);
    o.timeout_ms = T_MS;
    o.recv_max = 4;
    struct tr_peer *small;
    assert_int_equal(tr_open(t, "fake://n2", &o, &small, err), DV_OK);
    assert_int_equal(info(small, 1, 0, err), DV_ETIMEDOUT);
    tr_fake_counts(net, "coord-1", "fake://n2", &k);
    assert_int_equal(k.delivered, 1);
    assert_int_equal(k.dropped, 1);

    tr_peer_close(small);
    tr_peer_close(p2);
    tr_peer_close(p);
    tr_free(t2);
    tr_free(t);
    net_down(net);
}

/* Every n-th message of a link, and the most specific rule wins. */
static void test_fake_every_nth(void **state)
{
    (void)state;
    struct tr_fake_net *net = net_up(3);
    struct tr *t = tr_fake_new(net, "coord-1");
    struct tr_peer *p1 = peer(t, "fake://n1", T_MS, 500);
    struct tr_peer *p2 = peer(t, "fake://n2", T_MS, 500);
    char err[DV_ERRMSG_SIZE];
    struct tr_fake_rule every3 = {.drop_req_every = 3}, every2 = {.drop_rep_every = 2};
    assert_int_equal(tr_fake_set_rule(net, NULL, NULL, &every3), DV_OK);
    assert_int_equal(tr_fake_set_rule(net, NULL, "fake://n2", &every2), DV_OK);
    unsigned lost1 = 0, lost2 = 0;
    for (int i = 1; i <= 9; i++) {
        int rc = info(p1, 1, 0, err);
        assert_int_equal(rc, i % 3 == 0 ? DV_ETIMEDOUT : DV_OK);
        lost1 += rc != DV_OK;
        rc = info(p2, 1, 0, err);
        assert_int_equal(rc, i % 2 == 0 ? DV_ETIMEDOUT : DV_OK);
        lost2 += rc != DV_OK;
    }
    struct tr_fake_counts k;
    tr_fake_counts(net, "coord-1", "fake://n1", &k);
    assert_int_equal(k.dropped, lost1);
    assert_int_equal(k.delivered, 9 - lost1);
    tr_fake_counts(net, "coord-1", "fake://n2", &k);
    assert_int_equal(k.dropped, lost2);
    assert_int_equal(k.delivered, 9); /* lost replies: the handler ran */
    tr_fake_clear_rules(net);
    assert_int_equal(info(p1, 1, 0, err), DV_OK);
    tr_peer_close(p1);
    tr_peer_close(p2);
    tr_free(t);
    net_down(net);
}

#define NCALLS 40

struct pattern_run {
    struct tr_peer *p;
    uint64_t lost; /* bit i: call i timed out */
};

static void *pattern_main(void *arg)
{
    struct pattern_run *r = arg;
    char err[DV_ERRMSG_SIZE];
    r->lost = 0;
    for (int i = 0; i < NCALLS; i++)
        if (info(r->p, 1, 0, err) != DV_OK)
            r->lost |= 1ull << i;
    return NULL;
}

/* The drop pattern of link coord-1 -> n1 under probabilistic loss; with `other`, a second
 * party hammers another link at the same time. */
static uint64_t drop_pattern(uint64_t seed, bool other)
{
    struct tr_fake_net *net = net_up(seed);
    struct tr *t = tr_fake_new(net, "coord-1"), *t2 = tr_fake_new(net, "coord-2");
    struct tr_fake_rule r = {.drop_req_p = 0.15, .drop_rep_p = 0.1};
    assert_int_equal(tr_fake_set_rule(net, NULL, NULL, &r), DV_OK);
    struct pattern_run a = {peer(t, "fake://n1", 25, 500), 0};
    struct pattern_run b = {peer(t2, "fake://n1", 25, 500), 0};
    pthread_t th;
    if (other)
        assert_int_equal(pthread_create(&th, NULL, pattern_main, &b), 0);
    pattern_main(&a);
    if (other)
        pthread_join(th, NULL);
    struct tr_fake_counts k;
    tr_fake_counts(net, "coord-1", "fake://n1", &k);
    assert_int_equal(k.dropped, (uint64_t)__builtin_popcountll(a.lost));
    assert_int_equal(k.sent, NCALLS);
    tr_peer_close(a.p);
    tr_peer_close(b.p);
    tr_free(t);
    tr_free(t2);
    net_down(net);
    return a.lost;
}

static void test_fake_determinism(void **state)
{
    (void)state;
    uint64_t a = drop_pattern(42, false), b = drop_pattern(42, true), c = drop_pattern(43, false);
    printf("# seed 42: %016llx, again with another link busy: %016llx, seed 43: %016llx\n",
           (unsigned long long)a, (unsigned long long)b, (unsigned long long)c);
    assert_true(a == b);
    assert_true(a != c);
    int n = __builtin_popcountll(a);
    assert_true(n >= 2 && n <= 22); /* about 23% of 40 */
}

struct delayed {
    struct tr_peer *p;
    uint32_t part;
    int rc;
};

static void *delayed_main(void *arg)
{
    struct delayed *d = arg;
    char err[DV_ERRMSG_SIZE];
    d->rc = info(d->p, d->part, 0, err);
    return NULL;
}

/* A delay holds a request back (a call sent later overtakes it); a delay at or over the
 * timeout loses it; jitter stays within its bound. */
static void test_fake_delay(void **state)
{
    (void)state;
    struct tr_fake_net *net = net_up(4);
    struct tr *slow = tr_fake_new(net, "coord-1"), *fast = tr_fake_new(net, "coord-2");
    struct tr_fake_rule r = {.delay_ms = 60};
    assert_int_equal(tr_fake_set_rule(net, "coord-1", NULL, &r), DV_OK);
    struct delayed a = {peer(slow, "fake://n1", 1000, 500), 51, -1};
    struct delayed b = {peer(fast, "fake://n1", 1000, 500), 52, -1};
    n_order = 0;
    uint64_t t0 = clock_mono_ms();
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, delayed_main, &a), 0);
    clock_sleep_ms(5);
    assert_int_equal(pthread_create(&tb, NULL, delayed_main, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_true(clock_mono_ms() - t0 >= 60);
    assert_int_equal(a.rc, DV_OK);
    assert_int_equal(b.rc, DV_OK);
    assert_int_equal(n_order, 2);
    assert_int_equal(order[0], 52); /* sent second, arrived first */
    assert_int_equal(order[1], 51);

    char err[DV_ERRMSG_SIZE];
    atomic_store(&runs, 0);
    assert_int_equal(info(a.p, 1, 30, err), DV_ETIMEDOUT); /* 60 ms delay, 30 ms timeout */
    assert_int_equal(atomic_load(&runs), 0);

    r = (struct tr_fake_rule){.delay_ms = 5, .jitter_ms = 10};
    assert_int_equal(tr_fake_set_rule(net, "coord-1", NULL, &r), DV_OK);
    for (int i = 0; i < 5; i++) {
        t0 = clock_mono_ms();
        assert_int_equal(info(a.p, 1, 0, err), DV_OK);
        uint64_t dt = clock_mono_ms() - t0;
        assert_true(dt >= 5 && dt < 200);
    }
    tr_peer_close(a.p);
    tr_peer_close(b.p);
    tr_free(slow);
    tr_free(fast);
    net_down(net);
}

/* A silent server times calls out; a refused one (or no server) fails them at once when the
 * peer has connect_wait, and times them out without, as NNG does. */
static void test_fake_silent_and_refused(void **state)
{
    (void)state;
    struct tr_fake_net *net = net_up(5);
    struct tr *t = tr_fake_new(net, "coord-1");
    struct tr_peer *p = peer(t, "fake://n1", T_MS, 500);
    struct tr_peer *p_nowait = peer(t, "fake://n1", T_MS, 0);
    struct tr_peer *nobody = peer(t, "fake://nobody", 5000, 500);
    char err[DV_ERRMSG_SIZE];

    assert_int_equal(tr_fake_set_state(net, "fake://n1", TR_FAKE_SILENT), DV_OK);
    assert_true(tr_connected(p));
    atomic_store(&runs, 0);
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(info(p, 1, 0, err), DV_ETIMEDOUT);
    assert_true(clock_mono_ms() - t0 >= T_MS);
    assert_int_equal(atomic_load(&runs), 0);

    assert_int_equal(tr_fake_set_state(net, "fake://n1", TR_FAKE_REFUSED), DV_OK);
    assert_false(tr_connected(p));
    t0 = clock_mono_ms();
    assert_int_equal(info(p, 1, 0, err), DV_EIO);
    assert_true(clock_mono_ms() - t0 < T_MS);
    assert_non_null(strstr(err, "not connected to fake://n1"));
    assert_int_equal(info(p_nowait, 1, 0, err), DV_ETIMEDOUT);
    t0 = clock_mono_ms();
    assert_int_equal(info(nobody, 1, 0, err), DV_EIO);
    assert_true(clock_mono_ms() - t0 < 1000);
    assert_false(tr_connected(nobody));
    assert_int_equal(tr_fake_set_state(net, "fake://nobody", TR_FAKE_UP), DV_ENOTFOUND);

    assert_int_equal(tr_fake_set_state(net, "fake://n1", TR_FAKE_UP), DV_OK);
    assert_true(tr_connected(p));
    assert_int_equal(info(p, 1, 0, err), DV_OK);
    assert_int_equal(atomic_load(&runs), 1);

    struct tr_fake_counts k;
    tr_fake_counts(net, "coord-1", "fake://n1", &k);
    assert_int_equal(k.sent, 4);
    assert_int_equal(k.refused, 2);
    assert_int_equal(k.dropped, 1);
    assert_int_equal(k.answered, 1);

    /* Unserved: refused from then on. */
    tr_fake_unserve(net, "fake://n1");
    assert_int_equal(info(p, 1, 0, err), DV_EIO);
    assert_int_equal(tr_fake_serve(net, "node-1", "fake://n1", handle, NULL), DV_OK);
    assert_int_equal(info(p, 1, 0, err), DV_OK);

    tr_peer_close(p);
    tr_peer_close(p_nowait);
    tr_peer_close(nobody);
    tr_free(t);
    net_down(net);
}

/* A partition cuts its names off from the others, both ways; heal joins them again. */
static void test_fake_partition_heal(void **state)
{
    (void)state;
    struct tr_fake_net *net = net_up(6);
    struct tr *c1 = tr_fake_new(net, "coord-1"), *n1 = tr_fake_new(net, "node-1"),
              *n2 = tr_fake_new(net, "node-2");
    struct tr_peer *c1_n1 = peer(c1, "fake://n1", T_MS, 0);
    struct tr_peer *c1_n2 = peer(c1, "fake://n2", T_MS, 0);
    struct tr_peer *n1_n2 = peer(n1, "fake://n2", T_MS, 0);
    struct tr_peer *n2_n1 = peer(n2, "fake://n1", T_MS, 0);
    struct tr_peer *n2_n2 = peer(n2, "fake://n2", T_MS, 0);
    char err[DV_ERRMSG_SIZE];

    const char *cut[] = {"node-2"};
    assert_int_equal(tr_fake_partition(net, cut, 1), DV_OK);
    assert_int_equal(info(c1_n1, 1, 0, err), DV_OK);
    assert_int_equal(info(c1_n2, 1, 0, err), DV_ETIMEDOUT);
    assert_int_equal(info(n1_n2, 1, 0, err), DV_ETIMEDOUT);
    assert_int_equal(info(n2_n1, 1, 0, err), DV_ETIMEDOUT);
    assert_int_equal(info(n2_n2, 1, 0, err), DV_OK); /* its own side */
    assert_true(tr_connected(c1_n1));
    assert_false(tr_connected(c1_n2));

    /* A second partition: coord-1 apart from both sides. */
    const char *cut2[] = {"coord-1"};
    assert_int_equal(tr_fake_partition(net, cut2, 1), DV_OK);
    assert_int_equal(info(c1_n1, 1, 0, err), DV_ETIMEDOUT);
    assert_int_equal(info(n1_n2, 1, 0, err), DV_ETIMEDOUT);

    tr_fake_heal(net);
    assert_int_equal(info(c1_n1, 1, 0, err), DV_OK);
    assert_int_equal(info(c1_n2, 1, 0, err), DV_OK);
    assert_int_equal(info(n1_n2, 1, 0, err), DV_OK);
    assert_int_equal(info(n2_n1, 1, 0, err), DV_OK);
    assert_true(tr_connected(c1_n2));

    struct tr_fake_counts k;
    tr_fake_counts(net, NULL, "fake://n2", &k);
    assert_int_equal(k.dropped, 3);
    assert_int_equal(k.answered, 3);

    tr_peer_close(c1_n1);
    tr_peer_close(c1_n2);
    tr_peer_close(n1_n2);
    tr_peer_close(n2_n1);
    tr_peer_close(n2_n2);
    tr_free(c1);
    tr_free(n1);
    tr_free(n2);
    net_down(net);
}

/* ---- NNG ---------------------------------------------------------------------------------- */

static void test_nng(void **state)
{
    (void)state;
    char url[64], err[DV_ERRMSG_SIZE];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", (unsigned)net_free_port());
    struct rpcsrv_opts so = {
        .listen = url, .workers = 2, .contexts = 4, .recv_max = 1 << 20, .handle = handle};
    struct rpcsrv *s;
    assert_int_equal(rpcsrv_new(&so, &s, err), DV_OK);
    assert_int_equal(rpcsrv_listen(s, err), DV_OK);
    struct tr *t;
    assert_int_equal(tr_nng_new(&t), DV_OK);
    struct tr_peer *p = peer(t, url, 5000, 2000);

    assert_int_equal(info(p, 3, 0, err), DV_OK);
    assert_true(tr_connected(p));
    struct msg q = info_req(PART_ERROR);
    struct msg_reply rep;
    assert_int_equal(tr_call(p, &q, &rep, 0, err), DV_ENOTFOUND);
    assert_string_equal(err, "no partition 99");
    assert_int_equal(rep.m.err.code, DV_ENOTFOUND);
    msg_reply_free(&rep);

    struct buf b;
    buf_init(&b);
    q = info_req(6);
    q.req_id = 9;
    assert_int_equal(msg_encode(&q, &b, err), DV_OK);
    void *raw;
    size_t raw_len;
    assert_int_equal(tr_call_raw(p, b.data, b.len, &raw, &raw_len, 0, err), DV_OK);
    struct msg m;
    assert_int_equal(msg_decode(raw, raw_len, &m, err), DV_OK);
    assert_int_equal(m.u.info_rep.points, 1006);
    msg_free(&m);
    free(raw);
    buf_free(&b);

    /* A per-call timeout shorter than the handler. */
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(info(p, PART_SLOW, T_MS, err), DV_ETIMEDOUT);
    assert_true(clock_mono_ms() - t0 < 3000);

    /* Nobody there: "not connected" after connect_wait, not the 5 s timeout. */
    char url2[64];
    snprintf(url2, sizeof url2, "tcp://127.0.0.1:%u", (unsigned)net_free_port());
    struct tr_peer *p2 = peer(t, url2, 5000, 100);
    t0 = clock_mono_ms();
    assert_int_equal(info(p2, 1, 0, err), DV_EIO);
    assert_true(clock_mono_ms() - t0 < 3000);
    assert_non_null(strstr(err, "not connected"));
    assert_false(tr_connected(p2));

    struct tr_peer *bad;
    assert_int_equal(tr_open(t, "nosuch://x", NULL, &bad, err), DV_EINVAL);

    tr_peer_close(p2);
    tr_peer_close(p);
    tr_free(t);
    assert_int_equal(rpcsrv_drain(s, 1000), 0);
    rpcsrv_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_calls_and_ownership),
        cmocka_unit_test(test_fake_drop_request_and_reply),
        cmocka_unit_test(test_fake_every_nth),
        cmocka_unit_test(test_fake_determinism),
        cmocka_unit_test(test_fake_delay),
        cmocka_unit_test(test_fake_silent_and_refused),
        cmocka_unit_test(test_fake_partition_heal),
        cmocka_unit_test(test_nng),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
