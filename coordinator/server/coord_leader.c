/* coord_leader.c - the leader's background work: node liveness (suspect, dead, back alive) and
 * reconciling nodes with the map (create the replicas placed on a node, drop the others). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "coord_coll.h"
#include "err.h"
#include "insync.h"
#include "recover.h"
#include "log.h"

/* Last report time of a node in the leader's table, 0 if none since it became leader. */
static uint64_t last_seen(struct coord *c, const char *id)
{
    uint64_t t = 0;
    pthread_mutex_lock(&c->seen_mu);
    for (size_t i = 0; i < c->n_seen; i++)
        if (strcmp(c->seen[i].id, id) == 0)
            t = c->seen[i].last_ms;
    pthread_mutex_unlock(&c->seen_mu);
    return t;
}

static void set_state(struct coord *c, const struct cmap_node *n, int state, uint64_t silent_ms)
{
    char err[DV_ERRMSG_SIZE];
    struct cmap_cmd cmd = {.type = CMAP_CMD_NODE_STATE, .req = coord_reqid(c)};
    snprintf(cmd.u.node_state.id, sizeof cmd.u.node_state.id, "%s", n->id);
    cmd.u.node_state.state = state;
    struct cmap_result res;
    int rc = coord_apply(c, &cmd, &res, err);
    if (rc == DV_OK && res.code == DV_OK)
        log_warn("node state changed", "node=%s from=%s to=%s silent_ms=%" PRIu64, n->id,
                 cmap_node_state_name(n->state), cmap_node_state_name(state), silent_ms);
    else
        log_warn("cannot change node state", "node=%s error=%s", n->id,
                 rc == DV_OK ? res.msg : err);
}

/* Is (coll, part) among the replicas the node reported? */
static bool reported(const struct cmap_node *n, const char *coll, uint32_t part)
{
    for (uint32_t i = 0; i < n->n_reports; i++)
        if (n->reports[i].part == part && strcmp(n->reports[i].coll, coll) == 0)
            return true;
    return false;
}

/*
 * Makes node n match the map: creates every replica placed on it that it did not report, or
 * every one when `all` (creating is idempotent on the node; a create carrying the
 * collection's incarnation replaces a replica left by a dropped collection of the same name),
 * drops every replica it reported that the map does not place on it. only_coll != NULL
 * limits creates to one collection (right after its creation). Returns the number of failed
 * calls.
 */
int coord_reconcile_node(struct coord *c, const struct cmap *m, const struct cmap_node *n,
                         const char *only_coll, bool all)
{
    char err[DV_ERRMSG_SIZE];
    int failed = 0;
    struct tr_peer *r = coord_conn(c, n->url, NULL, err);
    if (r == NULL)
        return 1;
    struct cmap_held *held;
    size_t nh;
    if (cmap_node_parts(m, n->num, &held, &nh) != DV_OK)
        return 1;
    for (size_t i = 0; i < nh; i++) {
        const struct cmap_coll *coll = held[i].coll;
        if (only_coll ? strcmp(coll->name, only_coll) != 0
                      : !all && reported(n, coll->name, held[i].part))
            continue;
        /* A replica out of the in-sync set is brought back by a copy (recover.c), not by an
         * empty create. */
        if (held[i].state != CMAP_REPLICA_ACTIVE)
            continue;
        struct msg req = {.type = MSG_REPLICA_CREATE};
        req.addr.coll = (struct msg_str){coll->name, (uint32_t)strlen(coll->name)};
        req.addr.part = held[i].part;
        req.addr.epoch = held[i].epoch;
        req.u.create_req = coord_coll_create_req(coll);
        struct msg_reply rep;
        int rc = tr_call(r, &req, &rep, 0, err);
        msg_reply_free(&rep);
        if (rc != DV_OK) {
            failed++;
            log_warn("cannot create a replica on its node",
                     "node=%s collection=%s partition=%u "
                     "code=%s error=%s",
                     n->id, coll->name, held[i].part, dv_errname(rc), err);
        } else {
            log_info("replica created on node",
                     "node=%s collection=%s partition=%u epoch=%" PRIu64 " incarnation=%" PRIu64,
                     n->id, coll->name, held[i].part, held[i].epoch, coll->epoch);
        }
    }
    if (only_coll == NULL)
        for (uint32_t i = 0; i < n->n_reports; i++) {
            const struct cmap_report *rp = &n->reports[i];
            bool placed = false;
            for (size_t j = 0; j < nh && !placed; j++)
                placed = held[j].part == rp->part && strcmp(held[j].coll->name, rp->coll) == 0;
            /* A replica being moved to or from this node is the mover's business, and so is
             * the old replica of a done move (dropped after the grace period). */
            const struct cmap_coll *coll = cmap_coll_find(m, rp->coll);
            bool moving = false;
            for (uint32_t k = 0; k < m->n_moves && !moving; k++) {
                const struct cmap_move *mv = &m->moves[k];
                moving = mv->part == rp->part && strcmp(mv->coll, rp->coll) == 0 &&
                         (mv->from == n->num || mv->to == n->num) && mv->state != CMAP_MOVE_FAILED;
            }
            /* The only replica left of a partition whose node was removed: adopted back. */
            const struct cmap_part *pt = cmap_part_find(m, rp->coll, rp->part);
            bool orphan = pt && pt->n == 0;
            if (placed || moving || orphan)
                continue;
            struct msg req = {.type = MSG_REPLICA_DROP};
            req.addr.coll = (struct msg_str){rp->coll, (uint32_t)strlen(rp->coll)};
            req.addr.part = rp->part;
            req.addr.epoch = m->epoch;
            struct msg_reply rep;
            int rc = tr_call(r, &req, &rep, 0, err);
            msg_reply_free(&rep);
            if (rc != DV_OK && rc != DV_ESTALE)
                failed++;
            else
                log_info("replica dropped from node: not in the map",
                         "node=%s collection=%s "
                         "partition=%u collection_exists=%d",
                         n->id, rp->coll, rp->part, coll != NULL);
        }
    free(held);
    return failed;
}

/*
 * Partitions left without a replica (their only node was removed by force) come back when a
 * node reports holding one: the node's disk returned, dvec-shard started on it again.
 */
static void adopt_orphans(struct coord *c, const struct cmap *m)
{
    char err[DV_ERRMSG_SIZE];
    for (uint32_t i = 0; i < m->n_colls; i++)
        for (uint32_t p = 0; p < m->colls[i]->cfg.n_parts; p++) {
            const struct cmap_part *pt = &m->colls[i]->parts[p];
            if (pt->n != 0)
                continue;
            for (uint32_t k = 0; k < m->n_nodes; k++) {
                const struct cmap_node *n = &m->nodes[k];
                if ((n->state != CMAP_NODE_ALIVE && n->state != CMAP_NODE_JOINING) ||
                    !reported(n, m->colls[i]->name, p))
                    continue;
                struct cmap_cmd cmd = {.type = CMAP_CMD_PART_SET, .req = coord_reqid(c)};
                snprintf(cmd.u.part_set.coll, sizeof cmd.u.part_set.coll, "%s", m->colls[i]->name);
                cmd.u.part_set.part = p;
                cmd.u.part_set.expect_epoch = pt->epoch;
                cmd.u.part_set.n = 1;
                snprintf(cmd.u.part_set.nodes[0], sizeof cmd.u.part_set.nodes[0], "%s", n->id);
                struct cmap_result res;
                int rc = coord_apply(c, &cmd, &res, err);
                if (rc == DV_OK && res.code == DV_OK)
                    log_warn("partition available again: adopted the replica its returning node "
                             "holds",
                             "collection=%s partition=%u node=%s", m->colls[i]->name, p, n->id);
                else
                    log_warn("cannot adopt a returning replica",
                             "collection=%s partition=%u "
                             "node=%s error=%s",
                             m->colls[i]->name, p, n->id, rc == DV_OK ? res.msg : err);
                break;
            }
        }
}

/* Replicas per node number (malloc'd, n_nodes entries; NULL when out of memory). */
static uint32_t *replica_load(const struct cmap *m)
{
    uint32_t *load = calloc(m->n_nodes ? m->n_nodes : 1, sizeof *load);
    if (load == NULL)
        return NULL;
    for (uint32_t i = 0; i < m->n_colls; i++)
        for (uint32_t p = 0; p < m->colls[i]->cfg.n_parts; p++)
            for (uint32_t k = 0; k < m->colls[i]->parts[p].n; k++)
                load[m->colls[i]->parts[p].nodes[k]]++;
    return load;
}

/* The alive node with the fewest replicas that holds none of partition pt, CMAP_NONE. */
static uint32_t least_loaded(const struct cmap *m, const uint32_t *load, const struct cmap_part *pt)
{
    uint32_t best = CMAP_NONE;
    for (uint32_t x = 0; x < m->n_nodes; x++) {
        bool holds = false;
        for (uint32_t k = 0; k < pt->n; k++)
            holds |= pt->nodes[k] == x;
        if (holds || m->nodes[x].state != CMAP_NODE_ALIVE)
            continue;
        if (best == CMAP_NONE || load[x] < load[best])
            best = x;
    }
    return best;
}

static bool moving(const struct cmap *m, const char *coll, uint32_t part)
{
    for (uint32_t i = 0; i < m->n_moves; i++)
        if (m->moves[i].part == part && strcmp(m->moves[i].coll, coll) == 0 &&
            m->moves[i].state != CMAP_MOVE_DONE && m->moves[i].state != CMAP_MOVE_FAILED)
            return true;
    return false;
}

/* Every partition gets its collection's replication factor: one replica more (REPLICA_ADD on
 * the least loaded alive node, DEAD until recovery copies it) or one less (REPLICA_REMOVE of a
 * secondary, one out of sync first) per partition and tick. After a change of the factor
 * (admin op coll_set), or when a node joins a cluster that had fewer nodes than the factor. */
static void fix_replication(struct coord *c, const struct cmap *m)
{
    char err[DV_ERRMSG_SIZE];
    uint32_t *load = replica_load(m);
    if (load == NULL)
        return;
    for (uint32_t i = 0; i < m->n_colls; i++) {
        const struct cmap_coll *cl = m->colls[i];
        for (uint32_t p = 0; p < cl->cfg.n_parts; p++) {
            const struct cmap_part *pt = &cl->parts[p];
            if (pt->n == cl->cfg.rf || pt->primary == CMAP_NONE || moving(m, cl->name, p))
                continue;
            struct cmap_cmd cmd = {.req = coord_reqid(c)};
            snprintf(cmd.u.replica_op.coll, sizeof cmd.u.replica_op.coll, "%s", cl->name);
            cmd.u.replica_op.part = p;
            cmd.u.replica_op.expect_term = pt->term;
            uint32_t num = CMAP_NONE;
            if (pt->n < cl->cfg.rf) {
                cmd.type = CMAP_CMD_REPLICA_ADD;
                num = least_loaded(m, load, pt);
            } else {
                cmd.type = CMAP_CMD_REPLICA_REMOVE;
                for (uint32_t k = 0; k < pt->n; k++) {
                    uint32_t x = pt->nodes[k];
                    if (x == pt->primary)
                        continue;
                    bool better = num == CMAP_NONE || (pt->state[k] != CMAP_REPLICA_ACTIVE) ||
                                  load[x] > load[num];
                    if (better)
                        num = x;
                    if (pt->state[k] != CMAP_REPLICA_ACTIVE)
                        break; /* one out of sync goes first */
                }
            }
            if (num == CMAP_NONE)
                continue;
            snprintf(cmd.u.replica_op.node, sizeof cmd.u.replica_op.node, "%s", m->nodes[num].id);
            struct cmap_result res;
            int rc = coord_apply(c, &cmd, &res, err);
            if (rc == DV_OK && res.code == DV_OK) {
                load[num] += cmd.type == CMAP_CMD_REPLICA_ADD ? 1 : -1;
                log_info(cmd.type == CMAP_CMD_REPLICA_ADD
                             ? "replica added: the partition is below its replication factor"
                             : "replica removed: the partition is above its replication factor",
                         "collection=%s partition=%u node=%s rf=%u", cl->name, p, m->nodes[num].id,
                         cl->cfg.rf);
            } else {
                log_warn("cannot change a partition's replicas",
                         "collection=%s partition=%u node=%s error=%s", cl->name, p,
                         m->nodes[num].id, rc == DV_OK ? res.msg : err);
            }
        }
    }
    free(load);
}

/* A node, dead for longer than replicas.dead_timeout, whose replicas of replicated partitions
 * get re-created on other nodes: each on the serving node with the fewest replicas that holds
 * none of that partition (REPLICA_MOVE: the new replica starts DEAD, recovery copies it from
 * the primary). Partitions whose primary is still on the node wait for their failover. */
static void re_replicate(struct coord *c, const struct cmap *m, const struct cmap_node *dead)
{
    char err[DV_ERRMSG_SIZE];
    uint32_t *load = replica_load(m);
    if (load == NULL)
        return;
    for (uint32_t i = 0; i < m->n_colls; i++)
        for (uint32_t p = 0; p < m->colls[i]->cfg.n_parts; p++) {
            const struct cmap_part *pt = &m->colls[i]->parts[p];
            bool on = false;
            for (uint32_t k = 0; k < pt->n; k++)
                on |= pt->nodes[k] == dead->num;
            if (!on || pt->primary == dead->num || pt->primary == CMAP_NONE)
                continue;
            uint32_t best = least_loaded(m, load, pt);
            if (best == CMAP_NONE)
                continue; /* no node left to hold another replica: the partition stays short */
            struct cmap_cmd cmd = {.type = CMAP_CMD_REPLICA_MOVE, .req = coord_reqid(c)};
            snprintf(cmd.u.replica_move.coll, sizeof cmd.u.replica_move.coll, "%s",
                     m->colls[i]->name);
            cmd.u.replica_move.part = p;
            snprintf(cmd.u.replica_move.from, sizeof cmd.u.replica_move.from, "%s", dead->id);
            snprintf(cmd.u.replica_move.to, sizeof cmd.u.replica_move.to, "%s", m->nodes[best].id);
            cmd.u.replica_move.expect_term = pt->term;
            struct cmap_result res;
            int rc = coord_apply(c, &cmd, &res, err);
            if (rc == DV_OK && res.code == DV_OK) {
                load[best]++;
                log_warn("replica re-created on another node: its node stayed dead",
                         "collection=%s partition=%u from=%s to=%s", m->colls[i]->name, p, dead->id,
                         m->nodes[best].id);
            } else {
                log_warn("cannot re-create a replica of a dead node",
                         "collection=%s partition=%u node=%s error=%s", m->colls[i]->name, p,
                         dead->id, rc == DV_OK ? res.msg : err);
            }
        }
    free(load);
}

/* Partitions whose primary's node is suspect, dead or removed get another primary (an in-sync
 * replica that answers; until one does, writes to them wait). */
static void fail_over(struct coord *c, const struct cmap *m)
{
    char err[DV_ERRMSG_SIZE];
    for (uint32_t i = 0; i < m->n_colls; i++)
        for (uint32_t p = 0; p < m->colls[i]->cfg.n_parts; p++) {
            const struct cmap_part *pt = &m->colls[i]->parts[p];
            const struct cmap_node *n = cmap_node_get(m, pt->primary);
            if (n == NULL || (n->state != CMAP_NODE_SUSPECT && n->state != CMAP_NODE_DEAD &&
                              n->state != CMAP_NODE_REMOVED))
                continue;
            int rc = insync_failover(c, m->colls[i]->name, p, pt->term, false, err);
            if (rc != DV_OK)
                log_warn("cannot fail over", "collection=%s partition=%u node=%s error=%s",
                         m->colls[i]->name, p, n->id, err);
        }
}

/*
 * A coordinator that was itself stalled (SIGSTOP, a paused VM, a clock jump) heard nothing
 * for that long, from anyone: on waking its leader would take every node for suspect and fail
 * all their primaries over (found by the torture suite, pause_leader; test_replication
 * test_leader_stalled). A thread of its own sleeps STALL_TICK_MS at a time and is never busy
 * otherwise: when a sleep overruns by more than half of nodes.suspect_after, the process was
 * stalled, and node silences count from its waking (stall_end_ms). Until that thread has run
 * again after a stall (beat_ms old), the leader marks no node.
 */
#define STALL_TICK_MS 50

static uint64_t stall_limit_ms(const struct coord *c)
{
    return c->o.suspect_ms / 2 > STALL_TICK_MS ? c->o.suspect_ms / 2 : STALL_TICK_MS;
}

static void *stall_main(void *arg)
{
    struct coord *c = arg;
    uint64_t prev = clock_mono_ms();
    while (!atomic_load(&c->stop)) {
        clock_sleep_ms(STALL_TICK_MS);
        uint64_t now = clock_mono_ms();
        if (now > prev + STALL_TICK_MS + stall_limit_ms(c)) {
            atomic_store(&c->stall_end_ms, now);
            log_warn("this coordinator was stalled; node silences count from now",
                     "stalled_ms=%" PRIu64, now - prev - STALL_TICK_MS);
        }
        atomic_store(&c->beat_ms, now);
        prev = now;
    }
    return NULL;
}

static void tick(struct coord *c, uint64_t leader_since)
{
    /* woken from a stall the stall thread has not seen yet: judge no node this time */
    if (clock_mono_ms() > atomic_load(&c->beat_ms) + STALL_TICK_MS + stall_limit_ms(c))
        return;
    uint64_t stall_end = atomic_load(&c->stall_end_ms);
    if (stall_end > leader_since)
        leader_since = stall_end;
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const struct cmap_node *n = &m->nodes[i];
        if (n->state == CMAP_NODE_REMOVED)
            continue;
        /* The clock is read after the report time: reconciling an earlier node can take long
         * enough for this one to report meanwhile, and a report newer than `now` must not
         * wrap the difference into an enormous silence. */
        uint64_t seen = last_seen(c, n->id);
        uint64_t since = seen > leader_since ? seen : leader_since;
        uint64_t now = clock_mono_ms();
        uint64_t silent = now > since ? now - since : 0;
        if (n->state != CMAP_NODE_DEAD && silent > c->o.dead_ms)
            set_state(c, n, CMAP_NODE_DEAD, silent);
        else if (n->state == CMAP_NODE_DEAD && c->o.dead_timeout_ms &&
                 silent > (uint64_t)c->o.dead_ms + c->o.dead_timeout_ms)
            re_replicate(c, m, n);
        else if ((n->state == CMAP_NODE_ALIVE || n->state == CMAP_NODE_JOINING) &&
                 silent > c->o.suspect_ms)
            set_state(c, n, CMAP_NODE_SUSPECT, silent);
        else if (n->state == CMAP_NODE_ALIVE || n->state == CMAP_NODE_DRAINING) {
            bool stale = coord_take_stale(c, n->id);
            if (stale)
                log_info("node reported a replica of a dropped collection; recreating its "
                         "replicas",
                         "node=%s", n->id);
            if (coord_reconcile_node(c, m, n, NULL, stale) > 0 && stale)
                coord_mark_stale(c, n->id);
        }
    }
    adopt_orphans(c, m);
    fail_over(c, m);
    fix_replication(c, m);
    craft_map_release(c->raft, ref);
}

static void *leader_main(void *arg)
{
    struct coord *c = arg;
    uint64_t leader_since = 0;
    while (!atomic_load(&c->stop)) {
        struct craft_status st;
        craft_status(c->raft, &st);
        if (st.leader_ready) {
            if (leader_since == 0) {
                leader_since = clock_mono_ms();
                log_info("leader duties start", "id=%" PRIu64 " term=%" PRIu64, st.id, st.term);
            }
            tick(c, leader_since);
        } else {
            leader_since = 0;
        }
        clock_sleep_ms(c->o.report_every_ms);
    }
    return NULL;
}

int coord_leader_start(struct coord *c)
{
    atomic_store(&c->stop, false);
    atomic_store(&c->beat_ms, clock_mono_ms());
    atomic_store(&c->stall_end_ms, 0);
    pthread_mutex_init(&c->moves_mu, NULL);
    if (pthread_create(&c->stall_thread, NULL, stall_main, c) != 0)
        return DV_EOS;
    if (pthread_create(&c->leader_thread, NULL, leader_main, c) != 0) {
        atomic_store(&c->stop, true);
        pthread_join(c->stall_thread, NULL);
        return DV_EOS;
    }
    if (pthread_create(&c->mover_thread, NULL, mover_main, c) != 0) {
        atomic_store(&c->stop, true);
        pthread_join(c->leader_thread, NULL);
        pthread_join(c->stall_thread, NULL);
        return DV_EOS;
    }
    return DV_OK;
}

void coord_leader_stop(struct coord *c)
{
    atomic_store(&c->stop, true);
    pthread_join(c->leader_thread, NULL);
    pthread_join(c->mover_thread, NULL);
    pthread_join(c->stall_thread, NULL);
    free(c->moves);
    c->moves = NULL;
    recover_free(c);
    c->n_moves = c->cap_moves = 0;
    pthread_mutex_destroy(&c->moves_mu);
}
