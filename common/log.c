/* log.c - structured one-line logging with per-value quoting and a settable threshold. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "clock.h"
#include "err.h"

/* Longest line written; longer events are cut and end in "...". */
#define LOG_LINE_MAX 4096
/* Longest single formatted value before quoting. */
#define LOG_VALUE_MAX 2048

static int threshold = -1; /* -1 until read from the environment */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *out_file; /* NULL: stderr */
static uint64_t (*clock_fn)(void) = clock_wall_ns;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *log_level_name(enum log_level level)
{
    if ((int)level < 0 || (int)level > LOG_LEVEL_ERROR)
        return "unknown";
    return level_names[level];
}

int log_level_parse(const char *s, enum log_level *out)
{
    if (s == NULL)
        return DV_EINVAL;
    for (int i = 0; i <= LOG_LEVEL_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return DV_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return DV_OK;
    }
    return DV_EINVAL;
}

static void env_init(void)
{
    const char *env = getenv("DVEC_LOG_LEVEL");
    enum log_level lvl = LOG_LEVEL_INFO;
    int bad = env != NULL && log_level_parse(env, &lvl) != DV_OK;
    int expect = -1;
    /* An explicit log_set_level() that came first wins over the environment. */
    __atomic_compare_exchange_n(&threshold, &expect, (int)lvl, false, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
    if (bad)
        log_event(LOG_LEVEL_WARN, "ignoring invalid DVEC_LOG_LEVEL", "value=%s", env);
}

static int current_threshold(void)
{
    int t = __atomic_load_n(&threshold, __ATOMIC_RELAXED);
    if (t < 0) {
        pthread_once(&env_once, env_init);
        t = __atomic_load_n(&threshold, __ATOMIC_RELAXED);
    }
    return t;
}

bool log_enabled(enum log_level level)
{
    return (int)level >= current_threshold();
}

void log_set_level(enum log_level level)
{
    __atomic_store_n(&threshold, (int)level, __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
    return (enum log_level)current_threshold();
}

int log_level_from_env(void)
{
    const char *env = getenv("DVEC_LOG_LEVEL");
    enum log_level lvl;
    if (env == NULL)
        return DV_OK;
    if (log_level_parse(env, &lvl) != DV_OK)
        return DV_EINVAL;
    log_set_level(lvl);
    return DV_OK;
}

void log_set_output(FILE *f)
{
    pthread_mutex_lock(&out_lock);
    out_file = f;
    pthread_mutex_unlock(&out_lock);
}

void log_set_clock(uint64_t (*now_ns)(void))
{
    __atomic_store_n(&clock_fn, now_ns != NULL ? now_ns : clock_wall_ns, __ATOMIC_RELAXED);
}

/* A bounded line being built; `cut` records that something did not fit. */
struct line {
    char *p;
    size_t cap, len;
    bool cut;
};

static void put_mem(struct line *l, const char *s, size_t n)
{
    /* Keep 5 bytes for "...\n" and the terminator. */
    size_t room = l->cap > l->len + 5 ? l->cap - l->len - 5 : 0;
    if (n > room) {
        n = room;
        l->cut = true;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void put_str(struct line *l, const char *s)
{
    put_mem(l, s, strlen(s));
}

static void put_ch(struct line *l, char c)
{
    put_mem(l, &c, 1);
}

/* Writes text with control characters escaped, so an event never spans two lines. */
static void put_escaped(struct line *l, const char *s, size_t n, bool quoted)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[4] = {'\\', 0, 0, 0};
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\t')
            esc[1] = 't';
        else if (c == '\r')
            esc[1] = 'r';
        else if (quoted && (c == '"' || c == '\\'))
            esc[1] = (char)c;
        if (esc[1] != 0) {
            put_mem(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 15];
            put_mem(l, esc, 4);
        } else {
            put_ch(l, (char)c);
        }
    }
}

static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '"' || c == '=' || c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/*
 * Formats one printf conversion starting at `*fmt` (just after '%') into v, consuming its
 * arguments from `ap`. Each conversion is handed to snprintf alone, with the argument type
 * its length modifier names, so values can be quoted one by one.
 */
static void format_one(struct line *v, const char **fmt, va_list *ap)
{
    char spec[32];
    size_t n = 0;
    const char *f = *fmt;
    int stars[2], nstars = 0;
    char buf[LOG_VALUE_MAX];

    spec[n++] = '%';
    while (*f != '\0' && strchr("-+ #0'", *f) != NULL && n < 20)
        spec[n++] = *f++;
    if (*f == '*') {
        stars[nstars++] = va_arg(*ap, int);
        spec[n++] = *f++;
    }
    while (*f >= '0' && *f <= '9' && n < 20)
        spec[n++] = *f++;
    if (*f == '.') {
        spec[n++] = *f++;
        if (*f == '*') {
            stars[nstars++] = va_arg(*ap, int);
            spec[n++] = *f++;
        }
        while (*f >= '0' && *f <= '9' && n < 24)
            spec[n++] = *f++;
    }
    /* Length modifier: 0 none, 'H' hh, 'h', 'l', 'L' ll or long double, 'z', 'j', 't'. */
    char len = 0;
    if (f[0] == 'h' && f[1] == 'h') {
        len = 'H';
        spec[n++] = *f++;
        spec[n++] = *f++;
    } else if (f[0] == 'l' && f[1] == 'l') {
        len = 'L';
        spec[n++] = *f++;
        spec[n++] = *f++;
    } else if (*f != '\0' && strchr("hlLqzjt", *f) != NULL) {
        len = *f == 'q' ? 'L' : *f;
        spec[n++] = *f++;
    }
    char conv = *f;
    if (conv == '\0') {
        *fmt = f;
        return;
    }
    f++;
    spec[n++] = conv;
    spec[n] = '\0';
    *fmt = f;

    int w;
#define EMIT(arg)                                                                                  \
    do {                                                                                           \
        if (nstars == 0)                                                                           \
            w = snprintf(buf, sizeof buf, spec, arg);                                              \
        else if (nstars == 1)                                                                      \
            w = snprintf(buf, sizeof buf, spec, stars[0], arg);                                    \
        else                                                                                       \
            w = snprintf(buf, sizeof buf, spec, stars[0], stars[1], arg);                          \
    } while (0)

    switch (conv) {
    case 'd':
    case 'i':
        if (len == 'l')
            EMIT(va_arg(*ap, long));
        else if (len == 'L')
            EMIT(va_arg(*ap, long long));
        else if (len == 'z')
            EMIT(va_arg(*ap, ssize_t));
        else if (len == 'j')
            EMIT(va_arg(*ap, intmax_t));
        else if (len == 't')
            EMIT(va_arg(*ap, ptrdiff_t));
        else
            EMIT(va_arg(*ap, int));
        break;
    case 'u':
    case 'o':
    case 'x':
    case 'X':
        if (len == 'l')
            EMIT(va_arg(*ap, unsigned long));
        else if (len == 'L')
            EMIT(va_arg(*ap, unsigned long long));
        else if (len == 'z')
            EMIT(va_arg(*ap, size_t));
        else if (len == 'j')
            EMIT(va_arg(*ap, uintmax_t));
        else if (len == 't')
            EMIT(va_arg(*ap, ptrdiff_t));
        else
            EMIT(va_arg(*ap, unsigned int));
        break;
    case 'c':
        if (len == 'l')
            EMIT(va_arg(*ap, wint_t));
        else
            EMIT(va_arg(*ap, int));
        break;
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
    case 'a':
    case 'A':
        if (len == 'L')
            EMIT(va_arg(*ap, long double));
        else
            EMIT(va_arg(*ap, double));
        break;
    case 's':
        if (len == 'l') {
            EMIT(va_arg(*ap, const wchar_t *));
        } else {
            const char *s = va_arg(*ap, const char *);
            EMIT(s != NULL ? s : "(null)");
        }
        break;
    case 'p':
        EMIT(va_arg(*ap, void *));
        break;
    case 'n':
        /* Never write through a pointer from a log call. */
        (void)va_arg(*ap, void *);
        return;
    default:
        /* Unknown conversion: show it as written. */
        put_str(v, spec);
        return;
    }
#undef EMIT
    if (w < 0)
        return;
    if ((size_t)w >= sizeof buf) {
        w = (int)sizeof buf - 1;
        v->cut = true;
    }
    put_mem(v, buf, (size_t)w);
}

/* Formats the space-separated key=value tokens of `fields` into l, quoting each value. */
static void format_fields(struct line *l, const char *fields, va_list *ap)
{
    char vbuf[LOG_VALUE_MAX + 8];
    const char *f = fields;

    for (;;) {
        while (*f == ' ')
            f++;
        if (*f == '\0')
            break;
        put_ch(l, ' ');
        /* The key: literal text up to '=' (a token without '=' is written as a value). */
        const char *eq = NULL;
        for (const char *k = f; *k != '\0' && *k != ' ' && *k != '%'; k++) {
            if (*k == '=') {
                eq = k;
                break;
            }
        }
        if (eq != NULL) {
            put_mem(l, f, (size_t)(eq - f + 1));
            f = eq + 1;
        }
        struct line v = {vbuf, sizeof vbuf, 0, false};
        while (*f != '\0' && *f != ' ') {
            if (*f == '%' && f[1] == '%') {
                put_ch(&v, '%');
                f += 2;
            } else if (*f == '%') {
                f++;
                format_one(&v, &f, ap);
            } else {
                put_ch(&v, *f++);
            }
        }
        if (v.cut)
            put_str(&v, "...");
        if (eq != NULL && needs_quotes(v.p, v.len)) {
            put_ch(l, '"');
            put_escaped(l, v.p, v.len, true);
            put_ch(l, '"');
        } else {
            put_escaped(l, v.p, v.len, false);
        }
    }
}

static size_t vformat_line(char *out, size_t cap, uint64_t wall_ns, enum log_level level,
                           const char *msg, const char *fields, va_list ap)
{
    struct line l = {out, cap, 0, false};
    struct tm tm;
    time_t secs = (time_t)(wall_ns / 1000000000ULL);
    unsigned ms = (unsigned)(wall_ns / 1000000ULL % 1000);
    char ts[64];

    if (cap < 8) {
        if (cap > 0)
            out[0] = '\0';
        return 0;
    }
    gmtime_r(&secs, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    put_str(&l, ts);
    put_str(&l, log_level_name(level));
    put_ch(&l, ' ');
    put_escaped(&l, msg, strlen(msg), false);
    if (fields != NULL) {
        va_list ap2;
        va_copy(ap2, ap);
        format_fields(&l, fields, &ap2);
        va_end(ap2);
    }
    if (l.cut) {
        memcpy(l.p + l.len, "...", 3);
        l.len += 3;
    }
    l.p[l.len++] = '\n';
    l.p[l.len] = '\0';
    return l.len;
}

size_t log_format(char *out, size_t cap, uint64_t wall_ns, enum log_level level, const char *msg,
                  const char *fields, ...)
{
    va_list ap;
    va_start(ap, fields);
    size_t n = vformat_line(out, cap, wall_ns, level, msg, fields, ap);
    va_end(ap);
    return n;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a failing log */
        }
        p += w;
        n -= (size_t)w;
    }
}

void log_event(enum log_level level, const char *msg, const char *fields, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;
    uint64_t (*now)(void) = __atomic_load_n(&clock_fn, __ATOMIC_RELAXED);

    va_start(ap, fields);
    size_t n = vformat_line(line, sizeof line, now(), level, msg, fields, ap);
    va_end(ap);

    pthread_mutex_lock(&out_lock);
    if (out_file == NULL || out_file == stderr) {
        /* One write(2) per line: atomic with other processes on a pipe up to PIPE_BUF. */
        write_all(STDERR_FILENO, line, n);
    } else {
        fwrite(line, 1, n, out_file);
        fflush(out_file);
    }
    pthread_mutex_unlock(&out_lock);
}
