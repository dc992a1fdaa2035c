/*
 * dvec.h - the C SDK of dvec (libdvec): talk to a dvec cluster through its coordinators.
 *
 *   dvec_client *c;
 *   dvec_error e;
 *   if (dvec_connect("tcp://127.0.0.1:7300,tcp://127.0.0.1:7301", NULL, &c, &e) != DVEC_OK)
 *       fprintf(stderr, "%s\n", e.message);
 *
 * Conventions
 * - Every call returns DVEC_OK (0) or a negative DVEC_E* code, and fills `err` (may be NULL)
 *   with the code and a message naming what went wrong ("collection docs: wrong dimension:
 *   the vectors have 3 dimensions, collection docs has 4").
 * - Memory the library returns is freed with the matching dvec_*_free function; memory the
 *   caller passes in is only read during the call.
 * - Payloads and filters are JSON text (a payload is an object; a filter is Qdrant's filter
 *   syntax, docs/filters.md).
 *
 * Threads: a dvec_client may be shared by any number of threads; every call is independent
 * and calls run concurrently (one NNG context per call). dvec_close must not run concurrently
 * with other calls on the same client. dvec_error structs are per call.
 *
 * Failover: the client keeps the list of coordinator URLs and sends each call to the current
 * one; when it does not answer (no connection, timeout) the call is sent to the next one, and
 * that one becomes current. Writes are idempotent by point id, so a write is resent safely;
 * creating a collection that exists fails with DVEC_EEXIST (after a failover that may be the
 * call's own first attempt: dvec_collection_info_get tells).
 */
#ifndef DVEC_H
#define DVEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DVEC_VERSION "0.1.0"

/* What libdvec.so exports: the library is built with -fvisibility=hidden, so only these. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define DVEC_API __attribute__((visibility("default")))
#else
#define DVEC_API
#endif

/* Error codes (the same values as the server's, docs/protocol.md). */
enum dvec_code {
    DVEC_OK = 0,
    DVEC_ENOMEM = -1,
    DVEC_EINVAL = -2,     /* a bad argument or request (also a filter the nodes cannot use) */
    DVEC_ENOTFOUND = -3,  /* no such collection */
    DVEC_EEXIST = -4,     /* a collection of that name exists */
    DVEC_EOS = -5,        /* an operating system error */
    DVEC_EDIM = -7,       /* wrong vector dimension */
    DVEC_ENAN = -8,       /* NaN or infinity in a vector */
    DVEC_EFULL = -9,      /* a node is out of capacity */
    DVEC_ERANGE = -10,    /* a value out of range (k 0, limit too large, ...) */
    DVEC_EPARSE = -13,    /* JSON that does not parse or is not of the kind needed */
    DVEC_ETOOBIG = -14,   /* a batch or message over the limit */
    DVEC_EBUSY = -15,     /* no leader right now (retry), or a conflicting operation */
    DVEC_ETIMEDOUT = -16, /* the deadline passed */
    DVEC_EUNSUPPORTED = -18,
    DVEC_EIO = -19,       /* no coordinator (or a node) could be reached */
    DVEC_ESHUTDOWN = -20, /* the server is shutting down */
    DVEC_EPROTO = -21,    /* a malformed message */
};

#define DVEC_ERRMSG_SIZE 512

typedef struct dvec_error {
    int code;
    char message[DVEC_ERRMSG_SIZE];
} dvec_error;

/* Short stable name of a code ("not_found", "dimension"); "unknown" otherwise. */
DVEC_API const char *dvec_code_name(int code);

typedef struct dvec_client dvec_client;

typedef struct dvec_options {
    uint32_t timeout_ms;         /* per attempt of a call (0: 10000) */
    uint32_t connect_timeout_ms; /* wait for a connection to a coordinator (0: 1000) */
    uint32_t max_attempts;       /* attempts per call (0: every coordinator twice; one that had
                                    no connection within connect_timeout_ms only once) */
    /* false (the default): one hop. Searches of the default read consistency go straight to
     * the nodes holding the collection's partitions (the client keeps the collection's routing
     * table from a coordinator, at most 1 s old) and the client merges the hits; upserts,
     * deletes and payload updates go straight to the partitions' primaries. Whatever cannot be
     * done that way (no route, a node that does not answer or has moved on, a write a
     * secondary missed) goes through a coordinator. true: every call goes through a
     * coordinator. */
    bool via_coordinator;
    /* One hop: how long a collection's routing table is used before it is asked for again
     * (0: 1000 ms). A replica that left the in-sync set may take this client's reads for up
     * to this long; a moved partition or a dropped collection is noticed at once (the node
     * refuses, the call goes through a coordinator and the table is fetched again). */
    uint32_t route_ttl_ms;
    /* One hop: false (the default): a search goes to a node's search port (plain TCP, one
     * thread wake-up per request) when the node has one, else to its native URL (NNG). A
     * search port that refuses or drops a connection is left for 1 s. true: native URLs only
     * (also the environment variable DVEC_NO_SEARCH_PORT). */
    bool no_search_port;
} dvec_options;

/*
 * Connects to the coordinators in `urls` (comma-separated NNG URLs, e.g.
 * "tcp://10.0.0.1:7300,tcp://10.0.0.2:7300"). The connection is made lazily and redialed
 * when lost: this succeeds without a coordinator up; calls then fail with DVEC_EIO until one
 * answers. opts may be NULL.
 */
DVEC_API int dvec_connect(const char *urls, const dvec_options *opts, dvec_client **out,
                          dvec_error *err);
DVEC_API void dvec_close(dvec_client *c);

/*
 * Qdrant's read consistency for this client's reads (dvec_get, dvec_count, dvec_scroll,
 * dvec_search*), from the next call on: 0 (the default) reads one in-sync replica of each
 * partition; N (1 to 8) reads N in-sync replicas and returns the points all of them hold
 * with the same vector and payload (a count all of them reach); DVEC_READ_MAJORITY reads
 * replication_factor / 2 + 1 of them, the same way; DVEC_READ_QUORUM reads every in-sync
 * replica and returns what a majority holds; DVEC_READ_ALL reads every replica. A read that
 * cannot have that many in-sync replicas of some partition fails with DVEC_EBUSY naming it.
 * Every acknowledged write is on every in-sync replica: a higher level only hides writes in
 * flight (docs/architecture.md, "Replication"). DVEC_EINVAL for another value.
 */
#define DVEC_READ_MAJORITY 256u
#define DVEC_READ_QUORUM   257u
#define DVEC_READ_ALL      258u
DVEC_API int dvec_set_read_consistency(dvec_client *c, uint32_t level, dvec_error *err);

/* ---- collections ---------------------------------------------------------------------- */

typedef enum dvec_metric {
    DVEC_EUCLID = 0,    /* L2; the score is the Euclidean distance, smaller is closer */
    DVEC_DOT = 1,       /* inner product; larger is closer */
    DVEC_COSINE = 2,    /* cosine similarity; larger is closer */
    DVEC_MANHATTAN = 3, /* L1; the score is the sum of absolute differences, smaller is closer */
} dvec_metric;

typedef enum dvec_fsync {
    DVEC_FSYNC_ALWAYS = 0, /* a write is acknowledged after fsync (default) */
    DVEC_FSYNC_BATCH = 1,  /* fsync at most every few ms; a crash may lose the last ones */
    DVEC_FSYNC_NEVER = 2,
} dvec_fsync;

typedef struct dvec_collection_config {
    uint32_t dim;             /* 1 .. 65536, required */
    dvec_metric metric;       /* default DVEC_EUCLID */
    uint32_t m;               /* HNSW links per node (0: 16) */
    uint32_t ef_construction; /* 0: 200 */
    uint32_t ef_search;       /* default ef of searches that give none (0: 64) */
    uint32_t partitions;      /* 0: one per alive node */
    uint32_t replication;     /* replicas per partition (0: 1) */
    dvec_fsync fsync;
    bool sq8; /* SQ8-quantized search walk with float re-ranking */
    /* Qdrant's write_consistency_factor (0: 1): in-sync replicas a partition needs for a write
     * to be accepted (below it writes fail with DVEC_EBUSY naming the missing replicas). Set
     * by create; not reported by dvec_collection_info_get (see dvec_cluster_status). */
    uint32_t write_consistency_factor;
} dvec_collection_config;

/* Defaults for a collection of `dim` dimensions. */
DVEC_API void dvec_collection_config_init(dvec_collection_config *cfg, uint32_t dim);

DVEC_API int dvec_collection_create(dvec_client *c, const char *name,
                                    const dvec_collection_config *cfg, dvec_error *err);
DVEC_API int dvec_collection_drop(dvec_client *c, const char *name, dvec_error *err);

/* names[n]: free with dvec_strings_free. */
DVEC_API int dvec_collection_list(dvec_client *c, char ***names, size_t *n, dvec_error *err);
DVEC_API void dvec_strings_free(char **names, size_t n);

typedef struct dvec_partition_info {
    uint32_t id;
    uint64_t epoch;
    uint64_t points;
    size_t n_nodes;
    char **nodes;          /* ids of the nodes holding a replica, the primary first */
    uint64_t term;         /* the primary term: +1 at every failover (0: an older coordinator) */
    unsigned char *states; /* states[n_nodes]: 0 active (in sync), 1 dead, 2 partial,
                              3 initializing, 4 recovery (copying), one per node above */
} dvec_partition_info;

/* "active", "dead", "partial", "initializing", "recovery" ("unknown" otherwise). */
DVEC_API const char *dvec_replica_state_name(int state);

typedef struct dvec_collection_info {
    dvec_collection_config config;
    uint64_t points;
    size_t n_partitions;
    dvec_partition_info *partitions;
} dvec_collection_info;

DVEC_API int dvec_collection_info_get(dvec_client *c, const char *name, dvec_collection_info *out,
                                      dvec_error *err);
DVEC_API void dvec_collection_info_free(dvec_collection_info *info);

/* kind: "keyword" or "integer"; creates an index on payload key `key` in every partition. */
DVEC_API int dvec_payload_index_create(dvec_client *c, const char *coll, const char *key,
                                       const char *kind, dvec_error *err);

/* ---- points ----------------------------------------------------------------------------- */

/* A point id: an unsigned 64-bit integer or a UUID. */
typedef struct dvec_id {
    bool is_uuid;
    uint64_t num;     /* when !is_uuid */
    uint8_t uuid[16]; /* when is_uuid, in the canonical byte order */
} dvec_id;

static inline dvec_id dvec_id_num(uint64_t n)
{
    dvec_id id = {false, n, {0}};
    return id;
}

/* Parses "123" or "550e8400-e29b-41d4-a716-446655440000"; DVEC_EINVAL otherwise. */
DVEC_API int dvec_id_parse(const char *text, dvec_id *out);
/* Writes the canonical text into buf (at least DVEC_ID_TEXT_MAX bytes). */
#define DVEC_ID_TEXT_MAX 40
DVEC_API void dvec_id_format(const dvec_id *id, char *buf);

typedef struct dvec_point {
    dvec_id id;
    const float *vector;      /* dim floats */
    const char *payload_json; /* a JSON object, or NULL */
} dvec_point;

/* Inserts or replaces n points of `dim` dimensions; acknowledged once every replica holds
 * them durably (as the collection's fsync says). At most 65536 points per call. */
DVEC_API int dvec_upsert(dvec_client *c, const char *coll, const dvec_point *points, size_t n,
                         uint32_t dim, dvec_error *err);

/* Deletes by id; *deleted (may be NULL) gets how many existed. */
DVEC_API int dvec_delete(dvec_client *c, const char *coll, const dvec_id *ids, size_t n,
                         uint64_t *deleted, dvec_error *err);

/* A point returned by get, scroll or search. */
typedef struct dvec_record {
    dvec_id id;
    float score;        /* search only */
    float *vector;      /* dim floats, or NULL when not asked for */
    uint32_t dim;       /* 0 when vector is NULL */
    char *payload_json; /* JSON object text, or NULL (not asked for, or none) */
} dvec_record;

typedef struct dvec_records {
    dvec_record *items;
    size_t n;
} dvec_records;

DVEC_API void dvec_records_free(dvec_records *r);

/* The points of `ids` that exist, in the order asked (missing ones left out). */
DVEC_API int dvec_get(dvec_client *c, const char *coll, const dvec_id *ids, size_t n,
                      bool with_vector, bool with_payload, dvec_records *out, dvec_error *err);

typedef enum dvec_payload_op {
    DVEC_PAYLOAD_SET = 1,         /* merge the keys of `json` (an object) into the payload */
    DVEC_PAYLOAD_OVERWRITE = 2,   /* replace the payload by `json` (an object) */
    DVEC_PAYLOAD_DELETE_KEYS = 3, /* remove the keys listed in `json` (an array of strings) */
    DVEC_PAYLOAD_CLEAR = 4,       /* remove every key (json NULL) */
} dvec_payload_op;

DVEC_API int dvec_set_payload(dvec_client *c, const char *coll, dvec_payload_op op,
                              const dvec_id *ids, size_t n, const char *json, dvec_error *err);

/* Points matching filter_json (NULL: all). Exact. */
DVEC_API int dvec_count(dvec_client *c, const char *coll, const char *filter_json, uint64_t *out,
                        dvec_error *err);

/*
 * Pages through the points in id order: from `offset` (NULL: the start), at most `limit`
 * (1 .. 10000) matching filter_json (NULL: all). *has_next says whether more follow and *next
 * is then the offset of the next page (stable across calls, also while points are written).
 */
typedef struct dvec_scroll_params {
    const dvec_id *offset;
    uint32_t limit;
    const char *filter_json;
    bool with_vector, with_payload;
} dvec_scroll_params;

DVEC_API int dvec_scroll(dvec_client *c, const char *coll, const dvec_scroll_params *p,
                         dvec_records *out, dvec_id *next, bool *has_next, dvec_error *err);

/* ---- search ----------------------------------------------------------------------------- */

typedef struct dvec_search_params {
    uint32_t k;               /* results wanted (1 .. 100000; 0: 10) */
    uint32_t ef;              /* HNSW ef (0: the collection's ef_search) */
    const char *filter_json;  /* NULL: no filter */
    bool with_payload;        /* fill payload_json */
    bool with_vector;         /* fill vector */
    bool has_score_threshold; /* drop results worse than score_threshold */
    float score_threshold;    /* smaller-is-closer metrics: score <= it; else >= it */
    bool allow_partial;       /* answer with what came back when partitions fail */
    uint32_t timeout_ms;      /* the server's deadline (0: its default) */
} dvec_search_params;

/* Defaults: k 10, nothing else. */
DVEC_API void dvec_search_params_init(dvec_search_params *p);

/* *partial (may be NULL) is set when allow_partial was given and some partitions did not
 * answer. Results closest first. */
DVEC_API int dvec_search(dvec_client *c, const char *coll, const float *query, uint32_t dim,
                         const dvec_search_params *p, dvec_records *out, bool *partial,
                         dvec_error *err);

/* nq queries (row-major, dim floats each) with the same parameters in one request; out[nq]
 * (each freed with dvec_records_free). */
DVEC_API int dvec_search_batch(dvec_client *c, const char *coll, const float *queries, size_t nq,
                               uint32_t dim, const dvec_search_params *p, dvec_records *out,
                               bool *partial, dvec_error *err);

/* ---- cluster ---------------------------------------------------------------------------- */

/*
 * The cluster's status as JSON text (free with free()): the coordinators (id, URLs, leader),
 * the answering one's Raft state (term, commit index), the map epoch, nodes (id, URLs, state,
 * weight, last heartbeat, replicas, partitions), collections (dim, partitions, replication)
 * and moves; the same document `dvecctl status --json` prints (docs/sdk-c.md).
 */
DVEC_API int dvec_cluster_status(dvec_client *c, char **json, dvec_error *err);

/*
 * An admin command, run by the leader coordinator: op is one of rebalance_plan,
 * rebalance_apply, rebalance_status, rebalance_pause, rebalance_resume, rebalance_set,
 * node_add, node_drain, node_undrain, node_remove, node_weight; args_json a JSON object of
 * its arguments or NULL (docs/operations.md lists them). *json gets the result as JSON text
 * (free with free()). Errors name what is wrong (DVEC_EBUSY: a node to remove still holds
 * replicas, and what to do).
 */
DVEC_API int dvec_admin(dvec_client *c, const char *op, const char *args_json, char **json,
                        dvec_error *err);

#ifdef __cplusplus
}
#endif

#endif
