/* craft_tr.c - raft's TCP transport with host names resolved at every connect (craft_tr.h). */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "craft_tr.h"

#define TR_HOST_MAX 256

/* A connect waiting for its name to resolve. */
struct tr_resolve {
    uv_getaddrinfo_t gai;
    struct tr *t;
    struct raft_uv_connect *req;
    raft_id id;
    raft_uv_connect_cb cb;
    char port[8];
    struct tr_resolve *prev, *next;
};

struct tr {
    struct raft_uv_transport inner; /* raft_uv_tcp */
    struct raft_uv_transport *outer;
    uv_loop_t *loop;
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    struct tr_resolve *pending; /* resolutions in flight */
    bool closing, inner_closed;
    unsigned long resolved;
};

static struct tr *tr_of(const struct raft_uv_transport *t)
{
    return t->impl;
}

static void maybe_closed(struct tr *t)
{
    if (t->closing && t->inner_closed && t->pending == NULL && t->close_cb) {
        raft_uv_transport_close_cb cb = t->close_cb;
        t->close_cb = NULL;
        cb(t->outer);
    }
}

static int tr_init(struct raft_uv_transport *o, raft_id id, const char *address)
{
    struct tr *t = tr_of(o);
    t->inner.data = o->data;
    int rv = t->inner.init(&t->inner, id, address);
    if (rv != 0)
        snprintf(o->errmsg, sizeof o->errmsg, "%s", t->inner.errmsg);
    return rv;
}

/* raft_uv hands accepted connections to the transport's `data` (set after init): pass them
 * on as coming from the outer transport. */
static void accepted(struct raft_uv_transport *inner, raft_id id, const char *address,
                     struct uv_stream_s *stream)
{
    struct tr *t = (struct tr *)((char *)inner - offsetof(struct tr, inner));
    t->accept_cb(t->outer, id, address, stream);
}

static int tr_listen(struct raft_uv_transport *o, raft_uv_accept_cb cb)
{
    struct tr *t = tr_of(o);
    t->accept_cb = cb;
    t->inner.data = o->data;
    int rv = t->inner.listen(&t->inner, accepted);
    if (rv != 0)
        snprintf(o->errmsg, sizeof o->errmsg, "%s", t->inner.errmsg);
    return rv;
}

static void unlink_resolve(struct tr *t, struct tr_resolve *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        t->pending = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    struct tr_resolve *r = gai->data;
    struct tr *t = r->t;
    unlink_resolve(t, r);
    int rv = RAFT_NOCONNECTION;
    if (t->closing) {
        rv = RAFT_CANCELED;
    } else if (status == 0 && res != NULL) {
        char ip[INET_ADDRSTRLEN], addr[INET_ADDRSTRLEN + 8];
        const struct sockaddr_in *sa = (const struct sockaddr_in *)res->ai_addr;
        inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
        snprintf(addr, sizeof addr, "%s:%s", ip, r->port);
        t->resolved++;
        rv = t->inner.connect(&t->inner, r->req, r->id, addr, r->cb);
        if (rv != 0)
            snprintf(t->outer->errmsg, sizeof t->outer->errmsg, "%s", t->inner.errmsg);
    } else {
        snprintf(t->outer->errmsg, sizeof t->outer->errmsg, "resolve: %s",
                 uv_strerror(status ? status : UV_EAI_NONAME));
    }
    if (res)
        uv_freeaddrinfo(res);
    /* raft_uv_tcp fires the callback itself once its connect started; otherwise it is ours
     * to fire (asynchronously, as raft expects: we are in a libuv callback). */
    struct raft_uv_connect *req = r->req;
    raft_uv_connect_cb cb = r->cb;
    free(r);
    if (rv != 0) {
        req->cb = cb;
        cb(req, NULL, rv);
    }
    maybe_closed(t);
}

static bool is_ipv4(const char *host)
{
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1;
}

static int tr_connect(struct raft_uv_transport *o, struct raft_uv_connect *req, raft_id id,
                      const char *address, raft_uv_connect_cb cb)
{
    struct tr *t = tr_of(o);
    const char *colon = strrchr(address, ':');
    size_t hl = colon ? (size_t)(colon - address) : 0;
    if (colon == NULL || hl == 0 || hl >= TR_HOST_MAX || strlen(colon + 1) == 0 ||
        strlen(colon + 1) >= sizeof((struct tr_resolve *)0)->port) {
        snprintf(o->errmsg, sizeof o->errmsg, "raft address '%s' is not HOST:PORT", address);
        return RAFT_NOCONNECTION;
    }
    char host[TR_HOST_MAX];
    memcpy(host, address, hl);
    host[hl] = '\0';
    if (is_ipv4(host)) {
        int rv = t->inner.connect(&t->inner, req, id, address, cb);
        if (rv != 0)
            snprintf(o->errmsg, sizeof o->errmsg, "%s", t->inner.errmsg);
        return rv;
    }
    struct tr_resolve *r = calloc(1, sizeof *r);
    if (r == NULL)
        return RAFT_NOMEM;
    r->t = t;
    r->req = req;
    r->id = id;
    r->cb = cb;
    snprintf(r->port, sizeof r->port, "%s", colon + 1);
    r->gai.data = r;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    int rv = uv_getaddrinfo(t->loop, &r->gai, resolved, host, r->port, &hints);
    if (rv != 0) {
        snprintf(o->errmsg, sizeof o->errmsg, "resolve %.128s: %.64s", host, uv_strerror(rv));
        free(r);
        return RAFT_NOCONNECTION;
    }
    req->cb = cb;
    r->next = t->pending;
    if (t->pending)
        t->pending->prev = r;
    t->pending = r;
    return 0;
}

static void inner_closed(struct raft_uv_transport *inner)
{
    struct tr *t = (struct tr *)((char *)inner - offsetof(struct tr, inner));
    t->inner_closed = true;
    maybe_closed(t);
}

static void tr_close(struct raft_uv_transport *o, raft_uv_transport_close_cb cb)
{
    struct tr *t = tr_of(o);
    t->closing = true;
    t->close_cb = cb;
    /* A cancelled resolution still calls back (UV_EAI_CANCELED); one already running on the
     * thread pool finishes first. Either way `resolved` sees closing and fails the connect. */
    for (struct tr_resolve *r = t->pending; r; r = r->next)
        uv_cancel((uv_req_t *)&r->gai);
    t->inner.close(&t->inner, inner_closed);
}

int craft_tr_init(struct raft_uv_transport *o, uv_loop_t *loop, const char *bind)
{
    struct tr *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(o->errmsg, sizeof o->errmsg, "out of memory");
        return RAFT_NOMEM;
    }
    int rv = raft_uv_tcp_init(&t->inner, loop);
    if (rv != 0) {
        snprintf(o->errmsg, sizeof o->errmsg, "raft_uv_tcp_init: %s", raft_strerror(rv));
        free(t);
        return rv;
    }
    if (bind && (rv = raft_uv_tcp_set_bind_address(&t->inner, bind)) != 0) {
        snprintf(o->errmsg, sizeof o->errmsg,
                 "raft listen address '%s' is not an IPv4 address with a port", bind);
        raft_uv_tcp_close(&t->inner);
        free(t);
        return RAFT_INVALID;
    }
    t->outer = o;
    t->loop = loop;
    o->impl = t;
    o->init = tr_init;
    o->listen = tr_listen;
    o->connect = tr_connect;
    o->close = tr_close;
    return 0;
}

void craft_tr_close(struct raft_uv_transport *o)
{
    struct tr *t = tr_of(o);
    if (t == NULL)
        return;
    raft_uv_tcp_close(&t->inner);
    free(t);
    o->impl = NULL;
}

unsigned long craft_tr_resolved(const struct raft_uv_transport *o)
{
    return tr_of(o)->resolved;
}
