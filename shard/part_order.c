/* part_order.c - a replica's reads through its payload indexes' order: facet counts and the
 * scroll in the order of a payload value (order_by). */
#include "part_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dtime.h"
#include "hash.h"

/* The payload index on `key`, or NULL (caller holds rw shared). */
static struct pindex *index_of(const struct part *p, const char *key)
{
    for (size_t i = 0; i < p->n_pidx; i++)
        if (strcmp(p->pdefs[i].key, key) == 0)
            return p->pidx[i];
    return NULL;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/*
 * The slots of the visible points matching f, sorted (caller holds rw shared): the filter's
 * index candidates when its indexes can enumerate them, else every slot, each checked.
 */
static int matching_slots(struct part *p, const struct filter *f, uint32_t **out, size_t *n)
{
    uint32_t *c = NULL;
    size_t nc = 0, k = 0;
    bool exact_ok = false;
    if (f != NULL) /* NULL: every visible point */
        filter_estimate(f, p->pidx, p->n_pidx, p->map.n, &exact_ok);
    if (exact_ok && filter_candidates(f, p->pidx, p->n_pidx, &c, &nc) == DV_OK) {
        for (size_t i = 0; i < nc; i++)
            if (part_slot_match(p, f, c[i]))
                c[k++] = c[i];
        if (k > 1)
            qsort(c, k, sizeof *c, u32_cmp);
    } else {
        free(c);
        c = malloc((p->cap ? p->cap : 1) * sizeof *c);
        if (c == NULL)
            return DV_ENOMEM;
        for (size_t s = 0; s < p->cap; s++)
            if (part_slot_match(p, f, (uint32_t)s))
                c[k++] = (uint32_t)s;
    }
    *out = c;
    *n = k;
    return DV_OK;
}

void part_facets_free(struct part_facets *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->hits[i].s);
    free(r->hits);
    r->hits = NULL;
    r->n = 0;
}

/* Copies the index's facet hit h (of an index of kind k) into o, owning its string. */
static int copy_facet_hit(enum pindex_kind k, const struct pindex_facet_hit *h,
                          struct part_facet_hit *o)
{
    char text[PID_TEXT_MAX];
    const char *s = h->s;
    size_t len = h->n;
    memset(o, 0, sizeof *o);
    o->count = h->count;
    switch (k) {
    case PINDEX_INTEGER:
        o->type = PART_FV_INT;
        o->i = h->i;
        return DV_OK;
    case PINDEX_BOOL:
        o->type = PART_FV_BOOL;
        o->i = h->i ? 1 : 0;
        return DV_OK;
    case PINDEX_UUID:
        len = pid_format(&h->id, text);
        s = text;
        break;
    default:
        break;
    }
    o->type = PART_FV_STR;
    o->s = malloc(len + 1);
    if (o->s == NULL)
        return DV_ENOMEM;
    memcpy(o->s, s, len);
    o->s[len] = '\0';
    o->len = (uint32_t)len;
    return DV_OK;
}

int part_facet(struct part *p, const char *key, const struct filter *f, size_t limit,
               struct part_facets *out, char *errmsg)
{
    struct pindex_facet_hit *hits = NULL;
    uint32_t *slots = NULL;
    size_t nh = 0, ns = 0;
    int rc = DV_OK;

    out->hits = NULL;
    out->n = 0;
    pthread_rwlock_rdlock(&p->rw);
    const struct pindex *ix = index_of(p, key);
    enum pindex_kind k = ix ? pindex_kind_of(ix) : PINDEX_GEO;
    if (ix == NULL || !(k == PINDEX_KEYWORD || k == PINDEX_BOOL || k == PINDEX_UUID ||
                        (k == PINDEX_INTEGER && pindex_params_of(ix)->lookup))) {
        dv_errmsg_set(errmsg,
                      "facet: \"%s\" has no keyword, integer (with lookup), bool or uuid index%s%s",
                      key, ix ? "; it has a " : "", ix ? pindex_kind_name(k) : "");
        rc = DV_EINVAL;
        goto out_unlock;
    }
    if (f != NULL && (rc = matching_slots(p, f, &slots, &ns)) != DV_OK)
        goto out_unlock;
    if ((rc = pindex_facet(ix, f ? slots : NULL, ns, limit, &hits, &nh)) != DV_OK)
        goto out_unlock;
    out->hits = calloc(nh ? nh : 1, sizeof *out->hits);
    if (out->hits == NULL)
        rc = DV_ENOMEM;
    /* Keyword strings point into the index: copied before the lock goes. */
    for (size_t i = 0; i < nh && rc == DV_OK; i++) {
        rc = copy_facet_hit(k, &hits[i], &out->hits[i]);
        out->n++;
    }
out_unlock:
    pthread_rwlock_unlock(&p->rw);
    free(hits);
    free(slots);
    if (rc != DV_OK)
        part_facets_free(out);
    if (rc == DV_ENOMEM)
        dv_errmsg_set(errmsg, "out of memory in a facet");
    return rc;
}

/* ---- order_by ---------------------------------------------------------------------------- */

struct oentry {
    uint32_t slot;
    struct pindex_ordval v;
};

struct order_scan {
    struct part *p;
    const struct filter *f;
    bool is_float, desc;
    uint32_t limit;
    struct oentry *e;
    size_t n, cap;
    int rc;
};

static int ordval_cmp(bool is_float, const struct pindex_ordval *a, const struct pindex_ordval *b)
{
    if (is_float)
        return (a->f > b->f) - (a->f < b->f);
    return (a->i > b->i) - (a->i < b->i);
}

/*
 * pindex_order's callback: keeps the matching entries until it holds `limit` of them and the
 * value changes, so that every point holding the last value kept is there to be ordered by id.
 */
static bool order_take(void *ctx, uint32_t slot, struct pindex_ordval v)
{
    struct order_scan *o = ctx;
    if (o->n >= o->limit && ordval_cmp(o->is_float, &v, &o->e[o->n - 1].v) != 0)
        return true;
    if (!part_slot_match(o->p, o->f, slot))
        return false;
    if (o->n == o->cap) {
        size_t ncap = o->cap ? 2 * o->cap : 64;
        struct oentry *ne = realloc(o->e, ncap * sizeof *ne);
        if (ne == NULL) {
            o->rc = DV_ENOMEM;
            return true;
        }
        o->e = ne;
        o->cap = ncap;
    }
    o->e[o->n++] = (struct oentry){slot, v};
    return false;
}

static int oentry_cmp(const void *a, const void *b, void *arg)
{
    const struct order_scan *o = arg;
    const struct oentry *x = a, *y = b;
    int c = ordval_cmp(o->is_float, &x->v, &y->v);
    if (c != 0)
        return o->desc ? -c : c;
    return pid_cmp(&o->p->ids[x->slot], &o->p->ids[y->slot]);
}

/* The start of an order_by scan as the index of kind k files values: DV_EINVAL naming why. */
static int start_value(const struct part_order_req *q, enum pindex_kind k, struct pindex_ordval *v,
                       char *errmsg)
{
    const struct part_start *s = &q->start;
    memset(v, 0, sizeof *v);
    if (s->type == PART_START_TIME) {
        if (k != PINDEX_DATETIME || !dtime_parse(s->s, s->len, &v->i)) {
            dv_errmsg_set(errmsg, "order_by: start_from \"%.*s\" is %s", (int)(s->len & 0xff), s->s,
                          k == PINDEX_DATETIME ? "not a datetime"
                                               : "a string, but the index on the key is numeric");
            return DV_EINVAL;
        }
        return DV_OK;
    }
    if (k == PINDEX_FLOAT) {
        v->f = s->type == PART_START_INT ? (double)s->i : s->f;
        return DV_OK;
    }
    if (s->type == PART_START_INT) {
        v->i = s->i;
        return DV_OK;
    }
    double d = q->desc ? floor(s->f) : ceil(s->f);
    if (isnan(d)) {
        dv_errmsg_set(errmsg, "order_by: start_from is not a number");
        return DV_EINVAL;
    }
    v->i = d >= 9223372036854775807.0    ? INT64_MAX
           : d <= -9223372036854775808.0 ? INT64_MIN
                                         : (int64_t)d;
    return DV_OK;
}

int part_scroll_ordered(struct part *p, const struct part_order_req *q, struct part_result *out,
                        struct part_ordval **vals, char *errmsg)
{
    struct order_scan o = {p, q->filter, false, q->desc, q->limit, NULL, 0, 0, DV_OK};
    struct pindex_ordval from;
    int rc = DV_OK;

    out->hits = NULL;
    out->n = 0;
    *vals = NULL;
    if (q->limit == 0 || q->limit > PART_MAX_K) {
        dv_errmsg_set(errmsg, "order_by: limit must be 1 to %u, not %u", PART_MAX_K, q->limit);
        return q->limit == 0 ? DV_EINVAL : DV_ERANGE;
    }
    pthread_rwlock_rdlock(&p->rw);
    const struct pindex *ix = index_of(p, q->key);
    enum pindex_kind k = ix ? pindex_kind_of(ix) : PINDEX_GEO;
    if (ix == NULL || !(k == PINDEX_FLOAT || k == PINDEX_DATETIME ||
                        (k == PINDEX_INTEGER && pindex_params_of(ix)->range))) {
        dv_errmsg_set(errmsg,
                      "order_by: \"%s\" has no range index (order_by needs an integer index with "
                      "range, a float or a datetime index on the key)%s%s",
                      q->key, ix ? "; it has a " : "", ix ? pindex_kind_name(k) : "");
        rc = DV_EINVAL;
        goto out_unlock;
    }
    o.is_float = k == PINDEX_FLOAT;
    if (q->start.type != PART_START_NONE && (rc = start_value(q, k, &from, errmsg)) != DV_OK)
        goto out_unlock;
    rc = pindex_order(ix, q->desc, q->start.type != PART_START_NONE ? &from : NULL, order_take, &o);
    if (rc == DV_OK)
        rc = o.rc;
    if (rc != DV_OK)
        goto out_unlock;
    /* Values come in order already; equal ones get ordered by id (ids are stable under rw). */
    if (o.n > 1)
        qsort_r(o.e, o.n, sizeof *o.e, oentry_cmp, &o);
    size_t n = o.n < q->limit ? o.n : q->limit;
    out->hits = calloc(n ? n : 1, sizeof *out->hits);
    *vals = malloc((n ? n : 1) * sizeof **vals);
    if (out->hits == NULL || *vals == NULL)
        rc = DV_ENOMEM;
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        rc = part_fill_hit(p, o.e[i].slot, q->with_vector, q->with_payload, &out->hits[i]);
        out->n++;
        (*vals)[i] = (struct part_ordval){o.is_float, o.e[i].v.i, o.e[i].v.f};
    }
out_unlock:
    pthread_rwlock_unlock(&p->rw);
    free(o.e);
    if (rc != DV_OK) {
        part_result_free(out);
        free(*vals);
        *vals = NULL;
    }
    if (rc == DV_ENOMEM)
        dv_errmsg_set(errmsg, "out of memory in an order_by scroll");
    return rc;
}

/* A sampled slot and its key; a max-heap of the `limit` smallest keys. */
struct skey {
    uint64_t key;
    uint32_t slot;
};

static void sift_down(struct skey *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].key > h[m].key)
            m = l;
        if (r < n && h[r].key > h[m].key)
            m = r;
        if (m == i)
            return;
        struct skey t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static int skey_cmp(const void *a, const void *b)
{
    const struct skey *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

int part_sample(struct part *p, uint64_t seed, uint32_t limit, const struct filter *f,
                bool with_vector, bool with_payload, struct part_result *out,
                struct part_ordval **vals, char *errmsg)
{
    uint32_t *slots = NULL;
    size_t n = 0, nh = 0;
    struct skey *h = NULL;
    int rc;

    out->hits = NULL;
    out->n = 0;
    *vals = NULL;
    if (limit == 0 || limit > PART_MAX_K) {
        dv_errmsg_set(errmsg, "sample: limit must be 1 to %u, not %u", PART_MAX_K, limit);
        return limit == 0 ? DV_EINVAL : DV_ERANGE;
    }
    pthread_rwlock_rdlock(&p->rw);
    rc = matching_slots(p, f, &slots, &n);
    if (rc == DV_OK && (h = malloc((limit < n ? limit : n ? n : 1) * sizeof *h)) == NULL)
        rc = DV_ENOMEM;
    for (size_t i = 0; rc == DV_OK && i < n; i++) {
        /* the key of a point is a hash of the seed and its id: the same on every replica and
         * partition, so the smallest keys over all partitions are a uniform sample */
        const struct pid *id = &p->ids[slots[i]];
        uint64_t k =
            hash64_u64(hash64_u64(id->lo ^ seed) ^ id->hi ^ ((uint64_t)id->kind << 56)) >> 1;
        if (nh < limit) {
            h[nh++] = (struct skey){k, slots[i]};
            if (nh == limit)
                for (size_t j = nh / 2; j-- > 0;)
                    sift_down(h, nh, j);
        } else if (k < h[0].key) {
            h[0] = (struct skey){k, slots[i]};
            sift_down(h, nh, 0);
        }
    }
    if (rc == DV_OK && nh > 1)
        qsort(h, nh, sizeof *h, skey_cmp);
    if (rc == DV_OK) {
        out->hits = calloc(nh ? nh : 1, sizeof *out->hits);
        *vals = malloc((nh ? nh : 1) * sizeof **vals);
        if (out->hits == NULL || *vals == NULL)
            rc = DV_ENOMEM;
    }
    for (size_t i = 0; i < nh && rc == DV_OK; i++) {
        rc = part_fill_hit(p, h[i].slot, with_vector, with_payload, &out->hits[i]);
        out->n++;
        (*vals)[i] = (struct part_ordval){false, (int64_t)h[i].key, 0};
    }
    pthread_rwlock_unlock(&p->rw);
    free(slots);
    free(h);
    if (rc != DV_OK) {
        part_result_free(out);
        free(*vals);
        *vals = NULL;
        dv_errmsg_set(errmsg, "out of memory in a sample");
    }
    return rc;
}
