/* filter_plan.c - filter planning: estimates and candidate slots from payload indexes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "filter_int.h"
#include "pindex.h"

/* ---- Planning ---- */

static const struct pindex *find_index(const struct cond *c, struct pindex *const *ix, size_t nix,
                                       enum pindex_kind kind)
{
    for (size_t i = 0; i < nix; i++)
        if (pindex_kind_of(ix[i]) == kind && strcmp(pindex_key(ix[i]), c->path.text) == 0)
            return ix[i];
    return NULL;
}

/* The integer interval [lo, hi] holding every integer in the range; false when empty. */
static bool int_interval(const struct cond *c, int64_t *lo, int64_t *hi)
{
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    for (int b = 0; b < 4; b++) {
        if (!(c->u.range.has & (1u << b)))
            continue;
        const struct num *x = &c->u.range.b[b];
        bool lower = b == B_GT || b == B_GTE;
        int64_t v;
        if (x->k == NUM_U64) {
            if (lower)
                return false;
            continue;
        } else if (x->k == NUM_I64) {
            v = x->v.i;
            if (b == B_GT) {
                if (v == INT64_MAX)
                    return false;
                v++;
            } else if (b == B_LT) {
                if (v == INT64_MIN)
                    return false;
                v--;
            }
        } else {
            /* The smallest integer above/at x, or the largest below/at it. */
            double d = b == B_GT    ? floor(x->v.f) + 1
                       : b == B_GTE ? ceil(x->v.f)
                       : b == B_LT  ? ceil(x->v.f) - 1
                                    : floor(x->v.f);
            if (d >= 9223372036854775808.0) {
                if (lower)
                    return false;
                continue;
            }
            if (d < -9223372036854775808.0) {
                if (!lower)
                    return false;
                continue;
            }
            v = (int64_t)d;
        }
        if (lower && v > *lo)
            *lo = v;
        if (!lower && v < *hi)
            *hi = v;
    }
    return *lo <= *hi;
}

static bool sum_fn(void *ctx, struct pindex_list l)
{
    *(uint64_t *)ctx += l.n;
    return false;
}

static uint64_t est_filter(const struct filter *f, struct pindex *const *ix, size_t nix, int *how,
                           bool *ok);

/* Upper bound of the slots an indexed condition enumerates; false when no index serves it. */
static bool est_cond(const struct cond *c, struct pindex *const *ix, size_t nix, uint64_t *est)
{
    const struct pindex *p;
    switch (c->kind) {
    case C_VALUE:
        if (c->vt == V_BOOL)
            return false;
        if ((p = find_index(c, ix, nix, c->vt == V_STR ? PINDEX_KEYWORD : PINDEX_INTEGER)) == NULL)
            return false;
        *est = (c->vt == V_STR ? pindex_get_str(p, c->u.val.s, c->u.val.n)
                               : pindex_get_int(p, c->u.val.i))
                   .n;
        return true;
    case C_ANY:
        if ((p = find_index(c, ix, nix, c->vt == V_STR ? PINDEX_KEYWORD : PINDEX_INTEGER)) == NULL)
            return c->u.set.n == 0 ? (*est = 0, true) : false;
        *est = 0;
        for (uint32_t i = 0; i < c->u.set.n; i++)
            *est += (c->vt == V_STR ? pindex_get_str(p, c->u.set.strs[i].s, c->u.set.strs[i].n)
                                    : pindex_get_int(p, c->u.set.ints[i]))
                        .n;
        return true;
    case C_RANGE: {
        int64_t lo, hi;
        if ((p = find_index(c, ix, nix, PINDEX_INTEGER)) == NULL)
            return false;
        *est = pindex_other_numbers(p).n;
        if (int_interval(c, &lo, &hi))
            pindex_range(p, lo, hi, sum_fn, est);
        return true;
    }
    case C_FILTER: {
        int how;
        bool ok;
        *est = est_filter(c->u.sub, ix, nix, &how, &ok);
        return ok;
    }
    default:
        return false;
    }
}

/* Sum over a list whose every condition is indexed; false otherwise. */
static bool est_union(const struct clist *l, struct pindex *const *ix, size_t nix, uint64_t *est)
{
    *est = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        uint64_t e;
        if (!est_cond(&l->v[i], ix, nix, &e))
            return false;
        *est += e;
    }
    return true;
}

/* The best way to enumerate f: *how = i >= 0 for must[i], -1 for the should union, -2 for the
 * min_should union; *ok = false when there is none. Returns its estimate. */
static uint64_t est_filter(const struct filter *f, struct pindex *const *ix, size_t nix, int *how,
                           bool *ok)
{
    uint64_t best = UINT64_MAX, e;
    *ok = false;
    for (uint32_t i = 0; i < f->must.n; i++) {
        if (est_cond(&f->must.v[i], ix, nix, &e) && (!*ok || e < best)) {
            best = e;
            *how = (int)i;
            *ok = true;
        }
    }
    if (f->should.n > 0 && est_union(&f->should, ix, nix, &e) && (!*ok || e < best)) {
        best = e;
        *how = -1;
        *ok = true;
    }
    if (f->has_min && f->min_count > 0 && est_union(&f->min_should, ix, nix, &e) &&
        (!*ok || e < best)) {
        best = e;
        *how = -2;
        *ok = true;
    }
    return best;
}

uint64_t filter_estimate(const struct filter *f, struct pindex *const *ix, size_t nix,
                         uint64_t total, bool *exact_ok)
{
    int how;
    bool ok;
    uint64_t e = est_filter(f, ix, nix, &how, &ok);
    *exact_ok = ok;
    if (!ok || e > total)
        return total;
    return e;
}

/* A growable array of slots, with duplicates until the end. */
struct slots {
    uint32_t *v;
    size_t n, cap;
    int rc;
};

static bool add_fn(void *ctx, struct pindex_list l)
{
    struct slots *s = ctx;
    if (l.n > s->cap - s->n) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap - s->n < l.n)
            cap *= 2;
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL) {
            s->rc = DV_ENOMEM;
            return true;
        }
        s->v = v;
        s->cap = cap;
    }
    if (l.n > 0)
        memcpy(s->v + s->n, l.slots, l.n * sizeof *l.slots);
    s->n += l.n;
    return false;
}

static void collect_filter(const struct filter *f, struct pindex *const *ix, size_t nix,
                           struct slots *s);

static void collect_cond(const struct cond *c, struct pindex *const *ix, size_t nix,
                         struct slots *s)
{
    const struct pindex *p;
    switch (c->kind) {
    case C_VALUE:
        p = find_index(c, ix, nix, c->vt == V_STR ? PINDEX_KEYWORD : PINDEX_INTEGER);
        add_fn(s, c->vt == V_STR ? pindex_get_str(p, c->u.val.s, c->u.val.n)
                                 : pindex_get_int(p, c->u.val.i));
        break;
    case C_ANY:
        p = find_index(c, ix, nix, c->vt == V_STR ? PINDEX_KEYWORD : PINDEX_INTEGER);
        for (uint32_t i = 0; p != NULL && i < c->u.set.n && s->rc == DV_OK; i++)
            add_fn(s, c->vt == V_STR ? pindex_get_str(p, c->u.set.strs[i].s, c->u.set.strs[i].n)
                                     : pindex_get_int(p, c->u.set.ints[i]));
        break;
    case C_RANGE: {
        int64_t lo, hi;
        p = find_index(c, ix, nix, PINDEX_INTEGER);
        add_fn(s, pindex_other_numbers(p));
        if (s->rc == DV_OK && int_interval(c, &lo, &hi))
            pindex_range(p, lo, hi, add_fn, s);
        break;
    }
    case C_FILTER:
        collect_filter(c->u.sub, ix, nix, s);
        break;
    default:
        break;
    }
}

/* Only called on filters est_filter found a way for. */
static void collect_filter(const struct filter *f, struct pindex *const *ix, size_t nix,
                           struct slots *s)
{
    int how = 0;
    bool ok;
    est_filter(f, ix, nix, &how, &ok);
    if (how >= 0) {
        collect_cond(&f->must.v[how], ix, nix, s);
        return;
    }
    const struct clist *l = how == -1 ? &f->should : &f->min_should;
    for (uint32_t i = 0; i < l->n && s->rc == DV_OK; i++)
        collect_cond(&l->v[i], ix, nix, s);
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int filter_candidates(const struct filter *f, struct pindex *const *ix, size_t nix,
                      uint32_t **slots, size_t *n)
{
    int how;
    bool ok;
    est_filter(f, ix, nix, &how, &ok);
    if (!ok)
        return DV_EUNSUPPORTED;
    struct slots s = {NULL, 0, 0, DV_OK};
    collect_filter(f, ix, nix, &s);
    if (s.rc != DV_OK) {
        free(s.v);
        return s.rc;
    }
    /* Posting lists are sorted: one list needs no sort, several are merged by sorting. */
    bool sorted = true;
    for (size_t i = 1; i < s.n && sorted; i++)
        sorted = s.v[i - 1] < s.v[i];
    if (!sorted)
        qsort(s.v, s.n, sizeof *s.v, u32_cmp);
    size_t m = 0;
    for (size_t i = 0; i < s.n; i++)
        if (m == 0 || s.v[m - 1] != s.v[i])
            s.v[m++] = s.v[i];
    if (m == 0) {
        free(s.v);
        s.v = NULL;
    }
    *slots = s.v;
    *n = m;
    return DV_OK;
}

bool filter_index_exact(const struct filter *f, struct pindex *const *ix, size_t nix)
{
    if (f->must.n != 1 || f->should.n != 0 || f->must_not.n != 0 || f->has_min)
        return false;
    const struct cond *c = &f->must.v[0];
    if (c->kind != C_VALUE && c->kind != C_ANY)
        return false;
    if (c->vt != V_STR && c->vt != V_INT)
        return false;
    return find_index(c, ix, nix, c->vt == V_STR ? PINDEX_KEYWORD : PINDEX_INTEGER) != NULL;
}
