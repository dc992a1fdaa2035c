/* sparse.h - the inverted index of a sparse vector space: term -> (slot, weight) postings, and
 * exact dot-product search over them. */
#ifndef DV_SPARSE_H
#define DV_SPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A sparse vector is a list of (term, weight) pairs: `idx` holds n distinct terms (any uint32)
 * in increasing order, `val` their weights (finite floats, any sign). The index keeps, for each
 * term, the slots whose vector holds it with their weights, and for each slot its vector, so
 * that removing a slot costs O(n log n) whatever the posting lists' lengths.
 *
 * Threads: not internally locked, like pindex.h: the owner serialises writers (add, remove)
 * and excludes readers while one runs; readers (search, df, docs, mem) never modify the
 * index and may run together.
 */
struct sparse_index;

int sparse_create(struct sparse_index **out);

void sparse_free(struct sparse_index *ix);

/*
 * Indexes the vector of `slot` (which must hold none: remove it first). DV_EINVAL when the
 * terms are not strictly increasing; DV_ENOMEM (then nothing of it is indexed).
 */
int sparse_add(struct sparse_index *ix, uint32_t slot, const uint32_t *idx, const float *val,
               uint32_t n);

/* Removes the vector of `slot`; no-op when it holds none. */
void sparse_remove(struct sparse_index *ix, uint32_t slot);

/* Whether `slot` holds a vector. */
bool sparse_has(const struct sparse_index *ix, uint32_t slot);

/* Number of slots holding a vector with `term` (its document frequency). */
uint32_t sparse_df(const struct sparse_index *ix, uint32_t term);

/* Number of slots holding a vector. */
uint64_t sparse_docs(const struct sparse_index *ix);

/* Bytes of memory held (approximate). */
size_t sparse_mem(const struct sparse_index *ix);

/* Which slots may be returned (visibility, filters); NULL accepts every slot. */
typedef bool (*sparse_accept_fn)(uint32_t slot, void *arg);

struct sparse_hit {
    uint32_t slot;
    float score;
};

/*
 * The k slots with the highest score = sum over the query's terms t held by the slot of
 * qval[t] * weight(slot, t), among the slots `accept` takes that share at least one term
 * with the query; best first, ties by smaller slot. The query's terms need not be sorted;
 * a term given twice counts twice. `hits` has room for k; *n gets the number found.
 * DV_ENOMEM. Callers apply IDF by scaling qval.
 */
int sparse_search(const struct sparse_index *ix, const uint32_t *qidx, const float *qval,
                  uint32_t qn, uint32_t k, sparse_accept_fn accept, void *arg,
                  struct sparse_hit *hits, uint32_t *n);

/*
 * Exact score of the vector (idx, val, n; sorted terms) against the query (any order):
 * the dot product over shared terms. For re-scoring given points.
 */
float sparse_dot(const uint32_t *idx, const float *val, uint32_t n, const uint32_t *qidx,
                 const float *qval, uint32_t qn);

/* BM25's inverse document frequency of a term held by df of n documents, as Qdrant's `idf`
 * modifier uses it: ln(1 + (n - df + 0.5) / (df + 0.5)). */
float sparse_idf(uint64_t n, uint64_t df);

#endif
