/* rest_coll_update.c - PATCH /collections/{c}, Qdrant's collection update: what dvec can change
 * on a live collection (replication and write consistency factors, the default search ef) as one
 * cluster-map command, and a 400 naming every other member with the reason it cannot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsonmp.h"
#include "rest_int.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

/* Why a member cannot change, by its name inside its object ("m" of hnsw_config, ...). */
struct why {
    const char *key;
    const char *reason;
};

static const char GRAPH[] = "dvec cannot rebuild the HNSW graph of a live collection (set it at "
                            "creation)";
static const char NO_OPTIMIZER[] = "dvec has no segment optimizer (each replica is one HNSW index, "
                                   "compacted once 10% of its points are deleted)";

static const struct why hnsw_why[] = {
    {"m", GRAPH},
    {"ef_construct", GRAPH},
    {"payload_m", GRAPH},
    {"full_scan_threshold", "dvec's planner has no size threshold to set"},
    {"max_indexing_threads", "dvec's nodes index on the writing thread"},
    {"on_disk", "dvec keeps the graph in memory-mapped files, not an option"},
    {"memory", "dvec keeps the graph in memory-mapped files, not an option"},
    {"inline_storage", "dvec has no inline storage"},
    {NULL, NULL},
};

static const struct why params_why[] = {
    {"read_fan_out_factor", "dvec reads one in-sync replica per partition (see ?consistency=)"},
    {"read_fan_out_delay_ms", "dvec reads one in-sync replica per partition (see ?consistency=)"},
    {"on_disk_payload", "dvec keeps payloads in memory-mapped files, not an option"},
    {"payload", "dvec keeps payloads in memory-mapped files, not an option"},
    {NULL, NULL},
};

static const struct why top_why[] = {
    {"quantization_config", "dvec cannot re-quantize the stored vectors of a live collection "
                            "(quantization is set at creation)"},
    {"sparse_vectors", "a collection's named and sparse vectors are fixed at creation"},
    {"strict_mode_config", "dvec has no strict mode"},
    {"metadata", "dvec keeps no collection metadata"},
    {NULL, NULL},
};

static const char *reason(const struct why *w, const char *key, const char *other)
{
    for (; w->key; w++)
        if (strcmp(w->key, key) == 0)
            return w->reason;
    return other;
}

/* 400 naming `field` and why dvec cannot change it. */
static int refuse(struct rx *x, const char *field, const char *why)
{
    return rx_fail(x, 400, "Wrong input: dvec cannot change `%.128s`: %s", field, why);
}

/* The first member of object o that is set (not null), in *key and *val; false when none. */
static bool first_set(json_t *o, const char **key, json_t **val)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!json_is_null(v)) {
            *key = k;
            *val = v;
            return true;
        }
    }
    return false;
}

/* hnsw_config: `ef` (dvec's default search ef, a member Qdrant's HnswConfigDiff lacks) into
 * *ef; any other member set is refused. */
static int hnsw(struct rx *x, json_t *h, uint64_t *ef)
{
    if (!json_is_object(h))
        return rj_type_error(x, "hnsw_config", "expected an object");
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v)
    {
        if (json_is_null(v))
            continue;
        char f[160];
        snprintf(f, sizeof f, "hnsw_config.%.64s", k);
        if (strcmp(k, "ef") != 0)
            return refuse(x, f, reason(hnsw_why, k, "not a member dvec knows"));
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > PROTO_MAX_CFG_EF) {
            char what[64];
            snprintf(what, sizeof what, "must be an integer from 1 to %d", PROTO_MAX_CFG_EF);
            return rj_invalid(x, f, what);
        }
        *ef = (uint64_t)json_integer_value(v);
    }
    return 200;
}

/* params: replication_factor and write_consistency_factor (1..8) into args. */
static int params(struct rx *x, json_t *p, json_t *args)
{
    if (!json_is_object(p))
        return rj_type_error(x, "params", "expected an object");
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v)
    {
        if (json_is_null(v))
            continue;
        char f[160];
        snprintf(f, sizeof f, "params.%.64s", k);
        if (strcmp(k, "replication_factor") != 0 && strcmp(k, "write_consistency_factor") != 0)
            return refuse(x, f, reason(params_why, k, "not a member dvec knows"));
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 8)
            return rj_invalid(x, f, "must be an integer from 1 to 8");
        if (json_object_set(args, k, v) != 0)
            return rx_oom(x);
    }
    return 200;
}

/* vectors: {name: {hnsw_config, quantization_config, on_disk, memory}}: nothing dvec changes
 * per vector (its one ef is the collection's); the first member set is refused. */
static int vectors(struct rx *x, json_t *vs)
{
    if (!json_is_object(vs))
        return rj_type_error(x, "vectors", "expected an object {name: {...}}");
    const char *name, *k, *k2;
    json_t *d, *v, *v2;
    char f[256];
    json_object_foreach(vs, name, d)
    {
        if (json_is_null(d))
            continue;
        if (!json_is_object(d)) {
            snprintf(f, sizeof f, "vectors.%.64s", name);
            return rj_type_error(x, f, "expected an object");
        }
        const char *shown = name[0] ? name : "\"\""; /* the unnamed vector */
        json_object_foreach(d, k, v)
        {
            if (json_is_null(v))
                continue;
            if (strcmp(k, "hnsw_config") == 0 && json_is_object(v)) {
                if (!first_set(v, &k2, &v2))
                    continue; /* {} */
                snprintf(f, sizeof f, "vectors.%.64s.hnsw_config.%.64s", shown, k2);
                return refuse(x, f,
                              strcmp(k2, "ef") == 0
                                  ? "dvec has one default search ef per collection (hnsw_config.ef)"
                                  : reason(hnsw_why, k2, "not a member dvec knows"));
            }
            snprintf(f, sizeof f, "vectors.%.64s.%.64s", shown, k);
            return refuse(x, f,
                          strcmp(k, "quantization_config") == 0 ? reason(top_why, k, "")
                          : strcmp(k, "on_disk") == 0 || strcmp(k, "memory") == 0
                              ? "dvec keeps vectors in memory-mapped files, not an option"
                              : "not a member dvec knows");
        }
    }
    return 200;
}

/* optimizers_config: every member set is refused (dvec has none of Qdrant's optimizer). */
static int optimizers(struct rx *x, json_t *o)
{
    if (!json_is_object(o))
        return rj_type_error(x, "optimizers_config", "expected an object");
    const char *k;
    json_t *v;
    if (!first_set(o, &k, &v))
        return 200;
    char f[160];
    snprintf(f, sizeof f, "optimizers_config.%.64s", k);
    return refuse(x, f, NO_OPTIMIZER);
}

/* The change as the admin op coll_set (one Raft command through the leader). */
static int coll_set(struct rx *x, json_t *args)
{
    struct buf a = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    if (jsonmp_from_json(args, &a, err) != DV_OK) {
        buf_free(&a);
        return rx_oom(x);
    }
    struct msg q = {.type = MSG_ADMIN};
    q.u.admin_req = (struct msg_admin_req){S("coll_set"), {a.data, (uint32_t)a.len}};
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    buf_free(&a);
    if (st != 200)
        return st;
    msg_reply_free(&rep);
    return 200;
}

/*
 * PATCH /collections/{c}: params.replication_factor (replicas are added or dropped online),
 * params.write_consistency_factor and hnsw_config.ef (the ef of searches that give none). Every
 * member is checked before anything changes; the change is one command, so it is all or
 * nothing. Other members set are refused with 400 naming them and why.
 */
int rh_coll_update(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    json_t *args = json_pack("{s:s}", "collection", coll);
    if (args == NULL)
        return rx_oom(x);
    uint64_t ef = 0;
    const char *key;
    json_t *v;
    json_object_foreach(x->json, key, v)
    {
        if (json_is_null(v))
            continue;
        if (strcmp(key, "params") == 0)
            st = params(x, v, args);
        else if (strcmp(key, "hnsw_config") == 0)
            st = hnsw(x, v, &ef);
        else if (strcmp(key, "optimizers_config") == 0)
            st = optimizers(x, v);
        else if (strcmp(key, "vectors") == 0)
            st = vectors(x, v);
        else
            st = refuse(x, key, reason(top_why, key, "not a member dvec knows"));
        if (st != 200)
            break;
    }
    if (st == 200 && ef > 0 && json_object_set_new(args, "ef_search", json_integer((json_int_t)ef)))
        st = rx_oom(x);
    if (st == 200 && json_object_size(args) == 1)
        st = rx_fail(x, 400,
                     "Wrong input: nothing to change (dvec changes params.replication_factor, "
                     "params.write_consistency_factor and hnsw_config.ef)");
    if (st == 200)
        st = coll_set(x, args);
    json_decref(args);
    if (st != 200)
        return st;
    return jw_raw(&x->res, "true") == DV_OK ? 200 : rx_oom(x);
}
