/* part_space.c - a replica's vector spaces (named dense, sparse and multi vectors): definitions,
 * per-slot maps, point slots, and checking and encoding vectors. */
#include "part_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "log.h"

const struct part_space *part_spaces(const struct part *p, uint32_t *n)
{
    *n = p->nsp;
    return p->defs;
}

int part_space_find(const struct part *p, const char *name, size_t len)
{
    for (uint32_t i = 0; i < p->nsp; i++)
        if (strlen(p->sp[i].def.name) == len && memcmp(p->sp[i].def.name, name, len) == 0)
            return (int)i;
    return -1;
}

int part_space_check(const struct part_space *d, char *errmsg)
{
    size_t nl = strnlen(d->name, PART_NAME_MAX);
    if (nl == PART_NAME_MAX) {
        dv_errmsg_set(errmsg, "vector name longer than %d bytes", PART_NAME_MAX - 1);
        return DV_EINVAL;
    }
    if (d->kind != PART_VEC_DENSE && d->kind != PART_VEC_SPARSE && d->kind != PART_VEC_MULTI) {
        dv_errmsg_set(errmsg, "vector \"%s\": unknown kind %d", d->name, (int)d->kind);
        return DV_EINVAL;
    }
    if (d->kind == PART_VEC_SPARSE)
        return DV_OK;
    struct hnsw_index *probe;
    if (hnsw_create(&d->index, &probe) != DV_OK) {
        dv_errmsg_set(errmsg, "vector \"%s\": bad index parameters (dim %u, m %u)", d->name,
                      d->index.dim, d->index.m);
        return DV_EINVAL;
    }
    hnsw_destroy(probe);
    return DV_OK;
}

int part_spaces_init(struct part *p, const struct part_space *defs, uint32_t n, char *errmsg)
{
    if (n == 0 || n > PART_MAX_SPACES) {
        dv_errmsg_set(errmsg, "a replica has 1 to %d vectors, not %u", PART_MAX_SPACES, n);
        return DV_EINVAL;
    }
    p->sp = calloc(n, sizeof *p->sp);
    p->defs = calloc(n, sizeof *p->defs);
    if (p->sp == NULL || p->defs == NULL)
        return DV_ENOMEM;
    p->nsp = n;
    for (uint32_t i = 0; i < n; i++) {
        int rc = part_space_check(&defs[i], errmsg);
        if (rc != DV_OK)
            return rc;
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(defs[j].name, defs[i].name) == 0) {
                dv_errmsg_set(errmsg, "vector \"%s\" defined twice", defs[i].name);
                return DV_EINVAL;
            }
        }
        p->sp[i].def = defs[i];
        p->defs[i] = defs[i];
        if (defs[i].kind == PART_VEC_SPARSE && sparse_create(&p->sp[i].inv) != DV_OK)
            return DV_ENOMEM;
    }
    if (p->sp[0].def.kind == PART_VEC_DENSE)
        p->o.index = p->sp[0].def.index;
    else
        memset(&p->o.index, 0, sizeof p->o.index);
    return part_spaces_reserve(p, 0, p->cap);
}

void part_spaces_free(struct part *p)
{
    for (uint32_t i = 0; i < p->nsp; i++) {
        struct vspace *v = &p->sp[i];
        hnsw_destroy(v->ix);
        free(v->vmap);
        free(v->pmap);
        if (v->vb != NULL)
            for (size_t s = 0; s < p->cap; s++)
                free(v->vb[s]);
        free(v->vb);
        sparse_free(v->inv);
    }
    free(p->sp);
    free(p->defs);
    p->sp = NULL;
    p->defs = NULL;
    p->nsp = 0;
}

int part_spaces_reserve(struct part *p, size_t old_cap, size_t new_cap)
{
    for (uint32_t i = 0; i < p->nsp; i++) {
        struct vspace *v = &p->sp[i];
        if (v->def.kind == PART_VEC_DENSE) {
            uint32_t *m = realloc(v->pmap, (new_cap ? new_cap : 1) * sizeof *m);
            if (m == NULL)
                return DV_ENOMEM;
            for (size_t s = old_cap; s < new_cap; s++)
                m[s] = PART_NO_SLOT;
            v->pmap = m;
        } else {
            struct blob **b = realloc(v->vb, (new_cap ? new_cap : 1) * sizeof *b);
            if (b == NULL)
                return DV_ENOMEM;
            memset(b + old_cap, 0, (new_cap - old_cap) * sizeof *b);
            v->vb = b;
        }
    }
    return DV_OK;
}

int part_vmap_reserve(struct vspace *v, size_t n)
{
    if (n <= v->vcap)
        return DV_OK;
    size_t nc = v->vcap ? v->vcap : 1024;
    while (nc < n)
        nc *= 2;
    uint32_t *m = realloc(v->vmap, nc * sizeof *m);
    if (m == NULL)
        return DV_ENOMEM;
    for (size_t s = v->vcap; s < nc; s++)
        m[s] = PART_NO_SLOT;
    v->vmap = m;
    v->vcap = nc;
    return DV_OK;
}

bool part_slot_has(const struct part *p, uint32_t i, uint32_t s)
{
    const struct vspace *v = &p->sp[i];
    if (s >= p->cap)
        return false;
    return v->def.kind == PART_VEC_DENSE ? v->pmap[s] != PART_NO_SLOT : v->vb[s] != NULL;
}

int part_slot_alloc(struct part *p, uint32_t *s)
{
    if (p->nfree > 0) {
        *s = p->freel[--p->nfree];
        return DV_OK;
    }
    if (p->used >= UINT32_MAX - 1)
        return DV_EFULL;
    int rc = part_reserve_slots(p, p->used + 1);
    if (rc != DV_OK)
        return rc;
    *s = (uint32_t)p->used++;
    return DV_OK;
}

void part_slot_free(struct part *p, uint32_t s)
{
    /* The stack never needs more than `used` entries: room was made when s was handed out. */
    p->freel[p->nfree++] = s;
}

/* ---- vectors: checking and encoding ------------------------------------------------------ */

static int check_floats(const float *v, size_t n, const char *what, const char *name, char *errmsg)
{
    for (size_t d = 0; d < n; d++) {
        if (!isfinite(v[d])) {
            dv_errmsg_set(errmsg, "%s: vector \"%s\"[%zu] is not a finite number", what, name, d);
            return DV_ENAN;
        }
    }
    return DV_OK;
}

int part_vec_check(const struct vspace *sp, const struct part_vec *v, const char *what,
                   char *errmsg)
{
    const char *name = sp->def.name;
    uint32_t dim = sp->def.index.dim;
    switch (sp->def.kind) {
    case PART_VEC_DENSE:
        if (v->v == NULL || v->n != dim) {
            dv_errmsg_set(errmsg, "%s: vector \"%s\" has %u dimensions, the collection %u", what,
                          name, v->v ? v->n : 0, dim);
            return DV_EDIM;
        }
        return check_floats(v->v, dim, what, name, errmsg);
    case PART_VEC_MULTI:
        if (v->n == 0 || v->n > PART_MAX_ROWS || v->v == NULL) {
            dv_errmsg_set(errmsg, "%s: multivector \"%s\" has %u rows, 1 to %d allowed", what, name,
                          v->n, PART_MAX_ROWS);
            return v->n == 0 ? DV_EINVAL : DV_ETOOBIG;
        }
        return check_floats(v->v, (size_t)v->n * dim, what, name, errmsg);
    case PART_VEC_SPARSE:
        if (v->n > PART_MAX_TERMS || (v->n > 0 && (v->v == NULL || v->idx == NULL))) {
            dv_errmsg_set(errmsg, "%s: sparse vector \"%s\" has %u terms, at most %d allowed", what,
                          name, v->n, PART_MAX_TERMS);
            return DV_ETOOBIG;
        }
        int rc = check_floats(v->v, v->n, what, name, errmsg);
        if (rc != DV_OK)
            return rc;
        /* Terms must be distinct: sort a copy to see. */
        uint32_t *t = malloc((v->n ? v->n : 1) * sizeof *t);
        if (t == NULL)
            return DV_ENOMEM;
        memcpy(t, v->idx, v->n * sizeof *t);
        for (uint32_t i = 1; i < v->n; i++) { /* insertion sort is fine for sorted input */
            uint32_t x = t[i], j = i;
            while (j > 0 && t[j - 1] > x) {
                t[j] = t[j - 1];
                j--;
            }
            t[j] = x;
        }
        for (uint32_t i = 1; i < v->n && rc == DV_OK; i++) {
            if (t[i] == t[i - 1]) {
                dv_errmsg_set(errmsg, "%s: sparse vector \"%s\" holds index %u twice", what, name,
                              t[i]);
                rc = DV_EINVAL;
            }
        }
        free(t);
        return rc;
    }
    return DV_EINVAL;
}

struct term_w {
    uint32_t t;
    float w;
};

static int cmp_term(const void *a, const void *b)
{
    uint32_t x = ((const struct term_w *)a)->t, y = ((const struct term_w *)b)->t;
    return x < y ? -1 : x > y;
}

int part_vec_encode(const struct vspace *sp, const struct part_vec *v, struct buf *b)
{
    uint32_t dim = sp->def.index.dim;
    int rc = DV_OK;
    switch (sp->def.kind) {
    case PART_VEC_DENSE:
        return buf_append(b, v->v, (size_t)dim * sizeof(float));
    case PART_VEC_MULTI: {
        rc = buf_put_u32(b, v->n);
        size_t at = b->len;
        rc |= buf_append(b, v->v, (size_t)v->n * dim * sizeof(float));
        if (rc == DV_OK && sp->def.index.metric == HNSW_COSINE) {
            /* the bytes may sit at any offset of b: normalise an aligned copy of each row */
            float *row = malloc((dim ? dim : 1) * sizeof *row);
            if (row == NULL)
                return DV_ENOMEM;
            for (uint32_t r = 0; r < v->n; r++) {
                uint8_t *at_r = b->data + at + (size_t)r * dim * sizeof(float);
                memcpy(row, at_r, dim * sizeof(float));
                dist_normalize(row, dim);
                memcpy(at_r, row, dim * sizeof(float));
            }
            free(row);
        }
        return rc ? DV_ENOMEM : DV_OK;
    }
    case PART_VEC_SPARSE: {
        struct term_w *tw = malloc((v->n ? v->n : 1) * sizeof *tw);
        if (tw == NULL)
            return DV_ENOMEM;
        for (uint32_t i = 0; i < v->n; i++)
            tw[i] = (struct term_w){v->idx[i], v->v[i]};
        qsort(tw, v->n, sizeof *tw, cmp_term);
        rc = buf_put_u32(b, v->n);
        for (uint32_t i = 0; i < v->n && rc == DV_OK; i++)
            rc = buf_put_u32(b, tw[i].t);
        for (uint32_t i = 0; i < v->n && rc == DV_OK; i++)
            rc = buf_append(b, &tw[i].w, sizeof(float));
        free(tw);
        return rc ? DV_ENOMEM : DV_OK;
    }
    }
    return DV_EINVAL;
}

bool part_blob_valid(const struct vspace *sp, const uint8_t *data, size_t len)
{
    uint32_t dim = sp->def.index.dim;
    if (sp->def.kind == PART_VEC_DENSE)
        return len == (size_t)dim * sizeof(float);
    if (len < 4)
        return false;
    uint32_t n = buf_rd_le32(data);
    if (sp->def.kind == PART_VEC_MULTI)
        return n >= 1 && n <= PART_MAX_ROWS && len == 4 + (size_t)n * dim * sizeof(float);
    if (n > PART_MAX_TERMS || len != 4 + (size_t)n * 8)
        return false;
    for (uint32_t i = 1; i < n; i++)
        if (buf_rd_le32(data + 4 + 4 * (size_t)i) <= buf_rd_le32(data + 4 + 4 * (size_t)(i - 1)))
            return false;
    return true;
}
