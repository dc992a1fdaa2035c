/* test_cfg.c - YAML config loading: types, units, nesting, exact error messages, flags, help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "err.h"

enum fsync_mode { FSYNC_ALWAYS, FSYNC_BATCH, FSYNC_NEVER };

struct conf {
    char *listen;
    int64_t workers;
    uint64_t max_points;
    double ratio;
    bool verbose;
    int fsync;
    struct cfg_strlist peers;
    uint64_t interval;
    uint64_t cache;
    char *data_dir;
    int64_t offset;
};

static const char *const fsync_values[] = {"always", "batch", "never", NULL};

#define F(k, t, m) .key = k, .type = t, .offset = offsetof(struct conf, m)
static const struct cfg_field schema[] = {
    {F("listen", CFG_STRING, listen), .def = "tcp://127.0.0.1:7700", .doc = "Listen address."},
    {F("workers", CFG_INT64, workers), .def = "4", .min = "1", .max = "1024",
     .doc = "Worker threads."},
    {F("max_points", CFG_UINT64, max_points), .def = "1000000", .doc = "Point limit."},
    {F("ratio", CFG_DOUBLE, ratio), .def = "0.5", .min = "0", .max = "1", .doc = "A ratio."},
    {F("verbose", CFG_BOOL, verbose), .doc = "Say more."},
    {F("wal.fsync", CFG_ENUM, fsync), .def = "batch", .values = fsync_values,
     .doc = "When the WAL is fsynced."},
    {F("peers", CFG_STRLIST, peers), .def = "a,b", .doc = "Peer addresses."},
    {F("checkpoint.interval", CFG_DURATION, interval), .def = "5s", .min = "1ms", .max = "1h",
     .doc = "Time between checkpoints."},
    {F("checkpoint.cache", CFG_BYTES, cache), .def = "64MiB", .doc = "Cache size."},
    {F("data_dir", CFG_STRING, data_dir), .doc = "Data directory."},
    {F("offset", CFG_INT64, offset), .def = "-5", .doc = "A signed value."},
    {.key = NULL},
};

static struct conf c;
static char err[DV_ERRMSG_SIZE];

static int setup(void **state)
{
    err[0] = '\0';
    return cfg_defaults(schema, &c) == DV_OK ? 0 : -1;
}

static int teardown(void **state)
{
    cfg_free(schema, &c);
    return 0;
}

static int load(const char *text)
{
    err[0] = '\0';
    return cfg_load_string(schema, &c, text, strlen(text), err);
}

static void test_schema_valid(void **state)
{
    assert_int_equal(cfg_check_schema(schema, err), DV_OK);
}

static void test_defaults(void **state)
{
    assert_string_equal(c.listen, "tcp://127.0.0.1:7700");
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.max_points, 1000000);
    assert_true(c.ratio == 0.5);
    assert_false(c.verbose);
    assert_int_equal(c.fsync, FSYNC_BATCH);
    assert_int_equal(c.peers.n, 2);
    assert_string_equal(c.peers.items[0], "a");
    assert_string_equal(c.peers.items[1], "b");
    assert_int_equal(c.interval, 5000000000ULL);
    assert_int_equal(c.cache, 64ULL << 20);
    assert_null(c.data_dir);
    assert_int_equal(c.offset, -5);
}

static void test_load_full(void **state)
{
    const char *y = "# a full file\n"
                    "listen: \"tcp://0.0.0.0:9000\"\n"
                    "workers: 16\n"
                    "max_points: 0x10\n"
                    "ratio: 0.25\n"
                    "verbose: yes\n"
                    "wal:\n"
                    "  fsync: always\n"
                    "peers:\n"
                    "  - n1:7701\n"
                    "  - n2:7701\n"
                    "  - n3:7701\n"
                    "checkpoint:\n"
                    "  interval: 250ms\n"
                    "  cache: 1GB\n"
                    "data_dir: /var/lib/dvec\n"
                    "offset: -9223372036854775808\n";
    assert_int_equal(load(y), DV_OK);
    assert_string_equal(c.listen, "tcp://0.0.0.0:9000");
    assert_int_equal(c.workers, 16);
    assert_int_equal(c.max_points, 16);
    assert_true(c.ratio == 0.25);
    assert_true(c.verbose);
    assert_int_equal(c.fsync, FSYNC_ALWAYS);
    assert_int_equal(c.peers.n, 3);
    assert_string_equal(c.peers.items[2], "n3:7701");
    assert_int_equal(c.interval, 250000000ULL);
    assert_int_equal(c.cache, 1000000000ULL);
    assert_string_equal(c.data_dir, "/var/lib/dvec");
    assert_int_equal(c.offset, INT64_MIN);
}

/* Dotted keys at the top level, flow syntax, nulls, and keys absent keep their values. */
static void test_load_forms(void **state)
{
    assert_int_equal(load("checkpoint.interval: 2m\npeers: [x, \"y z\"]\nwal: {fsync: never}\n"),
                     DV_OK);
    assert_int_equal(c.interval, 120000000000ULL);
    assert_int_equal(c.peers.n, 2);
    assert_string_equal(c.peers.items[1], "y z");
    assert_int_equal(c.fsync, FSYNC_NEVER);
    assert_int_equal(c.workers, 4);
    assert_int_equal(load("peers: []\nlisten: ~\ncheckpoint:\n"), DV_OK);
    assert_int_equal(c.peers.n, 0);
    assert_null(c.listen);
    /* A quoted empty string is a string, not a null. */
    assert_int_equal(load("data_dir: ''\n"), DV_OK);
    assert_string_equal(c.data_dir, "");
    /* Empty text, comments only, or a bare null document change nothing. */
    assert_int_equal(load(""), DV_OK);
    assert_int_equal(load("# nothing here\n"), DV_OK);
    assert_int_equal(load("~\n"), DV_OK);
    assert_int_equal(c.workers, 4);
}

static void test_bools(void **state)
{
    static const char *t[] = {"true", "True", "YES", "on"}, *f[] = {"false", "No", "OFF"};
    char y[64];
    for (size_t i = 0; i < 4; i++) {
        snprintf(y, sizeof y, "verbose: %s\n", t[i]);
        assert_int_equal(load(y), DV_OK);
        assert_true(c.verbose);
    }
    for (size_t i = 0; i < 3; i++) {
        snprintf(y, sizeof y, "verbose: %s\n", f[i]);
        assert_int_equal(load(y), DV_OK);
        assert_false(c.verbose);
    }
    assert_int_equal(load("verbose: 1\n"), DV_ETYPE);
    assert_string_equal(err, "line 1, column 10: key 'verbose': expected a boolean (true or "
                             "false), got '1'");
}

static void expect_err(const char *yaml, int code, const char *msg)
{
    int rc = load(yaml);
    if (rc != code || strcmp(err, msg) != 0)
        fail_msg("yaml:\n%s\ngot %s \"%s\"\nwant %s \"%s\"", yaml, dv_errname(rc), err,
                 dv_errname(code), msg);
}

static void test_errors(void **state)
{
    expect_err("workers: 2\n# comment\nlistn: x\n", DV_EUNKNOWN_KEY,
               "line 3, column 1: unknown key 'listn' (did you mean 'listen'?)");
    expect_err("colour: red\n", DV_EUNKNOWN_KEY, "line 1, column 1: unknown key 'colour'");
    expect_err("checkpoint:\n  intervl: 5s\n", DV_EUNKNOWN_KEY,
               "line 2, column 3: unknown key 'checkpoint.intervl' (did you mean "
               "'checkpoint.interval'?)");
    expect_err("listen: a\nverbose: no\nratio: 0.1\n\nworkers: abc\n", DV_ETYPE,
               "line 5, column 10: key 'workers': expected an integer, got 'abc'");
    expect_err("workers: 0\n", DV_ERANGE,
               "line 1, column 10: key 'workers': value '0' is below the minimum 1");
    expect_err("workers: 1025\n", DV_ERANGE,
               "line 1, column 10: key 'workers': value '1025' is above the maximum 1024");
    expect_err("workers: 99999999999999999999\n", DV_ERANGE,
               "line 1, column 10: key 'workers': value '99999999999999999999' is out of "
               "range for type int");
    expect_err("max_points: -1\n", DV_ETYPE,
               "line 1, column 13: key 'max_points': expected a non-negative integer, got '-1'");
    expect_err("ratio: 1.5\n", DV_ERANGE,
               "line 1, column 8: key 'ratio': value '1.5' is above the maximum 1");
    expect_err("ratio: nan\n", DV_ETYPE,
               "line 1, column 8: key 'ratio': expected a number, "
               "got 'nan'");
    expect_err("wal:\n  fsync: sometimes\n", DV_ERANGE,
               "line 2, column 10: key 'wal.fsync': expected one of always, batch, never; got "
               "'sometimes'");
    expect_err("workers: 1\nlisten: x\nworkers: 2\n", DV_EPARSE,
               "line 3, column 1: duplicate key 'workers' (first at line 1)");
    expect_err("wal.fsync: never\nwal:\n  fsync: always\n", DV_EPARSE,
               "line 3, column 3: duplicate key 'wal.fsync' (first at line 1)");
    expect_err("- a\n- b\n", DV_ETYPE,
               "line 1, column 1: the top level must be a mapping of keys, got a list");
    expect_err("just text\n", DV_ETYPE,
               "line 1, column 1: the top level must be a mapping of keys, got a scalar");
    expect_err("checkpoint: 5\n", DV_ETYPE,
               "line 1, column 13: key 'checkpoint': expected a mapping of keys, got a scalar");
    expect_err("workers:\n  a: 1\n", DV_ETYPE,
               "line 2, column 3: key 'workers': expected an integer, got a mapping");
    expect_err("workers:\n", DV_ETYPE,
               "line 1, column 9: key 'workers': expected an integer, got an empty value");
    expect_err("peers: x\n", DV_ETYPE,
               "line 1, column 8: key 'peers': expected a list of strings, got 'x'");
    expect_err("peers:\n  - a\n  - [b]\n", DV_ETYPE,
               "line 3, column 5: key 'peers': list items must be strings, got a list");
    expect_err("checkpoint:\n  interval: 5\n", DV_ETYPE,
               "line 2, column 13: key 'checkpoint.interval': expected a duration such as "
               "250ms, 5s or 2m, got '5'");
    expect_err("checkpoint:\n  interval: 2h\n", DV_ERANGE,
               "line 2, column 13: key 'checkpoint.interval': value '2h' is above the maximum "
               "1h");
    expect_err("checkpoint.cache: 12 parsecs\n", DV_ETYPE,
               "line 1, column 19: key 'checkpoint.cache': expected a byte size such as 4096, "
               "64MiB or 1GB, got '12 parsecs'");
    expect_err("workers: 1\n---\nworkers: 2\n", DV_EPARSE,
               "line 3, column 1: expected a single YAML document");
    expect_err("[1, 2]: x\n", DV_ETYPE, "line 1, column 1: keys must be strings, got a list");
}

/* Syntax errors carry libyaml's own position and problem. */
static void test_syntax_errors(void **state)
{
    assert_int_equal(load("workers: [1, 2\n"), DV_EPARSE);
    assert_string_equal(err, "line 2, column 1: did not find expected ',' or ']' while parsing a "
                             "flow sequence");
    assert_int_equal(load("listen: a\n  workers: 2\n"), DV_EPARSE);
    assert_string_equal(err, "line 2, column 10: mapping values are not allowed in this context");
    assert_int_equal(load("listen: \"open\n"), DV_EPARSE);
    assert_non_null(strstr(err, "found unexpected end of stream"));
    assert_int_equal(strncmp(err, "line 2, column 1: ", 18), 0);
}

/* A file with an error changes nothing, even keys that came before the error. */
static void test_all_or_nothing(void **state)
{
    assert_int_equal(load("workers: 9\nlisten: changed\npeers: [p]\nratio: 7\n"), DV_ERANGE);
    assert_int_equal(c.workers, 4);
    assert_string_equal(c.listen, "tcp://127.0.0.1:7700");
    assert_int_equal(c.peers.n, 2);
    assert_true(c.ratio == 0.5);
}

static void check_set(const char *key, const char *val, uint64_t want)
{
    int rc = cfg_set(schema, &c, key, val, err);
    if (rc != DV_OK)
        fail_msg("%s=%s: %s", key, val, err);
    uint64_t got = strcmp(key, "checkpoint.cache") == 0 ? c.cache : c.interval;
    if (got != want)
        fail_msg("%s=%s: got %llu want %llu", key, val, (unsigned long long)got,
                 (unsigned long long)want);
}

static void test_units(void **state)
{
    const char *d = "checkpoint.interval", *b = "checkpoint.cache";
    check_set(d, "250ms", 250000000ULL);
    check_set(d, "1.5s", 1500000000ULL);
    check_set(d, "2m", 120000000000ULL);
    check_set(d, "1h", 3600000000000ULL);
    check_set(d, "1m30s", 90000000000ULL);
    check_set(d, "1000us", 1000000ULL);
    check_set(d, "1000000ns", 1000000ULL);
    check_set(d, "1.5ms", 1500000ULL);
    assert_int_equal(cfg_set(schema, &c, d, "0", err), DV_ERANGE); /* below 1ms */
    assert_int_equal(cfg_set(schema, &c, d, "5", err), DV_ETYPE);
    assert_int_equal(cfg_set(schema, &c, d, "5 s", err), DV_ETYPE);
    assert_int_equal(cfg_set(schema, &c, d, "-1s", err), DV_ETYPE);
    assert_int_equal(cfg_set(schema, &c, d, "ms", err), DV_ETYPE);
    assert_int_equal(cfg_set(schema, &c, d, "1d", err), DV_ETYPE);
    assert_int_equal(cfg_set(schema, &c, d, "", err), DV_ETYPE);

    check_set(b, "4096", 4096);
    check_set(b, "0", 0);
    check_set(b, "1B", 1);
    check_set(b, "64KiB", 65536);
    check_set(b, "64MiB", 64ULL << 20);
    check_set(b, "2GiB", 2ULL << 30);
    check_set(b, "1TiB", 1ULL << 40);
    check_set(b, "1KB", 1000);
    check_set(b, "1GB", 1000000000ULL);
    check_set(b, "1.5KiB", 1536);
    check_set(b, "10 mb", 10000000ULL);
    check_set(b, "17179869183GiB", 17179869183ULL << 30);
    assert_int_equal(cfg_set(schema, &c, b, "17179869184TiB", err), DV_ERANGE);
    assert_string_equal(err, "key 'checkpoint.cache': value '17179869184TiB' is out of range for "
                             "type size");
    assert_int_equal(cfg_set(schema, &c, b, "1XB", err), DV_ETYPE);
    assert_int_equal(cfg_set(schema, &c, b, "MiB", err), DV_ETYPE);
    assert_int_equal(cfg_set(schema, &c, b, "-1", err), DV_ETYPE);
}

/* Flags are applied after the file, so they win; errors name the key. */
static void test_flags_override_file(void **state)
{
    assert_int_equal(load("workers: 8\nlisten: file\n"), DV_OK);
    assert_int_equal(cfg_set(schema, &c, "workers", "16", err), DV_OK);
    assert_int_equal(cfg_set_arg(schema, &c, "listen=flag", err), DV_OK);
    assert_int_equal(c.workers, 16);
    assert_string_equal(c.listen, "flag");
    assert_int_equal(cfg_set_arg(schema, &c, "wal.fsync=never", err), DV_OK);
    assert_int_equal(c.fsync, FSYNC_NEVER);
    assert_int_equal(cfg_set(schema, &c, "peers", " x , y,z ", err), DV_OK);
    assert_int_equal(c.peers.n, 3);
    assert_string_equal(c.peers.items[0], "x");
    assert_string_equal(c.peers.items[2], "z");
    assert_int_equal(cfg_set(schema, &c, "peers", "[u, v]", err), DV_OK);
    assert_int_equal(c.peers.n, 2);
    assert_string_equal(c.peers.items[1], "v");
    assert_int_equal(cfg_set(schema, &c, "peers", "", err), DV_OK);
    assert_int_equal(c.peers.n, 0);
    assert_int_equal(cfg_set(schema, &c, "peers", "a,,b", err), DV_ETYPE);
    assert_int_equal(cfg_set(schema, &c, "verbose", "on", err), DV_OK);
    assert_true(c.verbose);

    assert_int_equal(cfg_set(schema, &c, "wokers", "3", err), DV_EUNKNOWN_KEY);
    assert_string_equal(err, "unknown key 'wokers' (did you mean 'workers'?)");
    assert_int_equal(cfg_set(schema, &c, "workers", "many", err), DV_ETYPE);
    assert_string_equal(err, "key 'workers': expected an integer, got 'many'");
    assert_int_equal(cfg_set(schema, &c, "workers", "0", err), DV_ERANGE);
    assert_string_equal(err, "key 'workers': value '0' is below the minimum 1");
    assert_int_equal(cfg_set(schema, &c, "wal.fsync", "Always", err), DV_ERANGE);
    assert_string_equal(err, "key 'wal.fsync': expected one of always, batch, never; got "
                             "'Always'");
    assert_int_equal(cfg_set_arg(schema, &c, "workers", err), DV_EINVAL);
    assert_string_equal(err, "expected key=value, got 'workers'");
    /* Failed sets leave the value alone. */
    assert_int_equal(c.workers, 16);
    assert_int_equal(c.fsync, FSYNC_NEVER);
    assert_non_null(cfg_find(schema, "checkpoint.cache"));
    assert_null(cfg_find(schema, "checkpoint"));
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/dvec-test-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *y = "workers: 12\nlistn: x\n";
    assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    assert_int_equal(cfg_load_file(schema, &c, path, err), DV_EUNKNOWN_KEY);
    char want[DV_ERRMSG_SIZE];
    snprintf(want, sizeof want,
             "%s: line 2, column 1: unknown key 'listn' (did you mean "
             "'listen'?)",
             path);
    assert_string_equal(err, want);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("workers: 12\ncheckpoint:\n  cache: 1MiB\n", f);
    fclose(f);
    assert_int_equal(cfg_load_file(schema, &c, path, err), DV_OK);
    assert_int_equal(c.workers, 12);
    assert_int_equal(c.cache, 1ULL << 20);
    unlink(path);

    assert_int_equal(cfg_load_file(schema, &c, "/nonexistent/dvec.yaml", err), DV_EOS);
    assert_string_equal(err, "/nonexistent/dvec.yaml: No such file or directory");
    /* errmsg may be NULL. */
    assert_int_equal(cfg_load_file(schema, &c, "/nonexistent/dvec.yaml", NULL), DV_EOS);
}

static void test_help(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cfg_print_help(schema, f);
    fclose(f);
    /* One header plus one line per key, each naming its key, type and default. */
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 12);
    assert_non_null(strstr(text, "KEY"));
    for (const struct cfg_field *fl = schema; fl->key != NULL; fl++)
        assert_non_null(strstr(text, fl->key));
    assert_non_null(strstr(text, "\"tcp://127.0.0.1:7700\""));
    assert_non_null(strstr(text, "Worker threads. Range 1..1024."));
    assert_non_null(strstr(text, "When the WAL is fsynced. One of: always, batch, never."));
    assert_non_null(strstr(text, "duration"));
    assert_non_null(strstr(text, "64MiB"));
    assert_non_null(strstr(text, "[a,b]"));
    char *line = strstr(text, "\ndata_dir");
    assert_non_null(line);
    assert_non_null(strstr(line, "(none)"));
    free(text);
}

static void test_bad_schemas(void **state)
{
    struct conf x;
    static const char *const none[] = {NULL};
    const struct cfg_field dup[] = {
        {F("a", CFG_INT64, workers)}, {F("a", CFG_INT64, offset)}, {.key = NULL}};
    const struct cfg_field clash[] = {
        {F("a", CFG_INT64, workers)}, {F("a.b", CFG_INT64, offset)}, {.key = NULL}};
    const struct cfg_field baddef[] = {{F("a", CFG_DURATION, interval), .def = "5"}, {.key = NULL}};
    const struct cfg_field outdef[] = {{F("a", CFG_INT64, workers), .def = "0", .min = "1"},
                                       {.key = NULL}};
    const struct cfg_field noenum[] = {{F("a", CFG_ENUM, fsync), .values = none}, {.key = NULL}};
    const struct cfg_field badkey[] = {{F("a..b", CFG_INT64, workers)}, {.key = NULL}};
    const struct cfg_field minmax[] = {{F("a", CFG_INT64, workers), .min = "5", .max = "1"},
                                       {.key = NULL}};

    assert_int_equal(cfg_check_schema(dup, err), DV_EINVAL);
    assert_string_equal(err, "schema: duplicate key 'a'");
    assert_int_equal(cfg_check_schema(clash, err), DV_EINVAL);
    assert_string_equal(err, "schema: key 'a' is also a section of other keys");
    assert_int_equal(cfg_check_schema(baddef, err), DV_EINVAL);
    assert_string_equal(err, "schema: key 'a': default: expected a duration such as 250ms, 5s "
                             "or 2m, got '5'");
    assert_int_equal(cfg_defaults(baddef, &x), DV_EINVAL);
    assert_int_equal(cfg_check_schema(outdef, err), DV_EINVAL);
    assert_int_equal(cfg_check_schema(noenum, err), DV_EINVAL);
    assert_int_equal(cfg_check_schema(badkey, err), DV_EINVAL);
    assert_int_equal(cfg_check_schema(minmax, err), DV_EINVAL);
}

static void test_free_twice(void **state)
{
    assert_int_equal(load("data_dir: /x\npeers: [a, b, c]\n"), DV_OK);
    cfg_free(schema, &c);
    assert_null(c.listen);
    assert_null(c.data_dir);
    assert_int_equal(c.peers.n, 0);
    cfg_free(schema, &c);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_schema_valid),        T(test_defaults),       T(test_load_full),
        T(test_load_forms),          T(test_bools),          T(test_errors),
        T(test_syntax_errors),       T(test_all_or_nothing), T(test_units),
        T(test_flags_override_file), T(test_load_file),      T(test_help),
        T(test_bad_schemas),         T(test_free_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
