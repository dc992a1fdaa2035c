/* bench_filters.c - `dvec-bench filters`: filtered search with each payload index kind
 * (integer, float, bool, keyword, datetime, geo, text, uuid) at 1%, 10% and 50% selectivity:
 * the planner's choice, QPS and recall@k against brute force over the matching points, with
 * the index and without it (the same filter checked on each candidate's payload). */
#include "bench_filters.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "dist.h"
#include "err.h"
#include "filter.h"
#include "io.h"
#include "jsonmp.h"
#include "part.h"
#include "pindex.h"

struct fopts {
    const char *dir;
    uint64_t n;
    uint32_t dim, queries, k, ef;
    bool json;
};

/* One index kind: its key and the filters (JSON) of 1%, 10% and 50% of the points. */
struct kind {
    const char *name, *key;
    enum pindex_kind kind;
    const char *value; /* a printf format of value i of 100 (match any of the first 1/10/50),
                          or NULL: the filters are given */
    const char *filter[3];
};

/* The payload of point i: every field the filters look at, seeded by i. Values are uniform,
 * so the filters' selectivities are 1%, 10% and 50% up to sampling noise. */
static void payload_of(uint64_t i, char *out, size_t cap)
{
    uint64_t h = i ^ 0x5bd1e9955bd1e995ull, s = bench_rng(&h); /* a stream of its own */
    uint64_t r[8];
    for (int j = 0; j < 8; j++)
        r[j] = bench_rng(&s);
    double u[8];
    for (int j = 0; j < 8; j++)
        u[j] = (double)(r[j] >> 11) / 9007199254740992.0;
    long secs = (long)(u[3] * 1000 * 86400); /* within 1000 days of 2020-01-01 */
    long day = secs / 86400, rem = secs % 86400;
    /* days to a date, from 2020-01-01 (2020 a leap year): civil-from-days */
    long z = day + 18262 + 719468, era = z / 146097, doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    long y = yoe + era * 400 + (m <= 2);
    snprintf(out, cap,
             "{\"i\":%d,\"f\":%.6f,\"b1\":%s,\"b10\":%s,\"b50\":%s,\"kw\":\"k%02d\","
             "\"dt\":\"%04ld-%02ld-%02ldT%02ld:%02ld:%02ldZ\","
             "\"geo\":{\"lon\":%.5f,\"lat\":%.5f},\"txt\":\"%s%s%s filler words here\","
             "\"uid\":\"00000000-0000-4000-8000-%012d\"}",
             (int)(r[0] % 1000), u[1], u[2] < 0.01 ? "true" : "false",
             u[2] < 0.10 ? "true" : "false", u[2] < 0.50 ? "true" : "false", (int)(r[4] % 100), y,
             m, d, rem / 3600, rem / 60 % 60, rem % 60, u[5] * 100.0, u[6] * 50.0,
             u[7] < 0.01 ? "alpha " : "", u[7] < 0.10 ? "beta " : "", u[7] < 0.50 ? "gamma" : "",
             (int)(r[6] % 100));
}

/* {"must": [{"key": key, "match": {"any": [the first n values of fmt]}}]} into out. */
static void any_filter(const char *key, const char *fmt, int n, char *out, size_t cap)
{
    size_t at = (size_t)snprintf(out, cap, "{\"must\":[{\"key\":\"%s\",\"match\":{\"any\":[", key);
    for (int i = 0; i < n && at < cap; i++) {
        if (i)
            at += (size_t)snprintf(out + at, cap - at, ",");
        if (at < cap)
            at += (size_t)snprintf(out + at, cap - at, fmt, i);
    }
    if (at < cap)
        snprintf(out + at, cap - at, "]}}]}");
}

static const struct kind kinds[] = {
    {"integer",
     "i",
     PINDEX_INTEGER,
     NULL,
     {"{\"must\":[{\"key\":\"i\",\"range\":{\"lt\":10}}]}",
      "{\"must\":[{\"key\":\"i\",\"range\":{\"lt\":100}}]}",
      "{\"must\":[{\"key\":\"i\",\"range\":{\"lt\":500}}]}"}},
    {"float",
     "f",
     PINDEX_FLOAT,
     NULL,
     {"{\"must\":[{\"key\":\"f\",\"range\":{\"lt\":0.01}}]}",
      "{\"must\":[{\"key\":\"f\",\"range\":{\"lt\":0.1}}]}",
      "{\"must\":[{\"key\":\"f\",\"range\":{\"lt\":0.5}}]}"}},
    {"bool",
     "b",
     PINDEX_BOOL,
     NULL,
     {"{\"must\":[{\"key\":\"b1\",\"match\":{\"value\":true}}]}",
      "{\"must\":[{\"key\":\"b10\",\"match\":{\"value\":true}}]}",
      "{\"must\":[{\"key\":\"b50\",\"match\":{\"value\":true}}]}"}},
    {"keyword", "kw", PINDEX_KEYWORD, "\"k%02d\"", {NULL, NULL, NULL}},
    {"datetime",
     "dt",
     PINDEX_DATETIME,
     NULL,
     {"{\"must\":[{\"key\":\"dt\",\"range\":{\"lt\":\"2020-01-11T00:00:00Z\"}}]}",
      "{\"must\":[{\"key\":\"dt\",\"range\":{\"lt\":\"2020-04-10T00:00:00Z\"}}]}",
      "{\"must\":[{\"key\":\"dt\",\"range\":{\"lt\":\"2021-05-15T00:00:00Z\"}}]}"}},
    {"geo",
     "geo",
     PINDEX_GEO,
     NULL,
     {"{\"must\":[{\"key\":\"geo\",\"geo_bounding_box\":{\"top_left\":{\"lon\":0,\"lat\":50},"
      "\"bottom_right\":{\"lon\":1,\"lat\":0}}}]}",
      "{\"must\":[{\"key\":\"geo\",\"geo_bounding_box\":{\"top_left\":{\"lon\":0,\"lat\":50},"
      "\"bottom_right\":{\"lon\":10,\"lat\":0}}}]}",
      "{\"must\":[{\"key\":\"geo\",\"geo_bounding_box\":{\"top_left\":{\"lon\":0,\"lat\":50},"
      "\"bottom_right\":{\"lon\":50,\"lat\":0}}}]}"}},
    {"text",
     "txt",
     PINDEX_TEXT,
     NULL,
     {"{\"must\":[{\"key\":\"txt\",\"match\":{\"text\":\"alpha\"}}]}",
      "{\"must\":[{\"key\":\"txt\",\"match\":{\"text\":\"beta\"}}]}",
      "{\"must\":[{\"key\":\"txt\",\"match\":{\"text\":\"gamma\"}}]}"}},
    {"uuid", "uid", PINDEX_UUID, "\"00000000-0000-4000-8000-%012d\"", {NULL, NULL, NULL}},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: dvec-bench filters [--dir D] [--n N] [--dim D] [--queries Q] [--k K]\n"
               "         [--ef EF] [--json]\n"
               "  Filtered search with each payload index kind at 1%%, 10%%, 50%% selectivity:\n"
               "  plan, QPS and recall@k against brute force, without and with the index.\n");
}

static struct filter *compile(const char *json, char *err)
{
    struct buf mp = BUF_INIT;
    struct filter *f = NULL;
    if (jsonmp_from_text(json, strlen(json), &mp, err) != DV_OK ||
        filter_compile(mp.data, mp.len, &f, err) != DV_OK)
        f = NULL;
    buf_free(&mp);
    return f;
}

int bench_filters_main(int argc, char **argv)
{
    struct fopts o = {"/tmp/dvec-bench-filters", 50000, 64, 100, 10, 64, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o.json = true;
            continue;
        }
        if (v == NULL) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--dir") == 0)
            o.dir = v;
        else if (strcmp(a, "--n") == 0)
            o.n = strtoull(v, NULL, 10);
        else if (strcmp(a, "--dim") == 0)
            o.dim = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--queries") == 0)
            o.queries = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--k") == 0)
            o.k = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--ef") == 0)
            o.ef = (uint32_t)strtoul(v, NULL, 10);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (o.n == 0 || o.dim == 0 || o.queries == 0 || o.k == 0) {
        usage(stderr);
        return 2;
    }
    char err[DV_ERRMSG_SIZE], cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", o.dir);
    if (system(cmd) != 0)
        return 1;
    struct part_opts po;
    part_opts_default(&po);
    hnsw_params_default(&po.index);
    po.index.dim = o.dim;
    po.index.metric = HNSW_L2;
    po.wal.sync = WAL_SYNC_NEVER;
    po.background = false;
    struct part *p;
    if (part_create(io_posix(), o.dir, &po, &p, err) != DV_OK) {
        fprintf(stderr, "dvec-bench filters: %s\n", err);
        return 1;
    }
    /* ingest: vectors and payloads, kept for the oracle */
    float *data = malloc(o.n * o.dim * sizeof *data);
    struct buf *pl = calloc(o.n, sizeof *pl);
    struct part_point *pts = calloc(1000, sizeof *pts);
    char text[1024];
    double t0 = bench_now();
    for (uint64_t b = 0; b < o.n; b += 1000) {
        size_t m = o.n - b < 1000 ? (size_t)(o.n - b) : 1000;
        for (size_t j = 0; j < m; j++) {
            uint64_t i = b + j;
            bench_gen_vec(i, o.dim, data + i * o.dim);
            payload_of(i, text, sizeof text);
            if (jsonmp_from_text(text, strlen(text), &pl[i], err) != DV_OK) {
                fprintf(stderr, "dvec-bench filters: payload: %s\n", err);
                return 1;
            }
            pts[j] = (struct part_point){.id = pid_num(i),
                                         .vec = data + i * o.dim,
                                         .dim = o.dim,
                                         .payload = pl[i].data,
                                         .payload_len = pl[i].len};
        }
        if (part_upsert(p, pts, m, NULL, err) != DV_OK) {
            fprintf(stderr, "dvec-bench filters: upsert: %s\n", err);
            return 1;
        }
    }
    double ingest = bench_now() - t0;
    if (!o.json)
        printf("filtered search per index kind  n %" PRIu64 "  dim %u  k %u  ef %u  queries %u"
               "  (ingest %.1f s)\n"
               "| index | selectivity | matching | no index: plan | QPS | recall | index: plan "
               "| QPS | recall |\n| --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: |\n",
               o.n, o.dim, o.k, o.ef, o.queries, ingest);
    const struct dist_ops *d = dist_get();
    float *q = malloc((size_t)o.queries * o.dim * sizeof *q);
    for (uint32_t qi = 0; qi < o.queries; qi++)
        bench_gen_vec(1000000000ull + qi, o.dim, q + (size_t)qi * o.dim);
    uint64_t *truth = malloc((size_t)o.queries * o.k * sizeof *truth);
    uint32_t *nt = malloc(o.queries * sizeof *nt);
    float *best = malloc(o.k * sizeof *best);
    uint64_t *match = malloc(o.n * sizeof *match);
    const char *pn[] = {"walk", "indexed", "scan", "walk+scan"};
    for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
        const struct kind *kd = &kinds[ki];
        for (int s = 0; s < 3; s++) {
            char built[4096];
            const char *fj = kd->filter[s];
            if (kd->value != NULL) {
                any_filter(kd->key, kd->value, s == 0 ? 1 : s == 1 ? 10 : 50, built, sizeof built);
                fj = built;
            }
            struct filter *f = compile(fj, err);
            if (f == NULL) {
                fprintf(stderr, "dvec-bench filters: %s: %s\n", kd->name, err);
                return 1;
            }
            /* the oracle: exact top-k among the matching points */
            size_t nm = 0;
            for (uint64_t i = 0; i < o.n; i++) {
                struct pid id = pid_num(i);
                if (filter_match(f, &id, pl[i].data, pl[i].len))
                    match[nm++] = i;
            }
            for (uint32_t qi = 0; qi < o.queries; qi++) {
                uint64_t *ids = truth + (size_t)qi * o.k;
                uint32_t have = 0;
                for (size_t mi = 0; mi < nm; mi++) {
                    uint64_t i = match[mi];
                    float dd = d->l2sq(q + (size_t)qi * o.dim, data + i * o.dim, o.dim);
                    if (have == o.k && dd >= best[have - 1])
                        continue;
                    uint32_t j = have < o.k ? have++ : have - 1;
                    while (j > 0 && best[j - 1] > dd) {
                        best[j] = best[j - 1];
                        ids[j] = ids[j - 1];
                        j--;
                    }
                    best[j] = dd;
                    ids[j] = i;
                }
                nt[qi] = have;
            }
            double qps[2], rec[2];
            enum part_plan plan[2] = {PART_PLAN_WALK, PART_PLAN_WALK};
            for (int withidx = 0; withidx < 2; withidx++) {
                const char *keys[3] = {kd->key, NULL, NULL};
                char k1[8], k10[8], k50[8];
                if (kd->kind == PINDEX_BOOL) { /* three bool keys */
                    snprintf(k1, sizeof k1, "b1");
                    snprintf(k10, sizeof k10, "b10");
                    snprintf(k50, sizeof k50, "b50");
                    keys[0] = s == 0 ? k1 : s == 1 ? k10 : k50;
                }
                if (withidx && part_create_index(p, keys[0], kd->kind, NULL, err) != DV_OK) {
                    fprintf(stderr, "dvec-bench filters: index %s: %s\n", kd->name, err);
                    return 1;
                }
                if (part_bind_filter(p, f) != DV_OK) /* text conditions to the text index */
                    return 1;
                double hit = 0, tot = 0, secs = 0;
                for (uint32_t qi = 0; qi < o.queries; qi++) {
                    struct part_query pq = {.vec = q + (size_t)qi * o.dim,
                                            .k = o.k,
                                            .ef = o.ef,
                                            .filter = f,
                                            .quant = HNSW_QUANT_OFF};
                    struct part_result r;
                    double t1 = bench_now();
                    if (part_search(p, &pq, &r, &plan[withidx], err) != DV_OK) {
                        fprintf(stderr, "dvec-bench filters: search: %s\n", err);
                        return 1;
                    }
                    secs += bench_now() - t1;
                    for (size_t i = 0; i < r.n; i++)
                        for (uint32_t j = 0; j < nt[qi]; j++)
                            hit += r.hits[i].id.lo == truth[(size_t)qi * o.k + j];
                    tot += nt[qi];
                    part_result_free(&r);
                }
                qps[withidx] = (double)o.queries / secs;
                rec[withidx] = tot > 0 ? hit / tot : 1.0;
                if (withidx && part_drop_index(p, keys[0], NULL, err) != DV_OK) {
                    fprintf(stderr, "dvec-bench filters: drop index %s: %s\n", kd->name, err);
                    return 1;
                }
            }
            const char *sel = s == 0 ? "1%" : s == 1 ? "10%" : "50%";
            if (o.json)
                printf("{\"bench\":\"filters\",\"index\":\"%s\",\"selectivity\":\"%s\","
                       "\"matching\":%zu,\"plan_noindex\":\"%s\",\"qps_noindex\":%.0f,"
                       "\"recall_noindex\":%.4f,\"plan_index\":\"%s\",\"qps_index\":%.0f,"
                       "\"recall_index\":%.4f}\n",
                       kd->name, sel, nm, pn[plan[0]], qps[0], rec[0], pn[plan[1]], qps[1], rec[1]);
            else
                printf("| %s | %s | %zu | %s | %.0f | %.4f | %s | %.0f | %.4f |\n", kd->name, sel,
                       nm, pn[plan[0]], qps[0], rec[0], pn[plan[1]], qps[1], rec[1]);
            fflush(stdout);
            filter_free(f);
        }
    }
    part_close(p);
    for (uint64_t i = 0; i < o.n; i++)
        buf_free(&pl[i]);
    free(pl);
    free(pts);
    free(data);
    free(q);
    free(truth);
    free(nt);
    free(best);
    free(match);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", o.dir);
    return system(cmd) == 0 ? 0 : 1;
}
