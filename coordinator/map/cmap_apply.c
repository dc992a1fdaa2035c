/* cmap_apply.c - applying commands to the cluster map: validation, effects, request-id memory. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmap.h"
#include "cmap_int.h"
#include "err.h"
#include "mpk.h"

/*
 * Every command is applied all or nothing: it is checked completely and everything it needs
 * is allocated before the map changes, so the only failure, DV_ENOMEM, leaves the map as it
 * was. The result of a command depends only on the map and the command (never on time,
 * addresses or allocation), which keeps the maps of all coordinators identical.
 */

/* Success: the map epoch moves on. */
static void ok(struct cmap *m, struct cmap_result *res)
{
    m->epoch++;
    res->code = DV_OK;
    res->dup = false;
    res->epoch = m->epoch;
    res->msg[0] = '\0';
}

/* Records a failed command in `res` and returns DV_OK: applying it went well. */
static int fail(const struct cmap *m, struct cmap_result *res, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(const struct cmap *m, struct cmap_result *res, int code, const char *fmt, ...)
{
    va_list ap;
    res->code = code;
    res->dup = false;
    res->epoch = m->epoch;
    va_start(ap, fmt);
    vsnprintf(res->msg, sizeof res->msg, fmt, ap);
    va_end(ap);
    return DV_OK;
}

void cmap_apply_ok(struct cmap *m, struct cmap_result *res)
{
    ok(m, res);
}

int cmap_apply_fail(const struct cmap *m, struct cmap_result *res, int code, const char *fmt, ...)
{
    va_list ap;
    res->code = code;
    res->dup = false;
    res->epoch = m->epoch;
    va_start(ap, fmt);
    vsnprintf(res->msg, sizeof res->msg, fmt, ap);
    va_end(ap);
    return DV_OK;
}

static struct cmap_node *node_mut(struct cmap *m, const char *id)
{
    return (struct cmap_node *)cmap_node_find(m, id);
}

static struct cmap_coll *coll_mut(struct cmap *m, const char *name)
{
    return (struct cmap_coll *)cmap_coll_find(m, name);
}

/* Checks reported replicas; false with a result when one is malformed. */
static bool reports_ok(const struct cmap *m, const struct cmap_report *r, uint32_t n,
                       struct cmap_result *res)
{
    if (n > CMAP_MAX_REPORTS) {
        fail(m, res, DV_EINVAL, "%u reported replicas, at most %u", n, CMAP_MAX_REPORTS);
        return false;
    }
    for (uint32_t i = 0; i < n; i++)
        if (!r[i].coll || !cmap_name_valid(r[i].coll)) {
            fail(m, res, DV_EINVAL, "reported replica %u: bad collection name", i);
            return false;
        }
    return true;
}

/* A node named by a command that must exist and not be removed; NULL with a result if not. */
static struct cmap_node *live_node(struct cmap *m, const char *id, struct cmap_result *res)
{
    struct cmap_node *n = node_mut(m, id);
    if (!n) {
        fail(m, res, DV_ENOTFOUND, "node \"%.64s\" not found", id);
        return NULL;
    }
    if (n->state == CMAP_NODE_REMOVED) {
        fail(m, res, DV_EINVAL, "node \"%.64s\" is removed", id);
        return NULL;
    }
    return n;
}

/* ---- nodes ------------------------------------------------------------------------------- */

static int node_register(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.reg) *c = &cmd->u.reg;
    if (!cmap_id_valid(c->id))
        return fail(m, res, DV_EINVAL, "bad node id");
    if (!cmap_url_valid(c->url, false) || !cmap_url_valid(c->http_url, true) ||
        !cmap_url_valid(c->search_url, true))
        return fail(m, res, DV_EINVAL, "node \"%s\": bad url", c->id);
    if (!cmap_weight_valid(c->weight))
        return fail(m, res, DV_EINVAL, "node \"%s\": weight must be finite and > 0", c->id);
    if (c->state != CMAP_NODE_JOINING && c->state != CMAP_NODE_ALIVE)
        return fail(m, res, DV_EINVAL, "node \"%s\": registers as joining or alive", c->id);
    if (!reports_ok(m, c->reports, c->n_reports, res))
        return DV_OK;

    struct cmap_report *reports;
    if (cmap_reports_copy(c->reports, c->n_reports, &reports) != DV_OK)
        return DV_ENOMEM;

    bool found;
    uint32_t slot = cmap_node_slot(m, c->id, &found);
    struct cmap_node *n;
    if (found) {
        n = &m->nodes[m->by_id[slot]];
        if (n->state == CMAP_NODE_REMOVED)
            n->weight = c->weight;
        if (n->state != CMAP_NODE_DRAINING)
            n->state = c->state;
    } else {
        if (m->n_nodes >= CMAP_MAX_NODES) {
            cmap_reports_free(reports, c->n_reports);
            return fail(m, res, DV_EFULL, "the map holds %u nodes already", m->n_nodes);
        }
        /* by_id always has room for at least cap_nodes entries: grow it first, so that a
         * failure in between leaves it larger, never smaller. */
        uint32_t cap_by_id = m->cap_nodes, cap_nodes = m->cap_nodes;
        if (cmap_grow((void **)&m->by_id, &cap_by_id, m->n_nodes + 1, sizeof *m->by_id) != DV_OK ||
            cmap_grow((void **)&m->nodes, &cap_nodes, m->n_nodes + 1, sizeof *m->nodes) != DV_OK) {
            cmap_reports_free(reports, c->n_reports);
            return DV_ENOMEM;
        }
        m->cap_nodes = cap_nodes;
        n = &m->nodes[m->n_nodes];
        memset(n, 0, sizeof *n);
        n->num = m->n_nodes;
        cmap_strlcpy(n->id, c->id, sizeof n->id);
        n->weight = c->weight;
        n->state = c->state;
        memmove(&m->by_id[slot + 1], &m->by_id[slot], (m->n_nodes - slot) * sizeof *m->by_id);
        m->by_id[slot] = n->num;
        m->n_nodes++;
    }
    cmap_strlcpy(n->url, c->url, sizeof n->url);
    cmap_strlcpy(n->http_url, c->http_url, sizeof n->http_url);
    cmap_strlcpy(n->search_url, c->search_url, sizeof n->search_url);
    if (c->heartbeat_ms)
        n->heartbeat_ms = c->heartbeat_ms;
    cmap_reports_free(n->reports, n->n_reports);
    n->reports = reports;
    n->n_reports = c->n_reports;
    ok(m, res);
    return DV_OK;
}

static int node_state(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.node_state) *c = &cmd->u.node_state;
    struct cmap_node *n = live_node(m, c->id, res);
    if (!n)
        return DV_OK;
    if (c->state != CMAP_NODE_KEEP && c->state != CMAP_NODE_ALIVE &&
        c->state != CMAP_NODE_SUSPECT && c->state != CMAP_NODE_DEAD &&
        c->state != CMAP_NODE_DRAINING)
        return fail(m, res, DV_EINVAL, "node \"%s\": cannot be set %s", c->id,
                    cmap_node_state_name(c->state));
    struct cmap_report *reports = NULL;
    if (c->has_reports) {
        if (!reports_ok(m, c->reports, c->n_reports, res))
            return DV_OK;
        if (cmap_reports_copy(c->reports, c->n_reports, &reports) != DV_OK)
            return DV_ENOMEM;
    }
    if (c->state != CMAP_NODE_KEEP)
        n->state = c->state;
    if (c->heartbeat_ms)
        n->heartbeat_ms = c->heartbeat_ms;
    if (c->has_reports) {
        cmap_reports_free(n->reports, n->n_reports);
        n->reports = reports;
        n->n_reports = c->n_reports;
    }
    ok(m, res);
    return DV_OK;
}

static int node_weight(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.node_weight) *c = &cmd->u.node_weight;
    struct cmap_node *n = live_node(m, c->id, res);
    if (!n)
        return DV_OK;
    if (!cmap_weight_valid(c->weight))
        return fail(m, res, DV_EINVAL, "node \"%s\": weight must be finite and > 0", c->id);
    n->weight = c->weight;
    ok(m, res);
    return DV_OK;
}

/* Number of partition replicas placed on node `num`. */
static uint32_t held_count(const struct cmap *m, uint32_t num)
{
    uint32_t count = 0;
    for (uint32_t c = 0; c < m->n_colls; c++)
        for (uint32_t p = 0; p < m->colls[c]->cfg.n_parts; p++) {
            const struct cmap_part *part = &m->colls[c]->parts[p];
            for (uint32_t k = 0; k < part->n; k++)
                count += part->nodes[k] == num;
        }
    return count;
}

static int node_remove(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.node_remove) *c = &cmd->u.node_remove;
    struct cmap_node *n = node_mut(m, c->id);
    if (!n)
        return fail(m, res, DV_ENOTFOUND, "node \"%.64s\" not found", c->id);
    uint32_t held = held_count(m, n->num);
    if (held && !c->force)
        return fail(m, res, DV_EBUSY, "node \"%s\" still holds %u replicas", c->id, held);
    uint64_t epoch = m->epoch + 1;
    for (uint32_t ci = 0; ci < m->n_colls && held; ci++)
        for (uint32_t p = 0; p < m->colls[ci]->cfg.n_parts; p++) {
            struct cmap_part *part = &m->colls[ci]->parts[p];
            uint32_t k = 0;
            while (k < part->n && part->nodes[k] != n->num)
                k++;
            if (k == part->n)
                continue;
            memmove(&part->nodes[k], &part->nodes[k + 1], (part->n - k - 1) * sizeof(uint32_t));
            memmove(&part->state[k], &part->state[k + 1], part->n - k - 1);
            part->n--;
            part->state[part->n] = 0;
            if (part->primary == n->num) {
                /* The first in-sync replica takes over; none left: no primary. */
                part->primary = CMAP_NONE;
                for (uint32_t j = 0; j < part->n && part->primary == CMAP_NONE; j++)
                    if (part->state[j] == CMAP_REPLICA_ACTIVE)
                        part->primary = part->nodes[j];
                part->term++;
            }
            part->epoch = epoch;
        }
    for (uint32_t i = 0; i < m->n_moves; i++) {
        struct cmap_move *mv = &m->moves[i];
        if ((mv->from == n->num || mv->to == n->num) && mv->state != CMAP_MOVE_DONE &&
            mv->state != CMAP_MOVE_FAILED) {
            mv->state = CMAP_MOVE_FAILED;
            mv->epoch = epoch;
        }
    }
    n->state = CMAP_NODE_REMOVED;
    cmap_reports_free(n->reports, n->n_reports);
    n->reports = NULL;
    n->n_reports = 0;
    ok(m, res);
    return DV_OK;
}

/* ---- collections ------------------------------------------------------------------------- */

static int coll_create(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.coll_create) *c = &cmd->u.coll_create;
    if (!cmap_name_valid(c->name))
        return fail(m, res, DV_EINVAL, "bad collection name");
    bool found;
    uint32_t slot = cmap_coll_slot(m, c->name, &found);
    if (found)
        return fail(m, res, DV_EEXIST, "collection \"%s\" exists", c->name);
    if (cmap_alias_find(m, c->name))
        return fail(m, res, DV_EEXIST, "an alias is named \"%s\"", c->name);
    char why[CMAP_MSG_MAX];
    struct cmap_coll_cfg cfg = c->cfg;
    if (cfg.write_consistency_factor == 0)
        cfg.write_consistency_factor = 1;
    if (!cmap_cfg_valid(&cfg, why))
        return fail(m, res, DV_EINVAL, "collection \"%s\": %s", c->name, why);
    if (m->n_colls >= CMAP_MAX_COLLS)
        return fail(m, res, DV_EFULL, "the map holds %u collections already", m->n_colls);
    if (c->n_node_ids > CMAP_MAX_NODES || (c->n_node_ids && !c->node_ids) || !c->parts)
        return fail(m, res, DV_EINVAL, "collection \"%s\": no placement", c->name);

    uint32_t *nums = malloc((c->n_node_ids ? c->n_node_ids : 1) * sizeof *nums);
    if (!nums)
        return DV_ENOMEM;
    for (uint32_t i = 0; i < c->n_node_ids; i++) {
        const struct cmap_node *n = live_node(m, c->node_ids[i], res);
        if (!n) {
            free(nums);
            return DV_OK;
        }
        nums[i] = n->num;
    }
    for (uint32_t p = 0; p < c->cfg.n_parts; p++) {
        const struct cmap_cmd_part *cp = &c->parts[p];
        if (cp->n < 1 || cp->n > c->cfg.rf || cp->primary >= cp->n) {
            free(nums);
            return fail(m, res, DV_EINVAL,
                        "collection \"%s\" partition %u: %u replicas for replication factor %u",
                        c->name, p, cp->n, c->cfg.rf);
        }
        for (uint32_t k = 0; k < cp->n; k++) {
            bool dup = cp->nodes[k] >= c->n_node_ids;
            for (uint32_t j = 0; j < k && !dup; j++)
                dup = nums[cp->nodes[j]] == nums[cp->nodes[k]];
            if (dup) {
                free(nums);
                return fail(m, res, DV_EINVAL,
                            "collection \"%s\" partition %u: bad or repeated node", c->name, p);
            }
        }
    }

    struct cmap_coll *coll = calloc(1, sizeof *coll);
    if (!coll || !(coll->parts = calloc(c->cfg.n_parts, sizeof *coll->parts)) ||
        cmap_grow((void **)&m->colls, &m->cap_colls, m->n_colls + 1, sizeof *m->colls) != DV_OK) {
        cmap_coll_destroy(coll);
        free(nums);
        return DV_ENOMEM;
    }
    uint64_t epoch = m->epoch + 1;
    cmap_strlcpy(coll->name, c->name, sizeof coll->name);
    coll->cfg = cfg;
    coll->epoch = epoch;
    for (uint32_t p = 0; p < c->cfg.n_parts; p++) {
        const struct cmap_cmd_part *cp = &c->parts[p];
        struct cmap_part *part = &coll->parts[p];
        memset(part, 0, sizeof *part); /* every replica ACTIVE */
        part->epoch = epoch;
        part->term = 1;
        part->n = cp->n;
        for (uint32_t k = 0; k < cp->n; k++)
            part->nodes[k] = nums[cp->nodes[k]];
        part->primary = part->nodes[cp->primary];
    }
    free(nums);
    memmove(&m->colls[slot + 1], &m->colls[slot], (m->n_colls - slot) * sizeof *m->colls);
    m->colls[slot] = coll;
    m->n_colls++;
    ok(m, res);
    return DV_OK;
}

static int coll_drop(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const char *name = cmd->u.coll_drop.name;
    bool found;
    uint32_t slot = cmap_coll_slot(m, name, &found);
    if (!found)
        return fail(m, res, DV_ENOTFOUND, "collection \"%.128s\" not found", name);
    cmap_coll_destroy(m->colls[slot]);
    memmove(&m->colls[slot], &m->colls[slot + 1], (m->n_colls - slot - 1) * sizeof *m->colls);
    m->n_colls--;
    uint32_t j = 0;
    for (uint32_t i = 0; i < m->n_moves; i++)
        if (strcmp(m->moves[i].coll, name) != 0)
            m->moves[j++] = m->moves[i];
    m->n_moves = j;
    cmap_alias_drop_coll(m, name);
    ok(m, res);
    return DV_OK;
}

/* Partition `part` of collection `coll`, or NULL with a result. */
static struct cmap_part *part_mut(struct cmap *m, const char *coll, uint32_t part,
                                  struct cmap_result *res)
{
    struct cmap_coll *c = coll_mut(m, coll);
    if (!c) {
        fail(m, res, DV_ENOTFOUND, "collection \"%.128s\" not found", coll);
        return NULL;
    }
    if (part >= c->cfg.n_parts) {
        fail(m, res, DV_ENOTFOUND, "collection \"%s\" has no partition %u", coll, part);
        return NULL;
    }
    return &c->parts[part];
}

static int part_set(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.part_set) *c = &cmd->u.part_set;
    struct cmap_part *part = part_mut(m, c->coll, c->part, res);
    if (!part)
        return DV_OK;
    if (c->expect_epoch && c->expect_epoch != part->epoch)
        return fail(m, res, DV_ESTALE, "collection \"%s\" partition %u: epoch %llu, not %llu",
                    c->coll, c->part, (unsigned long long)part->epoch,
                    (unsigned long long)c->expect_epoch);
    if (c->n < 1 || c->n > CMAP_MAX_REPLICAS || c->primary >= c->n)
        return fail(m, res, DV_EINVAL, "collection \"%s\" partition %u: %u replicas", c->coll,
                    c->part, c->n);
    uint32_t nums[CMAP_MAX_REPLICAS];
    for (uint32_t k = 0; k < c->n; k++) {
        const struct cmap_node *n = live_node(m, c->nodes[k], res);
        if (!n)
            return DV_OK;
        nums[k] = n->num;
        for (uint32_t j = 0; j < k; j++)
            if (nums[j] == nums[k])
                return fail(m, res, DV_EINVAL, "node \"%s\" named twice", c->nodes[k]);
    }
    /* Nodes that stay keep their state, new ones are in-sync; the primary is in-sync. */
    uint8_t state[CMAP_MAX_REPLICAS] = {0};
    for (uint32_t k = 0; k < c->n; k++)
        for (uint32_t j = 0; j < part->n; j++)
            if (part->nodes[j] == nums[k])
                state[k] = part->state[j];
    state[c->primary] = CMAP_REPLICA_ACTIVE;
    if (part->primary != nums[c->primary])
        part->term++;
    part->n = c->n;
    memcpy(part->nodes, nums, c->n * sizeof nums[0]);
    memcpy(part->state, state, sizeof state);
    part->primary = nums[c->primary];
    part->epoch = m->epoch + 1;
    ok(m, res);
    return DV_OK;
}

/* Partition `part` of `coll` when its term is `expect_term` (0: any), or NULL with a result
 * (DV_ENOTFOUND, DV_ESTALE naming both terms). */
static struct cmap_part *part_at_term(struct cmap *m, const char *coll, uint32_t part,
                                      uint64_t expect_term, struct cmap_result *res)
{
    struct cmap_part *pt = part_mut(m, coll, part, res);
    if (pt && expect_term && expect_term != pt->term) {
        fail(m, res, DV_ESTALE, "collection \"%s\" partition %u: term %llu, not %llu", coll, part,
             (unsigned long long)pt->term, (unsigned long long)expect_term);
        return NULL;
    }
    return pt;
}

/* The index of node `num` among the partition's replicas, UINT32_MAX when not there. */
static uint32_t replica_at(const struct cmap_part *pt, uint32_t num)
{
    for (uint32_t k = 0; k < pt->n; k++)
        if (pt->nodes[k] == num)
            return k;
    return UINT32_MAX;
}

static int replica_state(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.replica_state) *c = &cmd->u.replica_state;
    struct cmap_part *pt = part_at_term(m, c->coll, c->part, c->expect_term, res);
    if (!pt)
        return DV_OK;
    if (c->expect_epoch && c->expect_epoch != pt->epoch)
        return fail(m, res, DV_ESTALE, "collection \"%s\" partition %u: epoch %llu, not %llu",
                    c->coll, c->part, (unsigned long long)pt->epoch,
                    (unsigned long long)c->expect_epoch);
    if (c->state < 0 || c->state >= CMAP_REPLICA_STATE_COUNT)
        return fail(m, res, DV_EINVAL, "unknown replica state %d", c->state);
    const struct cmap_node *n = node_mut(m, c->node);
    uint32_t k = n ? replica_at(pt, n->num) : UINT32_MAX;
    if (k == UINT32_MAX)
        return fail(m, res, DV_ENOTFOUND, "collection \"%s\" partition %u has no replica on %.64s",
                    c->coll, c->part, c->node);
    if (pt->primary == n->num && c->state != CMAP_REPLICA_ACTIVE)
        return fail(m, res, DV_EINVAL,
                    "collection \"%s\" partition %u: %s is the primary; promote another replica "
                    "first",
                    c->coll, c->part, c->node);
    if (pt->state[k] != c->state) {
        pt->state[k] = (uint8_t)c->state;
        if (pt->primary == CMAP_NONE && c->state == CMAP_REPLICA_ACTIVE) {
            pt->primary = n->num; /* a partition without an in-sync replica regains one */
            pt->term++;
        }
        pt->epoch = m->epoch + 1;
    }
    ok(m, res);
    return DV_OK;
}

static int replica_move(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.replica_move) *c = &cmd->u.replica_move;
    struct cmap_part *pt = part_at_term(m, c->coll, c->part, c->expect_term, res);
    if (!pt)
        return DV_OK;
    const struct cmap_node *from = node_mut(m, c->from), *to = node_mut(m, c->to);
    uint32_t k = from ? replica_at(pt, from->num) : UINT32_MAX;
    if (k == UINT32_MAX)
        return fail(m, res, DV_ENOTFOUND, "collection \"%s\" partition %u has no replica on %.64s",
                    c->coll, c->part, c->from);
    if (pt->primary == from->num)
        return fail(m, res, DV_EINVAL,
                    "collection \"%s\" partition %u: %s is the primary; promote another replica "
                    "first",
                    c->coll, c->part, c->from);
    if (to == NULL || to->state == CMAP_NODE_REMOVED || replica_at(pt, to->num) != UINT32_MAX)
        return fail(m, res, DV_EINVAL, "collection \"%s\" partition %u: node %.64s is %s", c->coll,
                    c->part, c->to,
                    to == NULL                       ? "unknown"
                    : to->state == CMAP_NODE_REMOVED ? "removed"
                                                     : "a replica already");
    pt->nodes[k] = to->num;
    pt->state[k] = CMAP_REPLICA_DEAD; /* copied from the primary by the leader's recovery */
    pt->epoch = m->epoch + 1;
    ok(m, res);
    return DV_OK;
}

static int replica_op(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.replica_op) *c = &cmd->u.replica_op;
    struct cmap_part *pt = part_at_term(m, c->coll, c->part, c->expect_term, res);
    if (!pt)
        return DV_OK;
    const struct cmap_node *n = node_mut(m, c->node);
    uint32_t k = n ? replica_at(pt, n->num) : UINT32_MAX;
    if (cmd->type == CMAP_CMD_REPLICA_ADD) {
        if (n == NULL || n->state == CMAP_NODE_REMOVED || k != UINT32_MAX)
            return fail(m, res, DV_EINVAL, "collection \"%s\" partition %u: node %.64s is %s",
                        c->coll, c->part, c->node,
                        n == NULL                       ? "unknown"
                        : n->state == CMAP_NODE_REMOVED ? "removed"
                                                        : "a replica already");
        if (pt->n >= CMAP_MAX_REPLICAS)
            return fail(m, res, DV_EFULL, "collection \"%s\" partition %u has %u replicas", c->coll,
                        c->part, pt->n);
        pt->nodes[pt->n] = n->num;
        pt->state[pt->n] = CMAP_REPLICA_DEAD; /* copied from the primary by the recovery */
        pt->n++;
    } else {
        if (k == UINT32_MAX)
            return fail(m, res, DV_ENOTFOUND,
                        "collection \"%s\" partition %u has no replica on %.64s", c->coll, c->part,
                        c->node);
        if (pt->primary == n->num)
            return fail(m, res, DV_EINVAL,
                        "collection \"%s\" partition %u: %s is the primary; promote another "
                        "replica first",
                        c->coll, c->part, c->node);
        memmove(&pt->nodes[k], &pt->nodes[k + 1], (pt->n - k - 1) * sizeof pt->nodes[0]);
        memmove(&pt->state[k], &pt->state[k + 1], pt->n - k - 1);
        pt->n--;
        pt->state[pt->n] = 0;
    }
    pt->epoch = m->epoch + 1;
    ok(m, res);
    return DV_OK;
}

static int coll_set(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.coll_set) *c = &cmd->u.coll_set;
    struct cmap_coll *coll = coll_mut(m, c->name);
    if (!coll)
        return fail(m, res, DV_ENOTFOUND, "collection \"%.128s\" not found", c->name);
    if (c->rf > CMAP_MAX_RF || c->wcf > CMAP_MAX_RF)
        return fail(m, res, DV_EINVAL,
                    "collection \"%s\": replication factor %u and write_consistency_factor %u "
                    "must be 1 to %u",
                    c->name, c->rf, c->wcf, CMAP_MAX_RF);
    if (c->ef_search > PROTO_MAX_CFG_EF)
        return fail(m, res, DV_EINVAL, "collection \"%s\": ef_search %u must be 1 to %u", c->name,
                    c->ef_search, PROTO_MAX_CFG_EF);
    if (c->rf)
        coll->cfg.rf = c->rf;
    if (c->ef_search)
        coll->cfg.ef_search = c->ef_search;
    if (c->wcf)
        coll->cfg.write_consistency_factor = c->wcf;
    ok(m, res);
    return DV_OK;
}

static int part_promote(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.promote) *c = &cmd->u.promote;
    struct cmap_part *pt = part_at_term(m, c->coll, c->part, c->expect_term, res);
    if (!pt)
        return DV_OK;
    const struct cmap_node *n = node_mut(m, c->node);
    uint32_t k = n ? replica_at(pt, n->num) : UINT32_MAX;
    if (k == UINT32_MAX)
        return fail(m, res, DV_ENOTFOUND, "collection \"%s\" partition %u has no replica on %.64s",
                    c->coll, c->part, c->node);
    if (pt->state[k] != CMAP_REPLICA_ACTIVE)
        return fail(m, res, DV_EINVAL,
                    "collection \"%s\" partition %u: the replica on %s is %s, not in-sync: it may "
                    "lack acknowledged writes",
                    c->coll, c->part, c->node, cmap_replica_state_name(pt->state[k]));
    if (pt->primary != n->num) {
        uint32_t old = pt->primary == CMAP_NONE ? UINT32_MAX : replica_at(pt, pt->primary);
        if (old != UINT32_MAX)
            pt->state[old] = CMAP_REPLICA_DEAD;
        pt->primary = n->num;
        pt->term++;
        pt->epoch = m->epoch + 1;
    }
    ok(m, res);
    return DV_OK;
}

/* ---- moves ------------------------------------------------------------------------------- */

static int move_apply(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.move) *c = &cmd->u.move;
    if (!part_mut(m, c->coll, c->part, res))
        return DV_OK;
    const struct cmap_node *from = node_mut(m, c->from), *to = node_mut(m, c->to);
    if (!from || !to)
        return fail(m, res, DV_ENOTFOUND, "node \"%.64s\" not found", from ? c->to : c->from);
    if (cmd->type != CMAP_CMD_MOVE_REMOVE && (c->state < 0 || c->state >= CMAP_MOVE_STATE_COUNT))
        return fail(m, res, DV_EINVAL, "unknown move state %d", c->state);
    struct cmap_move *mv =
        (struct cmap_move *)cmap_move_find(m, c->coll, c->part, from->num, to->num);
    switch (cmd->type) {
    case CMAP_CMD_MOVE_ADD:
        if (mv)
            return fail(m, res, DV_EEXIST, "move of %s/%u from %s to %s exists", c->coll, c->part,
                        c->from, c->to);
        if (from->state == CMAP_NODE_REMOVED || to->state == CMAP_NODE_REMOVED || from == to)
            return fail(m, res, DV_EINVAL, "move from %s to %s: bad nodes", c->from, c->to);
        if (m->n_moves >= CMAP_MAX_MOVES)
            return fail(m, res, DV_EFULL, "the map holds %u moves already", m->n_moves);
        if (cmap_grow((void **)&m->moves, &m->cap_moves, m->n_moves + 1, sizeof *m->moves) != DV_OK)
            return DV_ENOMEM;
        mv = &m->moves[m->n_moves++];
        memset(mv, 0, sizeof *mv);
        cmap_strlcpy(mv->coll, c->coll, sizeof mv->coll);
        mv->part = c->part;
        mv->from = from->num;
        mv->to = to->num;
        mv->state = c->state;
        mv->epoch = m->epoch + 1;
        break;
    case CMAP_CMD_MOVE_UPDATE:
        if (!mv)
            return fail(m, res, DV_ENOTFOUND, "no move of %s/%u from %s to %s", c->coll, c->part,
                        c->from, c->to);
        if (mv->state != c->state &&
            (mv->state == CMAP_MOVE_DONE || mv->state == CMAP_MOVE_FAILED ||
             (c->state != CMAP_MOVE_FAILED && c->state < mv->state)))
            return fail(m, res, DV_EINVAL, "move of %s/%u: %s cannot become %s", c->coll, c->part,
                        cmap_move_state_name(mv->state), cmap_move_state_name(c->state));
        if (c->state == CMAP_MOVE_DONE && mv->state != CMAP_MOVE_DONE) {
            /* The switch: the target takes the source's place in the replica list (and its
             * role: primary stays primary), in the same command as the move's end. */
            if (mv->state != CMAP_MOVE_SWITCHING)
                return fail(m, res, DV_EINVAL, "move of %s/%u: %s cannot become done", c->coll,
                            c->part, cmap_move_state_name(mv->state));
            struct cmap_part *pt = part_mut(m, c->coll, c->part, res);
            uint32_t at = UINT32_MAX;
            bool has_to = false;
            for (uint32_t k = 0; k < pt->n; k++) {
                if (pt->nodes[k] == from->num)
                    at = k;
                has_to = has_to || pt->nodes[k] == to->num;
            }
            if (at == UINT32_MAX || has_to)
                return fail(m, res, DV_ESTALE,
                            "move of %s/%u: the partition no longer has a replica on %s only",
                            c->coll, c->part, c->from);
            if (pt->primary == from->num) {
                pt->primary = to->num;
                pt->term++;
            }
            pt->nodes[at] = to->num; /* with from's state */
            pt->epoch = m->epoch + 1;
        }
        mv->state = c->state;
        mv->epoch = m->epoch + 1;
        break;
    default: /* CMAP_CMD_MOVE_REMOVE */
        if (!mv)
            return fail(m, res, DV_ENOTFOUND, "no move of %s/%u from %s to %s", c->coll, c->part,
                        c->from, c->to);
        memmove(mv, mv + 1, (size_t)(&m->moves[m->n_moves] - (mv + 1)) * sizeof *mv);
        m->n_moves--;
        break;
    }
    ok(m, res);
    return DV_OK;
}

/* ---- coordinators ------------------------------------------------------------------------ */

static int coord_set(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.coord_set) *c = &cmd->u.coord_set;
    if (c->id == 0)
        return fail(m, res, DV_EINVAL, "coordinator id must be > 0");
    unsigned long long id = (unsigned long long)c->id;
    if (!cmap_raft_addr_valid(c->raft_addr))
        return fail(m, res, DV_EINVAL, "coordinator %llu: bad raft_addr (host:port)", id);
    if (!cmap_url_valid(c->client_url, false))
        return fail(m, res, DV_EINVAL, "coordinator %llu: bad client_url", id);
    if (c->role < 0 || c->role >= CMAP_COORD_ROLE_COUNT)
        return fail(m, res, DV_EINVAL, "coordinator %llu: unknown role %d", id, c->role);
    for (uint32_t i = 0; i < m->n_coords; i++)
        if (m->coords[i].id != c->id && strcmp(m->coords[i].raft_addr, c->raft_addr) == 0)
            return fail(m, res, DV_EEXIST,
                        "coordinator %llu: raft_addr %.64s is coordinator %llu's", id, c->raft_addr,
                        (unsigned long long)m->coords[i].id);
    bool found;
    uint32_t slot = cmap_coord_slot(m, c->id, &found);
    if (!found) {
        if (m->n_coords >= CMAP_MAX_COORDS)
            return fail(m, res, DV_EFULL, "the map holds %u coordinators already", m->n_coords);
        if (cmap_grow((void **)&m->coords, &m->cap_coords, m->n_coords + 1, sizeof *m->coords) !=
            DV_OK)
            return DV_ENOMEM;
        memmove(&m->coords[slot + 1], &m->coords[slot], (m->n_coords - slot) * sizeof *m->coords);
        m->n_coords++;
        memset(&m->coords[slot], 0, sizeof m->coords[slot]);
        m->coords[slot].id = c->id;
    }
    struct cmap_coord *co = &m->coords[slot];
    cmap_strlcpy(co->raft_addr, c->raft_addr, sizeof co->raft_addr);
    cmap_strlcpy(co->client_url, c->client_url, sizeof co->client_url);
    co->role = c->role;
    ok(m, res);
    return DV_OK;
}

static int coord_remove(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    uint64_t id = cmd->u.coord_remove.id;
    if (id == 0)
        return fail(m, res, DV_EINVAL, "coordinator id must be > 0");
    bool found;
    uint32_t slot = cmap_coord_slot(m, id, &found);
    if (!found)
        return fail(m, res, DV_ENOTFOUND, "coordinator %llu not found", (unsigned long long)id);
    memmove(&m->coords[slot], &m->coords[slot + 1], (m->n_coords - slot - 1) * sizeof *m->coords);
    m->n_coords--;
    ok(m, res);
    return DV_OK;
}

/* ---- settings ---------------------------------------------------------------------------- */

static int settings(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    const typeof(cmd->u.settings) *c = &cmd->u.settings;
    if (c->mask == 0 || (c->mask & ~(uint32_t)CMAP_SET_ALL))
        return fail(m, res, DV_EINVAL, "settings: mask 0x%x names no known setting", c->mask);
    if ((c->mask & CMAP_SET_MOVES_PER_NODE) &&
        (c->set.moves_per_node < 1 || c->set.moves_per_node > CMAP_MAX_MOVES_PER_NODE))
        return fail(m, res, DV_EINVAL, "moves_per_node must be 1 to %d, not %u",
                    CMAP_MAX_MOVES_PER_NODE, c->set.moves_per_node);
    if (c->mask & CMAP_SET_PAUSED)
        m->settings.paused = c->set.paused;
    if (c->mask & CMAP_SET_AUTO)
        m->settings.auto_rebalance = c->set.auto_rebalance;
    if (c->mask & CMAP_SET_RATE)
        m->settings.rate = c->set.rate;
    if (c->mask & CMAP_SET_MOVES_PER_NODE)
        m->settings.moves_per_node = c->set.moves_per_node;
    ok(m, res);
    return DV_OK;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

int cmap_apply_cmd(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res)
{
    memset(res, 0, sizeof *res);
    if (cmd->req.hi == 0 && cmd->req.lo == 0) {
        fail(m, res, DV_EINVAL, "%s: request id is zero", cmap_cmd_type_name(cmd->type));
        return DV_OK;
    }
    const struct cmap_seen *seen = cmap_seen_find(m, &cmd->req);
    if (seen) {
        res->code = seen->code;
        res->dup = true;
        res->epoch = seen->epoch;
        cmap_strlcpy(res->msg, seen->msg, sizeof res->msg);
        return DV_OK;
    }
    int rc;
    switch (cmd->type) {
    case CMAP_CMD_NODE_REGISTER:
        rc = node_register(m, cmd, res);
        break;
    case CMAP_CMD_NODE_STATE:
        rc = node_state(m, cmd, res);
        break;
    case CMAP_CMD_NODE_WEIGHT:
        rc = node_weight(m, cmd, res);
        break;
    case CMAP_CMD_NODE_REMOVE:
        rc = node_remove(m, cmd, res);
        break;
    case CMAP_CMD_COLL_CREATE:
        rc = coll_create(m, cmd, res);
        break;
    case CMAP_CMD_COLL_DROP:
        rc = coll_drop(m, cmd, res);
        break;
    case CMAP_CMD_PART_SET:
        rc = part_set(m, cmd, res);
        break;
    case CMAP_CMD_MOVE_ADD:
    case CMAP_CMD_MOVE_UPDATE:
    case CMAP_CMD_MOVE_REMOVE:
        rc = move_apply(m, cmd, res);
        break;
    case CMAP_CMD_COORD_SET:
        rc = coord_set(m, cmd, res);
        break;
    case CMAP_CMD_COORD_REMOVE:
        rc = coord_remove(m, cmd, res);
        break;
    case CMAP_CMD_SETTINGS:
        rc = settings(m, cmd, res);
        break;
    case CMAP_CMD_REPLICA_STATE:
        rc = replica_state(m, cmd, res);
        break;
    case CMAP_CMD_PART_PROMOTE:
        rc = part_promote(m, cmd, res);
        break;
    case CMAP_CMD_REPLICA_MOVE:
        rc = replica_move(m, cmd, res);
        break;
    case CMAP_CMD_REPLICA_ADD:
    case CMAP_CMD_REPLICA_REMOVE:
        rc = replica_op(m, cmd, res);
        break;
    case CMAP_CMD_COLL_SET:
        rc = coll_set(m, cmd, res);
        break;
    case CMAP_CMD_ALIAS:
        rc = cmap_alias_apply(m, cmd, res);
        break;
    case CMAP_CMD_COLL_INDEX:
        rc = cmap_index_apply(m, cmd, res);
        break;
    default:
        fail(m, res, DV_EINVAL, "command type %d cannot be applied", cmd->type);
        rc = DV_OK;
        break;
    }
    if (rc != DV_OK)
        return rc;
    cmap_seen_add(m, &cmd->req, res);
    return DV_OK;
}

void cmap_results_free(struct cmap_results *res)
{
    free(res->r);
    memset(res, 0, sizeof *res);
}

static int results_reserve(struct cmap_results *res, uint32_t n)
{
    return cmap_grow((void **)&res->r, &res->cap, n ? n : 1, sizeof *res->r);
}

/* A command that could not be decoded. */
static void undecodable(const struct cmap *m, struct cmap_result *res, const char *why)
{
    memset(res, 0, sizeof *res);
    res->code = DV_EPROTO;
    res->epoch = m->epoch;
    cmap_strlcpy(res->msg, why, sizeof res->msg);
}

/* Decodes and applies one command of n bytes into `res`. DV_OK or DV_ENOMEM. */
static int apply_one(struct cmap *m, const void *p, size_t n, struct cmap_result *res)
{
    struct cmap_cmd cmd;
    char errmsg[DV_ERRMSG_SIZE];
    int rc = cmap_cmd_decode(p, n, &cmd, errmsg);
    if (rc == DV_ENOMEM)
        return rc;
    if (rc != DV_OK) {
        undecodable(m, res, errmsg);
        return DV_OK;
    }
    rc = cmap_apply_cmd(m, &cmd, res);
    cmap_cmd_free(&cmd);
    return rc;
}

int cmap_apply(struct cmap *m, const void *p, size_t n, struct cmap_results *res)
{
    char errmsg[DV_ERRMSG_SIZE];
    const uint8_t *items;
    size_t len;
    uint32_t count;
    res->n = 0;
    int rc = cmap_batch_open(p, n, &items, &len, &count, errmsg);
    if (rc == DV_ENOTFOUND) {
        /* A single command. */
        if (results_reserve(res, 1) != DV_OK)
            return DV_ENOMEM;
        rc = apply_one(m, p, n, &res->r[0]);
        res->n = rc == DV_OK;
        return rc;
    }
    if (rc != DV_OK) {
        if (results_reserve(res, 1) != DV_OK)
            return DV_ENOMEM;
        undecodable(m, &res->r[0], errmsg);
        res->n = 1;
        return DV_OK;
    }
    if (results_reserve(res, count) != DV_OK)
        return DV_ENOMEM;
    struct mpk r;
    mpk_init(&r, items, len);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *start;
        size_t sz;
        rc = mpk_span(&r, &start, &sz);
        assert(rc == DV_OK); /* cmap_batch_open checked that every item spans */
        rc = apply_one(m, start, sz, &res->r[i]);
        if (rc != DV_OK)
            return rc;
        res->n = i + 1;
    }
    return DV_OK;
}
