/* httpd.c - GET endpoints and asynchronous path trees over nng's HTTP server, with a clean
 * stop. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "err.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_CONTENT_TYPE    "text/plain; charset=utf-8"
/* GET requests carry no body worth reading; a bigger one is answered 400. */
#define MAX_REQUEST_BODY 4096

/*
 * What the handlers of one server share. nng frees a handler (and so our route) only when it
 * is done with it, which may be after httpd_free() returns, so this is reference-counted: one
 * reference for the httpd, one per route.
 */
struct core {
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int refs;
    int inflight; /* handler fn calls in progress */
    bool stopping;
};

/* The data of one nng handler; freed by nng through route_free(). Synchronous routes have fn,
 * trees have afn. */
struct route {
    struct core *core;
    httpd_handler_fn fn;
    httpd_async_fn afn;
    void *arg;
    uint64_t max_body;
};

/* A request of a tree, from the handler callback to httpd_req_reply(). */
struct httpd_req {
    struct route *route;
    nng_aio *aio;       /* nng's handler aio: finished by the reply */
    nng_http_req *req;  /* nng frees it when the handler aio fails (aborted): not used then */
    char *method, *uri; /* copies, valid until the reply whatever happened to req */
    nng_http_conn *conn;
    nng_aio *rd; /* reads the body */
    void *body;
    size_t len;
    uint64_t declared;
    bool too_big, aborted;
};

struct health {
    httpd_ready_fn ready;
    void *arg;
};

struct httpd {
    nng_http_server *srv;
    struct core *core;
    bool started, stopped;
    struct health health;
};

static int from_nng(int rv)
{
    switch (rv) {
    case 0:
        return DV_OK;
    case NNG_ENOMEM:
        return DV_ENOMEM;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
        return DV_EINVAL;
    case NNG_EADDRINUSE:
        return DV_EBUSY;
    default:
        return DV_EOS;
    }
}

static void core_unref(struct core *c)
{
    pthread_mutex_lock(&c->mu);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->idle);
    free(c);
}

static void route_free(void *p)
{
    struct route *r = p;
    core_unref(r->core);
    free(r);
}

/* nng's handler callback: runs fn unless the server is stopping, and sends its answer. */
static void route_cb(nng_aio *aio)
{
    nng_http_handler *hh = nng_aio_get_input(aio, 1);
    struct route *r = nng_http_handler_get_data(hh);
    struct core *c = r->core;

    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        nng_aio_finish(aio, NNG_ECLOSED);
        return;
    }
    c->inflight++;
    pthread_mutex_unlock(&c->mu);

    struct buf body = BUF_INIT;
    const char *ctype = NULL;
    int status = r->fn(r->arg, &body, &ctype);
    if (status < 100 || status > 599)
        status = NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR;
    nng_http_res *res = NULL;
    int rv = nng_http_res_alloc(&res);
    if (rv == 0)
        rv = nng_http_res_set_status(res, (uint16_t)status);
    if (rv == 0)
        rv = nng_http_res_set_header(res, "Content-Type", ctype ? ctype : TEXT_CONTENT_TYPE);
    if (rv == 0 && body.len > 0) /* nng takes an empty copy for out of memory */
        rv = nng_http_res_copy_data(res, body.data, body.len);
    buf_free(&body);

    /* ctype may point into the caller's memory: done with it only now. */
    pthread_mutex_lock(&c->mu);
    if (--c->inflight == 0 && c->stopping)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);

    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv); /* nng closes the connection */
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

int httpd_new(const char *url, struct httpd **out, char *errmsg)
{
    nng_url *u = NULL;
    int rv = nng_url_parse(&u, url);
    if (rv != 0) {
        if (errmsg)
            dv_errmsg_set(errmsg, "httpd: %s: %s", url, nng_strerror(rv));
        return rv == NNG_ENOMEM ? DV_ENOMEM : DV_EINVAL;
    }
    if (strcmp(u->u_scheme, "http") != 0) {
        if (errmsg)
            dv_errmsg_set(errmsg, "httpd: %s: only http:// URLs are served", url);
        nng_url_free(u);
        return DV_EINVAL;
    }
    int rc = DV_ENOMEM;
    struct httpd *h = calloc(1, sizeof *h);
    struct core *c = calloc(1, sizeof *c);
    if (h == NULL || c == NULL)
        goto err_free;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->refs = 1;
    h->core = c;
    if ((rv = nng_http_server_hold(&h->srv, u)) != 0) {
        rc = from_nng(rv);
        goto err_free_core;
    }
    nng_url_free(u);
    *out = h;
    return DV_OK;

err_free_core:
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->idle);
err_free:
    if (errmsg)
        dv_errmsg_set(errmsg, "httpd: %s: %s", url,
                      rc == DV_ENOMEM ? "out of memory" : nng_strerror(rv));
    free(c);
    free(h);
    nng_url_free(u);
    return rc;
}

/*
 * Registers route r for `path` with nng callback cb; r is owned from here (freed with the
 * handler, or now on failure). tree: every method on the path and below it, the body read by
 * the callback; otherwise GET on the path with the body collected by nng.
 */
static int add_route(struct httpd *h, const char *path, struct route *r, void (*cb)(nng_aio *),
                     bool tree, char *errmsg)
{
    nng_http_handler *hh = NULL;
    r->core = h->core;
    pthread_mutex_lock(&h->core->mu);
    h->core->refs++;
    pthread_mutex_unlock(&h->core->mu);

    int rv = nng_http_handler_alloc(&hh, path, cb);
    if (rv != 0) {
        route_free(r);
        goto err;
    }
    /* From here nng owns r: freeing the handler frees it. */
    if ((rv = nng_http_handler_set_data(hh, r, route_free)) != 0) {
        route_free(r);
        nng_http_handler_free(hh);
        goto err;
    }
    if (tree)
        rv = nng_http_handler_set_method(hh, NULL);
    else
        rv = nng_http_handler_set_method(hh, "GET");
    if (rv == 0)
        rv = tree ? nng_http_handler_set_tree(hh)
                  : nng_http_handler_collect_body(hh, true, MAX_REQUEST_BODY);
    if (rv == 0 && tree)
        rv = nng_http_handler_collect_body(hh, false, 0);
    if (rv == 0)
        rv = nng_http_server_add_handler(h->srv, hh);
    if (rv != 0) {
        nng_http_handler_free(hh);
        goto err;
    }
    return DV_OK;
err:
    if (errmsg)
        dv_errmsg_set(errmsg, "httpd: handler for %s: %s", path, nng_strerror(rv));
    return rv == NNG_EADDRINUSE ? DV_EEXIST : from_nng(rv);
}

static struct route *route_new(const char *path, char *errmsg)
{
    struct route *r = calloc(1, sizeof *r);
    if (r == NULL && errmsg)
        dv_errmsg_set(errmsg, "httpd: %s: out of memory", path);
    return r;
}

int httpd_add(struct httpd *h, const char *path, httpd_handler_fn fn, void *arg, char *errmsg)
{
    struct route *r = route_new(path, errmsg);
    if (r == NULL)
        return DV_ENOMEM;
    r->fn = fn;
    r->arg = arg;
    return add_route(h, path, r, route_cb, false, errmsg);
}

/* ---- asynchronous trees ------------------------------------------------------------------ */

/* Hands a request to the tree's fn (the request counts as in flight until its reply). */
static void tree_dispatch(struct httpd_req *q)
{
    q->route->afn(q->route->arg, q);
}

/* The body has been read (or the read failed: the client went away or the server stops). */
static void tree_body_cb(void *arg)
{
    struct httpd_req *q = arg;
    int rv = nng_aio_result(q->rd);
    if (rv == 0 && nng_aio_count(q->rd) != q->len)
        rv = NNG_ECONNSHUT;
    if (rv != 0) {
        /* Nothing can be answered: nng closes the connection when its handler aio fails. */
        q->aborted = true;
        nng_aio_finish(q->aio, rv);
    }
    tree_dispatch(q);
}

static void tree_cb(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *hh = nng_aio_get_input(aio, 1);
    nng_http_conn *conn = nng_aio_get_input(aio, 2);
    struct route *r = nng_http_handler_get_data(hh);
    struct core *c = r->core;

    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        nng_aio_finish(aio, NNG_ECLOSED);
        return;
    }
    c->inflight++;
    pthread_mutex_unlock(&c->mu);

    struct httpd_req *q = calloc(1, sizeof *q);
    if (q == NULL)
        goto err_leave;
    q->route = r;
    q->aio = aio;
    q->req = req;
    q->conn = conn;
    q->method = strdup(nng_http_req_get_method(req));
    q->uri = strdup(nng_http_req_get_uri(req));
    if (q->method == NULL || q->uri == NULL) {
        free(q->method);
        free(q->uri);
        free(q);
        goto err_leave;
    }
    const char *cl = nng_http_req_get_header(req, "Content-Length");
    const char *te = nng_http_req_get_header(req, "Transfer-Encoding");
    if (cl == NULL && te != NULL) {
        /* nng reads no chunked bodies: refuse them rather than misread the stream. */
        const char msg[] = "a request body needs a Content-Length (chunked bodies are not read)\n";
        httpd_req_reply(q, 411, NULL, msg, sizeof msg - 1);
        return;
    }
    if (cl != NULL) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end != '\0' || errno != 0 || cl[0] == '-') {
            const char msg[] = "bad Content-Length\n";
            q->too_big = true; /* the body cannot be read: close after the reply */
            httpd_req_reply(q, 400, NULL, msg, sizeof msg - 1);
            return;
        }
        q->declared = n;
    }
    if (q->declared > r->max_body) {
        q->too_big = true;
        tree_dispatch(q);
        return;
    }
    if (q->declared == 0) {
        tree_dispatch(q);
        return;
    }
    q->len = (size_t)q->declared;
    nng_iov iov;
    if ((q->body = malloc(q->len)) == NULL || nng_aio_alloc(&q->rd, tree_body_cb, q) != 0) {
        free(q->body);
        free(q->method);
        free(q->uri);
        free(q);
        goto err_leave;
    }
    iov.iov_buf = q->body;
    iov.iov_len = q->len;
    nng_aio_set_iov(q->rd, 1, &iov);
    nng_http_conn_read_all(conn, q->rd);
    return;

err_leave:
    pthread_mutex_lock(&c->mu);
    if (--c->inflight == 0 && c->stopping)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);
    nng_aio_finish(aio, NNG_ENOMEM);
}

int httpd_add_tree(struct httpd *h, const char *prefix, uint64_t max_body, httpd_async_fn fn,
                   void *arg, char *errmsg)
{
    struct route *r = route_new(prefix, errmsg);
    if (r == NULL)
        return DV_ENOMEM;
    r->afn = fn;
    r->arg = arg;
    r->max_body = max_body;
    /* Every method; the body is read by tree_cb, which can answer an oversized one. */
    return add_route(h, prefix, r, tree_cb, true, errmsg);
}

const char *httpd_req_method(const struct httpd_req *r)
{
    return r->method;
}

const char *httpd_req_uri(const struct httpd_req *r)
{
    return r->uri;
}

const char *httpd_req_header(const struct httpd_req *r, const char *name)
{
    /* An aborted request's nng request is gone with its connection. */
    return r->aborted ? NULL : nng_http_req_get_header(r->req, name);
}

const void *httpd_req_body(const struct httpd_req *r, size_t *len)
{
    bool have = r->body != NULL && !r->aborted;
    *len = have ? r->len : 0;
    return have ? r->body : NULL;
}

bool httpd_req_too_big(const struct httpd_req *r, uint64_t *declared)
{
    if (declared)
        *declared = r->declared;
    return r->too_big;
}

bool httpd_req_aborted(const struct httpd_req *r)
{
    return r->aborted;
}

void httpd_req_reply(struct httpd_req *r, int status, const char *content_type, const void *body,
                     size_t len)
{
    struct core *c = r->route->core;
    if (!r->aborted) {
        if (status < 100 || status > 599)
            status = NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR;
        nng_http_res *res = NULL;
        int rv = nng_http_res_alloc(&res);
        if (rv == 0)
            rv = nng_http_res_set_status(res, (uint16_t)status);
        if (rv == 0)
            rv = nng_http_res_set_header(res, "Content-Type",
                                         content_type ? content_type : TEXT_CONTENT_TYPE);
        /* An unread body is still on the connection: it cannot carry another request. */
        if (rv == 0 && r->too_big)
            rv = nng_http_res_set_header(res, "Connection", "close");
        if (rv == 0 && len > 0)
            rv = nng_http_res_copy_data(res, body, len);
        if (rv != 0) {
            nng_http_res_free(res);
            nng_aio_finish(r->aio, rv); /* nng closes the connection */
        } else {
            nng_aio_set_output(r->aio, 0, res);
            nng_aio_finish(r->aio, 0);
        }
    }
    /* nng_aio_reap frees it in the background: this may run inside its own callback (fn
     * answering at once), where nng_aio_free would wait for itself. */
    if (r->rd)
        nng_aio_reap(r->rd);
    free(r->body);
    free(r->method);
    free(r->uri);
    free(r);
    pthread_mutex_lock(&c->mu);
    if (--c->inflight == 0 && c->stopping)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);
}

static int metrics_handler(void *arg, struct buf *body, const char **content_type)
{
    if (metrics_render(arg, body) != DV_OK) {
        buf_reset(body);
        buf_appendf(body, "metrics could not be rendered\n");
        return NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR;
    }
    *content_type = METRICS_CONTENT_TYPE;
    return NNG_HTTP_STATUS_OK;
}

int httpd_add_metrics(struct httpd *h, struct metrics *reg, char *errmsg)
{
    return httpd_add(h, "/metrics", metrics_handler, reg, errmsg);
}

static int healthz_handler(void *arg, struct buf *body, const char **content_type)
{
    return buf_appendf(body, "ok\n") == DV_OK ? NNG_HTTP_STATUS_OK
                                              : NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR;
}

/* Qdrant's liveness probe: the process answers. */
static int livez_handler(void *arg, struct buf *body, const char **content_type)
{
    return buf_appendf(body, "livez check passed\n") == DV_OK
               ? NNG_HTTP_STATUS_OK
               : NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR;
}

static int readyz_handler(void *arg, struct buf *body, const char **content_type)
{
    const struct health *hl = arg;
    if (hl->ready == NULL || hl->ready(hl->arg, body)) {
        buf_reset(body);
        return buf_appendf(body, "ready\n") == DV_OK ? NNG_HTTP_STATUS_OK
                                                     : NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR;
    }
    if (body->len == 0)
        buf_appendf(body, "not ready");
    if (body->len > 0 && body->data[body->len - 1] != '\n')
        buf_append(body, "\n", 1);
    return NNG_HTTP_STATUS_SERVICE_UNAVAILABLE;
}

int httpd_add_health(struct httpd *h, httpd_ready_fn ready, void *arg, char *errmsg)
{
    h->health.ready = ready;
    h->health.arg = arg;
    int rc = httpd_add(h, "/healthz", healthz_handler, NULL, errmsg);
    if (rc == DV_OK)
        rc = httpd_add(h, "/livez", livez_handler, NULL, errmsg);
    if (rc == DV_OK)
        rc = httpd_add(h, "/readyz", readyz_handler, &h->health, errmsg);
    return rc;
}

int httpd_start(struct httpd *h, char *errmsg)
{
    if (h->started || h->stopped) {
        if (errmsg)
            dv_errmsg_set(errmsg, "httpd: %s", h->stopped ? "stopped" : "already started");
        return DV_EINVAL;
    }
    int rv = nng_http_server_start(h->srv);
    if (rv != 0) {
        if (errmsg)
            dv_errmsg_set(errmsg, "httpd: listen: %s", nng_strerror(rv));
        return from_nng(rv);
    }
    h->started = true;
    return DV_OK;
}

int httpd_port(struct httpd *h, uint16_t *port)
{
    nng_sockaddr sa;
    if (!h->started || h->stopped || nng_http_server_get_addr(h->srv, &sa) != 0)
        return DV_EINVAL;
    switch (sa.s_family) {
    case NNG_AF_INET:
        *port = ntohs(sa.s_in.sa_port);
        return DV_OK;
    case NNG_AF_INET6:
        *port = ntohs(sa.s_in6.sa_port);
        return DV_OK;
    default:
        return DV_EINVAL;
    }
}

void httpd_stop(struct httpd *h)
{
    if (h->stopped)
        return;
    h->stopped = true;
    if (h->started)
        nng_http_server_stop(h->srv);
    struct core *c = h->core;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    while (c->inflight > 0)
        pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

void httpd_free(struct httpd *h)
{
    if (h == NULL)
        return;
    httpd_stop(h);
    /* The server frees our handlers (and their routes) once no connection uses them. */
    nng_http_server_release(h->srv);
    core_unref(h->core);
    free(h);
}
