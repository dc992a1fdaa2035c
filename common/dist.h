/* dist.h - float32 distance kernels (scalar, SSE, AVX2+FMA, AVX-512, NEON), chosen at run time. */
#ifndef DV_DIST_H
#define DV_DIST_H

#include <stddef.h>
#include <stdint.h>

/* SIMD levels, lowest first. */
enum dist_level {
    DIST_SCALAR = 0,
    DIST_SSE = 1,    /* x86-64 SSE4.1 */
    DIST_AVX2 = 2,   /* x86-64 AVX2 + FMA */
    DIST_AVX512 = 3, /* x86-64 AVX-512F (+BW) */
    DIST_NEON = 4,   /* arm64 Advanced SIMD */
};

/* a, b: n floats each, any alignment. All return float; sums accumulate in float. */
typedef float (*dist_fn)(const float *a, const float *b, size_t n);

/*
 * SQ8 (per-dimension scalar quantization) kernels, asymmetric: the query is float, already
 * moved into code space (q'[d] = (q[d] - min[d]) / step[d]); `w` holds per-dimension weights;
 * `c` holds n uint8 codes. Any alignment.
 *   sq8_l2(q, w, c, n)  = sum_d w[d] * (q[d] - c[d])^2     (w = step^2)
 *   sq8_dot(q, c, n)    = sum_d q[d] * c[d]                (q already multiplied by step)
 *   sq8_l1(q, w, c, n)  = sum_d w[d] * |q[d] - c[d]|       (w = step)
 */
/*
 * Exact squared euclidean distance between two uint8 code vectors: sum (a[d]-b[d])^2.
 * Exact for n <= 66,052 (the sum stays below 2^32). Any alignment.
 */
typedef uint32_t (*dist_u8_fn)(const uint8_t *a, const uint8_t *b, size_t n);

typedef float (*dist_sq8w_fn)(const float *q, const float *w, const uint8_t *c, size_t n);
typedef float (*dist_sq8_fn)(const float *q, const uint8_t *c, size_t n);

struct dist_ops {
    enum dist_level level;
    const char *name; /* "scalar", "sse", "avx2", "avx512", "neon" */
    dist_fn l2sq;     /* sum (a-b)^2 */
    dist_fn dot;      /* sum a*b */
    dist_fn cosine;   /* 1 - dot(a,b) / (|a| |b|); 1 when either norm is 0 */
    dist_fn l1;       /* sum |a-b| */
    dist_sq8w_fn sq8_l2;
    dist_sq8_fn sq8_dot;
    dist_sq8w_fn sq8_l1;
    dist_u8_fn u8_l2sq;
};

/* Highest level the CPU supports (cpuid / hwcaps), ignoring DVEC_SIMD. */
enum dist_level dist_cpu_level(void);

/*
 * The kernels for `level`, or NULL when this CPU (or this build) cannot run that level.
 * Tests use it to check every level.
 */
const struct dist_ops *dist_ops_for(enum dist_level level);

/*
 * The kernels chosen once per process: the CPU's best level, lowered by the environment
 * variable DVEC_SIMD=scalar|sse|avx2|avx512|neon when it names a level the CPU supports
 * (an unknown or unsupported value is ignored and logged on stderr). Thread-safe.
 */
const struct dist_ops *dist_get(void);

/*
 * What dist_get() picks when DVEC_SIMD holds `env` (NULL or "" when unset): the CPU's best
 * level, or the level `env` names when the CPU supports it. Logs an ignored value on stderr.
 * dist_get() calls it once; tests call it directly.
 */
const struct dist_ops *dist_choose(const char *env);

/* Parses a level name ("avx2"); returns -1 for an unknown name. */
int dist_level_parse(const char *name);

/* Name of a level ("avx2"). */
const char *dist_level_name(enum dist_level level);

/* L2 norm of a (float64 accumulation) and in-place normalisation; returns the old norm. */
float dist_normalize(float *a, size_t n);

#endif
