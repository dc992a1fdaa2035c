/* proto_limits.h - the limits every entry point enforces (REST, native protocol, SDK, shard): one
 * constant per limit, so that the layers agree and a request over one fails at the door. */
#ifndef DV_PROTO_LIMITS_H
#define DV_PROTO_LIMITS_H

/* Bytes of one encoded native message, both directions (the RPC layer's receive limit). */
#define PROTO_MAX_MSG (64u * 1024 * 1024)

/* Floats per vector: a collection's dimension, a query's, an upserted point's. */
#define PROTO_MAX_DIM 65536

/* Hits one query may ask for (k; REST limit + offset), and points per scroll page at a
 * shard. The shard's partitions enforce it too (shard/part.h's PART_MAX_K is this value). */
#define PROTO_MAX_K 100000

/* A query's ef (REST params.hnsw_ef): the breadth of the HNSW walk. 0 means the collection's
 * ef_search. Checked with k before any partition is read (msg_query_check). */
#define PROTO_MAX_EF 100000

/* A collection's ef_construction and default ef_search (stored in the cluster map). */
#define PROTO_MAX_CFG_EF 65535

/* HNSW links per node, a collection's m (2 at least; shard/index/hnsw.h). */
#define PROTO_MAX_M 128

/* Bytes of a collection name ([A-Za-z0-9_-]). */
#define PROTO_MAX_NAME 128

/* Partitions of one collection, and its replication factor. */
#define PROTO_MAX_PARTS 1024
#define PROTO_MAX_RF    8

/* Replicas of one partition (more than the replication factor while one is being moved): the
 * secondaries a write names and the failures its reply lists. */
#define PROTO_MAX_REPLICAS 16

/* Nodes one collection's routing table (MSG_ROUTE) may name: every replica on a node of its
 * own. */
#define PROTO_MAX_ROUTE_NODES (PROTO_MAX_PARTS * PROTO_MAX_REPLICAS)

/* Entries of a replica's primary-term history sent with a WAL read (the newest ones). */
#define PROTO_MAX_TERMS 64

/* Points per write or get from the SDK; the coordinator's and the shard's max_batch setting
 * defaults to it. */
#define PROTO_MAX_BATCH 65536

/* Named vectors of a collection (= PART_MAX_SPACES, shard/part.h), and bytes of a name. */
#define PROTO_MAX_VECTORS 16
#define PROTO_MAX_VNAME   63

/* Floats of one named vector: a multivector's rows times its dimension (4096 rows of 1024). */
#define PROTO_MAX_VECTOR_FLOATS (4096u * 1024u)

#endif
