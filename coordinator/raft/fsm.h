/* fsm.h - the cluster map as raft's state machine (struct raft_fsm: apply, snapshot, restore). */
#ifndef DV_COORD_FSM_H
#define DV_COORD_FSM_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#include "cmap.h"
#include "err.h"

/*
 * A struct cmap_fsm owns the map one coordinator replicates and plugs it into raft (fsm
 * version 1: raft frees the snapshot buffers). Everything runs on raft's thread (the libuv
 * loop, or the test's thread with raft_fixture); readers elsewhere take a cmap_copy() there.
 *
 * apply: decodes the entry (a command or a batch, cmap_apply) and sets *result to
 *   &cmap_fsm.results: one struct cmap_result per command. The results belong to the FSM and
 *   stay valid only until the next apply, i.e. during the raft_apply callback that receives
 *   them: copy what you need there. (Raft drops the result on followers and when the
 *   request is gone, so a per-apply allocation would leak.) An entry that cannot be decoded
 *   is answered with DV_EPROTO and skipped. The only failure is RAFT_NOMEM, with the map
 *   unchanged for the command that failed (commands of a batch before it stay applied). What
 *   raft 0.15 does then (tests/unit/test_fsm.c, test_apply_nomem): on the leader it keeps
 *   the entry and applies it again on its next pass (the batch members already applied are
 *   answered from the request-id memory); on a follower it turns the server
 *   RAFT_UNAVAILABLE for good, so the daemon must watch raft_state() and restart, which
 *   rebuilds the map from the snapshot and the log. No map ever diverges.
 * snapshot: one raft_malloc'd buffer (and array) holding cmap_encode(); raft frees both.
 * restore: decodes a snapshot into a new map and swaps it in; on success raft_free's
 *   buf->base as raft 0.15 requires (on failure raft keeps it) and returns RAFT_CORRUPT for a
 *   snapshot that does not decode.
 */
struct cmap_fsm {
    struct cmap map;
    struct cmap_results results; /* of the last apply */
    uint64_t n_applied, n_snapshots, n_restores;
    char errmsg[DV_ERRMSG_SIZE]; /* why the last snapshot or restore failed */
};

/* Initialises `f` with an empty map (cmap_init's dedup_cap) and fills `fsm` to drive it
 * (fsm->data = f). `f` must outlive the raft instance using `fsm`. DV_EINVAL, DV_ENOMEM. */
int cmap_fsm_init(struct cmap_fsm *f, struct raft_fsm *fsm, uint32_t dedup_cap);

void cmap_fsm_close(struct cmap_fsm *f);

/*
 * Copies an encoded entry (cmap_cmd_encode or cmap_batch_pack output: a multiple of 8 bytes,
 * asserted) into a raft_malloc'd buffer for raft_apply. If raft_apply returns 0 raft owns
 * out->base, otherwise free it with raft_free. DV_ENOMEM.
 */
int cmap_fsm_entry(const void *p, size_t n, struct raft_buffer *out);

#endif
