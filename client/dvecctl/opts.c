/* opts.c - dvecctl's command-line parser and the option part of its help text. */
#include "opts.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct opt_spec *find_spec(const struct opts *o, const char *name, size_t len,
                                        size_t *index)
{
    for (size_t i = 0; i < o->n_specs; i++) {
        if (strlen(o->specs[i]->name) == len && memcmp(o->specs[i]->name, name, len) == 0) {
            *index = i;
            return o->specs[i];
        }
    }
    return NULL;
}

int opts_parse(struct opts *o, const struct opt_spec *global, const struct opt_spec *local,
               int argc, char **argv, char *errmsg, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->tables[0] = global;
    o->tables[1] = local;
    for (int t = 0; t < 2; t++) {
        for (const struct opt_spec *s = o->tables[t]; s && s->name; s++) {
            assert(o->n_specs < OPTS_MAX);
            o->specs[o->n_specs++] = s;
        }
    }
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (o->n_pos == OPTS_POS_MAX) {
                snprintf(errmsg, errlen, "too many arguments (at most %d)", OPTS_POS_MAX);
                return CTL_EXIT_USAGE;
            }
            o->pos[o->n_pos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        /* -h is the one short option. */
        if (strcmp(a, "-h") == 0)
            a = "--help";
        if (a[1] != '-') {
            snprintf(errmsg, errlen, "unknown option %s (options are spelt --name)", a);
            return CTL_EXIT_USAGE;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        size_t idx;
        const struct opt_spec *s = find_spec(o, name, len, &idx);
        if (s == NULL) {
            snprintf(errmsg, errlen, "unknown option --%.*s", (int)len, name);
            return CTL_EXIT_USAGE;
        }
        if (s->kind == OPT_FLAG) {
            if (eq) {
                snprintf(errmsg, errlen, "option --%s takes no value", s->name);
                return CTL_EXIT_USAGE;
            }
            o->val[idx] = "";
        } else if (eq) {
            o->val[idx] = eq + 1;
        } else {
            if (i + 1 >= argc) {
                snprintf(errmsg, errlen, "option --%s needs a value (%s)", s->name,
                         s->metavar ? s->metavar : "VALUE");
                return CTL_EXIT_USAGE;
            }
            o->val[idx] = argv[++i];
        }
    }
    return CTL_EXIT_OK;
}

static size_t spec_index(const struct opts *o, const char *name)
{
    for (size_t i = 0; i < o->n_specs; i++)
        if (strcmp(o->specs[i]->name, name) == 0)
            return i;
    assert(!"option not declared");
    return 0;
}

const char *opts_get(const struct opts *o, const char *name)
{
    return o->val[spec_index(o, name)];
}

bool opts_has(const struct opts *o, const char *name)
{
    return opts_get(o, name) != NULL;
}

bool parse_u64(const char *text, uint64_t *out)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

int opts_uint(const struct opts *o, const char *name, uint64_t min, uint64_t max, uint64_t *out,
              char *errmsg, size_t errlen)
{
    const char *v = opts_get(o, name);
    if (v == NULL)
        return CTL_EXIT_OK;
    uint64_t x;
    if (!parse_u64(v, &x)) {
        snprintf(errmsg, errlen, "--%s: expected a whole number, got '%s'", name, v);
        return CTL_EXIT_USAGE;
    }
    if (x < min || x > max) {
        snprintf(errmsg, errlen, "--%s: %llu is out of range (%llu .. %llu)", name,
                 (unsigned long long)x, (unsigned long long)min, (unsigned long long)max);
        return CTL_EXIT_USAGE;
    }
    *out = x;
    return CTL_EXIT_OK;
}

int opts_u32(const struct opts *o, const char *name, uint32_t min, uint32_t max, uint32_t *out,
             char *errmsg, size_t errlen)
{
    uint64_t x = *out;
    int rc = opts_uint(o, name, min, max, &x, errmsg, errlen);
    if (rc == CTL_EXIT_OK)
        *out = (uint32_t)x;
    return rc;
}

int opts_seconds(const struct opts *o, const char *name, double *out, char *errmsg, size_t errlen)
{
    const char *v = opts_get(o, name);
    if (v == NULL)
        return CTL_EXIT_OK;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !isfinite(x) || x <= 0) {
        snprintf(errmsg, errlen, "--%s: expected a positive number of seconds, got '%s'", name, v);
        return CTL_EXIT_USAGE;
    }
    *out = x;
    return CTL_EXIT_OK;
}

void opts_help(FILE *f, const struct opt_spec *specs)
{
    for (const struct opt_spec *s = specs; s && s->name; s++) {
        char left[64];
        if (s->kind == OPT_FLAG)
            snprintf(left, sizeof left, "--%s", s->name);
        else
            snprintf(left, sizeof left, "--%s %s", s->name, s->metavar ? s->metavar : "VALUE");
        if (strlen(left) < 26)
            fprintf(f, "  %-26s %s\n", left, s->help);
        else
            fprintf(f, "  %s\n  %-26s %s\n", left, "", s->help);
    }
}
