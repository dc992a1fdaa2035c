/* msg_decode.c - the bounds-checked decoder of the native protocol's messages (msg.h): the
 * envelope, the shared field decoders and request bodies (replies: msg_decode_rep.c). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mpk.h"
#include "msg.h"
#include "msg_dec.h"
#include "msg_int.h"

/* ---- decode ------------------------------------------------------------------------------ */

void *msgd_alloc(struct dec *d, size_t count, size_t size)
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

int msgd_fail(struct dec *d, int rc, const char *field)
{
    return mpk_dec_fail(&d->k, rc, field);
}

int msgd_str(struct dec *d, struct msg_str *s, const char *field)
{
    return mpk_dec_str(&d->k, &s->p, &s->len, field);
}

int msgd_bin(struct dec *d, struct msg_bytes *v, const char *field)
{
    const void *p;
    int rc = mpk_dec_bin(&d->k, &p, &v->len, field);
    v->p = rc == DV_OK ? p : v->p;
    return rc;
}

int msgd_bin_or_nil(struct dec *d, struct msg_bytes *v, const char *field)
{
    const void *p;
    int rc = mpk_dec_bin_or_nil(&d->k, &p, &v->len, field);
    v->p = p;
    return rc;
}

int msgd_raw_or_nil(struct dec *d, struct msg_bytes *v, const char *field)
{
    return mpk_dec_raw_or_nil(&d->k, &v->p, &v->len, field);
}

/* A bin of exactly `count` little-endian float32 (count == UINT32_MAX + 1 or more is an
 * error), copied into aligned memory; *out is NULL when count is 0. */
int msgd_floats(struct dec *d, uint64_t count, float **out, const char *field)
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
    float *v = msgd_alloc(d, count, sizeof(float));
    if (!v)
        return msgd_fail(d, DV_ENOMEM, field);
    memcpy(v, p, len); /* never cast p: bins are not aligned */
    *out = v;
    return DV_OK;
}

int msgd_ids(struct dec *d, struct pid **ids, uint32_t *n, const char *field)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_ID, UINT32_MAX, field)))
        return rc;
    *ids = msgd_alloc(d, *n, sizeof **ids);
    if (!*ids)
        return msgd_fail(d, DV_ENOMEM, field);
    for (uint32_t i = 0; i < *n; i++)
        TRY(mpk_dec_pid(&d->k, &(*ids)[i], field));
    return DV_OK;
}

/* A list of strings (names, node ids). */
int msgd_strs(struct dec *d, struct msg_str **out, uint32_t *n, const char *field)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_NAME, UINT32_MAX, field)))
        return rc;
    *out = msgd_alloc(d, *n, sizeof **out);
    if (!*out)
        return msgd_fail(d, DV_ENOMEM, field);
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = msgd_str(d, &(*out)[i], field)))
            return rc;
    return DV_OK;
}

/* The collection config (see msgw_coll_cfg); without placement, partitions and replication
 * read as 0. */
int msgd_coll_cfg(struct dec *d, struct msg_coll_cfg *c, bool with_placement)
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
int msgd_floats_any(struct dec *d, uint32_t max, float **out, uint32_t *count, const char *field)
{
    struct mpk save = d->k.r;
    const void *p;
    uint32_t len;
    int rc;
    R(mpk_bin(&save, &p, &len), field);
    if (len % 4 || len / 4 > max)
        return msgd_fail(d, DV_ECORRUPT, field);
    *count = len / 4;
    return msgd_floats(d, *count, out, field);
}

/* A bin of exactly n uint32 (little-endian), copied into aligned memory. */
int msgd_u32_bin(struct dec *d, uint32_t n, uint32_t **out, const char *field)
{
    const void *p;
    uint32_t len;
    int rc = mpk_dec_bin(&d->k, &p, &len, field);
    if (rc != DV_OK)
        return rc;
    if ((uint64_t)len != (uint64_t)n * 4)
        return msgd_fail(d, DV_ECORRUPT, field);
    *out = msgd_alloc(d, n ? n : 1, sizeof **out);
    if (!*out)
        return msgd_fail(d, DV_ENOMEM, field);
    memcpy(*out, p, len);
    return DV_OK;
}

/* A point's named vectors (msg.c's w_nvecs). */
int msgd_nvecs(struct dec *d, struct msg_nvecs *nv)
{
    int rc;
    TRY(mpk_dec_list(&d->k, &nv->n, MIN_NVEC, PROTO_MAX_VECTORS, "named vectors"));
    nv->v = msgd_alloc(d, nv->n ? nv->n : 1, sizeof *nv->v);
    if (!nv->v)
        return msgd_fail(d, DV_ENOMEM, "named vectors");
    for (uint32_t i = 0; i < nv->n; i++) {
        struct msg_nvec *v = &nv->v[i];
        memset(v, 0, sizeof *v);
        TRY(mpk_dec_tuple(&d->k, 4, "named vector"));
        TRY(msgd_str(d, &v->name, "vector name"));
        TRY(mpk_dec_u32(&d->k, &v->n, "vector length"));
        TRY(msgd_floats_any(d, PROTO_MAX_VECTOR_FLOATS, &v->v, &v->nv, "vector values"));
        if (mpk_peek(&d->k.r) == MPK_NIL)
            TRY(mpk_dec_nil(&d->k, "vector terms"));
        else
            TRY(msgd_u32_bin(d, v->n, &v->idx, "vector terms"));
    }
    return DV_OK;
}

/* A collection's named vectors (msg.c's w_spaces). */
int msgd_spaces(struct dec *d, struct msg_coll_cfg *c)
{
    int rc;
    TRY(mpk_dec_list(&d->k, &c->n_spaces, MIN_VSPACE, PROTO_MAX_VECTORS, "named vectors"));
    for (uint32_t i = 0; i < c->n_spaces; i++) {
        struct msg_vspace *v = &c->spaces[i];
        struct msg_str name;
        TRY(mpk_dec_tuple(&d->k, 8, "named vector"));
        TRY(msgd_str(d, &name, "vector name"));
        if (name.len > PROTO_MAX_VNAME || memchr(name.p, 0, name.len) != NULL)
            return msgd_fail(d, DV_ERANGE, "vector name");
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
int msgd_targets(struct dec *d, struct msg_target **out, uint32_t *n)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_TARGET, UINT32_MAX, "partitions")))
        return rc;
    struct msg_target *t = msgd_alloc(d, *n, sizeof *t);
    if (!t)
        return msgd_fail(d, DV_ENOMEM, "partitions");
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = mpk_dec_tuple(&d->k, 2, "partition")) ||
            (rc = mpk_dec_u32(&d->k, &t[i].part, "partition")) ||
            (rc = mpk_dec_u64(&d->k, &t[i].epoch, "partition epoch")))
            return rc;
    *out = t;
    return DV_OK;
}

int msgd_replicas(struct dec *d, struct msg_replica **out, uint32_t *n)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_REPLICA, UINT32_MAX, "replicas")))
        return rc;
    struct msg_replica *r = msgd_alloc(d, *n, sizeof *r);
    if (!r)
        return msgd_fail(d, DV_ENOMEM, "replicas");
    for (uint32_t i = 0; i < *n; i++) {
        if ((rc = mpk_dec_tuple(&d->k, 3, "replica")) ||
            (rc = msgd_str(d, &r[i].coll, "replica collection")) ||
            (rc = mpk_dec_u32(&d->k, &r[i].part, "replica partition")) ||
            (rc = mpk_dec_u64(&d->k, &r[i].applied_lsn, "replica lsn")))
            return rc;
    }
    *out = r;
    return DV_OK;
}

int msgd_hits(struct dec *d, struct msg_hits *h)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, &h->n, MIN_HIT, UINT32_MAX, "hits")))
        return rc;
    h->hits = msgd_alloc(d, h->n, sizeof *h->hits);
    if (!h->hits)
        return msgd_fail(d, DV_ENOMEM, "hits");
    for (uint32_t i = 0; i < h->n; i++) {
        struct msg_hit *x = &h->hits[i];
        double score;
        uint32_t na;
        memset(x, 0, sizeof *x);
        R(mpk_array(&d->k.r, &na), "hit");
        if (na != 4 && na != 5)
            return msgd_fail(d, DV_ECORRUPT, "hit");
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
                return msgd_fail(d, DV_ECORRUPT, "hit vector");
            x->dim = len / 4;
            if ((rc = msgd_floats(d, x->dim, &x->vec, "hit vector")))
                return rc;
        }
        if ((rc = msgd_bin_or_nil(d, &x->payload, "hit payload")))
            return rc;
        if (na == 5 && (rc = msgd_nvecs(d, &x->named)))
            return rc;
    }
    return DV_OK;
}

/* An order_by start: nil, an integer (int64), a float or a string. */
static int msgd_start(struct dec *d, struct msg_start *st)
{
    int rc;
    memset(st, 0, sizeof *st);
    switch (mpk_peek(&d->k.r)) {
    case MPK_NIL:
        return mpk_dec_nil(&d->k, "start_from");
    case MPK_UINT:
    case MPK_INT:
        st->type = MSG_START_INT;
        return mpk_dec_i64(&d->k, &st->i, "start_from");
    case MPK_FLOAT:
        st->type = MSG_START_FLOAT;
        return mpk_dec_f64(&d->k, &st->f, "start_from");
    default:
        st->type = MSG_START_STR;
        TRY(msgd_str(d, &st->s, "start_from"));
        return DV_OK;
    }
}

int msgd_error(struct dec *d, struct msg_error *e)
{
    int64_t code;
    int rc;
    if ((rc = mpk_dec_tuple(&d->k, 3, "error")))
        return rc;
    TRY(mpk_dec_i64(&d->k, &code, "error code"));
    if (!msg_code_known(code))
        return msgd_fail(d, DV_ERANGE, "error code");
    e->code = (int)code;
    if ((rc = msgd_str(d, &e->text, "error message")) ||
        (rc = mpk_dec_u64(&d->k, &e->epoch, "error epoch")))
        return rc;
    return DV_OK;
}

/* WAL records [[lsn, type, bin body], ...] (a WAL read's reply, a replicate request). */
int msgd_wal_recs(struct dec *d, struct msg_wal_rec **out, uint32_t *n)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_WAL_REC, UINT32_MAX, "records")))
        return rc;
    struct msg_wal_rec *recs = msgd_alloc(d, *n, sizeof *recs);
    if (!recs)
        return msgd_fail(d, DV_ENOMEM, "records");
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = mpk_dec_tuple(&d->k, 3, "record")) ||
            (rc = mpk_dec_u64(&d->k, &recs[i].lsn, "record lsn")) ||
            (rc = mpk_dec_u32(&d->k, &recs[i].type, "record type")) ||
            (rc = msgd_bin(d, &recs[i].body, "record body")))
            return rc;
    *out = recs;
    return DV_OK;
}

/* The secondaries at the end of a replicated write request. */
/* A route's node index: below n_nodes (DV_ERANGE otherwise). */
int msgd_node_index(struct dec *d, uint32_t n_nodes, uint32_t *out, const char *field)
{
    int rc;
    if ((rc = mpk_dec_u32(&d->k, out, field)))
        return rc;
    return *out < n_nodes ? DV_OK : msgd_fail(d, DV_ERANGE, field);
}

int msgd_node_indexes(struct dec *d, uint32_t n_nodes, uint32_t **out, uint32_t *n,
                      const char *field)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_U32, PROTO_MAX_REPLICAS, field)))
        return rc;
    if (!(*out = msgd_alloc(d, *n, sizeof **out)))
        return msgd_fail(d, DV_ENOMEM, field);
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = msgd_node_index(d, n_nodes, &(*out)[i], field)))
            return rc;
    return DV_OK;
}

int msgd_secondaries(struct dec *d, struct msg *m)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, &m->n_secondaries, MIN_PEER, PROTO_MAX_REPLICAS, "secondaries")))
        return rc;
    m->secondaries = msgd_alloc(d, m->n_secondaries, sizeof *m->secondaries);
    if (!m->secondaries)
        return msgd_fail(d, DV_ENOMEM, "secondaries");
    for (uint32_t i = 0; i < m->n_secondaries; i++)
        if ((rc = mpk_dec_tuple(&d->k, 2, "secondary")) ||
            (rc = msgd_str(d, &m->secondaries[i].node_id, "secondary node id")) ||
            (rc = msgd_str(d, &m->secondaries[i].url, "secondary url")))
            return rc;
    return DV_OK;
}

int msgd_query(struct dec *d, struct msg_query *q)
{
    const void *p;
    uint32_t len, na;
    int rc;
    memset(q, 0, sizeof *q);
    R(mpk_array(&d->k.r, &na), "query");
    if (na != 6 && na != 7)
        return msgd_fail(d, DV_ECORRUPT, "query");
    struct mpk save = d->k.r;
    R(mpk_bin(&save, &p, &len), "query vector");
    if (len % 4 || len / 4 > PROTO_MAX_DIM)
        return msgd_fail(d, DV_ECORRUPT, "query vector");
    q->dim = len / 4;
    if ((rc = msgd_floats(d, q->dim, &q->vec, "query vector")) ||
        (rc = mpk_dec_u32(&d->k, &q->k, "query k")) ||
        (rc = mpk_dec_u32(&d->k, &q->ef, "query ef")) ||
        (rc = msgd_raw_or_nil(d, &q->filter, "query filter")) ||
        (rc = mpk_dec_bool(&d->k, &q->with_payload, "query with_payload")) ||
        (rc = mpk_dec_bool(&d->k, &q->with_vector, "query with_vector")))
        return rc;
    if (na == 6)
        return DV_OK;
    /* [using, terms | nil, rows, [docs, bin(term counts)] | nil, [vector names]] */
    TRY(mpk_dec_tuple(&d->k, 5, "query named vector"));
    TRY(msgd_str(d, &q->using, "query using"));
    if (mpk_peek(&d->k.r) == MPK_NIL)
        TRY(mpk_dec_nil(&d->k, "query terms"));
    else
        TRY(msgd_u32_bin(d, q->dim, &q->idx, "query terms"));
    TRY(mpk_dec_u32(&d->k, &q->rows, "query rows"));
    if (q->rows > 0 && q->dim % q->rows != 0)
        return msgd_fail(d, DV_ECORRUPT, "query rows");
    if (mpk_peek(&d->k.r) == MPK_NIL) {
        TRY(mpk_dec_nil(&d->k, "query idf"));
    } else {
        const void *p2;
        uint32_t l2;
        TRY(mpk_dec_tuple(&d->k, 2, "query idf"));
        TRY(mpk_dec_u64(&d->k, &q->idf_docs, "query idf docs"));
        TRY(mpk_dec_bin(&d->k, &p2, &l2, "query idf counts"));
        if ((uint64_t)l2 != (uint64_t)q->dim * 8)
            return msgd_fail(d, DV_ECORRUPT, "query idf counts");
        q->idf_df = msgd_alloc(d, q->dim ? q->dim : 1, sizeof *q->idf_df);
        if (!q->idf_df)
            return msgd_fail(d, DV_ENOMEM, "query idf counts");
        memcpy(q->idf_df, p2, l2);
    }
    return msgd_strs(d, &q->vec_names, &q->n_vec_names, "query vector names");
}

int msgd_queries(struct dec *d, struct msg_query **out, uint32_t *n)
{
    int rc;
    if ((rc = mpk_dec_list(&d->k, n, MIN_QUERY, UINT32_MAX, "queries")))
        return rc;
    *out = msgd_alloc(d, *n, sizeof **out);
    if (!*out)
        return msgd_fail(d, DV_ENOMEM, "queries");
    for (uint32_t i = 0; i < *n; i++)
        if ((rc = msgd_query(d, &(*out)[i])))
            return rc;
    return DV_OK;
}

int msgd_node_report(struct dec *d, struct msg_node_report_req *r)
{
    int rc;
    if ((rc = msgd_str(d, &r->node_id, "node id")) || (rc = msgd_str(d, &r->url, "url")) ||
        (rc = msgd_str(d, &r->http_url, "http url")))
        return rc;
    TRY(mpk_dec_f64(&d->k, &r->weight, "weight"));
    if ((rc = mpk_dec_u64(&d->k, &r->capacity, "capacity")) ||
        (rc = mpk_dec_list(&d->k, &r->n, MIN_REPORT, UINT32_MAX, "replicas")))
        return rc;
    r->replicas = msgd_alloc(d, r->n, sizeof *r->replicas);
    if (!r->replicas)
        return msgd_fail(d, DV_ENOMEM, "replicas");
    for (uint32_t i = 0; i < r->n; i++) {
        struct msg_replica_report *x = &r->replicas[i];
        uint32_t fields;
        /* 4 fields: a node that predates incarnations (read as 0) */
        R(mpk_array(&d->k.r, &fields), "replica");
        if (fields != 4 && fields != 5)
            return msgd_fail(d, DV_ECORRUPT, "replica");
        if ((rc = msgd_str(d, &x->coll, "replica collection")) ||
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
int msgd_create(struct dec *d, struct msg_create_req *c, bool with_incarnation)
{
    int rc;
    if ((rc = msgd_coll_cfg(d, &c->cfg, false)))
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
    /* An ordered scroll with one more field: a sample's seed. */
    bool sample =
        (t == MSG_SCROLL_ORDER || t == MSG_P_SCROLL_ORDER) && n == msg_request_fields(t) + 1;
    if (n != msg_request_fields(m->type) && !no_incarnation && !consistency && !flags && !named &&
        !spaces && !iparams && !sample)
        return msgd_fail(d, DV_ECORRUPT, "body length");
    if (msg_type_addressed(m->type)) {
        if ((rc = msgd_str(d, &m->addr.coll, "collection")) ||
            (rc = mpk_dec_u32(&d->k, &m->addr.part, "partition")) ||
            (rc = mpk_dec_u64(&d->k, &m->addr.epoch, "epoch")) ||
            (rc = mpk_dec_u64(&d->k, &m->addr.term, "term")))
            return rc;
    } else if (msg_type_collection(m->type)) {
        if ((rc = msgd_str(d, &m->addr.coll, "collection")))
            return rc;
    }
    if ((rc = d_request_body(d, no_incarnation)))
        return rc;
    if (flags && (rc = mpk_dec_u64(&d->k, &m->u.node_report_req.flags, "report flags")))
        return rc;
    if (search && (rc = msgd_str(d, &m->u.node_report_req.search_url, "search url")))
        return rc;
    if (consistency) {
        if ((rc = mpk_dec_u32(&d->k, &m->read_consistency, "read consistency")))
            return rc;
        if (m->read_consistency == 0 ||
            (m->read_consistency > PROTO_MAX_RF && m->read_consistency < MSG_READ_MAJORITY) ||
            m->read_consistency > MSG_READ_ALL)
            return msgd_fail(d, DV_ERANGE, "read consistency");
    }
    if (msg_type_replicated(m->type) && (rc = msgd_secondaries(d, m)))
        return rc;
    if (named) {
        struct msg_upsert_req *u = &m->u.upsert_req;
        uint32_t np;
        TRY(mpk_dec_list(&d->k, &np, MIN_NVECS, UINT32_MAX, "named vectors"));
        if (np != u->n)
            return msgd_fail(d, DV_ECORRUPT, "named vectors count");
        u->named = msgd_alloc(d, np ? np : 1, sizeof *u->named);
        if (!u->named)
            return msgd_fail(d, DV_ENOMEM, "named vectors");
        for (uint32_t i = 0; i < np; i++)
            TRY(msgd_nvecs(d, &u->named[i]));
    }
    if (spaces)
        TRY(msgd_spaces(d, t == MSG_COLL_CREATE ? &m->u.coll_cfg : &m->u.create_req.cfg));
    if (iparams)
        TRY(msgd_raw_or_nil(d, &m->u.index_req.params, "index params"));
    if (sample) {
        TRY(mpk_dec_u64(&d->k, &m->u.oscroll_req.sample, "sample seed"));
        if (m->u.oscroll_req.sample == 0)
            return msgd_fail(d, DV_ECORRUPT, "sample seed 0");
    }
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
        return msgd_create(d, &m->u.create_req, !no_incarnation);
    case MSG_REPLICA_PULL: {
        struct msg_pull_req *p = &m->u.pull_req;
        if ((rc = mpk_dec_u32(&d->k, &p->op, "op")) || (rc = msgd_str(d, &p->source, "source")) ||
            (rc = mpk_dec_u64(&d->k, &p->rate, "rate")) ||
            (rc = mpk_dec_u64(&d->k, &p->until_lsn, "until_lsn")))
            return rc;
        return msgd_create(d, &p->create, true);
    }
    case MSG_REPLICA_FENCE:
        return mpk_dec_u32(&d->k, &m->u.fence_req.op, "op");
    case MSG_ADMIN:
        if ((rc = msgd_str(d, &m->u.admin_req.op, "op")) ||
            (rc = msgd_raw_or_nil(d, &m->u.admin_req.args, "args")))
            return rc;
        return DV_OK;
    case MSG_COLL_CREATE:
        return msgd_coll_cfg(d, &m->u.coll_cfg, true);
    case MSG_UPSERT:
    case MSG_P_UPSERT:
    case MSG_UPDATE_VECTORS:
    case MSG_P_UPDATE_VECTORS: {
        struct msg_upsert_req *u = &m->u.upsert_req;
        uint32_t np;
        if ((rc = msgd_ids(d, &u->ids, &u->n, "ids")) || (rc = mpk_dec_u32(&d->k, &u->dim, "dim")))
            return rc;
        if (u->dim > PROTO_MAX_DIM)
            return msgd_fail(d, DV_ERANGE, "dim");
        if ((rc = msgd_floats(d, (uint64_t)u->n * u->dim, &u->vecs, "vectors")))
            return rc;
        if ((rc = mpk_dec_list(&d->k, &np, MIN_PAYLOAD, UINT32_MAX, "payloads")))
            return rc;
        if (np != u->n)
            return msgd_fail(d, DV_ECORRUPT, "payload count");
        u->payloads = msgd_alloc(d, np, sizeof *u->payloads);
        if (!u->payloads)
            return msgd_fail(d, DV_ENOMEM, "payloads");
        for (uint32_t i = 0; i < np; i++)
            if ((rc = msgd_bin_or_nil(d, &u->payloads[i], "payload")))
                return rc;
        return DV_OK;
    }
    case MSG_DELETE:
    case MSG_P_DELETE:
        return msgd_ids(d, &m->u.delete_req.ids, &m->u.delete_req.n, "ids");
    case MSG_DELETE_VECTORS:
    case MSG_P_DELETE_VECTORS: {
        struct msg_delvec_req *v = &m->u.delvec_req;
        if ((rc = msgd_ids(d, &v->ids, &v->n, "ids")) ||
            (rc = msgd_strs(d, &v->names, &v->n_names, "vector names")))
            return rc;
        return DV_OK;
    }
    case MSG_GET:
    case MSG_P_GET: {
        struct msg_get_req *g = &m->u.get_req;
        if ((rc = msgd_ids(d, &g->ids, &g->n, "ids")) ||
            (rc = mpk_dec_bool(&d->k, &g->with_vector, "with_vector")) ||
            (rc = mpk_dec_bool(&d->k, &g->with_payload, "with_payload")))
            return rc;
        return DV_OK;
    }
    case MSG_SET_PAYLOAD:
    case MSG_P_SET_PAYLOAD: {
        struct msg_set_payload_req *s = &m->u.set_payload_req;
        if ((rc = mpk_dec_u32(&d->k, &s->op, "op")) || (rc = msgd_ids(d, &s->ids, &s->n, "ids")) ||
            (rc = msgd_raw_or_nil(d, &s->data, "data")))
            return rc;
        return DV_OK;
    }
    case MSG_COUNT:
    case MSG_P_COUNT:
        return msgd_raw_or_nil(d, &m->u.count_req.filter, "filter");
    case MSG_SCROLL:
    case MSG_P_SCROLL: {
        struct msg_scroll_req *s = &m->u.scroll_req;
        s->has_from = mpk_peek(&d->k.r) != MPK_NIL;
        if (s->has_from)
            TRY(mpk_dec_pid(&d->k, &s->from, "from"));
        else
            TRY(mpk_dec_nil(&d->k, "from"));
        if ((rc = mpk_dec_u32(&d->k, &s->limit, "limit")) ||
            (rc = msgd_raw_or_nil(d, &s->filter, "filter")) ||
            (rc = mpk_dec_bool(&d->k, &s->with_vector, "with_vector")) ||
            (rc = mpk_dec_bool(&d->k, &s->with_payload, "with_payload")))
            return rc;
        return DV_OK;
    }
    case MSG_SEARCH: {
        struct msg_search_req *s = &m->u.search_req;
        if ((rc = msgd_str(d, &m->addr.coll, "collection")))
            return rc;
        if ((rc = msgd_targets(d, &s->parts, &s->n_parts)))
            return rc;
        return msgd_queries(d, &s->queries, &s->n_queries);
    }
    case MSG_FACET:
    case MSG_P_FACET: {
        struct msg_facet_req *f = &m->u.facet_req;
        if ((rc = msgd_str(d, &f->key, "key")) || (rc = msgd_raw_or_nil(d, &f->filter, "filter")) ||
            (rc = mpk_dec_u32(&d->k, &f->limit, "limit")) ||
            (rc = mpk_dec_bool(&d->k, &f->exact, "exact")))
            return rc;
        return DV_OK;
    }
    case MSG_SCROLL_ORDER:
    case MSG_P_SCROLL_ORDER: {
        struct msg_oscroll_req *o = &m->u.oscroll_req;
        if ((rc = msgd_str(d, &o->key, "key")) || (rc = mpk_dec_bool(&d->k, &o->desc, "desc")) ||
            (rc = msgd_start(d, &o->start)) || (rc = mpk_dec_u32(&d->k, &o->limit, "limit")) ||
            (rc = msgd_raw_or_nil(d, &o->filter, "filter")) ||
            (rc = mpk_dec_bool(&d->k, &o->with_vector, "with_vector")) ||
            (rc = mpk_dec_bool(&d->k, &o->with_payload, "with_payload")))
            return rc;
        return DV_OK;
    }
    case MSG_SPARSE_STATS: {
        struct msg_sstats_req *s = &m->u.sstats_req;
        const void *tp;
        uint32_t tl;
        if ((rc = msgd_str(d, &m->addr.coll, "collection")) ||
            (rc = msgd_targets(d, &s->parts, &s->n_parts)))
            return rc;
        if ((rc = msgd_str(d, &s->using, "vector name")) ||
            (rc = mpk_dec_bin(&d->k, &tp, &tl, "terms")))
            return rc;
        if (tl % 4 || tl / 4 > 65536)
            return msgd_fail(d, DV_ECORRUPT, "terms");
        s->n_terms = tl / 4;
        s->terms = msgd_alloc(d, s->n_terms ? s->n_terms : 1, sizeof *s->terms);
        if (!s->terms)
            return msgd_fail(d, DV_ENOMEM, "terms");
        memcpy(s->terms, tp, tl);
        return DV_OK;
    }
    case MSG_P_SEARCH: {
        struct msg_csearch_req *s = &m->u.csearch_req;
        if ((rc = msgd_queries(d, &s->queries, &s->n_queries)) ||
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
        if ((rc = msgd_wal_recs(d, &m->u.replicate_req.recs, &m->u.replicate_req.n)))
            return rc;
        return mpk_dec_u64(&d->k, &m->u.replicate_req.term_start, "term_start");
    case MSG_PAYLOAD_INDEX:
    case MSG_P_INDEX: {
        struct msg_index_req *x = &m->u.index_req;
        if ((rc = mpk_dec_u32(&d->k, &x->op, "op")) || (rc = msgd_str(d, &x->key, "key")) ||
            (rc = mpk_dec_u32(&d->k, &x->kind, "kind")))
            return rc;
        return DV_OK;
    }
    case MSG_NODE_REPORT:
        return msgd_node_report(d, &m->u.node_report_req);
    case MSG_COORD_ADD:
        if ((rc = mpk_dec_u64(&d->k, &m->u.coord_req.id, "coordinator id")) ||
            (rc = msgd_str(d, &m->u.coord_req.raft_addr, "raft address")) ||
            (rc = msgd_str(d, &m->u.coord_req.client_url, "client url")))
            return rc;
        return DV_OK;
    case MSG_COORD_REMOVE:
        return mpk_dec_u64(&d->k, &m->u.coord_req.id, "coordinator id");
    default:
        return DV_OK;
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
        return msgd_fail(d, DV_ECORRUPT, "envelope");
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
        if ((rc = msgd_error(d, &m->err)))
            return rc;
        TRY(mpk_dec_nil(&d->k, "body"));
        return DV_OK;
    }
    TRY(mpk_dec_nil(&d->k, "error"));
    if (type == MSG_ERROR)
        return msgd_fail(d, DV_ECORRUPT, "error");
    return msgd_reply_body(d);
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
