/* test_repl.c - primary-backup replication between real dvec-shard nodes (node + handler) on the
 * fake transport: a write to the primary reaches every secondary before it is answered,
 * secondaries that fail are named, stale terms are fenced, replicas stay identical. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "clock.h"
#include "handle.h"
#include "mpk.h"
#include "node.h"
#include "pull.h"
#include "part_util.h"
#include "tr_fake.h"

#define DIM        8
#define COLL       "c"
#define NODES      3
#define TIMEOUT_MS 200 /* a primary's wait for a secondary */

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

struct tnode {
    char id[16], url[32], dir[300];
    struct node *node;
    struct handle_ctx hc;
    struct tr *tr;
};

struct env {
    char dir[256];
    struct tr_fake_net *net;
    struct tnode n[NODES];
    struct tr *client;
    struct tr_peer *peer[NODES];
    uint64_t seed;
    uint64_t epoch; /* the newest map epoch a write named: reads use it */
};

static int serve(void *arg, const void *in, size_t n, struct buf *out, struct rpcsrv_result *res)
{
    struct tnode *t = arg;
    return handle_request(&t->hc, in, n, out, res);
}

static void node_up(struct env *e, int i)
{
    struct tnode *t = &e->n[i];
    struct node_opts o = {0};
    part_opts_default(&o.part);
    o.snapshot_idle_ms = 60000;
    o.force_fsync = -1;
    o.tr = t->tr;
    o.repl_timeout_ms = TIMEOUT_MS;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(node_open(t->dir, &o, &t->node, err), DV_OK);
    t->hc = (struct handle_ctx){.node = t->node,
                                .node_id = t->id,
                                .version = "test",
                                .max_msg = PROTO_MAX_MSG,
                                .started_ms = clock_mono_ms()};
    atomic_init(&t->hc.draining, false);
    assert_int_equal(tr_fake_serve(e->net, t->id, t->url, serve, t), DV_OK);
}

static void node_down(struct env *e, int i)
{
    tr_fake_unserve(e->net, e->n[i].url);
    node_close(e->n[i].node, false);
    e->n[i].node = NULL;
}

static struct env *env_new(void)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    const char *seed = getenv("DVEC_TEST_SEED");
    e->seed = seed ? strtoull(seed, NULL, 10) : 15;
    snprintf(e->dir, sizeof e->dir, "/tmp/dvec-test-repl-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    assert_int_equal(tr_fake_net_new(e->seed, &e->net), DV_OK);
    for (int i = 0; i < NODES; i++) {
        struct tnode *t = &e->n[i];
        snprintf(t->id, sizeof t->id, "node-%d", i + 1);
        snprintf(t->url, sizeof t->url, "fake://node-%d", i + 1);
        snprintf(t->dir, sizeof t->dir, "%s/%s", e->dir, t->id);
        assert_int_equal(mkdir(t->dir, 0755), 0);
        assert_non_null(t->tr = tr_fake_new(e->net, t->id));
        node_up(e, i);
    }
    assert_non_null(e->client = tr_fake_new(e->net, "client"));
    char err[DV_ERRMSG_SIZE];
    for (int i = 0; i < NODES; i++)
        assert_int_equal(tr_open(e->client, e->n[i].url, NULL, &e->peer[i], err), DV_OK);
    return e;
}

static void env_free(struct env *e)
{
    for (int i = 0; i < NODES; i++)
        tr_peer_close(e->peer[i]);
    for (int i = 0; i < NODES; i++)
        if (e->n[i].node)
            node_down(e, i);
    tr_free(e->client);
    for (int i = 0; i < NODES; i++)
        tr_free(e->n[i].tr);
    tr_fake_net_free(e->net);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
    assert_int_equal(system(cmd), 0);
    free(e);
}

/* Whether a decoded string (not NUL-terminated) contains `what`. */
static bool has(struct msg_str s, const char *what)
{
    return s.p && memmem(s.p, s.len, what, strlen(what)) != NULL;
}

/* One call from the client to node i; returns the reply's code. */
static int call(struct env *e, int i, const struct msg *req, struct msg_reply *rep)
{
    char err[DV_ERRMSG_SIZE];
    return tr_call(e->peer[i], req, rep, 5000, err);
}

static void create_all(struct env *e)
{
    e->epoch = 1;
    for (int i = 0; i < NODES; i++) {
        struct msg req = {.type = MSG_REPLICA_CREATE, .addr = {S(COLL), 0, 1, 0}};
        req.u.create_req.cfg = (struct msg_coll_cfg){
            .dim = DIM, .metric = 0, .m = 8, .ef_construction = 32, .ef_search = 32};
        struct msg_reply rep;
        assert_int_equal(call(e, i, &req, &rep), DV_OK);
        msg_reply_free(&rep);
    }
}

/* The secondaries of a write from node `primary`: every other node whose bit is in `mask`. */
static uint32_t group(const struct env *e, int primary, unsigned mask, struct msg_peer *peers)
{
    uint32_t n = 0;
    for (int i = 0; i < NODES; i++)
        if (i != primary && (mask & (1u << i)))
            peers[n++] = (struct msg_peer){S(e->n[i].id), S(e->n[i].url)};
    return n;
}

/* Upserts points [from, from + cnt) to node `primary` with the given secondaries, epoch and
 * term; the reply stays in *rep (free it). */
static int upsert(struct env *e, int primary, unsigned mask, uint64_t epoch, uint64_t term,
                  uint64_t from, uint32_t cnt, struct msg_reply *rep)
{
    struct pid ids[64];
    float vecs[64 * DIM];
    struct msg_bytes pay[64];
    static const uint8_t p1[] = {0x81, 0xa1, 'k', 0x01}; /* {k: 1} */
    assert_true(cnt <= 64);
    for (uint32_t i = 0; i < cnt; i++) {
        ids[i] = pid_num(from + i);
        for (int d = 0; d < DIM; d++)
            vecs[i * DIM + d] = (float)((from + i) * 31 % 97) + (float)d * 0.25f;
        pay[i] = (struct msg_bytes){p1, sizeof p1};
    }
    struct msg_peer peers[NODES];
    if (epoch > e->epoch)
        e->epoch = epoch;
    struct msg req = {.type = MSG_UPSERT, .addr = {S(COLL), 0, epoch, term}};
    req.u.upsert_req = (struct msg_upsert_req){ids, vecs, pay, cnt, DIM, NULL};
    req.secondaries = peers;
    req.n_secondaries = group(e, primary, mask, peers);
    return call(e, primary, &req, rep);
}

static int delete_one(struct env *e, int primary, unsigned mask, uint64_t epoch, uint64_t term,
                      uint64_t id, struct msg_reply *rep)
{
    struct pid ids[1] = {pid_num(id)};
    struct msg_peer peers[NODES];
    if (epoch > e->epoch)
        e->epoch = epoch;
    struct msg req = {.type = MSG_DELETE, .addr = {S(COLL), 0, epoch, term}};
    req.u.delete_req = (struct msg_ids_req){ids, 1};
    req.secondaries = peers;
    req.n_secondaries = group(e, primary, mask, peers);
    return call(e, primary, &req, rep);
}

/* The replica of node i, as its info says. */
static uint64_t applied(struct env *e, int i)
{
    struct msg req = {.type = MSG_REPLICA_INFO, .addr = {S(COLL), 0, e->epoch, 0}};
    struct msg_reply rep;
    assert_int_equal(call(e, i, &req, &rep), DV_OK);
    uint64_t lsn = rep.m.u.info_rep.applied_lsn;
    msg_reply_free(&rep);
    return lsn;
}

/* Every point of node i's replica (ids, vectors, payloads) hashed in id order. */
static uint64_t digest(struct env *e, int i, uint64_t *count)
{
    uint64_t h = 1469598103934665603ull;
    struct pid from = {0};
    bool has_from = false;
    *count = 0;
    for (;;) {
        struct msg req = {.type = MSG_SCROLL, .addr = {S(COLL), 0, e->epoch, 0}};
        req.u.scroll_req = (struct msg_scroll_req){has_from, from, 100, {NULL, 0}, true, true};
        struct msg_reply rep;
        assert_int_equal(call(e, i, &req, &rep), DV_OK);
        const struct msg_scroll_rep *s = &rep.m.u.scroll_rep;
        for (uint32_t k = 0; k < s->hits.n; k++) {
            const struct msg_hit *x = &s->hits.hits[k];
            const uint8_t *parts[3] = {(const uint8_t *)&x->id, (const uint8_t *)x->vec,
                                       x->payload.p};
            size_t lens[3] = {sizeof x->id, x->vec ? x->dim * sizeof(float) : 0, x->payload.len};
            for (int j = 0; j < 3; j++)
                for (size_t b = 0; parts[j] && b < lens[j]; b++)
                    h = (h ^ parts[j][b]) * 1099511628211ull;
            (*count)++;
        }
        has_from = s->more;
        from = s->next;
        bool more = s->more;
        msg_reply_free(&rep);
        if (!more)
            return h;
    }
}

static void assert_identical(struct env *e, unsigned mask)
{
    uint64_t c0 = 0, d0 = 0, lsn0 = 0;
    bool first = true;
    for (int i = 0; i < NODES; i++) {
        if (!(mask & (1u << i)))
            continue;
        uint64_t c, d = digest(e, i, &c), lsn = applied(e, i);
        if (first) {
            c0 = c, d0 = d, lsn0 = lsn, first = false;
            continue;
        }
        if (c != c0 || d != d0 || lsn != lsn0)
            fail_msg("node-%d differs: %llu points lsn %llu, first has %llu points lsn %llu", i + 1,
                     (unsigned long long)c, (unsigned long long)lsn, (unsigned long long)c0,
                     (unsigned long long)lsn0);
    }
}

/* Upserts, deletes and payload changes on the primary reach both secondaries before the write
 * is answered: the three replicas are identical after each reply, with no failure named. */
static void test_replicated(void **state)
{
    (void)state;
    struct env *e = env_new();
    create_all(e);
    for (int round = 0; round < 10; round++) {
        struct msg_reply rep;
        assert_int_equal(upsert(e, 0, 7, 1, 1, (uint64_t)round * 10, 10, &rep), DV_OK);
        assert_int_equal(rep.m.u.write_rep.n_failed, 0);
        msg_reply_free(&rep);
        assert_int_equal(delete_one(e, 0, 7, 1, 1, (uint64_t)round * 10 + 3, &rep), DV_OK);
        assert_int_equal(rep.m.u.write_rep.n_failed, 0);
        msg_reply_free(&rep);
        assert_identical(e, 7);
    }
    uint64_t n;
    digest(e, 2, &n);
    assert_int_equal(n, 90);
    env_free(e);
}

/* A secondary that does not answer is named in the reply (timeout), within a bound; the other
 * secondary has the write. Within the epoch it stays failed (named at once, no more waiting);
 * a newer epoch without it replicates to the rest only. */
static void test_silent_secondary(void **state)
{
    (void)state;
    struct env *e = env_new();
    create_all(e);
    struct msg_reply rep;
    assert_int_equal(upsert(e, 0, 7, 1, 1, 0, 5, &rep), DV_OK);
    msg_reply_free(&rep);
    assert_int_equal(tr_fake_set_state(e->net, e->n[2].url, TR_FAKE_SILENT), DV_OK);
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(upsert(e, 0, 7, 1, 1, 5, 5, &rep), DV_OK);
    uint64_t took = clock_mono_ms() - t0;
    assert_int_equal(rep.m.u.write_rep.n_failed, 1);
    assert_memory_equal(rep.m.u.write_rep.failed[0].node_id.p, "node-3", 6);
    assert_int_equal(rep.m.u.write_rep.failed[0].code, DV_ETIMEDOUT);
    msg_reply_free(&rep);
    assert_true(took >= TIMEOUT_MS / 2); /* it waited for node-3 before naming it */
    assert_identical(e, 3);              /* node-1 and node-2 */

    /* failed for the epoch: named again without a call to it */
    struct tr_fake_counts before, after;
    tr_fake_counts(e->net, "node-1", e->n[2].url, &before);
    assert_int_equal(upsert(e, 0, 7, 1, 1, 10, 5, &rep), DV_OK);
    tr_fake_counts(e->net, "node-1", e->n[2].url, &after);
    assert_true(after.sent == before.sent);
    assert_int_equal(rep.m.u.write_rep.n_failed, 1);
    msg_reply_free(&rep);

    assert_int_equal(upsert(e, 0, 3, 2, 1, 15, 5, &rep), DV_OK); /* epoch 2: without node-3 */
    assert_int_equal(rep.m.u.write_rep.n_failed, 0);
    msg_reply_free(&rep);
    assert_identical(e, 3);
    assert_int_equal(tr_fake_set_state(e->net, e->n[2].url, TR_FAKE_UP), DV_OK);
    assert_true(applied(e, 2) < applied(e, 0));
    env_free(e);
}

/* Node i's primary-term history of partition 0. */
static uint32_t terms_of(struct env *e, int i, struct msg_term *out)
{
    struct node_replica *r;
    uint64_t known;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(node_acquire(e->n[i].node, COLL, 1, 0, 2, &r, &known, err), DV_OK);
    uint32_t n = node_terms(e->n[i].node, r, out);
    node_release(e->n[i].node, r);
    return n;
}

/* Terms fence: a secondary that has seen a newer term refuses the old primary's records (the
 * primary names it DV_ESTALE), a write naming an older term than the replica's is refused,
 * and the term survives a restart of the node. */
static void test_stale_term(void **state)
{
    (void)state;
    struct env *e = env_new();
    create_all(e);
    struct msg_reply rep;
    assert_int_equal(upsert(e, 0, 7, 1, 4, 0, 5, &rep), DV_OK);
    msg_reply_free(&rep);
    /* node-2 becomes primary in term 5 (the map promoted it) and writes */
    assert_int_equal(upsert(e, 1, 2, 2, 5, 100, 5, &rep), DV_OK);
    assert_int_equal(rep.m.u.write_rep.n_failed, 0);
    msg_reply_free(&rep);
    /* the old primary, still in term 4, cannot get its write onto node-2 */
    assert_int_equal(upsert(e, 0, 7, 2, 4, 200, 5, &rep), DV_OK);
    assert_int_equal(rep.m.u.write_rep.n_failed, 1); /* node-3 still follows term 4 */
    bool stale = false;
    for (uint32_t i = 0; i < rep.m.u.write_rep.n_failed; i++)
        if (rep.m.u.write_rep.failed[i].node_id.len == 6 &&
            memcmp(rep.m.u.write_rep.failed[i].node_id.p, "node-2", 6) == 0)
            stale = rep.m.u.write_rep.failed[i].code == DV_ESTALE;
    assert_true(stale);
    msg_reply_free(&rep);
    /* a client write in term 4 to node-2 itself */
    assert_int_equal(upsert(e, 1, 0, 2, 4, 300, 1, &rep), DV_ESTALE);
    assert_true(has(rep.m.err.text, "term"));
    msg_reply_free(&rep);
    /* restart node-2: term 5 is remembered, with the history of terms before it */
    struct msg_term before[NODE_MAX_TERMS + 1], after[NODE_MAX_TERMS + 1];
    uint32_t nb = terms_of(e, 1, before);
    assert_int_equal(nb, 2);
    assert_int_equal(before[0].term, 4);
    assert_int_equal(before[1].term, 5);
    assert_int_equal(before[1].start, 2); /* it had record 1 when it learned term 5 */
    node_down(e, 1);
    node_up(e, 1);
    assert_int_equal(terms_of(e, 1, after), nb);
    assert_memory_equal(after, before, nb * sizeof *before);
    assert_int_equal(upsert(e, 1, 0, 2, 4, 300, 1, &rep), DV_ESTALE);
    msg_reply_free(&rep);
    assert_int_equal(upsert(e, 1, 0, 2, 5, 300, 1, &rep), DV_OK);
    msg_reply_free(&rep);
    env_free(e);
}

/* A secondary that is behind (it missed records while out of the group) is not silently
 * given later ones: the primary names it ("must catch up") and it stays behind. */
static void test_gap(void **state)
{
    (void)state;
    struct env *e = env_new();
    create_all(e);
    struct msg_reply rep;
    assert_int_equal(upsert(e, 0, 3, 1, 1, 0, 5, &rep), DV_OK); /* node-3 not in the group */
    assert_int_equal(rep.m.u.write_rep.n_failed, 0);
    msg_reply_free(&rep);
    assert_int_equal(upsert(e, 0, 7, 2, 1, 5, 5, &rep), DV_OK); /* node-3 listed, but behind */
    assert_int_equal(rep.m.u.write_rep.n_failed, 1);
    assert_int_equal(rep.m.u.write_rep.failed[0].code, DV_ESTALE);
    assert_true(has(rep.m.u.write_rep.failed[0].text, "catch up"));
    msg_reply_free(&rep);
    assert_int_equal(applied(e, 2), 0);
    assert_identical(e, 3);
    env_free(e);
}

/* A secondary that holds a record the new primary never had (it got the old primary's last
 * write, the new primary did not) has diverged: it refuses the new primary's records from
 * where its term begins, instead of taking its own record for the new primary's. */
static void test_diverged(void **state)
{
    (void)state;
    struct env *e = env_new();
    create_all(e);
    struct msg_reply rep;
    assert_int_equal(upsert(e, 0, 7, 1, 1, 0, 5, &rep), DV_OK); /* LSN 1 everywhere */
    msg_reply_free(&rep);
    assert_int_equal(upsert(e, 0, 5, 2, 1, 5, 5, &rep), DV_OK); /* LSN 2 on node-1, node-3 */
    assert_int_equal(rep.m.u.write_rep.n_failed, 0);
    msg_reply_free(&rep);
    assert_int_equal(applied(e, 1), 1);
    assert_int_equal(applied(e, 2), 2);
    /* node-2 becomes primary in term 2 (node-3 did not answer the leader in time) and
     * replicates its own LSN 2 to node-3 */
    assert_int_equal(upsert(e, 1, 6, 3, 2, 100, 5, &rep), DV_OK);
    assert_int_equal(rep.m.u.write_rep.n_failed, 1);
    assert_memory_equal(rep.m.u.write_rep.failed[0].node_id.p, "node-3", 6);
    assert_int_equal(rep.m.u.write_rep.failed[0].code, DV_ESTALE);
    assert_true(has(rep.m.u.write_rep.failed[0].text, "diverged"));
    msg_reply_free(&rep);
    /* node-3 kept its own record 2 and took nothing of node-2's */
    uint64_t n;
    digest(e, 2, &n);
    assert_int_equal(n, 10);
    assert_int_equal(applied(e, 2), 2);
    env_free(e);
}

struct writer {
    struct env *e;
    int k;
    int failures;
};

static void *write_loop(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < 25; i++) {
        struct msg_reply rep;
        if (upsert(w->e, 0, 7, 1, 1, (uint64_t)w->k * 1000 + (uint64_t)i * 4, 4, &rep) != DV_OK ||
            rep.m.u.write_rep.n_failed != 0)
            w->failures++;
        msg_reply_free(&rep);
    }
    return NULL;
}

/* Concurrent writers share replication calls (group replication) and every write is on every
 * replica when answered. */
static void test_concurrent(void **state)
{
    (void)state;
    struct env *e = env_new();
    create_all(e);
    struct writer w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer){e, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, write_loop, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_identical(e, 7);
    uint64_t n;
    digest(e, 1, &n);
    assert_int_equal(n, 400);
    struct tr_fake_counts c;
    tr_fake_counts(e->net, "node-1", e->n[1].url, &c);
    assert_true(c.answered > 0 && c.answered <= 100);
    env_free(e);
}

/* One replica_pull call on node i about COLL partition 0 (source node `src`, incarnation). */
static int pull_op(struct env *e, int i, uint32_t op, int src, uint64_t incarnation, uint64_t until,
                   struct msg_pull_rep *st)
{
    struct msg req = {.type = MSG_REPLICA_PULL, .addr = {S(COLL), 0, e->epoch, 1}};
    req.u.pull_req.op = op;
    req.u.pull_req.source = S(e->n[src].url);
    req.u.pull_req.until_lsn = until;
    req.u.pull_req.create.cfg = (struct msg_coll_cfg){
        .dim = DIM, .metric = 0, .m = 8, .ef_construction = 32, .ef_search = 32};
    req.u.pull_req.create.incarnation = incarnation;
    struct msg_reply rep;
    int rc = call(e, i, &req, &rep);
    if (rc == DV_OK && st)
        *st = rep.m.u.pull_rep;
    if (st)
        st->error = (struct msg_str){NULL, 0};
    msg_reply_free(&rep);
    return rc;
}

/*
 * replica_pull resume: from the node's own replica when it is of the same incarnation (records
 * it missed taken from the source's WAL, no snapshot); never from a replica of another
 * incarnation (a collection of the same name dropped and created again), whose term history
 * would match the new one's by accident: that one is dropped and a snapshot copied.
 */
static void test_resume(void **state)
{
    (void)state;
    struct env *e = env_new();
    e->epoch = 1;
    /* nodes 1 and 2: incarnation 7; node 3: an older collection of the same name, 5 */
    for (int i = 0; i < NODES; i++) {
        struct msg req = {.type = MSG_REPLICA_CREATE, .addr = {S(COLL), 0, 1, 0}};
        req.u.create_req.cfg = (struct msg_coll_cfg){
            .dim = DIM, .metric = 0, .m = 8, .ef_construction = 32, .ef_search = 32};
        req.u.create_req.incarnation = i == 2 ? 5 : 7;
        struct msg_reply rep;
        assert_int_equal(call(e, i, &req, &rep), DV_OK);
        msg_reply_free(&rep);
    }
    struct msg_reply rep;
    assert_int_equal(upsert(e, 0, 3, 1, 1, 0, 20, &rep), DV_OK); /* nodes 1, 2 */
    msg_reply_free(&rep);
    assert_int_equal(upsert(e, 2, 0, 1, 1, 500, 20, &rep), DV_OK); /* node 3 alone: other data */
    msg_reply_free(&rep);
    assert_int_equal(upsert(e, 0, 1, 1, 1, 20, 20, &rep), DV_OK); /* node 1 only: 2 misses it */
    msg_reply_free(&rep);
    assert_int_equal(upsert(e, 0, 1, 1, 1, 40, 20, &rep), DV_OK);
    msg_reply_free(&rep);

    uint64_t c0, d0 = digest(e, 0, &c0), lsn0 = applied(e, 0);
    for (int i = 1; i < NODES; i++) {
        struct msg_pull_rep st;
        assert_int_equal(pull_op(e, i, MSG_PULL_RESUME, 0, 7, 0, &st), DV_OK);
        uint64_t end = clock_mono_ms() + 10000;
        while (!(st.state == MSG_PULL_CATCHING_UP && st.applied_lsn == lsn0) &&
               clock_mono_ms() < end) {
            clock_sleep_ms(5);
            assert_int_equal(pull_op(e, i, MSG_PULL_STATUS, 0, 7, 0, &st), DV_OK);
        }
        assert_int_equal(st.state, MSG_PULL_CATCHING_UP);
        assert_int_equal(pull_op(e, i, MSG_PULL_FINISH, 0, 7, lsn0, &st), DV_OK);
        assert_int_equal(st.state, MSG_PULL_READY);
        uint64_t c, d = digest(e, i, &c);
        assert_int_equal(c, c0);
        assert_true(d == d0);
        struct pull_stats ps;
        pull_get_stats(e->n[i].node, &ps);
        assert_int_equal(ps.resumed, i == 1 ? 1 : 0); /* node 3's went, snapshot instead */
        assert_int_equal(ps.finished, 1);
    }
    env_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replicated), cmocka_unit_test(test_silent_secondary),
        cmocka_unit_test(test_stale_term), cmocka_unit_test(test_gap),
        cmocka_unit_test(test_diverged),   cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_resume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
