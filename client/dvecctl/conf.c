/* conf.c - dvecctl's coordinator list and its YAML config file (libyaml's document API). */
#include "conf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "opts.h"

int conf_default_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0])
        n = snprintf(buf, len, "%s/dvec/dvecctl.yaml", xdg);
    else if (home && home[0])
        n = snprintf(buf, len, "%s/.config/dvec/dvecctl.yaml", home);
    else
        return -1;
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Appends `s` to the comma-separated list *list (malloc'd, grown). */
static int append_url(char **list, const char *s)
{
    size_t have = *list ? strlen(*list) : 0, add = strlen(s);
    char *p = realloc(*list, have + add + 2);
    if (p == NULL)
        return -1;
    if (have)
        p[have++] = ',';
    memcpy(p + have, s, add + 1);
    *list = p;
    return 0;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int conf_read_file(const char *path, char **urls, uint32_t *timeout_ms, char *errmsg, size_t errlen)
{
    *urls = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(errmsg, errlen, "config %s: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = -1;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(errmsg, errlen, "config %s: out of memory", path);
        fclose(f);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(errmsg, errlen, "config %s: line %zu: %s", path,
                 (size_t)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "YAML syntax error");
        goto err_parser;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) { /* an empty file: nothing set */
        rc = 0;
        goto out_doc;
    }
    if (root->type != YAML_MAPPING_NODE) {
        snprintf(errmsg, errlen, "config %s: expected a mapping (coordinators: [...])", path);
        goto out_doc;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        const char *key = scalar(k);
        size_t line = k ? (size_t)k->start_mark.line + 1 : 0;
        if (key == NULL) {
            snprintf(errmsg, errlen, "config %s: line %zu: keys must be plain names", path, line);
            goto out_doc;
        }
        if (strcmp(key, "coordinators") == 0) {
            free(*urls);
            *urls = NULL;
            if (v->type == YAML_SCALAR_NODE) {
                if (scalar(v)[0] && append_url(urls, scalar(v)) != 0)
                    goto err_nomem;
            } else if (v->type == YAML_SEQUENCE_NODE) {
                for (yaml_node_item_t *it = v->data.sequence.items.start;
                     it < v->data.sequence.items.top; it++) {
                    const char *u = scalar(yaml_document_get_node(&doc, *it));
                    if (u == NULL || u[0] == '\0') {
                        snprintf(errmsg, errlen,
                                 "config %s: line %zu: coordinators: each item must be a URL", path,
                                 line);
                        goto out_doc;
                    }
                    if (append_url(urls, u) != 0)
                        goto err_nomem;
                }
            } else {
                snprintf(errmsg, errlen,
                         "config %s: line %zu: coordinators: expected a list of URLs", path, line);
                goto out_doc;
            }
        } else if (strcmp(key, "timeout_ms") == 0) {
            uint64_t t;
            if (!parse_u64(scalar(v), &t) || t == 0 || t > UINT32_MAX) {
                snprintf(errmsg, errlen,
                         "config %s: line %zu: timeout_ms: expected a positive whole number", path,
                         line);
                goto out_doc;
            }
            *timeout_ms = (uint32_t)t;
        } else {
            snprintf(errmsg, errlen,
                     "config %s: line %zu: unknown key '%s' (known: coordinators, timeout_ms)",
                     path, line, key);
            goto out_doc;
        }
    }
    rc = 0;
    goto out_doc;
err_nomem:
    snprintf(errmsg, errlen, "config %s: out of memory", path);
out_doc:
    yaml_document_delete(&doc);
err_parser:
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc != 0) {
        free(*urls);
        *urls = NULL;
    }
    return rc;
}

int conf_resolve(struct conf *c, const char *flag, const char *config_path, char *errmsg,
                 size_t errlen)
{
    memset(c, 0, sizeof *c);
    char path[4096];
    char *file_urls = NULL;
    bool have_file = false;
    if (config_path) {
        snprintf(path, sizeof path, "%s", config_path);
        have_file = true;
    } else if (conf_default_path(path, sizeof path) == 0) {
        FILE *f = fopen(path, "rb");
        have_file = f != NULL;
        if (f)
            fclose(f);
    }
    if (have_file && conf_read_file(path, &file_urls, &c->timeout_ms, errmsg, errlen) != 0)
        return -1;
    const char *env = getenv("DVEC_COORDINATORS");
    const char *pick;
    if (flag && flag[0]) {
        pick = flag;
        c->source = "--coordinators";
    } else if (env && env[0]) {
        pick = env;
        c->source = "DVEC_COORDINATORS";
    } else if (file_urls) {
        pick = file_urls;
        snprintf(c->source_buf, sizeof c->source_buf, "%s", path);
        c->source = c->source_buf;
    } else {
        pick = CONF_DEFAULT_URLS;
        c->source = "default";
    }
    c->urls = strdup(pick);
    free(file_urls);
    if (c->urls == NULL) {
        snprintf(errmsg, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void conf_free(struct conf *c)
{
    free(c->urls);
    c->urls = NULL;
}
