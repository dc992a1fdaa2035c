/* tr_fake.c - the in-memory transport for tests (tr_fake.h): servers by URL, per-link rules,
 * partitions and counters, every random decision from a per-link PRNG. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "hash.h"
#include "tr_fake.h"

#define NAME_MAX_ 64
#define URL_MAX_  256

struct server {
    struct server *next;
    char name[NAME_MAX_];
    char url[URL_MAX_];
    rpcsrv_handle_fn fn;
    void *arg;
    enum tr_fake_state state;
    int running; /* handler calls in progress (unserve waits for 0) */
};

struct link {
    struct link *next;
    char from[NAME_MAX_];
    char to[URL_MAX_];
    uint64_t rng; /* splitmix64 state */
    uint64_t seq; /* messages sent on the link */
    struct tr_fake_counts c;
};

struct rule {
    struct rule *next;
    char from[NAME_MAX_], to[URL_MAX_]; /* "" with any_*: a wildcard */
    bool any_from, any_to;
    struct tr_fake_rule r;
};

/* A name on a side of a partition (names not listed are on side 0). */
struct side {
    struct side *next;
    char name[NAME_MAX_];
    uint32_t side;
};

struct tr_fake_net {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a server's running count fell */
    uint64_t seed;
    struct server *servers;
    struct link *links;
    struct rule *rules;
    struct side *sides;
    uint32_t n_sides;
};

/* A party: the transport's impl. */
struct party {
    struct tr t;
    struct tr_fake_net *net;
    char name[NAME_MAX_];
};

/* A peer opened by a party. */
struct conn {
    struct party *p;
    struct tr_opts o;
    char url[URL_MAX_];
    atomic_uint_least64_t next_id;
};

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double unit(uint64_t x)
{
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

int tr_fake_net_new(uint64_t seed, struct tr_fake_net **out)
{
    struct tr_fake_net *net = calloc(1, sizeof *net);
    if (net == NULL)
        return DV_ENOMEM;
    pthread_mutex_init(&net->mu, NULL);
    pthread_cond_init(&net->cv, NULL);
    net->seed = seed;
    *out = net;
    return DV_OK;
}

void tr_fake_net_free(struct tr_fake_net *net)
{
    if (net == NULL)
        return;
    tr_fake_clear_rules(net);
    tr_fake_heal(net);
    while (net->servers) {
        struct server *s = net->servers;
        net->servers = s->next;
        free(s);
    }
    while (net->links) {
        struct link *l = net->links;
        net->links = l->next;
        free(l);
    }
    pthread_cond_destroy(&net->cv);
    pthread_mutex_destroy(&net->mu);
    free(net);
}

/* ---- under the net's lock ----------------------------------------------------------------- */

static struct server *server_find(struct tr_fake_net *net, const char *url)
{
    for (struct server *s = net->servers; s; s = s->next)
        if (strcmp(s->url, url) == 0)
            return s;
    return NULL;
}

/* The link (from, to), made on first use; NULL when out of memory. */
static struct link *link_get(struct tr_fake_net *net, const char *from, const char *to)
{
    for (struct link *l = net->links; l; l = l->next)
        if (strcmp(l->from, from) == 0 && strcmp(l->to, to) == 0)
            return l;
    struct link *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    snprintf(l->from, sizeof l->from, "%s", from);
    snprintf(l->to, sizeof l->to, "%s", to);
    l->rng = hash64_bytes(l->to, strlen(l->to), hash64_bytes(l->from, strlen(l->from), net->seed));
    l->next = net->links;
    net->links = l;
    return l;
}

static struct rule *rule_find(struct tr_fake_net *net, const char *from, const char *to)
{
    for (struct rule *r = net->rules; r; r = r->next)
        if (r->any_from == (from == NULL) && r->any_to == (to == NULL) &&
            (from == NULL || strcmp(r->from, from) == 0) && (to == NULL || strcmp(r->to, to) == 0))
            return r;
    return NULL;
}

/* The most specific rule for a call from `from` to `to`, NULL for none. */
static struct rule *rule_match(struct tr_fake_net *net, const char *from, const char *to)
{
    struct rule *r;
    if ((r = rule_find(net, from, to)) || (r = rule_find(net, from, NULL)) ||
        (r = rule_find(net, NULL, to)))
        return r;
    return rule_find(net, NULL, NULL);
}

static uint32_t side_of(struct tr_fake_net *net, const char *name)
{
    for (struct side *s = net->sides; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s->side;
    return 0;
}

/* ---- control ------------------------------------------------------------------------------ */

int tr_fake_serve(struct tr_fake_net *net, const char *name, const char *url, rpcsrv_handle_fn fn,
                  void *arg)
{
    pthread_mutex_lock(&net->mu);
    if (server_find(net, url)) {
        pthread_mutex_unlock(&net->mu);
        return DV_EEXIST;
    }
    struct server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        pthread_mutex_unlock(&net->mu);
        return DV_ENOMEM;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->url, sizeof s->url, "%s", url);
    s->fn = fn;
    s->arg = arg;
    s->state = TR_FAKE_UP;
    s->next = net->servers;
    net->servers = s;
    pthread_mutex_unlock(&net->mu);
    return DV_OK;
}

void tr_fake_unserve(struct tr_fake_net *net, const char *url)
{
    pthread_mutex_lock(&net->mu);
    for (struct server **pp = &net->servers; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->url, url) == 0) {
            struct server *s = *pp;
            *pp = s->next; /* no new call finds it */
            while (s->running > 0)
                pthread_cond_wait(&net->cv, &net->mu);
            free(s);
            break;
        }
    pthread_mutex_unlock(&net->mu);
}

int tr_fake_set_state(struct tr_fake_net *net, const char *url, enum tr_fake_state st)
{
    pthread_mutex_lock(&net->mu);
    struct server *s = server_find(net, url);
    if (s)
        s->state = st;
    pthread_mutex_unlock(&net->mu);
    return s ? DV_OK : DV_ENOTFOUND;
}

int tr_fake_set_rule(struct tr_fake_net *net, const char *from, const char *to_url,
                     const struct tr_fake_rule *rule)
{
    pthread_mutex_lock(&net->mu);
    struct rule *r = rule_find(net, from, to_url);
    if (rule == NULL) {
        for (struct rule **pp = &net->rules; r && *pp; pp = &(*pp)->next)
            if (*pp == r) {
                *pp = r->next;
                free(r);
                break;
            }
        pthread_mutex_unlock(&net->mu);
        return DV_OK;
    }
    if (r == NULL) {
        if ((r = calloc(1, sizeof *r)) == NULL) {
            pthread_mutex_unlock(&net->mu);
            return DV_ENOMEM;
        }
        snprintf(r->from, sizeof r->from, "%s", from ? from : "");
        snprintf(r->to, sizeof r->to, "%s", to_url ? to_url : "");
        r->any_from = from == NULL;
        r->any_to = to_url == NULL;
        r->next = net->rules;
        net->rules = r;
    }
    r->r = *rule;
    pthread_mutex_unlock(&net->mu);
    return DV_OK;
}

void tr_fake_clear_rules(struct tr_fake_net *net)
{
    pthread_mutex_lock(&net->mu);
    while (net->rules) {
        struct rule *r = net->rules;
        net->rules = r->next;
        free(r);
    }
    pthread_mutex_unlock(&net->mu);
}

int tr_fake_partition(struct tr_fake_net *net, const char *const *names, size_t n)
{
    pthread_mutex_lock(&net->mu);
    uint32_t side = ++net->n_sides;
    int rc = DV_OK;
    for (size_t i = 0; i < n; i++) {
        struct side *s = net->sides;
        while (s && strcmp(s->name, names[i]) != 0)
            s = s->next;
        if (s == NULL) {
            if ((s = calloc(1, sizeof *s)) == NULL) {
                rc = DV_ENOMEM;
                break;
            }
            snprintf(s->name, sizeof s->name, "%s", names[i]);
            s->next = net->sides;
            net->sides = s;
        }
        s->side = side;
    }
    pthread_mutex_unlock(&net->mu);
    return rc;
}

void tr_fake_heal(struct tr_fake_net *net)
{
    pthread_mutex_lock(&net->mu);
    while (net->sides) {
        struct side *s = net->sides;
        net->sides = s->next;
        free(s);
    }
    net->n_sides = 0;
    pthread_mutex_unlock(&net->mu);
}

void tr_fake_counts(struct tr_fake_net *net, const char *from, const char *to_url,
                    struct tr_fake_counts *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&net->mu);
    for (struct link *l = net->links; l; l = l->next)
        if ((from == NULL || strcmp(l->from, from) == 0) &&
            (to_url == NULL || strcmp(l->to, to_url) == 0)) {
            out->sent += l->c.sent;
            out->delivered += l->c.delivered;
            out->answered += l->c.answered;
            out->dropped += l->c.dropped;
            out->refused += l->c.refused;
        }
    pthread_mutex_unlock(&net->mu);
}

/* ---- calls -------------------------------------------------------------------------------- */

/* What happens to one message, decided when it is sent. */
enum fate { F_DELIVER, F_REFUSE, F_LOSE };

/* Decides the fate of the next message on (from, to) and counts it; on F_DELIVER *srv is held
 * (running) and *delay_ms and *drop_rep say how. Under the lock. */
static enum fate decide(struct tr_fake_net *net, const char *from, const char *to,
                        uint32_t timeout_ms, struct server **srv, uint32_t *delay_ms,
                        bool *drop_rep, struct link **lk)
{
    struct link *l = link_get(net, from, to);
    *lk = l;
    if (l == NULL)
        return F_REFUSE;
    l->c.sent++;
    /* Always the same draws per message, whatever the rule: the k-th message's fate depends
     * only on (seed, from, to, k) and the rule. */
    uint64_t k = ++l->seq;
    double u_req = unit(splitmix64(&l->rng)), u_rep = unit(splitmix64(&l->rng));
    uint64_t u_jit = splitmix64(&l->rng);
    struct server *s = server_find(net, to);
    if (s == NULL || s->state == TR_FAKE_REFUSED) {
        l->c.refused++;
        return F_REFUSE;
    }
    if (s->state == TR_FAKE_SILENT || side_of(net, from) != side_of(net, s->name)) {
        l->c.dropped++;
        return F_LOSE;
    }
    struct rule *ru = rule_match(net, from, to);
    struct tr_fake_rule none = {0}, *r = ru ? &ru->r : &none;
    bool lose = (r->drop_req_every && k % r->drop_req_every == 0) || u_req < r->drop_req_p;
    if (!lose && r->drop_req_next > 0) {
        r->drop_req_next--;
        lose = true;
    }
    *delay_ms = r->delay_ms + (r->jitter_ms ? (uint32_t)(u_jit % ((uint64_t)r->jitter_ms + 1)) : 0);
    if (lose || *delay_ms >= timeout_ms) {
        l->c.dropped++;
        return F_LOSE;
    }
    *drop_rep = (r->drop_rep_every && k % r->drop_rep_every == 0) || u_rep < r->drop_rep_p;
    if (!*drop_rep && r->drop_rep_next > 0) {
        r->drop_rep_next--;
        *drop_rep = true;
    }
    s->running++;
    *srv = s;
    return F_DELIVER;
}

static void sleep_until(uint64_t deadline)
{
    uint64_t now = clock_mono_ms();
    if (now < deadline)
        clock_sleep_ms(deadline - now);
}

static int timed_out(struct conn *c, uint64_t deadline, uint32_t timeout_ms, char *errmsg)
{
    sleep_until(deadline);
    dv_errmsg_set(errmsg, "waiting for: no reply from %s within %u ms", c->url, timeout_ms);
    return DV_ETIMEDOUT;
}

static int fake_call_raw(struct tr *t, void *conn, const void *in, size_t n, void **out,
                         size_t *out_len, uint32_t timeout_ms, char *errmsg)
{
    struct conn *c = conn;
    struct tr_fake_net *net = c->p->net;
    uint64_t deadline = clock_mono_ms() + timeout_ms;
    *out = NULL;
    *out_len = 0;
    struct server *s = NULL;
    struct link *l;
    uint32_t delay = 0;
    bool drop_rep = false;
    pthread_mutex_lock(&net->mu);
    enum fate f = decide(net, c->p->name, c->url, timeout_ms, &s, &delay, &drop_rep, &l);
    pthread_mutex_unlock(&net->mu);
    if (f == F_REFUSE && l == NULL) {
        dv_errmsg_set(errmsg, "out of memory");
        return DV_ENOMEM;
    }
    if (f == F_REFUSE && c->o.connect_wait_ms > 0) {
        dv_errmsg_set(errmsg, "not connected to %s (refused)", c->url);
        return DV_EIO;
    }
    if (f != F_DELIVER)
        return timed_out(c, deadline, timeout_ms, errmsg);

    if (delay)
        clock_sleep_ms(delay);
    struct buf b;
    buf_init(&b);
    struct rpcsrv_result res = {0};
    int rc = s->fn(s->arg, in, n, &b, &res);
    pthread_mutex_lock(&net->mu);
    s->running--;
    pthread_cond_broadcast(&net->cv);
    l->c.delivered++;
    bool lost = rc != DV_OK || drop_rep || (c->o.recv_max && b.len > c->o.recv_max) ||
                clock_mono_ms() > deadline;
    if (lost)
        l->c.dropped++;
    else
        l->c.answered++;
    pthread_mutex_unlock(&net->mu);
    if (lost) {
        buf_free(&b);
        return timed_out(c, deadline, timeout_ms, errmsg);
    }
    *out_len = b.len;
    *out = b.data ? b.data : malloc(1); /* the reply's bytes change hands, as after a real recv */
    if (*out == NULL) {
        dv_errmsg_set(errmsg, "out of memory");
        return DV_ENOMEM;
    }
    return DV_OK;
}

static int fake_call(struct tr *t, void *conn, const struct msg *req, struct msg_reply *rep,
                     uint32_t timeout_ms, char *errmsg)
{
    struct conn *c = conn;
    memset(rep, 0, sizeof *rep);
    struct msg sent;
    struct buf b;
    buf_init(&b);
    int rc = tr_req_encode(req, &c->next_id, &sent, &b, errmsg);
    if (rc == DV_OK) {
        size_t len;
        rc = fake_call_raw(t, conn, b.data, b.len, &rep->mem_, &len, timeout_ms, errmsg);
        if (rc == DV_OK)
            rc = tr_reply_take(rep, len, &sent, c->url, errmsg);
    }
    buf_free(&b);
    return rc;
}

static int fake_open(struct tr *t, const char *url, const struct tr_opts *o, void **conn,
                     char *errmsg)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        dv_errmsg_set(errmsg, "out of memory");
        return DV_ENOMEM;
    }
    c->p = t->impl;
    c->o = *o;
    snprintf(c->url, sizeof c->url, "%s", url);
    atomic_init(&c->next_id, 1);
    *conn = c;
    return DV_OK;
}

static void fake_close(struct tr *t, void *conn)
{
    (void)t;
    free(conn);
}

static bool fake_connected(struct tr *t, void *conn)
{
    (void)t;
    struct conn *c = conn;
    struct tr_fake_net *net = c->p->net;
    pthread_mutex_lock(&net->mu);
    struct server *s = server_find(net, c->url);
    bool up = s && s->state != TR_FAKE_REFUSED && side_of(net, c->p->name) == side_of(net, s->name);
    pthread_mutex_unlock(&net->mu);
    return up;
}

static void fake_destroy(struct tr *t)
{
    free(t->impl);
}

static const struct tr_ops fake_ops = {
    .open = fake_open,
    .close = fake_close,
    .connected = fake_connected,
    .call = fake_call,
    .call_raw = fake_call_raw,
    .destroy = fake_destroy,
};

struct tr *tr_fake_new(struct tr_fake_net *net, const char *name)
{
    struct party *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->net = net;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->t.ops = &fake_ops;
    p->t.impl = p;
    return &p->t;
}
