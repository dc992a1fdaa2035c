/* place.h - placement: point -> partition (jump hash), partition -> nodes (weighted rendezvous
 * with bounded loads). */
#ifndef DV_PLACE_H
#define DV_PLACE_H

#include <stdbool.h>
#include <stdint.h>

#include "cmap.h"
#include "pid.h"

/*
 * Pure functions of their arguments: no state, no clock, no allocation except where an
 * output is allocated. A point's partition is part of dvec's on-disk contract and never
 * changes; the ideal placement is only ever computed by the Raft leader and carried in
 * commands, so a different libm elsewhere could change which node the leader prefers, never
 * what a map holds.
 */

/* The partition of a point: jump_consistent_hash(pid_hash(id), n_parts), for n_parts >= 1
 * (pid_hash: hash64_u64 of an integer id, hash64_bytes of a UUID's 16 bytes, seed 0). */
uint32_t place_partition_of(const struct pid *id, uint32_t n_parts);

/* Nodes the placement may choose: ALIVE or JOINING. */
bool place_eligible(const struct cmap_node *n);

/* The default partition count of a new collection: one per eligible node (as Qdrant's
 * shard_number), within CMAP_MIN_PARTS .. CMAP_MAX_PARTS. Fewer partitions mean fewer HNSW
 * walks per query (docs/benchmarks.md, issue 18); a collection meant to grow onto more nodes
 * asks for more. */
uint32_t place_default_parts(const struct cmap *map);

/* The rendezvous hash of (node, collection, partition): stable across versions. */
uint64_t place_hash(const char *node_id, const char *coll, uint32_t part);

/* The score of a node with `weight` for that hash: -weight / ln(u), u = the hash mapped to
 * (0, 1). The nodes with the highest scores hold the partition. */
double place_score(uint64_t hash, double weight);

/* The ideal nodes of one partition: up to CMAP_MAX_REPLICAS node numbers, best first. */
struct place_part {
    uint32_t n;
    uint32_t nodes[CMAP_MAX_REPLICAS];
};

/*
 * The ideal placement of a collection named `coll` with `n_parts` partitions and replication
 * factor `rf` (1 .. CMAP_MAX_REPLICAS) on the eligible nodes of `map`: weighted rendezvous
 * with bounded loads. Node i may hold ceil(P * r * w_i / W) replicas and be primary of
 * ceil(P * w_i / W) partitions (r = min(rf, eligible)); partitions are placed in order, each
 * on the first nodes of its rendezvous ranking (higher score first; ties, which need equal
 * 64-bit hashes, go to the smaller id) that still have room, a node whose room equals the
 * partitions left first. So a node joining or leaving moves about r * P / N replicas (tests:
 * within 1.2x of that for P = 1024), and even 6 partitions on 3 nodes are spread 2+2+2 where
 * plain rendezvous may leave a node empty. Depends on the set of nodes, their ids and weights,
 * never on their order or numbers. `parts` has n_parts entries. DV_EINVAL for bad sizes,
 * DV_ENOMEM.
 */
int place_ideal(const struct cmap *map, const char *coll, uint32_t n_parts, uint32_t rf,
                struct place_part *parts);

/* The ideal placement of every collection of a map (ideal_placement(map) of the design):
 * colls[i] is for map->colls[i] and holds coll->cfg.n_parts partitions. */
struct place_plan {
    uint32_t n_colls;
    struct place_part **colls;
};

int place_ideal_map(const struct cmap *map, struct place_plan *out);
void place_plan_free(struct place_plan *plan);

/*
 * Completes a collection-create command for the leader: `cmd` has type CMAP_CMD_COLL_CREATE,
 * a name and a configuration (cfg.n_parts 0 means place_default_parts). Fills cfg.n_parts,
 * the node table (the eligible nodes the placement uses) and the partitions (ideal nodes,
 * the best one primary), allocated for cmap_cmd_free. DV_EINVAL with errmsg when the map has
 * no eligible node or rf is out of range, DV_ENOMEM.
 */
int place_fill_create(const struct cmap *map, struct cmap_cmd *cmd, char *errmsg);

#endif
