/* handle.c - the node's request handlers: decode, check, call the replica, encode. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "filter.h"
#include "handle.h"
#include "handle_order.h"
#include "handle_vec.h"
#include "log.h"
#include "mpk.h"
#include "pull.h"
#include "replica_cfg.h"
#include "repl.h"

/* The partitions check k and ef against their own constant (part/ does not see proto/). */
_Static_assert(PART_MAX_K == PROTO_MAX_K && PART_MAX_K == PROTO_MAX_EF,
               "shard/part.h's PART_MAX_K is proto_limits.h's PROTO_MAX_K and PROTO_MAX_EF");

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

/* ---- helpers ----------------------------------------------------------------------------- */

static int compile_filter(struct msg_bytes f, struct filter **out, char *errmsg)
{
    *out = NULL;
    if (f.p == NULL)
        return DV_OK;
    return filter_compile(f.p, f.len, out, errmsg);
}

static uint32_t replica_dim(struct node_replica *r)
{
    struct part_info info;
    part_get_info(r->part, &info);
    return info.index.dim;
}

/* ---- replicas ---------------------------------------------------------------------------- */

struct replica_list {
    struct msg_replica *items;
    char (*names)[NODE_MAX_COLL + 1];
    uint32_t n, cap;
};

static void collect_replica(void *arg, struct node_replica *r)
{
    struct replica_list *l = arg;
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 16;
        void *a = realloc(l->items, cap * sizeof *l->items);
        if (a == NULL)
            return;
        l->items = a;
        void *b = realloc(l->names, cap * sizeof *l->names);
        if (b == NULL)
            return;
        l->names = b;
        l->cap = cap;
    }
    struct part_info info;
    part_get_info(r->part, &info);
    memcpy(l->names[l->n], r->coll, sizeof l->names[l->n]);
    l->items[l->n].part = r->partition;
    l->items[l->n].applied_lsn = info.applied_lsn;
    l->n++;
}

static int list_replicas(struct handle_ctx *c, struct replica_list *l)
{
    memset(l, 0, sizeof *l);
    node_foreach(c->node, collect_replica, l);
    for (uint32_t i = 0; i < l->n; i++)
        l->items[i].coll = S(l->names[i]);
    return DV_OK;
}

static void replica_list_free(struct replica_list *l)
{
    free(l->items);
    free(l->names);
}

/* ---- search ------------------------------------------------------------------------------ */

struct search_job {
    const struct msg_search_req *req;
    struct node_replica **reps;  /* per partition, NULL when it failed */
    struct filter **filters;     /* per query */
    struct part_result *results; /* [part * n_queries + query] */
    int *codes;                  /* per (part, query) */
    char (*errs)[DV_ERRMSG_SIZE];
};

static void search_one(void *arg, size_t i)
{
    struct search_job *j = arg;
    uint32_t nq = j->req->n_queries;
    size_t p = i / nq, q = i % nq;
    if (j->reps[p] == NULL)
        return;
    struct part_query pq;
    j->codes[i] = hv_query(j->reps[p]->part, &j->req->queries[q], &pq, j->errs[i]);
    if (j->codes[i] != DV_OK) {
        dv_errmsg_prefix(j->errs[i], "query %zu", q);
        return;
    }
    pq.filter = j->filters[q];
    j->codes[i] = part_search(j->reps[p]->part, &pq, &j->results[i], NULL, j->errs[i]);
}

static int do_search(struct handle_ctx *c, const struct msg *req, struct msg *rep, char *errmsg,
                     struct buf *out)
{
    const struct msg_search_req *s = &req->u.search_req;
    uint32_t np = s->n_parts, nq = s->n_queries;
    size_t total = (size_t)np * nq;
    int rc = DV_ENOMEM;
    struct search_job j = {.req = s};
    j.reps = calloc(np ? np : 1, sizeof *j.reps);
    j.filters = calloc(nq ? nq : 1, sizeof *j.filters);
    j.results = calloc(total ? total : 1, sizeof *j.results);
    j.codes = calloc(total ? total : 1, sizeof *j.codes);
    j.errs = calloc(total ? total : 1, sizeof *j.errs);
    struct msg_search_part *parts = calloc(np ? np : 1, sizeof *parts);
    struct msg_hits *hits = calloc(total ? total : 1, sizeof *hits);
    char(*perr)[DV_ERRMSG_SIZE] = calloc(np ? np : 1, sizeof *perr);
    if (!j.reps || !j.filters || !j.results || !j.codes || !j.errs || !parts || !hits || !perr)
        goto done;

    for (uint32_t q = 0; q < nq; q++) {
        rc = compile_filter(s->queries[q].filter, &j.filters[q], errmsg);
        if (rc != DV_OK) {
            dv_errmsg_prefix(errmsg, "query %u", q);
            goto done;
        }
        if ((rc = msg_query_check(&s->queries[q], q, errmsg)) != DV_OK)
            goto done;
    }
    for (uint32_t p = 0; p < np; p++) {
        uint64_t known;
        parts[p].part = s->parts[p].part;
        int prc = node_acquire(c->node, req->addr.coll.p, req->addr.coll.len, s->parts[p].part,
                               s->parts[p].epoch, &j.reps[p], &known, perr[p]);
        if (prc != DV_OK) {
            j.reps[p] = NULL;
            parts[p].err = (struct msg_error){prc, S(perr[p]), known};
            continue;
        }
    }
    /* Full-text conditions learn the collection's text indexes (the same on every partition)
     * once, before the searches share the filters. */
    for (uint32_t p = 0; p < np; p++) {
        if (j.reps[p] == NULL)
            continue;
        for (uint32_t q = 0; q < nq; q++)
            part_bind_filter(j.reps[p]->part, j.filters[q]);
        break;
    }
    if (c->parallel && total > HANDLE_INLINE_SEARCHES)
        c->parallel(c->pool, total, search_one, &j);
    else
        for (size_t i = 0; i < total; i++)
            search_one(&j, i);

    for (uint32_t p = 0; p < np; p++) {
        if (j.reps[p] == NULL)
            continue;
        int first = DV_OK;
        for (uint32_t q = 0; q < nq && first == DV_OK; q++) {
            size_t i = (size_t)p * nq + q;
            if (j.codes[i] != DV_OK) {
                first = j.codes[i];
                memcpy(perr[p], j.errs[i], DV_ERRMSG_SIZE);
            }
        }
        if (first != DV_OK) {
            parts[p].err = (struct msg_error){first, S(perr[p]), 0};
            continue;
        }
        parts[p].results = &hits[(size_t)p * nq];
        parts[p].n = nq;
        for (uint32_t q = 0; q < nq; q++) {
            size_t i = (size_t)p * nq + q;
            if ((rc = hv_hits(j.reps[p]->part, &j.results[i], &hits[i])) != DV_OK)
                goto done;
        }
    }
    rep->u.search_rep.parts = parts;
    rep->u.search_rep.n_parts = np;
    rc = msg_encode(rep, out, errmsg);

done:
    for (size_t i = 0; hits && i < total; i++)
        hv_hits_free(&hits[i]);
    for (size_t i = 0; j.results && i < total; i++)
        part_result_free(&j.results[i]);
    for (uint32_t q = 0; j.filters && q < nq; q++)
        filter_free(j.filters[q]);
    for (uint32_t p = 0; j.reps && p < np; p++)
        if (j.reps[p])
            node_release(c->node, j.reps[p]);
    free(j.reps);
    free(j.filters);
    free(j.results);
    free(j.codes);
    free(j.errs);
    free(parts);
    free(hits);
    free(perr);
    return rc;
}

/* ---- WAL read ---------------------------------------------------------------------------- */

struct wal_acc {
    struct msg_wal_rec *recs;
    uint32_t n, cap;
    uint64_t bytes, max;
};

static int wal_collect(uint64_t lsn, uint8_t type, const void *body, size_t len, void *arg)
{
    struct wal_acc *a = arg;
    if (a->n > 0 && a->bytes + len > a->max)
        return 1; /* enough for one reply */
    if (a->n == a->cap) {
        uint32_t cap = a->cap ? a->cap * 2 : 64;
        void *p = realloc(a->recs, cap * sizeof *a->recs);
        if (p == NULL)
            return DV_ENOMEM;
        a->recs = p;
        a->cap = cap;
    }
    void *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return DV_ENOMEM;
    memcpy(copy, body, len);
    a->recs[a->n++] = (struct msg_wal_rec){lsn, type, {copy, (uint32_t)len}};
    a->bytes += len + 16;
    return 0;
}

/* ---- moving a replica ------------------------------------------------------------------- */

#define FENCE_WAIT_MS  5000 /* fence on: longest wait for the writes in flight */
#define FINISH_WAIT_MS 5000 /* pull finish: longest wait for the copy to reach until_lsn */

/* replica_pull on the target node: the partition is not a replica of the node (yet), so this
 * runs without node_acquire. */
static int do_pull(struct handle_ctx *c, const struct msg *req, struct msg *rep, char *errmsg,
                   struct buf *out, uint64_t *stale_epoch)
{
    const struct msg_pull_req *q = &req->u.pull_req;
    const char *coll = req->addr.coll.p;
    size_t len = req->addr.coll.len;
    uint32_t part = req->addr.part;
    struct pull_status st;
    int rc;
    memset(&st, 0, sizeof st);
    switch (q->op) {
    case MSG_PULL_START:
        rc = pull_start(c->node, coll, len, part, req->addr.epoch, q->source.p, q->source.len,
                        q->rate, &q->create, &st, errmsg);
        break;
    case MSG_PULL_RESUME:
        rc = pull_resume(c->node, coll, len, part, req->addr.epoch, q->source.p, q->source.len,
                         q->rate, &q->create, &st, errmsg);
        break;
    case MSG_PULL_STATUS:
        pull_status(c->node, coll, len, part, &st);
        rc = DV_OK;
        break;
    case MSG_PULL_FINISH:
        rc = pull_finish(c->node, coll, len, part, req->addr.epoch, req->addr.term, q->until_lsn,
                         FINISH_WAIT_MS, &st, errmsg);
        break;
    case MSG_PULL_ABORT:
        rc = pull_abort(c->node, coll, len, part, req->addr.epoch, stale_epoch, errmsg);
        break;
    default:
        dv_errmsg_set(errmsg,
                      "unknown replica_pull op %u (1 start, 2 status, 3 finish, 4 abort, 5 resume)",
                      q->op);
        return DV_EINVAL;
    }
    if (rc != DV_OK)
        return rc;
    struct msg_pull_rep *o = &rep->u.pull_rep;
    o->state = st.state;
    o->bytes_done = st.bytes_done;
    o->bytes_total = st.bytes_total;
    o->applied_lsn = st.applied_lsn;
    o->source_lsn = st.source_lsn;
    o->error = S(st.error);
    return msg_encode(rep, out, errmsg);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static bool is_write(int type)
{
    return type == MSG_UPSERT || type == MSG_DELETE || type == MSG_SET_PAYLOAD ||
           type == MSG_PAYLOAD_INDEX || type == MSG_UPDATE_VECTORS || type == MSG_DELETE_VECTORS;
}

/*
 * A write that failed because the replica's disk is full (DV_EFULL from its WAL or its
 * term files): the message says so first and names the node and the partition, so that a
 * client behind a coordinator reads "no space left on device" and where. Returns rc.
 */
static int disk_full(const struct handle_ctx *c, const struct node_replica *r, int rc, char *errmsg)
{
    if (rc == DV_EFULL)
        dv_errmsg_prefix(errmsg, "no space left on device (node %s, collection %s partition %u)",
                         c->node_id ? c->node_id : "?", r->coll, r->partition);
    return rc;
}

/* Runs a partition-addressed request on its replica. */
static int do_addressed(struct handle_ctx *c, struct msg *req, struct msg *rep, char *errmsg,
                        struct buf *out, uint64_t *stale_epoch)
{
    if (req->type == MSG_REPLICA_FENCE && req->u.fence_req.op != MSG_FENCE_ON &&
        req->u.fence_req.op != MSG_FENCE_OFF) {
        dv_errmsg_set(errmsg, "unknown replica_fence op %u (1 on, 2 off)", req->u.fence_req.op);
        return DV_EINVAL;
    }
    struct node_replica *r;
    struct msg_term terms[NODE_MAX_TERMS + 1]; /* a WAL read's reply points here */
    int rc = node_acquire(c->node, req->addr.coll.p, req->addr.coll.len, req->addr.part,
                          req->addr.epoch, &r, stale_epoch, errmsg);
    if (rc != DV_OK)
        return rc;
    /* (a replicate checks the term as one step with its apply: node_replicate) */
    if (req->type != MSG_REPLICATE &&
        (rc = node_term(c->node, r, req->addr.term, errmsg)) != DV_OK) {
        disk_full(c, r, rc, errmsg);
        node_release(c->node, r);
        return rc;
    }
    bool writing = is_write(req->type);
    if (writing && (rc = node_write_begin(c->node, r, errmsg)) != DV_OK) {
        node_release(c->node, r);
        return rc;
    }
    /* A primary's write: the secondaries of this epoch get its record before it answers. */
    bool replicated = writing && msg_type_replicated(req->type);
    struct repl_fail fails[PROTO_MAX_REPLICAS];
    struct msg_peer_fail peer_fails[PROTO_MAX_REPLICAS];
    if (replicated && (rc = repl_targets(r->repl, req->addr.epoch, req->secondaries,
                                         req->n_secondaries, errmsg)) != DV_OK) {
        node_write_end(c->node, r);
        node_release(c->node, r);
        return rc;
    }
    struct part *p = r->part;
    struct part_result res = {0};
    struct filter *f = NULL;
    void *chunk = NULL;
    struct wal_acc acc = {0};
    struct part_point *pts = NULL;
    struct part_vec *pvecs = NULL;
    bool over_capacity = false; /* DV_EFULL of the node's capacity, not of its disk */
    bool encoded = false;       /* the case encoded its reply into out */

    switch (req->type) {
    case MSG_REPLICA_INFO: {
        struct part_info info;
        part_get_info(p, &info);
        struct msg_info_rep *o = &rep->u.info_rep;
        o->dim = info.index.dim;
        o->metric = (uint32_t)info.index.metric;
        o->m = info.index.m;
        o->ef_construction = info.index.ef_construction;
        o->ef_search = info.index.ef_search;
        o->sq8 = info.index.sq8;
        o->points = info.points;
        o->deleted = info.deleted;
        o->applied_lsn = info.applied_lsn;
        o->durable_lsn = info.durable_lsn;
        o->ckpt_lsn = info.ckpt_lsn;
        o->wal_bytes = info.wal_bytes;
        o->payload_bytes = info.payload_bytes;
        break;
    }
    case MSG_UPSERT:
    case MSG_UPDATE_VECTORS: {
        const struct msg_upsert_req *u = &req->u.upsert_req;
        uint32_t dim = replica_dim(r);
        if (u->named == NULL && u->n > 0 && u->dim != dim) {
            dv_errmsg_set(errmsg,
                          "wrong dimension: the vectors have %u dimensions, collection %s "
                          "partition %u has %u",
                          u->dim, r->coll, r->partition, dim);
            rc = DV_EDIM;
            break;
        }
        if (req->type == MSG_UPSERT && c->capacity && node_points(c->node) + u->n > c->capacity) {
            dv_errmsg_set(errmsg, "node is full: capacity %" PRIu64 " points", c->capacity);
            over_capacity = true;
            rc = DV_EFULL;
            break;
        }
        if ((rc = hv_points(p, u, &pts, &pvecs, errmsg)) != DV_OK)
            break;
        if (req->type == MSG_UPSERT)
            rc = part_upsert(p, pts, u->n, &rep->u.write_rep.lsn, errmsg);
        else
            rc = part_update_vectors(p, pts, u->n, &rep->u.write_rep.lsn, errmsg);
        rep->u.write_rep.affected = u->n;
        break;
    }
    case MSG_DELETE_VECTORS: {
        const struct msg_delvec_req *v = &req->u.delvec_req;
        uint32_t spaces[PART_MAX_SPACES];
        if ((rc = hv_spaces(p, v->names, v->n_names, spaces, errmsg)) != DV_OK)
            break;
        rc =
            part_delete_vectors(p, v->ids, v->n, spaces, v->n_names, &rep->u.write_rep.lsn, errmsg);
        rep->u.write_rep.affected = v->n;
        break;
    }
    case MSG_DELETE: {
        size_t deleted = 0;
        rc = part_delete(p, req->u.delete_req.ids, req->u.delete_req.n, &rep->u.write_rep.lsn,
                         &deleted, errmsg);
        rep->u.write_rep.affected = deleted;
        break;
    }
    case MSG_SET_PAYLOAD: {
        const struct msg_set_payload_req *s = &req->u.set_payload_req;
        if (s->op < PART_PAYLOAD_SET || s->op > PART_PAYLOAD_SET_KEY) {
            dv_errmsg_set(errmsg,
                          "unknown payload operation %u (1 set, 2 overwrite, 3 delete "
                          "keys, 4 clear, 5 set at a key)",
                          s->op);
            rc = DV_EINVAL;
            break;
        }
        rc = part_set_payload(p, (enum part_payload_op)s->op, s->ids, s->n, s->data.p, s->data.len,
                              &rep->u.write_rep.lsn, errmsg);
        rep->u.write_rep.affected = s->n;
        break;
    }
    case MSG_PAYLOAD_INDEX: {
        const struct msg_index_req *x = &req->u.index_req;
        char key[256];
        if (x->key.len == 0 || x->key.len >= sizeof key) {
            dv_errmsg_set(errmsg, "payload index key must be 1 to %zu bytes", sizeof key - 1);
            rc = DV_EINVAL;
            break;
        }
        memcpy(key, x->key.p, x->key.len);
        key[x->key.len] = '\0';
        if (x->op == 1 && x->kind < PINDEX_KIND_COUNT) {
            struct pindex_params prm = pindex_params_default((enum pindex_kind)x->kind);
            if (x->params.p != NULL &&
                (rc = pindex_params_parse(x->params.p, x->params.len, &prm, errmsg)) != DV_OK)
                break;
            if (prm.kind != x->kind) {
                dv_errmsg_set(errmsg, "payload index: params of type %s for kind %u",
                              pindex_kind_name((enum pindex_kind)prm.kind), x->kind);
                rc = DV_EINVAL;
                break;
            }
            rc = part_create_index_params(p, key, &prm, &rep->u.write_rep.lsn, errmsg);
        } else if (x->op == 2) {
            rc = part_drop_index(p, key, &rep->u.write_rep.lsn, errmsg);
        } else {
            dv_errmsg_set(errmsg,
                          "payload index: op must be 1 (create) or 2 (drop) and kind 0 to %d "
                          "(keyword, integer, float, bool, geo, text, datetime, uuid), got op %u "
                          "kind %u",
                          PINDEX_KIND_COUNT - 1, x->op, x->kind);
            rc = DV_EINVAL;
        }
        rep->u.write_rep.affected = rc == DV_OK;
        break;
    }
    case MSG_GET: {
        const struct msg_get_req *g = &req->u.get_req;
        rc = part_get(p, g->ids, g->n, g->with_vector, g->with_payload, &res, errmsg);
        if (rc == DV_OK)
            rc = hv_hits(p, &res, &rep->u.get_rep);
        break;
    }
    case MSG_COUNT:
        rc = compile_filter(req->u.count_req.filter, &f, errmsg);
        if (rc == DV_OK)
            rc = part_bind_filter(p, f);
        if (rc == DV_OK)
            rc = part_count(p, f, &rep->u.count_rep.count, errmsg);
        break;
    case MSG_SCROLL: {
        const struct msg_scroll_req *s = &req->u.scroll_req;
        rc = compile_filter(s->filter, &f, errmsg);
        if (rc == DV_OK)
            rc = part_bind_filter(p, f);
        if (rc == DV_OK)
            rc = part_scroll(p, s->has_from ? &s->from : NULL, s->limit, f, s->with_vector,
                             s->with_payload, &res, &rep->u.scroll_rep.next,
                             &rep->u.scroll_rep.more, errmsg);
        if (rc == DV_OK)
            rc = hv_hits(p, &res, &rep->u.scroll_rep.hits);
        break;
    }
    case MSG_FACET:
        rc = ho_facet(p, req, rep, out, errmsg);
        encoded = true;
        break;
    case MSG_SCROLL_ORDER:
        rc = ho_scroll_order(p, req, rep, out, errmsg);
        encoded = true;
        break;
    case MSG_SNAPSHOT_READ: {
        const struct msg_snapshot_req *s = &req->u.snapshot_req;
        struct msg_snapshot_rep *o = &rep->u.snapshot_rep;
        size_t len = 0;
        o->session = s->session;
        rc = node_snapshot_read(c->node, r, &o->session, s->offset, s->max_bytes, &chunk, &len,
                                &o->lsn, &o->total, &o->done, errmsg);
        o->data.p = chunk;
        o->data.len = (uint32_t)len;
        break;
    }
    case MSG_WAL_READ: {
        const struct msg_wal_req *w = &req->u.wal_req;
        struct part_info info;
        node_hold_wal(c->node, r, w->from); /* the reader continues from here */
        part_get_info(p, &info);
        acc.max = w->max_bytes == 0 || w->max_bytes > NODE_SNAPSHOT_CHUNK ? NODE_SNAPSHOT_CHUNK
                                                                          : w->max_bytes;
        rep->u.wal_rep.applied_lsn = info.applied_lsn;
        rep->u.wal_rep.terms = terms;
        rep->u.wal_rep.n_terms = node_terms(c->node, r, terms);
        if (w->from > info.applied_lsn)
            break; /* nothing newer: an empty list */
        rc = part_read_wal(p, w->from, wal_collect, &acc, errmsg);
        if (rc == 1)
            rc = DV_OK;
        rep->u.wal_rep.recs = acc.recs;
        rep->u.wal_rep.n = acc.n;
        break;
    }
    case MSG_REPLICA_FENCE:
        rc = node_fence(c->node, r, req->u.fence_req.op == MSG_FENCE_ON, FENCE_WAIT_MS,
                        &rep->u.write_rep.lsn, errmsg);
        rep->u.write_rep.affected = 0;
        break;
    case MSG_REPLICA_DIGEST:
        rc = part_digest(p, &rep->u.digest_rep.digest, &rep->u.digest_rep.points,
                         &rep->u.digest_rep.lsn, errmsg);
        break;
    case MSG_REPLICATE:
        rc = node_replicate(c->node, r, req->addr.term, req->u.replicate_req.term_start,
                            req->u.replicate_req.recs, req->u.replicate_req.n,
                            &rep->u.write_rep.lsn, errmsg);
        rep->u.write_rep.affected = req->u.replicate_req.n;
        break;
    default:
        dv_errmsg_set(errmsg, "%s is not a partition request", msg_type_name(req->type));
        rc = DV_EINVAL;
    }
    if (!over_capacity) /* writes, replicates, fences: their disk is full */
        disk_full(c, r, rc, errmsg);
    if (rc == DV_OK && replicated) {
        uint32_t nf = 0;
        repl_wait(r->repl, &req->addr, node_term_start(c->node, r), rep->u.write_rep.lsn,
                  c->parallel, c->pool, fails, &nf);
        for (uint32_t i = 0; i < nf; i++)
            peer_fails[i] =
                (struct msg_peer_fail){S(fails[i].node_id), fails[i].code, S(fails[i].text)};
        rep->u.write_rep.failed = peer_fails;
        rep->u.write_rep.n_failed = nf;
    }
    if (rc == DV_OK && !encoded)
        rc = msg_encode(rep, out, errmsg);

    free(pts);
    free(pvecs);
    free(chunk);
    for (uint32_t i = 0; i < acc.n; i++)
        free((void *)acc.recs[i].body.p);
    free(acc.recs);
    filter_free(f);
    if (rep->type == MSG_GET)
        hv_hits_free(&rep->u.get_rep);
    if (rep->type == MSG_SCROLL)
        hv_hits_free(&rep->u.scroll_rep.hits);
    part_result_free(&res);
    if (writing)
        node_write_end(c->node, r);
    node_release(c->node, r);
    return rc;
}

struct stat_acc {
    uint64_t points, deleted, wal_bytes, payload_bytes, max_ckpt_age_ms, replicas;
};

static void stat_one(void *arg, struct node_replica *r)
{
    struct stat_acc *a = arg;
    struct part_info info;
    part_get_info(r->part, &info);
    a->replicas++;
    a->points += info.points;
    a->deleted += info.deleted;
    a->wal_bytes += info.wal_bytes;
    a->payload_bytes += info.payload_bytes;
    if (info.ckpt_age_ms > a->max_ckpt_age_ms)
        a->max_ckpt_age_ms = info.ckpt_age_ms;
}

static int run(struct handle_ctx *c, struct msg *req, struct msg *rep, char *errmsg,
               struct buf *out, uint64_t *stale_epoch)
{
    int rc;
    switch (req->type) {
    case MSG_HELLO: {
        struct replica_list l;
        list_replicas(c, &l);
        struct msg_hello_rep *h = &rep->u.hello_rep;
        h->node_id = S(c->node_id);
        h->version = S(c->version);
        h->capacity = c->capacity;
        h->replicas = l.items;
        h->n_replicas = l.n;
        rc = msg_encode(rep, out, errmsg);
        replica_list_free(&l);
        return rc;
    }
    case MSG_REPLICA_LIST: {
        struct replica_list l;
        list_replicas(c, &l);
        rep->u.list_rep.replicas = l.items;
        rep->u.list_rep.n = l.n;
        rc = msg_encode(rep, out, errmsg);
        replica_list_free(&l);
        return rc;
    }
    case MSG_REPLICA_CREATE: {
        const struct msg_create_req *cr = &req->u.create_req;
        struct hnsw_params hp;
        struct part_space spaces[PART_MAX_SPACES];
        enum wal_sync sync;
        if ((rc = replica_cfg_params(&cr->cfg, &hp, &sync, errmsg)) != DV_OK ||
            (rc = replica_cfg_spaces(&cr->cfg, spaces, errmsg)) != DV_OK)
            return rc;
        rc = node_create(c->node, req->addr.coll.p, req->addr.coll.len, req->addr.part,
                         req->addr.epoch, cr->incarnation, &hp, cr->cfg.n_spaces ? spaces : NULL,
                         cr->cfg.n_spaces, sync, stale_epoch, errmsg);
        return rc == DV_OK ? msg_encode(rep, out, errmsg) : rc;
    }
    case MSG_REPLICA_DROP:
        rc = node_drop(c->node, req->addr.coll.p, req->addr.coll.len, req->addr.part,
                       req->addr.epoch, stale_epoch, errmsg);
        return rc == DV_OK ? msg_encode(rep, out, errmsg) : rc;
    case MSG_SEARCH:
        return do_search(c, req, rep, errmsg, out);
    case MSG_SPARSE_STATS:
        return hv_sparse_stats(c->node, req, rep, errmsg, out);
    case MSG_REPLICA_PULL:
        return do_pull(c, req, rep, errmsg, out, stale_epoch);
    case MSG_STATS: {
        struct stat_acc a = {0};
        node_foreach(c->node, stat_one, &a);
        struct msg_stat st[] = {
            {S("replicas"), a.replicas},
            {S("points"), a.points},
            {S("deleted"), a.deleted},
            {S("wal_bytes"), a.wal_bytes},
            {S("payload_bytes"), a.payload_bytes},
            {S("max_checkpoint_age_ms"), a.max_ckpt_age_ms},
            {S("replicas_failed_to_open"), node_open_failures(c->node)},
            {S("uptime_ms"), clock_mono_ms() - c->started_ms},
        };
        rep->u.stats_rep.stats = st;
        rep->u.stats_rep.n = sizeof st / sizeof st[0];
        return msg_encode(rep, out, errmsg);
    }
    default:
        if (!msg_type_addressed(req->type)) {
            dv_errmsg_set(errmsg, "%s is not a request a node answers (send it to a coordinator)",
                          msg_type_name(req->type));
            return DV_EINVAL;
        }
        return do_addressed(c, req, rep, errmsg, out, stale_epoch);
    }
}

bool handle_run_inline(void *arg, const void *in, size_t n)
{
    /* An unfiltered search walks the graph for tens of microseconds and waits on nothing but
     * the replica's reader lock (writers hold it only to publish): a few of them run here, one
     * after the other. Filtered ones may scan the replica and batches take long: those go to
     * the workers. */
    struct msg m;
    char err[DV_ERRMSG_SIZE];
    int type = MSG_ERROR;
    uint64_t id;
    (void)arg;
    if (n > 8192) /* one query of up to ~2,000 dimensions; batches are not decoded twice */
        return false;
    msg_peek_header(in, n, &type, &id);
    if (type == MSG_HELLO)
        return true;
    if (type != MSG_SEARCH || msg_decode(in, n, &m, err) != DV_OK)
        return false;
    const struct msg_search_req *s = &m.u.search_req;
    bool ok = !m.reply && (uint64_t)s->n_parts * s->n_queries <= HANDLE_INLINE_SEARCHES;
    for (uint32_t q = 0; ok && q < s->n_queries; q++)
        ok = s->queries[q].filter.p == NULL;
    msg_free(&m);
    return ok;
}

bool handle_lane(void *arg, const void *in, size_t n)
{
    (void)arg;
    int type;
    uint64_t req_id;
    msg_peek_header(in, n, &type, &req_id);
    return type == MSG_REPLICATE;
}

/* The requests the search port serves: reads a client may send (the rest change the node, or
 * are coordinators' and nodes' business, and stay on the native URL). */
static bool search_port_type(int type)
{
    return type == MSG_HELLO || type == MSG_SEARCH || type == MSG_GET;
}

static int handle(struct handle_ctx *c, const void *in, size_t n, struct buf *out,
                  struct rpcsrv_result *res, bool reads_only)
{
    struct msg req, rep;
    uint64_t stale_epoch = 0;
    int rc;
    memset(res, 0, sizeof *res);
    memset(&rep, 0, sizeof rep);
    buf_reset(out);

    rc = rpcsrv_request(in, n, c->max_msg, "node", &req, res);
    if (rc != DV_OK)
        goto err_reply;
    if (atomic_load(&c->draining)) {
        dv_errmsg_set(res->errmsg, "node is shutting down");
        msg_free(&req);
        rc = DV_ESHUTDOWN;
        goto err_reply;
    }
    if (reads_only && !search_port_type(req.type)) {
        dv_errmsg_set(res->errmsg,
                      "the search port serves hello, search and get only: send %s to the "
                      "node's native URL",
                      msg_type_name(req.type));
        msg_free(&req);
        rc = DV_EINVAL;
        goto err_reply;
    }
    rep.type = req.type;
    rep.reply = true;
    rep.req_id = req.req_id;
    rc = run(c, &req, &rep, res->errmsg, out, &stale_epoch);
    msg_free(&req);
    if (rc == DV_OK) {
        res->code = DV_OK;
        return DV_OK;
    }

err_reply:
    return rpcsrv_error_reply(out, res, rc, stale_epoch);
}

int handle_request(struct handle_ctx *c, const void *in, size_t n, struct buf *out,
                   struct rpcsrv_result *res)
{
    return handle(c, in, n, out, res, false);
}

int handle_search_request(struct handle_ctx *c, const void *in, size_t n, struct buf *out,
                          struct rpcsrv_result *res)
{
    return handle(c, in, n, out, res, true);
}
