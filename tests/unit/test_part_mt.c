/* test_part_mt.c - a replica under concurrency (also run under ThreadSanitizer): writers,
 * readers, checkpoints, compaction and snapshots at once, checked against the writers' model
 * while they run, at the end, after reopening, and in the last snapshot. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jsonmp.h"
#include "part_util.h"

#define DIM            16
#define WRITERS        2
#define READERS        2
#define ROUNDS         40 /* write rounds per writer: the amount of work of a run */
#define NEW_PER_ROUND  16
#define REPL_PER_ROUND 6
#define DEL_PER_ROUND  3
#define SET_PER_ROUND  3
#define PER_WRITER     (ROUNDS * NEW_PER_ROUND)
#define MAX_IDS        (PER_WRITER * WRITERS)
#define MAX_CHANGES                                                                                \
    ((ROUNDS + 1) * (NEW_PER_ROUND + REPL_PER_ROUND + 1 + DEL_PER_ROUND + SET_PER_ROUND))
#define K           10
#define NFILTERS    4
#define MIN_READS   20 /* reader iterations at least, even when the writers are done early */
#define SCROLL_PAGE 32
#define ABSENT      UINT32_MAX

/* The filters the readers use, and the same conditions evaluated by hand (pred below). */
static const char *const filter_json[NFILTERS] = {
    "{\"must\":{\"key\":\"color\",\"match\":{\"value\":\"red\"}}}",
    "{\"must\":{\"key\":\"n\",\"range\":{\"gte\":100,\"lt\":400}}}",
    "{\"must\":{\"key\":\"color\",\"match\":{\"any\":[\"green\",\"blue\"]}},"
    "\"must_not\":{\"is_empty\":{\"key\":\"mark\"}}}",
    "{\"must\":{\"key\":\"n\",\"match\":{\"value\":7}}}",
};

/* Whether point `id` whose payload carries `mark` (0: none) matches filter f. */
static bool pred(int f, uint64_t id, uint64_t mark)
{
    uint64_t color = id % 5, n = id % 1000; /* pu_payload: colors red, green, blue, ... */
    switch (f) {
    case 0:
        return color == 0;
    case 1:
        return n >= 100 && n < 400;
    case 2:
        return (color == 1 || color == 2) && mark != 0;
    default:
        return n == 7;
    }
}

/* The state of one id after a write: version (ABSENT: deleted) and payload mark (0: none). */
struct change {
    uint64_t lsn;
    uint32_t id;
    uint32_t ver;
    uint64_t mark;
};

struct model {
    uint32_t ver[MAX_IDS];
    uint64_t mark[MAX_IDS];
};

struct run;

struct writer {
    struct run *run;
    int w;
    uint64_t seed;
    uint32_t next_j;           /* ids j * WRITERS + w with j < next_j were created */
    uint32_t ver[PER_WRITER];  /* last version written of each of our ids (live or not) */
    uint64_t mark[PER_WRITER]; /* current mark */
    uint32_t live[PER_WRITER], dead[PER_WRITER];
    size_t nlive, ndead;
    struct change log[MAX_CHANGES];
    size_t nlog;
    uint64_t last_lsn;
};

struct reader {
    struct run *run;
    uint64_t seed;
    struct pid cursor;
    bool have_cursor;
};

struct run {
    struct part *p;
    struct filter *f[NFILTERS];
    uint32_t issued[MAX_IDS]; /* atomic: 1 + the highest version sent for the id; 0: never */
    uint64_t mark_next;       /* atomic: the next mark; every mark sent is below it */
    /* Atomic point counts: live points at any time t lie in
     * [created_done(t) - deleted_started(t), created_started(t) - deleted_done(t)]. */
    uint64_t created_started, created_done, deleted_started, deleted_done;
    int writers_left;  /* atomic */
    int failures;      /* atomic */
    uint64_t plans[4]; /* atomic: searches per plan */
    uint64_t reads;    /* atomic: reader iterations */
    /* The maintenance thread's: read by the main thread after joining it. */
    struct membuf snap;
    uint64_t snap_lsn;
    int maint_rounds, compactions_with_tombstones;
};

static uint64_t ld64(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void add64(uint64_t *p, uint64_t v)
{
    __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}

/* Records a failed check of a thread (cmocka's asserts only work in the main thread). */
static bool fail_at(struct run *r, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail_at(struct run *r, int line, const char *fmt, ...)
{
    if (__atomic_fetch_add(&r->failures, 1, __ATOMIC_SEQ_CST) < 20) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "# test_part_mt.c:%d: %s\n", line, msg);
    }
    return false;
}

#define CHECK(r, cond, ...) ((cond) ? true : fail_at((r), __LINE__, __VA_ARGS__))

/* The exact payload of id in version ver with mark (0: none), as set_payload leaves it. */
static void expect_payload(uint64_t id, uint32_t ver, uint64_t mark, struct buf *b)
{
    pu_payload(id, ver, b);
    if (mark == 0)
        return;
    struct buf t = BUF_INIT;
    mpw_map(&t, 5);
    buf_append(&t, b->data + 1, b->len - 1); /* pu_payload's entries after its fixmap byte */
    mpw_str(&t, "mark", 4);
    mpw_u64(&t, mark);
    buf_reset(b);
    buf_append(b, t.data, t.len);
    buf_free(&t);
}

/* The "mark" of a payload, 0 when it has none. */
static uint64_t mark_of(const uint8_t *pl, size_t n)
{
    const uint8_t *v;
    size_t vl;
    struct mpk r;
    uint64_t x = 0;
    if (pl == NULL || mpk_map_find(pl, n, "mark", 4, &v, &vl) != DV_OK)
        return 0;
    mpk_init(&r, v, vl);
    return mpk_u64(&r, &x) == DV_OK ? x : UINT64_MAX;
}

static float l2(const float *a, const float *b)
{
    double s = 0;
    for (int d = 0; d < DIM; d++)
        s += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
    return (float)sqrt(s);
}

/* ---- checks on what a read returned (any thread) ----------------------------------------- */

/*
 * Checks one point of a read: a known id, and payload and vector of one and the same write
 * (the payload is exactly what that write and the payload changes after it produce).
 */
static bool check_hit(struct run *r, const struct part_hit *h, bool wv, bool wp, const char *what)
{
    if (!CHECK(r, h->id.kind == PID_NUM && h->id.lo < MAX_IDS, "%s: unknown id %llu", what,
               (unsigned long long)h->id.lo))
        return false;
    uint64_t id = h->id.lo;
    uint32_t issued = __atomic_load_n(&r->issued[id], __ATOMIC_SEQ_CST);
    if (!CHECK(r, issued > 0, "%s: id %llu was never written", what, (unsigned long long)id) ||
        !CHECK(r, wv == (h->vec != NULL), "%s: id %llu: vector presence", what,
               (unsigned long long)id) ||
        !CHECK(r, wp ? h->payload != NULL : h->payload == NULL, "%s: id %llu: payload presence",
               what, (unsigned long long)id))
        return false;
    if (!wp)
        return true;
    uint32_t ver = pu_ver_of(h->payload, h->payload_len);
    uint64_t mark = mark_of(h->payload, h->payload_len);
    if (!CHECK(r, ver < issued, "%s: id %llu: version %u never written (issued %u)", what,
               (unsigned long long)id, ver, issued) ||
        !CHECK(r, mark < ld64(&r->mark_next), "%s: id %llu: mark %llu never written", what,
               (unsigned long long)id, (unsigned long long)mark))
        return false;
    struct buf want = BUF_INIT;
    expect_payload(id, ver, mark, &want);
    bool ok = CHECK(r, want.len == h->payload_len && memcmp(want.data, h->payload, want.len) == 0,
                    "%s: id %llu: payload is not the one of version %u", what,
                    (unsigned long long)id, ver);
    buf_free(&want);
    if (ok && wv) {
        float v[DIM];
        pu_vec(id, ver, DIM, v);
        ok = CHECK(r, memcmp(v, h->vec, sizeof v) == 0,
                   "%s: id %llu: vector is not the one of the payload's version %u (torn)", what,
                   (unsigned long long)id, ver);
    }
    return ok;
}

static bool no_dup(struct run *r, const struct part_result *res, size_t i, const char *what)
{
    for (size_t j = 0; j < i; j++)
        if (!CHECK(r, !pid_eq(&res->hits[j].id, &res->hits[i].id), "%s: id %llu twice", what,
                   (unsigned long long)res->hits[i].id.lo))
            return false;
    return true;
}

static void read_search(struct run *r, uint64_t *seed, int fi)
{
    char err[DV_ERRMSG_SIZE];
    float q[DIM];
    struct part_result res;
    enum part_plan plan = PART_PLAN_WALK;
    const struct filter *f = fi < 0 ? NULL : r->f[fi];
    pu_vec(pu_rng(seed) % MAX_IDS, (uint32_t)(pu_rng(seed) % 8), DIM, q);
    struct part_query pq = {.vec = q,
                            .k = K,
                            .ef = 0,
                            .filter = f,
                            .with_payload = true,
                            .with_vector = true,
                            .quant = HNSW_QUANT_AUTO};
    uint64_t lo = ld64(&r->created_done);
    int rc = part_search(r->p, &pq, &res, &plan, err);
    uint64_t dels = ld64(&r->deleted_started);
    if (!CHECK(r, rc == DV_OK, "search: %s", err))
        return;
    add64(&r->plans[plan & 3], 1);
    CHECK(r, res.n <= K, "search: %zu hits for k %d", res.n, K);
    for (size_t i = 0; i < res.n; i++) {
        const struct part_hit *h = &res.hits[i];
        if (!check_hit(r, h, true, true, "search") || !no_dup(r, &res, i, "search"))
            break;
        float d = l2(q, h->vec);
        CHECK(r, fabsf(d - h->score) <= 1e-4f * (1.0f + d),
              "search: id %llu: score %g, distance %g", (unsigned long long)h->id.lo, h->score, d);
        if (i > 0)
            CHECK(r, res.hits[i - 1].score <= h->score, "search: hits not sorted at %zu", i);
        if (f != NULL)
            CHECK(r, pred(fi, h->id.lo, mark_of(h->payload, h->payload_len)),
                  "search: id %llu does not match filter %d", (unsigned long long)h->id.lo, fi);
    }
    /* Enough live points during the whole call: an unfiltered search finds k of them. */
    if (f == NULL && lo >= dels + 2 * K)
        CHECK(r, res.n == K, "search: %zu hits, at least %llu points live", res.n,
              (unsigned long long)(lo - dels));
    part_result_free(&res);
}

static void read_get(struct run *r, uint64_t *seed, int it)
{
    char err[DV_ERRMSG_SIZE];
    struct pid ids[8];
    struct part_result res;
    bool wv = it & 1, wp = (it & 2) == 0;
    uint64_t start = pu_rng(seed) % MAX_IDS;
    for (int i = 0; i < 8; i++)
        ids[i] = pid_num((start + 7 * (uint64_t)i) % MAX_IDS); /* distinct ids */
    int rc = part_get(r->p, ids, 8, wv, wp, &res, err);
    if (!CHECK(r, rc == DV_OK, "get: %s", err))
        return;
    size_t j = 0;
    for (size_t i = 0; i < res.n; i++) {
        while (j < 8 && !pid_eq(&ids[j], &res.hits[i].id))
            j++;
        if (!CHECK(r, j < 8, "get: hit %zu not in request order", i) ||
            !check_hit(r, &res.hits[i], wv, wp, "get"))
            break;
        j++;
    }
    part_result_free(&res);
}

static void read_count(struct run *r, int fi)
{
    char err[DV_ERRMSG_SIZE];
    uint64_t n = 0;
    uint64_t lo = ld64(&r->created_done), del_done = ld64(&r->deleted_done);
    int rc = part_count(r->p, fi < 0 ? NULL : r->f[fi], &n, err);
    uint64_t hi = ld64(&r->created_started), dels = ld64(&r->deleted_started);
    if (!CHECK(r, rc == DV_OK, "count: %s", err))
        return;
    CHECK(r, n <= hi - del_done, "count %d: %llu points, at most %llu exist", fi,
          (unsigned long long)n, (unsigned long long)(hi - del_done));
    /* lo was read before dels: deletes of points created after that read may be counted in
     * dels, so the bound can fall below zero (then there is none). */
    if (fi < 0 && lo > dels)
        CHECK(r, n >= lo - dels, "count: %llu points, at least %llu exist", (unsigned long long)n,
              (unsigned long long)(lo - dels));
}

/* One page of a scroll that goes on from where the reader's previous page ended. */
static void read_scroll(struct reader *rd, int fi)
{
    struct run *r = rd->run;
    char err[DV_ERRMSG_SIZE];
    struct part_result res;
    struct pid next;
    bool more = false;
    const struct filter *f = fi < 0 ? NULL : r->f[fi];
    int rc = part_scroll(r->p, rd->have_cursor ? &rd->cursor : NULL, SCROLL_PAGE, f, true, true,
                         &res, &next, &more, err);
    if (!CHECK(r, rc == DV_OK, "scroll: %s", err))
        return;
    CHECK(r, res.n <= SCROLL_PAGE, "scroll: %zu points for limit %d", res.n, SCROLL_PAGE);
    CHECK(r, !more || res.n == SCROLL_PAGE, "scroll: more after a short page");
    for (size_t i = 0; i < res.n; i++) {
        const struct part_hit *h = &res.hits[i];
        if (!check_hit(r, h, true, true, "scroll"))
            break;
        if (i == 0 && rd->have_cursor)
            CHECK(r, pid_cmp(&rd->cursor, &h->id) <= 0, "scroll: id %llu before the cursor",
                  (unsigned long long)h->id.lo);
        if (i > 0)
            CHECK(r, pid_cmp(&res.hits[i - 1].id, &h->id) < 0, "scroll: ids not increasing");
        if (f != NULL)
            CHECK(r, pred(fi, h->id.lo, mark_of(h->payload, h->payload_len)),
                  "scroll: id %llu does not match filter %d", (unsigned long long)h->id.lo, fi);
    }
    if (more && res.n > 0)
        CHECK(r, pid_cmp(&res.hits[res.n - 1].id, &next) < 0, "scroll: next not after the page");
    rd->have_cursor = more;
    rd->cursor = next;
    part_result_free(&res);
}

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    struct run *r = rd->run;
    for (int it = 0; __atomic_load_n(&r->writers_left, __ATOMIC_SEQ_CST) > 0 || it < MIN_READS;
         it++) {
        int fi = it % (NFILTERS + 1) - 1; /* -1: no filter */
        read_search(r, &rd->seed, fi);
        read_search(r, &rd->seed, -1);
        read_get(r, &rd->seed, it);
        read_count(r, fi);
        read_scroll(rd, (it / 3) % (NFILTERS + 1) - 1);
        add64(&r->reads, 1);
    }
    return NULL;
}

/* ---- writers ------------------------------------------------------------------------------ */

static uint32_t id_of(const struct writer *w, uint32_t j)
{
    return j * WRITERS + (uint32_t)w->w;
}

static void logged(struct writer *w, uint64_t lsn, uint32_t j, uint32_t ver)
{
    struct change *c = &w->log[w->nlog++];
    c->lsn = lsn;
    c->id = id_of(w, j);
    c->ver = ver;
    c->mark = w->mark[j];
}

/* Upserts our ids js[i] in versions vers[i] (an id may repeat: the last one wins). */
static bool upsert(struct writer *w, const uint32_t *js, const uint32_t *vers, size_t n)
{
    struct run *r = w->run;
    char err[DV_ERRMSG_SIZE];
    struct part_point pts[NEW_PER_ROUND + REPL_PER_ROUND + 1];
    float v[NEW_PER_ROUND + REPL_PER_ROUND + 1][DIM];
    struct buf pl[NEW_PER_ROUND + REPL_PER_ROUND + 1];
    uint64_t lsn = 0;
    memset(pts, 0, sizeof pts);
    for (size_t i = 0; i < n; i++) {
        uint32_t id = id_of(w, js[i]);
        buf_init(&pl[i]);
        pu_vec(id, vers[i], DIM, v[i]);
        pu_payload(id, vers[i], &pl[i]);
        pts[i] = (struct part_point){pid_num(id), v[i], DIM, pl[i].data, pl[i].len, NULL, 0};
        if (__atomic_load_n(&r->issued[id], __ATOMIC_SEQ_CST) < vers[i] + 1)
            __atomic_store_n(&r->issued[id], vers[i] + 1, __ATOMIC_SEQ_CST);
    }
    int rc = part_upsert(r->p, pts, n, &lsn, err);
    for (size_t i = 0; i < n; i++)
        buf_free(&pl[i]);
    if (!CHECK(r, rc == DV_OK, "upsert: %s", err) ||
        !CHECK(r, lsn > w->last_lsn, "upsert: LSN %llu after %llu", (unsigned long long)lsn,
               (unsigned long long)w->last_lsn))
        return false;
    w->last_lsn = lsn;
    for (size_t i = 0; i < n; i++)
        logged(w, lsn, js[i], vers[i]);
    return true;
}

static bool w_create(struct writer *w)
{
    uint32_t js[NEW_PER_ROUND], vers[NEW_PER_ROUND];
    for (int i = 0; i < NEW_PER_ROUND; i++) {
        js[i] = w->next_j++;
        vers[i] = 0;
        w->ver[js[i]] = 0;
        w->mark[js[i]] = 0;
    }
    add64(&w->run->created_started, NEW_PER_ROUND);
    if (!upsert(w, js, vers, NEW_PER_ROUND))
        return false;
    add64(&w->run->created_done, NEW_PER_ROUND);
    for (int i = 0; i < NEW_PER_ROUND; i++)
        w->live[w->nlive++] = js[i];
    return true;
}

/* New versions of random live ids (repeats included), and now and then a deleted id again. */
static bool w_replace(struct writer *w, int round)
{
    uint32_t js[REPL_PER_ROUND + 1], vers[REPL_PER_ROUND + 1];
    size_t n = 0;
    for (int i = 0; i < REPL_PER_ROUND && w->nlive > 0; i++) {
        uint32_t j = w->live[pu_rng(&w->seed) % w->nlive];
        vers[n] = ++w->ver[j];
        w->mark[j] = 0;
        js[n++] = j;
    }
    bool revive = round % 3 == 0 && w->ndead > 0;
    if (revive) {
        size_t k = pu_rng(&w->seed) % w->ndead;
        uint32_t j = w->dead[k];
        w->dead[k] = w->dead[--w->ndead];
        vers[n] = ++w->ver[j];
        w->mark[j] = 0;
        js[n++] = j;
        add64(&w->run->created_started, 1);
    }
    if (n == 0)
        return true;
    if (!upsert(w, js, vers, n))
        return false;
    if (revive) {
        add64(&w->run->created_done, 1);
        w->live[w->nlive++] = js[n - 1];
    }
    return true;
}

static bool w_delete(struct writer *w)
{
    struct run *r = w->run;
    char err[DV_ERRMSG_SIZE];
    struct pid ids[DEL_PER_ROUND + 1];
    uint32_t js[DEL_PER_ROUND];
    size_t n = 0, deleted = 0;
    uint64_t lsn = 0;
    while (n < DEL_PER_ROUND && w->nlive > 0) {
        size_t k = pu_rng(&w->seed) % w->nlive;
        js[n] = w->live[k];
        w->live[k] = w->live[--w->nlive];
        ids[n] = pid_num(id_of(w, js[n]));
        n++;
    }
    /* and an id of ours that does not exist (yet): ignored */
    ids[n] = pid_num(id_of(w, w->next_j + 3));
    add64(&r->deleted_started, n);
    int rc = part_delete(r->p, ids, n + 1, &lsn, &deleted, err);
    if (!CHECK(r, rc == DV_OK, "delete: %s", err) ||
        !CHECK(r, deleted == n, "delete: %zu deleted, %zu expected", deleted, n) ||
        !CHECK(r, lsn > w->last_lsn, "delete: LSN goes back"))
        return false;
    add64(&r->deleted_done, n);
    w->last_lsn = lsn;
    for (size_t i = 0; i < n; i++) {
        w->mark[js[i]] = 0;
        logged(w, lsn, js[i], ABSENT);
        w->dead[w->ndead++] = js[i];
    }
    return true;
}

/* Sets a new "mark" on random live ids, or (every 4th round) deletes the key. */
static bool w_set_payload(struct writer *w, int round)
{
    struct run *r = w->run;
    char err[DV_ERRMSG_SIZE];
    struct pid ids[SET_PER_ROUND];
    uint32_t js[SET_PER_ROUND];
    struct buf data = BUF_INIT;
    uint64_t lsn = 0, mark = 0;
    enum part_payload_op op = round % 4 == 3 ? PART_PAYLOAD_DELETE : PART_PAYLOAD_SET;
    size_t n = 0;
    for (; n < SET_PER_ROUND && w->nlive > 0; n++) {
        js[n] = w->live[pu_rng(&w->seed) % w->nlive];
        ids[n] = pid_num(id_of(w, js[n]));
    }
    if (n == 0)
        return true;
    if (op == PART_PAYLOAD_SET) {
        mark = __atomic_fetch_add(&r->mark_next, 1, __ATOMIC_SEQ_CST);
        mpw_map(&data, 1);
        mpw_str(&data, "mark", 4);
        mpw_u64(&data, mark);
    } else {
        mpw_array(&data, 1);
        mpw_str(&data, "mark", 4);
    }
    int rc = part_set_payload(r->p, op, ids, n, data.data, data.len, &lsn, err);
    buf_free(&data);
    if (!CHECK(r, rc == DV_OK, "set_payload: %s", err) ||
        !CHECK(r, lsn > w->last_lsn, "set_payload: LSN goes back"))
        return false;
    w->last_lsn = lsn;
    for (size_t i = 0; i < n; i++) {
        w->mark[js[i]] = mark;
        logged(w, lsn, js[i], w->ver[js[i]]);
    }
    return true;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int round = 0; round < ROUNDS; round++) {
        if (!w_create(w) || !w_replace(w, round) || !w_delete(w) || !w_set_payload(w, round))
            break;
    }
    __atomic_fetch_sub(&w->run->writers_left, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* ---- maintenance: explicit checkpoints, compactions, snapshots, index changes ------------- */

static void *maint_main(void *arg)
{
    struct run *r = arg;
    char err[DV_ERRMSG_SIZE];
    struct part_info in;
    for (int it = 0; __atomic_load_n(&r->writers_left, __ATOMIC_SEQ_CST) > 0 || it < 3; it++) {
        CHECK(r, part_checkpoint(r->p, err) == DV_OK, "checkpoint: %s", err);
        part_get_info(r->p, &in);
        r->compactions_with_tombstones += in.deleted > 0;
        CHECK(r, part_compact(r->p, err) == DV_OK, "compact: %s", err);
        struct membuf m = {BUF_INIT, 0};
        uint64_t lsn = 0;
        bool ok = CHECK(r, part_snapshot(r->p, pu_mem_sink, &m, &lsn, err) == DV_OK, "snapshot: %s",
                        err) &&
                  CHECK(r, lsn >= r->snap_lsn, "snapshot LSN %llu after %llu",
                        (unsigned long long)lsn, (unsigned long long)r->snap_lsn);
        /* keep the last one taken while writers were still busy: a true prefix */
        if (ok && (r->snap_lsn == 0 || __atomic_load_n(&r->writers_left, __ATOMIC_SEQ_CST) > 0)) {
            buf_free(&r->snap.b);
            r->snap = m;
            r->snap_lsn = lsn;
        } else {
            buf_free(&m.b);
        }
        part_get_info(r->p, &in);
        CHECK(r, in.ckpt_lsn <= in.applied_lsn && lsn <= in.applied_lsn && !in.failed,
              "info: checkpoint LSN %llu, snapshot %llu, applied %llu, failed %d",
              (unsigned long long)in.ckpt_lsn, (unsigned long long)lsn,
              (unsigned long long)in.applied_lsn, in.failed);
        /* payload index changes are writes too; an integer index on "n" comes and goes */
        if (it % 4 == 1)
            CHECK(r, part_create_index(r->p, "n", PINDEX_INTEGER, NULL, err) == DV_OK,
                  "create_index: %s", err);
        else if (it % 4 == 3)
            CHECK(r, part_drop_index(r->p, "n", NULL, err) == DV_OK, "drop_index: %s", err);
        r->maint_rounds++;
    }
    return NULL;
}

/* ---- checks of a quiet replica (main thread) ---------------------------------------------- */

/* The state after every change with lsn <= upto, from the writers' logs. */
static void model_at(struct writer *const *ws, uint64_t upto, struct model *m)
{
    for (size_t i = 0; i < MAX_IDS; i++) {
        m->ver[i] = ABSENT;
        m->mark[i] = 0;
    }
    for (int w = 0; w < WRITERS; w++) {
        for (size_t i = 0; i < ws[w]->nlog && ws[w]->log[i].lsn <= upto; i++) {
            m->ver[ws[w]->log[i].id] = ws[w]->log[i].ver;
            m->mark[ws[w]->log[i].id] = ws[w]->log[i].mark;
        }
    }
}

/* Checks a point read back against the model: exact vector and payload bytes. */
static void check_exact(const struct model *m, const struct part_hit *h)
{
    assert_int_equal(h->id.kind, PID_NUM);
    assert_true(h->id.lo < MAX_IDS);
    uint64_t id = h->id.lo;
    assert_int_not_equal(m->ver[id], ABSENT);
    float v[DIM];
    struct buf want = BUF_INIT;
    pu_vec(id, m->ver[id], DIM, v);
    assert_non_null(h->vec);
    assert_memory_equal(v, h->vec, sizeof v);
    expect_payload(id, m->ver[id], m->mark[id], &want);
    assert_int_equal(h->payload_len, want.len);
    assert_memory_equal(h->payload, want.data, want.len);
    buf_free(&want);
}

/* The replica holds exactly the model: ids, versions, vectors, payloads, counts, filters. */
static void check_model(struct part *p, const struct model *m, struct filter *const *f)
{
    char err[DV_ERRMSG_SIZE];
    struct pid *all = malloc(MAX_IDS * sizeof *all);
    size_t nlive = 0, got = 0;
    for (size_t i = 0; i < MAX_IDS; i++) {
        all[i] = pid_num(i);
        nlive += m->ver[i] != ABSENT;
    }
    /* scroll: every point once, in id order */
    struct pid from, next;
    bool more = true, first = true;
    uint64_t last = 0;
    while (more) {
        struct part_result res;
        assert_int_equal(
            part_scroll(p, first ? NULL : &from, 100, NULL, true, true, &res, &next, &more, err),
            DV_OK);
        for (size_t i = 0; i < res.n; i++) {
            check_exact(m, &res.hits[i]);
            assert_true(got == 0 || res.hits[i].id.lo > last);
            last = res.hits[i].id.lo;
            got++;
        }
        part_result_free(&res);
        from = next;
        first = false;
    }
    assert_int_equal(got, nlive);
    /* get of every id ever possible: exactly the live ones, in order */
    struct part_result res;
    assert_int_equal(part_get(p, all, MAX_IDS, true, true, &res, err), DV_OK);
    assert_int_equal(res.n, nlive);
    for (size_t i = 0; i < res.n; i++) {
        check_exact(m, &res.hits[i]);
        assert_true(i == 0 || res.hits[i].id.lo > res.hits[i - 1].id.lo);
    }
    part_result_free(&res);
    uint64_t n;
    assert_int_equal(part_count(p, NULL, &n, err), DV_OK);
    assert_int_equal(n, nlive);
    /* filters: counts (payload indexes included) and complete filtered searches */
    for (int fi = 0; fi < NFILTERS; fi++) {
        size_t match = 0;
        for (size_t i = 0; i < MAX_IDS; i++)
            match += m->ver[i] != ABSENT && pred(fi, i, m->mark[i]);
        assert_int_equal(part_count(p, f[fi], &n, err), DV_OK);
        assert_int_equal(n, match);
        float q[DIM];
        pu_vec(12345, (uint32_t)fi, DIM, q);
        struct part_query pq = {.vec = q,
                                .k = K,
                                .ef = 0,
                                .filter = f[fi],
                                .with_payload = true,
                                .with_vector = true,
                                .quant = HNSW_QUANT_AUTO};
        assert_int_equal(part_search(p, &pq, &res, NULL, err), DV_OK);
        assert_int_equal(res.n, match < K ? match : K);
        for (size_t i = 0; i < res.n; i++) {
            check_exact(m, &res.hits[i]);
            assert_true(pred(fi, res.hits[i].id.lo, m->mark[res.hits[i].id.lo]));
        }
        part_result_free(&res);
    }
    /* recall of unfiltered searches against a brute-force oracle over the model */
    size_t found = 0, wanted = 0;
    for (int qi = 0; qi < 20; qi++) {
        float q[DIM], v[DIM];
        pu_vec(777 + (uint64_t)qi, 3, DIM, q);
        float best[K];
        uint64_t best_id[K];
        size_t nb = 0;
        for (size_t i = 0; i < MAX_IDS; i++) {
            if (m->ver[i] == ABSENT)
                continue;
            pu_vec(i, m->ver[i], DIM, v);
            float d = l2(q, v);
            size_t at = nb < K ? nb++ : K;
            if (at == K && d >= best[K - 1])
                continue;
            if (at == K)
                at = K - 1;
            while (at > 0 && best[at - 1] > d) {
                best[at] = best[at - 1];
                best_id[at] = best_id[at - 1];
                at--;
            }
            best[at] = d;
            best_id[at] = i;
        }
        struct part_query pq = {.vec = q,
                                .k = K,
                                .ef = 0,
                                .filter = NULL,
                                .with_payload = false,
                                .with_vector = false,
                                .quant = HNSW_QUANT_AUTO};
        assert_int_equal(part_search(p, &pq, &res, NULL, err), DV_OK);
        assert_int_equal(res.n, nb);
        for (size_t i = 0; i < nb; i++)
            for (size_t j = 0; j < res.n; j++)
                found += res.hits[j].id.lo == best_id[i];
        wanted += nb;
        part_result_free(&res);
    }
    print_message("# recall@%d %.3f\n", K, (double)found / (double)wanted);
    assert_true(found * 10 >= wanted * 9);
    free(all);
}

static void mt_opts(struct part_opts *o, enum wal_sync sync)
{
    part_opts_default(o);
    o->index.dim = DIM;
    o->index.metric = HNSW_L2;
    o->index.m = 8;
    o->index.ef_construction = 64;
    o->wal.sync = sync;
    o->wal.segment_bytes = WAL_MIN_SEGMENT_BYTES; /* rotate, so checkpoints drop segments */
    o->ckpt_wal_bytes = 16 * 1024;
    o->ckpt_interval_ms = 20;
    o->exact_threshold = 64; /* filtered searches both walk and scan */
    o->background = true;
}

static void run_mt(enum wal_sync sync)
{
    char dir[4096], dir2[4200], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct run *r = calloc(1, sizeof *r);
    struct writer *ws[WRITERS];
    struct reader rds[READERS];
    pthread_t wt[WRITERS], rt[READERS], mt;

    assert_non_null(r);
    pu_tmpdir(dir, sizeof dir, "r");
    snprintf(dir2, sizeof dir2, "%s.restored", dir);
    mt_opts(&o, sync);
    assert_int_equal(part_create(io_posix(), dir, &o, &r->p, err), DV_OK);
    assert_int_equal(part_create_index(r->p, "color", PINDEX_KEYWORD, NULL, err), DV_OK);
    for (int i = 0; i < NFILTERS; i++) {
        struct buf b = BUF_INIT;
        assert_int_equal(jsonmp_from_text(filter_json[i], strlen(filter_json[i]), &b, err), DV_OK);
        assert_int_equal(filter_compile(b.data, b.len, &r->f[i], err), DV_OK);
        buf_free(&b);
    }
    r->mark_next = 1;
    r->writers_left = WRITERS;
    for (int w = 0; w < WRITERS; w++) {
        ws[w] = calloc(1, sizeof *ws[w]);
        assert_non_null(ws[w]);
        ws[w]->run = r;
        ws[w]->w = w;
        ws[w]->seed = 1000 + (uint64_t)w + 17 * (uint64_t)sync;
        assert_int_equal(pthread_create(&wt[w], NULL, writer_main, ws[w]), 0);
    }
    for (int i = 0; i < READERS; i++) {
        rds[i] = (struct reader){r, 5000 + (uint64_t)i, {0}, false};
        assert_int_equal(pthread_create(&rt[i], NULL, reader_main, &rds[i]), 0);
    }
    assert_int_equal(pthread_create(&mt, NULL, maint_main, r), 0);
    for (int w = 0; w < WRITERS; w++)
        pthread_join(wt[w], NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);
    pthread_join(mt, NULL);
    assert_int_equal(__atomic_load_n(&r->failures, __ATOMIC_SEQ_CST), 0);

    struct part_info in;
    part_get_info(r->p, &in);
    print_message("# sync %d: %llu reads (plans walk %llu indexed %llu scan %llu walk+scan %llu), "
                  "%d maintenance rounds (%d compactions with tombstones), %llu checkpoints, "
                  "snapshot LSN %llu of %llu\n",
                  (int)sync, (unsigned long long)r->reads, (unsigned long long)r->plans[0],
                  (unsigned long long)r->plans[1], (unsigned long long)r->plans[2],
                  (unsigned long long)r->plans[3], r->maint_rounds, r->compactions_with_tombstones,
                  (unsigned long long)in.ckpt_count, (unsigned long long)r->snap_lsn,
                  (unsigned long long)in.applied_lsn);
    assert_true(in.ckpt_count >= 2);
    assert_true(r->compactions_with_tombstones >= 1);
    assert_false(in.failed);

    /* the end state is exactly the writers' model */
    struct model *m = malloc(sizeof *m);
    assert_non_null(m);
    model_at(ws, UINT64_MAX, m);
    check_model(r->p, m, r->f);

    /* recovery: the last checkpoint + the WAL after it, which the changes of one more round
     * (without new ids) right before closing make sure of, unless a checkpoint is quicker */
    for (int w = 0; w < WRITERS; w++)
        assert_true(w_replace(ws[w], 0) && w_delete(ws[w]) && w_set_payload(ws[w], 0));
    part_get_info(r->p, &in);
    uint64_t applied = in.applied_lsn;
    print_message("# reopen: checkpoint LSN %llu, WAL up to %llu\n",
                  (unsigned long long)in.ckpt_lsn, (unsigned long long)applied);
    part_close(r->p);
    model_at(ws, UINT64_MAX, m);
    assert_int_equal(part_open(io_posix(), dir, &o, &r->p, err), DV_OK);
    part_get_info(r->p, &in);
    assert_int_equal(in.applied_lsn, applied);
    check_model(r->p, m, r->f);
    part_close(r->p);

    /* the last snapshot: exactly the writes up to its LSN */
    struct part *q;
    assert_true(r->snap_lsn > 0);
    assert_int_equal(part_restore(io_posix(), dir2, pu_mem_source, &r->snap, &o, &q, err), DV_OK);
    part_get_info(q, &in);
    assert_int_equal(in.applied_lsn, r->snap_lsn);
    model_at(ws, r->snap_lsn, m);
    check_model(q, m, r->f);
    part_close(q);

    buf_free(&r->snap.b);
    for (int i = 0; i < NFILTERS; i++)
        filter_free(r->f[i]);
    for (int w = 0; w < WRITERS; w++)
        free(ws[w]);
    free(m);
    free(r);
    pu_tmpdir_free(dir);
}

static void test_mt_sync_always(void **state)
{
    run_mt(WAL_SYNC_ALWAYS);
}

static void test_mt_sync_never(void **state)
{
    run_mt(WAL_SYNC_NEVER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mt_sync_always),
        cmocka_unit_test(test_mt_sync_never),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
