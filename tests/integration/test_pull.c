/* test_pull.c - integration tests of moving a replica between two real dvec-shard processes on
 * 127.0.0.1: replica_pull on the target (start, status, finish, abort), replica_fence on the
 * source, the source's WAL hold, failures (kill -9 of either node), bad input and metrics.
 * argv[1] is the dvec-shard executable. DVEC_ITEST_ONLY='test_move*' runs matching cases
 * only; DVEC_ITEST_PORT sets the first port (shard_proc.h). */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>

#include <cmocka.h>

#include "msg.h"
#include "part_util.h"
#include "rpc.h"
#include "shard_proc.h"
#include "shard_case.h"

#define DIM  32
#define COLL "moved"
#define PART 3

/* ---- clients and requests ---------------------------------------------------------------- */

/* SIGTERM: the node must exit 0 (under ASan: without leaks) within 15 s. */
static void stop(struct sp_proc *p)
{
    sp_signal(p, SIGTERM);
    assert_true(sp_wait_exit(p, 15000));
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0)
        sp_dump_log(p, 3000);
    assert_true(WIFEXITED(p->status));
    assert_int_equal(WEXITSTATUS(p->status), 0);
}

static struct msg req_of(int type, uint32_t part, uint64_t epoch)
{
    struct msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.addr.coll = (struct msg_str){COLL, (uint32_t)strlen(COLL)};
    m.addr.part = part;
    m.addr.epoch = epoch;
    return m;
}

/* Whether hello names replica COLL/part. */
static bool hello_lists(struct rpc *r, uint32_t part)
{
    struct msg m = {.type = MSG_HELLO};
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    bool found = false;
    for (uint32_t i = 0; i < rep.m.u.hello_rep.n_replicas; i++) {
        const struct msg_replica *x = &rep.m.u.hello_rep.replicas[i];
        found |= x->part == part && x->coll.len == strlen(COLL) &&
                 memcmp(x->coll.p, COLL, x->coll.len) == 0;
    }
    msg_reply_free(&rep);
    return found;
}

static void create_ok(struct rpc *r, uint32_t part, uint64_t epoch)
{
    struct msg m = req_of(MSG_REPLICA_CREATE, part, epoch);
    m.u.create_req = (struct msg_create_req){.cfg = {.dim = DIM, .metric = HNSW_L2, .fsync = 1}};
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    msg_reply_free(&rep);
}

/* Upserts ids [first, first + n) in version ver, with payloads. Thread-safe: no cmocka calls. */
static int upsert_range(struct rpc *r, uint32_t part, uint64_t epoch, uint64_t first, uint32_t n,
                        uint32_t ver, uint64_t *lsn, char *err)
{
    struct msg m = req_of(MSG_UPSERT, part, epoch);
    struct pid *ids = calloc(n, sizeof *ids);
    float *vecs = malloc((size_t)n * DIM * sizeof *vecs);
    struct msg_bytes *pl = calloc(n, sizeof *pl);
    struct buf *one = calloc(n, sizeof *one);
    int rc = DV_ENOMEM;
    if (ids == NULL || vecs == NULL || pl == NULL || one == NULL)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = pid_num(first + i);
        pu_vec(first + i, ver, DIM, vecs + (size_t)i * DIM);
        pu_payload(first + i, ver, &one[i]);
        pl[i] = (struct msg_bytes){one[i].data, (uint32_t)one[i].len};
    }
    m.u.upsert_req = (struct msg_upsert_req){ids, vecs, pl, n, DIM, NULL};
    struct msg_reply rep;
    rc = call(r, &m, &rep, err);
    if (rc == DV_OK && lsn)
        *lsn = rep.m.u.write_rep.lsn;
    msg_reply_free(&rep);
out:
    for (uint32_t i = 0; one && i < n; i++)
        buf_free(&one[i]);
    free(one);
    free(pl);
    free(vecs);
    free(ids);
    return rc;
}

static uint64_t upsert_ok(struct rpc *r, uint32_t part, uint64_t epoch, uint64_t first, uint32_t n,
                          uint32_t ver)
{
    char err[DV_ERRMSG_SIZE];
    uint64_t lsn = 0;
    int rc = upsert_range(r, part, epoch, first, n, ver, &lsn, err);
    if (rc != DV_OK)
        print_error("upsert: %s: %s\n", dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    return lsn;
}

static uint64_t count_of(struct rpc *r, uint32_t part, uint64_t epoch)
{
    struct msg m = req_of(MSG_COUNT, part, epoch);
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    uint64_t n = rep.m.u.count_rep.count;
    msg_reply_free(&rep);
    return n;
}

static struct msg_info_rep info_of(struct rpc *r, uint32_t part, uint64_t epoch)
{
    struct msg m = req_of(MSG_REPLICA_INFO, part, epoch);
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    struct msg_info_rep in = rep.m.u.info_rep;
    msg_reply_free(&rep);
    return in;
}

/* ---- pull and fence ---------------------------------------------------------------------- */

struct pull_st {
    uint32_t state;
    uint64_t bytes_done, bytes_total, applied, source_lsn;
    char error[DV_ERRMSG_SIZE];
};

static const char *state_name(uint32_t s)
{
    static const char *const names[] = {"NONE", "COPYING", "CATCHING_UP", "READY", "FAILED"};
    return s < 5 ? names[s] : "?";
}

/* One replica_pull request; st gets the reply (when DV_OK), err the error text. */
static int pull_req(struct rpc *r, uint32_t op, uint64_t epoch, const char *source, uint64_t rate,
                    uint64_t until, struct pull_st *st, char *err)
{
    struct msg m = req_of(MSG_REPLICA_PULL, PART, epoch);
    m.u.pull_req.op = op;
    if (source)
        m.u.pull_req.source = (struct msg_str){source, (uint32_t)strlen(source)};
    m.u.pull_req.rate = rate;
    m.u.pull_req.until_lsn = until;
    m.u.pull_req.create = (struct msg_create_req){
        .cfg = {.dim = DIM, .metric = HNSW_L2, .fsync = 1}, .incarnation = 7};
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    memset(st, 0, sizeof *st);
    if (rc == DV_OK) {
        const struct msg_pull_rep *o = &rep.m.u.pull_rep;
        *st = (struct pull_st){o->state,       o->bytes_done, o->bytes_total,
                               o->applied_lsn, o->source_lsn, ""};
        snprintf(st->error, sizeof st->error, "%.*s", (int)o->error.len,
                 o->error.p ? o->error.p : "");
    }
    msg_reply_free(&rep);
    return rc;
}

static struct pull_st pull_ok(struct rpc *r, uint32_t op, uint64_t epoch, const char *source,
                              uint64_t rate, uint64_t until)
{
    char err[DV_ERRMSG_SIZE];
    struct pull_st st;
    int rc = pull_req(r, op, epoch, source, rate, until, &st, err);
    if (rc != DV_OK)
        print_error("replica_pull op %u: %s: %s\n", op, dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    return st;
}

static struct pull_st status_of(struct rpc *r)
{
    return pull_ok(r, MSG_PULL_STATUS, 0, NULL, 0, 0);
}

/* Polls STATUS until it is `state` (at most ms); the last status. */
static struct pull_st wait_state(struct rpc *r, uint32_t state, uint64_t ms)
{
    uint64_t end = clock_mono_ms() + ms;
    struct pull_st st = status_of(r);
    while (st.state != state && clock_mono_ms() < end) {
        clock_sleep_ms(20);
        st = status_of(r);
    }
    if (st.state != state)
        print_error("pull state %s (%s), want %s\n", state_name(st.state), st.error,
                    state_name(state));
    assert_int_equal(st.state, state);
    return st;
}

static int fence(struct rpc *r, uint32_t op, uint64_t epoch, uint64_t *lsn, char *err)
{
    struct msg m = req_of(MSG_REPLICA_FENCE, PART, epoch);
    m.u.fence_req.op = op;
    struct msg_reply rep;
    int rc = call(r, &m, &rep, err);
    if (rc == DV_OK && lsn)
        *lsn = rep.m.u.write_rep.lsn;
    msg_reply_free(&rep);
    return rc;
}

static uint64_t fence_ok(struct rpc *r, uint32_t op, uint64_t epoch)
{
    char err[DV_ERRMSG_SIZE];
    uint64_t lsn = 0;
    int rc = fence(r, op, epoch, &lsn, err);
    if (rc != DV_OK)
        print_error("replica_fence op %u: %s: %s\n", op, dv_errname(rc), err);
    assert_int_equal(rc, DV_OK);
    return lsn;
}

/* ---- files, logs, metrics ---------------------------------------------------------------- */

/* Entries of p's replicas/ starting with `prefix`. */
static int dir_entries(const struct sp_proc *p, const char *prefix)
{
    char path[256];
    snprintf(path, sizeof path, "%s/replicas", p->data);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void meta_text(const struct sp_proc *p, struct buf *out)
{
    char path[256];
    snprintf(path, sizeof path, "%s/replicas/%s.%u/node.meta", p->data, COLL, PART);
    sp_read_file(path, out);
}

/* Replaces the node.meta of the replica of a stopped p with `text`. */
static void meta_put(const struct sp_proc *p, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/replicas/%s.%u/node.meta", p->data, COLL, PART);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Whether the current run's log of p holds `text`. */
static bool log_has(const struct sp_proc *p, const char *text)
{
    struct buf b = BUF_INIT;
    sp_read_file(p->log, &b);
    bool has = b.data && strstr((const char *)b.data, text) != NULL;
    buf_free(&b);
    return has;
}

/* The value of the sample `name` (with no labels, or the first one); -1 when missing. */
static double metric_value(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *line = text, *eol; line && *line; line = eol ? eol + 1 : NULL) {
        eol = strchr(line, '\n');
        if (strncmp(line, name, nl) == 0 && (line[nl] == ' ' || line[nl] == '{')) {
            const char *v = strchr(line + nl, ' ');
            return v ? strtod(v + 1, NULL) : -1;
        }
    }
    return -1;
}

/* GET /metrics of p into body and, when promtool is installed, lint it. */
static void metrics_of(const struct sp_proc *p, struct buf *body)
{
    int status = 0;
    assert_int_equal(sp_http_get(p->http_port, "/metrics", &status, body), DV_OK);
    assert_int_equal(status, 200);
    if (access("/usr/bin/promtool", X_OK) != 0 && system("command -v promtool >/dev/null") != 0) {
        printf("# promtool not found (Debian package prometheus): metrics not linted\n");
        return;
    }
    char path[128], cmd[512];
    snprintf(path, sizeof path, "%s/metrics.txt", p->base);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(body->data, 1, body->len, f), body->len);
    fclose(f);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' > '%s.out' 2>&1", path, path);
    int st = system(cmd);
    if (st != 0) {
        struct buf o = BUF_INIT;
        snprintf(cmd, sizeof cmd, "%s.out", path);
        sp_read_file(cmd, &o);
        print_error("promtool check metrics: status %d:\n%s\n", st, (const char *)o.data);
        buf_free(&o);
    }
    assert_int_equal(st, 0);
}

/* ---- comparing two replicas -------------------------------------------------------------- */

/* Every point of a (scrolled with vector and payload) must be on b with the same vector and
 * payload bytes, and both must count the same. Returns the number of points compared. */
static uint64_t compare_replicas(struct rpc *a, uint64_t ea, struct rpc *b, uint64_t eb)
{
    uint64_t seen = 0;
    bool more = true;
    struct pid from = {0};
    bool has_from = false;
    while (more) {
        struct msg m = req_of(MSG_SCROLL, PART, ea);
        m.u.scroll_req = (struct msg_scroll_req){.has_from = has_from,
                                                 .from = from,
                                                 .limit = 1000,
                                                 .with_vector = true,
                                                 .with_payload = true};
        struct msg_reply ra;
        call_ok(a, &m, &ra);
        const struct msg_hits *ha = &ra.m.u.scroll_rep.hits;
        struct pid *ids = calloc(ha->n ? ha->n : 1, sizeof *ids);
        assert_non_null(ids);
        for (uint32_t i = 0; i < ha->n; i++)
            ids[i] = ha->hits[i].id;
        struct msg g = req_of(MSG_GET, PART, eb);
        g.u.get_req = (struct msg_get_req){ids, ha->n, true, true};
        struct msg_reply rb;
        call_ok(b, &g, &rb);
        const struct msg_hits *hb = &rb.m.u.get_rep;
        if (hb->n != ha->n)
            print_error("the target has %u of %u points of a page\n", hb->n, ha->n);
        assert_int_equal(hb->n, ha->n);
        for (uint32_t i = 0; i < ha->n; i++) {
            const struct msg_hit *x = &ha->hits[i], *y = &hb->hits[i];
            assert_int_equal(pid_cmp(&x->id, &y->id), 0);
            assert_int_equal(x->dim, DIM);
            assert_int_equal(y->dim, DIM);
            assert_memory_equal(x->vec, y->vec, DIM * sizeof(float));
            assert_int_equal(x->payload.len, y->payload.len);
            if (x->payload.len)
                assert_memory_equal(x->payload.p, y->payload.p, x->payload.len);
        }
        seen += ha->n;
        more = ra.m.u.scroll_rep.more;
        from = ra.m.u.scroll_rep.next;
        has_from = true;
        msg_reply_free(&rb);
        msg_reply_free(&ra);
        free(ids);
    }
    assert_int_equal(count_of(a, PART, ea), seen);
    assert_int_equal(count_of(b, PART, eb), seen);
    return seen;
}

/* A search for the vector of point `id` (version ver) must find it first, at distance 0. */
static void search_finds(struct rpc *r, uint64_t epoch, uint64_t id, uint32_t ver)
{
    float v[DIM];
    pu_vec(id, ver, DIM, v);
    struct msg_target t = {PART, epoch};
    struct msg_query q = {.vec = v, .dim = DIM, .k = 5};
    struct msg m = req_of(MSG_SEARCH, 0, 0);
    m.u.search_req = (struct msg_search_req){&t, 1, &q, 1};
    struct msg_reply rep;
    call_ok(r, &m, &rep);
    const struct msg_search_rep *s = &rep.m.u.search_rep;
    assert_int_equal(s->n_parts, 1);
    assert_int_equal(s->parts[0].err.code, DV_OK);
    assert_int_equal(s->parts[0].n, 1);
    const struct msg_hits *h = &s->parts[0].results[0];
    assert_true(h->n >= 1);
    assert_int_equal(h->hits[0].id.lo, id);
    assert_true(h->hits[0].score == 0.0f);
    msg_reply_free(&rep);
}

/* ---- a writer thread --------------------------------------------------------------------- */

/* Upserts batches of new ids from `first` until told to stop or a call fails (no cmocka calls
 * on its thread); records what was acknowledged and the failure that ended it. */
struct writer {
    pthread_t th;
    struct rpc *r;
    uint64_t first;
    atomic_bool stop;
    atomic_uint_fast64_t acked; /* batches acknowledged */
    int end_rc;
    char end_err[DV_ERRMSG_SIZE];
};

enum { WBATCH = 50 };

/* Writes in bursts of 300 ms with pauses of 1.3 s: a pause lets the source's next checkpoint
 * (every second) cover its whole WAL segment, which it then drops unless a peer holds it. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    uint64_t burst = clock_mono_ms();
    while (!atomic_load(&w->stop)) {
        if (clock_mono_ms() - burst > 300) {
            for (int i = 0; i < 13 && !atomic_load(&w->stop); i++)
                clock_sleep_ms(100);
            burst = clock_mono_ms();
        }
        uint64_t at = w->first + atomic_load(&w->acked) * WBATCH;
        int rc = upsert_range(w->r, PART, 5, at, WBATCH, 0, NULL, w->end_err);
        if (rc != DV_OK) {
            w->end_rc = rc;
            break;
        }
        atomic_fetch_add(&w->acked, 1);
        clock_sleep_ms(5);
    }
    return NULL;
}

/* ---- 1. a whole move --------------------------------------------------------------------- */

/*
 * A holds a replica under write load; B pulls it (COPYING, then CATCHING_UP) while A keeps
 * checkpointing; A is fenced at L; B finishes at L and then holds exactly A's points, serves
 * them and takes writes. The fence survives a kill -9 of A until it is lifted.
 */
static void test_move(void **state)
{
    (void)state;
    /* A checkpoints every second: without the WAL hold the pull would lose its records. */
    static const char *const a_extra[] = {"--checkpoint.interval", "1s", "--snapshot_idle", "3s"};
    struct sp_proc *a = new_proc(true, a_extra, 4);
    struct sp_proc *b = new_proc(true, NULL, 0);
    start(a);
    start(b);
    struct rpc *ra = client(a, 10000), *rb = client(b, 10000), *rw = client(a, 10000);

    create_ok(ra, PART, 5);
    enum { N = 20000 };
    for (uint64_t at = 0; at < N; at += 1000)
        upsert_ok(ra, PART, 5, at, 1000, 0);
    upsert_ok(ra, PART, 5, 0, 500, 1); /* overwrites */
    upsert_ok(ra, PART, 5, 10000, 300, 2);
    struct msg del = req_of(MSG_DELETE, PART, 5);
    struct pid gone[] = {pid_num(1), pid_num(2), pid_num(19999)};
    del.u.delete_req = (struct msg_ids_req){gone, 3};
    struct msg_reply rep;
    call_ok(ra, &del, &rep);
    msg_reply_free(&rep);

    struct writer w = {.r = rw, .first = 1000000};
    atomic_init(&w.stop, false);
    atomic_init(&w.acked, 0);
    assert_int_equal(pthread_create(&w.th, NULL, writer_main, &w), 0);

    /* START: the copy runs at 2 MiB/s, so COPYING lasts long enough to be seen. */
    struct pull_st st = pull_ok(rb, MSG_PULL_START, 5, a->url, 2u << 20, 0);
    printf("# start: %s\n", state_name(st.state));
    assert_int_equal(st.state, MSG_PULL_COPYING);
    bool saw_copying_bytes = false;
    uint64_t end = clock_mono_ms() + 60000;
    while ((st = status_of(rb)).state == MSG_PULL_COPYING && clock_mono_ms() < end) {
        if (st.bytes_done > 0 && st.bytes_done < st.bytes_total && !saw_copying_bytes) {
            saw_copying_bytes = true;
            printf("# copying: %" PRIu64 " of %" PRIu64 " bytes\n", st.bytes_done, st.bytes_total);
            /* the copy is not a replica of B yet */
            struct msg c = req_of(MSG_COUNT, PART, 5);
            call_fails(rb, &c, DV_ESTALE, 0, "not held");
            assert_false(hello_lists(rb, PART));
            assert_int_equal(dir_entries(b, ".pulling-"), 1);
            /* START again: the running job's status */
            struct pull_st again = pull_ok(rb, MSG_PULL_START, 5, a->url, 2u << 20, 0);
            assert_true(again.state == MSG_PULL_COPYING || again.state == MSG_PULL_CATCHING_UP);
        }
        clock_sleep_ms(20);
    }
    if (st.state != MSG_PULL_CATCHING_UP)
        print_error("after COPYING: %s \"%s\"\n", state_name(st.state), st.error);
    assert_int_equal(st.state, MSG_PULL_CATCHING_UP);
    assert_true(saw_copying_bytes);
    assert_int_equal(st.bytes_done, st.bytes_total);
    assert_false(hello_lists(rb, PART));

    /* Catching up while A keeps taking writes and checkpoints. */
    clock_sleep_ms(1500);
    st = status_of(rb);
    printf("# catching up: applied %" PRIu64 ", source at %" PRIu64 ", writer %" PRIu64
           " batches\n",
           st.applied, st.source_lsn, (uint64_t)atomic_load(&w.acked));
    assert_int_equal(st.state, MSG_PULL_CATCHING_UP);
    assert_true(st.applied > 0);

    /* Fence A: its writer stops with DV_EBUSY; reads go on. */
    uint64_t lsn = fence_ok(ra, MSG_FENCE_ON, 5);
    pthread_join(w.th, NULL);
    printf("# fenced at LSN %" PRIu64 "; the writer ended with %s \"%s\" after %" PRIu64
           " batches\n",
           lsn, dv_errname(w.end_rc), w.end_err, (uint64_t)atomic_load(&w.acked));
    assert_int_equal(w.end_rc, DV_EBUSY);
    assert_non_null(strstr(w.end_err, "is being moved"));
    assert_true(atomic_load(&w.acked) > 0);
    assert_int_equal(info_of(ra, PART, 5).applied_lsn, lsn);
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(upsert_range(ra, PART, 5, 5000000, 10, 0, NULL, err), DV_EBUSY);
    assert_non_null(strstr(err, "partition moved/3 is being moved: writes are paused, retry"));
    struct msg sp = req_of(MSG_SET_PAYLOAD, PART, 5);
    struct pid one = pid_num(7);
    sp.u.set_payload_req = (struct msg_set_payload_req){PART_PAYLOAD_CLEAR, &one, 1, {NULL, 0}};
    call_fails(ra, &sp, DV_EBUSY, 0, "being moved");
    call_fails(ra, &del, DV_EBUSY, 0, "being moved");
    assert_int_equal(fence_ok(ra, MSG_FENCE_ON, 5), lsn); /* idempotent */
    search_finds(ra, 5, 600, 0);

    /* FINISH at L: READY, exactly L applied; again: READY again. */
    st = pull_ok(rb, MSG_PULL_FINISH, 6, NULL, 0, lsn);
    assert_int_equal(st.state, MSG_PULL_READY);
    assert_int_equal(st.applied, lsn);
    st = pull_ok(rb, MSG_PULL_FINISH, 6, NULL, 0, lsn);
    assert_int_equal(st.state, MSG_PULL_READY);
    st = status_of(rb);
    assert_int_equal(st.state, MSG_PULL_READY);
    assert_int_equal(dir_entries(b, ".pulling-"), 0);
    assert_false(log_has(b, "starting over with a new snapshot")); /* the WAL hold worked */

    /* B holds exactly A's points, serves them and takes writes of its own. */
    uint64_t n = compare_replicas(ra, 5, rb, 6);
    printf("# %" PRIu64 " points compared\n", n);
    assert_int_equal(n, N - 3 + atomic_load(&w.acked) * WBATCH);
    assert_true(hello_lists(rb, PART));
    struct msg_info_rep in = info_of(rb, PART, 6);
    assert_int_equal(in.applied_lsn, lsn);
    assert_int_equal(in.dim, DIM);
    struct msg old_epoch = req_of(MSG_COUNT, PART, 5); /* FINISH's epoch 6 is B's */
    call_fails(rb, &old_epoch, DV_ESTALE, 6, NULL);
    search_finds(rb, 6, 12345, 0);
    search_finds(rb, 6, 10001, 2);
    assert_int_equal(upsert_ok(rb, PART, 6, 7000000, 10, 0), lsn + 1);
    assert_int_equal(count_of(rb, PART, 6), n + 10);
    struct buf meta = BUF_INIT;
    meta_text(b, &meta);
    printf("# B's node.meta:");
    for (const char *l = (const char *)meta.data; *l;) { /* each line a TAP comment */
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        printf(" %.*s;", (int)len, l);
        l += len + (e != NULL);
    }
    printf("\n");
    assert_non_null(strstr((const char *)meta.data, "epoch 6\n"));
    assert_non_null(strstr((const char *)meta.data, "incarnation 7\n"));
    assert_null(strstr((const char *)meta.data, "fenced"));

    /* START for a partition B holds now */
    struct pull_st x;
    assert_int_equal(pull_req(rb, MSG_PULL_START, 6, a->url, 0, 0, &x, err), DV_EEXIST);
    assert_non_null(strstr(err, "already a replica"));

    /* metrics: B's pull, A's fence (promtool-clean) */
    struct buf body = BUF_INIT;
    metrics_of(b, &body);
    assert_true(metric_value((const char *)body.data, "dvec_shard_pulls_finished_total") == 1);
    assert_true(metric_value((const char *)body.data, "dvec_shard_pulls_failed_total") == 0);
    assert_true(metric_value((const char *)body.data, "dvec_shard_pulls_running") == 0);
    assert_true(metric_value((const char *)body.data, "dvec_shard_pull_bytes_total") >
                (double)st.bytes_total);
    metrics_of(a, &body);
    assert_true(metric_value((const char *)body.data, "dvec_shard_replicas_fenced") == 1);
    assert_true(metric_value((const char *)body.data, "dvec_shard_replica_fenced") == 1);
    buf_free(&body);

    /* A releases its WAL hold once no peer has read for snapshot_idle (3 s). */
    end = clock_mono_ms() + 8000;
    while (!log_has(a, "WAL hold released") && clock_mono_ms() < end)
        clock_sleep_ms(100);
    assert_true(log_has(a, "WAL hold released"));

    /* The fence survives kill -9; lifting it survives too. */
    meta_text(a, &meta);
    assert_non_null(strstr((const char *)meta.data, "fenced 1\n"));
    sp_kill9(a);
    start(a);
    assert_int_equal(upsert_range(ra, PART, 5, 5000000, 10, 0, NULL, err), DV_EBUSY);
    assert_int_equal(fence_ok(ra, MSG_FENCE_ON, 5), lsn);
    assert_int_equal(fence_ok(ra, MSG_FENCE_OFF, 5), lsn);
    assert_int_equal(fence_ok(ra, MSG_FENCE_OFF, 5), lsn); /* idempotent */
    assert_int_equal(upsert_ok(ra, PART, 5, 5000000, 10, 0), lsn + 1);
    meta_text(a, &meta);
    assert_null(strstr((const char *)meta.data, "fenced"));
    sp_kill9(a);
    start(a);
    assert_int_equal(upsert_ok(ra, PART, 5, 5000010, 10, 0), lsn + 2);

    /* fence epochs: an older one is stale, a newer one is remembered */
    uint64_t ignored;
    assert_int_equal(fence(ra, MSG_FENCE_ON, 4, &ignored, err), DV_ESTALE);
    assert_int_equal(fence_ok(ra, MSG_FENCE_ON, 8), lsn + 2);
    assert_int_equal(fence(ra, MSG_FENCE_OFF, 7, &ignored, err), DV_ESTALE);
    assert_int_equal(fence_ok(ra, MSG_FENCE_OFF, 8), lsn + 2);

    /* ABORT of the finished pull drops B's replica (an older epoch is stale) */
    assert_int_equal(pull_req(rb, MSG_PULL_ABORT, 5, NULL, 0, 0, &x, err), DV_ESTALE);
    assert_true(hello_lists(rb, PART));
    pull_ok(rb, MSG_PULL_ABORT, 6, NULL, 0, 0);
    assert_false(hello_lists(rb, PART));
    assert_int_equal(status_of(rb).state, MSG_PULL_NONE);
    assert_int_equal(dir_entries(b, COLL), 0);
    stop(b);
    stop(a);

    /* node.meta: a fenced line also comes without the incarnation line; a bad one (or one
     * out of order) keeps the replica from opening, as any bad node.meta does */
    meta_put(a, "dvec-node-meta 1\nepoch 8\nfsync interval\nfenced 1\n");
    start(a);
    assert_int_equal(upsert_range(ra, PART, 8, 6000000, 10, 0, NULL, err), DV_EBUSY);
    assert_int_equal(fence_ok(ra, MSG_FENCE_OFF, 8), lsn + 2);
    meta_text(a, &meta);
    assert_string_equal((const char *)meta.data,
                        "dvec-node-meta 1\nepoch 8\nfsync interval\nincarnation 0\n");
    stop(a);
    meta_put(a, "dvec-node-meta 1\nepoch 8\nfsync interval\nincarnation 0\nfenced 2\n");
    start(a);
    struct msg cnt = req_of(MSG_COUNT, PART, 8);
    call_fails(ra, &cnt, DV_ESTALE, 0, "not held");
    assert_true(log_has(a, "bad lines after the fsync line"));
    stop(a);
    meta_put(a, "dvec-node-meta 1\nepoch 8\nfsync interval\nfenced 1\nincarnation 0\n");
    start(a);
    call_fails(ra, &cnt, DV_ESTALE, 0, "not held");
    buf_free(&meta);
}

/* ---- 2. failures and bad input ----------------------------------------------------------- */

/* Loads a replica of n points on r (epoch 5). */
static void load(struct rpc *r, uint64_t n)
{
    create_ok(r, PART, 5);
    for (uint64_t at = 0; at < n; at += 1000)
        upsert_ok(r, PART, 5, at, (uint32_t)(n - at < 1000 ? n - at : 1000), 0);
}

/* Starts a slow pull (64 KiB/s) and waits until it has copied some bytes. */
static void start_slow(struct rpc *rb, const struct sp_proc *a)
{
    struct pull_st st = pull_ok(rb, MSG_PULL_START, 5, a->url, 64 * 1024, 0);
    assert_int_equal(st.state, MSG_PULL_COPYING);
    uint64_t end = clock_mono_ms() + 20000;
    while (((st = status_of(rb)).bytes_done == 0) && clock_mono_ms() < end)
        clock_sleep_ms(20);
    printf("# copying: %" PRIu64 " of %" PRIu64 " bytes\n", st.bytes_done, st.bytes_total);
    assert_int_equal(st.state, MSG_PULL_COPYING);
    assert_true(st.bytes_done > 0 && st.bytes_done < st.bytes_total);
}

/*
 * kill -9 of the source fails the pull within ~15 s naming the source; kill -9 of the target
 * loses it (STATUS NONE, no leftover); ABORT removes a copy; FINISH without a pull, START for
 * a partition the node holds, and bad requests get clear errors and the node goes on.
 */
static void test_failures(void **state)
{
    (void)state;
    struct sp_proc *a = new_proc(false, NULL, 0);
    struct sp_proc *b = new_proc(true, NULL, 0);
    start(a);
    start(b);
    struct rpc *ra = client(a, 10000), *rb = client(b, 10000);
    load(ra, 5000);
    char err[DV_ERRMSG_SIZE];
    struct pull_st st;
    struct msg_reply rep_unused;

    /* nothing there */
    assert_int_equal(status_of(rb).state, MSG_PULL_NONE);
    assert_int_equal(pull_req(rb, MSG_PULL_FINISH, 5, NULL, 0, 10, &st, err), DV_ENOTFOUND);
    assert_non_null(strstr(err, "no pull of collection moved partition 3"));
    st = pull_ok(rb, MSG_PULL_ABORT, 5, NULL, 0, 0);
    assert_int_equal(st.state, MSG_PULL_NONE);

    /* bad input: clear errors, and B keeps serving */
    assert_int_equal(pull_req(rb, 9, 5, a->url, 0, 0, &st, err), DV_EINVAL);
    assert_non_null(strstr(err, "unknown replica_pull op 9"));
    assert_int_equal(pull_req(rb, MSG_PULL_START, 5, NULL, 0, 0, &st, err), DV_EINVAL);
    assert_non_null(strstr(err, "needs the source"));
    assert_int_equal(pull_req(rb, MSG_PULL_START, 5, "not a url", 0, 0, &st, err), DV_EINVAL);
    printf("# bad source: %s\n", err);
    assert_non_null(strstr(err, "not a url"));
    assert_int_equal(status_of(rb).state, MSG_PULL_NONE);
    uint64_t lsn;
    assert_int_equal(fence(ra, 7, 5, &lsn, err), DV_EINVAL);
    assert_non_null(strstr(err, "unknown replica_fence op 7"));
    struct msg f = req_of(MSG_REPLICA_FENCE, 9, 5);
    f.u.fence_req.op = MSG_FENCE_ON;
    call_fails(ra, &f, DV_ESTALE, 0, "not held");
    hello_ok(ra);
    hello_ok(rb);

    /* ABORT of a running copy removes it */
    start_slow(rb, a);
    assert_int_equal(dir_entries(b, ".pulling-"), 1);
    st = pull_ok(rb, MSG_PULL_ABORT, 5, NULL, 0, 0);
    assert_int_equal(st.state, MSG_PULL_NONE);
    assert_int_equal(status_of(rb).state, MSG_PULL_NONE);
    assert_int_equal(dir_entries(b, ".pulling-"), 0);

    /* FINISH before the copy gets there: DV_ETIMEDOUT, the pull goes on */
    start_slow(rb, a);
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(pull_req(rb, MSG_PULL_FINISH, 5, NULL, 0, 1, &st, err), DV_ETIMEDOUT);
    printf("# early finish after %" PRIu64 " ms: %s\n", clock_mono_ms() - t0, err);
    assert_true(clock_mono_ms() - t0 < 8000);
    assert_int_equal(status_of(rb).state, MSG_PULL_COPYING);

    /* kill -9 of the source: FAILED within ~15 s, naming it; the copy is gone */
    sp_kill9(a);
    t0 = clock_mono_ms();
    st = wait_state(rb, MSG_PULL_FAILED, 20000);
    uint64_t took = clock_mono_ms() - t0;
    printf("# FAILED after %" PRIu64 " ms: %s\n", took, st.error);
    assert_true(took <= 15000);
    assert_non_null(strstr(st.error, a->url));
    assert_int_equal(dir_entries(b, ".pulling-"), 0);
    assert_int_equal(pull_req(rb, MSG_PULL_FINISH, 5, NULL, 0, 1, &st, err), DV_EIO);
    assert_non_null(strstr(err, "failed"));
    struct buf body = BUF_INIT;
    metrics_of(b, &body);
    assert_true(metric_value((const char *)body.data, "dvec_shard_pulls_failed_total") == 1);
    buf_free(&body);

    /* START after FAILED starts afresh (the source is back) */
    start(a);
    start_slow(rb, a);

    /* kill -9 of the target: after its restart the pull is gone, and so is its directory */
    assert_int_equal(dir_entries(b, ".pulling-"), 1);
    sp_kill9(b);
    start(b);
    assert_int_equal(status_of(rb).state, MSG_PULL_NONE);
    assert_int_equal(dir_entries(b, ".pulling-"), 0);
    assert_false(hello_lists(rb, PART));
    struct msg c = req_of(MSG_COUNT, PART, 5);
    call_fails(rb, &c, DV_ESTALE, 0, "not held");

    /* START for a partition the target holds */
    create_ok(rb, PART, 5);
    assert_int_equal(pull_req(rb, MSG_PULL_START, 5, a->url, 0, 0, &st, err), DV_EEXIST);
    assert_non_null(strstr(err, "already a replica"));
    assert_int_equal(status_of(rb).state, MSG_PULL_READY); /* the node holds it */
    hello_ok(rb);

    /* a pull asking for another dimension than the source's fails after the snapshot */
    struct msg d = req_of(MSG_REPLICA_DROP, PART, 5);
    call_ok(rb, &d, &rep_unused);
    msg_reply_free(&rep_unused);
    struct msg m = req_of(MSG_REPLICA_PULL, PART, 5);
    m.u.pull_req.op = MSG_PULL_START;
    m.u.pull_req.source = (struct msg_str){a->url, (uint32_t)strlen(a->url)};
    m.u.pull_req.create = (struct msg_create_req){.cfg = {.dim = DIM / 2, .metric = HNSW_L2}};
    call_ok(rb, &m, &rep_unused);
    msg_reply_free(&rep_unused);
    st = wait_state(rb, MSG_PULL_FAILED, 20000);
    printf("# %s\n", st.error);
    assert_non_null(strstr(st.error, "dimension 32"));
    assert_int_equal(dir_entries(b, ".pulling-"), 0);

    /* a FAILED job at shutdown: the node still stops cleanly */
    stop(b);
    stop(a);
}

/* SIGTERM of the target while a pull runs: it stops the job cleanly and exits 0. */
static void test_sigterm_during_pull(void **state)
{
    (void)state;
    struct sp_proc *a = new_proc(false, NULL, 0);
    struct sp_proc *b = new_proc(false, NULL, 0);
    start(a);
    start(b);
    struct rpc *ra = client(a, 10000), *rb = client(b, 10000);
    load(ra, 3000);
    start_slow(rb, a);
    sp_signal(b, SIGTERM);
    assert_true(sp_wait_exit(b, 15000));
    assert_true(WIFEXITED(b->status));
    assert_int_equal(WEXITSTATUS(b->status), 0);
    assert_true(log_has(b, "pull stopped: the node is stopping"));
    assert_int_equal(dir_entries(b, ".pulling-"), 0);
    start(b);
    assert_int_equal(status_of(rb).state, MSG_PULL_NONE);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-dvec-shard\n", argv[0]);
        return 2;
    }
    sp_exe = argv[1];
    sp_init_ports();
    signal(SIGPIPE, SIG_IGN);
    if (getenv("DVEC_ITEST_ONLY"))
        cmocka_set_test_filter(getenv("DVEC_ITEST_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_move, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures, sp_case_setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_during_pull, sp_case_setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
