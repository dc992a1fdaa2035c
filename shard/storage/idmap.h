/* idmap.h - point id -> slot hash table over the owner's slot -> id array. */
#ifndef DV_IDMAP_H
#define DV_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "pid.h"

/*
 * Open addressing with linear probing; the table stores slots only and compares ids through
 * the owner's array ids[slot], which every call receives (it may move between calls).
 * Deletion shifts entries back (no tombstones). Not thread-safe: the owner locks.
 */
struct idmap {
    uint32_t *tab; /* IDMAP_EMPTY or a slot */
    size_t cap;    /* power of two */
    size_t n;
};

#define IDMAP_EMPTY UINT32_MAX

void idmap_init(struct idmap *m);
void idmap_free(struct idmap *m);

/* The slot of id, or IDMAP_EMPTY. */
uint32_t idmap_get(const struct idmap *m, const struct pid *ids, const struct pid *id);

/* Adds slot (ids[slot] is its id, not already present). DV_ENOMEM on growth failure. */
int idmap_put(struct idmap *m, const struct pid *ids, uint32_t slot);

/* Makes room for n entries without growing (for loading). */
int idmap_reserve(struct idmap *m, const struct pid *ids, size_t n);

/* Removes the entry of id; returns its slot or IDMAP_EMPTY. */
uint32_t idmap_del(struct idmap *m, const struct pid *ids, const struct pid *id);

#endif
