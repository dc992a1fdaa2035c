/* ctl.h - what dvecctl's commands share: the command table entry, the connection, error and
 * usage reporting, JSON output. */
#ifndef DVECCTL_CTL_H
#define DVECCTL_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "conf.h"
#include "dvec.h"
#include "opts.h"

struct ctl {
    struct conf conf;
    uint32_t timeout_ms;       /* per call; 0: the SDK's default */
    uint32_t read_consistency; /* --read-consistency (dvec_set_read_consistency); 0: default */
    dvec_client *client;       /* connected on first use (ctl_client) */
};

struct cmd;
typedef int (*cmd_fn)(struct ctl *ctl, const struct cmd *cmd, const struct opts *o);

/* One command or subcommand. */
struct cmd {
    const char *name;    /* "collections create" */
    const char *args;    /* "NAME --dim D [options]" */
    const char *summary; /* one line for the command list */
    const char *help;    /* paragraphs for --help, may be NULL */
    const struct opt_spec *opts;
    size_t min_pos, max_pos; /* positional arguments */
    cmd_fn run;
};

extern const struct cmd cmd_status, cmd_coll_create, cmd_coll_list, cmd_coll_info, cmd_coll_drop,
    cmd_coll_set, cmd_coll_verify, cmd_points_load, cmd_search, cmd_get, cmd_delete, cmd_count,
    cmd_bench, cmd_rb_plan, cmd_rb_apply, cmd_rb_status, cmd_rb_pause, cmd_rb_resume, cmd_rb_set,
    cmd_node_add, cmd_node_drain, cmd_node_undrain, cmd_node_remove, cmd_node_weight, cmd_coord_add,
    cmd_coord_remove, cmd_alias_create, cmd_alias_delete, cmd_alias_rename, cmd_alias_list;

/* The options every command takes (--coordinators, --config, --timeout, --help). */
extern const struct opt_spec ctl_global_opts[];

/* Connects (once) to the coordinators; on failure prints the error and returns
 * CTL_EXIT_FAIL. */
int ctl_client(struct ctl *ctl, dvec_client **out);
/* Runs admin op `op` with `args` (taken, may be NULL) on the leader; *out gets its JSON answer.
 * On failure prints the error and returns CTL_EXIT_FAIL. */
int ctl_admin(struct ctl *ctl, const char *op, json_t *args, json_t **out);
/* Opens another client to one coordinator URL (status asks each coordinator). */
int ctl_client_for(const struct ctl *ctl, const char *url, uint32_t timeout_ms, dvec_client **out,
                   dvec_error *err);

/* "dvecctl: <message>" on stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints an SDK error (its message names the collection, point or coordinator) and returns
 * CTL_EXIT_FAIL; ctl_failf puts what was being done in front. */
int ctl_fail(const dvec_error *e);
int ctl_failf(const dvec_error *e, const char *what_fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a usage error, the command's usage line and a --help hint; returns CTL_EXIT_USAGE. */
int ctl_usage(const struct cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Seconds on the monotonic clock. */
double ctl_now(void);

/* ---- JSON output (jsonout.c) ----------------------------------------------------------- */

/* Writes v (reference stolen) pretty-printed with sorted keys and a newline; -1 on failure. */
int json_print(json_t *v, FILE *f);
/* A float as the double of its shortest decimal form (prints as 0.1, not 0.100000001). */
json_t *json_float(float f);
json_t *json_vector(const float *v, uint32_t dim);
/* An id: a JSON integer (a string above 2^63-1), or the UUID string. */
json_t *json_id(const dvec_id *id);
/* A record of get/search: {"id", "score" (when with_score), "vector", "payload"}. */
json_t *json_record(const dvec_record *r, bool with_score);
/* A float in its shortest decimal form. */
void fmt_float(char *buf, size_t len, float f);
/* A vector as "[0.1, 2, 3]" into a malloc'd string (NULL on out of memory). */
char *fmt_vector(const float *v, uint32_t dim);

/* ---- shared by several commands -------------------------------------------------------- */

const char *metric_name(dvec_metric m);
const char *fsync_name(dvec_fsync f);
/* The collection options of create and points load --create (rows of a struct opt_spec
 * table). */
// clang-format off
#define COLL_CFG_OPTS \
    {"metric", OPT_VAL, "METRIC", "euclid (default), dot, cosine or manhattan"}, \
    {"m", OPT_VAL, "M", "HNSW links per node (default 16)"}, \
    {"ef-construction", OPT_VAL, "N", "HNSW build candidates (default 200)"}, \
    {"ef", OPT_VAL, "N", "default search ef (default 64)"}, \
    {"partitions", OPT_VAL, "P", "partitions (default one per alive node)"}, \
    {"replication", OPT_VAL, "R", "replicas per partition (default 1)"}, \
    {"write-consistency-factor", OPT_VAL, "W", "in-sync replicas a write needs (default 1)"}, \
    {"fsync", OPT_VAL, "MODE", "always (default), batch or never"}, \
    {"sq8", OPT_FLAG, NULL, "SQ8-quantized search walk with float re-ranking"}
// clang-format on

/* Parses the collection options of create (and of points load --create) into cfg (dim set
 * by the caller); CTL_EXIT_USAGE with a message on a bad value. */
int coll_cfg_from_opts(const struct opts *o, dvec_collection_config *cfg, char *errmsg,
                       size_t errlen);
/* Parses the ID... arguments from pos[from..]; CTL_EXIT_USAGE with a message on a bad id. */
int ids_from_args(const struct opts *o, size_t from, dvec_id **ids, size_t *n, char *errmsg,
                  size_t errlen);

#endif
