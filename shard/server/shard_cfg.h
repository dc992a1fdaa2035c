/* shard_cfg.h - dvec-shard's configuration: the YAML schema and its struct. */
#ifndef DV_SHARD_CFG_H
#define DV_SHARD_CFG_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"

enum shard_fsync {
    SHARD_FSYNC_REPLICA = 0, /* each replica as its create request asked */
    SHARD_FSYNC_ALWAYS = 1,
    SHARD_FSYNC_INTERVAL = 2,
    SHARD_FSYNC_NEVER = 3,
};

struct shard_cfg {
    char *listen;           /* NNG URL of the native protocol */
    char *advertise;        /* native URL told to others; NULL: listen */
    char *http;             /* HTTP URL for /metrics, /healthz, /readyz; "" disables */
    char *http_advertise;   /* HTTP URL told to others; NULL: derived */
    char *search_listen;    /* tcp://HOST:PORT of the search port (tcpsrv.h); "" disables */
    char *search_advertise; /* search port URL told to the coordinators; NULL: derived */
    uint64_t search_max_conns;
    char *data_dir; /* required */
    char *node_id;  /* NULL: the one in data_dir/node.id (generated on first start) */
    bool node_id_from_hostname;
    bool rejoin_if_removed;
    struct cfg_strlist coordinators;
    double weight;               /* capacity weight in placement */
    uint64_t report_interval_ns; /* registration / heartbeat period */
    uint64_t workers;            /* 0: one per CPU */
    uint64_t contexts;           /* requests in flight */
    int fsync;                   /* enum shard_fsync */
    uint64_t fsync_interval_ns;
    uint64_t max_message;
    uint64_t ckpt_wal_bytes;
    uint64_t ckpt_interval_ns;
    uint64_t insert_threads;
    uint64_t capacity;
    uint64_t shutdown_timeout_ns;
    uint64_t snapshot_idle_ns;
    int log_level; /* enum log_level */
};

extern const struct cfg_field shard_cfg_schema[];

#endif
