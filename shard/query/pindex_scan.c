/* pindex_scan.c - enumerating a payload index: facet counts and slots in value order
 * (order_by). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pindex_int.h"

static bool has_u32(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x;
}

/* |a ∩ b| of two sorted sets: binary searches of the smaller in the larger. */
static uint64_t inter_count(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    if (na > nb)
        return inter_count(b, nb, a, na);
    uint64_t c = 0;
    for (size_t i = 0; i < na; i++)
        c += has_u32(b, nb, a[i]);
    return c;
}

/* The kind being sorted, for facet_cmp (qsort has no context argument). */
static _Thread_local enum pindex_kind facet_kind;

static int facet_cmp(const void *x, const void *y)
{
    const struct pindex_facet_hit *a = x, *b = y;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    if (facet_kind == PINDEX_KEYWORD) {
        uint32_t n = a->n < b->n ? a->n : b->n;
        int c = n ? memcmp(a->s, b->s, n) : 0;
        return c != 0 ? c : (a->n > b->n) - (a->n < b->n);
    }
    if (facet_kind == PINDEX_UUID)
        return pid_cmp(&a->id, &b->id);
    return (a->i > b->i) - (a->i < b->i);
}

int pindex_facet(const struct pindex *ix, const uint32_t *slots, size_t nslots, size_t limit,
                 struct pindex_facet_hit **hits, size_t *n)
{
    *hits = NULL;
    *n = 0;
    if (ix->kind != PINDEX_KEYWORD && ix->kind != PINDEX_INTEGER && ix->kind != PINDEX_BOOL &&
        ix->kind != PINDEX_UUID)
        return DV_EINVAL;
    if (ix->count == 0)
        return DV_OK;
    struct pindex_facet_hit *h = malloc(ix->count * sizeof *h);
    if (h == NULL)
        return DV_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < ix->cap; i++) {
        const struct ent *e = &ix->tab[i];
        if (!e->used)
            continue;
        uint64_t c = slots == NULL ? e->pl.n : inter_count(e->pl.v, e->pl.n, slots, nslots);
        if (c == 0)
            continue;
        struct pindex_facet_hit x = {.count = c};
        if (ix->kind == PINDEX_KEYWORD) {
            x.s = e->s;
            x.n = e->slen;
        } else if (ix->kind == PINDEX_UUID) {
            x.id = pid_from_uuid_bytes((const uint8_t *)e->s);
        } else {
            x.i = e->iv;
        }
        h[m++] = x;
    }
    facet_kind = ix->kind;
    qsort(h, m, sizeof *h, facet_cmp);
    if (limit != 0 && m > limit)
        m = limit;
    if (m == 0) {
        free(h);
        return DV_OK;
    }
    *hits = h;
    *n = m;
    return DV_OK;
}

static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Reports every slot of key k; true when fn stopped. */
static bool emit(const struct pindex *ix, int64_t k, pindex_order_fn fn, void *ctx)
{
    const struct ent *e = pindex_find_int(ix, k);
    if (e == NULL)
        return false; /* a stale value of `sorted` */
    struct pindex_ordval v = {k, 0};
    if (ix->kind == PINDEX_FLOAT)
        v.f = pindex_float_of_key(k);
    for (uint32_t i = 0; i < e->pl.n; i++)
        if (fn(ctx, e->pl.v[i], v))
            return true;
    return false;
}

int pindex_order(const struct pindex *ix, bool desc, const struct pindex_ordval *start_from,
                 pindex_order_fn fn, void *ctx)
{
    if (!pindex_ordered(ix))
        return DV_EINVAL;
    int64_t from = 0;
    if (start_from != NULL) {
        if (ix->kind == PINDEX_FLOAT) {
            if (start_from->f != start_from->f)
                return DV_EINVAL; /* NaN */
            from = pindex_float_key(start_from->f);
        } else {
            from = start_from->i;
        }
    }
    /* `sorted` and `recent` hold distinct values; sort a copy of recent and merge. */
    int64_t *rec = NULL;
    size_t nr = ix->nrecent;
    if (nr > 0) {
        if ((rec = malloc(nr * sizeof *rec)) == NULL)
            return DV_ENOMEM;
        memcpy(rec, ix->recent, nr * sizeof *rec);
        qsort(rec, nr, sizeof *rec, i64_cmp);
    }
    const int64_t *srt = ix->sorted;
    size_t ns = ix->nsorted;
    if (!desc) {
        size_t i = start_from ? pindex_lower_i64(srt, ns, from) : 0;
        size_t j = start_from ? pindex_lower_i64(rec, nr, from) : 0;
        while (i < ns || j < nr) {
            int64_t k = j == nr || (i < ns && srt[i] < rec[j]) ? srt[i++] : rec[j++];
            if (emit(ix, k, fn, ctx))
                break;
        }
    } else {
        /* Count of values <= from. */
        size_t i = ns, j = nr;
        if (start_from != NULL) {
            i = from == INT64_MAX ? ns : pindex_lower_i64(srt, ns, from + 1);
            j = from == INT64_MAX ? nr : pindex_lower_i64(rec, nr, from + 1);
        }
        while (i > 0 || j > 0) {
            int64_t k = j == 0 || (i > 0 && srt[i - 1] > rec[j - 1]) ? srt[--i] : rec[--j];
            if (emit(ix, k, fn, ctx))
                break;
        }
    }
    free(rec);
    return DV_OK;
}
