/* msg.c - message type names and the encoder of the native protocol's messages (msg.h): the
 * envelope, the shared field encoders and request bodies (replies: msg_encode_rep.c). */
#include "msg.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mpk.h"
#include "msg_enc.h"
#include "msg_int.h"

/* The known types: a type without a name here (a gap in the enum) is unknown. */
static const char *const type_names[MSG_TYPE_COUNT] = {
    [MSG_ERROR] = "error",
    [MSG_HELLO] = "hello",
    [MSG_REPLICA_CREATE] = "replica_create",
    [MSG_REPLICA_DROP] = "replica_drop",
    [MSG_REPLICA_LIST] = "replica_list",
    [MSG_REPLICA_INFO] = "replica_info",
    [MSG_UPSERT] = "upsert",
    [MSG_DELETE] = "delete",
    [MSG_GET] = "get",
    [MSG_SET_PAYLOAD] = "set_payload",
    [MSG_COUNT] = "count",
    [MSG_SCROLL] = "scroll",
    [MSG_FACET] = "facet",
    [MSG_SCROLL_ORDER] = "scroll_order",
    [MSG_SEARCH] = "search",
    [MSG_STATS] = "stats",
    [MSG_SNAPSHOT_READ] = "snapshot_read",
    [MSG_WAL_READ] = "wal_read",
    [MSG_PAYLOAD_INDEX] = "payload_index",
    [MSG_REPLICA_PULL] = "replica_pull",
    [MSG_REPLICA_FENCE] = "replica_fence",
    [MSG_REPLICATE] = "replicate",
    [MSG_REPLICA_DIGEST] = "replica_digest",
    [MSG_UPDATE_VECTORS] = "update_vectors",
    [MSG_DELETE_VECTORS] = "delete_vectors",
    [MSG_SPARSE_STATS] = "sparse_stats",
    [MSG_COLL_CREATE] = "coll_create",
    [MSG_COLL_DROP] = "coll_drop",
    [MSG_COLL_LIST] = "coll_list",
    [MSG_COLL_INFO] = "coll_info",
    [MSG_P_UPSERT] = "points_upsert",
    [MSG_P_DELETE] = "points_delete",
    [MSG_P_GET] = "points_get",
    [MSG_P_SET_PAYLOAD] = "points_set_payload",
    [MSG_P_COUNT] = "points_count",
    [MSG_P_SCROLL] = "points_scroll",
    [MSG_P_FACET] = "points_facet",
    [MSG_P_SCROLL_ORDER] = "points_scroll_order",
    [MSG_P_SEARCH] = "points_search",
    [MSG_P_INDEX] = "points_index",
    [MSG_CLUSTER] = "cluster",
    [MSG_NODE_REPORT] = "node_report",
    [MSG_COORD_ADD] = "coord_add",
    [MSG_COORD_REMOVE] = "coord_remove",
    [MSG_ADMIN] = "admin",
    [MSG_ROUTE] = "route",
    [MSG_P_UPDATE_VECTORS] = "points_update_vectors",
    [MSG_P_DELETE_VECTORS] = "points_delete_vectors",
};

bool msg_type_known(int type)
{
    return type >= 0 && type < MSG_TYPE_COUNT && type_names[type] != NULL;
}

const char *msg_type_name(int type)
{
    return msg_type_known(type) ? type_names[type] : "unknown";
}

bool msg_type_addressed(int type)
{
    switch (type) {
    case MSG_REPLICA_CREATE:
    case MSG_REPLICA_DROP:
    case MSG_REPLICA_INFO:
    case MSG_UPSERT:
    case MSG_DELETE:
    case MSG_GET:
    case MSG_SET_PAYLOAD:
    case MSG_COUNT:
    case MSG_SCROLL:
    case MSG_FACET:
    case MSG_SCROLL_ORDER:
    case MSG_SNAPSHOT_READ:
    case MSG_WAL_READ:
    case MSG_PAYLOAD_INDEX:
    case MSG_REPLICA_PULL:
    case MSG_REPLICA_FENCE:
    case MSG_REPLICATE:
    case MSG_REPLICA_DIGEST:
    case MSG_UPDATE_VECTORS:
    case MSG_DELETE_VECTORS:
        return true;
    default:
        return false;
    }
}

bool msg_type_replicated(int type)
{
    return type == MSG_UPSERT || type == MSG_DELETE || type == MSG_SET_PAYLOAD ||
           type == MSG_PAYLOAD_INDEX || type == MSG_UPDATE_VECTORS || type == MSG_DELETE_VECTORS;
}

int msg_query_check(const struct msg_query *q, uint32_t i, char *errmsg)
{
    if (q->k == 0 || q->k > PROTO_MAX_K) {
        dv_errmsg_set(errmsg, "query %u: k must be 1 to %d, got %u", i, PROTO_MAX_K, q->k);
        return DV_ERANGE;
    }
    if (q->ef > PROTO_MAX_EF) {
        dv_errmsg_set(errmsg, "query %u: ef must be %d or smaller, got %u", i, PROTO_MAX_EF, q->ef);
        return DV_ERANGE;
    }
    return DV_OK;
}

bool msg_type_collection(int type)
{
    switch (type) {
    case MSG_COLL_CREATE:
    case MSG_COLL_DROP:
    case MSG_COLL_INFO:
    case MSG_ROUTE:
    case MSG_P_UPSERT:
    case MSG_P_DELETE:
    case MSG_P_GET:
    case MSG_P_SET_PAYLOAD:
    case MSG_P_COUNT:
    case MSG_P_SCROLL:
    case MSG_P_FACET:
    case MSG_P_SCROLL_ORDER:
    case MSG_P_SEARCH:
    case MSG_P_INDEX:
    case MSG_P_UPDATE_VECTORS:
    case MSG_P_DELETE_VECTORS:
        return true;
    default:
        return false;
    }
}

bool msg_type_consistent_read(int type)
{
    return type == MSG_P_GET || type == MSG_P_COUNT || type == MSG_P_SCROLL || type == MSG_P_SEARCH;
}

bool msg_code_known(int64_t code)
{
    return code < 0 && code >= INT32_MIN && strcmp(dv_errname((int)code), "unknown") != 0;
}

uint32_t msg_request_fields(int type)
{
    static const uint8_t fields[MSG_TYPE_COUNT] = {
        [MSG_REPLICA_CREATE] = 8,
        [MSG_UPSERT] = 4,
        [MSG_DELETE] = 1,
        [MSG_GET] = 3,
        [MSG_SET_PAYLOAD] = 3,
        [MSG_COUNT] = 1,
        [MSG_SCROLL] = 5,
        [MSG_FACET] = 4,
        [MSG_SCROLL_ORDER] = 7,
        [MSG_SEARCH] = 3,
        [MSG_SNAPSHOT_READ] = 3,
        [MSG_WAL_READ] = 2,
        [MSG_PAYLOAD_INDEX] = 3,
        [MSG_COLL_CREATE] = 9,
        [MSG_P_UPSERT] = 4,
        [MSG_P_DELETE] = 1,
        [MSG_P_GET] = 3,
        [MSG_P_SET_PAYLOAD] = 3,
        [MSG_P_COUNT] = 1,
        [MSG_P_SCROLL] = 5,
        [MSG_P_FACET] = 4,
        [MSG_P_SCROLL_ORDER] = 7,
        [MSG_P_SEARCH] = 3,
        [MSG_P_INDEX] = 3,
        [MSG_NODE_REPORT] = 6,
        [MSG_COORD_ADD] = 3,
        [MSG_COORD_REMOVE] = 1,
        [MSG_REPLICA_PULL] = 12,
        [MSG_REPLICA_FENCE] = 1,
        [MSG_ADMIN] = 2,
        [MSG_REPLICATE] = 2,
        [MSG_UPDATE_VECTORS] = 4,
        [MSG_DELETE_VECTORS] = 2,
        [MSG_P_UPDATE_VECTORS] = 4,
        [MSG_P_DELETE_VECTORS] = 2,
    };
    /* addressed: collection, partition, epoch, term; replicated writes end with the
     * secondaries */
    return (msg_type_addressed(type)    ? 4
            : msg_type_collection(type) ? 1
                                        : 0) +
           fields[type] + (msg_type_replicated(type) ? 1 : 0);
}

/* ---- encode ------------------------------------------------------------------------------ */

int msgw_str(struct buf *b, struct msg_str s)
{
    return mpw_str(b, s.p ? s.p : "", s.p ? s.len : 0);
}

/* A bin that is never nil: {NULL, 0} is the empty bin; DV_EINVAL for NULL with a length. */
int msgw_bin(struct buf *b, struct msg_bytes v)
{
    if (!v.p && v.len)
        return DV_EINVAL;
    return mpw_bin(b, v.p ? (const void *)v.p : "", v.len);
}

static int msgw_bin_or_nil(struct buf *b, struct msg_bytes v)
{
    return v.p ? mpw_bin(b, v.p, v.len) : mpw_nil(b);
}

/* One raw msgpack value or nil; DV_EINVAL unless the bytes are exactly one value. */
int msgw_raw_or_nil(struct buf *b, struct msg_bytes v)
{
    if (!v.p)
        return mpw_nil(b);
    struct mpk r;
    mpk_init(&r, v.p, v.len);
    if (mpk_skip(&r) != DV_OK || !mpk_done(&r))
        return DV_EINVAL;
    return mpw_raw(b, v.p, v.len);
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "proto: vectors are written as host floats; big-endian hosts need a byte swap here"
#endif

static int msgw_floats(struct buf *b, const float *v, size_t n)
{
    return mpw_bin(b, v, n * 4);
}

static int msgw_ids(struct buf *b, const struct pid *ids, uint32_t n)
{
    int rc;
    W(mpw_array(b, n));
    for (uint32_t i = 0; i < n; i++)
        W(mpw_pid(b, &ids[i]));
    return DV_OK;
}

/* The partitions a search or sparse_stats names: [[partition, epoch]...]. */
static int msgw_targets(struct buf *b, const struct msg_target *t, uint32_t n)
{
    int rc;
    W(mpw_array(b, n));
    for (uint32_t i = 0; i < n; i++) {
        W(mpw_array(b, 2));
        W(mpw_u64(b, t[i].part));
        W(mpw_u64(b, t[i].epoch));
    }
    return DV_OK;
}

int msgw_replicas(struct buf *b, const struct msg_replica *r, uint32_t n)
{
    int rc;
    W(mpw_array(b, n));
    for (uint32_t i = 0; i < n; i++) {
        W(mpw_array(b, 3));
        W(msgw_str(b, r[i].coll));
        W(mpw_u64(b, r[i].part));
        W(mpw_u64(b, r[i].applied_lsn));
    }
    return DV_OK;
}

static int msgw_nvecs(struct buf *b, const struct msg_nvecs *nv);

/* Hits: [id, score, vector | nil, payload | nil] and, when the point's named vectors were
 * asked for, a 5th element with them. */
int msgw_hits(struct buf *b, const struct msg_hits *h)
{
    int rc;
    W(mpw_array(b, h->n));
    for (uint32_t i = 0; i < h->n; i++) {
        const struct msg_hit *x = &h->hits[i];
        W(mpw_array(b, x->named.v != NULL ? 5 : 4));
        W(mpw_pid(b, &x->id));
        W(mpw_f32(b, x->score));
        W(x->vec ? msgw_floats(b, x->vec, x->dim) : mpw_nil(b));
        W(msgw_bin_or_nil(b, x->payload));
        if (x->named.v != NULL)
            W(msgw_nvecs(b, &x->named));
    }
    return DV_OK;
}

/* A point's named vectors: [[name, n, bin(floats), bin(terms) | nil]...]. */
static int msgw_nvecs(struct buf *b, const struct msg_nvecs *nv)
{
    int rc;
    W(mpw_array(b, nv->n));
    for (uint32_t i = 0; i < nv->n; i++) {
        const struct msg_nvec *v = &nv->v[i];
        W(mpw_array(b, 4));
        W(msgw_str(b, v->name));
        W(mpw_u64(b, v->n));
        W(msgw_floats(b, v->v, v->nv));
        W(v->idx ? mpw_bin(b, v->idx, (size_t)v->n * 4) : mpw_nil(b));
    }
    return DV_OK;
}

/* A collection's named vectors: [[name, kind, dim, metric, m, ef_construction, sq8, idf]...]. */
int msgw_spaces(struct buf *b, const struct msg_coll_cfg *c)
{
    int rc;
    W(mpw_array(b, c->n_spaces));
    for (uint32_t i = 0; i < c->n_spaces; i++) {
        const struct msg_vspace *v = &c->spaces[i];
        W(mpw_array(b, 8));
        W(mpw_str(b, v->name, strlen(v->name)));
        W(mpw_u64(b, v->kind));
        W(mpw_u64(b, v->dim));
        W(mpw_u64(b, v->metric));
        W(mpw_u64(b, v->m));
        W(mpw_u64(b, v->ef_construction));
        W(mpw_bool(b, v->sq8));
        W(mpw_bool(b, v->idf));
    }
    return DV_OK;
}

/* The collection config, the one encoder of struct msg_coll_cfg: dim, metric, m,
 * ef_construction, ef_search, sq8, fsync, then (with_placement) partitions, replication. With
 * them it is the body of coll_create after the name and the start of coll_info's reply;
 * without them the start of a replica create (and of a pull's create tail). */
int msgw_coll_cfg(struct buf *b, const struct msg_coll_cfg *c, bool with_placement)
{
    int rc;
    W(mpw_u64(b, c->dim));
    W(mpw_u64(b, c->metric));
    W(mpw_u64(b, c->m));
    W(mpw_u64(b, c->ef_construction));
    W(mpw_u64(b, c->ef_search));
    W(mpw_bool(b, c->sq8));
    W(mpw_u64(b, c->fsync));
    if (!with_placement)
        return DV_OK;
    W(mpw_u64(b, c->partitions));
    return mpw_u64(b, c->replication);
}

int msgw_u32s(struct buf *b, const uint32_t *v, uint32_t n)
{
    int rc;
    W(mpw_array(b, n));
    for (uint32_t i = 0; i < n; i++)
        W(mpw_u64(b, v[i]));
    return DV_OK;
}

int msgw_strs(struct buf *b, const struct msg_str *s, uint32_t n)
{
    int rc;
    W(mpw_array(b, n));
    for (uint32_t i = 0; i < n; i++)
        W(msgw_str(b, s[i]));
    return DV_OK;
}

/* A query: [vec, k, ef, filter, with_payload, with_vector] and, for named vectors, a 7th
 * element [using, terms | nil, rows, [docs, bin(term counts)] | nil, [vector names]]. */
static int msgw_query(struct buf *b, const struct msg_query *q)
{
    int rc;
    bool ext = q->using.len > 0 || q->idx != NULL || q->rows > 0 || q->idf_df != NULL ||
               q->n_vec_names > 0;
    W(mpw_array(b, ext ? 7 : 6));
    W(msgw_floats(b, q->vec, q->dim));
    W(mpw_u64(b, q->k));
    W(mpw_u64(b, q->ef));
    W(msgw_raw_or_nil(b, q->filter));
    W(mpw_bool(b, q->with_payload));
    W(mpw_bool(b, q->with_vector));
    if (!ext)
        return DV_OK;
    W(mpw_array(b, 5));
    W(msgw_str(b, q->using));
    W(q->idx ? mpw_bin(b, q->idx, (size_t)q->dim * 4) : mpw_nil(b));
    W(mpw_u64(b, q->rows));
    if (q->idf_df != NULL) { /* [docs, bin(dim u64 counts)] */
        W(mpw_array(b, 2));
        W(mpw_u64(b, q->idf_docs));
        W(mpw_bin(b, q->idf_df, (size_t)q->dim * 8));
    } else {
        W(mpw_nil(b));
    }
    return msgw_strs(b, q->vec_names, q->n_vec_names);
}

/* An order_by start: nil, an integer, a float64 or a string. */
static int msgw_start(struct buf *b, const struct msg_start *s)
{
    switch (s->type) {
    case MSG_START_NONE:
        return mpw_nil(b);
    case MSG_START_INT:
        return mpw_i64(b, s->i);
    case MSG_START_FLOAT:
        return mpw_f64(b, s->f);
    case MSG_START_STR:
        return msgw_str(b, s->s);
    default:
        return DV_EINVAL;
    }
}

int msgw_error(struct buf *b, const struct msg_error *e)
{
    int rc;
    if (!msg_code_known(e->code))
        return DV_EINVAL;
    W(mpw_array(b, 3));
    W(mpw_i64(b, e->code));
    W(msgw_str(b, e->text));
    return mpw_u64(b, e->epoch);
}

/* The 8 fields of a replica create (config, incarnation), also the tail of a replica pull. */
static int msgw_create(struct buf *b, const struct msg_create_req *c)
{
    int rc;
    W(msgw_coll_cfg(b, &c->cfg, false));
    return mpw_u64(b, c->incarnation);
}

/* WAL records: [[lsn, type, bin body], ...] (a WAL read's reply, a replicate request). */
int msgw_wal_recs(struct buf *b, const struct msg_wal_rec *recs, uint32_t n)
{
    int rc;
    W(mpw_array(b, n));
    for (uint32_t i = 0; i < n; i++) {
        W(mpw_array(b, 3));
        W(mpw_u64(b, recs[i].lsn));
        W(mpw_u64(b, recs[i].type));
        W(msgw_bin(b, recs[i].body));
    }
    return DV_OK;
}

static int w_request_body(struct buf *b, const struct msg *m);

static int w_request(struct buf *b, const struct msg *m)
{
    int rc;
    const int t = m->type;
    /* A read consistency is one more field at the end, sent only when asked for, so that a
     * coordinator that predates it reads every other request. */
    bool consistency = msg_type_consistent_read(t) && m->read_consistency != 0;
    /* A node report's flags likewise, only when set, and its search port after them. */
    bool search = t == MSG_NODE_REPORT && m->u.node_report_req.search_url.len > 0;
    bool flags = t == MSG_NODE_REPORT && (m->u.node_report_req.flags != 0 || search);
    /* Named vectors: points' as a last field of upserts and vector updates, a collection's
     * definitions as a last field of coll_create and replica create. */
    bool named = (t == MSG_UPSERT || t == MSG_P_UPSERT || t == MSG_UPDATE_VECTORS ||
                  t == MSG_P_UPDATE_VECTORS) &&
                 m->u.upsert_req.named != NULL;
    bool spaces = (t == MSG_COLL_CREATE && m->u.coll_cfg.n_spaces > 0) ||
                  (t == MSG_REPLICA_CREATE && m->u.create_req.cfg.n_spaces > 0);
    /* A payload index's params likewise. */
    bool iparams = (t == MSG_PAYLOAD_INDEX || t == MSG_P_INDEX) && m->u.index_req.params.p != NULL;
    /* An ordered scroll's sample seed likewise. */
    bool sample = (t == MSG_SCROLL_ORDER || t == MSG_P_SCROLL_ORDER) && m->u.oscroll_req.sample;
    W(mpw_array(b, msg_request_fields(t) + (consistency || flags ? 1 : 0) + (search ? 1 : 0) +
                       (named || spaces || iparams || sample ? 1 : 0)));
    if (msg_type_addressed(t)) {
        W(msgw_str(b, m->addr.coll));
        W(mpw_u64(b, m->addr.part));
        W(mpw_u64(b, m->addr.epoch));
        W(mpw_u64(b, m->addr.term));
    } else if (msg_type_collection(t)) {
        W(msgw_str(b, m->addr.coll));
    }
    W(w_request_body(b, m));
    if (msg_type_replicated(t)) {
        W(mpw_array(b, m->n_secondaries));
        for (uint32_t i = 0; i < m->n_secondaries; i++) {
            W(mpw_array(b, 2));
            W(msgw_str(b, m->secondaries[i].node_id));
            W(msgw_str(b, m->secondaries[i].url));
        }
    }
    if (consistency)
        W(mpw_u64(b, m->read_consistency));
    if (named) {
        const struct msg_upsert_req *u = &m->u.upsert_req;
        W(mpw_array(b, u->n));
        for (uint32_t i = 0; i < u->n; i++)
            W(msgw_nvecs(b, &u->named[i]));
    }
    if (spaces)
        W(msgw_spaces(b, t == MSG_COLL_CREATE ? &m->u.coll_cfg : &m->u.create_req.cfg));
    if (iparams)
        W(msgw_raw_or_nil(b, m->u.index_req.params));
    if (sample)
        W(mpw_u64(b, m->u.oscroll_req.sample));
    return DV_OK;
}

/* The type's own fields of a request, after the address. */
static int w_request_body(struct buf *b, const struct msg *m)
{
    int rc;
    switch (m->type) {
    case MSG_REPLICA_CREATE:
        W(msgw_create(b, &m->u.create_req));
        break;
    case MSG_REPLICA_PULL: {
        const struct msg_pull_req *p = &m->u.pull_req;
        W(mpw_u64(b, p->op));
        W(msgw_str(b, p->source));
        W(mpw_u64(b, p->rate));
        W(mpw_u64(b, p->until_lsn));
        W(msgw_create(b, &p->create));
        break;
    }
    case MSG_REPLICA_FENCE:
        W(mpw_u64(b, m->u.fence_req.op));
        break;
    case MSG_ADMIN:
        W(msgw_str(b, m->u.admin_req.op));
        W(msgw_raw_or_nil(b, m->u.admin_req.args));
        break;
    case MSG_COLL_CREATE:
        W(msgw_coll_cfg(b, &m->u.coll_cfg, true));
        break;
    case MSG_UPSERT:
    case MSG_P_UPSERT:
    case MSG_UPDATE_VECTORS:
    case MSG_P_UPDATE_VECTORS: {
        const struct msg_upsert_req *u = &m->u.upsert_req;
        W(msgw_ids(b, u->ids, u->n));
        W(mpw_u64(b, u->dim));
        W(msgw_floats(b, u->vecs, (size_t)u->n * u->dim));
        W(mpw_array(b, u->n));
        for (uint32_t i = 0; i < u->n; i++) {
            struct msg_bytes none = {NULL, 0};
            W(msgw_bin_or_nil(b, u->payloads ? u->payloads[i] : none));
        }
        break;
    }
    case MSG_DELETE:
    case MSG_P_DELETE:
        W(msgw_ids(b, m->u.delete_req.ids, m->u.delete_req.n));
        break;
    case MSG_DELETE_VECTORS:
    case MSG_P_DELETE_VECTORS:
        W(msgw_ids(b, m->u.delvec_req.ids, m->u.delvec_req.n));
        W(msgw_strs(b, m->u.delvec_req.names, m->u.delvec_req.n_names));
        break;
    case MSG_GET:
    case MSG_P_GET:
        W(msgw_ids(b, m->u.get_req.ids, m->u.get_req.n));
        W(mpw_bool(b, m->u.get_req.with_vector));
        W(mpw_bool(b, m->u.get_req.with_payload));
        break;
    case MSG_SET_PAYLOAD:
    case MSG_P_SET_PAYLOAD:
        W(mpw_u64(b, m->u.set_payload_req.op));
        W(msgw_ids(b, m->u.set_payload_req.ids, m->u.set_payload_req.n));
        W(msgw_raw_or_nil(b, m->u.set_payload_req.data));
        break;
    case MSG_COUNT:
    case MSG_P_COUNT:
        W(msgw_raw_or_nil(b, m->u.count_req.filter));
        break;
    case MSG_SCROLL:
    case MSG_P_SCROLL: {
        const struct msg_scroll_req *s = &m->u.scroll_req;
        W(s->has_from ? mpw_pid(b, &s->from) : mpw_nil(b));
        W(mpw_u64(b, s->limit));
        W(msgw_raw_or_nil(b, s->filter));
        W(mpw_bool(b, s->with_vector));
        W(mpw_bool(b, s->with_payload));
        break;
    }
    case MSG_FACET:
    case MSG_P_FACET: {
        const struct msg_facet_req *f = &m->u.facet_req;
        W(msgw_str(b, f->key));
        W(msgw_raw_or_nil(b, f->filter));
        W(mpw_u64(b, f->limit));
        W(mpw_bool(b, f->exact));
        break;
    }
    case MSG_SCROLL_ORDER:
    case MSG_P_SCROLL_ORDER: {
        const struct msg_oscroll_req *o = &m->u.oscroll_req;
        W(msgw_str(b, o->key));
        W(mpw_bool(b, o->desc));
        W(msgw_start(b, &o->start));
        W(mpw_u64(b, o->limit));
        W(msgw_raw_or_nil(b, o->filter));
        W(mpw_bool(b, o->with_vector));
        W(mpw_bool(b, o->with_payload));
        break;
    }
    case MSG_SEARCH: {
        const struct msg_search_req *s = &m->u.search_req;
        W(msgw_str(b, m->addr.coll));
        W(msgw_targets(b, s->parts, s->n_parts));
        W(mpw_array(b, s->n_queries));
        for (uint32_t i = 0; i < s->n_queries; i++)
            W(msgw_query(b, &s->queries[i]));
        break;
    }
    case MSG_SPARSE_STATS: {
        const struct msg_sstats_req *s = &m->u.sstats_req;
        W(msgw_str(b, m->addr.coll));
        W(msgw_targets(b, s->parts, s->n_parts));
        W(msgw_str(b, s->using));
        W(mpw_bin(b, s->terms, (size_t)s->n_terms * 4));
        break;
    }
    case MSG_P_SEARCH: {
        const struct msg_csearch_req *s = &m->u.csearch_req;
        W(mpw_array(b, s->n_queries));
        for (uint32_t i = 0; i < s->n_queries; i++)
            W(msgw_query(b, &s->queries[i]));
        W(mpw_bool(b, s->allow_partial));
        W(mpw_u64(b, s->timeout_ms));
        break;
    }
    case MSG_SNAPSHOT_READ:
        W(mpw_u64(b, m->u.snapshot_req.session));
        W(mpw_u64(b, m->u.snapshot_req.offset));
        W(mpw_u64(b, m->u.snapshot_req.max_bytes));
        break;
    case MSG_WAL_READ:
        W(mpw_u64(b, m->u.wal_req.from));
        W(mpw_u64(b, m->u.wal_req.max_bytes));
        break;
    case MSG_REPLICATE:
        W(msgw_wal_recs(b, m->u.replicate_req.recs, m->u.replicate_req.n));
        W(mpw_u64(b, m->u.replicate_req.term_start));
        break;
    case MSG_PAYLOAD_INDEX:
    case MSG_P_INDEX:
        W(mpw_u64(b, m->u.index_req.op));
        W(msgw_str(b, m->u.index_req.key));
        W(mpw_u64(b, m->u.index_req.kind));
        break;
    case MSG_COORD_ADD:
        W(mpw_u64(b, m->u.coord_req.id));
        W(msgw_str(b, m->u.coord_req.raft_addr));
        W(msgw_str(b, m->u.coord_req.client_url));
        break;
    case MSG_COORD_REMOVE:
        W(mpw_u64(b, m->u.coord_req.id));
        break;
    case MSG_NODE_REPORT: {
        const struct msg_node_report_req *r = &m->u.node_report_req;
        W(msgw_str(b, r->node_id));
        W(msgw_str(b, r->url));
        W(msgw_str(b, r->http_url));
        W(mpw_f64(b, r->weight));
        W(mpw_u64(b, r->capacity));
        W(mpw_array(b, r->n));
        for (uint32_t i = 0; i < r->n; i++) {
            W(mpw_array(b, 5));
            W(msgw_str(b, r->replicas[i].coll));
            W(mpw_u64(b, r->replicas[i].part));
            W(mpw_u64(b, r->replicas[i].applied_lsn));
            W(mpw_u64(b, r->replicas[i].points));
            W(mpw_u64(b, r->replicas[i].incarnation));
        }
        if (r->flags || r->search_url.len)
            W(mpw_u64(b, r->flags));
        if (r->search_url.len)
            W(msgw_str(b, r->search_url));
        break;
    }
    default: /* hello, drop, list, info, stats, coll_drop, coll_list, coll_info, cluster:
              * nothing beyond the address or the name */
        break;
    }
    return DV_OK;
}

static int w_msg(struct buf *b, const struct msg *m)
{
    int rc;
    W(mpw_array(b, m->reply ? 6 : 5));
    W(mpw_u64(b, PROTO_VERSION));
    W(mpw_u64(b, (uint64_t)m->type));
    W(mpw_u64(b, m->reply ? 1 : 0));
    W(mpw_u64(b, m->req_id));
    if (!m->reply)
        return w_request(b, m);
    if (m->err.code) {
        W(msgw_error(b, &m->err));
        return mpw_nil(b);
    }
    W(mpw_nil(b));
    return msgw_reply_body(b, m);
}

int msg_encode(const struct msg *m, struct buf *out, char *errmsg)
{
    if (!msg_type_known(m->type) || (m->type == MSG_ERROR && !m->err.code) ||
        (m->type == MSG_ERROR && !m->reply)) {
        dv_errmsg_set(errmsg, "msg: cannot encode message type %d", m->type);
        return DV_EINVAL;
    }
    size_t start = out->len;
    int rc = w_msg(out, m);
    if (rc == DV_OK && out->len - start > PROTO_MAX_MSG)
        rc = DV_ETOOBIG;
    if (rc != DV_OK) {
        out->len = start;
        dv_errmsg_set(errmsg, "msg: encode %s %s: %s", msg_type_name(m->type),
                      m->reply ? "reply" : "request", dv_strerror(rc));
    }
    return rc;
}

void msg_peek_header(const void *p, size_t n, int *type, uint64_t *req_id)
{
    struct mpk r;
    uint32_t len;
    uint64_t v, t, id;
    *type = MSG_ERROR;
    *req_id = 0;
    mpk_init(&r, p, n);
    if (mpk_array(&r, &len) != 0 || len < 4 || mpk_u64(&r, &v) != 0 || mpk_u64(&r, &t) != 0 ||
        mpk_u64(&r, &v) != 0 || mpk_u64(&r, &id) != 0)
        return;
    *req_id = id;
    if (t > 0 && t < MSG_TYPE_COUNT && msg_type_known((int)t))
        *type = (int)t;
}

void msg_error_fill(struct msg *rep, int type, uint64_t req_id, int code, const char *text,
                    uint64_t epoch)
{
    memset(rep, 0, sizeof *rep);
    rep->type = msg_type_known(type) ? type : MSG_ERROR;
    rep->reply = true;
    rep->req_id = req_id;
    rep->err.code = msg_code_known(code) ? code : DV_EIO;
    rep->err.text = (struct msg_str){text, (uint32_t)strlen(text)};
    rep->err.epoch = code == DV_ESTALE ? epoch : 0;
}

int msg_encode_error(struct buf *out, int type, uint64_t req_id, int code, const char *text,
                     uint64_t epoch)
{
    struct msg rep;
    char err[DV_ERRMSG_SIZE];
    msg_error_fill(&rep, type, req_id, code, text, epoch);
    buf_reset(out);
    return msg_encode(&rep, out, err);
}
