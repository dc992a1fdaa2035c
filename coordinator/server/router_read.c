/* router_read.c - Qdrant's read consistency: a read sent to several in-sync replicas of every
 * partition and their answers resolved into one (resolve.c). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "resolve.h"
#include "router_int.h"

/* ---- read consistency --------------------------------------------------------------------- */

/* One read (get, count, scroll, search) from one in-sync replica per partition. */
static int read_once(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                     const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                     char *errmsg)
{
    switch (req->type) {
    case MSG_P_GET:
        return router_by_ids(c, m, cl, req, rep, t, turn, errmsg);
    case MSG_P_COUNT:
        return router_count(c, m, cl, req, rep, t, turn, errmsg);
    case MSG_P_SCROLL:
        return router_scroll(c, m, cl, req, rep, t, turn, errmsg);
    default:
        return router_search(c, m, cl, req, rep, t, turn, errmsg);
    }
}

/* How many in-sync replicas a read of consistency `level` asks per partition (*r) and in how
 * many of their answers a point must be (*need). DV_EBUSY naming the partition when too few
 * serve. */
static int read_plan(const struct cmap *m, const struct cmap_coll *cl, uint32_t level, uint32_t *r,
                     uint32_t *need, char *errmsg)
{
    uint32_t rf = cl->cfg.rf ? cl->cfg.rf : 1, avail = UINT32_MAX, worst = 0, majority = rf / 2 + 1;
    for (uint32_t p = 0; p < cl->cfg.n_parts; p++) {
        uint32_t k = 0;
        for (uint32_t j = 0; j < cl->parts[p].n; j++)
            k += cl->parts[p].state[j] == CMAP_REPLICA_ACTIVE &&
                 router_serves(m, cl->parts[p].nodes[j]);
        if (k < avail)
            avail = k, worst = p;
    }
    const char *name = level == MSG_READ_MAJORITY ? "majority"
                       : level == MSG_READ_QUORUM ? "quorum"
                       : level == MSG_READ_ALL    ? "all"
                                                  : NULL;
    *r = level == MSG_READ_MAJORITY ? majority
         : level == MSG_READ_QUORUM ? (avail < rf ? avail : rf)
         : level == MSG_READ_ALL    ? rf
                                    : level;
    *need = level == MSG_READ_QUORUM ? majority : *r;
    if (*r < *need)
        *r = *need;
    if (*r <= avail)
        return DV_OK;
    char what[32];
    if (name)
        snprintf(what, sizeof what, "%s", name);
    else
        snprintf(what, sizeof what, "%u", level);
    dv_errmsg_set(errmsg,
                  "unavailable for read consistency %s: collection %s partition %u has %u "
                  "in-sync replica%s serving, the read needs %u (replication factor %u); retry "
                  "when replicas recover, or read with a lower consistency",
                  what, cl->name, worst, avail, avail == 1 ? "" : "s", *r, rf);
    return DV_EBUSY;
}

static int cmp_pid(const void *a, const void *b)
{
    return pid_cmp(a, &((const struct msg_hit *)b)->id);
}

/* A get or scroll whose replicas still disagree (a write in flight) is read again, up to this
 * many times, 1, 2, 3 .. ms apart; then it fails (DV_EBUSY) rather than leave points out. */
#define READ_AGREE_TRIES 20

/* The answers of a get or scroll resolved (allocated in `t`); *disagree: some point was held
 * by fewer than `need` of them alike. */
static int resolve_points(const struct msg *req, struct msg *ans, uint32_t r, uint32_t need,
                          struct msg *rep, struct coord_tmp *t, bool *disagree)
{
    struct msg_hits lists[PROTO_MAX_RF];
    uint32_t sum = 0, n;
    int rc;
    for (uint32_t i = 0; i < r; i++) {
        lists[i] = req->type == MSG_P_GET ? ans[i].u.get_rep : ans[i].u.scroll_rep.hits;
        sum += lists[i].n;
    }
    struct msg_hit *out = router_tmp_alloc(t, (sum ? sum : 1) * sizeof *out);
    if (out == NULL || (rc = resolve_hits(lists, r, need, out, &n)) != DV_OK)
        return out == NULL ? DV_ENOMEM : rc;
    if (req->type == MSG_P_GET) {
        *disagree = resolve_distinct(lists, r, NULL) > n;
        /* In the request's order, as a get answers. */
        struct msg_hit *ordered = router_tmp_alloc(t, (n ? n : 1) * sizeof *ordered);
        if (ordered == NULL)
            return DV_ENOMEM;
        uint32_t k = 0;
        for (uint32_t i = 0; i < req->u.get_req.n && k < n; i++) {
            const struct msg_hit *h = bsearch(&req->u.get_req.ids[i], out, n, sizeof *out, cmp_pid);
            if (h)
                ordered[k++] = *h;
        }
        rep->u.get_rep = (struct msg_hits){ordered, k};
        return DV_OK;
    }
    /* Scroll: the page ends before the first cursor any answer names (no point is skipped or
     * given twice by the next page). */
    struct msg_scroll_rep *o = &rep->u.scroll_rep;
    memset(o, 0, sizeof *o);
    for (uint32_t i = 0; i < r; i++)
        if (ans[i].u.scroll_rep.more &&
            (!o->more || pid_cmp(&ans[i].u.scroll_rep.next, &o->next) < 0)) {
            o->more = true;
            o->next = ans[i].u.scroll_rep.next;
        }
    while (o->more && n > 0 && pid_cmp(&out[n - 1].id, &o->next) >= 0)
        n--;
    *disagree = resolve_distinct(lists, r, o->more ? &o->next : NULL) > n;
    o->hits = (struct msg_hits){out, n};
    return DV_OK;
}

/* The r answers of one consistent read, each in a tmp of its own (t->subs[i]). */
static int read_replicas(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                         const struct msg *req, struct msg *ans, uint32_t r, struct coord_tmp *t,
                         uint64_t turn, char *errmsg)
{
    for (uint32_t i = 0; i < r; i++) {
        memset(&ans[i], 0, sizeof ans[i]);
        if ((t->subs[i] = calloc(1, sizeof *t->subs[i])) == NULL)
            return DV_ENOMEM;
        int rc = read_once(c, m, cl, req, &ans[i], t->subs[i], turn + i, errmsg);
        if (rc != DV_OK) {
            /* its calls: the router's retry looks for "stale map" among them */
            t->calls = t->subs[i]->calls, t->n_calls = t->subs[i]->n_calls;
            t->subs[i]->calls = NULL, t->subs[i]->n_calls = 0;
            return rc;
        }
    }
    return DV_OK;
}

/*
 * Qdrant's read consistency: the read sent to r in-sync replicas of every partition (answer i
 * reads partition p from replica turn + i + p of its in-sync ones, so the r answers read
 * distinct replicas), one after the other, and the answers resolved (resolve.c): points held
 * by `need` of them, with the same vector and payload; a count reached by `need` of them.
 * Where Qdrant answers without a point its replicas disagree on, a get or scroll here is read
 * again (from the next replicas in turn) until they agree: a point being rewritten is never
 * missing from the answer (the torture suite's history checker found it missing from strict
 * reads concurrent with a write of it; test_failover test_strict_read_point_rewritten).
 */
int router_consistent_read(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                           const struct msg *req, struct msg *rep, struct coord_tmp *t,
                           char *errmsg)
{
    uint64_t turn = atomic_fetch_add(&c->read_turn, 1); /* read_node */
    uint32_t r = 1, need = 1;
    int rc;
    if (req->read_consistency > 1 &&
        (rc = read_plan(m, cl, req->read_consistency, &r, &need, errmsg)) != DV_OK)
        return rc;
    if (r <= 1)
        return read_once(c, m, cl, req, rep, t, turn, errmsg);
    struct msg ans[PROTO_MAX_RF];
    memset(ans, 0, sizeof ans);
    if (req->type == MSG_P_GET || req->type == MSG_P_SCROLL) {
        for (uint32_t attempt = 1;; attempt++) {
            bool disagree = false;
            /* each attempt asks the next replicas in turn: others may agree already */
            if ((rc = read_replicas(c, m, cl, req, ans, r, t, turn + attempt - 1, errmsg)) !=
                    DV_OK ||
                (rc = resolve_points(req, ans, r, need, rep, t->subs[0], &disagree)) != DV_OK ||
                !disagree)
                return rc;
            if (attempt == READ_AGREE_TRIES)
                break;
            for (uint32_t i = 0; i < r; i++) {
                router_tmp_free(t->subs[i]);
                t->subs[i] = NULL;
            }
            clock_sleep_ms(attempt);
        }
        dv_errmsg_set(errmsg,
                      "collection %s: its replicas still disagree on points being written after "
                      "%d reads; retry, or read with a lower consistency",
                      cl->name, READ_AGREE_TRIES);
        return DV_EBUSY;
    }
    /* A search asks every replica for twice the hits: a point in flight near the top of one
     * replica's list would otherwise push a point they all hold out of that list. */
    struct msg wide = *req;
    if (req->type == MSG_P_SEARCH) {
        uint32_t nq = req->u.csearch_req.n_queries;
        struct msg_query *qs = router_tmp_alloc(t, (nq ? nq : 1) * sizeof *qs);
        if (qs == NULL)
            return DV_ENOMEM;
        for (uint32_t q = 0; q < nq; q++) {
            qs[q] = req->u.csearch_req.queries[q];
            qs[q].k = qs[q].k <= PROTO_MAX_K / 2 ? 2 * qs[q].k : PROTO_MAX_K;
        }
        wide.u.csearch_req.queries = qs;
    }
    if ((rc = read_replicas(c, m, cl, &wide, ans, r, t, turn, errmsg)) != DV_OK)
        return rc;
    if (req->type == MSG_P_COUNT) {
        uint64_t counts[PROTO_MAX_RF];
        for (uint32_t i = 0; i < r; i++)
            counts[i] = ans[i].u.count_rep.count;
        rep->u.count_rep.count = resolve_count(counts, r, need);
        return DV_OK;
    }
    struct msg_hits lists[PROTO_MAX_RF];
    uint32_t nq = req->u.csearch_req.n_queries, sum = 0;
    for (uint32_t i = 0; i < r; i++)
        for (uint32_t q = 0; q < nq && q < ans[i].u.csearch_rep.n; q++)
            sum += ans[i].u.csearch_rep.results[q].n;
    struct msg_hits *results = router_tmp_alloc(t, (nq ? nq : 1) * sizeof *results);
    struct msg_hit *pool = router_tmp_alloc(t, (sum ? sum : 1) * sizeof *pool);
    if (results == NULL || pool == NULL)
        return DV_ENOMEM;
    uint32_t used = 0;
    for (uint32_t q = 0; q < nq; q++) {
        for (uint32_t i = 0; i < r; i++)
            lists[i] = q < ans[i].u.csearch_rep.n ? ans[i].u.csearch_rep.results[q]
                                                  : (struct msg_hits){NULL, 0};
        uint32_t n;
        if ((rc = resolve_hits(lists, r, need, pool + used, &n)) != DV_OK)
            return rc;
        uint32_t metric = cl->cfg.metric;
        char qerr[DV_ERRMSG_SIZE];
        if (router_check_query(cl, &req->u.csearch_req.queries[q], q, &metric, qerr) != DV_OK)
            metric = cl->cfg.metric; /* checked by every replica's search already */
        qsort(pool + used, n, sizeof *pool, msg_hit_order(metric));
        uint32_t k = req->u.csearch_req.queries[q].k;
        results[q] = (struct msg_hits){pool + used, n < k ? n : k};
        used += n;
    }
    rep->u.csearch_rep = (struct msg_csearch_rep){results, nq, false, NULL, 0};
    for (uint32_t i = 0; i < r; i++)
        if (ans[i].u.csearch_rep.partial) /* partitions some answer lacks */
            rep->u.csearch_rep = (struct msg_csearch_rep){
                results, nq, true, ans[i].u.csearch_rep.failed, ans[i].u.csearch_rep.n_failed};
    return DV_OK;
}
