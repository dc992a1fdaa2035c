/* rest_vec.c - Qdrant's named, sparse and multi vectors in the REST API: a collection's vectors
 * config (create, info), a point's vectors (upsert, update, output) and a query's vector. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rest_int.h"

static const char *const distance_names[] = {"Euclid", "Dot", "Cosine", "Manhattan"};

enum { KIND_DENSE = 0, KIND_SPARSE = 1, KIND_MULTI = 2 };

#define oom rx_oom

void *rv_alloc(struct rv_arena *a, size_t bytes)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        void **nb = realloc(a->b, nc * sizeof *nb);
        if (nb == NULL)
            return NULL;
        a->b = nb;
        a->cap = nc;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (p != NULL)
        a->b[a->n++] = p;
    return p;
}

void rv_free(struct rv_arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->b[i]);
    free(a->b);
    memset(a, 0, sizeof *a);
}

const struct msg_vspace *rv_space(const struct msg_coll_cfg *cfg, const char *name, size_t len)
{
    for (uint32_t i = 0; i < cfg->n_spaces; i++)
        if (strlen(cfg->spaces[i].name) == len && memcmp(cfg->spaces[i].name, name, len) == 0)
            return &cfg->spaces[i];
    return NULL;
}

/* ---- the collection's config ------------------------------------------------------------- */

static int one_dense(struct rx *x, const char *name, json_t *v, struct msg_vspace *out,
                     const struct msg_coll_cfg *base)
{
    char f[PROTO_MAX_VNAME + 32];
    int st;
    if (!json_is_object(v)) {
        snprintf(f, sizeof f, "vectors.%s", name);
        return rj_type_error(x, f, "expected an object {size, distance}");
    }
    json_t *size = json_object_get(v, "size"), *dist = json_object_get(v, "distance");
    snprintf(f, sizeof f, "vectors.%s.size", name);
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return rj_type_error(x, f, "expected a non-negative integer");
    if (json_integer_value(size) < 1)
        return rj_invalid(x, f, "value 0 invalid, must be 1 or larger");
    if (json_integer_value(size) > PROTO_MAX_DIM)
        return rj_invalid(x, f, "value too large, must be 65536 or smaller");
    int metric = -1;
    for (int i = 0; i < 4 && json_is_string(dist); i++)
        if (strcmp(json_string_value(dist), distance_names[i]) == 0)
            metric = i;
    snprintf(f, sizeof f, "vectors.%s.distance", name);
    if (metric < 0)
        return rj_type_error(x, f,
                             "unknown variant, expected one of `Cosine`, `Euclid`, `Dot`, "
                             "`Manhattan`");
    json_t *dt = rj_get(v, "datatype");
    if (dt && !(json_is_string(dt) && strcmp(json_string_value(dt), "float32") == 0))
        return rx_fail(x, 400,
                       "Wrong input: vectors.%s.datatype: only float32 is supported by dvec", name);
    bool b;
    if ((st = rj_bool(x, v, "on_disk", false, &b)) != 200)
        return st;
    /* Collection-level HNSW and quantization settings, then the vector's own. */
    struct msg_coll_cfg c = {
        .m = base->m, .ef_construction = base->ef_construction, .sq8 = base->sq8};
    snprintf(f, sizeof f, "vectors.%s.hnsw_config", name);
    if ((st = rest_hnsw_params(x, rj_get(v, "hnsw_config"), f, &c)) != 200)
        return st;
    snprintf(f, sizeof f, "vectors.%s.quantization_config", name);
    if ((st = rest_quant_params(x, rj_get(v, "quantization_config"), f, &c)) != 200)
        return st;
    uint32_t kind = KIND_DENSE;
    json_t *mv = rj_get(v, "multivector_config");
    if (mv) {
        json_t *cmp = json_is_object(mv) ? json_object_get(mv, "comparator") : NULL;
        snprintf(f, sizeof f, "vectors.%s.multivector_config", name);
        if (!json_is_string(cmp) || strcmp(json_string_value(cmp), "max_sim") != 0)
            return rj_type_error(x, f, "expected {\"comparator\": \"max_sim\"}");
        kind = KIND_MULTI;
    }
    *out = (struct msg_vspace){.kind = kind,
                               .dim = (uint32_t)json_integer_value(size),
                               .metric = (uint32_t)metric,
                               .m = c.m,
                               .ef_construction = c.ef_construction,
                               .sq8 = c.sq8};
    snprintf(out->name, sizeof out->name, "%s", name);
    return 200;
}

static int one_sparse(struct rx *x, const char *name, json_t *v, struct msg_vspace *out)
{
    char f[PROTO_MAX_VNAME + 40];
    snprintf(f, sizeof f, "sparse_vectors.%s", name);
    if (!json_is_object(v))
        return rj_type_error(x, f, "expected an object {index, modifier}");
    json_t *ix = rj_get(v, "index"), *mod = rj_get(v, "modifier");
    if (ix && !json_is_object(ix)) {
        snprintf(f, sizeof f, "sparse_vectors.%s.index", name);
        return rj_type_error(x, f, "expected an object");
    }
    bool idf = false;
    if (mod) {
        snprintf(f, sizeof f, "sparse_vectors.%s.modifier", name);
        if (!json_is_string(mod) || (strcmp(json_string_value(mod), "idf") != 0 &&
                                     strcmp(json_string_value(mod), "none") != 0))
            return rj_type_error(x, f, "unknown variant, expected one of `none`, `idf`");
        idf = strcmp(json_string_value(mod), "idf") == 0;
    }
    *out = (struct msg_vspace){.kind = KIND_SPARSE, .idf = idf};
    snprintf(out->name, sizeof out->name, "%s", name);
    return 200;
}

int rv_parse_cfg(struct rx *x, json_t *vectors, json_t *sparse, struct msg_coll_cfg *cfg)
{
    const char *key;
    json_t *val;
    int st;
    size_t n = (vectors ? json_object_size(vectors) : 0) + (sparse ? json_object_size(sparse) : 0);
    if (n > PROTO_MAX_VECTORS)
        return rx_fail(x, 400, "Wrong input: %zu named vectors, dvec holds at most %d", n,
                       PROTO_MAX_VECTORS);
    cfg->n_spaces = 0;
    json_object_foreach(vectors, key, val)
    {
        if (strlen(key) > PROTO_MAX_VNAME)
            return rx_fail(x, 400, "Wrong input: vector name `%.64s...` longer than %d bytes", key,
                           PROTO_MAX_VNAME);
        if ((st = one_dense(x, key, val, &cfg->spaces[cfg->n_spaces], cfg)) != 200)
            return st;
        cfg->n_spaces++;
    }
    if (sparse != NULL && !json_is_object(sparse))
        return rj_type_error(x, "sparse_vectors", "expected an object");
    json_object_foreach(sparse, key, val)
    {
        if (strlen(key) > PROTO_MAX_VNAME)
            return rx_fail(x, 400, "Wrong input: vector name `%.64s...` longer than %d bytes", key,
                           PROTO_MAX_VNAME);
        if (rv_space(cfg, key, strlen(key)) != NULL)
            return rx_fail(x, 400,
                           "Wrong input: `%s` names a dense and a sparse vector (names must "
                           "differ)",
                           key);
        if ((st = one_sparse(x, key, val, &cfg->spaces[cfg->n_spaces])) != 200)
            return st;
        cfg->n_spaces++;
    }
    if (cfg->n_spaces == 0)
        return rx_fail(x, 400,
                       "Wrong input: a collection needs at least one vector (`vectors` or "
                       "`sparse_vectors`)");
    cfg->dim = 0;
    cfg->metric = 0;
    return 200;
}

static int w_dense_params(struct buf *b, const struct msg_vspace *v)
{
    int rc = buf_appendf(b, "{\"size\":%u,\"distance\":\"%s\"", v->dim,
                         v->metric < 4 ? distance_names[v->metric] : "Euclid");
    if (rc == DV_OK)
        rc = buf_appendf(b, ",\"hnsw_config\":{\"m\":%u,\"ef_construct\":%u}", v->m,
                         v->ef_construction);
    if (rc == DV_OK && v->sq8)
        rc = jw_raw(b, ",\"quantization_config\":{\"scalar\":{\"type\":\"int8\",\"always_ram\":"
                       "true}}");
    if (rc == DV_OK && v->kind == KIND_MULTI)
        rc = jw_raw(b, ",\"multivector_config\":{\"comparator\":\"max_sim\"}");
    return rc == DV_OK ? jw_raw(b, "}") : rc;
}

int rv_write_cfg(struct buf *b, const struct msg_coll_cfg *c)
{
    int rc = jw_raw(b, "\"vectors\":{");
    bool first = true;
    for (uint32_t i = 0; i < c->n_spaces && rc == DV_OK; i++) {
        const struct msg_vspace *v = &c->spaces[i];
        if (v->kind == KIND_SPARSE)
            continue;
        if (!first)
            rc = jw_raw(b, ",");
        first = false;
        if (rc == DV_OK)
            rc = jw_str(b, v->name, strlen(v->name));
        if (rc == DV_OK)
            rc = jw_raw(b, ":");
        if (rc == DV_OK)
            rc = w_dense_params(b, v);
    }
    if (rc == DV_OK)
        rc = jw_raw(b, "},\"sparse_vectors\":{");
    first = true;
    for (uint32_t i = 0; i < c->n_spaces && rc == DV_OK; i++) {
        const struct msg_vspace *v = &c->spaces[i];
        if (v->kind != KIND_SPARSE)
            continue;
        if (!first)
            rc = jw_raw(b, ",");
        first = false;
        if (rc == DV_OK)
            rc = jw_str(b, v->name, strlen(v->name));
        if (rc == DV_OK)
            rc = buf_appendf(b, ":{\"index\":{\"on_disk\":false},\"modifier\":\"%s\"}",
                             v->idf ? "idf" : "none");
    }
    return rc == DV_OK ? jw_raw(b, "}") : rc;
}

/* ---- vectors of points ------------------------------------------------------------------- */

/* Numbers of a JSON array into out (n of them), checked finite float32. */
static int numbers(struct rx *x, json_t *a, const char *field, float *out)
{
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        double d;
        if (json_is_integer(e))
            d = (double)json_integer_value(e);
        else if (json_is_real(e))
            d = json_real_value(e);
        else
            return rx_fail(x, 400, "Format error in JSON body: %s[%zu]: expected a number", field,
                           i);
        if (!isfinite(d) || fabs(d) > FLT_MAX)
            return rx_fail(x, 400, "Wrong input: %s[%zu]: %g is not a finite float32", field, i, d);
        out[i] = (float)d;
    }
    return 200;
}

int rv_vector(struct rx *x, const struct msg_vspace *sp, json_t *v, const char *field,
              struct msg_nvec *out, struct rv_arena *a)
{
    int st;
    uint32_t kind = sp                                                        ? sp->kind
                    : json_is_object(v)                                       ? KIND_SPARSE
                    : json_is_array(v) && json_is_array(json_array_get(v, 0)) ? KIND_MULTI
                                                                              : KIND_DENSE;
    out->idx = NULL;
    if (kind == KIND_SPARSE) {
        json_t *ix = json_is_object(v) ? json_object_get(v, "indices") : NULL;
        json_t *vs = json_is_object(v) ? json_object_get(v, "values") : NULL;
        if (!json_is_array(ix) || !json_is_array(vs))
            return rj_type_error(x, field, "expected a sparse vector {indices, values}");
        size_t n = json_array_size(ix);
        if (n != json_array_size(vs))
            return rx_fail(x, 400,
                           "Wrong input: %s: indices and values must have the same length (%zu "
                           "and %zu)",
                           field, n, json_array_size(vs));
        if (n > 65536)
            return rx_fail(x, 400, "Wrong input: %s: %zu terms, at most 65536", field, n);
        out->idx = rv_alloc(a, n * sizeof *out->idx);
        out->v = rv_alloc(a, n * sizeof *out->v);
        if (out->idx == NULL || out->v == NULL)
            return oom(x);
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(ix, i);
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                json_integer_value(e) > UINT32_MAX)
                return rx_fail(x, 400,
                               "Format error in JSON body: %s.indices[%zu]: expected an integer "
                               "0 to 4294967295",
                               field, i);
            out->idx[i] = (uint32_t)json_integer_value(e);
        }
        char vf[128];
        snprintf(vf, sizeof vf, "%s.values", field);
        if ((st = numbers(x, vs, vf, out->v)) != 200)
            return st;
        out->n = out->nv = (uint32_t)n;
        return 200;
    }
    if (!json_is_array(v))
        return rj_type_error(x, field,
                             kind == KIND_MULTI ? "expected an array of vectors (a multivector)"
                                                : "expected an array of numbers (a dense vector)");
    if (kind == KIND_MULTI) {
        size_t rows = json_array_size(v);
        uint32_t dim = sp ? sp->dim : (uint32_t)json_array_size(json_array_get(v, 0));
        if (rows == 0 || rows > 4096)
            return rx_fail(x, 400, "Wrong input: %s: a multivector has 1 to 4096 rows, not %zu",
                           field, rows);
        out->v = rv_alloc(a, rows * dim * sizeof *out->v);
        if (out->v == NULL)
            return oom(x);
        for (size_t r = 0; r < rows; r++) {
            json_t *row = json_array_get(v, r);
            char rf[128];
            snprintf(rf, sizeof rf, "%s[%zu]", field, r);
            if (!json_is_array(row))
                return rj_type_error(x, rf, "expected an array of numbers");
            if (json_array_size(row) != dim)
                return rx_fail(
                    x, 400, "Wrong input: Vector dimension error: expected dim: %u, got %zu (%s)",
                    dim, json_array_size(row), rf);
            if ((st = numbers(x, row, rf, out->v + r * dim)) != 200)
                return st;
        }
        out->n = (uint32_t)rows;
        out->nv = (uint32_t)(rows * dim);
        return 200;
    }
    size_t n = json_array_size(v);
    if (n > PROTO_MAX_DIM)
        return rx_fail(x, 400, "Wrong input: %s: %zu values, at most %d", field, n, PROTO_MAX_DIM);
    if (sp && n != sp->dim)
        return rx_fail(x, 400, "Wrong input: Vector dimension error: expected dim: %u, got %zu",
                       sp->dim, n);
    out->v = rv_alloc(a, n * sizeof *out->v);
    if (out->v == NULL)
        return oom(x);
    out->n = out->nv = (uint32_t)n;
    return numbers(x, v, field, out->v);
}

int rv_point(struct rx *x, const struct msg_coll_cfg *cfg, json_t *v, const char *field,
             struct msg_nvecs *out, struct rv_arena *a)
{
    if (!json_is_object(v))
        return rj_type_error(x, field,
                             "expected an object of named vectors (the collection has named "
                             "vectors)");
    size_t n = json_object_size(v);
    out->n = 0;
    out->v = rv_alloc(a, (n ? n : 1) * sizeof *out->v);
    if (out->v == NULL)
        return oom(x);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        const struct msg_vspace *sp = rv_space(cfg, key, strlen(key));
        if (sp == NULL)
            return rx_fail(x, 400, "Wrong input: Not existing vector name error: %.64s", key);
        char f[PROTO_MAX_VNAME + 64];
        snprintf(f, sizeof f, "%s.%s", field, key);
        struct msg_nvec *nv = &out->v[out->n];
        int st = rv_vector(x, sp, val, f, nv, a);
        if (st != 200)
            return st;
        nv->name = (struct msg_str){sp->name, (uint32_t)strlen(sp->name)};
        out->n++;
    }
    return 200;
}

int rv_batch(struct rx *x, const struct msg_coll_cfg *cfg, json_t *bv, uint32_t n,
             struct msg_nvecs *out, struct rv_arena *a)
{
    if (!json_is_object(bv))
        return rj_type_error(x, "batch.vectors",
                             "expected an object of named vector lists (the collection has named "
                             "vectors)");
    size_t nk = json_object_size(bv);
    for (uint32_t i = 0; i < n; i++) {
        out[i].n = 0;
        if ((out[i].v = rv_alloc(a, (nk ? nk : 1) * sizeof *out[i].v)) == NULL)
            return oom(x);
    }
    const char *key;
    json_t *list;
    json_object_foreach(bv, key, list)
    {
        const struct msg_vspace *sp = rv_space(cfg, key, strlen(key));
        if (sp == NULL)
            return rx_fail(x, 400, "Wrong input: Not existing vector name error: %.64s", key);
        if (!json_is_array(list) || json_array_size(list) != n)
            return rx_fail(x, 400, "Wrong input: batch.vectors.%s: one vector per id (%u) expected",
                           key, n);
        for (uint32_t i = 0; i < n; i++) {
            json_t *val = json_array_get(list, i);
            if (json_is_null(val))
                continue; /* this point lacks it */
            char f[PROTO_MAX_VNAME + 64];
            snprintf(f, sizeof f, "batch.vectors.%s[%u]", key, i);
            struct msg_nvec *nv = &out[i].v[out[i].n];
            int st = rv_vector(x, sp, val, f, nv, a);
            if (st != 200)
                return st;
            nv->name = (struct msg_str){sp->name, (uint32_t)strlen(sp->name)};
            out[i].n++;
        }
    }
    return 200;
}

/* ---- output ------------------------------------------------------------------------------ */

static bool selected(json_t *sel, const char *name, size_t len)
{
    if (sel == NULL || !json_is_array(sel))
        return true;
    for (size_t i = 0; i < json_array_size(sel); i++) {
        const char *s = json_string_value(json_array_get(sel, i));
        if (s && strlen(s) == len && memcmp(s, name, len) == 0)
            return true;
    }
    return false;
}

int rv_write_named(struct buf *b, const struct msg_nvecs *nv, const struct msg_coll_cfg *cfg,
                   json_t *sel)
{
    int rc = jw_raw(b, "{");
    bool first = true;
    for (uint32_t i = 0; i < nv->n && rc == DV_OK; i++) {
        const struct msg_nvec *v = &nv->v[i];
        if (!selected(sel, v->name.p, v->name.len))
            continue;
        const struct msg_vspace *sp = cfg ? rv_space(cfg, v->name.p, v->name.len) : NULL;
        if (!first)
            rc = jw_raw(b, ",");
        first = false;
        if (rc == DV_OK)
            rc = jw_str(b, v->name.p, v->name.len);
        if (rc == DV_OK)
            rc = jw_raw(b, ":");
        if (rc != DV_OK)
            break;
        if (v->idx != NULL || (sp && sp->kind == KIND_SPARSE)) {
            rc = jw_raw(b, "{\"indices\":[");
            for (uint32_t k = 0; k < v->n && rc == DV_OK; k++)
                rc = buf_appendf(b, k ? ",%" PRIu32 : "%" PRIu32, v->idx[k]);
            if (rc == DV_OK)
                rc = jw_raw(b, "],\"values\":");
            if (rc == DV_OK)
                rc = jw_vec(b, v->v, v->nv);
            if (rc == DV_OK)
                rc = jw_raw(b, "}");
        } else if (sp && sp->kind == KIND_MULTI && v->n > 0) {
            uint32_t dim = v->nv / v->n;
            rc = jw_raw(b, "[");
            for (uint32_t r = 0; r < v->n && rc == DV_OK; r++) {
                if (r)
                    rc = jw_raw(b, ",");
                if (rc == DV_OK)
                    rc = jw_vec(b, v->v + (size_t)r * dim, dim);
            }
            if (rc == DV_OK)
                rc = jw_raw(b, "]");
        } else {
            rc = jw_vec(b, v->v, v->nv);
        }
    }
    return rc == DV_OK ? jw_raw(b, "}") : rc;
}
