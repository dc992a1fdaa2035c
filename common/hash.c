/* hash.c - a multiply-fold byte hash, a xor-shift-multiply id finalizer, and jump hashing. */
#include "hash.h"

#include <string.h>

#include "err.h"

/* Odd 64-bit constants (hex digits of pi and e, forced odd); any odd, dense value works. */
#define K_PI0 0x243f6a8885a308d3ULL
#define K_PI1 0x13198a2e03707345ULL
#define K_E0  0xb7e151628aed2a6bULL
#define K_E1  0x9cf4f3c762e7160fULL
/* The golden-ratio increment of splitmix64. */
#define K_GOLD 0x9e3779b97f4a7c15ULL

/*
 * A bijective 64-bit finalizer with the xor-shift-multiply structure of splitmix64 and
 * Stafford's "Mix13" shift/multiplier choice: every input bit affects every output bit.
 */
static uint64_t fmix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* 64x64 -> 128-bit product, folded to 64 bits by xor of the halves. */
static uint64_t mulfold(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static uint64_t rd64le(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* Reads 0..8 bytes as a little-endian word, zero-padded. */
static uint64_t rdpartial(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint64_t hash64_u64(uint64_t x)
{
    return fmix(x + K_GOLD);
}

/*
 * Each 16-byte block is folded through one wide multiply and xored into a state that is
 * itself multiplied by an odd constant, so a block never erases what came before (the state
 * update is a bijection for a fixed block). The length enters the initial state, so inputs
 * that differ only by trailing zero bytes hash differently.
 */
uint64_t hash64_bytes(const void *p, size_t len, uint64_t seed)
{
    const uint8_t *b = p;
    size_t n = len;
    uint64_t h = fmix(seed ^ K_PI0) ^ ((uint64_t)len * K_E1);

    while (n >= 16) {
        uint64_t w0 = rd64le(b), w1 = rd64le(b + 8);
        h = (h * K_E0) ^ mulfold(w0 ^ K_PI1, w1 ^ K_E1 ^ h);
        b += 16;
        n -= 16;
    }
    if (n > 0) {
        uint64_t w0 = rdpartial(b, n < 8 ? n : 8);
        uint64_t w1 = n > 8 ? rdpartial(b + 8, n - 8) : 0;
        h = (h * K_E0) ^ mulfold(w0 ^ K_PI1, w1 ^ K_E1 ^ h);
    }
    return fmix(h ^ (h >> 29) ^ K_PI0);
}

/*
 * The key drives a 64-bit linear congruential generator; each step jumps forward to the
 * next bucket count at which this key would move. The key only ever lands on a bucket that
 * was "new" at some count, which gives the minimal-movement property.
 */
int32_t jump_consistent_hash(uint64_t key, int32_t buckets)
{
    if (buckets < 1)
        return DV_EINVAL;
    int64_t b = -1, j = 0;
    while (j < buckets) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1LL << 31) / (double)((key >> 33) + 1)));
    }
    return (int32_t)b;
}
