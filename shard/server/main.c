/* main.c - dvec-shard: configuration, data dir lock, signals, start and orderly stop. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>

#include "addr.h"
#include "clock.h"
#include "daemon.h"
#include "err.h"
#include "io_delay.h"
#include "log.h"
#include "node.h"
#include "report.h"
#include "rpcsrv.h"
#include "tcpsrv.h"
#include "shard_cfg.h"
#include "shard_http.h"
#include "transport.h"

#define SHARD_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f, "usage: dvec-shard [--config FILE] [--KEY VALUE | --KEY=VALUE]...\n"
               "       dvec-shard --help | --version\n"
               "\n"
               "Serves replicas of partitions to dvec coordinators over NNG (docs/protocol.md).\n"
               "Settings come from the YAML file, then from flags (flags win); every key of the\n"
               "file is also a flag: --data_dir ./var/n1 --checkpoint.interval 2m.\n"
               "SIGTERM or SIGINT: refuse new requests, finish those in flight, checkpoint every\n"
               "replica, exit 0 (forced exit after shutdown_timeout).\n\n"
               "Settings:\n");
    cfg_print_help(shard_cfg_schema, f);
}

/* The configured node id, or the one stored in data_dir/node.id (created once). */
static int node_id(const struct shard_cfg *c, char *out, size_t cap, char *errmsg)
{
    if (c->node_id && c->node_id[0]) {
        snprintf(out, cap, "%s", c->node_id);
        return DV_OK;
    }
    if (c->node_id_from_hostname)
        return addr_hostname(out, cap, errmsg);
    char path[4096];
    snprintf(path, sizeof path, "%s/node.id", c->data_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        bool ok = fgets(out, (int)cap, f) != NULL;
        fclose(f);
        out[strcspn(out, "\n")] = '\0';
        if (ok && out[0])
            return DV_OK;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t r = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_sec;
    snprintf(out, cap, "node-%08" PRIx64, (uint64_t)((r * 0x9e3779b97f4a7c15ull) >> 32));
    char text[128];
    int n = snprintf(text, sizeof text, "%s\n", out);
    if (io_replace_file(io_posix(), path, text, (size_t)n) != 0) {
        dv_errmsg_set(errmsg, "%s: cannot write", path);
        return DV_EOS;
    }
    return DV_OK;
}

static int shard_handle(void *arg, const void *in, size_t n, struct buf *out,
                        struct rpcsrv_result *res)
{
    return handle_request(arg, in, n, out, res);
}

static int shard_handle_search(void *arg, const void *in, size_t n, struct buf *out,
                               struct rpcsrv_result *res)
{
    return handle_search_request(arg, in, n, out, res);
}

/* daemon_wait's tick: snapshot sessions nobody read for snapshot_idle end. */
static void expire_sessions(void *arg)
{
    node_snapshot_expire(arg);
}

int main(int argc, char **argv)
{
    char err[DV_ERRMSG_SIZE];
    struct tr *tr = NULL; /* outbound calls: pulls from other nodes, reports to coordinators */
    static const struct daemon_spec spec = {"dvec-shard", SHARD_VERSION, PROTO_VERSION, usage};
    if (daemon_info(argc, argv, &spec))
        return 0;
    struct shard_cfg c = {0};
    struct daemon d;
    int rc;
    if (daemon_config(&spec, shard_cfg_schema, &c, argc, argv, &c.data_dir) != DV_OK)
        goto err_cfg;
    /* What the coordinators are told: advertise, else listen (a wildcard is refused). Checked
     * with the rest of the settings, before the data dir is touched. */
    char adv[512], http_adv[512] = "", search_adv[512] = "", host[ADDR_HOST_MAX];
    unsigned port;
    bool search = c.search_listen && c.search_listen[0];
    if ((rc = addr_advertise("advertise", c.listen, c.advertise, NULL, adv, sizeof adv, err)) !=
            DV_OK ||
        (c.http && c.http[0] && addr_split(adv, host, sizeof host, &port) &&
         (rc = addr_advertise("http_advertise", c.http, c.http_advertise, host, http_adv,
                              sizeof http_adv, err)) != DV_OK) ||
        (search && addr_split(adv, host, sizeof host, &port) &&
         (rc = addr_advertise("search_advertise", c.search_listen, c.search_advertise, host,
                              search_adv, sizeof search_adv, err)) != DV_OK)) {
        fprintf(stderr, "dvec-shard: %s\n", err);
        goto err_cfg;
    }
    /* A search port on loopback is of no use to clients on other hosts: it is not reported
     * when the node tells the others a non-loopback address. */
    if (search_adv[0] && addr_is_loopback(search_adv) && !addr_is_loopback(adv) &&
        !(c.search_advertise && c.search_advertise[0]))
        search_adv[0] = '\0';
    if (daemon_start(&d, &spec, c.log_level, c.data_dir) != DV_OK)
        goto err_cfg;
    char id[128];
    if ((rc = node_id(&c, id, sizeof id, err)) != DV_OK) {
        fprintf(stderr, "dvec-shard: %s\n", err);
        goto err_cfg;
    }
    uint64_t t0 = clock_mono_ms();
    log_info("starting", "node_id=%s version=%s data_dir=%s listen=%s advertise=%s", id,
             SHARD_VERSION, c.data_dir, c.listen, adv);

    if ((rc = tr_nng_new(&tr)) != DV_OK) {
        fprintf(stderr, "dvec-shard: %s\n", dv_strerror(rc));
        goto err_cfg;
    }
    struct node_opts no = {0}; /* pull timeouts: the defaults */
    part_opts_default(&no.part);
    no.part.ckpt_wal_bytes = c.ckpt_wal_bytes;
    no.part.ckpt_interval_ms = (uint32_t)(c.ckpt_interval_ns / 1000000);
    no.part.insert_threads = (uint32_t)c.insert_threads;
    no.part.wal.interval_ms = (uint32_t)(c.fsync_interval_ns / 1000000);
    no.capacity = c.capacity;
    no.snapshot_idle_ms = (uint32_t)(c.snapshot_idle_ns / 1000000);
    no.force_fsync = c.fsync == SHARD_FSYNC_REPLICA ? -1 : c.fsync - 1;
    no.tr = tr;
    /* DVEC_IO_DELAY_FILE (a testing hook): a slow disk; unset, the posix io itself. */
    struct io *delay_io;
    no.io = io_delay_from_env(io_posix(), &delay_io);
    struct node *node;
    if ((rc = node_open(c.data_dir, &no, &node, err)) != DV_OK) {
        fprintf(stderr, "dvec-shard: %s\n", err);
        log_error("cannot open data dir", "error=%s", err);
        io_delay_free(delay_io);
        goto err_cfg;
    }

    struct handle_ctx hc = {
        .node = node,
        .node_id = id,
        .version = SHARD_VERSION,
        .capacity = c.capacity,
        .max_msg = c.max_message,
        .started_ms = t0,
    };
    atomic_init(&hc.draining, false);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct shard_metrics *sm = shard_metrics_new(node);
    struct rpcsrv_opts so = {
        .listen = c.listen,
        .workers = c.workers ? (uint32_t)c.workers : (uint32_t)(cpus > 0 ? cpus : 2),
        .contexts = (uint32_t)c.contexts,
        .recv_max = 2 * c.max_message,
        .handle = shard_handle,
        .handle_arg = &hc,
        .done = shard_metrics_done,
        .done_arg = sm,
        .run_inline = handle_run_inline,
        .lane = handle_lane,
        .lane_workers = 2,
    };
    struct rpcsrv *srv;
    if ((rc = rpcsrv_new(&so, &srv, err)) == DV_OK) {
        hc.parallel = rpcsrv_parallel; /* before the first request can arrive */
        hc.pool = srv;
        if ((rc = rpcsrv_listen(srv, err)) != DV_OK)
            rpcsrv_stop(srv);
    }
    if (rc != DV_OK) {
        fprintf(stderr, "dvec-shard: %s\n", err);
        log_error("cannot start", "error=%s", err);
        node_close(node, false);
        io_delay_free(delay_io);
        goto err_cfg;
    }
    shard_metrics_set_server(sm, srv);
    struct tcpsrv *sport = NULL;
    if (c.search_listen && c.search_listen[0]) {
        struct tcpsrv_opts to = {
            .listen = c.search_listen,
            .max_conns = (uint32_t)c.search_max_conns,
            .max_message = 2 * c.max_message, /* as the NNG server's: over it, no reply */
            .handle = shard_handle_search,
            .handle_arg = &hc,
            .done = shard_metrics_done_search,
            .done_arg = sm,
        };
        if ((rc = tcpsrv_open(&to, &sport, err)) != DV_OK) {
            fprintf(stderr, "dvec-shard: %s\n", err);
            log_error("cannot start", "error=%s", err);
            _exit(2); /* nng is running: leave without a slow graceful close */
        }
        log_info("search port listening", "url=%s advertise=%s", c.search_listen,
                 search_adv[0] ? search_adv : "(not reported: loopback)");
    }
    struct shard_http *http = NULL;
    if (c.http && c.http[0]) {
        if ((rc = shard_http_start(c.http, sm, &hc, &http, err)) != DV_OK) {
            fprintf(stderr, "dvec-shard: %s\n", err);
            log_error("cannot start", "error=%s", err);
            _exit(2); /* nng is running: leave without a slow graceful close */
        }
    }
    struct report_opts rop = {
        .node_id = id,
        .url = adv,
        .http_url = http_adv,
        .search_url = search_adv,
        .weight = c.weight,
        .capacity = c.capacity,
        .coordinators = &c.coordinators,
        .interval_ms = (uint32_t)(c.report_interval_ns / 1000000),
        .flags = c.rejoin_if_removed ? MSG_REPORT_REJOIN : 0,
        .timeout_ms = 2000,
        .tr = tr,
    };
    struct reporter *reporter = NULL;
    if ((rc = report_start(&rop, node, &reporter)) != DV_OK)
        log_error("cannot report to the coordinators", "code=%s", dv_errname(rc));
    log_info("ready", "node_id=%s replicas_failed=%zu workers=%u contexts=%u startup_ms=%" PRIu64,
             id, node_open_failures(node), so.workers, so.contexts, clock_mono_ms() - t0);

    /* Wait for SIGTERM/SIGINT; expire idle snapshot sessions meanwhile. */
    daemon_wait(&d, expire_sessions, node, c.shutdown_timeout_ns);
    uint64_t ts = clock_mono_ms();

    report_stop(reporter);
    atomic_store(&hc.draining, true); /* new requests: DV_ESHUTDOWN */
    tcpsrv_close(sport);              /* its requests running finish first */
    int left = rpcsrv_drain(srv, c.shutdown_timeout_ns / 1000000 / 2);
    if (left)
        log_warn("requests still running at the drain deadline", "count=%d", left);
    shard_http_stop(http); /* /metrics reads the replicas */
    if (left == 0) {
        /* Drained: every request from now on is refused before it touches a replica, so the
         * replicas can be checkpointed and closed before nng_close, which can hang
         * (LIBRARY-NOTES): a hang then costs nothing but the watchdog's exit status. */
        node_close(node, true);
        node = NULL;
    }
    rpcsrv_stop(srv);
    node_close(node, true);
    io_delay_free(delay_io);
    log_info("stopped", "ms=%" PRIu64, clock_mono_ms() - ts);
    shard_metrics_free(sm);
    tr_free(tr);
    cfg_free(shard_cfg_schema, &c);
    nng_fini(); /* every socket and server is closed: frees nng's threads and caches */
    daemon_end(&d);
    return 0;

err_cfg:
    tr_free(tr);
    cfg_free(shard_cfg_schema, &c);
    return 2;
}
