/* hnsw.h - the HNSW vector index of a replica: insert, search, delete, repair, replace, SQ8. */
#ifndef DV_HNSW_H
#define DV_HNSW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Threading: every call may run concurrently with every other call on the same index.
 * Searches and inserts run in parallel (per-node locks, atomic neighbour lists). Operations
 * that must see the index alone (capacity growth, SQ8 (re)training, replace, and the final
 * step of repair) take an internal exclusive lock for a short time and wait for running
 * searches and inserts to finish.
 *
 * Distances are "lower is better" everywhere inside the index: l2 is the squared euclidean
 * distance, ip and cosine are 1 - dot (cosine vectors are normalised on insert), l1 is the
 * manhattan distance.
 */

enum hnsw_metric {
    HNSW_L2 = 0,
    HNSW_IP = 1,
    HNSW_COSINE = 2,
    HNSW_L1 = 3,
};

#define HNSW_MAX_LEVEL 16
#define HNSW_M_MAX     128
#define HNSW_NO_SLOT   UINT32_MAX

struct hnsw_params {
    uint32_t dim;             /* 1 .. 65536 */
    enum hnsw_metric metric;  /* default HNSW_L2 */
    uint32_t m;               /* links per node on upper levels (2 .. 128); level 0 has 2*m */
    uint32_t ef_construction; /* candidate list size while inserting, default 200 */
    uint32_t ef_search;       /* default ef of searches that pass ef = 0, default 64 */
    uint32_t capacity;        /* initial slot capacity; grows by doubling, default 1024 */
    uint64_t seed;            /* level generator seed, default 42 */
    bool sq8;                 /* keep an SQ8 copy of the vectors for quantized search */
    uint32_t sq8_train_min;   /* train SQ8 ranges once this many points exist, default 1000 */
};

/* Fills `p` with the defaults above (dim 0: the caller must set it). */
void hnsw_params_default(struct hnsw_params *p);

struct hnsw_index;

/* Creates an empty index. Returns DV_OK, DV_EINVAL (bad parameter) or DV_ENOMEM. */
int hnsw_create(const struct hnsw_params *p, struct hnsw_index **out);

/* Frees the index. No call may be running on it. */
void hnsw_destroy(struct hnsw_index *ix);

/*
 * Inserts a vector (dim floats, copied; the caller keeps `vec`) and returns its slot.
 * Slots freed by hnsw_repair() are reused. Returns DV_OK, DV_ENAN (NaN or infinity in the
 * vector), DV_EFULL (2^32-1 slots) or DV_ENOMEM.
 */
int hnsw_insert(struct hnsw_index *ix, const float *vec, uint32_t *slot);

/*
 * Inserts n vectors (row-major, n * dim floats) with `threads` threads (0 or 1: the calling
 * thread only). slots[i] receives the slot of vector i. On error the vectors before the
 * failing one may be inserted; slots of vectors not inserted are HNSW_NO_SLOT.
 */
int hnsw_insert_batch(struct hnsw_index *ix, const float *vecs, size_t n, unsigned threads,
                      uint32_t *slots);

/*
 * Marks a slot deleted (tombstone): it still guides searches but is never returned.
 * Returns DV_OK, DV_ENOTFOUND (slot never used or already freed) or DV_EDELETED.
 */
int hnsw_delete(struct hnsw_index *ix, uint32_t slot);

/*
 * Repairs the graph around tombstones: every live node that links to a deleted node gets
 * new neighbours chosen (by the neighbour-selection heuristic) among its live neighbours and
 * the live nodes reachable through the deleted ones; then the deleted slots are unlinked and
 * freed for reuse. Searches and inserts go on during the relinking; the final unlink waits
 * for them briefly. `freed` (may be NULL) receives the number of slots freed.
 */
int hnsw_repair(struct hnsw_index *ix, size_t *freed);

/*
 * Replaces the vector of a live slot and relinks the node for its new position. Runs
 * exclusively (searches wait for about one insert's time). DV_ENOTFOUND / DV_EDELETED for
 * slots that are not live, DV_ENAN for non-finite values.
 */
int hnsw_replace(struct hnsw_index *ix, uint32_t slot, const float *vec);

/*
 * Copies the stored vector of a slot into out[dim] (for cosine: the normalised vector).
 * Works for live and deleted-but-not-freed slots; DV_ENOTFOUND otherwise.
 */
int hnsw_get_vector(struct hnsw_index *ix, uint32_t slot, float *out);

/* True when `slot` holds a live (inserted, not deleted) point. */
bool hnsw_is_live(struct hnsw_index *ix, uint32_t slot);

/* Filter: return true to accept `slot` as a result. Rejected nodes still guide the walk. */
typedef bool (*hnsw_filter_fn)(uint32_t slot, void *arg);

enum hnsw_quant {
    HNSW_QUANT_AUTO = 0, /* SQ8 walk when the index keeps a trained SQ8 copy */
    HNSW_QUANT_OFF = 1,  /* float32 walk */
    HNSW_QUANT_ON = 2,   /* SQ8 walk; DV_EUNSUPPORTED when there is no trained SQ8 copy */
};

struct hnsw_query {
    const float *vec; /* dim floats; not modified */
    uint32_t k;       /* results wanted, >= 1 */
    uint32_t ef;      /* candidate list size; 0 = params.ef_search; raised to k if smaller */
    hnsw_filter_fn filter;
    void *filter_arg;
    enum hnsw_quant quant;
    uint32_t rerank; /* SQ8: best candidates re-ranked on float32; 0 = min(ef, 2k) */
};

struct hnsw_hit {
    float dist;
    uint32_t slot;
};

struct hnsw_stats {
    uint64_t dist_calls; /* distance computations (quantized and float) */
    uint64_t hops;       /* nodes expanded */
};

/*
 * Finds up to q->k nearest live, accepted points; out[] (k entries) is filled in ascending
 * distance, *n gets the count. `stats` may be NULL. Allocates nothing in steady state
 * (per-thread scratch is pooled). Returns DV_OK, DV_EINVAL, DV_ENAN or DV_EUNSUPPORTED.
 */
int hnsw_search(struct hnsw_index *ix, const struct hnsw_query *q, struct hnsw_hit *out,
                uint32_t *n, struct hnsw_stats *stats);

/* (Re)computes the SQ8 ranges from the live vectors and encodes every slot. Exclusive. */
int hnsw_sq8_train(struct hnsw_index *ix);

/* True when SQ8 codes are trained and used by HNSW_QUANT_AUTO searches. */
bool hnsw_sq8_ready(struct hnsw_index *ix);

struct hnsw_info {
    uint32_t dim;
    enum hnsw_metric metric;
    uint32_t m;
    uint32_t ef_construction;
    uint32_t ef_search;
    uint64_t live;     /* live points */
    uint64_t deleted;  /* tombstones not yet freed */
    uint64_t slots;    /* slots ever used (high-water mark) */
    uint64_t capacity; /* slots allocated */
    int max_level;
    uint64_t mem_bytes; /* bytes allocated by the index (vectors, graph, codes, locks) */
    bool sq8_ready;
};

void hnsw_get_info(struct hnsw_index *ix, struct hnsw_info *info);

/* The large arrays of the index, each an anonymous mapping with huge pages requested. */
enum hnsw_region_kind {
    HNSW_REGION_VECTORS = 0, /* capacity * dim float32 */
    HNSW_REGION_LEVEL0 = 1,  /* capacity * (1 + 2m) uint32 level-0 links */
    HNSW_REGION_CODES = 2,   /* capacity * dim SQ8 codes; bytes 0 without params.sq8 */
    HNSW_REGIONS = 3,
};

struct hnsw_region {
    const void *addr; /* start of the mapping */
    size_t bytes;     /* mapped bytes (capacity rounded up, not all touched) */
};

/*
 * Fills out[HNSW_REGIONS] with where the large arrays are mapped, so that a caller can look
 * them up in /proc/self/smaps (did they get huge pages?). The addresses stay valid until the
 * index grows its capacity or is destroyed; they are for inspection, never for access.
 */
void hnsw_get_regions(struct hnsw_index *ix, struct hnsw_region out[HNSW_REGIONS]);

/* ---- exact search over chosen slots ------------------------------------------------------ */

/*
 * Brute force over slots[0..n): the up to k nearest live slots for which filter (may be NULL)
 * accepts, ascending. For filters so selective that a scan of their candidates beats the
 * graph walk. Slots that are not live are skipped.
 */
int hnsw_search_slots(struct hnsw_index *ix, const float *vec, uint32_t k, const uint32_t *slots,
                      size_t n, hnsw_filter_fn filter, void *filter_arg, struct hnsw_hit *out,
                      uint32_t *n_out);

/* ---- two-step repair --------------------------------------------------------------------- */

/*
 * hnsw_repair() in two steps, for owners that map slots to their own data and must know when
 * slots are freed (a freed slot can be handed to the next insert): hnsw_repair_relink() does
 * the long, concurrent part and returns a plan; hnsw_repair_free() unlinks and frees the
 * planned slots (short, exclusive); hnsw_repair_drop() discards a plan. The plan is owned by
 * the caller between the calls.
 */
struct hnsw_repair_plan;
int hnsw_repair_relink(struct hnsw_index *ix, struct hnsw_repair_plan **plan);
int hnsw_repair_free(struct hnsw_index *ix, struct hnsw_repair_plan *plan, size_t *freed);
void hnsw_repair_drop(struct hnsw_repair_plan *plan);

/* ---- persistence ------------------------------------------------------------------------- */

/* The three parts of a saved index; an owner may store each in its own file. */
enum hnsw_part {
    HNSW_PART_GRAPH = 0,   /* state, node arrays, SQ8 ranges, level-0 and upper links */
    HNSW_PART_VECTORS = 1, /* slots * dim float32 */
    HNSW_PART_CODES = 2,   /* slots * dim SQ8 codes (only when params.sq8) */
};

/* Receives the bytes of a part, in order; returns 0 or a DV_* code (which aborts the save). */
typedef int (*hnsw_save_fn)(void *arg, enum hnsw_part part, const void *buf, size_t n);
/* Must fill buf with the next n bytes of the part; DV_ECORRUPT (or any code) when it cannot. */
typedef int (*hnsw_load_fn)(void *arg, enum hnsw_part part, void *buf, size_t n);

/*
 * Writes the whole index through fn: every byte of GRAPH, then VECTORS, then CODES. The
 * caller guarantees that no insert, delete, repair, replace or SQ8 training runs meanwhile;
 * searches may. Fields are little-endian (dvec runs on little-endian machines only).
 */
int hnsw_save(struct hnsw_index *ix, hnsw_save_fn fn, void *arg);

/*
 * Rebuilds an index from the parts written by hnsw_save, reading GRAPH, VECTORS, CODES in
 * that order: no graph construction, the arrays are read in place. `p` must hold the
 * parameters the index was created with (dim, metric, m, sq8 are checked against the saved
 * ones: DV_ECORRUPT with a message in errmsg when they differ or the graph is inconsistent).
 */
int hnsw_load(const struct hnsw_params *p, hnsw_load_fn fn, void *arg, struct hnsw_index **out,
              char *errmsg);

#endif
