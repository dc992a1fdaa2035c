/* bench_util.h - what the benchmarks share: the clock, a seeded generator, the data. */
#ifndef DV_BENCH_UTIL_H
#define DV_BENCH_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/* Context switches (voluntary and not) of every thread of process pid so far (threads that
 * ended are not counted). */
static inline uint64_t bench_ctxsw(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    uint64_t sum = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char f[600], line[256];
        snprintf(f, sizeof f, "%s/%s/status", path, e->d_name);
        FILE *fp = fopen(f, "r");
        while (fp && fgets(line, sizeof line, fp)) {
            unsigned long long v;
            if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
                sum += v;
        }
        if (fp)
            fclose(fp);
    }
    if (d)
        closedir(d);
    return sum;
}

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64 */
static inline uint64_t bench_rng(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline float bench_unit(uint64_t *s)
{
    return (float)((bench_rng(s) >> 40) * (1.0 / 16777216.0));
}

/*
 * Vector of point i: embedding-like clustered data (256 random centres in [-1, 1)^dim, the
 * point a centre plus gaussian noise of 0.25), the centre chosen by a hash of i so that it is
 * independent of the payload fields. Uniform random vectors would measure the hardest case of
 * any graph index rather than the layer under test.
 */
static inline void bench_gen_vec(uint64_t i, uint32_t dim, float *out)
{
    uint64_t h = i * 0x9e3779b97f4a7c15ull;
    uint64_t c = bench_rng(&h) % 256, cs = c * 7919 + 17, s = i ^ 0xabcdef12345ull;
    for (uint32_t d = 0; d < dim; d++) {
        float u = bench_unit(&s) + 1e-7f, v = bench_unit(&s);
        float g = sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
        out[d] = bench_unit(&cs) * 2.0f - 1.0f + 0.25f * g;
    }
}

/* qsort comparator of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * Reads a TEXMEX file (.fvecs: int32 dim + dim float32 per row; .ivecs: the same with int32).
 * Rows must share one dimension. Returns the rows (caller frees) or NULL with a message.
 */
static inline void *bench_read_vecs(const char *path, size_t *n, uint32_t *dim)
{
    FILE *f = fopen(path, "rb");
    int32_t d;
    long size;
    void *data = NULL;

    if (f == NULL) {
        fprintf(stderr, "dvec-bench: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > 1 << 20) {
        fprintf(stderr, "dvec-bench: %s: not a .fvecs/.ivecs file (bad first dimension)\n", path);
        goto out;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t row = 4 + 4 * (size_t)d;
    if (size <= 0 || (size_t)size % row != 0) {
        fprintf(stderr, "dvec-bench: %s: size %ld is not a multiple of the row size %zu\n", path,
                size, row);
        goto out;
    }
    *n = (size_t)size / row;
    *dim = (uint32_t)d;
    data = malloc(*n * 4 * (size_t)d);
    if (data == NULL) {
        fprintf(stderr, "dvec-bench: %s: out of memory\n", path);
        goto out;
    }
    for (size_t i = 0; i < *n; i++) {
        int32_t rd;
        if (fread(&rd, 4, 1, f) != 1 || rd != d ||
            fread((char *)data + i * 4 * (size_t)d, 4, (size_t)d, f) != (size_t)d) {
            fprintf(stderr, "dvec-bench: %s: row %zu is truncated or has another dimension\n", path,
                    i);
            free(data);
            data = NULL;
            goto out;
        }
    }
out:
    fclose(f);
    return data;
}

/* Brute-force top-k ids (L2, nearest first) of nq queries over n vectors of dim floats:
 * truth[q * k + i]. The caller frees it. */
static inline uint64_t *bench_oracle_l2(const float *data, uint64_t n, uint32_t dim,
                                        const float *qv, uint32_t nq, uint32_t k,
                                        float (*l2sq)(const float *, const float *, size_t))
{
    uint64_t *truth = malloc((size_t)nq * k * sizeof *truth);
    float *best = malloc(k * sizeof *best);
    for (uint32_t q = 0; q < nq; q++) {
        uint64_t *ids = truth + (size_t)q * k;
        uint32_t have = 0;
        for (uint64_t i = 0; i < n; i++) {
            float s = l2sq(qv + (size_t)q * dim, data + i * dim, dim);
            if (have == k && s >= best[have - 1])
                continue;
            uint32_t j = have < k ? have++ : have - 1;
            while (j > 0 && best[j - 1] > s) {
                best[j] = best[j - 1];
                ids[j] = ids[j - 1];
                j--;
            }
            best[j] = s;
            ids[j] = i;
        }
    }
    free(best);
    return truth;
}

/* ---- huge pages ------------------------------------------------------------------------- */

/* An address range to look up in /proc/self/smaps (an index's vectors, links or codes). */
struct bench_region {
    const char *name;
    const void *addr;
    size_t bytes;
};

/* What the kernel gave a range: resident bytes and, of those, bytes in huge pages. */
struct bench_huge {
    uint64_t rss, huge;
    bool shared; /* the range shares a mapping with another: its share is pro rata */
};

/*
 * Fills out[i] for each of the n ranges from /proc/self/smaps: Rss and AnonHugePages of the
 * mappings that overlap it (a mapping that holds more than the range, e.g. two arrays merged
 * into one mapping by the kernel, counts by the share of its size that overlaps). Returns 0,
 * or -1 when smaps cannot be read (out[] is then all zero).
 */
static inline int bench_huge_pages(const struct bench_region *r, size_t n, struct bench_huge *out)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    uint64_t lo = 0, hi = 0, rss = 0;
    bool in_vma = false;

    memset(out, 0, n * sizeof *out);
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        uint64_t a, b, kb;
        char c;
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %c", &a, &b, &c) == 3) {
            lo = a;
            hi = b;
            rss = 0;
            in_vma = true;
        } else if (in_vma && sscanf(line, "Rss: %" SCNu64 " kB", &kb) == 1) {
            rss = kb * 1024;
        } else if (in_vma && sscanf(line, "AnonHugePages: %" SCNu64 " kB", &kb) == 1) {
            /* AnonHugePages comes after Rss: the mapping is complete enough to count. */
            for (size_t i = 0; i < n; i++) {
                uint64_t s = (uint64_t)(uintptr_t)r[i].addr, e = s + r[i].bytes;
                uint64_t os = s > lo ? s : lo, oe = e < hi ? e : hi;
                if (r[i].addr == NULL || oe <= os)
                    continue;
                double share = (double)(oe - os) / (double)(hi - lo);
                out[i].rss += (uint64_t)((double)rss * share);
                out[i].huge += (uint64_t)((double)kb * 1024 * share);
                if (oe - os != hi - lo)
                    out[i].shared = true;
            }
            in_vma = false;
        }
    }
    fclose(f);
    return 0;
}

/*
 * Writes one line like "huge pages: 99.1% of 236.0 MiB resident (vectors 183.8/183.8 MiB,
 * level0 7.6/7.6, codes 45.9/46.0)" into buf. A '~' marks a pro rata share.
 */
static inline void bench_huge_format(char *buf, size_t len, const struct bench_region *r,
                                     const struct bench_huge *h, size_t n)
{
    uint64_t rss = 0, huge = 0;
    size_t off;
    for (size_t i = 0; i < n; i++) {
        rss += h[i].rss;
        huge += h[i].huge;
    }
    off = (size_t)snprintf(buf, len, "huge pages: %.1f%% of %.1f MiB resident (",
                           rss ? 100.0 * (double)huge / (double)rss : 0.0, (double)rss / 1048576.0);
    for (size_t i = 0, shown = 0; i < n && off < len; i++) {
        if (r[i].addr == NULL || r[i].bytes == 0)
            continue;
        off += (size_t)snprintf(buf + off, len - off, "%s%s %s%.1f/%.1f MiB", shown++ ? ", " : "",
                                r[i].name, h[i].shared ? "~" : "", (double)h[i].huge / 1048576.0,
                                (double)h[i].rss / 1048576.0);
    }
    if (off < len)
        snprintf(buf + off, len - off, ")");
}

/* ---- CPU time ---------------------------------------------------------------------------- */

/* CPU seconds used by the calling thread and its involuntary context switches so far. */
static inline double bench_thread_cpu(long *nivcsw)
{
    struct timespec ts;
    struct rusage ru;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    if (nivcsw != NULL)
        *nivcsw = getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nivcsw : 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- taking turns ------------------------------------------------------------------------ */

/*
 * Benchmarks of several programs that take turns on a shared machine (bench/peers/run
 * --interleave): each program builds its index and runs each timed search pass only in its
 * turn, so every system meets the same noise, spread over the whole run, instead of one
 * system getting a quiet minute and the next a busy one. The turn is a counter in a file
 * (8 zero bytes, made by the driver) that every program maps: program `id` of `n` runs when
 * counter % n == id and adds 1 when done. Every program must take the same number of turns.
 */
struct bench_turn {
    uint64_t *ctr; /* NULL: no turn taking */
    unsigned id, n;
};

/* Parses "FILE:ID:N" and maps FILE. Returns 0, or -1 with a message on stderr. */
static inline int bench_turn_open(const char *spec, struct bench_turn *t)
{
    char path[4096];
    unsigned id, n;
    const char *c2 = strrchr(spec, ':');
    const char *c1 = c2 ? memrchr(spec, ':', (size_t)(c2 - spec)) : NULL;
    if (c1 == NULL || (size_t)(c1 - spec) >= sizeof path || sscanf(c1, ":%u:%u", &id, &n) != 2 ||
        n == 0 || id >= n) {
        fprintf(stderr, "dvec-bench: --turn wants FILE:ID:N with ID < N, not '%s'\n", spec);
        return -1;
    }
    memcpy(path, spec, (size_t)(c1 - spec));
    path[c1 - spec] = 0;
    int fd = open(path, O_RDWR);
    void *m = fd < 0 ? MAP_FAILED : mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0)
        close(fd);
    if (m == MAP_FAILED) {
        fprintf(stderr, "dvec-bench: --turn %s: %s\n", path, strerror(errno));
        return -1;
    }
    t->ctr = m;
    t->id = id;
    t->n = n;
    return 0;
}

/* Waits (sleeping, not spinning) for this program's turn. */
static inline void bench_turn_wait(const struct bench_turn *t)
{
    struct timespec ts = {0, 200000};
    while (t->ctr != NULL && __atomic_load_n(t->ctr, __ATOMIC_ACQUIRE) % t->n != t->id)
        nanosleep(&ts, NULL);
}

/* Ends this program's turn. */
static inline void bench_turn_done(const struct bench_turn *t)
{
    if (t->ctr != NULL)
        __atomic_fetch_add(t->ctr, 1, __ATOMIC_ACQ_REL);
}

#endif
