/* filter_plan.c - filter planning: estimates and candidate slots from payload indexes, and
 * binding full-text conditions to text indexes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "filter_int.h"
#include "pindex.h"
#include "pid.h"

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

/* Every string of a match value/any is a UUID (so a uuid index holds all its matches). */
static bool all_uuids(const struct cond *c)
{
    struct pid id;
    if (c->kind == C_VALUE)
        return pid_parse_uuid(c->u.val.s, c->u.val.n, &id) == DV_OK;
    for (uint32_t i = 0; i < c->u.set.n; i++)
        if (pid_parse_uuid(c->u.set.strs[i].s, c->u.set.strs[i].n, &id) != DV_OK)
            return false;
    return true;
}

/* The index serving a field condition, or NULL. */
static const struct pindex *serving(const struct cond *c, struct pindex *const *ix, size_t nix)
{
    const struct pindex *p;
    switch (c->kind) {
    case C_VALUE:
    case C_ANY:
        if (c->vt == V_STR) {
            if ((p = find_index(c, ix, nix, PINDEX_KEYWORD)) != NULL)
                return p;
            p = find_index(c, ix, nix, PINDEX_UUID);
            return p != NULL && all_uuids(c) ? p : NULL;
        }
        if (c->vt == V_BOOL)
            return find_index(c, ix, nix, PINDEX_BOOL);
        p = find_index(c, ix, nix, PINDEX_INTEGER);
        return p != NULL && pindex_params_of(p)->lookup ? p : NULL;
    case C_RANGE:
        p = find_index(c, ix, nix, PINDEX_INTEGER);
        if (p != NULL && pindex_params_of(p)->range)
            return p;
        return find_index(c, ix, nix, PINDEX_FLOAT);
    case C_DTRANGE:
        return find_index(c, ix, nix, PINDEX_DATETIME);
    case C_TEXT:
    case C_PHRASE:
        /* Only a bound condition has the token semantics the index answers. */
        return c->u.text.bound ? find_index(c, ix, nix, PINDEX_TEXT) : NULL;
    case C_GEO_RADIUS:
    case C_GEO_BOX:
    case C_GEO_POLY:
        return find_index(c, ix, nix, PINDEX_GEO);
    default:
        return NULL;
    }
}

/* The slots of string s in a keyword index, or of the UUID s in a uuid index. */
static struct pindex_list get_str(const struct pindex *p, const char *s, size_t n)
{
    if (pindex_kind_of(p) != PINDEX_UUID)
        return pindex_get_str(p, s, n);
    struct pid id;
    uint8_t raw[16];
    if (pid_parse_uuid(s, n, &id) != DV_OK)
        return pindex_get_str(p, "", 0); /* empty */
    pid_uuid_bytes(&id, raw);
    return pindex_get_str(p, (const char *)raw, 16);
}

/* The key interval of a float index holding every number in the range: bounds rounded to
 * doubles the way values are, inclusive (so a superset). */
static void float_interval(const struct cond *c, int64_t *lo, int64_t *hi)
{
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    for (int b = 0; b < 4; b++) {
        if (!(c->u.range.has & (1u << b)))
            continue;
        const struct num *x = &c->u.range.b[b];
        double d = x->k == NUM_F64 ? x->v.f : x->k == NUM_I64 ? (double)x->v.i : (double)x->v.u;
        int64_t k = pindex_float_key(d);
        if ((b == B_GT || b == B_GTE) && k > *lo)
            *lo = k;
        if ((b == B_LT || b == B_LTE) && k < *hi)
            *hi = k;
    }
}

static void dt_interval(const struct cond *c, int64_t *lo, int64_t *hi)
{
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    const int64_t *b = c->u.dt.b;
    uint8_t has = c->u.dt.has;
    if (has & 1u << B_GT && b[B_GT] < INT64_MAX && b[B_GT] + 1 > *lo)
        *lo = b[B_GT] + 1;
    if (has & 1u << B_GTE && b[B_GTE] > *lo)
        *lo = b[B_GTE];
    if (has & 1u << B_LT && b[B_LT] > INT64_MIN && b[B_LT] - 1 < *hi)
        *hi = b[B_LT] - 1;
    if (has & 1u << B_LTE && b[B_LTE] < *hi)
        *hi = b[B_LTE];
}

struct cell_ctx {
    const struct pindex *p;
    pindex_list_fn fn;
    void *ctx;
};

static bool cell_fn(void *ctx, int64_t cell)
{
    struct cell_ctx *cc = ctx;
    return cc->fn(cc->ctx, pindex_get_int(cc->p, cell));
}

/* The largest number of grid cells a geo condition's candidates read. */
#define GEO_MAX_CELLS 64

/* Calls fn with the posting lists whose union is a superset of the slots matching c (not a
 * text condition), from p = serving(c). */
static void cond_lists(const struct cond *c, const struct pindex *p, pindex_list_fn fn, void *ctx)
{
    int64_t lo, hi;
    switch (c->kind) {
    case C_VALUE:
        if (c->vt == V_STR)
            fn(ctx, get_str(p, c->u.val.s, c->u.val.n));
        else
            fn(ctx, pindex_get_int(p, c->vt == V_BOOL ? (int64_t)c->u.val.b : c->u.val.i));
        break;
    case C_ANY:
        for (uint32_t i = 0; i < c->u.set.n; i++)
            if (fn(ctx, c->vt == V_STR ? get_str(p, c->u.set.strs[i].s, c->u.set.strs[i].n)
                                       : pindex_get_int(p, c->u.set.ints[i])))
                break;
        break;
    case C_RANGE:
        if (pindex_kind_of(p) == PINDEX_FLOAT) {
            float_interval(c, &lo, &hi);
            pindex_range(p, lo, hi, fn, ctx);
            break;
        }
        if (fn(ctx, pindex_other_numbers(p)))
            break;
        if (int_interval(c, &lo, &hi))
            pindex_range(p, lo, hi, fn, ctx);
        break;
    case C_DTRANGE:
        dt_interval(c, &lo, &hi);
        pindex_range(p, lo, hi, fn, ctx);
        break;
    case C_GEO_RADIUS:
    case C_GEO_BOX:
    case C_GEO_POLY: {
        struct cell_ctx cc = {p, fn, ctx};
        geo_cover(&c->u.geo.box, GEO_MAX_CELLS, cell_fn, &cc);
        break;
    }
    default:
        break;
    }
}

/* The posting list of query token k of a bound text condition in text index p. */
static struct pindex_list token_list(const struct cond *c, const struct pindex *p, uint32_t k)
{
    const struct ftext_opts *o = &pindex_params_of(p)->tok;
    const struct strref *t = &c->u.text.toks[k];
    size_t n = t->n;
    if (o->tokenizer == FTEXT_PREFIX && o->max_len)
        n = ftext_prefix_bytes(t->s, n, o->max_len); /* the index holds prefixes up to it */
    char small[256];
    char *f = n <= sizeof small ? small : malloc(n);
    if (f == NULL)
        return (struct pindex_list){NULL, SIZE_MAX}; /* out of memory: see text_est */
    ftext_fold(o, t->s, n, f);
    struct pindex_list l = pindex_get_str(p, f, n);
    if (f != small)
        free(f);
    return l;
}

/* Upper bound of the slots an indexed condition enumerates; false when no index serves it. */
static bool est_cond(const struct cond *c, struct pindex *const *ix, size_t nix, uint64_t *est)
{
    const struct pindex *p;
    if (c->kind == C_FILTER) {
        int how;
        bool ok;
        *est = est_filter(c->u.sub, ix, nix, &how, &ok);
        return ok;
    }
    if (c->kind == C_ANY && c->u.set.n == 0 && (c->vt == V_STR || c->vt == V_INT)) {
        *est = 0; /* matches nothing */
        return true;
    }
    if ((p = serving(c, ix, nix)) == NULL)
        return false;
    *est = 0;
    if (c->kind == C_TEXT || c->kind == C_PHRASE) {
        /* The smallest token list bounds the intersection. */
        for (uint32_t k = 0; k < c->u.text.ntok; k++) {
            struct pindex_list l = token_list(c, p, k);
            if (l.slots == NULL)
                return false;
            if (k == 0 || l.n < *est)
                *est = l.n;
        }
        return true;
    }
    cond_lists(c, p, sum_fn, est);
    return true;
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

const struct pid *filter_must_ids(const struct filter *f, size_t *n)
{
    const struct pid *best = NULL;
    *n = 0;
    for (uint32_t i = 0; f != NULL && i < f->must.n; i++) {
        const struct cond *c = &f->must.v[i];
        if (c->kind == C_HASID && (best == NULL || c->u.ids.n < *n)) {
            best = c->u.ids.ids;
            *n = c->u.ids.n;
        }
    }
    return best;
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

static bool in_list(struct pindex_list l, uint32_t x)
{
    size_t lo = 0, hi = l.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l.slots[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l.n && l.slots[lo] == x;
}

/* A bound text condition: the slots in every query token's list. */
static void collect_text(const struct cond *c, const struct pindex *p, struct slots *s)
{
    uint32_t nt = c->u.text.ntok, best = 0;
    if (nt == 0)
        return;
    struct pindex_list small = token_list(c, p, 0);
    for (uint32_t k = 1; k < nt && small.slots != NULL; k++) {
        struct pindex_list l = token_list(c, p, k);
        if (l.slots == NULL || l.n < small.n) {
            small = l;
            best = k;
        }
    }
    if (small.slots == NULL) {
        s->rc = DV_ENOMEM;
        return;
    }
    size_t base = s->n;
    if (add_fn(s, small))
        return;
    size_t m = base;
    for (size_t i = base; i < s->n; i++) {
        bool all = true;
        for (uint32_t k = 0; k < nt && all; k++) {
            if (k == best)
                continue;
            struct pindex_list l = token_list(c, p, k);
            if (l.slots == NULL) {
                s->rc = DV_ENOMEM;
                return;
            }
            all = in_list(l, s->v[i]);
        }
        if (all)
            s->v[m++] = s->v[i];
    }
    s->n = m;
}

static void collect_cond(const struct cond *c, struct pindex *const *ix, size_t nix,
                         struct slots *s)
{
    const struct pindex *p;
    if (c->kind == C_FILTER) {
        collect_filter(c->u.sub, ix, nix, s);
        return;
    }
    if ((p = serving(c, ix, nix)) == NULL)
        return; /* an empty any */
    if (c->kind == C_TEXT || c->kind == C_PHRASE)
        collect_text(c, p, s);
    else
        cond_lists(c, p, add_fn, s);
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
    const struct pindex *p = serving(c, ix, nix);
    if (p == NULL)
        return false;
    /* A uuid index matches UUIDs, the filter compares strings: "ABC.." is not "abc..". */
    return pindex_kind_of(p) != PINDEX_UUID;
}

/* ---- Binding full-text conditions to text indexes ---- */

static int bind_filter(struct filter *f, struct pindex *const *ix, size_t nix, const char *prefix);

static int bind_cond(struct cond *c, struct pindex *const *ix, size_t nix, const char *prefix)
{
    if (c->kind == C_FILTER)
        return bind_filter(c->u.sub, ix, nix, prefix);
    if (c->kind == C_NESTED) {
        size_t pn = strlen(prefix), kn = c->path.textlen;
        char *np = malloc(pn + kn + 4);
        if (np == NULL)
            return DV_ENOMEM;
        memcpy(np, prefix, pn);
        memcpy(np + pn, c->path.text, kn);
        memcpy(np + pn + kn, "[].", 4);
        int rc = bind_filter(c->u.sub, ix, nix, np);
        free(np);
        return rc;
    }
    if (c->kind != C_TEXT && c->kind != C_PHRASE)
        return DV_OK;
    const struct pindex *p = NULL;
    size_t pn = strlen(prefix);
    for (size_t i = 0; i < nix && p == NULL; i++) {
        const char *k = pindex_key(ix[i]);
        if (pindex_kind_of(ix[i]) == PINDEX_TEXT && strncmp(k, prefix, pn) == 0 &&
            strcmp(k + pn, c->path.text) == 0)
            p = ix[i];
    }
    free(c->u.text.toks);
    c->u.text.toks = NULL;
    c->u.text.ntok = 0;
    c->u.text.bound = false;
    if (p == NULL)
        return DV_OK;
    struct ftext_opts o = pindex_params_of(p)->tok;
    struct ftext_iter it;
    const char *t;
    size_t tn;
    uint32_t n = 0;
    ftext_init(&it, &o, c->u.text.s, c->u.text.n);
    while (ftext_next(&it, &t, &tn))
        n++;
    if (n > 0 && (c->u.text.toks = malloc(n * sizeof *c->u.text.toks)) == NULL)
        return DV_ENOMEM;
    ftext_init(&it, &o, c->u.text.s, c->u.text.n);
    for (uint32_t k = 0; k < n && ftext_next(&it, &t, &tn); k++)
        c->u.text.toks[k] = (struct strref){t, (uint32_t)tn};
    c->u.text.ntok = n;
    c->u.text.opts = o;
    c->u.text.bound = true;
    return DV_OK;
}

static int bind_filter(struct filter *f, struct pindex *const *ix, size_t nix, const char *prefix)
{
    struct clist *ls[4] = {&f->must, &f->should, &f->must_not, &f->min_should};
    for (int l = 0; l < 4; l++)
        for (uint32_t i = 0; i < ls[l]->n; i++) {
            int rc = bind_cond(&ls[l]->v[i], ix, nix, prefix);
            if (rc != DV_OK)
                return rc;
        }
    return DV_OK;
}

int filter_bind(struct filter *f, struct pindex *const *ix, size_t nix)
{
    return bind_filter(f, ix, nix, "");
}
