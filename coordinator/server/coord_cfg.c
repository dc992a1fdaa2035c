/* coord_cfg.c - dvec-coord's configuration schema (docs/configuration.md lists it). */
#include <stddef.h>

#include "coord_cfg.h"

static const char *const level_values[] = {"debug", "info", "warn", "error", NULL};

#define F(k, t, m) .key = k, .type = t, .offset = offsetof(struct coord_cfg, m)
const struct cfg_field coord_cfg_schema[] = {
    {F("id", CFG_UINT64, id), .def = "1", .min = "1", .max = "1000000",
     .doc = "raft id of this coordinator; one not in `group` joins the running group"},
    {F("id_from_hostname", CFG_BOOL, id_from_hostname), .def = "false",
     .doc = "the id is 1 + the number ending the host name (a StatefulSet's pod dvec-coord-2 "
            "is coordinator 3), so one file serves every pod; wins over `id`"},
    {F("data_dir", CFG_STRING, data_dir),
     .doc = "directory of the raft log and snapshots (required; locked while running)"},
    {F("listen", CFG_STRING, listen), .def = "tcp://127.0.0.1:7300",
     .doc = "NNG URL of the native protocol (clients, SDK, nodes)"},
    {F("advertise", CFG_STRING, advertise),
     .doc = "URL nodes and the other coordinators reach this one on; unset: its entry in "
            "`group`, else `listen` (which must then name a host, not 0.0.0.0)"},
    {F("http", CFG_STRING, http), .def = "http://127.0.0.1:7380",
     .doc = "HTTP URL of the REST API, /metrics, /healthz and /readyz; empty disables it"},
    {F("group", CFG_STRLIST, group), .def = "1=127.0.0.1:7310=tcp://127.0.0.1:7300",
     .doc = "the coordinators: ID=RAFT_HOST:PORT=CLIENT_URL each, the same list everywhere"},
    {F("join", CFG_BOOL, join), .def = "false",
     .doc = "start with an empty log and ask the coordinators of `group` to add this one to "
            "their running raft group (implied when `id` is not in `group`)"},
    {F("raft.listen", CFG_STRING, raft_listen),
     .doc = "HOST:PORT raft listens on (an IPv4 address); unset: this coordinator's raft "
            "address when it is an IPv4 address, else 0.0.0.0 with its port"},
    {F("raft.advertise", CFG_STRING, raft_advertise),
     .doc = "HOST:PORT the others dial this coordinator's raft on, for one not in `group`; "
            "unset: its entry in `group`"},
    {F("raft.election_timeout", CFG_DURATION, election_timeout_ns), .def = "150ms", .min = "20ms",
     .max = "60s", .doc = "raft election timeout (pre-vote is always on)"},
    {F("raft.heartbeat", CFG_DURATION, heartbeat_ns), .def = "15ms", .min = "5ms", .max = "10s",
     .doc = "raft heartbeat period"},
    {F("raft.snapshot_threshold", CFG_UINT64, snapshot_threshold), .def = "1024", .min = "8",
     .doc = "raft entries between snapshots of the cluster map"},
    {F("request_timeout", CFG_DURATION, request_timeout_ns), .def = "5s", .min = "10ms",
     .max = "10m", .doc = "longest wait for a node or the leader"},
    {F("nodes.suspect_after", CFG_DURATION, node_suspect_ns), .def = "3s", .min = "100ms",
     .doc = "a node silent this long becomes suspect"},
    {F("nodes.dead_after", CFG_DURATION, node_dead_ns), .def = "10s", .min = "200ms",
     .doc = "a node silent this long becomes dead"},
    {F("replicas.dead_timeout", CFG_DURATION, dead_timeout_ns), .def = "5m", .min = "1s",
     .max = "720h",
     .doc = "a node silent this long (after it is dead) has the replicas it held re-created on "
            "other nodes, so that every partition has its replication factor again"},
    {F("nodes.reconcile_every", CFG_DURATION, reconcile_every_ns), .def = "500ms", .min = "10ms",
     .max = "1m", .doc = "pace of the leader's liveness checks and reconciling"},
    {F("workers", CFG_UINT64, workers), .def = "0", .max = "1024",
     .doc = "threads running requests (they wait on nodes); 0: 4 per CPU, at least 8"},
    {F("contexts", CFG_UINT64, contexts), .def = "128", .min = "1", .max = "8192",
     .doc = "requests received concurrently (NNG contexts)"},
    {F("max_message", CFG_BYTES, max_message), .def = "64MiB", .min = "64KiB", .max = "64MiB",
     .doc = "largest request accepted (native message or REST body)"},
    {F("connect_wait", CFG_DURATION, connect_wait_ns), .def = "500ms", .min = "1ms", .max = "1h",
     .doc = "a request to a node or coordinator with no connection up waits this long for "
            "one, then fails as 'not connected' (a dead peer fails fast)"},
    {F("node_inflight", CFG_UINT64, node_inflight), .def = "2", .min = "1", .max = "1024",
     .doc = "search requests outstanding per node; searches arriving beyond that wait for a "
            "slot and travel to the node together, as one request"},
    {F("node_search_port", CFG_BOOL, node_search_port), .def = "true",
     .doc = "searches received on the native protocol go to the nodes' search ports (plain "
            "TCP, sent and waited for by the receiving thread) when every node of the search "
            "has one; off: over NNG"},
    {F("moves.grace", CFG_DURATION, move_grace_ns), .def = "5s", .min = "0s", .max = "1h",
     .doc = "a moved replica stays on its old node this long after the switch (requests routed "
            "with an older map are answered 'stale map' meanwhile), then it is dropped"},
    {F("moves.write_retry", CFG_DURATION, write_retry_ns), .def = "5s", .min = "0s", .max = "1m",
     .doc = "a write that meets a partition in the middle of its switch (writes paused) or a "
            "node with a newer map retries this long before failing"},
    {F("max_batch", CFG_UINT64, max_batch), .def = "65536", .min = "1", .max = "1048576",
     .doc = "points per write request"},
    {F("shutdown_timeout", CFG_DURATION, shutdown_timeout_ns), .def = "30s", .min = "1s",
     .max = "1h", .doc = "SIGTERM: longest time to drain before a forced exit"},
    {F("log_level", CFG_ENUM, log_level), .def = "info", .values = level_values,
     .doc = "least important log level written"},
    {.key = NULL},
};
