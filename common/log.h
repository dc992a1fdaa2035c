/* log.h - one-line structured logs: timestamp, level, message, key=value fields. */
#ifndef DV_LOG_H
#define DV_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
};

/*
 * Usage: log_info("replica opened", "partition=%u points=%zu", 7u, n) writes
 *   2026-11-24T10:00:00.123Z info replica opened partition=7 points=100
 * The message is a fixed string (no formatting); the optional second argument is a printf
 * format of space-separated key=value fields. Each value is formatted on its own and put in
 * double quotes (with \" \\ \n \t escapes) if it is empty or holds a space, a quote, '=' or
 * a control character. Events below the threshold cost one atomic load and do not evaluate
 * their arguments. Each event is one write of one line, so lines from threads never mix.
 */
#define log_debug(msg, ...) LOG_AT_(LOG_LEVEL_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  LOG_AT_(LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  LOG_AT_(LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) LOG_AT_(LOG_LEVEL_ERROR, msg, __VA_ARGS__)

/* The " " prefix lets the fields be omitted (log_info("started")) with a non-empty format. */
#define LOG_AT_(lvl, msg, ...)                                                                     \
    do {                                                                                           \
        if (log_enabled(lvl))                                                                      \
            log_event(lvl, msg, " " __VA_ARGS__);                                                  \
    } while (0)

/* Writes one event at `level` (no threshold check); see the macros above. */
void log_event(enum log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/* True if events at `level` are written under the current threshold. */
bool log_enabled(enum log_level level);

/* Sets the threshold: events below it are dropped. The initial threshold is read from the
 * environment variable DVEC_LOG_LEVEL (debug, info, warn, error), else info. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parses "debug", "info", "warn"/"warning" or "error" (any case). DV_EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *out);

/* Name of a level as it appears in lines: "debug", "info", "warn", "error". */
const char *log_level_name(enum log_level level);

/*
 * Re-reads DVEC_LOG_LEVEL and applies it. DV_OK if unset or valid; DV_EINVAL if it holds
 * something else (the threshold is then left unchanged).
 */
int log_level_from_env(void);

/* Sends lines to `f` instead of stderr (NULL: back to stderr). The caller keeps `f` open
 * for as long as it is set. Thread-safe. */
void log_set_output(FILE *f);

/* Replaces the wall clock used for timestamps (nanoseconds since the epoch); NULL restores
 * the real one. For tests. */
void log_set_clock(uint64_t (*now_ns)(void));

/*
 * Formats the line of one event into `out` (size `cap`, always NUL-terminated, ending in
 * '\n', cut short with "..." if too long) and returns its length. log_event() uses it; it is
 * exposed for tests and for sinks other than a FILE.
 */
size_t log_format(char *out, size_t cap, uint64_t wall_ns, enum log_level level, const char *msg,
                  const char *fields, ...) __attribute__((format(printf, 6, 7)));

#endif
