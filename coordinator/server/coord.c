/* coord.c - connections, request ids, applying map commands with retries, node liveness. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "coord.h"
#include "err.h"
#include "log.h"

int coord_open(struct coord *c, const struct coord_opts *o, const struct craft_opts *ro,
               struct tr *tr, const struct rpcsrv_opts *so, bool listen, char *errmsg)
{
    c->o = *o;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->client_id = ((uint64_t)ts.tv_sec << 24) ^ ((uint64_t)ts.tv_nsec << 4) ^ o->id;
    pthread_mutex_init(&c->conns_mu, NULL);
    pthread_mutex_init(&c->seen_mu, NULL);
    c->tr = tr;
    int rc = craft_start(ro, &c->raft, errmsg);
    if (rc != DV_OK) {
        log_error("cannot start raft", "error=%s", errmsg);
        goto err_mutex;
    }
    if ((rc = rpcsrv_new(so, &c->srv, errmsg)) != DV_OK)
        goto err_raft;
    if (listen && (rc = rpcsrv_listen(c->srv, errmsg)) != DV_OK)
        goto err_srv;
    return DV_OK;

err_srv:
    rpcsrv_stop(c->srv);
    c->srv = NULL;
err_raft:
    log_error("cannot start", "error=%s", errmsg);
    craft_stop(c->raft);
    c->raft = NULL;
err_mutex:
    pthread_mutex_destroy(&c->seen_mu);
    pthread_mutex_destroy(&c->conns_mu);
    return rc;
}

void coord_close(struct coord *c)
{
    craft_stop(c->raft); /* drains raft's applies, then raft_close (LIBRARY-NOTES bug 2) */
    rpcsrv_stop(c->srv);
    for (size_t i = 0; i < c->n_conns; i++) {
        combiner_free(c->conns[i].comb);
        tr_peer_close(c->conns[i].peer);
    }
    free(c->conns);
    for (size_t i = 0; i < c->n_sports; i++) {
        tcpcall_close(c->sports[i]->tc);
        free(c->sports[i]);
    }
    free(c->sports);
    c->sports = NULL;
    c->n_sports = 0;
    free(c->seen);
    c->conns = NULL;
    c->seen = NULL;
    c->n_conns = c->n_seen = 0;
    pthread_mutex_destroy(&c->seen_mu);
    pthread_mutex_destroy(&c->conns_mu);
}

struct coord_sport *coord_search_port(struct coord *c, const char *url)
{
    struct coord_sport *s = NULL;
    pthread_mutex_lock(&c->conns_mu);
    for (size_t i = 0; i < c->n_sports && !s; i++)
        if (strcmp(c->sports[i]->url, url) == 0)
            s = c->sports[i];
    if (s == NULL && c->n_sports == c->cap_sports) {
        size_t cap = c->cap_sports ? c->cap_sports * 2 : 16;
        void *p = realloc(c->sports, cap * sizeof *c->sports);
        if (p) {
            c->sports = p;
            c->cap_sports = cap;
        }
    }
    char err[DV_ERRMSG_SIZE];
    if (s == NULL && c->n_sports < c->cap_sports && (s = calloc(1, sizeof *s)) != NULL) {
        snprintf(s->url, sizeof s->url, "%s", url);
        /* idle connections: as many as searches a node is sent at once, and some */
        if (tcpcall_open(url, 2 * c->o.node_inflight + 8, &s->tc, err) != DV_OK) {
            log_warn("a node's search port does not parse; its searches go over NNG",
                     "url=%s error=%s", url, err);
            s->tc = NULL; /* kept, so that this is said once */
        }
        c->sports[c->n_sports++] = s;
    }
    pthread_mutex_unlock(&c->conns_mu);
    return s;
}

struct tr_peer *coord_conn(struct coord *c, const char *url, struct combiner **comb, char *errmsg)
{
    pthread_mutex_lock(&c->conns_mu);
    for (size_t i = 0; i < c->n_conns; i++)
        if (strcmp(c->conns[i].url, url) == 0) {
            struct tr_peer *r = c->conns[i].peer;
            if (comb)
                *comb = c->conns[i].comb;
            pthread_mutex_unlock(&c->conns_mu);
            return r;
        }
    if (c->n_conns == c->cap_conns) {
        size_t cap = c->cap_conns ? c->cap_conns * 2 : 16;
        void *p = realloc(c->conns, cap * sizeof *c->conns);
        if (p == NULL) {
            pthread_mutex_unlock(&c->conns_mu);
            dv_errmsg_set(errmsg, "out of memory");
            return NULL;
        }
        c->conns = p;
        c->cap_conns = cap;
    }
    struct tr_opts ro;
    tr_opts_default(&ro);
    ro.timeout_ms = c->o.request_timeout_ms;
    ro.connect_wait_ms = c->o.connect_wait_ms;
    struct tr_peer *r;
    if (tr_open(c->tr, url, &ro, &r, errmsg) != DV_OK) {
        pthread_mutex_unlock(&c->conns_mu);
        return NULL;
    }
    struct combiner *cb = combiner_new(r, c->o.node_inflight);
    if (cb == NULL) {
        pthread_mutex_unlock(&c->conns_mu);
        tr_peer_close(r);
        dv_errmsg_set(errmsg, "out of memory");
        return NULL;
    }
    struct coord_conn *cc = &c->conns[c->n_conns++];
    snprintf(cc->url, sizeof cc->url, "%s", url);
    cc->peer = r;
    cc->comb = cb;
    if (comb)
        *comb = cb;
    pthread_mutex_unlock(&c->conns_mu);
    return r;
}

struct cmap_reqid coord_reqid(struct coord *c)
{
    return cmap_reqid_make(c->client_id, atomic_fetch_add(&c->seq, 1) + 1);
}

int coord_apply(struct coord *c, const struct cmap_cmd *cmd, struct cmap_result *res, char *errmsg)
{
    struct buf b;
    buf_init(&b);
    int rc = cmap_cmd_encode(cmd, &b, errmsg);
    if (rc != DV_OK) {
        buf_free(&b);
        return rc;
    }
    /* Leadership lost or a timeout does not mean the command failed: retry with the same
     * request id; the map applies it once and answers the retry with the first result. */
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = craft_apply(c->raft, b.data, b.len, c->o.request_timeout_ms, res, errmsg);
        if (rc != DV_EIO && rc != DV_ETIMEDOUT)
            break;
        log_warn("map command not confirmed; retrying", "type=%s attempt=%d error=%s",
                 cmap_cmd_type_name(cmd->type), attempt + 1, errmsg);
        clock_sleep_ms(50);
    }
    buf_free(&b);
    return rc;
}

void coord_seen(struct coord *c, const char *node_id)
{
    uint64_t now = clock_mono_ms();
    pthread_mutex_lock(&c->seen_mu);
    for (size_t i = 0; i < c->n_seen; i++)
        if (strcmp(c->seen[i].id, node_id) == 0) {
            c->seen[i].last_ms = now;
            pthread_mutex_unlock(&c->seen_mu);
            return;
        }
    if (c->n_seen == c->cap_seen) {
        size_t cap = c->cap_seen ? c->cap_seen * 2 : 16;
        void *p = realloc(c->seen, cap * sizeof *c->seen);
        if (p == NULL) {
            pthread_mutex_unlock(&c->seen_mu);
            return;
        }
        c->seen = p;
        c->cap_seen = cap;
    }
    snprintf(c->seen[c->n_seen].id, sizeof c->seen[c->n_seen].id, "%s", node_id);
    c->seen[c->n_seen].last_ms = now;
    c->seen[c->n_seen].stale = false;
    c->n_seen++;
    pthread_mutex_unlock(&c->seen_mu);
}

/* The leader's table entry of a node; called with seen_mu held. NULL when never seen. */
static struct coord_seen *seen_find(struct coord *c, const char *node_id)
{
    for (size_t i = 0; i < c->n_seen; i++)
        if (strcmp(c->seen[i].id, node_id) == 0)
            return &c->seen[i];
    return NULL;
}

void coord_mark_stale(struct coord *c, const char *node_id)
{
    pthread_mutex_lock(&c->seen_mu);
    struct coord_seen *s = seen_find(c, node_id);
    if (s)
        s->stale = true;
    pthread_mutex_unlock(&c->seen_mu);
}

bool coord_take_stale(struct coord *c, const char *node_id)
{
    pthread_mutex_lock(&c->seen_mu);
    struct coord_seen *s = seen_find(c, node_id);
    bool stale = s && s->stale;
    if (s)
        s->stale = false;
    pthread_mutex_unlock(&c->seen_mu);
    return stale;
}
