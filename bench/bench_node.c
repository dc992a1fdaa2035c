/* bench_node.c - `dvec-bench node`: search and upsert through a real dvec-shard over loopback,
 * against the same replica searched in-process. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_node.h"
#include "bench_node_int.h"
#include "dist.h"
#include "bench_util.h"
#include "err.h"
#include "mpk.h"
#include "part.h"
#include "rpc.h"
#include "tcpcall.h"

/* ---- the node process -------------------------------------------------------------------- */

static pid_t start_node(const struct nopts *o, char *url, size_t cap)
{
    char port[16], listen[64], sport[64], workers[16];
    snprintf(port, sizeof port, "%u", o->port);
    snprintf(listen, sizeof listen, "tcp://127.0.0.1:%u", o->port);
    snprintf(sport, sizeof sport, "tcp://127.0.0.1:%u", o->port + 2); /* the search port */
    snprintf(workers, sizeof workers, "%u", o->workers);
    snprintf(url, cap, "%s", listen);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("DVEC_LOG_LEVEL", "warn", 1);
        execl(o->shard, o->shard, "--data_dir", o->dir, "--listen", listen, "--http", "",
              "--workers", workers, "--search_listen", sport, (char *)NULL);
        fprintf(stderr, "dvec-bench: exec %s: %s\n", o->shard, strerror(errno));
        _exit(127);
    }
    return pid;
}

int bench_stop_node(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int wait_ready(struct rpc *r)
{
    char err[DV_ERRMSG_SIZE];
    for (int i = 0; i < 200; i++) {
        struct msg req = {.type = MSG_HELLO};
        struct msg_reply rep;
        int rc = rpc_call(r, &req, &rep, err);
        msg_reply_free(&rep);
        if (rc == DV_OK)
            return 0;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "dvec-bench: the node did not answer: %s\n", err);
    return -1;
}

bool g_coord;
uint64_t g_epoch = 1;

static struct msg_addr addr(void)
{
    return (struct msg_addr){{COLL, sizeof COLL - 1}, 0, g_epoch, 0};
}

/* ---- load -------------------------------------------------------------------------------- */

void *bench_load_main(void *arg)
{
    struct load *l = arg;
    const struct nopts *o = l->o;
    char err[DV_ERRMSG_SIZE];
    struct pid *ids = malloc(o->batch * sizeof *ids);
    for (;;) {
        uint64_t from = atomic_fetch_add(&l->next, o->batch);
        if (from >= o->n)
            break;
        uint32_t cnt = (uint32_t)(o->n - from < o->batch ? o->n - from : o->batch);
        for (uint32_t i = 0; i < cnt; i++)
            ids[i] = (struct pid){.lo = from + i, .kind = PID_NUM};
        struct msg req = {.type = g_coord ? MSG_P_UPSERT : MSG_UPSERT, .addr = addr()};
        req.u.upsert_req =
            (struct msg_upsert_req){ids, (float *)l->data + from * o->dim, NULL, cnt, o->dim, NULL};
        struct msg_reply rep;
        int rc = rpc_call(l->r, &req, &rep, err);
        msg_reply_free(&rep);
        if (rc != DV_OK) {
            fprintf(stderr, "dvec-bench: upsert: %s (%s)\n", err, dv_errname(rc));
            atomic_store(&l->failed, 1);
            break;
        }
    }
    free(ids);
    return NULL;
}

/* ---- searches ---------------------------------------------------------------------------- */

/* ---- a plain TCP echo server (the floor rows) ---------------------------------------------- */

#define ECHO_LEN 200

struct echo {
    int lfd;
    uint16_t port;
    pthread_t thread;
};

static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char b[ECHO_LEN];
    for (;;) {
        size_t got = 0;
        while (got < ECHO_LEN) {
            ssize_t n = read(fd, b + got, ECHO_LEN - got);
            if (n <= 0)
                goto out;
            got += (size_t)n;
        }
        if (write(fd, b, ECHO_LEN) != ECHO_LEN)
            break;
    }
out:
    close(fd);
    return NULL;
}

static void *echo_accept(void *arg)
{
    struct echo *e = arg;
    for (;;) {
        int fd = accept(e->lfd, NULL, NULL);
        if (fd < 0)
            break; /* the listener was shut down */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
    return NULL;
}

static int echo_start(struct echo *e, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    e->port = port;
    e->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (e->lfd < 0 || setsockopt(e->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(e->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(e->lfd, 16) != 0) {
        fprintf(stderr, "dvec-bench: echo server on 127.0.0.1:%u: %s\n", port, strerror(errno));
        if (e->lfd >= 0)
            close(e->lfd);
        return -1;
    }
    return pthread_create(&e->thread, NULL, echo_accept, e) == 0 ? 0 : -1;
}

static void echo_stop(struct echo *e)
{
    shutdown(e->lfd, SHUT_RDWR);
    pthread_join(e->thread, NULL);
    close(e->lfd);
}

static int echo_dial(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int echo_once(int fd)
{
    char b[ECHO_LEN] = {0};
    if (write(fd, b, ECHO_LEN) != ECHO_LEN)
        return -1;
    size_t got = 0;
    while (got < ECHO_LEN) {
        ssize_t n = read(fd, b + got, ECHO_LEN - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/* ---- timed runs -------------------------------------------------------------------------- */

static void *search_main(void *arg)
{
    struct run *x = arg;
    const struct nopts *o = x->o;
    char err[DV_ERRMSG_SIZE];
    struct msg_query *mq = calloc(x->qbatch, sizeof *mq);
    int fd = -1;
    if (x->mode == RUN_TCP && (fd = echo_dial(x->echo_port)) < 0) {
        fprintf(stderr, "dvec-bench: cannot connect to port %u: %s\n", x->echo_port,
                strerror(errno));
        atomic_store(&x->failed, 1);
        free(mq);
        return NULL;
    }
    for (;;) {
        uint32_t q0 = atomic_fetch_add(&x->next, x->qbatch);
        if (q0 >= x->nq)
            break;
        uint32_t cnt = x->nq - q0 < x->qbatch ? x->nq - q0 : x->qbatch;
        double t0 = bench_now();
        if (x->mode == RUN_TCP) {
            if (echo_once(fd) != 0) {
                fprintf(stderr, "dvec-bench: echo: %s\n", strerror(errno));
                atomic_store(&x->failed, 1);
                break;
            }
        } else if (x->mode == RUN_HELLO) {
            struct msg req = {.type = MSG_HELLO};
            struct msg_reply rep;
            int rc = rpc_call(x->r, &req, &rep, err);
            msg_reply_free(&rep);
            if (rc != DV_OK) {
                fprintf(stderr, "dvec-bench: hello: %s\n", err);
                atomic_store(&x->failed, 1);
                break;
            }
        } else if (x->sdk) {
            dvec_search_params sp;
            dvec_search_params_init(&sp);
            sp.k = o->k;
            sp.ef = o->ef;
            dvec_records recs[64];
            dvec_error e;
            int rc = dvec_search_batch(x->sdk, COLL, x->queries + (size_t)q0 * o->dim, cnt, o->dim,
                                       &sp, recs, NULL, &e);
            if (rc != DVEC_OK) {
                fprintf(stderr, "dvec-bench: search through the SDK: %s\n", e.message);
                atomic_store(&x->failed, 1);
                break;
            }
            for (uint32_t j = 0; j < cnt; j++) {
                for (uint32_t i = 0; i < o->k; i++)
                    x->found[(size_t)(q0 + j) * o->k + i] =
                        i < recs[j].n ? recs[j].items[i].id.num : UINT64_MAX;
                dvec_records_free(&recs[j]);
            }
        } else if (x->r || x->mode == RUN_SPORT) {
            struct msg_target t = {0, g_epoch};
            for (uint32_t j = 0; j < cnt; j++)
                mq[j] = (struct msg_query){.vec = (float *)x->queries + (size_t)(q0 + j) * o->dim,
                                           .dim = o->dim,
                                           .k = o->k,
                                           .ef = o->ef};
            struct msg req = {.type = g_coord ? MSG_P_SEARCH : MSG_SEARCH, .addr = addr()};
            if (g_coord)
                req.u.csearch_req = (struct msg_csearch_req){mq, cnt, false, 0};
            else
                req.u.search_req = (struct msg_search_req){&t, 1, mq, cnt};
            struct msg_reply rep = {0};
            int rc;
            if (x->mode == RUN_SPORT) {
                struct tcpcall_job j = {.c = x->tc, .req = &req, .timeout_ms = 120000};
                tcpcall_many(&j, 1);
                rc = j.rc;
                rep = j.rep;
                snprintf(err, sizeof err, "%s", j.errmsg);
            } else {
                rc = rpc_call(x->r, &req, &rep, err);
            }
            if (rc == DV_OK && !g_coord &&
                (rep.m.u.search_rep.n_parts != 1 || rep.m.u.search_rep.parts[0].err.code != 0 ||
                 rep.m.u.search_rep.parts[0].n != cnt)) {
                rc = DV_EIO;
                snprintf(err, sizeof err, "partition error in the reply");
            }
            if (rc == DV_OK && g_coord && rep.m.u.csearch_rep.n != cnt) {
                rc = DV_EIO;
                snprintf(err, sizeof err, "wrong number of results in the reply");
            }
            if (rc != DV_OK) {
                fprintf(stderr, "dvec-bench: search: %s\n", err);
                atomic_store(&x->failed, 1);
                msg_reply_free(&rep);
                break;
            }
            for (uint32_t j = 0; j < cnt; j++) {
                const struct msg_hits *h = g_coord ? &rep.m.u.csearch_rep.results[j]
                                                   : &rep.m.u.search_rep.parts[0].results[j];
                for (uint32_t i = 0; i < o->k; i++)
                    x->found[(size_t)(q0 + j) * o->k + i] =
                        i < h->n ? h->hits[i].id.lo : UINT64_MAX;
            }
            msg_reply_free(&rep);
        } else {
            for (uint32_t j = 0; j < cnt; j++) {
                struct part_query pq = {
                    .vec = x->queries + (size_t)(q0 + j) * o->dim, .k = o->k, .ef = o->ef};
                struct part_result res;
                if (part_search(x->p, &pq, &res, NULL, err) != DV_OK) {
                    fprintf(stderr, "dvec-bench: search: %s\n", err);
                    atomic_store(&x->failed, 1);
                    break;
                }
                for (uint32_t i = 0; i < o->k; i++)
                    x->found[(size_t)(q0 + j) * o->k + i] =
                        i < res.n ? res.hits[i].id.lo : UINT64_MAX;
                part_result_free(&res);
            }
        }
        double dt = bench_now() - t0;
        for (uint32_t j = 0; j < cnt; j++)
            x->lat[q0 + j] = dt; /* the request's latency, for each of its queries */
    }
    if (fd >= 0)
        close(fd);
    free(mq);
    return NULL;
}

/* One timed pass over the queries; out keeps the best pass by QPS (its latencies and recall). */
static int run_round(const struct nopts *o, struct run *cfg, uint32_t threads,
                     const uint64_t *truth, struct result *out)
{
    struct run x = *cfg;
    x.o = o;
    x.nq = o->queries;
    atomic_store(&x.next, 0);
    atomic_store(&x.failed, 0);
    x.found = malloc((size_t)o->queries * o->k * sizeof *x.found);
    x.lat = malloc(o->queries * sizeof *x.lat);
    if (x.found == NULL || x.lat == NULL) {
        free(x.found);
        free(x.lat);
        return -1;
    }
    pthread_t t[64];
    double t0 = bench_now();
    for (uint32_t i = 1; i < threads; i++)
        pthread_create(&t[i], NULL, search_main, &x);
    search_main(&x);
    for (uint32_t i = 1; i < threads; i++)
        pthread_join(t[i], NULL);
    double qps = o->queries / (bench_now() - t0);
    int failed = atomic_load(&x.failed);
    if (!failed && qps > out->qps) {
        out->qps = qps;
        qsort(x.lat, o->queries, sizeof *x.lat, bench_cmp_double);
        out->p50_ms = x.lat[o->queries / 2] * 1e3;
        out->p99_ms = x.lat[(size_t)(o->queries * 0.99)] * 1e3;
        uint64_t hit = 0;
        if (x.mode == RUN_SEARCH || x.mode == RUN_SPORT)
            for (uint32_t q = 0; q < o->queries; q++)
                for (uint32_t i = 0; i < o->k; i++)
                    for (uint32_t j = 0; j < o->k; j++)
                        if (x.found[(size_t)q * o->k + i] == truth[(size_t)q * o->k + j]) {
                            hit++;
                            break;
                        }
        out->recall = (double)hit / ((double)o->queries * o->k);
    }
    free(x.found);
    free(x.lat);
    return failed ? -1 : 0;
}

/* Runs what a cluster benchmark compares, best of o->rounds passes each (not interleaved). */
int bench_run_searches(const struct nopts *o, struct rpc *r, struct part *p, dvec_client *sdk,
                       const float *qv, const uint64_t *truth, uint32_t threads, uint32_t qbatch,
                       struct result *out)
{
    struct run x = {
        .r = r, .p = p, .sdk = sdk, .queries = qv, .qbatch = qbatch, .mode = RUN_SEARCH};
    memset(out, 0, sizeof *out);
    for (uint32_t round = 0; round < o->rounds; round++)
        if (run_round(o, &x, threads, truth, out) != 0)
            return -1;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dvec-bench node [--shard PATH] [--dir D] [--n N] [--dim D] [--queries Q]\n"
            "         [--k K] [--ef EF] [--batch B] [--port P] [--workers W] [--rounds R]\n"
            "         [--qbatch Q1,Q2,...]\n"
            "  Starts a dvec-shard, loads N points through it (fsync always), then runs the\n"
            "  same queries through the node over loopback and in-process on the same\n"
            "  replica (after stopping the node), with 1 and 2 client threads, one query per\n"
            "  request and --qbatch queries per request (as a coordinator batches them),\n"
            "  passes interleaved; then an empty request through the node and a plain TCP\n"
            "  ping-pong, the floors of one request/reply over loopback.\n"
            "  Defaults: --n 100000 --dim 128 --queries 2000 --k 10 --ef 64 --batch 1000\n"
            "  --port 17400 --workers 2 --rounds 3 --qbatch 16,64 --dir /var/tmp/dvec-bench-node;\n"
            "  --shard defaults to ../shard/dvec-shard next to this program.\n");
}

int bench_node_main(int argc, char **argv)
{
    static char shard_path[4200];
    struct nopts o = {NULL,     "/var/tmp/dvec-bench-node",
                      100000,   128,
                      2000,     10,
                      64,       1000,
                      17400,    2,
                      3,        16,
                      {16, 64}, 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (v == NULL) {
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--shard") == 0) {
            o.shard = v, i++;
        } else if (strcmp(a, "--dir") == 0) {
            o.dir = v, i++;
        } else if (strcmp(a, "--n") == 0) {
            o.n = strtoull(v, NULL, 10), i++;
        } else if (strcmp(a, "--dim") == 0) {
            o.dim = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--queries") == 0) {
            o.queries = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--k") == 0) {
            o.k = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--ef") == 0) {
            o.ef = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--batch") == 0) {
            o.batch = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--port") == 0) {
            o.port = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--workers") == 0) {
            o.workers = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--qbatch") == 0) {
            o.n_qbatch = 0;
            for (const char *c = v; *c && o.n_qbatch < 8; c++) {
                o.qbatches[o.n_qbatch++] = (uint32_t)strtoul(c, (char **)&c, 10);
                if (o.qbatches[o.n_qbatch - 1] == 0 || (*c != ',' && *c != '\0')) {
                    usage(stderr);
                    return 2;
                }
                if (*c == '\0')
                    break;
            }
            i++;
        } else if (strcmp(a, "--rounds") == 0) {
            o.rounds = (uint32_t)atoi(v), i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.n == 0 || o.dim == 0 || o.queries == 0 || o.k == 0 || o.batch == 0 || o.rounds == 0 ||
        o.n_qbatch == 0) {
        usage(stderr);
        return 2;
    }
    if (o.shard == NULL) {
        char self[4096];
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        self[k > 0 ? k : 0] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(shard_path, sizeof shard_path, "%s/../shard/dvec-shard", self);
        o.shard = shard_path;
    }
    char cmd[13000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", o.dir);
    if (system(cmd) != 0)
        return 1;

    float *data = malloc(o.n * o.dim * sizeof(float));
    float *qv = malloc((size_t)o.queries * o.dim * sizeof(float));
    for (uint64_t i = 0; i < o.n; i++)
        bench_gen_vec(i, o.dim, data + i * o.dim);
    for (uint32_t q = 0; q < o.queries; q++)
        bench_gen_vec(o.n + 1000003ull * (q + 1), o.dim, qv + (size_t)q * o.dim);
    uint64_t *truth = bench_oracle_l2(data, o.n, o.dim, qv, o.queries, o.k, dist_get()->l2sq);

    char url[128], err[DV_ERRMSG_SIZE];
    pid_t pid = start_node(&o, url, sizeof url);
    struct rpc *r;
    struct rpc_opts ro;
    rpc_opts_default(&ro);
    ro.timeout_ms = 120000;
    if (rpc_open(url, &ro, &r, err) != DV_OK || wait_ready(r) != 0) {
        fprintf(stderr, "dvec-bench: %s\n", err);
        kill(pid, SIGKILL);
        return 1;
    }
    struct msg req = {.type = MSG_REPLICA_CREATE, .addr = addr()};
    req.u.create_req = (struct msg_create_req){{.dim = o.dim,
                                                .metric = HNSW_L2,
                                                .m = 16,
                                                .ef_construction = 200,
                                                .ef_search = o.ef,
                                                .fsync = 0,
                                                .sq8 = false},
                                               0};
    struct msg_reply rep;
    int rc = rpc_call(r, &req, &rep, err);
    msg_reply_free(&rep);
    if (rc != DV_OK) {
        fprintf(stderr, "dvec-bench: create: %s\n", err);
        kill(pid, SIGKILL);
        return 1;
    }

    /* Upserts through the node, fsync always: 1 then 2 client threads over halves. */
    double up[2];
    uint64_t half = o.n / 2;
    for (int t = 0; t < 2; t++) {
        struct load l = {.r = r, .o = &o, .data = data};
        struct nopts part = o;
        part.n = t == 0 ? half : o.n;
        l.o = &part;
        atomic_store(&l.next, t == 0 ? 0 : half);
        double t0 = bench_now();
        pthread_t th;
        if (t == 1)
            pthread_create(&th, NULL, bench_load_main, &l);
        bench_load_main(&l);
        if (t == 1)
            pthread_join(th, NULL);
        up[t] = (double)(part.n - (t == 0 ? 0 : half)) / (bench_now() - t0);
        if (atomic_load(&l.failed)) {
            kill(pid, SIGKILL);
            return 1;
        }
    }

    /* Stop the node (SIGTERM checkpoints), copy its replica for the in-process runs, start it
     * again on its own: both paths then run in one process lifetime each, and their passes are
     * interleaved so that the machine's drift falls on both alike. */
    rpc_close(r);
    int st = bench_stop_node(pid);
    if (st != 0) {
        fprintf(stderr, "dvec-bench: dvec-shard exited with status %d after SIGTERM\n", st);
        return 1;
    }
    char rdir[4100];
    snprintf(rdir, sizeof rdir, "%s.inproc", o.dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s/replicas/" COLL ".0/data' '%s'", rdir,
             o.dir, rdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "dvec-bench: could not copy the replica to %s\n", rdir);
        return 1;
    }
    pid = start_node(&o, url, sizeof url);
    if (rpc_open(url, &ro, &r, err) != DV_OK || wait_ready(r) != 0) {
        fprintf(stderr, "dvec-bench: %s\n", err);
        kill(pid, SIGKILL);
        return 1;
    }
    struct part_opts po;
    part_opts_default(&po);
    po.background = false;
    struct part *p;
    if (part_open(io_posix(), rdir, &po, &p, err) != DV_OK) {
        fprintf(stderr, "dvec-bench: %s\n", err);
        kill(pid, SIGKILL);
        return 1;
    }
    struct echo echo;
    if (echo_start(&echo, (uint16_t)(o.port + 1)) != 0) {
        kill(pid, SIGKILL);
        return 1;
    }

    /* Rows: in-process, node with one query per request, node with each --qbatch, the empty
     * request through the node, the plain TCP ping-pong; each at 1 and 2 client threads. */
    enum { ROW_LOCAL, ROW_NODE1, ROW_SPORT, ROW_HELLO, ROW_TCP, ROW_BATCH };
    uint32_t nrows = ROW_BATCH + o.n_qbatch;
    struct run cfg[ROW_BATCH + 8];
    struct result res[ROW_BATCH + 8][2];
    memset(res, 0, sizeof res);
    cfg[ROW_LOCAL] = (struct run){.p = p, .queries = qv, .qbatch = 1, .mode = RUN_SEARCH};
    cfg[ROW_NODE1] = (struct run){.r = r, .queries = qv, .qbatch = 1, .mode = RUN_SEARCH};
    struct tcpcall *tc;
    char surl[64];
    snprintf(surl, sizeof surl, "tcp://127.0.0.1:%u", o.port + 2);
    if (tcpcall_open(surl, 8, &tc, err) != DV_OK) {
        fprintf(stderr, "dvec-bench: %s\n", err);
        kill(pid, SIGKILL);
        return 1;
    }
    cfg[ROW_SPORT] = (struct run){.tc = tc, .queries = qv, .qbatch = 1, .mode = RUN_SPORT};
    cfg[ROW_HELLO] = (struct run){.r = r, .queries = qv, .qbatch = 1, .mode = RUN_HELLO};
    cfg[ROW_TCP] =
        (struct run){.queries = qv, .qbatch = 1, .mode = RUN_TCP, .echo_port = echo.port};
    for (uint32_t b = 0; b < o.n_qbatch; b++)
        cfg[ROW_BATCH + b] =
            (struct run){.r = r, .queries = qv, .qbatch = o.qbatches[b], .mode = RUN_SEARCH};
    int failed = 0;
    for (uint32_t round = 0; round < o.rounds && !failed; round++)
        for (uint32_t row = 0; row < nrows && !failed; row++)
            for (uint32_t t = 1; t <= 2 && !failed; t++)
                failed = run_round(&o, &cfg[row], t, truth, &res[row][t - 1]);
    echo_stop(&echo);
    tcpcall_close(tc);
    part_close(p);
    rpc_close(r);
    st = bench_stop_node(pid);
    if (failed || st != 0) {
        if (st != 0)
            fprintf(stderr, "dvec-bench: dvec-shard exited with status %d after SIGTERM\n", st);
        return 1;
    }

    printf("\n## dvec-bench node: %llu x %u (clustered), L2, M 16, ef_construction 200, "
           "ef %u, k %u, %u queries, best of %u interleaved rounds, node workers %u, kernel %s\n\n",
           (unsigned long long)o.n, o.dim, o.ef, o.k, o.queries, o.rounds, o.workers,
           dist_get()->name);
    printf("| path | client threads | queries per request | QPS | p50 ms | p99 ms | recall@%u "
           "| node / in-process |\n",
           o.k);
    printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int t = 0; t < 2; t++) {
        const struct result *l = &res[ROW_LOCAL][t];
        printf("| in-process part_search | %d | 1 | %.0f | %.3f | %.3f | %.4f | |\n", t + 1, l->qps,
               l->p50_ms, l->p99_ms, l->recall);
        for (uint32_t row = ROW_NODE1; row < nrows; row++) {
            if (row == ROW_HELLO || row == ROW_TCP)
                continue;
            const struct result *x = &res[row][t];
            printf("| %s | %d | %u | %.0f | %.3f | %.3f | %.4f | %.2fx |\n",
                   row == ROW_SPORT ? "dvec-shard, search port (plain TCP)"
                                    : "dvec-shard over loopback",
                   t + 1, cfg[row].qbatch, x->qps, x->p50_ms, x->p99_ms, x->recall,
                   x->qps / l->qps);
        }
    }
    printf("\nLatency of a request with several queries is the whole request's.\n");
    printf("\n| round trip without search work | client threads | round trips/s | p50 ms | "
           "p99 ms | search + this round trip, bound / in-process "
           "|\n|---|---:|---:|---:|---:|---:|\n");
    for (int t = 0; t < 2; t++) {
        const struct result *l = &res[ROW_LOCAL][t];
        for (uint32_t row = ROW_HELLO; row <= ROW_TCP; row++) {
            const struct result *x = &res[row][t];
            /* A client thread waits out its round trip and then the search: at most
             * threads / (1/x + 1/l) requests per second, if nothing else got slower. */
            double bound = 1.0 / (1.0 / x->qps + 1.0 / l->qps);
            printf("| %s | %d | %.0f | %.3f | %.3f | %.2fx |\n",
                   row == ROW_HELLO ? "empty request (hello) through dvec-shard"
                                    : "plain TCP ping-pong, 200 bytes (no NNG)",
                   t + 1, x->qps, x->p50_ms, x->p99_ms, bound / l->qps);
        }
    }
    printf("\n| upsert through the node (fsync always, batches of %u) | client threads | "
           "vectors/s |\n|---|---:|---:|\n",
           o.batch);
    printf("| first half | 1 | %.0f |\n| second half | 2 | %.0f |\n", up[0], up[1]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", rdir);
    if (system(cmd) != 0)
        fprintf(stderr, "dvec-bench: could not remove %s\n", rdir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", o.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "dvec-bench: could not remove %s\n", o.dir);
    free(data);
    free(qv);
    free(truth);
    return 0;
}

/* ---- dvec-bench cluster: through a coordinator ------------------------------------------- */
