/* wal_scan.c - the WAL's files: segment names and listing, errors, and reading records back
 * (windowed scans, record checks, LZ4 bodies). */
#include "wal_int.h"

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

/* ---- small helpers ----------------------------------------------------------------------- */

void wal_set_msg(char *errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void wal_set_msg(char *errmsg, const char *fmt, ...)
{
    if (errmsg == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, DV_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

const char *wal_errstr(int neg_errno, char *buf, size_t size)
{
    return strerror_r(-neg_errno, buf, size);
}

/* Maps -errno of the io to a dv code (io_dv_code: a full disk is DV_EFULL). */
int wal_dv_code(int neg_errno)
{
    return io_dv_code(neg_errno);
}

/* Sets "wal: <what>: <strerror>" and returns the dv code of the OS error. */
int wal_os_fail(char *errmsg, int neg_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int wal_os_fail(char *errmsg, int neg_errno, const char *fmt, ...)
{
    char what[DV_ERRMSG_SIZE], eb[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    wal_set_msg(errmsg, "wal: %s: %s", what, wal_errstr(neg_errno, eb, sizeof eb));
    return wal_dv_code(neg_errno);
}

void wal_seg_name(char *name, uint64_t first)
{
    snprintf(name, NAME_LEN + 1, "%020" PRIu64 ".wal", first);
}

int wal_seg_path(const char *dir, uint64_t first, char *path, size_t size)
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
int wal_list_segments(struct io *io, const char *dir, uint64_t **out, size_t *n, char *errmsg)
{
    char **names;
    size_t count;
    int rc = io->list(io, dir, &names, &count);
    if (rc < 0)
        return wal_os_fail(errmsg, rc, "%s: cannot list the directory", dir);
    uint64_t *v = malloc((count ? count : 1) * sizeof *v);
    if (v == NULL) {
        io_free_list(names, count);
        wal_set_msg(errmsg, "wal: %s: out of memory", dir);
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

void wal_seg_header_encode(uint8_t *h, uint64_t first)
{
    memcpy(h, SEG_MAGIC, 8);
    buf_wr_le32(h + 8, SEG_VERSION);
    buf_wr_le64(h + 12, first);
    buf_wr_le32(h + 20, crc32c(h, 20));
}

/* ---- reading segments -------------------------------------------------------------------- */

void wal_scan_release(struct scan *s)
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
int wal_scan_get(struct scan *s, uint64_t off, size_t n, const uint8_t **p)
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

const char *wal_rec_state_str(int st)
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

/* Decodes and checks the record at `off`: a rec_state (>= 0), or -errno on a read error. */
int wal_rec_check(struct scan *s, uint64_t off, struct rec *r)
{
    if (off >= s->size)
        return REC_END;
    if (s->size - off < REC_HDR_SIZE)
        return REC_SHORT_HDR;
    const uint8_t *p = NULL;
    int rc = wal_scan_get(s, off, REC_HDR_SIZE, &p);
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
    rc = wal_scan_get(s, off, REC_HDR_SIZE + (size_t)r->stored, &p);
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
int wal_rec_body(struct scan *s, const struct rec *r, const void **body)
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
int wal_probe_valid(struct scan *s, uint64_t from, uint64_t min_lsn, uint64_t *found)
{
    const uint8_t m0 = (uint8_t)(REC_MAGIC & 0xff);
    uint64_t off = from;
    *found = UINT64_MAX;
    while (off < s->size && s->size - off >= REC_HDR_SIZE) {
        size_t n = s->size - off > SCAN_WINDOW ? SCAN_WINDOW : (size_t)(s->size - off);
        const uint8_t *p = NULL;
        int rc = wal_scan_get(s, off, n, &p);
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
        rc = wal_rec_check(s, c, &r);
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
int wal_seg_header_check(struct scan *s, uint64_t *first, bool *ok)
{
    *ok = false;
    if (s->size < SEG_HDR_SIZE)
        return 0;
    const uint8_t *h = NULL;
    int rc = wal_scan_get(s, 0, SEG_HDR_SIZE, &h);
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
int wal_scan_open(struct scan *s, struct io *io, const char *dir, uint64_t first, char *errmsg)
{
    char path[4096], name[NAME_LEN + 1];
    memset(s, 0, sizeof *s);
    s->io = io;
    s->fd = -1;
    wal_seg_name(name, first);
    int rc = wal_seg_path(dir, first, path, sizeof path);
    if (rc == 0)
        rc = io->open(io, path, O_RDONLY, 0);
    if (rc < 0) {
        s->err = rc;
        return wal_os_fail(errmsg, rc, "%s: cannot open", name);
    }
    s->fd = rc;
    off_t size;
    rc = io->fsize(io, s->fd, &size);
    if (rc < 0) {
        wal_scan_release(s);
        return wal_os_fail(errmsg, rc, "%s: cannot stat", name);
    }
    s->size = (uint64_t)size;
    return DV_OK;
}
