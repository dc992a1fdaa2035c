/* coord_main.c - dvec-coord: configuration, raft, the native protocol server, stop. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>

#include "addr.h"
#include "clock.h"
#include "coord.h"
#include "coord_coll.h"
#include "coord_cfg.h"
#include "daemon.h"
#include "err.h"
#include "httpd.h"
#include "group.h"
#include "log.h"
#include "metrics.h"
#include "rest.h"

#define COORD_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f, "usage: dvec-coord [--config FILE] [--KEY VALUE | --KEY=VALUE]...\n"
               "       dvec-coord --help | --version\n"
               "\n"
               "A coordinator of a dvec cluster: keeps the cluster map replicated with Raft among\n"
               "1, 3 or 5 coordinators (the `group`, the same list everywhere), places partitions\n"
               "on the nodes that register with it, and routes clients' requests to the nodes.\n"
               "Every key of the file is also a flag; flags win.\n\n"
               "Settings:\n");
    cfg_print_help(coord_cfg_schema, f);
}

/* "ID=RAFT_HOST:PORT=CLIENT_URL" */
static int parse_peer(const char *s, struct craft_peer *p, char *errmsg)
{
    const char *a = strchr(s, '='), *b = a ? strchr(a + 1, '=') : NULL;
    char *end;
    unsigned long long id = strtoull(s, &end, 10);
    if (a == NULL || b == NULL || end != a || id == 0 || (size_t)(b - a - 1) >= CRAFT_ADDR_MAX ||
        strlen(b + 1) >= CRAFT_ADDR_MAX || b == a + 1 || b[1] == '\0') {
        dv_errmsg_set(errmsg, "group entry '%s' is not ID=RAFT_HOST:PORT=CLIENT_URL", s);
        return DV_EINVAL;
    }
    p->id = id;
    snprintf(p->raft_addr, sizeof p->raft_addr, "%.*s", (int)(b - a - 1), a + 1);
    snprintf(p->client_url, sizeof p->client_url, "%s", b + 1);
    return DV_OK;
}

static bool ready(void *arg, struct buf *reason)
{
    struct coord *c = arg;
    if (atomic_load(&c->draining)) {
        buf_appendf(reason, "shutting down");
        return false;
    }
    struct craft_status st;
    craft_status(c->raft, &st);
    if (st.leader_id == 0) {
        buf_appendf(reason, "no raft leader known");
        return false;
    }
    return true;
}

static int collect(void *arg, struct metrics_writer *w)
{
    struct coord *c = arg;
    struct craft_status st;
    craft_status(c->raft, &st);
    struct cmap_ref *ref = craft_map(c->raft);
    uint64_t alive = 0;
    for (uint32_t i = 0; i < ref->map.n_nodes; i++)
        alive += ref->map.nodes[i].state == CMAP_NODE_ALIVE;
    double v[] = {st.state == 3,           (double)st.term,         (double)st.commit_index,
                  (double)st.last_applied, (double)ref->map.epoch,  (double)ref->map.n_nodes,
                  (double)alive,           (double)ref->map.n_colls};
    const char *names[] = {"dvec_coord_is_leader",         "dvec_coord_raft_term",
                           "dvec_coord_raft_commit_index", "dvec_coord_raft_last_applied",
                           "dvec_coord_map_epoch",         "dvec_coord_nodes",
                           "dvec_coord_nodes_alive",       "dvec_coord_collections"};
    const char *help[] = {"1 on the raft leader.",
                          "Current raft term.",
                          "Highest raft entry known committed.",
                          "Highest raft entry applied.",
                          "Epoch of the cluster map.",
                          "Nodes in the map (removed included).",
                          "Nodes alive.",
                          "Collections."};
    int rc = DV_OK;
    for (size_t i = 0; i < sizeof v / sizeof v[0] && rc == DV_OK; i++)
        rc = metrics_emit_gauge(w, names[i], help[i], NULL, v[i]);
    /* Replication: replicas per state, and partitions below their replication factor in
     * sync, per collection. */
    for (uint32_t i = 0; i < ref->map.n_colls && rc == DV_OK; i++) {
        const struct cmap_coll *cl = ref->map.colls[i];
        uint32_t per[CMAP_REPLICA_STATE_COUNT] = {0}, short_parts = 0;
        for (uint32_t p = 0; p < cl->cfg.n_parts; p++) {
            uint32_t active = 0;
            for (uint32_t k = 0; k < cl->parts[p].n; k++) {
                per[cl->parts[p].state[k]]++;
                active += cl->parts[p].state[k] == CMAP_REPLICA_ACTIVE;
            }
            short_parts += active < cl->cfg.rf;
        }
        for (int s = 0; s < CMAP_REPLICA_STATE_COUNT && rc == DV_OK; s++) {
            const char *l[] = {"collection", cl->name, "state", cmap_replica_state_name(s), NULL};
            rc = metrics_emit_gauge(w, "dvec_coord_replicas",
                                    "Replicas of a collection's partitions, by state (active: "
                                    "in sync).",
                                    l, (double)per[s]);
        }
        const char *l[] = {"collection", cl->name, NULL};
        if (rc == DV_OK)
            rc = metrics_emit_gauge(w, "dvec_coord_partitions_under_replicated",
                                    "Partitions with fewer in-sync replicas than the "
                                    "replication factor.",
                                    l, (double)short_parts);
    }
    craft_map_release(c->raft, ref);
    /* Search combining (combine.h), over every node connection. */
    struct combiner_stats sum = {0};
    pthread_mutex_lock(&c->conns_mu);
    for (size_t i = 0; i < c->n_conns; i++) {
        struct combiner_stats one;
        combiner_stats(c->conns[i].comb, &one);
        sum.requests += one.requests;
        sum.searches += one.searches;
        sum.queries += one.queries;
    }
    pthread_mutex_unlock(&c->conns_mu);
    if (rc == DV_OK)
        rc = metrics_emit_counter(w, "dvec_coord_node_searches_total",
                                  "Searches sent to nodes, one per node per client request.", NULL,
                                  (double)sum.searches);
    if (rc == DV_OK)
        rc = metrics_emit_counter(w, "dvec_coord_node_search_requests_total",
                                  "Node requests that carried them (fewer when combined).", NULL,
                                  (double)sum.requests);
    if (rc == DV_OK)
        rc = metrics_emit_counter(w, "dvec_coord_node_search_queries_total",
                                  "Queries in those node requests.", NULL, (double)sum.queries);
    return rc;
}

/* rest_meta_fn: a collection's config from the local copy of the map. */
static bool coll_meta(void *arg, const char *name, struct msg_coll_cfg *cfg)
{
    struct coord *c = arg;
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap_coll *cl = cmap_coll_resolve(&ref->map, name);
    if (cl)
        coord_coll_cfg_to_msg(&cl->cfg, cfg);
    craft_map_release(c->raft, ref);
    return cl != NULL;
}

struct req_metrics {
    struct metrics_counter *req[MSG_TYPE_COUNT][2];
    struct metrics_histogram *lat[MSG_TYPE_COUNT];
};

static void done(void *arg, const struct rpcsrv_result *res, uint64_t ns)
{
    struct req_metrics *rm = arg;
    int t = res->type >= 0 && res->type < MSG_TYPE_COUNT ? res->type : 0;
    if (rm->req[t][res->code != DV_OK])
        metrics_counter_inc(rm->req[t][res->code != DV_OK]);
    if (rm->lat[t])
        metrics_histogram_observe(rm->lat[t], (double)ns * 1e-9);
}

int main(int argc, char **argv)
{
    char err[DV_ERRMSG_SIZE];
    static const struct daemon_spec spec = {"dvec-coord", COORD_VERSION, PROTO_VERSION, usage};
    if (daemon_info(argc, argv, &spec))
        return 0;
    struct coord_cfg cf = {0};
    int rc = daemon_config(&spec, coord_cfg_schema, &cf, argc, argv, &cf.data_dir);
    if (rc != DV_OK) {
        cfg_free(coord_cfg_schema, &cf);
        return 2;
    }
    struct craft_opts ro = {
        .id = cf.id,
        .join = cf.join,
        .election_ms = (unsigned)(cf.election_timeout_ns / 1000000),
        .heartbeat_ms = (unsigned)(cf.heartbeat_ns / 1000000),
        .snapshot_threshold = (unsigned)cf.snapshot_threshold,
        .snapshot_trailing = (unsigned)cf.snapshot_threshold * 2,
    };
    if (rc == DV_OK && (cf.group.n == 0 || cf.group.n > CRAFT_MAX_PEERS)) {
        dv_errmsg_set(err, "group must list 1 to %d coordinators", CRAFT_MAX_PEERS);
        rc = DV_EINVAL;
    }
    for (size_t i = 0; rc == DV_OK && i < cf.group.n; i++)
        rc = parse_peer(cf.group.items[i], &ro.peers[ro.n_peers++], err);
    char host[ADDR_HOST_MAX], adv[CRAFT_ADDR_MAX];
    uint64_t ord;
    if (rc == DV_OK && cf.id_from_hostname &&
        (rc = addr_hostname(host, sizeof host, err)) == DV_OK &&
        (rc = addr_ordinal(host, &ord, err)) == DV_OK)
        ro.id = cf.id = ord + 1;
    const struct craft_peer *self = NULL;
    for (size_t i = 0; i < ro.n_peers; i++)
        if (ro.peers[i].id == cf.id)
            self = &ro.peers[i];
    if (rc == DV_OK && self && cf.advertise && cf.advertise[0] &&
        strcmp(cf.advertise, self->client_url) != 0) {
        dv_errmsg_set(err,
                      "advertise %s differs from coordinator %" PRIu64
                      "'s URL in `group` (%s), which the others use",
                      cf.advertise, cf.id, self->client_url);
        rc = DV_EINVAL;
    }
    if (rc == DV_OK)
        rc = addr_advertise("advertise", cf.listen, self ? self->client_url : cf.advertise, NULL,
                            adv, sizeof adv, err);
    if (rc == DV_OK && self == NULL && !(cf.raft_advertise && cf.raft_advertise[0])) {
        dv_errmsg_set(err,
                      "coordinator %" PRIu64 " is not in `group`: to join the running group "
                      "set raft.advertise (HOST:PORT the others dial its raft on)",
                      cf.id);
        rc = DV_EINVAL;
    }
    /* One not in the group joins it; one started with `join` asks to be added too. */
    ro.join = cf.join || self == NULL;
    ro.advertise = cf.raft_advertise;
    ro.bind = cf.raft_listen;
    if (rc != DV_OK) {
        fprintf(stderr, "dvec-coord: %s\n", err);
        cfg_free(coord_cfg_schema, &cf);
        return 2;
    }
    /* SIGPIPE ignored: raft 0.15 writes to dead peers (LIBRARY-NOTES bug 1). */
    struct daemon d;
    if (daemon_start(&d, &spec, cf.log_level, cf.data_dir) != DV_OK) {
        cfg_free(coord_cfg_schema, &cf);
        return 2;
    }
    char raft_dir[4200];
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", cf.data_dir);
    ro.dir = raft_dir;
    log_info("starting", "id=%" PRIu64 " version=%s listen=%s advertise=%s group=%zu join=%s",
             cf.id, COORD_VERSION, cf.listen, adv, cf.group.n, ro.join ? "yes" : "no");

    static struct coord c;
    struct coord_opts co = {
        .id = cf.id,
        .request_timeout_ms = (uint32_t)(cf.request_timeout_ns / 1000000),
        .suspect_ms = (uint32_t)(cf.node_suspect_ns / 1000000),
        .dead_ms = (uint32_t)(cf.node_dead_ns / 1000000),
        .dead_timeout_ms = (uint32_t)(cf.dead_timeout_ns / 1000000),
        .report_every_ms = (uint32_t)(cf.reconcile_every_ns / 1000000),
        .max_batch = (uint32_t)cf.max_batch,
        .node_inflight = (uint32_t)cf.node_inflight,
        .node_search_port = cf.node_search_port,
        .connect_wait_ms = (uint32_t)(cf.connect_wait_ns / 1000000),
        .move_grace_ms = (uint32_t)(cf.move_grace_ns / 1000000),
        .write_retry_ms = (uint32_t)(cf.write_retry_ns / 1000000),
    };
    struct tr *tr;
    if ((rc = tr_nng_new(&tr)) != DV_OK) {
        fprintf(stderr, "dvec-coord: %s\n", dv_strerror(rc));
        _exit(2);
    }

    static struct req_metrics rm;
    struct metrics *reg = NULL;
    if (metrics_new(&reg) == DV_OK) {
        for (int t = 0; t < MSG_TYPE_COUNT; t++) {
            const char *op = msg_type_name(t);
            if (strcmp(op, "unknown") == 0)
                continue;
            const char *l0[] = {"op", op, "outcome", "ok", NULL};
            const char *l1[] = {"op", op, "outcome", "error", NULL};
            const char *ll[] = {"op", op, NULL};
            metrics_counter(reg, "dvec_coord_requests", "Requests answered, by operation.", l0,
                            &rm.req[t][0], NULL);
            metrics_counter(reg, "dvec_coord_requests", "Requests answered, by operation.", l1,
                            &rm.req[t][1], NULL);
            metrics_histogram(reg, "dvec_coord_request_duration_seconds",
                              "Time to answer a request, by operation.", NULL, 0, ll, &rm.lat[t],
                              NULL);
        }
        metrics_add_collector(reg, collect, &c);
        metrics_add_process(reg);
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t workers = cf.workers ? (uint32_t)cf.workers : (uint32_t)(cpus > 0 ? cpus * 4 : 8);
    if (workers < 8 && cf.workers == 0)
        workers = 8;
    struct rpcsrv_opts so = {
        .listen = cf.listen,
        .workers = workers,
        .contexts = (uint32_t)cf.contexts,
        .recv_max = cf.max_message,
        .handle = coord_handle,
        .handle_arg = &c,
        .run_async = coord_run_async,
        .done = done,
        .done_arg = &rm,
    };
    /* Raft and the server (coord_open logs why it failed). */
    if ((rc = coord_open(&c, &co, &ro, tr, &so, true, err)) != DV_OK) {
        fprintf(stderr, "dvec-coord: %s\n", err);
        _exit(2);
    }
    struct httpd *http = NULL;
    struct rest *rest = NULL;
    if (cf.http && cf.http[0]) {
        /* The REST API shares the listener: its own workers call coord_call. */
        struct rest_opts ro2 = {
            .call = coord_call,
            .call_arg = &c,
            .search = coord_search_start,
            .search_arg = &c,
            .meta = coll_meta,
            .meta_arg = &c,
            .peer_id = cf.id,
            .workers = workers,
            .max_body = cf.max_message,
            .version = COORD_VERSION,
            .reg = reg,
        };
        if ((rc = rest_new(&ro2, &rest, err)) != DV_OK ||
            (rc = httpd_new(cf.http, &http, err)) != DV_OK ||
            (reg && (rc = httpd_add_metrics(http, reg, err)) != DV_OK) ||
            (rc = httpd_add_health(http, ready, &c, err)) != DV_OK ||
            (rc = rest_attach(rest, http, err)) != DV_OK ||
            (rc = httpd_start(http, err)) != DV_OK) {
            fprintf(stderr, "dvec-coord: http %s: %s\n", cf.http, err);
            log_error("cannot start", "http=%s error=%s", cf.http, err);
            _exit(2);
        }
    }
    coord_leader_start(&c);
    struct coord_join *joiner = NULL;
    if (ro.join) {
        const char *urls[CRAFT_MAX_PEERS];
        size_t n = 0;
        for (size_t i = 0; i < ro.n_peers; i++)
            if (ro.peers[i].id != cf.id)
                urls[n++] = ro.peers[i].client_url;
        const char *raddr = self ? self->raft_addr : cf.raft_advertise;
        if (n > 0 && coord_join_start(&c, urls, n, cf.id, raddr, adv, &joiner) != DV_OK)
            log_error("cannot start asking to join", "id=%" PRIu64, cf.id);
    }
    log_info("ready", "id=%" PRIu64 " workers=%u", cf.id, workers);

    daemon_wait(&d, NULL, NULL, cf.shutdown_timeout_ns);
    uint64_t t0 = clock_mono_ms();
    atomic_store(&c.draining, true);
    int left = rpcsrv_drain(c.srv, cf.shutdown_timeout_ns / 1000000 / 2);
    if (left)
        log_warn("requests still running at the drain deadline", "count=%d", left);
    coord_join_stop(joiner);
    coord_leader_stop(&c);
    httpd_free(http); /* waits for the REST requests it handed over to be answered */
    rest_free(rest);
    coord_close(&c);
    tr_free(c.tr);
    metrics_free(reg);
    log_info("stopped", "ms=%" PRIu64, clock_mono_ms() - t0);
    cfg_free(coord_cfg_schema, &cf);
    nng_fini();
    daemon_end(&d);
    return 0;
}
