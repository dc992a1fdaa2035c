/* rest_alias.c - the REST API's collection aliases (Qdrant's): POST /collections/aliases,
 * GET /aliases, GET /collections/{name}/aliases, over the native admin ops alias_update and
 * alias_list. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsonmp.h"
#include "rest_int.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

#define oom rx_oom

/* Runs admin op `op` with `args` (NULL: none); on 200 *out holds its status as JSON. */
static int admin(struct rx *x, const char *op, const json_t *args, json_t **out)
{
    struct buf a = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    if (args && jsonmp_from_json(args, &a, err) != DV_OK) {
        buf_free(&a);
        return rx_fail(x, 400, "Wrong input: %s", err);
    }
    struct msg q = {.type = MSG_ADMIN};
    q.u.admin_req = (struct msg_admin_req){S(op), {a.data, (uint32_t)a.len}};
    struct msg_reply rep;
    int st = rx_call(x, &q, &rep);
    buf_free(&a);
    if (st != 200)
        return st;
    const struct msg_bytes *s = &rep.m.u.cluster_rep.status;
    int rc = s->p ? jsonmp_to_json(s->p, s->len, out, err) : DV_EPROTO;
    msg_reply_free(&rep);
    if (rc != DV_OK)
        return rx_fail(x, 500, "Service internal error: %s: %s", op,
                       rc == DV_EPROTO ? "no answer" : err);
    return 200;
}

/* POST /collections/aliases: Qdrant's {"actions": [...]}, applied in order as one map command
 * (all or nothing). The coordinator checks each action and names the one that fails. */
static int update(struct rx *x)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    json_t *acts = json_object_get(x->json, "actions");
    if (acts == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `actions`");
    if (!json_is_array(acts))
        return rj_type_error(x, "actions", "expected a list of alias actions");
    json_t *args = json_pack("{s:O}", "actions", acts);
    if (args == NULL)
        return oom(x);
    json_t *out = NULL;
    st = admin(x, "alias_update", args, &out);
    json_decref(args);
    json_decref(out);
    if (st != 200)
        return st;
    return jw_raw(&x->res, "true") == DV_OK ? 200 : oom(x);
}

/* GET /aliases or GET /collections/{coll}/aliases: {"aliases": [{alias_name, collection_name}]}
 * in alias name order. */
static int list(struct rx *x, const char *coll)
{
    json_t *args = coll ? json_pack("{s:s}", "collection", coll) : NULL;
    if (coll && args == NULL)
        return oom(x);
    json_t *out = NULL;
    int st = admin(x, "alias_list", args, &out);
    json_decref(args);
    if (st != 200)
        return st;
    json_t *l = json_object_get(out, "aliases");
    if (!json_is_array(l)) {
        json_decref(out);
        return rx_fail(x, 500, "Service internal error: alias_list: no aliases");
    }
    int rc = jw_raw(&x->res, "{\"aliases\":[");
    size_t i;
    json_t *a;
    json_array_foreach(l, i, a)
    {
        const char *an = json_string_value(json_object_get(a, "alias_name"));
        const char *cn = json_string_value(json_object_get(a, "collection_name"));
        if (an == NULL || cn == NULL)
            continue;
        if (rc == DV_OK && i > 0)
            rc = jw_raw(&x->res, ",");
        if (rc == DV_OK)
            rc = jw_raw(&x->res, "{\"alias_name\":");
        if (rc == DV_OK)
            rc = jw_str(&x->res, an, strlen(an));
        if (rc == DV_OK)
            rc = jw_raw(&x->res, ",\"collection_name\":");
        if (rc == DV_OK)
            rc = jw_str(&x->res, cn, strlen(cn));
        if (rc == DV_OK)
            rc = jw_raw(&x->res, "}");
    }
    if (rc == DV_OK)
        rc = jw_raw(&x->res, "]}");
    json_decref(out);
    return rc == DV_OK ? 200 : oom(x);
}

int rh_aliases(struct rx *x)
{
    if (strcmp(x->method, "POST") == 0)
        return update(x);
    if (x->nseg == 3) {
        int st = list(x, x->seg[1]);
        if (st == 404 && !rx_meta(x, x->seg[1], NULL, NULL))
            return rx_fail(x, 404, "Not found: Collection `%s` doesn't exist!", x->seg[1]);
        return st;
    }
    return list(x, NULL);
}
