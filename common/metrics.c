/* metrics.c - Prometheus metric families: lock-free recording, collectors, text exposition. */
#include "metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "err.h"
#include "hash.h"
#include "log.h"

const double metrics_latency_buckets[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t metrics_latency_nbuckets =
    sizeof metrics_latency_buckets / sizeof metrics_latency_buckets[0];

/* Series are cache-line aligned so that hot counters of different series never share a line. */
#define SERIES_ALIGN 64

/* The part every series starts with. `labels` is the escaped text inside the braces. */
struct series {
    struct series *next;
    char *labels;
};

struct metrics_counter {
    struct series s;
    _Atomic uint64_t v;
};

/* Doubles are kept as their bit pattern so they can live in a lock-free 64-bit atomic. */
struct metrics_gauge {
    struct series s;
    _Atomic uint64_t bits;
};

struct metrics_histogram {
    struct series s;
    const double *bounds; /* the family's */
    size_t nbounds;
    _Atomic uint64_t sum_bits;
    _Atomic uint64_t buckets[]; /* nbounds + 1, not cumulative; the last is +Inf */
};

struct family {
    struct family *next;
    char *name; /* as exposed: counters end in _total */
    char *help;
    enum metrics_type type;
    char *lkey; /* label names joined with ',' */
    double *bounds;
    size_t nbounds;
    struct series *first, **tail;
};

struct collector {
    metrics_collect_fn fn;
    void *arg;
};

struct metrics {
    pthread_mutex_t mu; /* families and their series lists */
    struct family *families, **ftail;
    pthread_mutex_t render_mu; /* serializes renders; guards the collectors */
    struct collector *coll;
    size_t ncoll, capcoll;
};

/* A set of strings it owns (open addressing), to find repeated label sets while rendering. */
struct strset {
    char **slots;
    size_t cap, n;
};

/* A family that collectors emitted during one render, with its sample lines. */
struct cfam {
    struct cfam *next;
    char *name, *help, *lkey;
    enum metrics_type type;
    struct buf lines;
    struct strset seen;
    bool done;
};

struct metrics_writer {
    struct metrics *reg;
    struct cfam *fams, **tail;
    int err; /* first emit error, with its reason */
    char errmsg[DV_ERRMSG_SIZE];
};

/* Parsed label pairs; pointers into the caller's array. */
struct lblset {
    size_t n;
    const char *names[METRICS_MAX_LABELS];
    const char *values[METRICS_MAX_LABELS];
};

static const char *type_name(enum metrics_type t)
{
    switch (t) {
    case METRICS_COUNTER:
        return "counter";
    case METRICS_GAUGE:
        return "gauge";
    case METRICS_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

static bool valid_metric_name(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool valid_label_name(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Checks `name` and writes the exposed name (with _total for counters) into `out`. */
static int exposed_name(enum metrics_type type, const char *name, struct buf *out, char *errmsg)
{
    if (!valid_metric_name(name)) {
        if (errmsg)
            dv_errmsg_set(errmsg, "metrics: invalid metric name \"%s\"", name ? name : "(null)");
        return DV_EINVAL;
    }
    int rc = buf_appendf(out, "%s", name);
    if (rc == DV_OK && type == METRICS_COUNTER && !ends_with(name, "_total"))
        rc = buf_appendf(out, "_total");
    return rc;
}

/* Splits the NULL-terminated name/value array and checks every name. */
static int parse_labels(const char *metric, const char *const *labels, struct lblset *ls,
                        char *errmsg)
{
    ls->n = 0;
    if (labels == NULL)
        return DV_OK;
    for (size_t i = 0; labels[i] != NULL; i += 2) {
        const char *name = labels[i], *value = labels[i + 1];
        if (ls->n == METRICS_MAX_LABELS) {
            if (errmsg)
                dv_errmsg_set(errmsg, "metrics: %s: more than %d labels", metric,
                              METRICS_MAX_LABELS);
            return DV_EINVAL;
        }
        if (!valid_label_name(name) || strncmp(name, "__", 2) == 0 || strcmp(name, "le") == 0) {
            if (errmsg)
                dv_errmsg_set(errmsg, "metrics: %s: invalid label name \"%s\"", metric, name);
            return DV_EINVAL;
        }
        if (value == NULL) {
            if (errmsg)
                dv_errmsg_set(errmsg, "metrics: %s: label \"%s\" has no value", metric, name);
            return DV_EINVAL;
        }
        for (size_t j = 0; j < ls->n; j++) {
            if (strcmp(ls->names[j], name) == 0) {
                if (errmsg)
                    dv_errmsg_set(errmsg, "metrics: %s: label \"%s\" given twice", metric, name);
                return DV_EINVAL;
            }
        }
        ls->names[ls->n] = name;
        ls->values[ls->n] = value;
        ls->n++;
    }
    return DV_OK;
}

/* Appends `s` escaped for the text format: \\ and \n always, \" too inside label values. */
static int append_escaped(struct buf *b, const char *s, bool quote)
{
    const char *run = s;
    int rc = DV_OK;
    for (const char *p = s; *p && rc == DV_OK; p++) {
        const char *esc = NULL;
        if (*p == '\\')
            esc = "\\\\";
        else if (*p == '\n')
            esc = "\\n";
        else if (*p == '"' && quote)
            esc = "\\\"";
        if (esc == NULL)
            continue;
        rc = buf_append(b, run, (size_t)(p - run));
        if (rc == DV_OK)
            rc = buf_append(b, esc, 2);
        run = p + 1;
    }
    if (rc == DV_OK)
        rc = buf_append(b, run, strlen(run));
    return rc;
}

/* Builds the escaped label text (a="x",b="y") and the key of label names (a,b), both
 * malloc'd and NUL-terminated. */
static int format_labels(const struct lblset *ls, char **text, char **lkey)
{
    struct buf t = BUF_INIT, k = BUF_INIT;
    int rc = buf_reserve(&t, 1);
    if (rc == DV_OK)
        rc = buf_reserve(&k, 1);
    for (size_t i = 0; i < ls->n && rc == DV_OK; i++) {
        rc = buf_appendf(&t, "%s%s=\"", i ? "," : "", ls->names[i]);
        if (rc == DV_OK)
            rc = append_escaped(&t, ls->values[i], true);
        if (rc == DV_OK)
            rc = buf_append(&t, "\"", 1);
        if (rc == DV_OK)
            rc = buf_appendf(&k, "%s%s", i ? "," : "", ls->names[i]);
    }
    if (rc == DV_OK)
        rc = buf_appendf(&t, "%s", "");
    if (rc == DV_OK)
        rc = buf_appendf(&k, "%s", "");
    if (rc != DV_OK) {
        buf_free(&t);
        buf_free(&k);
        return rc;
    }
    *text = (char *)buf_detach(&t, NULL);
    *lkey = (char *)buf_detach(&k, NULL);
    return DV_OK;
}

/* True if `base` + `suffix` spells `other`. */
static bool derived_eq(const char *base, const char *suffix, const char *other)
{
    size_t n = strlen(base);
    return strncmp(base, other, n) == 0 && strcmp(other + n, suffix) == 0;
}

/* True if two families of different names would expose a sample name in common (a histogram
 * "x" exposes x_bucket, x_sum and x_count). */
static bool names_clash(const char *a, enum metrics_type ta, const char *b, enum metrics_type tb)
{
    static const char *const hist[] = {"", "_bucket", "_sum", "_count"};
    size_t na = ta == METRICS_HISTOGRAM ? 4 : 1, nb = tb == METRICS_HISTOGRAM ? 4 : 1;
    for (size_t i = 0; i < na; i++) {
        for (size_t j = 0; j < nb; j++) {
            /* Compare a+hist[i] with b+hist[j] without building either. */
            size_t la = strlen(a), lb = strlen(b);
            size_t sa = strlen(hist[i]), sb = strlen(hist[j]);
            if (la + sa != lb + sb)
                continue;
            if (la <= lb) {
                if (strncmp(a, b, la) == 0 && derived_eq(b + la, hist[j], hist[i]))
                    return true;
            } else if (strncmp(a, b, lb) == 0 && derived_eq(a + lb, hist[i], hist[j])) {
                return true;
            }
        }
    }
    return false;
}

/* Shortest decimal that reads back as the same double; NaN, +Inf, -Inf as Prometheus spells
 * them. */
static int append_double(struct buf *b, double v)
{
    if (isnan(v))
        return buf_appendf(b, "NaN");
    if (isinf(v))
        return buf_appendf(b, "%s", v > 0 ? "+Inf" : "-Inf");
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return buf_appendf(b, "%s", tmp);
}

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static int strset_add(struct strset *s, const char *key, bool *dup)
{
    *dup = false;
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        char **ns = calloc(ncap, sizeof *ns);
        if (ns == NULL)
            return DV_ENOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slots[i] == NULL)
                continue;
            size_t h = (size_t)hash64_bytes(s->slots[i], strlen(s->slots[i]), 0) & (ncap - 1);
            while (ns[h] != NULL)
                h = (h + 1) & (ncap - 1);
            ns[h] = s->slots[i];
        }
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    size_t h = (size_t)hash64_bytes(key, strlen(key), 0) & (s->cap - 1);
    while (s->slots[h] != NULL) {
        if (strcmp(s->slots[h], key) == 0) {
            *dup = true;
            return DV_OK;
        }
        h = (h + 1) & (s->cap - 1);
    }
    char *copy = strdup(key);
    if (copy == NULL)
        return DV_ENOMEM;
    s->slots[h] = copy;
    s->n++;
    return DV_OK;
}

static void strset_free(struct strset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i]);
    free(s->slots);
    s->slots = NULL;
    s->cap = s->n = 0;
}

int metrics_new(struct metrics **out)
{
    struct metrics *reg = calloc(1, sizeof *reg);
    if (reg == NULL)
        return DV_ENOMEM;
    pthread_mutex_init(&reg->mu, NULL);
    pthread_mutex_init(&reg->render_mu, NULL);
    reg->ftail = &reg->families;
    *out = reg;
    return DV_OK;
}

static void family_free(struct family *f)
{
    struct series *s = f->first;
    while (s != NULL) {
        struct series *next = s->next;
        free(s->labels);
        free(s);
        s = next;
    }
    free(f->name);
    free(f->help);
    free(f->lkey);
    free(f->bounds);
    free(f);
}

void metrics_free(struct metrics *reg)
{
    if (reg == NULL)
        return;
    struct family *f = reg->families;
    while (f != NULL) {
        struct family *next = f->next;
        family_free(f);
        f = next;
    }
    free(reg->coll);
    pthread_mutex_destroy(&reg->mu);
    pthread_mutex_destroy(&reg->render_mu);
    free(reg);
}

static struct family *find_family(struct metrics *reg, const char *name)
{
    for (struct family *f = reg->families; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* Checks that a family of `name` can be created next to the registered ones. Under reg->mu. */
static int check_new_family(struct metrics *reg, const char *name, enum metrics_type type,
                            char *errmsg)
{
    for (struct family *f = reg->families; f != NULL; f = f->next) {
        if (names_clash(name, type, f->name, f->type)) {
            if (errmsg)
                dv_errmsg_set(errmsg, "metrics: %s %s clashes with %s %s", type_name(type), name,
                              type_name(f->type), f->name);
            return DV_EINVAL;
        }
    }
    return DV_OK;
}

/* Checks that an existing family `f` can take a series of this shape. */
static int check_family(const struct family *f, enum metrics_type type, const char *help,
                        const char *lkey, const double *bounds, size_t nbounds, char *errmsg)
{
    const char *what = NULL;
    if (f->type != type)
        what = "type";
    else if (strcmp(f->help, help) != 0)
        what = "help";
    else if (strcmp(f->lkey, lkey) != 0)
        what = "label names";
    else if (type == METRICS_HISTOGRAM &&
             (f->nbounds != nbounds || memcmp(f->bounds, bounds, nbounds * sizeof *bounds) != 0))
        what = "buckets";
    if (what == NULL)
        return DV_OK;
    if (errmsg)
        dv_errmsg_set(errmsg, "metrics: %s: registered with another %s (%s %s, labels {%s})",
                      f->name, what, type_name(f->type), f->name, f->lkey);
    return DV_EINVAL;
}

static int check_bounds(const char *name, const double *bounds, size_t nbounds, char *errmsg)
{
    const char *why = NULL;
    if (nbounds == 0 || nbounds > METRICS_MAX_BUCKETS)
        why = "1 to METRICS_MAX_BUCKETS bounds needed";
    for (size_t i = 0; i < nbounds && why == NULL; i++) {
        if (!isfinite(bounds[i]))
            why = "bounds must be finite (+Inf is implicit)";
        else if (i > 0 && !(bounds[i] > bounds[i - 1]))
            why = "bounds must be strictly ascending";
    }
    if (why == NULL)
        return DV_OK;
    if (errmsg)
        dv_errmsg_set(errmsg, "metrics: histogram %s: %s", name, why);
    return DV_EINVAL;
}

static struct series *series_alloc(enum metrics_type type, const struct family *f)
{
    size_t size = type == METRICS_COUNTER ? sizeof(struct metrics_counter)
                  : type == METRICS_GAUGE ? sizeof(struct metrics_gauge)
                                          : sizeof(struct metrics_histogram) +
                                                (f->nbounds + 1) * sizeof(_Atomic uint64_t);
    size = (size + SERIES_ALIGN - 1) / SERIES_ALIGN * SERIES_ALIGN;
    struct series *s = aligned_alloc(SERIES_ALIGN, size);
    if (s == NULL)
        return NULL;
    memset(s, 0, size);
    switch (type) {
    case METRICS_COUNTER:
        atomic_init(&((struct metrics_counter *)s)->v, 0);
        break;
    case METRICS_GAUGE:
        atomic_init(&((struct metrics_gauge *)s)->bits, dbits(0.0));
        break;
    case METRICS_HISTOGRAM: {
        struct metrics_histogram *h = (struct metrics_histogram *)s;
        h->bounds = f->bounds;
        h->nbounds = f->nbounds;
        atomic_init(&h->sum_bits, dbits(0.0));
        for (size_t i = 0; i <= f->nbounds; i++)
            atomic_init(&h->buckets[i], 0);
        break;
    }
    }
    return s;
}

/* Finds or creates the series of (type, name, labels). */
static int get_series(struct metrics *reg, enum metrics_type type, const char *name,
                      const char *help, const double *bounds, size_t nbounds,
                      const char *const *labels, struct series **out, char *errmsg)
{
    struct buf nb = BUF_INIT;
    struct lblset ls;
    char *text = NULL, *lkey = NULL;
    struct family *nf = NULL;
    if (help == NULL)
        help = "";
    int rc = exposed_name(type, name, &nb, errmsg);
    if (rc != DV_OK)
        goto err_free_name;
    const char *ename = (const char *)nb.data;
    if (type == METRICS_HISTOGRAM) {
        if (bounds == NULL) {
            bounds = metrics_latency_buckets;
            nbounds = metrics_latency_nbuckets;
        }
        if ((rc = check_bounds(ename, bounds, nbounds, errmsg)) != DV_OK)
            goto err_free_name;
    }
    if ((rc = parse_labels(ename, labels, &ls, errmsg)) != DV_OK)
        goto err_free_name;
    if ((rc = format_labels(&ls, &text, &lkey)) != DV_OK)
        goto err_free_name;

    pthread_mutex_lock(&reg->mu);
    struct family *f = find_family(reg, ename);
    if (f != NULL) {
        if ((rc = check_family(f, type, help, lkey, bounds, nbounds, errmsg)) != DV_OK)
            goto err_unlock;
        for (struct series *s = f->first; s != NULL; s = s->next) {
            if (strcmp(s->labels, text) == 0) {
                *out = s;
                goto out_unlock;
            }
        }
    } else {
        if ((rc = check_new_family(reg, ename, type, errmsg)) != DV_OK)
            goto err_unlock;
        rc = DV_ENOMEM;
        if ((nf = calloc(1, sizeof *nf)) == NULL)
            goto err_unlock;
        nf->type = type;
        nf->tail = &nf->first;
        nf->name = strdup(ename);
        nf->help = strdup(help);
        nf->lkey = lkey;
        lkey = NULL;
        if (type == METRICS_HISTOGRAM) {
            nf->nbounds = nbounds;
            if ((nf->bounds = malloc(nbounds * sizeof *bounds)) != NULL)
                memcpy(nf->bounds, bounds, nbounds * sizeof *bounds);
        }
        if (nf->name == NULL || nf->help == NULL || nf->lkey == NULL ||
            (type == METRICS_HISTOGRAM && nf->bounds == NULL))
            goto err_unlock;
        f = nf;
    }
    struct series *s = series_alloc(type, f);
    if (s == NULL) {
        rc = DV_ENOMEM;
        goto err_unlock;
    }
    s->labels = text;
    text = NULL;
    *f->tail = s;
    f->tail = &s->next;
    if (f == nf) {
        *reg->ftail = nf;
        reg->ftail = &nf->next;
        nf = NULL;
    }
    *out = s;
out_unlock:
    rc = DV_OK;
err_unlock:
    pthread_mutex_unlock(&reg->mu);
    if (nf != NULL)
        family_free(nf);
    if (rc == DV_ENOMEM && errmsg)
        dv_errmsg_set(errmsg, "metrics: %s: out of memory", ename);
err_free_name:
    free(text);
    free(lkey);
    buf_free(&nb);
    return rc;
}

int metrics_counter(struct metrics *reg, const char *name, const char *help,
                    const char *const *labels, struct metrics_counter **out, char *errmsg)
{
    struct series *s;
    int rc = get_series(reg, METRICS_COUNTER, name, help, NULL, 0, labels, &s, errmsg);
    if (rc == DV_OK)
        *out = (struct metrics_counter *)s;
    return rc;
}

int metrics_gauge(struct metrics *reg, const char *name, const char *help,
                  const char *const *labels, struct metrics_gauge **out, char *errmsg)
{
    struct series *s;
    int rc = get_series(reg, METRICS_GAUGE, name, help, NULL, 0, labels, &s, errmsg);
    if (rc == DV_OK)
        *out = (struct metrics_gauge *)s;
    return rc;
}

int metrics_histogram(struct metrics *reg, const char *name, const char *help, const double *bounds,
                      size_t nbounds, const char *const *labels, struct metrics_histogram **out,
                      char *errmsg)
{
    struct series *s;
    int rc = get_series(reg, METRICS_HISTOGRAM, name, help, bounds, nbounds, labels, &s, errmsg);
    if (rc == DV_OK)
        *out = (struct metrics_histogram *)s;
    return rc;
}

void metrics_counter_add(struct metrics_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

void metrics_counter_inc(struct metrics_counter *c)
{
    atomic_fetch_add_explicit(&c->v, 1, memory_order_relaxed);
}

uint64_t metrics_counter_value(const struct metrics_counter *c)
{
    return atomic_load_explicit(&((struct metrics_counter *)c)->v, memory_order_relaxed);
}

void metrics_gauge_set(struct metrics_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, dbits(v), memory_order_relaxed);
}

/* Adds to a double kept as bits: compare-and-swap until no other thread got in between. */
static void add_double(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, dbits(bitsd(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void metrics_gauge_add(struct metrics_gauge *g, double delta)
{
    add_double(&g->bits, delta);
}

double metrics_gauge_value(const struct metrics_gauge *g)
{
    return bitsd(atomic_load_explicit(&((struct metrics_gauge *)g)->bits, memory_order_relaxed));
}

void metrics_histogram_observe(struct metrics_histogram *h, double v)
{
    if (isnan(v))
        return;
    /* First bound >= v; nbounds (the +Inf bucket) if none. */
    size_t lo = 0, hi = h->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->bounds[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
    add_double(&h->sum_bits, v);
}

uint64_t metrics_histogram_count(const struct metrics_histogram *h)
{
    struct metrics_histogram *m = (struct metrics_histogram *)h;
    uint64_t n = 0;
    for (size_t i = 0; i <= m->nbounds; i++)
        n += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
    return n;
}

int metrics_add_collector(struct metrics *reg, metrics_collect_fn fn, void *arg)
{
    int rc = DV_OK;
    pthread_mutex_lock(&reg->render_mu);
    if (reg->ncoll == reg->capcoll) {
        size_t ncap = reg->capcoll ? reg->capcoll * 2 : 4;
        struct collector *nc = realloc(reg->coll, ncap * sizeof *nc);
        if (nc == NULL) {
            rc = DV_ENOMEM;
            goto out_unlock;
        }
        reg->coll = nc;
        reg->capcoll = ncap;
    }
    reg->coll[reg->ncoll].fn = fn;
    reg->coll[reg->ncoll].arg = arg;
    reg->ncoll++;
out_unlock:
    pthread_mutex_unlock(&reg->render_mu);
    return rc;
}

int metrics_remove_collector(struct metrics *reg, metrics_collect_fn fn, void *arg)
{
    int rc = DV_ENOTFOUND;
    pthread_mutex_lock(&reg->render_mu);
    for (size_t i = 0; i < reg->ncoll; i++) {
        if (reg->coll[i].fn == fn && reg->coll[i].arg == arg) {
            memmove(&reg->coll[i], &reg->coll[i + 1], (reg->ncoll - i - 1) * sizeof *reg->coll);
            reg->ncoll--;
            rc = DV_OK;
            break;
        }
    }
    pthread_mutex_unlock(&reg->render_mu);
    return rc;
}

static struct cfam *find_cfam(struct metrics_writer *w, const char *name)
{
    for (struct cfam *c = w->fams; c != NULL; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static void cfam_free(struct cfam *c)
{
    free(c->name);
    free(c->help);
    free(c->lkey);
    buf_free(&c->lines);
    strset_free(&c->seen);
    free(c);
}

/*
 * Starts a collector family: checks it against the registered family of the same name (whose
 * label sets it then must not repeat) or, if none, against clashes with every other family.
 */
static int cfam_new(struct metrics_writer *w, enum metrics_type type, const char *name,
                    const char *help, const char *lkey, struct cfam **out, char *errmsg)
{
    struct metrics *reg = w->reg;
    struct cfam *c = calloc(1, sizeof *c);
    if (c == NULL)
        return DV_ENOMEM;
    c->type = type;
    c->name = strdup(name);
    c->help = strdup(help);
    c->lkey = strdup(lkey);
    int rc = c->name && c->help && c->lkey ? DV_OK : DV_ENOMEM;
    if (rc != DV_OK)
        goto err_free;
    for (struct cfam *o = w->fams; o != NULL; o = o->next) {
        if (names_clash(name, type, o->name, o->type)) {
            dv_errmsg_set(errmsg, "metrics: %s %s clashes with %s %s", type_name(type), name,
                          type_name(o->type), o->name);
            rc = DV_EINVAL;
            goto err_free;
        }
    }
    pthread_mutex_lock(&reg->mu);
    struct family *f = find_family(reg, name);
    if (f != NULL) {
        rc = check_family(f, type, help, lkey, NULL, 0, errmsg);
        bool dup;
        for (struct series *s = f->first; s != NULL && rc == DV_OK; s = s->next)
            rc = strset_add(&c->seen, s->labels, &dup);
    } else {
        rc = check_new_family(reg, name, type, errmsg);
    }
    pthread_mutex_unlock(&reg->mu);
    if (rc != DV_OK)
        goto err_free;
    *w->tail = c;
    w->tail = &c->next;
    *out = c;
    return DV_OK;
err_free:
    cfam_free(c);
    return rc;
}

static int emit(struct metrics_writer *w, enum metrics_type type, const char *name,
                const char *help, const char *const *labels, double value, char *errmsg)
{
    struct buf nb = BUF_INIT;
    struct lblset ls;
    char *text = NULL, *lkey = NULL;
    if (help == NULL)
        help = "";
    if (type != METRICS_COUNTER && type != METRICS_GAUGE) {
        dv_errmsg_set(errmsg, "metrics: %s: collectors emit counters and gauges only",
                      name ? name : "(null)");
        return DV_EINVAL;
    }
    int rc = exposed_name(type, name, &nb, errmsg);
    if (rc != DV_OK)
        goto out_free;
    const char *ename = (const char *)nb.data;
    if ((rc = parse_labels(ename, labels, &ls, errmsg)) != DV_OK)
        goto out_free;
    if ((rc = format_labels(&ls, &text, &lkey)) != DV_OK)
        goto out_free;
    struct cfam *c = find_cfam(w, ename);
    if (c == NULL) {
        if ((rc = cfam_new(w, type, ename, help, lkey, &c, errmsg)) != DV_OK)
            goto out_free;
    } else if (c->type != type || strcmp(c->help, help) != 0 || strcmp(c->lkey, lkey) != 0) {
        dv_errmsg_set(errmsg, "metrics: %s: emitted with another type, help or label names", ename);
        rc = DV_EINVAL;
        goto out_free;
    }
    bool dup;
    if ((rc = strset_add(&c->seen, text, &dup)) != DV_OK)
        goto out_free;
    if (dup) {
        dv_errmsg_set(errmsg, "metrics: %s{%s} emitted twice", ename, text);
        rc = DV_EINVAL;
        goto out_free;
    }
    size_t mark = c->lines.len;
    rc = buf_appendf(&c->lines, ls.n ? "%s{%s} " : "%s%s ", ename, text);
    if (rc == DV_OK)
        rc = append_double(&c->lines, value);
    if (rc == DV_OK)
        rc = buf_append(&c->lines, "\n", 1);
    if (rc != DV_OK)
        c->lines.len = mark;
out_free:
    if (rc == DV_ENOMEM)
        dv_errmsg_set(errmsg, "metrics: out of memory");
    free(text);
    free(lkey);
    buf_free(&nb);
    return rc;
}

int metrics_emit(struct metrics_writer *w, enum metrics_type type, const char *name,
                 const char *help, const char *const *labels, double value)
{
    char msg[DV_ERRMSG_SIZE];
    int rc = emit(w, type, name, help, labels, value, msg);
    if (rc != DV_OK && w->err == DV_OK) {
        w->err = rc;
        memcpy(w->errmsg, msg, sizeof msg);
    }
    return rc;
}

int metrics_emit_gauge(struct metrics_writer *w, const char *name, const char *help,
                       const char *const *labels, double value)
{
    return metrics_emit(w, METRICS_GAUGE, name, help, labels, value);
}

int metrics_emit_counter(struct metrics_writer *w, const char *name, const char *help,
                         const char *const *labels, double value)
{
    return metrics_emit(w, METRICS_COUNTER, name, help, labels, value);
}

static int render_header(struct buf *out, const char *name, const char *help,
                         enum metrics_type type)
{
    int rc = buf_appendf(out, "# HELP %s ", name);
    if (rc == DV_OK)
        rc = append_escaped(out, help, false);
    if (rc == DV_OK)
        rc = buf_appendf(out, "\n# TYPE %s %s\n", name, type_name(type));
    return rc;
}

static int render_histogram(struct buf *out, const char *name, struct metrics_histogram *h)
{
    const char *lb = h->s.labels, *sep = *lb ? "," : "";
    uint64_t cum = 0;
    int rc = DV_OK;
    for (size_t i = 0; i <= h->nbounds && rc == DV_OK; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        rc = buf_appendf(out, "%s_bucket{%s%sle=\"", name, lb, sep);
        if (rc == DV_OK)
            rc = i < h->nbounds ? append_double(out, h->bounds[i]) : buf_appendf(out, "+Inf");
        if (rc == DV_OK)
            rc = buf_appendf(out, "\"} %" PRIu64 "\n", cum);
    }
    double sum = bitsd(atomic_load_explicit(&h->sum_bits, memory_order_relaxed));
    if (rc == DV_OK)
        rc = buf_appendf(out, *lb ? "%s_sum{%s} " : "%s_sum%s ", name, lb);
    if (rc == DV_OK)
        rc = append_double(out, sum);
    /* The count is the +Inf bucket as read above, so the two always agree. */
    if (rc == DV_OK)
        rc = buf_appendf(out, *lb ? "\n%s_count{%s} %" PRIu64 "\n" : "\n%s_count%s %" PRIu64 "\n",
                         name, lb, cum);
    return rc;
}

/* Renders the registered families, each followed by what collectors emitted for it. Under
 * reg->mu. */
static int render_registered(struct metrics *reg, struct metrics_writer *w, struct buf *out,
                             char *errmsg)
{
    int rc = DV_OK;
    for (struct family *f = reg->families; f != NULL && rc == DV_OK; f = f->next) {
        rc = render_header(out, f->name, f->help, f->type);
        for (struct series *s = f->first; s != NULL && rc == DV_OK; s = s->next) {
            const char *fmt = *s->labels ? "%s{%s} " : "%s%s ";
            switch (f->type) {
            case METRICS_COUNTER:
                rc = buf_appendf(out, fmt, f->name, s->labels);
                if (rc == DV_OK)
                    rc = buf_appendf(out, "%" PRIu64 "\n",
                                     metrics_counter_value((struct metrics_counter *)s));
                break;
            case METRICS_GAUGE:
                rc = buf_appendf(out, fmt, f->name, s->labels);
                if (rc == DV_OK)
                    rc = append_double(out, metrics_gauge_value((struct metrics_gauge *)s));
                if (rc == DV_OK)
                    rc = buf_append(out, "\n", 1);
                break;
            case METRICS_HISTOGRAM:
                rc = render_histogram(out, f->name, (struct metrics_histogram *)s);
                break;
            }
        }
        struct cfam *c = find_cfam(w, f->name);
        if (c != NULL && rc == DV_OK) {
            /* A family registered after the collectors ran may not match what they emitted. */
            if (c->type != f->type) {
                dv_errmsg_set(errmsg, "metrics: %s: emitted as %s but registered as %s", f->name,
                              type_name(c->type), type_name(f->type));
                return DV_EINVAL;
            }
            rc = buf_append(out, c->lines.data, c->lines.len);
            c->done = true;
        }
    }
    return rc;
}

int metrics_render(struct metrics *reg, struct buf *out)
{
    size_t start = out->len;
    struct metrics_writer w = {.reg = reg, .err = DV_OK};
    w.tail = &w.fams;
    char errmsg[DV_ERRMSG_SIZE] = "";
    int rc = DV_OK;

    pthread_mutex_lock(&reg->render_mu);
    for (size_t i = 0; i < reg->ncoll && rc == DV_OK; i++) {
        rc = reg->coll[i].fn(reg->coll[i].arg, &w);
        if (rc != DV_OK)
            dv_errmsg_set(errmsg, "metrics: collector %zu failed: %s", i, dv_strerror(rc));
    }
    if (rc == DV_OK) {
        pthread_mutex_lock(&reg->mu);
        rc = render_registered(reg, &w, out, errmsg);
        pthread_mutex_unlock(&reg->mu);
    }
    for (struct cfam *c = w.fams; c != NULL && rc == DV_OK; c = c->next) {
        if (c->done)
            continue;
        rc = render_header(out, c->name, c->help, c->type);
        if (rc == DV_OK)
            rc = buf_append(out, c->lines.data, c->lines.len);
    }
    pthread_mutex_unlock(&reg->render_mu);
    if (rc == DV_OK)
        rc = buf_appendf(out, "%s", ""); /* NUL-terminate */

    if (w.err != DV_OK)
        log_warn("metrics: collector sample dropped", "error=%s reason=%s", dv_errname(w.err),
                 w.errmsg);
    for (struct cfam *c = w.fams; c != NULL;) {
        struct cfam *next = c->next;
        cfam_free(c);
        c = next;
    }
    if (rc != DV_OK) {
        out->len = start;
        if (out->cap > start)
            out->data[start] = '\0';
        log_warn("metrics: render failed", "error=%s reason=%s", dv_errname(rc),
                 errmsg[0] ? errmsg : dv_strerror(rc));
    }
    return rc;
}

/* Reads a small /proc file into `b` (NUL-terminated). False if it cannot be read. */
static bool read_proc(const char *path, char *b, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t r = read(fd, b + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    return n > 0;
}

/* Field `n` of /proc/self/stat as numbered in proc(5) (n >= 3), given the text from the ')'
 * that ends field 2; 0 if missing. */
static unsigned long long stat_field(const char *paren, int n)
{
    const char *p = paren + 1;
    for (int field = 3; *p; field++) {
        while (*p == ' ')
            p++;
        if (field == n)
            return strtoull(p, NULL, 10);
        while (*p && *p != ' ')
            p++;
    }
    return 0;
}

/* Seconds since the epoch at which the system booted (btime in /proc/stat), or 0. */
static double boot_time(void)
{
    char b[8192];
    if (!read_proc("/proc/stat", b, sizeof b))
        return 0;
    const char *p = strstr(b, "\nbtime ");
    return p ? strtod(p + 7, NULL) : 0;
}

/* Counts the open descriptors, less the one opendir() itself holds. -1 if unreadable. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = 0, self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (strtol(e->d_name, NULL, 10) != self)
            n++;
    }
    closedir(d);
    return n;
}

/* The process collector: what cannot be read is left out rather than failing the render. */
static int collect_process(void *arg, struct metrics_writer *w)
{
    char b[4096];
    int rc = DV_OK;
    long page = sysconf(_SC_PAGESIZE), ticks = sysconf(_SC_CLK_TCK);
    unsigned long long size, resident;
    if (read_proc("/proc/self/statm", b, sizeof b) &&
        sscanf(b, "%llu %llu", &size, &resident) == 2) {
        rc = metrics_emit_gauge(w, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                NULL, (double)size * (double)page);
        if (rc == DV_OK)
            rc = metrics_emit_gauge(w, "process_resident_memory_bytes",
                                    "Resident memory size in bytes.", NULL,
                                    (double)resident * (double)page);
    }
    /* The command name may itself hold spaces and parentheses: count fields from its end. */
    const char *p = read_proc("/proc/self/stat", b, sizeof b) ? strrchr(b, ')') : NULL;
    if (p != NULL && ticks > 0) {
        double cpu = (double)(stat_field(p, 14) + stat_field(p, 15)) / (double)ticks;
        rc = metrics_emit_counter(w, "process_cpu_seconds_total",
                                  "Total user and system CPU time spent in seconds.", NULL, cpu);
        double boot = boot_time();
        if (rc == DV_OK && boot > 0)
            rc = metrics_emit_gauge(w, "process_start_time_seconds",
                                    "Start time of the process since unix epoch in seconds.", NULL,
                                    boot + (double)stat_field(p, 22) / (double)ticks);
    }
    long fds = open_fds();
    if (rc == DV_OK && fds >= 0)
        rc = metrics_emit_gauge(w, "process_open_fds", "Number of open file descriptors.", NULL,
                                (double)fds);
    struct rlimit rl;
    if (rc == DV_OK && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        rc = metrics_emit_gauge(w, "process_max_fds", "Maximum number of open file descriptors.",
                                NULL, (double)rl.rlim_cur);
    return rc;
}

int metrics_add_process(struct metrics *reg)
{
    return metrics_add_collector(reg, collect_process, NULL);
}
