/* test_part_order.c - a replica's facet counts and order_by scroll (part_order.c) against brute
 * force over random payloads: every index kind that serves them, filters, start_from, limits,
 * deletes and rewrites, and the refusals (no index, an index of the wrong kind). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "dtime.h"
#include "filter.h"
#include "io.h"
#include "jsonmp.h"
#include "part_util.h"

#define N    600
#define DIM  4
#define NKW  6
#define NUU  4
#define MAXV 3

/* The model of a point's payload: the distinct values it holds at each key. */
struct mpoint {
    bool live;
    uint32_t grp;
    uint32_t nkw, kw[MAXV]; /* "kw": keywords (indexes into kws) */
    uint32_t nnum;          /* "num": integers */
    int64_t num[MAXV];      /* (a float 0.5 is added to some arrays: not indexed as integer) */
    uint32_t nf;            /* "f": floats */
    double f[MAXV];
    uint32_t nt; /* "t": datetimes, microseconds */
    int64_t t[MAXV];
    int b;  /* "b": -1 none, 0 false, 1 true */
    int uu; /* "u": -1 none, else an index into uus */
};

static const char *const kws[NKW] = {"apple", "pear", "fig", "kiwi", "Plum", "lime"};
static const char *const uus[NUU] = {
    "b0000000-0000-0000-0000-000000000001", "0a000000-0000-0000-0000-000000000002",
    "ffffffff-0000-0000-0000-000000000000", "1234ABCD-0000-0000-0000-000000000009"};

static struct mpoint model[N];
static uint64_t rs;

static uint32_t rnd(uint32_t n)
{
    return (uint32_t)(pu_rng(&rs) % n);
}

/* n distinct values of [0, range) into out. */
static uint32_t distinct(uint32_t n, uint32_t range, int64_t *out)
{
    uint32_t k = 0;
    while (k < n) {
        int64_t v = rnd(range);
        bool dup = false;
        for (uint32_t j = 0; j < k; j++)
            dup |= out[j] == v;
        if (!dup)
            out[k++] = v;
    }
    return k;
}

static void make_point(struct mpoint *m)
{
    int64_t tmp[MAXV] = {0};
    memset(m, 0, sizeof *m);
    m->live = true;
    m->grp = rnd(3);
    m->nkw = rnd(4) == 0 ? 0 : 1 + rnd(2);
    distinct(m->nkw, NKW, tmp);
    for (uint32_t j = 0; j < m->nkw; j++)
        m->kw[j] = (uint32_t)tmp[j];
    m->nnum = rnd(5) == 0 ? 0 : 1 + rnd(MAXV);
    distinct(m->nnum, 41, m->num);
    for (uint32_t j = 0; j < m->nnum; j++)
        m->num[j] -= 20;
    m->nf = rnd(5) == 0 ? 0 : 1 + rnd(2);
    distinct(m->nf, 30, tmp);
    for (uint32_t j = 0; j < m->nf; j++)
        m->f[j] = (double)tmp[j] * 0.25 - 3.0;
    m->nt = rnd(5) == 0 ? 0 : 1;
    if (m->nt) /* 2024-03-01 plus whole seconds */
        m->t[0] = 1709251200ll * 1000000 + (int64_t)rnd(50) * 1000000;
    m->b = (int)rnd(3) - 1;
    m->uu = (int)rnd(NUU + 1) - 1;
}

static void payload(const struct mpoint *m, struct buf *b)
{
    char ts[64];
    buf_reset(b);
    mpw_map(b, 7);
    mpw_str(b, "grp", 3);
    mpw_u64(b, m->grp);
    mpw_str(b, "kw", 2);
    mpw_array(b, m->nkw);
    for (uint32_t j = 0; j < m->nkw; j++)
        mpw_str(b, kws[m->kw[j]], strlen(kws[m->kw[j]]));
    mpw_str(b, "num", 3);
    bool half = m->nnum > 0 && m->grp == 2;
    mpw_array(b, m->nnum + (half ? 1 : 0));
    for (uint32_t j = 0; j < m->nnum; j++)
        mpw_i64(b, m->num[j]);
    if (half)
        mpw_f64(b, 0.5);
    mpw_str(b, "f", 1);
    if (m->nf == 1) {
        mpw_f64(b, m->f[0]);
    } else {
        mpw_array(b, m->nf);
        for (uint32_t j = 0; j < m->nf; j++)
            mpw_f64(b, m->f[j]);
    }
    mpw_str(b, "t", 1);
    if (m->nt) {
        size_t n = dtime_format(m->t[0], ts);
        mpw_str(b, ts, n);
    } else {
        mpw_nil(b);
    }
    mpw_str(b, "b", 1);
    if (m->b < 0)
        mpw_nil(b);
    else
        mpw_bool(b, m->b == 1);
    mpw_str(b, "u", 1);
    if (m->uu < 0)
        mpw_str(b, "not-a-uuid", 10);
    else
        mpw_str(b, uus[m->uu], strlen(uus[m->uu]));
}

/* Writes the points ids[n] to p: new model points (fresh), or the model's as they are. */
static void put(struct part *p, const uint32_t *ids, size_t n, bool fresh)
{
    char err[DV_ERRMSG_SIZE];
    struct part_point *pts = calloc(n, sizeof *pts);
    float *v = malloc(n * DIM * sizeof *v);
    struct buf *pl = calloc(n, sizeof *pl);
    for (size_t i = 0; i < n; i++) {
        if (fresh)
            make_point(&model[ids[i]]);
        payload(&model[ids[i]], &pl[i]);
        pu_vec(ids[i], 0, DIM, v + i * DIM);
        pts[i] = (struct part_point){.id = pid_num(ids[i]),
                                     .vec = v + i * DIM,
                                     .dim = DIM,
                                     .payload = pl[i].data,
                                     .payload_len = pl[i].len};
    }
    assert_int_equal(part_upsert(p, pts, n, NULL, err), DV_OK);
    for (size_t i = 0; i < n; i++)
        buf_free(&pl[i]);
    free(pl);
    free(v);
    free(pts);
}

static struct filter *compile(const char *json)
{
    struct buf b = BUF_INIT;
    char err[DV_ERRMSG_SIZE];
    struct filter *f = NULL;
    assert_int_equal(jsonmp_from_text(json, strlen(json), &b, err), DV_OK);
    assert_int_equal(filter_compile(b.data, b.len, &f, err), DV_OK);
    buf_free(&b);
    return f;
}

/* The filters tried: none, grp == g (an exact keyword-free index-less filter: scanned). */
static bool model_match(const struct mpoint *m, int grp)
{
    return m->live && (grp < 0 || m->grp == (uint32_t)grp);
}

/* ---- facet ---- */

struct fval {
    int64_t i;       /* int, bool */
    const char *s;   /* keyword, uuid canonical */
    struct pid uuid; /* uuid order */
    uint64_t count;
};

static int fkind; /* 0 kw, 1 num, 2 b, 3 u */

static int fval_cmp(const void *a, const void *b)
{
    const struct fval *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (fkind == 0)
        return strcmp(x->s, y->s);
    if (fkind == 3)
        return pid_cmp(&x->uuid, &y->uuid);
    return (x->i > y->i) - (x->i < y->i);
}

static void check_facet(struct part *p, const char *key, int kind, int grp, size_t limit)
{
    char err[DV_ERRMSG_SIZE], canon[NUU][PID_TEXT_MAX];
    struct fval vals[64];
    size_t nv = 0;
    memset(vals, 0, sizeof vals);
    if (kind == 0) {
        for (int k = 0; k < NKW; k++)
            vals[nv++].s = kws[k];
    } else if (kind == 1) {
        for (int k = -20; k <= 20; k++)
            vals[nv++].i = k;
    } else if (kind == 2) {
        vals[nv++].i = 0;
        vals[nv++].i = 1;
    } else {
        for (int k = 0; k < NUU; k++) {
            assert_int_equal(pid_parse_uuid(uus[k], strlen(uus[k]), &vals[nv].uuid), DV_OK);
            pid_format(&vals[nv].uuid, canon[k]);
            vals[nv++].s = canon[k];
        }
    }
    for (size_t i = 0; i < N; i++) {
        const struct mpoint *m = &model[i];
        if (!model_match(m, grp))
            continue;
        if (kind == 0)
            for (uint32_t j = 0; j < m->nkw; j++)
                vals[m->kw[j]].count++;
        if (kind == 1)
            for (uint32_t j = 0; j < m->nnum; j++)
                vals[m->num[j] + 20].count++;
        if (kind == 2 && m->b >= 0)
            vals[m->b].count++;
        if (kind == 3 && m->uu >= 0)
            vals[m->uu].count++;
    }
    fkind = kind;
    qsort(vals, nv, sizeof *vals, fval_cmp);
    size_t want = 0;
    while (want < nv && vals[want].count > 0 && (limit == 0 || want < limit))
        want++;

    char fj[64];
    snprintf(fj, sizeof fj, "{\"must\": [{\"key\": \"grp\", \"match\": {\"value\": %d}}]}", grp);
    struct filter *f = grp >= 0 ? compile(fj) : NULL;
    struct part_facets r;
    assert_int_equal(part_facet(p, key, f, limit, &r, err), DV_OK);
    if (r.n != want)
        print_message("facet %s grp %d limit %zu: %zu values, brute force %zu\n", key, grp, limit,
                      r.n, want);
    assert_int_equal(r.n, want);
    for (size_t i = 0; i < want; i++) {
        assert_int_equal(r.hits[i].count, vals[i].count);
        if (kind == 0 || kind == 3) {
            assert_int_equal(r.hits[i].type, PART_FV_STR);
            assert_string_equal(r.hits[i].s, vals[i].s);
        } else {
            assert_int_equal(r.hits[i].type, kind == 1 ? PART_FV_INT : PART_FV_BOOL);
            assert_int_equal(r.hits[i].i, vals[i].i);
        }
    }
    part_facets_free(&r);
    filter_free(f);
}

/* ---- order_by ---- */

struct oent {
    double v; /* exact for every value used here (integers, quarters, microseconds) */
    uint64_t id;
};

static bool odesc;

static int oent_cmp(const void *a, const void *b)
{
    const struct oent *x = a, *y = b;
    if (x->v != y->v)
        return (x->v < y->v) == !odesc ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* kind: 1 num, 2 f, 3 t; start: NULL or the start value in the key's terms. */
static void check_order(struct part *p, const char *key, int kind, bool desc, int grp,
                        const struct part_start *start, double startv, uint32_t limit)
{
    char err[DV_ERRMSG_SIZE], fj[64];
    struct oent *e = malloc(N * MAXV * sizeof *e);
    size_t ne = 0;
    for (size_t i = 0; i < N; i++) {
        const struct mpoint *m = &model[i];
        if (!model_match(m, grp))
            continue;
        uint32_t nv = kind == 1 ? m->nnum : kind == 2 ? m->nf : m->nt;
        for (uint32_t j = 0; j < nv; j++) {
            double v = kind == 1 ? (double)m->num[j] : kind == 2 ? m->f[j] : (double)m->t[j];
            if (start != NULL && (desc ? v > startv : v < startv))
                continue;
            e[ne++] = (struct oent){v, i};
        }
    }
    odesc = desc;
    qsort(e, ne, sizeof *e, oent_cmp);
    size_t want = ne < limit ? ne : limit;

    snprintf(fj, sizeof fj, "{\"must\": [{\"key\": \"grp\", \"match\": {\"value\": %d}}]}", grp);
    struct filter *f = grp >= 0 ? compile(fj) : NULL;
    struct part_order_req q = {key, desc, {0}, limit, f, false, true};
    if (start != NULL)
        q.start = *start;
    struct part_result r;
    struct part_ordval *vals;
    int rc = part_scroll_ordered(p, &q, &r, &vals, err);
    if (rc != DV_OK)
        print_message("order %s: %s\n", key, err);
    assert_int_equal(rc, DV_OK);
    if (r.n != want)
        print_message("order %s desc %d grp %d limit %u: %zu entries, brute force %zu\n", key, desc,
                      grp, limit, r.n, want);
    assert_int_equal(r.n, want);
    for (size_t i = 0; i < want; i++) {
        double got = vals[i].is_float ? vals[i].f : (double)vals[i].i;
        assert_int_equal(vals[i].is_float, kind == 2);
        if (got != e[i].v || r.hits[i].id.lo != e[i].id)
            print_message("entry %zu: (%g, %llu), brute force (%g, %llu)\n", i, got,
                          (unsigned long long)r.hits[i].id.lo, e[i].v, (unsigned long long)e[i].id);
        assert_true(got == e[i].v);
        assert_int_equal(r.hits[i].id.lo, e[i].id);
        assert_non_null(r.hits[i].payload);
    }
    part_result_free(&r);
    free(vals);
    filter_free(f);
    free(e);
}

static void check_all(struct part *p)
{
    static const char *const fkeys[] = {"kw", "num", "b", "u"};
    for (int k = 0; k < 4; k++)
        for (int grp = -1; grp < 3; grp++) {
            check_facet(p, fkeys[k], k, grp, 0);
            check_facet(p, fkeys[k], k, grp, 1);
            check_facet(p, fkeys[k], k, grp, 3);
        }
    static const char *const okeys[] = {NULL, "num", "f", "t"};
    static const uint32_t limits[] = {1, 7, 50, 5000};
    for (int k = 1; k <= 3; k++)
        for (int d = 0; d < 2; d++)
            for (int grp = -1; grp < 3; grp += 2)
                for (size_t l = 0; l < 4; l++)
                    check_order(p, okeys[k], k, d, grp, NULL, 0, limits[l]);
    /* start_from: an integer, a fraction (ceiling ascending, floor descending), a datetime */
    struct part_start s_int = {.type = PART_START_INT, .i = 3};
    struct part_start s_frac = {.type = PART_START_FLOAT, .f = -2.5};
    const char *ts = "2024-03-01T00:00:20Z";
    struct part_start s_time = {.type = PART_START_TIME, .s = ts, .len = strlen(ts)};
    struct part_start s_us = {.type = PART_START_INT, .i = 1709251200ll * 1000000 + 30000000};
    for (int d = 0; d < 2; d++) {
        check_order(p, "num", 1, d, -1, &s_int, 3, 20);
        check_order(p, "num", 1, d, 1, &s_frac, d ? -3 : -2, 20);
        check_order(p, "f", 2, d, -1, &s_int, 3, 20);
        check_order(p, "f", 2, d, -1, &s_frac, -2.5, 20);
        check_order(p, "t", 3, d, -1, &s_time, 1709251200e6 + 20e6, 20);
        check_order(p, "t", 3, d, 0, &s_us, 1709251200e6 + 30e6, 20);
    }
}

static void test_facet_order_brute_force(void **state)
{
    (void)state;
    char dir[4096], err[DV_ERRMSG_SIZE];
    const char *env = getenv("DVEC_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    print_message("# seed %llu (DVEC_TEST_SEED repeats it)\n", (unsigned long long)seed);
    rs = seed;

    struct part_opts o;
    struct part *p;
    part_opts_default(&o);
    o.index.dim = DIM;
    o.index.m = 8;
    o.wal.sync = WAL_SYNC_NEVER;
    o.background = false;
    pu_tmpdir(dir, sizeof dir, "order");
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    static const struct {
        const char *key;
        enum pindex_kind kind;
    } ix[] = {{"kw", PINDEX_KEYWORD}, {"num", PINDEX_INTEGER}, {"f", PINDEX_FLOAT},
              {"t", PINDEX_DATETIME}, {"b", PINDEX_BOOL},      {"u", PINDEX_UUID},
              {"grp", PINDEX_INTEGER}};
    /* Half the indexes exist before the points, half are built from them. */
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(part_create_index(p, ix[i].key, ix[i].kind, NULL, err), DV_OK);
    /* ids in a shuffled order, so that slot order is not id order */
    uint32_t ids[N];
    for (uint32_t i = 0; i < N; i++)
        ids[i] = i;
    for (uint32_t i = N - 1; i > 0; i--) {
        uint32_t j = rnd(i + 1), t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
    put(p, ids, N / 2, true);
    put(p, ids + N / 2, N - N / 2, true);
    for (size_t i = 3; i < 7; i++)
        assert_int_equal(part_create_index(p, ix[i].key, ix[i].kind, NULL, err), DV_OK);
    check_all(p);

    /* deletes and rewrites (slots reused, index entries replaced) */
    struct pid del[N / 4];
    for (size_t i = 0; i < N / 4; i++) {
        uint32_t id = ids[i * 2];
        del[i] = pid_num(id);
        model[id].live = false;
    }
    assert_int_equal(part_delete(p, del, N / 4, NULL, NULL, err), DV_OK);
    put(p, ids + 1, 100, true);
    check_all(p);
    part_close(p);
    pu_tmpdir_free(dir);
}

static struct part *sample_part(char *dir, size_t cap, const char *name)
{
    char err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    part_opts_default(&o);
    o.index.dim = DIM;
    o.index.m = 8;
    o.wal.sync = WAL_SYNC_NEVER;
    o.background = false;
    pu_tmpdir(dir, cap, name);
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    return p;
}

/* sample: `limit` distinct live points matching the filter, the same for the same seed; the
 * points split over two replicas give samples whose merged smallest keys are the whole
 * replica's sample (what makes the coordinator's merge a uniform sample). */
static void test_sample(void **state)
{
    (void)state;
    char d1[4096], d2[4096], d3[4096], err[DV_ERRMSG_SIZE];
    rs = 99;
    struct part *all = sample_part(d1, sizeof d1, "sall"), *lo = sample_part(d2, sizeof d2, "slo"),
                *hi = sample_part(d3, sizeof d3, "shi");
    uint32_t ids[N];
    for (uint32_t i = 0; i < N; i++)
        ids[i] = i;
    put(all, ids, N, true);
    put(lo, ids, N / 2, false);
    put(hi, ids + N / 2, N - N / 2, false);
    char fj[64];
    snprintf(fj, sizeof fj, "{\"must\":[{\"key\":\"grp\",\"match\":{\"value\":%d}}]}", 1);
    struct filter *f = compile(fj);
    for (int round = 0; round < 2; round++) {
        const struct filter *ff = round ? f : NULL;
        uint32_t matching = 0;
        for (uint32_t i = 0; i < N; i++)
            matching += model_match(&model[i], round ? 1 : -1);
        for (uint64_t seed = 1; seed < 40; seed += 3) {
            struct part_result r, a, b, again;
            struct part_ordval *v, *va, *vb, *vagain;
            uint32_t limit = 1 + (uint32_t)(seed % 25);
            assert_int_equal(part_sample(all, seed, limit, ff, false, true, &r, &v, err), DV_OK);
            assert_int_equal(r.n, limit < matching ? limit : matching);
            for (size_t i = 0; i < r.n; i++) {
                assert_true(model_match(&model[r.hits[i].id.lo], round ? 1 : -1));
                if (i > 0)
                    assert_true(v[i - 1].i < v[i].i); /* ascending keys: distinct points */
            }
            assert_int_equal(part_sample(all, seed, limit, ff, false, false, &again, &vagain, err),
                             DV_OK);
            assert_int_equal(again.n, r.n);
            for (size_t i = 0; i < r.n; i++)
                assert_true(pid_eq(&again.hits[i].id, &r.hits[i].id));
            /* the split: merge the two samples by key, keep `limit` */
            assert_int_equal(part_sample(lo, seed, limit, ff, false, false, &a, &va, err), DV_OK);
            assert_int_equal(part_sample(hi, seed, limit, ff, false, false, &b, &vb, err), DV_OK);
            size_t i = 0, j = 0;
            for (size_t k = 0; k < r.n; k++) {
                bool from_a = j >= b.n || (i < a.n && va[i].i < vb[j].i);
                const struct pid *got = from_a ? &a.hits[i++].id : &b.hits[j++].id;
                assert_true(pid_eq(got, &r.hits[k].id));
            }
            part_result_free(&r);
            part_result_free(&again);
            part_result_free(&a);
            part_result_free(&b);
            free(v);
            free(vagain);
            free(va);
            free(vb);
        }
    }
    /* another seed, another sample (of 25 among hundreds) */
    struct part_result r1, r2;
    struct part_ordval *v1, *v2;
    assert_int_equal(part_sample(all, 7, 25, NULL, false, false, &r1, &v1, err), DV_OK);
    assert_int_equal(part_sample(all, 8, 25, NULL, false, false, &r2, &v2, err), DV_OK);
    size_t same = 0;
    for (size_t i = 0; i < r1.n; i++)
        for (size_t j = 0; j < r2.n; j++)
            same += pid_eq(&r1.hits[i].id, &r2.hits[j].id);
    assert_true(same < r1.n);
    part_result_free(&r1);
    part_result_free(&r2);
    free(v1);
    free(v2);
    assert_int_equal(part_sample(all, 7, 0, NULL, false, false, &r1, &v1, err), DV_EINVAL);
    filter_free(f);
    part_close(all);
    part_close(lo);
    part_close(hi);
    pu_tmpdir_free(d1);
    pu_tmpdir_free(d2);
    pu_tmpdir_free(d3);
}

static void test_refusals(void **state)
{
    (void)state;
    char dir[4096], err[DV_ERRMSG_SIZE];
    struct part_opts o;
    struct part *p;
    part_opts_default(&o);
    o.index.dim = DIM;
    o.wal.sync = WAL_SYNC_NEVER;
    o.background = false;
    pu_tmpdir(dir, sizeof dir, "order");
    assert_int_equal(part_create(io_posix(), dir, &o, &p, err), DV_OK);
    assert_int_equal(part_create_index(p, "kw", PINDEX_KEYWORD, NULL, err), DV_OK);
    assert_int_equal(part_create_index(p, "f", PINDEX_FLOAT, NULL, err), DV_OK);
    struct pindex_params lk = pindex_params_default(PINDEX_INTEGER);
    lk.has_params = true;
    lk.range = false;
    assert_int_equal(part_create_index_params(p, "lookup_only", &lk, NULL, err), DV_OK);
    struct part_facets fr;
    assert_int_equal(part_facet(p, "nope", NULL, 10, &fr, err), DV_EINVAL);
    assert_non_null(strstr(err, "\"nope\" has no keyword, integer (with lookup), bool or uuid"));
    assert_int_equal(part_facet(p, "f", NULL, 10, &fr, err), DV_EINVAL);
    assert_non_null(strstr(err, "it has a float"));
    assert_int_equal(part_facet(p, "kw", NULL, 10, &fr, err), DV_OK);
    assert_int_equal(fr.n, 0);
    part_facets_free(&fr);

    struct part_result r;
    struct part_ordval *v;
    struct part_order_req q = {.key = "kw", .limit = 10};
    assert_int_equal(part_scroll_ordered(p, &q, &r, &v, err), DV_EINVAL);
    assert_non_null(strstr(err, "\"kw\" has no range index"));
    q.key = "lookup_only";
    assert_int_equal(part_scroll_ordered(p, &q, &r, &v, err), DV_EINVAL);
    q.key = "f";
    q.limit = 0;
    assert_int_equal(part_scroll_ordered(p, &q, &r, &v, err), DV_EINVAL);
    q.limit = 10;
    q.start = (struct part_start){.type = PART_START_TIME, .s = "2024-01-01", .len = 10};
    assert_int_equal(part_scroll_ordered(p, &q, &r, &v, err), DV_EINVAL);
    assert_non_null(strstr(err, "numeric"));
    q.start.type = PART_START_NONE;
    assert_int_equal(part_scroll_ordered(p, &q, &r, &v, err), DV_OK);
    assert_int_equal(r.n, 0);
    part_result_free(&r);
    free(v);
    part_close(p);
    pu_tmpdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_facet_order_brute_force),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
