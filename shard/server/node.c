/* node.c - the replica table of a dvec-shard: layout on disk, epochs, create and drop. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "clock.h"
#include "hash.h"
#include "log.h"
#include "node_int.h"

bool node_coll_valid(const char *s, size_t n)
{
    if (n == 0 || n > NODE_MAX_COLL)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static unsigned bucket_of(const char *coll, size_t len, uint32_t partition)
{
    return (unsigned)(hash64_bytes(coll, len, partition) % NODE_BUCKETS);
}

/* Called with n->mu held. */
static struct rep *find(struct node *n, const char *coll, size_t len, uint32_t partition)
{
    for (struct rep *r = n->buckets[bucket_of(coll, len, partition)]; r; r = r->next)
        if (r->pub.partition == partition && strlen(r->pub.coll) == len &&
            memcmp(r->pub.coll, coll, len) == 0)
            return r;
    return NULL;
}

static void insert(struct node *n, struct rep *r)
{
    unsigned b = bucket_of(r->pub.coll, strlen(r->pub.coll), r->pub.partition);
    r->next = n->buckets[b];
    n->buckets[b] = r;
    n->n_replicas++;
}

static void unlink_rep(struct node *n, struct rep *r)
{
    unsigned b = bucket_of(r->pub.coll, strlen(r->pub.coll), r->pub.partition);
    for (struct rep **pp = &n->buckets[b]; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            n->n_replicas--;
            return;
        }
}

/* ---- files ------------------------------------------------------------------------------- */

/* Removes a directory tree (the files of a dropped replica) through the node's io: files are
 * unlinked, directories (unlink says EISDIR) emptied first. Best effort: what cannot be
 * removed is logged, and the next start removes leftovers again. */
static void remove_tree(struct io *io, const char *dir, int depth)
{
    char **names = NULL;
    size_t nn = 0;
    if (depth < 16 && io->list(io, dir, &names, &nn) == 0) {
        for (size_t i = 0; i < nn; i++) {
            char path[PATH_MAX];
            if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path)
                continue;
            int rc = io->unlink(io, path);
            if (rc == -EISDIR || rc == -EPERM)
                remove_tree(io, path, depth + 1);
            else if (rc != 0 && rc != -ENOENT)
                log_warn("cannot remove", "path=%s error=%s", path, strerror(-rc));
        }
        io_free_list(names, nn);
    }
    int rc = io->rmdir(io, dir);
    if (rc != 0 && rc != -ENOENT)
        log_warn("cannot remove", "path=%s error=%s", dir, strerror(-rc));
}

static void replica_opts(struct node *n, enum wal_sync fsync, struct part_opts *o)
{
    *o = n->opts.part;
    o->wal.sync = n->opts.force_fsync >= 0 ? (enum wal_sync)n->opts.force_fsync : fsync;
}

static struct rep *rep_new(struct node *n, const char *dir, const char *coll, size_t len,
                           uint32_t partition, uint64_t epoch, uint64_t incarnation, uint64_t term,
                           uint64_t term_lsn, enum wal_sync fsync)
{
    struct rep *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    if ((r->pub.repl = repl_new(n->net)) == NULL) {
        free(r);
        return NULL;
    }
    r->pub.term = term;
    r->pub.term_lsn = term_lsn;
    pthread_mutex_init(&r->apply_mu, NULL);
    memcpy(r->pub.coll, coll, len);
    r->pub.coll[len] = '\0';
    r->pub.partition = partition;
    r->pub.epoch = epoch;
    r->pub.incarnation_ = incarnation;
    r->pub.fsync = fsync;
    pthread_mutex_init(&r->meta_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* clock_deadline_ms */
    pthread_cond_init(&r->writes_done, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    return r;
}

/* Gives r its open replica p, whose records r's replication taps from now on. */
static void rep_attach(struct rep *r, struct part *p)
{
    r->pub.part = p;
    part_set_tap(p, repl_tap, r->pub.repl);
}

static void rep_free(struct rep *r)
{
    repl_free(r->pub.repl);
    pthread_mutex_destroy(&r->apply_mu);
    pthread_cond_destroy(&r->writes_done);
    pthread_mutex_destroy(&r->meta_mu);
    free(r);
}

/* Parses "<coll>.<part>" into its parts. */
static bool parse_name(const char *name, size_t *coll_len, uint32_t *partition)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL || !node_coll_valid(name, (size_t)(dot - name)) || dot[1] == '\0')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(dot + 1, &end, 10);
    if (*end != '\0' || errno != 0 || v > UINT32_MAX || dot[1] < '0' || dot[1] > '9')
        return false;
    *coll_len = (size_t)(dot - name);
    *partition = (uint32_t)v;
    return true;
}

static int open_one(struct node *n, const char *name)
{
    char err[DV_ERRMSG_SIZE], dir[PATH_MAX], data[PATH_MAX + 8];
    size_t coll_len;
    uint32_t partition;
    if (!parse_name(name, &coll_len, &partition)) {
        log_warn("ignoring unknown entry in replicas/", "name=%s", name);
        return DV_OK;
    }
    snprintf(dir, sizeof dir, "%s/replicas/%s", n->dir, name);
    struct node_meta m;
    enum wal_sync fsync;
    int rc = node_meta_read_(n, dir, &m, &fsync, err);
    if (rc != DV_OK)
        goto err_log;
    struct part_opts o;
    replica_opts(n, fsync, &o);
    struct part *p;
    snprintf(data, sizeof data, "%s/data", dir);
    rc = part_open(n->io, data, &o, &p, err);
    if (rc != DV_OK)
        goto err_log;
    struct rep *r = rep_new(n, dir, name, coll_len, partition, m.epoch, m.incarnation, m.term,
                            m.term_lsn, fsync);
    if (r == NULL) {
        part_close(p);
        return DV_ENOMEM;
    }
    rep_attach(r, p);
    r->fenced = m.fenced;
    int trc = node_terms_read_(n, dir, m.term, r->hist, &r->n_hist);
    if (trc != 0) /* kept empty: a catch-up then matches less and copies more */
        log_warn("replica's term history does not read; starting it empty", "dir=%s/terms rc=%d",
                 dir, trc);
    struct part_info info;
    part_get_info(p, &info);
    log_info("replica opened",
             "collection=%s partition=%u epoch=%" PRIu64 " incarnation=%" PRIu64 " points=%" PRIu64
             " lsn=%" PRIu64 " open_ms=%" PRIu64 "%s",
             r->pub.coll, partition, m.epoch, m.incarnation, info.points, info.applied_lsn,
             info.open_ms, m.fenced ? " fenced=1 (writes refused until fence off)" : "");
    pthread_mutex_lock(&n->mu);
    insert(n, r);
    pthread_mutex_unlock(&n->mu);
    return DV_OK;

err_log:
    n->open_failures++;
    log_error("replica does not open; not served", "dir=%s code=%s error=%s", dir, dv_errname(rc),
              err);
    return DV_OK;
}

int node_open(const char *data_dir, const struct node_opts *o, struct node **out, char *errmsg)
{
    if (strlen(data_dir) >= NODE_DIR_MAX) {
        dv_errmsg_set(errmsg, "data dir path is longer than %d bytes", NODE_DIR_MAX - 1);
        return DV_EINVAL;
    }
    struct node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return DV_ENOMEM;
    snprintf(n->dir, sizeof n->dir, "%s", data_dir);
    n->opts = *o;
    n->io = o->io ? o->io : io_posix();
    /* Session ids unique across restarts: a reader holding an id from before a restart gets
     * "unknown session", never another snapshot under the same id. */
    n->next_session = (clock_wall_ns() / 1000) << 8;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->released, NULL);
    pthread_mutex_init(&n->snap_mu, NULL);
    if (repl_net_new(o->tr, o->repl_timeout_ms, &n->net) != DV_OK || pull_init_(n) != DV_OK) {
        node_close(n, false);
        return DV_ENOMEM;
    }

    char path[PATH_MAX + 16];
    const char *subs[] = {"replicas", "tmp"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", data_dir, subs[i]);
        int rc = n->io->mkdir(n->io, path, 0755);
        if (rc != 0 && rc != -EEXIST) {
            dv_errmsg_set(errmsg, "%s: %s", path, strerror(-rc));
            node_close(n, false);
            return DV_EOS;
        }
    }
    /* Snapshot files of an earlier run are useless now. */
    snprintf(path, sizeof path, "%s/tmp", data_dir);
    remove_tree(n->io, path, 0);
    n->io->mkdir(n->io, path, 0755);

    snprintf(path, sizeof path, "%s/replicas", data_dir);
    char **names;
    size_t nn;
    int rc = n->io->list(n->io, path, &names, &nn);
    if (rc != 0) {
        dv_errmsg_set(errmsg, "%s: %s", path, strerror(-rc));
        node_close(n, false);
        return DV_EOS;
    }
    for (size_t i = 0; i < nn; i++) {
        if (names[i][0] == '.') {
            /* A create, drop or pull that a crash interrupted: finish it (a pull is lost). */
            char leftover[PATH_MAX + 300];
            snprintf(leftover, sizeof leftover, "%s/%s", path, names[i]);
            log_warn("removing leftover of an interrupted create, drop or pull", "dir=%s",
                     leftover);
            remove_tree(n->io, leftover, 0);
            continue;
        }
        rc = open_one(n, names[i]);
        if (rc != DV_OK) {
            io_free_list(names, nn);
            dv_errmsg_set(errmsg, "opening replicas: %s", dv_strerror(rc));
            node_close(n, false);
            return rc;
        }
    }
    io_free_list(names, nn);
    *out = n;
    return DV_OK;
}

size_t node_open_failures(struct node *n)
{
    return n->open_failures;
}

void node_close(struct node *n, bool checkpoint)
{
    if (n == NULL)
        return;
    char err[DV_ERRMSG_SIZE];
    pull_close_(n); /* its threads use the node */
    for (unsigned b = 0; b < NODE_BUCKETS; b++) {
        struct rep *r = n->buckets[b];
        while (r) {
            struct rep *next = r->next;
            if (checkpoint) {
                int rc = part_checkpoint(r->pub.part, err);
                if (rc != DV_OK)
                    log_error("checkpoint at shutdown failed",
                              "collection=%s partition=%u "
                              "error=%s",
                              r->pub.coll, r->pub.partition, err);
            }
            part_close(r->pub.part);
            rep_free(r);
            r = next;
        }
        n->buckets[b] = NULL;
    }
    node_snapshot_expire_all_(n);
    repl_net_free(n->net);
    pthread_mutex_destroy(&n->snap_mu);
    pthread_cond_destroy(&n->released);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

/* ---- lookups ----------------------------------------------------------------------------- */

int node_acquire(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                 uint64_t epoch, struct node_replica **out, uint64_t *known, char *errmsg)
{
    *known = 0;
    pthread_mutex_lock(&n->mu);
    struct rep *r = find(n, coll, coll_len, partition);
    if (r == NULL) {
        pthread_mutex_unlock(&n->mu);
        dv_errmsg_set(errmsg, "stale map: collection %.*s partition %u is not held by this node",
                      (int)coll_len, coll, partition);
        return DV_ESTALE;
    }
    if (epoch < r->pub.epoch) {
        *known = r->pub.epoch;
        pthread_mutex_unlock(&n->mu);
        dv_errmsg_set(errmsg,
                      "stale map: collection %.*s partition %u: request routed with epoch %" PRIu64
                      ", this node has epoch %" PRIu64,
                      (int)coll_len, coll, partition, epoch, *known);
        return DV_ESTALE;
    }
    bool raise = epoch > r->pub.epoch;
    r->pub.refs_++;
    pthread_mutex_unlock(&n->mu);
    if (raise) {
        /* Persist before serving under the new epoch, so a restart never forgets it. */
        pthread_mutex_lock(&r->meta_mu);
        pthread_mutex_lock(&n->mu);
        bool still = epoch > r->pub.epoch;
        pthread_mutex_unlock(&n->mu);
        if (still) {
            /* the incarnation changes only under meta_mu, held here */
            struct node_meta m = {epoch, node_incarnation(&r->pub), r->pub.term, r->pub.term_lsn,
                                  r->fenced};
            int rc = node_meta_write_(n, r->dir, &m, r->pub.fsync);
            if (rc == 0) {
                pthread_mutex_lock(&n->mu);
                if (epoch > r->pub.epoch)
                    r->pub.epoch = epoch;
                pthread_mutex_unlock(&n->mu);
                log_info("replica epoch raised", "collection=%s partition=%u epoch=%" PRIu64,
                         r->pub.coll, partition, epoch);
            } else {
                log_error("cannot persist epoch", "dir=%s error=%s", r->dir, strerror(-rc));
            }
        }
        pthread_mutex_unlock(&r->meta_mu);
    }
    *out = &r->pub;
    return DV_OK;
}

void node_release(struct node *n, struct node_replica *pub)
{
    pthread_mutex_lock(&n->mu);
    pub->refs_--;
    if (pub->dropped_ && pub->refs_ == 0)
        pthread_cond_broadcast(&n->released);
    pthread_mutex_unlock(&n->mu);
}

uint64_t node_incarnation(const struct node_replica *r)
{
    return __atomic_load_n(&r->incarnation_, __ATOMIC_RELAXED);
}

void node_foreach(struct node *n, void (*fn)(void *arg, struct node_replica *r), void *arg)
{
    pthread_mutex_lock(&n->mu);
    size_t cap = n->n_replicas, cnt = 0;
    struct rep **all = malloc((cap ? cap : 1) * sizeof *all);
    if (all == NULL) {
        pthread_mutex_unlock(&n->mu);
        return;
    }
    for (unsigned b = 0; b < NODE_BUCKETS; b++)
        for (struct rep *r = n->buckets[b]; r; r = r->next) {
            r->pub.refs_++;
            all[cnt++] = r;
        }
    pthread_mutex_unlock(&n->mu);
    for (size_t i = 0; i < cnt; i++) {
        fn(arg, &all[i]->pub);
        node_release(n, &all[i]->pub);
    }
    free(all);
}

static void add_points(void *arg, struct node_replica *r)
{
    struct part_info info;
    part_get_info(r->part, &info);
    *(uint64_t *)arg += info.points;
}

uint64_t node_points(struct node *n)
{
    uint64_t total = 0;
    node_foreach(n, add_points, &total);
    return total;
}

static void checkpoint_one(void *arg, struct node_replica *r)
{
    char err[DV_ERRMSG_SIZE];
    (void)arg;
    if (part_checkpoint(r->part, err) != DV_OK)
        log_error("checkpoint failed", "collection=%s partition=%u error=%s", r->coll, r->partition,
                  err);
}

void node_checkpoint_all(struct node *n)
{
    node_foreach(n, checkpoint_one, NULL);
}

/* ---- fences ------------------------------------------------------------------------------ */

int node_write_begin(struct node *n, struct node_replica *pub, char *errmsg)
{
    struct rep *r = (struct rep *)pub;
    pthread_mutex_lock(&n->mu);
    bool fenced = r->fenced;
    if (!fenced)
        r->writes++;
    pthread_mutex_unlock(&n->mu);
    if (fenced) {
        dv_errmsg_set(errmsg, "partition %s/%u is being moved: writes are paused, retry", pub->coll,
                      pub->partition);
        return DV_EBUSY;
    }
    return DV_OK;
}

void node_write_end(struct node *n, struct node_replica *pub)
{
    struct rep *r = (struct rep *)pub;
    pthread_mutex_lock(&n->mu);
    if (--r->writes == 0)
        pthread_cond_broadcast(&r->writes_done);
    pthread_mutex_unlock(&n->mu);
}

bool node_fenced(struct node *n, const struct node_replica *pub)
{
    const struct rep *r = (const struct rep *)pub;
    pthread_mutex_lock(&n->mu);
    bool f = r->fenced;
    pthread_mutex_unlock(&n->mu);
    return f;
}

int node_fence(struct node *n, struct node_replica *pub, bool on, uint32_t wait_ms, uint64_t *lsn,
               char *errmsg)
{
    struct rep *r = (struct rep *)pub;
    int rc = 0;
    pthread_mutex_lock(&r->meta_mu);
    if (r->fenced != on) {
        /* Persist first: a restart must never forget a fence a coordinator was told of. */
        pthread_mutex_lock(&n->mu);
        struct node_meta m = {pub->epoch, node_incarnation(pub), pub->term, pub->term_lsn, on};
        pthread_mutex_unlock(&n->mu);
        rc = node_meta_write_(n, r->dir, &m, pub->fsync);
        if (rc == 0) {
            pthread_mutex_lock(&n->mu);
            r->fenced = on;
            pthread_mutex_unlock(&n->mu);
            log_info(on ? "replica fenced: writes refused"
                        : "replica fence lifted: writes accepted",
                     "collection=%s partition=%u", pub->coll, pub->partition);
        }
    }
    pthread_mutex_unlock(&r->meta_mu);
    if (rc != 0) {
        dv_errmsg_set(errmsg, "%s/node.meta: %s", r->dir, strerror(-rc));
        return DV_EOS;
    }
    if (on) {
        /* Writes that passed node_write_begin before the fence finish first. */
        struct timespec dl;
        clock_deadline_ms(&dl, wait_ms);
        pthread_mutex_lock(&n->mu);
        int w = 0;
        while (r->writes > 0 && w == 0)
            w = pthread_cond_timedwait(&r->writes_done, &n->mu, &dl);
        int left = r->writes;
        pthread_mutex_unlock(&n->mu);
        if (left > 0) {
            dv_errmsg_set(errmsg,
                          "partition %s/%u is fenced but %d writes are still running after %u ms; "
                          "repeat the fence to learn the LSN",
                          pub->coll, pub->partition, left, wait_ms);
            return DV_ETIMEDOUT;
        }
    }
    struct part_info info;
    part_get_info(pub->part, &info);
    *lsn = info.applied_lsn;
    return DV_OK;
}

/* ---- installing a replica built elsewhere (pull.c) ----------------------------------------- */

void node_remove_tree_(struct node *n, const char *dir)
{
    remove_tree(n->io, dir, 0);
}

void node_replica_opts_(struct node *n, enum wal_sync fsync, struct part_opts *o)
{
    replica_opts(n, fsync, o);
}

bool node_holds_(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                 uint64_t *applied)
{
    pthread_mutex_lock(&n->mu);
    struct rep *r = find(n, coll, coll_len, partition);
    if (r != NULL)
        r->pub.refs_++;
    pthread_mutex_unlock(&n->mu);
    if (r == NULL)
        return false;
    if (applied) {
        struct part_info info;
        part_get_info(r->pub.part, &info);
        *applied = info.applied_lsn;
    }
    node_release(n, &r->pub);
    return true;
}

int node_install_(struct node *n, const char *tmp, const char *coll, size_t coll_len,
                  uint32_t partition, uint64_t epoch, uint64_t incarnation, uint64_t term,
                  enum wal_sync fsync, struct part *open, char *errmsg)
{
    char err[DV_ERRMSG_SIZE], final[PATH_MAX], data[PATH_MAX + 8], replicas[PATH_MAX + 16];
    struct node_meta m = {epoch, incarnation, term, 0, false};
    int rc;
    if (open != NULL && (rc = part_sync_wal(open, err)) != DV_OK) {
        /* Its records must be on disk before the rename makes it a replica of the node. */
        part_close(open);
        dv_errmsg_set(errmsg, "syncing the copy's WAL: %s", err);
        return rc;
    }
    rc = node_meta_write_(n, tmp, &m, fsync);
    if (rc != 0) {
        part_close(open);
        dv_errmsg_set(errmsg, "%s/node.meta: %s", tmp, strerror(-rc));
        return DV_EOS;
    }
    /* A copy holds the source's log: its history is (term, 1). A resumed replica's old
     * history goes. */
    char terms[PATH_MAX + 8];
    snprintf(terms, sizeof terms, "%s/terms", tmp);
    rc = n->io->unlink(n->io, terms);
    if (rc != 0 && rc != -ENOENT) {
        part_close(open);
        dv_errmsg_set(errmsg, "%s: %s", terms, strerror(-rc));
        return DV_EOS;
    }
    snprintf(final, sizeof final, "%s/replicas/%.*s.%u", n->dir, (int)coll_len, coll, partition);
    snprintf(replicas, sizeof replicas, "%s/replicas", n->dir);
    pthread_mutex_lock(&n->mu);
    if (find(n, coll, coll_len, partition) != NULL) {
        pthread_mutex_unlock(&n->mu);
        part_close(open);
        dv_errmsg_set(errmsg, "collection %.*s partition %u is already held by this node",
                      (int)coll_len, coll, partition);
        return DV_EEXIST;
    }
    rc = n->io->rename(n->io, tmp, final);
    pthread_mutex_unlock(&n->mu);
    if (rc != 0) {
        part_close(open);
        dv_errmsg_set(errmsg, "renaming %s to %s: %s", tmp, final, strerror(-rc));
        return rc == -EEXIST || rc == -ENOTEMPTY ? DV_EEXIST : DV_EOS;
    }
    struct part *p = open;
    open = NULL;
    if ((rc = io_fsync_dir(n->io, replicas)) != 0) {
        dv_errmsg_set(errmsg, "%s: fsync: %s", replicas, strerror(-rc));
        rc = DV_EOS;
        goto err_remove;
    }
    /* Opened outside n->mu (loading a large checkpoint takes a while): until it is in the
     * table the node answers as for a partition it does not hold. */
    struct part_opts o;
    replica_opts(n, fsync, &o);
    snprintf(data, sizeof data, "%s/data", final);
    if (p != NULL)
        rc = part_rebase(p, data, o.wal.sync, err);
    else
        rc = part_open(n->io, data, &o, &p, err);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "%s", err);
        goto err_remove;
    }
    struct rep *r =
        rep_new(n, final, coll, coll_len, partition, epoch, incarnation, term, 0, fsync);
    if (r == NULL) {
        rc = DV_ENOMEM;
        goto err_remove; /* closes p */
    }
    rep_attach(r, p);
    pthread_mutex_lock(&n->mu);
    insert(n, r);
    pthread_mutex_unlock(&n->mu);
    return DV_OK;

err_remove : {
    /* Not registered: it must not come back as a replica at the next start. */
    part_close(p);
    char gone[PATH_MAX + 64];
    snprintf(gone, sizeof gone, "%s/.dropping-%.*s.%u-pull", replicas, (int)coll_len, coll,
             partition);
    if (n->io->rename(n->io, final, gone) == 0) {
        io_fsync_dir(n->io, replicas);
        remove_tree(n->io, gone, 0);
    } else {
        remove_tree(n->io, final, 0);
    }
    return rc;
}
}

/* ---- create and drop --------------------------------------------------------------------- */

/*
 * Takes r out of the table, waits until no request uses it, then removes its files durably
 * (renamed to a leftover name first, so a crash cannot leave half of it under its name).
 * Called with n->mu held; returns with it released. Frees r.
 */
static void drop_locked(struct node *n, struct rep *r)
{
    unlink_rep(n, r);
    r->pub.dropped_ = true;
    while (r->pub.refs_ > 0)
        pthread_cond_wait(&n->released, &n->mu);
    pthread_mutex_unlock(&n->mu);

    part_close(r->pub.part);
    char gone[PATH_MAX + 64], replicas[PATH_MAX + 16];
    static uint64_t seq;
    uint64_t s = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
    snprintf(gone, sizeof gone, "%s/replicas/.dropping-%s.%u-%" PRIu64, n->dir, r->pub.coll,
             r->pub.partition, s);
    snprintf(replicas, sizeof replicas, "%s/replicas", n->dir);
    int rc = n->io->rename(n->io, r->dir, gone);
    if (rc == 0)
        io_fsync_dir(n->io, replicas);
    remove_tree(n->io, rc == 0 ? gone : r->dir, 0);
    rep_free(r);
}

int node_detach_(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                 uint64_t epoch, uint64_t incarnation, const char *dest, struct part **out,
                 struct msg_term *hist, uint32_t *nh, uint64_t *known, char *errmsg)
{
    *known = 0;
    *nh = 0;
    *out = NULL;
    pthread_mutex_lock(&n->mu);
    struct rep *r = find(n, coll, coll_len, partition);
    if (r == NULL) {
        pthread_mutex_unlock(&n->mu);
        dv_errmsg_set(errmsg, "collection %.*s partition %u is not held by this node",
                      (int)coll_len, coll, partition);
        return DV_ENOTFOUND;
    }
    if (epoch < r->pub.epoch) {
        *known = r->pub.epoch;
        pthread_mutex_unlock(&n->mu);
        dv_errmsg_set(errmsg,
                      "stale map: collection %.*s partition %u: routed with epoch %" PRIu64
                      ", this node has epoch %" PRIu64,
                      (int)coll_len, coll, partition, epoch, *known);
        return DV_ESTALE;
    }
    uint64_t had = node_incarnation(&r->pub);
    if (incarnation != 0 && had != 0 && had != incarnation) {
        pthread_mutex_unlock(&n->mu);
        dv_errmsg_set(errmsg,
                      "collection %.*s partition %u: this node holds incarnation %" PRIu64
                      ", the pull is for incarnation %" PRIu64 " (a collection of the same name "
                      "dropped and created again)",
                      (int)coll_len, coll, partition, had, incarnation);
        return DV_EEXIST;
    }
    uint32_t k = r->n_hist;
    memcpy(hist, r->hist, k * sizeof *hist);
    if (r->pub.term > 0)
        hist[k++] = (struct msg_term){r->pub.term, r->pub.term_lsn + 1};
    *nh = k;
    unlink_rep(n, r);
    r->pub.dropped_ = true;
    while (r->pub.refs_ > 0)
        pthread_cond_wait(&n->released, &n->mu);
    pthread_mutex_unlock(&n->mu);

    /* Kept open (a reopen replays its WAL since the checkpoint: seconds for a large one). */
    struct part *p = r->pub.part;
    part_set_tap(p, NULL, NULL);
    part_pause_bg(p);
    char replicas[PATH_MAX + 16], data[PATH_MAX + 8], err[DV_ERRMSG_SIZE];
    snprintf(replicas, sizeof replicas, "%s/replicas", n->dir);
    remove_tree(n->io, dest, 0);
    int rc = n->io->rename(n->io, r->dir, dest);
    if (rc == 0)
        rc = io_fsync_dir(n->io, replicas);
    if (rc != 0) {
        /* Out of the table either way: what is left goes, as a drop would remove it. */
        dv_errmsg_set(errmsg, "moving %s to %s: %s", r->dir, dest, strerror(-rc));
        part_close(p);
        remove_tree(n->io, r->dir, 0);
        rep_free(r);
        return DV_EOS;
    }
    snprintf(data, sizeof data, "%s/data", dest);
    rc = part_rebase(p, data, WAL_SYNC_NEVER, err);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "%s: %s", data, err);
        part_close(p);
        rep_free(r);
        return rc;
    }
    log_info("replica detached for a catch-up", "collection=%.*s partition=%u dir=%s terms=%u",
             (int)coll_len, coll, partition, dest, k);
    rep_free(r);
    *out = p;
    return DV_OK;
}

/*
 * A create of `incarnation` (not 0) finding a replica of another non-zero incarnation: that
 * replica belongs to a collection of the same name that was dropped (the coordinators'
 * reconcile had not dropped it here yet, or this node was down meanwhile), so it is dropped
 * and the caller creates an empty one. DV_OK when there was nothing to drop or it was
 * dropped; DV_ESTALE (with *known) when the request is older than the replica: a create of an
 * earlier incarnation never removes a later one.
 */
static int drop_other_incarnation(struct node *n, const char *coll, size_t coll_len,
                                  uint32_t partition, uint64_t epoch, uint64_t incarnation,
                                  uint64_t *known, char *errmsg)
{
    if (incarnation == 0)
        return DV_OK;
    pthread_mutex_lock(&n->mu);
    struct rep *r = find(n, coll, coll_len, partition);
    uint64_t had = r ? node_incarnation(&r->pub) : 0;
    if (r == NULL || had == 0 || had == incarnation) {
        pthread_mutex_unlock(&n->mu);
        return DV_OK;
    }
    if (epoch < r->pub.epoch || incarnation < had) {
        *known = r->pub.epoch;
        pthread_mutex_unlock(&n->mu);
        dv_errmsg_set(errmsg,
                      "stale map: collection %.*s partition %u: create of incarnation %" PRIu64
                      " routed with epoch %" PRIu64 ", this node holds incarnation %" PRIu64
                      " with epoch %" PRIu64,
                      (int)coll_len, coll, partition, incarnation, epoch, had, *known);
        return DV_ESTALE;
    }
    uint64_t old_epoch = r->pub.epoch;
    drop_locked(n, r);
    log_warn("replica of a dropped collection replaced",
             "collection=%.*s partition=%u old_incarnation=%" PRIu64 " old_epoch=%" PRIu64
             " incarnation=%" PRIu64 " epoch=%" PRIu64,
             (int)coll_len, coll, partition, had, old_epoch, incarnation, epoch);
    return DV_OK;
}

/* Records `incarnation` for a replica created without one (before incarnations existed):
 * from now on a create of another incarnation replaces it. */
static int adopt_incarnation(struct node *n, struct node_replica *pub, uint64_t incarnation,
                             char *errmsg)
{
    struct rep *r = (struct rep *)pub;
    int rc = 0;
    pthread_mutex_lock(&r->meta_mu);
    if (node_incarnation(pub) == 0) {
        pthread_mutex_lock(&n->mu);
        uint64_t epoch = pub->epoch;
        pthread_mutex_unlock(&n->mu);
        struct node_meta m = {epoch, incarnation, pub->term, pub->term_lsn, r->fenced};
        rc = node_meta_write_(n, r->dir, &m, pub->fsync);
        if (rc == 0) {
            __atomic_store_n(&pub->incarnation_, incarnation, __ATOMIC_RELAXED);
            log_info("replica given its collection's incarnation",
                     "collection=%s partition=%u incarnation=%" PRIu64, pub->coll, pub->partition,
                     incarnation);
        }
    }
    pthread_mutex_unlock(&r->meta_mu);
    if (rc != 0) {
        dv_errmsg_set(errmsg, "%s/node.meta: %s", r->dir, strerror(-rc));
        return DV_EOS;
    }
    return DV_OK;
}

/* Whether replica p has the vectors a create asks for. */
static bool same_vectors(struct part *p, const struct hnsw_params *index,
                         const struct part_space *spaces, uint32_t n_spaces)
{
    uint32_t ns;
    const struct part_space *have = part_spaces(p, &ns);
    if (spaces == NULL)
        return ns == 1 && have[0].kind == PART_VEC_DENSE && have[0].name[0] == '\0' &&
               have[0].index.dim == index->dim && have[0].index.metric == index->metric;
    if (ns != n_spaces)
        return false;
    for (uint32_t i = 0; i < ns; i++)
        if (strcmp(have[i].name, spaces[i].name) != 0 || have[i].kind != spaces[i].kind ||
            have[i].index.dim != spaces[i].index.dim ||
            have[i].index.metric != spaces[i].index.metric)
            return false;
    return true;
}

int node_create(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                uint64_t epoch, uint64_t incarnation, const struct hnsw_params *index,
                const struct part_space *spaces, uint32_t n_spaces, enum wal_sync fsync,
                uint64_t *known, char *errmsg)
{
    char err[DV_ERRMSG_SIZE];
    *known = 0;
    if (!node_coll_valid(coll, coll_len)) {
        dv_errmsg_set(errmsg, "collection name must be 1 to %d characters of A-Z a-z 0-9 _ -",
                      NODE_MAX_COLL);
        return DV_EINVAL;
    }
    if ((unsigned)fsync > WAL_SYNC_NEVER) {
        dv_errmsg_set(errmsg, "unknown fsync policy %u", (unsigned)fsync);
        return DV_EINVAL;
    }
    int rc =
        drop_other_incarnation(n, coll, coll_len, partition, epoch, incarnation, known, errmsg);
    if (rc != DV_OK)
        return rc;
    struct node_replica *have;
    rc = node_acquire(n, coll, coll_len, partition, epoch, &have, known, errmsg);
    if (rc == DV_OK) {
        struct part_info info;
        part_get_info(have->part, &info);
        bool same = same_vectors(have->part, index, spaces, n_spaces);
        if (same && incarnation != 0 && node_incarnation(have) != incarnation)
            rc = adopt_incarnation(n, have, incarnation, errmsg);
        node_release(n, have);
        if (!same) {
            dv_errmsg_set(errmsg, "collection %.*s partition %u exists with dimension %u metric %d",
                          (int)coll_len, coll, partition, info.index.dim, (int)info.index.metric);
            return DV_EEXIST;
        }
        return rc;
    }
    if (*known != 0)
        return rc; /* exists with a newer epoch */

    /* Build it under a hidden name, then rename: a crash leaves a leftover, not a half
     * replica. Two concurrent creates of the same partition: the second rename fails. */
    char name[NODE_MAX_COLL + 16], tmp[PATH_MAX], final[PATH_MAX], data[PATH_MAX + 8];
    snprintf(name, sizeof name, "%.*s.%u", (int)coll_len, coll, partition);
    static uint64_t seq;
    uint64_t s = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
    snprintf(tmp, sizeof tmp, "%s/replicas/.creating-%s-%" PRIu64, n->dir, name, s);
    snprintf(final, sizeof final, "%s/replicas/%s", n->dir, name);
    rc = n->io->mkdir(n->io, tmp, 0755);
    if (rc != 0) {
        dv_errmsg_set(errmsg, "%s: %s", tmp, strerror(-rc));
        return DV_EOS;
    }
    struct part_opts o;
    replica_opts(n, fsync, &o);
    o.index = *index;
    o.spaces = spaces;
    o.n_spaces = n_spaces;
    snprintf(data, sizeof data, "%s/data", tmp);
    struct part *p;
    rc = part_create(n->io, data, &o, &p, err);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "%s", err);
        goto err_remove;
    }
    part_close(p);
    struct node_meta m = {epoch, incarnation, 0, 0, false};
    if ((rc = node_meta_write_(n, tmp, &m, fsync)) != 0) {
        dv_errmsg_set(errmsg, "%s/node.meta: %s", tmp, strerror(-rc));
        rc = DV_EOS;
        goto err_remove;
    }
    pthread_mutex_lock(&n->mu);
    if (find(n, coll, coll_len, partition) != NULL) {
        pthread_mutex_unlock(&n->mu);
        remove_tree(n->io, tmp, 0);
        return node_create(n, coll, coll_len, partition, epoch, incarnation, index, spaces,
                           n_spaces, fsync, known, errmsg);
    }
    rc = n->io->rename(n->io, tmp, final);
    char replicas[PATH_MAX + 16];
    snprintf(replicas, sizeof replicas, "%s/replicas", n->dir);
    if (rc != 0) {
        pthread_mutex_unlock(&n->mu);
        dv_errmsg_set(errmsg, "renaming %s: %s", tmp, strerror(-rc));
        rc = DV_EOS;
        goto err_remove;
    }
    if ((rc = io_fsync_dir(n->io, replicas)) != 0) {
        /* Renamed but not durably: take it back to a hidden name, else it would sit
         * unregistered under its own name and a retry's rename would fail until a restart. */
        pthread_mutex_unlock(&n->mu);
        dv_errmsg_set(errmsg, "%s: fsync: %s", replicas, strerror(-rc));
        if (n->io->rename(n->io, final, tmp) != 0)
            snprintf(tmp, sizeof tmp, "%s", final);
        rc = DV_EOS;
        goto err_remove;
    }
    snprintf(data, sizeof data, "%s/data", final);
    rc = part_open(n->io, data, &o, &p, err);
    if (rc != DV_OK) {
        pthread_mutex_unlock(&n->mu);
        dv_errmsg_set(errmsg, "%s", err);
        remove_tree(n->io, final, 0);
        return rc;
    }
    struct rep *r = rep_new(n, final, coll, coll_len, partition, epoch, incarnation, 0, 0, fsync);
    if (r == NULL) {
        pthread_mutex_unlock(&n->mu);
        part_close(p);
        remove_tree(n->io, final, 0);
        return DV_ENOMEM;
    }
    rep_attach(r, p);
    insert(n, r);
    pthread_mutex_unlock(&n->mu);
    log_info("replica created",
             "collection=%s partition=%u epoch=%" PRIu64 " incarnation=%" PRIu64
             " dim=%u metric=%d fsync=%s",
             r->pub.coll, partition, epoch, incarnation, index->dim, (int)index->metric,
             node_sync_names_[fsync]);
    return DV_OK;

err_remove:
    remove_tree(n->io, tmp, 0);
    return rc;
}

int node_drop(struct node *n, const char *coll, size_t coll_len, uint32_t partition, uint64_t epoch,
              uint64_t *known, char *errmsg)
{
    *known = 0;
    pthread_mutex_lock(&n->mu);
    struct rep *r = find(n, coll, coll_len, partition);
    if (r == NULL || epoch < r->pub.epoch) {
        *known = r ? r->pub.epoch : 0;
        pthread_mutex_unlock(&n->mu);
        if (r == NULL)
            dv_errmsg_set(errmsg,
                          "stale map: collection %.*s partition %u is not held by this node",
                          (int)coll_len, coll, partition);
        else
            dv_errmsg_set(errmsg,
                          "stale map: collection %.*s partition %u: drop routed with epoch %" PRIu64
                          ", this node has epoch %" PRIu64,
                          (int)coll_len, coll, partition, epoch, *known);
        return DV_ESTALE;
    }
    uint64_t incarnation = node_incarnation(&r->pub);
    drop_locked(n, r);
    log_info("replica dropped",
             "collection=%.*s partition=%u epoch=%" PRIu64 " incarnation=%" PRIu64, (int)coll_len,
             coll, partition, epoch, incarnation);
    return DV_OK;
}
