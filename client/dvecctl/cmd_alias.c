/* cmd_alias.c - dvecctl alias create|delete|rename|list: collection aliases (Qdrant's), through
 * the coordinators' admin ops alias_update (one all-or-nothing map command) and alias_list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "table.h"

static const struct opt_spec no_opts[] = {
    {NULL, 0, NULL, NULL},
};

/* Applies one action {kind: {k1: v1, k2: v2}} (k2 NULL: one field). */
static int update(struct ctl *ctl, const char *kind, const char *k1, const char *v1, const char *k2,
                  const char *v2)
{
    json_t *fields = json_pack("{s:s}", k1, v1);
    if (k2)
        json_object_set_new(fields, k2, json_string(v2));
    json_t *args = json_pack("{s:[{s:o}]}", "actions", kind, fields);
    json_t *out = NULL;
    int rc = ctl_admin(ctl, "alias_update", args, &out);
    json_decref(out);
    return rc;
}

static int create_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    (void)cmd;
    int rc = update(ctl, "create_alias", "alias_name", o->pos[0], "collection_name", o->pos[1]);
    if (rc == CTL_EXIT_OK)
        printf("alias %s -> collection %s\n", o->pos[0], o->pos[1]);
    return rc;
}

static int delete_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    (void)cmd;
    int rc = update(ctl, "delete_alias", "alias_name", o->pos[0], NULL, NULL);
    if (rc == CTL_EXIT_OK)
        printf("alias %s deleted\n", o->pos[0]);
    return rc;
}

static int rename_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    (void)cmd;
    int rc = update(ctl, "rename_alias", "old_alias_name", o->pos[0], "new_alias_name", o->pos[1]);
    if (rc == CTL_EXIT_OK)
        printf("alias %s renamed %s\n", o->pos[0], o->pos[1]);
    return rc;
}

static const struct opt_spec list_opts[] = {
    {"json", OPT_FLAG, NULL, "print {\"aliases\": [{alias_name, collection_name}]}"},
    {NULL, 0, NULL, NULL},
};

static int list_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    (void)cmd;
    json_t *args = o->n_pos ? json_pack("{s:s}", "collection", o->pos[0]) : NULL;
    json_t *out = NULL;
    int rc = ctl_admin(ctl, "alias_list", args, &out);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (opts_has(o, "json"))
        return json_print(out, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    static const char *const headers[] = {"ALIAS", "COLLECTION"};
    struct table t;
    table_init(&t, 2, headers);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(out, "aliases"), i, a)
    {
        table_new_row(&t);
        table_cellf(&t, "%s", json_string_value(json_object_get(a, "alias_name")));
        table_cellf(&t, "%s", json_string_value(json_object_get(a, "collection_name")));
    }
    rc = table_print(&t, stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    table_free(&t);
    json_decref(out);
    return rc;
}

const struct cmd cmd_alias_create = {
    "alias create",
    "ALIAS COLLECTION",
    "give a collection another name, usable wherever its name is",
    "An alias works in every request that names a collection, native or REST (Qdrant's\n"
    "aliases). It may not be the name of a collection or of another alias.\n",
    no_opts,
    2,
    2,
    create_run,
};

const struct cmd cmd_alias_delete = {
    "alias delete", "ALIAS", "delete an alias (the collection stays)", NULL, no_opts, 1, 1,
    delete_run,
};

const struct cmd cmd_alias_rename = {
    "alias rename", "OLD NEW", "rename an alias", NULL, no_opts, 2, 2, rename_run,
};

const struct cmd cmd_alias_list = {
    "alias list",
    "[COLLECTION] [--json]",
    "list the aliases (of one collection)",
    "To move an alias to another collection at once (no request sees it missing), send\n"
    "delete_alias and create_alias in one request: POST /collections/aliases (docs/api.md).\n",
    list_opts,
    0,
    1,
    list_run,
};
