/* msg.h - the native protocol's messages (coordinator <-> node, client -> coordinator): structs,
 * encode and decode. */
#ifndef DV_MSG_H
#define DV_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto_limits.h"
#include "pid.h"

/*
 * Wire format: docs/protocol.md. Every message is one msgpack array
 *   request: [version, type, 0, req_id, body]
 *   reply:   [version, type, 1, req_id, error, body]
 * where error is nil or [code, message, epoch] and body is a positional array (nil when the
 * reply carries an error). Partition-addressed bodies start with collection, partition, epoch;
 * collection-level bodies (the client API) start with the collection's name.
 *
 * Decoding goes through our bounds-checked reader (common/mpk.h), never msgpack-c's unpacker:
 * msgpack-c trusts declared counts and reserves memory for them (LIBRARY-NOTES.md). Every
 * declared count is checked against the bytes left before anything is allocated.
 */

#define PROTO_VERSION 1

enum msg_type {
    MSG_ERROR = 0, /* a reply to a request whose type could not be read: error only */
    MSG_HELLO = 1,
    MSG_REPLICA_CREATE = 2,
    MSG_REPLICA_DROP = 3,
    MSG_REPLICA_LIST = 4,
    MSG_REPLICA_INFO = 5,
    MSG_UPSERT = 6,
    MSG_DELETE = 7,
    MSG_GET = 8,
    MSG_SET_PAYLOAD = 9,
    MSG_COUNT = 10,
    MSG_SCROLL = 11,
    MSG_SEARCH = 12,
    MSG_STATS = 13,
    MSG_SNAPSHOT_READ = 14,  /* a replica's snapshot, in chunks (rebalancing) */
    MSG_WAL_READ = 15,       /* a replica's WAL records from an LSN, in chunks (rebalancing) */
    MSG_PAYLOAD_INDEX = 16,  /* create or drop a payload index */
    MSG_REPLICA_PULL = 17,   /* coordinator -> target node: copy a replica from another node */
    MSG_REPLICA_FENCE = 18,  /* coordinator -> source node: pause / resume writes of a replica */
    MSG_REPLICATE = 19,      /* primary -> secondary: WAL records of a partition, in LSN order */
    MSG_REPLICA_DIGEST = 20, /* a replica's content digest (collections verify) */
    MSG_UPDATE_VECTORS = 21, /* replace named vectors of existing points (body: upsert's) */
    MSG_DELETE_VECTORS = 22, /* remove named vectors of points */
    MSG_SPARSE_STATS = 23,   /* term counts of a sparse vector on partitions (IDF) */
    MSG_FACET = 24,          /* a payload index's value counts on a partition (facet) */
    MSG_SCROLL_ORDER = 25,   /* a partition's points in a payload value's order (order_by) */
    /* 17..31: unassigned (unknown, like any type not listed here) */
    /* The client API: clients (SDK, REST gateway) -> coordinator, whole collections. */
    MSG_COLL_CREATE = 32,
    MSG_COLL_DROP = 33,
    MSG_COLL_LIST = 34,
    MSG_COLL_INFO = 35,
    MSG_P_UPSERT = 36,
    MSG_P_DELETE = 37,
    MSG_P_GET = 38,
    MSG_P_SET_PAYLOAD = 39,
    MSG_P_COUNT = 40,
    MSG_P_SCROLL = 41,
    MSG_P_SEARCH = 42,
    MSG_P_INDEX = 43,
    MSG_CLUSTER = 44,          /* the cluster's status, for admin tools */
    MSG_NODE_REPORT = 45,      /* node -> coordinator: registration and heartbeat */
    MSG_COORD_ADD = 46,        /* admin -> coordinator: add a coordinator to the raft group */
    MSG_COORD_REMOVE = 47,     /* admin -> coordinator: remove one */
    MSG_ADMIN = 48,            /* admin -> coordinator: rebalancing and node commands */
    MSG_ROUTE = 49,            /* client -> coordinator: a collection's routing table (one hop) */
    MSG_P_FACET = 50,          /* client: facet counts over a collection */
    MSG_P_SCROLL_ORDER = 51,   /* client: a collection's points in a payload value's order */
    MSG_P_UPDATE_VECTORS = 60, /* client: update vectors of a collection's points */
    MSG_P_DELETE_VECTORS = 61, /* client: delete vectors of a collection's points */
    MSG_TYPE_COUNT = 62,       /* one more than the highest type; not every type below it exists */
};

/* Name of a message type ("upsert", "points_search"), "unknown" otherwise. */
const char *msg_type_name(int type);

/* True for a type of the enum above (not for the gaps between them). */
bool msg_type_known(int type);

/* A string or byte range. In a decoded message it points into the input buffer. For optional
 * values (payloads, filters, set-payload data) p == NULL means nil. */
struct msg_str {
    const char *p;
    uint32_t len;
};

struct msg_bytes {
    const uint8_t *p;
    uint32_t len;
};

/* Where a partition-addressed request goes, the map epoch the sender routed with and the
 * partition's primary term as the sender knows it (0: not checked, e.g. a tool). A node
 * refuses a request whose term is older than the replica's (DV_ESTALE) and remembers a newer
 * one: a deposed primary's writes are fenced this way. */
struct msg_addr {
    struct msg_str coll;
    uint32_t part;
    uint64_t epoch;
    uint64_t term;
};

/* Another replica of a partition: its node's id and native URL. */
struct msg_peer {
    struct msg_str node_id, url;
};

/* A secondary a primary could not replicate a write to: the node, a DV_* code and why. */
struct msg_peer_fail {
    struct msg_str node_id;
    int code;
    struct msg_str text;
};

/* An error reply: code is a negative DV_* value; epoch is the node's newer map epoch when
 * code is DV_ESTALE ("stale map"), else 0. */
struct msg_error {
    int code;
    struct msg_str text;
    uint64_t epoch;
};

struct msg_replica {
    struct msg_str coll;
    uint32_t part;
    uint64_t applied_lsn;
};

struct msg_hello_rep {
    struct msg_str node_id, version;
    uint64_t capacity; /* points the node accepts in total, 0: unlimited */
    struct msg_replica *replicas;
    uint32_t n_replicas;
};

/* The collection config of the protocol: a collection's parameters, the one struct that
 * coll_create, coll_info's reply, replica create and replica pull carry. metric is enum
 * hnsw_metric, fsync enum wal_sync (shard/). partitions and replication matter to the
 * coordinator only (0: its default partition count; replication 0: 1); a replica's create and
 * pull do not carry them (they decode as 0). The name travels in msg.addr.coll. It is
 * converted in one place per user: coordinator/server/coord_coll.c (the map's cmap_coll_cfg),
 * shard/server/replica_cfg.c (a replica's hnsw_params and fsync policy), client/lib/coll.c
 * (the SDK's dvec_collection_config) and coordinator/rest/rest_coll.c (REST's JSON). */
/*
 * A named vector of a collection (Qdrant's named, sparse and multi vectors): kind is enum
 * part_vkind (0 dense, 1 sparse, 2 multi); dim, metric, m, ef_construction and sq8 as in the
 * config (sparse: unused); idf for sparse vectors.
 */
struct msg_vspace {
    char name[PROTO_MAX_VNAME + 1]; /* NUL-terminated */
    uint32_t kind, dim, metric, m, ef_construction;
    bool sq8, idf;
};

struct msg_coll_cfg {
    uint32_t dim, metric, m, ef_construction, ef_search, fsync, partitions, replication;
    bool sq8;
    /* Named vectors, or none (n_spaces 0): then the collection has one unnamed dense vector of
     * the parameters above. Carried as an optional last field by coll_create, coll_info's
     * reply, route's reply and replica create (docs/protocol.md, "Named vectors"). Held by
     * value, so a config is copied with its names. */
    uint32_t n_spaces;
    struct msg_vspace spaces[PROTO_MAX_VECTORS];
};

/*
 * One named vector of a point or a hit: DENSE: v holds nv == n floats; SPARSE: n terms in idx
 * and their nv == n weights in v; MULTI: n rows, nv == n * dim floats. The kind comes from the
 * collection's definition of `name`.
 */
struct msg_nvec {
    struct msg_str name;
    uint32_t n, nv;
    float *v;
    uint32_t *idx; /* SPARSE only, else NULL */
};

/* The named vectors of one point. */
struct msg_nvecs {
    struct msg_nvec *v;
    uint32_t n;
};

/* A replica's parameters (cfg without partitions and replication). incarnation: the map epoch
 * at which the collection was created, which tells a collection from an earlier one of the
 * same name; 0: not given (a request of a sender that predates it, or of a tool), and the node
 * keeps any replica it has. */
struct msg_create_req {
    struct msg_coll_cfg cfg;
    uint64_t incarnation;
};

struct msg_list_rep {
    struct msg_replica *replicas;
    uint32_t n;
};

struct msg_info_rep {
    uint32_t dim, metric, m, ef_construction, ef_search;
    bool sq8;
    uint64_t points, deleted, applied_lsn, durable_lsn, ckpt_lsn, wal_bytes, payload_bytes;
};

/* n points: ids[n], vecs[n * dim] (row-major), payloads[n] (msgpack maps or nil; NULL when
 * encoding means every payload is nil; never NULL after decoding). */
struct msg_upsert_req {
    struct pid *ids;
    float *vecs;
    struct msg_bytes *payloads;
    uint32_t n, dim;
    struct msg_nvecs *named; /* NULL, or n entries: each point's named vectors (then dim is 0
                                and vecs empty); an optional last field on the wire */
};

/* Delete vectors: the points' vectors named names[n_names] are removed. */
struct msg_delvec_req {
    struct pid *ids;
    uint32_t n;
    struct msg_str *names;
    uint32_t n_names;
};

/* Reply of upsert, delete, set payload, payload index and replicate: the WAL record's LSN (of
 * replicate: the replica's applied LSN), and for delete the number of points deleted (the
 * number of points written otherwise). failed[n_failed]: the secondaries a primary could not
 * replicate the write to (it is written on the primary and on the others); the coordinator
 * takes them out of the in-sync set before it acknowledges the write. */
struct msg_write_rep {
    uint64_t lsn, affected;
    struct msg_peer_fail *failed;
    uint32_t n_failed;
};

struct msg_ids_req {
    struct pid *ids;
    uint32_t n;
};

struct msg_get_req {
    struct pid *ids;
    uint32_t n;
    bool with_vector, with_payload;
};

/* op is enum part_payload_op; data is one msgpack value (a map, or an array of keys for
 * delete) or nil. */
struct msg_set_payload_req {
    uint32_t op;
    struct pid *ids;
    uint32_t n;
    struct msg_bytes data;
};

/* filter: one encoded msgpack value (docs/filters.md) or nil. */
struct msg_count_req {
    struct msg_bytes filter;
};

struct msg_count_rep {
    uint64_t count;
};

struct msg_scroll_req {
    bool has_from;
    struct pid from;
    uint32_t limit;
    struct msg_bytes filter;
    bool with_vector, with_payload;
};

/*
 * Facet (Qdrant's facet API): the counts of the values of the payload index on `key` among the
 * points matching `filter` (nil: all), the `limit` values with the highest counts (count
 * descending, then value ascending). A node's limit 0 means every value; a client's limit is
 * 1 to PROTO_MAX_K. `exact` is Qdrant's flag (counts are always exact).
 */
struct msg_facet_req {
    struct msg_str key;
    struct msg_bytes filter;
    uint32_t limit;
    bool exact;
};

/* A facet value: a string (keyword, uuid), an integer or a bool (i 0 or 1). */
enum msg_fval_type { MSG_FV_STR = 0, MSG_FV_INT = 1, MSG_FV_BOOL = 2 };

struct msg_facet_hit {
    uint8_t type; /* enum msg_fval_type */
    struct msg_str s;
    int64_t i;
    uint64_t count;
};

struct msg_facet_rep {
    struct msg_facet_hit *hits;
    uint32_t n;
};

/* Where an order_by scan starts: none, an integer, a float or a datetime string. */
enum msg_start_type {
    MSG_START_NONE = 0,
    MSG_START_INT = 1,
    MSG_START_FLOAT = 2,
    MSG_START_STR = 3
};

struct msg_start {
    uint8_t type; /* enum msg_start_type */
    int64_t i;
    double f;
    struct msg_str s;
};

/*
 * A scroll in the order of the values at `key` (Qdrant's order_by; the key needs a range
 * index), ascending or descending from `start`; a point holding several values comes once per
 * value, equal values by id. limit: 1 to PROTO_MAX_K.
 */
struct msg_oscroll_req {
    struct msg_str key;
    bool desc;
    struct msg_start start;
    uint32_t limit;
    struct msg_bytes filter;
    bool with_vector, with_payload;
    /* Not 0: a random sample instead (Qdrant's sample: random; key, desc and start unused):
     * the points whose keys, a hash of this seed and the id, are smallest, in key order, each
     * with its key as an integer value; merged like any order_by, the collection's `limit`
     * smallest keys are a uniform sample. An optional last field of the body. */
    uint64_t sample;
};

/* vec: dim floats or NULL; payload: a msgpack map or nil. */
struct msg_hit {
    struct pid id;
    float score;
    float *vec;
    uint32_t dim;
    struct msg_bytes payload;
    struct msg_nvecs named; /* a collection with named vectors: the point's, when asked for */
};

struct msg_hits {
    struct msg_hit *hits;
    uint32_t n;
};

struct msg_scroll_rep {
    struct msg_hits hits;
    bool more;
    struct pid next; /* meaningful when more */
};

/* An order_by value: a float index's double, or an integer (datetime: microseconds). */
struct msg_ordval {
    bool is_float;
    int64_t i;
    double f;
};

/* The hits in order, each with its value (vals[hits.n]). */
struct msg_oscroll_rep {
    struct msg_hits hits;
    struct msg_ordval *vals;
};

/*
 * A search. The vector searched is `using` (a named vector; empty: the unnamed one); vec holds
 * dim floats: a dense query, a sparse query's weights (its terms in idx[dim]) or a multivector
 * query's rows (rows of dim / rows floats). idf_df (NULL or dim counts) and idf_docs: a
 * sparse query's statistics of the whole collection (sparse_stats summed by the coordinator),
 * from which every partition weighs its terms alike. vec_names[n_vec_names]: with
 * with_vector, the named vectors to return (none: all). These travel as an optional 7th
 * element of the query, written only when one of them is set.
 */
struct msg_query {
    float *vec;
    uint32_t dim, k, ef;
    struct msg_bytes filter;
    bool with_payload, with_vector;
    struct msg_str using;
    uint32_t *idx;
    uint32_t rows;
    uint64_t *idf_df;
    uint64_t idf_docs;
    struct msg_str *vec_names;
    uint32_t n_vec_names;
};

struct msg_target {
    uint32_t part;
    uint64_t epoch;
};

/* Search of one collection (addr.coll; addr.part and addr.epoch unused) on several partitions
 * of a node, several queries each. */
struct msg_search_req {
    struct msg_target *parts;
    uint32_t n_parts;
    struct msg_query *queries;
    uint32_t n_queries;
};

/*
 * Statistics of the sparse vector `using` on several partitions of a node (addr.coll, as a
 * search names them): per partition, the points holding it and how many hold each of
 * terms[n_terms]. The coordinator sums them for IDF weights of the whole collection.
 */
struct msg_sstats_req {
    struct msg_target *parts;
    uint32_t n_parts;
    struct msg_str using;
    uint32_t *terms;
    uint32_t n_terms;
};

/* One partition's answer: err.code == 0, docs and df[n] (n == n_terms), or an error. */
struct msg_sstats_part {
    uint32_t part;
    struct msg_error err;
    uint64_t docs;
    uint64_t *df;
    uint32_t n;
};

struct msg_sstats_rep {
    struct msg_sstats_part *parts;
    uint32_t n_parts;
};

/* One partition's answer: err.code == 0 and results[n] (n == the request's n_queries, in
 * query order), or an error (e.g. DV_ESTALE with the newer epoch) and n == 0. */
struct msg_search_part {
    uint32_t part;
    struct msg_error err;
    struct msg_hits *results;
    uint32_t n;
};

struct msg_search_rep {
    struct msg_search_part *parts;
    uint32_t n_parts;
};

struct msg_stat {
    struct msg_str name;
    uint64_t value;
};

struct msg_stats_rep {
    struct msg_stat *stats;
    uint32_t n;
};

/* Reads max_bytes of snapshot session `session` (0: start a new one) from byte `offset`. */
struct msg_snapshot_req {
    uint64_t session, offset;
    uint32_t max_bytes;
};

/* One chunk: the session to continue with, the LSN the snapshot holds everything up to, the
 * snapshot's total size in bytes, the bytes at the request's offset (data.len may be 0, data.p
 * may then be NULL when encoding), and whether this chunk reaches the end. */
struct msg_snapshot_rep {
    uint64_t session, lsn, total;
    struct msg_bytes data;
    bool done;
};

/* Reads WAL records with lsn >= from, about max_bytes of record bodies. */
struct msg_wal_req {
    uint64_t from;
    uint32_t max_bytes;
};

/* One WAL record: type is the WAL's record type (shard/storage/wal.h), body its bytes. */
struct msg_wal_rec {
    uint64_t lsn;
    uint32_t type;
    struct msg_bytes body;
};

/* A primary's WAL records for a secondary (addr.term: the primary's term), in LSN order,
 * continuing the secondary's applied LSN; records it has already are skipped. term_start: the
 * LSN of the primary's first record in its term (a secondary that held records from there on
 * before it learned the term has diverged and must catch up). */
struct msg_replicate_req {
    struct msg_wal_rec *recs;
    uint32_t n;
    uint64_t term_start;
};

/* A replica's content digest (part_digest: order-independent, over ids, vectors and payloads),
 * its point count and the LSN both are exact for. */
struct msg_digest_rep {
    uint64_t digest, points, lsn;
};

/* One entry of a replica's primary-term history: its records from LSN `start` on (up to the
 * next entry's start) are those of the primary of `term`. */
struct msg_term {
    uint64_t term, start;
};

/* Records in LSN order (n may be 0), the replica's applied LSN when it read them, and its
 * primary-term history, oldest first (n_terms 0: a node that predates histories). */
struct msg_wal_rep {
    struct msg_wal_rec *recs;
    uint32_t n;
    uint64_t applied_lsn;
    struct msg_term *terms;
    uint32_t n_terms;
};

/* op: MSG_INDEX_CREATE or MSG_INDEX_DROP; kind is enum pindex_kind (shard/query/pindex.h,
 * 0 keyword, 1 integer; ignored by drop); key is the payload path indexed. */
enum msg_index_op {
    MSG_INDEX_CREATE = 1,
    MSG_INDEX_DROP = 2,
};

/* params: the index's field_schema (pindex.h's pindex_params_encode form: a kind name or an
 * object) or nil: the defaults of `kind`; an optional last field, sent only when set. */
struct msg_index_req {
    uint32_t op, kind;
    struct msg_str key;
    struct msg_bytes params;
};

/* ---- moving a replica (rebalancing) ---- */

/* What a replica pull request asks the target node to do. */
enum msg_pull_op {
    MSG_PULL_START = 1,  /* start copying (idempotent while a pull of that partition runs) */
    MSG_PULL_STATUS = 2, /* how far the pull is */
    MSG_PULL_FINISH = 3, /* take records up to until_lsn, stop, serve the replica */
    MSG_PULL_ABORT = 4,  /* stop and delete what was copied (or the finished replica) */
    MSG_PULL_RESUME = 5, /* START from the node's own replica of the partition when it holds one:
                          * cut back to the last record it shares with the source (term
                          * histories), then the source's WAL records; a snapshot when that is
                          * impossible */
};

/* Where a pull is, as the target node reports it. */
enum msg_pull_state {
    MSG_PULL_NONE = 0,        /* no pull of that partition (never started, or lost) */
    MSG_PULL_COPYING = 1,     /* reading the source's snapshot */
    MSG_PULL_CATCHING_UP = 2, /* snapshot in place, taking the source's WAL records */
    MSG_PULL_READY = 3,       /* finished: the replica is a normal one of the node */
    MSG_PULL_FAILED = 4,      /* stopped with `error`; abort (or start again) */
};

/* A pull of replica addr (coll, part; addr.epoch the partition's epoch) from the node at
 * `source`: START copies its snapshot, then its WAL records, at most `rate` bytes/s (0: no
 * limit), and creates the replica with `create`'s parameters and incarnation; FINISH waits
 * until the replica has applied until_lsn. STATUS and ABORT use op only. */
struct msg_pull_req {
    uint32_t op; /* enum msg_pull_op */
    struct msg_str source;
    uint64_t rate, until_lsn;
    struct msg_create_req create;
};

/* The pull's state, snapshot bytes copied of the total, LSNs applied here and last seen at
 * the source, and the cause when FAILED. */
struct msg_pull_rep {
    uint32_t state; /* enum msg_pull_state */
    uint64_t bytes_done, bytes_total, applied_lsn, source_lsn;
    struct msg_str error;
};

enum msg_fence_op {
    MSG_FENCE_ON = 1,  /* refuse writes (DV_EBUSY) after the ones in flight finish */
    MSG_FENCE_OFF = 2, /* accept writes again */
};

/* Fences a replica's writes (the reply is a write_rep: lsn = the replica's applied LSN once
 * no write is in flight, affected 0). The fence survives a restart of the node. */
struct msg_fence_req {
    uint32_t op; /* enum msg_fence_op */
};

/* An admin command for the coordinators: op names it ("rebalance_plan", "node_drain", ...,
 * docs/protocol.md), args is one msgpack map of its arguments or nil. The reply is a
 * cluster_rep whose status is the command's result (a msgpack map). */
struct msg_admin_req {
    struct msg_str op;
    struct msg_bytes args;
};

/* ---- client API (client -> coordinator) and node reports (node -> coordinator) ---- */

struct msg_coll_list_rep {
    struct msg_str *names;
    uint32_t n;
};

/* One partition of a collection: its placement epoch, the ids of the nodes holding a replica
 * (the primary first), its point count, its primary term and the state of each replica
 * (states[n_nodes], the cluster map's numbering: 0 active, 1 dead, 2 partial, 3 initializing,
 * 4 recovery; NULL when encoding: all active). A reply of a coordinator that predates terms
 * decodes as term 0 with every replica active. */
struct msg_coll_part {
    uint32_t part;
    uint64_t epoch;
    struct msg_str *nodes;
    uint32_t n_nodes;
    uint64_t points;
    uint64_t term;
    uint8_t *states;
};

struct msg_coll_info_rep {
    struct msg_coll_cfg cfg;
    uint64_t points;
    struct msg_coll_part *parts;
    uint32_t n_parts;
};

/* Search of a whole collection (addr.coll): queries as in msg_search_req; allow_partial asks
 * for what came back rather than an error when partitions fail; timeout_ms 0: the
 * coordinator's default deadline. */
struct msg_csearch_req {
    struct msg_query *queries;
    uint32_t n_queries;
    bool allow_partial;
    uint32_t timeout_ms;
};

/* results[n] (one hit list per query, in query order); partial: some partitions did not
 * answer and failed[n_failed] lists them (only with allow_partial). */
struct msg_csearch_rep {
    struct msg_hits *results;
    uint32_t n;
    bool partial;
    uint32_t *failed;
    uint32_t n_failed;
};

/*
 * One partition as a client routes to it (MSG_ROUTE): its placement epoch and primary term;
 * primary, the node (an index into msg_route_rep.nodes) that takes its writes, UINT32_MAX
 * when none; readers[n_readers], the nodes a read of the default consistency may go to (its
 * in-sync replicas on nodes that serve, as the coordinator's router chooses among them);
 * writable false when the coordinator would refuse a write now (no primary, fewer in-sync
 * replicas than write_consistency_factor): the client sends such writes to a coordinator,
 * which says why; secondaries[n_secondaries], the in-sync replicas a primary replicates a
 * write to (the request's struct msg.secondaries).
 */
struct msg_route_part {
    uint64_t epoch, term;
    uint32_t primary;
    uint32_t *readers;
    uint32_t n_readers;
    bool writable;
    uint32_t *secondaries;
    uint32_t n_secondaries;
};

/* A collection's routing table: the answering coordinator's map epoch, the collection's
 * config (with placement: cfg.partitions is the number of parts), the nodes the parts name
 * (id and native URL; search_urls[i], node i's search port, empty when it has none: a node
 * entry's third element, sent only when not empty) and parts[n_parts] in partition order.
 * coll: when the route was asked for by an alias, the collection it names, which requests to
 * the nodes must use (a 5th element, sent only when not empty). */
struct msg_route_rep {
    uint64_t map_epoch;
    struct msg_coll_cfg cfg;
    struct msg_peer *nodes;
    struct msg_str *search_urls; /* n_nodes of them */
    uint32_t n_nodes;
    struct msg_route_part *parts;
    uint32_t n_parts;
    struct msg_str coll;
};

/* status: one msgpack value (a map built by the coordinator, passed through) or nil. */
struct msg_cluster_rep {
    struct msg_bytes status;
};

/* A replica a node holds, as it reports it; incarnation as in msg_create_req (0: the replica
 * was created without one, or the report comes from a node that predates it). */
struct msg_replica_report {
    struct msg_str coll;
    uint32_t part;
    uint64_t applied_lsn, points;
    uint64_t incarnation;
};

/* A node's registration and heartbeat: its id, native and HTTP URLs (http_url may be empty),
 * capacity weight (the codec passes any double, NaN included), capacity in points (0:
 * unlimited) and its replicas. */
struct msg_node_report_req {
    struct msg_str node_id, url, http_url;
    double weight;
    uint64_t capacity;
    struct msg_replica_report *replicas;
    uint32_t n;
    uint64_t flags;            /* MSG_REPORT_*; sent only when not 0 or with search_url */
    struct msg_str search_url; /* the search port (tcp://host:port); sent only when set (an
                                * 8th field, after flags) */
};

/* A node removed from the map registers again (dvec-shard's rejoin_if_removed: in Kubernetes
 * the StatefulSet's replica count says which nodes exist). */
#define MSG_REPORT_REJOIN 1u

/* The epoch of the answering coordinator's map and the leader's URL (empty: not known). */
/* A coordinator of the raft group: its raft id, raft address (host:port) and client URL
 * (remove uses the id only). */
struct msg_coord_req {
    uint64_t id;
    struct msg_str raft_addr, client_url;
};

struct msg_node_report_rep {
    uint64_t map_epoch;
    struct msg_str leader_url;
};

/*
 * One message. `type` selects the union member: requests use u.<op>_req (hello, list and
 * stats requests have no body), replies with err.code == 0 use u.<op>_rep (create, drop have
 * an empty body). `addr` is used by partition-addressed requests and by search (collection);
 * collection-level requests use addr.coll only. The client API reuses the members of the node
 * messages of the same shape: points_upsert upsert_req, points_delete delete_req, points_get
 * get_req / get_rep, points_set_payload set_payload_req, points_count count_req / count_rep,
 * points_scroll scroll_req / scroll_rep, points_facet facet_req / facet_rep,
 * points_scroll_order oscroll_req / oscroll_rep, points_index index_req, and write_rep answers its
 * writes. Its own: coll_create coll_cfg, coll_list coll_list_rep, coll_info coll_info_rep,
 * points_search csearch_req / csearch_rep, route route_rep, cluster cluster_rep, node_report
 * node_report_req / node_report_rep (coll_list and cluster requests have no body, coll_drop and
 * coll_info nothing beyond the name; coll_create and coll_drop replies are empty).
 */
struct msg {
    int type; /* enum msg_type */
    bool reply;
    uint64_t req_id;
    struct msg_addr addr;
    /* Node write requests (upsert, delete, set payload, payload index) sent to a partition's
     * primary: the in-sync secondaries it replicates the write to before it answers. */
    struct msg_peer *secondaries;
    uint32_t n_secondaries;
    /* Client reads (get, count, scroll, search): Qdrant's read consistency, 0 (the default:
     * one in-sync replica per partition), 1 to PROTO_MAX_RF replicas, or MSG_READ_MAJORITY,
     * MSG_READ_QUORUM, MSG_READ_ALL (docs/protocol.md). Sent only when not 0. */
    uint32_t read_consistency;
    struct msg_error err; /* replies: code 0 for success */
    union {
        struct msg_hello_rep hello_rep;
        struct msg_create_req create_req;
        struct msg_list_rep list_rep;
        struct msg_info_rep info_rep;
        struct msg_upsert_req upsert_req; /* also update vectors */
        struct msg_delvec_req delvec_req;
        struct msg_write_rep write_rep; /* upsert, delete, set payload, payload index, points_* */
        struct msg_ids_req delete_req;
        struct msg_get_req get_req;
        struct msg_hits get_rep;
        struct msg_set_payload_req set_payload_req;
        struct msg_count_req count_req;
        struct msg_count_rep count_rep;
        struct msg_scroll_req scroll_req;
        struct msg_scroll_rep scroll_rep;
        struct msg_facet_req facet_req;
        struct msg_facet_rep facet_rep;
        struct msg_oscroll_req oscroll_req;
        struct msg_oscroll_rep oscroll_rep;
        struct msg_search_req search_req;
        struct msg_search_rep search_rep;
        struct msg_sstats_req sstats_req;
        struct msg_sstats_rep sstats_rep;
        struct msg_stats_rep stats_rep;
        struct msg_snapshot_req snapshot_req;
        struct msg_snapshot_rep snapshot_rep;
        struct msg_wal_req wal_req;
        struct msg_wal_rep wal_rep;
        struct msg_replicate_req replicate_req; /* reply: write_rep */
        struct msg_digest_rep digest_rep;
        struct msg_index_req index_req;
        struct msg_coll_cfg coll_cfg;
        struct msg_coll_list_rep coll_list_rep;
        struct msg_coll_info_rep coll_info_rep;
        struct msg_route_rep route_rep;
        struct msg_csearch_req csearch_req;
        struct msg_csearch_rep csearch_rep;
        struct msg_cluster_rep cluster_rep;
        struct msg_node_report_req node_report_req;
        struct msg_node_report_rep node_report_rep;
        struct msg_coord_req coord_req;
        struct msg_pull_req pull_req;
        struct msg_pull_rep pull_rep;
        struct msg_fence_req fence_req;
        struct msg_admin_req admin_req; /* reply: cluster_rep */
    } u;
    void *arena_; /* allocations made by msg_decode, freed by msg_free */
};

/* True when requests of this type carry a struct msg_addr. */
bool msg_type_addressed(int type);

/* True for the node writes a primary replicates (upsert, delete, set payload, payload index):
 * their requests carry the secondaries. */
bool msg_type_replicated(int type);

/* Read consistency levels beside a replica count (struct msg.read_consistency). */
#define MSG_READ_MAJORITY 256u /* rf / 2 + 1 replicas; points present on all of them */
#define MSG_READ_QUORUM                                                                            \
    257u                  /* every in-sync replica (at least rf / 2 + 1); points present on        \
                           * a majority (rf / 2 + 1) of the replicas */
#define MSG_READ_ALL 258u /* every replica (all in sync); points present on all of them */

/* ---- msg_search.c: what every sender of a search to nodes shares ------------------------- */

/* The qsort order of hits best first for a collection's metric (msg_coll_cfg.metric: ip and
 * cosine scores are higher for closer points, l2 and l1 distances lower), ties broken by id. */
int (*msg_hit_order(uint32_t metric))(const void *, const void *);

/* One node's share of a search: targets[first, first + n) of msg_search_group's output. */
struct msg_search_group {
    uint32_t node;
    uint32_t first, n;
};

/*
 * Groups partitions by the node each is read from, so that one request per node names all
 * of its partitions. via[np] holds each partition's node (UINT32_MAX: not asked) and is
 * consumed (every entry UINT32_MAX on return). Writes the partitions grouped by node into
 * targets[] (part set, epoch 0: the caller's to fill) and the groups into groups[] (room for
 * np each). Returns the number of groups, nodes in the order of their first partition.
 */
uint32_t msg_search_group(uint32_t *via, uint32_t np, struct msg_target *targets,
                          struct msg_search_group *groups);

/* The hits in the answered lists of reps[n] (NULL: a node that failed; a partition with an
 * error is skipped), for queries [0, nq). */
size_t msg_hits_total(const struct msg_search_rep *const *reps, size_t n, uint32_t nq);

/*
 * Per query, the hits of every answered list of reps[n] best first by `metric` (or metrics[q]
 * when metrics is not NULL; msg_hit_order), the queries[q].k best, into results[nq]; the hits are
 * copied into pool, which has room for msg_hits_total() of them. The vectors and payloads still
 * point into the replies.
 */
void msg_hits_merge(const struct msg_search_rep *const *reps, size_t n,
                    const struct msg_query *queries, uint32_t nq, uint32_t metric,
                    const uint32_t *metrics, struct msg_hits *results, struct msg_hit *pool);

/* The metric whose order a query's hits follow (msg_hit_order): the collection's, or for a
 * query using a named vector that vector's (a sparse vector's scores are dot products). */
uint32_t msg_query_metric(const struct msg_coll_cfg *cfg, const struct msg_query *q);

/* True for the client reads that may carry a read consistency (get, count, scroll, search). */
bool msg_type_consistent_read(int type);

/*
 * Checks query `i`'s k (1 to PROTO_MAX_K) and ef (0 to PROTO_MAX_EF): DV_ERANGE with errmsg
 * naming the field and the limit. Called once per request where a search enters (the
 * coordinator's native search, the shard's search) so that no partition is read first.
 */
int msg_query_check(const struct msg_query *q, uint32_t i, char *errmsg);

/* True when requests of this type name a collection first (addr.coll; addr.part and
 * addr.epoch are not sent): coll_create, coll_drop, coll_info and points_*. */
bool msg_type_collection(int type);

/*
 * Appends the encoding of `m` to `out`. The caller keeps ownership of `m`. DV_EINVAL for a
 * bad message (unknown type, an error reply with a code that is not a DV_* error, a filter,
 * set-payload data or cluster status that is not exactly one msgpack value), DV_ETOOBIG
 * when the encoding would exceed PROTO_MAX_MSG, DV_ENOMEM; on error `out` is left as it was.
 */
int msg_encode(const struct msg *m, struct buf *out, char *errmsg);

/*
 * Decodes one message of exactly `n` bytes into `m`. Strings, payloads and filters in `m`
 * point into `p` and stay valid as long as those bytes do (do not free or reuse the receive
 * buffer before you are done with `m`); vectors are copied into aligned memory owned by `m`.
 * Errors: DV_ETOOBIG when n > PROTO_MAX_MSG (checked first), DV_EPROTO for anything
 * malformed (wrong version, unknown type, truncation, a count the input cannot hold, a
 * vector bin of the wrong length, trailing bytes), DV_ENOMEM; errmsg names the field.
 * NaN and infinity are not rejected here. Call msg_free() after success; on failure `m` owns
 * nothing (msg_free is still safe).
 */
int msg_decode(const void *p, size_t n, struct msg *m, char *errmsg);

/* Frees what msg_decode allocated and zeroes `m`. */
void msg_free(struct msg *m);

/*
 * A message with the memory it points into: a reply decoded from a peer (rpc.h) or built by
 * the coordinator's typed entry point. By default `m` was decoded from the bytes at mem_
 * (msg_decode) and msg_reply_free frees both; an owner that built `m` from memory of its own
 * sets free_, which then frees everything instead. Zeroed, it is empty and freeing is a no-op.
 */
struct msg_reply {
    struct msg m;
    void *mem_;
    void (*free_)(void *mem);
};

/* Frees what the reply holds (safe on a zeroed or already freed reply). */
void msg_reply_free(struct msg_reply *rep);

/* Best effort, for the error reply to a message that did not decode: its type (MSG_ERROR when
 * unreadable or unknown) and request id (0 when unreadable). */
void msg_peek_header(const void *p, size_t n, int *type, uint64_t *req_id);

/* Fills `rep` as an error reply to (type, req_id), as msg_encode_error encodes it; rep->err.text
 * points at `text`, which must outlive rep. */
void msg_error_fill(struct msg *rep, int type, uint64_t req_id, int code, const char *text,
                    uint64_t epoch);

/* Replaces `out` with an error reply to (type, req_id): code, text, and epoch when code is
 * DV_ESTALE. A code the protocol does not know is sent as DV_EIO. DV_ENOMEM. */
int msg_encode_error(struct buf *out, int type, uint64_t req_id, int code, const char *text,
                     uint64_t epoch);

#endif
