/* main.c - dvecctl: the admin CLI of dvec on the C SDK; command dispatch, help, connection. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

const struct opt_spec ctl_global_opts[] = {
    {"coordinators", OPT_VAL, "URLS",
     "coordinators, comma-separated (else $DVEC_COORDINATORS, the config file's\n"
     "                             coordinators:, tcp://127.0.0.1:7300)"},
    {"config", OPT_VAL, "FILE", "config file (default ~/.config/dvec/dvecctl.yaml)"},
    {"timeout", OPT_VAL, "MS", "per-call timeout in milliseconds (default 10000)"},
    {"read-consistency", OPT_VAL, "LEVEL",
     "replicas a read asks: N (1-8), majority, quorum or all (Qdrant's\n"
     "                             consistency; default one in-sync replica)"},
    {"help", OPT_FLAG, NULL, "show help for the command and exit"},
    {NULL, 0, NULL, NULL},
};

static const struct cmd *const commands[] = {
    &cmd_status,       &cmd_coll_create,  &cmd_coll_list,    &cmd_coll_info,    &cmd_coll_drop,
    &cmd_points_load,  &cmd_search,       &cmd_get,          &cmd_delete,       &cmd_count,
    &cmd_bench,        &cmd_rb_plan,      &cmd_rb_apply,     &cmd_rb_status,    &cmd_rb_pause,
    &cmd_rb_resume,    &cmd_rb_set,       &cmd_node_add,     &cmd_node_drain,   &cmd_node_undrain,
    &cmd_node_remove,  &cmd_node_weight,  &cmd_coll_set,     &cmd_coll_verify,  &cmd_coord_add,
    &cmd_coord_remove, &cmd_alias_create, &cmd_alias_delete, &cmd_alias_rename, &cmd_alias_list,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* Command groups: a word that is only the first word of commands. */
static const char *const groups[] = {"collections", "points",       "rebalance",
                                     "node",        "coordinators", "alias"};

double ctl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void ctl_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dvecctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int fail_print(const dvec_error *e, const char *what)
{
    const char *msg = e->message[0] ? e->message : "failed";
    fprintf(stderr, "dvecctl: %s%s%s (%s)\n", what, what[0] ? ": " : "", msg,
            dvec_code_name(e->code));
    if (e->code == DVEC_EIO || e->code == DVEC_ETIMEDOUT)
        fprintf(stderr, "dvecctl: is a coordinator running at the URLs given? "
                        "(--coordinators, DVEC_COORDINATORS or the config file)\n");
    return CTL_EXIT_FAIL;
}

int ctl_fail(const dvec_error *e)
{
    return fail_print(e, "");
}

int ctl_failf(const dvec_error *e, const char *what_fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, what_fmt);
    vsnprintf(what, sizeof what, what_fmt, ap);
    va_end(ap);
    return fail_print(e, what);
}

static void usage_line(FILE *f, const struct cmd *c)
{
    fprintf(f, "usage: dvecctl %s%s%s\n", c->name, c->args && c->args[0] ? " " : "",
            c->args ? c->args : "");
}

int ctl_usage(const struct cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dvecctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (cmd) {
        usage_line(stderr, cmd);
        fprintf(stderr, "Try 'dvecctl %s --help'.\n", cmd->name);
    } else {
        fprintf(stderr, "Try 'dvecctl --help'.\n");
    }
    return CTL_EXIT_USAGE;
}

int ctl_client_for(const struct ctl *ctl, const char *url, uint32_t timeout_ms, dvec_client **out,
                   dvec_error *err)
{
    dvec_options op = {0};
    op.timeout_ms = timeout_ms;
    /* Coordinators that are not there should not cost more than the timeout together: each
     * gets its share for the connection (at least 100 ms, at most the SDK's 1000). */
    if (timeout_ms) {
        uint32_t n_urls = 1;
        for (const char *p = url; *p; p++)
            n_urls += *p == ',';
        uint32_t share = timeout_ms / n_urls;
        op.connect_timeout_ms = share < 100 ? 100 : share < 1000 ? share : 1000;
        op.max_attempts = n_urls;
    }
    return dvec_connect(url, &op, out, err);
}

int ctl_client(struct ctl *ctl, dvec_client **out)
{
    if (ctl->client == NULL) {
        dvec_error e = {0};
        if (ctl_client_for(ctl, ctl->conf.urls, ctl->timeout_ms, &ctl->client, &e) != DVEC_OK)
            return ctl_failf(&e, "connecting to %s", ctl->conf.urls);
        if (dvec_set_read_consistency(ctl->client, ctl->read_consistency, &e) != DVEC_OK)
            return ctl_failf(&e, "--read-consistency");
    }
    *out = ctl->client;
    return CTL_EXIT_OK;
}

int ctl_admin(struct ctl *ctl, const char *op, json_t *args, json_t **out)
{
    dvec_client *c = NULL;
    int rc = ctl_client(ctl, &c);
    if (rc != CTL_EXIT_OK) {
        json_decref(args);
        return rc;
    }
    char *text = NULL, *atext = args ? json_dumps(args, JSON_COMPACT) : NULL;
    json_decref(args);
    dvec_error e = {0};
    if (dvec_admin(c, op, atext, &text, &e) != DVEC_OK) {
        free(atext);
        return ctl_fail(&e);
    }
    free(atext);
    *out = json_loads(text, 0, NULL);
    free(text);
    if (*out == NULL) {
        ctl_err("%s: the coordinator's answer is not JSON", op);
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

static void print_cmd_help(const struct cmd *c)
{
    usage_line(stdout, c);
    printf("\n%s\n", c->summary);
    if (c->help)
        printf("\n%s", c->help);
    if (c->opts && c->opts[0].name) {
        printf("\nOptions:\n");
        opts_help(stdout, c->opts);
    }
    printf("\nGlobal options:\n");
    opts_help(stdout, ctl_global_opts);
}

static void print_main_help(FILE *f)
{
    fprintf(f, "usage: dvecctl COMMAND [ARGS] [OPTIONS]\n\n"
               "The admin CLI of dvec, a distributed vector database.\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s", commands[i]->name);
        fprintf(f, "  %-20s %s\n", left, commands[i]->summary);
    }
    fprintf(f, "\nGlobal options (every command):\n");
    opts_help(f, ctl_global_opts);
    fprintf(f, "\nExit status: 0 done, 1 the operation failed, 2 a bad command line.\n"
               "'dvecctl COMMAND --help' describes a command; docs/dvecctl.md has examples.\n");
}

static void print_group_help(FILE *f, const char *group)
{
    fprintf(f, "usage: dvecctl %s SUBCOMMAND [ARGS] [OPTIONS]\n\nSubcommands:\n", group);
    size_t gl = strlen(group);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strncmp(commands[i]->name, group, gl) == 0 && commands[i]->name[gl] == ' ')
            fprintf(f, "  %-20s %s\n", commands[i]->name + gl + 1, commands[i]->summary);
    fprintf(f, "\n'dvecctl %s SUBCOMMAND --help' describes one.\n", group);
}

/* Names the positional arguments from `have` on that the usage line lists ("NAME FILE"). */
static void missing_args(const struct cmd *c, size_t have, char *buf, size_t len)
{
    char args[256];
    snprintf(args, sizeof args, "%s", c->args ? c->args : "");
    size_t i = 0, o = 0;
    bool after_opt = false;
    buf[0] = '\0';
    for (char *save, *w = strtok_r(args, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        bool skip = after_opt; /* an option's value: --dim D */
        after_opt = strstr(w, "--") != NULL;
        if (skip || w[0] == '[' || w[0] == '-' || w[0] == '(' || w[0] == '|' || !isupper(w[0]) ||
            w[strlen(w) - 1] == ']' || w[strlen(w) - 1] == ')')
            continue;
        if (i++ >= have && o < len)
            o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? " " : "", w);
    }
    if (buf[0] == '\0')
        snprintf(buf, len, "arguments");
}

/* True when argv holds --help or -h before any "--". */
static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

/* Finds the command named by the first words of argv (skipping options); *used gets the
 * index just past its last word. */
static const struct cmd *find_cmd(int argc, char **argv, int *w1, int *w2, const char **group)
{
    *w1 = *w2 = -1;
    *group = NULL;
    int i = 0;
    /* Skip global options given before the command. */
    while (i < argc && argv[i][0] == '-') {
        bool takes = false;
        for (const struct opt_spec *s = ctl_global_opts; s->name; s++)
            if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, s->name) == 0)
                takes = s->kind == OPT_VAL;
        i += takes ? 2 : 1;
    }
    if (i >= argc)
        return NULL;
    *w1 = i;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        if (strcmp(argv[i], groups[g]) != 0)
            continue;
        *group = groups[g];
        int j = i + 1;
        if (j >= argc || argv[j][0] == '-')
            return NULL;
        *w2 = j;
        char name[128];
        snprintf(name, sizeof name, "%s %s", argv[i], argv[j]);
        for (size_t k = 0; k < N_COMMANDS; k++)
            if (strcmp(commands[k]->name, name) == 0)
                return commands[k];
        return NULL;
    }
    for (size_t k = 0; k < N_COMMANDS; k++)
        if (strcmp(commands[k]->name, argv[i]) == 0)
            return commands[k];
    return NULL;
}

int main(int argc, char **argv)
{
    argc--;
    argv++;
    if (argc == 0) {
        print_main_help(stderr);
        return CTL_EXIT_USAGE;
    }
    if (argc == 1 && strcmp(argv[0], "--version") == 0) {
        printf("dvecctl %s\n", DVEC_VERSION);
        return CTL_EXIT_OK;
    }
    int w1, w2;
    const char *group;
    const struct cmd *cmd = find_cmd(argc, argv, &w1, &w2, &group);
    if (cmd == NULL) {
        if (group && w2 < 0) {
            if (wants_help(argc, argv)) {
                print_group_help(stdout, group);
                return CTL_EXIT_OK;
            }
            print_group_help(stderr, group);
            return CTL_EXIT_USAGE;
        }
        if (w1 < 0 && wants_help(argc, argv)) {
            print_main_help(stdout);
            return CTL_EXIT_OK;
        }
        if (w1 < 0)
            return ctl_usage(NULL, "no command given");
        if (group)
            return ctl_usage(NULL, "unknown command '%s %s' (see 'dvecctl %s --help')", group,
                             argv[w2], group);
        return ctl_usage(NULL, "unknown command '%s'", argv[w1]);
    }
    /* The arguments without the command's words. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (rest == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_FAIL;
    }
    int nrest = 0;
    for (int i = 0; i < argc; i++)
        if (i != w1 && i != w2)
            rest[nrest++] = argv[i];

    int rc;
    struct opts o;
    struct ctl ctl = {0};
    char msg[512];
    if (wants_help(nrest, rest)) {
        print_cmd_help(cmd);
        rc = CTL_EXIT_OK;
        goto out;
    }
    if ((rc = opts_parse(&o, ctl_global_opts, cmd->opts, nrest, rest, msg, sizeof msg)) != 0) {
        rc = ctl_usage(cmd, "%s", msg);
        goto out;
    }
    if (o.n_pos < cmd->min_pos) {
        char missing[256];
        missing_args(cmd, o.n_pos, missing, sizeof missing);
        rc = ctl_usage(cmd, "missing %s", missing);
        goto out;
    }
    if (o.n_pos > cmd->max_pos) {
        rc = ctl_usage(cmd, "unexpected argument '%s'", o.pos[cmd->max_pos]);
        goto out;
    }
    if (conf_resolve(&ctl.conf, opts_get(&o, "coordinators"), opts_get(&o, "config"), msg,
                     sizeof msg) != 0) {
        ctl_err("%s", msg);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    ctl.timeout_ms = ctl.conf.timeout_ms;
    if ((rc = opts_u32(&o, "timeout", 1, 3600000, &ctl.timeout_ms, msg, sizeof msg)) != 0) {
        rc = ctl_usage(cmd, "%s", msg);
        goto out_conf;
    }
    const char *rcons = opts_get(&o, "read-consistency");
    if (rcons != NULL) {
        char *end;
        unsigned long n = strtoul(rcons, &end, 10);
        if (strcmp(rcons, "majority") == 0)
            ctl.read_consistency = DVEC_READ_MAJORITY;
        else if (strcmp(rcons, "quorum") == 0)
            ctl.read_consistency = DVEC_READ_QUORUM;
        else if (strcmp(rcons, "all") == 0)
            ctl.read_consistency = DVEC_READ_ALL;
        else if (rcons[0] >= '1' && rcons[0] <= '9' && *end == '\0' && n <= 8)
            ctl.read_consistency = (uint32_t)n;
        else {
            rc = ctl_usage(cmd, "--read-consistency: '%s' is not 1 to 8, majority, quorum or all",
                           rcons);
            goto out_conf;
        }
    }
    rc = cmd->run(&ctl, cmd, &o);
    if (ctl.client)
        dvec_close(ctl.client);
out_conf:
    conf_free(&ctl.conf);
out:
    free(rest);
    if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) {
        ctl_err("writing the output failed");
        rc = CTL_EXIT_FAIL;
    }
    return rc;
}
