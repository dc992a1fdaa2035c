/* router.c - data requests: split by partition, sent to the nodes in parallel, answers merged.
 * Routing reads the coordinator's local copy of the map; a node's "stale map" answer makes
 * the router take the newest copy and try once more. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "err.h"
#include "insync.h"
#include "log.h"
#include "place.h"
#include "resolve.h"

#include "router_int.h"

void *router_tmp_alloc(struct coord_tmp *t, size_t size)
{
    if (t->n_blocks == sizeof t->blocks / sizeof t->blocks[0])
        return NULL;
    void *p = calloc(1, size ? size : 1);
    if (p)
        t->blocks[t->n_blocks++] = p;
    return p;
}

void router_tmp_free(struct coord_tmp *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_calls; i++) {
        msg_reply_free(&t->calls[i].rep);
        comb_share_release(&t->calls[i].share);
    }
    free(t->calls);
    for (size_t i = 0; i < t->n_blocks; i++)
        free(t->blocks[i]);
    for (size_t i = 0; i < PROTO_MAX_RF; i++)
        router_tmp_free(t->subs[i]);
    free(t);
}

static void call_one(void *arg, size_t i)
{
    struct call *c = &((struct call *)arg)[i];
    if (c->r == NULL)
        return; /* failed before sending: rc and err are set */
    if (c->req.type == MSG_SEARCH && c->comb) {
        c->rc = combiner_search(c->comb, &c->req, c->timeout_ms, &c->share, c->err);
        c->rep.m.u.search_rep = c->share.rep; /* a view: the share owns the memory */
        return;
    }
    c->rc = tr_call(c->r, &c->req, &c->rep, c->timeout_ms, c->err);
}

void router_run_calls(struct coord *c, struct call *calls, size_t n)
{
    if (n == 1)
        call_one(calls, 0);
    else if (n > 1)
        rpcsrv_parallel(c->srv, n, call_one, calls);
    for (size_t i = 0; i < n; i++)
        if (calls[i].r) /* sent: the node's answer, or its silence */
            router_note(c, calls[i].node, calls[i].rc);
}

/* The first failed call as the request's error, naming partition and node. */
static int first_error(struct call *calls, size_t n, char *errmsg)
{
    for (size_t i = 0; i < n; i++)
        if (calls[i].rc != DV_OK) {
            if (calls[i].node == CMAP_NONE)
                dv_errmsg_set(errmsg, "partition %u: %s", calls[i].part, calls[i].err);
            else
                dv_errmsg_set(errmsg, "partition %u on node %s: %s", calls[i].part,
                              calls[i].node_id ? calls[i].node_id : "?", calls[i].err);
            return calls[i].rc;
        }
    return DV_OK;
}

static bool any_code(struct call *calls, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (calls[i].rc == code)
            return true;
    return false;
}

/* Points a call at node `num` of the map (the connection, or an error without sending). */
void router_aim(struct coord *c, const struct cmap *m, uint32_t num, struct call *k)
{
    const struct cmap_node *n = cmap_node_get(m, num);
    k->node = num;
    k->node_id = n ? n->id : NULL;
    if (num == CMAP_NONE) {
        k->rc = DV_EIO;
        dv_errmsg_set(k->err, "unavailable: no replica left (its only node was removed; "
                              "docs/operations.md, 'Removing a dead node')");
        return;
    }
    if (n == NULL || n->state == CMAP_NODE_DEAD || n->state == CMAP_NODE_REMOVED) {
        k->rc = DV_EIO;
        dv_errmsg_set(k->err, "node is %s", n ? cmap_node_state_name(n->state) : "unknown");
        return;
    }
    k->r = coord_conn(c, n->url, &k->comb, k->err);
    if (k->r == NULL)
        k->rc = DV_EIO;
}

/* A node serving reads: ALIVE, or JOINING / DRAINING (they still hold their replicas). */
bool router_serves(const struct cmap *m, uint32_t num)
{
    const struct cmap_node *n = cmap_node_get(m, num);
    return n && (n->state == CMAP_NODE_ALIVE || n->state == CMAP_NODE_JOINING ||
                 n->state == CMAP_NODE_DRAINING);
}

/*
 * The node to read partition pt from: one of its in-sync replicas on a serving node, taken in
 * turn (`turn` differs from request to request), so that every replica takes reads: rf 3
 * triples what a partition answers. Every in-sync replica has every acknowledged write. When
 * none serves, the primary (the error names it). `avoid` (UINT32_MAX: none) just failed:
 * another in-sync replica then, any that is not dead or removed; UINT32_MAX when there is none.
 */
void router_note(struct coord *c, uint32_t num, int rc)
{
    if (num == CMAP_NONE)
        return;
    size_t slot = num % (sizeof c->silent / sizeof c->silent[0]);
    if (rc == DV_ETIMEDOUT || rc == DV_EIO || rc == DV_ESHUTDOWN) {
        atomic_store(&c->silent[slot].num, num);
        atomic_store(&c->silent[slot].until_ms, clock_mono_ms() + ROUTER_SILENT_MS);
    } else if (rc == DV_OK &&
               atomic_load_explicit(&c->silent[slot].until_ms, memory_order_relaxed) != 0 &&
               atomic_load(&c->silent[slot].num) == num) {
        atomic_store(&c->silent[slot].until_ms, 0);
    }
}

bool router_silent(struct coord *c, uint32_t num)
{
    size_t slot = num % (sizeof c->silent / sizeof c->silent[0]);
    uint64_t until = atomic_load_explicit(&c->silent[slot].until_ms, memory_order_relaxed);
    return until != 0 && atomic_load(&c->silent[slot].num) == num && clock_mono_ms() < until;
}

uint32_t router_read_node(struct coord *c, const struct cmap *m, const struct cmap_part *pt,
                          uint32_t avoid, uint64_t turn)
{
    /* Only in-sync replicas: one out of the in-sync set may miss acknowledged writes. */
    uint32_t ok[CMAP_MAX_REPLICAS], n_ok = 0, live[CMAP_MAX_REPLICAS], n_live = 0;
    for (uint32_t j = 0; j < pt->n; j++)
        if (pt->nodes[j] != avoid && pt->state[j] == CMAP_REPLICA_ACTIVE &&
            router_serves(m, pt->nodes[j])) {
            ok[n_ok++] = pt->nodes[j];
            if (!router_silent(c, pt->nodes[j]))
                live[n_live++] = pt->nodes[j];
        }
    if (n_live > 0)
        return live[turn % n_live];
    if (n_ok > 0)
        return ok[turn % n_ok];
    if (avoid == UINT32_MAX)
        return pt->primary; /* none looks alive: try the primary, the error names it */
    for (uint32_t j = 0; j < pt->n; j++) {
        const struct cmap_node *n = cmap_node_get(m, pt->nodes[j]);
        if (pt->nodes[j] != avoid && pt->state[j] == CMAP_REPLICA_ACTIVE && n &&
            n->state != CMAP_NODE_DEAD && n->state != CMAP_NODE_REMOVED)
            return pt->nodes[j];
    }
    return UINT32_MAX;
}

/*
 * Reads whose node did not answer (no connection, timeout, shutting down) are sent once more,
 * each to another in-sync replica of its partition when there is one. calls[] are reads of
 * one partition each; `turn` is read_node's.
 */
static void reread_failed(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                          struct call *calls, size_t n, uint64_t turn)
{
    size_t *idx = calloc(n ? n : 1, sizeof *idx);
    struct call *again = calloc(n ? n : 1, sizeof *again);
    size_t k = 0;
    for (size_t i = 0; idx && again && i < n; i++) {
        struct call *q = &calls[i];
        if (q->rc != DV_EIO && q->rc != DV_ETIMEDOUT && q->rc != DV_ESHUTDOWN)
            continue;
        uint32_t other = router_read_node(c, m, &cl->parts[q->part], q->node, turn + q->part);
        if (other == UINT32_MAX || other == q->node)
            continue;
        struct call *a = &again[k];
        a->req = q->req;
        a->part = q->part;
        router_aim(c, m, other, a);
        idx[k++] = i;
    }
    if (k > 0) {
        log_info("read: asking other replicas", "collection=%s partitions=%zu", cl->name, k);
        router_run_calls(c, again, k);
        for (size_t j = 0; j < k; j++) {
            struct call *q = &calls[idx[j]];
            msg_reply_free(&q->rep);
            comb_share_release(&q->share);
            *q = again[j];
        }
    }
    free(idx);
    free(again);
}

/* ---- writes and gets by id --------------------------------------------------------------- */

struct split {
    uint32_t *part_of;  /* [n] partition of each point */
    uint32_t *count;    /* [P] points per partition */
    uint32_t **members; /* [P] indexes of the points of each partition */
};

static void split_free(struct split *s, uint32_t np)
{
    if (s->members)
        for (uint32_t p = 0; p < np; p++)
            free(s->members[p]);
    free(s->members);
    free(s->count);
    free(s->part_of);
}

static int split_ids(const struct pid *ids, uint32_t n, uint32_t np, struct split *s)
{
    s->part_of = calloc(n ? n : 1, sizeof *s->part_of);
    s->count = calloc(np, sizeof *s->count);
    s->members = calloc(np, sizeof *s->members);
    if (!s->part_of || !s->count || !s->members)
        return DV_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        s->part_of[i] = place_partition_of(&ids[i], np);
        s->count[s->part_of[i]]++;
    }
    for (uint32_t p = 0; p < np; p++)
        if (s->count[p] && !(s->members[p] = malloc(s->count[p] * sizeof **s->members)))
            return DV_ENOMEM;
    uint32_t *fill = calloc(np, sizeof *fill);
    if (fill == NULL)
        return DV_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        s->members[s->part_of[i]][fill[s->part_of[i]]++] = i;
    free(fill);
    return DV_OK;
}

/* A write got no answer from the partition's primary: ask the leader to fail over. When the
 * partition has a new primary the call counts as "stale map" (the router retries with the
 * new map); otherwise its error stays, with the failover's reason appended. */
static void primary_down(struct coord *c, const struct cmap_coll *cl, struct call *q)
{
    char err[DV_ERRMSG_SIZE];
    const struct cmap_part *pt = &cl->parts[q->part];
    if (pt->primary == CMAP_NONE)
        return;
    if (insync_primary_failed(c, cl->name, q->part, pt->term, err) == DV_OK) {
        q->rc = DV_ESTALE;
        dv_errmsg_prefix(q->err, "primary failed over");
    } else {
        size_t len = strlen(q->err);
        snprintf(q->err + len, sizeof q->err - len, " (failover: %s)", err);
    }
}

/* Per-partition copies of the request's arrays (ids, vectors, payloads). */
struct part_batch {
    struct pid *ids;
    float *vecs;
    struct msg_bytes *payloads;
    struct msg_nvecs *named;
};

/* `turn`: read_node's, for a get. */
int router_check_vectors(const struct cmap_coll *cl, const struct msg_upsert_req *u, char *errmsg)
{
    if (u->n == 0)
        return DV_OK;
    if (u->named == NULL) {
        if (cl->cfg.n_spaces > 0) {
            dv_errmsg_set(errmsg, "collection %s has named vectors only: name each vector",
                          cl->name);
            return DV_EINVAL;
        }
        if (u->dim != cl->cfg.dim) {
            dv_errmsg_set(errmsg,
                          "wrong dimension: the vectors have %u dimensions, collection %s has %u",
                          u->dim, cl->name, cl->cfg.dim);
            return DV_EDIM;
        }
        return DV_OK;
    }
    /* Named vectors: names and lengths are checked by the nodes (shard/server/handle_vec.c);
     * a collection without named vectors takes only the unnamed one, named "". */
    for (uint32_t i = 0; i < u->n; i++) {
        for (uint32_t j = 0; j < u->named[i].n; j++) {
            const struct msg_nvec *v = &u->named[i].v[j];
            bool known = false;
            for (uint32_t k = 0; k < cl->cfg.n_spaces && !known; k++)
                known = strlen(cl->cfg.spaces[k].name) == v->name.len &&
                        memcmp(cl->cfg.spaces[k].name, v->name.p, v->name.len) == 0;
            if (cl->cfg.n_spaces == 0)
                known = v->name.len == 0;
            if (!known) {
                dv_errmsg_set(errmsg, "point %u: collection %s has no vector named \"%.*s\"", i,
                              cl->name, (int)v->name.len, v->name.p ? v->name.p : "");
                return DV_EINVAL;
            }
        }
    }
    return DV_OK;
}

int router_by_ids(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                  const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                  char *errmsg)
{
    const struct pid *ids;
    uint32_t n;
    int rc;
    switch (req->type) {
    case MSG_P_UPSERT:
    case MSG_P_UPDATE_VECTORS:
        ids = req->u.upsert_req.ids, n = req->u.upsert_req.n;
        break;
    case MSG_P_DELETE:
        ids = req->u.delete_req.ids, n = req->u.delete_req.n;
        break;
    case MSG_P_DELETE_VECTORS:
        ids = req->u.delvec_req.ids, n = req->u.delvec_req.n;
        break;
    case MSG_P_GET:
        ids = req->u.get_req.ids, n = req->u.get_req.n;
        break;
    default:
        ids = req->u.set_payload_req.ids, n = req->u.set_payload_req.n;
    }
    if (n > c->o.max_batch) {
        dv_errmsg_set(errmsg, "batch of %u points exceeds the maximum of %u", n, c->o.max_batch);
        return DV_ETOOBIG;
    }
    bool vectors = req->type == MSG_P_UPSERT || req->type == MSG_P_UPDATE_VECTORS;
    if (vectors && (rc = router_check_vectors(cl, &req->u.upsert_req, errmsg)) != DV_OK)
        return rc;
    uint32_t np = cl->cfg.n_parts;
    bool writing = req->type != MSG_P_GET;
    struct split s = {0};
    rc = split_ids(ids, n, np, &s);
    struct part_batch *pb = calloc(np, sizeof *pb);
    size_t ncalls = 0;
    for (uint32_t p = 0; p < np; p++)
        ncalls += s.count[p] != 0; /* reads and writes: one call per partition */
    struct call *calls = calloc(ncalls ? ncalls : 1, sizeof *calls);
    /* Writes go to the primary, naming the in-sync secondaries it replicates to. */
    struct msg_peer *groups =
        writing ? router_tmp_alloc(t, (size_t)np * CMAP_MAX_REPLICAS * sizeof *groups) : NULL;
    if (rc != DV_OK || pb == NULL || calls == NULL || (writing && groups == NULL)) {
        rc = DV_ENOMEM;
        goto out;
    }
    uint32_t *n_group = writing ? router_tmp_alloc(t, np * sizeof *n_group) : NULL;
    if (writing && n_group == NULL) {
        rc = DV_ENOMEM;
        goto out;
    }
    for (uint32_t p = 0; writing && p < np; p++)
        if (s.count[p] && (rc = insync_group(m, cl, p, groups + (size_t)p * CMAP_MAX_REPLICAS,
                                             &n_group[p], errmsg)) != DV_OK) {
            dv_errmsg_prefix(errmsg, "collection %s", cl->name);
            goto out;
        }
    size_t k = 0;
    for (uint32_t p = 0; p < np; p++) {
        uint32_t cnt = s.count[p];
        if (cnt == 0)
            continue;
        const struct cmap_part *pt = &cl->parts[p];
        pb[p].ids = malloc(cnt * sizeof *pb[p].ids);
        if (pb[p].ids == NULL) {
            rc = DV_ENOMEM;
            goto out;
        }
        for (uint32_t j = 0; j < cnt; j++)
            pb[p].ids[j] = ids[s.members[p][j]];
        struct msg sub = {.addr = {S(cl->name), p, pt->epoch, 0}};
        switch (req->type) {
        case MSG_P_UPSERT:
        case MSG_P_UPDATE_VECTORS: {
            const struct msg_upsert_req *u = &req->u.upsert_req;
            pb[p].vecs = malloc(((size_t)cnt * u->dim + 1) * sizeof(float));
            pb[p].payloads = calloc(cnt, sizeof *pb[p].payloads);
            pb[p].named = u->named ? calloc(cnt, sizeof *pb[p].named) : NULL;
            if (pb[p].vecs == NULL || pb[p].payloads == NULL || (u->named && !pb[p].named)) {
                rc = DV_ENOMEM;
                goto out;
            }
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t i = s.members[p][j];
                if (u->dim > 0)
                    memcpy(pb[p].vecs + (size_t)j * u->dim, u->vecs + (size_t)i * u->dim,
                           u->dim * sizeof(float));
                if (u->payloads != NULL)
                    pb[p].payloads[j] = u->payloads[i];
                if (u->named != NULL)
                    pb[p].named[j] = u->named[i]; /* points into the request */
            }
            sub.type = req->type == MSG_P_UPSERT ? MSG_UPSERT : MSG_UPDATE_VECTORS;
            sub.u.upsert_req = (struct msg_upsert_req){pb[p].ids, pb[p].vecs, pb[p].payloads,
                                                       cnt,       u->dim,     pb[p].named};
            break;
        }
        case MSG_P_DELETE:
            sub.type = MSG_DELETE;
            sub.u.delete_req = (struct msg_ids_req){pb[p].ids, cnt};
            break;
        case MSG_P_DELETE_VECTORS:
            sub.type = MSG_DELETE_VECTORS;
            sub.u.delvec_req = req->u.delvec_req;
            sub.u.delvec_req.ids = pb[p].ids;
            sub.u.delvec_req.n = cnt;
            break;
        case MSG_P_GET:
            sub.type = MSG_GET;
            sub.u.get_req = (struct msg_get_req){pb[p].ids, cnt, req->u.get_req.with_vector,
                                                 req->u.get_req.with_payload};
            break;
        default:
            sub.type = MSG_SET_PAYLOAD;
            sub.u.set_payload_req = req->u.set_payload_req;
            sub.u.set_payload_req.ids = pb[p].ids;
            sub.u.set_payload_req.n = cnt;
        }
        /* Writes go to the primary; reads to the primary too (another replica when the map
         * says the primary is down). */
        if (writing) {
            sub.addr.term = pt->term;
            sub.secondaries = groups + (size_t)p * CMAP_MAX_REPLICAS;
            sub.n_secondaries = n_group[p];
        }
        calls[k].req = sub;
        calls[k].part = p;
        router_aim(c, m, writing ? pt->primary : router_read_node(c, m, pt, UINT32_MAX, turn + p),
                   &calls[k]);
        k++;
    }
    router_run_calls(c, calls, ncalls);
    if (!writing)
        reread_failed(c, m, cl, calls, ncalls, turn);
    t->calls = calls;
    t->n_calls = ncalls;
    calls = NULL;
    for (size_t i = 0; writing && i < t->n_calls; i++) {
        struct call *q = &t->calls[i];
        if (q->rc == DV_OK && q->rep.m.u.write_rep.n_failed > 0)
            q->rc = insync_settle(c, cl->name, q->part, cl->parts[q->part].term,
                                  &q->rep.m.u.write_rep, q->err);
        else if (q->rc == DV_EIO || q->rc == DV_ETIMEDOUT)
            primary_down(c, cl, q);
    }
    if ((rc = first_error(t->calls, t->n_calls, errmsg)) != DV_OK)
        goto out;

    if (req->type == MSG_P_GET) {
        /* Each node answers in its request's order, leaving out ids it does not have: walk
         * the request once, taking from each partition's answer in turn. */
        struct msg_hit *hits = router_tmp_alloc(t, (size_t)n * sizeof *hits);
        uint32_t *next = router_tmp_alloc(t, np * sizeof *next);
        struct msg_hits **perpart = router_tmp_alloc(t, np * sizeof *perpart);
        if (!hits || !next || !perpart) {
            rc = DV_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < t->n_calls; i++)
            perpart[t->calls[i].part] = &t->calls[i].rep.m.u.get_rep;
        uint32_t got = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t p = s.part_of[i];
            struct msg_hits *h = perpart[p];
            if (h && next[p] < h->n && pid_cmp(&h->hits[next[p]].id, &ids[i]) == 0)
                hits[got++] = h->hits[next[p]++];
        }
        rep->u.get_rep = (struct msg_hits){hits, got};
    } else {
        uint64_t affected = 0;
        for (size_t i = 0; i < t->n_calls; i++)
            affected += t->calls[i].rep.m.u.write_rep.affected;
        rep->u.write_rep = (struct msg_write_rep){0, affected, NULL, 0};
    }
out:
    if (pb)
        for (uint32_t p = 0; p < np; p++) {
            free(pb[p].ids);
            free(pb[p].vecs);
            free(pb[p].payloads);
            free(pb[p].named);
        }
    free(pb);
    free(calls);
    split_free(&s, np);
    return rc;
}

/* ---- fan-out reads ----------------------------------------------------------------------- */

/* One call per partition to one of its in-sync replicas (read_node with `turn`), of the same
 * request `sub` (addr filled here). */
int router_fan_out(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                   const struct msg *sub, struct coord_tmp *t, uint64_t turn, char *errmsg)
{
    uint32_t np = cl->cfg.n_parts;
    struct call *calls = calloc(np, sizeof *calls);
    if (calls == NULL)
        return DV_ENOMEM;
    for (uint32_t p = 0; p < np; p++) {
        calls[p].req = *sub;
        calls[p].req.addr = (struct msg_addr){S(cl->name), p, cl->parts[p].epoch, 0};
        calls[p].part = p;
        router_aim(c, m, router_read_node(c, m, &cl->parts[p], UINT32_MAX, turn + p), &calls[p]);
    }
    router_run_calls(c, calls, np);
    reread_failed(c, m, cl, calls, np, turn);
    t->calls = calls;
    t->n_calls = np;
    return first_error(calls, np, errmsg);
}

int router_count(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                 const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                 char *errmsg)
{
    struct msg sub = {.type = MSG_COUNT, .u.count_req = req->u.count_req};
    int rc = router_fan_out(c, m, cl, &sub, t, turn, errmsg);
    if (rc != DV_OK)
        return rc;
    uint64_t total = 0;
    for (size_t i = 0; i < t->n_calls; i++)
        total += t->calls[i].rep.m.u.count_rep.count;
    rep->u.count_rep.count = total;
    return DV_OK;
}

static int cmp_hit_id(const void *a, const void *b)
{
    return pid_cmp(&((const struct msg_hit *)a)->id, &((const struct msg_hit *)b)->id);
}

/* Scroll across partitions in global id order: every partition is asked for limit + 1 points
 * from the cursor; the merged first `limit` are the page and the next one the new cursor. */
int router_scroll(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                  const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                  char *errmsg)
{
    struct msg sub = {.type = MSG_SCROLL, .u.scroll_req = req->u.scroll_req};
    uint32_t limit = req->u.scroll_req.limit;
    if (limit == 0 || limit > PROTO_MAX_DIM) {
        dv_errmsg_set(errmsg, "scroll limit must be 1 to %d", PROTO_MAX_DIM);
        return DV_ERANGE;
    }
    sub.u.scroll_req.limit = limit + 1;
    int rc = router_fan_out(c, m, cl, &sub, t, turn, errmsg);
    if (rc != DV_OK)
        return rc;
    size_t total = 0;
    for (size_t i = 0; i < t->n_calls; i++)
        total += t->calls[i].rep.m.u.scroll_rep.hits.n;
    struct msg_hit *all = router_tmp_alloc(t, total * sizeof *all);
    if (all == NULL)
        return DV_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < t->n_calls; i++) {
        const struct msg_hits *h = &t->calls[i].rep.m.u.scroll_rep.hits;
        memcpy(all + k, h->hits, h->n * sizeof *all);
        k += h->n;
    }
    qsort(all, total, sizeof *all, cmp_hit_id);
    struct msg_scroll_rep *o = &rep->u.scroll_rep;
    o->hits = (struct msg_hits){all, (uint32_t)(total < limit ? total : limit)};
    o->more = total > limit;
    if (o->more)
        o->next = all[limit].id;
    return DV_OK;
}

/* Payload index on every replica of every partition. */
static int payload_index(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                         const struct msg *req, struct msg *rep, struct coord_tmp *t, char *errmsg)
{
    uint32_t np = cl->cfg.n_parts;
    struct call *calls = calloc(np, sizeof *calls);
    struct msg_peer *groups = router_tmp_alloc(t, (size_t)np * CMAP_MAX_REPLICAS * sizeof *groups);
    if (calls == NULL || groups == NULL) {
        free(calls);
        return DV_ENOMEM;
    }
    int rc = DV_OK;
    for (uint32_t p = 0; p < np && rc == DV_OK; p++) {
        const struct cmap_part *pt = &cl->parts[p];
        calls[p].req.type = MSG_PAYLOAD_INDEX;
        calls[p].req.addr = (struct msg_addr){S(cl->name), p, pt->epoch, pt->term};
        calls[p].req.u.index_req = req->u.index_req;
        calls[p].req.secondaries = groups + (size_t)p * CMAP_MAX_REPLICAS;
        calls[p].part = p;
        rc = insync_group(m, cl, p, calls[p].req.secondaries, &calls[p].req.n_secondaries, errmsg);
        router_aim(c, m, pt->primary, &calls[p]);
    }
    if (rc != DV_OK) {
        free(calls);
        dv_errmsg_prefix(errmsg, "collection %s", cl->name);
        return rc;
    }
    router_run_calls(c, calls, np);
    t->calls = calls;
    t->n_calls = np;
    for (uint32_t p = 0; p < np; p++)
        if (calls[p].rc == DV_OK && calls[p].rep.m.u.write_rep.n_failed > 0)
            calls[p].rc = insync_settle(c, cl->name, p, cl->parts[p].term,
                                        &calls[p].rep.m.u.write_rep, calls[p].err);
    rep->u.write_rep = (struct msg_write_rep){0, 1, NULL, 0};
    return first_error(calls, np, errmsg);
}

/* How long a follower waits for a collection it does not know yet (several raft heartbeats). */
#define FOLLOWER_LAG_MS 150

static bool leader_ready(struct coord *c)
{
    struct craft_status st;
    craft_status(c->raft, &st);
    return st.leader_ready;
}

int router_run(struct coord *c, const struct msg *req, struct msg *rep, struct coord_tmp **tmp,
               bool plain_ok, char *errmsg)
{
    char name[CMAP_NAME_MAX + 1], resolved[CMAP_NAME_MAX + 1];
    if (req->addr.coll.len == 0 || req->addr.coll.len > CMAP_NAME_MAX) {
        dv_errmsg_set(errmsg, "collection name must be 1 to %d bytes", CMAP_NAME_MAX);
        return DV_EINVAL;
    }
    snprintf(name, sizeof name, "%.*s", (int)req->addr.coll.len, req->addr.coll.p);
    int rc = DV_OK;
    uint64_t t0 = clock_mono_ms();
    for (int attempt = 0;; attempt++) {
        struct coord_tmp *t = calloc(1, sizeof *t);
        if (t == NULL)
            return DV_ENOMEM;
        struct cmap_ref *ref = craft_map(c->raft);
        const struct cmap_coll *cl = cmap_coll_resolve(&ref->map, name);
        if (cl == NULL && !leader_ready(c)) {
            /* A follower learns of a commit with the leader's next heartbeat: a collection
             * (or alias) just created through another coordinator may be a few ms away. */
            uint64_t end = clock_mono_ms() + FOLLOWER_LAG_MS;
            while (cl == NULL && clock_mono_ms() < end) {
                craft_map_release(c->raft, ref);
                clock_sleep_ms(5);
                ref = craft_map(c->raft);
                cl = cmap_coll_resolve(&ref->map, name);
            }
        }
        if (cl == NULL) {
            craft_map_release(c->raft, ref);
            free(t);
            dv_errmsg_set(errmsg, "collection %s does not exist", name);
            return DV_ENOTFOUND;
        }
        uint64_t epoch = ref->map.epoch;
        snprintf(resolved, sizeof resolved, "%s", cl->name);
        if (attempt == 0 && plain_ok && req->type == MSG_P_SEARCH) {
            /* REST's searches; native ones got here from coord_run_async already failing. */
            craft_map_release(c->raft, ref);
            if (router_search_plain(c, req, rep, t)) {
                *tmp = t;
                return DV_OK;
            }
            ref = craft_map(c->raft);
            if ((cl = cmap_coll_resolve(&ref->map, name)) == NULL) {
                craft_map_release(c->raft, ref);
                router_tmp_free(t);
                dv_errmsg_set(errmsg, "collection %s does not exist", name);
                return DV_ENOTFOUND;
            }
            epoch = ref->map.epoch;
        }
        switch (req->type) {
        case MSG_P_UPSERT:
        case MSG_P_DELETE:
        case MSG_P_SET_PAYLOAD:
        case MSG_P_UPDATE_VECTORS:
        case MSG_P_DELETE_VECTORS:
            rc = router_by_ids(c, &ref->map, cl, req, rep, t, 0, errmsg);
            break;
        case MSG_P_GET:
        case MSG_P_COUNT:
        case MSG_P_SCROLL:
        case MSG_P_SEARCH:
            rc = router_consistent_read(c, &ref->map, cl, req, rep, t, errmsg);
            break;
        case MSG_P_FACET:
            rc = router_facet(c, &ref->map, cl, req, rep, t, atomic_fetch_add(&c->read_turn, 1),
                              errmsg);
            break;
        case MSG_P_SCROLL_ORDER:
            rc = router_scroll_order(c, &ref->map, cl, req, rep, t,
                                     atomic_fetch_add(&c->read_turn, 1), errmsg);
            break;
        default:
            rc = payload_index(c, &ref->map, cl, req, rep, t, errmsg);
        }
        craft_map_release(c->raft, ref);
        /* A node knows a newer map, or the partition is in the middle of a move's switch
         * (its writes paused for milliseconds): take the newest copy of the map and try
         * again, for up to write_retry (writes are idempotent by id). */
        bool stale = rc == DV_ESTALE || any_code(t->calls, t->n_calls, DV_ESTALE);
        bool paused = rc == DV_EBUSY && any_code(t->calls, t->n_calls, DV_EBUSY);
        bool retry =
            (stale || paused) && (attempt == 0 || clock_mono_ms() - t0 < c->o.write_retry_ms);
        if (!retry) {
            *tmp = t;
            if (rc == DV_OK && req->type == MSG_P_INDEX) /* for payload_schema */
                coord_index_note(c, resolved, &req->u.index_req);
            return rc;
        }
        router_tmp_free(t);
        memset(&rep->u, 0, sizeof rep->u);
        errmsg[0] = '\0';
        struct cmap_ref *now = craft_map(c->raft);
        bool newer = now->map.epoch > epoch;
        craft_map_release(c->raft, now);
        if (!newer)
            clock_sleep_ms(paused ? 10 : 50); /* give the switch or the map a moment */
    }
}
