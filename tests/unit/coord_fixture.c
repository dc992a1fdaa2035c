/* coord_fixture.c - a coordinator and N dvec-shard nodes in one process on the fake transport. */
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "coord_fixture.h"
#include "err.h"
#include "net_util.h"
#include "report.h"

#define COORD_URL "fake://coord-1"

uint64_t cf_seed(void)
{
    static uint64_t seed;
    static bool printed;
    if (!printed) {
        const char *s = getenv("DVEC_TEST_SEED");
        seed = s && *s ? strtoull(s, NULL, 0) : 1414;
        printed = true;
        fprintf(stderr, "# seed %" PRIu64 " (DVEC_TEST_SEED=%" PRIu64 " repeats this run)\n", seed,
                seed);
    }
    return seed;
}

uint64_t cf_rand(struct coord_fixture *f)
{
    /* splitmix64: good enough and the same everywhere */
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The node's server on the fake network: its own faults first, then dvec-shard's handler. */
static int node_serve(void *arg, const void *in, size_t n, struct buf *out,
                      struct rpcsrv_result *res)
{
    struct cf_node *nd = arg;
    int type;
    uint64_t req_id;
    msg_peek_header(in, n, &type, &req_id);
    if (type >= 0 && type < MSG_TYPE_COUNT)
        atomic_fetch_add(&nd->reqs[type], 1);
    if (type == MSG_SEARCH) {
        struct msg m;
        char err[DV_ERRMSG_SIZE];
        if (msg_decode(in, n, &m, err) == DV_OK && m.u.search_req.n_queries > 0)
            atomic_store(&nd->search_ef, m.u.search_req.queries[0].ef);
        msg_free(&m);
        unsigned s = atomic_load(&nd->stale_searches);
        while (s > 0 && !atomic_compare_exchange_weak(&nd->stale_searches, &s, s - 1))
            ;
        if (s > 0) {
            /* As a node that saw a newer map would answer (epoch ahead of the request's). */
            struct cmap_ref *ref = craft_map(nd->f->c.raft);
            uint64_t epoch = ref->map.epoch + 1;
            craft_map_release(nd->f->c.raft, ref);
            return msg_encode_error(out, type, req_id, DV_ESTALE, "stale map (fixture)", epoch);
        }
    }
    return handle_request(&nd->hc, in, n, out, res);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static bool all_alive(struct coord_fixture *f, void *arg)
{
    (void)arg;
    struct cmap_ref *ref = craft_map(f->c.raft);
    bool ok = true;
    for (unsigned i = 0; i < f->n_nodes && ok; i++) {
        const struct cmap_node *n = cmap_node_find(&ref->map, f->nodes[i].id);
        ok = n && n->state == CMAP_NODE_ALIVE;
    }
    craft_map_release(f->c.raft, ref);
    return ok;
}

static bool leading(struct coord_fixture *f, void *arg)
{
    (void)arg;
    struct craft_status st;
    craft_status(f->c.raft, &st);
    return st.leader_ready;
}

bool cf_wait(struct coord_fixture *f, bool (*pred)(struct coord_fixture *f, void *arg), void *arg,
             uint32_t timeout_ms)
{
    uint64_t end = clock_mono_ms() + timeout_ms;
    for (;;) {
        if (pred(f, arg))
            return true;
        if (clock_mono_ms() >= end)
            return false;
        clock_sleep_ms(5);
    }
}

static int node_up(struct coord_fixture *f, unsigned i, char *errmsg);

static int node_start(struct coord_fixture *f, unsigned i, const struct cf_opts *o, char *errmsg)
{
    struct cf_node *nd = &f->nodes[i];
    nd->f = f;
    nd->pull_call_ms = o->pull_call_ms;
    snprintf(nd->id, sizeof nd->id, "node-%u", i + 1);
    snprintf(nd->url, sizeof nd->url, "fake://node-%u", i + 1);
    snprintf(nd->dir, sizeof nd->dir, "%s/node-%u", f->dir, i + 1);
    if (mkdir(nd->dir, 0755) != 0) {
        dv_errmsg_set(errmsg, "mkdir %s failed", nd->dir);
        return DV_EOS;
    }
    if ((nd->tr = tr_fake_new(f->net, nd->id)) == NULL)
        return DV_ENOMEM;
    return node_up(f, i, errmsg);
}

int cf_node_reset(struct coord_fixture *f, unsigned i, char *errmsg)
{
    struct cf_node *nd = &f->nodes[i];
    report_stop(nd->reporter);
    nd->reporter = NULL;
    tr_fake_unserve(f->net, nd->url);
    node_close(nd->node, false);
    nd->node = NULL;
    nftw(nd->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(nd->dir, 0755) != 0) {
        dv_errmsg_set(errmsg, "mkdir %s failed", nd->dir);
        return DV_EOS;
    }
    return node_up(f, i, errmsg);
}

/* Opens node i's dir, serves it and starts its reports. */
static int node_up(struct coord_fixture *f, unsigned i, char *errmsg)
{
    struct cf_node *nd = &f->nodes[i];
    struct node_opts no = {0};
    part_opts_default(&no.part);
    no.snapshot_idle_ms = 60000;
    no.force_fsync = -1;
    no.tr = nd->tr;
    no.pull_call_ms = nd->pull_call_ms;
    no.pull_snap_start_ms = 10 * nd->pull_call_ms;
    int rc = node_open(nd->dir, &no, &nd->node, errmsg);
    if (rc != DV_OK)
        return rc;
    nd->hc = (struct handle_ctx){
        .node = nd->node,
        .node_id = nd->id,
        .version = "fixture",
        .max_msg = PROTO_MAX_MSG,
        .started_ms = clock_mono_ms(),
    };
    atomic_init(&nd->hc.draining, false);
    if ((rc = tr_fake_serve(f->net, nd->id, nd->url, node_serve, nd)) != DV_OK)
        return rc;
    nd->coord_urls[0] = COORD_URL;
    nd->coords = (struct cfg_strlist){nd->coord_urls, 1};
    struct report_opts ro = {
        .node_id = nd->id,
        .url = nd->url,
        .http_url = "",
        .weight = 1.0,
        .coordinators = &nd->coords,
        .interval_ms = 50,
        .timeout_ms = 1000,
        .tr = nd->tr,
    };
    return report_start(&ro, nd->node, &nd->reporter);
}

int cf_open(uint64_t seed, const struct cf_opts *o, struct coord_fixture **out, char *errmsg)
{
    struct cf_opts d = {.n_nodes = 3};
    if (o == NULL)
        o = &d;
    signal(SIGPIPE, SIG_IGN); /* raft 0.15 writes to dead peers (LIBRARY-NOTES bug 1) */
    struct coord_fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return DV_ENOMEM;
    f->seed = f->rng = seed;
    f->n_nodes = o->n_nodes > CF_MAX_NODES ? CF_MAX_NODES : o->n_nodes;
    snprintf(f->dir, sizeof f->dir, "/tmp/dvec-cf-XXXXXX");
    int rc = DV_EOS;
    if (mkdtemp(f->dir) == NULL) {
        dv_errmsg_set(errmsg, "mkdtemp failed");
        free(f);
        return DV_EOS;
    }
    if ((rc = tr_fake_net_new(seed, &f->net)) != DV_OK)
        goto err;
    rc = DV_ENOMEM;
    struct tr *ctr = tr_fake_new(f->net, "coord-1");
    if (ctr == NULL || (f->client = tr_fake_new(f->net, "client")) == NULL) {
        tr_free(ctr);
        goto err;
    }

    /* The coordinator: a single raft voter on a free local port, serving fake://coord-1. */
    struct cf_opts x = *o;
    struct coord_opts co = {
        .id = 1,
        .request_timeout_ms = x.request_timeout_ms ? x.request_timeout_ms : 1000,
        /* liveness stays out of the tests' way unless a test asks for it */
        .suspect_ms = x.suspect_ms ? x.suspect_ms : 60000,
        .dead_ms = x.dead_ms ? x.dead_ms : 120000,
        .dead_timeout_ms = x.dead_timeout_ms,
        .report_every_ms = 50,
        .max_batch = 10000,
        .node_inflight = x.node_inflight ? x.node_inflight : 2,
        .connect_wait_ms = 200,
        .move_grace_ms = x.move_grace_ms ? x.move_grace_ms : 60000,
        .write_retry_ms = x.write_retry_ms ? x.write_retry_ms : 3000,
        .move_tick_ms = 20,
    };
    char raft_dir[300];
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", f->dir);
    struct craft_opts ro = {.id = 1,
                            .dir = raft_dir,
                            .n_peers = 1,
                            .election_ms = 150,
                            .heartbeat_ms = 15,
                            .snapshot_threshold = 1024,
                            .snapshot_trailing = 2048};
    ro.peers[0].id = 1;
    snprintf(ro.peers[0].raft_addr, sizeof ro.peers[0].raft_addr, "127.0.0.1:%u",
             (unsigned)net_free_port());
    snprintf(ro.peers[0].client_url, sizeof ro.peers[0].client_url, "%s", COORD_URL);
    static atomic_uint serial;
    char listen[96];
    snprintf(listen, sizeof listen, "inproc://coord-fixture-%d-%u", (int)getpid(),
             atomic_fetch_add(&serial, 1));
    struct rpcsrv_opts so = {
        .listen = listen,
        .workers = 4,
        .contexts = 1,
        .recv_max = PROTO_MAX_MSG,
        .handle = coord_handle,
        .handle_arg = &f->c,
    };
    if ((rc = coord_open(&f->c, &co, &ro, ctr, &so, false, errmsg)) != DV_OK) {
        tr_free(ctr);
        goto err;
    }
    if ((rc = coord_leader_start(&f->c)) != DV_OK ||
        (rc = tr_fake_serve(f->net, "coord-1", COORD_URL, coord_handle, &f->c)) != DV_OK)
        goto err_coord;
    struct tr_opts to;
    tr_opts_default(&to);
    to.timeout_ms = 10000;
    if ((rc = tr_open(f->client, COORD_URL, &to, &f->to_coord, errmsg)) != DV_OK)
        goto err_coord;
    if (!cf_wait(f, leading, NULL, 5000)) {
        dv_errmsg_set(errmsg, "the coordinator did not become leader in 5 s");
        rc = DV_ETIMEDOUT;
        goto err_coord;
    }
    for (unsigned i = 0; i < f->n_nodes; i++)
        if ((rc = node_start(f, i, o, errmsg)) != DV_OK)
            goto err_coord;
    if (!cf_wait(f, all_alive, NULL, 5000)) {
        dv_errmsg_set(errmsg, "the nodes did not register in 5 s");
        rc = DV_ETIMEDOUT;
        goto err_coord;
    }
    *out = f;
    return DV_OK;

err_coord:
    cf_close(f);
    return rc;
err:
    tr_free(f->client);
    tr_fake_net_free(f->net);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

void cf_close(struct coord_fixture *f)
{
    if (f == NULL)
        return;
    for (unsigned i = 0; i < f->n_nodes; i++)
        report_stop(f->nodes[i].reporter);
    atomic_store(&f->c.draining, true);
    coord_leader_stop(&f->c);
    tr_fake_unserve(f->net, COORD_URL);
    coord_close(&f->c);
    for (unsigned i = 0; i < f->n_nodes; i++)
        tr_fake_unserve(f->net, f->nodes[i].url);
    tr_peer_close(f->to_coord);
    tr_free(f->client);
    for (unsigned i = 0; i < f->n_nodes; i++) {
        if (f->nodes[i].node)
            node_close(f->nodes[i].node, false);
        tr_free(f->nodes[i].tr);
    }
    tr_free(f->c.tr);
    tr_fake_net_free(f->net);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
}

int cf_call(struct coord_fixture *f, const struct msg *req, struct msg_reply *rep, char *errmsg)
{
    return tr_call(f->to_coord, req, rep, 0, errmsg);
}

/* Every replica of the map is in its node's last report: the leader's reconcile has nothing
 * left to send. */
static bool reported(struct coord_fixture *f, void *arg)
{
    (void)arg;
    struct cmap_ref *ref = craft_map(f->c.raft);
    const struct cmap *m = &ref->map;
    bool ok = true;
    for (uint32_t c = 0; c < m->n_colls && ok; c++)
        for (uint32_t p = 0; p < m->colls[c]->cfg.n_parts && ok; p++)
            for (uint32_t k = 0; k < m->colls[c]->parts[p].n && ok; k++) {
                const struct cmap_node *n = cmap_node_get(m, m->colls[c]->parts[p].nodes[k]);
                bool found = false;
                for (uint32_t i = 0; n && i < n->n_reports && !found; i++)
                    found = n->reports[i].part == p &&
                            strcmp(n->reports[i].coll, m->colls[c]->name) == 0;
                ok = found;
            }
    craft_map_release(f->c.raft, ref);
    return ok;
}

int cf_create(struct coord_fixture *f, const char *coll, uint32_t dim, uint32_t n_parts,
              uint32_t rf, char *errmsg)
{
    struct msg req = {.type = MSG_COLL_CREATE};
    req.addr.coll = (struct msg_str){coll, (uint32_t)strlen(coll)};
    req.u.coll_cfg = (struct msg_coll_cfg){
        .dim = dim, .metric = CMAP_METRIC_L2, .partitions = n_parts, .replication = rf};
    struct msg_reply rep;
    int rc = cf_call(f, &req, &rep, errmsg);
    msg_reply_free(&rep);
    if (rc == DV_OK && !cf_wait(f, reported, NULL, 5000)) {
        dv_errmsg_set(errmsg, "the nodes did not report their replicas in 5 s");
        rc = DV_ETIMEDOUT;
    }
    return rc;
}

int cf_part_node(struct coord_fixture *f, const char *coll, uint32_t part)
{
    struct cmap_ref *ref = craft_map(f->c.raft);
    const struct cmap_part *pt = cmap_part_find(&ref->map, coll, part);
    const struct cmap_node *n = pt && pt->n ? cmap_node_get(&ref->map, pt->primary) : NULL;
    int r = -1;
    for (unsigned i = 0; n && i < f->n_nodes; i++)
        if (strcmp(f->nodes[i].id, n->id) == 0)
            r = (int)i;
    craft_map_release(f->c.raft, ref);
    return r;
}

/* The node's replica of (coll, part), whatever its epoch (node_release it). */
static int replica(struct cf_node *n, const char *coll, uint32_t part, struct node_replica **r)
{
    char err[DV_ERRMSG_SIZE];
    uint64_t known = 0;
    int rc = node_acquire(n->node, coll, strlen(coll), part, 0, r, &known, err);
    if (rc == DV_ESTALE && known > 0)
        rc = node_acquire(n->node, coll, strlen(coll), part, known, r, &known, err);
    return rc;
}

int cf_replica_count(struct cf_node *n, const char *coll, uint32_t part, uint64_t *count)
{
    char err[DV_ERRMSG_SIZE];
    struct node_replica *r;
    int rc = replica(n, coll, part, &r);
    if (rc != DV_OK)
        return rc;
    rc = part_count(r->part, NULL, count, err);
    node_release(n->node, r);
    return rc;
}

int cf_replica_has(struct cf_node *n, const char *coll, uint32_t part, const struct pid *id,
                   float *vec, uint32_t dim, bool *has)
{
    char err[DV_ERRMSG_SIZE];
    struct node_replica *r;
    int rc = replica(n, coll, part, &r);
    if (rc != DV_OK)
        return rc;
    struct part_result res = {0};
    rc = part_get(r->part, id, 1, vec != NULL, false, &res, err);
    *has = rc == DV_OK && res.n == 1;
    if (*has && vec && res.hits[0].vec)
        memcpy(vec, res.hits[0].vec, dim * sizeof *vec);
    part_result_free(&res);
    node_release(n->node, r);
    return rc;
}

int cf_admin(struct coord_fixture *f, const char *op, const void *args, size_t args_len,
             struct msg_reply *rep, char *errmsg)
{
    struct msg req = {.type = MSG_ADMIN};
    req.u.admin_req.op = (struct msg_str){op, (uint32_t)strlen(op)};
    req.u.admin_req.args = (struct msg_bytes){args, (uint32_t)args_len};
    return cf_call(f, &req, rep, errmsg);
}

int cf_upsert(struct coord_fixture *f, const char *coll, const struct pid *ids, const float *vecs,
              uint32_t n, uint32_t dim, char *errmsg)
{
    struct msg req = {.type = MSG_P_UPSERT};
    req.addr.coll = (struct msg_str){coll, (uint32_t)strlen(coll)};
    req.u.upsert_req =
        (struct msg_upsert_req){(struct pid *)ids, (float *)vecs, NULL, n, dim, NULL};
    struct msg_reply rep;
    int rc = cf_call(f, &req, &rep, errmsg);
    if (rc == DV_OK && rep.m.u.write_rep.affected != n) {
        dv_errmsg_set(errmsg, "upsert of %u points wrote %" PRIu64, n, rep.m.u.write_rep.affected);
        rc = DV_EIO;
    }
    msg_reply_free(&rep);
    return rc;
}
