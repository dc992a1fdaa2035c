/* filter_compile.c - compiling Qdrant's filter shape from msgpack, and freeing it. */
#include "filter.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "filter_int.h"

#define FILTER_MAX_NEST 16 /* nested filters inside one another */

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
        qsort(cd->u.set.strs, n, sizeof *cd->u.set.strs, filter_strref_cmp);
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
    qsort(cd->u.set.ints, n, sizeof *cd->u.set.ints, filter_i64_cmp);
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
            if (!filter_num_read(*r, x))
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
    qsort(cd->u.ids.ids, n, sizeof *cd->u.ids.ids, filter_pid_qcmp);
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
