/* admin.c - admin commands on the leader: rebalancing (plan, apply, status, pause, resume,
 * settings) and nodes (add, drain, undrain, remove, weight). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "err.h"
#include "group.h"
#include "insync.h"
#include "verify.h"
#include "log.h"
#include "mpk.h"
#include "plan.h"

#define K(s) mpw_str(b, s, strlen(s))
#define T(x)                                                                                       \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            goto out;                                                                              \
    } while (0)

/* ---- arguments ------------------------------------------------------------------------------ */

struct args {
    const uint8_t *p;
    size_t n;
};

/* The raw value of `key`, or DV_ENOTFOUND. */
static int arg(const struct args *a, const char *key, struct mpk *r)
{
    const uint8_t *v;
    size_t len;
    if (a->p == NULL)
        return DV_ENOTFOUND;
    int rc = mpk_map_find(a->p, a->n, key, strlen(key), &v, &len);
    if (rc != DV_OK)
        return rc;
    mpk_init(r, v, len);
    return DV_OK;
}

static int arg_str(const struct args *a, const char *key, char *out, size_t size, bool required,
                   char *errmsg)
{
    struct mpk r;
    const char *s;
    uint32_t len;
    int rc = arg(a, key, &r);
    if (rc == DV_ENOTFOUND && !required)
        return DV_ENOTFOUND;
    if (rc != DV_OK || mpk_str(&r, &s, &len) != DV_OK || len == 0 || len >= size ||
        memchr(s, 0, len)) {
        dv_errmsg_set(errmsg, "argument \"%s\": %s", key,
                      rc == DV_ENOTFOUND ? "missing" : "must be a non-empty string that fits");
        return DV_EINVAL;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return DV_OK;
}

static int arg_u64(const struct args *a, const char *key, uint64_t *out, char *errmsg)
{
    struct mpk r;
    int rc = arg(a, key, &r);
    if (rc == DV_ENOTFOUND)
        return rc;
    if (rc != DV_OK || mpk_u64(&r, out) != DV_OK) {
        dv_errmsg_set(errmsg, "argument \"%s\" must be a non-negative integer", key);
        return DV_EINVAL;
    }
    return DV_OK;
}

static int arg_f64(const struct args *a, const char *key, double *out, char *errmsg)
{
    struct mpk r;
    int rc = arg(a, key, &r);
    if (rc == DV_ENOTFOUND)
        return rc;
    if (rc == DV_OK) {
        struct mpk r2 = r;
        uint64_t u;
        if (mpk_f64(&r, out) == DV_OK)
            return DV_OK;
        if (mpk_u64(&r2, &u) == DV_OK) {
            *out = (double)u;
            return DV_OK;
        }
    }
    dv_errmsg_set(errmsg, "argument \"%s\" must be a number", key);
    return DV_EINVAL;
}

static int arg_bool(const struct args *a, const char *key, bool *out, char *errmsg)
{
    struct mpk r;
    int rc = arg(a, key, &r);
    if (rc == DV_ENOTFOUND)
        return rc;
    if (rc != DV_OK || mpk_bool(&r, out) != DV_OK) {
        dv_errmsg_set(errmsg, "argument \"%s\" must be true or false", key);
        return DV_EINVAL;
    }
    return DV_OK;
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* Applies a command; the command's own error becomes the result (with its message). */
static int apply(struct coord *c, struct cmap_cmd *cmd, struct cmap_result *res, char *errmsg)
{
    int rc = coord_apply(c, cmd, res, errmsg);
    if (rc != DV_OK)
        return rc;
    if (res->code != DV_OK) {
        dv_errmsg_set(errmsg, "%s", res->msg);
        return res->code;
    }
    return DV_OK;
}

static const struct cmap_node *live_node(const struct cmap *m, const char *id, char *errmsg)
{
    const struct cmap_node *n = cmap_node_find(m, id);
    if (n == NULL || n->state == CMAP_NODE_REMOVED) {
        dv_errmsg_set(errmsg, "node %s %s", id, n ? "is removed" : "is not in the cluster");
        return NULL;
    }
    return n;
}

static uint32_t held_by(const struct cmap *m, uint32_t num)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < m->n_colls; c++)
        for (uint32_t p = 0; p < m->colls[c]->cfg.n_parts; p++)
            for (uint32_t k = 0; k < m->colls[c]->parts[p].n; k++)
                n += m->colls[c]->parts[p].nodes[k] == num;
    return n;
}

static int w_settings(struct buf *b, const struct cmap_settings *s)
{
    int rc;
    T(K("paused"));
    T(mpw_bool(b, s->paused));
    T(K("auto_rebalance"));
    T(mpw_bool(b, s->auto_rebalance));
    T(K("rate"));
    T(mpw_u64(b, s->rate));
    T(K("moves_per_node"));
    T(mpw_u64(b, s->moves_per_node));
out:
    return rc;
}

/* ---- rebalance ------------------------------------------------------------------------------ */

/* Points and bytes of the replica a move copies, from its source node (0 when it does not
 * answer). */
static void replica_size(struct coord *c, const struct cmap *m, const struct plan_move *mv,
                         uint64_t *points, uint64_t *bytes)
{
    *points = *bytes = 0;
    const struct cmap_node *n = cmap_node_get(m, mv->from);
    char err[DV_ERRMSG_SIZE];
    struct tr_peer *r = n ? coord_conn(c, n->url, NULL, err) : NULL;
    if (r == NULL)
        return;
    struct msg req = {.type = MSG_REPLICA_INFO};
    req.addr.coll = (struct msg_str){mv->coll->name, (uint32_t)strlen(mv->coll->name)};
    req.addr.part = mv->part;
    req.addr.epoch = mv->coll->parts[mv->part].epoch;
    struct msg_reply rep;
    if (tr_call(r, &req, &rep, 2000, err) == DV_OK) {
        const struct msg_info_rep *f = &rep.m.u.info_rep;
        *points = f->points;
        *bytes = f->points * ((uint64_t)f->dim * 4 + 8) + f->payload_bytes;
    }
    msg_reply_free(&rep);
}

/* {moves: [...], stuck: [...], points, bytes, added?} */
static int w_plan(struct coord *c, const struct cmap *m, const struct plan *pl, bool applied,
                  size_t added, struct buf *b)
{
    int rc;
    uint64_t total_points = 0, total_bytes = 0;
    T(mpw_map(b, applied ? 6 : 5));
    T(K("moves"));
    T(mpw_array(b, (uint32_t)pl->n));
    for (size_t i = 0; i < pl->n; i++) {
        const struct plan_move *mv = &pl->moves[i];
        uint64_t points, bytes;
        replica_size(c, m, mv, &points, &bytes);
        total_points += points;
        total_bytes += bytes;
        T(mpw_map(b, 6));
        T(K("collection"));
        T(K(mv->coll->name));
        T(K("partition"));
        T(mpw_u64(b, mv->part));
        T(K("from"));
        T(K(cmap_node_get(m, mv->from)->id));
        T(K("to"));
        T(K(cmap_node_get(m, mv->to)->id));
        T(K("points"));
        T(mpw_u64(b, points));
        T(K("bytes"));
        T(mpw_u64(b, bytes));
    }
    T(K("stuck"));
    T(mpw_array(b, (uint32_t)pl->n_stuck));
    for (size_t i = 0; i < pl->n_stuck; i++) {
        const struct plan_stuck *s = &pl->stuck[i];
        const struct cmap_node *n = s->node == CMAP_NONE ? NULL : cmap_node_get(m, s->node);
        T(mpw_map(b, 4));
        T(K("collection"));
        T(K(s->coll->name));
        T(K("partition"));
        T(mpw_u64(b, s->part));
        T(K("node"));
        T(K(n ? n->id : ""));
        T(K("reason"));
        T(K(plan_why_name(s->why)));
    }
    T(K("points"));
    T(mpw_u64(b, total_points));
    T(K("bytes"));
    T(mpw_u64(b, total_bytes));
    T(K("settings"));
    T(mpw_map(b, 4));
    T(w_settings(b, &m->settings));
    if (applied) {
        T(K("added"));
        T(mpw_u64(b, added));
    }
out:
    return rc;
}

static int rebalance_plan(struct coord *c, bool apply_it, struct buf *b, char *errmsg)
{
    struct cmap_ref *ref = craft_map(c->raft);
    struct plan pl;
    int rc = plan_make(&ref->map, &pl);
    size_t added = 0;
    if (rc == DV_OK && apply_it)
        rc = mover_apply(c, &ref->map, &pl, &added, errmsg);
    if (rc == DV_OK)
        rc = w_plan(c, &ref->map, &pl, apply_it, added, b);
    plan_free(&pl);
    craft_map_release(c->raft, ref);
    return rc;
}

static int rebalance_status(struct coord *c, struct buf *b)
{
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    int rc;
    uint32_t count[CMAP_MOVE_STATE_COUNT] = {0};
    for (uint32_t i = 0; i < m->n_moves; i++)
        count[m->moves[i].state]++;
    T(mpw_map(b, 6));
    T(w_settings(b, &m->settings));
    T(K("counts"));
    T(mpw_map(b, CMAP_MOVE_STATE_COUNT));
    for (int s = 0; s < CMAP_MOVE_STATE_COUNT; s++) {
        T(K(cmap_move_state_name(s)));
        T(mpw_u64(b, count[s]));
    }
    T(K("moves"));
    T(mover_status(c, m, b));
out:
    craft_map_release(c->raft, ref);
    return rc;
}

static int rebalance_set(struct coord *c, const struct args *a, int op, struct buf *b, char *errmsg)
{
    struct cmap_cmd cmd = {.type = CMAP_CMD_SETTINGS, .req = coord_reqid(c)};
    int rc;
    if (op == 'p' || op == 'r') {
        cmd.u.settings.mask = CMAP_SET_PAUSED;
        cmd.u.settings.set.paused = op == 'p';
    } else {
        uint64_t v;
        bool on;
        if ((rc = arg_bool(a, "auto_rebalance", &on, errmsg)) == DV_OK) {
            cmd.u.settings.mask |= CMAP_SET_AUTO;
            cmd.u.settings.set.auto_rebalance = on;
        } else if (rc != DV_ENOTFOUND)
            return rc;
        if ((rc = arg_u64(a, "rate", &v, errmsg)) == DV_OK) {
            cmd.u.settings.mask |= CMAP_SET_RATE;
            cmd.u.settings.set.rate = v;
        } else if (rc != DV_ENOTFOUND)
            return rc;
        if ((rc = arg_u64(a, "moves_per_node", &v, errmsg)) == DV_OK) {
            if (v < 1 || v > CMAP_MAX_MOVES_PER_NODE) {
                dv_errmsg_set(errmsg, "moves_per_node must be 1 to %d", CMAP_MAX_MOVES_PER_NODE);
                return DV_EINVAL;
            }
            cmd.u.settings.mask |= CMAP_SET_MOVES_PER_NODE;
            cmd.u.settings.set.moves_per_node = (uint32_t)v;
        } else if (rc != DV_ENOTFOUND)
            return rc;
        if (cmd.u.settings.mask == 0) {
            dv_errmsg_set(errmsg, "nothing to set: give auto_rebalance, rate or moves_per_node");
            return DV_EINVAL;
        }
    }
    struct cmap_result res;
    if ((rc = apply(c, &cmd, &res, errmsg)) != DV_OK)
        return rc;
    struct cmap_ref *ref = craft_map(c->raft);
    T(mpw_map(b, 4));
    T(w_settings(b, &ref->map.settings));
out:
    craft_map_release(c->raft, ref);
    return rc;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

static int node_add(struct coord *c, const struct args *a, struct buf *b, char *errmsg)
{
    struct cmap_cmd cmd = {.type = CMAP_CMD_NODE_REGISTER, .req = coord_reqid(c)};
    int rc;
    if ((rc = arg_str(a, "id", cmd.u.reg.id, sizeof cmd.u.reg.id, true, errmsg)) != DV_OK ||
        (rc = arg_str(a, "url", cmd.u.reg.url, sizeof cmd.u.reg.url, true, errmsg)) != DV_OK)
        return rc;
    rc = arg_str(a, "http_url", cmd.u.reg.http_url, sizeof cmd.u.reg.http_url, false, errmsg);
    if (rc != DV_OK && rc != DV_ENOTFOUND)
        return rc;
    rc = arg_str(a, "search_url", cmd.u.reg.search_url, sizeof cmd.u.reg.search_url, false, errmsg);
    if (rc != DV_OK && rc != DV_ENOTFOUND)
        return rc;
    cmd.u.reg.weight = 1.0;
    rc = arg_f64(a, "weight", &cmd.u.reg.weight, errmsg);
    if (rc != DV_OK && rc != DV_ENOTFOUND)
        return rc;
    if (!(cmd.u.reg.weight > 0) || !isfinite(cmd.u.reg.weight)) {
        dv_errmsg_set(errmsg, "weight must be a finite number > 0");
        return DV_EINVAL;
    }
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap_node *n = cmap_node_find(&ref->map, cmd.u.reg.id);
    if (n && n->state != CMAP_NODE_REMOVED) {
        dv_errmsg_set(errmsg, "node %s is in the cluster already (%s)", n->id,
                      cmap_node_state_name(n->state));
        craft_map_release(c->raft, ref);
        return DV_EEXIST;
    }
    craft_map_release(c->raft, ref);
    cmd.u.reg.state = CMAP_NODE_JOINING;
    struct cmap_result res;
    if ((rc = apply(c, &cmd, &res, errmsg)) != DV_OK)
        return rc;
    log_info("node added by an admin", "node=%s url=%s weight=%g", cmd.u.reg.id, cmd.u.reg.url,
             cmd.u.reg.weight);
    T(mpw_map(b, 3));
    T(K("node"));
    T(K(cmd.u.reg.id));
    T(K("state"));
    T(K("joining"));
    T(K("weight"));
    T(mpw_f64(b, cmd.u.reg.weight));
out:
    return rc;
}

static int node_state(struct coord *c, const struct args *a, int state, struct buf *b, char *errmsg)
{
    char id[CMAP_ID_MAX + 1];
    int rc = arg_str(a, "id", id, sizeof id, true, errmsg);
    if (rc != DV_OK)
        return rc;
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap_node *n = live_node(&ref->map, id, errmsg);
    int was = n ? n->state : -1;
    uint32_t held = n ? held_by(&ref->map, n->num) : 0;
    bool autorb = ref->map.settings.auto_rebalance;
    craft_map_release(c->raft, ref);
    if (n == NULL)
        return DV_ENOTFOUND;
    if (state == CMAP_NODE_ALIVE && was != CMAP_NODE_DRAINING) {
        dv_errmsg_set(errmsg, "node %s is not draining (%s)", id, cmap_node_state_name(was));
        return DV_EINVAL;
    }
    if (state == CMAP_NODE_DRAINING && (was == CMAP_NODE_DEAD || was == CMAP_NODE_SUSPECT)) {
        dv_errmsg_set(errmsg,
                      "node %s is %s: its replicas cannot be copied from it; bring it back, or "
                      "remove it with force if it will not return",
                      id, cmap_node_state_name(was));
        return DV_EBUSY;
    }
    struct cmap_cmd cmd = {.type = CMAP_CMD_NODE_STATE, .req = coord_reqid(c)};
    snprintf(cmd.u.node_state.id, sizeof cmd.u.node_state.id, "%s", id);
    cmd.u.node_state.state = state;
    struct cmap_result res;
    if ((rc = apply(c, &cmd, &res, errmsg)) != DV_OK)
        return rc;
    log_info(state == CMAP_NODE_DRAINING ? "node draining" : "node drain cancelled",
             "node=%s replicas=%u", id, held);
    T(mpw_map(b, 4));
    T(K("node"));
    T(K(id));
    T(K("state"));
    T(K(cmap_node_state_name(state)));
    T(K("replicas"));
    T(mpw_u64(b, held));
    T(K("auto_rebalance"));
    T(mpw_bool(b, autorb));
out:
    return rc;
}

static int node_remove(struct coord *c, const struct args *a, struct buf *b, char *errmsg)
{
    char id[CMAP_ID_MAX + 1];
    bool force = false, if_draining = false;
    int rc = arg_str(a, "id", id, sizeof id, true, errmsg);
    if (rc != DV_OK)
        return rc;
    if ((rc = arg_bool(a, "force", &force, errmsg)) != DV_OK && rc != DV_ENOTFOUND)
        return rc;
    if ((rc = arg_bool(a, "if_draining", &if_draining, errmsg)) != DV_OK && rc != DV_ENOTFOUND)
        return rc;
    rc = DV_OK;
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    const struct cmap_node *n = cmap_node_find(m, id);
    /* if_draining (a pod's preStop): decided here, on the leader's map, so that a drain just
     * committed is seen; a node that is not draining is kept. */
    if (if_draining && (n == NULL || n->state != CMAP_NODE_DRAINING)) {
        const char *st = n ? cmap_node_state_name(n->state) : "unknown";
        craft_map_release(c->raft, ref);
        if ((rc = mpw_map(b, 3)) == DV_OK && (rc = K("node")) == DV_OK && (rc = K(id)) == DV_OK &&
            (rc = K("kept")) == DV_OK && (rc = mpw_bool(b, true)) == DV_OK &&
            (rc = K("state")) == DV_OK)
            rc = K(st);
        return rc;
    }
    n = live_node(m, id, errmsg);
    if (n == NULL) {
        craft_map_release(c->raft, ref);
        return DV_ENOTFOUND;
    }
    uint32_t held = held_by(m, n->num);
    int state = n->state;
    /* Partitions whose only replica is on the node: unavailable after a forced removal. */
    struct {
        char coll[CMAP_NAME_MAX + 1];
        uint32_t part;
    } *lost = NULL;
    uint32_t n_lost = 0;
    if (held > 0 && (lost = calloc(held, sizeof *lost)) == NULL) {
        craft_map_release(c->raft, ref);
        return DV_ENOMEM;
    }
    for (uint32_t i = 0; i < m->n_colls; i++)
        for (uint32_t p = 0; p < m->colls[i]->cfg.n_parts; p++) {
            const struct cmap_part *pt = &m->colls[i]->parts[p];
            if (pt->n == 1 && pt->nodes[0] == n->num && n_lost < held) {
                snprintf(lost[n_lost].coll, sizeof lost[n_lost].coll, "%s", m->colls[i]->name);
                lost[n_lost++].part = p;
            }
        }
    craft_map_release(c->raft, ref);
    if (held > 0 && !force) {
        if (state == CMAP_NODE_DEAD || state == CMAP_NODE_SUSPECT)
            dv_errmsg_set(errmsg,
                          "node %s is %s and holds %u replicas (%u of them the only copy of "
                          "their partition): remove it with force if its disk will not return; "
                          "those partitions are then unavailable until it does",
                          id, cmap_node_state_name(state), held, n_lost);
        else
            dv_errmsg_set(errmsg,
                          "node %s holds %u replicas: drain it first (dvecctl node drain %s), "
                          "then remove it",
                          id, held, id);
        free(lost);
        return DV_EBUSY;
    }
    if (held > 0 && state != CMAP_NODE_DEAD && state != CMAP_NODE_SUSPECT) {
        dv_errmsg_set(errmsg,
                      "node %s is %s and holds %u replicas: drain it (dvecctl node drain %s); "
                      "force removes only a node that is down",
                      id, cmap_node_state_name(state), held, id);
        free(lost);
        return DV_EBUSY;
    }
    struct cmap_cmd cmd = {.type = CMAP_CMD_NODE_REMOVE, .req = coord_reqid(c)};
    snprintf(cmd.u.node_remove.id, sizeof cmd.u.node_remove.id, "%s", id);
    cmd.u.node_remove.force = force;
    struct cmap_result res;
    if ((rc = apply(c, &cmd, &res, errmsg)) != DV_OK) {
        free(lost);
        return rc;
    }
    if (n_lost)
        log_warn("node removed with the only replica of some partitions: they are unavailable",
                 "node=%s partitions=%u", id, n_lost);
    else
        log_info("node removed", "node=%s replicas=%u", id, held);
    T(mpw_map(b, 4));
    T(K("node"));
    T(K(id));
    T(K("replicas"));
    T(mpw_u64(b, held));
    T(K("unavailable"));
    T(mpw_array(b, n_lost));
    for (uint32_t i = 0; i < n_lost; i++) {
        T(mpw_map(b, 2));
        T(K("collection"));
        T(K(lost[i].coll));
        T(K("partition"));
        T(mpw_u64(b, lost[i].part));
    }
    T(K("message"));
    if (n_lost) {
        char msg[640];
        snprintf(msg, sizeof msg,
                 "%u partitions had their only replica on %s and are unavailable now: searches "
                 "skip them only with allow_partial, writes to them fail. When the node's disk is "
                 "back, start dvec-shard on it with the same data directory and node id, and "
                 "add it back (dvecctl node add %s --url URL): the coordinators adopt its "
                 "replicas.",
                 n_lost, id, id);
        T(K(msg));
    } else {
        T(K(""));
    }
out:
    free(lost);
    return rc;
}

static int node_weight(struct coord *c, const struct args *a, struct buf *b, char *errmsg)
{
    struct cmap_cmd cmd = {.type = CMAP_CMD_NODE_WEIGHT, .req = coord_reqid(c)};
    int rc = arg_str(a, "id", cmd.u.node_weight.id, sizeof cmd.u.node_weight.id, true, errmsg);
    if (rc != DV_OK)
        return rc;
    if ((rc = arg_f64(a, "weight", &cmd.u.node_weight.weight, errmsg)) != DV_OK) {
        if (rc == DV_ENOTFOUND)
            dv_errmsg_set(errmsg, "argument \"weight\": missing");
        return DV_EINVAL;
    }
    if (!(cmd.u.node_weight.weight > 0) || !isfinite(cmd.u.node_weight.weight)) {
        dv_errmsg_set(errmsg, "weight must be a finite number > 0");
        return DV_EINVAL;
    }
    struct cmap_result res;
    if ((rc = apply(c, &cmd, &res, errmsg)) != DV_OK)
        return rc;
    T(mpw_map(b, 2));
    T(K("node"));
    T(K(cmd.u.node_weight.id));
    T(K("weight"));
    T(mpw_f64(b, cmd.u.node_weight.weight));
out:
    return rc;
}

/* Adding a coordinator to the raft group or removing one (group.c does it). */
static int coord_member(struct coord *c, const struct args *a, bool add, struct buf *b,
                        char *errmsg)
{
    uint64_t id = 0;
    char raft_addr[CMAP_URL_MAX + 1] = "", url[CMAP_URL_MAX + 1] = "";
    int rc = arg_u64(a, "id", &id, errmsg);
    if (rc == DV_ENOTFOUND)
        dv_errmsg_set(errmsg, "argument \"id\": missing");
    if (rc != DV_OK)
        return DV_EINVAL;
    if (add &&
        ((rc = arg_str(a, "raft_addr", raft_addr, sizeof raft_addr, true, errmsg)) != DV_OK ||
         (rc = arg_str(a, "url", url, sizeof url, true, errmsg)) != DV_OK))
        return rc;
    if ((rc = coord_group_change(c, add, id, raft_addr, url, errmsg)) != DV_OK)
        return rc;
    T(mpw_map(b, add ? 3 : 1));
    T(K("id"));
    T(mpw_u64(b, id));
    if (add) {
        T(K("raft_addr"));
        T(K(raft_addr));
        T(K("url"));
        T(K(url));
    }
out:
    return rc;
}

/* The state of one replica of a partition: taking a secondary that missed a write out of the
 * in-sync set (routers do it, forwarded here) or, by an operator, putting a replica back. */
static int replica_state(struct coord *c, const struct args *a, struct buf *b, char *errmsg)
{
    char coll[CMAP_NAME_MAX + 1], node[CMAP_ID_MAX + 1], name[32];
    uint64_t part, term = 0, epoch = 0;
    int rc, state = -1;
    if ((rc = arg_str(a, "collection", coll, sizeof coll, true, errmsg)) != DV_OK ||
        (rc = arg_str(a, "node", node, sizeof node, true, errmsg)) != DV_OK ||
        (rc = arg_str(a, "state", name, sizeof name, true, errmsg)) != DV_OK)
        return rc;
    if ((rc = arg_u64(a, "partition", &part, errmsg)) != DV_OK || part > UINT32_MAX) {
        if (rc != DV_EINVAL)
            dv_errmsg_set(errmsg, "argument \"partition\": missing or too large");
        return DV_EINVAL;
    }
    if ((rc = arg_u64(a, "expect_term", &term, errmsg)) != DV_OK && rc != DV_ENOTFOUND)
        return rc;
    for (int i = 0; i < CMAP_REPLICA_STATE_COUNT; i++)
        if (strcmp(name, cmap_replica_state_name(i)) == 0)
            state = i;
    if (state < 0) {
        dv_errmsg_set(errmsg,
                      "argument \"state\": unknown replica state \"%s\" (active, dead, partial, "
                      "initializing, recovery)",
                      name);
        return DV_EINVAL;
    }
    if ((rc = insync_set_state(c, coll, (uint32_t)part, node, state, term, &epoch, errmsg)))
        return rc;
    T(mpw_map(b, 5));
    T(K("collection"));
    T(K(coll));
    T(K("partition"));
    T(mpw_u64(b, part));
    T(K("node"));
    T(K(node));
    T(K("state"));
    T(K(name));
    T(K("epoch"));
    T(mpw_u64(b, epoch));
out:
    return rc;
}

/* Changes a collection's replication factor, write_consistency_factor and/or default search ef
 * online: the leader then adds or removes replicas (coord_leader.c, fix_replication); the
 * routers give searches without an ef the new one (router_default_ef). */
static int coll_set(struct coord *c, const struct args *a, struct buf *b, char *errmsg)
{
    struct cmap_cmd cmd = {.type = CMAP_CMD_COLL_SET, .req = coord_reqid(c)};
    uint64_t rf = 0, wcf = 0, ef = 0;
    int rc =
        arg_str(a, "collection", cmd.u.coll_set.name, sizeof cmd.u.coll_set.name, true, errmsg);
    if (rc != DV_OK)
        return rc;
    struct cmap_ref *at = craft_map(c->raft); /* an alias names its collection */
    const struct cmap_coll *named = cmap_coll_resolve(&at->map, cmd.u.coll_set.name);
    if (named)
        snprintf(cmd.u.coll_set.name, sizeof cmd.u.coll_set.name, "%s", named->name);
    craft_map_release(c->raft, at);
    if ((rc = arg_u64(a, "replication_factor", &rf, errmsg)) != DV_OK && rc != DV_ENOTFOUND)
        return rc;
    if ((rc = arg_u64(a, "write_consistency_factor", &wcf, errmsg)) != DV_OK && rc != DV_ENOTFOUND)
        return rc;
    if ((rc = arg_u64(a, "ef_search", &ef, errmsg)) != DV_OK && rc != DV_ENOTFOUND)
        return rc;
    if (rf == 0 && wcf == 0 && ef == 0) {
        dv_errmsg_set(errmsg, "give replication_factor, write_consistency_factor and/or ef_search");
        return DV_EINVAL;
    }
    if (rf > CMAP_MAX_RF || wcf > CMAP_MAX_RF) {
        dv_errmsg_set(errmsg, "replication_factor and write_consistency_factor must be 1 to %d",
                      CMAP_MAX_RF);
        return DV_EINVAL;
    }
    if (ef > PROTO_MAX_CFG_EF) {
        dv_errmsg_set(errmsg, "ef_search must be 1 to %d", PROTO_MAX_CFG_EF);
        return DV_EINVAL;
    }
    cmd.u.coll_set.rf = (uint32_t)rf;
    cmd.u.coll_set.wcf = (uint32_t)wcf;
    cmd.u.coll_set.ef_search = (uint32_t)ef;
    struct cmap_result res;
    if ((rc = apply(c, &cmd, &res, errmsg)) != DV_OK)
        return rc;
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap_coll *cl = cmap_coll_find(&ref->map, cmd.u.coll_set.name);
    uint32_t now_rf = cl ? cl->cfg.rf : 0, now_wcf = cl ? cl->cfg.write_consistency_factor : 0;
    uint32_t now_ef = cl ? cl->cfg.ef_search : 0;
    craft_map_release(c->raft, ref);
    /* map_epoch: a coordinator that forwarded the op waits for its copy of the map to have
     * it (read your writes: a GET /collections/{c} there echoes the change) */
    T(mpw_map(b, 5));
    T(K("map_epoch"));
    T(mpw_u64(b, res.epoch));
    T(K("collection"));
    T(K(cmd.u.coll_set.name));
    T(K("replication_factor"));
    T(mpw_u64(b, now_rf));
    T(K("write_consistency_factor"));
    T(mpw_u64(b, now_wcf));
    T(K("ef_search"));
    T(mpw_u64(b, now_ef));
out:
    return rc;
}

/* A router's write got no answer from a partition's primary: fail over if the leader cannot
 * reach it either. */
static int primary_failed(struct coord *c, const struct args *a, struct buf *b, char *errmsg)
{
    char coll[CMAP_NAME_MAX + 1];
    uint64_t part, term = 0;
    int rc;
    if ((rc = arg_str(a, "collection", coll, sizeof coll, true, errmsg)) != DV_OK)
        return rc;
    if ((rc = arg_u64(a, "partition", &part, errmsg)) != DV_OK || part > UINT32_MAX) {
        if (rc != DV_EINVAL)
            dv_errmsg_set(errmsg, "argument \"partition\": missing or too large");
        return DV_EINVAL;
    }
    if ((rc = arg_u64(a, "expect_term", &term, errmsg)) != DV_OK && rc != DV_ENOTFOUND)
        return rc;
    if ((rc = insync_failover(c, coll, (uint32_t)part, term, true, errmsg)) != DV_OK)
        return rc;
    const struct cmap_part *pt;
    struct cmap_ref *ref = craft_map(c->raft);
    pt = cmap_part_find(&ref->map, coll, (uint32_t)part);
    uint64_t now = pt ? pt->term : 0;
    craft_map_release(c->raft, ref);
    T(mpw_map(b, 3));
    T(K("collection"));
    T(K(coll));
    T(K("partition"));
    T(mpw_u64(b, part));
    T(K("term"));
    T(mpw_u64(b, now));
out:
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

int admin_run(struct coord *c, const struct msg *req, struct buf *status, char *errmsg)
{
    const struct msg_admin_req *q = &req->u.admin_req;
    struct args a = {q->args.p, q->args.len};
    if (a.p) {
        struct mpk r;
        uint32_t n;
        mpk_init(&r, a.p, a.n);
        if (mpk_map(&r, &n) != DV_OK) {
            dv_errmsg_set(errmsg, "admin arguments must be a map");
            return DV_EINVAL;
        }
    }
    char op[64];
    if (q->op.len == 0 || q->op.len >= sizeof op) {
        dv_errmsg_set(errmsg, "admin op must be 1 to %zu bytes", sizeof op - 1);
        return DV_EINVAL;
    }
    memcpy(op, q->op.p, q->op.len);
    op[q->op.len] = '\0';
    if (strcmp(op, "rebalance_plan") == 0)
        return rebalance_plan(c, false, status, errmsg);
    if (strcmp(op, "rebalance_apply") == 0)
        return rebalance_plan(c, true, status, errmsg);
    if (strcmp(op, "rebalance_status") == 0)
        return rebalance_status(c, status);
    if (strcmp(op, "rebalance_pause") == 0)
        return rebalance_set(c, &a, 'p', status, errmsg);
    if (strcmp(op, "rebalance_resume") == 0)
        return rebalance_set(c, &a, 'r', status, errmsg);
    if (strcmp(op, "rebalance_set") == 0)
        return rebalance_set(c, &a, 's', status, errmsg);
    if (strcmp(op, "node_add") == 0)
        return node_add(c, &a, status, errmsg);
    if (strcmp(op, "node_drain") == 0)
        return node_state(c, &a, CMAP_NODE_DRAINING, status, errmsg);
    if (strcmp(op, "node_undrain") == 0)
        return node_state(c, &a, CMAP_NODE_ALIVE, status, errmsg);
    if (strcmp(op, "node_remove") == 0)
        return node_remove(c, &a, status, errmsg);
    if (strcmp(op, "node_weight") == 0)
        return node_weight(c, &a, status, errmsg);
    if (strcmp(op, "coord_add") == 0 || strcmp(op, "coord_remove") == 0)
        return coord_member(c, &a, strcmp(op, "coord_add") == 0, status, errmsg);
    if (strcmp(op, "replica_state") == 0)
        return replica_state(c, &a, status, errmsg);
    if (strcmp(op, "primary_failed") == 0)
        return primary_failed(c, &a, status, errmsg);
    if (strcmp(op, "coll_set") == 0)
        return coll_set(c, &a, status, errmsg);
    if (strcmp(op, "alias_update") == 0)
        return admin_alias_update(c, a.p, a.n, status, errmsg);
    if (strcmp(op, "alias_list") == 0)
        return admin_alias_list(c, a.p, a.n, status, errmsg);
    if (strcmp(op, "index_record") == 0)
        return admin_index_record(c, a.p, a.n, status, errmsg);
    if (strcmp(op, "verify") == 0) {
        char coll[CMAP_NAME_MAX + 1];
        int rc = arg_str(&a, "collection", coll, sizeof coll, true, errmsg);
        return rc != DV_OK ? rc : verify_collection(c, coll, status, errmsg);
    }
    dv_errmsg_set(errmsg,
                  "unknown admin op \"%.63s\" (rebalance_plan, rebalance_apply, rebalance_status, "
                  "rebalance_pause, rebalance_resume, rebalance_set, node_add, node_drain, "
                  "node_undrain, node_remove, node_weight, coord_add, coord_remove, replica_state, "
                  "primary_failed, coll_set, alias_update, alias_list, index_record, verify)",
                  op);
    return DV_EINVAL;
}
