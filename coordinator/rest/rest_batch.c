/* rest_batch.c - POST /collections/{c}/points/batch, Qdrant's UpdateOperations: a list of point
 * writes (upsert, delete, payload and vector changes), every one checked before the first is
 * applied, then applied in order through the code of its own call (rest_points.c's rp_*). */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "rest_int.h"

/* The operations by their member name in Qdrant's UpdateOperation. */
enum { OP_UPSERT, OP_DELETE, OP_SET, OP_OVERWRITE, OP_DEL_KEYS, OP_CLEAR, OP_UPD_VEC, OP_DEL_VEC };
static const char *const kind_names[] = {
    "upsert",         "delete",        "set_payload",    "overwrite_payload",
    "delete_payload", "clear_payload", "update_vectors", "delete_vectors",
};
#define N_KINDS (sizeof kind_names / sizeof kind_names[0])

/* Runs (apply) or checks (!apply) one operation of kind `kind` with the object `arg`. */
static int run_op(struct rx *x, const char *coll, int kind, json_t *arg, bool apply)
{
    switch (kind) {
    case OP_UPSERT:
        return rp_upsert(x, coll, arg, apply);
    case OP_DELETE:
        return rp_delete(x, coll, arg, apply);
    case OP_SET:
        return rp_payload(x, coll, arg, 1, apply);
    case OP_OVERWRITE:
        return rp_payload(x, coll, arg, 2, apply);
    case OP_DEL_KEYS:
        return rp_payload(x, coll, arg, 3, apply);
    case OP_CLEAR:
        return rp_payload(x, coll, arg, 4, apply);
    case OP_UPD_VEC:
        return rp_update_vectors(x, coll, arg, apply);
    default:
        return rp_delete_vectors(x, coll, arg, apply);
    }
}

/* Operation k's kind and argument: an object with one member, named after a kind, whose value
 * is an object. 400 naming operations[k] otherwise. */
static int op_kind(struct rx *x, json_t *o, size_t k, int *kind, json_t **arg)
{
    const char *key = NULL;
    if (json_is_object(o) && json_object_size(o) == 1) {
        void *it = json_object_iter(o);
        key = json_object_iter_key(it);
        *arg = json_object_iter_value(it);
    }
    for (size_t i = 0; key && i < N_KINDS; i++) {
        if (strcmp(key, kind_names[i]) != 0)
            continue;
        if (!json_is_object(*arg)) {
            char f[96];
            snprintf(f, sizeof f, "operations[%zu].%s", k, kind_names[i]);
            return rj_type_error(x, f, "expected an object");
        }
        *kind = (int)i;
        return 200;
    }
    return rx_fail(x, 400,
                   "Format error in JSON body: operations[%zu]: expected an object with one of "
                   "`upsert`, `delete`, `set_payload`, `overwrite_payload`, `delete_payload`, "
                   "`clear_payload`, `update_vectors`, `delete_vectors`%s%.64s%s",
                   k, key ? " (not `" : "", key ? key : "", key ? "`)" : "");
}

/* Names operation k in the error message, after its kind's prefix ("Wrong input: "): the
 * message of the call it would be on its own, with "operations[k].kind: " in front of the
 * field; `done` operations before it were applied. */
static void name_op(struct rx *x, size_t k, int kind, size_t done, bool applying)
{
    char msg[REST_ERR_MAX];
    snprintf(msg, sizeof msg, "%s", x->err);
    const char *colon = strstr(msg, ": ");
    int head = colon ? (int)(colon - msg) + 2 : 0;
    char after[96] = "";
    if (applying && done == 1)
        snprintf(after, sizeof after, " (operation 0 was applied and stays; none after it was)");
    else if (applying && done > 1)
        snprintf(after, sizeof after,
                 " (operations 0 to %zu were applied and stay; none after them was)", done - 1);
    else if (applying)
        snprintf(after, sizeof after, " (no operation was applied)");
    /* a message cut at the buffer's end is acceptable (used: no truncation warning) */
    if (snprintf(x->err, sizeof x->err, "%.*soperations[%zu].%s: %s%s", head, msg, k,
                 kind_names[kind], msg + head, after) < 0)
        x->err[0] = '\0';
}

int rh_update_batch(struct rx *x, const char *coll)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    json_t *ops = json_object_get(x->json, "operations");
    if (ops == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `operations`");
    if (!json_is_array(ops))
        return rj_type_error(x, "operations", "expected an array of operations");
    size_t n = json_array_size(ops);
    /* Every operation checked (parsed as it will be sent, no call made) before any runs. */
    for (size_t k = 0; k < n; k++) {
        int kind;
        json_t *arg;
        if ((st = op_kind(x, json_array_get(ops, k), k, &kind, &arg)) != 200)
            return st;
        if ((st = run_op(x, coll, kind, arg, false)) != 200) {
            name_op(x, k, kind, 0, false);
            return st;
        }
    }
    if (n == 0 && !rx_meta(x, coll, NULL, NULL))
        return rx_fail(x, 404, "Not found: Collection `%s` doesn't exist!", coll);
    for (size_t k = 0; k < n; k++) {
        int kind = 0;
        json_t *arg = NULL;
        (void)op_kind(x, json_array_get(ops, k), k, &kind, &arg); /* checked above */
        if ((st = run_op(x, coll, kind, arg, true)) != 200) {
            name_op(x, k, kind, k, true);
            return st;
        }
    }
    int rc = jw_raw(&x->res, "[");
    for (size_t k = 0; k < n && rc == DV_OK; k++) {
        if (k > 0)
            rc = jw_raw(&x->res, ",");
        if (rc == DV_OK && jw_update(x) != 200)
            return 500;
    }
    if (rc == DV_OK)
        rc = jw_raw(&x->res, "]");
    return rc == DV_OK ? 200 : rx_oom(x);
}
