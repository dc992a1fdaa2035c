/* verify.h - `collections verify`: every replica of every partition compared by content. */
#ifndef DV_VERIFY_H
#define DV_VERIFY_H

#include "buf.h"

struct coord;

/*
 * Compares the replicas of every partition of collection `coll`: each node computes a content
 * digest of its replica (MSG_REPLICA_DIGEST: ids, vectors, payloads, order-independent) with
 * the LSN it is exact for. Replicas at the same LSN must have the same digest and point count.
 * When writes keep the LSNs of a partition's replicas apart, it asks again (up to 20 times,
 * 25 ms apart); if they never meet, the partition's primary is fenced for the moment it takes
 * to read every replica once more (writes wait, then go on). Appends a msgpack map to `out`:
 * {collection, partitions, identical, differ: [...], unreachable: [...], results: [{partition,
 * lsn, replicas: [{node, state, lsn, points, digest (16 hex digits), error}], identical,
 * fenced}]}.
 * DV_ENOTFOUND for an unknown collection, DV_ENOMEM.
 */
int verify_collection(struct coord *c, const char *coll, struct buf *out, char *errmsg);

#endif
