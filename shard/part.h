/* part.h - a replica of a partition: durable points (id, vector, payload) with search. */
#ifndef DV_PART_H
#define DV_PART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "hnsw.h"
#include "io.h"
#include "pid.h"
#include "pindex.h"
#include "wal.h"

/*
 * A replica lives in one directory (docs/formats.md): meta.dvm, wal/ and one checkpoint
 * directory ckpt-<lsn>/ with the index graph, vectors, SQ8 codes, ids and payloads.
 *
 * Writes: one WAL record per batch, then the batch is applied to the index, then the call
 * returns (after the fsync the policy asks for). Reads see a write once it is applied; a write
 * whose call has not returned may be visible to reads but, with sync `always`, is only
 * guaranteed to survive a crash once the call returned DV_OK.
 *
 * Threading: every call may run concurrently with every other call. Writers are serialised
 * (one batch applies at a time, using `insert_threads` threads for the index); searches, gets,
 * scrolls and counts run in parallel with writes and with checkpoints, and never wait for a
 * checkpoint's disk writes. After an IO failure while writing (a failed fsync, a WAL record
 * that could not be undone) the replica refuses writes (DV_EIO) until it is reopened; reads
 * go on.
 */

struct part;

/*
 * Vector spaces. A replica holds one or more named vectors per point (Qdrant's named vectors):
 * each is a space with its own kind and index, fixed when the replica is created. A point
 * carries any subset of them, none included, except in a replica whose only space is the
 * unnamed default vector (the space named "", dense): there every point has it, as in Qdrant.
 */
#define PART_MAX_SPACES 16 /* named vectors per collection */
#define PART_NAME_MAX   64 /* bytes of a vector name, NUL included */
#define PART_NO_SLOT    UINT32_MAX

enum part_vkind {
    PART_VEC_DENSE = 0,  /* `dim` floats, searched with an HNSW index */
    PART_VEC_SPARSE = 1, /* (term, weight) pairs, searched exactly with an inverted index */
    PART_VEC_MULTI = 2,  /* rows of `dim` floats, scored exactly with MaxSim (multi.h) */
};

struct part_space {
    char name[PART_NAME_MAX]; /* "" : the default vector */
    enum part_vkind kind;
    struct hnsw_params index; /* DENSE: the index; MULTI: dim and metric of the rows */
    bool idf;                 /* SPARSE: queries weigh terms by inverse document frequency */
};

/* Checks a space definition (name, kind, parameters): DV_EINVAL naming what is wrong. */
int part_space_check(const struct part_space *d, char *errmsg);

/* Largest number of rows of a multivector and of terms of a sparse vector. */
#define PART_MAX_ROWS  4096
#define PART_MAX_TERMS 65536

struct part_opts {
    struct hnsw_params index; /* dim, metric, m, ef_construction, ef_search, sq8 (create only):
                                 the default dense vector when `spaces` is NULL */
    const struct part_space *spaces; /* create only: the replica's vectors (n_spaces of them,
                                        distinct names), or NULL: one dense space "" of
                                        `index` */
    uint32_t n_spaces;
    struct wal_opts wal;
    uint64_t ckpt_wal_bytes;   /* checkpoint when the WAL holds this much, default 256 MiB */
    uint32_t ckpt_interval_ms; /* and at least this often while writes happen, default 300 s */
    uint32_t ckpt_replay_ms;   /* and right after an open whose WAL replay took this long,
                                  default 1 s (0: never): a process killed again and again
                                  before the interval would otherwise replay an ever longer
                                  WAL at every start */
    uint32_t insert_threads;   /* index threads per upsert batch, default 2 */
    uint32_t exact_threshold;  /* filtered searches with at most this many matching points
                                  are always answered exactly, default 1000 (above it a cost
                                  model chooses between walk and exact pass) */
    uint32_t max_batch;        /* points per write call, default 65536 */
    uint32_t max_payload;      /* bytes per payload, default 1 MiB */
    bool background;           /* run the checkpoint/repair thread, default true */
};

void part_opts_default(struct part_opts *o);

/*
 * Creates a new replica in `dir` (which must not exist) with o->index parameters, and opens
 * it. DV_EEXIST when dir exists. `io` must outlive the replica.
 */
int part_create(struct io *io, const char *dir, const struct part_opts *o, struct part **out,
                char *errmsg);

/*
 * Opens an existing replica: loads the checkpoint (verifying every file's CRC32C; no index
 * construction), replays the WAL after its LSN, cuts a torn WAL tail. The index parameters come
 * from the replica's meta file (o->index is ignored); the rest of `o` applies. DV_ECORRUPT with
 * the file and offset in errmsg when something is damaged: see part_repair().
 */
int part_open(struct io *io, const char *dir, const struct part_opts *o, struct part **out,
              char *errmsg);

/* Stops the background thread, syncs the WAL and frees the replica (no checkpoint). */
void part_close(struct part *p);

/* Syncs every WAL record appended so far, whatever the replica's sync policy. */
int part_sync_wal(struct part *p, char *errmsg);

/* Stops the background thread (checkpoints, compaction) until part_rebase or part_close. */
void part_pause_bg(struct part *p);

/*
 * For a replica whose directory its owner renamed while it was open (after part_pause_bg, with
 * no writes, checkpoints or snapshots running): syncs its WAL, points it at `dir` and switches
 * its WAL to sync policy `sync`, then restarts the background thread. A replica copied from
 * another node becomes a served one this way without a checkpoint or a reopen.
 */
int part_rebase(struct part *p, const char *dir, enum wal_sync sync, char *errmsg);

/*
 * Offline repair of a replica that does not open because of a damaged WAL record: truncates
 * the WAL at the first bad record (records after it are lost) and says what it cut in errmsg.
 */
int part_repair(struct io *io, const char *dir, char *errmsg);

/*
 * Offline: removes the replica's records after `lsn` (dir not open), so that the next
 * part_open replays up to lsn. DV_ERANGE when its checkpoint already holds records after lsn
 * (nothing can be cut back: copy it afresh). *dropped (may be NULL) counts the records cut.
 */
int part_cut_after(struct io *io, const char *dir, uint64_t lsn, uint64_t *dropped, char *errmsg);

/* ---- writes ------------------------------------------------------------------------------ */

/* One named vector of a point. */
struct part_vec {
    uint32_t space;      /* index in the replica's spaces (part_space_find) */
    uint32_t n;          /* DENSE: dim; SPARSE: terms; MULTI: rows */
    const float *v;      /* DENSE: dim floats; SPARSE: n weights; MULTI: n * dim floats */
    const uint32_t *idx; /* SPARSE: n distinct terms, any order (sorted when stored) */
};

struct part_point {
    struct pid id;
    const float *vec;    /* the vector of space 0 (dense), `dim` floats, or NULL */
    uint32_t dim;        /* must equal the space's dimension (DV_EDIM otherwise) */
    const void *payload; /* a msgpack map, or NULL for none */
    size_t payload_len;
    const struct part_vec *vecs; /* named vectors (with or instead of `vec`), n_vecs of them */
    uint32_t n_vecs;
};

/*
 * Inserts or replaces (same id: vectors and payload replaced; vectors not given are gone) n
 * points. Checks everything first (dimension, NaN/inf, a space given twice, terms and rows
 * within limits, payload is a map within max_payload, batch size) and writes nothing when
 * something is wrong: DV_EDIM / DV_ENAN / DV_EINVAL / DV_ETOOBIG naming the point index and
 * the vector in errmsg (the spaces' rule above applies). *lsn (may be NULL) gets the
 * record's LSN. When an id appears twice in a batch, the last one wins.
 */
int part_upsert(struct part *p, const struct part_point *pts, size_t n, uint64_t *lsn,
                char *errmsg);

/* Deletes points by id; missing ids are ignored. *deleted (may be NULL) gets the count. */
int part_delete(struct part *p, const struct pid *ids, size_t n, uint64_t *lsn, size_t *deleted,
                char *errmsg);

/*
 * Replaces the given named vectors of existing points (Qdrant's update vectors), keeping the
 * others and the payload. pts[i].payload is ignored. DV_ENOTFOUND (naming the id) when a point
 * is missing; checks as part_upsert.
 */
int part_update_vectors(struct part *p, const struct part_point *pts, size_t n, uint64_t *lsn,
                        char *errmsg);

/* Removes the vectors of `spaces` (n_spaces indexes) from existing points (missing ids are
 * ignored, as by part_delete). A point may be left with no vector. */
int part_delete_vectors(struct part *p, const struct pid *ids, size_t n, const uint32_t *spaces,
                        uint32_t n_spaces, uint64_t *lsn, char *errmsg);

/* The replica's spaces (valid while it is open) and the index of the one named name[0..len),
 * or -1. */
const struct part_space *part_spaces(const struct part *p, uint32_t *n);
int part_space_find(const struct part *p, const char *name, size_t len);

enum part_payload_op {
    PART_PAYLOAD_SET = 1,       /* merge: the keys given replace or add top-level keys */
    PART_PAYLOAD_OVERWRITE = 2, /* the payload becomes exactly the one given */
    PART_PAYLOAD_DELETE = 3,    /* `data` is a msgpack array of top-level key strings */
    PART_PAYLOAD_CLEAR = 4,     /* no payload; data ignored */
    PART_PAYLOAD_SET_KEY = 5,   /* `data` is [key, map]: SET inside the object at key, a path
                                   of map keys "a.b.c" (objects on the way are created, a
                                   value that is no object is replaced by one) */
};

/* Changes the payload of existing points. DV_ENOTFOUND (naming the id) if one is missing. */
int part_set_payload(struct part *p, enum part_payload_op op, const struct pid *ids, size_t n,
                     const void *data, size_t len, uint64_t *lsn, char *errmsg);

/* Creates (or drops) the payload index on `key`; logged like a write. */
int part_create_index(struct part *p, const char *key, enum pindex_kind kind, uint64_t *lsn,
                      char *errmsg);
int part_drop_index(struct part *p, const char *key, uint64_t *lsn, char *errmsg);
/* The same with Qdrant's index parameters (pindex.h; prm->kind is the type). Creating an index
 * that exists with the same type is a no-op that keeps its parameters. */
int part_create_index_params(struct part *p, const char *key, const struct pindex_params *prm,
                             uint64_t *lsn, char *errmsg);

/*
 * Prepares a compiled filter for this replica's payload indexes (filter_bind: full-text
 * conditions learn the tokenizer of a text index on their key). Call once per filter before
 * any read uses it, from one thread; replicas of one collection have the same indexes, so a
 * filter bound to one serves its other partitions.
 */
int part_bind_filter(struct part *p, struct filter *f);

/* ---- reads ------------------------------------------------------------------------------- */

/* A named vector of a result, owned by it. */
struct part_hvec {
    uint32_t space;
    uint32_t n;    /* as part_vec */
    float *v;      /* normalised for cosine */
    uint32_t *idx; /* SPARSE: sorted terms */
};

struct part_hit {
    struct pid id;
    float score;            /* search: cosine/dot similarity, euclid distance, manhattan distance */
    float *vec;             /* with_vector, in a replica with only the unnamed vector: dim floats
                               (normalised for cosine), else NULL */
    struct part_hvec *vecs; /* with_vector, in a replica with named vectors: every vector the
                               point has (or those in the read's vector mask), in space order */
    uint32_t n_vecs;
    uint8_t *payload; /* with_payload: msgpack map, NULL when the point has none */
    size_t payload_len;
};

/* Results of a read: hits[n]; everything is owned by the result (part_result_free). */
struct part_result {
    struct part_hit *hits;
    size_t n;
};

void part_result_free(struct part_result *r);

/* Points by id, in request order; ids not found are left out. */
int part_get(struct part *p, const struct pid *ids, size_t n, bool with_vector, bool with_payload,
             struct part_result *out, char *errmsg);

/* Largest k, ef and scroll limit a read accepts (DV_ERANGE above). */
#define PART_MAX_K 100000 /* = PROTO_MAX_K, PROTO_MAX_EF (proto/proto_limits.h) */

struct part_query {
    const float *vec;            /* DENSE: dim floats; MULTI: rows * dim floats; SPARSE: weights */
    uint32_t k;                  /* >= 1 */
    uint32_t ef;                 /* 0: the index default */
    const struct filter *filter; /* NULL: none */
    bool with_payload, with_vector;
    enum hnsw_quant quant;
    uint32_t space;         /* the vector searched (index in the spaces), default 0 */
    uint32_t n;             /* SPARSE: terms; MULTI: rows (0 counts as 1 for DENSE) */
    const uint32_t *idx;    /* SPARSE: the query's terms */
    const uint64_t *idf_df; /* SPARSE with idf: per query term, how many points of the whole
                               collection hold it (part_sparse_stats summed over partitions),
                               with idf_docs the points holding the vector; NULL: this
                               replica's statistics */
    uint64_t idf_docs;
    uint32_t vec_mask; /* with_vector: bit i returns space i; 0: every space */
};

/* How a search was answered (for tests, metrics and EXPLAIN-like output). */
enum part_plan {
    PART_PLAN_WALK = 0,      /* graph walk, filter checked for every candidate */
    PART_PLAN_INDEXED = 1,   /* exact scan of the candidates of a payload index */
    PART_PLAN_SCAN = 2,      /* exact scan of every point (selective unindexed filter) */
    PART_PLAN_WALK_SCAN = 3, /* walk found fewer than k: completed by an exact scan */
};

/* The k nearest points that match the filter, best first. `plan` may be NULL. */
int part_search(struct part *p, const struct part_query *q, struct part_result *out,
                enum part_plan *plan, char *errmsg);

/*
 * For IDF across replicas: the number of points holding a vector of sparse space `space`
 * (*docs) and, per term idx[i], how many hold it (df[i]).
 */
int part_sparse_stats(struct part *p, uint32_t space, const uint32_t *idx, uint32_t n, uint64_t *df,
                      uint64_t *docs, char *errmsg);

/*
 * Exact scores of the points `ids` against query q (its space, vector, filter ignored):
 * hits in request order, missing ids and points without that vector left out.
 */
int part_score_ids(struct part *p, const struct part_query *q, const struct pid *ids, size_t n,
                   struct part_result *out, char *errmsg);

/* Exact number of points matching f (NULL: all). */
int part_count(struct part *p, const struct filter *f, uint64_t *n, char *errmsg);

/*
 * Points in id order (pid_cmp) starting at *from (NULL: the first), at most limit, matching f.
 * *next gets the id to continue from and *more whether there is one.
 */
int part_scroll(struct part *p, const struct pid *from, uint32_t limit, const struct filter *f,
                bool with_vector, bool with_payload, struct part_result *out, struct pid *next,
                bool *more, char *errmsg);

/*
 * Facets (Qdrant's facet API): the values of the keyword, integer (with lookup), bool or uuid
 * index on `key` with the number of points holding each, among the points matching f (NULL:
 * all); a point holding several values counts once for each. The `limit` values with the
 * highest counts (0: all), by count descending then value ascending (pindex_facet). DV_EINVAL
 * naming the key when it has no such index. `out` owns its strings (part_facets_free).
 */
enum part_fval_type {
    PART_FV_STR = 0,  /* keyword, uuid (its canonical text) */
    PART_FV_INT = 1,  /* integer */
    PART_FV_BOOL = 2, /* bool: i is 0 or 1 */
};

struct part_facet_hit {
    uint8_t type; /* enum part_fval_type */
    char *s;      /* PART_FV_STR: len bytes, NUL-terminated, owned by the result */
    uint32_t len;
    int64_t i;
    uint64_t count;
};

struct part_facets {
    struct part_facet_hit *hits;
    size_t n;
};

int part_facet(struct part *p, const char *key, const struct filter *f, size_t limit,
               struct part_facets *out, char *errmsg);
void part_facets_free(struct part_facets *r);

/*
 * order_by (Qdrant's scroll with order_by): the points matching f in the order of their values
 * at `key`, which needs an integer index with range, a float or a datetime index (DV_EINVAL
 * naming the key otherwise). As in Qdrant a point holding several values comes once per value
 * (pindex_order). Ascending, or descending when `desc`; points with equal values by id
 * ascending; from start_from on (values >= it ascending, <= it descending). At most `limit`
 * (1 to PART_MAX_K) entries: out->hits[i] with its value in (*vals)[i] (malloc'd, the caller
 * frees it; NULL when out->n is 0).
 */
enum part_start_type {
    PART_START_NONE = 0,
    PART_START_INT = 1,   /* i; a datetime index reads it as microseconds since the epoch */
    PART_START_FLOAT = 2, /* f; an integer index starts at its ceiling (floor descending) */
    PART_START_TIME = 3,  /* s[0..len): a datetime string (dtime.h), for a datetime index */
};

struct part_start {
    uint8_t type; /* enum part_start_type */
    int64_t i;
    double f;
    const char *s;
    size_t len;
};

struct part_ordval {
    bool is_float; /* a float index: f; integer, datetime (microseconds): i */
    int64_t i;
    double f;
};

struct part_order_req {
    const char *key;
    bool desc;
    struct part_start start;
    uint32_t limit;
    const struct filter *filter; /* NULL: none */
    bool with_vector, with_payload;
};

int part_scroll_ordered(struct part *p, const struct part_order_req *q, struct part_result *out,
                        struct part_ordval **vals, char *errmsg);

/*
 * A random sample (Qdrant's sample: random): the `limit` visible points matching f (NULL: any)
 * whose keys are smallest, a point's key being a hash of `seed` and its id ((*vals)[i].i, in
 * [0, 2^63), ascending; out and *vals as part_scroll_ordered's). Keys do not depend on where a
 * point is stored, so the smallest keys over several partitions' samples are a uniform sample
 * of their union (bottom-k sampling). O(matching points).
 */
int part_sample(struct part *p, uint64_t seed, uint32_t limit, const struct filter *f,
                bool with_vector, bool with_payload, struct part_result *out,
                struct part_ordval **vals, char *errmsg);

/*
 * A content digest of the replica, independent of the order points were written or stored in:
 * the sum (mod 2^64) over live points of a hash of the id, the vector's bytes (as stored:
 * normalised for cosine) and the payload's bytes; *count gets the points and *lsn the LSN the
 * digest is exact for (writes wait while it is taken; reads go on). Two replicas of one
 * partition with the same LSN hold the same points iff their digests are equal (up to hash
 * collisions). O(points).
 */
int part_digest(struct part *p, uint64_t *digest, uint64_t *count, uint64_t *lsn, char *errmsg);

/* ---- maintenance ------------------------------------------------------------------------- */

/* Writes a checkpoint now (no-op when nothing changed) and drops the WAL it covers. */
int part_checkpoint(struct part *p, char *errmsg);

/* Relinks the graph around deleted points and frees their slots. */
int part_compact(struct part *p, char *errmsg);

struct part_info {
    struct hnsw_params index;
    uint64_t points;      /* live points */
    uint64_t deleted;     /* tombstones in the index not yet compacted */
    uint64_t applied_lsn; /* last write applied */
    uint64_t durable_lsn; /* last write known to be on disk */
    uint64_t ckpt_lsn;    /* LSN of the current checkpoint */
    uint64_t ckpt_age_ms; /* since the checkpoint was written (or the replica opened) */
    uint64_t wal_bytes;
    uint64_t ckpt_count;    /* checkpoints written since open */
    uint64_t ckpt_last_ms;  /* duration of the last checkpoint */
    uint64_t ckpt_stall_ms; /* how long the last checkpoint held writes back */
    uint64_t payload_bytes;
    uint64_t open_ms; /* time part_open took */
    size_t n_indexes;
    uint64_t wal_hold; /* part_hold_wal's LSN, 0: none */
    bool failed;       /* writes refused after an IO failure */
};

void part_get_info(struct part *p, struct part_info *info);

/* ---- snapshots and catch-up (moving a replica to another node) --------------------------- */

/* Receives snapshot stream bytes in order; returns 0 or a DV_* code that aborts. */
typedef int (*part_sink_fn)(void *arg, const void *buf, size_t n);
/* Fills up to n bytes; *got = 0 at the end of the stream. */
typedef int (*part_source_fn)(void *arg, void *buf, size_t n, size_t *got);

/*
 * Writes a consistent snapshot of the live replica to `sink` (an LZ4 frame with block and
 * content checksums; docs/formats.md) and returns the LSN it covers. Takes a checkpoint first
 * and streams its files, so writes pause only for the checkpoint's capture.
 */
int part_snapshot(struct part *p, part_sink_fn sink, void *arg, uint64_t *lsn, char *errmsg);

/*
 * Creates a replica in `dir` (must not exist) from a snapshot stream and opens it; its next
 * write must carry LSN snapshot LSN + 1 (see part_apply).
 */
int part_restore(struct io *io, const char *dir, part_source_fn src, void *arg,
                 const struct part_opts *o, struct part **out, char *errmsg);

/* Calls fn for every WAL record of p with lsn >= from (DV_ENOTFOUND if already dropped). */
int part_read_wal(struct part *p, uint64_t from, wal_replay_fn fn, void *arg, char *errmsg);

/*
 * Keeps the WAL records with lsn >= `lsn` through checkpoints (0: no hold): a peer copying
 * this replica reads them next with part_read_wal. A checkpoint at LSN C then drops only the
 * segments whose records all lie before min(C + 1, lsn). The hold lives in memory only (a
 * reopen forgets it) and takes effect at the next checkpoint. Any thread.
 */
void part_hold_wal(struct part *p, uint64_t lsn);

/*
 * Called for every record appended to the replica's WAL, in LSN order, under the replica's
 * write lock (local writes and part_apply alike), after the append and before the record is
 * applied and synced. `body` (the raw record body) is valid only during the call. It must not
 * call back into the replica. A primary copies here what its secondaries need
 * (shard/server/repl.c).
 */
typedef void (*part_tap_fn)(void *arg, uint64_t lsn, uint8_t type, const void *body, size_t len);

/* Sets (fn NULL: removes) the replica's tap; waits for a write in progress. Any thread. */
void part_set_tap(struct part *p, part_tap_fn fn, void *arg);

/*
 * Applies a WAL record taken from another replica of the same partition; lsn must be the
 * next one (applied LSN + 1), else DV_EINVAL. Logged and synced like a local write.
 */
int part_apply(struct part *p, uint64_t lsn, uint8_t type, const void *body, size_t len,
               char *errmsg);

#endif
