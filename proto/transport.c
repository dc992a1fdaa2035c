/* transport.c - the transport seam's generic layer: peers, default timeouts, and the request
 * encoding and reply checks every implementation shares. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "transport.h"

struct tr_peer {
    struct tr *t;
    void *conn;
    uint32_t timeout_ms; /* the default of calls given 0 */
    char url[256];
};

void tr_opts_default(struct tr_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = 10000;
    o->recv_max = PROTO_MAX_MSG;
    o->reconnect_ms = 50;
}

void tr_free(struct tr *t)
{
    if (t)
        t->ops->destroy(t);
}

int tr_open(struct tr *t, const char *url, const struct tr_opts *o, struct tr_peer **out,
            char *errmsg)
{
    struct tr_opts def;
    if (o == NULL) {
        tr_opts_default(&def);
        o = &def;
    }
    struct tr_peer *p = calloc(1, sizeof *p);
    if (p == NULL) {
        dv_errmsg_set(errmsg, "out of memory");
        return DV_ENOMEM;
    }
    int rc = t->ops->open(t, url, o, &p->conn, errmsg);
    if (rc != DV_OK) {
        free(p);
        return rc;
    }
    p->t = t;
    p->timeout_ms = o->timeout_ms;
    snprintf(p->url, sizeof p->url, "%s", url);
    *out = p;
    return DV_OK;
}

void tr_peer_close(struct tr_peer *p)
{
    if (p == NULL)
        return;
    p->t->ops->close(p->t, p->conn);
    free(p);
}

const char *tr_peer_url(const struct tr_peer *p)
{
    return p->url;
}

bool tr_connected(struct tr_peer *p)
{
    return p->t->ops->connected(p->t, p->conn);
}

int tr_call(struct tr_peer *p, const struct msg *req, struct msg_reply *rep, uint32_t timeout_ms,
            char *errmsg)
{
    return p->t->ops->call(p->t, p->conn, req, rep, timeout_ms ? timeout_ms : p->timeout_ms,
                           errmsg);
}

void tr_job_done(struct tr_job *j)
{
    j->done_(j->arg_, j);
}

void tr_call_start(struct tr_job *j, void (*done)(void *arg, struct tr_job *j), void *arg)
{
    struct tr_peer *p = j->p;
    memset(&j->rep, 0, sizeof j->rep);
    j->errmsg[0] = '\0';
    j->done_ = done;
    j->arg_ = arg;
    uint32_t tmo = j->timeout_ms ? j->timeout_ms : p->timeout_ms;
    if (p->t->ops->call_start) {
        j->timeout_ms = tmo;
        p->t->ops->call_start(p->t, p->conn, j);
        return;
    }
    j->rc = p->t->ops->call(p->t, p->conn, j->req, &j->rep, tmo, j->errmsg);
    tr_job_done(j);
}

int tr_call_raw(struct tr_peer *p, const void *in, size_t n, void **out, size_t *out_len,
                uint32_t timeout_ms, char *errmsg)
{
    return p->t->ops->call_raw(p->t, p->conn, in, n, out, out_len,
                               timeout_ms ? timeout_ms : p->timeout_ms, errmsg);
}

int tr_req_encode(const struct msg *req, atomic_uint_least64_t *next_id, struct msg *sent,
                  struct buf *b, char *errmsg)
{
    *sent = *req;
    if (sent->req_id == 0)
        sent->req_id = atomic_fetch_add(next_id, 1);
    return msg_encode(sent, b, errmsg);
}

int tr_reply_take(struct msg_reply *rep, size_t len, const struct msg *sent, const char *url,
                  char *errmsg)
{
    int rc = msg_decode(rep->mem_, len, &rep->m, errmsg);
    if (rc != DV_OK) {
        dv_errmsg_prefix(errmsg, "reply from %s", url);
        return DV_EPROTO;
    }
    if (!rep->m.reply || rep->m.req_id != sent->req_id ||
        (rep->m.type != sent->type && rep->m.type != MSG_ERROR)) {
        dv_errmsg_set(errmsg, "reply from %s does not match the request (%s #%" PRIu64 ")", url,
                      msg_type_name(sent->type), sent->req_id);
        return DV_EPROTO;
    }
    if (rep->m.err.code != 0) {
        dv_errmsg_set(errmsg, "%.*s", (int)rep->m.err.text.len, rep->m.err.text.p);
        return rep->m.err.code;
    }
    return DV_OK;
}
