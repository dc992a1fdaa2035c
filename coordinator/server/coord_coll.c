/* coord_coll.c - the collection config between the protocol (msg_coll_cfg) and the map. */
#include "coord_coll.h"

#include <string.h>

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
    out->n_spaces = in->n_spaces;
    for (uint32_t i = 0; i < in->n_spaces && i < PROTO_MAX_VECTORS; i++) {
        const struct msg_vspace *v = &in->spaces[i];
        bool sparse = v->kind == 1;
        out->spaces[i] = (struct cmap_vspace){
            .kind = v->kind,
            .dim = v->dim,
            .metric = v->metric,
            .m = sparse ? 0
                 : v->m ? v->m
                        : out->m,
            .ef_construction = sparse               ? 0
                               : v->ef_construction ? v->ef_construction
                                                    : out->ef_construction,
            .sq8 = v->sq8,
            .idf = v->idf,
        };
        memcpy(out->spaces[i].name, v->name, sizeof v->name);
    }
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
    out->n_spaces = in->n_spaces;
    for (uint32_t i = 0; i < in->n_spaces; i++) {
        const struct cmap_vspace *v = &in->spaces[i];
        out->spaces[i] = (struct msg_vspace){
            .kind = v->kind,
            .dim = v->dim,
            .metric = v->metric,
            .m = v->m,
            .ef_construction = v->ef_construction,
            .sq8 = v->sq8,
            .idf = v->idf,
        };
        memcpy(out->spaces[i].name, v->name, sizeof v->name);
    }
}

struct msg_create_req coord_coll_create_req(const struct cmap_coll *cl)
{
    struct msg_create_req r = {.incarnation = cl->epoch};
    coord_coll_cfg_to_msg(&cl->cfg, &r.cfg);
    /* A replica's create does not carry these (they decode as 0 on the node). */
    r.cfg.partitions = r.cfg.replication = 0;
    return r;
}
