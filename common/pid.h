/* pid.h - point ids: an unsigned 64-bit integer or a UUID, keeping its kind. */
#ifndef DV_PID_H
#define DV_PID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pid_kind {
    PID_NUM = 0,  /* unsigned 64-bit integer: lo holds it, hi is 0 */
    PID_UUID = 1, /* 128 bits: hi = bytes 0..7, lo = bytes 8..15, both big-endian */
};

struct pid {
    uint64_t hi, lo;
    uint8_t kind; /* enum pid_kind */
};

/* Canonical text: decimal for numbers, lowercase 8-4-4-4-12 for UUIDs. */
#define PID_TEXT_MAX 40

static inline struct pid pid_num(uint64_t v)
{
    struct pid p = {0, v, PID_NUM};
    return p;
}

static inline bool pid_eq(const struct pid *a, const struct pid *b)
{
    return a->kind == b->kind && a->hi == b->hi && a->lo == b->lo;
}

/* Total order: every number before every UUID; numbers by value, UUIDs bytewise. */
int pid_cmp(const struct pid *a, const struct pid *b);

/* A 64-bit hash of the id (stable across versions: it places points in partitions). */
uint64_t pid_hash(const struct pid *p);

/* The partition of a point among n_parts (>= 1): jump_consistent_hash(pid_hash(id), n_parts).
 * The coordinators (place_partition_of) and libdvec's one-hop writes use this one copy; it
 * must never change. */
uint32_t pid_partition(const struct pid *id, uint32_t n_parts);

/*
 * Parses a UUID string (36 chars with dashes, or 32 hex digits, any case). DV_EPARSE when
 * it is not one.
 */
int pid_parse_uuid(const char *s, size_t n, struct pid *out);

/* Parses "123" (a number, no sign, no leading '+', fits 64 bits) or a UUID. */
int pid_parse(const char *s, size_t n, struct pid *out);

/* Writes the canonical text of p into buf (PID_TEXT_MAX bytes); returns its length. */
size_t pid_format(const struct pid *p, char *buf);

/* The 16 UUID bytes of p (for kind PID_UUID), and back. */
void pid_uuid_bytes(const struct pid *p, uint8_t out[16]);
struct pid pid_from_uuid_bytes(const uint8_t b[16]);

#endif
