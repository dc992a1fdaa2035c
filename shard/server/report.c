/* report.c - registration and heartbeats of a node to the coordinators. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "msg.h"
#include "report.h"
#include "transport.h"

struct reporter {
    struct report_opts o;
    struct node *node;
    struct tr_peer **conns;
    size_t n;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

struct collect {
    struct msg_replica_report *items;
    uint32_t n, cap;
};

static void collect_one(void *arg, struct node_replica *r)
{
    struct collect *c = arg;
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 16;
        void *p = realloc(c->items, cap * sizeof *c->items);
        if (p == NULL)
            return;
        c->items = p;
        c->cap = cap;
    }
    struct part_info info;
    part_get_info(r->part, &info);
    /* A copy: the replica may be dropped while the report is sent. */
    char *name = strdup(r->coll);
    if (name == NULL)
        return;
    c->items[c->n++] = (struct msg_replica_report){{name, (uint32_t)strlen(name)},
                                                   r->partition,
                                                   info.applied_lsn,
                                                   info.points,
                                                   node_incarnation(r)};
}

static void send_report(struct reporter *r, size_t *current, bool *registered)
{
    struct collect c = {0};
    node_foreach(r->node, collect_one, &c);
    struct msg req = {.type = MSG_NODE_REPORT};
    struct msg_node_report_req *q = &req.u.node_report_req;
    q->node_id = (struct msg_str){r->o.node_id, (uint32_t)strlen(r->o.node_id)};
    q->url = (struct msg_str){r->o.url, (uint32_t)strlen(r->o.url)};
    q->http_url = (struct msg_str){r->o.http_url, (uint32_t)strlen(r->o.http_url)};
    if (r->o.search_url)
        q->search_url = (struct msg_str){r->o.search_url, (uint32_t)strlen(r->o.search_url)};
    q->weight = r->o.weight;
    q->capacity = r->o.capacity;
    q->replicas = c.items;
    q->n = c.n;
    q->flags = r->o.flags;
    char err[DV_ERRMSG_SIZE];
    int rc = DV_EIO;
    for (size_t k = 0; k < r->n; k++) {
        size_t i = (*current + k) % r->n;
        struct msg_reply rep;
        rc = tr_call(r->conns[i], &req, &rep, 0, err);
        msg_reply_free(&rep);
        if (rc == DV_OK) {
            *current = i;
            if (!*registered)
                log_info("registered with the coordinators", "coordinator=%s replicas=%u",
                         r->o.coordinators->items[i], c.n);
            *registered = true;
            break;
        }
    }
    if (rc != DV_OK && *registered) {
        log_warn("no coordinator answers the node report", "error=%s", err);
        *registered = false;
    }
    for (uint32_t i = 0; i < c.n; i++)
        free((void *)c.items[i].coll.p);
    free(c.items);
}

static void *report_main(void *arg)
{
    struct reporter *r = arg;
    size_t current = 0;
    bool registered = false;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        send_report(r, &current, &registered);
        pthread_mutex_lock(&r->mu);
        struct timespec dl;
        clock_deadline_ms(&dl, r->o.interval_ms);
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &dl) == 0)
            ;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int report_start(const struct report_opts *o, struct node *n, struct reporter **out)
{
    *out = NULL;
    if (o->coordinators == NULL || o->coordinators->n == 0)
        return DV_OK;
    struct reporter *r = calloc(1, sizeof *r);
    if (r == NULL)
        return DV_ENOMEM;
    r->o = *o;
    r->node = n;
    r->conns = calloc(o->coordinators->n, sizeof *r->conns);
    if (r->conns == NULL) {
        free(r);
        return DV_ENOMEM;
    }
    struct tr_opts ro;
    tr_opts_default(&ro);
    ro.timeout_ms = o->timeout_ms;
    char err[DV_ERRMSG_SIZE];
    for (size_t i = 0; i < o->coordinators->n; i++) {
        if (tr_open(o->tr, o->coordinators->items[i], &ro, &r->conns[r->n], err) != DV_OK) {
            log_error("bad coordinator URL", "url=%s error=%s", o->coordinators->items[i], err);
            continue;
        }
        r->n++;
    }
    if (r->n == 0) {
        free(r->conns);
        free(r);
        return DV_EINVAL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&r->thread, NULL, report_main, r) != 0) {
        for (size_t i = 0; i < r->n; i++)
            tr_peer_close(r->conns[i]);
        free(r->conns);
        free(r);
        return DV_EOS;
    }
    *out = r;
    return DV_OK;
}

void report_stop(struct reporter *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    for (size_t i = 0; i < r->n; i++)
        tr_peer_close(r->conns[i]);
    free(r->conns);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
