/* pindex_params.c - payload index parameters: Qdrant's field_schema read from and written to
 * msgpack, and the payload_schema entry of an index. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "mpk.h"
#include "pindex.h"

static const char *const kind_names[PINDEX_KIND_COUNT] = {"keyword", "integer", "float",    "bool",
                                                          "geo",     "text",    "datetime", "uuid"};
static const char *const tok_names[] = {"word", "whitespace", "prefix", "multilingual"};

const char *pindex_kind_name(enum pindex_kind kind)
{
    return (unsigned)kind < PINDEX_KIND_COUNT ? kind_names[kind] : "?";
}

struct pindex_params pindex_params_default(enum pindex_kind kind)
{
    struct pindex_params p = {0};
    p.kind = (uint8_t)kind;
    p.lookup = true;
    p.range = true;
    p.tok = FTEXT_OPTS_DEFAULT;
    return p;
}

static int pfail(char *errmsg, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int pfail(char *errmsg, const char *what, const char *fmt, ...)
{
    if (errmsg != NULL) {
        char tmp[DV_ERRMSG_SIZE];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        dv_errmsg_set(errmsg, "%s: %s", what, tmp);
    }
    return DV_EINVAL;
}

static bool str_is(const char *s, uint32_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static int kind_of_name(const char *s, uint32_t n)
{
    for (int k = 0; k < PINDEX_KIND_COUNT; k++)
        if (str_is(s, n, kind_names[k]))
            return k;
    return -1;
}

/* Which params each kind takes. */
enum {
    P_ON_DISK,
    P_TENANT,
    P_PRINCIPAL,
    P_LOOKUP,
    P_RANGE,
    P_TOK,
    P_LOWER,
    P_MIN,
    P_MAX,
    P_PHRASE
};
static const char *const param_names[] = {
    "on_disk",   "is_tenant", "is_principal",  "lookup",        "range",
    "tokenizer", "lowercase", "min_token_len", "max_token_len", "phrase_matching"};
#define NPARAMS (sizeof param_names / sizeof param_names[0])

static unsigned allowed(int kind)
{
    unsigned disk = 1u << P_ON_DISK;
    switch (kind) {
    case PINDEX_KEYWORD:
    case PINDEX_UUID:
        return disk | 1u << P_TENANT;
    case PINDEX_INTEGER:
        return disk | 1u << P_PRINCIPAL | 1u << P_LOOKUP | 1u << P_RANGE;
    case PINDEX_FLOAT:
    case PINDEX_DATETIME:
        return disk | 1u << P_PRINCIPAL;
    case PINDEX_TEXT:
        return disk | 1u << P_TOK | 1u << P_LOWER | 1u << P_MIN | 1u << P_MAX | 1u << P_PHRASE;
    default:
        return disk;
    }
}

static int parse_as(const void *mp, size_t n, struct pindex_params *out, char *errmsg,
                    const char *what)
{
    struct mpk r;
    const char *s;
    uint32_t sn, nk;
    mpk_init(&r, mp, n);
    if (mpk_peek(&r) == MPK_STR) {
        int k;
        if (mpk_str(&r, &s, &sn) != DV_OK || !mpk_done(&r))
            return pfail(errmsg, what, "malformed msgpack");
        if ((k = kind_of_name(s, sn)) < 0)
            return pfail(errmsg, what,
                         "unknown type \"%.*s\" (keyword, integer, float, bool, geo, text, "
                         "datetime or uuid)",
                         (int)(sn > 40 ? 40 : sn), s);
        *out = pindex_params_default((enum pindex_kind)k);
        return DV_OK;
    }
    if (mpk_map(&r, &nk) != DV_OK)
        return pfail(errmsg, what, "must be a type name or an object with a type");
    /* Find the type first: the other keys depend on it. */
    int kind = -1;
    struct mpk scan = r;
    for (uint32_t i = 0; i < nk; i++) {
        if (mpk_str(&scan, &s, &sn) != DV_OK)
            return pfail(errmsg, what, "keys must be strings");
        if (str_is(s, sn, "type")) {
            const char *t;
            uint32_t tn;
            if (mpk_str(&scan, &t, &tn) != DV_OK)
                return pfail(errmsg, what, "type must be a string");
            if ((kind = kind_of_name(t, tn)) < 0)
                return pfail(errmsg, what,
                             "unknown type \"%.*s\" (keyword, integer, float, bool, geo, text, "
                             "datetime or uuid)",
                             (int)(tn > 40 ? 40 : tn), t);
        } else if (mpk_skip(&scan) != DV_OK) {
            return pfail(errmsg, what, "malformed msgpack");
        }
    }
    if (kind < 0)
        return pfail(errmsg, what, "needs a type");
    if (!mpk_done(&scan))
        return pfail(errmsg, what, "bytes left after the field schema");
    struct pindex_params p = pindex_params_default((enum pindex_kind)kind);
    p.has_params = true;
    const char *kn = kind_names[kind];
    unsigned seen = 0;
    bool seen_type = false;
    for (uint32_t i = 0; i < nk; i++) {
        mpk_str(&r, &s, &sn);
        if (str_is(s, sn, "type")) {
            if (seen_type)
                return pfail(errmsg, what, "duplicate key \"type\"");
            seen_type = true;
            mpk_skip(&r);
            continue;
        }
        unsigned j = 0;
        while (j < NPARAMS && !str_is(s, sn, param_names[j]))
            j++;
        if (j == NPARAMS || !(allowed(kind) & 1u << j))
            return pfail(errmsg, what, "%s: unknown or unsupported parameter \"%.*s\"", kn,
                         (int)(sn > 40 ? 40 : sn), s);
        if (seen & 1u << j)
            return pfail(errmsg, what, "%s: duplicate key \"%s\"", kn, param_names[j]);
        seen |= 1u << j;
        if (mpk_peek(&r) == MPK_NIL) { /* null: the default */
            mpk_skip(&r);
            continue;
        }
        bool b;
        uint64_t u;
        switch (j) {
        case P_TOK: {
            const char *t;
            uint32_t tn;
            int k = -1;
            if (mpk_str(&r, &t, &tn) == DV_OK)
                for (int q = 0; q < 4; q++)
                    if (str_is(t, tn, tok_names[q]))
                        k = q;
            if (k < 0)
                return pfail(errmsg, what,
                             "%s: tokenizer must be one of word, whitespace, prefix, "
                             "multilingual",
                             kn);
            p.tok.tokenizer = (uint8_t)k;
            break;
        }
        case P_MIN:
        case P_MAX:
            if (mpk_u64(&r, &u) != DV_OK || u > UINT32_MAX)
                return pfail(errmsg, what, "%s: %s must be a non-negative integer", kn,
                             param_names[j]);
            if (j == P_MIN)
                p.tok.min_len = (uint32_t)u;
            else
                p.tok.max_len = (uint32_t)u;
            break;
        default:
            if (mpk_bool(&r, &b) != DV_OK)
                return pfail(errmsg, what, "%s: %s must be a bool", kn, param_names[j]);
            if (j == P_ON_DISK)
                p.on_disk = b;
            else if (j == P_TENANT)
                p.is_tenant = b;
            else if (j == P_PRINCIPAL)
                p.is_principal = b;
            else if (j == P_LOOKUP)
                p.lookup = b;
            else if (j == P_RANGE)
                p.range = b;
            else if (j == P_LOWER)
                p.tok.lowercase = b;
            else
                p.phrase_matching = b;
            break;
        }
    }
    if (kind == PINDEX_INTEGER && !p.lookup && !p.range)
        return pfail(errmsg, what, "integer: lookup and range must not both be false");
    if (p.tok.max_len && p.tok.min_len > p.tok.max_len)
        return pfail(errmsg, what, "text: min_token_len must not exceed max_token_len");
    *out = p;
    return DV_OK;
}

int pindex_params_parse(const void *mp, size_t n, struct pindex_params *out, char *errmsg)
{
    return parse_as(mp, n, out, errmsg, "field_schema");
}

int pindex_params_decode(const void *mp, size_t n, struct pindex_params *out, char *errmsg)
{
    return parse_as(mp, n, out, errmsg, "index params");
}

static int put_kv_str(struct buf *b, const char *k, const char *v)
{
    int rc = mpw_str(b, k, strlen(k));
    return rc != DV_OK ? rc : mpw_str(b, v, strlen(v));
}

static int put_kv_bool(struct buf *b, const char *k, bool v)
{
    int rc = mpw_str(b, k, strlen(k));
    return rc != DV_OK ? rc : mpw_bool(b, v);
}

/* The object form: {"type": name, every param of the kind}. */
static int put_object(const struct pindex_params *p, struct buf *b)
{
    unsigned a = allowed(p->kind);
    uint32_t n = 1;
    for (unsigned j = 0; j < NPARAMS; j++)
        if (a & 1u << j)
            n++;
    if (p->kind == PINDEX_TEXT)
        n -= (p->tok.min_len == 0) + (p->tok.max_len == 0);
    int rc = mpw_map(b, n);
    if (rc == DV_OK)
        rc = put_kv_str(b, "type", kind_names[p->kind]);
    for (unsigned j = 0; j < NPARAMS && rc == DV_OK; j++) {
        if (!(a & 1u << j))
            continue;
        switch (j) {
        case P_ON_DISK:
            rc = put_kv_bool(b, "on_disk", p->on_disk);
            break;
        case P_TENANT:
            rc = put_kv_bool(b, "is_tenant", p->is_tenant);
            break;
        case P_PRINCIPAL:
            rc = put_kv_bool(b, "is_principal", p->is_principal);
            break;
        case P_LOOKUP:
            rc = put_kv_bool(b, "lookup", p->lookup);
            break;
        case P_RANGE:
            rc = put_kv_bool(b, "range", p->range);
            break;
        case P_TOK:
            rc = put_kv_str(b, "tokenizer", tok_names[p->tok.tokenizer & 3]);
            break;
        case P_LOWER:
            rc = put_kv_bool(b, "lowercase", p->tok.lowercase);
            break;
        case P_MIN:
        case P_MAX: {
            uint32_t v = j == P_MIN ? p->tok.min_len : p->tok.max_len;
            if (v == 0)
                break;
            rc = mpw_str(b, param_names[j], strlen(param_names[j]));
            if (rc == DV_OK)
                rc = mpw_u64(b, v);
            break;
        }
        default:
            rc = put_kv_bool(b, "phrase_matching", p->phrase_matching);
            break;
        }
    }
    return rc;
}

int pindex_params_encode(const struct pindex_params *p, struct buf *out)
{
    if (p->kind >= PINDEX_KIND_COUNT)
        return DV_EINVAL;
    size_t len0 = out->len;
    int rc = p->has_params ? put_object(p, out)
                           : mpw_str(out, kind_names[p->kind], strlen(kind_names[p->kind]));
    if (rc != DV_OK)
        out->len = len0;
    return rc;
}

int pindex_schema(const struct pindex *ix, struct buf *out)
{
    const struct pindex_params *p = pindex_params_of(ix);
    size_t len0 = out->len;
    int rc = mpw_map(out, p->has_params ? 3 : 2);
    if (rc == DV_OK)
        rc = put_kv_str(out, "data_type", kind_names[p->kind]);
    if (rc == DV_OK && p->has_params && (rc = mpw_str(out, "params", 6)) == DV_OK)
        rc = put_object(p, out);
    if (rc == DV_OK && (rc = mpw_str(out, "points", 6)) == DV_OK)
        rc = mpw_u64(out, pindex_points(ix));
    if (rc != DV_OK)
        out->len = len0;
    return rc;
}
