/* repl.c - a primary's record queue and group replication to its secondaries (repl.h). */
#include "repl.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "proto_limits.h"
#include "transport.h"

/* ---- connections to other nodes ---------------------------------------------------------- */

struct net_conn {
    struct net_conn *next;
    struct tr_peer *peer;
};

struct repl_net {
    struct tr *tr;
    uint32_t timeout_ms;
    pthread_mutex_t mu;
    struct net_conn *conns; /* never closed before repl_net_free */
};

int repl_net_new(struct tr *tr, uint32_t timeout_ms, struct repl_net **out)
{
    struct repl_net *net = calloc(1, sizeof *net);
    if (net == NULL)
        return DV_ENOMEM;
    net->tr = tr;
    net->timeout_ms = timeout_ms ? timeout_ms : REPL_TIMEOUT_MS;
    pthread_mutex_init(&net->mu, NULL);
    *out = net;
    return DV_OK;
}

void repl_net_free(struct repl_net *net)
{
    if (net == NULL)
        return;
    while (net->conns) {
        struct net_conn *c = net->conns;
        net->conns = c->next;
        tr_peer_close(c->peer);
        free(c);
    }
    pthread_mutex_destroy(&net->mu);
    free(net);
}

/* The connection to `url`, opened at first use and kept. */
static struct tr_peer *net_peer(struct repl_net *net, const char *url, char *errmsg)
{
    if (net->tr == NULL) {
        dv_errmsg_set(errmsg, "this node has no transport to reach secondaries");
        return NULL;
    }
    pthread_mutex_lock(&net->mu);
    struct net_conn *c;
    for (c = net->conns; c; c = c->next)
        if (strcmp(tr_peer_url(c->peer), url) == 0)
            break;
    if (c == NULL && (c = calloc(1, sizeof *c)) != NULL) {
        struct tr_opts o;
        tr_opts_default(&o);
        o.timeout_ms = net->timeout_ms;
        /* a secondary whose process is gone fails at once, not after the whole timeout */
        o.connect_wait_ms =
            REPL_CONNECT_WAIT_MS < net->timeout_ms ? REPL_CONNECT_WAIT_MS : net->timeout_ms;
        if (tr_open(net->tr, url, &o, &c->peer, errmsg) != DV_OK) {
            free(c);
            c = NULL;
        } else {
            c->next = net->conns;
            net->conns = c;
        }
    } else if (c == NULL) {
        dv_errmsg_set(errmsg, "out of memory");
    }
    pthread_mutex_unlock(&net->mu);
    return c ? c->peer : NULL;
}

/* ---- one replica ------------------------------------------------------------------------- */

struct rec {
    uint64_t lsn;
    uint8_t type;
    size_t len;
    uint8_t body[];
};

struct target {
    bool used;
    char node_id[65];
    struct tr_peer *peer;
    uint64_t acked; /* every record up to here is on the secondary */
    bool sending;   /* a writer is sending to it */
    int code;       /* DV_OK, or why it failed (for the rest of the epoch) */
    char text[DV_ERRMSG_SIZE];
};

struct repl {
    struct repl_net *net;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a send finished */
    uint64_t last_lsn; /* the last record the tap saw */
    uint64_t epoch;    /* of the current target list */
    struct target t[PROTO_MAX_REPLICAS];
    uint32_t n_used;
    /* Records first .. last_lsn not yet on every live target, oldest at q[head]. */
    struct rec **q;
    size_t head, n, cap;
};

struct repl *repl_new(struct repl_net *net)
{
    struct repl *rp = calloc(1, sizeof *rp);
    if (rp == NULL)
        return NULL;
    rp->net = net;
    pthread_mutex_init(&rp->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* clock_deadline_ms */
    pthread_cond_init(&rp->cv, &ca);
    pthread_condattr_destroy(&ca);
    return rp;
}

static void queue_clear(struct repl *rp)
{
    for (size_t i = 0; i < rp->n; i++)
        free(rp->q[rp->head + i]);
    rp->head = rp->n = 0;
}

void repl_free(struct repl *rp)
{
    if (rp == NULL)
        return;
    queue_clear(rp);
    free(rp->q);
    pthread_cond_destroy(&rp->cv);
    pthread_mutex_destroy(&rp->mu);
    free(rp);
}

/* Drops the queued records every live target has (under mu). */
static void queue_trim(struct repl *rp)
{
    uint64_t keep = rp->last_lsn + 1; /* records below are no longer needed */
    for (uint32_t i = 0; i < PROTO_MAX_REPLICAS; i++)
        if (rp->t[i].used && rp->t[i].code == DV_OK && rp->t[i].acked + 1 < keep)
            keep = rp->t[i].acked + 1;
    while (rp->n > 0 && rp->q[rp->head]->lsn < keep) {
        free(rp->q[rp->head]);
        rp->head++;
        rp->n--;
    }
    if (rp->n == 0)
        rp->head = 0;
}

static bool live_targets(const struct repl *rp)
{
    for (uint32_t i = 0; i < PROTO_MAX_REPLICAS; i++)
        if (rp->t[i].used && rp->t[i].code == DV_OK)
            return true;
    return false;
}

void repl_tap(void *arg, uint64_t lsn, uint8_t type, const void *body, size_t len)
{
    struct repl *rp = arg;
    pthread_mutex_lock(&rp->mu);
    rp->last_lsn = lsn;
    if (!live_targets(rp)) {
        pthread_mutex_unlock(&rp->mu);
        return;
    }
    if (rp->head + rp->n == rp->cap) {
        if (rp->head > 0) {
            memmove(rp->q, rp->q + rp->head, rp->n * sizeof *rp->q);
            rp->head = 0;
        }
        if (rp->n == rp->cap) {
            size_t cap = rp->cap ? rp->cap * 2 : 64;
            void *q = realloc(rp->q, cap * sizeof *rp->q);
            if (q != NULL) {
                rp->q = q;
                rp->cap = cap;
            }
        }
    }
    struct rec *r = rp->n < rp->cap ? malloc(sizeof *r + (len ? len : 1)) : NULL;
    if (r == NULL) {
        /* Out of memory: the secondaries cannot be given this record; fail them all (the
         * coordinator takes them out of the in-sync set; they catch up later). */
        for (uint32_t i = 0; i < PROTO_MAX_REPLICAS; i++)
            if (rp->t[i].used && rp->t[i].code == DV_OK) {
                rp->t[i].code = DV_ENOMEM;
                dv_errmsg_set(rp->t[i].text, "primary out of memory queueing record %" PRIu64, lsn);
            }
        queue_clear(rp);
        pthread_mutex_unlock(&rp->mu);
        return;
    }
    r->lsn = lsn;
    r->type = type;
    r->len = len;
    memcpy(r->body, body, len);
    rp->q[rp->head + rp->n++] = r;
    pthread_mutex_unlock(&rp->mu);
}

int repl_targets(struct repl *rp, uint64_t epoch, const struct msg_peer *peers, uint32_t n,
                 char *errmsg)
{
    int rc = DV_OK;
    pthread_mutex_lock(&rp->mu);
    if (rp->epoch != 0 && epoch <= rp->epoch) {
        pthread_mutex_unlock(&rp->mu);
        return DV_OK; /* the list of this epoch (or a newer one) is in place */
    }
    /* Forget the secondaries that left (not while a writer sends to them: it finishes, then
     * the next list change takes them). */
    for (uint32_t i = 0; i < PROTO_MAX_REPLICAS; i++) {
        struct target *t = &rp->t[i];
        if (!t->used)
            continue;
        bool listed = false;
        for (uint32_t j = 0; j < n && !listed; j++)
            listed = peers[j].node_id.len == strlen(t->node_id) &&
                     memcmp(peers[j].node_id.p, t->node_id, peers[j].node_id.len) == 0;
        if (!listed && !t->sending) {
            memset(t, 0, sizeof *t);
            rp->n_used--;
        } else if (listed && t->code != DV_OK) {
            /* listed again in a newer epoch: the map put it back in the in-sync set */
            t->code = DV_OK;
            t->acked = rp->last_lsn;
        }
    }
    for (uint32_t j = 0; j < n && rc == DV_OK; j++) {
        char id[65], url[256];
        if (peers[j].node_id.len == 0 || peers[j].node_id.len >= sizeof id ||
            peers[j].url.len == 0 || peers[j].url.len >= sizeof url) {
            dv_errmsg_set(errmsg, "secondary %u: node id must be 1 to 64 bytes, url 1 to 255", j);
            rc = DV_EINVAL;
            break;
        }
        memcpy(id, peers[j].node_id.p, peers[j].node_id.len);
        id[peers[j].node_id.len] = '\0';
        memcpy(url, peers[j].url.p, peers[j].url.len);
        url[peers[j].url.len] = '\0';
        uint32_t free_at = PROTO_MAX_REPLICAS;
        bool known = false;
        for (uint32_t i = 0; i < PROTO_MAX_REPLICAS && !known; i++) {
            if (rp->t[i].used)
                known = strcmp(rp->t[i].node_id, id) == 0;
            else if (free_at == PROTO_MAX_REPLICAS)
                free_at = i;
        }
        if (known)
            continue;
        if (free_at == PROTO_MAX_REPLICAS) {
            dv_errmsg_set(errmsg, "more than %d secondaries", PROTO_MAX_REPLICAS);
            rc = DV_EINVAL;
            break;
        }
        struct tr_peer *peer = net_peer(rp->net, url, errmsg);
        if (peer == NULL) {
            rc = DV_EINVAL;
            break;
        }
        struct target *t = &rp->t[free_at];
        memset(t, 0, sizeof *t);
        t->used = true;
        snprintf(t->node_id, sizeof t->node_id, "%s", id);
        t->peer = peer;
        t->acked = rp->last_lsn;
        rp->n_used++;
    }
    if (rc == DV_OK)
        rp->epoch = epoch;
    queue_trim(rp);
    pthread_mutex_unlock(&rp->mu);
    return rc;
}

/* ---- sending ----------------------------------------------------------------------------- */

/* One send to one target, prepared under mu and run without it. */
struct send {
    struct repl *rp;
    struct target *t;
    const struct msg_addr *addr;
    uint64_t term_start;
    struct msg_wal_rec *recs;
    uint32_t n;
    uint64_t last; /* LSN of the last record sent */
};

static void send_one(void *arg, size_t i)
{
    struct send *s = &((struct send *)arg)[i];
    struct repl *rp = s->rp;
    struct msg req = {.type = MSG_REPLICATE, .addr = *s->addr};
    req.u.replicate_req = (struct msg_replicate_req){s->recs, s->n, s->term_start};
    struct msg_reply rep;
    char err[DV_ERRMSG_SIZE];
    int rc = tr_call(s->t->peer, &req, &rep, rp->net->timeout_ms, err);
    uint64_t applied = rc == DV_OK ? rep.m.u.write_rep.lsn : 0;
    msg_reply_free(&rep);
    if (rc == DV_OK && applied < s->last) {
        rc = DV_EPROTO;
        dv_errmsg_set(err, "answered applied LSN %" PRIu64 " after records up to %" PRIu64, applied,
                      s->last);
    }
    pthread_mutex_lock(&rp->mu);
    struct target *t = s->t;
    t->sending = false;
    if (rc == DV_OK) {
        if (s->last > t->acked)
            t->acked = s->last;
    } else if (t->code == DV_OK) {
        t->code = rc;
        snprintf(t->text, sizeof t->text, "%s", err);
        log_warn("secondary failed: it leaves the in-sync set", "node=%s error=%s", t->node_id,
                 err);
    }
    pthread_cond_broadcast(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
}

/* Under mu: the records after t->acked that are queued, up to REPL_MAX_CALL_BYTES. DV_ENOMEM;
 * DV_ESTALE when the queue no longer reaches back to t->acked + 1. */
static int take(struct repl *rp, struct target *t, struct send *s)
{
    size_t first = 0, bytes = 0;
    uint32_t n = 0;
    if (rp->n == 0 || rp->q[rp->head]->lsn > t->acked + 1)
        return DV_ESTALE;
    first = (size_t)(t->acked + 1 - rp->q[rp->head]->lsn);
    while (first + n < rp->n &&
           (n == 0 || bytes + rp->q[rp->head + first + n]->len <= REPL_MAX_CALL_BYTES)) {
        bytes += rp->q[rp->head + first + n]->len;
        n++;
    }
    s->recs = calloc(n ? n : 1, sizeof *s->recs);
    if (s->recs == NULL)
        return DV_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const struct rec *r = rp->q[rp->head + first + i];
        s->recs[i] = (struct msg_wal_rec){r->lsn, r->type, {r->body, (uint32_t)r->len}};
    }
    s->n = n;
    s->last = n ? s->recs[n - 1].lsn : t->acked;
    return DV_OK;
}

void repl_wait(struct repl *rp, const struct msg_addr *addr, uint64_t term_start, uint64_t lsn,
               repl_parallel_fn parallel, void *pool, struct repl_fail *fails, uint32_t *n_fails)
{
    struct send sends[PROTO_MAX_REPLICAS];
    /* A target that neither answers nor fails within this long is failed here: a guard, as
     * every send has its own deadline. */
    uint64_t guard_ms = 4ull * rp->net->timeout_ms + 1000;
    uint64_t deadline = clock_mono_ms() + guard_ms;
    struct timespec ts;
    clock_deadline_ms(&ts, guard_ms);
    pthread_mutex_lock(&rp->mu);
    for (;;) {
        size_t ns = 0;
        bool waiting = false;
        for (uint32_t i = 0; i < PROTO_MAX_REPLICAS; i++) {
            struct target *t = &rp->t[i];
            if (!t->used || t->code != DV_OK || t->acked >= lsn)
                continue;
            if (t->sending) {
                waiting = true;
                continue;
            }
            struct send *s = &sends[ns];
            memset(s, 0, sizeof *s);
            int rc = take(rp, t, s);
            if (rc != DV_OK) {
                t->code = rc;
                dv_errmsg_set(t->text,
                              rc == DV_ESTALE ? "records after LSN %" PRIu64
                                                " are no longer queued on the primary"
                                              : "primary out of memory at LSN %" PRIu64,
                              t->acked);
                continue;
            }
            s->rp = rp;
            s->t = t;
            s->addr = addr;
            s->term_start = term_start;
            t->sending = true;
            ns++;
        }
        if (ns > 0) {
            pthread_mutex_unlock(&rp->mu);
            if (ns == 1 || parallel == NULL)
                for (size_t i = 0; i < ns; i++)
                    send_one(sends, i);
            else
                parallel(pool, ns, send_one, sends);
            for (size_t i = 0; i < ns; i++)
                free(sends[i].recs);
            pthread_mutex_lock(&rp->mu);
            continue;
        }
        if (!waiting)
            break;
        if (pthread_cond_timedwait(&rp->cv, &rp->mu, &ts) != 0 && clock_mono_ms() >= deadline) {
            for (uint32_t i = 0; i < PROTO_MAX_REPLICAS; i++) {
                struct target *t = &rp->t[i];
                if (t->used && t->code == DV_OK && t->acked < lsn) {
                    t->code = DV_ETIMEDOUT;
                    dv_errmsg_set(t->text, "no answer for LSN %" PRIu64, lsn);
                }
            }
            break;
        }
    }
    *n_fails = 0;
    for (uint32_t i = 0; i < PROTO_MAX_REPLICAS; i++) {
        const struct target *t = &rp->t[i];
        if (t->used && t->code != DV_OK) {
            struct repl_fail *f = &fails[(*n_fails)++];
            snprintf(f->node_id, sizeof f->node_id, "%s", t->node_id);
            f->code = t->code;
            snprintf(f->text, sizeof f->text, "%s", t->text);
        }
    }
    queue_trim(rp);
    pthread_mutex_unlock(&rp->mu);
}

void repl_each_target(struct repl *rp,
                      void (*fn)(void *arg, const char *node_id, uint64_t lag, bool failed),
                      void *arg)
{
    struct {
        char id[65];
        uint64_t lag;
        bool failed;
    } t[PROTO_MAX_REPLICAS];
    uint32_t n = 0;
    pthread_mutex_lock(&rp->mu);
    for (uint32_t i = 0; i < PROTO_MAX_REPLICAS; i++)
        if (rp->t[i].used) {
            snprintf(t[n].id, sizeof t[n].id, "%s", rp->t[i].node_id);
            t[n].lag = rp->last_lsn > rp->t[i].acked ? rp->last_lsn - rp->t[i].acked : 0;
            t[n].failed = rp->t[i].code != DV_OK;
            n++;
        }
    pthread_mutex_unlock(&rp->mu);
    for (uint32_t i = 0; i < n; i++) /* outside the lock: fn may take its time */
        fn(arg, t[i].id, t[i].lag, t[i].failed);
}

/* ---- the secondary ----------------------------------------------------------------------- */

int repl_apply(struct part *p, const struct msg_wal_rec *recs, uint32_t n, uint64_t *applied,
               char *errmsg)
{
    struct part_info info;
    int rc = DV_OK;
    part_get_info(p, &info);
    uint64_t at = info.applied_lsn;
    for (uint32_t i = 0; i < n && rc == DV_OK; i++) {
        if (recs[i].lsn <= at)
            continue; /* a repeated call: the record is here */
        if (recs[i].lsn != at + 1) {
            dv_errmsg_set(errmsg,
                          "records from LSN %" PRIu64 " do not follow this replica's LSN %" PRIu64
                          ": it must catch up",
                          recs[i].lsn, at);
            rc = DV_ESTALE;
            break;
        }
        if (recs[i].type == 0 || recs[i].type > 255) {
            dv_errmsg_set(errmsg, "record %" PRIu64 ": type %u is not a WAL record type",
                          recs[i].lsn, recs[i].type);
            rc = DV_EINVAL;
            break;
        }
        rc = part_apply(p, recs[i].lsn, (uint8_t)recs[i].type, recs[i].body.p, recs[i].body.len,
                        errmsg);
        if (rc == DV_OK)
            at = recs[i].lsn;
    }
    *applied = at;
    return rc;
}
