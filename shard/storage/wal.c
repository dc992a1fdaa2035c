/* wal.c - the write-ahead log at run time: append, group commit and sync, rebase, close, drop,
 * streaming reads. */
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
            return wal_failed_err(w, errmsg);
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
                wal_seg_name(name, first);
                wal_os_fail(msg, rc, "%s: fdatasync failed", name);
                wal_set_failed(w, msg);
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
        rc = wal_failed_err(w, errmsg);
    else if (lsn > w->last_lsn) {
        wal_set_msg(errmsg, "wal: LSN %" PRIu64 " was not appended (last is %" PRIu64 ")", lsn,
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
void *wal_flusher_main(void *arg)
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
        wal_set_msg(errmsg, "wal: out of memory");
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
        int e = pthread_create(&w->flusher, NULL, wal_flusher_main, w);
        if (e != 0)
            return wal_os_fail(errmsg, -e, "%s: cannot start the sync thread", dir);
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
    wal_seg_name(name, cur->first);
    int rc = w->io->fdatasync(w->io, w->fd);
    w->stats.fdatasyncs++;
    if (rc < 0) {
        wal_os_fail(msg, rc, "%s: fdatasync before rotation failed", name);
        wal_set_failed(w, msg);
        return wal_failed_err(w, errmsg);
    }
    w->durable_lsn = w->last_lsn;
    pthread_cond_broadcast(&w->cond);
    if (w->nsegs == w->capsegs) { /* make room first: nothing may fail after seg_create */
        rc = wal_seg_push(w, 0, 0, 0);
        if (rc != DV_OK) {
            wal_set_msg(errmsg, "wal: out of memory");
            return rc;
        }
        w->nsegs--;
    }
    uint64_t next = w->last_lsn + 1;
    bool fatal;
    int fd;
    rc = wal_seg_create(w, next, &fd, &fatal, errmsg);
    if (rc != DV_OK) {
        if (fatal)
            wal_set_failed(w, errmsg != NULL ? errmsg : "wal: segment creation failed");
        return rc;
    }
    w->io->close(w->io, w->fd);
    w->fd = fd;
    wal_seg_push(w, next, next - 1, SEG_HDR_SIZE);
    w->stats.rotations++;
    return DV_OK;
}

int wal_append(struct wal *w, uint8_t type, const void *body, size_t len, uint64_t *lsn,
               char *errmsg)
{
    if (type == 0) {
        wal_set_msg(errmsg, "wal: record type 0 is reserved");
        return DV_EINVAL;
    }
    if (len > w->opts.max_record) {
        wal_set_msg(errmsg, "wal: record of %zu bytes is over max_record (%u)", len,
                    w->opts.max_record);
        return DV_ETOOBIG;
    }
    if (len > 0 && body == NULL) {
        wal_set_msg(errmsg, "wal: NULL body of %zu bytes", len);
        return DV_EINVAL;
    }
    struct wal_scratch *sc = scratch_get(w, REC_HDR_SIZE + len);
    if (sc == NULL) {
        wal_set_msg(errmsg, "wal: out of memory for a record of %zu bytes", len);
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
            rc = wal_failed_err(w, errmsg);
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
        wal_seg_name(name, cur->first);
        int t = w->io->ftruncate(w->io, w->fd, (off_t)cur->size);
        wal_set_msg(errmsg,
                    "wal: %s: write of LSN %" PRIu64 " (%zu bytes) at offset %" PRIu64
                    " failed: %s%s",
                    name, l, total, cur->size, wal_errstr(wr, eb, sizeof eb),
                    t < 0 ? "; undoing it failed too" : "");
        if (t < 0)
            wal_set_failed(w, errmsg != NULL ? errmsg : "wal: undoing a failed write failed");
        /* A full disk is not a failing one: the next append may succeed once space is
         * freed, and callers answer it as such (DV_EFULL), not as a dead disk. */
        rc = t == 0 && io_err_full(wr) ? DV_EFULL : DV_EIO;
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
        wal_seg_name(name, w->segs[0].first);
        wal_seg_path(w->dir, w->segs[0].first, path, sizeof path);
        int u = w->io->unlink(w->io, path);
        if (u < 0 && u != -ENOENT) {
            rc = wal_os_fail(errmsg, u, "%s: cannot delete", name);
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
            rc = wal_os_fail(errmsg, d, "%s: fsync of the directory failed", w->dir);
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
        wal_set_msg(errmsg, "wal: out of memory");
        return DV_ENOMEM;
    }
    int rc = DV_OK;
    if (from_lsn < segs[0].first) {
        wal_set_msg(errmsg, "wal: LSN %" PRIu64 " was dropped (the oldest kept is %" PRIu64 ")",
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
        wal_seg_name(name, segs[i].first);
        if (segs[i].first > expect) {
            wal_set_msg(errmsg, "wal: records %" PRIu64 "..%" PRIu64 " are not in the WAL", expect,
                        segs[i].first - 1);
            rc = DV_ENOTFOUND;
            goto out;
        }
        struct scan s;
        rc = wal_scan_open(&s, w->io, w->dir, segs[i].first, errmsg);
        if (rc != DV_OK) {
            if (s.err == -ENOENT) {
                wal_set_msg(errmsg, "wal: %s was dropped while reading", name);
                rc = DV_ENOTFOUND;
            }
            goto out;
        }
        if (s.size > segs[i].size)
            s.size = segs[i].size; /* only what was appended when we started */
        uint64_t off = SEG_HDR_SIZE;
        while (expect <= upto) {
            struct rec r;
            int st = wal_rec_check(&s, off, &r);
            if (st == REC_END)
                break;
            if (st < 0) {
                rc = wal_os_fail(errmsg, st, "%s: read failed at offset %" PRIu64, name, off);
                break;
            }
            if (st != REC_OK || r.lsn > expect) {
                wal_set_msg(errmsg, "wal: %s: %s at offset %" PRIu64, name,
                            st != REC_OK ? wal_rec_state_str(st) : "unexpected LSN", off);
                rc = DV_ECORRUPT;
                break;
            }
            if (r.lsn == expect) {
                const void *body;
                rc = wal_rec_body(&s, &r, &body);
                if (rc != DV_OK) {
                    wal_set_msg(errmsg, "wal: %s: %s at offset %" PRIu64, name,
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
        wal_scan_release(&s);
        if (rc != DV_OK)
            goto out;
    }
out:
    free(segs);
    return rc;
}
