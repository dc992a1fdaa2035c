/* insync.c - who a write goes to, and taking failed secondaries out of the in-sync set. */
#include "insync.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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

/* Sets one replica DEAD through the leader: here when this coordinator leads, else as the
 * admin op "replica_state" forwarded by coord_call. */
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
    struct msg req = {.type = MSG_ADMIN};
    req.u.admin_req = (struct msg_admin_req){S("replica_state"), {args.data, (uint32_t)args.len}};
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
