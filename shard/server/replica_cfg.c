/* replica_cfg.c - a replica's index parameters and fsync policy from the protocol's config. */
#include "replica_cfg.h"

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
