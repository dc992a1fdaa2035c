/* idmap.c - point id -> slot hash table (linear probing, backward-shift deletion). */
#include "idmap.h"

#include <stdbool.h>
#include <stdlib.h>

#include "err.h"

void idmap_init(struct idmap *m)
{
    m->tab = NULL;
    m->cap = 0;
    m->n = 0;
}

void idmap_free(struct idmap *m)
{
    free(m->tab);
    idmap_init(m);
}

static size_t home(const struct idmap *m, const struct pid *id)
{
    return (size_t)pid_hash(id) & (m->cap - 1);
}

uint32_t idmap_get(const struct idmap *m, const struct pid *ids, const struct pid *id)
{
    if (m->cap == 0)
        return IDMAP_EMPTY;
    for (size_t i = home(m, id);; i = (i + 1) & (m->cap - 1)) {
        uint32_t s = m->tab[i];
        if (s == IDMAP_EMPTY || pid_eq(&ids[s], id))
            return s;
    }
}

static void insert_raw(struct idmap *m, const struct pid *ids, uint32_t slot)
{
    size_t i = home(m, &ids[slot]);
    while (m->tab[i] != IDMAP_EMPTY)
        i = (i + 1) & (m->cap - 1);
    m->tab[i] = slot;
}

static int resize(struct idmap *m, const struct pid *ids, size_t ncap)
{
    uint32_t *old = m->tab;
    size_t ocap = m->cap;
    uint32_t *t = malloc(ncap * sizeof(uint32_t));
    if (t == NULL)
        return DV_ENOMEM;
    for (size_t i = 0; i < ncap; i++)
        t[i] = IDMAP_EMPTY;
    m->tab = t;
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i] != IDMAP_EMPTY)
            insert_raw(m, ids, old[i]);
    free(old);
    return DV_OK;
}

int idmap_reserve(struct idmap *m, const struct pid *ids, size_t n)
{
    size_t cap = m->cap ? m->cap : 64;
    while ((n + 1) * 4 > cap * 3)
        cap *= 2;
    return cap > m->cap ? resize(m, ids, cap) : DV_OK;
}

int idmap_put(struct idmap *m, const struct pid *ids, uint32_t slot)
{
    if ((m->n + 1) * 4 > m->cap * 3) { /* load factor <= 0.75 */
        int rc = resize(m, ids, m->cap ? m->cap * 2 : 64);
        if (rc != DV_OK)
            return rc;
    }
    insert_raw(m, ids, slot);
    m->n++;
    return DV_OK;
}

uint32_t idmap_del(struct idmap *m, const struct pid *ids, const struct pid *id)
{
    if (m->cap == 0)
        return IDMAP_EMPTY;
    size_t mask = m->cap - 1, i = home(m, id);
    for (;; i = (i + 1) & mask) {
        uint32_t s = m->tab[i];
        if (s == IDMAP_EMPTY)
            return IDMAP_EMPTY;
        if (pid_eq(&ids[s], id))
            break;
    }
    uint32_t found = m->tab[i];
    /* Shift later entries of the cluster back into the hole when their home allows it. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->tab[j] != IDMAP_EMPTY; j = (j + 1) & mask) {
        size_t h = home(m, &ids[m->tab[j]]);
        /* j may move to hole when h is not cyclically in (hole, j] */
        bool stay = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (!stay) {
            m->tab[hole] = m->tab[j];
            hole = j;
        }
    }
    m->tab[hole] = IDMAP_EMPTY;
    m->n--;
    return found;
}
