/* bench_node_int.h - what `dvec-bench node` (bench_node.c) and `dvec-bench cluster`
 * (bench_cluster.c) share: options, the load and search loops, results. */
#ifndef DV_BENCH_NODE_INT_H
#define DV_BENCH_NODE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dvec.h"
#include "part.h"
#include "rpc.h"

#define COLL "bench"

struct tcpcall;

struct nopts {
    const char *shard, *dir;
    uint64_t n;
    uint32_t dim, queries, k, ef, batch, port, workers, rounds, qbatch;
    uint32_t qbatches[8], n_qbatch; /* dvec-bench node: queries per request, a list */
};

/* Through a coordinator (client API) instead of a node; the partition epoch for direct node
 * requests (the map's, read from the coordinator in cluster mode). */
extern bool g_coord;
extern uint64_t g_epoch;

struct load {
    struct rpc *r;
    const struct nopts *o;
    const float *data;
    atomic_uint_least64_t next;
    atomic_int failed;
};

/* What a timed run sends: searches (in-process when p is set), empty requests through the node
 * (hello: the node's cost of one request without work), or 200-byte ping-pongs over a plain
 * TCP socket (the kernel's and this machine's floor for any request/reply over loopback). */
enum { RUN_SEARCH, RUN_HELLO, RUN_TCP, RUN_SPORT /* searches over the node's search port */ };

struct run {
    const struct nopts *o;
    struct rpc *r;    /* through the node, or NULL */
    struct part *p;   /* in-process, or NULL */
    dvec_client *sdk; /* through libdvec (at most 64 queries per request), or NULL */
    const float *queries;
    uint32_t nq;
    uint64_t *found;    /* [nq * k] ids */
    double *lat;        /* [nq] seconds */
    uint32_t qbatch;    /* queries per request */
    int mode;           /* RUN_* */
    uint16_t echo_port; /* RUN_TCP's echo server */
    struct tcpcall *tc; /* RUN_SPORT: the node's search port */
    atomic_uint next;
    atomic_int failed;
};

struct result {
    double qps, p50_ms, p99_ms, recall;
};

/* SIGTERM, then the exit status (128 + signal when killed; -1 when it could not be reaped). */
int bench_stop_node(pid_t pid);
/* A loader thread: upserts batches of l->data until every point is taken. */
void *bench_load_main(void *arg);
/* Runs what a cluster benchmark compares, best of o->rounds passes each (not interleaved):
 * through r (node or coordinator), the SDK client sdk when r and p are NULL, or p in-process. */
int bench_run_searches(const struct nopts *o, struct rpc *r, struct part *p, dvec_client *sdk,
                       const float *qv, const uint64_t *truth, uint32_t threads, uint32_t qbatch,
                       struct result *out);

#endif
