/* node_call.c - the leader's calls to nodes about one partition's replica (node_call.h). */
#include "node_call.h"

#include <string.h>

#include "coord.h"
#include "coord_coll.h"
#include "err.h"

const char *ncall_node_id(const struct cmap *m, uint32_t num)
{
    const struct cmap_node *n = cmap_node_get(m, num);
    return n ? n->id : "?";
}

bool ncall_node_up(const struct cmap *m, uint32_t num)
{
    const struct cmap_node *n = cmap_node_get(m, num);
    return n && (n->state == CMAP_NODE_ALIVE || n->state == CMAP_NODE_JOINING ||
                 n->state == CMAP_NODE_DRAINING);
}

bool ncall_node_gone(const struct cmap *m, uint32_t num)
{
    const struct cmap_node *n = cmap_node_get(m, num);
    return n == NULL || n->state == CMAP_NODE_DEAD || n->state == CMAP_NODE_REMOVED;
}

struct msg ncall_addressed(int type, const char *coll, uint32_t part, uint64_t epoch)
{
    struct msg req = {.type = type};
    req.addr.coll = (struct msg_str){coll, (uint32_t)strlen(coll)};
    req.addr.part = part;
    req.addr.epoch = epoch;
    return req;
}

int ncall(struct coord *c, const struct cmap *m, uint32_t num, const struct msg *req,
          struct msg_reply *rep, uint32_t timeout_ms, char *err)
{
    memset(rep, 0, sizeof *rep);
    const struct cmap_node *n = cmap_node_get(m, num);
    if (n == NULL) {
        dv_errmsg_set(err, "node %u unknown", num);
        return DV_EINVAL;
    }
    struct tr_peer *r = coord_conn(c, n->url, NULL, err);
    if (r == NULL)
        return DV_EIO;
    int rc = tr_call(r, req, rep, timeout_ms, err);
    if (rc != DV_OK)
        dv_errmsg_prefix(err, "node %s", n->id);
    return rc;
}

int ncall_pull(struct coord *c, const struct cmap *m, const char *coll, uint32_t part, uint32_t to,
               uint32_t from, uint32_t op, uint64_t until, struct msg_pull_rep *out,
               uint32_t timeout_ms, char *err)
{
    const struct cmap_coll *cl = cmap_coll_find(m, coll);
    const struct cmap_node *src = cmap_node_get(m, from);
    if (cl == NULL || part >= cl->cfg.n_parts || src == NULL) {
        dv_errmsg_set(err, "collection %s partition %u or node %u is gone", coll, part, from);
        return DV_ENOTFOUND;
    }
    struct msg req = ncall_addressed(MSG_REPLICA_PULL, coll, part, cl->parts[part].epoch);
    req.addr.term = cl->parts[part].term; /* the copy holds this term's history */
    req.u.pull_req.op = op;
    req.u.pull_req.source = (struct msg_str){src->url, (uint32_t)strlen(src->url)};
    req.u.pull_req.rate = m->settings.rate;
    req.u.pull_req.until_lsn = until;
    req.u.pull_req.create = coord_coll_create_req(cl);
    struct msg_reply rep;
    int rc = ncall(c, m, to, &req, &rep, timeout_ms, err);
    if (rc == DV_OK && out) {
        *out = rep.m.u.pull_rep;
        out->error = (struct msg_str){NULL, 0};
        if (rep.m.u.pull_rep.state == MSG_PULL_FAILED)
            dv_errmsg_set(err, "%.*s", (int)rep.m.u.pull_rep.error.len,
                          rep.m.u.pull_rep.error.p ? rep.m.u.pull_rep.error.p : "");
    }
    msg_reply_free(&rep);
    return rc;
}

int ncall_fence(struct coord *c, const struct cmap *m, const char *coll, uint32_t part,
                uint32_t num, uint32_t op, uint64_t epoch, uint64_t *lsn, char *err)
{
    struct msg req = ncall_addressed(MSG_REPLICA_FENCE, coll, part, epoch);
    req.u.fence_req.op = op;
    struct msg_reply rep;
    int rc = ncall(c, m, num, &req, &rep, c->o.request_timeout_ms, err);
    if (rc == DV_OK && lsn)
        *lsn = rep.m.u.write_rep.lsn;
    msg_reply_free(&rep);
    return rc;
}
