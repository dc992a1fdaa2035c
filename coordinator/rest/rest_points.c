/* rest_points.c - the REST API's point calls: upsert, get, delete, payloads, search, query,
 * scroll and count; the by-filter writes Qdrant has and the native API lacks. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsonmp.h"
#include "mpk.h"
#include "rest_int.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

/* Points per page of a by-filter write (a scroll, then a write by ids, per page). */
#define FILTER_PAGE 1000
/* Most ids one request may name (the coordinator's max_batch limits writes further). */
#define MAX_IDS (1u << 22)

static int oom(struct rx *x)
{
    return rx_fail(x, 500, "Service internal error: out of memory");
}

static struct msg_bytes mbytes(const struct buf *b, size_t off, size_t len)
{
    return (struct msg_bytes){len ? b->data + off : NULL, (uint32_t)len};
}

/* Higher scores are better for Cosine and Dot; lower for Euclid and Manhattan. */
static bool lower_better(uint32_t metric)
{
    return metric == 0 || metric == 3;
}

/* ---- upsert ------------------------------------------------------------------------------ */

/* Reads one vector into the batch (vecs grown to hold n * dim); the first fixes dim. */
static int take_vector(struct rx *x, json_t *v, const char *field, uint32_t i, uint32_t n,
                       uint32_t *dim, float **vecs)
{
    uint32_t d;
    int st = rj_vector(x, v, field, NULL, &d);
    if (st != 200)
        return st;
    if (*vecs == NULL) {
        if (*dim == 0)
            *dim = d;
        if (d != *dim)
            return rx_fail(x, 400, "Wrong input: Vector dimension error: expected dim: %u, got %u",
                           *dim, d);
        if (d == 0)
            return rx_fail(x, 400, "Wrong input: %s: an empty vector", field);
        /* Every value takes at least two bytes of the body: n vectors of d values that cannot
         * fit in it are refused before n * d floats are allocated. */
        if ((uint64_t)n * d > x->body_len / 2)
            return rx_fail(x, 400,
                           "Wrong input: %u points of %u-dimensional vectors cannot fit in a "
                           "body of %zu bytes (a point lacks its vector)",
                           n, d, x->body_len);
        if ((*vecs = malloc((size_t)n * d * sizeof **vecs)) == NULL)
            return oom(x);
    } else if (d != *dim) {
        return rx_fail(x, 400, "Wrong input: Vector dimension error: expected dim: %u, got %u",
                       *dim, d);
    }
    return rj_vector(x, v, field, *vecs + (size_t)i * *dim, &d);
}

/* A payload (object or null) appended to mp as msgpack; *len 0 for none. */
static int take_payload(struct rx *x, json_t *p, const char *field, struct buf *mp, size_t *off,
                        size_t *len)
{
    *off = mp->len;
    *len = 0;
    if (p == NULL || json_is_null(p))
        return 200;
    if (!json_is_object(p))
        return rj_type_error(x, field, "expected an object (a payload)");
    char err[DV_ERRMSG_SIZE];
    if (jsonmp_from_json(p, mp, err) != DV_OK)
        return rx_fail(x, 400, "Wrong input: %s: %s", field, err);
    *len = mp->len - *off;
    return 200;
}

int rh_upsert(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    json_t *j = x->json;
    static const char *const unsupported[] = {"shard_key", NULL};
    if ((st = rj_unsupported(x, j, unsupported)) != 200)
        return st;
    json_t *batch = rj_get(j, "batch"), *points = rj_get(j, "points");
    if (batch == NULL && points == NULL)
        return rx_fail(x, 400,
                       "Format error in JSON body: data did not match any variant of "
                       "untagged enum PointInsertOperations (expected `points` or "
                       "`batch`)");
    uint32_t dim = 0, metric;
    rx_meta(x, coll, &dim, &metric); /* when known, vectors are checked against it here */
    struct pid *ids = NULL;
    float *vecs = NULL;
    struct msg_bytes *pays = NULL;
    size_t *poff = NULL, *plen = NULL;
    struct buf mp = BUF_INIT;
    uint32_t n = 0;
    char f[64];
    if (batch) {
        if (!json_is_object(batch))
            return rj_type_error(x, "batch", "expected an object");
        json_t *bv = json_object_get(batch, "vectors"), *bp = rj_get(batch, "payloads");
        if ((st = rj_ids(x, json_object_get(batch, "ids"), "batch.ids", MAX_IDS, &ids, &n)) != 200)
            goto out;
        if (json_is_object(bv)) {
            /* {"": [[...], ...]}: the default vector by name. */
            json_t *def = json_object_get(bv, "");
            if (json_object_size(bv) != 1 || def == NULL) {
                st = rx_fail(x, 400, "Wrong input: named vectors are not supported by dvec");
                goto out;
            }
            bv = def;
        }
        if (!json_is_array(bv)) {
            st = rj_type_error(x, "batch.vectors", "expected an array of vectors");
            goto out;
        }
        if (json_array_size(bv) != n || (bp && json_is_array(bp) && json_array_size(bp) != n)) {
            st = rx_fail(x, 400, "Wrong input: number of ids, vectors and payloads must be equal");
            goto out;
        }
        if (bp && !json_is_array(bp)) {
            st = rj_type_error(x, "batch.payloads", "expected an array");
            goto out;
        }
        poff = calloc(n ? n : 1, sizeof *poff);
        plen = calloc(n ? n : 1, sizeof *plen);
        if (poff == NULL || plen == NULL) {
            st = oom(x);
            goto out;
        }
        for (uint32_t i = 0; i < n; i++) {
            snprintf(f, sizeof f, "batch.vectors[%u]", i);
            if ((st = take_vector(x, json_array_get(bv, i), f, i, n, &dim, &vecs)) != 200)
                goto out;
            snprintf(f, sizeof f, "batch.payloads[%u]", i);
            if (bp &&
                (st = take_payload(x, json_array_get(bp, i), f, &mp, &poff[i], &plen[i])) != 200)
                goto out;
        }
    } else {
        if (!json_is_array(points)) {
            st = rj_type_error(x, "points", "expected an array of points");
            goto out;
        }
        size_t k = json_array_size(points);
        if (k > MAX_IDS) {
            st = rx_fail(x, 400, "Wrong input: %zu points, at most %u per request", k, MAX_IDS);
            goto out;
        }
        n = (uint32_t)k;
        ids = calloc(n ? n : 1, sizeof *ids);
        poff = calloc(n ? n : 1, sizeof *poff);
        plen = calloc(n ? n : 1, sizeof *plen);
        if (ids == NULL || poff == NULL || plen == NULL) {
            st = oom(x);
            goto out;
        }
        for (uint32_t i = 0; i < n; i++) {
            json_t *p = json_array_get(points, i);
            if (!json_is_object(p)) {
                snprintf(f, sizeof f, "points[%u]", i);
                st = rj_type_error(x, f, "expected an object {id, vector, payload}");
                goto out;
            }
            json_t *id = json_object_get(p, "id"), *vec = json_object_get(p, "vector");
            if (id == NULL || vec == NULL) {
                st = rx_fail(x, 400, "Format error in JSON body: points[%u]: missing field `%s`", i,
                             id == NULL ? "id" : "vector");
                goto out;
            }
            snprintf(f, sizeof f, "points[%u].id", i);
            if ((st = rj_id(x, id, f, &ids[i])) != 200)
                goto out;
            snprintf(f, sizeof f, "points[%u].vector", i);
            if ((st = take_vector(x, vec, f, i, n, &dim, &vecs)) != 200)
                goto out;
            snprintf(f, sizeof f, "points[%u].payload", i);
            if ((st = take_payload(x, json_object_get(p, "payload"), f, &mp, &poff[i], &plen[i])) !=
                200)
                goto out;
        }
    }
    if (n == 0) {
        /* Nothing to write: still a 404 for a collection that does not exist. */
        if (!rx_meta(x, coll, NULL, NULL)) {
            st = rx_fail(x, 404, "Not found: Collection `%s` doesn't exist!", coll);
            goto out;
        }
        st = jw_update(x);
        goto out;
    }
    if ((pays = calloc(n, sizeof *pays)) == NULL) {
        st = oom(x);
        goto out;
    }
    for (uint32_t i = 0; i < n; i++)
        pays[i] = mbytes(&mp, poff[i], plen[i]);
    struct msg q = {.type = MSG_P_UPSERT};
    q.addr.coll = S(coll);
    q.u.upsert_req = (struct msg_upsert_req){ids, vecs, pays, n, dim, NULL};
    struct msg_reply rep;
    if ((st = rx_call(x, &q, &rep)) == 200) {
        msg_reply_free(&rep);
        st = jw_update(x);
    }
out:
    free(ids);
    free(vecs);
    free(pays);
    free(poff);
    free(plen);
    buf_free(&mp);
    return st;
}

/* ---- get --------------------------------------------------------------------------------- */

/* Writes the hits as a JSON array of Records (or ScoredPoints). */
static int write_points(struct rx *x, const struct msg_hit *h, uint32_t n, bool scored,
                        const struct psel *sel, bool with_vector)
{
    int rc = jw_raw(&x->res, "[");
    for (uint32_t i = 0; i < n && rc == DV_OK; i++) {
        if (i)
            rc = jw_raw(&x->res, ",");
        if (rc == DV_OK)
            rc = jw_point(&x->res, &h[i], scored, sel, with_vector);
    }
    if (rc == DV_OK)
        rc = jw_raw(&x->res, "]");
    if (rc == DV_ENOMEM)
        return oom(x);
    return rc == DV_OK ? 200
                       : rx_fail(x, 500,
                                 "Service internal error: a payload cannot be "
                                 "shown as JSON (%s)",
                                 dv_strerror(rc));
}

int rh_get(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    struct psel sel;
    bool wv;
    struct pid *ids;
    uint32_t n;
    json_t *jids = json_object_get(x->json, "ids");
    if (jids == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `ids`");
    static const char *const unsupported[] = {"shard_key", NULL};
    if ((st = rj_unsupported(x, x->json, unsupported)) != 200 ||
        (st = rj_psel(x, x->json, "with_payload", true, &sel)) != 200 ||
        (st = rj_with_vector(x, x->json, false, &wv)) != 200 ||
        (st = rj_ids(x, jids, "ids", MAX_IDS, &ids, &n)) != 200)
        return st;
    struct msg q = {.type = MSG_P_GET};
    q.addr.coll = S(coll);
    q.u.get_req = (struct msg_get_req){ids, n, wv, sel.on};
    struct msg_reply rep;
    st = rx_call(x, &q, &rep);
    free(ids);
    if (st != 200)
        return st;
    st = write_points(x, rep.m.u.get_rep.hits, rep.m.u.get_rep.n, false, &sel, wv);
    msg_reply_free(&rep);
    return st;
}

/* Parses a point id given in the path: a decimal number or a UUID. */
static int path_id(struct rx *x, const char *s, struct pid *id)
{
    if (pid_parse(s, strlen(s), id) != DV_OK)
        return rx_fail(x, 400,
                       "Wrong input: `%.64s` is not a point id (an unsigned integer or a UUID)", s);
    return 200;
}

int rh_get_one(struct rx *x, const char *coll, const char *sid)
{
    struct pid id;
    int st = path_id(x, sid, &id);
    if (st != 200)
        return st;
    struct msg q = {.type = MSG_P_GET};
    q.addr.coll = S(coll);
    q.u.get_req = (struct msg_get_req){&id, 1, true, true};
    struct msg_reply rep;
    if ((st = rx_call(x, &q, &rep)) != 200)
        return st;
    if (rep.m.u.get_rep.n == 0) {
        msg_reply_free(&rep);
        char t[PID_TEXT_MAX];
        pid_format(&id, t);
        return rx_fail(x, 404, "Not found: No point with id %s found", t);
    }
    struct psel all = {.on = true};
    int rc = jw_point(&x->res, &rep.m.u.get_rep.hits[0], false, &all, true);
    msg_reply_free(&rep);
    if (rc == DV_ENOMEM)
        return oom(x);
    return rc == DV_OK ? 200 : rx_fail(x, 500, "Service internal error: %s", dv_strerror(rc));
}

/* ---- writes by ids or by filter ---------------------------------------------------------- */

/* What a write does with one list of ids (a request's, or a page of a filter's matches). */
struct write_op {
    int type; /* MSG_P_DELETE or MSG_P_SET_PAYLOAD */
    uint32_t op;
    struct msg_bytes data;
};

static int write_ids(struct rx *x, const char *coll, const struct write_op *w, struct pid *ids,
                     uint32_t n)
{
    struct msg q = {.type = w->type};
    q.addr.coll = S(coll);
    if (w->type == MSG_P_DELETE)
        q.u.delete_req = (struct msg_ids_req){ids, n};
    else
        q.u.set_payload_req = (struct msg_set_payload_req){w->op, ids, n, w->data};
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    if (st == 200)
        msg_reply_free(&rep);
    return st;
}

/*
 * Applies the write to every point matching `filter`, a page of FILTER_PAGE at a time: a
 * scroll from the last id seen, then the write by the page's ids. Not atomic: a point written
 * concurrently may be missed or included, and a failure leaves the pages before it applied.
 * The scroll cursor only moves forward, so a write that changes whether a point matches (a
 * payload change) visits each point at most once.
 */
static int write_filter(struct rx *x, const char *coll, const struct write_op *w,
                        struct msg_bytes filter)
{
    bool has_from = false;
    struct pid from = {0};
    for (;;) {
        struct msg q = {.type = MSG_P_SCROLL};
        q.addr.coll = S(coll);
        q.u.scroll_req = (struct msg_scroll_req){has_from, from, FILTER_PAGE, filter, false, false};
        struct msg_reply rep;
        int st = rx_call(x, &q, &rep);
        if (st != 200)
            return st;
        const struct msg_scroll_rep *s = &rep.m.u.scroll_rep;
        uint32_t n = s->hits.n;
        bool more = s->more;
        from = s->next;
        struct pid *ids = malloc((n ? n : 1) * sizeof *ids);
        if (ids == NULL) {
            msg_reply_free(&rep);
            return oom(x);
        }
        for (uint32_t i = 0; i < n; i++)
            ids[i] = s->hits.hits[i].id;
        msg_reply_free(&rep);
        st = n ? write_ids(x, coll, w, ids, n) : 200;
        free(ids);
        if (st != 200)
            return st;
        if (!more)
            return 200;
        has_from = true;
    }
}

/* The PointsSelector of a body: {"points": [...]} or {"filter": {...}}, both optional for
 * payload calls (`required` says whether one must be there). */
static int run_write(struct rx *x, const char *coll, const struct write_op *w, struct buf *mp)
{
    json_t *pts = rj_get(x->json, "points"), *flt = rj_get(x->json, "filter");
    if (pts && flt)
        return rx_fail(x, 400, "Wrong input: give either `points` or `filter`, not both");
    if (pts == NULL && flt == NULL)
        return rx_fail(x, 400, "Format error in JSON body: expected `points` (ids) or `filter`");
    if (pts) {
        struct pid *ids;
        uint32_t n;
        int st = rj_ids(x, pts, "points", MAX_IDS, &ids, &n);
        if (st != 200)
            return st;
        st = n ? write_ids(x, coll, w, ids, n) : 200;
        free(ids);
        if (st == 200 && n == 0 && !rx_meta(x, coll, NULL, NULL))
            st = rx_fail(x, 404, "Not found: Collection `%s` doesn't exist!", coll);
        return st;
    }
    size_t off, len;
    int st = rj_filter(x, flt, "filter", mp, &off, &len);
    if (st != 200)
        return st;
    return write_filter(x, coll, w, mbytes(mp, off, len));
}

int rh_delete(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    static const char *const unsupported[] = {"shard_key", NULL};
    if ((st = rj_unsupported(x, x->json, unsupported)) != 200)
        return st;
    struct write_op w = {.type = MSG_P_DELETE};
    struct buf mp = BUF_INIT;
    st = run_write(x, coll, &w, &mp);
    buf_free(&mp);
    return st == 200 ? jw_update(x) : st;
}

/* op: 1 set, 2 overwrite, 3 delete keys, 4 clear (enum part_payload_op). */
int rh_payload(struct rx *x, const char *coll, uint32_t op)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    static const char *const unsupported[] = {"shard_key", "key", NULL};
    if ((st = rj_unsupported(x, x->json, unsupported)) != 200)
        return st;
    struct buf mp = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    struct write_op w = {.type = MSG_P_SET_PAYLOAD, .op = op};
    if (op == 1 || op == 2) {
        json_t *p = json_object_get(x->json, "payload");
        if (p == NULL) {
            st = rx_fail(x, 400, "Format error in JSON body: missing field `payload`");
            goto out;
        }
        if (!json_is_object(p)) {
            st = rj_type_error(x, "payload", "expected an object");
            goto out;
        }
        if (jsonmp_from_json(p, &mp, err) != DV_OK) {
            st = rx_fail(x, 400, "Wrong input: payload: %s", err);
            goto out;
        }
    } else if (op == 3) {
        json_t *k = json_object_get(x->json, "keys");
        if (k == NULL) {
            st = rx_fail(x, 400, "Format error in JSON body: missing field `keys`");
            goto out;
        }
        size_t i;
        json_t *e;
        bool strings = json_is_array(k);
        json_array_foreach(k, i, e) strings = strings && json_is_string(e);
        if (!strings) {
            st = rj_type_error(x, "keys", "expected an array of strings");
            goto out;
        }
        if (jsonmp_from_json(k, &mp, err) != DV_OK) {
            st = rx_fail(x, 400, "Wrong input: keys: %s", err);
            goto out;
        }
    }
    /* The data first in mp (its bytes do not move: filters are appended after it is fixed). */
    size_t dlen = mp.len;
    struct buf fmp = BUF_INIT;
    w.data = mbytes(&mp, 0, dlen);
    st = run_write(x, coll, &w, &fmp);
    buf_free(&fmp);
    if (st == 200)
        st = jw_update(x);
out:
    buf_free(&mp);
    return st;
}

/* ---- search and query -------------------------------------------------------------------- */

/* One search of a batch, as parsed: a nearest-vector search, or (a query without `query`)
 * points in id order. */
struct plan {
    bool scroll;
    float *vec; /* owned */
    uint32_t dim;
    uint32_t limit, offset, ef;
    size_t f_off, f_len; /* filter in the batch's msgpack buffer */
    bool has_thr;
    float thr;
    struct psel sel;
    bool with_vector;
    bool exclude; /* a query by point id: that point is not a result */
    struct pid excl;
    uint32_t qi; /* its query in the native request */
};

static void plans_free(struct plan *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        free(p[i].vec);
    free(p);
}

/* Looks up the vector of point `id` (a query by id). */
static int vector_of(struct rx *x, const char *coll, const struct pid *id, struct plan *p)
{
    struct msg q = {.type = MSG_P_GET};
    q.addr.coll = S(coll);
    struct pid one = *id;
    q.u.get_req = (struct msg_get_req){&one, 1, true, false};
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    if (st != 200)
        return st;
    const struct msg_hits *h = &rep.m.u.get_rep;
    if (h->n == 0 || h->hits[0].vec == NULL) {
        msg_reply_free(&rep);
        char t[PID_TEXT_MAX];
        pid_format(id, t);
        return rx_fail(x, 404, "Not found: No point with id %s found", t);
    }
    p->dim = h->hits[0].dim;
    p->vec = malloc((size_t)p->dim * sizeof *p->vec);
    if (p->vec)
        memcpy(p->vec, h->hits[0].vec, (size_t)p->dim * sizeof *p->vec);
    msg_reply_free(&rep);
    if (p->vec == NULL)
        return oom(x);
    p->exclude = true;
    p->excl = *id;
    return 200;
}

/* A vector input (dense vector, or a point id whose vector is used). */
static int vector_input(struct rx *x, const char *coll, json_t *v, const char *field,
                        struct plan *p)
{
    if (json_is_integer(v) || json_is_string(v)) {
        struct pid id;
        int st = rj_id(x, v, field, &id);
        if (st == 200 && x->fast)
            return REST_SLOW; /* the lookup is a call: a worker's */
        return st == 200 ? vector_of(x, coll, &id, p) : st;
    }
    if (!json_is_array(v))
        return rx_fail(x, 400,
                       "Wrong input: %s: dvec serves nearest-neighbour queries by a dense vector "
                       "or a point id",
                       field);
    int st = rj_vector(x, v, field, NULL, &p->dim);
    if (st != 200)
        return st;
    uint32_t dim;
    if (rx_meta(x, coll, &dim, NULL) && dim != p->dim)
        return rx_fail(x, 400, "Wrong input: Vector dimension error: expected dim: %u, got %u", dim,
                       p->dim);
    if ((p->vec = malloc((p->dim ? p->dim : 1) * sizeof *p->vec)) == NULL)
        return oom(x);
    return rj_vector(x, v, field, p->vec, &p->dim);
}

/* The members search and query requests share: filter, params, score_threshold, limit,
 * offset, with_payload, with_vector. */
static int common_params(struct rx *x, json_t *o, bool limit_required, struct plan *p,
                         struct buf *mp)
{
    int st;
    static const char *const unsupported[] = {"shard_key", "lookup_from", NULL};
    if ((st = rj_unsupported(x, o, unsupported)) != 200)
        return st;
    if ((st = rj_filter(x, json_object_get(o, "filter"), "filter", mp, &p->f_off, &p->f_len)) !=
        200)
        return st;
    json_t *params = rj_get(o, "params");
    uint64_t ef = 0;
    if (params) {
        bool exact;
        if (!json_is_object(params))
            return rj_type_error(x, "params", "expected an object");
        if ((st = rj_u64(x, params, "hnsw_ef", 0, 0, PROTO_MAX_EF, &ef)) != 200 ||
            (st = rj_bool(x, params, "exact", false, &exact)) != 200)
            return st;
        /* No exhaustive scan in dvec: a wide walk stands in for it. */
        if (exact && ef < 2000)
            ef = 2000;
    }
    p->ef = (uint32_t)ef;
    json_t *thr = rj_get(o, "score_threshold");
    if (thr) {
        if (!json_is_number(thr))
            return rj_type_error(x, "score_threshold", "expected a number");
        p->has_thr = true;
        p->thr = (float)json_number_value(thr);
    }
    uint64_t limit, offset;
    if (limit_required && rj_get(o, "limit") == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `limit`");
    if ((st = rj_u64(x, o, "limit", 10, 1, PROTO_MAX_K, &limit)) != 200 ||
        (st = rj_u64(x, o, "offset", 0, 0, PROTO_MAX_K, &offset)) != 200)
        return st;
    if (limit + offset > PROTO_MAX_K) {
        char what[64];
        snprintf(what, sizeof what, "limit + offset must be %u or smaller", PROTO_MAX_K);
        return rj_invalid(x, "limit", what);
    }
    p->limit = (uint32_t)limit;
    p->offset = (uint32_t)offset;
    if ((st = rj_psel(x, o, "with_payload", false, &p->sel)) != 200 ||
        (st = rj_with_vector(x, o, false, &p->with_vector)) != 200)
        return st;
    return 200;
}

/* A SearchRequest: {vector, filter, params, limit, offset, with_payload, with_vector,
 * score_threshold}. */
static int parse_search(struct rx *x, const char *coll, json_t *o, struct plan *p, struct buf *mp)
{
    if (!json_is_object(o))
        return rj_type_error(x, "searches[]", "expected an object");
    json_t *v = json_object_get(o, "vector");
    if (v == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `vector`");
    if (json_is_object(v) && json_object_get(v, "vector") != NULL) {
        /* NamedVector {"name", "vector"}: the default name only. */
        json_t *name = json_object_get(v, "name");
        if (!json_is_string(name) || json_string_value(name)[0] != '\0')
            return rx_fail(x, 400, "Wrong input: Not existing vector name error: %.64s",
                           json_is_string(name) ? json_string_value(name) : "?");
        v = json_object_get(v, "vector");
    }
    int st = common_params(x, o, true, p, mp);
    if (st != 200)
        return st;
    return vector_input(x, coll, v, "vector", p);
}

/* A QueryRequest: {query, using, prefetch, filter, params, score_threshold, limit, offset,
 * with_payload, with_vector}. */
static int parse_query(struct rx *x, const char *coll, json_t *o, struct plan *p, struct buf *mp)
{
    if (!json_is_object(o))
        return rj_type_error(x, "searches[]", "expected an object");
    int st;
    static const char *const unsupported[] = {"prefetch", NULL};
    if ((st = rj_unsupported(x, o, unsupported)) != 200)
        return st;
    json_t *use = rj_get(o, "using");
    if (use && !(json_is_string(use) && json_string_value(use)[0] == '\0'))
        return rx_fail(x, 400, "Wrong input: Not existing vector name error: %.64s",
                       json_is_string(use) ? json_string_value(use) : "?");
    if ((st = common_params(x, o, false, p, mp)) != 200)
        return st;
    json_t *q = rj_get(o, "query");
    if (q == NULL) {
        p->scroll = true; /* no query: points in id order */
        return 200;
    }
    if (json_is_object(q)) {
        json_t *near = json_object_get(q, "nearest");
        if (near == NULL) {
            const char *kind = "?";
            const char *key;
            json_t *val;
            json_object_foreach(q, key, val)
            {
                kind = key;
                break;
            }
            return rx_fail(x, 400,
                           "Wrong input: query type `%.32s` is not supported by dvec "
                           "(nearest only)",
                           kind);
        }
        if (rj_get(q, "mmr"))
            return rx_fail(x, 400, "Wrong input: `mmr` is not supported by dvec");
        q = near;
    }
    return vector_input(x, coll, q, "query", p);
}

/* The native queries of the vector plans (p[i].qi set), into *out (free()). */
static int build_queries(struct rx *x, struct plan *p, size_t n, const struct buf *mp,
                         struct msg_query **out, size_t *nq_out)
{
    size_t nq = 0;
    for (size_t i = 0; i < n; i++)
        if (!p[i].scroll)
            p[i].qi = (uint32_t)nq++;
    struct msg_query *qs = calloc(nq ? nq : 1, sizeof *qs);
    if (qs == NULL)
        return oom(x);
    for (size_t i = 0; i < n; i++) {
        if (p[i].scroll)
            continue;
        struct msg_query *q = &qs[p[i].qi];
        q->vec = p[i].vec;
        q->dim = p[i].dim;
        q->k = p[i].limit + p[i].offset + (p[i].exclude ? 1 : 0);
        if (q->k > PROTO_MAX_K)
            q->k = PROTO_MAX_K;
        q->ef = p[i].ef;
        q->filter = mbytes(mp, p[i].f_off, p[i].f_len);
        q->with_payload = p[i].sel.on;
        q->with_vector = p[i].with_vector;
    }
    *out = qs;
    *nq_out = nq;
    return 200;
}

/* Writes each plan's result list with `open` and `close` around it: the vector plans' from
 * srep, the id-order plans' from a scroll each (a worker's only). `lower`: lower scores are
 * better (score_threshold's direction). */
static int render(struct rx *x, const char *coll, struct plan *p, size_t n, struct buf *mp,
                  bool batch, const char *open, const char *close,
                  const struct msg_csearch_rep *srep, bool lower)
{
    int st = 200;
    int rc = batch ? jw_raw(&x->res, "[") : DV_OK;
    for (size_t i = 0; i < n && st == 200 && rc == DV_OK; i++) {
        if (batch && i)
            rc = jw_raw(&x->res, ",");
        if (rc == DV_OK)
            rc = jw_raw(&x->res, open);
        if (rc != DV_OK)
            break;
        const struct msg_hit *hits;
        uint32_t nh;
        struct msg_reply r2 = {0};
        if (p[i].scroll) {
            /* Points in id order: the first offset + limit, the offset skipped; score 0. */
            struct msg q = {.type = MSG_P_SCROLL};
            q.addr.coll = S(coll);
            q.u.scroll_req = (struct msg_scroll_req){false,
                                                     {0},
                                                     p[i].limit + p[i].offset,
                                                     mbytes(mp, p[i].f_off, p[i].f_len),
                                                     p[i].with_vector,
                                                     p[i].sel.on};
            if ((st = rx_call(x, &q, &r2)) != 200)
                break;
            hits = r2.m.u.scroll_rep.hits.hits;
            nh = r2.m.u.scroll_rep.hits.n;
        } else {
            const struct msg_hits *h = &srep->results[p[i].qi];
            hits = h->hits;
            nh = h->n;
        }
        uint32_t skipped = 0, written = 0;
        rc = jw_raw(&x->res, "[");
        for (uint32_t k = 0; k < nh && rc == DV_OK && written < p[i].limit; k++) {
            const struct msg_hit *h = &hits[k];
            if (p[i].exclude && pid_eq(&h->id, &p[i].excl))
                continue;
            if (!p[i].scroll && p[i].has_thr && (lower ? h->score > p[i].thr : h->score < p[i].thr))
                break; /* best first: the rest are worse */
            if (skipped < p[i].offset) {
                skipped++;
                continue;
            }
            if (written++)
                rc = jw_raw(&x->res, ",");
            if (rc == DV_OK)
                rc = jw_point(&x->res, h, true, &p[i].sel, p[i].with_vector);
        }
        if (rc == DV_OK)
            rc = jw_raw(&x->res, "]");
        if (rc == DV_OK)
            rc = jw_raw(&x->res, close);
        msg_reply_free(&r2);
    }
    if (st == 200 && rc == DV_OK && batch)
        rc = jw_raw(&x->res, "]");
    if (st != 200)
        return st;
    if (rc == DV_ENOMEM)
        return oom(x);
    return rc == DV_OK ? 200
                       : rx_fail(x, 500,
                                 "Service internal error: a payload cannot be "
                                 "shown as JSON (%s)",
                                 dv_strerror(rc));
}

/* Runs the plans on a worker: one native search for every vector plan, a scroll for each
 * id-order plan. */
static int run_plans(struct rx *x, const char *coll, struct plan *p, size_t n, struct buf *mp,
                     bool batch, const char *open, const char *close)
{
    struct msg_query *qs;
    size_t nq;
    int st = build_queries(x, p, n, mp, &qs, &nq);
    if (st != 200)
        return st;
    struct msg_reply srep = {0};
    if (nq) {
        struct msg q = {.type = MSG_P_SEARCH};
        q.addr.coll = S(coll);
        q.u.csearch_req = (struct msg_csearch_req){qs, (uint32_t)nq, false, x->timeout_ms};
        st = rx_call(x, &q, &srep);
    }
    free(qs);
    if (st != 200)
        return st;
    uint32_t metric = 2;
    bool lower = false;
    if (rx_meta(x, coll, NULL, &metric))
        lower = lower_better(metric);
    st = render(x, coll, p, n, mp, batch, open, close, &srep.m.u.csearch_rep, lower);
    msg_reply_free(&srep);
    return st;
}

/* A fast search between its start and its reply (x->search). */
struct rx_search {
    const char *coll; /* in x->path */
    struct plan *p;
    size_t n;
    struct buf mp;
    struct msg_query *qs;
    struct msg req;
    bool batch;
    const char *open, *close;
};

static void rx_search_free(struct rx_search *sr)
{
    plans_free(sr->p, sr->n);
    buf_free(&sr->mp);
    free(sr->qs);
    free(sr);
}

/* The search's done (rest_search_done, on an nng thread): render and answer, or hand the
 * request to a worker. */
static void search_done(void *arg, const struct msg_csearch_rep *rep, uint32_t metric)
{
    struct rx *x = arg;
    struct rx_search *sr = x->search;
    x->search = NULL;
    if (rep == NULL) {
        rx_search_free(sr);
        rx_requeue(x);
        return;
    }
    int st = render(x, sr->coll, sr->p, sr->n, &sr->mp, sr->batch, sr->open, sr->close, rep,
                    lower_better(metric));
    rx_search_free(sr);
    rx_finish(x, st);
}

/* Starts the plans of a fast search: REST_STARTED, REST_SLOW (an id-order plan, or not a plain
 * search), or an error status. Takes p and mp in every case. */
static int start_plans(struct rx *x, const char *coll, struct plan *p, size_t n, struct buf *mp,
                       bool batch, const char *open, const char *close)
{
    int st = REST_SLOW;
    for (size_t i = 0; i < n; i++)
        if (p[i].scroll)
            goto out; /* a scroll is a call */
    struct rx_search *sr = calloc(1, sizeof *sr);
    if (sr == NULL) {
        st = oom(x);
        goto out;
    }
    size_t nq;
    if ((st = build_queries(x, p, n, mp, &sr->qs, &nq)) != 200) {
        free(sr);
        goto out;
    }
    *sr = (struct rx_search){coll, p, n, *mp, sr->qs, {.type = MSG_P_SEARCH}, batch, open, close};
    sr->req.addr.coll = S(coll);
    sr->req.req_id = 0;
    sr->req.u.csearch_req = (struct msg_csearch_req){sr->qs, (uint32_t)nq, false, x->timeout_ms};
    x->search = sr;
    if (x->r->o.search(x->r->o.search_arg, &sr->req, search_done, x))
        return REST_STARTED; /* x may be answered and gone already */
    x->search = NULL;
    rx_search_free(sr);
    return REST_SLOW;
out:
    plans_free(p, n);
    buf_free(mp);
    return st;
}

/* Search and query, single or batch ({"searches": [...]}). */
static int searches(struct rx *x, const char *coll, bool batch, bool query)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    json_t *list = x->json;
    size_t n = 1;
    if (batch) {
        list = json_object_get(x->json, "searches");
        if (list == NULL)
            return rx_fail(x, 400, "Format error in JSON body: missing field `searches`");
        if (!json_is_array(list))
            return rj_type_error(x, "searches", "expected an array");
        n = json_array_size(list);
        if (n > 1024)
            return rx_fail(x, 400, "Wrong input: %zu searches in one batch, at most 1024", n);
    }
    struct plan *p = calloc(n ? n : 1, sizeof *p);
    if (p == NULL)
        return oom(x);
    struct buf mp = BUF_INIT;
    /* Filters are appended to mp while parsing; their offsets stay valid as it grows. */
    for (size_t i = 0; i < n && st == 200; i++) {
        json_t *o = batch ? json_array_get(list, i) : list;
        st = query ? parse_query(x, coll, o, &p[i], &mp) : parse_search(x, coll, o, &p[i], &mp);
    }
    const char *open = query ? "{\"points\":" : "", *close = query ? "}" : "";
    if (st == 200 && x->fast)
        return start_plans(x, coll, p, n, &mp, batch, open, close);
    if (st == 200)
        st = run_plans(x, coll, p, n, &mp, batch, open, close);
    plans_free(p, n);
    buf_free(&mp);
    return st;
}

int rh_search(struct rx *x, const char *coll, bool batch)
{
    return searches(x, coll, batch, false);
}

int rh_query(struct rx *x, const char *coll, bool batch)
{
    return searches(x, coll, batch, true);
}

/* ---- scroll and count -------------------------------------------------------------------- */

int rh_scroll(struct rx *x, const char *coll)
{
    int st = rj_body(x, true);
    if (st != 200)
        return st;
    json_t *j = x->json;
    static const char *const unsupported[] = {"shard_key", "order_by", NULL};
    struct psel sel;
    bool wv;
    uint64_t limit;
    struct buf mp = BUF_INIT;
    size_t off, len;
    struct msg q = {.type = MSG_P_SCROLL};
    q.addr.coll = S(coll);
    struct msg_scroll_req *s = &q.u.scroll_req;
    json_t *from = rj_get(j, "offset");
    if ((st = rj_unsupported(x, j, unsupported)) != 200 ||
        (st = rj_u64(x, j, "limit", 10, 1, PROTO_MAX_K, &limit)) != 200 ||
        (st = rj_psel(x, j, "with_payload", true, &sel)) != 200 ||
        (st = rj_with_vector(x, j, false, &wv)) != 200 ||
        (st = rj_filter(x, json_object_get(j, "filter"), "filter", &mp, &off, &len)) != 200 ||
        (from && (st = rj_id(x, from, "offset", &s->from)) != 200))
        goto out;
    s->has_from = from != NULL;
    s->limit = (uint32_t)limit;
    s->filter = mbytes(&mp, off, len);
    s->with_vector = wv;
    s->with_payload = sel.on;
    struct msg_reply rep;
    if ((st = rx_call(x, &q, &rep)) != 200)
        goto out;
    const struct msg_scroll_rep *r = &rep.m.u.scroll_rep;
    int rc = jw_raw(&x->res, "{\"points\":");
    if (rc == DV_OK) {
        st = write_points(x, r->hits.hits, r->hits.n, false, &sel, wv);
        if (st == 200) {
            rc = jw_raw(&x->res, ",\"next_page_offset\":");
            if (rc == DV_OK)
                rc = r->more ? jw_pid(&x->res, &r->next) : jw_raw(&x->res, "null");
            if (rc == DV_OK)
                rc = jw_raw(&x->res, "}");
        }
    }
    if (st == 200 && rc != DV_OK)
        st = oom(x);
    msg_reply_free(&rep);
out:
    buf_free(&mp);
    return st;
}

int rh_count(struct rx *x, const char *coll)
{
    int st = rj_body(x, true);
    if (st != 200)
        return st;
    static const char *const unsupported[] = {"shard_key", NULL};
    bool exact;
    struct buf mp = BUF_INIT;
    size_t off, len;
    if ((st = rj_unsupported(x, x->json, unsupported)) != 200 ||
        (st = rj_bool(x, x->json, "exact", true, &exact)) != 200 ||
        (st = rj_filter(x, json_object_get(x->json, "filter"), "filter", &mp, &off, &len)) != 200) {
        buf_free(&mp);
        return st;
    }
    struct msg q = {.type = MSG_P_COUNT};
    q.addr.coll = S(coll);
    q.u.count_req.filter = mbytes(&mp, off, len);
    struct msg_reply rep;
    st = rx_call(x, &q, &rep);
    buf_free(&mp);
    if (st != 200)
        return st;
    int rc = buf_appendf(&x->res, "{\"count\":%" PRIu64 "}", rep.m.u.count_rep.count);
    msg_reply_free(&rep);
    return rc == DV_OK ? 200 : oom(x);
}
