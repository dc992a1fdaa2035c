/* craft.c - raft on a libuv thread: batching applies, the post-election barrier, publishing
 * read-only copies of the map for the request workers. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "clock.h"
#include "craft.h"
#include "craft_tr.h"
#include "err.h"
#include "fsm.h"
#include "log.h"

#define CRAFT_MAX_BATCH 1024 /* commands packed into one raft entry */

struct op {
    struct op *next;
    const void *cmd;
    size_t n;
    struct cmap_result res;
    int rc;
    bool done, abandoned;
    char errmsg[DV_ERRMSG_SIZE];
};

/* A change of the raft group's membership, run by the loop thread one at a time. */
struct change {
    struct change *next;
    int kind; /* CHANGE_ADD: raft_add then raft_assign(voter); CHANGE_REMOVE: raft_remove */
    uint64_t id;
    char addr[CRAFT_ADDR_MAX];
    int rc;
    bool done, abandoned;
    char errmsg[DV_ERRMSG_SIZE];
};

enum { CHANGE_ADD = 1, CHANGE_REMOVE = 2 };

struct craft {
    struct craft_opts o;
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t timer;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft raft;
    struct raft_fsm fsm;
    struct cmap_fsm cfsm;
    int (*orig_apply)(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result);
    int (*orig_restore)(struct raft_fsm *fsm, struct raft_buffer *buf);
    char self_addr[CRAFT_ADDR_MAX]; /* advertised: peers dial it, the handshake names it */
    char bind_addr[CRAFT_ADDR_MAX]; /* listened on */

    /* queue: mu */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* an op finished */
    struct op *head, *tail;
    struct change *chead, *ctail;
    bool stopping;

    /* loop thread only */
    struct op *inflight[CRAFT_MAX_BATCH];
    size_t n_inflight;
    bool applying, closing, stop_seen;
    struct raft_apply req;
    struct change *cur; /* membership change in flight */
    struct raft_change chg;
    struct raft_barrier barrier;
    bool barrier_pending;
    uint64_t barrier_term;
    uint64_t applied_entries;

    /* published: pub_mu */
    pthread_mutex_t pub_mu;
    struct cmap_ref *map;
    struct craft_status st;

    /* start-up handshake */
    pthread_mutex_t start_mu;
    pthread_cond_t start_cv;
    bool started;
    int start_rc;
    char start_err[DV_ERRMSG_SIZE];
};

/* ---- the published map ------------------------------------------------------------------- */

static void publish_map(struct craft *c)
{
    struct cmap_ref *r = calloc(1, sizeof *r);
    if (r == NULL || cmap_copy(&r->map, &c->cfsm.map) != DV_OK) {
        free(r);
        log_error("no memory to publish the cluster map; readers keep the previous one");
        return;
    }
    r->applied = ++c->applied_entries;
    r->refs_ = 1;
    pthread_mutex_lock(&c->pub_mu);
    struct cmap_ref *old = c->map;
    c->map = r;
    pthread_mutex_unlock(&c->pub_mu);
    if (old)
        craft_map_release(c, old);
}

struct cmap_ref *craft_map(struct craft *c)
{
    pthread_mutex_lock(&c->pub_mu);
    struct cmap_ref *r = c->map;
    r->refs_++;
    pthread_mutex_unlock(&c->pub_mu);
    return r;
}

void craft_map_release(struct craft *c, struct cmap_ref *r)
{
    pthread_mutex_lock(&c->pub_mu);
    bool last = --r->refs_ == 0;
    pthread_mutex_unlock(&c->pub_mu);
    if (last) {
        cmap_free(&r->map);
        free(r);
    }
}

/* fsm->data points at the cmap_fsm; the craft is found through a static table of one. */
static struct craft *the_craft;

static int apply_hook(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct craft *c = the_craft;
    int rv = c->orig_apply(fsm, buf, result);
    if (rv == 0)
        publish_map(c);
    return rv;
}

static int restore_hook(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct craft *c = the_craft;
    int rv = c->orig_restore(fsm, buf);
    if (rv == 0) {
        log_info("cluster map restored from a snapshot", "epoch=%" PRIu64, c->cfsm.map.epoch);
        publish_map(c);
    }
    return rv;
}

/* ---- status ------------------------------------------------------------------------------ */

const char *craft_peer_url(struct craft *c, uint64_t id)
{
    for (size_t i = 0; i < c->o.n_peers; i++)
        if (c->o.peers[i].id == id)
            return c->o.peers[i].client_url;
    return NULL;
}

size_t craft_peers(struct craft *c, const struct craft_peer **out)
{
    *out = c->o.peers;
    return c->o.n_peers;
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct craft *c = req->data;
    c->barrier_pending = false;
    if (status != 0) {
        log_warn("barrier after election failed", "error=%s", raft_strerror(status));
        return;
    }
    if (raft_state(&c->raft) == RAFT_LEADER && c->raft.current_term == c->barrier_term) {
        pthread_mutex_lock(&c->pub_mu);
        c->st.leader_ready = true;
        pthread_mutex_unlock(&c->pub_mu);
        log_info("leader ready", "id=%" PRIu64 " term=%" PRIu64, c->o.id, c->barrier_term);
    }
}

static void update_status(struct craft *c)
{
    if (c->closing || c->stop_seen)
        return;
    int state = raft_state(&c->raft);
    if (state == RAFT_UNAVAILABLE && c->st.state != RAFT_UNAVAILABLE) {
        /* raft 0.15 turns a follower unavailable for good when the FSM fails to apply an
         * entry (out of memory): restarting rebuilds the map from the snapshot and the log. */
        log_error("raft became unavailable; exiting so that a restart recovers", "error=%s",
                  raft_errmsg(&c->raft));
        _exit(4);
    }
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&c->raft, &lid, &laddr);
    pthread_mutex_lock(&c->pub_mu);
    bool was_ready = c->st.leader_ready;
    if (state != RAFT_LEADER || c->raft.current_term != c->barrier_term)
        c->st.leader_ready = false;
    c->st.state = state;
    c->st.leader_id = lid;
    const char *url = lid ? craft_peer_url(c, lid) : NULL;
    if (lid && url == NULL) {
        /* A coordinator added at run time: the map knows its client URL. */
        const struct cmap_coord *co = cmap_coord_find(&c->cfsm.map, lid);
        url = co ? co->client_url : NULL;
    }
    snprintf(c->st.leader_url, sizeof c->st.leader_url, "%s", url ? url : "");
    c->st.term = c->raft.current_term;
    c->st.commit_index = c->raft.commit_index;
    c->st.last_applied = c->raft.last_applied;
    bool ready = c->st.leader_ready;
    pthread_mutex_unlock(&c->pub_mu);
    if (was_ready && !ready)
        log_info("no longer leader", "id=%" PRIu64 " term=%" PRIu64, c->o.id,
                 (uint64_t)c->raft.current_term);
    /* raft 0.15 appends no entry when elected: commit a barrier of the new term before
     * accepting commands (LIBRARY-NOTES bug 5). */
    if (state == RAFT_LEADER && !ready && !c->barrier_pending &&
        c->barrier_term != c->raft.current_term) {
        c->barrier.data = c;
        c->barrier_term = c->raft.current_term;
        int rv = raft_barrier(&c->raft, &c->barrier, barrier_cb);
        if (rv == 0)
            c->barrier_pending = true;
        else
            c->barrier_term = 0;
    }
}

void craft_status(struct craft *c, struct craft_status *st)
{
    pthread_mutex_lock(&c->pub_mu);
    *st = c->st;
    pthread_mutex_unlock(&c->pub_mu);
}

/* ---- applies ----------------------------------------------------------------------------- */

/* Marks an op finished (mu held). An abandoned op (its waiter timed out) is freed. */
static void finish(struct craft *c, struct op *op, int rc, const char *msg)
{
    op->rc = rc;
    if (msg)
        snprintf(op->errmsg, sizeof op->errmsg, "%s", msg);
    op->done = true;
    if (op->abandoned)
        free(op);
    pthread_cond_broadcast(&c->cv);
}

static void try_apply(struct craft *c);

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct craft *c = req->data;
    const struct cmap_results *res = result;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_inflight; i++) {
        struct op *op = c->inflight[i];
        if (status != 0) {
            char msg[DV_ERRMSG_SIZE];
            snprintf(msg, sizeof msg, "raft: %s (the command may still be applied: retry it)",
                     raft_strerror(status));
            finish(c, op, DV_EIO, msg);
        } else if (res == NULL || i >= res->n) {
            finish(c, op, DV_EIO, "raft: no result for the command");
        } else {
            op->res = res->r[i];
            finish(c, op, DV_OK, NULL);
        }
    }
    c->n_inflight = 0;
    c->applying = false;
    pthread_mutex_lock(&c->pub_mu);
    c->st.batches++;
    pthread_mutex_unlock(&c->pub_mu);
    pthread_mutex_unlock(&c->mu);
    /* The next batch from the loop, not from here: raft calls this also while a leader steps
     * down (RAFT_LEADERSHIPLOST, its state still LEADER), and a raft_apply made inside that
     * call crashed raft 0.15 (SIGSEGV in raft_apply; found by the torture suite, pause_leader;
     * test_craft test_apply_while_stepping_down). */
    uv_async_send(&c->async);
}

/* Marks a change finished (mu held); an abandoned one is freed. */
static void finish_change(struct craft *c, struct change *ch, int rc, const char *msg)
{
    ch->rc = rc;
    if (msg)
        snprintf(ch->errmsg, sizeof ch->errmsg, "%s", msg);
    ch->done = true;
    if (ch->abandoned)
        free(ch);
    pthread_cond_broadcast(&c->cv);
}

static void try_change(struct craft *c);

static void change_done(struct craft *c, int status, const char *what)
{
    char msg[DV_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s: %s", what, status ? raft_strerror(status) : "ok");
    pthread_mutex_lock(&c->mu);
    struct change *ch = c->cur;
    c->cur = NULL;
    if (ch)
        finish_change(c, ch, status ? DV_EIO : DV_OK, status ? msg : NULL);
    pthread_mutex_unlock(&c->mu);
    if (ch && status == 0)
        log_info("raft group changed", "op=%s", what);
    uv_async_send(&c->async); /* the next change from the loop, as apply_cb does */
}

static void assign_cb(struct raft_change *req, int status)
{
    change_done(req->data, status, "raft_assign voter");
}

static void remove_cb(struct raft_change *req, int status)
{
    change_done(req->data, status, "raft_remove");
}

static void add_cb(struct raft_change *req, int status)
{
    struct craft *c = req->data;
    if (status != 0) {
        change_done(c, status, "raft_add");
        return;
    }
    /* Added as a spare: now a voter (raft catches it up first). */
    c->chg.data = c;
    int rv = raft_assign(&c->raft, &c->chg, c->cur->id, RAFT_VOTER, assign_cb);
    if (rv != 0)
        change_done(c, rv, "raft_assign voter");
}

/* Loop thread: starts the next membership change when none is in flight. */
static void try_change(struct craft *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->cur || c->chead == NULL || c->stopping) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    struct change *ch = c->chead;
    c->chead = ch->next;
    if (c->chead == NULL)
        c->ctail = NULL;
    pthread_mutex_lock(&c->pub_mu);
    bool ready = c->st.leader_ready;
    pthread_mutex_unlock(&c->pub_mu);
    if (!ready || raft_state(&c->raft) != RAFT_LEADER) {
        finish_change(c, ch, DV_ESTALE, "not the leader");
        pthread_mutex_unlock(&c->mu);
        return;
    }
    /* Adding is idempotent, so that a coordinator asking to join can ask again (its first
     * answer lost, or itself restarted): a voter at that address is done, a spare at it only
     * needs the promotion. */
    const struct raft_server *known = NULL;
    for (unsigned i = 0; i < c->raft.configuration.n; i++)
        if (c->raft.configuration.servers[i].id == ch->id)
            known = &c->raft.configuration.servers[i];
    if (ch->kind == CHANGE_ADD && known && strcmp(known->address, ch->addr) == 0 &&
        known->role == RAFT_VOTER) {
        finish_change(c, ch, DV_OK, NULL);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->cur = ch;
    c->chg.data = c;
    int rv;
    if (ch->kind == CHANGE_ADD && known && strcmp(known->address, ch->addr) == 0)
        rv = raft_assign(&c->raft, &c->chg, ch->id, RAFT_VOTER, assign_cb);
    else if (ch->kind == CHANGE_ADD)
        rv = raft_add(&c->raft, &c->chg, ch->id, ch->addr, add_cb);
    else
        rv = raft_remove(&c->raft, &c->chg, ch->id, remove_cb);
    if (rv != 0) {
        char msg[DV_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "%s: %s", ch->kind == CHANGE_ADD ? "raft_add" : "raft_remove",
                 raft_errmsg(&c->raft)[0] ? raft_errmsg(&c->raft) : raft_strerror(rv));
        c->cur = NULL;
        finish_change(c, ch,
                      rv == RAFT_DUPLICATEID || rv == RAFT_DUPLICATEADDRESS || rv == RAFT_BADID
                          ? DV_EINVAL
                      : rv == RAFT_CANTCHANGE ? DV_EBUSY
                                              : DV_EIO,
                      msg);
    }
    pthread_mutex_unlock(&c->mu);
}

int craft_change(struct craft *c, bool add, uint64_t id, const char *raft_addr, uint32_t timeout_ms,
                 char *errmsg)
{
    struct change *ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return DV_ENOMEM;
    ch->kind = add ? CHANGE_ADD : CHANGE_REMOVE;
    ch->id = id;
    snprintf(ch->addr, sizeof ch->addr, "%s", raft_addr ? raft_addr : "");
    struct timespec dl;
    clock_deadline_ms(&dl, timeout_ms);
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        free(ch);
        dv_errmsg_set(errmsg, "coordinator is shutting down");
        return DV_ESHUTDOWN;
    }
    if (c->ctail)
        c->ctail->next = ch;
    else
        c->chead = ch;
    c->ctail = ch;
    uv_async_send(&c->async);
    while (!ch->done)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT && !ch->done) {
            bool queued = false;
            for (struct change **pp = &c->chead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
                if (*pp == ch) {
                    *pp = ch->next;
                    if (c->ctail == ch)
                        c->ctail = prev;
                    queued = true;
                    break;
                }
            if (queued)
                free(ch);
            else
                ch->abandoned = true;
            pthread_mutex_unlock(&c->mu);
            dv_errmsg_set(errmsg, "the raft group change did not finish within %u ms", timeout_ms);
            return DV_ETIMEDOUT;
        }
    int rc = ch->rc;
    if (rc != DV_OK)
        dv_errmsg_set(errmsg, "%s", ch->errmsg);
    pthread_mutex_unlock(&c->mu);
    free(ch);
    return rc;
}

static void close_cb(struct raft *r);

/* Loop thread: starts the next batch when none is in flight. */
static void try_apply(struct craft *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        c->stop_seen = true;
        while (c->head) {
            struct op *op = c->head;
            c->head = op->next;
            finish(c, op, DV_ESHUTDOWN, "coordinator is shutting down");
        }
        c->tail = NULL;
        while (c->chead) {
            struct change *ch = c->chead;
            c->chead = ch->next;
            finish_change(c, ch, DV_ESHUTDOWN, "coordinator is shutting down");
        }
        c->ctail = NULL;
        bool idle = !c->applying && c->cur == NULL;
        pthread_mutex_unlock(&c->mu);
        if (idle && !c->closing && !c->barrier_pending) {
            c->closing = true;
            raft_close(&c->raft, close_cb);
        }
        return;
    }
    if (c->applying || c->head == NULL) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    bool ready = raft_state(&c->raft) == RAFT_LEADER;
    pthread_mutex_lock(&c->pub_mu);
    ready = ready && c->st.leader_ready;
    pthread_mutex_unlock(&c->pub_mu);
    size_t n = 0;
    while (c->head && n < CRAFT_MAX_BATCH) {
        struct op *op = c->head;
        c->head = op->next;
        c->inflight[n++] = op;
    }
    if (c->head == NULL)
        c->tail = NULL;
    if (!ready) {
        for (size_t i = 0; i < n; i++)
            finish(c, c->inflight[i], DV_ESTALE, "not the leader");
        pthread_mutex_unlock(&c->mu);
        return;
    }
    struct buf b;
    buf_init(&b);
    char err[DV_ERRMSG_SIZE] = "";
    int rc;
    if (n == 1) {
        rc = buf_append(&b, c->inflight[0]->cmd, c->inflight[0]->n);
    } else {
        const void *cmds[CRAFT_MAX_BATCH];
        size_t lens[CRAFT_MAX_BATCH];
        for (size_t i = 0; i < n; i++) {
            cmds[i] = c->inflight[i]->cmd;
            lens[i] = c->inflight[i]->n;
        }
        rc = cmap_batch_pack(cmds, lens, n, &b, err);
    }
    struct raft_buffer rb = {0};
    if (rc == DV_OK)
        rc = cmap_fsm_entry(b.data, b.len, &rb);
    buf_free(&b);
    if (rc == DV_OK) {
        c->req.data = c;
        int rv = raft_apply(&c->raft, &c->req, &rb, 1, apply_cb);
        if (rv != 0) {
            raft_free(rb.base);
            snprintf(err, sizeof err, "raft_apply: %s", raft_errmsg(&c->raft));
            rc = rv == RAFT_NOTLEADER ? DV_ESTALE : DV_EIO;
        }
    }
    if (rc != DV_OK) {
        for (size_t i = 0; i < n; i++)
            finish(c, c->inflight[i], rc, err[0] ? err : dv_strerror(rc));
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->n_inflight = n;
    c->applying = true;
    pthread_mutex_lock(&c->pub_mu);
    c->st.applies += n;
    pthread_mutex_unlock(&c->pub_mu);
    pthread_mutex_unlock(&c->mu);
}

static void async_cb(uv_async_t *h)
{
    try_apply(h->data);
    try_change(h->data);
}

static void timer_cb(uv_timer_t *h)
{
    struct craft *c = h->data;
    update_status(c);
    try_apply(c);
    try_change(c);
}

int craft_apply(struct craft *c, const void *cmd, size_t n, uint32_t timeout_ms,
                struct cmap_result *res, char *errmsg)
{
    struct craft_status st;
    craft_status(c, &st);
    if (!st.leader_ready) {
        dv_errmsg_set(errmsg, "coordinator %" PRIu64 " is not the leader (leader: %s)", c->o.id,
                      st.leader_url[0] ? st.leader_url : "unknown");
        return DV_ESTALE;
    }
    struct op *op = calloc(1, sizeof *op);
    if (op == NULL)
        return DV_ENOMEM;
    op->cmd = cmd;
    op->n = n;
    struct timespec dl;
    clock_deadline_ms(&dl, timeout_ms);
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        free(op);
        dv_errmsg_set(errmsg, "coordinator is shutting down");
        return DV_ESHUTDOWN;
    }
    if (c->tail)
        c->tail->next = op;
    else
        c->head = op;
    c->tail = op;
    uv_async_send(&c->async);
    while (!op->done) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT && !op->done) {
            /* Still queued: take it out. In flight: the loop frees it when raft answers (its
             * command buffer is copied into the raft entry, so the caller may go). */
            bool queued = false;
            for (struct op **pp = &c->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
                if (*pp == op) {
                    *pp = op->next;
                    if (c->tail == op)
                        c->tail = prev;
                    queued = true;
                    break;
                }
            if (queued)
                free(op);
            else
                op->abandoned = true;
            pthread_mutex_unlock(&c->mu);
            dv_errmsg_set(errmsg,
                          "no answer from raft within %u ms (the command may still be "
                          "applied: retry it)",
                          timeout_ms);
            return DV_ETIMEDOUT;
        }
    }
    int rc = op->rc;
    if (rc == DV_OK)
        *res = op->res;
    else
        dv_errmsg_set(errmsg, "%s", op->errmsg);
    pthread_mutex_unlock(&c->mu);
    free(op);
    return rc;
}

/* ---- start and stop ---------------------------------------------------------------------- */

static void close_cb(struct raft *r)
{
    struct craft *c = r->data;
    raft_uv_close(&c->io);
    craft_tr_close(&c->transport);
    uv_close((uv_handle_t *)&c->async, NULL);
    uv_close((uv_handle_t *)&c->timer, NULL);
}

static void started(struct craft *c, int rc, const char *err)
{
    pthread_mutex_lock(&c->start_mu);
    c->start_rc = rc;
    snprintf(c->start_err, sizeof c->start_err, "%s", err ? err : "");
    c->started = true;
    pthread_cond_broadcast(&c->start_cv);
    pthread_mutex_unlock(&c->start_mu);
}

static void *loop_main(void *arg)
{
    struct craft *c = arg;
    char err[DV_ERRMSG_SIZE];
    int rv;
    if (uv_loop_init(&c->loop) != 0) {
        started(c, DV_EOS, "uv_loop_init failed");
        return NULL;
    }
    if ((rv = craft_tr_init(&c->transport, &c->loop, c->bind_addr[0] ? c->bind_addr : NULL)) != 0) {
        snprintf(err, sizeof err, "%s", c->transport.errmsg);
        goto err_loop;
    }
    if ((rv = raft_uv_init(&c->io, &c->loop, c->o.dir, &c->transport)) != 0) {
        snprintf(err, sizeof err, "raft_uv_init %s: %s", c->o.dir, raft_strerror(rv));
        goto err_loop;
    }
    if ((rv = raft_init(&c->raft, &c->io, &c->fsm, c->o.id, c->self_addr)) != 0) {
        snprintf(err, sizeof err, "raft_init: %s", raft_errmsg(&c->raft));
        goto err_loop;
    }
    c->raft.data = c;
    if (!c->o.join) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (size_t i = 0; i < c->o.n_peers; i++)
            raft_configuration_add(&conf, c->o.peers[i].id, c->o.peers[i].raft_addr, RAFT_VOTER);
        rv = raft_bootstrap(&c->raft, &conf);
        raft_configuration_close(&conf);
        if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
            snprintf(err, sizeof err, "raft_bootstrap: %s", raft_errmsg(&c->raft));
            goto err_loop;
        }
    }
    raft_set_pre_vote(&c->raft, true);
    raft_set_election_timeout(&c->raft, c->o.election_ms);
    raft_set_heartbeat_timeout(&c->raft, c->o.heartbeat_ms);
    raft_set_snapshot_threshold(&c->raft, c->o.snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, c->o.snapshot_trailing);
    raft_set_install_snapshot_timeout(&c->raft, 5000);
    if ((rv = raft_start(&c->raft)) != 0) {
        /* raft 0.15 gives no message when its transport cannot listen (the raft address
         * in use, or not local): name the address and the code at least. */
        const char *why = raft_errmsg(&c->raft);
        dv_errmsg_set(err, "raft_start: %s: %s", c->self_addr,
                      why && why[0] ? why : raft_strerror(rv));
        goto err_loop;
    }
    uv_async_init(&c->loop, &c->async, async_cb);
    c->async.data = c;
    uv_timer_init(&c->loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, timer_cb, 10, 10);
    started(c, DV_OK, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    return NULL;

err_loop:
    /* raft_init failures leave nothing running worth closing cleanly: the process exits. */
    started(c, DV_EOS, err);
    return NULL;
}

int craft_bind_addr(const char *self, const char *bind, char *out, size_t n, char *errmsg)
{
    const char *colon = strrchr(self, ':');
    if (colon == NULL || colon == self || colon[1] == '\0') {
        dv_errmsg_set(errmsg, "raft address '%s' is not HOST:PORT", self);
        return DV_EINVAL;
    }
    if (bind && bind[0]) {
        const char *bc = strrchr(bind, ':');
        if (bc == NULL || strcmp(bc, colon) != 0) {
            dv_errmsg_set(errmsg,
                          "raft listen address '%s' must have the port of the raft address "
                          "'%s'",
                          bind, self);
            return DV_EINVAL;
        }
        snprintf(out, n, "%s", bind);
        return DV_OK;
    }
    char host[CRAFT_ADDR_MAX];
    struct in_addr a;
    snprintf(host, sizeof host, "%.*s", (int)(colon - self), self);
    if (inet_pton(AF_INET, host, &a) == 1)
        out[0] = '\0'; /* an IPv4 literal: listen on it */
    else
        snprintf(out, n, "0.0.0.0%s", colon); /* a name: every interface, same port */
    return DV_OK;
}

int craft_start(const struct craft_opts *o, struct craft **out, char *errmsg)
{
    if (the_craft != NULL) {
        dv_errmsg_set(errmsg, "one raft instance per process");
        return DV_EINVAL;
    }
    struct craft *c = calloc(1, sizeof *c);
    if (c == NULL)
        return DV_ENOMEM;
    c->o = *o;
    for (size_t i = 0; i < o->n_peers; i++)
        if (o->peers[i].id == o->id)
            snprintf(c->self_addr, sizeof c->self_addr, "%s", o->peers[i].raft_addr);
    if (o->advertise && o->advertise[0]) {
        if (c->self_addr[0] && strcmp(c->self_addr, o->advertise) != 0) {
            dv_errmsg_set(errmsg,
                          "raft address %s differs from coordinator %" PRIu64
                          "'s entry in the group list (%s), which the others dial",
                          o->advertise, o->id, c->self_addr);
            free(c);
            return DV_EINVAL;
        }
        snprintf(c->self_addr, sizeof c->self_addr, "%s", o->advertise);
    }
    if (c->self_addr[0] == '\0') {
        dv_errmsg_set(errmsg,
                      "coordinator id %" PRIu64 " is not in the group list and has no "
                      "advertised raft address",
                      o->id);
        free(c);
        return DV_EINVAL;
    }
    if (craft_bind_addr(c->self_addr, o->bind, c->bind_addr, sizeof c->bind_addr, errmsg) !=
        DV_OK) {
        free(c);
        return DV_EINVAL;
    }
    if (mkdir(o->dir, 0755) != 0 && errno != EEXIST) {
        dv_errmsg_set(errmsg, "%s: %s", o->dir, strerror(errno));
        free(c);
        return DV_EOS;
    }
    int rc = cmap_fsm_init(&c->cfsm, &c->fsm, o->dedup_cap);
    if (rc != DV_OK) {
        free(c);
        return rc;
    }
    c->orig_apply = c->fsm.apply;
    c->orig_restore = c->fsm.restore;
    c->fsm.apply = apply_hook;
    c->fsm.restore = restore_hook;
    the_craft = c;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->pub_mu, NULL);
    pthread_mutex_init(&c->start_mu, NULL);
    pthread_cond_init(&c->start_cv, NULL);
    c->st.id = o->id;
    publish_map(c); /* the empty map, so readers always have one */
    if (pthread_create(&c->thread, NULL, loop_main, c) != 0) {
        dv_errmsg_set(errmsg, "cannot start the raft thread");
        return DV_EOS;
    }
    pthread_mutex_lock(&c->start_mu);
    while (!c->started)
        pthread_cond_wait(&c->start_cv, &c->start_mu);
    pthread_mutex_unlock(&c->start_mu);
    if (c->start_rc != DV_OK) {
        dv_errmsg_set(errmsg, "%s", c->start_err);
        pthread_join(c->thread, NULL);
        return c->start_rc; /* the process exits; nothing more to free cleanly */
    }
    *out = c;
    return DV_OK;
}

void craft_stop(struct craft *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
    pthread_join(c->thread, NULL);
    pthread_mutex_lock(&c->pub_mu);
    struct cmap_ref *m = c->map;
    c->map = NULL;
    pthread_mutex_unlock(&c->pub_mu);
    if (m)
        craft_map_release(c, m);
    cmap_fsm_close(&c->cfsm);
    the_craft = NULL;
    free(c);
}
