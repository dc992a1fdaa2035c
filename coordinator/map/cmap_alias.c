/* cmap_alias.c - collection aliases in the cluster map: lookups, the alias command (its body's
 * bytes and its all-or-nothing apply) and the aliases' part of a snapshot. */
#include <stdlib.h>
#include <string.h>

#include "cmap.h"
#include "cmap_int.h"
#include "err.h"
#include "mpk.h"

/* ---- lookups ----------------------------------------------------------------------------- */

/* Index in aliases[n] (ordered by name) where `name` is, or would be inserted. */
static uint32_t slot(const struct cmap_alias *a, uint32_t n, const char *name, bool *found)
{
    uint32_t lo = 0, hi = n;
    *found = false;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct cmap_alias *cmap_alias_find(const struct cmap *m, const char *name)
{
    bool found;
    uint32_t i = slot(m->aliases, m->n_aliases, name, &found);
    return found ? &m->aliases[i] : NULL;
}

const struct cmap_coll *cmap_coll_resolve(const struct cmap *m, const char *name)
{
    const struct cmap_coll *c = cmap_coll_find(m, name);
    if (c)
        return c;
    const struct cmap_alias *a = cmap_alias_find(m, name);
    return a ? cmap_coll_find(m, a->coll) : NULL;
}

void cmap_alias_drop_coll(struct cmap *m, const char *coll)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < m->n_aliases; i++)
        if (strcmp(m->aliases[i].coll, coll) != 0)
            m->aliases[j++] = m->aliases[i];
    m->n_aliases = j;
}

/* ---- the command --------------------------------------------------------------------------- */

static const char *op_name(uint32_t op)
{
    return op == CMAP_ALIAS_CREATE   ? "create_alias"
           : op == CMAP_ALIAS_DELETE ? "delete_alias"
           : op == CMAP_ALIAS_RENAME ? "rename_alias"
                                     : "unknown";
}

bool cmap_alias_shape_ok(const struct cmap_cmd *c)
{
    if (c->u.alias.n < 1 || c->u.alias.n > CMAP_MAX_ALIAS_OPS || !c->u.alias.acts)
        return false;
    for (uint32_t i = 0; i < c->u.alias.n; i++) {
        const struct cmap_alias_action *x = &c->u.alias.acts[i];
        if (strnlen(x->a, sizeof x->a) > CMAP_NAME_MAX ||
            strnlen(x->b, sizeof x->b) > CMAP_NAME_MAX)
            return false;
    }
    return true;
}

/* Body: [[op, a, b], ...]. */
int cmap_alias_write(struct buf *b, const struct cmap_cmd *c)
{
    int rc = mpw_array(b, c->u.alias.n);
    for (uint32_t i = 0; rc == DV_OK && i < c->u.alias.n; i++) {
        const struct cmap_alias_action *x = &c->u.alias.acts[i];
        if ((rc = mpw_array(b, 3)) == DV_OK && (rc = mpw_u64(b, x->op)) == DV_OK &&
            (rc = mpw_str(b, x->a, strlen(x->a))) == DV_OK)
            rc = mpw_str(b, x->b, strlen(x->b));
    }
    return rc;
}

int cmap_alias_read(struct mpk_dec *k, struct cmap_cmd *c)
{
    uint32_t n;
    int rc;
    /* [op, "", ""] takes 4 bytes */
    if ((rc = mpk_dec_list(k, &n, 4, CMAP_MAX_ALIAS_OPS, "actions")) != DV_OK)
        return rc;
    if (n == 0)
        return mpk_dec_fail(k, DV_ECORRUPT, "actions (none)");
    c->u.alias.acts = calloc(n, sizeof *c->u.alias.acts);
    if (!c->u.alias.acts)
        return mpk_dec_fail(k, DV_ENOMEM, "actions");
    c->u.alias.n = n;
    for (uint32_t i = 0; i < n; i++) {
        struct cmap_alias_action *x = &c->u.alias.acts[i];
        if ((rc = mpk_dec_tuple(k, 3, "action")) != DV_OK ||
            (rc = mpk_dec_u32(k, &x->op, "action op")) != DV_OK ||
            (rc = mpk_dec_strcpy(k, x->a, CMAP_NAME_MAX, "action name")) != DV_OK ||
            (rc = mpk_dec_strcpy(k, x->b, CMAP_NAME_MAX, "action name")) != DV_OK)
            return rc;
    }
    return DV_OK;
}

/* One action on the working copy w[*n] (room for cap). DV_OK, or a failure in res. */
static int act(const struct cmap *m, struct cmap_alias *w, uint32_t *n, uint32_t cap,
               const struct cmap_alias_action *x, uint32_t i, struct cmap_result *res)
{
    bool found;
    uint32_t at;
    const char *what = op_name(x->op);
    switch (x->op) {
    case CMAP_ALIAS_CREATE:
    case CMAP_ALIAS_RENAME: {
        const char *name = x->op == CMAP_ALIAS_CREATE ? x->a : x->b;
        if (!cmap_name_valid(name))
            return cmap_apply_fail(m, res, DV_EINVAL,
                                   "action %u (%s): bad alias name \"%.128s\" (1 to %d of "
                                   "[A-Za-z0-9_-])",
                                   i, what, name, CMAP_NAME_MAX);
        if (cmap_coll_find(m, name))
            return cmap_apply_fail(m, res, DV_EEXIST,
                                   "action %u (%s): a collection is named \"%s\"", i, what, name);
        slot(w, *n, name, &found);
        if (found)
            return cmap_apply_fail(m, res, DV_EEXIST, "action %u (%s): alias \"%s\" exists", i,
                                   what, name);
        struct cmap_alias na;
        if (x->op == CMAP_ALIAS_CREATE) {
            if (!cmap_coll_find(m, x->b))
                return cmap_apply_fail(m, res, DV_ENOTFOUND,
                                       "action %u (%s): collection \"%.128s\" not found", i, what,
                                       x->b);
            cmap_strlcpy(na.coll, x->b, sizeof na.coll);
        } else {
            uint32_t old = slot(w, *n, x->a, &found);
            if (!found)
                return cmap_apply_fail(m, res, DV_ENOTFOUND,
                                       "action %u (%s): alias \"%.128s\" not found", i, what, x->a);
            na = w[old];
            memmove(&w[old], &w[old + 1], (*n - old - 1) * sizeof *w);
            (*n)--;
        }
        if (*n >= cap)
            return cmap_apply_fail(m, res, DV_EFULL, "action %u (%s): %u aliases at most", i, what,
                                   CMAP_MAX_ALIASES);
        cmap_strlcpy(na.name, name, sizeof na.name);
        at = slot(w, *n, name, &found);
        memmove(&w[at + 1], &w[at], (*n - at) * sizeof *w);
        w[at] = na;
        (*n)++;
        return DV_OK;
    }
    case CMAP_ALIAS_DELETE:
        at = slot(w, *n, x->a, &found);
        if (!found)
            return cmap_apply_fail(m, res, DV_ENOTFOUND,
                                   "action %u (%s): alias \"%.128s\" not found", i, what, x->a);
        memmove(&w[at], &w[at + 1], (*n - at - 1) * sizeof *w);
        (*n)--;
        return DV_OK;
    default:
        return cmap_apply_fail(m, res, DV_EINVAL, "action %u: unknown op %u", i, x->op);
    }
}

int cmap_alias_apply(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    uint32_t n_acts = cmd->u.alias.n;
    if (n_acts < 1 || n_acts > CMAP_MAX_ALIAS_OPS || !cmd->u.alias.acts)
        return cmap_apply_fail(m, res, DV_EINVAL, "alias: 1 to %d actions", CMAP_MAX_ALIAS_OPS);
    /* Every action works on a copy, which replaces the map's aliases only when all succeed. */
    uint32_t cap = m->n_aliases + n_acts;
    if (cap > CMAP_MAX_ALIASES)
        cap = CMAP_MAX_ALIASES;
    struct cmap_alias *w = malloc((cap ? cap : 1) * sizeof *w);
    if (!w)
        return DV_ENOMEM;
    uint32_t n = m->n_aliases;
    if (n)
        memcpy(w, m->aliases, n * sizeof *w);
    res->code = DV_OK;
    for (uint32_t i = 0; i < n_acts && res->code == DV_OK; i++)
        act(m, w, &n, cap, &cmd->u.alias.acts[i], i, res);
    if (res->code != DV_OK) {
        free(w);
        return DV_OK;
    }
    free(m->aliases);
    m->aliases = w;
    m->n_aliases = n;
    m->cap_aliases = cap ? cap : 1;
    cmap_apply_ok(m, res);
    return DV_OK;
}

/* ---- snapshots ----------------------------------------------------------------------------- */

/* [[alias, collection], ...] in name order. */
int cmap_alias_snap_write(struct buf *b, const struct cmap *m)
{
    int rc = mpw_array(b, m->n_aliases);
    for (uint32_t i = 0; rc == DV_OK && i < m->n_aliases; i++) {
        const struct cmap_alias *a = &m->aliases[i];
        if ((rc = mpw_array(b, 2)) == DV_OK && (rc = mpw_str(b, a->name, strlen(a->name))) == DV_OK)
            rc = mpw_str(b, a->coll, strlen(a->coll));
    }
    return rc;
}

/* Reads them into m (its collections already read), checking names, order and targets. */
int cmap_alias_snap_read(struct mpk_dec *k, struct cmap *m)
{
    uint32_t n;
    int rc;
    if ((rc = mpk_dec_list(k, &n, 3, CMAP_MAX_ALIASES, "aliases")) != DV_OK)
        return rc;
    if (n == 0)
        return DV_OK;
    m->aliases = calloc(n, sizeof *m->aliases);
    if (!m->aliases)
        return mpk_dec_failf(k, DV_ENOMEM, "aliases");
    m->cap_aliases = n;
    for (uint32_t i = 0; i < n; i++) {
        struct cmap_alias *a = &m->aliases[i];
        if ((rc = mpk_dec_tuple(k, 2, "alias")) != DV_OK ||
            (rc = mpk_dec_strcpy(k, a->name, CMAP_NAME_MAX, "alias name")) != DV_OK ||
            (rc = mpk_dec_strcpy(k, a->coll, CMAP_NAME_MAX, "alias collection")) != DV_OK)
            return rc;
        m->n_aliases = i + 1;
        if (!cmap_name_valid(a->name))
            return mpk_dec_failf(k, DV_EINVAL, "alias name");
        if (i > 0 && strcmp(m->aliases[i - 1].name, a->name) >= 0)
            return mpk_dec_failf(k, DV_ECORRUPT, "alias %s out of order", a->name);
        if (cmap_coll_find(m, a->name))
            return mpk_dec_failf(k, DV_ECORRUPT, "alias %s: a collection has that name", a->name);
        if (!cmap_coll_find(m, a->coll))
            return mpk_dec_failf(k, DV_ECORRUPT, "alias %s: collection %s not found", a->name,
                                 a->coll);
    }
    return DV_OK;
}
