/* wal.h - the write-ahead log of a replica: segmented, checksummed, group-committed. */
#ifndef DV_WAL_H
#define DV_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"

/*
 * A WAL is a directory of segment files, each named after the first LSN it holds. Records
 * carry an LSN (1, 2, 3, ... without holes), a type (1..255) and an opaque body, optionally
 * LZ4-compressed. The on-disk format is documented in docs/formats.md ("WAL segments").
 *
 * Every file operation, fsync and clock reading goes through the `struct io` given to
 * wal_open(), which must outlive the WAL.
 */

enum wal_sync {
    WAL_SYNC_ALWAYS = 0,   /* wal_sync() waits for an fdatasync covering the record */
    WAL_SYNC_INTERVAL = 1, /* a background thread fdatasyncs every interval_ms */
    WAL_SYNC_NEVER = 2,    /* only rotation, wal_flush() and wal_close() fdatasync */
};

struct wal_opts {
    enum wal_sync sync;
    uint32_t interval_ms;   /* INTERVAL period; default 100 */
    uint64_t segment_bytes; /* rotation size; default 64 MiB, at least 64 KiB */
    bool compress;          /* LZ4 when it pays (>= 128 bytes, < 90% of raw); default true */
    uint32_t max_record;    /* largest body accepted; default 64 MiB, at most 1 GiB */
};

/* Smallest segment_bytes and largest max_record wal_open() accepts. */
#define WAL_MIN_SEGMENT_BYTES (64u * 1024)
#define WAL_MAX_RECORD_LIMIT  (1u << 30)

/* Counters since wal_open() (for benchmarks and monitoring). */
struct wal_stats {
    uint64_t appends;       /* records appended */
    uint64_t raw_bytes;     /* bodies as given to wal_append() */
    uint64_t stored_bytes;  /* record bytes written (headers + stored bodies) */
    uint64_t compressed;    /* records stored as an LZ4 block */
    uint64_t fdatasyncs;    /* fdatasync calls on segments (group commit, rotation, close) */
    uint64_t sync_requests; /* wal_sync() calls that had to wait for an fdatasync */
    uint64_t rotations;     /* segments created after the first */
};

struct wal;

void wal_opts_default(struct wal_opts *o);

/*
 * Called once per record. `body` (len bytes, decompressed) is valid only during the call.
 * A non-zero return stops the walk and becomes the return value of the caller.
 */
typedef int (*wal_replay_fn)(uint64_t lsn, uint8_t type, const void *body, size_t len, void *arg);

/*
 * Opens (creating if needed) the WAL in directory `dir` (the caller created it). Scans every
 * segment in LSN order, verifies every record, cuts a torn tail of the LAST segment
 * (ftruncate + fdatasync, logged), and calls replay() for every record with lsn >= from_lsn,
 * in order (replay may be NULL). from_lsn 0 means 1. The next appended LSN is
 * max(last record lsn, from_lsn - 1) + 1.
 *
 * Records are replayed while the scan goes on: if wal_open() fails after replay() was
 * called, the caller must throw away what replay() built.
 *
 * Errors: DV_ECORRUPT with errmsg "wal: <segment file>: <what> at offset <N>" when a record
 * before the tail is bad, LSNs are not consecutive, a segment is missing, or records from
 * from_lsn on are missing; DV_EIO (disk errors) / DV_EOS (other OS errors); DV_EINVAL for bad
 * options; the code replay() returned. On success *out owns the WAL until wal_close().
 */
int wal_open(struct io *io, const char *dir, const struct wal_opts *o, uint64_t from_lsn,
             wal_replay_fn replay, void *arg, struct wal **out, char *errmsg);

/*
 * Stops the INTERVAL thread, fdatasyncs what is not durable yet (unless NEVER; a failure is
 * logged), closes and frees. No other call on `w` may run concurrently or follow.
 */
void wal_close(struct wal *w);

/*
 * Appends one record (type 1..255, body of len bytes, copied) and returns its LSN in *lsn.
 * Does not wait for fsync. Thread-safe; LSNs are assigned in append order. A failed write
 * (ENOSPC, EIO, short write) is undone by truncating back to the record start and returns
 * DV_EFULL for ENOSPC/EDQUOT (errmsg says "No space left on device"; a later append succeeds
 * once space is freed), DV_EIO otherwise (the LSN is not consumed); if even the undo fails,
 * the WAL enters the failed state (DV_EIO). A new segment that cannot be created on a full
 * disk (rotation) is DV_EFULL too, the WAL stays on the old one. DV_ETOOBIG over max_record,
 * DV_EINVAL for type 0, DV_EIO in the failed state.
 */
int wal_append(struct wal *w, uint8_t type, const void *body, size_t len, uint64_t *lsn,
               char *errmsg);

/*
 * Waits until record `lsn` is as durable as the policy promises. ALWAYS: an fdatasync that
 * covers it; concurrent callers share one fdatasync (group commit). INTERVAL/NEVER: returns
 * at once. After a failed fdatasync the WAL is in the failed state and every later
 * append/sync/flush returns DV_EIO: Linux reports a writeback error once and may drop the
 * dirty pages, so a retried fsync can succeed although the data never reached the disk.
 * Only reopening (which re-reads what is really in the files) is safe. DV_EINVAL when
 * `lsn` was never appended.
 */
int wal_sync(struct wal *w, uint64_t lsn, char *errmsg);

/* fdatasyncs everything appended so far now, regardless of the policy. */
int wal_flush(struct wal *w, char *errmsg);

/* The last LSN appended (or the LSN before the next one when nothing was appended). */
uint64_t wal_last_lsn(struct wal *w);

/* The highest LSN known to be on disk (fdatasync'ed). */
uint64_t wal_durable_lsn(struct wal *w);

/*
 * Deletes the oldest segments whose records all have lsn <= `lsn` (after a checkpoint at
 * `lsn`); never the segment being written. Thread-safe.
 */
int wal_drop_before(struct wal *w, uint64_t lsn, char *errmsg);

/*
 * Reads the records with lsn >= from_lsn appended so far, from the files, calling fn for
 * each in order; safe concurrently with appends (for streaming to another node).
 * DV_ENOTFOUND (with message) when from_lsn was already dropped or is not in the WAL.
 * Stops early when fn returns non-zero (and returns that).
 */
int wal_read(struct wal *w, uint64_t from_lsn, wal_replay_fn fn, void *arg, char *errmsg);

/*
 * Offline repair of the WAL in `dir` (not open): truncates at the first bad record (a bad
 * segment header or a missing segment cuts the whole file) and deletes every later segment.
 * errmsg says what was cut: "cut <file> at offset N: K records after LSN L dropped (<why>)",
 * K counting the records found intact after the cut plus the damaged one; or "nothing to
 * repair".
 */
int wal_repair(struct io *io, const char *dir, char *errmsg);

/*
 * Offline: removes the records after `lsn` from the WAL in `dir` (not open), durably (later
 * segments first, then the one holding lsn + 1 truncated or deleted, then the directory
 * synced). *dropped (may be NULL) counts the records removed. Records the WAL does not hold
 * are not an error (nothing to cut). A record after lsn that does not decode: DV_ECORRUPT.
 */
int wal_cut_after(struct io *io, const char *dir, uint64_t lsn, uint64_t *dropped, char *errmsg);

/*
 * After the WAL's directory was renamed by its owner (nothing appending meanwhile): syncs every
 * record appended so far, then points the WAL at `dir` and switches it to sync policy `sync`
 * (starting the interval thread when needed). A replica copied with WAL_SYNC_NEVER becomes a
 * served one this way without reopening it.
 */
int wal_rebase(struct wal *w, const char *dir, enum wal_sync sync, char *errmsg);

/* Bytes in the live segment files (headers included). */
size_t wal_bytes(struct wal *w);

/* A snapshot of the counters. */
void wal_get_stats(struct wal *w, struct wal_stats *out);

#endif
