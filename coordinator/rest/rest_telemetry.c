/* rest_telemetry.c - GET /telemetry: a subset of Qdrant's telemetry (id, app, collections,
 * cluster) from the coordinator's status map (docs/api.md lists the fields). */
#include <inttypes.h>
#include <string.h>

#include "err.h"
#include "rest_int.h"

int rh_telemetry(struct rx *x)
{
    json_t *st;
    int s = rx_cluster_status(x, &st);
    if (s != 200)
        return s;
    json_t *me = json_object_get(st, "coordinator");
    const char *state = json_string_value(json_object_get(me, "state"));
    const char *role = state && strcmp(state, "leader") == 0      ? "\"Leader\""
                       : state && strcmp(state, "follower") == 0  ? "\"Follower\""
                       : state && strcmp(state, "candidate") == 0 ? "\"Candidate\""
                                                                  : "null";
    json_t *colls = json_object_get(st, "collections");
    struct buf *b = &x->res;
    const char *v = x->r->o.version;
    int rc = buf_appendf(
        b, "{\"id\":\"%" PRIu64 "\",\"app\":{\"name\":\"dvec\",\"version\":", x->r->o.peer_id);
    if (rc == DV_OK)
        rc = jw_str(b, v, strlen(v));
    if (rc == DV_OK)
        rc = buf_appendf(b, "},\"collections\":{\"number_of_collections\":%zu,\"collections\":[",
                         json_array_size(colls));
    size_t i;
    json_t *c;
    json_array_foreach(colls, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        if (rc == DV_OK)
            rc = jw_raw(b, i ? ",{\"id\":" : "{\"id\":");
        if (rc == DV_OK)
            rc = jw_str(b, name ? name : "", name ? strlen(name) : 0);
        if (rc == DV_OK)
            rc = jw_raw(b, "}");
    }
    if (rc == DV_OK)
        rc = buf_appendf(
            b,
            "]},\"cluster\":{\"enabled\":true,\"status\":{\"number_of_peers\":%zu,"
            "\"term\":%" PRIu64 ",\"commit\":%" PRIu64 ",\"pending_operations\":%" PRIu64
            ",\"role\":%s,\"is_voter\":true,\"peer_id\":%" PRIu64 "}}}",
            json_array_size(json_object_get(st, "coordinators")) +
                json_array_size(json_object_get(st, "nodes")),
            (uint64_t)json_integer_value(json_object_get(me, "term")),
            (uint64_t)json_integer_value(json_object_get(me, "commit_index")),
            (uint64_t)(json_integer_value(json_object_get(me, "commit_index")) >
                               json_integer_value(json_object_get(me, "last_applied"))
                           ? json_integer_value(json_object_get(me, "commit_index")) -
                                 json_integer_value(json_object_get(me, "last_applied"))
                           : 0),
            role, x->r->o.peer_id);
    json_decref(st);
    return rc == DV_OK ? 200 : rx_fail(x, 500, "Service internal error: out of memory");
}
