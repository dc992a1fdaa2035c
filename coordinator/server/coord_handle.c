/* coord_handle.c - the coordinator's requests: map changes (on the leader, forwarded by the
 * others), map reads, node reports, and data requests handed to the router. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "coord.h"
#include "coord_coll.h"
#include "group.h"
#include "insync.h"
#include "err.h"
#include "log.h"
#include "mpk.h"
#include "place.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

static int name_of(const struct msg *m, char *out, char *errmsg)
{
    if (m->addr.coll.len == 0 || m->addr.coll.len > CMAP_NAME_MAX) {
        dv_errmsg_set(errmsg, "collection name must be 1 to %d bytes", CMAP_NAME_MAX);
        return DV_EINVAL;
    }
    memcpy(out, m->addr.coll.p, m->addr.coll.len);
    out[m->addr.coll.len] = '\0';
    if (strlen(out) != m->addr.coll.len) {
        dv_errmsg_set(errmsg, "collection name holds a NUL byte");
        return DV_EINVAL;
    }
    return DV_OK;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- forwarding to the leader ------------------------------------------------------------ */

/* Sends `req` to the leader; on DV_OK *rep holds the leader's reply (an error reply included).
 * Any other code: the leader could not be reached or did not answer (errmsg says why). */
static int forward(struct coord *c, const struct msg *req, struct msg_reply *rep, char *errmsg)
{
    /* During an election, or right after this coordinator started or joined, no leader is
     * known for a moment (raft 0.15 reconnects after up to a second): wait for one, within
     * half the request timeout, rather than fail a request that would succeed. */
    struct craft_status st;
    uint64_t deadline = clock_mono_ms() + c->o.request_timeout_ms / 2;
    for (;;) {
        craft_status(c->raft, &st);
        bool known = st.leader_id != 0 && st.leader_url[0] != '\0';
        if (known && !(st.leader_id == c->o.id && !st.leader_ready))
            break;
        if (st.leader_ready)
            break; /* became the ready leader meanwhile: the caller's forward goes to itself */
        if (clock_mono_ms() >= deadline) {
            if (!known)
                dv_errmsg_set(errmsg,
                              "no coordinator is leader right now (election in progress); retry");
            else
                dv_errmsg_set(errmsg,
                              "this coordinator was just elected and is not ready yet; retry");
            return DV_EBUSY;
        }
        clock_sleep_ms(10);
    }
    struct tr_peer *r = coord_conn(c, st.leader_url, NULL, errmsg);
    if (r == NULL)
        return DV_EIO;
    int rc = tr_call(r, req, rep, 0, errmsg);
    if (rc != DV_OK && rep->mem_ != NULL && rep->m.err.code == rc)
        return DV_OK; /* the leader answered with an error: that is the client's answer */
    if (rc != DV_OK) {
        msg_reply_free(rep);
        dv_errmsg_prefix(errmsg, "forwarding to the leader (coordinator %" PRIu64 ")",
                         st.leader_id);
    }
    return rc;
}

/* ---- map changes (leader) ---------------------------------------------------------------- */

/* Creating one collection's replicas, one task per node (rpcsrv_parallel). */
struct create_job {
    struct coord *c;
    const struct cmap *m;
    const char *coll;
    const struct cmap_node **nodes;
};

static void create_on_node(void *arg, size_t i)
{
    struct create_job *j = arg;
    coord_reconcile_node(j->c, j->m, j->nodes[i], j->coll, false);
}

/* Asks every node that is not dead or removed to create its replicas of collection `name`,
 * in parallel; failures are logged (the leader's loop retries them). */
static void create_replicas(struct coord *c, const char *name)
{
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    const struct cmap_node **nodes = calloc(m->n_nodes ? m->n_nodes : 1, sizeof *nodes);
    size_t n = 0;
    for (uint32_t i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].state != CMAP_NODE_REMOVED && m->nodes[i].state != CMAP_NODE_DEAD) {
            if (nodes == NULL)
                coord_reconcile_node(c, m, &m->nodes[i], name, false);
            else
                nodes[n++] = &m->nodes[i];
        }
    struct create_job j = {c, m, name, nodes};
    if (n == 1)
        create_on_node(&j, 0);
    else if (n > 1)
        rpcsrv_parallel(c->srv, n, create_on_node, &j);
    free(nodes);
    craft_map_release(c->raft, ref);
}

/* One replica of a dropped collection to drop from its node. */
struct drop_call {
    uint32_t node, part;
    struct tr_peer *r;
    const char *node_id;
    const char *coll;
    uint64_t epoch;
    int rc;
    char err[DV_ERRMSG_SIZE];
};

static int drop_call_cmp(const void *a, const void *b)
{
    const struct drop_call *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->part < y->part ? -1 : x->part > y->part;
}

static void drop_one(void *arg, size_t i)
{
    struct drop_call *k = &((struct drop_call *)arg)[i];
    struct msg req = {.type = MSG_REPLICA_DROP};
    req.addr = (struct msg_addr){S(k->coll), k->part, k->epoch, 0};
    struct msg_reply rep;
    k->rc = tr_call(k->r, &req, &rep, 0, k->err);
    msg_reply_free(&rep);
}

/*
 * The replicas of collection cl that nodes may hold: its placement, both ends of its moves
 * and what nodes reported, once each, on nodes that are not dead or removed. *out (malloc'd)
 * gets them with their connections; node ids and names point into map m.
 */
static int drop_calls(struct coord *c, const struct cmap *m, const struct cmap_coll *cl,
                      struct drop_call **out, size_t *n_out)
{
    size_t cap = 0, n = 0;
    for (uint32_t p = 0; p < cl->cfg.n_parts; p++)
        cap += cl->parts[p].n;
    cap += 2 * (size_t)m->n_moves;
    for (uint32_t i = 0; i < m->n_nodes; i++)
        cap += m->nodes[i].n_reports;
    struct drop_call *k = calloc(cap ? cap : 1, sizeof *k);
    if (k == NULL)
        return DV_ENOMEM;
    for (uint32_t p = 0; p < cl->cfg.n_parts; p++)
        for (uint32_t j = 0; j < cl->parts[p].n; j++)
            k[n++] = (struct drop_call){.node = cl->parts[p].nodes[j], .part = p};
    for (uint32_t i = 0; i < m->n_moves; i++)
        if (strcmp(m->moves[i].coll, cl->name) == 0) {
            k[n++] = (struct drop_call){.node = m->moves[i].from, .part = m->moves[i].part};
            k[n++] = (struct drop_call){.node = m->moves[i].to, .part = m->moves[i].part};
        }
    for (uint32_t i = 0; i < m->n_nodes; i++)
        for (uint32_t j = 0; j < m->nodes[i].n_reports; j++)
            if (strcmp(m->nodes[i].reports[j].coll, cl->name) == 0)
                k[n++] = (struct drop_call){.node = i, .part = m->nodes[i].reports[j].part};
    qsort(k, n, sizeof *k, drop_call_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept > 0 && drop_call_cmp(&k[kept - 1], &k[i]) == 0)
            continue;
        const struct cmap_node *nd = cmap_node_get(m, k[i].node);
        if (nd == NULL || nd->state == CMAP_NODE_DEAD || nd->state == CMAP_NODE_REMOVED)
            continue;
        k[i].r = coord_conn(c, nd->url, NULL, k[i].err);
        if (k[i].r == NULL)
            continue;
        k[i].node_id = nd->id;
        k[i].coll = cl->name;
        k[kept++] = k[i];
    }
    *out = k;
    *n_out = kept;
    return DV_OK;
}

static int coll_create(struct coord *c, const struct msg *req, char *errmsg)
{
    char name[CMAP_NAME_MAX + 1];
    int rc = name_of(req, name, errmsg);
    if (rc != DV_OK)
        return rc;
    struct cmap_cmd cmd = {.type = CMAP_CMD_COLL_CREATE, .req = coord_reqid(c)};
    snprintf(cmd.u.coll_create.name, sizeof cmd.u.coll_create.name, "%s", name);
    struct cmap_coll_cfg *g = &cmd.u.coll_create.cfg;
    coord_coll_cfg_from_msg(&req->u.coll_cfg, g);
    struct cmap_ref *ref = craft_map(c->raft);
    if (cmap_coll_find(&ref->map, name) != NULL) {
        craft_map_release(c->raft, ref);
        dv_errmsg_set(errmsg, "collection %s already exists", name);
        return DV_EEXIST;
    }
    rc = place_fill_create(&ref->map, &cmd, errmsg);
    craft_map_release(c->raft, ref);
    if (rc != DV_OK)
        return rc;
    struct cmap_result res;
    struct cmap_coll_cfg made = *g;
    rc = coord_apply(c, &cmd, &res, errmsg);
    cmap_cmd_free(&cmd);
    if (rc != DV_OK)
        return rc;
    if (res.code != DV_OK) {
        dv_errmsg_set(errmsg, "%s", res.msg);
        return res.code;
    }
    log_info("collection created", "name=%s dim=%u partitions=%u rf=%u epoch=%" PRIu64, name,
             made.dim, made.n_parts, made.rf, res.epoch);
    /* Create the replicas now, so that the collection is usable when the client hears back;
     * the leader's loop retries whatever fails here. */
    create_replicas(c, name);
    return DV_OK;
}

static int coll_drop(struct coord *c, const struct msg *req, char *errmsg)
{
    char name[CMAP_NAME_MAX + 1];
    int rc = name_of(req, name, errmsg);
    if (rc != DV_OK)
        return rc;
    struct cmap_cmd cmd = {.type = CMAP_CMD_COLL_DROP, .req = coord_reqid(c)};
    snprintf(cmd.u.coll_drop.name, sizeof cmd.u.coll_drop.name, "%s", name);
    /* Where its replicas are, from the map before the drop (kept until they are dropped). */
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap_coll *cl = cmap_coll_find(&ref->map, name);
    struct drop_call *calls = NULL;
    size_t n_calls = 0;
    if (cl != NULL && (rc = drop_calls(c, &ref->map, cl, &calls, &n_calls)) != DV_OK) {
        craft_map_release(c->raft, ref);
        return rc;
    }
    struct cmap_result res;
    rc = coord_apply(c, &cmd, &res, errmsg);
    if (rc == DV_OK && res.code != DV_OK) {
        dv_errmsg_set(errmsg, "%s", res.msg);
        rc = res.code;
    }
    if (rc != DV_OK) {
        free(calls);
        craft_map_release(c->raft, ref);
        return rc;
    }
    /* Drop the replicas now (best effort, in parallel), with the epoch of the drop: disk space
     * comes back at once and a collection created next under the same name starts empty. A
     * node that misses this drops them when the leader's loop reconciles it, and a create of
     * the new collection replaces a replica left over (its incarnation differs). */
    for (size_t i = 0; i < n_calls; i++)
        calls[i].epoch = res.epoch;
    if (n_calls == 1)
        drop_one(calls, 0);
    else if (n_calls > 1)
        rpcsrv_parallel(c->srv, n_calls, drop_one, calls);
    size_t failed = 0;
    for (size_t i = 0; i < n_calls; i++)
        if (calls[i].rc != DV_OK && calls[i].rc != DV_ESTALE) {
            if (failed++ == 0)
                log_warn("cannot drop a replica of a dropped collection now; reconcile will",
                         "node=%s collection=%s partition=%u code=%s error=%s", calls[i].node_id,
                         name, calls[i].part, dv_errname(calls[i].rc), calls[i].err);
        }
    log_info("collection dropped",
             "name=%s epoch=%" PRIu64 " replicas=%zu replica_drops_failed=%zu", name, res.epoch,
             n_calls, failed);
    free(calls);
    craft_map_release(c->raft, ref);
    return DV_OK;
}

/* Same replicas (collection, partition) reported as the map holds for the node? */
static bool same_reports(const struct cmap_node *n, const struct msg_node_report_req *r)
{
    if (n->n_reports != r->n)
        return false;
    for (uint32_t i = 0; i < r->n; i++) {
        bool found = false;
        for (uint32_t j = 0; j < n->n_reports && !found; j++)
            found = n->reports[j].part == r->replicas[i].part &&
                    strlen(n->reports[j].coll) == r->replicas[i].coll.len &&
                    memcmp(n->reports[j].coll, r->replicas[i].coll.p, r->replicas[i].coll.len) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* One replica a node no longer holds: (collection, partition), whether it was the primary and
 * the partition's term then. */
struct lost_replica {
    char coll[CMAP_NAME_MAX + 1];
    uint32_t part;
    bool primary;
    uint64_t term;
};

/*
 * A node reports no longer holding an in-sync replica that the map still places on it and that
 * its previous report (kept in the map) named: the replica's data is gone (the node came back
 * with an empty data directory under the same id, or the replica failed to open). Reconciling
 * would create it again, empty, and count it in sync; so first it leaves the in-sync set:
 * a secondary is set DEAD (recovery copies it back from the primary), a primary fails over to
 * the most advanced other in-sync replica. A partition that had no other in-sync copy has
 * lost its data; that is logged as an error. On the leader (node reports are forwarded).
 */
static void drop_lost_replicas(struct coord *c, const char *id, const struct msg_node_report_req *r)
{
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    const struct cmap_node *n = cmap_node_find(m, id);
    struct lost_replica *lost = NULL;
    uint32_t n_lost = 0;
    /* An older report overtaken by a newer one (a follower forwarded it late, across an
     * election) lacks the replicas created in between: it names some replica at a lower LSN
     * than the map recorded from the newer one. Such a report says nothing about losses. */
    bool older = false;
    for (uint32_t i = 0; n && i < n->n_reports && !older; i++)
        for (uint32_t j = 0; j < r->n && !older; j++)
            older =
                r->replicas[j].part == n->reports[i].part &&
                strlen(n->reports[i].coll) == r->replicas[j].coll.len &&
                memcmp(n->reports[i].coll, r->replicas[j].coll.p, r->replicas[j].coll.len) == 0 &&
                r->replicas[j].applied_lsn < n->reports[i].lsn;
    if (older)
        n = NULL;
    for (uint32_t i = 0; n && i < n->n_reports; i++) {
        const struct cmap_report *was = &n->reports[i];
        bool still = false;
        for (uint32_t j = 0; j < r->n && !still; j++)
            still = r->replicas[j].part == was->part &&
                    strlen(was->coll) == r->replicas[j].coll.len &&
                    memcmp(was->coll, r->replicas[j].coll.p, r->replicas[j].coll.len) == 0;
        const struct cmap_coll *cl = still ? NULL : cmap_coll_find(m, was->coll);
        if (cl == NULL || was->part >= cl->cfg.n_parts)
            continue;
        const struct cmap_part *pt = &cl->parts[was->part];
        for (uint32_t k = 0; k < pt->n; k++) {
            if (pt->nodes[k] != n->num || pt->state[k] != CMAP_REPLICA_ACTIVE)
                continue;
            struct lost_replica *grown = realloc(lost, (n_lost + 1) * sizeof *lost);
            if (grown == NULL)
                break;
            lost = grown;
            snprintf(lost[n_lost].coll, sizeof lost[n_lost].coll, "%s", cl->name);
            lost[n_lost].part = was->part;
            lost[n_lost].primary = pt->primary == n->num;
            lost[n_lost].term = pt->term;
            n_lost++;
        }
    }
    craft_map_release(c->raft, ref);
    for (uint32_t i = 0; i < n_lost; i++) {
        char err[DV_ERRMSG_SIZE];
        uint64_t epoch;
        const struct lost_replica *x = &lost[i];
        int rc = x->primary
                     ? insync_failover(c, x->coll, x->part, x->term, false, err)
                     : insync_set_state(c, x->coll, x->part, id, CMAP_REPLICA_DEAD, 0, &epoch, err);
        if (rc == DV_OK)
            log_warn("a node lost an in-sync replica: out of the in-sync set until copied back",
                     "node=%s collection=%s partition=%u was_primary=%s", id, x->coll, x->part,
                     x->primary ? "yes" : "no");
        else
            log_error("a node lost an in-sync replica and it cannot leave the in-sync set",
                      "node=%s collection=%s partition=%u was_primary=%s error=%s", id, x->coll,
                      x->part, x->primary ? "yes" : "no", err);
    }
    free(lost);
}

static int node_report(struct coord *c, const struct msg *req, struct msg *rep, char *errmsg)
{
    const struct msg_node_report_req *r = &req->u.node_report_req;
    char id[CMAP_ID_MAX + 1], url[CMAP_URL_MAX + 1], http[CMAP_URL_MAX + 1],
        search[CMAP_URL_MAX + 1];
    if (r->node_id.len == 0 || r->node_id.len > CMAP_ID_MAX || r->url.len > CMAP_URL_MAX ||
        r->http_url.len > CMAP_URL_MAX || r->search_url.len > CMAP_URL_MAX) {
        dv_errmsg_set(errmsg, "node report: id must be 1 to %d bytes, URLs at most %d", CMAP_ID_MAX,
                      CMAP_URL_MAX);
        return DV_EINVAL;
    }
    snprintf(id, sizeof id, "%.*s", (int)r->node_id.len, r->node_id.p);
    snprintf(url, sizeof url, "%.*s", (int)r->url.len, r->url.p);
    snprintf(http, sizeof http, "%.*s", (int)r->http_url.len, r->http_url.p);
    snprintf(search, sizeof search, "%.*s", (int)r->search_url.len,
             r->search_url.p ? r->search_url.p : "");
    coord_seen(c, id);

    struct cmap_ref *ref = craft_map(c->raft);
    /* A replica of another incarnation than its collection's is left from a dropped
     * collection of the same name (the node missed the drop): the leader's loop sends the node
     * creates with the right incarnation, which replace it. */
    for (uint32_t i = 0; i < r->n; i++) {
        const struct msg_replica_report *x = &r->replicas[i];
        char coll[CMAP_NAME_MAX + 1];
        if (x->incarnation == 0 || x->coll.len > CMAP_NAME_MAX)
            continue;
        snprintf(coll, sizeof coll, "%.*s", (int)x->coll.len, x->coll.p);
        const struct cmap_coll *cl = cmap_coll_find(&ref->map, coll);
        if (cl != NULL && cl->epoch != x->incarnation) {
            log_info("node holds a replica of a dropped collection",
                     "node=%s collection=%s partition=%u incarnation=%" PRIu64
                     " collection_incarnation=%" PRIu64,
                     id, coll, x->part, x->incarnation, cl->epoch);
            coord_mark_stale(c, id);
            break;
        }
    }
    const struct cmap_node *n = cmap_node_find(&ref->map, id);
    /* rejoin_if_removed: registered again; what it still holds and the map does not place on
     * it (a drained node stopped within moves.grace) is dropped by reconciling, what the map
     * lost with it (a forced removal) is adopted back. */
    bool rejoin = n && n->state == CMAP_NODE_REMOVED && (r->flags & MSG_REPORT_REJOIN);
    if (rejoin)
        log_info("a removed node registers again (rejoin_if_removed)", "node=%s url=%s replicas=%u",
                 id, url, r->n);
    if (n && n->state == CMAP_NODE_REMOVED && !rejoin) {
        /* Removed by an admin: it takes part again only when an admin adds it back. */
        craft_map_release(c->raft, ref);
        dv_errmsg_set(errmsg,
                      "node %s was removed from the cluster: stop it, or add it back with "
                      "'dvecctl node add %s --url %s'",
                      id, id, url);
        return DV_EINVAL;
    }
    bool reg = n == NULL || rejoin || n->state == CMAP_NODE_DEAD || n->state == CMAP_NODE_SUSPECT ||
               n->state == CMAP_NODE_JOINING || strcmp(n->url, url) != 0 ||
               strcmp(n->http_url, http) != 0 || strcmp(n->search_url, search) != 0;
    bool changed = n != NULL && !same_reports(n, r);
    bool update = !reg && (changed || wall_ms() - n->heartbeat_ms > 10000);
    craft_map_release(c->raft, ref);
    if (changed)
        drop_lost_replicas(c, id, r);

    int rc = DV_OK;
    if (reg || update) {
        struct cmap_report *reports = calloc(r->n ? r->n : 1, sizeof *reports);
        char(*names)[CMAP_NAME_MAX + 1] = calloc(r->n ? r->n : 1, sizeof *names);
        if (reports == NULL || names == NULL) {
            free(reports);
            free(names);
            return DV_ENOMEM;
        }
        for (uint32_t i = 0; i < r->n; i++) {
            snprintf(names[i], sizeof names[i], "%.*s", (int)r->replicas[i].coll.len,
                     r->replicas[i].coll.p);
            reports[i] =
                (struct cmap_report){names[i], r->replicas[i].part, r->replicas[i].applied_lsn};
        }
        struct cmap_cmd cmd = {.req = coord_reqid(c)};
        if (reg) {
            cmd.type = CMAP_CMD_NODE_REGISTER;
            snprintf(cmd.u.reg.id, sizeof cmd.u.reg.id, "%s", id);
            snprintf(cmd.u.reg.url, sizeof cmd.u.reg.url, "%s", url);
            snprintf(cmd.u.reg.http_url, sizeof cmd.u.reg.http_url, "%s", http);
            snprintf(cmd.u.reg.search_url, sizeof cmd.u.reg.search_url, "%s", search);
            cmd.u.reg.weight = r->weight > 0 ? r->weight : 1.0;
            cmd.u.reg.state = CMAP_NODE_ALIVE;
            cmd.u.reg.heartbeat_ms = wall_ms();
            cmd.u.reg.reports = reports;
            cmd.u.reg.n_reports = r->n;
        } else {
            cmd.type = CMAP_CMD_NODE_STATE;
            snprintf(cmd.u.node_state.id, sizeof cmd.u.node_state.id, "%s", id);
            cmd.u.node_state.state = CMAP_NODE_KEEP;
            cmd.u.node_state.heartbeat_ms = wall_ms();
            cmd.u.node_state.has_reports = true;
            cmd.u.node_state.reports = reports;
            cmd.u.node_state.n_reports = r->n;
        }
        struct cmap_result res;
        rc = coord_apply(c, &cmd, &res, errmsg);
        free(reports);
        free(names);
        if (rc == DV_OK && res.code != DV_OK) {
            dv_errmsg_set(errmsg, "%s", res.msg);
            rc = res.code;
        }
        if (rc == DV_OK && reg)
            log_info("node registered", "node=%s url=%s replicas=%u", id, url, r->n);
    }
    if (rc != DV_OK)
        return rc;
    struct craft_status st;
    craft_status(c->raft, &st);
    ref = craft_map(c->raft);
    rep->u.node_report_rep.map_epoch = ref->map.epoch;
    craft_map_release(c->raft, ref);
    return DV_OK;
}

/* Adds a coordinator to the raft group (it was started with `join` and an empty data dir) and
 * records it in the map, where the others find its client URL; or removes one. */
static int coord_change(struct coord *c, const struct msg *req, char *errmsg)
{
    const struct msg_coord_req *q = &req->u.coord_req;
    char raft_addr[CMAP_URL_MAX + 1] = "", url[CMAP_URL_MAX + 1] = "";
    if (q->raft_addr.len > CMAP_URL_MAX || q->client_url.len > CMAP_URL_MAX) {
        dv_errmsg_set(errmsg, "%s: raft address and client URL 1 to %d bytes",
                      msg_type_name(req->type), CMAP_URL_MAX);
        return DV_EINVAL;
    }
    snprintf(raft_addr, sizeof raft_addr, "%.*s", (int)q->raft_addr.len, q->raft_addr.p);
    snprintf(url, sizeof url, "%.*s", (int)q->client_url.len, q->client_url.p);
    return coord_group_change(c, req->type == MSG_COORD_ADD, q->id, raft_addr, url, errmsg);
}

/* ---- map reads --------------------------------------------------------------------------- */

/* Memory a map-read reply points into until the reply is freed (msg_reply_free). */
struct info_tmp {
    struct msg_str *names;
    struct msg_coll_part *parts;
    char (*text)[CMAP_NAME_MAX + 1];
    uint8_t *states;
};

static int coll_info(struct coord *c, const struct msg *req, struct msg *rep, struct info_tmp *t,
                     char *errmsg)
{
    char name[CMAP_NAME_MAX + 1];
    int rc = name_of(req, name, errmsg);
    if (rc != DV_OK)
        return rc;
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap_coll *cl = cmap_coll_resolve(&ref->map, name);
    if (cl == NULL) {
        craft_map_release(c->raft, ref);
        dv_errmsg_set(errmsg, "collection %s does not exist", name);
        return DV_ENOTFOUND;
    }
    struct msg_coll_info_rep *o = &rep->u.coll_info_rep;
    coord_coll_cfg_to_msg(&cl->cfg, &o->cfg);
    uint32_t np = cl->cfg.n_parts, total_nodes = 0;
    for (uint32_t p = 0; p < np; p++)
        total_nodes += cl->parts[p].n;
    t->parts = calloc(np, sizeof *t->parts);
    t->names = calloc(total_nodes ? total_nodes : 1, sizeof *t->names);
    t->text = calloc(total_nodes ? total_nodes : 1, sizeof *t->text);
    t->states = calloc(total_nodes ? total_nodes : 1, 1);
    if (t->parts == NULL || t->names == NULL || t->text == NULL || t->states == NULL) {
        craft_map_release(c->raft, ref);
        return DV_ENOMEM;
    }
    /* Points per partition from its primary; a node that does not answer counts 0 (the
     * partition is listed all the same). */
    uint32_t k = 0;
    for (uint32_t p = 0; p < np; p++) {
        const struct cmap_part *pt = &cl->parts[p];
        struct msg_coll_part *mp = &t->parts[p];
        mp->part = p;
        mp->epoch = pt->epoch;
        mp->nodes = &t->names[k];
        mp->n_nodes = pt->n;
        mp->term = pt->term;
        mp->states = &t->states[k];
        /* The primary first (when there is one), then the others in map order. */
        uint32_t first = 0;
        for (uint32_t j = 0; j < pt->n; j++)
            if (pt->nodes[j] == pt->primary)
                first = j;
        for (uint32_t j = 0; j < pt->n; j++, k++) {
            uint32_t at = j == 0 ? first : j == first ? 0 : j;
            const struct cmap_node *n = cmap_node_get(&ref->map, pt->nodes[at]);
            snprintf(t->text[k], sizeof t->text[k], "%s", n ? n->id : "?");
            t->names[k] = S(t->text[k]);
            t->states[k] = pt->state[at];
        }
        const struct cmap_node *prim = cmap_node_get(&ref->map, pt->primary);
        struct tr_peer *r = prim ? coord_conn(c, prim->url, NULL, errmsg) : NULL;
        if (r) {
            struct msg q = {.type = MSG_REPLICA_INFO};
            q.addr = (struct msg_addr){S(cl->name), p, pt->epoch, 0};
            struct msg_reply rr;
            char err2[DV_ERRMSG_SIZE];
            if (tr_call(r, &q, &rr, 0, err2) == DV_OK)
                mp->points = rr.m.u.info_rep.points;
            msg_reply_free(&rr);
        }
        o->points += mp->points;
    }
    o->parts = t->parts;
    o->n_parts = np;
    craft_map_release(c->raft, ref);
    return DV_OK;
}

static int coll_list(struct coord *c, struct msg *rep, struct info_tmp *t)
{
    struct cmap_ref *ref = craft_map(c->raft);
    uint32_t n = ref->map.n_colls;
    t->names = calloc(n ? n : 1, sizeof *t->names);
    t->text = calloc(n ? n : 1, sizeof *t->text);
    if (t->names == NULL || t->text == NULL) {
        craft_map_release(c->raft, ref);
        return DV_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        snprintf(t->text[i], sizeof t->text[i], "%s", ref->map.colls[i]->name);
        t->names[i] = S(t->text[i]);
    }
    rep->u.coll_list_rep.names = t->names;
    rep->u.coll_list_rep.n = n;
    craft_map_release(c->raft, ref);
    return DV_OK;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

/* Waits (at most request_timeout) until the local map has (or no longer has) collection
 * `name`. */
static void wait_local(struct coord *c, const char *name, bool present)
{
    uint64_t deadline = clock_mono_ms() + c->o.request_timeout_ms;
    while (clock_mono_ms() < deadline) {
        struct cmap_ref *ref = craft_map(c->raft);
        bool has = cmap_coll_find(&ref->map, name) != NULL;
        craft_map_release(c->raft, ref);
        if (has == present)
            return;
        clock_sleep_ms(5);
    }
}

/* Waits (at most request_timeout) until the local map reaches the "map_epoch" of an admin
 * reply's status, when it names one. */
static void wait_epoch(struct coord *c, const struct msg_bytes *status)
{
    const uint8_t *v;
    size_t len;
    uint64_t epoch;
    struct mpk r;
    if (status->p == NULL || mpk_map_find(status->p, status->len, "map_epoch", 9, &v, &len))
        return;
    mpk_init(&r, v, len);
    if (mpk_u64(&r, &epoch) != DV_OK)
        return;
    uint64_t deadline = clock_mono_ms() + c->o.request_timeout_ms;
    while (clock_mono_ms() < deadline) {
        struct cmap_ref *ref = craft_map(c->raft);
        bool there = ref->map.epoch >= epoch;
        craft_map_release(c->raft, ref);
        if (there)
            return;
        clock_sleep_ms(5);
    }
}

static bool leader_only(int type)
{
    return type == MSG_COLL_CREATE || type == MSG_COLL_DROP || type == MSG_NODE_REPORT ||
           type == MSG_COORD_ADD || type == MSG_COORD_REMOVE || type == MSG_ADMIN;
}

/* ---- the entry point --------------------------------------------------------------------- */

/* The memory a reply built here points into (msg_reply.free_ frees it). */
struct rep_mem {
    struct info_tmp t;
    struct coord_tmp *rt;
    void *route; /* coord_route's */
    struct buf status;
    char leader_url[CMAP_URL_MAX + 1];
    char errmsg[DV_ERRMSG_SIZE];
};

static void rep_mem_free(void *p)
{
    struct rep_mem *k = p;
    router_tmp_free(k->rt);
    coord_route_free(k->route);
    free(k->t.names);
    free(k->t.parts);
    free(k->t.text);
    free(k->t.states);
    buf_free(&k->status);
    free(k);
}

/* Gives `rep` (empty) memory of its own; NULL when out of memory. */
static struct rep_mem *rep_mem(struct msg_reply *rep)
{
    struct rep_mem *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    buf_init(&k->status);
    rep->mem_ = k;
    rep->free_ = rep_mem_free;
    return k;
}

/* Replaces whatever `rep` holds with the error reply rc / res->errmsg to the request. */
static int fail(struct msg_reply *rep, struct rpcsrv_result *res, int rc)
{
    msg_reply_free(rep);
    struct rep_mem *k = rep_mem(rep);
    if (k == NULL)
        return DV_ENOMEM;
    snprintf(k->errmsg, sizeof k->errmsg, "%s", res->errmsg);
    msg_error_fill(&rep->m, res->type, res->req_id, rc, k->errmsg, 0);
    res->code = rc;
    return DV_OK;
}

int coord_call(void *arg, const struct msg *req, struct msg_reply *rep, struct rpcsrv_result *res)
{
    struct coord *c = arg;
    int rc;
    memset(rep, 0, sizeof *rep);
    res->type = req->type;
    res->req_id = req->req_id;
    if (atomic_load(&c->draining)) {
        dv_errmsg_set(res->errmsg, "coordinator is shutting down; use another");
        return fail(rep, res, DV_ESHUTDOWN);
    }
    if (leader_only(req->type)) {
        struct craft_status st;
        craft_status(c->raft, &st);
        if (!st.leader_ready) {
            char name[CMAP_NAME_MAX + 1] = "";
            bool create = req->type == MSG_COLL_CREATE, drop = req->type == MSG_COLL_DROP;
            if (create || drop)
                name_of(req, name, res->errmsg);
            rc = forward(c, req, rep, res->errmsg);
            if (rc != DV_OK)
                return fail(rep, res, rc);
            /* Read your writes: a client that created a collection through this coordinator
             * uses it next through this coordinator, so wait until the local copy of the map
             * has it (raft tells followers of a commit with the next heartbeat). */
            if (name[0] && rep->m.err.code == DV_OK)
                wait_local(c, name, create);
            /* The same for admin ops that say which map epoch they made (aliases, index
             * definitions). */
            if (req->type == MSG_ADMIN && rep->m.err.code == DV_OK)
                wait_epoch(c, &rep->m.u.cluster_rep.status);
            return DV_OK;
        }
    }
    struct rep_mem *k = rep_mem(rep);
    if (k == NULL)
        return DV_ENOMEM;
    struct msg *m = &rep->m;
    m->type = req->type;
    m->reply = true;
    m->req_id = req->req_id;
    switch (req->type) {
    case MSG_COLL_CREATE:
        rc = coll_create(c, req, res->errmsg);
        break;
    case MSG_COLL_DROP:
        rc = coll_drop(c, req, res->errmsg);
        break;
    case MSG_NODE_REPORT:
        rc = node_report(c, req, m, res->errmsg);
        if (rc == DV_OK) {
            struct craft_status st;
            craft_status(c->raft, &st);
            snprintf(k->leader_url, sizeof k->leader_url, "%s", st.leader_url);
            m->u.node_report_rep.leader_url = S(k->leader_url);
        }
        break;
    case MSG_COLL_LIST:
        rc = coll_list(c, m, &k->t);
        break;
    case MSG_COLL_INFO:
        rc = coll_info(c, req, m, &k->t, res->errmsg);
        break;
    case MSG_ROUTE: {
        char name[CMAP_NAME_MAX + 1];
        if ((rc = name_of(req, name, res->errmsg)) == DV_OK)
            rc = coord_route(c, name, m, &k->route, res->errmsg);
        break;
    }
    case MSG_CLUSTER:
        rc = coord_cluster_status(c, &k->status);
        m->u.cluster_rep.status = (struct msg_bytes){k->status.data, (uint32_t)k->status.len};
        break;
    case MSG_P_UPSERT:
    case MSG_P_DELETE:
    case MSG_P_GET:
    case MSG_P_SET_PAYLOAD:
    case MSG_P_COUNT:
    case MSG_P_SCROLL:
    case MSG_P_FACET:
    case MSG_P_SCROLL_ORDER:
    case MSG_P_SEARCH:
    case MSG_P_INDEX:
    case MSG_P_UPDATE_VECTORS:
    case MSG_P_DELETE_VECTORS:
        rc = router_run(c, req, m, &k->rt, !res->requeued, res->errmsg);
        break;
    case MSG_COORD_ADD:
    case MSG_COORD_REMOVE:
        rc = coord_change(c, req, res->errmsg);
        break;
    case MSG_ADMIN:
        rc = admin_run(c, req, &k->status, res->errmsg);
        m->u.cluster_rep.status = (struct msg_bytes){k->status.data, (uint32_t)k->status.len};
        break;
    default:
        dv_errmsg_set(res->errmsg, "%s is not a request a coordinator answers",
                      msg_type_name(req->type));
        rc = DV_EINVAL;
    }
    if (rc != DV_OK)
        return fail(rep, res, rc);
    res->code = DV_OK;
    return DV_OK;
}

int coord_handle(void *arg, const void *in, size_t n, struct buf *out, struct rpcsrv_result *res)
{
    struct msg req;
    int rc = rpcsrv_request(in, n, 0, "coordinator", &req, res);
    if (rc != DV_OK)
        return rpcsrv_error_reply(out, res, rc, 0);
    struct msg_reply rep;
    rc = coord_call(arg, &req, &rep, res);
    if (rc == DV_OK)
        rc = msg_encode(&rep.m, out, res->errmsg);
    msg_reply_free(&rep);
    msg_free(&req);
    if (rc != DV_OK)
        return rpcsrv_error_reply(out, res, rc, 0);
    return DV_OK;
}
