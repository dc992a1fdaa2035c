/* cmd_load.c - dvecctl points load: a vector file into a collection, in batches sent by
 * parallel uploaders, with a progress line on a terminal. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "progress.h"
#include "readers.h"

/* A batch stays well below the protocol's 64 MiB message limit. */
#define LOAD_MAX_BATCH_BYTES (16u << 20)

static const struct opt_spec load_opts[] = {
    {"batch", OPT_VAL, "N", "points per request (default 1000, at most 65536)"},
    {"parallel", OPT_VAL, "N", "requests in flight (default 2)"},
    {"format", OPT_VAL, "FMT", "fvecs, npy or jsonl (default: from the file name)"},
    {"id-offset", OPT_VAL, "N", ".fvecs/.npy: the id of row 0 (default 0; ids are row numbers)"},
    {"create", OPT_FLAG, NULL, "create the collection when it does not exist"},
    {"dim", OPT_VAL, "D|auto", "with --create: the dimension (default auto: the file's)"},
    COLL_CFG_OPTS,
    {NULL, 0, NULL, NULL},
};

struct loader {
    dvec_client *c;
    const char *coll;
    const char *unit; /* "row" or "line" */
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    struct rd_batch **q;
    size_t q_cap, q_head, q_len;
    bool closed;
    atomic_bool failed;
    /* The failing batch with the smallest range, and its error. */
    bool have_fail;
    uint64_t fail_first, fail_last;
    dvec_error fail;
    _Atomic uint64_t loaded, read_points, read_offset;
};

static void q_push(struct loader *l, struct rd_batch *b)
{
    pthread_mutex_lock(&l->mu);
    while (l->q_len == l->q_cap && !atomic_load(&l->failed))
        pthread_cond_wait(&l->not_full, &l->mu);
    if (atomic_load(&l->failed)) {
        pthread_mutex_unlock(&l->mu);
        rd_batch_free(b);
        free(b);
        return;
    }
    l->q[(l->q_head + l->q_len++) % l->q_cap] = b;
    pthread_cond_signal(&l->not_empty);
    pthread_mutex_unlock(&l->mu);
}

/* The next batch, or NULL once the queue is closed and empty. */
static struct rd_batch *q_pop(struct loader *l)
{
    pthread_mutex_lock(&l->mu);
    while (l->q_len == 0 && !l->closed)
        pthread_cond_wait(&l->not_empty, &l->mu);
    struct rd_batch *b = NULL;
    if (l->q_len) {
        b = l->q[l->q_head];
        l->q_head = (l->q_head + 1) % l->q_cap;
        l->q_len--;
        pthread_cond_signal(&l->not_full);
    }
    pthread_mutex_unlock(&l->mu);
    return b;
}

static void q_close(struct loader *l)
{
    pthread_mutex_lock(&l->mu);
    l->closed = true;
    pthread_cond_broadcast(&l->not_empty);
    pthread_cond_broadcast(&l->not_full);
    pthread_mutex_unlock(&l->mu);
}

static void record_fail(struct loader *l, const struct rd_batch *b, const dvec_error *e)
{
    pthread_mutex_lock(&l->mu);
    if (!l->have_fail || b->first < l->fail_first) {
        l->have_fail = true;
        l->fail_first = b->first;
        l->fail_last = b->last;
        l->fail = *e;
    }
    atomic_store(&l->failed, true);
    pthread_cond_broadcast(&l->not_full);
    pthread_mutex_unlock(&l->mu);
}

/* Sends one batch; a cluster without a leader for a moment (DVEC_EBUSY) is retried, writes
 * being idempotent by id. */
static int send_batch(struct loader *l, const struct rd_batch *b, dvec_error *e)
{
    dvec_point *pts = malloc(b->n * sizeof *pts);
    if (pts == NULL) {
        e->code = DVEC_ENOMEM;
        snprintf(e->message, sizeof e->message, "out of memory");
        return DVEC_ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        pts[i].id = b->ids[i];
        pts[i].vector = b->vecs + i * b->dim;
        pts[i].payload_json = b->payloads ? b->payloads[i] : NULL;
    }
    int rc;
    for (int attempt = 0;; attempt++) {
        rc = dvec_upsert(l->c, l->coll, pts, b->n, b->dim, e);
        if (rc != DVEC_EBUSY || attempt == 5 || atomic_load(&l->failed))
            break;
        usleep(200000u * (unsigned)(attempt + 1));
    }
    free(pts);
    return rc;
}

static void *uploader(void *arg)
{
    struct loader *l = arg;
    struct rd_batch *b;
    while ((b = q_pop(l)) != NULL) {
        if (!atomic_load(&l->failed)) {
            dvec_error e = {0};
            if (send_batch(l, b, &e) == DVEC_OK)
                atomic_fetch_add(&l->loaded, b->n);
            else
                record_fail(l, b, &e);
        }
        rd_batch_free(b);
        free(b);
    }
    return NULL;
}

struct ticker {
    struct loader *l;
    uint64_t total_rows, size;
    double start;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static void draw(struct ticker *t)
{
    uint64_t loaded = atomic_load(&t->l->loaded);
    double frac = -1;
    if (!t->total_rows && t->size) {
        /* JSON Lines: the part of the file read, scaled by the part of it sent. */
        uint64_t rp = atomic_load(&t->l->read_points), off = atomic_load(&t->l->read_offset);
        frac = rp ? (double)off / (double)t->size * (double)loaded / (double)rp : 0;
    }
    char line[256];
    progress_format(line, sizeof line, loaded, t->total_rows, frac, ctl_now() - t->start, 24);
    fprintf(stderr, "\r%s\x1b[K", line);
    fflush(stderr);
}

/* Redraws the progress line 5 times a second until stopped. */
static void *tick(void *arg)
{
    struct ticker *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        draw(t);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Makes sure the collection exists (creating it with --create) with the file's dimension. */
static int prepare_collection(const struct cmd *cmd, const struct opts *o, dvec_client *c,
                              const char *name, const char *path, uint32_t file_dim)
{
    dvec_error e = {0};
    dvec_collection_info in;
    char msg[512];
    int rc = dvec_collection_info_get(c, name, &in, &e);
    if (rc == DVEC_OK) {
        uint32_t dim = in.config.dim;
        dvec_collection_info_free(&in);
        if (dim != file_dim) {
            ctl_err("%s has %u-dimensional vectors; collection %s has %u dimensions", path,
                    file_dim, name, dim);
            return CTL_EXIT_FAIL;
        }
        return CTL_EXIT_OK;
    }
    if (rc != DVEC_ENOTFOUND || !opts_has(o, "create")) {
        rc = ctl_fail(&e);
        if (e.code == DVEC_ENOTFOUND)
            fprintf(stderr, "dvecctl: create it first, or give --create\n");
        return rc;
    }
    uint32_t dim = file_dim;
    const char *d = opts_get(o, "dim");
    if (d && strcmp(d, "auto") != 0) {
        if (opts_u32(o, "dim", 1, RD_MAX_DIM, &dim, msg, sizeof msg) != 0)
            return ctl_usage(cmd, "%s (or auto)", msg);
        if (dim != file_dim) {
            ctl_err("--dim %u, but %s has %u-dimensional vectors", dim, path, file_dim);
            return CTL_EXIT_FAIL;
        }
    }
    dvec_collection_config cfg;
    dvec_collection_config_init(&cfg, dim);
    if (coll_cfg_from_opts(o, &cfg, msg, sizeof msg) != 0)
        return ctl_usage(cmd, "%s", msg);
    if (dvec_collection_create(c, name, &cfg, &e) != DVEC_OK && e.code != DVEC_EEXIST)
        return ctl_fail(&e);
    printf("created collection %s (dim %u, %s)\n", name, dim, metric_name(cfg.metric));
    return CTL_EXIT_OK;
}

static int load_run(struct ctl *ctl, const struct cmd *cmd, const struct opts *o)
{
    const char *name = o->pos[0], *path = o->pos[1];
    char msg[512];
    uint32_t batch = 1000, parallel = 2;
    uint64_t id_offset = 0;
    if (opts_u32(o, "batch", 1, 65536, &batch, msg, sizeof msg) != 0 ||
        opts_u32(o, "parallel", 1, 64, &parallel, msg, sizeof msg) != 0 ||
        opts_uint(o, "id-offset", 0, UINT64_MAX, &id_offset, msg, sizeof msg) != 0)
        return ctl_usage(cmd, "%s", msg);
    enum rd_format fmt = RD_AUTO;
    if (opts_has(o, "format") && (fmt = rd_format_parse(opts_get(o, "format"))) == RD_AUTO)
        return ctl_usage(cmd, "--format: '%s' is not fvecs, npy or jsonl", opts_get(o, "format"));
    if (!opts_has(o, "create")) {
        static const char *const need_create[] = {
            "dim",         "metric", "m",  "ef-construction", "ef", "partitions",
            "replication", "fsync",  "sq8"};
        for (size_t i = 0; i < sizeof need_create / sizeof need_create[0]; i++)
            if (opts_has(o, need_create[i]))
                return ctl_usage(cmd, "--%s goes with --create", need_create[i]);
    }
    struct reader *r;
    if (rd_open(path, fmt, id_offset, &r, msg, sizeof msg) != 0) {
        ctl_err("%s", msg);
        return CTL_EXIT_FAIL;
    }
    if (rd_format_of(r) == RD_JSONL && opts_has(o, "id-offset")) {
        rd_close(r);
        return ctl_usage(cmd, "--id-offset is for .fvecs and .npy (JSON Lines carry their ids)");
    }
    dvec_client *c;
    int rc = ctl_client(ctl, &c);
    if (rc == 0)
        rc = prepare_collection(cmd, o, c, name, path, rd_dim(r));
    if (rc != 0) {
        rd_close(r);
        return rc;
    }

    struct loader l = {.c = c, .coll = name, .unit = rd_unit(r), .q_cap = 2 * (size_t)parallel};
    pthread_mutex_init(&l.mu, NULL);
    pthread_cond_init(&l.not_empty, NULL);
    pthread_cond_init(&l.not_full, NULL);
    l.q = calloc(l.q_cap, sizeof *l.q);
    pthread_t *th = calloc(parallel, sizeof *th);
    if (l.q == NULL || th == NULL) {
        free(l.q);
        free(th);
        rd_close(r);
        ctl_err("out of memory");
        return CTL_EXIT_FAIL;
    }
    double start = ctl_now();
    uint32_t n_th = 0;
    for (; n_th < parallel; n_th++)
        if (pthread_create(&th[n_th], NULL, uploader, &l) != 0)
            break;
    struct ticker t = {.l = &l, .total_rows = rd_rows(r), .size = rd_size(r), .start = start};
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    pthread_t tick_th;
    bool ticking = isatty(STDERR_FILENO) && pthread_create(&tick_th, NULL, tick, &t) == 0;

    bool read_failed = false;
    char read_err[512] = "";
    while (n_th > 0 && !atomic_load(&l.failed)) {
        struct rd_batch *b = malloc(sizeof *b);
        long got = b ? rd_next(r, batch, LOAD_MAX_BATCH_BYTES, b, read_err, sizeof read_err) : -1;
        if (b == NULL)
            snprintf(read_err, sizeof read_err, "out of memory");
        if (got <= 0) {
            free(b);
            read_failed = got < 0;
            break;
        }
        atomic_fetch_add(&l.read_points, (uint64_t)got);
        atomic_store(&l.read_offset, rd_offset(r));
        q_push(&l, b);
    }
    q_close(&l);
    for (uint32_t i = 0; i < n_th; i++)
        pthread_join(th[i], NULL);
    if (ticking) {
        pthread_mutex_lock(&t.mu);
        t.stop = true;
        pthread_cond_signal(&t.cv);
        pthread_mutex_unlock(&t.mu);
        pthread_join(tick_th, NULL);
        if (!l.have_fail && !read_failed)
            draw(&t);
        fputc('\n', stderr);
    }
    double secs = ctl_now() - start;
    uint64_t loaded = atomic_load(&l.loaded);
    if (n_th == 0) {
        ctl_err("cannot start an upload thread");
        rc = CTL_EXIT_FAIL;
    } else if (l.have_fail) {
        const char *u = l.unit;
        if (l.fail_first == l.fail_last)
            rc = ctl_failf(&l.fail, "loading %s into %s: %s %llu", path, name, u,
                           (unsigned long long)l.fail_first);
        else
            rc = ctl_failf(&l.fail, "loading %s into %s: %ss %llu-%llu", path, name, u,
                           (unsigned long long)l.fail_first, (unsigned long long)l.fail_last);
        fprintf(stderr, "dvecctl: stopped after loading %llu points\n", (unsigned long long)loaded);
    } else if (read_failed) {
        ctl_err("%s", read_err);
        fprintf(stderr, "dvecctl: stopped after loading %llu points\n", (unsigned long long)loaded);
        rc = CTL_EXIT_FAIL;
    } else {
        printf("loaded %llu points into %s from %s in %.2f s (%.0f points/s)\n",
               (unsigned long long)loaded, name, path, secs,
               secs > 0 ? (double)loaded / secs : 0.0);
    }
    pthread_cond_destroy(&t.cv);
    pthread_mutex_destroy(&t.mu);
    pthread_cond_destroy(&l.not_full);
    pthread_cond_destroy(&l.not_empty);
    pthread_mutex_destroy(&l.mu);
    free(l.q);
    free(th);
    rd_close(r);
    return rc;
}

const struct cmd cmd_points_load = {
    "points load",
    "NAME FILE [--batch N] [--parallel N] [--create [--dim auto|D]] [options]",
    "load a .fvecs, .npy or JSON Lines file into a collection",
    "Formats:\n"
    "  .fvecs  rows of [int32 dim, dim x float32]; ids are row numbers (0-based) + --id-offset\n"
    "  .npy    a 2-D float32 array, little-endian ('<f4'), C order; ids as .fvecs\n"
    "  .jsonl  one point per line: {\"id\": 1 or \"UUID\", \"vector\": [...], \"payload\": {...}}\n"
    "\n"
    "The file's dimension is checked against the collection's before anything is sent. Batches\n"
    "go out --parallel at a time; the load stops at the first failing batch and names its\n"
    "rows (lines for .jsonl). Writes are idempotent by id, so loading again resumes safely.\n"
    "A progress line (percent, rate, ETA) is drawn on stderr when it is a terminal; a\n"
    "one-line summary goes to stdout at the end.\n",
    load_opts,
    2,
    2,
    load_run,
};
