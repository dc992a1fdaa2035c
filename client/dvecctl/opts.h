/* opts.h - dvecctl's command-line parser: --name value / --name=value options anywhere among
 * the positional arguments, flags, "--" to end options, help text made from the same table. */
#ifndef DVECCTL_OPTS_H
#define DVECCTL_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of every command. */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAIL = 1,  /* the operation failed (the server's message, a bad input file) */
    CTL_EXIT_USAGE = 2, /* a bad command line */
};

enum opt_kind {
    OPT_FLAG, /* no value */
    OPT_VAL,  /* one value: --name V or --name=V */
};

struct opt_spec {
    const char *name;    /* without the dashes; NULL ends a table */
    enum opt_kind kind;  /* */
    const char *metavar; /* the value's name in help ("N", "FILE") */
    const char *help;
};

#define OPTS_MAX     64
#define OPTS_POS_MAX 4096

/* The parsed command line. Values point into argv (valid as long as argv). */
struct opts {
    const struct opt_spec *tables[2];
    size_t n_specs;
    const struct opt_spec *specs[OPTS_MAX];
    const char *val[OPTS_MAX]; /* the value, or "" for a flag that was given; NULL: not given */
    const char *pos[OPTS_POS_MAX];
    size_t n_pos;
};

/*
 * Parses argv[0..argc) against the options of `global` and `local` (either may be NULL).
 * On error returns CTL_EXIT_USAGE with the message in errmsg ("unknown option --x").
 */
int opts_parse(struct opts *o, const struct opt_spec *global, const struct opt_spec *local,
               int argc, char **argv, char *errmsg, size_t errlen);

/* The value of option `name` (NULL: not given). Asking for a name not in the tables asserts. */
const char *opts_get(const struct opts *o, const char *name);
bool opts_has(const struct opts *o, const char *name);

/*
 * Parses option `name` as an unsigned integer in [min, max]; keeps *out when the option is
 * absent. Returns CTL_EXIT_USAGE with a message on a bad value.
 */
int opts_uint(const struct opts *o, const char *name, uint64_t min, uint64_t max, uint64_t *out,
              char *errmsg, size_t errlen);
int opts_u32(const struct opts *o, const char *name, uint32_t min, uint32_t max, uint32_t *out,
             char *errmsg, size_t errlen);
/* Parses a positive number of seconds (may have a fraction). */
int opts_seconds(const struct opts *o, const char *name, double *out, char *errmsg, size_t errlen);

/* Parses text as an unsigned decimal integer; false when it is not one (or overflows). */
bool parse_u64(const char *text, uint64_t *out);

/* Prints the options of a table in help format ("  --name N   help"). */
void opts_help(FILE *f, const struct opt_spec *specs);

#endif
