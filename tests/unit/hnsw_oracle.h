/* hnsw_oracle.h - data generators and a brute-force k-NN oracle for the index tests. */
#ifndef DV_HNSW_ORACLE_H
#define DV_HNSW_ORACLE_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hnsw.h"

static inline uint64_t orc_rng(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline float orc_uniform(uint64_t *s)
{
    return (float)((orc_rng(s) >> 40) * (1.0 / 16777216.0));
}

static inline float orc_gauss(uint64_t *s)
{
    float u = orc_uniform(s) + 1e-7f, v = orc_uniform(s);
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* n x dim uniform [-1, 1) vectors. Caller frees. */
static inline float *orc_random(size_t n, uint32_t dim, uint64_t seed)
{
    float *v = malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < n * dim; i++)
        v[i] = orc_uniform(&seed) * 2.0f - 1.0f;
    return v;
}

/* n x dim gaussian clusters around `nc` random centres (spread 0.1). Caller frees. */
static inline float *orc_clustered(size_t n, uint32_t dim, uint32_t nc, uint64_t seed)
{
    float *c = orc_random(nc, dim, seed ^ 0x55);
    float *v = malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(orc_rng(&seed) % nc);
        for (uint32_t d = 0; d < dim; d++)
            v[i * dim + d] = c[k * dim + d] + 0.1f * orc_gauss(&seed);
    }
    free(c);
    return v;
}

static inline double orc_dist(enum hnsw_metric m, const float *a, const float *b, uint32_t dim)
{
    double s = 0, na = 0, nb = 0;
    for (uint32_t d = 0; d < dim; d++) {
        switch (m) {
        case HNSW_L2:
            s += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
            break;
        case HNSW_L1:
            s += fabs((double)a[d] - b[d]);
            break;
        default:
            s += (double)a[d] * b[d];
            na += (double)a[d] * a[d];
            nb += (double)b[d] * b[d];
        }
    }
    if (m == HNSW_IP)
        return 1.0 - s;
    if (m == HNSW_COSINE)
        return (na == 0 || nb == 0) ? 1.0 : 1.0 - s / sqrt(na * nb);
    return s;
}

/*
 * n x dim points like real embeddings: a mixture of `nc` gaussian clusters in a 24-dim
 * latent space, mapped to `dim` dims by a fixed random linear map, plus small noise.
 * The same `map_seed` gives the same map, so queries can come from the same distribution.
 */
static inline float *orc_embed(size_t n, uint32_t dim, uint32_t nc, uint64_t map_seed,
                               uint64_t seed)
{
    enum { L = 24 };
    float *map = malloc((size_t)L * dim * sizeof(float));
    float *cent = malloc((size_t)nc * L * sizeof(float));
    uint64_t ms = map_seed;
    for (size_t i = 0; i < (size_t)L * dim; i++)
        map[i] = orc_gauss(&ms);
    for (size_t i = 0; i < (size_t)nc * L; i++)
        cent[i] = 0.5f * orc_gauss(&ms);
    float *v = malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float z[L];
        uint32_t c = (uint32_t)(orc_rng(&seed) % nc);
        for (int l = 0; l < L; l++)
            z[l] = cent[c * L + l] + orc_gauss(&seed);
        for (uint32_t d = 0; d < dim; d++) {
            float x = 0.05f * orc_gauss(&seed);
            for (int l = 0; l < L; l++)
                x += z[l] * map[l * dim + d];
            v[i * dim + d] = x;
        }
    }
    free(map);
    free(cent);
    return v;
}

typedef bool (*orc_keep_fn)(uint32_t i, void *arg);

/*
 * Exact top-k of query q among base rows i with keep(i) (NULL: all); ids are row numbers.
 * Returns the number found (<= k).
 */
static inline uint32_t orc_knn(enum hnsw_metric m, const float *base, size_t n, uint32_t dim,
                               const float *q, uint32_t k, orc_keep_fn keep, void *arg,
                               uint32_t *out)
{
    double *bd = malloc(k * sizeof(double));
    uint32_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep != NULL && !keep((uint32_t)i, arg))
            continue;
        double d = orc_dist(m, q, base + i * dim, dim);
        if (cnt == k && d >= bd[k - 1])
            continue;
        uint32_t j = cnt < k ? cnt++ : k - 1;
        while (j > 0 && bd[j - 1] > d) {
            bd[j] = bd[j - 1];
            out[j] = out[j - 1];
            j--;
        }
        bd[j] = d;
        out[j] = (uint32_t)i;
    }
    free(bd);
    return cnt;
}

/* |found ∩ truth| / |truth|. */
static inline double orc_overlap(const uint32_t *found, uint32_t nf, const uint32_t *truth,
                                 uint32_t nt)
{
    uint32_t hit = 0;
    for (uint32_t i = 0; i < nt; i++)
        for (uint32_t j = 0; j < nf; j++)
            if (found[j] == truth[i]) {
                hit++;
                break;
            }
    return nt ? (double)hit / nt : 1.0;
}

#endif
