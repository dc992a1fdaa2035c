/* coord_coll.c - the collection config between the protocol (msg_coll_cfg) and the map. */
#include "coord_coll.h"

void coord_coll_cfg_from_msg(const struct msg_coll_cfg *in, struct cmap_coll_cfg *out)
{
    *out = (struct cmap_coll_cfg){
        .dim = in->dim,
        .metric = in->metric,
        .m = in->m ? in->m : 16,
        .ef_construction = in->ef_construction ? in->ef_construction : 200,
        .ef_search = in->ef_search ? in->ef_search : 64,
        .n_parts = in->partitions,
        .rf = in->replication ? in->replication : 1,
        .fsync = in->fsync,
        .sq8 = in->sq8,
    };
}

void coord_coll_cfg_to_msg(const struct cmap_coll_cfg *in, struct msg_coll_cfg *out)
{
    *out = (struct msg_coll_cfg){
        .dim = in->dim,
        .metric = in->metric,
        .m = in->m,
        .ef_construction = in->ef_construction,
        .ef_search = in->ef_search,
        .fsync = in->fsync,
        .partitions = in->n_parts,
        .replication = in->rf,
        .sq8 = in->sq8,
    };
}

struct msg_create_req coord_coll_create_req(const struct cmap_coll *cl)
{
    struct msg_create_req r = {.incarnation = cl->epoch};
    coord_coll_cfg_to_msg(&cl->cfg, &r.cfg);
    /* A replica's create does not carry these (they decode as 0 on the node). */
    r.cfg.partitions = r.cfg.replication = 0;
    return r;
}
