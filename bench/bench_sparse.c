/* bench_sparse.c - `dvec-bench sparse`: sparse vectors (BM25-like, with IDF) and a named dense
 * vector in one replica: ingest, sparse search QPS and its exactness against brute force, and
 * the named dense vector's search next to a plain collection's (the cost of named vectors). */
#include "bench_sparse.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "err.h"
#include "io.h"
#include "part.h"
#include "sparse.h"

struct sopts {
    const char *dir;
    uint64_t n;
    uint32_t vocab, terms, queries, qterms, k, dim;
    bool json;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: dvec-bench sparse [--dir D] [--n N] [--vocab V] [--terms T] [--queries Q]\n"
               "         [--qterms QT] [--k K] [--dim D] [--json]\n"
               "  A replica with a sparse vector (idf) and a dense named vector: sparse search\n"
               "  QPS (exact, checked against brute force), and the named dense vector's\n"
               "  search QPS next to the same vectors in a plain (unnamed) replica.\n"
               "  Documents: T terms drawn from a Zipf(1.1) vocabulary of V; queries: QT.\n");
}

/* A Zipf(1.1) draw over [1, v] by inverse CDF on a precomputed table. */
static uint32_t zipf(const double *cdf, uint32_t v, uint64_t *s)
{
    double u = (double)(bench_rng(s) >> 11) / 9007199254740992.0;
    uint32_t lo = 0, hi = v - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo + 1;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Document i: distinct sorted terms (at most t) and weights (term frequencies 1..3). */
static uint32_t make_doc(const double *cdf, uint32_t v, uint32_t t, uint64_t i, uint32_t *idx,
                         float *val)
{
    uint64_t s = i * 7919 + 17;
    uint32_t n = 0;
    for (uint32_t j = 0; j < t; j++)
        idx[n++] = zipf(cdf, v, &s);
    qsort(idx, n, sizeof *idx, cmp_u32);
    uint32_t m = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (m > 0 && idx[m - 1] == idx[j]) {
            val[m - 1] += 1;
            continue;
        }
        idx[m] = idx[j];
        val[m] = 1;
        m++;
    }
    return m;
}

static double run_searches(struct part *p, const struct part_query *qs, uint32_t nq,
                           struct part_result *keep)
{
    char err[DV_ERRMSG_SIZE];
    double t0 = bench_now();
    for (uint32_t q = 0; q < nq; q++) {
        struct part_result r;
        if (part_search(p, &qs[q], &r, NULL, err) != DV_OK) {
            fprintf(stderr, "search: %s\n", err);
            exit(1);
        }
        if (keep)
            keep[q] = r;
        else
            part_result_free(&r);
    }
    return (double)nq / (bench_now() - t0);
}

int bench_sparse_main(int argc, char **argv)
{
    struct sopts o = {"/var/tmp/dvec-bench-sparse", 100000, 30000, 40, 500, 4, 10, 128, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (v == NULL) {
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--dir") == 0) {
            o.dir = v, i++;
        } else if (strcmp(a, "--n") == 0) {
            o.n = strtoull(v, NULL, 10), i++;
        } else if (strcmp(a, "--vocab") == 0) {
            o.vocab = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--terms") == 0) {
            o.terms = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--queries") == 0) {
            o.queries = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--qterms") == 0) {
            o.qterms = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--k") == 0) {
            o.k = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--dim") == 0) {
            o.dim = (uint32_t)strtoul(v, NULL, 10), i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.n == 0 || o.vocab < 2 || o.terms == 0 || o.qterms == 0 || o.k == 0 || o.dim == 0) {
        usage(stderr);
        return 2;
    }
    char err[DV_ERRMSG_SIZE], d1[4096], d2[4096];
    snprintf(d1, sizeof d1, "%s/named", o.dir);
    snprintf(d2, sizeof d2, "%s/plain", o.dir);
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", o.dir, o.dir);
    if (system(cmd) != 0)
        return 1;
    double *cdf = malloc(o.vocab * sizeof *cdf), sum = 0;
    for (uint32_t t = 0; t < o.vocab; t++)
        sum += pow(t + 1, -1.1);
    for (uint32_t t = 0, acc = 0; t < o.vocab; t++) {
        double c = (t ? cdf[t - 1] : 0) + pow(t + 1, -1.1) / sum;
        cdf[t] = c;
        (void)acc;
    }
    struct part_space sp[2];
    memset(sp, 0, sizeof sp);
    snprintf(sp[0].name, sizeof sp[0].name, "dense");
    sp[0].kind = PART_VEC_DENSE;
    hnsw_params_default(&sp[0].index);
    sp[0].index.dim = o.dim;
    sp[0].index.metric = HNSW_COSINE;
    snprintf(sp[1].name, sizeof sp[1].name, "bm25");
    sp[1].kind = PART_VEC_SPARSE;
    sp[1].idf = true;
    struct part_opts po;
    part_opts_default(&po);
    po.spaces = sp;
    po.n_spaces = 2;
    po.wal.sync = WAL_SYNC_NEVER;
    po.background = false;
    struct part *pn, *pp;
    if (part_create(io_posix(), d1, &po, &pn, err) != DV_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct part_opts pl = po;
    pl.spaces = NULL;
    pl.n_spaces = 0;
    pl.index = sp[0].index;
    if (part_create(io_posix(), d2, &pl, &pp, err) != DV_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    /* Ingest in batches of 1000: both vectors into the named replica, the dense one into the
     * plain one. Documents are kept for the oracle. */
    uint32_t bsz = 1000;
    uint32_t *didx = malloc(o.n * o.terms * sizeof *didx), *dn = malloc(o.n * sizeof *dn);
    float *dval = malloc(o.n * o.terms * sizeof *dval);
    float *dv = malloc((size_t)bsz * o.dim * sizeof *dv);
    struct part_point *pts = calloc(bsz, sizeof *pts);
    struct part_vec *pv = calloc((size_t)bsz * 2, sizeof *pv);
    double ti = 0, tp = 0;
    uint64_t postings = 0;
    for (uint64_t b = 0; b < o.n; b += bsz) {
        uint32_t m = (uint32_t)(o.n - b < bsz ? o.n - b : bsz);
        for (uint32_t j = 0; j < m; j++) {
            uint64_t i = b + j;
            dn[i] = make_doc(cdf, o.vocab, o.terms, i, didx + i * o.terms, dval + i * o.terms);
            postings += dn[i];
            bench_gen_vec(i, o.dim, dv + (size_t)j * o.dim);
            pv[2 * j] = (struct part_vec){0, o.dim, dv + (size_t)j * o.dim, NULL};
            pv[2 * j + 1] = (struct part_vec){1, dn[i], dval + i * o.terms, didx + i * o.terms};
            pts[j] = (struct part_point){pid_num(i), NULL, 0, NULL, 0, &pv[2 * j], 2};
        }
        double t0 = bench_now();
        if (part_upsert(pn, pts, m, NULL, err) != DV_OK) {
            fprintf(stderr, "upsert: %s\n", err);
            return 1;
        }
        ti += bench_now() - t0;
        for (uint32_t j = 0; j < m; j++)
            pts[j] = (struct part_point){
                pid_num(b + j), dv + (size_t)j * o.dim, o.dim, NULL, 0, NULL, 0};
        t0 = bench_now();
        if (part_upsert(pp, pts, m, NULL, err) != DV_OK) {
            fprintf(stderr, "upsert: %s\n", err);
            return 1;
        }
        tp += bench_now() - t0;
    }

    /* Sparse queries: QT Zipf terms, weight 1; the oracle scores every document. */
    struct part_query *qs = calloc(o.queries, sizeof *qs);
    uint32_t *qidx = malloc((size_t)o.queries * o.qterms * sizeof *qidx);
    float *qval = malloc((size_t)o.queries * o.qterms * sizeof *qval);
    for (uint32_t q = 0; q < o.queries; q++) {
        uint64_t s = 1000003ull * (q + 1);
        for (uint32_t j = 0; j < o.qterms; j++) {
            qidx[q * o.qterms + j] = zipf(cdf, o.vocab, &s);
            for (uint32_t k = 0; k < j; k++)
                if (qidx[q * o.qterms + k] == qidx[q * o.qterms + j])
                    qidx[q * o.qterms + j] += o.vocab; /* distinct (an unseen term) */
            qval[q * o.qterms + j] = 1;
        }
        qs[q] = (struct part_query){.vec = qval + q * o.qterms,
                                    .k = o.k,
                                    .space = 1,
                                    .n = o.qterms,
                                    .idx = qidx + q * o.qterms};
    }
    struct part_result *res = calloc(o.queries, sizeof *res);
    double qps_sparse = run_searches(pn, qs, o.queries, res);
    /* brute force with the replica's IDF */
    uint64_t *df = calloc(2 * (size_t)o.vocab + 2, sizeof *df);
    for (uint64_t i = 0; i < o.n; i++)
        for (uint32_t j = 0; j < dn[i]; j++)
            df[didx[i * o.terms + j]]++;
    uint32_t exact = 0, checked = o.queries < 50 ? o.queries : 50; /* the oracle's share */
    float *sc = malloc(o.n * sizeof *sc);
    for (uint32_t q = 0; q < o.queries; q++) {
        if (q >= checked) {
            part_result_free(&res[q]);
            continue;
        }
        for (uint64_t i = 0; i < o.n; i++) {
            float s = 0;
            for (uint32_t j = 0; j < o.qterms; j++) {
                uint32_t t = qidx[q * o.qterms + j];
                const uint32_t *hit =
                    bsearch(&t, didx + i * o.terms, dn[i], sizeof(uint32_t), cmp_u32);
                if (hit != NULL)
                    s += sparse_idf(o.n, df[t]) * dval[i * o.terms + (hit - (didx + i * o.terms))];
            }
            sc[i] = s;
        }
        /* the k-th best score; every returned score must be >= it (ties may swap ids) */
        float *tmp = malloc(o.n * sizeof *tmp);
        memcpy(tmp, sc, o.n * sizeof *tmp);
        float kth = 0;
        for (uint32_t r = 0; r < o.k && r < o.n; r++) {
            uint64_t best = 0;
            for (uint64_t i = 1; i < o.n; i++)
                if (tmp[i] > tmp[best])
                    best = i;
            kth = tmp[best];
            tmp[best] = -INFINITY;
        }
        free(tmp);
        bool ok = true;
        for (size_t h = 0; h < res[q].n; h++) {
            float want = sc[res[q].hits[h].id.lo];
            ok &= fabsf(res[q].hits[h].score - want) <= 1e-3f * (1 + fabsf(want)) &&
                  want >= kth - 1e-3f * (1 + fabsf(kth));
        }
        exact += ok;
        part_result_free(&res[q]);
    }

    /* Dense: the same queries on the named vector and on the plain replica. */
    float *dq = malloc((size_t)o.queries * o.dim * sizeof *dq);
    struct part_query *qd = calloc(o.queries, sizeof *qd), *qp = calloc(o.queries, sizeof *qp);
    for (uint32_t q = 0; q < o.queries; q++) {
        bench_gen_vec(o.n + 1000000 + q, o.dim, dq + (size_t)q * o.dim);
        qd[q] = (struct part_query){.vec = dq + (size_t)q * o.dim, .k = o.k, .ef = 64, .space = 0};
        qp[q] = qd[q];
    }
    double qps_named = 0, qps_plain = 0;
    for (int round = 0; round < 3; round++) { /* alternated: the machine is shared */
        double a = run_searches(pn, qd, o.queries, NULL), b = run_searches(pp, qp, o.queries, NULL);
        qps_named = a > qps_named ? a : qps_named;
        qps_plain = b > qps_plain ? b : qps_plain;
    }
    if (o.json)
        printf("{\"n\":%llu,\"postings\":%llu,\"ingest_named_s\":%.2f,\"ingest_plain_s\":%.2f,"
               "\"sparse_qps\":%.0f,\"sparse_exact\":%u,\"checked\":%u,\"dense_named_qps\":%.0f,"
               "\"dense_plain_qps\":%.0f}\n",
               (unsigned long long)o.n, (unsigned long long)postings, ti, tp, qps_sparse, exact,
               checked, qps_named, qps_plain);
    else
        printf("points %llu, postings %llu (%.1f per point), vocabulary %u (Zipf 1.1), k %u\n"
               "ingest (1 thread, sync never): named replica (dense + sparse) %.2f s, plain "
               "replica (dense) %.2f s\n"
               "sparse search (idf, %u-term queries, exact): %.0f QPS, %u/%u queries checked equal "
               "to brute force\n"
               "dense search ef 64, best of 3 alternated: named vector %.0f QPS, plain %.0f QPS "
               "(%.2fx)\n",
               (unsigned long long)o.n, (unsigned long long)postings,
               (double)postings / (double)o.n, o.vocab, o.k, ti, tp, o.qterms, qps_sparse, exact,
               checked, qps_named, qps_plain, qps_named / qps_plain);
    part_close(pn);
    part_close(pp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", o.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", o.dir);
    free(cdf);
    free(didx);
    free(dn);
    free(dval);
    free(dv);
    free(pts);
    free(pv);
    free(qs);
    free(qidx);
    free(qval);
    free(res);
    free(df);
    free(sc);
    free(dq);
    free(qd);
    free(qp);
    return exact == checked ? 0 : 1;
}
