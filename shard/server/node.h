/* node.h - the replicas one dvec-shard holds: create, open, look up by partition, drop. */
#ifndef DV_NODE_H
#define DV_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "part.h"
#include "terms.h"

/*
 * Layout under the data dir (docs/formats.md, "Node directory"):
 *   LOCK                       flock'ed by the running process
 *   node.id                    the node id when none is configured (generated once)
 *   replicas/<coll>.<part>/    one replica: node.meta (epoch, fsync policy, incarnation) and
 *                              data/ (the replica directory of part.h)
 *   replicas/.creating-*, .dropping-*   leftovers of a crash, removed at start
 *   replicas/.pulling-<coll>.<part>/    a replica being copied from another node (pull.h):
 *                              not served; removed at start (a restart loses the pull)
 *   tmp/                       snapshot files served to other nodes, emptied at start
 *
 * Epochs fence stale routing: each replica remembers the highest map epoch a request named.
 * A request with a lower epoch gets DV_ESTALE with the replica's epoch; a request for a
 * partition the node does not hold gets DV_ESTALE with epoch 0.
 *
 * Incarnations tell collections of the same name apart: a replica remembers the incarnation
 * (the map epoch of its collection's creation) it was created for, 0 when it was created
 * without one. A create of another incarnation replaces it (node_create).
 *
 * Threading: every function may be called from any thread. A replica found by node_acquire
 * stays open until node_release, even when it is dropped meanwhile (the drop waits).
 */

struct node;
struct tr;

struct node_opts {
    struct part_opts part;     /* per-replica settings; index and wal.sync come per replica */
    uint64_t capacity;         /* points accepted in total, 0: unlimited */
    uint32_t snapshot_idle_ms; /* a snapshot session unused this long is removed */
    int force_fsync;           /* -1: each replica's own policy, else an enum wal_sync for all */
    struct tr *tr; /* pulls' calls to their sources (transport.h; the caller keeps it) */
    /* Every file operation of the node, its replicas, snapshot sessions and pulls
     * (shard/storage/io.h; the caller keeps it). NULL: io_posix(). Tests pass an io_fault. */
    struct io *io;
    /* A pull's timeouts (pull.c), 0: the defaults, PULL_CALL_MS per call to the source and
     * PULL_SNAP_START_MS for the first snapshot read (tests shorten them). */
    uint32_t pull_call_ms, pull_snap_start_ms;
    /* How long a primary waits for a secondary's answer before failing it (repl.h), 0:
     * REPL_TIMEOUT_MS. */
    uint32_t repl_timeout_ms;
};

/* Collection names: 1..128 bytes of [A-Za-z0-9_-]. */
#define NODE_MAX_COLL 128
bool node_coll_valid(const char *s, size_t n);

/*
 * Opens every replica under data_dir (which must exist and be locked by the caller).
 * A replica that does not open is logged and left out (not deleted): the node serves the
 * others and reports it in errmsg of node_open_failures(). DV_EOS when the layout cannot be
 * created or read.
 */
int node_open(const char *data_dir, const struct node_opts *o, struct node **out, char *errmsg);

/* Checkpoints (when `checkpoint`) and closes every replica, frees the node. */
void node_close(struct node *n, bool checkpoint);

/* Number of replicas that failed to open at start. */
size_t node_open_failures(struct node *n);

/* A replica held by the node, counted: release it with node_release(). */
struct node_replica {
    struct part *part;
    struct repl *repl; /* its writes' replication to secondaries (repl.h), owned by the node */
    uint64_t epoch;
    uint64_t term;     /* highest primary term a request named, 0: none (under the node's lock) */
    uint64_t term_lsn; /* its applied LSN when it learned `term` (a primary's term starts after) */
    uint32_t partition;
    char coll[NODE_MAX_COLL + 1];
    enum wal_sync fsync;
    /* private */
    int refs_;
    bool dropped_;
    uint64_t incarnation_; /* read with node_incarnation() */
};

/* r's primary-term history (terms.h), oldest first, its current term's entry last: out has
 * room for NODE_MAX_TERMS + 1; returns the count (0: it has seen no term). */
uint32_t node_terms(struct node *n, const struct node_replica *r, struct msg_term *out);

/* The incarnation the replica was created for (0: none given). Any thread, no lock. */
uint64_t node_incarnation(const struct node_replica *r);

/*
 * Finds the replica of (coll, partition) for a request routed with `epoch`. DV_ESTALE (with
 * *known = the replica's epoch, or 0 when the node does not hold it) and a message otherwise.
 * A higher epoch than the replica's is remembered (and persisted).
 */
int node_acquire(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                 uint64_t epoch, struct node_replica **out, uint64_t *known, char *errmsg);
void node_release(struct node *n, struct node_replica *r);

/*
 * Fences by primary term (term 0: no check): a request naming an older term than the highest
 * r has seen is DV_ESTALE (a newer primary exists: the sender's map is stale, or the sender
 * is a deposed primary); a newer term is persisted in r's node.meta (DV_EOS when that fails:
 * a term the replica could forget at a restart would not fence) and remembered.
 */
int node_term(struct node *n, struct node_replica *r, uint64_t term, char *errmsg);

/*
 * A secondary's side of MSG_REPLICATE: fences by `term` as node_term does, refuses records of a
 * primary whose term began at `term_start` when r held records from there on before it
 * learned the term (DV_ESTALE "diverged": it must catch up), then applies `recs` (repl_apply).
 * The term check and the apply are one step against term changes. *applied gets r's LSN.
 */
int node_replicate(struct node *n, struct node_replica *r, uint64_t term, uint64_t term_start,
                   const struct msg_wal_rec *recs, uint32_t nrecs, uint64_t *applied, char *errmsg);

/* Where the primary term of r began: the LSN of its first record in it (term_lsn + 1). */
uint64_t node_term_start(struct node *n, const struct node_replica *r);

/*
 * Creates a replica of the collection's `incarnation` (0: none given), with the named vectors
 * `spaces` (n_spaces; NULL: one unnamed dense vector of `index`). Idempotent: when it exists
 * with the same dimension and metric (the same vector names, kinds and dimensions), its epoch
 * is raised to `epoch` and DV_OK returned; with other parameters, DV_EEXIST. A lower epoch than the
 * existing replica's: DV_ESTALE. Incarnations: when the existing replica has another non-zero
 * incarnation, it belongs to a dropped collection of the same name: it is dropped (as node_drop
 * does: requests using it finish first) and an empty one created; a create of an earlier
 * incarnation than the replica's is DV_ESTALE. A replica without one (0) is kept and takes the
 * request's; a request without one (0) keeps whatever replica exists.
 */
int node_create(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                uint64_t epoch, uint64_t incarnation, const struct hnsw_params *index,
                const struct part_space *spaces, uint32_t n_spaces, enum wal_sync fsync,
                uint64_t *known, char *errmsg);

/* Drops a replica (waits for requests using it, then deletes its files). DV_ESTALE when
 * `epoch` is older than the replica's or the node does not hold it. */
int node_drop(struct node *n, const char *coll, size_t coll_len, uint32_t partition, uint64_t epoch,
              uint64_t *known, char *errmsg);

/* Calls fn for every replica (acquired for the duration of the call), in no fixed order. */
void node_foreach(struct node *n, void (*fn)(void *arg, struct node_replica *r), void *arg);

/* Total live points over all replicas (for the capacity check and metrics). */
uint64_t node_points(struct node *n);

/* Checkpoints every replica (errors logged). */
void node_checkpoint_all(struct node *n);

/* ---- fences (moving a replica away) ---------------------------------------------------------- */

/*
 * A write request on r starts (DV_OK; pair it with node_write_end) or is refused with DV_EBUSY
 * and "partition <coll>/<part> is being moved: writes are paused, retry" while r is fenced.
 */
int node_write_begin(struct node *n, struct node_replica *r, char *errmsg);
void node_write_end(struct node *n, struct node_replica *r);

/*
 * Fences (on) or unfences r, persisted in its node.meta first (a restart keeps the fence).
 * Idempotent. With `on` it then waits (at most wait_ms, else DV_ETIMEDOUT: still fenced) until
 * no write that started before is running, and *lsn gets r's applied LSN: the last write it
 * will take until unfenced. DV_EOS when node.meta cannot be written (nothing changed).
 */
int node_fence(struct node *n, struct node_replica *r, bool on, uint32_t wait_ms, uint64_t *lsn,
               char *errmsg);

/* Whether r is fenced now. */
bool node_fenced(struct node *n, const struct node_replica *r);

/* ---- snapshot sessions (node_snap.c) ------------------------------------------------------ */

#define NODE_SNAPSHOT_CHUNK (4u * 1024 * 1024) /* largest chunk served in one reply */

/*
 * Reads a chunk of a snapshot of replica r. session 0 starts a new session: the snapshot is
 * written to a file under tmp/ and *session gets its id. Afterwards chunks are read by offset.
 * *data (malloc'd, caller frees) gets up to max_bytes (capped at NODE_SNAPSHOT_CHUNK) bytes.
 * DV_ENOTFOUND when the session is unknown or expired.
 */
int node_snapshot_read(struct node *n, struct node_replica *r, uint64_t *session, uint64_t offset,
                       uint32_t max_bytes, void **data, size_t *len, uint64_t *lsn, uint64_t *total,
                       bool *done, char *errmsg);

/*
 * A peer reads r's WAL from `from` on: checkpoints of r keep those records (part_hold_wal)
 * until no snapshot or WAL read touched r for snapshot_idle_ms. A snapshot session sets it
 * to its LSN + 1 by itself. One hold per replica: with two peers copying the same replica at
 * once, the one that is further behind may find its records dropped (DV_ENOTFOUND) and has to
 * take a new snapshot.
 */
void node_hold_wal(struct node *n, struct node_replica *r, uint64_t from);

/* Removes snapshot sessions idle for longer than snapshot_idle_ms, and releases the WAL holds
 * of replicas that no peer read for that long. */
void node_snapshot_expire(struct node *n);

#endif
