/* io_delay.h - a slow-disk io for tests: delays writes and fsyncs as a file says. */
#ifndef DV_IO_DELAY_H
#define DV_IO_DELAY_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

/*
 * A testing hook, not a feature: dvec-shard started with DVEC_IO_DELAY_FILE=PATH wraps its io
 * in one of these (tests/torture slows a node's disk with it). PATH holds words
 * "write_ms=N fsync_ms=M" (either may be absent, 0..IO_DELAY_MAX_MS): every pwrite and
 * ftruncate then sleeps N ms before it runs, every fsync and fdatasync M ms. A missing, empty
 * or unreadable file means no delay; a file with any other word logs one warning naming the
 * file and the word, and means no delay. The file is looked at (stat: inode, size, mtime) at
 * most every 100 ms of the inner io's clock and re-read when it changed, so a test can change
 * the delay at run time by rewriting it. Thread-safe, like every io.
 */

#define IO_DELAY_MAX_MS     600000u
#define IO_DELAY_RECHECK_NS (100ull * 1000000ull)
#define IO_DELAY_MAX_FILE   4096

struct io_delay_cfg {
    uint32_t write_ms;
    uint32_t fsync_ms;
};

/*
 * Parses `n` bytes of a delay file into *out (zeros for absent keys). 0, or -1 with the first
 * bad word copied into `bad` (`bad_size` bytes, cut to fit) and *out all zeros.
 */
int io_delay_parse(const char *text, size_t n, struct io_delay_cfg *out, char *bad,
                   size_t bad_size);

/*
 * A new io around `inner` (which must outlive it) reading its delays from `path` (copied).
 * NULL when out of memory. The file is read at the first operation, not here.
 */
struct io *io_delay_new(struct io *inner, const char *path);

/* Frees an io from io_delay_new (no operation may run on it any more). NULL is a no-op. */
void io_delay_free(struct io *io);

/* The delays in force now (as of the last look at the file): for tests and logs. */
struct io_delay_cfg io_delay_current(struct io *io);

/*
 * `inner` itself when the environment variable DVEC_IO_DELAY_FILE is unset or empty (no
 * cost at all); else io_delay_new(inner, its value), logged at start. *owned is set to the
 * io to pass to io_delay_free at exit (NULL when none was made).
 */
struct io *io_delay_from_env(struct io *inner, struct io **owned);

#endif
