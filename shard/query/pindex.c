/* pindex.c - payload index on one key: an open-addressing hash of values to sorted posting
 * lists, and for integers, floats and datetimes an ordered view of the distinct values for
 * range enumeration. */
#include "pindex.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "filter.h"
#include "hash.h"
#include "mpk.h"
#include "dtime.h"
#include "geo.h"
#include "pindex_int.h"

static const uint32_t no_slots[1];

static struct pindex_list plist(const struct posting *p)
{
    struct pindex_list l = {p->n ? p->v : no_slots, p->n};
    return l;
}

/* ---- Posting lists ---- */

static size_t lower_u32(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int posting_add(struct pindex *ix, struct posting *p, uint32_t slot)
{
    size_t at = p->n;
    if (p->n > 0 && p->v[p->n - 1] >= slot) {
        at = lower_u32(p->v, p->n, slot);
        if (p->v[at] == slot)
            return DV_OK;
    }
    if (p->n == p->cap) {
        if (p->cap >= UINT32_MAX / 2)
            return DV_ENOMEM;
        uint32_t cap = p->cap ? p->cap * 2 : 2;
        uint32_t *v = realloc(p->v, (size_t)cap * sizeof *v);
        if (v == NULL)
            return DV_ENOMEM;
        ix->heap += (size_t)(cap - p->cap) * sizeof *v;
        p->v = v;
        p->cap = cap;
    }
    memmove(p->v + at + 1, p->v + at, (p->n - at) * sizeof *p->v);
    p->v[at] = slot;
    p->n++;
    return DV_OK;
}

static void posting_del(struct pindex *ix, struct posting *p, uint32_t slot)
{
    size_t at = lower_u32(p->v, p->n, slot);
    if (at == p->n || p->v[at] != slot)
        return;
    memmove(p->v + at, p->v + at + 1, (p->n - at - 1) * sizeof *p->v);
    p->n--;
    if (p->cap > 8 && p->n < p->cap / 4) {
        uint32_t cap = p->cap / 2;
        uint32_t *v = realloc(p->v, (size_t)cap * sizeof *v);
        if (v != NULL) {
            ix->heap -= (size_t)(p->cap - cap) * sizeof *v;
            p->v = v;
            p->cap = cap;
        }
    }
}

static void posting_free(struct pindex *ix, struct posting *p)
{
    ix->heap -= (size_t)p->cap * sizeof *p->v;
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* ---- Hash table ---- */

static uint64_t hash_int(int64_t v)
{
    return hash64_u64((uint64_t)v);
}

static uint64_t hash_str(const char *s, size_t n)
{
    return hash64_bytes(s, n, 0x9e3779b97f4a7c15ULL);
}

static bool ent_is(const struct pindex *ix, const struct ent *e, uint64_t h, const char *s,
                   size_t n, int64_t iv)
{
    if (e->h != h)
        return false;
    if (pindex_int_keyed(ix))
        return e->iv == iv;
    return e->slen == n && memcmp(e->s, s, n) == 0;
}

/* The entry for a value, or NULL. */
static struct ent *find(const struct pindex *ix, uint64_t h, const char *s, size_t n, int64_t iv)
{
    if (ix->cap == 0)
        return NULL;
    size_t mask = ix->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct ent *e = &ix->tab[i];
        if (!e->used)
            return NULL;
        if (ent_is(ix, e, h, s, n, iv))
            return e;
    }
}

/* Makes room for one more entry (load at most 1/2). */
static int reserve_one(struct pindex *ix)
{
    if ((ix->count + 1) * 2 <= ix->cap)
        return DV_OK;
    size_t cap = ix->cap ? ix->cap * 2 : 16;
    struct ent *tab = calloc(cap, sizeof *tab);
    if (tab == NULL)
        return DV_ENOMEM;
    for (size_t i = 0; i < ix->cap; i++) {
        if (!ix->tab[i].used)
            continue;
        size_t j = ix->tab[i].h & (cap - 1);
        while (tab[j].used)
            j = (j + 1) & (cap - 1);
        tab[j] = ix->tab[i];
    }
    free(ix->tab);
    ix->tab = tab;
    ix->cap = cap;
    return DV_OK;
}

/* Places a new entry (room reserved, value known absent). */
static struct ent *place(struct pindex *ix, const struct ent *e)
{
    size_t mask = ix->cap - 1, i = e->h & mask;
    while (ix->tab[i].used)
        i = (i + 1) & mask;
    ix->tab[i] = *e;
    ix->tab[i].used = 1;
    ix->count++;
    return &ix->tab[i];
}

/* Removes entry e by shifting later entries of its probe run back (no tombstones). */
static void unplace(struct pindex *ix, struct ent *e)
{
    size_t mask = ix->cap - 1, i = (size_t)(e - ix->tab), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!ix->tab[j].used)
            break;
        size_t home = ix->tab[j].h & mask;
        /* Entry j may move to i if its home is not in the cyclic interval (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            ix->tab[i] = ix->tab[j];
            i = j;
        }
    }
    memset(&ix->tab[i], 0, sizeof ix->tab[i]);
    ix->count--;
}

/* ---- Ordered integer values ---- */

size_t pindex_lower_i64(const int64_t *v, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool in_sorted(const struct pindex *ix, int64_t v)
{
    size_t at = pindex_lower_i64(ix->sorted, ix->nsorted, v);
    return at < ix->nsorted && ix->sorted[at] == v;
}

static bool int_live(const struct pindex *ix, int64_t v)
{
    return find(ix, hash_int(v), NULL, 0, v) != NULL;
}

/* Drops the stale values of `sorted` in place. */
static void compact_sorted(struct pindex *ix)
{
    size_t m = 0;
    for (size_t i = 0; i < ix->nsorted; i++)
        if (int_live(ix, ix->sorted[i]))
            ix->sorted[m++] = ix->sorted[i];
    ix->nsorted = m;
    ix->stale = 0;
}

static int i64_qcmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Merges `recent` into `sorted`. On DV_ENOMEM nothing changes (still correct, just slower). */
static int merge_recent(struct pindex *ix)
{
    compact_sorted(ix);
    size_t need = ix->nsorted + ix->nrecent;
    if (need > ix->capsorted) {
        size_t cap = ix->capsorted ? ix->capsorted : 64;
        while (cap < need)
            cap *= 2;
        int64_t *v = realloc(ix->sorted, cap * sizeof *v);
        if (v == NULL)
            return DV_ENOMEM;
        ix->sorted = v;
        ix->capsorted = cap;
    }
    qsort(ix->recent, ix->nrecent, sizeof *ix->recent, i64_qcmp);
    /* Merge from the back. */
    size_t i = ix->nsorted, j = ix->nrecent, k = need;
    while (j > 0) {
        if (i > 0 && ix->sorted[i - 1] > ix->recent[j - 1])
            ix->sorted[--k] = ix->sorted[--i];
        else
            ix->sorted[--k] = ix->recent[--j];
    }
    ix->nsorted = need;
    ix->nrecent = 0;
    return DV_OK;
}

static size_t recent_limit(const struct pindex *ix)
{
    size_t lim = 64;
    while (lim * lim < ix->nsorted)
        lim *= 2;
    return lim;
}

static int reserve_recent(struct pindex *ix)
{
    if (ix->nrecent < ix->caprecent)
        return DV_OK;
    size_t cap = ix->caprecent ? ix->caprecent * 2 : 64;
    int64_t *v = realloc(ix->recent, cap * sizeof *v);
    if (v == NULL)
        return DV_ENOMEM;
    ix->recent = v;
    ix->caprecent = cap;
    return DV_OK;
}

/* A value left the table. */
static void int_gone(struct pindex *ix, int64_t v)
{
    for (size_t i = 0; i < ix->nrecent; i++) {
        if (ix->recent[i] == v) {
            ix->recent[i] = ix->recent[--ix->nrecent];
            return;
        }
    }
    ix->stale++;
    if (ix->stale > 64 && ix->stale * 2 > ix->nsorted)
        compact_sorted(ix);
}

/* ---- Add and remove ---- */

static int add_value(struct pindex *ix, uint32_t slot, const char *s, size_t n, int64_t iv)
{
    bool isint = pindex_int_keyed(ix), ord = pindex_ordered(ix);
    uint64_t h = isint ? hash_int(iv) : hash_str(s, n);
    struct ent *e = find(ix, h, s, n, iv);
    if (e != NULL)
        return posting_add(ix, &e->pl, slot);
    bool was_sorted = ord && in_sorted(ix, iv);
    int rc = reserve_one(ix);
    if (rc == DV_OK && ord && !was_sorted)
        rc = reserve_recent(ix);
    if (rc != DV_OK)
        return rc;
    struct ent ne = {.h = h, .iv = iv};
    if ((rc = posting_add(ix, &ne.pl, slot)) != DV_OK)
        return rc;
    if (!isint) {
        if ((ne.s = malloc(n ? n : 1)) == NULL) {
            posting_free(ix, &ne.pl);
            return DV_ENOMEM;
        }
        memcpy(ne.s, s, n);
        ne.slen = (uint32_t)n;
        ix->heap += n;
    }
    place(ix, &ne);
    if (ord) {
        if (was_sorted) {
            ix->stale--;
        } else {
            ix->recent[ix->nrecent++] = iv;
            if (ix->nrecent > recent_limit(ix))
                merge_recent(ix); /* failure leaves a longer `recent`, still correct */
        }
    }
    return DV_OK;
}

static void remove_value(struct pindex *ix, uint32_t slot, const char *s, size_t n, int64_t iv)
{
    bool isint = pindex_int_keyed(ix);
    uint64_t h = isint ? hash_int(iv) : hash_str(s, n);
    struct ent *e = find(ix, h, s, n, iv);
    if (e == NULL)
        return;
    posting_del(ix, &e->pl, slot);
    if (e->pl.n > 0)
        return;
    posting_free(ix, &e->pl);
    if (!isint) {
        ix->heap -= e->slen;
        free(e->s);
    }
    unplace(ix, e);
    if (pindex_ordered(ix))
        int_gone(ix, iv);
}

struct op {
    struct pindex *ix;
    uint32_t slot;
    bool remove;
    bool hit; /* some value was indexed */
    int rc;
};

static void key_op(struct op *o, const char *s, size_t n, int64_t iv)
{
    if (o->rc != DV_OK)
        return;
    if (o->remove) {
        remove_value(o->ix, o->slot, s, n, iv);
    } else {
        o->rc = add_value(o->ix, o->slot, s, n, iv);
        o->hit = true;
    }
}

/* The tokens of a string in a text index (folded; prefixes too for the prefix tokenizer).
 * Folding uses the index's scratch buffer, which adding grows to the longest token seen, so
 * removing the same payload never allocates. */
static void text_op(struct op *o, const char *s, size_t n)
{
    struct pindex *ix = o->ix;
    const struct ftext_opts *t = &ix->prm.tok;
    struct ftext_iter it;
    const char *tok;
    size_t tn;
    ftext_init(&it, t, s, n);
    while (o->rc == DV_OK && ftext_next(&it, &tok, &tn)) {
        if (tn > ix->capscratch) {
            if (o->remove)
                continue; /* longer than any token added: not indexed */
            char *v = realloc(ix->scratch, tn);
            if (v == NULL) {
                o->rc = DV_ENOMEM;
                return;
            }
            ix->scratch = v;
            ix->capscratch = tn;
        }
        char *f = ix->scratch;
        ftext_fold(t, tok, tn, f);
        if (t->tokenizer != FTEXT_PREFIX) {
            key_op(o, f, tn, 0);
        } else {
            size_t chars = ftext_chars(f, tn), lo = t->min_len ? t->min_len : 1;
            size_t hi = t->max_len && t->max_len < chars ? t->max_len : chars;
            for (size_t c = lo; c <= hi; c++)
                key_op(o, f, ftext_prefix_bytes(f, tn, c), 0);
        }
    }
}

/* One scalar (a value, or an element of an array value). */
static void op_scalar(struct op *o, struct mpk r)
{
    struct pindex *ix = o->ix;
    enum mpk_type t = mpk_peek(&r);
    const char *s;
    uint32_t n;
    int64_t v;
    double d;
    bool b;
    struct pid id;
    struct geo_point pt;
    switch (ix->kind) {
    case PINDEX_KEYWORD:
        if (t == MPK_STR && mpk_str(&r, &s, &n) == DV_OK)
            key_op(o, s, n, 0);
        return;
    case PINDEX_TEXT:
        if (t == MPK_STR && mpk_str(&r, &s, &n) == DV_OK)
            text_op(o, s, n);
        return;
    case PINDEX_UUID:
        if (t == MPK_STR && mpk_str(&r, &s, &n) == DV_OK && pid_parse_uuid(s, n, &id) == DV_OK) {
            uint8_t raw[16];
            pid_uuid_bytes(&id, raw);
            key_op(o, (const char *)raw, 16, 0);
        }
        return;
    case PINDEX_DATETIME:
        if (t == MPK_STR && mpk_str(&r, &s, &n) == DV_OK && dtime_parse(s, n, &v))
            key_op(o, NULL, 0, v);
        return;
    case PINDEX_BOOL:
        if (t == MPK_BOOL && mpk_bool(&r, &b) == DV_OK)
            key_op(o, NULL, 0, b);
        return;
    case PINDEX_FLOAT:
        if ((t == MPK_UINT || t == MPK_INT || t == MPK_FLOAT) && mpk_f64(&r, &d) == DV_OK &&
            !isnan(d))
            key_op(o, NULL, 0, pindex_float_key(d));
        return;
    case PINDEX_GEO:
        if (t == MPK_MAP && geo_read_point(r, &pt))
            for (int l = 0; l < GEO_LEVELS; l++)
                key_op(o, NULL, 0, geo_cell(l, pt));
        return;
    case PINDEX_INTEGER:
        break;
    }
    if ((t == MPK_UINT || t == MPK_INT) && mpk_i64(&r, &v) == DV_OK) {
        key_op(o, NULL, 0, v);
    } else if (t == MPK_UINT || t == MPK_FLOAT) {
        if (o->remove) {
            posting_del(ix, &ix->other, o->slot);
        } else {
            o->rc = posting_add(ix, &ix->other, o->slot);
            o->hit = true;
        }
    }
}

static bool op_fn(void *ctx, const struct mpk *val)
{
    struct op *o = ctx;
    struct mpk r = *val;
    uint32_t n;
    if (mpk_peek(&r) != MPK_ARRAY) {
        op_scalar(o, r);
        return o->rc != DV_OK;
    }
    if (mpk_array(&r, &n) != DV_OK)
        return false;
    for (uint32_t i = 0; i < n && o->rc == DV_OK; i++) {
        op_scalar(o, r);
        if (mpk_skip(&r) != DV_OK)
            break;
    }
    return o->rc != DV_OK;
}

int pindex_add(struct pindex *ix, uint32_t slot, const void *payload, size_t len)
{
    struct op o = {ix, slot, false, false, DV_OK};
    filter_path_visit(&ix->path, payload, len, op_fn, &o);
    if (o.hit && o.rc == DV_OK)
        o.rc = posting_add(ix, &ix->all, slot);
    return o.rc;
}

void pindex_remove(struct pindex *ix, uint32_t slot, const void *payload, size_t len)
{
    struct op o = {ix, slot, true, false, DV_OK};
    filter_path_visit(&ix->path, payload, len, op_fn, &o);
    posting_del(ix, &ix->all, slot);
}

/* ---- Life cycle and lookups ---- */

int pindex_create(const char *key, enum pindex_kind kind, struct pindex **out)
{
    if ((unsigned)kind >= PINDEX_KIND_COUNT)
        return DV_EINVAL;
    struct pindex_params p = pindex_params_default(kind);
    return pindex_create_params(key, &p, out);
}

int pindex_create_params(const char *key, const struct pindex_params *p, struct pindex **out)
{
    if (key == NULL || p->kind >= PINDEX_KIND_COUNT || p->tok.tokenizer > FTEXT_MULTILINGUAL ||
        (p->tok.max_len && p->tok.min_len > p->tok.max_len))
        return DV_EINVAL;
    struct pindex *ix = calloc(1, sizeof *ix);
    if (ix == NULL)
        return DV_ENOMEM;
    ix->kind = (enum pindex_kind)p->kind;
    ix->prm = *p;
    int rc = filter_path_parse(key, strlen(key), &ix->path, NULL);
    if (rc != DV_OK) {
        free(ix);
        return rc;
    }
    ix->key = ix->path.text;
    *out = ix;
    return DV_OK;
}

void pindex_free(struct pindex *ix)
{
    if (ix == NULL)
        return;
    for (size_t i = 0; i < ix->cap; i++) {
        if (ix->tab[i].used) {
            free(ix->tab[i].pl.v);
            free(ix->tab[i].s);
        }
    }
    free(ix->tab);
    free(ix->sorted);
    free(ix->recent);
    free(ix->other.v);
    free(ix->all.v);
    free(ix->scratch);
    filter_path_free(&ix->path);
    free(ix);
}

const char *pindex_key(const struct pindex *ix)
{
    return ix->key;
}

enum pindex_kind pindex_kind_of(const struct pindex *ix)
{
    return ix->kind;
}

const struct pindex_params *pindex_params_of(const struct pindex *ix)
{
    return &ix->prm;
}

size_t pindex_points(const struct pindex *ix)
{
    return ix->all.n;
}

int64_t pindex_float_key(double d)
{
    if (d == 0)
        d = 0; /* -0.0 */
    int64_t k;
    memcpy(&k, &d, sizeof k);
    /* Negative doubles sort reversed as integers: flip their magnitude bits. */
    return k < 0 ? (int64_t)((uint64_t)k ^ 0x7fffffffffffffffULL) : k;
}

double pindex_float_of_key(int64_t k)
{
    if (k < 0)
        k = (int64_t)((uint64_t)k ^ 0x7fffffffffffffffULL);
    double d;
    memcpy(&d, &k, sizeof d);
    return d;
}

const struct ent *pindex_find_int(const struct pindex *ix, int64_t v)
{
    return find(ix, hash_int(v), NULL, 0, v);
}

size_t pindex_mem(const struct pindex *ix)
{
    return sizeof *ix + ix->path.textlen + 1 + ix->path.nseg * sizeof *ix->path.seg +
           ix->cap * sizeof *ix->tab + ix->capsorted * sizeof *ix->sorted +
           ix->caprecent * sizeof *ix->recent + ix->other.cap * sizeof *ix->other.v +
           ix->all.cap * sizeof *ix->all.v + ix->capscratch + ix->heap;
}

size_t pindex_values(const struct pindex *ix)
{
    return ix->count;
}

struct pindex_list pindex_get_str(const struct pindex *ix, const char *s, size_t n)
{
    struct pindex_list none = {no_slots, 0};
    if (pindex_int_keyed(ix))
        return none;
    const struct ent *e = find(ix, hash_str(s, n), s, n, 0);
    return e ? plist(&e->pl) : none;
}

struct pindex_list pindex_get_int(const struct pindex *ix, int64_t v)
{
    struct pindex_list none = {no_slots, 0};
    if (!pindex_int_keyed(ix))
        return none;
    const struct ent *e = find(ix, hash_int(v), NULL, 0, v);
    return e ? plist(&e->pl) : none;
}

struct pindex_list pindex_other_numbers(const struct pindex *ix)
{
    return plist(&ix->other);
}

void pindex_range(const struct pindex *ix, int64_t lo, int64_t hi, pindex_list_fn fn, void *ctx)
{
    if (!pindex_ordered(ix) || lo > hi)
        return;
    for (size_t i = pindex_lower_i64(ix->sorted, ix->nsorted, lo); i < ix->nsorted; i++) {
        int64_t v = ix->sorted[i];
        if (v > hi)
            break;
        const struct ent *e = find(ix, hash_int(v), NULL, 0, v);
        if (e != NULL && fn(ctx, plist(&e->pl)))
            return;
    }
    for (size_t i = 0; i < ix->nrecent; i++) {
        int64_t v = ix->recent[i];
        if (v < lo || v > hi)
            continue;
        const struct ent *e = find(ix, hash_int(v), NULL, 0, v);
        if (e != NULL && fn(ctx, plist(&e->pl)))
            return;
    }
}
