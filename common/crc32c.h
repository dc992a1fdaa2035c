/* crc32c.h - CRC32C (Castagnoli), hardware-accelerated where the CPU allows. */
#ifndef DV_CRC32C_H
#define DV_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Extends `crc` (the CRC32C of the bytes so far; 0 for none) with `len` bytes at `buf`, and
 * returns the CRC32C of the whole stream. crc32c_update(crc32c_update(0, a, n), b, m) equals
 * the CRC of a followed by b. The standard check value: crc32c("123456789") = 0xE3069283.
 * Thread-safe; uses the SSE4.2 or ARMv8 CRC instruction when the CPU has it.
 */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

/* The CRC32C of one buffer: crc32c_update(0, buf, len). */
uint32_t crc32c(const void *buf, size_t len);

/* The table (slicing-by-8) implementation, always available; for tests and benchmarks. */
uint32_t crc32c_update_table(uint32_t crc, const void *buf, size_t len);

/*
 * Makes crc32c_update() use the table even when the CPU has a CRC instruction (force=true),
 * or go back to the best one (false). The environment variable DVEC_CRC32C=table has the
 * same effect at start-up. Meant for tests; safe to call from any thread.
 */
void crc32c_force_table(bool force);

/* Name of the implementation crc32c_update() uses now: "sse4.2", "armv8" or "table". */
const char *crc32c_impl(void);

#endif
