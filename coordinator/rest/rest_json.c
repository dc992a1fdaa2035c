/* rest_json.c - the REST API's JSON: checked reading of request bodies (ids, vectors, filters,
 * selectors) and writing of results (points, payloads, floats in their shortest form). */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsonmp.h"
#include "mpk.h"
#include "rest_int.h"

/* ---- input ------------------------------------------------------------------------------- */

int rj_type_error(struct rx *x, const char *field, const char *what)
{
    return rx_fail(x, 400, "Format error in JSON body: %s: %s", field, what);
}

int rj_invalid(struct rx *x, const char *field, const char *what)
{
    return rx_fail(x, 422, "Validation error in JSON body: [%s: %s]", field, what);
}

int rj_body(struct rx *x, bool empty_ok)
{
    size_t n = x->body_len;
    while (n > 0 && (x->body[n - 1] == ' ' || x->body[n - 1] == '\n' || x->body[n - 1] == '\r' ||
                     x->body[n - 1] == '\t'))
        n--;
    if (n == 0) {
        if (!empty_ok)
            return rx_fail(x, 400,
                           "Format error in JSON body: EOF while parsing a value at line 1 "
                           "column 0");
        x->json = json_object();
        return x->json ? 200 : rx_fail(x, 500, "Service internal error: out of memory");
    }
    json_error_t e;
    x->json = json_loadb(x->body, x->body_len, 0, &e);
    if (x->json == NULL)
        return rx_fail(x, 400, "Format error in JSON body: %s at line %d column %d", e.text, e.line,
                       e.column);
    if (!json_is_object(x->json)) {
        json_decref(x->json);
        x->json = NULL;
        return rx_fail(x, 400, "Format error in JSON body: expected a JSON object");
    }
    return 200;
}

json_t *rj_get(json_t *o, const char *key)
{
    json_t *v = o ? json_object_get(o, key) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

int rj_id(struct rx *x, json_t *v, const char *field, struct pid *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = pid_num((uint64_t)json_integer_value(v));
        return 200;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (pid_parse_uuid(s, n, out) == DV_OK)
            return 200;
        return rx_fail(x, 400, "Format error in JSON body: %s: Unable to parse UUID: %.64s", field,
                       s);
    }
    return rj_type_error(x, field, "expected a non-negative integer or a UUID string");
}

int rj_ids(struct rx *x, json_t *v, const char *field, uint32_t max, struct pid **out, uint32_t *n)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(v))
        return rj_type_error(x, field, "expected an array of point ids");
    size_t k = json_array_size(v);
    if (k > max)
        return rx_fail(x, 400, "Wrong input: %s: %zu ids, at most %u per request", field, k, max);
    struct pid *ids = calloc(k ? k : 1, sizeof *ids);
    if (ids == NULL)
        return rx_fail(x, 500, "Service internal error: out of memory");
    char f[96];
    for (size_t i = 0; i < k; i++) {
        snprintf(f, sizeof f, "%s[%zu]", field, i);
        int st = rj_id(x, json_array_get(v, i), f, &ids[i]);
        if (st != 200) {
            free(ids);
            return st;
        }
    }
    *out = ids;
    *n = (uint32_t)k;
    return 200;
}

int rj_vector(struct rx *x, json_t *v, const char *field, float *out, uint32_t *dim)
{
    if (json_is_object(v)) {
        /* The named form {"<name>": [...]}: only the default (unnamed) vector exists. */
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val)
        {
            if (key[0] != '\0' || json_object_size(v) != 1)
                return rx_fail(x, 400, "Wrong input: Not existing vector name error: %.64s", key);
        }
        v = json_object_get(v, "");
    }
    if (!json_is_array(v))
        return rj_type_error(x, field, "expected an array of numbers (a dense vector)");
    size_t n = json_array_size(v);
    if (n > PROTO_MAX_DIM)
        return rx_fail(x, 400, "Wrong input: %s: %zu values, at most %d", field, n, PROTO_MAX_DIM);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        double d;
        if (json_is_integer(e))
            d = (double)json_integer_value(e);
        else if (json_is_real(e))
            d = json_real_value(e);
        else
            return rx_fail(x, 400, "Format error in JSON body: %s[%zu]: expected a number", field,
                           i);
        if (!isfinite(d) || fabs(d) > FLT_MAX)
            return rx_fail(x, 400, "Wrong input: %s[%zu]: %g is not a finite float32", field, i, d);
        if (out)
            out[i] = (float)d;
    }
    *dim = (uint32_t)n;
    return 200;
}

int rj_filter(struct rx *x, json_t *v, const char *field, struct buf *mp, size_t *off, size_t *len)
{
    *off = mp->len;
    *len = 0;
    if (v == NULL || json_is_null(v))
        return 200;
    if (!json_is_object(v))
        return rj_type_error(x, field, "expected an object (a filter)");
    char err[DV_ERRMSG_SIZE];
    if (jsonmp_from_json(v, mp, err) != DV_OK)
        return rx_fail(x, 400, "Wrong input: %s: %s", field, err);
    *len = mp->len - *off;
    return 200;
}

int rj_u64(struct rx *x, json_t *o, const char *key, uint64_t def, uint64_t min, uint64_t max,
           uint64_t *out)
{
    json_t *v = rj_get(o, key);
    if (v == NULL) {
        *out = def;
        return 200;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return rj_type_error(x, key, "expected a non-negative integer");
    uint64_t u = (uint64_t)json_integer_value(v);
    char what[96];
    if (u < min) {
        snprintf(what, sizeof what, "value %" PRIu64 " invalid, must be %" PRIu64 " or larger", u,
                 min);
        return rj_invalid(x, key, what);
    }
    if (u > max) {
        snprintf(what, sizeof what, "value %" PRIu64 " invalid, must be %" PRIu64 " or smaller", u,
                 max);
        return rj_invalid(x, key, what);
    }
    *out = u;
    return 200;
}

int rj_bool(struct rx *x, json_t *o, const char *key, bool def, bool *out)
{
    json_t *v = rj_get(o, key);
    if (v == NULL) {
        *out = def;
        return 200;
    }
    if (!json_is_boolean(v))
        return rj_type_error(x, key, "expected a boolean");
    *out = json_is_true(v);
    return 200;
}

static bool all_strings(json_t *a)
{
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        if (!json_is_string(e))
            return false;
    }
    return true;
}

int rj_psel(struct rx *x, json_t *o, const char *key, bool def, struct psel *out)
{
    memset(out, 0, sizeof *out);
    json_t *v = rj_get(o, key);
    if (v == NULL) {
        out->on = def;
        return 200;
    }
    if (json_is_boolean(v)) {
        out->on = json_is_true(v);
        return 200;
    }
    json_t *keys = NULL;
    if (json_is_array(v)) {
        keys = v;
        out->mode = 1;
    } else if (json_is_object(v) && json_object_size(v) == 1 &&
               (keys = json_object_get(v, "include")) != NULL) {
        out->mode = 1;
    } else if (json_is_object(v) && json_object_size(v) == 1 &&
               (keys = json_object_get(v, "exclude")) != NULL) {
        out->mode = 2;
    }
    if (keys == NULL || !json_is_array(keys) || !all_strings(keys))
        return rj_type_error(x, key,
                             "expected a boolean, a list of keys, {\"include\": [keys]} or "
                             "{\"exclude\": [keys]}");
    out->on = true;
    out->keys = keys;
    return 200;
}

int rj_with_vector(struct rx *x, json_t *o, bool def, bool *out)
{
    json_t *v = rj_get(o, "with_vector");
    if (v == NULL)
        v = rj_get(o, "with_vectors");
    if (v == NULL) {
        *out = def;
        return 200;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 200;
    }
    if (json_is_array(v) && all_strings(v)) {
        *out = json_array_size(v) > 0;
        return 200;
    }
    return rj_type_error(x, "with_vector", "expected a boolean or a list of vector names");
}

json_t *rj_vector_names(json_t *o)
{
    json_t *v = o ? rj_get(o, "with_vector") : NULL;
    if (v == NULL && o)
        v = rj_get(o, "with_vectors");
    return json_is_array(v) ? v : NULL;
}

int rj_unsupported(struct rx *x, json_t *o, const char *const *keys)
{
    for (; *keys; keys++)
        if (rj_get(o, *keys) != NULL)
            return rx_fail(x, 400, "Wrong input: `%s` is not supported by dvec", *keys);
    return 200;
}

/* ---- output ------------------------------------------------------------------------------ */

int jw_raw(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        k = 1, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        k = 2, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        k = 3, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n <= k)
        return 0;
    for (size_t j = 1; j <= k; j++) {
        if ((s[j] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k + 1;
}

int jw_str(struct buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && rc == DV_OK;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            rc = buf_appendf(b, "\\u%04x", c);
            i++;
        } else {
            size_t k = utf8_len(p + i, n - i);
            if (k == 0) {
                rc = buf_append(b, "\\ufffd", 6); /* not UTF-8: JSON cannot carry it */
                i++;
            } else {
                rc = buf_append(b, p + i, k);
                i += k;
            }
        }
    }
    return rc == DV_OK ? buf_append(b, "\"", 1) : rc;
}

int jw_f32(struct buf *b, float v)
{
    if (!isfinite(v))
        return jw_raw(b, "null");
    char tmp[48];
    /* %g drops trailing zeros, so the first precision that reads back is the shortest. */
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)v);
        if (strtof(tmp, NULL) == v)
            break;
    }
    bool real = false;
    for (char *c = tmp; *c; c++) {
        if (*c == ',')
            *c = '.'; /* a locale's decimal comma */
        real = real || *c == '.' || *c == 'e' || *c == 'n' || *c == 'i';
    }
    int rc = jw_raw(b, tmp);
    if (rc == DV_OK && !real)
        rc = buf_append(b, ".0", 2);
    return rc;
}

int jw_pid(struct buf *b, const struct pid *id)
{
    if (id->kind == PID_NUM)
        return buf_appendf(b, "%" PRIu64, id->lo);
    char t[PID_TEXT_MAX];
    size_t n = pid_format(id, t);
    return jw_str(b, t, n);
}

int jw_vec(struct buf *b, const float *v, uint32_t dim)
{
    int rc = buf_append(b, "[", 1);
    for (uint32_t i = 0; i < dim && rc == DV_OK; i++) {
        if (i)
            rc = buf_append(b, ",", 1);
        if (rc == DV_OK)
            rc = jw_f32(b, v[i]);
    }
    return rc == DV_OK ? buf_append(b, "]", 1) : rc;
}

static bool key_listed(json_t *keys, const char *k, uint32_t n)
{
    size_t i;
    json_t *e;
    json_array_foreach(keys, i, e)
    {
        const char *s = json_string_value(e);
        size_t sn = json_string_length(e);
        /* "a.b" selects inside "a": top-level granularity, the whole of "a" is kept. */
        const char *dot = memchr(s, '.', sn);
        if (dot && (size_t)(dot - s) < sn)
            sn = (size_t)(dot - s);
        if (sn == n && memcmp(s, k, n) == 0)
            return true;
    }
    return false;
}

/* The payload map with only the selected top-level keys, as msgpack into `out`. */
static int select_keys(const struct msg_bytes *p, const struct psel *sel, struct buf *out)
{
    struct mpk r;
    uint32_t n, kept = 0;
    mpk_init(&r, p->p, p->len);
    int rc = mpk_map(&r, &n);
    if (rc != DV_OK)
        return rc;
    struct mpk start = r;
    for (int pass = 0; pass < 2; pass++) {
        r = start;
        if (pass == 1 && (rc = mpw_map(out, kept)) != DV_OK)
            return rc;
        for (uint32_t i = 0; i < n; i++) {
            const char *k;
            uint32_t kn;
            const uint8_t *val;
            size_t vn;
            if ((rc = mpk_str(&r, &k, &kn)) != DV_OK || (rc = mpk_span(&r, &val, &vn)) != DV_OK)
                return rc;
            bool listed = key_listed(sel->keys, k, kn);
            if (listed != (sel->mode == 1))
                continue;
            if (pass == 0)
                kept++;
            else if ((rc = mpw_str(out, k, kn)) != DV_OK || (rc = mpw_raw(out, val, vn)) != DV_OK)
                return rc;
        }
    }
    return DV_OK;
}

int jw_payload(struct buf *b, const struct msg_bytes *p, const struct psel *sel)
{
    if (p->p == NULL || p->len == 0)
        return jw_raw(b, "{}");
    struct buf tmp = BUF_INIT;
    const void *mp = p->p;
    size_t n = p->len;
    int rc = DV_OK;
    if (sel->mode != 0) {
        if ((rc = select_keys(p, sel, &tmp)) != DV_OK) {
            buf_free(&tmp);
            return rc;
        }
        mp = tmp.data;
        n = tmp.len;
    }
    char *text = NULL;
    rc = jsonmp_to_text(mp, n, &text, NULL);
    buf_free(&tmp);
    if (rc != DV_OK)
        return rc;
    rc = jw_raw(b, text);
    free(text);
    return rc;
}

int jw_point(struct buf *b, const struct msg_hit *h, bool scored, const struct psel *sel,
             bool with_vector, const struct rv_out *vo)
{
    int rc = jw_raw(b, "{\"id\":");
    if (rc == DV_OK)
        rc = jw_pid(b, &h->id);
    if (rc == DV_OK && scored) {
        rc = jw_raw(b, ",\"version\":0,\"score\":");
        if (rc == DV_OK)
            rc = jw_f32(b, h->score);
    }
    if (rc == DV_OK && sel->on) {
        rc = jw_raw(b, ",\"payload\":");
        if (rc == DV_OK)
            rc = jw_payload(b, &h->payload, sel);
    }
    if (rc == DV_OK && with_vector && h->vec) {
        rc = jw_raw(b, ",\"vector\":");
        if (rc == DV_OK)
            rc = jw_vec(b, h->vec, h->dim);
    } else if (rc == DV_OK && with_vector && h->named.v) {
        rc = jw_raw(b, ",\"vector\":");
        if (rc == DV_OK)
            rc = rv_write_named(b, &h->named, vo ? vo->cfg : NULL, vo ? vo->names : NULL);
    }
    return rc == DV_OK ? jw_raw(b, "}") : rc;
}

int jw_update(struct rx *x)
{
    if (buf_appendf(&x->res, "{\"operation_id\":%" PRIu64 ",\"status\":\"completed\"}",
                    rx_op_id(x)) != DV_OK)
        return rx_fail(x, 500, "Service internal error: out of memory");
    return 200;
}
