/* hnsw.c - HNSW (Malkov & Yashunin) on flat arrays: concurrent insert/search, repair, SQ8. */
#include "hnsw.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dist.h"
#include "err.h"
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

static bool all_finite(const float *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int random_level(struct hnsw_index *ix)
{
    uint64_t c = __atomic_fetch_add(&ix->rng_ctr, 1, __ATOMIC_RELAXED);
    uint64_t r = splitmix64(ix->p.seed ^ splitmix64(c));
    double u = ((double)(r >> 11) + 1.0) * (1.0 / 9007199254740992.0); /* (0, 1] */
    double l = -log(u) * ix->level_mult;
    return l >= HNSW_MAX_LEVEL - 1 ? HNSW_MAX_LEVEL - 1 : (int)l;
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
static size_t maxheap_drain_sorted(struct cand *h, size_t n, struct cand *out)
{
    size_t total = n;
    while (n > 0) {
        out[n - 1] = h[0];
        maxheap_pop(h, &n);
    }
    return total;
}

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->d < y->d)
        return -1;
    if (x->d > y->d)
        return 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* ---- scratch pool ----------------------------------------------------------------------- */

static void scratch_free(struct scratch *s)
{
    free(s->visited);
    free(s->cand);
    free(s->top);
    free(s->sel);
    free(s->batch);
    free(s->out);
    free(s->q1);
    free(s->q2);
    free(s->qc);
    free(s);
}

static int grow_cands(struct cand **arr, size_t *cap, size_t need)
{
    if (need <= *cap)
        return DV_OK;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need)
        ncap *= 2;
    struct cand *a = realloc(*arr, ncap * sizeof **arr);
    if (a == NULL)
        return DV_ENOMEM;
    *arr = a;
    *cap = ncap;
    return DV_OK;
}

/*
 * Takes a scratch from the pool (or makes one) sized for the current capacity and `ef`.
 * The caller holds ix->rw (shared or exclusive), so the capacity cannot change meanwhile.
 */
static int scratch_get(struct hnsw_index *ix, size_t ef, struct scratch **out)
{
    struct scratch *s;

    pthread_mutex_lock(&ix->pool_mu);
    s = ix->pool;
    if (s != NULL)
        ix->pool = s->next;
    pthread_mutex_unlock(&ix->pool_mu);

    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL)
            return DV_ENOMEM;
        s->batch = malloc(sizeof(uint32_t) * (ix->m0 + 1));
        s->out = malloc(sizeof(uint32_t) * (ix->m0 + 1));
        s->q1 = malloc(sizeof(float) * ix->dim);
        s->q2 = malloc(sizeof(float) * ix->dim);
        s->qc = malloc(ix->dim);
        if (s->batch == NULL || s->out == NULL || s->q1 == NULL || s->q2 == NULL || s->qc == NULL)
            goto err_free;
    }
    if (s->vcap < ix->cap) {
        uint16_t *v = realloc(s->visited, ix->cap * sizeof(uint16_t));
        if (v == NULL)
            goto err_free;
        memset(v, 0, ix->cap * sizeof(uint16_t));
        s->visited = v;
        s->vcap = ix->cap;
        s->tag = 0;
    }
    if (grow_cands(&s->top, &s->top_cap, ef + 2) != DV_OK ||
        grow_cands(&s->cand, &s->cand_cap, ef + ix->m0 + 2) != DV_OK ||
        grow_cands(&s->sel, &s->sel_cap, ef + ix->m0 + 2) != DV_OK)
        goto err_free;
    *out = s;
    return DV_OK;

err_free:
    scratch_free(s);
    return DV_ENOMEM;
}

static void scratch_put(struct hnsw_index *ix, struct scratch *s)
{
    pthread_mutex_lock(&ix->pool_mu);
    s->next = ix->pool;
    ix->pool = s;
    pthread_mutex_unlock(&ix->pool_mu);
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

static inline void qprefetch(const struct hnsw_index *ix, const struct qctx *qc, uint32_t s,
                             uint32_t lines)
{
    if (qc->sq8)
        prefetch_lines(ix->codes + (size_t)s * ix->dim,
                       lines < ix->code_lines ? lines : ix->code_lines);
    else
        prefetch_lines(vec_of(ix, s), lines < ix->vec_lines ? lines : ix->vec_lines);
}

/* ---- the walk --------------------------------------------------------------------------- */

/* Greedy descent (ef 1) from level `from` down to level `to` + 1; updates *cur and *cur_d. */
static void greedy(const struct hnsw_index *ix, const struct qctx *qc, int from, int to,
                   uint32_t *cur, float *cur_d, struct hnsw_stats *st)
{
    for (int lev = from; lev > to; lev--) {
        int changed = 1;
        while (changed) {
            changed = 0;
            const uint32_t *l = links_of(ix, *cur, lev);
            uint32_t cnt = ld32(&l[0]);
            st->hops++;
            for (uint32_t i = 0; i < cnt; i++) {
                uint32_t id = ld32(&l[1 + i]);
                float d = qdist(ix, qc, id);
                st->dist_calls++;
                if (d < *cur_d) {
                    *cur_d = d;
                    *cur = id;
                    changed = 1;
                }
            }
        }
    }
}

struct walk {
    uint32_t ef;
    int level;
    hnsw_filter_fn filter;
    void *filter_arg;
    uint32_t exclude; /* a slot never returned (replace), or HNSW_NO_SLOT */
};

static inline bool accepted(const struct hnsw_index *ix, const struct walk *w, uint32_t id)
{
    if (flags_of(ix, id) & FLAG_DELETED)
        return false;
    if (id == w->exclude)
        return false;
    return w->filter == NULL || w->filter(id, w->filter_arg);
}

/*
 * Best-first search of one level from `ep`. Leaves up to w->ef accepted nodes in s->top
 * (a max-heap, count in *ntop). Rejected nodes are expanded too: they guide the walk.
 */
static int search_level(const struct hnsw_index *ix, struct scratch *s, const struct qctx *qc,
                        uint32_t ep, float ep_d, const struct walk *w, size_t *ntop,
                        struct hnsw_stats *st)
{
    size_t ncand = 0, nt = 0;
    const uint32_t ef = w->ef;
    /*
     * Prefetch, measured on fashion-mnist (bench/peers): the first lines of every new
     * neighbour when the list is read, then up to 12 lines (768 bytes) of the vector
     * `pf_ahead` neighbours ahead of the one being measured (the hardware's stream prefetcher
     * follows the rest; prefetching all 49 lines of a 784-dim vector was ~15% slower), SQ8
     * codes two ahead, and the links of the node expanded next.
     */
    const uint32_t pf_lines = qc->sq8 ? ix->code_lines : (ix->vec_lines < 12 ? ix->vec_lines : 12);
    const uint32_t pf_gather = qc->sq8 ? 4 : 1;
    const uint32_t pf_ahead = qc->sq8 ? 2 : 1;

    visit_reset(s);
    uint16_t *visited = s->visited;
    const uint16_t tag = s->tag;
    visited[ep] = tag;
    minheap_push(s->cand, &ncand, ep_d, ep);
    if (accepted(ix, w, ep))
        maxheap_push(s->top, &nt, ep_d, ep);

    while (ncand > 0) {
        struct cand c = s->cand[0];
        if (nt >= ef && c.d > s->top[0].d)
            break;
        minheap_pop(s->cand, &ncand);

        const uint32_t *l = links_of(ix, c.id, w->level);
        uint32_t cnt = ld32(&l[0]);
        uint32_t nb = 0;
        st->hops++;
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t id = ld32(&l[1 + i]);
            if (visited[id] == tag)
                continue;
            visited[id] = tag;
            s->batch[nb++] = id;
            qprefetch(ix, qc, id, pf_gather);
        }
        if (ncand + nb + 1 > s->cand_cap && grow_cands(&s->cand, &s->cand_cap, ncand + nb + 1))
            return DV_ENOMEM;
        for (uint32_t j = 0; j < nb; j++) {
            uint32_t id = s->batch[j];
            if (j + pf_ahead < nb)
                qprefetch(ix, qc, s->batch[j + pf_ahead], pf_lines);
            float d = qdist(ix, qc, id);
            st->dist_calls++;
            if (nt < ef || d < s->top[0].d) {
                minheap_push(s->cand, &ncand, d, id);
                if (accepted(ix, w, id)) {
                    maxheap_push(s->top, &nt, d, id);
                    if (nt > ef)
                        maxheap_pop(s->top, &nt);
                }
            }
        }
        if (ncand > 0) /* the links of the node expanded next */
            __builtin_prefetch(links_of(ix, s->cand[0].id, w->level), 0, 3);
    }
    *ntop = nt;
    return DV_OK;
}

/*
 * The paper's neighbour selection (Algorithm 4 without extension): walk candidates c[0..n)
 * (sorted ascending by distance to the base point) and keep one only if it is closer to the
 * base than to every neighbour kept so far. With `fill`, pruned candidates then fill the
 * free places closest first (the paper's keepPrunedConnections), which keeps the degree of
 * nodes relinked by repair. Writes up to `max` ids to out; returns the count.
 */
static uint32_t select_neighbours(const struct hnsw_index *ix, const struct cand *c, size_t n,
                                  uint32_t max, uint32_t *out, bool fill)
{
    uint32_t k = 0;
    uint32_t pruned[4 * HNSW_M_MAX];
    uint32_t np = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        const float *v = vec_of(ix, c[i].id);
        bool good = true;
        for (uint32_t j = 0; j < k; j++) {
            if (fdist(ix, v, vec_of(ix, out[j])) < c[i].d) {
                good = false;
                break;
            }
        }
        if (good)
            out[k++] = c[i].id;
        else if (np < sizeof pruned / sizeof pruned[0])
            pruned[np++] = c[i].id;
    }
    for (uint32_t i = 0; fill && i < np && k < max; i++)
        out[k++] = pruned[i];
    return k;
}

static void write_links(struct hnsw_index *ix, uint32_t s, int level, const uint32_t *ids,
                        uint32_t n)
{
    uint32_t *l = links_of(ix, s, level);
    for (uint32_t i = 0; i < n; i++)
        st32(&l[1 + i], ids[i]);
    st32(&l[0], n);
}

/*
 * Adds a link n -> s at `level`, pruning n's list with the heuristic when it is full.
 * `tmp` has room for max+1 candidates, `out` for max ids.
 */
static void connect_back(struct hnsw_index *ix, uint32_t n, uint32_t s, int level, struct cand *tmp,
                         uint32_t *out, bool check_dup)
{
    uint32_t max = level == 0 ? ix->m0 : ix->m;
    node_lock(ix, n);
    uint32_t *l = links_of(ix, n, level);
    uint32_t cnt = ld32(&l[0]);
    if (check_dup) {
        for (uint32_t i = 0; i < cnt; i++) {
            if (ld32(&l[1 + i]) == s) {
                node_unlock(ix, n);
                return;
            }
        }
    }
    if (cnt < max) {
        st32(&l[1 + cnt], s);
        st32(&l[0], cnt + 1);
    } else {
        const float *nv = vec_of(ix, n);
        tmp[0].d = fdist(ix, nv, vec_of(ix, s));
        tmp[0].id = s;
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t e = ld32(&l[1 + i]);
            tmp[1 + i].d = fdist(ix, nv, vec_of(ix, e));
            tmp[1 + i].id = e;
        }
        qsort(tmp, cnt + 1, sizeof *tmp, cand_cmp);
        uint32_t k = select_neighbours(ix, tmp, cnt + 1, max, out, false);
        write_links(ix, n, level, out, k);
    }
    node_unlock(ix, n);
}

/* ---- growth ----------------------------------------------------------------------------- */

static int realloc_zero(void **p, size_t old_bytes, size_t new_bytes)
{
    void *n = realloc(*p, new_bytes);
    if (n == NULL)
        return DV_ENOMEM;
    memset((char *)n + old_bytes, 0, new_bytes - old_bytes);
    *p = n;
    return DV_OK;
}

/*
 * The large arrays (vectors, level-0 links, SQ8 codes) live in anonymous mappings with
 * transparent huge pages requested: the walk touches them at random, and 2 MiB pages save
 * most TLB misses. New pages are zero and cost no memory until touched.
 */
static size_t region_size(size_t bytes)
{
    return (bytes + 4095) & ~(size_t)4095;
}

/* Grows the mapping at *p (currently *mapped bytes) to at least new_bytes. */
static int region_grow(void **p, size_t *mapped, size_t new_bytes)
{
    void *n;
    size_t old_bytes = *mapped;
    new_bytes = region_size(new_bytes);
    if (new_bytes <= old_bytes)
        return DV_OK;
    if (*p == NULL || old_bytes == 0)
        n = mmap(NULL, new_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    else
        n = mremap(*p, old_bytes, new_bytes, MREMAP_MAYMOVE);
    if (n == MAP_FAILED)
        return DV_ENOMEM;
#ifdef MADV_HUGEPAGE
    madvise(n, new_bytes, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    *p = n;
    *mapped = new_bytes;
    return DV_OK;
}

static void region_free(void *p, size_t mapped)
{
    if (p != NULL && mapped > 0)
        munmap(p, mapped);
}

/* Grows slot arrays to `ncap` slots. Caller holds ix->rw exclusively. */
static int grow_slots(struct hnsw_index *ix, size_t ncap)
{
    size_t oc = ix->cap;
    int rc = DV_OK;
    if (ncap <= oc)
        return DV_OK;
    rc |= region_grow((void **)&ix->vecs, &ix->vecs_map, ncap * ix->dim * sizeof(float));
    rc |= region_grow((void **)&ix->level0, &ix->level0_map, ncap * ix->stride0 * sizeof(uint32_t));
    rc |= realloc_zero((void **)&ix->levels, oc, ncap);
    rc |= realloc_zero((void **)&ix->ucap, oc, ncap);
    rc |= realloc_zero((void **)&ix->flags, oc, ncap);
    rc |= realloc_zero((void **)&ix->locks, oc, ncap);
    rc |= realloc_zero((void **)&ix->upper_off, oc * sizeof(uint32_t), ncap * sizeof(uint32_t));
    if (ix->p.sq8)
        rc |= region_grow((void **)&ix->codes, &ix->codes_map, ncap * ix->dim);
    if (rc != DV_OK) {
        /* Arrays that grew stay grown; cap is unchanged. A later grow retries the others. */
        return DV_ENOMEM;
    }
    ix->cap = ncap;
    return DV_OK;
}

/*
 * Reserves a slot and its upper-level blocks. Called with ix->rw shared. Returns DV_EFULL
 * (with *need_slots / *need_upper set) when the arrays must grow first.
 */
static int alloc_slot(struct hnsw_index *ix, int level, uint32_t *slot, int *grow)
{
    size_t need_up = (size_t)level * ix->stride_up;
    uint32_t s;

    pthread_mutex_lock(&ix->alloc_mu);
    if (ix->n_free > 0) {
        s = ix->free_slots[ix->n_free - 1];
        if (level > ix->ucap[s] && ix->upper_used + need_up > ix->upper_cap) {
            pthread_mutex_unlock(&ix->alloc_mu);
            *grow = 2;
            return DV_EFULL;
        }
        ix->n_free--;
    } else {
        if (ix->n_slots >= ix->cap) {
            pthread_mutex_unlock(&ix->alloc_mu);
            *grow = ix->cap >= UINT32_MAX - 1 ? 0 : 1;
            return DV_EFULL;
        }
        if (level > 0 && ix->upper_used + need_up > ix->upper_cap) {
            pthread_mutex_unlock(&ix->alloc_mu);
            *grow = 2;
            return DV_EFULL;
        }
        s = (uint32_t)ix->n_slots;
        __atomic_store_n(&ix->n_slots, ix->n_slots + 1, __ATOMIC_RELEASE);
        ix->ucap[s] = 0;
    }
    if (level > ix->ucap[s]) {
        ix->upper_off[s] = (uint32_t)ix->upper_used;
        ix->upper_used += need_up;
        ix->ucap[s] = (uint8_t)level;
    }
    pthread_mutex_unlock(&ix->alloc_mu);
    *slot = s;
    return DV_OK;
}

static int grow(struct hnsw_index *ix, int what)
{
    int rc = DV_OK;
    pthread_rwlock_wrlock(&ix->rw);
    if (what == 1 && ix->n_slots >= ix->cap) {
        size_t ncap = ix->cap * 2;
        if (ncap > UINT32_MAX - 1)
            ncap = UINT32_MAX - 1;
        rc = grow_slots(ix, ncap);
    } else if (what == 2) {
        size_t ncap = ix->upper_cap * 2 + (size_t)HNSW_MAX_LEVEL * ix->stride_up;
        if (ncap > UINT32_MAX) {
            rc = DV_EFULL;
        } else {
            void *n = realloc(ix->upper, ncap * sizeof(uint32_t));
            if (n == NULL) {
                rc = DV_ENOMEM;
            } else {
                ix->upper = n;
                ix->upper_cap = ncap;
            }
        }
    }
    pthread_rwlock_unlock(&ix->rw);
    return rc;
}

/* ---- create / destroy ------------------------------------------------------------------- */

void hnsw_params_default(struct hnsw_params *p)
{
    memset(p, 0, sizeof *p);
    p->metric = HNSW_L2;
    p->m = 16;
    p->ef_construction = 200;
    p->ef_search = 64;
    p->capacity = 1024;
    p->seed = 42;
    p->sq8 = false;
    p->sq8_train_min = 1000;
}

int hnsw_create(const struct hnsw_params *p, struct hnsw_index **out)
{
    struct hnsw_index *ix;
    pthread_rwlockattr_t ra;

    if (p->dim == 0 || p->dim > 65536 || p->m < 2 || p->m > HNSW_M_MAX || p->ef_construction == 0 ||
        p->metric > HNSW_L1)
        return DV_EINVAL;
    ix = calloc(1, sizeof *ix);
    if (ix == NULL)
        return DV_ENOMEM;
    ix->p = *p;
    if (ix->p.ef_search == 0)
        ix->p.ef_search = 64;
    if (ix->p.capacity == 0)
        ix->p.capacity = 1024;
    ix->ops = dist_get();
    ix->dim = p->dim;
    ix->m = p->m;
    ix->m0 = 2 * p->m;
    ix->stride0 = 1 + ix->m0;
    ix->stride_up = 1 + ix->m;
    ix->vec_lines = (uint32_t)((p->dim * sizeof(float) + 63) / 64);
    ix->code_lines = (uint32_t)((p->dim + 63) / 64);
    ix->level_mult = 1.0 / log((double)p->m);
    switch (p->metric) {
    case HNSW_L2:
        ix->fn = ix->ops->l2sq;
        break;
    case HNSW_L1:
        ix->fn = ix->ops->l1;
        break;
    default:
        ix->fn = ix->ops->dot;
        ix->one_minus = 1;
        break;
    }
    ix->ep = HNSW_NO_SLOT;
    ix->max_level = -1;
    ix->sq8_next_at = p->sq8_train_min ? p->sq8_train_min : 1;
    if (sq8_ranges_init(&ix->sq8, p->dim) != DV_OK)
        goto err_free;
    if (grow_slots(ix, ix->p.capacity) != DV_OK)
        goto err_free;
    ix->upper_cap = ix->p.capacity / 8 * ix->stride_up + HNSW_MAX_LEVEL * ix->stride_up;
    ix->upper = malloc(ix->upper_cap * sizeof(uint32_t));
    if (ix->upper == NULL)
        goto err_free;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&ix->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&ix->alloc_mu, NULL);
    pthread_mutex_init(&ix->ep_mu, NULL);
    pthread_mutex_init(&ix->pool_mu, NULL);
    *out = ix;
    return DV_OK;

err_free:
    sq8_ranges_free(&ix->sq8);
    region_free(ix->vecs, ix->vecs_map);
    region_free(ix->level0, ix->level0_map);
    free(ix->levels);
    free(ix->ucap);
    free(ix->flags);
    free(ix->locks);
    free(ix->upper_off);
    region_free(ix->codes, ix->codes_map);
    free(ix->upper);
    free(ix);
    return DV_ENOMEM;
}

void hnsw_destroy(struct hnsw_index *ix)
{
    if (ix == NULL)
        return;
    while (ix->pool != NULL) {
        struct scratch *s = ix->pool;
        ix->pool = s->next;
        scratch_free(s);
    }
    pthread_rwlock_destroy(&ix->rw);
    pthread_mutex_destroy(&ix->alloc_mu);
    pthread_mutex_destroy(&ix->ep_mu);
    pthread_mutex_destroy(&ix->pool_mu);
    sq8_ranges_free(&ix->sq8);
    region_free(ix->vecs, ix->vecs_map);
    region_free(ix->level0, ix->level0_map);
    free(ix->levels);
    free(ix->ucap);
    free(ix->flags);
    free(ix->locks);
    free(ix->upper_off);
    region_free(ix->codes, ix->codes_map);
    free(ix->upper);
    free(ix->free_slots);
    free(ix);
}

/* ---- insert ----------------------------------------------------------------------------- */

/* Copies (and for cosine normalises) `vec` into slot s, and encodes it when SQ8 is ready. */
static void store_vector(struct hnsw_index *ix, uint32_t s, const float *vec)
{
    float *dst = ix->vecs + (size_t)s * ix->dim;
    memcpy(dst, vec, ix->dim * sizeof(float));
    if (ix->p.metric == HNSW_COSINE)
        dist_normalize(dst, ix->dim);
    if (ix->p.sq8 && __atomic_load_n(&ix->sq8_ready, __ATOMIC_ACQUIRE))
        sq8_encode(&ix->sq8, dst, ix->codes + (size_t)s * ix->dim);
}

/*
 * Links slot s (vector already stored) into levels min(level, top)..0, starting from the
 * entry point. Used by insert and replace. Caller holds ix->rw.
 */
static int link_node(struct hnsw_index *ix, struct scratch *s, uint32_t slot, int level,
                     uint32_t ep, int top, bool replacing)
{
    struct hnsw_stats st = {0, 0};
    struct qctx qc = {vec_of(ix, slot), 0, 0.0f, NULL};
    struct walk w = {ix->p.ef_construction, 0, NULL, NULL, replacing ? slot : HNSW_NO_SLOT};
    uint32_t cur = ep;
    float cur_d = qdist(ix, &qc, cur);

    if (replacing && cur == slot) {
        /* Start a replaced entry point's walk from one of its neighbours. */
        const uint32_t *l = links_of(ix, slot, top);
        if (ld32(&l[0]) == 0)
            return DV_OK;
        cur = ld32(&l[1]);
        cur_d = qdist(ix, &qc, cur);
    }
    if (level < top)
        greedy(ix, &qc, top, level, &cur, &cur_d, &st);
    for (int lev = level < top ? level : top; lev >= 0; lev--) {
        size_t nt;
        w.level = lev;
        int rc = search_level(ix, s, &qc, cur, cur_d, &w, &nt, &st);
        if (rc != DV_OK)
            return rc;
        size_t n = maxheap_drain_sorted(s->top, nt, s->sel);
        if (n == 0)
            continue;
        uint32_t k = select_neighbours(ix, s->sel, n, ix->m, s->out, false);
        struct cand next = s->sel[0]; /* s->sel is reused by connect_back */
        node_lock(ix, slot);
        write_links(ix, slot, lev, s->out, k);
        node_unlock(ix, slot);
        uint32_t chosen[HNSW_M_MAX];
        memcpy(chosen, s->out, k * sizeof(uint32_t));
        for (uint32_t i = 0; i < k; i++)
            connect_back(ix, chosen[i], slot, lev, s->sel, s->out, replacing);
        cur = next.id;
        cur_d = next.d;
    }
    return DV_OK;
}

static void maybe_train_sq8(struct hnsw_index *ix)
{
    if (!ix->p.sq8)
        return;
    uint64_t live = __atomic_load_n(&ix->live, __ATOMIC_RELAXED);
    if (live < __atomic_load_n(&ix->sq8_next_at, __ATOMIC_RELAXED))
        return;
    if (__atomic_exchange_n(&ix->sq8_training, 1, __ATOMIC_ACQ_REL))
        return;
    hnsw_sq8_train(ix);
    __atomic_store_n(&ix->sq8_training, 0, __ATOMIC_RELEASE);
}

int hnsw_insert(struct hnsw_index *ix, const float *vec, uint32_t *slot_out)
{
    struct scratch *s;
    uint32_t slot;
    int level, rc, what;

    if (!all_finite(vec, ix->dim))
        return DV_ENAN;
    level = random_level(ix);
    for (;;) {
        pthread_rwlock_rdlock(&ix->rw);
        rc = alloc_slot(ix, level, &slot, &what);
        if (rc == DV_OK)
            break;
        pthread_rwlock_unlock(&ix->rw);
        if (what == 0)
            return DV_EFULL;
        rc = grow(ix, what);
        if (rc != DV_OK)
            return rc;
    }

    rc = scratch_get(ix, ix->p.ef_construction, &s);
    if (rc != DV_OK)
        goto err_free_slot;

    store_vector(ix, slot, vec);
    for (int lev = 0; lev <= level; lev++)
        st32(links_of(ix, slot, lev), 0);
    ix->levels[slot] = (uint8_t)level;
    __atomic_store_n(&ix->flags[slot], FLAG_USED, __ATOMIC_RELEASE);

    int top = __atomic_load_n(&ix->max_level, __ATOMIC_ACQUIRE);
    bool raise = level > top;
    if (raise) {
        pthread_mutex_lock(&ix->ep_mu);
        top = __atomic_load_n(&ix->max_level, __ATOMIC_ACQUIRE);
        raise = level > top;
        if (!raise)
            pthread_mutex_unlock(&ix->ep_mu);
    }
    uint32_t ep = __atomic_load_n(&ix->ep, __ATOMIC_ACQUIRE);
    if (ep != HNSW_NO_SLOT)
        rc = link_node(ix, s, slot, level, ep, top, false);
    if (raise) {
        __atomic_store_n(&ix->ep, slot, __ATOMIC_RELEASE);
        __atomic_store_n(&ix->max_level, level, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&ix->ep_mu);
    }
    scratch_put(ix, s);
    __atomic_fetch_add(&ix->live, 1, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&ix->rw);
    if (slot_out != NULL)
        *slot_out = slot;
    maybe_train_sq8(ix);
    return rc;

err_free_slot:
    /* Leave the slot as an unlinked tombstone; hnsw_repair() frees it. */
    for (int lev = 0; lev <= level; lev++)
        st32(links_of(ix, slot, lev), 0);
    ix->levels[slot] = (uint8_t)level;
    __atomic_store_n(&ix->flags[slot], FLAG_USED | FLAG_DELETED, __ATOMIC_RELEASE);
    __atomic_fetch_add(&ix->deleted, 1, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&ix->rw);
    return rc;
}

struct batch_job {
    struct hnsw_index *ix;
    const float *vecs;
    size_t n;
    uint32_t *slots;
    size_t next; /* atomic */
    int rc;      /* atomic: first error */
};

static void *batch_worker(void *arg)
{
    struct batch_job *j = arg;
    for (;;) {
        if (__atomic_load_n(&j->rc, __ATOMIC_RELAXED) != DV_OK)
            break;
        size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (i >= j->n)
            break;
        int rc = hnsw_insert(j->ix, j->vecs + i * j->ix->dim, &j->slots[i]);
        if (rc != DV_OK) {
            j->slots[i] = HNSW_NO_SLOT;
            int zero = DV_OK;
            __atomic_compare_exchange_n(&j->rc, &zero, rc, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

int hnsw_insert_batch(struct hnsw_index *ix, const float *vecs, size_t n, unsigned threads,
                      uint32_t *slots)
{
    struct batch_job j = {ix, vecs, n, slots, 0, DV_OK};
    pthread_t tid[64];
    unsigned started = 0;

    for (size_t i = 0; i < n; i++)
        slots[i] = HNSW_NO_SLOT;
    if (threads > 64)
        threads = 64;
    for (unsigned t = 1; t < threads; t++) {
        if (pthread_create(&tid[started], NULL, batch_worker, &j) == 0)
            started++;
    }
    batch_worker(&j);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    return j.rc;
}

/* ---- search ----------------------------------------------------------------------------- */

int hnsw_search(struct hnsw_index *ix, const struct hnsw_query *q, struct hnsw_hit *out,
                uint32_t *n_out, struct hnsw_stats *stats)
{
    struct hnsw_stats st = {0, 0};
    struct scratch *s;
    struct qctx qc = {q->vec, 0, 0.0f, NULL};
    uint32_t ef, k = q->k;
    int rc;

    *n_out = 0;
    if (k == 0 || q->vec == NULL)
        return DV_EINVAL;
    if (!all_finite(q->vec, ix->dim))
        return DV_ENAN;
    ef = q->ef ? q->ef : ix->p.ef_search;
    if (ef < k)
        ef = k;

    pthread_rwlock_rdlock(&ix->rw);
    bool ready = ix->p.sq8 && __atomic_load_n(&ix->sq8_ready, __ATOMIC_ACQUIRE);
    if (q->quant == HNSW_QUANT_ON && !ready) {
        rc = DV_EUNSUPPORTED;
        goto out_unlock;
    }
    qc.sq8 = q->quant != HNSW_QUANT_OFF && ready;
    /* Default re-rank: 2k candidates (oversampling 2), at most the ef found. */
    uint32_t rerank = q->rerank ? q->rerank : (2 * k < ef ? 2 * k : ef);
    if (rerank < k)
        rerank = k;
    rc = scratch_get(ix, ef > rerank ? ef : rerank, &s);
    if (rc != DV_OK)
        goto out_unlock;

    const float *qv = q->vec;
    if (ix->p.metric == HNSW_COSINE) {
        memcpy(s->q1, q->vec, ix->dim * sizeof(float));
        dist_normalize(s->q1, ix->dim);
        qv = s->q1;
    }
    qc.q = qv;
    if (qc.sq8) {
        if (ix->sq8.shared && sq8_prep_codes(&ix->sq8, qv, s->qc)) {
            qc.sq8 = 2;
            qc.codes = s->qc;
        } else if (ix->p.metric == HNSW_L2 || ix->p.metric == HNSW_L1)
            sq8_prep_offset(&ix->sq8, qv, s->q2);
        else
            sq8_prep_dot(&ix->sq8, qv, s->q2, &qc.bias);
        qc.q = s->q2;
    }

    uint32_t ep = __atomic_load_n(&ix->ep, __ATOMIC_ACQUIRE);
    int top = __atomic_load_n(&ix->max_level, __ATOMIC_ACQUIRE);
    if (ep != HNSW_NO_SLOT) {
        struct walk w = {ef, 0, q->filter, q->filter_arg, HNSW_NO_SLOT};
        float d = qdist(ix, &qc, ep);
        size_t nt;
        st.dist_calls++;
        greedy(ix, &qc, top, 0, &ep, &d, &st);
        rc = search_level(ix, s, &qc, ep, d, &w, &nt, &st);
        if (rc == DV_OK) {
            size_t n = maxheap_drain_sorted(s->top, nt, s->sel);
            if (qc.sq8) {
                if (n > rerank)
                    n = rerank;
                for (size_t i = 0; i < n; i++)
                    s->sel[i].d = fdist(ix, qv, vec_of(ix, s->sel[i].id));
                st.dist_calls += n;
                qsort(s->sel, n, sizeof *s->sel, cand_cmp);
            }
            if (n > k)
                n = k;
            for (size_t i = 0; i < n; i++) {
                out[i].dist = s->sel[i].d;
                out[i].slot = s->sel[i].id;
            }
            *n_out = (uint32_t)n;
        }
    }
    scratch_put(ix, s);
out_unlock:
    pthread_rwlock_unlock(&ix->rw);
    if (stats != NULL)
        *stats = st;
    return rc;
}

/* ---- delete, repair, replace ------------------------------------------------------------ */

int hnsw_delete(struct hnsw_index *ix, uint32_t slot)
{
    int rc = DV_OK;
    pthread_rwlock_rdlock(&ix->rw);
    if (slot >= slots_used(ix) || !(flags_of(ix, slot) & FLAG_USED)) {
        rc = DV_ENOTFOUND;
    } else {
        uint8_t old = __atomic_fetch_or(&ix->flags[slot], FLAG_DELETED, __ATOMIC_ACQ_REL);
        if (old & FLAG_DELETED) {
            rc = DV_EDELETED;
        } else {
            __atomic_fetch_sub(&ix->live, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&ix->deleted, 1, __ATOMIC_RELAXED);
        }
    }
    pthread_rwlock_unlock(&ix->rw);
    return rc;
}

/*
 * Gives live node x at `level` new neighbours when some of its links point to nodes in
 * `dead`: candidates are its live neighbours plus live nodes reached through dead ones
 * (transitively, bounded), chosen by the heuristic.
 */
static int relink(struct hnsw_index *ix, struct scratch *s, const uint8_t *dead, uint32_t x,
                  int level)
{
    uint32_t max = level == 0 ? ix->m0 : ix->m;
    size_t limit = 4 * (size_t)max; /* candidates gathered at most */
    size_t nc = 0;
    const float *xv = vec_of(ix, x);
    uint32_t queue[4 * HNSW_M_MAX];
    size_t qh = 0, qt = 0;

    if (grow_cands(&s->sel, &s->sel_cap, limit + max + 1) != DV_OK)
        return DV_ENOMEM;
    visit_reset(s);
    s->visited[x] = s->tag;
    queue[qt++] = x;
    while (qh < qt && nc < limit) {
        uint32_t u = queue[qh++];
        if (level > ix->levels[u])
            continue;
        const uint32_t *l = links_of(ix, u, level);
        uint32_t cnt = ld32(&l[0]);
        for (uint32_t i = 0; i < cnt && nc < limit; i++) {
            uint32_t e = ld32(&l[1 + i]);
            if (s->visited[e] == s->tag)
                continue;
            s->visited[e] = s->tag;
            if (dead[e]) {
                if (qt < sizeof queue / sizeof queue[0])
                    queue[qt++] = e;
            } else {
                s->sel[nc].d = fdist(ix, xv, vec_of(ix, e));
                s->sel[nc].id = e;
                nc++;
            }
        }
    }
    qsort(s->sel, nc, sizeof *s->sel, cand_cmp);
    uint32_t k = select_neighbours(ix, s->sel, nc, max, s->out, true);
    node_lock(ix, x);
    write_links(ix, x, level, s->out, k);
    node_unlock(ix, x);
    return DV_OK;
}

static bool links_touch(const struct hnsw_index *ix, const uint8_t *dead, uint32_t x, int level)
{
    const uint32_t *l = links_of(ix, x, level);
    uint32_t cnt = ld32(&l[0]);
    for (uint32_t i = 0; i < cnt; i++)
        if (dead[ld32(&l[1 + i])])
            return true;
    return false;
}

int hnsw_repair(struct hnsw_index *ix, size_t *freed)
{
    struct scratch *s;
    uint8_t *dead;
    size_t nslots, ndead = 0;
    int rc;

    if (freed != NULL)
        *freed = 0;
    /* Phase 1, shared: snapshot the tombstones and relink around them. */
    pthread_rwlock_rdlock(&ix->rw);
    nslots = slots_used(ix);
    dead = calloc(nslots ? nslots : 1, 1);
    if (dead == NULL) {
        pthread_rwlock_unlock(&ix->rw);
        return DV_ENOMEM;
    }
    for (size_t i = 0; i < nslots; i++) {
        uint8_t f = flags_of(ix, (uint32_t)i);
        if ((f & FLAG_USED) && (f & FLAG_DELETED)) {
            dead[i] = 1;
            ndead++;
        }
    }
    if (ndead == 0) {
        pthread_rwlock_unlock(&ix->rw);
        free(dead);
        return DV_OK;
    }
    rc = scratch_get(ix, ix->p.ef_construction, &s);
    for (size_t i = 0; rc == DV_OK && i < nslots; i++) {
        uint32_t x = (uint32_t)i;
        if (dead[x] || !(flags_of(ix, x) & FLAG_USED))
            continue;
        for (int lev = ix->levels[x]; lev >= 0 && rc == DV_OK; lev--)
            if (links_touch(ix, dead, x, lev))
                rc = relink(ix, s, dead, x, lev);
    }
    if (rc == DV_OK || rc != DV_ENOMEM)
        scratch_put(ix, s);
    pthread_rwlock_unlock(&ix->rw);
    if (rc != DV_OK) {
        free(dead);
        return rc;
    }

    /* Phase 2, exclusive: drop links that still point at dead nodes, then free them. */
    pthread_rwlock_wrlock(&ix->rw);
    size_t need = ix->n_free + ndead;
    if (need > ix->free_cap) {
        uint32_t *f = realloc(ix->free_slots, need * sizeof(uint32_t));
        if (f == NULL) {
            pthread_rwlock_unlock(&ix->rw);
            free(dead);
            return DV_ENOMEM;
        }
        ix->free_slots = f;
        ix->free_cap = need;
    }
    for (size_t i = 0; i < ix->n_slots; i++) {
        uint32_t x = (uint32_t)i;
        if ((i < nslots && dead[x]) || !(ix->flags[x] & FLAG_USED))
            continue;
        for (int lev = ix->levels[x]; lev >= 0; lev--) {
            uint32_t *l = links_of(ix, x, lev);
            uint32_t cnt = l[0], k = 0;
            for (uint32_t j = 0; j < cnt; j++)
                if (l[1 + j] >= nslots || !dead[l[1 + j]])
                    l[1 + k++] = l[1 + j];
            l[0] = k;
        }
    }
    for (size_t i = 0; i < nslots; i++) {
        if (!dead[i])
            continue;
        for (int lev = ix->levels[i]; lev >= 0; lev--)
            links_of(ix, (uint32_t)i, lev)[0] = 0;
        ix->flags[i] = 0;
        ix->free_slots[ix->n_free++] = (uint32_t)i;
    }
    ix->deleted -= ndead;
    if (ix->ep != HNSW_NO_SLOT && dead[ix->ep]) {
        uint32_t best = HNSW_NO_SLOT;
        int bl = -1;
        for (size_t i = 0; i < ix->n_slots; i++) {
            if ((ix->flags[i] & FLAG_USED) && ix->levels[i] > bl) {
                bl = ix->levels[i];
                best = (uint32_t)i;
            }
        }
        ix->ep = best;
        ix->max_level = bl;
    }
    pthread_rwlock_unlock(&ix->rw);
    free(dead);
    if (freed != NULL)
        *freed = ndead;
    return DV_OK;
}

int hnsw_replace(struct hnsw_index *ix, uint32_t slot, const float *vec)
{
    struct scratch *s;
    int rc;

    if (!all_finite(vec, ix->dim))
        return DV_ENAN;
    pthread_rwlock_wrlock(&ix->rw);
    if (slot >= ix->n_slots || !(ix->flags[slot] & FLAG_USED)) {
        rc = DV_ENOTFOUND;
        goto out_unlock;
    }
    if (ix->flags[slot] & FLAG_DELETED) {
        rc = DV_EDELETED;
        goto out_unlock;
    }
    rc = scratch_get(ix, ix->p.ef_construction, &s);
    if (rc != DV_OK)
        goto out_unlock;
    store_vector(ix, slot, vec);
    if (ix->live > 1)
        rc = link_node(ix, s, slot, ix->levels[slot], ix->ep, ix->max_level, true);
    scratch_put(ix, s);
out_unlock:
    pthread_rwlock_unlock(&ix->rw);
    return rc;
}

int hnsw_get_vector(struct hnsw_index *ix, uint32_t slot, float *out)
{
    int rc = DV_OK;
    pthread_rwlock_rdlock(&ix->rw);
    if (slot >= slots_used(ix) || !(flags_of(ix, slot) & FLAG_USED))
        rc = DV_ENOTFOUND;
    else
        memcpy(out, vec_of(ix, slot), ix->dim * sizeof(float));
    pthread_rwlock_unlock(&ix->rw);
    return rc;
}

bool hnsw_is_live(struct hnsw_index *ix, uint32_t slot)
{
    bool live;
    pthread_rwlock_rdlock(&ix->rw);
    live = slot < slots_used(ix) && flags_of(ix, slot) == FLAG_USED;
    pthread_rwlock_unlock(&ix->rw);
    return live;
}

/* ---- SQ8 -------------------------------------------------------------------------------- */

int hnsw_sq8_train(struct hnsw_index *ix)
{
    if (!ix->p.sq8)
        return DV_EUNSUPPORTED;
    pthread_rwlock_wrlock(&ix->rw);
    sq8_begin(&ix->sq8);
    for (size_t i = 0; i < ix->n_slots; i++)
        if (ix->flags[i] == FLAG_USED)
            sq8_observe(&ix->sq8, vec_of(ix, (uint32_t)i));
    sq8_finish(&ix->sq8, ix->p.metric == HNSW_L2);
    for (size_t i = 0; i < ix->n_slots; i++)
        if (ix->flags[i] & FLAG_USED)
            sq8_encode(&ix->sq8, vec_of(ix, (uint32_t)i), ix->codes + i * ix->dim);
    __atomic_store_n(&ix->sq8_ready, 1, __ATOMIC_RELEASE);
    /* Retrain automatically as the data doubles, up to a million points. */
    uint64_t next = ix->live * 2;
    __atomic_store_n(&ix->sq8_next_at, next > (1u << 20) ? UINT64_MAX : next, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&ix->rw);
    return DV_OK;
}

bool hnsw_sq8_ready(struct hnsw_index *ix)
{
    return ix->p.sq8 && __atomic_load_n(&ix->sq8_ready, __ATOMIC_ACQUIRE);
}

void hnsw_get_info(struct hnsw_index *ix, struct hnsw_info *info)
{
    pthread_rwlock_rdlock(&ix->rw);
    info->dim = ix->dim;
    info->metric = ix->p.metric;
    info->m = ix->m;
    info->ef_construction = ix->p.ef_construction;
    info->ef_search = ix->p.ef_search;
    info->live = __atomic_load_n(&ix->live, __ATOMIC_RELAXED);
    info->deleted = __atomic_load_n(&ix->deleted, __ATOMIC_RELAXED);
    pthread_mutex_lock(&ix->alloc_mu);
    info->slots = ix->n_slots;
    info->capacity = ix->cap;
    size_t per_slot = ix->dim * sizeof(float) + ix->stride0 * sizeof(uint32_t) + 4 +
                      sizeof(uint32_t) + (ix->p.sq8 ? ix->dim : 0);
    info->mem_bytes = ix->cap * per_slot + ix->upper_cap * sizeof(uint32_t) +
                      ix->free_cap * sizeof(uint32_t) + 3 * ix->dim * sizeof(float);
    pthread_mutex_unlock(&ix->alloc_mu);
    info->max_level = __atomic_load_n(&ix->max_level, __ATOMIC_ACQUIRE);
    info->sq8_ready = hnsw_sq8_ready(ix);
    pthread_rwlock_unlock(&ix->rw);
}
