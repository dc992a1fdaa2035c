/* cmap_util.h - command builders shared by the cluster-map tests (header-only, test code). */
#ifndef DV_TEST_CMAP_UTIL_H
#define DV_TEST_CMAP_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmap.h"

/* Request ids: client 7, a sequence that never repeats within a test binary. */
static uint64_t cu_seq = 1;

static inline struct cmap_reqid cu_rid(void)
{
    return cmap_reqid_make(7, cu_seq++);
}

static inline struct cmap_cmd cu_reg(const char *id, int state, double weight)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_NODE_REGISTER;
    c.req = cu_rid();
    snprintf(c.u.reg.id, sizeof c.u.reg.id, "%s", id);
    snprintf(c.u.reg.url, sizeof c.u.reg.url, "tcp://127.0.0.1:7%s", id);
    snprintf(c.u.reg.http_url, sizeof c.u.reg.http_url, "http://127.0.0.1:8%s", id);
    c.u.reg.weight = weight;
    c.u.reg.state = state;
    c.u.reg.heartbeat_ms = 1000;
    return c;
}

/* A register command that reports `n` replicas of collection "c" (malloc'd, for
 * cmap_cmd_free). */
static inline struct cmap_cmd cu_reg_reports(const char *id, uint32_t n)
{
    struct cmap_cmd c = cu_reg(id, CMAP_NODE_ALIVE, 1.0);
    c.u.reg.reports = calloc(n ? n : 1, sizeof *c.u.reg.reports);
    for (uint32_t i = 0; i < n; i++) {
        c.u.reg.reports[i].coll = strdup(i % 2 ? "c" : "other_coll");
        c.u.reg.reports[i].part = i;
        c.u.reg.reports[i].lsn = 1000 + i;
    }
    c.u.reg.n_reports = n;
    return c;
}

static inline struct cmap_cmd cu_state(const char *id, int state, uint64_t heartbeat_ms)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_NODE_STATE;
    c.req = cu_rid();
    snprintf(c.u.node_state.id, sizeof c.u.node_state.id, "%s", id);
    c.u.node_state.state = state;
    c.u.node_state.heartbeat_ms = heartbeat_ms;
    return c;
}

static inline struct cmap_cmd cu_weight(const char *id, double w)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_NODE_WEIGHT;
    c.req = cu_rid();
    snprintf(c.u.node_weight.id, sizeof c.u.node_weight.id, "%s", id);
    c.u.node_weight.weight = w;
    return c;
}

static inline struct cmap_cmd cu_remove(const char *id, bool force)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_NODE_REMOVE;
    c.req = cu_rid();
    snprintf(c.u.node_remove.id, sizeof c.u.node_remove.id, "%s", id);
    c.u.node_remove.force = force;
    return c;
}

static inline struct cmap_coll_cfg cu_cfg(uint32_t n_parts, uint32_t rf)
{
    struct cmap_coll_cfg g = {.dim = 8,
                              .metric = CMAP_METRIC_COSINE,
                              .m = 16,
                              .ef_construction = 200,
                              .ef_search = 64,
                              .n_parts = n_parts,
                              .rf = rf,
                              .fsync = CMAP_FSYNC_INTERVAL,
                              .sq8 = false};
    return g;
}

/* A create command placing partition p on ids[(p + k) % n_ids], k < rf, primary the first
 * (arrays malloc'd, for cmap_cmd_free). */
static inline struct cmap_cmd cu_create(const char *name, uint32_t n_parts, uint32_t rf,
                                        const char *const *ids, uint32_t n_ids)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_COLL_CREATE;
    c.req = cu_rid();
    snprintf(c.u.coll_create.name, sizeof c.u.coll_create.name, "%s", name);
    c.u.coll_create.cfg = cu_cfg(n_parts, rf);
    c.u.coll_create.node_ids = calloc(n_ids ? n_ids : 1, sizeof *c.u.coll_create.node_ids);
    for (uint32_t i = 0; i < n_ids; i++)
        snprintf(c.u.coll_create.node_ids[i], sizeof c.u.coll_create.node_ids[i], "%s", ids[i]);
    c.u.coll_create.n_node_ids = n_ids;
    c.u.coll_create.parts = calloc(n_parts ? n_parts : 1, sizeof *c.u.coll_create.parts);
    for (uint32_t p = 0; p < n_parts; p++) {
        struct cmap_cmd_part *cp = &c.u.coll_create.parts[p];
        cp->n = rf < n_ids ? rf : n_ids;
        for (uint32_t k = 0; k < cp->n; k++)
            cp->nodes[k] = (p + k) % n_ids;
    }
    return c;
}

/* Replica `node` of coll/part to `state`, expecting `term` (0: any). */
static inline struct cmap_cmd cu_rstate(const char *coll, uint32_t part, const char *node,
                                        int state, uint64_t term)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_REPLICA_STATE;
    c.req = cu_rid();
    snprintf(c.u.replica_state.coll, sizeof c.u.replica_state.coll, "%s", coll);
    c.u.replica_state.part = part;
    snprintf(c.u.replica_state.node, sizeof c.u.replica_state.node, "%s", node);
    c.u.replica_state.state = state;
    c.u.replica_state.expect_term = term;
    return c;
}

/* `node` becomes the primary of coll/part, expecting `term` (0: any). */
static inline struct cmap_cmd cu_promote(const char *coll, uint32_t part, const char *node,
                                         uint64_t term)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_PART_PROMOTE;
    c.req = cu_rid();
    snprintf(c.u.promote.coll, sizeof c.u.promote.coll, "%s", coll);
    c.u.promote.part = part;
    snprintf(c.u.promote.node, sizeof c.u.promote.node, "%s", node);
    c.u.promote.expect_term = term;
    return c;
}

/* The replica of coll/part on `from` re-created on `to`, expecting `term` (0: any). */
static inline struct cmap_cmd cu_rmove(const char *coll, uint32_t part, const char *from,
                                       const char *to, uint64_t term)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_REPLICA_MOVE;
    c.req = cu_rid();
    snprintf(c.u.replica_move.coll, sizeof c.u.replica_move.coll, "%s", coll);
    c.u.replica_move.part = part;
    snprintf(c.u.replica_move.from, sizeof c.u.replica_move.from, "%s", from);
    snprintf(c.u.replica_move.to, sizeof c.u.replica_move.to, "%s", to);
    c.u.replica_move.expect_term = term;
    return c;
}

static inline struct cmap_cmd cu_drop(const char *name)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_COLL_DROP;
    c.req = cu_rid();
    snprintf(c.u.coll_drop.name, sizeof c.u.coll_drop.name, "%s", name);
    return c;
}

static inline struct cmap_cmd cu_pset(const char *coll, uint32_t part, uint64_t expect,
                                      const char *const *ids, uint32_t n, uint32_t primary)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_PART_SET;
    c.req = cu_rid();
    snprintf(c.u.part_set.coll, sizeof c.u.part_set.coll, "%s", coll);
    c.u.part_set.part = part;
    c.u.part_set.expect_epoch = expect;
    c.u.part_set.n = n;
    c.u.part_set.primary = primary;
    for (uint32_t k = 0; k < n; k++)
        snprintf(c.u.part_set.nodes[k], sizeof c.u.part_set.nodes[k], "%s", ids[k]);
    return c;
}

static inline struct cmap_cmd cu_move(int type, const char *coll, uint32_t part, const char *from,
                                      const char *to, int state)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.req = cu_rid();
    snprintf(c.u.move.coll, sizeof c.u.move.coll, "%s", coll);
    c.u.move.part = part;
    snprintf(c.u.move.from, sizeof c.u.move.from, "%s", from);
    snprintf(c.u.move.to, sizeof c.u.move.to, "%s", to);
    c.u.move.state = state;
    return c;
}

/* Coordinator `id` at raft address 127.0.0.1:9<id> and client URL tcp://127.0.0.1:6<id>
 * (id as 3 digits). */
static inline struct cmap_cmd cu_coord(uint64_t id, int role)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_COORD_SET;
    c.req = cu_rid();
    c.u.coord_set.id = id;
    snprintf(c.u.coord_set.raft_addr, sizeof c.u.coord_set.raft_addr, "127.0.0.1:9%03u",
             (unsigned)(id % 1000));
    snprintf(c.u.coord_set.client_url, sizeof c.u.coord_set.client_url, "tcp://127.0.0.1:6%03u",
             (unsigned)(id % 1000));
    c.u.coord_set.role = role;
    return c;
}

static inline struct cmap_cmd cu_coord_remove(uint64_t id)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_COORD_REMOVE;
    c.req = cu_rid();
    c.u.coord_remove.id = id;
    return c;
}

/* An alias command of n actions, each given as (op, a, b). */
static inline struct cmap_cmd cu_alias(uint32_t n, const uint32_t *ops, const char *const *a,
                                       const char *const *b)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_ALIAS;
    c.req = cu_rid();
    c.u.alias.acts = calloc(n ? n : 1, sizeof *c.u.alias.acts);
    c.u.alias.n = n;
    for (uint32_t i = 0; i < n; i++) {
        c.u.alias.acts[i].op = ops[i];
        snprintf(c.u.alias.acts[i].a, sizeof c.u.alias.acts[i].a, "%s", a[i]);
        snprintf(c.u.alias.acts[i].b, sizeof c.u.alias.acts[i].b, "%s", b[i] ? b[i] : "");
    }
    return c;
}

static inline struct cmap_cmd cu_index(const char *coll, uint32_t op, uint32_t kind,
                                       const char *key)
{
    struct cmap_cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMAP_CMD_COLL_INDEX;
    c.req = cu_rid();
    snprintf(c.u.coll_index.name, sizeof c.u.coll_index.name, "%s", coll);
    c.u.coll_index.op = op;
    c.u.coll_index.kind = kind;
    snprintf(c.u.coll_index.key, sizeof c.u.coll_index.key, "%s", key);
    return c;
}

#endif
