/* bench_util.h - what the benchmarks share: the clock, a seeded generator, the data. */
#ifndef DV_BENCH_UTIL_H
#define DV_BENCH_UTIL_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64 */
static inline uint64_t bench_rng(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline float bench_unit(uint64_t *s)
{
    return (float)((bench_rng(s) >> 40) * (1.0 / 16777216.0));
}

/*
 * Vector of point i: embedding-like clustered data (256 random centres in [-1, 1)^dim, the
 * point a centre plus gaussian noise of 0.25), the centre chosen by a hash of i so that it is
 * independent of the payload fields. Uniform random vectors would measure the hardest case of
 * any graph index rather than the layer under test.
 */
static inline void bench_gen_vec(uint64_t i, uint32_t dim, float *out)
{
    uint64_t h = i * 0x9e3779b97f4a7c15ull;
    uint64_t c = bench_rng(&h) % 256, cs = c * 7919 + 17, s = i ^ 0xabcdef12345ull;
    for (uint32_t d = 0; d < dim; d++) {
        float u = bench_unit(&s) + 1e-7f, v = bench_unit(&s);
        float g = sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
        out[d] = bench_unit(&cs) * 2.0f - 1.0f + 0.25f * g;
    }
}

/* qsort comparator of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * Reads a TEXMEX file (.fvecs: int32 dim + dim float32 per row; .ivecs: the same with int32).
 * Rows must share one dimension. Returns the rows (caller frees) or NULL with a message.
 */
static inline void *bench_read_vecs(const char *path, size_t *n, uint32_t *dim)
{
    FILE *f = fopen(path, "rb");
    int32_t d;
    long size;
    void *data = NULL;

    if (f == NULL) {
        fprintf(stderr, "dvec-bench: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > 1 << 20) {
        fprintf(stderr, "dvec-bench: %s: not a .fvecs/.ivecs file (bad first dimension)\n", path);
        goto out;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t row = 4 + 4 * (size_t)d;
    if (size <= 0 || (size_t)size % row != 0) {
        fprintf(stderr, "dvec-bench: %s: size %ld is not a multiple of the row size %zu\n", path,
                size, row);
        goto out;
    }
    *n = (size_t)size / row;
    *dim = (uint32_t)d;
    data = malloc(*n * 4 * (size_t)d);
    if (data == NULL) {
        fprintf(stderr, "dvec-bench: %s: out of memory\n", path);
        goto out;
    }
    for (size_t i = 0; i < *n; i++) {
        int32_t rd;
        if (fread(&rd, 4, 1, f) != 1 || rd != d ||
            fread((char *)data + i * 4 * (size_t)d, 4, (size_t)d, f) != (size_t)d) {
            fprintf(stderr, "dvec-bench: %s: row %zu is truncated or has another dimension\n", path,
                    i);
            free(data);
            data = NULL;
            goto out;
        }
    }
out:
    fclose(f);
    return data;
}

/* Brute-force top-k ids (L2, nearest first) of nq queries over n vectors of dim floats:
 * truth[q * k + i]. The caller frees it. */
static inline uint64_t *bench_oracle_l2(const float *data, uint64_t n, uint32_t dim,
                                        const float *qv, uint32_t nq, uint32_t k,
                                        float (*l2sq)(const float *, const float *, size_t))
{
    uint64_t *truth = malloc((size_t)nq * k * sizeof *truth);
    float *best = malloc(k * sizeof *best);
    for (uint32_t q = 0; q < nq; q++) {
        uint64_t *ids = truth + (size_t)q * k;
        uint32_t have = 0;
        for (uint64_t i = 0; i < n; i++) {
            float s = l2sq(qv + (size_t)q * dim, data + i * dim, dim);
            if (have == k && s >= best[have - 1])
                continue;
            uint32_t j = have < k ? have++ : have - 1;
            while (j > 0 && best[j - 1] > s) {
                best[j] = best[j - 1];
                ids[j] = ids[j - 1];
                j--;
            }
            best[j] = s;
            ids[j] = i;
        }
    }
    free(best);
    return truth;
}

#endif
