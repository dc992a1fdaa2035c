/* handle_order.c - the node's facet and order_by scroll requests: the protocol's fields to a
 * replica's (part_order.c) and its results back. */
#include "handle_order.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "filter.h"
#include "handle_vec.h"

#define KEY_MAX 255 /* bytes of a payload key, as a payload index's */

/* The key as a C string into buf (KEY_MAX + 1 bytes): DV_EINVAL when empty, too long or
 * holding a NUL. */
static int key_of(struct msg_str k, char *buf, char *errmsg)
{
    if (k.len == 0 || k.len > KEY_MAX || memchr(k.p, '\0', k.len) != NULL) {
        dv_errmsg_set(errmsg, "key must be 1 to %d bytes without NUL", KEY_MAX);
        return DV_EINVAL;
    }
    memcpy(buf, k.p, k.len);
    buf[k.len] = '\0';
    return DV_OK;
}

/* The request's filter compiled and bound to p (*f NULL for none; the caller frees it). */
static int filter_of(struct part *p, struct msg_bytes fb, struct filter **f, char *errmsg)
{
    *f = NULL;
    if (fb.p == NULL)
        return DV_OK;
    int rc = filter_compile(fb.p, fb.len, f, errmsg);
    if (rc == DV_OK)
        rc = part_bind_filter(p, *f);
    return rc;
}

int ho_facet(struct part *p, const struct msg *req, struct msg *rep, struct buf *out, char *errmsg)
{
    const struct msg_facet_req *q = &req->u.facet_req;
    struct part_facets r = {0};
    struct msg_facet_hit *hits = NULL;
    struct filter *f = NULL;
    char key[KEY_MAX + 1];
    int rc = key_of(q->key, key, errmsg);
    if (rc == DV_OK)
        rc = filter_of(p, q->filter, &f, errmsg);
    if (rc == DV_OK)
        rc = part_facet(p, key, f, q->limit, &r, errmsg);
    if (rc == DV_OK && (hits = calloc(r.n ? r.n : 1, sizeof *hits)) == NULL)
        rc = DV_ENOMEM;
    if (rc == DV_OK) {
        for (size_t i = 0; i < r.n; i++) {
            const struct part_facet_hit *h = &r.hits[i];
            hits[i] = (struct msg_facet_hit){h->type == PART_FV_STR   ? MSG_FV_STR
                                             : h->type == PART_FV_INT ? MSG_FV_INT
                                                                      : MSG_FV_BOOL,
                                             {h->s, h->len},
                                             h->i,
                                             h->count};
        }
        rep->u.facet_rep = (struct msg_facet_rep){hits, (uint32_t)r.n};
        rc = msg_encode(rep, out, errmsg);
    }
    free(hits);
    part_facets_free(&r);
    filter_free(f);
    return rc;
}

int ho_scroll_order(struct part *p, const struct msg *req, struct msg *rep, struct buf *out,
                    char *errmsg)
{
    const struct msg_oscroll_req *q = &req->u.oscroll_req;
    struct part_result res = {0};
    struct part_ordval *pv = NULL;
    struct msg_ordval *vals = NULL;
    struct msg_hits hits = {0};
    struct filter *f = NULL;
    char key[KEY_MAX + 1];
    int rc = q->sample ? DV_OK : key_of(q->key, key, errmsg);
    if (rc == DV_OK)
        rc = filter_of(p, q->filter, &f, errmsg);
    if (rc == DV_OK && q->sample) {
        rc = part_sample(p, q->sample, q->limit, f, q->with_vector, q->with_payload, &res, &pv,
                         errmsg);
    } else if (rc == DV_OK) {
        struct part_order_req pq = {
            key, q->desc, {0}, q->limit, f, q->with_vector, q->with_payload};
        const struct msg_start *s = &q->start;
        pq.start = (struct part_start){s->type == MSG_START_INT     ? PART_START_INT
                                       : s->type == MSG_START_FLOAT ? PART_START_FLOAT
                                       : s->type == MSG_START_STR   ? PART_START_TIME
                                                                    : PART_START_NONE,
                                       s->i, s->f, s->s.p, s->s.len};
        rc = part_scroll_ordered(p, &pq, &res, &pv, errmsg);
    }
    if (rc == DV_OK)
        rc = hv_hits(p, &res, &hits);
    if (rc == DV_OK && (vals = calloc(res.n ? res.n : 1, sizeof *vals)) == NULL)
        rc = DV_ENOMEM;
    if (rc == DV_OK) {
        for (size_t i = 0; i < res.n; i++)
            vals[i] = (struct msg_ordval){pv[i].is_float, pv[i].i, pv[i].f};
        rep->u.oscroll_rep = (struct msg_oscroll_rep){hits, vals};
        rc = msg_encode(rep, out, errmsg);
    }
    free(vals);
    hv_hits_free(&hits);
    free(pv);
    part_result_free(&res);
    filter_free(f);
    return rc;
}
