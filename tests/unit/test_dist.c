/* test_dist.c - distance kernels of every SIMD level against a float64 reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dist.h"

#define MAXDIM  4096
#define NLEVELS 5

static const size_t big_dims[] = {768, 784, 1000, 1536, 4096};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Uniform float in [lo, hi). */
static float rng_float(float lo, float hi)
{
    return lo + (hi - lo) * (float)((rng_next() >> 40) * (1.0 / 16777216.0));
}

/* Backing store with room for the unaligned offsets. */
static float buf_a[MAXDIM + 16], buf_b[MAXDIM + 16], buf_q[MAXDIM + 16], buf_w[MAXDIM + 16];
static uint8_t buf_c[MAXDIM + 16];

static void fill(size_t n, float *a, float *b, float *q, float *w, uint8_t *c)
{
    for (size_t i = 0; i < n; i++) {
        a[i] = rng_float(-1, 1);
        b[i] = rng_float(-1, 1);
        q[i] = rng_float(-2, 257); /* code space, a little outside the code range too */
        w[i] = rng_float(0, 2);
        c[i] = (uint8_t)rng_next();
    }
}

/* Passes when |got - ref| <= 1e-5 * mag + 1e-6, where mag is the sum of |terms|. */
static void check_close(const char *what, const char *level, size_t n, float got, double ref,
                        double mag)
{
    double tol = 1e-5 * mag + 1e-6;
    if (!(fabs((double)got - ref) <= tol)) {
        fail_msg("%s level=%s n=%zu: got %.9g want %.9g (tol %.3g)", what, level, n, (double)got,
                 ref, tol);
    }
}

/* Checks every kernel of `ops` on one set of n-dimensional inputs. */
static void check_kernels(const struct dist_ops *ops, size_t n, const float *a, const float *b,
                          const float *q, const float *w, const uint8_t *c)
{
    double l2 = 0, dot = 0, dmag = 0, na = 0, nb = 0, l1 = 0;
    double s8l2 = 0, s8dot = 0, s8dmag = 0, s8l1 = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i], d = x - y;
        l2 += d * d;
        dot += x * y;
        dmag += fabs(x * y);
        na += x * x;
        nb += y * y;
        l1 += fabs(d);
        double e = (double)q[i] - (double)c[i];
        s8l2 += w[i] * e * e;
        s8dot += (double)q[i] * c[i];
        s8dmag += fabs((double)q[i] * c[i]);
        s8l1 += w[i] * fabs(e);
    }
    check_close("l2sq", ops->name, n, ops->l2sq(a, b, n), l2, l2);
    check_close("dot", ops->name, n, ops->dot(a, b, n), dot, dmag);
    check_close("l1", ops->name, n, ops->l1(a, b, n), l1, l1);
    double cosref = 1.0, cosmag = 0;
    if (na > 0 && nb > 0) {
        cosref = 1.0 - dot / sqrt(na * nb);
        cosmag = dmag / sqrt(na * nb) + 1.0;
    }
    check_close("cosine", ops->name, n, ops->cosine(a, b, n), cosref, cosmag);
    check_close("sq8_l2", ops->name, n, ops->sq8_l2(q, w, c, n), s8l2, s8l2);
    check_close("sq8_dot", ops->name, n, ops->sq8_dot(q, c, n), s8dot, s8dmag);
    check_close("sq8_l1", ops->name, n, ops->sq8_l1(q, w, c, n), s8l1, s8l1);
}

static int levels_tested;

/* Every supported level, dimensions 1..260 and some large ones, unaligned pointers. */
static void test_kernels_all_levels(void **state)
{
    for (int lv = 0; lv < NLEVELS; lv++) {
        const struct dist_ops *ops = dist_ops_for((enum dist_level)lv);
        if (ops == NULL)
            continue;
        levels_tested++;
        assert_int_equal(ops->level, lv);
        assert_string_equal(ops->name, dist_level_name((enum dist_level)lv));
        print_message("# level %s\n", ops->name);
        for (size_t k = 0; k < 260 + sizeof big_dims / sizeof big_dims[0]; k++) {
            size_t n = k < 260 ? k + 1 : big_dims[k - 260];
            for (size_t off = 1; off <= 3; off++) {
                float *a = buf_a + off, *b = buf_b + (off % 3) + 1, *q = buf_q + off;
                float *w = buf_w + 4 - off;
                uint8_t *c = buf_c + (off * 2 + n) % 7 + 1;
                fill(n, a, b, q, w, c);
                check_kernels(ops, n, a, b, q, w, c);
            }
        }
    }
    assert_true(levels_tested >= 1);
    assert_non_null(dist_ops_for(DIST_SCALAR));
#if defined(__x86_64__)
    assert_null(dist_ops_for(DIST_NEON));
#endif
}

/*
 * Inputs that end exactly at a PROT_NONE page: a kernel that reads one element too far
 * (a bad tail) takes SIGSEGV.
 */
static void test_no_overread(void **state)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t span = 4 * (size_t)page;
    uint8_t *region =
        mmap(NULL, span + (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(region != MAP_FAILED);
    assert_int_equal(mprotect(region + span, (size_t)page, PROT_NONE), 0);
    /* Four areas, each ending at the guard page: a, b, q/w share the float space by thirds. */
    float *end = (float *)(region + span);
    for (int lv = 0; lv < NLEVELS; lv++) {
        const struct dist_ops *ops = dist_ops_for((enum dist_level)lv);
        if (ops == NULL)
            continue;
        for (size_t n = 0; n <= 70; n++) {
            /* Each array ends exactly at the guard page in turn; others sit below it. */
            float *a = end - n, *b = end - n, *q = end - n, *w = end - n;
            uint8_t *c = (uint8_t *)end - n;
            float *lo = (float *)region;
            for (int which = 0; which < 5; which++) {
                float *fa = which == 0 ? a : lo, *fb = which == 1 ? b : lo + 100;
                float *fq = which == 2 ? q : lo + 200, *fw = which == 3 ? w : lo + 300;
                uint8_t *fc = which == 4 ? c : (uint8_t *)(lo + 400);
                for (size_t i = 0; i < n; i++) {
                    fa[i] = 0.5f;
                    fb[i] = 0.25f;
                    fq[i] = 3.0f;
                    fw[i] = 1.0f;
                    fc[i] = 1;
                }
                check_kernels(ops, n, fa, fb, fq, fw, fc);
            }
        }
    }
    munmap(region, span + (size_t)page);
}

static void test_zero_dim(void **state)
{
    for (int lv = 0; lv < NLEVELS; lv++) {
        const struct dist_ops *ops = dist_ops_for((enum dist_level)lv);
        if (ops == NULL)
            continue;
        assert_true(ops->l2sq(buf_a, buf_b, 0) == 0.0f);
        assert_true(ops->dot(buf_a, buf_b, 0) == 0.0f);
        assert_true(ops->l1(buf_a, buf_b, 0) == 0.0f);
        assert_true(ops->cosine(buf_a, buf_b, 0) == 1.0f);
        assert_true(ops->sq8_l2(buf_q, buf_w, buf_c, 0) == 0.0f);
        assert_true(ops->sq8_dot(buf_q, buf_c, 0) == 0.0f);
        assert_true(ops->sq8_l1(buf_q, buf_w, buf_c, 0) == 0.0f);
    }
}

static void test_cosine_special(void **state)
{
    static const size_t dims[] = {1, 3, 7, 16, 100, 784};
    float *a = buf_a + 1, *b = buf_b + 2, *neg = buf_q + 3, *zero = buf_w + 1;
    for (int lv = 0; lv < NLEVELS; lv++) {
        const struct dist_ops *ops = dist_ops_for((enum dist_level)lv);
        if (ops == NULL)
            continue;
        for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
            size_t n = dims[k];
            for (size_t i = 0; i < n; i++) {
                a[i] = rng_float(-1, 1);
                b[i] = a[i] * 3.0f; /* same direction */
                neg[i] = -a[i];
                zero[i] = 0;
            }
            a[0] = 0.5f; /* never all zero */
            b[0] = 1.5f;
            neg[0] = -0.5f;
            assert_true(ops->cosine(zero, a, n) == 1.0f);
            assert_true(ops->cosine(a, zero, n) == 1.0f);
            assert_true(ops->cosine(zero, zero, n) == 1.0f);
            assert_true(fabsf(ops->cosine(a, b, n)) < 1e-5f);
            assert_true(fabsf(ops->cosine(a, neg, n) - 2.0f) < 1e-5f);
            /* |a|^2 |b|^2 overflows float here, |a| |b| does not. */
            for (size_t i = 0; i < n; i++) {
                a[i] *= 1e15f;
                b[i] *= 1e15f;
            }
            assert_true(fabsf(ops->cosine(a, b, n)) < 1e-5f);
        }
    }
}

static void test_level_names(void **state)
{
    for (int lv = 0; lv < NLEVELS; lv++) {
        const char *name = dist_level_name((enum dist_level)lv);
        assert_string_not_equal(name, "unknown");
        assert_int_equal(dist_level_parse(name), lv);
    }
    assert_int_equal(dist_level_parse("scalar"), DIST_SCALAR);
    assert_int_equal(dist_level_parse("sse"), DIST_SSE);
    assert_int_equal(dist_level_parse("avx2"), DIST_AVX2);
    assert_int_equal(dist_level_parse("avx512"), DIST_AVX512);
    assert_int_equal(dist_level_parse("neon"), DIST_NEON);
    static const char *const junk[] = {"",    "avx",     "avx2 ",  " avx2", "avx3", "sse4.1",
                                       "512", "scalarx", "neon\n", "-1",    "0"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        assert_int_equal(dist_level_parse(junk[i]), -1);
    assert_int_equal(dist_level_parse(NULL), -1);
    assert_string_equal(dist_level_name((enum dist_level)99), "unknown");
    assert_string_equal(dist_level_name((enum dist_level) - 1), "unknown");
}

static void test_cpu_level(void **state)
{
    enum dist_level cpu = dist_cpu_level();
    const struct dist_ops *best = dist_ops_for(cpu);
    assert_non_null(best);
    assert_int_equal(best->level, cpu);
#if defined(__x86_64__)
    /* Every x86 level up to the CPU's best is available, none above it. */
    for (int lv = DIST_SCALAR; lv <= DIST_AVX512; lv++) {
        if (lv <= (int)cpu)
            assert_non_null(dist_ops_for((enum dist_level)lv));
        else
            assert_null(dist_ops_for((enum dist_level)lv));
    }
#endif
    assert_null(dist_ops_for((enum dist_level)17));
}

static void test_choose(void **state)
{
    const struct dist_ops *best = dist_ops_for(dist_cpu_level());
    assert_ptr_equal(dist_choose(NULL), best);
    assert_ptr_equal(dist_choose(""), best);
    assert_ptr_equal(dist_choose("bogus"), best);
    for (int lv = 0; lv < NLEVELS; lv++) {
        const struct dist_ops *ops = dist_ops_for((enum dist_level)lv);
        const struct dist_ops *got = dist_choose(dist_level_name((enum dist_level)lv));
        /* A supported level is taken; an unsupported one falls back to the best. */
        assert_ptr_equal(got, ops != NULL ? ops : best);
    }
    assert_int_equal(dist_choose("scalar")->level, DIST_SCALAR);
}

static void *get_thread(void *arg)
{
    return (void *)dist_get();
}

/*
 * dist_get() honours DVEC_SIMD. It decides once per process, so this must be the only test
 * that calls it, and it sets the variable first; several threads race for the first call.
 */
static void test_get_env(void **state)
{
    assert_int_equal(setenv("DVEC_SIMD", "scalar", 1), 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, get_thread, NULL), 0);
    const struct dist_ops *first = dist_get();
    for (int i = 0; i < 4; i++) {
        void *ret;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_ptr_equal(ret, first);
    }
    assert_int_equal(first->level, DIST_SCALAR);
    /* Later changes of the variable do not change the choice. */
    assert_int_equal(setenv("DVEC_SIMD", "avx2", 1), 0);
    assert_ptr_equal(dist_get(), first);
    unsetenv("DVEC_SIMD");
}

static void test_normalize(void **state)
{
    float *a = buf_a + 1;
    for (size_t n = 1; n <= 300; n += 37) {
        double s = 0;
        for (size_t i = 0; i < n; i++) {
            a[i] = rng_float(-10, 10);
            s += (double)a[i] * a[i];
        }
        float norm = dist_normalize(a, n);
        assert_true(fabs(norm - sqrt(s)) <= 1e-6 * sqrt(s));
        double t = 0;
        for (size_t i = 0; i < n; i++)
            t += (double)a[i] * a[i];
        assert_true(fabs(sqrt(t) - 1.0) < 1e-6);
    }
    for (size_t i = 0; i < 10; i++)
        a[i] = 0;
    assert_true(dist_normalize(a, 10) == 0.0f);
    for (size_t i = 0; i < 10; i++)
        assert_true(a[i] == 0.0f);
    assert_true(dist_normalize(a, 0) == 0.0f);
}

/* Diagnostic: the wide kernels must clearly beat scalar (a very loose bound). */

/* u8_l2sq is exact: every level against an integer reference, all dims, unaligned, and
 * arrays that end at a guard page (no over-read). */
static void test_u8_l2sq(void **state)
{
    static uint8_t a[4096 + 64], b[4096 + 64];
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *region =
        mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(region != MAP_FAILED);
    assert_int_equal(mprotect(region + page, (size_t)page, PROT_NONE), 0);
    for (int lv = 0; lv < NLEVELS; lv++) {
        const struct dist_ops *ops = dist_ops_for((enum dist_level)lv);
        if (ops == NULL)
            continue;
        assert_non_null(ops->u8_l2sq);
        for (size_t n = 0; n <= 4096; n = n < 300 ? n + 1 : n * 2 + 7) {
            for (size_t off = 0; off < 3; off++) {
                uint8_t *x = a + off, *y = b + 2 * off + 1;
                uint64_t ref = 0;
                for (size_t i = 0; i < n; i++) {
                    x[i] = (uint8_t)rng_next();
                    y[i] = (i % 7 == 0) ? (uint8_t)(255 - x[i]) : (uint8_t)rng_next();
                    int d = (int)x[i] - (int)y[i];
                    ref += (uint64_t)(d * d);
                }
                assert_int_equal(ops->u8_l2sq(x, y, n), ref);
            }
        }
        /* Worst case per element (0 vs 255) and the guard page. */
        for (size_t n = 0; n <= 200 && n <= (size_t)page; n++) {
            uint8_t *x = region + page - n;
            memset(a, 255, n);
            memset(x, 0, n);
            assert_int_equal(ops->u8_l2sq(x, a, n), (uint64_t)n * 65025u);
            assert_int_equal(ops->u8_l2sq(a, x, n), (uint64_t)n * 65025u);
        }
    }
    munmap(region, 2 * (size_t)page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_env), /* first: nothing may call dist_get() before it */
        cmocka_unit_test(test_kernels_all_levels),
        cmocka_unit_test(test_no_overread),
        cmocka_unit_test(test_zero_dim),
        cmocka_unit_test(test_cosine_special),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_cpu_level),
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_u8_l2sq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
