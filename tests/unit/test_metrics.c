/* test_metrics.c - exact exposition text, escaping, cumulative buckets, collectors, name
 * checks, exact sums under 4 threads, and promtool's verdict on a full registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "metrics.h"

/* Renders `reg` into a fresh string the caller frees. */
static char *render(struct metrics *reg)
{
    struct buf b = BUF_INIT;
    assert_int_equal(metrics_render(reg, &b), DV_OK);
    char *s = (char *)buf_detach(&b, NULL);
    return s ? s : strdup("");
}

static void test_counter_and_gauge_text(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    struct metrics_counter *ok, *err, *again;
    struct metrics_gauge *g;
    const char *l1[] = {"op", "search", "outcome", "ok", NULL};
    const char *l2[] = {"op", "upsert", "outcome", "error", NULL};
    assert_int_equal(metrics_counter(reg, "dvec_requests", "Requests handled.", l1, &ok, NULL),
                     DV_OK);
    assert_int_equal(metrics_counter(reg, "dvec_requests", "Requests handled.", l2, &err, NULL),
                     DV_OK);
    assert_int_equal(metrics_gauge(reg, "dvec_replicas", "Replicas held.", NULL, &g, NULL), DV_OK);
    /* The same name and labels give the same series; "_total" is the same family. */
    assert_int_equal(
        metrics_counter(reg, "dvec_requests_total", "Requests handled.", l1, &again, NULL), DV_OK);
    assert_ptr_equal(again, ok);
    assert_ptr_not_equal(err, ok);

    metrics_counter_add(ok, 3);
    metrics_counter_inc(err);
    metrics_gauge_set(g, 9);
    metrics_gauge_add(g, -2);
    assert_int_equal(metrics_counter_value(ok), 3);
    assert_true(metrics_gauge_value(g) == 7.0);

    char *s = render(reg);
    assert_string_equal(s, "# HELP dvec_requests_total Requests handled.\n"
                           "# TYPE dvec_requests_total counter\n"
                           "dvec_requests_total{op=\"search\",outcome=\"ok\"} 3\n"
                           "dvec_requests_total{op=\"upsert\",outcome=\"error\"} 1\n"
                           "# HELP dvec_replicas Replicas held.\n"
                           "# TYPE dvec_replicas gauge\n"
                           "dvec_replicas 7\n");
    free(s);

    /* Rendering appends to what the buffer holds. */
    struct buf b = BUF_INIT;
    assert_int_equal(buf_appendf(&b, "head\n"), DV_OK);
    assert_int_equal(metrics_render(reg, &b), DV_OK);
    assert_memory_equal(b.data, "head\n# HELP dvec_requests_total", 31);
    buf_free(&b);
    metrics_free(reg);
}

static void test_escaping(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    struct metrics_gauge *g;
    const char *l[] = {"path", "C:\\dir \"x\"\nnext", NULL};
    assert_int_equal(metrics_gauge(reg, "odd", "Help with \\ and\nnewline \"kept\".", l, &g, NULL),
                     DV_OK);
    metrics_gauge_set(g, 1);
    char *s = render(reg);
    assert_string_equal(s, "# HELP odd Help with \\\\ and\\nnewline \"kept\".\n"
                           "# TYPE odd gauge\n"
                           "odd{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
    free(s);
    metrics_free(reg);
}

static void test_value_format(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    static const double vals[] = {0.1, 1e20, -2.5, 1.0 / 3, NAN, INFINITY, -INFINITY, 12345678};
    static const char *const want[] = {
        "0.1", "1e+20", "-2.5", "0.3333333333333333", "NaN", "+Inf", "-Inf", "12345678",
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char idx[8];
        snprintf(idx, sizeof idx, "%zu", i);
        const char *l[] = {"i", idx, NULL};
        struct metrics_gauge *g;
        assert_int_equal(metrics_gauge(reg, "v", "Values.", l, &g, NULL), DV_OK);
        metrics_gauge_set(g, vals[i]);
    }
    char *s = render(reg);
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "v{i=\"%zu\"} %s\n", i, want[i]);
        assert_non_null(strstr(s, line));
    }
    free(s);
    metrics_free(reg);
}

static void test_histogram_cumulative(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    struct metrics_histogram *h, *h2;
    const double bounds[] = {0.1, 0.5, 1};
    const char *l[] = {"op", "search", NULL};
    assert_int_equal(
        metrics_histogram(reg, "dvec_latency_seconds", "Latency.", bounds, 3, l, &h, NULL), DV_OK);
    /* 0.1 sits on a bound: le is inclusive. NaN is ignored. */
    const double obs[] = {0.05, 0.1, 0.3, 2, 100, NAN};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        metrics_histogram_observe(h, obs[i]);
    assert_int_equal(metrics_histogram_count(h), 5);
    /* A series without labels in the same family needs the same label names. */
    assert_int_equal(
        metrics_histogram(reg, "dvec_latency_seconds", "Latency.", bounds, 3, NULL, &h2, NULL),
        DV_EINVAL);
    const char *l2[] = {"op", "get", NULL};
    assert_int_equal(
        metrics_histogram(reg, "dvec_latency_seconds", "Latency.", bounds, 3, l2, &h2, NULL),
        DV_OK);
    char *s = render(reg);
    assert_string_equal(s, "# HELP dvec_latency_seconds Latency.\n"
                           "# TYPE dvec_latency_seconds histogram\n"
                           "dvec_latency_seconds_bucket{op=\"search\",le=\"0.1\"} 2\n"
                           "dvec_latency_seconds_bucket{op=\"search\",le=\"0.5\"} 3\n"
                           "dvec_latency_seconds_bucket{op=\"search\",le=\"1\"} 3\n"
                           "dvec_latency_seconds_bucket{op=\"search\",le=\"+Inf\"} 5\n"
                           "dvec_latency_seconds_sum{op=\"search\"} 102.45\n"
                           "dvec_latency_seconds_count{op=\"search\"} 5\n"
                           "dvec_latency_seconds_bucket{op=\"get\",le=\"0.1\"} 0\n"
                           "dvec_latency_seconds_bucket{op=\"get\",le=\"0.5\"} 0\n"
                           "dvec_latency_seconds_bucket{op=\"get\",le=\"1\"} 0\n"
                           "dvec_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 0\n"
                           "dvec_latency_seconds_sum{op=\"get\"} 0\n"
                           "dvec_latency_seconds_count{op=\"get\"} 0\n");
    free(s);
    metrics_free(reg);
}

static void test_default_buckets(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    struct metrics_histogram *h;
    assert_int_equal(metrics_histogram(reg, "t_seconds", "T.", NULL, 0, NULL, &h, NULL), DV_OK);
    metrics_histogram_observe(h, 0.00005);
    metrics_histogram_observe(h, 0.003);
    metrics_histogram_observe(h, 11);
    char *s = render(reg);
    assert_non_null(strstr(s, "t_seconds_bucket{le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(s, "t_seconds_bucket{le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(s, "t_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(s, "t_seconds_bucket{le=\"10\"} 2\n"));
    assert_non_null(strstr(s, "t_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(s, "t_seconds_count 3\n"));
    /* One line per bound plus +Inf. */
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, "_bucket{")) != NULL; p++)
        n++;
    assert_int_equal(n, metrics_latency_nbuckets + 1);
    assert_true(metrics_latency_buckets[0] == 0.0001);
    assert_true(metrics_latency_buckets[metrics_latency_nbuckets - 1] == 10);
    free(s);
    metrics_free(reg);
}

/* Every bad name or shape is DV_EINVAL with a message, and nothing is registered. */
static void test_invalid(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    char msg[DV_ERRMSG_SIZE];
    struct metrics_counter *c;
    struct metrics_gauge *g;
    struct metrics_histogram *h;

    static const char *const bad_names[] = {"", "1abc", "a-b", "a b", "é", "a.b"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        msg[0] = '\0';
        assert_int_equal(metrics_gauge(reg, bad_names[i], "h", NULL, &g, msg), DV_EINVAL);
        assert_non_null(strstr(msg, "invalid metric name"));
    }
    assert_int_equal(metrics_gauge(reg, NULL, "h", NULL, &g, msg), DV_EINVAL);
    assert_int_equal(metrics_gauge(reg, "ok:name_1", "h", NULL, &g, msg), DV_OK);

    const char *bad_labels[][5] = {
        {"1x", "v", NULL},  {"a-b", "v", NULL},         {"le", "v", NULL},
        {"__x", "v", NULL}, {"a", "1", "a", "2", NULL}, {"", "v", NULL},
    };
    for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++) {
        msg[0] = '\0';
        assert_int_equal(metrics_gauge(reg, "lbl", "h", bad_labels[i], &g, msg), DV_EINVAL);
        assert_true(strstr(msg, "label") != NULL);
    }
    /* A name without its value. */
    const char *odd[] = {"a", NULL};
    assert_int_equal(metrics_gauge(reg, "lbl", "h", odd, &g, msg), DV_EINVAL);
    assert_non_null(strstr(msg, "has no value"));

    /* One family name, one type, one help, one set of label names. */
    assert_int_equal(metrics_counter(reg, "x", "X.", NULL, &c, msg), DV_OK); /* x_total */
    assert_int_equal(metrics_gauge(reg, "x_total", "X.", NULL, &g, msg), DV_EINVAL);
    assert_non_null(strstr(msg, "type"));
    assert_int_equal(metrics_counter(reg, "x", "Other.", NULL, &c, msg), DV_EINVAL);
    assert_non_null(strstr(msg, "help"));
    const char *la[] = {"a", "1", NULL};
    assert_int_equal(metrics_counter(reg, "x", "X.", la, &c, msg), DV_EINVAL);
    assert_non_null(strstr(msg, "label names"));

    /* A histogram exposes _bucket, _sum and _count: nothing else may use those names. */
    assert_int_equal(metrics_histogram(reg, "lat", "L.", NULL, 0, NULL, &h, msg), DV_OK);
    assert_int_equal(metrics_gauge(reg, "lat_count", "C.", NULL, &g, msg), DV_EINVAL);
    assert_non_null(strstr(msg, "clashes"));
    assert_int_equal(metrics_gauge(reg, "dur_sum", "S.", NULL, &g, msg), DV_OK);
    assert_int_equal(metrics_histogram(reg, "dur", "D.", NULL, 0, NULL, &h, msg), DV_EINVAL);
    const double other[] = {1, 2};
    assert_int_equal(metrics_histogram(reg, "lat", "L.", other, 2, NULL, &h, msg), DV_EINVAL);
    assert_non_null(strstr(msg, "buckets"));

    /* Bounds: ascending, finite, 1..METRICS_MAX_BUCKETS of them. */
    const double desc[] = {1, 0.5}, same[] = {1, 1}, inf[] = {1, INFINITY}, nan[] = {NAN};
    assert_int_equal(metrics_histogram(reg, "b1", "B.", desc, 2, NULL, &h, msg), DV_EINVAL);
    assert_non_null(strstr(msg, "ascending"));
    assert_int_equal(metrics_histogram(reg, "b2", "B.", same, 2, NULL, &h, msg), DV_EINVAL);
    assert_int_equal(metrics_histogram(reg, "b3", "B.", inf, 2, NULL, &h, msg), DV_EINVAL);
    assert_non_null(strstr(msg, "finite"));
    assert_int_equal(metrics_histogram(reg, "b4", "B.", nan, 1, NULL, &h, msg), DV_EINVAL);
    assert_int_equal(metrics_histogram(reg, "b5", "B.", desc, 0, NULL, &h, msg), DV_EINVAL);
    double many[METRICS_MAX_BUCKETS + 1];
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = (double)i;
    assert_int_equal(
        metrics_histogram(reg, "b6", "B.", many, METRICS_MAX_BUCKETS + 1, NULL, &h, msg),
        DV_EINVAL);
    assert_int_equal(metrics_histogram(reg, "b6", "B.", many, METRICS_MAX_BUCKETS, NULL, &h, msg),
                     DV_OK);

    /* Nothing that failed shows up. */
    char *s = render(reg);
    assert_null(strstr(s, "lbl"));
    assert_null(strstr(s, "# TYPE lat_count"));
    assert_null(strstr(s, "# TYPE dur "));
    assert_null(strstr(s, "b1"));
    free(s);
    metrics_free(reg);
}

/* Collector used by the tests: emits what its spec says. */
struct emitter {
    const char *name;
    enum metrics_type type;
    const char *label_value; /* label "replica" */
    double value;
    int rc_emit;  /* what metrics_emit returned */
    int rc_after; /* what the collector returns */
};

static int collect_one(void *arg, struct metrics_writer *w)
{
    struct emitter *e = arg;
    const char *l[] = {"replica", e->label_value, NULL};
    e->rc_emit = metrics_emit(w, e->type, e->name, "Points held.", l, e->value);
    return e->rc_after;
}

static void test_collectors_grouped(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    struct metrics_gauge *g;
    const char *l[] = {"replica", "0", NULL};
    assert_int_equal(metrics_gauge(reg, "dvec_points", "Points held.", l, &g, NULL), DV_OK);
    metrics_gauge_set(g, 10);
    struct emitter e1 = {"dvec_points", METRICS_GAUGE, "1", 11, 0, 0};
    struct emitter e2 = {"dvec_wal_bytes", METRICS_GAUGE, "1", 4096, 0, 0};
    struct emitter e3 = {"dvec_points", METRICS_GAUGE, "2", 12, 0, 0};
    struct emitter e4 = {"dvec_wal_bytes", METRICS_GAUGE, "2", 8192, 0, 0};
    struct emitter e5 = {"dvec_checkpoints", METRICS_COUNTER, "2", 3, 0, 0};
    assert_int_equal(metrics_add_collector(reg, collect_one, &e1), DV_OK);
    assert_int_equal(metrics_add_collector(reg, collect_one, &e2), DV_OK);
    assert_int_equal(metrics_add_collector(reg, collect_one, &e3), DV_OK);
    assert_int_equal(metrics_add_collector(reg, collect_one, &e4), DV_OK);
    assert_int_equal(metrics_add_collector(reg, collect_one, &e5), DV_OK);
    char *s = render(reg);
    assert_int_equal(e1.rc_emit, DV_OK);
    assert_int_equal(e5.rc_emit, DV_OK);
    assert_string_equal(s, "# HELP dvec_points Points held.\n"
                           "# TYPE dvec_points gauge\n"
                           "dvec_points{replica=\"0\"} 10\n"
                           "dvec_points{replica=\"1\"} 11\n"
                           "dvec_points{replica=\"2\"} 12\n"
                           "# HELP dvec_wal_bytes Points held.\n"
                           "# TYPE dvec_wal_bytes gauge\n"
                           "dvec_wal_bytes{replica=\"1\"} 4096\n"
                           "dvec_wal_bytes{replica=\"2\"} 8192\n"
                           "# HELP dvec_checkpoints_total Points held.\n"
                           "# TYPE dvec_checkpoints_total counter\n"
                           "dvec_checkpoints_total{replica=\"2\"} 3\n");
    free(s);

    /* Removed collectors no longer run; a second render starts afresh. */
    assert_int_equal(metrics_remove_collector(reg, collect_one, &e2), DV_OK);
    assert_int_equal(metrics_remove_collector(reg, collect_one, &e4), DV_OK);
    assert_int_equal(metrics_remove_collector(reg, collect_one, &e4), DV_ENOTFOUND);
    e3.value = 13;
    s = render(reg);
    assert_null(strstr(s, "wal_bytes"));
    assert_non_null(strstr(s, "dvec_points{replica=\"2\"} 13\n"));
    assert_non_null(strstr(s, "dvec_checkpoints_total{replica=\"2\"} 3\n"));
    free(s);
    metrics_free(reg);
}

static void test_collector_errors(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    struct metrics_gauge *g;
    const char *l[] = {"replica", "0", NULL};
    assert_int_equal(metrics_gauge(reg, "dvec_points", "Points held.", l, &g, NULL), DV_OK);

    /* A label set the registered family already has: dropped, the render goes on. */
    struct emitter dup = {"dvec_points", METRICS_GAUGE, "0", 5, 0, 0};
    assert_int_equal(metrics_add_collector(reg, collect_one, &dup), DV_OK);
    char *s = render(reg);
    assert_int_equal(dup.rc_emit, DV_EINVAL);
    assert_null(strstr(s, " 5\n"));
    free(s);
    /* Two collectors emitting the same series: the second is dropped. */
    dup.label_value = "7";
    struct emitter dup2 = {"dvec_points", METRICS_GAUGE, "7", 6, 0, 0};
    assert_int_equal(metrics_add_collector(reg, collect_one, &dup2), DV_OK);
    s = render(reg);
    assert_int_equal(dup.rc_emit, DV_OK);
    assert_int_equal(dup2.rc_emit, DV_EINVAL);
    assert_non_null(strstr(s, "dvec_points{replica=\"7\"} 5\n"));
    assert_null(strstr(s, " 6\n"));
    free(s);
    assert_int_equal(metrics_remove_collector(reg, collect_one, &dup2), DV_OK);

    /* Another type than the registered family; histograms; bad names. */
    struct metrics_counter *c;
    assert_int_equal(metrics_counter(reg, "dvec_reqs", "Points held.", l, &c, NULL), DV_OK);
    struct emitter bad[] = {
        {"dvec_reqs_total", METRICS_GAUGE, "9", 1, 0, 0},
        {"h", METRICS_HISTOGRAM, "9", 1, 0, 0},
        {"bad name", METRICS_GAUGE, "9", 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(metrics_add_collector(reg, collect_one, &bad[i]), DV_OK);
    s = render(reg);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bad[i].rc_emit, DV_EINVAL);
    assert_null(strstr(s, "# TYPE dvec_reqs_total gauge"));
    assert_null(strstr(s, "dvec_reqs_total{replica=\"9\"}"));
    assert_null(strstr(s, "bad"));
    free(s);

    /* A collector that fails fails the render and leaves the buffer as it was. */
    bad[0].rc_after = DV_EIO;
    struct buf b = BUF_INIT;
    assert_int_equal(buf_appendf(&b, "kept"), DV_OK);
    assert_int_equal(metrics_render(reg, &b), DV_EIO);
    assert_int_equal(b.len, 4);
    assert_string_equal((char *)b.data, "kept");
    buf_free(&b);
    metrics_free(reg);
}

/* Finds "<name> <value>\n" at the start of a line and returns the value. */
static double sample(const char *text, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    assert_non_null(p);
    return strtod(p + strlen(key), NULL);
}

static void test_process_metrics(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    assert_int_equal(metrics_add_process(reg), DV_OK);
    /* Burn a little CPU so the counter moves off zero on a coarse clock. */
    volatile double x = 0;
    for (int i = 0; i < 20000000; i++)
        x += i * 0.5;
    char *s = render(reg);
    double rss = sample(s, "process_resident_memory_bytes");
    double vsz = sample(s, "process_virtual_memory_bytes");
    assert_true(rss > 1 << 20);
    assert_true(vsz >= rss);
    assert_true(sample(s, "process_cpu_seconds_total") > 0);
    double fds = sample(s, "process_open_fds");
    assert_true(fds >= 3 && fds < 10000);
    assert_true(sample(s, "process_max_fds") >= fds);
    double start = sample(s, "process_start_time_seconds");
    double now = (double)time(NULL);
    assert_true(start > now - 3600 && start <= now + 1);
    assert_non_null(strstr(s, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(s, "# TYPE process_open_fds gauge\n"));
    free(s);
    metrics_free(reg);
}

#define THREADS    4
#define PER_THREAD 200000

struct mt {
    struct metrics *reg;
    struct metrics_counter *c;
    struct metrics_gauge *g;
    struct metrics_histogram *h;
    int idx;
};

static void *hammer(void *arg)
{
    struct mt *m = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_counter_inc(m->c);
        metrics_gauge_add(m->g, 1.0);
        metrics_histogram_observe(m->h, (i % 4) * 0.5); /* 0, 0.5, 1, 1.5 */
    }
    return NULL;
}

/* Renders while the others record, so that the sanitizers see both sides. */
static void *renderer(void *arg)
{
    struct mt *m = arg;
    for (int i = 0; i < 50; i++) {
        struct buf b = BUF_INIT;
        assert_int_equal(metrics_render(m->reg, &b), DV_OK);
        buf_free(&b);
    }
    return NULL;
}

static void test_concurrent_exact(void **state)
{
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    struct mt m = {.reg = reg};
    const double bounds[] = {0.25, 1};
    assert_int_equal(metrics_counter(reg, "ops", "Ops.", NULL, &m.c, NULL), DV_OK);
    assert_int_equal(metrics_gauge(reg, "level", "Level.", NULL, &m.g, NULL), DV_OK);
    assert_int_equal(metrics_histogram(reg, "size", "Size.", bounds, 2, NULL, &m.h, NULL), DV_OK);
    assert_int_equal(metrics_add_process(reg), DV_OK);
    pthread_t t[THREADS + 1];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &m), 0);
    assert_int_equal(pthread_create(&t[THREADS], NULL, renderer, &m), 0);
    for (int i = 0; i <= THREADS; i++)
        pthread_join(t[i], NULL);

    const uint64_t n = (uint64_t)THREADS * PER_THREAD;
    assert_int_equal(metrics_counter_value(m.c), n);
    assert_true(metrics_gauge_value(m.g) == (double)n);
    assert_int_equal(metrics_histogram_count(m.h), n);
    char *s = render(reg);
    char line[128];
    snprintf(line, sizeof line, "ops_total %llu\n", (unsigned long long)n);
    assert_non_null(strstr(s, line));
    /* Per thread a quarter each of 0, 0.5, 1, 1.5: le 0.25 holds 1/4, le 1 holds 3/4. */
    snprintf(line, sizeof line, "size_bucket{le=\"0.25\"} %llu\n", (unsigned long long)n / 4);
    assert_non_null(strstr(s, line));
    snprintf(line, sizeof line, "size_bucket{le=\"1\"} %llu\n", (unsigned long long)n / 4 * 3);
    assert_non_null(strstr(s, line));
    snprintf(line, sizeof line, "size_sum %llu\n", (unsigned long long)n / 4 * 3);
    assert_non_null(strstr(s, line));
    free(s);
    metrics_free(reg);
}

static int collect_replicas(void *arg, struct metrics_writer *w)
{
    for (int r = 0; r < 3; r++) {
        char id[8];
        snprintf(id, sizeof id, "%d", r);
        const char *l[] = {"partition", id, NULL};
        int rc = metrics_emit_gauge(w, "dvec_replica_points", "Points in a replica.", l, r * 100);
        if (rc == DV_OK)
            rc = metrics_emit_gauge(w, "dvec_replica_wal_bytes", "WAL bytes of a replica.", l,
                                    r * 4096);
        if (rc == DV_OK)
            rc = metrics_emit_counter(w, "dvec_replica_checkpoints",
                                      "Checkpoints written by a replica.", l, r);
        if (rc != DV_OK)
            return rc;
    }
    return DV_OK;
}

/* A registry with every kind of metric passes `promtool check metrics` (lint included). */
static void test_promtool(void **state)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "# promtool not installed (Debian package prometheus): skipped\n");
        skip();
    }
    struct metrics *reg;
    assert_int_equal(metrics_new(&reg), DV_OK);
    static const char *const ops[] = {"search", "upsert", "delete"};
    static const char *const outcomes[] = {"ok", "error"};
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 2; j++) {
            const char *l[] = {"op", ops[i], "outcome", outcomes[j], NULL};
            struct metrics_counter *c;
            assert_int_equal(
                metrics_counter(reg, "dvec_requests", "Requests by op and outcome.", l, &c, NULL),
                DV_OK);
            metrics_counter_add(c, i * 10 + j);
        }
        const char *l[] = {"op", ops[i], NULL};
        struct metrics_histogram *h;
        assert_int_equal(metrics_histogram(reg, "dvec_request_duration_seconds",
                                           "Request latency by op.", NULL, 0, l, &h, NULL),
                         DV_OK);
        for (int k = 0; k < 100; k++)
            metrics_histogram_observe(h, k * 0.001 * (double)(i + 1));
    }
    struct metrics_gauge *g;
    const char *el[] = {"reason", "quote \" back\\slash\nnewline", NULL};
    assert_int_equal(
        metrics_gauge(reg, "dvec_replicas", "Replicas held.\nSecond \\ line.", el, &g, NULL),
        DV_OK);
    metrics_gauge_set(g, 4);
    assert_int_equal(metrics_add_collector(reg, collect_replicas, NULL), DV_OK);
    assert_int_equal(metrics_add_process(reg), DV_OK);

    char path[] = "/tmp/dvec-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    char *s = render(reg);
    fputs(s, f);
    fclose(f);

    char cmd[256], out[4096];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    if (status != 0 || n != 0) {
        fprintf(stderr, "# promtool exit %d:\n%s\n# input:\n%s", status, out, s);
        fail_msg("promtool check metrics reported a problem");
    }
    unlink(path);
    free(s);
    metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_gauge_text),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_value_format),
        cmocka_unit_test(test_histogram_cumulative),
        cmocka_unit_test(test_default_buckets),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_collectors_grouped),
        cmocka_unit_test(test_collector_errors),
        cmocka_unit_test(test_process_metrics),
        cmocka_unit_test(test_concurrent_exact),
        cmocka_unit_test(test_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
