/* io.c - the POSIX io, helpers on top of any io, and the fault-injecting io of the tests. */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

/* ---- POSIX ------------------------------------------------------------------------------- */

static int px_open(struct io *io, const char *path, int flags, int mode)
{
    int fd;
    do
        fd = open(path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

static ssize_t px_pwrite(struct io *io, int fd, const void *buf, size_t n, off_t off)
{
    ssize_t r;
    do
        r = pwrite(fd, buf, n, off);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static ssize_t px_pread(struct io *io, int fd, void *buf, size_t n, off_t off)
{
    ssize_t r;
    do
        r = pread(fd, buf, n, off);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static int px_fsync(struct io *io, int fd)
{
    return fsync(fd) < 0 ? -errno : 0;
}

static int px_fdatasync(struct io *io, int fd)
{
    return fdatasync(fd) < 0 ? -errno : 0;
}

static int px_ftruncate(struct io *io, int fd, off_t len)
{
    int r;
    do
        r = ftruncate(fd, len);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

static int px_fsize(struct io *io, int fd, off_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    *size = st.st_size;
    return 0;
}

static int px_close(struct io *io, int fd)
{
    /* Linux frees the descriptor even when close fails: never retry. */
    return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

static int px_rename(struct io *io, const char *from, const char *to)
{
    return rename(from, to) < 0 ? -errno : 0;
}

static int px_unlink(struct io *io, const char *path)
{
    return unlink(path) < 0 ? -errno : 0;
}

static int px_mkdir(struct io *io, const char *path, int mode)
{
    return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int px_rmdir(struct io *io, const char *path)
{
    return rmdir(path) < 0 ? -errno : 0;
}

static int px_list(struct io *io, const char *dir, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    char **v = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(v, ncap * sizeof(*nv));
            if (nv == NULL) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if ((v[len] = strdup(e->d_name)) == NULL) {
            rc = -ENOMEM;
            break;
        }
        len++;
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = -errno;
    closedir(d);
    if (rc < 0) {
        io_free_list(v, len);
        return rc;
    }
    *names = v;
    *n = len;
    return 0;
}

static uint64_t px_now_ns(struct io *io)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct io posix_io = {
    .open = px_open,
    .pwrite = px_pwrite,
    .pread = px_pread,
    .fsync = px_fsync,
    .fdatasync = px_fdatasync,
    .ftruncate = px_ftruncate,
    .fsize = px_fsize,
    .close = px_close,
    .rename = px_rename,
    .unlink = px_unlink,
    .mkdir = px_mkdir,
    .rmdir = px_rmdir,
    .list = px_list,
    .now_ns = px_now_ns,
};

struct io *io_posix(void)
{
    return &posix_io;
}

/* ---- helpers ----------------------------------------------------------------------------- */

bool io_err_full(int neg_errno)
{
    return neg_errno == -ENOSPC || neg_errno == -EDQUOT;
}

int io_dv_code(int neg_errno)
{
    if (io_err_full(neg_errno))
        return DV_EFULL;
    switch (-neg_errno) {
    case ENOMEM:
        return DV_ENOMEM;
    case EIO:
    case EFBIG:
    case EROFS:
        return DV_EIO;
    default:
        return DV_EOS;
    }
}

int io_write_all(struct io *io, int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = io->pwrite(io, fd, p, n, off);
        if (w < 0)
            return (int)w;
        if (w == 0)
            return -ENOSPC;
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

ssize_t io_read_full(struct io *io, int fd, void *buf, size_t n, off_t off)
{
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = io->pread(io, fd, p + got, n - got, off + (off_t)got);
        if (r < 0)
            return r;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int io_fsync_dir(struct io *io, const char *dir)
{
    int fd = io->open(io, dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return fd;
    int rc = io->fsync(io, fd);
    io->close(io, fd);
    return rc;
}

/* The directory part of `path` ("." when there is none), into buf. */
static void dir_of(const char *path, char *buf, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(buf, size, ".");
    } else if (slash == path) {
        snprintf(buf, size, "/");
    } else {
        snprintf(buf, size, "%.*s", (int)(slash - path), path);
    }
}

int io_replace_file(struct io *io, const char *path, const void *buf, size_t n)
{
    char tmp[4096], dir[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    dir_of(path, dir, sizeof(dir));
    int fd = io->open(io, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    int rc = io_write_all(io, fd, buf, n, 0);
    if (rc == 0)
        rc = io->fsync(io, fd);
    int crc = io->close(io, fd);
    if (rc == 0)
        rc = crc;
    if (rc == 0)
        rc = io->rename(io, tmp, path);
    if (rc < 0) {
        io->unlink(io, tmp);
        return rc;
    }
    return io_fsync_dir(io, dir);
}

int io_read_file(struct io *io, const char *path, size_t max, void **buf, size_t *n)
{
    int fd = io->open(io, path, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    off_t size;
    int rc = io->fsize(io, fd, &size);
    if (rc < 0)
        goto err_close;
    if ((uint64_t)size > max) {
        rc = -EFBIG;
        goto err_close;
    }
    void *p = malloc(size > 0 ? (size_t)size : 1);
    if (p == NULL) {
        rc = -ENOMEM;
        goto err_close;
    }
    ssize_t r = io_read_full(io, fd, p, (size_t)size, 0);
    if (r < 0) {
        free(p);
        rc = (int)r;
        goto err_close;
    }
    io->close(io, fd);
    *buf = p;
    *n = (size_t)r;
    return 0;

err_close:
    io->close(io, fd);
    return rc;
}

int io_remove_dir(struct io *io, const char *dir)
{
    char **names;
    size_t n;
    int rc = io->list(io, dir, &names, &n);
    if (rc < 0)
        return rc == -ENOENT ? 0 : rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        rc = io->unlink(io, path);
        if (rc == -ENOENT)
            rc = 0;
    }
    io_free_list(names, n);
    if (rc == 0)
        rc = io->rmdir(io, dir);
    return rc;
}

void io_free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- fault injection --------------------------------------------------------------------- */

#define FAULT(io) ((struct io_fault *)(io))

/* Counts one operation; returns the errno to fail it with (0: let it through). */
static int fault_tick(struct io_fault *f, bool writes)
{
    if (__atomic_load_n(&f->fired, __ATOMIC_ACQUIRE) && (f->sticky || f->kind == IO_FAULT_CRASH))
        return f->kind == IO_FAULT_CRASH ? EIO : f->err;
    if (f->only_writes && !writes)
        return 0;
    long c = __atomic_add_fetch(&f->count, 1, __ATOMIC_ACQ_REL);
    if (f->fail_at > 0 && c == f->fail_at) {
        __atomic_store_n(&f->fired, true, __ATOMIC_RELEASE);
        return f->kind == IO_FAULT_CRASH ? EIO : f->err;
    }
    return 0;
}

/* True when this failing write is the one that fired (not a later sticky failure). */
static bool fault_is_first(struct io_fault *f)
{
    return f->fail_at > 0 && __atomic_load_n(&f->count, __ATOMIC_ACQUIRE) == f->fail_at;
}

/* The full-disk mode (io_fault_set_full): true while it is on. */
static bool fault_full(struct io_fault *f)
{
    return __atomic_load_n(&f->full, __ATOMIC_ACQUIRE);
}

static int ft_open(struct io *io, const char *path, int flags, int mode)
{
    bool w = (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
    if ((flags & O_CREAT) && fault_full(FAULT(io)))
        return -ENOSPC;
    int e = fault_tick(FAULT(io), w);
    if (e)
        return -e;
    return FAULT(io)->inner->open(FAULT(io)->inner, path, flags, mode);
}

static ssize_t ft_pwrite(struct io *io, int fd, const void *buf, size_t n, off_t off)
{
    struct io_fault *f = FAULT(io);
    if (n > 0 && fault_full(f))
        return -ENOSPC;
    int e = fault_tick(f, true);
    if (e) {
        /* The write that fires may leave a prefix on disk: a torn write. */
        if (fault_is_first(f) && f->kind != IO_FAULT_ERRNO && n > 1)
            f->inner->pwrite(f->inner, fd, buf, n / 2, off);
        return -e;
    }
    return f->inner->pwrite(f->inner, fd, buf, n, off);
}

static ssize_t ft_pread(struct io *io, int fd, void *buf, size_t n, off_t off)
{
    int e = fault_tick(FAULT(io), false);
    if (e)
        return -e;
    return FAULT(io)->inner->pread(FAULT(io)->inner, fd, buf, n, off);
}

static int ft_fsync(struct io *io, int fd)
{
    int e = fault_tick(FAULT(io), true);
    if (e)
        return -e;
    return FAULT(io)->inner->fsync(FAULT(io)->inner, fd);
}

static int ft_fdatasync(struct io *io, int fd)
{
    int e = fault_tick(FAULT(io), true);
    if (e)
        return -e;
    return FAULT(io)->inner->fdatasync(FAULT(io)->inner, fd);
}

static int ft_ftruncate(struct io *io, int fd, off_t len)
{
    int e = fault_tick(FAULT(io), true);
    if (e)
        return -e;
    return FAULT(io)->inner->ftruncate(FAULT(io)->inner, fd, len);
}

static int ft_fsize(struct io *io, int fd, off_t *size)
{
    int e = fault_tick(FAULT(io), false);
    if (e)
        return -e;
    return FAULT(io)->inner->fsize(FAULT(io)->inner, fd, size);
}

static int ft_close(struct io *io, int fd)
{
    /* Never fails: descriptors must not leak whatever the test injects. */
    return FAULT(io)->inner->close(FAULT(io)->inner, fd);
}

static int ft_rename(struct io *io, const char *from, const char *to)
{
    int e = fault_tick(FAULT(io), true);
    if (e)
        return -e;
    return FAULT(io)->inner->rename(FAULT(io)->inner, from, to);
}

static int ft_unlink(struct io *io, const char *path)
{
    int e = fault_tick(FAULT(io), true);
    if (e)
        return -e;
    return FAULT(io)->inner->unlink(FAULT(io)->inner, path);
}

static int ft_mkdir(struct io *io, const char *path, int mode)
{
    if (fault_full(FAULT(io)))
        return -ENOSPC;
    int e = fault_tick(FAULT(io), true);
    if (e)
        return -e;
    return FAULT(io)->inner->mkdir(FAULT(io)->inner, path, mode);
}

static int ft_rmdir(struct io *io, const char *path)
{
    int e = fault_tick(FAULT(io), true);
    if (e)
        return -e;
    return FAULT(io)->inner->rmdir(FAULT(io)->inner, path);
}

static int ft_list(struct io *io, const char *dir, char ***names, size_t *n)
{
    int e = fault_tick(FAULT(io), false);
    if (e)
        return -e;
    return FAULT(io)->inner->list(FAULT(io)->inner, dir, names, n);
}

static uint64_t ft_now_ns(struct io *io)
{
    struct io_fault *f = FAULT(io);
    return f->inner->now_ns(f->inner) + __atomic_load_n(&f->clock_offset_ns, __ATOMIC_ACQUIRE);
}

void io_fault_init(struct io_fault *f, struct io *inner)
{
    memset(f, 0, sizeof(*f));
    f->io = (struct io){
        .open = ft_open,
        .pwrite = ft_pwrite,
        .pread = ft_pread,
        .fsync = ft_fsync,
        .fdatasync = ft_fdatasync,
        .ftruncate = ft_ftruncate,
        .fsize = ft_fsize,
        .close = ft_close,
        .rename = ft_rename,
        .unlink = ft_unlink,
        .mkdir = ft_mkdir,
        .rmdir = ft_rmdir,
        .list = ft_list,
        .now_ns = ft_now_ns,
    };
    f->inner = inner;
    f->err = EIO;
}

void io_fault_set_full(struct io_fault *f, bool full)
{
    __atomic_store_n(&f->full, full, __ATOMIC_RELEASE);
}
