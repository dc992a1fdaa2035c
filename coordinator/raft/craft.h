/* craft.h - the coordinator's Raft instance on its own libuv thread, and what other threads
 * may ask of it: apply a map command, read the current map, read the leader. */
#ifndef DV_CRAFT_H
#define DV_CRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmap.h"

/*
 * One thread runs libuv with canonical/raft (raft_uv over TCP) and the cluster map FSM. Other
 * threads (request workers) never touch raft: they queue work for the loop thread
 * (LIBRARY-NOTES: uv_async, the whole queue drained per wake-up) and wait for its answer.
 *
 * The raft 0.15 workarounds live here: SIGPIPE must be ignored by the process; pre-vote on;
 * commands padded to 8 bytes (cmap_cmd_encode does it); pending commands batched into one
 * entry with at most one apply in flight; a barrier after every election before the leader
 * accepts commands ("leader ready"); apply requests drained before raft_close; a command
 * whose apply fails with leadership lost may still commit, so callers retry with the same
 * request id (the map applies it once).
 */

#define CRAFT_MAX_PEERS 9
#define CRAFT_ADDR_MAX  128

struct craft_peer {
    uint64_t id;                     /* raft id, >= 1 */
    char raft_addr[CRAFT_ADDR_MAX];  /* host:port of raft's TCP transport */
    char client_url[CRAFT_ADDR_MAX]; /* the coordinator's native protocol URL */
};

struct craft_opts {
    uint64_t id;                              /* this coordinator's raft id */
    const char *dir;                          /* raft's data directory (created if missing) */
    struct craft_peer peers[CRAFT_MAX_PEERS]; /* the bootstrap group, this one included */
    size_t n_peers;
    const char *advertise;       /* this one's raft address when not in `peers` (NULL) */
    const char *bind;            /* raft listens here (NULL: see craft_bind_addr) */
    bool join;                   /* start without bootstrapping: wait to be added */
    unsigned election_ms;        /* default 150 */
    unsigned heartbeat_ms;       /* default 15 */
    unsigned snapshot_threshold; /* entries between snapshots, default 1024 */
    unsigned snapshot_trailing;  /* entries kept after a snapshot, default 2048 */
    uint32_t dedup_cap;          /* request ids the map remembers (cmap_init) */
};

struct craft;

/*
 * The address raft listens on, given its advertised address `self` ("HOST:PORT") and the
 * configured `bind` (NULL or "": none): `bind` itself when set (its port must be self's);
 * else "" (listen on self) when HOST is an IPv4 literal, else "0.0.0.0:PORT" (a name is
 * advertised: every interface). DV_EINVAL with errmsg for a bad combination.
 */
int craft_bind_addr(const char *self, const char *bind, char *out, size_t n, char *errmsg);

/* Starts the loop thread with raft. DV_EOS / DV_EINVAL with errmsg naming the cause. */
int craft_start(const struct craft_opts *o, struct craft **out, char *errmsg);

/* Stops: fails queued commands with DV_ESHUTDOWN, waits for the one in flight, closes raft
 * and the loop, joins the thread, frees. */
void craft_stop(struct craft *c);

/*
 * Applies one encoded command (cmap_cmd_encode output) through raft and waits for its result
 * at most timeout_ms. Returns DV_OK with *res filled (the command's own result code is in
 * res->code), or: DV_ESTALE when this coordinator is not the ready leader (craft_leader says
 * who is), DV_ETIMEDOUT, DV_EIO when raft failed the apply (e.g. leadership lost: the
 * command may still commit; retry with the same request id), DV_ESHUTDOWN, DV_ENOMEM.
 */
int craft_apply(struct craft *c, const void *cmd, size_t n, uint32_t timeout_ms,
                struct cmap_result *res, char *errmsg);

/*
 * Changes the raft group on the ready leader: add == true adds coordinator `id` at
 * `raft_addr` (raft_add as a spare, then raft_assign as a voter once caught up; start it
 * with `join` and an empty data dir), false removes it (raft_remove). One change at a time.
 * DV_ESTALE (not the leader), DV_EINVAL (known id or address, unknown id), DV_EBUSY (another
 * change in progress), DV_ETIMEDOUT, DV_EIO with raft's reason.
 */
int craft_change(struct craft *c, bool add, uint64_t id, const char *raft_addr, uint32_t timeout_ms,
                 char *errmsg);

/* A read-only copy of the map as of some applied index; hold it as long as needed. */
struct cmap_ref {
    struct cmap map;
    uint64_t applied; /* raft index it reflects */
    int refs_;
};

/* The latest published map (never NULL after start: an empty map at first). */
struct cmap_ref *craft_map(struct craft *c);
void craft_map_release(struct craft *c, struct cmap_ref *r);

struct craft_status {
    uint64_t id;
    int state;          /* RAFT_FOLLOWER, RAFT_CANDIDATE, RAFT_LEADER, RAFT_UNAVAILABLE */
    bool leader_ready;  /* this one is leader and its barrier of the term committed */
    uint64_t leader_id; /* 0: unknown */
    char leader_url[CMAP_URL_MAX + 1]; /* its client URL, "" when unknown */
    uint64_t term, commit_index, last_applied;
    uint64_t applies, batches; /* commands applied through this coordinator, raft entries */
};

void craft_status(struct craft *c, struct craft_status *st);

/* The client URL of a peer of the bootstrap group, NULL if unknown. */
const char *craft_peer_url(struct craft *c, uint64_t id);

/* The bootstrap group (empty for a coordinator started with join): *out, the count. */
size_t craft_peers(struct craft *c, const struct craft_peer **out);

#endif
