/* crc32c.c - CRC32C: SSE4.2 / ARMv8 CRC instructions chosen at run time, else slicing-by-8. */
#include "crc32c.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define HAVE_X86_CRC 1
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define HAVE_ARM_CRC 1
#endif

/* Reflected Castagnoli polynomial. */
#define POLY 0x82f63b78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* table[k][b] is the CRC of byte b followed by k zero bytes, for slicing-by-8. */
static void table_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++)
            c = (c >> 1) ^ (POLY & (0u - (c & 1)));
        table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xff];
}

static uint32_t rd32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t crc32c_update_table(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;

    pthread_once(&table_once, table_init);
    while (len >= 8) {
        uint32_t lo = rd32le(p) ^ c, hi = rd32le(p + 4);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
            table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    return ~c;
}

#ifdef HAVE_X86_CRC
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const void *buf,
                                                            size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;

    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8(c, *p++);
        len--;
    }
#ifdef __x86_64__
    uint64_t c64 = c;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
#endif
    while (len >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        c = _mm_crc32_u32(c, v);
        p += 4;
        len -= 4;
    }
    while (len--)
        c = _mm_crc32_u8(c, *p++);
    return ~c;
}
#endif

#ifdef HAVE_ARM_CRC
/* The instructions are emitted through asm so no global -march flag is needed. */
static uint32_t crc_armv8(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;

    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        __asm__(".arch_extension crc\n\tcrc32cx %w0, %w0, %x1" : "+r"(c) : "r"(v));
        p += 8;
        len -= 8;
    }
    while (len--) {
        uint32_t v = *p++;
        __asm__(".arch_extension crc\n\tcrc32cb %w0, %w0, %w1" : "+r"(c) : "r"(v));
    }
    return ~c;
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static crc_fn impl_fn;        /* current implementation, set once then atomically */
static const char *impl_name; /* its name, written before impl_fn */
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void pick(bool force_table)
{
    crc_fn fn = crc32c_update_table;
    const char *name = "table";
    if (!force_table) {
#ifdef HAVE_X86_CRC
        if (__builtin_cpu_supports("sse4.2")) {
            fn = crc_sse42;
            name = "sse4.2";
        }
#endif
#ifdef HAVE_ARM_CRC
        if (getauxval(AT_HWCAP) & HWCAP_CRC32) {
            fn = crc_armv8;
            name = "armv8";
        }
#endif
    }
    __atomic_store_n(&impl_name, name, __ATOMIC_RELEASE);
    __atomic_store_n(&impl_fn, fn, __ATOMIC_RELEASE);
}

static void impl_init(void)
{
    const char *env = getenv("DVEC_CRC32C");
    pick(env != NULL && strcmp(env, "table") == 0);
}

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&impl_once, impl_init);
    crc_fn fn = __atomic_load_n(&impl_fn, __ATOMIC_ACQUIRE);
    return fn(crc, buf, len);
}

uint32_t crc32c(const void *buf, size_t len)
{
    return crc32c_update(0, buf, len);
}

void crc32c_force_table(bool force)
{
    pthread_once(&impl_once, impl_init);
    pick(force);
}

const char *crc32c_impl(void)
{
    pthread_once(&impl_once, impl_init);
    return __atomic_load_n(&impl_name, __ATOMIC_ACQUIRE);
}
