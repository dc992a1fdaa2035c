/*
 * test_part_crash.c - kill -9 a writing process at random moments; every acknowledged write
 * must survive, each batch all or nothing, nothing duplicated, recall unchanged.
 *
 * A child process opens the replica (fsync `always`, background checkpoints at small
 * thresholds so crashes also land inside checkpoints) and writes batches: before each it
 * reports the intent over a pipe, after the call returns it reports the acknowledgement. The
 * parent kills it with SIGKILL after a random delay, reopens the replica and checks it against
 * its model. Cycles: DVEC_CRASH_CYCLES (default 15); the long run (200 cycles) is documented
 * in docs/formats.md, "How durability is tested".
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "part_util.h"

#define DIM    16
#define NIDS   3000
#define UPSERT 1
#define DELETE 2

struct msg {
    uint32_t kind; /* 1 intent, 2 ack, 3 opened */
    uint32_t op;
    uint64_t first;
    uint32_t count;
    uint32_t ver;
};

static void opts(struct part_opts *o)
{
    part_opts_default(o);
    o->index.dim = DIM;
    o->index.m = 8;
    o->index.ef_construction = 64;
    o->wal.sync = WAL_SYNC_ALWAYS;
    o->wal.segment_bytes = 256 * 1024;
    o->ckpt_wal_bytes = 512 * 1024;
    o->ckpt_interval_ms = 50;
}

static void put(int fd, const struct msg *m)
{
    ssize_t w = write(fd, m, sizeof *m);
    if (w != (ssize_t)sizeof *m)
        _exit(3);
}

/* The child: writes until killed. */
static void child(const char *dir, uint64_t seed, int fd)
{
    char err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    opts(&o);
    if (part_open(io_posix(), dir, &o, &p, err) != DV_OK) {
        fprintf(stderr, "child: open: %s\n", err);
        _exit(2);
    }
    struct msg ready = {3, 0, 0, 0, 0};
    put(fd, &ready);
    for (uint32_t n = 0;; n++) {
        struct msg m;
        m.kind = 1;
        m.op = pu_rng(&seed) % 5 == 0 ? DELETE : UPSERT;
        m.count = m.op == DELETE ? 16 : 64;
        m.first = pu_rng(&seed) % (NIDS - m.count);
        m.ver = (uint32_t)(seed % 1000000) * 100 + n % 100;
        put(fd, &m);
        int rc;
        if (m.op == UPSERT) {
            rc = pu_upsert_range(p, m.first, m.count, m.ver, NULL, err);
        } else {
            struct pid ids[16];
            for (uint32_t i = 0; i < m.count; i++)
                ids[i] = pid_num(m.first + i);
            rc = part_delete(p, ids, m.count, NULL, NULL, err);
        }
        if (rc != DV_OK) {
            fprintf(stderr, "child: write: %s\n", err);
            _exit(4);
        }
        m.kind = 2;
        put(fd, &m);
    }
}

/* Current version of every id in the replica (UINT32_MAX: absent); checks vectors exactly. */
static void observe(struct part *p, uint32_t *ver)
{
    char err[DV_ERRMSG_SIZE];
    static struct pid ids[NIDS];
    for (uint64_t i = 0; i < NIDS; i++) {
        ids[i] = pid_num(i);
        ver[i] = UINT32_MAX;
    }
    struct part_result r;
    assert_int_equal(part_get(p, ids, NIDS, true, true, &r, err), DV_OK);
    float v[DIM];
    for (size_t i = 0; i < r.n; i++) {
        uint64_t id = r.hits[i].id.lo;
        assert_true(r.hits[i].id.kind == PID_NUM && id < NIDS);
        assert_true(ver[id] == UINT32_MAX); /* no duplicates */
        ver[id] = pu_ver_of(r.hits[i].payload, r.hits[i].payload_len);
        pu_vec(id, ver[id], DIM, v);
        assert_memory_equal(v, r.hits[i].vec, sizeof v);
    }
    uint64_t cnt;
    part_count(p, NULL, &cnt, err);
    assert_int_equal(cnt, r.n);
    part_result_free(&r);
}

/* Mean recall@10 of 20 queries against brute force over the model. */
static double recall(struct part *p, const uint32_t *ver)
{
    char err[DV_ERRMSG_SIZE];
    double hit = 0, tot = 0;
    float v[DIM];
    for (int qi = 0; qi < 20; qi++) {
        float q[DIM];
        pu_vec(900000 + (uint64_t)qi, 0, DIM, q);
        double bd[10];
        uint64_t bi[10];
        size_t nb = 0;
        for (uint64_t i = 0; i < NIDS; i++) {
            if (ver[i] == UINT32_MAX)
                continue;
            pu_vec(i, ver[i], DIM, v);
            double d = 0;
            for (int j = 0; j < DIM; j++)
                d += (double)(q[j] - v[j]) * (q[j] - v[j]);
            pu_topk_offer(bd, bi, &nb, 10, d, i);
        }
        struct part_query pq = {.vec = q,
                                .k = 10,
                                .ef = 64,
                                .filter = NULL,
                                .with_payload = false,
                                .with_vector = false,
                                .quant = HNSW_QUANT_AUTO};
        struct part_result r;
        assert_int_equal(part_search(p, &pq, &r, NULL, err), DV_OK);
        for (size_t i = 0; i < r.n; i++)
            for (size_t j = 0; j < nb; j++)
                hit += r.hits[i].id.lo == bi[j];
        tot += (double)nb;
        part_result_free(&r);
    }
    return tot > 0 ? hit / tot : 1.0;
}

static void test_kill9(void **state)
{
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    const char *env = getenv("DVEC_CRASH_CYCLES");
    int cycles = env ? atoi(env) : 15;
    uint64_t seed =
        env && getenv("DVEC_CRASH_SEED") ? strtoull(getenv("DVEC_CRASH_SEED"), 0, 10) : 12345;
    static uint32_t model[NIDS], seen[NIDS];
    for (int i = 0; i < NIDS; i++)
        model[i] = UINT32_MAX;
    pu_tmpdir(dir, sizeof dir, "r");
    opts(&o);
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    part_close(p);
    unsigned long acked_total = 0, inflight_applied = 0;
    for (int c = 0; c < cycles; c++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(dir, seed + (uint64_t)c * 7919, fds[1]);
        }
        close(fds[1]);
        /* Three cycles in four kill while writing (the delay counts from the end of the
         * child's recovery); the fourth may land inside recovery itself. */
        struct msg m, pending = {0};
        if (c % 4 != 0) {
            assert_int_equal(read(fds[0], &m, sizeof m), (ssize_t)sizeof m);
            assert_int_equal(m.kind, 3);
        }
        usleep((useconds_t)(30000 + pu_rng(&seed) % 250000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status)); /* it did not fail on its own */
        /* acknowledged ops into the model; the last intent may or may not have applied */
        bool has_pending = false;
        ssize_t r;
        while ((r = read(fds[0], &m, sizeof m)) == (ssize_t)sizeof m) {
            if (m.kind == 3)
                continue;
            if (m.kind == 1) {
                pending = m;
                has_pending = true;
                continue;
            }
            has_pending = false;
            acked_total++;
            for (uint32_t i = 0; i < m.count; i++)
                model[m.first + i] = m.op == UPSERT ? m.ver : UINT32_MAX;
        }
        close(fds[0]);

        assert_int_equal(part_open(io_posix(), dir, &o, &p, err), DV_OK);
        observe(p, seen);
        bool applied = false;
        if (has_pending) {
            uint32_t want = pending.op == UPSERT ? pending.ver : UINT32_MAX;
            /* Applied when some id it changes shows the new state (an id whose old state
             * equals the new one, say a delete of a point already gone, tells nothing). */
            for (uint32_t i = 0; i < pending.count; i++) {
                uint64_t id = pending.first + i;
                applied |= model[id] != want && seen[id] == want;
            }
            for (uint32_t i = 0; i < pending.count; i++) {
                uint64_t id = pending.first + i;
                /* all or nothing */
                assert_int_equal(seen[id], applied ? want : model[id]);
                model[id] = seen[id];
            }
            inflight_applied += applied;
        }
        for (int i = 0; i < NIDS; i++) {
            if (seen[i] != model[i])
                print_message("cycle %d: id %d has version %u, acknowledged %u\n", c, i, seen[i],
                              model[i]);
            assert_int_equal(seen[i], model[i]);
        }
        double rec = recall(p, model);
        if (rec < 0.9)
            print_message("cycle %d: recall %.3f\n", c, rec);
        assert_true(rec >= 0.9);
        part_close(p);
    }
    print_message("# %d kill -9 cycles, %lu acknowledged batches checked, %lu in-flight batches "
                  "found applied\n",
                  cycles, acked_total, inflight_applied);
    assert_true(acked_total > (unsigned long)cycles); /* the children did write */
    pu_tmpdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill9)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
