/* hnsw.c - HNSW (Malkov & Yashunin) on flat arrays: lifecycle, growth, insert, search, SQ8. */
#include "hnsw_int.h"

#include <sys/mman.h>

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
 *
 * A mapping of 2 MiB or more starts on a 2 MiB boundary and its size is a multiple of 2 MiB,
 * so that every byte of it can sit in a huge page (an unaligned mapping keeps its first and
 * last partial 2 MiB in small pages), and it stays aligned when it grows: mremap moves huge
 * pages whole only between equally aligned addresses, and otherwise splits them into small
 * page mappings (fashion-mnist, 60,000 x 784 with SQ8, grown by doubling from 1,024 slots:
 * 65% of the arrays in huge pages before, 98% after). Smaller mappings use small pages: a
 * huge page would cost a small index 2 MiB per array.
 */
#define REGION_HUGE ((size_t)2 << 20)

static size_t region_size(size_t bytes)
{
    if (bytes >= REGION_HUGE)
        return (bytes + REGION_HUGE - 1) & ~(REGION_HUGE - 1);
    return (bytes + 4095) & ~(size_t)4095;
}

/* Reserves `bytes` (a multiple of 2 MiB) of address space starting on a 2 MiB boundary. */
static void *region_map_aligned(size_t bytes)
{
    size_t span = bytes + REGION_HUGE;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return MAP_FAILED;
    char *a = (char *)(((uintptr_t)p + REGION_HUGE - 1) & ~(uintptr_t)(REGION_HUGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + bytes < p + span)
        munmap(a + bytes, (size_t)(p + span - (a + bytes)));
    return a;
}

static void *region_map(size_t bytes)
{
    if (bytes >= REGION_HUGE)
        return region_map_aligned(bytes);
    return mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* Grows the mapping at *p (currently *mapped bytes) to at least new_bytes. */
static int region_grow(void **p, size_t *mapped, size_t new_bytes)
{
    void *n;
    size_t old_bytes = *mapped;
    new_bytes = region_size(new_bytes);
    if (new_bytes <= old_bytes)
        return DV_OK;
    if (*p == NULL || old_bytes == 0) {
        n = region_map(new_bytes);
    } else {
#ifdef __SANITIZE_THREAD__
        /* ThreadSanitizer does not intercept mremap: the shadow of the ranges it moves keeps
         * the history of earlier accesses, and a region later placed there (the vectors
         * where link lists were read atomically) is reported as racing with them. Under
         * TSan, copy into a new mapping instead (the caller holds the index exclusively). */
        n = region_map(new_bytes);
        if (n != MAP_FAILED) {
            memcpy(n, *p, old_bytes);
            munmap(*p, old_bytes);
        }
#else
        if (new_bytes >= REGION_HUGE) {
            /* Move to a 2 MiB-aligned place reserved first (MREMAP_FIXED replaces the
             * reservation), so huge pages already there move whole. */
            n = region_map_aligned(new_bytes);
            if (n != MAP_FAILED) {
                void *m = mremap(*p, old_bytes, new_bytes, MREMAP_MAYMOVE | MREMAP_FIXED, n);
                if (m == MAP_FAILED)
                    munmap(n, new_bytes);
                n = m;
            }
        } else {
            n = mremap(*p, old_bytes, new_bytes, MREMAP_MAYMOVE);
        }
#endif
    }
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

/* Frees every array of the index (any of them may still be NULL). */
static void free_storage(struct hnsw_index *ix)
{
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
}

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
    free_storage(ix);
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
        hnsw_scratch_free(s);
    }
    pthread_rwlock_destroy(&ix->rw);
    pthread_mutex_destroy(&ix->alloc_mu);
    pthread_mutex_destroy(&ix->ep_mu);
    pthread_mutex_destroy(&ix->pool_mu);
    free_storage(ix);
    free(ix);
}

/* ---- insert ----------------------------------------------------------------------------- */

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

    rc = hnsw_scratch_get(ix, ix->p.ef_construction, &s);
    if (rc != DV_OK)
        goto err_free_slot;

    hnsw_store_vector(ix, slot, vec);
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
        rc = hnsw_link_node(ix, s, slot, level, ep, top, false);
    if (raise) {
        __atomic_store_n(&ix->ep, slot, __ATOMIC_RELEASE);
        __atomic_store_n(&ix->max_level, level, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&ix->ep_mu);
    }
    hnsw_scratch_put(ix, s);
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
    rc = hnsw_scratch_get(ix, ef > rerank ? ef : rerank, &s);
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

    /* The top level first: an insert that raises it stores the entry point before it, so the
     * entry point read next is at least that high (read the other way round, an old entry
     * point could meet a new top level and the walk read links above the node's own). */
    int top = __atomic_load_n(&ix->max_level, __ATOMIC_ACQUIRE);
    uint32_t ep = __atomic_load_n(&ix->ep, __ATOMIC_ACQUIRE);
    if (ep != HNSW_NO_SLOT) {
        struct walk w = {ef, 0, q->filter, q->filter_arg, HNSW_NO_SLOT};
        float d = qdist(ix, &qc, ep);
        size_t nt;
        st.dist_calls++;
        hnsw_greedy(ix, &qc, top, 0, &ep, &d, &st);
        rc = hnsw_search_level(ix, s, &qc, ep, d, &w, &nt, &st);
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
    hnsw_scratch_put(ix, s);
out_unlock:
    pthread_rwlock_unlock(&ix->rw);
    if (stats != NULL)
        *stats = st;
    return rc;
}

int hnsw_search_slots(struct hnsw_index *ix, const float *vec, uint32_t k, const uint32_t *slots,
                      size_t n, hnsw_filter_fn filter, void *filter_arg, struct hnsw_hit *out,
                      uint32_t *n_out)
{
    struct scratch *s;
    size_t nt = 0;
    int rc;

    *n_out = 0;
    if (k == 0 || vec == NULL)
        return DV_EINVAL;
    if (!all_finite(vec, ix->dim))
        return DV_ENAN;
    pthread_rwlock_rdlock(&ix->rw);
    rc = hnsw_scratch_get(ix, k, &s);
    if (rc != DV_OK)
        goto out_unlock;
    const float *qv = vec;
    if (ix->p.metric == HNSW_COSINE) {
        memcpy(s->q1, vec, ix->dim * sizeof(float));
        dist_normalize(s->q1, ix->dim);
        qv = s->q1;
    }
    size_t used = slots_used(ix);
    for (size_t i = 0; i < n; i++) {
        uint32_t x = slots[i];
        if (x >= used || flags_of(ix, x) != FLAG_USED)
            continue;
        if (i + 4 < n && slots[i + 4] < used)
            prefetch_lines(vec_of(ix, slots[i + 4]), ix->vec_lines);
        if (filter != NULL && !filter(x, filter_arg))
            continue;
        float d = fdist(ix, qv, vec_of(ix, x));
        if (nt < k) {
            maxheap_push(s->top, &nt, d, x);
        } else if (d < s->top[0].d) {
            maxheap_pop(s->top, &nt);
            maxheap_push(s->top, &nt, d, x);
        }
    }
    size_t m = maxheap_drain_sorted(s->top, nt, s->sel);
    for (size_t i = 0; i < m; i++) {
        out[i].dist = s->sel[i].d;
        out[i].slot = s->sel[i].id;
    }
    *n_out = (uint32_t)m;
    hnsw_scratch_put(ix, s);
out_unlock:
    pthread_rwlock_unlock(&ix->rw);
    return rc;
}

/* ---- reading ---------------------------------------------------------------------------- */

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

void hnsw_get_regions(struct hnsw_index *ix, struct hnsw_region out[HNSW_REGIONS])
{
    pthread_rwlock_rdlock(&ix->rw);
    out[HNSW_REGION_VECTORS] = (struct hnsw_region){ix->vecs, ix->vecs_map};
    out[HNSW_REGION_LEVEL0] = (struct hnsw_region){ix->level0, ix->level0_map};
    out[HNSW_REGION_CODES] = (struct hnsw_region){ix->codes, ix->codes_map};
    pthread_rwlock_unlock(&ix->rw);
}
