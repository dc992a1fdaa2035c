/* search.c - libdvec's searches: one query or a batch in one request, and the score threshold
 * the SDK applies to the results. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

DVEC_API void dvec_search_params_init(dvec_search_params *p)
{
    if (p == NULL)
        return;
    memset(p, 0, sizeof *p);
    p->k = 10;
}

/* DVEC_EUCLID and DVEC_MANHATTAN: distances, smaller is closer. */
static bool smaller_closer(uint32_t metric)
{
    return metric == DVEC_EUCLID || metric == DVEC_MANHATTAN;
}

/*
 * Which way the scores of a reply run: the coordinator sorts every hit list best first, so
 * two different scores in one list tell. 1: ascending (smaller is closer), -1: descending,
 * 0: no list says (every list has fewer than two distinct scores).
 */
static int order_of(const struct msg_csearch_rep *s)
{
    for (uint32_t q = 0; q < s->n; q++) {
        const struct msg_hits *h = &s->results[q];
        for (uint32_t j = 1; j < h->n; j++)
            if (h->hits[j].score != h->hits[0].score)
                return h->hits[j].score > h->hits[0].score ? 1 : -1;
    }
    return 0;
}

/* Keeps the records within the threshold (they stay in order). */
static void threshold(dvec_records *r, bool smaller, float t)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        dvec_record *x = &r->items[i];
        bool keep = smaller ? x->score <= t : x->score >= t;
        if (keep) {
            r->items[k++] = *x;
        } else {
            free(x->vector);
            free(x->payload_json);
        }
    }
    r->n = k;
    if (k == 0) {
        free(r->items);
        r->items = NULL;
    }
}

DVEC_API int dvec_search_batch(dvec_client *c, const char *coll, const float *queries, size_t nq,
                               uint32_t dim, const dvec_search_params *p, dvec_records *out,
                               bool *partial, dvec_error *err)
{
    if (partial)
        *partial = false;
    if (c == NULL || (nq > 0 && (queries == NULL || out == NULL)))
        return cl_failf(err, DVEC_EINVAL, "search: client, queries or output is NULL");
    for (size_t i = 0; i < nq; i++)
        out[i] = (dvec_records){NULL, 0};
    int rc = cl_check_coll(coll, err);
    if (rc != DVEC_OK)
        return rc;
    dvec_search_params def;
    if (p == NULL) {
        dvec_search_params_init(&def);
        p = &def;
    }
    uint32_t k = p->k ? p->k : 10;
    if (k > PROTO_MAX_K)
        return cl_failf(err, DVEC_ERANGE, "collection %s: search: k %u is not 1 to %d", coll, k,
                        PROTO_MAX_K);
    if (dim == 0 || dim > PROTO_MAX_DIM)
        return cl_failf(err, DVEC_EDIM, "collection %s: search: dimension %u is not 1 to %d", coll,
                        dim, PROTO_MAX_DIM);
    if (nq > UINT32_MAX || (uint64_t)nq * dim * sizeof(float) > PROTO_MAX_MSG)
        return cl_failf(err, DVEC_ETOOBIG,
                        "collection %s: search: %zu queries of %u dimensions are over the "
                        "message limit of %u bytes",
                        coll, nq, dim, PROTO_MAX_MSG);
    for (size_t i = 0; i < nq; i++)
        for (uint32_t d = 0; d < dim; d++)
            if (!isfinite(queries[i * dim + d]))
                return cl_failf(err, DVEC_ENAN,
                                "collection %s: search: query %zu holds %s at dimension %u", coll,
                                i, isnan(queries[i * dim + d]) ? "NaN" : "infinity", d);
    struct buf f = BUF_INIT;
    char e[DV_ERRMSG_SIZE] = "";
    if (p->filter_json && (rc = cl_json_to_mp(p->filter_json, CL_JSON_OBJECT, &f, e)) != DV_OK)
        return cl_failf(err, rc, "collection %s: search: filter: %s", coll, e);
    struct msg_query *q = calloc(nq ? nq : 1, sizeof *q);
    if (q == NULL) {
        buf_free(&f);
        return cl_failf(err, DVEC_ENOMEM, "collection %s: search: out of memory", coll);
    }
    for (size_t i = 0; i < nq; i++)
        q[i] = (struct msg_query){.vec = (float *)(queries + i * dim),
                                  .dim = dim,
                                  .k = k,
                                  .ef = p->ef,
                                  .filter = {f.data, (uint32_t)f.len},
                                  .with_payload = p->with_payload,
                                  .with_vector = p->with_vector};
    struct msg req = cl_req(MSG_P_SEARCH, coll);
    req.u.csearch_req = (struct msg_csearch_req){q, (uint32_t)nq, p->allow_partial, p->timeout_ms};
    /* The transport waits for the server's own deadline and some more. */
    uint32_t tmo = c->timeout_ms;
    if (p->timeout_ms && p->timeout_ms + CL_SEARCH_LEEWAY_MS > tmo)
        tmo = p->timeout_ms + CL_SEARCH_LEEWAY_MS;
    struct msg_reply rep;
    if (cl_direct_search(c, coll, &req.u.csearch_req, tmo, &rep))
        rc = DV_OK;
    else
        rc = cl_call(c, &req, tmo, &rep, e);
    free(q);
    buf_free(&f);
    if (rc != DV_OK)
        return cl_failf(err, rc, "collection %s: search: %s", coll, e);
    const struct msg_csearch_rep *s = &rep.m.u.csearch_rep;
    if (s->n != nq) {
        msg_reply_free(&rep);
        return cl_failf(err, DVEC_EPROTO,
                        "collection %s: search: %zu queries sent, %u result lists came back", coll,
                        nq, s->n);
    }
    bool smaller = false;
    if (p->has_score_threshold) {
        int order = order_of(s);
        if (order != 0) {
            smaller = order > 0;
        } else {
            uint32_t metric;
            if ((rc = cl_metric_of(c, coll, &metric, e)) != DV_OK) {
                msg_reply_free(&rep);
                return cl_failf(err, rc, "collection %s: search: score threshold: %s", coll, e);
            }
            smaller = smaller_closer(metric);
        }
    }
    for (size_t i = 0; i < nq && rc == DV_OK; i++) {
        rc = cl_records(&s->results[i], true, &out[i], e);
        if (rc == DV_OK && p->has_score_threshold)
            threshold(&out[i], smaller, p->score_threshold);
    }
    if (partial)
        *partial = s->partial;
    msg_reply_free(&rep);
    if (rc != DV_OK) {
        for (size_t i = 0; i < nq; i++)
            dvec_records_free(&out[i]);
        if (partial)
            *partial = false;
        return cl_failf(err, rc, "collection %s: search: %s", coll, e[0] ? e : dv_strerror(rc));
    }
    return cl_ok(err);
}

DVEC_API int dvec_search(dvec_client *c, const char *coll, const float *query, uint32_t dim,
                         const dvec_search_params *p, dvec_records *out, bool *partial,
                         dvec_error *err)
{
    if (query == NULL || out == NULL) {
        if (partial)
            *partial = false;
        return cl_failf(err, DVEC_EINVAL, "search: query or output is NULL");
    }
    return dvec_search_batch(c, coll, query, 1, dim, p, out, partial, err);
}
