/* rest_order.c - Qdrant's order_by (scroll in a payload value's order, and the query API's
 * order_by through rq_*) and facet endpoints, over the native points_scroll_order and
 * points_facet requests. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "hash.h"
#include "rest_int.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

/* A double in its shortest form that reads back (null when not finite). */
static int jw_f64(struct buf *b, double v)
{
    if (!isfinite(v))
        return jw_raw(b, "null");
    char tmp[64];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    bool real = strpbrk(tmp, ".eE") != NULL;
    return buf_appendf(b, "%s%s", tmp, real ? "" : ".0");
}

int jw_ordval(struct buf *b, const struct msg_ordval *v)
{
    return v->is_float ? jw_f64(b, v->f) : buf_appendf(b, "%" PRId64, v->i);
}

/*
 * Qdrant's order_by: a key string, or {"key", "direction": "asc" | "desc", "start_from": a
 * number or a datetime string}; `field` names it in errors. o->key points into the JSON.
 */
static int parse_order_by(struct rx *x, json_t *v, const char *field, struct msg_oscroll_req *o)
{
    char f[96];
    memset(&o->start, 0, sizeof o->start);
    o->desc = false;
    if (json_is_string(v)) {
        o->key = (struct msg_str){json_string_value(v), (uint32_t)json_string_length(v)};
        return 200;
    }
    if (!json_is_object(v))
        return rj_type_error(x, field, "expected a key or {key, direction, start_from}");
    json_t *k = json_object_get(v, "key"), *d = rj_get(v, "direction"),
           *s = rj_get(v, "start_from");
    if (k == NULL)
        return rx_fail(x, 400, "Format error in JSON body: %s: missing field `key`", field);
    snprintf(f, sizeof f, "%s.key", field);
    if (!json_is_string(k))
        return rj_type_error(x, f, "expected a string");
    o->key = (struct msg_str){json_string_value(k), (uint32_t)json_string_length(k)};
    if (d != NULL) {
        const char *dir = json_is_string(d) ? json_string_value(d) : NULL;
        if (dir == NULL || (strcmp(dir, "asc") != 0 && strcmp(dir, "desc") != 0))
            return rx_fail(x, 400,
                           "Format error in JSON body: %s.direction: unknown variant `%.32s`, "
                           "expected `asc` or `desc`",
                           field, dir ? dir : "(not a string)");
        o->desc = dir[0] == 'd';
    }
    if (s == NULL)
        return 200;
    snprintf(f, sizeof f, "%s.start_from", field);
    if (json_is_integer(s)) {
        o->start = (struct msg_start){.type = MSG_START_INT, .i = json_integer_value(s)};
    } else if (json_is_real(s)) {
        o->start = (struct msg_start){.type = MSG_START_FLOAT, .f = json_real_value(s)};
    } else if (json_is_string(s)) {
        o->start = (struct msg_start){.type = MSG_START_STR,
                                      .s = {json_string_value(s), (uint32_t)json_string_length(s)}};
    } else {
        return rj_type_error(x, f, "expected a number or a datetime string");
    }
    return 200;
}

int ro_scroll(struct rx *x, const char *coll, json_t *order_by, const char *field, json_t *filter,
              uint32_t limit, bool with_vector, bool with_payload, bool *desc,
              struct msg_reply *rep)
{
    struct buf mp = BUF_INIT;
    size_t off = 0, len = 0;
    struct msg q = {.type = MSG_P_SCROLL_ORDER};
    q.addr.coll = S(coll);
    struct msg_oscroll_req *o = &q.u.oscroll_req;
    memset(rep, 0, sizeof *rep);
    int st = parse_order_by(x, order_by, field, o);
    if (st == 200)
        st = rj_filter(x, filter, "filter", &mp, &off, &len);
    if (st == 200) {
        o->limit = limit;
        o->filter = rx_bytes(&mp, off, len);
        o->with_vector = with_vector;
        o->with_payload = with_payload;
        *desc = o->desc;
        st = rx_call(x, &q, rep);
    }
    buf_free(&mp);
    return st;
}

int ro_sample(struct rx *x, const char *coll, json_t *filter, uint32_t limit, struct msg_reply *rep)
{
    static _Atomic uint64_t calls;
    struct buf mp = BUF_INIT;
    size_t off = 0, len = 0;
    struct msg q = {.type = MSG_P_SCROLL_ORDER};
    q.addr.coll = S(coll);
    memset(rep, 0, sizeof *rep);
    int st = rj_filter(x, filter, "filter", &mp, &off, &len);
    if (st == 200) {
        uint64_t h = clock_mono_ns() ^ (++calls * 0x9e3779b97f4a7c15ull);
        q.u.oscroll_req = (struct msg_oscroll_req){
            .limit = limit, .filter = rx_bytes(&mp, off, len), .sample = hash64_u64(h) | 1};
        st = rx_call(x, &q, rep);
    }
    buf_free(&mp);
    return st;
}

int rh_scroll_order(struct rx *x, const char *coll)
{
    json_t *j = x->json;
    static const char *const unsupported[] = {"shard_key", NULL};
    struct psel sel;
    bool wv, desc;
    uint64_t limit;
    int st;
    if ((st = rj_unsupported(x, j, unsupported)) != 200 ||
        (st = rj_u64(x, j, "limit", 10, 1, PROTO_MAX_K, &limit)) != 200 ||
        (st = rj_psel(x, j, "with_payload", true, &sel)) != 200 ||
        (st = rj_with_vector(x, j, false, &wv)) != 200)
        return st;
    struct msg_reply rep;
    st = ro_scroll(x, coll, json_object_get(j, "order_by"), "order_by",
                   json_object_get(j, "filter"), (uint32_t)limit, wv, sel.on, &desc, &rep);
    if (st != 200)
        return st;
    /* Records with their order_value; an offset cannot continue an ordered scroll: like
     * Qdrant, next_page_offset is null (start_from and a filter page through it). */
    const struct msg_oscroll_rep *r = &rep.m.u.oscroll_rep;
    struct msg_coll_cfg cfg;
    struct rv_out vo = {rx_cfg(x, coll, &cfg) ? &cfg : NULL, rj_vector_names(j)};
    int rc = jw_raw(&x->res, "{\"points\":[");
    for (uint32_t i = 0; i < r->hits.n && rc == DV_OK; i++) {
        if (i)
            rc = jw_raw(&x->res, ",");
        if (rc == DV_OK)
            rc = jw_point(&x->res, &r->hits.hits[i], false, &sel, wv, &vo);
        /* the point's object is open again for one more member */
        if (rc == DV_OK && x->res.len > 0 && x->res.data[x->res.len - 1] == '}') {
            x->res.len--;
            rc = jw_raw(&x->res, ",\"order_value\":");
            if (rc == DV_OK)
                rc = jw_ordval(&x->res, &r->vals[i]);
            if (rc == DV_OK)
                rc = jw_raw(&x->res, "}");
        }
    }
    if (rc == DV_OK)
        rc = jw_raw(&x->res, "],\"next_page_offset\":null}");
    msg_reply_free(&rep);
    if (rc == DV_ENOMEM)
        return rx_oom(x);
    return rc == DV_OK
               ? 200
               : rx_fail(x, 500, "Service internal error: a payload cannot be shown as JSON (%s)",
                         dv_strerror(rc));
}

int rh_facet(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    json_t *j = x->json;
    static const char *const unsupported[] = {"shard_key", NULL};
    uint64_t limit;
    bool exact;
    struct buf mp = BUF_INIT;
    size_t off = 0, len = 0;
    json_t *k = json_object_get(j, "key");
    if (k == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `key`");
    if (!json_is_string(k))
        return rj_type_error(x, "key", "expected a string");
    if ((st = rj_unsupported(x, j, unsupported)) != 200 ||
        (st = rj_u64(x, j, "limit", 10, 1, PROTO_MAX_K, &limit)) != 200 ||
        (st = rj_bool(x, j, "exact", false, &exact)) != 200 ||
        (st = rj_filter(x, json_object_get(j, "filter"), "filter", &mp, &off, &len)) != 200) {
        buf_free(&mp);
        return st;
    }
    struct msg q = {.type = MSG_P_FACET};
    q.addr.coll = S(coll);
    q.u.facet_req = (struct msg_facet_req){{json_string_value(k), (uint32_t)json_string_length(k)},
                                           rx_bytes(&mp, off, len),
                                           (uint32_t)limit,
                                           exact};
    struct msg_reply rep;
    st = rx_call(x, &q, &rep);
    buf_free(&mp);
    if (st != 200)
        return st;
    const struct msg_facet_rep *r = &rep.m.u.facet_rep;
    int rc = jw_raw(&x->res, "{\"hits\":[");
    for (uint32_t i = 0; i < r->n && rc == DV_OK; i++) {
        const struct msg_facet_hit *h = &r->hits[i];
        rc = jw_raw(&x->res, i ? ",{\"value\":" : "{\"value\":");
        if (rc == DV_OK && h->type == MSG_FV_STR)
            rc = jw_str(&x->res, h->s.p, h->s.len);
        else if (rc == DV_OK && h->type == MSG_FV_BOOL)
            rc = jw_raw(&x->res, h->i ? "true" : "false");
        else if (rc == DV_OK)
            rc = buf_appendf(&x->res, "%" PRId64, h->i);
        if (rc == DV_OK)
            rc = buf_appendf(&x->res, ",\"count\":%" PRIu64 "}", h->count);
    }
    if (rc == DV_OK)
        rc = jw_raw(&x->res, "]}");
    msg_reply_free(&rep);
    return rc == DV_OK ? 200 : rx_oom(x);
}
