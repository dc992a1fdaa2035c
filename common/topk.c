/* topk.c - a max-heap of the k best (dist, id) pairs, sorted extraction and list merging. */
#include "topk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Strict "a is worse than b" in (dist, id) order. Distances are never NaN here. */
static int worse(const struct topk_entry *a, const struct topk_entry *b)
{
    if (a->dist != b->dist)
        return a->dist > b->dist;
    return a->id > b->id;
}

static void sift_up(struct topk_entry *h, size_t i)
{
    struct topk_entry e = h[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!worse(&e, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static void sift_down(struct topk_entry *h, size_t n, size_t i)
{
    struct topk_entry e = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && worse(&h[c + 1], &h[c]))
            c++;
        if (!worse(&h[c], &e))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
}

void topk_init(struct topk *t, size_t k)
{
    t->heap = NULL;
    t->k = k;
    t->n = 0;
    t->cap = 0;
}

void topk_free(struct topk *t)
{
    free(t->heap);
    topk_init(t, 0);
}

void topk_reset(struct topk *t)
{
    t->n = 0;
}

void topk_reset_k(struct topk *t, size_t k)
{
    t->n = 0;
    t->k = k;
}

static int grow(struct topk *t)
{
    size_t ncap = t->cap < 16 ? 16 : t->cap * 2;
    if (ncap > t->k || ncap < t->cap)
        ncap = t->k;
    if (ncap > SIZE_MAX / sizeof *t->heap)
        return DV_ENOMEM;
    struct topk_entry *h = realloc(t->heap, ncap * sizeof *h);
    if (h == NULL)
        return DV_ENOMEM;
    t->heap = h;
    t->cap = ncap;
    return DV_OK;
}

int topk_push(struct topk *t, float dist, uint64_t id)
{
    struct topk_entry e = {dist, id};
    if (isnan(dist))
        return DV_ENAN;
    if (t->n < t->k) {
        if (t->n == t->cap) {
            int rc = grow(t);
            if (rc != DV_OK)
                return rc;
        }
        t->heap[t->n] = e;
        sift_up(t->heap, t->n++);
        return DV_OK;
    }
    if (t->k == 0 || !worse(&t->heap[0], &e))
        return DV_OK;
    t->heap[0] = e;
    sift_down(t->heap, t->n, 0);
    return DV_OK;
}

float topk_worst(const struct topk *t)
{
    if (t->k == 0)
        return -INFINITY;
    if (t->n < t->k)
        return INFINITY;
    return t->heap[0].dist;
}

/* Heapsort of a copy: the copy of a max-heap is a max-heap, and popping it fills from the
 * back, leaving the array ascending. */
size_t topk_sorted(const struct topk *t, struct topk_entry *out)
{
    size_t n = t->n;
    if (n == 0)
        return 0;
    memcpy(out, t->heap, n * sizeof *out);
    for (size_t end = n - 1; end > 0; end--) {
        struct topk_entry top = out[0];
        out[0] = out[end];
        out[end] = top;
        sift_down(out, end, 0);
    }
    return n;
}

static int cmp_id_dist(const void *pa, const void *pb)
{
    const struct topk_entry *a = pa, *b = pb;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    if (a->dist != b->dist)
        return a->dist < b->dist ? -1 : 1;
    return 0;
}

int topk_merge(const struct topk_entry *const *lists, const size_t *lens, size_t nlists, size_t k,
               struct topk_entry *out, size_t *out_n)
{
    size_t total = 0;
    *out_n = 0;
    for (size_t i = 0; i < nlists; i++) {
        if (lens[i] > SIZE_MAX / sizeof(struct topk_entry) - total)
            return DV_ENOMEM;
        total += lens[i];
        for (size_t j = 0; j < lens[i]; j++)
            if (isnan(lists[i][j].dist))
                return DV_ENAN;
    }
    if (total == 0 || k == 0)
        return DV_OK;

    struct topk_entry *all = malloc(total * sizeof *all);
    if (all == NULL)
        return DV_ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < nlists; i++) {
        if (lens[i] > 0)
            memcpy(all + pos, lists[i], lens[i] * sizeof *all);
        pos += lens[i];
    }
    /* Group by id with the best distance first, keep one entry per id. */
    qsort(all, total, sizeof *all, cmp_id_dist);
    size_t uniq = 0;
    for (size_t i = 0; i < total; i++)
        if (uniq == 0 || all[uniq - 1].id != all[i].id)
            all[uniq++] = all[i];

    /* Select the k best of the unique entries with a bounded heap over `out`. */
    struct topk t = {.heap = out, .k = k, .n = 0, .cap = k};
    for (size_t i = 0; i < uniq; i++)
        topk_push(&t, all[i].dist, all[i].id); /* cannot fail: no NaN, no growth */
    free(all);
    /* Sort in place: heapsort over the heap's own array. */
    for (size_t end = t.n; end > 1; end--) {
        struct topk_entry top = out[0];
        out[0] = out[end - 1];
        out[end - 1] = top;
        sift_down(out, end - 1, 0);
    }
    *out_n = t.n;
    return DV_OK;
}
