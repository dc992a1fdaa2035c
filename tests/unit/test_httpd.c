/* test_httpd.c - /metrics, /healthz, /readyz, 404, 405, asynchronous trees (bodies, limits,
 * keep-alive, aborted clients) and a clean stop, over 127.0.0.1 with a plain socket client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <nng/nng.h>

#include "buf.h"
#include "err.h"
#include "httpd.h"
#include "metrics.h"

#define URL_ANY_PORT "http://127.0.0.1:0"

struct reply {
    int status;
    char headers[2048];
    char body[16384];
    size_t body_len;
};

/* Sends `n` raw bytes to 127.0.0.1:port and reads the whole answer until the server closes
 * (or 10 s pass). Returns 0, or -1 if no HTTP answer came. */
static int raw_request(uint16_t port, const char *bytes, size_t n, struct reply *r)
{
    memset(r, 0, sizeof *r);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, bytes + off, n - off);
        if (w <= 0)
            break; /* the server may answer (413) before reading everything */
        off += (size_t)w;
    }
    struct buf in = BUF_INIT;
    char chunk[4096];
    ssize_t got;
    while ((got = read(fd, chunk, sizeof chunk)) > 0)
        buf_append(&in, chunk, (size_t)got);
    close(fd);
    buf_appendf(&in, "%s", "");
    const char *text = (const char *)in.data;
    const char *end = text ? strstr(text, "\r\n\r\n") : NULL;
    if (end == NULL || sscanf(text, "HTTP/1.1 %d", &r->status) != 1) {
        buf_free(&in);
        return -1;
    }
    size_t hl = (size_t)(end - text);
    if (hl >= sizeof r->headers)
        hl = sizeof r->headers - 1;
    memcpy(r->headers, text, hl);
    r->body_len = in.len - (size_t)(end + 4 - text);
    if (r->body_len >= sizeof r->body)
        r->body_len = sizeof r->body - 1;
    memcpy(r->body, end + 4, r->body_len);
    buf_free(&in);
    return 0;
}

/* Sends one request to 127.0.0.1:port and reads the whole answer (the request asks the server
 * to close). Returns 0, or -1 if no HTTP answer came. */
static int request(uint16_t port, const char *method, const char *path, struct reply *r)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n"
                     "Content-Length: 0\r\n\r\n",
                     method, path, (unsigned)port);
    return raw_request(port, req, (size_t)n, r);
}

static bool has_header(const struct reply *r, const char *line)
{
    char want[256];
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    char hdrs[sizeof r->headers + 2];
    snprintf(hdrs, sizeof hdrs, "%s\r\n", r->headers);
    return strcasestr(hdrs, want) != NULL;
}

struct readiness {
    atomic_bool ready;
};

static bool is_ready(void *arg, struct buf *reason)
{
    struct readiness *rd = arg;
    if (atomic_load(&rd->ready))
        return true;
    buf_appendf(reason, "replaying wal of partition 7");
    return false;
}

static struct httpd *start(struct metrics *reg, struct readiness *rd, uint16_t *port)
{
    struct httpd *h;
    char msg[DV_ERRMSG_SIZE] = "";
    assert_int_equal(httpd_new(URL_ANY_PORT, &h, msg), DV_OK);
    if (reg)
        assert_int_equal(httpd_add_metrics(h, reg, msg), DV_OK);
    assert_int_equal(httpd_add_health(h, is_ready, rd, msg), DV_OK);
    assert_int_equal(httpd_start(h, msg), DV_OK);
    assert_int_equal(httpd_port(h, port), DV_OK);
    assert_true(*port != 0);
    return h;
}

static void test_endpoints(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    struct metrics_counter *c;
    const char *l[] = {"op", "search", "outcome", "ok", NULL};
    assert_int_equal(metrics_counter(reg, "dvec_requests", "Requests.", l, &c, NULL), DV_OK);
    metrics_counter_add(c, 42);
    struct readiness rd = {.ready = true};
    uint16_t port;
    struct httpd *h = start(reg, &rd, &port);
    struct reply r;

    assert_int_equal(request(port, "GET", "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    assert_string_equal(r.body, "# HELP dvec_requests_total Requests.\n"
                                "# TYPE dvec_requests_total counter\n"
                                "dvec_requests_total{op=\"search\",outcome=\"ok\"} 42\n");

    assert_int_equal(request(port, "GET", "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");

    assert_int_equal(request(port, "GET", "/livez", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "livez check passed\n");

    assert_int_equal(request(port, "GET", "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ready\n");
    atomic_store(&rd.ready, false);
    assert_int_equal(request(port, "GET", "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "replaying wal of partition 7\n");
    /* Not ready is not unhealthy. */
    assert_int_equal(request(port, "GET", "/healthz", &r), 0);
    assert_int_equal(r.status, 200);

    assert_int_equal(request(port, "GET", "/nope", &r), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(request(port, "GET", "/metrics/extra", &r), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(request(port, "POST", "/metrics", &r), 0);
    assert_int_equal(r.status, 405);
    assert_int_equal(request(port, "DELETE", "/healthz", &r), 0);
    assert_int_equal(r.status, 405);
    /* HEAD answers as GET without the body. */
    assert_int_equal(request(port, "HEAD", "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);

    httpd_free(h);
    /* Nothing listens any more. */
    assert_int_equal(request(port, "GET", "/healthz", &r), -1);
    metrics_free(reg);
}

static int teapot(void *arg, struct buf *body, const char **content_type)
{
    buf_appendf(body, "{\"short\":true}");
    *content_type = "application/json";
    return 418;
}

static int bad_status(void *arg, struct buf *body, const char **content_type)
{
    return 42;
}

static void test_custom_handlers(void **state)
{
    struct httpd *h;
    char msg[DV_ERRMSG_SIZE];
    assert_int_equal(httpd_new(URL_ANY_PORT, &h, msg), DV_OK);
    assert_int_equal(httpd_port(h, &(uint16_t){0}), DV_EINVAL); /* not started */
    assert_int_equal(httpd_add(h, "/tea", teapot, NULL, msg), DV_OK);
    assert_int_equal(httpd_start(h, msg), DV_OK);
    assert_int_equal(httpd_start(h, msg), DV_EINVAL);
    /* Handlers can be added while serving; a path is served once. */
    assert_int_equal(httpd_add(h, "/bad", bad_status, NULL, msg), DV_OK);
    assert_int_equal(httpd_add(h, "/tea", teapot, NULL, msg), DV_EEXIST);
    assert_non_null(strstr(msg, "/tea"));
    assert_int_equal(httpd_add(h, "tea", teapot, NULL, msg), DV_EINVAL);
    uint16_t port;
    assert_int_equal(httpd_port(h, &port), DV_OK);
    struct reply r;
    assert_int_equal(request(port, "GET", "/tea", &r), 0);
    assert_int_equal(r.status, 418);
    assert_true(has_header(&r, "Content-Type: application/json"));
    assert_string_equal(r.body, "{\"short\":true}");
    assert_int_equal(request(port, "GET", "/bad", &r), 0);
    assert_int_equal(r.status, 500);
    assert_int_equal(request(port, "GET", "/tea?x=1", &r), 0);
    assert_int_equal(r.status, 418);
    httpd_stop(h);
    httpd_stop(h);
    assert_int_equal(httpd_start(h, msg), DV_EINVAL);
    httpd_free(h);
}

static void test_bad_urls(void **state)
{
    struct httpd *h;
    char msg[DV_ERRMSG_SIZE];
    assert_int_equal(httpd_new("not a url", &h, msg), DV_EINVAL);
    assert_int_equal(httpd_new("tcp://127.0.0.1:0", &h, msg), DV_EINVAL);
    assert_non_null(strstr(msg, "http://"));
    httpd_free(NULL);
}

/* A port some other socket holds: start fails with DV_EBUSY. */
static void test_port_in_use(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    struct httpd *h;
    char msg[DV_ERRMSG_SIZE];
    assert_int_equal(httpd_new(url, &h, msg), DV_OK);
    assert_int_equal(httpd_start(h, msg), DV_EBUSY);
    assert_non_null(strstr(msg, "listen"));
    httpd_free(h);
    close(fd);
}

/* Two servers on port 0 get a port each. */
static void test_two_servers(void **state)
{
    struct readiness rd = {.ready = true};
    uint16_t p1, p2;
    struct httpd *h1 = start(NULL, &rd, &p1);
    struct httpd *h2 = start(NULL, &rd, &p2);
    assert_int_not_equal(p1, p2);
    struct reply r;
    assert_int_equal(request(p1, "GET", "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(request(p2, "GET", "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    httpd_free(h1);
    assert_int_equal(request(p2, "GET", "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    httpd_free(h2);
}

/* A handler that waits until told to go on, to catch httpd_stop() returning too early. */
struct slow {
    atomic_int entered, left;
    atomic_bool go;
};

static int slow_handler(void *arg, struct buf *body, const char **content_type)
{
    struct slow *s = arg;
    atomic_fetch_add(&s->entered, 1);
    while (!atomic_load(&s->go)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    buf_appendf(body, "done");
    atomic_fetch_add(&s->left, 1);
    return 200;
}

struct client {
    uint16_t port;
    struct reply r;
    int rc;
};

static void *client_thread(void *arg)
{
    struct client *c = arg;
    c->rc = request(c->port, "GET", "/slow", &c->r);
    return NULL;
}

static void *release_later(void *arg)
{
    struct slow *s = arg;
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    atomic_store(&s->go, true);
    return NULL;
}

static void test_stop_waits_for_handlers(void **state)
{
    struct slow s = {0};
    struct httpd *h;
    char msg[DV_ERRMSG_SIZE];
    assert_int_equal(httpd_new(URL_ANY_PORT, &h, msg), DV_OK);
    assert_int_equal(httpd_add(h, "/slow", slow_handler, &s, msg), DV_OK);
    assert_int_equal(httpd_start(h, msg), DV_OK);
    struct client c = {0};
    assert_int_equal(httpd_port(h, &c.port), DV_OK);
    pthread_t ct, rt;
    assert_int_equal(pthread_create(&ct, NULL, client_thread, &c), 0);
    for (int i = 0; i < 10000 && atomic_load(&s.entered) == 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(&s.entered), 1);
    assert_int_equal(pthread_create(&rt, NULL, release_later, &s), 0);
    httpd_stop(h);
    /* When stop returns, the handler has finished and `s` may go. */
    assert_int_equal(atomic_load(&s.left), 1);
    pthread_join(rt, NULL);
    pthread_join(ct, NULL);
    httpd_free(h);
}

/* ---- asynchronous trees ------------------------------------------------------------------ */

/* A tree handler that queues requests for a thread of its own, which answers 201 with
 * "METHOD URI LENGTH FIRST LAST" (413 for a body that was too big). */
struct tree {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct httpd_req *q[64];
    int n;
    bool stop;
    atomic_int handled, aborted;
    pthread_t th;
};

static void tree_fn(void *arg, struct httpd_req *req)
{
    struct tree *t = arg;
    pthread_mutex_lock(&t->mu);
    assert_true(t->n < 64);
    t->q[t->n++] = req;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void *tree_worker(void *arg)
{
    struct tree *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (t->n == 0) {
            if (t->stop)
                break;
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        struct httpd_req *r = t->q[0];
        memmove(t->q, t->q + 1, (size_t)--t->n * sizeof t->q[0]);
        pthread_mutex_unlock(&t->mu);
        size_t len;
        const unsigned char *b = httpd_req_body(r, &len);
        uint64_t declared;
        char out[256];
        int n = snprintf(out, sizeof out, "%s %s %zu %d %d", httpd_req_method(r), httpd_req_uri(r),
                         len, len ? b[0] : -1, len ? b[len - 1] : -1);
        if (httpd_req_aborted(r))
            atomic_fetch_add(&t->aborted, 1);
        atomic_fetch_add(&t->handled, 1);
        int status = httpd_req_too_big(r, &declared) ? 413 : 201;
        httpd_req_reply(r, status, "application/json", out, (size_t)n);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void test_tree(void **state)
{
    struct tree t = {.n = 0};
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    assert_int_equal(pthread_create(&t.th, NULL, tree_worker, &t), 0);
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    struct httpd *h;
    char msg[DV_ERRMSG_SIZE] = "";
    assert_int_equal(httpd_new(URL_ANY_PORT, &h, msg), DV_OK);
    assert_int_equal(httpd_add_metrics(h, reg, msg), DV_OK);
    assert_int_equal(httpd_add_tree(h, "/", 2u << 20, tree_fn, &t, msg), DV_OK);
    assert_int_equal(httpd_start(h, msg), DV_OK);
    uint16_t port;
    assert_int_equal(httpd_port(h, &port), DV_OK);
    struct reply r;

    /* Longer paths keep their handlers; everything else, any method, goes to the tree. */
    assert_int_equal(request(port, "GET", "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(request(port, "DELETE", "/a/b?x=1&y=%20", &r), 0);
    assert_int_equal(r.status, 201);
    assert_true(has_header(&r, "Content-Type: application/json"));
    assert_string_equal(r.body, "DELETE /a/b?x=1&y=%20 0 -1 -1");
    assert_int_equal(request(port, "GET", "/", &r), 0);
    assert_string_equal(r.body, "GET / 0 -1 -1");

    /* A body is read before the handler sees it, up to the limit (1 MiB here). */
    size_t big = 1u << 20;
    char *req = malloc(big + 256);
    int hl = snprintf(req, 256,
                      "PUT /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      big);
    memset(req + hl, 'a', big);
    req[hl] = 'b';
    req[hl + big - 1] = 'c';
    assert_int_equal(raw_request(port, req, (size_t)hl + big, &r), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "PUT /p 1048576 98 99");

    /* Over the limit: not read, the handler is told, the connection closes after the reply. */
    hl = snprintf(req, 256, "POST /q HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n0123456789",
                  (3u << 20));
    assert_int_equal(raw_request(port, req, (size_t)hl, &r), 0);
    assert_int_equal(r.status, 413);
    assert_true(has_header(&r, "Connection: close"));
    assert_string_equal(r.body, "POST /q 0 -1 -1");

    /* A chunked body (no Content-Length) is refused by httpd itself. */
    hl = snprintf(req, 256,
                  "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "3\r\nabc\r\n0\r\n\r\n");
    assert_int_equal(raw_request(port, req, (size_t)hl, &r), 0);
    assert_int_equal(r.status, 411);

    /* Keep-alive: two requests with bodies on one connection. */
    hl = snprintf(req, 256,
                  "POST /k1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
                  "POST /k2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n"
                  "pq");
    assert_int_equal(raw_request(port, req, (size_t)hl, &r), 0);
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(r.body, "POST /k2 2 112 113"));

    /* A client that goes away in the middle of its body: the handler gets the request as
     * aborted and still answers it (which only frees it). */
    int before = atomic_load(&t.handled);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    hl = snprintf(req, 256, "POST /gone HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    assert_int_equal(write(fd, req, (size_t)hl), hl);
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    close(fd);
    for (int i = 0; i < 1000 && atomic_load(&t.handled) == before; i++)
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    assert_int_equal(atomic_load(&t.handled), before + 1);
    assert_int_equal(atomic_load(&t.aborted), 1);
    free(req);

    /* Stop waits for the requests handed over to be answered. */
    httpd_free(h);
    pthread_mutex_lock(&t.mu);
    assert_int_equal(t.n, 0);
    t.stop = true;
    pthread_cond_signal(&t.cv);
    pthread_mutex_unlock(&t.mu);
    pthread_join(t.th, NULL);
    pthread_cond_destroy(&t.cv);
    pthread_mutex_destroy(&t.mu);
    metrics_free(reg);
}

static int teardown_nng(void **state)
{
    nng_fini(); /* lets leak checkers see nng's deferred frees */
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),   cmocka_unit_test(test_custom_handlers),
        cmocka_unit_test(test_bad_urls),    cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_two_servers), cmocka_unit_test(test_stop_waits_for_handlers),
        cmocka_unit_test(test_tree),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_nng);
}
