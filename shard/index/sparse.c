/* sparse.c - the inverted index of a sparse vector space (sparse.h). */
#include "sparse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "topk.h"

/* The postings of one term, unordered: removal moves the last entry into the hole. */
struct plist {
    uint32_t term;
    uint32_t n, cap;
    uint32_t *slot;
    float *val;
};

/* A slot's vector as the index holds it: per entry, its list and its position there, sorted
 * by list so that a moved posting finds its entry by binary search. */
struct sdoc {
    uint32_t n;
    bool has;
    uint32_t *list;
    uint32_t *pos;
};

struct sparse_index {
    /* term -> list number + 1 (0: empty), open addressing, power-of-two size */
    uint32_t *tkey, *tval;
    size_t tcap, tn;
    struct plist *lists;
    size_t nlists, lcap;
    struct sdoc *docs;
    size_t dcap;
    uint64_t ndocs, postings;
};

int sparse_create(struct sparse_index **out)
{
    struct sparse_index *ix = calloc(1, sizeof *ix);
    if (ix == NULL)
        return DV_ENOMEM;
    *out = ix;
    return DV_OK;
}

void sparse_free(struct sparse_index *ix)
{
    if (ix == NULL)
        return;
    for (size_t i = 0; i < ix->nlists; i++) {
        free(ix->lists[i].slot);
        free(ix->lists[i].val);
    }
    for (size_t s = 0; s < ix->dcap; s++) {
        free(ix->docs[s].list);
        free(ix->docs[s].pos);
    }
    free(ix->lists);
    free(ix->docs);
    free(ix->tkey);
    free(ix->tval);
    free(ix);
}

static size_t thash(uint32_t t, size_t cap)
{
    return (size_t)((t * 0x9E3779B1u) ^ (t >> 16)) & (cap - 1);
}

/* The list number of term t, or UINT32_MAX. */
static uint32_t find_list(const struct sparse_index *ix, uint32_t t)
{
    if (ix->tcap == 0)
        return UINT32_MAX;
    for (size_t h = thash(t, ix->tcap);; h = (h + 1) & (ix->tcap - 1)) {
        if (ix->tval[h] == 0)
            return UINT32_MAX;
        if (ix->tkey[h] == t)
            return ix->tval[h] - 1;
    }
}

static int grow_table(struct sparse_index *ix)
{
    size_t nc = ix->tcap ? ix->tcap * 2 : 64;
    uint32_t *k = calloc(nc, sizeof *k), *v = calloc(nc, sizeof *v);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return DV_ENOMEM;
    }
    for (size_t i = 0; i < ix->tcap; i++) {
        if (ix->tval[i] == 0)
            continue;
        size_t h = thash(ix->tkey[i], nc);
        while (v[h] != 0)
            h = (h + 1) & (nc - 1);
        k[h] = ix->tkey[i];
        v[h] = ix->tval[i];
    }
    free(ix->tkey);
    free(ix->tval);
    ix->tkey = k;
    ix->tval = v;
    ix->tcap = nc;
    return DV_OK;
}

/* The list of term t, created when missing. */
static int get_list(struct sparse_index *ix, uint32_t t, uint32_t *out)
{
    uint32_t l = find_list(ix, t);
    if (l != UINT32_MAX) {
        *out = l;
        return DV_OK;
    }
    if ((ix->tn + 1) * 4 > ix->tcap * 3 && grow_table(ix) != DV_OK)
        return DV_ENOMEM;
    if (ix->nlists == ix->lcap) {
        size_t nc = ix->lcap ? ix->lcap * 2 : 64;
        struct plist *nl = realloc(ix->lists, nc * sizeof *nl);
        if (nl == NULL)
            return DV_ENOMEM;
        ix->lists = nl;
        ix->lcap = nc;
    }
    l = (uint32_t)ix->nlists++;
    ix->lists[l] = (struct plist){t, 0, 0, NULL, NULL};
    size_t h = thash(t, ix->tcap);
    while (ix->tval[h] != 0)
        h = (h + 1) & (ix->tcap - 1);
    ix->tkey[h] = t;
    ix->tval[h] = l + 1;
    ix->tn++;
    *out = l;
    return DV_OK;
}

static int reserve_entry(struct plist *pl)
{
    if (pl->n < pl->cap)
        return DV_OK;
    uint32_t nc = pl->cap ? pl->cap * 2 : 4;
    uint32_t *s = realloc(pl->slot, nc * sizeof *s);
    if (s == NULL)
        return DV_ENOMEM;
    pl->slot = s;
    float *v = realloc(pl->val, nc * sizeof *v);
    if (v == NULL)
        return DV_ENOMEM;
    pl->val = v;
    pl->cap = nc;
    return DV_OK;
}

static int reserve_docs(struct sparse_index *ix, uint32_t slot)
{
    if (slot < ix->dcap)
        return DV_OK;
    size_t nc = ix->dcap ? ix->dcap : 1024;
    while (nc <= slot)
        nc *= 2;
    struct sdoc *d = realloc(ix->docs, nc * sizeof *d);
    if (d == NULL)
        return DV_ENOMEM;
    memset(d + ix->dcap, 0, (nc - ix->dcap) * sizeof *d);
    ix->docs = d;
    ix->dcap = nc;
    return DV_OK;
}

/* Sorts a doc's entries by list (insertion sort on pairs: vectors are short). */
static void sort_doc(struct sdoc *d)
{
    for (uint32_t i = 1; i < d->n; i++) {
        uint32_t l = d->list[i], p = d->pos[i], j = i;
        while (j > 0 && d->list[j - 1] > l) {
            d->list[j] = d->list[j - 1];
            d->pos[j] = d->pos[j - 1];
            j--;
        }
        d->list[j] = l;
        d->pos[j] = p;
    }
}

/* Where the doc's entry for list l is (it exists). */
static uint32_t doc_entry(const struct sdoc *d, uint32_t l)
{
    uint32_t lo = 0, hi = d->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->list[mid] < l)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Takes entry j of doc d out of its list. */
static void unlink_entry(struct sparse_index *ix, const struct sdoc *d, uint32_t j)
{
    struct plist *pl = &ix->lists[d->list[j]];
    uint32_t at = d->pos[j], last = pl->n - 1;
    if (at != last) {
        uint32_t moved = pl->slot[last];
        pl->slot[at] = moved;
        pl->val[at] = pl->val[last];
        struct sdoc *md = &ix->docs[moved];
        md->pos[doc_entry(md, d->list[j])] = at;
    }
    pl->n--;
    ix->postings--;
}

int sparse_add(struct sparse_index *ix, uint32_t slot, const uint32_t *idx, const float *val,
               uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        if (idx[i] <= idx[i - 1])
            return DV_EINVAL;
    if (reserve_docs(ix, slot) != DV_OK)
        return DV_ENOMEM;
    struct sdoc *d = &ix->docs[slot];
    if (d->has)
        return DV_EINVAL;
    uint32_t *list = malloc((n ? n : 1) * sizeof *list), *pos = malloc((n ? n : 1) * sizeof *pos);
    if (list == NULL || pos == NULL) {
        free(list);
        free(pos);
        return DV_ENOMEM;
    }
    *d = (struct sdoc){0, true, list, pos};
    for (uint32_t i = 0; i < n; i++) {
        uint32_t l;
        if (get_list(ix, idx[i], &l) != DV_OK || reserve_entry(&ix->lists[l]) != DV_OK) {
            /* undo the entries linked so far (sorted: unlink finds them) */
            sort_doc(d);
            for (uint32_t j = d->n; j-- > 0;)
                unlink_entry(ix, d, j);
            free(d->list);
            free(d->pos);
            *d = (struct sdoc){0, false, NULL, NULL};
            return DV_ENOMEM;
        }
        struct plist *pl = &ix->lists[l];
        pl->slot[pl->n] = slot;
        pl->val[pl->n] = val[i];
        d->list[d->n] = l;
        d->pos[d->n] = pl->n;
        d->n++;
        pl->n++;
        ix->postings++;
    }
    sort_doc(d);
    ix->ndocs++;
    return DV_OK;
}

void sparse_remove(struct sparse_index *ix, uint32_t slot)
{
    if (slot >= ix->dcap || !ix->docs[slot].has)
        return;
    struct sdoc *d = &ix->docs[slot];
    /* Back to front: an entry of this doc moved by an earlier unlink is not one of its own
     * (a doc holds each list once). */
    for (uint32_t j = d->n; j-- > 0;)
        unlink_entry(ix, d, j);
    free(d->list);
    free(d->pos);
    *d = (struct sdoc){0, false, NULL, NULL};
    ix->ndocs--;
}

bool sparse_has(const struct sparse_index *ix, uint32_t slot)
{
    return slot < ix->dcap && ix->docs[slot].has;
}

uint32_t sparse_df(const struct sparse_index *ix, uint32_t term)
{
    uint32_t l = find_list(ix, term);
    return l == UINT32_MAX ? 0 : ix->lists[l].n;
}

uint64_t sparse_docs(const struct sparse_index *ix)
{
    return ix->ndocs;
}

size_t sparse_mem(const struct sparse_index *ix)
{
    size_t m = sizeof *ix + ix->tcap * 8 + ix->lcap * sizeof(struct plist) +
               ix->dcap * sizeof(struct sdoc);
    for (size_t i = 0; i < ix->nlists; i++)
        m += (size_t)ix->lists[i].cap * 8;
    return m + (size_t)ix->postings * 8;
}

int sparse_search(const struct sparse_index *ix, const uint32_t *qidx, const float *qval,
                  uint32_t qn, uint32_t k, sparse_accept_fn accept, void *arg,
                  struct sparse_hit *hits, uint32_t *n)
{
    *n = 0;
    if (k == 0 || ix->dcap == 0)
        return DV_OK;
    float *acc = calloc(ix->dcap, sizeof *acc);
    uint8_t *seen = calloc(ix->dcap, 1);
    size_t nt = 0, tcap = 0;
    uint32_t *touched = NULL;
    int rc = DV_OK;
    if (acc == NULL || seen == NULL) {
        rc = DV_ENOMEM;
        goto out;
    }
    for (uint32_t j = 0; j < qn; j++) {
        uint32_t l = find_list(ix, qidx[j]);
        if (l == UINT32_MAX)
            continue;
        const struct plist *pl = &ix->lists[l];
        float w = qval[j];
        for (uint32_t e = 0; e < pl->n; e++) {
            uint32_t s = pl->slot[e];
            if (!seen[s]) {
                if (nt == tcap) {
                    size_t nc = tcap ? tcap * 2 : 1024;
                    uint32_t *t = realloc(touched, nc * sizeof *t);
                    if (t == NULL) {
                        rc = DV_ENOMEM;
                        goto out;
                    }
                    touched = t;
                    tcap = nc;
                }
                seen[s] = 1;
                touched[nt++] = s;
            }
            acc[s] += w * pl->val[e];
        }
    }
    struct topk t;
    topk_init(&t, k);
    for (size_t i = 0; i < nt && rc == DV_OK; i++) {
        uint32_t s = touched[i];
        if (accept != NULL && !accept(s, arg))
            continue;
        if (isnan(acc[s]))
            continue;
        rc = topk_push(&t, -acc[s], s);
    }
    struct topk_entry *best = rc == DV_OK ? malloc((topk_size(&t) + 1) * sizeof *best) : NULL;
    if (rc == DV_OK && best == NULL)
        rc = DV_ENOMEM;
    if (rc == DV_OK) {
        size_t got = topk_sorted(&t, best);
        for (size_t i = 0; i < got; i++)
            hits[i] = (struct sparse_hit){(uint32_t)best[i].id, -best[i].dist};
        *n = (uint32_t)got;
    }
    free(best);
    topk_free(&t);
out:
    free(acc);
    free(seen);
    free(touched);
    return rc;
}

float sparse_dot(const uint32_t *idx, const float *val, uint32_t n, const uint32_t *qidx,
                 const float *qval, uint32_t qn)
{
    float s = 0;
    for (uint32_t j = 0; j < qn; j++) {
        uint32_t lo = 0, hi = n;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (idx[mid] < qidx[j])
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < n && idx[lo] == qidx[j])
            s += qval[j] * val[lo];
    }
    return s;
}

float sparse_idf(uint64_t n, uint64_t df)
{
    double N = (double)n, d = (double)df;
    return (float)log(1.0 + (N - d + 0.5) / (d + 0.5));
}
