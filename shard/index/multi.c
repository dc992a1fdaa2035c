/* multi.c - MaxSim scoring of multivectors (multi.h). */
#include "multi.h"

#include <math.h>

#include "dist.h"

float multi_maxsim(enum hnsw_metric metric, const float *doc, uint32_t drows, const float *q,
                   uint32_t qrows, uint32_t dim)
{
    const struct dist_ops *d = dist_get();
    bool higher = multi_higher_better(metric);
    float sum = 0;
    for (uint32_t i = 0; i < qrows; i++) {
        const float *qr = q + (size_t)i * dim;
        float best = higher ? -INFINITY : INFINITY;
        for (uint32_t j = 0; j < drows; j++) {
            const float *dr = doc + (size_t)j * dim;
            float s;
            if (higher)
                s = d->dot(qr, dr, dim);
            else if (metric == HNSW_L2)
                s = sqrtf(d->l2sq(qr, dr, dim));
            else
                s = d->l1(qr, dr, dim);
            if (higher ? s > best : s < best)
                best = s;
        }
        if (drows > 0)
            sum += best;
    }
    return sum;
}
