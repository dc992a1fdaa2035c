/* test_rest.c - the REST layer over a fake coordinator: native error codes to HTTP statuses,
 * rendering of native replies, a full queue answered 503, bodies over the limit 413, and
 * thousands of mutated request bodies on every route answered with a JSON 2xx/4xx, never a
 * crash (run under ASan and UBSan in scripts/test). */
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <nng/nng.h>

#include "buf.h"
#include "err.h"
#include "httpd.h"
#include "jsonmp.h"
#include "msg.h"
#include "rest.h"

/* ---- the fake coordinator ----------------------------------------------------------------- */

static atomic_int force_code; /* answer every request with this error when not 0 */
static atomic_bool hold;      /* requests wait while set */
static atomic_int calls;

static bool fake_meta(void *arg, const char *name, struct msg_coll_cfg *cfg)
{
    if (strcmp(name, "a") != 0)
        return false;
    *cfg = (struct msg_coll_cfg){.dim = 4, .metric = 2};
    return true;
}

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

/* Answers like a coordinator holding collection "a" (4 dims, cosine) with points 1..100. */
static int fake_answer(void *arg, const void *in, size_t n, struct buf *out,
                       struct rpcsrv_result *res)
{
    atomic_fetch_add(&calls, 1);
    while (atomic_load(&hold)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    struct msg q, r;
    char err[DV_ERRMSG_SIZE];
    if (msg_decode(in, n, &q, err) != DV_OK)
        return DV_EPROTO; /* not on this thread: the request then fails with 500 */
    memset(&r, 0, sizeof r);
    r.type = q.type;
    r.reply = true;
    r.req_id = q.req_id;
    int code = atomic_load(&force_code);
    bool coll_a = q.addr.coll.len == 1 && q.addr.coll.p[0] == 'a';
    if (code == 0 && msg_type_collection(q.type) && q.type != MSG_COLL_CREATE && !coll_a)
        code = DV_ENOTFOUND;
    if (code != 0) {
        msg_free(&q);
        return msg_encode_error(out, r.type, r.req_id, code, "forced error", 0);
    }
    static float vec[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    static const uint8_t payload[] = {0x81, 0xa1, 'k', 0x01}; /* {"k": 1} */
    struct msg_hit hits[100];
    struct msg_hits lists[64];
    struct msg_str names[1] = {S("a")};
    struct msg_str nodes[1] = {S("n1")};
    struct msg_coll_part part = {0, 1, nodes, 1, 100, 1, NULL};
    struct buf status = BUF_INIT;
    for (int i = 0; i < 100; i++)
        hits[i] = (struct msg_hit){pid_num((uint64_t)i + 1),
                                   1.0f - (float)i / 100.0f,
                                   vec,
                                   4,
                                   {payload, sizeof payload},
                                   {NULL, 0}};
    switch (q.type) {
    case MSG_COLL_LIST:
        r.u.coll_list_rep = (struct msg_coll_list_rep){names, 1};
        break;
    case MSG_COLL_INFO:
        r.u.coll_info_rep.cfg = (struct msg_coll_cfg){.dim = 4,
                                                      .metric = 2,
                                                      .m = 16,
                                                      .ef_construction = 200,
                                                      .ef_search = 64,
                                                      .fsync = 0,
                                                      .partitions = 1,
                                                      .replication = 1,
                                                      .sq8 = false};
        r.u.coll_info_rep.points = 100;
        r.u.coll_info_rep.parts = &part;
        r.u.coll_info_rep.n_parts = 1;
        break;
    case MSG_CLUSTER: {
        static const char st[] =
            "{\"coordinator\":{\"id\":1,\"state\":\"leader\",\"leader_id\":1,"
            "\"term\":3,\"commit_index\":9,\"last_applied\":9},"
            "\"coordinators\":[{\"id\":1,\"url\":\"tcp://x:1\"}],"
            "\"nodes\":[{\"id\":\"n1\",\"url\":\"tcp://x:2\",\"state\":\"alive\"}]}";
        jsonmp_from_text(st, sizeof st - 1, &status, NULL);
        r.u.cluster_rep.status = (struct msg_bytes){status.data, (uint32_t)status.len};
        break;
    }
    case MSG_P_GET:
        r.u.get_rep = (struct msg_hits){hits, q.u.get_req.n < 100 ? q.u.get_req.n : 100};
        break;
    case MSG_P_COUNT:
        r.u.count_rep.count = 42;
        break;
    case MSG_P_SCROLL:
        r.u.scroll_rep.hits = (struct msg_hits){hits, q.u.scroll_req.limit < 2 ? 1 : 2};
        r.u.scroll_rep.more = false;
        break;
    case MSG_P_SEARCH:
        for (uint32_t i = 0; i < q.u.csearch_req.n_queries && i < 64; i++)
            lists[i] = (struct msg_hits){
                hits, q.u.csearch_req.queries[i].k < 100 ? q.u.csearch_req.queries[i].k : 100};
        r.u.csearch_rep.results = lists;
        r.u.csearch_rep.n = q.u.csearch_req.n_queries;
        break;
    default:
        break; /* writes: write_rep zero; create, drop: empty */
    }
    int rc = msg_encode(&r, out, err);
    buf_free(&status);
    msg_free(&q);
    res->code = DV_OK;
    return rc;
}

/* The typed entry point REST calls (rest_call_fn): the fake above answers the encoded
 * request, and its reply is handed back decoded, as a msg_reply owning the bytes. */
static atomic_int requeued_calls; /* calls made with rpcsrv_result.requeued */

static int fake_call(void *arg, const struct msg *req, struct msg_reply *rep,
                     struct rpcsrv_result *res)
{
    if (res->requeued)
        atomic_fetch_add(&requeued_calls, 1);
    struct buf in = BUF_INIT, out = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    int rc = msg_encode(req, &in, err);
    if (rc == DV_OK)
        rc = fake_answer(arg, in.data, in.len, &out, res);
    buf_free(&in);
    if (rc == DV_OK && (rc = msg_decode(out.data, out.len, &rep->m, err)) == DV_OK) {
        rep->mem_ = out.data; /* m points into it; msg_reply_free frees both */
        return DV_OK;
    }
    buf_free(&out);
    return rc;
}

/* The coordinator's coord_search_start (rest_search_fn), by `search_mode`: 0 answers before
 * it returns, 1 from another thread 5 ms later, 2 says "not a plain search" (nothing
 * started), 3 starts and then gives up (rep NULL: the REST layer requeues the request). */
static atomic_int search_mode, search_starts;

struct later {
    const struct msg *req;
    rest_search_done done;
    void *done_arg;
    bool give_up;
};

static void finish_search(const struct msg *req, rest_search_done done, void *done_arg,
                          bool give_up)
{
    if (give_up) {
        done(done_arg, NULL, 0);
        return;
    }
    struct msg_reply rep = {0};
    struct rpcsrv_result res;
    memset(&res, 0, sizeof res);
    int rc = fake_call(NULL, req, &rep, &res);
    if (rc != DV_OK) { /* not on the test's thread: no cmocka assertion here */
        fprintf(stderr, "fake_search: %s\n", dv_errname(rc));
        abort();
    }
    done(done_arg, &rep.m.u.csearch_rep, 2);
    msg_reply_free(&rep);
}

static void *later_main(void *arg)
{
    struct later *l = arg;
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
    finish_search(l->req, l->done, l->done_arg, l->give_up);
    free(l);
    return NULL;
}

static bool fake_search(void *arg, const struct msg *req, rest_search_done done, void *done_arg)
{
    (void)arg;
    int mode = atomic_load(&search_mode);
    if (req->type != MSG_P_SEARCH)
        abort();
    if (mode == 2)
        return false;
    atomic_fetch_add(&search_starts, 1);
    if (mode == 0) {
        finish_search(req, done, done_arg, false);
        return true;
    }
    struct later *l = malloc(sizeof *l);
    pthread_t t;
    if (l == NULL)
        abort();
    *l = (struct later){req, done, done_arg, mode == 3};
    if (pthread_create(&t, NULL, later_main, l) != 0)
        abort();
    pthread_detach(t);
    return true;
}

static rest_search_fn srv_search; /* srv_start's rest_opts.search (NULL: workers only) */

/* ---- a server and a client ---------------------------------------------------------------- */

struct srv {
    struct rest *rest;
    struct httpd *http;
    uint16_t port;
};

static void srv_start(struct srv *s, uint32_t workers, uint32_t max_queue, uint64_t max_body)
{
    char err[DV_ERRMSG_SIZE];
    struct rest_opts o = {.call = fake_call,
                          .search = srv_search,
                          .meta = fake_meta,
                          .peer_id = 1,
                          .workers = workers,
                          .max_queue = max_queue,
                          .max_body = max_body,
                          .version = "0.1.0"};
    assert_int_equal(rest_new(&o, &s->rest, err), DV_OK);
    assert_int_equal(httpd_new("http://127.0.0.1:0", &s->http, err), DV_OK);
    assert_int_equal(rest_attach(s->rest, s->http, err), DV_OK);
    assert_int_equal(httpd_start(s->http, err), DV_OK);
    assert_int_equal(httpd_port(s->http, &s->port), DV_OK);
}

static void srv_stop(struct srv *s)
{
    httpd_free(s->http);
    rest_free(s->rest);
}

struct answer {
    int status;
    json_t *json; /* NULL when the body is not JSON */
    char body[512];
};

/* One request on a fresh connection (closed by the server after the answer). */
static int request(uint16_t port, const char *method, const char *path, const char *body, size_t n,
                   struct answer *a)
{
    memset(a, 0, sizeof *a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    struct buf req = BUF_INIT, in = BUF_INIT;
    buf_appendf(&req,
                "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
                method, path, n);
    buf_append(&req, body, n);
    size_t off = 0;
    while (off < req.len) {
        ssize_t w = write(fd, req.data + off, req.len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    char chunk[4096];
    ssize_t got;
    while ((got = read(fd, chunk, sizeof chunk)) > 0)
        buf_append(&in, chunk, (size_t)got);
    close(fd);
    buf_free(&req);
    buf_appendf(&in, "%s", "");
    const char *t = (const char *)in.data, *e = t ? strstr(t, "\r\n\r\n") : NULL;
    int rc = -1;
    if (e && sscanf(t, "HTTP/1.1 %d", &a->status) == 1) {
        snprintf(a->body, sizeof a->body, "%s", e + 4);
        a->json = json_loads(e + 4, 0, NULL);
        rc = 0;
    }
    buf_free(&in);
    return rc;
}

/* The answer is Qdrant's envelope: ok with a result, or an error with a message. */
static void assert_envelope(const struct answer *a)
{
    if (a->json == NULL)
        fail_msg("status %d, body not JSON: %s", a->status, a->body);
    json_t *st = json_object_get(a->json, "status");
    assert_non_null(json_object_get(a->json, "time"));
    if (a->status == 200) {
        assert_true(json_is_string(st) && strcmp(json_string_value(st), "ok") == 0);
        assert_non_null(json_object_get(a->json, "result"));
    } else {
        assert_true(json_is_object(st) && json_is_string(json_object_get(st, "error")));
    }
}

/* ---- cases -------------------------------------------------------------------------------- */

static void test_error_mapping(void **state)
{
    struct srv s;
    srv_start(&s, 2, 0, 1 << 20);
    static const struct {
        int code, status;
    } map[] = {
        {DV_ENOTFOUND, 404}, {DV_EINVAL, 400},    {DV_EDIM, 400},     {DV_ENAN, 400},
        {DV_ERANGE, 400},    {DV_EPROTO, 400},    {DV_ETOOBIG, 413},  {DV_EFULL, 507},
        {DV_EBUSY, 503},     {DV_ETIMEDOUT, 503}, {DV_ESTALE, 503},   {DV_EIO, 503},
        {DV_ESHUTDOWN, 503}, {DV_ENOMEM, 500},    {DV_ECORRUPT, 500}, {DV_EOS, 500},
    };
    struct answer a;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        atomic_store(&force_code, map[i].code);
        assert_int_equal(request(s.port, "POST", "/collections/a/points/count", "{}", 2, &a), 0);
        if (a.status != map[i].status)
            fail_msg("%s: status %d, wanted %d", dv_errname(map[i].code), a.status, map[i].status);
        assert_envelope(&a);
        assert_non_null(
            strstr(json_string_value(json_object_get(json_object_get(a.json, "status"), "error")),
                   "forced error"));
        json_decref(a.json);
    }
    /* A collection that exists elsewhere: 409 with Qdrant's words. */
    atomic_store(&force_code, DV_EEXIST);
    const char *create = "{\"vectors\":{\"size\":4,\"distance\":\"Dot\"}}";
    assert_int_equal(request(s.port, "PUT", "/collections/b", create, strlen(create), &a), 0);
    assert_int_equal(a.status, 409);
    assert_non_null(strstr(a.body, "Collection `b` already exists!"));
    json_decref(a.json);
    /* Delete of a missing collection: false, not an error. */
    atomic_store(&force_code, DV_ENOTFOUND);
    assert_int_equal(request(s.port, "DELETE", "/collections/b", "", 0, &a), 0);
    assert_int_equal(a.status, 200);
    assert_true(json_is_false(json_object_get(a.json, "result")));
    json_decref(a.json);
    atomic_store(&force_code, 0);
    srv_stop(&s);
}

static void test_rendering(void **state)
{
    struct srv s;
    srv_start(&s, 2, 0, 1 << 20);
    struct answer a;
    const char *q = "{\"vector\":[1,2,3,4],\"limit\":3,\"offset\":1,\"with_payload\":true,"
                    "\"score_threshold\":0.975}";
    assert_int_equal(request(s.port, "POST", "/collections/a/points/search", q, strlen(q), &a), 0);
    assert_int_equal(a.status, 200);
    /* Hits 1.0, 0.99, 0.98, 0.97: offset 1 drops the first, the threshold the last; floats
     * in their shortest form. */
    assert_non_null(strstr(a.body, "{\"result\":[{\"id\":2,\"version\":0,\"score\":0.99,"
                                   "\"payload\":{\"k\":1}},{\"id\":3,\"version\":0,"
                                   "\"score\":0.98,\"payload\":{\"k\":1}}],\"status\":\"ok\""));
    json_decref(a.json);
    assert_int_equal(request(s.port, "GET", "/collections/a/points/7", "", 0, &a), 0);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.body, "{\"result\":{\"id\":1,\"payload\":{\"k\":1},"
                                   "\"vector\":[0.5,0.5,0.5,0.5]},"));
    json_decref(a.json);
    assert_int_equal(request(s.port, "GET", "/", "", 0, &a), 0);
    assert_int_equal(a.status, 200);
    assert_string_equal(json_string_value(json_object_get(a.json, "version")), "0.1.0");
    json_decref(a.json);
    assert_int_equal(request(s.port, "GET", "/collections/zz", "", 0, &a), 0);
    assert_int_equal(a.status, 404);
    assert_non_null(strstr(a.body, "Collection `zz` doesn't exist!"));
    json_decref(a.json);
    srv_stop(&s);
}

struct bg {
    uint16_t port;
    struct answer a;
};

static void *bg_request(void *arg)
{
    struct bg *b = arg;
    request(b->port, "POST", "/collections/a/points/count", "{}", 2, &b->a);
    return NULL;
}

/* One worker, a queue of one: while the worker is held, a third request is refused with 503;
 * the held ones are answered once released. Bodies over the limit get 413. */
static void test_busy_and_too_big(void **state)
{
    struct srv s;
    srv_start(&s, 1, 1, 1024);
    atomic_store(&calls, 0);
    atomic_store(&hold, true);
    struct bg b[2] = {{.port = s.port}, {.port = s.port}};
    pthread_t th[2];
    pthread_create(&th[0], NULL, bg_request, &b[0]);
    for (int i = 0; i < 2000 && atomic_load(&calls) == 0; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    assert_int_equal(atomic_load(&calls), 1); /* the worker is busy with the first */
    pthread_create(&th[1], NULL, bg_request, &b[1]);
    nanosleep(&(struct timespec){0, 100000000}, NULL); /* the second waits in the queue */
    struct answer a;
    assert_int_equal(request(s.port, "POST", "/collections/a/points/count", "{}", 2, &a), 0);
    assert_int_equal(a.status, 503);
    assert_envelope(&a);
    json_decref(a.json);
    atomic_store(&hold, false);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(b[i].a.status, 200);
        json_decref(b[i].a.json);
    }
    char big[2048];
    memset(big, ' ', sizeof big);
    assert_int_equal(request(s.port, "PUT", "/collections/a/points", big, sizeof big, &a), 0);
    assert_int_equal(a.status, 413);
    assert_envelope(&a);
    json_decref(a.json);
    srv_stop(&s);
}

/* Valid requests of every route, mutated: each answer is a JSON envelope with a 2xx or 4xx. */
static void test_fuzz(void **state)
{
    struct srv s;
    srv_start(&s, 2, 0, 1 << 20);
    static const char *const reqs[][3] = {
        {"PUT", "/collections/a/points",
         "{\"points\":[{\"id\":1,\"vector\":[1,2,3,4],\"payload\":{\"a\":[1,{\"b\":null}]}},"
         "{\"id\":\"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\",\"vector\":[0,0,0,1]}]}"},
        {"PUT", "/collections/a/points",
         "{\"batch\":{\"ids\":[1,2],\"vectors\":[[1,2,3,4],[4,3,2,1]],\"payloads\":[{},null]}}"},
        {"POST", "/collections/a/points",
         "{\"ids\":[1,2],\"with_payload\":{\"include\":[\"k\"]},\"with_vector\":true}"},
        {"POST", "/collections/a/points/delete", "{\"points\":[1,2]}"},
        {"POST", "/collections/a/points/delete",
         "{\"filter\":{\"must\":[{\"key\":\"k\",\"match\":{\"value\":1}}]}}"},
        {"POST", "/collections/a/points/payload", "{\"payload\":{\"x\":1},\"points\":[1]}"},
        {"PUT", "/collections/a/points/payload",
         "{\"payload\":{\"x\":1},\"filter\":{\"must\":[{\"has_id\":[1]}]}}"},
        {"POST", "/collections/a/points/payload/delete", "{\"keys\":[\"x\"],\"points\":[1]}"},
        {"POST", "/collections/a/points/payload/clear", "{\"points\":[1]}"},
        {"POST", "/collections/a/points/batch",
         "{\"operations\":[{\"upsert\":{\"points\":[{\"id\":1,\"vector\":[1,2,3,4]}]}},"
         "{\"set_payload\":{\"payload\":{\"x\":1},\"points\":[1]}},{\"delete_payload\":"
         "{\"keys\":[\"x\"],\"points\":[1]}},{\"delete\":{\"filter\":{\"must\":[{\"has_id\":"
         "[1]}]}}},{\"clear_payload\":{\"points\":[1]}}]}"},
        {"POST", "/collections/a/points/search",
         "{\"vector\":[1,2,3,4],\"limit\":5,\"offset\":1,\"params\":{\"hnsw_ef\":32},"
         "\"score_threshold\":0.5,\"with_payload\":[\"k\"],\"with_vector\":false}"},
        {"POST", "/collections/a/points/search/batch",
         "{\"searches\":[{\"vector\":[1,2,3,4],\"limit\":2},{\"vector\":[1,0,0,0],\"limit\":1}]}"},
        {"POST", "/collections/a/points/query",
         "{\"query\":{\"nearest\":[1,2,3,4]},\"limit\":3,\"with_payload\":true}"},
        {"POST", "/collections/a/points/query", "{\"query\":5,\"limit\":3}"},
        {"POST", "/collections/a/points/query/batch",
         "{\"searches\":[{\"query\":[1,2,3,4]},{\"limit\":2,\"offset\":1}]}"},
        {"POST", "/collections/a/points/scroll",
         "{\"offset\":3,\"limit\":2,\"filter\":{\"must\":[]},\"with_vector\":true}"},
        {"POST", "/collections/a/points/count", "{\"filter\":{\"should\":[]},\"exact\":true}"},
        {"PUT", "/collections/b",
         "{\"vectors\":{\"size\":4,\"distance\":\"Dot\"},\"shard_number\":2,"
         "\"hnsw_config\":{\"m\":8},\"quantization_config\":{\"scalar\":{\"type\":\"int8\"}}}"},
        {"PUT", "/collections/a/index", "{\"field_name\":\"k\",\"field_schema\":\"keyword\"}"},
        {"GET", "/collections/a", ""},
        {"GET", "/collections/a/cluster", ""},
        {"GET", "/cluster", ""},
    };
    size_t nreq = sizeof reqs / sizeof reqs[0];
    uint64_t seed = 42;
    struct answer a;
    for (int iter = 0; iter < 3000; iter++) {
        size_t k = (size_t)(iter % (int)nreq);
        const char *body = reqs[k][2];
        size_t n = strlen(body);
        char m[1024];
        memcpy(m, body, n);
        /* 0: as is; else 1..4 mutations: flip a byte, cut, duplicate a span, insert a token */
        int muts = iter < (int)nreq ? 0 : 1 + (int)((seed >> 33) % 4);
        for (int j = 0; j < muts && n > 0; j++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(seed >> 33) % n;
            static const char *const tok[] = {
                "-1",  "1e400",       "null",   "\"x\"", "[]", "{}", "9223372036854775808",
                "1.5", "\"\\u0000\"", "[[[[[[", "true",  "0"};
            switch ((seed >> 20) % 4) {
            case 0:
                m[at] = (char)(seed >> 8);
                break;
            case 1:
                n = at;
                break;
            case 2:
                if (n + 16 < sizeof m) {
                    memmove(m + at + 16, m + at, n - at);
                    n += 16;
                }
                break;
            default: {
                const char *t = tok[(seed >> 40) % (sizeof tok / sizeof tok[0])];
                size_t tl = strlen(t);
                if (n + tl < sizeof m) {
                    memmove(m + at + tl, m + at, n - at);
                    memcpy(m + at, t, tl);
                    n += tl;
                }
            }
            }
        }
        assert_int_equal(request(s.port, reqs[k][0], reqs[k][1], m, n, &a), 0);
        bool fine = a.status == 200 || a.status == 400 || a.status == 404 || a.status == 422;
        if (!fine || (muts == 0 && a.status != 200))
            fail_msg("%s %s (%d mutations) %.*s: status %d: %s", reqs[k][0], reqs[k][1], muts,
                     (int)n, m, a.status, a.body);
        assert_envelope(&a);
        json_decref(a.json);
    }
    srv_stop(&s);
}

/* The same searches answered on the HTTP thread (at once, or later from another thread), by a
 * worker when the search is not a plain one, and by a worker after a started search gave up:
 * the same answers every way, and each way taken as said. */
static void test_fast_path(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"vector\":[1,2,3,4],\"limit\":3,\"offset\":1,\"with_payload\":true,"
        "\"score_threshold\":0.975}",
        "{\"searches\":[{\"vector\":[1,2,3,4],\"limit\":2},{\"vector\":[4,3,2,1],\"limit\":1,"
        "\"with_vector\":true}]}",
        "{\"query\":[1,2,3,4],\"limit\":2,\"with_payload\":[\"k\"]}",
    };
    static const char *const paths[] = {"/collections/a/points/search",
                                        "/collections/a/points/search/batch",
                                        "/collections/a/points/query"};
    srv_search = fake_search;
    struct srv s;
    srv_start(&s, 2, 0, 1 << 20);
    for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
        char *want = NULL;
        for (int mode = 0; mode < 4; mode++) {
            atomic_store(&search_mode, mode);
            int starts = atomic_load(&search_starts), calls0 = atomic_load(&calls),
                req0 = atomic_load(&requeued_calls);
            struct answer a;
            assert_int_equal(request(s.port, "POST", paths[b], bodies[b], strlen(bodies[b]), &a),
                             0);
            assert_int_equal(a.status, 200);
            char *got = json_dumps(json_object_get(a.json, "result"), JSON_SORT_KEYS);
            assert_non_null(got);
            if (want == NULL)
                want = got;
            else {
                if (strcmp(want, got) != 0)
                    fail_msg("%s mode %d: %s, not %s", paths[b], mode, got, want);
                free(got);
            }
            json_decref(a.json);
            /* Modes 0, 1 and 3 start it the fast way; 2 and 3 have a worker run it through
             * `call`, 3 with requeued set (not the plain way again): one answer each way. */
            assert_int_equal(atomic_load(&search_starts) - starts, mode == 2 ? 0 : 1);
            assert_int_equal(atomic_load(&calls) - calls0, 1);
            assert_int_equal(atomic_load(&requeued_calls) - req0, mode == 3 ? 1 : 0);
        }
        free(want);
    }
    /* A bad body is answered on the HTTP thread, as a worker would. */
    atomic_store(&search_mode, 0);
    struct answer a;
    const char *bad = "{\"vector\":[1,2,3],\"limit\":3}";
    assert_int_equal(request(s.port, "POST", paths[0], bad, strlen(bad), &a), 0);
    assert_int_equal(a.status, 400);
    assert_non_null(strstr(a.body, "expected dim: 4, got 3"));
    json_decref(a.json);
    srv_stop(&s);
    srv_search = NULL;
}

static int teardown_nng(void **state)
{
    nng_fini();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_mapping),    cmocka_unit_test(test_rendering),
        cmocka_unit_test(test_busy_and_too_big), cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_fast_path),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_nng);
}
