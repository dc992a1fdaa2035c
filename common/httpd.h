/* httpd.h - a tiny HTTP server (nng's): GET endpoints (/metrics, /healthz, /readyz) and
 * asynchronous handlers of whole path trees (the REST API). */
#ifndef DV_HTTPD_H
#define DV_HTTPD_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "metrics.h"

struct httpd;

/*
 * Answers one GET (or HEAD) request: appends the body to `body` (empty on entry), may point
 * `*content_type` at a string that lives at least until it returns (default
 * "text/plain; charset=utf-8"), and returns the HTTP status (a value outside 100..599 is
 * sent as 500). Runs on an nng thread, possibly on several at once for concurrent requests:
 * it must be thread-safe and must not block for long.
 */
typedef int (*httpd_handler_fn)(void *arg, struct buf *body, const char **content_type);

/* Tells whether the process is ready to serve; when not, appends the reason to `reason`.
 * Same threading rules as httpd_handler_fn. */
typedef bool (*httpd_ready_fn)(void *arg, struct buf *reason);

/*
 * Makes a server for `url` ("http://127.0.0.1:9100"; port 0 lets the kernel choose, see
 * httpd_port()). Nothing listens until httpd_start(). DV_EINVAL for a bad URL, DV_ENOMEM;
 * `errmsg` (DV_ERRMSG_SIZE bytes, may be NULL) says why.
 *
 * nng shares one server among holders of the same host and port in a process: two httpd on
 * one fixed address serve each other's paths. Servers on port 0 each get their own port.
 */
int httpd_new(const char *url, struct httpd **out, char *errmsg);

/*
 * Serves GET `path` (exact, e.g. "/metrics"; a trailing '/' also matches) with fn(arg).
 * Other methods on a registered path get 405, unregistered paths 404; HEAD is answered as
 * GET without the body. The caller keeps `arg` valid until httpd_stop() or httpd_free()
 * returns. Allowed before or after httpd_start(). DV_EEXIST if the path is taken, DV_EINVAL
 * for a path not starting with '/', DV_ENOMEM.
 */
int httpd_add(struct httpd *h, const char *path, httpd_handler_fn fn, void *arg, char *errmsg);

/* GET /metrics: metrics_render(reg) as "text/plain; version=0.0.4; charset=utf-8", or 500 if
 * rendering fails. reg's collectors then run on nng's threads: keep them quick. */
int httpd_add_metrics(struct httpd *h, struct metrics *reg, char *errmsg);

/*
 * GET /healthz: 200 "ok" whenever the server answers; GET /livez (Qdrant's name): 200 "livez check
 * passed" likewise. GET /readyz: 200 "ready" if
 * ready(arg) is true (or ready is NULL), else 503 with the reason it gave.
 */
int httpd_add_health(struct httpd *h, httpd_ready_fn ready, void *arg, char *errmsg);

/*
 * An HTTP request given to an asynchronous handler. Its body has been read (up to the
 * handler's limit) before the handler sees it. The request belongs to httpd; the handler gives
 * it back with httpd_req_reply(), exactly once, from any thread.
 */
struct httpd_req;

/*
 * Called on an nng thread for every request under the handler's prefix, any method. It must
 * not block: it queues the request for a thread of its own, which answers it later with
 * httpd_req_reply() (it may also answer at once, e.g. "busy"). Aborted requests
 * (httpd_req_aborted) are given to it too and must be replied to as well (that only frees
 * them).
 */
typedef void (*httpd_async_fn)(void *arg, struct httpd_req *req);

/*
 * Serves every path under `prefix` ("/" for all; longer registered paths such as /metrics
 * win) and every method with fn(arg). Bodies are read by httpd when they declare a length of
 * at most `max_body` bytes; a larger one is not read (httpd_req_too_big) and the connection is
 * closed after the reply. A body without a Content-Length (chunked) is answered 411 by httpd.
 * Same ownership and error rules as httpd_add(); httpd_stop() waits until every request
 * given to fn has been replied to.
 */
int httpd_add_tree(struct httpd *h, const char *prefix, uint64_t max_body, httpd_async_fn fn,
                   void *arg, char *errmsg);

/* The method ("GET", "PUT", ...) and the raw request target (path and query, not decoded). */
const char *httpd_req_method(const struct httpd_req *r);
const char *httpd_req_uri(const struct httpd_req *r);

/* A request header (case-insensitive name), NULL if absent or the request was aborted (its
 * connection is gone). Call it from fn before replying. */
const char *httpd_req_header(const struct httpd_req *r, const char *name);

/* The body (NULL and 0 when there is none); valid until httpd_req_reply(). */
const void *httpd_req_body(const struct httpd_req *r, size_t *len);

/* True when the body declared more than max_body bytes (*declared gets its length); the body
 * was not read. */
bool httpd_req_too_big(const struct httpd_req *r, uint64_t *declared);

/* True when the client went away (or the server stopped) while its body was being read:
 * nothing will be sent; httpd_req_reply() only frees the request. */
bool httpd_req_aborted(const struct httpd_req *r);

/*
 * Answers the request with `status` (a value outside 100..599 is sent as 500), `content_type`
 * (NULL: text/plain) and a copy of `len` bytes of `body`, and frees the request. Any thread;
 * exactly once per request; never blocks.
 */
void httpd_req_reply(struct httpd_req *r, int status, const char *content_type, const void *body,
                     size_t len);

/* Starts listening. DV_EBUSY if the address is in use, DV_EOS for other listen errors. */
int httpd_start(struct httpd *h, char *errmsg);

/*
 * The port the server listens on (the chosen one when the URL gave port 0), in host order.
 * Valid after httpd_start(); DV_EINVAL before it.
 */
int httpd_port(struct httpd *h, uint16_t *port);

/*
 * Stops accepting and closes every connection; waits for handler calls in progress, after
 * which none runs again. The server cannot be started again. Must not be called from a
 * handler. Idempotent.
 */
void httpd_stop(struct httpd *h);

/* Stops the server (see httpd_stop) and frees it. nng frees the handlers' memory once its
 * last connection is gone, possibly a little later. NULL is a no-op. */
void httpd_free(struct httpd *h);

#endif
