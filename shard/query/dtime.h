/* dtime.h - datetimes as Qdrant reads them (RFC 3339 and its lenient forms), as instants. */
#ifndef DV_DTIME_H
#define DV_DTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses `n` bytes as a datetime into microseconds since 1970-01-01T00:00:00Z. Accepts what
 * Qdrant's datetime payload and range accept:
 *   YYYY-MM-DD                                  (midnight UTC)
 *   YYYY-MM-DD{T|t| }HH:MM[:SS[.fraction]]      (fraction: 1 to 9 digits; digits past the
 *                                                microsecond are dropped, rounding down)
 *   either followed by Z, z, +HH:MM, -HH:MM, +HHMM or +HH (no zone: UTC).
 * Seconds may be 60 (a leap second reads as the next second). Returns false when the text is
 * not one of these or names an impossible date (2023-02-30) or offset (above 23:59).
 */
bool dtime_parse(const char *s, size_t n, int64_t *us);

/* Writes the instant as "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" into buf (at least 32 bytes); returns
 * the length. Years outside 0..9999 are clamped to them. */
size_t dtime_format(int64_t us, char *buf);

#endif
