/* jsonmp.c - JSON <-> msgpack conversion: jansson values and text on one side, mpk on the
 * other. */
#include "jsonmp.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mpk.h"

#define EMSG(...)                                                                                  \
    do {                                                                                           \
        if (errmsg != NULL)                                                                        \
            dv_errmsg_set(errmsg, __VA_ARGS__);                                                    \
    } while (0)

/* depth: containers already open around v. */
static int from_json(const json_t *v, struct buf *out, int depth, char *errmsg)
{
    int rc = DV_OK;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth >= MPK_MAX_DEPTH) {
            EMSG("json: nesting deeper than %d", MPK_MAX_DEPTH);
            return DV_EINVAL;
        }
        size_t n = json_object_size(v);
        if (n > UINT32_MAX) {
            EMSG("json: object too big");
            return DV_ETOOBIG;
        }
        if ((rc = mpw_map(out, (uint32_t)n)) != DV_OK)
            break;
        const char *key;
        size_t keylen;
        json_t *val;
        /* jansson's iteration API is not const-correct; it does not modify the object. */
        json_t *obj = (json_t *)v;
        json_object_keylen_foreach(obj, key, keylen, val)
        {
            if ((rc = mpw_str(out, key, keylen)) != DV_OK)
                break;
            if ((rc = from_json(val, out, depth + 1, errmsg)) != DV_OK)
                return rc;
        }
        break;
    }
    case JSON_ARRAY: {
        if (depth >= MPK_MAX_DEPTH) {
            EMSG("json: nesting deeper than %d", MPK_MAX_DEPTH);
            return DV_EINVAL;
        }
        size_t n = json_array_size(v);
        if (n > UINT32_MAX) {
            EMSG("json: array too big");
            return DV_ETOOBIG;
        }
        if ((rc = mpw_array(out, (uint32_t)n)) != DV_OK)
            break;
        for (size_t i = 0; i < n; i++)
            if ((rc = from_json(json_array_get(v, i), out, depth + 1, errmsg)) != DV_OK)
                return rc;
        break;
    }
    case JSON_STRING:
        rc = mpw_str(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        rc = mpw_i64(out, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL:
        rc = mpw_f64(out, json_real_value(v));
        break;
    case JSON_TRUE:
        rc = mpw_bool(out, true);
        break;
    case JSON_FALSE:
        rc = mpw_bool(out, false);
        break;
    case JSON_NULL:
        rc = mpw_nil(out);
        break;
    }
    if (rc != DV_OK)
        EMSG("json: %s", dv_strerror(rc));
    return rc;
}

int jsonmp_from_json(const json_t *v, struct buf *out, char *errmsg)
{
    size_t len0 = out->len;
    int rc = from_json(v, out, 0, errmsg);
    if (rc != DV_OK)
        out->len = len0;
    return rc;
}

int jsonmp_from_text(const char *json, size_t n, struct buf *out, char *errmsg)
{
    json_error_t err;
    json_t *v = json_loadb(json, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (v == NULL) {
        EMSG("json: line %d column %d: %s", err.line, err.column, err.text);
        return DV_EPARSE;
    }
    int rc = jsonmp_from_json(v, out, errmsg);
    json_decref(v);
    return rc;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* Decoding context shared by the JSON-value and JSON-text outputs. */
struct dec {
    struct mpk r;
    const uint8_t *base;
    char *errmsg;
};

#define DMSG(d, ...)                                                                               \
    do {                                                                                           \
        if ((d)->errmsg != NULL) {                                                                 \
            dv_errmsg_set((d)->errmsg, __VA_ARGS__);                                               \
            dv_errmsg_prefix((d)->errmsg, "msgpack: at byte %zu", (size_t)((d)->r.p - (d)->base)); \
        }                                                                                          \
    } while (0)

/* Checks what JSON cannot hold, before either output reads the value. */
static int dec_check(struct dec *d, enum mpk_type t, int depth)
{
    switch (t) {
    case MPK_BIN:
        DMSG(d, "bin has no JSON form");
        return DV_EUNSUPPORTED;
    case MPK_EXT:
        DMSG(d, "ext has no JSON form");
        return DV_EUNSUPPORTED;
    case MPK_INVALID:
        DMSG(d, "bad or missing byte");
        return DV_ECORRUPT;
    case MPK_ARRAY:
    case MPK_MAP:
        if (depth >= MPK_MAX_DEPTH) {
            DMSG(d, "nesting deeper than %d", MPK_MAX_DEPTH);
            return DV_ECORRUPT;
        }
        return DV_OK;
    default:
        return DV_OK;
    }
}

/* Reads a string (key or value) that must be UTF-8. */
static int dec_str(struct dec *d, const char **s, uint32_t *n)
{
    struct mpk at = d->r;
    int rc = mpk_str(&d->r, s, n);
    if (rc != DV_OK) {
        DMSG(d, "%s", rc == DV_ETYPE ? "map key is not a string" : "truncated string");
        return rc == DV_ETYPE ? DV_EUNSUPPORTED : rc;
    }
    if (!utf8_valid((const uint8_t *)*s, *n)) {
        d->r = at;
        DMSG(d, "string is not valid UTF-8");
        return DV_EPARSE;
    }
    return DV_OK;
}

/* Reads a number; DV_ERANGE for what JSON cannot carry. */
static int dec_num(struct dec *d, enum mpk_type t, int64_t *i, double *f)
{
    int rc;
    if (t == MPK_FLOAT) {
        rc = mpk_f64(&d->r, f);
        if (rc == DV_OK && !isfinite(*f)) {
            DMSG(d, "non-finite float has no JSON form");
            return DV_ERANGE;
        }
    } else {
        rc = mpk_i64(&d->r, i);
        if (rc == DV_ERANGE)
            DMSG(d, "integer above INT64_MAX has no JSON form");
    }
    if (rc != DV_OK && rc != DV_ERANGE)
        DMSG(d, "%s", dv_strerror(rc));
    return rc;
}

static int to_json(struct dec *d, int depth, json_t **out)
{
    enum mpk_type t = mpk_peek(&d->r);
    int rc = dec_check(d, t, depth);
    if (rc != DV_OK)
        return rc;
    json_t *v = NULL;
    switch (t) {
    case MPK_NIL:
        rc = mpk_nil(&d->r);
        v = json_null();
        break;
    case MPK_BOOL: {
        bool b = false;
        rc = mpk_bool(&d->r, &b);
        v = json_boolean(b);
        break;
    }
    case MPK_UINT:
    case MPK_INT:
    case MPK_FLOAT: {
        int64_t i = 0;
        double f = 0;
        if ((rc = dec_num(d, t, &i, &f)) != DV_OK)
            return rc;
        v = t == MPK_FLOAT ? json_real(f) : json_integer((json_int_t)i);
        break;
    }
    case MPK_STR: {
        const char *s;
        uint32_t n;
        if ((rc = dec_str(d, &s, &n)) != DV_OK)
            return rc;
        v = json_stringn_nocheck(s, n);
        break;
    }
    case MPK_ARRAY: {
        uint32_t n;
        if ((rc = mpk_array(&d->r, &n)) != DV_OK) {
            DMSG(d, "bad array header");
            return rc;
        }
        if ((v = json_array()) == NULL)
            break;
        for (uint32_t i = 0; i < n; i++) {
            json_t *e;
            if ((rc = to_json(d, depth + 1, &e)) != DV_OK)
                goto err_free;
            if (json_array_append_new(v, e) != 0) {
                rc = DV_ENOMEM;
                goto err_free;
            }
        }
        break;
    }
    case MPK_MAP: {
        uint32_t n;
        if ((rc = mpk_map(&d->r, &n)) != DV_OK) {
            DMSG(d, "bad map header");
            return rc;
        }
        if ((v = json_object()) == NULL)
            break;
        for (uint32_t i = 0; i < n; i++) {
            const char *k;
            uint32_t kn;
            json_t *e;
            if ((rc = dec_str(d, &k, &kn)) != DV_OK)
                goto err_free;
            if ((rc = to_json(d, depth + 1, &e)) != DV_OK)
                goto err_free;
            if (json_object_setn_new_nocheck(v, k, kn, e) != 0) {
                rc = DV_ENOMEM;
                goto err_free;
            }
        }
        break;
    }
    default:
        DMSG(d, "unexpected type");
        return DV_ECORRUPT;
    }
    if (rc != DV_OK) {
        DMSG(d, "%s", dv_strerror(rc));
        goto err_free;
    }
    if (v == NULL) {
        DMSG(d, "out of memory");
        return DV_ENOMEM;
    }
    *out = v;
    return DV_OK;

err_free:
    if (rc == DV_ENOMEM)
        DMSG(d, "out of memory");
    json_decref(v);
    return rc;
}

int jsonmp_to_json(const void *mp, size_t n, json_t **out, char *errmsg)
{
    struct dec d = {.base = mp, .errmsg = errmsg};
    mpk_init(&d.r, mp, n);
    json_t *v;
    int rc = to_json(&d, 0, &v);
    if (rc != DV_OK)
        return rc;
    if (!mpk_done(&d.r)) {
        DMSG(&d, "bytes left after the value");
        json_decref(v);
        return DV_ECORRUPT;
    }
    *out = v;
    return DV_OK;
}

/* JSON text output. */

static int put_json_str(struct buf *b, const char *s, size_t n)
{
    int rc = buf_reserve(b, n + 2);
    if (rc != DV_OK)
        return rc;
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        const char *esc = NULL;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            break;
        }
        if (esc != NULL)
            rc = buf_append(b, esc, 2);
        else if (c < 0x20)
            rc = buf_appendf(b, "\\u%04x", c);
        else
            rc = buf_append(b, &c, 1);
        if (rc != DV_OK)
            return rc;
    }
    return buf_append(b, "\"", 1);
}

/* Shortest text that reads back to the same float (or double when !single). */
static int put_json_float(struct buf *b, double v, bool single)
{
    char tmp[64];
    int maxp = single ? 9 : 17;
    for (int prec = 1; prec <= maxp; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (single ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
            break;
    }
    /* %g switches to an exponent once it exceeds the precision ("1e+02"); print numbers
     * below 1e17 in full instead. */
    char *e = strchr(tmp, 'e');
    if (e != NULL) {
        int exp = atoi(e + 1);
        if (exp >= 0 && exp < 17)
            snprintf(tmp, sizeof tmp, "%.*g", exp + 1, v);
    }
    bool real = false;
    for (char *c = tmp; *c; c++) {
        if (*c == ',') /* a locale's decimal comma */
            *c = '.';
        if (*c == '.' || *c == 'e')
            real = true;
    }
    int rc = buf_append(b, tmp, strlen(tmp));
    if (rc == DV_OK && !real)
        rc = buf_append(b, ".0", 2);
    return rc;
}

static int to_text(struct dec *d, int depth, struct buf *b)
{
    enum mpk_type t = mpk_peek(&d->r);
    int rc = dec_check(d, t, depth);
    if (rc != DV_OK)
        return rc;
    switch (t) {
    case MPK_NIL:
        if ((rc = mpk_nil(&d->r)) == DV_OK)
            rc = buf_append(b, "null", 4);
        break;
    case MPK_BOOL: {
        bool v;
        if ((rc = mpk_bool(&d->r, &v)) == DV_OK)
            rc = v ? buf_append(b, "true", 4) : buf_append(b, "false", 5);
        break;
    }
    case MPK_UINT:
    case MPK_INT:
    case MPK_FLOAT: {
        int64_t i = 0;
        double f = 0;
        bool single = d->r.p[0] == 0xca;
        if ((rc = dec_num(d, t, &i, &f)) != DV_OK)
            return rc;
        if (t == MPK_FLOAT)
            rc = put_json_float(b, f, single);
        else
            rc = buf_appendf(b, "%lld", (long long)i);
        break;
    }
    case MPK_STR: {
        const char *s;
        uint32_t n;
        if ((rc = dec_str(d, &s, &n)) != DV_OK)
            return rc;
        rc = put_json_str(b, s, n);
        break;
    }
    case MPK_ARRAY:
    case MPK_MAP: {
        uint32_t n;
        bool map = t == MPK_MAP;
        if ((rc = map ? mpk_map(&d->r, &n) : mpk_array(&d->r, &n)) != DV_OK) {
            DMSG(d, "bad %s header", map ? "map" : "array");
            return rc;
        }
        if ((rc = buf_append(b, map ? "{" : "[", 1)) != DV_OK)
            break;
        for (uint32_t i = 0; i < n; i++) {
            if (i > 0 && (rc = buf_append(b, ",", 1)) != DV_OK)
                break;
            if (map) {
                const char *k;
                uint32_t kn;
                if ((rc = dec_str(d, &k, &kn)) != DV_OK)
                    return rc;
                if ((rc = put_json_str(b, k, kn)) != DV_OK || (rc = buf_append(b, ":", 1)))
                    break;
            }
            if ((rc = to_text(d, depth + 1, b)) != DV_OK)
                return rc;
        }
        if (rc == DV_OK)
            rc = buf_append(b, map ? "}" : "]", 1);
        break;
    }
    default:
        DMSG(d, "unexpected type");
        return DV_ECORRUPT;
    }
    if (rc != DV_OK)
        DMSG(d, "%s", dv_strerror(rc));
    return rc;
}

int jsonmp_to_text(const void *mp, size_t n, char **text, char *errmsg)
{
    struct dec d = {.base = mp, .errmsg = errmsg};
    struct buf b = BUF_INIT;
    mpk_init(&d.r, mp, n);
    int rc = to_text(&d, 0, &b);
    if (rc == DV_OK && !mpk_done(&d.r)) {
        DMSG(&d, "bytes left after the value");
        rc = DV_ECORRUPT;
    }
    if (rc == DV_OK)
        rc = buf_put_u8(&b, 0);
    if (rc != DV_OK) {
        buf_free(&b);
        return rc;
    }
    *text = (char *)buf_detach(&b, NULL);
    return DV_OK;
}
