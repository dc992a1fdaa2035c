/* topk.h - bounded heap of the k best (smallest distance) results, and a merge of lists. */
#ifndef DV_TOPK_H
#define DV_TOPK_H

#include <stddef.h>
#include <stdint.h>

struct topk_entry {
    float dist;
    uint64_t id;
};

/*
 * Keeps the k entries that are smallest by (dist, id): ties on distance are broken by the
 * smaller id, so the kept set and its order are deterministic whatever the push order.
 * Internally a max-heap whose root is the worst kept entry. Not thread-safe: use one per
 * thread and reuse it across queries (topk_reset keeps the memory).
 */
struct topk {
    struct topk_entry *heap;
    size_t k;   /* how many to keep */
    size_t n;   /* how many kept now, <= k */
    size_t cap; /* allocated entries; grows up to k on demand */
};

/* Prepares an empty top-k keeping at most `k` entries (k may be 0: keeps nothing). Allocates
 * nothing yet. */
void topk_init(struct topk *t, size_t k);

/* Frees the memory. */
void topk_free(struct topk *t);

/* Empties the top-k, keeping its memory and k. */
void topk_reset(struct topk *t);

/* Empties the top-k and sets a new k, keeping its memory (for per-thread reuse). */
void topk_reset_k(struct topk *t, size_t k);

/*
 * Offers (dist, id). It is kept if fewer than k are held or it is better than the worst
 * held entry (which it then evicts). Returns DV_OK whether kept or not, DV_ENAN if dist is
 * NaN (rejected; +-infinity are accepted), DV_ENOMEM if growing the heap failed. The same
 * id pushed twice is held twice: pushing does not deduplicate.
 */
int topk_push(struct topk *t, float dist, uint64_t id);

/* Number of entries held. */
static inline size_t topk_size(const struct topk *t)
{
    return t->n;
}

/*
 * The admission threshold: the distance of the worst held entry when full; +INFINITY while
 * fewer than k are held; -INFINITY when k == 0. A candidate with dist > topk_worst() would
 * be rejected, so searches can prune with it.
 */
float topk_worst(const struct topk *t);

/*
 * Writes the held entries to `out` (room for topk_size(t) entries) in ascending (dist, id)
 * order and returns their count. The top-k itself is unchanged. Allocates nothing.
 */
size_t topk_sorted(const struct topk *t, struct topk_entry *out);

/*
 * Merges `nlists` result lists (lists[i] holds lens[i] entries, in any order) into the k best
 * by (dist, id), written ascending to `out` (room for k entries); `*out_n` gets the count.
 * An id present in several lists appears once, with its smallest distance (so overlapping
 * answers, e.g. from two replicas during a move, are harmless). Returns DV_OK, DV_ENAN if
 * an input distance is NaN, or DV_ENOMEM. Allocates scratch of the total input size.
 */
int topk_merge(const struct topk_entry *const *lists, const size_t *lens, size_t nlists, size_t k,
               struct topk_entry *out, size_t *out_n);

#endif
