/* part.c - a replica: lifecycle, the write path (WAL, apply, publish), reads and upkeep. */
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

void part_opts_default(struct part_opts *o)
{
    memset(o, 0, sizeof *o);
    hnsw_params_default(&o->index);
    wal_opts_default(&o->wal);
    o->ckpt_wal_bytes = 256ull << 20;
    o->ckpt_interval_ms = 300000;
    o->insert_threads = 2;
    o->exact_threshold = 1000;
    o->max_batch = 65536;
    o->max_payload = 1u << 20;
    o->background = true;
}

/* ---- allocation ------------------------------------------------------------------------- */

int part_alloc(struct io *io, const char *dir, const struct part_opts *o, struct part **out)
{
    struct part *p = calloc(1, sizeof *p);
    pthread_rwlockattr_t ra;
    if (p == NULL)
        return DV_ENOMEM;
    p->dir = strdup(dir);
    if (p->dir == NULL) {
        free(p);
        return DV_ENOMEM;
    }
    p->io = io;
    p->o = *o;
    pthread_mutex_init(&p->wmu, NULL);
    pthread_mutex_init(&p->maint_mu, NULL);
    pthread_mutex_init(&p->ckpt_mu, NULL);
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&p->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&p->bg_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->bg_cv, &ca);
    pthread_condattr_destroy(&ca);
    idmap_init(&p->map);
    *out = p;
    return DV_OK;
}

void part_free(struct part *p)
{
    if (p == NULL)
        return;
    for (size_t s = 0; s < p->cap; s++)
        free(p->pay[s]);
    free(p->pay);
    free(p->ids);
    free(p->pub);
    idmap_free(&p->map);
    for (size_t i = 0; i < p->n_pidx; i++) {
        pindex_free(p->pidx[i]);
        free(p->pdefs[i].key);
    }
    free(p->pidx);
    free(p->pdefs);
    hnsw_destroy(p->ix);
    pthread_mutex_destroy(&p->wmu);
    pthread_mutex_destroy(&p->maint_mu);
    pthread_mutex_destroy(&p->ckpt_mu);
    pthread_rwlock_destroy(&p->rw);
    pthread_mutex_destroy(&p->bg_mu);
    pthread_cond_destroy(&p->bg_cv);
    free(p->dir);
    free(p);
}

int part_reserve_slots(struct part *p, size_t n)
{
    if (n <= p->cap)
        return DV_OK;
    size_t nc = p->cap ? p->cap : 1024;
    while (nc < n)
        nc *= 2;
    struct pid *ids = realloc(p->ids, nc * sizeof *ids);
    if (ids == NULL)
        return DV_ENOMEM;
    p->ids = ids;
    struct blob **pay = realloc(p->pay, nc * sizeof *pay);
    if (pay == NULL)
        return DV_ENOMEM;
    p->pay = pay;
    uint8_t *pub = realloc(p->pub, nc);
    if (pub == NULL)
        return DV_ENOMEM;
    p->pub = pub;
    memset(ids + p->cap, 0, (nc - p->cap) * sizeof *ids);
    memset(pay + p->cap, 0, (nc - p->cap) * sizeof *pay);
    memset(pub + p->cap, 0, nc - p->cap);
    p->cap = nc;
    return DV_OK;
}

int part_add_pindex(struct part *p, const char *key, enum pindex_kind kind, char *errmsg)
{
    struct pindex *ix;
    for (size_t i = 0; i < p->n_pidx; i++) {
        if (strcmp(p->pdefs[i].key, key) == 0) {
            if (p->pdefs[i].kind == kind)
                return DV_OK;
            dv_errmsg_set(errmsg, "payload index on \"%s\" exists with another type", key);
            return DV_EEXIST;
        }
    }
    int rc = pindex_create(key, kind, &ix);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "payload index on \"%s\": %s", key, dv_strerror(rc));
        return rc;
    }
    for (size_t s = 0; s < p->cap; s++) {
        if (p->pub[s] && p->pay[s] != NULL &&
            (rc = pindex_add(ix, (uint32_t)s, p->pay[s]->data, p->pay[s]->len)) != DV_OK) {
            pindex_free(ix);
            dv_errmsg_set(errmsg, "payload index on \"%s\": %s", key, dv_strerror(rc));
            return rc;
        }
    }
    struct pindex **np = realloc(p->pidx, (p->n_pidx + 1) * sizeof *np);
    struct pidx_def *nd = np ? realloc(p->pdefs, (p->n_pidx + 1) * sizeof *nd) : NULL;
    char *k = strdup(key);
    if (np != NULL)
        p->pidx = np;
    if (nd != NULL)
        p->pdefs = nd;
    if (np == NULL || nd == NULL || k == NULL) {
        free(k);
        pindex_free(ix);
        return DV_ENOMEM;
    }
    p->pidx[p->n_pidx] = ix;
    p->pdefs[p->n_pidx].key = k;
    p->pdefs[p->n_pidx].kind = kind;
    p->n_pidx++;
    return DV_OK;
}

static void drop_pindex(struct part *p, const char *key)
{
    for (size_t i = 0; i < p->n_pidx; i++) {
        if (strcmp(p->pdefs[i].key, key) != 0)
            continue;
        pindex_free(p->pidx[i]);
        free(p->pdefs[i].key);
        p->n_pidx--;
        p->pidx[i] = p->pidx[p->n_pidx];
        p->pdefs[i] = p->pdefs[p->n_pidx];
        return;
    }
}

/* ---- records: encoding and decoding ------------------------------------------------------- */

struct upsert {
    size_t n;
    struct pid *ids;
    float *vecs; /* n * dim, aligned */
    const uint8_t **pay;
    uint32_t *plen;
};

static void upsert_free(struct upsert *u)
{
    free(u->ids);
    free(u->vecs);
    free(u->pay);
    free(u->plen);
}

static int upsert_alloc(struct upsert *u, size_t n, uint32_t dim)
{
    memset(u, 0, sizeof *u);
    u->n = n;
    u->ids = malloc((n ? n : 1) * sizeof *u->ids);
    u->vecs = malloc((n ? n : 1) * dim * sizeof(float));
    u->pay = calloc(n ? n : 1, sizeof *u->pay);
    u->plen = calloc(n ? n : 1, sizeof *u->plen);
    if (!u->ids || !u->vecs || !u->pay || !u->plen) {
        upsert_free(u);
        return DV_ENOMEM;
    }
    return DV_OK;
}

static int encode_upsert(const struct upsert *u, uint32_t dim, struct buf *b)
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

static int decode_upsert(const void *body, size_t len, uint32_t dim, struct upsert *u)
{
    struct mpk r;
    uint32_t na, n, n2, vl;
    const void *vp;
    mpk_init(&r, body, len);
    if (mpk_array(&r, &na) || na != 3 || mpk_array(&r, &n))
        return DV_ECORRUPT;
    if (upsert_alloc(u, n, dim) != DV_OK)
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
    upsert_free(u);
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

static int encode_ids(struct buf *b, const struct pid *ids, size_t n)
{
    int rc = mpw_array(b, (uint32_t)n);
    for (size_t i = 0; i < n && rc == DV_OK; i++)
        rc = mpw_pid(b, &ids[i]);
    return rc;
}

/* Checks that [p, p+n) is exactly one msgpack map. */
static bool is_map(const void *data, size_t n)
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

static int apply_upsert(struct part *p, const struct upsert *u, char *errmsg)
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

static int apply_delete(struct part *p, const struct pid *ids, size_t n, size_t *deleted)
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

static int apply_payload(struct part *p, enum part_payload_op op, const struct pid *ids, size_t n,
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
        struct upsert u;
        rc = decode_upsert(body, len, p->o.index.dim, &u);
        if (rc != DV_OK) {
            dv_errmsg_set(errmsg, "upsert record does not decode");
            return rc;
        }
        rc = apply_upsert(p, &u, errmsg);
        upsert_free(&u);
        return rc;
    }
    case REC_DELETE:
        mpk_init(&r, body, len);
        if ((rc = decode_ids(&r, &ids, &n)) != DV_OK) {
            dv_errmsg_set(errmsg, "delete record does not decode");
            return rc;
        }
        rc = apply_delete(p, ids, n, NULL);
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
        rc = apply_payload(p, (enum part_payload_op)op, ids, n, data, dl);
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
            drop_pindex(p, k);
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

/* ---- the write path ----------------------------------------------------------------------- */

static void set_failed(struct part *p, const char *why)
{
    if (!__atomic_exchange_n(&p->failed, 1, __ATOMIC_ACQ_REL)) {
        snprintf(p->fail_msg, sizeof p->fail_msg, "%s", why);
        log_error("replica failed: writes refused until reopened", "dir=%s cause=\"%s\"", p->dir,
                  why);
    }
}

static int check_writable(struct part *p, char *errmsg)
{
    if (__atomic_load_n(&p->failed, __ATOMIC_ACQUIRE)) {
        dv_errmsg_set(errmsg, "replica refuses writes after an IO failure (%s); reopen it",
                      p->fail_msg);
        return DV_EIO;
    }
    return DV_OK;
}

/* Waits for the record's durability after wmu is released. */
static int finish_write(struct part *p, uint64_t lsn, uint64_t *lsn_out, char *errmsg)
{
    int rc = wal_sync(p->wal, lsn, errmsg);
    if (rc != DV_OK) {
        set_failed(p, errmsg);
        return rc;
    }
    if (lsn_out != NULL)
        *lsn_out = lsn;
    return DV_OK;
}

/*
 * Appends a record (the caller holds wmu and applies it next). An append failure leaves
 * nothing behind; an apply failure after the append fails the replica (the WAL then holds a
 * record the memory state lacks: reopening replays it).
 */
static int log_record(struct part *p, uint8_t type, const struct buf *body, uint64_t *lsn,
                      char *errmsg)
{
    /* A failed append is undone by the WAL (or leaves the WAL refusing appends). */
    return wal_append(p->wal, type, body->data, body->len, lsn, errmsg);
}

static void applied(struct part *p, uint64_t lsn)
{
    __atomic_store_n(&p->applied_lsn, lsn, __ATOMIC_RELEASE);
}

/* After applying logged record `lsn` (result rc): advance, or fail the replica. */
static int settle(struct part *p, int rc, uint64_t lsn, const char *errmsg)
{
    if (rc != DV_OK)
        set_failed(p, errmsg);
    else
        applied(p, lsn);
    return rc;
}

int part_upsert(struct part *p, const struct part_point *pts, size_t n, uint64_t *lsn_out,
                char *errmsg)
{
    uint32_t dim = p->o.index.dim;
    struct upsert u;
    struct buf body = BUF_INIT;
    uint64_t lsn;
    int rc;

    errmsg[0] = '\0';
    if (n == 0 || n > p->o.max_batch) {
        dv_errmsg_set(errmsg, "a batch holds 1 to %u points, not %zu", p->o.max_batch, n);
        return n == 0 ? DV_EINVAL : DV_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        char id[PID_TEXT_MAX];
        if (pts[i].vec == NULL) {
            pid_format(&pts[i].id, id);
            dv_errmsg_set(errmsg, "point %zu (id %s): no vector", i, id);
            return DV_EINVAL;
        }
        if (pts[i].dim != dim) {
            pid_format(&pts[i].id, id);
            dv_errmsg_set(errmsg, "point %zu (id %s): vector has %u dimensions, the collection %u",
                          i, id, pts[i].dim, dim);
            return DV_EDIM;
        }
        for (uint32_t d = 0; d < dim; d++) {
            if (!isfinite(pts[i].vec[d])) {
                pid_format(&pts[i].id, id);
                dv_errmsg_set(errmsg, "point %zu (id %s): vector[%u] is not a finite number", i, id,
                              d);
                return DV_ENAN;
            }
        }
        if (pts[i].payload != NULL && pts[i].payload_len > p->o.max_payload) {
            pid_format(&pts[i].id, id);
            dv_errmsg_set(errmsg, "point %zu (id %s): payload of %zu bytes exceeds %u", i, id,
                          pts[i].payload_len, p->o.max_payload);
            return DV_ETOOBIG;
        }
        if (pts[i].payload != NULL && !is_map(pts[i].payload, pts[i].payload_len)) {
            pid_format(&pts[i].id, id);
            dv_errmsg_set(errmsg, "point %zu (id %s): payload is not a msgpack map", i, id);
            return DV_EINVAL;
        }
    }
    if (upsert_alloc(&u, n, dim) != DV_OK)
        return DV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        u.ids[i] = pts[i].id;
        memcpy(u.vecs + i * dim, pts[i].vec, dim * sizeof(float));
        u.pay[i] = pts[i].payload;
        u.plen[i] = (uint32_t)pts[i].payload_len;
    }
    rc = encode_upsert(&u, dim, &body);
    if (rc != DV_OK)
        goto out;
    pthread_mutex_lock(&p->wmu);
    rc = check_writable(p, errmsg);
    if (rc == DV_OK)
        rc = log_record(p, REC_UPSERT, &body, &lsn, errmsg);
    if (rc == DV_OK) {
        rc = settle(p, apply_upsert(p, &u, errmsg), lsn, errmsg);
    }
    pthread_mutex_unlock(&p->wmu);
    if (rc == DV_OK)
        rc = finish_write(p, lsn, lsn_out, errmsg);
out:
    upsert_free(&u);
    buf_free(&body);
    return rc;
}

int part_delete(struct part *p, const struct pid *ids, size_t n, uint64_t *lsn_out, size_t *deleted,
                char *errmsg)
{
    struct buf body = BUF_INIT;
    uint64_t lsn;
    int rc;

    errmsg[0] = '\0';
    if (n > p->o.max_batch) {
        dv_errmsg_set(errmsg, "a batch holds at most %u ids, not %zu", p->o.max_batch, n);
        return DV_ETOOBIG;
    }
    if (encode_ids(&body, ids, n) != DV_OK) {
        buf_free(&body);
        return DV_ENOMEM;
    }
    pthread_mutex_lock(&p->wmu);
    rc = check_writable(p, errmsg);
    if (rc == DV_OK)
        rc = log_record(p, REC_DELETE, &body, &lsn, errmsg);
    if (rc == DV_OK) {
        rc = apply_delete(p, ids, n, deleted);
        if (rc != DV_OK)
            set_failed(p, "out of memory applying a delete");
        else
            applied(p, lsn);
    }
    pthread_mutex_unlock(&p->wmu);
    buf_free(&body);
    if (rc == DV_OK)
        rc = finish_write(p, lsn, lsn_out, errmsg);
    return rc;
}

int part_set_payload(struct part *p, enum part_payload_op op, const struct pid *ids, size_t n,
                     const void *data, size_t len, uint64_t *lsn_out, char *errmsg)
{
    struct buf body = BUF_INIT;
    uint64_t lsn;
    int rc;

    errmsg[0] = '\0';
    if (op < PART_PAYLOAD_SET || op > PART_PAYLOAD_CLEAR) {
        dv_errmsg_set(errmsg, "unknown payload operation %d", (int)op);
        return DV_EINVAL;
    }
    if (n > p->o.max_batch) {
        dv_errmsg_set(errmsg, "a batch holds at most %u ids, not %zu", p->o.max_batch, n);
        return DV_ETOOBIG;
    }
    if (op == PART_PAYLOAD_CLEAR) {
        data = NULL;
        len = 0;
    } else if (len > p->o.max_payload) {
        dv_errmsg_set(errmsg, "payload of %zu bytes exceeds %u", len, p->o.max_payload);
        return DV_ETOOBIG;
    } else if (op == PART_PAYLOAD_DELETE) {
        struct mpk r;
        uint32_t nk;
        mpk_init(&r, data, len);
        bool ok = mpk_array(&r, &nk) == DV_OK;
        for (uint32_t i = 0; ok && i < nk; i++) {
            const char *k;
            uint32_t kl;
            ok = mpk_str(&r, &k, &kl) == DV_OK;
        }
        if (!ok || !mpk_done(&r)) {
            dv_errmsg_set(errmsg, "payload keys to delete must be an array of strings");
            return DV_EINVAL;
        }
    } else if (data == NULL || !is_map(data, len)) {
        dv_errmsg_set(errmsg, "payload is not a msgpack map");
        return DV_EINVAL;
    }
    int e = mpw_array(&body, 3);
    e |= mpw_u64(&body, (uint64_t)op);
    e |= encode_ids(&body, ids, n);
    e |= mpw_bin(&body, data, len);
    if (e != DV_OK) {
        buf_free(&body);
        return DV_ENOMEM;
    }
    pthread_mutex_lock(&p->wmu);
    rc = check_writable(p, errmsg);
    /* Every id must exist (Qdrant answers 404 for a missing point). */
    pthread_rwlock_rdlock(&p->rw);
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        if (idmap_get(&p->map, p->ids, &ids[i]) == IDMAP_EMPTY) {
            char id[PID_TEXT_MAX];
            pid_format(&ids[i], id);
            dv_errmsg_set(errmsg, "no point with id %s", id);
            rc = DV_ENOTFOUND;
        }
    }
    pthread_rwlock_unlock(&p->rw);
    if (rc == DV_OK)
        rc = log_record(p, REC_PAYLOAD, &body, &lsn, errmsg);
    if (rc == DV_OK) {
        rc = apply_payload(p, op, ids, n, data, len);
        if (rc != DV_OK) {
            dv_errmsg_set(errmsg, "applying a payload change: %s", dv_strerror(rc));
            set_failed(p, errmsg);
        } else {
            applied(p, lsn);
        }
    }
    pthread_mutex_unlock(&p->wmu);
    buf_free(&body);
    if (rc == DV_OK)
        rc = finish_write(p, lsn, lsn_out, errmsg);
    return rc;
}

static int index_op(struct part *p, uint8_t type, const char *key, enum pindex_kind kind,
                    uint64_t *lsn_out, char *errmsg)
{
    struct buf body = BUF_INIT;
    uint64_t lsn;
    int rc;

    errmsg[0] = '\0';
    size_t kl = key ? strlen(key) : 0;
    if (kl == 0 || kl >= 1024) {
        dv_errmsg_set(errmsg, "payload index key must have 1 to 1023 bytes");
        return DV_EINVAL;
    }
    if (type == REC_INDEX_CREATE && kind != PINDEX_KEYWORD && kind != PINDEX_INTEGER) {
        dv_errmsg_set(errmsg, "unknown payload index type %d", (int)kind);
        return DV_EINVAL;
    }
    int e = mpw_array(&body, type == REC_INDEX_CREATE ? 2 : 1);
    e |= mpw_str(&body, key, kl);
    if (type == REC_INDEX_CREATE)
        e |= mpw_u64(&body, (uint64_t)kind);
    if (e != DV_OK) {
        buf_free(&body);
        return DV_ENOMEM;
    }
    pthread_mutex_lock(&p->wmu);
    rc = check_writable(p, errmsg);
    if (rc == DV_OK && type == REC_INDEX_CREATE) {
        for (size_t i = 0; i < p->n_pidx; i++) {
            if (strcmp(p->pdefs[i].key, key) == 0 && p->pdefs[i].kind != kind) {
                dv_errmsg_set(errmsg, "payload index on \"%s\" exists with another type", key);
                rc = DV_EEXIST;
            }
        }
    }
    if (rc == DV_OK)
        rc = log_record(p, type, &body, &lsn, errmsg);
    if (rc == DV_OK) {
        rc = settle(p, part_apply_record(p, type, body.data, body.len, errmsg), lsn, errmsg);
    }
    pthread_mutex_unlock(&p->wmu);
    buf_free(&body);
    if (rc == DV_OK)
        rc = finish_write(p, lsn, lsn_out, errmsg);
    return rc;
}

int part_create_index(struct part *p, const char *key, enum pindex_kind kind, uint64_t *lsn,
                      char *errmsg)
{
    return index_op(p, REC_INDEX_CREATE, key, kind, lsn, errmsg);
}

int part_drop_index(struct part *p, const char *key, uint64_t *lsn, char *errmsg)
{
    return index_op(p, REC_INDEX_DROP, key, PINDEX_KEYWORD, lsn, errmsg);
}

int part_apply(struct part *p, uint64_t lsn, uint8_t type, const void *body, size_t len,
               char *errmsg)
{
    uint64_t got;
    int rc;

    errmsg[0] = '\0';
    pthread_mutex_lock(&p->wmu);
    rc = check_writable(p, errmsg);
    uint64_t next = __atomic_load_n(&p->applied_lsn, __ATOMIC_ACQUIRE) + 1;
    if (rc == DV_OK && lsn != next) {
        dv_errmsg_set(errmsg, "record LSN %llu does not follow the replica's LSN %llu",
                      (unsigned long long)lsn, (unsigned long long)(next - 1));
        rc = DV_EINVAL;
    }
    if (rc == DV_OK) {
        struct buf b = {(uint8_t *)body, len, len};
        rc = log_record(p, type, &b, &got, errmsg);
    }
    if (rc == DV_OK && got != lsn) {
        dv_errmsg_set(errmsg, "WAL assigned LSN %llu to record %llu", (unsigned long long)got,
                      (unsigned long long)lsn);
        set_failed(p, errmsg);
        rc = DV_EIO;
    }
    if (rc == DV_OK) {
        rc = settle(p, part_apply_record(p, type, body, len, errmsg), lsn, errmsg);
    }
    pthread_mutex_unlock(&p->wmu);
    if (rc == DV_OK)
        rc = finish_write(p, lsn, NULL, errmsg);
    return rc;
}

int part_read_wal(struct part *p, uint64_t from, wal_replay_fn fn, void *arg, char *errmsg)
{
    return wal_read(p->wal, from, fn, arg, errmsg);
}

void part_hold_wal(struct part *p, uint64_t lsn)
{
    __atomic_store_n(&p->wal_hold, lsn, __ATOMIC_RELEASE);
}

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

/* ---- upkeep ----------------------------------------------------------------------------- */

int part_compact(struct part *p, char *errmsg)
{
    struct hnsw_repair_plan *plan;
    size_t freed = 0;
    uint64_t t0 = p->io->now_ns(p->io);
    pthread_mutex_lock(&p->maint_mu);
    int rc = hnsw_repair_relink(p->ix, &plan);
    if (rc == DV_OK) {
        /* No search may hold a slot number across the freeing: exclude them briefly. */
        pthread_rwlock_wrlock(&p->rw);
        rc = hnsw_repair_free(p->ix, plan, &freed);
        pthread_rwlock_unlock(&p->rw);
        hnsw_repair_drop(plan);
    }
    pthread_mutex_unlock(&p->maint_mu);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "compaction: %s", dv_strerror(rc));
        return rc;
    }
    if (freed > 0)
        log_info("replica compacted", "dir=%s freed=%zu ms=%llu", p->dir, freed,
                 (unsigned long long)((p->io->now_ns(p->io) - t0) / 1000000));
    return DV_OK;
}

void part_get_info(struct part *p, struct part_info *info)
{
    struct hnsw_info hi;
    memset(info, 0, sizeof *info);
    hnsw_get_info(p->ix, &hi);
    info->index = p->o.index;
    pthread_rwlock_rdlock(&p->rw);
    info->points = p->map.n;
    info->payload_bytes = p->payload_bytes;
    info->n_indexes = p->n_pidx;
    pthread_rwlock_unlock(&p->rw);
    info->deleted = hi.deleted;
    /* Atomics, not ckpt_mu: a checkpoint holds that through its fsyncs, and this must not
     * wait (metrics, the background thread). */
    info->ckpt_lsn = __atomic_load_n(&p->ckpt_lsn, __ATOMIC_ACQUIRE);
    uint64_t now = p->io->now_ns(p->io), at = __atomic_load_n(&p->ckpt_at_ns, __ATOMIC_ACQUIRE);
    info->ckpt_age_ms = now > at ? (now - at) / 1000000 : 0;
    info->ckpt_count = __atomic_load_n(&p->ckpt_count, __ATOMIC_RELAXED);
    info->ckpt_last_ms = __atomic_load_n(&p->ckpt_last_ms, __ATOMIC_RELAXED);
    info->ckpt_stall_ms = __atomic_load_n(&p->ckpt_stall_ms, __ATOMIC_RELAXED);
    /* After the checkpoint's LSN: a checkpoint written meanwhile cannot pass it. */
    info->applied_lsn = __atomic_load_n(&p->applied_lsn, __ATOMIC_ACQUIRE);
    info->durable_lsn = wal_durable_lsn(p->wal);
    info->wal_bytes = wal_bytes(p->wal);
    info->open_ms = p->open_ms;
    info->failed = __atomic_load_n(&p->failed, __ATOMIC_ACQUIRE);
    info->wal_hold = __atomic_load_n(&p->wal_hold, __ATOMIC_ACQUIRE);
}

/* The background thread: checkpoints by WAL size and age, compaction by tombstone share. */
static void *bg_main(void *arg)
{
    struct part *p = arg;
    char err[DV_ERRMSG_SIZE];
    pthread_mutex_lock(&p->bg_mu);
    while (!p->bg_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        /* Poll at least twice per checkpoint interval (10..200 ms). */
        long wait_ms = p->o.ckpt_interval_ms / 2;
        wait_ms = wait_ms < 10 ? 10 : wait_ms > 200 ? 200 : wait_ms;
        ts.tv_nsec += wait_ms * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->bg_cv, &p->bg_mu, &ts);
        if (p->bg_stop)
            break;
        pthread_mutex_unlock(&p->bg_mu);

        struct part_info in;
        part_get_info(p, &in);
        bool due = in.wal_bytes >= p->o.ckpt_wal_bytes ||
                   (in.applied_lsn > in.ckpt_lsn && in.ckpt_age_ms >= p->o.ckpt_interval_ms);
        if (due && !in.failed && part_checkpoint(p, err) != DV_OK)
            log_error("checkpoint failed", "dir=%s cause=\"%s\"", p->dir, err);
        if (in.deleted >= 1024 && in.deleted * 10 >= in.points && part_compact(p, err) != DV_OK)
            log_error("compaction failed", "dir=%s cause=\"%s\"", p->dir, err);
        pthread_mutex_lock(&p->bg_mu);
    }
    pthread_mutex_unlock(&p->bg_mu);
    return NULL;
}

void part_start_bg(struct part *p)
{
    p->bg_stop = false;
    if (p->o.background && !p->bg_running && pthread_create(&p->bg, NULL, bg_main, p) == 0)
        p->bg_running = true;
}

void part_pause_bg(struct part *p)
{
    if (!p->bg_running)
        return;
    pthread_mutex_lock(&p->bg_mu);
    p->bg_stop = true;
    pthread_cond_signal(&p->bg_cv);
    pthread_mutex_unlock(&p->bg_mu);
    pthread_join(p->bg, NULL);
    p->bg_running = false;
}

int part_sync_wal(struct part *p, char *errmsg)
{
    return wal_flush(p->wal, errmsg);
}

int part_rebase(struct part *p, const char *dir, enum wal_sync sync, char *errmsg)
{
    char wdir[4608];
    char *d = strdup(dir);
    if (d == NULL) {
        dv_errmsg_set(errmsg, "out of memory");
        return DV_ENOMEM;
    }
    part_pause_bg(p);
    snprintf(wdir, sizeof wdir, "%s/%s", dir, PART_WAL_DIR);
    pthread_mutex_lock(&p->wmu);
    int rc = wal_rebase(p->wal, wdir, sync, errmsg);
    if (rc == DV_OK) {
        free(p->dir);
        p->dir = d;
        p->o.wal.sync = sync;
    } else {
        free(d);
    }
    pthread_mutex_unlock(&p->wmu);
    part_start_bg(p);
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static int replay(uint64_t lsn, uint8_t type, const void *body, size_t len, void *arg)
{
    struct part *p = arg;
    char err[DV_ERRMSG_SIZE] = "";
    int rc = part_apply_record(p, type, body, len, err);
    if (rc != DV_OK) {
        log_error("WAL record does not apply", "dir=%s lsn=%llu cause=\"%s\"", p->dir,
                  (unsigned long long)lsn, err);
        return rc;
    }
    applied(p, lsn);
    return DV_OK;
}

int part_open(struct io *io, const char *dir, const struct part_opts *o, struct part **out,
              char *errmsg)
{
    struct part *p;
    char path[4608];
    uint64_t t0 = io->now_ns(io);
    int rc;

    *out = NULL;
    errmsg[0] = '\0';
    rc = part_alloc(io, dir, o, &p);
    if (rc != DV_OK)
        return rc;
    rc = part_read_meta(p, errmsg);
    if (rc != DV_OK)
        goto err_free;
    rc = part_load_ckpt(p, errmsg);
    if (rc != DV_OK)
        goto err_free;
    applied(p, p->ckpt_lsn);
    snprintf(path, sizeof path, "%s/%s", dir, PART_WAL_DIR);
    rc = wal_open(io, path, &p->o.wal, p->ckpt_lsn + 1, replay, p, &p->wal, errmsg);
    if (rc != DV_OK)
        goto err_free;
    /* Segments the checkpoint covers (left by a crash before they were dropped) go now. */
    char werr[DV_ERRMSG_SIZE];
    if (wal_drop_before(p->wal, p->ckpt_lsn, werr) != DV_OK)
        log_warn("WAL segments not dropped", "dir=%s cause=\"%s\"", dir, werr);
    part_remove_stale(p);
    p->ckpt_at_ns = io->now_ns(io);
    p->open_ms = (p->ckpt_at_ns - t0) / 1000000;
    part_start_bg(p);
    log_info("replica opened", "dir=%s points=%llu lsn=%llu ckpt_lsn=%llu ms=%llu", dir,
             (unsigned long long)p->map.n,
             (unsigned long long)__atomic_load_n(&p->applied_lsn, __ATOMIC_ACQUIRE),
             (unsigned long long)p->ckpt_lsn, (unsigned long long)p->open_ms);
    *out = p;
    return DV_OK;

err_free:
    dv_errmsg_prefix(errmsg, "replica %s", dir);
    part_free(p);
    return rc;
}

int part_create(struct io *io, const char *dir, const struct part_opts *o, struct part **out,
                char *errmsg)
{
    char path[4608];
    struct part *p;
    int rc;

    *out = NULL;
    errmsg[0] = '\0';
    struct hnsw_index *probe;
    rc = hnsw_create(&o->index, &probe);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "replica %s: bad index parameters", dir);
        return rc;
    }
    hnsw_destroy(probe);
    rc = io->mkdir(io, dir, 0755);
    if (rc == -EEXIST) {
        dv_errmsg_set(errmsg, "replica %s: directory exists", dir);
        return DV_EEXIST;
    }
    if (rc < 0)
        goto err_os;
    snprintf(path, sizeof path, "%s/%s", dir, PART_WAL_DIR);
    rc = io->mkdir(io, path, 0755);
    if (rc < 0)
        goto err_os;
    rc = part_alloc(io, dir, o, &p);
    if (rc != DV_OK)
        return rc;
    bool switched;
    rc = part_write_meta(p, &switched, errmsg);
    part_free(p);
    if (rc != DV_OK)
        return rc;
    rc = io_fsync_dir(io, dir);
    if (rc < 0)
        goto err_os;
    return part_open(io, dir, o, out, errmsg);

err_os:
    dv_errmsg_set(errmsg, "replica %s: cannot create: %s", dir, strerror(-rc));
    return DV_EIO;
}

void part_close(struct part *p)
{
    char err[DV_ERRMSG_SIZE];
    if (p == NULL)
        return;
    part_pause_bg(p);
    if (p->wal != NULL) {
        wal_flush(p->wal, err);
        wal_close(p->wal);
    }
    part_free(p);
}

int part_repair(struct io *io, const char *dir, char *errmsg)
{
    char path[4608];
    snprintf(path, sizeof path, "%s/%s", dir, PART_WAL_DIR);
    return wal_repair(io, path, errmsg);
}
