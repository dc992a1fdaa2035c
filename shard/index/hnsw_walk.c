/* hnsw_walk.c - the graph walk and linking of the HNSW index: scratch pool, best-first
 * search, neighbour selection, back links. */
#include "hnsw_int.h"

/* ---- scratch pool ----------------------------------------------------------------------- */

void hnsw_scratch_free(struct scratch *s)
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

int hnsw_grow_cands(struct cand **arr, size_t *cap, size_t need)
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

int hnsw_scratch_get(struct hnsw_index *ix, size_t ef, struct scratch **out)
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
    if (hnsw_grow_cands(&s->top, &s->top_cap, ef + 2) != DV_OK ||
        hnsw_grow_cands(&s->cand, &s->cand_cap, ef + ix->m0 + 2) != DV_OK ||
        hnsw_grow_cands(&s->sel, &s->sel_cap, ef + ix->m0 + 2) != DV_OK)
        goto err_free;
    *out = s;
    return DV_OK;

err_free:
    hnsw_scratch_free(s);
    return DV_ENOMEM;
}

void hnsw_scratch_put(struct hnsw_index *ix, struct scratch *s)
{
    pthread_mutex_lock(&ix->pool_mu);
    s->next = ix->pool;
    ix->pool = s;
    pthread_mutex_unlock(&ix->pool_mu);
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

void hnsw_greedy(const struct hnsw_index *ix, const struct qctx *qc, int from, int to,
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

static inline bool accepted(const struct hnsw_index *ix, const struct walk *w, uint32_t id)
{
    if (flags_of(ix, id) & FLAG_DELETED)
        return false;
    if (id == w->exclude)
        return false;
    return w->filter == NULL || w->filter(id, w->filter_arg);
}

int hnsw_search_level(const struct hnsw_index *ix, struct scratch *s, const struct qctx *qc,
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
        if (ncand > 0) /* likely the next node to expand */
            prefetch_lines(links_of(ix, s->cand[0].id, w->level), 2);

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
        if (ncand + nb + 1 > s->cand_cap && hnsw_grow_cands(&s->cand, &s->cand_cap, ncand + nb + 1))
            return DV_ENOMEM;
        for (uint32_t j = 0; j < nb; j++) {
            uint32_t id = s->batch[j];
            if (j + pf_ahead < nb)
                qprefetch(ix, qc, s->batch[j + pf_ahead], pf_lines);
            float d = qdist(ix, qc, id);
            st->dist_calls++;
            if (nt < ef || d < s->top[0].d) {
                minheap_push(s->cand, &ncand, d, id);
                if (s->cand[0].id == id) /* the next node to expand: its links, early */
                    prefetch_lines(links_of(ix, id, w->level), 2);
                if (accepted(ix, w, id)) {
                    maxheap_push(s->top, &nt, d, id);
                    if (nt > ef)
                        maxheap_pop(s->top, &nt);
                }
            }
        }
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
uint32_t hnsw_select_neighbours(const struct hnsw_index *ix, const struct cand *c, size_t n,
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

void hnsw_write_links(struct hnsw_index *ix, uint32_t s, int level, const uint32_t *ids, uint32_t n)
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
        uint32_t k = hnsw_select_neighbours(ix, tmp, cnt + 1, max, out, false);
        hnsw_write_links(ix, n, level, out, k);
    }
    node_unlock(ix, n);
}

/* ---- linking a node ---------------------------------------------------------------------- */

void hnsw_store_vector(struct hnsw_index *ix, uint32_t s, const float *vec)
{
    float *dst = ix->vecs + (size_t)s * ix->dim;
    memcpy(dst, vec, ix->dim * sizeof(float));
    if (ix->p.metric == HNSW_COSINE)
        dist_normalize(dst, ix->dim);
    if (ix->p.sq8 && __atomic_load_n(&ix->sq8_ready, __ATOMIC_ACQUIRE))
        sq8_encode(&ix->sq8, dst, ix->codes + (size_t)s * ix->dim);
}

int hnsw_link_node(struct hnsw_index *ix, struct scratch *s, uint32_t slot, int level, uint32_t ep,
                   int top, bool replacing)
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
        hnsw_greedy(ix, &qc, top, level, &cur, &cur_d, &st);
    /*
     * Neighbours are chosen top-down but linked bottom-up: once a level's back links make the
     * node reachable, a concurrent search that descends into it finds its links on every lower
     * level (linked top-down, a walk reaching it through an upper level found no level-0
     * links and returned the node alone).
     */
    int from = level < top ? level : top;
    uint32_t chosen[HNSW_MAX_LEVEL][HNSW_M_MAX], nchosen[HNSW_MAX_LEVEL];
    for (int lev = from; lev >= 0; lev--) {
        size_t nt;
        w.level = lev;
        nchosen[lev] = 0;
        int rc = hnsw_search_level(ix, s, &qc, cur, cur_d, &w, &nt, &st);
        if (rc != DV_OK)
            return rc;
        size_t n = maxheap_drain_sorted(s->top, nt, s->sel);
        if (n == 0)
            continue;
        nchosen[lev] = hnsw_select_neighbours(ix, s->sel, n, ix->m, chosen[lev], false);
        cur = s->sel[0].id;
        cur_d = s->sel[0].d;
    }
    for (int lev = 0; lev <= from; lev++) {
        if (nchosen[lev] == 0)
            continue;
        node_lock(ix, slot);
        hnsw_write_links(ix, slot, lev, chosen[lev], nchosen[lev]);
        node_unlock(ix, slot);
        for (uint32_t i = 0; i < nchosen[lev]; i++)
            connect_back(ix, chosen[lev][i], slot, lev, s->sel, s->out, replacing);
    }
    return DV_OK;
}
