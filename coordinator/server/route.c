/* route.c - a collection's routing table for clients that go to the nodes themselves (one hop,
 * MSG_ROUTE): the nodes, each partition's primary, readers and write group, from this
 * coordinator's copy of the map. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_coll.h"
#include "err.h"
#include "insync.h"
#include "router_int.h"

/* One block holding everything a route reply points into. */
struct route_mem {
    struct msg_peer *nodes;
    struct msg_route_part *parts;
    uint32_t *idx;                    /* readers and secondaries of every part */
    char (*ids)[CMAP_ID_MAX + 1];     /* [n_nodes] */
    char (*urls)[CMAP_URL_MAX + 1];   /* [n_nodes] */
    char (*search)[CMAP_URL_MAX + 1]; /* [n_nodes] search ports */
    struct msg_str *search_urls;      /* [n_nodes] */
    uint32_t *num_of;                 /* [n_nodes] map node number of each route node */
    char coll[CMAP_NAME_MAX + 1];     /* the collection an alias names */
};

void coord_route_free(void *p)
{
    struct route_mem *r = p;
    if (r == NULL)
        return;
    free(r->nodes);
    free(r->parts);
    free(r->idx);
    free(r->ids);
    free(r->urls);
    free(r->search);
    free(r->search_urls);
    free(r->num_of);
    free(r);
}

/* The route index of map node `num`, added when new. */
static uint32_t node_index(struct route_mem *r, uint32_t *n, const struct cmap *m, uint32_t num)
{
    for (uint32_t i = 0; i < *n; i++)
        if (r->num_of[i] == num)
            return i;
    const struct cmap_node *nd = cmap_node_get(m, num);
    uint32_t i = (*n)++;
    r->num_of[i] = num;
    snprintf(r->ids[i], sizeof r->ids[i], "%s", nd ? nd->id : "?");
    snprintf(r->urls[i], sizeof r->urls[i], "%s", nd ? nd->url : "");
    snprintf(r->search[i], sizeof r->search[i], "%s", nd ? nd->search_url : "");
    r->nodes[i] = (struct msg_peer){S(r->ids[i]), S(r->urls[i])};
    r->search_urls[i] = S(r->search[i]);
    return i;
}

int coord_route(struct coord *c, const char *name, struct msg *rep, void **mem, char *errmsg)
{
    *mem = NULL;
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    const struct cmap_coll *cl = cmap_coll_resolve(m, name);
    if (cl == NULL) {
        craft_map_release(c->raft, ref);
        dv_errmsg_set(errmsg, "collection %s does not exist", name);
        return DV_ENOTFOUND;
    }
    uint32_t np = cl->cfg.n_parts, total = 0;
    for (uint32_t p = 0; p < np; p++)
        total += cl->parts[p].n;
    size_t slots = total ? total : 1;
    struct route_mem *r = calloc(1, sizeof *r);
    if (r) {
        r->nodes = calloc(slots, sizeof *r->nodes);
        r->parts = calloc(np ? np : 1, sizeof *r->parts);
        r->idx = calloc(2 * slots, sizeof *r->idx);
        r->ids = calloc(slots, sizeof *r->ids);
        r->urls = calloc(slots, sizeof *r->urls);
        r->search = calloc(slots, sizeof *r->search);
        r->search_urls = calloc(slots, sizeof *r->search_urls);
        r->num_of = calloc(slots, sizeof *r->num_of);
    }
    struct msg_peer *group = calloc(CMAP_MAX_REPLICAS, sizeof *group);
    if (!r || !r->nodes || !r->parts || !r->idx || !r->ids || !r->urls || !r->search ||
        !r->search_urls || !r->num_of || !group) {
        craft_map_release(c->raft, ref);
        coord_route_free(r);
        free(group);
        return DV_ENOMEM;
    }
    struct msg_route_rep *o = &rep->u.route_rep;
    o->map_epoch = m->epoch;
    if (strcmp(cl->name, name) != 0) { /* asked by an alias: the nodes know the collection */
        snprintf(r->coll, sizeof r->coll, "%s", cl->name);
        o->coll = (struct msg_str){r->coll, (uint32_t)strlen(r->coll)};
    }
    coord_coll_cfg_to_msg(&cl->cfg, &o->cfg);
    uint32_t n_nodes = 0, used = 0;
    for (uint32_t p = 0; p < np; p++) {
        const struct cmap_part *pt = &cl->parts[p];
        struct msg_route_part *rp = &r->parts[p];
        rp->epoch = pt->epoch;
        rp->term = pt->term;
        rp->primary =
            pt->primary == CMAP_NONE ? UINT32_MAX : node_index(r, &n_nodes, m, pt->primary);
        /* Readers as router_read_node chooses: in-sync replicas on serving nodes. */
        rp->readers = r->idx + used;
        for (uint32_t j = 0; j < pt->n; j++)
            if (pt->state[j] == CMAP_REPLICA_ACTIVE && router_serves(m, pt->nodes[j]))
                rp->readers[rp->n_readers++] = node_index(r, &n_nodes, m, pt->nodes[j]);
        used += rp->n_readers;
        /* Writes: the primary and its in-sync group, or to a coordinator when it would refuse
         * them (it says why). */
        uint32_t ng = 0;
        char why[DV_ERRMSG_SIZE];
        rp->writable = pt->primary != CMAP_NONE && insync_group(m, cl, p, group, &ng, why) == DV_OK;
        rp->secondaries = r->idx + used;
        for (uint32_t j = 0; rp->writable && j < pt->n; j++)
            if (pt->state[j] == CMAP_REPLICA_ACTIVE && pt->nodes[j] != pt->primary)
                rp->secondaries[rp->n_secondaries++] = node_index(r, &n_nodes, m, pt->nodes[j]);
        used += rp->n_secondaries;
    }
    o->nodes = r->nodes;
    o->search_urls = r->search_urls;
    o->n_nodes = n_nodes;
    o->parts = r->parts;
    o->n_parts = np;
    craft_map_release(c->raft, ref);
    free(group);
    *mem = r;
    return DV_OK;
}
