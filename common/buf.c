/* buf.c - growable byte buffer and bounds-checked cursor reads. */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "err.h"

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
    /* Sizes beyond PTRDIFF_MAX break pointer arithmetic; treat them as out of memory. */
    if (extra > (size_t)PTRDIFF_MAX - b->len)
        return DV_ENOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return DV_OK;
    size_t ncap = b->cap < 64 ? 64 : b->cap;
    while (ncap < need)
        ncap = ncap > (size_t)PTRDIFF_MAX / 2 ? need : ncap * 2;
    uint8_t *p = realloc(b->data, ncap);
    if (p == NULL)
        return DV_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return DV_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return DV_OK;
    int rc = buf_reserve(b, n);
    if (rc != DV_OK)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return DV_OK;
}

int buf_vappendf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int rc = buf_reserve(b, 1);
    if (rc != DV_OK)
        return rc;
    va_copy(ap2, ap);
    int n = vsnprintf((char *)b->data + b->len, b->cap - b->len, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->data[b->len] = '\0';
        return DV_EINVAL;
    }
    if ((size_t)n >= b->cap - b->len) {
        /* Did not fit: grow to the exact size and format again. */
        rc = buf_reserve(b, (size_t)n + 1);
        if (rc != DV_OK) {
            b->data[b->len] = '\0';
            return rc;
        }
        va_copy(ap2, ap);
        vsnprintf((char *)b->data + b->len, b->cap - b->len, fmt, ap2);
        va_end(ap2);
    }
    b->len += (size_t)n;
    return DV_OK;
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
}

uint8_t *buf_detach(struct buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len != NULL)
        *len = b->len;
    buf_init(b);
    return p;
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

int buf_put_u8(struct buf *b, uint8_t v)
{
    return buf_append(b, &v, 1);
}

int buf_put_u16(struct buf *b, uint16_t v)
{
    uint8_t t[2];
    buf_wr_le16(t, v);
    return buf_append(b, t, sizeof t);
}

int buf_put_u32(struct buf *b, uint32_t v)
{
    uint8_t t[4];
    buf_wr_le32(t, v);
    return buf_append(b, t, sizeof t);
}

int buf_put_u64(struct buf *b, uint64_t v)
{
    uint8_t t[8];
    buf_wr_le64(t, v);
    return buf_append(b, t, sizeof t);
}

int buf_put_f32(struct buf *b, float v)
{
    uint8_t t[4];
    buf_wr_lef32(t, v);
    return buf_append(b, t, sizeof t);
}

int buf_put_f64(struct buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return buf_put_u64(b, u);
}

int cursor_get_ref(struct cursor *c, size_t n, const uint8_t **out)
{
    if (n > c->left)
        return DV_ECORRUPT;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return DV_OK;
}

int cursor_skip(struct cursor *c, size_t n)
{
    const uint8_t *p;
    return cursor_get_ref(c, n, &p);
}

int cursor_get_bytes(struct cursor *c, void *out, size_t n)
{
    const uint8_t *p;
    int rc = cursor_get_ref(c, n, &p);
    if (rc == DV_OK && n > 0)
        memcpy(out, p, n);
    return rc;
}

int cursor_get_u8(struct cursor *c, uint8_t *out)
{
    const uint8_t *p;
    int rc = cursor_get_ref(c, 1, &p);
    if (rc == DV_OK)
        *out = p[0];
    return rc;
}

int cursor_get_u16(struct cursor *c, uint16_t *out)
{
    const uint8_t *p;
    int rc = cursor_get_ref(c, 2, &p);
    if (rc == DV_OK)
        *out = buf_rd_le16(p);
    return rc;
}

int cursor_get_u32(struct cursor *c, uint32_t *out)
{
    const uint8_t *p;
    int rc = cursor_get_ref(c, 4, &p);
    if (rc == DV_OK)
        *out = buf_rd_le32(p);
    return rc;
}

int cursor_get_u64(struct cursor *c, uint64_t *out)
{
    const uint8_t *p;
    int rc = cursor_get_ref(c, 8, &p);
    if (rc == DV_OK)
        *out = buf_rd_le64(p);
    return rc;
}

int cursor_get_f32(struct cursor *c, float *out)
{
    const uint8_t *p;
    int rc = cursor_get_ref(c, 4, &p);
    if (rc == DV_OK)
        *out = buf_rd_lef32(p);
    return rc;
}

int cursor_get_f64(struct cursor *c, double *out)
{
    const uint8_t *p;
    int rc = cursor_get_ref(c, 8, &p);
    if (rc == DV_OK) {
        uint64_t u = buf_rd_le64(p);
        memcpy(out, &u, 8);
    }
    return rc;
}

int cursor_check_count(const struct cursor *c, uint64_t count, size_t size)
{
    if (size != 0 && count > c->left / size)
        return DV_ECORRUPT;
    return DV_OK;
}
