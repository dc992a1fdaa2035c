/* coord_status.c - the coordinator's status map (native `cluster`): the raft group, nodes,
 * collections (with their payload index definitions and aliases), moves and rebalancing. */
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "err.h"
#include "mpk.h"

int coord_cluster_status(struct coord *c, struct buf *b)
{
    struct craft_status st;
    craft_status(c->raft, &st);
    static const char *const states[] = {"unavailable", "follower", "candidate", "leader"};
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    int rc;
#define K(s) mpw_str(b, s, strlen(s))
#define T(x)                                                                                       \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            goto out;                                                                              \
    } while (0)
    /* The group as this coordinator knows it: the bootstrap peers, then the ones added at
     * run time (the map's table; removed ones are left out). */
    const struct craft_peer *peers;
    size_t n_peers = craft_peers(c->raft, &peers);
    uint32_t n_group = 0;
    for (size_t j = 0; j < n_peers; j++) {
        const struct cmap_coord *mc = cmap_coord_find(m, peers[j].id);
        n_group += mc == NULL || mc->role != CMAP_COORD_REMOVED;
    }
    for (uint32_t i = 0; i < m->n_coords; i++) {
        bool boot = false;
        for (size_t j = 0; j < n_peers; j++)
            boot = boot || peers[j].id == m->coords[i].id;
        n_group += !boot && m->coords[i].role != CMAP_COORD_REMOVED;
    }
    /* Replicas the map places on each node (partition balance). */
    uint32_t *placed = calloc(m->n_nodes ? m->n_nodes : 1, sizeof *placed);
    if (placed == NULL) {
        craft_map_release(c->raft, ref);
        return DV_ENOMEM;
    }
    for (uint32_t i = 0; i < m->n_colls; i++)
        for (uint32_t p = 0; p < m->colls[i]->cfg.n_parts; p++)
            for (uint32_t j = 0; j < m->colls[i]->parts[p].n; j++)
                if (m->colls[i]->parts[p].nodes[j] < m->n_nodes)
                    placed[m->colls[i]->parts[p].nodes[j]]++;
    T(mpw_map(b, 7));
    T(K("coordinators"));
    T(mpw_array(b, n_group));
    for (size_t j = 0; j < n_peers; j++) {
        const struct cmap_coord *mc = cmap_coord_find(m, peers[j].id);
        if (mc && mc->role == CMAP_COORD_REMOVED)
            continue;
        T(mpw_map(b, 4));
        T(K("id"));
        T(mpw_u64(b, peers[j].id));
        T(K("raft_addr"));
        T(K(peers[j].raft_addr));
        T(K("url"));
        T(K(peers[j].client_url));
        T(K("leader"));
        T(mpw_bool(b, peers[j].id == st.leader_id));
    }
    for (uint32_t i = 0; i < m->n_coords; i++) {
        bool boot = false;
        for (size_t j = 0; j < n_peers; j++)
            boot = boot || peers[j].id == m->coords[i].id;
        if (boot || m->coords[i].role == CMAP_COORD_REMOVED)
            continue;
        T(mpw_map(b, 4));
        T(K("id"));
        T(mpw_u64(b, m->coords[i].id));
        T(K("raft_addr"));
        T(K(m->coords[i].raft_addr));
        T(K("url"));
        T(K(m->coords[i].client_url));
        T(K("leader"));
        T(mpw_bool(b, m->coords[i].id == st.leader_id));
    }
    T(K("coordinator"));
    T(mpw_map(b, 8));
    T(K("id"));
    T(mpw_u64(b, st.id));
    T(K("state"));
    T(K(st.state >= 0 && st.state <= 3 ? states[st.state] : "unknown"));
    T(K("leader_id"));
    T(mpw_u64(b, st.leader_id));
    T(K("leader_url"));
    T(K(st.leader_url));
    T(K("term"));
    T(mpw_u64(b, st.term));
    T(K("commit_index"));
    T(mpw_u64(b, st.commit_index));
    T(K("last_applied"));
    T(mpw_u64(b, st.last_applied));
    T(K("leader_ready"));
    T(mpw_bool(b, st.leader_ready));
    T(K("map_epoch"));
    T(mpw_u64(b, m->epoch));
    T(K("nodes"));
    T(mpw_array(b, m->n_nodes));
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const struct cmap_node *n = &m->nodes[i];
        T(mpw_map(b, 9));
        T(K("id"));
        T(K(n->id));
        T(K("partitions"));
        T(mpw_u64(b, placed[i]));
        T(K("url"));
        T(K(n->url));
        T(K("http_url"));
        T(K(n->http_url));
        T(K("search_url"));
        T(K(n->search_url));
        T(K("state"));
        T(K(cmap_node_state_name(n->state)));
        T(K("weight"));
        T(mpw_f64(b, n->weight));
        T(K("heartbeat_ms"));
        T(mpw_u64(b, n->heartbeat_ms));
        T(K("replicas"));
        T(mpw_u64(b, n->n_reports));
    }
    T(K("collections"));
    T(mpw_array(b, m->n_colls));
    for (uint32_t i = 0; i < m->n_colls; i++) {
        const struct cmap_coll *cl = m->colls[i];
        T(mpw_map(b, 8));
        T(K("name"));
        T(K(cl->name));
        T(K("dim"));
        T(mpw_u64(b, cl->cfg.dim));
        T(K("partitions"));
        T(mpw_u64(b, cl->cfg.n_parts));
        T(K("replication"));
        T(mpw_u64(b, cl->cfg.rf));
        T(K("write_consistency_factor"));
        T(mpw_u64(b, cl->cfg.write_consistency_factor));
        /* replicas per state over all partitions: {"active": n, "dead": n, ...} */
        uint32_t per[CMAP_REPLICA_STATE_COUNT] = {0};
        for (uint32_t p = 0; p < cl->cfg.n_parts; p++)
            for (uint32_t k = 0; k < cl->parts[p].n; k++)
                per[cl->parts[p].state[k]]++;
        T(K("replica_states"));
        T(mpw_map(b, CMAP_REPLICA_STATE_COUNT));
        for (int rs = 0; rs < CMAP_REPLICA_STATE_COUNT; rs++) {
            T(K(cmap_replica_state_name(rs)));
            T(mpw_u64(b, per[rs]));
        }
        /* payload index definitions recorded in the map: [[key, kind], ...] */
        T(K("payload_indexes"));
        T(mpw_array(b, cl->n_indexes));
        for (uint32_t k = 0; k < cl->n_indexes; k++) {
            T(mpw_array(b, 2));
            T(K(cl->indexes[k].key));
            T(mpw_u64(b, cl->indexes[k].kind));
        }
        uint32_t n_al = 0;
        for (uint32_t k = 0; k < m->n_aliases; k++)
            n_al += strcmp(m->aliases[k].coll, cl->name) == 0;
        T(K("aliases"));
        T(mpw_array(b, n_al));
        for (uint32_t k = 0; k < m->n_aliases; k++)
            if (strcmp(m->aliases[k].coll, cl->name) == 0)
                T(K(m->aliases[k].name));
    }
    uint32_t active = 0;
    for (uint32_t i = 0; i < m->n_moves; i++)
        active += m->moves[i].state < CMAP_MOVE_DONE;
    T(K("moves"));
    T(mpw_u64(b, active));
    T(K("rebalance"));
    T(mpw_map(b, 5));
    T(K("paused"));
    T(mpw_bool(b, m->settings.paused));
    T(K("auto_rebalance"));
    T(mpw_bool(b, m->settings.auto_rebalance));
    T(K("rate"));
    T(mpw_u64(b, m->settings.rate));
    T(K("moves_per_node"));
    T(mpw_u64(b, m->settings.moves_per_node));
    T(K("moves"));
    T(mover_status(c, m, b));
#undef T
#undef K
out:
    free(placed);
    craft_map_release(c->raft, ref);
    return rc;
}
