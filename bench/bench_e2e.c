/* bench_e2e.c - `dvec-bench e2e`: search end to end through local clusters (one dvec-coord and
 * N dvec-shard on 127.0.0.1) on a TEXMEX data set, against the in-process HNSW index, compared
 * at the same recall. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_e2e.h"
#include "bench_util.h"
#include "dist.h"
#include "err.h"
#include "hnsw.h"
#include "mpk.h"
#include "rpc.h"

#define E2E_MAX_LIST    16   /* entries of --nodes and --ef */
#define E2E_MAX_NODES   16   /* dvec-shard processes of one cluster */
#define E2E_MAX_THREADS 256  /* --clients, --load-clients */
#define E2E_MAX_DIR     3800 /* --dir, so that every path under it fits E2E_PATH */
#define E2E_PATH        4096
#define E2E_M           16
#define E2E_EFC         200
#define E2E_BUILD_THR   2   /* threads of the in-process build */
#define E2E_WORKERS     "2" /* --workers of every dvec-shard */
#define E2E_STOP_S      60  /* longest wait for a cluster's processes after SIGTERM */
#define E2E_COLL        "e2e"

static const double e2e_targets[] = {0.95, 0.99};

struct e2e_opts {
    const char *base, *queries, *gt, *dir, *json;
    uint32_t nodes[E2E_MAX_LIST], n_nodes;
    uint32_t efs[E2E_MAX_LIST], n_efs;
    uint32_t parts, clients, qbatch, k, batch, load_clients, port, queries_max;
};

/* The data set: base rows (a point's id is its row number), queries and gdim true ids each. */
struct e2e_data {
    float *base, *queries;
    int32_t *gt;
    size_t n, nq;
    uint32_t dim, gdim;
};

/* One pass of every query at one ef. */
struct e2e_result {
    double recall, qps, p50_ms, p99_ms;
};

/* The in-process index (nodes 0) or one cluster: how long loading took, and each ef's pass. */
struct e2e_path {
    char name[64];
    uint32_t nodes, parts;
    char spread[4 * E2E_MAX_NODES + 8]; /* partitions on each node: "2+2+2" */
    double load_s;                      /* build, or upsert through the coordinator */
    struct e2e_result res[E2E_MAX_LIST];
};

static void e2e_usage(FILE *f)
{
    fprintf(f, "usage: dvec-bench e2e [--base B.fvecs] [--queries Q.fvecs] [--gt G.ivecs]\n"
               "         [--nodes 1,3] [--parts 0] [--ef 16,32,64,128] [--clients 2] [--qbatch 1]\n"
               "         [--k 10] [--batch 1000] [--load-clients 2] [--port 17600]\n"
               "         [--dir /var/tmp/dvec-bench-e2e] [--queries-max N] [--json FILE]\n"
               "  Builds the HNSW index in-process (M 16, ef_construction 200, L2, 2 threads) and\n"
               "  runs every query at each ef with --clients threads. Then for each entry of\n"
               "  --nodes starts one dvec-coord and that many dvec-shard (--workers 2) on\n"
               "  127.0.0.1 (ports from --port up), creates a collection of --parts partitions\n"
               "  (0: the coordinator's default), upserts the base through the coordinator\n"
               "  (--load-clients threads, --batch points per request, fsync always), runs the\n"
               "  same queries through it (--qbatch per request) and stops the cluster. Prints\n"
               "  recall@k, QPS and p50/p99 latency per path and ef, and each path's best QPS at\n"
               "  recall 0.95 and 0.99. Defaults: the files of data/fashion-mnist; --queries-max\n"
               "  0 runs every query. --json FILE also writes the results as JSON.\n");
}

/* ---- options ----------------------------------------------------------------------------- */

/* A whole decimal number in [lo, hi]; -1 otherwise. */
static int e2e_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v < lo || v > hi)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* "A,B,C": 1..E2E_MAX_LIST numbers, each in [lo, hi]; -1 otherwise. */
static int e2e_list(const char *s, uint32_t lo, uint32_t hi, uint32_t *out, uint32_t *n)
{
    char item[32];
    *n = 0;
    for (const char *p = s;; p++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (*n == E2E_MAX_LIST || len == 0 || len >= sizeof item)
            return -1;
        memcpy(item, p, len);
        item[len] = '\0';
        if (e2e_u32(item, lo, hi, &out[(*n)++]) != 0)
            return -1;
        if (comma == NULL)
            return 0;
        p = comma;
    }
}

/* 0: run, 1: --help was asked, 2: bad options. */
static int e2e_parse(int argc, char **argv, struct e2e_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (v == NULL) {
            fprintf(stderr, "dvec-bench e2e: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--base") == 0)
            o->base = v;
        else if (strcmp(a, "--queries") == 0)
            o->queries = v;
        else if (strcmp(a, "--gt") == 0)
            o->gt = v;
        else if (strcmp(a, "--dir") == 0)
            o->dir = v, bad = v[0] == '\0' || strlen(v) > E2E_MAX_DIR || strcmp(v, "/") == 0;
        else if (strcmp(a, "--json") == 0)
            o->json = v, bad = v[0] == '\0';
        else if (strcmp(a, "--nodes") == 0)
            bad = e2e_list(v, 1, E2E_MAX_NODES, o->nodes, &o->n_nodes);
        else if (strcmp(a, "--ef") == 0)
            bad = e2e_list(v, 1, 65535, o->efs, &o->n_efs);
        else if (strcmp(a, "--parts") == 0)
            bad = e2e_u32(v, 0, 1024, &o->parts);
        else if (strcmp(a, "--clients") == 0)
            bad = e2e_u32(v, 1, E2E_MAX_THREADS, &o->clients);
        else if (strcmp(a, "--qbatch") == 0)
            bad = e2e_u32(v, 1, 10000, &o->qbatch);
        else if (strcmp(a, "--k") == 0)
            bad = e2e_u32(v, 1, 100000, &o->k);
        else if (strcmp(a, "--batch") == 0)
            bad = e2e_u32(v, 1, 65536, &o->batch);
        else if (strcmp(a, "--load-clients") == 0)
            bad = e2e_u32(v, 1, E2E_MAX_THREADS, &o->load_clients);
        else if (strcmp(a, "--port") == 0)
            bad = e2e_u32(v, 1024, 65535 - 1 - 2 * E2E_MAX_NODES, &o->port);
        else if (strcmp(a, "--queries-max") == 0)
            bad = e2e_u32(v, 0, UINT32_MAX, &o->queries_max);
        else {
            fprintf(stderr, "dvec-bench e2e: unknown option %s\n", a);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "dvec-bench e2e: %s: bad value '%s'\n", a, v);
            return 2;
        }
    }
    return 0;
}

/* ---- searches ---------------------------------------------------------------------------- */

static struct msg_addr e2e_addr(void)
{
    return (struct msg_addr){.coll = {E2E_COLL, sizeof E2E_COLL - 1}};
}

/* Starts fn(arg) on threads - 1 new threads, runs it on the calling one too and joins them.
 * Returns the number of threads that could not be started. */
static uint32_t e2e_fan_out(void *(*fn)(void *), void *arg, uint32_t threads)
{
    pthread_t tid[E2E_MAX_THREADS];
    uint32_t started = 0;
    for (uint32_t i = 1; i < threads; i++)
        if (pthread_create(&tid[started], NULL, fn, arg) == 0)
            started++;
    fn(arg);
    for (uint32_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    return threads - 1 - started;
}

/*
 * The queries of one pass, taken by the client threads `qbatch` at a time. Exactly one of
 * `ix` (in-process, qbatch 1) and `r` (through the coordinator) is set. Each request writes
 * its own slots of found[] and lat[], so the threads share only `next` and `failed`.
 */
struct e2e_job {
    const struct e2e_data *d;
    const char *path;
    struct hnsw_index *ix;
    const uint32_t *row_of; /* slot -> row, with ix */
    struct rpc *r;
    uint32_t nq, k, ef, qbatch;
    uint64_t *found; /* [nq * k] rows, UINT64_MAX past the hits */
    double *lat;     /* [requests] seconds */
    atomic_uint next;
    atomic_int failed;
};

/* Queries q0 .. q0 + cnt - 1 in one MSG_P_SEARCH; mq holds cnt entries of scratch. */
static int e2e_search_remote(struct e2e_job *j, uint32_t q0, uint32_t cnt, struct msg_query *mq,
                             char *err)
{
    for (uint32_t i = 0; i < cnt; i++)
        mq[i] = (struct msg_query){.vec = j->d->queries + (size_t)(q0 + i) * j->d->dim,
                                   .dim = j->d->dim,
                                   .k = j->k,
                                   .ef = j->ef};
    struct msg req = {.type = MSG_P_SEARCH, .addr = e2e_addr()};
    req.u.csearch_req = (struct msg_csearch_req){mq, cnt, false, 0};
    struct msg_reply rep;
    int rc = rpc_call(j->r, &req, &rep, err);
    if (rc == DV_OK && rep.m.u.csearch_rep.n != cnt) {
        rc = DV_EPROTO;
        dv_errmsg_set(err, "%u result lists for %u queries", rep.m.u.csearch_rep.n, cnt);
    }
    for (uint32_t i = 0; rc == DV_OK && i < cnt; i++) {
        const struct msg_hits *h = &rep.m.u.csearch_rep.results[i];
        uint64_t *out = j->found + (size_t)(q0 + i) * j->k;
        for (uint32_t r = 0; r < j->k; r++)
            out[r] = r < h->n && h->hits[r].id.kind == PID_NUM ? h->hits[r].id.lo : UINT64_MAX;
    }
    msg_reply_free(&rep);
    return rc;
}

/* Query q on the in-process index; hits holds k entries of scratch. */
static int e2e_search_local(struct e2e_job *j, uint32_t q, struct hnsw_hit *hits, char *err)
{
    struct hnsw_query hq = {.vec = j->d->queries + (size_t)q * j->d->dim,
                            .k = j->k,
                            .ef = j->ef,
                            .quant = HNSW_QUANT_OFF};
    uint32_t n;
    int rc = hnsw_search(j->ix, &hq, hits, &n, NULL);
    if (rc != DV_OK) {
        dv_errmsg_set(err, "hnsw_search of query %u: %s", q, dv_strerror(rc));
        return rc;
    }
    uint64_t *out = j->found + (size_t)q * j->k;
    for (uint32_t r = 0; r < j->k; r++)
        out[r] = r < n ? j->row_of[hits[r].slot] : UINT64_MAX;
    return DV_OK;
}

/* One client thread: requests until the queries run out or a request fails. */
static void *e2e_client_main(void *arg)
{
    struct e2e_job *j = arg;
    char err[DV_ERRMSG_SIZE] = "out of memory";
    struct msg_query *mq = calloc(j->qbatch, sizeof *mq);
    struct hnsw_hit *hits = malloc(j->k * sizeof *hits);
    int rc = mq && hits ? DV_OK : DV_ENOMEM;
    while (rc == DV_OK && !atomic_load(&j->failed)) {
        uint32_t q0 = atomic_fetch_add(&j->next, j->qbatch);
        if (q0 >= j->nq)
            break;
        uint32_t cnt = j->nq - q0 < j->qbatch ? j->nq - q0 : j->qbatch;
        double t0 = bench_now();
        rc = j->r ? e2e_search_remote(j, q0, cnt, mq, err) : e2e_search_local(j, q0, hits, err);
        j->lat[q0 / j->qbatch] = bench_now() - t0;
    }
    if (rc != DV_OK) {
        fprintf(stderr, "dvec-bench e2e: %s: search at ef %u: %s (%s)\n", j->path, j->ef, err,
                dv_errname(rc));
        atomic_store(&j->failed, 1);
    }
    free(mq);
    free(hits);
    return NULL;
}

/* recall@k: the share of each query's first k true ids found among its k hits. */
static double e2e_recall(const struct e2e_data *d, uint32_t nq, uint32_t k, const uint64_t *found)
{
    uint64_t hit = 0;
    for (uint32_t q = 0; q < nq; q++) {
        const int32_t *g = d->gt + (size_t)q * d->gdim;
        for (uint32_t r = 0; r < k; r++) {
            uint64_t id = found[(size_t)q * k + r];
            for (uint32_t t = 0; id != UINT64_MAX && t < k; t++)
                if (g[t] >= 0 && (uint64_t)g[t] == id) {
                    hit++;
                    break;
                }
        }
    }
    return (double)hit / ((double)nq * k);
}

/* Runs every query of the job on `threads` client threads and measures the pass. */
static int e2e_pass(struct e2e_job *j, uint32_t threads, struct e2e_result *out)
{
    size_t nreq = (j->nq + j->qbatch - 1) / j->qbatch;
    atomic_store(&j->next, 0);
    atomic_store(&j->failed, 0);
    double t0 = bench_now();
    uint32_t missing = e2e_fan_out(e2e_client_main, j, threads);
    double el = bench_now() - t0;
    if (missing) {
        fprintf(stderr, "dvec-bench e2e: %s: could not start %u client threads\n", j->path,
                missing);
        return -1;
    }
    if (atomic_load(&j->failed))
        return -1;
    qsort(j->lat, nreq, sizeof *j->lat, bench_cmp_double);
    size_t i99 = (size_t)((double)nreq * 0.99);
    out->qps = (double)j->nq / el;
    out->p50_ms = j->lat[nreq / 2] * 1e3;
    out->p99_ms = j->lat[i99 < nreq ? i99 : nreq - 1] * 1e3;
    out->recall = e2e_recall(j->d, j->nq, j->k, j->found);
    return 0;
}

/* ---- the in-process index ---------------------------------------------------------------- */

/* Builds the index over the base and runs the passes; found and lat are the passes' scratch. */
static int e2e_inproc(const struct e2e_opts *o, const struct e2e_data *d, uint32_t nq,
                      struct e2e_path *p, uint64_t *found, double *lat)
{
    snprintf(p->name, sizeof p->name, "in-process HNSW");
    struct hnsw_params hp;
    hnsw_params_default(&hp);
    hp.dim = d->dim;
    hp.metric = HNSW_L2;
    hp.m = E2E_M;
    hp.ef_construction = E2E_EFC;
    hp.ef_search = o->efs[0];
    hp.capacity = (uint32_t)d->n;
    struct hnsw_index *ix = NULL;
    uint32_t *slots = malloc(d->n * sizeof *slots), *row_of = malloc(d->n * sizeof *row_of);
    int rc = slots && row_of ? DV_OK : DV_ENOMEM;
    fprintf(stderr, "dvec-bench e2e: in-process: building the index on %d threads\n",
            E2E_BUILD_THR);
    double t0 = bench_now();
    if (rc == DV_OK)
        rc = hnsw_create(&hp, &ix);
    if (rc == DV_OK)
        rc = hnsw_insert_batch(ix, d->base, d->n, E2E_BUILD_THR, slots);
    p->load_s = bench_now() - t0;
    for (size_t i = 0; rc == DV_OK && i < d->n; i++) {
        if (slots[i] >= d->n)
            rc = DV_ERANGE;
        else
            row_of[slots[i]] = (uint32_t)i;
    }
    if (rc != DV_OK) {
        fprintf(stderr, "dvec-bench e2e: in-process: build: %s\n", dv_strerror(rc));
        goto out;
    }
    struct e2e_job j = {.d = d,
                        .path = p->name,
                        .ix = ix,
                        .row_of = row_of,
                        .nq = nq,
                        .k = o->k,
                        .qbatch = 1,
                        .found = found,
                        .lat = lat};
    for (uint32_t e = 0; e < o->n_efs; e++) {
        fprintf(stderr, "dvec-bench e2e: in-process: searching at ef %u\n", o->efs[e]);
        j.ef = o->efs[e];
        if (e2e_pass(&j, o->clients, &p->res[e]) != 0) {
            rc = DV_EIO;
            goto out;
        }
    }
out:
    if (ix)
        hnsw_destroy(ix);
    free(slots);
    free(row_of);
    return rc == DV_OK ? 0 : -1;
}

/* ---- the cluster's processes ------------------------------------------------------------- */

/* The processes of one cluster: [0] dvec-coord, [1..] dvec-shard n1, n2, ...; pid 0 once
 * reaped. */
struct e2e_cluster {
    pid_t pid[1 + E2E_MAX_NODES];
    char name[1 + E2E_MAX_NODES][16];
    uint32_t n;
    struct rpc *r; /* to the coordinator */
};

static int e2e_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* True for the names this benchmark makes in --dir: coord, nN, and their .log files. */
static bool e2e_ours(const char *name)
{
    if (strncmp(name, "coord", 5) == 0)
        name += 5;
    else if (name[0] == 'n' && name[1] >= '1' && name[1] <= '9')
        for (name++; *name >= '0' && *name <= '9'; name++)
            ;
    else
        return false;
    return *name == '\0' || strcmp(name, ".log") == 0;
}

/*
 * Removes `dir` and everything under it (symbolic links are removed, never followed), but
 * only when it holds nothing except what e2e_ours() names, so that a mistyped --dir cannot
 * wipe someone's files: -1 with errno ENOTEMPTY then.
 */
static int e2e_rmtree(const char *dir)
{
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return errno == ENOENT ? 0 : -1;
    bool foreign = false;
    for (struct dirent *de; !foreign && (de = readdir(dh)) != NULL;)
        foreign =
            strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 && !e2e_ours(de->d_name);
    closedir(dh);
    if (foreign) {
        errno = ENOTEMPTY;
        return -1;
    }
    return nftw(dir, e2e_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Starts argv[0] with stdout and stderr going to `log` and records it as c->name[c->n]. The
 * child dies with this process (PR_SET_PDEATHSIG), so an interrupted benchmark leaves no
 * server behind. Only async-signal-safe calls run in the child before exec (nng's threads
 * live in this process).
 */
static int e2e_spawn(struct e2e_cluster *c, const char *name, char *const argv[], const char *log,
                     char *err)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        dv_errmsg_set(err, "%s: %s", log, strerror(errno));
        return DV_EOS;
    }
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        static const char msg[] = "dvec-bench e2e: exec failed\n";
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        if (write(2, msg, sizeof msg - 1) < 0)
            _exit(126);
        _exit(127);
    }
    int e = errno;
    close(fd);
    if (pid < 0) {
        dv_errmsg_set(err, "fork for %s: %s", name, strerror(e));
        return DV_EOS;
    }
    c->pid[c->n] = pid;
    snprintf(c->name[c->n], sizeof c->name[c->n], "%s", name);
    c->n++;
    return DV_OK;
}

/* True when a process of the cluster has exited (it is reaped and named in err). */
static bool e2e_exited(struct e2e_cluster *c, char *err)
{
    for (uint32_t i = 0; i < c->n; i++) {
        int st;
        if (c->pid[i] > 0 && waitpid(c->pid[i], &st, WNOHANG) == c->pid[i]) {
            c->pid[i] = 0;
            dv_errmsg_set(err, "%s exited with status %d", c->name[i],
                          WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            return true;
        }
    }
    return false;
}

/* SIGKILLs and reaps every process of the cluster still running. */
static void e2e_kill(struct e2e_cluster *c)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->pid[i] > 0) {
            kill(c->pid[i], SIGKILL);
            waitpid(c->pid[i], NULL, 0);
            c->pid[i] = 0;
        }
}

/* SIGTERMs the nodes, then the coordinator, and waits up to E2E_STOP_S for all of them; any
 * still running then is killed. Returns the number that did not exit with status 0. */
static uint32_t e2e_stop(struct e2e_cluster *c)
{
    uint32_t unclean = 0, left = 0;
    for (uint32_t i = c->n; i-- > 0;)
        if (c->pid[i] > 0) {
            kill(c->pid[i], SIGTERM);
            left++;
        }
    double end = bench_now() + E2E_STOP_S;
    while (left > 0 && bench_now() < end) {
        for (uint32_t i = 0; i < c->n; i++) {
            int st;
            if (c->pid[i] <= 0 || waitpid(c->pid[i], &st, WNOHANG) != c->pid[i])
                continue;
            c->pid[i] = 0;
            left--;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "dvec-bench e2e: %s exited with status %d after SIGTERM\n",
                        c->name[i], WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
                unclean++;
            }
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    for (uint32_t i = 0; i < c->n; i++)
        if (c->pid[i] > 0) {
            fprintf(stderr, "dvec-bench e2e: %s still ran %d s after SIGTERM: killed\n", c->name[i],
                    E2E_STOP_S);
            unclean++;
        }
    e2e_kill(c);
    return unclean;
}

/* Alive nodes in the coordinator's cluster status (a msgpack map with "nodes": [{"state"}]). */
static uint32_t e2e_alive(const struct msg_bytes *status)
{
    const uint8_t *v;
    size_t vn;
    uint32_t n, alive = 0;
    struct mpk r;
    if (status->p == NULL || mpk_map_find(status->p, status->len, "nodes", 5, &v, &vn) != DV_OK)
        return 0;
    mpk_init(&r, v, vn);
    if (mpk_array(&r, &n) != DV_OK)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e, *s;
        size_t en, sn;
        const char *str;
        uint32_t len;
        struct mpk sr;
        if (mpk_span(&r, &e, &en) != DV_OK)
            break;
        if (mpk_map_find(e, en, "state", 5, &s, &sn) != DV_OK)
            continue;
        mpk_init(&sr, s, sn);
        alive += mpk_str(&sr, &str, &len) == DV_OK && len == 5 && memcmp(str, "alive", 5) == 0;
    }
    return alive;
}

/* Waits up to 30 s for `want` nodes to be alive in the coordinator's map (so that the default
 * partition count and the placement count them all), failing as soon as a process exits. */
static int e2e_wait_nodes(struct e2e_cluster *c, uint32_t want, char *err)
{
    uint32_t alive = 0;
    double end = bench_now() + 30;
    while (bench_now() < end) {
        if (e2e_exited(c, err))
            return DV_EIO;
        struct msg req = {.type = MSG_CLUSTER};
        struct msg_reply rep;
        int rc = rpc_call_timeout(c->r, &req, &rep, 1000, err);
        if (rc == DV_OK)
            alive = e2e_alive(&rep.m.u.cluster_rep.status);
        msg_reply_free(&rep);
        if (rc == DV_OK && alive >= want)
            return DV_OK;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    dv_errmsg_set(err, "%u of %u nodes alive in the coordinator's map after 30 s", alive, want);
    return DV_ETIMEDOUT;
}

/* Creates the collection (retrying for up to 10 s while the coordinator settles) and reads
 * back its partition count and placement into p. */
static int e2e_create(const struct e2e_opts *o, const struct e2e_data *d, struct e2e_cluster *c,
                      struct e2e_path *p, char *err)
{
    int rc = DV_EIO;
    double end = bench_now() + 10;
    while (rc != DV_OK && bench_now() < end) {
        struct msg req = {.type = MSG_COLL_CREATE, .addr = e2e_addr()};
        req.u.coll_cfg = (struct msg_coll_cfg){.dim = d->dim,
                                               .metric = HNSW_L2,
                                               .m = E2E_M,
                                               .ef_construction = E2E_EFC,
                                               .ef_search = o->efs[0],
                                               .partitions = o->parts};
        struct msg_reply rep;
        rc = rpc_call(c->r, &req, &rep, err);
        msg_reply_free(&rep);
        if (rc == DV_EINVAL || rc == DV_EEXIST)
            break;
        if (rc != DV_OK) {
            struct timespec ts = {0, 100 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (rc != DV_OK) {
        dv_errmsg_prefix(err, "create collection");
        return rc;
    }
    struct msg req = {.type = MSG_COLL_INFO, .addr = e2e_addr()};
    struct msg_reply rep;
    if ((rc = rpc_call(c->r, &req, &rep, err)) != DV_OK) {
        msg_reply_free(&rep);
        dv_errmsg_prefix(err, "collection info");
        return rc;
    }
    const struct msg_coll_info_rep *info = &rep.m.u.coll_info_rep;
    p->parts = info->cfg.partitions;
    uint32_t on[E2E_MAX_NODES] = {0};
    for (uint32_t i = 0; i < info->n_parts; i++)
        for (uint32_t k = 0; k < info->parts[i].n_nodes; k++) {
            const struct msg_str *id = &info->parts[i].nodes[k];
            for (uint32_t nd = 1; nd < c->n; nd++)
                if (id->len == strlen(c->name[nd]) && memcmp(id->p, c->name[nd], id->len) == 0)
                    on[nd - 1]++;
        }
    size_t used = 0;
    p->spread[0] = '\0';
    for (uint32_t nd = 0; nd + 1 < c->n; nd++)
        used += (size_t)snprintf(p->spread + used, sizeof p->spread - used, "%s%u", nd ? "+" : "",
                                 on[nd]);
    msg_reply_free(&rep);
    return DV_OK;
}

/* ---- loading through the coordinator ----------------------------------------------------- */

/* The base, taken by the loading threads `batch` rows at a time. */
struct e2e_load {
    struct rpc *r;
    const struct e2e_data *d;
    const char *path;
    uint32_t batch;
    atomic_uint_least64_t next;
    atomic_int failed;
};

static void *e2e_load_main(void *arg)
{
    struct e2e_load *l = arg;
    const struct e2e_data *d = l->d;
    char err[DV_ERRMSG_SIZE] = "out of memory";
    struct pid *ids = malloc(l->batch * sizeof *ids);
    uint64_t from = 0;
    int rc = ids ? DV_OK : DV_ENOMEM;
    while (rc == DV_OK && !atomic_load(&l->failed)) {
        from = atomic_fetch_add(&l->next, l->batch);
        if (from >= d->n)
            break;
        uint32_t cnt = (uint32_t)(d->n - from < l->batch ? d->n - from : l->batch);
        for (uint32_t i = 0; i < cnt; i++)
            ids[i] = (struct pid){.lo = from + i, .kind = PID_NUM};
        struct msg req = {.type = MSG_P_UPSERT, .addr = e2e_addr()};
        req.u.upsert_req =
            (struct msg_upsert_req){ids, d->base + from * d->dim, NULL, cnt, d->dim, NULL};
        struct msg_reply rep;
        rc = rpc_call(l->r, &req, &rep, err);
        if (rc == DV_OK && rep.m.u.write_rep.affected != cnt) {
            rc = DV_EPROTO;
            dv_errmsg_set(err, "%llu points written of %u",
                          (unsigned long long)rep.m.u.write_rep.affected, cnt);
        }
        msg_reply_free(&rep);
    }
    if (rc != DV_OK) {
        fprintf(stderr,
                "dvec-bench e2e: %s: upsert of rows %llu.. through the coordinator: %s "
                "(%s)\n",
                l->path, (unsigned long long)from, err, dv_errname(rc));
        atomic_store(&l->failed, 1);
    }
    free(ids);
    return NULL;
}

/* ---- one cluster ------------------------------------------------------------------------- */

/* Paths of the two programs, next to this one's build directory. */
struct e2e_exes {
    char coord[E2E_PATH], shard[E2E_PATH];
};

/*
 * Starts one dvec-coord and `nodes` dvec-shard under o->dir, creates the collection, loads the
 * base, runs the passes and stops the cluster. On failure the processes are killed and o->dir
 * is kept for their logs.
 */
static int e2e_cluster(const struct e2e_opts *o, const struct e2e_exes *x, const struct e2e_data *d,
                       uint32_t nq, uint32_t nodes, struct e2e_path *p, uint64_t *found,
                       double *lat)
{
    struct e2e_cluster c = {.n = 0};
    char err[DV_ERRMSG_SIZE] = "", curl[64], craft[64], group[160], url[64], surl[64], id[16];
    char data[E2E_PATH], log[E2E_PATH];
    const char *what = "start";
    int rc = DV_OK;
    p->nodes = nodes;
    snprintf(p->name, sizeof p->name, "cluster, %u node%s", nodes, nodes == 1 ? "" : "s");
    fprintf(stderr, "dvec-bench e2e: %s: starting\n", p->name);
    if (e2e_rmtree(o->dir) != 0 || mkdir(o->dir, 0755) != 0) {
        fprintf(stderr, "dvec-bench e2e: %s: cannot make an empty %s: %s%s\n", p->name, o->dir,
                strerror(errno),
                errno == ENOTEMPTY ? " (it holds files this benchmark did not make)" : "");
        return -1;
    }
    snprintf(curl, sizeof curl, "tcp://127.0.0.1:%u", o->port);
    snprintf(craft, sizeof craft, "127.0.0.1:%u", o->port + 1);
    snprintf(group, sizeof group, "1=%s=%s", craft, curl);
    snprintf(data, sizeof data, "%s/coord", o->dir);
    snprintf(log, sizeof log, "%s/coord.log", o->dir);
    char *cargv[] = {(char *)x->coord, "--id", "1",       "--data_dir", data, "--listen", curl,
                     "--http",         "",     "--group", group,        NULL};
    if ((rc = e2e_spawn(&c, "dvec-coord", cargv, log, err)) != DV_OK)
        goto fail;
    for (uint32_t i = 1; i <= nodes; i++) {
        snprintf(id, sizeof id, "n%u", i);
        snprintf(url, sizeof url, "tcp://127.0.0.1:%u", o->port + 1 + i);
        snprintf(surl, sizeof surl, "tcp://127.0.0.1:%u", o->port + 1 + E2E_MAX_NODES + i);
        snprintf(data, sizeof data, "%s/%s", o->dir, id);
        snprintf(log, sizeof log, "%s/%s.log", o->dir, id);
        char *nargv[] = {(char *)x->shard,
                         "--data_dir",
                         data,
                         "--node_id",
                         id,
                         "--listen",
                         url,
                         "--http",
                         "",
                         "--workers",
                         E2E_WORKERS,
                         "--coordinators",
                         curl,
                         "--search_listen",
                         surl,
                         NULL};
        if ((rc = e2e_spawn(&c, id, nargv, log, err)) != DV_OK)
            goto fail;
    }
    struct rpc_opts ro;
    rpc_opts_default(&ro);
    ro.timeout_ms = 120000;
    if ((rc = rpc_open(curl, &ro, &c.r, err)) != DV_OK)
        goto fail;
    what = "waiting for the nodes to register";
    if ((rc = e2e_wait_nodes(&c, nodes, err)) != DV_OK)
        goto fail;
    what = "collection";
    if ((rc = e2e_create(o, d, &c, p, err)) != DV_OK)
        goto fail;
    snprintf(p->name, sizeof p->name, "cluster, %u node%s, %u partitions", nodes,
             nodes == 1 ? "" : "s", p->parts);

    fprintf(stderr, "dvec-bench e2e: %s: loading %zu points\n", p->name, d->n);
    struct e2e_load l = {.r = c.r, .d = d, .path = p->name, .batch = o->batch};
    double t0 = bench_now();
    uint32_t missing = e2e_fan_out(e2e_load_main, &l, o->load_clients);
    p->load_s = bench_now() - t0;
    what = NULL; /* the threads said what failed */
    if (missing) {
        fprintf(stderr, "dvec-bench e2e: %s: could not start %u loading threads\n", p->name,
                missing);
        goto fail;
    }
    if (atomic_load(&l.failed))
        goto fail;

    struct e2e_job j = {.d = d,
                        .path = p->name,
                        .r = c.r,
                        .nq = nq,
                        .k = o->k,
                        .qbatch = o->qbatch,
                        .found = found,
                        .lat = lat};
    for (uint32_t e = 0; e < o->n_efs; e++) {
        fprintf(stderr, "dvec-bench e2e: %s: searching at ef %u\n", p->name, o->efs[e]);
        j.ef = o->efs[e];
        if (e2e_pass(&j, o->clients, &p->res[e]) != 0)
            goto fail;
    }
    rpc_close(c.r);
    c.r = NULL;
    fprintf(stderr, "dvec-bench e2e: %s: stopping\n", p->name);
    e2e_stop(&c);
    if (e2e_rmtree(o->dir) != 0)
        fprintf(stderr, "dvec-bench e2e: could not remove %s: %s\n", o->dir, strerror(errno));
    return 0;

fail:
    if (what)
        fprintf(stderr, "dvec-bench e2e: %s: %s: %s (%s)\n", p->name, what, err, dv_errname(rc));
    if (c.r)
        rpc_close(c.r);
    e2e_kill(&c);
    fprintf(stderr, "dvec-bench e2e: the processes' logs are kept in %s\n", o->dir);
    return -1;
}

/* ---- report ------------------------------------------------------------------------------ */

/* The command line as given, from /proc/self/cmdline; arguments with blanks are quoted. */
static void e2e_cmdline(char *out, size_t cap)
{
    char buf[8192];
    size_t n = 0, used = 0;
    FILE *f = fopen("/proc/self/cmdline", "rb");
    out[0] = '\0';
    if (f) {
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    for (size_t i = 0; i < n && used < cap; i += strlen(buf + i) + 1) {
        const char *a = buf + i;
        bool quote = a[0] == '\0' || strpbrk(a, " \t'\"$") != NULL;
        used += (size_t)snprintf(out + used, cap - used, "%s%s%s%s", used ? " " : "",
                                 quote ? "'" : "", a, quote ? "'" : "");
    }
}

/* The first "model name" of /proc/cpuinfo, or "unknown". */
static void e2e_cpu(char *out, size_t cap)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(out, cap, "unknown");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            colon += 1 + (colon[1] == ' ');
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(out, cap, "%s", colon);
            break;
        }
    }
    if (f)
        fclose(f);
}

/* The best QPS of path p among the ef values reaching recall `target`; -1 when none does. */
static int e2e_best(const struct e2e_opts *o, const struct e2e_path *p, double target)
{
    int best = -1;
    for (uint32_t e = 0; e < o->n_efs; e++)
        if (p->res[e].recall >= target && (best < 0 || p->res[e].qps > p->res[best].qps))
            best = (int)e;
    return best;
}

static void e2e_print(const struct e2e_opts *o, const struct e2e_data *d,
                      const struct e2e_path *paths, uint32_t n_paths)
{
    printf("\n## Search: recall@%u, queries/s, latency (%u client threads)\n\n", o->k, o->clients);
    printf("| ef | path | recall@%u | QPS | p50 ms | p99 ms |\n", o->k);
    printf("|---:|---|---:|---:|---:|---:|\n");
    for (uint32_t e = 0; e < o->n_efs; e++)
        for (uint32_t i = 0; i < n_paths; i++) {
            const struct e2e_result *r = &paths[i].res[e];
            printf("| %u | %s | %.4f | %.0f | %.3f | %.3f |\n", o->efs[e], paths[i].name, r->recall,
                   r->qps, r->p50_ms, r->p99_ms);
        }
    printf("\nIn-process: one query per call, latency per query. Cluster: %u quer%s per "
           "request through dvec-coord, latency per request.\n",
           o->qbatch, o->qbatch == 1 ? "y" : "ies");

    printf("\n## Best QPS at a recall target (among ef %u", o->efs[0]);
    for (uint32_t e = 1; e < o->n_efs; e++)
        printf(",%u", o->efs[e]);
    printf(")\n\n| recall@%u target | path | ef | recall@%u | QPS | path / in-process |\n", o->k,
           o->k);
    printf("|---:|---|---:|---:|---:|---:|\n");
    for (size_t t = 0; t < sizeof e2e_targets / sizeof e2e_targets[0]; t++) {
        int b0 = e2e_best(o, &paths[0], e2e_targets[t]);
        for (uint32_t i = 0; i < n_paths; i++) {
            int b = e2e_best(o, &paths[i], e2e_targets[t]);
            if (b < 0) {
                printf("| %.2f | %s | - | - | not reached | - |\n", e2e_targets[t], paths[i].name);
                continue;
            }
            const struct e2e_result *r = &paths[i].res[b];
            printf("| %.2f | %s | %u | %.4f | %.0f | ", e2e_targets[t], paths[i].name, o->efs[b],
                   r->recall, r->qps);
            if (b0 >= 0)
                printf("%.2fx |\n", r->qps / paths[0].res[b0].qps);
            else
                printf("- |\n");
        }
    }

    printf("\n## Loading %zu vectors\n\n", d->n);
    printf("| path | how | partitions per node | seconds | vectors/s |\n");
    printf("|---|---|---|---:|---:|\n");
    printf("| %s | hnsw_insert_batch, %d threads | | %.1f | %.0f |\n", paths[0].name, E2E_BUILD_THR,
           paths[0].load_s, (double)d->n / paths[0].load_s);
    for (uint32_t i = 1; i < n_paths; i++)
        printf("| %s | upsert through dvec-coord, %u clients, batches of %u, fsync always | "
               "%s | %.1f | %.0f |\n",
               paths[i].name, o->load_clients, o->batch, paths[i].spread, paths[i].load_s,
               (double)d->n / paths[i].load_s);
}

/* Writes s as a JSON string. */
static void e2e_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static int e2e_json(const struct e2e_opts *o, const struct e2e_data *d, uint32_t nq,
                    const struct e2e_path *paths, uint32_t n_paths, const char *cmd,
                    const char *cpu, const char *date)
{
    FILE *f = fopen(o->json, "w");
    if (f == NULL) {
        fprintf(stderr, "dvec-bench e2e: %s: %s\n", o->json, strerror(errno));
        return -1;
    }
    fprintf(f, "{\"command\":");
    e2e_json_str(f, cmd);
    fprintf(f, ",\"nproc\":%ld,\"cpu\":", sysconf(_SC_NPROCESSORS_ONLN));
    e2e_json_str(f, cpu);
    fprintf(f, ",\"date\":");
    e2e_json_str(f, date);
    fprintf(f, ",\"kernel\":");
    e2e_json_str(f, dist_get()->name);
    fprintf(f, ",\"base\":");
    e2e_json_str(f, o->base);
    fprintf(f,
            ",\"n\":%zu,\"dim\":%u,\"queries\":%u,\"k\":%u,\"m\":%d,\"ef_construction\":%d,"
            "\"clients\":%u,\"qbatch\":%u,\"batch\":%u,\"load_clients\":%u,\"paths\":[",
            d->n, d->dim, nq, o->k, E2E_M, E2E_EFC, o->clients, o->qbatch, o->batch,
            o->load_clients);
    for (uint32_t i = 0; i < n_paths; i++) {
        const struct e2e_path *p = &paths[i];
        fprintf(f, "%s{\"name\":", i ? "," : "");
        e2e_json_str(f, p->name);
        fprintf(f, ",\"nodes\":%u,\"partitions\":%u,\"load_s\":%.3f,\"load_per_s\":%.1f,\"runs\":[",
                p->nodes, p->parts, p->load_s, (double)d->n / p->load_s);
        for (uint32_t e = 0; e < o->n_efs; e++)
            fprintf(f, "%s{\"ef\":%u,\"recall\":%.5f,\"qps\":%.1f,\"p50_ms\":%.4f,\"p99_ms\":%.4f}",
                    e ? "," : "", o->efs[e], p->res[e].recall, p->res[e].qps, p->res[e].p50_ms,
                    p->res[e].p99_ms);
        fprintf(f, "]}");
    }
    fprintf(f, "]}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "dvec-bench e2e: %s: %s\n", o->json, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

/* Reads the three files and checks that they fit together and with k. */
static int e2e_read(const struct e2e_opts *o, struct e2e_data *d)
{
    size_t ngt = 0;
    uint32_t qdim = 0;
    d->base = bench_read_vecs(o->base, &d->n, &d->dim);
    d->queries = d->base ? bench_read_vecs(o->queries, &d->nq, &qdim) : NULL;
    d->gt = d->queries ? bench_read_vecs(o->gt, &ngt, &d->gdim) : NULL;
    if (d->gt == NULL)
        return -1;
    if (qdim != d->dim) {
        fprintf(stderr, "dvec-bench e2e: %s has dimension %u, %s has %u\n", o->queries, qdim,
                o->base, d->dim);
        return -1;
    }
    if (ngt < d->nq || d->gdim < o->k) {
        fprintf(stderr,
                "dvec-bench e2e: %s has %zu rows of %u ids; %zu rows of at least %u needed\n",
                o->gt, ngt, d->gdim, d->nq, o->k);
        return -1;
    }
    if (d->n > UINT32_MAX) {
        fprintf(stderr, "dvec-bench e2e: %s: %zu rows is more than this benchmark takes\n", o->base,
                d->n);
        return -1;
    }
    return 0;
}

/* The programs next to this one's build directory: ../coordinator, ../shard. */
static int e2e_find_exes(struct e2e_exes *x)
{
    char self[E2E_PATH - 64];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    self[k > 0 ? k : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(x->coord, sizeof x->coord, "%s/../coordinator/dvec-coord", self);
    snprintf(x->shard, sizeof x->shard, "%s/../shard/dvec-shard", self);
    const char *exes[] = {x->coord, x->shard};
    for (int i = 0; i < 2; i++)
        if (access(exes[i], X_OK) != 0) {
            fprintf(stderr, "dvec-bench e2e: %s: %s (it is built with dvec-bench)\n", exes[i],
                    strerror(errno));
            return -1;
        }
    return 0;
}

int bench_e2e_main(int argc, char **argv)
{
    struct e2e_opts o = {.base = "data/fashion-mnist/base.fvecs",
                         .queries = "data/fashion-mnist/queries.fvecs",
                         .gt = "data/fashion-mnist/gt.ivecs",
                         .dir = "/var/tmp/dvec-bench-e2e",
                         .nodes = {1, 3},
                         .n_nodes = 2,
                         .efs = {16, 32, 64, 128},
                         .n_efs = 4,
                         .clients = 2,
                         .qbatch = 1,
                         .k = 10,
                         .batch = 1000,
                         .load_clients = 2,
                         .port = 17600};
    int st = e2e_parse(argc, argv, &o);
    if (st != 0) {
        e2e_usage(st == 1 ? stdout : stderr);
        return st == 1 ? 0 : 2;
    }

    char cmd[4096], cpu[256], date[64];
    time_t now = time(NULL);
    e2e_cmdline(cmd, sizeof cmd);
    e2e_cpu(cpu, sizeof cpu);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", localtime(&now));

    struct e2e_exes x;
    struct e2e_data d = {0};
    struct e2e_path *paths = calloc(1 + o.n_nodes, sizeof *paths);
    uint64_t *found = NULL;
    double *lat = NULL;
    int rc = 1;
    if (paths == NULL || e2e_find_exes(&x) != 0 || e2e_read(&o, &d) != 0)
        goto out;
    if (e2e_rmtree(o.dir) != 0) { /* early, rather than after the in-process build */
        fprintf(stderr, "dvec-bench e2e: cannot remove %s: %s%s\n", o.dir, strerror(errno),
                errno == ENOTEMPTY ? " (it holds files this benchmark did not make)" : "");
        goto out;
    }
    uint32_t nq = o.queries_max && o.queries_max < d.nq ? o.queries_max : (uint32_t)d.nq;
    found = malloc((size_t)nq * o.k * sizeof *found);
    lat = malloc(nq * sizeof *lat);
    if (nq == 0 || found == NULL || lat == NULL) {
        fprintf(stderr, "dvec-bench e2e: %s\n", nq ? "out of memory" : "no queries");
        goto out;
    }

    printf("# dvec-bench e2e\n\n");
    printf("- command: `%s`\n", cmd);
    printf("- machine: %ld CPUs online (nproc), %s, distance kernel %s, %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), cpu, dist_get()->name, date);
    printf("- data: %s, %zu x %u, %u of %zu queries (%s), ground truth top-%u (%s), L2, k %u\n",
           o.base, d.n, d.dim, nq, d.nq, o.queries, d.gdim, o.gt, o.k);
    printf("- index: HNSW M %d, ef_construction %d; in-process build on %d threads; clusters: "
           "1 dvec-coord + N dvec-shard (--workers %s) on 127.0.0.1, rf 1\n",
           E2E_M, E2E_EFC, E2E_BUILD_THR, E2E_WORKERS);
    fflush(stdout);

    /* Only the servers read it; set before any fork, as the child may not call setenv. */
    setenv("DVEC_LOG_LEVEL", "warn", 1);
    if (e2e_inproc(&o, &d, nq, &paths[0], found, lat) != 0)
        goto out;
    for (uint32_t i = 0; i < o.n_nodes; i++)
        if (e2e_cluster(&o, &x, &d, nq, o.nodes[i], &paths[1 + i], found, lat) != 0)
            goto out;
    e2e_print(&o, &d, paths, 1 + o.n_nodes);
    rc = o.json && e2e_json(&o, &d, nq, paths, 1 + o.n_nodes, cmd, cpu, date) != 0 ? 1 : 0;
out:
    free(paths);
    free(found);
    free(lat);
    free(d.base);
    free(d.queries);
    free(d.gt);
    return rc;
}
