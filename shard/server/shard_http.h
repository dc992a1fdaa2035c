/* shard_http.h - dvec-shard's metrics (Prometheus) and its HTTP endpoints. */
#ifndef DV_SHARD_HTTP_H
#define DV_SHARD_HTTP_H

#include <stdint.h>

#include "handle.h"
#include "node.h"
#include "rpcsrv.h"

/*
 * Metrics of a node (docs/operations.md lists them): requests by operation and outcome,
 * latency histograms by operation, and, computed when scraped, replicas, points, tombstones,
 * WAL bytes, checkpoint age and count per replica, in-flight requests, process memory.
 */
struct shard_metrics;

struct shard_metrics *shard_metrics_new(struct node *n);
void shard_metrics_set_server(struct shard_metrics *sm, struct rpcsrv *s);
void shard_metrics_free(struct shard_metrics *sm);

/* rpcsrv_done_fn: counts one request. */
void shard_metrics_done(void *arg, const struct rpcsrv_result *res, uint64_t ns);
/* The same for a request of the search port, which it also counts as such. */
void shard_metrics_done_search(void *arg, const struct rpcsrv_result *res, uint64_t ns);

/* GET /metrics, /healthz (alive) and /readyz (ready: not draining) on `url`. */
struct shard_http;
int shard_http_start(const char *url, struct shard_metrics *sm, struct handle_ctx *hc,
                     struct shard_http **out, char *errmsg);
void shard_http_stop(struct shard_http *h); /* NULL is fine */

#endif
