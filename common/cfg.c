/* cfg.c - schema-driven YAML config loading (libyaml), value parsing with units, help. */
#include "cfg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "err.h"

/* A parsed value before it is stored into the target struct. Owns its string/list. */
union val {
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    char *s;
    int e;
    struct cfg_strlist l;
};

/* Longest dotted key we resolve; longer ones cannot be in a schema anyway. */
#define KEY_MAX 256
/* Longest value text quoted back in a message. */
#define QUOTE_MAX 40

static const char *const type_names[] = {
    [CFG_BOOL] = "bool",     [CFG_INT64] = "int",         [CFG_UINT64] = "uint",
    [CFG_DOUBLE] = "double", [CFG_STRING] = "string",     [CFG_ENUM] = "enum",
    [CFG_STRLIST] = "list",  [CFG_DURATION] = "duration", [CFG_BYTES] = "size",
};

const char *cfg_type_name(enum cfg_type type)
{
    if ((unsigned)type >= sizeof type_names / sizeof type_names[0])
        return "unknown";
    return type_names[type];
}

static void *member(const struct cfg_field *f, void *obj)
{
    return (char *)obj + f->offset;
}

static size_t nfields(const struct cfg_field *schema)
{
    size_t n = 0;
    while (schema[n].key != NULL)
        n++;
    return n;
}

const struct cfg_field *cfg_find(const struct cfg_field *schema, const char *key)
{
    for (const struct cfg_field *f = schema; f->key != NULL; f++)
        if (strcmp(f->key, key) == 0)
            return f;
    return NULL;
}

static void strlist_free(struct cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static void val_free(const struct cfg_field *f, union val *v)
{
    if (f->type == CFG_STRING) {
        free(v->s);
        v->s = NULL;
    } else if (f->type == CFG_STRLIST) {
        strlist_free(&v->l);
    }
}

/* Moves `v` into the struct member, freeing what the member owned before. */
static void val_store(const struct cfg_field *f, void *obj, union val *v)
{
    void *m = member(f, obj);
    switch (f->type) {
    case CFG_BOOL:
        *(bool *)m = v->b;
        break;
    case CFG_INT64:
        *(int64_t *)m = v->i;
        break;
    case CFG_UINT64:
    case CFG_DURATION:
    case CFG_BYTES:
        *(uint64_t *)m = v->u;
        break;
    case CFG_DOUBLE:
        *(double *)m = v->d;
        break;
    case CFG_ENUM:
        *(int *)m = v->e;
        break;
    case CFG_STRING:
        free(*(char **)m);
        *(char **)m = v->s;
        v->s = NULL;
        break;
    case CFG_STRLIST:
        strlist_free((struct cfg_strlist *)m);
        *(struct cfg_strlist *)m = v->l;
        v->l.items = NULL;
        v->l.n = 0;
        break;
    }
}

/* Writes 'text' into a message, shortened if long. */
static void quote(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n > QUOTE_MAX)
        snprintf(out, cap, "'%.*s...'", QUOTE_MAX, s);
    else
        snprintf(out, cap, "'%s'", s);
}

/* ---- scalar parsers: each returns DV_OK, DV_ETYPE or DV_ERANGE with `why` filled ---- */

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return DV_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return DV_OK;
        }
    }
    return DV_ETYPE;
}

/* Decimal or 0x-hex digits only: no leading blanks, no octal surprises from a leading 0. */
static int parse_u64_text(const char *s, uint64_t *out)
{
    int base = 10;
    const char *p = s;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (*p == '\0')
        return DV_ETYPE;
    for (const char *q = p; *q != '\0'; q++) {
        int ok = base == 10 ? (*q >= '0' && *q <= '9')
                            : ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                               (*q >= 'A' && *q <= 'F'));
        if (!ok)
            return DV_ETYPE;
    }
    errno = 0;
    unsigned long long v = strtoull(p, NULL, base);
    if (errno == ERANGE)
        return DV_ERANGE;
    *out = v;
    return DV_OK;
}

static int parse_i64(const char *s, int64_t *out)
{
    bool neg = false;
    uint64_t u;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    int rc = parse_u64_text(s, &u);
    if (rc != DV_OK)
        return rc;
    if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
        return DV_ERANGE;
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return DV_OK;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    if (*s == '\0' || strchr(" \t\n", *s) != NULL)
        return DV_ETYPE;
    errno = 0;
    double d = strtod(s, &end);
    if (*end != '\0')
        return DV_ETYPE;
    if (!isfinite(d))
        return errno == ERANGE ? DV_ERANGE : DV_ETYPE;
    *out = d;
    return DV_OK;
}

/*
 * Reads a decimal "12" or "1.25" at *p into mantissa and number of fraction digits; moves
 * *p past it. DV_ETYPE if there is no digit, DV_ERANGE if too long.
 */
static int parse_decimal(const char **p, uint64_t *mant, int *frac)
{
    const char *s = *p;
    uint64_t m = 0;
    int digits = 0, fd = -1;
    for (;; s++) {
        if (*s == '.' && fd < 0) {
            fd = 0;
            continue;
        }
        if (*s < '0' || *s > '9')
            break;
        if (m > (UINT64_MAX - 9) / 10 || (fd >= 0 && fd >= 18))
            return DV_ERANGE;
        m = m * 10 + (uint64_t)(*s - '0');
        digits++;
        if (fd >= 0)
            fd++;
    }
    if (digits == 0)
        return DV_ETYPE;
    *mant = m;
    *frac = fd < 0 ? 0 : fd;
    *p = s;
    return DV_OK;
}

/* mant / 10^frac * unit, rounded down; DV_ERANGE if over 64 bits. */
static int scale(uint64_t mant, int frac, uint64_t unit, uint64_t *out)
{
    unsigned __int128 v = (unsigned __int128)mant * unit;
    for (int i = 0; i < frac; i++)
        v /= 10;
    if (v > UINT64_MAX)
        return DV_ERANGE;
    *out = (uint64_t)v;
    return DV_OK;
}

/* "1h30m", "250ms", "1.5s", "0": a sum of number+unit terms, in nanoseconds. */
static int parse_duration(const char *s, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1ULL},       {"us", 1000ULL},      {"\xc2\xb5s", 1000ULL}, /* µs */
        {"ms", 1000000ULL}, {"s", 1000000000ULL}, {"m", 60000000000ULL},  {"h", 3600000000000ULL},
    };
    const char *p = s;
    uint64_t total = 0;
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return DV_OK;
    }
    if (*p == '\0')
        return DV_ETYPE;
    while (*p != '\0') {
        uint64_t mant, v;
        int frac, rc = parse_decimal(&p, &mant, &frac);
        if (rc != DV_OK)
            return rc;
        size_t best = 0, bestlen = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].name);
            /* Longest match first: "ms" before "m". */
            if (n > bestlen && strncmp(p, units[i].name, n) == 0) {
                best = i;
                bestlen = n;
            }
        }
        if (bestlen == 0)
            return DV_ETYPE;
        p += bestlen;
        rc = scale(mant, frac, units[best].ns, &v);
        if (rc != DV_OK || v > UINT64_MAX - total)
            return DV_ERANGE;
        total += v;
    }
    *out = total;
    return DV_OK;
}

/* "4096", "64KiB", "1 GB", "1.5GiB": decimal (KB = 1000) and binary (KiB = 1024) units. */
static int parse_bytes(const char *s, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t mul;
    } units[] = {
        {"", 1ULL},          {"b", 1ULL},           {"kb", 1000ULL},
        {"mb", 1000000ULL},  {"gb", 1000000000ULL}, {"tb", 1000000000000ULL},
        {"kib", 1ULL << 10}, {"mib", 1ULL << 20},   {"gib", 1ULL << 30},
        {"tib", 1ULL << 40},
    };
    const char *p = s;
    uint64_t mant;
    int frac, rc = parse_decimal(&p, &mant, &frac);
    if (rc != DV_OK)
        return rc;
    if (*p == ' ')
        p++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(p, units[i].name) == 0)
            return scale(mant, frac, units[i].mul, out);
    return DV_ETYPE;
}

static const char *expected(const struct cfg_field *f)
{
    switch (f->type) {
    case CFG_BOOL:
        return "a boolean (true or false)";
    case CFG_INT64:
        return "an integer";
    case CFG_UINT64:
        return "a non-negative integer";
    case CFG_DOUBLE:
        return "a number";
    case CFG_STRING:
        return "a string";
    case CFG_ENUM:
        return "a string";
    case CFG_STRLIST:
        return "a list of strings";
    case CFG_DURATION:
        return "a duration such as 250ms, 5s or 2m";
    case CFG_BYTES:
        return "a byte size such as 4096, 64MiB or 1GB";
    }
    return "a value";
}

/* Parses the text of a number-like type into v, no bound checks. */
static int parse_number(const struct cfg_field *f, const char *s, union val *v)
{
    switch (f->type) {
    case CFG_INT64:
        return parse_i64(s, &v->i);
    case CFG_UINT64:
        return parse_u64_text(s, &v->u);
    case CFG_DOUBLE:
        return parse_double(s, &v->d);
    case CFG_DURATION:
        return parse_duration(s, &v->u);
    case CFG_BYTES:
        return parse_bytes(s, &v->u);
    default:
        return DV_EINVAL;
    }
}

static bool is_number_type(enum cfg_type t)
{
    return t == CFG_INT64 || t == CFG_UINT64 || t == CFG_DOUBLE || t == CFG_DURATION ||
           t == CFG_BYTES;
}

/* -1, 0, 1 as a < b, a == b, a > b for number-like values of field f. */
static int cmp_number(const struct cfg_field *f, const union val *a, const union val *b)
{
    switch (f->type) {
    case CFG_INT64:
        return (a->i > b->i) - (a->i < b->i);
    case CFG_DOUBLE:
        return (a->d > b->d) - (a->d < b->d);
    default:
        return (a->u > b->u) - (a->u < b->u);
    }
}

/* Checks v against the field's bounds. A bound that does not parse is a schema bug. */
static int check_range(const struct cfg_field *f, const union val *v, const char *text, char *why,
                       size_t whylen)
{
    char q[QUOTE_MAX + 8];
    union val bound;
    if (f->min != NULL) {
        if (parse_number(f, f->min, &bound) != DV_OK) {
            snprintf(why, whylen, "schema bound min '%s' does not parse", f->min);
            return DV_EINVAL;
        }
        if (cmp_number(f, v, &bound) < 0) {
            quote(q, sizeof q, text);
            snprintf(why, whylen, "value %s is below the minimum %s", q, f->min);
            return DV_ERANGE;
        }
    }
    if (f->max != NULL) {
        if (parse_number(f, f->max, &bound) != DV_OK) {
            snprintf(why, whylen, "schema bound max '%s' does not parse", f->max);
            return DV_EINVAL;
        }
        if (cmp_number(f, v, &bound) > 0) {
            quote(q, sizeof q, text);
            snprintf(why, whylen, "value %s is above the maximum %s", q, f->max);
            return DV_ERANGE;
        }
    }
    return DV_OK;
}

/*
 * Parses the text of one scalar for field f (not a list). `null` is true for a YAML null
 * (a plain empty value, ~ or null): it unsets a string and is an error for other types.
 * On error `why` holds the reason without position or key.
 */
static int parse_scalar(const struct cfg_field *f, const char *s, bool null, union val *v,
                        char *why, size_t whylen)
{
    char q[QUOTE_MAX + 8];
    int rc;

    memset(v, 0, sizeof *v);
    if (null && f->type == CFG_STRING)
        return DV_OK;
    if (null) {
        snprintf(why, whylen, "expected %s, got an empty value", expected(f));
        return DV_ETYPE;
    }
    quote(q, sizeof q, s);
    switch (f->type) {
    case CFG_BOOL:
        rc = parse_bool(s, &v->b);
        break;
    case CFG_STRING:
        v->s = strdup(s);
        return v->s != NULL ? DV_OK : DV_ENOMEM;
    case CFG_ENUM:
        for (int i = 0; f->values != NULL && f->values[i] != NULL; i++) {
            if (strcmp(s, f->values[i]) == 0) {
                v->e = i;
                return DV_OK;
            }
        }
        {
            size_t n = (size_t)snprintf(why, whylen, "expected one of ");
            for (int i = 0; f->values != NULL && f->values[i] != NULL && n < whylen; i++)
                n += (size_t)snprintf(why + n, whylen - n, "%s%s", i ? ", " : "", f->values[i]);
            if (n < whylen)
                snprintf(why + n, whylen - n, "; got %s", q);
        }
        return DV_ERANGE;
    case CFG_STRLIST:
        snprintf(why, whylen, "expected %s, got %s", expected(f), q);
        return DV_ETYPE;
    default:
        rc = parse_number(f, s, v);
        break;
    }
    if (rc == DV_ETYPE) {
        snprintf(why, whylen, "expected %s, got %s", expected(f), q);
        return rc;
    }
    if (rc == DV_ERANGE) {
        snprintf(why, whylen, "value %s is out of range for type %s", q, cfg_type_name(f->type));
        return rc;
    }
    if (is_number_type(f->type))
        return check_range(f, v, s, why, whylen);
    return DV_OK;
}

/* Appends a copy of s (n bytes) to a list. */
static int list_push(struct cfg_strlist *l, const char *s, size_t n)
{
    char **items = realloc(l->items, (l->n + 1) * sizeof *items);
    if (items == NULL)
        return DV_ENOMEM;
    l->items = items;
    if ((items[l->n] = strndup(s, n)) == NULL)
        return DV_ENOMEM;
    l->n++;
    return DV_OK;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses a value given as text (defaults, flags): lists are "a,b,c" or "[a, b, c]". */
static int parse_text(const struct cfg_field *f, const char *s, union val *v, char *why,
                      size_t whylen)
{
    if (f->type != CFG_STRLIST) {
        if (s == NULL) {
            /* No default: false, 0, NULL, or the first enum value. */
            memset(v, 0, sizeof *v);
            return DV_OK;
        }
        return parse_scalar(f, s, false, v, why, whylen);
    }
    memset(v, 0, sizeof *v);
    if (s == NULL)
        return DV_OK;
    size_t len = strlen(s);
    while (len > 0 && is_blank(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_blank(s[len - 1]))
        len--;
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    const char *end = s + len, *p = s;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *e = c != NULL ? c : end;
        const char *a = p, *b = e;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        if (a == b && (c != NULL || p != s)) {
            snprintf(why, whylen, "empty item in list '%s'", s);
            strlist_free(&v->l);
            return DV_ETYPE;
        }
        if (a < b && list_push(&v->l, a, (size_t)(b - a)) != DV_OK) {
            strlist_free(&v->l);
            return DV_ENOMEM;
        }
        p = c != NULL ? c + 1 : end;
        if (c != NULL && p == end) {
            snprintf(why, whylen, "empty item in list '%s'", s);
            strlist_free(&v->l);
            return DV_ETYPE;
        }
    }
    return DV_OK;
}

/* ---- schema helpers ---- */

/* True if some key starts with "<path>." (path names a section of nested keys). */
static bool is_section(const struct cfg_field *schema, const char *path)
{
    size_t n = strlen(path);
    for (const struct cfg_field *f = schema; f->key != NULL; f++)
        if (strncmp(f->key, path, n) == 0 && f->key[n] == '.')
            return true;
    return false;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[KEY_MAX + 1];
    if (la > KEY_MAX || lb > KEY_MAX)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The known key closest to `path` if it is close enough to be a likely typo, else NULL. */
static const char *suggest(const struct cfg_field *schema, const char *path)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1, plen = strlen(path);
    size_t limit = plen < 6 ? 1 : plen < 12 ? 2 : 3;
    for (const struct cfg_field *f = schema; f->key != NULL; f++) {
        size_t d = edit_distance(path, f->key);
        if (d < bestd) {
            bestd = d;
            best = f->key;
        }
    }
    return bestd <= limit ? best : NULL;
}

static void unknown_key_msg(const struct cfg_field *schema, const char *path, char *why,
                            size_t whylen)
{
    const char *s = suggest(schema, path);
    if (s != NULL)
        snprintf(why, whylen, "unknown key '%s' (did you mean '%s'?)", path, s);
    else
        snprintf(why, whylen, "unknown key '%s'", path);
}

/* ---- public: schema, defaults, set, free, help ---- */

int cfg_check_schema(const struct cfg_field *schema, char *errmsg)
{
    char scratch[DV_ERRMSG_SIZE], why[DV_ERRMSG_SIZE];
    if (errmsg == NULL)
        errmsg = scratch;
    for (const struct cfg_field *f = schema; f->key != NULL; f++) {
        const char *k = f->key;
        size_t n = strlen(k);
        if (n == 0 || n >= KEY_MAX || k[0] == '.' || k[n - 1] == '.' || strstr(k, "..")) {
            dv_errmsg_set(errmsg, "schema: malformed key '%s'", k);
            return DV_EINVAL;
        }
        if ((unsigned)f->type > CFG_BYTES) {
            dv_errmsg_set(errmsg, "schema: key '%s': bad type", k);
            return DV_EINVAL;
        }
        for (const struct cfg_field *g = schema; g < f; g++) {
            if (strcmp(g->key, k) == 0) {
                dv_errmsg_set(errmsg, "schema: duplicate key '%s'", k);
                return DV_EINVAL;
            }
        }
        if (is_section(schema, k)) {
            dv_errmsg_set(errmsg, "schema: key '%s' is also a section of other keys", k);
            return DV_EINVAL;
        }
        if (f->type == CFG_ENUM && (f->values == NULL || f->values[0] == NULL)) {
            dv_errmsg_set(errmsg, "schema: key '%s': enum without values", k);
            return DV_EINVAL;
        }
        if ((f->min != NULL || f->max != NULL) && !is_number_type(f->type)) {
            dv_errmsg_set(errmsg, "schema: key '%s': bounds on a %s", k, cfg_type_name(f->type));
            return DV_EINVAL;
        }
        union val v, b;
        if ((f->min != NULL && parse_number(f, f->min, &b) != DV_OK) ||
            (f->max != NULL && parse_number(f, f->max, &b) != DV_OK)) {
            dv_errmsg_set(errmsg, "schema: key '%s': bound does not parse", k);
            return DV_EINVAL;
        }
        if (f->min != NULL && f->max != NULL) {
            union val lo;
            parse_number(f, f->min, &lo);
            if (cmp_number(f, &lo, &b) > 0) {
                dv_errmsg_set(errmsg, "schema: key '%s': min above max", k);
                return DV_EINVAL;
            }
        }
        int rc = parse_text(f, f->def, &v, why, sizeof why);
        if (rc == DV_ENOMEM) {
            dv_errmsg_set(errmsg, "out of memory");
            return rc;
        }
        if (rc != DV_OK) {
            dv_errmsg_set(errmsg, "schema: key '%s': default: %s", k, why);
            return DV_EINVAL;
        }
        val_free(f, &v);
    }
    return DV_OK;
}

/* Zeroes every member so cfg_free() is safe on a partly filled struct. */
static void zero_all(const struct cfg_field *schema, void *obj)
{
    for (const struct cfg_field *f = schema; f->key != NULL; f++) {
        void *m = member(f, obj);
        switch (f->type) {
        case CFG_BOOL:
            *(bool *)m = false;
            break;
        case CFG_INT64:
            *(int64_t *)m = 0;
            break;
        case CFG_UINT64:
        case CFG_DURATION:
        case CFG_BYTES:
            *(uint64_t *)m = 0;
            break;
        case CFG_DOUBLE:
            *(double *)m = 0;
            break;
        case CFG_ENUM:
            *(int *)m = 0;
            break;
        case CFG_STRING:
            *(char **)m = NULL;
            break;
        case CFG_STRLIST:
            ((struct cfg_strlist *)m)->items = NULL;
            ((struct cfg_strlist *)m)->n = 0;
            break;
        }
    }
}

int cfg_defaults(const struct cfg_field *schema, void *obj)
{
    char why[DV_ERRMSG_SIZE];
    zero_all(schema, obj);
    for (const struct cfg_field *f = schema; f->key != NULL; f++) {
        union val v;
        int rc = parse_text(f, f->def, &v, why, sizeof why);
        if (rc != DV_OK) {
            cfg_free(schema, obj);
            return rc == DV_ENOMEM ? rc : DV_EINVAL;
        }
        val_store(f, obj, &v);
    }
    return DV_OK;
}

int cfg_set(const struct cfg_field *schema, void *obj, const char *key, const char *value,
            char *errmsg)
{
    char scratch[DV_ERRMSG_SIZE], why[DV_ERRMSG_SIZE];
    if (errmsg == NULL)
        errmsg = scratch;
    const struct cfg_field *f = cfg_find(schema, key);
    if (f == NULL) {
        unknown_key_msg(schema, key, why, sizeof why);
        dv_errmsg_set(errmsg, "%s", why);
        return DV_EUNKNOWN_KEY;
    }
    union val v;
    int rc = parse_text(f, value != NULL ? value : "", &v, why, sizeof why);
    if (rc != DV_OK) {
        if (rc == DV_ENOMEM)
            dv_errmsg_set(errmsg, "key '%s': out of memory", key);
        else
            dv_errmsg_set(errmsg, "key '%s': %s", key, why);
        return rc;
    }
    val_store(f, obj, &v);
    return DV_OK;
}

int cfg_set_arg(const struct cfg_field *schema, void *obj, const char *arg, char *errmsg)
{
    char key[KEY_MAX];
    const char *eq = strchr(arg, '=');
    if (eq == NULL || (size_t)(eq - arg) >= sizeof key) {
        if (errmsg != NULL)
            dv_errmsg_set(errmsg, "expected key=value, got '%s'", arg);
        return DV_EINVAL;
    }
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    return cfg_set(schema, obj, key, eq + 1, errmsg);
}

void cfg_free(const struct cfg_field *schema, void *obj)
{
    for (const struct cfg_field *f = schema; f->key != NULL; f++) {
        void *m = member(f, obj);
        if (f->type == CFG_STRING) {
            free(*(char **)m);
            *(char **)m = NULL;
        } else if (f->type == CFG_STRLIST) {
            strlist_free((struct cfg_strlist *)m);
        }
    }
}

void cfg_print_help(const struct cfg_field *schema, FILE *out)
{
    int kw = 3, dw = 7;
    for (const struct cfg_field *f = schema; f->key != NULL; f++) {
        int n = (int)strlen(f->key);
        kw = n > kw ? n : kw;
        n = f->def != NULL ? (int)strlen(f->def) + (f->type == CFG_STRING ? 2 : 0) : 6;
        dw = n > dw ? n : dw;
    }
    if (dw > 24)
        dw = 24;
    fprintf(out, "%-*s  %-8s  %-*s  %s\n", kw, "KEY", "TYPE", dw, "DEFAULT", "DESCRIPTION");
    for (const struct cfg_field *f = schema; f->key != NULL; f++) {
        char def[128];
        if (f->def == NULL)
            snprintf(def, sizeof def, "%s",
                     f->type == CFG_ENUM      ? f->values[0]
                     : f->type == CFG_STRLIST ? "[]"
                     : f->type == CFG_STRING  ? "(none)"
                     : f->type == CFG_BOOL    ? "false"
                                              : "0");
        else if (f->type == CFG_STRING)
            snprintf(def, sizeof def, "\"%s\"", f->def);
        else if (f->type == CFG_STRLIST)
            snprintf(def, sizeof def, "[%s]", f->def);
        else
            snprintf(def, sizeof def, "%s", f->def);
        fprintf(out, "%-*s  %-8s  %-*s  %s", kw, f->key, cfg_type_name(f->type), dw, def,
                f->doc != NULL ? f->doc : "");
        if (f->type == CFG_ENUM) {
            fprintf(out, " One of:");
            for (int i = 0; f->values[i] != NULL; i++)
                fprintf(out, "%s %s", i ? "," : "", f->values[i]);
            fprintf(out, ".");
        }
        if (f->min != NULL && f->max != NULL)
            fprintf(out, " Range %s..%s.", f->min, f->max);
        else if (f->min != NULL)
            fprintf(out, " At least %s.", f->min);
        else if (f->max != NULL)
            fprintf(out, " At most %s.", f->max);
        fprintf(out, "\n");
    }
}

/* ---- YAML loading ---- */

/* A value parsed from the file, waiting to be stored once the whole file is valid. */
struct pending {
    const struct cfg_field *f;
    union val v;
    size_t line; /* 1-based line of the key, to report duplicates */
};

struct loader {
    const struct cfg_field *schema;
    yaml_document_t *doc;
    struct pending *pend; /* one slot per field, indexed like the schema */
    bool *seen;
    char *errmsg;
};

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a scalar";
    }
}

static bool scalar_is_null(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* Writes "line L, column C: <message>" for node n into the loader's errmsg; returns rc. */
static int at(struct loader *ld, const yaml_node_t *n, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int at(struct loader *ld, const yaml_node_t *n, int rc, const char *fmt, ...)
{
    char why[2 * DV_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    dv_errmsg_set(ld->errmsg, "line %zu, column %zu: %s", n->start_mark.line + 1,
                  n->start_mark.column + 1, why);
    return rc;
}

/* Parses the value node of leaf field f into v. */
static int load_leaf(struct loader *ld, const struct cfg_field *f, const yaml_node_t *n,
                     union val *v)
{
    char why[DV_ERRMSG_SIZE];
    memset(v, 0, sizeof *v);
    if (f->type == CFG_STRLIST) {
        if (n->type == YAML_SCALAR_NODE && scalar_is_null(n))
            return DV_OK;
        if (n->type != YAML_SEQUENCE_NODE) {
            char q[QUOTE_MAX + 8];
            if (n->type == YAML_SCALAR_NODE)
                quote(q, sizeof q, (const char *)n->data.scalar.value);
            else
                snprintf(q, sizeof q, "%s", node_kind(n));
            return at(ld, n, DV_ETYPE, "key '%s': expected a list of strings, got %s", f->key, q);
        }
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
            if (item->type != YAML_SCALAR_NODE) {
                strlist_free(&v->l);
                return at(ld, item, DV_ETYPE, "key '%s': list items must be strings, got %s",
                          f->key, node_kind(item));
            }
            if (list_push(&v->l, (const char *)item->data.scalar.value, item->data.scalar.length) !=
                DV_OK) {
                strlist_free(&v->l);
                return at(ld, item, DV_ENOMEM, "key '%s': %s", f->key, "out of memory");
            }
        }
        return DV_OK;
    }
    if (n->type != YAML_SCALAR_NODE)
        return at(ld, n, DV_ETYPE, "key '%s': expected %s, got %s", f->key, expected(f),
                  node_kind(n));
    int rc =
        parse_scalar(f, (const char *)n->data.scalar.value, scalar_is_null(n), v, why, sizeof why);
    if (rc != DV_OK)
        return at(ld, n, rc, "key '%s': %s", f->key, rc == DV_ENOMEM ? "out of memory" : why);
    return DV_OK;
}

static int load_mapping(struct loader *ld, const yaml_node_t *map, const char *prefix)
{
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = yaml_document_get_node(ld->doc, pr->key);
        yaml_node_t *vn = yaml_document_get_node(ld->doc, pr->value);
        char path[KEY_MAX];

        if (kn->type != YAML_SCALAR_NODE)
            return at(ld, kn, DV_ETYPE, "keys must be strings, got %s", node_kind(kn));
        const char *k = (const char *)kn->data.scalar.value;
        /* The same key twice in one mapping (YAML forbids it; libyaml lets it through). */
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pr; q++) {
            yaml_node_t *qk = yaml_document_get_node(ld->doc, q->key);
            if (qk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)qk->data.scalar.value, k) == 0) {
                return at(ld, kn, DV_EPARSE, "duplicate key '%s' (first at line %zu)", k,
                          qk->start_mark.line + 1);
            }
        }
        int n = prefix[0] ? snprintf(path, sizeof path, "%s.%s", prefix, k)
                          : snprintf(path, sizeof path, "%s", k);
        if (n < 0 || (size_t)n >= sizeof path)
            return at(ld, kn, DV_EUNKNOWN_KEY, "unknown key '%s'", k);

        const struct cfg_field *f = cfg_find(ld->schema, path);
        if (f != NULL) {
            size_t idx = (size_t)(f - ld->schema);
            if (ld->seen[idx]) {
                return at(ld, kn, DV_EPARSE, "duplicate key '%s' (first at line %zu)", path,
                          ld->pend[idx].line);
            }
            union val v;
            int rc = load_leaf(ld, f, vn, &v);
            if (rc != DV_OK)
                return rc;
            ld->seen[idx] = true;
            ld->pend[idx].f = f;
            ld->pend[idx].v = v;
            ld->pend[idx].line = kn->start_mark.line + 1;
            continue;
        }
        if (is_section(ld->schema, path)) {
            if (vn->type == YAML_SCALAR_NODE && scalar_is_null(vn))
                continue; /* an empty section */
            if (vn->type != YAML_MAPPING_NODE)
                return at(ld, vn, DV_ETYPE, "key '%s': expected a mapping of keys, got %s", path,
                          node_kind(vn));
            int rc = load_mapping(ld, vn, path);
            if (rc != DV_OK)
                return rc;
            continue;
        }
        char why[DV_ERRMSG_SIZE];
        unknown_key_msg(ld->schema, path, why, sizeof why);
        return at(ld, kn, DV_EUNKNOWN_KEY, "%s", why);
    }
    return DV_OK;
}

static int syntax_error(yaml_parser_t *p, char *errmsg)
{
    if (p->error == YAML_MEMORY_ERROR) {
        dv_errmsg_set(errmsg, "out of memory");
        return DV_ENOMEM;
    }
    const yaml_mark_t *m = &p->problem_mark;
    if (p->context != NULL)
        dv_errmsg_set(errmsg, "line %zu, column %zu: %s %s", m->line + 1, m->column + 1,
                      p->problem != NULL ? p->problem : "syntax error", p->context);
    else
        dv_errmsg_set(errmsg, "line %zu, column %zu: %s", m->line + 1, m->column + 1,
                      p->problem != NULL ? p->problem : "syntax error");
    return DV_EPARSE;
}

int cfg_load_string(const struct cfg_field *schema, void *obj, const char *text, size_t len,
                    char *errmsg)
{
    char scratch[DV_ERRMSG_SIZE];
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    struct loader ld = {.schema = schema, .doc = &doc};
    size_t nf = nfields(schema);
    int rc = DV_OK;

    if (errmsg == NULL)
        errmsg = scratch;
    ld.errmsg = errmsg;
    ld.pend = calloc(nf + 1, sizeof *ld.pend);
    ld.seen = calloc(nf + 1, sizeof *ld.seen);
    if (ld.pend == NULL || ld.seen == NULL) {
        rc = DV_ENOMEM;
        dv_errmsg_set(errmsg, "out of memory");
        goto err_free_pending;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = DV_ENOMEM;
        dv_errmsg_set(errmsg, "out of memory");
        goto err_free_pending;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = syntax_error(&parser, errmsg);
        goto err_delete_parser;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root != NULL) {
        /* A second document is not a configuration we can apply unambiguously. */
        if (!yaml_parser_load(&parser, &extra)) {
            rc = syntax_error(&parser, errmsg);
            goto err_delete_doc;
        }
        yaml_node_t *r2 = yaml_document_get_root_node(&extra);
        if (r2 != NULL) {
            dv_errmsg_set(errmsg, "line %zu, column %zu: expected a single YAML document",
                          r2->start_mark.line + 1, r2->start_mark.column + 1);
            rc = DV_EPARSE;
        }
        yaml_document_delete(&extra);
        if (rc != DV_OK)
            goto err_delete_doc;
        if (root->type == YAML_MAPPING_NODE) {
            rc = load_mapping(&ld, root, "");
        } else if (!(root->type == YAML_SCALAR_NODE && scalar_is_null(root))) {
            rc = at(&ld, root, DV_ETYPE, "the top level must be a mapping of keys, got %s",
                    node_kind(root));
        }
        if (rc != DV_OK)
            goto err_delete_doc;
    }
    /* Everything parsed: apply all values at once. */
    for (size_t i = 0; i < nf; i++)
        if (ld.seen[i])
            val_store(ld.pend[i].f, obj, &ld.pend[i].v);
    memset(ld.seen, 0, nf * sizeof *ld.seen);

err_delete_doc:
    yaml_document_delete(&doc);
err_delete_parser:
    yaml_parser_delete(&parser);
err_free_pending:
    if (ld.pend != NULL && ld.seen != NULL)
        for (size_t i = 0; i < nf; i++)
            if (ld.seen[i])
                val_free(ld.pend[i].f, &ld.pend[i].v);
    free(ld.pend);
    free(ld.seen);
    return rc;
}

int cfg_load_file(const struct cfg_field *schema, void *obj, const char *path, char *errmsg)
{
    char scratch[DV_ERRMSG_SIZE];
    FILE *f;
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (errmsg == NULL)
        errmsg = scratch;
    f = fopen(path, "rb");
    if (f == NULL) {
        dv_errmsg_set(errmsg, "%s: %s", path, strerror(errno));
        return DV_EOS;
    }
    for (;;) {
        if (cap - len < 4096) {
            char *t = realloc(text, cap + 65536);
            if (t == NULL) {
                rc = DV_ENOMEM;
                dv_errmsg_set(errmsg, "%s: out of memory", path);
                goto err_close;
            }
            text = t;
            cap += 65536;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        rc = DV_EOS;
        dv_errmsg_set(errmsg, "%s: read error", path);
        goto err_close;
    }
    rc = cfg_load_string(schema, obj, text, len, errmsg);
    if (rc != DV_OK)
        dv_errmsg_prefix(errmsg, "%s", path);
err_close:
    fclose(f);
    free(text);
    return rc;
}
