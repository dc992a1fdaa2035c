/* filter_compile.c - compiling Qdrant's filter shape from msgpack, and freeing it. */
#include "filter.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "dtime.h"
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
    case C_NESTED:
        filter_free(c->u.sub);
        break;
    case C_TEXT:
    case C_PHRASE:
        free(c->u.text.s);
        free(c->u.text.toks);
        break;
    case C_GEO_POLY:
        free(c->u.geo.pts);
        free(c->u.geo.ring_end);
        break;
    case C_HASVEC:
        free(c->u.vec.s);
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
        return cc_fail(c, "must hold exactly one of value, any, except, text, phrase");
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
    } else if (key_is(&k, "text") || key_is(&k, "phrase")) {
        const char *s;
        uint32_t sn;
        cd->kind = key_is(&k, "text") ? C_TEXT : C_PHRASE;
        if (mpk_str(r, &s, &sn) != DV_OK)
            return cc_fail(c, "%s must be a string", cd->kind == C_TEXT ? "text" : "phrase");
        if ((cd->u.text.s = malloc(sn ? sn : 1)) == NULL)
            return DV_ENOMEM;
        memcpy(cd->u.text.s, s, sn);
        cd->u.text.n = sn;
    } else if (key_is(&k, "text_any")) {
        return cc_fail(c, "text_any is not supported");
    } else {
        return cc_fail(c, "unknown key \"%.*s\" (value, any, except, text or phrase)", (int)k.n,
                       k.s);
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
        } else if (mpk_peek(r) == MPK_STR) {
            /* A datetime bound: Qdrant's DatetimeRange shares the range key. */
            const char *s;
            uint32_t sn;
            if (has != 0 && cd->kind != C_DTRANGE)
                return cc_fail(c, "%s: bounds must be all numbers or all datetimes", names[b]);
            cd->kind = C_DTRANGE;
            if (mpk_str(r, &s, &sn) != DV_OK)
                return cc_fail(c, "malformed msgpack");
            if (!dtime_parse(s, sn, &cd->u.dt.b[b]))
                return cc_fail(c,
                               "%s must be a number or an RFC 3339 datetime (e.g. "
                               "2023-02-08T10:49:00Z), not \"%.*s\"",
                               names[b], (int)(sn > 40 ? 40 : sn), s);
        } else {
            struct num *x = &cd->u.range.b[b];
            if (cd->kind == C_DTRANGE)
                return cc_fail(c, "%s: bounds must be all numbers or all datetimes", names[b]);
            if (!filter_num_read(*r, x))
                return cc_fail(c, "%s must be a number or a datetime string", names[b]);
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
    else if (cd->kind == C_DTRANGE)
        cd->u.dt.has = has;
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

/* A geo point of a condition: {"lon": number, "lat": number}. */
static int parse_geo_point(struct cc *c, struct mpk *r, struct geo_point *pt, const char *what)
{
    uint32_t n;
    int rc;
    bool has_lon = false, has_lat = false;
    size_t at = cc_push(c, "%s", what);
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map with lon and lat");
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        bool lon = key_is(&k, "lon");
        if (!lon && !key_is(&k, "lat"))
            return cc_fail(c, "unknown key \"%.*s\" (lon or lat)", (int)k.n, k.s);
        if (lon ? has_lon : has_lat)
            return cc_fail(c, "duplicate key \"%s\"", lon ? "lon" : "lat");
        enum mpk_type t = mpk_peek(r);
        double v;
        if ((t != MPK_UINT && t != MPK_INT && t != MPK_FLOAT) || mpk_f64(r, &v) != DV_OK)
            return cc_fail(c, "%s must be a number", lon ? "lon" : "lat");
        if (lon ? !(v >= -180 && v <= 180) : !(v >= -90 && v <= 90))
            return cc_fail(c, "%s must be within [%s]", lon ? "lon" : "lat",
                           lon ? "-180, 180" : "-90, 90");
        if (lon) {
            pt->lon = v;
            has_lon = true;
        } else {
            pt->lat = v;
            has_lat = true;
        }
    }
    if (!has_lon || !has_lat)
        return cc_fail(c, "needs lon and lat");
    cc_pop(c, at);
    return DV_OK;
}

/* {"center": point, "radius": meters} */
static int parse_geo_radius(struct cc *c, struct mpk *r, struct cond *cd)
{
    uint32_t n;
    int rc;
    bool has_c = false, has_r = false;
    size_t at = cc_push(c, "geo_radius");
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map with center and radius");
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        if (key_is(&k, "center") && !has_c) {
            has_c = true;
            if ((rc = parse_geo_point(c, r, &cd->u.geo.c, "center")) != DV_OK)
                return rc;
        } else if (key_is(&k, "radius") && !has_r) {
            enum mpk_type t = mpk_peek(r);
            has_r = true;
            if ((t != MPK_UINT && t != MPK_INT && t != MPK_FLOAT) ||
                mpk_f64(r, &cd->u.geo.radius) != DV_OK || !(cd->u.geo.radius >= 0) ||
                isinf(cd->u.geo.radius))
                return cc_fail(c, "radius must be a non-negative number of meters");
        } else {
            return cc_fail(c, "unknown or duplicate key \"%.*s\" (center, radius)", (int)k.n, k.s);
        }
    }
    if (!has_c || !has_r)
        return cc_fail(c, "needs center and radius");
    cd->u.geo.box = geo_radius_box(cd->u.geo.c, cd->u.geo.radius);
    cc_pop(c, at);
    return DV_OK;
}

/* {"top_left": point, "bottom_right": point} */
static int parse_geo_box(struct cc *c, struct mpk *r, struct cond *cd)
{
    uint32_t n;
    int rc;
    bool has_tl = false, has_br = false;
    struct geo_point tl, br;
    size_t at = cc_push(c, "geo_bounding_box");
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map with top_left and bottom_right");
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        if (key_is(&k, "top_left") && !has_tl) {
            has_tl = true;
            rc = parse_geo_point(c, r, &tl, "top_left");
        } else if (key_is(&k, "bottom_right") && !has_br) {
            has_br = true;
            rc = parse_geo_point(c, r, &br, "bottom_right");
        } else {
            return cc_fail(c, "unknown or duplicate key \"%.*s\" (top_left, bottom_right)",
                           (int)k.n, k.s);
        }
        if (rc != DV_OK)
            return rc;
    }
    if (!has_tl || !has_br)
        return cc_fail(c, "needs top_left and bottom_right");
    if (tl.lat < br.lat)
        return cc_fail(c, "top_left.lat must not be below bottom_right.lat");
    /* top_left.lon > bottom_right.lon: the box crosses the antimeridian. */
    cd->u.geo.box = (struct geo_box){br.lat, tl.lat, tl.lon, br.lon};
    cc_pop(c, at);
    return DV_OK;
}

/* One ring {"points": [point...]}: closed (first == last), at least 4 points. Appends it. */
static int parse_ring(struct cc *c, struct mpk *r, struct cond *cd, uint32_t *cap)
{
    uint32_t n, np = 0;
    int rc;
    bool seen = false;
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map with points");
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        if (!key_is(&k, "points") || seen)
            return cc_fail(c, "unknown or duplicate key \"%.*s\" (points)", (int)k.n, k.s);
        seen = true;
        if (mpk_array(r, &np) != DV_OK)
            return cc_fail(c, "points must be an array of points");
        uint32_t base = cd->u.geo.nring ? cd->u.geo.ring_end[cd->u.geo.nring - 1] : 0;
        if (np > *cap - base) {
            uint32_t nc = *cap ? *cap : 16;
            while (nc - base < np)
                nc *= 2;
            struct geo_point *v = realloc(cd->u.geo.pts, nc * sizeof *v);
            if (v == NULL)
                return DV_ENOMEM;
            cd->u.geo.pts = v;
            *cap = nc;
        }
        for (uint32_t j = 0; j < np; j++) {
            char what[24];
            snprintf(what, sizeof what, "points[%u]", j);
            if ((rc = parse_geo_point(c, r, &cd->u.geo.pts[base + j], what)) != DV_OK)
                return rc;
        }
        if (np < 4)
            return cc_fail(c, "points: a ring needs at least 4 points");
        const struct geo_point *f = &cd->u.geo.pts[base], *l = &cd->u.geo.pts[base + np - 1];
        if (f->lon != l->lon || f->lat != l->lat)
            return cc_fail(c, "points: a ring must be closed (the last point equal to the "
                              "first)");
        uint32_t *e = realloc(cd->u.geo.ring_end, (cd->u.geo.nring + 1) * sizeof *e);
        if (e == NULL)
            return DV_ENOMEM;
        cd->u.geo.ring_end = e;
        e[cd->u.geo.nring++] = base + np;
    }
    if (!seen)
        return cc_fail(c, "needs points");
    return DV_OK;
}

/* {"exterior": ring, "interiors": [ring...]} */
static int parse_geo_poly(struct cc *c, struct mpk *r, struct cond *cd)
{
    uint32_t n, cap = 0;
    int rc;
    struct mpk ext, ints;
    bool has_e = false, has_i = false;
    size_t at = cc_push(c, "geo_polygon");
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map with exterior and interiors");
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        if (key_is(&k, "exterior") && !has_e) {
            has_e = true;
            ext = *r;
        } else if (key_is(&k, "interiors") && !has_i) {
            has_i = true;
            ints = *r;
        } else {
            return cc_fail(c, "unknown or duplicate key \"%.*s\" (exterior, interiors)", (int)k.n,
                           k.s);
        }
        if ((rc = cc_skip(c, r)) != DV_OK)
            return rc;
    }
    if (!has_e)
        return cc_fail(c, "needs exterior");
    size_t at2 = cc_push(c, "exterior");
    if ((rc = parse_ring(c, &ext, cd, &cap)) != DV_OK)
        return rc;
    cc_pop(c, at2);
    if (has_i && mpk_peek(&ints) != MPK_NIL) {
        uint32_t ni;
        if (mpk_array(&ints, &ni) != DV_OK)
            return cc_fail(c, "interiors must be an array of rings");
        for (uint32_t i = 0; i < ni; i++) {
            at2 = cc_push(c, "interiors[%u]", i);
            if ((rc = parse_ring(c, &ints, cd, &cap)) != DV_OK)
                return rc;
            cc_pop(c, at2);
        }
    }
    /* The exterior's bounds, for the index. */
    struct geo_box *b = &cd->u.geo.box;
    *b = (struct geo_box){90, -90, 180, -180};
    for (uint32_t i = 0; i < cd->u.geo.ring_end[0]; i++) {
        const struct geo_point *q = &cd->u.geo.pts[i];
        b->lat_min = fmin(b->lat_min, q->lat);
        b->lat_max = fmax(b->lat_max, q->lat);
        b->lon_min = fmin(b->lon_min, q->lon);
        b->lon_max = fmax(b->lon_max, q->lon);
    }
    cc_pop(c, at);
    return DV_OK;
}

/* True when f or a filter inside it holds a condition of kind k. */
static bool holds_kind(const struct filter *f, uint8_t k)
{
    const struct clist *ls[4] = {&f->must, &f->should, &f->must_not, &f->min_should};
    for (int l = 0; l < 4; l++)
        for (uint32_t i = 0; i < ls[l]->n; i++) {
            const struct cond *cd = &ls[l]->v[i];
            if (cd->kind == k ||
                ((cd->kind == C_FILTER || cd->kind == C_NESTED) && holds_kind(cd->u.sub, k)))
                return true;
        }
    return false;
}

/* {"key": K, "filter": filter} */
static int parse_nested(struct cc *c, struct mpk *r, struct cond *cd)
{
    uint32_t n;
    int rc;
    struct mpk sub;
    bool has_f = false;
    size_t at = cc_push(c, "nested");
    if (mpk_map(r, &n) != DV_OK)
        return cc_fail(c, "must be a map with key and filter");
    for (uint32_t i = 0; i < n; i++) {
        struct strref k;
        if ((rc = cc_key(c, r, &k)) != DV_OK)
            return rc;
        if (key_is(&k, "key") && cd->path.text == NULL) {
            const char *s;
            uint32_t sn;
            if (mpk_str(r, &s, &sn) != DV_OK)
                return cc_fail(c, "key must be a string");
            char why[DV_ERRMSG_SIZE];
            if ((rc = filter_path_parse(s, sn, &cd->path, why)) != DV_OK)
                return rc == DV_ENOMEM ? rc : cc_fail(c, "%s", why);
        } else if (key_is(&k, "filter") && !has_f) {
            has_f = true;
            sub = *r;
            if ((rc = cc_skip(c, r)) != DV_OK)
                return rc;
        } else {
            return cc_fail(c, "unknown or duplicate key \"%.*s\" (key, filter)", (int)k.n, k.s);
        }
    }
    if (cd->path.text == NULL || !has_f)
        return cc_fail(c, "needs key and filter");
    if ((cd->u.sub = calloc(1, sizeof *cd->u.sub)) == NULL)
        return DV_ENOMEM;
    size_t at2 = cc_push(c, "filter");
    if ((rc = parse_filter(c, &sub, cd->u.sub)) != DV_OK)
        return rc;
    if (holds_kind(cd->u.sub, C_HASID))
        return cc_fail(c, "has_id is not supported inside nested");
    if (holds_kind(cd->u.sub, C_HASVEC))
        return cc_fail(c, "has_vector is not supported inside nested");
    cc_pop(c, at2);
    cc_pop(c, at);
    return DV_OK;
}

/* What a condition map holds, by key. */
enum {
    K_KEY,
    K_MATCH,
    K_RANGE,
    K_COUNT,
    K_GEO_RADIUS,
    K_GEO_BOX,
    K_GEO_POLY,
    K_EMPTY,
    K_NULL,
    K_HASID,
    K_NESTED,
    K_HASVEC,
    K_MUST,
    K_SHOULD,
    K_MUST_NOT,
    K_MIN_SHOULD,
    K_N
};
static const char *const cond_keys[K_N] = {
    "key",         "match",    "range",    "values_count", "geo_radius", "geo_bounding_box",
    "geo_polygon", "is_empty", "is_null",  "has_id",       "nested",     "has_vector",
    "must",        "should",   "must_not", "min_should"};

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
        if (j == K_N)
            return cc_fail(c, "unknown condition \"%.*s\"", (int)k.n, k.s);
        if (has[j])
            return cc_fail(c, "duplicate key \"%s\"", cond_keys[j]);
        has[j] = true;
        at[j] = *r;
        if ((rc = cc_skip(c, r)) != DV_OK)
            return rc;
    }
    int nfield = 0, fk = -1;
    for (int j = K_MATCH; j <= K_GEO_POLY; j++)
        if (has[j]) {
            nfield++;
            fk = j;
        }
    int field = has[K_KEY] || nfield > 0;
    int nested = has[K_MUST] || has[K_SHOULD] || has[K_MUST_NOT] || has[K_MIN_SHOULD];
    if (field + has[K_EMPTY] + has[K_NULL] + has[K_HASID] + has[K_NESTED] + has[K_HASVEC] + nested >
        1)
        return cc_fail(c, "condition mixes kinds (a field condition, is_empty, is_null, "
                          "has_id, nested, has_vector or a nested filter)");
    if (field) {
        if (!has[K_KEY])
            return cc_fail(c, "%s needs a key", cond_keys[fk]);
        if (nfield != 1)
            return cc_fail(c, "a key needs exactly one of match, range, values_count, "
                              "geo_radius, geo_bounding_box, geo_polygon");
        const char *s;
        uint32_t sn;
        if (mpk_str(&at[K_KEY], &s, &sn) != DV_OK)
            return cc_fail(c, "key must be a string");
        char why[DV_ERRMSG_SIZE];
        if ((rc = filter_path_parse(s, sn, &cd->path, why)) != DV_OK)
            return rc == DV_ENOMEM ? rc : cc_fail(c, "%s", why);
        switch (fk) {
        case K_MATCH:
            return parse_match(c, &at[K_MATCH], cd);
        case K_GEO_RADIUS:
            cd->kind = C_GEO_RADIUS;
            return parse_geo_radius(c, &at[fk], cd);
        case K_GEO_BOX:
            cd->kind = C_GEO_BOX;
            return parse_geo_box(c, &at[fk], cd);
        case K_GEO_POLY:
            cd->kind = C_GEO_POLY;
            return parse_geo_poly(c, &at[fk], cd);
        default:
            cd->kind = fk == K_RANGE ? C_RANGE : C_COUNT;
            return parse_bounds(c, &at[fk], cd, fk == K_COUNT);
        }
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
    if (has[K_NESTED]) {
        cd->kind = C_NESTED;
        return parse_nested(c, &at[K_NESTED], cd);
    }
    if (has[K_HASVEC]) {
        const char *s;
        uint32_t sn;
        cd->kind = C_HASVEC;
        if (mpk_str(&at[K_HASVEC], &s, &sn) != DV_OK)
            return cc_fail(c, "has_vector must be a vector name (a string)");
        if ((cd->u.vec.s = malloc(sn ? sn : 1)) == NULL)
            return DV_ENOMEM;
        memcpy(cd->u.vec.s, s, sn);
        cd->u.vec.n = sn;
        return DV_OK;
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
