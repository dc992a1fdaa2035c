/* mpk.h - a zero-allocation, bounds-checked msgpack reader over raw bytes, and a writer. */
#ifndef DV_MPK_H
#define DV_MPK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "pid.h"

/* The deepest nesting of arrays and maps the reader accepts (mpk_skip, mpk_span). */
#define MPK_MAX_DEPTH 64

/*
 * A read cursor over msgpack bytes it does not own: `p` is the next byte, `end` one past the
 * last. Every read checks the bounds first. On any error the cursor does not move and the
 * outputs are untouched; overruns and malformed bytes are DV_ECORRUPT, a value of another
 * type than asked for is DV_ETYPE. Strings and bins point into the input (valid as long as
 * it is) and are neither aligned nor NUL-terminated. Not thread-safe; a cursor is cheap to
 * copy, so save one to backtrack.
 */
struct mpk {
    const uint8_t *p, *end;
};

enum mpk_type {
    MPK_NIL,
    MPK_BOOL,
    MPK_UINT,  /* a non-negative integer (any encoding, including negative-int formats) */
    MPK_INT,   /* a negative integer */
    MPK_FLOAT, /* float32 or float64 */
    MPK_STR,
    MPK_BIN,
    MPK_ARRAY,
    MPK_MAP,
    MPK_EXT,
    MPK_INVALID, /* the reserved byte 0xc1, or the end of the input */
};

void mpk_init(struct mpk *r, const void *p, size_t n);

/* True when no bytes are left. */
bool mpk_done(const struct mpk *r);

/* Type of the next value from its first byte (an int8..int64 holding a value >= 0 is
 * MPK_UINT). Does not check that the whole value is present. */
enum mpk_type mpk_peek(const struct mpk *r);

/* Skips one whole value, nested ones included (iterative, at most MPK_MAX_DEPTH levels of
 * arrays and maps). DV_ECORRUPT on overrun, the byte 0xc1, or deeper nesting. */
int mpk_skip(struct mpk *r);

/* Like mpk_skip, and points `*start` at the raw bytes of the value skipped. */
int mpk_span(struct mpk *r, const uint8_t **start, size_t *len);

int mpk_nil(struct mpk *r);
int mpk_bool(struct mpk *r, bool *v);

/* Any non-negative integer. DV_ERANGE for a negative one, DV_ETYPE for other types. */
int mpk_u64(struct mpk *r, uint64_t *v);

/* Any integer that fits int64; DV_ERANGE for a uint64 above INT64_MAX. */
int mpk_i64(struct mpk *r, int64_t *v);

/* A float32 or float64, or any integer converted to double. */
int mpk_f64(struct mpk *r, double *v);

int mpk_str(struct mpk *r, const char **s, uint32_t *len);
int mpk_bin(struct mpk *r, const void **p, uint32_t *len);

/* Headers of an array (`*n` elements follow) and of a map (`*n` key/value pairs follow).
 * A count larger than the bytes left can hold (every element takes at least one byte) is
 * DV_ECORRUPT, so callers may size allocations from it. */
int mpk_array(struct mpk *r, uint32_t *n);
int mpk_map(struct mpk *r, uint32_t *n);

/*
 * A point id: a non-negative integer gives PID_NUM; a string holding a UUID (pid_parse_uuid)
 * or a bin of 16 bytes gives PID_UUID. DV_ERANGE for a negative integer, DV_EPARSE for a
 * string or bin that is not a UUID, DV_ETYPE for other types.
 */
int mpk_pid(struct mpk *r, struct pid *id);

/*
 * Looks up the string key `key` (keylen bytes) in the encoded map at `map` (n bytes) and
 * points `*val`/`*vlen` at the raw bytes of its value (the first one if the key repeats).
 * Keys that are not strings are passed over. DV_ENOTFOUND if absent, DV_ETYPE if the bytes
 * do not start with a map, DV_ECORRUPT if they are malformed.
 */
int mpk_map_find(const void *map, size_t n, const char *key, size_t keylen, const uint8_t **val,
                 size_t *vlen);

/*
 * Writer: appends one value in its shortest encoding to `b`. DV_ENOMEM when the buffer
 * cannot grow, DV_ETOOBIG for a string or bin longer than 2^32 - 1 bytes (the buffer is then
 * unchanged). mpw_array/mpw_map write only the header: the caller appends the n elements
 * (2n for a map: key, value, ...).
 */
int mpw_nil(struct buf *b);
int mpw_bool(struct buf *b, bool v);
int mpw_u64(struct buf *b, uint64_t v);
int mpw_i64(struct buf *b, int64_t v); /* v >= 0 is written as an unsigned integer */
int mpw_f64(struct buf *b, double v);  /* always float64 */
int mpw_f32(struct buf *b, float v);
int mpw_str(struct buf *b, const char *s, size_t n);
int mpw_bin(struct buf *b, const void *p, size_t n);
int mpw_array(struct buf *b, uint32_t n);
int mpw_map(struct buf *b, uint32_t n);

/* Appends bytes that already hold encoded msgpack. */
int mpw_raw(struct buf *b, const void *p, size_t n);

/* PID_NUM as an unsigned integer, PID_UUID as the 36-char canonical string. */
int mpw_pid(struct buf *b, const struct pid *id);

#endif
