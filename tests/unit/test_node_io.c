/* test_node_io.c - fault sweeps through the node's IO seam (node_opts.io): snapshot sessions,
 * node.meta updates (fences), replica create and drop. Each sweep fails the 1st, 2nd, ...
 * file operation (SQLite's do_faultsim_test) until a run meets no fault, and checks after
 * every failure that the node answered with an error, keeps serving, and that what is on disk
 * reopens as the old state or the new one, never something in between. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "io.h"
#include "node.h"
#include "part_util.h"

#define DIM    8
#define POINTS 300
#define COLL   "c"

struct env {
    char dir[4096];
    struct io_fault f;
    struct node *n;
};

static struct node_opts opts_for(struct env *e)
{
    struct node_opts o = {0};
    part_opts_default(&o.part);
    o.snapshot_idle_ms = 1;
    o.force_fsync = -1;
    o.io = e ? &e->f.io : NULL;
    return o;
}

static void env_open(struct env *e)
{
    char err[DV_ERRMSG_SIZE] = "";
    struct node_opts o = opts_for(e);
    int rc = node_open(e->dir, &o, &e->n, err);
    if (rc != DV_OK)
        fail_msg("node_open: %s", err);
}

static void env_close(struct env *e)
{
    node_close(e->n, false);
    e->n = NULL;
}

static void arm(struct env *e, long at, int kind)
{
    e->f.count = 0;
    e->f.fired = false;
    e->f.fail_at = at;
    e->f.kind = (enum io_fault_kind)kind;
    e->f.err = kind == IO_FAULT_ERRNO ? ENOSPC : EIO;
    e->f.sticky = false;
}

static void disarm(struct env *e)
{
    e->f.fail_at = 0;
}

static int create(struct env *e, uint32_t part, char *err)
{
    struct hnsw_params ix;
    hnsw_params_default(&ix);
    ix.dim = DIM;
    uint64_t known = 0;
    return node_create(e->n, COLL, strlen(COLL), part, 1, 7, &ix, NULL, 0, WAL_SYNC_ALWAYS, &known,
                       err);
}

static struct node_replica *acquire(struct env *e, uint32_t part)
{
    struct node_replica *r = NULL;
    uint64_t known = 0;
    char err[DV_ERRMSG_SIZE];
    if (node_acquire(e->n, COLL, strlen(COLL), part, 1, &r, &known, err) != DV_OK)
        return NULL;
    return r;
}

static uint64_t points_of(struct env *e, uint32_t part)
{
    struct node_replica *r = acquire(e, part);
    if (r == NULL)
        return UINT64_MAX;
    struct part_info in;
    part_get_info(r->part, &in);
    node_release(e->n, r);
    return in.points;
}

static void env_setup(struct env *e)
{
    memset(e, 0, sizeof *e);
    pu_tmpdir(e->dir, sizeof e->dir, "node");
    mkdir(e->dir, 0755);
    io_fault_init(&e->f, io_posix());
    env_open(e);
    char err[DV_ERRMSG_SIZE] = "";
    assert_int_equal(create(e, 0, err), DV_OK);
    struct node_replica *r = acquire(e, 0);
    assert_non_null(r);
    uint64_t lsn;
    assert_int_equal(pu_upsert_range(r->part, 1, POINTS, 1, &lsn, err), DV_OK);
    node_release(e->n, r);
}

static void env_teardown(struct env *e)
{
    if (e->n)
        env_close(e);
    pu_tmpdir_free(e->dir);
}

/* Files under dir/tmp (snapshot sessions write theirs there). */
static int tmp_files(struct env *e)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/tmp", e->dir);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int k = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        k += de->d_name[0] != '.';
    closedir(d);
    return k;
}

static void nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads a whole snapshot of partition 0 through sessions; DV_OK with the stream in *out. */
static int read_snapshot(struct env *e, struct membuf *out, char *err)
{
    struct node_replica *r = acquire(e, 0);
    if (r == NULL)
        return DV_ENOTFOUND;
    uint64_t session = 0, off = 0, lsn = 0, total = 0;
    bool done = false;
    int rc = DV_OK;
    while (!done && rc == DV_OK) {
        void *data = NULL;
        size_t len = 0;
        rc = node_snapshot_read(e->n, r, &session, off, 64 * 1024, &data, &len, &lsn, &total, &done,
                                err);
        if (rc == DV_OK) {
            buf_append(&out->b, data, len);
            off += len;
        }
        free(data);
    }
    node_release(e->n, r);
    return rc;
}

/* Every file operation of a snapshot session fails once, in turn (errno, then a short write):
 * the read fails with a message, the session's file is gone once it expires, and the node
 * still serves a complete snapshot that restores to every point. */
static void test_snapshot_sweep(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e);
    for (int kind = IO_FAULT_ERRNO; kind <= IO_FAULT_SHORT; kind++) {
        long at = 1;
        for (;; at++) {
            char err[DV_ERRMSG_SIZE] = "";
            struct membuf mb = {BUF_INIT, 0};
            arm(&e, at, kind);
            int rc = read_snapshot(&e, &mb, err);
            bool fired = e.f.fired;
            disarm(&e);
            if (!fired) {
                assert_int_equal(rc, DV_OK);
                buf_free(&mb.b);
                break;
            }
            if (rc != DV_OK)
                assert_true(err[0] != '\0');
            buf_free(&mb.b);
            nap_ms(3);
            node_snapshot_expire(e.n);
            assert_int_equal(tmp_files(&e), 0);
            /* The node serves a whole, restorable snapshot right after. */
            struct membuf ok = {BUF_INIT, 0};
            assert_int_equal(read_snapshot(&e, &ok, err), DV_OK);
            char rdir[4200];
            snprintf(rdir, sizeof rdir, "%s/restored", e.dir);
            struct part_opts po;
            part_opts_default(&po);
            struct part *p = NULL;
            if (part_restore(io_posix(), rdir, pu_mem_source, &ok, &po, &p, err) != DV_OK)
                fail_msg("restore after a fault at op %ld: %s", at, err);
            struct part_info in;
            part_get_info(p, &in);
            assert_int_equal(in.points, POINTS);
            part_close(p);
            pu_rmtree(rdir);
            buf_free(&ok.b);
            nap_ms(3);
            node_snapshot_expire(e.n);
        }
        assert_true(at > 2); /* the sweep reached the session's file operations */
    }
    env_teardown(&e);
}

/* Fencing persists node.meta first: a failed write fails the fence, leaves the replica
 * unfenced in memory, and the node.meta on disk reopens as unfenced or fenced, never torn. */
static void test_fence_meta_sweep(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e);
    int after_rename = 0, failed = 0;
    for (long at = 1;; at++) {
        char err[DV_ERRMSG_SIZE] = "";
        struct node_replica *r = acquire(&e, 0);
        assert_non_null(r);
        arm(&e, at, IO_FAULT_SHORT);
        uint64_t lsn = 0;
        int rc = node_fence(e.n, r, true, 1000, &lsn, err);
        bool fired = e.f.fired;
        disarm(&e);
        if (rc != DV_OK) {
            assert_true(err[0] != '\0');
            assert_false(node_fenced(e.n, r));
        } else {
            assert_true(node_fenced(e.n, r));
        }
        failed += rc != DV_OK;
        node_release(e.n, r);
        /* Reopen: the replica opens with the state node.meta holds. */
        env_close(&e);
        env_open(&e);
        assert_int_equal(node_open_failures(e.n), 0);
        r = acquire(&e, 0);
        assert_non_null(r);
        /* A fence that succeeded is on disk. One that failed may be on disk or not: a fault
         * after node.meta's rename (the directory's fsync) fails the call although the new
         * file is in place, so the reopened replica is then fenced ("old or new"). */
        if (rc == DV_OK)
            assert_true(node_fenced(e.n, r));
        else if (node_fenced(e.n, r))
            after_rename++;
        assert_int_equal(node_fence(e.n, r, false, 1000, &lsn, err), DV_OK);
        node_release(e.n, r);
        assert_int_equal(points_of(&e, 0), POINTS);
        if (!fired)
            break;
    }
    assert_true(failed >= 3);           /* the tmp file's open, write, fsync at least */
    assert_true(after_rename < failed); /* most failures leave the old node.meta */
    env_teardown(&e);
}

/* Creating a replica (built under a hidden name, renamed into place) and dropping one (renamed
 * away, then removed) with every operation failing in turn: the call fails with a message or
 * succeeds, and after a restart the replica either exists whole (opens, empty) or not at all,
 * with no hidden leftovers; partition 0 keeps its points throughout. */
static void test_create_drop_sweep(void **state)
{
    (void)state;
    struct env e;
    env_setup(&e);
    for (int phase = 0; phase < 2; phase++) {
        for (long at = 1;; at++) {
            char err[DV_ERRMSG_SIZE] = "";
            if (phase == 1) { /* drop: partition 1 exists before each try */
                assert_int_equal(create(&e, 1, err), DV_OK);
            }
            arm(&e, at, IO_FAULT_ERRNO);
            uint64_t known = 0;
            int rc = phase == 0 ? create(&e, 1, err)
                                : node_drop(e.n, COLL, strlen(COLL), 1, 1, &known, err);
            bool fired = e.f.fired;
            disarm(&e);
            if (rc != DV_OK)
                assert_true(err[0] != '\0');
            env_close(&e);
            env_open(&e);
            assert_int_equal(node_open_failures(e.n), 0);
            uint64_t pts = points_of(&e, 1);
            if (phase == 0 && rc == DV_OK)
                assert_int_equal(pts, 0); /* created: it exists, empty */
            if (phase == 1 && rc == DV_OK)
                assert_true(pts == UINT64_MAX); /* dropped: gone */
            assert_true(pts == 0 || pts == UINT64_MAX);
            assert_int_equal(points_of(&e, 0), POINTS);
            /* No hidden replica directories are left after the restart. */
            char rp[4200];
            snprintf(rp, sizeof rp, "%s/replicas", e.dir);
            DIR *d = opendir(rp);
            assert_non_null(d);
            struct dirent *de;
            while ((de = readdir(d)) != NULL)
                if (de->d_name[0] == '.' && strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                    fail_msg("leftover %s after a fault at op %ld (phase %d)", de->d_name, at,
                             phase);
            closedir(d);
            /* Back to the phase's starting point: partition 1 absent. */
            if (pts == 0)
                assert_int_equal(node_drop(e.n, COLL, strlen(COLL), 1, 1, &known, err), DV_OK);
            if (!fired)
                break;
        }
    }
    env_teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_sweep),
        cmocka_unit_test(test_fence_meta_sweep),
        cmocka_unit_test(test_create_drop_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
