/* test_wal.c - the WAL: round trips, recovery (torn tails, corruption, gaps, repair), group
 * commit, the INTERVAL thread, concurrent reads, and a fault sweep over every IO operation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "io.h"
#include "log.h"
#include "wal.h"

#define MAX_BODY (160u * 1024)

/* ---- helpers ----------------------------------------------------------------------------- */

static void make_dir(char *dir)
{
    strcpy(dir, "/tmp/dvec-wal-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    assert_int_equal(io_remove_dir(io_posix(), dir), 0);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/*
 * The body of record `lsn` in the sequential tests (a pure function of lsn): sizes from 0
 * to 8 KiB, half of them compressible; every 50th record is 100 KiB (bigger than a 64 KiB
 * segment) when `big` is set.
 */
static size_t gen_body(uint64_t lsn, bool big, uint8_t *buf, uint8_t *type)
{
    uint64_t s = lsn * 7919;
    size_t len = (size_t)(rng_next(&s) % 8192);
    if (lsn % 7 == 0)
        len = (size_t)(rng_next(&s) % 64);
    if (big && lsn % 50 == 0)
        len = 100 * 1024;
    bool compressible = lsn % 2 == 0 && len < 100 * 1024; /* big ones stay big on disk */
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = compressible ? (i / 64) * 0x0101010101010101ull : rng_next(&s);
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
    *type = (uint8_t)(1 + lsn % 255);
    return len;
}

/* Replay callback checking records are from, from+1, ... with the bodies of gen_body(). */
struct check {
    uint64_t next; /* expected LSN */
    uint64_t count;
    bool big;
    int bad;
    uint8_t buf[MAX_BODY];
};

static int check_rec(uint64_t lsn, uint8_t type, const void *body, size_t len, void *arg)
{
    struct check *c = arg;
    uint8_t t;
    if (lsn != c->next) {
        c->bad++;
        return 0;
    }
    size_t n = gen_body(lsn, c->big, c->buf, &t);
    if (n != len || t != type || memcmp(c->buf, body, len) != 0)
        c->bad++;
    c->next++;
    c->count++;
    return 0;
}

static void check_init(struct check *c, uint64_t from, bool big)
{
    memset(c, 0, offsetof(struct check, buf));
    c->next = from;
    c->big = big;
}

static void small_opts(struct wal_opts *o)
{
    wal_opts_default(o);
    o->segment_bytes = WAL_MIN_SEGMENT_BYTES;
}

/* Appends records last+1 .. upto of gen_body(). */
static void append_upto(struct wal *w, uint64_t upto, bool big)
{
    static uint8_t buf[MAX_BODY];
    char err[DV_ERRMSG_SIZE];
    for (uint64_t l = wal_last_lsn(w) + 1; l <= upto; l++) {
        uint8_t type;
        size_t len = gen_body(l, big, buf, &type);
        uint64_t got;
        assert_int_equal(wal_append(w, type, buf, len, &got, err), DV_OK);
        assert_int_equal(got, l);
    }
}

/* Opens `dir` from `from`, checks the replay gives from..expect_last, returns the WAL. */
static struct wal *reopen_check(const char *dir, const struct wal_opts *o, uint64_t from,
                                uint64_t expect_last, bool big)
{
    static struct check c;
    char err[DV_ERRMSG_SIZE];
    struct wal *w;
    check_init(&c, from, big);
    int rc = wal_open(io_posix(), dir, o, from, check_rec, &c, &w, err);
    if (rc != DV_OK)
        fail_msg("wal_open: %s (%s)", dv_errname(rc), err);
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.next, expect_last + 1 > from ? expect_last + 1 : from);
    return w;
}

/* Segment files of `dir` sorted: their first LSNs. */
static size_t seg_list(const char *dir, uint64_t *firsts, size_t max)
{
    char **names;
    size_t n, k = 0;
    assert_int_equal(io_posix()->list(io_posix(), dir, &names, &n), 0);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len == 24 && strcmp(names[i] + 20, ".wal") == 0 && k < max)
            firsts[k++] = strtoull(names[i], NULL, 10);
    }
    io_free_list(names, n);
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && firsts[j - 1] > firsts[j]; j--) {
            uint64_t t = firsts[j];
            firsts[j] = firsts[j - 1];
            firsts[j - 1] = t;
        }
    return k;
}

static void seg_file(const char *dir, uint64_t first, char *path, char *name)
{
    if (name != NULL)
        sprintf(name, "%020" PRIu64 ".wal", first);
    sprintf(path, "%s/%020" PRIu64 ".wal", dir, first);
}

static uint8_t *read_whole(const char *path, size_t *n)
{
    void *p;
    assert_int_equal(io_read_file(io_posix(), path, 1u << 30, &p, n), 0);
    return p;
}

static void write_whole(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Offsets (and LSNs) of the records of a segment image, parsed independently of wal.c. */
static size_t rec_offsets(const uint8_t *p, size_t n, uint64_t *offs, uint64_t *lsns, size_t max)
{
    size_t k = 0, off = 24;
    while (off + 28 <= n && k < max) {
        uint32_t stored;
        memcpy(&stored, p + off + 16, 4);
        offs[k] = off;
        memcpy(&lsns[k], p + off + 8, 8);
        k++;
        off += 28 + stored;
    }
    return k;
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static FILE *quiet(void)
{
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    log_set_output(f);
    return f;
}

static void loud(FILE *f)
{
    log_set_output(NULL);
    fclose(f);
}

/* ---- round trips ------------------------------------------------------------------------- */

static void test_invalid_args(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct wal *w;
    uint64_t l;
    make_dir(dir);
    wal_opts_default(&o);
    assert_int_equal(o.sync, WAL_SYNC_ALWAYS);
    assert_int_equal(o.interval_ms, 100);
    assert_int_equal(o.segment_bytes, 64ull << 20);
    assert_true(o.compress);
    assert_int_equal(o.max_record, 64u << 20);
    o.segment_bytes = 1000;
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_EINVAL);
    assert_non_null(strstr(err, "segment_bytes"));
    small_opts(&o);
    o.max_record = 1000;
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_OK);
    uint8_t body[1001] = {0};
    assert_int_equal(wal_append(w, 0, body, 10, &l, err), DV_EINVAL);
    assert_int_equal(wal_append(w, 1, body, 1001, &l, err), DV_ETOOBIG);
    assert_int_equal(wal_append(w, 1, body, 1000, &l, err), DV_OK);
    assert_int_equal(l, 1);
    assert_int_equal(wal_append(w, 2, NULL, 0, &l, err), DV_OK);
    assert_int_equal(l, 2);
    assert_int_equal(wal_sync(w, 3, err), DV_EINVAL);
    assert_int_equal(wal_sync(w, 2, err), DV_OK);
    assert_int_equal(wal_durable_lsn(w), 2);
    wal_close(w);
    remove_dir(dir);
}

/* Many records of random sizes, compressible or not, some bigger than a segment; reopening
 * replays them all and continues the LSNs. */
static void test_roundtrip_and_reopen(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct wal *w;
    struct wal_stats st;
    make_dir(dir);
    small_opts(&o);
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_OK);
    assert_int_equal(wal_last_lsn(w), 0);
    append_upto(w, 400, true);
    assert_int_equal(wal_sync(w, 400, err), DV_OK);
    assert_int_equal(wal_durable_lsn(w), 400);
    wal_get_stats(w, &st);
    assert_int_equal(st.appends, 400);
    assert_true(st.compressed > 100);       /* the compressible half */
    assert_true(st.compressed < 400 - 100); /* random bodies and short ones stay raw */
    assert_true(st.stored_bytes < st.raw_bytes);
    uint64_t firsts[256];
    size_t nseg = seg_list(dir, firsts, 256);
    assert_true(nseg > 10);
    /* A record bigger than a segment has one of its own: 50 starts one, 51 the next. */
    bool has50 = false, has51 = false;
    for (size_t i = 0; i < nseg; i++) {
        has50 = has50 || firsts[i] == 50;
        has51 = has51 || firsts[i] == 51;
    }
    assert_true(has50 && has51);
    /* wal_bytes counts exactly the files. */
    size_t total = 0;
    for (size_t i = 0; i < nseg; i++) {
        char path[128];
        seg_file(dir, firsts[i], path, NULL);
        total += (size_t)file_size(path);
    }
    assert_int_equal(wal_bytes(w), total);
    wal_close(w);

    w = reopen_check(dir, &o, 1, 400, true);
    assert_int_equal(wal_last_lsn(w), 400);
    append_upto(w, 450, true);
    wal_close(w);
    w = reopen_check(dir, &o, 1, 450, true);
    wal_close(w);

    /* Without compression the same records come back too. */
    o.compress = false;
    w = reopen_check(dir, &o, 1, 450, true);
    append_upto(w, 460, true);
    wal_get_stats(w, &st);
    assert_int_equal(st.compressed, 0);
    wal_close(w);
    o.compress = true;
    w = reopen_check(dir, &o, 1, 460, true);
    wal_close(w);
    remove_dir(dir);
}

/* Records below from_lsn are not replayed; from_lsn past the end moves the next LSN. */
static void test_from_lsn(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct wal *w;
    struct check c;
    uint64_t l;
    make_dir(dir);
    small_opts(&o);
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_OK);
    append_upto(w, 100, false);
    wal_close(w);

    w = reopen_check(dir, &o, 60, 100, false); /* replays 60..100 only */
    assert_int_equal(wal_last_lsn(w), 100);
    wal_close(w);

    /* A checkpoint beyond the log: the next LSN is from_lsn. */
    w = reopen_check(dir, &o, 200, 0, false);
    assert_int_equal(wal_last_lsn(w), 199);
    uint8_t b[16] = {0};
    assert_int_equal(wal_append(w, 3, b, sizeof b, &l, err), DV_OK);
    assert_int_equal(l, 200);
    wal_close(w);
    check_init(&c, 200, false);
    assert_int_equal(wal_open(io_posix(), dir, &o, 200, NULL, NULL, &w, err), DV_OK);
    assert_int_equal(wal_last_lsn(w), 200);
    wal_close(w);
    /* Records 150..199 are needed but were never in the WAL. */
    assert_int_equal(wal_open(io_posix(), dir, &o, 150, NULL, NULL, &w, err), DV_ECORRUPT);
    assert_string_equal(err, "wal: 00000000000000000200.wal: records 150..199 missing at offset 0");
    remove_dir(dir);

    /* A new WAL starting at 42. */
    make_dir(dir);
    assert_int_equal(wal_open(io_posix(), dir, &o, 42, NULL, NULL, &w, err), DV_OK);
    assert_int_equal(wal_append(w, 3, b, sizeof b, &l, err), DV_OK);
    assert_int_equal(l, 42);
    wal_close(w);
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_ECORRUPT);
    assert_non_null(strstr(err, "records 1..41 missing"));
    remove_dir(dir);
}

struct counter {
    uint64_t first, next, count;
};

static int count_rec(uint64_t lsn, uint8_t type, const void *body, size_t len, void *arg)
{
    struct counter *c = arg;
    if (c->count == 0)
        c->first = lsn;
    else if (lsn != c->next)
        return -100;
    c->next = lsn + 1;
    c->count++;
    return 0;
}

static void test_drop_before(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct wal *w;
    uint64_t firsts[256];
    make_dir(dir);
    small_opts(&o);
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_OK);
    append_upto(w, 300, false);
    size_t n0 = seg_list(dir, firsts, 256), b0 = wal_bytes(w);
    assert_true(n0 >= 8);
    assert_int_equal(wal_drop_before(w, 150, err), DV_OK);
    size_t n1 = seg_list(dir, firsts, 256);
    assert_true(n1 < n0);
    assert_true(firsts[0] <= 151);
    assert_true(wal_bytes(w) < b0);
    /* Every dropped segment held only records <= 150. */
    struct counter c = {0};
    assert_int_equal(wal_read(w, firsts[0] - 1, count_rec, &c, err), DV_ENOTFOUND);
    assert_non_null(strstr(err, "dropped"));
    assert_int_equal(wal_read(w, 151, count_rec, &c, err), DV_OK);
    assert_int_equal(c.first, 151);
    assert_int_equal(c.count, 150);
    /* Reading stops when the callback says so. */
    memset(&c, 0, sizeof c);
    assert_int_equal(wal_read(w, 301, count_rec, &c, err), DV_OK);
    assert_int_equal(c.count, 0);
    wal_close(w);

    w = reopen_check(dir, &o, 151, 300, false);
    /* Dropping everything starts a new segment (so the covered one can go) and keeps it. */
    assert_int_equal(wal_drop_before(w, UINT64_MAX, err), DV_OK);
    assert_int_equal(seg_list(dir, firsts, 256), 1);
    assert_int_equal(firsts[0], 301);
    append_upto(w, 310, false);
    uint64_t f0 = firsts[0];
    wal_close(w);
    w = reopen_check(dir, &o, f0 > 151 ? f0 : 151, 310, false);
    wal_close(w);
    remove_dir(dir);
}

/* wal_cut_after: records after the LSN go (within a segment, whole later segments, nothing
 * when there is nothing after it); the WAL reopens at the cut and takes new records there. */
static void test_cut_after(void **state)
{
    (void)state;
    char dir[64], err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct wal *w;
    uint64_t firsts[256], dropped = 0;
    make_dir(dir);
    small_opts(&o);
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_OK);
    append_upto(w, 300, false);
    wal_close(w);
    size_t n0 = seg_list(dir, firsts, 256);
    assert_true(n0 >= 8);
    /* in the middle of a segment */
    uint64_t mid = firsts[n0 / 2] + 3;
    assert_int_equal(wal_cut_after(io_posix(), dir, mid, &dropped, err), DV_OK);
    assert_int_equal(dropped, 300 - mid);
    assert_int_equal(seg_list(dir, firsts, 256), n0 / 2 + 1);
    w = reopen_check(dir, &o, 1, mid, false);
    append_upto(w, mid + 20, false); /* new records take the LSNs that were cut */
    wal_close(w);
    w = reopen_check(dir, &o, 1, mid + 20, false);
    wal_close(w);
    /* nothing after: nothing cut */
    assert_int_equal(wal_cut_after(io_posix(), dir, mid + 20, &dropped, err), DV_OK);
    assert_int_equal(dropped, 0);
    assert_int_equal(wal_cut_after(io_posix(), dir, 10000, &dropped, err), DV_OK);
    assert_int_equal(dropped, 0);
    /* at a segment's first record - 1: that segment goes whole */
    size_t n1 = seg_list(dir, firsts, 256);
    uint64_t at = firsts[n1 - 1] - 1;
    assert_int_equal(wal_cut_after(io_posix(), dir, at, &dropped, err), DV_OK);
    assert_int_equal(dropped, mid + 20 - at);
    assert_int_equal(seg_list(dir, firsts, 256), n1 - 1);
    w = reopen_check(dir, &o, 1, at, false);
    wal_close(w);
    /* everything */
    assert_int_equal(wal_cut_after(io_posix(), dir, 0, &dropped, err), DV_OK);
    assert_int_equal(dropped, at);
    assert_int_equal(seg_list(dir, firsts, 256), 0);
    remove_dir(dir);
}

/* ---- concurrency ------------------------------------------------------------------------- */

#define RD_WRITERS 3
#define RD_PER     300

/* A self-checking body: thread, sequence number, then bytes derived from both. */
static size_t mt_body(uint32_t t, uint32_t seq, uint8_t *buf)
{
    uint64_t s = ((uint64_t)t << 32) | seq;
    size_t len = 8 + (size_t)(rng_next(&s) % 3000);
    memcpy(buf, &t, 4);
    memcpy(buf + 4, &seq, 4);
    for (size_t i = 8; i < len; i++)
        buf[i] = (uint8_t)(seq % 3 == 0 ? i / 32 : rng_next(&s));
    return len;
}

static bool mt_check(const void *body, size_t len)
{
    uint8_t buf[4096];
    uint32_t t, seq;
    if (len < 8)
        return false;
    memcpy(&t, body, 4);
    memcpy(&seq, (const uint8_t *)body + 4, 4);
    return t < 16 && mt_body(t, seq, buf) == len && memcmp(buf, body, len) == 0;
}

struct mt {
    struct wal *w;
    uint32_t t;
    int done;   /* atomic: writers finished */
    int errors; /* atomic */
    int syncs;  /* atomic: wal_sync calls */
    bool sync;
};

static void *mt_writer(void *arg)
{
    struct mt *m = arg;
    uint32_t t = __atomic_fetch_add(&m->t, 1, __ATOMIC_RELAXED);
    uint8_t buf[4096];
    char err[DV_ERRMSG_SIZE];
    for (uint32_t i = 0; i < RD_PER; i++) {
        size_t len = mt_body(t, i, buf);
        uint64_t l;
        if (wal_append(m->w, 7, buf, len, &l, err) != DV_OK) {
            __atomic_fetch_add(&m->errors, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (m->sync) {
            __atomic_fetch_add(&m->syncs, 1, __ATOMIC_RELAXED);
            if (wal_sync(m->w, l, err) != DV_OK || wal_durable_lsn(m->w) < l)
                __atomic_fetch_add(&m->errors, 1, __ATOMIC_RELAXED);
        }
    }
    __atomic_fetch_add(&m->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

struct rd {
    uint64_t first, next, count;
    int bad;
};

static int rd_rec(uint64_t lsn, uint8_t type, const void *body, size_t len, void *arg)
{
    struct rd *r = arg;
    if (lsn != r->next || type != 7 || !mt_check(body, len))
        r->bad++;
    r->next = lsn + 1;
    r->count++;
    return 0;
}

/* wal_read streams consistent prefixes while writers append and segments rotate. */
static void test_read_during_appends(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct mt m = {0};
    pthread_t tid[RD_WRITERS];
    make_dir(dir);
    small_opts(&o);
    o.sync = WAL_SYNC_NEVER;
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &m.w, err), DV_OK);
    for (int i = 0; i < RD_WRITERS; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, mt_writer, &m), 0);
    int reads = 0;
    uint64_t from = 1;
    while (__atomic_load_n(&m.done, __ATOMIC_ACQUIRE) < RD_WRITERS || reads < 3) {
        struct rd r = {from, from, 0, 0};
        uint64_t before = wal_last_lsn(m.w);
        int rc = wal_read(m.w, from, rd_rec, &r, err);
        if (rc != DV_OK)
            fail_msg("wal_read: %s", err);
        assert_int_equal(r.bad, 0);
        assert_true(r.next - 1 >= before); /* everything appended before the call */
        from = (from * 31 + 7) % (before + 1) + 1;
        reads++;
    }
    for (int i = 0; i < RD_WRITERS; i++)
        pthread_join(tid[i], NULL);
    assert_int_equal(m.errors, 0);
    struct rd r = {1, 1, 0, 0};
    assert_int_equal(wal_read(m.w, 1, rd_rec, &r, err), DV_OK);
    assert_int_equal(r.count, RD_WRITERS * RD_PER);
    assert_int_equal(r.bad, 0);
    wal_close(m.w);
    remove_dir(dir);
}

/* An io that counts fdatasync calls and makes each take 1 ms, like a disk. */
struct count_io {
    struct io io;
    struct io *inner;
    long fdatasyncs; /* atomic */
};

#define CIO(io) ((struct count_io *)(io))

static int c_open(struct io *io, const char *path, int flags, int mode)
{
    return CIO(io)->inner->open(CIO(io)->inner, path, flags, mode);
}
static ssize_t c_pwrite(struct io *io, int fd, const void *buf, size_t n, off_t off)
{
    return CIO(io)->inner->pwrite(CIO(io)->inner, fd, buf, n, off);
}
static ssize_t c_pread(struct io *io, int fd, void *buf, size_t n, off_t off)
{
    return CIO(io)->inner->pread(CIO(io)->inner, fd, buf, n, off);
}
static int c_fsync(struct io *io, int fd)
{
    return CIO(io)->inner->fsync(CIO(io)->inner, fd);
}
static int c_fdatasync(struct io *io, int fd)
{
    __atomic_fetch_add(&CIO(io)->fdatasyncs, 1, __ATOMIC_RELAXED);
    usleep(1000);
    return CIO(io)->inner->fdatasync(CIO(io)->inner, fd);
}
static int c_ftruncate(struct io *io, int fd, off_t len)
{
    return CIO(io)->inner->ftruncate(CIO(io)->inner, fd, len);
}
static int c_fsize(struct io *io, int fd, off_t *size)
{
    return CIO(io)->inner->fsize(CIO(io)->inner, fd, size);
}
static int c_close(struct io *io, int fd)
{
    return CIO(io)->inner->close(CIO(io)->inner, fd);
}
static int c_rename(struct io *io, const char *from, const char *to)
{
    return CIO(io)->inner->rename(CIO(io)->inner, from, to);
}
static int c_unlink(struct io *io, const char *path)
{
    return CIO(io)->inner->unlink(CIO(io)->inner, path);
}
static int c_mkdir(struct io *io, const char *path, int mode)
{
    return CIO(io)->inner->mkdir(CIO(io)->inner, path, mode);
}
static int c_rmdir(struct io *io, const char *path)
{
    return CIO(io)->inner->rmdir(CIO(io)->inner, path);
}
static int c_list(struct io *io, const char *dir, char ***names, size_t *n)
{
    return CIO(io)->inner->list(CIO(io)->inner, dir, names, n);
}
static uint64_t c_now_ns(struct io *io)
{
    return CIO(io)->inner->now_ns(CIO(io)->inner);
}

static void count_io_init(struct count_io *c)
{
    c->io = (struct io){c_open,  c_pwrite, c_pread,  c_fsync, c_fdatasync, c_ftruncate, c_fsize,
                        c_close, c_rename, c_unlink, c_mkdir, c_rmdir,     c_list,      c_now_ns};
    c->inner = io_posix();
    c->fdatasyncs = 0;
}

/* Group commit: concurrent append+sync callers share fdatasyncs. */
static void test_group_commit(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct count_io cio;
    struct mt m = {0};
    pthread_t tid[4];
    make_dir(dir);
    count_io_init(&cio);
    wal_opts_default(&o); /* ALWAYS, 64 MiB segments: no rotation */
    assert_int_equal(wal_open(&cio.io, dir, &o, 1, NULL, NULL, &m.w, err), DV_OK);
    long before = __atomic_load_n(&cio.fdatasyncs, __ATOMIC_RELAXED);
    m.sync = true;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, mt_writer, &m), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(tid[i], NULL);
    long fds = __atomic_load_n(&cio.fdatasyncs, __ATOMIC_RELAXED) - before;
    struct wal_stats st;
    wal_get_stats(m.w, &st);
    print_message("# group commit: %d syncs requested, %ld fdatasyncs\n", m.syncs, fds);
    assert_int_equal(m.errors, 0);
    assert_int_equal(m.syncs, 4 * RD_PER);
    assert_true(fds > 0);
    assert_true(fds < m.syncs);
    assert_int_equal(wal_durable_lsn(m.w), 4 * RD_PER);
    wal_close(m.w);
    assert_int_equal(__atomic_load_n(&cio.fdatasyncs, __ATOMIC_RELAXED) - before, fds);
    remove_dir(dir);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* INTERVAL: nothing is synced before the interval, and it is synced once it passed. */
static void test_interval(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct io_fault f;
    struct wal *w;
    uint64_t l;
    uint8_t b[100] = {1};
    make_dir(dir);
    io_fault_init(&f, io_posix());
    wal_opts_default(&o);
    o.sync = WAL_SYNC_INTERVAL;
    o.interval_ms = 60000;
    assert_int_equal(wal_open(&f.io, dir, &o, 1, NULL, NULL, &w, err), DV_OK);
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_OK);
    assert_int_equal(wal_sync(w, l, err), DV_OK); /* returns at once */
    sleep_ms(50);
    assert_true(wal_durable_lsn(w) < l);
    __atomic_store_n(&f.clock_offset_ns, 61000000000ull, __ATOMIC_RELEASE);
    for (int i = 0; i < 400 && wal_durable_lsn(w) < l; i++)
        sleep_ms(5);
    assert_int_equal(wal_durable_lsn(w), l);
    /* Again, with the real clock: synced within the interval (plus scheduling slack). */
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_OK);
    sleep_ms(30);
    assert_true(wal_durable_lsn(w) < l);
    __atomic_store_n(&f.clock_offset_ns, 122000000000ull, __ATOMIC_RELEASE);
    for (int i = 0; i < 400 && wal_durable_lsn(w) < l; i++)
        sleep_ms(5);
    assert_int_equal(wal_durable_lsn(w), l);
    wal_close(w);

    o.interval_ms = 20;
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_OK);
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (wal_durable_lsn(w) < l)
        sleep_ms(1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms < 2000);
    /* wal_flush syncs now whatever the policy. */
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_OK);
    assert_int_equal(wal_flush(w, err), DV_OK);
    assert_int_equal(wal_durable_lsn(w), l);
    wal_close(w);
    remove_dir(dir);
}

/* ---- recovery ---------------------------------------------------------------------------- */

/* Builds a WAL of records 1..n of gen_body() in 64 KiB segments, closed. */
static void build_wal(const char *dir, uint64_t n)
{
    char err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct wal *w;
    small_opts(&o);
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_OK);
    append_upto(w, n, false);
    wal_close(w);
}

/* Cutting the last record at every byte: the reopen cuts the tail, keeps the rest, and
 * appends continue. */
static void test_torn_tail(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE], path[128];
    struct wal_opts o;
    struct wal *w;
    uint64_t firsts[64], offs[512], lsns[512], l;
    FILE *q = quiet();
    make_dir(dir);
    small_opts(&o);
    build_wal(dir, 40);
    size_t nseg = seg_list(dir, firsts, 64);
    assert_true(nseg >= 2);
    seg_file(dir, firsts[nseg - 1], path, NULL);
    size_t size;
    uint8_t *img = read_whole(path, &size);
    size_t nrec = rec_offsets(img, size, offs, lsns, 512);
    assert_true(nrec >= 2);
    assert_int_equal(lsns[nrec - 1], 40);
    uint64_t start = offs[nrec - 1];
    for (uint64_t cut = start; cut < size; cut++) {
        write_whole(path, img, cut);
        w = reopen_check(dir, &o, 1, 39, false);
        assert_int_equal(file_size(path), start);
        assert_int_equal(wal_last_lsn(w), 39);
        uint8_t t;
        static uint8_t buf[MAX_BODY];
        size_t len = gen_body(40, false, buf, &t);
        assert_int_equal(wal_append(w, t, buf, len, &l, err), DV_OK);
        assert_int_equal(l, 40);
        wal_close(w);
        assert_int_equal(file_size(path), size);
    }
    /* Zeros after the last record (preallocation) are tail too. */
    uint8_t *padded = calloc(1, size + 8192);
    memcpy(padded, img, size);
    write_whole(path, padded, size + 8192);
    w = reopen_check(dir, &o, 1, 40, false);
    assert_int_equal(file_size(path), size);
    wal_close(w);
    /* A segment whose header never made it (crash during rotation) is removed. */
    char torn[128];
    seg_file(dir, 41, torn, NULL);
    write_whole(torn, img, 10);
    w = reopen_check(dir, &o, 1, 40, false);
    assert_int_equal(access(torn, F_OK), -1);
    append_upto(w, 45, false);
    wal_close(w);
    w = reopen_check(dir, &o, 1, 45, false);
    wal_close(w);
    free(padded);
    free(img);
    remove_dir(dir);
    loud(q);
}

struct located {
    uint64_t seg_first;
    uint64_t off, lsn;
};

/* Finds record `lsn` in the files of `dir`. */
static struct located locate(const char *dir, uint64_t lsn)
{
    uint64_t firsts[64], offs[512], lsns[512];
    size_t nseg = seg_list(dir, firsts, 64);
    for (size_t i = 0; i < nseg; i++) {
        char path[128];
        size_t size;
        seg_file(dir, firsts[i], path, NULL);
        uint8_t *img = read_whole(path, &size);
        size_t n = rec_offsets(img, size, offs, lsns, 512);
        free(img);
        for (size_t k = 0; k < n; k++)
            if (lsns[k] == lsn)
                return (struct located){firsts[i], offs[k], lsn};
    }
    fail_msg("LSN %" PRIu64 " not found", lsn);
    return (struct located){0};
}

/*
 * Damages the WAL at (segment of `lsn`, offset of its record + delta) or, with lsn 0, the
 * header of segment `seg_first`, and checks: open fails naming the file and offset; repair
 * cuts there; the WAL then opens with the records before.
 */
static void corrupt_case(uint64_t n, uint64_t lsn, uint64_t seg_first, uint64_t delta,
                         const char *what)
{
    char dir[64], err[DV_ERRMSG_SIZE], path[128], name[32], want[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct wal *w;
    make_dir(dir);
    small_opts(&o);
    build_wal(dir, n);
    uint64_t off = 0, keep;
    if (lsn != 0) {
        struct located at = locate(dir, lsn);
        seg_first = at.seg_first;
        off = at.off;
        keep = lsn - 1;
    } else {
        keep = seg_first - 1;
    }
    seg_file(dir, seg_first, path, name);
    flip_byte(path, (off_t)(off + delta));
    int rc = wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err);
    assert_int_equal(rc, DV_ECORRUPT);
    snprintf(want, sizeof want, "wal: %s: %s at offset %" PRIu64, name, what, off);
    assert_string_equal(err, want);

    assert_int_equal(wal_repair(io_posix(), dir, err), DV_OK);
    snprintf(want, sizeof want,
             "cut %s at offset %" PRIu64 ": %" PRIu64 " records after LSN %" PRIu64 " dropped",
             name, off, n - keep, keep);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("repair said \"%s\", expected \"%s...\"", err, want);
    w = reopen_check(dir, &o, 1, keep, false);
    append_upto(w, keep + 5, false);
    wal_close(w);
    w = reopen_check(dir, &o, 1, keep + 5, false);
    wal_close(w);
    assert_int_equal(wal_repair(io_posix(), dir, err), DV_OK);
    assert_non_null(strstr(err, "nothing to repair"));
    remove_dir(dir);
}

static void test_corruption(void **state)
{
    FILE *q = quiet();
    /* A record body in the middle of the last segment (a valid record follows it). */
    corrupt_case(120, 100, 0, 28, "bad CRC");
    /* Its magic. */
    corrupt_case(120, 101, 0, 0, "bad record magic");
    /* The last record of an earlier segment: never a torn tail there. */
    {
        char dir[64];
        make_dir(dir);
        build_wal(dir, 120);
        uint64_t firsts[64];
        size_t nseg = seg_list(dir, firsts, 64);
        assert_true(nseg >= 3);
        uint64_t last_of_first = firsts[1] - 1;
        remove_dir(dir);
        corrupt_case(120, last_of_first, 0, 4, "bad CRC");
        /* A segment header (its first LSN field). */
        corrupt_case(120, 0, firsts[1], 13, "bad segment header");
    }
    loud(q);
}

/* Lengths that are not possible count as damage too, and an LSN out of order is corruption
 * even with a good CRC (checked through a record copied onto the next one's place). */
static void test_corrupt_lsn_order(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE], path[128], name[32];
    struct wal_opts o;
    struct wal *w;
    FILE *q = quiet();
    make_dir(dir);
    small_opts(&o);
    build_wal(dir, 60);
    /* Two neighbours in one segment. */
    struct located a = {0}, b = {0};
    for (uint64_t k = 30; k < 59; k++) {
        a = locate(dir, k);
        b = locate(dir, k + 1);
        if (a.seg_first == b.seg_first)
            break;
    }
    assert_int_equal(a.seg_first, b.seg_first);
    seg_file(dir, a.seg_first, path, name);
    size_t size;
    uint8_t *img = read_whole(path, &size);
    /* Record k again in place of k + 1: a valid record with the wrong LSN. */
    size_t la = b.off - a.off;
    img = realloc(img, b.off + la);
    memmove(img + b.off, img + a.off, la);
    write_whole(path, img, b.off + la);
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_ECORRUPT);
    char want[DV_ERRMSG_SIZE];
    snprintf(want, sizeof want,
             "wal: %s: LSN %" PRIu64 " where %" PRIu64 " was expected at offset %" PRIu64, name,
             a.lsn, b.lsn, b.off);
    assert_string_equal(err, want);
    free(img);
    remove_dir(dir);
    loud(q);
}

/* A missing segment in the middle is corruption; so is one missing at the start. */
static void test_gap(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE], path[128], name[32], want[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct wal *w;
    uint64_t firsts[64];
    FILE *q = quiet();
    make_dir(dir);
    small_opts(&o);
    build_wal(dir, 150);
    size_t nseg = seg_list(dir, firsts, 64);
    assert_true(nseg >= 4);
    seg_file(dir, firsts[1], path, NULL);
    assert_int_equal(unlink(path), 0);
    seg_file(dir, firsts[2], path, name);
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_ECORRUPT);
    snprintf(want, sizeof want, "wal: %s: records %" PRIu64 "..%" PRIu64 " missing at offset 0",
             name, firsts[1], firsts[2] - 1);
    assert_string_equal(err, want);
    /* Once the checkpoint covers the hole, it does not matter. */
    w = reopen_check(dir, &o, firsts[2], 150, false);
    wal_close(w);
    /* Repair drops everything after the hole. */
    assert_int_equal(wal_repair(io_posix(), dir, err), DV_OK);
    snprintf(want, sizeof want,
             "cut %s at offset 0: %" PRIu64 " records after LSN %" PRIu64 " dropped (records "
             "%" PRIu64 "..%" PRIu64 " missing)",
             name, 150 - firsts[2] + 1, firsts[1] - 1, firsts[1], firsts[2] - 1);
    assert_string_equal(err, want);
    w = reopen_check(dir, &o, 1, firsts[1] - 1, false);
    wal_close(w);
    /* The first segment gone: records 1.. are missing. */
    remove_dir(dir);
    make_dir(dir);
    build_wal(dir, 150);
    seg_file(dir, firsts[0], path, NULL);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err), DV_ECORRUPT);
    snprintf(want, sizeof want, "records 1..%" PRIu64 " missing at offset 0", firsts[1] - 1);
    assert_non_null(strstr(err, want));
    remove_dir(dir);
    loud(q);
}

/* ---- failures ---------------------------------------------------------------------------- */

/* A failed write is undone and the LSN reused; a failed fdatasync makes the WAL fail. */
static void test_write_and_sync_failures(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct io_fault f;
    struct wal *w;
    uint64_t l;
    uint8_t b[3000];
    FILE *q = quiet();
    memset(b, 7, sizeof b);
    make_dir(dir);
    small_opts(&o);
    io_fault_init(&f, io_posix());
    assert_int_equal(wal_open(&f.io, dir, &o, 1, NULL, NULL, &w, err), DV_OK);
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_OK);
    f.kind = IO_FAULT_ERRNO;
    f.err = ENOSPC;
    f.fail_at = f.count + 1; /* the next pwrite */
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_EFULL);
    assert_non_null(strstr(err, "No space left"));
    assert_non_null(strstr(err, "LSN 2"));
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_OK);
    assert_int_equal(l, 2);
    f.kind = IO_FAULT_SHORT;
    f.err = EIO;
    f.fired = false;
    f.fail_at = f.count + 1;
    assert_int_equal(wal_append(w, 1, b, 100, &l, err), DV_EIO);
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_OK);
    assert_int_equal(l, 3);
    assert_int_equal(wal_sync(w, 3, err), DV_OK);
    /* The fdatasync of the next sync fails. */
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_OK);
    f.kind = IO_FAULT_ERRNO;
    f.fired = false;
    f.fail_at = f.count + 1;
    assert_int_equal(wal_sync(w, l, err), DV_EIO);
    assert_non_null(strstr(err, "fdatasync"));
    assert_int_equal(wal_durable_lsn(w), 3);
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_EIO);
    assert_int_equal(wal_sync(w, 3, err), DV_EIO);
    assert_int_equal(wal_flush(w, err), DV_EIO);
    wal_close(w);
    struct counter c = {0};
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, count_rec, &c, &w, err), DV_OK);
    assert_int_equal(c.count, 4);
    wal_close(w);
    remove_dir(dir);
    loud(q);
}

/*
 * A full disk (io_fault_set_full): appends fail with DV_EFULL, also when the segment is full
 * and rotation cannot create the next one; nothing is consumed or marked failed; once space
 * is back the next append takes the next LSN, and a reopen finds exactly what was appended.
 */
static void test_disk_full(void **state)
{
    char dir[64], err[DV_ERRMSG_SIZE];
    struct wal_opts o;
    struct io_fault f;
    struct wal *w;
    uint64_t l;
    uint8_t b[3000];
    FILE *q = quiet();
    memset(b, 7, sizeof b);
    make_dir(dir);
    small_opts(&o);
    o.compress = false;
    io_fault_init(&f, io_posix());
    assert_int_equal(wal_open(&f.io, dir, &o, 1, NULL, NULL, &w, err), DV_OK);
    for (int round = 0; round < 40; round++) { /* 40 x 3 KiB: two rotations on 64 KiB */
        assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_OK);
        io_fault_set_full(&f, true);
        for (int i = 0; i < 3; i++) {
            err[0] = '\0';
            assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_EFULL);
            assert_non_null(strstr(err, "No space left on device"));
        }
        assert_int_equal(wal_last_lsn(w), (uint64_t)round + 1);
        assert_int_equal(wal_sync(w, wal_last_lsn(w), err), DV_OK); /* fsync still works */
        io_fault_set_full(&f, false);
    }
    struct wal_stats st;
    wal_get_stats(w, &st);
    assert_true(st.rotations >= 1);
    assert_int_equal(wal_append(w, 1, b, sizeof b, &l, err), DV_OK);
    assert_int_equal(l, 41);
    wal_close(w);
    struct counter c = {0};
    assert_int_equal(wal_open(io_posix(), dir, &o, 1, count_rec, &c, &w, err), DV_OK);
    assert_int_equal(c.count, 41);
    assert_int_equal(wal_last_lsn(w), 41);
    wal_close(w);
    remove_dir(dir);
    loud(q);
}

/* State of one fault-sweep run, as the caller of the WAL sees it. */
struct sweep {
    uint64_t ok_upto;    /* last LSN appended successfully */
    uint64_t acked;      /* last LSN a successful wal_sync/wal_flush covered */
    uint64_t checkpoint; /* largest LSN passed to wal_drop_before */
    int bad;             /* an error without a message, or a corrupt report */
};

static void sweep_err(struct sweep *s, int rc, const char *err)
{
    if (rc == DV_OK)
        return;
    if (err[0] == '\0' || rc == DV_ECORRUPT || rc == DV_EINVAL)
        s->bad++;
}

static void sweep_appends(struct wal *w, struct sweep *s, int n, int sync_every)
{
    static uint8_t buf[MAX_BODY];
    char err[DV_ERRMSG_SIZE];
    for (int i = 0; i < n; i++) {
        uint8_t t;
        uint64_t want = wal_last_lsn(w) + 1, l;
        size_t len = gen_body(want, false, buf, &t);
        err[0] = '\0';
        int rc = wal_append(w, t, buf, len, &l, err);
        sweep_err(s, rc, err);
        if (rc == DV_OK) {
            if (l != want)
                s->bad++;
            s->ok_upto = l;
            if (i % sync_every == 0) {
                err[0] = '\0';
                rc = wal_sync(w, l, err);
                sweep_err(s, rc, err);
                if (rc == DV_OK)
                    s->acked = l;
            }
        }
    }
}

/* open + appends + syncs + rotation + drop_before + close, then reopen + appends + close. */
static void sweep_workload(struct io *io, const char *dir, struct sweep *s)
{
    char err[DV_ERRMSG_SIZE] = "";
    struct wal_opts o;
    struct wal *w;
    small_opts(&o);
    int rc = wal_open(io, dir, &o, 1, NULL, NULL, &w, err);
    sweep_err(s, rc, err);
    if (rc != DV_OK)
        return;
    sweep_appends(w, s, 30, 4);
    if (s->ok_upto > 0) {
        uint64_t cp = s->ok_upto / 2;
        err[0] = '\0';
        sweep_err(s, wal_drop_before(w, cp, err), err);
        s->checkpoint = cp;
    }
    err[0] = '\0';
    uint64_t last = wal_last_lsn(w);
    rc = wal_flush(w, err);
    sweep_err(s, rc, err);
    if (rc == DV_OK)
        s->acked = last;
    wal_close(w);

    static struct check c;
    check_init(&c, s->checkpoint + 1, false);
    err[0] = '\0';
    rc = wal_open(io, dir, &o, s->checkpoint + 1, check_rec, &c, &w, err);
    sweep_err(s, rc, err);
    if (c.bad)
        s->bad++;
    if (rc != DV_OK)
        return;
    sweep_appends(w, s, 8, 3);
    wal_close(w);
}

static void sweep_kind(enum io_fault_kind kind, int e)
{
    long runs = 0;
    for (long at = 1; at < 5000; at++) {
        char dir[64], err[DV_ERRMSG_SIZE];
        struct io_fault f;
        struct sweep s = {0};
        make_dir(dir);
        io_fault_init(&f, io_posix());
        f.kind = kind;
        f.err = e;
        f.fail_at = at;
        sweep_workload(&f.io, dir, &s);
        if (s.bad)
            fail_msg("kind %d errno %d fail_at %ld: bad error report", kind, e, at);

        /* What is on disk: a prefix of what was appended, holding every acknowledged record. */
        struct wal_opts o;
        struct wal *w;
        static struct check c;
        small_opts(&o);
        check_init(&c, s.checkpoint + 1, false);
        int rc = wal_open(io_posix(), dir, &o, s.checkpoint + 1, check_rec, &c, &w, err);
        if (rc != DV_OK)
            fail_msg("kind %d fail_at %ld: reopen: %s (%s)", kind, at, dv_errname(rc), err);
        if (c.bad != 0 || c.next - 1 < s.acked || c.next - 1 > s.ok_upto)
            fail_msg("kind %d fail_at %ld: replayed up to %" PRIu64 ", acked %" PRIu64
                     ", appended %" PRIu64 ", bad %d",
                     kind, at, c.next - 1, s.acked, s.ok_upto, c.bad);
        wal_close(w);
        remove_dir(dir);
        runs++;
        if (!f.fired)
            break;
    }
    print_message("# fault sweep kind %d errno %d: %ld runs\n", kind, e, runs);
    assert_true(runs > 20);
}

static void test_fault_sweep(void **state)
{
    FILE *q = quiet();
    sweep_kind(IO_FAULT_ERRNO, ENOSPC);
    sweep_kind(IO_FAULT_ERRNO, EIO);
    sweep_kind(IO_FAULT_SHORT, EIO);
    sweep_kind(IO_FAULT_CRASH, EIO);
    loud(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_args),
        cmocka_unit_test(test_roundtrip_and_reopen),
        cmocka_unit_test(test_from_lsn),
        cmocka_unit_test(test_drop_before),
        cmocka_unit_test(test_read_during_appends),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_interval),
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_corrupt_lsn_order),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_cut_after),
        cmocka_unit_test(test_write_and_sync_failures),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_fault_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
