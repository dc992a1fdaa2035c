/* dist.c - scalar distance kernels and the run-time choice of a SIMD level. */
#include "dist.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/*
 * Kernel tables defined in dist_x86.c and dist_neon.c. Each exists only in the build for its
 * architecture; dist_ops_for() hands one out only after checking that the CPU can run it.
 */
#if defined(__x86_64__)
extern const struct dist_ops dist_ops_sse;
extern const struct dist_ops dist_ops_avx2;
extern const struct dist_ops dist_ops_avx512;
#endif
#if defined(__aarch64__)
extern const struct dist_ops dist_ops_neon;
#endif

/*
 * Scalar kernels. Four independent accumulators break the dependency chain of the sum (the
 * compiler may not reassociate float adds without -ffast-math) and keep results close to the
 * SIMD kernels, which also sum in several lanes.
 */
static float l2sq_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

static float dot_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float cosine_scalar(const float *a, const float *b, size_t n)
{
    float d0 = 0, d1 = 0, x0 = 0, x1 = 0, y0 = 0, y1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        d0 += a[i] * b[i];
        d1 += a[i + 1] * b[i + 1];
        x0 += a[i] * a[i];
        x1 += a[i + 1] * a[i + 1];
        y0 += b[i] * b[i];
        y1 += b[i + 1] * b[i + 1];
    }
    for (; i < n; i++) {
        d0 += a[i] * b[i];
        x0 += a[i] * a[i];
        y0 += b[i] * b[i];
    }
    float dot = d0 + d1, na = x0 + x1, nb = y0 + y1;
    if (na == 0 || nb == 0)
        return 1.0f;
    /* The product of the norms can overflow float; finish in double. */
    return (float)(1.0 - (double)dot / sqrt((double)na * (double)nb));
}

static float l1_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += fabsf(a[i] - b[i]);
        s1 += fabsf(a[i + 1] - b[i + 1]);
        s2 += fabsf(a[i + 2] - b[i + 2]);
        s3 += fabsf(a[i + 3] - b[i + 3]);
    }
    for (; i < n; i++)
        s0 += fabsf(a[i] - b[i]);
    return (s0 + s1) + (s2 + s3);
}

static float sq8_l2_scalar(const float *q, const float *w, const uint8_t *c, size_t n)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        float d0 = q[i] - (float)c[i], d1 = q[i + 1] - (float)c[i + 1];
        s0 += w[i] * d0 * d0;
        s1 += w[i + 1] * d1 * d1;
    }
    for (; i < n; i++) {
        float d = q[i] - (float)c[i];
        s0 += w[i] * d * d;
    }
    return s0 + s1;
}

static float sq8_dot_scalar(const float *q, const uint8_t *c, size_t n)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        s0 += q[i] * (float)c[i];
        s1 += q[i + 1] * (float)c[i + 1];
    }
    for (; i < n; i++)
        s0 += q[i] * (float)c[i];
    return s0 + s1;
}

static float sq8_l1_scalar(const float *q, const float *w, const uint8_t *c, size_t n)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        s0 += w[i] * fabsf(q[i] - (float)c[i]);
        s1 += w[i + 1] * fabsf(q[i + 1] - (float)c[i + 1]);
    }
    for (; i < n; i++)
        s0 += w[i] * fabsf(q[i] - (float)c[i]);
    return s0 + s1;
}

static uint32_t u8_l2sq_scalar(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        int d = (int)a[i] - (int)b[i];
        s += (uint32_t)(d * d);
    }
    return s;
}

static const struct dist_ops dist_ops_scalar = {
    .level = DIST_SCALAR,
    .name = "scalar",
    .l2sq = l2sq_scalar,
    .dot = dot_scalar,
    .cosine = cosine_scalar,
    .l1 = l1_scalar,
    .sq8_l2 = sq8_l2_scalar,
    .sq8_dot = sq8_dot_scalar,
    .sq8_l1 = sq8_l1_scalar,
    .u8_l2sq = u8_l2sq_scalar,
};

static const char *const level_names[] = {"scalar", "sse", "avx2", "avx512", "neon"};

enum dist_level dist_cpu_level(void)
{
#if defined(__x86_64__)
    /* libgcc's checks also require the OS to have enabled the YMM/ZMM state (XGETBV). */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        return DIST_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return DIST_AVX2;
    if (__builtin_cpu_supports("sse4.1"))
        return DIST_SSE;
    return DIST_SCALAR;
#elif defined(__aarch64__)
    return DIST_NEON; /* Advanced SIMD is mandatory on arm64. */
#else
    return DIST_SCALAR;
#endif
}

const struct dist_ops *dist_ops_for(enum dist_level level)
{
    enum dist_level cpu = dist_cpu_level();
    switch (level) {
    case DIST_SCALAR:
        return &dist_ops_scalar;
#if defined(__x86_64__)
    case DIST_SSE:
        return cpu >= DIST_SSE ? &dist_ops_sse : NULL;
    case DIST_AVX2:
        return cpu >= DIST_AVX2 ? &dist_ops_avx2 : NULL;
    case DIST_AVX512:
        return cpu >= DIST_AVX512 ? &dist_ops_avx512 : NULL;
#endif
#if defined(__aarch64__)
    case DIST_NEON:
        return cpu == DIST_NEON ? &dist_ops_neon : NULL;
#endif
    default:
        (void)cpu;
        return NULL;
    }
}

const struct dist_ops *dist_choose(const char *env)
{
    const struct dist_ops *best = dist_ops_for(dist_cpu_level());
    if (env == NULL || env[0] == '\0')
        return best;
    int level = dist_level_parse(env);
    if (level < 0) {
        fprintf(stderr, "dvec: DVEC_SIMD=%s is not a SIMD level; using %s\n", env, best->name);
        return best;
    }
    const struct dist_ops *ops = dist_ops_for((enum dist_level)level);
    if (ops == NULL) {
        fprintf(stderr, "dvec: DVEC_SIMD=%s is not supported by this CPU; using %s\n", env,
                best->name);
        return best;
    }
    return ops;
}

static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;
static const struct dist_ops *chosen;

static void choose_once(void)
{
    chosen = dist_choose(getenv("DVEC_SIMD"));
}

const struct dist_ops *dist_get(void)
{
    pthread_once(&chosen_once, choose_once);
    return chosen;
}

int dist_level_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcasecmp(name, level_names[i]) == 0)
            return (int)i;
    }
    return -1;
}

const char *dist_level_name(enum dist_level level)
{
    if ((unsigned)level < sizeof level_names / sizeof level_names[0])
        return level_names[level];
    return "unknown";
}

float dist_normalize(float *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * (double)a[i];
    double norm = sqrt(s);
    if (norm > 0) {
        double inv = 1.0 / norm;
        for (size_t i = 0; i < n; i++)
            a[i] = (float)(a[i] * inv);
    }
    return (float)norm;
}
