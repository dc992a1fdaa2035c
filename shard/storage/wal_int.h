/* wal_int.h - the WAL's internals shared by wal.c, wal_scan.c, wal_recover.c and wal_repair.c. */
#ifndef DV_WAL_INT_H
#define DV_WAL_INT_H

#include "wal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "io.h"

/* ---- format (docs/formats.md, "WAL segments") -------------------------------------------- */

#define SEG_MAGIC    "DVWALSEG"
#define SEG_VERSION  1u
#define SEG_HDR_SIZE 24u /* magic 8, version 4, first lsn 8, crc 4 */

#define REC_MAGIC    0x31525644u /* "DVR1" */
#define REC_HDR_SIZE 28u /* magic 4, crc 4, lsn 8, stored 4, raw 4, type 1, flags 1, rsv 2 */
#define REC_FLAG_LZ4 0x01u

#define NAME_LEN      24 /* %020llu.wal */
#define COMPRESS_MIN  128u
#define SCAN_WINDOW   (1u << 20)
#define SCRATCH_KEEP  (4u << 20)  /* larger scratch buffers are freed after use */
#define FLUSHER_NAPNS 10000000ull /* the INTERVAL thread looks at the clock this often */

/* One segment file. `last` is first - 1 while it holds no record. */
struct wal_seg {
    uint64_t first, last;
    uint64_t size; /* bytes of valid data (the tail offset for the current segment) */
};

/* A reusable buffer for encoding one record; kept on a free list by the WAL. */
struct wal_scratch {
    struct wal_scratch *next;
    size_t cap;
    uint8_t data[];
};

struct wal {
    struct io *io;
    char *dir;
    struct wal_opts opts;

    pthread_mutex_t mu;        /* everything below, except where noted */
    pthread_cond_t cond;       /* a sync finished (waiters of group commit and rotation) */
    pthread_cond_t flush_cond; /* wakes the INTERVAL thread */
    struct wal_seg *segs;      /* oldest first; the last one is being written */
    size_t nsegs, capsegs;
    int fd;               /* of the last segment */
    uint64_t last_lsn;    /* last appended */
    uint64_t durable_lsn; /* covered by an fdatasync */
    uint64_t total_bytes; /* sum of segs[].size */
    bool syncing;         /* one thread runs fdatasync without holding mu */
    bool failed;          /* an fsync or an undo failed: no more writes */
    char failed_msg[DV_ERRMSG_SIZE];
    struct wal_stats stats;

    /* INTERVAL thread */
    bool has_flusher, stop, dirty;
    uint64_t dirty_since; /* io->now_ns when the oldest unsynced record was appended */
    pthread_t flusher;

    pthread_mutex_t pool_mu; /* the scratch free list */
    struct wal_scratch *pool;
};

/* ---- reading segments (wal_scan.c) ---- */

/* A buffered reader over the first `size` bytes of one segment file. */
struct scan {
    struct io *io;
    int fd;
    uint64_t size;
    uint8_t *buf;
    size_t cap;
    uint64_t boff; /* file offset of buf[0] */
    size_t blen;
    uint8_t *raw; /* decompression buffer */
    size_t rawcap;
    int err; /* -errno of a failed wal_scan_open() */
};

/* What the bytes at an offset hold. */
enum rec_state {
    REC_OK = 0,
    REC_END,       /* the offset is the end of the data */
    REC_SHORT_HDR, /* fewer bytes than a record header */
    REC_BAD_MAGIC,
    REC_BAD_HDR, /* impossible field values */
    REC_TRUNCATED,
    REC_BAD_CRC,
};

struct rec {
    uint64_t lsn;
    uint32_t stored, raw;
    uint8_t type, flags;
    const uint8_t *body; /* stored bytes; valid until the next scan_get */
    uint64_t next;       /* offset after the record */
};

/* ---- shared functions ---- */

/* wal_scan.c: errors ("wal: <what>: <strerror>"), segment names and listing, scans. */
void wal_set_msg(char *errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *wal_errstr(int neg_errno, char *buf, size_t size);
int wal_dv_code(int neg_errno);
int wal_os_fail(char *errmsg, int neg_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void wal_seg_name(char *name, uint64_t first);
int wal_seg_path(const char *dir, uint64_t first, char *path, size_t size);
int wal_list_segments(struct io *io, const char *dir, uint64_t **out, size_t *n, char *errmsg);
void wal_seg_header_encode(uint8_t *h, uint64_t first);
void wal_scan_release(struct scan *s);
int wal_scan_get(struct scan *s, uint64_t off, size_t n, const uint8_t **p);
const char *wal_rec_state_str(int st);
int wal_rec_check(struct scan *s, uint64_t off, struct rec *r);
int wal_rec_body(struct scan *s, const struct rec *r, const void **body);
int wal_probe_valid(struct scan *s, uint64_t from, uint64_t min_lsn, uint64_t *found);
int wal_seg_header_check(struct scan *s, uint64_t *first, bool *ok);
int wal_scan_open(struct scan *s, struct io *io, const char *dir, uint64_t first, char *errmsg);

/* wal_recover.c: the segment table, segment creation, the failed state, teardown. */
int wal_seg_push(struct wal *w, uint64_t first, uint64_t last, uint64_t size);
int wal_seg_create(struct wal *w, uint64_t first, int *fd_out, bool *fatal, char *errmsg);
void wal_set_failed(struct wal *w, const char *msg);
int wal_failed_err(struct wal *w, char *errmsg);
void wal_free(struct wal *w);

/* wal.c: the INTERVAL sync thread. */
void *wal_flusher_main(void *arg);

#endif
