/* cmd_coord.c - dvecctl coordinators add / remove: resizing the coordinators' raft group. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const struct opt_spec add_opts[] = {
    {"raft", OPT_VAL, "HOST:PORT", "the address the others dial its raft on, required"},
    {"url", OPT_VAL, "URL", "its native URL (tcp://HOST:PORT), required"},
    {"json", OPT_FLAG, NULL, "print the coordinator's answer as JSON"},
    {NULL, 0, NULL, NULL},
};

static const struct opt_spec json_only[] = {
    {"json", OPT_FLAG, NULL, "print the coordinator's answer as JSON"},
    {NULL, 0, NULL, NULL},
};

static int parse_id(const struct cmd *cmd, const char *s, unsigned long long *id)
{
    char *end;
    errno = 0;
    *id = strtoull(s, &end, 10);
    if (*s == '\0' || *end || errno || *id == 0 || *id > 1000000 || s[0] == '-')
        return ctl_usage(cmd, "coordinator id '%s' is not a number from 1 to 1000000", s);
    return CTL_EXIT_OK;
}

static int run_add(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    unsigned long long id;
    int rc = parse_id(cmd, o->pos[0], &id);
    if (rc != CTL_EXIT_OK)
        return rc;
    const char *raft = opts_get(o, "raft"), *url = opts_get(o, "url");
    if (raft == NULL || url == NULL)
        return ctl_usage(cmd, "--raft HOST:PORT and --url URL are required");
    json_t *doc;
    rc = ctl_admin(
        ctl, "coord_add",
        json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "raft_addr", raft, "url", url), &doc);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (opts_has(o, "json"))
        return json_print(doc, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    printf("coordinator %llu (raft %s, %s) is a voter of the raft group\n", id, raft, url);
    json_decref(doc);
    return CTL_EXIT_OK;
}

static int run_remove(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    unsigned long long id;
    int rc = parse_id(cmd, o->pos[0], &id);
    if (rc != CTL_EXIT_OK)
        return rc;
    json_t *doc;
    rc = ctl_admin(ctl, "coord_remove", json_pack("{s:I}", "id", (json_int_t)id), &doc);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (opts_has(o, "json"))
        return json_print(doc, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    printf("coordinator %llu left the raft group: stop its process (it keeps running, and "
           "answers nothing it would need a majority for)\n",
           id);
    json_decref(doc);
    return CTL_EXIT_OK;
}

const struct cmd cmd_coord_add = {
    "coordinators add",
    "ID --raft HOST:PORT --url URL [--json]",
    "add a coordinator to the raft group",
    "Start the new coordinator first, with an empty data directory and the running group's "
    "`group` list (a coordinator whose id is not in it asks to join by itself, so this is "
    "only needed for one started with `join: true` and no list). The leader adds it as a "
    "spare, catches it up, then makes it a voter. One change at a time; keep the group at 1, 3 "
    "or 5 voters.",
    add_opts,
    1,
    1,
    run_add};

const struct cmd cmd_coord_remove = {
    "coordinators remove",
    "ID [--json]",
    "remove a coordinator from the raft group",
    "Ask through another coordinator than the one removed when it is the leader (a leader "
    "cannot remove itself: stop it, and remove it once a new leader is elected). Then stop "
    "its process.",
    json_only,
    1,
    1,
    run_remove};
