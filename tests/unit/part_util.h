/* part_util.h - helpers of the replica tests: temp dirs, points, payloads, content checks. */
#ifndef DV_PART_UTIL_H
#define DV_PART_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "mpk.h"
#include "part.h"

static inline uint64_t pu_rng(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The vector of point `id` in version `ver`: deterministic, so checks need no copy. */
static inline void pu_vec(uint64_t id, uint32_t ver, uint32_t dim, float *out)
{
    uint64_t s = id * 1000003u + ver;
    for (uint32_t d = 0; d < dim; d++)
        out[d] = (float)((pu_rng(&s) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static const char *const pu_colors[] = {"red", "green", "blue", "black", "white"};

/* Payload {"color": ..., "n": id % 1000, "ver": ver, "tags": ["t<id%7>", "all"]}. */
static inline void pu_payload(uint64_t id, uint32_t ver, struct buf *b)
{
    char tag[16];
    const char *c = pu_colors[id % 5];
    int n = snprintf(tag, sizeof tag, "t%u", (unsigned)(id % 7));
    buf_reset(b);
    mpw_map(b, 4);
    mpw_str(b, "color", 5);
    mpw_str(b, c, strlen(c));
    mpw_str(b, "n", 1);
    mpw_u64(b, id % 1000);
    mpw_str(b, "ver", 3);
    mpw_u64(b, ver);
    mpw_str(b, "tags", 4);
    mpw_array(b, 2);
    mpw_str(b, tag, (size_t)n);
    mpw_str(b, "all", 3);
}

/* Upserts ids [first, first+n) in version ver, with payloads. */
static inline int pu_upsert_range(struct part *p, uint64_t first, size_t n, uint32_t ver,
                                  uint64_t *lsn, char *err)
{
    uint32_t dim = 0;
    struct part_info in;
    part_get_info(p, &in);
    dim = in.index.dim;
    struct part_point *pts = calloc(n, sizeof *pts);
    float *v = malloc(n * dim * sizeof(float));
    struct buf *pl = calloc(n, sizeof *pl);
    for (size_t i = 0; i < n; i++) {
        pu_vec(first + i, ver, dim, v + i * dim);
        pu_payload(first + i, ver, &pl[i]);
        pts[i].id = pid_num(first + i);
        pts[i].vec = v + i * dim;
        pts[i].dim = dim;
        pts[i].payload = pl[i].data;
        pts[i].payload_len = pl[i].len;
    }
    int rc = part_upsert(p, pts, n, lsn, err);
    for (size_t i = 0; i < n; i++)
        buf_free(&pl[i]);
    free(pl);
    free(v);
    free(pts);
    return rc;
}

/*
 * Brute-force oracle step: offers (d, id) to the k best kept in bd[]/bi[] (ascending, *nb of
 * them).
 */
static inline void pu_topk_offer(double *bd, uint64_t *bi, size_t *nb, size_t k, double d,
                                 uint64_t id)
{
    size_t j = *nb < k ? (*nb)++ : k;
    if (j == k && d >= bd[k - 1])
        return;
    if (j == k)
        j = k - 1;
    while (j > 0 && bd[j - 1] > d) {
        bd[j] = bd[j - 1];
        bi[j] = bi[j - 1];
        j--;
    }
    bd[j] = d;
    bi[j] = id;
}

/* Reads the "ver" field of a payload (UINT32_MAX when absent). */
static inline uint32_t pu_ver_of(const uint8_t *pl, size_t n)
{
    const uint8_t *v;
    size_t vl;
    struct mpk r;
    uint64_t x;
    if (pl == NULL || mpk_map_find(pl, n, "ver", 3, &v, &vl) != DV_OK)
        return UINT32_MAX;
    mpk_init(&r, v, vl);
    return mpk_u64(&r, &x) == DV_OK ? (uint32_t)x : UINT32_MAX;
}

/* A snapshot stream in memory: pu_mem_sink appends, pu_mem_source reads from pos. */
struct membuf {
    struct buf b;
    size_t pos;
};

static inline int pu_mem_sink(void *arg, const void *buf, size_t n)
{
    return buf_append(&((struct membuf *)arg)->b, buf, n);
}

static inline int pu_mem_source(void *arg, void *buf, size_t n, size_t *got)
{
    struct membuf *m = arg;
    size_t left = m->b.len - m->pos;
    *got = left < n ? left : n;
    memcpy(buf, m->b.data + m->pos, *got);
    m->pos += *got;
    return DV_OK;
}

static inline int pu_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static inline void pu_rmtree(const char *dir)
{
    nftw(dir, pu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh temporary directory path (the directory itself is not created). */
static inline void pu_tmpdir(char *out, size_t n, const char *tag)
{
    char base[] = "/tmp/dvec-part-XXXXXX";
    if (mkdtemp(base) == NULL)
        abort();
    snprintf(out, n, "%s/%s", base, tag);
}

static inline void pu_tmpdir_free(const char *path)
{
    char base[4096];
    snprintf(base, sizeof base, "%s", path);
    char *slash = strrchr(base, '/');
    if (slash != NULL)
        *slash = '\0';
    pu_rmtree(base);
}

#endif
