/* filter.c - payload filters: key paths, compiling Qdrant's filter shape from msgpack, and
 * matching payloads without allocating. */
#include "filter.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "filter_int.h"

#define FILTER_MAX_SEGS 32
#define FILTER_MAX_NEST 16 /* nested filters inside one another */

/* ---- Key paths ---- */

static void opt_errmsg(char *errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void opt_errmsg(char *errmsg, const char *fmt, ...)
{
    if (errmsg == NULL)
        return;
    char tmp[DV_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    dv_errmsg_set(errmsg, "%s", tmp);
}

int filter_path_parse(const char *key, size_t n, struct filter_path *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    if (n == 0) {
        opt_errmsg(errmsg, "key must not be empty");
        return DV_EINVAL;
    }
    if (memchr(key, '\0', n) != NULL) {
        opt_errmsg(errmsg, "key must not hold NUL");
        return DV_EINVAL;
    }
    char *text = malloc(n + 1);
    struct filter_seg *seg = malloc(FILTER_MAX_SEGS * sizeof *seg);
    if (text == NULL || seg == NULL) {
        free(text);
        free(seg);
        return DV_ENOMEM;
    }
    memcpy(text, key, n);
    text[n] = '\0';
    uint32_t ns = 0;
    size_t i = 0;
    const char *why = NULL;
    for (;;) {
        size_t start = i;
        while (i < n && text[i] != '.' && text[i] != '[' && text[i] != ']')
            i++;
        if (i == start) {
            why = "empty step";
            goto err;
        }
        if (ns == FILTER_MAX_SEGS) {
            why = "too many steps";
            goto err;
        }
        seg[ns++] = (struct filter_seg){FILTER_SEG_KEY, (uint32_t)(i - start), text + start, 0};
        while (i < n && text[i] == '[') {
            struct filter_seg s = {FILTER_SEG_ALL, 0, NULL, 0};
            i++;
            if (i < n && text[i] >= '0' && text[i] <= '9') {
                uint64_t v = 0;
                while (i < n && text[i] >= '0' && text[i] <= '9') {
                    v = v * 10 + (uint64_t)(text[i++] - '0');
                    if (v > UINT32_MAX) {
                        why = "array index too big";
                        goto err;
                    }
                }
                s.kind = FILTER_SEG_IDX;
                s.index = (uint32_t)v;
            }
            if (i >= n || text[i] != ']') {
                why = "bad brackets (use [] or [index])";
                goto err;
            }
            i++;
            if (ns == FILTER_MAX_SEGS) {
                why = "too many steps";
                goto err;
            }
            seg[ns++] = s;
        }
        if (i == n)
            break;
        if (text[i] != '.') {
            why = "bad brackets (use [] or [index])";
            goto err;
        }
        i++;
    }
    struct filter_seg *fit = realloc(seg, ns * sizeof *seg);
    out->text = text;
    out->textlen = n;
    out->seg = fit != NULL ? fit : seg;
    out->nseg = ns;
    return DV_OK;

err:
    opt_errmsg(errmsg, "key \"%.*s\": %s", (int)(n > 64 ? 64 : n), key, why);
    free(text);
    free(seg);
    return DV_EINVAL;
}

void filter_path_free(struct filter_path *p)
{
    free(p->text);
    free(p->seg);
    memset(p, 0, sizeof *p);
}

static bool visit_at(const struct filter_path *p, uint32_t i, struct mpk v, filter_visit_fn fn,
                     void *ctx);

/* v is at a map: follows the first entry named by seg i. */
static bool visit_key(const struct filter_path *p, uint32_t i, struct mpk v, filter_visit_fn fn,
                      void *ctx)
{
    const struct filter_seg *s = &p->seg[i];
    uint32_t n;
    if (mpk_map(&v, &n) != DV_OK)
        return false;
    for (uint32_t k = 0; k < n; k++) {
        const char *name;
        uint32_t len;
        if (mpk_str(&v, &name, &len) == DV_OK) {
            if (len == s->len && memcmp(name, s->name, len) == 0)
                return visit_at(p, i + 1, v, fn, ctx);
        } else if (mpk_skip(&v) != DV_OK) {
            return false;
        }
        if (mpk_skip(&v) != DV_OK)
            return false;
    }
    return false;
}

static bool visit_at(const struct filter_path *p, uint32_t i, struct mpk v, filter_visit_fn fn,
                     void *ctx)
{
    if (i == p->nseg)
        return fn(ctx, &v);
    const struct filter_seg *s = &p->seg[i];
    enum mpk_type t = mpk_peek(&v);
    if (s->kind == FILTER_SEG_KEY && t == MPK_MAP)
        return visit_key(p, i, v, fn, ctx);
    uint32_t n;
    if (t != MPK_ARRAY || mpk_array(&v, &n) != DV_OK)
        return false;
    for (uint32_t k = 0; k < n; k++) {
        switch (s->kind) {
        case FILTER_SEG_KEY: /* a named step looks into the maps of an array */
            if (mpk_peek(&v) == MPK_MAP && visit_key(p, i, v, fn, ctx))
                return true;
            break;
        case FILTER_SEG_ALL:
            if (visit_at(p, i + 1, v, fn, ctx))
                return true;
            break;
        default:
            if (k == s->index)
                return visit_at(p, i + 1, v, fn, ctx);
            break;
        }
        if (mpk_skip(&v) != DV_OK)
            return false;
    }
    return false;
}

bool filter_path_visit(const struct filter_path *p, const void *payload, size_t len,
                       filter_visit_fn fn, void *ctx)
{
    if (len == 0)
        return false;
    struct mpk v;
    mpk_init(&v, payload, len);
    return visit_at(p, 0, v, fn, ctx);
}

/* ---- Numbers ---- */

static bool num_read(struct mpk r, struct num *out)
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

static int strref_cmp(const void *a, const void *b)
{
    const struct strref *x = a, *y = b;
    uint32_t n = x->n < y->n ? x->n : y->n;
    int c = n ? memcmp(x->s, y->s, n) : 0;
    if (c != 0)
        return c;
    return x->n < y->n ? -1 : x->n > y->n ? 1 : 0;
}

static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int pid_qcmp(const void *a, const void *b)
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
        return bsearch(&k, c->u.set.strs, c->u.set.n, sizeof k, strref_cmp) != NULL;
    }
    int64_t v;
    if (mpk_i64(&r, &v) != DV_OK)
        return false;
    return bsearch(&v, c->u.set.ints, c->u.set.n, sizeof v, i64_cmp) != NULL;
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
        return num_read(r, &x) && in_range(c, &x);
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
               bsearch(id, c->u.ids.ids, c->u.ids.n, sizeof *id, pid_qcmp) != NULL;
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

/* ---- Freeing ---- */

static void clist_free(struct clist *l);

static void cond_free(struct cond *c)
{
    filter_path_free(&c->path);
    switch (c->kind) {
    case C_VALUE:
        free(c->u.val.s);
        break;
    case C_ANY:
    case C_EXCEPT:
        free(c->u.set.strs);
        free(c->u.set.ints);
        free(c->u.set.blob);
        break;
    case C_HASID:
        free(c->u.ids.ids);
        break;
    case C_FILTER:
        filter_free(c->u.sub);
        break;
    default:
        break;
    }
}

static void clist_free(struct clist *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        cond_free(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void filter_free(struct filter *f)
{
    if (f == NULL)
        return;
    clist_free(&f->must);
    clist_free(&f->should);
    clist_free(&f->must_not);
    clist_free(&f->min_should);
    free(f);
}

/* ---- Compiling ---- */

/* Compile context: where we are ("must[2]: range"), for messages. */
struct cc {
    char *errmsg;
    char where[DV_ERRMSG_SIZE];
    size_t wlen;
    int nest;
};

static int cc_fail(struct cc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cc_fail(struct cc *c, const char *fmt, ...)
{
    if (c->errmsg != NULL) {
        char tmp[DV_ERRMSG_SIZE];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        dv_errmsg_set(c->errmsg, "filter%s: %s", c->where, tmp);
    }
    return DV_EINVAL;
}

/* Appends ": <step>" to the context; returns the length to restore with cc_pop. */
static size_t cc_push(struct cc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t cc_push(struct cc *c, const char *fmt, ...)
{
    size_t old = c->wlen;
    if (old + 3 < sizeof c->where) {
        va_list ap;
        va_start(ap, fmt);
        int n = snprintf(c->where + old, sizeof c->where - old, ": ");
        n += vsnprintf(c->where + old + 2, sizeof c->where - old - 2, fmt, ap);
        va_end(ap);
        c->wlen = old + (size_t)n < sizeof c->where ? old + (size_t)n : sizeof c->where - 1;
    }
    return old;
}

static void cc_pop(struct cc *c, size_t old)
{
    c->wlen = old;
    c->where[old] = '\0';
}

/* Reads a map key that must be a string. */
static int cc_key(struct cc *c, struct mpk *r, struct strref *k)
{
    if (mpk_str(r, &k->s, &k->n) != DV_OK)
        return cc_fail(c, "keys must be strings");
    return DV_OK;
}

static bool key_is(const struct strref *k, const char *s)
{
    size_t n = strlen(s);
    return k->n == n && memcmp(k->s, s, n) == 0;
}

static int cc_skip(struct cc *c, struct mpk *r)
{
    if (mpk_skip(r) != DV_OK)
        return cc_fail(c, "malformed msgpack");
    return DV_OK;
}

static int parse_filter(struct cc *c, struct mpk *r, struct filter *f);

/* {"key": K} of is_empty and is_null. */
static int parse_key_obj(struct cc *c, struct mpk *r, struct cond *cd)
{
    uint32_t n;
    int rc;
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map with a key");
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        if (!key_is(&k, "key"))
            return cc_fail(c, "unknown key \"%.*s\"", (int)k.n, k.s);
        if (cd->path.text != NULL)
            return cc_fail(c, "duplicate key");
        const char *s;
        uint32_t sn;
        if (mpk_str(r, &s, &sn) != DV_OK)
            return cc_fail(c, "key must be a string");
        char why[DV_ERRMSG_SIZE];
        if ((rc = filter_path_parse(s, sn, &cd->path, why)) != DV_OK)
            return rc == DV_ENOMEM ? rc : cc_fail(c, "%s", why);
    }
    if (cd->path.text == NULL)
        return cc_fail(c, "needs a key");
    return DV_OK;
}

/* The list of "any"/"except": all strings or all integers. */
static int parse_set(struct cc *c, struct mpk *r, struct cond *cd, const char *what)
{
    uint32_t n;
    if (mpk_array(r, &n) != DV_OK)
        return cc_fail(c, "%s must be an array", what);
    cd->vt = V_STR;
    cd->u.set.n = n;
    if (n == 0)
        return DV_OK;
    enum mpk_type t0 = mpk_peek(r);
    if (t0 == MPK_STR) {
        /* Count the bytes first so the strings can live in one block. */
        struct mpk scan = *r;
        size_t total = 0;
        for (uint32_t i = 0; i < n; i++) {
            const char *s;
            uint32_t sn;
            if (mpk_str(&scan, &s, &sn) != DV_OK)
                return cc_fail(c, "%s must hold only strings or only integers", what);
            total += sn;
        }
        cd->u.set.strs = malloc(n * sizeof *cd->u.set.strs);
        cd->u.set.blob = malloc(total ? total : 1);
        if (cd->u.set.strs == NULL || cd->u.set.blob == NULL)
            return DV_ENOMEM;
        size_t off = 0;
        for (uint32_t i = 0; i < n; i++) {
            const char *s;
            uint32_t sn;
            mpk_str(r, &s, &sn);
            memcpy(cd->u.set.blob + off, s, sn);
            cd->u.set.strs[i] = (struct strref){cd->u.set.blob + off, sn};
            off += sn;
        }
        qsort(cd->u.set.strs, n, sizeof *cd->u.set.strs, strref_cmp);
        return DV_OK;
    }
    if (t0 != MPK_UINT && t0 != MPK_INT)
        return cc_fail(c, "%s must hold only strings or only integers", what);
    cd->vt = V_INT;
    cd->u.set.ints = malloc(n * sizeof *cd->u.set.ints);
    if (cd->u.set.ints == NULL)
        return DV_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        int rc = mpk_i64(r, &cd->u.set.ints[i]);
        if (rc == DV_ERANGE)
            return cc_fail(c, "%s[%u] is out of range", what, i);
        if (rc != DV_OK)
            return cc_fail(c, "%s must hold only strings or only integers", what);
    }
    qsort(cd->u.set.ints, n, sizeof *cd->u.set.ints, i64_cmp);
    return DV_OK;
}

static int parse_match(struct cc *c, struct mpk *r, struct cond *cd)
{
    uint32_t n;
    int rc;
    size_t at = cc_push(c, "match");
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map");
    if (n != 1)
        return cc_fail(c, "must hold exactly one of value, any, except");
    struct strref k;
    if ((rc = cc_key(c, r, &k)) != DV_OK)
        return rc;
    if (key_is(&k, "value")) {
        cd->kind = C_VALUE;
        switch (mpk_peek(r)) {
        case MPK_STR: {
            const char *s;
            uint32_t sn;
            if (mpk_str(r, &s, &sn) != DV_OK)
                return cc_fail(c, "malformed msgpack");
            cd->vt = V_STR;
            if ((cd->u.val.s = malloc(sn ? sn : 1)) == NULL)
                return DV_ENOMEM;
            memcpy(cd->u.val.s, s, sn);
            cd->u.val.n = sn;
            break;
        }
        case MPK_UINT:
        case MPK_INT:
            cd->vt = V_INT;
            rc = mpk_i64(r, &cd->u.val.i);
            if (rc != DV_OK)
                return cc_fail(c, "value %s", rc == DV_ERANGE ? "is out of range" : "is corrupt");
            break;
        case MPK_BOOL:
            cd->vt = V_BOOL;
            if (mpk_bool(r, &cd->u.val.b) != DV_OK)
                return cc_fail(c, "malformed msgpack");
            break;
        default:
            return cc_fail(c, "value must be a string, integer or bool");
        }
    } else if (key_is(&k, "any") || key_is(&k, "except")) {
        cd->kind = key_is(&k, "any") ? C_ANY : C_EXCEPT;
        if ((rc = parse_set(c, r, cd, cd->kind == C_ANY ? "any" : "except")) != DV_OK)
            return rc;
    } else if (key_is(&k, "text") || key_is(&k, "phrase") || key_is(&k, "text_any")) {
        return cc_fail(c, "%.*s is not supported", (int)k.n, k.s);
    } else {
        return cc_fail(c, "unknown key \"%.*s\" (value, any or except)", (int)k.n, k.s);
    }
    cc_pop(c, at);
    return DV_OK;
}

/* Bounds of range (numbers) or values_count (non-negative integers). */
static int parse_bounds(struct cc *c, struct mpk *r, struct cond *cd, bool count)
{
    static const char *names[4] = {"gt", "gte", "lt", "lte"};
    uint32_t n;
    int rc;
    size_t at = cc_push(c, count ? "values_count" : "range");
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map");
    uint8_t has = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        int b = 0;
        while (b < 4 && !key_is(&k, names[b]))
            b++;
        if (b == 4)
            return cc_fail(c, "unknown key \"%.*s\" (gt, gte, lt or lte)", (int)k.n, k.s);
        if (mpk_peek(r) == MPK_NIL) { /* null: no bound, as Qdrant reads it */
            if ((rc = cc_skip(c, r)) != DV_OK)
                return rc;
            continue;
        }
        if (count) {
            if (mpk_u64(r, &cd->u.count.b[b]) != DV_OK)
                return cc_fail(c, "%s must be a non-negative integer", names[b]);
        } else {
            struct num *x = &cd->u.range.b[b];
            if (!num_read(*r, x))
                return cc_fail(c, "%s must be a number", names[b]);
            if (x->k == NUM_F64 && isnan(x->v.f))
                return cc_fail(c, "%s must not be NaN", names[b]);
            if ((rc = cc_skip(c, r)) != DV_OK)
                return rc;
        }
        has |= (uint8_t)(1u << b);
    }
    if (has == 0)
        return cc_fail(c, "needs at least one of gt, gte, lt, lte");
    if (count)
        cd->u.count.has = has;
    else
        cd->u.range.has = has;
    cc_pop(c, at);
    return DV_OK;
}

static int parse_has_id(struct cc *c, struct mpk *r, struct cond *cd)
{
    uint32_t n;
    size_t at = cc_push(c, "has_id");
    if (mpk_array(r, &n) != DV_OK)
        return cc_fail(c, "must be an array of ids");
    cd->u.ids.ids = malloc((n ? n : 1) * sizeof *cd->u.ids.ids);
    if (cd->u.ids.ids == NULL)
        return DV_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        int rc = mpk_pid(r, &cd->u.ids.ids[i]);
        if (rc == DV_ERANGE)
            return cc_fail(c, "[%u]: id must not be negative", i);
        if (rc == DV_EPARSE)
            return cc_fail(c, "[%u]: id is not a UUID", i);
        if (rc != DV_OK)
            return cc_fail(c, "[%u]: id must be a non-negative integer or a UUID string", i);
    }
    qsort(cd->u.ids.ids, n, sizeof *cd->u.ids.ids, pid_qcmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || !pid_eq(&cd->u.ids.ids[m - 1], &cd->u.ids.ids[i]))
            cd->u.ids.ids[m++] = cd->u.ids.ids[i];
    cd->u.ids.n = m;
    cc_pop(c, at);
    return DV_OK;
}

/* What a condition map holds, by key. */
enum {
    K_KEY,
    K_MATCH,
    K_RANGE,
    K_COUNT,
    K_EMPTY,
    K_NULL,
    K_HASID,
    K_MUST,
    K_SHOULD,
    K_MUST_NOT,
    K_MIN_SHOULD,
    K_N
};
static const char *const cond_keys[K_N] = {"key",      "match",    "range",     "values_count",
                                           "is_empty", "is_null",  "has_id",    "must",
                                           "should",   "must_not", "min_should"};
static const char *const unsupported_keys[] = {"geo_radius", "geo_bounding_box", "geo_polygon",
                                               "nested",     "has_vector",       "datetime_range",
                                               "text"};

static int parse_cond(struct cc *c, struct mpk *r, struct cond *cd)
{
    struct mpk start = *r, at[K_N];
    bool has[K_N] = {false};
    uint32_t n;
    int rc;
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "condition must be a map");
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        int j = 0;
        while (j < K_N && !key_is(&k, cond_keys[j]))
            j++;
        if (j == K_N) {
            for (size_t u = 0; u < sizeof unsupported_keys / sizeof unsupported_keys[0]; u++)
                if (key_is(&k, unsupported_keys[u]))
                    return cc_fail(c, "%s conditions are not supported", unsupported_keys[u]);
            return cc_fail(c, "unknown condition \"%.*s\"", (int)k.n, k.s);
        }
        if (has[j])
            return cc_fail(c, "duplicate key \"%s\"", cond_keys[j]);
        has[j] = true;
        at[j] = *r;
        if ((rc = cc_skip(c, r)) != DV_OK)
            return rc;
    }
    int field = has[K_KEY] || has[K_MATCH] || has[K_RANGE] || has[K_COUNT];
    int nested = has[K_MUST] || has[K_SHOULD] || has[K_MUST_NOT] || has[K_MIN_SHOULD];
    if (field + has[K_EMPTY] + has[K_NULL] + has[K_HASID] + nested > 1)
        return cc_fail(c, "condition mixes kinds (a field condition, is_empty, is_null, "
                          "has_id or a nested filter)");
    if (field) {
        if (!has[K_KEY])
            return cc_fail(c, "%s needs a key",
                           has[K_MATCH]   ? "match"
                           : has[K_RANGE] ? "range"
                                          : "values_count");
        if (has[K_MATCH] + has[K_RANGE] + has[K_COUNT] != 1)
            return cc_fail(c, "a key needs exactly one of match, range, values_count");
        const char *s;
        uint32_t sn;
        if (mpk_str(&at[K_KEY], &s, &sn) != DV_OK)
            return cc_fail(c, "key must be a string");
        char why[DV_ERRMSG_SIZE];
        if ((rc = filter_path_parse(s, sn, &cd->path, why)) != DV_OK)
            return rc == DV_ENOMEM ? rc : cc_fail(c, "%s", why);
        if (has[K_MATCH])
            return parse_match(c, &at[K_MATCH], cd);
        cd->kind = has[K_RANGE] ? C_RANGE : C_COUNT;
        return parse_bounds(c, &at[has[K_RANGE] ? K_RANGE : K_COUNT], cd, has[K_COUNT]);
    }
    if (has[K_EMPTY] || has[K_NULL]) {
        cd->kind = has[K_EMPTY] ? C_EMPTY : C_NULL;
        size_t old = cc_push(c, has[K_EMPTY] ? "is_empty" : "is_null");
        if ((rc = parse_key_obj(c, &at[has[K_EMPTY] ? K_EMPTY : K_NULL], cd)) != DV_OK)
            return rc;
        cc_pop(c, old);
        return DV_OK;
    }
    if (has[K_HASID]) {
        cd->kind = C_HASID;
        return parse_has_id(c, &at[K_HASID], cd);
    }
    /* A nested filter (the empty map too: it matches everything). */
    cd->kind = C_FILTER;
    if ((cd->u.sub = calloc(1, sizeof *cd->u.sub)) == NULL)
        return DV_ENOMEM;
    return parse_filter(c, &start, cd->u.sub);
}

/* An array of conditions, a single condition, or nil. */
static int parse_conds(struct cc *c, struct mpk *r, struct clist *l, const char *name)
{
    uint32_t n = 1;
    int rc;
    bool single = mpk_peek(r) == MPK_MAP;
    switch (mpk_peek(r)) {
    case MPK_NIL:
        return cc_skip(c, r);
    case MPK_MAP:
        break;
    case MPK_ARRAY:
        if (mpk_array(r, &n) != DV_OK)
            return cc_fail(c, "malformed msgpack");
        break;
    default:
        return cc_fail(c, "%s must be an array of conditions", name);
    }
    if (n == 0)
        return DV_OK;
    if ((l->v = calloc(n, sizeof *l->v)) == NULL)
        return DV_ENOMEM;
    l->n = n;
    for (uint32_t i = 0; i < n; i++) {
        size_t at = single ? cc_push(c, "%s", name) : cc_push(c, "%s[%u]", name, i);
        if ((rc = parse_cond(c, r, &l->v[i])) != DV_OK)
            return rc;
        cc_pop(c, at);
    }
    return DV_OK;
}

static int parse_min_should(struct cc *c, struct mpk *r, struct filter *f)
{
    uint32_t n;
    int rc;
    bool has_count = false, has_conds = false;
    size_t at = cc_push(c, "min_should");
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map with conditions and min_count");
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        if (key_is(&k, "conditions") && !has_conds) {
            has_conds = true;
            if ((rc = parse_conds(c, r, &f->min_should, "conditions")) != DV_OK)
                return rc;
        } else if (key_is(&k, "min_count") && !has_count) {
            uint64_t v;
            has_count = true;
            if (mpk_u64(r, &v) != DV_OK || v > UINT32_MAX)
                return cc_fail(c, "min_count must be a non-negative integer");
            f->min_count = (uint32_t)v;
        } else {
            return cc_fail(c, "unknown or duplicate key \"%.*s\"", (int)k.n, k.s);
        }
    }
    if (!has_conds || !has_count)
        return cc_fail(c, "needs conditions and min_count");
    f->has_min = true;
    cc_pop(c, at);
    return DV_OK;
}

static int parse_filter(struct cc *c, struct mpk *r, struct filter *f)
{
    uint32_t n;
    int rc;
    if (++c->nest > FILTER_MAX_NEST)
        return cc_fail(c, "filters nested deeper than %d", FILTER_MAX_NEST);
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map");
    bool seen[4] = {false};
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        int which = key_is(&k, "must")         ? 0
                    : key_is(&k, "should")     ? 1
                    : key_is(&k, "must_not")   ? 2
                    : key_is(&k, "min_should") ? 3
                                               : -1;
        if (which < 0)
            return cc_fail(c, "unknown key \"%.*s\" (must, should, must_not or min_should)",
                           (int)k.n, k.s);
        if (seen[which])
            return cc_fail(c, "duplicate key \"%.*s\"", (int)k.n, k.s);
        seen[which] = true;
        if (which == 0)
            rc = parse_conds(c, r, &f->must, "must");
        else if (which == 1)
            rc = parse_conds(c, r, &f->should, "should");
        else if (which == 2)
            rc = parse_conds(c, r, &f->must_not, "must_not");
        else
            rc = parse_min_should(c, r, f);
        if (rc != DV_OK)
            return rc;
    }
    c->nest--;
    return DV_OK;
}

int filter_compile(const void *mp, size_t n, struct filter **out, char *errmsg)
{
    struct cc c = {.errmsg = errmsg};
    struct mpk r;
    struct filter *f = calloc(1, sizeof *f);
    if (f == NULL)
        return DV_ENOMEM;
    mpk_init(&r, mp, n);
    int rc = parse_filter(&c, &r, f);
    if (rc == DV_OK && !mpk_done(&r))
        rc = cc_fail(&c, "bytes left after the filter");
    if (rc != DV_OK) {
        if (rc == DV_ENOMEM && errmsg != NULL)
            dv_errmsg_set(errmsg, "filter: out of memory");
        filter_free(f);
        return rc;
    }
    *out = f;
    return DV_OK;
}
