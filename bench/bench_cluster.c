/* bench_cluster.c - `dvec-bench cluster`: one dvec-coord and one dvec-shard, the same searches
 * straight to the node, through the coordinator, and through libdvec (one hop and via the
 * coordinator), with the context switches each path costs per request. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_node.h"
#include "bench_node_int.h"
#include "bench_util.h"
#include "dist.h"
#include "err.h"

/* One path's result and its context switches per request: client, coordinator, node. */
struct path_run {
    struct result r;
    double cs_client, cs_coord, cs_node;
};

/* Runs one path and counts the context switches of the three processes around it (threads
 * that ended during the run are not counted: none does). */
static int run_path(const struct nopts *o, struct rpc *r, dvec_client *sdk, const float *qv,
                    const uint64_t *truth, uint32_t threads, pid_t cpid, pid_t npid,
                    struct path_run *out)
{
    uint64_t a0 = bench_ctxsw(getpid()), c0 = bench_ctxsw(cpid), n0 = bench_ctxsw(npid);
    if (bench_run_searches(o, r, NULL, sdk, qv, truth, threads, o->qbatch, &out->r) != 0)
        return -1;
    double reqs = (double)o->rounds * ((o->queries + o->qbatch - 1) / o->qbatch);
    out->cs_client = (double)(bench_ctxsw(getpid()) - a0) / reqs;
    out->cs_coord = (double)(bench_ctxsw(cpid) - c0) / reqs;
    out->cs_node = (double)(bench_ctxsw(npid) - n0) / reqs;
    return 0;
}

static void print_row(const char *path, uint32_t threads, const struct path_run *p,
                      const struct path_run *node, uint32_t k)
{
    (void)k;
    printf("| %s | %u | %.0f | %.3f | %.3f | %.4f | %.2fx | %.1f | %.1f | %.1f |\n", path, threads,
           p->r.qps, p->r.p50_ms, p->r.p99_ms, p->r.recall,
           node && node->r.qps > 0 ? p->r.qps / node->r.qps : 0.0, p->cs_client, p->cs_coord,
           p->cs_node);
}

static pid_t spawn(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        setenv("DVEC_LOG_LEVEL", "warn", 1);
        execv(argv[0], argv);
        fprintf(stderr, "dvec-bench: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

static void cusage(FILE *f)
{
    fprintf(f, "usage: dvec-bench cluster [--n N] [--dim D] [--queries Q] [--ef EF] [--parts P]\n"
               "         [--rounds R] [--port P] [--dir D] [--clients C1,C2,...] [--qbatch Q]\n"
               "         [--node-inflight I] [--bin BUILD_DIR]\n"
               "  Starts one dvec-coord and one dvec-shard, creates a collection of P partitions\n"
               "  (default 1) through the coordinator, loads N points through it (fsync always),\n"
               "  then runs the same queries through the coordinator and straight to the node,\n"
               "  Q queries per request, with each number of client threads in the list.\n"
               "  --node-inflight is the coordinator's node_inflight (default: its default).\n"
               "  --bin runs BUILD_DIR's dvec-coord and dvec-shard (an A/B against another\n"
               "  build; the client side stays this one).\n"
               "  Defaults: --n 100000 --dim 128 --queries 2000 --ef 64 --parts 1 --rounds 3\n"
               "  --port 17500 --dir /var/tmp/dvec-bench-cluster --clients 1,2,8 --qbatch 1.\n");
}

int bench_cluster_main(int argc, char **argv)
{
    static char shard_path[4200], coord_path[4200];
    struct nopts o = {
        NULL, "/var/tmp/dvec-bench-cluster", 100000, 128, 2000, 10, 64, 1000, 17500, 2, 3, 1, {1},
        1};
    uint32_t parts = 1, clients[8] = {1, 2, 8}, n_clients = 3;
    const char *bin = NULL; /* a build directory whose dvec-coord and dvec-shard to run */
    const char *inflight = "2";
    o.qbatch = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            cusage(stdout);
            return 0;
        } else if (v == NULL) {
            cusage(stderr);
            return 2;
        } else if (strcmp(a, "--n") == 0) {
            o.n = strtoull(v, NULL, 10), i++;
        } else if (strcmp(a, "--dim") == 0) {
            o.dim = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--queries") == 0) {
            o.queries = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--ef") == 0) {
            o.ef = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--parts") == 0) {
            parts = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--qbatch") == 0) {
            o.qbatch = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--node-inflight") == 0) {
            inflight = v, i++;
        } else if (strcmp(a, "--clients") == 0) {
            n_clients = 0;
            for (const char *c = v; *c && n_clients < 8;
                 c = strchr(c, ',') ? strchr(c, ',') + 1 : "")
                clients[n_clients++] = (uint32_t)atoi(c);
            i++;
        } else if (strcmp(a, "--rounds") == 0) {
            o.rounds = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--port") == 0) {
            o.port = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--dir") == 0) {
            o.dir = v, i++;
        } else if (strcmp(a, "--bin") == 0) {
            bin = v, i++;
        } else {
            cusage(stderr);
            return 2;
        }
    }
    bool bad_clients = n_clients == 0;
    for (uint32_t i = 0; i < n_clients; i++)
        bad_clients |= clients[i] == 0 || clients[i] > 64;
    if (o.n == 0 || o.dim == 0 || o.queries == 0 || o.rounds == 0 || parts == 0 || o.qbatch == 0 ||
        bad_clients) {
        cusage(stderr);
        return 2;
    }
    char self[4096];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    self[k > 0 ? k : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    if (bin) {
        snprintf(shard_path, sizeof shard_path, "%s/shard/dvec-shard", bin);
        snprintf(coord_path, sizeof coord_path, "%s/coordinator/dvec-coord", bin);
    } else {
        snprintf(shard_path, sizeof shard_path, "%s/../shard/dvec-shard", self);
        snprintf(coord_path, sizeof coord_path, "%s/../coordinator/dvec-coord", self);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", o.dir, o.dir);
    if (system(cmd) != 0)
        return 1;

    float *data = malloc(o.n * o.dim * sizeof(float));
    float *qv = malloc((size_t)o.queries * o.dim * sizeof(float));
    for (uint64_t i = 0; i < o.n; i++)
        bench_gen_vec(i, o.dim, data + i * o.dim);
    for (uint32_t q = 0; q < o.queries; q++)
        bench_gen_vec(o.n + 1000003ull * (q + 1), o.dim, qv + (size_t)q * o.dim);
    uint64_t *truth = bench_oracle_l2(data, o.n, o.dim, qv, o.queries, o.k, dist_get()->l2sq);

    char curl[64], craft[64], group[256], nurl[64], surl[64], cdir[4200], ndir[4200];
    snprintf(curl, sizeof curl, "tcp://127.0.0.1:%u", o.port);
    snprintf(craft, sizeof craft, "127.0.0.1:%u", o.port + 1);
    snprintf(nurl, sizeof nurl, "tcp://127.0.0.1:%u", o.port + 2);
    snprintf(surl, sizeof surl, "tcp://127.0.0.1:%u", o.port + 3);
    snprintf(group, sizeof group, "1=%s=%s", craft, curl);
    snprintf(cdir, sizeof cdir, "%s/coord", o.dir);
    snprintf(ndir, sizeof ndir, "%s/node", o.dir);
    char *cargv[] = {coord_path,
                     "--node_inflight",
                     (char *)inflight,
                     "--id",
                     "1",
                     "--data_dir",
                     cdir,
                     "--listen",
                     curl,
                     "--http",
                     "",
                     "--group",
                     group,
                     NULL};
    char *nargv[] = {shard_path, "--data_dir",      ndir, "--node_id", "n1", "--listen",
                     nurl,       "--http",          "",   "--workers", "2",  "--coordinators",
                     curl,       "--search_listen", surl, NULL};
    pid_t cpid = spawn(cargv), npid = spawn(nargv);
    char err[DV_ERRMSG_SIZE];
    struct rpc_opts ro;
    rpc_opts_default(&ro);
    ro.timeout_ms = 120000;
    struct rpc *cr, *nr;
    int rc = DV_EIO;
    if (rpc_open(curl, &ro, &cr, err) != DV_OK || rpc_open(nurl, &ro, &nr, err) != DV_OK)
        goto fail;
    /* The node must have registered before a collection can be placed. */
    for (int i = 0; i < 200 && rc != DV_OK; i++) {
        struct msg req = {.type = MSG_COLL_CREATE};
        req.addr.coll = (struct msg_str){COLL, sizeof COLL - 1};
        req.u.coll_cfg = (struct msg_coll_cfg){.dim = o.dim,
                                               .metric = 0,
                                               .m = 16,
                                               .ef_construction = 200,
                                               .ef_search = o.ef,
                                               .partitions = parts};
        struct msg_reply rep;
        rc = rpc_call(cr, &req, &rep, err);
        msg_reply_free(&rep);
        if (rc != DV_OK) {
            struct timespec ts = {0, 50 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (rc != DV_OK)
        goto fail;
    struct msg iq = {.type = MSG_COLL_INFO};
    iq.addr.coll = (struct msg_str){COLL, sizeof COLL - 1};
    struct msg_reply irep;
    if ((rc = rpc_call(cr, &iq, &irep, err)) != DV_OK)
        goto fail;
    g_epoch = irep.m.u.coll_info_rep.parts[0].epoch;
    msg_reply_free(&irep);

    g_coord = true;
    struct load l = {.r = cr, .o = &o, .data = data};
    double t0 = bench_now();
    pthread_t th;
    pthread_create(&th, NULL, bench_load_main, &l);
    bench_load_main(&l);
    pthread_join(th, NULL);
    double up = (double)o.n / (bench_now() - t0);
    if (atomic_load(&l.failed))
        goto fail;

    if (o.qbatch > 64) {
        snprintf(err, sizeof err, "--qbatch %u: the SDK rows take at most 64", o.qbatch);
        goto fail;
    }
    dvec_client *one = NULL, *onenng = NULL, *via = NULL;
    dvec_options dop = {.timeout_ms = 120000};
    dvec_error de;
    if (dvec_connect(curl, &dop, &one, &de) != DVEC_OK) {
        snprintf(err, sizeof err, "SDK: %.200s", de.message);
        goto fail;
    }
    dop.no_search_port = true;
    if (dvec_connect(curl, &dop, &onenng, &de) != DVEC_OK) {
        dvec_close(one);
        snprintf(err, sizeof err, "SDK: %.200s", de.message);
        goto fail;
    }
    dop.via_coordinator = true;
    if (dvec_connect(curl, &dop, &via, &de) != DVEC_OK) {
        dvec_close(one);
        dvec_close(onenng);
        snprintf(err, sizeof err, "SDK: %.200s", de.message);
        goto fail;
    }
    /* Each number of clients: the paths one after the other, so that the rows of one setting
     * share whatever the machine is doing then. */
    struct path_run viac[8], node[8], sdk1[8], sdkn[8], sdkc[8];
    memset(node, 0, sizeof node);
    for (uint32_t i = 0; i < n_clients && rc == DV_OK; i++) {
        g_coord = false;
        if (parts == 1 && run_path(&o, nr, NULL, qv, truth, clients[i], cpid, npid, &node[i]))
            rc = DV_EIO;
        g_coord = true;
        if (rc == DV_OK && run_path(&o, cr, NULL, qv, truth, clients[i], cpid, npid, &viac[i]))
            rc = DV_EIO;
        if (rc == DV_OK && run_path(&o, NULL, one, qv, truth, clients[i], cpid, npid, &sdk1[i]))
            rc = DV_EIO;
        if (rc == DV_OK && run_path(&o, NULL, onenng, qv, truth, clients[i], cpid, npid, &sdkn[i]))
            rc = DV_EIO;
        if (rc == DV_OK && run_path(&o, NULL, via, qv, truth, clients[i], cpid, npid, &sdkc[i]))
            rc = DV_EIO;
    }
    dvec_close(one);
    dvec_close(onenng);
    dvec_close(via);
    rpc_close(cr);
    rpc_close(nr);
    if (rc != DV_OK) {
        snprintf(err, sizeof err, "a search pass failed");
        goto fail;
    }
    int st1 = bench_stop_node(npid), st2 = bench_stop_node(cpid);

    printf("\n## dvec-bench cluster: %llu x %u (clustered), L2, %u partition(s) on 1 node, "
           "ef %u, k %u, %u queries, %u per request, node_inflight %s, best of %u rounds\n\n",
           (unsigned long long)o.n, o.dim, parts, o.ef, o.k, o.queries, o.qbatch, inflight,
           o.rounds);
    printf("| path | client threads | QPS | p50 ms | p99 ms | recall@%u | / straight to the node | "
           "context switches per request: client | coordinator | node |\n",
           o.k);
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (uint32_t t = 0; t < n_clients; t++) {
        const struct path_run *base = parts == 1 ? &node[t] : NULL;
        if (parts == 1)
            print_row("straight to the node (native protocol)", clients[t], &node[t], base, o.k);
        print_row("through dvec-coord (native protocol)", clients[t], &viac[t], base, o.k);
        print_row("C SDK, one hop (search port)", clients[t], &sdk1[t], base, o.k);
        print_row("C SDK, one hop (NNG)", clients[t], &sdkn[t], base, o.k);
        print_row("C SDK, via the coordinator", clients[t], &sdkc[t], base, o.k);
    }
    printf("\nUpsert through the coordinator (fsync always, batches of %u, 2 client threads): "
           "%.0f vectors/s\n",
           o.batch, up);
    if (st1 != 0 || st2 != 0)
        fprintf(stderr, "dvec-bench: exit status node %d, coordinator %d after SIGTERM\n", st1,
                st2);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", o.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "dvec-bench: could not remove %s\n", o.dir);
    free(data);
    free(qv);
    free(truth);
    return 0;

fail:
    fprintf(stderr, "dvec-bench: %s (%s)\n", err, dv_errname(rc));
    kill(npid, SIGKILL);
    kill(cpid, SIGKILL);
    waitpid(npid, NULL, 0);
    waitpid(cpid, NULL, 0);
    return 1;
}
