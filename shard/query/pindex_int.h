/* pindex_int.h - the inside of a payload index, shared by pindex.c (values, add, remove,
 * lookups) and pindex_scan.c (facets, order_by). Internal to shard/query. */
#ifndef DV_PINDEX_INT_H
#define DV_PINDEX_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"
#include "pindex.h"

/* A sorted set of slots. */
struct posting {
    uint32_t *v;
    uint32_t n, cap;
};

/* A hash-table entry: a keyword (s, slen) or an integer (iv), and its slots. */
struct ent {
    uint64_t h;
    char *s;
    uint32_t slen;
    uint8_t used;
    int64_t iv;
    struct posting pl;
};

/*
 * Integer values are also kept in order for ranges: `sorted` is a sorted array of distinct
 * values that may hold stale ones (no longer in the table; `stale` counts them), and `recent`
 * an unsorted array of values added since the last merge. New values go to `recent`; when it
 * outgrows about the square root of `sorted` both are merged, so adding costs amortised
 * O(sqrt n) and a range costs O(log n + |recent| + values in range). All of this work happens
 * in writers; readers only read.
 */
struct pindex {
    char *key;
    struct filter_path path;
    enum pindex_kind kind;
    struct ent *tab;
    size_t cap, count; /* cap is a power of two; count used entries */
    int64_t *sorted;
    size_t nsorted, capsorted, stale;
    int64_t *recent;
    size_t nrecent, caprecent;
    struct posting other; /* integer index: slots with non-int64 numbers */
    struct posting all;   /* slots holding at least one indexed value */
    struct pindex_params prm;
    char *scratch; /* text index: folded tokens (writers only) */
    size_t capscratch;
    size_t heap; /* bytes in postings and strings */
};

/* Keys are int64 (integer, float, bool, geo, datetime) or bytes (keyword, text, uuid). */
static inline bool pindex_int_keyed(const struct pindex *ix)
{
    return ix->kind != PINDEX_KEYWORD && ix->kind != PINDEX_TEXT && ix->kind != PINDEX_UUID;
}

/* Kinds whose int64 keys are also kept in order (ranges, order_by). */
static inline bool pindex_ordered(const struct pindex *ix)
{
    return ix->kind == PINDEX_INTEGER || ix->kind == PINDEX_FLOAT || ix->kind == PINDEX_DATETIME;
}

/* The entry of an int64 key, or NULL. */
const struct ent *pindex_find_int(const struct pindex *ix, int64_t v);

/* Index of the first element >= x in a sorted array. */
size_t pindex_lower_i64(const int64_t *v, size_t n, int64_t x);

#endif
