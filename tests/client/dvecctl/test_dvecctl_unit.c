/* test_dvecctl_unit.c - dvecctl's parts without a cluster: option parsing, the config file,
 * tables, the progress line, the .fvecs/.npy/.jsonl readers and JSON number output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "ctl.h"
#include "opts.h"
#include "progress.h"
#include "readers.h"
#include "table.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char p[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(p[i], sizeof p[i], "%s/%s", tmpdir, name);
    return p[i];
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_text(const char *path, const char *text)
{
    write_file(path, text, strlen(text));
}

/* rows x dim floats, value row * 10 + j; `bad_row` (if < rows) gets dimension dim + 1. */
static void write_fvecs(const char *path, uint32_t rows, uint32_t dim, uint32_t bad_row)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (uint32_t r = 0; r < rows; r++) {
        int32_t d = (int32_t)(r == bad_row ? dim + 1 : dim);
        fwrite(&d, 4, 1, f);
        for (int32_t j = 0; j < d; j++) {
            float v = (float)(r * 10 + (uint32_t)j);
            fwrite(&v, 4, 1, f);
        }
    }
    fclose(f);
}

/* A .npy v1 file with the given header dict and rows x dim floats (row * 10 + j). */
static void write_npy(const char *path, const char *dict, uint32_t rows, uint32_t dim,
                      int extra_bytes)
{
    char h[256];
    int n = snprintf(h, sizeof h, "%s", dict);
    /* Pad so that magic + 4 + header is a multiple of 64, ending in '\n'. */
    while ((10 + n + 1) % 64 != 0)
        h[n++] = ' ';
    h[n++] = '\n';
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    uint16_t hl = (uint16_t)n;
    fwrite(&hl, 2, 1, f);
    fwrite(h, 1, (size_t)n, f);
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t j = 0; j < dim; j++) {
            float v = (float)(r * 10 + j);
            fwrite(&v, 4, 1, f);
        }
    for (int i = 0; i < extra_bytes; i++)
        fputc(0, f);
    fclose(f);
}

/* ---- opts ------------------------------------------------------------------------------ */

static const struct opt_spec g_opts[] = {
    {"coordinators", OPT_VAL, "URLS", "x"},
    {"help", OPT_FLAG, NULL, "x"},
    {NULL, 0, NULL, NULL},
};
static const struct opt_spec l_opts[] = {
    {"k", OPT_VAL, "K", "x"},
    {"json", OPT_FLAG, NULL, "x"},
    {"filter", OPT_VAL, "JSON", "x"},
    {NULL, 0, NULL, NULL},
};

static void test_opts_parse(void **state)
{
    char *argv[] = {"docs", "--k", "5", "--json", "--filter={\"a\":1}", "7", "--", "--x", "-"};
    struct opts o;
    char msg[256];
    assert_int_equal(opts_parse(&o, g_opts, l_opts, 9, argv, msg, sizeof msg), 0);
    assert_int_equal(o.n_pos, 4);
    assert_string_equal(o.pos[0], "docs");
    assert_string_equal(o.pos[1], "7");
    assert_string_equal(o.pos[2], "--x");
    assert_string_equal(o.pos[3], "-");
    assert_string_equal(opts_get(&o, "k"), "5");
    assert_true(opts_has(&o, "json"));
    assert_string_equal(opts_get(&o, "filter"), "{\"a\":1}");
    assert_null(opts_get(&o, "coordinators"));
    uint32_t k = 10;
    assert_int_equal(opts_u32(&o, "k", 1, 100, &k, msg, sizeof msg), 0);
    assert_int_equal(k, 5);
    assert_int_equal(opts_u32(&o, "k", 6, 100, &k, msg, sizeof msg), CTL_EXIT_USAGE);
    assert_non_null(strstr(msg, "--k: 5 is out of range (6 .. 100)"));
}

static void test_opts_errors(void **state)
{
    struct opts o;
    char msg[256];
    char *a1[] = {"--nope"};
    assert_int_equal(opts_parse(&o, g_opts, l_opts, 1, a1, msg, sizeof msg), CTL_EXIT_USAGE);
    assert_string_equal(msg, "unknown option --nope");
    char *a2[] = {"x", "--k"};
    assert_int_equal(opts_parse(&o, g_opts, l_opts, 2, a2, msg, sizeof msg), CTL_EXIT_USAGE);
    assert_string_equal(msg, "option --k needs a value (K)");
    char *a3[] = {"--json=1"};
    assert_int_equal(opts_parse(&o, g_opts, l_opts, 1, a3, msg, sizeof msg), CTL_EXIT_USAGE);
    assert_string_equal(msg, "option --json takes no value");
    char *a4[] = {"-k", "3"};
    assert_int_equal(opts_parse(&o, g_opts, l_opts, 2, a4, msg, sizeof msg), CTL_EXIT_USAGE);
    assert_non_null(strstr(msg, "unknown option -k"));
    char *a5[] = {"--k", "abc"};
    assert_int_equal(opts_parse(&o, g_opts, l_opts, 2, a5, msg, sizeof msg), 0);
    uint64_t k = 0;
    assert_int_equal(opts_uint(&o, "k", 0, 10, &k, msg, sizeof msg), CTL_EXIT_USAGE);
    assert_string_equal(msg, "--k: expected a whole number, got 'abc'");
    char *a6[] = {"-h"};
    assert_int_equal(opts_parse(&o, g_opts, l_opts, 1, a6, msg, sizeof msg), 0);
    assert_true(opts_has(&o, "help"));
    uint64_t x;
    assert_false(parse_u64("-1", &x));
    assert_false(parse_u64("18446744073709551616", &x));
    assert_true(parse_u64("18446744073709551615", &x));
    assert_true(x == UINT64_MAX);
}

/* ---- conf ------------------------------------------------------------------------------ */

static void test_conf_file(void **state)
{
    char msg[256];
    char *urls;
    uint32_t t = 0;
    const char *p = tmp_path("c1.yaml");
    write_text(p, "# dvecctl\ncoordinators:\n  - tcp://127.0.0.1:1\n  - tcp://127.0.0.1:2\n"
                  "timeout_ms: 2500\n");
    assert_int_equal(conf_read_file(p, &urls, &t, msg, sizeof msg), 0);
    assert_string_equal(urls, "tcp://127.0.0.1:1,tcp://127.0.0.1:2");
    assert_int_equal(t, 2500);
    free(urls);
    write_text(p, "coordinators: tcp://a:1,tcp://b:2\n");
    assert_int_equal(conf_read_file(p, &urls, &t, msg, sizeof msg), 0);
    assert_string_equal(urls, "tcp://a:1,tcp://b:2");
    free(urls);
    write_text(p, "coordinators: [tcp://a:1]\ncoordinator: x\n");
    assert_int_equal(conf_read_file(p, &urls, &t, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "line 2: unknown key 'coordinator'"));
    write_text(p, "coordinators: [tcp://a:1\n");
    assert_int_equal(conf_read_file(p, &urls, &t, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "c1.yaml: line"));
    assert_int_equal(conf_read_file(tmp_path("nope.yaml"), &urls, &t, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "No such file"));
}

static void test_conf_resolve(void **state)
{
    char msg[256];
    struct conf c;
    const char *p = tmp_path("c2.yaml");
    write_text(p, "coordinators:\n  - tcp://file:1\n");
    setenv("HOME", tmpdir, 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("DVEC_COORDINATORS");
    assert_int_equal(conf_resolve(&c, NULL, NULL, msg, sizeof msg), 0);
    assert_string_equal(c.urls, CONF_DEFAULT_URLS);
    assert_string_equal(c.source, "default");
    conf_free(&c);
    assert_int_equal(conf_resolve(&c, NULL, p, msg, sizeof msg), 0);
    assert_string_equal(c.urls, "tcp://file:1");
    conf_free(&c);
    setenv("DVEC_COORDINATORS", "tcp://env:1", 1);
    assert_int_equal(conf_resolve(&c, NULL, p, msg, sizeof msg), 0);
    assert_string_equal(c.urls, "tcp://env:1");
    assert_string_equal(c.source, "DVEC_COORDINATORS");
    conf_free(&c);
    assert_int_equal(conf_resolve(&c, "tcp://flag:1", p, msg, sizeof msg), 0);
    assert_string_equal(c.urls, "tcp://flag:1");
    conf_free(&c);
    unsetenv("DVEC_COORDINATORS");
    /* The default path under $HOME/.config. */
    char d[512];
    snprintf(d, sizeof d, "%s/.config", tmpdir);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/.config/dvec", tmpdir);
    mkdir(d, 0700);
    write_text(tmp_path(".config/dvec/dvecctl.yaml"), "coordinators: [tcp://home:1]\n");
    assert_int_equal(conf_resolve(&c, NULL, NULL, msg, sizeof msg), 0);
    assert_string_equal(c.urls, "tcp://home:1");
    conf_free(&c);
    assert_int_equal(conf_resolve(&c, NULL, tmp_path("missing.yaml"), msg, sizeof msg), -1);
}

/* ---- table and progress ---------------------------------------------------------------- */

static void test_table(void **state)
{
    static const char *const hdr[] = {"NAME", ">POINTS", "NOTE"};
    struct table t;
    table_init(&t, 3, hdr);
    table_new_row(&t);
    table_cellf(&t, "%s", "docs");
    table_cellf(&t, "%d", 12345);
    table_cellf(&t, "%s", "x");
    table_new_row(&t);
    table_cellf(&t, "%s", "a-long-name");
    table_cellf(&t, "%d", 7);
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(table_print(&t, f), 0);
    fclose(f);
    assert_string_equal(buf, "NAME         POINTS  NOTE\n"
                             "docs          12345  x\n"
                             "a-long-name       7\n");
    free(buf);
    table_free(&t);
}

static void test_progress(void **state)
{
    char b[256];
    fmt_count(b, sizeof b, 0);
    assert_string_equal(b, "0");
    fmt_count(b, sizeof b, 1234567);
    assert_string_equal(b, "1,234,567");
    fmt_count(b, sizeof b, 100);
    assert_string_equal(b, "100");
    fmt_duration(b, sizeof b, 7.2);
    assert_string_equal(b, "0:07");
    fmt_duration(b, sizeof b, 3723);
    assert_string_equal(b, "1:02:03");
    fmt_duration(b, sizeof b, -1);
    assert_string_equal(b, "?");
    progress_format(b, sizeof b, 4500, 10000, -1, 3.0, 20);
    assert_string_equal(b, "[#########-----------]   45%  4,500/10,000 points  1,500/s  ETA 0:04");
    progress_format(b, sizeof b, 10, 0, -1, 1.0, 20);
    assert_string_equal(b, "10 points  10/s  ETA ?");
    progress_format(b, sizeof b, 500, 0, 0.5, 2.0, 4);
    assert_string_equal(b, "[##--]   50%  500 points  250/s  ETA 0:02");
}

/* ---- readers --------------------------------------------------------------------------- */

static void test_fvecs(void **state)
{
    char msg[512];
    const char *p = tmp_path("a.fvecs");
    write_fvecs(p, 10, 3, UINT32_MAX);
    struct reader *r;
    assert_int_equal(rd_open(p, RD_AUTO, 100, &r, msg, sizeof msg), 0);
    assert_int_equal(rd_dim(r), 3);
    assert_int_equal(rd_rows(r), 10);
    assert_string_equal(rd_unit(r), "row");
    struct rd_batch b;
    size_t sizes[] = {4, 4, 2};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rd_next(r, 4, 0, &b, msg, sizeof msg), (long)sizes[i]);
        assert_int_equal(b.first, (uint64_t)i * 4);
        assert_int_equal(b.last, (uint64_t)i * 4 + sizes[i] - 1);
        assert_int_equal(b.ids[0].num, 100 + (uint64_t)i * 4);
        assert_true(b.vecs[1] == (float)(i * 40 + 1));
        assert_null(b.payloads);
        rd_batch_free(&b);
    }
    assert_int_equal(rd_next(r, 4, 0, &b, msg, sizeof msg), 0);
    assert_int_equal(rd_offset(r), rd_size(r));
    rd_close(r);

    /* A byte budget smaller than a batch cuts it. */
    assert_int_equal(rd_open(p, RD_FVECS, 0, &r, msg, sizeof msg), 0);
    assert_int_equal(rd_next(r, 10, 3 * 36, &b, msg, sizeof msg), 3);
    rd_batch_free(&b);
    rd_close(r);

    float *v;
    uint32_t dim;
    assert_int_equal(rd_read_row(p, 7, &v, &dim, msg, sizeof msg), 0);
    assert_int_equal(dim, 3);
    assert_true(v[0] == 70 && v[2] == 72);
    free(v);
    assert_int_equal(rd_read_row(p, 10, &v, &dim, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "row 10 does not exist (10 rows)"));

    /* Row 5 has 4 dimensions: the size is not a whole number of rows. */
    write_fvecs(p, 10, 3, 5);
    assert_int_equal(rd_open(p, RD_AUTO, 0, &r, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "not a whole number of 3-dimensional rows"));
    /* Rows 4 and 5 as 2 and 4 dims: the size fits, row 4 is named. */
    FILE *f = fopen(p, "wb");
    int32_t d3 = 3, d2 = 2, d4 = 4;
    float z[4] = {0};
    for (int i = 0; i < 4; i++) {
        fwrite(&d3, 4, 1, f);
        fwrite(z, 4, 3, f);
    }
    fwrite(&d2, 4, 1, f);
    fwrite(z, 4, 2, f);
    fwrite(&d4, 4, 1, f);
    fwrite(z, 4, 4, f);
    fclose(f);
    assert_int_equal(rd_open(p, RD_AUTO, 0, &r, msg, sizeof msg), 0);
    assert_int_equal(rd_next(r, 100, 0, &b, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "row 4: dimension 2, but row 0 has 3"));
    rd_close(r);
    write_text(p, "");
    assert_int_equal(rd_open(p, RD_AUTO, 0, &r, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "empty file"));
    /* A NaN is caught with its row. */
    write_fvecs(p, 3, 2, UINT32_MAX);
    f = fopen(p, "r+b");
    fseek(f, 12 + 4 + 4, SEEK_SET);
    float nan = __builtin_nanf("");
    fwrite(&nan, 4, 1, f);
    fclose(f);
    assert_int_equal(rd_open(p, RD_AUTO, 0, &r, msg, sizeof msg), 0);
    assert_int_equal(rd_next(r, 100, 0, &b, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "row 1: component 1 is NaN"));
    rd_close(r);
}

static void test_npy(void **state)
{
    char msg[512];
    const char *p = tmp_path("a.npy");
    struct reader *r;
    struct rd_batch b;
    write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 4), }", 5, 4, 0);
    assert_int_equal(rd_open(p, RD_AUTO, 0, &r, msg, sizeof msg), 0);
    assert_int_equal(rd_dim(r), 4);
    assert_int_equal(rd_rows(r), 5);
    assert_int_equal(rd_next(r, 3, 0, &b, msg, sizeof msg), 3);
    assert_true(b.vecs[4 * 2 + 3] == 23);
    rd_batch_free(&b);
    assert_int_equal(rd_next(r, 3, 0, &b, msg, sizeof msg), 2);
    assert_int_equal(b.first, 3);
    assert_int_equal(b.ids[1].num, 4);
    rd_batch_free(&b);
    assert_int_equal(rd_next(r, 3, 0, &b, msg, sizeof msg), 0);
    rd_close(r);
    float *v;
    uint32_t dim;
    assert_int_equal(rd_read_row(p, 4, &v, &dim, msg, sizeof msg), 0);
    assert_true(v[0] == 40 && v[3] == 43 && dim == 4);
    free(v);

    struct {
        const char *dict;
        int extra;
        const char *want;
    } bad[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (5, 4), }", 0, "float64"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (5, 4), }", 0, "big-endian"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (5, 4), }", 0, "'<i4' is not"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (5, 4), }", 0, "Fortran"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (20,), }", 0, "is not 2-D"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5, 2, 2), }", 0, "is not 2-D"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6, 4), }", 0, "(truncated)"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5, 4), }", 3, "the file has 83"},
        {"{'fortran_order': False, 'shape': (5, 4), }", 0, "no 'descr'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_npy(p, bad[i].dict, 5, 4, bad[i].extra);
        assert_int_equal(rd_open(p, RD_AUTO, 0, &r, msg, sizeof msg), -1);
        if (strstr(msg, bad[i].want) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, msg, bad[i].want);
    }
    write_text(p, "not numpy at all");
    assert_int_equal(rd_open(p, RD_AUTO, 0, &r, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "not a .npy file"));
}

static void test_jsonl(void **state)
{
    char msg[512];
    const char *p = tmp_path("a.jsonl");
    struct reader *r;
    struct rd_batch b;
    write_text(p, "{\"id\": 1, \"vector\": [1, 2.5, -3], \"payload\": {\"k\": \"v\"}}\n"
                  "\n"
                  "{\"id\": \"550e8400-e29b-41d4-a716-446655440000\", \"vector\": [0,0,0]}\n"
                  "{\"id\": 3, \"vector\": [1,1,1], \"payload\": null}\n");
    assert_int_equal(rd_open(p, RD_AUTO, 0, &r, msg, sizeof msg), 0);
    assert_int_equal(rd_dim(r), 3);
    assert_int_equal(rd_rows(r), 0);
    assert_string_equal(rd_unit(r), "line");
    assert_int_equal(rd_next(r, 2, 0, &b, msg, sizeof msg), 2);
    assert_int_equal(b.first, 1);
    assert_int_equal(b.last, 3);
    assert_false(b.ids[0].is_uuid);
    assert_int_equal(b.ids[0].num, 1);
    assert_true(b.ids[1].is_uuid);
    assert_true(b.vecs[1] == 2.5f && b.vecs[2] == -3);
    assert_string_equal(b.payloads[0], "{\"k\":\"v\"}");
    assert_null(b.payloads[1]);
    rd_batch_free(&b);
    assert_int_equal(rd_next(r, 2, 0, &b, msg, sizeof msg), 1);
    assert_int_equal(b.first, 4);
    rd_batch_free(&b);
    assert_int_equal(rd_next(r, 2, 0, &b, msg, sizeof msg), 0);
    rd_close(r);

    struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"{\"id\": 1, \"vector\": [1]}\n{\"id\": 2, \"vector\": [1]\n", "line 2: not JSON"},
        {"{\"id\": 1, \"vector\": [1]}\n\n{\"id\": 2, \"vector\": [1, 2]}\n",
         "line 3: the vector has 2 dimensions, the file's first one has 1"},
        {"{\"id\": 1, \"vector\": [1], \"vectors\": []}\n", "line 1: unknown key \"vectors\""},
        {"{\"id\": -1, \"vector\": [1]}\n", "line 1: \"id\" must be"},
        {"{\"id\": \"abc\", \"vector\": [1]}\n", "line 1: \"id\" must be"},
        {"{\"vector\": [1]}\n", "line 1: no \"id\""},
        {"{\"id\": 1, \"vector\": [1, \"x\"]}\n", "line 1: vector[1] is not a finite"},
        {"{\"id\": 1, \"vector\": [1e39]}\n", "line 1: vector[0] is not a finite"},
        {"{\"id\": 1, \"vector\": [1], \"payload\": [1]}\n", "line 1: \"payload\" must be"},
        {"[1, 2]\n", "line 1: expected an object"},
        {"", "no points"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(p, bad[i].text);
        int rc = rd_open(p, RD_AUTO, 0, &r, msg, sizeof msg);
        if (rc == 0) {
            long n;
            while ((n = rd_next(r, 1, 0, &b, msg, sizeof msg)) > 0)
                rd_batch_free(&b);
            rd_close(r);
            rc = (int)n;
        }
        assert_int_equal(rc, -1);
        if (strstr(msg, bad[i].want) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, msg, bad[i].want);
    }
    /* The n-th point of a JSON Lines file. */
    write_text(p, "{\"id\": 1, \"vector\": [1, 2]}\n{\"id\": 2, \"vector\": [3, 4]}\n");
    float *v;
    uint32_t dim;
    assert_int_equal(rd_read_row(p, 1, &v, &dim, msg, sizeof msg), 0);
    assert_true(dim == 2 && v[0] == 3 && v[1] == 4);
    free(v);
    assert_int_equal(rd_read_row(p, 2, &v, &dim, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "point 2 does not exist"));
    assert_int_equal(rd_open(tmp_path("x.txt"), RD_AUTO, 0, &r, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "unknown format"));
}

static void test_vector_and_ivecs(void **state)
{
    char msg[256];
    float *v;
    uint32_t dim;
    assert_int_equal(rd_parse_vector("[0.5, -1, 2e1]", &v, &dim, msg, sizeof msg), 0);
    assert_true(dim == 3 && v[0] == 0.5f && v[1] == -1 && v[2] == 20);
    free(v);
    assert_int_equal(rd_parse_vector("[1, 2", &v, &dim, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "not JSON"));
    assert_int_equal(rd_parse_vector("[]", &v, &dim, msg, sizeof msg), -1);
    assert_int_equal(rd_parse_vector("{\"a\": 1}", &v, &dim, msg, sizeof msg), -1);
    assert_int_equal(rd_parse_vector("[1, true]", &v, &dim, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "element 1"));

    const char *p = tmp_path("g.ivecs");
    int32_t rows[2][3] = {{2, 7, 9}, {2, 1, 3}};
    write_file(p, rows, sizeof rows);
    int32_t *g;
    size_t n;
    assert_int_equal(rd_read_ivecs(p, &g, &n, &dim, msg, sizeof msg), 0);
    assert_true(n == 2 && dim == 2 && g[0] == 7 && g[3] == 3);
    free(g);
    write_file(p, rows, sizeof rows - 4);
    assert_int_equal(rd_read_ivecs(p, &g, &n, &dim, msg, sizeof msg), -1);

    const char *q = tmp_path("q.fvecs");
    write_fvecs(q, 6, 2, UINT32_MAX);
    float *all;
    assert_int_equal(rd_read_all(q, &all, &n, &dim, msg, sizeof msg), 0);
    assert_true(n == 6 && dim == 2 && all[11] == 51);
    free(all);
}

static void test_json_numbers(void **state)
{
    char b[32];
    fmt_float(b, sizeof b, 0.1f);
    assert_string_equal(b, "0.1");
    fmt_float(b, sizeof b, 1.0f / 3);
    assert_string_equal(b, "0.33333334");
    fmt_float(b, sizeof b, 2);
    assert_string_equal(b, "2");
    float v[] = {0.1f, -2.5f, 3};
    char *s = fmt_vector(v, 3);
    assert_string_equal(s, "[0.1, -2.5, 3]");
    free(s);
    json_t *a = json_vector(v, 3);
    char *t = json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(9));
    assert_string_equal(t, "[0.1,-2.5,3.0]");
    free(t);
    json_decref(a);
    dvec_id big = dvec_id_num(UINT64_MAX);
    json_t *id = json_id(&big);
    assert_true(json_is_string(id));
    assert_string_equal(json_string_value(id), "18446744073709551615");
    json_decref(id);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dvecctl-unit-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_parse),   cmocka_unit_test(test_opts_errors),
        cmocka_unit_test(test_conf_file),    cmocka_unit_test(test_conf_resolve),
        cmocka_unit_test(test_table),        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_fvecs),        cmocka_unit_test(test_npy),
        cmocka_unit_test(test_jsonl),        cmocka_unit_test(test_vector_and_ivecs),
        cmocka_unit_test(test_json_numbers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
