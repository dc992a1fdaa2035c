/* admin_alias.c - admin ops on collection aliases (update in Qdrant's action shape, list) and
 * the record of payload index definitions in the map, run on the leader. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "err.h"
#include "log.h"
#include "mpk.h"

#define K(s) mpw_str(b, s, strlen(s))

/* The string value of `key` in the msgpack map p[n] into out (1 .. size-1 bytes, no NUL).
 * DV_EINVAL with errmsg naming `what` and the key. */
static int get_str(const uint8_t *p, size_t n, const char *key, char *out, size_t size,
                   const char *what, char *errmsg)
{
    const uint8_t *v;
    size_t vlen;
    const char *s;
    uint32_t len;
    struct mpk r;
    int rc = mpk_map_find(p, n, key, strlen(key), &v, &vlen);
    if (rc == DV_OK) {
        mpk_init(&r, v, vlen);
        rc = mpk_str(&r, &s, &len);
    }
    if (rc != DV_OK || len == 0 || len >= size || memchr(s, 0, len)) {
        dv_errmsg_set(errmsg, "%s: \"%s\" %s", what, key,
                      rc == DV_ENOTFOUND ? "is missing"
                                         : "must be a non-empty string of at most 128 bytes");
        return DV_EINVAL;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return DV_OK;
}

/* One action {"create_alias": {...}} | {"delete_alias": {...}} | {"rename_alias": {...}}. */
static int read_action(const uint8_t *p, size_t n, uint32_t i, struct cmap_alias_action *x,
                       char *errmsg)
{
    static const struct {
        const char *name, *a, *b;
        uint32_t op;
    } kinds[] = {
        {"create_alias", "alias_name", "collection_name", CMAP_ALIAS_CREATE},
        {"delete_alias", "alias_name", NULL, CMAP_ALIAS_DELETE},
        {"rename_alias", "old_alias_name", "new_alias_name", CMAP_ALIAS_RENAME},
    };
    struct mpk r;
    uint32_t entries;
    mpk_init(&r, p, n);
    if (mpk_map(&r, &entries) != DV_OK || entries != 1) {
        dv_errmsg_set(errmsg,
                      "actions[%u] must be an object with one key: create_alias, delete_alias or "
                      "rename_alias",
                      i);
        return DV_EINVAL;
    }
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const uint8_t *v;
        size_t vlen;
        if (mpk_map_find(p, n, kinds[k].name, strlen(kinds[k].name), &v, &vlen) != DV_OK)
            continue;
        char what[64];
        snprintf(what, sizeof what, "actions[%u].%s", i, kinds[k].name);
        struct mpk t;
        uint32_t fields;
        mpk_init(&t, v, vlen);
        if (mpk_map(&t, &fields) != DV_OK) {
            dv_errmsg_set(errmsg, "%s must be an object", what);
            return DV_EINVAL;
        }
        x->op = kinds[k].op;
        int rc = get_str(v, vlen, kinds[k].a, x->a, sizeof x->a, what, errmsg);
        if (rc == DV_OK && kinds[k].b)
            rc = get_str(v, vlen, kinds[k].b, x->b, sizeof x->b, what, errmsg);
        return rc;
    }
    dv_errmsg_set(errmsg,
                  "actions[%u]: unknown action (create_alias, delete_alias or rename_alias)", i);
    return DV_EINVAL;
}

/* {"map_epoch": e} after a map change, for a forwarding coordinator to wait for its copy. */
static int w_epoch(struct buf *b, uint64_t epoch)
{
    int rc = mpw_map(b, 1);
    if (rc == DV_OK)
        rc = K("map_epoch");
    return rc == DV_OK ? mpw_u64(b, epoch) : rc;
}

int admin_alias_update(struct coord *c, const uint8_t *args, size_t n, struct buf *b, char *errmsg)
{
    const uint8_t *v;
    size_t vlen;
    struct mpk r;
    uint32_t count;
    if (args == NULL || mpk_map_find(args, n, "actions", 7, &v, &vlen) != DV_OK) {
        dv_errmsg_set(errmsg, "argument \"actions\" is missing (a list of alias actions)");
        return DV_EINVAL;
    }
    mpk_init(&r, v, vlen);
    if (mpk_array(&r, &count) != DV_OK || count == 0 || count > CMAP_MAX_ALIAS_OPS) {
        dv_errmsg_set(errmsg, "argument \"actions\" must be a list of 1 to %d actions",
                      CMAP_MAX_ALIAS_OPS);
        return DV_EINVAL;
    }
    struct cmap_cmd cmd = {.type = CMAP_CMD_ALIAS, .req = coord_reqid(c)};
    cmd.u.alias.acts = calloc(count, sizeof *cmd.u.alias.acts);
    if (cmd.u.alias.acts == NULL)
        return DV_ENOMEM;
    cmd.u.alias.n = count;
    int rc = DV_OK;
    for (uint32_t i = 0; i < count && rc == DV_OK; i++) {
        const uint8_t *s;
        size_t len;
        if (mpk_span(&r, &s, &len) != DV_OK) {
            dv_errmsg_set(errmsg, "argument \"actions\" is malformed");
            rc = DV_EINVAL;
        } else {
            rc = read_action(s, len, i, &cmd.u.alias.acts[i], errmsg);
        }
    }
    struct cmap_result res;
    if (rc == DV_OK)
        rc = coord_apply(c, &cmd, &res, errmsg);
    if (rc == DV_OK && res.code != DV_OK) {
        rc = res.code;
        dv_errmsg_set(errmsg, "%s", res.msg);
    }
    cmap_cmd_free(&cmd);
    if (rc == DV_OK)
        rc = w_epoch(b, res.epoch);
    return rc;
}

int admin_alias_list(struct coord *c, const uint8_t *args, size_t n, struct buf *b, char *errmsg)
{
    char coll[CMAP_NAME_MAX + 1] = "";
    const uint8_t *v;
    size_t vlen;
    if (args && mpk_map_find(args, n, "collection", 10, &v, &vlen) == DV_OK &&
        get_str(args, n, "collection", coll, sizeof coll, "alias_list", errmsg) != DV_OK)
        return DV_EINVAL;
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    int rc = DV_OK;
    if (coll[0] && cmap_coll_find(m, coll) == NULL) {
        dv_errmsg_set(errmsg, "collection %s does not exist", coll);
        rc = DV_ENOTFOUND;
        goto out;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->n_aliases; i++)
        k += !coll[0] || strcmp(m->aliases[i].coll, coll) == 0;
    if ((rc = mpw_map(b, 1)) != DV_OK || (rc = K("aliases")) != DV_OK ||
        (rc = mpw_array(b, k)) != DV_OK)
        goto out;
    for (uint32_t i = 0; i < m->n_aliases && rc == DV_OK; i++) {
        const struct cmap_alias *a = &m->aliases[i];
        if (coll[0] && strcmp(a->coll, coll) != 0)
            continue;
        if ((rc = mpw_map(b, 2)) == DV_OK && (rc = K("alias_name")) == DV_OK &&
            (rc = K(a->name)) == DV_OK && (rc = K("collection_name")) == DV_OK)
            rc = K(a->coll);
    }
out:
    craft_map_release(c->raft, ref);
    return rc;
}

int admin_index_record(struct coord *c, const uint8_t *args, size_t n, struct buf *b, char *errmsg)
{
    struct cmap_cmd cmd = {.type = CMAP_CMD_COLL_INDEX, .req = coord_reqid(c)};
    typeof(cmd.u.coll_index) *x = &cmd.u.coll_index;
    const uint8_t *v;
    size_t vlen;
    uint64_t op = 0, kind = 0;
    struct mpk r;
    int rc = get_str(args, n, "collection", x->name, sizeof x->name, "index_record", errmsg);
    if (rc == DV_OK)
        rc = get_str(args, n, "key", x->key, sizeof x->key, "index_record", errmsg);
    if (rc != DV_OK)
        return rc;
    if (mpk_map_find(args, n, "op", 2, &v, &vlen) != DV_OK ||
        (mpk_init(&r, v, vlen), mpk_u64(&r, &op)) != DV_OK || op < 1 || op > 2) {
        dv_errmsg_set(errmsg, "index_record: \"op\" must be 1 (create) or 2 (drop)");
        return DV_EINVAL;
    }
    if (mpk_map_find(args, n, "kind", 4, &v, &vlen) == DV_OK &&
        ((mpk_init(&r, v, vlen), mpk_u64(&r, &kind)) != DV_OK || kind > UINT32_MAX)) {
        dv_errmsg_set(errmsg, "index_record: \"kind\" must be a non-negative integer");
        return DV_EINVAL;
    }
    x->op = (uint32_t)op;
    x->kind = (uint32_t)kind;
    struct cmap_result res;
    if ((rc = coord_apply(c, &cmd, &res, errmsg)) != DV_OK)
        return rc;
    if (res.code != DV_OK) {
        dv_errmsg_set(errmsg, "%s", res.msg);
        return res.code;
    }
    return w_epoch(b, res.epoch);
}

int coord_index_note(struct coord *c, const char *coll, const struct msg_index_req *ix)
{
    struct buf args = BUF_INIT;
    struct buf *b = &args;
    int rc = mpw_map(b, 4);
    rc = rc ? rc : K("collection");
    rc = rc ? rc : K(coll);
    rc = rc ? rc : K("key");
    rc = rc ? rc : mpw_str(b, ix->key.p, ix->key.len);
    rc = rc ? rc : K("op");
    rc = rc ? rc : mpw_u64(b, ix->op == MSG_INDEX_DROP ? CMAP_INDEX_DROP : CMAP_INDEX_CREATE);
    rc = rc ? rc : K("kind");
    rc = rc ? rc : mpw_u64(b, ix->kind);
    if (rc != DV_OK) {
        buf_free(&args);
        return rc;
    }
    struct msg req = {.type = MSG_ADMIN};
    req.u.admin_req = (struct msg_admin_req){{"index_record", 12}, {args.data, (uint32_t)args.len}};
    struct msg_reply rep;
    struct rpcsrv_result res = {0};
    rc = coord_call(c, &req, &rep, &res);
    if (rc == DV_OK && rep.m.err.code != 0)
        rc = rep.m.err.code;
    if (rc != DV_OK)
        log_warn("payload index not recorded in the map", "collection=%s key=%.*s error=%s%s", coll,
                 (int)ix->key.len, ix->key.p, dv_strerror(rc), rep.m.err.code ? "" : res.errmsg);
    msg_reply_free(&rep);
    buf_free(&args);
    return rc;
}
