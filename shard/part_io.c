/* part_io.c - a replica's files: the meta file, writing checkpoints, stale-file cleanup. */
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

size_t part_ckpt_list(const struct part *p, bool legacy, struct ckfile *f)
{
    size_t n = 0;
    uint32_t dim0 = p->nsp > 0 ? p->sp[0].def.index.dim : 0;
    if (legacy) { /* the format before vector spaces: one dense space, slots shared */
        static const char *const names[] = {"graph.dvg", "vectors.dvv", "codes.dvq", "ids.dvi",
                                            "payloads.dvp"};
        static const uint8_t roles[] = {CK_GRAPH, CK_VECTORS, CK_CODES, CK_IDS, CK_PAYLOADS};
        for (size_t i = 0; i < 5; i++) {
            snprintf(f[i].name, sizeof f[i].name, "%s", names[i]);
            f[i].role = roles[i];
            f[i].space = 0;
            f[i].dim = dim0;
        }
        return 5;
    }
    f[n++] = (struct ckfile){"ids.dvi", CK_IDS, 0, 0};
    f[n++] = (struct ckfile){"payloads.dvp", CK_PAYLOADS, 0, 0};
    for (uint32_t i = 0; i < p->nsp; i++) {
        uint32_t dim = p->sp[i].def.index.dim;
        if (p->sp[i].def.kind == PART_VEC_DENSE) {
            static const char *const ext[] = {"graph-%u.dvg", "vectors-%u.dvv", "codes-%u.dvq",
                                              "vmap-%u.dvm"};
            static const uint8_t roles[] = {CK_GRAPH, CK_VECTORS, CK_CODES, CK_VMAP};
            for (size_t k = 0; k < 4; k++) {
                snprintf(f[n].name, sizeof f[n].name, ext[k], i);
                f[n].role = roles[k];
                f[n].space = i;
                f[n].dim = dim;
                n++;
            }
        } else {
            snprintf(f[n].name, sizeof f[n].name, "vecs-%u.dvb", i);
            f[n].role = CK_BLOBS;
            f[n].space = i;
            f[n].dim = dim;
            n++;
        }
    }
    return n;
}

#define META_MAGIC   "DVECMETA"
#define META_VERSION 1
#define META_MAX     (1u << 20)

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
    e |= mpw_map(&b, 12);
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
    e |= mpw_str(&b, "spaces", 6) | mpw_array(&b, p->nsp);
    for (uint32_t i = 0; i < p->nsp; i++) {
        const struct part_space *d = &p->sp[i].def;
        e |= mpw_array(&b, 11);
        e |= mpw_str(&b, d->name, strlen(d->name)) | mpw_u64(&b, (uint64_t)d->kind);
        e |= mpw_u64(&b, d->index.dim) | mpw_u64(&b, (uint64_t)d->index.metric);
        e |= mpw_u64(&b, d->index.m) | mpw_u64(&b, d->index.ef_construction);
        e |= mpw_u64(&b, d->index.ef_search) | mpw_bool(&b, d->index.sq8);
        e |= mpw_u64(&b, d->index.seed) | mpw_u64(&b, d->index.capacity);
        e |= mpw_bool(&b, d->idf);
    }
    e |= mpw_str(&b, "indexes", 7) | mpw_array(&b, (uint32_t)p->n_pidx);
    for (size_t i = 0; i < p->n_pidx; i++) {
        /* [key, kind] for a keyword or integer index of default params (the format before
         * index params), else [key, kind, params] */
        const struct pindex_params *prm = &p->pdefs[i].prm;
        bool plain = !prm->has_params && prm->kind <= PINDEX_INTEGER;
        e |= mpw_array(&b, plain ? 2 : 3);
        e |= mpw_str(&b, p->pdefs[i].key, strlen(p->pdefs[i].key));
        e |= mpw_u64(&b, (uint64_t)p->pdefs[i].kind);
        if (!plain) {
            struct buf pb = BUF_INIT;
            e |= pindex_params_encode(prm, &pb);
            e |= mpw_bin(&b, pb.data, pb.len);
            buf_free(&pb);
        }
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

/* The "spaces" field: an array of [name, kind, dim, metric, m, ef_construction, ef_search,
 * sq8, seed, capacity, idf]. */
static int meta_spaces(struct mpk *r, struct part *p, char *errmsg)
{
    uint32_t n;
    struct part_space defs[PART_MAX_SPACES];
    if (mpk_array(r, &n) || n == 0 || n > PART_MAX_SPACES)
        return DV_ECORRUPT;
    memset(defs, 0, sizeof defs);
    for (uint32_t i = 0; i < n; i++) {
        struct part_space *d = &defs[i];
        uint32_t na, nl;
        const char *name;
        uint64_t v[8];
        bool sq8, idf;
        if (mpk_array(r, &na) || na < 11 || mpk_str(r, &name, &nl) || nl >= PART_NAME_MAX)
            return DV_ECORRUPT;
        memcpy(d->name, name, nl);
        for (int k = 0; k < 6; k++)
            if (mpk_u64(r, &v[k]))
                return DV_ECORRUPT;
        if (mpk_bool(r, &sq8) || mpk_u64(r, &v[6]) || mpk_u64(r, &v[7]) || mpk_bool(r, &idf))
            return DV_ECORRUPT;
        for (uint32_t k = 11; k < na; k++) /* newer fields */
            if (mpk_skip(r))
                return DV_ECORRUPT;
        hnsw_params_default(&d->index);
        d->kind = (enum part_vkind)v[0];
        d->index.dim = (uint32_t)v[1];
        d->index.metric = (enum hnsw_metric)v[2];
        d->index.m = (uint32_t)v[3];
        d->index.ef_construction = (uint32_t)v[4];
        d->index.ef_search = (uint32_t)v[5];
        d->index.sq8 = sq8;
        d->index.seed = v[6];
        d->index.capacity = (uint32_t)v[7];
        d->idf = idf;
    }
    int rc = part_spaces_init(p, defs, n, errmsg);
    if (rc == DV_EINVAL)
        rc = DV_ECORRUPT;
    return rc;
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
    if (IS("spaces"))
        return p->nsp == 0 ? meta_spaces(r, p, errmsg) : DV_ECORRUPT;
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
            if (mpk_array(r, &two) || two < 2 || two > 3 || mpk_str(r, &s, &sl) || sl >= sizeof k ||
                mpk_u64(r, &v) || v >= PINDEX_KIND_COUNT)
                return DV_ECORRUPT;
            struct pindex_params prm = pindex_params_default((enum pindex_kind)v);
            if (two == 3) {
                const void *pb;
                uint32_t pl;
                if (mpk_bin(r, &pb, &pl) || pindex_params_decode(pb, pl, &prm, errmsg) != DV_OK ||
                    prm.kind != v)
                    return DV_ECORRUPT;
            }
            memcpy(k, s, sl);
            k[sl] = '\0';
            int rc = part_add_pindex(p, k, &prm, errmsg);
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
    if (p->nsp == 0) {
        /* Written before vector spaces: one dense vector "", with the top-level parameters. */
        struct part_space d;
        memset(&d, 0, sizeof d);
        d.kind = PART_VEC_DENSE;
        d.index = p->o.index;
        p->legacy_ckpt = p->ckpt_name[0] != '\0';
        rc = part_spaces_init(p, &d, 1, errmsg);
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

static int fw_header(struct part *p, struct fw *f, uint32_t kind, uint32_t dim, uint64_t lsn,
                     uint64_t slots)
{
    uint8_t h[FILE_HEAD];
    memset(h, 0, sizeof h);
    memcpy(h, FILE_MAGIC, 8);
    buf_wr_le32(h + 8, FILE_VERSION);
    buf_wr_le32(h + 12, kind);
    buf_wr_le64(h + 16, lsn);
    buf_wr_le64(h + 24, f->len);
    buf_wr_le32(h + 32, f->crc);
    buf_wr_le32(h + 36, dim);
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

/* Writes a dense space's index-slot -> point-slot map for `slots` index slots. */
static int write_vmap(struct part *p, const struct vspace *v, uint64_t slots, struct fw *f)
{
    uint8_t chunk[4096];
    size_t used = 0;
    int rc = DV_OK;
    for (uint64_t s = 0; s < slots && rc == DV_OK; s++) {
        buf_wr_le32(chunk + used, s < v->vcap ? v->vmap[s] : PART_NO_SLOT);
        used += 4;
        if (used == sizeof chunk) {
            rc = fw_write(p, f, chunk, used);
            used = 0;
        }
    }
    if (rc == DV_OK && used > 0)
        rc = fw_write(p, f, chunk, used);
    return rc;
}

/* Writes the blobs of a sparse or multi space: (slot u32, len u32, bytes) per point. */
static int write_blobs(struct part *p, const struct vspace *v, struct fw *f)
{
    int rc = DV_OK;
    for (size_t s = 0; s < p->cap && rc == DV_OK; s++) {
        const struct blob *b = v->vb[s];
        if (b == NULL || !p->pub[s])
            continue;
        uint8_t h[8];
        buf_wr_le32(h, (uint32_t)s);
        buf_wr_le32(h + 4, b->len);
        rc = fw_write(p, f, h, sizeof h);
        if (rc == DV_OK)
            rc = fw_write(p, f, b->data, b->len);
    }
    return rc;
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
    struct fw fw[CKPT_MAX_FILES];
    struct ckfile cf[CKPT_MAX_FILES];
    uint64_t slots[CKPT_MAX_FILES];
    uint64_t t0, t1, lsn, old_lsn = 0;
    bool made_dir = false;
    int rc = DV_OK;

    errmsg[0] = '\0';
    size_t nf = part_ckpt_list(p, false, cf);
    for (size_t i = 0; i < nf; i++) {
        fw[i] = (struct fw){-1, 0, 0, 0, NULL, NULL, false, 0};
        slots[i] = 0;
    }
    pthread_mutex_lock(&p->ckpt_mu);
    /* Memory for the capture, sized from the current state with some room for growth. */
    if (__atomic_load_n(&p->applied_lsn, __ATOMIC_ACQUIRE) !=
        __atomic_load_n(&p->ckpt_lsn, __ATOMIC_ACQUIRE)) {
        size_t est[CKPT_MAX_FILES];
        pthread_rwlock_rdlock(&p->rw);
        for (size_t i = 0; i < nf; i++) {
            const struct vspace *v = &p->sp[cf[i].space];
            struct hnsw_info pi;
            memset(&pi, 0, sizeof pi);
            if (cf[i].role >= CK_GRAPH && cf[i].role <= CK_VMAP)
                hnsw_get_info(v->ix, &pi);
            size_t room = (size_t)(pi.slots + pi.slots / 16 + 1024);
            switch (cf[i].role) {
            case CK_GRAPH:
                est[i] = 128 + 16 * (size_t)pi.dim + 4 + room * (7 + (2 * (size_t)pi.m + 1) * 4) +
                         room / 4 * ((size_t)pi.m + 1) * 4;
                break;
            case CK_VECTORS:
                est[i] = room * pi.dim * sizeof(float);
                break;
            case CK_CODES:
                est[i] = pi.sq8_ready ? room * pi.dim : 0;
                break;
            case CK_VMAP:
                est[i] = room * 4;
                break;
            case CK_IDS:
                est[i] = (p->cap + p->cap / 16 + 1024) * ID_ENTRY;
                break;
            case CK_PAYLOADS:
                est[i] = p->payload_bytes + p->payload_bytes / 8 + p->map.n * 8;
                break;
            default: /* blobs: not sized ahead */
                est[i] = 0;
            }
        }
        pthread_rwlock_unlock(&p->rw);
        for (size_t i = 0; i < nf; i++) {
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
    for (size_t i = 0; i < nf && rc == DV_OK; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, cf[i].name) >= (int)sizeof path)
            rc = DV_EINVAL;
        fw[i].fd = p->io->open(p->io, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fw[i].fd < 0) {
            fw[i].err = fw[i].fd;
            rc = DV_EIO;
        }
    }
    for (size_t i = 0; i < nf && rc == DV_OK; i++) {
        const struct vspace *v = &p->sp[cf[i].space];
        if (cf[i].role == CK_IDS) {
            /* ids and payloads are written together (payloads.dvp follows ids.dvi) */
            rc = write_ids_payloads(p, &fw[i], &fw[i + 1]);
            slots[i] = slots[i + 1] = p->cap;
        } else if (cf[i].role == CK_GRAPH) {
            struct hnsw_info hi;
            struct save_ctx sc = {p, &fw[i]};
            rc = hnsw_save(v->ix, save_part_cb, &sc);
            hnsw_get_info(v->ix, &hi);
            slots[i] = slots[i + 1] = slots[i + 2] = slots[i + 3] = hi.slots;
            if (rc == DV_OK)
                rc = write_vmap(p, v, hi.slots, &fw[i + 3]);
        } else if (cf[i].role == CK_BLOBS) {
            rc = write_blobs(p, v, &fw[i]);
            slots[i] = p->cap;
        }
    }
out_unlock:
    pthread_mutex_unlock(&p->wmu);
    pthread_mutex_unlock(&p->maint_mu);
    t1 = p->io->now_ns(p->io);
    if (rc != DV_OK || !made_dir)
        goto out_files;

    /* Writers run again: write the captured bytes, make the files durable, switch the meta. */
    for (size_t i = 0; i < nf && rc == DV_OK; i++)
        rc = fw_header(p, &fw[i], (uint32_t)i, cf[i].dim, lsn, slots[i]);
    for (size_t i = 0; i < nf && rc == DV_OK; i++) {
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
        bool was_legacy = p->legacy_ckpt;
        p->legacy_ckpt = false;
        rc = part_write_meta(p, &switched, errmsg);
        pthread_rwlock_unlock(&p->rw);
        if (rc != DV_OK && !switched) {
            snprintf(p->ckpt_name, sizeof p->ckpt_name, "%s", old);
            __atomic_store_n(&p->ckpt_lsn, old_lsn, __ATOMIC_RELEASE);
            p->legacy_ckpt = was_legacy;
        } else if (rc != DV_OK) {
            /* A restart may read the old or the new meta: keep both checkpoints (the next
             * open removes the one its meta does not name) and the WAL. */
            made_dir = false;
            pthread_mutex_unlock(&p->ckpt_mu);
            for (size_t i = 0; i < nf; i++) {
                fw_drain(p, &fw[i]);
                if (fw[i].fd >= 0)
                    p->io->close(p->io, fw[i].fd);
            }
            return rc;
        }
    }
out_files:
    for (size_t i = 0; i < nf; i++) {
        fw[i].err = fw[i].err ? fw[i].err : -ECANCELED; /* drop what was not written */
        fw_drain(p, &fw[i]);
        if (fw[i].err == -ECANCELED)
            fw[i].err = 0;
        if (fw[i].fd >= 0)
            p->io->close(p->io, fw[i].fd);
        if (fw[i].err && errmsg[0] == '\0')
            dv_errmsg_set(errmsg, "checkpoint: %s: %s", cf[i].name, strerror(-fw[i].err));
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
