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

/* Takes slot s out of sight: id map, payload indexes, pub. Returns its payload to free. */
static struct blob *unpublish(struct part *p, uint32_t s)
{
    struct blob *b = p->pay[s];
    if (b != NULL) {
        for (size_t i = 0; i < p->n_pidx; i++)
            pindex_remove(p->pidx[i], s, b->data, b->len);
        p->payload_bytes -= b->len;
    }
    idmap_del(&p->map, p->ids, &p->ids[s]);
    p->pay[s] = NULL;
    p->pub[s] = 0;
    return b;
}

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

/* ---- apply ------------------------------------------------------------------------------ */

int part_apply_upsert(struct part *p, const struct part_rec_upsert *u, char *errmsg)
{
    size_t n = u->n;
    uint32_t *slots = malloc((n ? n : 1) * sizeof *slots);
    uint32_t *old = malloc((n ? n : 1) * sizeof *old);
    struct blob **nb = calloc(n ? n : 1, sizeof *nb);
    struct blob **ob = calloc(n ? n : 1, sizeof *ob);
    size_t nold = 0;
    int rc = DV_ENOMEM;

    if (!slots || !old || !nb || !ob)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (u->pay[i] != NULL && (nb[i] = blob_new(u->pay[i], u->plen[i])) == NULL)
            goto out;
    rc = hnsw_insert_batch(p->ix, u->vecs, n, p->o.insert_threads, slots);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "index insert: %s", dv_strerror(rc));
        goto out;
    }
    uint32_t maxs = 0;
    for (size_t i = 0; i < n; i++)
        maxs = slots[i] > maxs ? slots[i] : maxs;
    pthread_rwlock_wrlock(&p->rw);
    rc = part_reserve_slots(p, (size_t)maxs + 1);
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &u->ids[i]);
        if (s != IDMAP_EMPTY) {
            ob[nold] = unpublish(p, s);
            old[nold++] = s;
        }
        rc = publish(p, slots[i], &u->ids[i], nb[i]);
        nb[i] = NULL;
    }
    pthread_rwlock_unlock(&p->rw);
    for (size_t i = 0; i < nold; i++)
        hnsw_delete(p->ix, old[i]);
    if (rc != DV_OK)
        dv_errmsg_set(errmsg, "publishing points: %s", dv_strerror(rc));
out:
    if (nb != NULL)
        for (size_t i = 0; i < n; i++)
            free(nb[i]);
    if (ob != NULL)
        for (size_t i = 0; i < nold; i++)
            free(ob[i]);
    free(nb);
    free(ob);
    free(slots);
    free(old);
    if (rc == DV_ENOMEM && errmsg[0] == '\0')
        dv_errmsg_set(errmsg, "out of memory applying an upsert of %zu points", n);
    return rc;
}

int part_apply_delete(struct part *p, const struct pid *ids, size_t n, size_t *deleted)
{
    uint32_t *old = malloc((n ? n : 1) * sizeof *old);
    struct blob **ob = malloc((n ? n : 1) * sizeof *ob);
    size_t nold = 0;
    if (old == NULL || ob == NULL) {
        free(old);
        free(ob);
        return DV_ENOMEM;
    }
    pthread_rwlock_wrlock(&p->rw);
    for (size_t i = 0; i < n; i++) {
        uint32_t s = idmap_get(&p->map, p->ids, &ids[i]);
        if (s != IDMAP_EMPTY) {
            ob[nold] = unpublish(p, s);
            old[nold++] = s;
        }
    }
    pthread_rwlock_unlock(&p->rw);
    for (size_t i = 0; i < nold; i++) {
        hnsw_delete(p->ix, old[i]);
        free(ob[i]);
    }
    free(old);
    free(ob);
    if (deleted != NULL)
        *deleted = nold;
    return DV_OK;
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
    if (op == PART_PAYLOAD_OVERWRITE || (op == PART_PAYLOAD_SET && cur == NULL)) {
        *out = blob_new(data, len);
        return *out ? DV_OK : DV_ENOMEM;
    }
    if (cur == NULL)
        return DV_OK; /* deleting keys of nothing */
    /* Keep the current entries whose key is not replaced (SET) or deleted (DELETE). */
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
            if (op == PART_PAYLOAD_SET) {
                const uint8_t *v;
                size_t vlen;
                drop = mpk_map_find(data, len, key, keylen, &v, &vlen) == DV_OK;
            } else {
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
        }
        if (!drop) {
            rc |= buf_append(&kept, ks, kl);
            rc |= buf_append(&kept, vs, vl);
            cnt++;
        }
    }
    uint32_t add = 0;
    const uint8_t *rest = NULL;
    size_t restlen = 0;
    if (rc == DV_OK && op == PART_PAYLOAD_SET) {
        mpk_init(&r, data, len);
        mpk_map(&r, &add);
        rest = r.p;
        restlen = (size_t)(r.end - r.p);
    }
    if (rc == DV_OK) {
        rc |= mpw_map(&b, cnt + add);
        rc |= buf_append(&b, kept.data, kept.len);
        rc |= buf_append(&b, rest, restlen);
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
        struct blob *ob = unpublish(p, s);
        rc = publish(p, s, &ids[i], nb);
        free(ob);
    }
    pthread_rwlock_unlock(&p->rw);
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
        if (mpk_array(&r, &na) || na != 3 || mpk_u64(&r, &op) || op < 1 || op > 4 ||
            decode_ids(&r, &ids, &n) != DV_OK) {
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
        mpk_init(&r, body, len);
        if (mpk_array(&r, &na) || na < 1 || mpk_str(&r, &key, &kl) || kl >= sizeof k ||
            (type == REC_INDEX_CREATE && (na != 2 || mpk_u64(&r, &kind) || kind > 1))) {
            dv_errmsg_set(errmsg, "index record does not decode");
            return DV_ECORRUPT;
        }
        memcpy(k, key, kl);
        k[kl] = '\0';
        pthread_rwlock_wrlock(&p->rw);
        if (type == REC_INDEX_CREATE)
            rc = part_add_pindex(p, k, (enum pindex_kind)kind, errmsg);
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
