/* hnsw_int.h - internals of the HNSW index shared by its files (not an interface). */
#ifndef DV_HNSW_INT_H
#define DV_HNSW_INT_H

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "err.h"
#include "hnsw.h"
#include "sq8.h"

#define FLAG_USED    1u
#define FLAG_DELETED 2u

/* A (distance, slot) pair, the element of every heap and candidate list. */
struct cand {
    float d;
    uint32_t id;
};

/* Per-thread working memory of a search or insert, pooled per index. */
struct scratch {
    struct scratch *next;
    uint16_t *visited; /* visited[slot] == tag: seen in the current walk */
    size_t vcap;
    uint16_t tag;
    struct cand *cand; /* min-heap of nodes to expand */
    size_t cand_cap;
    struct cand *top; /* max-heap of the best accepted nodes */
    size_t top_cap;
    struct cand *sel; /* neighbour selection and re-rank work space */
    size_t sel_cap;
    uint32_t *batch; /* unvisited neighbours of the node being expanded */
    uint32_t *out;   /* selected neighbours */
    float *q1;       /* normalised query */
    float *q2;       /* SQ8-prepared query */
    uint8_t *qc;     /* SQ8-coded query (l2) */
};

struct hnsw_index {
    struct hnsw_params p;
    const struct dist_ops *ops;
    dist_fn fn;    /* float distance kernel */
    int one_minus; /* distance = 1 - fn() (ip, cosine) */
    uint32_t dim;
    uint32_t m, m0; /* max links on upper levels / level 0 */
    uint32_t stride0, stride_up;
    uint32_t vec_lines; /* cache lines of one float vector */
    uint32_t code_lines;
    double level_mult;

    /* Slot-addressed flat arrays, `cap` entries each. */
    size_t cap;
    size_t n_slots; /* high-water mark */
    float *vecs;
    uint32_t *level0;                       /* cap * stride0: [count, links...] */
    uint8_t *levels;                        /* top level of each node */
    uint8_t *ucap;                          /* upper levels allocated for the slot */
    uint8_t *flags;                         /* FLAG_USED | FLAG_DELETED */
    uint8_t *locks;                         /* per-node spin locks */
    uint32_t *upper_off;                    /* offset of the node's upper-level blocks in `upper` */
    uint8_t *codes;                         /* SQ8 codes, cap * dim, when p.sq8 */
    size_t vecs_map, level0_map, codes_map; /* mapped bytes of the three regions */

    uint32_t *upper; /* upper-level link blocks: [count, links...] per level */
    size_t upper_used, upper_cap;

    uint32_t *free_slots;
    size_t n_free, free_cap;

    struct sq8_ranges sq8;
    int sq8_ready;        /* atomic */
    uint64_t sq8_next_at; /* live count at which SQ8 is (re)trained automatically */
    int sq8_training;     /* atomic */

    uint64_t live, deleted; /* atomic */
    uint32_t ep;            /* entry point, atomic */
    int max_level;          /* atomic */
    uint64_t rng_ctr;       /* atomic */

    pthread_rwlock_t rw; /* shared: search, insert; exclusive: growth, training, replace */
    pthread_mutex_t alloc_mu;
    pthread_mutex_t ep_mu; /* held by an insert that raises the top level */
    pthread_mutex_t pool_mu;
    struct scratch *pool;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static inline uint32_t ld32(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void st32(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline uint8_t flags_of(const struct hnsw_index *ix, uint32_t s)
{
    return __atomic_load_n(&ix->flags[s], __ATOMIC_ACQUIRE);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline void node_lock(struct hnsw_index *ix, uint32_t s)
{
    uint8_t *l = &ix->locks[s];
    unsigned spins = 0;
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
            if (++spins < 64)
                cpu_relax();
            else
                sched_yield();
        }
    }
}

static inline void node_unlock(struct hnsw_index *ix, uint32_t s)
{
    __atomic_store_n(&ix->locks[s], 0, __ATOMIC_RELEASE);
}

/* Slots ever handed out; read without alloc_mu by calls that check a slot number. */
static inline size_t slots_used(struct hnsw_index *ix)
{
    return __atomic_load_n(&ix->n_slots, __ATOMIC_ACQUIRE);
}

static inline const float *vec_of(const struct hnsw_index *ix, uint32_t s)
{
    return ix->vecs + (size_t)s * ix->dim;
}

static inline uint32_t *links_of(const struct hnsw_index *ix, uint32_t s, int level)
{
    if (level == 0)
        return ix->level0 + (size_t)s * ix->stride0;
    return ix->upper + ix->upper_off[s] + (size_t)(level - 1) * ix->stride_up;
}

static inline float fdist(const struct hnsw_index *ix, const float *a, const float *b)
{
    float d = ix->fn(a, b, ix->dim);
    return ix->one_minus ? 1.0f - d : d;
}

static inline void prefetch_lines(const void *p, uint32_t lines)
{
    const char *c = p;
    for (uint32_t i = 0; i < lines; i++)
        __builtin_prefetch(c + 64 * (size_t)i, 0, 3);
}

static inline bool all_finite(const float *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

/* ---- heaps ------------------------------------------------------------------------------ */

static inline void minheap_push(struct cand *h, size_t *n, float d, uint32_t id)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].d <= d)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i].d = d;
    h[i].id = id;
}

static inline void minheap_pop(struct cand *h, size_t *n)
{
    size_t len = --(*n);
    struct cand last = h[len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len)
            break;
        if (c + 1 < len && h[c + 1].d < h[c].d)
            c++;
        if (last.d <= h[c].d)
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
}

static inline void maxheap_push(struct cand *h, size_t *n, float d, uint32_t id)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].d >= d)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i].d = d;
    h[i].id = id;
}

static inline void maxheap_pop(struct cand *h, size_t *n)
{
    size_t len = --(*n);
    struct cand last = h[len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len)
            break;
        if (c + 1 < len && h[c + 1].d > h[c].d)
            c++;
        if (last.d >= h[c].d)
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
}

/* Empties a max-heap into out[] in ascending order; returns the count. */
static inline size_t maxheap_drain_sorted(struct cand *h, size_t n, struct cand *out)
{
    size_t total = n;
    while (n > 0) {
        out[n - 1] = h[0];
        maxheap_pop(h, &n);
    }
    return total;
}

static inline int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->d < y->d)
        return -1;
    if (x->d > y->d)
        return 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Starts a new walk: a fresh visited generation. */
static inline void visit_reset(struct scratch *s)
{
    if (++s->tag == 0) {
        memset(s->visited, 0, s->vcap * sizeof(uint16_t));
        s->tag = 1;
    }
}

/* ---- query distance --------------------------------------------------------------------- */

/* How a walk measures the query against stored nodes: float vectors or SQ8 codes. */
struct qctx {
    const float *q;       /* float query (normalised for cosine), or SQ8-prepared query */
    int sq8;              /* 0: float, 1: SQ8 asymmetric kernels, 2: SQ8 l2 on integer codes */
    float bias;           /* SQ8 dot: q.min */
    const uint8_t *codes; /* sq8 == 2: the coded query */
};

static inline float qdist(const struct hnsw_index *ix, const struct qctx *qc, uint32_t s)
{
    if (!qc->sq8)
        return fdist(ix, qc->q, vec_of(ix, s));
    const uint8_t *c = ix->codes + (size_t)s * ix->dim;
    if (qc->sq8 == 2)
        return ix->sq8.step2 * (float)ix->ops->u8_l2sq(qc->codes, c, ix->dim);
    switch (ix->p.metric) {
    case HNSW_L2:
        return ix->ops->sq8_l2(qc->q, ix->sq8.w2, c, ix->dim);
    case HNSW_L1:
        return ix->ops->sq8_l1(qc->q, ix->sq8.step, c, ix->dim);
    default:
        return 1.0f - (qc->bias + ix->ops->sq8_dot(qc->q, c, ix->dim));
    }
}

struct walk {
    uint32_t ef;
    int level;
    hnsw_filter_fn filter;
    void *filter_arg;
    uint32_t exclude; /* a slot never returned (replace), or HNSW_NO_SLOT */
};

/* ---- shared by hnsw.c, hnsw_walk.c and hnsw_repair.c (hnsw_walk.c defines them) ---------- */

int hnsw_grow_cands(struct cand **arr, size_t *cap, size_t need);

/*
 * Takes a scratch from the pool (or makes one) sized for the current capacity and `ef`.
 * The caller holds ix->rw (shared or exclusive), so the capacity cannot change meanwhile.
 */
int hnsw_scratch_get(struct hnsw_index *ix, size_t ef, struct scratch **out);
void hnsw_scratch_put(struct hnsw_index *ix, struct scratch *s);
void hnsw_scratch_free(struct scratch *s);

/* Greedy descent (ef 1) from level `from` down to level `to` + 1; updates *cur and *cur_d. */
void hnsw_greedy(const struct hnsw_index *ix, const struct qctx *qc, int from, int to,
                 uint32_t *cur, float *cur_d, struct hnsw_stats *st);

/*
 * Best-first search of one level from `ep`. Leaves up to w->ef accepted nodes in s->top
 * (a max-heap, count in *ntop). Rejected nodes are expanded too: they guide the walk.
 */
int hnsw_search_level(const struct hnsw_index *ix, struct scratch *s, const struct qctx *qc,
                      uint32_t ep, float ep_d, const struct walk *w, size_t *ntop,
                      struct hnsw_stats *st);

/* The neighbour-selection heuristic; see hnsw_walk.c. */
uint32_t hnsw_select_neighbours(const struct hnsw_index *ix, const struct cand *c, size_t n,
                                uint32_t max, uint32_t *out, bool fill);

void hnsw_write_links(struct hnsw_index *ix, uint32_t s, int level, const uint32_t *ids,
                      uint32_t n);

/* Copies (for cosine: normalises) `vec` into slot s, and encodes it when SQ8 is ready. */
void hnsw_store_vector(struct hnsw_index *ix, uint32_t s, const float *vec);

/*
 * Links slot s (vector already stored) into levels min(level, top)..0, starting from the
 * entry point. Used by insert and replace. Caller holds ix->rw.
 */
int hnsw_link_node(struct hnsw_index *ix, struct scratch *s, uint32_t slot, int level, uint32_t ep,
                   int top, bool replacing);

#endif
