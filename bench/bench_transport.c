/* bench_transport.c - `dvec-bench transport`: what a request/reply costs on dvec's NNG path
 * (rpcsrv with the request run inline on NNG's thread, rpc's calls, as nodes and clients use
 * them) against plain TCP with a thread per connection (a 4-byte length, then the bytes), in
 * one process on 127.0.0.1, with a fixed spin standing in for a search's work. It measures the
 * transport that docs/architecture.md ("What is left") proposes for searches. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "bench_transport.h"
#include "bench_util.h"
#include "buf.h"
#include "err.h"
#include "rpc.h"
#include "rpcsrv.h"
#include "tcpsrv.h"

struct topts {
    uint32_t work_us, requests, req_bytes, rep_bytes;
};

static const struct topts *g_opts; /* the run's, for the handlers */

/* The stand-in for a search: spins work_us microseconds. */
static void work(void)
{
    double end = bench_now() + g_opts->work_us * 1e-6;
    while (bench_now() < end)
        ;
}

/* ---- dvec's NNG path --------------------------------------------------------------------- */

static int nng_handle(void *arg, const void *in, size_t n, struct buf *out,
                      struct rpcsrv_result *res)
{
    (void)arg, (void)in, (void)n;
    work();
    res->code = DV_OK;
    static const char zeros[1 << 16];
    return buf_append(out, zeros,
                      g_opts->rep_bytes < sizeof zeros ? g_opts->rep_bytes : sizeof zeros);
}

static bool nng_inline(void *arg, const void *in, size_t n)
{
    (void)arg, (void)in, (void)n;
    return true; /* as a node runs small searches */
}

/* ---- plain TCP, a thread per connection --------------------------------------------------- */

static void *tcp_conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint32_t cap = g_opts->req_bytes, len;
    char *in = malloc(cap), *out = calloc(1, g_opts->rep_bytes);
    while (in && out && tcp_read_full(fd, &len, 4) == 0 && (len = ntohl(len)) <= cap &&
           tcp_read_full(fd, in, len) == 0) {
        work();
        if (tcp_write_frame(fd, out, g_opts->rep_bytes) != 0)
            break;
    }
    free(in);
    free(out);
    close(fd);
    return NULL;
}

struct tcp_server {
    int lfd;
    uint16_t port;
    pthread_t acceptor;
};

static void *tcp_accept_main(void *arg)
{
    struct tcp_server *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break; /* shutdown() of the listener */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, NULL, tcp_conn_main, (void *)(intptr_t)fd) != 0)
            close(fd);
        else
            pthread_detach(t); /* it ends when its client closes */
    }
    return NULL;
}

static int tcp_listen(struct tcp_server *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int one = 1;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 64) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0)
        return DV_EOS;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->acceptor, NULL, tcp_accept_main, s) == 0 ? DV_OK : DV_EOS;
}

static void tcp_stop(struct tcp_server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->acceptor, NULL);
    close(s->lfd);
}

/* ---- clients ----------------------------------------------------------------------------- */

struct client {
    const char *nng_url; /* NULL: TCP to port */
    uint16_t port;
    atomic_uint *next; /* requests handed out */
    int rc;
};

static void *nng_client_main(void *arg)
{
    struct client *c = arg;
    struct rpc_opts o;
    rpc_opts_default(&o);
    o.connect_wait_ms = 2000;
    struct rpc *r;
    char err[DV_ERRMSG_SIZE];
    char *req = calloc(1, g_opts->req_bytes);
    if (req == NULL || (c->rc = rpc_open(c->nng_url, &o, &r, err)) != DV_OK) {
        free(req);
        c->rc = c->rc ? c->rc : DV_ENOMEM;
        return NULL;
    }
    while (atomic_fetch_add(c->next, 1) < g_opts->requests) {
        void *rep;
        size_t len;
        if ((c->rc = rpc_call_raw(r, req, g_opts->req_bytes, &rep, &len, err)) != DV_OK)
            break;
        free(rep);
    }
    rpc_close(r);
    free(req);
    return NULL;
}

static void *tcp_client_main(void *arg)
{
    struct client *c = arg;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(c->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    char *req = calloc(1, g_opts->req_bytes), *rep = malloc(4 + (size_t)g_opts->rep_bytes);
    c->rc = DV_EIO;
    if (fd >= 0 && req && rep && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) {
        c->rc = DV_OK;
        while (c->rc == DV_OK && atomic_fetch_add(c->next, 1) < g_opts->requests)
            if (tcp_write_frame(fd, req, g_opts->req_bytes) != 0 ||
                tcp_read_full(fd, rep, 4 + (size_t)g_opts->rep_bytes) != 0)
                c->rc = DV_EIO;
    }
    if (fd >= 0)
        close(fd);
    free(req);
    free(rep);
    return NULL;
}

/* Context switches of this process so far, every thread's, ended ones too. */
static uint64_t process_ctxsw(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
}

/* Runs `clients` client threads until `requests` are answered: requests per second, and the
 * context switches per request of the whole process (servers and clients). */
static int run(const char *nng_url, uint16_t port, uint32_t clients, double *qps, double *cs)
{
    atomic_uint next;
    atomic_init(&next, 0);
    struct client *c = calloc(clients, sizeof *c);
    pthread_t *t = calloc(clients, sizeof *t);
    if (c == NULL || t == NULL) {
        free(c);
        free(t);
        return DV_ENOMEM;
    }
    uint64_t cs0 = process_ctxsw();
    double t0 = bench_now();
    for (uint32_t i = 0; i < clients; i++) {
        c[i] = (struct client){nng_url, port, &next, DV_OK};
        pthread_create(&t[i], NULL, nng_url ? nng_client_main : tcp_client_main, &c[i]);
    }
    int rc = DV_OK;
    for (uint32_t i = 0; i < clients; i++) {
        pthread_join(t[i], NULL);
        if (c[i].rc != DV_OK)
            rc = c[i].rc;
    }
    double dt = bench_now() - t0;
    *qps = g_opts->requests / dt;
    *cs = (double)(process_ctxsw() - cs0) / g_opts->requests;
    free(c);
    free(t);
    return rc;
}

/* A comma-separated list of numbers into out[max]; its length, 0 when malformed. */
static uint32_t parse_list(const char *s, uint32_t *out, uint32_t max)
{
    uint32_t n = 0;
    for (char *end; *s && n < max; s = *end == ',' ? end + 1 : end) {
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || (*end != ',' && *end != '\0'))
            return 0;
        out[n++] = (uint32_t)v;
    }
    return n;
}

int bench_transport_main(int argc, char **argv)
{
    struct topts o = {.requests = 20000, .req_bytes = 3200, .rep_bytes = 400};
    uint32_t works[8] = {0, 50}, clients[8] = {1, 8}, n_works = 2, n_clients = 2, port = 17900;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--work-us") == 0 && v && (n_works = parse_list(v, works, 8)) > 0)
            i++;
        else if (strcmp(a, "--clients") == 0 && v && (n_clients = parse_list(v, clients, 8)) > 0)
            i++;
        else if (strcmp(a, "--requests") == 0 && v && (o.requests = (uint32_t)atoi(v)) > 0)
            i++;
        else if (strcmp(a, "--request-bytes") == 0 && v && (o.req_bytes = (uint32_t)atoi(v)) > 0)
            i++;
        else if (strcmp(a, "--reply-bytes") == 0 && v && (o.rep_bytes = (uint32_t)atoi(v)) > 0)
            i++;
        else if (strcmp(a, "--port") == 0 && v && (port = (uint32_t)atoi(v)) > 0 && port < 65536)
            i++;
        else {
            fprintf(strcmp(a, "--help") == 0 ? stdout : stderr,
                    "usage: dvec-bench transport [--work-us 0,50] [--clients 1,8]\n"
                    "         [--requests 20000] [--request-bytes 3200] [--reply-bytes 400]\n"
                    "         [--port 17900]\n"
                    "  Request/reply over dvec's NNG path (rpcsrv, the request run inline on\n"
                    "  NNG's thread; rpc's calls) and over plain TCP with a thread per\n"
                    "  connection, on 127.0.0.1 in this process; the server spins --work-us\n"
                    "  per request. Prints requests/s and context switches per request of\n"
                    "  the whole process, and TCP / NNG.\n");
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
    }
    g_opts = &o;
    char url[64], err[DV_ERRMSG_SIZE];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", port);
    struct rpcsrv_opts so = {.listen = url,
                             .workers = 2,
                             .contexts = 64,
                             .recv_max = 1u << 20,
                             .handle = nng_handle,
                             .run_inline = nng_inline};
    struct rpcsrv *srv;
    struct tcp_server ts;
    if (rpcsrv_new(&so, &srv, err) != DV_OK || rpcsrv_listen(srv, err) != DV_OK) {
        fprintf(stderr, "dvec-bench transport: %s\n", err);
        return 1;
    }
    if (tcp_listen(&ts) != DV_OK) {
        fprintf(stderr, "dvec-bench transport: cannot listen on 127.0.0.1\n");
        rpcsrv_stop(srv);
        return 1;
    }
    printf("## dvec-bench transport: %u requests of %u bytes, replies of %u bytes, 127.0.0.1\n\n",
           o.requests, o.req_bytes, o.rep_bytes);
    printf("| work us | clients | NNG req/s | NNG cs/request | TCP req/s | TCP cs/request | TCP / "
           "NNG |\n|---:|---:|---:|---:|---:|---:|---:|\n");
    int status = 0;
    for (uint32_t w = 0; w < n_works; w++)
        for (uint32_t k = 0; k < n_clients; k++) {
            o.work_us = works[w];
            double nq, ncs, tq, tcs;
            int rc = run(url, 0, clients[k], &nq, &ncs);
            if (rc == DV_OK)
                rc = run(NULL, ts.port, clients[k], &tq, &tcs);
            if (rc != DV_OK) {
                fprintf(stderr, "dvec-bench transport: a request failed: %s\n", dv_strerror(rc));
                status = 1;
                break;
            }
            printf("| %u | %u | %.0f | %.1f | %.0f | %.1f | %.2fx |\n", works[w], clients[k], nq,
                   ncs, tq, tcs, tq / nq);
        }
    tcp_stop(&ts);
    rpcsrv_stop(srv);
    return status;
}
