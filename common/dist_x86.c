/* dist_x86.c - x86-64 distance kernels: SSE4.1, AVX2+FMA and AVX-512 (F+BW). */
#include "dist.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

/*
 * Every function carries its own target attribute instead of a global -m flag, so the binary
 * runs on any x86-64; dist.c hands out a table only after checking the CPU. Loads are
 * unaligned everywhere. Sums use several independent accumulators so the loop is bound by
 * load/FMA throughput, not by the latency of one dependency chain.
 */

#define SSE41  __attribute__((target("sse4.1")))
#define AVX2   __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx2,fma")))

/*
 * 1 - dot / (|a| |b|). The norms are multiplied after the square roots: na * nb could
 * overflow float, sqrt(na) * sqrt(nb) cannot.
 */
static inline float cos_finish(float dot, float na, float nb)
{
    if (na == 0 || nb == 0)
        return 1.0f;
    return 1.0f - dot / (sqrtf(na) * sqrtf(nb));
}

/* The last r < 8 (AVX2) or r < 4 (SSE) codes of c[0..n), zero-extended into a 64-bit word. */
static uint64_t load_tail_u8(const uint8_t *c, size_t n, size_t r)
{
    uint64_t x = 0;
    if (n >= 8) {
        /* Overlapping load of the last 8 bytes, shifted so only the r new codes remain. */
        memcpy(&x, c + n - 8, 8);
        return x >> (8 * (8 - r));
    }
    for (size_t k = 0; k < r; k++)
        x |= (uint64_t)c[n - r + k] << (8 * k);
    return x;
}

/* ---------------------------------------------------------------- SSE4.1 */

SSE41 static inline float hsum128(__m128 v)
{
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
    return _mm_cvtss_f32(v);
}

/* Four codes at c, widened to floats. */
SSE41 static inline __m128 cvt4_u8(const uint8_t *c)
{
    int32_t x;
    memcpy(&x, c, 4);
    return _mm_cvtepi32_ps(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(x)));
}

SSE41 static float l2sq_sse(const float *a, const float *b, size_t n)
{
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps(), s2 = _mm_setzero_ps();
    __m128 s3 = _mm_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128 d0 = _mm_sub_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i));
        __m128 d1 = _mm_sub_ps(_mm_loadu_ps(a + i + 4), _mm_loadu_ps(b + i + 4));
        __m128 d2 = _mm_sub_ps(_mm_loadu_ps(a + i + 8), _mm_loadu_ps(b + i + 8));
        __m128 d3 = _mm_sub_ps(_mm_loadu_ps(a + i + 12), _mm_loadu_ps(b + i + 12));
        s0 = _mm_add_ps(s0, _mm_mul_ps(d0, d0));
        s1 = _mm_add_ps(s1, _mm_mul_ps(d1, d1));
        s2 = _mm_add_ps(s2, _mm_mul_ps(d2, d2));
        s3 = _mm_add_ps(s3, _mm_mul_ps(d3, d3));
    }
    for (; i + 4 <= n; i += 4) {
        __m128 d = _mm_sub_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i));
        s0 = _mm_add_ps(s0, _mm_mul_ps(d, d));
    }
    float s = hsum128(_mm_add_ps(_mm_add_ps(s0, s1), _mm_add_ps(s2, s3)));
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

SSE41 static float dot_sse(const float *a, const float *b, size_t n)
{
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps(), s2 = _mm_setzero_ps();
    __m128 s3 = _mm_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm_add_ps(s0, _mm_mul_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)));
        s1 = _mm_add_ps(s1, _mm_mul_ps(_mm_loadu_ps(a + i + 4), _mm_loadu_ps(b + i + 4)));
        s2 = _mm_add_ps(s2, _mm_mul_ps(_mm_loadu_ps(a + i + 8), _mm_loadu_ps(b + i + 8)));
        s3 = _mm_add_ps(s3, _mm_mul_ps(_mm_loadu_ps(a + i + 12), _mm_loadu_ps(b + i + 12)));
    }
    for (; i + 4 <= n; i += 4)
        s0 = _mm_add_ps(s0, _mm_mul_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)));
    float s = hsum128(_mm_add_ps(_mm_add_ps(s0, s1), _mm_add_ps(s2, s3)));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

SSE41 static float cosine_sse(const float *a, const float *b, size_t n)
{
    __m128 d0 = _mm_setzero_ps(), d1 = _mm_setzero_ps(), x0 = _mm_setzero_ps();
    __m128 x1 = _mm_setzero_ps(), y0 = _mm_setzero_ps(), y1 = _mm_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128 a0 = _mm_loadu_ps(a + i), b0 = _mm_loadu_ps(b + i);
        __m128 a1 = _mm_loadu_ps(a + i + 4), b1 = _mm_loadu_ps(b + i + 4);
        d0 = _mm_add_ps(d0, _mm_mul_ps(a0, b0));
        d1 = _mm_add_ps(d1, _mm_mul_ps(a1, b1));
        x0 = _mm_add_ps(x0, _mm_mul_ps(a0, a0));
        x1 = _mm_add_ps(x1, _mm_mul_ps(a1, a1));
        y0 = _mm_add_ps(y0, _mm_mul_ps(b0, b0));
        y1 = _mm_add_ps(y1, _mm_mul_ps(b1, b1));
    }
    if (i + 4 <= n) {
        __m128 a0 = _mm_loadu_ps(a + i), b0 = _mm_loadu_ps(b + i);
        d0 = _mm_add_ps(d0, _mm_mul_ps(a0, b0));
        x0 = _mm_add_ps(x0, _mm_mul_ps(a0, a0));
        y0 = _mm_add_ps(y0, _mm_mul_ps(b0, b0));
        i += 4;
    }
    float dot = hsum128(_mm_add_ps(d0, d1));
    float na = hsum128(_mm_add_ps(x0, x1));
    float nb = hsum128(_mm_add_ps(y0, y1));
    for (; i < n; i++) {
        dot += a[i] * b[i];
        na += a[i] * a[i];
        nb += b[i] * b[i];
    }
    return cos_finish(dot, na, nb);
}

SSE41 static float l1_sse(const float *a, const float *b, size_t n)
{
    const __m128 sign = _mm_set1_ps(-0.0f);
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps(), s2 = _mm_setzero_ps();
    __m128 s3 = _mm_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128 d0 = _mm_sub_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i));
        __m128 d1 = _mm_sub_ps(_mm_loadu_ps(a + i + 4), _mm_loadu_ps(b + i + 4));
        __m128 d2 = _mm_sub_ps(_mm_loadu_ps(a + i + 8), _mm_loadu_ps(b + i + 8));
        __m128 d3 = _mm_sub_ps(_mm_loadu_ps(a + i + 12), _mm_loadu_ps(b + i + 12));
        s0 = _mm_add_ps(s0, _mm_andnot_ps(sign, d0));
        s1 = _mm_add_ps(s1, _mm_andnot_ps(sign, d1));
        s2 = _mm_add_ps(s2, _mm_andnot_ps(sign, d2));
        s3 = _mm_add_ps(s3, _mm_andnot_ps(sign, d3));
    }
    for (; i + 4 <= n; i += 4) {
        __m128 d = _mm_sub_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i));
        s0 = _mm_add_ps(s0, _mm_andnot_ps(sign, d));
    }
    float s = hsum128(_mm_add_ps(_mm_add_ps(s0, s1), _mm_add_ps(s2, s3)));
    for (; i < n; i++)
        s += fabsf(a[i] - b[i]);
    return s;
}

SSE41 static float sq8_l2_sse(const float *q, const float *w, const uint8_t *c, size_t n)
{
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128 d0 = _mm_sub_ps(_mm_loadu_ps(q + i), cvt4_u8(c + i));
        __m128 d1 = _mm_sub_ps(_mm_loadu_ps(q + i + 4), cvt4_u8(c + i + 4));
        s0 = _mm_add_ps(s0, _mm_mul_ps(_mm_mul_ps(_mm_loadu_ps(w + i), d0), d0));
        s1 = _mm_add_ps(s1, _mm_mul_ps(_mm_mul_ps(_mm_loadu_ps(w + i + 4), d1), d1));
    }
    if (i + 4 <= n) {
        __m128 d0 = _mm_sub_ps(_mm_loadu_ps(q + i), cvt4_u8(c + i));
        s0 = _mm_add_ps(s0, _mm_mul_ps(_mm_mul_ps(_mm_loadu_ps(w + i), d0), d0));
        i += 4;
    }
    float s = hsum128(_mm_add_ps(s0, s1));
    for (; i < n; i++) {
        float d = q[i] - (float)c[i];
        s += w[i] * d * d;
    }
    return s;
}

SSE41 static float sq8_dot_sse(const float *q, const uint8_t *c, size_t n)
{
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = _mm_add_ps(s0, _mm_mul_ps(_mm_loadu_ps(q + i), cvt4_u8(c + i)));
        s1 = _mm_add_ps(s1, _mm_mul_ps(_mm_loadu_ps(q + i + 4), cvt4_u8(c + i + 4)));
    }
    if (i + 4 <= n) {
        s0 = _mm_add_ps(s0, _mm_mul_ps(_mm_loadu_ps(q + i), cvt4_u8(c + i)));
        i += 4;
    }
    float s = hsum128(_mm_add_ps(s0, s1));
    for (; i < n; i++)
        s += q[i] * (float)c[i];
    return s;
}

SSE41 static float sq8_l1_sse(const float *q, const float *w, const uint8_t *c, size_t n)
{
    const __m128 sign = _mm_set1_ps(-0.0f);
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128 d0 = _mm_andnot_ps(sign, _mm_sub_ps(_mm_loadu_ps(q + i), cvt4_u8(c + i)));
        __m128 d1 = _mm_andnot_ps(sign, _mm_sub_ps(_mm_loadu_ps(q + i + 4), cvt4_u8(c + i + 4)));
        s0 = _mm_add_ps(s0, _mm_mul_ps(_mm_loadu_ps(w + i), d0));
        s1 = _mm_add_ps(s1, _mm_mul_ps(_mm_loadu_ps(w + i + 4), d1));
    }
    if (i + 4 <= n) {
        __m128 d0 = _mm_andnot_ps(sign, _mm_sub_ps(_mm_loadu_ps(q + i), cvt4_u8(c + i)));
        s0 = _mm_add_ps(s0, _mm_mul_ps(_mm_loadu_ps(w + i), d0));
        i += 4;
    }
    float s = hsum128(_mm_add_ps(s0, s1));
    for (; i < n; i++)
        s += w[i] * fabsf(q[i] - (float)c[i]);
    return s;
}

/* |a-b| per byte, widened to 16 bits, squared and pair-summed into 32-bit lanes. */
SSE41 static uint32_t u8_l2sq_sse(const uint8_t *a, const uint8_t *b, size_t n)
{
    const __m128i z = _mm_setzero_si128();
    __m128i s0 = _mm_setzero_si128(), s1 = _mm_setzero_si128();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(a + i));
        __m128i y = _mm_loadu_si128((const __m128i *)(b + i));
        __m128i d = _mm_or_si128(_mm_subs_epu8(x, y), _mm_subs_epu8(y, x));
        __m128i lo = _mm_unpacklo_epi8(d, z), hi = _mm_unpackhi_epi8(d, z);
        s0 = _mm_add_epi32(s0, _mm_madd_epi16(lo, lo));
        s1 = _mm_add_epi32(s1, _mm_madd_epi16(hi, hi));
    }
    s0 = _mm_add_epi32(s0, s1);
    s0 = _mm_add_epi32(s0, _mm_shuffle_epi32(s0, 0x4e));
    s0 = _mm_add_epi32(s0, _mm_shuffle_epi32(s0, 0xb1));
    uint32_t s = (uint32_t)_mm_cvtsi128_si32(s0);
    for (; i < n; i++) {
        int d = (int)a[i] - (int)b[i];
        s += (uint32_t)(d * d);
    }
    return s;
}

extern const struct dist_ops dist_ops_sse;
const struct dist_ops dist_ops_sse = {
    .level = DIST_SSE,
    .name = "sse",
    .l2sq = l2sq_sse,
    .dot = dot_sse,
    .cosine = cosine_sse,
    .l1 = l1_sse,
    .sq8_l2 = sq8_l2_sse,
    .sq8_dot = sq8_dot_sse,
    .sq8_l1 = sq8_l1_sse,
    .u8_l2sq = u8_l2sq_sse,
};

/* ---------------------------------------------------------------- AVX2 + FMA */

/* Lane masks for the tail: loading 8 ints at mask_tab + 8 - r enables the first r lanes. */
static const int32_t mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

AVX2 static inline __m256i tail_mask256(size_t r)
{
    return _mm256_loadu_si256((const __m256i *)(mask_tab + 8 - r));
}

AVX2 static inline float hsum256(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

/* Eight codes at c, widened to floats (one vpmovzxbd with a memory operand). */
AVX2 static inline __m256 cvt8_u8(const uint8_t *c)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)c)));
}

/* The last r < 8 codes of c[0..n), widened to floats; lanes past r are 0. */
AVX2 static inline __m256 cvt8_u8_tail(const uint8_t *c, size_t n, size_t r)
{
    __m128i x = _mm_cvtsi64_si128((long long)load_tail_u8(c, n, r));
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(x));
}

AVX2 static float l2sq_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    __m256 s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    if (i + 16 <= n) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        i += 16;
    }
    if (i + 8 <= n) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s2 = _mm256_fmadd_ps(d, d, s2);
        i += 8;
    }
    if (i < n) {
        __m256i m = tail_mask256(n - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

AVX2 static float dot_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    __m256 s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    if (i + 16 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        i += 16;
    }
    if (i + 8 <= n) {
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s2);
        i += 8;
    }
    if (i < n) {
        __m256i m = tail_mask256(n - i);
        s3 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s3);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

AVX2 static float cosine_avx2(const float *a, const float *b, size_t n)
{
    /* Three FMAs per eight floats: twelve chains keep both FMA ports busy. */
    __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps(), d2 = _mm256_setzero_ps();
    __m256 d3 = _mm256_setzero_ps(), x0 = _mm256_setzero_ps(), x1 = _mm256_setzero_ps();
    __m256 x2 = _mm256_setzero_ps(), x3 = _mm256_setzero_ps(), y0 = _mm256_setzero_ps();
    __m256 y1 = _mm256_setzero_ps(), y2 = _mm256_setzero_ps(), y3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a0 = _mm256_loadu_ps(a + i), b0 = _mm256_loadu_ps(b + i);
        d0 = _mm256_fmadd_ps(a0, b0, d0);
        x0 = _mm256_fmadd_ps(a0, a0, x0);
        y0 = _mm256_fmadd_ps(b0, b0, y0);
        __m256 a1 = _mm256_loadu_ps(a + i + 8), b1 = _mm256_loadu_ps(b + i + 8);
        d1 = _mm256_fmadd_ps(a1, b1, d1);
        x1 = _mm256_fmadd_ps(a1, a1, x1);
        y1 = _mm256_fmadd_ps(b1, b1, y1);
        __m256 a2 = _mm256_loadu_ps(a + i + 16), b2 = _mm256_loadu_ps(b + i + 16);
        d2 = _mm256_fmadd_ps(a2, b2, d2);
        x2 = _mm256_fmadd_ps(a2, a2, x2);
        y2 = _mm256_fmadd_ps(b2, b2, y2);
        __m256 a3 = _mm256_loadu_ps(a + i + 24), b3 = _mm256_loadu_ps(b + i + 24);
        d3 = _mm256_fmadd_ps(a3, b3, d3);
        x3 = _mm256_fmadd_ps(a3, a3, x3);
        y3 = _mm256_fmadd_ps(b3, b3, y3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a0 = _mm256_loadu_ps(a + i), b0 = _mm256_loadu_ps(b + i);
        d0 = _mm256_fmadd_ps(a0, b0, d0);
        x0 = _mm256_fmadd_ps(a0, a0, x0);
        y0 = _mm256_fmadd_ps(b0, b0, y0);
    }
    if (i < n) {
        __m256i m = tail_mask256(n - i);
        __m256 a1 = _mm256_maskload_ps(a + i, m), b1 = _mm256_maskload_ps(b + i, m);
        d1 = _mm256_fmadd_ps(a1, b1, d1);
        x1 = _mm256_fmadd_ps(a1, a1, x1);
        y1 = _mm256_fmadd_ps(b1, b1, y1);
    }
    d0 = _mm256_add_ps(_mm256_add_ps(d0, d1), _mm256_add_ps(d2, d3));
    x0 = _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3));
    y0 = _mm256_add_ps(_mm256_add_ps(y0, y1), _mm256_add_ps(y2, y3));
    return cos_finish(hsum256(d0), hsum256(x0), hsum256(y0));
}

AVX2 static float l1_avx2(const float *a, const float *b, size_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    __m256 s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_add_ps(s0, _mm256_andnot_ps(sign, d0));
        s1 = _mm256_add_ps(s1, _mm256_andnot_ps(sign, d1));
        s2 = _mm256_add_ps(s2, _mm256_andnot_ps(sign, d2));
        s3 = _mm256_add_ps(s3, _mm256_andnot_ps(sign, d3));
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_add_ps(s0, _mm256_andnot_ps(sign, d));
    }
    if (i < n) {
        __m256i m = tail_mask256(n - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        s1 = _mm256_add_ps(s1, _mm256_andnot_ps(sign, d));
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/* w * (q - c)^2 added to s, for eight lanes. */
#define SQ8_L2_STEP8(s, qv, wv, cv)                                                                \
    do {                                                                                           \
        __m256 d_ = _mm256_sub_ps((qv), (cv));                                                     \
        (s) = _mm256_fmadd_ps(_mm256_mul_ps((wv), d_), d_, (s));                                   \
    } while (0)

AVX2 static float sq8_l2_avx2(const float *q, const float *w, const uint8_t *c, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    __m256 s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        SQ8_L2_STEP8(s0, _mm256_loadu_ps(q + i), _mm256_loadu_ps(w + i), cvt8_u8(c + i));
        SQ8_L2_STEP8(s1, _mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(w + i + 8),
                     cvt8_u8(c + i + 8));
        SQ8_L2_STEP8(s2, _mm256_loadu_ps(q + i + 16), _mm256_loadu_ps(w + i + 16),
                     cvt8_u8(c + i + 16));
        SQ8_L2_STEP8(s3, _mm256_loadu_ps(q + i + 24), _mm256_loadu_ps(w + i + 24),
                     cvt8_u8(c + i + 24));
    }
    for (; i + 8 <= n; i += 8)
        SQ8_L2_STEP8(s0, _mm256_loadu_ps(q + i), _mm256_loadu_ps(w + i), cvt8_u8(c + i));
    if (i < n) {
        __m256i m = tail_mask256(n - i);
        SQ8_L2_STEP8(s1, _mm256_maskload_ps(q + i, m), _mm256_maskload_ps(w + i, m),
                     cvt8_u8_tail(c, n, n - i));
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

AVX2 static float sq8_dot_avx2(const float *q, const uint8_t *c, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    __m256 s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), cvt8_u8(c + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), cvt8_u8(c + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16), cvt8_u8(c + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24), cvt8_u8(c + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), cvt8_u8(c + i), s0);
    if (i < n) {
        __m256i m = tail_mask256(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, m), cvt8_u8_tail(c, n, n - i), s1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/* w * |q - c| added to s, for eight lanes. */
#define SQ8_L1_STEP8(s, qv, wv, cv)                                                                \
    do {                                                                                           \
        __m256 d_ = _mm256_andnot_ps(sign, _mm256_sub_ps((qv), (cv)));                             \
        (s) = _mm256_fmadd_ps((wv), d_, (s));                                                      \
    } while (0)

AVX2 static float sq8_l1_avx2(const float *q, const float *w, const uint8_t *c, size_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    __m256 s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        SQ8_L1_STEP8(s0, _mm256_loadu_ps(q + i), _mm256_loadu_ps(w + i), cvt8_u8(c + i));
        SQ8_L1_STEP8(s1, _mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(w + i + 8),
                     cvt8_u8(c + i + 8));
        SQ8_L1_STEP8(s2, _mm256_loadu_ps(q + i + 16), _mm256_loadu_ps(w + i + 16),
                     cvt8_u8(c + i + 16));
        SQ8_L1_STEP8(s3, _mm256_loadu_ps(q + i + 24), _mm256_loadu_ps(w + i + 24),
                     cvt8_u8(c + i + 24));
    }
    for (; i + 8 <= n; i += 8)
        SQ8_L1_STEP8(s0, _mm256_loadu_ps(q + i), _mm256_loadu_ps(w + i), cvt8_u8(c + i));
    if (i < n) {
        __m256i m = tail_mask256(n - i);
        SQ8_L1_STEP8(s1, _mm256_maskload_ps(q + i, m), _mm256_maskload_ps(w + i, m),
                     cvt8_u8_tail(c, n, n - i));
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

AVX2 static uint32_t u8_l2sq_avx2(const uint8_t *a, const uint8_t *b, size_t n)
{
    const __m256i z = _mm256_setzero_si256();
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(a + i));
        __m256i y = _mm256_loadu_si256((const __m256i *)(b + i));
        __m256i d = _mm256_or_si256(_mm256_subs_epu8(x, y), _mm256_subs_epu8(y, x));
        __m256i lo = _mm256_unpacklo_epi8(d, z), hi = _mm256_unpackhi_epi8(d, z);
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(lo, lo));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(hi, hi));
    }
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(_mm256_add_epi32(s0, s1)),
                              _mm256_extracti128_si256(_mm256_add_epi32(s0, s1), 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    uint32_t s = (uint32_t)_mm_cvtsi128_si32(t);
    for (; i < n; i++) {
        int d = (int)a[i] - (int)b[i];
        s += (uint32_t)(d * d);
    }
    return s;
}

extern const struct dist_ops dist_ops_avx2;
const struct dist_ops dist_ops_avx2 = {
    .level = DIST_AVX2,
    .name = "avx2",
    .l2sq = l2sq_avx2,
    .dot = dot_avx2,
    .cosine = cosine_avx2,
    .l1 = l1_avx2,
    .sq8_l2 = sq8_l2_avx2,
    .sq8_dot = sq8_dot_avx2,
    .sq8_l1 = sq8_l1_avx2,
    .u8_l2sq = u8_l2sq_avx2,
};

/* ---------------------------------------------------------------- AVX-512 F + BW */

/*
 * Tails use masked loads, which never touch (or fault on) the disabled lanes, so any n is
 * handled without reading past the end of the arrays.
 */

AVX512 static inline __mmask16 tail_mask512(size_t r)
{
    return (__mmask16)((1u << r) - 1);
}

/* Sixteen codes at c, widened to floats (one vpmovzxbd with a memory operand). */
AVX512 static inline __m512 cvt16_u8(const uint8_t *c)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)c)));
}

/* The first r < 16 codes at c, widened to floats; lanes past r are 0. Needs AVX-512BW. */
AVX512 static inline __m512 cvt16_u8_tail(const uint8_t *c, __mmask16 m)
{
    __m512i x = _mm512_maskz_loadu_epi8((__mmask64)m, c);
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(x)));
}

AVX512 static float l2sq_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    __m512 s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    if (i + 32 <= n) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        i += 32;
    }
    if (i + 16 <= n) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s2 = _mm512_fmadd_ps(d, d, s2);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = tail_mask512(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s3 = _mm512_fmadd_ps(d, d, s3);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static float dot_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    __m512 s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    if (i + 32 <= n) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        i += 32;
    }
    if (i + 16 <= n) {
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s2);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = tail_mask512(n - i);
        s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s3);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static float cosine_avx512(const float *a, const float *b, size_t n)
{
    __m512 d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps(), x0 = _mm512_setzero_ps();
    __m512 x1 = _mm512_setzero_ps(), y0 = _mm512_setzero_ps(), y1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a0 = _mm512_loadu_ps(a + i), b0 = _mm512_loadu_ps(b + i);
        __m512 a1 = _mm512_loadu_ps(a + i + 16), b1 = _mm512_loadu_ps(b + i + 16);
        d0 = _mm512_fmadd_ps(a0, b0, d0);
        d1 = _mm512_fmadd_ps(a1, b1, d1);
        x0 = _mm512_fmadd_ps(a0, a0, x0);
        x1 = _mm512_fmadd_ps(a1, a1, x1);
        y0 = _mm512_fmadd_ps(b0, b0, y0);
        y1 = _mm512_fmadd_ps(b1, b1, y1);
    }
    if (i + 16 <= n) {
        __m512 a0 = _mm512_loadu_ps(a + i), b0 = _mm512_loadu_ps(b + i);
        d0 = _mm512_fmadd_ps(a0, b0, d0);
        x0 = _mm512_fmadd_ps(a0, a0, x0);
        y0 = _mm512_fmadd_ps(b0, b0, y0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = tail_mask512(n - i);
        __m512 a1 = _mm512_maskz_loadu_ps(m, a + i), b1 = _mm512_maskz_loadu_ps(m, b + i);
        d1 = _mm512_fmadd_ps(a1, b1, d1);
        x1 = _mm512_fmadd_ps(a1, a1, x1);
        y1 = _mm512_fmadd_ps(b1, b1, y1);
    }
    d0 = _mm512_add_ps(d0, d1);
    x0 = _mm512_add_ps(x0, x1);
    y0 = _mm512_add_ps(y0, y1);
    return cos_finish(_mm512_reduce_add_ps(d0), _mm512_reduce_add_ps(x0), _mm512_reduce_add_ps(y0));
}

AVX512 static float l1_avx512(const float *a, const float *b, size_t n)
{
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    __m512 s3 = _mm512_setzero_ps();
    size_t i = 0;
#define ABS512(v) _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask))
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_add_ps(s0, ABS512(d0));
        s1 = _mm512_add_ps(s1, ABS512(d1));
        s2 = _mm512_add_ps(s2, ABS512(d2));
        s3 = _mm512_add_ps(s3, ABS512(d3));
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_add_ps(s0, ABS512(d));
    }
    if (i < n) {
        __mmask16 m = tail_mask512(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_add_ps(s1, ABS512(d));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* w * (q - c)^2 added to s, for sixteen lanes. */
#define SQ8_L2_STEP16(s, qv, wv, cv)                                                               \
    do {                                                                                           \
        __m512 d_ = _mm512_sub_ps((qv), (cv));                                                     \
        (s) = _mm512_fmadd_ps(_mm512_mul_ps((wv), d_), d_, (s));                                   \
    } while (0)

AVX512 static float sq8_l2_avx512(const float *q, const float *w, const uint8_t *c, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    __m512 s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        SQ8_L2_STEP16(s0, _mm512_loadu_ps(q + i), _mm512_loadu_ps(w + i), cvt16_u8(c + i));
        SQ8_L2_STEP16(s1, _mm512_loadu_ps(q + i + 16), _mm512_loadu_ps(w + i + 16),
                      cvt16_u8(c + i + 16));
        SQ8_L2_STEP16(s2, _mm512_loadu_ps(q + i + 32), _mm512_loadu_ps(w + i + 32),
                      cvt16_u8(c + i + 32));
        SQ8_L2_STEP16(s3, _mm512_loadu_ps(q + i + 48), _mm512_loadu_ps(w + i + 48),
                      cvt16_u8(c + i + 48));
    }
    for (; i + 16 <= n; i += 16)
        SQ8_L2_STEP16(s0, _mm512_loadu_ps(q + i), _mm512_loadu_ps(w + i), cvt16_u8(c + i));
    if (i < n) {
        __mmask16 m = tail_mask512(n - i);
        SQ8_L2_STEP16(s1, _mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, w + i),
                      cvt16_u8_tail(c + i, m));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static float sq8_dot_avx512(const float *q, const uint8_t *c, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    __m512 s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), cvt16_u8(c + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), cvt16_u8(c + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 32), cvt16_u8(c + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 48), cvt16_u8(c + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), cvt16_u8(c + i), s0);
    if (i < n) {
        __mmask16 m = tail_mask512(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), cvt16_u8_tail(c + i, m), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* w * |q - c| added to s, for sixteen lanes. */
#define SQ8_L1_STEP16(s, qv, wv, cv)                                                               \
    do {                                                                                           \
        __m512 d_ = ABS512(_mm512_sub_ps((qv), (cv)));                                             \
        (s) = _mm512_fmadd_ps((wv), d_, (s));                                                      \
    } while (0)

AVX512 static float sq8_l1_avx512(const float *q, const float *w, const uint8_t *c, size_t n)
{
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    __m512 s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        SQ8_L1_STEP16(s0, _mm512_loadu_ps(q + i), _mm512_loadu_ps(w + i), cvt16_u8(c + i));
        SQ8_L1_STEP16(s1, _mm512_loadu_ps(q + i + 16), _mm512_loadu_ps(w + i + 16),
                      cvt16_u8(c + i + 16));
        SQ8_L1_STEP16(s2, _mm512_loadu_ps(q + i + 32), _mm512_loadu_ps(w + i + 32),
                      cvt16_u8(c + i + 32));
        SQ8_L1_STEP16(s3, _mm512_loadu_ps(q + i + 48), _mm512_loadu_ps(w + i + 48),
                      cvt16_u8(c + i + 48));
    }
    for (; i + 16 <= n; i += 16)
        SQ8_L1_STEP16(s0, _mm512_loadu_ps(q + i), _mm512_loadu_ps(w + i), cvt16_u8(c + i));
    if (i < n) {
        __mmask16 m = tail_mask512(n - i);
        SQ8_L1_STEP16(s1, _mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, w + i),
                      cvt16_u8_tail(c + i, m));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
#undef ABS512

AVX512 static uint32_t u8_l2sq_avx512(const uint8_t *a, const uint8_t *b, size_t n)
{
    const __m512i z = _mm512_setzero_si512();
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i < n; i += 64) {
        __mmask64 m = n - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        __m512i x = _mm512_maskz_loadu_epi8(m, a + i);
        __m512i y = _mm512_maskz_loadu_epi8(m, b + i);
        __m512i d = _mm512_or_si512(_mm512_subs_epu8(x, y), _mm512_subs_epu8(y, x));
        __m512i lo = _mm512_unpacklo_epi8(d, z), hi = _mm512_unpackhi_epi8(d, z);
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(lo, lo));
        s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(hi, hi));
    }
    return (uint32_t)_mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

extern const struct dist_ops dist_ops_avx512;
const struct dist_ops dist_ops_avx512 = {
    .level = DIST_AVX512,
    .name = "avx512",
    .l2sq = l2sq_avx512,
    .dot = dot_avx512,
    .cosine = cosine_avx512,
    .l1 = l1_avx512,
    .sq8_l2 = sq8_l2_avx512,
    .sq8_dot = sq8_dot_avx512,
    .sq8_l1 = sq8_l1_avx512,
    .u8_l2sq = u8_l2sq_avx512,
};

#else
/* Not x86-64: nothing here, but ISO C wants at least one declaration per file. */
typedef int dist_x86_unused;
#endif
