/* insync.c - who a write goes to, and taking failed secondaries out of the in-sync set. */
#include "insync.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "err.h"
#include "log.h"
#include "mpk.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

static int w_cstr(struct buf *b, const char *s)
{
    return mpw_str(b, s, strlen(s));
}

int insync_group(const struct cmap *m, const struct cmap_coll *cl, uint32_t p,
                 struct msg_peer *peers, uint32_t *n, char *errmsg)
{
    const struct cmap_part *pt = &cl->parts[p];
    uint32_t active = 0;
    char missing[160] = "";
    size_t len = 0;
    *n = 0;
    for (uint32_t j = 0; j < pt->n; j++) {
        const struct cmap_node *nd = cmap_node_get(m, pt->nodes[j]);
        if (pt->state[j] != CMAP_REPLICA_ACTIVE) {
            if (len < sizeof missing)
                len += (size_t)snprintf(missing + len, sizeof missing - len, "%s%s (%s)",
                                        len ? ", " : "", nd ? nd->id : "?",
                                        cmap_replica_state_name(pt->state[j]));
            continue;
        }
        active++;
        if (pt->nodes[j] == pt->primary || nd == NULL)
            continue;
        peers[(*n)++] = (struct msg_peer){S(nd->id), S(nd->url)};
    }
    uint32_t wcf = cl->cfg.write_consistency_factor ? cl->cfg.write_consistency_factor : 1;
    if (pt->primary == CMAP_NONE || active < wcf) {
        if (pt->n == 0)
            dv_errmsg_set(errmsg,
                          "partition %u unavailable: no replica left (its only node was removed; "
                          "docs/operations.md, 'Removing a dead node')",
                          p);
        else
            dv_errmsg_set(errmsg,
                          "partition %u unavailable for writes: %u in-sync replica%s, the "
                          "collection's write_consistency_factor is %u%s%s; retry when replicas "
                          "have caught up",
                          p, active, active == 1 ? "" : "s", wcf,
                          missing[0] ? "; not in sync: " : "", missing);
        return DV_EBUSY;
    }
    return DV_OK;
}

int insync_set_state(struct coord *c, const char *coll, uint32_t part, const char *node, int state,
                     uint64_t expect_term, uint64_t *epoch, char *errmsg)
{
    struct cmap_cmd cmd = {.type = CMAP_CMD_REPLICA_STATE, .req = coord_reqid(c)};
    snprintf(cmd.u.replica_state.coll, sizeof cmd.u.replica_state.coll, "%s", coll);
    cmd.u.replica_state.part = part;
    snprintf(cmd.u.replica_state.node, sizeof cmd.u.replica_state.node, "%s", node);
    cmd.u.replica_state.state = state;
    cmd.u.replica_state.expect_term = expect_term;
    struct cmap_result res;
    int rc = coord_apply(c, &cmd, &res, errmsg);
    if (rc != DV_OK)
        return rc;
    if (res.code != DV_OK) {
        dv_errmsg_set(errmsg, "%s", res.msg);
        return res.code;
    }
    *epoch = res.epoch;
    return DV_OK;
}

/* Runs admin op `op` with `args` on the leader: here when this coordinator leads, else
 * forwarded by coord_call. */
static int admin_call(struct coord *c, const char *op, const struct buf *args, char *errmsg)
{
    struct msg req = {.type = MSG_ADMIN};
    req.u.admin_req = (struct msg_admin_req){S(op), {args->data, (uint32_t)args->len}};
    struct msg_reply rep;
    struct rpcsrv_result res = {0};
    int rc = coord_call(c, &req, &rep, &res);
    if (rc == DV_OK && res.code != DV_OK)
        rc = res.code;
    if (rc == DV_OK && rep.m.err.code != 0) {
        rc = rep.m.err.code;
        dv_errmsg_set(errmsg, "%.*s", (int)rep.m.err.text.len, rep.m.err.text.p);
    } else if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "%s", res.errmsg);
    }
    msg_reply_free(&rep);
    return rc;
}

/* Sets one replica DEAD through the leader (admin op "replica_state"). */
static int set_dead(struct coord *c, const char *coll, uint32_t p, const char *node, uint64_t term,
                    char *errmsg)
{
    struct buf args = BUF_INIT;
    int e = mpw_map(&args, 5);
    e |= w_cstr(&args, "collection") | w_cstr(&args, coll);
    e |= w_cstr(&args, "partition") | mpw_u64(&args, p);
    e |= w_cstr(&args, "node") | w_cstr(&args, node);
    e |= w_cstr(&args, "state") | w_cstr(&args, "dead");
    e |= w_cstr(&args, "expect_term") | mpw_u64(&args, term);
    if (e != DV_OK) {
        buf_free(&args);
        return DV_ENOMEM;
    }
    int rc = admin_call(c, "replica_state", &args, errmsg);
    buf_free(&args);
    return rc;
}

int insync_settle(struct coord *c, const char *coll, uint32_t p, uint64_t term,
                  const struct msg_write_rep *w, char *errmsg)
{
    for (uint32_t i = 0; i < w->n_failed; i++) {
        char node[CMAP_ID_MAX + 1], err[DV_ERRMSG_SIZE];
        const struct msg_peer_fail *f = &w->failed[i];
        snprintf(node, sizeof node, "%.*s", (int)f->node_id.len, f->node_id.p);
        int rc = set_dead(c, coll, p, node, term, err);
        if (rc != DV_OK) {
            dv_errmsg_set(errmsg,
                          "written on the primary, but secondary %s (%.*s) could not be taken "
                          "out of the in-sync set: %s; the write is not acknowledged, retry it",
                          node, (int)f->text.len, f->text.p, err);
            return rc == DV_ESTALE ? DV_ESTALE : DV_EBUSY;
        }
        log_warn("secondary left the in-sync set: it missed a write",
                 "collection=%s partition=%u node=%s term=%" PRIu64 " error=%.*s", coll, p, node,
                 term, (int)f->text.len, f->text.p);
    }
    return DV_OK;
}

/* ---- failover ---------------------------------------------------------------------------- */

/* The applied LSN of the partition's replica on node `num`, asked within FAILOVER_PROBE_MS;
 * DV_OK when it answered. */
/* Whether node `num` failed a probe within INSYNC_DOWN_MEMO_MS. */
static bool down_lately(struct coord *c, uint32_t num)
{
    size_t k = num % (sizeof c->probe_down / sizeof c->probe_down[0]);
    uint64_t at = atomic_load(&c->probe_down[k].at_ms);
    return atomic_load(&c->probe_down[k].num) == num && at != 0 &&
           clock_mono_ms() - at < INSYNC_DOWN_MEMO_MS;
}

static void note_probe(struct coord *c, uint32_t num, int rc)
{
    size_t k = num % (sizeof c->probe_down / sizeof c->probe_down[0]);
    bool down = rc == DV_EIO || rc == DV_ETIMEDOUT || rc == DV_ESHUTDOWN;
    if (down) {
        atomic_store(&c->probe_down[k].at_ms, 0);
        atomic_store(&c->probe_down[k].num, num);
        atomic_store(&c->probe_down[k].at_ms, clock_mono_ms());
    } else if (atomic_load(&c->probe_down[k].num) == num) {
        atomic_store(&c->probe_down[k].at_ms, 0);
    }
}

static int probe(struct coord *c, const struct cmap *m, const struct cmap_coll *cl, uint32_t p,
                 uint32_t num, uint64_t *lsn, char *errmsg)
{
    const struct cmap_node *n = cmap_node_get(m, num);
    if (n == NULL || n->state == CMAP_NODE_REMOVED) {
        dv_errmsg_set(errmsg, "node %u is not in the cluster", num);
        return DV_ENOTFOUND;
    }
    struct tr_peer *r = coord_conn(c, n->url, NULL, errmsg);
    if (r == NULL)
        return DV_EIO;
    struct msg req = {.type = MSG_REPLICA_INFO};
    req.addr = (struct msg_addr){S(cl->name), p, cl->parts[p].epoch, 0};
    struct msg_reply rep;
    int rc = tr_call(r, &req, &rep, INSYNC_PROBE_MS, errmsg);
    if (rc == DV_OK)
        *lsn = rep.m.u.info_rep.applied_lsn;
    msg_reply_free(&rep);
    note_probe(c, num, rc);
    return rc;
}

static bool serving(const struct cmap *m, uint32_t num)
{
    const struct cmap_node *n = cmap_node_get(m, num);
    return n && (n->state == CMAP_NODE_ALIVE || n->state == CMAP_NODE_JOINING ||
                 n->state == CMAP_NODE_DRAINING);
}

int insync_failover(struct coord *c, const char *coll, uint32_t p, uint64_t term, bool check,
                    char *errmsg)
{
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    const struct cmap_coll *cl = cmap_coll_find(m, coll);
    int rc = DV_OK;
    if (cl == NULL || p >= cl->cfg.n_parts) {
        dv_errmsg_set(errmsg, "collection %s has no partition %u", coll, p);
        rc = DV_ENOTFOUND;
        goto out;
    }
    const struct cmap_part *pt = &cl->parts[p];
    if (term != 0 && pt->term != term)
        goto out; /* another primary took over already */
    uint64_t lsn;
    char err[DV_ERRMSG_SIZE];
    if (check && pt->primary != CMAP_NONE && !down_lately(c, pt->primary) &&
        probe(c, m, cl, p, pt->primary, &lsn, err) == DV_OK) {
        dv_errmsg_set(errmsg,
                      "partition %u: the leader reaches its primary (%s); no failover, retry", p,
                      cmap_node_get(m, pt->primary)->id);
        rc = DV_EBUSY;
        goto out;
    }
    /* The in-sync replica that went furthest: the others may lack records it has, never the
     * other way round (they all follow the same primary in LSN order). */
    uint32_t best = CMAP_NONE;
    uint64_t best_lsn = 0;
    for (uint32_t k = 0; k < pt->n; k++) {
        uint32_t num = pt->nodes[k];
        if (num == pt->primary || pt->state[k] != CMAP_REPLICA_ACTIVE || !serving(m, num) ||
            down_lately(c, num))
            continue;
        if (probe(c, m, cl, p, num, &lsn, err) != DV_OK)
            continue;
        if (best == CMAP_NONE || lsn > best_lsn)
            best = num, best_lsn = lsn;
    }
    if (best == CMAP_NONE) {
        dv_errmsg_set(errmsg,
                      "partition %u: its primary is down and no other in-sync replica answers; "
                      "writes wait for one (docs/operations.md, 'When a node dies')",
                      p);
        rc = DV_EBUSY;
        goto out;
    }
    const char *old = pt->primary != CMAP_NONE ? cmap_node_get(m, pt->primary)->id : "none";
    uint64_t old_term = pt->term;
    struct cmap_cmd cmd = {.type = CMAP_CMD_PART_PROMOTE, .req = coord_reqid(c)};
    snprintf(cmd.u.promote.coll, sizeof cmd.u.promote.coll, "%s", coll);
    cmd.u.promote.part = p;
    snprintf(cmd.u.promote.node, sizeof cmd.u.promote.node, "%s", cmap_node_get(m, best)->id);
    cmd.u.promote.expect_term = old_term;
    struct cmap_result res;
    rc = coord_apply(c, &cmd, &res, errmsg);
    if (rc == DV_OK && res.code != DV_OK && res.code != DV_ESTALE) {
        dv_errmsg_set(errmsg, "%s", res.msg);
        rc = res.code;
    }
    if (rc == DV_OK && res.code == DV_OK)
        log_warn("primary failed over",
                 "collection=%s partition=%u from=%s to=%s lsn=%" PRIu64 " term=%" PRIu64, coll, p,
                 old, cmd.u.promote.node, best_lsn, old_term + 1);
out:
    craft_map_release(c->raft, ref);
    return rc;
}

int insync_primary_failed(struct coord *c, const char *coll, uint32_t p, uint64_t term,
                          char *errmsg)
{
    struct buf args = BUF_INIT;
    int e = mpw_map(&args, 3);
    e |= w_cstr(&args, "collection") | w_cstr(&args, coll);
    e |= w_cstr(&args, "partition") | mpw_u64(&args, p);
    e |= w_cstr(&args, "expect_term") | mpw_u64(&args, term);
    if (e != DV_OK) {
        buf_free(&args);
        return DV_ENOMEM;
    }
    int rc = admin_call(c, "primary_failed", &args, errmsg);
    buf_free(&args);
    return rc;
}
