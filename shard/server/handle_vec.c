/* handle_vec.c - named vectors between the protocol and a replica (handle_vec.h). */
#include "handle_vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "node.h"

static int space_of(struct part *p, struct msg_str name, const char *what, char *errmsg)
{
    int i = part_space_find(p, name.p ? name.p : "", name.len);
    if (i < 0) {
        if (name.len == 0)
            dv_errmsg_set(errmsg, "%s: the collection has named vectors only; name one", what);
        else
            dv_errmsg_set(errmsg, "%s: the collection has no vector named \"%.*s\"", what,
                          (int)name.len, name.p);
    }
    return i;
}

/* Checks a wire vector's lengths against the space it goes to. */
static int check_lengths(const struct part_space *d, const struct msg_nvec *v, const char *what,
                         char *errmsg)
{
    switch (d->kind) {
    case PART_VEC_DENSE:
        if (v->idx != NULL || v->nv != d->index.dim || v->n != v->nv) {
            dv_errmsg_set(errmsg, "%s: vector \"%s\" has %u dimensions, the collection %u%s", what,
                          d->name, v->nv, d->index.dim, v->idx ? " (and it is dense)" : "");
            return v->idx ? DV_EINVAL : DV_EDIM;
        }
        return DV_OK;
    case PART_VEC_SPARSE:
        if (v->nv != v->n || (v->n > 0 && v->idx == NULL)) {
            dv_errmsg_set(errmsg, "%s: sparse vector \"%s\" needs indices and values of one length",
                          what, d->name);
            return DV_EINVAL;
        }
        return DV_OK;
    case PART_VEC_MULTI:
        if (v->idx != NULL || v->n == 0 || (uint64_t)v->n * d->index.dim != v->nv) {
            dv_errmsg_set(errmsg, "%s: multivector \"%s\" rows must have %u dimensions each", what,
                          d->name, d->index.dim);
            return DV_EDIM;
        }
        return DV_OK;
    }
    return DV_EINVAL;
}

int hv_points(struct part *p, const struct msg_upsert_req *u, struct part_point **pts_out,
              struct part_vec **vecs_out, char *errmsg)
{
    uint32_t ns;
    const struct part_space *defs = part_spaces(p, &ns);
    size_t total = 0;
    *pts_out = NULL;
    *vecs_out = NULL;
    if (u->named != NULL)
        for (uint32_t i = 0; i < u->n; i++)
            total += u->named[i].n;
    struct part_point *pts = calloc(u->n ? u->n : 1, sizeof *pts);
    struct part_vec *vecs = calloc(total ? total : 1, sizeof *vecs);
    if (pts == NULL || vecs == NULL) {
        free(pts);
        free(vecs);
        return DV_ENOMEM;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < u->n; i++) {
        pts[i].id = u->ids[i];
        if (u->payloads != NULL) {
            pts[i].payload = u->payloads[i].p;
            pts[i].payload_len = u->payloads[i].len;
        }
        if (u->named == NULL) {
            pts[i].vec = u->vecs + (size_t)i * u->dim;
            pts[i].dim = u->dim;
            continue;
        }
        if (u->dim != 0) {
            dv_errmsg_set(errmsg, "point %u: unnamed and named vectors together", i);
            goto bad;
        }
        pts[i].vecs = &vecs[k];
        for (uint32_t j = 0; j < u->named[i].n; j++) {
            const struct msg_nvec *v = &u->named[i].v[j];
            char what[64];
            snprintf(what, sizeof what, "point %u", i);
            int s = space_of(p, v->name, what, errmsg);
            if (s < 0)
                goto bad;
            int rc = check_lengths(&defs[s], v, what, errmsg);
            if (rc != DV_OK) {
                free(pts);
                free(vecs);
                return rc;
            }
            vecs[k++] = (struct part_vec){(uint32_t)s, v->n, v->v, v->idx};
            pts[i].n_vecs++;
        }
    }
    *pts_out = pts;
    *vecs_out = vecs;
    return DV_OK;
bad:
    free(pts);
    free(vecs);
    return DV_EINVAL;
}

int hv_spaces(struct part *p, const struct msg_str *names, uint32_t n, uint32_t *out, char *errmsg)
{
    if (n > PART_MAX_SPACES) {
        dv_errmsg_set(errmsg, "%u vector names, at most %d", n, PART_MAX_SPACES);
        return DV_EINVAL;
    }
    for (uint32_t i = 0; i < n; i++) {
        int s = space_of(p, names[i], "delete vectors", errmsg);
        if (s < 0)
            return DV_EINVAL;
        out[i] = (uint32_t)s;
    }
    return DV_OK;
}

int hv_query(struct part *p, const struct msg_query *mq, struct part_query *pq, char *errmsg)
{
    uint32_t ns;
    const struct part_space *defs = part_spaces(p, &ns);
    int s = space_of(p, mq->using, "search", errmsg);
    if (s < 0)
        return DV_EINVAL;
    const struct part_space *d = &defs[s];
    memset(pq, 0, sizeof *pq);
    pq->vec = mq->vec;
    pq->k = mq->k;
    pq->ef = mq->ef;
    pq->with_payload = mq->with_payload;
    pq->with_vector = mq->with_vector;
    pq->quant = HNSW_QUANT_AUTO;
    pq->space = (uint32_t)s;
    switch (d->kind) {
    case PART_VEC_DENSE:
        if (mq->dim != d->index.dim || mq->idx != NULL) {
            dv_errmsg_set(errmsg, "query has %u dimensions, vector \"%s\" of the collection %u",
                          mq->dim, d->name, d->index.dim);
            return DV_EDIM;
        }
        break;
    case PART_VEC_SPARSE:
        if (mq->dim > 0 && mq->idx == NULL) {
            dv_errmsg_set(errmsg, "a query on sparse vector \"%s\" needs indices", d->name);
            return DV_EINVAL;
        }
        pq->n = mq->dim;
        pq->idx = mq->idx;
        pq->idf_df = mq->idf_df;
        pq->idf_docs = mq->idf_docs;
        break;
    case PART_VEC_MULTI: {
        uint32_t rows = mq->rows ? mq->rows : 1;
        if (mq->idx != NULL || d->index.dim == 0 || mq->dim != rows * d->index.dim) {
            dv_errmsg_set(errmsg, "a query on multivector \"%s\" needs rows of %u dimensions",
                          d->name, d->index.dim);
            return DV_EDIM;
        }
        pq->n = rows;
        break;
    }
    }
    for (uint32_t i = 0; i < mq->n_vec_names; i++) {
        int v = space_of(p, mq->vec_names[i], "with_vector", errmsg);
        if (v < 0)
            return DV_EINVAL;
        pq->vec_mask |= 1u << v;
    }
    return DV_OK;
}

int hv_hits(struct part *p, const struct part_result *r, struct msg_hits *out)
{
    uint32_t ns;
    const struct part_space *defs = part_spaces(p, &ns);
    out->n = (uint32_t)r->n;
    out->hits = calloc(r->n ? r->n : 1, sizeof *out->hits);
    if (out->hits == NULL)
        return DV_ENOMEM;
    for (size_t i = 0; i < r->n; i++) {
        const struct part_hit *h = &r->hits[i];
        struct msg_hit *x = &out->hits[i];
        x->id = h->id;
        x->score = h->score;
        x->vec = h->vec;
        x->dim = h->vec ? defs[0].index.dim : 0;
        x->payload.p = h->payload;
        x->payload.len = (uint32_t)h->payload_len;
        if (h->vecs == NULL)
            continue;
        x->named.v = calloc(h->n_vecs ? h->n_vecs : 1, sizeof *x->named.v);
        if (x->named.v == NULL)
            return DV_ENOMEM;
        x->named.n = h->n_vecs;
        for (uint32_t j = 0; j < h->n_vecs; j++) {
            const struct part_hvec *hv = &h->vecs[j];
            const struct part_space *d = &defs[hv->space];
            struct msg_nvec *v = &x->named.v[j];
            v->name = (struct msg_str){d->name, (uint32_t)strlen(d->name)};
            v->n = hv->n;
            v->v = hv->v;
            v->idx = hv->idx;
            v->nv = d->kind == PART_VEC_MULTI ? hv->n * d->index.dim : hv->n;
        }
    }
    return DV_OK;
}

void hv_hits_free(struct msg_hits *h)
{
    if (h->hits != NULL)
        for (uint32_t i = 0; i < h->n; i++)
            free(h->hits[i].named.v);
    free(h->hits);
    h->hits = NULL;
    h->n = 0;
}

int hv_sparse_stats(struct node *n, const struct msg *req, struct msg *rep, char *errmsg,
                    struct buf *out)
{
    const struct msg_sstats_req *s = &req->u.sstats_req;
    uint32_t np = s->n_parts;
    struct msg_sstats_part *parts = calloc(np ? np : 1, sizeof *parts);
    uint64_t *df = calloc((size_t)(np ? np : 1) * (s->n_terms ? s->n_terms : 1), sizeof *df);
    char(*perr)[DV_ERRMSG_SIZE] = calloc(np ? np : 1, sizeof *perr);
    int rc = DV_ENOMEM;
    if (parts == NULL || df == NULL || perr == NULL)
        goto out;
    for (uint32_t i = 0; i < np; i++) {
        struct node_replica *r;
        uint64_t known = 0;
        parts[i].part = s->parts[i].part;
        int prc = node_acquire(n, req->addr.coll.p, req->addr.coll.len, s->parts[i].part,
                               s->parts[i].epoch, &r, &known, perr[i]);
        if (prc == DV_OK) {
            int sp = part_space_find(r->part, s->using.p ? s->using.p : "", s->using.len);
            if (sp < 0) {
                dv_errmsg_set(perr[i], "no vector named \"%.*s\"", (int)s->using.len,
                              s->using.p ? s->using.p : "");
                prc = DV_EINVAL;
            } else {
                prc = part_sparse_stats(r->part, (uint32_t)sp, s->terms, s->n_terms,
                                        df + (size_t)i * s->n_terms, &parts[i].docs, perr[i]);
            }
            node_release(n, r);
        }
        if (prc != DV_OK) {
            parts[i].err = (struct msg_error){prc, {perr[i], (uint32_t)strlen(perr[i])}, known};
            continue;
        }
        parts[i].df = df + (size_t)i * s->n_terms;
        parts[i].n = s->n_terms;
    }
    rep->u.sstats_rep = (struct msg_sstats_rep){parts, np};
    rc = msg_encode(rep, out, errmsg);
out:
    free(parts);
    free(df);
    free(perr);
    return rc;
}
