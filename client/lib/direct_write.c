/* direct_write.c - one hop for writes: an upsert, delete or set-payload split by partition
 * (pid_partition, as a coordinator splits it) and sent by libdvec straight to each partition's
 * primary, naming the in-sync secondaries of its route; acknowledged only when every primary
 * wrote and replicated to every secondary. Anything else goes back to the caller, which sends
 * the same request to a coordinator: writes are idempotent, and the coordinator does the
 * in-sync bookkeeping (a secondary that failed), the retries of a moving partition and the
 * error messages.
 *
 * Why a stale route cannot lose a write: the route names a partition's epoch, and a replica
 * entering the write group (a recovery's end, a move's switch) is committed while the primary
 * is fenced, then the primary is unfenced with the new epoch (coordinator/server/recover.c,
 * mover.c). A write of an older epoch is refused from then on (DV_ESTALE: the route is fetched
 * again), and a primary keeps the group of the newest epoch it has seen (shard/server/repl.c).
 * A secondary that left the group may still get the write: harmless. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* One partition's share of the request. */
struct wpart {
    uint32_t n;
    struct pid *ids;
    float *vecs;
    struct msg_bytes *payloads;
    struct msg_peer *group;
};

/* The ids of a write request, NULL for any other type. */
static const struct pid *write_ids(const struct msg *req, uint32_t *n)
{
    switch (req->type) {
    case MSG_P_UPSERT:
        *n = req->u.upsert_req.n;
        return req->u.upsert_req.ids;
    case MSG_P_DELETE:
        *n = req->u.delete_req.n;
        return req->u.delete_req.ids;
    case MSG_P_SET_PAYLOAD:
        *n = req->u.set_payload_req.n;
        return req->u.set_payload_req.ids;
    default:
        *n = 0;
        return NULL;
    }
}

/* What a coordinator refuses with a message of its own (wrong dimension, NaN): not sent here. */
static bool plain_write(const struct msg *req, const struct msg_route_rep *t)
{
    if (req->type != MSG_P_UPSERT)
        return true;
    const struct msg_upsert_req *u = &req->u.upsert_req;
    /* named vectors are split and checked by a coordinator (router_check_vectors) */
    if (u->named != NULL || t->cfg.n_spaces > 0 || u->dim != t->cfg.dim)
        return false;
    for (size_t i = 0; i < (size_t)u->n * u->dim; i++)
        if (!isfinite(u->vecs[i]))
            return false;
    return true;
}

/* Fills the partition's sub-request from its members. False when out of memory. */
static bool fill(const struct msg *req, const struct msg_route_rep *t, uint32_t p,
                 const uint32_t *members, struct wpart *w, struct msg *sub)
{
    const struct msg_route_part *rp = &t->parts[p];
    uint32_t cnt = w->n;
    const struct pid *ids = write_ids(req, &(uint32_t){0});
    w->ids = malloc(cnt * sizeof *w->ids);
    w->group = calloc(rp->n_secondaries ? rp->n_secondaries : 1, sizeof *w->group);
    if (w->ids == NULL || w->group == NULL)
        return false;
    for (uint32_t j = 0; j < cnt; j++)
        w->ids[j] = ids[members[j]];
    for (uint32_t j = 0; j < rp->n_secondaries; j++)
        w->group[j] = t->nodes[rp->secondaries[j]];
    /* an alias's route names the collection the nodes know */
    *sub = (struct msg){.addr = {t->coll.len ? t->coll : req->addr.coll, p, rp->epoch, rp->term}};
    sub->secondaries = w->group;
    sub->n_secondaries = rp->n_secondaries;
    switch (req->type) {
    case MSG_P_UPSERT: {
        const struct msg_upsert_req *u = &req->u.upsert_req;
        w->vecs = malloc(((size_t)cnt * u->dim + 1) * sizeof *w->vecs);
        w->payloads = u->payloads ? calloc(cnt, sizeof *w->payloads) : NULL;
        if (w->vecs == NULL || (u->payloads && w->payloads == NULL))
            return false;
        for (uint32_t j = 0; j < cnt; j++) {
            memcpy(w->vecs + (size_t)j * u->dim, u->vecs + (size_t)members[j] * u->dim,
                   u->dim * sizeof(float));
            if (u->payloads)
                w->payloads[j] = u->payloads[members[j]];
        }
        sub->type = MSG_UPSERT;
        sub->u.upsert_req =
            (struct msg_upsert_req){w->ids, w->vecs, w->payloads, cnt, u->dim, NULL};
        break;
    }
    case MSG_P_DELETE:
        sub->type = MSG_DELETE;
        sub->u.delete_req = (struct msg_ids_req){w->ids, cnt};
        break;
    default:
        sub->type = MSG_SET_PAYLOAD;
        sub->u.set_payload_req = req->u.set_payload_req;
        sub->u.set_payload_req.ids = w->ids;
        sub->u.set_payload_req.n = cnt;
    }
    return true;
}

/* Errors that say the route is out of date (direct.c's list, for writes). */
static bool route_error(int code)
{
    return code == DV_EIO || code == DV_ETIMEDOUT || code == DV_ESHUTDOWN || code == DV_ESTALE ||
           code == DV_ENOTFOUND;
}

bool cl_direct_write(dvec_client *c, const char *coll, const struct msg *req, uint32_t timeout_ms,
                     struct msg_reply *rep)
{
    memset(rep, 0, sizeof *rep);
    uint32_t n;
    const struct pid *ids = write_ids(req, &n);
    if (ids == NULL || n == 0 || atomic_load(&c->read_consistency) != 0)
        return false;
    struct cl_route *r = cl_route_get(c, coll);
    if (r == NULL)
        return false;
    const struct msg_route_rep *t = &r->rep.m.u.route_rep;
    uint32_t np = t->n_parts;
    uint32_t *part_of = malloc(n * sizeof *part_of), *count = calloc(np, sizeof *count);
    uint32_t *order = malloc(n * sizeof *order), *first = calloc(np + 1, sizeof *first);
    struct wpart *w = calloc(np, sizeof *w);
    struct msg *subs = calloc(np, sizeof *subs);
    struct rpc_job *jobs = calloc(np, sizeof *jobs);
    bool ok =
        np > 0 && part_of && count && order && first && w && subs && jobs && plain_write(req, t);
    for (uint32_t i = 0; ok && i < n; i++)
        count[part_of[i] = pid_partition(&ids[i], np)]++;
    for (uint32_t p = 0; ok && p < np; p++) {
        first[p + 1] = first[p] + count[p];
        /* no primary, or fewer in-sync replicas than the collection asks for */
        if (count[p] && (!t->parts[p].writable || t->parts[p].primary == UINT32_MAX))
            ok = false;
    }
    if (ok) { /* the members of each partition, in request order */
        uint32_t *at = calloc(np, sizeof *at);
        ok = at != NULL;
        for (uint32_t i = 0; ok && i < n; i++)
            order[first[part_of[i]] + at[part_of[i]]++] = i;
        free(at);
    }
    size_t nj = 0;
    for (uint32_t p = 0; ok && p < np; p++) {
        if (count[p] == 0)
            continue;
        w[p].n = count[p];
        if (!(ok = fill(req, t, p, order + first[p], &w[p], &subs[nj])))
            break;
        jobs[nj] = (struct rpc_job){
            .r = r->conns[t->parts[p].primary], .req = &subs[nj], .timeout_ms = timeout_ms};
        nj++;
    }
    uint64_t affected = 0;
    if (ok) {
        rpc_call_many(jobs, nj);
        bool stale = false;
        for (size_t i = 0; i < nj; i++) {
            if (jobs[i].rc != DV_OK) {
                ok = false;
                stale |= route_error(jobs[i].rc);
            } else if (jobs[i].rep.m.u.write_rep.n_failed > 0) {
                ok = false; /* a coordinator takes the secondary out of the in-sync set */
            } else {
                affected += jobs[i].rep.m.u.write_rep.affected;
            }
            msg_reply_free(&jobs[i].rep);
        }
        if (stale)
            cl_route_stale(c, r);
    }
    cl_route_put(c, r);
    for (uint32_t p = 0; w && p < np; p++) {
        free(w[p].ids);
        free(w[p].vecs);
        free(w[p].payloads);
        free(w[p].group);
    }
    free(w);
    free(subs);
    free(jobs);
    free(part_of);
    free(count);
    free(order);
    free(first);
    if (!ok)
        return false;
    rep->m.type = req->type;
    rep->m.reply = true;
    rep->m.u.write_rep = (struct msg_write_rep){0, affected, NULL, 0};
    return true;
}
