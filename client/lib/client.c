/* client.c - libdvec's client: the coordinator list, calls with failover, errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

DVEC_API const char *dvec_code_name(int code)
{
    return dv_errname(code);
}

int cl_ok(dvec_error *err)
{
    if (err) {
        err->code = DVEC_OK;
        err->message[0] = '\0';
    }
    return DVEC_OK;
}

int cl_fail(dvec_error *err, int code, const char *prefix, const char *msg)
{
    if (err) {
        err->code = code;
        if (msg == NULL || msg[0] == '\0')
            msg = dv_strerror(code);
        if (prefix)
            snprintf(err->message, sizeof err->message, "%s: %s", prefix, msg);
        else
            snprintf(err->message, sizeof err->message, "%s", msg);
    }
    return code;
}

int cl_failf(dvec_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

int cl_check_coll(const char *coll, dvec_error *err)
{
    if (coll == NULL || coll[0] == '\0')
        return cl_failf(err, DVEC_EINVAL, "no collection name given");
    if (strlen(coll) > 128)
        return cl_failf(err, DVEC_EINVAL, "collection name %.40s... is longer than 128 bytes",
                        coll);
    return DVEC_OK;
}

struct msg cl_req(int type, const char *coll)
{
    struct msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    if (coll)
        m.addr.coll = (struct msg_str){coll, (uint32_t)strlen(coll)};
    return m;
}

/* ---- connect and close ------------------------------------------------------------------- */

static void client_free(dvec_client *c)
{
    for (size_t i = 0; i < c->n; i++) {
        rpc_close(c->rpcs ? c->rpcs[i] : NULL);
        free(c->urls ? c->urls[i] : NULL);
    }
    free(c->rpcs);
    free(c->urls);
    free(c->metrics);
    cl_routes_free(c);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Splits "a, b,c" into c->urls (spaces around each URL trimmed, empty ones skipped). */
static int split_urls(dvec_client *c, const char *urls, dvec_error *err)
{
    size_t cap = 1;
    for (const char *p = urls; *p; p++)
        cap += *p == ',';
    if (cap > CL_MAX_URLS)
        return cl_failf(err, DVEC_EINVAL, "%zu coordinator URLs given; at most %d", cap,
                        CL_MAX_URLS);
    c->urls = calloc(cap, sizeof *c->urls);
    c->rpcs = calloc(cap, sizeof *c->rpcs);
    if (c->urls == NULL || c->rpcs == NULL)
        return cl_fail(err, DVEC_ENOMEM, "connect", NULL);
    const char *p = urls;
    while (*p) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t' || *a == '\n'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\n'))
            b--;
        if (b > a) {
            if ((c->urls[c->n] = strndup(a, (size_t)(b - a))) == NULL)
                return cl_fail(err, DVEC_ENOMEM, "connect", NULL);
            c->n++;
        }
        p = *end ? end + 1 : end;
    }
    if (c->n == 0)
        return cl_failf(err, DVEC_EINVAL, "no coordinator URL given (\"%s\")", urls);
    return DVEC_OK;
}

DVEC_API int dvec_connect(const char *urls, const dvec_options *opts, dvec_client **out,
                          dvec_error *err)
{
    if (out == NULL)
        return cl_failf(err, DVEC_EINVAL, "connect: no place for the client (out is NULL)");
    *out = NULL;
    if (urls == NULL)
        return cl_failf(err, DVEC_EINVAL, "connect: no coordinator URLs given");
    dvec_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return cl_fail(err, DVEC_ENOMEM, "connect", NULL);
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->cur, 0);
    int rc = split_urls(c, urls, err);
    if (rc != DVEC_OK) {
        client_free(c);
        return rc;
    }
    dvec_options o = {0};
    if (opts)
        o = *opts;
    c->timeout_ms = o.timeout_ms ? o.timeout_ms : 10000;
    c->max_attempts = o.max_attempts ? o.max_attempts : (uint32_t)(2 * c->n);
    struct rpc_opts ro;
    rpc_opts_default(&ro);
    ro.timeout_ms = c->timeout_ms;
    ro.connect_wait_ms = o.connect_timeout_ms ? o.connect_timeout_ms : 1000;
    c->direct = !o.via_coordinator && getenv("DVEC_VIA_COORDINATOR") == NULL;
    c->route_ttl_ms = o.route_ttl_ms ? o.route_ttl_ms : CL_ROUTE_TTL_MS;
    c->search_port = !o.no_search_port && getenv("DVEC_NO_SEARCH_PORT") == NULL;
    c->node_opts = ro; /* nodes: the same timeouts as coordinators */
    atomic_init(&c->turn, 0);
    for (size_t i = 0; i < c->n; i++) {
        char e[DV_ERRMSG_SIZE] = "";
        if ((rc = rpc_open(c->urls[i], &ro, &c->rpcs[i], e)) != DV_OK) {
            cl_failf(err, rc, "coordinator %zu of %zu (%s): %s", i + 1, c->n, c->urls[i], e);
            client_free(c);
            return rc;
        }
    }
    *out = c;
    return cl_ok(err);
}

DVEC_API void dvec_close(dvec_client *c)
{
    if (c)
        client_free(c);
}

/* ---- calls with failover ----------------------------------------------------------------- */

/* The coordinator did not answer this request (or refused it while shutting down): worth
 * sending to another one. Errors the coordinator answered are final. */
static bool try_next(int rc, const struct msg_reply *rep)
{
    if (rc == DV_ESHUTDOWN)
        return true;
    return (rc == DV_EIO || rc == DV_ETIMEDOUT) && !rep->m.reply;
}

int dvec_set_read_consistency(dvec_client *c, uint32_t level, dvec_error *err)
{
    if (c == NULL)
        return cl_failf(err, DVEC_EINVAL, "read consistency: client is NULL");
    if ((level > PROTO_MAX_RF && level < DVEC_READ_MAJORITY) || level > DVEC_READ_ALL)
        return cl_failf(err, DVEC_EINVAL,
                        "read consistency %u is not a number of replicas (0 to %d) or "
                        "DVEC_READ_MAJORITY, DVEC_READ_QUORUM, DVEC_READ_ALL",
                        level, PROTO_MAX_RF);
    atomic_store(&c->read_consistency, level);
    return cl_ok(err);
}

int cl_call(dvec_client *c, const struct msg *req, uint32_t timeout_ms, struct msg_reply *rep,
            char *errmsg)
{
    uint32_t tmo = timeout_ms ? timeout_ms : c->timeout_ms;
    size_t start = atomic_load(&c->cur) % c->n, k = 0, n_down = 0;
    uint64_t down = 0; /* coordinators that had no connection within connect_timeout */
    uint32_t attempts = 0;
    size_t last = start;
    int rc = DV_EIO;
    char e[DV_ERRMSG_SIZE] = "";
    memset(rep, 0, sizeof *rep);
    /* A coordinator with no connection had its connect_timeout: it is not tried again in the
     * same call, so a call over dead coordinators fails after one wait each. */
    while (attempts < c->max_attempts && n_down < c->n) {
        size_t i = (start + k++) % c->n;
        if (down & (UINT64_C(1) << i))
            continue;
        attempts++;
        e[0] = '\0';
        if (msg_type_consistent_read(req->type) && atomic_load(&c->read_consistency) != 0) {
            struct msg r = *req;
            r.read_consistency = atomic_load(&c->read_consistency);
            rc = rpc_call_timeout(c->rpcs[i], &r, rep, tmo, e);
        } else {
            rc = rpc_call_timeout(c->rpcs[i], req, rep, tmo, e);
        }
        if (rc == DV_OK || !try_next(rc, rep)) {
            if (i != start)
                atomic_store(&c->cur, i);
            if (rc != DV_OK) {
                snprintf(errmsg, DV_ERRMSG_SIZE, "%s", e[0] ? e : dv_strerror(rc));
                msg_reply_free(rep);
            }
            /* "Not the leader" (a coordinator that lost its leadership under a map change) is
             * the SDK's DVEC_EBUSY: no leader right now, retry (dvec.h has no stale code). */
            return rc == DV_ESTALE ? DV_EBUSY : rc;
        }
        last = i;
        /* rpc.c's words for "no connection within connect_wait" (test_sdk_unit checks that a
         * call over a dead coordinator waits once). */
        if (rc == DV_EIO && strstr(e, "not connected") != NULL) {
            down |= UINT64_C(1) << i;
            n_down++;
        }
        msg_reply_free(rep);
        memset(rep, 0, sizeof *rep);
        /* The next call starts with the next coordinator, unless another thread moved on. */
        size_t expect = i;
        atomic_compare_exchange_strong(&c->cur, &expect, (i + 1) % c->n);
    }
    /* rpc's messages name the URL; a refusal's text comes from the server and does not. */
    bool named = strstr(e, c->urls[last]) != NULL;
    if (c->n == 1)
        snprintf(errmsg, DV_ERRMSG_SIZE, "coordinator did not answer: %s%s%s",
                 named ? "" : c->urls[last], named ? "" : ": ", e);
    else
        snprintf(errmsg, DV_ERRMSG_SIZE,
                 "no coordinator answered (%u attempt%s over %zu URLs); the last: %s%s%s", attempts,
                 attempts == 1 ? "" : "s", c->n, named ? "" : c->urls[last], named ? "" : ": ", e);
    return rc;
}

/* ---- what the client remembers of collections -------------------------------------------- */

int cl_metric_of(dvec_client *c, const char *coll, uint32_t *metric, char *errmsg)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_metrics; i++)
        if (strcmp(c->metrics[i].name, coll) == 0) {
            *metric = c->metrics[i].metric;
            pthread_mutex_unlock(&c->mu);
            return DV_OK;
        }
    pthread_mutex_unlock(&c->mu);

    struct msg req = cl_req(MSG_COLL_INFO, coll);
    struct msg_reply rep;
    int rc = cl_call(c, &req, 0, &rep, errmsg);
    if (rc != DV_OK)
        return rc;
    *metric = rep.m.u.coll_info_rep.cfg.metric;
    msg_reply_free(&rep);

    pthread_mutex_lock(&c->mu);
    bool known = false;
    for (size_t i = 0; i < c->n_metrics && !known; i++)
        known = strcmp(c->metrics[i].name, coll) == 0;
    if (!known) {
        struct cl_metric *m = realloc(c->metrics, (c->n_metrics + 1) * sizeof *m);
        if (m) { /* out of memory: not remembered, asked again next time */
            c->metrics = m;
            snprintf(m[c->n_metrics].name, sizeof m[c->n_metrics].name, "%s", coll);
            m[c->n_metrics].metric = *metric;
            c->n_metrics++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return DV_OK;
}

void cl_metric_forget(dvec_client *c, const char *coll)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_metrics; i++)
        if (strcmp(c->metrics[i].name, coll) == 0) {
            c->metrics[i] = c->metrics[--c->n_metrics];
            break;
        }
    pthread_mutex_unlock(&c->mu);
}

_Static_assert(DVEC_READ_MAJORITY == MSG_READ_MAJORITY && DVEC_READ_QUORUM == MSG_READ_QUORUM &&
                   DVEC_READ_ALL == MSG_READ_ALL,
               "dvec.h's read consistency levels are the protocol's");
