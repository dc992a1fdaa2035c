/* test_fsm.c - the cluster-map state machine on raft's deterministic fixture (raft/fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "buf.h"
#include "cmap.h"
#include "cmap_util.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "place.h"

/*
 * Every test runs a group of coordinators in raft's in-memory fixture (simulated time, no
 * threads) and keeps a reference map that gets every committed entry applied directly. After
 * each step of a scenario every live coordinator's map must equal the reference
 * (cmap_equal), and the results the leader's raft_apply callback reports must equal the
 * reference's results.
 */

#define MAX_REQS 512

/* Lossy network: every LOSSY_EVERY fixture events (on average) one random link goes down
 * (LOSSY_DOWN times in 10) or comes back up. */
#define LOSSY_EVERY 5
#define LOSSY_DOWN  3

/* One raft_apply in flight and what its callback reported. */
struct req {
    struct raft_apply a;
    bool done;
    int status;
    uint32_t n;
    struct cmap_result r[8];
};

struct cluster {
    struct raft_fixture f;
    unsigned n;
    struct raft_fsm fsms[RAFT_FIXTURE_MAX_SERVERS];
    struct cmap_fsm cf[RAFT_FIXTURE_MAX_SERVERS];
    struct cmap ref;
    uint64_t seq;
    struct req reqs[MAX_REQS]; /* alive until raft_fixture_close fires what is pending */
    unsigned n_reqs;
    uint64_t lossy_rng; /* lossy network: 0 when off */
    unsigned n_retries; /* submissions after the first, over all commits */
    unsigned n_dups;    /* commits whose successful answer was a duplicate */
};

static void on_applied(struct raft_apply *a, int status, void *result)
{
    struct req *q = a->data;
    q->done = true;
    q->status = status;
    if (status != 0)
        return;
    /* The results belong to the FSM and live only during this callback: copy them. */
    const struct cmap_results *res = result;
    assert_non_null(res);
    q->n = res->n;
    assert_true(res->n <= 8);
    memcpy(q->r, res->r, res->n * sizeof res->r[0]);
}

static struct cluster *cl_start(unsigned n, unsigned snapshot_threshold)
{
    struct cluster *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->n = n;
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(cmap_fsm_init(&c->cf[i], &c->fsms[i], 64), DV_OK);
        assert_int_equal(raft_fixture_grow(&c->f, &c->fsms[i]), 0);
        if (snapshot_threshold) {
            raft_set_snapshot_threshold(raft_fixture_get(&c->f, i), snapshot_threshold);
            raft_set_snapshot_trailing(raft_fixture_get(&c->f, i), snapshot_threshold / 2);
        }
    }
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&c->f, n, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&c->f), 0);
    assert_int_equal(cmap_init(&c->ref, 64), DV_OK);
    return c;
}

static void cl_stop(struct cluster *c)
{
    raft_fixture_close(&c->f);
    for (unsigned i = 0; i < c->n; i++)
        cmap_fsm_close(&c->cf[i]);
    cmap_free(&c->ref);
    free(c);
}

/* The i-th command of a scenario, built from the reference map as a leader would. Some of
 * them fail on purpose (a move of a missing collection, a stale expected epoch...): the
 * failures must be identical everywhere too. */
static void gen(struct cluster *c, unsigned i, struct buf *out)
{
    struct cmap_cmd cmd;
    char id[32], err[DV_ERRMSG_SIZE];
    memset(&cmd, 0, sizeof cmd);
    const struct cmap *m = &c->ref;
    const struct cmap_coll *last = m->n_colls ? m->colls[m->n_colls - 1] : NULL;
    switch (i < 5 ? 0 : 1 + i % 6) {
    case 0:
        snprintf(id, sizeof id, "node-%u", i);
        cmd = cu_reg(id, i % 2 ? CMAP_NODE_JOINING : CMAP_NODE_ALIVE, 1.0 + i % 3);
        break;
    case 1:
        cmd.type = CMAP_CMD_COLL_CREATE;
        snprintf(cmd.u.coll_create.name, sizeof cmd.u.coll_create.name, "coll-%u", i);
        cmd.u.coll_create.cfg = cu_cfg(4 + i % 8, 2);
        assert_int_equal(place_fill_create(m, &cmd, err), DV_OK);
        break;
    case 2:
        snprintf(id, sizeof id, "node-%u", i % 5);
        cmd = cu_state(id, i % 4 < 2 ? CMAP_NODE_SUSPECT : CMAP_NODE_ALIVE, 1000 * i);
        break;
    case 3: {
        /* A move of the last collection's partition from its primary to another node. */
        uint32_t p = last ? i % last->cfg.n_parts : 0;
        const char *from = last ? cmap_node_get(m, last->parts[p].primary)->id : "node-0";
        snprintf(id, sizeof id, "node-%u", i % 5);
        cmd =
            cu_move(CMAP_CMD_MOVE_ADD, last ? last->name : "none", p, from, id, CMAP_MOVE_PLANNED);
        break;
    }
    case 4:
        if (m->n_moves) {
            const struct cmap_move *mv = &m->moves[0];
            cmd = cu_move(mv->state >= CMAP_MOVE_SWITCHING ? CMAP_CMD_MOVE_REMOVE
                                                           : CMAP_CMD_MOVE_UPDATE,
                          mv->coll, mv->part, cmap_node_get(m, mv->from)->id,
                          cmap_node_get(m, mv->to)->id, mv->state + 1);
        } else {
            cmd = cu_weight("node-1", 0.5 + i % 4);
        }
        break;
    case 5:
        if (last) {
            /* Rotate the replicas of one partition, expecting its current epoch. */
            const struct cmap_part *pt = &last->parts[i % last->cfg.n_parts];
            const char *ids[CMAP_MAX_REPLICAS];
            for (uint32_t k = 0; k < pt->n; k++)
                ids[k] = cmap_node_get(m, pt->nodes[(k + 1) % pt->n])->id;
            cmd = cu_pset(last->name, i % last->cfg.n_parts, i % 5 ? pt->epoch : 1, ids, pt->n, 0);
        } else {
            cmd = cu_drop("none");
        }
        break;
    default:
        if (i % 12 == 0 && m->n_colls > 2)
            cmd = cu_drop(m->colls[0]->name);
        else
            cmd = cu_reg_reports("node-2", i % 4);
        break;
    }
    cmd.req = cmap_reqid_make(0xF5, ++c->seq);
    int rc = cmap_cmd_encode(&cmd, out, err);
    if (rc != DV_OK)
        fail_msg("command %u: %s", i, err);
    assert_int_equal(out->len % 8, 0);
    cmap_cmd_free(&cmd);
}

/* A batch of `k` generated commands (generated against the reference as it is now). */
static void gen_batch(struct cluster *c, unsigned i, unsigned k, struct buf *out)
{
    struct buf parts[8];
    const void *p[8];
    size_t len[8];
    char err[DV_ERRMSG_SIZE];
    assert_true(k <= 8);
    for (unsigned j = 0; j < k; j++) {
        buf_init(&parts[j]);
        gen(c, i + j, &parts[j]);
        p[j] = parts[j].data;
        len[j] = parts[j].len;
    }
    assert_int_equal(cmap_batch_pack(p, len, k, out, err), DV_OK);
    assert_int_equal(out->len % 8, 0);
    for (unsigned j = 0; j < k; j++)
        buf_free(&parts[j]);
}

static bool in(unsigned mask, unsigned i)
{
    return mask & (1u << i);
}

/* The live server in RAFT_LEADER state with the highest term among `mask`, or c->n. */
static unsigned leader_in(struct cluster *c, unsigned mask)
{
    unsigned best = c->n;
    raft_term term = 0;
    for (unsigned i = 0; i < c->n; i++) {
        struct raft *r = raft_fixture_get(&c->f, i);
        if (in(mask, i) && raft_fixture_alive(&c->f, i) && raft_state(r) == RAFT_LEADER &&
            r->current_term >= term) {
            best = i;
            term = r->current_term;
        }
    }
    return best;
}

struct wait {
    struct cluster *c;
    unsigned mask;
    raft_index index;
    struct req *req;
};

static bool has_leader_in(struct raft_fixture *f, void *arg)
{
    struct wait *w = arg;
    return leader_in(w->c, w->mask) < w->c->n;
}

static bool applied_in(struct raft_fixture *f, void *arg)
{
    struct wait *w = arg;
    for (unsigned i = 0; i < w->c->n; i++)
        if (in(w->mask, i) && raft_last_applied(raft_fixture_get(f, i)) < w->index)
            return false;
    return true;
}

static bool req_done(struct raft_fixture *f, void *arg)
{
    return ((struct wait *)arg)->req->done;
}

/* Lossy network: a hook that, now and then, takes one random link down or brings it back.
 * Links stay down for a while (about 30% of them at a time), long enough for followers to
 * miss heartbeats and leaders to lose their quorum. */
static void lossy_hook(struct raft_fixture *f, struct raft_fixture_event *ev)
{
    struct cluster *c = (struct cluster *)f; /* f is the first member */
    if (!c->lossy_rng)
        return;
    uint64_t z = (c->lossy_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    if (z % LOSSY_EVERY != 0)
        return;
    unsigned i = (unsigned)((z >> 8) % c->n), j = (unsigned)((z >> 16) % c->n);
    if (i == j)
        return;
    if ((z >> 32) % 10 < LOSSY_DOWN)
        raft_fixture_saturate(f, i, j);
    else
        raft_fixture_desaturate(f, i, j);
}

static void heal(struct cluster *c)
{
    c->lossy_rng = 0;
    for (unsigned i = 0; i < c->n; i++)
        for (unsigned j = 0; j < c->n; j++)
            if (i != j)
                raft_fixture_desaturate(&c->f, i, j);
}

static struct req *new_req(struct cluster *c)
{
    assert_true(c->n_reqs < MAX_REQS);
    struct req *q = &c->reqs[c->n_reqs++];
    memset(q, 0, sizeof *q);
    q->a.data = q;
    return q;
}

/* raft_apply of one entry on server i. Returns false when raft refuses it (not leader). */
static bool submit(struct cluster *c, unsigned i, const struct buf *entry, struct req *q)
{
    struct raft_buffer b;
    assert_int_equal(cmap_fsm_entry(entry->data, entry->len, &b), DV_OK);
    int rv = raft_apply(raft_fixture_get(&c->f, i), &q->a, &b, 1, on_applied);
    if (rv != 0) {
        raft_free(b.base);
        return false;
    }
    return true;
}

static void wait_applied(struct cluster *c, unsigned mask, raft_index index)
{
    struct wait w = {.c = c, .mask = mask, .index = index};
    if (raft_fixture_step_until(&c->f, applied_in, &w, 30000))
        return;
    for (unsigned i = 0; i < c->n; i++) {
        struct raft *r = raft_fixture_get(&c->f, i);
        printf("# server %u: state %d, applied %llu, commit %llu, last %llu\n", i, raft_state(r),
               raft_last_applied(r), r->commit_index, raft_last_index(r));
    }
    fail_msg("index %llu not applied on every server of mask %#x", index, mask);
}

/* Every live server of `mask` holds the reference map. */
static void assert_same(struct cluster *c, unsigned mask)
{
    for (unsigned i = 0; i < c->n; i++)
        if (in(mask, i) && raft_fixture_alive(&c->f, i) && !cmap_equal(&c->cf[i].map, &c->ref))
            fail_msg("server %u's map differs from the reference", i);
}

static void assert_results(const struct req *q, const struct cmap_results *want)
{
    assert_int_equal(q->n, want->n);
    for (uint32_t k = 0; k < q->n; k++) {
        if (q->r[k].code != want->r[k].code)
            fail_msg("result %u: %s (%s), reference %s (%s)", k, dv_errname(q->r[k].code),
                     q->r[k].msg, dv_errname(want->r[k].code), want->r[k].msg);
        assert_int_equal(q->r[k].epoch, want->r[k].epoch);
    }
}

/*
 * Commits one entry through the leader among `mask`, as a client would: on a refusal or a
 * lost leadership it submits the same bytes (same request ids) again to whichever server
 * leads then. Applies the entry to the reference, checks the results, waits until every
 * server of `mask` applied it and checks their maps.
 */
static void commit(struct cluster *c, unsigned mask, const struct buf *entry)
{
    struct cmap_results want = {0};
    assert_int_equal(cmap_apply(&c->ref, entry->data, entry->len, &want), DV_OK);
    for (int attempt = 0; attempt < 20; attempt++) {
        struct wait w = {.c = c, .mask = mask};
        c->n_retries += attempt > 0;
        if (!raft_fixture_step_until(&c->f, has_leader_in, &w, 10000))
            fail_msg("no leader among mask %#x", mask);
        unsigned l = leader_in(c, mask);
        struct req *q = new_req(c);
        if (!submit(c, l, entry, q)) {
            raft_fixture_step_until_elapsed(&c->f, 100);
            continue;
        }
        w.req = q;
        raft_fixture_step_until(&c->f, req_done, &w, 5000);
        if (!q->done || q->status != 0)
            continue; /* lost leadership: maybe committed, maybe not; retry */
        assert_results(q, &want);
        c->n_dups += q->n && q->r[0].dup;
        w.index = q->a.index;
        if (!c->lossy_rng)
            wait_applied(c, mask, w.index);
        assert_same(c, c->lossy_rng ? 1u << l : mask);
        cmap_results_free(&want);
        return;
    }
    fail_msg("entry not committed after 20 attempts");
}

static const unsigned ALL = 0xff;

/* ---- scenarios --------------------------------------------------------------------------- */

static void run_basic(unsigned n)
{
    struct cluster *c = cl_start(n, 0);
    raft_fixture_elect(&c->f, 0);
    struct buf e = BUF_INIT;
    for (unsigned i = 0; i < 40; i++) {
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, ALL, &e);
    }
    /* Pipelined: 20 entries in flight at once, each with its own callback. */
    struct cmap_results want[20];
    struct req *qs[20];
    memset(want, 0, sizeof want);
    for (unsigned i = 0; i < 20; i++) {
        buf_reset(&e);
        gen(c, 40 + i, &e);
        assert_int_equal(cmap_apply(&c->ref, e.data, e.len, &want[i]), DV_OK);
        qs[i] = new_req(c);
        assert_true(submit(c, 0, &e, qs[i]));
    }
    wait_applied(c, ALL, qs[19]->a.index);
    for (unsigned i = 0; i < 20; i++) {
        assert_true(qs[i]->done);
        assert_int_equal(qs[i]->status, 0);
        assert_results(qs[i], &want[i]);
        cmap_results_free(&want[i]);
    }
    assert_same(c, ALL);
    assert_true(c->ref.n_colls > 0 && c->ref.n_nodes == 5);
    buf_free(&e);
    cl_stop(c);
}

static void test_three(void **state)
{
    run_basic(3);
}

static void test_five(void **state)
{
    run_basic(5);
}

/* Batches: one raft entry, one result per command, in order. */
static void test_batches(void **state)
{
    struct cluster *c = cl_start(5, 0);
    raft_fixture_elect(&c->f, 3);
    struct buf e = BUF_INIT;
    unsigned i = 0;
    for (unsigned b = 0; b < 12; b++) {
        buf_reset(&e);
        unsigned k = 1 + b % 6;
        /* The generator reads the reference, so a batch is built from the state before it:
         * later members may fail where sequential commands would not. That is fine: the
         * results must just be the same everywhere. */
        gen_batch(c, i, k, &e);
        i += k;
        commit(c, ALL, &e);
    }
    assert_int_equal(c->cf[0].results.n, 6);
    buf_free(&e);
    cl_stop(c);
}

/* New leaders carry on from the same map. */
static void test_leader_change(void **state)
{
    struct cluster *c = cl_start(3, 0);
    struct buf e = BUF_INIT;
    unsigned i = 0;
    for (unsigned leader = 0; leader < 3; leader++) {
        raft_fixture_elect(&c->f, leader);
        for (unsigned k = 0; k < 10; k++, i++) {
            buf_reset(&e);
            gen(c, i, &e);
            commit(c, ALL, &e);
            assert_int_equal(leader_in(c, ALL), leader);
        }
        raft_fixture_depose(&c->f);
    }
    assert_same(c, ALL);
    buf_free(&e);
    cl_stop(c);
}

/* Five servers split 2 | 3: the minority cannot commit, the majority can; after healing the
 * minority's uncommitted entry is gone and its retry applies once. */
static void test_network_partition(void **state)
{
    struct cluster *c = cl_start(5, 0);
    raft_fixture_elect(&c->f, 0);
    struct buf e = BUF_INIT, x = BUF_INIT;
    unsigned i = 0;
    for (; i < 8; i++) {
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, ALL, &e);
    }
    const unsigned minority = 0x03, majority = 0x1c;
    for (unsigned a = 0; a < 5; a++)
        for (unsigned b = 0; b < 5; b++)
            if (in(minority, a) != in(minority, b))
                raft_fixture_saturate(&c->f, a, b);

    /* The old leader takes an entry it cannot commit. */
    gen(c, i++, &x);
    struct req *qx = new_req(c);
    assert_true(submit(c, 0, &x, qx));
    raft_index xi = qx->a.index;
    raft_fixture_step_until_elapsed(&c->f, 3000);
    for (unsigned s = 0; s < 5; s++)
        assert_true(raft_last_applied(raft_fixture_get(&c->f, s)) < xi);
    assert_same(c, ALL);
    /* It stepped down for lack of a quorum, failing the request. */
    assert_true(qx->done);
    assert_int_equal(qx->status, RAFT_LEADERSHIPLOST);
    assert_int_not_equal(raft_state(raft_fixture_get(&c->f, 0)), RAFT_LEADER);

    /* The majority elects a leader and commits. */
    for (unsigned k = 0; k < 10; k++, i++) {
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, majority, &e);
    }
    assert_same(c, majority);
    unsigned l = leader_in(c, majority);
    assert_true(in(majority, l));

    /* Heal: the minority catches up and drops its own entry. */
    heal(c);
    wait_applied(c, ALL, raft_last_applied(raft_fixture_get(&c->f, l)));
    assert_same(c, ALL);
    /* The client retries x (same request id): it applies now, once. */
    commit(c, ALL, &x);
    uint64_t epoch = c->ref.epoch;
    commit(c, ALL, &x); /* and again: a duplicate, nothing changes */
    assert_int_equal(c->ref.epoch, epoch);
    assert_true(c->reqs[c->n_reqs - 1].r[0].dup);
    buf_free(&e);
    buf_free(&x);
    cl_stop(c);
}

/* Messages lost on random links, leaders coming and going: commands retried by the client
 * still apply once and every map ends up identical. */
static void test_lost_messages(void **state)
{
    struct cluster *c = cl_start(5, 0);
    raft_fixture_hook(&c->f, lossy_hook);
    raft_fixture_elect(&c->f, 1);
    c->lossy_rng = 4242;
    struct buf e = BUF_INIT;
    for (unsigned i = 0; i < 60; i++) {
        buf_reset(&e);
        if (i % 5 == 4)
            gen_batch(c, i, 3, &e);
        else
            gen(c, i, &e);
        commit(c, ALL, &e);
    }
    heal(c);
    unsigned l = leader_in(c, ALL);
    assert_true(l < c->n);
    wait_applied(c, ALL, raft_last_applied(raft_fixture_get(&c->f, l)));
    assert_same(c, ALL);
    /* The network did get in the way (the seed is fixed, so these numbers are too). */
    raft_term term = raft_fixture_get(&c->f, l)->current_term;
    printf("# lost messages: 60 entries, %u resubmissions (%u answered as duplicates: the "
           "first attempt had committed), leader term %llu, map epoch %llu\n",
           c->n_retries, c->n_dups, term, (unsigned long long)c->ref.epoch);
    assert_true(c->n_retries > 0 && term > 2);
    buf_free(&e);
    cl_stop(c);
}

/* A follower and then the leader die and come back; each catches up. */
static void test_kill_revive(void **state)
{
    struct cluster *c = cl_start(3, 0);
    raft_fixture_elect(&c->f, 0);
    struct buf e = BUF_INIT;
    unsigned i = 0;
    for (; i < 5; i++) {
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, ALL, &e);
    }
    raft_fixture_kill(&c->f, 2);
    for (; i < 15; i++) {
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, 0x3, &e);
    }
    assert_false(cmap_equal(&c->cf[2].map, &c->ref));
    raft_fixture_revive(&c->f, 2);
    wait_applied(c, ALL, raft_last_applied(raft_fixture_get(&c->f, 0)));
    assert_same(c, ALL);

    raft_fixture_kill(&c->f, 0); /* the leader */
    for (; i < 25; i++) {
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, 0x6, &e);
    }
    unsigned l = leader_in(c, 0x6);
    assert_true(l == 1 || l == 2);
    raft_fixture_revive(&c->f, 0);
    wait_applied(c, ALL, raft_last_applied(raft_fixture_get(&c->f, l)));
    assert_same(c, ALL);
    buf_free(&e);
    cl_stop(c);
}

static void change_cb(struct raft_change *req, int status)
{
    *(int *)req->data = status == 0 ? 1 : -1;
}

static bool change_done(struct raft_fixture *f, void *arg)
{
    return *(int *)arg != 0;
}

/* With a low snapshot threshold, a server that was down while the log moved on, and a new
 * server, both catch up from a snapshot (fsm restore); a retried command is still a duplicate
 * on a map restored from a snapshot. */
static void test_snapshots(void **state)
{
    struct cluster *c = cl_start(3, 8);
    raft_fixture_elect(&c->f, 0);
    struct buf e = BUF_INIT, old = BUF_INIT;
    unsigned i = 0;
    for (; i < 5; i++) {
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, ALL, &e);
    }
    raft_fixture_kill(&c->f, 2);
    for (; i < 45; i++) {
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, 0x3, &e);
        if (i == 40)
            buf_append(&old, e.data, e.len);
    }
    assert_true(c->cf[0].n_snapshots > 0);
    assert_true(raft_fixture_get(&c->f, 0)->log.snapshot.last_index >
                raft_last_applied(raft_fixture_get(&c->f, 2)));
    raft_fixture_revive(&c->f, 2);
    wait_applied(c, ALL, raft_last_applied(raft_fixture_get(&c->f, 0)));
    assert_true(c->cf[2].n_restores >= 1);
    assert_same(c, ALL);

    /* A fourth server joins empty and catches up. */
    struct cmap_fsm *nf = &c->cf[3];
    assert_int_equal(cmap_fsm_init(nf, &c->fsms[3], 64), DV_OK);
    assert_int_equal(raft_fixture_grow(&c->f, &c->fsms[3]), 0);
    c->n = 4;
    struct raft *r3 = raft_fixture_get(&c->f, 3);
    raft_set_snapshot_threshold(r3, 8);
    raft_set_snapshot_trailing(r3, 4);
    assert_int_equal(raft_start(r3), 0);
    int done = 0;
    struct raft_change ch = {.data = &done};
    assert_int_equal(raft_add(raft_fixture_get(&c->f, 0), &ch, 4, "4", change_cb), 0);
    assert_true(raft_fixture_step_until(&c->f, change_done, &done, 10000));
    assert_int_equal(done, 1);
    done = 0;
    assert_int_equal(raft_assign(raft_fixture_get(&c->f, 0), &ch, 4, RAFT_VOTER, change_cb), 0);
    assert_true(raft_fixture_step_until(&c->f, change_done, &done, 10000));
    assert_int_equal(done, 1);
    wait_applied(c, ALL, raft_last_applied(raft_fixture_get(&c->f, 0)));
    assert_true(nf->n_restores >= 1);
    assert_same(c, ALL);

    /* The restored server leads and a retry of an old command is answered as one. */
    raft_fixture_depose(&c->f);
    raft_fixture_elect(&c->f, 2);
    uint64_t epoch = c->ref.epoch;
    commit(c, ALL, &old);
    assert_true(c->reqs[c->n_reqs - 1].r[0].dup);
    assert_int_equal(c->ref.epoch, epoch);
    buf_free(&e);
    buf_free(&old);
    cl_stop(c);
}

/* The same entry committed twice (a client retry after RAFT_LEADERSHIPLOST) changes the map
 * once; the second answer is the first one, marked dup. */
static void test_retry(void **state)
{
    struct cluster *c = cl_start(3, 0);
    raft_fixture_elect(&c->f, 0);
    struct buf e = BUF_INIT;
    for (unsigned i = 0; i < 6; i++) {
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, ALL, &e);
    }
    buf_reset(&e);
    gen(c, 7, &e); /* a create */
    commit(c, ALL, &e);
    struct req first = c->reqs[c->n_reqs - 1];
    assert_int_equal(first.r[0].code, DV_OK);
    assert_false(first.r[0].dup);
    struct cmap before;
    assert_int_equal(cmap_copy(&before, &c->cf[1].map), DV_OK);
    struct req *q = new_req(c);
    assert_true(submit(c, 0, &e, q));
    wait_applied(c, ALL, q->a.index);
    assert_true(q->done && q->status == 0);
    assert_true(q->r[0].dup);
    assert_int_equal(q->r[0].code, first.r[0].code);
    assert_int_equal(q->r[0].epoch, first.r[0].epoch);
    for (unsigned s = 0; s < 3; s++)
        assert_true(cmap_equal(&c->cf[s].map, &before));
    cmap_free(&before);
    buf_free(&e);
    cl_stop(c);
}

/* An apply that fails with RAFT_NOMEM (changing nothing) `nomem_left` times once armed, then
 * hands over to the real one. */
static int (*real_apply)(struct raft_fsm *, const struct raft_buffer *, void **);
static int nomem_left, nomem_seen;

static int flaky_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    if (nomem_left > 0) {
        nomem_left--;
        nomem_seen++;
        return RAFT_NOMEM;
    }
    return real_apply(fsm, buf, result);
}

/*
 * What raft 0.15 does when the FSM's apply fails (cmap_fsm returns RAFT_NOMEM, with the map
 * unchanged): on the leader it logs nothing, keeps the entry and applies it again on its
 * next pass, so the group goes on; on a follower it turns the server RAFT_UNAVAILABLE for
 * good (the daemon must notice and restart it, which replays snapshot and log). Either way no
 * map diverges.
 */
static void test_apply_nomem(void **state)
{
    struct cluster *c = cl_start(3, 0);
    raft_fixture_elect(&c->f, 0);
    real_apply = c->fsms[0].apply;
    c->fsms[0].apply = flaky_apply; /* the leader */
    struct buf e = BUF_INIT;
    unsigned i = 0;
    for (; i < 20; i++) {
        if (i == 10)
            nomem_left = 3;
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, ALL, &e);
    }
    assert_int_equal(nomem_seen, 3);
    assert_same(c, ALL);
    assert_int_equal(raft_state(raft_fixture_get(&c->f, 0)), RAFT_LEADER);

    c->fsms[0].apply = real_apply;
    c->fsms[1].apply = flaky_apply; /* a follower */
    nomem_left = 1;
    struct cmap before;
    assert_int_equal(cmap_copy(&before, &c->ref), DV_OK);
    for (; i < 30; i++) {
        buf_reset(&e);
        gen(c, i, &e);
        commit(c, 0x5, &e);
    }
    assert_int_equal(nomem_seen, 4);
    assert_int_equal(raft_state(raft_fixture_get(&c->f, 1)), RAFT_UNAVAILABLE);
    assert_same(c, 0x5);
    /* The stopped server's map is the state before the entry it could not apply. */
    assert_true(cmap_equal(&c->cf[1].map, &before));
    assert_true(raft_last_applied(raft_fixture_get(&c->f, 1)) <
                raft_last_applied(raft_fixture_get(&c->f, 0)));
    cmap_free(&before);
    buf_free(&e);
    cl_stop(c);
}

/* The raft_fsm callbacks called directly: garbage entries, snapshots, bad snapshots. */
static void test_fsm_callbacks(void **state)
{
    struct cmap_fsm a, b;
    struct raft_fsm fa, fb;
    assert_int_equal(cmap_fsm_init(&a, &fa, 0), DV_OK);
    assert_int_equal(cmap_fsm_init(&b, &fb, 0), DV_OK);
    assert_int_equal(fa.version, 1);
    assert_ptr_equal(fa.data, &a);

    uint8_t junk[16] = {0x95, 1, 99};
    struct raft_buffer in = {junk, sizeof junk};
    void *result = NULL;
    assert_int_equal(fa.apply(&fa, &in, &result), 0);
    const struct cmap_results *res = result;
    assert_ptr_equal(res, &a.results);
    assert_int_equal(res->n, 1);
    assert_int_equal(res->r[0].code, DV_EPROTO);

    struct buf e = BUF_INIT;
    struct cmap_cmd cmd = cu_reg("n0", CMAP_NODE_ALIVE, 1.0);
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(cmap_cmd_encode(&cmd, &e, err), DV_OK);
    in.base = e.data;
    in.len = e.len;
    assert_int_equal(fa.apply(&fa, &in, &result), 0);
    assert_int_equal(((const struct cmap_results *)result)->r[0].code, DV_OK);

    struct raft_buffer *bufs;
    unsigned n_bufs;
    assert_int_equal(fa.snapshot(&fa, &bufs, &n_bufs), 0);
    assert_int_equal(n_bufs, 1);
    /* A corrupt snapshot is refused (logged: keep the test's output clean) and stays the
     * caller's. */
    FILE *devnull = fopen("/dev/null", "w");
    log_set_output(devnull);
    struct raft_buffer bad = {raft_malloc(bufs[0].len), bufs[0].len};
    memcpy(bad.base, bufs[0].base, bad.len);
    ((uint8_t *)bad.base)[bad.len - 1] ^= 0xff;
    assert_int_equal(fb.restore(&fb, &bad), RAFT_CORRUPT);
    log_set_output(NULL);
    fclose(devnull);
    raft_free(bad.base);
    /* A good one is taken (and freed by the FSM). */
    assert_int_equal(fb.restore(&fb, &bufs[0]), 0);
    raft_free(bufs);
    assert_true(cmap_equal(&a.map, &b.map));
    assert_int_equal(b.n_restores, 1);

    buf_free(&e);
    cmap_fsm_close(&a);
    cmap_fsm_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fsm_callbacks), cmocka_unit_test(test_three),
        cmocka_unit_test(test_five),          cmocka_unit_test(test_batches),
        cmocka_unit_test(test_leader_change), cmocka_unit_test(test_network_partition),
        cmocka_unit_test(test_lost_messages), cmocka_unit_test(test_kill_revive),
        cmocka_unit_test(test_snapshots),     cmocka_unit_test(test_retry),
        cmocka_unit_test(test_apply_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
