/* mover.c - the leader moves replicas: pull on the target, catch up, fence, switch, drop. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "coord_coll.h"
#include "err.h"
#include "log.h"
#include "mpk.h"
#include "node_call.h"
#include "recover.h"
#include "plan.h"

/*
 * A move of the replica of (coll, part) from node A to node B, as the map records it:
 *   planned      waiting for its turn (moves_per_node, paused)
 *   copying      B pulls A's snapshot (MSG_REPLICA_PULL start; B's job runs on its own)
 *   catching_up  B applies A's WAL records after the snapshot
 *   switching    A's writes are fenced (persisted on A), B takes the last records, then
 *                the map's switch command puts B in A's place with a new epoch
 *   done         A is told the new epoch and drops its replica after move_grace
 *   failed       A is unfenced, B's copy aborted (retried until both answered)
 * The map's state is the truth; the leader's job table only holds progress. A new leader
 * carries on from the map: B's pull runs without any coordinator, a switch is done again
 * from the start (fencing, finishing and the switch command are idempotent).
 */

#define TICK_MS         100  /* default of coord_opts.move_tick_ms */
#define CATCHUP_RECORDS 64   /* switch when B is this close behind A */
#define MAX_STARTS      3    /* pull starts before a move fails */
#define FINISH_MS       6000 /* B taking the last records */
#define SWITCH_GIVEUP   15000
#define RETRY_MS        2000
#define REPLAN_MS       2000  /* automatic planning pace */
#define BACKOFF_MS      30000 /* after a failed move */

static uint64_t now_ms(void)
{
    return clock_mono_ms();
}

/* ---- the job table --------------------------------------------------------------------- */

static struct coord_move *job_find(struct coord *c, const struct cmap_move *mv, bool make)
{
    for (size_t i = 0; i < c->n_moves; i++) {
        struct coord_move *j = &c->moves[i];
        if (j->part == mv->part && j->from == mv->from && j->to == mv->to &&
            strcmp(j->coll, mv->coll) == 0)
            return j;
    }
    if (!make)
        return NULL;
    if (c->n_moves == c->cap_moves) {
        size_t cap = c->cap_moves ? c->cap_moves * 2 : 16;
        void *p = realloc(c->moves, cap * sizeof *c->moves);
        if (p == NULL)
            return NULL;
        c->moves = p;
        c->cap_moves = cap;
    }
    struct coord_move *j = &c->moves[c->n_moves++];
    memset(j, 0, sizeof *j);
    snprintf(j->coll, sizeof j->coll, "%s", mv->coll);
    j->part = mv->part;
    j->from = mv->from;
    j->to = mv->to;
    j->unfence = CMAP_NONE;
    return j;
}

/* Forgets jobs of moves the map no longer has. Called with moves_mu held. */
static void job_prune(struct coord *c, const struct cmap *m)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n_moves; i++) {
        struct coord_move *j = &c->moves[i];
        if (cmap_move_find(m, j->coll, j->part, j->from, j->to))
            c->moves[k++] = *j;
    }
    c->n_moves = k;
}

/* ---- calls --------------------------------------------------------------------------------- */

static struct msg addressed(int type, const struct cmap_move *mv, uint64_t epoch)
{
    return ncall_addressed(type, mv->coll, mv->part, epoch);
}

/* Sets a move's state in the map; DV_OK with res->code the command's own result. */
static int set_state(struct coord *c, const struct cmap *m, const struct cmap_move *mv, int state,
                     struct cmap_result *res, char *err)
{
    struct cmap_cmd cmd = {.type = CMAP_CMD_MOVE_UPDATE, .req = coord_reqid(c)};
    snprintf(cmd.u.move.coll, sizeof cmd.u.move.coll, "%s", mv->coll);
    cmd.u.move.part = mv->part;
    snprintf(cmd.u.move.from, sizeof cmd.u.move.from, "%s", ncall_node_id(m, mv->from));
    snprintf(cmd.u.move.to, sizeof cmd.u.move.to, "%s", ncall_node_id(m, mv->to));
    cmd.u.move.state = state;
    int rc = coord_apply(c, &cmd, res, err);
    if (rc == DV_OK && res->code != DV_OK)
        dv_errmsg_set(err, "%s", res->msg);
    return rc;
}

/* The pull on the target: start, status, finish or abort. */
static int pull(struct coord *c, const struct cmap *m, const struct cmap_move *mv, uint32_t op,
                uint64_t until, struct msg_pull_rep *out, uint32_t timeout_ms, char *err)
{
    return ncall_pull(c, m, mv->coll, mv->part, mv->to, mv->from, op, until, out, timeout_ms, err);
}

/* Fences (or unfences) the writes of the partition's replica on node `num`; *lsn gets its
 * applied LSN. */
static int fence(struct coord *c, const struct cmap *m, const struct cmap_move *mv, uint32_t num,
                 uint32_t op, uint64_t epoch, uint64_t *lsn, char *err)
{
    return ncall_fence(c, m, mv->coll, mv->part, num, op, epoch, lsn, err);
}

/* ---- driving one move ------------------------------------------------------------------------ */

static void progress(struct coord_move *j, const struct msg_pull_rep *p)
{
    uint64_t t = now_ms();
    uint64_t moved = p->bytes_done;
    if (j->rate_ms && t > j->rate_ms && moved >= j->rate_bytes) {
        double r = (double)(moved - j->rate_bytes) * 1000.0 / (double)(t - j->rate_ms);
        j->rate = j->rate > 0 ? 0.7 * j->rate + 0.3 * r : r;
    }
    j->rate_ms = t;
    j->rate_bytes = moved;
    j->bytes_done = p->bytes_done;
    j->bytes_total = p->bytes_total;
    j->applied_lsn = p->applied_lsn;
    j->source_lsn = p->source_lsn;
}

/* Marks the move failed; the cleanup (unfence, abort) follows in fail_cleanup. */
static void fail_move(struct coord *c, const struct cmap *m, const struct cmap_move *mv,
                      struct coord_move *j, const char *why)
{
    char err[DV_ERRMSG_SIZE];
    struct cmap_result res;
    snprintf(j->error, sizeof j->error, "%s", why);
    log_warn("move failed", "collection=%s partition=%u from=%s to=%s cause=\"%s\"", mv->coll,
             mv->part, ncall_node_id(m, mv->from), ncall_node_id(m, mv->to), why);
    if (set_state(c, m, mv, CMAP_MOVE_FAILED, &res, err) != DV_OK)
        log_warn("cannot record a failed move", "collection=%s partition=%u error=%s", mv->coll,
                 mv->part, err);
    c->plan_after_ms = now_ms() + BACKOFF_MS;
}

static bool part_has(const struct cmap *m, const char *coll, uint32_t part, uint32_t num)
{
    const struct cmap_part *pt = cmap_part_find(m, coll, part);
    if (pt == NULL)
        return false;
    for (uint32_t k = 0; k < pt->n; k++)
        if (pt->nodes[k] == num)
            return true;
    return false;
}

static void start_pull(struct coord *c, const struct cmap *m, const struct cmap_move *mv,
                       struct coord_move *j)
{
    char err[DV_ERRMSG_SIZE];
    if (j->starts >= MAX_STARTS) {
        char why[DV_ERRMSG_SIZE];
        snprintf(why, sizeof why, "the copy failed %u times; last: %.180s", j->starts,
                 j->error[0] ? j->error : "pull lost");
        fail_move(c, m, mv, j, why);
        return;
    }
    struct msg_pull_rep st;
    int rc = pull(c, m, mv, MSG_PULL_START, 0, &st, c->o.request_timeout_ms, err);
    if (rc == DV_EEXIST && !part_has(m, mv->coll, mv->part, mv->to)) {
        /* The target still holds an old replica of the partition (moved away from it within
         * the grace period, or left by a failed move): not in the map, so stale. */
        const struct cmap_part *pt = cmap_part_find(m, mv->coll, mv->part);
        struct msg req = addressed(MSG_REPLICA_DROP, mv, pt ? pt->epoch : m->epoch);
        struct msg_reply rep;
        int drc = ncall(c, m, mv->to, &req, &rep, c->o.request_timeout_ms, err);
        msg_reply_free(&rep);
        log_info("stale replica dropped from a move's target before copying",
                 "collection=%s partition=%u node=%s result=%s", mv->coll, mv->part,
                 ncall_node_id(m, mv->to), dv_errname(drc));
        j->next_try_ms = now_ms() + 100;
        return;
    }
    if (rc != DV_OK) {
        snprintf(j->error, sizeof j->error, "%s", err);
        j->starts++;
        j->next_try_ms = now_ms() + RETRY_MS;
        return;
    }
    j->starts++;
    if (j->started_ms == 0)
        j->started_ms = now_ms();
    j->error[0] = '\0';
    log_info("move copying", "collection=%s partition=%u from=%s to=%s start=%u", mv->coll,
             mv->part, ncall_node_id(m, mv->from), ncall_node_id(m, mv->to), j->starts);
    if (mv->state == CMAP_MOVE_PLANNED) {
        struct cmap_result res;
        set_state(c, m, mv, CMAP_MOVE_COPYING, &res, err);
    }
}

/* The replica whose fence stops the partition's writes: the primary (writes go there and it
 * replicates them to A before it answers), A when the partition has none. */
static uint32_t writer(const struct cmap_part *pt, const struct cmap_move *mv)
{
    return pt->primary != CMAP_NONE ? pt->primary : mv->from;
}

/*
 * The switch: fence the partition's writes at its primary (it answers with its last LSN once
 * no write is in flight; every in-sync replica, A included, has that LSN by then), let B take
 * the records up to it from A and stop, then the map's done command puts B in A's place. On
 * an error before the command the move fails (the cleanup unfences); when the command's fate
 * is unknown (leadership lost) the next leader does the switch again.
 */
static void do_switch(struct coord *c, const struct cmap *m, const struct cmap_move *mv,
                      struct coord_move *j)
{
    char err[DV_ERRMSG_SIZE];
    struct cmap_result res;
    const struct cmap_coll *cl = cmap_coll_find(m, mv->coll);
    if (cl == NULL)
        return;
    const struct cmap_part *pt = &cl->parts[mv->part];
    if (mv->state != CMAP_MOVE_SWITCHING) {
        if (set_state(c, m, mv, CMAP_MOVE_SWITCHING, &res, err) != DV_OK || res.code != DV_OK)
            return;
    }
    uint64_t t0 = now_ms();
    if (j->switch_since == 0)
        j->switch_since = t0;
    uint64_t lsn = 0;
    uint32_t fenced = writer(pt, mv);
    int rc = fence(c, m, mv, fenced, MSG_FENCE_ON, pt->epoch, &lsn, err);
    if (rc != DV_OK) {
        if (t0 - j->switch_since > SWITCH_GIVEUP || (rc != DV_EIO && rc != DV_ETIMEDOUT))
            fail_move(c, m, mv, j, err);
        else
            snprintf(j->error, sizeof j->error, "fencing: %.200s", err);
        return;
    }
    struct msg_pull_rep st;
    rc = pull(c, m, mv, MSG_PULL_FINISH, lsn, &st, FINISH_MS, err);
    if (rc != DV_OK || st.state != MSG_PULL_READY) {
        char why[DV_ERRMSG_SIZE];
        snprintf(why, sizeof why, "finishing the copy at LSN %" PRIu64 ": %.180s", lsn,
                 rc != DV_OK ? err : "not ready");
        fail_move(c, m, mv, j, why);
        return;
    }
    rc = set_state(c, m, mv, CMAP_MOVE_DONE, &res, err);
    if (rc != DV_OK) {
        snprintf(j->error, sizeof j->error, "switching: %.200s", err);
        return; /* fate unknown: this or the next leader does it again */
    }
    if (res.code != DV_OK) {
        fail_move(c, m, mv, j, res.msg);
        return;
    }
    uint64_t t1 = now_ms();
    j->fence_ms = (uint32_t)(t1 - t0);
    j->done_ms = t1;
    j->applied_lsn = j->source_lsn = lsn;
    j->bytes_done = j->bytes_total;
    j->error[0] = '\0';
    /* The fenced replica learns the new epoch: requests routed with the old map get "stale
     * map" and retry. A stays fenced until it is dropped; a primary that stays resumes. */
    if (fenced == mv->from)
        fence(c, m, mv, fenced, MSG_FENCE_ON, res.epoch, NULL, err);
    else if (fence(c, m, mv, fenced, MSG_FENCE_OFF, res.epoch, NULL, err) != DV_OK) {
        j->unfence = fenced; /* drop_old retries */
        log_warn("cannot unfence the primary after a move; retrying",
                 "collection=%s partition=%u node=%s error=%s", mv->coll, mv->part,
                 ncall_node_id(m, fenced), err);
    }
    log_info("move done",
             "collection=%s partition=%u from=%s to=%s lsn=%" PRIu64 " writes_paused_ms=%u "
             "epoch=%" PRIu64 " took_ms=%" PRIu64,
             mv->coll, mv->part, ncall_node_id(m, mv->from), ncall_node_id(m, mv->to), lsn,
             j->fence_ms, res.epoch, j->started_ms ? t1 - j->started_ms : 0);
}

/* A done move: the old replica goes after the grace period. */
static void drop_old(struct coord *c, const struct cmap *m, const struct cmap_move *mv,
                     struct coord_move *j)
{
    uint64_t t = now_ms();
    if (j->unfence != CMAP_NONE && t >= j->next_try_ms) {
        const struct cmap_part *pp = cmap_part_find(m, mv->coll, mv->part);
        char e[DV_ERRMSG_SIZE];
        if (pp == NULL || ncall_node_gone(m, j->unfence) ||
            fence(c, m, mv, j->unfence, MSG_FENCE_OFF, pp->epoch, NULL, e) == DV_OK)
            j->unfence = CMAP_NONE;
        else
            j->next_try_ms = t + RETRY_MS;
    }
    if (j->dropped || ncall_node_gone(m, mv->from) || part_has(m, mv->coll, mv->part, mv->from))
        return;
    if (j->done_ms == 0)
        j->done_ms = t; /* done before this leader: the grace starts now */
    if (t < j->done_ms + c->o.move_grace_ms || t < j->next_try_ms)
        return;
    const struct cmap_part *pt = cmap_part_find(m, mv->coll, mv->part);
    struct msg req = addressed(MSG_REPLICA_DROP, mv, pt ? pt->epoch : m->epoch);
    struct msg_reply rep;
    char err[DV_ERRMSG_SIZE];
    int rc = ncall(c, m, mv->from, &req, &rep, c->o.request_timeout_ms, err);
    msg_reply_free(&rep);
    if (rc == DV_OK || (rc == DV_ESTALE && rep.m.err.epoch == 0)) {
        j->dropped = true;
        log_info("moved replica dropped from its old node", "collection=%s partition=%u node=%s",
                 mv->coll, mv->part, ncall_node_id(m, mv->from));
    } else {
        j->next_try_ms = t + RETRY_MS;
        log_warn("cannot drop a moved replica; retrying",
                 "collection=%s partition=%u node=%s "
                 "error=%s",
                 mv->coll, mv->part, ncall_node_id(m, mv->from), err);
    }
}

/* A failed move: A must accept writes again, B's copy must go. Retried until both answer. */
static void fail_cleanup(struct coord *c, const struct cmap *m, const struct cmap_move *mv,
                         struct coord_move *j)
{
    uint64_t t = now_ms();
    if (j->cleaned || t < j->next_try_ms)
        return;
    char err[DV_ERRMSG_SIZE];
    bool ok = true;
    const struct cmap_part *pt = cmap_part_find(m, mv->coll, mv->part);
    if (pt && part_has(m, mv->coll, mv->part, mv->from) && !ncall_node_gone(m, mv->from))
        ok = fence(c, m, mv, mv->from, MSG_FENCE_OFF, pt->epoch, NULL, err) == DV_OK && ok;
    if (pt && pt->primary != CMAP_NONE && pt->primary != mv->from &&
        !ncall_node_gone(m, pt->primary))
        ok = fence(c, m, mv, pt->primary, MSG_FENCE_OFF, pt->epoch, NULL, err) == DV_OK && ok;
    if (pt && !part_has(m, mv->coll, mv->part, mv->to) && !ncall_node_gone(m, mv->to))
        ok = pull(c, m, mv, MSG_PULL_ABORT, 0, NULL, c->o.request_timeout_ms, err) == DV_OK && ok;
    if (ok || pt == NULL)
        j->cleaned = true;
    else
        j->next_try_ms = t + RETRY_MS;
}

/* Moves under way (copying .. switching) that involve node `num`. */
static uint32_t busy(const struct cmap *m, uint32_t num)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_moves; i++) {
        const struct cmap_move *mv = &m->moves[i];
        if (mv->state >= CMAP_MOVE_COPYING && mv->state <= CMAP_MOVE_SWITCHING &&
            (mv->from == num || mv->to == num))
            n++;
    }
    return n;
}

static void drive(struct coord *c, const struct cmap *m, const struct cmap_move *mv,
                  struct coord_move *j, uint32_t *started)
{
    char err[DV_ERRMSG_SIZE], why[DV_ERRMSG_SIZE];
    uint64_t t = now_ms();
    if (cmap_coll_find(m, mv->coll) == NULL)
        return;
    switch (mv->state) {
    case CMAP_MOVE_PLANNED: {
        if (m->settings.paused || t < j->next_try_ms)
            return;
        uint32_t cap = m->settings.moves_per_node;
        if (busy(m, mv->from) + started[mv->from] >= cap ||
            busy(m, mv->to) + started[mv->to] >= cap)
            return;
        if (ncall_node_gone(m, mv->from) || ncall_node_gone(m, mv->to)) {
            snprintf(why, sizeof why, "node %s is %s",
                     ncall_node_gone(m, mv->from) ? ncall_node_id(m, mv->from)
                                                  : ncall_node_id(m, mv->to),
                     ncall_node_gone(m, mv->from) ? "down" : "down");
            fail_move(c, m, mv, j, why);
            return;
        }
        if (!ncall_node_up(m, mv->from) || !ncall_node_up(m, mv->to))
            return; /* suspect: wait */
        started[mv->from]++;
        started[mv->to]++;
        start_pull(c, m, mv, j);
        return;
    }
    case CMAP_MOVE_COPYING:
    case CMAP_MOVE_CATCHING_UP: {
        if (ncall_node_gone(m, mv->to) || ncall_node_gone(m, mv->from)) {
            bool src = ncall_node_gone(m, mv->from);
            snprintf(why, sizeof why, "%s node %s is %s", src ? "source" : "target",
                     ncall_node_id(m, src ? mv->from : mv->to),
                     cmap_node_state_name(cmap_node_get(m, src ? mv->from : mv->to)->state));
            fail_move(c, m, mv, j, why);
            return;
        }
        if (t < j->next_try_ms)
            return;
        struct msg_pull_rep st;
        int rc = pull(c, m, mv, MSG_PULL_STATUS, 0, &st, c->o.request_timeout_ms, err);
        if (rc != DV_OK) {
            snprintf(j->error, sizeof j->error, "%s", err);
            j->next_try_ms = t + RETRY_MS / 4; /* liveness decides whether the node is gone */
            return;
        }
        switch (st.state) {
        case MSG_PULL_NONE: /* the target restarted, or this leader never started it */
            if (j->starts > 0)
                snprintf(j->error, sizeof j->error, "the copy on %s was lost (node restart?)",
                         ncall_node_id(m, mv->to));
            start_pull(c, m, mv, j);
            return;
        case MSG_PULL_FAILED:
            snprintf(j->error, sizeof j->error, "%s", err);
            start_pull(c, m, mv, j);
            return;
        case MSG_PULL_COPYING:
            progress(j, &st);
            if (j->started_ms == 0)
                j->started_ms = t;
            return;
        default: /* catching up, or ready after a finish whose switch did not happen */
            progress(j, &st);
            if (j->started_ms == 0)
                j->started_ms = t;
            if (mv->state == CMAP_MOVE_COPYING) {
                struct cmap_result res;
                set_state(c, m, mv, CMAP_MOVE_CATCHING_UP, &res, err);
            }
            if (st.state == MSG_PULL_READY || st.source_lsn <= st.applied_lsn + CATCHUP_RECORDS)
                do_switch(c, m, mv, j);
            return;
        }
    }
    case CMAP_MOVE_SWITCHING:
        if (ncall_node_gone(m, mv->to)) {
            fail_move(c, m, mv, j, "target node is down during the switch");
            return;
        }
        if (t >= j->next_try_ms && !ncall_node_gone(m, mv->from))
            do_switch(c, m, mv, j);
        return;
    case CMAP_MOVE_DONE:
        drop_old(c, m, mv, j);
        return;
    default:
        fail_cleanup(c, m, mv, j);
        return;
    }
}

/* ---- applying a plan ------------------------------------------------------------------------ */

int mover_apply(struct coord *c, const struct cmap *m, const struct plan *pl, size_t *added,
                char *errmsg)
{
    struct cmap_result res;
    int rc = DV_OK;
    *added = 0;
    /* Finished records go (done ones once their old replica is dropped, failed ones once
     * cleaned up), so the map holds the current plan. */
    pthread_mutex_lock(&c->moves_mu);
    struct cmap_move *old = NULL;
    size_t n_old = 0;
    if (m->n_moves && (old = malloc(m->n_moves * sizeof *old)) != NULL)
        for (uint32_t i = 0; i < m->n_moves; i++) {
            const struct cmap_move *mv = &m->moves[i];
            const struct coord_move *j = job_find(c, mv, false);
            bool keep = mv->state < CMAP_MOVE_DONE ||
                        (mv->state == CMAP_MOVE_DONE && j && !j->dropped &&
                         !ncall_node_gone(m, mv->from)) ||
                        (mv->state == CMAP_MOVE_FAILED && j && !j->cleaned);
            if (!keep)
                old[n_old++] = *mv;
        }
    pthread_mutex_unlock(&c->moves_mu);
    for (size_t i = 0; i < n_old; i++) {
        struct cmap_cmd cmd = {.type = CMAP_CMD_MOVE_REMOVE, .req = coord_reqid(c)};
        snprintf(cmd.u.move.coll, sizeof cmd.u.move.coll, "%s", old[i].coll);
        cmd.u.move.part = old[i].part;
        snprintf(cmd.u.move.from, sizeof cmd.u.move.from, "%s", ncall_node_id(m, old[i].from));
        snprintf(cmd.u.move.to, sizeof cmd.u.move.to, "%s", ncall_node_id(m, old[i].to));
        coord_apply(c, &cmd, &res, errmsg);
    }
    free(old);
    for (size_t i = 0; i < pl->n && rc == DV_OK; i++) {
        const struct plan_move *pm = &pl->moves[i];
        struct cmap_cmd cmd = {.type = CMAP_CMD_MOVE_ADD, .req = coord_reqid(c)};
        snprintf(cmd.u.move.coll, sizeof cmd.u.move.coll, "%s", pm->coll->name);
        cmd.u.move.part = pm->part;
        snprintf(cmd.u.move.from, sizeof cmd.u.move.from, "%s", ncall_node_id(m, pm->from));
        snprintf(cmd.u.move.to, sizeof cmd.u.move.to, "%s", ncall_node_id(m, pm->to));
        cmd.u.move.state = CMAP_MOVE_PLANNED;
        rc = coord_apply(c, &cmd, &res, errmsg);
        if (rc == DV_OK && res.code == DV_OK)
            (*added)++;
        else if (rc == DV_OK && res.code != DV_EEXIST) {
            dv_errmsg_set(errmsg, "adding the move of %s/%u: %s", pm->coll->name, pm->part,
                          res.msg);
            rc = res.code;
        }
    }
    if (*added)
        log_info("rebalance plan applied", "moves=%zu", *added);
    return rc;
}

/* ---- the loop ------------------------------------------------------------------------------- */

static bool any_active(const struct cmap *m)
{
    for (uint32_t i = 0; i < m->n_moves; i++)
        if (m->moves[i].state < CMAP_MOVE_DONE)
            return true;
    return false;
}

static void auto_plan(struct coord *c, const struct cmap *m, uint64_t *last)
{
    uint64_t t = now_ms();
    if (!m->settings.auto_rebalance || m->settings.paused || any_active(m) ||
        t < *last + REPLAN_MS || t < c->plan_after_ms)
        return;
    *last = t;
    struct plan pl;
    if (plan_make(m, &pl) != DV_OK)
        return;
    if (pl.n > 0) {
        char err[DV_ERRMSG_SIZE];
        size_t added;
        log_info("placement differs from the ideal one: rebalancing", "moves=%zu", pl.n);
        if (mover_apply(c, m, &pl, &added, err) != DV_OK)
            log_warn("cannot apply the rebalance plan", "error=%s", err);
    }
    plan_free(&pl);
}

static void tick(struct coord *c, uint64_t *last_plan)
{
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    uint32_t *started = calloc(m->n_nodes ? m->n_nodes : 1, sizeof *started);
    if (started == NULL) {
        craft_map_release(c->raft, ref);
        return;
    }
    pthread_mutex_lock(&c->moves_mu);
    job_prune(c, m);
    pthread_mutex_unlock(&c->moves_mu);
    for (uint32_t i = 0; i < m->n_moves && !atomic_load(&c->stop); i++) {
        const struct cmap_move *mv = &m->moves[i];
        /* The job is copied out so that status readers never wait for a node call. */
        pthread_mutex_lock(&c->moves_mu);
        struct coord_move *jp = job_find(c, mv, true);
        struct coord_move j;
        if (jp)
            j = *jp;
        pthread_mutex_unlock(&c->moves_mu);
        if (jp == NULL)
            continue;
        drive(c, m, mv, &j, started);
        pthread_mutex_lock(&c->moves_mu);
        if ((jp = job_find(c, mv, true)) != NULL)
            *jp = j;
        pthread_mutex_unlock(&c->moves_mu);
    }
    free(started);
    recover_tick(c, m);
    craft_map_release(c->raft, ref);
    ref = craft_map(c->raft);
    auto_plan(c, &ref->map, last_plan);
    craft_map_release(c->raft, ref);
}

void *mover_main(void *arg)
{
    struct coord *c = arg;
    uint64_t last_plan = 0;
    bool leading = false;
    while (!atomic_load(&c->stop)) {
        struct craft_status st;
        craft_status(c->raft, &st);
        if (st.leader_ready) {
            if (!leading)
                last_plan = now_ms(); /* let node reports arrive before planning */
            leading = true;
            tick(c, &last_plan);
        } else if (leading) {
            leading = false;
            pthread_mutex_lock(&c->moves_mu);
            c->n_moves = 0; /* the next leader has the truth */
            pthread_mutex_unlock(&c->moves_mu);
        }
        clock_sleep_ms(c->o.move_tick_ms ? c->o.move_tick_ms : TICK_MS);
    }
    return NULL;
}

/* ---- status -----------------------------------------------------------------------------------
 */

int mover_status(struct coord *c, const struct cmap *m, struct buf *b)
{
    int rc;
#define K(s) mpw_str(b, s, strlen(s))
#define T(x)                                                                                       \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            goto out;                                                                              \
    } while (0)
    pthread_mutex_lock(&c->moves_mu);
    uint64_t t = now_ms();
    T(mpw_array(b, m->n_moves));
    for (uint32_t i = 0; i < m->n_moves; i++) {
        const struct cmap_move *mv = &m->moves[i];
        const struct coord_move *j = job_find(c, mv, false);
        struct coord_move z = {0};
        if (j == NULL)
            j = &z;
        double eta = -1;
        if (mv->state == CMAP_MOVE_COPYING && j->rate > 0 && j->bytes_total >= j->bytes_done)
            eta = (double)(j->bytes_total - j->bytes_done) / j->rate;
        T(mpw_map(b, 15));
        T(K("collection"));
        T(K(mv->coll));
        T(K("partition"));
        T(mpw_u64(b, mv->part));
        T(K("from"));
        T(K(ncall_node_id(m, mv->from)));
        T(K("to"));
        T(K(ncall_node_id(m, mv->to)));
        T(K("state"));
        T(K(cmap_move_state_name(mv->state)));
        T(K("epoch"));
        T(mpw_u64(b, mv->epoch));
        T(K("bytes_done"));
        T(mpw_u64(b, j->bytes_done));
        T(K("bytes_total"));
        T(mpw_u64(b, j->bytes_total));
        T(K("rate"));
        T(mpw_f64(b, j->rate));
        T(K("eta_s"));
        T(mpw_f64(b, eta));
        T(K("lag"));
        T(mpw_u64(b, j->source_lsn > j->applied_lsn ? j->source_lsn - j->applied_lsn : 0));
        T(K("elapsed_ms"));
        T(mpw_u64(b, j->started_ms ? (j->done_ms ? j->done_ms : t) - j->started_ms : 0));
        T(K("writes_paused_ms"));
        T(mpw_u64(b, j->fence_ms));
        T(K("old_replica_dropped"));
        T(mpw_bool(b, j->dropped));
        T(K("error"));
        T(K(j->error));
    }
out:
    pthread_mutex_unlock(&c->moves_mu);
#undef T
#undef K
    return rc;
}
