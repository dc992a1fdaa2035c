/* pindex.h - a payload index on one key: keyword (string -> slots) or integer (value ->
 * slots, with ordered enumeration for ranges). */
#ifndef DV_PINDEX_H
#define DV_PINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The index maps each value found at its key (filter.h's path rules; every element of an
 * array counts) to the sorted set of slots whose payload holds it. A keyword index takes the
 * strings and ignores the rest; an integer index takes the integers that fit int64 and keeps
 * the slots holding other numbers (floats, integers above INT64_MAX) in one side list, which
 * every range enumeration includes so that candidates stay a superset.
 *
 * Threads: not internally locked. The owner serialises writers (add, remove) and excludes
 * readers while one runs, e.g. with its own rwlock: writers take it exclusively; readers
 * (pindex_key, pindex_mem, the lookups below, filter_estimate, filter_candidates) share it.
 * Readers never modify the index.
 */
enum pindex_kind {
    PINDEX_KEYWORD = 0,
    PINDEX_INTEGER = 1,
};

struct pindex;

/* Creates an empty index on `key` (a path as filter.h describes). DV_EINVAL for a bad key or
 * kind, DV_ENOMEM. The caller owns `*out` (pindex_free). */
int pindex_create(const char *key, enum pindex_kind kind, struct pindex **out);

void pindex_free(struct pindex *ix);

/* The key as given to pindex_create (valid until pindex_free), and the kind. */
const char *pindex_key(const struct pindex *ix);
enum pindex_kind pindex_kind_of(const struct pindex *ix);

/*
 * Indexes every value of the right type at the key in `payload` (a msgpack map of `len`
 * bytes; len 0 means none) under `slot`. Adding a slot again with the same values is a no-op.
 * On DV_ENOMEM some values may be indexed: pindex_remove with the same payload undoes it.
 */
int pindex_add(struct pindex *ix, uint32_t slot, const void *payload, size_t len);

/* Removes `slot` from the values in `payload`, which must be the bytes given to pindex_add
 * (values that are not indexed under the slot are passed over). */
void pindex_remove(struct pindex *ix, uint32_t slot, const void *payload, size_t len);

/* Bytes of memory the index holds (approximate: allocator overhead not counted). */
size_t pindex_mem(const struct pindex *ix);

/* Number of distinct values indexed. */
size_t pindex_values(const struct pindex *ix);

/*
 * Lookups for the planner. A posting list is a sorted array of distinct slots, valid until
 * the next write to the index. Missing values give an empty list.
 */
struct pindex_list {
    const uint32_t *slots;
    size_t n;
};

/* Keyword index: the slots holding string s. */
struct pindex_list pindex_get_str(const struct pindex *ix, const char *s, size_t n);

/* Integer index: the slots holding integer v. */
struct pindex_list pindex_get_int(const struct pindex *ix, int64_t v);

/* Integer index: the slots holding numbers that are not int64 (floats, big integers). */
struct pindex_list pindex_other_numbers(const struct pindex *ix);

/* Integer index: calls fn with the posting list of every value in [lo, hi] (in no particular
 * order) until it returns true. */
typedef bool (*pindex_list_fn)(void *ctx, struct pindex_list l);
void pindex_range(const struct pindex *ix, int64_t lo, int64_t hi, pindex_list_fn fn, void *ctx);

#endif
