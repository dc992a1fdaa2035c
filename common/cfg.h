/* cfg.h - YAML configuration files loaded into typed C structs from a declared schema. */
#ifndef DV_CFG_H
#define DV_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Types of configuration values, and the C type of the struct member each one fills:
 *   CFG_BOOL     bool         true/false, yes/no, on/off (any case)
 *   CFG_INT64    int64_t      decimal or 0x hex
 *   CFG_UINT64   uint64_t     decimal or 0x hex, no sign
 *   CFG_DOUBLE   double       finite number
 *   CFG_STRING   char *       owned (malloc'd); NULL when unset
 *   CFG_ENUM     int          index of the value in the field's `values`
 *   CFG_STRLIST  struct cfg_strlist   owned list of owned strings
 *   CFG_DURATION uint64_t     nanoseconds; written "250ms", "5s", "2m", "1h30m", "1.5s", "0"
 *   CFG_BYTES    uint64_t     bytes; written "4096", "64KiB", "64MiB", "1GB", "1.5GiB"
 */
enum cfg_type {
    CFG_BOOL,
    CFG_INT64,
    CFG_UINT64,
    CFG_DOUBLE,
    CFG_STRING,
    CFG_ENUM,
    CFG_STRLIST,
    CFG_DURATION,
    CFG_BYTES,
};

struct cfg_strlist {
    char **items;
    size_t n;
};

/*
 * One configuration key. A schema is an array of these ended by an entry whose key is NULL.
 * Texts (def, min, max) are written in the file syntax of the type, so "250ms" or "64MiB"
 * work as defaults and bounds. A list default is comma-separated ("a,b").
 */
struct cfg_field {
    const char *key;           /* dotted path of nested mappings: "checkpoint.interval" */
    enum cfg_type type;        /* what the value is and which C type the member has */
    size_t offset;             /* offsetof(struct ..., member) */
    const char *def;           /* default; NULL: false / 0 / NULL / empty / first enum value */
    const char *min, *max;     /* inclusive bounds for numbers, durations, sizes; NULL: none */
    const char *const *values; /* CFG_ENUM: allowed values, NULL-terminated */
    const char *doc;           /* one line for --help and docs */
};

/*
 * Checks a schema for mistakes of our own: duplicate or malformed keys, a key that is also
 * a section of another, defaults or bounds that do not parse, defaults out of range, empty
 * enums. DV_EINVAL with a message naming the key. Each process should test its schema.
 */
int cfg_check_schema(const struct cfg_field *schema, char *errmsg);

/*
 * Fills every field of `obj` with its default. Overwrites without freeing: call it on a
 * fresh struct, or after cfg_free(). DV_EINVAL if a default does not parse (see
 * cfg_check_schema), DV_ENOMEM; on error obj owns nothing.
 */
int cfg_defaults(const struct cfg_field *schema, void *obj);

/*
 * Loads YAML text into `obj`, which must hold values from cfg_defaults() (keys absent from
 * the text keep them). All or nothing: on error obj is unchanged and `errmsg`
 * (DV_ERRMSG_SIZE bytes, may be NULL) says "line L, column C: ...". Returns:
 *   DV_EPARSE        YAML syntax error, duplicate key, more than one document
 *   DV_EUNKNOWN_KEY  a key not in the schema (with a suggestion when one is close)
 *   DV_ETYPE         a value of the wrong type, a root or section that is not a mapping
 *   DV_ERANGE        a number out of its bounds or too big for its type, a value not in
 *                    an enum's list
 *   DV_ENOMEM
 * An empty text changes nothing.
 */
int cfg_load_string(const struct cfg_field *schema, void *obj, const char *text, size_t len,
                    char *errmsg);

/* cfg_load_string() on a file's contents; messages start with the path. DV_EOS if the file
 * cannot be read. */
int cfg_load_file(const struct cfg_field *schema, void *obj, const char *path, char *errmsg);

/*
 * Sets one key from text, as a command-line flag does (flags are applied after the file, so
 * they win). Lists are comma-separated ("a,b,c", optionally in brackets; "" is empty).
 * Same codes as cfg_load_string(), messages without a position. On error obj is unchanged.
 */
int cfg_set(const struct cfg_field *schema, void *obj, const char *key, const char *value,
            char *errmsg);

/* cfg_set() from one "key=value" argument. DV_EINVAL if there is no '='. */
int cfg_set_arg(const struct cfg_field *schema, void *obj, const char *arg, char *errmsg);

/* The field with this exact key, or NULL. */
const struct cfg_field *cfg_find(const struct cfg_field *schema, const char *key);

/* Writes a table of every key with its type, default, bounds or allowed values, and doc. */
void cfg_print_help(const struct cfg_field *schema, FILE *f);

/* Frees the strings and lists `obj` owns and zeroes them. Safe to call twice. */
void cfg_free(const struct cfg_field *schema, void *obj);

/* Name of a type as shown in help and messages: "bool", "int", "duration", ... */
const char *cfg_type_name(enum cfg_type type);

#endif
