/* rest_matrix.c - search/matrix/pairs and search/matrix/offsets: a random sample of the
 * collection's points (those matching `filter` that have the vector `using`) and, for each,
 * its `limit` nearest among the sample, as pairs or as a sparse matrix.
 *
 * One sample, one fetch of the sampled points' vectors, then one native search batch with a
 * query per sampled point restricted to the sample (a has_id filter: the nodes score the
 * sample exactly), so the answer is exact over the sample whatever the partitions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rest_int.h"

#define RM_MAX_SAMPLE 1000 /* points in one matrix (a query each) */

/* The sample (sorted by id) and each sampled point's neighbours in it, best first. */
struct matrix {
    struct rq_list sample;
    struct rq_list *nn; /* sample.n lists */
};

static void matrix_free(struct matrix *m)
{
    for (size_t i = 0; m->nn && i < m->sample.n; i++)
        rq_list_free(&m->nn[i]);
    free(m->nn);
    rq_list_free(&m->sample);
}

static int build(struct rx *x, const char *coll, struct matrix *m)
{
    int st;
    uint64_t sample, limit;
    if ((st = rj_u64(x, x->json, "sample", 10, 1, RM_MAX_SAMPLE, &sample)) != 200 ||
        (st = rj_u64(x, x->json, "limit", 3, 1, RM_MAX_SAMPLE, &limit)) != 200)
        return st;
    static const char *const unsupported[] = {"shard_key", NULL};
    if ((st = rj_unsupported(x, x->json, unsupported)) != 200)
        return st;
    json_t *f = rj_get(x->json, "filter");
    if (f && !json_is_object(f))
        return rj_type_error(x, "filter", "expected an object");
    struct rs_qvec base = {0};
    if ((st = rs_using(x, rj_get(x->json, "using"), "using", &base)) != 200)
        return st;
    /* only points that have the vector */
    json_t *hv = json_pack("{s:[{s:s}]}", "must", "has_vector", base.using);
    json_t *ff = hv && f ? json_pack("{s:[O,O]}", "must", f, hv) : hv ? json_incref(hv) : NULL;
    json_decref(hv);
    if (ff == NULL)
        return rx_oom(x);
    struct rq_ctx r = {x, coll, x->timeout_ms};
    st = rq_sample(&r, ff, NULL, (uint32_t)sample, &m->sample);
    json_decref(ff);
    if (st != 200)
        return st;
    qsort(m->sample.v, m->sample.n, sizeof *m->sample.v, rq_by_id);
    size_t n = m->sample.n;
    if (n == 0)
        return 200;
    /* every sampled point's vector, then one query each among the sample */
    struct pid *ids = malloc(n * sizeof *ids);
    struct rs_qvec *qv = calloc(n, sizeof *qv);
    m->nn = calloc(n, sizeof *m->nn);
    if (ids == NULL || qv == NULL || m->nn == NULL) {
        free(ids);
        free(qv);
        return rx_oom(x);
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = m->sample.v[i].id;
    struct msg_reply rep = {0};
    struct msg_hits got;
    st = rq_fetch(x, coll, ids, n, true, false, &rep, &got);
    size_t nq = 0;
    for (size_t i = 0; st == 200 && i < n; i++) {
        const struct msg_hit *h = rq_find(&got, &ids[i]);
        snprintf(qv[i].using, sizeof qv[i].using, "%s", base.using);
        if (h == NULL || !rs_qvec_of_hit(x, h, &qv[i], &st)) {
            char t[PID_TEXT_MAX];
            pid_format(&ids[i], t);
            st = rx_fail(x, 503, "Service unavailable: point %s changed while sampled: try again",
                         t);
        }
        nq++;
    }
    msg_reply_free(&rep);
    if (st == 200)
        st = rq_search(&r, qv, n, (uint32_t)limit, 0, NULL, &m->sample, m->nn);
    for (size_t i = 0; i < nq; i++)
        rs_qvec_free(&qv[i]);
    free(qv);
    free(ids);
    return st;
}

int rh_matrix(struct rx *x, const char *coll, bool offsets)
{
    int st = rj_body(x, true);
    if (st != 200)
        return st;
    if (x->fast)
        return REST_SLOW;
    struct matrix m = {0};
    if ((st = build(x, coll, &m)) != 200) {
        matrix_free(&m);
        return st;
    }
    int rc = DV_OK;
    if (!offsets) {
        rc = jw_raw(&x->res, "{\"pairs\":[");
        size_t w = 0;
        for (size_t i = 0; i < m.sample.n && rc == DV_OK; i++)
            for (size_t j = 0; j < m.nn[i].n && rc == DV_OK; j++) {
                rc = jw_raw(&x->res, w++ ? ",{\"a\":" : "{\"a\":");
                rc = rc ? rc : jw_pid(&x->res, &m.sample.v[i].id);
                rc = rc ? rc : jw_raw(&x->res, ",\"b\":");
                rc = rc ? rc : jw_pid(&x->res, &m.nn[i].v[j].id);
                rc = rc ? rc : jw_raw(&x->res, ",\"score\":");
                rc = rc ? rc : jw_f32(&x->res, m.nn[i].v[j].score);
                rc = rc ? rc : jw_raw(&x->res, "}");
            }
        rc = rc ? rc : jw_raw(&x->res, "]}");
    } else {
        /* rows, columns (indexes into ids), scores, ids */
        static const char *const part[] = {"{\"offsets_row\":[", "],\"offsets_col\":[",
                                           "],\"scores\":["};
        for (int k = 0; k < 3 && rc == DV_OK; k++) {
            rc = jw_raw(&x->res, part[k]);
            size_t w = 0;
            for (size_t i = 0; i < m.sample.n && rc == DV_OK; i++)
                for (size_t j = 0; j < m.nn[i].n && rc == DV_OK; j++) {
                    if (w++)
                        rc = jw_raw(&x->res, ",");
                    if (k == 2) {
                        rc = rc ? rc : jw_f32(&x->res, m.nn[i].v[j].score);
                        continue;
                    }
                    long at = k == 0 ? (long)i : rq_pos(&m.sample, &m.nn[i].v[j].id);
                    rc = rc ? rc : buf_appendf(&x->res, "%ld", at);
                }
        }
        rc = rc ? rc : jw_raw(&x->res, "],\"ids\":[");
        for (size_t i = 0; i < m.sample.n && rc == DV_OK; i++) {
            rc = i ? jw_raw(&x->res, ",") : DV_OK;
            rc = rc ? rc : jw_pid(&x->res, &m.sample.v[i].id);
        }
        rc = rc ? rc : jw_raw(&x->res, "]}");
    }
    matrix_free(&m);
    return rc == DV_OK ? 200 : rx_oom(x);
}
