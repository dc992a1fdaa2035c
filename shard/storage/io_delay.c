/* io_delay.c - the slow-disk io of the tests (DVEC_IO_DELAY_FILE): delays read from a file. */
#include "io_delay.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct io_delay {
    struct io io; /* must be first */
    struct io *inner;
    char *path;
    uint32_t write_ms;      /* atomic */
    uint32_t fsync_ms;      /* atomic */
    uint64_t next_check_ns; /* atomic: the file is not looked at before this (inner clock) */
    pthread_mutex_t mu;     /* one thread looks at the file at a time; guards the rest */
    bool seen;              /* the file existed at the last look, with this identity: */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

#define DELAY(io) ((struct io_delay *)(io))

/* ---- the file ---------------------------------------------------------------------------- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* "key=N" with N decimal, 0..IO_DELAY_MAX_MS, into *v; false for anything else. */
static bool word_value(const char *w, size_t n, const char *key, uint32_t *v)
{
    size_t kl = strlen(key);
    if (n <= kl + 1 || memcmp(w, key, kl) != 0 || w[kl] != '=')
        return false;
    uint64_t x = 0;
    for (size_t i = kl + 1; i < n; i++) {
        if (w[i] < '0' || w[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(w[i] - '0');
        if (x > IO_DELAY_MAX_MS)
            return false;
    }
    *v = (uint32_t)x;
    return true;
}

int io_delay_parse(const char *text, size_t n, struct io_delay_cfg *out, char *bad, size_t bad_size)
{
    struct io_delay_cfg c = {0, 0};
    size_t i = 0;
    *out = c;
    if (bad_size > 0)
        bad[0] = '\0';
    while (i < n) {
        while (i < n && is_space(text[i]))
            i++;
        size_t start = i;
        while (i < n && !is_space(text[i]))
            i++;
        if (i == start)
            break;
        const char *w = text + start;
        size_t len = i - start;
        if (!word_value(w, len, "write_ms", &c.write_ms) &&
            !word_value(w, len, "fsync_ms", &c.fsync_ms)) {
            if (bad_size > 0) {
                size_t k = len < bad_size - 1 ? len : bad_size - 1;
                for (size_t j = 0; j < k; j++) /* a word to print: no control bytes */
                    bad[j] = (unsigned char)w[j] < 0x20 || w[j] == 0x7f ? '?' : w[j];
                bad[k] = '\0';
            }
            return -1;
        }
    }
    *out = c;
    return 0;
}

/* Reads the file (plain POSIX: it is a test's knob, not data) and sets the delays (mu held). */
static void load(struct io_delay *d)
{
    char text[IO_DELAY_MAX_FILE + 1], bad[64];
    struct io_delay_cfg c = {0, 0};
    int fd = open(d->path, O_RDONLY | O_CLOEXEC);
    ssize_t n = 0;
    if (fd >= 0) {
        size_t got = 0;
        while (got < sizeof text) {
            ssize_t r = read(fd, text + got, sizeof text - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        close(fd);
        n = (ssize_t)got;
    }
    if (n > IO_DELAY_MAX_FILE)
        log_warn("io delay file too big: no delay", "file=%s max_bytes=%d", d->path,
                 IO_DELAY_MAX_FILE);
    else if (n > 0 && io_delay_parse(text, (size_t)n, &c, bad, sizeof bad) != 0)
        log_warn("io delay file has a bad word: no delay", "file=%s word=\"%s\"", d->path, bad);
    uint32_t ow = __atomic_load_n(&d->write_ms, __ATOMIC_RELAXED);
    uint32_t of = __atomic_load_n(&d->fsync_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&d->write_ms, c.write_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&d->fsync_ms, c.fsync_ms, __ATOMIC_RELAXED);
    if (ow != c.write_ms || of != c.fsync_ms)
        log_info("io delay changed", "file=%s write_ms=%u fsync_ms=%u", d->path, c.write_ms,
                 c.fsync_ms);
}

/* Looks at the file when IO_DELAY_RECHECK_NS passed since the last look; re-reads it when it
 * changed (another inode, size or mtime) or appeared; no delay when it is gone. */
static void refresh(struct io_delay *d)
{
    uint64_t now = d->inner->now_ns(d->inner);
    if (now < __atomic_load_n(&d->next_check_ns, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&d->mu);
    if (now >= __atomic_load_n(&d->next_check_ns, __ATOMIC_RELAXED)) {
        __atomic_store_n(&d->next_check_ns, now + IO_DELAY_RECHECK_NS, __ATOMIC_RELEASE);
        struct stat st;
        if (stat(d->path, &st) != 0) {
            if (d->seen)
                log_info("io delay file gone: no delay", "file=%s", d->path);
            d->seen = false;
            __atomic_store_n(&d->write_ms, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&d->fsync_ms, 0, __ATOMIC_RELAXED);
        } else if (!d->seen || st.st_dev != d->dev || st.st_ino != d->ino ||
                   st.st_size != d->size || st.st_mtim.tv_sec != d->mtime.tv_sec ||
                   st.st_mtim.tv_nsec != d->mtime.tv_nsec) {
            d->seen = true;
            d->dev = st.st_dev;
            d->ino = st.st_ino;
            d->size = st.st_size;
            d->mtime = st.st_mtim;
            load(d);
        }
    }
    pthread_mutex_unlock(&d->mu);
}

/* Sleeps ms milliseconds of real time (EINTR: the rest). */
static void nap(uint32_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void delay_write(struct io_delay *d)
{
    refresh(d);
    uint32_t ms = __atomic_load_n(&d->write_ms, __ATOMIC_RELAXED);
    if (ms > 0)
        nap(ms);
}

static void delay_fsync(struct io_delay *d)
{
    refresh(d);
    uint32_t ms = __atomic_load_n(&d->fsync_ms, __ATOMIC_RELAXED);
    if (ms > 0)
        nap(ms);
}

/* ---- the io: delayed operations, the rest passed through --------------------------------- */

static ssize_t dl_pwrite(struct io *io, int fd, const void *buf, size_t n, off_t off)
{
    delay_write(DELAY(io));
    return DELAY(io)->inner->pwrite(DELAY(io)->inner, fd, buf, n, off);
}

static int dl_ftruncate(struct io *io, int fd, off_t len)
{
    delay_write(DELAY(io));
    return DELAY(io)->inner->ftruncate(DELAY(io)->inner, fd, len);
}

static int dl_fsync(struct io *io, int fd)
{
    delay_fsync(DELAY(io));
    return DELAY(io)->inner->fsync(DELAY(io)->inner, fd);
}

static int dl_fdatasync(struct io *io, int fd)
{
    delay_fsync(DELAY(io));
    return DELAY(io)->inner->fdatasync(DELAY(io)->inner, fd);
}

static int dl_open(struct io *io, const char *path, int flags, int mode)
{
    return DELAY(io)->inner->open(DELAY(io)->inner, path, flags, mode);
}

static ssize_t dl_pread(struct io *io, int fd, void *buf, size_t n, off_t off)
{
    return DELAY(io)->inner->pread(DELAY(io)->inner, fd, buf, n, off);
}

static int dl_fsize(struct io *io, int fd, off_t *size)
{
    return DELAY(io)->inner->fsize(DELAY(io)->inner, fd, size);
}

static int dl_close(struct io *io, int fd)
{
    return DELAY(io)->inner->close(DELAY(io)->inner, fd);
}

static int dl_rename(struct io *io, const char *from, const char *to)
{
    return DELAY(io)->inner->rename(DELAY(io)->inner, from, to);
}

static int dl_unlink(struct io *io, const char *path)
{
    return DELAY(io)->inner->unlink(DELAY(io)->inner, path);
}

static int dl_mkdir(struct io *io, const char *path, int mode)
{
    return DELAY(io)->inner->mkdir(DELAY(io)->inner, path, mode);
}

static int dl_rmdir(struct io *io, const char *path)
{
    return DELAY(io)->inner->rmdir(DELAY(io)->inner, path);
}

static int dl_list(struct io *io, const char *dir, char ***names, size_t *n)
{
    return DELAY(io)->inner->list(DELAY(io)->inner, dir, names, n);
}

static uint64_t dl_now_ns(struct io *io)
{
    return DELAY(io)->inner->now_ns(DELAY(io)->inner);
}

struct io *io_delay_new(struct io *inner, const char *path)
{
    struct io_delay *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    if ((d->path = strdup(path)) == NULL) {
        free(d);
        return NULL;
    }
    d->io = (struct io){
        .open = dl_open,
        .pwrite = dl_pwrite,
        .pread = dl_pread,
        .fsync = dl_fsync,
        .fdatasync = dl_fdatasync,
        .ftruncate = dl_ftruncate,
        .fsize = dl_fsize,
        .close = dl_close,
        .rename = dl_rename,
        .unlink = dl_unlink,
        .mkdir = dl_mkdir,
        .rmdir = dl_rmdir,
        .list = dl_list,
        .now_ns = dl_now_ns,
    };
    d->inner = inner;
    pthread_mutex_init(&d->mu, NULL);
    return &d->io;
}

void io_delay_free(struct io *io)
{
    if (io == NULL)
        return;
    struct io_delay *d = DELAY(io);
    pthread_mutex_destroy(&d->mu);
    free(d->path);
    free(d);
}

struct io_delay_cfg io_delay_current(struct io *io)
{
    struct io_delay *d = DELAY(io);
    refresh(d);
    return (struct io_delay_cfg){__atomic_load_n(&d->write_ms, __ATOMIC_RELAXED),
                                 __atomic_load_n(&d->fsync_ms, __ATOMIC_RELAXED)};
}

struct io *io_delay_from_env(struct io *inner, struct io **owned)
{
    *owned = NULL;
    const char *path = getenv("DVEC_IO_DELAY_FILE");
    if (path == NULL || path[0] == '\0')
        return inner;
    struct io *io = io_delay_new(inner, path);
    if (io == NULL) {
        log_error("io delay: out of memory, running without", "file=%s", path);
        return inner;
    }
    log_warn("io delay file in use (DVEC_IO_DELAY_FILE, a testing hook)", "file=%s", path);
    *owned = io;
    return io;
}
