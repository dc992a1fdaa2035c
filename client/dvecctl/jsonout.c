/* jsonout.c - dvecctl's JSON output: pretty, sorted keys, floats in their shortest form. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int json_print(json_t *v, FILE *f)
{
    if (v == NULL)
        return -1;
    int rc = json_dumpf(v, f, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    json_decref(v);
    fputc('\n', f);
    return rc;
}

void fmt_float(char *buf, size_t len, float f)
{
    for (int p = 6; p <= 9; p++) {
        snprintf(buf, len, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f)
            return;
    }
}

json_t *json_float(float f)
{
    char b[32];
    fmt_float(b, sizeof b, f);
    return json_real(strtod(b, NULL));
}

json_t *json_vector(const float *v, uint32_t dim)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < dim; i++)
        json_array_append_new(a, json_float(v[i]));
    return a;
}

json_t *json_id(const dvec_id *id)
{
    if (!id->is_uuid && id->num <= INT64_MAX)
        return json_integer((json_int_t)id->num);
    char b[DVEC_ID_TEXT_MAX];
    dvec_id_format(id, b);
    return json_string(b);
}

json_t *json_record(const dvec_record *r, bool with_score)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "id", json_id(&r->id));
    if (with_score)
        json_object_set_new(o, "score", json_float(r->score));
    if (r->vector)
        json_object_set_new(o, "vector", json_vector(r->vector, r->dim));
    if (r->payload_json) {
        json_t *p = json_loads(r->payload_json, JSON_DECODE_ANY, NULL);
        json_object_set_new(o, "payload", p ? p : json_string(r->payload_json));
    }
    return o;
}

char *fmt_vector(const float *v, uint32_t dim)
{
    size_t cap = (size_t)dim * 18 + 3, o = 0;
    char *s = malloc(cap);
    if (s == NULL)
        return NULL;
    s[o++] = '[';
    for (uint32_t i = 0; i < dim; i++) {
        char b[32];
        fmt_float(b, sizeof b, v[i]);
        o += (size_t)snprintf(s + o, cap - o, "%s%s", i ? ", " : "", b);
    }
    s[o++] = ']';
    s[o] = '\0';
    return s;
}
