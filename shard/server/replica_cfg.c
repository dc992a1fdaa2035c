/* replica_cfg.c - a replica's index parameters and fsync policy from the protocol's config. */
#include "replica_cfg.h"

#include <string.h>

#include "err.h"

int replica_cfg_params(const struct msg_coll_cfg *c, struct hnsw_params *hp, enum wal_sync *sync,
                       char *errmsg)
{
    if (c->metric > HNSW_L1) {
        dv_errmsg_set(errmsg, "unknown metric %u (0 euclid, 1 dot, 2 cosine, 3 manhattan)",
                      c->metric);
        return DV_EINVAL;
    }
    if (c->fsync > WAL_SYNC_NEVER) {
        dv_errmsg_set(errmsg, "unknown fsync policy %u (0 always, 1 interval, 2 never)", c->fsync);
        return DV_EINVAL;
    }
    hnsw_params_default(hp);
    hp->dim = c->dim;
    hp->metric = (enum hnsw_metric)c->metric;
    if (c->m)
        hp->m = c->m;
    if (c->ef_construction)
        hp->ef_construction = c->ef_construction;
    if (c->ef_search)
        hp->ef_search = c->ef_search;
    hp->sq8 = c->sq8;
    *sync = (enum wal_sync)c->fsync;
    return DV_OK;
}

int replica_cfg_spaces(const struct msg_coll_cfg *c, struct part_space *out, char *errmsg)
{
    if (c->n_spaces > PART_MAX_SPACES) {
        dv_errmsg_set(errmsg, "%u named vectors, at most %d", c->n_spaces, PART_MAX_SPACES);
        return DV_EINVAL;
    }
    for (uint32_t i = 0; i < c->n_spaces; i++) {
        const struct msg_vspace *v = &c->spaces[i];
        struct part_space *d = &out[i];
        memset(d, 0, sizeof *d);
        if (strlen(v->name) >= PART_NAME_MAX) {
            dv_errmsg_set(errmsg, "vector name of %zu bytes, at most %d", strlen(v->name),
                          PART_NAME_MAX - 1);
            return DV_EINVAL;
        }
        memcpy(d->name, v->name, strlen(v->name));
        if (v->kind > PART_VEC_MULTI || v->metric > HNSW_L1) {
            dv_errmsg_set(errmsg, "vector \"%s\": unknown kind %u or metric %u", d->name, v->kind,
                          v->metric);
            return DV_EINVAL;
        }
        d->kind = (enum part_vkind)v->kind;
        hnsw_params_default(&d->index);
        d->index.dim = v->dim;
        d->index.metric = (enum hnsw_metric)v->metric;
        if (v->m)
            d->index.m = v->m;
        if (v->ef_construction)
            d->index.ef_construction = v->ef_construction;
        if (c->ef_search)
            d->index.ef_search = c->ef_search;
        d->index.sq8 = v->sq8;
        d->idf = v->idf;
        int rc = part_space_check(d, errmsg);
        if (rc != DV_OK)
            return rc;
    }
    return DV_OK;
}
