/* node_snap.c - snapshot sessions: a replica's snapshot written to tmp/, served by offset. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "node_int.h"

struct snap_session {
    struct snap_session *next;
    uint64_t id;
    char coll[NODE_MAX_COLL + 1];
    uint32_t partition;
    char path[PATH_MAX + 64];
    int fd;
    uint64_t lsn, total;
    uint64_t last_used_ms;
    int users; /* readers between lookup and pread */
};

struct file_sink {
    struct io *io;
    int fd;
    uint64_t off;
    int err; /* -errno of the failed write */
};

static int sink_write(void *arg, const void *buf, size_t n)
{
    struct file_sink *s = arg;
    int rc = io_write_all(s->io, s->fd, buf, n, (off_t)s->off);
    if (rc != 0) {
        s->err = rc;
        return DV_EOS;
    }
    s->off += n;
    return DV_OK;
}

/* Closes and removes the session's file (through the node's io, like every file here). */
static void session_free(struct node *n, struct snap_session *s)
{
    if (s->fd >= 0)
        n->io->close(n->io, s->fd);
    n->io->unlink(n->io, s->path);
    free(s);
}

void node_hold_wal(struct node *n, struct node_replica *pub, uint64_t from)
{
    (void)n;
    struct rep *r = (struct rep *)pub;
    uint64_t now = clock_mono_ms();
    __atomic_store_n(&r->hold_used_ms, now ? now : 1, __ATOMIC_RELEASE);
    part_hold_wal(pub->part, from);
}

/* Touches the WAL hold of r (a peer still reads the snapshot) without moving it. */
static void hold_touch(struct node_replica *pub)
{
    struct rep *r = (struct rep *)pub;
    if (__atomic_load_n(&r->hold_used_ms, __ATOMIC_ACQUIRE) != 0)
        __atomic_store_n(&r->hold_used_ms, clock_mono_ms(), __ATOMIC_RELEASE);
}

/* Starts a session: writes the snapshot file. Called without snap_mu held. */
static int session_start(struct node *n, struct node_replica *r, struct snap_session **out,
                         char *errmsg)
{
    struct snap_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return DV_ENOMEM;
    pthread_mutex_lock(&n->snap_mu);
    s->id = n->next_session++;
    pthread_mutex_unlock(&n->snap_mu);
    snprintf(s->coll, sizeof s->coll, "%s", r->coll);
    s->partition = r->partition;
    snprintf(s->path, sizeof s->path, "%s/tmp/snap-%" PRIu64 ".lz4", n->dir, s->id);
    s->fd = n->io->open(n->io, s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        dv_errmsg_set(errmsg, "%s: %s", s->path, strerror(-s->fd));
        free(s);
        return DV_EOS;
    }
    struct file_sink sink = {n->io, s->fd, 0, 0};
    uint64_t t0 = clock_mono_ms();
    /* The reader continues with the WAL records after the snapshot: hold them from before the
     * snapshot's checkpoint (which would drop them) until the reader has read them. */
    struct part_info info;
    part_get_info(r->part, &info);
    node_hold_wal(n, r, info.applied_lsn + 1);
    int rc = part_snapshot(r->part, sink_write, &sink, &s->lsn, errmsg);
    if (rc != DV_OK && sink.err)
        dv_errmsg_prefix(errmsg, "%s: %s", s->path, strerror(-sink.err));
    if (rc != DV_OK) {
        session_free(n, s);
        return rc;
    }
    node_hold_wal(n, r, s->lsn + 1);
    s->total = sink.off;
    s->last_used_ms = clock_mono_ms();
    log_info("snapshot session started",
             "session=%" PRIu64 " collection=%s partition=%u lsn=%" PRIu64 " bytes=%" PRIu64
             " ms=%" PRIu64,
             s->id, s->coll, s->partition, s->lsn, s->total, s->last_used_ms - t0);
    *out = s;
    return DV_OK;
}

int node_snapshot_read(struct node *n, struct node_replica *r, uint64_t *session, uint64_t offset,
                       uint32_t max_bytes, void **data, size_t *len, uint64_t *lsn, uint64_t *total,
                       bool *done, char *errmsg)
{
    struct snap_session *s = NULL;
    int rc;
    node_snapshot_expire(n);
    if (*session == 0) {
        rc = session_start(n, r, &s, errmsg);
        if (rc != DV_OK)
            return rc;
        pthread_mutex_lock(&n->snap_mu);
        s->next = n->sessions;
        n->sessions = s;
    } else {
        pthread_mutex_lock(&n->snap_mu);
        for (s = n->sessions; s; s = s->next)
            if (s->id == *session)
                break;
        if (s == NULL) {
            pthread_mutex_unlock(&n->snap_mu);
            dv_errmsg_set(errmsg,
                          "snapshot session %" PRIu64 " is unknown or expired (idle over %u ms); "
                          "start a new one with session 0",
                          *session, n->opts.snapshot_idle_ms);
            return DV_ENOTFOUND;
        }
        if (s->partition != r->partition || strcmp(s->coll, r->coll) != 0) {
            pthread_mutex_unlock(&n->snap_mu);
            dv_errmsg_set(errmsg, "snapshot session %" PRIu64 " belongs to %s partition %u",
                          *session, s->coll, s->partition);
            return DV_EINVAL;
        }
    }
    s->users++;
    s->last_used_ms = clock_mono_ms();
    pthread_mutex_unlock(&n->snap_mu);
    hold_touch(r);

    *session = s->id;
    *lsn = s->lsn;
    *total = s->total;
    rc = DV_OK;
    if (offset > s->total) {
        dv_errmsg_set(errmsg, "offset %" PRIu64 " is past the snapshot's end (%" PRIu64 " bytes)",
                      offset, s->total);
        rc = DV_ERANGE;
        goto out;
    }
    size_t want =
        max_bytes == 0 || max_bytes > NODE_SNAPSHOT_CHUNK ? NODE_SNAPSHOT_CHUNK : max_bytes;
    if (want > s->total - offset)
        want = (size_t)(s->total - offset);
    void *p = malloc(want ? want : 1);
    if (p == NULL) {
        rc = DV_ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t k = io_read_full(n->io, s->fd, (char *)p + got, want - got, (off_t)(offset + got));
        if (k <= 0) {
            dv_errmsg_set(errmsg, "%s: %s", s->path, k < 0 ? strerror((int)-k) : "short file");
            free(p);
            rc = DV_EOS;
            goto out;
        }
        got += (size_t)k;
    }
    *data = p;
    *len = got;
    *done = offset + got == s->total;
out:
    pthread_mutex_lock(&n->snap_mu);
    s->users--;
    pthread_mutex_unlock(&n->snap_mu);
    return rc;
}

/* Clears the WAL hold of a replica no peer read from for snapshot_idle_ms. */
static void hold_expire(void *arg, struct node_replica *pub)
{
    struct node *n = arg;
    struct rep *r = (struct rep *)pub;
    uint64_t used = __atomic_load_n(&r->hold_used_ms, __ATOMIC_ACQUIRE);
    if (used == 0 || clock_mono_ms() - used <= n->opts.snapshot_idle_ms)
        return;
    /* A read that set the hold meanwhile wins: only clear what is still the idle one. */
    if (__atomic_compare_exchange_n(&r->hold_used_ms, &used, 0, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        part_hold_wal(pub->part, 0);
        log_info("WAL hold released: no peer read the replica",
                 "collection=%s partition=%u idle_ms=%u", pub->coll, pub->partition,
                 n->opts.snapshot_idle_ms);
    }
}

void node_snapshot_expire(struct node *n)
{
    node_foreach(n, hold_expire, n);
    uint64_t now = clock_mono_ms();
    pthread_mutex_lock(&n->snap_mu);
    struct snap_session **pp = &n->sessions;
    while (*pp) {
        struct snap_session *s = *pp;
        if (s->users == 0 && now - s->last_used_ms > n->opts.snapshot_idle_ms) {
            *pp = s->next;
            log_info("snapshot session expired", "session=%" PRIu64 " collection=%s partition=%u",
                     s->id, s->coll, s->partition);
            session_free(n, s);
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&n->snap_mu);
}

void node_snapshot_expire_all_(struct node *n)
{
    pthread_mutex_lock(&n->snap_mu);
    while (n->sessions) {
        struct snap_session *s = n->sessions;
        n->sessions = s->next;
        session_free(n, s);
    }
    pthread_mutex_unlock(&n->snap_mu);
}
