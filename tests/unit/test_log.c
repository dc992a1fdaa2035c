/* test_log.c - exact line format, quoting, thresholds, env level, whole lines under threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "log.h"

/* 2026-11-24T10:00:00.123Z */
#define FIXED_NS (1795514400ULL * 1000000000ULL + 123456789ULL)

static uint64_t fixed_clock(void)
{
    return FIXED_NS;
}

static FILE *out;
static char *out_buf;
static size_t out_len;

static int setup(void **state)
{
    out = open_memstream(&out_buf, &out_len);
    if (out == NULL)
        return -1;
    log_set_output(out);
    log_set_clock(fixed_clock);
    log_set_level(LOG_LEVEL_DEBUG);
    return 0;
}

static int teardown(void **state)
{
    log_set_output(NULL);
    log_set_clock(NULL);
    fclose(out);
    free(out_buf);
    out_buf = NULL;
    out_len = 0;
    return 0;
}

/* Returns what was logged since the last call. */
static const char *taken(void)
{
    static char copy[65536];
    fflush(out);
    size_t n = out_len < sizeof copy - 1 ? out_len : sizeof copy - 1;
    memcpy(copy, out_buf, n);
    copy[n] = '\0';
    rewind(out);
    fflush(out);
    return copy;
}

static void test_example_line(void **state)
{
    size_t n = 100;
    log_info("replica opened", "partition=%u points=%zu", 7u, n);
    assert_string_equal(taken(),
                        "2026-11-24T10:00:00.123Z info replica opened partition=7 points=100\n");
    log_warn("started");
    assert_string_equal(taken(), "2026-11-24T10:00:00.123Z warn started\n");
    log_error("wal append failed", "partition=%d err=%s", 3, "io");
    assert_string_equal(taken(),
                        "2026-11-24T10:00:00.123Z error wal append failed partition=3 err=io\n");
    log_debug("probe", "x=%.2f neg=%lld hex=%#x ptrdiff=%td", 1.5, -5LL, 255u, (ptrdiff_t)-2);
    assert_string_equal(taken(),
                        "2026-11-24T10:00:00.123Z debug probe x=1.50 neg=-5 hex=0xff ptrdiff=-2\n");
}

static void test_quoting(void **state)
{
    log_info("collection created", "name=%s dim=%d", "my vectors", 128);
    assert_string_equal(
        taken(), "2026-11-24T10:00:00.123Z info collection created name=\"my vectors\" dim=128\n");
    log_info("m", "a=%s b=%s c=%s d=%s", "", "x\"y", "k=v", "back\\slash");
    assert_string_equal(
        taken(), "2026-11-24T10:00:00.123Z info m a=\"\" b=\"x\\\"y\" c=\"k=v\" d=back\\slash\n");
    /* Control characters are escaped: one event is always one line. */
    log_info("two\nlines", "v=%s", "a\nb\tc");
    assert_string_equal(taken(), "2026-11-24T10:00:00.123Z info two\\nlines v=\"a\\nb\\tc\"\n");
    /* Literal text around a conversion belongs to the value; %% is a percent sign. */
    log_info("listening", "addr=%s:%d load=%d%%", "127.0.0.1", 7700, 50);
    assert_string_equal(taken(),
                        "2026-11-24T10:00:00.123Z info listening addr=127.0.0.1:7700 load=50%\n");
    /* Width and precision from arguments. */
    log_info("w", "v=%*d p=%.*s", 4, 7, 2, "abcdef");
    assert_string_equal(taken(), "2026-11-24T10:00:00.123Z info w v=\"   7\" p=ab\n");
}

static void test_threshold(void **state)
{
    log_set_level(LOG_LEVEL_WARN);
    assert_false(log_enabled(LOG_LEVEL_INFO));
    assert_true(log_enabled(LOG_LEVEL_WARN));
    assert_true(log_enabled(LOG_LEVEL_ERROR));
    int evaluated = 0;
    log_debug("dropped", "x=%d", ++evaluated);
    log_info("dropped", "x=%d", ++evaluated);
    assert_int_equal(evaluated, 0); /* arguments of dropped events are not evaluated */
    assert_string_equal(taken(), "");
    log_warn("kept", "x=%d", ++evaluated);
    assert_string_equal(taken(), "2026-11-24T10:00:00.123Z warn kept x=1\n");
    assert_int_equal(log_get_level(), LOG_LEVEL_WARN);
    log_set_level(LOG_LEVEL_DEBUG);
}

static void test_level_parse_and_env(void **state)
{
    enum log_level l;
    assert_int_equal(log_level_parse("debug", &l), DV_OK);
    assert_int_equal(l, LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_parse("WARNING", &l), DV_OK);
    assert_int_equal(l, LOG_LEVEL_WARN);
    assert_int_equal(log_level_parse("Error", &l), DV_OK);
    assert_int_equal(l, LOG_LEVEL_ERROR);
    assert_int_equal(log_level_parse("verbose", &l), DV_EINVAL);
    assert_int_equal(log_level_parse(NULL, &l), DV_EINVAL);
    assert_string_equal(log_level_name(LOG_LEVEL_INFO), "info");

    setenv("DVEC_LOG_LEVEL", "error", 1);
    assert_int_equal(log_level_from_env(), DV_OK);
    assert_int_equal(log_get_level(), LOG_LEVEL_ERROR);
    setenv("DVEC_LOG_LEVEL", "loud", 1);
    assert_int_equal(log_level_from_env(), DV_EINVAL);
    assert_int_equal(log_get_level(), LOG_LEVEL_ERROR);
    unsetenv("DVEC_LOG_LEVEL");
    assert_int_equal(log_level_from_env(), DV_OK);
    assert_int_equal(log_get_level(), LOG_LEVEL_ERROR);
    log_set_level(LOG_LEVEL_DEBUG);
}

static void test_timestamp_and_truncation(void **state)
{
    char line[8192];
    /* The epoch, and milliseconds rounded down. */
    log_format(line, sizeof line, 999999ULL, LOG_LEVEL_INFO, "m", NULL);
    assert_string_equal(line, "1970-01-01T00:00:00.000Z info m\n");
    log_format(line, sizeof line, 951782400ULL * 1000000000ULL + 5000000ULL, LOG_LEVEL_INFO, "leap",
               " d=%d", 29);
    assert_string_equal(line, "2000-02-29T00:00:00.005Z info leap d=29\n");

    /* A long value is cut, the line still ends in a newline and fits the buffer. */
    char big[10000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    size_t n = log_format(line, 200, FIXED_NS, LOG_LEVEL_INFO, "big", " v=%s", big);
    assert_int_equal(n, strlen(line));
    assert_true(n < 200);
    assert_int_equal(line[n - 1], '\n');
    assert_memory_equal(line + n - 4, "...\n", 4);
    assert_memory_equal(line, "2026-11-24T10:00:00.123Z info big v=zzz", 39);

    log_info("big", "v=%s", big);
    const char *t = taken();
    assert_true(strlen(t) < 4100);
    assert_non_null(strstr(t, "...\n"));
    assert_int_equal(strchr(t, '\n') - t, (long)strlen(t) - 1);
}

#define THREADS    8
#define PER_THREAD 2000

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++)
        log_info("tick", "thread=%d i=%d pad=%s", id, i, "0123456789abcdefghijklmnopqrstuvwxyz");
    return NULL;
}

/* Lines from concurrent threads never interleave: every line parses back whole. */
static void test_threads_whole_lines(void **state)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    fflush(out);
    int next[THREADS] = {0};
    int lines = 0;
    char *save = NULL;
    for (char *l = strtok_r(out_buf, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        int id, i;
        char pad[64];
        int m =
            sscanf(l, "2026-11-24T10:00:00.123Z info tick thread=%d i=%d pad=%63s", &id, &i, pad);
        assert_int_equal(m, 3);
        assert_string_equal(pad, "0123456789abcdefghijklmnopqrstuvwxyz");
        assert_true(id >= 0 && id < THREADS);
        assert_int_equal(i, next[id]); /* per-thread order is kept */
        next[id]++;
        lines++;
    }
    assert_int_equal(lines, THREADS * PER_THREAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_example_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_parse_and_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_and_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_whole_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
