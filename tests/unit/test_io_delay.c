/* test_io_delay.c - the slow-disk io (DVEC_IO_DELAY_FILE): its file's parser, the re-read
 * rule, the delays themselves, threads, and the environment switch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io_delay.h"
#include "log.h"

/* ---- the parser -------------------------------------------------------------------------- */

static void parse_ok(const char *text, uint32_t w, uint32_t f)
{
    struct io_delay_cfg c = {99, 99};
    char bad[32];
    assert_int_equal(io_delay_parse(text, strlen(text), &c, bad, sizeof bad), 0);
    assert_int_equal(c.write_ms, w);
    assert_int_equal(c.fsync_ms, f);
    assert_string_equal(bad, "");
}

static void parse_bad(const char *text, const char *word)
{
    struct io_delay_cfg c = {99, 99};
    char bad[32];
    assert_int_equal(io_delay_parse(text, strlen(text), &c, bad, sizeof bad), -1);
    assert_int_equal(c.write_ms, 0);
    assert_int_equal(c.fsync_ms, 0);
    assert_string_equal(bad, word);
}

static void test_parse(void **state)
{
    parse_ok("", 0, 0);
    parse_ok(" \n\t ", 0, 0);
    parse_ok("write_ms=5", 5, 0);
    parse_ok("fsync_ms=7", 0, 7);
    parse_ok("write_ms=3 fsync_ms=250\n", 3, 250);
    parse_ok("\n  fsync_ms=1\twrite_ms=2\r\n", 2, 1);
    parse_ok("write_ms=1 write_ms=4", 4, 0); /* the last one wins */
    parse_ok("write_ms=0 fsync_ms=600000", 0, 600000);
    parse_bad("write_ms=abc", "write_ms=abc");
    parse_bad("write_ms=5 slow", "slow");
    parse_bad("write_ms=", "write_ms=");
    parse_bad("write_ms=-1", "write_ms=-1");
    parse_bad("fsync_ms=600001", "fsync_ms=600001");
    parse_bad("write_ms=99999999999999999999", "write_ms=99999999999999999999");
    parse_bad("write_ms 5", "write_ms");
    parse_bad("WRITE_MS=5", "WRITE_MS=5");
    parse_bad("write_ms=5,fsync_ms=5", "write_ms=5,fsync_ms=5");
    /* a long word is cut to fit, control bytes shown as '?' */
    struct io_delay_cfg c;
    char bad[8];
    assert_int_equal(io_delay_parse("x\x01yzzzzzzzzzzz", 14, &c, bad, sizeof bad), -1);
    assert_string_equal(bad, "x?yzzzz");
    /* the length is the length: no terminator needed, bytes after n ignored */
    parse_ok("write_ms=12", 12, 0);
    assert_int_equal(io_delay_parse("write_ms=12garbage", 11, &c, bad, sizeof bad), 0);
    assert_int_equal(c.write_ms, 12);
}

/* ---- the io ------------------------------------------------------------------------------ */

/* The posix io with a clock the test moves: the re-read rule is checked without waiting. */
static uint64_t fake_ns = 1000000000ull;

static uint64_t fake_now(struct io *io)
{
    (void)io;
    return __atomic_load_n(&fake_ns, __ATOMIC_ACQUIRE);
}

static void advance_ms(uint64_t ms)
{
    __atomic_add_fetch(&fake_ns, ms * 1000000ull, __ATOMIC_ACQ_REL);
}

static uint64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char log_path[64];

static FILE *capture_log(void)
{
    snprintf(log_path, sizeof log_path, "/tmp/dvec-iodelay-log-XXXXXX");
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w+");
    assert_non_null(f);
    setvbuf(f, NULL, _IONBF, 0);
    log_set_output(f);
    return f;
}

/* How many times `needle` occurs in what was logged so far. */
static int logged(const char *needle)
{
    char buf[16384];
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    int k = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
        k++;
    return k;
}

static void expect_delay(struct io *io, uint32_t w, uint32_t f)
{
    struct io_delay_cfg c = io_delay_current(io);
    assert_int_equal(c.write_ms, w);
    assert_int_equal(c.fsync_ms, f);
}

/*
 * Absent file: no delay; the file written: seen only after 100 ms of the io's clock; the
 * delays are real (a pwrite, an fsync take at least that long) and data still reaches the
 * inner io; garbage: one warning naming the word, no delay; removed: no delay.
 */
static void test_delays_and_reread(void **state)
{
    char dir[] = "/tmp/dvec-iodelay-XXXXXX", knob[128], data[128];
    assert_non_null(mkdtemp(dir));
    snprintf(knob, sizeof knob, "%s/delay", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    struct io fake = *io_posix();
    fake.now_ns = fake_now;
    FILE *lf = capture_log();
    struct io *io = io_delay_new(&fake, knob);
    assert_non_null(io);

    expect_delay(io, 0, 0); /* no file */
    write_text(knob, "write_ms=40 fsync_ms=60\n");
    expect_delay(io, 0, 0); /* not looked at again yet */
    advance_ms(99);
    expect_delay(io, 0, 0);
    advance_ms(1);
    expect_delay(io, 40, 60);

    int fd = io->open(io, data, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    uint64_t t0 = real_ms();
    assert_int_equal(io_write_all(io, fd, "hello", 5, 0), 0);
    uint64_t t1 = real_ms();
    assert_true(t1 - t0 >= 40);
    assert_int_equal(io->fdatasync(io, fd), 0);
    uint64_t t2 = real_ms();
    assert_true(t2 - t1 >= 60);
    char back[5];
    assert_int_equal(io_read_full(io, fd, back, 5, 0), 5); /* reads are not delayed */
    assert_memory_equal(back, "hello", 5);
    assert_int_equal(io->ftruncate(io, fd, 2), 0);
    off_t sz;
    assert_int_equal(io->fsize(io, fd, &sz), 0);
    assert_int_equal(sz, 2);

    /* Rewritten: only fsyncs slow now. */
    write_text(knob, "fsync_ms=25");
    advance_ms(100);
    expect_delay(io, 0, 25);
    t0 = real_ms();
    assert_int_equal(io->fsync(io, fd), 0);
    assert_true(real_ms() - t0 >= 25);

    /* Garbage: one warning naming the file and the word, however often it is looked at. */
    write_text(knob, "write_ms=10 turtle");
    for (int i = 0; i < 5; i++) {
        advance_ms(100);
        expect_delay(io, 0, 0);
    }
    assert_int_equal(logged("turtle"), 1);
    assert_true(logged(knob) >= 1);

    /* Fixed, then gone: no delay. */
    write_text(knob, "write_ms=5");
    advance_ms(100);
    expect_delay(io, 5, 0);
    unlink(knob);
    advance_ms(100);
    expect_delay(io, 0, 0);
    /* an empty file is no delay, without a warning */
    write_text(knob, "");
    advance_ms(100);
    expect_delay(io, 0, 0);
    assert_int_equal(logged("bad word"), 1);

    io->close(io, fd);
    io_delay_free(io);
    log_set_output(NULL);
    fclose(lf);
    unlink(log_path);
    unlink(data);
    unlink(knob);
    rmdir(dir);
}

/* Threads share one io: writers on several threads while the file changes under them. */
struct mt {
    struct io *io;
    const char *path;
    int errors;
};

static void *mt_writer(void *arg)
{
    struct mt *m = arg;
    int fd = m->io->open(m->io, m->path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        m->errors++;
        return NULL;
    }
    for (int i = 0; i < 200; i++) {
        char b = (char)i;
        if (io_write_all(m->io, fd, &b, 1, i) != 0 || m->io->fdatasync(m->io, fd) != 0)
            m->errors++;
        advance_ms(7);
    }
    m->io->close(m->io, fd);
    return NULL;
}

static void test_threads(void **state)
{
    char dir[] = "/tmp/dvec-iodelay-XXXXXX", knob[128], paths[4][128];
    assert_non_null(mkdtemp(dir));
    snprintf(knob, sizeof knob, "%s/delay", dir);
    struct io fake = *io_posix();
    fake.now_ns = fake_now;
    FILE *q = fopen("/dev/null", "w");
    log_set_output(q);
    struct io *io = io_delay_new(&fake, knob);
    pthread_t t[4];
    struct mt m[4];
    for (int i = 0; i < 4; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/f%d", dir, i);
        m[i] = (struct mt){io, paths[i], 0};
        assert_int_equal(pthread_create(&t[i], NULL, mt_writer, &m[i]), 0);
    }
    for (int i = 0; i < 20; i++) {
        write_text(knob, i % 2 ? "write_ms=1" : "fsync_ms=1 write_ms=0");
        advance_ms(50);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(m[i].errors, 0);
        unlink(paths[i]);
    }
    io_delay_free(io);
    log_set_output(NULL);
    fclose(q);
    unlink(knob);
    rmdir(dir);
}

/* Unset or empty: the inner io itself, nothing made; set: a delaying io. */
static void test_from_env(void **state)
{
    struct io *owned = (struct io *)1;
    unsetenv("DVEC_IO_DELAY_FILE");
    assert_ptr_equal(io_delay_from_env(io_posix(), &owned), io_posix());
    assert_null(owned);
    setenv("DVEC_IO_DELAY_FILE", "", 1);
    assert_ptr_equal(io_delay_from_env(io_posix(), &owned), io_posix());
    assert_null(owned);
    FILE *q = fopen("/dev/null", "w");
    log_set_output(q);
    setenv("DVEC_IO_DELAY_FILE", "/nonexistent/dvec-delay", 1);
    struct io *io = io_delay_from_env(io_posix(), &owned);
    assert_ptr_not_equal(io, io_posix());
    assert_ptr_equal(io, owned);
    expect_delay(io, 0, 0); /* missing file: no delay */
    io_delay_free(owned);
    io_delay_free(NULL);
    unsetenv("DVEC_IO_DELAY_FILE");
    log_set_output(NULL);
    fclose(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_delays_and_reread),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_from_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
