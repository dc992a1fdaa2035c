/* bench_wal.c - `dvec-bench wal`: writers append vector batches and wait for durability. */
#include "bench_wal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "io.h"
#include "wal.h"

struct bw_args {
    const char *dir;
    unsigned writers;
    uint32_t batch, dim;
    double seconds;
    enum wal_sync sync;
    bool json;
};

struct bw_writer {
    pthread_t tid;
    struct wal *w;
    const struct bw_args *a;
    uint64_t seed;
    double deadline;
    uint64_t records;
    double *lat; /* seconds per append+sync */
    size_t nlat, caplat;
    int rc;
    char err[DV_ERRMSG_SIZE];
};

static double bw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t bw_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One writer: records of `batch` (id u64, dim float32) rows, each appended then synced. */
static void *bw_writer_main(void *arg)
{
    struct bw_writer *wr = arg;
    const struct bw_args *a = wr->a;
    size_t row = 8 + (size_t)a->dim * 4, len = row * a->batch;
    /* Random vectors, generated once; each record starts at another offset of the pool. */
    size_t pool_n = len * 2;
    uint8_t *pool = malloc(pool_n), *rec = malloc(len);
    if (pool == NULL || rec == NULL) {
        wr->rc = DV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i + 4 <= pool_n; i += 4) {
        float f = (float)(bw_rand(&wr->seed) >> 40) / (float)(1 << 24) - 0.5f;
        memcpy(pool + i, &f, 4);
    }
    uint64_t id = wr->seed << 32;
    while (bw_now() < wr->deadline) {
        size_t shift = (size_t)(bw_rand(&wr->seed) % (len / 4)) * 4;
        memcpy(rec, pool + shift, len);
        for (uint32_t r = 0; r < a->batch; r++, id++)
            memcpy(rec + r * row, &id, 8);
        double t0 = bw_now();
        uint64_t lsn;
        wr->rc = wal_append(wr->w, 1, rec, len, &lsn, wr->err);
        if (wr->rc == DV_OK)
            wr->rc = wal_sync(wr->w, lsn, wr->err);
        if (wr->rc != DV_OK)
            break;
        double el = bw_now() - t0;
        if (wr->nlat == wr->caplat) {
            size_t ncap = wr->caplat ? wr->caplat * 2 : 4096;
            double *nl = realloc(wr->lat, ncap * sizeof *nl);
            if (nl == NULL) {
                wr->rc = DV_ENOMEM;
                break;
            }
            wr->lat = nl;
            wr->caplat = ncap;
        }
        wr->lat[wr->nlat++] = el;
        wr->records++;
    }
out:
    free(pool);
    free(rec);
    return NULL;
}

static int bw_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void bw_usage(FILE *f)
{
    fprintf(f, "usage: dvec-bench wal [--dir D] [--writers 4] [--batch 256] [--dim 128]\n"
               "         [--seconds 5] [--sync always|interval|never] [--json]\n"
               "Each writer appends records of --batch vectors of --dim float32 (plus 8-byte\n"
               "ids) and waits in wal_sync, like durable ingest. The WAL goes to a new\n"
               "temporary directory under D (default /var/tmp, a real disk), removed after.\n");
}

static const char *bw_sync_name(enum wal_sync s)
{
    return s == WAL_SYNC_ALWAYS ? "always" : s == WAL_SYNC_INTERVAL ? "interval" : "never";
}

static int bw_parse(int argc, char **argv, struct bw_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--json") == 0) {
            a->json = true;
            continue;
        }
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            bw_usage(stdout);
            return 1;
        }
        if (v == NULL) {
            fprintf(stderr, "dvec-bench wal: %s needs a value\n", o);
            return 2;
        }
        i++;
        if (strcmp(o, "--dir") == 0)
            a->dir = v;
        else if (strcmp(o, "--writers") == 0)
            a->writers = (unsigned)atoi(v);
        else if (strcmp(o, "--batch") == 0)
            a->batch = (uint32_t)atoi(v);
        else if (strcmp(o, "--dim") == 0)
            a->dim = (uint32_t)atoi(v);
        else if (strcmp(o, "--seconds") == 0)
            a->seconds = atof(v);
        else if (strcmp(o, "--sync") == 0) {
            if (strcmp(v, "always") == 0)
                a->sync = WAL_SYNC_ALWAYS;
            else if (strcmp(v, "interval") == 0)
                a->sync = WAL_SYNC_INTERVAL;
            else if (strcmp(v, "never") == 0)
                a->sync = WAL_SYNC_NEVER;
            else {
                fprintf(stderr, "dvec-bench wal: --sync: unknown policy '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "dvec-bench wal: unknown option %s\n", o);
            bw_usage(stderr);
            return 2;
        }
    }
    if (a->writers == 0 || a->writers > 256 || a->batch == 0 || a->dim == 0 || a->seconds <= 0) {
        fprintf(stderr, "dvec-bench wal: --writers (1..256), --batch, --dim and --seconds must "
                        "be positive\n");
        return 2;
    }
    return 0;
}

int bench_wal_main(int argc, char **argv)
{
    struct bw_args a = {"/var/tmp", 4, 256, 128, 5.0, WAL_SYNC_ALWAYS, false};
    int prc = bw_parse(argc, argv, &a);
    if (prc != 0)
        return prc == 1 ? 0 : prc;
    size_t len = (8 + (size_t)a.dim * 4) * a.batch;

    char dir[4096], err[DV_ERRMSG_SIZE];
    if (snprintf(dir, sizeof dir, "%s/dvec-bench-wal-XXXXXX", a.dir) >= (int)sizeof dir ||
        mkdtemp(dir) == NULL) {
        fprintf(stderr, "dvec-bench wal: cannot create a directory under %s\n", a.dir);
        return 1;
    }
    struct wal_opts o;
    wal_opts_default(&o);
    o.sync = a.sync;
    if (len > o.max_record)
        o.max_record = len > WAL_MAX_RECORD_LIMIT ? WAL_MAX_RECORD_LIMIT : (uint32_t)len;
    struct wal *w;
    int rc = wal_open(io_posix(), dir, &o, 1, NULL, NULL, &w, err);
    if (rc != DV_OK) {
        fprintf(stderr, "dvec-bench wal: %s\n", err);
        io_remove_dir(io_posix(), dir);
        return 1;
    }

    struct bw_writer *wr = calloc(a.writers, sizeof *wr);
    double t0 = bw_now();
    unsigned started = 0;
    for (unsigned i = 0; i < a.writers; i++) {
        wr[i].w = w;
        wr[i].a = &a;
        wr[i].seed = 0x9E3779B97F4A7C15ull * (i + 1);
        wr[i].deadline = t0 + a.seconds;
        if (pthread_create(&wr[i].tid, NULL, bw_writer_main, &wr[i]) != 0)
            break;
        started++;
    }
    uint64_t records = 0;
    size_t nlat = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(wr[i].tid, NULL);
        records += wr[i].records;
        nlat += wr[i].nlat;
        if (wr[i].rc != DV_OK) {
            fprintf(stderr, "dvec-bench wal: writer %u: %s\n", i, wr[i].err);
            rc = wr[i].rc;
        }
    }
    double el = bw_now() - t0;
    struct wal_stats st;
    wal_get_stats(w, &st);
    wal_close(w);
    io_remove_dir(io_posix(), dir);

    double *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
    size_t k = 0;
    for (unsigned i = 0; i < started; i++) {
        if (lat != NULL)
            memcpy(lat + k, wr[i].lat, wr[i].nlat * sizeof *lat);
        k += wr[i].nlat;
        free(wr[i].lat);
    }
    free(wr);
    double p50 = 0, p99 = 0;
    if (lat != NULL && nlat > 0) {
        qsort(lat, nlat, sizeof *lat, bw_cmp);
        p50 = lat[nlat / 2] * 1e6;
        p99 = lat[(size_t)((double)nlat * 0.99) < nlat ? (size_t)((double)nlat * 0.99) : nlat - 1] *
              1e6;
    }
    free(lat);
    if (started < a.writers || rc != DV_OK) {
        fprintf(stderr, "dvec-bench wal: failed (%s)\n", dv_strerror(rc));
        return 1;
    }

    double vps = (double)records * a.batch / el, rps = (double)records / el;
    double mbs = (double)st.stored_bytes / el / 1e6;
    if (a.json) {
        printf("{\"writers\":%u,\"batch\":%u,\"dim\":%u,\"sync\":\"%s\",\"seconds\":%.3f,"
               "\"records\":%" PRIu64 ",\"vectors_per_s\":%.0f,\"records_per_s\":%.1f,"
               "\"mb_per_s\":%.2f,\"fdatasyncs\":%" PRIu64 ",\"compressed\":%" PRIu64 ","
               "\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
               a.writers, a.batch, a.dim, bw_sync_name(a.sync), el, records, vps, rps, mbs,
               st.fdatasyncs, st.compressed, p50, p99);
    } else {
        printf("dvec-bench wal: %s, records of %u x %u-dim vectors (%zu bytes), %.1f s\n", a.dir,
               a.batch, a.dim, len, el);
        printf("%7s %6s %8s %12s %10s %8s %10s %10s %10s\n", "writers", "batch", "sync",
               "vectors/s", "records/s", "MB/s", "fdatasync", "p50_us", "p99_us");
        printf("%7u %6u %8s %12.0f %10.1f %8.1f %10" PRIu64 " %10.1f %10.1f\n", a.writers, a.batch,
               bw_sync_name(a.sync), vps, rps, mbs, st.fdatasyncs, p50, p99);
    }
    return 0;
}
