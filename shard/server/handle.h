/* handle.h - one request of the native protocol in, one reply out (dvec-shard). */
#ifndef DV_HANDLE_H
#define DV_HANDLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "msg.h"
#include "node.h"
#include "rpcsrv.h"

/* Runs fn(arg, 0) .. fn(arg, n - 1), possibly on several threads, and returns when all ran. */
typedef void (*handle_parallel_fn)(void *pool, size_t n, void (*fn)(void *arg, size_t i),
                                   void *arg);

struct handle_ctx {
    struct node *node;
    const char *node_id;
    const char *version;
    uint64_t capacity;           /* points over all replicas, 0: unlimited */
    uint64_t max_msg;            /* largest request accepted, bytes */
    handle_parallel_fn parallel; /* NULL: everything on the calling thread */
    void *pool;
    atomic_bool draining; /* shutting down: new requests get DV_ESHUTDOWN */
    uint64_t started_ms;  /* clock_mono_ms at start, for stats */
};

/*
 * Decodes `n` bytes of request, runs it, and appends the encoded reply to `out` (an error
 * reply for anything wrong with the request: it never fails to produce a reply unless out of
 * memory, in which case it returns DV_ENOMEM and `out` is empty).
 */
int handle_request(struct handle_ctx *c, const void *in, size_t n, struct buf *out,
                   struct rpcsrv_result *res);

/* handle_request for the search port (dvec-shard's search_listen): hello, search and get
 * only; anything else is refused with DV_EINVAL naming the native URL, and the node is not
 * touched. */
int handle_search_request(struct handle_ctx *c, const void *in, size_t n, struct buf *out,
                          struct rpcsrv_result *res);

/* Searches (partitions x queries) of one request that run one after the other on the thread
 * that has the request, without forking into the pool: a fork wakes other threads, which
 * costs more here than a walk of tens of microseconds (docs/benchmarks.md, issue 18). */
#define HANDLE_INLINE_SEARCHES 4

/* True for a request cheap enough to run on the thread that received it (rpcsrv run_inline):
 * hello, and an unfiltered search of at most HANDLE_INLINE_SEARCHES (partition, query) pairs,
 * e.g. one query on the node's partitions of a collection. `arg` is the struct handle_ctx. */
bool handle_run_inline(void *arg, const void *in, size_t n);

/* True for a primary's replicate request: it runs in the server's replication lane (rpcsrv.h,
 * `lane`), never behind writes that wait for replication themselves. */
bool handle_lane(void *arg, const void *in, size_t n);

#endif
