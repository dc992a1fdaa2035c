/* multi.h - multivectors (several rows per point, late-interaction models such as ColBERT):
 * MaxSim scoring. */
#ifndef DV_MULTI_H
#define DV_MULTI_H

#include <stdint.h>

#include "hnsw.h"

/*
 * MaxSim of a query of `qrows` rows against a point of `drows` rows (row-major, dim floats
 * per row): for every query row its best match among the point's rows, summed. With
 * HNSW_COSINE (rows normalised by the caller) and HNSW_IP the match is the dot product and
 * higher is better; with HNSW_L2 (euclidean distance, not squared) and HNSW_L1 it is the
 * distance and lower is better, so the sum of the smallest distances is returned.
 */
float multi_maxsim(enum hnsw_metric metric, const float *doc, uint32_t drows, const float *q,
                   uint32_t qrows, uint32_t dim);

/* Whether scores of `metric` are better when higher (cosine, dot) or lower (euclid, l1). */
static inline int multi_higher_better(enum hnsw_metric metric)
{
    return metric == HNSW_COSINE || metric == HNSW_IP;
}

#endif
