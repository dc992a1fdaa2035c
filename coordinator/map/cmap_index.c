/* cmap_index.c - payload index definitions of a collection in the cluster map: lookup, the
 * coll_index command (its body's bytes and its apply) and their part of a snapshot. */
#include <stdlib.h>
#include <string.h>

#include "cmap.h"
#include "cmap_int.h"
#include "err.h"
#include "mpk.h"

/* Index in c->indexes (ordered by key) where `key` is, or would be inserted. */
static uint32_t slot(const struct cmap_coll *c, const char *key, bool *found)
{
    uint32_t lo = 0, hi = c->n_indexes;
    *found = false;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int r = strcmp(c->indexes[mid].key, key);
        if (r == 0) {
            *found = true;
            return mid;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct cmap_pindex *cmap_pindex_find(const struct cmap_coll *c, const char *key)
{
    bool found;
    uint32_t i = slot(c, key, &found);
    return found ? &c->indexes[i] : NULL;
}

/* A payload key: 1 .. CMAP_KEY_MAX bytes, printable (no control bytes). */
static bool key_valid(const char *k)
{
    size_t n = strnlen(k, CMAP_KEY_MAX + 1);
    if (n == 0 || n > CMAP_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f)
            return false;
    return true;
}

/* ---- the command --------------------------------------------------------------------------- */

bool cmap_index_shape_ok(const struct cmap_cmd *c)
{
    const typeof(c->u.coll_index) *x = &c->u.coll_index;
    return strnlen(x->name, sizeof x->name) <= CMAP_NAME_MAX &&
           strnlen(x->key, sizeof x->key) <= CMAP_KEY_MAX;
}

/* Body: [name, op, kind, key]. */
int cmap_index_write(struct buf *b, const struct cmap_cmd *c)
{
    const typeof(c->u.coll_index) *x = &c->u.coll_index;
    int rc;
    if ((rc = mpw_array(b, 4)) != DV_OK || (rc = mpw_str(b, x->name, strlen(x->name))) != DV_OK ||
        (rc = mpw_u64(b, x->op)) != DV_OK || (rc = mpw_u64(b, x->kind)) != DV_OK)
        return rc;
    return mpw_str(b, x->key, strlen(x->key));
}

int cmap_index_read(struct mpk_dec *k, struct cmap_cmd *c)
{
    typeof(c->u.coll_index) *x = &c->u.coll_index;
    int rc;
    if ((rc = mpk_dec_tuple(k, 4, "body")) != DV_OK ||
        (rc = mpk_dec_strcpy(k, x->name, CMAP_NAME_MAX, "name")) != DV_OK ||
        (rc = mpk_dec_u32(k, &x->op, "op")) != DV_OK ||
        (rc = mpk_dec_u32(k, &x->kind, "kind")) != DV_OK)
        return rc;
    return mpk_dec_strcpy(k, x->key, CMAP_KEY_MAX, "key");
}

int cmap_index_apply(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.coll_index) *x = &cmd->u.coll_index;
    struct cmap_coll *c = (struct cmap_coll *)cmap_coll_find(m, x->name);
    if (!c)
        return cmap_apply_fail(m, res, DV_ENOTFOUND, "collection \"%.128s\" not found", x->name);
    if (!key_valid(x->key))
        return cmap_apply_fail(m, res, DV_EINVAL,
                               "collection \"%s\": bad index key (1 to %d printable bytes)",
                               c->name, CMAP_KEY_MAX);
    bool found;
    uint32_t at = slot(c, x->key, &found);
    if (x->op == CMAP_INDEX_DROP) {
        if (found) {
            memmove(&c->indexes[at], &c->indexes[at + 1],
                    (c->n_indexes - at - 1) * sizeof *c->indexes);
            if (--c->n_indexes == 0) {
                free(c->indexes);
                c->indexes = NULL;
            }
        }
        cmap_apply_ok(m, res);
        return DV_OK;
    }
    if (x->op != CMAP_INDEX_CREATE)
        return cmap_apply_fail(m, res, DV_EINVAL, "collection \"%s\": unknown index op %u", c->name,
                               x->op);
    if (found) {
        c->indexes[at].kind = x->kind;
        cmap_apply_ok(m, res);
        return DV_OK;
    }
    if (c->n_indexes >= CMAP_MAX_INDEXES)
        return cmap_apply_fail(m, res, DV_EFULL, "collection \"%s\": %d payload indexes at most",
                               c->name, CMAP_MAX_INDEXES);
    struct cmap_pindex *p = realloc(c->indexes, (c->n_indexes + 1) * sizeof *p);
    if (!p)
        return DV_ENOMEM;
    c->indexes = p;
    memmove(&p[at + 1], &p[at], (c->n_indexes - at) * sizeof *p);
    cmap_strlcpy(p[at].key, x->key, sizeof p[at].key);
    p[at].kind = x->kind;
    c->n_indexes++;
    cmap_apply_ok(m, res);
    return DV_OK;
}

/* ---- snapshots ----------------------------------------------------------------------------- */

/* [[key, kind], ...] in key order. */
int cmap_index_snap_write(struct buf *b, const struct cmap_coll *c)
{
    int rc = mpw_array(b, c->n_indexes);
    for (uint32_t i = 0; rc == DV_OK && i < c->n_indexes; i++)
        if ((rc = mpw_array(b, 2)) == DV_OK &&
            (rc = mpw_str(b, c->indexes[i].key, strlen(c->indexes[i].key))) == DV_OK)
            rc = mpw_u64(b, c->indexes[i].kind);
    return rc;
}

int cmap_index_snap_read(struct mpk_dec *k, struct cmap_coll *c)
{
    uint32_t n;
    int rc;
    if ((rc = mpk_dec_list(k, &n, 3, CMAP_MAX_INDEXES, "indexes")) != DV_OK)
        return rc;
    if (n == 0)
        return DV_OK;
    c->indexes = calloc(n, sizeof *c->indexes);
    if (!c->indexes)
        return mpk_dec_failf(k, DV_ENOMEM, "indexes");
    for (uint32_t i = 0; i < n; i++) {
        struct cmap_pindex *p = &c->indexes[i];
        if ((rc = mpk_dec_tuple(k, 2, "index")) != DV_OK ||
            (rc = mpk_dec_strcpy(k, p->key, CMAP_KEY_MAX, "index key")) != DV_OK ||
            (rc = mpk_dec_u32(k, &p->kind, "index kind")) != DV_OK)
            return rc;
        c->n_indexes = i + 1;
        if (!key_valid(p->key))
            return mpk_dec_failf(k, DV_EINVAL, "%s: index key", c->name);
        if (i > 0 && strcmp(c->indexes[i - 1].key, p->key) >= 0)
            return mpk_dec_failf(k, DV_ECORRUPT, "%s: index %s out of order", c->name, p->key);
    }
    return DV_OK;
}
