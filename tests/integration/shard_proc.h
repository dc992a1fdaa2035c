/* shard_proc.h - integration tests: start, signal and reap real dvec-shard processes on
 * 127.0.0.1, each in its own temporary directory, and a plain-socket HTTP GET. */
#ifndef DV_SHARD_PROC_H
#define DV_SHARD_PROC_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "mpk.h"
#include "rpc.h"

#define SP_MAX_EXTRA 16 /* extra flags of one process */
#define SP_MAX_PROCS 16 /* processes alive at once in one test */

/*
 * One dvec-shard. Its directory `base` (mkdtemp under /tmp) holds the data dir `data` and one
 * log file per run (the child's stdout and stderr). Ports are chosen by sp_start and kept
 * across restarts of the same process so clients can reconnect.
 */
struct sp_proc {
    pid_t pid;   /* 0: not running */
    int status;  /* wait status of the last run that ended */
    bool exited; /* the last run ended and was reaped */
    char base[64];
    char data[96];
    char log[128]; /* log of the current (or last) run */
    char url[64];  /* tcp://127.0.0.1:PORT */
    char http_url[64];
    char search_url[64];                   /* the search port, tcp://127.0.0.1:PORT */
    uint16_t port, http_port, search_port; /* http_port 0: HTTP disabled */
    char node_id[64];                      /* unique: a hello proves which process answered */
    bool http;
    const char *extra[SP_MAX_EXTRA];
    size_t n_extra;
    int runs;
};

/* Set by main() from argv: the dvec-shard executable. */
static const char *sp_exe;
static uint16_t sp_next_port;
/* Processes live here, not on a test's stack: a failed assertion leaves the test function
 * (longjmp) and the teardown must still find every PID it has to kill. */
static struct sp_proc sp_pool[SP_MAX_PROCS];
static bool sp_used[SP_MAX_PROCS];

/* First port of this test run: a range of 16 per PID below the ephemeral range, so parallel
 * runs rarely collide (and a collision is retried on another port). DVEC_ITEST_PORT sets it
 * (to debug, or to check the retry). */
static inline void sp_init_ports(void)
{
    const char *env = getenv("DVEC_ITEST_PORT");
    long v = env ? strtol(env, NULL, 10) : 0;
    sp_next_port =
        v >= 1024 && v < 32000 ? (uint16_t)v : (uint16_t)(10000 + (getpid() % 1400) * 16);
}

static inline uint16_t sp_port(void)
{
    uint16_t p = sp_next_port++;
    if (sp_next_port >= 32700)
        sp_next_port = 10000;
    return p;
}

/* Prepares (does not start) a process with its own temp dir; `http` enables the HTTP port.
 * Extra flags (string literals or strings outliving the process) are passed on every start.
 * NULL when the pool is full (a mistake of the test). */
static inline struct sp_proc *sp_new(bool http, const char *const *extra, size_t n_extra)
{
    for (int i = 0; i < SP_MAX_PROCS; i++) {
        if (sp_used[i])
            continue;
        struct sp_proc *p = &sp_pool[i];
        memset(p, 0, sizeof *p);
        snprintf(p->base, sizeof p->base, "/tmp/dvec-itest-XXXXXX");
        if (mkdtemp(p->base) == NULL)
            return NULL;
        sp_used[i] = true;
        char data[sizeof p->data]; /* not straight into p: -Wrestrict sees one object */
        snprintf(data, sizeof data, "%s/data", p->base);
        memcpy(p->data, data, sizeof data);
        p->http = http;
        static unsigned seq;
        snprintf(p->node_id, sizeof p->node_id, "itest-%ld-%u", (long)getpid(), ++seq);
        for (size_t j = 0; j < n_extra && j < SP_MAX_EXTRA; j++) {
            p->extra[p->n_extra++] = extra[j];
            if (strcmp(extra[j], "--node_id") == 0 && j + 1 < n_extra) /* the last one wins */
                snprintf(p->node_id, sizeof p->node_id, "%s", extra[j + 1]);
        }
        return p;
    }
    return NULL;
}

/* Runs the child: output to `log`, argv as given. Only async-signal-safe calls after fork. */
static inline pid_t sp_fork_exec(char *const *argv, const char *log)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    execv(argv[0], argv);
    _exit(127);
}

/* Reaps p if it has exited; true when it is not running (anymore). */
static inline bool sp_reap(struct sp_proc *p)
{
    if (p->pid == 0)
        return true;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->status = r == p->pid ? st : -1;
        p->exited = true;
        p->pid = 0;
        return true;
    }
    return false;
}

/* Waits up to timeout_ms for p to exit; true when it did (p->status holds its wait status). */
static inline bool sp_wait_exit(struct sp_proc *p, uint64_t timeout_ms)
{
    uint64_t end = clock_mono_ms() + timeout_ms;
    while (!sp_reap(p)) {
        if (clock_mono_ms() >= end)
            return false;
        clock_sleep_ms(5);
    }
    return true;
}

/* Sends sig to the process (only to a PID this test started and has not reaped). */
static inline void sp_signal(struct sp_proc *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

/*
 * A per-case watchdog: a case (with its teardown) that runs longer than SP_CASE_LIMIT_S is
 * stuck, not slow. The alarm kills every child this binary started, says so on stderr and
 * exits 1, so a hang is a named failure within seconds instead of meson's kill minutes later.
 * Use sp_case_setup as the cmocka setup of every case. Long runs made on purpose (a kill loop
 * of 100 cycles) set DVEC_ITEST_CASE_LIMIT (seconds).
 */
#define SP_CASE_LIMIT_S 150

static void sp_on_alarm(int sig)
{
    (void)sig;
    static const char text[] = "integration test: a case ran over its time limit (hung); "
                               "its processes are killed\n";
    for (int i = 0; i < SP_MAX_PROCS; i++)
        if (sp_used[i] && sp_pool[i].pid > 0)
            kill(sp_pool[i].pid, SIGKILL);
    if (write(STDERR_FILENO, text, sizeof text - 1) < 0)
        _exit(1);
    _exit(1);
}

static inline int sp_case_setup(void **state)
{
    (void)state;
    signal(SIGALRM, sp_on_alarm);
    const char *env = getenv("DVEC_ITEST_CASE_LIMIT");
    unsigned limit = env && atoi(env) > 0 ? (unsigned)atoi(env) : SP_CASE_LIMIT_S;
    alarm(limit);
    return 0;
}

/* SIGKILL and reap: for teardown and for crash tests. */
static inline void sp_kill9(struct sp_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
            ;
        p->exited = true;
        p->pid = 0;
    }
}

/* Reads a whole (small) file into `out` as text; missing file: empty. */
static inline void sp_read_file(const char *path, struct buf *out)
{
    buf_reset(out);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char tmp[4096];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
            buf_append(out, tmp, n);
        fclose(f);
    }
    buf_append(out, "", 1);
    out->len--;
}

/* Prints the last lines of the current run's log as TAP comments (for failure diagnosis). */
static inline void sp_dump_log(const struct sp_proc *p, size_t max_bytes)
{
    struct buf b = BUF_INIT;
    sp_read_file(p->log, &b);
    const char *s = b.len > max_bytes ? (const char *)b.data + b.len - max_bytes
                                      : (const char *)(b.data ? b.data : (uint8_t *)"");
    printf("# --- %s (last %zu bytes)\n", p->log, max_bytes);
    while (*s) {
        const char *nl = strchr(s, '\n');
        int len = nl ? (int)(nl - s) : (int)strlen(s);
        printf("#   %.*s\n", len, s);
        s += len + (nl != NULL);
    }
    fflush(stdout);
    buf_free(&b);
}

/* Sends a hello with a short timeout; DV_OK when the node answers with node id `id` (another
 * process on that port is DV_EEXIST). */
static inline int sp_hello(const char *url, const char *id, uint32_t timeout_ms)
{
    struct rpc_opts o;
    struct rpc *r;
    char err[DV_ERRMSG_SIZE];
    rpc_opts_default(&o);
    o.timeout_ms = timeout_ms;
    int rc = rpc_open(url, &o, &r, err);
    if (rc != DV_OK)
        return rc;
    struct msg req = {.type = MSG_HELLO};
    struct msg_reply rep;
    rc = rpc_call(r, &req, &rep, err);
    if (rc == DV_OK && (rep.m.u.hello_rep.node_id.len != strlen(id) ||
                        memcmp(rep.m.u.hello_rep.node_id.p, id, strlen(id)) != 0))
        rc = DV_EEXIST;
    msg_reply_free(&rep);
    rpc_close(r);
    return rc;
}

/*
 * Starts p (again, on its data dir) and waits until it answers a hello (at most 20 s).
 * The first start picks ports; when the process exits saying an address is in use, it is
 * retried on other ports. Returns DV_OK, or DV_EOS when the process exited (p->status) or
 * DV_ETIMEDOUT when it never answered (it is then killed).
 */
static inline int sp_start(struct sp_proc *p)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        if (p->port == 0 || attempt > 0) {
            p->port = sp_port();
            p->http_port = p->http ? sp_port() : 0;
            p->search_port = sp_port();
        }
        snprintf(p->search_url, sizeof p->search_url, "tcp://127.0.0.1:%u",
                 (unsigned)p->search_port);
        snprintf(p->url, sizeof p->url, "tcp://127.0.0.1:%u", (unsigned)p->port);
        if (p->http)
            snprintf(p->http_url, sizeof p->http_url, "http://127.0.0.1:%u",
                     (unsigned)p->http_port);
        else
            p->http_url[0] = '\0';
        snprintf(p->log, sizeof p->log, "%s/log.%d", p->base, ++p->runs);
        const char *argv[12 + SP_MAX_EXTRA] = {
            sp_exe,      "--data_dir", p->data,    "--listen",        p->url,       "--http",
            p->http_url, "--node_id",  p->node_id, "--search_listen", p->search_url};
        size_t n = 11;
        for (size_t i = 0; i < p->n_extra; i++)
            argv[n++] = p->extra[i];
        argv[n] = NULL;
        p->exited = false;
        p->pid = sp_fork_exec((char *const *)argv, p->log);
        if (p->pid < 0) {
            p->pid = 0;
            return DV_EOS;
        }
        uint64_t end = clock_mono_ms() + 20000;
        bool retry = false;
        while (clock_mono_ms() < end) {
            if (sp_reap(p)) {
                struct buf b = BUF_INIT;
                sp_read_file(p->log, &b);
                const char *t = (const char *)b.data;
                retry = strstr(t, "in use") != NULL && strstr(t, "by another dvec-shard") == NULL;
                buf_free(&b);
                break;
            }
            if (sp_hello(p->url, p->node_id, 250) == DV_OK)
                return DV_OK;
            clock_sleep_ms(10); /* e.g. another process answered on this port */
        }
        if (!retry) {
            if (p->pid > 0) {
                sp_kill9(p);
                sp_dump_log(p, 2000);
                return DV_ETIMEDOUT;
            }
            sp_dump_log(p, 2000);
            return DV_EOS;
        }
        printf("# %s: address in use, retrying on other ports\n", p->url);
    }
    return DV_EOS;
}

/* Kills every process still running (SIGKILL, reaped) and removes every temp dir. */
static inline void sp_cleanup_all(void)
{
    for (int i = 0; i < SP_MAX_PROCS; i++) {
        if (!sp_used[i])
            continue;
        struct sp_proc *p = &sp_pool[i];
        sp_kill9(p);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->base);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", p->base);
        sp_used[i] = false;
    }
}

/*
 * Runs dvec-shard with `args` (NULL-terminated) to completion (killed after timeout_ms), its
 * output (stdout and stderr) into `out`. Returns the wait status, or -1 on timeout.
 */
static inline int sp_run(const char *const *args, uint64_t timeout_ms, struct buf *out)
{
    char dir[] = "/tmp/dvec-itest-run-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return -1;
    char log[64];
    snprintf(log, sizeof log, "%s/out", dir);
    const char *argv[64] = {sp_exe};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct sp_proc p = {.exited = false};
    p.pid = sp_fork_exec((char *const *)argv, log);
    int st = -1;
    if (p.pid > 0) {
        if (sp_wait_exit(&p, timeout_ms))
            st = p.status;
        else
            sp_kill9(&p);
    }
    sp_read_file(log, out);
    unlink(log);
    rmdir(dir);
    return st;
}

/* True when something accepts TCP connections on 127.0.0.1:port right now. */
static inline bool sp_port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/*
 * GET `path` from 127.0.0.1:port over HTTP/1.1 (Connection: close). *status gets the status
 * code, `body` the body (Content-Length or chunked or up to EOF). DV_EOS on socket errors,
 * DV_EPROTO when the response does not parse.
 */
static inline int sp_http_get(uint16_t port, const char *path, int *status, struct buf *body)
{
    buf_reset(body);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return DV_EOS;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return DV_EOS;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n", path,
                     (unsigned)port);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return DV_EOS;
    }
    struct buf raw = BUF_INIT;
    char tmp[8192];
    size_t need = SIZE_MAX; /* total bytes of a Content-Length response, once known */
    for (;;) {
        ssize_t k = recv(fd, tmp, sizeof tmp, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        buf_append(&raw, tmp, (size_t)k);
        buf_append(&raw, "", 1);
        raw.len--;
        const char *hdr_end = strstr((const char *)raw.data, "\r\n\r\n");
        if (need == SIZE_MAX && hdr_end) {
            const char *cl = strcasestr((const char *)raw.data, "\r\ncontent-length:");
            if (cl && cl < hdr_end)
                need = (size_t)(hdr_end + 4 - (const char *)raw.data) + strtoul(cl + 17, NULL, 10);
        }
        if (raw.len >= need)
            break;
    }
    close(fd);
    int rc = DV_EPROTO;
    const char *s = (const char *)raw.data;
    const char *hdr_end = s ? strstr(s, "\r\n\r\n") : NULL;
    if (hdr_end == NULL || sscanf(s, "HTTP/1.%*d %d", status) != 1)
        goto out;
    const char *b = hdr_end + 4, *end = s + raw.len;
    const char *te = strcasestr(s, "\r\ntransfer-encoding: chunked");
    if (te && te < hdr_end) {
        while (b < end) {
            char *next;
            unsigned long len = strtoul(b, &next, 16);
            const char *data = strstr(next, "\r\n");
            if (data == NULL)
                goto out;
            data += 2;
            if (len == 0)
                break;
            if ((size_t)(end - data) < len)
                goto out;
            buf_append(body, data, len);
            b = data + len + 2;
        }
    } else {
        buf_append(body, b, (size_t)(end - b));
    }
    buf_append(body, "", 1);
    body->len--;
    rc = DV_OK;
out:
    buf_free(&raw);
    return rc;
}

/* A string field of a payload into out ("" when absent or not a string). */
static inline void sp_payload_str(const struct msg_bytes *pl, const char *key, char *out,
                                  size_t cap)
{
    const uint8_t *v;
    size_t vl;
    struct mpk r;
    const char *s;
    uint32_t n;
    out[0] = '\0';
    if (pl->p == NULL || mpk_map_find(pl->p, pl->len, key, strlen(key), &v, &vl) != DV_OK)
        return;
    mpk_init(&r, v, vl);
    if (mpk_str(&r, &s, &n) == DV_OK)
        snprintf(out, cap, "%.*s", (int)n, s);
}

#endif
