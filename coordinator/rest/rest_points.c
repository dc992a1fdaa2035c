/* rest_points.c - the REST API's point calls: upsert, get, delete, payloads, vectors, scroll
 * and count; the by-filter writes Qdrant has and the native API lacks. (Search and query:
 * rest_search.c.) */
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

#define oom    rx_oom
#define mbytes rx_bytes

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

int rp_upsert(struct rx *x, const char *coll, json_t *j, bool apply)
{
    int st;
    static const char *const unsupported[] = {"shard_key", NULL};
    if ((st = rj_unsupported(x, j, unsupported)) != 200)
        return st;
    json_t *batch = rj_get(j, "batch"), *points = rj_get(j, "points");
    if (batch == NULL && points == NULL)
        return rx_fail(x, 400,
                       "Format error in JSON body: data did not match any variant of "
                       "untagged enum PointInsertOperations (expected `points` or "
                       "`batch`)");
    uint32_t dim = 0;
    struct msg_coll_cfg cfg;
    bool named = false;          /* a collection with named vectors: points carry them by name */
    if (rx_cfg(x, coll, &cfg)) { /* when known, vectors are checked against it here */
        dim = cfg.dim;
        named = cfg.n_spaces > 0;
    }
    struct rv_arena arena = {0};
    struct msg_nvecs *nvecs = NULL;
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
        if (named) {
            if ((nvecs = rv_alloc(&arena, (n ? n : 1) * sizeof *nvecs)) == NULL) {
                st = oom(x);
                goto out;
            }
            if ((st = rv_batch(x, &cfg, bv, n, nvecs, &arena)) != 200)
                goto out;
        } else if (json_is_object(bv)) {
            /* {"": [[...], ...]}: the default vector by name. */
            json_t *def = json_object_get(bv, "");
            if (json_object_size(bv) != 1 || def == NULL) {
                st = rx_fail(x, 400, "Wrong input: named vectors are not supported by dvec");
                goto out;
            }
            bv = def;
        }
        if (!named && !json_is_array(bv)) {
            st = rj_type_error(x, "batch.vectors", "expected an array of vectors");
            goto out;
        }
        if ((!named && json_array_size(bv) != n) ||
            (bp && json_is_array(bp) && json_array_size(bp) != n)) {
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
            if (!named && (st = take_vector(x, json_array_get(bv, i), f, i, n, &dim, &vecs)) != 200)
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
        nvecs = named ? rv_alloc(&arena, (n ? n : 1) * sizeof *nvecs) : NULL;
        if (ids == NULL || poff == NULL || plen == NULL || (named && nvecs == NULL)) {
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
            if (id == NULL || (vec == NULL && !named)) {
                st = rx_fail(x, 400, "Format error in JSON body: points[%u]: missing field `%s`", i,
                             id == NULL ? "id" : "vector");
                goto out;
            }
            snprintf(f, sizeof f, "points[%u].id", i);
            if ((st = rj_id(x, id, f, &ids[i])) != 200)
                goto out;
            snprintf(f, sizeof f, "points[%u].vector", i);
            if (named) {
                nvecs[i] = (struct msg_nvecs){NULL, 0};
                if (vec != NULL && (st = rv_point(x, &cfg, vec, f, &nvecs[i], &arena)) != 200)
                    goto out;
            } else if ((st = take_vector(x, vec, f, i, n, &dim, &vecs)) != 200) {
                goto out;
            }
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
        st = 200;
        goto out;
    }
    if (!apply) { /* checked: every point parsed */
        st = 200;
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
    q.u.upsert_req = (struct msg_upsert_req){ids, vecs, pays, n, named ? 0 : dim, nvecs};
    struct msg_reply rep;
    if ((st = rx_call(x, &q, &rep)) == 200)
        msg_reply_free(&rep);
out:
    rv_free(&arena);
    free(ids);
    free(vecs);
    free(pays);
    free(poff);
    free(plen);
    buf_free(&mp);
    return st;
}

int rh_upsert(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st == 200)
        st = rp_upsert(x, coll, x->json, true);
    return st == 200 ? jw_update(x) : st;
}

/* ---- get --------------------------------------------------------------------------------- */

/* Writes the hits as a JSON array of Records (or ScoredPoints). */
static int write_points(struct rx *x, const struct msg_hit *h, uint32_t n, bool scored,
                        const struct psel *sel, bool with_vector, const struct rv_out *vo)
{
    int rc = jw_raw(&x->res, "[");
    for (uint32_t i = 0; i < n && rc == DV_OK; i++) {
        if (i)
            rc = jw_raw(&x->res, ",");
        if (rc == DV_OK)
            rc = jw_point(&x->res, &h[i], scored, sel, with_vector, vo);
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
    struct msg_coll_cfg cfg;
    struct rv_out vo = {rx_cfg(x, coll, &cfg) ? &cfg : NULL, rj_vector_names(x->json)};
    st = write_points(x, rep.m.u.get_rep.hits, rep.m.u.get_rep.n, false, &sel, wv, &vo);
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
    struct msg_coll_cfg cfg;
    struct rv_out vo = {rx_cfg(x, coll, &cfg) ? &cfg : NULL, NULL};
    int rc = jw_point(&x->res, &rep.m.u.get_rep.hits[0], false, &all, true, &vo);
    msg_reply_free(&rep);
    if (rc == DV_ENOMEM)
        return oom(x);
    return rc == DV_OK ? 200 : rx_fail(x, 500, "Service internal error: %s", dv_strerror(rc));
}

/* ---- writes by ids or by filter ---------------------------------------------------------- */

/* What a write does with one list of ids (a request's, or a page of a filter's matches). */
struct write_op {
    int type; /* MSG_P_DELETE, MSG_P_SET_PAYLOAD or MSG_P_DELETE_VECTORS */
    uint32_t op;
    struct msg_bytes data;
    struct msg_str *names; /* delete vectors: the vectors' names */
    uint32_t n_names;
};

static int write_ids(struct rx *x, const char *coll, const struct write_op *w, struct pid *ids,
                     uint32_t n)
{
    struct msg q = {.type = w->type};
    q.addr.coll = S(coll);
    if (w->type == MSG_P_DELETE)
        q.u.delete_req = (struct msg_ids_req){ids, n};
    else if (w->type == MSG_P_DELETE_VECTORS)
        q.u.delvec_req = (struct msg_delvec_req){ids, n, w->names, w->n_names};
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

/* The write to the PointsSelector of object j: {"points": [...]} or {"filter": {...}}, one of
 * them. With `apply` false only checked. */
static int run_write(struct rx *x, const char *coll, json_t *j, const struct write_op *w,
                     struct buf *mp, bool apply)
{
    json_t *pts = rj_get(j, "points"), *flt = rj_get(j, "filter");
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
        st = n && apply ? write_ids(x, coll, w, ids, n) : 200;
        free(ids);
        if (st == 200 && n == 0 && !rx_meta(x, coll, NULL, NULL))
            st = rx_fail(x, 404, "Not found: Collection `%s` doesn't exist!", coll);
        return st;
    }
    size_t off, len;
    int st = rj_filter(x, flt, "filter", mp, &off, &len);
    if (st != 200 || !apply)
        return st;
    return write_filter(x, coll, w, mbytes(mp, off, len));
}

int rp_delete(struct rx *x, const char *coll, json_t *j, bool apply)
{
    int st;
    static const char *const unsupported[] = {"shard_key", NULL};
    if ((st = rj_unsupported(x, j, unsupported)) != 200)
        return st;
    struct write_op w = {.type = MSG_P_DELETE};
    struct buf mp = BUF_INIT;
    st = run_write(x, coll, j, &w, &mp, apply);
    buf_free(&mp);
    return st;
}

int rh_delete(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st == 200)
        st = rp_delete(x, coll, x->json, true);
    return st == 200 ? jw_update(x) : st;
}

/* POST /collections/{c}/points/vectors/delete: {"points" | "filter", "vector": [names]}. */
int rp_delete_vectors(struct rx *x, const char *coll, json_t *j, bool apply)
{
    int st;
    static const char *const unsupported[] = {"shard_key", NULL};
    if ((st = rj_unsupported(x, j, unsupported)) != 200)
        return st;
    json_t *names = rj_get(j, "vector");
    if (names == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `vector`");
    if (!json_is_array(names) || json_array_size(names) == 0 ||
        json_array_size(names) > PROTO_MAX_VECTORS)
        return rj_type_error(x, "vector", "expected an array of 1 to 16 vector names");
    struct msg_str ns[PROTO_MAX_VECTORS];
    struct msg_coll_cfg cfg;
    bool known = rx_cfg(x, coll, &cfg);
    for (size_t i = 0; i < json_array_size(names); i++) {
        const char *n = json_string_value(json_array_get(names, i));
        if (n == NULL)
            return rj_type_error(x, "vector", "expected an array of vector names");
        if (known && rv_space(&cfg, n, strlen(n)) == NULL)
            return rx_fail(x, 400, "Wrong input: Not existing vector name error: %.64s", n);
        ns[i] = S(n);
    }
    struct write_op w = {
        .type = MSG_P_DELETE_VECTORS, .names = ns, .n_names = (uint32_t)json_array_size(names)};
    struct buf mp = BUF_INIT;
    st = run_write(x, coll, j, &w, &mp, apply);
    buf_free(&mp);
    return st;
}

int rh_delete_vectors(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st == 200)
        st = rp_delete_vectors(x, coll, x->json, true);
    return st == 200 ? jw_update(x) : st;
}

/* PUT /collections/{c}/points/vectors: {"points": [{"id", "vector"}]}, the given vectors of
 * existing points replaced (404 naming a missing point). */
int rp_update_vectors(struct rx *x, const char *coll, json_t *j, bool apply)
{
    int st;
    static const char *const unsupported[] = {"shard_key", NULL};
    if ((st = rj_unsupported(x, j, unsupported)) != 200)
        return st;
    json_t *points = rj_get(j, "points");
    if (points == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `points`");
    if (!json_is_array(points))
        return rj_type_error(x, "points", "expected an array of {id, vector}");
    struct msg_coll_cfg cfg;
    if (!rx_cfg(x, coll, &cfg))
        return rx_fail(x, 404, "Not found: Collection `%s` doesn't exist!", coll);
    size_t k = json_array_size(points);
    if (k > MAX_IDS)
        return rx_fail(x, 400, "Wrong input: %zu points, at most %u per request", k, MAX_IDS);
    uint32_t n = (uint32_t)k, dim = cfg.dim;
    struct rv_arena a = {0};
    struct pid *ids = rv_alloc(&a, (n ? n : 1) * sizeof *ids);
    struct msg_nvecs *nv = rv_alloc(&a, (n ? n : 1) * sizeof *nv);
    float *vecs = NULL;
    if (ids == NULL || nv == NULL) {
        rv_free(&a);
        return oom(x);
    }
    char f[64];
    for (uint32_t i = 0; i < n && st == 200; i++) {
        json_t *p = json_array_get(points, i);
        json_t *id = json_is_object(p) ? json_object_get(p, "id") : NULL;
        json_t *vec = json_is_object(p) ? json_object_get(p, "vector") : NULL;
        if (id == NULL || vec == NULL) {
            st = rx_fail(x, 400, "Format error in JSON body: points[%u]: expected {id, vector}", i);
            break;
        }
        snprintf(f, sizeof f, "points[%u].id", i);
        if ((st = rj_id(x, id, f, &ids[i])) != 200)
            break;
        snprintf(f, sizeof f, "points[%u].vector", i);
        if (cfg.n_spaces > 0)
            st = rv_point(x, &cfg, vec, f, &nv[i], &a);
        else
            st = take_vector(x, vec, f, i, n, &dim, &vecs);
    }
    if (st == 200 && n > 0 && apply) {
        struct msg q = {.type = MSG_P_UPDATE_VECTORS};
        q.addr.coll = S(coll);
        q.u.upsert_req = (struct msg_upsert_req){
            ids, vecs, NULL, n, cfg.n_spaces ? 0 : dim, cfg.n_spaces ? nv : NULL};
        struct msg_reply rep;
        if ((st = rx_call(x, &q, &rep)) == 200)
            msg_reply_free(&rep);
    }
    free(vecs);
    rv_free(&a);
    return st;
}

int rh_update_vectors(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st == 200)
        st = rp_update_vectors(x, coll, x->json, true);
    return st == 200 ? jw_update(x) : st;
}

/* op: 1 set, 2 overwrite, 3 delete keys, 4 clear (enum part_payload_op). */
int rp_payload(struct rx *x, const char *coll, json_t *j, uint32_t op, bool apply)
{
    int st;
    static const char *const unsupported[] = {"shard_key", NULL};
    if ((st = rj_unsupported(x, j, unsupported)) != 200)
        return st;
    struct buf mp = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    struct write_op w = {.type = MSG_P_SET_PAYLOAD, .op = op};
    json_t *key = rj_get(j, "key");
    if (key != NULL && op != 1)
        return rx_fail(x, 400,
                       "Wrong input: `key` is taken by set payload only (POST .../payload)");
    if (key != NULL && !json_is_string(key))
        return rj_type_error(x, "key", "expected a string (a path of keys, \"a.b\")");
    if (key != NULL) { /* set at a key: the nodes' op 5, data [key, payload] */
        w.op = 5;
        mpw_array(&mp, 2);
        mpw_str(&mp, json_string_value(key), json_string_length(key));
    }
    if (op == 1 || op == 2) {
        json_t *p = json_object_get(j, "payload");
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
        json_t *k = json_object_get(j, "keys");
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
    st = run_write(x, coll, j, &w, &fmp, apply);
    buf_free(&fmp);
out:
    buf_free(&mp);
    return st;
}

int rh_payload(struct rx *x, const char *coll, uint32_t op)
{
    int st = rj_body(x, false);
    if (st == 200)
        st = rp_payload(x, coll, x->json, op, true);
    return st == 200 ? jw_update(x) : st;
}

int rh_scroll(struct rx *x, const char *coll)
{
    int st = rj_body(x, true);
    if (st != 200)
        return st;
    json_t *j = x->json;
    if (rj_get(j, "order_by") != NULL)
        return rh_scroll_order(x, coll);
    static const char *const unsupported[] = {"shard_key", NULL};
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
        struct msg_coll_cfg cfg;
        struct rv_out vo = {rx_cfg(x, coll, &cfg) ? &cfg : NULL, rj_vector_names(j)};
        st = write_points(x, r->hits.hits, r->hits.n, false, &sel, wv, &vo);
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
