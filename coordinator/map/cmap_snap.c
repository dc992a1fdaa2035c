/* cmap_snap.c - the whole cluster map as bytes (Raft snapshots): encode, checked decode. */
#include <stdlib.h>
#include <string.h>

#include "cmap.h"
#include "cmap_int.h"
#include "crc32c.h"
#include "err.h"
#include "mpk.h"

/*
 * Layout: a 24-byte header, all little-endian
 *   0  "CMAP"    4  u32 version    8  u64 body length    16  u32 CRC32C of the body    20  u32 0
 * then the body, one msgpack array:
 *   [epoch, dedup_cap, nodes, collections, moves, seen, coordinators, settings]
 *   node:       [id, url, http_url, weight (f64), state, heartbeat_ms, [[coll, part, lsn], ...],
 *                search_url]  (search_url only when not empty)
 *   collection: [name, [dim, metric, m, ef_construction, ef_search, partitions, rf, fsync, sq8,
 *                 write_consistency_factor], epoch,
 *                [[epoch, primary, [node, ...], term, [state, ...]], ...]]  (nodes by number)
 *   move:       [coll, part, from, to, state, epoch]
 *   seen:       [req_hi, req_lo, code, epoch, message]            (oldest first)
 *   coordinator: [raft_id, raft_addr, client_url, role]
 *   settings:   [paused, auto_rebalance, rate, moves_per_node]
 *   aliases:    [[alias, collection], ...]  (a 9th element, only when there are aliases)
 * Nodes come in number order, collections in name order, coordinators in id order.
 *
 * The coordinators came later, as a 7th element of the same version 1: a body of 6 elements
 * (written before them) still reads, as a map without coordinators, and an older build given
 * 7 elements refuses the snapshot (DV_ECORRUPT "map") rather than misreading it. The
 * rebalancing settings came as the 8th element the same way: 6 or 7 elements read with the
 * default settings. Replication added a partition's term and replica states (a partition of
 * 3 elements reads as term 1, every replica ACTIVE) and the collection's
 * write_consistency_factor (a config of 9 elements reads as 1). A node's search port is its
 * record's 8th element, written only when the node has one (7 elements read as none).
 * Aliases are the body's 9th element and a collection's payload index definitions
 * ([[key, kind], ...]) its 5th, each written only when there are any: a map without them
 * encodes as before (older builds read it), and bodies of 8 elements and collections of 4
 * read as none.
 */

#define W(x)                                                                                       \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            goto err;                                                                              \
    } while (0)

static int w_str(struct buf *b, const char *s)
{
    return mpw_str(b, s, strlen(s));
}

static int w_node(struct buf *b, const struct cmap_node *n)
{
    int rc;
    W(mpw_array(b, n->search_url[0] ? 8 : 7));
    W(w_str(b, n->id));
    W(w_str(b, n->url));
    W(w_str(b, n->http_url));
    W(mpw_f64(b, n->weight));
    W(mpw_u64(b, (uint64_t)n->state));
    W(mpw_u64(b, n->heartbeat_ms));
    W(mpw_array(b, n->n_reports));
    for (uint32_t i = 0; i < n->n_reports; i++) {
        W(mpw_array(b, 3));
        W(w_str(b, n->reports[i].coll));
        W(mpw_u64(b, n->reports[i].part));
        W(mpw_u64(b, n->reports[i].lsn));
    }
    if (n->search_url[0])
        W(w_str(b, n->search_url));
err:
    return rc;
}

static int w_coll(struct buf *b, const struct cmap_coll *c)
{
    const struct cmap_coll_cfg *g = &c->cfg;
    int rc;
    W(mpw_array(b, c->n_indexes ? 5 : 4));
    W(w_str(b, c->name));
    W(cmap_write_cfg(b, g));
    W(mpw_u64(b, c->epoch));
    W(mpw_array(b, g->n_parts));
    for (uint32_t p = 0; p < g->n_parts; p++) {
        const struct cmap_part *part = &c->parts[p];
        W(mpw_array(b, 5));
        W(mpw_u64(b, part->epoch));
        W(mpw_u64(b, part->primary));
        W(mpw_array(b, part->n));
        for (uint32_t k = 0; k < part->n; k++)
            W(mpw_u64(b, part->nodes[k]));
        W(mpw_u64(b, part->term));
        W(mpw_array(b, part->n));
        for (uint32_t k = 0; k < part->n; k++)
            W(mpw_u64(b, part->state[k]));
    }
    if (c->n_indexes)
        W(cmap_index_snap_write(b, c));
err:
    return rc;
}

int cmap_encode(const struct cmap *m, struct buf *out)
{
    size_t start = out->len;
    int rc;
    uint8_t hdr[CMAP_SNAP_HDR] = {0};
    W(buf_append(out, hdr, sizeof hdr));
    size_t body = out->len;
    W(mpw_array(out, m->n_aliases ? 9 : 8));
    W(mpw_u64(out, m->epoch));
    W(mpw_u64(out, m->dedup_cap));
    W(mpw_array(out, m->n_nodes));
    for (uint32_t i = 0; i < m->n_nodes; i++)
        W(w_node(out, &m->nodes[i]));
    W(mpw_array(out, m->n_colls));
    for (uint32_t i = 0; i < m->n_colls; i++)
        W(w_coll(out, m->colls[i]));
    W(mpw_array(out, m->n_moves));
    for (uint32_t i = 0; i < m->n_moves; i++) {
        const struct cmap_move *mv = &m->moves[i];
        W(mpw_array(out, 6));
        W(w_str(out, mv->coll));
        W(mpw_u64(out, mv->part));
        W(mpw_u64(out, mv->from));
        W(mpw_u64(out, mv->to));
        W(mpw_u64(out, (uint64_t)mv->state));
        W(mpw_u64(out, mv->epoch));
    }
    W(mpw_array(out, m->n_seen));
    for (uint32_t i = 0; i < m->n_seen; i++) {
        const struct cmap_seen *s = &m->seen[(m->seen_head + i) % m->dedup_cap];
        W(mpw_array(out, 5));
        W(mpw_u64(out, s->id.hi));
        W(mpw_u64(out, s->id.lo));
        W(mpw_i64(out, s->code));
        W(mpw_u64(out, s->epoch));
        W(w_str(out, s->msg));
    }
    W(mpw_array(out, m->n_coords));
    for (uint32_t i = 0; i < m->n_coords; i++) {
        const struct cmap_coord *c = &m->coords[i];
        W(mpw_array(out, 4));
        W(mpw_u64(out, c->id));
        W(w_str(out, c->raft_addr));
        W(w_str(out, c->client_url));
        W(mpw_u64(out, (uint64_t)c->role));
    }
    W(mpw_array(out, 4));
    W(mpw_bool(out, m->settings.paused));
    W(mpw_bool(out, m->settings.auto_rebalance));
    W(mpw_u64(out, m->settings.rate));
    W(mpw_u64(out, m->settings.moves_per_node));
    if (m->n_aliases)
        W(cmap_alias_snap_write(out, m));
    if (out->len - start > CMAP_MAX_SNAPSHOT) {
        rc = DV_ETOOBIG;
        goto err;
    }
    uint8_t *h = out->data + start;
    memcpy(h, CMAP_SNAP_MAGIC, 4);
    buf_wr_le32(h + 4, CMAP_SNAP_VERSION);
    buf_wr_le64(h + 8, out->len - body);
    buf_wr_le32(h + 16, crc32c(out->data + body, out->len - body));
    return DV_OK;
err:
    out->len = start;
    return rc;
}

/* ---- decode ------------------------------------------------------------------------------ */

struct sdec {
    struct mpk_dec k;
    struct cmap *m;
};

/* The mpk_dec failure hook: any failure is DV_ECORRUPT (DV_ENOMEM passes through), with the
 * field in errmsg. */
static int snap_fail(struct mpk_dec *k, int rc, const char *what)
{
    if (rc == DV_ENOMEM) {
        dv_errmsg_set(k->errmsg, "cmap snapshot: %s: out of memory", what);
        return rc;
    }
    dv_errmsg_set(k->errmsg, "cmap snapshot: %s: %s (%zu bytes left)", what, dv_strerror(rc),
                  mpk_dec_left(k));
    return DV_ECORRUPT;
}

#define R(x, ...)                                                                                  \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            return mpk_dec_failf(&d->k, rc, __VA_ARGS__);                                          \
    } while (0)

/* For mpk_dec_* calls, which have reported the failure already. */
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            return rc;                                                                             \
    } while (0)

static int s_epoch(struct sdec *d, uint64_t *e, const char *field)
{
    int rc;
    TRY(mpk_dec_u64(&d->k, e, field));
    if (*e > d->m->epoch)
        return mpk_dec_failf(&d->k, DV_ERANGE, "%s after the map epoch", field);
    return DV_OK;
}

/* A node's k reports. */
static int s_reports(struct sdec *d, struct cmap_node *n, uint32_t k)
{
    int rc;
    if (k == 0)
        return DV_OK;
    n->reports = calloc(k, sizeof *n->reports);
    if (!n->reports)
        return mpk_dec_failf(&d->k, DV_ENOMEM, "reports");
    for (uint32_t i = 0; i < k; i++) {
        char name[CMAP_NAME_MAX + 1];
        struct cmap_report *r = &n->reports[i];
        if ((rc = mpk_dec_tuple(&d->k, 3, "report")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, name, CMAP_NAME_MAX, "report collection")) != DV_OK)
            return rc;
        if (!cmap_name_valid(name))
            return mpk_dec_failf(&d->k, DV_EINVAL, "node %s report %u", n->id, i);
        if (!(r->coll = cmap_strdup(name)))
            return mpk_dec_failf(&d->k, DV_ENOMEM, "reports");
        n->n_reports = i + 1;
        if ((rc = mpk_dec_u32(&d->k, &r->part, "report partition")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &r->lsn, "report lsn"));
    }
    return DV_OK;
}

static int s_node(struct sdec *d, struct cmap_node *n, uint32_t num)
{
    uint32_t state = 0, k, fields;
    int rc;
    n->num = num;
    if (mpk_array(&d->k.r, &fields) != DV_OK || (fields != 7 && fields != 8))
        return mpk_dec_fail(&d->k, DV_ECORRUPT, "node");
    if ((rc = mpk_dec_strcpy(&d->k, n->id, CMAP_ID_MAX, "node id")) != DV_OK ||
        (rc = mpk_dec_strcpy(&d->k, n->url, CMAP_URL_MAX, "node url")) != DV_OK ||
        (rc = mpk_dec_strcpy(&d->k, n->http_url, CMAP_URL_MAX, "node http_url")) != DV_OK)
        return rc;
    if (!cmap_id_valid(n->id) || !cmap_url_valid(n->url, false) ||
        !cmap_url_valid(n->http_url, true))
        return mpk_dec_failf(&d->k, DV_EINVAL, "node %u", num);
    R(mpk_f64(&d->k.r, &n->weight), "node %s weight", n->id);
    if (!cmap_weight_valid(n->weight))
        return mpk_dec_failf(&d->k, DV_ERANGE, "node %s weight", n->id);
    if ((rc = mpk_dec_u32(&d->k, &state, "node state")) != DV_OK)
        return rc;
    if (state >= CMAP_NODE_STATE_COUNT)
        return mpk_dec_failf(&d->k, DV_ERANGE, "node %s state", n->id);
    n->state = (int)state;
    R(mpk_u64(&d->k.r, &n->heartbeat_ms), "node %s heartbeat", n->id);
    if ((rc = mpk_dec_list(&d->k, &k, 4, CMAP_MAX_REPORTS, "reports")) != DV_OK ||
        (rc = s_reports(d, n, k)) != DV_OK)
        return rc;
    if (fields == 8) {
        TRY(mpk_dec_strcpy(&d->k, n->search_url, CMAP_URL_MAX, "node search_url"));
        if (!cmap_url_valid(n->search_url, true))
            return mpk_dec_failf(&d->k, DV_EINVAL, "node %s search_url", n->id);
    }
    return DV_OK;
}

static int cmp_by_id(const void *a, const void *b, void *arg)
{
    const struct cmap_node *nodes = arg;
    return strcmp(nodes[*(const uint32_t *)a].id, nodes[*(const uint32_t *)b].id);
}

static int s_nodes(struct sdec *d)
{
    struct cmap *m = d->m;
    uint32_t n;
    int rc;
    /* [id "x", url "x", "", weight, state, heartbeat, []] takes at least 10 bytes (a weight
     * written as a fixint is read too). */
    if ((rc = mpk_dec_list(&d->k, &n, 10, CMAP_MAX_NODES, "nodes")) != DV_OK)
        return rc;
    if (n == 0)
        return DV_OK;
    m->nodes = calloc(n, sizeof *m->nodes);
    m->by_id = malloc(n * sizeof *m->by_id);
    if (!m->nodes || !m->by_id)
        return mpk_dec_failf(&d->k, DV_ENOMEM, "nodes");
    m->cap_nodes = n;
    for (uint32_t i = 0; i < n; i++) {
        m->n_nodes = i + 1; /* so that cmap_free frees its reports */
        if ((rc = s_node(d, &m->nodes[i], i)) != DV_OK)
            return rc;
        m->by_id[i] = i;
    }
    qsort_r(m->by_id, n, sizeof *m->by_id, cmp_by_id, m->nodes);
    for (uint32_t i = 1; i < n; i++)
        if (strcmp(m->nodes[m->by_id[i - 1]].id, m->nodes[m->by_id[i]].id) == 0)
            return mpk_dec_failf(&d->k, DV_EEXIST, "node %s", m->nodes[m->by_id[i]].id);
    return DV_OK;
}

static int s_part(struct sdec *d, struct cmap_part *part, const char *coll, uint32_t p)
{
    struct cmap *m = d->m;
    int rc;
    uint32_t fields;
    /* 3 fields: written before terms and replica states (term 1, every replica ACTIVE) */
    if (mpk_array(&d->k.r, &fields) != DV_OK || (fields != 3 && fields != 5))
        return mpk_dec_fail(&d->k, DV_ECORRUPT, "partition");
    if ((rc = s_epoch(d, &part->epoch, "partition epoch")) != DV_OK ||
        (rc = mpk_dec_u32(&d->k, &part->primary, "partition primary")) != DV_OK ||
        (rc = mpk_dec_list(&d->k, &part->n, 1, CMAP_MAX_REPLICAS, "replicas")) != DV_OK)
        return rc;
    bool has_primary = false;
    for (uint32_t k = 0; k < part->n; k++) {
        if ((rc = mpk_dec_u32(&d->k, &part->nodes[k], "replica")) != DV_OK)
            return rc;
        if (part->nodes[k] >= m->n_nodes)
            return mpk_dec_failf(&d->k, DV_ERANGE, "%s/%u: replica %u", coll, p, part->nodes[k]);
        for (uint32_t j = 0; j < k; j++)
            if (part->nodes[j] == part->nodes[k])
                return mpk_dec_failf(&d->k, DV_EEXIST, "%s/%u: replica %u", coll, p,
                                     part->nodes[k]);
    }
    part->term = 1;
    if (fields == 5) {
        uint32_t ns;
        if ((rc = mpk_dec_u64(&d->k, &part->term, "partition term")) != DV_OK ||
            (rc = mpk_dec_list(&d->k, &ns, 1, CMAP_MAX_REPLICAS, "replica states")) != DV_OK)
            return rc;
        if (ns != part->n || (part->n && part->term == 0))
            return mpk_dec_failf(&d->k, DV_ECORRUPT, "%s/%u: %u states for %u replicas, term %llu",
                                 coll, p, ns, part->n, (unsigned long long)part->term);
        for (uint32_t k = 0; k < ns; k++) {
            uint32_t st;
            if ((rc = mpk_dec_u32(&d->k, &st, "replica state")) != DV_OK)
                return rc;
            if (st >= CMAP_REPLICA_STATE_COUNT)
                return mpk_dec_failf(&d->k, DV_ERANGE, "%s/%u: replica state %u", coll, p, st);
            part->state[k] = (uint8_t)st;
        }
    }
    /* The primary is an in-sync replica; none only when no replica is in sync. */
    bool any_active = false;
    for (uint32_t k = 0; k < part->n; k++) {
        any_active |= part->state[k] == CMAP_REPLICA_ACTIVE;
        has_primary |= part->nodes[k] == part->primary && part->state[k] == CMAP_REPLICA_ACTIVE;
    }
    if (any_active ? !has_primary : part->primary != CMAP_NONE)
        return mpk_dec_failf(&d->k, DV_EINVAL, "%s/%u: primary %u", coll, p, part->primary);
    return DV_OK;
}

static int s_coll(struct sdec *d, struct cmap_coll *c)
{
    struct cmap_coll_cfg *g = &c->cfg;
    char why[CMAP_MSG_MAX];
    uint32_t n;
    uint32_t fields;
    int rc;
    /* 4 fields: no payload index definitions */
    if (mpk_array(&d->k.r, &fields) != DV_OK || (fields != 4 && fields != 5))
        return mpk_dec_fail(&d->k, DV_ECORRUPT, "collection");
    if ((rc = mpk_dec_strcpy(&d->k, c->name, CMAP_NAME_MAX, "collection name")) != DV_OK)
        return rc;
    if (!cmap_name_valid(c->name))
        return mpk_dec_failf(&d->k, DV_EINVAL, "collection name");
    if ((rc = cmap_read_cfg(&d->k, g, "collection config")) != DV_OK)
        return rc;
    if (!cmap_cfg_valid(g, why))
        return mpk_dec_failf(&d->k, DV_EINVAL, "%s: %s", c->name, why);
    if ((rc = s_epoch(d, &c->epoch, "collection epoch")) != DV_OK ||
        (rc = mpk_dec_list(&d->k, &n, 4, CMAP_MAX_PARTS, "partitions")) != DV_OK)
        return rc;
    if (n != g->n_parts)
        return mpk_dec_failf(&d->k, DV_ECORRUPT, "%s: %u partitions for %u", c->name, n,
                             g->n_parts);
    c->parts = calloc(n, sizeof *c->parts);
    if (!c->parts)
        return mpk_dec_failf(&d->k, DV_ENOMEM, "partitions");
    for (uint32_t p = 0; p < n; p++)
        if ((rc = s_part(d, &c->parts[p], c->name, p)) != DV_OK)
            return rc;
    if (fields == 5)
        return cmap_index_snap_read(&d->k, c);
    return DV_OK;
}

static int s_colls(struct sdec *d)
{
    struct cmap *m = d->m;
    uint32_t n;
    int rc;
    /* [name "x", [9 fixints + bool], epoch, [[e, p, [x]]]] takes at least 21 bytes. */
    if ((rc = mpk_dec_list(&d->k, &n, 20, CMAP_MAX_COLLS, "collections")) != DV_OK)
        return rc;
    if (n == 0)
        return DV_OK;
    m->colls = calloc(n, sizeof *m->colls);
    if (!m->colls)
        return mpk_dec_failf(&d->k, DV_ENOMEM, "collections");
    m->cap_colls = n;
    for (uint32_t i = 0; i < n; i++) {
        struct cmap_coll *c = calloc(1, sizeof *c);
        if (!c)
            return mpk_dec_failf(&d->k, DV_ENOMEM, "collections");
        m->colls[i] = c;
        m->n_colls = i + 1;
        if ((rc = s_coll(d, c)) != DV_OK)
            return rc;
        if (i > 0 && strcmp(m->colls[i - 1]->name, c->name) >= 0)
            return mpk_dec_failf(&d->k, DV_ECORRUPT, "collection %s out of order", c->name);
    }
    return DV_OK;
}

static bool move_same(const struct cmap_move *a, const struct cmap_move *b)
{
    return a->part == b->part && a->from == b->from && a->to == b->to &&
           strcmp(a->coll, b->coll) == 0;
}

static int s_moves(struct sdec *d)
{
    struct cmap *m = d->m;
    uint32_t n, state = 0;
    int rc;
    /* [coll "x", part, from, to, state, epoch] takes at least 8 bytes. */
    if ((rc = mpk_dec_list(&d->k, &n, 8, CMAP_MAX_MOVES, "moves")) != DV_OK)
        return rc;
    if (n == 0)
        return DV_OK;
    m->moves = calloc(n, sizeof *m->moves);
    if (!m->moves)
        return mpk_dec_failf(&d->k, DV_ENOMEM, "moves");
    m->cap_moves = n;
    for (uint32_t i = 0; i < n; i++) {
        struct cmap_move *mv = &m->moves[i];
        if ((rc = mpk_dec_tuple(&d->k, 6, "move")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, mv->coll, CMAP_NAME_MAX, "move collection")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &mv->part, "move partition")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &mv->from, "move from")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &mv->to, "move to")) != DV_OK ||
            (rc = mpk_dec_u32(&d->k, &state, "move state")) != DV_OK ||
            (rc = s_epoch(d, &mv->epoch, "move epoch")) != DV_OK)
            return rc;
        const struct cmap_coll *c = cmap_coll_find(m, mv->coll);
        if (!c || mv->part >= c->cfg.n_parts || mv->from >= m->n_nodes || mv->to >= m->n_nodes ||
            mv->from == mv->to || state >= CMAP_MOVE_STATE_COUNT)
            return mpk_dec_failf(&d->k, DV_EINVAL, "move %u", i);
        mv->state = (int)state;
        for (uint32_t j = 0; j < i; j++)
            if (move_same(&m->moves[j], mv))
                return mpk_dec_failf(&d->k, DV_EEXIST, "move %u", i);
        m->n_moves = i + 1;
    }
    return DV_OK;
}

static int s_seen(struct sdec *d)
{
    struct cmap *m = d->m;
    uint32_t n;
    int rc;
    /* [hi, lo, code, epoch, ""] takes at least 6 bytes. */
    if ((rc = mpk_dec_list(&d->k, &n, 6, m->dedup_cap, "request ids")) != DV_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        struct cmap_seen *s = &m->seen[i];
        int64_t code;
        if ((rc = mpk_dec_tuple(&d->k, 5, "request id")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &s->id.hi, "request id"));
        TRY(mpk_dec_u64(&d->k, &s->id.lo, "request id"));
        TRY(mpk_dec_i64(&d->k, &code, "request result"));
        if ((rc = s_epoch(d, &s->epoch, "request epoch")) != DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, s->msg, CMAP_MSG_MAX - 1, "request message")) != DV_OK)
            return rc;
        if ((s->id.hi == 0 && s->id.lo == 0) || code > 0 || code < -1000)
            return mpk_dec_failf(&d->k, DV_EINVAL, "request id %u", i);
        s->code = (int)code;
        m->n_seen = i + 1;
    }
    return DV_OK;
}

static int s_coords(struct sdec *d)
{
    struct cmap *m = d->m;
    uint32_t n, role = 0;
    int rc;
    /* [id, "x:1", "x", role] takes at least 10 bytes. */
    if ((rc = mpk_dec_list(&d->k, &n, 10, CMAP_MAX_COORDS, "coordinators")) != DV_OK)
        return rc;
    if (n == 0)
        return DV_OK;
    m->coords = calloc(n, sizeof *m->coords);
    if (!m->coords)
        return mpk_dec_failf(&d->k, DV_ENOMEM, "coordinators");
    m->cap_coords = n;
    for (uint32_t i = 0; i < n; i++) {
        struct cmap_coord *c = &m->coords[i];
        if ((rc = mpk_dec_tuple(&d->k, 4, "coordinator")) != DV_OK)
            return rc;
        TRY(mpk_dec_u64(&d->k, &c->id, "coordinator id"));
        if ((rc = mpk_dec_strcpy(&d->k, c->raft_addr, CMAP_URL_MAX, "coordinator raft_addr")) !=
                DV_OK ||
            (rc = mpk_dec_strcpy(&d->k, c->client_url, CMAP_URL_MAX, "coordinator client_url")) !=
                DV_OK ||
            (rc = mpk_dec_u32(&d->k, &role, "coordinator role")) != DV_OK)
            return rc;
        unsigned long long id = (unsigned long long)c->id;
        if (c->id == 0 || (i > 0 && c->id <= m->coords[i - 1].id))
            return mpk_dec_failf(&d->k, DV_ECORRUPT, "coordinator id %llu (zero or out of order)",
                                 id);
        if (!cmap_raft_addr_valid(c->raft_addr))
            return mpk_dec_failf(&d->k, DV_EINVAL, "coordinator %llu raft_addr", id);
        if (!cmap_url_valid(c->client_url, false))
            return mpk_dec_failf(&d->k, DV_EINVAL, "coordinator %llu client_url", id);
        if (role >= CMAP_COORD_ROLE_COUNT)
            return mpk_dec_failf(&d->k, DV_ERANGE, "coordinator %llu role", id);
        c->role = (int)role;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(m->coords[j].raft_addr, c->raft_addr) == 0)
                return mpk_dec_failf(&d->k, DV_EEXIST, "coordinator %llu raft_addr", id);
        m->n_coords = i + 1;
    }
    return DV_OK;
}

static int s_settings(struct sdec *d)
{
    struct cmap_settings *st = &d->m->settings;
    int rc;
    if ((rc = mpk_dec_tuple(&d->k, 4, "settings")) != DV_OK)
        return rc;
    TRY(mpk_dec_bool(&d->k, &st->paused, "settings paused"));
    TRY(mpk_dec_bool(&d->k, &st->auto_rebalance, "settings auto_rebalance"));
    TRY(mpk_dec_u64(&d->k, &st->rate, "settings rate"));
    if ((rc = mpk_dec_u32(&d->k, &st->moves_per_node, "settings moves_per_node")) != DV_OK)
        return rc;
    if (st->moves_per_node < 1 || st->moves_per_node > CMAP_MAX_MOVES_PER_NODE)
        return mpk_dec_failf(&d->k, DV_ERANGE, "settings moves_per_node");
    return DV_OK;
}

int cmap_decode(const void *p, size_t n, struct cmap *out, char *errmsg)
{
    const uint8_t *b = p;
    struct sdec d = {.k = {.errmsg = errmsg, .fail = snap_fail, .count_in_errors = true}, .m = out};
    uint64_t epoch, cap;
    int rc;
    memset(out, 0, sizeof *out);
    mpk_init(&d.k.r, b, 0);
    if (n < CMAP_SNAP_HDR || memcmp(b, CMAP_SNAP_MAGIC, 4) != 0)
        return mpk_dec_failf(&d.k, DV_ECORRUPT, "header");
    if (buf_rd_le32(b + 4) != CMAP_SNAP_VERSION) {
        dv_errmsg_set(errmsg, "cmap snapshot: version %u, this build reads %u", buf_rd_le32(b + 4),
                      CMAP_SNAP_VERSION);
        return DV_EPROTO;
    }
    uint64_t len = buf_rd_le64(b + 8);
    if (len != n - CMAP_SNAP_HDR || buf_rd_le32(b + 20) != 0)
        return mpk_dec_failf(&d.k, DV_ECORRUPT, "header (body of %llu bytes in %zu)",
                             (unsigned long long)len, n - CMAP_SNAP_HDR);
    if (crc32c(b + CMAP_SNAP_HDR, len) != buf_rd_le32(b + 16))
        return mpk_dec_failf(&d.k, DV_ECORRUPT, "crc");
    mpk_init(&d.k.r, b + CMAP_SNAP_HDR, len);
    uint32_t fields;
    if ((rc = mpk_array(&d.k.r, &fields)) != DV_OK)
        return mpk_dec_failf(&d.k, rc, "map");
    /* 6, 7: written before the coordinators, the settings; 8: no aliases */
    if (fields < 6 || fields > 9)
        return mpk_dec_failf(&d.k, DV_ECORRUPT, "map (%u fields)", fields);
    if ((rc = mpk_u64(&d.k.r, &epoch)) != DV_OK)
        return mpk_dec_failf(&d.k, rc, "epoch");
    if ((rc = mpk_u64(&d.k.r, &cap)) != DV_OK)
        return mpk_dec_failf(&d.k, rc, "dedup_cap");
    if (cap < 1 || cap > CMAP_DEDUP_MAX)
        return mpk_dec_failf(&d.k, DV_ERANGE, "dedup_cap");
    if ((rc = cmap_init(out, (uint32_t)cap)) != DV_OK)
        return mpk_dec_failf(&d.k, rc, "dedup_cap");
    out->epoch = epoch;
    if ((rc = s_nodes(&d)) != DV_OK || (rc = s_colls(&d)) != DV_OK || (rc = s_moves(&d)) != DV_OK ||
        (rc = s_seen(&d)) != DV_OK || (fields >= 7 && (rc = s_coords(&d)) != DV_OK) ||
        (fields >= 8 && (rc = s_settings(&d)) != DV_OK) ||
        (fields == 9 && (rc = cmap_alias_snap_read(&d.k, out)) != DV_OK))
        goto err_free;
    if (!mpk_done(&d.k.r)) {
        rc = mpk_dec_failf(&d.k, DV_ECORRUPT, "bytes after the map");
        goto err_free;
    }
    return DV_OK;
err_free:
    cmap_free(out);
    return rc;
}
