/* buf.h - growable byte buffer, little-endian encoders, and a bounds-checked read cursor. */
#ifndef DV_BUF_H
#define DV_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A growable byte buffer. The buffer owns `data` (malloc'd); len <= cap. A zeroed struct
 * (BUF_INIT) is a valid empty buffer. Not thread-safe.
 */
struct buf {
    uint8_t *data;
    size_t len, cap;
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Makes `b` an empty buffer that owns nothing. */
void buf_init(struct buf *b);

/* Ensures room for `extra` more bytes past len. DV_ENOMEM on overflow or allocation failure
 * (the buffer is then unchanged). */
int buf_reserve(struct buf *b, size_t extra);

/* Appends `n` bytes from `p` (which may be NULL when n == 0). */
int buf_append(struct buf *b, const void *p, size_t n);

/*
 * Appends printf-formatted text. Afterwards data[len] == '\0' (the terminator is not counted
 * in len), so a buffer of text can be used as a C string. On error len is unchanged.
 */
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vappendf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Sets len to 0 and keeps the memory for reuse. */
void buf_reset(struct buf *b);

/*
 * Hands the bytes to the caller, who must free() them; `*len` (if not NULL) gets the length.
 * The buffer is left empty and owns nothing. Returns NULL if the buffer never allocated.
 */
uint8_t *buf_detach(struct buf *b, size_t *len);

/* Frees the memory and leaves an empty buffer. */
void buf_free(struct buf *b);

/* Little-endian appends. */
int buf_put_u8(struct buf *b, uint8_t v);
int buf_put_u16(struct buf *b, uint16_t v);
int buf_put_u32(struct buf *b, uint32_t v);
int buf_put_u64(struct buf *b, uint64_t v);
int buf_put_f32(struct buf *b, float v);
int buf_put_f64(struct buf *b, double v);

/* Little-endian stores and loads at a raw pointer (no bounds checks, any alignment). */
static inline void buf_wr_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void buf_wr_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void buf_wr_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void buf_wr_lef32(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    buf_wr_le32(p, u);
}

static inline uint16_t buf_rd_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t buf_rd_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t buf_rd_le64(const uint8_t *p)
{
    return (uint64_t)buf_rd_le32(p) | (uint64_t)buf_rd_le32(p + 4) << 32;
}

static inline float buf_rd_lef32(const uint8_t *p)
{
    uint32_t u = buf_rd_le32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/*
 * A read cursor over bytes it does not own: `p` is the next byte, `left` how many remain.
 * Every read checks `left` first and returns DV_ECORRUPT on overrun, leaving the cursor and
 * the output untouched, so a decoder can simply propagate the code.
 */
struct cursor {
    const uint8_t *p;
    size_t left;
};

static inline void cursor_init(struct cursor *c, const void *p, size_t len)
{
    c->p = p;
    c->left = len;
}

int cursor_get_u8(struct cursor *c, uint8_t *out);
int cursor_get_u16(struct cursor *c, uint16_t *out);
int cursor_get_u32(struct cursor *c, uint32_t *out);
int cursor_get_u64(struct cursor *c, uint64_t *out);
int cursor_get_f32(struct cursor *c, float *out);
int cursor_get_f64(struct cursor *c, double *out);

/* Copies `n` bytes out. */
int cursor_get_bytes(struct cursor *c, void *out, size_t n);

/* Points `*out` at the next `n` bytes without copying (valid as long as the underlying
 * memory is) and moves past them. */
int cursor_get_ref(struct cursor *c, size_t n, const uint8_t **out);

/* Moves past `n` bytes. */
int cursor_skip(struct cursor *c, size_t n);

/*
 * Checks that a declared count of `count` items of `size` bytes each fits in what is left,
 * without overflow; call it before allocating for the items. DV_ECORRUPT if not.
 */
int cursor_check_count(const struct cursor *c, uint64_t count, size_t size);

#endif
