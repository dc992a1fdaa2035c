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

/*
 * Field-checked decoding: a cursor that names the field in its error message. Every
 * mpk_dec_* reads one value like the mpk_* function of the same type and, on failure, calls
 * `fail` with the reader's code (DV_ERANGE for a value out of the asked range, DV_ECORRUPT for
 * a wrong count) and the field's name; `fail` writes errmsg and returns the code the decoder
 * returns (each format has its own wording and code). With `fail` NULL the message is
 * "field: reason (N bytes left)" and the code DV_EPROTO; DV_ENOMEM always passes through.
 * A reader failure leaves the cursor where it was; a range or count check that fails after
 * the value was read leaves it past the value (decoders stop at the first failure).
 * `count_in_errors`: a list whose count is wrong is named "field count N".
 */
struct mpk_dec {
    struct mpk r;
    char *errmsg; /* DV_ERRMSG_SIZE bytes */
    int (*fail)(struct mpk_dec *d, int rc, const char *field);
    bool count_in_errors;
};

/* Reports a failure of `field` (through d->fail) and returns the code to return. */
int mpk_dec_fail(struct mpk_dec *d, int rc, const char *field);
int mpk_dec_failf(struct mpk_dec *d, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Bytes not read yet. */
size_t mpk_dec_left(const struct mpk_dec *d);

int mpk_dec_nil(struct mpk_dec *d, const char *field);
int mpk_dec_bool(struct mpk_dec *d, bool *v, const char *field);
int mpk_dec_u64(struct mpk_dec *d, uint64_t *v, const char *field);
int mpk_dec_u32(struct mpk_dec *d, uint32_t *v, const char *field); /* DV_ERANGE above 2^32-1 */
int mpk_dec_i64(struct mpk_dec *d, int64_t *v, const char *field);
int mpk_dec_f64(struct mpk_dec *d, double *v, const char *field);
int mpk_dec_pid(struct mpk_dec *d, struct pid *id, const char *field);

/* A string or bin pointing into the input (see struct mpk). */
int mpk_dec_str(struct mpk_dec *d, const char **s, uint32_t *len, const char *field);
int mpk_dec_bin(struct mpk_dec *d, const void **p, uint32_t *len, const char *field);

/* A string of at most `max` bytes without NUL, copied NUL-terminated into `dst` (max + 1
 * bytes); DV_ERANGE if longer or holding a NUL. */
int mpk_dec_strcpy(struct mpk_dec *d, char *dst, size_t max, const char *field);

/* A bin, or nil read as {NULL, 0}. */
int mpk_dec_bin_or_nil(struct mpk_dec *d, const void **p, uint32_t *len, const char *field);

/* Any value's raw bytes (mpk_span), or nil read as {NULL, 0}. */
int mpk_dec_raw_or_nil(struct mpk_dec *d, const uint8_t **p, uint32_t *len, const char *field);

/* An array header with exactly n elements (DV_ECORRUPT otherwise). */
int mpk_dec_tuple(struct mpk_dec *d, uint32_t n, const char *field);

/* An array header whose count `*n` is at most `max` and that the bytes left can hold at `min`
 * bytes per element (so callers may allocate from it); DV_ECORRUPT otherwise. */
int mpk_dec_list(struct mpk_dec *d, uint32_t *n, size_t min, uint32_t max, const char *field);

#endif
