/* part_snap.c - snapshot streams of a live replica (LZ4 frame) and restoring them. */
#include "part_int.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SNAP_MAGIC   "DVSNAP01"
#define SNAP_END     "DVSNAPND"
#define SNAP_VERSION 2 /* 1: files by number (the five legacy names); 2: files by name */
#define CHUNK        (256 * 1024)

/* ---- writing ------------------------------------------------------------------------------ */

struct snap_out {
    LZ4F_cctx *cx;
    part_sink_fn sink;
    void *arg;
    uint8_t *out;
    size_t out_cap;
};

static int so_write(struct snap_out *so, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        size_t take = n < CHUNK ? n : CHUNK;
        size_t r = LZ4F_compressUpdate(so->cx, so->out, so->out_cap, b, take, NULL);
        if (LZ4F_isError(r))
            return DV_EIO;
        if (r > 0) {
            int rc = so->sink(so->arg, so->out, r);
            if (rc != DV_OK)
                return rc;
        }
        b += take;
        n -= take;
    }
    return DV_OK;
}

static int so_u32(struct snap_out *so, uint32_t v)
{
    uint8_t b[4];
    buf_wr_le32(b, v);
    return so_write(so, b, 4);
}

static int so_u64(struct snap_out *so, uint64_t v)
{
    uint8_t b[8];
    buf_wr_le64(b, v);
    return so_write(so, b, 8);
}

/* Streams the file open at fd (size bytes). */
static int so_file(struct part *p, struct snap_out *so, int fd, uint64_t size, uint8_t *tmp)
{
    uint64_t off = 0;
    while (off < size) {
        size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        ssize_t r = io_read_full(p->io, fd, tmp, want, (off_t)off);
        if (r < 0 || (size_t)r != want)
            return DV_EIO;
        int rc = so_write(so, tmp, want);
        if (rc != DV_OK)
            return rc;
        off += want;
    }
    return DV_OK;
}

int part_snapshot(struct part *p, part_sink_fn sink, void *arg, uint64_t *lsn_out, char *errmsg)
{
    int fds[CKPT_MAX_FILES];
    off_t sizes[CKPT_MAX_FILES];
    struct ckfile cf[CKPT_MAX_FILES];
    void *meta = NULL;
    size_t meta_len = 0, nfiles = 0;
    char path[4608];
    uint64_t lsn = 0;
    int rc;

    errmsg[0] = '\0';
    for (int i = 0; i < CKPT_MAX_FILES; i++)
        fds[i] = -1;
    rc = part_checkpoint(p, errmsg);
    if (rc != DV_OK)
        return rc;
    /* Open the checkpoint's files under ckpt_mu: once open, a later checkpoint may remove
     * them and the stream still reads them whole. */
    pthread_mutex_lock(&p->ckpt_mu);
    lsn = p->ckpt_lsn;
    snprintf(path, sizeof path, "%s/%s", p->dir, PART_META);
    int e = io_read_file(p->io, path, 1u << 20, &meta, &meta_len);
    if (e == 0 && p->ckpt_name[0] != '\0') {
        nfiles = part_ckpt_list(p, p->legacy_ckpt, cf);
        for (size_t i = 0; i < nfiles && e == 0; i++) {
            snprintf(path, sizeof path, "%s/%s/%s", p->dir, p->ckpt_name, cf[i].name);
            fds[i] = p->io->open(p->io, path, O_RDONLY, 0);
            e = fds[i] < 0 ? fds[i] : p->io->fsize(p->io, fds[i], &sizes[i]);
        }
    }
    pthread_mutex_unlock(&p->ckpt_mu);
    if (e < 0) {
        dv_errmsg_set(errmsg, "snapshot: reading the checkpoint: %s", strerror(-e));
        rc = DV_EIO;
        goto out;
    }

    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max4MB;
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
    struct snap_out so = {NULL, sink, arg, NULL, 0};
    so.out_cap = LZ4F_compressBound(CHUNK, &prefs) + LZ4F_HEADER_SIZE_MAX;
    so.out = malloc(so.out_cap);
    uint8_t *tmp = malloc(CHUNK);
    if (so.out == NULL || tmp == NULL ||
        LZ4F_isError(LZ4F_createCompressionContext(&so.cx, LZ4F_VERSION))) {
        free(so.out);
        free(tmp);
        rc = DV_ENOMEM;
        goto out;
    }
    size_t r = LZ4F_compressBegin(so.cx, so.out, so.out_cap, &prefs);
    rc = LZ4F_isError(r) ? DV_EIO : sink(arg, so.out, r);
    if (rc == DV_OK)
        rc = so_write(&so, SNAP_MAGIC, 8);
    if (rc == DV_OK)
        rc = so_u32(&so, SNAP_VERSION) | so_u64(&so, lsn) | so_u32(&so, (uint32_t)meta_len);
    if (rc == DV_OK)
        rc = so_write(&so, meta, meta_len);
    if (rc == DV_OK)
        rc = so_u32(&so, (uint32_t)nfiles);
    for (size_t i = 0; i < nfiles && rc == DV_OK; i++) {
        rc = so_u32(&so, (uint32_t)strlen(cf[i].name));
        rc |= so_write(&so, cf[i].name, strlen(cf[i].name));
        rc |= so_u64(&so, (uint64_t)sizes[i]);
        if (rc == DV_OK)
            rc = so_file(p, &so, fds[i], (uint64_t)sizes[i], tmp);
    }
    if (rc == DV_OK)
        rc = so_write(&so, SNAP_END, 8);
    if (rc == DV_OK) {
        r = LZ4F_compressEnd(so.cx, so.out, so.out_cap, NULL);
        rc = LZ4F_isError(r) ? DV_EIO : sink(arg, so.out, r);
    }
    LZ4F_freeCompressionContext(so.cx);
    free(so.out);
    free(tmp);
    if (rc != DV_OK && errmsg[0] == '\0')
        dv_errmsg_set(errmsg, "snapshot: stream aborted: %s", dv_strerror(rc));
out:
    for (int i = 0; i < CKPT_MAX_FILES; i++)
        if (fds[i] >= 0)
            p->io->close(p->io, fds[i]);
    free(meta);
    if (rc == DV_OK && lsn_out != NULL)
        *lsn_out = lsn;
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------ */

struct snap_in {
    LZ4F_dctx *dx;
    part_source_fn src;
    void *arg;
    uint8_t *in, *out;
    size_t in_pos, in_len, out_pos, out_len;
    bool src_end, frame_end;
};

/* Fills dst with exactly n decompressed bytes; DV_ECORRUPT when the stream ends or is bad. */
static int si_read(struct snap_in *si, void *dst, size_t n)
{
    uint8_t *d = dst;
    while (n > 0) {
        if (si->out_pos < si->out_len) {
            size_t take = si->out_len - si->out_pos < n ? si->out_len - si->out_pos : n;
            memcpy(d, si->out + si->out_pos, take);
            si->out_pos += take;
            d += take;
            n -= take;
            continue;
        }
        if (si->frame_end)
            return DV_ECORRUPT;
        if (si->in_pos == si->in_len) {
            if (si->src_end)
                return DV_ECORRUPT;
            size_t got = 0;
            int rc = si->src(si->arg, si->in, CHUNK, &got);
            if (rc != DV_OK)
                return rc;
            si->in_pos = 0;
            si->in_len = got;
            if (got == 0)
                si->src_end = true;
            continue;
        }
        size_t in_sz = si->in_len - si->in_pos, out_sz = CHUNK;
        size_t r = LZ4F_decompress(si->dx, si->out, &out_sz, si->in + si->in_pos, &in_sz, NULL);
        if (LZ4F_isError(r))
            return DV_ECORRUPT; /* includes block and content checksum failures */
        si->in_pos += in_sz;
        si->out_pos = 0;
        si->out_len = out_sz;
        if (r == 0)
            si->frame_end = true;
    }
    return DV_OK;
}

static int si_u32(struct snap_in *si, uint32_t *v)
{
    uint8_t b[4];
    int rc = si_read(si, b, 4);
    *v = buf_rd_le32(b);
    return rc;
}

static int si_u64(struct snap_in *si, uint64_t *v)
{
    uint8_t b[8];
    int rc = si_read(si, b, 8);
    *v = buf_rd_le64(b);
    return rc;
}

/* Writes `size` bytes of the stream into a new file and fsyncs it. */
static int si_file(struct io *io, struct snap_in *si, const char *path, uint64_t size, uint8_t *tmp)
{
    int fd = io->open(io, path, O_WRONLY | O_CREAT | O_TRUNC, 0644), e;
    if (fd < 0)
        return io_err_full(fd) ? DV_EFULL : DV_EIO;
    uint64_t off = 0;
    int rc = DV_OK;
    while (off < size && rc == DV_OK) {
        size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        rc = si_read(si, tmp, want);
        if (rc == DV_OK && (e = io_write_all(io, fd, tmp, want, (off_t)off)) < 0)
            rc = io_err_full(e) ? DV_EFULL : DV_EIO; /* a full disk says so */
        off += want;
    }
    if (rc == DV_OK && io->fsync(io, fd) < 0)
        rc = DV_EIO;
    io->close(io, fd);
    return rc;
}

static int restore_files(struct io *io, const char *dir, struct snap_in *si, char *errmsg)
{
    char magic[8], path[4096], ckdir[4096];
    uint32_t version = 0, meta_len = 0, nfiles = 0;
    uint64_t lsn = 0;
    uint8_t *tmp = malloc(CHUNK);
    void *meta = NULL;
    int rc;

    if (tmp == NULL)
        return DV_ENOMEM;
    rc = si_read(si, magic, 8);
    if (rc == DV_OK && memcmp(magic, SNAP_MAGIC, 8) != 0)
        rc = DV_ECORRUPT;
    if (rc == DV_OK)
        rc = si_u32(si, &version) | si_u64(si, &lsn) | si_u32(si, &meta_len);
    if (rc == DV_OK && (version < 1 || version > SNAP_VERSION || meta_len > (1u << 20))) {
        dv_errmsg_set(errmsg, "snapshot: version %u or meta size %u not supported", version,
                      meta_len);
        rc = DV_ECORRUPT;
        goto out;
    }
    if (rc == DV_OK && (meta = malloc(meta_len ? meta_len : 1)) == NULL)
        rc = DV_ENOMEM;
    if (rc == DV_OK)
        rc = si_read(si, meta, meta_len);
    if (rc == DV_OK)
        rc = si_u32(si, &nfiles);
    if (rc == DV_OK && (version == 1 ? nfiles != 0 && nfiles != 5 : nfiles > CKPT_MAX_FILES))
        rc = DV_ECORRUPT;
    snprintf(ckdir, sizeof ckdir, "%s/ckpt-%020llu", dir, (unsigned long long)lsn);
    int e;
    if (rc == DV_OK && nfiles > 0 && (e = io->mkdir(io, ckdir, 0755)) < 0)
        rc = io_err_full(e) ? DV_EFULL : DV_EIO;
    for (uint32_t i = 0; i < nfiles && rc == DV_OK; i++) {
        static const char *const v1_names[] = {"graph.dvg", "vectors.dvv", "codes.dvq", "ids.dvi",
                                               "payloads.dvp"};
        char fname[32];
        uint32_t kind;
        uint64_t size;
        if (version == 1) {
            rc = si_u32(si, &kind);
            if (rc == DV_OK && kind != i)
                rc = DV_ECORRUPT;
            snprintf(fname, sizeof fname, "%s", v1_names[i < 5 ? i : 0]);
        } else {
            rc = si_u32(si, &kind); /* the name's length */
            if (rc == DV_OK && (kind == 0 || kind >= sizeof fname))
                rc = DV_ECORRUPT;
            if (rc == DV_OK)
                rc = si_read(si, fname, kind);
            if (rc == DV_OK) {
                fname[kind] = '\0';
                for (uint32_t c = 0; c < kind && rc == DV_OK; c++)
                    if (!((fname[c] >= 'a' && fname[c] <= 'z') ||
                          (fname[c] >= '0' && fname[c] <= '9') || fname[c] == '.' ||
                          fname[c] == '-') ||
                        (c == 0 && fname[c] == '.'))
                        rc = DV_ECORRUPT; /* a plain file name: nothing outside ckdir */
            }
        }
        if (rc == DV_OK)
            rc = si_u64(si, &size);
        if (snprintf(path, sizeof path, "%s/%s", ckdir, fname) >= (int)sizeof path)
            rc = DV_EINVAL;
        if (rc == DV_OK)
            rc = si_file(io, si, path, size, tmp);
    }
    if (rc == DV_OK)
        rc = si_read(si, magic, 8);
    if (rc == DV_OK && memcmp(magic, SNAP_END, 8) != 0)
        rc = DV_ECORRUPT;
    /* the frame must end here: its content checksum is checked at the end */
    if (rc == DV_OK) {
        uint8_t extra;
        if (si_read(si, &extra, 1) == DV_OK || !si->frame_end)
            rc = DV_ECORRUPT;
    }
    if (rc == DV_OK && nfiles > 0 && io_fsync_dir(io, ckdir) < 0)
        rc = DV_EIO;
    snprintf(path, sizeof path, "%s/%s", dir, PART_META);
    if (rc == DV_OK && (e = io_replace_file(io, path, meta, meta_len)) < 0)
        rc = io_err_full(e) ? DV_EFULL : DV_EIO;
    if (rc != DV_OK && errmsg[0] == '\0')
        dv_errmsg_set(errmsg, "snapshot stream: %s",
                      rc == DV_ECORRUPT ? "damaged or truncated (checksum or framing)"
                      : rc == DV_EFULL  ? "no space left on device"
                                        : dv_strerror(rc));
out:
    free(meta);
    free(tmp);
    return rc;
}

int part_restore(struct io *io, const char *dir, part_source_fn src, void *arg,
                 const struct part_opts *o, struct part **out, char *errmsg)
{
    char path[4608];
    struct snap_in si;
    int rc;

    *out = NULL;
    errmsg[0] = '\0';
    int e = io->mkdir(io, dir, 0755);
    if (e < 0) {
        dv_errmsg_set(errmsg, "restore: %s: %s", dir, strerror(-e));
        return e == -EEXIST ? DV_EEXIST : DV_EIO;
    }
    snprintf(path, sizeof path, "%s/%s", dir, PART_WAL_DIR);
    if ((e = io->mkdir(io, path, 0755)) < 0) {
        dv_errmsg_set(errmsg, "restore: %s: %s", path, strerror(-e));
        rc = DV_EIO;
        goto err_remove;
    }
    memset(&si, 0, sizeof si);
    si.src = src;
    si.arg = arg;
    si.in = malloc(CHUNK);
    si.out = malloc(CHUNK);
    if (si.in == NULL || si.out == NULL ||
        LZ4F_isError(LZ4F_createDecompressionContext(&si.dx, LZ4F_VERSION))) {
        free(si.in);
        free(si.out);
        rc = DV_ENOMEM;
        goto err_remove;
    }
    rc = restore_files(io, dir, &si, errmsg);
    LZ4F_freeDecompressionContext(si.dx);
    free(si.in);
    free(si.out);
    if (rc == DV_OK && io_fsync_dir(io, dir) < 0)
        rc = DV_EIO;
    if (rc != DV_OK)
        goto err_remove;
    return part_open(io, dir, o, out, errmsg);

err_remove : {
    /* Leave nothing half-restored behind. */
    char **names;
    size_t n;
    if (io->list(io, dir, &names, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            if (io_remove_dir(io, path) < 0)
                io->unlink(io, path);
        }
        io_free_list(names, n);
    }
    io->rmdir(io, dir);
    if (errmsg[0] == '\0')
        dv_errmsg_set(errmsg, "restore: %s", dv_strerror(rc));
    return rc;
}
}
