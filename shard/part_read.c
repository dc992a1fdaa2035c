/* part_read.c - a replica's reads: get by id, search (the planner: walk, exact pass or scan),
 * count, scroll. */
#include "part_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "log.h"
#include "mpk.h"

/* ---- reads ------------------------------------------------------------------------------ */

void part_result_free(struct part_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->hits[i].vec);
        free(r->hits[i].payload);
    }
    free(r->hits);
    r->hits = NULL;
    r->n = 0;
}

/* Fills hit h for slot s (caller holds rw shared). */
static int fill_hit(struct part *p, uint32_t s, bool wv, bool wp, struct part_hit *h)
{
    memset(h, 0, sizeof *h);
    h->id = p->ids[s];
    if (wv) {
        h->vec = malloc(p->o.index.dim * sizeof(float));
        if (h->vec == NULL || hnsw_get_vector(p->ix, s, h->vec) != DV_OK)
            return DV_ENOMEM;
    }
    if (wp && p->pay[s] != NULL) {
        h->payload = malloc(p->pay[s]->len);
        if (h->payload == NULL)
            return DV_ENOMEM;
        memcpy(h->payload, p->pay[s]->data, p->pay[s]->len);
        h->payload_len = p->pay[s]->len;
    }
    return DV_OK;
}

int part_get(struct part *p, const struct pid *ids, size_t n, bool with_vector, bool with_payload,
             struct part_result *out, char *errmsg)
{
    int rc = DV_OK;
    out->hits = calloc(n ? n : 1, sizeof *out->hits);
    out->n = 0;
    if (out->hits == NULL)
        return DV_ENOMEM;
    pthread_rwlock_rdlock(&p->rw);
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &ids[i]);
        if (s == IDMAP_EMPTY)
            continue;
        rc = fill_hit(p, s, with_vector, with_payload, &out->hits[out->n]);
        out->n++;
    }
    pthread_rwlock_unlock(&p->rw);
    if (rc != DV_OK) {
        part_result_free(out);
        dv_errmsg_set(errmsg, "out of memory reading points");
    }
    return rc;
}

struct accept_ctx {
    struct part *p;
    const struct filter *f;
};

/* The filter of every search: visible points that match the user's filter. */
static bool accept(uint32_t s, void *arg)
{
    const struct accept_ctx *c = arg;
    const struct part *p = c->p;
    if (s >= p->cap || !p->pub[s])
        return false;
    if (c->f == NULL)
        return true;
    const struct blob *b = p->pay[s];
    return filter_match(c->f, &p->ids[s], b ? b->data : NULL, b ? b->len : 0);
}

static float user_score(enum hnsw_metric m, float d)
{
    switch (m) {
    case HNSW_L2:
        return sqrtf(d > 0 ? d : 0);
    case HNSW_IP:
    case HNSW_COSINE:
        return 1.0f - d;
    default:
        return d;
    }
}

/* Every slot that may hold a visible point (caller holds rw shared). */
static int all_slots(struct part *p, uint32_t **out, size_t *n)
{
    uint32_t *v = malloc((p->cap ? p->cap : 1) * sizeof *v);
    size_t k = 0;
    if (v == NULL)
        return DV_ENOMEM;
    for (size_t s = 0; s < p->cap; s++)
        if (p->pub[s])
            v[k++] = (uint32_t)s;
    *out = v;
    *n = k;
    return DV_OK;
}

/* Estimated points matching an unindexed filter, from a fixed sample of slots. */
static uint64_t sample_estimate(struct part *p, const struct accept_ctx *c)
{
    size_t step = p->cap / 512 + 1, seen = 0, hit = 0;
    for (size_t s = 0; s < p->cap; s += step) {
        if (!p->pub[s])
            continue;
        seen++;
        hit += accept((uint32_t)s, (void *)c);
    }
    if (seen == 0)
        return p->map.n;
    return (uint64_t)((double)hit / (double)seen * (double)p->map.n) + (hit ? 1 : 0);
}

int part_search(struct part *p, const struct part_query *q, struct part_result *out,
                enum part_plan *plan_out, char *errmsg)
{
    struct accept_ctx c = {p, q->filter};
    enum part_plan plan = PART_PLAN_WALK;
    uint32_t *cands = NULL, n = 0;
    size_t nc = 0;
    int rc;

    out->hits = NULL;
    out->n = 0;
    if (q->k == 0 || q->vec == NULL) {
        dv_errmsg_set(errmsg, "search needs a vector and k >= 1");
        return DV_EINVAL;
    }
    if (q->k > PART_MAX_K || q->ef > PART_MAX_K) {
        dv_errmsg_set(errmsg, "search: k %u and ef %u must be at most %u", q->k, q->ef, PART_MAX_K);
        return DV_ERANGE;
    }
    struct hnsw_hit *hits = malloc(q->k * sizeof *hits);
    if (hits == NULL)
        return DV_ENOMEM;
    pthread_rwlock_rdlock(&p->rw);
    if (q->filter != NULL) {
        /*
         * Cost model, in distance computations: a filtered walk expands about ef / s nodes
         * of 2m links each (s = selectivity); an exact pass over indexed candidates costs a
         * distance each, plus a filter check unless the index answers the filter exactly; a
         * scan checks the filter on every point.
         */
        bool exact_ok = false;
        uint64_t total = p->map.n ? p->map.n : 1;
        uint64_t est = filter_estimate(q->filter, p->pidx, p->n_pidx, p->map.n, &exact_ok);
        if (!exact_ok)
            est = sample_estimate(p, &c);
        double sel = (double)(est ? est : 1) / (double)total;
        double ef = q->ef ? q->ef : p->o.index.ef_search;
        double walk = (ef > q->k ? ef : q->k) * 2.0 * p->o.index.m / sel;
        bool by_index = exact_ok && filter_index_exact(q->filter, p->pidx, p->n_pidx);
        double exact = (by_index ? 1.0 : 2.0) * (double)est, scan = (double)total + (double)est;
        if (exact_ok && (est <= p->o.exact_threshold || exact < walk) &&
            filter_candidates(q->filter, p->pidx, p->n_pidx, &cands, &nc) == DV_OK) {
            plan = PART_PLAN_INDEXED;
            if (by_index)
                c.f = NULL; /* every candidate matches: only visibility is left to check */
        } else if (!exact_ok && (est <= p->o.exact_threshold || scan < walk))
            plan = PART_PLAN_SCAN;
    }
    if (plan == PART_PLAN_SCAN && (rc = all_slots(p, &cands, &nc)) != DV_OK)
        goto out_unlock;
    if (plan == PART_PLAN_WALK) {
        struct hnsw_query hq = {q->vec, q->k, q->ef, accept, &c, q->quant, 0};
        rc = hnsw_search(p->ix, &hq, hits, &n, NULL);
        if (rc == DV_OK && n < q->k && q->filter != NULL) {
            /* Too few matches reached by the walk: an exact scan is the complete answer. */
            plan = PART_PLAN_WALK_SCAN;
            if ((rc = all_slots(p, &cands, &nc)) != DV_OK)
                goto out_unlock;
        }
    }
    if (plan != PART_PLAN_WALK)
        rc = hnsw_search_slots(p->ix, q->vec, q->k, cands, nc, accept, &c, hits, &n);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "search: %s", dv_strerror(rc));
        goto out_unlock;
    }
    out->hits = calloc(n ? n : 1, sizeof *out->hits);
    if (out->hits == NULL) {
        rc = DV_ENOMEM;
        goto out_unlock;
    }
    for (uint32_t i = 0; i < n && rc == DV_OK; i++) {
        rc = fill_hit(p, hits[i].slot, q->with_vector, q->with_payload, &out->hits[i]);
        out->hits[i].score = user_score(p->o.index.metric, hits[i].dist);
        out->n++;
    }
out_unlock:
    pthread_rwlock_unlock(&p->rw);
    free(cands);
    free(hits);
    if (rc != DV_OK)
        part_result_free(out);
    if (rc == DV_ENOMEM)
        dv_errmsg_set(errmsg, "out of memory in a search");
    if (plan_out != NULL)
        *plan_out = plan;
    return rc;
}

int part_count(struct part *p, const struct filter *f, uint64_t *n, char *errmsg)
{
    struct accept_ctx c = {p, f};
    uint32_t *cands = NULL;
    size_t nc = 0;
    uint64_t cnt = 0;

    pthread_rwlock_rdlock(&p->rw);
    if (f == NULL) {
        cnt = p->map.n;
    } else {
        bool exact_ok = false;
        filter_estimate(f, p->pidx, p->n_pidx, p->map.n, &exact_ok);
        if (exact_ok && filter_candidates(f, p->pidx, p->n_pidx, &cands, &nc) == DV_OK) {
            if (filter_index_exact(f, p->pidx, p->n_pidx))
                c.f = NULL;
            for (size_t i = 0; i < nc; i++)
                cnt += accept(cands[i], &c);
        } else {
            for (size_t s = 0; s < p->cap; s++)
                cnt += accept((uint32_t)s, &c);
        }
    }
    pthread_rwlock_unlock(&p->rw);
    free(cands);
    *n = cnt;
    return DV_OK;
}

/* Max-heap of slots by id, for the `limit` smallest ids of a scroll. */
static void idheap_sift_up(const struct part *p, uint32_t *h, size_t i)
{
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (pid_cmp(&p->ids[h[up]], &p->ids[h[i]]) >= 0)
            break;
        uint32_t t = h[up];
        h[up] = h[i];
        h[i] = t;
        i = up;
    }
}

static void idheap_sift_down(const struct part *p, uint32_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, big = i;
        if (l < n && pid_cmp(&p->ids[h[l]], &p->ids[h[big]]) > 0)
            big = l;
        if (l + 1 < n && pid_cmp(&p->ids[h[l + 1]], &p->ids[h[big]]) > 0)
            big = l + 1;
        if (big == i)
            return;
        uint32_t t = h[big];
        h[big] = h[i];
        h[i] = t;
        i = big;
    }
}

static int slot_id_cmp(const void *a, const void *b, void *arg)
{
    const struct part *p = arg;
    return pid_cmp(&p->ids[*(const uint32_t *)a], &p->ids[*(const uint32_t *)b]);
}

int part_scroll(struct part *p, const struct pid *from, uint32_t limit, const struct filter *f,
                bool with_vector, bool with_payload, struct part_result *out, struct pid *next,
                bool *more, char *errmsg)
{
    struct accept_ctx c = {p, f};
    size_t want = (size_t)limit + 1, n = 0;
    int rc = DV_OK;

    out->hits = NULL;
    out->n = 0;
    *more = false;
    if (limit == 0 || limit > PART_MAX_K) {
        dv_errmsg_set(errmsg, "scroll limit must be 1 to %u, not %u", PART_MAX_K, limit);
        return limit == 0 ? DV_EINVAL : DV_ERANGE;
    }
    uint32_t *h = malloc(want * sizeof *h);
    if (h == NULL)
        return DV_ENOMEM;
    pthread_rwlock_rdlock(&p->rw);
    for (size_t s = 0; s < p->cap; s++) {
        if (!p->pub[s] || (from != NULL && pid_cmp(&p->ids[s], from) < 0))
            continue;
        if (n == want && pid_cmp(&p->ids[s], &p->ids[h[0]]) >= 0)
            continue;
        if (!accept((uint32_t)s, &c))
            continue;
        if (n < want) {
            h[n++] = (uint32_t)s;
            idheap_sift_up(p, h, n - 1);
        } else {
            h[0] = (uint32_t)s;
            idheap_sift_down(p, h, n, 0);
        }
    }
    /* Sorting by id under the read lock: ids cannot change meanwhile. */
    qsort_r(h, n, sizeof *h, slot_id_cmp, p);
    if (n == want) {
        *more = true;
        *next = p->ids[h[limit]];
        n = limit;
    }
    out->hits = calloc(n ? n : 1, sizeof *out->hits);
    if (out->hits == NULL)
        rc = DV_ENOMEM;
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        rc = fill_hit(p, h[i], with_vector, with_payload, &out->hits[i]);
        out->n++;
    }
    pthread_rwlock_unlock(&p->rw);
    free(h);
    if (rc != DV_OK) {
        part_result_free(out);
        dv_errmsg_set(errmsg, "out of memory in a scroll");
    }
    return rc;
}

int part_digest(struct part *p, uint64_t *digest, uint64_t *count, uint64_t *lsn, char *errmsg)
{
    uint32_t dim = p->o.index.dim;
    float *v = malloc(dim * sizeof *v);
    if (v == NULL)
        return DV_ENOMEM;
    uint64_t sum = 0, n = 0;
    int rc = DV_OK;
    /* The write lock keeps writers out, so the digest and the LSN go together. */
    pthread_mutex_lock(&p->wmu);
    pthread_rwlock_rdlock(&p->rw);
    for (size_t s = 0; s < p->cap && rc == DV_OK; s++) {
        if (!p->pub[s])
            continue;
        if ((rc = hnsw_get_vector(p->ix, (uint32_t)s, v)) != DV_OK) {
            dv_errmsg_set(errmsg, "slot %zu: vector unreadable", s);
            break;
        }
        const uint64_t id[3] = {p->ids[s].hi, p->ids[s].lo, p->ids[s].kind};
        uint64_t h = hash64_bytes(id, sizeof id, 0x64696765ull);
        h = hash64_bytes(v, dim * sizeof *v, h);
        if (p->pay[s])
            h = hash64_bytes(p->pay[s]->data, p->pay[s]->len, h);
        sum += h;
        n++;
    }
    *lsn = __atomic_load_n(&p->applied_lsn, __ATOMIC_ACQUIRE);
    pthread_rwlock_unlock(&p->rw);
    pthread_mutex_unlock(&p->wmu);
    free(v);
    *digest = sum;
    *count = n;
    return rc;
}
