/* rest_coll.c - the REST API's collection and cluster calls: list, info, exists, create,
 * delete, payload indexes, and the cluster's shape in Qdrant's terms (aliases: rest_alias.c,
 * update: rest_coll_update.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "jsonmp.h"
#include "rest_int.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

/* Nodes have no numeric ids of their own: Qdrant's peer ids for them are their numbers in the
 * cluster map plus this (coordinators keep their raft ids, at most 1,000,000). */
#define NODE_PEER_BASE 1000001u

static const char *const distance_names[] = {"Euclid", "Dot", "Cosine", "Manhattan"};

#define oom rx_oom

/* ---- service ----------------------------------------------------------------------------- */

int rh_root(struct rx *x)
{
    int rc = jw_raw(&x->res, "{\"title\":\"dvec - distributed vector database\",\"version\":");
    if (rc == DV_OK)
        rc = jw_str(&x->res, x->r->o.version, strlen(x->r->o.version));
    if (rc == DV_OK)
        rc = jw_raw(&x->res, "}");
    return rc == DV_OK ? 200 : oom(x);
}

/* ---- the cluster status (native `cluster`) ----------------------------------------------- */

int rx_cluster_status(struct rx *x, json_t **out)
{
    struct msg q = {.type = MSG_CLUSTER};
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    if (st != 200)
        return st;
    const struct msg_bytes *s = &rep.m.u.cluster_rep.status;
    char err[DV_ERRMSG_SIZE] = "no status in the reply";
    int rc = s->p ? jsonmp_to_json(s->p, s->len, out, err) : DV_EPROTO;
    msg_reply_free(&rep);
    if (rc != DV_OK || !json_is_object(*out)) {
        if (rc == DV_OK)
            json_decref(*out);
        return rx_fail(x, 500, "Service internal error: cluster status: %s",
                       rc == DV_OK ? "not a map" : err);
    }
    return 200;
}

/* The node named `id` in the status: its number (index in "nodes") and state; false when the
 * status does not list it. */
static bool node_of(json_t *status, const char *id, size_t n, uint32_t *num, const char **state)
{
    json_t *nodes = json_object_get(status, "nodes"), *e;
    size_t i;
    json_array_foreach(nodes, i, e)
    {
        json_t *nid = json_object_get(e, "id");
        if (json_is_string(nid) && json_string_length(nid) == n &&
            memcmp(json_string_value(nid), id, n) == 0) {
            *num = (uint32_t)i;
            json_t *s = json_object_get(e, "state");
            *state = json_is_string(s) ? json_string_value(s) : "unknown";
            return true;
        }
    }
    return false;
}

/* A node state as Qdrant's replica state. */
/* Qdrant's name of a replica's state: the map's (active, dead, partial, initializing,
 * recovery) while its node serves, Dead when the node does not. */
static const char *replica_state(const char *node_state, uint8_t state)
{
    static const char *const names[] = {"Active", "Dead", "Partial", "Initializing", "Recovery"};
    if (strcmp(node_state, "alive") == 0 || strcmp(node_state, "draining") == 0)
        return state < 5 ? names[state] : "Dead";
    if (strcmp(node_state, "joining") == 0)
        return "Initializing";
    return "Dead";
}

static bool serving(const char *node_state)
{
    return strcmp(node_state, "alive") == 0 || strcmp(node_state, "draining") == 0;
}

static int put_u64(struct buf *b, const char *key, uint64_t v, bool comma)
{
    return buf_appendf(b, "%s\"%s\":%" PRIu64, comma ? "," : "", key, v);
}

int rh_cluster(struct rx *x)
{
    json_t *st;
    int s = rx_cluster_status(x, &st);
    if (s != 200)
        return s;
    json_t *me = json_object_get(st, "coordinator");
    uint64_t id = (uint64_t)json_integer_value(json_object_get(me, "id"));
    uint64_t leader = (uint64_t)json_integer_value(json_object_get(me, "leader_id"));
    uint64_t term = (uint64_t)json_integer_value(json_object_get(me, "term"));
    uint64_t commit = (uint64_t)json_integer_value(json_object_get(me, "commit_index"));
    uint64_t applied = (uint64_t)json_integer_value(json_object_get(me, "last_applied"));
    const char *state = json_string_value(json_object_get(me, "state"));
    const char *role = NULL;
    if (state && strcmp(state, "leader") == 0)
        role = "\"Leader\"";
    else if (state && strcmp(state, "follower") == 0)
        role = "\"Follower\"";
    else if (state && strcmp(state, "candidate") == 0)
        role = "\"Candidate\"";

    struct buf *b = &x->res;
    int rc = jw_raw(b, "{\"status\":\"enabled\"");
    if (rc == DV_OK)
        rc = put_u64(b, "peer_id", id ? id : x->r->o.peer_id, true);
    if (rc == DV_OK)
        rc = jw_raw(b, ",\"peers\":{");
    /* Coordinators by raft id, then nodes (NODE_PEER_BASE + number), each with its URL. */
    json_t *e;
    size_t i;
    bool first = true;
    json_array_foreach(json_object_get(st, "coordinators"), i, e)
    {
        const char *url = json_string_value(json_object_get(e, "url"));
        if (rc == DV_OK)
            rc = buf_appendf(b, "%s\"%" PRIu64 "\":{\"uri\":", first ? "" : ",",
                             (uint64_t)json_integer_value(json_object_get(e, "id")));
        if (rc == DV_OK)
            rc = jw_str(b, url ? url : "", url ? strlen(url) : 0);
        if (rc == DV_OK)
            rc = jw_raw(b, "}");
        first = false;
    }
    json_array_foreach(json_object_get(st, "nodes"), i, e)
    {
        const char *url = json_string_value(json_object_get(e, "url"));
        const char *ns = json_string_value(json_object_get(e, "state"));
        if (ns && strcmp(ns, "removed") == 0)
            continue;
        if (rc == DV_OK)
            rc = buf_appendf(b, "%s\"%" PRIu64 "\":{\"uri\":", first ? "" : ",",
                             (uint64_t)NODE_PEER_BASE + i);
        if (rc == DV_OK)
            rc = jw_str(b, url ? url : "", url ? strlen(url) : 0);
        if (rc == DV_OK)
            rc = jw_raw(b, "}");
        first = false;
    }
    if (rc == DV_OK)
        rc = jw_raw(b, "},\"raft_info\":{");
    if (rc == DV_OK)
        rc = put_u64(b, "term", term, false);
    if (rc == DV_OK)
        rc = put_u64(b, "commit", commit, true);
    if (rc == DV_OK)
        rc = put_u64(b, "pending_operations", commit > applied ? commit - applied : 0, true);
    if (rc == DV_OK)
        rc = leader ? put_u64(b, "leader", leader, true) : jw_raw(b, ",\"leader\":null");
    if (rc == DV_OK)
        rc = buf_appendf(b, ",\"role\":%s,\"is_voter\":true}", role ? role : "null");
    time_t now = time(NULL);
    struct tm tm;
    char ts[64];
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (rc == DV_OK)
        rc = buf_appendf(b,
                         ",\"consensus_thread_status\":{\"consensus_thread_status\":\"%s\","
                         "\"last_update\":\"%s\"},\"message_send_failures\":{}}",
                         state && strcmp(state, "unavailable") == 0 ? "stopped" : "working", ts);
    /* dvec's own: the rebalancing settings and the partition moves with their progress
     * (the same document as dvecctl rebalance status --json). */
    json_t *rb = json_object_get(st, "rebalance");
    if (rb && rc == DV_OK) {
        char *text = json_dumps(rb, JSON_COMPACT);
        if (text == NULL)
            rc = DV_ENOMEM;
        else {
            b->len--; /* reopen the object */
            rc = buf_appendf(b, ",\"rebalance\":%s}", text);
            free(text);
        }
    }
    json_decref(st);
    return rc == DV_OK ? 200 : oom(x);
}

/* ---- collections ------------------------------------------------------------------------- */

int rh_coll_list(struct rx *x)
{
    struct msg q = {.type = MSG_COLL_LIST};
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    if (st != 200)
        return st;
    const struct msg_coll_list_rep *l = &rep.m.u.coll_list_rep;
    int rc = jw_raw(&x->res, "{\"collections\":[");
    for (uint32_t i = 0; i < l->n && rc == DV_OK; i++) {
        rc = jw_raw(&x->res, i ? ",{\"name\":" : "{\"name\":");
        if (rc == DV_OK)
            rc = jw_str(&x->res, l->names[i].p, l->names[i].len);
        if (rc == DV_OK)
            rc = jw_raw(&x->res, "}");
    }
    if (rc == DV_OK)
        rc = jw_raw(&x->res, "]}");
    msg_reply_free(&rep);
    return rc == DV_OK ? 200 : oom(x);
}

int rh_coll_exists(struct rx *x, const char *coll)
{
    struct msg q = {.type = MSG_COLL_LIST};
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    if (st != 200)
        return st;
    const struct msg_coll_list_rep *l = &rep.m.u.coll_list_rep;
    bool found = false;
    for (uint32_t i = 0; i < l->n && !found; i++)
        found =
            l->names[i].len == strlen(coll) && memcmp(l->names[i].p, coll, l->names[i].len) == 0;
    msg_reply_free(&rep);
    /* As the router does for data calls: a collection created through another coordinator a
     * moment ago reaches this one's map with raft's next heartbeat. */
    for (int i = 0; i < 30 && !found; i++) {
        clock_sleep_ms(5);
        found = rx_meta(x, coll, NULL, NULL);
    }
    return jw_raw(&x->res, found ? "{\"exists\":true}" : "{\"exists\":false}") == DV_OK ? 200
                                                                                        : oom(x);
}

/* The collection's write_consistency_factor (admin op coll_set): the create command does not
 * carry it, so a create that gives one sets it right after. */
static int set_wcf(struct rx *x, const char *coll, uint64_t wcf)
{
    json_t *args =
        json_pack("{s:s, s:I}", "collection", coll, "write_consistency_factor", (json_int_t)wcf);
    struct buf a = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    int rc = args ? jsonmp_from_json(args, &a, err) : DV_ENOMEM;
    json_decref(args);
    if (rc != DV_OK) {
        buf_free(&a);
        return oom(x);
    }
    struct msg q = {.type = MSG_ADMIN};
    q.u.admin_req = (struct msg_admin_req){S("coll_set"), {a.data, (uint32_t)a.len}};
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    buf_free(&a);
    if (st == 200)
        msg_reply_free(&rep);
    return st;
}

/* The status's entry of collection `coll`, or of the collection alias `coll` names; NULL. */
static json_t *coll_entry(json_t *status, const char *coll)
{
    json_t *cj, *aj;
    size_t ci, ai;
    json_array_foreach(json_object_get(status, "collections"), ci, cj)
    {
        const char *cn = json_string_value(json_object_get(cj, "name"));
        if (cn && strcmp(cn, coll) == 0)
            return cj;
    }
    json_array_foreach(json_object_get(status, "collections"), ci, cj)
    {
        json_array_foreach(json_object_get(cj, "aliases"), ai, aj)
        {
            const char *an = json_string_value(aj);
            if (an && strcmp(an, coll) == 0)
                return cj;
        }
    }
    return NULL;
}

/* Qdrant's names of enum pindex_kind (shard/query/pindex.h) by number: a kind added there gets
 * its name here, one line; a kind without one is shown as "kind_N". */
static const char *const index_kind_names[] = {
    "keyword",  /* 0 */
    "integer",  /* 1 */
    "float",    /* 2 */
    "bool",     /* 3 */
    "geo",      /* 4 */
    "text",     /* 5 */
    "datetime", /* 6 */
    "uuid",     /* 7 */
};

/* "payload_schema": {"key": {"data_type": ..., "points": N}, ...} from the map's index
 * definitions ([[key, kind], ...]). dvec's nodes do not count the points each index holds:
 * `points` is the collection's point count, an upper bound. */
static int payload_schema(struct buf *b, json_t *defs, uint64_t points)
{
    int rc = jw_raw(b, "\"payload_schema\":{");
    size_t i;
    json_t *d;
    json_array_foreach(defs, i, d)
    {
        const char *key = json_string_value(json_array_get(d, 0));
        json_int_t kind = json_integer_value(json_array_get(d, 1));
        if (key == NULL)
            continue;
        if (rc == DV_OK && i > 0)
            rc = jw_raw(b, ",");
        if (rc == DV_OK)
            rc = jw_str(b, key, strlen(key));
        size_t n_names = sizeof index_kind_names / sizeof index_kind_names[0];
        if (rc == DV_OK && kind >= 0 && (size_t)kind < n_names)
            rc = buf_appendf(b, ":{\"data_type\":\"%s\"", index_kind_names[kind]);
        else if (rc == DV_OK)
            rc = buf_appendf(b, ":{\"data_type\":\"kind_%lld\"", (long long)kind);
        if (rc == DV_OK)
            rc = buf_appendf(b, ",\"points\":%" PRIu64 "}", points);
    }
    return rc == DV_OK ? jw_raw(b, "}") : rc;
}

int rh_coll_info(struct rx *x, const char *coll)
{
    struct msg q = {.type = MSG_COLL_INFO};
    q.addr.coll = S(coll);
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    if (st != 200)
        return st;
    json_t *status = NULL;
    if ((st = rx_cluster_status(x, &status)) != 200) {
        msg_reply_free(&rep);
        return st;
    }
    const struct msg_coll_info_rep *o = &rep.m.u.coll_info_rep;
    const struct msg_coll_cfg *c = &o->cfg;
    /* green: every replica in sync on a serving node; yellow: every partition has one (the
     * others are down or being copied); red: a partition has none. */
    uint64_t wcf = 1; /* the map's, from the cluster status */
    json_t *entry = coll_entry(status, coll);
    json_t *w = json_object_get(entry, "write_consistency_factor");
    if (json_is_integer(w))
        wcf = (uint64_t)json_integer_value(w);
    const char *color = "green";
    for (uint32_t p = 0; p < o->n_parts; p++) {
        uint32_t ok = 0;
        for (uint32_t j = 0; j < o->parts[p].n_nodes; j++) {
            uint32_t num;
            const char *ns;
            const struct msg_str *id = &o->parts[p].nodes[j];
            ok += node_of(status, id->p, id->len, &num, &ns) && serving(ns) &&
                  (o->parts[p].states == NULL || o->parts[p].states[j] == 0);
        }
        if (ok == 0) {
            color = "red";
            break;
        }
        if (ok < o->parts[p].n_nodes)
            color = "yellow";
    }
    struct buf *b = &x->res;
    int rc = buf_appendf(b, "{\"status\":\"%s\",\"optimizer_status\":\"ok\"", color);
    if (rc == DV_OK)
        rc = put_u64(b, "indexed_vectors_count", o->points, true);
    if (rc == DV_OK)
        rc = put_u64(b, "points_count", o->points, true);
    if (rc == DV_OK)
        rc = put_u64(b, "segments_count", o->n_parts, true);
    if (rc == DV_OK)
        rc = c->n_spaces
                 ? jw_raw(b, ",\"config\":{\"params\":{")
                 : buf_appendf(b,
                               ",\"config\":{\"params\":{\"vectors\":{\"size\":%u,"
                               "\"distance\":\"%s\"},",
                               c->dim, c->metric < 4 ? distance_names[c->metric] : "Euclid");
    if (rc == DV_OK && c->n_spaces) {
        rc = rv_write_cfg(b, c);
        if (rc == DV_OK)
            rc = jw_raw(b, ",");
    }
    if (rc == DV_OK)
        rc = buf_appendf(b,
                         "\"shard_number\":%u,\"replication_factor\":%u,"
                         "\"write_consistency_factor\":%" PRIu64 ",\"on_disk_payload\":false},",
                         c->partitions, c->replication, wcf);
    if (rc == DV_OK)
        rc = buf_appendf(b,
                         "\"hnsw_config\":{\"m\":%u,\"ef_construct\":%u,\"full_scan_threshold\":"
                         "10000,\"max_indexing_threads\":0,\"on_disk\":false,\"ef\":%u},",
                         c->m, c->ef_construction, c->ef_search);
    /* dvec compacts a replica once 10% of its points are deleted; its WAL has no fixed
     * segment count or flush interval: the closest values are reported. */
    if (rc == DV_OK)
        rc = jw_raw(b, "\"optimizer_config\":{\"deleted_threshold\":0.1,"
                       "\"vacuum_min_vector_number\":1000,\"default_segment_number\":0,"
                       "\"max_segment_size\":null,\"memmap_threshold\":null,"
                       "\"indexing_threshold\":0,\"flush_interval_sec\":5,"
                       "\"max_optimization_threads\":null},"
                       "\"wal_config\":{\"wal_capacity_mb\":32,\"wal_segments_ahead\":0},");
    if (rc == DV_OK)
        rc = jw_raw(b, c->sq8 ? "\"quantization_config\":{\"scalar\":{\"type\":\"int8\","
                                "\"always_ram\":true}}},"
                              : "\"quantization_config\":null},");
    if (rc == DV_OK)
        rc = payload_schema(b, json_object_get(entry, "payload_indexes"), o->points);
    if (rc == DV_OK)
        rc = jw_raw(b, "}");
    json_decref(status);
    msg_reply_free(&rep);
    return rc == DV_OK ? 200 : oom(x);
}

int rh_coll_cluster(struct rx *x, const char *coll)
{
    struct msg q = {.type = MSG_COLL_INFO};
    q.addr.coll = S(coll);
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    if (st != 200)
        return st;
    json_t *status = NULL;
    if ((st = rx_cluster_status(x, &status)) != 200) {
        msg_reply_free(&rep);
        return st;
    }
    const struct msg_coll_info_rep *o = &rep.m.u.coll_info_rep;
    struct buf *b = &x->res;
    int rc = buf_appendf(b,
                         "{\"peer_id\":%" PRIu64 ",\"shard_count\":%u,\"local_shards\":[],"
                         "\"remote_shards\":[",
                         x->r->o.peer_id, o->n_parts);
    /* A coordinator holds no data: every replica is remote, on its node's peer id. */
    bool first = true;
    for (uint32_t p = 0; p < o->n_parts && rc == DV_OK; p++) {
        for (uint32_t j = 0; j < o->parts[p].n_nodes && rc == DV_OK; j++) {
            uint32_t num = 0;
            const char *ns = "unknown";
            const struct msg_str *id = &o->parts[p].nodes[j];
            bool known = node_of(status, id->p, id->len, &num, &ns);
            rc = buf_appendf(
                b, "%s{\"shard_id\":%u,\"peer_id\":%" PRIu64 ",\"state\":\"%s\"}", first ? "" : ",",
                o->parts[p].part, (uint64_t)NODE_PEER_BASE + num,
                known ? replica_state(ns, o->parts[p].states ? o->parts[p].states[j] : 0) : "Dead");
            first = false;
        }
    }
    /* Moves of this collection under way, as Qdrant's shard transfers. */
    if (rc == DV_OK)
        rc = jw_raw(b, "],\"shard_transfers\":[");
    json_t *mv;
    size_t i;
    first = true;
    json_array_foreach(json_object_get(json_object_get(status, "rebalance"), "moves"), i, mv)
    {
        const char *mc = json_string_value(json_object_get(mv, "collection"));
        const char *ms = json_string_value(json_object_get(mv, "state"));
        const char *from = json_string_value(json_object_get(mv, "from"));
        const char *to = json_string_value(json_object_get(mv, "to"));
        if (!mc || !ms || !from || !to || strcmp(mc, coll) != 0 || strcmp(ms, "done") == 0 ||
            strcmp(ms, "failed") == 0 || rc != DV_OK)
            continue;
        uint32_t nf = 0, nt = 0;
        const char *st_ignored;
        node_of(status, from, strlen(from), &nf, &st_ignored);
        node_of(status, to, strlen(to), &nt, &st_ignored);
        rc = buf_appendf(b,
                         "%s{\"shard_id\":%" PRIu64 ",\"from\":%" PRIu64 ",\"to\":%" PRIu64
                         ",\"sync\":false,\"method\":\"snapshot\",\"comment\":\"%s\"}",
                         first ? "" : ",",
                         (uint64_t)json_integer_value(json_object_get(mv, "partition")),
                         (uint64_t)NODE_PEER_BASE + nf, (uint64_t)NODE_PEER_BASE + nt, ms);
        first = false;
    }
    if (rc == DV_OK)
        rc = jw_raw(b, "]}");
    json_decref(status);
    msg_reply_free(&rep);
    return rc == DV_OK ? 200 : oom(x);
}

/* Reads hnsw_config (m, ef_construct) into cfg: members given win over what is there. */
int rest_hnsw_params(struct rx *x, json_t *h, const char *field, struct msg_coll_cfg *cfg)
{
    if (h == NULL)
        return 200;
    if (!json_is_object(h))
        return rj_type_error(x, field, "expected an object");
    uint64_t m, efc;
    int st = rj_u64(x, h, "m", cfg->m, 0, 1u << 20, &m);
    if (st == 200)
        st = rj_u64(x, h, "ef_construct", cfg->ef_construction, 4, 1u << 20, &efc);
    if (st != 200)
        return st;
    /* m 0 disables the graph in Qdrant; dvec always builds one: the default is used. */
    cfg->m = (uint32_t)m;
    cfg->ef_construction = (uint32_t)efc;
    return 200;
}

/* quantization_config: null, or scalar int8 (dvec's SQ8); others are refused. */
int rest_quant_params(struct rx *x, json_t *q, const char *field, struct msg_coll_cfg *cfg)
{
    if (q == NULL)
        return 200;
    json_t *sc = json_is_object(q) ? json_object_get(q, "scalar") : NULL;
    if (sc == NULL) {
        if (json_is_object(q) && (json_object_get(q, "product") || json_object_get(q, "binary")))
            return rx_fail(x, 400,
                           "Wrong input: %s: only scalar (int8) quantization is supported by "
                           "dvec",
                           field);
        return rj_type_error(x, field, "expected {\"scalar\": {\"type\": \"int8\"}}");
    }
    json_t *t = json_is_object(sc) ? json_object_get(sc, "type") : NULL;
    if (!json_is_string(t) || strcmp(json_string_value(t), "int8") != 0)
        return rj_type_error(x, field, "scalar.type: expected `int8`");
    cfg->sq8 = true;
    return 200;
}

/* The common members of a create (shard_number, replication_factor, ...) into cfg; *wcf gets
 * write_consistency_factor. */
static int create_common(struct rx *x, json_t *j, struct msg_coll_cfg *cfg, uint64_t *wcf)
{
    uint64_t shards, rf;
    bool b;
    int st;
    if ((st = rj_u64(x, j, "shard_number", 0, 1, 1u << 20, &shards)) != 200 ||
        (st = rj_u64(x, j, "replication_factor", 0, 1, 1u << 20, &rf)) != 200 ||
        (st = rj_u64(x, j, "write_consistency_factor", 1, 1, 1u << 20, wcf)) != 200 ||
        (st = rj_bool(x, j, "on_disk_payload", false, &b)) != 200)
        return st;
    if (*wcf > 8)
        return rx_fail(x, 422,
                       "Validation error: `write_consistency_factor` must be 1 to 8, not %" PRIu64,
                       *wcf);
    cfg->partitions = (uint32_t)shards;
    cfg->replication = (uint32_t)rf;
    cfg->fsync = 0; /* every write is durable when acknowledged, as with the SDK's default */
    static const char *const objects[] = {"wal_config", "optimizers_config", "strict_mode_config",
                                          NULL};
    for (const char *const *k = objects; *k; k++) {
        json_t *o = rj_get(j, *k);
        if (o && !json_is_object(o))
            return rj_type_error(x, *k, "expected an object");
    }
    return 200;
}

/* A create with named vectors ({"name": {size, distance, ...}}) and/or sparse vectors. */
static int create_named(struct rx *x, const char *coll, json_t *j, json_t *vectors, json_t *sparse)
{
    struct msg q = {.type = MSG_COLL_CREATE};
    q.addr.coll = S(coll);
    struct msg_coll_cfg *cfg = &q.u.coll_cfg;
    uint64_t wcf;
    int st;
    cfg->m = 16;
    cfg->ef_construction = 200;
    if ((st = create_common(x, j, cfg, &wcf)) != 200 ||
        (st = rest_hnsw_params(x, rj_get(j, "hnsw_config"), "hnsw_config", cfg)) != 200 ||
        (st = rest_quant_params(x, rj_get(j, "quantization_config"), "quantization_config", cfg)) !=
            200 ||
        (st = rv_parse_cfg(x, vectors, sparse, cfg)) != 200)
        return st;
    struct msg_reply rep;
    if ((st = rx_call(x, &q, &rep)) != 200)
        return st;
    msg_reply_free(&rep);
    if (wcf > 1 && (st = set_wcf(x, coll, wcf)) != 200)
        return st;
    return jw_raw(&x->res, "true") == DV_OK ? 200 : oom(x);
}

int rh_coll_create(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    json_t *j = x->json;
    static const char *const unsupported[] = {"init_from", NULL};
    if ((st = rj_unsupported(x, j, unsupported)) != 200)
        return st;
    json_t *sparse = rj_get(j, "sparse_vectors");
    if (sparse && !json_is_object(sparse))
        return rj_type_error(x, "sparse_vectors", "expected an object");
    json_t *sm = rj_get(j, "sharding_method");
    if (sm && !(json_is_string(sm) && strcmp(json_string_value(sm), "auto") == 0))
        return rx_fail(x, 400, "Wrong input: only the `auto` sharding method is supported by dvec");

    json_t *v = rj_get(j, "vectors");
    if (v != NULL && !json_is_object(v))
        return rj_type_error(x, "vectors", "expected an object");
    bool named_form = v == NULL || json_object_get(v, "size") == NULL;
    if (named_form && v != NULL && json_object_size(v) == 1 && json_object_get(v, "") &&
        (sparse == NULL || json_object_size(sparse) == 0)) {
        v = json_object_get(v, ""); /* {"": {size, distance}}: the unnamed vector */
        named_form = false;
        if (!json_is_object(v))
            return rj_type_error(x, "vectors", "expected an object");
    }
    if (named_form || (sparse && json_object_size(sparse) > 0)) {
        if (!named_form)
            return rx_fail(x, 400,
                           "Wrong input: sparse vectors need named dense vectors (`vectors`: "
                           "{\"name\": {size, distance}}) or none (`vectors`: {})");
        return create_named(x, coll, j, v, sparse);
    }
    json_t *size = json_object_get(v, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return rj_type_error(x, "vectors.size", "expected a non-negative integer");
    if (json_integer_value(size) < 1)
        return rj_invalid(x, "vectors.size", "value 0 invalid, must be 1 or larger");
    if (json_integer_value(size) > PROTO_MAX_DIM)
        return rj_invalid(x, "vectors.size", "value too large, must be 65536 or smaller");
    json_t *dist = json_object_get(v, "distance");
    int metric = -1;
    for (int i = 0; i < 4 && json_is_string(dist); i++)
        if (strcmp(json_string_value(dist), distance_names[i]) == 0)
            metric = i;
    if (metric < 0)
        return rj_type_error(x, "vectors.distance",
                             "unknown variant, expected one of `Cosine`, `Euclid`, `Dot`, "
                             "`Manhattan`");
    json_t *dt = rj_get(v, "datatype");
    if (dt && !(json_is_string(dt) && strcmp(json_string_value(dt), "float32") == 0))
        return rx_fail(x, 400, "Wrong input: vectors.datatype: only float32 is supported by dvec");
    if (rj_get(v, "multivec_config"))
        return rx_fail(x, 400, "Wrong input: multivectors are not supported by dvec");

    struct msg q = {.type = MSG_COLL_CREATE};
    q.addr.coll = S(coll);
    struct msg_coll_cfg *cfg = &q.u.coll_cfg;
    cfg->dim = (uint32_t)json_integer_value(size);
    cfg->metric = (uint32_t)metric;
    cfg->fsync = 0; /* every write is durable when acknowledged, as with the SDK's default */
    uint64_t shards, rf, wcf;
    bool b;
    if ((st = rj_u64(x, j, "shard_number", 0, 1, 1u << 20, &shards)) != 200 ||
        (st = rj_u64(x, j, "replication_factor", 0, 1, 1u << 20, &rf)) != 200 ||
        (st = rj_u64(x, j, "write_consistency_factor", 1, 1, 1u << 20, &wcf)) != 200 ||
        (st = rj_bool(x, j, "on_disk_payload", false, &b)) != 200 ||
        (st = rj_bool(x, v, "on_disk", false, &b)) != 200)
        return st;
    if (wcf > 8)
        return rx_fail(x, 422,
                       "Validation error: `write_consistency_factor` must be 1 to 8, not %" PRIu64,
                       wcf);
    cfg->partitions = (uint32_t)shards;
    cfg->replication = (uint32_t)rf;
    /* Collection-level settings, then the vector's own (which win, as in Qdrant). */
    if ((st = rest_hnsw_params(x, rj_get(j, "hnsw_config"), "hnsw_config", cfg)) != 200 ||
        (st = rest_hnsw_params(x, rj_get(v, "hnsw_config"), "vectors.hnsw_config", cfg)) != 200 ||
        (st = rest_quant_params(x, rj_get(j, "quantization_config"), "quantization_config", cfg)) !=
            200 ||
        (st = rest_quant_params(x, rj_get(v, "quantization_config"), "vectors.quantization_config",
                                cfg)) != 200)
        return st;
    static const char *const objects[] = {"wal_config", "optimizers_config", "strict_mode_config",
                                          NULL};
    for (const char *const *k = objects; *k; k++) {
        json_t *o = rj_get(j, *k);
        if (o && !json_is_object(o))
            return rj_type_error(x, *k, "expected an object");
    }
    struct msg_reply rep;
    if ((st = rx_call(x, &q, &rep)) != 200)
        return st;
    msg_reply_free(&rep);
    if (wcf > 1 && (st = set_wcf(x, coll, wcf)) != 200)
        return st;
    return jw_raw(&x->res, "true") == DV_OK ? 200 : oom(x);
}

int rh_coll_drop(struct rx *x, const char *coll)
{
    struct msg q = {.type = MSG_COLL_DROP};
    q.addr.coll = S(coll);
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    if (st == 404) {
        /* Qdrant answers a delete of a missing collection with false, not an error. */
        x->err[0] = '\0';
        return jw_raw(&x->res, "false") == DV_OK ? 200 : oom(x);
    }
    if (st != 200)
        return st;
    msg_reply_free(&rep);
    return jw_raw(&x->res, "true") == DV_OK ? 200 : oom(x);
}

/* PUT /collections/{c}/index (field in the body) or DELETE /collections/{c}/index/{field}. */
static int rh_index_(struct rx *x, const char *coll, const char *field, struct buf *params_b)
{
    struct msg q = {.type = MSG_P_INDEX};
    q.addr.coll = S(coll);
    struct msg_index_req *ix = &q.u.index_req;
    if (field != NULL) {
        ix->op = MSG_INDEX_DROP;
        ix->key = S(field);
    } else {
        int st = rj_body(x, false);
        if (st != 200)
            return st;
        json_t *name = json_object_get(x->json, "field_name");
        if (!json_is_string(name))
            return rx_fail(x, 400, "Format error in JSON body: missing field `field_name`");
        json_t *schema = rj_get(x->json, "field_schema");
        json_t *type = schema && json_is_object(schema) ? json_object_get(schema, "type") : schema;
        if (schema == NULL)
            return rx_fail(x, 400,
                           "Wrong input: field_schema is required by dvec (keyword, integer, "
                           "float, bool, geo, text, datetime or uuid)");
        if (!json_is_string(type))
            return rj_type_error(x, "field_schema", "expected a schema name or {\"type\": name}");
        const char *t = json_string_value(type);
        size_t nk = sizeof index_kind_names / sizeof index_kind_names[0];
        ix->kind = UINT32_MAX;
        for (size_t k = 0; k < nk; k++)
            if (strcmp(t, index_kind_names[k]) == 0)
                ix->kind = (uint32_t)k;
        if (ix->kind == UINT32_MAX)
            return rx_fail(x, 400,
                           "Wrong input: unknown payload index type `%.32s` (keyword, integer, "
                           "float, bool, geo, text, datetime, uuid)",
                           t);
        /* An object's parameters (tokenizer, lookup/range, ...) go to the nodes, which check
         * them (shard/query/pindex.h's pindex_params_parse). */
        if (json_is_object(schema)) {
            char err[DV_ERRMSG_SIZE];
            if (jsonmp_from_json(schema, params_b, err) != DV_OK)
                return rx_fail(x, 400, "Wrong input: field_schema: %s", err);
            ix->params = (struct msg_bytes){params_b->data, (uint32_t)params_b->len};
        }
        ix->op = MSG_INDEX_CREATE;
        ix->key = (struct msg_str){json_string_value(name), (uint32_t)json_string_length(name)};
    }
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    if (st != 200)
        return st;
    msg_reply_free(&rep);
    return jw_update(x);
}

int rh_index(struct rx *x, const char *coll, const char *field)
{
    struct buf params = BUF_INIT;
    int st = rh_index_(x, coll, field, &params);
    buf_free(&params);
    return st;
}
