/* pid.c - point ids: parsing, formatting, ordering, hashing. */
#include "pid.h"

#include <stdio.h>

#include "err.h"
#include "hash.h"

int pid_cmp(const struct pid *a, const struct pid *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return 0;
}

uint64_t pid_hash(const struct pid *p)
{
    if (p->kind == PID_NUM)
        return hash64_u64(p->lo);
    uint8_t b[16];
    pid_uuid_bytes(p, b);
    return hash64_bytes(b, sizeof b, 0);
}

uint32_t pid_partition(const struct pid *id, uint32_t n_parts)
{
    if (n_parts <= 1)
        return 0;
    if (n_parts > INT32_MAX)
        n_parts = INT32_MAX;
    return (uint32_t)jump_consistent_hash(pid_hash(id), (int32_t)n_parts);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pid_parse_uuid(const char *s, size_t n, struct pid *out)
{
    uint8_t b[16];
    size_t bi = 0;
    if (n != 36 && n != 32)
        return DV_EPARSE;
    for (size_t i = 0; i < n;) {
        if (n == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-')
                return DV_EPARSE;
            i++;
            continue;
        }
        if (i + 1 >= n)
            return DV_EPARSE;
        int h = hexval(s[i]), l = hexval(s[i + 1]);
        if (h < 0 || l < 0 || bi >= 16)
            return DV_EPARSE;
        b[bi++] = (uint8_t)(h << 4 | l);
        i += 2;
    }
    if (bi != 16)
        return DV_EPARSE;
    *out = pid_from_uuid_bytes(b);
    return DV_OK;
}

int pid_parse(const char *s, size_t n, struct pid *out)
{
    if (n == 0)
        return DV_EPARSE;
    if (n <= 20) {
        uint64_t v = 0;
        size_t i;
        for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                return DV_ERANGE;
            v = v * 10 + d;
        }
        if (i == n) {
            *out = pid_num(v);
            return DV_OK;
        }
    }
    return pid_parse_uuid(s, n, out);
}

size_t pid_format(const struct pid *p, char *buf)
{
    if (p->kind == PID_NUM)
        return (size_t)snprintf(buf, PID_TEXT_MAX, "%llu", (unsigned long long)p->lo);
    uint8_t b[16];
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    pid_uuid_bytes(p, b);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            buf[o++] = '-';
        buf[o++] = hex[b[i] >> 4];
        buf[o++] = hex[b[i] & 15];
    }
    buf[o] = '\0';
    return o;
}

void pid_uuid_bytes(const struct pid *p, uint8_t out[16])
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(p->hi >> (56 - 8 * i));
        out[8 + i] = (uint8_t)(p->lo >> (56 - 8 * i));
    }
}

struct pid pid_from_uuid_bytes(const uint8_t b[16])
{
    struct pid p = {0, 0, PID_UUID};
    for (int i = 0; i < 8; i++) {
        p.hi = p.hi << 8 | b[i];
        p.lo = p.lo << 8 | b[8 + i];
    }
    return p;
}
