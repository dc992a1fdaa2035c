/* rest_groups.c - search/groups and query/groups: a query's points grouped by a payload
 * value (group_by), the best `limit` groups of up to `group_size` points each, with an
 * optional lookup of each group's own point in another collection (with_lookup).
 *
 * Groups are formed here from the collection's global result list (rest_query.c), so they are
 * right across partitions: the query asks for more points until `limit` groups are full or
 * the collection has no more matching points. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rest_int.h"

#define S(str) ((struct msg_str){(str), (uint32_t)strlen(str)})

#define RG_FIRST_FACTOR 2 /* the first round asks for limit * group_size * this points */
#define RG_GROW         4 /* each further round asks for this many times more */

struct group {
    json_t *key;                 /* the group's value (a string or an integer) */
    const struct msg_hit **hits; /* group_size slots, into the round's fetched points */
    float *scores;
    uint32_t n;
};

struct groups {
    struct group *g;
    size_t n, cap;
    uint32_t size; /* group_size */
};

static void groups_free(struct groups *gs)
{
    for (size_t i = 0; i < gs->n; i++) {
        json_decref(gs->g[i].key);
        free(gs->g[i].hits);
        free(gs->g[i].scores);
    }
    free(gs->g);
    *gs = (struct groups){.size = gs->size};
}

/* Collects the group values at the dotted path `key` under v into `out` (an array): strings
 * and integers, each element of an array, every element of an array met on the way. */
static void values_at(json_t *v, const char *key, json_t *out)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (*key == '\0' && (json_is_string(e) || json_is_integer(e)))
                json_array_append(out, e);
            else if (*key != '\0')
                values_at(e, key, out);
        }
        return;
    }
    if (*key == '\0') {
        if (json_is_string(v) || json_is_integer(v))
            json_array_append(out, v);
        return;
    }
    if (!json_is_object(v))
        return;
    const char *dot = strchr(key, '.');
    size_t n = dot ? (size_t)(dot - key) : strlen(key);
    json_t *child = json_object_getn(v, key, n);
    if (child != NULL)
        values_at(child, dot ? dot + 1 : key + n, out);
}

/* Adds hit h (score s) to the group of each of its values; false when out of memory. */
static bool add_hit(struct groups *gs, const struct msg_hit *h, float s, const char *key)
{
    json_t *payload = NULL, *vals = json_array();
    static const struct psel all = {true, 0, NULL};
    struct buf b = BUF_INIT;
    if (vals == NULL || jw_payload(&b, &h->payload, &all) != DV_OK ||
        (payload = json_loadb((const char *)b.data, b.len, 0, NULL)) == NULL) {
        json_decref(vals);
        buf_free(&b);
        return false;
    }
    buf_free(&b);
    values_at(payload, key, vals);
    json_decref(payload);
    bool ok = true;
    size_t i;
    json_t *v;
    json_array_foreach(vals, i, v)
    {
        size_t k = 0;
        while (k < gs->n && !json_equal(gs->g[k].key, v))
            k++;
        if (k == gs->n) {
            if (gs->n == gs->cap) {
                size_t cap = gs->cap ? gs->cap * 2 : 16;
                struct group *g = realloc(gs->g, cap * sizeof *g);
                if (g == NULL) {
                    ok = false;
                    break;
                }
                gs->g = g;
                gs->cap = cap;
            }
            struct group *g = &gs->g[gs->n];
            *g = (struct group){json_incref(v), calloc(gs->size, sizeof *g->hits),
                                calloc(gs->size, sizeof *g->scores), 0};
            gs->n++;
            if (g->hits == NULL || g->scores == NULL) {
                ok = false;
                break;
            }
        }
        struct group *g = &gs->g[k];
        if (g->n < gs->size) {
            g->hits[g->n] = h;
            g->scores[g->n++] = s;
        }
    }
    json_decref(vals);
    return ok;
}

/* The request's with_lookup: a collection name, or {collection, with_payload, with_vectors}. */
struct lookup {
    const char *coll; /* NULL: none */
    struct psel sel;
    bool with_vector;
};

static int parse_lookup(struct rx *x, json_t *o, struct lookup *lk)
{
    *lk = (struct lookup){.sel = {true, 0, NULL}};
    json_t *w = rj_get(o, "with_lookup");
    if (w == NULL)
        return 200;
    if (json_is_string(w)) {
        lk->coll = json_string_value(w);
        return 200;
    }
    if (!json_is_object(w) || !json_is_string(json_object_get(w, "collection")))
        return rj_type_error(x, "with_lookup",
                             "expected a collection name or {collection, with_payload, "
                             "with_vectors}");
    lk->coll = json_string_value(json_object_get(w, "collection"));
    int st = rj_psel(x, w, "with_payload", true, &lk->sel);
    if (st == 200)
        st = rj_with_vector(x, w, false, &lk->with_vector);
    return st;
}

/* A group's value as a point id of the lookup collection (false: it cannot be one). */
static bool key_id(json_t *key, struct pid *id)
{
    if (json_is_integer(key) && json_integer_value(key) >= 0) {
        *id = pid_num((uint64_t)json_integer_value(key));
        return true;
    }
    return json_is_string(key) &&
           pid_parse_uuid(json_string_value(key), json_string_length(key), id) == DV_OK;
}

/* Writes {"groups": [...]} for the groups gs (the first `limit`). */
static int write_groups(struct rx *x, const char *coll, json_t *o, const struct groups *gs,
                        size_t limit, const struct lookup *lk)
{
    struct psel sel;
    bool with_vector;
    int st;
    if ((st = rj_psel(x, o, "with_payload", false, &sel)) != 200 ||
        (st = rj_with_vector(x, o, false, &with_vector)) != 200)
        return st;
    size_t n = gs->n < limit ? gs->n : limit;
    /* the lookups: one call for every group's point */
    struct msg_reply lrep = {0};
    struct msg_hits lgot = {0};
    struct pid *lids = calloc(n ? n : 1, sizeof *lids);
    size_t nl = 0;
    if (lids == NULL)
        return rx_oom(x);
    for (size_t i = 0; lk->coll && i < n; i++)
        if (key_id(gs->g[i].key, &lids[nl]))
            nl++;
    if (lk->coll && nl > 0 &&
        (st = rq_fetch(x, lk->coll, lids, nl, lk->with_vector, lk->sel.on, &lrep, &lgot)) != 200) {
        free(lids);
        return st;
    }
    struct msg_coll_cfg cfg, lcfg;
    bool known = rx_cfg(x, coll, &cfg), lknown = lk->coll && rx_cfg(x, lk->coll, &lcfg);
    struct rv_out vo = {known ? &cfg : NULL, rj_vector_names(o)},
                  lvo = {lknown ? &lcfg : NULL, NULL};
    int rc = jw_raw(&x->res, "{\"groups\":[");
    for (size_t i = 0; i < n && rc == DV_OK; i++) {
        const struct group *g = &gs->g[i];
        char *key = json_dumps(g->key, JSON_ENCODE_ANY | JSON_COMPACT);
        rc = key == NULL ? DV_ENOMEM : jw_raw(&x->res, i ? ",{\"id\":" : "{\"id\":");
        if (rc == DV_OK)
            rc = jw_raw(&x->res, key);
        free(key);
        if (rc == DV_OK)
            rc = jw_raw(&x->res, ",\"hits\":[");
        for (uint32_t k = 0; k < g->n && rc == DV_OK; k++) {
            struct msg_hit h = *g->hits[k];
            h.score = g->scores[k];
            rc = k ? jw_raw(&x->res, ",") : DV_OK;
            if (rc == DV_OK)
                rc = jw_point(&x->res, &h, true, &sel, with_vector, &vo);
        }
        if (rc == DV_OK)
            rc = jw_raw(&x->res, "]");
        struct pid id;
        const struct msg_hit *l = lk->coll && key_id(g->key, &id) ? rq_find(&lgot, &id) : NULL;
        if (rc == DV_OK && l != NULL) {
            rc = jw_raw(&x->res, ",\"lookup\":");
            if (rc == DV_OK)
                rc = jw_point(&x->res, l, false, &lk->sel, lk->with_vector, &lvo);
        }
        if (rc == DV_OK)
            rc = jw_raw(&x->res, "}");
    }
    if (rc == DV_OK)
        rc = jw_raw(&x->res, "]}");
    msg_reply_free(&lrep);
    free(lids);
    return rc == DV_OK ? 200 : rx_oom(x);
}

/* Runs the grouped query o (a QueryGroupsRequest's shape). */
static int run_groups(struct rx *x, const char *coll, json_t *o)
{
    json_t *by = rj_get(o, "group_by");
    if (by == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `group_by`");
    if (!json_is_string(by) || json_string_length(by) == 0)
        return rj_type_error(x, "group_by", "expected a payload key");
    uint64_t size, limit;
    int st;
    if ((st = rj_u64(x, o, "group_size", 3, 1, PROTO_MAX_K, &size)) != 200 ||
        (st = rj_u64(x, o, "limit", 10, 1, PROTO_MAX_K, &limit)) != 200)
        return st;
    if (size * limit > PROTO_MAX_K) {
        char what[64];
        snprintf(what, sizeof what, "limit * group_size must be %u or smaller", PROTO_MAX_K);
        return rj_invalid(x, "group_size", what);
    }
    struct lookup lk;
    if ((st = parse_lookup(x, o, &lk)) != 200)
        return st;
    bool with_vector;
    if ((st = rj_with_vector(x, o, false, &with_vector)) != 200)
        return st;
    const char *key = json_string_value(by);
    uint64_t want = size * limit * RG_FIRST_FACTOR;
    struct groups gs = {.size = (uint32_t)size};
    struct msg_reply rep = {0};
    for (;;) {
        uint32_t k = (uint32_t)(want < PROTO_MAX_K ? want : PROTO_MAX_K);
        struct rq_list res = {0};
        struct msg_hits got = {0};
        struct pid *ids = NULL;
        groups_free(&gs);
        msg_reply_free(&rep);
        rep = (struct msg_reply){0};
        if ((st = rq_eval(x, coll, o, k, &res)) == 200 &&
            (ids = malloc((res.n ? res.n : 1) * sizeof *ids)) == NULL)
            st = rx_oom(x);
        for (size_t i = 0; st == 200 && i < res.n; i++)
            ids[i] = res.v[i].id;
        if (st == 200 && res.n > 0)
            st = rq_fetch(x, coll, ids, res.n, with_vector, true, &rep, &got);
        for (size_t i = 0; st == 200 && i < res.n; i++) {
            const struct msg_hit *h = rq_find(&got, &res.v[i].id);
            if (h != NULL && !add_hit(&gs, h, res.v[i].score, key))
                st = rx_oom(x);
        }
        size_t full = 0;
        for (size_t i = 0; i < gs.n && i < limit; i++)
            full += gs.g[i].n == size;
        bool done = st != 200 || full == limit || res.n < k || k == PROTO_MAX_K;
        free(ids);
        rq_list_free(&res);
        if (done)
            break;
        want *= RG_GROW;
    }
    if (st == 200)
        st = write_groups(x, coll, o, &gs, limit, &lk);
    groups_free(&gs);
    msg_reply_free(&rep);
    return st;
}

int rh_groups(struct rx *x, const char *coll, int shape)
{
    int st = rj_body(x, false);
    if (st != 200)
        return st;
    if (x->fast)
        return REST_SLOW;
    if (shape == RG_QUERY)
        return run_groups(x, coll, x->json);
    if (rj_get(x->json, "limit") == NULL || rj_get(x->json, "group_size") == NULL)
        return rx_fail(x, 400, "Format error in JSON body: missing field `%s`",
                       rj_get(x->json, "limit") == NULL ? "limit" : "group_size");
    json_t *o;
    if (shape == RG_RECOMMEND) {
        o = rq_as_query(x->json, false);
    } else {
        /* a SearchGroupsRequest: its `vector` (NamedVector: name and vector) is the query */
        json_t *v = json_object_get(x->json, "vector");
        if (v == NULL)
            return rx_fail(x, 400, "Format error in JSON body: missing field `vector`");
        bool named = json_is_object(v) && json_object_get(v, "vector") != NULL;
        o = json_copy(x->json);
        if (o != NULL) {
            json_object_del(o, "vector");
            if (json_object_set(o, "query", named ? json_object_get(v, "vector") : v) != 0 ||
                (named && json_object_get(v, "name") &&
                 json_object_set(o, "using", json_object_get(v, "name")) != 0)) {
                json_decref(o);
                o = NULL;
            }
        }
    }
    if (o == NULL)
        return rx_oom(x);
    st = run_groups(x, coll, o);
    json_decref(o);
    return st;
}
