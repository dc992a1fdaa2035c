/* bench_rest.c - `dvec-bench rest`: search QPS and latency through a coordinator's REST API
 * (JSON over HTTP, keep-alive connections, plain sockets), next to the native protocol. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_rest.h"
#include "bench_util.h"
#include "buf.h"
#include "dist.h"
#include "err.h"
#include "msg.h"
#include "rpc.h"

#define COLL "bench_rest"

struct ropts {
    const char *url, *native;
    char host[256];
    uint16_t port;
    uint64_t n;
    uint32_t dim, queries, k, ef, parts, batch, rounds;
    uint32_t clients[8], n_clients;
    bool skip_load, query_api;
    const char *coll;   /* --collection, default COLL */
    const char *data;   /* --data DIR: base.fvecs, queries.fvecs, gt.ivecs */
    char paths[4][320]; /* upsert, search, query, collection */
};

/* ---- a minimal HTTP/1.1 client: one keep-alive connection ---------------------------------- */

struct hc {
    int fd;
    const struct ropts *o;
    struct buf in; /* bytes read and not yet consumed */
};

static int hc_connect(struct hc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->in.len = 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    char port[16];
    snprintf(port, sizeof port, "%u", c->o->port);
    if (getaddrinfo(c->o->host, port, &hints, &ai) != 0)
        return -1;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends one request and reads its answer; *body points into c->in (valid until the next
 * call). Returns the HTTP status, or -1 when the connection failed. */
static int hc_once(struct hc *c, const char *method, const char *path, const char *b, size_t n,
                   const char **body, size_t *blen)
{
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, c->o->host, c->o->port, n);
    if (write_all(c->fd, head, (size_t)hl) != 0 || write_all(c->fd, b, n) != 0)
        return -1;
    c->in.len = 0;
    size_t hend = 0, clen = 0;
    for (;;) {
        if (hend == 0 && c->in.len >= 4) {
            char *e = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
            if (e) {
                hend = (size_t)(e - (char *)c->in.data) + 4;
                *e = '\0';
                const char *cl = strcasestr((char *)c->in.data, "\r\nContent-Length:");
                clen = cl ? strtoull(cl + 17, NULL, 10) : 0;
            }
        }
        if (hend && c->in.len >= hend + clen)
            break;
        if (buf_reserve(&c->in, 65536) != DV_OK)
            return -1;
        ssize_t r = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        c->in.len += (size_t)r;
    }
    int status = 0;
    sscanf((char *)c->in.data, "HTTP/1.1 %d", &status);
    *body = (const char *)c->in.data + hend;
    *blen = clen;
    return status;
}

/* hc_once, reconnecting once when the connection was lost. */
static int hc_call(struct hc *c, const char *method, const char *path, const char *b, size_t n,
                   const char **body, size_t *blen)
{
    if (c->fd < 0 && hc_connect(c) != 0)
        return -1;
    int st = hc_once(c, method, path, b, n, body, blen);
    if (st < 0 && hc_connect(c) == 0)
        st = hc_once(c, method, path, b, n, body, blen);
    return st;
}

static void hc_close(struct hc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    buf_free(&c->in);
}

/* ---- data, load, oracle --------------------------------------------------------------------- */

static void put_vec(struct buf *b, const float *v, uint32_t dim)
{
    buf_append(b, "[", 1);
    for (uint32_t d = 0; d < dim; d++)
        buf_appendf(b, d ? ",%.6g" : "%.6g", (double)v[d]);
    buf_append(b, "]", 1);
}

struct load {
    const struct ropts *o;
    const float *data;
    atomic_uint_least64_t next;
    atomic_bool failed;
};

static void *load_main(void *arg)
{
    struct load *l = arg;
    const struct ropts *o = l->o;
    struct hc c = {.fd = -1, .o = o};
    struct buf b = BUF_INIT;
    for (;;) {
        uint64_t s = atomic_fetch_add(&l->next, o->batch);
        if (s >= o->n || atomic_load(&l->failed))
            break;
        uint64_t e = s + o->batch < o->n ? s + o->batch : o->n;
        buf_reset(&b);
        buf_appendf(&b, "{\"points\":[");
        for (uint64_t i = s; i < e; i++) {
            buf_appendf(&b, "%s{\"id\":%" PRIu64 ",\"vector\":", i > s ? "," : "", i);
            put_vec(&b, l->data + i * o->dim, o->dim);
            buf_appendf(&b, "}");
        }
        buf_appendf(&b, "]}");
        const char *body;
        size_t blen;
        int st = hc_call(&c, "PUT", o->paths[0], (const char *)b.data, b.len, &body, &blen);
        if (st != 200) {
            fprintf(stderr, "dvec-bench rest: upsert: status %d: %.*s\n", st, (int)blen, body);
            atomic_store(&l->failed, true);
        }
    }
    buf_free(&b);
    hc_close(&c);
    return NULL;
}

/* ---- the measured searches ------------------------------------------------------------------ */

struct result {
    double qps, p50_ms, p99_ms, recall;
};

struct run {
    const struct ropts *o;
    struct buf *bodies; /* one JSON request body per query, made before timing */
    const float *qv;
    const uint64_t *truth;
    struct rpc *native; /* NULL: REST */
    atomic_uint next;
    double *lat;
    atomic_uint_least64_t hits;
    atomic_bool failed;
};

/* Counts the ids of a search answer that are in the query's true top k. */
static uint32_t rest_hits(const char *body, size_t n, const uint64_t *truth, uint32_t k)
{
    uint32_t got = 0;
    const char *p = body, *end = body + n;
    while ((p = memmem(p, (size_t)(end - p), "\"id\":", 5)) != NULL) {
        p += 5;
        uint64_t id = strtoull(p, NULL, 10);
        for (uint32_t j = 0; j < k; j++)
            got += truth[j] == id;
    }
    return got;
}

static void *search_main(void *arg)
{
    struct run *r = arg;
    const struct ropts *o = r->o;
    struct hc c = {.fd = -1, .o = o};
    const char *path = o->query_api ? o->paths[2] : o->paths[1];
    for (;;) {
        uint32_t q = atomic_fetch_add(&r->next, 1);
        if (q >= o->queries || atomic_load(&r->failed))
            break;
        const uint64_t *truth = r->truth + (size_t)q * o->k;
        double t0 = bench_now();
        uint32_t got = 0;
        if (r->native == NULL) {
            const char *body;
            size_t blen;
            int st = hc_call(&c, "POST", path, (const char *)r->bodies[q].data, r->bodies[q].len,
                             &body, &blen);
            r->lat[q] = bench_now() - t0;
            if (st != 200) {
                fprintf(stderr, "dvec-bench rest: search: status %d: %.*s\n", st, (int)blen, body);
                atomic_store(&r->failed, true);
                break;
            }
            got = rest_hits(body, blen, truth, o->k);
        } else {
            struct msg_query mq = {
                .vec = (float *)r->qv + (size_t)q * o->dim, .dim = o->dim, .k = o->k, .ef = o->ef};
            struct msg req = {.type = MSG_P_SEARCH};
            req.addr.coll = (struct msg_str){o->coll, (uint32_t)strlen(o->coll)};
            req.u.csearch_req = (struct msg_csearch_req){&mq, 1, false, 0};
            struct msg_reply rep;
            char err[DV_ERRMSG_SIZE];
            int rc = rpc_call(r->native, &req, &rep, err);
            r->lat[q] = bench_now() - t0;
            if (rc != DV_OK) {
                fprintf(stderr, "dvec-bench rest: native search: %s\n", err);
                atomic_store(&r->failed, true);
                msg_reply_free(&rep);
                break;
            }
            const struct msg_hits *h = &rep.m.u.csearch_rep.results[0];
            for (uint32_t i = 0; i < h->n; i++)
                for (uint32_t j = 0; j < o->k; j++)
                    got += h->hits[i].id.kind == PID_NUM && truth[j] == h->hits[i].id.lo;
            msg_reply_free(&rep);
        }
        atomic_fetch_add(&r->hits, got);
    }
    hc_close(&c);
    return NULL;
}

/* Best of o->rounds runs of every query with `threads` clients. */
static int measure(const struct ropts *o, struct run *r, uint32_t threads, struct result *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t round = 0; round < o->rounds; round++) {
        atomic_store(&r->next, 0);
        atomic_store(&r->hits, 0);
        pthread_t th[64];
        double t0 = bench_now();
        for (uint32_t t = 0; t < threads; t++)
            pthread_create(&th[t], NULL, search_main, r);
        for (uint32_t t = 0; t < threads; t++)
            pthread_join(th[t], NULL);
        double secs = bench_now() - t0;
        if (atomic_load(&r->failed))
            return -1;
        qsort(r->lat, o->queries, sizeof *r->lat, bench_cmp_double);
        double qps = o->queries / secs;
        if (qps > out->qps) {
            out->qps = qps;
            out->p50_ms = r->lat[o->queries / 2] * 1e3;
            out->p99_ms = r->lat[(size_t)o->queries * 99 / 100] * 1e3;
            out->recall = (double)atomic_load(&r->hits) / ((double)o->queries * o->k);
        }
    }
    return 0;
}

/* ---- the command ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dvec-bench rest --url http://HOST:PORT [--native tcp://HOST:PORT] [--n N]\n"
            "         [--dim D] [--queries Q] [--k K] [--ef EF] [--parts P] [--batch B]\n"
            "         [--clients C1,C2,...] [--rounds R] [--skip-load] [--query-api]\n"
            "         [--data DIR] [--collection NAME]\n"
            "  Against a running cluster (e.g. deploy/local/cluster start --bin build; the REST\n"
            "  URL of coordinator 1 is --port + 2): (re)creates the collection `" COLL "`\n"
            "  (Euclid, P partitions, 0: the coordinator's default), loads N clustered vectors\n"
            "  through REST upserts of B points (2 client threads), then runs Q searches\n"
            "  (POST .../points/search, or .../points/query with --query-api), one per request,\n"
            "  with each number of client threads, every client on its own keep-alive\n"
            "  connection; and, with --native (the same coordinator's native URL), the same\n"
            "  searches through the native protocol. Reports QPS, p50/p99 latency and\n"
            "  recall@K against brute force. --skip-load reuses a loaded collection.\n"
            "  --data DIR takes base.fvecs, queries.fvecs (the first --queries) and gt.ivecs of\n"
            "  a TEXMEX set instead (ids: row numbers; recall against gt.ivecs), e.g. with\n"
            "  --collection fashion-mnist --skip-load on the quickstart's cluster.\n"
            "  Defaults: --n 100000 --dim 128 --queries 2000 --k 10 --ef 64 --parts 0\n"
            "  --batch 1000 --clients 1,8 --rounds 3.\n");
}

static int parse_url(struct ropts *o)
{
    const char *p = o->url;
    if (strncmp(p, "http://", 7) != 0)
        return -1;
    p += 7;
    const char *colon = strchr(p, ':');
    if (colon == NULL || (size_t)(colon - p) >= sizeof o->host)
        return -1;
    memcpy(o->host, p, (size_t)(colon - p));
    o->host[colon - p] = '\0';
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return -1;
    o->port = (uint16_t)port;
    return 0;
}

static int setup_collection(const struct ropts *o)
{
    struct hc c = {.fd = -1, .o = o};
    const char *body;
    size_t blen;
    int st = hc_call(&c, "DELETE", o->paths[3], "", 0, &body, &blen);
    if (st != 200) {
        fprintf(stderr, "dvec-bench rest: cannot reach %s (status %d)\n", o->url, st);
        hc_close(&c);
        return -1;
    }
    char req[256], shards[48] = "";
    if (o->parts)
        snprintf(shards, sizeof shards, ",\"shard_number\":%u", o->parts);
    int n = snprintf(req, sizeof req,
                     "{\"vectors\":{\"size\":%u,\"distance\":\"Euclid\"}%s,"
                     "\"hnsw_config\":{\"m\":16,\"ef_construct\":200}}",
                     o->dim, shards);
    st = hc_call(&c, "PUT", o->paths[3], req, (size_t)n, &body, &blen);
    if (st != 200)
        fprintf(stderr, "dvec-bench rest: create: status %d: %.*s\n", st, (int)blen, body);
    hc_close(&c);
    return st == 200 ? 0 : -1;
}

int bench_rest_main(int argc, char **argv)
{
    struct ropts o = {.n = 100000,
                      .dim = 128,
                      .queries = 2000,
                      .k = 10,
                      .ef = 64,
                      .batch = 1000,
                      .rounds = 3,
                      .clients = {1, 8},
                      .n_clients = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--skip-load") == 0) {
            o.skip_load = true;
        } else if (strcmp(a, "--query-api") == 0) {
            o.query_api = true;
        } else if (v == NULL) {
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--url") == 0) {
            o.url = v, i++;
        } else if (strcmp(a, "--native") == 0) {
            o.native = v, i++;
        } else if (strcmp(a, "--data") == 0) {
            o.data = v, i++;
        } else if (strcmp(a, "--collection") == 0) {
            o.coll = v, i++;
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
        } else if (strcmp(a, "--parts") == 0) {
            o.parts = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--batch") == 0) {
            o.batch = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--rounds") == 0) {
            o.rounds = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--clients") == 0) {
            o.n_clients = 0;
            for (const char *c = v; *c && o.n_clients < 8;
                 c = strchr(c, ',') ? strchr(c, ',') + 1 : "")
                o.clients[o.n_clients++] = (uint32_t)atoi(c);
            i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    bool bad = o.url == NULL || parse_url(&o) != 0 || o.n == 0 || o.dim == 0 || o.queries == 0 ||
               o.k == 0 || o.batch == 0 || o.rounds == 0 || o.n_clients == 0;
    for (uint32_t i = 0; i < o.n_clients; i++)
        bad |= o.clients[i] == 0 || o.clients[i] > 64;
    if (bad) {
        usage(stderr);
        return 2;
    }
    if (o.coll == NULL)
        o.coll = COLL;
    snprintf(o.paths[0], sizeof o.paths[0], "/collections/%s/points?wait=true", o.coll);
    snprintf(o.paths[1], sizeof o.paths[1], "/collections/%s/points/search", o.coll);
    snprintf(o.paths[2], sizeof o.paths[2], "/collections/%s/points/query", o.coll);
    snprintf(o.paths[3], sizeof o.paths[3], "/collections/%s", o.coll);
    float *data = NULL, *qv = NULL;
    uint64_t *truth = NULL;
    if (o.data) {
        char path[4096];
        size_t nb = 0, nq = 0, ng = 0;
        uint32_t dq = 0, dg = 0;
        snprintf(path, sizeof path, "%s/base.fvecs", o.data);
        data = bench_read_vecs(path, &nb, &o.dim);
        snprintf(path, sizeof path, "%s/queries.fvecs", o.data);
        qv = data ? bench_read_vecs(path, &nq, &dq) : NULL;
        snprintf(path, sizeof path, "%s/gt.ivecs", o.data);
        int32_t *gt = qv ? bench_read_vecs(path, &ng, &dg) : NULL;
        if (gt == NULL || dq != o.dim || ng != nq || dg < o.k) {
            if (gt)
                fprintf(stderr,
                        "dvec-bench rest: %s: queries, base and ground truth disagree "
                        "(dimensions %u/%u, %zu queries, %zu rows of %u neighbours)\n",
                        o.data, dq, o.dim, nq, ng, dg);
            return 1;
        }
        o.n = nb;
        if (o.queries > nq)
            o.queries = (uint32_t)nq;
        truth = malloc((size_t)o.queries * o.k * sizeof *truth);
        for (uint32_t q = 0; q < o.queries; q++)
            for (uint32_t j = 0; j < o.k; j++)
                truth[(size_t)q * o.k + j] = (uint64_t)gt[(size_t)q * dg + j];
        free(gt);
    } else {
        data = malloc(o.n * o.dim * sizeof(float));
        qv = malloc((size_t)o.queries * o.dim * sizeof(float));
        for (uint64_t i = 0; i < o.n; i++)
            bench_gen_vec(i, o.dim, data + i * o.dim);
        for (uint32_t q = 0; q < o.queries; q++)
            bench_gen_vec(o.n + 1000003ull * (q + 1), o.dim, qv + (size_t)q * o.dim);
    }

    double up = 0;
    if (!o.skip_load) {
        if (setup_collection(&o) != 0)
            return 1;
        struct load l = {.o = &o, .data = data};
        double t0 = bench_now();
        pthread_t th;
        pthread_create(&th, NULL, load_main, &l);
        load_main(&l);
        pthread_join(th, NULL);
        up = (double)o.n / (bench_now() - t0);
        if (atomic_load(&l.failed))
            return 1;
    }
    if (truth == NULL)
        truth = bench_oracle_l2(data, o.n, o.dim, qv, o.queries, o.k, dist_get()->l2sq);
    struct buf *bodies = calloc(o.queries, sizeof *bodies);
    for (uint32_t q = 0; q < o.queries; q++) {
        buf_appendf(&bodies[q], o.query_api ? "{\"query\":" : "{\"vector\":");
        put_vec(&bodies[q], qv + (size_t)q * o.dim, o.dim);
        buf_appendf(&bodies[q], ",\"limit\":%u,\"params\":{\"hnsw_ef\":%u}}", o.k, o.ef);
    }
    struct run r = {.o = &o, .bodies = bodies, .qv = qv, .truth = truth};
    r.lat = calloc(o.queries, sizeof *r.lat);
    struct result rest[8], nat[8];
    struct rpc *nr = NULL;
    char err[DV_ERRMSG_SIZE];
    if (o.native) {
        struct rpc_opts ro;
        rpc_opts_default(&ro);
        ro.timeout_ms = 60000;
        if (rpc_open(o.native, &ro, &nr, err) != DV_OK) {
            fprintf(stderr, "dvec-bench rest: %s: %s\n", o.native, err);
            return 1;
        }
    }
    int rc = 0;
    for (uint32_t i = 0; i < o.n_clients && rc == 0; i++) {
        r.native = NULL;
        rc = measure(&o, &r, o.clients[i], &rest[i]);
        if (rc == 0 && nr) {
            r.native = nr;
            rc = measure(&o, &r, o.clients[i], &nat[i]);
        }
    }
    if (rc == 0) {
        printf("\n## dvec-bench rest: %" PRIu64 " x %u (%s), collection %s, Euclid, ef %u, k %u, "
               "%u queries, one per request (%s), keep-alive, best of %u rounds\n\n",
               o.n, o.dim, o.data ? o.data : "clustered", o.coll, o.ef, o.k, o.queries,
               o.query_api ? "points/query" : "points/search", o.rounds);
        printf("| path | client threads | QPS | p50 ms | p99 ms | recall@%u | REST / native |\n",
               o.k);
        printf("|---|---:|---:|---:|---:|---:|---:|\n");
        for (uint32_t t = 0; t < o.n_clients; t++) {
            if (nr)
                printf("| native protocol | %u | %.0f | %.3f | %.3f | %.4f | |\n", o.clients[t],
                       nat[t].qps, nat[t].p50_ms, nat[t].p99_ms, nat[t].recall);
            printf("| REST (JSON over HTTP) | %u | %.0f | %.3f | %.3f | %.4f | ", o.clients[t],
                   rest[t].qps, rest[t].p50_ms, rest[t].p99_ms, rest[t].recall);
            if (nr)
                printf("%.2fx |\n", rest[t].qps / nat[t].qps);
            else
                printf("|\n");
        }
        if (up > 0)
            printf("\nUpsert through REST (batches of %u points, 2 client threads): %.0f "
                   "vectors/s\n",
                   o.batch, up);
    }
    if (nr)
        rpc_close(nr);
    for (uint32_t q = 0; q < o.queries; q++)
        buf_free(&bodies[q]);
    free(bodies);
    free(r.lat);
    free(truth);
    free(data);
    free(qv);
    return rc == 0 ? 0 : 1;
}
