/* cmap_cmd.c - encoding and bounds-checked decoding of cluster-map commands and batches. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cmap.h"
#include "cmap_int.h"
#include "err.h"
#include "mpk.h"

/*
 * An entry is one msgpack array [version, type, req_hi, req_lo, body] followed by zero bytes
 * up to a multiple of 8 (raft 0.15 treats entries of other lengths as corrupt on restart).
 * Bodies are positional arrays (docs/architecture.md, "The cluster map"). A batch is
 * [version, CMAP_CMD_BATCH, 0, 0, [command, ...]] where each command is a whole array as
 * above, without padding.
 */

/* ---- encode ------------------------------------------------------------------------------ */

#define W(x)                                                                                       \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            goto err;                                                                              \
    } while (0)

/* A fixed-size string field: NUL-terminated within `size` and at most `max` bytes. */
static bool str_fits(const char *s, size_t size, size_t max)
{
    size_t n = strnlen(s, size);
    return n < size && n <= max;
}

static int w_str(struct buf *b, const char *s)
{
    return mpw_str(b, s, strlen(s));
}

int cmap_write_cfg(struct buf *b, const struct cmap_coll_cfg *g)
{
    int rc;
    W(mpw_array(b, g->n_spaces ? 11 : 10));
    W(mpw_u64(b, g->dim));
    W(mpw_u64(b, g->metric));
    W(mpw_u64(b, g->m));
    W(mpw_u64(b, g->ef_construction));
    W(mpw_u64(b, g->ef_search));
    W(mpw_u64(b, g->n_parts));
    W(mpw_u64(b, g->rf));
    W(mpw_u64(b, g->fsync));
    W(mpw_bool(b, g->sq8));
    W(mpw_u64(b, g->write_consistency_factor));
    if (g->n_spaces == 0)
        return DV_OK;
    /* 11th: the named vectors, [[name, kind, dim, metric, m, ef_construction, sq8, idf]...] */
    W(mpw_array(b, g->n_spaces));
    for (uint32_t i = 0; i < g->n_spaces; i++) {
        const struct cmap_vspace *v = &g->spaces[i];
        W(mpw_array(b, 8));
        W(w_str(b, v->name));
        W(mpw_u64(b, v->kind));
        W(mpw_u64(b, v->dim));
        W(mpw_u64(b, v->metric));
        W(mpw_u64(b, v->m));
        W(mpw_u64(b, v->ef_construction));
        W(mpw_bool(b, v->sq8));
        W(mpw_bool(b, v->idf));
    }
    return DV_OK;
err:
    return rc;
}

int cmap_read_cfg(struct mpk_dec *k, struct cmap_coll_cfg *g, const char *field)
{
    int rc;
    uint32_t n;
    /* 9 elements: written before write_consistency_factor existed (it reads as 1); 11: with
     * named vectors */
    if (mpk_array(&k->r, &n) != DV_OK || n < 9 || n > 11)
        return mpk_dec_fail(k, DV_ECORRUPT, field);
    g->n_spaces = 0;
    if ((rc = mpk_dec_u32(k, &g->dim, "dim")) != DV_OK ||
        (rc = mpk_dec_u32(k, &g->metric, "metric")) != DV_OK ||
        (rc = mpk_dec_u32(k, &g->m, "m")) != DV_OK ||
        (rc = mpk_dec_u32(k, &g->ef_construction, "ef_construction")) != DV_OK ||
        (rc = mpk_dec_u32(k, &g->ef_search, "ef_search")) != DV_OK ||
        (rc = mpk_dec_u32(k, &g->n_parts, "partitions")) != DV_OK ||
        (rc = mpk_dec_u32(k, &g->rf, "replication")) != DV_OK ||
        (rc = mpk_dec_u32(k, &g->fsync, "fsync")) != DV_OK ||
        (rc = mpk_dec_bool(k, &g->sq8, "sq8")) != DV_OK)
        return rc;
    g->write_consistency_factor = 1;
    if (n >= 10 &&
        (rc = mpk_dec_u32(k, &g->write_consistency_factor, "write_consistency_factor")) != DV_OK)
        return rc;
    if (n < 11)
        return DV_OK;
    if ((rc = mpk_dec_list(k, &g->n_spaces, 9, PROTO_MAX_VECTORS, "named vectors")) != DV_OK)
        return rc;
    for (uint32_t i = 0; i < g->n_spaces; i++) {
        struct cmap_vspace *v = &g->spaces[i];
        if ((rc = mpk_dec_tuple(k, 8, "named vector")) != DV_OK ||
            (rc = mpk_dec_strcpy(k, v->name, PROTO_MAX_VNAME, "vector name")) != DV_OK ||
            (rc = mpk_dec_u32(k, &v->kind, "vector kind")) != DV_OK ||
            (rc = mpk_dec_u32(k, &v->dim, "vector dim")) != DV_OK ||
            (rc = mpk_dec_u32(k, &v->metric, "vector metric")) != DV_OK ||
            (rc = mpk_dec_u32(k, &v->m, "vector m")) != DV_OK ||
            (rc = mpk_dec_u32(k, &v->ef_construction, "vector ef_construction")) != DV_OK ||
            (rc = mpk_dec_bool(k, &v->sq8, "vector sq8")) != DV_OK ||
            (rc = mpk_dec_bool(k, &v->idf, "vector idf")) != DV_OK)
            return rc;
    }
    return DV_OK;
}

static int w_reports(struct buf *b, const struct cmap_report *r, uint32_t n)
{
    int rc;
    W(mpw_array(b, n));
    for (uint32_t i = 0; i < n; i++) {
        W(mpw_array(b, 3));
        W(w_str(b, r[i].coll));
        W(mpw_u64(b, r[i].part));
        W(mpw_u64(b, r[i].lsn));
    }
err:
    return rc;
}

static bool reports_fit(const struct cmap_report *r, uint32_t n)
{
    if (n > CMAP_MAX_REPORTS || (n && !r))
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (!r[i].coll || strnlen(r[i].coll, CMAP_NAME_MAX + 1) > CMAP_NAME_MAX)
            return false;
    return true;
}

/* Checks the shape of a command; false with errmsg set. */
static bool cmd_shape_ok(const struct cmap_cmd *c, char *errmsg)
{
    const char *bad = NULL;
    const char *t = cmap_cmd_type_name(c->type);
    switch (c->type) {
    case CMAP_CMD_NODE_REGISTER:
        if (!str_fits(c->u.reg.id, sizeof c->u.reg.id, CMAP_ID_MAX))
            bad = "id";
        else if (!str_fits(c->u.reg.url, sizeof c->u.reg.url, CMAP_URL_MAX) ||
                 !str_fits(c->u.reg.http_url, sizeof c->u.reg.http_url, CMAP_URL_MAX) ||
                 !str_fits(c->u.reg.search_url, sizeof c->u.reg.search_url, CMAP_URL_MAX))
            bad = "url";
        else if (!reports_fit(c->u.reg.reports, c->u.reg.n_reports))
            bad = "reports";
        break;
    case CMAP_CMD_NODE_STATE:
        if (!str_fits(c->u.node_state.id, sizeof c->u.node_state.id, CMAP_ID_MAX))
            bad = "id";
        else if (c->u.node_state.has_reports &&
                 !reports_fit(c->u.node_state.reports, c->u.node_state.n_reports))
            bad = "reports";
        break;
    case CMAP_CMD_NODE_WEIGHT:
        if (!str_fits(c->u.node_weight.id, sizeof c->u.node_weight.id, CMAP_ID_MAX))
            bad = "id";
        break;
    case CMAP_CMD_NODE_REMOVE:
        if (!str_fits(c->u.node_remove.id, sizeof c->u.node_remove.id, CMAP_ID_MAX))
            bad = "id";
        break;
    case CMAP_CMD_COLL_CREATE: {
        const typeof(c->u.coll_create) *cc = &c->u.coll_create;
        if (!str_fits(cc->name, sizeof cc->name, CMAP_NAME_MAX))
            bad = "name";
        else if (cc->cfg.n_parts < 1 || cc->cfg.n_parts > CMAP_MAX_PARTS || !cc->parts)
            bad = "partitions";
        else if (cc->n_node_ids > CMAP_MAX_NODES || (cc->n_node_ids && !cc->node_ids))
            bad = "node table";
        for (uint32_t i = 0; !bad && i < cc->n_node_ids; i++)
            if (!str_fits(cc->node_ids[i], sizeof cc->node_ids[i], CMAP_ID_MAX))
                bad = "node table";
        for (uint32_t p = 0; !bad && p < cc->cfg.n_parts; p++) {
            const struct cmap_cmd_part *cp = &cc->parts[p];
            if (cp->n > CMAP_MAX_REPLICAS || (cp->n && cp->primary >= cp->n))
                bad = "partition replicas";
            for (uint32_t k = 0; !bad && k < cp->n; k++)
                if (cp->nodes[k] >= cc->n_node_ids)
                    bad = "partition replicas";
        }
        break;
    }
    case CMAP_CMD_COLL_DROP:
        if (!str_fits(c->u.coll_drop.name, sizeof c->u.coll_drop.name, CMAP_NAME_MAX))
            bad = "name";
        break;
    case CMAP_CMD_PART_SET: {
        const typeof(c->u.part_set) *ps = &c->u.part_set;
        if (!str_fits(ps->coll, sizeof ps->coll, CMAP_NAME_MAX))
            bad = "collection";
        else if (ps->n > CMAP_MAX_REPLICAS || (ps->n && ps->primary >= ps->n))
            bad = "replicas";
        for (uint32_t k = 0; !bad && k < ps->n; k++)
            if (!str_fits(ps->nodes[k], sizeof ps->nodes[k], CMAP_ID_MAX))
                bad = "replicas";
        break;
    }
    case CMAP_CMD_MOVE_ADD:
    case CMAP_CMD_MOVE_UPDATE:
    case CMAP_CMD_MOVE_REMOVE:
        if (!str_fits(c->u.move.coll, sizeof c->u.move.coll, CMAP_NAME_MAX))
            bad = "collection";
        else if (!str_fits(c->u.move.from, sizeof c->u.move.from, CMAP_ID_MAX) ||
                 !str_fits(c->u.move.to, sizeof c->u.move.to, CMAP_ID_MAX))
            bad = "node";
        else if (c->u.move.state < 0)
            bad = "state";
        break;
    case CMAP_CMD_COORD_SET:
        if (!str_fits(c->u.coord_set.raft_addr, sizeof c->u.coord_set.raft_addr, CMAP_URL_MAX))
            bad = "raft_addr";
        else if (!str_fits(c->u.coord_set.client_url, sizeof c->u.coord_set.client_url,
                           CMAP_URL_MAX))
            bad = "client_url";
        else if (c->u.coord_set.role < 0)
            bad = "role";
        break;
    case CMAP_CMD_COORD_REMOVE:
    case CMAP_CMD_SETTINGS:
        break;
    case CMAP_CMD_REPLICA_STATE:
        if (!str_fits(c->u.replica_state.coll, sizeof c->u.replica_state.coll, CMAP_NAME_MAX))
            bad = "collection";
        else if (!str_fits(c->u.replica_state.node, sizeof c->u.replica_state.node, CMAP_ID_MAX))
            bad = "node";
        else if (c->u.replica_state.state < 0)
            bad = "state";
        break;
    case CMAP_CMD_PART_PROMOTE:
        if (!str_fits(c->u.promote.coll, sizeof c->u.promote.coll, CMAP_NAME_MAX))
            bad = "collection";
        else if (!str_fits(c->u.promote.node, sizeof c->u.promote.node, CMAP_ID_MAX))
            bad = "node";
        break;
    case CMAP_CMD_REPLICA_ADD:
    case CMAP_CMD_REPLICA_REMOVE:
        if (!str_fits(c->u.replica_op.coll, sizeof c->u.replica_op.coll, CMAP_NAME_MAX))
            bad = "collection";
        else if (!str_fits(c->u.replica_op.node, sizeof c->u.replica_op.node, CMAP_ID_MAX))
            bad = "node";
        break;
    case CMAP_CMD_COLL_SET:
        if (!str_fits(c->u.coll_set.name, sizeof c->u.coll_set.name, CMAP_NAME_MAX))
            bad = "name";
        break;
    case CMAP_CMD_ALIAS:
        if (!cmap_alias_shape_ok(c))
            bad = "actions";
        break;
    case CMAP_CMD_COLL_INDEX:
        if (!cmap_index_shape_ok(c))
            bad = "name or key";
        break;
    case CMAP_CMD_REPLICA_MOVE:
        if (!str_fits(c->u.replica_move.coll, sizeof c->u.replica_move.coll, CMAP_NAME_MAX))
            bad = "collection";
        else if (!str_fits(c->u.replica_move.from, sizeof c->u.replica_move.from, CMAP_ID_MAX) ||
                 !str_fits(c->u.replica_move.to, sizeof c->u.replica_move.to, CMAP_ID_MAX))
            bad = "node";
        break;
    default:
        dv_errmsg_set(errmsg, "cmap: command type %d cannot be encoded alone", c->type);
        return false;
    }
    if (!bad && c->req.hi == 0 && c->req.lo == 0)
        bad = "request id (zero)";
    if (bad) {
        dv_errmsg_set(errmsg, "cmap: %s: bad %s", t, bad);
        return false;
    }
    return true;
}

static int w_body(struct buf *b, const struct cmap_cmd *c)
{
    int rc;
    switch (c->type) {
    case CMAP_CMD_NODE_REGISTER:
        /* the search port came later: an 8th element, written only when there is one */
        W(mpw_array(b, c->u.reg.search_url[0] ? 8 : 7));
        W(w_str(b, c->u.reg.id));
        W(w_str(b, c->u.reg.url));
        W(w_str(b, c->u.reg.http_url));
        W(mpw_f64(b, c->u.reg.weight));
        W(mpw_i64(b, c->u.reg.state));
        W(mpw_u64(b, c->u.reg.heartbeat_ms));
        W(w_reports(b, c->u.reg.reports, c->u.reg.n_reports));
        if (c->u.reg.search_url[0])
            W(w_str(b, c->u.reg.search_url));
        break;
    case CMAP_CMD_NODE_STATE:
        W(mpw_array(b, 4));
        W(w_str(b, c->u.node_state.id));
        W(mpw_i64(b, c->u.node_state.state));
        W(mpw_u64(b, c->u.node_state.heartbeat_ms));
        if (c->u.node_state.has_reports)
            W(w_reports(b, c->u.node_state.reports, c->u.node_state.n_reports));
        else
            W(mpw_nil(b));
        break;
    case CMAP_CMD_NODE_WEIGHT:
        W(mpw_array(b, 2));
        W(w_str(b, c->u.node_weight.id));
        W(mpw_f64(b, c->u.node_weight.weight));
        break;
    case CMAP_CMD_NODE_REMOVE:
        W(mpw_array(b, 2));
        W(w_str(b, c->u.node_remove.id));
        W(mpw_bool(b, c->u.node_remove.force));
        break;
    case CMAP_CMD_COLL_CREATE: {
        const typeof(c->u.coll_create) *cc = &c->u.coll_create;
        const struct cmap_coll_cfg *g = &cc->cfg;
        W(mpw_array(b, 4));
        W(w_str(b, cc->name));
        W(cmap_write_cfg(b, g));
        W(mpw_array(b, cc->n_node_ids));
        for (uint32_t i = 0; i < cc->n_node_ids; i++)
            W(w_str(b, cc->node_ids[i]));
        W(mpw_array(b, g->n_parts));
        for (uint32_t p = 0; p < g->n_parts; p++) {
            const struct cmap_cmd_part *cp = &cc->parts[p];
            W(mpw_array(b, 2));
            W(mpw_u64(b, cp->primary));
            W(mpw_array(b, cp->n));
            for (uint32_t k = 0; k < cp->n; k++)
                W(mpw_u64(b, cp->nodes[k]));
        }
        break;
    }
    case CMAP_CMD_COLL_DROP:
        W(mpw_array(b, 1));
        W(w_str(b, c->u.coll_drop.name));
        break;
    case CMAP_CMD_PART_SET: {
        const typeof(c->u.part_set) *ps = &c->u.part_set;
        W(mpw_array(b, 5));
        W(w_str(b, ps->coll));
        W(mpw_u64(b, ps->part));
        W(mpw_u64(b, ps->expect_epoch));
        W(mpw_u64(b, ps->primary));
        W(mpw_array(b, ps->n));
        for (uint32_t k = 0; k < ps->n; k++)
            W(w_str(b, ps->nodes[k]));
        break;
    }
    case CMAP_CMD_COORD_SET:
        W(mpw_array(b, 4));
        W(mpw_u64(b, c->u.coord_set.id));
        W(w_str(b, c->u.coord_set.raft_addr));
        W(w_str(b, c->u.coord_set.client_url));
        W(mpw_u64(b, (uint64_t)c->u.coord_set.role));
        break;
    case CMAP_CMD_COORD_REMOVE:
        W(mpw_array(b, 1));
        W(mpw_u64(b, c->u.coord_remove.id));
        break;
    case CMAP_CMD_SETTINGS:
        W(mpw_array(b, 5));
        W(mpw_u64(b, c->u.settings.mask));
        W(mpw_bool(b, c->u.settings.set.paused));
        W(mpw_bool(b, c->u.settings.set.auto_rebalance));
        W(mpw_u64(b, c->u.settings.set.rate));
        W(mpw_u64(b, c->u.settings.set.moves_per_node));
        break;
    case CMAP_CMD_REPLICA_STATE:
        W(mpw_array(b, 6));
        W(w_str(b, c->u.replica_state.coll));
        W(mpw_u64(b, c->u.replica_state.part));
        W(w_str(b, c->u.replica_state.node));
        W(mpw_u64(b, (uint64_t)c->u.replica_state.state));
        W(mpw_u64(b, c->u.replica_state.expect_term));
        W(mpw_u64(b, c->u.replica_state.expect_epoch));
        break;
    case CMAP_CMD_REPLICA_ADD:
    case CMAP_CMD_REPLICA_REMOVE:
        W(mpw_array(b, 4));
        W(w_str(b, c->u.replica_op.coll));
        W(mpw_u64(b, c->u.replica_op.part));
        W(w_str(b, c->u.replica_op.node));
        W(mpw_u64(b, c->u.replica_op.expect_term));
        break;
    case CMAP_CMD_COLL_SET:
        /* ef_search is a 4th element only when set: entries written before it existed and
         * those that keep it are the same 3 elements. */
        W(mpw_array(b, c->u.coll_set.ef_search ? 4 : 3));
        W(w_str(b, c->u.coll_set.name));
        W(mpw_u64(b, c->u.coll_set.rf));
        W(mpw_u64(b, c->u.coll_set.wcf));
        if (c->u.coll_set.ef_search)
            W(mpw_u64(b, c->u.coll_set.ef_search));
        break;
    case CMAP_CMD_ALIAS:
        W(cmap_alias_write(b, c));
        break;
    case CMAP_CMD_COLL_INDEX:
        W(cmap_index_write(b, c));
        break;
    case CMAP_CMD_REPLICA_MOVE:
        W(mpw_array(b, 5));
        W(w_str(b, c->u.replica_move.coll));
        W(mpw_u64(b, c->u.replica_move.part));
        W(w_str(b, c->u.replica_move.from));
        W(w_str(b, c->u.replica_move.to));
        W(mpw_u64(b, c->u.replica_move.expect_term));
        break;
    case CMAP_CMD_PART_PROMOTE:
        W(mpw_array(b, 4));
        W(w_str(b, c->u.promote.coll));
        W(mpw_u64(b, c->u.promote.part));
        W(w_str(b, c->u.promote.node));
        W(mpw_u64(b, c->u.promote.expect_term));
        break;
    default: /* moves */
        W(mpw_array(b, 5));
        W(w_str(b, c->u.move.coll));
        W(mpw_u64(b, c->u.move.part));
        W(w_str(b, c->u.move.from));
        W(w_str(b, c->u.move.to));
        W(mpw_u64(b, (uint64_t)c->u.move.state));
        break;
    }
err:
    return rc;
}

/* Zero bytes up to a multiple of 8 counted from `start`. */
static int pad8(struct buf *b, size_t start)
{
    static const uint8_t zeros[8];
    size_t len = b->len - start;
    int rc = buf_append(b, zeros, (8 - len % 8) % 8);
    assert(rc != DV_OK || (b->len - start) % 8 == 0);
    return rc;
}

int cmap_cmd_encode(const struct cmap_cmd *cmd, struct buf *out, char *errmsg)
{
    if (!cmd_shape_ok(cmd, errmsg))
        return DV_EINVAL;
    size_t start = out->len;
    int rc;
    W(mpw_array(out, 5));
    W(mpw_u64(out, CMAP_CMD_VERSION));
    W(mpw_u64(out, (uint64_t)cmd->type));
    W(mpw_u64(out, cmd->req.hi));
    W(mpw_u64(out, cmd->req.lo));
    W(w_body(out, cmd));
    if (out->len - start > CMAP_MAX_ENTRY - 8) {
        rc = DV_ETOOBIG;
        dv_errmsg_set(errmsg, "cmap: %s: %zu bytes, at most %u", cmap_cmd_type_name(cmd->type),
                      out->len - start, CMAP_MAX_ENTRY);
        goto err;
    }
    W(pad8(out, start));
    return DV_OK;
err:
    if (rc == DV_ENOMEM)
        dv_errmsg_set(errmsg, "cmap: encode: out of memory");
    out->len = start;
    return rc;
}

/* ---- decode ------------------------------------------------------------------------------ */

struct dec {
    struct mpk_dec k; /* first: cmd_fail gets back to the struct dec from it */
    struct cmap_cmd *cmd;
};

/* The mpk_dec failure hook: DV_EPROTO naming the command type and the field (DV_ENOMEM
 * passes through). */
static int cmd_fail(struct mpk_dec *k, int rc, const char *field)
{
    const struct dec *d = (const struct dec *)k;
    if (rc == DV_ENOMEM) {
        dv_errmsg_set(k->errmsg, "cmap: %s: out of memory", field);
        return rc;
    }
    dv_errmsg_set(k->errmsg, "cmap: %s %s: %s (%zu bytes left)", cmap_cmd_type_name(d->cmd->type),
                  field, dv_strerror(rc), mpk_dec_left(k));
    return DV_EPROTO;
}

static int dfail(struct dec *d, int rc, const char *field)
{
    return mpk_dec_fail(&d->k, rc, field);
}

/* For mpk_dec_* calls, which have reported the failure already. */
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            return rc;                                                                             \
    } while (0)

static int d_int(struct dec *d, int *v, const char *field)
{
    int64_t x;
    int rc;
    TRY(mpk_dec_i64(&d->k, &x, field));
    if (x < -1 || x > INT32_MAX)
        return dfail(d, DV_ERANGE, field);
    *v = (int)x;
    return DV_OK;
}

static int d_reports(struct dec *d, struct cmap_report **out, uint32_t *count)
{
    uint32_t n;
    int rc;
    /* [coll "", part, lsn] takes at least 4 bytes. */
    if ((rc = mpk_dec_list(&d->k, &n, 4, CMAP_MAX_REPORTS, "reports")) != DV_OK)
        return rc;
    if (n == 0)
        return DV_OK;
    struct cmap_report *r = calloc(n, sizeof *r);
    if (!r)
        return dfail(d, DV_ENOMEM, "reports");
    /* Owned by the command from here on, so an error below frees what was decoded. */
    *out = r;
    for (uint32_t i = 0; i < n; i++) {
        char name[CMAP_NAME_MAX + 1];
        if ((rc = mpk_dec_tuple(&d->k, 3, "report")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, name, CMAP_NAME_MAX, "report collection")) != DV_OK)
            return rc;
        r[i].coll = cmap_strdup(name);
        if (!r[i].coll)
            return dfail(d, DV_ENOMEM, "reports");
        *count = i + 1;
        if ((rc = mpk_dec_u32(&d->k, &r[i].part, "report partition")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &r[i].lsn, "report lsn"));
    }
    return DV_OK;
}

static int d_weight(struct dec *d, double *w)
{
    int rc;
    TRY(mpk_dec_f64(&d->k, w, "weight"));
    return DV_OK;
}

static int d_create(struct dec *d)
{
    typeof(d->cmd->u.coll_create) *cc = &d->cmd->u.coll_create;
    struct cmap_coll_cfg *g = &cc->cfg;
    uint32_t n;
    int rc;
    if ((rc = mpk_dec_tuple(&d->k, 4, "body")) != DV_OK ||
        (rc = mpk_dec_strcpy(&d->k, cc->name, CMAP_NAME_MAX, "name")) != DV_OK ||
        (rc = cmap_read_cfg(&d->k, g, "config")) != DV_OK)
        return rc;
    if (g->n_parts < 1 || g->n_parts > CMAP_MAX_PARTS)
        return dfail(d, DV_ERANGE, "partitions");

    /* The node table: strings of at least 1 byte each. */
    if ((rc = mpk_dec_list(&d->k, &n, 1, CMAP_MAX_NODES, "node table")) != DV_OK)
        return rc;
    if (n) {
        cc->node_ids = calloc(n, sizeof *cc->node_ids);
        if (!cc->node_ids)
            return dfail(d, DV_ENOMEM, "node table");
        for (uint32_t i = 0; i < n; i++) {
            if ((rc = mpk_dec_strcpy(&d->k, cc->node_ids[i], CMAP_ID_MAX, "node table")) != DV_OK)
                return rc;
            cc->n_node_ids = i + 1;
        }
    }

    /* [primary, [node, ...]] takes at least 3 bytes. */
    if ((rc = mpk_dec_list(&d->k, &n, 3, CMAP_MAX_PARTS, "placement")) != DV_OK)
        return rc;
    if (n != g->n_parts)
        return dfail(d, DV_ECORRUPT, "placement");
    cc->parts = calloc(n, sizeof *cc->parts);
    if (!cc->parts)
        return dfail(d, DV_ENOMEM, "placement");
    for (uint32_t p = 0; p < n; p++) {
        struct cmap_cmd_part *cp = &cc->parts[p];
        if ((rc = mpk_dec_tuple(&d->k, 2, "placement")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &cp->primary, "primary")) != DV_OK ||
            (rc = mpk_dec_list(&d->k, &cp->n, 1, CMAP_MAX_REPLICAS, "replicas")) != DV_OK)
            return rc;
        for (uint32_t k = 0; k < cp->n; k++)
            if ((rc = mpk_dec_u32(&d->k, &cp->nodes[k], "replica")) != DV_OK)
                return rc;
    }
    return DV_OK;
}

static int d_body(struct dec *d)
{
    struct cmap_cmd *c = d->cmd;
    int rc;
    switch (c->type) {
    case CMAP_CMD_NODE_REGISTER: {
        uint32_t fields;
        /* 7 elements: no search port (written before it, or by a node without one) */
        if (mpk_array(&d->k.r, &fields) != DV_OK || (fields != 7 && fields != 8))
            return mpk_dec_fail(&d->k, DV_ECORRUPT, "body");
        if ((rc = mpk_dec_strcpy(&d->k, c->u.reg.id, CMAP_ID_MAX, "id")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, c->u.reg.url, CMAP_URL_MAX, "url")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, c->u.reg.http_url, CMAP_URL_MAX, "http_url")) != DV_OK ||
            (rc = d_weight(d, &c->u.reg.weight)) != DV_OK ||
            (rc = d_int(d, &c->u.reg.state, "state")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &c->u.reg.heartbeat_ms, "heartbeat"));
        if ((rc = d_reports(d, &c->u.reg.reports, &c->u.reg.n_reports)) != DV_OK)
            return rc;
        c->u.reg.search_url[0] = '\0';
        if (fields == 8)
            TRY(mpk_dec_strcpy(&d->k, c->u.reg.search_url, CMAP_URL_MAX, "search_url"));
        return DV_OK;
    }
    case CMAP_CMD_NODE_STATE:
        if ((rc = mpk_dec_tuple(&d->k, 4, "body")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, c->u.node_state.id, CMAP_ID_MAX, "id")) != DV_OK ||
            (rc = d_int(d, &c->u.node_state.state, "state")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &c->u.node_state.heartbeat_ms, "heartbeat"));
        if (mpk_peek(&d->k.r) == MPK_NIL) {
            TRY(mpk_dec_nil(&d->k, "reports"));
            return DV_OK;
        }
        c->u.node_state.has_reports = true;
        return d_reports(d, &c->u.node_state.reports, &c->u.node_state.n_reports);
    case CMAP_CMD_NODE_WEIGHT:
        if ((rc = mpk_dec_tuple(&d->k, 2, "body")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, c->u.node_weight.id, CMAP_ID_MAX, "id")) != DV_OK)
            return rc;
        return d_weight(d, &c->u.node_weight.weight);
    case CMAP_CMD_NODE_REMOVE:
        if ((rc = mpk_dec_tuple(&d->k, 2, "body")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, c->u.node_remove.id, CMAP_ID_MAX, "id")) != DV_OK)
            return rc;
        TRY(mpk_dec_bool(&d->k, &c->u.node_remove.force, "force"));
        return DV_OK;
    case CMAP_CMD_COLL_CREATE:
        return d_create(d);
    case CMAP_CMD_COLL_DROP:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")) != DV_OK)
            return rc;
        return mpk_dec_strcpy(&d->k, c->u.coll_drop.name, CMAP_NAME_MAX, "name");
    case CMAP_CMD_PART_SET: {
        typeof(c->u.part_set) *ps = &c->u.part_set;
        if ((rc = mpk_dec_tuple(&d->k, 5, "body")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, ps->coll, CMAP_NAME_MAX, "collection")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &ps->part, "partition")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &ps->expect_epoch, "expect_epoch"));
        if ((rc = mpk_dec_u32(&d->k, &ps->primary, "primary")) != DV_OK ||
            (rc = mpk_dec_list(&d->k, &ps->n, 1, CMAP_MAX_REPLICAS, "replicas")) != DV_OK)
            return rc;
        for (uint32_t k = 0; k < ps->n; k++)
            if ((rc = mpk_dec_strcpy(&d->k, ps->nodes[k], CMAP_ID_MAX, "replica")) != DV_OK)
                return rc;
        return DV_OK;
    }
    case CMAP_CMD_MOVE_ADD:
    case CMAP_CMD_MOVE_UPDATE:
    case CMAP_CMD_MOVE_REMOVE: {
        uint32_t state;
        if ((rc = mpk_dec_tuple(&d->k, 5, "body")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, c->u.move.coll, CMAP_NAME_MAX, "collection")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &c->u.move.part, "partition")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, c->u.move.from, CMAP_ID_MAX, "from")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, c->u.move.to, CMAP_ID_MAX, "to")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &state, "state")) != DV_OK)
            return rc;
        if (state > INT32_MAX)
            return dfail(d, DV_ERANGE, "state");
        c->u.move.state = (int)state;
        return DV_OK;
    }
    case CMAP_CMD_COORD_SET: {
        uint32_t role;
        if ((rc = mpk_dec_tuple(&d->k, 4, "body")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &c->u.coord_set.id, "id"));
        if ((rc = mpk_dec_strcpy(&d->k, c->u.coord_set.raft_addr, CMAP_URL_MAX, "raft_addr")) !=
                DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, c->u.coord_set.client_url, CMAP_URL_MAX, "client_url")) !=
                DV_OK ||
            (rc = mpk_dec_u32(&d->k, &role, "role")) != DV_OK)
            return rc;
        if (role > INT32_MAX)
            return dfail(d, DV_ERANGE, "role");
        c->u.coord_set.role = (int)role;
        return DV_OK;
    }
    case CMAP_CMD_COORD_REMOVE:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &c->u.coord_remove.id, "id"));
        return DV_OK;
    case CMAP_CMD_SETTINGS: {
        typeof(c->u.settings) *st = &c->u.settings;
        if ((rc = mpk_dec_tuple(&d->k, 5, "body")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &st->mask, "mask")) != DV_OK)
            return rc;
        TRY(mpk_dec_bool(&d->k, &st->set.paused, "paused"));
        TRY(mpk_dec_bool(&d->k, &st->set.auto_rebalance, "auto"));
        TRY(mpk_dec_u64(&d->k, &st->set.rate, "rate"));
        return mpk_dec_u32(&d->k, &st->set.moves_per_node, "moves_per_node");
    }
    case CMAP_CMD_REPLICA_STATE: {
        typeof(c->u.replica_state) *x = &c->u.replica_state;
        uint32_t state;
        if ((rc = mpk_dec_tuple(&d->k, 6, "body")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, x->coll, CMAP_NAME_MAX, "collection")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &x->part, "partition")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, x->node, CMAP_ID_MAX, "node")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &state, "state")) != DV_OK)
            return rc;
        if (state > INT32_MAX)
            return dfail(d, DV_ERANGE, "state");
        x->state = (int)state;
        TRY(mpk_dec_u64(&d->k, &x->expect_term, "expect_term"));
        TRY(mpk_dec_u64(&d->k, &x->expect_epoch, "expect_epoch"));
        return DV_OK;
    }
    case CMAP_CMD_REPLICA_ADD:
    case CMAP_CMD_REPLICA_REMOVE: {
        typeof(c->u.replica_op) *x = &c->u.replica_op;
        if ((rc = mpk_dec_tuple(&d->k, 4, "body")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, x->coll, CMAP_NAME_MAX, "collection")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &x->part, "partition")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, x->node, CMAP_ID_MAX, "node")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &x->expect_term, "expect_term"));
        return DV_OK;
    }
    case CMAP_CMD_COLL_SET: {
        typeof(c->u.coll_set) *x = &c->u.coll_set;
        uint32_t n;
        if (mpk_array(&d->k.r, &n) != DV_OK || n < 3 || n > 4)
            return mpk_dec_fail(&d->k, DV_ECORRUPT, "body");
        x->ef_search = 0;
        if ((rc = mpk_dec_strcpy(&d->k, x->name, CMAP_NAME_MAX, "name")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &x->rf, "replication")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &x->wcf, "write_consistency_factor")) != DV_OK ||
            (n == 4 && (rc = mpk_dec_u32(&d->k, &x->ef_search, "ef_search")) != DV_OK))
            return rc;
        return DV_OK;
    }
    case CMAP_CMD_ALIAS:
        return cmap_alias_read(&d->k, c);
    case CMAP_CMD_COLL_INDEX:
        return cmap_index_read(&d->k, c);
    case CMAP_CMD_REPLICA_MOVE: {
        typeof(c->u.replica_move) *x = &c->u.replica_move;
        if ((rc = mpk_dec_tuple(&d->k, 5, "body")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, x->coll, CMAP_NAME_MAX, "collection")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &x->part, "partition")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, x->from, CMAP_ID_MAX, "from")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, x->to, CMAP_ID_MAX, "to")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &x->expect_term, "expect_term"));
        return DV_OK;
    }
    case CMAP_CMD_PART_PROMOTE: {
        typeof(c->u.promote) *x = &c->u.promote;
        if ((rc = mpk_dec_tuple(&d->k, 4, "body")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, x->coll, CMAP_NAME_MAX, "collection")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &x->part, "partition")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, x->node, CMAP_ID_MAX, "node")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &x->expect_term, "expect_term"));
        return DV_OK;
    }
    default:
        return dfail(d, DV_EINVAL, "type");
    }
}

/* After the value: only zero padding, fewer than 8 bytes of it. */
static int d_padding(struct dec *d)
{
    size_t left = (size_t)(d->k.r.end - d->k.r.p);
    if (left >= 8)
        return dfail(d, DV_ECORRUPT, "padding");
    for (size_t i = 0; i < left; i++)
        if (d->k.r.p[i] != 0)
            return dfail(d, DV_ECORRUPT, "padding");
    return DV_OK;
}

/* The envelope: [version, type, req_hi, req_lo, ...]; leaves the reader at the body. */
static int d_head(struct dec *d, int *type, struct cmap_reqid *req)
{
    uint64_t v, t;
    int rc;
    if ((rc = mpk_dec_tuple(&d->k, 5, "envelope")) != DV_OK)
        return rc;
    TRY(mpk_dec_u64(&d->k, &v, "version"));
    if (v != CMAP_CMD_VERSION)
        return dfail(d, DV_EUNSUPPORTED, "version");
    TRY(mpk_dec_u64(&d->k, &t, "type"));
    if (t == 0 || t >= CMAP_CMD_TYPE_COUNT)
        return dfail(d, DV_EINVAL, "type");
    *type = (int)t;
    TRY(mpk_dec_u64(&d->k, &req->hi, "request id"));
    TRY(mpk_dec_u64(&d->k, &req->lo, "request id"));
    return DV_OK;
}

int cmap_cmd_decode(const void *p, size_t n, struct cmap_cmd *cmd, char *errmsg)
{
    struct dec d = {.k = {.errmsg = errmsg, .fail = cmd_fail}, .cmd = cmd};
    int rc;
    memset(cmd, 0, sizeof *cmd);
    if (n > CMAP_MAX_ENTRY) {
        dv_errmsg_set(errmsg, "cmap: command of %zu bytes, at most %u", n, CMAP_MAX_ENTRY);
        return DV_EPROTO;
    }
    mpk_init(&d.k.r, p, n);
    if ((rc = d_head(&d, &cmd->type, &cmd->req)) != DV_OK)
        goto err;
    if (cmd->type == CMAP_CMD_BATCH) {
        rc = dfail(&d, DV_EINVAL, "type (a batch is not one command)");
        goto err;
    }
    if ((rc = d_body(&d)) != DV_OK || (rc = d_padding(&d)) != DV_OK)
        goto err;
    return DV_OK;
err:
    cmap_cmd_free(cmd);
    return rc;
}

void cmap_cmd_free(struct cmap_cmd *cmd)
{
    switch (cmd->type) {
    case CMAP_CMD_NODE_REGISTER:
        cmap_reports_free(cmd->u.reg.reports, cmd->u.reg.n_reports);
        break;
    case CMAP_CMD_NODE_STATE:
        cmap_reports_free(cmd->u.node_state.reports, cmd->u.node_state.n_reports);
        break;
    case CMAP_CMD_COLL_CREATE:
        free(cmd->u.coll_create.node_ids);
        free(cmd->u.coll_create.parts);
        break;
    case CMAP_CMD_ALIAS:
        free(cmd->u.alias.acts);
        break;
    default:
        break;
    }
    memset(cmd, 0, sizeof *cmd);
}

/* ---- batches ----------------------------------------------------------------------------- */

int cmap_batch_open(const void *p, size_t n, const uint8_t **items, size_t *len, uint32_t *count,
                    char *errmsg)
{
    struct cmap_cmd head = {0};
    struct dec dd = {.k = {.errmsg = errmsg, .fail = cmd_fail}, .cmd = &head}, *d = &dd;
    uint32_t k;
    int rc;
    if (n > CMAP_MAX_ENTRY) {
        dv_errmsg_set(errmsg, "cmap: entry of %zu bytes, at most %u", n, CMAP_MAX_ENTRY);
        return DV_EPROTO;
    }
    mpk_init(&d->k.r, p, n);
    if ((rc = d_head(d, &head.type, &head.req)) != DV_OK)
        return rc;
    if (head.type != CMAP_CMD_BATCH)
        return DV_ENOTFOUND;
    /* A command takes at least 6 bytes: [1, type, hi, lo, []]. */
    if ((rc = mpk_dec_list(&d->k, &k, 6, 65536, "commands")) != DV_OK)
        return rc;
    if (k == 0)
        return dfail(d, DV_ECORRUPT, "commands (none)");
    const uint8_t *first = d->k.r.p;
    for (uint32_t i = 0; i < k; i++) {
        const uint8_t *s;
        size_t sz;
        if ((rc = mpk_span(&d->k.r, &s, &sz)) != DV_OK)
            return dfail(d, rc, "command");
    }
    *items = first;
    *len = (size_t)(d->k.r.p - first);
    if ((rc = d_padding(d)) != DV_OK)
        return rc;
    *count = k;
    return DV_OK;
}

int cmap_batch_pack(const void *const *cmds, const size_t *lens, size_t n, struct buf *out,
                    char *errmsg)
{
    if (n < 1 || n > 65536) {
        dv_errmsg_set(errmsg, "cmap: a batch holds 1..65536 commands, not %zu", n);
        return DV_EINVAL;
    }
    size_t start = out->len;
    int rc;
    W(mpw_array(out, 5));
    W(mpw_u64(out, CMAP_CMD_VERSION));
    W(mpw_u64(out, CMAP_CMD_BATCH));
    W(mpw_u64(out, 0));
    W(mpw_u64(out, 0));
    W(mpw_array(out, (uint32_t)n));
    for (size_t i = 0; i < n; i++) {
        /* Each input: one command envelope (not a batch), then only zero padding. */
        struct cmap_cmd head = {0};
        struct dec d = {.k = {.errmsg = errmsg, .fail = cmd_fail}, .cmd = &head};
        const uint8_t *s;
        size_t sz;
        mpk_init(&d.k.r, cmds[i], lens[i]);
        struct mpk at = d.k.r;
        if (d_head(&d, &head.type, &head.req) != DV_OK || head.type == CMAP_CMD_BATCH ||
            mpk_span(&at, &s, &sz) != DV_OK) {
            dv_errmsg_set(errmsg, "cmap: batch: command %zu is not one encoded command", i);
            rc = DV_EINVAL;
            goto err;
        }
        d.k.r = at;
        if (d_padding(&d) != DV_OK) {
            dv_errmsg_set(errmsg, "cmap: batch: command %zu has bytes after it", i);
            rc = DV_EINVAL;
            goto err;
        }
        W(mpw_raw(out, s, sz));
        if (out->len - start > CMAP_MAX_ENTRY - 8) {
            dv_errmsg_set(errmsg, "cmap: batch larger than %u bytes", CMAP_MAX_ENTRY);
            rc = DV_ETOOBIG;
            goto err;
        }
    }
    W(pad8(out, start));
    return DV_OK;
err:
    if (rc == DV_ENOMEM)
        dv_errmsg_set(errmsg, "cmap: batch: out of memory");
    out->len = start;
    return rc;
}
