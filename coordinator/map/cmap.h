/* cmap.h - the cluster map (nodes, collections, placement, moves, coordinators), its commands. */
#ifndef DV_CMAP_H
#define DV_CMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto_limits.h"

/*
 * The cluster map is the state the coordinators replicate with Raft. It changes only through
 * commands: a command is encoded (msgpack, padded with zero bytes to a multiple of 8 because
 * raft 0.15 cuts the log at entries of another length), carried in a Raft entry and applied
 * on every coordinator by cmap_apply(). Applying is deterministic: the same entries in the
 * same order give byte-identical maps (cmap_encode) everywhere. Anything that depends on
 * time or on a choice (the leader's clock, the placement of a new collection) is decided by
 * the leader and carried in the command.
 *
 * Every command carries a request id; the map remembers the ids of the last `dedup_cap`
 * commands it applied with their results, so a command retried after a lost answer (raft's
 * RAFT_LEADERSHIPLOST does not mean the write failed) changes the map once and answers
 * with its first result. That memory is part of the map and of its snapshots.
 *
 * Epochs: the map epoch counts the commands that changed the map (every successful one; a
 * failed command changes nothing). A partition's epoch is the map epoch of the command that
 * last changed its placement, so partition epochs only grow and compare across partitions.
 * Nodes use it to fence stale routing.
 *
 * A map is plain data, not thread-safe: one thread applies; readers on other threads work
 * on a cmap_copy() or under the caller's lock. Pointers returned by lookups stay valid until
 * the next change of the map (apply, decode into it, free).
 */

#define CMAP_ID_MAX        64              /* bytes of a node id: [A-Za-z0-9._:-] */
#define CMAP_URL_MAX       255             /* bytes of a URL: printable ASCII, no spaces */
#define CMAP_NAME_MAX      PROTO_MAX_NAME  /* bytes of a collection name: [A-Za-z0-9_-] */
#define CMAP_MSG_MAX       128             /* bytes of a result message, NUL included */
#define CMAP_MAX_NODES     16384           /* node records (removed ones included) */
#define CMAP_MAX_COLLS     65536           /* collections */
#define CMAP_MAX_PARTS     PROTO_MAX_PARTS /* partitions of one collection */
#define CMAP_MIN_PARTS     1 /* default partition count: one per eligible node, at least */
#define CMAP_MAX_RF        PROTO_MAX_RF /* replication factor */
#define CMAP_MAX_REPLICAS  16           /* replicas of one partition (more than rf during a move) */
#define CMAP_MAX_REPORTS   65536        /* replicas one node may report */
#define CMAP_MAX_MOVES     65536        /* move records */
#define CMAP_DEDUP_DEFAULT 1024         /* request ids remembered by default */
#define CMAP_DEDUP_MAX     65536        /* request ids remembered at most */
#define CMAP_MAX_ENTRY     (64u << 20)  /* bytes of one encoded command or batch */
#define CMAP_MAX_SNAPSHOT  (1u << 30)   /* bytes of one encoded map */
#define CMAP_MAX_COORDS    16           /* coordinator records (removed ones included) */
#define CMAP_NONE          UINT32_MAX   /* no node */
#define CMAP_MAX_ALIASES   65536        /* collection aliases */
#define CMAP_MAX_ALIAS_OPS 1024         /* actions of one alias command */
#define CMAP_MAX_INDEXES   256          /* payload index definitions of one collection */
#define CMAP_KEY_MAX       255          /* bytes of an indexed payload key */

enum cmap_node_state {
    CMAP_NODE_JOINING = 0,  /* registered, placeable, may not hold data yet */
    CMAP_NODE_ALIVE = 1,    /* heartbeats arrive */
    CMAP_NODE_SUSPECT = 2,  /* heartbeats late: not placeable, still routed to */
    CMAP_NODE_DEAD = 3,     /* heartbeats missing for long */
    CMAP_NODE_DRAINING = 4, /* leaving on request: its partitions move away */
    CMAP_NODE_REMOVED = 5,  /* gone; the record stays so the id keeps its number */
    CMAP_NODE_STATE_COUNT = 6,
};

/* In a node state command: leave the state as it is. */
#define CMAP_NODE_KEEP (-1)

enum cmap_move_state {
    CMAP_MOVE_PLANNED = 0,
    CMAP_MOVE_COPYING = 1,
    CMAP_MOVE_CATCHING_UP = 2,
    CMAP_MOVE_SWITCHING = 3,
    CMAP_MOVE_DONE = 4,
    CMAP_MOVE_FAILED = 5,
    CMAP_MOVE_STATE_COUNT = 6,
};

/* The role of a coordinator in the Raft group. The first three have the numbers of raft.h's
 * RAFT_STANDBY, RAFT_VOTER and RAFT_SPARE, so craft.c can pass them on as they are. */
enum cmap_coord_role {
    CMAP_COORD_STANDBY = 0, /* replicates the log, does not vote */
    CMAP_COORD_VOTER = 1,   /* replicates and votes */
    CMAP_COORD_SPARE = 2,   /* in the configuration, gets no entries (raft_add's first step) */
    CMAP_COORD_REMOVED = 3, /* left the configuration; the record stays until COORD_REMOVE */
    CMAP_COORD_ROLE_COUNT = 4,
};

/* Metric numbering of shard/index/hnsw.h (enum hnsw_metric); fsync of shard's enum wal_sync. */
enum { CMAP_METRIC_L2 = 0, CMAP_METRIC_IP = 1, CMAP_METRIC_COSINE = 2, CMAP_METRIC_L1 = 3 };
enum { CMAP_FSYNC_ALWAYS = 0, CMAP_FSYNC_INTERVAL = 1, CMAP_FSYNC_NEVER = 2 };

/* The state of one replica of a partition (Qdrant's names). */
enum cmap_replica_state {
    CMAP_REPLICA_ACTIVE = 0,       /* in the in-sync set: holds every acknowledged write */
    CMAP_REPLICA_DEAD = 1,         /* out of the in-sync set: must catch up before it serves */
    CMAP_REPLICA_PARTIAL = 2,      /* catching up from the primary, not in-sync yet */
    CMAP_REPLICA_INITIALIZING = 3, /* being created */
    CMAP_REPLICA_RECOVERY = 4,     /* copying a snapshot */
    CMAP_REPLICA_STATE_COUNT = 5,
};

/* "alive", "copying", ...; "unknown" outside the enum. */
const char *cmap_node_state_name(int state);
/* "active", "dead", "partial", "initializing", "recovery"; "unknown" outside the enum. */
const char *cmap_replica_state_name(int state);
const char *cmap_move_state_name(int state);
const char *cmap_coord_role_name(int role);

/* A replica a node reported holding (hello or heartbeat), with its applied LSN. */
struct cmap_report {
    char *coll; /* malloc'd, NUL-terminated */
    uint32_t part;
    uint64_t lsn;
};

/* A node. Its number `num` is its index in cmap.nodes, given at first registration and never
 * reused (a removed node keeps its record). Partitions name nodes by number. */
struct cmap_node {
    uint32_t num;
    char id[CMAP_ID_MAX + 1];
    char url[CMAP_URL_MAX + 1];        /* native protocol (tcp://...) */
    char http_url[CMAP_URL_MAX + 1];   /* may be empty */
    char search_url[CMAP_URL_MAX + 1]; /* the search port (tcp://...); may be empty */
    double weight;                     /* capacity weight, finite and > 0 */
    int state;                         /* enum cmap_node_state */
    uint64_t heartbeat_ms;             /* last heartbeat by the leader's clock */
    struct cmap_report *reports;       /* NULL when n_reports == 0 */
    uint32_t n_reports;
};

/* A coordinator: its Raft server id, the address raft's TCP transport dials and the URL clients
 * (and the other coordinators, to forward map changes to the leader) reach it on. */
struct cmap_coord {
    uint64_t id;                       /* raft_id, > 0 */
    char raft_addr[CMAP_URL_MAX + 1];  /* host:port */
    char client_url[CMAP_URL_MAX + 1]; /* native protocol (tcp://...) */
    int role;                          /* enum cmap_coord_role */
};

/* A named vector of a collection (Qdrant's named, sparse and multi vectors): kind 0 dense,
 * 1 sparse, 2 multi (shard/part.h's enum part_vkind); dim, metric, m, ef_construction, sq8 as
 * the collection's (sparse: dim 0); idf for sparse vectors. */
struct cmap_vspace {
    char name[PROTO_MAX_VNAME + 1];
    uint32_t kind, dim, metric, m, ef_construction;
    bool sq8, idf;
};

/* Parameters of a collection, fixed at creation. */
struct cmap_coll_cfg {
    uint32_t dim;             /* 1 .. CMAP_MAX_DIM */
    uint32_t metric;          /* CMAP_METRIC_* */
    uint32_t m;               /* 2 .. CMAP_MAX_M */
    uint32_t ef_construction; /* 1 .. PROTO_MAX_CFG_EF */
    uint32_t ef_search;       /* 1 .. PROTO_MAX_CFG_EF */
    uint32_t n_parts;         /* 1 .. CMAP_MAX_PARTS */
    uint32_t rf;              /* replication factor, 1 .. CMAP_MAX_RF */
    uint32_t fsync;           /* CMAP_FSYNC_* */
    bool sq8;
    /* Qdrant's write_consistency_factor: a write needs this many in-sync (ACTIVE) replicas,
     * 1 .. CMAP_MAX_RF; 0 in a command means 1. */
    uint32_t write_consistency_factor;
    /* Named vectors (n_spaces of them), or none: one unnamed dense vector of dim and metric
     * (then dim is 1 .. CMAP_MAX_DIM; with named vectors, dim is 0). */
    uint32_t n_spaces;
    struct cmap_vspace spaces[PROTO_MAX_VECTORS];
};

/*
 * Where one partition lives: n replicas (node numbers, distinct) with their states, the
 * primary (the one that takes writes and replicates them to the ACTIVE others), its term and
 * the map epoch of the last change of any of these. The primary is an ACTIVE replica; it is
 * CMAP_NONE only when no replica is ACTIVE (n == 0 included: its last node was removed by
 * force). The term is 1 at creation and grows by one whenever another node becomes primary, so
 * nodes can refuse a deposed primary's writes. state[k] for k >= n is 0.
 */
struct cmap_part {
    uint64_t epoch;
    uint64_t term;
    uint32_t primary;
    uint32_t n;
    uint32_t nodes[CMAP_MAX_REPLICAS];
    uint8_t state[CMAP_MAX_REPLICAS]; /* enum cmap_replica_state of nodes[k] */
};

/* A payload index created through the coordinators: the payload key and its kind, the number
 * of shard's enum pindex_kind (0 keyword, 1 integer, ...; the map keeps any number, so kinds
 * added to the nodes need no change here). */
struct cmap_pindex {
    char key[CMAP_KEY_MAX + 1];
    uint32_t kind;
};

struct cmap_coll {
    char name[CMAP_NAME_MAX + 1];
    struct cmap_coll_cfg cfg;
    uint64_t epoch;              /* map epoch of the creation */
    struct cmap_part *parts;     /* cfg.n_parts */
    struct cmap_pindex *indexes; /* by key; NULL when n_indexes == 0 */
    uint32_t n_indexes;
};

/* A collection alias (Qdrant's): another name of collection `coll`, usable wherever a
 * collection name is. Names follow the collection rules and never equal a collection's. */
struct cmap_alias {
    char name[CMAP_NAME_MAX + 1];
    char coll[CMAP_NAME_MAX + 1];
};

/* One action of an alias command, applied in order, all or nothing. */
enum cmap_alias_op {
    CMAP_ALIAS_CREATE = 1, /* alias `a` of collection `b` */
    CMAP_ALIAS_DELETE = 2, /* alias `a` (b is empty) */
    CMAP_ALIAS_RENAME = 3, /* alias `a` becomes alias `b` */
};

struct cmap_alias_action {
    uint32_t op; /* enum cmap_alias_op */
    char a[CMAP_NAME_MAX + 1];
    char b[CMAP_NAME_MAX + 1];
};

/* A planned move of one replica of a partition from one node to another. (collection,
 * partition, from, to) identifies it; `epoch` is the map epoch of its last change. */
struct cmap_move {
    char coll[CMAP_NAME_MAX + 1];
    uint32_t part;
    uint32_t from, to; /* node numbers */
    int state;         /* enum cmap_move_state */
    uint64_t epoch;
};

/* A request id: a 128-bit random value, or a client id (hi) and its sequence number (lo).
 * Zero is not a valid id. */
struct cmap_reqid {
    uint64_t hi, lo;
};

/* The result of one command: a DV_* code (DV_OK, DV_EEXIST, DV_ENOTFOUND, DV_EINVAL,
 * DV_ESTALE, DV_EBUSY, DV_EFULL, DV_EPROTO for an undecodable command), the map epoch after
 * it, a message for errors ("" on success), and whether this was a retry answered from the
 * request-id memory (`dup`, the code and message being those of the first application). */
struct cmap_result {
    int code;
    bool dup;
    uint64_t epoch;
    char msg[CMAP_MSG_MAX];
};

/* A remembered request: its id and its first result. */
struct cmap_seen {
    struct cmap_reqid id;
    int code;
    uint64_t epoch;
    char msg[CMAP_MSG_MAX];
};

/* Rebalancing settings, cluster-wide (dvecctl rebalance pause/resume/set). */
#define CMAP_RATE_DEFAULT       (64u << 20) /* bytes/s one move copies at most */
#define CMAP_MOVES_PER_NODE     2           /* moves a node takes part in at once, default */
#define CMAP_MAX_MOVES_PER_NODE 64
struct cmap_settings {
    bool paused;             /* no move starts (moves under way finish) */
    bool auto_rebalance;     /* the leader plans moves by itself when placement drifts */
    uint64_t rate;           /* bytes/s per move, 0: unlimited */
    uint32_t moves_per_node; /* 1 .. CMAP_MAX_MOVES_PER_NODE */
};

struct cmap {
    uint64_t epoch;
    struct cmap_settings settings;
    struct cmap_node *nodes; /* index == num */
    uint32_t n_nodes, cap_nodes;
    uint32_t *by_id;          /* node numbers ordered by id, n_nodes of them */
    struct cmap_coll **colls; /* ordered by name */
    uint32_t n_colls, cap_colls;
    struct cmap_move *moves; /* in the order they were added */
    uint32_t n_moves, cap_moves;
    /* Request-id memory: a ring of dedup_cap slots, n_seen used, the oldest at seen_head. */
    struct cmap_seen *seen;
    uint32_t dedup_cap, n_seen, seen_head;
    struct cmap_coord *coords; /* ordered by id, at most CMAP_MAX_COORDS */
    uint32_t n_coords, cap_coords;
    struct cmap_alias *aliases; /* ordered by name */
    uint32_t n_aliases, cap_aliases;
};

/* ---- the map ----------------------------------------------------------------------------- */

/* An empty map at epoch 0 that remembers `dedup_cap` request ids (0: CMAP_DEDUP_DEFAULT; at
 * most CMAP_DEDUP_MAX, else DV_EINVAL). Every coordinator of a group must use the same value
 * (it is part of the state; a restored snapshot brings its own). DV_ENOMEM. */
int cmap_init(struct cmap *m, uint32_t dedup_cap);

/* Frees everything the map holds and leaves it empty (cmap_free twice is safe). */
void cmap_free(struct cmap *m);

/* Makes `dst` (uninitialised) a deep copy of `src`. On failure dst holds nothing. */
int cmap_copy(struct cmap *dst, const struct cmap *src);

/* True when both maps hold the same state, request-id memory included. */
bool cmap_equal(const struct cmap *a, const struct cmap *b);

/* ---- lookups ----------------------------------------------------------------------------- */

const struct cmap_node *cmap_node_find(const struct cmap *m, const char *id);

/* The node numbered `num`, NULL if there is none. */
const struct cmap_node *cmap_node_get(const struct cmap *m, uint32_t num);

const struct cmap_coll *cmap_coll_find(const struct cmap *m, const char *name);

/* The alias `name`, NULL if there is none. */
const struct cmap_alias *cmap_alias_find(const struct cmap *m, const char *name);

/* The collection `name` names: a collection of that name, else the collection of the alias of
 * that name; NULL when neither exists. What requests from clients use. */
const struct cmap_coll *cmap_coll_resolve(const struct cmap *m, const char *name);

/* The index definition of `key` in collection `c`, NULL if there is none. */
const struct cmap_pindex *cmap_pindex_find(const struct cmap_coll *c, const char *key);

/* Partition `part` of a collection, NULL if either does not exist. */
const struct cmap_part *cmap_part_find(const struct cmap *m, const char *coll, uint32_t part);

/* The move (coll, part, from, to) by node numbers, NULL if there is none. */
const struct cmap_move *cmap_move_find(const struct cmap *m, const char *coll, uint32_t part,
                                       uint32_t from, uint32_t to);

/* A URL as the map keeps it (printable, no spaces, at most CMAP_URL_MAX bytes). */
bool cmap_url_valid(const char *s, bool may_be_empty);

/* A Raft address: "host:port", a URL's characters, a non-empty host and a port 1..65535. */
bool cmap_raft_addr_valid(const char *s);

/* The coordinator with Raft id `id`, NULL if there is none. */
const struct cmap_coord *cmap_coord_find(const struct cmap *m, uint64_t id);

/* A replica held by a node, as the map places it. */
struct cmap_held {
    const struct cmap_coll *coll;
    uint32_t part;
    bool primary;
    int state; /* enum cmap_replica_state */
    uint64_t epoch;
};

/* Lists the replicas the map places on node `num`, by collection name then partition, into a
 * malloc'd array the caller frees (*out is NULL when *n == 0). DV_ENOMEM. */
int cmap_node_parts(const struct cmap *m, uint32_t num, struct cmap_held **out, size_t *n);

/* ---- commands ---------------------------------------------------------------------------- */

enum cmap_cmd_type {
    CMAP_CMD_NODE_REGISTER = 1, /* join or re-join */
    CMAP_CMD_NODE_STATE = 2,    /* heartbeat and/or state change */
    CMAP_CMD_NODE_WEIGHT = 3,
    CMAP_CMD_NODE_REMOVE = 4,
    CMAP_CMD_COLL_CREATE = 5,
    CMAP_CMD_COLL_DROP = 6,
    CMAP_CMD_PART_SET = 7, /* new replica list of one partition */
    CMAP_CMD_MOVE_ADD = 8,
    CMAP_CMD_MOVE_UPDATE = 9,
    CMAP_CMD_MOVE_REMOVE = 10,
    CMAP_CMD_BATCH = 11, /* only as a whole entry: cmap_batch_pack */
    CMAP_CMD_COORD_SET = 12,
    CMAP_CMD_COORD_REMOVE = 13,
    CMAP_CMD_SETTINGS = 14,       /* rebalancing settings */
    CMAP_CMD_REPLICA_STATE = 15,  /* the state of one replica of a partition */
    CMAP_CMD_PART_PROMOTE = 16,   /* another replica becomes primary: term + 1 */
    CMAP_CMD_REPLICA_MOVE = 17,   /* a replica is re-created on another node (re-replication) */
    CMAP_CMD_REPLICA_ADD = 18,    /* one more replica of a partition (replication factor up) */
    CMAP_CMD_REPLICA_REMOVE = 19, /* one replica less (replication factor down) */
    CMAP_CMD_COLL_SET = 20,       /* a collection's replication and write consistency factors */
    CMAP_CMD_ALIAS = 21,          /* create, delete and rename aliases, all or nothing */
    CMAP_CMD_COLL_INDEX = 22,     /* record or forget a payload index definition */
    CMAP_CMD_TYPE_COUNT = 23,     /* new types go here: numbers in Raft logs keep their meaning */
};

/* "node_register", ...; "unknown" outside the enum. */
const char *cmap_cmd_type_name(int type);

/* One partition of a collection-create command: n replicas given as indexes into the
 * command's node table, and the primary as an index into `nodes` (0 .. n-1). */
struct cmap_cmd_part {
    uint32_t n;
    uint32_t primary;
    uint32_t nodes[CMAP_MAX_REPLICAS];
};

/*
 * A command. `type` selects the member of `u`; `req` is its request id. Arrays (reports,
 * node_ids, parts) are malloc'd by cmap_cmd_decode and place_fill_create and freed by
 * cmap_cmd_free; a caller that fills them with its own memory must not call cmap_cmd_free.
 */
struct cmap_cmd {
    int type; /* enum cmap_cmd_type */
    struct cmap_reqid req;
    union {
        /* A new id gets the next number, `weight` and `state` (JOINING or ALIVE). A known id
         * (even a removed one) keeps its number: URLs, heartbeat and reports are updated and
         * the state becomes `state`, except that a DRAINING node stays DRAINING; its weight
         * is kept (change it with CMAP_CMD_NODE_WEIGHT), unless the node was removed. */
        struct {
            char id[CMAP_ID_MAX + 1];
            char url[CMAP_URL_MAX + 1];
            char http_url[CMAP_URL_MAX + 1];
            char search_url[CMAP_URL_MAX + 1]; /* may be empty */
            double weight;
            int state;
            uint64_t heartbeat_ms;
            struct cmap_report *reports;
            uint32_t n_reports;
        } reg;
        /* state: ALIVE, SUSPECT, DEAD, DRAINING or CMAP_NODE_KEEP; heartbeat_ms 0 keeps the
         * last heartbeat; has_reports replaces the reported replicas with `reports`. A
         * removed node cannot change (DV_EINVAL): it must register again. */
        struct {
            char id[CMAP_ID_MAX + 1];
            int state;
            uint64_t heartbeat_ms;
            bool has_reports;
            struct cmap_report *reports;
            uint32_t n_reports;
        } node_state;
        struct {
            char id[CMAP_ID_MAX + 1];
            double weight;
        } node_weight;
        /* Marks the node REMOVED. Without `force` a node that still holds replicas is
         * DV_EBUSY; with it, the node leaves every replica list (the next replica becomes
         * primary, the partition's epoch is bumped) and its moves become FAILED. */
        struct {
            char id[CMAP_ID_MAX + 1];
            bool force;
        } node_remove;
        /* node_ids: the nodes the placement names, parts: cfg.n_parts partitions.
         * DV_EEXIST when the name is taken. */
        struct {
            char name[CMAP_NAME_MAX + 1];
            struct cmap_coll_cfg cfg;
            char (*node_ids)[CMAP_ID_MAX + 1];
            uint32_t n_node_ids;
            struct cmap_cmd_part *parts;
        } coll_create;
        /* Drops the collection and its moves. */
        struct {
            char name[CMAP_NAME_MAX + 1];
        } coll_drop;
        /* Replaces the replica list of one partition (1 .. CMAP_MAX_REPLICAS distinct nodes
         * that are not removed; primary is an index into nodes) and bumps its epoch. When
         * expect_epoch is not 0 and differs from the partition's epoch: DV_ESTALE. */
        struct {
            char coll[CMAP_NAME_MAX + 1];
            uint32_t part;
            uint64_t expect_epoch;
            uint32_t n;
            uint32_t primary;
            char nodes[CMAP_MAX_REPLICAS][CMAP_ID_MAX + 1];
        } part_set;
        /* Add: a new record in `state`, DV_EEXIST if (coll, part, from, to) has one. Update:
         * moves forward PLANNED -> COPYING -> CATCHING_UP -> SWITCHING -> DONE, or to FAILED
         * from any state but DONE (DONE and FAILED are final). SWITCHING -> DONE is the
         * switch itself: `to` takes `from`'s place in the partition's replica list (primary
         * if `from` was), the partition's epoch is bumped; DV_ESTALE when the list does not
         * hold `from` or already holds `to`. Remove: `state` is ignored. */
        struct {
            char coll[CMAP_NAME_MAX + 1];
            uint32_t part;
            char from[CMAP_ID_MAX + 1];
            char to[CMAP_ID_MAX + 1];
            int state;
        } move;
        /* Adds coordinator `id` or replaces its addresses and role (any role may follow any
         * other). DV_EINVAL for id 0, a raft_addr that is not host:port, a bad client_url
         * or an unknown role; DV_EEXIST when another coordinator has that raft_addr;
         * DV_EFULL beyond CMAP_MAX_COORDS. */
        struct {
            uint64_t id;
            char raft_addr[CMAP_URL_MAX + 1];
            char client_url[CMAP_URL_MAX + 1];
            int role;
        } coord_set;
        /* Deletes the record of coordinator `id`; DV_ENOTFOUND when there is none. */
        struct {
            uint64_t id;
        } coord_remove;
        /* Sets the state of replica `node` of a partition (epoch bumped when it changes).
         * DV_ENOTFOUND (collection, partition, or node not among its replicas), DV_ESTALE when
         * expect_term / expect_epoch (0: any) differ, DV_EINVAL for an unknown state or for
         * making the primary anything but ACTIVE (it leaves by a promote). A replica set
         * ACTIVE in a partition without a primary becomes its primary (term + 1). */
        struct {
            char coll[CMAP_NAME_MAX + 1];
            uint32_t part;
            char node[CMAP_ID_MAX + 1];
            int state;
            uint64_t expect_term, expect_epoch;
        } replica_state;
        /* Makes ACTIVE replica `node` the primary: term + 1, the old primary becomes DEAD (it
         * may hold records nobody acknowledged: it must catch up), epoch bumped. Promoting the
         * primary changes nothing. DV_EINVAL for a node that is not an ACTIVE replica,
         * DV_ESTALE when expect_term (0: any) differs, DV_ENOTFOUND. */
        struct {
            char coll[CMAP_NAME_MAX + 1];
            uint32_t part;
            char node[CMAP_ID_MAX + 1];
            uint64_t expect_term;
        } promote;
        /* Replaces the replica on `from` (not the primary: DV_EINVAL) by a new one on `to`
         * (a node that is not removed and holds no replica of the partition: DV_EINVAL), in
         * state DEAD: the leader's recovery copies it from the primary. Epoch bumped.
         * DV_ENOTFOUND when `from` holds no replica; DV_ESTALE when expect_term (0: any)
         * differs. Re-replication after a node stayed dead too long. */
        struct {
            char coll[CMAP_NAME_MAX + 1];
            uint32_t part;
            char from[CMAP_ID_MAX + 1];
            char to[CMAP_ID_MAX + 1];
            uint64_t expect_term;
        } replica_move;
        /* ADD: a replica of the partition on `node` (not removed, not a replica already:
         * DV_EINVAL; DV_EFULL beyond CMAP_MAX_REPLICAS) in state DEAD, for the recovery to copy.
         * REMOVE: the replica on `node` leaves the partition (the primary: DV_EINVAL, promote
         * another first; DV_ENOTFOUND when `node` holds none). Both bump the epoch; DV_ESTALE
         * when expect_term (0: any) differs. */
        struct {
            char coll[CMAP_NAME_MAX + 1];
            uint32_t part;
            char node[CMAP_ID_MAX + 1];
            uint64_t expect_term;
        } replica_op;
        /* Sets the replication factor (0: kept) and write_consistency_factor (0: kept) of a
         * collection, each 1 .. CMAP_MAX_RF, and its default search ef (0: kept),
         * 1 .. PROTO_MAX_CFG_EF (DV_EINVAL otherwise). The leader then adds or removes
         * replicas until every partition has rf of them. DV_ENOTFOUND. Encoded as
         * [name, rf, wcf] or, with ef_search, [name, rf, wcf, ef_search]. */
        struct {
            char name[CMAP_NAME_MAX + 1];
            uint32_t rf, wcf, ef_search;
        } coll_set;
        /* Applies acts[n] (1 .. CMAP_MAX_ALIAS_OPS) in order, all or nothing: on the first
         * failing action the map is unchanged and the result names it (action number, alias).
         * CREATE: DV_EINVAL for a bad name, DV_ENOTFOUND for an unknown collection, DV_EEXIST
         * when the name is a collection's or an alias's; DELETE: DV_ENOTFOUND for an unknown
         * alias; RENAME: both; DV_EFULL beyond CMAP_MAX_ALIASES. `acts` is malloc'd (freed by
         * cmap_cmd_free). */
        struct {
            struct cmap_alias_action *acts;
            uint32_t n;
        } alias;
        /* Records (op CMAP_INDEX_CREATE, replacing the kind of a key already there) or
         * forgets (CMAP_INDEX_DROP; a key not there changes nothing but succeeds) a payload index
         * definition of collection `name`. DV_ENOTFOUND for an unknown collection, DV_EINVAL
         * for a bad key or op, DV_EFULL beyond CMAP_MAX_INDEXES. */
        struct {
            char name[CMAP_NAME_MAX + 1];
            uint32_t op;
            uint32_t kind;
            char key[CMAP_KEY_MAX + 1];
        } coll_index;
        /* Changes the settings whose CMAP_SET_* bit is in `mask` to the values of `set`.
         * DV_EINVAL for moves_per_node outside 1 .. CMAP_MAX_MOVES_PER_NODE. */
        struct {
            uint32_t mask;
            struct cmap_settings set;
        } settings;
    } u;
};

enum { CMAP_INDEX_CREATE = 1, CMAP_INDEX_DROP = 2 };

enum {
    CMAP_SET_PAUSED = 1,
    CMAP_SET_AUTO = 2,
    CMAP_SET_RATE = 4,
    CMAP_SET_MOVES_PER_NODE = 8,
    CMAP_SET_ALL = 15,
};

/* A request id from a client id and its sequence number. */
static inline struct cmap_reqid cmap_reqid_make(uint64_t client, uint64_t seq)
{
    struct cmap_reqid r = {client, seq};
    return r;
}

/*
 * Appends the encoding of `cmd` to `out`, padded with zero bytes so that the bytes appended
 * are a multiple of 8 (a whole Raft entry). Checks the shape only (known type, request id not
 * zero, strings that fit and hold no NUL, counts within limits, indexes within the command);
 * whether the command makes sense for the map is decided when it is applied. DV_EINVAL with
 * errmsg (DV_ERRMSG_SIZE bytes) naming the field, DV_ETOOBIG, DV_ENOMEM; on error `out` is
 * left as it was.
 */
int cmap_cmd_encode(const struct cmap_cmd *cmd, struct buf *out, char *errmsg);

/*
 * Decodes one command (not a batch) of exactly `n` bytes, zero padding included, into `cmd`.
 * DV_EPROTO for anything malformed (wrong version, unknown type, truncation, a count the
 * input cannot hold, a string too long, bytes after the padding), DV_ENOMEM; errmsg names
 * the field. On success call cmap_cmd_free(); on failure cmd owns nothing.
 */
int cmap_cmd_decode(const void *p, size_t n, struct cmap_cmd *cmd, char *errmsg);

/* Frees the arrays a decoded (or place_fill_create'd) command holds and zeroes it. */
void cmap_cmd_free(struct cmap_cmd *cmd);

/*
 * Packs `n` (1 .. 65536) encoded commands (each as cmap_cmd_encode wrote it, padding
 * included) into one batch entry appended to `out`, padded to a multiple of 8. Apply answers
 * with one result per command, in order. The inputs are checked to be single well-formed
 * msgpack commands. DV_EINVAL, DV_ETOOBIG (more than CMAP_MAX_ENTRY bytes), DV_ENOMEM.
 */
int cmap_batch_pack(const void *const *cmds, const size_t *lens, size_t n, struct buf *out,
                    char *errmsg);

/* ---- applying ---------------------------------------------------------------------------- */

/* Results of one entry: one per command, in order. Reused across applies; `r` is malloc'd. */
struct cmap_results {
    struct cmap_result *r;
    uint32_t n, cap;
};

void cmap_results_free(struct cmap_results *res);

/*
 * Applies one command to the map and puts its result in `res`. Returns DV_OK (whatever the
 * command's own result) or DV_ENOMEM, in which case the map is unchanged.
 */
int cmap_apply_cmd(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res);

/*
 * Applies one entry (a command or a batch) of `n` bytes: `res` gets one result per command
 * (an entry that cannot be decoded at all gives one DV_EPROTO result; a batch member that
 * cannot be decoded gives DV_EPROTO for that member). Returns DV_OK or DV_ENOMEM: then the
 * commands applied before the failure stay applied, and applying the entry again answers them
 * from the request-id memory and carries on, so a retry by raft is safe.
 */
int cmap_apply(struct cmap *m, const void *p, size_t n, struct cmap_results *res);

/* ---- snapshots --------------------------------------------------------------------------- */

/*
 * Appends the whole map to `out`: a 24-byte header (magic "CMAP", version, body length,
 * CRC32C of the body) and a msgpack body (docs/architecture.md, "The cluster map").
 * DV_ETOOBIG beyond CMAP_MAX_SNAPSHOT, DV_ENOMEM.
 */
int cmap_encode(const struct cmap *m, struct buf *out);

/*
 * Builds `out` (uninitialised) from an encoded map of exactly `n` bytes. Checks the header,
 * the CRC, every count against the bytes left and every invariant of the map (DV_ECORRUPT
 * naming the field in errmsg; DV_EPROTO for an unknown version; DV_ENOMEM). On failure out
 * holds nothing.
 */
int cmap_decode(const void *p, size_t n, struct cmap *out, char *errmsg);

#endif
