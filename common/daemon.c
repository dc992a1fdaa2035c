/* daemon.c - settings from file and flags, the data dir lock, the shutdown watchdog. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "daemon.h"
#include "err.h"
#include "log.h"

int daemon_parse_args(const struct cfg_field *schema, void *obj, int argc, char **argv,
                      char *errmsg)
{
    /* The file first, whatever its position, so flags override it. */
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
        if (path) {
            int rc = cfg_load_file(schema, obj, path, errmsg);
            if (rc != DV_OK)
                return rc;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        if (strncmp(a, "--", 2) != 0) {
            dv_errmsg_set(errmsg, "unexpected argument '%s' (see --help)", a);
            return DV_EINVAL;
        }
        a += 2;
        int rc;
        const char *eq = strchr(a, '=');
        if (eq) {
            rc = cfg_set_arg(schema, obj, a, errmsg);
        } else {
            if (i + 1 >= argc) {
                dv_errmsg_set(errmsg, "--%s needs a value", a);
                return DV_EINVAL;
            }
            rc = cfg_set(schema, obj, a, argv[++i], errmsg);
        }
        if (rc != DV_OK) {
            dv_errmsg_prefix(errmsg, "--%.*s", (int)(eq ? eq - a : (long)strlen(a)), a);
            return rc;
        }
    }
    return DV_OK;
}

int daemon_lock_dir(const char *dir, const char *program, int *fd_out, char *errmsg)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        dv_errmsg_set(errmsg, "data_dir %s: %s", dir, strerror(errno));
        return DV_EOS;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        dv_errmsg_set(errmsg, "%s: %s", path, strerror(errno));
        return DV_EOS;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char other[32] = "";
        ssize_t k = pread(fd, other, sizeof other - 1, 0);
        other[k > 0 ? k : 0] = '\0';
        other[strcspn(other, "\n")] = '\0';
        dv_errmsg_set(errmsg,
                      "data dir %s is in use by another %s (pid %s); stop it first or "
                      "choose another data_dir",
                      dir, program, other[0] ? other : "unknown");
        close(fd);
        return DV_EBUSY;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        log_warn("cannot write pid to LOCK", "path=%s", path);
    *fd_out = fd;
    return DV_OK;
}

static uint64_t watchdog_ns;

static void *watchdog_main(void *arg)
{
    (void)arg;
    clock_sleep_ns(watchdog_ns);
    log_error("shutdown took longer than shutdown_timeout; exiting now", "timeout_ms=%" PRIu64,
              watchdog_ns / 1000000);
    _exit(3);
    return NULL;
}

void daemon_watchdog(uint64_t ns)
{
    pthread_t t;
    watchdog_ns = ns;
    if (pthread_create(&t, NULL, watchdog_main, NULL) == 0)
        pthread_detach(t);
}

bool daemon_info(int argc, char **argv, const struct daemon_spec *spec)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            spec->usage(stdout);
            return true;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s (protocol %d)\n", spec->program, spec->version, spec->protocol);
            return true;
        }
    }
    return false;
}

int daemon_config(const struct daemon_spec *spec, const struct cfg_field *schema, void *obj,
                  int argc, char **argv, char *const *data_dir)
{
    char err[DV_ERRMSG_SIZE];
    int rc = cfg_defaults(schema, obj);
    if (rc != DV_OK) {
        fprintf(stderr, "%s: bad built-in defaults\n", spec->program);
        return rc;
    }
    rc = daemon_parse_args(schema, obj, argc, argv, err);
    if (rc == DV_OK && (*data_dir == NULL || (*data_dir)[0] == '\0')) {
        dv_errmsg_set(err, "data_dir is not set (in the config file or --data_dir DIR)");
        rc = DV_EINVAL;
    }
    if (rc != DV_OK)
        fprintf(stderr, "%s: %s\n", spec->program, err);
    return rc;
}

int daemon_start(struct daemon *d, const struct daemon_spec *spec, int log_level,
                 const char *data_dir)
{
    char err[DV_ERRMSG_SIZE];
    d->spec = spec;
    d->lock_fd = -1;
    log_set_level((enum log_level)log_level);
    log_level_from_env();
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&d->stop);
    sigaddset(&d->stop, SIGTERM);
    sigaddset(&d->stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &d->stop, NULL);
    int rc = daemon_lock_dir(data_dir, spec->program, &d->lock_fd, err);
    if (rc != DV_OK) {
        fprintf(stderr, "%s: %s\n", spec->program, err);
        log_error("cannot start", "error=%s", err);
    }
    return rc;
}

int daemon_wait(struct daemon *d, void (*tick)(void *arg), void *arg, uint64_t shutdown_ns)
{
    int sig;
    for (;;) {
        struct timespec t = {1, 0};
        sig = sigtimedwait(&d->stop, NULL, &t);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (tick)
            tick(arg);
    }
    log_info("stopping", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    daemon_watchdog(shutdown_ns);
    return sig;
}

void daemon_end(struct daemon *d)
{
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    d->lock_fd = -1;
}
