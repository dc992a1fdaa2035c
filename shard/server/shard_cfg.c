/* shard_cfg.c - dvec-shard's configuration schema (docs/configuration.md lists it). */
#include <stddef.h>

#include "shard_cfg.h"

static const char *const fsync_values[] = {"replica", "always", "interval", "never", NULL};
static const char *const level_values[] = {"debug", "info", "warn", "error", NULL};

#define F(k, t, m) .key = k, .type = t, .offset = offsetof(struct shard_cfg, m)
const struct cfg_field shard_cfg_schema[] = {
    {F("listen", CFG_STRING, listen), .def = "tcp://127.0.0.1:7400",
     .doc = "NNG URL the native protocol listens on (coordinators and other nodes)"},
    {F("advertise", CFG_STRING, advertise),
     .doc = "URL coordinators and other nodes dial this node on (a stable DNS name in a "
            "multi-host setup); unset: `listen`, which must then name a host, not 0.0.0.0"},
    {F("http", CFG_STRING, http), .def = "http://127.0.0.1:7480",
     .doc = "HTTP URL for /metrics, /healthz and /readyz; empty disables it"},
    {F("http_advertise", CFG_STRING, http_advertise),
     .doc = "HTTP URL reported to the coordinators (dvecctl status shows it); unset: `http`, "
            "or the host of `advertise` with the port of `http` when `http` is 0.0.0.0"},
    {F("search_listen", CFG_STRING, search_listen), .def = "tcp://127.0.0.1:7401",
     .doc = "tcp://HOST:PORT of the search port: native requests over plain TCP, a thread per "
            "connection, one wake-up per request; libdvec sends its one-hop searches there "
            "(docs/protocol.md, \"The search port\"); empty disables it"},
    {F("search_advertise", CFG_STRING, search_advertise),
     .doc = "search port URL reported to the coordinators, which give it to clients; unset: "
            "`search_listen`, or the host of `advertise` with the port of `search_listen` when "
            "`search_listen` is 0.0.0.0. A loopback `search_listen` is not reported when "
            "`advertise` names another host (clients elsewhere could not reach it)"},
    {F("search_max_conns", CFG_UINT64, search_max_conns), .def = "256", .min = "1", .max = "65536",
     .doc = "connections the search port serves at once; more are closed"},
    {F("data_dir", CFG_STRING, data_dir),
     .doc = "directory holding this node's replicas (required; locked while running)"},
    {F("node_id", CFG_STRING, node_id),
     .doc = "node id; unset: the id stored in data_dir/node.id, generated on first start"},
    {F("node_id_from_hostname", CFG_BOOL, node_id_from_hostname), .def = "false",
     .doc = "the node id is the host name (a StatefulSet's pod name, stable across restarts), "
            "so one file serves every pod; `node_id` wins when both are set"},
    {F("rejoin_if_removed", CFG_BOOL, rejoin_if_removed), .def = "false",
     .doc = "a node removed from the cluster (dvecctl node remove) registers again when it "
            "reports (replicas it holds that the map does not place on it are dropped); off: it "
            "stays out until `dvecctl node add`. The Kubernetes entrypoint sets it: a "
            "StatefulSet scaled down and up again brings the drained pod's id back"},
    {F("coordinators", CFG_STRLIST, coordinators),
     .doc = "NNG URLs of the coordinators this node registers with and reports to"},
    {F("weight", CFG_DOUBLE, weight), .def = "1", .min = "0.01", .max = "1000",
     .doc = "capacity weight: a node of weight 2 is placed about twice the partitions"},
    {F("report_interval", CFG_DURATION, report_interval_ns), .def = "1s", .min = "10ms",
     .max = "1m", .doc = "how often the node reports its replicas to a coordinator (heartbeat)"},
    {F("workers", CFG_UINT64, workers), .def = "0", .max = "256",
     .doc = "worker threads running requests; 0: one per CPU"},
    {F("contexts", CFG_UINT64, contexts), .def = "64", .min = "1", .max = "4096",
     .doc = "requests received concurrently (NNG contexts)"},
    {F("fsync", CFG_ENUM, fsync), .def = "replica", .values = fsync_values,
     .doc = "WAL fsync policy: as each replica was created with, or forced for all"},
    {F("fsync_interval", CFG_DURATION, fsync_interval_ns), .def = "100ms", .min = "1ms",
     .max = "1m", .doc = "period of the WAL fsync under the interval policy"},
    {F("max_message", CFG_BYTES, max_message), .def = "64MiB", .min = "64KiB", .max = "64MiB",
     .doc = "largest request accepted; up to twice this gets an error reply, more closes the "
            "connection"},
    {F("checkpoint.wal_bytes", CFG_BYTES, ckpt_wal_bytes), .def = "256MiB", .min = "1MiB",
     .doc = "checkpoint a replica when its WAL holds this much"},
    {F("checkpoint.interval", CFG_DURATION, ckpt_interval_ns), .def = "5m", .min = "1s",
     .max = "24h", .doc = "and at least this often while it is written"},
    {F("insert_threads", CFG_UINT64, insert_threads), .def = "2", .min = "1", .max = "64",
     .doc = "index threads per upsert batch"},
    {F("capacity", CFG_UINT64, capacity), .def = "0",
     .doc = "points this node accepts over all replicas; 0: unlimited"},
    {F("shutdown_timeout", CFG_DURATION, shutdown_timeout_ns), .def = "30s", .min = "1s",
     .max = "1h", .doc = "SIGTERM: longest time to drain and checkpoint before a forced exit"},
    {F("snapshot_idle", CFG_DURATION, snapshot_idle_ns), .def = "60s", .min = "1s", .max = "1h",
     .doc = "a snapshot session (rebalancing) unused this long is removed, and the WAL hold "
            "of a replica no peer read for this long is released"},
    {F("log_level", CFG_ENUM, log_level), .def = "info", .values = level_values,
     .doc = "least important log level written"},
    {.key = NULL},
};
