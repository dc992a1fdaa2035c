/* part_write.c - a replica's write path: check, log to the WAL, apply, publish, wait for the sync.
 */
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
    int rc = wal_append(p->wal, type, body->data, body->len, lsn, errmsg);
    if (rc == DV_OK && p->tap)
        p->tap(p->tap_arg, *lsn, type, body->data, body->len);
    return rc;
}

void part_set_tap(struct part *p, part_tap_fn fn, void *arg)
{
    pthread_mutex_lock(&p->wmu);
    p->tap = fn;
    p->tap_arg = arg;
    pthread_mutex_unlock(&p->wmu);
}

void part_applied(struct part *p, uint64_t lsn)
{
    __atomic_store_n(&p->applied_lsn, lsn, __ATOMIC_RELEASE);
}

/* After applying logged record `lsn` (result rc): advance, or fail the replica. */
static int settle(struct part *p, int rc, uint64_t lsn, const char *errmsg)
{
    if (rc != DV_OK)
        set_failed(p, errmsg);
    else
        part_applied(p, lsn);
    return rc;
}

/* Whether the replica's only vector is the unnamed dense one: its points all have it. */
static bool default_only(const struct part *p)
{
    return p->nsp == 1 && p->sp[0].def.kind == PART_VEC_DENSE && p->sp[0].def.name[0] == '\0';
}

/* Checks point i's vectors and payload (payload only when with_payload). */
static int check_point(struct part *p, const struct part_point *pt, size_t i, bool with_payload,
                       char *errmsg)
{
    char id[PID_TEXT_MAX], what[PID_TEXT_MAX + 64];
    bool seen[PART_MAX_SPACES] = {false};
    int rc;
    pid_format(&pt->id, id);
    snprintf(what, sizeof what, "point %zu (id %s)", i, id);
    if (pt->vec != NULL) {
        if (p->sp[0].def.kind != PART_VEC_DENSE || p->sp[0].def.name[0] != '\0') {
            dv_errmsg_set(errmsg, "%s: the collection has no unnamed vector; name the vector",
                          what);
            return DV_EINVAL;
        }
        if (pt->dim != p->sp[0].def.index.dim) {
            dv_errmsg_set(errmsg, "%s: vector has %u dimensions, the collection %u", what, pt->dim,
                          p->sp[0].def.index.dim);
            return DV_EDIM;
        }
        for (uint32_t d = 0; d < pt->dim; d++) {
            if (!isfinite(pt->vec[d])) {
                dv_errmsg_set(errmsg, "%s: vector[%u] is not a finite number", what, d);
                return DV_ENAN;
            }
        }
        seen[0] = true;
    }
    if (pt->n_vecs > PART_MAX_SPACES || (pt->n_vecs > 0 && pt->vecs == NULL)) {
        dv_errmsg_set(errmsg, "%s: %u vectors, at most %d", what, pt->n_vecs, PART_MAX_SPACES);
        return DV_EINVAL;
    }
    for (uint32_t j = 0; j < pt->n_vecs; j++) {
        uint32_t sp = pt->vecs[j].space;
        if (sp >= p->nsp) {
            dv_errmsg_set(errmsg, "%s: no vector number %u in the collection", what, sp);
            return DV_EINVAL;
        }
        if (seen[sp]) {
            dv_errmsg_set(errmsg, "%s: vector \"%s\" given twice", what, p->sp[sp].def.name);
            return DV_EINVAL;
        }
        seen[sp] = true;
        if ((rc = part_vec_check(&p->sp[sp], &pt->vecs[j], what, errmsg)) != DV_OK)
            return rc;
    }
    if (with_payload && default_only(p) && !seen[0]) {
        dv_errmsg_set(errmsg, "%s: no vector", what);
        return DV_EINVAL;
    }
    if (!with_payload)
        return DV_OK;
    if (pt->payload != NULL && pt->payload_len > p->o.max_payload) {
        dv_errmsg_set(errmsg, "%s: payload of %zu bytes exceeds %u", what, pt->payload_len,
                      p->o.max_payload);
        return DV_ETOOBIG;
    }
    if (pt->payload != NULL && !part_is_map(pt->payload, pt->payload_len)) {
        dv_errmsg_set(errmsg, "%s: payload is not a msgpack map", what);
        return DV_EINVAL;
    }
    return DV_OK;
}

/* Builds the record of an upsert or update of named vectors: vector bytes go to vbytes. */
static int build_vectors(struct part *p, const struct part_point *pts, size_t n,
                         struct part_rec_upsert *u, struct buf *vbytes)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += pts[i].n_vecs + (pts[i].vec != NULL);
    memset(u, 0, sizeof *u);
    u->n = n;
    u->ids = malloc((n ? n : 1) * sizeof *u->ids);
    u->pay = calloc(n ? n : 1, sizeof *u->pay);
    u->plen = calloc(n ? n : 1, sizeof *u->plen);
    u->rvoff = calloc(n + 1, sizeof *u->rvoff);
    u->rv = malloc((total ? total : 1) * sizeof *u->rv);
    size_t *off = malloc((total ? total : 1) * sizeof *off);
    int rc = (!u->ids || !u->pay || !u->plen || !u->rvoff || !u->rv || !off) ? DV_ENOMEM : DV_OK;
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        u->ids[i] = pts[i].id;
        u->pay[i] = pts[i].payload;
        u->plen[i] = (uint32_t)pts[i].payload_len;
        u->rvoff[i] = u->nrv;
        if (pts[i].vec != NULL) {
            struct part_vec v0 = {0, pts[i].dim, pts[i].vec, NULL};
            off[u->nrv] = vbytes->len;
            rc = part_vec_encode(&p->sp[0], &v0, vbytes);
            u->rv[u->nrv].space = 0;
            u->rv[u->nrv].len = (uint32_t)(vbytes->len - off[u->nrv]);
            u->nrv++;
        }
        for (uint32_t j = 0; j < pts[i].n_vecs && rc == DV_OK; j++) {
            const struct part_vec *v = &pts[i].vecs[j];
            off[u->nrv] = vbytes->len;
            rc = part_vec_encode(&p->sp[v->space], v, vbytes);
            u->rv[u->nrv].space = v->space;
            u->rv[u->nrv].len = (uint32_t)(vbytes->len - off[u->nrv]);
            u->nrv++;
        }
    }
    u->rvoff[n] = u->nrv;
    for (size_t j = 0; j < u->nrv && rc == DV_OK; j++)
        u->rv[j].data = vbytes->data + off[j];
    free(off);
    return rc;
}

/* Logs and applies a REC_UPSERT_V or REC_VECTORS record (the caller checked the points). */
static int write_vectors(struct part *p, const struct part_point *pts, size_t n, bool upsert,
                         uint64_t *lsn_out, char *errmsg)
{
    struct part_rec_upsert u;
    struct buf body = BUF_INIT, vbytes = BUF_INIT;
    uint64_t lsn;
    int rc = build_vectors(p, pts, n, &u, &vbytes);
    if (rc == DV_OK)
        rc = part_rec_encode_vectors(&u, upsert, &body);
    if (rc != DV_OK)
        goto out;
    pthread_mutex_lock(&p->wmu);
    rc = check_writable(p, errmsg);
    if (rc == DV_OK && !upsert) {
        /* Every point must exist (Qdrant answers 404 for a missing point). */
        pthread_rwlock_rdlock(&p->rw);
        for (size_t i = 0; i < n && rc == DV_OK; i++) {
            if (idmap_get(&p->map, p->ids, &pts[i].id) == IDMAP_EMPTY) {
                char id[PID_TEXT_MAX];
                pid_format(&pts[i].id, id);
                dv_errmsg_set(errmsg, "no point with id %s", id);
                rc = DV_ENOTFOUND;
            }
        }
        pthread_rwlock_unlock(&p->rw);
    }
    if (rc == DV_OK)
        rc = log_record(p, upsert ? REC_UPSERT_V : REC_VECTORS, &body, &lsn, errmsg);
    if (rc == DV_OK)
        rc = settle(p, part_apply_upsert_v(p, &u, upsert, errmsg), lsn, errmsg);
    pthread_mutex_unlock(&p->wmu);
    if (rc == DV_OK)
        rc = finish_write(p, lsn, lsn_out, errmsg);
out:
    part_rec_upsert_free(&u);
    buf_free(&body);
    buf_free(&vbytes);
    if (rc == DV_ENOMEM && errmsg[0] == '\0')
        dv_errmsg_set(errmsg, "out of memory writing %zu points", n);
    return rc;
}

int part_upsert(struct part *p, const struct part_point *pts, size_t n, uint64_t *lsn_out,
                char *errmsg)
{
    uint32_t dim = p->o.index.dim;
    struct part_rec_upsert u;
    struct buf body = BUF_INIT;
    uint64_t lsn;
    int rc;
    bool named = false;

    errmsg[0] = '\0';
    if (n == 0 || n > p->o.max_batch) {
        dv_errmsg_set(errmsg, "a batch holds 1 to %u points, not %zu", p->o.max_batch, n);
        return n == 0 ? DV_EINVAL : DV_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_point(p, &pts[i], i, true, errmsg)) != DV_OK)
            return rc;
        named |= pts[i].n_vecs > 0 || pts[i].vec == NULL;
    }
    if (named || !default_only(p))
        return write_vectors(p, pts, n, true, lsn_out, errmsg);
    /* Only the default vector: the compact record of the format before named vectors. */
    if (part_rec_upsert_alloc(&u, n, dim) != DV_OK)
        return DV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        u.ids[i] = pts[i].id;
        memcpy(u.vecs + i * dim, pts[i].vec, dim * sizeof(float));
        u.pay[i] = pts[i].payload;
        u.plen[i] = (uint32_t)pts[i].payload_len;
    }
    rc = part_rec_encode_upsert(&u, dim, &body);
    if (rc != DV_OK)
        goto out;
    pthread_mutex_lock(&p->wmu);
    rc = check_writable(p, errmsg);
    if (rc == DV_OK)
        rc = log_record(p, REC_UPSERT, &body, &lsn, errmsg);
    if (rc == DV_OK) {
        rc = settle(p, part_apply_upsert(p, &u, errmsg), lsn, errmsg);
    }
    pthread_mutex_unlock(&p->wmu);
    if (rc == DV_OK)
        rc = finish_write(p, lsn, lsn_out, errmsg);
out:
    part_rec_upsert_free(&u);
    buf_free(&body);
    return rc;
}

int part_update_vectors(struct part *p, const struct part_point *pts, size_t n, uint64_t *lsn_out,
                        char *errmsg)
{
    int rc;
    errmsg[0] = '\0';
    if (n == 0 || n > p->o.max_batch) {
        dv_errmsg_set(errmsg, "a batch holds 1 to %u points, not %zu", p->o.max_batch, n);
        return n == 0 ? DV_EINVAL : DV_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_point(p, &pts[i], i, false, errmsg)) != DV_OK)
            return rc;
        if (pts[i].vec == NULL && pts[i].n_vecs == 0) {
            char id[PID_TEXT_MAX];
            pid_format(&pts[i].id, id);
            dv_errmsg_set(errmsg, "point %zu (id %s): no vector to update", i, id);
            return DV_EINVAL;
        }
    }
    return write_vectors(p, pts, n, false, lsn_out, errmsg);
}

int part_delete_vectors(struct part *p, const struct pid *ids, size_t n, const uint32_t *spaces,
                        uint32_t n_spaces, uint64_t *lsn_out, char *errmsg)
{
    struct buf body = BUF_INIT;
    uint64_t lsn;
    int rc;

    errmsg[0] = '\0';
    if (n > p->o.max_batch) {
        dv_errmsg_set(errmsg, "a batch holds at most %u ids, not %zu", p->o.max_batch, n);
        return DV_ETOOBIG;
    }
    if (n_spaces == 0 || n_spaces > p->nsp) {
        dv_errmsg_set(errmsg, "name 1 to %u vectors to delete, not %u", p->nsp, n_spaces);
        return DV_EINVAL;
    }
    for (uint32_t j = 0; j < n_spaces; j++) {
        if (spaces[j] >= p->nsp) {
            dv_errmsg_set(errmsg, "no vector number %u in the collection", spaces[j]);
            return DV_EINVAL;
        }
        if (default_only(p)) {
            dv_errmsg_set(errmsg, "the unnamed vector of a collection without named vectors "
                                  "cannot be deleted (delete the point)");
            return DV_EINVAL;
        }
    }
    int e = mpw_array(&body, 2) | part_rec_encode_ids(&body, ids, n) | mpw_array(&body, n_spaces);
    for (uint32_t j = 0; j < n_spaces; j++)
        e |= mpw_u64(&body, spaces[j]);
    if (e != DV_OK) {
        buf_free(&body);
        return DV_ENOMEM;
    }
    pthread_mutex_lock(&p->wmu);
    rc = check_writable(p, errmsg);
    if (rc == DV_OK)
        rc = log_record(p, REC_VECTORS_DEL, &body, &lsn, errmsg);
    if (rc == DV_OK) {
        rc = part_apply_delete_vectors(p, ids, n, spaces, n_spaces);
        if (rc != DV_OK)
            dv_errmsg_set(errmsg, "out of memory deleting vectors");
        rc = settle(p, rc, lsn, errmsg);
    }
    pthread_mutex_unlock(&p->wmu);
    buf_free(&body);
    if (rc == DV_OK)
        rc = finish_write(p, lsn, lsn_out, errmsg);
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
    if (part_rec_encode_ids(&body, ids, n) != DV_OK) {
        buf_free(&body);
        return DV_ENOMEM;
    }
    pthread_mutex_lock(&p->wmu);
    rc = check_writable(p, errmsg);
    if (rc == DV_OK)
        rc = log_record(p, REC_DELETE, &body, &lsn, errmsg);
    if (rc == DV_OK) {
        rc = part_apply_delete(p, ids, n, deleted);
        if (rc != DV_OK)
            set_failed(p, "out of memory applying a delete");
        else
            part_applied(p, lsn);
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
    if (op < PART_PAYLOAD_SET || op > PART_PAYLOAD_SET_KEY) {
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
    } else if (op == PART_PAYLOAD_SET_KEY) {
        struct mpk r;
        uint32_t two, kl;
        const char *key;
        mpk_init(&r, data, len);
        bool ok = data != NULL && mpk_array(&r, &two) == DV_OK && two == 2 &&
                  mpk_str(&r, &key, &kl) == DV_OK && kl > 0 &&
                  part_is_map(r.p, (size_t)(r.end - r.p));
        for (uint32_t i = 0; ok && i < kl; i++)
            ok = key[i] != '[' && key[i] != ']' &&
                 !(key[i] == '.' && (i == 0 || i + 1 == kl || key[i + 1] == '.'));
        if (!ok) {
            dv_errmsg_set(errmsg, "set payload by key needs [key, map] with a key of map keys "
                                  "separated by dots (\"a.b\"; no [] steps, no empty step)");
            return DV_EINVAL;
        }
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
    } else if (data == NULL || !part_is_map(data, len)) {
        dv_errmsg_set(errmsg, "payload is not a msgpack map");
        return DV_EINVAL;
    }
    int e = mpw_array(&body, 3);
    e |= mpw_u64(&body, (uint64_t)op);
    e |= part_rec_encode_ids(&body, ids, n);
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
        rc = part_apply_payload(p, op, ids, n, data, len);
        if (rc != DV_OK) {
            dv_errmsg_set(errmsg, "applying a payload change: %s", dv_strerror(rc));
            set_failed(p, errmsg);
        } else {
            part_applied(p, lsn);
        }
    }
    pthread_mutex_unlock(&p->wmu);
    buf_free(&body);
    if (rc == DV_OK)
        rc = finish_write(p, lsn, lsn_out, errmsg);
    return rc;
}

static int index_op(struct part *p, uint8_t type, const char *key, const struct pindex_params *prm,
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
    enum pindex_kind kind = (enum pindex_kind)prm->kind;
    if (type == REC_INDEX_CREATE && (unsigned)kind >= PINDEX_KIND_COUNT) {
        dv_errmsg_set(errmsg, "unknown payload index type %d", (int)kind);
        return DV_EINVAL;
    }
    /* [key], [key, kind] (keyword and integer with default params: the format before index
     * params), or [key, kind, params] */
    bool plain = !prm->has_params && kind <= PINDEX_INTEGER;
    int e = mpw_array(&body, type != REC_INDEX_CREATE ? 1 : plain ? 2 : 3);
    e |= mpw_str(&body, key, kl);
    if (type == REC_INDEX_CREATE)
        e |= mpw_u64(&body, (uint64_t)kind);
    if (type == REC_INDEX_CREATE && !plain) {
        struct buf pb = BUF_INIT;
        e |= pindex_params_encode(prm, &pb);
        e |= mpw_bin(&body, pb.data, pb.len);
        buf_free(&pb);
    }
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
    struct pindex_params prm = pindex_params_default(kind);
    return index_op(p, REC_INDEX_CREATE, key, &prm, lsn, errmsg);
}

int part_create_index_params(struct part *p, const char *key, const struct pindex_params *prm,
                             uint64_t *lsn, char *errmsg)
{
    return index_op(p, REC_INDEX_CREATE, key, prm, lsn, errmsg);
}

int part_drop_index(struct part *p, const char *key, uint64_t *lsn, char *errmsg)
{
    struct pindex_params prm = pindex_params_default(PINDEX_KEYWORD);
    return index_op(p, REC_INDEX_DROP, key, &prm, lsn, errmsg);
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
