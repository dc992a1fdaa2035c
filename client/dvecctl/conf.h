/* conf.h - where dvecctl finds its coordinators: --coordinators, DVEC_COORDINATORS, a YAML
 * config file (--config FILE or ~/.config/dvec/dvecctl.yaml), the default. */
#ifndef DVECCTL_CONF_H
#define DVECCTL_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_DEFAULT_URLS "tcp://127.0.0.1:7300"

struct conf {
    char *urls;         /* comma-separated, malloc'd */
    const char *source; /* "--coordinators", "DVEC_COORDINATORS", the file's path, "default" */
    char source_buf[4096];
    uint32_t timeout_ms; /* from the file's timeout_ms (0: not given) */
};

/*
 * Reads a dvecctl config file: a YAML mapping with `coordinators:` (a list of URLs, or one
 * comma-separated string) and optionally `timeout_ms:`. Unknown keys are errors (typos).
 * *urls (malloc'd, comma-separated) is NULL when the file names none. Returns 0, or -1 with
 * a message naming the file and line.
 */
int conf_read_file(const char *path, char **urls, uint32_t *timeout_ms, char *errmsg,
                   size_t errlen);

/*
 * Resolves the coordinators: flag (may be NULL), else env DVEC_COORDINATORS, else the config
 * file (config_path, or the default path when NULL; a missing default file is skipped, a
 * missing named one is an error), else CONF_DEFAULT_URLS. The file's timeout_ms is read
 * whenever a file is read. Returns 0, or -1 with a message. Free with conf_free.
 */
int conf_resolve(struct conf *c, const char *flag, const char *config_path, char *errmsg,
                 size_t errlen);
void conf_free(struct conf *c);

/* The default config path ($XDG_CONFIG_HOME or ~/.config, then dvec/dvecctl.yaml) in buf;
 * -1 when neither XDG_CONFIG_HOME nor HOME is set. */
int conf_default_path(char *buf, size_t len);

#endif
