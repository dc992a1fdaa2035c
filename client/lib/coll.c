/* coll.c - libdvec's collection calls: create, drop, list, info, payload indexes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

DVEC_API void dvec_collection_config_init(dvec_collection_config *cfg, uint32_t dim)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->dim = dim;
    cfg->metric = DVEC_EUCLID;
    cfg->fsync = DVEC_FSYNC_ALWAYS;
}

/* The SDK's collection config is the protocol's (struct msg_coll_cfg) field for field: these two
 * are the only places libdvec converts one into the other (create sends it, info reads it). */
static struct msg_coll_cfg cfg_to_msg(const dvec_collection_config *cfg)
{
    return (struct msg_coll_cfg){
        .dim = cfg->dim,
        .metric = (uint32_t)cfg->metric,
        .m = cfg->m,
        .ef_construction = cfg->ef_construction,
        .ef_search = cfg->ef_search,
        .fsync = (uint32_t)cfg->fsync,
        .partitions = cfg->partitions,
        .replication = cfg->replication,
        .sq8 = cfg->sq8,
    };
}

static dvec_collection_config cfg_from_msg(const struct msg_coll_cfg *c)
{
    return (dvec_collection_config){
        .dim = c->dim,
        .metric = (dvec_metric)c->metric,
        .m = c->m,
        .ef_construction = c->ef_construction,
        .ef_search = c->ef_search,
        .partitions = c->partitions,
        .replication = c->replication,
        .fsync = (dvec_fsync)c->fsync,
        .sq8 = c->sq8,
    };
}

/* Sends a request about collection `name`; on failure err says "collection NAME: what: ...". */
static int call_named(dvec_client *c, const char *name, const char *what, const struct msg *req,
                      struct msg_reply *rep, dvec_error *err)
{
    char e[DV_ERRMSG_SIZE] = "";
    int rc = cl_call(c, req, 0, rep, e);
    if (rc != DV_OK)
        return cl_failf(err, rc, "collection %s: %s: %s", name, what, e);
    return DVEC_OK;
}

DVEC_API int dvec_collection_create(dvec_client *c, const char *name,
                                    const dvec_collection_config *cfg, dvec_error *err)
{
    if (c == NULL || cfg == NULL)
        return cl_failf(err, DVEC_EINVAL, "create collection: client or config is NULL");
    int rc = cl_check_coll(name, err);
    if (rc != DVEC_OK)
        return rc;
    if ((unsigned)cfg->metric > DVEC_MANHATTAN)
        return cl_failf(err, DVEC_EINVAL, "collection %s: create: unknown metric %d", name,
                        (int)cfg->metric);
    if ((unsigned)cfg->fsync > DVEC_FSYNC_NEVER)
        return cl_failf(err, DVEC_EINVAL, "collection %s: create: unknown fsync policy %d", name,
                        (int)cfg->fsync);
    uint32_t rf = cfg->replication ? cfg->replication : 1;
    if (cfg->write_consistency_factor > rf)
        return cl_failf(err, DVEC_EINVAL,
                        "collection %s: create: write_consistency_factor %u is more than the "
                        "replication factor %u (no write could be accepted)",
                        name, cfg->write_consistency_factor, rf);
    struct msg req = cl_req(MSG_COLL_CREATE, name);
    req.u.coll_cfg = cfg_to_msg(cfg);
    cl_metric_forget(c, name);
    struct msg_reply rep;
    if ((rc = call_named(c, name, "create", &req, &rep, err)) != DVEC_OK)
        return rc;
    msg_reply_free(&rep);
    if (cfg->write_consistency_factor > 1) {
        /* A second map command, as Qdrant's PATCH would be (admin op coll_set). */
        char args[160], *out = NULL;
        snprintf(args, sizeof args, "{\"collection\":\"%s\",\"write_consistency_factor\":%u}", name,
                 cfg->write_consistency_factor);
        if ((rc = dvec_admin(c, "coll_set", args, &out, err)) != DVEC_OK)
            return rc;
        free(out);
    }
    return cl_ok(err);
}

DVEC_API int dvec_collection_drop(dvec_client *c, const char *name, dvec_error *err)
{
    if (c == NULL)
        return cl_failf(err, DVEC_EINVAL, "drop collection: no client (NULL)");
    int rc = cl_check_coll(name, err);
    if (rc != DVEC_OK)
        return rc;
    cl_metric_forget(c, name);
    struct msg req = cl_req(MSG_COLL_DROP, name);
    struct msg_reply rep;
    if ((rc = call_named(c, name, "drop", &req, &rep, err)) != DVEC_OK)
        return rc;
    msg_reply_free(&rep);
    return cl_ok(err);
}

static char *str_dup(const struct msg_str *s)
{
    char *t = malloc((size_t)s->len + 1);
    if (t) {
        memcpy(t, s->p, s->len);
        t[s->len] = '\0';
    }
    return t;
}

DVEC_API int dvec_collection_list(dvec_client *c, char ***names, size_t *n, dvec_error *err)
{
    if (c == NULL || names == NULL || n == NULL)
        return cl_failf(err, DVEC_EINVAL, "list collections: client or output is NULL");
    *names = NULL;
    *n = 0;
    struct msg req = cl_req(MSG_COLL_LIST, NULL);
    struct msg_reply rep;
    char e[DV_ERRMSG_SIZE] = "";
    int rc = cl_call(c, &req, 0, &rep, e);
    if (rc != DV_OK)
        return cl_fail(err, rc, "list collections", e);
    const struct msg_coll_list_rep *l = &rep.m.u.coll_list_rep;
    char **out = calloc(l->n ? l->n : 1, sizeof *out);
    size_t k = 0;
    for (; out && k < l->n; k++)
        if ((out[k] = str_dup(&l->names[k])) == NULL)
            break;
    msg_reply_free(&rep);
    if (out == NULL || k < l->n) {
        dvec_strings_free(out, k);
        return cl_fail(err, DVEC_ENOMEM, "list collections", NULL);
    }
    *names = out;
    *n = k;
    return cl_ok(err);
}

DVEC_API void dvec_strings_free(char **names, size_t n)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

DVEC_API int dvec_collection_info_get(dvec_client *c, const char *name, dvec_collection_info *out,
                                      dvec_error *err)
{
    if (c == NULL || out == NULL)
        return cl_failf(err, DVEC_EINVAL, "collection info: client or output is NULL");
    memset(out, 0, sizeof *out);
    int rc = cl_check_coll(name, err);
    if (rc != DVEC_OK)
        return rc;
    struct msg req = cl_req(MSG_COLL_INFO, name);
    struct msg_reply rep;
    if ((rc = call_named(c, name, "info", &req, &rep, err)) != DVEC_OK)
        return rc;
    const struct msg_coll_info_rep *in = &rep.m.u.coll_info_rep;
    dvec_collection_info info = {0};
    info.config = cfg_from_msg(&in->cfg);
    info.points = in->points;
    if (in->n_parts > 0 && (info.partitions = calloc(in->n_parts, sizeof *info.partitions)) == NULL)
        goto err_nomem;
    for (uint32_t p = 0; p < in->n_parts; p++, info.n_partitions++) {
        const struct msg_coll_part *mp = &in->parts[p];
        dvec_partition_info *o = &info.partitions[p];
        o->id = mp->part;
        o->epoch = mp->epoch;
        o->points = mp->points;
        o->term = mp->term;
        if (mp->n_nodes > 0 && ((o->nodes = calloc(mp->n_nodes, sizeof *o->nodes)) == NULL ||
                                (o->states = calloc(mp->n_nodes, 1)) == NULL))
            goto err_nomem;
        for (uint32_t j = 0; j < mp->n_nodes; j++)
            o->states[j] = mp->states ? mp->states[j] : 0;
        for (uint32_t j = 0; j < mp->n_nodes; j++, o->n_nodes++)
            if ((o->nodes[j] = str_dup(&mp->nodes[j])) == NULL) {
                info.n_partitions++;
                goto err_nomem;
            }
    }
    msg_reply_free(&rep);
    *out = info;
    return cl_ok(err);

err_nomem:
    msg_reply_free(&rep);
    dvec_collection_info_free(&info);
    return cl_failf(err, DVEC_ENOMEM, "collection %s: info: out of memory", name);
}

DVEC_API const char *dvec_replica_state_name(int state)
{
    static const char *const names[] = {"active", "dead", "partial", "initializing", "recovery"};
    return state >= 0 && state < 5 ? names[state] : "unknown";
}

DVEC_API void dvec_collection_info_free(dvec_collection_info *info)
{
    if (info == NULL)
        return;
    for (size_t p = 0; p < info->n_partitions; p++) {
        dvec_strings_free(info->partitions[p].nodes, info->partitions[p].n_nodes);
        free(info->partitions[p].states);
    }
    free(info->partitions);
    info->partitions = NULL;
    info->n_partitions = 0;
}

DVEC_API int dvec_payload_index_create(dvec_client *c, const char *coll, const char *key,
                                       const char *kind, dvec_error *err)
{
    if (c == NULL)
        return cl_failf(err, DVEC_EINVAL, "payload index: no client (NULL)");
    int rc = cl_check_coll(coll, err);
    if (rc != DVEC_OK)
        return rc;
    if (key == NULL || key[0] == '\0')
        return cl_failf(err, DVEC_EINVAL, "collection %s: payload index: no key given", coll);
    uint32_t k;
    if (kind && strcmp(kind, "keyword") == 0)
        k = 0;
    else if (kind && strcmp(kind, "integer") == 0)
        k = 1;
    else
        return cl_failf(err, DVEC_EINVAL,
                        "collection %s: payload index on %s: kind \"%s\" is not \"keyword\" or "
                        "\"integer\"",
                        coll, key, kind ? kind : "(null)");
    struct msg req = cl_req(MSG_P_INDEX, coll);
    req.u.index_req =
        (struct msg_index_req){MSG_INDEX_CREATE, k, {key, (uint32_t)strlen(key)}, {NULL, 0}};
    struct msg_reply rep;
    if ((rc = call_named(c, coll, "payload index", &req, &rep, err)) != DVEC_OK)
        return rc;
    msg_reply_free(&rep);
    return cl_ok(err);
}
