/* cmd_rebalance.c - dvecctl rebalance plan | apply | status | pause | resume | set, and
 * node add | drain | undrain | remove | weight: admin commands the leader coordinator runs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "progress.h"
#include "table.h"

static uint64_t jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (uint64_t)json_integer_value(v);
    if (json_is_real(v))
        return (uint64_t)json_real_value(v);
    return 0;
}

static double jreal(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* "1.5 GB", "12.0 MB", "900 B" */
static void fmt_bytes(char *buf, size_t len, double b)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4) {
        b /= 1000;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

/* Runs admin op `op` with args (a JSON object, stolen; NULL: none) and parses the result. */
static const struct opt_spec json_opts[] = {
    {"json", OPT_FLAG, NULL, "print the coordinator's answer as JSON"},
    {NULL, 0, NULL, NULL},
};

/* ---- rebalance plan / apply --------------------------------------------------------------- */

static void print_plan(const json_t *doc, bool applied)
{
    const json_t *moves = json_object_get(doc, "moves");
    size_t n = json_array_size(moves);
    char size[32], pts[32];
    if (n == 0) {
        printf("placement matches the ideal one: nothing to move\n");
    } else {
        struct table t;
        static const char *const hdr[] = {"COLLECTION", ">PARTITION", "FROM",
                                          "TO",         ">POINTS",    ">SIZE"};
        table_init(&t, 6, hdr);
        size_t i;
        json_t *mv;
        json_array_foreach(moves, i, mv)
        {
            table_new_row(&t);
            table_cellf(&t, "%s", jstr(mv, "collection"));
            table_cellf(&t, "%llu", (unsigned long long)jint(mv, "partition"));
            table_cellf(&t, "%s", jstr(mv, "from"));
            table_cellf(&t, "%s", jstr(mv, "to"));
            fmt_count(pts, sizeof pts, jint(mv, "points"));
            table_cellf(&t, "%s", pts);
            fmt_bytes(size, sizeof size, (double)jint(mv, "bytes"));
            table_cellf(&t, "%s", size);
        }
        table_print(&t, stdout);
        table_free(&t);
        fmt_count(pts, sizeof pts, jint(doc, "points"));
        fmt_bytes(size, sizeof size, (double)jint(doc, "bytes"));
        printf("%zu moves, %s points, %s of vectors and payloads\n", n, pts, size);
    }
    const json_t *stuck = json_object_get(doc, "stuck");
    size_t i;
    json_t *s;
    json_array_foreach(stuck, i, s)
    {
        const char *why = jstr(s, "reason");
        if (strcmp(why, "unavailable") == 0)
            printf("unavailable: %s/%llu has no replica (its node was removed); it comes back "
                   "when a node holding it starts again\n",
                   jstr(s, "collection"), (unsigned long long)jint(s, "partition"));
        else if (strcmp(why, "moving") == 0)
            printf("moving: %s/%llu (a move of it is under way)\n", jstr(s, "collection"),
                   (unsigned long long)jint(s, "partition"));
        else
            printf("waiting: %s/%llu should move but node %s is down (%s)\n", jstr(s, "collection"),
                   (unsigned long long)jint(s, "partition"), jstr(s, "node"), why);
    }
    const json_t *st = json_object_get(doc, "settings");
    if (applied)
        printf("%llu moves planned; follow them with 'dvecctl rebalance status --watch'\n",
               (unsigned long long)jint(doc, "added"));
    else if (n > 0)
        printf("apply with 'dvecctl rebalance apply'%s\n",
               json_is_true(json_object_get(st, "auto_rebalance"))
                   ? " (automatic rebalancing is on: the leader starts these by itself)"
                   : "");
    if (json_is_true(json_object_get(st, "paused")))
        printf("rebalancing is paused: no move starts until 'dvecctl rebalance resume'\n");
}

static int status_loop(struct ctl *ctl, bool watch, bool as_json);

static int run_plan(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    bool apply = strcmp(cmd->name, "rebalance apply") == 0;
    json_t *doc;
    int rc = ctl_admin(ctl, apply ? "rebalance_apply" : "rebalance_plan", NULL, &doc);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (opts_has(o, "json"))
        return json_print(doc, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    print_plan(doc, apply);
    json_decref(doc);
    if (apply && opts_has(o, "wait"))
        return status_loop(ctl, true, false);
    return CTL_EXIT_OK;
}

/* ---- rebalance status ---------------------------------------------------------------------- */

static bool active(const char *state)
{
    return strcmp(state, "done") != 0 && strcmp(state, "failed") != 0;
}

/* Prints the moves; returns how many are still under way (planned .. switching). */
static size_t print_status(const json_t *doc, bool tty)
{
    const json_t *moves = json_object_get(doc, "moves");
    size_t n = json_array_size(moves), left = 0, failed = 0;
    char rate[48] = "no rate limit";
    if (jint(doc, "rate")) {
        char r[32];
        fmt_bytes(r, sizeof r, (double)jint(doc, "rate"));
        snprintf(rate, sizeof rate, "rate %s/s per move", r);
    }
    printf("rebalancing: %s, %s, %s, %llu moves per node\n",
           json_is_true(json_object_get(doc, "paused")) ? "PAUSED" : "running",
           json_is_true(json_object_get(doc, "auto_rebalance")) ? "automatic" : "manual", rate,
           (unsigned long long)jint(doc, "moves_per_node"));
    if (n == 0) {
        printf("no moves\n");
        return 0;
    }
    struct table t;
    static const char *const hdr[] = {"COLLECTION", ">PART",    "FROM", "TO",
                                      "STATE",      "PROGRESS", "NOTE"};
    table_init(&t, 7, hdr);
    size_t i;
    json_t *mv;
    json_array_foreach(moves, i, mv)
    {
        const char *state = jstr(mv, "state");
        left += active(state);
        failed += strcmp(state, "failed") == 0;
        table_new_row(&t);
        table_cellf(&t, "%s", jstr(mv, "collection"));
        table_cellf(&t, "%llu", (unsigned long long)jint(mv, "partition"));
        table_cellf(&t, "%s", jstr(mv, "from"));
        table_cellf(&t, "%s", jstr(mv, "to"));
        table_cellf(&t, "%s", state);
        uint64_t done = jint(mv, "bytes_done"), total = jint(mv, "bytes_total");
        char line[256], a[32], b[32], r[32], eta[32];
        if (strcmp(state, "copying") == 0 && total > 0) {
            double frac = (double)done / (double)total;
            int w = tty ? 20 : 10, fill = (int)(frac * w + 0.5);
            char bar[32];
            for (int k = 0; k < w; k++)
                bar[k] = k < fill ? '#' : '-';
            bar[w] = '\0';
            fmt_bytes(a, sizeof a, (double)done);
            fmt_bytes(b, sizeof b, (double)total);
            fmt_bytes(r, sizeof r, jreal(mv, "rate"));
            fmt_duration(eta, sizeof eta, jreal(mv, "eta_s"));
            snprintf(line, sizeof line, "[%s] %3.0f%% %s/%s %s/s ETA %s", bar, frac * 100, a, b, r,
                     eta);
        } else if (strcmp(state, "catching_up") == 0) {
            snprintf(line, sizeof line, "%llu records behind", (unsigned long long)jint(mv, "lag"));
        } else if (strcmp(state, "done") == 0) {
            fmt_duration(eta, sizeof eta, (double)jint(mv, "elapsed_ms") / 1000.0);
            snprintf(line, sizeof line, "took %s, writes paused %llu ms%s", eta,
                     (unsigned long long)jint(mv, "writes_paused_ms"),
                     json_is_true(json_object_get(mv, "old_replica_dropped"))
                         ? ""
                         : ", old replica not dropped yet");
        } else {
            line[0] = '\0';
        }
        table_cellf(&t, "%s", line);
        table_cellf(&t, "%s", jstr(mv, "error"));
    }
    table_print(&t, stdout);
    table_free(&t);
    printf("%zu moves: %zu under way, %zu done, %zu failed\n", n, left, n - left - failed, failed);
    if (failed)
        printf("failed moves leave the old placement serving; see docs/operations.md, 'When a "
               "move fails'\n");
    return left;
}

static int status_loop(struct ctl *ctl, bool watch, bool as_json)
{
    bool tty = isatty(STDOUT_FILENO);
    for (;;) {
        json_t *doc;
        int rc = ctl_admin(ctl, "rebalance_status", NULL, &doc);
        if (rc != CTL_EXIT_OK)
            return rc;
        if (as_json)
            return json_print(doc, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
        if (watch && tty)
            fputs("\033[H\033[2J", stdout); /* redraw in place */
        size_t left = print_status(doc, tty);
        bool paused = json_is_true(json_object_get(doc, "paused"));
        json_decref(doc);
        fflush(stdout);
        if (!watch || left == 0 || paused)
            return CTL_EXIT_OK;
        sleep(1);
        if (!tty)
            printf("\n");
    }
}

static int run_status(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    return status_loop(ctl, opts_has(o, "watch"), opts_has(o, "json"));
}

/* ---- rebalance pause / resume / set -------------------------------------------------------- */

static int print_settings(json_t *doc, const struct opts *o)
{
    if (opts_has(o, "json"))
        return json_print(doc, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    char r[32] = "unlimited";
    if (jint(doc, "rate")) {
        fmt_bytes(r, sizeof r, (double)jint(doc, "rate"));
        strcat(r, "/s");
    }
    printf("rebalancing: %s, %s, rate %s per move, %llu moves per node\n",
           json_is_true(json_object_get(doc, "paused")) ? "paused" : "running",
           json_is_true(json_object_get(doc, "auto_rebalance")) ? "automatic" : "manual", r,
           (unsigned long long)jint(doc, "moves_per_node"));
    json_decref(doc);
    return CTL_EXIT_OK;
}

static int run_pause(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    json_t *doc;
    int rc = ctl_admin(
        ctl, strcmp(cmd->name, "rebalance pause") == 0 ? "rebalance_pause" : "rebalance_resume",
        NULL, &doc);
    return rc == CTL_EXIT_OK ? print_settings(doc, o) : rc;
}

/* "64MiB", "10MB", "1000", "0" (unlimited) -> bytes. */
static int parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0) || !isfinite(v))
        return -1;
    static const struct {
        const char *suf;
        double mul;
    } units[] = {{"", 1},       {"B", 1},         {"K", 1e3},           {"KB", 1e3},
                 {"M", 1e6},    {"MB", 1e6},      {"G", 1e9},           {"GB", 1e9},
                 {"KiB", 1024}, {"MiB", 1048576}, {"GiB", 1073741824.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].suf) == 0) {
            *out = (uint64_t)(v * units[i].mul);
            return 0;
        }
    return -1;
}

static int run_set(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    json_t *args = json_object();
    const char *v;
    char err[256];
    if ((v = opts_get(o, "auto")) != NULL) {
        if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
            json_decref(args);
            return ctl_usage(cmd, "--auto: '%s' is not on or off", v);
        }
        json_object_set_new(args, "auto_rebalance", json_boolean(strcmp(v, "on") == 0));
    }
    if ((v = opts_get(o, "rate")) != NULL) {
        uint64_t b;
        if (parse_bytes(v, &b) != 0) {
            json_decref(args);
            return ctl_usage(cmd, "--rate: '%s' is not a size per second (64MiB, 10MB, 0)", v);
        }
        json_object_set_new(args, "rate", json_integer((json_int_t)b));
    }
    uint32_t per = 0;
    if (opts_u32(o, "moves-per-node", 1, 64, &per, err, sizeof err) != 0) {
        json_decref(args);
        return ctl_usage(cmd, "%s", err);
    }
    if (per)
        json_object_set_new(args, "moves_per_node", json_integer(per));
    if (json_object_size(args) == 0) {
        json_decref(args);
        return ctl_usage(cmd, "give --auto, --rate or --moves-per-node");
    }
    json_t *doc;
    int rc = ctl_admin(ctl, "rebalance_set", args, &doc);
    return rc == CTL_EXIT_OK ? print_settings(doc, o) : rc;
}

/* ---- node ----------------------------------------------------------------------------------- */

static int run_node_add(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    const char *url = opts_get(o, "url");
    if (url == NULL)
        return ctl_usage(cmd, "--url is required (the node's native URL, tcp://HOST:PORT)");
    json_t *args = json_pack("{s:s, s:s}", "id", o->pos[0], "url", url);
    const char *v;
    if ((v = opts_get(o, "http-url")) != NULL)
        json_object_set_new(args, "http_url", json_string(v));
    if ((v = opts_get(o, "search-url")) != NULL)
        json_object_set_new(args, "search_url", json_string(v));
    if ((v = opts_get(o, "weight")) != NULL) {
        char *end;
        double w = strtod(v, &end);
        if (*end || !(w > 0) || !isfinite(w)) {
            json_decref(args);
            return ctl_usage(cmd, "--weight: '%s' is not a number > 0", v);
        }
        json_object_set_new(args, "weight", json_real(w));
    }
    json_t *doc;
    int rc = ctl_admin(ctl, "node_add", args, &doc);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (opts_has(o, "json"))
        return json_print(doc, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    printf("node %s added (joining, weight %g): start dvec-shard with node id %s and listen URL "
           "%s; partitions move to it once it reports\n",
           jstr(doc, "node"), jreal(doc, "weight"), o->pos[0], url);
    json_decref(doc);
    return CTL_EXIT_OK;
}

static int run_node_drain(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    bool drain = strcmp(cmd->name, "node drain") == 0;
    json_t *doc;
    int rc = ctl_admin(ctl, drain ? "node_drain" : "node_undrain",
                       json_pack("{s:s}", "id", o->pos[0]), &doc);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (opts_has(o, "json"))
        return json_print(doc, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    bool autorb = json_is_true(json_object_get(doc, "auto_rebalance"));
    if (drain)
        printf("node %s is draining: its %llu replicas move to other nodes%s; remove it with "
               "'dvecctl node remove %s' once it holds none\n",
               o->pos[0], (unsigned long long)jint(doc, "replicas"),
               autorb ? "" : " after 'dvecctl rebalance apply' (automatic rebalancing is off)",
               o->pos[0]);
    else
        printf("node %s is alive again and takes partitions\n", o->pos[0]);
    json_decref(doc);
    if (drain && opts_has(o, "wait"))
        return status_loop(ctl, true, false);
    return CTL_EXIT_OK;
}

/*
 * --if-draining (a node's preStop hook): a node an operator drained is removed once it holds
 * nothing, waiting at most --wait seconds for its replicas to move off; a node that is not
 * draining (an ordinary restart) is left alone.
 */
static int remove_if_draining(struct ctl *ctl, const struct opts *o, json_t **doc)
{
    const char *w = opts_get(o, "wait");
    char *end;
    double wait_s = w ? strtod(w, &end) : 0;
    if (w && (*end || !(wait_s >= 0) || !isfinite(wait_s))) {
        ctl_err("--wait: '%s' is not a number of seconds", w);
        return CTL_EXIT_USAGE;
    }
    double deadline = ctl_now() + wait_s;
    dvec_client *c = NULL;
    if (ctl_client(ctl, &c) != CTL_EXIT_OK)
        return CTL_EXIT_FAIL;
    json_t *a = json_pack("{s:s, s:b}", "id", o->pos[0], "if_draining", true);
    char *args = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    for (;;) {
        char *text = NULL;
        dvec_error e = {0};
        if (dvec_admin(c, "node_remove", args, &text, &e) == DVEC_OK) {
            free(args);
            *doc = json_loads(text, 0, NULL);
            free(text);
            if (*doc == NULL)
                return CTL_EXIT_FAIL;
            if (json_is_true(json_object_get(*doc, "kept"))) {
                const char *st = jstr(*doc, "state");
                if (strcmp(st, "removed") == 0 || strcmp(st, "unknown") == 0)
                    printf("node %s is not in the map (removed already)\n", o->pos[0]);
                else
                    printf("node %s is %s, not draining: left in the map\n", o->pos[0], st);
                json_decref(*doc);
                *doc = NULL;
            }
            return CTL_EXIT_OK;
        }
        if (e.code != DVEC_EBUSY || ctl_now() >= deadline) {
            free(args);
            return ctl_failf(&e, "removing drained node %s", o->pos[0]);
        }
        sleep(1); /* its replicas are still moving off */
    }
}

static int run_node_remove(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    json_t *doc;
    int rc;
    if (opts_has(o, "if-draining")) {
        if (opts_has(o, "force"))
            return ctl_usage(cmd, "--if-draining and --force do not go together");
        if ((rc = remove_if_draining(ctl, o, &doc)) != CTL_EXIT_OK || doc == NULL)
            return rc;
    } else {
        if (opts_has(o, "wait"))
            return ctl_usage(cmd, "--wait goes with --if-draining");
        json_t *args = json_pack("{s:s, s:b}", "id", o->pos[0], "force", opts_has(o, "force"));
        if ((rc = ctl_admin(ctl, "node_remove", args, &doc)) != CTL_EXIT_OK)
            return rc;
    }
    if (opts_has(o, "json"))
        return json_print(doc, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    const json_t *lost = json_object_get(doc, "unavailable");
    printf("node %s removed\n", o->pos[0]);
    if (json_array_size(lost) > 0) {
        printf("WARNING: %zu partitions had their only replica on %s and are UNAVAILABLE:\n",
               json_array_size(lost), o->pos[0]);
        size_t i;
        json_t *p;
        json_array_foreach(lost, i, p)
            printf("  %s/%llu\n", jstr(p, "collection"), (unsigned long long)jint(p, "partition"));
        printf("To bring them back when the node's disk returns: start dvec-shard on it again "
               "with the same data directory and node id (e.g. 'dvec-shard --config "
               "<its config>'), then 'dvecctl node add %s --url <its URL>'; the coordinators "
               "adopt its replicas. 'dvecctl rebalance plan' lists what is still unavailable.\n",
               o->pos[0]);
    }
    json_decref(doc);
    return CTL_EXIT_OK;
}

static int run_node_weight(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    char *end;
    double w = strtod(o->pos[1], &end);
    if (*end || !(w > 0) || !isfinite(w))
        return ctl_usage(cmd, "weight '%s' is not a number > 0", o->pos[1]);
    json_t *doc;
    int rc =
        ctl_admin(ctl, "node_weight", json_pack("{s:s, s:f}", "id", o->pos[0], "weight", w), &doc);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (opts_has(o, "json"))
        return json_print(doc, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    printf("node %s weight %g: it holds partitions in proportion to its weight; 'dvecctl "
           "rebalance plan' shows what moves\n",
           o->pos[0], w);
    json_decref(doc);
    return CTL_EXIT_OK;
}

/* ---- the command table ---------------------------------------------------------------------- */

static const struct opt_spec apply_opts[] = {
    {"json", OPT_FLAG, NULL, "print the coordinator's answer as JSON"},
    {"wait", OPT_FLAG, NULL, "then follow the moves until they end (as status --watch)"},
    {NULL, 0, NULL, NULL},
};

static const struct opt_spec status_opts[] = {
    {"json", OPT_FLAG, NULL, "print the moves as JSON"},
    {"watch", OPT_FLAG, NULL, "refresh every second until no move is under way"},
    {NULL, 0, NULL, NULL},
};

static const struct opt_spec set_opts[] = {
    {"auto", OPT_VAL, "on|off", "plan and start moves by itself when placement drifts"},
    {"rate", OPT_VAL, "BYTES", "copy rate per move, per second (64MiB, 100MB; 0: unlimited)"},
    {"moves-per-node", OPT_VAL, "N", "moves a node takes part in at once (1..64)"},
    {"json", OPT_FLAG, NULL, "print the settings as JSON"},
    {NULL, 0, NULL, NULL},
};

static const struct opt_spec add_opts[] = {
    {"url", OPT_VAL, "URL", "the node's native URL (tcp://HOST:PORT), required"},
    {"http-url", OPT_VAL, "URL", "its HTTP URL (metrics, health)"},
    {"search-url", OPT_VAL, "URL", "its search port (tcp://HOST:PORT; one-hop clients use it)"},
    {"weight", OPT_VAL, "W", "capacity weight (default 1)"},
    {"json", OPT_FLAG, NULL, "print the coordinator's answer as JSON"},
    {NULL, 0, NULL, NULL},
};

static const struct opt_spec drain_opts[] = {
    {"wait", OPT_FLAG, NULL, "follow the moves until they end"},
    {"json", OPT_FLAG, NULL, "print the coordinator's answer as JSON"},
    {NULL, 0, NULL, NULL},
};

static const struct opt_spec remove_opts[] = {
    {"force", OPT_FLAG, NULL, "remove a dead node that still holds replicas"},
    {"if-draining", OPT_FLAG, NULL,
     "only a draining node, once it holds nothing (else leave it: a preStop hook)"},
    {"wait", OPT_VAL, "SECONDS", "with --if-draining: wait this long for the drain to end"},
    {"json", OPT_FLAG, NULL, "print the coordinator's answer as JSON"},
    {NULL, 0, NULL, NULL},
};

const struct cmd cmd_rb_plan = {
    "rebalance plan",
    "[--json]",
    "show the moves that would make the placement ideal",
    "Diffs the ideal placement (weighted consistent hashing over the nodes that take "
    "partitions) against the actual one: one move per misplaced replica, with its points and "
    "size, and partitions that cannot move now (a node down).",
    json_opts,
    0,
    0,
    run_plan};
const struct cmd cmd_rb_apply = {
    "rebalance apply",
    "[--wait] [--json]",
    "plan the moves and start them",
    "Records the plan's moves in the cluster map; the leader runs them (at most "
    "moves-per-node at once per node, at the configured rate). Searches and writes keep "
    "working; each move pauses its partition's writes for milliseconds at the end.",
    apply_opts,
    0,
    0,
    run_plan};
const struct cmd cmd_rb_status = {"rebalance status",
                                  "[--watch] [--json]",
                                  "moves with progress, rate and ETA",
                                  NULL,
                                  status_opts,
                                  0,
                                  0,
                                  run_status};
const struct cmd cmd_rb_pause = {
    "rebalance pause", "", "start no new move (moves under way finish)", NULL, json_opts, 0, 0,
    run_pause};
const struct cmd cmd_rb_resume = {
    "rebalance resume", "", "start moves again", NULL, json_opts, 0, 0, run_pause};
const struct cmd cmd_rb_set = {"rebalance set",
                               "[--auto on|off] [--rate BYTES] [--moves-per-node N]",
                               "change the rebalancing settings (cluster-wide, kept in the map)",
                               NULL,
                               set_opts,
                               0,
                               0,
                               run_set};
const struct cmd cmd_node_add = {
    "node add",
    "ID --url URL [--weight W]",
    "register a node before it starts",
    "Nodes register by themselves when dvec-shard starts; add one ahead to give it a weight, "
    "or to take back a removed id.",
    add_opts,
    1,
    1,
    run_node_add};
const struct cmd cmd_node_drain = {
    "node drain",  "ID [--wait]", "move every replica off a node", NULL, drain_opts, 1, 1,
    run_node_drain};
const struct cmd cmd_node_undrain = {"node undrain", "ID", "cancel a drain", NULL, json_opts, 1, 1,
                                     run_node_drain};
const struct cmd cmd_node_remove = {
    "node remove",
    "ID [--force | --if-draining [--wait SECONDS]]",
    "remove a node that holds nothing (or a dead one, by force)",
    "A node that holds replicas must be drained first. A dead node can be removed with "
    "--force: partitions that had their only replica on it become unavailable until a node "
    "holding them starts again. --if-draining removes the node only if it is draining, once "
    "its replicas have moved off (waiting up to --wait seconds), and leaves any other node "
    "alone: a Kubernetes preStop hook runs it, so that a pod drained before a scale-down "
    "leaves the map while an ordinary restart changes nothing.",
    remove_opts,
    1,
    1,
    run_node_remove};
const struct cmd cmd_node_weight = {
    "node weight",  "ID WEIGHT", "set a node's capacity weight", NULL, json_opts, 2, 2,
    run_node_weight};
