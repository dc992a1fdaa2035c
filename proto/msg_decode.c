/* msg_decode.c - the bounds-checked decoder of the native protocol's messages (msg.h). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mpk.h"
#include "msg.h"
#include "msg_int.h"

/* ---- decode ------------------------------------------------------------------------------ */

/* Decode allocations: a chain of blocks, each aligned like max_align_t. */
union arena_hdr {
    void *next;
    max_align_t align_;
};

struct dec {
    struct mpk r;
    struct msg *m;
    char *errmsg;
    bool typed; /* m->type has been read: messages name it */
};

static void *d_alloc(struct dec *d, size_t count, size_t size)
{
    if (size && count > (SIZE_MAX - sizeof(union arena_hdr)) / size)
        return NULL;
    union arena_hdr *h = malloc(sizeof *h + (count * size != 0 ? count * size : 1));
    if (!h)
        return NULL;
    h->next = d->m->arena_;
    d->m->arena_ = h;
    return h + 1;
}

/* Turns an mpk failure into DV_EPROTO naming the field (DV_ENOMEM passes through). */
static int fail(struct dec *d, int rc, const char *field)
{
    if (rc == DV_ENOMEM) {
        dv_errmsg_set(d->errmsg, "msg: %s: out of memory", field);
        return rc;
    }
    const char *why = rc == DV_ETYPE      ? "wrong msgpack type"
                      : rc == DV_ECORRUPT ? "malformed or truncated msgpack"
                                          : dv_strerror(rc);
    if (d->typed)
        dv_errmsg_set(d->errmsg, "msg: %s %s: %s (%zu bytes left)", msg_type_name(d->m->type),
                      field, why, (size_t)(d->r.end - d->r.p));
    else
        dv_errmsg_set(d->errmsg,
                      "msg: %s: %s (%zu bytes left); a message is [version, type, kind, "
                      "request id, ...]",
                      field, why, (size_t)(d->r.end - d->r.p));
    return DV_EPROTO;
}

#define R(x, field)                                                                                \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            return fail(d, rc, field);                                                             \
    } while (0)

static int d_u32(struct dec *d, uint32_t *v, const char *field)
{
    uint64_t x;
    int rc;
    R(mpk_u64(&d->r, &x), field);
    if (x > UINT32_MAX)
        return fail(d, DV_ERANGE, field);
    *v = (uint32_t)x;
    return DV_OK;
}

static int d_str(struct dec *d, struct msg_str *s, const char *field)
{
    int rc;
    R(mpk_str(&d->r, &s->p, &s->len), field);
    return DV_OK;
}

/* An array header with exactly n elements. */
static int d_tuple(struct dec *d, uint32_t n, const char *field)
{
    uint32_t got;
    int rc;
    R(mpk_array(&d->r, &got), field);
    if (got != n)
        return fail(d, DV_ECORRUPT, field);
    return DV_OK;
}

/*
 * The smallest encoding of one element of each list, used to bound a declared count by the
 * bytes left before allocating for it (mpk_array alone allows one byte per element, and a
 * decoded element takes up to 64 bytes of memory).
 */
enum {
    MIN_ID = 1,        /* a positive fixint */
    MIN_PAYLOAD = 1,   /* nil */
    MIN_REPLICA = 4,   /* [coll "", part, lsn] */
    MIN_HIT = 5,       /* [id, score, nil, nil] */
    MIN_HITS = 1,      /* [] */
    MIN_TARGET = 3,    /* [part, epoch] */
    MIN_QUERY = 8,     /* [bin8 "", k, ef, nil, false, false] */
    MIN_PART = 4,      /* [part, nil, []] */
    MIN_STAT = 3,      /* [name "", value] */
    MIN_WAL_REC = 5,   /* [lsn, type, bin8 ""] */
    MIN_NAME = 1,      /* "" */
    MIN_U32 = 1,       /* a positive fixint */
    MIN_COLL_PART = 5, /* [part, epoch, [], points] */
    MIN_REPORT = 5,    /* [coll "", part, lsn, points] */
};

/* An array header whose count `*n` the bytes left can hold at `min` bytes per element. */
static int d_list(struct dec *d, uint32_t *n, size_t min, const char *field)
{
    int rc;
    R(mpk_array(&d->r, n), field);
    if ((uint64_t)*n * min > (uint64_t)(d->r.end - d->r.p))
        return fail(d, DV_ECORRUPT, field);
    return DV_OK;
}

static int d_bin(struct dec *d, struct msg_bytes *v, const char *field)
{
    const void *p;
    int rc;
    R(mpk_bin(&d->r, &p, &v->len), field);
    v->p = p;
    return DV_OK;
}

static int d_bin_or_nil(struct dec *d, struct msg_bytes *v, const char *field)
{
    int rc;
    v->p = NULL;
    v->len = 0;
    if (mpk_peek(&d->r) == MPK_NIL) {
        R(mpk_nil(&d->r), field);
        return DV_OK;
    }
    return d_bin(d, v, field);
}

static int d_raw_or_nil(struct dec *d, struct msg_bytes *v, const char *field)
{
    int rc;
    v->p = NULL;
    v->len = 0;
    if (mpk_peek(&d->r) == MPK_NIL) {
        R(mpk_nil(&d->r), field);
        return DV_OK;
    }
    size_t len;
    R(mpk_span(&d->r, &v->p, &len), field);
    v->len = (uint32_t)len; /* len <= PROTO_MAX_MSG */
    return DV_OK;
}

/* A bin of exactly `count` little-endian float32 (count == UINT32_MAX + 1 or more is an
 * error), copied into aligned memory; *out is NULL when count is 0. */
static int d_floats(struct dec *d, uint64_t count, float **out, const char *field)
{
    const void *p;
    uint32_t len;
    int rc;
    R(mpk_bin(&d->r, &p, &len), field);
    if (count > PROTO_MAX_MSG / 4 || len != count * 4) {
        dv_errmsg_set(d->errmsg, "msg: %s %s: vector bin holds %u bytes, expected %llu",
                      msg_type_name(d->m->type), field, len, (unsigned long long)count * 4);
        return DV_EPROTO;
    }
    *out = NULL;
    if (!count)
        return DV_OK;
    float *v = d_alloc(d, count, sizeof(float));
    if (!v)
        return fail(d, DV_ENOMEM, field);
    memcpy(v, p, len); /* never cast p: bins are not aligned */
    *out = v;
    return DV_OK;
}

static int d_ids(struct dec *d, struct pid **ids, uint32_t *n, const char *field)
{
    int rc;
    if ((rc = d_list(d, n, MIN_ID, field)))
        return rc;
    *ids = d_alloc(d, *n, sizeof **ids);
    if (!*ids)
        return fail(d, DV_ENOMEM, field);
    for (uint32_t i = 0; i < *n; i++)
        R(mpk_pid(&d->r, &(*ids)[i]), field);
    return DV_OK;
}

static int d_bool(struct dec *d, bool *v, const char *field)
{
    int rc;
    R(mpk_bool(&d->r, v), field);
    return DV_OK;
}

static int d_u64(struct dec *d, uint64_t *v, const char *field)
{
    int rc;
    R(mpk_u64(&d->r, v), field);
    return DV_OK;
}

/* A list of strings (names, node ids). */
static int d_strs(struct dec *d, struct msg_str **out, uint32_t *n, const char *field)
{
    int rc;
    if ((rc = d_list(d, n, MIN_NAME, field)))
        return rc;
    *out = d_alloc(d, *n, sizeof **out);
    if (!*out)
        return fail(d, DV_ENOMEM, field);
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = d_str(d, &(*out)[i], field)))
            return rc;
    return DV_OK;
}

/* The collection parameters of coll_create and coll_info's reply (see w_coll_cfg). */
static int d_coll_cfg(struct dec *d, struct msg_coll_cfg *c)
{
    int rc;
    if ((rc = d_u32(d, &c->dim, "dim")) || (rc = d_u32(d, &c->metric, "metric")) ||
        (rc = d_u32(d, &c->m, "m")) || (rc = d_u32(d, &c->ef_construction, "ef_construction")) ||
        (rc = d_u32(d, &c->ef_search, "ef_search")) || (rc = d_bool(d, &c->sq8, "sq8")) ||
        (rc = d_u32(d, &c->fsync, "fsync")) || (rc = d_u32(d, &c->partitions, "partitions")) ||
        (rc = d_u32(d, &c->replication, "replication")))
        return rc;
    return DV_OK;
}

static int d_replicas(struct dec *d, struct msg_replica **out, uint32_t *n)
{
    int rc;
    if ((rc = d_list(d, n, MIN_REPLICA, "replicas")))
        return rc;
    struct msg_replica *r = d_alloc(d, *n, sizeof *r);
    if (!r)
        return fail(d, DV_ENOMEM, "replicas");
    for (uint32_t i = 0; i < *n; i++) {
        if ((rc = d_tuple(d, 3, "replica")) || (rc = d_str(d, &r[i].coll, "replica collection")) ||
            (rc = d_u32(d, &r[i].part, "replica partition")) ||
            (rc = d_u64(d, &r[i].applied_lsn, "replica lsn")))
            return rc;
    }
    *out = r;
    return DV_OK;
}

static int d_hits(struct dec *d, struct msg_hits *h)
{
    int rc;
    if ((rc = d_list(d, &h->n, MIN_HIT, "hits")))
        return rc;
    h->hits = d_alloc(d, h->n, sizeof *h->hits);
    if (!h->hits)
        return fail(d, DV_ENOMEM, "hits");
    for (uint32_t i = 0; i < h->n; i++) {
        struct msg_hit *x = &h->hits[i];
        double score;
        memset(x, 0, sizeof *x);
        if ((rc = d_tuple(d, 4, "hit")))
            return rc;
        R(mpk_pid(&d->r, &x->id), "hit id");
        R(mpk_f64(&d->r, &score), "hit score");
        x->score = (float)score;
        if (mpk_peek(&d->r) == MPK_NIL) {
            R(mpk_nil(&d->r), "hit vector");
        } else {
            struct mpk save = d->r;
            const void *p;
            uint32_t len;
            R(mpk_bin(&save, &p, &len), "hit vector");
            if (len % 4 || len / 4 > PROTO_MAX_DIM)
                return fail(d, DV_ECORRUPT, "hit vector");
            x->dim = len / 4;
            if ((rc = d_floats(d, x->dim, &x->vec, "hit vector")))
                return rc;
        }
        if ((rc = d_bin_or_nil(d, &x->payload, "hit payload")))
            return rc;
    }
    return DV_OK;
}

static int d_error(struct dec *d, struct msg_error *e)
{
    int64_t code;
    int rc;
    if ((rc = d_tuple(d, 3, "error")))
        return rc;
    R(mpk_i64(&d->r, &code), "error code");
    if (!msg_code_known(code))
        return fail(d, DV_ERANGE, "error code");
    e->code = (int)code;
    if ((rc = d_str(d, &e->text, "error message")) || (rc = d_u64(d, &e->epoch, "error epoch")))
        return rc;
    return DV_OK;
}

static int d_query(struct dec *d, struct msg_query *q)
{
    const void *p;
    uint32_t len;
    int rc;
    if ((rc = d_tuple(d, 6, "query")))
        return rc;
    struct mpk save = d->r;
    R(mpk_bin(&save, &p, &len), "query vector");
    if (len % 4 || len / 4 > PROTO_MAX_DIM)
        return fail(d, DV_ECORRUPT, "query vector");
    q->dim = len / 4;
    if ((rc = d_floats(d, q->dim, &q->vec, "query vector")) || (rc = d_u32(d, &q->k, "query k")) ||
        (rc = d_u32(d, &q->ef, "query ef")) || (rc = d_raw_or_nil(d, &q->filter, "query filter")) ||
        (rc = d_bool(d, &q->with_payload, "query with_payload")) ||
        (rc = d_bool(d, &q->with_vector, "query with_vector")))
        return rc;
    return DV_OK;
}

static int d_queries(struct dec *d, struct msg_query **out, uint32_t *n)
{
    int rc;
    if ((rc = d_list(d, n, MIN_QUERY, "queries")))
        return rc;
    *out = d_alloc(d, *n, sizeof **out);
    if (!*out)
        return fail(d, DV_ENOMEM, "queries");
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = d_query(d, &(*out)[i])))
            return rc;
    return DV_OK;
}

static int d_node_report(struct dec *d, struct msg_node_report_req *r)
{
    int rc;
    if ((rc = d_str(d, &r->node_id, "node id")) || (rc = d_str(d, &r->url, "url")) ||
        (rc = d_str(d, &r->http_url, "http url")))
        return rc;
    R(mpk_f64(&d->r, &r->weight), "weight");
    if ((rc = d_u64(d, &r->capacity, "capacity")) ||
        (rc = d_list(d, &r->n, MIN_REPORT, "replicas")))
        return rc;
    r->replicas = d_alloc(d, r->n, sizeof *r->replicas);
    if (!r->replicas)
        return fail(d, DV_ENOMEM, "replicas");
    for (uint32_t i = 0; i < r->n; i++) {
        struct msg_replica_report *x = &r->replicas[i];
        uint32_t fields;
        /* 4 fields: a node that predates incarnations (read as 0) */
        R(mpk_array(&d->r, &fields), "replica");
        if (fields != 4 && fields != 5)
            return fail(d, DV_ECORRUPT, "replica");
        if ((rc = d_str(d, &x->coll, "replica collection")) ||
            (rc = d_u32(d, &x->part, "replica partition")) ||
            (rc = d_u64(d, &x->applied_lsn, "replica lsn")) ||
            (rc = d_u64(d, &x->points, "replica points")))
            return rc;
        x->incarnation = 0;
        if (fields == 5 && (rc = d_u64(d, &x->incarnation, "replica incarnation")))
            return rc;
    }
    return DV_OK;
}

/* The 8 fields of a replica create (7 when the sender predates incarnations). */
static int d_create(struct dec *d, struct msg_create_req *c, bool with_incarnation)
{
    int rc;
    if ((rc = d_u32(d, &c->dim, "dim")) || (rc = d_u32(d, &c->metric, "metric")) ||
        (rc = d_u32(d, &c->m, "m")) || (rc = d_u32(d, &c->ef_construction, "ef_construction")) ||
        (rc = d_u32(d, &c->ef_search, "ef_search")) || (rc = d_bool(d, &c->sq8, "sq8")) ||
        (rc = d_u32(d, &c->fsync, "fsync")))
        return rc;
    c->incarnation = 0;
    if (with_incarnation && (rc = d_u64(d, &c->incarnation, "incarnation")))
        return rc;
    return DV_OK;
}

static int d_request(struct dec *d)
{
    struct msg *m = d->m;
    int rc;
    uint32_t n;
    R(mpk_array(&d->r, &n), "body");
    /* A replica create without its last field (incarnation) comes from a sender that
     * predates it: read as incarnation 0. */
    bool no_incarnation = m->type == MSG_REPLICA_CREATE && n == msg_request_fields(m->type) - 1;
    if (n != msg_request_fields(m->type) && !no_incarnation)
        return fail(d, DV_ECORRUPT, "body length");
    if (msg_type_addressed(m->type)) {
        if ((rc = d_str(d, &m->addr.coll, "collection")) ||
            (rc = d_u32(d, &m->addr.part, "partition")) || (rc = d_u64(d, &m->addr.epoch, "epoch")))
            return rc;
    } else if (msg_type_collection(m->type)) {
        if ((rc = d_str(d, &m->addr.coll, "collection")))
            return rc;
    }
    switch (m->type) {
    case MSG_REPLICA_CREATE:
        return d_create(d, &m->u.create_req, !no_incarnation);
    case MSG_REPLICA_PULL: {
        struct msg_pull_req *p = &m->u.pull_req;
        if ((rc = d_u32(d, &p->op, "op")) || (rc = d_str(d, &p->source, "source")) ||
            (rc = d_u64(d, &p->rate, "rate")) || (rc = d_u64(d, &p->until_lsn, "until_lsn")))
            return rc;
        return d_create(d, &p->create, true);
    }
    case MSG_REPLICA_FENCE:
        return d_u32(d, &m->u.fence_req.op, "op");
    case MSG_ADMIN:
        if ((rc = d_str(d, &m->u.admin_req.op, "op")) ||
            (rc = d_raw_or_nil(d, &m->u.admin_req.args, "args")))
            return rc;
        return DV_OK;
    case MSG_COLL_CREATE:
        return d_coll_cfg(d, &m->u.coll_cfg);
    case MSG_UPSERT:
    case MSG_P_UPSERT: {
        struct msg_upsert_req *u = &m->u.upsert_req;
        uint32_t np;
        if ((rc = d_ids(d, &u->ids, &u->n, "ids")) || (rc = d_u32(d, &u->dim, "dim")))
            return rc;
        if (u->dim > PROTO_MAX_DIM)
            return fail(d, DV_ERANGE, "dim");
        if ((rc = d_floats(d, (uint64_t)u->n * u->dim, &u->vecs, "vectors")))
            return rc;
        if ((rc = d_list(d, &np, MIN_PAYLOAD, "payloads")))
            return rc;
        if (np != u->n)
            return fail(d, DV_ECORRUPT, "payload count");
        u->payloads = d_alloc(d, np, sizeof *u->payloads);
        if (!u->payloads)
            return fail(d, DV_ENOMEM, "payloads");
        for (uint32_t i = 0; i < np; i++)
            if ((rc = d_bin_or_nil(d, &u->payloads[i], "payload")))
                return rc;
        return DV_OK;
    }
    case MSG_DELETE:
    case MSG_P_DELETE:
        return d_ids(d, &m->u.delete_req.ids, &m->u.delete_req.n, "ids");
    case MSG_GET:
    case MSG_P_GET: {
        struct msg_get_req *g = &m->u.get_req;
        if ((rc = d_ids(d, &g->ids, &g->n, "ids")) ||
            (rc = d_bool(d, &g->with_vector, "with_vector")) ||
            (rc = d_bool(d, &g->with_payload, "with_payload")))
            return rc;
        return DV_OK;
    }
    case MSG_SET_PAYLOAD:
    case MSG_P_SET_PAYLOAD: {
        struct msg_set_payload_req *s = &m->u.set_payload_req;
        if ((rc = d_u32(d, &s->op, "op")) || (rc = d_ids(d, &s->ids, &s->n, "ids")) ||
            (rc = d_raw_or_nil(d, &s->data, "data")))
            return rc;
        return DV_OK;
    }
    case MSG_COUNT:
    case MSG_P_COUNT:
        return d_raw_or_nil(d, &m->u.count_req.filter, "filter");
    case MSG_SCROLL:
    case MSG_P_SCROLL: {
        struct msg_scroll_req *s = &m->u.scroll_req;
        s->has_from = mpk_peek(&d->r) != MPK_NIL;
        if (s->has_from)
            R(mpk_pid(&d->r, &s->from), "from");
        else
            R(mpk_nil(&d->r), "from");
        if ((rc = d_u32(d, &s->limit, "limit")) || (rc = d_raw_or_nil(d, &s->filter, "filter")) ||
            (rc = d_bool(d, &s->with_vector, "with_vector")) ||
            (rc = d_bool(d, &s->with_payload, "with_payload")))
            return rc;
        return DV_OK;
    }
    case MSG_SEARCH: {
        struct msg_search_req *s = &m->u.search_req;
        if ((rc = d_str(d, &m->addr.coll, "collection")))
            return rc;
        if ((rc = d_list(d, &s->n_parts, MIN_TARGET, "partitions")))
            return rc;
        s->parts = d_alloc(d, s->n_parts, sizeof *s->parts);
        if (!s->parts)
            return fail(d, DV_ENOMEM, "partitions");
        for (uint32_t i = 0; i < s->n_parts; i++)
            if ((rc = d_tuple(d, 2, "partition")) ||
                (rc = d_u32(d, &s->parts[i].part, "partition")) ||
                (rc = d_u64(d, &s->parts[i].epoch, "partition epoch")))
                return rc;
        return d_queries(d, &s->queries, &s->n_queries);
    }
    case MSG_P_SEARCH: {
        struct msg_csearch_req *s = &m->u.csearch_req;
        if ((rc = d_queries(d, &s->queries, &s->n_queries)) ||
            (rc = d_bool(d, &s->allow_partial, "allow_partial")) ||
            (rc = d_u32(d, &s->timeout_ms, "timeout_ms")))
            return rc;
        return DV_OK;
    }
    case MSG_SNAPSHOT_READ: {
        struct msg_snapshot_req *s = &m->u.snapshot_req;
        if ((rc = d_u64(d, &s->session, "session")) || (rc = d_u64(d, &s->offset, "offset")) ||
            (rc = d_u32(d, &s->max_bytes, "max_bytes")))
            return rc;
        return DV_OK;
    }
    case MSG_WAL_READ:
        if ((rc = d_u64(d, &m->u.wal_req.from, "from")) ||
            (rc = d_u32(d, &m->u.wal_req.max_bytes, "max_bytes")))
            return rc;
        return DV_OK;
    case MSG_PAYLOAD_INDEX:
    case MSG_P_INDEX: {
        struct msg_index_req *x = &m->u.index_req;
        if ((rc = d_u32(d, &x->op, "op")) || (rc = d_str(d, &x->key, "key")) ||
            (rc = d_u32(d, &x->kind, "kind")))
            return rc;
        return DV_OK;
    }
    case MSG_NODE_REPORT:
        return d_node_report(d, &m->u.node_report_req);
    case MSG_COORD_ADD:
        if ((rc = d_u64(d, &m->u.coord_req.id, "coordinator id")) ||
            (rc = d_str(d, &m->u.coord_req.raft_addr, "raft address")) ||
            (rc = d_str(d, &m->u.coord_req.client_url, "client url")))
            return rc;
        return DV_OK;
    case MSG_COORD_REMOVE:
        return d_u64(d, &m->u.coord_req.id, "coordinator id");
    default:
        return DV_OK;
    }
}

static int d_reply_body(struct dec *d)
{
    struct msg *m = d->m;
    int rc;
    switch (m->type) {
    case MSG_HELLO: {
        struct msg_hello_rep *h = &m->u.hello_rep;
        if ((rc = d_tuple(d, 4, "body")) || (rc = d_str(d, &h->node_id, "node id")) ||
            (rc = d_str(d, &h->version, "version")) || (rc = d_u64(d, &h->capacity, "capacity")))
            return rc;
        return d_replicas(d, &h->replicas, &h->n_replicas);
    }
    case MSG_REPLICA_LIST:
        if ((rc = d_tuple(d, 1, "body")))
            return rc;
        return d_replicas(d, &m->u.list_rep.replicas, &m->u.list_rep.n);
    case MSG_REPLICA_INFO: {
        struct msg_info_rep *f = &m->u.info_rep;
        uint32_t *u32s[] = {&f->dim, &f->metric, &f->m, &f->ef_construction, &f->ef_search};
        uint64_t *u64s[] = {&f->points,   &f->deleted,   &f->applied_lsn,  &f->durable_lsn,
                            &f->ckpt_lsn, &f->wal_bytes, &f->payload_bytes};
        if ((rc = d_tuple(d, 13, "body")))
            return rc;
        for (size_t i = 0; i < 5; i++)
            if ((rc = d_u32(d, u32s[i], "info")))
                return rc;
        for (size_t i = 0; i < 7; i++)
            if ((rc = d_u64(d, u64s[i], "info")))
                return rc;
        return d_bool(d, &f->sq8, "sq8");
    }
    case MSG_UPSERT:
    case MSG_DELETE:
    case MSG_SET_PAYLOAD:
    case MSG_PAYLOAD_INDEX:
    case MSG_REPLICA_FENCE:
    case MSG_P_UPSERT:
    case MSG_P_DELETE:
    case MSG_P_SET_PAYLOAD:
    case MSG_P_INDEX:
        if ((rc = d_tuple(d, 2, "body")) || (rc = d_u64(d, &m->u.write_rep.lsn, "lsn")) ||
            (rc = d_u64(d, &m->u.write_rep.affected, "affected")))
            return rc;
        return DV_OK;
    case MSG_GET:
    case MSG_P_GET:
        if ((rc = d_tuple(d, 1, "body")))
            return rc;
        return d_hits(d, &m->u.get_rep);
    case MSG_COUNT:
    case MSG_P_COUNT:
        if ((rc = d_tuple(d, 1, "body")))
            return rc;
        return d_u64(d, &m->u.count_rep.count, "count");
    case MSG_SCROLL:
    case MSG_P_SCROLL: {
        struct msg_scroll_rep *s = &m->u.scroll_rep;
        if ((rc = d_tuple(d, 2, "body")) || (rc = d_hits(d, &s->hits)))
            return rc;
        s->more = mpk_peek(&d->r) != MPK_NIL;
        if (s->more)
            R(mpk_pid(&d->r, &s->next), "next");
        else
            R(mpk_nil(&d->r), "next");
        return DV_OK;
    }
    case MSG_SEARCH: {
        struct msg_search_rep *s = &m->u.search_rep;
        if ((rc = d_tuple(d, 1, "body")))
            return rc;
        if ((rc = d_list(d, &s->n_parts, MIN_PART, "partitions")))
            return rc;
        s->parts = d_alloc(d, s->n_parts, sizeof *s->parts);
        if (!s->parts)
            return fail(d, DV_ENOMEM, "partitions");
        for (uint32_t i = 0; i < s->n_parts; i++) {
            struct msg_search_part *sp = &s->parts[i];
            memset(sp, 0, sizeof *sp);
            if ((rc = d_tuple(d, 3, "partition result")) || (rc = d_u32(d, &sp->part, "partition")))
                return rc;
            if (mpk_peek(&d->r) == MPK_NIL)
                R(mpk_nil(&d->r), "partition error");
            else if ((rc = d_error(d, &sp->err)))
                return rc;
            if ((rc = d_list(d, &sp->n, MIN_HITS, "results")))
                return rc;
            if (sp->err.code && sp->n)
                return fail(d, DV_ECORRUPT, "results");
            sp->results = d_alloc(d, sp->n, sizeof *sp->results);
            if (!sp->results)
                return fail(d, DV_ENOMEM, "results");
            for (uint32_t j = 0; j < sp->n; j++)
                if ((rc = d_hits(d, &sp->results[j])))
                    return rc;
        }
        return DV_OK;
    }
    case MSG_STATS: {
        struct msg_stats_rep *s = &m->u.stats_rep;
        if ((rc = d_tuple(d, 1, "body")))
            return rc;
        if ((rc = d_list(d, &s->n, MIN_STAT, "stats")))
            return rc;
        s->stats = d_alloc(d, s->n, sizeof *s->stats);
        if (!s->stats)
            return fail(d, DV_ENOMEM, "stats");
        for (uint32_t i = 0; i < s->n; i++)
            if ((rc = d_tuple(d, 2, "stat")) || (rc = d_str(d, &s->stats[i].name, "stat name")) ||
                (rc = d_u64(d, &s->stats[i].value, "stat value")))
                return rc;
        return DV_OK;
    }
    case MSG_SNAPSHOT_READ: {
        struct msg_snapshot_rep *s = &m->u.snapshot_rep;
        if ((rc = d_tuple(d, 5, "body")) || (rc = d_u64(d, &s->session, "session")) ||
            (rc = d_u64(d, &s->lsn, "lsn")) || (rc = d_u64(d, &s->total, "total")) ||
            (rc = d_bin(d, &s->data, "data")) || (rc = d_bool(d, &s->done, "done")))
            return rc;
        return DV_OK;
    }
    case MSG_WAL_READ: {
        struct msg_wal_rep *w = &m->u.wal_rep;
        if ((rc = d_tuple(d, 2, "body")) || (rc = d_list(d, &w->n, MIN_WAL_REC, "records")))
            return rc;
        w->recs = d_alloc(d, w->n, sizeof *w->recs);
        if (!w->recs)
            return fail(d, DV_ENOMEM, "records");
        for (uint32_t i = 0; i < w->n; i++)
            if ((rc = d_tuple(d, 3, "record")) || (rc = d_u64(d, &w->recs[i].lsn, "record lsn")) ||
                (rc = d_u32(d, &w->recs[i].type, "record type")) ||
                (rc = d_bin(d, &w->recs[i].body, "record body")))
                return rc;
        return d_u64(d, &w->applied_lsn, "applied_lsn");
    }
    case MSG_COLL_LIST:
        if ((rc = d_tuple(d, 1, "body")))
            return rc;
        return d_strs(d, &m->u.coll_list_rep.names, &m->u.coll_list_rep.n, "names");
    case MSG_COLL_INFO: {
        struct msg_coll_info_rep *f = &m->u.coll_info_rep;
        if ((rc = d_tuple(d, 11, "body")) || (rc = d_coll_cfg(d, &f->cfg)) ||
            (rc = d_u64(d, &f->points, "points")) ||
            (rc = d_list(d, &f->n_parts, MIN_COLL_PART, "partition list")))
            return rc;
        f->parts = d_alloc(d, f->n_parts, sizeof *f->parts);
        if (!f->parts)
            return fail(d, DV_ENOMEM, "partition list");
        for (uint32_t i = 0; i < f->n_parts; i++) {
            struct msg_coll_part *p = &f->parts[i];
            if ((rc = d_tuple(d, 4, "partition")) || (rc = d_u32(d, &p->part, "partition")) ||
                (rc = d_u64(d, &p->epoch, "partition epoch")) ||
                (rc = d_strs(d, &p->nodes, &p->n_nodes, "partition nodes")) ||
                (rc = d_u64(d, &p->points, "partition points")))
                return rc;
        }
        return DV_OK;
    }
    case MSG_P_SEARCH: {
        struct msg_csearch_rep *s = &m->u.csearch_rep;
        if ((rc = d_tuple(d, 3, "body")) || (rc = d_list(d, &s->n, MIN_HITS, "results")))
            return rc;
        s->results = d_alloc(d, s->n, sizeof *s->results);
        if (!s->results)
            return fail(d, DV_ENOMEM, "results");
        for (uint32_t i = 0; i < s->n; i++)
            if ((rc = d_hits(d, &s->results[i])))
                return rc;
        if ((rc = d_bool(d, &s->partial, "partial")) ||
            (rc = d_list(d, &s->n_failed, MIN_U32, "failed partitions")))
            return rc;
        s->failed = d_alloc(d, s->n_failed, sizeof *s->failed);
        if (!s->failed)
            return fail(d, DV_ENOMEM, "failed partitions");
        for (uint32_t i = 0; i < s->n_failed; i++)
            if ((rc = d_u32(d, &s->failed[i], "failed partition")))
                return rc;
        return DV_OK;
    }
    case MSG_CLUSTER:
    case MSG_ADMIN:
        if ((rc = d_tuple(d, 1, "body")))
            return rc;
        return d_raw_or_nil(d, &m->u.cluster_rep.status, "status");
    case MSG_REPLICA_PULL: {
        struct msg_pull_rep *p = &m->u.pull_rep;
        if ((rc = d_tuple(d, 6, "body")) || (rc = d_u32(d, &p->state, "state")) ||
            (rc = d_u64(d, &p->bytes_done, "bytes_done")) ||
            (rc = d_u64(d, &p->bytes_total, "bytes_total")) ||
            (rc = d_u64(d, &p->applied_lsn, "applied_lsn")) ||
            (rc = d_u64(d, &p->source_lsn, "source_lsn")) || (rc = d_str(d, &p->error, "error")))
            return rc;
        return DV_OK;
    }
    case MSG_NODE_REPORT: {
        struct msg_node_report_rep *r = &m->u.node_report_rep;
        if ((rc = d_tuple(d, 2, "body")) || (rc = d_u64(d, &r->map_epoch, "map_epoch")) ||
            (rc = d_str(d, &r->leader_url, "leader_url")))
            return rc;
        return DV_OK;
    }
    default: /* create, drop, coll_create, coll_drop */
        return d_tuple(d, 0, "body");
    }
}

static int d_msg(struct dec *d)
{
    struct msg *m = d->m;
    uint32_t n, type, reply;
    uint64_t version;
    int rc;
    R(mpk_array(&d->r, &n), "envelope");
    if (n < 1)
        return fail(d, DV_ECORRUPT, "envelope");
    R(mpk_u64(&d->r, &version), "version");
    if (version != PROTO_VERSION) {
        dv_errmsg_set(d->errmsg, "msg: protocol version %llu, this build speaks version %d",
                      (unsigned long long)version, PROTO_VERSION);
        return DV_EPROTO;
    }
    if (n != 5 && n != 6) {
        dv_errmsg_set(d->errmsg, "msg: envelope has %u elements, expected 5 (request) or 6 (reply)",
                      n);
        return DV_EPROTO;
    }
    if ((rc = d_u32(d, &type, "type")))
        return rc;
    if (type >= MSG_TYPE_COUNT || !msg_type_known((int)type)) {
        dv_errmsg_set(d->errmsg, "msg: unknown message type %u", type);
        return DV_EPROTO;
    }
    m->type = (int)type;
    d->typed = true;
    if ((rc = d_u32(d, &reply, "kind")) || (rc = d_u64(d, &m->req_id, "request id")))
        return rc;
    if (reply > 1 || n != (reply ? 6 : 5) || (type == MSG_ERROR && !reply)) {
        dv_errmsg_set(d->errmsg,
                      "msg: envelope of %s: kind %u with %u elements (a request is kind 0 with "
                      "5, a reply kind 1 with 6; type 0 is only a reply)",
                      msg_type_name(m->type), reply, n);
        return DV_EPROTO;
    }
    m->reply = reply;
    if (!reply)
        return d_request(d);
    if (mpk_peek(&d->r) != MPK_NIL) {
        if ((rc = d_error(d, &m->err)))
            return rc;
        R(mpk_nil(&d->r), "body");
        return DV_OK;
    }
    R(mpk_nil(&d->r), "error");
    if (type == MSG_ERROR)
        return fail(d, DV_ECORRUPT, "error");
    return d_reply_body(d);
}

int msg_decode(const void *p, size_t n, struct msg *m, char *errmsg)
{
    memset(m, 0, sizeof *m);
    if (n > PROTO_MAX_MSG) {
        dv_errmsg_set(errmsg, "msg: message of %zu bytes exceeds the maximum of %u", n,
                      PROTO_MAX_MSG);
        return DV_ETOOBIG;
    }
    struct dec d = {.m = m, .errmsg = errmsg};
    mpk_init(&d.r, p, n);
    int rc = d_msg(&d);
    if (rc == DV_OK && !mpk_done(&d.r)) {
        dv_errmsg_set(errmsg, "msg: %zu trailing bytes after the message",
                      (size_t)(d.r.end - d.r.p));
        rc = DV_EPROTO;
    }
    if (rc != DV_OK)
        msg_free(m);
    return rc;
}

void msg_free(struct msg *m)
{
    union arena_hdr *h = m->arena_;
    while (h) {
        union arena_hdr *next = h->next;
        free(h);
        h = next;
    }
    memset(m, 0, sizeof *m);
}

void msg_reply_free(struct msg_reply *rep)
{
    if (rep->free_) {
        rep->free_(rep->mem_);
    } else {
        msg_free(&rep->m);
        free(rep->mem_);
    }
    rep->mem_ = NULL;
    rep->free_ = NULL;
    memset(&rep->m, 0, sizeof rep->m);
}
