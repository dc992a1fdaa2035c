/* points.c - libdvec's point calls: ids, upsert, delete, get, set payload, count, scroll. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* ---- ids --------------------------------------------------------------------------------- */

struct pid cl_pid(const dvec_id *id)
{
    return id->is_uuid ? pid_from_uuid_bytes(id->uuid) : pid_num(id->num);
}

dvec_id cl_id(const struct pid *p)
{
    dvec_id id = {0};
    if (p->kind == PID_UUID) {
        id.is_uuid = true;
        pid_uuid_bytes(p, id.uuid);
    } else {
        id.num = p->lo;
    }
    return id;
}

struct pid *cl_pids(const dvec_id *ids, size_t n)
{
    struct pid *p = malloc((n ? n : 1) * sizeof *p);
    if (p)
        for (size_t i = 0; i < n; i++)
            p[i] = cl_pid(&ids[i]);
    return p;
}

DVEC_API int dvec_id_parse(const char *text, dvec_id *out)
{
    struct pid p;
    if (text == NULL || out == NULL || pid_parse(text, strlen(text), &p) != DV_OK)
        return DVEC_EINVAL;
    *out = cl_id(&p);
    return DVEC_OK;
}

DVEC_API void dvec_id_format(const dvec_id *id, char *buf)
{
    struct pid p = cl_pid(id);
    pid_format(&p, buf);
}

/* ---- shared checks ----------------------------------------------------------------------- */

/* The arguments every call by id checks: a client, a collection, ids when n > 0, n within the
 * batch limit. `what` names the call in messages. */
static int check_ids_call(dvec_client *c, const char *coll, const void *ids, size_t n,
                          const char *what, dvec_error *err)
{
    if (c == NULL)
        return cl_failf(err, DVEC_EINVAL, "%s: no client (NULL)", what);
    int rc = cl_check_coll(coll, err);
    if (rc != DVEC_OK)
        return rc;
    if (n > 0 && ids == NULL)
        return cl_failf(err, DVEC_EINVAL, "collection %s: %s: %zu points but no array", coll, what,
                        n);
    if (n > PROTO_MAX_BATCH)
        return cl_failf(err, DVEC_ETOOBIG,
                        "collection %s: %s of %zu points exceeds the maximum of %d per call", coll,
                        what, n, PROTO_MAX_BATCH);
    return DVEC_OK;
}

/* Sends a collection-level request; on failure fills err with "collection NAME: WHAT: ...". */
static int coll_call(dvec_client *c, const char *coll, const char *what, const struct msg *req,
                     struct msg_reply *rep, dvec_error *err)
{
    char e[DV_ERRMSG_SIZE] = "";
    if (cl_direct_write(c, coll, req, 0, rep)) /* one hop; else a coordinator */
        return DVEC_OK;
    int rc = cl_call(c, req, 0, rep, e);
    if (rc != DV_OK)
        return cl_failf(err, rc, "collection %s: %s: %s", coll, what, e);
    return DVEC_OK;
}

/* ---- writes ------------------------------------------------------------------------------ */

DVEC_API int dvec_upsert(dvec_client *c, const char *coll, const dvec_point *points, size_t n,
                         uint32_t dim, dvec_error *err)
{
    int rc = check_ids_call(c, coll, points, n, "upsert", err);
    if (rc != DVEC_OK)
        return rc;
    if (n > 0 && (dim == 0 || dim > PROTO_MAX_DIM))
        return cl_failf(err, DVEC_EDIM, "collection %s: upsert: dimension %u is not 1 to %d", coll,
                        dim, PROTO_MAX_DIM);
    if ((uint64_t)n * dim * sizeof(float) > PROTO_MAX_MSG)
        return cl_failf(err, DVEC_ETOOBIG,
                        "collection %s: upsert of %zu vectors of %u dimensions is over the "
                        "message limit of %u bytes; send fewer points per call",
                        coll, n, dim, PROTO_MAX_MSG);
    struct pid *ids = malloc((n ? n : 1) * sizeof *ids);
    float *vecs = malloc((n ? n : 1) * (size_t)dim * sizeof *vecs);
    struct msg_bytes *pl = calloc(n ? n : 1, sizeof *pl);
    size_t *off = malloc((n ? n : 1) * sizeof *off); /* SIZE_MAX: no payload */
    struct buf all = BUF_INIT;
    char e[DV_ERRMSG_SIZE] = "";
    if (ids == NULL || vecs == NULL || pl == NULL || off == NULL) {
        rc = cl_failf(err, DVEC_ENOMEM, "collection %s: upsert of %zu points: out of memory", coll,
                      n);
        goto out;
    }
    bool any_payload = false;
    for (size_t i = 0; i < n; i++) {
        const dvec_point *p = &points[i];
        char idt[DVEC_ID_TEXT_MAX];
        ids[i] = cl_pid(&p->id);
        off[i] = SIZE_MAX;
        if (p->vector == NULL) {
            pid_format(&ids[i], idt);
            rc = cl_failf(err, DVEC_EINVAL, "collection %s: point %zu (id %s): no vector", coll, i,
                          idt);
            goto out;
        }
        for (uint32_t d = 0; d < dim; d++)
            if (!isfinite(p->vector[d])) {
                pid_format(&ids[i], idt);
                rc = cl_failf(err, DVEC_ENAN,
                              "collection %s: point %zu (id %s): the vector holds %s at "
                              "dimension %u",
                              coll, i, idt, isnan(p->vector[d]) ? "NaN" : "infinity", d);
                goto out;
            }
        memcpy(vecs + i * dim, p->vector, (size_t)dim * sizeof *vecs);
        if (p->payload_json == NULL)
            continue;
        size_t len0 = all.len;
        if ((rc = cl_json_to_mp(p->payload_json, CL_JSON_OBJECT, &all, e)) != DV_OK) {
            pid_format(&ids[i], idt);
            rc =
                cl_failf(err, rc, "collection %s: point %zu (id %s): payload: %s", coll, i, idt, e);
            goto out;
        }
        off[i] = len0;
        pl[i].len = (uint32_t)(all.len - len0);
        any_payload = true;
    }
    /* Pointers into `all` only now that it stopped growing. */
    for (size_t i = 0; i < n; i++)
        if (off[i] != SIZE_MAX)
            pl[i].p = all.data + off[i];

    struct msg req = cl_req(MSG_P_UPSERT, coll);
    req.u.upsert_req =
        (struct msg_upsert_req){ids, vecs, any_payload ? pl : NULL, (uint32_t)n, dim, NULL};
    struct msg_reply rep;
    if ((rc = coll_call(c, coll, "upsert", &req, &rep, err)) != DVEC_OK)
        goto out;
    msg_reply_free(&rep);
    rc = cl_ok(err);
out:
    free(ids);
    free(vecs);
    free(pl);
    free(off);
    buf_free(&all);
    return rc;
}

DVEC_API int dvec_delete(dvec_client *c, const char *coll, const dvec_id *ids, size_t n,
                         uint64_t *deleted, dvec_error *err)
{
    if (deleted)
        *deleted = 0;
    int rc = check_ids_call(c, coll, ids, n, "delete", err);
    if (rc != DVEC_OK)
        return rc;
    struct pid *p = cl_pids(ids, n);
    if (p == NULL)
        return cl_failf(err, DVEC_ENOMEM, "collection %s: delete: out of memory", coll);
    struct msg req = cl_req(MSG_P_DELETE, coll);
    req.u.delete_req = (struct msg_ids_req){p, (uint32_t)n};
    struct msg_reply rep;
    rc = coll_call(c, coll, "delete", &req, &rep, err);
    free(p);
    if (rc != DVEC_OK)
        return rc;
    if (deleted)
        *deleted = rep.m.u.write_rep.affected;
    msg_reply_free(&rep);
    return cl_ok(err);
}

DVEC_API int dvec_set_payload(dvec_client *c, const char *coll, dvec_payload_op op,
                              const dvec_id *ids, size_t n, const char *json, dvec_error *err)
{
    int rc = check_ids_call(c, coll, ids, n, "set payload", err);
    if (rc != DVEC_OK)
        return rc;
    enum cl_json_kind want;
    switch (op) {
    case DVEC_PAYLOAD_SET:
    case DVEC_PAYLOAD_OVERWRITE:
        want = CL_JSON_OBJECT;
        break;
    case DVEC_PAYLOAD_DELETE_KEYS:
        want = CL_JSON_KEYS;
        break;
    case DVEC_PAYLOAD_CLEAR:
        want = CL_JSON_ANY;
        break;
    default:
        return cl_failf(err, DVEC_EINVAL, "collection %s: set payload: unknown operation %d", coll,
                        (int)op);
    }
    struct buf data = BUF_INIT;
    char e[DV_ERRMSG_SIZE] = "";
    if (op != DVEC_PAYLOAD_CLEAR) {
        if (json == NULL)
            return cl_failf(err, DVEC_EINVAL, "collection %s: set payload: no JSON given (%s)",
                            coll, want == CL_JSON_OBJECT ? "an object" : "an array of keys");
        if ((rc = cl_json_to_mp(json, want, &data, e)) != DV_OK)
            return cl_failf(err, rc, "collection %s: set payload: %s", coll, e);
    }
    struct pid *p = cl_pids(ids, n);
    if (p == NULL) {
        buf_free(&data);
        return cl_failf(err, DVEC_ENOMEM, "collection %s: set payload: out of memory", coll);
    }
    struct msg req = cl_req(MSG_P_SET_PAYLOAD, coll);
    req.u.set_payload_req =
        (struct msg_set_payload_req){(uint32_t)op, p, (uint32_t)n, {data.data, (uint32_t)data.len}};
    struct msg_reply rep;
    rc = coll_call(c, coll, "set payload", &req, &rep, err);
    free(p);
    buf_free(&data);
    if (rc != DVEC_OK)
        return rc;
    msg_reply_free(&rep);
    return cl_ok(err);
}

/* ---- reads ------------------------------------------------------------------------------- */

DVEC_API int dvec_get(dvec_client *c, const char *coll, const dvec_id *ids, size_t n,
                      bool with_vector, bool with_payload, dvec_records *out, dvec_error *err)
{
    if (out == NULL)
        return cl_failf(err, DVEC_EINVAL, "get: no place for the records (out is NULL)");
    out->items = NULL;
    out->n = 0;
    int rc = check_ids_call(c, coll, ids, n, "get", err);
    if (rc != DVEC_OK)
        return rc;
    struct pid *p = cl_pids(ids, n);
    if (p == NULL)
        return cl_failf(err, DVEC_ENOMEM, "collection %s: get: out of memory", coll);
    struct msg req = cl_req(MSG_P_GET, coll);
    req.u.get_req = (struct msg_get_req){p, (uint32_t)n, with_vector, with_payload};
    struct msg_reply rep;
    rc = coll_call(c, coll, "get", &req, &rep, err);
    free(p);
    if (rc != DVEC_OK)
        return rc;
    char e[DV_ERRMSG_SIZE] = "";
    rc = cl_records(&rep.m.u.get_rep, false, out, e);
    msg_reply_free(&rep);
    if (rc != DV_OK)
        return cl_failf(err, rc, "collection %s: get: %s", coll, e[0] ? e : dv_strerror(rc));
    return cl_ok(err);
}

/* A filter argument as msgpack (nothing when NULL); fills err on failure. */
static int filter_mp(const char *coll, const char *what, const char *filter, struct buf *out,
                     dvec_error *err)
{
    if (filter == NULL)
        return DVEC_OK;
    char e[DV_ERRMSG_SIZE] = "";
    int rc = cl_json_to_mp(filter, CL_JSON_OBJECT, out, e);
    if (rc != DV_OK)
        return cl_failf(err, rc, "collection %s: %s: filter: %s", coll, what, e);
    return DVEC_OK;
}

DVEC_API int dvec_count(dvec_client *c, const char *coll, const char *filter_json, uint64_t *out,
                        dvec_error *err)
{
    if (c == NULL || out == NULL)
        return cl_failf(err, DVEC_EINVAL, "count: client or output is NULL");
    *out = 0;
    int rc = cl_check_coll(coll, err);
    if (rc != DVEC_OK)
        return rc;
    struct buf f = BUF_INIT;
    if ((rc = filter_mp(coll, "count", filter_json, &f, err)) != DVEC_OK)
        return rc;
    struct msg req = cl_req(MSG_P_COUNT, coll);
    req.u.count_req.filter = (struct msg_bytes){f.data, (uint32_t)f.len};
    struct msg_reply rep;
    rc = coll_call(c, coll, "count", &req, &rep, err);
    buf_free(&f);
    if (rc != DVEC_OK)
        return rc;
    *out = rep.m.u.count_rep.count;
    msg_reply_free(&rep);
    return cl_ok(err);
}

DVEC_API int dvec_scroll(dvec_client *c, const char *coll, const dvec_scroll_params *p,
                         dvec_records *out, dvec_id *next, bool *has_next, dvec_error *err)
{
    if (c == NULL || p == NULL || out == NULL)
        return cl_failf(err, DVEC_EINVAL, "scroll: client, parameters or output is NULL");
    out->items = NULL;
    out->n = 0;
    if (has_next)
        *has_next = false;
    int rc = cl_check_coll(coll, err);
    if (rc != DVEC_OK)
        return rc;
    if (p->limit == 0 || p->limit > CL_MAX_SCROLL)
        return cl_failf(err, DVEC_ERANGE, "collection %s: scroll: limit %u is not 1 to %d", coll,
                        p->limit, CL_MAX_SCROLL);
    struct buf f = BUF_INIT;
    if ((rc = filter_mp(coll, "scroll", p->filter_json, &f, err)) != DVEC_OK)
        return rc;
    struct msg req = cl_req(MSG_P_SCROLL, coll);
    req.u.scroll_req =
        (struct msg_scroll_req){p->offset != NULL, p->offset ? cl_pid(p->offset) : pid_num(0),
                                p->limit,          {f.data, (uint32_t)f.len},
                                p->with_vector,    p->with_payload};
    struct msg_reply rep;
    rc = coll_call(c, coll, "scroll", &req, &rep, err);
    buf_free(&f);
    if (rc != DVEC_OK)
        return rc;
    char e[DV_ERRMSG_SIZE] = "";
    const struct msg_scroll_rep *s = &rep.m.u.scroll_rep;
    rc = cl_records(&s->hits, false, out, e);
    if (rc == DV_OK) {
        if (has_next)
            *has_next = s->more;
        if (next && s->more)
            *next = cl_id(&s->next);
    }
    msg_reply_free(&rep);
    if (rc != DV_OK)
        return cl_failf(err, rc, "collection %s: scroll: %s", coll, e[0] ? e : dv_strerror(rc));
    return cl_ok(err);
}
