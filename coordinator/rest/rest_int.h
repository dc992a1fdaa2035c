/* rest_int.h - what the REST API's files share: one request being answered, the native call,
 * JSON input checks and JSON output. */
#ifndef DV_REST_INT_H
#define DV_REST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "msg.h"
#include "rest.h"

/* The operations, for metrics and for the route table (rest.c). */
#define REST_OPS(X)                                                                                \
    X(ROOT, "root")                                                                                \
    X(COLL_LIST, "collections_list")                                                               \
    X(COLL_INFO, "collection_info")                                                                \
    X(COLL_EXISTS, "collection_exists")                                                            \
    X(COLL_CREATE, "collection_create")                                                            \
    X(COLL_DROP, "collection_delete")                                                              \
    X(COLL_UPDATE, "collection_update")                                                            \
    X(ALIASES, "aliases")                                                                          \
    X(TELEMETRY, "telemetry")                                                                      \
    X(COLL_CLUSTER, "collection_cluster")                                                          \
    X(CLUSTER, "cluster")                                                                          \
    X(INDEX_CREATE, "index_create")                                                                \
    X(INDEX_DROP, "index_delete")                                                                  \
    X(UPSERT, "upsert")                                                                            \
    X(GET, "get")                                                                                  \
    X(GET_ONE, "get_point")                                                                        \
    X(DELETE, "delete")                                                                            \
    X(SET_PAYLOAD, "set_payload")                                                                  \
    X(OVERWRITE_PAYLOAD, "overwrite_payload")                                                      \
    X(DELETE_PAYLOAD, "delete_payload")                                                            \
    X(CLEAR_PAYLOAD, "clear_payload")                                                              \
    X(UPDATE_VECTORS, "update_vectors")                                                            \
    X(DELETE_VECTORS, "delete_vectors")                                                            \
    X(UPDATE_BATCH, "update_batch")                                                                \
    X(SEARCH, "search")                                                                            \
    X(SEARCH_BATCH, "search_batch")                                                                \
    X(QUERY, "query")                                                                              \
    X(QUERY_BATCH, "query_batch")                                                                  \
    X(SEARCH_GROUPS, "search_groups")                                                              \
    X(QUERY_GROUPS, "query_groups")                                                                \
    X(RECOMMEND_GROUPS, "recommend_groups")                                                        \
    X(MATRIX_PAIRS, "matrix_pairs")                                                                \
    X(MATRIX_OFFSETS, "matrix_offsets")                                                            \
    X(RECOMMEND, "recommend")                                                                      \
    X(RECOMMEND_BATCH, "recommend_batch")                                                          \
    X(DISCOVER, "discover")                                                                        \
    X(DISCOVER_BATCH, "discover_batch")                                                            \
    X(SCROLL, "scroll")                                                                            \
    X(COUNT, "count")                                                                              \
    X(FACET, "facet")                                                                              \
    X(UNKNOWN, "unknown")

enum rest_op {
#define REST_OP_ENUM(id, name) REST_OP_##id,
    REST_OPS(REST_OP_ENUM)
#undef REST_OP_ENUM
        REST_OP_N
};

/* Status classes counted per operation. */
enum { REST_2XX, REST_4XX, REST_5XX, REST_CLASSES };

/* A request waiting for a worker. */
struct rest_item {
    struct httpd_req *hr;
    uint64_t t0_ns;
    bool big;      /* a body over REST_BIG_BODY: only REST_BIG_RUNNING of those run at once */
    bool requeued; /* a fast search that gave up (rx.requeued) */
    struct rest_item *next;
};

/* Bodies above this size are parsed at most REST_BIG_RUNNING at a time (a parsed JSON body
 * takes several times its size in memory). */
#define REST_BIG_BODY    (1u << 20)
#define REST_BIG_RUNNING 2

struct rest {
    struct rest_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rest_item *head, *tail;
    uint32_t queued, big_running, max_queue;
    bool stopping;
    pthread_t *threads;
    uint32_t n_threads;
    atomic_uint_least64_t op_seq;  /* operation_id of writes */
    atomic_uint_least64_t req_seq; /* req_id of native requests */
    struct metrics_counter *req[REST_OP_N][REST_CLASSES];
    struct metrics_histogram *lat[REST_OP_N];
    struct metrics_counter *fast_answered, *fast_requeued; /* fast searches, by outcome */
};

#define REST_MAX_SEGS 8
#define REST_ERR_MAX  1024

struct rx_search;

/* One request being answered by a worker (or a fast search on the nng thread). */
struct rx {
    struct rest *r;
    struct httpd_req *hr;
    const char *method;
    char *path;               /* decoded copy; seg[] point into it */
    char *seg[REST_MAX_SEGS]; /* path segments, percent-decoded */
    int nseg;
    char *query; /* the query string, a copy (rx_param decodes) */
    const char *body;
    size_t body_len;
    json_t *json;             /* the parsed body (an object), or NULL */
    struct buf res;           /* the JSON of "result" */
    int op;                   /* enum rest_op */
    char err[REST_ERR_MAX];   /* the message of an error answer */
    uint32_t timeout_ms;      /* ?timeout= (seconds) for searches; 0: the coordinator's */
    uint32_t consistency;     /* ?consistency= of reads (struct msg.read_consistency); 0: none */
    uint64_t t0_ns;           /* arrival */
    bool fast;                /* on the nng thread: a search may start (REST_STARTED) or give up
                                 (REST_SLOW), nothing may block */
    bool requeued;            /* a worker's second run of a fast search that gave up */
    struct rx_search *search; /* a started search's state (rest_points.c) */
};

/* Statuses of a fast request that are not HTTP's: the search is started (its `done` answers),
 * or the request needs a worker. */
#define REST_STARTED 1
#define REST_SLOW    2

/* Bodies up to this size may be parsed on the nng thread (a fast search). */
#define REST_FAST_BODY (64u << 10)

/* ---- rest.c ------------------------------------------------------------------------------ */

/* Sets an error answer: status and "fmt..." as the message. Returns status. */
int rx_fail(struct rx *x, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The value of query parameter `key` (decoded, in `out` of `cap` bytes); false if absent. */
bool rx_param(const struct rx *x, const char *key, char *out, size_t cap);

/*
 * Runs one native request through the coordinator's handler. Returns 200 with *rep decoded
 * and err.code DV_OK, or an error status (rx_fail: 404, 409, 400, 503, 507, 500 by the
 * native code) with *rep freed. msg_reply_free() in every case is safe.
 */
int rx_call(struct rx *x, struct msg *req, struct msg_reply *rep);

/* The collection's dimension and metric from the local map (false: not known there). */
bool rx_meta(struct rx *x, const char *coll, uint32_t *dim, uint32_t *metric);
/* 500 "out of memory". */
int rx_oom(struct rx *x);
/* The len bytes at off in b as a msg_bytes (p NULL when len is 0). */
struct msg_bytes rx_bytes(const struct buf *b, size_t off, size_t len);
/* The whole config, named vectors included (rest_meta_fn). */
bool rx_cfg(struct rx *x, const char *coll, struct msg_coll_cfg *cfg);

/* The coordinator's status map (native `cluster`) as JSON, an object the caller json_decref's
 * (rest_coll.c); an error status through rx_fail otherwise. */
int rx_cluster_status(struct rx *x, json_t **out);

/* The next operation_id (UpdateResult). */
uint64_t rx_op_id(struct rx *x);

/* A fast request's end (any thread): rx_finish answers with status st (the result in x->res
 * or the error in x->err) and frees x; rx_requeue frees x and queues its HTTP request for a
 * worker, which runs it from the start. */
void rx_finish(struct rx *x, int st);
void rx_requeue(struct rx *x);

/* ---- rest_json.c: input ------------------------------------------------------------------ */

/* Parses the body into x->json, which must be an object; an empty body is {} when
 * `empty_ok`. 400 otherwise. */
int rj_body(struct rx *x, bool empty_ok);

/* Type errors: 400 "Format error in JSON body: <field>: <what>". */
int rj_type_error(struct rx *x, const char *field, const char *what);

/* Range errors: 422 "Validation error in JSON body: [<field>: <what>]". */
int rj_invalid(struct rx *x, const char *field, const char *what);

/* The member `key` of object o, NULL when absent or null. */
json_t *rj_get(json_t *o, const char *key);

/* A point id: a non-negative integer or a UUID string. */
int rj_id(struct rx *x, json_t *v, const char *field, struct pid *out);

/* An array of ids into a new array (*out, free()), at most `max` of them. */
int rj_ids(struct rx *x, json_t *v, const char *field, uint32_t max, struct pid **out, uint32_t *n);

/* A dense vector: an array of numbers (or {"": [...]}, a named form with the default name).
 * Writes the floats to out (may be NULL to only count) and the length to *dim; every value
 * must be finite as a float32. */
int rj_vector(struct rx *x, json_t *v, const char *field, float *out, uint32_t *dim);

/* A filter (object) as msgpack appended to `mp`; absent/null gives nil (out->p NULL). The
 * bytes live in mp: call rj_fix() after the last append to point `out` at them. */
int rj_filter(struct rx *x, json_t *v, const char *field, struct buf *mp, size_t *off, size_t *len);

/* An optional unsigned integer member in [min, max] (422 outside), `def` when absent. */
int rj_u64(struct rx *x, json_t *o, const char *key, uint64_t def, uint64_t min, uint64_t max,
           uint64_t *out);

/* An optional bool member, `def` when absent. */
int rj_bool(struct rx *x, json_t *o, const char *key, bool def, bool *out);

/* with_payload: true/false, [keys], {"include": [keys]}, {"exclude": [keys]}. */
struct psel {
    bool on;
    int mode;     /* 0 all, 1 include, 2 exclude */
    json_t *keys; /* borrowed from the body: an array of strings */
};
int rj_psel(struct rx *x, json_t *o, const char *key, bool def, struct psel *out);

/* with_vector (alias with_vectors): true/false or a list of names (true when not empty). */
int rj_with_vector(struct rx *x, json_t *o, bool def, bool *out);
/* with_vector's list of vector names (borrowed from o), NULL when it is not a list. */
json_t *rj_vector_names(json_t *o);

/* Refuses members dvec does not serve (shard_key, named vectors' `using`, ...) when set. */
int rj_unsupported(struct rx *x, json_t *o, const char *const *keys);

/* ---- rest_json.c: output ----------------------------------------------------------------- */

int jw_raw(struct buf *b, const char *s);
int jw_str(struct buf *b, const char *s, size_t n);
int jw_f32(struct buf *b, float v);
int jw_pid(struct buf *b, const struct pid *id);
int jw_vec(struct buf *b, const float *v, uint32_t dim);

/* A payload (msgpack map, or p == NULL for none: {}) as JSON, filtered by `sel`. */
int jw_payload(struct buf *b, const struct msg_bytes *p, const struct psel *sel);

/* How named vectors are shown: the collection's config (their kinds; NULL: guessed from the
 * values) and with_vector's list of names (NULL: every vector). */
struct rv_out {
    const struct msg_coll_cfg *cfg;
    json_t *names;
};

/* A hit as a ScoredPoint (scored) or a Record; vo may be NULL. */
int jw_point(struct buf *b, const struct msg_hit *h, bool scored, const struct psel *sel,
             bool with_vector, const struct rv_out *vo);

/* {"operation_id":N,"status":"completed"} */
int jw_update(struct rx *x);

/* ---- handlers (rest_coll.c, rest_points.c) ------------------------------------------------ */

int rh_root(struct rx *x);
int rh_coll_list(struct rx *x);
int rh_coll_info(struct rx *x, const char *coll);
int rh_coll_exists(struct rx *x, const char *coll);
int rh_coll_create(struct rx *x, const char *coll);
int rh_coll_drop(struct rx *x, const char *coll);
int rh_coll_update(struct rx *x, const char *coll);
int rh_aliases(struct rx *x);
int rh_telemetry(struct rx *x);
int rh_coll_cluster(struct rx *x, const char *coll);
int rh_cluster(struct rx *x);
int rh_index(struct rx *x, const char *coll, const char *field);

int rh_upsert(struct rx *x, const char *coll);
int rh_get(struct rx *x, const char *coll);
int rh_get_one(struct rx *x, const char *coll, const char *id);
int rh_delete(struct rx *x, const char *coll);
int rh_update_vectors(struct rx *x, const char *coll);
int rh_delete_vectors(struct rx *x, const char *coll);
int rh_payload(struct rx *x, const char *coll, uint32_t op);
int rh_search(struct rx *x, const char *coll, bool batch);
int rh_query(struct rx *x, const char *coll, bool batch);
int rh_recommend(struct rx *x, const char *coll, bool batch, bool discover);
/* The body's shape: a QueryGroupsRequest, a SearchGroupsRequest, a RecommendGroupsRequest. */
enum { RG_QUERY, RG_SEARCH, RG_RECOMMEND };
int rh_groups(struct rx *x, const char *coll, int shape);
int rh_scroll(struct rx *x, const char *coll);
int rh_count(struct rx *x, const char *coll);
int rh_update_batch(struct rx *x, const char *coll); /* rest_batch.c */

/* The point writes on one JSON object `j` (a body, or an operation of a batch; borrowed): parsed
 * and checked, then sent when `apply` (with `apply` false nothing is sent; a collection that
 * does not exist may still be found). 200, or an error status through rx_fail. The result
 * (UpdateResult) is the caller's to write. payload's op as rh_payload's. */
int rp_upsert(struct rx *x, const char *coll, json_t *j, bool apply);
int rp_delete(struct rx *x, const char *coll, json_t *j, bool apply);
int rp_payload(struct rx *x, const char *coll, json_t *j, uint32_t op, bool apply);
int rp_update_vectors(struct rx *x, const char *coll, json_t *j, bool apply);
int rp_delete_vectors(struct rx *x, const char *coll, json_t *j, bool apply);

/* ---- rest_order.c ------------------------------------------------------------------------- */

/* POST .../facet, and POST .../points/scroll with order_by (rh_scroll hands it over, the body
 * parsed). */
int rh_facet(struct rx *x, const char *coll);
int rh_scroll_order(struct rx *x, const char *coll);

/*
 * An ordered scroll (native points_scroll_order): order_by is Qdrant's (a key or {key,
 * direction, start_from}; `field` names it in errors), filter a JSON filter or NULL. 200 with
 * *rep to free (msg_reply_free; hits and their values in rep->m.u.oscroll_rep) and *desc the
 * direction; else the error answer is set and *rep holds nothing.
 */
int ro_scroll(struct rx *x, const char *coll, json_t *order_by, const char *field, json_t *filter,
              uint32_t limit, bool with_vector, bool with_payload, bool *desc,
              struct msg_reply *rep);

/* An order value as JSON: an integer, or a float (a float index's). */
int jw_ordval(struct buf *b, const struct msg_ordval *v);

/* A random sample of `limit` points matching filter (JSON or NULL): native points_scroll_order
 * with a fresh seed (each call another sample). As ro_scroll otherwise. */
int ro_sample(struct rx *x, const char *coll, json_t *filter, uint32_t limit,
              struct msg_reply *rep);

/* rest_matrix.c: search/matrix/pairs and search/matrix/offsets. */
int rh_matrix(struct rx *x, const char *coll, bool offsets);

/* ---- rest_vec.c: named, sparse and multi vectors ---- */

/* Allocations that live as long as one request's parse (rv_free frees them all). */
struct rv_arena {
    void **b;
    size_t n, cap;
};
void *rv_alloc(struct rv_arena *a, size_t bytes);
void rv_free(struct rv_arena *a);

/* The named vector `name` (len bytes) of cfg, NULL if none. */
const struct msg_vspace *rv_space(const struct msg_coll_cfg *cfg, const char *name, size_t len);

/* A create's `vectors` (the named form, may be NULL) and `sparse_vectors` (may be NULL) into
 * cfg's named vectors (cfg's m, ef_construction and sq8 are the collection's defaults). */
int rv_parse_cfg(struct rx *x, json_t *vectors, json_t *sparse, struct msg_coll_cfg *cfg);

/* `"vectors":{...},"sparse_vectors":{...}` of a collection with named vectors. */
int rv_write_cfg(struct buf *b, const struct msg_coll_cfg *c);

/* One vector (dense array, sparse {indices, values}, multi array of arrays) of the named vector
 * sp (NULL: its kind from the JSON's shape); the name is left to the caller. */
int rv_vector(struct rx *x, const struct msg_vspace *sp, json_t *v, const char *field,
              struct msg_nvec *out, struct rv_arena *a);

/* A point's `vector` object {name: vector, ...} of a collection with named vectors. */
int rv_point(struct rx *x, const struct msg_coll_cfg *cfg, json_t *v, const char *field,
             struct msg_nvecs *out, struct rv_arena *a);

/* A batch's `vectors` {name: [vector or null per point]} into out[n]. */
int rv_batch(struct rx *x, const struct msg_coll_cfg *cfg, json_t *bv, uint32_t n,
             struct msg_nvecs *out, struct rv_arena *a);

/* A point's named vectors as a JSON object, those named in sel only (NULL: all). */
int rv_write_named(struct buf *b, const struct msg_nvecs *nv, const struct msg_coll_cfg *cfg,
                   json_t *sel);

/* ---- rest_search.c: query vectors, shared with rest_query.c ---- */

/* A query vector as parsed: dense (vec of dim floats), sparse (idx: dim terms), multi (rows
 * rows of dim / rows floats), of the named vector `using` ("" the unnamed one); a point's own
 * vector when the input was an id (exclude: that point is not a result). */
struct rs_qvec {
    char using[PROTO_MAX_VNAME + 1];
    float *vec; /* owned */
    uint32_t dim;
    uint32_t *idx; /* owned */
    uint32_t rows;
    bool exclude;
    struct pid excl;
};
void rs_qvec_free(struct rs_qvec *v);

/* A vector name (`using`, a NamedVector's `name`; absent or null: unchanged) into v->using. */
int rs_using(struct rx *x, json_t *name, const char *field, struct rs_qvec *v);

/* A vector input: dense, sparse {indices, values}, multivector, or a point id (a call: a
 * worker's; REST_SLOW on a fast request), checked against v->using's kind and size. */
int rs_vector_input(struct rx *x, const char *coll, json_t *v, const char *field,
                    struct rs_qvec *q);

/* A point's own vector v->using from a hit with vectors, as a query vector that excludes the
 * point: false when it has none; *st is 200 or an error (out of memory) when true. */
bool rs_qvec_of_hit(struct rx *x, const struct msg_hit *h, struct rs_qvec *v, int *st);

/* The body's requests: the body itself (n = 1), or a batch's `searches` list (at most 1024). */
int rs_batch(struct rx *x, bool batch, json_t **list, size_t *n);

/* A request's `params` (hnsw_ef, exact) and `score_threshold`. */
int rs_params(struct rx *x, json_t *o, uint32_t *ef, bool *has_thr, float *thr);

/* Whether lower scores are better for the vector `using` of coll (Euclid, Manhattan). */
bool rs_lower(struct rx *x, const char *coll, const char *using);

/* rest_query.c: query requests with prefetch, fusion, recommend, discover or context (any of
 * a batch), on a worker; REST_SLOW on a fast request. `open`/`close` surround each result
 * list, `batch` makes a list of them. */
bool rq_wants(json_t *o);

/* A query's result: points best first; lower: the scores are distances (lower is better). */
struct rq_hit {
    struct pid id;
    float score;
    bool has_ov; /* order_by: the point's order value, shown as order_value */
    struct msg_ordval ov;
};
struct rq_list {
    struct rq_hit *v;
    size_t n;
    bool lower;
};
void rq_list_free(struct rq_list *l);

/* ---- rest_query.c internals shared with rest_explore.c ---- */

#define RQ_MAX_PREFETCH 64 /* prefetches of one query */

/* One query tree's run. */
struct rq_ctx {
    struct rx *x;
    const char *coll;
    uint32_t timeout_ms;
};

int rq_by_id(const void *a, const void *b);    /* qsort of rq_hit by id */
int rq_by_score(const void *a, const void *b); /* best first, ties by id */
/* The similarity of a score of l: higher is better (a distance is negated). */
float rq_sim(const struct rq_list *l, float s);
/* The distinct points of the lists l[n], sorted by id, scores 0, into *out. */
int rq_union(struct rx *x, const struct rq_list *l, size_t n, struct rq_list *out);
/* Where id is in u (sorted by id), or -1. */
long rq_pos(const struct rq_list *u, const struct pid *id);
/* Searches with the vectors qv[nq] (k results each, ef) over the collection, under the JSON
 * filter f (may be NULL) and restricted to the points of `only` (may be NULL), in one native
 * request: query j's points into res[j] (without the point its vector excludes). */
int rq_search(struct rq_ctx *r, const struct rs_qvec *qv, size_t nq, uint32_t k, uint32_t ef,
              json_t *f, const struct rq_list *only, struct rq_list *res);

/* A random sample (ro_sample) as a list (scores 0), among `only` (may be NULL). */
int rq_sample(struct rq_ctx *r, json_t *f, const struct rq_list *only, uint32_t limit,
              struct rq_list *out);

/* rest_explore.c: a query's fusion of the prefetch lists l[n] ({"fusion": ...}, {"rrf":
 * ...}); recommend {positive, negative, strategy}; discover {target, context} (disc) or
 * context [pairs] - of the vector `using`, under filter f, among `only` (the prefetches'
 * points; NULL: the collection), `limit` points into *out. */
int rq_fusion(struct rq_ctx *r, json_t *q, const struct rq_list *l, size_t n, struct rq_list *out);
int rq_recommend(struct rq_ctx *r, json_t *k, const char *using, json_t *f, uint32_t limit,
                 uint32_t ef, const struct rq_list *only, struct rq_list *out);
int rq_discover(struct rq_ctx *r, json_t *k, bool disc, const char *using, json_t *f,
                uint32_t limit, uint32_t ef, const struct rq_list *only, struct rq_list *out);

/* A RecommendRequest {positive, negative, strategy, ...} or a DiscoverRequest {target,
 * context, ...} as the query request it is (a new reference; NULL: out of memory). */
json_t *rq_as_query(json_t *o, bool discover);

/* Evaluates the query request o (any tree) into *out: its `limit` best points. */
int rq_eval(struct rx *x, const char *coll, json_t *o, uint32_t limit, struct rq_list *out);

/* The points `ids` (n of them) with payload and/or vectors into *rep; *got holds them sorted
 * by id (rq_find looks one up; NULL: deleted since). msg_reply_free(rep) afterwards. */
int rq_fetch(struct rx *x, const char *coll, struct pid *ids, size_t n, bool with_vector,
             bool with_payload, struct msg_reply *rep, struct msg_hits *got);
const struct msg_hit *rq_find(const struct msg_hits *got, const struct pid *id);
int rq_run(struct rx *x, const char *coll, json_t *const *reqs, size_t n, bool batch,
           const char *open, const char *close);

/* rest_coll.c's parsers of hnsw_config and quantization_config (collection or vector). */
int rest_hnsw_params(struct rx *x, json_t *h, const char *field, struct msg_coll_cfg *cfg);
int rest_quant_params(struct rx *x, json_t *q, const char *field, struct msg_coll_cfg *cfg);

#endif
