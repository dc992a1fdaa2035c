/* metrics.h - a registry of Prometheus metric families (counters, gauges, histograms). */
#ifndef DV_METRICS_H
#define DV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * A registry holds families (name, help, type), each with any number of series (label sets).
 * Creating or looking up a series takes a mutex and belongs at setup time; recording on a
 * series (counter add, gauge set/add, histogram observe) is lock-free (C11 atomics) and safe
 * from any number of threads. Series live until metrics_free() and must not be NULL.
 *
 * Labels are a NULL-terminated flat array of name/value pairs, or NULL for none:
 *   const char *lbl[] = {"op", "search", "outcome", "ok", NULL};
 * Every series of a family has the same label names in the same order. Metric names match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__";
 * "le" is reserved. Values may hold any bytes and are escaped on output.
 *
 * Functions that take `errmsg` (DV_ERRMSG_SIZE bytes, may be NULL) explain a failure there.
 */
enum metrics_type {
    METRICS_COUNTER = 0,
    METRICS_GAUGE = 1,
    METRICS_HISTOGRAM = 2,
};

/* Most labels one series may carry. */
#define METRICS_MAX_LABELS 16
/* Most bucket bounds of one histogram (+Inf is implicit and not counted). */
#define METRICS_MAX_BUCKETS 64

struct metrics;
struct metrics_counter;
struct metrics_gauge;
struct metrics_histogram;
struct metrics_writer;

/* Default latency bucket bounds in seconds: 0.0001 .. 10. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_nbuckets;

/* Makes an empty registry. DV_ENOMEM. */
int metrics_new(struct metrics **out);

/* Frees the registry, its series and its collectors. No other call on it may be running. */
void metrics_free(struct metrics *reg);

/*
 * Returns the series of counter family `name` with `labels`, creating the family and the
 * series as needed. A name that does not end in "_total" gets it appended (the exposed
 * family is then "<name>_total"). DV_EINVAL for a bad name or label, or a family of that name
 * with another type, help or label names; DV_ENOMEM.
 */
int metrics_counter(struct metrics *reg, const char *name, const char *help,
                    const char *const *labels, struct metrics_counter **out, char *errmsg);

/* As metrics_counter() for a gauge (the name is used as given). */
int metrics_gauge(struct metrics *reg, const char *name, const char *help,
                  const char *const *labels, struct metrics_gauge **out, char *errmsg);

/*
 * As metrics_counter() for a histogram with `nbounds` finite, strictly ascending bucket upper
 * bounds (an +Inf bucket is added); bounds == NULL means metrics_latency_buckets. Every series
 * of a family has the same bounds (DV_EINVAL otherwise). The registry copies the bounds.
 */
int metrics_histogram(struct metrics *reg, const char *name, const char *help, const double *bounds,
                      size_t nbounds, const char *const *labels, struct metrics_histogram **out,
                      char *errmsg);

/* Recording: lock-free, any thread. */
void metrics_counter_add(struct metrics_counter *c, uint64_t n);
void metrics_counter_inc(struct metrics_counter *c);
uint64_t metrics_counter_value(const struct metrics_counter *c);

void metrics_gauge_set(struct metrics_gauge *g, double v);
void metrics_gauge_add(struct metrics_gauge *g, double delta);
double metrics_gauge_value(const struct metrics_gauge *g);

/* Counts `v` in the first bucket whose bound is >= v and adds it to the sum. NaN is ignored. */
void metrics_histogram_observe(struct metrics_histogram *h, double v);
/* Number of observations so far (the sum of all buckets). */
uint64_t metrics_histogram_count(const struct metrics_histogram *h);

/*
 * A collector computes samples at render time (one gauge per replica, process memory, ...)
 * and hands them to the writer with metrics_emit*(). It returns DV_OK or an error, which
 * makes metrics_render() fail with that code. Collectors run one render at a time, without
 * the registry's mutex held, on the rendering thread (an nng thread when served by httpd:
 * keep them quick); they must not call metrics_render(), metrics_add_collector() or
 * metrics_remove_collector().
 */
typedef int (*metrics_collect_fn)(void *arg, struct metrics_writer *w);

/* Adds a collector; collectors run in the order added. The caller keeps `arg` valid until
 * it removes the collector or frees the registry. DV_ENOMEM. */
int metrics_add_collector(struct metrics *reg, metrics_collect_fn fn, void *arg);

/* Removes the first collector added with this fn and arg; when it returns, that collector is
 * not running and will not run again. DV_ENOTFOUND if there is none. */
int metrics_remove_collector(struct metrics *reg, metrics_collect_fn fn, void *arg);

/*
 * Emits one sample of a counter or gauge family from a collector. Samples of one family name
 * are grouped under one HELP/TYPE block whichever collector emits them, and merged with a
 * registered family of that name. Counter names get "_total" appended as in
 * metrics_counter(). DV_EINVAL (the sample is dropped, the reason kept for metrics_render())
 * for a bad name or label, METRICS_HISTOGRAM, a clash in type, help or label names with
 * another family, or a label set already emitted for the family; DV_ENOMEM.
 */
int metrics_emit(struct metrics_writer *w, enum metrics_type type, const char *name,
                 const char *help, const char *const *labels, double value);
int metrics_emit_gauge(struct metrics_writer *w, const char *name, const char *help,
                       const char *const *labels, double value);
int metrics_emit_counter(struct metrics_writer *w, const char *name, const char *help,
                         const char *const *labels, double value);

/*
 * Adds a collector of the standard process metrics, read from /proc at render time:
 * process_resident_memory_bytes, process_virtual_memory_bytes, process_cpu_seconds_total,
 * process_open_fds, process_max_fds and process_start_time_seconds. DV_ENOMEM.
 */
int metrics_add_process(struct metrics *reg);

/*
 * Appends the Prometheus text exposition (format 0.0.4) of every family to `out`: registered
 * families in the order they were created, then families only collectors emitted, in the
 * order first emitted; each once, with # HELP and # TYPE. Histograms give cumulative
 * <name>_bucket{le="..."} lines ending in le="+Inf", then <name>_sum and <name>_count.
 * Runs the collectors; renders are serialized. On error (a collector's code, DV_ENOMEM)
 * `out` is left as it was and the reason is logged at warn level.
 */
int metrics_render(struct metrics *reg, struct buf *out);

#endif
