/* shard_http.c - dvec-shard's Prometheus metrics and its /metrics, /healthz, /readyz. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "pull.h"
#include "repl.h"
#include "shard_http.h"

enum outcome { OUT_OK, OUT_STALE, OUT_CLIENT, OUT_SERVER, OUT_SHUTDOWN, OUT_COUNT };

static const char *const outcome_names[OUT_COUNT] = {"ok", "stale_map", "client_error",
                                                     "server_error", "shutdown"};

struct shard_metrics {
    struct metrics *reg;
    struct node *node;
    struct rpcsrv *_Atomic server;
    struct metrics_counter *req[MSG_TYPE_COUNT][OUT_COUNT];
    struct metrics_histogram *lat[MSG_TYPE_COUNT];
    struct metrics_counter *search_port; /* requests of the search port */
};

struct shard_http {
    struct httpd *h;
};

static enum outcome outcome_of(int code)
{
    switch (code) {
    case DV_OK:
        return OUT_OK;
    case DV_ESTALE:
        return OUT_STALE;
    case DV_ESHUTDOWN:
        return OUT_SHUTDOWN;
    case DV_EINVAL:
    case DV_ENOTFOUND:
    case DV_EEXIST:
    case DV_EDIM:
    case DV_ENAN:
    case DV_EFULL:
    case DV_ERANGE:
    case DV_ETYPE:
    case DV_EUNKNOWN_KEY:
    case DV_EPARSE:
    case DV_ETOOBIG:
    case DV_EPROTO:
    case DV_EDELETED:
        return OUT_CLIENT;
    default:
        return OUT_SERVER;
    }
}

/* ---- collector: replicas, computed at scrape time ---------------------------------------- */

struct emit_ctx {
    struct metrics_writer *w;
    struct node *node;
    int rc;
    uint64_t replicas, fenced;
};

/* One secondary of a replica this node is primary of. */
struct lag_ctx {
    struct emit_ctx *e;
    const char *coll, *part;
    uint32_t live;
};

static void emit_lag(void *arg, const char *node_id, uint64_t lag, bool failed)
{
    struct lag_ctx *l = arg;
    l->live += !failed;
    if (l->e->rc != DV_OK || failed)
        return;
    const char *lbl[] = {"collection", l->coll, "partition", l->part, "secondary", node_id, NULL};
    l->e->rc = metrics_emit_gauge(l->e->w, "dvec_shard_replication_lag_records",
                                  "Records a secondary lacks of those this primary logged (0 when "
                                  "it has every write; writes wait for it).",
                                  lbl, (double)lag);
}

static void emit_replica(void *arg, struct node_replica *r)
{
    struct emit_ctx *e = arg;
    struct part_info info;
    char part[16];
    part_get_info(r->part, &info);
    bool fenced = node_fenced(e->node, r);
    snprintf(part, sizeof part, "%u", r->partition);
    const char *lbl[] = {"collection", r->coll, "partition", part, NULL};
    struct {
        const char *name, *help;
        double v;
        bool counter;
    } s[] = {
        {"dvec_shard_replica_points", "Live points in the replica.", (double)info.points, false},
        {"dvec_shard_replica_deleted_points", "Deleted points not yet compacted away.",
         (double)info.deleted, false},
        {"dvec_shard_replica_wal_bytes", "Bytes in the replica's WAL.", (double)info.wal_bytes,
         false},
        {"dvec_shard_replica_payload_bytes", "Bytes of payloads.", (double)info.payload_bytes,
         false},
        {"dvec_shard_replica_applied_lsn", "LSN of the last write applied.",
         (double)info.applied_lsn, false},
        {"dvec_shard_replica_checkpoint_age_seconds",
         "Seconds since the replica's last checkpoint (or since it was opened).",
         (double)info.ckpt_age_ms / 1e3, false},
        {"dvec_shard_replica_checkpoint_stall_seconds",
         "How long the last checkpoint held writes back.", (double)info.ckpt_stall_ms / 1e3, false},
        {"dvec_shard_replica_epoch", "Highest cluster map epoch seen for the partition.",
         (double)r->epoch, false},
        {"dvec_shard_replica_failed", "1 when the replica refuses writes after an IO error.",
         info.failed ? 1.0 : 0.0, false},
        {"dvec_shard_replica_fenced",
         "1 while the replica is fenced: writes refused because it is being moved.",
         fenced ? 1.0 : 0.0, false},
        {"dvec_shard_replica_checkpoints", "Checkpoints written since the replica was opened.",
         (double)info.ckpt_count, true},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0] && e->rc == DV_OK; i++)
        e->rc = s[i].counter ? metrics_emit_counter(e->w, s[i].name, s[i].help, lbl, s[i].v)
                             : metrics_emit_gauge(e->w, s[i].name, s[i].help, lbl, s[i].v);
    if (e->rc == DV_OK)
        e->rc =
            metrics_emit_gauge(e->w, "dvec_shard_replica_term",
                               "Highest primary term the replica has seen.", lbl, (double)r->term);
    struct lag_ctx l = {e, r->coll, part, 0};
    repl_each_target(r->repl, emit_lag, &l);
    if (e->rc == DV_OK && l.live > 0)
        e->rc = metrics_emit_gauge(e->w, "dvec_shard_replica_secondaries",
                                   "In-sync secondaries this primary replicates its writes to.",
                                   lbl, (double)l.live);
    e->replicas++;
    e->fenced += fenced;
}

static int collect(void *arg, struct metrics_writer *w)
{
    struct shard_metrics *sm = arg;
    struct emit_ctx e = {w, sm->node, DV_OK, 0, 0};
    node_foreach(sm->node, emit_replica, &e);
    if (e.rc != DV_OK)
        return e.rc;
    int rc = metrics_emit_gauge(w, "dvec_shard_replicas", "Replicas this node serves.", NULL,
                                (double)e.replicas);
    if (rc == DV_OK)
        rc = metrics_emit_gauge(w, "dvec_shard_replicas_fenced",
                                "Replicas fenced for a move: their writes are refused.", NULL,
                                (double)e.fenced);
    struct pull_stats ps;
    pull_get_stats(sm->node, &ps);
    if (rc == DV_OK)
        rc = metrics_emit_gauge(w, "dvec_shard_pulls_running",
                                "Replica pulls copying a snapshot or catching up now.", NULL,
                                (double)ps.running);
    if (rc == DV_OK)
        rc = metrics_emit_counter(w, "dvec_shard_pulls_finished_total",
                                  "Replica pulls that became a replica of this node.", NULL,
                                  (double)ps.finished);
    if (rc == DV_OK)
        rc = metrics_emit_counter(w, "dvec_shard_pulls_failed_total",
                                  "Replica pulls that stopped with an error.", NULL,
                                  (double)ps.failed);
    if (rc == DV_OK)
        rc = metrics_emit_counter(w, "dvec_shard_pull_bytes_total",
                                  "Snapshot and WAL bytes replica pulls read from source nodes.",
                                  NULL, (double)ps.bytes);
    if (rc == DV_OK)
        rc = metrics_emit_counter(w, "dvec_shard_pulls_resumed_total",
                                  "Replica catch-ups that resumed from this node's own replica "
                                  "(WAL delta, no snapshot).",
                                  NULL, (double)ps.resumed);
    if (rc == DV_OK)
        rc = metrics_emit_counter(w, "dvec_shard_pull_records_cut_total",
                                  "Records cut from returning replicas: written by an old primary, "
                                  "never acknowledged.",
                                  NULL, (double)ps.records_cut);
    if (rc == DV_OK)
        rc = metrics_emit_gauge(w, "dvec_shard_replicas_failed_to_open",
                                "Replicas found on disk that did not open at start.", NULL,
                                (double)node_open_failures(sm->node));
    struct rpcsrv *s = atomic_load(&sm->server);
    if (rc == DV_OK && s)
        rc = metrics_emit_gauge(w, "dvec_shard_requests_in_flight", "Requests queued or running.",
                                NULL, (double)rpcsrv_inflight(s));
    return rc;
}

struct shard_metrics *shard_metrics_new(struct node *n)
{
    char err[DV_ERRMSG_SIZE];
    struct shard_metrics *sm = calloc(1, sizeof *sm);
    if (sm == NULL || metrics_new(&sm->reg) != DV_OK)
        goto err;
    sm->node = n;
    for (int t = 0; t < MSG_TYPE_COUNT; t++) {
        /* Node operations only: client API types and gaps are answered as errors. */
        if (t > MSG_REPLICA_FENCE || !msg_type_known(t))
            continue;
        const char *op = msg_type_name(t);
        const char *lat_lbl[] = {"op", op, NULL};
        if (metrics_histogram(sm->reg, "dvec_shard_request_duration_seconds",
                              "Time from receiving a request to its reply being ready.", NULL, 0,
                              lat_lbl, &sm->lat[t], err) != DV_OK)
            goto err;
        for (int o = 0; o < OUT_COUNT; o++) {
            const char *lbl[] = {"op", op, "outcome", outcome_names[o], NULL};
            if (metrics_counter(sm->reg, "dvec_shard_requests",
                                "Requests answered, by operation and outcome.", lbl, &sm->req[t][o],
                                err) != DV_OK)
                goto err;
        }
    }
    if (metrics_counter(sm->reg, "dvec_shard_search_port_requests",
                        "Requests answered on the search port (search_listen); they count in "
                        "dvec_shard_requests too.",
                        NULL, &sm->search_port, err) != DV_OK)
        goto err;
    if (metrics_add_collector(sm->reg, collect, sm) != DV_OK ||
        metrics_add_process(sm->reg) != DV_OK)
        goto err;
    return sm;
err:
    log_error("cannot set up metrics", "error=%s", err);
    shard_metrics_free(sm);
    return NULL;
}

void shard_metrics_set_server(struct shard_metrics *sm, struct rpcsrv *s)
{
    if (sm)
        atomic_store(&sm->server, s);
}

void shard_metrics_free(struct shard_metrics *sm)
{
    if (sm == NULL)
        return;
    metrics_free(sm->reg);
    free(sm);
}

void shard_metrics_done(void *arg, const struct rpcsrv_result *res, uint64_t ns)
{
    struct shard_metrics *sm = arg;
    if (sm == NULL)
        return;
    int t =
        res->type >= 0 && res->type < MSG_TYPE_COUNT && sm->lat[res->type] ? res->type : MSG_ERROR;
    metrics_counter_inc(sm->req[t][outcome_of(res->code)]);
    metrics_histogram_observe(sm->lat[t], (double)ns * 1e-9);
}

void shard_metrics_done_search(void *arg, const struct rpcsrv_result *res, uint64_t ns)
{
    struct shard_metrics *sm = arg;
    if (sm == NULL)
        return;
    metrics_counter_inc(sm->search_port);
    shard_metrics_done(arg, res, ns);
}

/* ---- HTTP -------------------------------------------------------------------------------- */

static bool ready(void *arg, struct buf *reason)
{
    struct handle_ctx *hc = arg;
    if (atomic_load(&hc->draining)) {
        buf_appendf(reason, "shutting down");
        return false;
    }
    return true;
}

int shard_http_start(const char *url, struct shard_metrics *sm, struct handle_ctx *hc,
                     struct shard_http **out, char *errmsg)
{
    struct shard_http *sh = calloc(1, sizeof *sh);
    if (sh == NULL)
        return DV_ENOMEM;
    int rc = httpd_new(url, &sh->h, errmsg);
    if (rc == DV_OK && sm)
        rc = httpd_add_metrics(sh->h, sm->reg, errmsg);
    if (rc == DV_OK)
        rc = httpd_add_health(sh->h, ready, hc, errmsg);
    if (rc == DV_OK)
        rc = httpd_start(sh->h, errmsg);
    if (rc != DV_OK) {
        dv_errmsg_prefix(errmsg, "http %s", url);
        httpd_free(sh->h);
        free(sh);
        return rc;
    }
    uint16_t port = 0;
    httpd_port(sh->h, &port);
    log_info("http listening", "url=%s port=%u", url, (unsigned)port);
    *out = sh;
    return DV_OK;
}

void shard_http_stop(struct shard_http *sh)
{
    if (sh == NULL)
        return;
    httpd_free(sh->h);
    free(sh);
}
