/* test_cmap.c - cluster map: command codec, apply semantics, idempotency, snapshots, bad bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "cmap.h"
#include "cmap_util.h"
#include "crc32c.h"
#include "err.h"
#include "mpk.h"

/* Test-local generator (splitmix64), so the tests do not depend on libc's rand. */
static uint64_t rng_state = 777;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/*
 * Allocation faults: the test binary is linked with --wrap for malloc, calloc and realloc,
 * so the library's allocations go through these. When fault_countdown is >= 0 the allocation
 * that finds it at 0 fails (once), the others go through.
 */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static long fault_countdown = -1;

static bool fault_now(void)
{
    if (fault_countdown < 0)
        return false;
    return fault_countdown-- == 0;
}

void *__wrap_malloc(size_t n)
{
    return fault_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fault_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fault_now() ? NULL : __real_realloc(p, n);
}

/* Encodes `cmd` (asserting the padding), applies the entry and returns its one result. */
static struct cmap_result run(struct cmap *m, const struct cmap_cmd *cmd)
{
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    struct cmap_results res = {0};
    int rc = cmap_cmd_encode(cmd, &b, err);
    if (rc != DV_OK)
        fail_msg("encode %s: %s", cmap_cmd_type_name(cmd->type), err);
    assert_int_equal(b.len % 8, 0);
    assert_int_equal(cmap_apply(m, b.data, b.len, &res), DV_OK);
    assert_int_equal(res.n, 1);
    struct cmap_result r = res.r[0];
    cmap_results_free(&res);
    buf_free(&b);
    return r;
}

/* run() then cmap_cmd_free(); returns the result code. */
static int run_free(struct cmap *m, struct cmap_cmd cmd)
{
    struct cmap_result r = run(m, &cmd);
    cmap_cmd_free(&cmd);
    return r.code;
}

static const char *const ids3[] = {"n0", "n1", "n2"};

/* A map with nodes n0..n2 alive and collection "c" (8 partitions, rf 2). */
static void base_map(struct cmap *m, uint32_t dedup_cap)
{
    assert_int_equal(cmap_init(m, dedup_cap), DV_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(run_free(m, cu_reg(ids3[i], CMAP_NODE_ALIVE, 1.0)), DV_OK);
    assert_int_equal(run_free(m, cu_create("c", 8, 2, ids3, 3)), DV_OK);
}

/* ---- codec ------------------------------------------------------------------------------- */

/* One command of every type, with every optional part filled. */
static int all_commands(struct cmap_cmd *out)
{
    int n = 0;
    out[n++] = cu_reg_reports("n0", 5);
    out[n] = cu_reg("n3", CMAP_NODE_ALIVE, 1.0);
    snprintf(out[n++].u.reg.search_url, sizeof out[0].u.reg.search_url, "tcp://127.0.0.1:7401");
    out[n] = cu_state("n1", CMAP_NODE_SUSPECT, 123456789);
    out[n].u.node_state.has_reports = true;
    out[n].u.node_state.reports = calloc(2, sizeof(struct cmap_report));
    out[n].u.node_state.reports[0].coll = strdup("c");
    out[n].u.node_state.reports[0].part = 3;
    out[n].u.node_state.reports[0].lsn = UINT64_MAX;
    out[n].u.node_state.reports[1].coll = strdup("d");
    out[n].u.node_state.n_reports = 2;
    n++;
    out[n++] = cu_state("n2", CMAP_NODE_KEEP, 0);
    out[n++] = cu_weight("n1", 2.5);
    out[n++] = cu_remove("n2", true);
    out[n++] = cu_create("coll-1", 16, 3, ids3, 3);
    out[n++] = cu_drop("coll-1");
    out[n++] = cu_pset("c", 7, 42, ids3, 3, 2);
    out[n++] = cu_move(CMAP_CMD_MOVE_ADD, "c", 1, "n0", "n1", CMAP_MOVE_PLANNED);
    out[n++] = cu_move(CMAP_CMD_MOVE_UPDATE, "c", 1, "n0", "n1", CMAP_MOVE_SWITCHING);
    out[n++] = cu_move(CMAP_CMD_MOVE_REMOVE, "c", 1, "n0", "n1", 0);
    out[n - 1].req = cmap_reqid_make(UINT64_MAX, UINT64_MAX);
    out[n++] = cu_coord(UINT64_MAX, CMAP_COORD_SPARE);
    snprintf(out[n - 1].u.coord_set.raft_addr, sizeof out[n - 1].u.coord_set.raft_addr,
             "[::1]:65535");
    out[n++] = cu_coord_remove(UINT64_MAX);
    out[n] = (struct cmap_cmd){.type = CMAP_CMD_SETTINGS, .req = cmap_reqid_make(9, 9)};
    out[n].u.settings.mask = CMAP_SET_ALL;
    out[n++].u.settings.set = (struct cmap_settings){true, false, UINT64_MAX, 64};
    out[n] = cu_rstate("c", 5, "n2", CMAP_REPLICA_RECOVERY, UINT64_MAX);
    out[n++].u.replica_state.expect_epoch = 77;
    out[n++] = cu_promote("c", 6, "n1", 3);
    out[n++] = cu_rmove("c", 7, "n1", "n2", 9);
    out[n] = cu_promote("c", 2, "n2", 4);
    out[n].type = CMAP_CMD_REPLICA_ADD;
    out[n++].u.replica_op = (typeof(out[0].u.replica_op)){"c", 2, "n2", 4};
    out[n] = cu_promote("c", 3, "n0", 0);
    out[n].type = CMAP_CMD_REPLICA_REMOVE;
    out[n++].u.replica_op = (typeof(out[0].u.replica_op)){"c", 3, "n0", 0};
    out[n] = cu_promote("c", 3, "n0", 0);
    out[n].type = CMAP_CMD_COLL_SET;
    out[n++].u.coll_set = (typeof(out[0].u.coll_set)){"coll-1", 3, 2, 0};
    out[n] = cu_promote("c", 3, "n0", 0);
    out[n].type = CMAP_CMD_COLL_SET;
    out[n++].u.coll_set = (typeof(out[0].u.coll_set)){"coll-2", 0, 0, PROTO_MAX_CFG_EF};
    static const uint32_t ops[] = {CMAP_ALIAS_CREATE, CMAP_ALIAS_DELETE, CMAP_ALIAS_RENAME};
    static const char *const as[] = {"al", "old", "x"}, *const bs[] = {"c", NULL, "y"};
    out[n++] = cu_alias(3, ops, as, bs);
    out[n++] = cu_index("c", CMAP_INDEX_CREATE, 9, "a.b[].c");
    return n;
}

static void assert_cmd_equal(const struct cmap_cmd *a, const struct cmap_cmd *b)
{
    assert_int_equal(a->type, b->type);
    assert_true(a->req.hi == b->req.hi && a->req.lo == b->req.lo);
    switch (a->type) {
    case CMAP_CMD_NODE_REGISTER:
        assert_string_equal(a->u.reg.id, b->u.reg.id);
        assert_string_equal(a->u.reg.url, b->u.reg.url);
        assert_string_equal(a->u.reg.http_url, b->u.reg.http_url);
        assert_string_equal(a->u.reg.search_url, b->u.reg.search_url);
        assert_true(a->u.reg.weight == b->u.reg.weight);
        assert_int_equal(a->u.reg.state, b->u.reg.state);
        assert_int_equal(a->u.reg.heartbeat_ms, b->u.reg.heartbeat_ms);
        assert_int_equal(a->u.reg.n_reports, b->u.reg.n_reports);
        for (uint32_t i = 0; i < a->u.reg.n_reports; i++) {
            assert_string_equal(a->u.reg.reports[i].coll, b->u.reg.reports[i].coll);
            assert_int_equal(a->u.reg.reports[i].part, b->u.reg.reports[i].part);
            assert_int_equal(a->u.reg.reports[i].lsn, b->u.reg.reports[i].lsn);
        }
        break;
    case CMAP_CMD_NODE_STATE:
        assert_string_equal(a->u.node_state.id, b->u.node_state.id);
        assert_int_equal(a->u.node_state.state, b->u.node_state.state);
        assert_int_equal(a->u.node_state.heartbeat_ms, b->u.node_state.heartbeat_ms);
        assert_int_equal(a->u.node_state.has_reports, b->u.node_state.has_reports);
        assert_int_equal(a->u.node_state.n_reports, b->u.node_state.n_reports);
        for (uint32_t i = 0; i < a->u.node_state.n_reports; i++) {
            assert_string_equal(a->u.node_state.reports[i].coll, b->u.node_state.reports[i].coll);
            assert_int_equal(a->u.node_state.reports[i].lsn, b->u.node_state.reports[i].lsn);
        }
        break;
    case CMAP_CMD_NODE_WEIGHT:
        assert_string_equal(a->u.node_weight.id, b->u.node_weight.id);
        assert_true(a->u.node_weight.weight == b->u.node_weight.weight);
        break;
    case CMAP_CMD_NODE_REMOVE:
        assert_string_equal(a->u.node_remove.id, b->u.node_remove.id);
        assert_int_equal(a->u.node_remove.force, b->u.node_remove.force);
        break;
    case CMAP_CMD_COLL_CREATE: {
        const typeof(a->u.coll_create) *x = &a->u.coll_create, *y = &b->u.coll_create;
        assert_string_equal(x->name, y->name);
        assert_memory_equal(&x->cfg, &y->cfg, offsetof(struct cmap_coll_cfg, sq8));
        assert_int_equal(x->cfg.sq8, y->cfg.sq8);
        assert_int_equal(x->cfg.write_consistency_factor, y->cfg.write_consistency_factor);
        assert_int_equal(x->n_node_ids, y->n_node_ids);
        for (uint32_t i = 0; i < x->n_node_ids; i++)
            assert_string_equal(x->node_ids[i], y->node_ids[i]);
        for (uint32_t p = 0; p < x->cfg.n_parts; p++) {
            assert_int_equal(x->parts[p].n, y->parts[p].n);
            assert_int_equal(x->parts[p].primary, y->parts[p].primary);
            assert_memory_equal(x->parts[p].nodes, y->parts[p].nodes,
                                x->parts[p].n * sizeof(uint32_t));
        }
        break;
    }
    case CMAP_CMD_COLL_DROP:
        assert_string_equal(a->u.coll_drop.name, b->u.coll_drop.name);
        break;
    case CMAP_CMD_PART_SET:
        assert_string_equal(a->u.part_set.coll, b->u.part_set.coll);
        assert_int_equal(a->u.part_set.part, b->u.part_set.part);
        assert_int_equal(a->u.part_set.expect_epoch, b->u.part_set.expect_epoch);
        assert_int_equal(a->u.part_set.n, b->u.part_set.n);
        assert_int_equal(a->u.part_set.primary, b->u.part_set.primary);
        for (uint32_t k = 0; k < a->u.part_set.n; k++)
            assert_string_equal(a->u.part_set.nodes[k], b->u.part_set.nodes[k]);
        break;
    case CMAP_CMD_COORD_SET:
        assert_true(a->u.coord_set.id == b->u.coord_set.id);
        assert_string_equal(a->u.coord_set.raft_addr, b->u.coord_set.raft_addr);
        assert_string_equal(a->u.coord_set.client_url, b->u.coord_set.client_url);
        assert_int_equal(a->u.coord_set.role, b->u.coord_set.role);
        break;
    case CMAP_CMD_COORD_REMOVE:
        assert_true(a->u.coord_remove.id == b->u.coord_remove.id);
        break;
    case CMAP_CMD_ALIAS:
        assert_int_equal(a->u.alias.n, b->u.alias.n);
        for (uint32_t i = 0; i < a->u.alias.n; i++) {
            assert_int_equal(a->u.alias.acts[i].op, b->u.alias.acts[i].op);
            assert_string_equal(a->u.alias.acts[i].a, b->u.alias.acts[i].a);
            assert_string_equal(a->u.alias.acts[i].b, b->u.alias.acts[i].b);
        }
        break;
    case CMAP_CMD_COLL_INDEX:
        assert_string_equal(a->u.coll_index.name, b->u.coll_index.name);
        assert_int_equal(a->u.coll_index.op, b->u.coll_index.op);
        assert_int_equal(a->u.coll_index.kind, b->u.coll_index.kind);
        assert_string_equal(a->u.coll_index.key, b->u.coll_index.key);
        break;
    case CMAP_CMD_SETTINGS:
        assert_int_equal(a->u.settings.mask, b->u.settings.mask);
        assert_int_equal(a->u.settings.set.paused, b->u.settings.set.paused);
        assert_int_equal(a->u.settings.set.auto_rebalance, b->u.settings.set.auto_rebalance);
        assert_true(a->u.settings.set.rate == b->u.settings.set.rate);
        assert_int_equal(a->u.settings.set.moves_per_node, b->u.settings.set.moves_per_node);
        break;
    case CMAP_CMD_REPLICA_STATE:
        assert_string_equal(a->u.replica_state.coll, b->u.replica_state.coll);
        assert_int_equal(a->u.replica_state.part, b->u.replica_state.part);
        assert_string_equal(a->u.replica_state.node, b->u.replica_state.node);
        assert_int_equal(a->u.replica_state.state, b->u.replica_state.state);
        assert_true(a->u.replica_state.expect_term == b->u.replica_state.expect_term);
        assert_true(a->u.replica_state.expect_epoch == b->u.replica_state.expect_epoch);
        break;
    case CMAP_CMD_REPLICA_MOVE:
        assert_string_equal(a->u.replica_move.coll, b->u.replica_move.coll);
        assert_int_equal(a->u.replica_move.part, b->u.replica_move.part);
        assert_string_equal(a->u.replica_move.from, b->u.replica_move.from);
        assert_string_equal(a->u.replica_move.to, b->u.replica_move.to);
        assert_true(a->u.replica_move.expect_term == b->u.replica_move.expect_term);
        break;
    case CMAP_CMD_REPLICA_ADD:
    case CMAP_CMD_REPLICA_REMOVE:
        assert_string_equal(a->u.replica_op.coll, b->u.replica_op.coll);
        assert_int_equal(a->u.replica_op.part, b->u.replica_op.part);
        assert_string_equal(a->u.replica_op.node, b->u.replica_op.node);
        assert_true(a->u.replica_op.expect_term == b->u.replica_op.expect_term);
        break;
    case CMAP_CMD_COLL_SET:
        assert_string_equal(a->u.coll_set.name, b->u.coll_set.name);
        assert_int_equal(a->u.coll_set.rf, b->u.coll_set.rf);
        assert_int_equal(a->u.coll_set.wcf, b->u.coll_set.wcf);
        assert_int_equal(a->u.coll_set.ef_search, b->u.coll_set.ef_search);
        break;
    case CMAP_CMD_PART_PROMOTE:
        assert_string_equal(a->u.promote.coll, b->u.promote.coll);
        assert_int_equal(a->u.promote.part, b->u.promote.part);
        assert_string_equal(a->u.promote.node, b->u.promote.node);
        assert_true(a->u.promote.expect_term == b->u.promote.expect_term);
        break;
    default:
        assert_string_equal(a->u.move.coll, b->u.move.coll);
        assert_int_equal(a->u.move.part, b->u.move.part);
        assert_string_equal(a->u.move.from, b->u.move.from);
        assert_string_equal(a->u.move.to, b->u.move.to);
        if (a->type != CMAP_CMD_MOVE_REMOVE)
            assert_int_equal(a->u.move.state, b->u.move.state);
        break;
    }
}

static void test_cmd_roundtrip(void **state)
{
    struct cmap_cmd cmds[32];
    int n = all_commands(cmds);
    char err[DV_ERRMSG_SIZE];
    bool seen[CMAP_CMD_TYPE_COUNT] = {false};
    for (int i = 0; i < n; i++) {
        struct buf b = BUF_INIT, b2 = BUF_INIT;
        struct cmap_cmd d;
        assert_int_equal(cmap_cmd_encode(&cmds[i], &b, err), DV_OK);
        assert_int_equal(b.len % 8, 0);
        int rc = cmap_cmd_decode(b.data, b.len, &d, err);
        if (rc != DV_OK)
            fail_msg("decode %s: %s", cmap_cmd_type_name(cmds[i].type), err);
        assert_cmd_equal(&cmds[i], &d);
        /* Encoding the decoded command gives the same bytes. */
        assert_int_equal(cmap_cmd_encode(&d, &b2, err), DV_OK);
        assert_int_equal(b.len, b2.len);
        assert_memory_equal(b.data, b2.data, b.len);
        seen[d.type] = true;
        cmap_cmd_free(&d);
        cmap_cmd_free(&cmds[i]);
        buf_free(&b);
        buf_free(&b2);
    }
    for (int t = 1; t < CMAP_CMD_TYPE_COUNT; t++)
        if (t != CMAP_CMD_BATCH)
            assert_true(seen[t]);
}

static void test_cmd_encode_rejects(void **state)
{
    char err[DV_ERRMSG_SIZE];
    struct buf b = BUF_INIT;
    struct cmap_cmd c = cu_drop("x");
    c.req = cmap_reqid_make(0, 0);
    assert_int_equal(cmap_cmd_encode(&c, &b, err), DV_EINVAL);
    c = cu_drop("x");
    c.type = CMAP_CMD_BATCH;
    assert_int_equal(cmap_cmd_encode(&c, &b, err), DV_EINVAL);
    c.type = 99;
    assert_int_equal(cmap_cmd_encode(&c, &b, err), DV_EINVAL);
    c = cu_drop("x");
    memset(c.u.coll_drop.name, 'a', sizeof c.u.coll_drop.name); /* no NUL */
    assert_int_equal(cmap_cmd_encode(&c, &b, err), DV_EINVAL);
    c = cu_create("x", 4, 1, ids3, 3);
    c.u.coll_create.parts[2].nodes[0] = 3; /* outside the node table */
    assert_int_equal(cmap_cmd_encode(&c, &b, err), DV_EINVAL);
    cmap_cmd_free(&c);
    c = cu_coord(1, CMAP_COORD_VOTER);
    memset(c.u.coord_set.client_url, 'a', sizeof c.u.coord_set.client_url); /* no NUL */
    assert_int_equal(cmap_cmd_encode(&c, &b, err), DV_EINVAL);
    assert_non_null(strstr(err, "client_url"));
    c = cu_coord(1, -1);
    assert_int_equal(cmap_cmd_encode(&c, &b, err), DV_EINVAL);
    assert_non_null(strstr(err, "role"));
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

/* Every prefix of every command, and every single-byte change, decodes to an error or to a
 * command that encodes again; applying garbage answers DV_EPROTO and leaves the map alone. */
static void test_cmd_truncated_and_garbage(void **state)
{
    struct cmap_cmd cmds[32];
    int n = all_commands(cmds);
    char err[DV_ERRMSG_SIZE];
    struct cmap m, before;
    base_map(&m, 0);
    assert_int_equal(cmap_copy(&before, &m), DV_OK);
    struct cmap_results res = {0};
    for (int i = 0; i < n; i++) {
        struct buf b = BUF_INIT;
        struct cmap_cmd d;
        assert_int_equal(cmap_cmd_encode(&cmds[i], &b, err), DV_OK);
        /* Strip the padding: every shorter length is a truncated value. */
        size_t len = b.len;
        while (len > 0 && b.data[len - 1] == 0)
            len--;
        struct mpk r;
        const uint8_t *s;
        size_t sz;
        mpk_init(&r, b.data, b.len);
        assert_int_equal(mpk_span(&r, &s, &sz), DV_OK);
        for (size_t cut = 0; cut < sz; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1); /* exact size, so ASan sees overreads */
            memcpy(copy, b.data, cut);
            assert_int_equal(cmap_cmd_decode(copy, cut, &d, err), DV_EPROTO);
            assert_int_equal(cmap_apply(&m, copy, cut, &res), DV_OK);
            assert_int_equal(res.n, 1);
            assert_int_equal(res.r[0].code, DV_EPROTO);
            free(copy);
        }
        /* Non-zero padding, or 8 bytes of it, is not an entry. */
        struct buf p = BUF_INIT;
        buf_append(&p, b.data, sz);
        buf_append(&p, "\0\0\0\0\0\0\0\0", 8);
        assert_int_equal(cmap_cmd_decode(p.data, p.len, &d, err), DV_EPROTO);
        p.data[sz] = 1;
        assert_int_equal(cmap_cmd_decode(p.data, sz + 1, &d, err), DV_EPROTO);
        buf_free(&p);
        /* Flip each byte to random values: never a crash. */
        for (size_t at = 0; at < b.len; at++) {
            uint8_t *copy = malloc(b.len);
            memcpy(copy, b.data, b.len);
            copy[at] ^= (uint8_t)(1 + rng() % 255);
            int rc = cmap_cmd_decode(copy, b.len, &d, err);
            assert_true(rc == DV_OK || rc == DV_EPROTO);
            if (rc == DV_OK)
                cmap_cmd_free(&d);
            free(copy);
        }
        cmap_cmd_free(&cmds[i]);
        buf_free(&b);
    }
    /* Random bytes. */
    for (int t = 0; t < 2000; t++) {
        uint8_t junk[64];
        size_t len = 1 + rng() % sizeof junk;
        for (size_t k = 0; k < len; k++)
            junk[k] = (uint8_t)rng();
        if (t % 2)
            junk[0] = 0x95; /* an array of 5, to get past the first check */
        struct cmap_cmd d;
        int rc = cmap_cmd_decode(junk, len, &d, err);
        assert_true(rc == DV_OK || rc == DV_EPROTO);
        if (rc == DV_OK)
            cmap_cmd_free(&d);
    }
    /* The truncated entries were answered, never applied. */
    assert_true(cmap_equal(&m, &before));
    cmap_results_free(&res);
    cmap_free(&m);
    cmap_free(&before);
}

/* ---- apply semantics --------------------------------------------------------------------- */

static void test_register(void **state)
{
    struct cmap m;
    assert_int_equal(cmap_init(&m, 0), DV_OK);
    struct cmap_cmd c = cu_reg("a", CMAP_NODE_JOINING, 1.5);
    struct cmap_result r = run(&m, &c);
    assert_int_equal(r.code, DV_OK);
    assert_int_equal(r.epoch, 1);
    assert_int_equal(run_free(&m, cu_reg("b", CMAP_NODE_ALIVE, 1.0)), DV_OK);
    const struct cmap_node *a = cmap_node_find(&m, "a");
    assert_non_null(a);
    assert_int_equal(a->num, 0);
    assert_int_equal(a->state, CMAP_NODE_JOINING);
    assert_true(a->weight == 1.5);
    assert_string_equal(a->url, "tcp://127.0.0.1:7a");
    assert_int_equal(cmap_node_find(&m, "b")->num, 1);
    assert_null(cmap_node_find(&m, "c"));
    assert_ptr_equal(cmap_node_get(&m, 1), cmap_node_find(&m, "b"));
    assert_null(cmap_node_get(&m, 2));

    /* Re-register: same number, new URL, state ALIVE, weight kept, reports replaced. */
    c = cu_reg_reports("a", 3);
    snprintf(c.u.reg.url, sizeof c.u.reg.url, "tcp://10.0.0.1:9");
    c.u.reg.weight = 9;
    c.u.reg.heartbeat_ms = 5000;
    assert_int_equal(run_free(&m, c), DV_OK);
    a = cmap_node_find(&m, "a");
    assert_int_equal(a->num, 0);
    assert_string_equal(a->url, "tcp://10.0.0.1:9");
    assert_int_equal(a->state, CMAP_NODE_ALIVE);
    assert_true(a->weight == 1.5);
    assert_int_equal(a->heartbeat_ms, 5000);
    assert_int_equal(a->n_reports, 3);
    assert_int_equal(a->reports[2].lsn, 1002);
    assert_int_equal(m.n_nodes, 2);
    assert_int_equal(m.epoch, 3);

    /* A draining node stays draining when it registers again. */
    assert_int_equal(run_free(&m, cu_state("b", CMAP_NODE_DRAINING, 0)), DV_OK);
    assert_int_equal(run_free(&m, cu_reg("b", CMAP_NODE_ALIVE, 1.0)), DV_OK);
    assert_int_equal(cmap_node_find(&m, "b")->state, CMAP_NODE_DRAINING);

    /* Bad registrations change nothing. */
    uint64_t epoch = m.epoch;
    assert_int_equal(run_free(&m, cu_reg("bad id", CMAP_NODE_ALIVE, 1.0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_reg("x", CMAP_NODE_ALIVE, 0.0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_reg("x", CMAP_NODE_ALIVE, -1.0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_reg("x", CMAP_NODE_DEAD, 1.0)), DV_EINVAL);
    c = cu_reg("x", CMAP_NODE_ALIVE, 1.0);
    c.u.reg.url[0] = '\0';
    assert_int_equal(run_free(&m, c), DV_EINVAL);
    c = cu_reg("x", CMAP_NODE_ALIVE, 1.0);
    snprintf(c.u.reg.search_url, sizeof c.u.reg.search_url, "tcp://a b:1");
    assert_int_equal(run_free(&m, c), DV_EINVAL);
    assert_int_equal(m.epoch, epoch);
    assert_int_equal(m.n_nodes, 2);
    cmap_free(&m);
}

/* A node's search port: set, changed and cleared by registering; in the snapshot as the
 * node record's 8th element only when set, so a map of nodes without one encodes as before. */
static void test_search_url(void **state)
{
    struct cmap m, d;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(cmap_init(&m, 0), DV_OK);
    assert_int_equal(run_free(&m, cu_reg("a", CMAP_NODE_ALIVE, 1.0)), DV_OK);
    struct buf plain = BUF_INIT, with = BUF_INIT;
    assert_int_equal(cmap_encode(&m, &plain), DV_OK);
    struct cmap_cmd c = cu_reg("a", CMAP_NODE_ALIVE, 1.0);
    snprintf(c.u.reg.search_url, sizeof c.u.reg.search_url, "tcp://127.0.0.1:7401");
    assert_int_equal(run_free(&m, c), DV_OK);
    assert_string_equal(cmap_node_find(&m, "a")->search_url, "tcp://127.0.0.1:7401");
    assert_int_equal(cmap_encode(&m, &with), DV_OK);
    /* the node record: 7 elements, then 8 with the search port */
    static const uint8_t rec7[] = {0x97, 0xa1, 'a'}, rec8[] = {0x98, 0xa1, 'a'};
    assert_non_null(memmem(plain.data, plain.len, rec7, 3));
    assert_null(memmem(plain.data, plain.len, rec8, 3));
    assert_non_null(memmem(with.data, with.len, rec8, 3));
    assert_non_null(memmem(with.data, with.len, "\xb4tcp://127.0.0.1:7401", 21));
    assert_int_equal(cmap_decode(with.data, with.len, &d, err), DV_OK);
    assert_string_equal(cmap_node_find(&d, "a")->search_url, "tcp://127.0.0.1:7401");
    assert_true(cmap_equal(&m, &d));
    cmap_free(&d);
    /* the snapshot of the same node without it reads as none */
    assert_int_equal(cmap_decode(plain.data, plain.len, &d, err), DV_OK);
    assert_string_equal(cmap_node_find(&d, "a")->search_url, "");
    assert_false(cmap_equal(&m, &d));
    cmap_free(&d);
    /* registering without one clears it */
    assert_int_equal(run_free(&m, cu_reg("a", CMAP_NODE_ALIVE, 1.0)), DV_OK);
    assert_string_equal(cmap_node_find(&m, "a")->search_url, "");
    buf_free(&plain);
    buf_free(&with);
    cmap_free(&m);
}

static void test_node_states(void **state)
{
    struct cmap m;
    base_map(&m, 0);
    uint64_t epoch = m.epoch;
    assert_int_equal(run_free(&m, cu_state("n1", CMAP_NODE_KEEP, 777)), DV_OK);
    assert_int_equal(cmap_node_find(&m, "n1")->heartbeat_ms, 777);
    assert_int_equal(cmap_node_find(&m, "n1")->state, CMAP_NODE_ALIVE);
    assert_int_equal(m.epoch, epoch + 1);
    static const int path[] = {CMAP_NODE_SUSPECT, CMAP_NODE_DEAD, CMAP_NODE_ALIVE,
                               CMAP_NODE_DRAINING, CMAP_NODE_ALIVE};
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        assert_int_equal(run_free(&m, cu_state("n1", path[i], 0)), DV_OK);
        assert_int_equal(cmap_node_find(&m, "n1")->state, path[i]);
        assert_int_equal(cmap_node_find(&m, "n1")->heartbeat_ms, 777); /* 0 keeps it */
    }
    epoch = m.epoch;
    assert_int_equal(run_free(&m, cu_state("n1", CMAP_NODE_JOINING, 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_state("n1", CMAP_NODE_REMOVED, 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_state("n1", 17, 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_state("zz", CMAP_NODE_ALIVE, 0)), DV_ENOTFOUND);
    assert_int_equal(run_free(&m, cu_weight("n1", 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_weight("zz", 1)), DV_ENOTFOUND);
    assert_int_equal(m.epoch, epoch);
    assert_int_equal(run_free(&m, cu_weight("n1", 3.25)), DV_OK);
    assert_true(cmap_node_find(&m, "n1")->weight == 3.25);

    /* A removed node accepts no state change until it registers again. */
    assert_int_equal(run_free(&m, cu_reg("n9", CMAP_NODE_ALIVE, 1.0)), DV_OK);
    assert_int_equal(run_free(&m, cu_remove("n9", false)), DV_OK);
    assert_int_equal(cmap_node_find(&m, "n9")->state, CMAP_NODE_REMOVED);
    assert_int_equal(run_free(&m, cu_state("n9", CMAP_NODE_ALIVE, 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_weight("n9", 2)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_reg("n9", CMAP_NODE_JOINING, 4.0)), DV_OK);
    assert_int_equal(cmap_node_find(&m, "n9")->state, CMAP_NODE_JOINING);
    assert_true(cmap_node_find(&m, "n9")->weight == 4.0);
    assert_int_equal(cmap_node_find(&m, "n9")->num, 3);
    cmap_free(&m);
}

static void test_collections(void **state)
{
    struct cmap m;
    base_map(&m, 0);
    const struct cmap_coll *c = cmap_coll_find(&m, "c");
    assert_non_null(c);
    assert_int_equal(c->cfg.n_parts, 8);
    assert_int_equal(c->epoch, m.epoch);
    for (uint32_t p = 0; p < 8; p++) {
        assert_int_equal(c->parts[p].epoch, m.epoch);
        assert_int_equal(c->parts[p].n, 2);
        assert_int_equal(c->parts[p].nodes[0], p % 3);
        assert_int_equal(c->parts[p].nodes[1], (p + 1) % 3);
        assert_int_equal(c->parts[p].primary, p % 3);
    }
    uint64_t epoch = m.epoch;
    assert_int_equal(run_free(&m, cu_create("c", 4, 1, ids3, 3)), DV_EEXIST);
    assert_int_equal(run_free(&m, cu_drop("nope")), DV_ENOTFOUND);
    static const char *const unknown[] = {"n0", "zz"};
    assert_int_equal(run_free(&m, cu_create("d", 4, 2, unknown, 2)), DV_ENOTFOUND);
    struct cmap_cmd cmd = cu_create("d", 4, 2, ids3, 3);
    cmd.u.coll_create.cfg.metric = 4;
    assert_int_equal(run_free(&m, cmd), DV_EINVAL);
    cmd = cu_create("d", 4, 2, ids3, 3);
    cmd.u.coll_create.parts[1].nodes[1] = cmd.u.coll_create.parts[1].nodes[0];
    assert_int_equal(run_free(&m, cmd), DV_EINVAL);
    cmd = cu_create("d", 4, 1, ids3, 3);
    cmd.u.coll_create.parts[3].n = 2; /* more replicas than rf */
    cmd.u.coll_create.parts[3].nodes[1] = 2;
    assert_int_equal(run_free(&m, cmd), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_create("bad/name", 4, 1, ids3, 3)), DV_EINVAL);
    assert_int_equal(m.epoch, epoch);
    assert_int_equal(m.n_colls, 1);

    /* Names stay sorted; lookups find each. */
    assert_int_equal(run_free(&m, cu_create("a", 4, 1, ids3, 3)), DV_OK);
    assert_int_equal(run_free(&m, cu_create("z", 4, 3, ids3, 3)), DV_OK);
    assert_int_equal(run_free(&m, cu_create("b", 1024, 1, ids3, 3)), DV_OK);
    assert_int_equal(m.n_colls, 4);
    assert_string_equal(m.colls[0]->name, "a");
    assert_string_equal(m.colls[1]->name, "b");
    assert_string_equal(m.colls[3]->name, "z");
    assert_non_null(cmap_part_find(&m, "b", 1023));
    assert_null(cmap_part_find(&m, "b", 1024));
    assert_null(cmap_part_find(&m, "q", 0));

    /* Dropping removes the collection and its moves only. */
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "a", 0, "n0", "n1", CMAP_MOVE_PLANNED)), DV_OK);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 0, "n0", "n2", CMAP_MOVE_PLANNED)), DV_OK);
    assert_int_equal(run_free(&m, cu_drop("a")), DV_OK);
    assert_null(cmap_coll_find(&m, "a"));
    assert_int_equal(m.n_moves, 1);
    assert_string_equal(m.moves[0].coll, "c");
    assert_int_equal(run_free(&m, cu_drop("a")), DV_ENOTFOUND);
    /* And the name can be used again. */
    assert_int_equal(run_free(&m, cu_create("a", 4, 1, ids3, 3)), DV_OK);
    cmap_free(&m);
}

static void test_part_set(void **state)
{
    struct cmap m;
    base_map(&m, 0);
    const struct cmap_coll *c = cmap_coll_find(&m, "c");
    uint64_t created = c->epoch;
    static const char *const two[] = {"n2", "n0"};
    struct cmap_cmd cmd = cu_pset("c", 5, created, two, 2, 1);
    struct cmap_result r = run(&m, &cmd);
    assert_int_equal(r.code, DV_OK);
    assert_int_equal(r.epoch, created + 1);
    c = cmap_coll_find(&m, "c");
    assert_int_equal(c->parts[5].epoch, created + 1);
    assert_int_equal(c->parts[5].n, 2);
    assert_int_equal(c->parts[5].nodes[0], 2);
    assert_int_equal(c->parts[5].nodes[1], 0);
    assert_int_equal(c->parts[5].primary, 0);
    for (uint32_t p = 0; p < 8; p++)
        if (p != 5)
            assert_int_equal(c->parts[p].epoch, created);

    /* The same expected epoch again is stale now. */
    cmd.req = cu_rid();
    r = run(&m, &cmd);
    assert_int_equal(r.code, DV_ESTALE);
    /* No expectation: always applies, and the epoch grows again. */
    assert_int_equal(run_free(&m, cu_pset("c", 5, 0, ids3, 3, 0)), DV_OK);
    assert_int_equal(cmap_part_find(&m, "c", 5)->epoch, created + 2);

    static const char *const dup[] = {"n1", "n1"};
    static const char *const unknown[] = {"n1", "zz"};
    uint64_t epoch = m.epoch;
    assert_int_equal(run_free(&m, cu_pset("c", 5, 0, dup, 2, 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_pset("c", 5, 0, unknown, 2, 0)), DV_ENOTFOUND);
    assert_int_equal(run_free(&m, cu_pset("c", 5, 0, ids3, 0, 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_pset("c", 8, 0, ids3, 1, 0)), DV_ENOTFOUND);
    assert_int_equal(run_free(&m, cu_pset("q", 0, 0, ids3, 1, 0)), DV_ENOTFOUND);
    /* A primary outside the list: the encoder refuses it, and so does apply. */
    struct cmap_cmd bad = cu_pset("c", 0, 0, ids3, 2, 2);
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(cmap_cmd_encode(&bad, &b, err), DV_EINVAL);
    assert_int_equal(cmap_apply_cmd(&m, &bad, &r), DV_OK);
    assert_int_equal(r.code, DV_EINVAL);
    assert_int_equal(m.epoch, epoch);

    /* Replicas held by a node. */
    struct cmap_held *h;
    size_t n;
    assert_int_equal(cmap_node_parts(&m, 1, &h, &n), DV_OK);
    size_t want = 0;
    c = cmap_coll_find(&m, "c");
    for (uint32_t p = 0; p < 8; p++)
        for (uint32_t k = 0; k < c->parts[p].n; k++)
            want += c->parts[p].nodes[k] == 1;
    assert_int_equal(n, want);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(h[i].coll, c);
        assert_int_equal(h[i].primary, c->parts[h[i].part].primary == 1);
        if (i)
            assert_true(h[i].part > h[i - 1].part);
    }
    free(h);
    assert_int_equal(cmap_node_parts(&m, 99, &h, &n), DV_OK);
    assert_int_equal(n, 0);
    assert_null(h);
    cmap_free(&m);
}

static void test_moves(void **state)
{
    struct cmap m;
    base_map(&m, 0);
#define MV(type, st) run_free(&m, cu_move(type, "c", 3, "n0", "n2", st))
    assert_int_equal(MV(CMAP_CMD_MOVE_UPDATE, CMAP_MOVE_COPYING), DV_ENOTFOUND);
    assert_int_equal(MV(CMAP_CMD_MOVE_REMOVE, 0), DV_ENOTFOUND);
    assert_int_equal(MV(CMAP_CMD_MOVE_ADD, CMAP_MOVE_PLANNED), DV_OK);
    assert_int_equal(MV(CMAP_CMD_MOVE_ADD, CMAP_MOVE_PLANNED), DV_EEXIST);
    const struct cmap_move *mv = cmap_move_find(&m, "c", 3, 0, 2);
    assert_non_null(mv);
    assert_int_equal(mv->epoch, m.epoch);
    assert_int_equal(MV(CMAP_CMD_MOVE_UPDATE, CMAP_MOVE_COPYING), DV_OK);
    assert_int_equal(MV(CMAP_CMD_MOVE_UPDATE, CMAP_MOVE_SWITCHING), DV_OK);
    assert_int_equal(MV(CMAP_CMD_MOVE_UPDATE, CMAP_MOVE_SWITCHING), DV_OK);   /* same: fine */
    assert_int_equal(MV(CMAP_CMD_MOVE_UPDATE, CMAP_MOVE_COPYING), DV_EINVAL); /* backwards */
    assert_int_equal(MV(CMAP_CMD_MOVE_UPDATE, 6), DV_EINVAL);
    const struct cmap_part *pt = cmap_part_find(&m, "c", 3);
    struct cmap_part before = *pt;
    uint32_t at = 0;
    while (before.nodes[at] != 0)
        at++;
    assert_int_equal(MV(CMAP_CMD_MOVE_UPDATE, CMAP_MOVE_DONE), DV_OK);
    /* done is the switch: n2 took n0's place (and its role), the partition has a new epoch */
    pt = cmap_part_find(&m, "c", 3);
    assert_int_equal(pt->n, before.n);
    assert_int_equal(pt->nodes[at], 2);
    assert_int_equal(pt->primary, before.primary == 0 ? 2 : before.primary);
    assert_true(pt->epoch == m.epoch && pt->epoch > before.epoch);
    assert_int_equal(MV(CMAP_CMD_MOVE_UPDATE, CMAP_MOVE_FAILED), DV_EINVAL); /* done is final */
    mv = cmap_move_find(&m, "c", 3, 0, 2);
    assert_int_equal(mv->state, CMAP_MOVE_DONE);
    assert_int_equal(mv->epoch, m.epoch);
    assert_int_equal(MV(CMAP_CMD_MOVE_REMOVE, 0), DV_OK);
    assert_null(cmap_move_find(&m, "c", 3, 0, 2));
#undef MV
    /* A switch whose source no longer holds the partition is stale; done needs switching. */
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 3, "n0", "n1", CMAP_MOVE_SWITCHING)), DV_OK);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_UPDATE, "c", 3, "n0", "n1", CMAP_MOVE_DONE)), DV_ESTALE);
    assert_int_equal(run_free(&m, cu_move(CMAP_CMD_MOVE_REMOVE, "c", 3, "n0", "n1", 0)), DV_OK);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 3, "n2", "n1", CMAP_MOVE_COPYING)), DV_OK);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_UPDATE, "c", 3, "n2", "n1", CMAP_MOVE_DONE)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_move(CMAP_CMD_MOVE_REMOVE, "c", 3, "n2", "n1", 0)), DV_OK);
    /* Failing from the middle; failed is final too. */
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 1, "n1", "n2", CMAP_MOVE_COPYING)), DV_OK);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_UPDATE, "c", 1, "n1", "n2", CMAP_MOVE_FAILED)), DV_OK);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_UPDATE, "c", 1, "n1", "n2", CMAP_MOVE_DONE)), DV_EINVAL);
    /* Bad records. */
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 1, "n1", "n1", CMAP_MOVE_PLANNED)), DV_EINVAL);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 8, "n1", "n2", CMAP_MOVE_PLANNED)),
        DV_ENOTFOUND);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "q", 0, "n1", "n2", CMAP_MOVE_PLANNED)),
        DV_ENOTFOUND);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 0, "n1", "zz", CMAP_MOVE_PLANNED)),
        DV_ENOTFOUND);
    /* Records keep their order of addition. */
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 0, "n2", "n0", CMAP_MOVE_PLANNED)), DV_OK);
    assert_int_equal(m.n_moves, 2);
    assert_int_equal(m.moves[0].part, 1);
    assert_int_equal(m.moves[1].part, 0);
    cmap_free(&m);
}

static void test_node_remove(void **state)
{
    struct cmap m;
    base_map(&m, 0);
    assert_int_equal(run_free(&m, cu_remove("zz", false)), DV_ENOTFOUND);
    assert_int_equal(run_free(&m, cu_remove("n1", false)), DV_EBUSY);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 2, "n1", "n0", CMAP_MOVE_COPYING)), DV_OK);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 2, "n2", "n0", CMAP_MOVE_PLANNED)), DV_OK);
    uint64_t before = m.epoch;
    assert_int_equal(run_free(&m, cu_remove("n1", true)), DV_OK);
    assert_int_equal(m.epoch, before + 1);
    const struct cmap_coll *c = cmap_coll_find(&m, "c");
    for (uint32_t p = 0; p < 8; p++) {
        bool had = p % 3 == 1 || (p + 1) % 3 == 1;
        assert_int_equal(c->parts[p].n, had ? 1 : 2);
        assert_int_equal(c->parts[p].epoch, had ? m.epoch : before - 2);
        for (uint32_t k = 0; k < c->parts[p].n; k++)
            assert_int_not_equal(c->parts[p].nodes[k], 1);
        assert_true(c->parts[p].primary == c->parts[p].nodes[0] ||
                    c->parts[p].primary == c->parts[p].nodes[1]);
    }
    /* Partition 1 had n1 as primary: the next replica took over. */
    assert_int_equal(c->parts[1].primary, 2);
    assert_int_equal(cmap_move_find(&m, "c", 2, 1, 0)->state, CMAP_MOVE_FAILED);
    assert_int_equal(cmap_move_find(&m, "c", 2, 2, 0)->state, CMAP_MOVE_PLANNED);
    assert_int_equal(cmap_node_find(&m, "n1")->state, CMAP_NODE_REMOVED);
    /* Removing a removed node again is fine; placing on it is not. */
    assert_int_equal(run_free(&m, cu_remove("n1", false)), DV_OK);
    assert_int_equal(run_free(&m, cu_pset("c", 0, 0, ids3 + 1, 1, 0)), DV_EINVAL);
    /* Forced removal of the last replica leaves a partition without primary. */
    assert_int_equal(run_free(&m, cu_remove("n2", true)), DV_OK);
    assert_int_equal(run_free(&m, cu_remove("n0", true)), DV_OK);
    c = cmap_coll_find(&m, "c");
    assert_int_equal(c->parts[0].n, 0);
    assert_int_equal(c->parts[0].primary, CMAP_NONE);
    cmap_free(&m);
}

/* Replica states and primary terms: a collection starts with term 1 and every replica in
 * sync; a secondary leaves and rejoins the in-sync set; the primary cannot leave it except by
 * a promote, which raises the term and makes the old primary DEAD; stale terms are refused;
 * a forced removal of the primary hands over to an in-sync replica or leaves none; a move
 * switch of the primary raises the term; a snapshot keeps all of it. */
static void test_replica_states(void **state)
{
    struct cmap m;
    base_map(&m, 0);
    const struct cmap_coll *c = cmap_coll_find(&m, "c");
    assert_int_equal(c->cfg.write_consistency_factor, 1);
    for (uint32_t p = 0; p < 8; p++) {
        assert_true(c->parts[p].term == 1);
        assert_int_equal(c->parts[p].state[0], CMAP_REPLICA_ACTIVE);
        assert_int_equal(c->parts[p].state[1], CMAP_REPLICA_ACTIVE);
    }
    /* partition 0: n0 (primary), n1 */
    const struct cmap_part *pt = &c->parts[0];
    assert_int_equal(pt->primary, 0);
    assert_int_equal(run_free(&m, cu_rstate("c", 0, "n1", CMAP_REPLICA_DEAD, 2)), DV_ESTALE);
    assert_int_equal(run_free(&m, cu_rstate("c", 0, "n1", CMAP_REPLICA_DEAD, 1)), DV_OK);
    assert_int_equal(pt->state[1], CMAP_REPLICA_DEAD);
    assert_true(pt->epoch == m.epoch);
    uint64_t e = pt->epoch;
    assert_int_equal(run_free(&m, cu_rstate("c", 0, "n1", CMAP_REPLICA_DEAD, 1)), DV_OK);
    assert_true(pt->epoch == e); /* nothing changed */
    assert_int_equal(run_free(&m, cu_rstate("c", 0, "n0", CMAP_REPLICA_DEAD, 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_rstate("c", 0, "n2", CMAP_REPLICA_DEAD, 0)), DV_ENOTFOUND);
    assert_int_equal(run_free(&m, cu_rstate("c", 0, "n1", CMAP_REPLICA_STATE_COUNT, 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_rstate("c", 99, "n1", CMAP_REPLICA_DEAD, 0)), DV_ENOTFOUND);
    /* a DEAD replica cannot be promoted; once back in sync it can */
    assert_int_equal(run_free(&m, cu_promote("c", 0, "n1", 1)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_rstate("c", 0, "n1", CMAP_REPLICA_ACTIVE, 1)), DV_OK);
    assert_int_equal(run_free(&m, cu_promote("c", 0, "n1", 1)), DV_OK);
    assert_int_equal(pt->primary, 1);
    assert_true(pt->term == 2 && pt->epoch == m.epoch);
    assert_int_equal(pt->state[0], CMAP_REPLICA_DEAD);
    assert_int_equal(run_free(&m, cu_promote("c", 0, "n1", 1)), DV_ESTALE);
    e = pt->epoch;
    assert_int_equal(run_free(&m, cu_promote("c", 0, "n1", 2)), DV_OK);
    assert_true(pt->term == 2 && pt->epoch == e);

    /* a snapshot keeps terms and states */
    struct buf b = BUF_INIT;
    struct cmap back;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(cmap_encode(&m, &b), DV_OK);
    assert_int_equal(cmap_decode(b.data, b.len, &back, err), DV_OK);
    assert_true(cmap_equal(&m, &back));
    assert_true(cmap_part_find(&back, "c", 0)->term == 2);
    assert_int_equal(cmap_part_find(&back, "c", 0)->state[0], CMAP_REPLICA_DEAD);
    cmap_free(&back);
    buf_free(&b);

    /* partition 1: n1 (primary), n2; a move of the primary to n0 raises the term and n0
     * takes n1's place and state */
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_ADD, "c", 1, "n1", "n0", CMAP_MOVE_SWITCHING)), DV_OK);
    assert_int_equal(
        run_free(&m, cu_move(CMAP_CMD_MOVE_UPDATE, "c", 1, "n1", "n0", CMAP_MOVE_DONE)), DV_OK);
    c = cmap_coll_find(&m, "c");
    assert_int_equal(c->parts[1].primary, 0);
    assert_true(c->parts[1].term == 2);
    assert_int_equal(c->parts[1].state[0], CMAP_REPLICA_ACTIVE);

    /* forced removal of n1, primary of partition 0 whose other replica (n0) is DEAD: no
     * primary left; n0 back in sync takes over */
    assert_int_equal(run_free(&m, cu_remove("n1", true)), DV_OK);
    c = cmap_coll_find(&m, "c");
    pt = &c->parts[0];
    assert_int_equal(pt->n, 1);
    assert_int_equal(pt->primary, CMAP_NONE);
    assert_true(pt->term == 3);
    assert_int_equal(run_free(&m, cu_rstate("c", 0, "n0", CMAP_REPLICA_ACTIVE, 0)), DV_OK);
    assert_int_equal(pt->primary, 0);
    assert_true(pt->term == 4);
    /* partition 2 (n2 primary, n0): untouched by n1's removal */
    assert_true(c->parts[2].term == 1);
    cmap_free(&m);
}

/* Re-replication: a secondary's replica re-created on another node starts DEAD (to be copied);
 * not for the primary, not onto a node that holds one, not from a node that holds none. */
static void test_replica_move(void **state)
{
    struct cmap m;
    base_map(&m, 0);
    /* partition 0: n0 (primary), n1 */
    assert_int_equal(run_free(&m, cu_rmove("c", 0, "n0", "n2", 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_rmove("c", 0, "n1", "n0", 0)), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_rmove("c", 0, "n2", "n1", 0)), DV_ENOTFOUND);
    assert_int_equal(run_free(&m, cu_rmove("c", 0, "n1", "n2", 5)), DV_ESTALE);
    assert_int_equal(run_free(&m, cu_rmove("c", 0, "n1", "zz", 0)), DV_EINVAL);
    uint64_t before = m.epoch;
    assert_int_equal(run_free(&m, cu_rmove("c", 0, "n1", "n2", 1)), DV_OK);
    const struct cmap_part *pt = cmap_part_find(&m, "c", 0);
    assert_int_equal(pt->n, 2);
    assert_int_equal(pt->nodes[1], 2);
    assert_int_equal(pt->state[1], CMAP_REPLICA_DEAD);
    assert_int_equal(pt->primary, 0);
    assert_true(pt->term == 1 && pt->epoch == before + 1);

    /* add and remove (replication factor changes), and the factor itself */
    struct cmap_cmd add = cu_rmove("c", 1, "n1", "n0", 0);
    add.type = CMAP_CMD_REPLICA_ADD;
    add.u.replica_op = (typeof(add.u.replica_op)){"c", 1, "n0", 0};
    assert_int_equal(run_free(&m, add), DV_OK);
    pt = cmap_part_find(&m, "c", 1);
    assert_int_equal(pt->n, 3);
    assert_int_equal(pt->nodes[2], 0);
    assert_int_equal(pt->state[2], CMAP_REPLICA_DEAD);
    add = cu_rmove("c", 1, "n1", "n0", 0);
    add.type = CMAP_CMD_REPLICA_ADD;
    add.u.replica_op = (typeof(add.u.replica_op)){"c", 1, "n0", 0};
    assert_int_equal(run_free(&m, add), DV_EINVAL); /* a replica already */
    struct cmap_cmd rm = cu_rmove("c", 1, "n1", "n0", 0);
    rm.type = CMAP_CMD_REPLICA_REMOVE;
    rm.u.replica_op = (typeof(rm.u.replica_op)){"c", 1, "n1", 0}; /* the primary of 1 */
    assert_int_equal(run_free(&m, rm), DV_EINVAL);
    rm = cu_rmove("c", 1, "n1", "n0", 0);
    rm.type = CMAP_CMD_REPLICA_REMOVE;
    rm.u.replica_op = (typeof(rm.u.replica_op)){"c", 1, "n2", 0};
    assert_int_equal(run_free(&m, rm), DV_OK);
    pt = cmap_part_find(&m, "c", 1);
    assert_int_equal(pt->n, 2);
    assert_int_equal(pt->nodes[1], 0);
    assert_int_equal(pt->state[1], CMAP_REPLICA_DEAD);
    struct cmap_cmd set = cu_rmove("c", 1, "n1", "n0", 0);
    set.type = CMAP_CMD_COLL_SET;
    set.u.coll_set = (typeof(set.u.coll_set)){"c", 9, 0, 0};
    assert_int_equal(run_free(&m, set), DV_EINVAL);
    set = cu_rmove("c", 1, "n1", "n0", 0);
    set.type = CMAP_CMD_COLL_SET;
    set.u.coll_set = (typeof(set.u.coll_set)){"c", 3, 2, 0};
    assert_int_equal(run_free(&m, set), DV_OK);
    assert_int_equal(cmap_coll_find(&m, "c")->cfg.rf, 3);
    assert_int_equal(cmap_coll_find(&m, "c")->cfg.write_consistency_factor, 2);
    /* the default search ef: kept by 0, refused above the maximum, changed alone */
    uint32_t ef0 = cmap_coll_find(&m, "c")->cfg.ef_search;
    assert_int_equal(cmap_coll_find(&m, "c")->cfg.rf, 3);
    set = cu_rmove("c", 1, "n1", "n0", 0);
    set.type = CMAP_CMD_COLL_SET;
    set.u.coll_set = (typeof(set.u.coll_set)){"c", 0, 0, PROTO_MAX_CFG_EF + 1};
    assert_int_equal(run_free(&m, set), DV_EINVAL);
    assert_int_equal(cmap_coll_find(&m, "c")->cfg.ef_search, ef0);
    set = cu_rmove("c", 1, "n1", "n0", 0);
    set.type = CMAP_CMD_COLL_SET;
    set.u.coll_set = (typeof(set.u.coll_set)){"c", 0, 0, 123};
    assert_int_equal(run_free(&m, set), DV_OK);
    assert_int_equal(cmap_coll_find(&m, "c")->cfg.ef_search, 123);
    assert_int_equal(cmap_coll_find(&m, "c")->cfg.rf, 3);
    assert_int_equal(cmap_coll_find(&m, "c")->cfg.write_consistency_factor, 2);
    cmap_free(&m);
}

/* write_consistency_factor: 0 in a create means 1, above the maximum it is refused, it
 * survives a snapshot. */
static void test_write_consistency(void **state)
{
    struct cmap m;
    base_map(&m, 0);
    struct cmap_cmd cc = cu_create("w", 4, 3, ids3, 3);
    cc.u.coll_create.cfg.write_consistency_factor = CMAP_MAX_RF + 1;
    assert_int_equal(run_free(&m, cc), DV_EINVAL);
    cc = cu_create("w", 4, 3, ids3, 3);
    cc.u.coll_create.cfg.write_consistency_factor = 2;
    assert_int_equal(run_free(&m, cc), DV_OK);
    assert_int_equal(cmap_coll_find(&m, "w")->cfg.write_consistency_factor, 2);
    struct buf b = BUF_INIT;
    struct cmap back;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(cmap_encode(&m, &b), DV_OK);
    assert_int_equal(cmap_decode(b.data, b.len, &back, err), DV_OK);
    assert_int_equal(cmap_coll_find(&back, "w")->cfg.write_consistency_factor, 2);
    assert_int_equal(cmap_coll_find(&back, "c")->cfg.write_consistency_factor, 1);
    cmap_free(&back);
    buf_free(&b);
    cmap_free(&m);
}

/*
 * Written by the encoder of a build before replication (before terms, replica states and the
 * write consistency factor; generated with that build's cmap_encode and cmap_cmd_encode, not
 * hand-made): nodes a,
 * b, c; collection "k" (2 partitions, rf 2, created from a, b, c) with k/1 set to [b, c],
 * primary c; remembering 2 request ids. And that build's create of "k" (1 partition, request
 * id 1:2).
 */
static const uint8_t snap_v1[] = {
    0x43, 0x4d, 0x41, 0x50, 0x01, 0x00, 0x00, 0x00, 0xe1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xb3, 0x64, 0x85, 0x06, 0x00, 0x00, 0x00, 0x00, 0x98, 0x05, 0x02, 0x93, 0x97, 0xa1, 0x61, 0xb2,
    0x74, 0x63, 0x70, 0x3a, 0x2f, 0x2f, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31, 0x3a,
    0x37, 0x61, 0xb3, 0x68, 0x74, 0x74, 0x70, 0x3a, 0x2f, 0x2f, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e,
    0x30, 0x2e, 0x31, 0x3a, 0x38, 0x61, 0xcb, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0xcd, 0x03, 0xe8, 0x90, 0x97, 0xa1, 0x62, 0xb2, 0x74, 0x63, 0x70, 0x3a, 0x2f, 0x2f, 0x31, 0x32,
    0x37, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31, 0x3a, 0x37, 0x62, 0xb3, 0x68, 0x74, 0x74, 0x70, 0x3a,
    0x2f, 0x2f, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31, 0x3a, 0x38, 0x62, 0xcb, 0x3f,
    0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xcd, 0x03, 0xe8, 0x90, 0x97, 0xa1, 0x63, 0xb2,
    0x74, 0x63, 0x70, 0x3a, 0x2f, 0x2f, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31, 0x3a,
    0x37, 0x63, 0xb3, 0x68, 0x74, 0x74, 0x70, 0x3a, 0x2f, 0x2f, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e,
    0x30, 0x2e, 0x31, 0x3a, 0x38, 0x63, 0xcb, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0xcd, 0x03, 0xe8, 0x90, 0x91, 0x94, 0xa1, 0x6b, 0x99, 0x08, 0x02, 0x10, 0xcc, 0xc8, 0x40, 0x02,
    0x02, 0x01, 0xc2, 0x04, 0x92, 0x93, 0x04, 0x00, 0x92, 0x00, 0x01, 0x93, 0x05, 0x02, 0x92, 0x01,
    0x02, 0x90, 0x92, 0x95, 0x07, 0x04, 0x00, 0x04, 0xa0, 0x95, 0x07, 0x05, 0x00, 0x05, 0xa0, 0x90,
    0x94, 0xc2, 0xc3, 0xce, 0x04, 0x00, 0x00, 0x00, 0x02,
};
static const uint8_t create_v1[] = {
    0x95, 0x01, 0x05, 0x01, 0x02, 0x94, 0xa1, 0x6b, 0x99, 0x08, 0x02, 0x10, 0xcc, 0xc8, 0x40, 0x01,
    0x02, 0x01, 0xc2, 0x93, 0xa1, 0x61, 0xa1, 0x62, 0xa1, 0x63, 0x91, 0x92, 0x00, 0x92, 0x00, 0x01,
};

/* A map and a create command written before replication still read: every partition at term
 * 1 with every replica active, write_consistency_factor 1; written again they read back equal,
 * and the map goes on (a promotion opens term 2). */
static void test_old_format(void **state)
{
    struct cmap m, d;
    char err[DV_ERRMSG_SIZE];
    if (cmap_decode(snap_v1, sizeof snap_v1, &m, err) != DV_OK)
        fail_msg("decode: %s", err);
    assert_true(m.epoch == 5 && m.n_nodes == 3 && m.n_colls == 1 && m.dedup_cap == 2);
    const struct cmap_coll *c = cmap_coll_find(&m, "k");
    assert_non_null(c);
    assert_int_equal(c->cfg.rf, 2);
    assert_int_equal(c->cfg.write_consistency_factor, 1);
    static const uint32_t nodes[2][2] = {{0, 1}, {1, 2}}, primary[2] = {0, 2};
    for (uint32_t p = 0; p < 2; p++) {
        const struct cmap_part *pt = &c->parts[p];
        assert_true(pt->n == 2 && pt->term == 1 && pt->primary == primary[p]);
        for (uint32_t k = 0; k < 2; k++) {
            assert_int_equal(pt->nodes[k], nodes[p][k]);
            assert_int_equal(pt->state[k], CMAP_REPLICA_ACTIVE);
        }
    }
    struct buf b = BUF_INIT;
    assert_int_equal(cmap_encode(&m, &b), DV_OK);
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_OK);
    assert_true(cmap_equal(&m, &d));
    cmap_free(&d);
    buf_free(&b);
    assert_int_equal(run_free(&m, cu_promote("k", 1, "b", 1)), DV_OK);
    assert_true(cmap_part_find(&m, "k", 1)->term == 2);

    struct cmap_cmd cmd;
    assert_int_equal(cmap_cmd_decode(create_v1, sizeof create_v1, &cmd, err), DV_OK);
    assert_int_equal(cmd.type, CMAP_CMD_COLL_CREATE);
    assert_int_equal(cmd.u.coll_create.cfg.rf, 2);
    assert_int_equal(cmd.u.coll_create.cfg.write_consistency_factor, 1);
    cmap_cmd_free(&cmd);
    assert_int_equal(run_free(&m, cu_drop("k")), DV_OK);
    struct cmap_results res = {0};
    assert_int_equal(cmap_apply(&m, create_v1, sizeof create_v1, &res), DV_OK);
    assert_int_equal(res.r[0].code, DV_OK);
    c = cmap_coll_find(&m, "k");
    assert_true(c->cfg.write_consistency_factor == 1 && c->parts[0].term == 1);
    cmap_results_free(&res);
    cmap_free(&m);
}

/* Coordinators: set adds or updates, remove deletes, every bad field is named. */
static void test_coords(void **state)
{
    struct cmap m;
    base_map(&m, 0);
    assert_null(cmap_coord_find(&m, 1));
    /* Added out of order, kept in id order. */
    assert_int_equal(run_free(&m, cu_coord(3, CMAP_COORD_VOTER)), DV_OK);
    assert_int_equal(run_free(&m, cu_coord(1, CMAP_COORD_VOTER)), DV_OK);
    assert_int_equal(run_free(&m, cu_coord(2, CMAP_COORD_SPARE)), DV_OK);
    assert_int_equal(m.n_coords, 3);
    for (uint32_t i = 0; i < 3; i++)
        assert_true(m.coords[i].id == i + 1);
    const struct cmap_coord *c = cmap_coord_find(&m, 2);
    assert_non_null(c);
    assert_string_equal(c->raft_addr, "127.0.0.1:9002");
    assert_string_equal(c->client_url, "tcp://127.0.0.1:6002");
    assert_int_equal(c->role, CMAP_COORD_SPARE);
    assert_string_equal(cmap_coord_role_name(c->role), "spare");
    assert_string_equal(cmap_coord_role_name(CMAP_COORD_ROLE_COUNT), "unknown");

    /* Set twice: the second updates in place (raft_assign's step), the epoch moves on. */
    uint64_t epoch = m.epoch;
    struct cmap_cmd up = cu_coord(2, CMAP_COORD_VOTER);
    snprintf(up.u.coord_set.client_url, sizeof up.u.coord_set.client_url, "tcp://10.0.0.2:7000");
    struct cmap_result r = run(&m, &up);
    assert_int_equal(r.code, DV_OK);
    assert_true(r.epoch == epoch + 1);
    assert_int_equal(m.n_coords, 3);
    c = cmap_coord_find(&m, 2);
    assert_int_equal(c->role, CMAP_COORD_VOTER);
    assert_string_equal(c->client_url, "tcp://10.0.0.2:7000");
    assert_string_equal(c->raft_addr, "127.0.0.1:9002");

    /* Retried, it is answered from the request-id memory and changes nothing. */
    struct cmap snap;
    assert_int_equal(cmap_copy(&snap, &m), DV_OK);
    struct cmap_result r2 = run(&m, &up);
    assert_int_equal(r2.code, DV_OK);
    assert_true(r2.dup);
    assert_true(r2.epoch == r.epoch);
    assert_true(cmap_equal(&m, &snap));
    cmap_free(&snap);

    /* Bad fields: DV_EINVAL naming the field, the map unchanged. */
    assert_int_equal(cmap_copy(&snap, &m), DV_OK);
    static const struct {
        uint64_t id;
        const char *raft_addr, *client_url;
        int role;
        const char *field;
    } bad[] = {
        {0, "127.0.0.1:9100", "tcp://x:1", CMAP_COORD_VOTER, "id"},
        {9, "127.0.0.1", "tcp://x:1", CMAP_COORD_VOTER, "raft_addr"},
        {9, ":9100", "tcp://x:1", CMAP_COORD_VOTER, "raft_addr"},
        {9, "host:0", "tcp://x:1", CMAP_COORD_VOTER, "raft_addr"},
        {9, "host:65536", "tcp://x:1", CMAP_COORD_VOTER, "raft_addr"},
        {9, "host:9a", "tcp://x:1", CMAP_COORD_VOTER, "raft_addr"},
        {9, "", "tcp://x:1", CMAP_COORD_VOTER, "raft_addr"},
        {9, "host:9100", "", CMAP_COORD_VOTER, "client_url"},
        {9, "host:9100", "tcp://x :1", CMAP_COORD_VOTER, "client_url"},
        {9, "host:9100", "tcp://x:1", CMAP_COORD_ROLE_COUNT, "role"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cmap_cmd b = cu_coord(bad[i].id, bad[i].role);
        snprintf(b.u.coord_set.raft_addr, sizeof b.u.coord_set.raft_addr, "%s", bad[i].raft_addr);
        snprintf(b.u.coord_set.client_url, sizeof b.u.coord_set.client_url, "%s",
                 bad[i].client_url);
        r = run(&m, &b);
        assert_int_equal(r.code, DV_EINVAL);
        if (!strstr(r.msg, bad[i].field))
            fail_msg("case %zu: \"%s\" does not name %s", i, r.msg, bad[i].field);
    }
    /* Another coordinator's raft address. */
    struct cmap_cmd dup = cu_coord(9, CMAP_COORD_SPARE);
    snprintf(dup.u.coord_set.raft_addr, sizeof dup.u.coord_set.raft_addr, "127.0.0.1:9001");
    r = run(&m, &dup);
    assert_int_equal(r.code, DV_EEXIST);
    assert_non_null(strstr(r.msg, "raft_addr"));
    /* Remove: unknown id and id 0. */
    struct cmap_cmd rm = cu_coord_remove(4);
    r = run(&m, &rm);
    assert_int_equal(r.code, DV_ENOTFOUND);
    assert_non_null(strstr(r.msg, "coordinator 4"));
    assert_int_equal(run_free(&m, cu_coord_remove(0)), DV_EINVAL);
    assert_int_equal(m.n_coords, 3);
    assert_int_equal(m.epoch, snap.epoch);
    cmap_free(&snap);

    /* Removed for good; its retry is a duplicate, a new attempt is DV_ENOTFOUND. */
    rm = cu_coord_remove(2);
    assert_int_equal(run(&m, &rm).code, DV_OK);
    assert_null(cmap_coord_find(&m, 2));
    assert_non_null(cmap_coord_find(&m, 1));
    assert_non_null(cmap_coord_find(&m, 3));
    r = run(&m, &rm);
    assert_int_equal(r.code, DV_OK);
    assert_true(r.dup);
    assert_int_equal(run_free(&m, cu_coord_remove(2)), DV_ENOTFOUND);
    /* The REMOVED role keeps the record (left raft's configuration, not yet forgotten); its
     * raft address may then move to a new id only once the record is gone. */
    assert_int_equal(run_free(&m, cu_coord(3, CMAP_COORD_REMOVED)), DV_OK);
    assert_int_equal(cmap_coord_find(&m, 3)->role, CMAP_COORD_REMOVED);
    dup = cu_coord(33, CMAP_COORD_SPARE);
    snprintf(dup.u.coord_set.raft_addr, sizeof dup.u.coord_set.raft_addr, "127.0.0.1:9003");
    assert_int_equal(run(&m, &dup).code, DV_EEXIST);
    assert_int_equal(run_free(&m, cu_coord_remove(3)), DV_OK);
    dup.req = cu_rid();
    assert_int_equal(run(&m, &dup).code, DV_OK);

    /* At most CMAP_MAX_COORDS. */
    for (uint64_t id = 100; m.n_coords < CMAP_MAX_COORDS; id++)
        assert_int_equal(run_free(&m, cu_coord(id, CMAP_COORD_STANDBY)), DV_OK);
    assert_int_equal(run_free(&m, cu_coord(500, CMAP_COORD_SPARE)), DV_EFULL);
    assert_int_equal(run_free(&m, cu_coord(100, CMAP_COORD_VOTER)), DV_OK); /* an update */
    cmap_free(&m);
}

/* ---- idempotency and batches ------------------------------------------------------------- */

static void test_idempotent(void **state)
{
    struct cmap m, snap;
    base_map(&m, 4);
    struct cmap_cmd create = cu_create("d", 4, 1, ids3, 3);
    struct cmap_result r1 = run(&m, &create);
    assert_int_equal(r1.code, DV_OK);
    assert_false(r1.dup);
    assert_int_equal(cmap_copy(&snap, &m), DV_OK);
    /* The retry changes nothing and answers the first result. */
    struct cmap_result r2 = run(&m, &create);
    assert_int_equal(r2.code, DV_OK);
    assert_true(r2.dup);
    assert_int_equal(r2.epoch, r1.epoch);
    assert_true(cmap_equal(&m, &snap));
    /* A command that failed fails again the same way, as a retry. */
    struct cmap_cmd again = cu_create("d", 4, 1, ids3, 3);
    struct cmap_result r3 = run(&m, &again);
    assert_int_equal(r3.code, DV_EEXIST);
    assert_false(r3.dup);
    struct cmap_result r4 = run(&m, &again);
    assert_int_equal(r4.code, DV_EEXIST);
    assert_true(r4.dup);
    assert_string_equal(r4.msg, r3.msg);
    assert_int_equal(m.n_seen, 4);
    cmap_free(&snap);

    /* The memory holds 4 ids: after 4 more commands the create is forgotten, and a retry
     * now reads as a new command (here: the name exists). */
    for (int i = 0; i < 4; i++)
        assert_int_equal(run_free(&m, cu_state("n0", CMAP_NODE_KEEP, 100 + i)), DV_OK);
    assert_int_equal(m.n_seen, 4);
    struct cmap_result r5 = run(&m, &create);
    assert_int_equal(r5.code, DV_EEXIST);
    assert_false(r5.dup);
    cmap_cmd_free(&create);
    cmap_cmd_free(&again);

    /* A zero request id is refused and not remembered. */
    struct cmap_cmd z = cu_drop("d");
    z.req = cmap_reqid_make(0, 0);
    struct cmap_result rz;
    assert_int_equal(cmap_apply_cmd(&m, &z, &rz), DV_OK);
    assert_int_equal(rz.code, DV_EINVAL);
    assert_non_null(cmap_coll_find(&m, "d"));
    cmap_free(&m);
}

static void test_batch(void **state)
{
    struct cmap m;
    base_map(&m, 0);
    struct cmap_cmd cmds[3] = {cu_reg("n3", CMAP_NODE_ALIVE, 1.0), cu_drop("nope"),
                               cu_create("d", 4, 2, ids3, 3)};
    struct buf enc[3] = {BUF_INIT, BUF_INIT, BUF_INIT};
    const void *ptrs[3];
    size_t lens[3];
    char err[DV_ERRMSG_SIZE];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cmap_cmd_encode(&cmds[i], &enc[i], err), DV_OK);
        ptrs[i] = enc[i].data;
        lens[i] = enc[i].len;
    }
    struct buf batch = BUF_INIT;
    assert_int_equal(cmap_batch_pack(ptrs, lens, 3, &batch, err), DV_OK);
    assert_int_equal(batch.len % 8, 0);
    struct cmap_results res = {0};
    uint64_t epoch = m.epoch;
    assert_int_equal(cmap_apply(&m, batch.data, batch.len, &res), DV_OK);
    assert_int_equal(res.n, 3);
    assert_int_equal(res.r[0].code, DV_OK);
    assert_int_equal(res.r[1].code, DV_ENOTFOUND);
    assert_int_equal(res.r[2].code, DV_OK);
    assert_int_equal(res.r[2].epoch, epoch + 2);
    assert_int_equal(m.epoch, epoch + 2);
    assert_non_null(cmap_node_find(&m, "n3"));
    assert_non_null(cmap_coll_find(&m, "d"));

    /* The same batch again: every member is a retry. */
    struct cmap snap;
    assert_int_equal(cmap_copy(&snap, &m), DV_OK);
    assert_int_equal(cmap_apply(&m, batch.data, batch.len, &res), DV_OK);
    assert_int_equal(res.n, 3);
    for (int i = 0; i < 3; i++)
        assert_true(res.r[i].dup);
    assert_int_equal(res.r[1].code, DV_ENOTFOUND);
    assert_true(cmap_equal(&m, &snap));
    cmap_free(&snap);

    /* A batch is one entry, not a command; a batch cannot hold a batch or junk. */
    struct cmap_cmd d;
    assert_int_equal(cmap_cmd_decode(batch.data, batch.len, &d, err), DV_EPROTO);
    const void *bp[1] = {batch.data};
    size_t bl[1] = {batch.len};
    struct buf out = BUF_INIT;
    assert_int_equal(cmap_batch_pack(bp, bl, 1, &out, err), DV_EINVAL);
    const void *jp[1] = {"\x95\x01"};
    size_t jl[1] = {2};
    assert_int_equal(cmap_batch_pack(jp, jl, 1, &out, err), DV_EINVAL);
    assert_int_equal(cmap_batch_pack(ptrs, lens, 0, &out, err), DV_EINVAL);
    assert_int_equal(out.len, 0);

    /* A member that is well-formed msgpack but not a command answers DV_EPROTO alone. */
    mpw_array(&out, 5);
    mpw_u64(&out, 1);
    mpw_u64(&out, CMAP_CMD_BATCH);
    mpw_u64(&out, 0);
    mpw_u64(&out, 0);
    mpw_array(&out, 2);
    mpw_array(&out, 5);
    mpw_u64(&out, 1);
    mpw_u64(&out, CMAP_CMD_COLL_DROP);
    mpw_u64(&out, 1);
    mpw_u64(&out, 1);
    mpw_str(&out, "not a tuple", 11);
    struct cmap_cmd drop = cu_drop("d");
    assert_int_equal(cmap_cmd_encode(&drop, &out, err), DV_OK); /* padding inside: trim it */
    while (out.data[out.len - 1] == 0)
        out.len--;
    while (out.len % 8)
        buf_put_u8(&out, 0);
    assert_int_equal(cmap_apply(&m, out.data, out.len, &res), DV_OK);
    assert_int_equal(res.n, 2);
    assert_int_equal(res.r[0].code, DV_EPROTO);
    assert_int_equal(res.r[1].code, DV_OK);
    assert_null(cmap_coll_find(&m, "d"));

    /* Truncating a batch anywhere answers one DV_EPROTO and changes nothing. */
    assert_int_equal(cmap_copy(&snap, &m), DV_OK);
    size_t end = batch.len;
    while (batch.data[end - 1] == 0)
        end--;
    for (size_t cut = 0; cut < end; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, batch.data, cut);
        assert_int_equal(cmap_apply(&m, copy, cut, &res), DV_OK);
        assert_int_equal(res.n, 1);
        assert_int_equal(res.r[0].code, DV_EPROTO);
        free(copy);
    }
    assert_true(cmap_equal(&m, &snap));
    cmap_free(&snap);

    for (int i = 0; i < 3; i++) {
        cmap_cmd_free(&cmds[i]);
        buf_free(&enc[i]);
    }
    buf_free(&batch);
    buf_free(&out);
    cmap_results_free(&res);
    cmap_free(&m);
}

/* ---- snapshots --------------------------------------------------------------------------- */

/* A map with some of everything, its request-id ring wrapped around. */
static void rich_map(struct cmap *m)
{
    base_map(m, 8);
    assert_int_equal(run_free(m, cu_reg_reports("n3", 4)), DV_OK);
    assert_int_equal(run_free(m, cu_weight("n3", 0.1)), DV_OK);
    assert_int_equal(run_free(m, cu_state("n2", CMAP_NODE_SUSPECT, 99999)), DV_OK);
    static const char *const four[] = {"n0", "n1", "n2", "n3"};
    assert_int_equal(run_free(m, cu_create("big", 64, 3, four, 4)), DV_OK);
    assert_int_equal(run_free(m, cu_pset("big", 9, 0, four + 1, 3, 2)), DV_OK);
    assert_int_equal(
        run_free(m, cu_move(CMAP_CMD_MOVE_ADD, "big", 9, "n1", "n0", CMAP_MOVE_CATCHING_UP)),
        DV_OK);
    assert_int_equal(run_free(m, cu_move(CMAP_CMD_MOVE_ADD, "c", 0, "n0", "n3", CMAP_MOVE_PLANNED)),
                     DV_OK);
    assert_int_equal(run_free(m, cu_drop("missing")), DV_ENOTFOUND); /* a failure to remember */
    assert_int_equal(run_free(m, cu_reg("n4", CMAP_NODE_ALIVE, 1.0)), DV_OK);
    assert_int_equal(run_free(m, cu_remove("n4", false)), DV_OK);
    assert_int_equal(run_free(m, cu_coord(7, CMAP_COORD_VOTER)), DV_OK);
    assert_int_equal(run_free(m, cu_coord(2, CMAP_COORD_SPARE)), DV_OK);
    assert_int_equal(run_free(m, cu_coord(UINT64_MAX, CMAP_COORD_REMOVED)), DV_OK);
    assert_true(m->n_seen == m->dedup_cap && m->seen_head != 0);
}

static void test_snapshot_roundtrip(void **state)
{
    struct cmap m, d, cp;
    char err[DV_ERRMSG_SIZE];
    rich_map(&m);
    struct buf b = BUF_INIT, b2 = BUF_INIT;
    assert_int_equal(cmap_encode(&m, &b), DV_OK);
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_OK);
    assert_true(cmap_equal(&m, &d));
    assert_int_equal(cmap_encode(&d, &b2), DV_OK);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);
    /* The decoded map goes on exactly like the original. */
    struct cmap_cmd next = cu_pset("c", 3, 0, ids3, 3, 1);
    struct cmap_result r1 = run(&m, &next), r2 = run(&d, &next);
    assert_int_equal(r1.code, DV_OK);
    assert_int_equal(r2.code, DV_OK);
    assert_true(cmap_equal(&m, &d));
    /* A copy too. */
    assert_int_equal(cmap_copy(&cp, &m), DV_OK);
    assert_true(cmap_equal(&m, &cp));
    assert_int_equal(run_free(&cp, cu_state("n0", CMAP_NODE_DEAD, 1)), DV_OK);
    assert_false(cmap_equal(&m, &cp));
    cmap_free(&cp);
    /* The coordinators travel in both, and count for equality. */
    assert_int_equal(d.n_coords, 3);
    assert_int_equal(cmap_coord_find(&d, 2)->role, CMAP_COORD_SPARE);
    assert_string_equal(cmap_coord_find(&d, 7)->client_url, "tcp://127.0.0.1:6007");
    assert_int_equal(cmap_copy(&cp, &m), DV_OK);
    assert_int_equal(cp.n_coords, 3);
    assert_int_equal(run_free(&cp, cu_coord(7, CMAP_COORD_STANDBY)), DV_OK);
    struct cmap_cmd dead = cu_state("n0", CMAP_NODE_DEAD, 1);
    assert_int_equal(run(&m, &dead).code, DV_OK);
    assert_int_equal(run(&d, &dead).code, DV_OK);
    assert_true(cmap_equal(&m, &d));
    assert_true(cp.epoch == m.epoch); /* same epoch, different coordinator */
    assert_false(cmap_equal(&m, &cp));
    cmap_free(&cp);
    cmap_free(&d);
    cmap_free(&m);

    /* An empty map. */
    assert_int_equal(cmap_init(&m, 0), DV_OK);
    buf_reset(&b);
    assert_int_equal(cmap_encode(&m, &b), DV_OK);
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_OK);
    assert_true(cmap_equal(&m, &d));
    assert_int_equal(d.dedup_cap, CMAP_DEDUP_DEFAULT);
    cmap_free(&d);
    cmap_free(&m);

    /* A snapshot written before the coordinators existed: a body of 6 elements, which still
     * reads (as a map without coordinators) under the same version. */
    base_map(&m, 0);
    buf_reset(&b);
    assert_int_equal(cmap_encode(&m, &b), DV_OK);
    assert_int_equal(b.data[24], 0x98);
    /* the settings come last: [false, true, 64 MiB, 2] */
    static const uint8_t set_enc[] = {0x94, 0xc2, 0xc3, 0xce, 0x04, 0, 0, 0, 0x02};
    assert_memory_equal(b.data + b.len - 9, set_enc, 9);
    assert_int_equal(b.data[b.len - 10], 0x90); /* no coordinators */
    /* Written before the settings existed (7 elements): the default settings. */
    m.settings.paused = true; /* not what a 7-element snapshot gives */
    b.data[24] = 0x97;
    b.len -= 9;
    buf_wr_le64(b.data + 8, b.len - 24);
    buf_wr_le32(b.data + 16, crc32c(b.data + 24, b.len - 24));
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_OK);
    assert_false(cmap_equal(&m, &d));
    m.settings.paused = false;
    assert_true(cmap_equal(&m, &d));
    assert_true(d.settings.auto_rebalance && d.settings.rate == CMAP_RATE_DEFAULT);
    cmap_free(&d);
    b.data[24] = 0x96;
    b.len--;
    buf_wr_le64(b.data + 8, b.len - 24);
    buf_wr_le32(b.data + 16, crc32c(b.data + 24, b.len - 24));
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_OK);
    assert_true(cmap_equal(&m, &d));
    assert_int_equal(d.n_coords, 0);
    cmap_free(&d);
    /* 5 or 9 elements are not a map. */
    b.data[24] = 0x95;
    buf_wr_le32(b.data + 16, crc32c(b.data + 24, b.len - 24));
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_ECORRUPT);
    cmap_free(&m);
    buf_free(&b);
    buf_free(&b2);
}

/* Rebalancing settings: defaults, each one alone, bad values refused with the map unchanged,
 * carried by snapshots. */
static void test_settings(void **state)
{
    struct cmap m, d;
    struct cmap_result res;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(cmap_init(&m, 0), DV_OK);
    assert_false(m.settings.paused);
    assert_true(m.settings.auto_rebalance);
    assert_true(m.settings.rate == CMAP_RATE_DEFAULT);
    assert_int_equal(m.settings.moves_per_node, CMAP_MOVES_PER_NODE);
    struct cmap_cmd c = {.type = CMAP_CMD_SETTINGS, .req = cmap_reqid_make(1, 1)};
    c.u.settings.mask = CMAP_SET_PAUSED;
    c.u.settings.set = (struct cmap_settings){true, false, 5, 0};
    assert_int_equal(cmap_apply_cmd(&m, &c, &res), DV_OK);
    assert_int_equal(res.code, DV_OK);
    assert_true(m.settings.paused && m.settings.auto_rebalance);
    assert_int_equal(m.settings.moves_per_node, CMAP_MOVES_PER_NODE);
    uint64_t epoch = m.epoch;
    c.req.lo++;
    c.u.settings.mask = CMAP_SET_MOVES_PER_NODE | CMAP_SET_RATE;
    assert_int_equal(cmap_apply_cmd(&m, &c, &res), DV_OK);
    assert_int_equal(res.code, DV_EINVAL);
    assert_non_null(strstr(res.msg, "moves_per_node must be 1 to 64, not 0"));
    assert_true(m.epoch == epoch && m.settings.rate == CMAP_RATE_DEFAULT);
    c.req.lo++;
    c.u.settings.mask = 16;
    assert_int_equal(cmap_apply_cmd(&m, &c, &res), DV_OK);
    assert_int_equal(res.code, DV_EINVAL);
    c.req.lo++;
    c.u.settings.mask = CMAP_SET_ALL;
    c.u.settings.set = (struct cmap_settings){false, false, 1000, 3};
    assert_int_equal(cmap_apply_cmd(&m, &c, &res), DV_OK);
    assert_int_equal(res.code, DV_OK);
    assert_true(!m.settings.paused && !m.settings.auto_rebalance && m.settings.rate == 1000 &&
                m.settings.moves_per_node == 3);
    struct buf b = BUF_INIT;
    assert_int_equal(cmap_encode(&m, &b), DV_OK);
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_OK);
    assert_true(cmap_equal(&m, &d));
    cmap_free(&d);
    /* moves_per_node 0 in a snapshot breaks an invariant */
    b.data[b.len - 1] = 0;
    buf_wr_le32(b.data + 16, crc32c(b.data + 24, b.len - 24));
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_ECORRUPT);
    assert_non_null(strstr(err, "moves_per_node"));
    buf_free(&b);
    cmap_free(&m);
}

/* A snapshot whose coordinator table breaks an invariant apply keeps (written by changing the
 * map behind apply's back): DV_ECORRUPT naming the field. */
static void test_snapshot_bad_coords(void **state)
{
    static const struct {
        int what;
        const char *field;
    } cases[] = {
        {0, "coordinator id"},     {1, "coordinator id"},     {2, "raft_addr"},
        {3, "client_url"},         {4, "coordinator 2 role"}, {5, "raft_addr"},
        {6, "coordinators count"},
    };
    char err[DV_ERRMSG_SIZE];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cmap m, d;
        struct buf b = BUF_INIT;
        assert_int_equal(cmap_init(&m, 0), DV_OK);
        for (uint64_t id = 1; id <= 3; id++)
            assert_int_equal(run_free(&m, cu_coord(id, CMAP_COORD_VOTER)), DV_OK);
        struct cmap_coord *c = &m.coords[1];
        switch (cases[i].what) {
        case 0:
            c->id = 0;
            break;
        case 1:
            c->id = 1; /* repeated, so out of order */
            break;
        case 2:
            snprintf(c->raft_addr, sizeof c->raft_addr, "no-port");
            break;
        case 3:
            c->client_url[0] = '\0';
            break;
        case 4:
            c->role = 9;
            break;
        case 5:
            memcpy(c->raft_addr, m.coords[0].raft_addr, sizeof c->raft_addr);
            break;
        default: {
            /* More than CMAP_MAX_COORDS. */
            struct cmap_coord *more = realloc(m.coords, (CMAP_MAX_COORDS + 1) * sizeof *more);
            assert_non_null(more);
            m.coords = more;
            for (uint32_t k = 0; k <= CMAP_MAX_COORDS; k++) {
                more[k] = m.coords[0];
                more[k].id = k + 1;
                snprintf(more[k].raft_addr, sizeof more[k].raft_addr, "h:%u", 1000 + k);
            }
            m.n_coords = m.cap_coords = CMAP_MAX_COORDS + 1;
            break;
        }
        }
        assert_int_equal(cmap_encode(&m, &b), DV_OK);
        assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_ECORRUPT);
        if (!strstr(err, cases[i].field))
            fail_msg("case %zu: \"%s\" does not name %s", i, err, cases[i].field);
        buf_free(&b);
        cmap_free(&m);
    }
}

/* Fixes the header's CRC after the body was changed on purpose. */
static void reseal(uint8_t *p, size_t n)
{
    buf_wr_le32(p + 16, crc32c(p + 24, n - 24));
}

static void test_snapshot_corrupt(void **state)
{
    struct cmap m, d;
    char err[DV_ERRMSG_SIZE];
    rich_map(&m);
    struct buf b = BUF_INIT;
    assert_int_equal(cmap_encode(&m, &b), DV_OK);

    /* Every truncation. */
    for (size_t cut = 0; cut < b.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.data, cut);
        assert_int_equal(cmap_decode(copy, cut, &d, err), DV_ECORRUPT);
        free(copy);
    }
    /* Every byte changed: caught by the header checks or the CRC. */
    uint8_t *copy = malloc(b.len);
    for (size_t at = 0; at < b.len; at++) {
        memcpy(copy, b.data, b.len);
        copy[at] ^= (uint8_t)(1 + rng() % 255);
        int rc = cmap_decode(copy, b.len, &d, err);
        assert_true(rc == DV_ECORRUPT || (at >= 4 && at < 8 && rc == DV_EPROTO));
    }
    /* Behind a valid CRC, the body checks: change bytes, reseal, decode. A map that decodes
     * must be whole: it encodes, decodes again and equals itself. */
    int decoded = 0;
    for (size_t at = 24; at < b.len; at++) {
        for (int k = 0; k < 3; k++) {
            memcpy(copy, b.data, b.len);
            copy[at] = k == 0 ? (uint8_t)(copy[at] + 1) : (uint8_t)rng();
            reseal(copy, b.len);
            int rc = cmap_decode(copy, b.len, &d, err);
            assert_true(rc == DV_OK || rc == DV_ECORRUPT);
            if (rc == DV_OK) {
                struct buf again = BUF_INIT;
                struct cmap d2;
                assert_int_equal(cmap_encode(&d, &again), DV_OK);
                assert_int_equal(cmap_decode(again.data, again.len, &d2, err), DV_OK);
                assert_true(cmap_equal(&d, &d2));
                cmap_free(&d2);
                buf_free(&again);
                cmap_free(&d);
                decoded++;
            }
        }
    }
    assert_true(decoded > 0); /* e.g. a changed heartbeat or lsn */
    /* An unknown version. */
    memcpy(copy, b.data, b.len);
    buf_wr_le32(copy + 4, 2);
    assert_int_equal(cmap_decode(copy, b.len, &d, err), DV_EPROTO);
    free(copy);
    /* Random bytes behind a valid header. */
    for (int t = 0; t < 2000; t++) {
        uint8_t junk[96];
        size_t len = 24 + rng() % (sizeof junk - 24);
        for (size_t k = 24; k < len; k++)
            junk[k] = (uint8_t)rng();
        if (t % 2)
            junk[24] = 0x96; /* an array of 6 */
        memcpy(junk, "CMAP", 4);
        buf_wr_le32(junk + 4, 1);
        buf_wr_le64(junk + 8, len - 24);
        buf_wr_le32(junk + 20, 0);
        reseal(junk, len);
        int rc = cmap_decode(junk, len, &d, err);
        assert_true(rc == DV_OK || rc == DV_ECORRUPT);
        if (rc == DV_OK)
            cmap_free(&d);
    }
    buf_free(&b);
    cmap_free(&m);
}

/*
 * Fault sweep (SQLite's do_faultsim_test): fail the 1st, 2nd, ... allocation while a series
 * of entries is applied. A single command that gets DV_ENOMEM leaves the map exactly as it
 * was; applied again it succeeds. A batch may stop in the middle; applied again, the members
 * done already answer from the request-id memory. Either way the final map equals the one
 * of a run without faults.
 */
/* Applies one alias command of n actions; returns the result (its message in *msg). */
static struct cmap_result alias_run(struct cmap *m, uint32_t n, const uint32_t *ops,
                                    const char *const *a, const char *const *b)
{
    struct cmap_cmd cmd = cu_alias(n, ops, a, b);
    struct cmap_result r = run(m, &cmd);
    cmap_cmd_free(&cmd);
    return r;
}

static const char *alias_of(const struct cmap *m, const char *name)
{
    const struct cmap_alias *a = cmap_alias_find(m, name);
    return a ? a->coll : NULL;
}

/* Aliases: create, delete, rename in order, all or nothing, with the failing action named;
 * a swap in one command; collisions with collections both ways; a drop takes its aliases. */
static void test_aliases(void **state)
{
    (void)state;
    struct cmap m;
    base_map(&m, 0);
    assert_int_equal(run_free(&m, cu_create("d", 4, 2, ids3, 3)), DV_OK);
    static const uint32_t C = CMAP_ALIAS_CREATE, D = CMAP_ALIAS_DELETE, R = CMAP_ALIAS_RENAME;

    struct cmap_result r = alias_run(&m, 1, &C, (const char *[]){"prod"}, (const char *[]){"c"});
    assert_int_equal(r.code, DV_OK);
    assert_string_equal(alias_of(&m, "prod"), "c");
    assert_ptr_equal(cmap_coll_resolve(&m, "prod"), cmap_coll_find(&m, "c"));
    assert_ptr_equal(cmap_coll_resolve(&m, "d"), cmap_coll_find(&m, "d"));
    assert_null(cmap_coll_resolve(&m, "nope"));

    /* All or nothing: the second action fails, the first is not applied. */
    uint64_t epoch = m.epoch;
    r = alias_run(&m, 2, (const uint32_t[]){C, C}, (const char *[]){"a1", "a2"},
                  (const char *[]){"c", "missing"});
    assert_int_equal(r.code, DV_ENOTFOUND);
    assert_non_null(strstr(r.msg, "action 1 (create_alias)"));
    assert_non_null(strstr(r.msg, "missing"));
    assert_null(cmap_alias_find(&m, "a1"));
    assert_int_equal(m.epoch, epoch);

    /* Clashes: an alias named like a collection or another alias, a collection named like an
     * alias, a bad name, unknown aliases to delete or rename. */
    assert_int_equal(alias_run(&m, 1, &C, (const char *[]){"d"}, (const char *[]){"c"}).code,
                     DV_EEXIST);
    assert_int_equal(alias_run(&m, 1, &C, (const char *[]){"prod"}, (const char *[]){"d"}).code,
                     DV_EEXIST);
    assert_int_equal(alias_run(&m, 1, &C, (const char *[]){"bad name"}, (const char *[]){"d"}).code,
                     DV_EINVAL);
    assert_int_equal(alias_run(&m, 1, &C, (const char *[]){"x"}, (const char *[]){"prod"}).code,
                     DV_ENOTFOUND); /* an alias of an alias is not a collection */
    r = alias_run(&m, 1, &D, (const char *[]){"ghost"}, (const char *[]){NULL});
    assert_int_equal(r.code, DV_ENOTFOUND);
    assert_non_null(strstr(r.msg, "ghost"));
    assert_int_equal(alias_run(&m, 1, &R, (const char *[]){"ghost"}, (const char *[]){"g2"}).code,
                     DV_ENOTFOUND);
    assert_int_equal(alias_run(&m, 1, &R, (const char *[]){"prod"}, (const char *[]){"c"}).code,
                     DV_EEXIST);
    assert_int_equal(run_free(&m, cu_create("prod", 4, 2, ids3, 3)), DV_EEXIST);
    assert_int_equal(m.epoch, epoch);
    assert_string_equal(alias_of(&m, "prod"), "c");

    /* The swap: delete and create in one command, one epoch, never without the alias. */
    r = alias_run(&m, 2, (const uint32_t[]){D, C}, (const char *[]){"prod", "prod"},
                  (const char *[]){NULL, "d"});
    assert_int_equal(r.code, DV_OK);
    assert_int_equal(m.epoch, epoch + 1);
    assert_string_equal(alias_of(&m, "prod"), "d");

    /* Rename, then more aliases in name order. */
    assert_int_equal(alias_run(&m, 1, &R, (const char *[]){"prod"}, (const char *[]){"live"}).code,
                     DV_OK);
    assert_null(cmap_alias_find(&m, "prod"));
    assert_string_equal(alias_of(&m, "live"), "d");
    assert_int_equal(alias_run(&m, 3, (const uint32_t[]){C, C, C},
                               (const char *[]){"z1", "a1", "m1"}, (const char *[]){"c", "c", "d"})
                         .code,
                     DV_OK);
    assert_int_equal(m.n_aliases, 4);
    for (uint32_t i = 1; i < m.n_aliases; i++)
        assert_true(strcmp(m.aliases[i - 1].name, m.aliases[i].name) < 0);

    /* A copy carries them and they count for equality. */
    struct cmap cp;
    assert_int_equal(cmap_copy(&cp, &m), DV_OK);
    assert_true(cmap_equal(&m, &cp));
    assert_int_equal(alias_run(&cp, 1, &D, (const char *[]){"a1"}, (const char *[]){NULL}).code,
                     DV_OK);
    m.epoch++;
    assert_false(cmap_equal(&m, &cp));
    m.epoch--;
    cmap_free(&cp);

    /* Dropping a collection drops its aliases (and only those). */
    assert_int_equal(run_free(&m, cu_drop("c")), DV_OK);
    assert_int_equal(m.n_aliases, 2);
    assert_null(cmap_alias_find(&m, "a1"));
    assert_string_equal(alias_of(&m, "m1"), "d");
    assert_string_equal(alias_of(&m, "live"), "d");
    /* The names are free for collections again. */
    assert_int_equal(run_free(&m, cu_create("a1", 2, 1, ids3, 3)), DV_OK);
    cmap_free(&m);
}

/* Payload index definitions: recorded, replaced, dropped, any kind number kept. */
static void test_indexes(void **state)
{
    (void)state;
    struct cmap m;
    base_map(&m, 0);
    assert_int_equal(run_free(&m, cu_index("c", CMAP_INDEX_CREATE, 0, "city")), DV_OK);
    assert_int_equal(run_free(&m, cu_index("c", CMAP_INDEX_CREATE, 1, "age")), DV_OK);
    assert_int_equal(run_free(&m, cu_index("c", CMAP_INDEX_CREATE, 42, "geo.loc")), DV_OK);
    const struct cmap_coll *c = cmap_coll_find(&m, "c");
    assert_int_equal(c->n_indexes, 3);
    assert_string_equal(c->indexes[0].key, "age"); /* by key */
    assert_int_equal(cmap_pindex_find(c, "geo.loc")->kind, 42);
    assert_int_equal(run_free(&m, cu_index("c", CMAP_INDEX_CREATE, 1, "city")), DV_OK);
    assert_int_equal(cmap_pindex_find(c, "city")->kind, 1);
    assert_int_equal(run_free(&m, cu_index("c", CMAP_INDEX_DROP, 0, "city")), DV_OK);
    assert_null(cmap_pindex_find(c, "city"));
    assert_int_equal(run_free(&m, cu_index("c", CMAP_INDEX_DROP, 0, "city")), DV_OK);
    assert_int_equal(run_free(&m, cu_index("x", CMAP_INDEX_CREATE, 0, "k")), DV_ENOTFOUND);
    assert_int_equal(run_free(&m, cu_index("c", CMAP_INDEX_CREATE, 0, "")), DV_EINVAL);
    assert_int_equal(run_free(&m, cu_index("c", 7, 0, "k")), DV_EINVAL);
    assert_int_equal(c->n_indexes, 2);
    struct cmap cp;
    assert_int_equal(cmap_copy(&cp, &m), DV_OK);
    assert_true(cmap_equal(&m, &cp));
    assert_int_equal(cmap_pindex_find(cmap_coll_find(&cp, "c"), "age")->kind, 1);
    cmap_free(&cp);
    cmap_free(&m);
}

/* Aliases and index definitions survive a snapshot; a map without them encodes as before
 * (8 elements, collections of 4), so snapshots written before them read as none. */
static void test_snapshot_aliases(void **state)
{
    (void)state;
    struct cmap m, d;
    char err[DV_ERRMSG_SIZE];
    struct buf b = BUF_INIT, before = BUF_INIT;
    base_map(&m, 0);
    assert_int_equal(cmap_encode(&m, &before), DV_OK);
    assert_int_equal(before.data[24], 0x98);
    assert_int_equal(cmap_decode(before.data, before.len, &d, err), DV_OK);
    assert_int_equal(d.n_aliases, 0);
    assert_int_equal(cmap_coll_find(&d, "c")->n_indexes, 0);
    cmap_free(&d);

    static const uint32_t C = CMAP_ALIAS_CREATE, D = CMAP_ALIAS_DELETE;
    assert_int_equal(alias_run(&m, 2, (const uint32_t[]){C, C}, (const char *[]){"p", "q"},
                               (const char *[]){"c", "c"})
                         .code,
                     DV_OK);
    assert_int_equal(run_free(&m, cu_index("c", CMAP_INDEX_CREATE, 0, "city")), DV_OK);
    assert_int_equal(cmap_encode(&m, &b), DV_OK);
    assert_int_equal(b.data[24], 0x99);
    if (cmap_decode(b.data, b.len, &d, err) != DV_OK)
        fail_msg("decode: %s", err);
    assert_true(cmap_equal(&m, &d));
    assert_string_equal(cmap_alias_find(&d, "q")->coll, "c");
    assert_int_equal(cmap_pindex_find(cmap_coll_find(&d, "c"), "city")->kind, 0);
    cmap_free(&d);

    /* Corrupt alias lists are refused: an alias naming no collection, out of order. */
    struct cmap bad;
    assert_int_equal(cmap_copy(&bad, &m), DV_OK);
    snprintf(bad.aliases[1].coll, sizeof bad.aliases[1].coll, "gone");
    buf_reset(&b);
    assert_int_equal(cmap_encode(&bad, &b), DV_OK);
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_ECORRUPT);
    assert_non_null(strstr(err, "gone"));
    snprintf(bad.aliases[1].coll, sizeof bad.aliases[1].coll, "c");
    snprintf(bad.aliases[1].name, sizeof bad.aliases[1].name, "a");
    buf_reset(&b);
    assert_int_equal(cmap_encode(&bad, &b), DV_OK);
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_ECORRUPT);
    assert_non_null(strstr(err, "order"));
    cmap_free(&bad);

    /* Without aliases and indexes again, the body has the shape of before. */
    assert_int_equal(alias_run(&m, 2, (const uint32_t[]){D, D}, (const char *[]){"p", "q"},
                               (const char *[]){NULL, NULL})
                         .code,
                     DV_OK);
    assert_int_equal(run_free(&m, cu_index("c", CMAP_INDEX_DROP, 0, "city")), DV_OK);
    buf_reset(&b);
    assert_int_equal(cmap_encode(&m, &b), DV_OK);
    assert_int_equal(b.data[24], 0x98);
    assert_int_equal(cmap_decode(b.data, b.len, &d, err), DV_OK);
    assert_true(cmap_equal(&m, &d));
    cmap_free(&d);
    cmap_free(&m);
    buf_free(&b);
    buf_free(&before);
}

static void test_apply_faults(void **state)
{
    static const char *const four[] = {"n0", "n1", "n2", "n3"};
    struct cmap_cmd cmds[] = {
        cu_reg_reports("n3", 6),
        cu_reg_reports("n1", 3),
        cu_create("big", 256, 3, four, 4),
        cu_move(CMAP_CMD_MOVE_ADD, "big", 3, "n0", "n2", CMAP_MOVE_PLANNED),
        cu_pset("big", 7, 0, four, 4, 3),
        cu_reg("n4", CMAP_NODE_JOINING, 2.0),
        cu_remove("n2", true),
        cu_drop("c"),
        cu_coord(5, CMAP_COORD_SPARE),
        cu_coord(2, CMAP_COORD_VOTER),
        cu_coord_remove(5),
    };
    const size_t n_cmds = sizeof cmds / sizeof cmds[0];
    cmds[1].type = CMAP_CMD_NODE_STATE; /* reports through a state command */
    struct cmap_report *r = cmds[1].u.reg.reports;
    uint32_t nr = cmds[1].u.reg.n_reports;
    memset(&cmds[1].u, 0, sizeof cmds[1].u);
    snprintf(cmds[1].u.node_state.id, sizeof cmds[1].u.node_state.id, "n1");
    cmds[1].u.node_state.state = CMAP_NODE_KEEP;
    cmds[1].u.node_state.has_reports = true;
    cmds[1].u.node_state.reports = r;
    cmds[1].u.node_state.n_reports = nr;

    /* Entries: each command alone, then the last three again as one batch of new ids. */
    struct buf entries[16];
    size_t n_entries = 0;
    char err[DV_ERRMSG_SIZE];
    for (size_t i = 0; i < n_cmds; i++) {
        buf_init(&entries[n_entries]);
        assert_int_equal(cmap_cmd_encode(&cmds[i], &entries[n_entries++], err), DV_OK);
    }
    struct buf parts[3] = {BUF_INIT, BUF_INIT, BUF_INIT};
    const void *pp[3];
    size_t pl[3];
    struct cmap_cmd more[3] = {cu_reg_reports("n5", 2), cu_create("c", 16, 2, four, 2),
                               cu_state("n5", CMAP_NODE_DRAINING, 9)};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cmap_cmd_encode(&more[i], &parts[i], err), DV_OK);
        pp[i] = parts[i].data;
        pl[i] = parts[i].len;
    }
    buf_init(&entries[n_entries]);
    assert_int_equal(cmap_batch_pack(pp, pl, 3, &entries[n_entries++], err), DV_OK);

    /* The run without faults. */
    struct cmap want, start;
    base_map(&start, 0);
    assert_int_equal(cmap_copy(&want, &start), DV_OK);
    struct cmap_results res = {0};
    for (size_t e = 0; e < n_entries; e++)
        assert_int_equal(cmap_apply(&want, entries[e].data, entries[e].len, &res), DV_OK);
    cmap_results_free(&res);

    int faults = 0;
    for (long k = 0;; k++) {
        struct cmap m, before;
        assert_int_equal(cmap_copy(&m, &start), DV_OK);
        struct cmap_results rs = {0};
        long left = k; /* allocations to let through before the one that fails */
        bool fired = false;
        for (size_t e = 0; e < n_entries; e++) {
            assert_int_equal(cmap_copy(&before, &m), DV_OK);
            fault_countdown = fired ? -1 : left;
            int rc = cmap_apply(&m, entries[e].data, entries[e].len, &rs);
            bool now = !fired && fault_countdown < 0;
            left = fault_countdown;
            fault_countdown = -1;
            if (now) {
                /* Every failed allocation is reported, and the retry goes through. */
                if (rc != DV_ENOMEM)
                    fail_msg("allocation %ld failed in entry %zu: apply said %d", k, e, rc);
                fired = true;
                faults++;
                if (e < n_cmds)
                    assert_true(cmap_equal(&m, &before));
                assert_int_equal(cmap_apply(&m, entries[e].data, entries[e].len, &rs), DV_OK);
            } else {
                assert_int_equal(rc, DV_OK);
            }
            cmap_free(&before);
        }
        cmap_results_free(&rs);
        assert_true(cmap_equal(&m, &want));
        cmap_free(&m);
        if (!fired)
            break; /* k is past the last allocation */
    }
    assert_true(faults > 10);
    print_message("# fault sweep: %d allocation failures, each answered by DV_ENOMEM\n", faults);

    for (size_t i = 0; i < n_cmds; i++)
        cmap_cmd_free(&cmds[i]);
    for (int i = 0; i < 3; i++) {
        cmap_cmd_free(&more[i]);
        buf_free(&parts[i]);
    }
    for (size_t e = 0; e < n_entries; e++)
        buf_free(&entries[e]);
    cmap_free(&want);
    cmap_free(&start);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_cmd_roundtrip),
        cmocka_unit_test(test_cmd_encode_rejects),
        cmocka_unit_test(test_cmd_truncated_and_garbage),
        cmocka_unit_test(test_register),
        cmocka_unit_test(test_search_url),
        cmocka_unit_test(test_node_states),
        cmocka_unit_test(test_collections),
        cmocka_unit_test(test_part_set),
        cmocka_unit_test(test_moves),
        cmocka_unit_test(test_node_remove),
        cmocka_unit_test(test_coords),
        cmocka_unit_test(test_replica_states),
        cmocka_unit_test(test_replica_move),
        cmocka_unit_test(test_old_format),
        cmocka_unit_test(test_write_consistency),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_snapshot_corrupt),
        cmocka_unit_test(test_snapshot_bad_coords),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_indexes),
        cmocka_unit_test(test_snapshot_aliases),
        cmocka_unit_test(test_apply_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
