/* io.h - the IO seam of storage: every file operation, fsync and the clock go through it. */
#ifndef DV_IO_H
#define DV_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A table of function pointers (SQLite's VFS, raft's raft_io). Storage code never calls the
 * OS directly, so tests can swap in io_fault to inject ENOSPC, EIO, short writes or a crash
 * after the n-th operation. Every call returns >= 0 on success and -errno on failure.
 * An io is shared by all threads of a process: implementations are thread-safe.
 */
struct io {
    int (*open)(struct io *io, const char *path, int flags, int mode); /* fd */
    ssize_t (*pwrite)(struct io *io, int fd, const void *buf, size_t n, off_t off);
    ssize_t (*pread)(struct io *io, int fd, void *buf, size_t n, off_t off);
    int (*fsync)(struct io *io, int fd);     /* data and metadata */
    int (*fdatasync)(struct io *io, int fd); /* data (and the size) */
    int (*ftruncate)(struct io *io, int fd, off_t len);
    int (*fsize)(struct io *io, int fd, off_t *size);
    int (*close)(struct io *io, int fd);
    int (*rename)(struct io *io, const char *from, const char *to);
    int (*unlink)(struct io *io, const char *path);
    int (*mkdir)(struct io *io, const char *path, int mode); /* -EEXIST when it exists */
    int (*rmdir)(struct io *io, const char *path);
    /* Names in `dir` (no "." and ".."): a malloc'd array of malloc'd strings, *n entries. */
    int (*list)(struct io *io, const char *dir, char ***names, size_t *n);
    uint64_t (*now_ns)(struct io *io); /* monotonic clock */
};

/* The real thing: POSIX calls, EINTR retried, short writes completed. */
struct io *io_posix(void);

/* ---- helpers on top of any io ------------------------------------------------------------ */

/* Writes all n bytes at off (loops over short writes). 0 or -errno (-ENOSPC on a 0 write). */
int io_write_all(struct io *io, int fd, const void *buf, size_t n, off_t off);

/* Reads up to n bytes at off (loops over short reads): the count (< n only at end of file). */
ssize_t io_read_full(struct io *io, int fd, void *buf, size_t n, off_t off);

/* fsync of a directory (after creating, renaming or removing an entry in it). */
int io_fsync_dir(struct io *io, const char *dir);

/*
 * Replaces `path` atomically with `n` bytes: writes path.tmp, fsyncs it, renames it over
 * `path`, fsyncs the directory. On failure `path` is untouched and path.tmp removed.
 */
int io_replace_file(struct io *io, const char *path, const void *buf, size_t n);

/* Reads a whole (small) file into a malloc'd buffer; refuses files over `max` bytes. */
int io_read_file(struct io *io, const char *path, size_t max, void **buf, size_t *n);

/* Removes a directory and the files in it (one level; no subdirectories expected). */
int io_remove_dir(struct io *io, const char *dir);

void io_free_list(char **names, size_t n);

/*
 * The dv code (common/err.h) of an io error: a full disk or quota (ENOSPC, EDQUOT) is
 * DV_EFULL, so that callers can tell "no space left on device" from a failing disk (EIO,
 * EFBIG, EROFS: DV_EIO); ENOMEM is DV_ENOMEM; anything else DV_EOS.
 */
int io_dv_code(int neg_errno);

/* True for -ENOSPC and -EDQUOT: the write may succeed once space is freed. */
bool io_err_full(int neg_errno);

/* ---- fault injection (tests) ------------------------------------------------------------- */

enum io_fault_kind {
    IO_FAULT_ERRNO = 0, /* the operation fails with `err` (ENOSPC, EIO, ...) */
    IO_FAULT_SHORT = 1, /* a write stores half of its bytes, then fails with `err` */
    IO_FAULT_CRASH = 2, /* a write stores a prefix; from then on every operation fails (EIO)
                           as if the process had died: nothing more reaches the disk */
};

/*
 * Wraps `inner`: counts operations (open, pwrite, pread, fsync, fdatasync, ftruncate, close
 * excepted, rename, unlink, mkdir, rmdir, list) and fails the `fail_at`-th (1-based; 0 =
 * never). `only_writes` restricts counting to operations that change the disk. Once one
 * fault fired, `sticky` keeps failing every later operation too.
 */
struct io_fault {
    struct io io; /* must be first: pass &f->io */
    struct io *inner;
    long fail_at;
    enum io_fault_kind kind;
    int err;
    bool only_writes;
    bool sticky;
    /* state, read by tests */
    long count; /* operations counted so far */
    bool fired;
    uint64_t clock_offset_ns; /* added to inner->now_ns: tests move time forward */
    bool full;                /* io_fault_set_full */
};

/* Initialises `f` around `inner` with no fault armed (fail_at 0). */
void io_fault_init(struct io_fault *f, struct io *inner);

/*
 * Full-disk mode, on or off at any time from any thread: while on, every pwrite, mkdir and
 * open with O_CREAT fails with ENOSPC, uncounted, and everything else (reads, fsync,
 * shrinking ftruncate, rename, unlink) works, as on a file system with no free block.
 */
void io_fault_set_full(struct io_fault *f, bool full);

#endif
