/* test_hash.c - pinned outputs, avalanche, jump hash balance and minimal movement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "hash.h"

/* Test-local generator (splitmix64 sequence), so the tests do not depend on libc's rand. */
static uint64_t rng_state = 12345;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/*
 * These values are a compatibility contract: they place points in partitions. If this test
 * fails, the change broke every existing cluster; revert it instead of updating the table.
 */
static void test_stable_u64(void **state)
{
    static const uint64_t v[][2] = {
        {0x0000000000000000ULL, 0xe220a8397b1dcdafULL},
        {0x0000000000000001ULL, 0x910a2dec89025cc1ULL},
        {0x0000000000000002ULL, 0x975835de1c9756ceULL},
        {0x000000000000002aULL, 0xbdd732262feb6e95ULL},
        {0xffffffffffffffffULL, 0xe4d971771b652c20ULL},
        {0x123456789abcdef0ULL, 0x161922c645ce50e8ULL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(hash64_u64(v[i][0]), v[i][1]);
}

static void test_stable_bytes(void **state)
{
    static const struct {
        const char *s;
        uint64_t seed, h;
    } v[] = {
        {"", 0, 0x27d8766bfe956fd9ULL},
        {"", 7, 0xdf32d8a20e70964fULL},
        {"a", 0, 0x8b9ee7c650b3cf83ULL},
        {"a", 7, 0x5aaf781586c7761bULL},
        {"abc", 0, 0x90558df697a9e992ULL},
        {"abc", 7, 0xded0e960040ebf32ULL},
        {"123456789", 0, 0x0d40a16931643e89ULL},
        {"123456789", 7, 0xd4202d248038b9f6ULL},
        {"0123456789abcdef", 0, 0xba128f56030e2173ULL},
        {"0123456789abcdef", 7, 0xe146196169776ae2ULL},
        {"550e8400-e29b-41d4-a716-446655440000", 0, 0xcb5dc64d86a551d1ULL},
        {"550e8400-e29b-41d4-a716-446655440000", 7, 0xf34276de24e11b81ULL},
        {"The quick brown fox jumps over the lazy dog", 0, 0xc4c1d119d2fa7566ULL},
        {"The quick brown fox jumps over the lazy dog", 7, 0xf7a4083db9a4dc37ULL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(hash64_bytes(v[i].s, strlen(v[i].s), v[i].seed), v[i].h);
}

static void test_stable_jump(void **state)
{
    static const struct {
        uint64_t key;
        int32_t buckets, want;
    } v[] = {
        {0x0ULL, 1, 0},
        {0x0ULL, 1000, 0},
        {0x1ULL, 10, 6},
        {0x1ULL, 1000, 549},
        {0x1ULL, 2147483647, 262355607},
        {0x2aULL, 2, 1},
        {0x2aULL, 10, 2},
        {0x2aULL, 1000, 571},
        {0x2aULL, 2147483647, 1603940301},
        {0xdeadbeefULL, 10, 5},
        {0xdeadbeefULL, 1000, 285},
        {0xdeadbeefULL, 2147483647, 1452406526},
        {0xffffffffffffffffULL, 10, 9},
        {0xffffffffffffffffULL, 1000, 313},
        {0xffffffffffffffffULL, 2147483647, 699554662},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(jump_consistent_hash(v[i].key, v[i].buckets), v[i].want);
}

static void test_bytes_alignment_and_length(void **state)
{
    uint8_t raw[300], copy[300 + 8];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)rng();
    for (size_t len = 0; len <= 256; len++) {
        uint64_t h = hash64_bytes(raw, len, 99);
        /* The same bytes at any alignment give the same hash. */
        for (size_t off = 1; off < 8; off++) {
            memcpy(copy + off, raw, len);
            assert_int_equal(hash64_bytes(copy + off, len, 99), h);
        }
        /* Appending a zero byte, or changing the seed, changes the hash. */
        uint8_t z[300] = {0};
        memcpy(z, raw, len);
        assert_int_not_equal(hash64_bytes(z, len + 1, 99), h);
        assert_int_not_equal(hash64_bytes(raw, len, 100), h);
    }
    /* All-zero inputs of different lengths do not collide. */
    uint8_t zeros[64] = {0};
    for (size_t a = 0; a < sizeof zeros; a++)
        for (size_t b = a + 1; b < sizeof zeros; b++)
            assert_int_not_equal(hash64_bytes(zeros, a, 0), hash64_bytes(zeros, b, 0));
}

/*
 * Strict avalanche: flipping any single input bit must flip each output bit with probability
 * close to 1/2. With 4000 samples the standard deviation of a frequency is 0.008, so a bound
 * of 0.44..0.56 is a 7-sigma margin for a good hash and catches a weak mix at once.
 */
#define AV_SAMPLES 4000

static void check_bias(uint32_t counts[64], int nbit_in)
{
    for (int j = 0; j < 64; j++) {
        double p = (double)counts[j] / AV_SAMPLES;
        if (p < 0.44 || p > 0.56)
            fail_msg("input bit %d -> output bit %d flips with p=%.3f", nbit_in, j, p);
    }
}

static void test_avalanche_u64(void **state)
{
    uint64_t total = 0;
    for (int i = 0; i < 64; i++) {
        uint32_t counts[64] = {0};
        for (int s = 0; s < AV_SAMPLES; s++) {
            /* Small sequential-looking ids are the common case; mix them in. */
            uint64_t x = (s & 1) ? rng() : (uint64_t)s;
            uint64_t d = hash64_u64(x) ^ hash64_u64(x ^ (1ULL << i));
            total += (uint64_t)__builtin_popcountll(d);
            for (int j = 0; j < 64; j++)
                counts[j] += (d >> j) & 1;
        }
        check_bias(counts, i);
    }
    double mean = (double)total / (64.0 * AV_SAMPLES);
    assert_true(mean > 31.5 && mean < 32.5);
}

static void test_avalanche_bytes(void **state)
{
    /* From 3 bytes up: shorter inputs have too few distinct values for the bound. */
    static const size_t lens[] = {3, 8, 13, 16, 17, 36, 64};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t len = lens[li];
        for (size_t bit = 0; bit < len * 8; bit++) {
            uint32_t counts[64] = {0};
            for (int s = 0; s < AV_SAMPLES; s++) {
                uint8_t m[64];
                for (size_t k = 0; k < len; k++)
                    m[k] = (uint8_t)rng();
                uint64_t h0 = hash64_bytes(m, len, 0);
                m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                uint64_t d = h0 ^ hash64_bytes(m, len, 0);
                for (int j = 0; j < 64; j++)
                    counts[j] += (d >> j) & 1;
            }
            check_bias(counts, (int)bit);
        }
    }
}

static void test_jump_bad_buckets(void **state)
{
    assert_int_equal(jump_consistent_hash(1, 0), DV_EINVAL);
    assert_int_equal(jump_consistent_hash(1, -5), DV_EINVAL);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(jump_consistent_hash(rng(), 1), 0);
}

static void test_jump_balance(void **state)
{
    static const int32_t nb[] = {2, 7, 10, 64, 100};
    const int keys = 200000;
    for (size_t t = 0; t < sizeof nb / sizeof nb[0]; t++) {
        int32_t n = nb[t];
        uint32_t cnt[100] = {0};
        for (int i = 0; i < keys; i++) {
            int32_t b = jump_consistent_hash(hash64_u64((uint64_t)i), n);
            assert_true(b >= 0 && b < n);
            cnt[b]++;
        }
        /* Chi-square against uniform; the 99.99th percentile for 99 dof is about 156. */
        double e = (double)keys / n, chi = 0;
        for (int32_t b = 0; b < n; b++)
            chi += ((double)cnt[b] - e) * ((double)cnt[b] - e) / e;
        assert_true(chi < 160.0);
        for (int32_t b = 0; b < n; b++)
            assert_true(cnt[b] > e * 0.9 && cnt[b] < e * 1.1);
    }
}

static void test_jump_minimal_movement(void **state)
{
    const int keys = 50000;
    static int32_t prev[50000];
    for (int i = 0; i < keys; i++)
        prev[i] = jump_consistent_hash(hash64_u64((uint64_t)i), 1);
    for (int32_t n = 1; n < 80; n++) {
        int moved = 0;
        for (int i = 0; i < keys; i++) {
            int32_t b = jump_consistent_hash(hash64_u64((uint64_t)i), n + 1);
            if (b != prev[i]) {
                /* A key that moves goes only to the new bucket. */
                assert_int_equal(b, n);
                moved++;
            }
            prev[i] = b;
        }
        double want = (double)keys / (n + 1);
        /* Binomial sd is at most sqrt(keys/4) = 112; allow a wide 6-sigma band. */
        assert_true(moved > want - 700 && moved < want + 700);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stable_u64),
        cmocka_unit_test(test_stable_bytes),
        cmocka_unit_test(test_stable_jump),
        cmocka_unit_test(test_bytes_alignment_and_length),
        cmocka_unit_test(test_avalanche_u64),
        cmocka_unit_test(test_avalanche_bytes),
        cmocka_unit_test(test_jump_bad_buckets),
        cmocka_unit_test(test_jump_balance),
        cmocka_unit_test(test_jump_minimal_movement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
