/* filter_match.c - matching compiled filters against msgpack payloads without allocating. */
#include "filter.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
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

static bool eval(const struct filter *f, const struct pid *id, const void *p, size_t len);

static bool cond_match(const struct cond *c, const struct pid *id, const void *p, size_t len)
{
    switch (c->kind) {
    case C_VALUE:
    case C_ANY:
    case C_EXCEPT:
    case C_RANGE:
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
        return id != NULL && c->u.ids.n > 0 &&
               bsearch(id, c->u.ids.ids, c->u.ids.n, sizeof *id, filter_pid_qcmp) != NULL;
    case C_FILTER:
        return eval(c->u.sub, id, p, len);
    default:
        return false;
    }
}

static bool eval(const struct filter *f, const struct pid *id, const void *p, size_t len)
{
    for (uint32_t i = 0; i < f->must.n; i++)
        if (!cond_match(&f->must.v[i], id, p, len))
            return false;
    for (uint32_t i = 0; i < f->must_not.n; i++)
        if (cond_match(&f->must_not.v[i], id, p, len))
            return false;
    if (f->should.n > 0) {
        bool any = false;
        for (uint32_t i = 0; i < f->should.n && !any; i++)
            any = cond_match(&f->should.v[i], id, p, len);
        if (!any)
            return false;
    }
    if (f->has_min) {
        uint32_t hits = 0;
        for (uint32_t i = 0; i < f->min_should.n && hits < f->min_count; i++)
            hits += cond_match(&f->min_should.v[i], id, p, len);
        if (hits < f->min_count)
            return false;
    }
    return true;
}

bool filter_match(const struct filter *f, const struct pid *id, const void *payload, size_t len)
{
    return eval(f, id, payload, len);
}
