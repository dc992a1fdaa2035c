/* route.c - what libdvec knows of where partitions live: each collection's routing table
 * (MSG_ROUTE, fetched from a coordinator and kept route_ttl_ms) and the connections to the
 * nodes it names, for calls that go to the nodes themselves (direct.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "clock.h"

/* The connection to node URL `url` (len bytes): its native URL over NNG, or its search port
 * (`search`), opened on first use. Called with c->mu held. */
static struct cl_conn *conn_of(dvec_client *c, const char *url, uint32_t len, bool search)
{
    for (size_t i = 0; i < c->n_conns; i++) {
        struct cl_conn *k = c->conns[i];
        if (strlen(k->url) == len && memcmp(k->url, url, len) == 0 && (k->tcp != NULL) == search)
            return k;
    }
    if (c->n_conns == c->cap_conns) {
        size_t cap = c->cap_conns ? 2 * c->cap_conns : 8;
        struct cl_conn **n = realloc(c->conns, cap * sizeof *n);
        if (n == NULL)
            return NULL;
        c->conns = n;
        c->cap_conns = cap;
    }
    struct cl_conn *k = calloc(1, sizeof *k);
    char e[DV_ERRMSG_SIZE];
    if (k == NULL || (k->url = strndup(url, len)) == NULL) {
        free(k);
        return NULL;
    }
    int rc =
        search ? tcpcall_open(k->url, 0, &k->tcp, e) : rpc_open(k->url, &c->node_opts, &k->rpc, e);
    if (rc != DV_OK) {
        free(k->url);
        free(k);
        return NULL;
    }
    c->conns[c->n_conns++] = k;
    return k;
}

static void route_free(struct cl_route *r)
{
    if (r == NULL)
        return;
    msg_reply_free(&r->rep);
    free(r->conns);
    free(r->search);
    free(r);
}

/* Asks the coordinators for coll's route. Never NULL but when out of memory; r->none when no
 * route came. */
static struct cl_route *fetch(dvec_client *c, const char *coll)
{
    struct cl_route *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    snprintf(r->name, sizeof r->name, "%s", coll);
    r->fetched_ms = clock_mono_ms();
    struct msg req = cl_req(MSG_ROUTE, coll);
    char e[DV_ERRMSG_SIZE];
    const struct msg_route_rep *t = &r->rep.m.u.route_rep;
    if (cl_call(c, &req, 0, &r->rep, e) != DV_OK || t->n_parts != t->cfg.partitions) {
        msg_reply_free(&r->rep);
        r->none = true;
        return r;
    }
    r->conns = calloc(t->n_nodes ? t->n_nodes : 1, sizeof *r->conns);
    r->search = calloc(t->n_nodes ? t->n_nodes : 1, sizeof *r->search);
    if (r->conns == NULL || r->search == NULL) {
        route_free(r);
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    for (uint32_t i = 0; i < t->n_nodes && !r->none; i++) {
        struct cl_conn *k = conn_of(c, t->nodes[i].url.p, t->nodes[i].url.len, false);
        r->none = k == NULL;
        r->conns[i] = k ? k->rpc : NULL;
        /* a search port that does not parse is not used: the native URL is */
        const struct msg_str *su = &t->search_urls[i];
        if (k && c->search_port && su->len > 0)
            r->search[i] = conn_of(c, su->p, su->len, true);
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* Unlinks coll's route from the cache (c->mu held); the cache's reference goes with it. */
static void unlink_route(dvec_client *c, struct cl_route *r)
{
    for (struct cl_route **pp = &c->routes; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            if (--r->refs == 0)
                route_free(r);
            return;
        }
}

struct cl_route *cl_route_get(dvec_client *c, const char *coll)
{
    if (!c->direct)
        return NULL;
    uint64_t now = clock_mono_ms();
    pthread_mutex_lock(&c->mu);
    for (struct cl_route *r = c->routes; r; r = r->next) {
        if (strcmp(r->name, coll) != 0)
            continue;
        uint64_t ttl = r->none ? CL_ROUTE_RETRY_MS : c->route_ttl_ms;
        if (now - r->fetched_ms < ttl) {
            struct cl_route *got = r->none ? NULL : r;
            if (got)
                got->refs++;
            pthread_mutex_unlock(&c->mu);
            return got;
        }
        unlink_route(c, r); /* too old */
        break;
    }
    pthread_mutex_unlock(&c->mu);

    /* Fetched outside the lock: two threads may fetch at once; the later one wins. */
    struct cl_route *r = fetch(c, coll);
    if (r == NULL)
        return NULL;
    pthread_mutex_lock(&c->mu);
    for (struct cl_route *o = c->routes; o; o = o->next)
        if (strcmp(o->name, coll) == 0) {
            unlink_route(c, o);
            break;
        }
    r->refs = r->none ? 1 : 2; /* the cache's, and the caller's */
    r->next = c->routes;
    c->routes = r;
    pthread_mutex_unlock(&c->mu);
    return r->none ? NULL : r;
}

void cl_route_put(dvec_client *c, struct cl_route *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last)
        route_free(r);
}

void cl_route_stale(dvec_client *c, struct cl_route *r)
{
    pthread_mutex_lock(&c->mu);
    unlink_route(c, r); /* a no-op when another thread dropped it already */
    pthread_mutex_unlock(&c->mu);
}

void cl_routes_free(dvec_client *c)
{
    while (c->routes) {
        struct cl_route *r = c->routes;
        c->routes = r->next;
        route_free(r); /* no call runs during dvec_close */
    }
    for (size_t i = 0; i < c->n_conns; i++) {
        rpc_close(c->conns[i]->rpc);
        tcpcall_close(c->conns[i]->tcp);
        free(c->conns[i]->url);
        free(c->conns[i]);
    }
    free(c->conns);
    c->conns = NULL;
    c->n_conns = c->cap_conns = 0;
}
