/* replica_cfg.h - a replica's index parameters and fsync policy from the protocol's config. */
#ifndef DV_REPLICA_CFG_H
#define DV_REPLICA_CFG_H

#include "hnsw.h"
#include "msg.h"
#include "part.h"
#include "wal.h"

/*
 * The one place the shard turns a collection config (struct msg_coll_cfg, as a replica create
 * or a pull carries it) into what a replica is made of: the index's hnsw_params (m,
 * ef_construction and ef_search left 0 take hnsw_params_default's) and the WAL's fsync
 * policy (the rest of the partition's options, part_opts, come from the node: node.c's
 * node_replica_opts_). partitions and replication do not concern a replica. DV_EINVAL, errmsg
 * saying which, for an unknown metric or fsync policy; the outputs are then unspecified.
 */
int replica_cfg_params(const struct msg_coll_cfg *c, struct hnsw_params *hp, enum wal_sync *sync,
                       char *errmsg);

/* The collection's named vectors (c->spaces, c->n_spaces of them) as the replica's spaces;
 * out has room for PART_MAX_SPACES. DV_EINVAL naming the bad one. */
int replica_cfg_spaces(const struct msg_coll_cfg *c, struct part_space *out, char *errmsg);

#endif
