/* recover.c - the leader brings replicas that left the in-sync set back: the replica cut back to
 * what it shares with the primary and the primary's WAL records from there (a snapshot when
 * that cannot be), a short fence of the primary's writes, the last records, then ACTIVE in the
 * map. */
#include "recover.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "err.h"
#include "insync.h"
#include "log.h"
#include "node_call.h"

/*
 * A replica the map marks DEAD on a node that serves, of a partition whose primary serves:
 *   DEAD       the node starts a pull from the primary that resumes from what it holds of the
 *              partition (replica_pull resume): that replica leaves the node's table, its
 *              records after the last one it shares with the primary (records an old primary
 *              wrote that no one acknowledged) are cut from its WAL, by the primary-term
 *              histories (the log-matching rule); the map says RECOVERY
 *   RECOVERY   the copy takes the primary's WAL records from there on (a snapshot first when
 *              the node holds nothing, the cut would reach into its checkpoint or the
 *              primary's WAL does not go back that far); when it is at most
 *              RECOVER_CATCHUP records behind, the primary's writes are fenced (its applied
 *              LSN L is then on every in-sync replica), the copy takes the records up to L, the
 *              map says ACTIVE (the partition's epoch moves on), and the primary is unfenced
 *              with that epoch: the next writes name the replica as a secondary holding L.
 * Any failure puts the replica back to DEAD (pull aborted, primary unfenced) and the next try
 * waits RECOVER_BACKOFF_MS. The map's state is the truth; the job table holds progress only,
 * so a new leader carries on (a RECOVERY replica whose pull it does not find starts over).
 */

#define RECOVER_CATCHUP    64
#define RECOVER_FINISH_MS  6000
#define RECOVER_BACKOFF_MS 2000

struct recovery {
    char coll[CMAP_NAME_MAX + 1];
    uint32_t part, node;
    uint64_t term;        /* of the primary it copies from */
    uint64_t started_ms;  /* pull started */
    uint64_t next_try_ms; /* backoff */
    bool seen;            /* still wanted at this tick */
};

struct recover_set {
    struct recovery *r;
    size_t n, cap;
};

static struct recovery *job(struct coord *c, const char *coll, uint32_t part, uint32_t node)
{
    struct recover_set *s = c->recoveries;
    if (s == NULL && (s = c->recoveries = calloc(1, sizeof *s)) == NULL)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->r[i].part == part && s->r[i].node == node && strcmp(s->r[i].coll, coll) == 0)
            return &s->r[i];
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        void *p = realloc(s->r, cap * sizeof *s->r);
        if (p == NULL)
            return NULL;
        s->r = p;
        s->cap = cap;
    }
    struct recovery *j = &s->r[s->n++];
    memset(j, 0, sizeof *j);
    snprintf(j->coll, sizeof j->coll, "%s", coll);
    j->part = part;
    j->node = node;
    return j;
}

void recover_free(struct coord *c)
{
    struct recover_set *s = c->recoveries;
    if (s) {
        free(s->r);
        free(s);
    }
    c->recoveries = NULL;
}

/* Sets the replica's state in the map (the leader's own command), expecting `term`. */
static int set_state(struct coord *c, const struct cmap *m, const struct recovery *j, int state,
                     uint64_t term, uint64_t *epoch, char *err)
{
    uint64_t e = 0;
    int rc = insync_set_state(c, j->coll, j->part, ncall_node_id(m, j->node), state, term, &e, err);
    if (epoch)
        *epoch = e;
    return rc;
}

/* Gives up this try: the copy aborted, the replica DEAD again, a pause before the next. */
static void fail(struct coord *c, const struct cmap *m, struct recovery *j, const char *why)
{
    char err[DV_ERRMSG_SIZE];
    const struct cmap_part *pt = cmap_part_find(m, j->coll, j->part);
    if (pt && pt->primary != CMAP_NONE)
        ncall_pull(c, m, j->coll, j->part, j->node, pt->primary, MSG_PULL_ABORT, 0, NULL,
                   c->o.request_timeout_ms, err);
    set_state(c, m, j, CMAP_REPLICA_DEAD, 0, NULL, err);
    j->started_ms = 0;
    j->next_try_ms = clock_mono_ms() + RECOVER_BACKOFF_MS;
    log_warn("replica recovery failed; retrying later",
             "collection=%s partition=%u node=%s error=%s", j->coll, j->part,
             ncall_node_id(m, j->node), why);
}

static void start(struct coord *c, const struct cmap *m, const struct cmap_part *pt,
                  struct recovery *j)
{
    char err[DV_ERRMSG_SIZE];
    struct msg_pull_rep st;
    int rc = ncall_pull(c, m, j->coll, j->part, j->node, pt->primary, MSG_PULL_RESUME, 0, &st,
                        c->o.request_timeout_ms, err);
    if (rc != DV_OK) {
        j->next_try_ms = clock_mono_ms() + (rc == DV_EEXIST ? 100 : RECOVER_BACKOFF_MS);
        return;
    }
    if (set_state(c, m, j, CMAP_REPLICA_RECOVERY, pt->term, NULL, err) != DV_OK) {
        fail(c, m, j, err);
        return;
    }
    j->term = pt->term;
    j->started_ms = clock_mono_ms();
    log_info("replica recovery started: copying from the primary",
             "collection=%s partition=%u node=%s primary=%s term=%" PRIu64, j->coll, j->part,
             ncall_node_id(m, j->node), ncall_node_id(m, pt->primary), pt->term);
}

/* The copy is close: fence the primary, take the last records, ACTIVE, unfence. */
static void finish(struct coord *c, const struct cmap *m, const struct cmap_part *pt,
                   struct recovery *j)
{
    char err[DV_ERRMSG_SIZE], why[DV_ERRMSG_SIZE];
    uint64_t lsn = 0, t0 = clock_mono_ms(), epoch = 0;
    int rc = ncall_fence(c, m, j->coll, j->part, pt->primary, MSG_FENCE_ON, pt->epoch, &lsn, err);
    if (rc != DV_OK) {
        snprintf(why, sizeof why, "fencing the primary: %.200s", err);
        ncall_fence(c, m, j->coll, j->part, pt->primary, MSG_FENCE_OFF, pt->epoch, NULL, err);
        fail(c, m, j, why);
        return;
    }
    struct msg_pull_rep st;
    rc = ncall_pull(c, m, j->coll, j->part, j->node, pt->primary, MSG_PULL_FINISH, lsn, &st,
                    RECOVER_FINISH_MS, err);
    if (rc == DV_OK && st.state == MSG_PULL_READY)
        rc = set_state(c, m, j, CMAP_REPLICA_ACTIVE, j->term, &epoch, err);
    else if (rc == DV_OK)
        dv_errmsg_set(err, "the copy is not ready (state %u)", st.state);
    uint64_t unfence_epoch = rc == DV_OK && st.state == MSG_PULL_READY ? epoch : pt->epoch;
    char uerr[DV_ERRMSG_SIZE];
    if (ncall_fence(c, m, j->coll, j->part, pt->primary, MSG_FENCE_OFF, unfence_epoch, NULL,
                    uerr) != DV_OK)
        log_warn("cannot unfence a primary after a recovery; the next try unfences",
                 "collection=%s partition=%u node=%s error=%s", j->coll, j->part,
                 ncall_node_id(m, pt->primary), uerr);
    if (rc != DV_OK || st.state != MSG_PULL_READY) {
        snprintf(why, sizeof why, "finishing at LSN %" PRIu64 ": %.180s", lsn, err);
        fail(c, m, j, why);
        return;
    }
    log_info("replica recovered: back in the in-sync set",
             "collection=%s partition=%u node=%s lsn=%" PRIu64 " writes_paused_ms=%" PRIu64
             " took_ms=%" PRIu64,
             j->coll, j->part, ncall_node_id(m, j->node), lsn, clock_mono_ms() - t0,
             j->started_ms ? clock_mono_ms() - j->started_ms : 0);
    j->started_ms = 0;
}

/* Whether a move of the partition is under way (it fences and copies on its own). */
static bool moving(const struct cmap *m, const char *coll, uint32_t part)
{
    for (uint32_t i = 0; i < m->n_moves; i++)
        if (m->moves[i].part == part && strcmp(m->moves[i].coll, coll) == 0 &&
            m->moves[i].state != CMAP_MOVE_DONE && m->moves[i].state != CMAP_MOVE_FAILED)
            return true;
    return false;
}

/* Replicas being copied to node `num` (RECOVERY). */
static uint32_t copies_to(const struct cmap *m, uint32_t num)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_colls; i++)
        for (uint32_t p = 0; p < m->colls[i]->cfg.n_parts; p++)
            for (uint32_t k = 0; k < m->colls[i]->parts[p].n; k++)
                n += m->colls[i]->parts[p].nodes[k] == num &&
                     m->colls[i]->parts[p].state[k] == CMAP_REPLICA_RECOVERY;
    return n;
}

static void drive(struct coord *c, const struct cmap *m, const struct cmap_coll *cl, uint32_t p,
                  uint32_t k)
{
    const struct cmap_part *pt = &cl->parts[p];
    uint32_t num = pt->nodes[k];
    struct recovery *j = job(c, cl->name, p, num);
    if (j == NULL)
        return;
    j->seen = true;
    uint64_t now = clock_mono_ms();
    if (now < j->next_try_ms || !ncall_node_up(m, num) || pt->primary == CMAP_NONE ||
        !ncall_node_up(m, pt->primary) || moving(m, cl->name, p))
        return;
    if (pt->state[k] == CMAP_REPLICA_DEAD) {
        /* within the throttle of the mover: copies to one node at a time per moves_per_node */
        if (copies_to(m, num) < m->settings.moves_per_node)
            start(c, m, pt, j);
        return;
    }
    /* RECOVERY */
    char err[DV_ERRMSG_SIZE];
    if (j->term != pt->term) {
        fail(c, m, j, "the partition's primary changed");
        return;
    }
    struct msg_pull_rep st;
    int rc = ncall_pull(c, m, cl->name, p, num, pt->primary, MSG_PULL_STATUS, 0, &st,
                        c->o.request_timeout_ms, err);
    if (rc != DV_OK)
        return; /* the node may be busy: ask again at the next tick */
    if (st.state == MSG_PULL_FAILED || st.state == MSG_PULL_NONE) {
        fail(c, m, j, st.state == MSG_PULL_NONE ? "the copy was lost (node restarted?)" : err);
        return;
    }
    if (st.state == MSG_PULL_CATCHING_UP && st.source_lsn <= st.applied_lsn + RECOVER_CATCHUP)
        finish(c, m, pt, j);
}

void recover_tick(struct coord *c, const struct cmap *m)
{
    struct recover_set *s = c->recoveries;
    for (size_t i = 0; s && i < s->n; i++)
        s->r[i].seen = false;
    for (uint32_t i = 0; i < m->n_colls && !atomic_load(&c->stop); i++) {
        const struct cmap_coll *cl = m->colls[i];
        for (uint32_t p = 0; p < cl->cfg.n_parts; p++)
            for (uint32_t k = 0; k < cl->parts[p].n; k++)
                if (cl->parts[p].state[k] == CMAP_REPLICA_DEAD ||
                    cl->parts[p].state[k] == CMAP_REPLICA_RECOVERY)
                    drive(c, m, cl, p, k);
    }
    /* Forget the jobs of replicas that are in sync again, dropped or gone. */
    s = c->recoveries;
    size_t w = 0;
    for (size_t i = 0; s && i < s->n; i++)
        if (s->r[i].seen)
            s->r[w++] = s->r[i];
    if (s)
        s->n = w;
}
