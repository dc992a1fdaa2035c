/* cmd_coll.c - dvecctl collections create | list | info | drop | set | verify. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "progress.h"
#include "table.h"

static const char *const metrics[] = {"euclid", "dot", "cosine", "manhattan"};
static const char *const fsyncs[] = {"always", "batch", "never"};

const char *metric_name(dvec_metric m)
{
    return (unsigned)m < 4 ? metrics[m] : "unknown";
}

const char *fsync_name(dvec_fsync f)
{
    return (unsigned)f < 3 ? fsyncs[f] : "unknown";
}

int coll_cfg_from_opts(const struct opts *o, dvec_collection_config *cfg, char *errmsg,
                       size_t errlen)
{
    const char *v;
    int rc;
    if ((v = opts_get(o, "metric")) != NULL) {
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(v, metrics[i]) == 0)
                found = i;
        /* Common other names. */
        if (strcmp(v, "l2") == 0 || strcmp(v, "euclidean") == 0)
            found = DVEC_EUCLID;
        if (strcmp(v, "ip") == 0)
            found = DVEC_DOT;
        if (strcmp(v, "l1") == 0)
            found = DVEC_MANHATTAN;
        if (found < 0) {
            snprintf(errmsg, errlen, "--metric: '%s' is not euclid, dot, cosine or manhattan", v);
            return CTL_EXIT_USAGE;
        }
        cfg->metric = (dvec_metric)found;
    }
    if ((v = opts_get(o, "fsync")) != NULL) {
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(v, fsyncs[i]) == 0)
                found = i;
        if (found < 0) {
            snprintf(errmsg, errlen, "--fsync: '%s' is not always, batch or never", v);
            return CTL_EXIT_USAGE;
        }
        cfg->fsync = (dvec_fsync)found;
    }
    if ((rc = opts_u32(o, "m", 2, 256, &cfg->m, errmsg, errlen)) != 0 ||
        (rc = opts_u32(o, "ef-construction", 1, 100000, &cfg->ef_construction, errmsg, errlen)) !=
            0 ||
        (rc = opts_u32(o, "ef", 1, 100000, &cfg->ef_search, errmsg, errlen)) != 0 ||
        (rc = opts_u32(o, "partitions", 1, 65536, &cfg->partitions, errmsg, errlen)) != 0 ||
        (rc = opts_u32(o, "replication", 1, 16, &cfg->replication, errmsg, errlen)) != 0 ||
        (rc = opts_u32(o, "write-consistency-factor", 1, 8, &cfg->write_consistency_factor, errmsg,
                       errlen)) != 0)
        return rc;
    if (opts_has(o, "sq8"))
        cfg->sq8 = true;
    return CTL_EXIT_OK;
}

int ids_from_args(const struct opts *o, size_t from, dvec_id **ids, size_t *n, char *errmsg,
                  size_t errlen)
{
    size_t cnt = o->n_pos - from;
    dvec_id *v = calloc(cnt ? cnt : 1, sizeof *v);
    if (v == NULL) {
        snprintf(errmsg, errlen, "out of memory");
        return CTL_EXIT_FAIL;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (dvec_id_parse(o->pos[from + i], &v[i]) != DVEC_OK) {
            snprintf(errmsg, errlen, "'%s' is not a point id (an unsigned integer or a UUID)",
                     o->pos[from + i]);
            free(v);
            return CTL_EXIT_USAGE;
        }
    }
    *ids = v;
    *n = cnt;
    return CTL_EXIT_OK;
}

/* ---- create ---------------------------------------------------------------------------- */

static const struct opt_spec create_opts[] = {
    {"dim", OPT_VAL, "D", "vector dimension (1 .. 65536), required"},
    COLL_CFG_OPTS,
    {NULL, 0, NULL, NULL},
};

static int create_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    const char *name = o->pos[0];
    char msg[512];
    if (!opts_has(o, "dim"))
        return ctl_usage(cmd, "--dim is required");
    uint32_t dim = 0;
    if (opts_u32(o, "dim", 1, 65536, &dim, msg, sizeof msg) != 0)
        return ctl_usage(cmd, "%s", msg);
    dvec_collection_config cfg;
    dvec_collection_config_init(&cfg, dim);
    if (coll_cfg_from_opts(o, &cfg, msg, sizeof msg) != 0)
        return ctl_usage(cmd, "%s", msg);
    dvec_client *c;
    int rc = ctl_client(ctl, &c);
    if (rc != 0)
        return rc;
    dvec_error e = {0};
    if (dvec_collection_create(c, name, &cfg, &e) != DVEC_OK)
        return ctl_fail(&e);
    printf("created collection %s (dim %u, %s)\n", name, dim, metric_name(cfg.metric));
    return CTL_EXIT_OK;
}

const struct cmd cmd_coll_create = {
    "collections create",
    "NAME --dim D [options]",
    "create a collection",
    "Partitions and replicas are placed on the alive nodes at once. Creating a collection\n"
    "that exists fails (exit 1).\n",
    create_opts,
    1,
    1,
    create_run,
};

/* ---- info and list --------------------------------------------------------------------- */

static json_t *info_json(const char *name, const dvec_collection_info *in)
{
    const dvec_collection_config *c = &in->config;
    json_t *cfg =
        json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:b}", "dim", (json_int_t)c->dim,
                  "metric", metric_name(c->metric), "m", (json_int_t)c->m, "ef_construction",
                  (json_int_t)c->ef_construction, "ef", (json_int_t)c->ef_search, "partitions",
                  (json_int_t)c->partitions, "replication", (json_int_t)c->replication, "fsync",
                  fsync_name(c->fsync), "sq8", (int)c->sq8);
    json_t *parts = json_array();
    for (size_t i = 0; parts && i < in->n_partitions; i++) {
        const dvec_partition_info *p = &in->partitions[i];
        json_t *nodes = json_array(), *states = json_array();
        for (size_t j = 0; nodes && states && j < p->n_nodes; j++) {
            json_array_append_new(nodes, json_string(p->nodes[j]));
            json_array_append_new(
                states, json_string(dvec_replica_state_name(p->states ? p->states[j] : 0)));
        }
        json_array_append_new(
            parts, json_pack("{s:I, s:I, s:I, s:I, s:o, s:o}", "id", (json_int_t)p->id, "epoch",
                             (json_int_t)p->epoch, "term", (json_int_t)p->term, "points",
                             (json_int_t)p->points, "nodes", nodes, "states", states));
    }
    return json_pack("{s:s, s:o, s:I, s:o}", "name", name, "config", cfg, "points",
                     (json_int_t)in->points, "partitions", parts);
}

static const struct opt_spec info_opts[] = {
    {"json", OPT_FLAG, NULL, "print the collection as JSON"},
    {NULL, 0, NULL, NULL},
};

static int info_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    const char *name = o->pos[0];
    dvec_client *c;
    int rc = ctl_client(ctl, &c);
    if (rc != 0)
        return rc;
    dvec_error e = {0};
    dvec_collection_info in;
    if (dvec_collection_info_get(c, name, &in, &e) != DVEC_OK)
        return ctl_fail(&e);
    if (opts_has(o, "json")) {
        rc = json_print(info_json(name, &in), stdout) == 0 ? 0 : CTL_EXIT_FAIL;
        dvec_collection_info_free(&in);
        return rc;
    }
    const dvec_collection_config *cf = &in.config;
    char pts[32];
    fmt_count(pts, sizeof pts, in.points);
    printf("collection %s\n", name);
    printf("  points       %s\n", pts);
    printf("  dim          %u\n", cf->dim);
    printf("  metric       %s\n", metric_name(cf->metric));
    printf("  hnsw         m %u, ef_construction %u, ef %u%s\n", cf->m, cf->ef_construction,
           cf->ef_search, cf->sq8 ? ", sq8" : "");
    printf("  partitions   %u, replication %u\n", cf->partitions, cf->replication);
    printf("  fsync        %s\n\n", fsync_name(cf->fsync));
    static const char *const hdr[] = {">PARTITION", ">EPOCH", ">TERM", ">POINTS",
                                      "NODES (primary first; replicas out of sync marked)"};
    struct table t;
    table_init(&t, 5, hdr);
    for (size_t i = 0; i < in.n_partitions; i++) {
        const dvec_partition_info *p = &in.partitions[i];
        char nodes[1024];
        size_t off = 0;
        nodes[0] = '\0';
        for (size_t j = 0; j < p->n_nodes && off < sizeof nodes; j++) {
            int st = p->states ? p->states[j] : 0;
            off += (size_t)snprintf(nodes + off, sizeof nodes - off, "%s%s%s%s%s", j ? ", " : "",
                                    p->nodes[j], st ? " (" : "",
                                    st ? dvec_replica_state_name(st) : "", st ? ")" : "");
        }
        table_new_row(&t);
        table_cellf(&t, "%u", p->id);
        table_cellf(&t, "%llu", (unsigned long long)p->epoch);
        table_cellf(&t, "%llu", (unsigned long long)p->term);
        table_cellf(&t, "%llu", (unsigned long long)p->points);
        table_cellf(&t, "%s", p->n_nodes ? nodes : "(none)");
    }
    rc = table_print(&t, stdout) == 0 ? 0 : CTL_EXIT_FAIL;
    table_free(&t);
    dvec_collection_info_free(&in);
    return rc;
}

const struct cmd cmd_coll_info = {
    "collections info",
    "NAME [--json]",
    "a collection's configuration, points, partitions and their nodes",
    NULL,
    info_opts,
    1,
    1,
    info_run,
};

static const struct opt_spec list_opts[] = {
    {"json", OPT_FLAG, NULL, "print the collections as a JSON array"},
    {"names", OPT_FLAG, NULL, "print only the names, one per line"},
    {NULL, 0, NULL, NULL},
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    dvec_client *c;
    int rc = ctl_client(ctl, &c);
    if (rc != 0)
        return rc;
    dvec_error e = {0};
    char **names;
    size_t n;
    if (dvec_collection_list(c, &names, &n, &e) != DVEC_OK)
        return ctl_fail(&e);
    qsort(names, n, sizeof *names, cmp_str);
    if (opts_has(o, "names")) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", names[i]);
        dvec_strings_free(names, n);
        return CTL_EXIT_OK;
    }
    bool json = opts_has(o, "json");
    json_t *arr = json ? json_array() : NULL;
    static const char *const hdr[] = {"NAME",        ">DIM",         "METRIC", ">POINTS",
                                      ">PARTITIONS", ">REPLICATION", "FSYNC"};
    struct table t;
    table_init(&t, 7, hdr);
    for (size_t i = 0; i < n; i++) {
        dvec_collection_info in;
        if (dvec_collection_info_get(c, names[i], &in, &e) != DVEC_OK) {
            if (e.code == DVEC_ENOTFOUND) /* dropped meanwhile */
                continue;
            rc = ctl_fail(&e);
            break;
        }
        if (json) {
            json_array_append_new(arr, info_json(names[i], &in));
        } else {
            table_new_row(&t);
            table_cellf(&t, "%s", names[i]);
            table_cellf(&t, "%u", in.config.dim);
            table_cellf(&t, "%s", metric_name(in.config.metric));
            table_cellf(&t, "%llu", (unsigned long long)in.points);
            table_cellf(&t, "%u", in.config.partitions);
            table_cellf(&t, "%u", in.config.replication);
            table_cellf(&t, "%s", fsync_name(in.config.fsync));
        }
        dvec_collection_info_free(&in);
    }
    if (rc == 0) {
        if (json)
            rc = json_print(arr, stdout) == 0 ? 0 : CTL_EXIT_FAIL;
        else if (n == 0)
            printf("no collections\n");
        else
            rc = table_print(&t, stdout) == 0 ? 0 : CTL_EXIT_FAIL;
    } else if (arr) {
        json_decref(arr);
    }
    table_free(&t);
    dvec_strings_free(names, n);
    return rc;
}

const struct cmd cmd_coll_list = {
    "collections list",
    "[--json | --names]",
    "the collections with their dimension, metric and points",
    NULL,
    list_opts,
    0,
    0,
    list_run,
};

/* ---- drop ------------------------------------------------------------------------------ */

static const struct opt_spec drop_opts[] = {
    {"yes", OPT_FLAG, NULL, "do not ask for confirmation"},
    {NULL, 0, NULL, NULL},
};

static int drop_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    const char *name = o->pos[0];
    dvec_client *c;
    int rc = ctl_client(ctl, &c);
    if (rc != 0)
        return rc;
    dvec_error e = {0};
    if (!opts_has(o, "yes") && isatty(STDIN_FILENO)) {
        dvec_collection_info in;
        if (dvec_collection_info_get(c, name, &in, &e) != DVEC_OK)
            return ctl_fail(&e);
        char pts[32];
        fmt_count(pts, sizeof pts, in.points);
        dvec_collection_info_free(&in);
        fprintf(stderr, "Drop collection %s and its %s points? This cannot be undone. [y/N] ", name,
                pts);
        fflush(stderr);
        char answer[16] = "";
        if (fgets(answer, sizeof answer, stdin) == NULL ||
            (strcmp(answer, "y\n") != 0 && strcmp(answer, "yes\n") != 0)) {
            fprintf(stderr, "not dropped\n");
            return CTL_EXIT_FAIL;
        }
    }
    if (dvec_collection_drop(c, name, &e) != DVEC_OK)
        return ctl_fail(&e);
    printf("dropped collection %s\n", name);
    return CTL_EXIT_OK;
}

const struct cmd cmd_coll_drop = {
    "collections drop",
    "NAME [--yes]",
    "drop a collection and all its points",
    "On a terminal it asks for confirmation first, unless --yes is given; when stdin is not a\n"
    "terminal (scripts) it drops without asking.\n",
    drop_opts,
    1,
    1,
    drop_run,
};

/* ---- set --------------------------------------------------------------------------------- */

static const struct opt_spec set_opts[] = {
    {"replication-factor", OPT_VAL, "N",
     "replicas per partition (1 .. 8), added or dropped online"},
    {"write-consistency-factor", OPT_VAL, "N",
     "in-sync replicas a write needs (1 .. 8; Qdrant's name)"},
    {"ef", OPT_VAL, "N",
     "default ef of searches that give none (1 .. 65535; Qdrant's hnsw_config.ef)"},
    {NULL, 0, NULL, NULL},
};

static int set_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    const char *name = o->pos[0];
    char msg[512];
    uint32_t rf = 0, wcf = 0, ef = 0;
    if (!opts_has(o, "replication-factor") && !opts_has(o, "write-consistency-factor") &&
        !opts_has(o, "ef"))
        return ctl_usage(cmd, "give --replication-factor, --write-consistency-factor and/or --ef");
    if ((opts_has(o, "replication-factor") &&
         opts_u32(o, "replication-factor", 1, 8, &rf, msg, sizeof msg) != 0) ||
        (opts_has(o, "write-consistency-factor") &&
         opts_u32(o, "write-consistency-factor", 1, 8, &wcf, msg, sizeof msg) != 0) ||
        (opts_has(o, "ef") && opts_u32(o, "ef", 1, 65535, &ef, msg, sizeof msg) != 0))
        return ctl_usage(cmd, "%s", msg);
    dvec_client *c;
    int rc = ctl_client(ctl, &c);
    if (rc != 0)
        return rc;
    json_t *args = json_pack("{s:s}", "collection", name);
    if (rf)
        json_object_set_new(args, "replication_factor", json_integer(rf));
    if (wcf)
        json_object_set_new(args, "write_consistency_factor", json_integer(wcf));
    if (ef)
        json_object_set_new(args, "ef_search", json_integer(ef));
    char *atext = json_dumps(args, JSON_COMPACT), *text = NULL;
    json_decref(args);
    dvec_error e = {0};
    rc = dvec_admin(c, "coll_set", atext, &text, &e);
    free(atext);
    if (rc != DVEC_OK)
        return ctl_fail(&e);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    printf("collection %s: replication factor %lld, write consistency factor %lld, ef %lld%s\n",
           name, (long long)json_integer_value(json_object_get(doc, "replication_factor")),
           (long long)json_integer_value(json_object_get(doc, "write_consistency_factor")),
           (long long)json_integer_value(json_object_get(doc, "ef_search")),
           rf ? " (replicas are added or dropped in the background: dvecctl status)" : "");
    json_decref(doc);
    return CTL_EXIT_OK;
}

const struct cmd cmd_coll_set = {
    "collections set",
    "NAME [--replication-factor N] [--write-consistency-factor N] [--ef N]",
    "change a collection's replication factor, write consistency factor or search ef, online",
    "A higher replication factor adds a replica to each partition on the least loaded node,\n"
    "copied from the primary while writes go on; a lower one drops secondaries (replicas out\n"
    "of sync first). Writes need --write-consistency-factor in-sync replicas. --ef is the ef\n"
    "of searches that give none (coordinators and one-hop clients fill it in).\n",
    set_opts,
    1,
    1,
    set_run,
};

/* ---- verify ------------------------------------------------------------------------------ */

static const struct opt_spec verify_opts[] = {
    {"json", OPT_FLAG, NULL, "print the coordinator's answer as JSON"},
    {NULL, 0, NULL, NULL},
};

static int verify_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    (void)cmd;
    const char *name = o->pos[0];
    dvec_client *c;
    int rc = ctl_client(ctl, &c);
    if (rc != 0)
        return rc;
    json_t *args = json_pack("{s:s}", "collection", name);
    char *atext = json_dumps(args, JSON_COMPACT), *text = NULL;
    json_decref(args);
    dvec_error e = {0};
    rc = dvec_admin(c, "verify", atext, &text, &e);
    free(atext);
    if (rc != DVEC_OK)
        return ctl_fail(&e);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    if (doc == NULL) {
        ctl_err("verify: the coordinator's answer is not JSON");
        return CTL_EXIT_FAIL;
    }
    size_t ndiff = json_array_size(json_object_get(doc, "differ"));
    size_t ngone = json_array_size(json_object_get(doc, "unreachable"));
    if (opts_has(o, "json")) {
        char *out = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(out ? out : "{}");
        free(out);
    } else {
        static const char *const hdr[] = {">PARTITION", ">LSN", "RESULT",
                                          "REPLICAS (node state points digest)"};
        struct table t;
        table_init(&t, 4, hdr);
        json_t *r;
        size_t i;
        json_array_foreach(json_object_get(doc, "results"), i, r)
        {
            char reps[1024];
            size_t off = 0;
            reps[0] = '\0';
            json_t *x;
            size_t j;
            json_array_foreach(json_object_get(r, "replicas"), j, x)
            {
                json_t *err = json_object_get(x, "error");
                if (off < sizeof reps)
                    off += (size_t)snprintf(
                        reps + off, sizeof reps - off, "%s%s %s %lld %s%s%s", j ? ", " : "",
                        json_string_value(json_object_get(x, "node")),
                        json_string_value(json_object_get(x, "state")),
                        (long long)json_integer_value(json_object_get(x, "points")),
                        json_string_value(json_object_get(x, "digest")),
                        json_is_string(err) ? " error: " : "",
                        json_is_string(err) ? json_string_value(err) : "");
            }
            table_new_row(&t);
            table_cellf(&t, "%lld", (long long)json_integer_value(json_object_get(r, "partition")));
            table_cellf(&t, "%lld", (long long)json_integer_value(json_object_get(r, "lsn")));
            table_cellf(&t, "%s%s",
                        json_is_true(json_object_get(r, "identical")) ? "identical" : "DIFFER",
                        json_is_true(json_object_get(r, "fenced")) ? " (writes paused)" : "");
            table_cellf(&t, "%s", reps);
        }
        rc = table_print(&t, stdout);
        table_free(&t);
        printf("%s: %lld of %lld partitions identical%s\n", name,
               (long long)json_integer_value(json_object_get(doc, "identical")),
               (long long)json_integer_value(json_object_get(doc, "partitions")),
               ndiff || ngone ? "" : " (every replica of every partition holds the same points)");
    }
    json_decref(doc);
    if (ndiff || ngone) {
        ctl_err("%zu partition(s) differ, %zu could not be compared", ndiff, ngone);
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

const struct cmd cmd_coll_verify = {
    "collections verify",
    "NAME [--json]",
    "compare every replica of every partition by content",
    "Each node computes a digest of its replica (ids, vectors, payloads; order-independent) with\n"
    "the LSN it is exact for; in-sync replicas at the same LSN must agree. Under writes it asks\n"
    "again until the replicas meet, and pauses a partition's writes for a moment if they never\n"
    "do. Exit status 1 when a partition differs or a replica does not answer.\n",
    verify_opts,
    1,
    1,
    verify_run,
};
