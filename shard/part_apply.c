/* part_apply.c - a replica's WAL records: encoding, decoding and applying them (the same code
 * for live writes, WAL replay and catch-up from another replica), and publishing slots. */
#include "part_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mpk.h"

/* ---- records: encoding and decoding ------------------------------------------------------- */

void part_rec_upsert_free(struct part_rec_upsert *u)
{
    free(u->ids);
    free(u->vecs);
    free(u->pay);
    free(u->plen);
    free(u->rv);
    free(u->rvoff);
    free(u->own);
    memset(u, 0, sizeof *u);
}

int part_rec_upsert_alloc(struct part_rec_upsert *u, size_t n, uint32_t dim)
{
    memset(u, 0, sizeof *u);
    u->n = n;
    u->ids = malloc((n ? n : 1) * sizeof *u->ids);
    u->vecs = malloc((n ? n : 1) * dim * sizeof(float));
    u->pay = calloc(n ? n : 1, sizeof *u->pay);
    u->plen = calloc(n ? n : 1, sizeof *u->plen);
    if (!u->ids || !u->vecs || !u->pay || !u->plen) {
        part_rec_upsert_free(u);
        return DV_ENOMEM;
    }
    return DV_OK;
}

int part_rec_encode_upsert(const struct part_rec_upsert *u, uint32_t dim, struct buf *b)
{
    int rc = mpw_array(b, 3);
    rc |= mpw_array(b, (uint32_t)u->n);
    for (size_t i = 0; i < u->n && rc == DV_OK; i++)
        rc |= mpw_pid(b, &u->ids[i]);
    rc |= mpw_bin(b, u->vecs, u->n * dim * sizeof(float));
    rc |= mpw_array(b, (uint32_t)u->n);
    for (size_t i = 0; i < u->n && rc == DV_OK; i++)
        rc |= u->pay[i] ? mpw_bin(b, u->pay[i], u->plen[i]) : mpw_nil(b);
    return rc ? DV_ENOMEM : DV_OK;
}

static int decode_upsert(const void *body, size_t len, uint32_t dim, struct part_rec_upsert *u)
{
    struct mpk r;
    uint32_t na, n, n2, vl;
    const void *vp;
    mpk_init(&r, body, len);
    if (mpk_array(&r, &na) || na != 3 || mpk_array(&r, &n))
        return DV_ECORRUPT;
    if (part_rec_upsert_alloc(u, n, dim) != DV_OK)
        return DV_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        if (mpk_pid(&r, &u->ids[i]) != DV_OK)
            goto err;
    if (mpk_bin(&r, &vp, &vl) || (size_t)vl != (size_t)n * dim * sizeof(float))
        goto err;
    memcpy(u->vecs, vp, vl);
    if (mpk_array(&r, &n2) || n2 != n)
        goto err;
    for (uint32_t i = 0; i < n; i++) {
        if (mpk_peek(&r) == MPK_NIL) {
            mpk_nil(&r);
            continue;
        }
        const void *pp;
        if (mpk_bin(&r, &pp, &u->plen[i]))
            goto err;
        u->pay[i] = pp;
    }
    return DV_OK;
err:
    part_rec_upsert_free(u);
    return DV_ECORRUPT;
}

int part_rec_encode_vectors(const struct part_rec_upsert *u, bool with_payload, struct buf *b)
{
    int rc = mpw_array(b, with_payload ? 3 : 2);
    rc |= part_rec_encode_ids(b, u->ids, u->n);
    if (with_payload) {
        rc |= mpw_array(b, (uint32_t)u->n);
        for (size_t i = 0; i < u->n && rc == DV_OK; i++)
            rc |= u->pay[i] ? mpw_bin(b, u->pay[i], u->plen[i]) : mpw_nil(b);
    }
    rc |= mpw_array(b, (uint32_t)u->n);
    for (size_t i = 0; i < u->n && rc == DV_OK; i++) {
        rc |= mpw_array(b, (uint32_t)(u->rvoff[i + 1] - u->rvoff[i]));
        for (size_t j = u->rvoff[i]; j < u->rvoff[i + 1] && rc == DV_OK; j++) {
            rc |= mpw_array(b, 2) | mpw_u64(b, u->rv[j].space);
            rc |= mpw_bin(b, u->rv[j].data, u->rv[j].len);
        }
    }
    return rc ? DV_ENOMEM : DV_OK;
}

/* Decodes REC_UPSERT_V / REC_VECTORS; vectors point into body. */
static int decode_vectors(struct part *p, const void *body, size_t len, bool with_payload,
                          struct part_rec_upsert *u)
{
    struct mpk r;
    uint32_t na, n, n2;
    memset(u, 0, sizeof *u);
    mpk_init(&r, body, len);
    if (mpk_array(&r, &na) || na != (with_payload ? 3u : 2u) || mpk_array(&r, &n))
        return DV_ECORRUPT;
    u->n = n;
    u->ids = malloc((n ? n : 1) * sizeof *u->ids);
    u->pay = calloc(n ? n : 1, sizeof *u->pay);
    u->plen = calloc(n ? n : 1, sizeof *u->plen);
    u->rvoff = calloc((size_t)n + 1, sizeof *u->rvoff);
    if (!u->ids || !u->pay || !u->plen || !u->rvoff)
        goto nomem;
    for (uint32_t i = 0; i < n; i++)
        if (mpk_pid(&r, &u->ids[i]) != DV_OK)
            goto bad;
    if (with_payload) {
        if (mpk_array(&r, &n2) || n2 != n)
            goto bad;
        for (uint32_t i = 0; i < n; i++) {
            if (mpk_peek(&r) == MPK_NIL) {
                mpk_nil(&r);
                continue;
            }
            const void *pp;
            if (mpk_bin(&r, &pp, &u->plen[i]))
                goto bad;
            u->pay[i] = pp;
        }
    }
    if (mpk_array(&r, &n2) || n2 != n)
        goto bad;
    size_t cap = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t nv;
        if (mpk_array(&r, &nv) || nv > p->nsp)
            goto bad;
        u->rvoff[i] = u->nrv;
        for (uint32_t j = 0; j < nv; j++) {
            uint32_t two, bl;
            uint64_t sp;
            const void *bp;
            if (mpk_array(&r, &two) || two != 2 || mpk_u64(&r, &sp) || sp >= p->nsp ||
                mpk_bin(&r, &bp, &bl) || !part_blob_valid(&p->sp[sp], bp, bl))
                goto bad;
            for (size_t k = u->rvoff[i]; k < u->nrv; k++)
                if (u->rv[k].space == sp)
                    goto bad;
            if (u->nrv == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct part_rvec *nr = realloc(u->rv, nc * sizeof *nr);
                if (nr == NULL)
                    goto nomem;
                u->rv = nr;
                cap = nc;
            }
            u->rv[u->nrv++] = (struct part_rvec){(uint32_t)sp, bl, bp};
        }
    }
    u->rvoff[n] = u->nrv;
    return DV_OK;
bad:
    part_rec_upsert_free(u);
    return DV_ECORRUPT;
nomem:
    part_rec_upsert_free(u);
    return DV_ENOMEM;
}

/* Reads an array of ids into a malloc'd array. */
static int decode_ids(struct mpk *r, struct pid **ids, size_t *n)
{
    uint32_t cnt;
    if (mpk_array(r, &cnt))
        return DV_ECORRUPT;
    struct pid *v = malloc((cnt ? cnt : 1) * sizeof *v);
    if (v == NULL)
        return DV_ENOMEM;
    for (uint32_t i = 0; i < cnt; i++) {
        if (mpk_pid(r, &v[i]) != DV_OK) {
            free(v);
            return DV_ECORRUPT;
        }
    }
    *ids = v;
    *n = cnt;
    return DV_OK;
}

int part_rec_encode_ids(struct buf *b, const struct pid *ids, size_t n)
{
    int rc = mpw_array(b, (uint32_t)n);
    for (size_t i = 0; i < n && rc == DV_OK; i++)
        rc = mpw_pid(b, &ids[i]);
    return rc;
}

/* Checks that [p, p+n) is exactly one msgpack map. */
bool part_is_map(const void *data, size_t n)
{
    struct mpk r;
    mpk_init(&r, data, n);
    return mpk_peek(&r) == MPK_MAP && mpk_skip(&r) == DV_OK && mpk_done(&r);
}

static struct blob *blob_new(const void *data, size_t n)
{
    struct blob *b = malloc(sizeof *b + n);
    if (b != NULL) {
        b->len = (uint32_t)n;
        memcpy(b->data, data, n);
    }
    return b;
}

/* ---- publishing (caller holds rw exclusively) --------------------------------------------- */

/* What a write took out of sight, released once readers may run again. */
struct trash {
    struct blob **b;
    size_t nb, cb;
    uint64_t *v; /* space << 32 | index slot, to delete from the space's index */
    size_t nv, cv;
};

static int trash_blob(struct trash *t, struct blob *b)
{
    if (b == NULL)
        return DV_OK;
    if (t->nb == t->cb) {
        size_t nc = t->cb ? t->cb * 2 : 64;
        struct blob **n = realloc(t->b, nc * sizeof *n);
        if (n == NULL) {
            free(b); /* unreachable by readers only after the lock: see trash_empty */
            return DV_ENOMEM;
        }
        t->b = n;
        t->cb = nc;
    }
    t->b[t->nb++] = b;
    return DV_OK;
}

static int trash_vslot(struct trash *t, uint32_t space, uint32_t vs)
{
    if (t->nv == t->cv) {
        size_t nc = t->cv ? t->cv * 2 : 64;
        uint64_t *n = realloc(t->v, nc * sizeof *n);
        if (n == NULL)
            return DV_ENOMEM;
        t->v = n;
        t->cv = nc;
    }
    t->v[t->nv++] = (uint64_t)space << 32 | vs;
    return DV_OK;
}

/* After the write lock is released: tombstones in the indexes, memory freed. */
static void trash_empty(struct part *p, struct trash *t)
{
    for (size_t i = 0; i < t->nv; i++)
        hnsw_delete(p->sp[t->v[i] >> 32].ix, (uint32_t)t->v[i]);
    for (size_t i = 0; i < t->nb; i++)
        free(t->b[i]);
    free(t->b);
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* Takes the vector of space i off point slot s. */
static int detach(struct part *p, uint32_t i, uint32_t s, struct trash *t)
{
    struct vspace *v = &p->sp[i];
    int rc = DV_OK;
    if (v->def.kind == PART_VEC_DENSE) {
        uint32_t vs = v->pmap[s];
        if (vs == PART_NO_SLOT)
            return DV_OK;
        v->vmap[vs] = PART_NO_SLOT;
        v->pmap[s] = PART_NO_SLOT;
        rc = trash_vslot(t, i, vs);
    } else {
        if (v->vb[s] == NULL)
            return DV_OK;
        if (v->inv != NULL)
            sparse_remove(v->inv, s);
        rc = trash_blob(t, v->vb[s]);
        v->vb[s] = NULL;
    }
    v->points--;
    return rc;
}

static int attach_dense(struct part *p, uint32_t i, uint32_t s, uint32_t vs)
{
    struct vspace *v = &p->sp[i];
    int rc = part_vmap_reserve(v, (size_t)vs + 1);
    if (rc != DV_OK)
        return rc;
    v->vmap[vs] = s;
    v->pmap[s] = vs;
    v->points++;
    return DV_OK;
}

static int attach_blob(struct part *p, uint32_t i, uint32_t s, struct blob *b)
{
    struct vspace *v = &p->sp[i];
    if (v->inv != NULL) {
        uint32_t n = buf_rd_le32(b->data);
        int rc = sparse_add(v->inv, s, (const uint32_t *)(b->data + 4),
                            (const float *)(b->data + 4 + 4 * (size_t)n), n);
        if (rc != DV_OK) {
            free(b);
            return rc;
        }
    }
    v->vb[s] = b;
    v->points++;
    return DV_OK;
}

/* Takes point slot s out of sight: vectors, id map, payload indexes, pub; frees the slot. */
static int unpublish(struct part *p, uint32_t s, struct trash *t)
{
    int rc = DV_OK;
    for (uint32_t i = 0; i < p->nsp; i++)
        rc |= detach(p, i, s, t);
    struct blob *b = p->pay[s];
    if (b != NULL) {
        for (size_t i = 0; i < p->n_pidx; i++)
            pindex_remove(p->pidx[i], s, b->data, b->len);
        p->payload_bytes -= b->len;
        rc |= trash_blob(t, b);
    }
    idmap_del(&p->map, p->ids, &p->ids[s]);
    p->pay[s] = NULL;
    p->pub[s] = 0;
    part_slot_free(p, s);
    return rc ? DV_ENOMEM : DV_OK;
}

/* Makes point slot s hold id with payload b (vectors are attached by the caller). */
static int publish(struct part *p, uint32_t s, const struct pid *id, struct blob *b)
{
    p->ids[s] = *id;
    p->pay[s] = b;
    int rc = idmap_put(&p->map, p->ids, s);
    if (rc != DV_OK)
        return rc;
    p->pub[s] = 1;
    if (b != NULL) {
        p->payload_bytes += b->len;
        for (size_t i = 0; i < p->n_pidx && rc == DV_OK; i++)
            rc = pindex_add(p->pidx[i], s, b->data, b->len);
    }
    return rc;
}

/* Changes point slot s's payload to b (old one to the trash). */
static int republish_payload(struct part *p, uint32_t s, struct blob *nb, struct trash *t)
{
    struct blob *ob = p->pay[s];
    int rc = DV_OK;
    if (ob != NULL) {
        for (size_t i = 0; i < p->n_pidx; i++)
            pindex_remove(p->pidx[i], s, ob->data, ob->len);
        p->payload_bytes -= ob->len;
        rc = trash_blob(t, ob);
    }
    p->pay[s] = nb;
    if (nb != NULL) {
        p->payload_bytes += nb->len;
        for (size_t i = 0; i < p->n_pidx && rc == DV_OK; i++)
            rc = pindex_add(p->pidx[i], s, nb->data, nb->len);
    }
    return rc;
}

/* ---- apply ------------------------------------------------------------------------------ */

int part_apply_upsert(struct part *p, const struct part_rec_upsert *u, char *errmsg)
{
    size_t n = u->n;
    uint32_t *slots = malloc((n ? n : 1) * sizeof *slots);
    struct blob **nb = calloc(n ? n : 1, sizeof *nb);
    struct trash t = {0};
    int rc = DV_ENOMEM;

    if (!slots || !nb)
        goto out;
    if (p->sp[0].def.kind != PART_VEC_DENSE) {
        dv_errmsg_set(errmsg, "an upsert record of the default vector, which this replica lacks");
        rc = DV_ECORRUPT;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (u->pay[i] != NULL && (nb[i] = blob_new(u->pay[i], u->plen[i])) == NULL)
            goto out;
    rc = hnsw_insert_batch(p->sp[0].ix, u->vecs, n, p->o.insert_threads, slots);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "index insert: %s", dv_strerror(rc));
        goto out;
    }
    pthread_rwlock_wrlock(&p->rw);
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &u->ids[i]);
        if (s != IDMAP_EMPTY)
            rc = unpublish(p, s, &t);
        if (rc == DV_OK)
            rc = part_slot_alloc(p, &s);
        if (rc == DV_OK) {
            rc = publish(p, s, &u->ids[i], nb[i]);
            nb[i] = NULL;
        }
        if (rc == DV_OK)
            rc = attach_dense(p, 0, s, slots[i]);
    }
    pthread_rwlock_unlock(&p->rw);
    trash_empty(p, &t);
    if (rc != DV_OK)
        dv_errmsg_set(errmsg, "publishing points: %s", dv_strerror(rc));
out:
    if (nb != NULL)
        for (size_t i = 0; i < n; i++)
            free(nb[i]);
    free(nb);
    free(slots);
    if (rc == DV_ENOMEM && errmsg[0] == '\0')
        dv_errmsg_set(errmsg, "out of memory applying an upsert of %zu points", n);
    return rc;
}

int part_apply_upsert_v(struct part *p, const struct part_rec_upsert *u, bool replace, char *errmsg)
{
    size_t n = u->n, nrv = u->nrv;
    uint32_t *vslot = malloc((nrv ? nrv : 1) * sizeof *vslot);
    struct blob **vb = calloc(nrv ? nrv : 1, sizeof *vb);
    struct blob **nb = calloc(n ? n : 1, sizeof *nb);
    float *tmp = NULL;
    size_t *which = malloc((nrv ? nrv : 1) * sizeof *which);
    struct trash t = {0};
    int rc = DV_ENOMEM;

    if (!vslot || !vb || !nb || !which)
        goto out;
    for (size_t j = 0; j < nrv; j++)
        vslot[j] = PART_NO_SLOT;
    if (replace)
        for (size_t i = 0; i < n; i++)
            if (u->pay[i] != NULL && (nb[i] = blob_new(u->pay[i], u->plen[i])) == NULL)
                goto out;
    /* Blobs of sparse and multi vectors, built before the lock. */
    for (size_t j = 0; j < nrv; j++) {
        if (p->sp[u->rv[j].space].def.kind != PART_VEC_DENSE &&
            (vb[j] = blob_new(u->rv[j].data, u->rv[j].len)) == NULL)
            goto out;
    }
    /* Dense vectors: one batch insert per space, from an aligned copy. */
    rc = DV_OK;
    for (uint32_t i = 0; i < p->nsp && rc == DV_OK; i++) {
        struct vspace *v = &p->sp[i];
        size_t k = 0, dim = v->def.index.dim;
        if (v->def.kind != PART_VEC_DENSE)
            continue;
        for (size_t j = 0; j < nrv; j++)
            if (u->rv[j].space == i)
                which[k++] = j;
        if (k == 0)
            continue;
        free(tmp);
        tmp = malloc(k * dim * sizeof *tmp);
        uint32_t *got = malloc(k * sizeof *got);
        if (tmp == NULL || got == NULL) {
            free(got);
            rc = DV_ENOMEM;
            break;
        }
        for (size_t q = 0; q < k; q++)
            memcpy(tmp + q * dim, u->rv[which[q]].data, dim * sizeof(float));
        rc = hnsw_insert_batch(v->ix, tmp, k, p->o.insert_threads, got);
        for (size_t q = 0; q < k; q++)
            vslot[which[q]] = got[q];
        free(got);
        if (rc != DV_OK)
            dv_errmsg_set(errmsg, "index insert (vector \"%s\"): %s", v->def.name, dv_strerror(rc));
    }
    if (rc != DV_OK)
        goto out_unused;
    pthread_rwlock_wrlock(&p->rw);
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &u->ids[i]);
        if (replace) {
            if (s != IDMAP_EMPTY)
                rc = unpublish(p, s, &t);
            if (rc == DV_OK)
                rc = part_slot_alloc(p, &s);
            if (rc == DV_OK) {
                rc = publish(p, s, &u->ids[i], nb[i]);
                nb[i] = NULL;
            }
        } else if (s == IDMAP_EMPTY) {
            continue; /* update of a point deleted meanwhile: its new vectors go unused */
        }
        for (size_t j = u->rvoff[i]; j < u->rvoff[i + 1] && rc == DV_OK; j++) {
            uint32_t sp = u->rv[j].space;
            if (!replace)
                rc = detach(p, sp, s, &t);
            if (rc != DV_OK)
                break;
            if (p->sp[sp].def.kind == PART_VEC_DENSE) {
                rc = attach_dense(p, sp, s, vslot[j]);
                if (rc == DV_OK)
                    vslot[j] = PART_NO_SLOT;
            } else {
                rc = attach_blob(p, sp, s, vb[j]);
                vb[j] = NULL;
            }
        }
    }
    pthread_rwlock_unlock(&p->rw);
    if (rc != DV_OK)
        dv_errmsg_set(errmsg, "publishing points: %s", dv_strerror(rc));
out_unused:
    /* Index slots inserted but not attached (missing points, failures) become tombstones. */
    for (size_t j = 0; j < nrv; j++)
        if (vslot[j] != PART_NO_SLOT)
            hnsw_delete(p->sp[u->rv[j].space].ix, vslot[j]);
    trash_empty(p, &t);
out:
    if (vb != NULL)
        for (size_t j = 0; j < nrv; j++)
            free(vb[j]);
    if (nb != NULL)
        for (size_t i = 0; i < n; i++)
            free(nb[i]);
    free(vb);
    free(nb);
    free(vslot);
    free(which);
    free(tmp);
    if (rc == DV_ENOMEM && errmsg[0] == '\0')
        dv_errmsg_set(errmsg, "out of memory applying a write of %zu points", n);
    return rc;
}

int part_apply_delete_vectors(struct part *p, const struct pid *ids, size_t n,
                              const uint32_t *spaces, uint32_t ns)
{
    struct trash t = {0};
    int rc = DV_OK;
    pthread_rwlock_wrlock(&p->rw);
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &ids[i]);
        if (s == IDMAP_EMPTY)
            continue;
        for (uint32_t j = 0; j < ns && rc == DV_OK; j++)
            rc = detach(p, spaces[j], s, &t);
    }
    pthread_rwlock_unlock(&p->rw);
    trash_empty(p, &t);
    return rc;
}

int part_apply_delete(struct part *p, const struct pid *ids, size_t n, size_t *deleted)
{
    struct trash t = {0};
    size_t nold = 0;
    int rc = DV_OK;
    pthread_rwlock_wrlock(&p->rw);
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &ids[i]);
        if (s != IDMAP_EMPTY) {
            rc = unpublish(p, s, &t);
            nold++;
        }
    }
    pthread_rwlock_unlock(&p->rw);
    trash_empty(p, &t);
    if (deleted != NULL)
        *deleted = nold;
    return rc;
}

/* Appends to out the map `base` (may be NULL: empty) with the entries of map `add` merged in
 * (an entry of add replaces base's entry of the same key). */
static int merge_maps(const uint8_t *base, size_t blen, const uint8_t *add, size_t alen,
                      struct buf *out)
{
    struct mpk r, ar;
    uint32_t nb = 0, na = 0, kept = 0;
    struct buf k = BUF_INIT;
    int rc = DV_OK;
    mpk_init(&ar, add, alen);
    if (mpk_map(&ar, &na) != DV_OK)
        return DV_ECORRUPT;
    if (base != NULL) {
        mpk_init(&r, base, blen);
        if (mpk_map(&r, &nb) != DV_OK)
            return DV_ECORRUPT;
    }
    for (uint32_t i = 0; i < nb && rc == DV_OK; i++) {
        const uint8_t *ks, *vs;
        size_t kl, vl;
        const char *key;
        uint32_t keylen;
        struct mpk kr;
        if (mpk_span(&r, &ks, &kl) || mpk_span(&r, &vs, &vl)) {
            rc = DV_ECORRUPT;
            break;
        }
        mpk_init(&kr, ks, kl);
        const uint8_t *v;
        size_t vlen;
        if (mpk_str(&kr, &key, &keylen) == DV_OK &&
            mpk_map_find(add, alen, key, keylen, &v, &vlen) == DV_OK)
            continue;
        rc |= buf_append(&k, ks, kl) | buf_append(&k, vs, vl);
        kept++;
    }
    if (rc == DV_OK)
        rc = mpw_map(out, kept + na) | buf_append(out, k.data, k.len) |
             buf_append(out, ar.p, (size_t)(ar.end - ar.p));
    buf_free(&k);
    return rc == DV_OK ? DV_OK : rc == DV_ECORRUPT ? DV_ECORRUPT : DV_ENOMEM;
}

/* Appends to out the map `cur` (may be NULL) with `add` merged into the object at path
 * (len bytes, dot-separated keys). */
static int set_at(const uint8_t *cur, size_t clen, const char *path, size_t len, const uint8_t *add,
                  size_t alen, struct buf *out)
{
    const char *dot = memchr(path, '.', len);
    size_t hl = dot ? (size_t)(dot - path) : len;
    const uint8_t *sub = NULL;
    size_t sublen = 0;
    if (cur != NULL && mpk_map_find(cur, clen, path, (uint32_t)hl, &sub, &sublen) == DV_OK) {
        struct mpk t;
        mpk_init(&t, sub, sublen);
        if (mpk_peek(&t) != MPK_MAP)
            sub = NULL; /* a value that is no object: replaced by one */
    }
    /* The new value of the head key, then every other entry of cur. */
    struct buf v = BUF_INIT, head = BUF_INIT;
    int rc = dot ? set_at(sub, sublen, dot + 1, len - hl - 1, add, alen, &v)
                 : merge_maps(sub, sublen, add, alen, &v);
    if (rc == DV_OK) {
        rc = mpw_map(&head, 1) | mpw_str(&head, path, hl) | buf_append(&head, v.data, v.len);
        rc = rc ? DV_ENOMEM : merge_maps(cur, clen, head.data, head.len, out);
    }
    buf_free(&v);
    buf_free(&head);
    return rc;
}

/* Builds the new payload of one point for a payload operation (NULL result: no payload). */
static int payload_op(enum part_payload_op op, const struct blob *cur, const uint8_t *data,
                      size_t len, struct blob **out)
{
    struct buf b = BUF_INIT;
    struct mpk r;
    uint32_t n, cnt = 0;
    int rc = DV_OK;

    *out = NULL;
    if (op == PART_PAYLOAD_CLEAR)
        return DV_OK;
    if (op == PART_PAYLOAD_SET_KEY) { /* data: [key, map] */
        struct mpk r2;
        uint32_t two, kl;
        const char *key;
        mpk_init(&r2, data, len);
        if (mpk_array(&r2, &two) || two != 2 || mpk_str(&r2, &key, &kl))
            return DV_ECORRUPT;
        int rc2 = set_at(cur ? cur->data : NULL, cur ? cur->len : 0, key, kl, r2.p,
                         (size_t)(r2.end - r2.p), &b);
        if (rc2 == DV_OK && (*out = blob_new(b.data, b.len)) == NULL)
            rc2 = DV_ENOMEM;
        buf_free(&b);
        return rc2;
    }
    if (op == PART_PAYLOAD_OVERWRITE || (op == PART_PAYLOAD_SET && cur == NULL)) {
        *out = blob_new(data, len);
        return *out ? DV_OK : DV_ENOMEM;
    }
    if (op == PART_PAYLOAD_SET) { /* the current entries whose key is not given, then data's */
        rc = merge_maps(cur->data, cur->len, data, len, &b);
        if (rc == DV_OK && (*out = blob_new(b.data, b.len)) == NULL)
            rc = DV_ENOMEM;
        buf_free(&b);
        return rc;
    }
    if (cur == NULL)
        return DV_OK; /* deleting keys of nothing */
    /* DELETE: keep the current entries whose key is not in the list. */
    struct buf kept = BUF_INIT;
    mpk_init(&r, cur->data, cur->len);
    if (mpk_map(&r, &n) != DV_OK)
        return DV_ECORRUPT;
    for (uint32_t i = 0; i < n && rc == DV_OK; i++) {
        const uint8_t *ks, *vs;
        size_t kl, vl;
        const char *key;
        uint32_t keylen;
        struct mpk kr;
        if (mpk_span(&r, &ks, &kl) || mpk_span(&r, &vs, &vl)) {
            rc = DV_ECORRUPT;
            break;
        }
        mpk_init(&kr, ks, kl);
        bool drop = false;
        if (mpk_str(&kr, &key, &keylen) == DV_OK) {
            struct mpk dr;
            uint32_t nk;
            mpk_init(&dr, data, len);
            mpk_array(&dr, &nk);
            for (uint32_t j = 0; j < nk && !drop; j++) {
                const char *dk;
                uint32_t dl;
                if (mpk_str(&dr, &dk, &dl) == DV_OK && dl == keylen && memcmp(dk, key, dl) == 0)
                    drop = true;
            }
        }
        if (!drop) {
            rc |= buf_append(&kept, ks, kl);
            rc |= buf_append(&kept, vs, vl);
            cnt++;
        }
    }
    if (rc == DV_OK) {
        rc |= mpw_map(&b, cnt);
        rc |= buf_append(&b, kept.data, kept.len);
    }
    if (rc == DV_OK && (*out = blob_new(b.data, b.len)) == NULL)
        rc = DV_ENOMEM;
    buf_free(&kept);
    buf_free(&b);
    return rc == DV_OK ? DV_OK : (rc == DV_ECORRUPT ? DV_ECORRUPT : DV_ENOMEM);
}

int part_apply_payload(struct part *p, enum part_payload_op op, const struct pid *ids, size_t n,
                       const uint8_t *data, size_t len)
{
    struct trash t = {0};
    int rc = DV_OK;
    pthread_rwlock_wrlock(&p->rw);
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &ids[i]);
        if (s == IDMAP_EMPTY)
            continue;
        struct blob *nb;
        rc = payload_op(op, p->pay[s], data, len, &nb);
        if (rc != DV_OK)
            break;
        rc = republish_payload(p, s, nb, &t);
    }
    pthread_rwlock_unlock(&p->rw);
    trash_empty(p, &t);
    return rc;
}

int part_apply_record(struct part *p, uint8_t type, const void *body, size_t len, char *errmsg)
{
    struct mpk r;
    uint32_t na;
    struct pid *ids = NULL;
    size_t n;
    int rc;

    switch (type) {
    case REC_UPSERT: {
        struct part_rec_upsert u;
        rc = decode_upsert(body, len, p->o.index.dim, &u);
        if (rc != DV_OK) {
            dv_errmsg_set(errmsg, "upsert record does not decode");
            return rc;
        }
        rc = part_apply_upsert(p, &u, errmsg);
        part_rec_upsert_free(&u);
        return rc;
    }
    case REC_UPSERT_V:
    case REC_VECTORS: {
        struct part_rec_upsert u;
        rc = decode_vectors(p, body, len, type == REC_UPSERT_V, &u);
        if (rc != DV_OK) {
            dv_errmsg_set(errmsg, "%s record does not decode",
                          type == REC_UPSERT_V ? "upsert" : "update vectors");
            return rc;
        }
        rc = part_apply_upsert_v(p, &u, type == REC_UPSERT_V, errmsg);
        part_rec_upsert_free(&u);
        return rc;
    }
    case REC_VECTORS_DEL: {
        uint32_t ns, spaces[PART_MAX_SPACES];
        mpk_init(&r, body, len);
        if (mpk_array(&r, &na) || na != 2 || (rc = decode_ids(&r, &ids, &n)) != DV_OK) {
            dv_errmsg_set(errmsg, "delete vectors record does not decode");
            return DV_ECORRUPT;
        }
        rc = mpk_array(&r, &ns) || ns > p->nsp ? DV_ECORRUPT : DV_OK;
        for (uint32_t j = 0; j < ns && rc == DV_OK; j++) {
            uint64_t sp;
            if (mpk_u64(&r, &sp) || sp >= p->nsp)
                rc = DV_ECORRUPT;
            else
                spaces[j] = (uint32_t)sp;
        }
        if (rc == DV_OK)
            rc = part_apply_delete_vectors(p, ids, n, spaces, ns);
        else
            dv_errmsg_set(errmsg, "delete vectors record does not decode");
        free(ids);
        return rc;
    }
    case REC_DELETE:
        mpk_init(&r, body, len);
        if ((rc = decode_ids(&r, &ids, &n)) != DV_OK) {
            dv_errmsg_set(errmsg, "delete record does not decode");
            return rc;
        }
        rc = part_apply_delete(p, ids, n, NULL);
        free(ids);
        return rc;
    case REC_PAYLOAD: {
        uint64_t op;
        const void *data;
        uint32_t dl;
        mpk_init(&r, body, len);
        if (mpk_array(&r, &na) || na != 3 || mpk_u64(&r, &op) || op < 1 ||
            op > PART_PAYLOAD_SET_KEY || decode_ids(&r, &ids, &n) != DV_OK) {
            dv_errmsg_set(errmsg, "payload record does not decode");
            return DV_ECORRUPT;
        }
        if (mpk_bin(&r, &data, &dl) != DV_OK) {
            free(ids);
            dv_errmsg_set(errmsg, "payload record does not decode");
            return DV_ECORRUPT;
        }
        rc = part_apply_payload(p, (enum part_payload_op)op, ids, n, data, dl);
        free(ids);
        if (rc != DV_OK)
            dv_errmsg_set(errmsg, "payload record: %s", dv_strerror(rc));
        return rc;
    }
    case REC_INDEX_CREATE:
    case REC_INDEX_DROP: {
        const char *key;
        uint32_t kl;
        uint64_t kind = 0;
        char k[1024];
        struct pindex_params prm;
        mpk_init(&r, body, len);
        if (mpk_array(&r, &na) || na < 1 || mpk_str(&r, &key, &kl) || kl >= sizeof k ||
            (type == REC_INDEX_CREATE &&
             (na < 2 || na > 3 || mpk_u64(&r, &kind) || kind >= PINDEX_KIND_COUNT))) {
            dv_errmsg_set(errmsg, "index record does not decode");
            return DV_ECORRUPT;
        }
        prm = pindex_params_default((enum pindex_kind)kind);
        if (type == REC_INDEX_CREATE && na == 3) { /* [key, kind, params] */
            const void *pb;
            uint32_t pl;
            if (mpk_bin(&r, &pb, &pl) || pindex_params_decode(pb, pl, &prm, errmsg) != DV_OK ||
                prm.kind != kind) {
                dv_errmsg_set(errmsg, "index record does not decode (params)");
                return DV_ECORRUPT;
            }
        }
        memcpy(k, key, kl);
        k[kl] = '\0';
        pthread_rwlock_wrlock(&p->rw);
        if (type == REC_INDEX_CREATE)
            rc = part_add_pindex(p, k, &prm, errmsg);
        else {
            part_drop_pindex(p, k);
            rc = DV_OK;
        }
        pthread_rwlock_unlock(&p->rw);
        return rc;
    }
    default:
        dv_errmsg_set(errmsg, "unknown record type %u", type);
        return DV_ECORRUPT;
    }
}
