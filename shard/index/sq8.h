/* sq8.h - per-dimension scalar quantization of float vectors to uint8 codes (internal). */
#ifndef DV_SQ8_H
#define DV_SQ8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Ranges: code = round((x - min[d]) / step[d]) clamped to 0..255, step = (max - min) / 255
 * (1 when max == min, so constant dimensions code as 0 exactly).
 *
 * With `shared`, every dimension keeps its own offset min[d] but all share one step (the
 * widest range / 255). Then a query coded the same way is compared with exact integer
 * arithmetic: l2 = step^2 * sum (qc[d] - c[d])^2. Narrow dimensions get coarser codes, but
 * for l2 their error is no larger than any other dimension's, in absolute terms.
 */
struct sq8_ranges {
    uint32_t dim;
    int shared;  /* one step for all dimensions */
    float *min;  /* dim */
    float *max;  /* dim */
    float *step; /* dim */
    float *w2;   /* dim: step^2, weights of the l2 kernel */
    float step2; /* shared: step^2 */
};

int sq8_ranges_init(struct sq8_ranges *r, uint32_t dim);
void sq8_ranges_free(struct sq8_ranges *r);

/* Starts a min/max scan; sq8_observe() widens the ranges; sq8_finish() sets the steps. */
void sq8_begin(struct sq8_ranges *r);
void sq8_observe(struct sq8_ranges *r, const float *x);
void sq8_finish(struct sq8_ranges *r, int shared);

/* Encodes x[dim] into codes[dim]. */
void sq8_encode(const struct sq8_ranges *r, const float *x, uint8_t *codes);

/*
 * Prepares a query for the asymmetric kernels. For l2 and l1: out[d] = (q[d]-min[d])/step[d].
 * For dot: out[d] = q[d]*step[d] and *bias = sum q[d]*min[d], so q.x ~ bias + sq8_dot(out, c).
 */
void sq8_prep_offset(const struct sq8_ranges *r, const float *q, float *out);
/*
 * Codes a query like the data (shared ranges only). Returns 0 when some value lies outside
 * the trained range by more than half a step: clamping would distort the distances, and the
 * caller should use the asymmetric kernel instead.
 */
int sq8_prep_codes(const struct sq8_ranges *r, const float *q, uint8_t *out);

void sq8_prep_dot(const struct sq8_ranges *r, const float *q, float *out, float *bias);

#endif
