/* sq8.c - per-dimension scalar quantization: ranges, encoding, query preparation. */
#include "sq8.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "err.h"

int sq8_ranges_init(struct sq8_ranges *r, uint32_t dim)
{
    r->dim = dim;
    r->min = calloc(dim, sizeof(float));
    r->step = calloc(dim, sizeof(float));
    r->w2 = calloc(dim, sizeof(float));
    r->max = calloc(dim, sizeof(float));
    r->shared = 0;
    r->step2 = 1.0f;
    if (r->min == NULL || r->step == NULL || r->w2 == NULL || r->max == NULL) {
        sq8_ranges_free(r);
        return DV_ENOMEM;
    }
    for (uint32_t d = 0; d < dim; d++) {
        r->step[d] = 1.0f;
        r->w2[d] = 1.0f;
    }
    return DV_OK;
}

void sq8_ranges_free(struct sq8_ranges *r)
{
    free(r->min);
    free(r->step);
    free(r->w2);
    free(r->max);
    r->min = r->step = r->w2 = r->max = NULL;
}

void sq8_begin(struct sq8_ranges *r)
{
    for (uint32_t d = 0; d < r->dim; d++) {
        r->min[d] = FLT_MAX;
        r->max[d] = -FLT_MAX;
    }
}

void sq8_observe(struct sq8_ranges *r, const float *x)
{
    for (uint32_t d = 0; d < r->dim; d++) {
        if (x[d] < r->min[d])
            r->min[d] = x[d];
        if (x[d] > r->max[d])
            r->max[d] = x[d];
    }
}

void sq8_finish(struct sq8_ranges *r, int shared)
{
    float widest = 0.0f;
    for (uint32_t d = 0; d < r->dim; d++) {
        if (r->min[d] > r->max[d]) { /* nothing observed */
            r->min[d] = 0.0f;
            r->max[d] = 0.0f;
        }
        if (r->max[d] - r->min[d] > widest)
            widest = r->max[d] - r->min[d];
    }
    r->shared = shared;
    for (uint32_t d = 0; d < r->dim; d++) {
        float step = (shared ? widest : r->max[d] - r->min[d]) / 255.0f;
        if (!(step > 0.0f) || !isfinite(step))
            step = 1.0f;
        r->step[d] = step;
        r->w2[d] = step * step;
    }
    r->step2 = r->w2[0];
}

void sq8_encode(const struct sq8_ranges *r, const float *x, uint8_t *codes)
{
    for (uint32_t d = 0; d < r->dim; d++) {
        float v = (x[d] - r->min[d]) / r->step[d] + 0.5f;
        codes[d] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
    }
}

void sq8_prep_offset(const struct sq8_ranges *r, const float *q, float *out)
{
    for (uint32_t d = 0; d < r->dim; d++)
        out[d] = (q[d] - r->min[d]) / r->step[d];
}

int sq8_prep_codes(const struct sq8_ranges *r, const float *q, uint8_t *out)
{
    for (uint32_t d = 0; d < r->dim; d++) {
        float v = (q[d] - r->min[d]) / r->step[d];
        if (!(v >= -0.5f && v <= 255.5f))
            return 0;
        v += 0.5f;
        out[d] = v >= 255.0f ? 255 : (uint8_t)v;
    }
    return 1;
}

void sq8_prep_dot(const struct sq8_ranges *r, const float *q, float *out, float *bias)
{
    double b = 0.0;
    for (uint32_t d = 0; d < r->dim; d++) {
        out[d] = q[d] * r->step[d];
        b += (double)q[d] * r->min[d];
    }
    *bias = (float)b;
}
