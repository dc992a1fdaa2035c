/* bench_part.c - `dvec-bench storage`: durable ingest, reopen time, filtered search. */
#include "bench_part.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "bench_util.h"
#include "err.h"
#include "mpk.h"
#include "part.h"

/* Payload of point i: {"s1": "yes" when i%100==0, "s10": i%10==0, "s50": i%2==0, "g": i%100}. */
static void payload(uint64_t i, struct buf *b)
{
    buf_reset(b);
    mpw_map(b, 4);
    mpw_str(b, "s1", 2);
    mpw_str(b, i % 100 == 0 ? "yes" : "no", i % 100 == 0 ? 3 : 2);
    mpw_str(b, "s10", 3);
    mpw_str(b, i % 10 == 0 ? "yes" : "no", i % 10 == 0 ? 3 : 2);
    mpw_str(b, "s50", 3);
    mpw_str(b, i % 2 == 0 ? "yes" : "no", i % 2 == 0 ? 3 : 2);
    mpw_str(b, "g", 1);
    mpw_u64(b, i % 100);
}

/* All n vectors, generated once (by two threads) and shared by ingest and the oracle. */
static float *g_data;
static uint64_t g_n;

static void rand_vec(uint64_t i, uint32_t dim, float *out)
{
    if (i < g_n)
        memcpy(out, g_data + i * dim, dim * sizeof(float));
    else
        bench_gen_vec(i, dim, out);
}

struct gen_job {
    uint64_t from, to;
    uint32_t dim;
};

static void *gen_main(void *arg)
{
    struct gen_job *j = arg;
    for (uint64_t i = j->from; i < j->to; i++)
        bench_gen_vec(i, j->dim, g_data + i * j->dim);
    return NULL;
}

static int gen_all(uint64_t n, uint32_t dim)
{
    g_data = malloc(n * dim * sizeof(float));
    if (g_data == NULL)
        return 1;
    struct gen_job a = {0, n / 2, dim}, b = {n / 2, n, dim};
    pthread_t t;
    pthread_create(&t, NULL, gen_main, &b);
    gen_main(&a);
    pthread_join(t, NULL);
    g_n = n;
    return 0;
}

struct opts {
    const char *dir;
    uint64_t n;
    uint32_t dim, writers, batch, queries, k, ef;
    enum wal_sync sync;
    bool json, keep, ingest_only;
    uint64_t reopen_n;
};

struct ingest {
    struct part *p;
    const struct opts *o;
    uint64_t next; /* atomic: next batch start */
    int rc;
    double *lat;
    size_t nlat;
    pthread_mutex_t mu;
};

static void *ingest_main(void *arg)
{
    struct ingest *in = arg;
    const struct opts *o = in->o;
    char err[DV_ERRMSG_SIZE];
    float *v = malloc((size_t)o->batch * o->dim * sizeof(float));
    struct part_point *pts = calloc(o->batch, sizeof *pts);
    struct buf *pl = calloc(o->batch, sizeof *pl);
    for (;;) {
        uint64_t first = __atomic_fetch_add(&in->next, o->batch, __ATOMIC_RELAXED);
        if (first >= o->n)
            break;
        uint32_t cnt = (uint32_t)(o->n - first < o->batch ? o->n - first : o->batch);
        for (uint32_t i = 0; i < cnt; i++) {
            rand_vec(first + i, o->dim, v + (size_t)i * o->dim);
            payload(first + i, &pl[i]);
            pts[i].id = pid_num(first + i);
            pts[i].vec = v + (size_t)i * o->dim;
            pts[i].dim = o->dim;
            pts[i].payload = pl[i].data;
            pts[i].payload_len = pl[i].len;
        }
        double t0 = bench_now();
        int rc = part_upsert(in->p, pts, cnt, NULL, err);
        double t1 = bench_now();
        if (rc != DV_OK) {
            fprintf(stderr, "dvec-bench storage: upsert: %s\n", err);
            in->rc = rc;
            break;
        }
        pthread_mutex_lock(&in->mu);
        in->lat[in->nlat++] = t1 - t0;
        pthread_mutex_unlock(&in->mu);
    }
    for (uint32_t i = 0; i < o->batch; i++)
        buf_free(&pl[i]);
    free(pl);
    free(pts);
    free(v);
    return NULL;
}

static void rmtree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "dvec-bench storage: could not remove %s\n", dir);
}

static void base_opts(const struct opts *o, struct part_opts *po)
{
    part_opts_default(po);
    po->index.dim = o->dim;
    po->index.m = 16;
    po->index.ef_construction = 100;
    po->wal.sync = o->sync;
    po->ckpt_wal_bytes = 1ull << 40; /* the benchmark checkpoints explicitly */
    po->ckpt_interval_ms = UINT32_MAX;
}

/* Durable ingest: writers x batch upserts into a fresh replica. */
static int run_ingest(const struct opts *o, const char *dir, struct part **keep)
{
    char err[DV_ERRMSG_SIZE];
    struct part_opts po;
    struct part *p;
    base_opts(o, &po);
    rmtree(dir);
    if (part_create(io_posix(), dir, &po, &p, err) != DV_OK) {
        fprintf(stderr, "dvec-bench storage: %s\n", err);
        return 1;
    }
    struct ingest in = {p, o, 0, DV_OK, NULL, 0, PTHREAD_MUTEX_INITIALIZER};
    in.lat = malloc((o->n / o->batch + 2) * sizeof(double));
    pthread_t t[64];
    double t0 = bench_now();
    for (uint32_t i = 0; i < o->writers; i++)
        pthread_create(&t[i], NULL, ingest_main, &in);
    for (uint32_t i = 0; i < o->writers; i++)
        pthread_join(t[i], NULL);
    double secs = bench_now() - t0;
    qsort(in.lat, in.nlat, sizeof(double), bench_cmp_double);
    double p50 = in.nlat ? in.lat[in.nlat / 2] : 0, p99 = in.nlat ? in.lat[in.nlat * 99 / 100] : 0;
    const char *sync = o->sync == WAL_SYNC_ALWAYS     ? "always"
                       : o->sync == WAL_SYNC_INTERVAL ? "interval"
                                                      : "never";
    if (o->json)
        printf("{\"bench\":\"ingest\",\"n\":%llu,\"dim\":%u,\"writers\":%u,\"batch\":%u,"
               "\"sync\":\"%s\",\"vectors_per_s\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n",
               (unsigned long long)o->n, o->dim, o->writers, o->batch, sync, (double)o->n / secs,
               p50 * 1e3, p99 * 1e3);
    else
        printf("ingest (WAL + index)  n %llu  dim %u  writers %u  batch %u  sync %s\n"
               "  %.0f vectors/s   %.1f s   batch latency p50 %.1f ms  p99 %.1f ms\n",
               (unsigned long long)o->n, o->dim, o->writers, o->batch, sync, (double)o->n / secs,
               secs, p50 * 1e3, p99 * 1e3);
    /* The same vectors into a bare index (no WAL, no ids, no payloads), same threads per batch:
     * what "limited only by index insert speed" is measured against. */
    if (in.rc == DV_OK) {
        struct hnsw_index *ix;
        uint32_t *slots = malloc((size_t)o->batch * sizeof *slots);
        float *v = malloc((size_t)o->batch * o->dim * sizeof(float));
        if (hnsw_create(&po.index, &ix) == DV_OK && slots && v) {
            double i0 = bench_now();
            for (uint64_t f = 0; f < o->n; f += o->batch) {
                uint32_t cnt = (uint32_t)(o->n - f < o->batch ? o->n - f : o->batch);
                for (uint32_t i = 0; i < cnt; i++)
                    rand_vec(f + i, o->dim, v + (size_t)i * o->dim);
                hnsw_insert_batch(ix, v, cnt, po.insert_threads, slots);
            }
            double isecs = bench_now() - i0;
            if (o->json)
                printf("{\"bench\":\"index_only\",\"n\":%llu,\"vectors_per_s\":%.0f,"
                       "\"replica_over_index\":%.3f}\n",
                       (unsigned long long)o->n, (double)o->n / isecs, isecs / secs);
            else
                printf("  bare index, same batches and threads: %.0f vectors/s -> replica at "
                       "%.2fx of the index\n",
                       (double)o->n / isecs, isecs / secs);
            hnsw_destroy(ix);
        }
        free(slots);
        free(v);
    }
    free(in.lat);
    if (in.rc != DV_OK) {
        part_close(p);
        return 1;
    }
    *keep = p;
    return 0;
}

/* Checkpoint, close, reopen: how long a restart takes. */
static int run_reopen(const struct opts *o, const char *dir, struct part *p)
{
    char err[DV_ERRMSG_SIZE];
    struct part_opts po;
    struct part_info in;
    base_opts(o, &po);
    double t0 = bench_now();
    if (part_checkpoint(p, err) != DV_OK) {
        fprintf(stderr, "dvec-bench storage: checkpoint: %s\n", err);
        return 1;
    }
    double ck = bench_now() - t0;
    part_get_info(p, &in);
    uint64_t stall = in.ckpt_stall_ms;
    part_close(p);
    t0 = bench_now();
    if (part_open(io_posix(), dir, &po, &p, err) != DV_OK) {
        fprintf(stderr, "dvec-bench storage: reopen: %s\n", err);
        return 1;
    }
    double ro = bench_now() - t0;
    part_get_info(p, &in);
    if (o->json)
        printf("{\"bench\":\"reopen\",\"points\":%llu,\"dim\":%u,\"checkpoint_s\":%.3f,"
               "\"writes_paused_ms\":%llu,\"reopen_s\":%.3f}\n",
               (unsigned long long)in.points, o->dim, ck, (unsigned long long)stall, ro);
    else
        printf("checkpoint of %llu points: %.2f s (writes paused %llu ms); reopen: %.3f s "
               "(no index rebuild)\n",
               (unsigned long long)in.points, ck, (unsigned long long)stall, ro);
    part_close(p);
    return 0;
}

/* Filtered search at 1/10/50% selectivity: QPS and recall against brute force. */
static int run_filtered(const struct opts *o, struct part *p)
{
    char err[DV_ERRMSG_SIZE];
    const char *keys[] = {"s1", "s10", "s50", NULL};
    const uint64_t mod[] = {100, 10, 2, 1};
    float *q = malloc(o->dim * sizeof(float)), *v = malloc(o->dim * sizeof(float));
    uint64_t *truth = malloc(o->k * sizeof *truth);
    double *bd = malloc(o->k * sizeof *bd);
    if (!o->json)
        printf("filtered search  n %llu  k %u  ef %u  queries %u\n"
               "  %-11s %-8s %-10s %10s %8s\n",
               (unsigned long long)o->n, o->k, o->ef, o->queries, "selectivity", "index", "plan",
               "QPS", "recall");
    for (int withidx = 0; withidx <= 1; withidx++) {
        if (withidx)
            for (int s = 0; s < 3; s++)
                part_create_index(p, keys[s], PINDEX_KEYWORD, NULL, err);
        for (int s = 0; s < 4; s++) {
            struct filter *f = NULL;
            if (keys[s] == NULL && withidx)
                continue;
            if (keys[s] != NULL) {
                struct buf fb = BUF_INIT;
                mpw_map(&fb, 1);
                mpw_str(&fb, "must", 4);
                mpw_array(&fb, 1);
                mpw_map(&fb, 2);
                mpw_str(&fb, "key", 3);
                mpw_str(&fb, keys[s], strlen(keys[s]));
                mpw_str(&fb, "match", 5);
                mpw_map(&fb, 1);
                mpw_str(&fb, "value", 5);
                mpw_str(&fb, "yes", 3);
                int frc = filter_compile(fb.data, fb.len, &f, err);
                buf_free(&fb);
                if (frc != DV_OK) {
                    fprintf(stderr, "dvec-bench storage: filter: %s\n", err);
                    return 1;
                }
            }
            double hit = 0, tot = 0, secs = 0;
            enum part_plan plan = PART_PLAN_WALK;
            for (uint32_t qi = 0; qi < o->queries; qi++) {
                rand_vec(1000000000ull + qi, o->dim, q);
                size_t nb = 0;
                for (uint64_t i = 0; i < o->n; i += mod[s]) {
                    memcpy(v, g_data + i * o->dim, o->dim * sizeof(float));
                    double d = 0;
                    for (uint32_t j = 0; j < o->dim; j++)
                        d += (double)(q[j] - v[j]) * (q[j] - v[j]);
                    size_t j = nb < o->k ? nb++ : o->k;
                    if (j == o->k && d >= bd[o->k - 1])
                        continue;
                    if (j == o->k)
                        j = o->k - 1;
                    while (j > 0 && bd[j - 1] > d) {
                        bd[j] = bd[j - 1];
                        truth[j] = truth[j - 1];
                        j--;
                    }
                    bd[j] = d;
                    truth[j] = i;
                }
                struct part_query pq = {
                    .vec = q, .k = o->k, .ef = o->ef, .filter = f, .quant = HNSW_QUANT_OFF};
                struct part_result r;
                double t0 = bench_now();
                if (part_search(p, &pq, &r, &plan, err) != DV_OK) {
                    fprintf(stderr, "dvec-bench storage: search: %s\n", err);
                    return 1;
                }
                secs += bench_now() - t0;
                for (size_t i = 0; i < r.n; i++)
                    for (size_t j = 0; j < nb; j++)
                        hit += r.hits[i].id.lo == truth[j];
                tot += (double)nb;
                part_result_free(&r);
            }
            if (f != NULL)
                filter_free(f);
            const char *pn[] = {"walk", "indexed", "scan", "walk+scan"};
            double qps = (double)o->queries / secs, rec = tot > 0 ? hit / tot : 1;
            if (o->json)
                printf("{\"bench\":\"filtered\",\"selectivity\":%.2f,\"index\":%s,\"plan\":\"%s\","
                       "\"qps\":%.0f,\"recall\":%.4f}\n",
                       1.0 / (double)mod[s], withidx ? "true" : "false", pn[plan], qps, rec);
            else if (keys[s] == NULL)
                printf("  %-11s %-8s %-10s %10.0f %8.4f\n", "100% (none)", "-", pn[plan], qps, rec);
            else
                printf("  %-11s %-8s %-10s %10.0f %8.4f\n",
                       s == 0   ? "1%"
                       : s == 1 ? "10%"
                                : "50%",
                       withidx ? "keyword" : "none", pn[plan], qps, rec);
        }
    }
    free(q);
    free(v);
    free(truth);
    free(bd);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dvec-bench storage [--dir D] [--n N] [--dim D] [--writers W] [--batch B]\n"
               "         [--sync always|interval|never] [--queries Q] [--k K] [--ef EF]\n"
               "         [--ingest-only] [--keep] [--json]\n"
               "  Durable ingest into a replica (WAL + index), checkpoint and reopen time, and\n"
               "  filtered search QPS/recall at 1%%, 10%%, 50%% selectivity vs brute force.\n"
               "  Default --dir /var/tmp/dvec-bench-storage (a real disk), removed at the end.\n");
}

int bench_part_main(int argc, char **argv)
{
    struct opts o = {"/var/tmp/dvec-bench-storage",
                     200000,
                     128,
                     4,
                     256,
                     200,
                     10,
                     128,
                     WAL_SYNC_ALWAYS,
                     false,
                     false,
                     false,
                     0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--keep") == 0) {
            o.keep = true;
        } else if (strcmp(a, "--ingest-only") == 0) {
            o.ingest_only = true;
        } else if (v == NULL) {
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--dir") == 0) {
            o.dir = v, i++;
        } else if (strcmp(a, "--n") == 0) {
            o.n = strtoull(v, NULL, 10), i++;
        } else if (strcmp(a, "--dim") == 0) {
            o.dim = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--writers") == 0) {
            o.writers = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--batch") == 0) {
            o.batch = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--queries") == 0) {
            o.queries = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--k") == 0) {
            o.k = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--ef") == 0) {
            o.ef = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--sync") == 0) {
            o.sync = strcmp(v, "always") == 0     ? WAL_SYNC_ALWAYS
                     : strcmp(v, "interval") == 0 ? WAL_SYNC_INTERVAL
                                                  : WAL_SYNC_NEVER;
            i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.n == 0 || o.dim == 0 || o.writers == 0 || o.writers > 64 || o.batch == 0 || o.k == 0) {
        usage(stderr);
        return 2;
    }
    struct part *p = NULL;
    if (gen_all(o.n, o.dim) != 0) {
        fprintf(stderr, "dvec-bench storage: out of memory for %llu vectors\n",
                (unsigned long long)o.n);
        return 1;
    }
    int rc = run_ingest(&o, o.dir, &p);
    if (rc == 0 && !o.ingest_only)
        rc = run_filtered(&o, p);
    if (rc == 0 && !o.ingest_only) {
        rc = run_reopen(&o, o.dir, p);
        p = NULL;
    }
    if (p != NULL)
        part_close(p);
    if (!o.keep)
        rmtree(o.dir);
    free(g_data);
    return rc;
}
