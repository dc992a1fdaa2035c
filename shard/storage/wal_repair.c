/* wal_repair.c - offline repair of a WAL directory: cut it after the last intact record. */
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

static int count_intact(struct scan *s, uint64_t off, uint64_t *count);

/* Truncates segment `first` of dir at `off` and fsyncs it. DV_OK or a DV_* code with errmsg. */
static int truncate_seg(struct io *io, const char *dir, uint64_t first, uint64_t off, char *errmsg)
{
    char path[4096], name[NAME_LEN + 1];
    wal_seg_path(dir, first, path, sizeof path);
    wal_seg_name(name, first);
    int fd = io->open(io, path, O_RDWR, 0);
    if (fd < 0)
        return wal_os_fail(errmsg, fd, "%s: cannot open", name);
    int rc = io->ftruncate(io, fd, (off_t)off);
    if (rc == 0)
        rc = io->fsync(io, fd);
    io->close(io, fd);
    if (rc < 0)
        return wal_os_fail(errmsg, rc, "%s: cannot truncate at offset %" PRIu64, name, off);
    return DV_OK;
}

/* ---- offline cut ------------------------------------------------------------------------- */

int wal_cut_after(struct io *io, const char *dir, uint64_t lsn, uint64_t *dropped, char *errmsg)
{
    uint64_t *firsts, gone = 0;
    size_t n;
    if (dropped)
        *dropped = 0;
    int rc = wal_list_segments(io, dir, &firsts, &n, errmsg);
    if (rc != DV_OK)
        return rc;
    char path[4096], name[NAME_LEN + 1];
    /* Segments that start after lsn go whole, the newest first (a crash leaves no hole). */
    size_t keep = n;
    while (keep > 0 && firsts[keep - 1] > lsn)
        keep--;
    for (size_t i = n; i-- > keep;) {
        struct scan s;
        rc = wal_scan_open(&s, io, dir, firsts[i], errmsg);
        if (rc != DV_OK)
            goto out;
        rc = count_intact(&s, SEG_HDR_SIZE, &gone);
        wal_scan_release(&s);
        wal_seg_path(dir, firsts[i], path, sizeof path);
        if (rc == 0)
            rc = io->unlink(io, path);
        if (rc < 0) {
            wal_seg_name(name, firsts[i]);
            rc = wal_os_fail(errmsg, rc, "%s: cannot delete", name);
            goto out;
        }
    }
    if (keep > 0) {
        /* The last kept segment may hold records after lsn: truncate at the first of them. */
        struct scan s;
        rc = wal_scan_open(&s, io, dir, firsts[keep - 1], errmsg);
        if (rc != DV_OK)
            goto out;
        uint64_t off = SEG_HDR_SIZE, cut = 0;
        for (;;) {
            struct rec r;
            int st = wal_rec_check(&s, off, &r);
            if (st < 0) {
                wal_scan_release(&s);
                rc = wal_os_fail(errmsg, st, "%s: read failed", dir);
                goto out;
            }
            if (st == REC_END)
                break;
            if (st != REC_OK) {
                wal_scan_release(&s);
                wal_seg_name(name, firsts[keep - 1]);
                wal_set_msg(errmsg, "wal: %s: %s at offset %" PRIu64 " (repair it first)", name,
                            wal_rec_state_str(st), off);
                rc = DV_ECORRUPT;
                goto out;
            }
            if (r.lsn > lsn) {
                if (cut == 0)
                    cut = off;
                gone++;
            }
            off = r.next;
        }
        wal_scan_release(&s);
        if (cut != 0 && (rc = truncate_seg(io, dir, firsts[keep - 1], cut, errmsg)) != DV_OK)
            goto out;
    }
    rc = io_fsync_dir(io, dir);
    if (rc < 0) {
        rc = wal_os_fail(errmsg, rc, "%s: fsync of the directory failed", dir);
        goto out;
    }
    if (dropped)
        *dropped = gone;
    rc = DV_OK;
out:
    free(firsts);
    return rc;
}

/* ---- offline repair ---------------------------------------------------------------------- */

/* Counts the intact records from `off` to the end of the scanned file. */
static int count_intact(struct scan *s, uint64_t off, uint64_t *count)
{
    for (;;) {
        uint64_t found;
        int rc = wal_probe_valid(s, off, 0, &found);
        if (rc < 0)
            return rc;
        if (found == UINT64_MAX)
            return 0;
        struct rec r;
        rc = wal_rec_check(s, found, &r);
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
    int rc = wal_list_segments(io, dir, &firsts, &n, errmsg);
    if (rc != DV_OK)
        return rc;
    size_t cut_seg = n;
    uint64_t cut_off = 0, prev = 0, dropped = 0;
    bool damaged = false; /* the cut starts on a record that lost its CRC */

    /* Find the first bad spot. */
    for (size_t i = 0; i < n && cut_seg == n; i++) {
        struct scan s;
        rc = wal_scan_open(&s, io, dir, firsts[i], errmsg);
        if (rc != DV_OK)
            goto out;
        uint64_t first;
        bool ok;
        rc = wal_seg_header_check(&s, &first, &ok);
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
                int st = wal_rec_check(&s, off, &r);
                if (st < 0) {
                    rc = st;
                    goto err_read;
                }
                if (st == REC_END)
                    break;
                if (st != REC_OK || r.lsn != expect) {
                    snprintf(why, sizeof why, "%s",
                             st != REC_OK ? wal_rec_state_str(st) : "unexpected LSN");
                    /* Something was written there (not preallocated zeros): it was a
                     * record, and it is dropped too. */
                    const uint8_t *z = NULL;
                    size_t zn = s.size - off < 4 ? (size_t)(s.size - off) : 4;
                    rc = wal_scan_get(&s, off, zn, &z);
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
                wal_scan_release(&s);
                continue;
            }
        }
        cut_seg = i;
        /* Count what the cut drops in this segment. */
        rc = count_intact(&s, cut_off == 0 ? SEG_HDR_SIZE : cut_off + (damaged ? 1 : 0), &dropped);
        wal_scan_release(&s);
        if (rc < 0) {
            rc = wal_os_fail(errmsg, rc, "%s: read failed", dir);
            goto out;
        }
        dropped += damaged ? 1 : 0;
        continue;
    err_read:
        wal_scan_release(&s);
        rc = wal_os_fail(errmsg, rc, "%s: read failed", dir);
        goto out;
    }
    if (cut_seg == n) {
        wal_set_msg(errmsg, "wal: %s: nothing to repair", dir);
        rc = DV_OK;
        goto out;
    }
    for (size_t i = cut_seg + 1; i < n; i++) {
        struct scan s;
        rc = wal_scan_open(&s, io, dir, firsts[i], errmsg);
        if (rc != DV_OK)
            goto out;
        rc = count_intact(&s, SEG_HDR_SIZE, &dropped);
        wal_scan_release(&s);
        if (rc < 0) {
            rc = wal_os_fail(errmsg, rc, "%s: read failed", dir);
            goto out;
        }
    }

    /* Cut: later segments first, so an interrupted repair never leaves a hole. */
    char path[4096], name[NAME_LEN + 1];
    for (size_t i = n; i-- > cut_seg + 1;) {
        wal_seg_path(dir, firsts[i], path, sizeof path);
        rc = io->unlink(io, path);
        if (rc < 0) {
            wal_seg_name(name, firsts[i]);
            rc = wal_os_fail(errmsg, rc, "%s: cannot delete", name);
            goto out;
        }
    }
    wal_seg_name(name, firsts[cut_seg]);
    wal_seg_path(dir, firsts[cut_seg], path, sizeof path);
    if (cut_off == 0) {
        rc = io->unlink(io, path);
        if (rc < 0) {
            rc = wal_os_fail(errmsg, rc, "%s: cannot delete", name);
            goto out;
        }
    } else if ((rc = truncate_seg(io, dir, firsts[cut_seg], cut_off, errmsg)) != DV_OK) {
        goto out;
    }
    rc = io_fsync_dir(io, dir);
    if (rc < 0) {
        rc = wal_os_fail(errmsg, rc, "%s: fsync of the directory failed", dir);
        goto out;
    }
    wal_set_msg(errmsg,
                "cut %s at offset %" PRIu64 ": %" PRIu64 " records after LSN %" PRIu64
                " dropped (%s)",
                name, cut_off, dropped, prev, why);
    log_warn("wal: repaired", "dir=%s what=%s", dir, errmsg != NULL ? errmsg : why);
    rc = DV_OK;
out:
    free(firsts);
    return rc;
}
