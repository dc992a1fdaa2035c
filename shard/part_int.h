/* part_int.h - internals of a replica shared by part.c, part_io.c and part_snap.c. */
#ifndef DV_PART_INT_H
#define DV_PART_INT_H

#include <pthread.h>

#include "buf.h"
#include "err.h"
#include "idmap.h"
#include "part.h"

/* WAL record types (docs/formats.md, "WAL records"). */
enum {
    REC_UPSERT = 1,       /* [ids], bin(vectors), [payload bin | nil] */
    REC_DELETE = 2,       /* [ids] */
    REC_PAYLOAD = 3,      /* op, [ids], bin(data) */
    REC_INDEX_CREATE = 4, /* key, kind */
    REC_INDEX_DROP = 5,   /* key */
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
};

struct part {
    struct io *io;
    char *dir;
    struct part_opts o;
    struct hnsw_index *ix;
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
int part_add_pindex(struct part *p, const char *key, enum pindex_kind kind, char *errmsg);
void part_start_bg(struct part *p);

/* ---- part_apply.c: WAL records and applying them ---- */

/* A decoded (or to be encoded) upsert record: n points. */
struct part_rec_upsert {
    size_t n;
    struct pid *ids;
    float *vecs; /* n * dim, aligned */
    const uint8_t **pay;
    uint32_t *plen;
};

void part_rec_upsert_free(struct part_rec_upsert *u);
int part_rec_upsert_alloc(struct part_rec_upsert *u, size_t n, uint32_t dim);
int part_rec_encode_upsert(const struct part_rec_upsert *u, uint32_t dim, struct buf *b);
int part_rec_encode_ids(struct buf *b, const struct pid *ids, size_t n);
/* Whether data is exactly one msgpack map (a payload). */
bool part_is_map(const void *data, size_t n);
/* Apply one decoded record to the index, ids, payloads and payload indexes (writer mutex). */
int part_apply_upsert(struct part *p, const struct part_rec_upsert *u, char *errmsg);
int part_apply_delete(struct part *p, const struct pid *ids, size_t n, size_t *deleted);
int part_apply_payload(struct part *p, enum part_payload_op op, const struct pid *ids, size_t n,
                       const uint8_t *data, size_t len);

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

/* The files of a checkpoint, in stream order. */
enum ckpt_file {
    CKPT_GRAPH = 0,
    CKPT_VECTORS = 1,
    CKPT_CODES = 2,
    CKPT_IDS = 3,
    CKPT_PAYLOADS = 4,
    CKPT_NFILES = 5,
};
extern const char *const part_ckpt_files[CKPT_NFILES];

#endif
