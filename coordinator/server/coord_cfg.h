/* coord_cfg.h - dvec-coord's configuration: the YAML schema and its struct. */
#ifndef DV_COORD_CFG_H
#define DV_COORD_CFG_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"

struct coord_cfg {
    uint64_t id;                  /* raft id of this coordinator, 1.. */
    bool id_from_hostname;        /* id = 1 + the host name's ordinal */
    char *advertise;              /* client URL told to others; NULL: group entry or listen */
    char *raft_listen;            /* raft's bind address; NULL: derived (craft_bind_addr) */
    char *raft_advertise;         /* raft address of a coordinator not in `group` */
    char *data_dir;               /* required */
    char *listen;                 /* native protocol URL for clients and nodes */
    char *http;                   /* /metrics, /healthz, /readyz; "" disables */
    struct cfg_strlist group;     /* "ID=RAFT_HOST:PORT=CLIENT_URL" per coordinator */
    bool join;                    /* start empty and wait to be added to a running group */
    uint64_t election_timeout_ns; /* raft */
    uint64_t heartbeat_ns;        /* raft */
    uint64_t snapshot_threshold;  /* raft entries between snapshots */
    uint64_t request_timeout_ns;  /* calls to nodes and to the leader */
    uint64_t node_suspect_ns;     /* silent node: suspect */
    uint64_t node_dead_ns;        /* silent node: dead */
    uint64_t dead_timeout_ns;     /* dead node: its replicas re-created on other nodes */
    uint64_t reconcile_every_ns;  /* leader's liveness and reconcile pace */
    uint64_t workers;             /* request threads; 0: 4 per CPU, at least 8 */
    uint64_t contexts;
    uint64_t max_message;
    uint64_t max_batch; /* points per client write */
    uint64_t node_inflight;
    bool node_search_port;
    uint64_t connect_wait_ns;
    uint64_t move_grace_ns;
    uint64_t write_retry_ns;
    uint64_t shutdown_timeout_ns;
    int log_level;
};

extern const struct cfg_field coord_cfg_schema[];

#endif
