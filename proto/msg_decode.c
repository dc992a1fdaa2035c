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
    struct mpk_dec k; /* first: msg_fail gets back to the struct dec from it */
    struct msg *m;
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

/* The mpk_dec failure hook: DV_EPROTO naming the message type and the field (DV_ENOMEM
 * passes through). */
static int msg_fail(struct mpk_dec *k, int rc, const char *field)
{
    struct dec *d = (struct dec *)k;
    if (rc == DV_ENOMEM) {
        dv_errmsg_set(k->errmsg, "msg: %s: out of memory", field);
        return rc;
    }
    const char *why = rc == DV_ETYPE      ? "wrong msgpack type"
                      : rc == DV_ECORRUPT ? "malformed or truncated msgpack"
                                          : dv_strerror(rc);
    if (d->typed)
        dv_errmsg_set(k->errmsg, "msg: %s %s: %s (%zu bytes left)", msg_type_name(d->m->type),
                      field, why, mpk_dec_left(k));
    else
        dv_errmsg_set(k->errmsg,
                      "msg: %s: %s (%zu bytes left); a message is [version, type, kind, "
                      "request id, ...]",
                      field, why, mpk_dec_left(k));
    return DV_EPROTO;
}

static int fail(struct dec *d, int rc, const char *field)
{
    return mpk_dec_fail(&d->k, rc, field);
}

#define R(x, field)                                                                                \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            return fail(d, rc, field);                                                             \
    } while (0)

/* For mpk_dec_* calls, which have reported the failure already. */
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            return rc;                                                                             \
    } while (0)

static int d_str(struct dec *d, struct msg_str *s, const char *field)
{
    return mpk_dec_str(&d->k, &s->p, &s->len, field);
}

/*
 * The smallest encoding of one element of each list, used to bound a declared count by the
 * bytes left before allocating for it (mpk_array alone allows one byte per element, and a
 * decoded element takes up to 64 bytes of memory).
 */
enum {
    MIN_ID = 1,         /* a positive fixint */
    MIN_PAYLOAD = 1,    /* nil */
    MIN_REPLICA = 4,    /* [coll "", part, lsn] */
    MIN_HIT = 5,        /* [id, score, nil, nil] */
    MIN_HITS = 1,       /* [] */
    MIN_TARGET = 3,     /* [part, epoch] */
    MIN_QUERY = 8,      /* [bin8 "", k, ef, nil, false, false] */
    MIN_PART = 4,       /* [part, nil, []] */
    MIN_STAT = 3,       /* [name "", value] */
    MIN_WAL_REC = 5,    /* [lsn, type, bin8 ""] */
    MIN_NAME = 1,       /* "" */
    MIN_U32 = 1,        /* a positive fixint */
    MIN_COLL_PART = 5,  /* [part, epoch, [], points] */
    MIN_REPORT = 5,     /* [coll "", part, lsn, points] */
    MIN_PEER = 3,       /* [id "", url ""] */
    MIN_PEER_FAIL = 4,  /* [id "", code, text ""] */
    MIN_TERM = 3,       /* [term, start] */
    MIN_ROUTE_PART = 7, /* [epoch, term, nil, [], false, []] */
    MIN_NVEC = 5,       /* [name "", n, bin8 "", nil] */
    MIN_NVECS = 1,      /* [] */
    MIN_VSPACE = 9,     /* [name "", kind, dim, metric, m, ef_construction, sq8, idf] */
};

static int d_bin(struct dec *d, struct msg_bytes *v, const char *field)
{
    const void *p;
    int rc = mpk_dec_bin(&d->k, &p, &v->len, field);
    v->p = rc == DV_OK ? p : v->p;
    return rc;
}

static int d_bin_or_nil(struct dec *d, struct msg_bytes *v, const char *field)
{
    const void *p;
    int rc = mpk_dec_bin_or_nil(&d->k, &p, &v->len, field);
    v->p = p;
    return rc;
}

static int d_raw_or_nil(struct dec *d, struct msg_bytes *v, const char *field)
{
    return mpk_dec_raw_or_nil(&d->k, &v->p, &v->len, field);
}

/* A bin of exactly `count` little-endian float32 (count == UINT32_MAX + 1 or more is an
 * error), copied into aligned memory; *out is NULL when count is 0. */
static int d_floats(struct dec *d, uint64_t count, float **out, const char *field)
{
    const void *p;
    uint32_t len;
    int rc;
    TRY(mpk_dec_bin(&d->k, &p, &len, field));
    if (count > PROTO_MAX_MSG / 4 || len != count * 4) {
        dv_errmsg_set(d->k.errmsg, "msg: %s %s: vector bin holds %u bytes, expected %llu",
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
    if ((rc = mpk_dec_list(&d->k, n, MIN_ID, UINT32_MAX, field)))
        return rc;
    *ids = d_alloc(d, *n, sizeof **ids);
    if (!*ids)
        return fail(d, DV_ENOMEM, field);
    for (uint32_t i = 0; i < *n; i++)
        TRY(mpk_dec_pid(&d->k, &(*ids)[i], field));
    return DV_OK;
}

/* A list of strings (names, node ids). */
static int d_strs(struct dec *d, struct msg_str **out, uint32_t *n, const char *field)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_NAME, UINT32_MAX, field)))
        return rc;
    *out = d_alloc(d, *n, sizeof **out);
    if (!*out)
        return fail(d, DV_ENOMEM, field);
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = d_str(d, &(*out)[i], field)))
            return rc;
    return DV_OK;
}

/* The collection config (see w_coll_cfg); without placement, partitions and replication
 * read as 0. */
static int d_coll_cfg(struct dec *d, struct msg_coll_cfg *c, bool with_placement)
{
    int rc;
    c->n_spaces = 0; /* an optional last field of the message sets them */
    if ((rc = mpk_dec_u32(&d->k, &c->dim, "dim")) ||
        (rc = mpk_dec_u32(&d->k, &c->metric, "metric")) || (rc = mpk_dec_u32(&d->k, &c->m, "m")) ||
        (rc = mpk_dec_u32(&d->k, &c->ef_construction, "ef_construction")) ||
        (rc = mpk_dec_u32(&d->k, &c->ef_search, "ef_search")) ||
        (rc = mpk_dec_bool(&d->k, &c->sq8, "sq8")) || (rc = mpk_dec_u32(&d->k, &c->fsync, "fsync")))
        return rc;
    c->partitions = c->replication = 0;
    if (with_placement && ((rc = mpk_dec_u32(&d->k, &c->partitions, "partitions")) ||
                           (rc = mpk_dec_u32(&d->k, &c->replication, "replication"))))
        return rc;
    return DV_OK;
}

/* A bin of a float count not known ahead (a multiple of 4 bytes, at most max floats). */
static int d_floats_any(struct dec *d, uint32_t max, float **out, uint32_t *count,
                        const char *field)
{
    struct mpk save = d->k.r;
    const void *p;
    uint32_t len;
    int rc;
    R(mpk_bin(&save, &p, &len), field);
    if (len % 4 || len / 4 > max)
        return fail(d, DV_ECORRUPT, field);
    *count = len / 4;
    return d_floats(d, *count, out, field);
}

/* A bin of exactly n uint32 (little-endian), copied into aligned memory. */
static int d_u32_bin(struct dec *d, uint32_t n, uint32_t **out, const char *field)
{
    const void *p;
    uint32_t len;
    int rc = mpk_dec_bin(&d->k, &p, &len, field);
    if (rc != DV_OK)
        return rc;
    if ((uint64_t)len != (uint64_t)n * 4)
        return fail(d, DV_ECORRUPT, field);
    *out = d_alloc(d, n ? n : 1, sizeof **out);
    if (!*out)
        return fail(d, DV_ENOMEM, field);
    memcpy(*out, p, len);
    return DV_OK;
}

/* A point's named vectors (msg.c's w_nvecs). */
static int d_nvecs(struct dec *d, struct msg_nvecs *nv)
{
    int rc;
    TRY(mpk_dec_list(&d->k, &nv->n, MIN_NVEC, PROTO_MAX_VECTORS, "named vectors"));
    nv->v = d_alloc(d, nv->n ? nv->n : 1, sizeof *nv->v);
    if (!nv->v)
        return fail(d, DV_ENOMEM, "named vectors");
    for (uint32_t i = 0; i < nv->n; i++) {
        struct msg_nvec *v = &nv->v[i];
        memset(v, 0, sizeof *v);
        TRY(mpk_dec_tuple(&d->k, 4, "named vector"));
        TRY(d_str(d, &v->name, "vector name"));
        TRY(mpk_dec_u32(&d->k, &v->n, "vector length"));
        TRY(d_floats_any(d, PROTO_MAX_VECTOR_FLOATS, &v->v, &v->nv, "vector values"));
        if (mpk_peek(&d->k.r) == MPK_NIL)
            TRY(mpk_dec_nil(&d->k, "vector terms"));
        else
            TRY(d_u32_bin(d, v->n, &v->idx, "vector terms"));
    }
    return DV_OK;
}

/* A collection's named vectors (msg.c's w_spaces). */
static int d_spaces(struct dec *d, struct msg_coll_cfg *c)
{
    int rc;
    TRY(mpk_dec_list(&d->k, &c->n_spaces, MIN_VSPACE, PROTO_MAX_VECTORS, "named vectors"));
    for (uint32_t i = 0; i < c->n_spaces; i++) {
        struct msg_vspace *v = &c->spaces[i];
        struct msg_str name;
        TRY(mpk_dec_tuple(&d->k, 8, "named vector"));
        TRY(d_str(d, &name, "vector name"));
        if (name.len > PROTO_MAX_VNAME || memchr(name.p, 0, name.len) != NULL)
            return fail(d, DV_ERANGE, "vector name");
        memcpy(v->name, name.p, name.len);
        v->name[name.len] = '\0';
        TRY(mpk_dec_u32(&d->k, &v->kind, "vector kind"));
        TRY(mpk_dec_u32(&d->k, &v->dim, "vector dim"));
        TRY(mpk_dec_u32(&d->k, &v->metric, "vector metric"));
        TRY(mpk_dec_u32(&d->k, &v->m, "vector m"));
        TRY(mpk_dec_u32(&d->k, &v->ef_construction, "vector ef_construction"));
        TRY(mpk_dec_bool(&d->k, &v->sq8, "vector sq8"));
        TRY(mpk_dec_bool(&d->k, &v->idf, "vector idf"));
    }
    return DV_OK;
}

/* The partitions a search or sparse_stats names: [[partition, epoch]...]. */
static int d_targets(struct dec *d, struct msg_target **out, uint32_t *n)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_TARGET, UINT32_MAX, "partitions")))
        return rc;
    struct msg_target *t = d_alloc(d, *n, sizeof *t);
    if (!t)
        return fail(d, DV_ENOMEM, "partitions");
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = mpk_dec_tuple(&d->k, 2, "partition")) ||
            (rc = mpk_dec_u32(&d->k, &t[i].part, "partition")) ||
            (rc = mpk_dec_u64(&d->k, &t[i].epoch, "partition epoch")))
            return rc;
    *out = t;
    return DV_OK;
}

static int d_replicas(struct dec *d, struct msg_replica **out, uint32_t *n)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_REPLICA, UINT32_MAX, "replicas")))
        return rc;
    struct msg_replica *r = d_alloc(d, *n, sizeof *r);
    if (!r)
        return fail(d, DV_ENOMEM, "replicas");
    for (uint32_t i = 0; i < *n; i++) {
        if ((rc = mpk_dec_tuple(&d->k, 3, "replica")) ||
            (rc = d_str(d, &r[i].coll, "replica collection")) ||
            (rc = mpk_dec_u32(&d->k, &r[i].part, "replica partition")) ||
            (rc = mpk_dec_u64(&d->k, &r[i].applied_lsn, "replica lsn")))
            return rc;
    }
    *out = r;
    return DV_OK;
}

static int d_hits(struct dec *d, struct msg_hits *h)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, &h->n, MIN_HIT, UINT32_MAX, "hits")))
        return rc;
    h->hits = d_alloc(d, h->n, sizeof *h->hits);
    if (!h->hits)
        return fail(d, DV_ENOMEM, "hits");
    for (uint32_t i = 0; i < h->n; i++) {
        struct msg_hit *x = &h->hits[i];
        double score;
        uint32_t na;
        memset(x, 0, sizeof *x);
        R(mpk_array(&d->k.r, &na), "hit");
        if (na != 4 && na != 5)
            return fail(d, DV_ECORRUPT, "hit");
        TRY(mpk_dec_pid(&d->k, &x->id, "hit id"));
        TRY(mpk_dec_f64(&d->k, &score, "hit score"));
        x->score = (float)score;
        if (mpk_peek(&d->k.r) == MPK_NIL) {
            TRY(mpk_dec_nil(&d->k, "hit vector"));
        } else {
            struct mpk save = d->k.r;
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
        if (na == 5 && (rc = d_nvecs(d, &x->named)))
            return rc;
    }
    return DV_OK;
}

static int d_error(struct dec *d, struct msg_error *e)
{
    int64_t code;
    int rc;
    if ((rc = mpk_dec_tuple(&d->k, 3, "error")))
        return rc;
    TRY(mpk_dec_i64(&d->k, &code, "error code"));
    if (!msg_code_known(code))
        return fail(d, DV_ERANGE, "error code");
    e->code = (int)code;
    if ((rc = d_str(d, &e->text, "error message")) ||
        (rc = mpk_dec_u64(&d->k, &e->epoch, "error epoch")))
        return rc;
    return DV_OK;
}

/* WAL records [[lsn, type, bin body], ...] (a WAL read's reply, a replicate request). */
static int d_wal_recs(struct dec *d, struct msg_wal_rec **out, uint32_t *n)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_WAL_REC, UINT32_MAX, "records")))
        return rc;
    struct msg_wal_rec *recs = d_alloc(d, *n, sizeof *recs);
    if (!recs)
        return fail(d, DV_ENOMEM, "records");
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = mpk_dec_tuple(&d->k, 3, "record")) ||
            (rc = mpk_dec_u64(&d->k, &recs[i].lsn, "record lsn")) ||
            (rc = mpk_dec_u32(&d->k, &recs[i].type, "record type")) ||
            (rc = d_bin(d, &recs[i].body, "record body")))
            return rc;
    *out = recs;
    return DV_OK;
}

/* The secondaries at the end of a replicated write request. */
/* A route's node index: below n_nodes (DV_ERANGE otherwise). */
static int d_node_index(struct dec *d, uint32_t n_nodes, uint32_t *out, const char *field)
{
    int rc;
    if ((rc = mpk_dec_u32(&d->k, out, field)))
        return rc;
    return *out < n_nodes ? DV_OK : fail(d, DV_ERANGE, field);
}

static int d_node_indexes(struct dec *d, uint32_t n_nodes, uint32_t **out, uint32_t *n,
                          const char *field)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_U32, PROTO_MAX_REPLICAS, field)))
        return rc;
    if (!(*out = d_alloc(d, *n, sizeof **out)))
        return fail(d, DV_ENOMEM, field);
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = d_node_index(d, n_nodes, &(*out)[i], field)))
            return rc;
    return DV_OK;
}

static int d_secondaries(struct dec *d, struct msg *m)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, &m->n_secondaries, MIN_PEER, PROTO_MAX_REPLICAS, "secondaries")))
        return rc;
    m->secondaries = d_alloc(d, m->n_secondaries, sizeof *m->secondaries);
    if (!m->secondaries)
        return fail(d, DV_ENOMEM, "secondaries");
    for (uint32_t i = 0; i < m->n_secondaries; i++)
        if ((rc = mpk_dec_tuple(&d->k, 2, "secondary")) ||
            (rc = d_str(d, &m->secondaries[i].node_id, "secondary node id")) ||
            (rc = d_str(d, &m->secondaries[i].url, "secondary url")))
            return rc;
    return DV_OK;
}

static int d_query(struct dec *d, struct msg_query *q)
{
    const void *p;
    uint32_t len, na;
    int rc;
    memset(q, 0, sizeof *q);
    R(mpk_array(&d->k.r, &na), "query");
    if (na != 6 && na != 7)
        return fail(d, DV_ECORRUPT, "query");
    struct mpk save = d->k.r;
    R(mpk_bin(&save, &p, &len), "query vector");
    if (len % 4 || len / 4 > PROTO_MAX_DIM)
        return fail(d, DV_ECORRUPT, "query vector");
    q->dim = len / 4;
    if ((rc = d_floats(d, q->dim, &q->vec, "query vector")) ||
        (rc = mpk_dec_u32(&d->k, &q->k, "query k")) ||
        (rc = mpk_dec_u32(&d->k, &q->ef, "query ef")) ||
        (rc = d_raw_or_nil(d, &q->filter, "query filter")) ||
        (rc = mpk_dec_bool(&d->k, &q->with_payload, "query with_payload")) ||
        (rc = mpk_dec_bool(&d->k, &q->with_vector, "query with_vector")))
        return rc;
    if (na == 6)
        return DV_OK;
    /* [using, terms | nil, rows, [docs, bin(term counts)] | nil, [vector names]] */
    TRY(mpk_dec_tuple(&d->k, 5, "query named vector"));
    TRY(d_str(d, &q->using, "query using"));
    if (mpk_peek(&d->k.r) == MPK_NIL)
        TRY(mpk_dec_nil(&d->k, "query terms"));
    else
        TRY(d_u32_bin(d, q->dim, &q->idx, "query terms"));
    TRY(mpk_dec_u32(&d->k, &q->rows, "query rows"));
    if (q->rows > 0 && q->dim % q->rows != 0)
        return fail(d, DV_ECORRUPT, "query rows");
    if (mpk_peek(&d->k.r) == MPK_NIL) {
        TRY(mpk_dec_nil(&d->k, "query idf"));
    } else {
        const void *p2;
        uint32_t l2;
        TRY(mpk_dec_tuple(&d->k, 2, "query idf"));
        TRY(mpk_dec_u64(&d->k, &q->idf_docs, "query idf docs"));
        TRY(mpk_dec_bin(&d->k, &p2, &l2, "query idf counts"));
        if ((uint64_t)l2 != (uint64_t)q->dim * 8)
            return fail(d, DV_ECORRUPT, "query idf counts");
        q->idf_df = d_alloc(d, q->dim ? q->dim : 1, sizeof *q->idf_df);
        if (!q->idf_df)
            return fail(d, DV_ENOMEM, "query idf counts");
        memcpy(q->idf_df, p2, l2);
    }
    return d_strs(d, &q->vec_names, &q->n_vec_names, "query vector names");
}

static int d_queries(struct dec *d, struct msg_query **out, uint32_t *n)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_QUERY, UINT32_MAX, "queries")))
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
    TRY(mpk_dec_f64(&d->k, &r->weight, "weight"));
    if ((rc = mpk_dec_u64(&d->k, &r->capacity, "capacity")) ||
        (rc = mpk_dec_list(&d->k, &r->n, MIN_REPORT, UINT32_MAX, "replicas")))
        return rc;
    r->replicas = d_alloc(d, r->n, sizeof *r->replicas);
    if (!r->replicas)
        return fail(d, DV_ENOMEM, "replicas");
    for (uint32_t i = 0; i < r->n; i++) {
        struct msg_replica_report *x = &r->replicas[i];
        uint32_t fields;
        /* 4 fields: a node that predates incarnations (read as 0) */
        R(mpk_array(&d->k.r, &fields), "replica");
        if (fields != 4 && fields != 5)
            return fail(d, DV_ECORRUPT, "replica");
        if ((rc = d_str(d, &x->coll, "replica collection")) ||
            (rc = mpk_dec_u32(&d->k, &x->part, "replica partition")) ||
            (rc = mpk_dec_u64(&d->k, &x->applied_lsn, "replica lsn")) ||
            (rc = mpk_dec_u64(&d->k, &x->points, "replica points")))
            return rc;
        x->incarnation = 0;
        if (fields == 5 && (rc = mpk_dec_u64(&d->k, &x->incarnation, "replica incarnation")))
            return rc;
    }
    return DV_OK;
}

/* The 8 fields of a replica create (7 when the sender predates incarnations). */
static int d_create(struct dec *d, struct msg_create_req *c, bool with_incarnation)
{
    int rc;
    if ((rc = d_coll_cfg(d, &c->cfg, false)))
        return rc;
    c->incarnation = 0;
    if (with_incarnation && (rc = mpk_dec_u64(&d->k, &c->incarnation, "incarnation")))
        return rc;
    return DV_OK;
}

static int d_request_body(struct dec *d, bool no_incarnation);

static int d_request(struct dec *d)
{
    struct msg *m = d->m;
    int rc;
    uint32_t n;
    R(mpk_array(&d->k.r, &n), "body");
    /* A replica create without its last field (incarnation) comes from a sender that
     * predates it: read as incarnation 0. */
    bool no_incarnation = m->type == MSG_REPLICA_CREATE && n == msg_request_fields(m->type) - 1;
    /* A client read with one more field: its read consistency. */
    bool consistency = msg_type_consistent_read(m->type) && n == msg_request_fields(m->type) + 1;
    /* A node report with one more field: its flags; two more: its flags and search port. */
    bool search = m->type == MSG_NODE_REPORT && n == msg_request_fields(m->type) + 2;
    bool flags = m->type == MSG_NODE_REPORT && (n == msg_request_fields(m->type) + 1 || search);
    /* Upserts and vector updates with one more field: the points' named vectors; coll_create
     * and replica create: the collection's named vectors. */
    int t = m->type;
    bool named = (t == MSG_UPSERT || t == MSG_P_UPSERT || t == MSG_UPDATE_VECTORS ||
                  t == MSG_P_UPDATE_VECTORS) &&
                 n == msg_request_fields(t) + 1;
    bool spaces =
        (t == MSG_COLL_CREATE || t == MSG_REPLICA_CREATE) && n == msg_request_fields(t) + 1;
    /* A payload index with one more field: its params. */
    bool iparams = (t == MSG_PAYLOAD_INDEX || t == MSG_P_INDEX) && n == msg_request_fields(t) + 1;
    if (n != msg_request_fields(m->type) && !no_incarnation && !consistency && !flags && !named &&
        !spaces && !iparams)
        return fail(d, DV_ECORRUPT, "body length");
    if (msg_type_addressed(m->type)) {
        if ((rc = d_str(d, &m->addr.coll, "collection")) ||
            (rc = mpk_dec_u32(&d->k, &m->addr.part, "partition")) ||
            (rc = mpk_dec_u64(&d->k, &m->addr.epoch, "epoch")) ||
            (rc = mpk_dec_u64(&d->k, &m->addr.term, "term")))
            return rc;
    } else if (msg_type_collection(m->type)) {
        if ((rc = d_str(d, &m->addr.coll, "collection")))
            return rc;
    }
    if ((rc = d_request_body(d, no_incarnation)))
        return rc;
    if (flags && (rc = mpk_dec_u64(&d->k, &m->u.node_report_req.flags, "report flags")))
        return rc;
    if (search && (rc = d_str(d, &m->u.node_report_req.search_url, "search url")))
        return rc;
    if (consistency) {
        if ((rc = mpk_dec_u32(&d->k, &m->read_consistency, "read consistency")))
            return rc;
        if (m->read_consistency == 0 ||
            (m->read_consistency > PROTO_MAX_RF && m->read_consistency < MSG_READ_MAJORITY) ||
            m->read_consistency > MSG_READ_ALL)
            return fail(d, DV_ERANGE, "read consistency");
    }
    if (msg_type_replicated(m->type) && (rc = d_secondaries(d, m)))
        return rc;
    if (named) {
        struct msg_upsert_req *u = &m->u.upsert_req;
        uint32_t np;
        TRY(mpk_dec_list(&d->k, &np, MIN_NVECS, UINT32_MAX, "named vectors"));
        if (np != u->n)
            return fail(d, DV_ECORRUPT, "named vectors count");
        u->named = d_alloc(d, np ? np : 1, sizeof *u->named);
        if (!u->named)
            return fail(d, DV_ENOMEM, "named vectors");
        for (uint32_t i = 0; i < np; i++)
            TRY(d_nvecs(d, &u->named[i]));
    }
    if (spaces)
        TRY(d_spaces(d, t == MSG_COLL_CREATE ? &m->u.coll_cfg : &m->u.create_req.cfg));
    if (iparams)
        TRY(d_raw_or_nil(d, &m->u.index_req.params, "index params"));
    return DV_OK;
}

/* The type's own fields of a request, after the address (no_incarnation: a replica create
 * one field short). */
static int d_request_body(struct dec *d, bool no_incarnation)
{
    struct msg *m = d->m;
    int rc;
    switch (m->type) {
    case MSG_REPLICA_CREATE:
        return d_create(d, &m->u.create_req, !no_incarnation);
    case MSG_REPLICA_PULL: {
        struct msg_pull_req *p = &m->u.pull_req;
        if ((rc = mpk_dec_u32(&d->k, &p->op, "op")) || (rc = d_str(d, &p->source, "source")) ||
            (rc = mpk_dec_u64(&d->k, &p->rate, "rate")) ||
            (rc = mpk_dec_u64(&d->k, &p->until_lsn, "until_lsn")))
            return rc;
        return d_create(d, &p->create, true);
    }
    case MSG_REPLICA_FENCE:
        return mpk_dec_u32(&d->k, &m->u.fence_req.op, "op");
    case MSG_ADMIN:
        if ((rc = d_str(d, &m->u.admin_req.op, "op")) ||
            (rc = d_raw_or_nil(d, &m->u.admin_req.args, "args")))
            return rc;
        return DV_OK;
    case MSG_COLL_CREATE:
        return d_coll_cfg(d, &m->u.coll_cfg, true);
    case MSG_UPSERT:
    case MSG_P_UPSERT:
    case MSG_UPDATE_VECTORS:
    case MSG_P_UPDATE_VECTORS: {
        struct msg_upsert_req *u = &m->u.upsert_req;
        uint32_t np;
        if ((rc = d_ids(d, &u->ids, &u->n, "ids")) || (rc = mpk_dec_u32(&d->k, &u->dim, "dim")))
            return rc;
        if (u->dim > PROTO_MAX_DIM)
            return fail(d, DV_ERANGE, "dim");
        if ((rc = d_floats(d, (uint64_t)u->n * u->dim, &u->vecs, "vectors")))
            return rc;
        if ((rc = mpk_dec_list(&d->k, &np, MIN_PAYLOAD, UINT32_MAX, "payloads")))
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
    case MSG_DELETE_VECTORS:
    case MSG_P_DELETE_VECTORS: {
        struct msg_delvec_req *v = &m->u.delvec_req;
        if ((rc = d_ids(d, &v->ids, &v->n, "ids")) ||
            (rc = d_strs(d, &v->names, &v->n_names, "vector names")))
            return rc;
        return DV_OK;
    }
    case MSG_GET:
    case MSG_P_GET: {
        struct msg_get_req *g = &m->u.get_req;
        if ((rc = d_ids(d, &g->ids, &g->n, "ids")) ||
            (rc = mpk_dec_bool(&d->k, &g->with_vector, "with_vector")) ||
            (rc = mpk_dec_bool(&d->k, &g->with_payload, "with_payload")))
            return rc;
        return DV_OK;
    }
    case MSG_SET_PAYLOAD:
    case MSG_P_SET_PAYLOAD: {
        struct msg_set_payload_req *s = &m->u.set_payload_req;
        if ((rc = mpk_dec_u32(&d->k, &s->op, "op")) || (rc = d_ids(d, &s->ids, &s->n, "ids")) ||
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
        s->has_from = mpk_peek(&d->k.r) != MPK_NIL;
        if (s->has_from)
            TRY(mpk_dec_pid(&d->k, &s->from, "from"));
        else
            TRY(mpk_dec_nil(&d->k, "from"));
        if ((rc = mpk_dec_u32(&d->k, &s->limit, "limit")) ||
            (rc = d_raw_or_nil(d, &s->filter, "filter")) ||
            (rc = mpk_dec_bool(&d->k, &s->with_vector, "with_vector")) ||
            (rc = mpk_dec_bool(&d->k, &s->with_payload, "with_payload")))
            return rc;
        return DV_OK;
    }
    case MSG_SEARCH: {
        struct msg_search_req *s = &m->u.search_req;
        if ((rc = d_str(d, &m->addr.coll, "collection")))
            return rc;
        if ((rc = d_targets(d, &s->parts, &s->n_parts)))
            return rc;
        return d_queries(d, &s->queries, &s->n_queries);
    }
    case MSG_SPARSE_STATS: {
        struct msg_sstats_req *s = &m->u.sstats_req;
        const void *tp;
        uint32_t tl;
        if ((rc = d_str(d, &m->addr.coll, "collection")) ||
            (rc = d_targets(d, &s->parts, &s->n_parts)))
            return rc;
        if ((rc = d_str(d, &s->using, "vector name")) ||
            (rc = mpk_dec_bin(&d->k, &tp, &tl, "terms")))
            return rc;
        if (tl % 4 || tl / 4 > 65536)
            return fail(d, DV_ECORRUPT, "terms");
        s->n_terms = tl / 4;
        s->terms = d_alloc(d, s->n_terms ? s->n_terms : 1, sizeof *s->terms);
        if (!s->terms)
            return fail(d, DV_ENOMEM, "terms");
        memcpy(s->terms, tp, tl);
        return DV_OK;
    }
    case MSG_P_SEARCH: {
        struct msg_csearch_req *s = &m->u.csearch_req;
        if ((rc = d_queries(d, &s->queries, &s->n_queries)) ||
            (rc = mpk_dec_bool(&d->k, &s->allow_partial, "allow_partial")) ||
            (rc = mpk_dec_u32(&d->k, &s->timeout_ms, "timeout_ms")))
            return rc;
        return DV_OK;
    }
    case MSG_SNAPSHOT_READ: {
        struct msg_snapshot_req *s = &m->u.snapshot_req;
        if ((rc = mpk_dec_u64(&d->k, &s->session, "session")) ||
            (rc = mpk_dec_u64(&d->k, &s->offset, "offset")) ||
            (rc = mpk_dec_u32(&d->k, &s->max_bytes, "max_bytes")))
            return rc;
        return DV_OK;
    }
    case MSG_WAL_READ:
        if ((rc = mpk_dec_u64(&d->k, &m->u.wal_req.from, "from")) ||
            (rc = mpk_dec_u32(&d->k, &m->u.wal_req.max_bytes, "max_bytes")))
            return rc;
        return DV_OK;
    case MSG_REPLICATE:
        if ((rc = d_wal_recs(d, &m->u.replicate_req.recs, &m->u.replicate_req.n)))
            return rc;
        return mpk_dec_u64(&d->k, &m->u.replicate_req.term_start, "term_start");
    case MSG_PAYLOAD_INDEX:
    case MSG_P_INDEX: {
        struct msg_index_req *x = &m->u.index_req;
        if ((rc = mpk_dec_u32(&d->k, &x->op, "op")) || (rc = d_str(d, &x->key, "key")) ||
            (rc = mpk_dec_u32(&d->k, &x->kind, "kind")))
            return rc;
        return DV_OK;
    }
    case MSG_NODE_REPORT:
        return d_node_report(d, &m->u.node_report_req);
    case MSG_COORD_ADD:
        if ((rc = mpk_dec_u64(&d->k, &m->u.coord_req.id, "coordinator id")) ||
            (rc = d_str(d, &m->u.coord_req.raft_addr, "raft address")) ||
            (rc = d_str(d, &m->u.coord_req.client_url, "client url")))
            return rc;
        return DV_OK;
    case MSG_COORD_REMOVE:
        return mpk_dec_u64(&d->k, &m->u.coord_req.id, "coordinator id");
    default:
        return DV_OK;
    }
}

static int d_reply_body(struct dec *d)
{
    struct msg *m = d->m;
    int rc;
    switch (m->type) {
    case MSG_REPLICA_DIGEST: {
        struct msg_digest_rep *g = &m->u.digest_rep;
        if ((rc = mpk_dec_tuple(&d->k, 3, "body")) ||
            (rc = mpk_dec_u64(&d->k, &g->digest, "digest")) ||
            (rc = mpk_dec_u64(&d->k, &g->points, "points")) ||
            (rc = mpk_dec_u64(&d->k, &g->lsn, "lsn")))
            return rc;
        return DV_OK;
    }
    case MSG_HELLO: {
        struct msg_hello_rep *h = &m->u.hello_rep;
        if ((rc = mpk_dec_tuple(&d->k, 4, "body")) || (rc = d_str(d, &h->node_id, "node id")) ||
            (rc = d_str(d, &h->version, "version")) ||
            (rc = mpk_dec_u64(&d->k, &h->capacity, "capacity")))
            return rc;
        return d_replicas(d, &h->replicas, &h->n_replicas);
    }
    case MSG_REPLICA_LIST:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        return d_replicas(d, &m->u.list_rep.replicas, &m->u.list_rep.n);
    case MSG_REPLICA_INFO: {
        struct msg_info_rep *f = &m->u.info_rep;
        uint32_t *u32s[] = {&f->dim, &f->metric, &f->m, &f->ef_construction, &f->ef_search};
        uint64_t *u64s[] = {&f->points,   &f->deleted,   &f->applied_lsn,  &f->durable_lsn,
                            &f->ckpt_lsn, &f->wal_bytes, &f->payload_bytes};
        if ((rc = mpk_dec_tuple(&d->k, 13, "body")))
            return rc;
        for (size_t i = 0; i < 5; i++)
            if ((rc = mpk_dec_u32(&d->k, u32s[i], "info")))
                return rc;
        for (size_t i = 0; i < 7; i++)
            if ((rc = mpk_dec_u64(&d->k, u64s[i], "info")))
                return rc;
        return mpk_dec_bool(&d->k, &f->sq8, "sq8");
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
    case MSG_UPDATE_VECTORS:
    case MSG_DELETE_VECTORS:
    case MSG_P_UPDATE_VECTORS:
    case MSG_P_DELETE_VECTORS:
    case MSG_REPLICATE: {
        struct msg_write_rep *w = &m->u.write_rep;
        if ((rc = mpk_dec_tuple(&d->k, 3, "body")) || (rc = mpk_dec_u64(&d->k, &w->lsn, "lsn")) ||
            (rc = mpk_dec_u64(&d->k, &w->affected, "affected")) ||
            (rc = mpk_dec_list(&d->k, &w->n_failed, MIN_PEER_FAIL, PROTO_MAX_REPLICAS,
                               "failed secondaries")))
            return rc;
        w->failed = d_alloc(d, w->n_failed, sizeof *w->failed);
        if (!w->failed)
            return fail(d, DV_ENOMEM, "failed secondaries");
        for (uint32_t i = 0; i < w->n_failed; i++) {
            int64_t code;
            if ((rc = mpk_dec_tuple(&d->k, 3, "failed secondary")) ||
                (rc = d_str(d, &w->failed[i].node_id, "failed secondary node id")))
                return rc;
            TRY(mpk_dec_i64(&d->k, &code, "failed secondary code"));
            if (!msg_code_known(code))
                return fail(d, DV_ERANGE, "failed secondary code");
            w->failed[i].code = (int)code;
            if ((rc = d_str(d, &w->failed[i].text, "failed secondary message")))
                return rc;
        }
        return DV_OK;
    }
    case MSG_GET:
    case MSG_P_GET:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        return d_hits(d, &m->u.get_rep);
    case MSG_COUNT:
    case MSG_P_COUNT:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        return mpk_dec_u64(&d->k, &m->u.count_rep.count, "count");
    case MSG_SCROLL:
    case MSG_P_SCROLL: {
        struct msg_scroll_rep *s = &m->u.scroll_rep;
        if ((rc = mpk_dec_tuple(&d->k, 2, "body")) || (rc = d_hits(d, &s->hits)))
            return rc;
        s->more = mpk_peek(&d->k.r) != MPK_NIL;
        if (s->more)
            TRY(mpk_dec_pid(&d->k, &s->next, "next"));
        else
            TRY(mpk_dec_nil(&d->k, "next"));
        return DV_OK;
    }
    case MSG_SPARSE_STATS: {
        struct msg_sstats_rep *s = &m->u.sstats_rep;
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")) ||
            (rc = mpk_dec_list(&d->k, &s->n_parts, MIN_PART, UINT32_MAX, "partitions")))
            return rc;
        s->parts = d_alloc(d, s->n_parts, sizeof *s->parts);
        if (!s->parts)
            return fail(d, DV_ENOMEM, "partitions");
        for (uint32_t i = 0; i < s->n_parts; i++) {
            struct msg_sstats_part *sp = &s->parts[i];
            const void *dp;
            uint32_t dl;
            memset(sp, 0, sizeof *sp);
            if ((rc = mpk_dec_tuple(&d->k, 4, "partition stats")) ||
                (rc = mpk_dec_u32(&d->k, &sp->part, "partition")))
                return rc;
            if (mpk_peek(&d->k.r) == MPK_NIL)
                TRY(mpk_dec_nil(&d->k, "partition error"));
            else if ((rc = d_error(d, &sp->err)))
                return rc;
            if ((rc = mpk_dec_u64(&d->k, &sp->docs, "docs")) ||
                (rc = mpk_dec_bin(&d->k, &dp, &dl, "term counts")))
                return rc;
            if (dl % 8)
                return fail(d, DV_ECORRUPT, "term counts");
            sp->n = dl / 8;
            sp->df = d_alloc(d, sp->n ? sp->n : 1, sizeof *sp->df);
            if (!sp->df)
                return fail(d, DV_ENOMEM, "term counts");
            memcpy(sp->df, dp, dl);
        }
        return DV_OK;
    }
    case MSG_SEARCH: {
        struct msg_search_rep *s = &m->u.search_rep;
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        if ((rc = mpk_dec_list(&d->k, &s->n_parts, MIN_PART, UINT32_MAX, "partitions")))
            return rc;
        s->parts = d_alloc(d, s->n_parts, sizeof *s->parts);
        if (!s->parts)
            return fail(d, DV_ENOMEM, "partitions");
        for (uint32_t i = 0; i < s->n_parts; i++) {
            struct msg_search_part *sp = &s->parts[i];
            memset(sp, 0, sizeof *sp);
            if ((rc = mpk_dec_tuple(&d->k, 3, "partition result")) ||
                (rc = mpk_dec_u32(&d->k, &sp->part, "partition")))
                return rc;
            if (mpk_peek(&d->k.r) == MPK_NIL)
                TRY(mpk_dec_nil(&d->k, "partition error"));
            else if ((rc = d_error(d, &sp->err)))
                return rc;
            if ((rc = mpk_dec_list(&d->k, &sp->n, MIN_HITS, UINT32_MAX, "results")))
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
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        if ((rc = mpk_dec_list(&d->k, &s->n, MIN_STAT, UINT32_MAX, "stats")))
            return rc;
        s->stats = d_alloc(d, s->n, sizeof *s->stats);
        if (!s->stats)
            return fail(d, DV_ENOMEM, "stats");
        for (uint32_t i = 0; i < s->n; i++)
            if ((rc = mpk_dec_tuple(&d->k, 2, "stat")) ||
                (rc = d_str(d, &s->stats[i].name, "stat name")) ||
                (rc = mpk_dec_u64(&d->k, &s->stats[i].value, "stat value")))
                return rc;
        return DV_OK;
    }
    case MSG_SNAPSHOT_READ: {
        struct msg_snapshot_rep *s = &m->u.snapshot_rep;
        if ((rc = mpk_dec_tuple(&d->k, 5, "body")) ||
            (rc = mpk_dec_u64(&d->k, &s->session, "session")) ||
            (rc = mpk_dec_u64(&d->k, &s->lsn, "lsn")) ||
            (rc = mpk_dec_u64(&d->k, &s->total, "total")) || (rc = d_bin(d, &s->data, "data")) ||
            (rc = mpk_dec_bool(&d->k, &s->done, "done")))
            return rc;
        return DV_OK;
    }
    case MSG_WAL_READ: {
        struct msg_wal_rep *w = &m->u.wal_rep;
        uint32_t fields;
        /* 2 fields: a node that predates term histories */
        R(mpk_array(&d->k.r, &fields), "body");
        if (fields != 2 && fields != 3)
            return fail(d, DV_ECORRUPT, "body");
        if ((rc = d_wal_recs(d, &w->recs, &w->n)) ||
            (rc = mpk_dec_u64(&d->k, &w->applied_lsn, "applied_lsn")))
            return rc;
        w->terms = NULL;
        w->n_terms = 0;
        if (fields == 2)
            return DV_OK;
        if ((rc = mpk_dec_list(&d->k, &w->n_terms, MIN_TERM, PROTO_MAX_TERMS, "terms")))
            return rc;
        w->terms = d_alloc(d, w->n_terms, sizeof *w->terms);
        if (!w->terms)
            return fail(d, DV_ENOMEM, "terms");
        for (uint32_t i = 0; i < w->n_terms; i++)
            if ((rc = mpk_dec_tuple(&d->k, 2, "term")) ||
                (rc = mpk_dec_u64(&d->k, &w->terms[i].term, "term")) ||
                (rc = mpk_dec_u64(&d->k, &w->terms[i].start, "term start")))
                return rc;
        return DV_OK;
    }
    case MSG_COLL_LIST:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        return d_strs(d, &m->u.coll_list_rep.names, &m->u.coll_list_rep.n, "names");
    case MSG_COLL_INFO: {
        struct msg_coll_info_rep *f = &m->u.coll_info_rep;
        uint32_t body;
        /* 12 fields: with the named vectors */
        R(mpk_array(&d->k.r, &body), "body");
        if (body != 11 && body != 12)
            return fail(d, DV_ECORRUPT, "body");
        if ((rc = d_coll_cfg(d, &f->cfg, true)) ||
            (rc = mpk_dec_u64(&d->k, &f->points, "points")) ||
            (rc = mpk_dec_list(&d->k, &f->n_parts, MIN_COLL_PART, UINT32_MAX, "partition list")))
            return rc;
        f->parts = d_alloc(d, f->n_parts, sizeof *f->parts);
        if (!f->parts)
            return fail(d, DV_ENOMEM, "partition list");
        for (uint32_t i = 0; i < f->n_parts; i++) {
            struct msg_coll_part *p = &f->parts[i];
            uint32_t fields;
            /* 4 fields: a coordinator that predates terms and replica states */
            R(mpk_array(&d->k.r, &fields), "partition");
            if (fields != 4 && fields != 6)
                return fail(d, DV_ECORRUPT, "partition");
            if ((rc = mpk_dec_u32(&d->k, &p->part, "partition")) ||
                (rc = mpk_dec_u64(&d->k, &p->epoch, "partition epoch")) ||
                (rc = d_strs(d, &p->nodes, &p->n_nodes, "partition nodes")) ||
                (rc = mpk_dec_u64(&d->k, &p->points, "partition points")))
                return rc;
            p->states = d_alloc(d, p->n_nodes, 1);
            if (!p->states)
                return fail(d, DV_ENOMEM, "replica states");
            memset(p->states, 0, p->n_nodes);
            p->term = 0;
            if (fields == 6) {
                uint32_t ns;
                if ((rc = mpk_dec_u64(&d->k, &p->term, "partition term")) ||
                    (rc = mpk_dec_list(&d->k, &ns, MIN_U32, UINT32_MAX, "replica states")))
                    return rc;
                if (ns != p->n_nodes)
                    return fail(d, DV_ECORRUPT, "replica states");
                for (uint32_t j = 0; j < ns; j++) {
                    uint32_t st;
                    if ((rc = mpk_dec_u32(&d->k, &st, "replica state")))
                        return rc;
                    if (st > 255)
                        return fail(d, DV_ERANGE, "replica state");
                    p->states[j] = (uint8_t)st;
                }
            }
        }
        return body == 12 ? d_spaces(d, &f->cfg) : DV_OK;
    }
    case MSG_ROUTE: {
        struct msg_route_rep *r = &m->u.route_rep;
        uint32_t body;
        /* 4 fields: not asked by an alias (or a coordinator that predates aliases) */
        R(mpk_array(&d->k.r, &body), "body");
        if (body < 4 || body > 6)
            return fail(d, DV_ECORRUPT, "body");
        if ((rc = mpk_dec_u64(&d->k, &r->map_epoch, "map epoch")) ||
            (rc = d_coll_cfg(d, &r->cfg, true)) ||
            (rc = mpk_dec_list(&d->k, &r->n_nodes, MIN_PEER, PROTO_MAX_ROUTE_NODES, "nodes")))
            return rc;
        if (!(r->nodes = d_alloc(d, r->n_nodes, sizeof *r->nodes)) ||
            !(r->search_urls = d_alloc(d, r->n_nodes, sizeof *r->search_urls)))
            return fail(d, DV_ENOMEM, "nodes");
        for (uint32_t i = 0; i < r->n_nodes; i++) {
            uint32_t fields;
            /* 2 fields: a node without a search port */
            R(mpk_array(&d->k.r, &fields), "node");
            if (fields != 2 && fields != 3)
                return fail(d, DV_ECORRUPT, "node");
            if ((rc = d_str(d, &r->nodes[i].node_id, "node id")) ||
                (rc = d_str(d, &r->nodes[i].url, "node url")))
                return rc;
            r->search_urls[i] = (struct msg_str){NULL, 0};
            if (fields == 3 && (rc = d_str(d, &r->search_urls[i], "node search url")))
                return rc;
        }
        if ((rc = mpk_dec_list(&d->k, &r->n_parts, MIN_ROUTE_PART, UINT32_MAX, "partitions")))
            return rc;
        if (!(r->parts = d_alloc(d, r->n_parts, sizeof *r->parts)))
            return fail(d, DV_ENOMEM, "partitions");
        for (uint32_t i = 0; i < r->n_parts; i++) {
            struct msg_route_part *p = &r->parts[i];
            if ((rc = mpk_dec_tuple(&d->k, 6, "partition")) ||
                (rc = mpk_dec_u64(&d->k, &p->epoch, "partition epoch")) ||
                (rc = mpk_dec_u64(&d->k, &p->term, "partition term")))
                return rc;
            p->primary = UINT32_MAX;
            if (mpk_peek(&d->k.r) == MPK_NIL)
                TRY(mpk_dec_nil(&d->k, "primary"));
            else if ((rc = d_node_index(d, r->n_nodes, &p->primary, "primary")))
                return rc;
            if ((rc = d_node_indexes(d, r->n_nodes, &p->readers, &p->n_readers, "readers")) ||
                (rc = mpk_dec_bool(&d->k, &p->writable, "writable")) ||
                (rc = d_node_indexes(d, r->n_nodes, &p->secondaries, &p->n_secondaries,
                                     "secondaries")))
                return rc;
        }
        if (body >= 5 && (rc = d_str(d, &r->coll, "collection")))
            return rc;
        return body == 6 ? d_spaces(d, &r->cfg) : DV_OK;
    }
    case MSG_P_SEARCH: {
        struct msg_csearch_rep *s = &m->u.csearch_rep;
        if ((rc = mpk_dec_tuple(&d->k, 3, "body")) ||
            (rc = mpk_dec_list(&d->k, &s->n, MIN_HITS, UINT32_MAX, "results")))
            return rc;
        s->results = d_alloc(d, s->n, sizeof *s->results);
        if (!s->results)
            return fail(d, DV_ENOMEM, "results");
        for (uint32_t i = 0; i < s->n; i++)
            if ((rc = d_hits(d, &s->results[i])))
                return rc;
        if ((rc = mpk_dec_bool(&d->k, &s->partial, "partial")) ||
            (rc = mpk_dec_list(&d->k, &s->n_failed, MIN_U32, UINT32_MAX, "failed partitions")))
            return rc;
        s->failed = d_alloc(d, s->n_failed, sizeof *s->failed);
        if (!s->failed)
            return fail(d, DV_ENOMEM, "failed partitions");
        for (uint32_t i = 0; i < s->n_failed; i++)
            if ((rc = mpk_dec_u32(&d->k, &s->failed[i], "failed partition")))
                return rc;
        return DV_OK;
    }
    case MSG_CLUSTER:
    case MSG_ADMIN:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        return d_raw_or_nil(d, &m->u.cluster_rep.status, "status");
    case MSG_REPLICA_PULL: {
        struct msg_pull_rep *p = &m->u.pull_rep;
        if ((rc = mpk_dec_tuple(&d->k, 6, "body")) ||
            (rc = mpk_dec_u32(&d->k, &p->state, "state")) ||
            (rc = mpk_dec_u64(&d->k, &p->bytes_done, "bytes_done")) ||
            (rc = mpk_dec_u64(&d->k, &p->bytes_total, "bytes_total")) ||
            (rc = mpk_dec_u64(&d->k, &p->applied_lsn, "applied_lsn")) ||
            (rc = mpk_dec_u64(&d->k, &p->source_lsn, "source_lsn")) ||
            (rc = d_str(d, &p->error, "error")))
            return rc;
        return DV_OK;
    }
    case MSG_NODE_REPORT: {
        struct msg_node_report_rep *r = &m->u.node_report_rep;
        if ((rc = mpk_dec_tuple(&d->k, 2, "body")) ||
            (rc = mpk_dec_u64(&d->k, &r->map_epoch, "map_epoch")) ||
            (rc = d_str(d, &r->leader_url, "leader_url")))
            return rc;
        return DV_OK;
    }
    default: /* create, drop, coll_create, coll_drop */
        return mpk_dec_tuple(&d->k, 0, "body");
    }
}

static int d_msg(struct dec *d)
{
    struct msg *m = d->m;
    uint32_t n, type, reply;
    uint64_t version;
    int rc;
    R(mpk_array(&d->k.r, &n), "envelope");
    if (n < 1)
        return fail(d, DV_ECORRUPT, "envelope");
    TRY(mpk_dec_u64(&d->k, &version, "version"));
    if (version != PROTO_VERSION) {
        dv_errmsg_set(d->k.errmsg, "msg: protocol version %llu, this build speaks version %d",
                      (unsigned long long)version, PROTO_VERSION);
        return DV_EPROTO;
    }
    if (n != 5 && n != 6) {
        dv_errmsg_set(d->k.errmsg,
                      "msg: envelope has %u elements, expected 5 (request) or 6 (reply)", n);
        return DV_EPROTO;
    }
    if ((rc = mpk_dec_u32(&d->k, &type, "type")))
        return rc;
    if (type >= MSG_TYPE_COUNT || !msg_type_known((int)type)) {
        dv_errmsg_set(d->k.errmsg, "msg: unknown message type %u", type);
        return DV_EPROTO;
    }
    m->type = (int)type;
    d->typed = true;
    if ((rc = mpk_dec_u32(&d->k, &reply, "kind")) ||
        (rc = mpk_dec_u64(&d->k, &m->req_id, "request id")))
        return rc;
    if (reply > 1 || n != (reply ? 6 : 5) || (type == MSG_ERROR && !reply)) {
        dv_errmsg_set(d->k.errmsg,
                      "msg: envelope of %s: kind %u with %u elements (a request is kind 0 with "
                      "5, a reply kind 1 with 6; type 0 is only a reply)",
                      msg_type_name(m->type), reply, n);
        return DV_EPROTO;
    }
    m->reply = reply;
    if (!reply)
        return d_request(d);
    if (mpk_peek(&d->k.r) != MPK_NIL) {
        if ((rc = d_error(d, &m->err)))
            return rc;
        TRY(mpk_dec_nil(&d->k, "body"));
        return DV_OK;
    }
    TRY(mpk_dec_nil(&d->k, "error"));
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
    struct dec d = {.k = {.errmsg = errmsg, .fail = msg_fail}, .m = m};
    mpk_init(&d.k.r, p, n);
    int rc = d_msg(&d);
    if (rc == DV_OK && !mpk_done(&d.k.r)) {
        dv_errmsg_set(errmsg, "msg: %zu trailing bytes after the message",
                      (size_t)(d.k.r.end - d.k.r.p));
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
