/* cmd_status.c - dvecctl status: coordinators, nodes, collections and partition balance. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "table.h"

static const struct opt_spec status_opts[] = {
    {"json", OPT_FLAG, NULL, "print the status document of the coordinator answering as JSON"},
    {NULL, 0, NULL, NULL},
};

/* What one coordinator says of itself (asked on its own URL). */
struct coord_view {
    const struct ctl *ctl;
    const char *url;
    uint32_t timeout_ms;
    bool ok;
    char state[32];
    uint64_t term, commit, applied;
    char error[128];
};

static uint64_t jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (uint64_t)json_integer_value(v);
    if (json_is_real(v))
        return (uint64_t)json_real_value(v);
    return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void *ask_coord(void *arg)
{
    struct coord_view *v = arg;
    dvec_client *c;
    dvec_error e = {0};
    char *text = NULL;
    if (ctl_client_for(v->ctl, v->url, v->timeout_ms, &c, &e) != DVEC_OK) {
        snprintf(v->error, sizeof v->error, "%s", dvec_code_name(e.code));
        return NULL;
    }
    if (dvec_cluster_status(c, &text, &e) != DVEC_OK) {
        snprintf(v->error, sizeof v->error, "%s",
                 e.code == DVEC_EIO         ? "unreachable"
                 : e.code == DVEC_ETIMEDOUT ? "timed out"
                                            : dvec_code_name(e.code));
    } else {
        json_t *doc = json_loads(text, 0, NULL);
        json_t *me = json_object_get(doc, "coordinator");
        if (me) {
            v->ok = true;
            snprintf(v->state, sizeof v->state, "%s", jstr(me, "state"));
            v->term = jint(me, "term");
            v->commit = jint(me, "commit_index");
            v->applied = jint(me, "last_applied");
        } else {
            snprintf(v->error, sizeof v->error, "bad status document");
        }
        json_decref(doc);
        free(text);
    }
    dvec_close(c);
    return NULL;
}

static void fmt_age(char *buf, size_t len, uint64_t hb_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    if (hb_ms == 0) {
        snprintf(buf, len, "never");
        return;
    }
    uint64_t age = now > hb_ms ? (now - hb_ms) / 1000 : 0;
    if (age < 120)
        snprintf(buf, len, "%llus ago", (unsigned long long)age);
    else if (age < 7200)
        snprintf(buf, len, "%llum ago", (unsigned long long)age / 60);
    else
        snprintf(buf, len, "%lluh ago", (unsigned long long)age / 3600);
}

static void print_coords(const struct ctl *ctl, const json_t *coords)
{
    size_t n = json_array_size(coords);
    struct coord_view *v = calloc(n ? n : 1, sizeof *v);
    pthread_t *th = calloc(n ? n : 1, sizeof *th);
    bool *started = calloc(n ? n : 1, sizeof *started);
    if (v == NULL || th == NULL || started == NULL) {
        free(v);
        free(th);
        free(started);
        return;
    }
    uint32_t t = ctl->timeout_ms && ctl->timeout_ms < 2000 ? ctl->timeout_ms : 2000;
    for (size_t i = 0; i < n; i++) {
        v[i].ctl = ctl;
        v[i].url = jstr(json_array_get(coords, i), "url");
        v[i].timeout_ms = t;
        started[i] = pthread_create(&th[i], NULL, ask_coord, &v[i]) == 0;
        if (!started[i])
            ask_coord(&v[i]);
    }
    for (size_t i = 0; i < n; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    static const char *const hdr[] = {">ID",    "URL",   "RAFT",    "STATE",
                                      "LEADER", ">TERM", ">COMMIT", ">APPLIED"};
    struct table tb;
    table_init(&tb, 8, hdr);
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(coords, i);
        table_new_row(&tb);
        table_cellf(&tb, "%llu", (unsigned long long)jint(c, "id"));
        table_cellf(&tb, "%s", jstr(c, "url"));
        table_cellf(&tb, "%s", jstr(c, "raft_addr"));
        if (v[i].ok) {
            table_cellf(&tb, "%s", v[i].state);
            table_cellf(&tb, "%s", json_is_true(json_object_get(c, "leader")) ? "yes" : "");
            table_cellf(&tb, "%llu", (unsigned long long)v[i].term);
            table_cellf(&tb, "%llu", (unsigned long long)v[i].commit);
            table_cellf(&tb, "%llu", (unsigned long long)v[i].applied);
        } else {
            table_cellf(&tb, "%s", v[i].error);
            table_cellf(&tb, "%s", json_is_true(json_object_get(c, "leader")) ? "yes" : "");
        }
    }
    printf("COORDINATORS\n");
    table_print(&tb, stdout);
    table_free(&tb);
    free(v);
    free(th);
    free(started);
}

static void print_nodes(const json_t *nodes)
{
    static const char *const hdr[] = {"ID",      "STATE",          ">PARTITIONS", ">REPLICAS",
                                      ">WEIGHT", "LAST HEARTBEAT", "URL"};
    struct table tb;
    table_init(&tb, 7, hdr);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        char age[32], w[32];
        fmt_age(age, sizeof age, jint(n, "heartbeat_ms"));
        json_t *wj = json_object_get(n, "weight");
        fmt_float(w, sizeof w, (float)(json_is_number(wj) ? json_number_value(wj) : 0));
        table_new_row(&tb);
        table_cellf(&tb, "%s", jstr(n, "id"));
        table_cellf(&tb, "%s", jstr(n, "state"));
        table_cellf(&tb, "%llu", (unsigned long long)jint(n, "partitions"));
        table_cellf(&tb, "%llu", (unsigned long long)jint(n, "replicas"));
        table_cellf(&tb, "%s", w);
        table_cellf(&tb, "%s", age);
        table_cellf(&tb, "%s", jstr(n, "url"));
    }
    printf("\nNODES\n");
    if (json_array_size(nodes) == 0)
        printf("(no node has registered)\n");
    else
        table_print(&tb, stdout);
    table_free(&tb);
}

static void print_colls(const json_t *colls)
{
    static const char *const hdr[] = {"NAME", ">DIM", ">PARTITIONS", ">REPLICATION"};
    struct table tb;
    table_init(&tb, 4, hdr);
    size_t i;
    json_t *c;
    json_array_foreach(colls, i, c)
    {
        table_new_row(&tb);
        table_cellf(&tb, "%s", jstr(c, "name"));
        table_cellf(&tb, "%llu", (unsigned long long)jint(c, "dim"));
        table_cellf(&tb, "%llu", (unsigned long long)jint(c, "partitions"));
        table_cellf(&tb, "%llu", (unsigned long long)jint(c, "replication"));
    }
    printf("\nCOLLECTIONS\n");
    if (json_array_size(colls) == 0)
        printf("(none)\n");
    else
        table_print(&tb, stdout);
    table_free(&tb);
}

/* Partition replicas the map places per node: min, max and where. */
static void print_balance(const json_t *nodes, uint64_t moves)
{
    printf("\nBALANCE\n");
    size_t i, n_counted = 0;
    json_t *n;
    uint64_t min = UINT64_MAX, max = 0, total = 0;
    const char *min_id = "", *max_id = "";
    json_array_foreach(nodes, i, n)
    {
        const char *st = jstr(n, "state");
        if (strcmp(st, "dead") == 0 || strcmp(st, "removed") == 0)
            continue;
        uint64_t p = jint(n, "partitions");
        total += p;
        n_counted++;
        if (p < min) {
            min = p;
            min_id = jstr(n, "id");
        }
        if (p > max || n_counted == 1) {
            max = p;
            max_id = jstr(n, "id");
        }
    }
    if (n_counted == 0) {
        printf("no live nodes\n");
    } else {
        printf("replicas per node: min %llu (%s), max %llu (%s), %llu on %zu nodes\n",
               (unsigned long long)min, min_id, (unsigned long long)max, max_id,
               (unsigned long long)total, n_counted);
    }
    printf("partition moves in progress: %llu\n", (unsigned long long)moves);
}

static int status_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    dvec_client *c;
    int rc = ctl_client(ctl, &c);
    if (rc != 0)
        return rc;
    dvec_error e = {0};
    char *text;
    if (dvec_cluster_status(c, &text, &e) != DVEC_OK)
        return ctl_fail(&e);
    json_error_t je;
    json_t *doc = json_loads(text, 0, &je);
    free(text);
    if (doc == NULL || !json_is_object(doc)) {
        ctl_err("cluster status: the coordinator's status is not a JSON object: %s", je.text);
        json_decref(doc);
        return CTL_EXIT_FAIL;
    }
    if (opts_has(o, "json"))
        return json_print(doc, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;

    const json_t *me = json_object_get(doc, "coordinator");
    uint64_t leader = jint(me, "leader_id");
    if (leader)
        printf("leader: coordinator %llu (%s), term %llu, map epoch %llu%s\n\n",
               (unsigned long long)leader, jstr(me, "leader_url"),
               (unsigned long long)jint(me, "term"), (unsigned long long)jint(doc, "map_epoch"),
               strcmp(jstr(me, "state"), "leader") == 0 &&
                       json_is_false(json_object_get(me, "leader_ready"))
                   ? " (not ready yet)"
                   : "");
    else
        printf("leader: none known by coordinator %llu (an election may be running)\n\n",
               (unsigned long long)jint(me, "id"));
    print_coords(ctl, json_object_get(doc, "coordinators"));
    print_nodes(json_object_get(doc, "nodes"));
    print_colls(json_object_get(doc, "collections"));
    print_balance(json_object_get(doc, "nodes"), jint(doc, "moves"));
    json_decref(doc);
    return CTL_EXIT_OK;
}

const struct cmd cmd_status = {
    "status",
    "[--json]",
    "the cluster: coordinators, nodes, collections, partition balance",
    "Coordinators: each is asked on its own URL for its state, raft term, commit and applied\n"
    "index. Nodes: PARTITIONS is the partition replicas the cluster map places on the node,\n"
    "REPLICAS the ones the node reports holding. Balance counts placed replicas per node\n"
    "that is not dead. --json prints the status document of the coordinator answering\n"
    "(docs/dvecctl.md lists its fields), keys sorted.\n",
    status_opts,
    0,
    0,
    status_run,
};
