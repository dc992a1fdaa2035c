/* err.h - the one error enum of dvec, with a name and a message for every code. */
#ifndef DV_ERR_H
#define DV_ERR_H

#include <stddef.h>

/*
 * X(code, value, name, message). Codes are 0 (success) or negative. OS errors are carried
 * as DV_EOS with errno kept by the caller in its context message.
 */
#define DV_ERR_TABLE(X)                                                                            \
    X(DV_OK, 0, "ok", "success")                                                                   \
    X(DV_ENOMEM, -1, "nomem", "out of memory")                                                     \
    X(DV_EINVAL, -2, "invalid", "invalid argument")                                                \
    X(DV_ENOTFOUND, -3, "not_found", "not found")                                                  \
    X(DV_EEXIST, -4, "exists", "already exists")                                                   \
    X(DV_EOS, -5, "os", "operating system error")                                                  \
    X(DV_ECORRUPT, -6, "corrupt", "data is corrupt")                                               \
    X(DV_EDIM, -7, "dimension", "wrong vector dimension")                                          \
    X(DV_ENAN, -8, "not_finite", "vector holds NaN or infinity")                                   \
    X(DV_EFULL, -9, "full", "capacity exhausted")                                                  \
    X(DV_ERANGE, -10, "range", "value out of range")                                               \
    X(DV_ETYPE, -11, "type", "wrong type")                                                         \
    X(DV_EUNKNOWN_KEY, -12, "unknown_key", "unknown key")                                          \
    X(DV_EPARSE, -13, "parse", "parse error")                                                      \
    X(DV_ETOOBIG, -14, "too_big", "too big")                                                       \
    X(DV_EBUSY, -15, "busy", "resource busy")                                                      \
    X(DV_ETIMEDOUT, -16, "timeout", "timed out")                                                   \
    X(DV_ESTALE, -17, "stale_map", "stale cluster map")                                            \
    X(DV_EUNSUPPORTED, -18, "unsupported", "not supported")                                        \
    X(DV_EIO, -19, "io", "input/output error")                                                     \
    X(DV_ESHUTDOWN, -20, "shutdown", "shutting down")                                              \
    X(DV_EPROTO, -21, "protocol", "protocol error")                                                \
    X(DV_EDELETED, -22, "deleted", "point is deleted")

enum dv_err {
#define DV_ERR_ENUM(code, value, name, msg) code = value,
    DV_ERR_TABLE(DV_ERR_ENUM)
#undef DV_ERR_ENUM
};

/* Number of codes in the table (for iteration in tests). */
#define DV_ERR_COUNT 23

/* Short stable name of a code ("not_found"), or "unknown" for a value not in the table. */
const char *dv_errname(int code);

/* Human message of a code ("not found"), or "unknown error". */
const char *dv_strerror(int code);

/* Size of the fixed error-message buffer that context objects carry. */
#define DV_ERRMSG_SIZE 256

/*
 * Writes a formatted message into `buf` (DV_ERRMSG_SIZE bytes). dv_errmsg_prefix() puts
 * "<prefix>: " in front of what `buf` already holds, so each layer can add its context:
 * "partition 7: wal: segment 12: crc mismatch at offset 4096".
 */
void dv_errmsg_set(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dv_errmsg_prefix(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
