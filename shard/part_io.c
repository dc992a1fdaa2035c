/* part_io.c - a replica's files: meta, checkpoint writing and loading, stale-file cleanup. */
#include "part_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "crc32c.h"
#include "log.h"
#include "mpk.h"

const char *const part_ckpt_files[CKPT_NFILES] = {"graph.dvg", "vectors.dvv", "codes.dvq",
                                                  "ids.dvi", "payloads.dvp"};

#define META_MAGIC   "DVECMETA"
#define META_VERSION 1
#define META_MAX     (1u << 20)
#define FILE_MAGIC   "DVECCKPT"
#define FILE_VERSION 1
#define FILE_HEAD    4096 /* header block; the body starts page-aligned (mmap-able) */
#define ID_ENTRY     24
#define ID_NONE      0xff

/* ---- meta ------------------------------------------------------------------------------- */

int part_write_meta(struct part *p, bool *switched, char *errmsg)
{
    struct buf b = BUF_INIT;
    const struct hnsw_params *ip = &p->o.index;
    char path[4608];
    int e = buf_append(&b, META_MAGIC, 8);
    e |= buf_put_u32(&b, META_VERSION);
    e |= buf_put_u32(&b, 0); /* body length, patched below */
    size_t start = b.len;
    e |= mpw_map(&b, 11);
    e |= mpw_str(&b, "dim", 3) | mpw_u64(&b, ip->dim);
    e |= mpw_str(&b, "metric", 6) | mpw_u64(&b, (uint64_t)ip->metric);
    e |= mpw_str(&b, "m", 1) | mpw_u64(&b, ip->m);
    e |= mpw_str(&b, "ef_construction", 15) | mpw_u64(&b, ip->ef_construction);
    e |= mpw_str(&b, "ef_search", 9) | mpw_u64(&b, ip->ef_search);
    e |= mpw_str(&b, "sq8", 3) | mpw_bool(&b, ip->sq8);
    e |= mpw_str(&b, "seed", 4) | mpw_u64(&b, ip->seed);
    e |= mpw_str(&b, "capacity", 8) | mpw_u64(&b, ip->capacity);
    e |= mpw_str(&b, "ckpt", 4) | mpw_str(&b, p->ckpt_name, strlen(p->ckpt_name));
    e |= mpw_str(&b, "ckpt_lsn", 8) | mpw_u64(&b, p->ckpt_lsn);
    e |= mpw_str(&b, "indexes", 7) | mpw_array(&b, (uint32_t)p->n_pidx);
    for (size_t i = 0; i < p->n_pidx; i++) {
        e |= mpw_array(&b, 2);
        e |= mpw_str(&b, p->pdefs[i].key, strlen(p->pdefs[i].key));
        e |= mpw_u64(&b, (uint64_t)p->pdefs[i].kind);
    }
    if (e == DV_OK) {
        buf_wr_le32(b.data + 12, (uint32_t)(b.len - start));
        e = buf_put_u32(&b, crc32c(b.data, b.len));
    }
    if (e != DV_OK) {
        buf_free(&b);
        return DV_ENOMEM;
    }
    /* tmp + fsync + rename + fsync(dir); *switched tells whether the rename happened, since
     * after it the new meta may be what a restart reads even if a later step failed. */
    char tmp[4700];
    snprintf(path, sizeof path, "%s/%s", p->dir, PART_META);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    *switched = false;
    int rc = 0, fd = p->io->open(p->io, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        rc = fd;
    if (rc == 0)
        rc = io_write_all(p->io, fd, b.data, b.len, 0);
    if (rc == 0)
        rc = p->io->fsync(p->io, fd);
    if (fd >= 0)
        p->io->close(p->io, fd);
    if (rc == 0)
        rc = p->io->rename(p->io, tmp, path);
    buf_free(&b);
    if (rc < 0) {
        p->io->unlink(p->io, tmp);
        dv_errmsg_set(errmsg, "%s: cannot write: %s", PART_META, strerror(-rc));
        return DV_EIO;
    }
    *switched = true;
    rc = io_fsync_dir(p->io, p->dir);
    if (rc < 0) {
        dv_errmsg_set(errmsg, "%s: fsync of the directory: %s", PART_META, strerror(-rc));
        return DV_EIO;
    }
    return DV_OK;
}

static int meta_field(struct mpk *r, const char *key, uint32_t kl, struct part *p, char *errmsg)
{
    struct hnsw_params *ip = &p->o.index;
    uint64_t v = 0;
#define IS(name) (kl == strlen(name) && memcmp(key, name, kl) == 0)
    if (IS("ckpt")) {
        const char *s;
        uint32_t sl;
        if (mpk_str(r, &s, &sl) || sl >= sizeof p->ckpt_name)
            return DV_ECORRUPT;
        memcpy(p->ckpt_name, s, sl);
        p->ckpt_name[sl] = '\0';
        return DV_OK;
    }
    if (IS("sq8")) {
        bool b;
        if (mpk_bool(r, &b))
            return DV_ECORRUPT;
        ip->sq8 = b;
        return DV_OK;
    }
    if (IS("indexes")) {
        uint32_t n;
        if (mpk_array(r, &n))
            return DV_ECORRUPT;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t two, sl;
            const char *s;
            char k[1024];
            if (mpk_array(r, &two) || two != 2 || mpk_str(r, &s, &sl) || sl >= sizeof k ||
                mpk_u64(r, &v) || v > 1)
                return DV_ECORRUPT;
            memcpy(k, s, sl);
            k[sl] = '\0';
            int rc = part_add_pindex(p, k, (enum pindex_kind)v, errmsg);
            if (rc != DV_OK)
                return rc;
        }
        return DV_OK;
    }
    if (mpk_u64(r, &v))
        return mpk_skip(r) == DV_OK ? DV_OK : DV_ECORRUPT; /* unknown type: newer field */
    if (IS("dim"))
        ip->dim = (uint32_t)v;
    else if (IS("metric"))
        ip->metric = (enum hnsw_metric)v;
    else if (IS("m"))
        ip->m = (uint32_t)v;
    else if (IS("ef_construction"))
        ip->ef_construction = (uint32_t)v;
    else if (IS("ef_search"))
        ip->ef_search = (uint32_t)v;
    else if (IS("seed"))
        ip->seed = v;
    else if (IS("capacity"))
        ip->capacity = (uint32_t)v;
    else if (IS("ckpt_lsn"))
        p->ckpt_lsn = v;
#undef IS
    return DV_OK;
}

int part_read_meta(struct part *p, char *errmsg)
{
    char path[4608];
    void *data;
    size_t n;
    snprintf(path, sizeof path, "%s/%s", p->dir, PART_META);
    int rc = io_read_file(p->io, path, META_MAX, &data, &n);
    if (rc < 0) {
        dv_errmsg_set(errmsg, "%s: %s", PART_META, strerror(-rc));
        return rc == -ENOENT ? DV_ENOTFOUND : DV_EIO;
    }
    const uint8_t *b = data;
    rc = DV_ECORRUPT;
    if (n < 20 || memcmp(b, META_MAGIC, 8) != 0) {
        dv_errmsg_set(errmsg, "%s: not a dvec meta file (bad magic)", PART_META);
        goto out;
    }
    uint32_t version = buf_rd_le32(b + 8), len = buf_rd_le32(b + 12);
    if (version != META_VERSION) {
        dv_errmsg_set(errmsg, "%s: version %u, this build reads %u", PART_META, version,
                      META_VERSION);
        goto out;
    }
    if ((size_t)len + 20 != n || crc32c(b, n - 4) != buf_rd_le32(b + n - 4)) {
        dv_errmsg_set(errmsg, "%s: checksum mismatch (file damaged)", PART_META);
        goto out;
    }
    struct mpk r;
    uint32_t nf;
    mpk_init(&r, b + 16, len);
    p->o.index.seed = 42;
    if (mpk_map(&r, &nf) != DV_OK)
        goto bad;
    for (uint32_t i = 0; i < nf; i++) {
        const char *key;
        uint32_t kl;
        if (mpk_str(&r, &key, &kl) != DV_OK)
            goto bad;
        rc = meta_field(&r, key, kl, p, errmsg);
        if (rc != DV_OK)
            goto out;
    }
    rc = DV_OK;
    goto out;
bad:
    dv_errmsg_set(errmsg, "%s: body does not decode", PART_META);
    rc = DV_ECORRUPT;
out:
    free(data);
    return rc;
}

/* ---- checkpoint files ------------------------------------------------------------------- */

#define FW_BUF (1u << 20)

/* A piece of a checkpoint file captured in memory. */
struct chunk {
    struct chunk *next;
    size_t len, cap;
    uint8_t *data;
    bool mapped; /* data is an mmap of cap bytes (pre-faulted), else part of this malloc */
};

static void chunk_free(struct chunk *c)
{
    if (c->mapped)
        munmap(c->data, c->cap);
    free(c);
}

/*
 * A chunk of about `bytes`, its pages touched before writers are held back, so the capture
 * itself is a plain memory copy (page faults on fresh memory cost more than the copy).
 */
static struct chunk *chunk_prefault(size_t bytes)
{
    struct chunk *c = malloc(sizeof *c);
    if (c == NULL || bytes == 0) {
        free(c);
        return NULL;
    }
    bytes = (bytes + 4095) & ~(size_t)4095;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        free(c);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(m, bytes, MADV_HUGEPAGE);
#endif
    for (size_t off = 0; off < bytes; off += 4096)
        ((volatile uint8_t *)m)[off] = 0;
    *c = (struct chunk){NULL, 0, bytes, m, true};
    return c;
}

/*
 * A checkpoint file being written. While writers are held back the bytes are only copied
 * into memory chunks (a memory copy, the shortest possible pause); fw_drain() writes them to
 * the file after writers resumed. When memory for a copy cannot be had, the file falls back
 * to writing directly (a longer pause, same result).
 */
struct fw {
    int fd;
    uint64_t len; /* body bytes accepted */
    uint32_t crc;
    int err; /* -errno of the first failure */
    struct chunk *head, *tail;
    bool direct;
    uint64_t done; /* body bytes written to the file */
};

static int fw_raw(struct part *p, struct fw *f, const void *buf, size_t n)
{
    int rc = io_write_all(p->io, f->fd, buf, n, (off_t)(FILE_HEAD + f->done));
    if (rc < 0) {
        f->err = rc;
        return DV_EIO;
    }
    f->done += n;
    return DV_OK;
}

/* Writes and frees the captured chunks, in order. */
static int fw_drain(struct part *p, struct fw *f)
{
    while (f->head != NULL) {
        struct chunk *c = f->head;
        if (!f->err && c->len > 0)
            fw_raw(p, f, c->data, c->len);
        f->head = c->next;
        chunk_free(c);
    }
    f->tail = NULL;
    return f->err ? DV_EIO : DV_OK;
}

static int fw_write(struct part *p, struct fw *f, const void *buf, size_t n)
{
    if (f->err)
        return DV_EIO;
    f->crc = crc32c_update(f->crc, buf, n);
    f->len += n;
    if (!f->direct) {
        if (f->tail != NULL && f->tail->cap - f->tail->len >= n) {
            memcpy(f->tail->data + f->tail->len, buf, n);
            f->tail->len += n;
            return DV_OK;
        }
        size_t cap = n > FW_BUF ? n : FW_BUF;
        struct chunk *c = malloc(sizeof *c + cap);
        if (c != NULL) {
            c->next = NULL;
            c->len = n;
            c->cap = cap;
            c->data = (uint8_t *)(c + 1);
            c->mapped = false;
            memcpy(c->data, buf, n);
            if (f->tail != NULL)
                f->tail->next = c;
            else
                f->head = c;
            f->tail = c;
            return DV_OK;
        }
        f->direct = true;
        if (fw_drain(p, f) != DV_OK)
            return DV_EIO;
    }
    return fw_raw(p, f, buf, n);
}

static int fw_header(struct part *p, struct fw *f, uint32_t kind, uint64_t lsn, uint64_t slots)
{
    uint8_t h[FILE_HEAD];
    memset(h, 0, sizeof h);
    memcpy(h, FILE_MAGIC, 8);
    buf_wr_le32(h + 8, FILE_VERSION);
    buf_wr_le32(h + 12, kind);
    buf_wr_le64(h + 16, lsn);
    buf_wr_le64(h + 24, f->len);
    buf_wr_le32(h + 32, f->crc);
    buf_wr_le32(h + 36, p->o.index.dim);
    buf_wr_le64(h + 40, slots);
    buf_wr_le32(h + 60, crc32c(h, 60));
    if (fw_drain(p, f) != DV_OK)
        return DV_EIO;
    int rc = io_write_all(p->io, f->fd, h, sizeof h, 0);
    if (rc < 0) {
        f->err = rc;
        return DV_EIO;
    }
    return DV_OK;
}

struct save_ctx {
    struct part *p;
    struct fw *fw;
};

static int save_part_cb(void *arg, enum hnsw_part part, const void *buf, size_t n)
{
    struct save_ctx *c = arg;
    return fw_write(c->p, &c->fw[part], buf, n);
}

/* Writes ids and payloads of every slot (caller holds wmu: no writer changes them). */
static int write_ids_payloads(struct part *p, struct fw *fi, struct fw *fp)
{
    uint8_t chunk[64 * ID_ENTRY * 16];
    size_t used = 0;
    int rc = DV_OK;
    for (size_t s = 0; s < p->cap && rc == DV_OK; s++) {
        uint8_t *e = chunk + used;
        memset(e, 0, ID_ENTRY);
        if (p->pub[s]) {
            e[0] = p->ids[s].kind;
            buf_wr_le64(e + 8, p->ids[s].hi);
            buf_wr_le64(e + 16, p->ids[s].lo);
            const struct blob *b = p->pay[s];
            if (b != NULL) {
                uint8_t h[8];
                buf_wr_le32(h, (uint32_t)s);
                buf_wr_le32(h + 4, b->len);
                rc = fw_write(p, fp, h, sizeof h);
                if (rc == DV_OK)
                    rc = fw_write(p, fp, b->data, b->len);
            }
        } else {
            e[0] = ID_NONE;
        }
        used += ID_ENTRY;
        if (used == sizeof chunk) {
            if (rc == DV_OK)
                rc = fw_write(p, fi, chunk, used);
            used = 0;
        }
    }
    if (rc == DV_OK && used > 0)
        rc = fw_write(p, fi, chunk, used);
    return rc;
}

int part_checkpoint(struct part *p, char *errmsg)
{
    char name[64], dir[4096], path[4096], old[64] = "";
    struct fw fw[CKPT_NFILES];
    uint64_t t0, t1, lsn, old_lsn = 0;
    bool made_dir = false;
    struct hnsw_info hi = {0};
    uint64_t id_slots = 0;
    int rc = DV_OK;

    errmsg[0] = '\0';
    for (int i = 0; i < CKPT_NFILES; i++) {
        fw[i] = (struct fw){-1, 0, 0, 0, NULL, NULL, false, 0};
    }
    pthread_mutex_lock(&p->ckpt_mu);
    /* Memory for the capture, sized from the current state with some room for growth. */
    if (__atomic_load_n(&p->applied_lsn, __ATOMIC_ACQUIRE) !=
        __atomic_load_n(&p->ckpt_lsn, __ATOMIC_ACQUIRE)) {
        struct hnsw_info pi;
        hnsw_get_info(p->ix, &pi);
        size_t room = (size_t)(pi.slots + pi.slots / 16 + 1024);
        size_t est[CKPT_NFILES] = {
            128 + 16 * (size_t)pi.dim + 4 + room * (7 + (2 * (size_t)pi.m + 1) * 4) +
                room / 4 * ((size_t)pi.m + 1) * 4,
            room * pi.dim * sizeof(float),
            pi.sq8_ready ? room * pi.dim : 0,
            0,
            0,
        };
        pthread_rwlock_rdlock(&p->rw);
        est[CKPT_IDS] = (p->cap + p->cap / 16 + 1024) * ID_ENTRY;
        est[CKPT_PAYLOADS] = p->payload_bytes + p->payload_bytes / 8 + room * 8;
        pthread_rwlock_unlock(&p->rw);
        for (int i = 0; i < CKPT_NFILES; i++) {
            if (est[i] >= FW_BUF && (fw[i].head = chunk_prefault(est[i])) != NULL)
                fw[i].tail = fw[i].head;
        }
    }
    t0 = p->io->now_ns(p->io);
    pthread_mutex_lock(&p->maint_mu);
    pthread_mutex_lock(&p->wmu);
    lsn = __atomic_load_n(&p->applied_lsn, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&p->failed, __ATOMIC_ACQUIRE)) {
        dv_errmsg_set(errmsg, "no checkpoint of a failed replica (%s)", p->fail_msg);
        rc = DV_EIO;
        goto out_unlock;
    }
    if (lsn == p->ckpt_lsn && (p->ckpt_name[0] != '\0' || lsn == 0))
        goto out_unlock; /* nothing new */
    snprintf(name, sizeof name, "ckpt-%020llu", (unsigned long long)lsn);
    snprintf(dir, sizeof dir, "%s/%s", p->dir, name);
    io_remove_dir(p->io, dir); /* a leftover of a checkpoint that crashed */
    int e = p->io->mkdir(p->io, dir, 0755);
    if (e < 0) {
        dv_errmsg_set(errmsg, "checkpoint: mkdir %s: %s", name, strerror(-e));
        rc = DV_EIO;
        goto out_unlock;
    }
    made_dir = true;
    for (int i = 0; i < CKPT_NFILES && rc == DV_OK; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, part_ckpt_files[i]) >= (int)sizeof path)
            rc = DV_EINVAL;
        fw[i].fd = p->io->open(p->io, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fw[i].fd < 0) {
            fw[i].err = fw[i].fd;
            rc = DV_EIO;
        }
    }
    struct save_ctx sc = {p, fw};
    if (rc == DV_OK)
        rc = hnsw_save(p->ix, save_part_cb, &sc);
    if (rc == DV_OK)
        rc = write_ids_payloads(p, &fw[CKPT_IDS], &fw[CKPT_PAYLOADS]);
    hnsw_get_info(p->ix, &hi);
    id_slots = p->cap;
out_unlock:
    pthread_mutex_unlock(&p->wmu);
    pthread_mutex_unlock(&p->maint_mu);
    t1 = p->io->now_ns(p->io);
    if (rc != DV_OK || !made_dir)
        goto out_files;

    /* Writers run again: write the captured bytes, make the files durable, switch the meta. */
    for (int i = 0; i < CKPT_NFILES && rc == DV_OK; i++)
        rc = fw_header(p, &fw[i], (uint32_t)i, lsn, i == CKPT_IDS ? id_slots : hi.slots);
    for (int i = 0; i < CKPT_NFILES && rc == DV_OK; i++) {
        e = p->io->fsync(p->io, fw[i].fd);
        if (e < 0) {
            fw[i].err = e;
            rc = DV_EIO;
        }
    }
    if (rc == DV_OK &&
        ((e = io_fsync_dir(p->io, dir)) < 0 || (e = io_fsync_dir(p->io, p->dir)) < 0)) {
        dv_errmsg_set(errmsg, "checkpoint: fsync of directory: %s", strerror(-e));
        rc = DV_EIO;
    }
    if (rc == DV_OK) {
        snprintf(old, sizeof old, "%s", p->ckpt_name);
        old_lsn = p->ckpt_lsn;
        snprintf(p->ckpt_name, sizeof p->ckpt_name, "%s", name);
        __atomic_store_n(&p->ckpt_lsn, lsn, __ATOMIC_RELEASE);
        bool switched;
        pthread_rwlock_rdlock(&p->rw); /* index definitions as of now (>= lsn: harmless) */
        rc = part_write_meta(p, &switched, errmsg);
        pthread_rwlock_unlock(&p->rw);
        if (rc != DV_OK && !switched) {
            snprintf(p->ckpt_name, sizeof p->ckpt_name, "%s", old);
            __atomic_store_n(&p->ckpt_lsn, old_lsn, __ATOMIC_RELEASE);
        } else if (rc != DV_OK) {
            /* A restart may read the old or the new meta: keep both checkpoints (the next
             * open removes the one its meta does not name) and the WAL. */
            made_dir = false;
            pthread_mutex_unlock(&p->ckpt_mu);
            for (int i = 0; i < CKPT_NFILES; i++) {
                fw_drain(p, &fw[i]);
                if (fw[i].fd >= 0)
                    p->io->close(p->io, fw[i].fd);
            }
            return rc;
        }
    }
out_files:
    for (int i = 0; i < CKPT_NFILES; i++) {
        fw[i].err = fw[i].err ? fw[i].err : -ECANCELED; /* drop what was not written */
        fw_drain(p, &fw[i]);
        if (fw[i].err == -ECANCELED)
            fw[i].err = 0;
        if (fw[i].fd >= 0)
            p->io->close(p->io, fw[i].fd);
        if (fw[i].err && errmsg[0] == '\0')
            dv_errmsg_set(errmsg, "checkpoint: %s: %s", part_ckpt_files[i], strerror(-fw[i].err));
    }
    if (rc != DV_OK) {
        if (made_dir)
            io_remove_dir(p->io, dir);
        if (errmsg[0] == '\0')
            dv_errmsg_set(errmsg, "checkpoint: %s", dv_strerror(rc));
        pthread_mutex_unlock(&p->ckpt_mu);
        return rc;
    }
    if (!made_dir) { /* nothing new */
        pthread_mutex_unlock(&p->ckpt_mu);
        return DV_OK;
    }
    /* The old checkpoint and the WAL it covers are no longer needed, except the records a
     * peer copying the replica still has to read (part_hold_wal). */
    char werr[DV_ERRMSG_SIZE];
    uint64_t drop = lsn, hold = __atomic_load_n(&p->wal_hold, __ATOMIC_ACQUIRE);
    if (hold != 0 && hold - 1 < drop)
        drop = hold - 1;
    if (wal_drop_before(p->wal, drop, werr) != DV_OK)
        log_warn("checkpoint: WAL segments not dropped", "dir=%s cause=\"%s\"", p->dir, werr);
    if (old[0] != '\0') {
        snprintf(dir, sizeof dir, "%s/%s", p->dir, old);
        io_remove_dir(p->io, dir);
    }
    uint64_t t2 = p->io->now_ns(p->io);
    __atomic_store_n(&p->ckpt_at_ns, t2, __ATOMIC_RELEASE);
    __atomic_fetch_add(&p->ckpt_count, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&p->ckpt_last_ms, (t2 - t0) / 1000000, __ATOMIC_RELAXED);
    __atomic_store_n(&p->ckpt_stall_ms, (t1 - t0) / 1000000, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&p->ckpt_mu);
    /* From t0..t2, not from p: the next checkpoint may be updating those already. */
    log_info("checkpoint written", "dir=%s lsn=%llu ms=%llu writes_paused_ms=%llu", p->dir,
             (unsigned long long)lsn, (unsigned long long)((t2 - t0) / 1000000),
             (unsigned long long)((t1 - t0) / 1000000));
    return DV_OK;
}

/* ---- loading ------------------------------------------------------------------------------ */

#define FR_BUF (1u << 20)

/* A checkpoint file being read: small reads are served from a 1 MiB buffer. */
struct fr {
    int fd;
    uint64_t len, pos; /* body length and bytes consumed */
    uint32_t crc, want_crc;
    uint64_t slots;
    const char *name;
    uint8_t *buf; /* may be NULL: unbuffered */
    size_t blen, bpos;
    uint64_t fpos; /* body bytes read from the file */
};

static int fr_open(struct part *p, const char *dir, int kind, uint64_t lsn, struct fr *f,
                   char *errmsg)
{
    char path[4608];
    uint8_t h[64];
    f->name = part_ckpt_files[kind];
    snprintf(path, sizeof path, "%s/%s", dir, f->name);
    f->fd = p->io->open(p->io, path, O_RDONLY, 0);
    if (f->fd < 0) {
        dv_errmsg_set(errmsg, "%s: cannot open: %s", f->name, strerror(-f->fd));
        return f->fd == -ENOENT ? DV_ECORRUPT : DV_EIO;
    }
    ssize_t r = io_read_full(p->io, f->fd, h, sizeof h, 0);
    if (r < 0) {
        dv_errmsg_set(errmsg, "%s: read: %s", f->name, strerror((int)-r));
        return DV_EIO;
    }
    if (r < (ssize_t)sizeof h || memcmp(h, FILE_MAGIC, 8) != 0 ||
        crc32c(h, 60) != buf_rd_le32(h + 60)) {
        dv_errmsg_set(errmsg, "%s: bad header at offset 0 (file damaged)", f->name);
        return DV_ECORRUPT;
    }
    if (buf_rd_le32(h + 8) != FILE_VERSION || buf_rd_le32(h + 12) != (uint32_t)kind ||
        buf_rd_le64(h + 16) != lsn || buf_rd_le32(h + 36) != p->o.index.dim) {
        dv_errmsg_set(errmsg, "%s: header does not belong to this checkpoint", f->name);
        return DV_ECORRUPT;
    }
    f->len = buf_rd_le64(h + 24);
    f->want_crc = buf_rd_le32(h + 32);
    f->slots = buf_rd_le64(h + 40);
    f->pos = 0;
    f->crc = 0;
    f->blen = f->bpos = 0;
    f->fpos = 0;
    off_t size;
    if (p->io->fsize(p->io, f->fd, &size) < 0 || (uint64_t)size != FILE_HEAD + f->len) {
        dv_errmsg_set(errmsg, "%s: %lld bytes, header says %llu (truncated or extended)", f->name,
                      (long long)size, (unsigned long long)(FILE_HEAD + f->len));
        return DV_ECORRUPT;
    }
    return DV_OK;
}

static int fr_pread(struct part *p, struct fr *f, void *buf, size_t n, char *errmsg)
{
    ssize_t r = io_read_full(p->io, f->fd, buf, n, (off_t)(FILE_HEAD + f->fpos));
    if (r < 0 || (size_t)r != n) {
        dv_errmsg_set(errmsg, "%s: read at offset %llu: %s", f->name,
                      (unsigned long long)(FILE_HEAD + f->fpos),
                      r < 0 ? strerror((int)-r) : "short");
        return r < 0 ? DV_EIO : DV_ECORRUPT;
    }
    f->fpos += n;
    return DV_OK;
}

static int fr_read(struct part *p, struct fr *f, void *buf, size_t n, char *errmsg)
{
    uint8_t *d = buf;
    size_t left = n;
    if (f->pos + n > f->len) {
        dv_errmsg_set(errmsg, "%s: body ends at offset %llu, %zu more bytes expected", f->name,
                      (unsigned long long)(FILE_HEAD + f->len), n);
        return DV_ECORRUPT;
    }
    while (left > 0) {
        int rc;
        if (f->bpos < f->blen) {
            size_t take = f->blen - f->bpos < left ? f->blen - f->bpos : left;
            memcpy(d, f->buf + f->bpos, take);
            f->bpos += take;
            d += take;
            left -= take;
        } else if (f->buf == NULL || left >= FR_BUF / 4) {
            if ((rc = fr_pread(p, f, d, left, errmsg)) != DV_OK)
                return rc;
            left = 0;
        } else {
            size_t want = f->len - f->fpos < FR_BUF ? (size_t)(f->len - f->fpos) : FR_BUF;
            if ((rc = fr_pread(p, f, f->buf, want, errmsg)) != DV_OK)
                return rc;
            f->blen = want;
            f->bpos = 0;
        }
    }
    f->crc = crc32c_update(f->crc, buf, n);
    f->pos += n;
    return DV_OK;
}

/* The whole body was read and its checksum matches. */
static int fr_finish(struct fr *f, char *errmsg)
{
    if (f->pos != f->len) {
        dv_errmsg_set(errmsg, "%s: %llu bytes of body left over at offset %llu", f->name,
                      (unsigned long long)(f->len - f->pos),
                      (unsigned long long)(FILE_HEAD + f->pos));
        return DV_ECORRUPT;
    }
    if (f->crc != f->want_crc) {
        dv_errmsg_set(errmsg, "%s: checksum mismatch in the body (offset %d..%llu, damaged)",
                      f->name, FILE_HEAD, (unsigned long long)(FILE_HEAD + f->len));
        return DV_ECORRUPT;
    }
    return DV_OK;
}

struct load_ctx {
    struct part *p;
    struct fr *fr;
    char *errmsg;
    enum hnsw_part last; /* the part read last: the file an index error is about */
};

static int load_part_cb(void *arg, enum hnsw_part part, void *buf, size_t n)
{
    struct load_ctx *c = arg;
    c->last = part;
    return fr_read(c->p, &c->fr[part], buf, n, c->errmsg);
}

static int load_ids_payloads(struct part *p, struct fr *fi, struct fr *fp, char *errmsg)
{
    uint8_t e[ID_ENTRY];
    int rc = DV_OK;
    if (fi->len != fi->slots * ID_ENTRY) {
        dv_errmsg_set(errmsg, "%s: %llu bytes for %llu slots", fi->name,
                      (unsigned long long)fi->len, (unsigned long long)fi->slots);
        return DV_ECORRUPT;
    }
    if ((rc = part_reserve_slots(p, fi->slots)) != DV_OK)
        return rc;
    struct hnsw_info hi;
    hnsw_get_info(p->ix, &hi);
    if ((rc = idmap_reserve(&p->map, p->ids, hi.live)) != DV_OK)
        return rc;
    for (uint64_t s = 0; s < fi->slots; s++) {
        if ((rc = fr_read(p, fi, e, sizeof e, errmsg)) != DV_OK)
            return rc;
        if (e[0] == ID_NONE)
            continue;
        if (e[0] > PID_UUID || !hnsw_is_live(p->ix, (uint32_t)s)) {
            dv_errmsg_set(errmsg, "%s: slot %llu: bad id entry (offset %llu)", fi->name,
                          (unsigned long long)s, (unsigned long long)(FILE_HEAD + s * ID_ENTRY));
            return DV_ECORRUPT;
        }
        p->ids[s].kind = e[0];
        p->ids[s].hi = buf_rd_le64(e + 8);
        p->ids[s].lo = buf_rd_le64(e + 16);
        if (idmap_get(&p->map, p->ids, &p->ids[s]) != IDMAP_EMPTY) {
            dv_errmsg_set(errmsg, "%s: slot %llu: duplicate id", fi->name, (unsigned long long)s);
            return DV_ECORRUPT;
        }
        if ((rc = idmap_put(&p->map, p->ids, (uint32_t)s)) != DV_OK)
            return rc;
        p->pub[s] = 1;
    }
    if ((rc = fr_finish(fi, errmsg)) != DV_OK)
        return rc;
    if (hi.live != p->map.n) {
        dv_errmsg_set(errmsg, "%s: %zu ids for %llu live vectors", fi->name, p->map.n,
                      (unsigned long long)hi.live);
        return DV_ECORRUPT;
    }
    while (fp->pos < fp->len) {
        uint8_t h[8];
        uint64_t at = FILE_HEAD + fp->pos;
        if ((rc = fr_read(p, fp, h, sizeof h, errmsg)) != DV_OK)
            return rc;
        uint32_t s = buf_rd_le32(h), len = buf_rd_le32(h + 4);
        if (s >= p->cap || !p->pub[s] || p->pay[s] != NULL || len > fp->len - fp->pos) {
            dv_errmsg_set(errmsg, "%s: bad payload entry at offset %llu", fp->name,
                          (unsigned long long)at);
            return DV_ECORRUPT;
        }
        struct blob *b = malloc(sizeof *b + len);
        if (b == NULL)
            return DV_ENOMEM;
        b->len = len;
        if ((rc = fr_read(p, fp, b->data, len, errmsg)) != DV_OK) {
            free(b);
            return rc;
        }
        p->pay[s] = b;
        p->payload_bytes += len;
    }
    return fr_finish(fp, errmsg);
}

int part_load_ckpt(struct part *p, char *errmsg)
{
    struct fr fr[CKPT_NFILES];
    char dir[4096];
    int rc = DV_OK;

    if (p->ckpt_name[0] == '\0') {
        rc = hnsw_create(&p->o.index, &p->ix);
        if (rc != DV_OK)
            dv_errmsg_set(errmsg, "cannot create the index: %s", dv_strerror(rc));
        return rc;
    }
    snprintf(dir, sizeof dir, "%s/%s", p->dir, p->ckpt_name);
    for (int i = 0; i < CKPT_NFILES; i++) {
        fr[i].fd = -1;
        fr[i].buf = i >= CKPT_IDS ? malloc(FR_BUF) : NULL;
    }
    for (int i = 0; i < CKPT_NFILES && rc == DV_OK; i++)
        rc = fr_open(p, dir, i, p->ckpt_lsn, &fr[i], errmsg);
    if (rc == DV_OK) {
        struct load_ctx lc = {p, fr, errmsg, HNSW_PART_GRAPH};
        rc = hnsw_load(&p->o.index, load_part_cb, &lc, &p->ix, errmsg);
        if (rc != DV_OK && strstr(errmsg, ".dv") == NULL)
            dv_errmsg_prefix(errmsg, "%s", part_ckpt_files[lc.last]);
    }
    for (int i = CKPT_GRAPH; i <= CKPT_CODES && rc == DV_OK; i++)
        rc = fr_finish(&fr[i], errmsg);
    if (rc == DV_OK) {
        /* payload indexes were created from the meta file; fill them now */
        rc = load_ids_payloads(p, &fr[CKPT_IDS], &fr[CKPT_PAYLOADS], errmsg);
    }
    for (size_t i = 0; i < p->n_pidx && rc == DV_OK; i++)
        for (size_t s = 0; s < p->cap && rc == DV_OK; s++)
            if (p->pay[s] != NULL)
                rc = pindex_add(p->pidx[i], (uint32_t)s, p->pay[s]->data, p->pay[s]->len);
    for (int i = 0; i < CKPT_NFILES; i++) {
        free(fr[i].buf);
        if (fr[i].fd >= 0)
            p->io->close(p->io, fr[i].fd);
    }
    if (rc != DV_OK)
        dv_errmsg_prefix(errmsg, "%s", p->ckpt_name);
    return rc;
}

void part_remove_stale(struct part *p)
{
    char **names;
    size_t n;
    char path[4608];
    if (p->io->list(p->io, p->dir, &names, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", p->dir, names[i]);
        size_t l = strlen(names[i]);
        if (strncmp(names[i], "ckpt-", 5) == 0 && strcmp(names[i], p->ckpt_name) != 0) {
            io_remove_dir(p->io, path);
            log_info("removed an unused checkpoint", "dir=%s name=%s", p->dir, names[i]);
        } else if (l > 4 && strcmp(names[i] + l - 4, ".tmp") == 0) {
            p->io->unlink(p->io, path);
        }
    }
    io_free_list(names, n);
}
