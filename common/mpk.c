/* mpk.c - bounds-checked msgpack reader and shortest-encoding writer. */
#include "mpk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

/* One decoded header: the type, how many bytes the header takes, and either the scalar
 * value, the payload length (str, bin, ext: bytes after the header) or the element count
 * (array, map). */
struct head {
    enum mpk_type t;
    size_t hlen;
    uint64_t len;
    union {
        uint64_t u;
        int64_t i;
        double f;
        bool b;
    } v;
};

static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Sizes of the fixed-width payloads of 0xc4..0xdf: for sized types the width of the length
 * field, for scalars the width of the value. */
static int head_sized(const uint8_t *p, size_t left, size_t lenw, enum mpk_type t, struct head *h)
{
    if (left < 1 + lenw)
        return DV_ECORRUPT;
    h->t = t;
    h->hlen = 1 + lenw;
    h->len = be(p + 1, lenw);
    return DV_OK;
}

/* Decodes the header at p. DV_ECORRUPT when it is truncated, when a str/bin/ext payload
 * runs past `end`, when an array or map declares more elements than the bytes left can
 * hold, or for the byte 0xc1. */
static int head(const uint8_t *p, const uint8_t *end, struct head *h)
{
    size_t left = (size_t)(end - p);
    int rc = DV_OK;
    if (left == 0)
        return DV_ECORRUPT;
    uint8_t c = p[0];
    h->hlen = 1;
    h->len = 0;
    if (c <= 0x7f) {
        h->t = MPK_UINT;
        h->v.u = c;
        return DV_OK;
    }
    if (c >= 0xe0) {
        h->t = MPK_INT;
        h->v.i = (int8_t)c;
        return DV_OK;
    }
    if (c <= 0x8f) {
        h->t = MPK_MAP;
        h->len = c & 0x0f;
    } else if (c <= 0x9f) {
        h->t = MPK_ARRAY;
        h->len = c & 0x0f;
    } else if (c <= 0xbf) {
        h->t = MPK_STR;
        h->len = c & 0x1f;
    } else {
        switch (c) {
        case 0xc0:
            h->t = MPK_NIL;
            return DV_OK;
        case 0xc2:
        case 0xc3:
            h->t = MPK_BOOL;
            h->v.b = c == 0xc3;
            return DV_OK;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            rc = head_sized(p, left, (size_t)1 << (c - 0xc4), MPK_BIN, h);
            break;
        case 0xc7:
        case 0xc8:
        case 0xc9:
            rc = head_sized(p, left, (size_t)1 << (c - 0xc7), MPK_EXT, h);
            h->hlen++; /* the type byte */
            break;
        case 0xca:
            if (left < 5)
                return DV_ECORRUPT;
            h->t = MPK_FLOAT;
            {
                uint32_t u = (uint32_t)be(p + 1, 4);
                float f;
                memcpy(&f, &u, 4);
                h->v.f = f;
            }
            h->hlen = 5;
            return DV_OK;
        case 0xcb:
            if (left < 9)
                return DV_ECORRUPT;
            h->t = MPK_FLOAT;
            {
                uint64_t u = be(p + 1, 8);
                memcpy(&h->v.f, &u, 8);
            }
            h->hlen = 9;
            return DV_OK;
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf: {
            size_t w = (size_t)1 << (c - 0xcc);
            if (left < 1 + w)
                return DV_ECORRUPT;
            h->t = MPK_UINT;
            h->v.u = be(p + 1, w);
            h->hlen = 1 + w;
            return DV_OK;
        }
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            size_t w = (size_t)1 << (c - 0xd0);
            if (left < 1 + w)
                return DV_ECORRUPT;
            uint64_t u = be(p + 1, w);
            /* Sign-extend from w bytes. */
            if (w < 8 && (u >> (8 * w - 1)) & 1)
                u |= ~(uint64_t)0 << (8 * w);
            h->v.i = (int64_t)u;
            h->t = h->v.i < 0 ? MPK_INT : MPK_UINT;
            h->hlen = 1 + w;
            return DV_OK;
        }
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            h->t = MPK_EXT;
            h->hlen = 2;
            h->len = (uint64_t)1 << (c - 0xd4);
            break;
        case 0xd9:
        case 0xda:
        case 0xdb:
            rc = head_sized(p, left, (size_t)1 << (c - 0xd9), MPK_STR, h);
            break;
        case 0xdc:
        case 0xdd:
            rc = head_sized(p, left, c == 0xdc ? 2 : 4, MPK_ARRAY, h);
            break;
        case 0xde:
        case 0xdf:
            rc = head_sized(p, left, c == 0xde ? 2 : 4, MPK_MAP, h);
            break;
        default: /* 0xc1 */
            return DV_ECORRUPT;
        }
        if (rc != DV_OK)
            return rc;
    }
    if (h->hlen > left)
        return DV_ECORRUPT;
    left -= h->hlen;
    /* Every array element takes at least one byte, every map pair at least two. */
    uint64_t need = h->t == MPK_MAP ? 2 * h->len : h->len;
    if (need > left)
        return DV_ECORRUPT;
    return DV_OK;
}

void mpk_init(struct mpk *r, const void *p, size_t n)
{
    r->p = p;
    r->end = r->p + n;
}

bool mpk_done(const struct mpk *r)
{
    return r->p >= r->end;
}

enum mpk_type mpk_peek(const struct mpk *r)
{
    if (r->p >= r->end)
        return MPK_INVALID;
    uint8_t c = r->p[0];
    if (c >= 0xd0 && c <= 0xd3) {
        struct head h;
        return head(r->p, r->end, &h) == DV_OK ? h.t : MPK_INVALID;
    }
    if (c <= 0x7f)
        return MPK_UINT;
    if (c >= 0xe0)
        return MPK_INT;
    if (c <= 0x8f)
        return MPK_MAP;
    if (c <= 0x9f)
        return MPK_ARRAY;
    if (c <= 0xbf)
        return MPK_STR;
    static const uint8_t types[32] = {
        [0x00] = MPK_NIL,   [0x01] = MPK_INVALID, [0x02] = MPK_BOOL,  [0x03] = MPK_BOOL,
        [0x04] = MPK_BIN,   [0x05] = MPK_BIN,     [0x06] = MPK_BIN,   [0x07] = MPK_EXT,
        [0x08] = MPK_EXT,   [0x09] = MPK_EXT,     [0x0a] = MPK_FLOAT, [0x0b] = MPK_FLOAT,
        [0x0c] = MPK_UINT,  [0x0d] = MPK_UINT,    [0x0e] = MPK_UINT,  [0x0f] = MPK_UINT,
        [0x14] = MPK_EXT,   [0x15] = MPK_EXT,     [0x16] = MPK_EXT,   [0x17] = MPK_EXT,
        [0x18] = MPK_EXT,   [0x19] = MPK_STR,     [0x1a] = MPK_STR,   [0x1b] = MPK_STR,
        [0x1c] = MPK_ARRAY, [0x1d] = MPK_ARRAY,   [0x1e] = MPK_MAP,   [0x1f] = MPK_MAP,
    };
    return (enum mpk_type)types[c - 0xc0];
}

int mpk_skip(struct mpk *r)
{
    /* Values still to skip in each enclosing container, without recursion. */
    uint64_t stack[MPK_MAX_DEPTH];
    int depth = 0;
    uint64_t pending = 1;
    const uint8_t *p = r->p;
    for (;;) {
        while (pending == 0) {
            if (depth == 0) {
                r->p = p;
                return DV_OK;
            }
            pending = stack[--depth];
        }
        struct head h;
        int rc = head(p, r->end, &h);
        if (rc != DV_OK)
            return rc;
        pending--;
        p += h.hlen;
        if (h.t == MPK_ARRAY || h.t == MPK_MAP) {
            if (depth == MPK_MAX_DEPTH)
                return DV_ECORRUPT;
            stack[depth++] = pending;
            pending = h.t == MPK_MAP ? 2 * h.len : h.len;
        } else if (h.t == MPK_STR || h.t == MPK_BIN || h.t == MPK_EXT) {
            p += h.len; /* head() checked it fits */
        }
    }
}

int mpk_span(struct mpk *r, const uint8_t **start, size_t *len)
{
    const uint8_t *s = r->p;
    int rc = mpk_skip(r);
    if (rc != DV_OK)
        return rc;
    *start = s;
    *len = (size_t)(r->p - s);
    return DV_OK;
}

/* Decodes the header of the next value and checks it has type t (DV_ETYPE if not; a
 * truncated value of the right type is DV_ECORRUPT). */
static int expect(const struct mpk *r, enum mpk_type t, struct head *h)
{
    enum mpk_type pt = mpk_peek(r);
    if (pt != t && pt != MPK_INVALID)
        return DV_ETYPE;
    return head(r->p, r->end, h);
}

int mpk_nil(struct mpk *r)
{
    struct head h;
    int rc = expect(r, MPK_NIL, &h);
    if (rc != DV_OK)
        return rc;
    r->p += h.hlen;
    return DV_OK;
}

int mpk_bool(struct mpk *r, bool *v)
{
    struct head h;
    int rc = expect(r, MPK_BOOL, &h);
    if (rc != DV_OK)
        return rc;
    if (h.t != MPK_BOOL)
        return DV_ECORRUPT;
    *v = h.v.b;
    r->p += h.hlen;
    return DV_OK;
}

/* Decodes an integer of either sign. */
static int integer(const struct mpk *r, struct head *h)
{
    enum mpk_type t = mpk_peek(r);
    if (t != MPK_UINT && t != MPK_INT && t != MPK_INVALID)
        return DV_ETYPE;
    return head(r->p, r->end, h);
}

int mpk_u64(struct mpk *r, uint64_t *v)
{
    struct head h;
    int rc = integer(r, &h);
    if (rc != DV_OK)
        return rc;
    if (h.t == MPK_INT)
        return DV_ERANGE;
    if (h.t != MPK_UINT)
        return DV_ETYPE;
    *v = h.v.u;
    r->p += h.hlen;
    return DV_OK;
}

int mpk_i64(struct mpk *r, int64_t *v)
{
    struct head h;
    int rc = integer(r, &h);
    if (rc != DV_OK)
        return rc;
    if (h.t == MPK_UINT && h.v.u > (uint64_t)INT64_MAX)
        return DV_ERANGE;
    if (h.t != MPK_UINT && h.t != MPK_INT)
        return DV_ETYPE;
    *v = h.v.i; /* the union holds the same bits either way */
    r->p += h.hlen;
    return DV_OK;
}

int mpk_f64(struct mpk *r, double *v)
{
    enum mpk_type t = mpk_peek(r);
    if (t != MPK_UINT && t != MPK_INT && t != MPK_FLOAT && t != MPK_INVALID)
        return DV_ETYPE;
    struct head h;
    int rc = head(r->p, r->end, &h);
    if (rc != DV_OK)
        return rc;
    if (h.t == MPK_UINT)
        *v = (double)h.v.u;
    else if (h.t == MPK_INT)
        *v = (double)h.v.i;
    else if (h.t == MPK_FLOAT)
        *v = h.v.f;
    else
        return DV_ETYPE;
    r->p += h.hlen;
    return DV_OK;
}

/* str, bin: header then payload, both known to fit. */
static int sized(struct mpk *r, enum mpk_type t, const void **p, uint32_t *len)
{
    struct head h;
    int rc = expect(r, t, &h);
    if (rc != DV_OK)
        return rc;
    if (h.t != t)
        return DV_ETYPE;
    *p = r->p + h.hlen;
    *len = (uint32_t)h.len;
    r->p += h.hlen + h.len;
    return DV_OK;
}

int mpk_str(struct mpk *r, const char **s, uint32_t *len)
{
    const void *p;
    uint32_t n;
    int rc = sized(r, MPK_STR, &p, &n);
    if (rc != DV_OK)
        return rc;
    *s = p;
    *len = n;
    return DV_OK;
}

int mpk_bin(struct mpk *r, const void **p, uint32_t *len)
{
    return sized(r, MPK_BIN, p, len);
}

static int container(struct mpk *r, enum mpk_type t, uint32_t *n)
{
    struct head h;
    int rc = expect(r, t, &h);
    if (rc != DV_OK)
        return rc;
    if (h.t != t)
        return DV_ETYPE;
    *n = (uint32_t)h.len;
    r->p += h.hlen;
    return DV_OK;
}

int mpk_array(struct mpk *r, uint32_t *n)
{
    return container(r, MPK_ARRAY, n);
}

int mpk_map(struct mpk *r, uint32_t *n)
{
    return container(r, MPK_MAP, n);
}

int mpk_pid(struct mpk *r, struct pid *id)
{
    struct mpk c = *r;
    int rc;
    switch (mpk_peek(r)) {
    case MPK_UINT: {
        uint64_t v;
        rc = mpk_u64(&c, &v);
        if (rc != DV_OK)
            return rc;
        *id = pid_num(v);
        break;
    }
    case MPK_INT:
        return DV_ERANGE;
    case MPK_STR: {
        const char *s;
        uint32_t n;
        struct pid tmp;
        rc = mpk_str(&c, &s, &n);
        if (rc != DV_OK)
            return rc;
        rc = pid_parse_uuid(s, n, &tmp);
        if (rc != DV_OK)
            return DV_EPARSE;
        *id = tmp;
        break;
    }
    case MPK_BIN: {
        const void *p;
        uint32_t n;
        rc = mpk_bin(&c, &p, &n);
        if (rc != DV_OK)
            return rc;
        if (n != 16)
            return DV_EPARSE;
        *id = pid_from_uuid_bytes(p);
        break;
    }
    case MPK_INVALID:
        return DV_ECORRUPT;
    default:
        return DV_ETYPE;
    }
    *r = c;
    return DV_OK;
}

int mpk_map_find(const void *map, size_t n, const char *key, size_t keylen, const uint8_t **val,
                 size_t *vlen)
{
    struct mpk r;
    uint32_t pairs;
    mpk_init(&r, map, n);
    int rc = mpk_map(&r, &pairs);
    if (rc != DV_OK)
        return rc;
    for (uint32_t i = 0; i < pairs; i++) {
        const char *k;
        uint32_t kn;
        if (mpk_str(&r, &k, &kn) == DV_OK) {
            if (kn == keylen && memcmp(k, key, keylen) == 0)
                return mpk_span(&r, val, vlen);
        } else if ((rc = mpk_skip(&r)) != DV_OK) {
            return rc;
        }
        if ((rc = mpk_skip(&r)) != DV_OK)
            return rc;
    }
    return DV_ENOTFOUND;
}

/* Field-checked decoding. */

int mpk_dec_fail(struct mpk_dec *d, int rc, const char *field)
{
    if (d->fail)
        return d->fail(d, rc, field);
    if (rc == DV_ENOMEM) {
        dv_errmsg_set(d->errmsg, "%s: out of memory", field);
        return rc;
    }
    dv_errmsg_set(d->errmsg, "%s: %s (%zu bytes left)", field, dv_strerror(rc), mpk_dec_left(d));
    return DV_EPROTO;
}

int mpk_dec_failf(struct mpk_dec *d, int rc, const char *fmt, ...)
{
    char field[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(field, sizeof field, fmt, ap);
    va_end(ap);
    return mpk_dec_fail(d, rc, field);
}

size_t mpk_dec_left(const struct mpk_dec *d)
{
    return (size_t)(d->r.end - d->r.p);
}

/* Returns DV_OK, or the failure of `field` reported. */
#define DEC(d, x, field)                                                                           \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ != DV_OK)                                                                          \
            return mpk_dec_fail(d, rc_, field);                                                    \
    } while (0)

int mpk_dec_nil(struct mpk_dec *d, const char *field)
{
    DEC(d, mpk_nil(&d->r), field);
    return DV_OK;
}

int mpk_dec_bool(struct mpk_dec *d, bool *v, const char *field)
{
    DEC(d, mpk_bool(&d->r, v), field);
    return DV_OK;
}

int mpk_dec_u64(struct mpk_dec *d, uint64_t *v, const char *field)
{
    DEC(d, mpk_u64(&d->r, v), field);
    return DV_OK;
}

int mpk_dec_u32(struct mpk_dec *d, uint32_t *v, const char *field)
{
    uint64_t x;
    DEC(d, mpk_u64(&d->r, &x), field);
    if (x > UINT32_MAX)
        return mpk_dec_fail(d, DV_ERANGE, field);
    *v = (uint32_t)x;
    return DV_OK;
}

int mpk_dec_i64(struct mpk_dec *d, int64_t *v, const char *field)
{
    DEC(d, mpk_i64(&d->r, v), field);
    return DV_OK;
}

int mpk_dec_f64(struct mpk_dec *d, double *v, const char *field)
{
    DEC(d, mpk_f64(&d->r, v), field);
    return DV_OK;
}

int mpk_dec_pid(struct mpk_dec *d, struct pid *id, const char *field)
{
    DEC(d, mpk_pid(&d->r, id), field);
    return DV_OK;
}

int mpk_dec_str(struct mpk_dec *d, const char **s, uint32_t *len, const char *field)
{
    DEC(d, mpk_str(&d->r, s, len), field);
    return DV_OK;
}

int mpk_dec_bin(struct mpk_dec *d, const void **p, uint32_t *len, const char *field)
{
    DEC(d, mpk_bin(&d->r, p, len), field);
    return DV_OK;
}

int mpk_dec_strcpy(struct mpk_dec *d, char *dst, size_t max, const char *field)
{
    const char *s;
    uint32_t n;
    DEC(d, mpk_str(&d->r, &s, &n), field);
    if (n > max || memchr(s, 0, n))
        return mpk_dec_fail(d, DV_ERANGE, field);
    memcpy(dst, s, n);
    dst[n] = '\0';
    return DV_OK;
}

int mpk_dec_bin_or_nil(struct mpk_dec *d, const void **p, uint32_t *len, const char *field)
{
    *p = NULL;
    *len = 0;
    if (mpk_peek(&d->r) == MPK_NIL)
        return mpk_dec_nil(d, field);
    return mpk_dec_bin(d, p, len, field);
}

int mpk_dec_raw_or_nil(struct mpk_dec *d, const uint8_t **p, uint32_t *len, const char *field)
{
    size_t n;
    *p = NULL;
    *len = 0;
    if (mpk_peek(&d->r) == MPK_NIL)
        return mpk_dec_nil(d, field);
    DEC(d, mpk_span(&d->r, p, &n), field);
    if (n > UINT32_MAX)
        return mpk_dec_fail(d, DV_ERANGE, field);
    *len = (uint32_t)n;
    return DV_OK;
}

int mpk_dec_tuple(struct mpk_dec *d, uint32_t n, const char *field)
{
    uint32_t got;
    DEC(d, mpk_array(&d->r, &got), field);
    if (got != n)
        return mpk_dec_fail(d, DV_ECORRUPT, field);
    return DV_OK;
}

int mpk_dec_list(struct mpk_dec *d, uint32_t *n, size_t min, uint32_t max, const char *field)
{
    DEC(d, mpk_array(&d->r, n), field);
    if ((uint64_t)*n * min > (uint64_t)mpk_dec_left(d) || *n > max)
        return d->count_in_errors ? mpk_dec_failf(d, DV_ECORRUPT, "%s count %u", field, *n)
                                  : mpk_dec_fail(d, DV_ECORRUPT, field);
    return DV_OK;
}

/* Writer. */

/* Appends the tag byte c followed by the low w bytes of v, big-endian. */
static int put(struct buf *b, uint8_t c, uint64_t v, size_t w)
{
    int rc = buf_reserve(b, 1 + w);
    if (rc != DV_OK)
        return rc;
    uint8_t *p = b->data + b->len;
    p[0] = c;
    for (size_t i = 0; i < w; i++)
        p[1 + i] = (uint8_t)(v >> (8 * (w - 1 - i)));
    b->len += 1 + w;
    return DV_OK;
}

int mpw_nil(struct buf *b)
{
    return put(b, 0xc0, 0, 0);
}

int mpw_bool(struct buf *b, bool v)
{
    return put(b, v ? 0xc3 : 0xc2, 0, 0);
}

int mpw_u64(struct buf *b, uint64_t v)
{
    if (v <= 0x7f)
        return put(b, (uint8_t)v, 0, 0);
    if (v <= UINT8_MAX)
        return put(b, 0xcc, v, 1);
    if (v <= UINT16_MAX)
        return put(b, 0xcd, v, 2);
    if (v <= UINT32_MAX)
        return put(b, 0xce, v, 4);
    return put(b, 0xcf, v, 8);
}

int mpw_i64(struct buf *b, int64_t v)
{
    if (v >= 0)
        return mpw_u64(b, (uint64_t)v);
    if (v >= -32)
        return put(b, (uint8_t)v, 0, 0);
    if (v >= INT8_MIN)
        return put(b, 0xd0, (uint64_t)v, 1);
    if (v >= INT16_MIN)
        return put(b, 0xd1, (uint64_t)v, 2);
    if (v >= INT32_MIN)
        return put(b, 0xd2, (uint64_t)v, 4);
    return put(b, 0xd3, (uint64_t)v, 8);
}

int mpw_f64(struct buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return put(b, 0xcb, u, 8);
}

int mpw_f32(struct buf *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return put(b, 0xca, u, 4);
}

/* Header plus payload, reserved at once so a failure leaves the buffer unchanged. */
static int sized_put(struct buf *b, uint8_t c8, const void *p, size_t n, bool fix)
{
    if (n > UINT32_MAX)
        return DV_ETOOBIG;
    int rc = buf_reserve(b, 5 + n);
    if (rc != DV_OK)
        return rc;
    if (fix && n < 32)
        rc = put(b, (uint8_t)(0xa0 | n), 0, 0);
    else if (n <= UINT8_MAX)
        rc = put(b, c8, n, 1);
    else if (n <= UINT16_MAX)
        rc = put(b, (uint8_t)(c8 + 1), n, 2);
    else
        rc = put(b, (uint8_t)(c8 + 2), n, 4);
    if (rc != DV_OK)
        return rc;
    return buf_append(b, p, n);
}

int mpw_str(struct buf *b, const char *s, size_t n)
{
    return sized_put(b, 0xd9, s, n, true);
}

int mpw_bin(struct buf *b, const void *p, size_t n)
{
    return sized_put(b, 0xc4, p, n, false);
}

int mpw_array(struct buf *b, uint32_t n)
{
    if (n < 16)
        return put(b, (uint8_t)(0x90 | n), 0, 0);
    if (n <= UINT16_MAX)
        return put(b, 0xdc, n, 2);
    return put(b, 0xdd, n, 4);
}

int mpw_map(struct buf *b, uint32_t n)
{
    if (n < 16)
        return put(b, (uint8_t)(0x80 | n), 0, 0);
    if (n <= UINT16_MAX)
        return put(b, 0xde, n, 2);
    return put(b, 0xdf, n, 4);
}

int mpw_raw(struct buf *b, const void *p, size_t n)
{
    return buf_append(b, p, n);
}

int mpw_pid(struct buf *b, const struct pid *id)
{
    if (id->kind == PID_NUM)
        return mpw_u64(b, id->lo);
    char text[PID_TEXT_MAX];
    size_t n = pid_format(id, text);
    return mpw_str(b, text, n);
}
