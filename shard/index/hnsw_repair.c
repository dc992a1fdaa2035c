/* hnsw_repair.c - deletes (tombstones), graph repair around them, and replace. */
#include "hnsw_int.h"

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
/*
 * The tombstone snapshot of a repair covers slots [0, n); nodes inserted while the repair
 * runs get slots past it (or reused free slots, never dead) and are live.
 */
static inline bool is_dead(const uint8_t *dead, size_t n, uint32_t id)
{
    return id < n && dead[id];
}

static int relink(struct hnsw_index *ix, struct scratch *s, const uint8_t *dead, size_t nsnap,
                  uint32_t x, int level)
{
    uint32_t max = level == 0 ? ix->m0 : ix->m;
    size_t limit = 4 * (size_t)max; /* candidates gathered at most */
    size_t nc = 0;
    const float *xv = vec_of(ix, x);
    uint32_t queue[4 * HNSW_M_MAX];
    size_t qh = 0, qt = 0;

    if (hnsw_grow_cands(&s->sel, &s->sel_cap, limit + max + 1) != DV_OK)
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
            if (is_dead(dead, nsnap, e)) {
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
    uint32_t k = hnsw_select_neighbours(ix, s->sel, nc, max, s->out, true);
    node_lock(ix, x);
    hnsw_write_links(ix, x, level, s->out, k);
    node_unlock(ix, x);
    return DV_OK;
}

static bool links_touch(const struct hnsw_index *ix, const uint8_t *dead, size_t n, uint32_t x,
                        int level)
{
    const uint32_t *l = links_of(ix, x, level);
    uint32_t cnt = ld32(&l[0]);
    for (uint32_t i = 0; i < cnt; i++)
        if (is_dead(dead, n, ld32(&l[1 + i])))
            return true;
    return false;
}

struct hnsw_repair_plan {
    uint8_t *dead; /* dead[slot]: tombstone in the snapshot */
    size_t nslots; /* the snapshot covers slots [0, nslots) */
    size_t ndead;
};

void hnsw_repair_drop(struct hnsw_repair_plan *plan)
{
    if (plan != NULL) {
        free(plan->dead);
        free(plan);
    }
}

/* Phase 1, shared: snapshot the tombstones and relink around them. */
int hnsw_repair_relink(struct hnsw_index *ix, struct hnsw_repair_plan **out)
{
    struct hnsw_repair_plan *pl;
    struct scratch *s;
    int rc;

    *out = NULL;
    pl = calloc(1, sizeof *pl);
    if (pl == NULL)
        return DV_ENOMEM;
    pthread_rwlock_rdlock(&ix->rw);
    pl->nslots = slots_used(ix);
    pl->dead = calloc(pl->nslots ? pl->nslots : 1, 1);
    if (pl->dead == NULL) {
        pthread_rwlock_unlock(&ix->rw);
        hnsw_repair_drop(pl);
        return DV_ENOMEM;
    }
    for (size_t i = 0; i < pl->nslots; i++) {
        uint8_t f = flags_of(ix, (uint32_t)i);
        if ((f & FLAG_USED) && (f & FLAG_DELETED)) {
            pl->dead[i] = 1;
            pl->ndead++;
        }
    }
    if (pl->ndead == 0) {
        pthread_rwlock_unlock(&ix->rw);
        *out = pl;
        return DV_OK;
    }
    rc = hnsw_scratch_get(ix, ix->p.ef_construction, &s);
    for (size_t i = 0; rc == DV_OK && i < pl->nslots; i++) {
        uint32_t x = (uint32_t)i;
        if (pl->dead[x] || !(flags_of(ix, x) & FLAG_USED))
            continue;
        for (int lev = ix->levels[x]; lev >= 0 && rc == DV_OK; lev--)
            if (links_touch(ix, pl->dead, pl->nslots, x, lev))
                rc = relink(ix, s, pl->dead, pl->nslots, x, lev);
    }
    if (rc == DV_OK || rc != DV_ENOMEM)
        hnsw_scratch_put(ix, s);
    pthread_rwlock_unlock(&ix->rw);
    if (rc != DV_OK) {
        hnsw_repair_drop(pl);
        return rc;
    }
    *out = pl;
    return DV_OK;
}

/* Phase 2, exclusive: drop links that still point at dead nodes, then free them. */
int hnsw_repair_free(struct hnsw_index *ix, struct hnsw_repair_plan *pl, size_t *freed)
{
    const uint8_t *dead = pl->dead;
    size_t nslots = pl->nslots, ndead = pl->ndead;

    if (freed != NULL)
        *freed = 0;
    if (ndead == 0)
        return DV_OK;
    pthread_rwlock_wrlock(&ix->rw);
    size_t need = ix->n_free + ndead;
    if (need > ix->free_cap) {
        uint32_t *f = realloc(ix->free_slots, need * sizeof(uint32_t));
        if (f == NULL) {
            pthread_rwlock_unlock(&ix->rw);
            return DV_ENOMEM;
        }
        ix->free_slots = f;
        ix->free_cap = need;
    }
    for (size_t i = 0; i < ix->n_slots; i++) {
        uint32_t x = (uint32_t)i;
        if (is_dead(dead, nslots, x) || !(ix->flags[x] & FLAG_USED))
            continue;
        for (int lev = ix->levels[x]; lev >= 0; lev--) {
            uint32_t *l = links_of(ix, x, lev);
            uint32_t cnt = l[0], k = 0;
            for (uint32_t j = 0; j < cnt; j++)
                if (!is_dead(dead, nslots, l[1 + j]))
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
    if (ix->ep != HNSW_NO_SLOT && is_dead(dead, nslots, ix->ep)) {
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
    pl->ndead = 0; /* a plan frees its slots once */
    if (freed != NULL)
        *freed = ndead;
    return DV_OK;
}

int hnsw_repair(struct hnsw_index *ix, size_t *freed)
{
    struct hnsw_repair_plan *pl;
    if (freed != NULL)
        *freed = 0;
    int rc = hnsw_repair_relink(ix, &pl);
    if (rc != DV_OK)
        return rc;
    rc = hnsw_repair_free(ix, pl, freed);
    hnsw_repair_drop(pl);
    return rc;
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
    rc = hnsw_scratch_get(ix, ix->p.ef_construction, &s);
    if (rc != DV_OK)
        goto out_unlock;
    hnsw_store_vector(ix, slot, vec);
    if (ix->live > 1)
        rc = hnsw_link_node(ix, s, slot, ix->levels[slot], ix->ep, ix->max_level, true);
    hnsw_scratch_put(ix, s);
out_unlock:
    pthread_rwlock_unlock(&ix->rw);
    return rc;
}
