/* wal.c - the write-ahead log: segment files, record encoding, recovery, group commit. */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "crc32c.h"
#include "err.h"
#include "log.h"

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

/* ---- small helpers ----------------------------------------------------------------------- */

static void set_msg(char *errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_msg(char *errmsg, const char *fmt, ...)
{
    if (errmsg == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, DV_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

static const char *errstr(int neg_errno, char *buf, size_t size)
{
    return strerror_r(-neg_errno, buf, size);
}

/* Maps -errno of the io to a dv code: disk trouble is DV_EIO, the rest DV_EOS. */
static int dv_code(int neg_errno)
{
    switch (-neg_errno) {
    case ENOMEM:
        return DV_ENOMEM;
    case EIO:
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EROFS:
        return DV_EIO;
    default:
        return DV_EOS;
    }
}

/* Sets "wal: <what>: <strerror>" and returns the dv code of the OS error. */
static int os_fail(char *errmsg, int neg_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int os_fail(char *errmsg, int neg_errno, const char *fmt, ...)
{
    char what[DV_ERRMSG_SIZE], eb[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    set_msg(errmsg, "wal: %s: %s", what, errstr(neg_errno, eb, sizeof eb));
    return dv_code(neg_errno);
}

static void seg_name(char *name, uint64_t first)
{
    snprintf(name, NAME_LEN + 1, "%020" PRIu64 ".wal", first);
}

static int seg_path(const char *dir, uint64_t first, char *path, size_t size)
{
    int n = snprintf(path, size, "%s/%020" PRIu64 ".wal", dir, first);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Parses a segment file name; false for any other file. */
static bool parse_seg_name(const char *name, uint64_t *first)
{
    if (strlen(name) != NAME_LEN || strcmp(name + 20, ".wal") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *first = v;
    return v > 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The segments in `dir`, sorted by first LSN (malloc'd; *n may be 0). */
static int list_segments(struct io *io, const char *dir, uint64_t **out, size_t *n, char *errmsg)
{
    char **names;
    size_t count;
    int rc = io->list(io, dir, &names, &count);
    if (rc < 0)
        return os_fail(errmsg, rc, "%s: cannot list the directory", dir);
    uint64_t *v = malloc((count ? count : 1) * sizeof *v);
    if (v == NULL) {
        io_free_list(names, count);
        set_msg(errmsg, "wal: %s: out of memory", dir);
        return DV_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < count; i++)
        if (parse_seg_name(names[i], &v[k]))
            k++;
    io_free_list(names, count);
    qsort(v, k, sizeof *v, cmp_u64);
    *out = v;
    *n = k;
    return DV_OK;
}

static void seg_header_encode(uint8_t *h, uint64_t first)
{
    memcpy(h, SEG_MAGIC, 8);
    buf_wr_le32(h + 8, SEG_VERSION);
    buf_wr_le64(h + 12, first);
    buf_wr_le32(h + 20, crc32c(h, 20));
}

/* ---- reading segments -------------------------------------------------------------------- */

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
    int err; /* -errno of a failed scan_open() */
};

static void scan_release(struct scan *s)
{
    if (s->fd >= 0)
        s->io->close(s->io, s->fd);
    s->fd = -1;
    free(s->buf);
    free(s->raw);
    s->buf = s->raw = NULL;
    s->cap = s->rawcap = s->blen = 0;
}

/* Points *p at bytes [off, off + n) of the file; the caller checked off + n <= size. The
 * pointer stays valid until the next call. 0 or -errno. */
static int scan_get(struct scan *s, uint64_t off, size_t n, const uint8_t **p)
{
    if (off >= s->boff && off + n <= s->boff + s->blen) {
        *p = s->buf + (off - s->boff);
        return 0;
    }
    size_t want = n > SCAN_WINDOW ? n : SCAN_WINDOW;
    if (want > s->size - off)
        want = (size_t)(s->size - off);
    if (want > s->cap) {
        uint8_t *nb = realloc(s->buf, want);
        if (nb == NULL)
            return -ENOMEM;
        s->buf = nb;
        s->cap = want;
    }
    s->blen = 0;
    ssize_t r = io_read_full(s->io, s->fd, s->buf, want, (off_t)off);
    if (r < 0)
        return (int)r;
    if ((size_t)r < n)
        return -EIO; /* the file shrank under us */
    s->boff = off;
    s->blen = (size_t)r;
    *p = s->buf;
    return 0;
}

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

static const char *rec_state_str(int st)
{
    switch (st) {
    case REC_SHORT_HDR:
        return "truncated record header";
    case REC_BAD_MAGIC:
        return "bad record magic";
    case REC_BAD_HDR:
        return "bad record length or flags";
    case REC_TRUNCATED:
        return "truncated record";
    case REC_BAD_CRC:
        return "bad CRC";
    default:
        return "bad record";
    }
}

struct rec {
    uint64_t lsn;
    uint32_t stored, raw;
    uint8_t type, flags;
    const uint8_t *body; /* stored bytes; valid until the next scan_get */
    uint64_t next;       /* offset after the record */
};

/* Decodes and checks the record at `off`: a rec_state (>= 0), or -errno on a read error. */
static int rec_check(struct scan *s, uint64_t off, struct rec *r)
{
    if (off >= s->size)
        return REC_END;
    if (s->size - off < REC_HDR_SIZE)
        return REC_SHORT_HDR;
    const uint8_t *p = NULL;
    int rc = scan_get(s, off, REC_HDR_SIZE, &p);
    if (rc < 0)
        return rc;
    if (buf_rd_le32(p) != REC_MAGIC)
        return REC_BAD_MAGIC;
    r->lsn = buf_rd_le64(p + 8);
    r->stored = buf_rd_le32(p + 16);
    r->raw = buf_rd_le32(p + 20);
    r->type = p[24];
    r->flags = p[25];
    uint16_t rsv = buf_rd_le16(p + 26);
    bool lz4 = (r->flags & REC_FLAG_LZ4) != 0;
    if (r->type == 0 || (r->flags & ~REC_FLAG_LZ4) != 0 || rsv != 0 || r->lsn == 0 ||
        r->raw > WAL_MAX_RECORD_LIMIT || (lz4 && (r->stored == 0 || r->stored >= r->raw)) ||
        (!lz4 && r->stored != r->raw))
        return REC_BAD_HDR;
    if (r->stored > s->size - off - REC_HDR_SIZE)
        return REC_TRUNCATED;
    rc = scan_get(s, off, REC_HDR_SIZE + (size_t)r->stored, &p);
    if (rc < 0)
        return rc;
    uint32_t crc = crc32c(p + 8, REC_HDR_SIZE - 8 + (size_t)r->stored);
    if (crc != buf_rd_le32(p + 4))
        return REC_BAD_CRC;
    r->body = p + REC_HDR_SIZE;
    r->next = off + REC_HDR_SIZE + r->stored;
    return REC_OK;
}

/* The body of a checked record, decompressed if needed. 0, DV_ENOMEM or DV_ECORRUPT. */
static int rec_body(struct scan *s, const struct rec *r, const void **body)
{
    if (!(r->flags & REC_FLAG_LZ4)) {
        *body = r->body;
        return DV_OK;
    }
    if (r->raw > s->rawcap) {
        uint8_t *nb = realloc(s->raw, r->raw);
        if (nb == NULL)
            return DV_ENOMEM;
        s->raw = nb;
        s->rawcap = r->raw;
    }
    int n = LZ4_decompress_safe((const char *)r->body, (char *)s->raw, (int)r->stored, (int)r->raw);
    if (n < 0 || (uint32_t)n != r->raw)
        return DV_ECORRUPT;
    *body = s->raw;
    return DV_OK;
}

/*
 * Looks for a valid record (magic, sane header, CRC) with lsn > min_lsn starting anywhere in
 * [from, size). *found gets its offset or UINT64_MAX. 0 or -errno.
 */
static int probe_valid(struct scan *s, uint64_t from, uint64_t min_lsn, uint64_t *found)
{
    const uint8_t m0 = (uint8_t)(REC_MAGIC & 0xff);
    uint64_t off = from;
    *found = UINT64_MAX;
    while (off < s->size && s->size - off >= REC_HDR_SIZE) {
        size_t n = s->size - off > SCAN_WINDOW ? SCAN_WINDOW : (size_t)(s->size - off);
        const uint8_t *p = NULL;
        int rc = scan_get(s, off, n, &p);
        if (rc < 0)
            return rc;
        size_t span = n - REC_HDR_SIZE + 1; /* starts where a whole header fits */
        const uint8_t *q = memchr(p, m0, span);
        if (q == NULL) {
            off += span;
            continue;
        }
        uint64_t c = off + (uint64_t)(q - p);
        struct rec r;
        rc = rec_check(s, c, &r);
        if (rc < 0)
            return rc;
        if (rc == REC_OK && r.lsn > min_lsn) {
            *found = c;
            return 0;
        }
        off = c + 1;
    }
    return 0;
}

/* Reads and checks a segment header; false when it is bad (or the file is too short). */
static int seg_header_check(struct scan *s, uint64_t *first, bool *ok)
{
    *ok = false;
    if (s->size < SEG_HDR_SIZE)
        return 0;
    const uint8_t *h = NULL;
    int rc = scan_get(s, 0, SEG_HDR_SIZE, &h);
    if (rc < 0)
        return rc;
    if (memcmp(h, SEG_MAGIC, 8) != 0 || buf_rd_le32(h + 8) != SEG_VERSION ||
        buf_rd_le32(h + 20) != crc32c(h, 20))
        return 0;
    *first = buf_rd_le64(h + 12);
    *ok = true;
    return 0;
}

/* Opens segment `first` of `dir` for scanning (read-only). */
static int scan_open(struct scan *s, struct io *io, const char *dir, uint64_t first, char *errmsg)
{
    char path[4096], name[NAME_LEN + 1];
    memset(s, 0, sizeof *s);
    s->io = io;
    s->fd = -1;
    seg_name(name, first);
    int rc = seg_path(dir, first, path, sizeof path);
    if (rc == 0)
        rc = io->open(io, path, O_RDONLY, 0);
    if (rc < 0) {
        s->err = rc;
        return os_fail(errmsg, rc, "%s: cannot open", name);
    }
    s->fd = rc;
    off_t size;
    rc = io->fsize(io, s->fd, &size);
    if (rc < 0) {
        scan_release(s);
        return os_fail(errmsg, rc, "%s: cannot stat", name);
    }
    s->size = (uint64_t)size;
    return DV_OK;
}

/* ---- open -------------------------------------------------------------------------------- */

void wal_opts_default(struct wal_opts *o)
{
    o->sync = WAL_SYNC_ALWAYS;
    o->interval_ms = 100;
    o->segment_bytes = 64ull << 20;
    o->compress = true;
    o->max_record = 64u << 20;
}

static int seg_push(struct wal *w, uint64_t first, uint64_t last, uint64_t size)
{
    if (w->nsegs == w->capsegs) {
        size_t ncap = w->capsegs ? w->capsegs * 2 : 8;
        struct wal_seg *ns = realloc(w->segs, ncap * sizeof *ns);
        if (ns == NULL)
            return DV_ENOMEM;
        w->segs = ns;
        w->capsegs = ncap;
    }
    w->segs[w->nsegs++] = (struct wal_seg){first, last, size};
    w->total_bytes += size;
    return DV_OK;
}

/*
 * Creates segment `first` (header written, directory fsync'ed) and returns its descriptor.
 * *fatal is set when the directory may now hold a segment the WAL does not know about, or
 * an fsync failed: the caller must then stop writing.
 */
static int seg_create(struct wal *w, uint64_t first, int *fd_out, bool *fatal, char *errmsg)
{
    char path[4096], name[NAME_LEN + 1], eb[64];
    uint8_t h[SEG_HDR_SIZE];
    *fatal = false;
    seg_name(name, first);
    int rc = seg_path(w->dir, first, path, sizeof path);
    if (rc < 0)
        return os_fail(errmsg, rc, "%s/%s", w->dir, name);
    int fd = w->io->open(w->io, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return os_fail(errmsg, fd, "%s: cannot create", name);
    seg_header_encode(h, first);
    rc = io_write_all(w->io, fd, h, sizeof h, 0);
    if (rc < 0) {
        int code = os_fail(errmsg, rc, "%s: cannot write the segment header", name);
        w->io->close(w->io, fd);
        int u = w->io->unlink(w->io, path);
        if (u < 0 && u != -ENOENT) {
            *fatal = true;
            log_error("wal: cannot remove a half-created segment", "file=%s error=%s", path,
                      errstr(u, eb, sizeof eb));
        }
        return code;
    }
    rc = io_fsync_dir(w->io, w->dir);
    if (rc < 0) {
        w->io->close(w->io, fd);
        *fatal = true;
        return os_fail(errmsg, rc, "%s: fsync of the directory after creating it failed", name);
    }
    *fd_out = fd;
    return DV_OK;
}

/* Records the failed state (mu held) and logs it once. */
static void set_failed(struct wal *w, const char *msg)
{
    if (w->failed)
        return;
    w->failed = true;
    snprintf(w->failed_msg, sizeof w->failed_msg, "%s", msg);
    log_error("wal: failed, no more writes until reopened", "dir=%s error=%s", w->dir, msg);
    pthread_cond_broadcast(&w->cond);
}

static int failed_err(struct wal *w, char *errmsg)
{
    set_msg(errmsg, "wal: failed earlier (%s)", w->failed_msg);
    return DV_EIO;
}

static void wal_free(struct wal *w)
{
    if (w->fd >= 0)
        w->io->close(w->io, w->fd);
    while (w->pool != NULL) {
        struct wal_scratch *n = w->pool->next;
        free(w->pool);
        w->pool = n;
    }
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->pool_mu);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->flush_cond);
    free(w->segs);
    free(w->dir);
    free(w);
}

static int opts_check(const struct wal_opts *o, char *errmsg)
{
    if (o->sync != WAL_SYNC_ALWAYS && o->sync != WAL_SYNC_INTERVAL && o->sync != WAL_SYNC_NEVER)
        set_msg(errmsg, "wal: unknown sync policy %d", (int)o->sync);
    else if (o->sync == WAL_SYNC_INTERVAL && o->interval_ms == 0)
        set_msg(errmsg, "wal: interval_ms must be positive");
    else if (o->segment_bytes < WAL_MIN_SEGMENT_BYTES)
        set_msg(errmsg, "wal: segment_bytes %" PRIu64 " is under the minimum %u", o->segment_bytes,
                WAL_MIN_SEGMENT_BYTES);
    else if (o->max_record == 0 || o->max_record > WAL_MAX_RECORD_LIMIT)
        set_msg(errmsg, "wal: max_record %u is not in 1..%u", o->max_record, WAL_MAX_RECORD_LIMIT);
    else
        return DV_OK;
    return DV_EINVAL;
}

static void *flusher_main(void *arg);

/* State of the recovery scan of wal_open(). */
struct recover {
    uint64_t from_lsn;
    wal_replay_fn replay;
    void *arg;
    uint64_t cut_at; /* offset where the last segment is cut; UINT64_MAX: no cut */
};

/*
 * Scans segment `first` (the last one if `last`), checks it continues `*prev` (the last LSN
 * so far; 0 before the first segment) and replays its records. On success appends it to
 * w->segs, unless it was a torn creation (removed; *removed set).
 */
static int recover_segment(struct wal *w, struct recover *rv, uint64_t first, bool last,
                           uint64_t *prev, bool *removed, char *errmsg)
{
    char name[NAME_LEN + 1], eb[64];
    struct scan s;
    uint64_t off = 0;
    seg_name(name, first);
    *removed = false;
    int rc = scan_open(&s, w->io, w->dir, first, errmsg);
    if (rc != DV_OK)
        return rc;
    uint64_t hfirst = 0;
    bool ok;
    rc = seg_header_check(&s, &hfirst, &ok);
    if (rc < 0)
        goto err_read;
    if (!ok || hfirst != first) {
        if (last && s.size <= SEG_HDR_SIZE) {
            /* Created, but the crash came before its header was complete: no records. */
            char path[4096];
            uint64_t size = s.size;
            scan_release(&s);
            seg_path(w->dir, first, path, sizeof path);
            rc = w->io->unlink(w->io, path);
            if (rc == 0)
                rc = io_fsync_dir(w->io, w->dir);
            if (rc < 0)
                return os_fail(errmsg, rc, "%s: cannot remove the torn segment", name);
            log_warn("wal: removed a segment with a torn header", "file=%s bytes=%" PRIu64, name,
                     size);
            *removed = true;
            return DV_OK;
        }
        set_msg(errmsg, "wal: %s: bad segment header at offset 0", name);
        rc = DV_ECORRUPT;
        goto err_scan;
    }
    if (*prev == 0) {
        if (first > rv->from_lsn) {
            set_msg(errmsg, "wal: %s: records %" PRIu64 "..%" PRIu64 " missing at offset 0", name,
                    rv->from_lsn, first - 1);
            rc = DV_ECORRUPT;
            goto err_scan;
        }
    } else if (first <= *prev) {
        set_msg(errmsg, "wal: %s: first LSN %" PRIu64 " overlaps LSN %" PRIu64 " at offset 0", name,
                first, *prev);
        rc = DV_ECORRUPT;
        goto err_scan;
    } else if (first > *prev + 1 && first - 1 >= rv->from_lsn) {
        /* A hole is harmless only when all of it is below from_lsn (in the checkpoint). */
        uint64_t lo = *prev + 1 > rv->from_lsn ? *prev + 1 : rv->from_lsn;
        set_msg(errmsg, "wal: %s: records %" PRIu64 "..%" PRIu64 " missing at offset 0", name, lo,
                first - 1);
        rc = DV_ECORRUPT;
        goto err_scan;
    }

    uint64_t expect = first;
    off = SEG_HDR_SIZE;
    for (;;) {
        struct rec r;
        int st = rec_check(&s, off, &r);
        if (st < 0) {
            rc = st;
            goto err_read;
        }
        if (st == REC_END)
            break;
        if (st != REC_OK) {
            uint64_t found = UINT64_MAX;
            if (last) {
                rc = probe_valid(&s, off + 1, expect - 1, &found);
                if (rc < 0)
                    goto err_read;
            }
            if (!last || found != UINT64_MAX) {
                set_msg(errmsg, "wal: %s: %s at offset %" PRIu64, name, rec_state_str(st), off);
                rc = DV_ECORRUPT;
                goto err_scan;
            }
            rv->cut_at = off; /* a torn tail */
            break;
        }
        if (r.lsn != expect) {
            set_msg(errmsg,
                    "wal: %s: LSN %" PRIu64 " where %" PRIu64 " was expected at offset %" PRIu64,
                    name, r.lsn, expect, off);
            rc = DV_ECORRUPT;
            goto err_scan;
        }
        if (r.lsn >= rv->from_lsn && rv->replay != NULL) {
            const void *body;
            rc = rec_body(&s, &r, &body);
            if (rc == DV_ECORRUPT) {
                set_msg(errmsg, "wal: %s: bad LZ4 block at offset %" PRIu64, name, off);
                goto err_scan;
            }
            if (rc != DV_OK) {
                set_msg(errmsg, "wal: %s: out of memory at offset %" PRIu64, name, off);
                goto err_scan;
            }
            rc = rv->replay(r.lsn, r.type, body, r.raw, rv->arg);
            if (rc != 0) {
                set_msg(errmsg, "wal: %s: replay of LSN %" PRIu64 " failed (%d) at offset %" PRIu64,
                        name, r.lsn, rc, off);
                goto err_scan;
            }
        }
        expect++;
        off = r.next;
    }
    scan_release(&s);
    *prev = expect - 1;
    rc = seg_push(w, first, expect - 1, last && rv->cut_at != UINT64_MAX ? rv->cut_at : off);
    if (rc != DV_OK)
        set_msg(errmsg, "wal: %s: out of memory", name);
    return rc;

err_read:
    set_msg(errmsg, "wal: %s: read failed at offset %" PRIu64 ": %s", name, off,
            errstr(rc, eb, sizeof eb));
    rc = dv_code(rc);
err_scan:
    scan_release(&s);
    return rc;
}

/*
 * After the scan: cuts the torn tail, makes the last segment durable, and opens (or creates)
 * the segment the next LSN goes to.
 */
static int open_tail(struct wal *w, struct recover *rv, uint64_t next, char *errmsg)
{
    char path[4096], name[NAME_LEN + 1];
    bool fatal;
    if (w->nsegs > 0) {
        struct wal_seg *t = &w->segs[w->nsegs - 1];
        bool empty = t->last < t->first;
        bool reuse = empty ? t->first == next : t->last + 1 == next;
        seg_name(name, t->first);
        seg_path(w->dir, t->first, path, sizeof path);
        int fd = w->io->open(w->io, path, O_RDWR, 0);
        if (fd < 0)
            return os_fail(errmsg, fd, "%s: cannot open for writing", name);
        int rc = 0;
        if (rv->cut_at != UINT64_MAX) {
            off_t size;
            rc = w->io->fsize(w->io, fd, &size);
            if (rc == 0)
                rc = w->io->ftruncate(w->io, fd, (off_t)rv->cut_at);
            if (rc < 0) {
                w->io->close(w->io, fd);
                return os_fail(errmsg, rc, "%s: cannot cut the torn tail at offset %" PRIu64, name,
                               rv->cut_at);
            }
            log_warn("wal: cut a torn tail", "file=%s offset=%" PRIu64 " bytes=%" PRIu64, name,
                     rv->cut_at, (uint64_t)size - rv->cut_at);
        }
        if (rv->cut_at != UINT64_MAX || !empty) {
            /* What the previous run wrote may still be only in the page cache. */
            rc = w->io->fdatasync(w->io, fd);
            w->stats.fdatasyncs++;
            if (rc < 0) {
                w->io->close(w->io, fd);
                return os_fail(errmsg, rc, "%s: fdatasync failed", name);
            }
        }
        if (reuse) {
            w->fd = fd;
            return DV_OK;
        }
        w->io->close(w->io, fd);
        if (empty) {
            rc = w->io->unlink(w->io, path);
            if (rc < 0)
                return os_fail(errmsg, rc, "%s: cannot remove the empty segment", name);
            w->total_bytes -= t->size;
            w->nsegs--;
        }
    }
    int rc = seg_push(w, next, next - 1, SEG_HDR_SIZE);
    if (rc != DV_OK) {
        set_msg(errmsg, "wal: out of memory");
        return rc;
    }
    rc = seg_create(w, next, &w->fd, &fatal, errmsg);
    if (rc != DV_OK) {
        w->nsegs--;
        w->total_bytes -= SEG_HDR_SIZE;
    }
    return rc;
}

int wal_open(struct io *io, const char *dir, const struct wal_opts *o, uint64_t from_lsn,
             wal_replay_fn replay, void *arg, struct wal **out, char *errmsg)
{
    struct wal_opts def;
    if (o == NULL) {
        wal_opts_default(&def);
        o = &def;
    }
    if (errmsg != NULL)
        errmsg[0] = '\0';
    int rc = opts_check(o, errmsg);
    if (rc != DV_OK)
        return rc;
    if (from_lsn == 0)
        from_lsn = 1;

    struct wal *w = calloc(1, sizeof *w);
    if (w == NULL || (w->dir = strdup(dir)) == NULL) {
        free(w);
        set_msg(errmsg, "wal: out of memory");
        return DV_ENOMEM;
    }
    w->io = io;
    w->opts = *o;
    w->fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->pool_mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->flush_cond, &ca);
    pthread_condattr_destroy(&ca);

    uint64_t *firsts = NULL;
    size_t n = 0;
    rc = list_segments(io, dir, &firsts, &n, errmsg);
    if (rc != DV_OK)
        goto err_free;

    struct recover rv = {from_lsn, replay, arg, UINT64_MAX};
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        bool removed;
        rc = recover_segment(w, &rv, firsts[i], i + 1 == n, &prev, &removed, errmsg);
        if (rc != DV_OK)
            goto err_free;
    }
    uint64_t next = (prev > from_lsn - 1 ? prev : from_lsn - 1) + 1;
    rc = open_tail(w, &rv, next, errmsg);
    if (rc != DV_OK)
        goto err_free;
    free(firsts);
    w->last_lsn = next - 1;
    w->durable_lsn = next - 1;

    if (o->sync == WAL_SYNC_INTERVAL) {
        int e = pthread_create(&w->flusher, NULL, flusher_main, w);
        if (e != 0) {
            rc = os_fail(errmsg, -e, "%s: cannot start the sync thread", dir);
            goto err_free_nolist;
        }
        w->has_flusher = true;
    }
    *out = w;
    return DV_OK;

err_free:
    free(firsts);
err_free_nolist:
    if (errmsg != NULL && errmsg[0] == '\0')
        set_msg(errmsg, "wal: %s: %s", dir, dv_strerror(rc));
    wal_free(w);
    return rc;
}

/* ---- sync -------------------------------------------------------------------------------- */

/*
 * Group commit (mu held; released while fdatasync runs): one thread at a time is the syncer
 * and covers everything appended before it started; the others wait on `cond` and usually
 * find their LSN covered when it finishes.
 */
static int sync_locked(struct wal *w, uint64_t lsn, char *errmsg)
{
    for (;;) {
        if (w->failed)
            return failed_err(w, errmsg);
        if (w->durable_lsn >= lsn)
            return DV_OK;
        if (!w->syncing) {
            uint64_t target = w->last_lsn, first = w->segs[w->nsegs - 1].first;
            int fd = w->fd;
            w->syncing = true;
            pthread_mutex_unlock(&w->mu);
            int rc = w->io->fdatasync(w->io, fd);
            pthread_mutex_lock(&w->mu);
            w->syncing = false;
            w->stats.fdatasyncs++;
            if (rc < 0) {
                char msg[DV_ERRMSG_SIZE], name[NAME_LEN + 1];
                seg_name(name, first);
                os_fail(msg, rc, "%s: fdatasync failed", name);
                set_failed(w, msg);
            } else if (target > w->durable_lsn) {
                w->durable_lsn = target;
            }
            pthread_cond_broadcast(&w->cond);
            continue;
        }
        pthread_cond_wait(&w->cond, &w->mu);
    }
}

int wal_sync(struct wal *w, uint64_t lsn, char *errmsg)
{
    pthread_mutex_lock(&w->mu);
    int rc = DV_OK;
    if (w->failed)
        rc = failed_err(w, errmsg);
    else if (lsn > w->last_lsn) {
        set_msg(errmsg, "wal: LSN %" PRIu64 " was not appended (last is %" PRIu64 ")", lsn,
                w->last_lsn);
        rc = DV_EINVAL;
    } else if (w->opts.sync == WAL_SYNC_ALWAYS && w->durable_lsn < lsn) {
        w->stats.sync_requests++;
        rc = sync_locked(w, lsn, errmsg);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int wal_flush(struct wal *w, char *errmsg)
{
    pthread_mutex_lock(&w->mu);
    int rc = sync_locked(w, w->last_lsn, errmsg);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* The INTERVAL thread: fdatasyncs once the oldest unsynced record is interval_ms old. */
static void *flusher_main(void *arg)
{
    struct wal *w = arg;
    uint64_t iv = (uint64_t)w->opts.interval_ms * 1000000ull;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        if (w->failed || w->durable_lsn >= w->last_lsn) {
            w->dirty = false;
            pthread_cond_wait(&w->flush_cond, &w->mu);
            continue;
        }
        uint64_t now = w->io->now_ns(w->io);
        if (!w->dirty) {
            w->dirty = true;
            w->dirty_since = now;
        }
        if (now - w->dirty_since >= iv) {
            char msg[DV_ERRMSG_SIZE];
            w->dirty = false;
            if (sync_locked(w, w->last_lsn, msg) != DV_OK)
                log_error("wal: background fdatasync failed", "dir=%s error=%s", w->dir, msg);
            continue;
        }
        /* Real time for sleeping, io->now_ns for deciding: tests move the clock. */
        uint64_t nap = iv - (now - w->dirty_since);
        if (nap > FLUSHER_NAPNS)
            nap = FLUSHER_NAPNS;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + nap;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&w->flush_cond, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int wal_rebase(struct wal *w, const char *dir, enum wal_sync sync, char *errmsg)
{
    char *d = strdup(dir);
    if (d == NULL) {
        set_msg(errmsg, "wal: out of memory");
        return DV_ENOMEM;
    }
    int rc = wal_flush(w, errmsg);
    if (rc != DV_OK) {
        free(d);
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    free(w->dir);
    w->dir = d;
    w->opts.sync = sync;
    bool start = sync == WAL_SYNC_INTERVAL && !w->has_flusher;
    pthread_mutex_unlock(&w->mu);
    if (start) {
        int e = pthread_create(&w->flusher, NULL, flusher_main, w);
        if (e != 0)
            return os_fail(errmsg, -e, "%s: cannot start the sync thread", dir);
        w->has_flusher = true;
    }
    return DV_OK;
}

void wal_close(struct wal *w)
{
    if (w == NULL)
        return;
    if (w->has_flusher) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_signal(&w->flush_cond);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->flusher, NULL);
    }
    if (w->opts.sync != WAL_SYNC_NEVER && !w->failed && w->durable_lsn < w->last_lsn) {
        char msg[DV_ERRMSG_SIZE];
        pthread_mutex_lock(&w->mu);
        int rc = sync_locked(w, w->last_lsn, msg);
        pthread_mutex_unlock(&w->mu);
        if (rc != DV_OK)
            log_error("wal: fdatasync at close failed", "dir=%s error=%s", w->dir, msg);
    }
    wal_free(w);
}

/* ---- append ------------------------------------------------------------------------------ */

static struct wal_scratch *scratch_get(struct wal *w, size_t need)
{
    pthread_mutex_lock(&w->pool_mu);
    struct wal_scratch *s = w->pool;
    if (s != NULL)
        w->pool = s->next;
    pthread_mutex_unlock(&w->pool_mu);
    if (s == NULL || s->cap < need) {
        size_t cap = need < 4096 ? 4096 : need;
        struct wal_scratch *ns = realloc(s, sizeof *ns + cap);
        if (ns == NULL) {
            free(s);
            return NULL;
        }
        s = ns;
        s->cap = cap;
    }
    return s;
}

static void scratch_put(struct wal *w, struct wal_scratch *s)
{
    if (s->cap > SCRATCH_KEEP) {
        free(s);
        return;
    }
    pthread_mutex_lock(&w->pool_mu);
    s->next = w->pool;
    w->pool = s;
    pthread_mutex_unlock(&w->pool_mu);
}

/*
 * Closes the current segment (after an fdatasync) and starts the next one (mu held, no
 * syncer running). On a failure that left the WAL consistent it stays on the old segment.
 */
static int rotate(struct wal *w, char *errmsg)
{
    char name[NAME_LEN + 1], msg[DV_ERRMSG_SIZE];
    struct wal_seg *cur = &w->segs[w->nsegs - 1];
    seg_name(name, cur->first);
    int rc = w->io->fdatasync(w->io, w->fd);
    w->stats.fdatasyncs++;
    if (rc < 0) {
        os_fail(msg, rc, "%s: fdatasync before rotation failed", name);
        set_failed(w, msg);
        return failed_err(w, errmsg);
    }
    w->durable_lsn = w->last_lsn;
    pthread_cond_broadcast(&w->cond);
    if (w->nsegs == w->capsegs) { /* make room first: nothing may fail after seg_create */
        rc = seg_push(w, 0, 0, 0);
        if (rc != DV_OK) {
            set_msg(errmsg, "wal: out of memory");
            return rc;
        }
        w->nsegs--;
    }
    uint64_t next = w->last_lsn + 1;
    bool fatal;
    int fd;
    rc = seg_create(w, next, &fd, &fatal, errmsg);
    if (rc != DV_OK) {
        if (fatal)
            set_failed(w, errmsg != NULL ? errmsg : "wal: segment creation failed");
        return rc;
    }
    w->io->close(w->io, w->fd);
    w->fd = fd;
    seg_push(w, next, next - 1, SEG_HDR_SIZE);
    w->stats.rotations++;
    return DV_OK;
}

int wal_append(struct wal *w, uint8_t type, const void *body, size_t len, uint64_t *lsn,
               char *errmsg)
{
    if (type == 0) {
        set_msg(errmsg, "wal: record type 0 is reserved");
        return DV_EINVAL;
    }
    if (len > w->opts.max_record) {
        set_msg(errmsg, "wal: record of %zu bytes is over max_record (%u)", len,
                w->opts.max_record);
        return DV_ETOOBIG;
    }
    if (len > 0 && body == NULL) {
        set_msg(errmsg, "wal: NULL body of %zu bytes", len);
        return DV_EINVAL;
    }
    struct wal_scratch *sc = scratch_get(w, REC_HDR_SIZE + len);
    if (sc == NULL) {
        set_msg(errmsg, "wal: out of memory for a record of %zu bytes", len);
        return DV_ENOMEM;
    }
    uint8_t *rec = sc->data;
    size_t stored = len;
    uint8_t flags = 0;
    if (w->opts.compress && len >= COMPRESS_MIN) {
        /* Keep the block only when it is under 90% of the raw bytes. */
        int c = LZ4_compress_default(body, (char *)rec + REC_HDR_SIZE, (int)len,
                                     (int)((len * 9 - 1) / 10));
        if (c > 0) {
            stored = (size_t)c;
            flags = REC_FLAG_LZ4;
        }
    }
    if (flags == 0 && len > 0)
        memcpy(rec + REC_HDR_SIZE, body, len);
    size_t total = REC_HDR_SIZE + stored;
    buf_wr_le32(rec, REC_MAGIC);
    buf_wr_le32(rec + 16, (uint32_t)stored);
    buf_wr_le32(rec + 20, (uint32_t)len);
    rec[24] = type;
    rec[25] = flags;
    buf_wr_le16(rec + 26, 0);

    int rc = DV_OK;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct wal_seg *cur = &w->segs[w->nsegs - 1];
        if (w->failed) {
            rc = failed_err(w, errmsg);
            goto out_unlock;
        }
        /* A record bigger than a segment gets a segment of its own. */
        if (cur->size + total <= w->opts.segment_bytes || cur->last < cur->first)
            break;
        if (w->syncing) { /* the syncer uses the descriptor rotation closes */
            pthread_cond_wait(&w->cond, &w->mu);
            continue;
        }
        rc = rotate(w, errmsg);
        if (rc != DV_OK)
            goto out_unlock;
    }
    struct wal_seg *cur = &w->segs[w->nsegs - 1];
    uint64_t l = w->last_lsn + 1;
    buf_wr_le64(rec + 8, l);
    buf_wr_le32(rec + 4, crc32c(rec + 8, total - 8));
    int wr = io_write_all(w->io, w->fd, rec, total, (off_t)cur->size);
    if (wr < 0) {
        char name[NAME_LEN + 1], eb[64];
        seg_name(name, cur->first);
        int t = w->io->ftruncate(w->io, w->fd, (off_t)cur->size);
        set_msg(errmsg,
                "wal: %s: write of LSN %" PRIu64 " (%zu bytes) at offset %" PRIu64 " failed: %s%s",
                name, l, total, cur->size, errstr(wr, eb, sizeof eb),
                t < 0 ? "; undoing it failed too" : "");
        if (t < 0)
            set_failed(w, errmsg != NULL ? errmsg : "wal: undoing a failed write failed");
        rc = DV_EIO;
        goto out_unlock;
    }
    cur->size += total;
    cur->last = l;
    w->total_bytes += total;
    w->last_lsn = l;
    w->stats.appends++;
    w->stats.raw_bytes += len;
    w->stats.stored_bytes += total;
    if (flags != 0)
        w->stats.compressed++;
    if (w->has_flusher && !w->dirty) {
        w->dirty = true;
        w->dirty_since = w->io->now_ns(w->io);
        pthread_cond_signal(&w->flush_cond);
    }
    *lsn = l;
out_unlock:
    pthread_mutex_unlock(&w->mu);
    scratch_put(w, sc);
    return rc;
}

/* ---- accessors, drop, read --------------------------------------------------------------- */

uint64_t wal_last_lsn(struct wal *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t v = w->last_lsn;
    pthread_mutex_unlock(&w->mu);
    return v;
}

uint64_t wal_durable_lsn(struct wal *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t v = w->durable_lsn;
    pthread_mutex_unlock(&w->mu);
    return v;
}

size_t wal_bytes(struct wal *w)
{
    pthread_mutex_lock(&w->mu);
    size_t v = (size_t)w->total_bytes;
    pthread_mutex_unlock(&w->mu);
    return v;
}

void wal_get_stats(struct wal *w, struct wal_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}

int wal_drop_before(struct wal *w, uint64_t lsn, char *errmsg)
{
    int rc = DV_OK;
    size_t dropped = 0;
    pthread_mutex_lock(&w->mu);
    /* When the segment being written is covered too, start a new one so that it can go:
     * otherwise every reopen would scan up to a whole segment of records it skips. */
    for (;;) {
        struct wal_seg *cur = &w->segs[w->nsegs - 1];
        if (w->failed || cur->last < cur->first || cur->last > lsn)
            break;
        if (w->syncing) { /* the syncer uses the descriptor rotation closes */
            pthread_cond_wait(&w->cond, &w->mu);
            continue;
        }
        char msg[DV_ERRMSG_SIZE];
        if (rotate(w, msg) != DV_OK)
            break; /* harmless: the segment stays until the next drop */
        break;
    }
    /* Oldest first, so a failure half way leaves the remaining segments contiguous. */
    while (w->nsegs > 1 && w->segs[0].last <= lsn) {
        char path[4096], name[NAME_LEN + 1];
        seg_name(name, w->segs[0].first);
        seg_path(w->dir, w->segs[0].first, path, sizeof path);
        int u = w->io->unlink(w->io, path);
        if (u < 0 && u != -ENOENT) {
            rc = os_fail(errmsg, u, "%s: cannot delete", name);
            break;
        }
        w->total_bytes -= w->segs[0].size;
        memmove(w->segs, w->segs + 1, (w->nsegs - 1) * sizeof *w->segs);
        w->nsegs--;
        dropped++;
    }
    pthread_mutex_unlock(&w->mu);
    if (dropped > 0) {
        /* If this is lost the old files come back after a crash: harmless, so no failed
         * state; the next drop removes them. */
        int d = io_fsync_dir(w->io, w->dir);
        if (d < 0 && rc == DV_OK)
            rc = os_fail(errmsg, d, "%s: fsync of the directory failed", w->dir);
    }
    return rc;
}

int wal_read(struct wal *w, uint64_t from_lsn, wal_replay_fn fn, void *arg, char *errmsg)
{
    if (from_lsn == 0)
        from_lsn = 1;
    pthread_mutex_lock(&w->mu);
    size_t n = w->nsegs;
    struct wal_seg *segs = malloc(n * sizeof *segs);
    if (segs != NULL)
        memcpy(segs, w->segs, n * sizeof *segs);
    uint64_t upto = w->last_lsn;
    pthread_mutex_unlock(&w->mu);
    if (segs == NULL) {
        set_msg(errmsg, "wal: out of memory");
        return DV_ENOMEM;
    }
    int rc = DV_OK;
    if (from_lsn < segs[0].first) {
        set_msg(errmsg, "wal: LSN %" PRIu64 " was dropped (the oldest kept is %" PRIu64 ")",
                from_lsn, segs[0].first);
        rc = DV_ENOTFOUND;
        goto out;
    }
    size_t i = 0;
    while (i + 1 < n && segs[i + 1].first <= from_lsn)
        i++;
    uint64_t expect = from_lsn;
    for (; i < n && expect <= upto; i++) {
        char name[NAME_LEN + 1];
        seg_name(name, segs[i].first);
        if (segs[i].first > expect) {
            set_msg(errmsg, "wal: records %" PRIu64 "..%" PRIu64 " are not in the WAL", expect,
                    segs[i].first - 1);
            rc = DV_ENOTFOUND;
            goto out;
        }
        struct scan s;
        rc = scan_open(&s, w->io, w->dir, segs[i].first, errmsg);
        if (rc != DV_OK) {
            if (s.err == -ENOENT) {
                set_msg(errmsg, "wal: %s was dropped while reading", name);
                rc = DV_ENOTFOUND;
            }
            goto out;
        }
        if (s.size > segs[i].size)
            s.size = segs[i].size; /* only what was appended when we started */
        uint64_t off = SEG_HDR_SIZE;
        while (expect <= upto) {
            struct rec r;
            int st = rec_check(&s, off, &r);
            if (st == REC_END)
                break;
            if (st < 0) {
                rc = os_fail(errmsg, st, "%s: read failed at offset %" PRIu64, name, off);
                break;
            }
            if (st != REC_OK || r.lsn > expect) {
                set_msg(errmsg, "wal: %s: %s at offset %" PRIu64, name,
                        st != REC_OK ? rec_state_str(st) : "unexpected LSN", off);
                rc = DV_ECORRUPT;
                break;
            }
            if (r.lsn == expect) {
                const void *body;
                rc = rec_body(&s, &r, &body);
                if (rc != DV_OK) {
                    set_msg(errmsg, "wal: %s: %s at offset %" PRIu64, name,
                            rc == DV_ECORRUPT ? "bad LZ4 block" : "out of memory", off);
                    break;
                }
                rc = fn(r.lsn, r.type, body, r.raw, arg);
                if (rc != 0)
                    break;
                expect++;
            }
            off = r.next;
        }
        scan_release(&s);
        if (rc != DV_OK)
            goto out;
    }
out:
    free(segs);
    return rc;
}

/* ---- offline repair ---------------------------------------------------------------------- */

/* Counts the intact records from `off` to the end of the scanned file. */
static int count_intact(struct scan *s, uint64_t off, uint64_t *count)
{
    for (;;) {
        uint64_t found;
        int rc = probe_valid(s, off, 0, &found);
        if (rc < 0)
            return rc;
        if (found == UINT64_MAX)
            return 0;
        struct rec r;
        rc = rec_check(s, found, &r);
        if (rc < 0)
            return rc;
        (*count)++;
        off = r.next;
    }
}

int wal_repair(struct io *io, const char *dir, char *errmsg)
{
    uint64_t *firsts;
    size_t n;
    char why[DV_ERRMSG_SIZE] = "";
    if (errmsg != NULL)
        errmsg[0] = '\0';
    int rc = list_segments(io, dir, &firsts, &n, errmsg);
    if (rc != DV_OK)
        return rc;
    size_t cut_seg = n;
    uint64_t cut_off = 0, prev = 0, dropped = 0;
    bool damaged = false; /* the cut starts on a record that lost its CRC */

    /* Find the first bad spot. */
    for (size_t i = 0; i < n && cut_seg == n; i++) {
        struct scan s;
        rc = scan_open(&s, io, dir, firsts[i], errmsg);
        if (rc != DV_OK)
            goto out;
        uint64_t first;
        bool ok;
        rc = seg_header_check(&s, &first, &ok);
        if (rc < 0)
            goto err_read;
        if (!ok || first != firsts[i]) {
            snprintf(why, sizeof why, "bad segment header");
        } else if (prev != 0 && first != prev + 1) {
            snprintf(why, sizeof why, "records %" PRIu64 "..%" PRIu64 " missing", prev + 1,
                     first - 1);
        } else {
            uint64_t off = SEG_HDR_SIZE, expect = first;
            for (;;) {
                struct rec r;
                int st = rec_check(&s, off, &r);
                if (st < 0) {
                    rc = st;
                    goto err_read;
                }
                if (st == REC_END)
                    break;
                if (st != REC_OK || r.lsn != expect) {
                    snprintf(why, sizeof why, "%s",
                             st != REC_OK ? rec_state_str(st) : "unexpected LSN");
                    /* Something was written there (not preallocated zeros): it was a
                     * record, and it is dropped too. */
                    const uint8_t *z = NULL;
                    size_t zn = s.size - off < 4 ? (size_t)(s.size - off) : 4;
                    rc = scan_get(&s, off, zn, &z);
                    if (rc < 0)
                        goto err_read;
                    for (size_t k = 0; k < zn; k++)
                        damaged = damaged || z[k] != 0;
                    cut_off = off;
                    break;
                }
                expect++;
                off = r.next;
            }
            prev = expect - 1;
            if (why[0] == '\0') {
                scan_release(&s);
                continue;
            }
        }
        cut_seg = i;
        /* Count what the cut drops in this segment. */
        rc = count_intact(&s, cut_off == 0 ? SEG_HDR_SIZE : cut_off + (damaged ? 1 : 0), &dropped);
        scan_release(&s);
        if (rc < 0) {
            rc = os_fail(errmsg, rc, "%s: read failed", dir);
            goto out;
        }
        dropped += damaged ? 1 : 0;
        continue;
    err_read:
        scan_release(&s);
        rc = os_fail(errmsg, rc, "%s: read failed", dir);
        goto out;
    }
    if (cut_seg == n) {
        set_msg(errmsg, "wal: %s: nothing to repair", dir);
        rc = DV_OK;
        goto out;
    }
    for (size_t i = cut_seg + 1; i < n; i++) {
        struct scan s;
        rc = scan_open(&s, io, dir, firsts[i], errmsg);
        if (rc != DV_OK)
            goto out;
        rc = count_intact(&s, SEG_HDR_SIZE, &dropped);
        scan_release(&s);
        if (rc < 0) {
            rc = os_fail(errmsg, rc, "%s: read failed", dir);
            goto out;
        }
    }

    /* Cut: later segments first, so an interrupted repair never leaves a hole. */
    char path[4096], name[NAME_LEN + 1];
    for (size_t i = n; i-- > cut_seg + 1;) {
        seg_path(dir, firsts[i], path, sizeof path);
        rc = io->unlink(io, path);
        if (rc < 0) {
            seg_name(name, firsts[i]);
            rc = os_fail(errmsg, rc, "%s: cannot delete", name);
            goto out;
        }
    }
    seg_name(name, firsts[cut_seg]);
    seg_path(dir, firsts[cut_seg], path, sizeof path);
    if (cut_off == 0) {
        rc = io->unlink(io, path);
        if (rc < 0) {
            rc = os_fail(errmsg, rc, "%s: cannot delete", name);
            goto out;
        }
    } else {
        int fd = io->open(io, path, O_RDWR, 0);
        if (fd < 0) {
            rc = os_fail(errmsg, fd, "%s: cannot open", name);
            goto out;
        }
        rc = io->ftruncate(io, fd, (off_t)cut_off);
        if (rc == 0)
            rc = io->fsync(io, fd);
        io->close(io, fd);
        if (rc < 0) {
            rc = os_fail(errmsg, rc, "%s: cannot truncate at offset %" PRIu64, name, cut_off);
            goto out;
        }
    }
    rc = io_fsync_dir(io, dir);
    if (rc < 0) {
        rc = os_fail(errmsg, rc, "%s: fsync of the directory failed", dir);
        goto out;
    }
    set_msg(errmsg,
            "cut %s at offset %" PRIu64 ": %" PRIu64 " records after LSN %" PRIu64 " dropped (%s)",
            name, cut_off, dropped, prev, why);
    log_warn("wal: repaired", "dir=%s what=%s", dir, errmsg != NULL ? errmsg : why);
    rc = DV_OK;
out:
    free(firsts);
    return rc;
}
