/* part_int.h - internals of a replica shared by part.c, part_io.c and part_snap.c. */
#ifndef DV_PART_INT_H
#define DV_PART_INT_H

#include <pthread.h>

#include "buf.h"
#include "err.h"
#include "idmap.h"
#include "part.h"
#include "sparse.h"

/* WAL record types (docs/formats.md, "WAL records"). */
enum {
    REC_UPSERT = 1,       /* [ids], bin(vectors), [payload bin | nil] */
    REC_DELETE = 2,       /* [ids] */
    REC_PAYLOAD = 3,      /* op, [ids], bin(data) */
    REC_INDEX_CREATE = 4, /* key, kind */
    REC_INDEX_DROP = 5,   /* key */
    REC_UPSERT_V = 6,     /* [ids], [payload bin | nil], [[[space, bin(vector)]...] per point] */
    REC_VECTORS = 7,      /* [ids], [[[space, bin(vector)]...] per point]: update vectors */
    REC_VECTORS_DEL = 8,  /* [ids], [space...]: delete vectors */
};

/* A payload: msgpack map bytes. Immutable once published; freed under the write lock. */
struct blob {
    uint32_t len;
    uint8_t data[];
};

/* A payload index definition (kept in the meta file; the index is rebuilt at open). */
struct pidx_def {
    char *key;
    enum pindex_kind kind;
    struct pindex_params prm;
};

/*
 * A vector space in memory. Point slots (ids, pay, pub) are the replica's; a dense space's
 * HNSW index has slots of its own, mapped both ways (maps guarded by rw; an index slot whose
 * vmap entry is PART_NO_SLOT is being inserted or was replaced: never returned). Sparse and
 * multi vectors are blobs per point slot: SPARSE: u32 n, n u32 sorted terms, n f32 weights;
 * MULTI: u32 rows, rows * dim f32 (rows normalised for cosine).
 */
struct vspace {
    struct part_space def;
    struct hnsw_index *ix; /* DENSE */
    uint32_t *vmap;        /* DENSE: index slot -> point slot, vcap entries */
    size_t vcap;
    uint32_t *pmap;           /* DENSE: point slot -> index slot, p->cap entries */
    struct blob **vb;         /* SPARSE, MULTI: per point slot, p->cap entries */
    struct sparse_index *inv; /* SPARSE */
    uint64_t points;          /* points holding this vector */
};

struct part {
    struct io *io;
    char *dir;
    struct part_opts o; /* o.index: space 0's parameters when it is dense */
    struct vspace *sp;
    struct part_space *defs; /* the spaces' definitions, contiguous (part_spaces) */
    uint32_t nsp;
    bool legacy_ckpt; /* the checkpoint named in the meta has the format before spaces */
    struct wal *wal;

    pthread_mutex_t wmu;      /* serialises writers: WAL order == apply order */
    pthread_mutex_t maint_mu; /* checkpoint capture vs compaction */
    pthread_mutex_t ckpt_mu;  /* one checkpoint at a time; the current checkpoint's files */
    pthread_rwlock_t rw;      /* shared: reads; exclusive: publishing a write */

    /* Per slot, `cap` entries, guarded by rw. pub[s]: slot s holds a visible point. */
    size_t cap;
    struct pid *ids;
    struct blob **pay;
    uint8_t *pub;
    struct idmap map;
    uint64_t payload_bytes;
    uint32_t *freel; /* point slots free for reuse (a stack), guarded by rw */
    size_t nfree, freecap;
    size_t used; /* point slots handed out so far: [0, used) */

    struct pindex **pidx; /* payload indexes, guarded by rw */
    struct pidx_def *pdefs;
    size_t n_pidx;

    uint64_t applied_lsn; /* atomic */
    uint64_t ckpt_lsn;    /* written under ckpt_mu, atomically: read without it */
    char ckpt_name[64];   /* "ckpt-<lsn>" or "" */
    uint64_t ckpt_at_ns;
    bool ckpt_soon; /* atomic: the open replayed for ckpt_replay_ms: checkpoint now */
    uint64_t ckpt_count, ckpt_last_ms, ckpt_stall_ms, open_ms;
    uint64_t wal_hold; /* atomic: part_hold_wal's LSN, 0: none */
    part_tap_fn tap;   /* part_set_tap, under wmu */
    void *tap_arg;

    int failed; /* atomic: writes refused */
    char fail_msg[DV_ERRMSG_SIZE];

    pthread_t bg;
    uint64_t bg_retry_ns; /* background thread only: no checkpoint before (after a failure) */
    unsigned bg_fails;    /* background thread only: checkpoints failed in a row */
    bool bg_running;
    bool bg_stop;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
};

/* ---- part.c ---- */
int part_alloc(struct io *io, const char *dir, const struct part_opts *o, struct part **out);
void part_free(struct part *p);
/* Applies a decoded-or-encoded WAL record (replay and catch-up). Caller holds wmu. */
int part_apply_record(struct part *p, uint8_t type, const void *body, size_t len, char *errmsg);
/* Makes room for slots < n in the per-slot arrays. Caller holds rw exclusively. */
int part_reserve_slots(struct part *p, size_t n);
int part_add_pindex(struct part *p, const char *key, const struct pindex_params *prm, char *errmsg);
void part_start_bg(struct part *p);

/* ---- part_apply.c: WAL records and applying them ---- */

/* A vector of a record: the bytes of its blob (DENSE: dim floats as given). */
struct part_rvec {
    uint32_t space;
    uint32_t len;
    const uint8_t *data;
};

/*
 * A decoded (or to be encoded) upsert record: n points. REC_UPSERT (space 0 dense only) keeps
 * the vectors in `vecs`; REC_UPSERT_V and REC_VECTORS list each point's vectors in
 * rv[rvoff[i] .. rvoff[i + 1]).
 */
struct part_rec_upsert {
    size_t n;
    struct pid *ids;
    float *vecs; /* REC_UPSERT: n * dim, aligned */
    const uint8_t **pay;
    uint32_t *plen;
    struct part_rvec *rv;
    size_t *rvoff;
    size_t nrv;
    uint8_t *own; /* bytes the record owns (encoded vectors), or NULL */
};

void part_rec_upsert_free(struct part_rec_upsert *u);
int part_rec_upsert_alloc(struct part_rec_upsert *u, size_t n, uint32_t dim);
int part_rec_encode_upsert(const struct part_rec_upsert *u, uint32_t dim, struct buf *b);
/* REC_UPSERT_V (with_payload) and REC_VECTORS (without). */
int part_rec_encode_vectors(const struct part_rec_upsert *u, bool with_payload, struct buf *b);
int part_rec_encode_ids(struct buf *b, const struct pid *ids, size_t n);
/* Whether data is exactly one msgpack map (a payload). */
bool part_is_map(const void *data, size_t n);
/* Apply one decoded record to the index, ids, payloads and payload indexes (writer mutex). */
int part_apply_upsert(struct part *p, const struct part_rec_upsert *u, char *errmsg);
int part_apply_delete(struct part *p, const struct pid *ids, size_t n, size_t *deleted);
int part_apply_payload(struct part *p, enum part_payload_op op, const struct pid *ids, size_t n,
                       const uint8_t *data, size_t len);
/* REC_UPSERT_V (replace = true: whole points) and REC_VECTORS (only the vectors given). */
int part_apply_upsert_v(struct part *p, const struct part_rec_upsert *u, bool replace,
                        char *errmsg);
int part_apply_delete_vectors(struct part *p, const struct pid *ids, size_t n,
                              const uint32_t *spaces, uint32_t ns);

/* ---- part_read.c ---- */

/* Whether point slot s holds a visible point that matches f (NULL: any); caller holds rw. */
bool part_slot_match(const struct part *p, const struct filter *f, uint32_t s);
/* Fills h for point slot s: id, and its vectors and payload when asked (caller holds rw
 * shared); h owns what it holds (part_result_free). */
int part_fill_hit(struct part *p, uint32_t s, bool with_vector, bool with_payload,
                  struct part_hit *h);

/* ---- part_space.c: spaces ---- */

/* Creates the in-memory spaces of p from defs (empty indexes). */
int part_spaces_init(struct part *p, const struct part_space *defs, uint32_t n, char *errmsg);
void part_spaces_free(struct part *p);
/* Makes room for point slots < n in every space's per-slot arrays (rw held exclusively). */
int part_spaces_reserve(struct part *p, size_t old_cap, size_t new_cap);
/* Makes room for index slots < n in a dense space's vmap (rw held exclusively). */
int part_vmap_reserve(struct vspace *v, size_t n);
/* Whether point slot s has a vector of space i (rw held). */
bool part_slot_has(const struct part *p, uint32_t i, uint32_t s);
/* A point slot from the free stack or a new one (rw held exclusively); frees one. */
int part_slot_alloc(struct part *p, uint32_t *s);
void part_slot_free(struct part *p, uint32_t s);
/* Checks one vector for space sp: DV_EDIM / DV_ENAN / DV_EINVAL / DV_ETOOBIG naming it
 * after `what` ("point 3 (id 7)"). */
int part_vec_check(const struct vspace *sp, const struct part_vec *v, const char *what,
                   char *errmsg);
/* Encodes vector v of space sp as its record/blob bytes (sparse: sorted). */
int part_vec_encode(const struct vspace *sp, const struct part_vec *v, struct buf *b);
/* Checks record/blob bytes of a vector of space sp (replay, catch-up). */
bool part_blob_valid(const struct vspace *sp, const uint8_t *data, size_t len);

/* ---- part_write.c ---- */

/* Publishes `lsn` as the replica's applied LSN (readers and the snapshot see it). */
void part_applied(struct part *p, uint64_t lsn);

/* ---- part.c ---- */

/* Removes the payload index on `key` (caller holds rw exclusively); no-op when absent. */
void part_drop_pindex(struct part *p, const char *key);

/* ---- part_io.c: meta, checkpoint files ---- */
#define PART_META    "meta.dvm"
#define PART_WAL_DIR "wal"

/* Writes the meta file for the current state (ckpt_name, ckpt_lsn, params, index defs). */
int part_write_meta(struct part *p, bool *switched, char *errmsg);
/* Reads meta.dvm of dir into p (params, ckpt name and LSN, index defs). */
int part_read_meta(struct part *p, char *errmsg);
/* Loads the checkpoint named in p->ckpt_name: index, ids, payloads. */
int part_load_ckpt(struct part *p, char *errmsg);
/* Removes ckpt-* directories other than the current one and stray .tmp files. */
void part_remove_stale(struct part *p);

/* The files of a checkpoint, in stream order (docs/formats.md, "Checkpoints"). */
enum ck_role { CK_IDS, CK_PAYLOADS, CK_GRAPH, CK_VECTORS, CK_CODES, CK_VMAP, CK_BLOBS };
struct ckfile {
    char name[32];
    uint8_t role;   /* enum ck_role */
    uint32_t space; /* GRAPH, VECTORS, CODES, VMAP, BLOBS */
    uint32_t dim;   /* checked in the file's header */
};
#define CKPT_MAX_FILES (2 + 4 * PART_MAX_SPACES)
/* Every checkpoint file: a 4096-byte header (magic, version, its number in the list, LSN,
 * body length and CRC32C, dim, slots, header CRC), then the body, page-aligned. */
#define FILE_MAGIC   "DVECCKPT"
#define FILE_VERSION 1
#define FILE_HEAD    4096
#define ID_ENTRY     24   /* ids.dvi: kind, 7 bytes padding, hi, lo */
#define ID_NONE      0xff /* ids.dvi kind of a slot without a point */
/* Fills f (room for CKPT_MAX_FILES) with p's checkpoint files; legacy: the format before
 * vector spaces (graph.dvg vectors.dvv codes.dvq ids.dvi payloads.dvp, one dense space). */
size_t part_ckpt_list(const struct part *p, bool legacy, struct ckfile *f);

#endif
