/* cmd_points.c - dvecctl search | get | delete | count. */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "readers.h"
#include "table.h"

/* Checks that a filter is JSON before sending it (the server explains what it means). */
static int check_filter(const struct cmd *cmd, const char *filter)
{
    if (filter == NULL)
        return CTL_EXIT_OK;
    json_error_t je;
    json_t *f = json_loads(filter, 0, &je);
    if (f == NULL)
        return ctl_usage(cmd, "--filter: not JSON: %s (column %d)", je.text, je.column);
    bool obj = json_is_object(f);
    json_decref(f);
    if (!obj)
        return ctl_usage(cmd, "--filter: expected a JSON object ({\"must\": [...]})");
    return CTL_EXIT_OK;
}

/* ---- search ---------------------------------------------------------------------------- */

static const struct opt_spec search_opts[] = {
    {"vector", OPT_VAL, "JSON", "the query vector as a JSON array: \"[0.1, 0.2, ...]\""},
    {"vector-file", OPT_VAL, "FILE", "take the query from a .fvecs/.npy/.jsonl file"},
    {"row", OPT_VAL, "I", "with --vector-file: the row (0-based, default 0)"},
    {"k", OPT_VAL, "K", "results wanted (default 10)"},
    {"ef", OPT_VAL, "N", "HNSW ef (default: the collection's)"},
    {"filter", OPT_VAL, "JSON", "payload filter (docs/filters.md)"},
    {"with-payload", OPT_FLAG, NULL, "show the payloads"},
    {"with-vector", OPT_FLAG, NULL, "show the vectors"},
    {"json", OPT_FLAG, NULL, "print the results as a JSON array"},
    {NULL, 0, NULL, NULL},
};

static int search_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    const char *name = o->pos[0];
    char msg[512];
    dvec_search_params p;
    dvec_search_params_init(&p);
    if (opts_u32(o, "k", 1, 100000, &p.k, msg, sizeof msg) != 0 ||
        opts_u32(o, "ef", 1, 100000, &p.ef, msg, sizeof msg) != 0)
        return ctl_usage(cmd, "%s", msg);
    p.filter_json = opts_get(o, "filter");
    p.with_payload = opts_has(o, "with-payload");
    p.with_vector = opts_has(o, "with-vector");
    int rc = check_filter(cmd, p.filter_json);
    if (rc != 0)
        return rc;
    const char *vj = opts_get(o, "vector"), *vf = opts_get(o, "vector-file");
    if ((vj == NULL) == (vf == NULL))
        return ctl_usage(cmd, "give the query as --vector JSON or --vector-file FILE (one)");
    if (opts_has(o, "row") && vf == NULL)
        return ctl_usage(cmd, "--row goes with --vector-file");
    float *q = NULL;
    uint32_t dim = 0;
    if (vj) {
        if (rd_parse_vector(vj, &q, &dim, msg, sizeof msg) != 0)
            return ctl_usage(cmd, "--vector: %s", msg);
    } else {
        uint64_t row = 0;
        if (opts_uint(o, "row", 0, UINT64_MAX, &row, msg, sizeof msg) != 0)
            return ctl_usage(cmd, "%s", msg);
        if (rd_read_row(vf, row, &q, &dim, msg, sizeof msg) != 0) {
            ctl_err("%s", msg);
            return CTL_EXIT_FAIL;
        }
    }
    dvec_client *c;
    if ((rc = ctl_client(ctl, &c)) != 0) {
        free(q);
        return rc;
    }
    dvec_error e = {0};
    dvec_records res;
    if (dvec_search(c, name, q, dim, &p, &res, NULL, &e) != DVEC_OK) {
        free(q);
        return ctl_fail(&e);
    }
    free(q);
    if (opts_has(o, "json")) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < res.n; i++)
            json_array_append_new(a, json_record(&res.items[i], true));
        rc = json_print(a, stdout) == 0 ? 0 : CTL_EXIT_FAIL;
        dvec_records_free(&res);
        return rc;
    }
    static const char *const hdr[] = {">RANK", ">ID", ">SCORE", "PAYLOAD", "VECTOR"};
    size_t ncols = 3 + p.with_payload + p.with_vector;
    const char *h[5] = {hdr[0], hdr[1], hdr[2], NULL, NULL};
    size_t k = 3;
    if (p.with_payload)
        h[k++] = hdr[3];
    if (p.with_vector)
        h[k++] = hdr[4];
    struct table t;
    table_init(&t, ncols, h);
    for (size_t i = 0; i < res.n; i++) {
        const dvec_record *r = &res.items[i];
        char id[DVEC_ID_TEXT_MAX], sc[32];
        dvec_id_format(&r->id, id);
        fmt_float(sc, sizeof sc, r->score);
        table_new_row(&t);
        table_cellf(&t, "%zu", i + 1);
        table_cellf(&t, "%s", id);
        table_cellf(&t, "%s", sc);
        if (p.with_payload)
            table_cellf(&t, "%s", r->payload_json ? r->payload_json : "");
        if (p.with_vector) {
            char *v = r->vector ? fmt_vector(r->vector, r->dim) : NULL;
            table_cellf(&t, "%s", v ? v : "");
            free(v);
        }
    }
    if (res.n == 0)
        printf("no results\n");
    else
        rc = table_print(&t, stdout) == 0 ? 0 : CTL_EXIT_FAIL;
    table_free(&t);
    dvec_records_free(&res);
    return rc;
}

const struct cmd cmd_search = {
    "search",
    "NAME (--vector JSON | --vector-file FILE [--row I]) [options]",
    "the k nearest points to a vector",
    "Scores follow the metric: euclid gives the squared distance (smaller is closer), dot and\n"
    "cosine a similarity (larger is closer), manhattan the L1 distance.\n",
    search_opts,
    1,
    1,
    search_run,
};

static bool id_eq(const dvec_id *a, const dvec_id *b)
{
    if (a->is_uuid != b->is_uuid)
        return false;
    return a->is_uuid ? memcmp(a->uuid, b->uuid, sizeof a->uuid) == 0 : a->num == b->num;
}

/* ---- get ------------------------------------------------------------------------------- */

/* The ids given after the collection name, and the client; an exit code on failure (the ids
 * are freed then). */
static int ids_and_client(struct ctl *ctl, const struct cmd *cmd, const struct opts *o,
                          dvec_id **ids, size_t *n, dvec_client **c)
{
    char msg[512];
    int rc = ids_from_args(o, 1, ids, n, msg, sizeof msg);
    if (rc != 0)
        return rc == CTL_EXIT_USAGE ? ctl_usage(cmd, "%s", msg) : (ctl_err("%s", msg), rc);
    if ((rc = ctl_client(ctl, c)) != 0)
        free(*ids);
    return rc;
}

static const struct opt_spec get_opts[] = {
    {"no-vector", OPT_FLAG, NULL, "leave the vectors out"},
    {"no-payload", OPT_FLAG, NULL, "leave the payloads out"},
    {"json", OPT_FLAG, NULL, "print a pretty JSON array instead of JSON Lines"},
    {NULL, 0, NULL, NULL},
};

static int get_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    const char *name = o->pos[0];
    dvec_id *ids;
    size_t n;
    dvec_client *c;
    int rc = ids_and_client(ctl, cmd, o, &ids, &n, &c);
    if (rc != 0)
        return rc;
    dvec_error e = {0};
    dvec_records res;
    if (dvec_get(c, name, ids, n, !opts_has(o, "no-vector"), !opts_has(o, "no-payload"), &res,
                 &e) != DVEC_OK) {
        free(ids);
        return ctl_fail(&e);
    }
    bool pretty = opts_has(o, "json");
    json_t *arr = pretty ? json_array() : NULL;
    for (size_t i = 0; i < res.n; i++) {
        json_t *r = json_record(&res.items[i], false);
        if (pretty) {
            json_array_append_new(arr, r);
        } else {
            json_dumpf(r, stdout, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
            fputc('\n', stdout);
            json_decref(r);
        }
    }
    if (pretty)
        json_print(arr, stdout);
    /* Ids asked for and not returned. */
    size_t missing = 0;
    char list[256] = "";
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < res.n && !found; j++)
            found = id_eq(&res.items[j].id, &ids[i]);
        if (!found) {
            char t[DVEC_ID_TEXT_MAX];
            dvec_id_format(&ids[i], t);
            size_t l = strlen(list);
            if (l < sizeof list - 48)
                snprintf(list + l, sizeof list - l, "%s%s", missing ? ", " : "", t);
            else if (l < sizeof list - 4 && list[l - 1] != '.')
                snprintf(list + l, sizeof list - l, ", ...");
            missing++;
        }
    }
    dvec_records_free(&res);
    free(ids);
    if (missing) {
        ctl_err("%zu of %zu points not found in %s: %s", missing, n, name, list);
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

const struct cmd cmd_get = {
    "get",
    "NAME ID... [--no-vector] [--no-payload] [--json]",
    "points by id, as JSON Lines (the format points load reads)",
    "Exits 1 (after printing the ones found) when some ids do not exist.\n",
    get_opts,
    2,
    OPTS_POS_MAX,
    get_run,
};

/* ---- delete ---------------------------------------------------------------------------- */

static int delete_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    const char *name = o->pos[0];
    dvec_id *ids;
    size_t n;
    dvec_client *c;
    int rc = ids_and_client(ctl, cmd, o, &ids, &n, &c);
    if (rc != 0)
        return rc;
    dvec_error e = {0};
    uint64_t deleted = 0;
    rc = dvec_delete(c, name, ids, n, &deleted, &e);
    free(ids);
    if (rc != DVEC_OK)
        return ctl_fail(&e);
    printf("deleted %llu of %zu points\n", (unsigned long long)deleted, n);
    return CTL_EXIT_OK;
}

static const struct opt_spec no_opts[] = {{NULL, 0, NULL, NULL}};

const struct cmd cmd_delete = {
    "delete",
    "NAME ID...",
    "delete points by id",
    "Ids that do not exist are not an error: the output says how many existed.\n",
    no_opts,
    2,
    OPTS_POS_MAX,
    delete_run,
};

/* ---- count ----------------------------------------------------------------------------- */

static const struct opt_spec count_opts[] = {
    {"filter", OPT_VAL, "JSON", "count only the points matching this filter"},
    {NULL, 0, NULL, NULL},
};

static int count_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    const char *name = o->pos[0];
    const char *filter = opts_get(o, "filter");
    int rc = check_filter(cmd, filter);
    if (rc != 0)
        return rc;
    dvec_client *c;
    if ((rc = ctl_client(ctl, &c)) != 0)
        return rc;
    dvec_error e = {0};
    uint64_t n;
    if (dvec_count(c, name, filter, &n, &e) != DVEC_OK)
        return ctl_fail(&e);
    printf("%llu\n", (unsigned long long)n);
    return CTL_EXIT_OK;
}

const struct cmd cmd_count = {
    "count",
    "NAME [--filter JSON]",
    "the number of points (matching a filter); exact",
    NULL,
    count_opts,
    1,
    1,
    count_run,
};
