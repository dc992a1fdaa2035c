/* test_sdk_unit.c - libdvec without a cluster: ids, argument and client-side checks, and
 * failover, score thresholds and 8 threads sharing a client against fake coordinators (real
 * rpcsrv servers on inproc:// URLs that answer the client API from a script). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "clock.h"
#include "dvec.h"
#include "err.h"
#include "jsonmp.h"
#include "msg.h"
#include "rpcsrv.h"

/* ---- a fake coordinator ------------------------------------------------------------------ */

enum fake_mode {
    FAKE_OK = 0,       /* answers from the script below */
    FAKE_SHUTDOWN = 1, /* answers every request DV_ESHUTDOWN */
    FAKE_SILENT = 2,   /* drops every request: the client times out */
};

/*
 * Answers: points_search: k hits per query, ids query.vec[0] * 1000 + j, scores ascending
 * (0, 0.5, 1, ...) for metric 0 and descending (1, 0.9, ...) otherwise, a payload {"j": j} and
 * the query as the vector when asked; points_upsert: n written; points_count: 7 with a filter,
 * 42 without; coll_info: `metric`, dim 4; cluster: {"fake": URL}; collection "missing":
 * DV_ENOTFOUND; anything else: an empty reply.
 */
struct fake {
    char url[64];
    struct rpcsrv *srv;
    atomic_int mode;
    uint32_t metric;
    atomic_uint calls[MSG_TYPE_COUNT];
    atomic_uint total;
};

static bool is_name(const struct msg_str *s, const char *name)
{
    return s->len == strlen(name) && memcmp(s->p, name, s->len) == 0;
}

static int fake_search(const struct fake *f, const struct msg *req, struct msg *rep, struct buf *pl)
{
    const struct msg_csearch_req *s = &req->u.csearch_req;
    uint32_t total = 0;
    for (uint32_t q = 0; q < s->n_queries; q++)
        total += s->queries[q].k;
    struct msg_hits *res = calloc(s->n_queries ? s->n_queries : 1, sizeof *res);
    struct msg_hit *hits = calloc(total ? total : 1, sizeof *hits);
    size_t *off = calloc(total ? total : 1, sizeof *off);
    if (!res || !hits || !off)
        return DV_ENOMEM;
    uint32_t at = 0;
    char err[DV_ERRMSG_SIZE];
    for (uint32_t q = 0; q < s->n_queries; q++) {
        const struct msg_query *x = &s->queries[q];
        res[q] = (struct msg_hits){hits + at, x->k};
        for (uint32_t j = 0; j < x->k; j++, at++) {
            struct msg_hit *h = &hits[at];
            h->id = pid_num((uint64_t)x->vec[0] * 1000 + j);
            h->score = f->metric == 0 ? 0.5f * (float)j : 1.0f - 0.1f * (float)j;
            if (x->with_vector) {
                h->vec = x->vec;
                h->dim = x->dim;
            }
            if (x->with_payload) {
                char text[32];
                snprintf(text, sizeof text, "{\"j\":%u}", j);
                off[at] = pl->len;
                if (jsonmp_from_text(text, strlen(text), pl, err) != DV_OK)
                    return DV_ENOMEM;
                h->payload.len = (uint32_t)(pl->len - off[at]);
            }
        }
    }
    for (uint32_t i = 0; i < total; i++)
        if (hits[i].payload.len)
            hits[i].payload.p = pl->data + off[i];
    free(off);
    rep->u.csearch_rep = (struct msg_csearch_rep){res, s->n_queries, false, NULL, 0};
    return DV_OK;
}

static int fake_handle(void *arg, const void *in, size_t n, struct buf *out,
                       struct rpcsrv_result *res)
{
    struct fake *f = arg;
    struct msg req, rep;
    memset(&rep, 0, sizeof rep);
    int rc = msg_decode(in, n, &req, res->errmsg);
    if (rc != DV_OK) {
        msg_peek_header(in, n, &res->type, &res->req_id);
        return msg_encode_error(out, res->type, res->req_id, rc, res->errmsg, 0);
    }
    atomic_fetch_add(&f->calls[req.type], 1);
    atomic_fetch_add(&f->total, 1);
    int mode = atomic_load(&f->mode);
    if (mode == FAKE_SILENT) {
        msg_free(&req);
        return DV_EIO; /* no reply */
    }
    if (mode == FAKE_SHUTDOWN || is_name(&req.addr.coll, "missing")) {
        rc = mode == FAKE_SHUTDOWN ? DV_ESHUTDOWN : DV_ENOTFOUND;
        rc = msg_encode_error(out, req.type, req.req_id, rc,
                              rc == DV_ENOTFOUND ? "collection missing does not exist"
                                                 : "coordinator is shutting down; use another",
                              0);
        msg_free(&req);
        return rc;
    }
    rep.type = req.type;
    rep.reply = true;
    rep.req_id = req.req_id;
    struct buf extra = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    rc = DV_OK;
    switch (req.type) {
    case MSG_P_SEARCH:
        rc = fake_search(f, &req, &rep, &extra);
        break;
    case MSG_P_UPSERT:
        for (uint32_t i = 0; i < req.u.upsert_req.n * req.u.upsert_req.dim; i++)
            if (!isfinite(req.u.upsert_req.vecs[i])) /* the client never sends them */
                rc = DV_EPROTO;
        rep.u.write_rep = (struct msg_write_rep){0, req.u.upsert_req.n, NULL, 0};
        break;
    case MSG_P_COUNT:
        rep.u.count_rep.count = req.u.count_req.filter.p ? 7 : 42;
        break;
    case MSG_COLL_INFO:
        rep.u.coll_info_rep.cfg = (struct msg_coll_cfg){.dim = 4, .metric = f->metric};
        break;
    case MSG_CLUSTER: {
        char text[96];
        snprintf(text, sizeof text, "{\"fake\":\"%s\"}", f->url);
        rc = jsonmp_from_text(text, strlen(text), &extra, err);
        rep.u.cluster_rep.status = (struct msg_bytes){extra.data, (uint32_t)extra.len};
        break;
    }
    default:
        break;
    }
    if (rc == DV_OK)
        rc = msg_encode(&rep, out, res->errmsg);
    if (req.type == MSG_P_SEARCH) {
        free(rep.u.csearch_rep.results ? rep.u.csearch_rep.results[0].hits : NULL);
        free(rep.u.csearch_rep.results);
    }
    buf_free(&extra);
    msg_free(&req);
    return rc;
}

static void fake_start(struct fake *f, const char *name, uint32_t metric)
{
    memset(f, 0, sizeof *f);
    snprintf(f->url, sizeof f->url, "inproc://sdk-unit-%s", name);
    f->metric = metric;
    struct rpcsrv_opts o = {.listen = f->url,
                            .workers = 4,
                            .contexts = 16,
                            .recv_max = PROTO_MAX_MSG,
                            .handle = fake_handle,
                            .handle_arg = f};
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(rpcsrv_new(&o, &f->srv, err), DV_OK);
    assert_int_equal(rpcsrv_listen(f->srv, err), DV_OK);
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->mode, FAKE_SHUTDOWN);
    rpcsrv_drain(f->srv, 2000);
    rpcsrv_stop(f->srv);
    f->srv = NULL;
}

static dvec_client *connect_ok(const char *urls, uint32_t timeout_ms)
{
    dvec_options o = {.timeout_ms = timeout_ms};
    dvec_client *c = NULL;
    dvec_error e;
    int rc = dvec_connect(urls, &o, &c, &e);
    if (rc != DVEC_OK)
        print_error("connect %s: %s\n", urls, e.message);
    assert_int_equal(rc, DVEC_OK);
    assert_int_equal(e.code, DVEC_OK);
    return c;
}

/* rc must be `code` and the message must hold each of the NULL-terminated words. */
static void expect_err(int rc, const dvec_error *e, int code, ...)
{
    printf("# %s \"%s\"\n", dvec_code_name(rc), e->message);
    if (rc != code)
        print_error("got %s \"%s\", want %s\n", dvec_code_name(rc), e->message,
                    dvec_code_name(code));
    assert_int_equal(rc, code);
    assert_int_equal(e->code, code);
    va_list ap;
    va_start(ap, code);
    for (const char *w; (w = va_arg(ap, const char *)) != NULL;) {
        if (strstr(e->message, w) == NULL)
            print_error("the message \"%s\" does not say \"%s\"\n", e->message, w);
        assert_non_null(strstr(e->message, w));
    }
    va_end(ap);
}

/* ---- ids and arguments ------------------------------------------------------------------- */

static void test_ids(void **state)
{
    (void)state;
    dvec_id id;
    char buf[DVEC_ID_TEXT_MAX];
    assert_int_equal(dvec_id_parse("18446744073709551615", &id), DVEC_OK);
    assert_false(id.is_uuid);
    assert_true(id.num == UINT64_MAX);
    dvec_id_format(&id, buf);
    assert_string_equal(buf, "18446744073709551615");
    assert_int_equal(dvec_id_parse("550E8400-e29b-41d4-a716-446655440000", &id), DVEC_OK);
    assert_true(id.is_uuid);
    assert_int_equal(id.uuid[0], 0x55);
    assert_int_equal(id.uuid[15], 0x00);
    assert_int_equal(id.uuid[14], 0x00);
    assert_int_equal(id.uuid[13], 0x44);
    dvec_id_format(&id, buf);
    assert_string_equal(buf, "550e8400-e29b-41d4-a716-446655440000");
    const char *bad[] = {"",
                         "-1",
                         "+1",
                         "18446744073709551616",
                         "12a",
                         "550e8400-e29b-41d4",
                         "550e8400-e29b-41d4-a716-44665544000g"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(dvec_id_parse(bad[i], &id), DVEC_EINVAL);
    assert_int_equal(dvec_id_parse(NULL, &id), DVEC_EINVAL);
    id = dvec_id_num(7);
    dvec_id_format(&id, buf);
    assert_string_equal(buf, "7");
    assert_string_equal(dvec_code_name(DVEC_ENOTFOUND), "not_found");
    assert_string_equal(dvec_code_name(DVEC_EDIM), "dimension");
    assert_string_equal(dvec_code_name(12345), "unknown");
}

static void test_connect_arguments(void **state)
{
    (void)state;
    dvec_client *c = (dvec_client *)1;
    dvec_error e;
    expect_err(dvec_connect("", NULL, &c, &e), &e, DVEC_EINVAL, "no coordinator URL", NULL);
    assert_null(c);
    expect_err(dvec_connect(" , ,", NULL, &c, &e), &e, DVEC_EINVAL, "no coordinator URL", NULL);
    expect_err(dvec_connect(NULL, NULL, &c, &e), &e, DVEC_EINVAL, NULL);
    expect_err(dvec_connect("inproc://a,bogus://x", NULL, &c, &e), &e, DVEC_EINVAL, "bogus://x",
               "2 of 2", NULL);
    assert_int_equal(dvec_connect("inproc://a", NULL, NULL, &e), DVEC_EINVAL);
    /* Spaces around URLs are fine; nothing is dialed synchronously. */
    assert_int_equal(dvec_connect(" inproc://nobody-1 , inproc://nobody-2 ", NULL, &c, NULL),
                     DVEC_OK);
    dvec_close(c);
    dvec_close(NULL);
}

/* Checks made before anything is sent: they fail at once, with nobody listening. */
static void test_client_side_checks(void **state)
{
    (void)state;
    dvec_client *c = connect_ok("inproc://nobody-3", 0);
    dvec_error e;
    float v[4] = {1, 2, 3, 4};
    dvec_point p = {dvec_id_num(17), v, "{\"a\": [1, 2,, 3]}"};
    uint64_t t0 = clock_mono_ms();

    /* Payloads: JSON that does not parse (with its position), or that is not an object. */
    expect_err(dvec_upsert(c, "docs", &p, 1, 4, &e), &e, DVEC_EPARSE, "collection docs",
               "point 0 (id 17)", "line 1 column 13", NULL);
    p.payload_json = "[1, 2]";
    expect_err(dvec_upsert(c, "docs", &p, 1, 4, &e), &e, DVEC_EPARSE, "point 0 (id 17)",
               "an object was expected", NULL);
    p.payload_json = NULL;
    /* NaN and infinity, naming the point and the dimension. */
    dvec_point two[2] = {{dvec_id_num(1), v, NULL}, {dvec_id_num(2), v, NULL}};
    float bad[4] = {0, 0, NAN, 0};
    two[1].vector = bad;
    expect_err(dvec_upsert(c, "docs", two, 2, 4, &e), &e, DVEC_ENAN, "point 1 (id 2)", "NaN",
               "dimension 2", NULL);
    bad[2] = INFINITY;
    expect_err(dvec_upsert(c, "docs", two, 2, 4, &e), &e, DVEC_ENAN, "infinity", NULL);
    expect_err(dvec_upsert(c, "docs", &p, 1, 0, &e), &e, DVEC_EDIM, "dimension 0", NULL);
    expect_err(dvec_upsert(c, "docs", &p, 65537, 4, &e), &e, DVEC_ETOOBIG, "65536", NULL);
    expect_err(dvec_upsert(c, "docs", NULL, 3, 4, &e), &e, DVEC_EINVAL, NULL);
    expect_err(dvec_upsert(c, "", &p, 1, 4, &e), &e, DVEC_EINVAL, "collection name", NULL);
    expect_err(dvec_upsert(c, NULL, &p, 1, 4, &e), &e, DVEC_EINVAL, "collection name", NULL);
    /* 64 MiB of vectors does not fit a message. */
    expect_err(dvec_upsert(c, "docs", &p, 65536, 257, &e), &e, DVEC_ETOOBIG, "message limit", NULL);

    /* Filters and searches. */
    dvec_search_params sp;
    dvec_search_params_init(&sp);
    assert_int_equal(sp.k, 10);
    sp.filter_json = "{\"must\": [}";
    dvec_records r = {(dvec_record *)1, 5};
    bool partial = true;
    expect_err(dvec_search(c, "docs", v, 4, &sp, &r, &partial, &e), &e, DVEC_EPARSE,
               "collection docs", "filter", "line 1 column", NULL);
    assert_null(r.items);
    assert_int_equal(r.n, 0);
    assert_false(partial);
    sp.filter_json = "\"red\"";
    expect_err(dvec_search(c, "docs", v, 4, &sp, &r, NULL, &e), &e, DVEC_EPARSE, "got a string",
               NULL);
    sp.filter_json = NULL;
    sp.k = 100001;
    expect_err(dvec_search(c, "docs", v, 4, &sp, &r, NULL, &e), &e, DVEC_ERANGE, "k 100001", NULL);
    sp.k = 10;
    expect_err(dvec_search(c, "docs", bad, 4, &sp, &r, NULL, &e), &e, DVEC_ENAN, "query 0", NULL);
    expect_err(dvec_search(c, "docs", v, 0, &sp, &r, NULL, &e), &e, DVEC_EDIM, NULL);
    uint64_t cnt = 99;
    expect_err(dvec_count(c, "docs", "{", &cnt, &e), &e, DVEC_EPARSE, "count", "filter", NULL);
    assert_int_equal(cnt, 0);

    /* Scroll limits. */
    dvec_scroll_params sc = {.limit = 0};
    expect_err(dvec_scroll(c, "docs", &sc, &r, NULL, NULL, &e), &e, DVEC_ERANGE, "limit 0", NULL);
    sc.limit = 10001;
    expect_err(dvec_scroll(c, "docs", &sc, &r, NULL, NULL, &e), &e, DVEC_ERANGE, "limit 10001",
               NULL);

    /* Payload operations. */
    dvec_id ids[2] = {dvec_id_num(1), dvec_id_num(2)};
    expect_err(dvec_set_payload(c, "docs", DVEC_PAYLOAD_SET, ids, 2, "[\"a\"]", &e), &e,
               DVEC_EPARSE, "an object was expected", NULL);
    expect_err(dvec_set_payload(c, "docs", DVEC_PAYLOAD_DELETE_KEYS, ids, 2, "[\"a\", 3]", &e), &e,
               DVEC_EPARSE, "key 1", NULL);
    expect_err(dvec_set_payload(c, "docs", DVEC_PAYLOAD_DELETE_KEYS, ids, 2, "{}", &e), &e,
               DVEC_EPARSE, "array of keys", NULL);
    expect_err(dvec_set_payload(c, "docs", DVEC_PAYLOAD_OVERWRITE, ids, 2, NULL, &e), &e,
               DVEC_EINVAL, "no JSON", NULL);
    expect_err(dvec_set_payload(c, "docs", (dvec_payload_op)9, ids, 2, "{}", &e), &e, DVEC_EINVAL,
               "unknown operation 9", NULL);
    expect_err(dvec_payload_index_create(c, "docs", "color", "text", &e), &e, DVEC_EINVAL,
               "kind \"text\"", NULL);

    /* Collections. */
    dvec_collection_config cfg;
    dvec_collection_config_init(&cfg, 8);
    assert_int_equal(cfg.dim, 8);
    assert_int_equal(cfg.metric, DVEC_EUCLID);
    cfg.metric = (dvec_metric)7;
    expect_err(dvec_collection_create(c, "docs", &cfg, &e), &e, DVEC_EINVAL, "unknown metric",
               NULL);
    char long_name[200];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    expect_err(dvec_collection_drop(c, long_name, &e), &e, DVEC_EINVAL, "128 bytes", NULL);

    assert_true(clock_mono_ms() - t0 < 500); /* nothing waited for a connection */
    dvec_close(c);
}

/* ---- against fake coordinators ----------------------------------------------------------- */

static void test_calls_and_results(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, "calls", 0);
    dvec_client *c = connect_ok(f.url, 0);
    dvec_error e;

    float q[3][4] = {{5, 0, 0, 0}, {6, 0, 0, 0}, {7, 0, 0, 0}};
    dvec_search_params sp;
    dvec_search_params_init(&sp);
    sp.k = 4;
    sp.with_payload = true;
    sp.with_vector = true;
    dvec_records r[3];
    bool partial = true;
    assert_int_equal(dvec_search_batch(c, "docs", &q[0][0], 3, 4, &sp, r, &partial, &e), DVEC_OK);
    assert_false(partial);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].n, 4);
        for (uint32_t j = 0; j < 4; j++) {
            const dvec_record *x = &r[i].items[j];
            assert_false(x->id.is_uuid);
            assert_true(x->id.num == (uint64_t)(5 + i) * 1000 + j);
            assert_float_equal(x->score, 0.5 * j, 1e-6);
            assert_int_equal(x->dim, 4);
            assert_memory_equal(x->vector, q[i], sizeof q[i]);
            char want[16];
            snprintf(want, sizeof want, "{\"j\":%u}", j);
            assert_string_equal(x->payload_json, want);
        }
        dvec_records_free(&r[i]);
        assert_null(r[i].items);
    }

    uint64_t n = 0;
    assert_int_equal(dvec_count(c, "docs", NULL, &n, &e), DVEC_OK);
    assert_int_equal(n, 42);
    assert_int_equal(dvec_count(c, "docs", "{\"must\": []}", &n, &e), DVEC_OK);
    assert_int_equal(n, 7);

    /* An error the coordinator answers is returned as it is, naming the collection. */
    expect_err(dvec_count(c, "missing", NULL, &n, &e), &e, DVEC_ENOTFOUND,
               "collection missing does not exist", NULL);

    char *st = NULL;
    assert_int_equal(dvec_cluster_status(c, &st, &e), DVEC_OK);
    json_t *j = json_loads(st, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "fake")), f.url);
    json_decref(j);
    free(st);

    dvec_close(c);
    fake_stop(&f);
}

/* Fails over when a coordinator refuses (shutting down), does not answer, or is not there;
 * never for an answered error; the one that answered becomes current. */
static void test_failover(void **state)
{
    (void)state;
    struct fake a, b;
    fake_start(&a, "fo-a", 0);
    fake_start(&b, "fo-b", 0);
    char urls[256];
    snprintf(urls, sizeof urls, "%s,%s", a.url, b.url);
    dvec_client *c = connect_ok(urls, 300);
    dvec_error e;
    uint64_t n;

    assert_int_equal(dvec_count(c, "docs", NULL, &n, &e), DVEC_OK);
    assert_int_equal(atomic_load(&a.total), 1);
    assert_int_equal(atomic_load(&b.total), 0);

    /* Answered errors: no failover. */
    assert_int_equal(dvec_count(c, "missing", NULL, &n, &e), DVEC_ENOTFOUND);
    assert_int_equal(atomic_load(&a.total), 2);
    assert_int_equal(atomic_load(&b.total), 0);

    /* a shuts down: b answers, and stays current. */
    atomic_store(&a.mode, FAKE_SHUTDOWN);
    assert_int_equal(dvec_count(c, "docs", NULL, &n, &e), DVEC_OK);
    assert_int_equal(n, 42);
    assert_int_equal(atomic_load(&a.total), 3);
    assert_int_equal(atomic_load(&b.total), 1);
    atomic_store(&a.mode, FAKE_OK);
    assert_int_equal(dvec_count(c, "docs", NULL, &n, &e), DVEC_OK);
    assert_int_equal(atomic_load(&a.total), 3);
    assert_int_equal(atomic_load(&b.total), 2);

    /* b goes silent: after the call timeout (300 ms) a answers. */
    atomic_store(&b.mode, FAKE_SILENT);
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(dvec_count(c, "docs", NULL, &n, &e), DVEC_OK);
    uint64_t dt = clock_mono_ms() - t0;
    printf("# silent coordinator: the next answered after %llu ms\n", (unsigned long long)dt);
    assert_true(dt >= 280 && dt < 2000);
    assert_int_equal(atomic_load(&a.total), 4);

    /* Both refuse: every one tried twice (the default max_attempts), then the last error. */
    atomic_store(&a.mode, FAKE_SHUTDOWN);
    atomic_store(&b.mode, FAKE_SHUTDOWN);
    unsigned ta = atomic_load(&a.total), tb = atomic_load(&b.total);
    expect_err(dvec_count(c, "docs", NULL, &n, &e), &e, DVEC_ESHUTDOWN, "collection docs",
               "no coordinator answered (4 attempts over 2 URLs)", b.url, "shutting down", NULL);
    assert_int_equal(atomic_load(&a.total) - ta, 2);
    assert_int_equal(atomic_load(&b.total) - tb, 2);
    dvec_close(c);

    /* max_attempts 1: no failover at all. */
    dvec_options o = {.max_attempts = 1};
    assert_int_equal(dvec_connect(urls, &o, &c, &e), DVEC_OK);
    atomic_store(&b.mode, FAKE_OK);
    expect_err(dvec_count(c, "docs", NULL, &n, &e), &e, DVEC_ESHUTDOWN, NULL);
    dvec_close(c);

    /* A coordinator that is not there: the next one answers after connect_timeout. */
    snprintf(urls, sizeof urls, "inproc://sdk-unit-nobody,%s", b.url);
    o = (dvec_options){.connect_timeout_ms = 200};
    assert_int_equal(dvec_connect(urls, &o, &c, &e), DVEC_OK);
    t0 = clock_mono_ms();
    assert_int_equal(dvec_count(c, "docs", NULL, &n, &e), DVEC_OK);
    dt = clock_mono_ms() - t0;
    printf("# first coordinator not there: answered after %llu ms\n", (unsigned long long)dt);
    assert_true(dt >= 190 && dt < 1500);
    t0 = clock_mono_ms();
    assert_int_equal(dvec_count(c, "docs", NULL, &n, &e), DVEC_OK);
    assert_true(clock_mono_ms() - t0 < 150); /* b is current now */
    dvec_close(c);

    /* Nobody there at all: DVEC_EIO after one connect_timeout per coordinator. */
    assert_int_equal(dvec_connect("inproc://sdk-unit-nobody", NULL, &c, &e), DVEC_OK);
    t0 = clock_mono_ms();
    expect_err(dvec_count(c, "docs", NULL, &n, &e), &e, DVEC_EIO, "collection docs",
               "inproc://sdk-unit-nobody", "not connected", NULL);
    dt = clock_mono_ms() - t0;
    printf("# the only coordinator not there: failed after %llu ms\n", (unsigned long long)dt);
    assert_true(dt >= 950 && dt < 1500);
    dvec_close(c);

    fake_stop(&a);
    fake_stop(&b);
}

/* The SDK drops results beyond the threshold, by the metric's direction: from the order of the
 * hits when it shows, else from the collection's metric (asked once per collection). */
static void test_score_threshold(void **state)
{
    (void)state;
    struct fake l2, cos;
    fake_start(&l2, "thr-l2", DVEC_EUCLID);
    fake_start(&cos, "thr-cos", DVEC_COSINE);
    dvec_error e;
    float q[4] = {3, 0, 0, 0};
    dvec_search_params sp;
    dvec_search_params_init(&sp);
    dvec_records r;

    /* Euclid: scores 0, 0.5, 1, ...; <= 1.2 keeps 3. */
    dvec_client *c = connect_ok(l2.url, 0);
    sp.k = 10;
    sp.has_score_threshold = true;
    sp.score_threshold = 1.2f;
    assert_int_equal(dvec_search(c, "docs", q, 4, &sp, &r, NULL, &e), DVEC_OK);
    assert_int_equal(r.n, 3);
    assert_true(r.items[2].id.num == 3002);
    dvec_records_free(&r);
    assert_int_equal(atomic_load(&l2.calls[MSG_COLL_INFO]), 0); /* the order told */
    /* One hit: the order does not tell; the metric is asked once. */
    sp.k = 1;
    sp.score_threshold = -0.1f;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(dvec_search(c, "docs", q, 4, &sp, &r, NULL, &e), DVEC_OK);
        assert_int_equal(r.n, 0);
        assert_null(r.items);
    }
    sp.score_threshold = 0.0f;
    assert_int_equal(dvec_search(c, "docs", q, 4, &sp, &r, NULL, &e), DVEC_OK);
    assert_int_equal(r.n, 1);
    dvec_records_free(&r);
    assert_int_equal(atomic_load(&l2.calls[MSG_COLL_INFO]), 1);
    /* A collection created through the client is asked about again. */
    dvec_collection_config cfg;
    dvec_collection_config_init(&cfg, 4);
    assert_int_equal(dvec_collection_create(c, "docs", &cfg, &e), DVEC_OK);
    assert_int_equal(dvec_search(c, "docs", q, 4, &sp, &r, NULL, &e), DVEC_OK);
    dvec_records_free(&r);
    assert_int_equal(atomic_load(&l2.calls[MSG_COLL_INFO]), 2);
    /* The metric of a collection that does not exist: the search's error. */
    expect_err(dvec_search(c, "missing", q, 4, &sp, &r, NULL, &e), &e, DVEC_ENOTFOUND, "missing",
               NULL);
    dvec_close(c);

    /* Cosine: scores 1, 0.9, 0.8, ...; >= 0.75 keeps 3; with one hit, larger is closer. */
    c = connect_ok(cos.url, 0);
    sp.k = 10;
    sp.score_threshold = 0.75f;
    assert_int_equal(dvec_search(c, "docs", q, 4, &sp, &r, NULL, &e), DVEC_OK);
    assert_int_equal(r.n, 3);
    dvec_records_free(&r);
    sp.k = 1;
    sp.score_threshold = 0.99f;
    assert_int_equal(dvec_search(c, "docs", q, 4, &sp, &r, NULL, &e), DVEC_OK);
    assert_int_equal(r.n, 1);
    dvec_records_free(&r);
    sp.score_threshold = 1.01f;
    assert_int_equal(dvec_search(c, "docs", q, 4, &sp, &r, NULL, &e), DVEC_OK);
    assert_int_equal(r.n, 0);
    assert_int_equal(atomic_load(&cos.calls[MSG_COLL_INFO]), 1);
    dvec_close(c);
    fake_stop(&l2);
    fake_stop(&cos);
}

/* ---- threads ----------------------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS  150

struct shared {
    dvec_client *c;
    atomic_uint failed, wrong, done;
    atomic_bool stop;
    char first_error[DVEC_ERRMSG_SIZE];
    pthread_mutex_t mu;
};

struct worker {
    struct shared *s;
    int t;
};

/* Each thread's searches carry its own numbers, so a reply meant for another is seen. No
 * cmocka calls here. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *s = w->s;
    dvec_error e;
    for (int i = 0; i < ROUNDS; i++) {
        float q[2][4] = {{(float)(w->t * 1000 + i), 1, 2, 3}, {(float)(w->t * 1000 + i + 1), 0}};
        dvec_search_params sp;
        dvec_search_params_init(&sp);
        sp.k = 1 + (uint32_t)(i % 5);
        sp.with_payload = i % 2 == 0;
        if (i % 7 == 0) { /* thresholds with one hit: the shared metric memory */
            sp.k = 1;
            sp.has_score_threshold = true;
            sp.score_threshold = 10.0f;
        }
        dvec_records r[2];
        const char *coll = i % 3 == 0 ? "other" : "docs";
        int rc = dvec_search_batch(w->s->c, coll, &q[0][0], 2, 4, &sp, r, NULL, &e);
        if (rc == DVEC_OK) {
            for (int k = 0; k < 2; k++) {
                bool ok = r[k].n == sp.k;
                for (size_t j = 0; ok && j < r[k].n; j++)
                    ok = r[k].items[j].id.num == (uint64_t)q[k][0] * 1000 + j &&
                         (r[k].items[j].payload_json != NULL) == sp.with_payload;
                if (!ok)
                    atomic_fetch_add(&s->wrong, 1);
                dvec_records_free(&r[k]);
            }
        }
        dvec_point pts[10];
        float v[4] = {1, 2, 3, 4};
        for (int k = 0; k < 10; k++)
            pts[k] = (dvec_point){dvec_id_num((uint64_t)(w->t * 100000 + i * 10 + k)), v,
                                  k % 2 ? "{\"t\": 1}" : NULL};
        if (rc == DVEC_OK)
            rc = dvec_upsert(w->s->c, coll, pts, 10, 4, &e);
        if (rc != DVEC_OK) {
            pthread_mutex_lock(&s->mu);
            if (s->first_error[0] == '\0')
                snprintf(s->first_error, sizeof s->first_error, "%s", e.message);
            pthread_mutex_unlock(&s->mu);
            atomic_fetch_add(&s->failed, 1);
        }
        atomic_fetch_add(&s->done, 1);
    }
    return NULL;
}

/* 8 threads share one client while its two coordinators take turns shutting down and coming
 * back: every call succeeds (through the other) and every thread gets its own results. */
static void test_threads(void **state)
{
    (void)state;
    struct fake a, b;
    fake_start(&a, "thr-a", DVEC_EUCLID);
    fake_start(&b, "thr-b", DVEC_EUCLID);
    char urls[256];
    snprintf(urls, sizeof urls, "%s,%s", a.url, b.url);
    dvec_options o = {.timeout_ms = 5000, .max_attempts = 8};
    struct shared s = {0};
    assert_int_equal(dvec_connect(urls, &o, &s.c, NULL), DVEC_OK);
    pthread_mutex_init(&s.mu, NULL);
    struct worker w[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (struct worker){&s, t};
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    /* a down, both up, b down, both up, ...: never both down at once, and whichever is
     * current keeps going down. */
    int flips = 0;
    while (atomic_load(&s.done) < THREADS * ROUNDS && flips < 10000) {
        atomic_store(&a.mode, flips % 4 == 0 ? FAKE_SHUTDOWN : FAKE_OK);
        atomic_store(&b.mode, flips % 4 == 2 ? FAKE_SHUTDOWN : FAKE_OK);
        flips++;
        clock_sleep_ms(2);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    printf("# %d threads x %d rounds: %u failed, %u wrong; %d flips; coordinator a answered "
           "%u requests, b %u\n",
           THREADS, ROUNDS, atomic_load(&s.failed), atomic_load(&s.wrong), flips,
           atomic_load(&a.total), atomic_load(&b.total));
    if (s.first_error[0])
        print_error("first error: %s\n", s.first_error);
    assert_int_equal(atomic_load(&s.failed), 0);
    assert_int_equal(atomic_load(&s.wrong), 0);
    assert_int_equal(atomic_load(&s.done), THREADS * ROUNDS);
    /* The metric memory asked each collection once, or a few times when threads raced. */
    unsigned infos = atomic_load(&a.calls[MSG_COLL_INFO]) + atomic_load(&b.calls[MSG_COLL_INFO]);
    assert_true(infos >= 2 && infos <= 2 * THREADS);
    dvec_close(s.c);
    pthread_mutex_destroy(&s.mu);
    fake_stop(&a);
    fake_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_connect_arguments),
        cmocka_unit_test(test_client_side_checks),
        cmocka_unit_test(test_calls_and_results),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_score_threshold),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
