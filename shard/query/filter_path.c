/* filter_path.c - key paths: parsing "a.b[].c" and walking the values they reach in a payload. */
#include "filter.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "filter_int.h"

#define FILTER_MAX_SEGS 32

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
