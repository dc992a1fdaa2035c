/* json.c - libdvec's JSON side: payloads and filters checked and turned into msgpack, hits
 * turned into records with JSON payloads, and the cluster status as JSON text. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "jsonmp.h"

static const char *kind_name(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

int cl_json_to_mp(const char *json, enum cl_json_kind want, struct buf *out, char *errmsg)
{
    json_error_t je;
    json_t *v = json_loadb(json, strlen(json), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (v == NULL) {
        dv_errmsg_set(errmsg, "json: line %d column %d (byte %d): %s", je.line, je.column,
                      je.position, je.text);
        return DV_EPARSE;
    }
    int rc = DV_OK;
    if (want == CL_JSON_OBJECT && !json_is_object(v)) {
        dv_errmsg_set(errmsg, "json: an object was expected, got %s", kind_name(v));
        rc = DV_EPARSE;
    } else if (want == CL_JSON_ARRAY && !json_is_array(v)) {
        dv_errmsg_set(errmsg, "json: an array was expected, got %s", kind_name(v));
        rc = DV_EPARSE;
    } else if (want == CL_JSON_KEYS && !json_is_array(v)) {
        dv_errmsg_set(errmsg, "json: an array of keys was expected, got %s", kind_name(v));
        rc = DV_EPARSE;
    } else {
        size_t i;
        json_t *k;
        json_array_foreach(want == CL_JSON_KEYS ? v : NULL, i, k)
        {
            if (!json_is_string(k) && rc == DV_OK) {
                dv_errmsg_set(errmsg, "json: key %zu of the array is %s, not a string", i,
                              kind_name(k));
                rc = DV_EPARSE;
            }
        }
        if (rc == DV_OK)
            rc = jsonmp_from_json(v, out, errmsg);
    }
    json_decref(v);
    return rc;
}

int cl_records(const struct msg_hits *h, bool with_score, dvec_records *out, char *errmsg)
{
    out->items = NULL;
    out->n = 0;
    if (h->n == 0)
        return DV_OK;
    dvec_records r = {calloc(h->n, sizeof *r.items), 0};
    if (r.items == NULL)
        return DV_ENOMEM;
    for (uint32_t i = 0; i < h->n; i++, r.n++) {
        const struct msg_hit *x = &h->hits[i];
        dvec_record *o = &r.items[i];
        o->id = cl_id(&x->id);
        o->score = with_score ? x->score : 0.0f;
        if (x->vec && x->dim > 0) {
            if ((o->vector = malloc((size_t)x->dim * sizeof *o->vector)) == NULL)
                goto err_nomem;
            memcpy(o->vector, x->vec, (size_t)x->dim * sizeof *o->vector);
            o->dim = x->dim;
        }
        if (x->payload.p) {
            int rc = jsonmp_to_text(x->payload.p, x->payload.len, &o->payload_json, errmsg);
            if (rc != DV_OK) {
                char id[PID_TEXT_MAX];
                pid_format(&x->id, id);
                dv_errmsg_prefix(errmsg, "payload of point %s", id);
                r.n++;
                dvec_records_free(&r);
                return rc;
            }
        }
    }
    *out = r;
    return DV_OK;

err_nomem:
    r.n++;
    dvec_records_free(&r);
    return DV_ENOMEM;
}

DVEC_API void dvec_records_free(dvec_records *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].vector);
        free(r->items[i].payload_json);
    }
    free(r->items);
    r->items = NULL;
    r->n = 0;
}

DVEC_API int dvec_cluster_status(dvec_client *c, char **json, dvec_error *err)
{
    if (c == NULL || json == NULL)
        return cl_failf(err, DVEC_EINVAL, "cluster status: client or output is NULL");
    *json = NULL;
    struct msg req = cl_req(MSG_CLUSTER, NULL);
    struct msg_reply rep;
    char e[DV_ERRMSG_SIZE] = "";
    int rc = cl_call(c, &req, 0, &rep, e);
    if (rc != DV_OK)
        return cl_fail(err, rc, "cluster status", e);
    const struct msg_bytes *s = &rep.m.u.cluster_rep.status;
    if (s->p == NULL)
        *json = strdup("null");
    else
        rc = jsonmp_to_text(s->p, s->len, json, e);
    msg_reply_free(&rep);
    if (rc == DV_OK && *json == NULL)
        rc = DV_ENOMEM;
    if (rc != DV_OK)
        return cl_fail(err, rc, "cluster status", e);
    return cl_ok(err);
}

DVEC_API int dvec_admin(dvec_client *c, const char *op, const char *args_json, char **json,
                        dvec_error *err)
{
    if (c == NULL || op == NULL || json == NULL)
        return cl_failf(err, DVEC_EINVAL, "admin: client, op or output is NULL");
    *json = NULL;
    char e[DV_ERRMSG_SIZE] = "";
    struct buf args;
    buf_init(&args);
    int rc = DV_OK;
    if (args_json && (rc = jsonmp_from_text(args_json, strlen(args_json), &args, e)) != DV_OK) {
        buf_free(&args);
        return cl_fail(err, rc, "admin arguments", e);
    }
    struct msg req = cl_req(MSG_ADMIN, NULL);
    req.u.admin_req.op = (struct msg_str){op, (uint32_t)strlen(op)};
    req.u.admin_req.args = (struct msg_bytes){args_json ? args.data : NULL, (uint32_t)args.len};
    struct msg_reply rep;
    rc = cl_call(c, &req, 0, &rep, e);
    buf_free(&args);
    if (rc != DV_OK)
        return cl_fail(err, rc, op, e);
    const struct msg_bytes *s = &rep.m.u.cluster_rep.status;
    if (s->p == NULL)
        *json = strdup("null");
    else
        rc = jsonmp_to_text(s->p, s->len, json, e);
    msg_reply_free(&rep);
    if (rc == DV_OK && *json == NULL)
        rc = DV_ENOMEM;
    if (rc != DV_OK)
        return cl_fail(err, rc, op, e);
    return cl_ok(err);
}
