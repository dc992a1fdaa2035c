/* server.h - the native protocol over an NNG rep socket: contexts in, worker threads. */
#ifndef DV_SERVER_H
#define DV_SERVER_H

#include <stdint.h>

#include "handle.h"

struct server;

/* Called on a worker thread after each request with what it was and how long it took. */
typedef void (*server_done_fn)(void *arg, const struct handle_result *res, uint64_t ns);

struct server_opts {
    const char *listen;  /* NNG URL */
    uint32_t workers;    /* threads running requests (>= 1) */
    uint32_t contexts;   /* requests received concurrently (>= 1) */
    uint64_t recv_max;   /* transport limit (NNG_OPT_RECVMAXSZ); larger messages are dropped */
    server_done_fn done; /* may be NULL */
    void *done_arg;
};

/*
 * Starts listening and serving with handler context `hc` (the server fills hc->parallel and
 * hc->pool: searches over several partitions run on the worker threads). DV_EOS with the
 * NNG error in errmsg when the URL cannot be listened on.
 */
int server_start(const struct server_opts *o, struct handle_ctx *hc, struct server **out,
                 char *errmsg);

/*
 * Graceful stop, first half: answers new requests with DV_ESHUTDOWN (connections stay open
 * so that replies in flight reach their clients), and waits (at most timeout_ms) until every
 * request being run has been answered. Returns the number of requests still running at the deadline
 * (0: drained).
 */
int server_drain(struct server *s, uint64_t timeout_ms);

/* Closes the socket and joins the workers. May hang inside nng (LIBRARY-NOTES: run it under
 * a watchdog). */
void server_stop(struct server *s);

/* Requests currently queued or running (for /metrics). */
uint64_t server_inflight(struct server *s);

#endif
