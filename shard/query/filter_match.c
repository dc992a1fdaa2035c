/* filter_match.c - matching compiled filters against msgpack payloads without allocating. */
#include "filter.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "dtime.h"
#include "filter_int.h"

/* ---- Numbers ---- */

bool filter_num_read(struct mpk r, struct num *out)
{
    switch (mpk_peek(&r)) {
    case MPK_UINT:
        if (mpk_u64(&r, &out->v.u) != DV_OK)
            return false;
        out->k = out->v.u > (uint64_t)INT64_MAX ? NUM_U64 : NUM_I64;
        return true;
    case MPK_INT:
        out->k = NUM_I64;
        return mpk_i64(&r, &out->v.i) == DV_OK;
    case MPK_FLOAT:
        out->k = NUM_F64;
        return mpk_f64(&r, &out->v.f) == DV_OK;
    default:
        return false;
    }
}

/* Exact comparisons of an integer with a double: -1, 0, 1, or 2 when d is NaN. */
static int cmp_i64_f64(int64_t a, double d)
{
    if (isnan(d))
        return 2;
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    int64_t t = (int64_t)d; /* truncates toward zero, in range */
    if (a != t)
        return a < t ? -1 : 1;
    double frac = d - (double)t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int cmp_u64_f64(uint64_t a, double d)
{
    if (isnan(d))
        return 2;
    if (d >= 18446744073709551616.0)
        return -1;
    if (d < 0)
        return 1;
    uint64_t t = (uint64_t)d;
    if (a != t)
        return a < t ? -1 : 1;
    double frac = d - (double)t;
    return frac > 0 ? -1 : 0;
}

static int num_cmp(const struct num *a, const struct num *b)
{
    if (a->k == NUM_F64 && b->k == NUM_F64) {
        if (isnan(a->v.f) || isnan(b->v.f))
            return 2;
        return a->v.f < b->v.f ? -1 : a->v.f > b->v.f ? 1 : 0;
    }
    if (a->k == NUM_F64) {
        int c = num_cmp(b, a);
        return c == 2 ? 2 : -c;
    }
    if (b->k == NUM_F64)
        return a->k == NUM_I64 ? cmp_i64_f64(a->v.i, b->v.f) : cmp_u64_f64(a->v.u, b->v.f);
    if (a->k != b->k)
        return a->k == NUM_U64 ? 1 : -1;
    if (a->k == NUM_U64)
        return a->v.u < b->v.u ? -1 : a->v.u > b->v.u ? 1 : 0;
    return a->v.i < b->v.i ? -1 : a->v.i > b->v.i ? 1 : 0;
}

static bool in_range(const struct cond *c, const struct num *x)
{
    uint8_t has = c->u.range.has;
    for (int b = 0; b < 4; b++) {
        if (!(has & (1u << b)))
            continue;
        int r = num_cmp(x, &c->u.range.b[b]);
        if (r == 2)
            return false;
        if ((b == B_GT && r <= 0) || (b == B_GTE && r < 0) || (b == B_LT && r >= 0) ||
            (b == B_LTE && r > 0))
            return false;
    }
    return true;
}

static bool count_ok(const struct cond *c, uint64_t n)
{
    uint8_t has = c->u.count.has;
    const uint64_t *b = c->u.count.b;
    return !((has & 1u << B_GT && !(n > b[B_GT])) || (has & 1u << B_GTE && !(n >= b[B_GTE])) ||
             (has & 1u << B_LT && !(n < b[B_LT])) || (has & 1u << B_LTE && !(n <= b[B_LTE])));
}

/* ---- Matching ---- */

int filter_strref_cmp(const void *a, const void *b)
{
    const struct strref *x = a, *y = b;
    uint32_t n = x->n < y->n ? x->n : y->n;
    int c = n ? memcmp(x->s, y->s, n) : 0;
    if (c != 0)
        return c;
    return x->n < y->n ? -1 : x->n > y->n ? 1 : 0;
}

int filter_i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int filter_pid_qcmp(const void *a, const void *b)
{
    return pid_cmp(a, b);
}

static bool set_has(const struct cond *c, struct mpk r)
{
    if (c->u.set.n == 0)
        return false;
    if (c->vt == V_STR) {
        struct strref k;
        if (mpk_str(&r, &k.s, &k.n) != DV_OK)
            return false;
        return bsearch(&k, c->u.set.strs, c->u.set.n, sizeof k, filter_strref_cmp) != NULL;
    }
    int64_t v;
    if (mpk_i64(&r, &v) != DV_OK)
        return false;
    return bsearch(&v, c->u.set.ints, c->u.set.n, sizeof v, filter_i64_cmp) != NULL;
}

static bool dt_in_range(const struct cond *c, int64_t t)
{
    uint8_t has = c->u.dt.has;
    const int64_t *b = c->u.dt.b;
    return !((has & 1u << B_GT && !(t > b[B_GT])) || (has & 1u << B_GTE && !(t >= b[B_GTE])) ||
             (has & 1u << B_LT && !(t < b[B_LT])) || (has & 1u << B_LTE && !(t <= b[B_LTE])));
}

/* Bound: does the query token k match a token of the field? */
static bool has_token(const struct cond *c, const char *s, size_t n, const struct strref *q)
{
    struct ftext_iter it;
    const char *t;
    size_t tn;
    ftext_init(&it, &c->u.text.opts, s, n);
    while (ftext_next(&it, &t, &tn))
        if (ftext_tok_match(&c->u.text.opts, t, tn, q->s, q->n))
            return true;
    return false;
}

/* Bound phrase: the query's tokens match consecutive tokens of the field, in order. */
static bool has_phrase(const struct cond *c, const char *s, size_t n)
{
    const struct ftext_opts *o = &c->u.text.opts;
    struct ftext_iter it;
    const char *t;
    size_t tn;
    ftext_init(&it, o, s, n);
    for (;;) {
        struct ftext_iter from = it;
        uint32_t k = 0;
        while (k < c->u.text.ntok && ftext_next(&from, &t, &tn) &&
               ftext_tok_match(o, t, tn, c->u.text.toks[k].s, c->u.text.toks[k].n))
            k++;
        if (k == c->u.text.ntok)
            return true;
        if (!ftext_next(&it, &t, &tn))
            return false;
    }
}

/* match text / phrase on one string: tokens with a text index (filter_bind), else Qdrant's
 * substring rule. */
static bool text_check(const struct cond *c, const char *s, size_t n)
{
    if (!c->u.text.bound)
        return c->u.text.n == 0 || (n >= c->u.text.n && memmem(s, n, c->u.text.s, c->u.text.n));
    if (c->u.text.ntok == 0)
        return false;
    if (c->kind == C_PHRASE)
        return has_phrase(c, s, n);
    for (uint32_t i = 0; i < c->u.text.ntok; i++)
        if (!has_token(c, s, n, &c->u.text.toks[i]))
            return false;
    return true;
}

static bool geo_check(const struct cond *c, struct geo_point p)
{
    if (c->kind == C_GEO_RADIUS)
        return geo_distance(c->u.geo.c, p) <= c->u.geo.radius;
    if (c->kind == C_GEO_BOX)
        return geo_in_box(&c->u.geo.box, p);
    if (!geo_in_ring(c->u.geo.pts, c->u.geo.ring_end[0], p))
        return false;
    for (uint32_t r = 1; r < c->u.geo.nring; r++) {
        uint32_t from = c->u.geo.ring_end[r - 1];
        if (geo_in_ring(c->u.geo.pts + from, c->u.geo.ring_end[r] - from, p))
            return false;
    }
    return true;
}

/* A field condition on one value that is not an array (or on one element of an array). */
static bool scalar_check(const struct cond *c, struct mpk r)
{
    switch (c->kind) {
    case C_VALUE:
        if (c->vt == V_STR) {
            const char *s;
            uint32_t n;
            return mpk_str(&r, &s, &n) == DV_OK && n == c->u.val.n && memcmp(s, c->u.val.s, n) == 0;
        } else if (c->vt == V_INT) {
            int64_t v;
            return mpk_i64(&r, &v) == DV_OK && v == c->u.val.i;
        } else {
            bool b;
            return mpk_bool(&r, &b) == DV_OK && b == c->u.val.b;
        }
    case C_ANY:
        return set_has(c, r);
    case C_EXCEPT: {
        enum mpk_type t = mpk_peek(&r);
        if (t == MPK_NIL || t == MPK_INVALID)
            return false;
        bool same = c->vt == V_STR ? t == MPK_STR : (t == MPK_UINT || t == MPK_INT);
        if (!same)
            return true;
        if (c->vt == V_INT) {
            struct mpk tmp = r;
            int64_t v;
            if (mpk_i64(&tmp, &v) != DV_OK)
                return true; /* above INT64_MAX: a number of another kind */
        }
        return !set_has(c, r);
    }
    case C_RANGE: {
        struct num x;
        return filter_num_read(r, &x) && in_range(c, &x);
    }
    case C_DTRANGE: {
        const char *s;
        uint32_t n;
        int64_t t;
        return mpk_str(&r, &s, &n) == DV_OK && dtime_parse(s, n, &t) && dt_in_range(c, t);
    }
    case C_TEXT:
    case C_PHRASE: {
        const char *s;
        uint32_t n;
        return mpk_str(&r, &s, &n) == DV_OK && text_check(c, s, n);
    }
    case C_GEO_RADIUS:
    case C_GEO_BOX:
    case C_GEO_POLY: {
        struct geo_point pt;
        return geo_read_point(r, &pt) && geo_check(c, pt);
    }
    default:
        return false;
    }
}

static bool field_fn(void *ctx, const struct mpk *val)
{
    const struct cond *c = ctx;
    struct mpk r = *val;
    uint32_t n;
    if (mpk_peek(&r) != MPK_ARRAY)
        return scalar_check(c, r);
    if (mpk_array(&r, &n) != DV_OK)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (scalar_check(c, r))
            return true;
        if (mpk_skip(&r) != DV_OK)
            return false;
    }
    return false;
}

static bool count_fn(void *ctx, const struct mpk *val)
{
    uint64_t *total = ctx;
    struct mpk r = *val;
    uint32_t n;
    enum mpk_type t = mpk_peek(&r);
    if (t == MPK_ARRAY && mpk_array(&r, &n) == DV_OK)
        *total += n;
    else if (t != MPK_NIL && t != MPK_ARRAY)
        *total += 1;
    return false;
}

/* Stops at the first value that is neither null nor []. */
static bool nonempty_fn(void *ctx, const struct mpk *val)
{
    struct mpk r = *val;
    uint32_t n;
    enum mpk_type t = mpk_peek(&r);
    if (t == MPK_NIL)
        return false;
    if (t == MPK_ARRAY)
        return mpk_array(&r, &n) == DV_OK && n > 0;
    return true;
}

static bool null_fn(void *ctx, const struct mpk *val)
{
    return mpk_peek(val) == MPK_NIL;
}

static bool eval(const struct filter *f, const struct filter_point *pt);

struct nested_ctx {
    const struct filter *sub;
    const struct filter_point *pt;
};

/* One element of a nested array: the sub-filter sees it as the whole payload. */
static bool nested_elem(const struct nested_ctx *nc, struct mpk r)
{
    const uint8_t *start;
    size_t len;
    if (mpk_peek(&r) != MPK_MAP || mpk_span(&r, &start, &len) != DV_OK)
        return false;
    struct filter_point e = *nc->pt;
    e.payload = start;
    e.len = len;
    return eval(nc->sub, &e);
}

static bool nested_fn(void *ctx, const struct mpk *val)
{
    struct mpk r = *val;
    uint32_t n;
    if (mpk_peek(&r) != MPK_ARRAY)
        return nested_elem(ctx, r);
    if (mpk_array(&r, &n) != DV_OK)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (nested_elem(ctx, r))
            return true;
        if (mpk_skip(&r) != DV_OK)
            return false;
    }
    return false;
}

static bool cond_match(const struct cond *c, const struct filter_point *pt)
{
    const void *p = pt->payload;
    size_t len = pt->len;
    switch (c->kind) {
    case C_VALUE:
    case C_ANY:
    case C_EXCEPT:
    case C_RANGE:
    case C_DTRANGE:
    case C_TEXT:
    case C_PHRASE:
    case C_GEO_RADIUS:
    case C_GEO_BOX:
    case C_GEO_POLY:
        return filter_path_visit(&c->path, p, len, field_fn, (void *)c);
    case C_COUNT: {
        uint64_t total = 0;
        filter_path_visit(&c->path, p, len, count_fn, &total);
        return count_ok(c, total);
    }
    case C_EMPTY:
        return !filter_path_visit(&c->path, p, len, nonempty_fn, NULL);
    case C_NULL:
        return filter_path_visit(&c->path, p, len, null_fn, NULL);
    case C_HASID:
        return pt->id != NULL && c->u.ids.n > 0 &&
               bsearch(pt->id, c->u.ids.ids, c->u.ids.n, sizeof *pt->id, filter_pid_qcmp) != NULL;
    case C_FILTER:
        return eval(c->u.sub, pt);
    case C_NESTED: {
        struct nested_ctx nc = {c->u.sub, pt};
        return filter_path_visit(&c->path, p, len, nested_fn, &nc);
    }
    case C_HASVEC:
        return pt->has_vector != NULL && pt->has_vector(pt->arg, c->u.vec.s, c->u.vec.n);
    default:
        return false;
    }
}

static bool eval(const struct filter *f, const struct filter_point *pt)
{
    for (uint32_t i = 0; i < f->must.n; i++)
        if (!cond_match(&f->must.v[i], pt))
            return false;
    for (uint32_t i = 0; i < f->must_not.n; i++)
        if (cond_match(&f->must_not.v[i], pt))
            return false;
    if (f->should.n > 0) {
        bool any = false;
        for (uint32_t i = 0; i < f->should.n && !any; i++)
            any = cond_match(&f->should.v[i], pt);
        if (!any)
            return false;
    }
    if (f->has_min) {
        uint32_t hits = 0;
        for (uint32_t i = 0; i < f->min_should.n && hits < f->min_count; i++)
            hits += cond_match(&f->min_should.v[i], pt);
        if (hits < f->min_count)
            return false;
    }
    return true;
}

bool filter_match_point(const struct filter *f, const struct filter_point *pt)
{
    return eval(f, pt);
}

bool filter_match(const struct filter *f, const struct pid *id, const void *payload, size_t len)
{
    struct filter_point pt = {id, payload, len, NULL, NULL};
    return eval(f, &pt);
}
