/* part.c - a replica: options, allocation, lifecycle (open, create, close, repair) and upkeep. */
#include "part_int.h"

#include <errno.h>
#include <inttypes.h>
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
    o->ckpt_replay_ms = 1000;
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
    free(p->freel);
    part_spaces_free(p);
    idmap_free(&p->map);
    for (size_t i = 0; i < p->n_pidx; i++) {
        pindex_free(p->pidx[i]);
        free(p->pdefs[i].key);
    }
    free(p->pidx);
    free(p->pdefs);
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
    uint32_t *fl = realloc(p->freel, nc * sizeof *fl);
    if (fl == NULL)
        return DV_ENOMEM;
    p->freel = fl;
    p->freecap = nc;
    if (part_spaces_reserve(p, p->cap, nc) != DV_OK)
        return DV_ENOMEM;
    memset(ids + p->cap, 0, (nc - p->cap) * sizeof *ids);
    memset(pay + p->cap, 0, (nc - p->cap) * sizeof *pay);
    memset(pub + p->cap, 0, nc - p->cap);
    p->cap = nc;
    return DV_OK;
}

int part_add_pindex(struct part *p, const char *key, const struct pindex_params *prm, char *errmsg)
{
    enum pindex_kind kind = (enum pindex_kind)prm->kind;
    struct pindex *ix;
    for (size_t i = 0; i < p->n_pidx; i++) {
        if (strcmp(p->pdefs[i].key, key) == 0) {
            if (p->pdefs[i].kind == kind)
                return DV_OK;
            dv_errmsg_set(errmsg, "payload index on \"%s\" exists with another type", key);
            return DV_EEXIST;
        }
    }
    int rc = pindex_create_params(key, prm, &ix);
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
    p->pdefs[p->n_pidx].prm = *prm;
    p->n_pidx++;
    return DV_OK;
}

void part_drop_pindex(struct part *p, const char *key)
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

/* ---- upkeep ----------------------------------------------------------------------------- */

int part_compact(struct part *p, char *errmsg)
{
    struct hnsw_repair_plan *plan;
    size_t freed = 0;
    uint64_t t0 = p->io->now_ns(p->io);
    int rc = DV_OK;
    pthread_mutex_lock(&p->maint_mu);
    for (uint32_t i = 0; i < p->nsp && rc == DV_OK; i++) {
        if (p->sp[i].def.kind != PART_VEC_DENSE)
            continue;
        size_t f = 0;
        rc = hnsw_repair_relink(p->sp[i].ix, &plan);
        if (rc == DV_OK) {
            /* No search may hold a slot number across the freeing: exclude them briefly. */
            pthread_rwlock_wrlock(&p->rw);
            rc = hnsw_repair_free(p->sp[i].ix, plan, &f);
            pthread_rwlock_unlock(&p->rw);
            hnsw_repair_drop(plan);
        }
        freed += f;
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
    memset(info, 0, sizeof *info);
    info->index = p->o.index;
    for (uint32_t i = 0; i < p->nsp; i++) {
        struct hnsw_info hi;
        if (p->sp[i].def.kind != PART_VEC_DENSE)
            continue;
        hnsw_get_info(p->sp[i].ix, &hi);
        if (hi.deleted > info->deleted)
            info->deleted = hi.deleted;
    }
    pthread_rwlock_rdlock(&p->rw);
    info->points = p->map.n;
    info->payload_bytes = p->payload_bytes;
    info->n_indexes = p->n_pidx;
    pthread_rwlock_unlock(&p->rw);
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

/* A failed background checkpoint is tried again this much later (io clock). */
#define BG_RETRY_NS (10ull * 1000000000ull)

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
        bool soon = __atomic_load_n(&p->ckpt_soon, __ATOMIC_ACQUIRE);
        bool due =
            in.wal_bytes >= p->o.ckpt_wal_bytes ||
            (in.applied_lsn > in.ckpt_lsn && (soon || in.ckpt_age_ms >= p->o.ckpt_interval_ms));
        uint64_t now = p->io->now_ns(p->io);
        if (due && !in.failed && now >= p->bg_retry_ns) {
            /* A failed checkpoint (a full disk, most often) is retried after BG_RETRY_NS, not
             * at every poll, and logged once per run of failures: the replica keeps serving
             * from its WAL meanwhile. */
            if (part_checkpoint(p, err) != DV_OK) {
                if (p->bg_fails++ == 0)
                    log_error("checkpoint failed, retrying every 10 s", "dir=%s cause=\"%s\"",
                              p->dir, err);
                p->bg_retry_ns = now + BG_RETRY_NS;
            } else {
                if (p->bg_fails > 0)
                    log_info("checkpoint done again", "dir=%s failed_before=%u", p->dir,
                             p->bg_fails);
                p->bg_fails = 0;
                if (soon)
                    __atomic_store_n(&p->ckpt_soon, false, __ATOMIC_RELEASE);
            }
        }
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
    part_applied(p, lsn);
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
    part_applied(p, p->ckpt_lsn);
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
    /* A long replay: checkpoint soon, so the next start does not replay it all again. */
    if (p->o.ckpt_replay_ms && p->open_ms >= p->o.ckpt_replay_ms)
        p->ckpt_soon = true;
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
    struct part_space def0;
    const struct part_space *defs = o->spaces;
    uint32_t ndefs = o->n_spaces;
    if (defs == NULL) {
        memset(&def0, 0, sizeof def0);
        def0.kind = PART_VEC_DENSE;
        def0.index = o->index;
        defs = &def0;
        ndefs = 1;
    }
    rc = part_alloc(io, dir, o, &p);
    if (rc != DV_OK)
        return rc;
    rc = part_spaces_init(p, defs, ndefs, errmsg);
    if (rc != DV_OK) {
        part_free(p);
        dv_errmsg_prefix(errmsg, "replica %s", dir);
        return rc == DV_ENOMEM ? rc : DV_EINVAL;
    }
    rc = io->mkdir(io, dir, 0755);
    if (rc == -EEXIST) {
        part_free(p);
        dv_errmsg_set(errmsg, "replica %s: directory exists", dir);
        return DV_EEXIST;
    }
    if (rc < 0)
        goto err_os;
    snprintf(path, sizeof path, "%s/%s", dir, PART_WAL_DIR);
    rc = io->mkdir(io, path, 0755);
    if (rc < 0)
        goto err_os;
    bool switched;
    rc = part_write_meta(p, &switched, errmsg);
    part_free(p);
    if (rc != DV_OK)
        return rc;
    rc = io_fsync_dir(io, dir);
    if (rc < 0) {
        dv_errmsg_set(errmsg, "replica %s: cannot create: %s", dir, strerror(-rc));
        return DV_EIO;
    }
    return part_open(io, dir, o, out, errmsg);

err_os:
    part_free(p);
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

int part_cut_after(struct io *io, const char *dir, uint64_t lsn, uint64_t *dropped, char *errmsg)
{
    char path[4608];
    struct part_opts o;
    struct part *p;
    if (dropped)
        *dropped = 0;
    part_opts_default(&o);
    int rc = part_alloc(io, dir, &o, &p);
    if (rc != DV_OK)
        return rc;
    rc = part_read_meta(p, errmsg);
    uint64_t ckpt = p->ckpt_lsn;
    part_free(p);
    if (rc != DV_OK) {
        dv_errmsg_prefix(errmsg, "replica %s", dir);
        return rc;
    }
    if (ckpt > lsn) {
        dv_errmsg_set(errmsg,
                      "replica %s: its checkpoint holds records up to LSN %" PRIu64
                      ", past LSN %" PRIu64 ": cannot cut back",
                      dir, ckpt, lsn);
        return DV_ERANGE;
    }
    snprintf(path, sizeof path, "%s/%s", dir, PART_WAL_DIR);
    return wal_cut_after(io, path, lsn, dropped, errmsg);
}

int part_repair(struct io *io, const char *dir, char *errmsg)
{
    char path[4608];
    snprintf(path, sizeof path, "%s/%s", dir, PART_WAL_DIR);
    return wal_repair(io, path, errmsg);
}
