/* pull.c - replica pulls: a thread per job copies a replica from its source node (snapshot,
 * then WAL records) into a hidden directory, which FINISH makes a replica of the node. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "node_int.h"
#include "pull.h"
#include "replica_cfg.h"
#include "transport.h"

#define PULL_RETRY_MS      200    /* pause between tries of a call that failed */
#define PULL_IDLE_MS       50     /* pause when the source has no new record */
#define PULL_CALL_MS       5000   /* per call to the source (node_opts.pull_call_ms) */
#define PULL_SNAP_START_MS 60000  /* the first snapshot read: the source writes it all first */
#define PULL_MAX_RESTARTS  10     /* new snapshots in a row before the job gives up */
#define PULL_MIN_CHUNK     65536u /* smallest read asked for, whatever the rate */
/* RESUME takes a snapshot instead when the records it would apply hold (by the replica's own
 * points per record) more than RESUME_MAX_PCT % of its points and more than RESUME_MIN_POINTS:
 * applying a record re-inserts its points into the index (about 150 us a point here), while a
 * snapshot carries the built index (about 6 us a point): docs/benchmarks.md, "Replication". */
#define RESUME_MAX_PCT    3
#define RESUME_MIN_POINTS 2000

static const char *const state_names[] = {"none", "copying", "catching_up", "ready", "failed"};

struct pull_job {
    struct pull_job *next;
    struct pull_set *set;
    struct node *node;
    char coll[NODE_MAX_COLL + 1];
    size_t coll_len;
    uint32_t partition;
    uint64_t epoch; /* START's */
    char source[256];
    uint64_t rate;
    struct msg_create_req create;
    enum wal_sync sync; /* the replica's policy, from create */
    char dir[PATH_MAX]; /* replicas/.pulling-<coll>.<part> */
    struct tr_peer *to; /* to the source */
    uint64_t src_epoch; /* epoch the thread sends to the source (adopts a newer one) */
    uint64_t t0, sent;  /* thread: throttle start and bytes since */
    bool progressed;    /* thread: catch-up applied a record since the last snapshot */
    uint32_t chunk;     /* bytes asked for per read */
    bool resume;        /* start from the node's own replica, detached into dir */
    struct part *own;   /* resume: that replica, open (the thread takes it) */
    struct msg_term mine[NODE_MAX_TERMS + 1]; /* resume: that replica's term history */
    uint32_t n_mine;

    /* Under set->mu. */
    enum msg_pull_state state;
    uint64_t bytes_done, bytes_total, applied_lsn, source_lsn;
    char error[DV_ERRMSG_SIZE];
    bool has_until; /* FINISH waits: apply nothing after `until` */
    uint64_t until;
    bool stop;        /* the thread must return */
    bool op_busy;     /* a FINISH, ABORT or discard works on the job */
    bool removed;     /* out of the list */
    int refs;         /* the list's and those of callers between lookups and release */
    bool thread_live; /* started and not joined */
    pthread_t thread;
    struct part *part; /* the copy once the thread returned (NULL: none) */
};

struct pull_set {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* any change of any job */
    struct pull_job *jobs;
    bool closing;
    uint64_t finished, failed, bytes, resumed, records_cut;
};

/* ---- the set ------------------------------------------------------------------------------ */

int pull_init_(struct node *n)
{
    struct pull_set *s = calloc(1, sizeof *s);
    if (s == NULL)
        return DV_ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    n->pulls = s;
    return DV_OK;
}

static struct pull_job *find_locked(struct pull_set *s, const char *coll, size_t len,
                                    uint32_t partition)
{
    for (struct pull_job *j = s->jobs; j; j = j->next)
        if (j->partition == partition && j->coll_len == len && memcmp(j->coll, coll, len) == 0)
            return j;
    return NULL;
}

/* Drops n references; the last one frees the job (it must be out of the list by then). */
static void put_locked(struct pull_job *j, int n)
{
    j->refs -= n;
    if (j->refs > 0)
        return;
    tr_peer_close(j->to);
    part_close(j->own);
    free(j);
}

/* Takes the job out of the list; the caller then drops the list's reference (put_locked). */
static void unlink_locked(struct pull_set *s, struct pull_job *j)
{
    for (struct pull_job **pp = &s->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            j->removed = true;
            return;
        }
}

/* Takes the job of a partition for an operation that changes it (FINISH, ABORT): waits for
 * one already running on it. NULL when there is no job. Release with op_end. */
static struct pull_job *op_begin(struct pull_set *s, const char *coll, size_t len,
                                 uint32_t partition)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct pull_job *j = find_locked(s, coll, len, partition);
        if (j == NULL) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        j->refs++;
        while (j->op_busy)
            pthread_cond_wait(&s->cv, &s->mu);
        if (j->removed) { /* discarded meanwhile: look again */
            put_locked(j, 1);
            continue;
        }
        j->op_busy = true;
        pthread_mutex_unlock(&s->mu);
        return j;
    }
}

static void op_end(struct pull_set *s, struct pull_job *j)
{
    pthread_mutex_lock(&s->mu);
    j->op_busy = false;
    pthread_cond_broadcast(&s->cv);
    put_locked(j, j->removed ? 2 : 1); /* the list's too once it took the job out */
    pthread_mutex_unlock(&s->mu);
}

/* Tells the thread to stop and joins it; the copy (if any) is then in j->part. */
static void stop_thread(struct pull_set *s, struct pull_job *j)
{
    pthread_mutex_lock(&s->mu);
    j->stop = true;
    pthread_cond_broadcast(&s->cv);
    bool live = j->thread_live;
    j->thread_live = false;
    pthread_mutex_unlock(&s->mu);
    if (live)
        pthread_join(j->thread, NULL);
}

/* Stops the thread, closes and deletes the copy. Called with op_busy set. */
static void discard_copy(struct pull_set *s, struct pull_job *j)
{
    stop_thread(s, j);
    pthread_mutex_lock(&s->mu);
    struct part *p = j->part;
    j->part = NULL;
    enum msg_pull_state st = j->state;
    pthread_mutex_unlock(&s->mu);
    part_close(p);
    if (st != MSG_PULL_READY) /* a READY job's directory is the replica now */
        node_remove_tree_(j->node, j->dir);
}

void pull_close_(struct node *n)
{
    struct pull_set *s = n->pulls;
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_cond_broadcast(&s->cv);
    while (s->jobs) {
        struct pull_job *j = s->jobs;
        if (j->op_busy) { /* a request works on it: wait, then look at the list again */
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        j->op_busy = true;
        pthread_mutex_unlock(&s->mu);
        discard_copy(s, j);
        if (j->state != MSG_PULL_READY && j->state != MSG_PULL_FAILED)
            log_info("pull stopped: the node is stopping", "collection=%s partition=%u", j->coll,
                     j->partition);
        pthread_mutex_lock(&s->mu);
        j->op_busy = false;
        pthread_cond_broadcast(&s->cv);
        unlink_locked(s, j);
        put_locked(j, 1);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    n->pulls = NULL;
}

/* ---- the job's thread --------------------------------------------------------------------- */

/* The per-call timeout of a pull's calls to its source, and of its first snapshot read. */
static uint32_t call_ms(const struct node *n)
{
    return n->opts.pull_call_ms ? n->opts.pull_call_ms : PULL_CALL_MS;
}

static uint32_t snap_start_ms(const struct node *n)
{
    return n->opts.pull_snap_start_ms ? n->opts.pull_snap_start_ms : PULL_SNAP_START_MS;
}

/* Sleeps ms unless told to stop; true when told to stop. */
static bool wait_stop(struct pull_job *j, uint64_t ms)
{
    struct timespec dl;
    clock_deadline_ms(&dl, ms);
    pthread_mutex_lock(&j->set->mu);
    while (!j->stop && pthread_cond_timedwait(&j->set->cv, &j->set->mu, &dl) == 0)
        ;
    bool stop = j->stop;
    pthread_mutex_unlock(&j->set->mu);
    return stop;
}

static bool stopping(struct pull_job *j)
{
    pthread_mutex_lock(&j->set->mu);
    bool stop = j->stop;
    pthread_mutex_unlock(&j->set->mu);
    return stop;
}

/* Counts n bytes read from the source and sleeps as long as the rate asks. */
static void throttle(struct pull_job *j, uint64_t n)
{
    pthread_mutex_lock(&j->set->mu);
    j->set->bytes += n;
    pthread_mutex_unlock(&j->set->mu);
    j->sent += n;
    if (j->rate == 0)
        return;
    uint64_t due = j->t0 + j->sent * 1000 / j->rate, now = clock_mono_ms();
    if (due > now)
        wait_stop(j, due - now);
}

/*
 * One call to the source, tried again while it fails (unreachable, timeout, shutting down,
 * not holding the partition yet) for up to PULL_FAIL_MS. A DV_ESTALE naming a newer epoch is
 * taken over and the call repeated. Returns at once on success, DV_ENOTFOUND (the caller
 * decides), DV_EINVAL, DV_ERANGE and DV_EPROTO (retrying would not help), and DV_ESHUTDOWN
 * when the job is told to stop. errmsg names the source. The caller frees *rep whatever the
 * result.
 */
static int source_call(struct pull_job *j, struct msg *req, struct msg_reply *rep,
                       uint32_t timeout_ms, char *errmsg)
{
    char err[DV_ERRMSG_SIZE];
    uint64_t first_fail = 0;
    for (;;) {
        if (stopping(j)) {
            memset(rep, 0, sizeof *rep);
            dv_errmsg_set(errmsg, "stopped");
            return DV_ESHUTDOWN;
        }
        req->addr.epoch = j->src_epoch;
        uint64_t sent = clock_mono_ms();
        int rc = tr_call(j->to, req, rep, timeout_ms, err);
        if (rc == DV_OK)
            return DV_OK;
        if (rc == DV_ENOTFOUND || rc == DV_EINVAL || rc == DV_ERANGE || rc == DV_EPROTO) {
            dv_errmsg_set(errmsg, "source %s: %s: %s", j->source, dv_errname(rc), err);
            return rc;
        }
        if (rc == DV_ESTALE && rep->m.err.epoch > j->src_epoch) {
            /* The source knows a newer map epoch: reading is fine under it. */
            j->src_epoch = rep->m.err.epoch;
            msg_reply_free(rep);
            continue;
        }
        msg_reply_free(rep);
        uint64_t now = clock_mono_ms();
        if (first_fail == 0)
            first_fail = sent; /* failing since this call went out */
        if (now - first_fail >= PULL_FAIL_MS) {
            dv_errmsg_set(errmsg, "source %s failed for %" PRIu64 " ms: %s: %s", j->source,
                          now - first_fail, dv_errname(rc), err);
            return rc;
        }
        if (wait_stop(j, PULL_RETRY_MS)) {
            dv_errmsg_set(errmsg, "stopped");
            return DV_ESHUTDOWN;
        }
    }
}

/* The snapshot stream read from the source, chunk by chunk, for part_restore. */
struct snap_src {
    struct pull_job *j;
    uint64_t session, offset, total, lsn;
    bool started, done;
    struct msg_reply rep; /* holds the current chunk */
    const uint8_t *data;
    size_t len, pos;
    int fail; /* what stopped the stream: DV_ENOTFOUND (session gone: start over), ... */
    char err[DV_ERRMSG_SIZE];
};

static int snap_fetch(struct snap_src *s)
{
    struct pull_job *j = s->j;
    msg_reply_free(&s->rep);
    s->data = NULL;
    s->len = s->pos = 0;
    struct msg req = {.type = MSG_SNAPSHOT_READ};
    req.addr.coll = (struct msg_str){j->coll, (uint32_t)j->coll_len};
    req.addr.part = j->partition;
    req.u.snapshot_req = (struct msg_snapshot_req){s->session, s->offset, j->chunk};
    int rc = source_call(j, &req, &s->rep, s->started ? call_ms(j->node) : snap_start_ms(j->node),
                         s->err);
    if (rc != DV_OK)
        return rc;
    const struct msg_snapshot_rep *r = &s->rep.m.u.snapshot_rep;
    if (s->started && (r->session != s->session || r->lsn != s->lsn || r->total != s->total)) {
        dv_errmsg_set(s->err, "source %s: snapshot session %" PRIu64 " changed under the reader",
                      j->source, s->session);
        return DV_EPROTO;
    }
    if ((r->data.len == 0 && !r->done) || r->data.len > r->total - s->offset ||
        r->done != (s->offset + r->data.len == r->total)) {
        dv_errmsg_set(s->err,
                      "source %s: snapshot chunk of %u bytes at offset %" PRIu64 " of %" PRIu64
                      " (done %d) does not add up",
                      j->source, r->data.len, s->offset, r->total, (int)r->done);
        return DV_EPROTO;
    }
    if (!s->started)
        log_info("pull: snapshot taken at the source",
                 "collection=%s partition=%u source=%s lsn=%" PRIu64 " bytes=%" PRIu64, j->coll,
                 j->partition, j->source, r->lsn, r->total);
    s->started = true;
    s->session = r->session;
    s->lsn = r->lsn;
    s->total = r->total;
    s->done = r->done;
    s->data = r->data.p;
    s->len = r->data.len;
    s->offset += r->data.len;
    pthread_mutex_lock(&j->set->mu);
    j->bytes_done = s->offset;
    j->bytes_total = s->total;
    if (s->lsn > j->source_lsn)
        j->source_lsn = s->lsn;
    pthread_mutex_unlock(&j->set->mu);
    throttle(j, r->data.len);
    return DV_OK;
}

static int snap_source(void *arg, void *buf, size_t n, size_t *got)
{
    struct snap_src *s = arg;
    *got = 0;
    while (s->pos == s->len) {
        if (s->done)
            return DV_OK; /* end of the stream */
        int rc = snap_fetch(s);
        if (rc != DV_OK) {
            s->fail = rc;
            return rc;
        }
    }
    size_t take = s->len - s->pos < n ? s->len - s->pos : n;
    memcpy(buf, s->data + s->pos, take);
    s->pos += take;
    *got = take;
    return DV_OK;
}

static void set_state(struct pull_job *j, enum msg_pull_state st, uint64_t applied)
{
    pthread_mutex_lock(&j->set->mu);
    j->state = st;
    j->applied_lsn = applied;
    if (st == MSG_PULL_COPYING)
        j->bytes_done = j->bytes_total = 0;
    pthread_cond_broadcast(&j->set->cv);
    pthread_mutex_unlock(&j->set->mu);
}

/*
 * Copies the source's snapshot into j->dir/data and opens it (*out). *restart: the source's
 * session went away (start over). errmsg says what failed.
 */
static int copy_snapshot(struct pull_job *j, struct part **out, bool *restart, char *errmsg)
{
    char data[PATH_MAX + 8], err[DV_ERRMSG_SIZE];
    struct node *n = j->node;
    *out = NULL;
    *restart = false;
    set_state(j, MSG_PULL_COPYING, 0);
    node_remove_tree_(j->node, j->dir);
    int e = n->io->mkdir(n->io, j->dir, 0755);
    if (e != 0) {
        dv_errmsg_set(errmsg, "%s: %s", j->dir, strerror(-e));
        return DV_EOS;
    }
    /* The copy needs no fsync per record: a restart discards it anyway. FINISH checkpoints
     * it and the replica is reopened with its own policy. */
    struct part_opts o;
    node_replica_opts_(n, WAL_SYNC_NEVER, &o);
    o.wal.sync = WAL_SYNC_NEVER;
    snprintf(data, sizeof data, "%s/data", j->dir);
    struct snap_src s = {.j = j};
    j->t0 = clock_mono_ms();
    j->sent = 0;
    int rc = part_restore(n->io, data, snap_source, &s, &o, out, err);
    msg_reply_free(&s.rep);
    if (rc != DV_OK) {
        *out = NULL;
        if (s.fail == DV_ENOTFOUND)
            *restart = true;
        if (s.fail != DV_OK)
            dv_errmsg_set(errmsg, "reading the snapshot: %s", s.err);
        else
            dv_errmsg_set(errmsg, "restoring the snapshot of source %s: %s", j->source, err);
        return s.fail != DV_OK ? s.fail : rc;
    }
    struct part_info info;
    part_get_info(*out, &info);
    const struct msg_create_req *c = &j->create;
    if (c->cfg.dim != 0 &&
        (info.index.dim != c->cfg.dim || (uint32_t)info.index.metric != c->cfg.metric)) {
        dv_errmsg_set(errmsg,
                      "the source's replica has dimension %u metric %d, the pull asked for "
                      "dimension %u metric %u",
                      info.index.dim, (int)info.index.metric, c->cfg.dim, c->cfg.metric);
        part_close(*out);
        *out = NULL;
        return DV_EINVAL;
    }
    log_info("pull: snapshot copied, catching up",
             "collection=%s partition=%u source=%s lsn=%" PRIu64 " points=%" PRIu64
             " bytes=%" PRIu64,
             j->coll, j->partition, j->source, info.applied_lsn, info.points, s.total);
    set_state(j, MSG_PULL_CATCHING_UP, info.applied_lsn);
    return DV_OK;
}

/*
 * Applies the source's WAL records to p until told to stop (DV_OK), never past FINISH's
 * until_lsn. *restart: the source no longer has the records needed (take a new snapshot).
 */
static int catch_up(struct pull_job *j, struct part *p, bool *restart, char *errmsg)
{
    char err[DV_ERRMSG_SIZE];
    *restart = false;
    for (;;) {
        pthread_mutex_lock(&j->set->mu);
        bool stop = j->stop, has_until = j->has_until;
        uint64_t until = j->until, applied = j->applied_lsn;
        pthread_mutex_unlock(&j->set->mu);
        if (stop)
            return DV_OK;
        if (has_until && applied >= until) {
            wait_stop(j, PULL_IDLE_MS); /* FINISH takes it from here */
            continue;
        }
        struct msg req = {.type = MSG_WAL_READ};
        req.addr.coll = (struct msg_str){j->coll, (uint32_t)j->coll_len};
        req.addr.part = j->partition;
        req.u.wal_req = (struct msg_wal_req){applied + 1, j->chunk};
        struct msg_reply rep;
        int rc = source_call(j, &req, &rep, call_ms(j->node), errmsg);
        if (rc != DV_OK) {
            msg_reply_free(&rep);
            if (rc == DV_ESHUTDOWN)
                return DV_OK;
            *restart = rc == DV_ENOTFOUND;
            return rc;
        }
        const struct msg_wal_rep *w = &rep.m.u.wal_rep;
        /* The source may send records it logged but has not applied yet. */
        uint64_t src = w->n > 0 && w->recs[w->n - 1].lsn > w->applied_lsn ? w->recs[w->n - 1].lsn
                                                                          : w->applied_lsn;
        pthread_mutex_lock(&j->set->mu);
        if (src > j->source_lsn)
            j->source_lsn = src;
        pthread_mutex_unlock(&j->set->mu);
        uint64_t bytes = 0;
        for (uint32_t i = 0; i < w->n && rc == DV_OK; i++) {
            const struct msg_wal_rec *r = &w->recs[i];
            pthread_mutex_lock(&j->set->mu);
            has_until = j->has_until;
            until = j->until;
            pthread_mutex_unlock(&j->set->mu);
            if (has_until && r->lsn > until)
                break;
            if (r->type > UINT8_MAX) {
                dv_errmsg_set(errmsg, "source %s sent WAL record %" PRIu64 " of unknown type %u",
                              j->source, r->lsn, r->type);
                rc = DV_EPROTO;
                break;
            }
            rc = part_apply(p, r->lsn, (uint8_t)r->type, r->body.p, r->body.len, err);
            if (rc != DV_OK) {
                dv_errmsg_set(errmsg, "applying WAL record %" PRIu64 " of source %s: %s", r->lsn,
                              j->source, err);
                break;
            }
            bytes += r->body.len;
            j->progressed = true;
            pthread_mutex_lock(&j->set->mu);
            j->applied_lsn = r->lsn;
            pthread_cond_broadcast(&j->set->cv);
            pthread_mutex_unlock(&j->set->mu);
        }
        uint32_t got = w->n;
        msg_reply_free(&rep);
        if (rc != DV_OK)
            return rc;
        throttle(j, bytes);
        if (got == 0)
            wait_stop(j, PULL_IDLE_MS);
    }
}

/* The source's term history and applied LSN, from a WAL read at `from` (the records read are
 * not used). */
static int source_terms(struct pull_job *j, uint64_t from, struct msg_term *terms, uint32_t *n,
                        uint64_t *applied, char *errmsg)
{
    struct msg req = {.type = MSG_WAL_READ};
    req.addr.coll = (struct msg_str){j->coll, (uint32_t)j->coll_len};
    req.addr.part = j->partition;
    req.u.wal_req = (struct msg_wal_req){from, 1};
    struct msg_reply rep;
    int rc = source_call(j, &req, &rep, call_ms(j->node), errmsg);
    if (rc == DV_OK) {
        const struct msg_wal_rep *w = &rep.m.u.wal_rep;
        *n = w->n_terms < NODE_MAX_TERMS + 1 ? w->n_terms : NODE_MAX_TERMS + 1;
        memcpy(terms, w->terms + (w->n_terms - *n), *n * sizeof *terms); /* the newest */
        *applied = w->applied_lsn;
    }
    msg_reply_free(&rep);
    return rc;
}

/*
 * RESUME: opens the node's own replica (detached into j->dir), cuts it back to the last
 * record it shares with the source and leaves it ready to catch up (*out). Fails (the caller
 * takes a snapshot) when the source cannot be asked, the cut reaches into the checkpoint, or
 * the replica does not open.
 */
static int resume_local(struct pull_job *j, struct part **out, char *errmsg)
{
    char data[PATH_MAX + 8], err[DV_ERRMSG_SIZE];
    struct node *n = j->node;
    struct part_opts o;
    node_replica_opts_(n, WAL_SYNC_NEVER, &o);
    o.wal.sync = WAL_SYNC_NEVER;
    snprintf(data, sizeof data, "%s/data", j->dir);
    *out = NULL;
    set_state(j, MSG_PULL_CATCHING_UP, 0);
    struct part *p = j->own;
    j->own = NULL;
    if (p == NULL) {
        dv_errmsg_set(errmsg, "the replica to resume is gone");
        return DV_ENOTFOUND;
    }
    int rc;
    struct part_info info;
    part_get_info(p, &info);
    uint64_t mine = info.applied_lsn, theirs = 0;
    struct msg_term terms[NODE_MAX_TERMS + 1];
    uint32_t nt = 0;
    rc = source_terms(j, mine + 1, terms, &nt, &theirs, errmsg);
    if (rc != DV_OK) {
        part_close(p);
        return rc;
    }
    uint64_t common = terms_common(j->mine, j->n_mine, mine, terms, nt, theirs);
    uint64_t behind = theirs > common ? theirs - common : 0;
    uint64_t est = mine ? (uint64_t)((double)behind * (double)info.points / (double)mine) : behind;
    if (est > RESUME_MIN_POINTS && est * 100 > info.points * RESUME_MAX_PCT) {
        part_close(p);
        dv_errmsg_set(errmsg,
                      "%" PRIu64 " records behind the source (about %" PRIu64
                      " points of the %" PRIu64 " it holds): a snapshot is cheaper than "
                      "inserting them",
                      behind, est, info.points);
        return DV_ERANGE;
    }
    uint64_t cut = 0;
    if (common < mine) {
        part_close(p);
        p = NULL;
        rc = part_cut_after(n->io, data, common, &cut, err);
        if (rc == DV_OK)
            rc = part_open(n->io, data, &o, &p, err);
        if (rc != DV_OK) {
            dv_errmsg_set(errmsg, "cutting the replica back to LSN %" PRIu64 ": %s", common, err);
            return rc;
        }
        part_get_info(p, &info);
        if (info.applied_lsn != common) {
            part_close(p);
            dv_errmsg_set(errmsg,
                          "the replica reopened at LSN %" PRIu64 " after the cut to LSN %" PRIu64,
                          info.applied_lsn, common);
            return DV_EIO;
        }
    }
    pthread_mutex_lock(&j->set->mu);
    j->set->records_cut += cut;
    if (theirs > j->source_lsn)
        j->source_lsn = theirs;
    pthread_mutex_unlock(&j->set->mu);
    log_info("pull: resuming from the node's own replica",
             "collection=%s partition=%u source=%s lsn=%" PRIu64 " source_lsn=%" PRIu64
             " common=%" PRIu64 " records_cut=%" PRIu64,
             j->coll, j->partition, j->source, mine, theirs, common, cut);
    set_state(j, MSG_PULL_CATCHING_UP, common);
    *out = p;
    return DV_OK;
}

/* Ends the job in FAILED: closes and deletes the copy, keeps the cause. */
static void job_fail(struct pull_job *j, struct part *p, int rc, const char *why)
{
    part_close(p);
    node_remove_tree_(j->node, j->dir);
    pthread_mutex_lock(&j->set->mu);
    j->state = MSG_PULL_FAILED;
    dv_errmsg_set(j->error, "%s", why);
    j->set->failed++;
    pthread_cond_broadcast(&j->set->cv);
    pthread_mutex_unlock(&j->set->mu);
    log_error("pull failed", "collection=%s partition=%u source=%s code=%s error=\"%s\"", j->coll,
              j->partition, j->source, dv_errname(rc), why);
}

static void *job_main(void *arg)
{
    struct pull_job *j = arg;
    char err[DV_ERRMSG_SIZE];
    struct part *p = NULL;
    int restarts = 0;
    bool resume = j->resume, resumed = false;
    for (;;) {
        bool restart = false;
        j->progressed = false;
        int rc = DV_EINVAL;
        if (resume) {
            resume = false;
            rc = resume_local(j, &p, err);
            resumed = rc == DV_OK;
            if (rc != DV_OK && !stopping(j))
                log_warn("pull: cannot resume from the node's own replica; taking a snapshot",
                         "collection=%s partition=%u source=%s cause=\"%s\"", j->coll, j->partition,
                         j->source, err);
        }
        if (!resumed)
            rc = copy_snapshot(j, &p, &restart, err);
        if (rc == DV_OK)
            rc = catch_up(j, p, &restart, err);
        if (restart)
            resumed = false; /* the source's WAL does not reach back: a snapshot next */
        if (stopping(j)) {
            if (rc != DV_OK && p != NULL) { /* stopped by a failure that came with the stop */
                part_close(p);
                p = NULL;
            }
            break;
        }
        if (restart && j->progressed)
            restarts = 0; /* only new snapshots that got nowhere count */
        if (restart && restarts++ < PULL_MAX_RESTARTS) {
            log_warn("pull: starting over with a new snapshot",
                     "collection=%s partition=%u source=%s cause=\"%s\"", j->coll, j->partition,
                     j->source, err);
            part_close(p);
            p = NULL;
            continue;
        }
        if (restart)
            dv_errmsg_prefix(err, "gave up after %d new snapshots", PULL_MAX_RESTARTS);
        job_fail(j, p, rc, err);
        return NULL;
    }
    pthread_mutex_lock(&j->set->mu);
    j->part = p;
    j->set->resumed += resumed && p != NULL;
    pthread_mutex_unlock(&j->set->mu);
    return NULL;
}

/* ---- requests ----------------------------------------------------------------------------- */

static void status_locked(const struct pull_job *j, struct pull_status *st)
{
    st->state = j->state;
    st->bytes_done = j->bytes_done;
    st->bytes_total = j->bytes_total;
    st->applied_lsn = j->applied_lsn;
    st->source_lsn = j->source_lsn;
    snprintf(st->error, sizeof st->error, "%s", j->state == MSG_PULL_FAILED ? j->error : "");
}

/* READY from the node's replica (a finished pull whose record is gone), or NONE. */
static void status_of_replica(struct node *n, const char *coll, size_t len, uint32_t partition,
                              struct pull_status *st)
{
    uint64_t applied = 0;
    memset(st, 0, sizeof *st);
    st->state = node_holds_(n, coll, len, partition, &applied) ? MSG_PULL_READY : MSG_PULL_NONE;
    st->applied_lsn = applied;
}

static int start(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                 uint64_t epoch, const char *source, size_t source_len, uint64_t rate,
                 const struct msg_create_req *create, bool resume, struct pull_status *st,
                 char *errmsg)
{
    struct pull_set *s = n->pulls;
    char err[DV_ERRMSG_SIZE];
    memset(st, 0, sizeof *st);
    if (!node_coll_valid(coll, coll_len)) {
        dv_errmsg_set(errmsg, "collection name must be 1 to %d characters of A-Z a-z 0-9 _ -",
                      NODE_MAX_COLL);
        return DV_EINVAL;
    }
    struct pull_job *j = NULL;
    if (source_len == 0 || source == NULL) {
        dv_errmsg_set(errmsg, "replica_pull start needs the source: the URL of a node that holds "
                              "the replica (tcp://host:port)");
        return DV_EINVAL;
    }
    if (source_len >= sizeof j->source || memchr(source, '\0', source_len) != NULL) {
        dv_errmsg_set(errmsg, "replica_pull source URL is not a URL of at most %zu bytes",
                      sizeof j->source - 1);
        return DV_EINVAL;
    }
    struct hnsw_params hp; /* the index comes with the snapshot: only checked here */
    enum wal_sync sync;
    if (replica_cfg_params(&create->cfg, &hp, &sync, err) != DV_OK) {
        dv_errmsg_set(errmsg, "replica_pull: %s", err);
        return DV_EINVAL;
    }

    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->closing) {
            pthread_mutex_unlock(&s->mu);
            dv_errmsg_set(errmsg, "node is shutting down");
            return DV_ESHUTDOWN;
        }
        j = find_locked(s, coll, coll_len, partition);
        if (j == NULL)
            break;
        bool held = j->state == MSG_PULL_READY && node_holds_(n, coll, coll_len, partition, NULL);
        if (j->op_busy || j->state == MSG_PULL_COPYING || j->state == MSG_PULL_CATCHING_UP) {
            status_locked(j, st); /* running (or being finished): idempotent */
            pthread_mutex_unlock(&s->mu);
            return DV_OK;
        }
        if (held)
            break; /* answered below */
        /* FAILED (or READY but dropped since): discard it and start afresh. */
        j->refs++;
        j->op_busy = true;
        pthread_mutex_unlock(&s->mu);
        discard_copy(s, j);
        pthread_mutex_lock(&s->mu);
        j->op_busy = false;
        pthread_cond_broadcast(&s->cv);
        unlink_locked(s, j);
        put_locked(j, 2); /* ours and the list's */
    }
    if (!resume && node_holds_(n, coll, coll_len, partition, NULL)) {
        pthread_mutex_unlock(&s->mu);
        dv_errmsg_set(errmsg,
                      "collection %.*s partition %u is already a replica of this node: nothing to "
                      "pull (drop it first)",
                      (int)coll_len, coll, partition);
        return DV_EEXIST;
    }
    j = calloc(1, sizeof *j);
    if (j == NULL) {
        pthread_mutex_unlock(&s->mu);
        return DV_ENOMEM;
    }
    j->set = s;
    j->node = n;
    memcpy(j->coll, coll, coll_len);
    j->coll_len = coll_len;
    j->partition = partition;
    j->epoch = j->src_epoch = epoch;
    memcpy(j->source, source, source_len);
    j->rate = rate;
    j->create = *create;
    j->sync = sync;
    j->chunk = NODE_SNAPSHOT_CHUNK;
    if (rate != 0 && rate < j->chunk)
        j->chunk = rate < PULL_MIN_CHUNK ? PULL_MIN_CHUNK : (uint32_t)rate;
    snprintf(j->dir, sizeof j->dir, "%s/replicas/.pulling-%s.%u", n->dir, j->coll, partition);
    j->state = MSG_PULL_COPYING;
    struct tr_opts ro;
    tr_opts_default(&ro);
    ro.timeout_ms = call_ms(n);
    ro.connect_wait_ms = 1000; /* a dead source fails a call at once, not at its timeout */
    int rc = tr_open(n->opts.tr, j->source, &ro, &j->to, err);
    if (rc != DV_OK) {
        pthread_mutex_unlock(&s->mu);
        dv_errmsg_set(errmsg, "replica_pull source '%s' is not a URL to dial: %s", j->source, err);
        free(j);
        return rc == DV_ENOMEM ? rc : DV_EINVAL; /* the dialer refused the URL */
    }
    if (resume) {
        /* Out of the node's table into the job's directory; the thread takes it from there. */
        uint64_t known;
        rc = node_detach_(n, coll, coll_len, partition, epoch, create->incarnation, j->dir, &j->own,
                          j->mine, &j->n_mine, &known, err);
        if (rc == DV_EEXIST) {
            /* Of a dropped collection of the same name: it goes, and a snapshot is copied. */
            log_warn("pull: the node's replica is of another incarnation; dropping it",
                     "collection=%s partition=%u error=\"%s\"", j->coll, partition, err);
            rc = node_drop(n, coll, coll_len, partition, epoch, &known, err);
            if (rc == DV_OK)
                rc = DV_ENOTFOUND; /* nothing to resume from */
        }
        if (rc == DV_ESTALE) {
            pthread_mutex_unlock(&s->mu);
            tr_peer_close(j->to);
            free(j);
            dv_errmsg_set(errmsg, "%s", err);
            return rc;
        }
        j->resume = rc == DV_OK;
        if (rc != DV_OK && rc != DV_ENOTFOUND)
            log_warn("pull: cannot take the node's own replica; taking a snapshot",
                     "collection=%s partition=%u error=\"%s\"", j->coll, partition, err);
    }
    j->refs = 1;
    j->thread_live = true;
    j->next = s->jobs;
    s->jobs = j;
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        j->thread_live = false;
        unlink_locked(s, j);
        put_locked(j, 1);
        pthread_mutex_unlock(&s->mu);
        dv_errmsg_set(errmsg, "cannot start the pull's thread");
        return DV_EOS;
    }
    status_locked(j, st);
    pthread_mutex_unlock(&s->mu);
    log_info("pull started",
             "collection=%s partition=%u source=%s rate=%" PRIu64 " epoch=%" PRIu64
             " incarnation=%" PRIu64,
             j->coll, partition, j->source, rate, epoch, create->incarnation);
    return DV_OK;
}

int pull_start(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
               uint64_t epoch, const char *source, size_t source_len, uint64_t rate,
               const struct msg_create_req *create, struct pull_status *st, char *errmsg)
{
    return start(n, coll, coll_len, partition, epoch, source, source_len, rate, create, false, st,
                 errmsg);
}

int pull_resume(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                uint64_t epoch, const char *source, size_t source_len, uint64_t rate,
                const struct msg_create_req *create, struct pull_status *st, char *errmsg)
{
    return start(n, coll, coll_len, partition, epoch, source, source_len, rate, create, true, st,
                 errmsg);
}

void pull_status(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                 struct pull_status *st)
{
    struct pull_set *s = n->pulls;
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&s->mu);
    struct pull_job *j = find_locked(s, coll, coll_len, partition);
    if (j != NULL)
        status_locked(j, st);
    pthread_mutex_unlock(&s->mu);
    uint64_t applied;
    if (j == NULL)
        status_of_replica(n, coll, coll_len, partition, st);
    else if (st->state == MSG_PULL_READY && node_holds_(n, coll, coll_len, partition, &applied))
        st->applied_lsn = applied; /* it takes writes of its own now */
    else if (st->state == MSG_PULL_READY)
        memset(st, 0, sizeof *st); /* finished, then dropped: NONE */
}

int pull_finish(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                uint64_t epoch, uint64_t term, uint64_t until_lsn, uint32_t wait_ms,
                struct pull_status *st, char *errmsg)
{
    struct pull_set *s = n->pulls;
    char err[DV_ERRMSG_SIZE];
    memset(st, 0, sizeof *st);
    struct pull_job *j = op_begin(s, coll, coll_len, partition);
    bool ready = false;
    if (j != NULL) {
        pthread_mutex_lock(&s->mu);
        ready = j->state == MSG_PULL_READY;
        pthread_mutex_unlock(&s->mu);
    }
    if (j == NULL || ready) {
        /* Finished before (by a FINISH whose answer was lost, maybe before a restart). */
        status_of_replica(n, coll, coll_len, partition, st);
        if (j != NULL && st->state == MSG_PULL_NONE) { /* dropped since: forget the job */
            pthread_mutex_lock(&s->mu);
            unlink_locked(s, j);
            pthread_mutex_unlock(&s->mu);
        }
        if (j != NULL)
            op_end(s, j);
        if (st->state == MSG_PULL_READY && st->applied_lsn >= until_lsn)
            return DV_OK;
        if (st->state == MSG_PULL_READY) {
            dv_errmsg_set(errmsg,
                          "collection %.*s partition %u is a replica of this node at LSN %" PRIu64
                          ", before until_lsn %" PRIu64 ", and no pull runs for it",
                          (int)coll_len, coll, partition, st->applied_lsn, until_lsn);
            return DV_EINVAL;
        }
        dv_errmsg_set(errmsg, "no pull of collection %.*s partition %u on this node", (int)coll_len,
                      coll, partition);
        return DV_ENOTFOUND;
    }

    int rc = DV_OK;
    pthread_mutex_lock(&s->mu);
    if (j->state != MSG_PULL_FAILED && j->applied_lsn > until_lsn) {
        dv_errmsg_set(errmsg,
                      "the copy of collection %s partition %u has applied LSN %" PRIu64
                      ", past until_lsn %" PRIu64 " (was the source fenced at it?)",
                      j->coll, partition, j->applied_lsn, until_lsn);
        rc = DV_EINVAL;
        goto out_unlock;
    }
    j->has_until = true;
    j->until = until_lsn;
    pthread_cond_broadcast(&s->cv);
    struct timespec dl;
    clock_deadline_ms(&dl, wait_ms);
    int w = 0;
    while (j->state != MSG_PULL_FAILED &&
           !(j->state == MSG_PULL_CATCHING_UP && j->applied_lsn >= until_lsn) && !s->closing &&
           w == 0)
        w = pthread_cond_timedwait(&s->cv, &s->mu, &dl);
    if (j->state == MSG_PULL_FAILED)
        goto out_failed;
    if (j->state == MSG_PULL_CATCHING_UP && j->applied_lsn > until_lsn) {
        /* The snapshot alone was past it. */
        j->has_until = false;
        dv_errmsg_set(errmsg,
                      "the copy of collection %s partition %u has applied LSN %" PRIu64
                      ", past until_lsn %" PRIu64 " (was the source fenced at it?)",
                      j->coll, partition, j->applied_lsn, until_lsn);
        rc = DV_EINVAL;
        goto out_unlock;
    }
    if (j->state != MSG_PULL_CATCHING_UP || j->applied_lsn < until_lsn) {
        /* Not there yet: the job goes on as before (the source may be unfenced meanwhile). */
        j->has_until = false;
        status_locked(j, st);
        dv_errmsg_set(errmsg,
                      "the copy of collection %s partition %u is %s at LSN %" PRIu64
                      " of until_lsn %" PRIu64 " after %u ms (source at LSN %" PRIu64
                      "); finish again later",
                      j->coll, partition, state_names[j->state], j->applied_lsn, until_lsn, wait_ms,
                      j->source_lsn);
        rc = s->closing ? DV_ESHUTDOWN : DV_ETIMEDOUT;
        goto out_unlock;
    }
    pthread_mutex_unlock(&s->mu);

    stop_thread(s, j);
    pthread_mutex_lock(&s->mu);
    struct part *p = j->part;
    j->part = NULL;
    if (j->state == MSG_PULL_FAILED || p == NULL) {
        if (p == NULL && j->state != MSG_PULL_FAILED) { /* the thread failed as it was stopped */
            j->state = MSG_PULL_FAILED;
            dv_errmsg_set(j->error, "the pull's thread ended without a copy");
            s->failed++;
            node_remove_tree_(j->node, j->dir);
        }
        part_close(p);
        goto out_failed;
    }
    uint64_t applied = j->applied_lsn;
    pthread_mutex_unlock(&s->mu);

    /* Served as it is, still open: its WAL synced, rebased onto the replica's path and
     * policy. A checkpoint and a reopen here took seconds for a large replica while the
     * source was fenced (writes paused); the records caught up stay in the WAL until the
     * replica's next checkpoint. */
    part_pause_bg(p);
    rc = node_install_(n, j->dir, j->coll, j->coll_len, partition,
                       epoch > j->epoch ? epoch : j->epoch, j->create.incarnation, term, j->sync, p,
                       err);
    if (rc != DV_OK) {
        dv_errmsg_prefix(err, "making the copy a replica");
        job_fail(j, NULL, rc, err);
        dv_errmsg_set(errmsg, "pull of collection %s partition %u: %s", j->coll, partition, err);
        op_end(s, j);
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    j->state = MSG_PULL_READY;
    s->finished++;
    status_locked(j, st);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    log_info("pull finished: replica installed",
             "collection=%s partition=%u source=%s lsn=%" PRIu64 " epoch=%" PRIu64
             " incarnation=%" PRIu64,
             j->coll, partition, j->source, applied, epoch > j->epoch ? epoch : j->epoch,
             j->create.incarnation);
    op_end(s, j);
    return DV_OK;

out_failed:
    status_locked(j, st);
    dv_errmsg_set(errmsg, "pull of collection %s partition %u failed: %s (abort or start again)",
                  j->coll, partition, j->error);
    rc = DV_EIO;
out_unlock:
    pthread_mutex_unlock(&s->mu);
    op_end(s, j);
    return rc;
}

int pull_abort(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
               uint64_t epoch, uint64_t *known, char *errmsg)
{
    struct pull_set *s = n->pulls;
    *known = 0;
    struct pull_job *j = op_begin(s, coll, coll_len, partition);
    if (j == NULL)
        return DV_OK;
    pthread_mutex_lock(&s->mu);
    enum msg_pull_state state = j->state;
    pthread_mutex_unlock(&s->mu);
    if (state == MSG_PULL_READY) {
        /* Finished: the replica is the node's now; drop it as replica_drop would. */
        int rc = node_drop(n, coll, coll_len, partition, epoch, known, errmsg);
        if (rc != DV_OK && *known != 0) {
            op_end(s, j);
            return rc; /* an older epoch than the replica's: keep it */
        }
        *known = 0;
    } else {
        discard_copy(s, j);
    }
    log_info("pull aborted", "collection=%s partition=%u state=%s", j->coll, partition,
             state_names[state]);
    pthread_mutex_lock(&s->mu);
    unlink_locked(s, j);
    pthread_mutex_unlock(&s->mu);
    op_end(s, j);
    return DV_OK;
}

void pull_get_stats(struct node *n, struct pull_stats *out)
{
    struct pull_set *s = n->pulls;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    for (struct pull_job *j = s->jobs; j; j = j->next)
        out->running += j->state == MSG_PULL_COPYING || j->state == MSG_PULL_CATCHING_UP;
    out->finished = s->finished;
    out->failed = s->failed;
    out->bytes = s->bytes;
    out->resumed = s->resumed;
    out->records_cut = s->records_cut;
    pthread_mutex_unlock(&s->mu);
}
