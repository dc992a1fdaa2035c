/* part_load.c - loading a replica's checkpoint: reading and checking its files, rebuilding the
 * maps, the sparse indexes and the payload indexes. */
#include "part_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "log.h"

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

static int fr_open(struct part *p, const char *dir, const struct ckfile *cf, int kind, uint64_t lsn,
                   struct fr *f, char *errmsg)
{
    char path[4608];
    uint8_t h[64];
    f->name = cf->name;
    if (snprintf(path, sizeof path, "%s/%s", dir, f->name) >= (int)sizeof path) {
        dv_errmsg_set(errmsg, "%s: path too long", f->name);
        return DV_EINVAL;
    }
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
        buf_rd_le64(h + 16) != lsn || buf_rd_le32(h + 36) != cf->dim) {
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

/*
 * Reads ids.dvi and payloads.dvp. Legacy checkpoints (identity = true) share slots with space
 * 0's index: every id needs a live index slot, and the maps are the identity.
 */
static int load_ids_payloads(struct part *p, struct fr *fi, struct fr *fp, bool identity,
                             char *errmsg)
{
    uint8_t e[ID_ENTRY];
    int rc = DV_OK;
    if (fi->len != fi->slots * ID_ENTRY || fi->slots >= UINT32_MAX) {
        dv_errmsg_set(errmsg, "%s: %llu bytes for %llu slots", fi->name,
                      (unsigned long long)fi->len, (unsigned long long)fi->slots);
        return DV_ECORRUPT;
    }
    if ((rc = part_reserve_slots(p, fi->slots)) != DV_OK)
        return rc;
    struct vspace *v0 = &p->sp[0];
    struct hnsw_info hi = {0};
    if (identity) {
        hnsw_get_info(v0->ix, &hi);
        if ((rc = part_vmap_reserve(v0, hi.slots)) != DV_OK)
            return rc;
    }
    for (uint64_t s = 0; s < fi->slots; s++) {
        if ((rc = fr_read(p, fi, e, sizeof e, errmsg)) != DV_OK)
            return rc;
        if (e[0] == ID_NONE)
            continue;
        if (e[0] > PID_UUID || (identity && !hnsw_is_live(v0->ix, (uint32_t)s))) {
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
        if (identity) {
            v0->vmap[s] = (uint32_t)s;
            v0->pmap[s] = (uint32_t)s;
            v0->points++;
        }
    }
    if ((rc = fr_finish(fi, errmsg)) != DV_OK)
        return rc;
    if (identity && hi.live != p->map.n) {
        dv_errmsg_set(errmsg, "%s: %zu ids for %llu live vectors", fi->name, p->map.n,
                      (unsigned long long)hi.live);
        return DV_ECORRUPT;
    }
    /* Slots without a point are free; the lowest is handed out first. */
    p->used = (size_t)fi->slots;
    for (uint64_t s = fi->slots; s-- > 0;)
        if (!p->pub[s])
            part_slot_free(p, (uint32_t)s);
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

/* Reads a dense space's vmap file: index slot -> point slot, both ways checked. */
static int load_vmap(struct part *p, struct vspace *v, struct fr *f, char *errmsg)
{
    struct hnsw_info hi;
    hnsw_get_info(v->ix, &hi);
    if (f->slots != hi.slots || f->len != f->slots * 4) {
        dv_errmsg_set(errmsg, "%s: %llu bytes for %llu slots, the index has %llu", f->name,
                      (unsigned long long)f->len, (unsigned long long)f->slots,
                      (unsigned long long)hi.slots);
        return DV_ECORRUPT;
    }
    int rc = part_vmap_reserve(v, hi.slots);
    if (rc != DV_OK)
        return rc;
    for (uint64_t vs = 0; vs < f->slots; vs++) {
        uint8_t b[4];
        if ((rc = fr_read(p, f, b, 4, errmsg)) != DV_OK)
            return rc;
        uint32_t s = buf_rd_le32(b);
        bool live = hnsw_is_live(v->ix, (uint32_t)vs);
        if (s == PART_NO_SLOT && !live)
            continue;
        if (s == PART_NO_SLOT || !live || s >= p->cap || !p->pub[s] || v->pmap[s] != PART_NO_SLOT) {
            dv_errmsg_set(errmsg, "%s: bad entry for index slot %llu (offset %llu)", f->name,
                          (unsigned long long)vs, (unsigned long long)(FILE_HEAD + vs * 4));
            return DV_ECORRUPT;
        }
        v->vmap[vs] = s;
        v->pmap[s] = (uint32_t)vs;
        v->points++;
    }
    return fr_finish(f, errmsg);
}

/* Reads a sparse or multi space's blobs. */
static int load_blobs(struct part *p, struct vspace *v, struct fr *f, char *errmsg)
{
    int rc = DV_OK;
    while (f->pos < f->len) {
        uint8_t h[8];
        uint64_t at = FILE_HEAD + f->pos;
        if ((rc = fr_read(p, f, h, sizeof h, errmsg)) != DV_OK)
            return rc;
        uint32_t s = buf_rd_le32(h), len = buf_rd_le32(h + 4);
        if (s >= p->cap || !p->pub[s] || v->vb[s] != NULL || len > f->len - f->pos) {
            dv_errmsg_set(errmsg, "%s: bad entry at offset %llu", f->name, (unsigned long long)at);
            return DV_ECORRUPT;
        }
        struct blob *b = malloc(sizeof *b + (len ? len : 1));
        if (b == NULL)
            return DV_ENOMEM;
        b->len = len;
        if ((rc = fr_read(p, f, b->data, len, errmsg)) != DV_OK) {
            free(b);
            return rc;
        }
        if (!part_blob_valid(v, b->data, len)) {
            free(b);
            dv_errmsg_set(errmsg, "%s: bad vector at offset %llu", f->name, (unsigned long long)at);
            return DV_ECORRUPT;
        }
        v->vb[s] = b;
        v->points++;
        if (v->inv != NULL) {
            uint32_t n = buf_rd_le32(b->data);
            rc = sparse_add(v->inv, s, (const uint32_t *)(b->data + 4),
                            (const float *)(b->data + 4 + 4 * (size_t)n), n);
            if (rc != DV_OK)
                return rc;
        }
    }
    return fr_finish(f, errmsg);
}

int part_load_ckpt(struct part *p, char *errmsg)
{
    struct fr fr[CKPT_MAX_FILES];
    struct ckfile cf[CKPT_MAX_FILES];
    char dir[4096];
    int rc = DV_OK;

    if (p->ckpt_name[0] == '\0') {
        for (uint32_t i = 0; i < p->nsp && rc == DV_OK; i++) {
            if (p->sp[i].def.kind != PART_VEC_DENSE)
                continue;
            rc = hnsw_create(&p->sp[i].def.index, &p->sp[i].ix);
            if (rc != DV_OK)
                dv_errmsg_set(errmsg, "cannot create the index of vector \"%s\": %s",
                              p->sp[i].def.name, dv_strerror(rc));
        }
        return rc;
    }
    if (p->legacy_ckpt && (p->nsp != 1 || p->sp[0].def.kind != PART_VEC_DENSE)) {
        dv_errmsg_set(errmsg, "%s: a checkpoint of the old format needs one dense vector",
                      PART_META);
        return DV_ECORRUPT;
    }
    size_t nf = part_ckpt_list(p, p->legacy_ckpt, cf);
    snprintf(dir, sizeof dir, "%s/%s", p->dir, p->ckpt_name);
    for (size_t i = 0; i < nf; i++) {
        fr[i].fd = -1;
        bool small = cf[i].role == CK_IDS || cf[i].role == CK_PAYLOADS || cf[i].role == CK_VMAP ||
                     cf[i].role == CK_BLOBS;
        fr[i].buf = small ? malloc(FR_BUF) : NULL;
    }
    for (size_t i = 0; i < nf && rc == DV_OK; i++)
        rc = fr_open(p, dir, &cf[i], (int)i, p->ckpt_lsn, &fr[i], errmsg);
    /* Legacy: the index first (ids are checked against it); else ids first. */
    for (int pass = 0; pass < 2 && rc == DV_OK; pass++) {
        bool index_pass = p->legacy_ckpt ? pass == 0 : pass == 1;
        for (size_t i = 0; i < nf && rc == DV_OK; i++) {
            struct vspace *v = &p->sp[cf[i].space];
            if (index_pass && cf[i].role == CK_GRAPH) {
                struct load_ctx lc = {p, &fr[i], errmsg, HNSW_PART_GRAPH};
                rc = hnsw_load(&v->def.index, load_part_cb, &lc, &v->ix, errmsg);
                if (rc != DV_OK && strstr(errmsg, ".dv") == NULL)
                    dv_errmsg_prefix(errmsg, "%s", cf[i + lc.last].name);
                for (size_t k = 0; k < 3 && rc == DV_OK; k++)
                    rc = fr_finish(&fr[i + k], errmsg);
                if (rc == DV_OK && !p->legacy_ckpt)
                    rc = load_vmap(p, v, &fr[i + 3], errmsg);
            } else if (index_pass && cf[i].role == CK_BLOBS) {
                rc = load_blobs(p, v, &fr[i], errmsg);
            } else if (!index_pass && cf[i].role == CK_IDS) {
                rc = load_ids_payloads(p, &fr[i], &fr[i + 1], p->legacy_ckpt, errmsg);
            }
        }
    }
    /* payload indexes were created from the meta file; fill them now */
    for (size_t i = 0; i < p->n_pidx && rc == DV_OK; i++)
        for (size_t s = 0; s < p->cap && rc == DV_OK; s++)
            if (p->pay[s] != NULL)
                rc = pindex_add(p->pidx[i], (uint32_t)s, p->pay[s]->data, p->pay[s]->len);
    for (size_t i = 0; i < nf; i++) {
        free(fr[i].buf);
        if (fr[i].fd >= 0)
            p->io->close(p->io, fr[i].fd);
    }
    if (rc != DV_OK)
        dv_errmsg_prefix(errmsg, "%s", p->ckpt_name);
    return rc;
}
