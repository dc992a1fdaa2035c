/* dist_neon.c - arm64 Advanced SIMD (NEON) distance kernels. */
#include "dist.h"

#if defined(__aarch64__)

#include <arm_neon.h>
#include <math.h>

/*
 * Advanced SIMD is part of the arm64 base ISA, so no target attribute is needed. Four
 * accumulators hide the FMA latency; tails shorter than four lanes are done in scalar code.
 */

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

static float l2sq_neon(const float *a, const float *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0), s2 = vdupq_n_f32(0);
    float32x4_t s3 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        float32x4_t d2 = vsubq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        float32x4_t d3 = vsubq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
        s2 = vfmaq_f32(s2, d2, d2);
        s3 = vfmaq_f32(s3, d3, d3);
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t d = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        s0 = vfmaq_f32(s0, d, d);
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

static float dot_neon(const float *a, const float *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0), s2 = vdupq_n_f32(0);
    float32x4_t s3 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static float cosine_neon(const float *a, const float *b, size_t n)
{
    float32x4_t d0 = vdupq_n_f32(0), d1 = vdupq_n_f32(0), x0 = vdupq_n_f32(0);
    float32x4_t x1 = vdupq_n_f32(0), y0 = vdupq_n_f32(0), y1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t a0 = vld1q_f32(a + i), b0 = vld1q_f32(b + i);
        float32x4_t a1 = vld1q_f32(a + i + 4), b1 = vld1q_f32(b + i + 4);
        d0 = vfmaq_f32(d0, a0, b0);
        d1 = vfmaq_f32(d1, a1, b1);
        x0 = vfmaq_f32(x0, a0, a0);
        x1 = vfmaq_f32(x1, a1, a1);
        y0 = vfmaq_f32(y0, b0, b0);
        y1 = vfmaq_f32(y1, b1, b1);
    }
    if (i + 4 <= n) {
        float32x4_t a0 = vld1q_f32(a + i), b0 = vld1q_f32(b + i);
        d0 = vfmaq_f32(d0, a0, b0);
        x0 = vfmaq_f32(x0, a0, a0);
        y0 = vfmaq_f32(y0, b0, b0);
        i += 4;
    }
    float dot = vaddvq_f32(vaddq_f32(d0, d1));
    float na = vaddvq_f32(vaddq_f32(x0, x1));
    float nb = vaddvq_f32(vaddq_f32(y0, y1));
    for (; i < n; i++) {
        dot += a[i] * b[i];
        na += a[i] * a[i];
        nb += b[i] * b[i];
    }
    return cos_finish(dot, na, nb);
}

static float l1_neon(const float *a, const float *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0), s2 = vdupq_n_f32(0);
    float32x4_t s3 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vaddq_f32(s0, vabdq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
        s1 = vaddq_f32(s1, vabdq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4)));
        s2 = vaddq_f32(s2, vabdq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8)));
        s3 = vaddq_f32(s3, vabdq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12)));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vaddq_f32(s0, vabdq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++)
        s += fabsf(a[i] - b[i]);
    return s;
}

/* Eight codes at c, widened to two vectors of four floats. */
static inline void cvt8_u8(const uint8_t *c, float32x4_t *lo, float32x4_t *hi)
{
    uint16x8_t h = vmovl_u8(vld1_u8(c));
    *lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(h)));
    *hi = vcvtq_f32_u32(vmovl_u16(vget_high_u16(h)));
}

static float sq8_l2_neon(const float *q, const float *w, const uint8_t *c, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t c0, c1;
        cvt8_u8(c + i, &c0, &c1);
        float32x4_t d0 = vsubq_f32(vld1q_f32(q + i), c0);
        float32x4_t d1 = vsubq_f32(vld1q_f32(q + i + 4), c1);
        s0 = vfmaq_f32(s0, vmulq_f32(vld1q_f32(w + i), d0), d0);
        s1 = vfmaq_f32(s1, vmulq_f32(vld1q_f32(w + i + 4), d1), d1);
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) {
        float d = q[i] - (float)c[i];
        s += w[i] * d * d;
    }
    return s;
}

static float sq8_dot_neon(const float *q, const uint8_t *c, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t c0, c1;
        cvt8_u8(c + i, &c0, &c1);
        s0 = vfmaq_f32(s0, vld1q_f32(q + i), c0);
        s1 = vfmaq_f32(s1, vld1q_f32(q + i + 4), c1);
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += q[i] * (float)c[i];
    return s;
}

static float sq8_l1_neon(const float *q, const float *w, const uint8_t *c, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t c0, c1;
        cvt8_u8(c + i, &c0, &c1);
        s0 = vfmaq_f32(s0, vld1q_f32(w + i), vabdq_f32(vld1q_f32(q + i), c0));
        s1 = vfmaq_f32(s1, vld1q_f32(w + i + 4), vabdq_f32(vld1q_f32(q + i + 4), c1));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += w[i] * fabsf(q[i] - (float)c[i]);
    return s;
}

static uint32_t u8_l2sq_neon(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint32x4_t s0 = vdupq_n_u32(0), s1 = vdupq_n_u32(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint8x16_t d = vabdq_u8(vld1q_u8(a + i), vld1q_u8(b + i));
        uint16x8_t lo = vmull_u8(vget_low_u8(d), vget_low_u8(d));
        uint16x8_t hi = vmull_u8(vget_high_u8(d), vget_high_u8(d));
        s0 = vpadalq_u16(s0, lo);
        s1 = vpadalq_u16(s1, hi);
    }
    uint32_t s = vaddvq_u32(vaddq_u32(s0, s1));
    for (; i < n; i++) {
        int d = (int)a[i] - (int)b[i];
        s += (uint32_t)(d * d);
    }
    return s;
}

extern const struct dist_ops dist_ops_neon;
const struct dist_ops dist_ops_neon = {
    .level = DIST_NEON,
    .name = "neon",
    .l2sq = l2sq_neon,
    .dot = dot_neon,
    .cosine = cosine_neon,
    .l1 = l1_neon,
    .sq8_l2 = sq8_l2_neon,
    .sq8_dot = sq8_dot_neon,
    .sq8_l1 = sq8_l1_neon,
    .u8_l2sq = u8_l2sq_neon,
};

#else
/* Not arm64: nothing here, but ISO C wants at least one declaration per file. */
typedef int dist_neon_unused;
#endif
