/* rest.c - the REST API's plumbing: the request queue and its workers, routing, the
 * {"result", "status", "time"} envelope, the native call and its error mapping, metrics. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "rest_int.h"

#define JSON_CT "application/json"

static const char *const op_names[] = {
#define REST_OP_NAME(id, name) name,
    REST_OPS(REST_OP_NAME)
#undef REST_OP_NAME
};

/* ---- helpers for the handlers ------------------------------------------------------------ */

int rx_fail(struct rx *x, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof x->err, fmt, ap);
    va_end(ap);
    return status;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s in place ('+' too when `plus`); false when the result holds a NUL. */
static bool pct_decode(char *s, bool plus)
{
    char *d = s;
    for (; *s; s++) {
        if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            char c = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            if (c == '\0')
                return false;
            *d++ = c;
            s += 2;
        } else if (*s == '+' && plus) {
            *d++ = ' ';
        } else {
            *d++ = *s;
        }
    }
    *d = '\0';
    return true;
}

bool rx_param(const struct rx *x, const char *key, char *out, size_t cap)
{
    if (x->query == NULL || cap == 0)
        return false;
    size_t klen = strlen(key);
    const char *p = x->query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t kn = eq ? (size_t)(eq - p) : n;
        if (kn == klen && memcmp(p, key, klen) == 0) {
            size_t vn = eq ? n - kn - 1 : 0;
            if (vn >= cap)
                vn = cap - 1;
            memcpy(out, eq ? eq + 1 : "", vn);
            out[vn] = '\0';
            return pct_decode(out, true);
        }
        p += n;
        if (*p == '&')
            p++;
    }
    return false;
}

int rx_oom(struct rx *x)
{
    return rx_fail(x, 500, "Service internal error: out of memory");
}

struct msg_bytes rx_bytes(const struct buf *b, size_t off, size_t len)
{
    return (struct msg_bytes){len ? b->data + off : NULL, (uint32_t)len};
}

bool rx_cfg(struct rx *x, const char *coll, struct msg_coll_cfg *cfg)
{
    return x->r->o.meta != NULL && x->r->o.meta(x->r->o.meta_arg, coll, cfg);
}

bool rx_meta(struct rx *x, const char *coll, uint32_t *dim, uint32_t *metric)
{
    struct msg_coll_cfg cfg;
    if (!rx_cfg(x, coll, &cfg))
        return false;
    if (dim)
        *dim = cfg.dim;
    if (metric)
        *metric = cfg.metric;
    return true;
}

uint64_t rx_op_id(struct rx *x)
{
    return atomic_fetch_add(&x->r->op_seq, 1);
}

/* HTTP status of a native error code (Qdrant's mapping of the same kinds of error). */
static int status_of(int code)
{
    switch (code) {
    case DV_ENOTFOUND:
        return 404;
    case DV_EEXIST:
        return 409;
    case DV_EINVAL:
    case DV_EDIM:
    case DV_ENAN:
    case DV_ERANGE:
    case DV_ETYPE:
    case DV_EUNKNOWN_KEY:
    case DV_EPARSE:
    case DV_EUNSUPPORTED:
    case DV_EDELETED:
    case DV_EPROTO:
        return 400;
    case DV_ETOOBIG:
        return 413;
    case DV_EFULL:
        return 507;
    case DV_EBUSY:
    case DV_ETIMEDOUT:
    case DV_ESTALE:
    case DV_EIO:
    case DV_ESHUTDOWN:
        return 503;
    default:
        return 500;
    }
}

/* Qdrant's prefix of an error message of that status ("Not found: ..."). */
static const char *prefix_of(int status)
{
    switch (status) {
    case 404:
        return "Not found: ";
    case 400:
    case 409:
    case 413:
        return "Wrong input: ";
    case 503:
        return "Service unavailable: ";
    case 507:
        return "Insufficient storage: ";
    default:
        return "Service internal error: ";
    }
}

int rx_call(struct rx *x, struct msg *req, struct msg_reply *rep)
{
    memset(rep, 0, sizeof *rep);
    req->reply = false;
    req->req_id = atomic_fetch_add(&x->r->req_seq, 1);
    if (msg_type_consistent_read(req->type))
        req->read_consistency = x->consistency;
    struct rpcsrv_result res;
    memset(&res, 0, sizeof res);
    res.requeued = x->requeued; /* a search that failed the plain way: not that way again */
    int rc = x->r->o.call(x->r->o.call_arg, req, rep, &res);
    if (rc != DV_OK) {
        msg_reply_free(rep);
        return rx_fail(x, 500, "Service internal error: no reply (%s)", dv_strerror(rc));
    }
    int code = rep->m.err.code;
    if (code == DV_OK)
        return 200;
    int st = status_of(code);
    /* Qdrant's words for the commonest error, which clients sometimes look for. */
    if (code == DV_ENOTFOUND && msg_type_collection(req->type) && req->type != MSG_COLL_CREATE) {
        char name[160];
        snprintf(name, sizeof name, "%.*s", (int)req->addr.coll.len, req->addr.coll.p);
        if (!rx_meta(x, name, NULL, NULL)) {
            msg_reply_free(rep);
            return rx_fail(x, 404, "Not found: Collection `%s` doesn't exist!", name);
        }
    }
    if (code == DV_EEXIST && req->type == MSG_COLL_CREATE) {
        msg_reply_free(rep);
        return rx_fail(x, 409, "Wrong input: Collection `%.*s` already exists!",
                       (int)req->addr.coll.len, req->addr.coll.p);
    }
    rx_fail(x, st, "%s%.*s", prefix_of(st), (int)rep->m.err.text.len, rep->m.err.text.p);
    msg_reply_free(rep);
    return st;
}

/* ---- routing ----------------------------------------------------------------------------- */

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Splits the request target into decoded path segments and the query string. */
static int parse_target(struct rx *x, const char *uri)
{
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    x->path = malloc(plen + 1);
    x->query = strdup(q ? q + 1 : "");
    if (x->path == NULL || x->query == NULL)
        return rx_fail(x, 500, "Service internal error: out of memory");
    memcpy(x->path, uri, plen);
    x->path[plen] = '\0';
    char *save = NULL;
    for (char *s = strtok_r(x->path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (x->nseg == REST_MAX_SEGS)
            return rx_fail(x, 404, "Not found: no such path");
        if (!pct_decode(s, false))
            return rx_fail(x, 400, "Wrong input: the path holds a NUL byte");
        x->seg[x->nseg++] = s;
    }
    return 200;
}

/* Reads ?timeout= (seconds, a search's deadline) and checks ?wait=. */
static int parse_params(struct rx *x)
{
    char v[64];
    if (rx_param(x, "wait", v, sizeof v) && !is(v, "true") && !is(v, "false") && v[0] != '\0')
        return rx_fail(x, 400,
                       "Query deserialize error: wait: provided string was not `true` or `false`");
    if (rx_param(x, "timeout", v, sizeof v)) {
        char *end;
        unsigned long long t = strtoull(v, &end, 10);
        if (v[0] == '\0' || *end != '\0' || v[0] == '-')
            return rx_fail(x, 400,
                           "Query deserialize error: timeout: invalid digit found in string");
        x->timeout_ms = t > 3600 ? 3600000u : (uint32_t)t * 1000u;
    }
    /* Qdrant's read consistency: a number of replicas, majority, quorum or all */
    if (rx_param(x, "consistency", v, sizeof v)) {
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        if (is(v, "majority"))
            x->consistency = MSG_READ_MAJORITY;
        else if (is(v, "quorum"))
            x->consistency = MSG_READ_QUORUM;
        else if (is(v, "all"))
            x->consistency = MSG_READ_ALL;
        else if (v[0] >= '1' && v[0] <= '9' && *end == '\0' && n <= PROTO_MAX_RF)
            x->consistency = (uint32_t)n;
        else
            return rx_fail(x, 400,
                           "Query deserialize error: consistency: `%.32s` is not a number of "
                           "replicas (1 to %d), `majority`, `quorum` or `all`",
                           v, PROTO_MAX_RF);
    }
    return 200;
}

/* Which operation a method and path are; 404 or 405 through rx_fail otherwise. */
static int route(struct rx *x)
{
    const char *m = x->method;
    bool get = is(m, "GET") || is(m, "HEAD"), put = is(m, "PUT"), post = is(m, "POST"),
         del = is(m, "DELETE"), patch = is(m, "PATCH");
    char **s = x->seg;
    int n = x->nseg;
    int op = -1;
    bool known = true;
    if (n == 0) {
        op = get ? REST_OP_ROOT : -1;
    } else if (n == 1 && is(s[0], "cluster")) {
        op = get ? REST_OP_CLUSTER : -1;
    } else if (n == 1 && is(s[0], "aliases")) {
        op = get ? REST_OP_ALIASES : -1;
    } else if (n == 1 && is(s[0], "telemetry")) {
        op = get ? REST_OP_TELEMETRY : -1;
    } else if (n == 1 && (is(s[0], "metrics") || is(s[0], "healthz") || is(s[0], "readyz") ||
                          is(s[0], "livez"))) {
        op = -1; /* httpd serves their GET; other methods land here */
    } else if (!is(s[0], "collections")) {
        known = false;
    } else if (n == 1) {
        op = get ? REST_OP_COLL_LIST : -1;
    } else if (n == 2 && is(s[1], "aliases") && post) {
        op = REST_OP_ALIASES; /* updating aliases */
    } else if (n == 2) {
        op = get     ? REST_OP_COLL_INFO
             : put   ? REST_OP_COLL_CREATE
             : del   ? REST_OP_COLL_DROP
             : patch ? REST_OP_COLL_UPDATE
                     : -1;
    } else if (n == 3) {
        if (is(s[2], "exists"))
            op = get ? REST_OP_COLL_EXISTS : -1;
        else if (is(s[2], "aliases"))
            op = get ? REST_OP_ALIASES : -1;
        else if (is(s[2], "cluster"))
            op = get ? REST_OP_COLL_CLUSTER : -1;
        else if (is(s[2], "index"))
            op = put ? REST_OP_INDEX_CREATE : -1;
        else if (is(s[2], "facet"))
            op = post ? REST_OP_FACET : -1;
        else if (is(s[2], "points"))
            op = put ? REST_OP_UPSERT : post ? REST_OP_GET : -1;
        else
            known = false;
    } else if (n == 4 && is(s[2], "index")) {
        op = del ? REST_OP_INDEX_DROP : -1;
    } else if (n == 4 && is(s[2], "points")) {
        const char *t = s[3];
        if (is(t, "delete"))
            op = post ? REST_OP_DELETE : -1;
        else if (is(t, "payload"))
            op = post ? REST_OP_SET_PAYLOAD : put ? REST_OP_OVERWRITE_PAYLOAD : -1;
        else if (is(t, "search"))
            op = post ? REST_OP_SEARCH : -1;
        else if (is(t, "query"))
            op = post ? REST_OP_QUERY : -1;
        else if (is(t, "recommend"))
            op = post ? REST_OP_RECOMMEND : -1;
        else if (is(t, "discover"))
            op = post ? REST_OP_DISCOVER : -1;
        else if (is(t, "scroll"))
            op = post ? REST_OP_SCROLL : -1;
        else if (is(t, "count"))
            op = post ? REST_OP_COUNT : -1;
        else if (is(t, "vectors"))
            op = put ? REST_OP_UPDATE_VECTORS : -1;
        else if (is(t, "batch"))
            op = post ? REST_OP_UPDATE_BATCH : -1;
        else
            op = get ? REST_OP_GET_ONE : -1;
    } else if (n == 6 && is(s[2], "points") && is(s[3], "search") && is(s[4], "matrix") &&
               (is(s[5], "pairs") || is(s[5], "offsets"))) {
        op = post ? (is(s[5], "pairs") ? REST_OP_MATRIX_PAIRS : REST_OP_MATRIX_OFFSETS) : -1;
    } else if (n == 5 && is(s[2], "points")) {
        if (is(s[3], "payload") && is(s[4], "delete"))
            op = post ? REST_OP_DELETE_PAYLOAD : -1;
        else if (is(s[3], "payload") && is(s[4], "clear"))
            op = post ? REST_OP_CLEAR_PAYLOAD : -1;
        else if (is(s[3], "search") && is(s[4], "batch"))
            op = post ? REST_OP_SEARCH_BATCH : -1;
        else if (is(s[3], "query") && is(s[4], "batch"))
            op = post ? REST_OP_QUERY_BATCH : -1;
        else if (is(s[3], "search") && is(s[4], "groups"))
            op = post ? REST_OP_SEARCH_GROUPS : -1;
        else if (is(s[3], "query") && is(s[4], "groups"))
            op = post ? REST_OP_QUERY_GROUPS : -1;
        else if (is(s[3], "recommend") && is(s[4], "groups"))
            op = post ? REST_OP_RECOMMEND_GROUPS : -1;
        else if (is(s[3], "recommend") && is(s[4], "batch"))
            op = post ? REST_OP_RECOMMEND_BATCH : -1;
        else if (is(s[3], "discover") && is(s[4], "batch"))
            op = post ? REST_OP_DISCOVER_BATCH : -1;
        else if (is(s[3], "vectors") && is(s[4], "delete"))
            op = post ? REST_OP_DELETE_VECTORS : -1;
        else
            known = false;
    } else {
        known = false;
    }
    if (!known)
        return rx_fail(x, 404, "Not found: no such path");
    if (op < 0)
        return rx_fail(x, 405, "Method %s is not allowed on this path", m);
    x->op = op;
    return 200;
}

static int dispatch(struct rx *x)
{
    const char *c = x->nseg > 1 ? x->seg[1] : NULL;
    switch (x->op) {
    case REST_OP_ROOT:
        return rh_root(x);
    case REST_OP_COLL_LIST:
        return rh_coll_list(x);
    case REST_OP_COLL_INFO:
        return rh_coll_info(x, c);
    case REST_OP_COLL_EXISTS:
        return rh_coll_exists(x, c);
    case REST_OP_COLL_CREATE:
        return rh_coll_create(x, c);
    case REST_OP_COLL_DROP:
        return rh_coll_drop(x, c);
    case REST_OP_COLL_UPDATE:
        return rh_coll_update(x, c);
    case REST_OP_ALIASES:
        return rh_aliases(x);
    case REST_OP_TELEMETRY:
        return rh_telemetry(x);
    case REST_OP_COLL_CLUSTER:
        return rh_coll_cluster(x, c);
    case REST_OP_CLUSTER:
        return rh_cluster(x);
    case REST_OP_INDEX_CREATE:
        return rh_index(x, c, NULL);
    case REST_OP_INDEX_DROP:
        return rh_index(x, c, x->seg[3]);
    case REST_OP_UPSERT:
        return rh_upsert(x, c);
    case REST_OP_GET:
        return rh_get(x, c);
    case REST_OP_GET_ONE:
        return rh_get_one(x, c, x->seg[3]);
    case REST_OP_DELETE:
        return rh_delete(x, c);
    case REST_OP_UPDATE_VECTORS:
        return rh_update_vectors(x, c);
    case REST_OP_DELETE_VECTORS:
        return rh_delete_vectors(x, c);
    case REST_OP_SET_PAYLOAD:
        return rh_payload(x, c, 1);
    case REST_OP_OVERWRITE_PAYLOAD:
        return rh_payload(x, c, 2);
    case REST_OP_DELETE_PAYLOAD:
        return rh_payload(x, c, 3);
    case REST_OP_CLEAR_PAYLOAD:
        return rh_payload(x, c, 4);
    case REST_OP_SEARCH:
        return rh_search(x, c, false);
    case REST_OP_SEARCH_BATCH:
        return rh_search(x, c, true);
    case REST_OP_QUERY:
        return rh_query(x, c, false);
    case REST_OP_QUERY_BATCH:
        return rh_query(x, c, true);
    case REST_OP_SEARCH_GROUPS:
        return rh_groups(x, c, RG_SEARCH);
    case REST_OP_QUERY_GROUPS:
        return rh_groups(x, c, RG_QUERY);
    case REST_OP_MATRIX_PAIRS:
        return rh_matrix(x, c, false);
    case REST_OP_MATRIX_OFFSETS:
        return rh_matrix(x, c, true);
    case REST_OP_RECOMMEND_GROUPS:
        return rh_groups(x, c, RG_RECOMMEND);
    case REST_OP_RECOMMEND:
        return rh_recommend(x, c, false, false);
    case REST_OP_RECOMMEND_BATCH:
        return rh_recommend(x, c, true, false);
    case REST_OP_DISCOVER:
        return rh_recommend(x, c, false, true);
    case REST_OP_DISCOVER_BATCH:
        return rh_recommend(x, c, true, true);
    case REST_OP_SCROLL:
        return rh_scroll(x, c);
    case REST_OP_COUNT:
        return rh_count(x, c);
    case REST_OP_UPDATE_BATCH:
        return rh_update_batch(x, c);
    case REST_OP_FACET:
        return rh_facet(x, c);
    default:
        return rx_fail(x, 404, "Not found: no such path");
    }
}

/* ---- one request ------------------------------------------------------------------------- */

/* Counts, then replies: once the reply is out, httpd_free may return and rest_free free r
 * while a fast search's thread is still here. */
static void answer(struct rest *r, struct httpd_req *hr, int op, int status, const char *body,
                   size_t len, uint64_t t0_ns)
{
    int cls = status < 400 ? REST_2XX : status < 500 ? REST_4XX : REST_5XX;
    if (r->req[op][cls])
        metrics_counter_inc(r->req[op][cls]);
    if (r->lat[op])
        metrics_histogram_observe(r->lat[op], (double)(clock_mono_ns() - t0_ns) * 1e-9);
    httpd_req_reply(hr, status, JSON_CT, body, len);
}

/* The envelope: {"result":...,"status":"ok","time":s} or {"status":{"error":...},"time":s}. */
static int envelope(struct buf *out, int status, const struct buf *res, const char *err,
                    uint64_t t0_ns)
{
    double secs = (double)(clock_mono_ns() - t0_ns) * 1e-9;
    int rc;
    if (status == 200) {
        rc = jw_raw(out, "{\"result\":");
        if (rc == DV_OK)
            rc = buf_append(out, res->data, res->len);
        if (rc == DV_OK)
            rc = buf_appendf(out, ",\"status\":\"ok\",\"time\":%.6f}", secs);
        return rc;
    }
    rc = jw_raw(out, "{\"status\":{\"error\":");
    if (rc == DV_OK)
        rc = jw_str(out, err, strlen(err));
    if (rc == DV_OK)
        rc = buf_appendf(out, "},\"time\":%.6f}", secs);
    return rc;
}

static void rx_init(struct rx *x, struct rest *r, struct httpd_req *hr, uint64_t t0_ns)
{
    memset(x, 0, sizeof *x);
    x->r = r;
    x->hr = hr;
    x->op = REST_OP_UNKNOWN;
    x->t0_ns = t0_ns;
    x->method = httpd_req_method(hr);
    x->body = httpd_req_body(hr, &x->body_len);
}

/* Everything before the handler: the path, the route, the body's size, the parameters. */
static int rx_prepare(struct rx *x)
{
    uint64_t declared;
    int st = parse_target(x, httpd_req_uri(x->hr));
    if (st == 200)
        st = route(x);
    if (st == 200 && httpd_req_too_big(x->hr, &declared))
        st = rx_fail(x, 413,
                     "Payload too large: the request body has %" PRIu64
                     " bytes, the limit is %" PRIu64 " (max_message)",
                     declared, x->r->o.max_body);
    if (st == 200)
        st = parse_params(x);
    return st;
}

/* Frees what x holds (not x). */
static void rx_clear(struct rx *x)
{
    buf_free(&x->res);
    if (x->json)
        json_decref(x->json);
    free(x->path);
    free(x->query);
}

/* Answers with status st and clears x. */
static void rx_answer(struct rx *x, int st)
{
    struct buf out = BUF_INIT;
    int rc;
    if (st == 200 && x->op == REST_OP_ROOT)
        rc = buf_append(&out, x->res.data, x->res.len); /* GET / has no envelope (Qdrant) */
    else
        rc = envelope(&out, st, &x->res, x->err[0] ? x->err : "error", x->t0_ns);
    if (rc != DV_OK) {
        st = 500;
        buf_free(&out);
    }
    if (st >= 500)
        log_warn("rest request failed", "op=%s status=%d error=%s", op_names[x->op], st, x->err);
    answer(x->r, x->hr, x->op, st, (const char *)out.data, out.len, x->t0_ns);
    buf_free(&out);
    rx_clear(x);
}

static void handle(struct rest *r, struct rest_item *it)
{
    struct rx x;
    rx_init(&x, r, it->hr, it->t0_ns);
    x.requeued = it->requeued;
    int st = rx_prepare(&x);
    if (st == 200)
        st = dispatch(&x);
    rx_answer(&x, st);
}

void rx_finish(struct rx *x, int st)
{
    if (x->r->fast_answered)
        metrics_counter_inc(x->r->fast_answered);
    rx_answer(x, st);
    free(x);
}

static bool enqueue(struct rest *r, struct httpd_req *hr, uint64_t t0_ns, bool requeued);

void rx_requeue(struct rx *x)
{
    struct rest *r = x->r;
    struct httpd_req *hr = x->hr;
    uint64_t t0 = x->t0_ns;
    if (r->fast_requeued)
        metrics_counter_inc(r->fast_requeued);
    rx_clear(x);
    free(x);
    enqueue(r, hr, t0, true);
}

/* A search whose body is small runs on the nng thread until it is started (or answered, for a
 * bad one); true when the request is taken care of, false when it needs a worker. */
static bool fast(struct rest *r, struct httpd_req *hr, uint64_t t0_ns)
{
    struct rx *x = malloc(sizeof *x);
    if (x == NULL)
        return false;
    rx_init(x, r, hr, t0_ns);
    x->fast = true;
    int st = rx_prepare(x);
    bool search = x->op == REST_OP_SEARCH || x->op == REST_OP_SEARCH_BATCH ||
                  x->op == REST_OP_QUERY || x->op == REST_OP_QUERY_BATCH;
    if (st != 200 || !search || x->consistency != 0) {
        rx_clear(x); /* a worker does it all again, bad requests too */
        free(x);
        return false;
    }
    st = dispatch(x);
    if (st == REST_STARTED)
        return true; /* the search's done answers */
    if (st == REST_SLOW) {
        rx_clear(x);
        free(x);
        return false;
    }
    rx_finish(x, st); /* a bad request, answered here */
    return true;
}

/* ---- the queue and the workers ----------------------------------------------------------- */

static void *worker(void *arg)
{
    struct rest *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        struct rest_item **pp = &r->head, *prev = NULL, *it = NULL;
        for (; *pp; prev = *pp, pp = &(*pp)->next)
            if (!(*pp)->big || r->big_running < REST_BIG_RUNNING) {
                it = *pp;
                break;
            }
        if (it) {
            *pp = it->next;
            if (r->tail == it)
                r->tail = prev;
            r->queued--;
            r->big_running += it->big;
            pthread_mutex_unlock(&r->mu);
            handle(r, it);
            pthread_mutex_lock(&r->mu);
            if (it->big) {
                r->big_running--;
                pthread_cond_broadcast(&r->cv);
            }
            free(it);
            continue;
        }
        if (r->stopping && r->head == NULL)
            break;
        pthread_cond_wait(&r->cv, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static const char busy_body[] = "{\"status\":{\"error\":\"Service unavailable: too many requests "
                                "waiting; retry later\"},\"time\":0.0}";

/* Queues a request for a worker; answers 503 when the queue is full. */
static bool enqueue(struct rest *r, struct httpd_req *hr, uint64_t t0_ns, bool requeued)
{
    size_t len;
    httpd_req_body(hr, &len);
    struct rest_item *it = malloc(sizeof *it);
    if (it == NULL) {
        httpd_req_reply(hr, 503, JSON_CT, busy_body, sizeof busy_body - 1);
        return false;
    }
    it->hr = hr;
    it->t0_ns = t0_ns;
    it->big = len > REST_BIG_BODY;
    it->requeued = requeued;
    it->next = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->queued >= r->max_queue || r->stopping) {
        pthread_mutex_unlock(&r->mu);
        free(it);
        if (r->req[REST_OP_UNKNOWN][REST_5XX])
            metrics_counter_inc(r->req[REST_OP_UNKNOWN][REST_5XX]);
        httpd_req_reply(hr, 503, JSON_CT, busy_body, sizeof busy_body - 1);
        return false;
    }
    if (r->tail)
        r->tail->next = it;
    else
        r->head = it;
    r->tail = it;
    r->queued++;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return true;
}

/* httpd's callback (an nng thread): a small search is started here, anything else queued;
 * never blocks. */
static void on_request(void *arg, struct httpd_req *hr)
{
    struct rest *r = arg;
    if (httpd_req_aborted(hr)) {
        httpd_req_reply(hr, 500, NULL, NULL, 0); /* only frees it */
        return;
    }
    uint64_t t0 = clock_mono_ns();
    size_t len;
    httpd_req_body(hr, &len);
    uint64_t declared;
    if (r->o.search && len <= REST_FAST_BODY && !httpd_req_too_big(hr, &declared) &&
        is(httpd_req_method(hr), "POST") && fast(r, hr, t0))
        return;
    enqueue(r, hr, t0, false);
}

static void register_metrics(struct rest *r)
{
    static const char *const cls[REST_CLASSES] = {"2xx", "4xx", "5xx"};
    for (int op = 0; op < REST_OP_N; op++) {
        for (int k = 0; k < REST_CLASSES; k++) {
            const char *l[] = {"op", op_names[op], "code", cls[k], NULL};
            metrics_counter(r->o.reg, "dvec_rest_requests", "REST requests answered, by operation.",
                            l, &r->req[op][k], NULL);
        }
        const char *l[] = {"op", op_names[op], NULL};
        metrics_histogram(r->o.reg, "dvec_rest_request_duration_seconds",
                          "Time to answer a REST request, from its arrival, by operation.", NULL, 0,
                          l, &r->lat[op], NULL);
    }
    static const char fast_help[] =
        "Searches parsed and started on the HTTP thread, by outcome: answered from the nodes' "
        "replies, or requeued for a worker (a node failed or moved on).";
    const char *la[] = {"outcome", "answered", NULL}, *lr[] = {"outcome", "requeued", NULL};
    metrics_counter(r->o.reg, "dvec_rest_fast_searches", fast_help, la, &r->fast_answered, NULL);
    metrics_counter(r->o.reg, "dvec_rest_fast_searches", fast_help, lr, &r->fast_requeued, NULL);
}

int rest_new(const struct rest_opts *o, struct rest **out, char *errmsg)
{
    if (o->call == NULL || o->workers == 0) {
        dv_errmsg_set(errmsg, "rest: a call function and at least one worker are needed");
        return DV_EINVAL;
    }
    struct rest *r = calloc(1, sizeof *r);
    if (r == NULL)
        return DV_ENOMEM;
    r->o = *o;
    r->max_queue = o->max_queue ? o->max_queue : 64 * o->workers;
    atomic_init(&r->op_seq, 1);
    atomic_init(&r->req_seq, 1);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (o->reg)
        register_metrics(r);
    r->threads = calloc(o->workers, sizeof *r->threads);
    if (r->threads == NULL) {
        rest_free(r);
        return DV_ENOMEM;
    }
    for (uint32_t i = 0; i < o->workers; i++) {
        if (pthread_create(&r->threads[i], NULL, worker, r) != 0) {
            dv_errmsg_set(errmsg, "rest: cannot start worker threads");
            rest_free(r);
            return DV_EOS;
        }
        r->n_threads++;
    }
    *out = r;
    return DV_OK;
}

int rest_attach(struct rest *r, struct httpd *h, char *errmsg)
{
    return httpd_add_tree(h, "/", r->o.max_body, on_request, r, errmsg);
}

void rest_free(struct rest *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (uint32_t i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    free(r->threads);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
