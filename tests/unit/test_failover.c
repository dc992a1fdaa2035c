/* test_failover.c - replication through the coordinator (router.c, insync.c, the leader's
 * failover) on a cluster of real nodes in one process (coord_fixture.h): a secondary that stops
 * answering leaves the in-sync set before a write is acknowledged, a primary that stops
 * answering is replaced by an in-sync replica, and every acknowledged write is on every
 * in-sync replica. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "coord_fixture.h"
#include "err.h"
#include "mpk.h"
#include "place.h"
#include "pull.h"
#include "transport.h"

#define DIM   8
#define COLL  "f"
#define PARTS 4
#define BATCH 20

static struct coord_fixture *open_cluster(void)
{
    char err[DV_ERRMSG_SIZE] = "";
    struct coord_fixture *f;
    struct cf_opts o = {.n_nodes = 3, .request_timeout_ms = 1000, .pull_call_ms = 100};
    int rc = cf_open(cf_seed(), &o, &f, err);
    if (rc != DV_OK)
        fail_msg("cf_open: %s: %s", dv_errname(rc), err);
    if ((rc = cf_create(f, COLL, DIM, PARTS, 3, err)) != DV_OK)
        fail_msg("cf_create: %s: %s", dv_errname(rc), err);
    return f;
}

static void vec_of(uint64_t id, uint32_t version, float *v)
{
    for (uint32_t d = 0; d < DIM; d++)
        v[d] = (float)((id * 2654435761u + d * 40503u + version * 7919u) % 1000) / 1000.0f;
}

/* Upserts ids [from, from + n) at `version`; DV_OK when acknowledged. */
static int write_batch(struct coord_fixture *f, uint64_t from, uint32_t n, uint32_t version,
                       char *err)
{
    struct pid ids[BATCH];
    float v[BATCH * DIM];
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = pid_num(from + i);
        vec_of(from + i, version, v + i * DIM);
    }
    return cf_upsert(f, COLL, ids, v, n, DIM, err);
}

/* A copy of the partition's map entry. */
static struct cmap_part part_of(struct coord_fixture *f, uint32_t p)
{
    struct cmap_ref *ref = craft_map(f->c.raft);
    struct cmap_part pt = *cmap_part_find(&ref->map, COLL, p);
    craft_map_release(f->c.raft, ref);
    return pt;
}

/* Node index (0-based) of map node number num: the fixture names node i "node-<i+1>". */
static int index_of(struct coord_fixture *f, uint32_t num)
{
    struct cmap_ref *ref = craft_map(f->c.raft);
    const struct cmap_node *n = cmap_node_get(&ref->map, num);
    int i = n ? atoi(n->id + 5) - 1 : -1;
    craft_map_release(f->c.raft, ref);
    return i;
}

/* Every acknowledged point (ids [0, n) at versions ver[]; version 0: never written) is on
 * every in-sync replica of its partition with its last acknowledged vector, and the in-sync
 * replicas count the same. */
static void check_in_sync(struct coord_fixture *f, uint64_t n, const uint32_t *ver)
{
    for (uint32_t p = 0; p < PARTS; p++) {
        struct cmap_part pt = part_of(f, p);
        uint64_t first = UINT64_MAX;
        for (uint32_t k = 0; k < pt.n; k++) {
            if (pt.state[k] != CMAP_REPLICA_ACTIVE)
                continue;
            struct cf_node *nd = &f->nodes[index_of(f, pt.nodes[k])];
            uint64_t count;
            assert_int_equal(cf_replica_count(nd, COLL, p, &count), DV_OK);
            if (first == UINT64_MAX)
                first = count;
            if (count != first)
                fail_msg("partition %u: %s has %" PRIu64
                         " points, another in-sync replica %" PRIu64,
                         p, nd->id, count, first);
            for (uint64_t id = 0; id < n; id++) {
                struct pid pid = pid_num(id);
                if (ver[id] == 0 || place_partition_of(&pid, PARTS) != p)
                    continue;
                float got[DIM], want[DIM];
                bool has;
                assert_int_equal(cf_replica_has(nd, COLL, p, &pid, got, DIM, &has), DV_OK);
                if (!has)
                    fail_msg("partition %u: acknowledged point %" PRIu64 " missing on %s", p, id,
                             nd->id);
                vec_of(id, ver[id], want);
                assert_memory_equal(got, want, sizeof want);
            }
        }
    }
}

/* Whether partition 0 has another primary (or term) than *arg (a struct cmap_part). */
static bool primary_moved(struct coord_fixture *f, void *arg)
{
    const struct cmap_part *was = arg;
    struct cmap_part now = part_of(f, 0);
    return now.term > was->term && now.primary != was->primary;
}

/* Whether every replica of every partition is in sync. */
static bool all_in_sync(struct coord_fixture *f, void *arg)
{
    (void)arg;
    for (uint32_t p = 0; p < PARTS; p++) {
        struct cmap_part pt = part_of(f, p);
        for (uint32_t k = 0; k < pt.n; k++)
            if (pt.state[k] != CMAP_REPLICA_ACTIVE)
                return false;
    }
    return true;
}

/* A secondary stops answering: writes are still acknowledged (after at most a replication
 * timeout), the secondary leaves the in-sync set of every partition written, and the other
 * replicas hold every acknowledged write. Partitions whose primary it was fail over. */
static void test_node_silent(void **state)
{
    (void)state;
    struct coord_fixture *f = open_cluster();
    char err[DV_ERRMSG_SIZE];
    static uint32_t ver[420];
    for (uint64_t id = 0; id < 200; id += BATCH) {
        assert_int_equal(write_batch(f, id, BATCH, 1, err), DV_OK);
        for (uint32_t i = 0; i < BATCH; i++)
            ver[id + i] = 1;
    }
    check_in_sync(f, 200, ver);
    /* node-3 stops answering (a paused process) */
    assert_int_equal(tr_fake_set_state(f->net, f->nodes[2].url, TR_FAKE_SILENT), DV_OK);
    uint64_t t0 = clock_mono_ms();
    for (uint64_t id = 100; id < 300; id += BATCH) {
        int rc = write_batch(f, id, BATCH, 2, err);
        if (rc != DV_OK)
            fail_msg("write %" PRIu64 " with node-3 silent: %s: %s", id, dv_errname(rc), err);
        for (uint32_t i = 0; i < BATCH; i++)
            ver[id + i] = 2;
    }
    printf("# 10 batches with a silent node: %" PRIu64 " ms\n", clock_mono_ms() - t0);
    for (uint32_t p = 0; p < PARTS; p++) {
        struct cmap_part pt = part_of(f, p);
        assert_int_not_equal(index_of(f, pt.primary), 2);
        for (uint32_t k = 0; k < pt.n; k++)
            if (index_of(f, pt.nodes[k]) == 2)
                assert_int_equal(pt.state[k], CMAP_REPLICA_DEAD);
        assert_true(pt.term >= 1);
    }
    check_in_sync(f, 300, ver);
    /* the silent node is back: it missed writes, so it copies the partitions from their
     * primaries (writes going on meanwhile) and rejoins the in-sync sets */
    assert_int_equal(tr_fake_set_state(f->net, f->nodes[2].url, TR_FAKE_UP), DV_OK);
    t0 = clock_mono_ms();
    uint64_t id = 300;
    while (!all_in_sync(f, NULL) && clock_mono_ms() - t0 < 30000) {
        assert_int_equal(write_batch(f, id % 400, BATCH, 3, err), DV_OK);
        for (uint32_t i = 0; i < BATCH; i++)
            ver[id % 400 + i] = 3;
        id += BATCH;
        if (id % 400 == 0)
            id += 0; /* wraps over ids 0..399 (updates) */
    }
    assert_true(all_in_sync(f, NULL));
    printf("# node-3 back in every in-sync set after %" PRIu64 " ms (%" PRIu64 " writes)\n",
           clock_mono_ms() - t0, (id - 300) / BATCH);
    assert_int_equal(write_batch(f, 0, BATCH, 4, err), DV_OK);
    for (uint32_t i = 0; i < BATCH; i++)
        ver[i] = 4;
    check_in_sync(f, 400, ver);
    for (uint32_t p = 0; p < PARTS; p++)
        assert_int_equal(part_of(f, p).n, 3);
    cf_close(f);
}

/* The first n ids below 200 that fall in partition p (there are that many). */
static uint32_t ids_in_part(uint32_t p, struct pid *ids, uint32_t n)
{
    uint32_t got = 0;
    for (uint64_t id = 0; id < 200 && got < n; id++) {
        ids[got] = pid_num(id);
        if (place_partition_of(&ids[got], PARTS) == p)
            got++;
    }
    assert_int_equal(got, n);
    return got;
}

/* An upsert of `n` ids at `version` sent straight to partition p's primary (as libdvec's
 * one-hop write sends it) with the route `pt` a client read earlier: its epoch, term and the
 * in-sync secondaries it named. */
static int direct_write(struct coord_fixture *f, uint32_t p, const struct cmap_part *pt,
                        const struct pid *ids, uint32_t n, uint32_t version, struct msg_reply *rep,
                        char *err)
{
    struct msg_peer group[CMAP_MAX_REPLICAS];
    uint32_t ng = 0;
    for (uint32_t k = 0; k < pt->n; k++)
        if (pt->state[k] == CMAP_REPLICA_ACTIVE && pt->nodes[k] != pt->primary) {
            const struct cf_node *nd = &f->nodes[index_of(f, pt->nodes[k])];
            group[ng++] = (struct msg_peer){{nd->id, (uint32_t)strlen(nd->id)},
                                            {nd->url, (uint32_t)strlen(nd->url)}};
        }
    float v[BATCH * DIM];
    for (uint32_t i = 0; i < n; i++)
        vec_of(ids[i].lo, version, v + i * DIM);
    struct msg m = {.type = MSG_UPSERT};
    m.addr = (struct msg_addr){{COLL, 1}, p, pt->epoch, pt->term};
    m.u.upsert_req = (struct msg_upsert_req){(struct pid *)ids, v, NULL, n, DIM, NULL};
    m.secondaries = group;
    m.n_secondaries = ng;
    struct tr_opts o;
    tr_opts_default(&o);
    struct tr_peer *peer;
    int rc = tr_open(f->client, f->nodes[index_of(f, pt->primary)].url, &o, &peer, err);
    if (rc != DV_OK)
        return rc;
    rc = tr_call(peer, &m, rep, 2000, err);
    tr_peer_close(peer);
    return rc;
}

/*
 * One hop for writes (libdvec's direct_write.c): a client whose route went stale writes
 * straight to a primary with the group it knew. Node-3 leaves the in-sync sets (silent), a
 * client reads partition p's route, node-3 recovers and rejoins: the stale route's write
 * (which would not replicate to node-3) is refused with DV_ESTALE, since the recovery unfenced
 * the primary with the new epoch. The same write with the current route is acknowledged with
 * no failed secondary and lands on every in-sync replica, node-3 included.
 */
static void test_stale_route_write(void **state)
{
    (void)state;
    struct coord_fixture *f = open_cluster();
    char err[DV_ERRMSG_SIZE];
    static uint32_t ver[420];
    for (uint64_t id = 0; id < 200; id += BATCH) {
        assert_int_equal(write_batch(f, id, BATCH, 1, err), DV_OK);
        for (uint32_t i = 0; i < BATCH; i++)
            ver[id + i] = 1;
    }
    assert_int_equal(tr_fake_set_state(f->net, f->nodes[2].url, TR_FAKE_SILENT), DV_OK);
    for (uint64_t id = 0; id < 200; id += BATCH) /* node-3 leaves every in-sync set */
        assert_int_equal(write_batch(f, id, BATCH, 2, err), DV_OK);
    for (uint64_t id = 0; id < 200; id++)
        ver[id] = 2;
    uint32_t p = 0;
    while (p < PARTS && index_of(f, part_of(f, p).primary) == 2)
        p++;
    assert_true(p < PARTS);
    struct cmap_part stale = part_of(f, p);
    struct pid ids[5];
    uint32_t n = ids_in_part(p, ids, 5);

    assert_int_equal(tr_fake_set_state(f->net, f->nodes[2].url, TR_FAKE_UP), DV_OK);
    uint64_t t0 = clock_mono_ms();
    while (!all_in_sync(f, NULL) && clock_mono_ms() - t0 < 30000)
        assert_int_equal(write_batch(f, 300, BATCH, 3, err), DV_OK);
    assert_true(all_in_sync(f, NULL));
    for (uint32_t i = 0; i < BATCH; i++)
        ver[300 + i] = 3;
    struct cmap_part now = part_of(f, p);
    uint32_t insync = 0;
    for (uint32_t k = 0; k < stale.n; k++)
        insync += stale.state[k] == CMAP_REPLICA_ACTIVE;
    printf("# partition %u: a route of epoch %" PRIu64 " (%u of %u replicas in sync), now epoch "
           "%" PRIu64 "\n",
           p, stale.epoch, insync, stale.n, now.epoch);
    assert_int_equal(insync, 2); /* the stale route's group lacks node-3 */
    assert_true(now.epoch > stale.epoch);
    assert_int_equal(now.primary, stale.primary);

    struct msg_reply rep;
    int rc = direct_write(f, p, &stale, ids, n, 4, &rep, err);
    printf("# the stale route's write: %s \"%s\"\n", dv_errname(rc), err);
    msg_reply_free(&rep);
    assert_int_equal(rc, DV_ESTALE);
    check_in_sync(f, 420, ver);

    assert_int_equal(direct_write(f, p, &now, ids, n, 4, &rep, err), DV_OK);
    assert_int_equal(rep.m.u.write_rep.n_failed, 0);
    msg_reply_free(&rep);
    for (uint32_t i = 0; i < n; i++)
        ver[ids[i].lo] = 4;
    check_in_sync(f, 420, ver);
    cf_close(f);
}

/*
 * One hop for writes, a deposed primary: a client reads partition 0's route, the primary's
 * node stops answering and the partition fails over, then the old primary's node is back and
 * the client, with its stale route, writes straight to it. That write is not acknowledged: the
 * new primary, which was an in-sync secondary in the stale route's group, has a newer term and
 * refuses the old primary's record (or the old primary itself already knows the new term), so
 * libdvec sends the write to a coordinator instead. The acknowledged writes are on every
 * in-sync replica.
 */
static void test_deposed_primary_write(void **state)
{
    (void)state;
    struct coord_fixture *f = open_cluster();
    char err[DV_ERRMSG_SIZE];
    static uint32_t ver[200];
    assert_int_equal(write_batch(f, 0, BATCH, 1, err), DV_OK);
    for (uint32_t i = 0; i < BATCH; i++)
        ver[i] = 1;
    struct cmap_part stale = part_of(f, 0);
    int victim = index_of(f, stale.primary);
    assert_int_equal(tr_fake_set_state(f->net, f->nodes[victim].url, TR_FAKE_REFUSED), DV_OK);
    assert_int_equal(write_batch(f, 20, BATCH, 1, err), DV_OK); /* fails partition 0 over */
    for (uint32_t i = 0; i < BATCH; i++)
        ver[20 + i] = 1;
    struct cmap_part now = part_of(f, 0);
    assert_true(now.term > stale.term);
    assert_int_not_equal(index_of(f, now.primary), victim);
    assert_int_equal(tr_fake_set_state(f->net, f->nodes[victim].url, TR_FAKE_UP), DV_OK);

    struct pid ids[5];
    uint32_t n = ids_in_part(0, ids, 5);
    struct msg_reply rep;
    int rc = direct_write(f, 0, &stale, ids, n, 9, &rep, err);
    uint32_t failed = rc == DV_OK ? rep.m.u.write_rep.n_failed : 0;
    printf("# the deposed primary's write: %s \"%s\", %u secondaries failed\n", dv_errname(rc),
           rc == DV_OK ? "" : err, failed);
    msg_reply_free(&rep);
    assert_true(rc != DV_OK || failed > 0); /* not acknowledged: libdvec goes to a coordinator */
    /* what libdvec does next: the same write through a coordinator */
    float v[BATCH * DIM];
    for (uint32_t i = 0; i < n; i++)
        vec_of(ids[i].lo, 9, v + i * DIM);
    assert_int_equal(cf_upsert(f, COLL, ids, v, n, DIM, err), DV_OK);
    for (uint32_t i = 0; i < n; i++)
        ver[ids[i].lo] = 9;
    check_in_sync(f, 200, ver);
    cf_close(f);
}

/* The primaries' node refuses connections (a killed process): the router asks the leader to
 * fail over, the leader promotes an in-sync replica with the highest LSN, the write goes
 * through; the term moved on and reads find every acknowledged write. */
static void test_primary_dead(void **state)
{
    (void)state;
    struct coord_fixture *f = open_cluster();
    char err[DV_ERRMSG_SIZE];
    static uint32_t ver[200];
    assert_int_equal(write_batch(f, 0, BATCH, 1, err), DV_OK);
    for (uint32_t i = 0; i < BATCH; i++)
        ver[i] = 1;
    int victim = cf_part_node(f, COLL, 0);
    assert_true(victim >= 0);
    uint64_t term0 = part_of(f, 0).term;
    assert_int_equal(tr_fake_set_state(f->net, f->nodes[victim].url, TR_FAKE_REFUSED), DV_OK);
    uint64_t t0 = clock_mono_ms();
    int rc = write_batch(f, 20, BATCH, 1, err);
    uint64_t took = clock_mono_ms() - t0;
    if (rc != DV_OK)
        fail_msg("write after the primary died: %s: %s", dv_errname(rc), err);
    printf("# first write after the primary's node died: acknowledged in %" PRIu64 " ms\n", took);
    for (uint32_t i = 0; i < BATCH; i++)
        ver[20 + i] = 1;
    struct cmap_part pt = part_of(f, 0);
    assert_true(pt.term > term0);
    assert_int_not_equal(index_of(f, pt.primary), victim);
    check_in_sync(f, 40, ver);
    cf_close(f);
}

/* Upserts n points of partition 0 straight to node i (as a coordinator with an old map would),
 * in the partition's current epoch and term; *n_failed (may be NULL) gets how many
 * secondaries the node could not replicate to. The fixture's nodes replicate serially. */
static void direct_upsert(struct coord_fixture *f, int i, const struct pid *ids, const float *v,
                          uint32_t n, uint32_t *n_failed)
{
    char err[DV_ERRMSG_SIZE];
    struct cmap_part pt = part_of(f, 0);
    struct msg req = {.type = MSG_UPSERT};
    req.addr = (struct msg_addr){{COLL, (uint32_t)strlen(COLL)}, 0, pt.epoch, pt.term};
    req.u.upsert_req = (struct msg_upsert_req){(struct pid *)ids, (float *)v, NULL, n, DIM, NULL};
    struct tr_opts to;
    tr_opts_default(&to);
    struct tr_peer *peer;
    assert_int_equal(tr_open(f->client, f->nodes[i].url, &to, &peer, err), DV_OK);
    struct msg_reply rep;
    int rc = tr_call(peer, &req, &rep, 5000, err);
    if (rc != DV_OK)
        fail_msg("direct write to %s: %s: %s", f->nodes[i].id, dv_errname(rc), err);
    if (n_failed)
        *n_failed = rep.m.u.write_rep.n_failed;
    msg_reply_free(&rep);
    tr_peer_close(peer);
}

/*
 * An old primary that wrote a record no one acknowledged (here: a write sent straight to it,
 * as a coordinator with an old map would) is replaced; when it comes back, the leader resumes
 * it from its own replica: the record is cut from its WAL (the term histories say where the
 * replicas part), the new primary's records are taken from there, no snapshot is copied, and
 * the point it alone had is gone while every acknowledged write is there.
 */
static void test_old_primary_cut(void **state)
{
    (void)state;
    struct coord_fixture *f = open_cluster();
    char err[DV_ERRMSG_SIZE];
    static uint32_t ver[200];
    assert_int_equal(write_batch(f, 0, BATCH, 1, err), DV_OK);
    for (uint32_t i = 0; i < BATCH; i++)
        ver[i] = 1;
    int victim = cf_part_node(f, COLL, 0);
    assert_true(victim >= 0);
    struct cf_node *vn = &f->nodes[victim];
    struct cmap_part pt = part_of(f, 0);

    /* The record only the old primary gets: ids of partition 0 from 1000 on. */
    struct pid ids[4];
    float v[4 * DIM];
    uint32_t k = 0;
    for (uint64_t id = 1000; k < 4; id++) {
        struct pid pid = pid_num(id);
        if (place_partition_of(&pid, PARTS) != 0)
            continue;
        ids[k] = pid;
        vec_of(id, 9, v + k * DIM);
        k++;
    }
    /* Its secondaries do not get it (the node replicates to this epoch's secondaries). */
    struct tr_fake_rule lost = {.drop_req_every = 1};
    for (unsigned i = 0; i < f->n_nodes; i++)
        if ((int)i != victim)
            assert_int_equal(tr_fake_set_rule(f->net, vn->id, f->nodes[i].url, &lost), DV_OK);
    uint32_t n_failed;
    direct_upsert(f, victim, ids, v, 4, &n_failed);
    if (n_failed != f->n_nodes - 1)
        fail_msg("the direct write reached %u secondaries", f->n_nodes - 1 - n_failed);
    tr_fake_clear_rules(f->net);

    /* It dies; the next write fails over to another replica, which takes the same LSN. */
    assert_int_equal(tr_fake_set_state(f->net, vn->url, TR_FAKE_REFUSED), DV_OK);
    assert_int_equal(write_batch(f, 20, BATCH, 1, err), DV_OK);
    for (uint32_t i = 0; i < BATCH; i++)
        ver[20 + i] = 1;
    assert_true(part_of(f, 0).term > pt.term);
    assert_int_equal(tr_fake_set_state(f->net, vn->url, TR_FAKE_UP), DV_OK);
    if (!cf_wait(f, all_in_sync, NULL, 20000))
        fail_msg("the old primary did not rejoin the in-sync sets");
    assert_int_equal(write_batch(f, 40, BATCH, 2, err), DV_OK);
    for (uint32_t i = 0; i < BATCH; i++)
        ver[40 + i] = 2;

    struct pull_stats ps;
    pull_get_stats(vn->node, &ps);
    printf("# old primary: %" PRIu64 " pulls resumed, %" PRIu64 " records cut, %" PRIu64
           " finished\n",
           ps.resumed, ps.records_cut, ps.finished);
    assert_true(ps.records_cut >= 1);
    assert_true(ps.resumed >= 1);
    check_in_sync(f, 60, ver);
    for (uint32_t i = 0; i < 4; i++) {
        bool has = true;
        assert_int_equal(cf_replica_has(vn, COLL, 0, &ids[i], NULL, DIM, &has), DV_OK);
        if (has)
            fail_msg("the old primary still serves a point no one acknowledged");
    }
    cf_close(f);
}

/*
 * A node comes back with an empty data directory under the same id (a lost disk or volume),
 * before anyone marked it dead. Its replicas must not count as in sync once re-created
 * empty: the partitions it led fail over, the others' copies leave the in-sync set, recovery
 * copies them back, and every acknowledged point is on every in-sync replica. (Before the fix:
 * reconcile re-created them empty and ACTIVE; reads from them missed points.)
 */
static void test_node_data_lost(void **state)
{
    (void)state;
    struct coord_fixture *f = open_cluster();
    char err[DV_ERRMSG_SIZE];
    static uint32_t ver[200];
    for (uint32_t b = 0; b < 5; b++) {
        assert_int_equal(write_batch(f, b * BATCH, BATCH, 1, err), DV_OK);
        for (uint32_t i = 0; i < BATCH; i++)
            ver[b * BATCH + i] = 1;
    }
    int victim = cf_part_node(f, COLL, 0);
    assert_true(victim >= 0);
    struct cmap_part before = part_of(f, 0);
    assert_int_equal(cf_node_reset(f, (unsigned)victim, err), DV_OK);
    /* It reports holding nothing: partition 0 fails over at once. */
    if (!cf_wait(f, primary_moved, &before, 5000))
        fail_msg("the partition led by the node that lost its data did not fail over");
    if (!cf_wait(f, all_in_sync, NULL, 20000))
        fail_msg("the node's replicas were not copied back into sync");
    check_in_sync(f, 100, ver);
    /* and writes go on */
    assert_int_equal(write_batch(f, 100, BATCH, 2, err), DV_OK);
    for (uint32_t i = 0; i < BATCH; i++)
        ver[100 + i] = 2;
    check_in_sync(f, 120, ver);
    cf_close(f);
}

/* A get of ids through the router with a read consistency: how many were found (*found), or
 * the error. */
static int get_with(struct coord_fixture *f, const struct pid *ids, uint32_t n, uint32_t level,
                    uint32_t *found, char *err)
{
    struct msg req = {.type = MSG_P_GET, .read_consistency = level};
    req.addr.coll = (struct msg_str){COLL, (uint32_t)strlen(COLL)};
    req.u.get_req = (struct msg_get_req){(struct pid *)ids, n, true, true};
    struct msg_reply rep;
    int rc = cf_call(f, &req, &rep, err);
    if (rc == DV_OK && rep.m.err.code != DV_OK) {
        rc = rep.m.err.code;
        snprintf(err, DV_ERRMSG_SIZE, "%.*s", (int)rep.m.err.text.len, rep.m.err.text.p);
    }
    *found = rc == DV_OK ? rep.m.u.get_rep.n : 0;
    msg_reply_free(&rep);
    return rc;
}

static int count_with(struct coord_fixture *f, uint32_t level, uint64_t *n, char *err)
{
    struct msg req = {.type = MSG_P_COUNT, .read_consistency = level};
    req.addr.coll = (struct msg_str){COLL, (uint32_t)strlen(COLL)};
    struct msg_reply rep;
    int rc = cf_call(f, &req, &rep, err);
    *n = rc == DV_OK ? rep.m.u.count_rep.count : 0;
    msg_reply_free(&rep);
    return rc;
}

/*
 * Found by the torture suite (tests/torture, seed 17): a point being rewritten vanished from
 * reads with consistency all or majority. Its replicas held two versions for a moment, no
 * version was held by enough of them, and the read answered without the point, though it
 * existed before, during and after the write. Now a read whose replicas disagree reads again:
 * it answers with a version enough of them hold, or fails (busy) while they disagree, and
 * never answers "not found" for a point every replica has.
 */
static void test_strict_read_point_rewritten(void **state)
{
    (void)state;
    struct coord_fixture *f = open_cluster();
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(write_batch(f, 0, BATCH, 1, err), DV_OK);
    struct pid x = pid_num(0); /* a point of partition 0 (direct_upsert writes there) */
    while (place_partition_of(&x, PARTS) != 0)
        x = pid_num(x.lo + 1);
    assert_true(x.lo < BATCH);
    struct cmap_part pt = part_of(f, 0);
    int sec = -1;
    for (uint32_t k = 0; k < pt.n; k++)
        if (pt.nodes[k] != pt.primary)
            sec = index_of(f, pt.nodes[k]);
    assert_true(sec >= 0);
    /* the rewrite reached one secondary only: versions 1 (two replicas) and 9 (one) */
    float v[DIM];
    vec_of(x.lo, 9, v);
    direct_upsert(f, sec, &x, v, 1, NULL);
    uint32_t found;
    int rc = get_with(f, &x, 1, MSG_READ_ALL, &found, err);
    if (rc != DV_EBUSY || !strstr(err, "disagree"))
        fail_msg("all, replicas apart: %s (%u found): %s", dv_errname(rc), found, err);
    /* majority reads two replicas; the next attempt reads the next two: two alike (version 1) */
    rc = get_with(f, &x, 1, MSG_READ_MAJORITY, &found, err);
    if (rc != DV_OK || found != 1)
        fail_msg("majority, two replicas alike: %s (%u found): %s", dv_errname(rc), found, err);
    /* the rewrite finishes on the other replicas: every strict read finds the point */
    for (uint32_t k = 0; k < pt.n; k++)
        if (index_of(f, pt.nodes[k]) != sec)
            direct_upsert(f, index_of(f, pt.nodes[k]), &x, v, 1, NULL);
    const uint32_t strict[] = {MSG_READ_ALL, MSG_READ_MAJORITY, MSG_READ_QUORUM, 3};
    for (int i = 0; i < 4; i++) {
        rc = get_with(f, &x, 1, strict[i], &found, err);
        if (rc != DV_OK || found != 1)
            fail_msg("consistency %u: %s (%u found): %s", strict[i], dv_errname(rc), found, err);
    }
    cf_close(f);
}

/*
 * Qdrant's read consistency on rf 3. A point that only one replica has (a write in flight:
 * here sent straight to a secondary, and never finished) is seen by some default reads; reads
 * that need it on all replicas (all, 3) or on a majority (quorum) read again until they agree
 * and then fail (busy, "disagree") instead of answering without it; counts take the count
 * enough replicas reach. With one replica out of the in-sync set, `all` fails naming the
 * partition and `majority` still reads.
 */
static void test_read_consistency(void **state)
{
    (void)state;
    struct coord_fixture *f = open_cluster();
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(write_batch(f, 0, BATCH, 1, err), DV_OK);
    struct cmap_part pt = part_of(f, 0);
    int sec = -1;
    for (uint32_t k = 0; k < pt.n; k++)
        if (pt.nodes[k] != pt.primary)
            sec = index_of(f, pt.nodes[k]);
    assert_true(sec >= 0);
    struct pid x = pid_num(1000);
    while (place_partition_of(&x, PARTS) != 0)
        x = pid_num(x.lo + 1);
    float v[DIM];
    vec_of(x.lo, 9, v);
    direct_upsert(f, sec, &x, v, 1, NULL);

    uint32_t found, seen = 0;
    for (int i = 0; i < 3; i++) { /* default reads go round the three replicas */
        assert_int_equal(get_with(f, &x, 1, 0, &found, err), DV_OK);
        seen += found;
    }
    assert_true(seen >= 1);
    const uint32_t strict[] = {MSG_READ_ALL, MSG_READ_QUORUM, 3};
    for (int i = 0; i < 3; i++) {
        int rc = get_with(f, &x, 1, strict[i], &found, err);
        if (rc != DV_EBUSY || !strstr(err, "disagree"))
            fail_msg("get with consistency %u: %s: %s", strict[i], dv_errname(rc), err);
    }
    /* a search for x's own vector: x first by default on the replica that has it, never with
     * all */
    struct msg_query q = {.vec = v, .dim = DIM, .k = 3, .ef = 64};
    struct msg sreq = {.type = MSG_P_SEARCH, .read_consistency = MSG_READ_ALL};
    sreq.addr.coll = (struct msg_str){COLL, (uint32_t)strlen(COLL)};
    sreq.u.csearch_req = (struct msg_csearch_req){&q, 1, false, 0};
    struct msg_reply rep;
    assert_int_equal(cf_call(f, &sreq, &rep, err), DV_OK);
    assert_int_equal(rep.m.err.code, DV_OK);
    assert_int_equal(rep.m.u.csearch_rep.n, 1);
    assert_int_equal(rep.m.u.csearch_rep.results[0].n, 3);
    for (uint32_t i = 0; i < 3; i++)
        assert_true(pid_cmp(&rep.m.u.csearch_rep.results[0].hits[i].id, &x) != 0);
    msg_reply_free(&rep);
    uint64_t n;
    assert_int_equal(count_with(f, MSG_READ_ALL, &n, err), DV_OK);
    assert_int_equal(n, BATCH);
    assert_int_equal(count_with(f, MSG_READ_MAJORITY, &n, err), DV_OK);
    assert_true(n == BATCH || n == BATCH + 1); /* 2 of 3 replicas: maybe the one with x */
    struct pid ids[BATCH];
    for (uint32_t i = 0; i < BATCH; i++)
        ids[i] = pid_num(i);
    assert_int_equal(get_with(f, ids, BATCH, MSG_READ_ALL, &found, err), DV_OK);
    assert_int_equal(found, BATCH);

    /* A replica's node stops answering: reads that meet it are sent to another replica (the
     * three reads go round the replicas); the next write takes it out of the in-sync sets. */
    assert_int_equal(tr_fake_set_state(f->net, f->nodes[sec].url, TR_FAKE_REFUSED), DV_OK);
    for (int i = 0; i < 3; i++) {
        int rc = get_with(f, ids, BATCH, 0, &found, err);
        if (rc != DV_OK)
            fail_msg("get with a replica's node down: %s: %s", dv_errname(rc), err);
        assert_int_equal(found, BATCH);
        assert_int_equal(count_with(f, 0, &n, err), DV_OK);
        assert_true(n == BATCH || n == BATCH + 1);
    }
    assert_int_equal(write_batch(f, 20, BATCH, 1, err), DV_OK);
    int rc = get_with(f, ids, BATCH, MSG_READ_ALL, &found, err);
    assert_int_equal(rc, DV_EBUSY);
    if (!strstr(err, "read consistency all") || !strstr(err, "partition"))
        fail_msg("error does not say what is missing: %s", err);
    rc = get_with(f, ids, BATCH, MSG_READ_MAJORITY, &found, err);
    if (rc != DV_OK)
        fail_msg("majority with 2 of 3 replicas: %s: %s", dv_errname(rc), err);
    assert_int_equal(found, BATCH);
    assert_int_equal(get_with(f, ids, BATCH, 3, &found, err), DV_EBUSY);
    cf_close(f);
}

/* A node that stays dead past replicas.dead_timeout: the partitions it held get a new replica
 * on another node each (copied from their primaries), so every partition has its replication
 * factor again on the others; writes go on; when the node comes back, what it held of them is
 * dropped, never served. */
static void test_dead_timeout(void **state)
{
    (void)state;
    char err[DV_ERRMSG_SIZE] = "";
    struct coord_fixture *f;
    struct cf_opts o = {.n_nodes = 4,
                        .request_timeout_ms = 1000,
                        .pull_call_ms = 100,
                        .suspect_ms = 300,
                        .dead_ms = 600,
                        .dead_timeout_ms = 500};
    int rc = cf_open(cf_seed(), &o, &f, err);
    if (rc != DV_OK)
        fail_msg("cf_open: %s: %s", dv_errname(rc), err);
    if ((rc = cf_create(f, COLL, DIM, PARTS, 2, err)) != DV_OK)
        fail_msg("cf_create: %s: %s", dv_errname(rc), err);
    static uint32_t ver[400];
    for (uint64_t id = 0; id < 200; id += BATCH) {
        assert_int_equal(write_batch(f, id, BATCH, 1, err), DV_OK);
        for (uint32_t i = 0; i < BATCH; i++)
            ver[id + i] = 1;
    }
    /* node-4 is cut off from everyone (its reports too): suspect, dead, then its replicas go */
    const char *cut[] = {"node-4"};
    uint32_t held = 0;
    for (uint32_t p = 0; p < PARTS; p++) {
        struct cmap_part pt = part_of(f, p);
        for (uint32_t k = 0; k < pt.n; k++)
            held += index_of(f, pt.nodes[k]) == 3;
    }
    assert_true(held > 0);
    assert_int_equal(tr_fake_partition(f->net, cut, 1), DV_OK);
    uint64_t t0 = clock_mono_ms();
    uint64_t id = 200;
    bool done = false;
    while (!done && clock_mono_ms() - t0 < 30000) {
        if (write_batch(f, id % 400, BATCH, 2, err) == DV_OK)
            for (uint32_t i = 0; i < BATCH; i++)
                ver[id % 400 + i] = 2;
        id += BATCH;
        done = true;
        for (uint32_t p = 0; p < PARTS && done; p++) {
            struct cmap_part pt = part_of(f, p);
            uint32_t active = 0;
            for (uint32_t k = 0; k < pt.n; k++) {
                done &= index_of(f, pt.nodes[k]) != 3;
                active += pt.state[k] == CMAP_REPLICA_ACTIVE;
            }
            done &= active == 2;
        }
        clock_sleep_ms(20);
    }
    assert_true(done);
    printf("# %u replicas of a dead node re-created on the others in %" PRIu64 " ms\n", held,
           clock_mono_ms() - t0);
    assert_int_equal(write_batch(f, 0, BATCH, 3, err), DV_OK);
    for (uint32_t i = 0; i < BATCH; i++)
        ver[i] = 3;
    check_in_sync(f, 400, ver);
    /* node-4 comes back: its replicas of the collection are not in the map, so they go */
    tr_fake_heal(f->net);
    t0 = clock_mono_ms();
    bool gone = false;
    while (!gone && clock_mono_ms() - t0 < 20000) {
        gone = true;
        for (uint32_t p = 0; p < PARTS && gone; p++) {
            uint64_t count;
            gone = cf_replica_count(&f->nodes[3], COLL, p, &count) == DV_ESTALE;
        }
        clock_sleep_ms(50);
    }
    assert_true(gone);
    printf("# the returning node dropped its stale replicas after %" PRIu64 " ms\n",
           clock_mono_ms() - t0);
    check_in_sync(f, 400, ver);
    cf_close(f);
}

/* Sets the collection's replication factor (admin op coll_set). */
static void set_rf(struct coord_fixture *f, uint32_t rf)
{
    struct buf a = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(mpw_map(&a, 2), DV_OK);
    assert_int_equal(mpw_str(&a, "collection", 10), DV_OK);
    assert_int_equal(mpw_str(&a, COLL, strlen(COLL)), DV_OK);
    assert_int_equal(mpw_str(&a, "replication_factor", 18), DV_OK);
    assert_int_equal(mpw_u64(&a, rf), DV_OK);
    struct msg_reply rep;
    int rc = cf_admin(f, "coll_set", a.data, a.len, &rep, err);
    if (rc != DV_OK)
        fail_msg("coll_set: %s: %s", dv_errname(rc), err);
    msg_reply_free(&rep);
    buf_free(&a);
}

/* Whether every partition has n replicas, all in sync. */
static bool has_replicas(struct coord_fixture *f, uint32_t n)
{
    for (uint32_t p = 0; p < PARTS; p++) {
        struct cmap_part pt = part_of(f, p);
        if (pt.n != n)
            return false;
        for (uint32_t k = 0; k < pt.n; k++)
            if (pt.state[k] != CMAP_REPLICA_ACTIVE)
                return false;
    }
    return true;
}

/* The replication factor changes online: 1 -> 3 adds two replicas per partition, copied from
 * the primaries while writes go on; 3 -> 2 drops one. Every acknowledged write is on every
 * replica throughout. */
static void test_change_rf(void **state)
{
    (void)state;
    char err[DV_ERRMSG_SIZE] = "";
    struct coord_fixture *f;
    struct cf_opts o = {.n_nodes = 3, .request_timeout_ms = 1000, .pull_call_ms = 100};
    int rc = cf_open(cf_seed(), &o, &f, err);
    if (rc != DV_OK)
        fail_msg("cf_open: %s: %s", dv_errname(rc), err);
    if ((rc = cf_create(f, COLL, DIM, PARTS, 1, err)) != DV_OK)
        fail_msg("cf_create: %s: %s", dv_errname(rc), err);
    static uint32_t ver[400];
    for (uint64_t id = 0; id < 200; id += BATCH) {
        assert_int_equal(write_batch(f, id, BATCH, 1, err), DV_OK);
        for (uint32_t i = 0; i < BATCH; i++)
            ver[id + i] = 1;
    }
    for (uint32_t rf = 3; rf >= 2; rf--) {
        set_rf(f, rf);
        uint64_t t0 = clock_mono_ms(), id = 200;
        while (!has_replicas(f, rf) && clock_mono_ms() - t0 < 30000) {
            assert_int_equal(write_batch(f, id % 400, BATCH, 1 + rf, err), DV_OK);
            for (uint32_t i = 0; i < BATCH; i++)
                ver[id % 400 + i] = 1 + rf;
            id += BATCH;
        }
        assert_true(has_replicas(f, rf));
        printf("# replication factor %u reached in %" PRIu64 " ms under writes\n", rf,
               clock_mono_ms() - t0);
        check_in_sync(f, 400, ver);
    }
    cf_close(f);
}

/* Runs admin op verify; *identical and *differ get its counts. */
static void verify(struct coord_fixture *f, uint64_t *identical, size_t *differ)
{
    struct buf a = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(mpw_map(&a, 1), DV_OK);
    assert_int_equal(mpw_str(&a, "collection", 10), DV_OK);
    assert_int_equal(mpw_str(&a, COLL, strlen(COLL)), DV_OK);
    struct msg_reply rep;
    int rc = cf_admin(f, "verify", a.data, a.len, &rep, err);
    if (rc != DV_OK)
        fail_msg("verify: %s: %s", dv_errname(rc), err);
    const uint8_t *v;
    size_t len;
    const struct msg_bytes *st = &rep.m.u.cluster_rep.status;
    struct mpk r;
    assert_int_equal(mpk_map_find(st->p, st->len, "identical", 9, &v, &len), DV_OK);
    mpk_init(&r, v, len);
    assert_int_equal(mpk_u64(&r, identical), DV_OK);
    assert_int_equal(mpk_map_find(st->p, st->len, "differ", 6, &v, &len), DV_OK);
    uint32_t nd;
    mpk_init(&r, v, len);
    assert_int_equal(mpk_array(&r, &nd), DV_OK);
    *differ = nd;
    msg_reply_free(&rep);
    buf_free(&a);
}

/* collections verify: identical replicas under writes say so; a replica written behind its
 * primary's back is found. */
static void test_verify(void **state)
{
    (void)state;
    struct coord_fixture *f = open_cluster();
    char err[DV_ERRMSG_SIZE];
    for (uint64_t id = 0; id < 200; id += BATCH)
        assert_int_equal(write_batch(f, id, BATCH, 1, err), DV_OK);
    uint64_t same;
    size_t differ;
    verify(f, &same, &differ);
    assert_int_equal(same, PARTS);
    assert_int_equal(differ, 0);
    /* a point written straight into one secondary of partition 0 */
    struct cmap_part pt = part_of(f, 0);
    uint32_t sec = pt.nodes[0] == pt.primary ? pt.nodes[1] : pt.nodes[0];
    struct pid id = pid_num(1000003);
    float v[DIM] = {0};
    direct_upsert(f, index_of(f, sec), &id, v, 1, NULL);
    verify(f, &same, &differ);
    assert_int_equal(same, PARTS - 1);
    assert_int_equal(differ, 1);
    cf_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_silent),
        cmocka_unit_test(test_stale_route_write),
        cmocka_unit_test(test_deposed_primary_write),
        cmocka_unit_test(test_primary_dead),
        cmocka_unit_test(test_dead_timeout),
        cmocka_unit_test(test_change_rf),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_old_primary_cut),
        cmocka_unit_test(test_node_data_lost),
        cmocka_unit_test(test_read_consistency),
        cmocka_unit_test(test_strict_read_point_rewritten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
