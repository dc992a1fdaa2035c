/* wal_recover.c - opening a WAL: recovery of every segment, the torn-tail cut, the open tail. */
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

/* ---- open -------------------------------------------------------------------------------- */

void wal_opts_default(struct wal_opts *o)
{
    o->sync = WAL_SYNC_ALWAYS;
    o->interval_ms = 100;
    o->segment_bytes = 64ull << 20;
    o->compress = true;
    o->max_record = 64u << 20;
}

int wal_seg_push(struct wal *w, uint64_t first, uint64_t last, uint64_t size)
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
int wal_seg_create(struct wal *w, uint64_t first, int *fd_out, bool *fatal, char *errmsg)
{
    char path[4096], name[NAME_LEN + 1], eb[64];
    uint8_t h[SEG_HDR_SIZE];
    *fatal = false;
    wal_seg_name(name, first);
    int rc = wal_seg_path(w->dir, first, path, sizeof path);
    if (rc < 0)
        return wal_os_fail(errmsg, rc, "%s/%s", w->dir, name);
    int fd = w->io->open(w->io, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return wal_os_fail(errmsg, fd, "%s: cannot create", name);
    wal_seg_header_encode(h, first);
    rc = io_write_all(w->io, fd, h, sizeof h, 0);
    if (rc < 0) {
        int code = wal_os_fail(errmsg, rc, "%s: cannot write the segment header", name);
        w->io->close(w->io, fd);
        int u = w->io->unlink(w->io, path);
        if (u < 0 && u != -ENOENT) {
            *fatal = true;
            log_error("wal: cannot remove a half-created segment", "file=%s error=%s", path,
                      wal_errstr(u, eb, sizeof eb));
        }
        return code;
    }
    rc = io_fsync_dir(w->io, w->dir);
    if (rc < 0) {
        w->io->close(w->io, fd);
        *fatal = true;
        return wal_os_fail(errmsg, rc, "%s: fsync of the directory after creating it failed", name);
    }
    *fd_out = fd;
    return DV_OK;
}

/* Records the failed state (mu held) and logs it once. */
void wal_set_failed(struct wal *w, const char *msg)
{
    if (w->failed)
        return;
    w->failed = true;
    snprintf(w->failed_msg, sizeof w->failed_msg, "%s", msg);
    log_error("wal: failed, no more writes until reopened", "dir=%s error=%s", w->dir, msg);
    pthread_cond_broadcast(&w->cond);
}

int wal_failed_err(struct wal *w, char *errmsg)
{
    wal_set_msg(errmsg, "wal: failed earlier (%s)", w->failed_msg);
    return DV_EIO;
}

void wal_free(struct wal *w)
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
        wal_set_msg(errmsg, "wal: unknown sync policy %d", (int)o->sync);
    else if (o->sync == WAL_SYNC_INTERVAL && o->interval_ms == 0)
        wal_set_msg(errmsg, "wal: interval_ms must be positive");
    else if (o->segment_bytes < WAL_MIN_SEGMENT_BYTES)
        wal_set_msg(errmsg, "wal: segment_bytes %" PRIu64 " is under the minimum %u",
                    o->segment_bytes, WAL_MIN_SEGMENT_BYTES);
    else if (o->max_record == 0 || o->max_record > WAL_MAX_RECORD_LIMIT)
        wal_set_msg(errmsg, "wal: max_record %u is not in 1..%u", o->max_record,
                    WAL_MAX_RECORD_LIMIT);
    else
        return DV_OK;
    return DV_EINVAL;
}

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
    wal_seg_name(name, first);
    *removed = false;
    int rc = wal_scan_open(&s, w->io, w->dir, first, errmsg);
    if (rc != DV_OK)
        return rc;
    uint64_t hfirst = 0;
    bool ok;
    rc = wal_seg_header_check(&s, &hfirst, &ok);
    if (rc < 0)
        goto err_read;
    if (!ok || hfirst != first) {
        if (last && s.size <= SEG_HDR_SIZE) {
            /* Created, but the crash came before its header was complete: no records. */
            char path[4096];
            uint64_t size = s.size;
            wal_scan_release(&s);
            wal_seg_path(w->dir, first, path, sizeof path);
            rc = w->io->unlink(w->io, path);
            if (rc == 0)
                rc = io_fsync_dir(w->io, w->dir);
            if (rc < 0)
                return wal_os_fail(errmsg, rc, "%s: cannot remove the torn segment", name);
            log_warn("wal: removed a segment with a torn header", "file=%s bytes=%" PRIu64, name,
                     size);
            *removed = true;
            return DV_OK;
        }
        wal_set_msg(errmsg, "wal: %s: bad segment header at offset 0", name);
        rc = DV_ECORRUPT;
        goto err_scan;
    }
    if (*prev == 0) {
        if (first > rv->from_lsn) {
            wal_set_msg(errmsg, "wal: %s: records %" PRIu64 "..%" PRIu64 " missing at offset 0",
                        name, rv->from_lsn, first - 1);
            rc = DV_ECORRUPT;
            goto err_scan;
        }
    } else if (first <= *prev) {
        wal_set_msg(errmsg, "wal: %s: first LSN %" PRIu64 " overlaps LSN %" PRIu64 " at offset 0",
                    name, first, *prev);
        rc = DV_ECORRUPT;
        goto err_scan;
    } else if (first > *prev + 1 && first - 1 >= rv->from_lsn) {
        /* A hole is harmless only when all of it is below from_lsn (in the checkpoint). */
        uint64_t lo = *prev + 1 > rv->from_lsn ? *prev + 1 : rv->from_lsn;
        wal_set_msg(errmsg, "wal: %s: records %" PRIu64 "..%" PRIu64 " missing at offset 0", name,
                    lo, first - 1);
        rc = DV_ECORRUPT;
        goto err_scan;
    }

    uint64_t expect = first;
    off = SEG_HDR_SIZE;
    for (;;) {
        struct rec r;
        int st = wal_rec_check(&s, off, &r);
        if (st < 0) {
            rc = st;
            goto err_read;
        }
        if (st == REC_END)
            break;
        if (st != REC_OK) {
            uint64_t found = UINT64_MAX;
            if (last) {
                rc = wal_probe_valid(&s, off + 1, expect - 1, &found);
                if (rc < 0)
                    goto err_read;
            }
            if (!last || found != UINT64_MAX) {
                wal_set_msg(errmsg, "wal: %s: %s at offset %" PRIu64, name, wal_rec_state_str(st),
                            off);
                rc = DV_ECORRUPT;
                goto err_scan;
            }
            rv->cut_at = off; /* a torn tail */
            break;
        }
        if (r.lsn != expect) {
            wal_set_msg(errmsg,
                        "wal: %s: LSN %" PRIu64 " where %" PRIu64
                        " was expected at offset %" PRIu64,
                        name, r.lsn, expect, off);
            rc = DV_ECORRUPT;
            goto err_scan;
        }
        if (r.lsn >= rv->from_lsn && rv->replay != NULL) {
            const void *body;
            rc = wal_rec_body(&s, &r, &body);
            if (rc == DV_ECORRUPT) {
                wal_set_msg(errmsg, "wal: %s: bad LZ4 block at offset %" PRIu64, name, off);
                goto err_scan;
            }
            if (rc != DV_OK) {
                wal_set_msg(errmsg, "wal: %s: out of memory at offset %" PRIu64, name, off);
                goto err_scan;
            }
            rc = rv->replay(r.lsn, r.type, body, r.raw, rv->arg);
            if (rc != 0) {
                wal_set_msg(errmsg,
                            "wal: %s: replay of LSN %" PRIu64 " failed (%d) at offset %" PRIu64,
                            name, r.lsn, rc, off);
                goto err_scan;
            }
        }
        expect++;
        off = r.next;
    }
    wal_scan_release(&s);
    *prev = expect - 1;
    rc = wal_seg_push(w, first, expect - 1, last && rv->cut_at != UINT64_MAX ? rv->cut_at : off);
    if (rc != DV_OK)
        wal_set_msg(errmsg, "wal: %s: out of memory", name);
    return rc;

err_read:
    wal_set_msg(errmsg, "wal: %s: read failed at offset %" PRIu64 ": %s", name, off,
                wal_errstr(rc, eb, sizeof eb));
    rc = wal_dv_code(rc);
err_scan:
    wal_scan_release(&s);
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
        wal_seg_name(name, t->first);
        wal_seg_path(w->dir, t->first, path, sizeof path);
        int fd = w->io->open(w->io, path, O_RDWR, 0);
        if (fd < 0)
            return wal_os_fail(errmsg, fd, "%s: cannot open for writing", name);
        int rc = 0;
        if (rv->cut_at != UINT64_MAX) {
            off_t size;
            rc = w->io->fsize(w->io, fd, &size);
            if (rc == 0)
                rc = w->io->ftruncate(w->io, fd, (off_t)rv->cut_at);
            if (rc < 0) {
                w->io->close(w->io, fd);
                return wal_os_fail(errmsg, rc, "%s: cannot cut the torn tail at offset %" PRIu64,
                                   name, rv->cut_at);
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
                return wal_os_fail(errmsg, rc, "%s: fdatasync failed", name);
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
                return wal_os_fail(errmsg, rc, "%s: cannot remove the empty segment", name);
            w->total_bytes -= t->size;
            w->nsegs--;
        }
    }
    int rc = wal_seg_push(w, next, next - 1, SEG_HDR_SIZE);
    if (rc != DV_OK) {
        wal_set_msg(errmsg, "wal: out of memory");
        return rc;
    }
    rc = wal_seg_create(w, next, &w->fd, &fatal, errmsg);
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
        wal_set_msg(errmsg, "wal: out of memory");
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
    rc = wal_list_segments(io, dir, &firsts, &n, errmsg);
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
        int e = pthread_create(&w->flusher, NULL, wal_flusher_main, w);
        if (e != 0) {
            rc = wal_os_fail(errmsg, -e, "%s: cannot start the sync thread", dir);
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
        wal_set_msg(errmsg, "wal: %s: %s", dir, dv_strerror(rc));
    wal_free(w);
    return rc;
}
