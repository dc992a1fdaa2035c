/* plan.h - the rebalance plan: the moves that take the actual placement to the ideal one. */
#ifndef DV_PLAN_H
#define DV_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "cmap.h"

/* One move of the plan: the replica of (coll, part) on node `from` goes to node `to`. */
struct plan_move {
    const struct cmap_coll *coll; /* points into the map the plan was made from */
    uint32_t part;
    uint32_t from, to; /* node numbers */
};

/* A partition the plan cannot fix now, and why (PLAN_* below). */
struct plan_stuck {
    const struct cmap_coll *coll;
    uint32_t part;
    uint32_t node; /* the node concerned, CMAP_NONE for PLAN_UNAVAILABLE */
    int why;
};

enum {
    PLAN_SOURCE_DOWN = 1, /* its replica should move but the node holding it is not serving */
    PLAN_UNAVAILABLE = 2, /* no replica left (its only node was removed) */
    PLAN_MOVING = 3,      /* a move of it is under way (left for the mover) */
    PLAN_TARGET_DOWN = 4, /* it should move to a node that is not serving */
};

struct plan {
    struct plan_move *moves;
    size_t n;
    struct plan_stuck *stuck;
    size_t n_stuck;
};

/*
 * Diffs the ideal placement (place_ideal_map) against the map's and returns the moves that
 * close the difference, one per replica that is on a node the ideal placement does not
 * name, paired in order with a node the ideal names and the partition does not hold yet. It
 * moves nothing else, so the number of moves is the number of misplaced replicas: minimal
 * for reaching the ideal placement. Nodes that are down (suspect, dead) keep their place in
 * the ideal placement: a node that is away for a while does not reshuffle the cluster
 * (remove it to plan without it); draining nodes have none. Partitions with a move under way
 * (any state but done and failed) are left alone; a move whose source or target is down is
 * reported as stuck instead. A partition with fewer replicas than the ideal (after a forced
 * removal) gets no move (re-replication is not a move).
 * DV_ENOMEM; free with plan_free.
 */
int plan_make(const struct cmap *m, struct plan *out);
void plan_free(struct plan *p);

/* "source_down", "unavailable", "moving", "target_down". */
const char *plan_why_name(int why);

/* True when a move of (coll, part) other than done or failed is in the map. */
int plan_part_moving(const struct cmap *m, const char *coll, uint32_t part);

#endif
