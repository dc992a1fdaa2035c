/* pull.h - the target node's side of moving a replica: copy it from another node (snapshot,
 * then WAL records) in the background, then make it a replica of this node. */
#ifndef DV_PULL_H
#define DV_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"
#include "node.h"

/*
 * One job per partition (docs/protocol.md, replica_pull). START opens a connection to the
 * source node and starts a thread that reads the source's snapshot (snapshot_read) into
 * replicas/.pulling-<coll>.<part>/data (part_restore), then its WAL records from the
 * snapshot's LSN + 1 on (wal_read, part_apply), again and again until FINISH or ABORT. The
 * copy is not a replica of the node meanwhile: requests for the partition are answered as for
 * one the node does not hold, and hello, list and reports do not name it. A restart of the
 * node loses the job (the directory is removed at start).
 *
 * The source may fail or be unreachable for PULL_FAIL_MS (10 s) before the job stops in
 * FAILED with an error naming it; a source that has dropped the WAL records the copy needs
 * (DV_ENOTFOUND) makes the job start over with a new snapshot. Any local error stops it in
 * FAILED at once. A failed job removes its copy; START discards it and starts afresh.
 *
 * Threading: every function may be called from any thread, concurrently; calls on one
 * partition's job are serialised where they must be (FINISH, ABORT).
 */

#define PULL_FAIL_MS 10000 /* how long the source may fail before the job gives up */

/* Where a pull is: `state` is an enum msg_pull_state. */
struct pull_status {
    uint32_t state;
    uint64_t bytes_done, bytes_total; /* snapshot bytes copied of its size */
    uint64_t applied_lsn;             /* of the copy (of the replica once READY) */
    uint64_t source_lsn;              /* the source's applied LSN when last asked */
    char error[DV_ERRMSG_SIZE];       /* FAILED: the cause */
};

/* Counters for metrics. */
struct pull_stats {
    uint64_t running;     /* jobs copying or catching up now */
    uint64_t finished;    /* jobs that became a replica (since start) */
    uint64_t failed;      /* jobs that stopped in FAILED (since start) */
    uint64_t bytes;       /* snapshot and WAL bytes read from sources (since start) */
    uint64_t resumed;     /* RESUME jobs that caught up from the node's own replica, no snapshot */
    uint64_t records_cut; /* records those cut back (written by an old primary, never acked) */
};

/*
 * START: copies (coll, partition) from the node at `source` (an NNG URL), at most `rate`
 * bytes/s (0: no limit), for a replica with `create`'s fsync policy and incarnation (its
 * dimension and metric, when not 0, must match the source's). A job that is running answers
 * its status (idempotent); a FAILED one is discarded and a new one started. DV_EEXIST when the
 * node holds the partition as a replica; DV_EINVAL for a bad collection name, a missing or
 * unusable source URL, an unknown fsync policy or metric; DV_ESHUTDOWN while the node stops.
 */
int pull_start(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
               uint64_t epoch, const char *source, size_t source_len, uint64_t rate,
               const struct msg_create_req *create, struct pull_status *st, char *errmsg);

/*
 * RESUME: as START, but when the node holds (coll, partition) as a replica (a replica the map
 * took out of the in-sync set), the job starts from it instead of a snapshot: the replica
 * leaves the node's table (it is no longer served), its records after the last one it shares
 * with the source (terms.h, from the source's term history) are cut from its WAL, and the
 * source's WAL records from there on are applied. When the cut would reach into its
 * checkpoint or the source's WAL no longer goes back that far, the job takes a snapshot as
 * START does.
 */
int pull_resume(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                uint64_t epoch, const char *source, size_t source_len, uint64_t rate,
                const struct msg_create_req *create, struct pull_status *st, char *errmsg);

/* STATUS: the job's status; READY when the node holds the partition as a replica (also
 * after a restart that lost the job's record), NONE when there is neither. */
void pull_status(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                 struct pull_status *st);

/*
 * FINISH: waits at most wait_ms until the copy has applied until_lsn (and takes nothing after
 * it: the source is fenced there), stops the job, checkpoints and closes the copy and makes it
 * the node's replica of the partition with map epoch `epoch` (or START's when that is
 * higher) and primary term `term` (0: none): a copy holds the primary's history of that term,
 * so it counts as having learned the term before any record (node.meta term_lsn 0). st->state READY
 * on success; repeated, READY again while the node holds the replica with applied LSN >= until_lsn.
 * Errors: DV_ENOTFOUND (no pull of that partition), DV_ETIMEDOUT (not there yet: the job goes on;
 * retry), DV_EINVAL (the copy is past until_lsn), DV_EIO (the job FAILED: the message says why),
 * DV_EEXIST (the node got a replica of the partition meanwhile), and local errors of the
 * installation.
 */
int pull_finish(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                uint64_t epoch, uint64_t term, uint64_t until_lsn, uint32_t wait_ms,
                struct pull_status *st, char *errmsg);

/*
 * ABORT: stops the job and deletes the copy; for a job that FINISH completed, drops the
 * replica as replica_drop does (DV_ESTALE with *known when `epoch` is older than the
 * replica's). DV_OK with nothing to do when there is no job.
 */
int pull_abort(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
               uint64_t epoch, uint64_t *known, char *errmsg);

void pull_get_stats(struct node *n, struct pull_stats *out);

#endif
