/* resolve.h - Qdrant's read consistency: the answers of several in-sync replicas to one read
 * resolved into one answer (router.c asks the replicas; this file only counts). Pure. */
#ifndef DV_RESOLVE_H
#define DV_RESOLVE_H

#include <stdint.h>

#include "msg.h"

/*
 * The hits held by at least `need` of the r lists, a hit counting where a list holds the same
 * id with the same vector and payload (each list holds an id at most once), one copy each,
 * sorted by id. out has room for the sum of the lists' lengths; *n gets the count. DV_ENOMEM.
 */
int resolve_hits(const struct msg_hits *lists, uint32_t r, uint32_t need, struct msg_hit *out,
                 uint32_t *n);

/*
 * The distinct ids of the r lists, of those below `*below` only when it is not NULL. With
 * resolve_hits' *n over the same lists: more distinct ids than resolved hits means some point
 * is held by fewer than `need` replicas alike (a write in flight). 0 also when out of memory.
 */
uint32_t resolve_distinct(const struct msg_hits *lists, uint32_t r, const struct pid *below);

/* The count that at least `need` of the r answers reach: the need-th highest (need = r: the
 * lowest). r at most 16. */
uint64_t resolve_count(const uint64_t *counts, uint32_t r, uint32_t need);

#endif
