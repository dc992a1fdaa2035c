/* router_order.c - facet counts and the order_by scroll across a collection's partitions: one
 * call per partition (as count and scroll), the answers merged. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "router_int.h"

/* Facet values of one kind compare by type first (a key indexed with another kind on some
 * partition), then strings bytewise, integers and bools numerically. */
static int fval_cmp(const struct msg_facet_hit *a, const struct msg_facet_hit *b)
{
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if (a->type == MSG_FV_STR) {
        uint32_t n = a->s.len < b->s.len ? a->s.len : b->s.len;
        int c = n ? memcmp(a->s.p, b->s.p, n) : 0;
        return c != 0 ? c : (a->s.len > b->s.len) - (a->s.len < b->s.len);
    }
    return (a->i > b->i) - (a->i < b->i);
}

static int cmp_fval(const void *a, const void *b)
{
    return fval_cmp(a, b);
}

/* Qdrant's facet order: count descending, then value ascending. */
static int cmp_fcount(const void *a, const void *b)
{
    const struct msg_facet_hit *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return fval_cmp(x, y);
}

/*
 * Facet: every partition returns the counts of all its values (node limit 0), so the sums are
 * exact whatever `exact` says; the merged list keeps the `limit` values with the highest
 * counts. The reply costs one entry per distinct value of a partition (bounded by the message
 * size limit).
 */
int router_facet(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                 const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                 char *errmsg)
{
    uint32_t limit = req->u.facet_req.limit;
    if (limit == 0 || limit > PROTO_MAX_K) {
        dv_errmsg_set(errmsg, "facet limit must be 1 to %d, not %u", PROTO_MAX_K, limit);
        return DV_ERANGE;
    }
    struct msg sub = {.type = MSG_FACET, .u.facet_req = req->u.facet_req};
    sub.u.facet_req.limit = 0;
    int rc = router_fan_out(c, m, cl, &sub, t, turn, errmsg);
    if (rc != DV_OK)
        return rc;
    size_t total = 0, k = 0;
    for (size_t i = 0; i < t->n_calls; i++)
        total += t->calls[i].rep.m.u.facet_rep.n;
    struct msg_facet_hit *all = router_tmp_alloc(t, (total ? total : 1) * sizeof *all);
    if (all == NULL)
        return DV_ENOMEM;
    for (size_t i = 0; i < t->n_calls; i++) {
        const struct msg_facet_rep *f = &t->calls[i].rep.m.u.facet_rep;
        if (f->n > 0)
            memcpy(all + k, f->hits, f->n * sizeof *all);
        k += f->n;
    }
    /* equal values side by side, their counts summed into the first */
    qsort(all, total, sizeof *all, cmp_fval);
    size_t n = 0;
    for (size_t i = 0; i < total; i++) {
        if (n > 0 && fval_cmp(&all[n - 1], &all[i]) == 0)
            all[n - 1].count += all[i].count;
        else
            all[n++] = all[i];
    }
    qsort(all, n, sizeof *all, cmp_fcount);
    rep->u.facet_rep = (struct msg_facet_rep){all, (uint32_t)(n < limit ? n : limit)};
    return DV_OK;
}

struct oentry {
    struct msg_hit hit;
    struct msg_ordval v;
};

static int ordval_cmp(const struct msg_ordval *a, const struct msg_ordval *b)
{
    if (a->is_float || b->is_float) {
        double x = a->is_float ? a->f : (double)a->i, y = b->is_float ? b->f : (double)b->i;
        return (x > y) - (x < y);
    }
    return (a->i > b->i) - (a->i < b->i);
}

static int cmp_asc(const void *a, const void *b)
{
    const struct oentry *x = a, *y = b;
    int c = ordval_cmp(&x->v, &y->v);
    return c != 0 ? c : pid_cmp(&x->hit.id, &y->hit.id);
}

static int cmp_desc(const void *a, const void *b)
{
    const struct oentry *x = a, *y = b;
    int c = ordval_cmp(&y->v, &x->v);
    return c != 0 ? c : pid_cmp(&x->hit.id, &y->hit.id);
}

/*
 * order_by: every partition returns its first `limit` entries in (value, id) order from
 * start_from; the merged first `limit` of those are the collection's first `limit` (no entry
 * of a partition beyond its own first `limit` can be among them).
 */
int router_scroll_order(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                        const struct msg *req, struct msg *rep, struct coord_tmp *t, uint64_t turn,
                        char *errmsg)
{
    uint32_t limit = req->u.oscroll_req.limit;
    if (limit == 0 || limit > PROTO_MAX_K) {
        dv_errmsg_set(errmsg, "order_by limit must be 1 to %d, not %u", PROTO_MAX_K, limit);
        return DV_ERANGE;
    }
    struct msg sub = {.type = MSG_SCROLL_ORDER, .u.oscroll_req = req->u.oscroll_req};
    int rc = router_fan_out(c, m, cl, &sub, t, turn, errmsg);
    if (rc != DV_OK)
        return rc;
    size_t total = 0, k = 0;
    for (size_t i = 0; i < t->n_calls; i++)
        total += t->calls[i].rep.m.u.oscroll_rep.hits.n;
    struct oentry *all = router_tmp_alloc(t, (total ? total : 1) * sizeof *all);
    size_t n = total < limit ? total : limit;
    struct msg_hit *hits = router_tmp_alloc(t, (n ? n : 1) * sizeof *hits);
    struct msg_ordval *vals = router_tmp_alloc(t, (n ? n : 1) * sizeof *vals);
    if (all == NULL || hits == NULL || vals == NULL)
        return DV_ENOMEM;
    for (size_t i = 0; i < t->n_calls; i++) {
        const struct msg_oscroll_rep *o = &t->calls[i].rep.m.u.oscroll_rep;
        for (uint32_t j = 0; j < o->hits.n; j++)
            all[k++] = (struct oentry){o->hits.hits[j], o->vals[j]};
    }
    qsort(all, total, sizeof *all, req->u.oscroll_req.desc ? cmp_desc : cmp_asc);
    for (size_t i = 0; i < n; i++) {
        hits[i] = all[i].hit;
        vals[i] = all[i].v;
    }
    rep->u.oscroll_rep = (struct msg_oscroll_rep){{hits, (uint32_t)n}, vals};
    return DV_OK;
}
