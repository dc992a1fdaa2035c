/* daemon.h - what every dvec process does the same way: settings from a YAML file and flags,
 * a locked data directory, a watchdog behind a graceful stop. */
#ifndef DV_DAEMON_H
#define DV_DAEMON_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cfg.h"

/*
 * Loads `--config FILE` (wherever it is among the arguments) into obj, then applies every
 * `--KEY VALUE` / `--KEY=VALUE` flag, so flags win. DV_EINVAL and the other cfg codes with
 * errmsg naming the flag or the file's line. --help and --version are the caller's.
 */
int daemon_parse_args(const struct cfg_field *schema, void *obj, int argc, char **argv,
                      char *errmsg);

/*
 * Creates `dir` if needed and holds an exclusive flock on dir/LOCK for the life of the
 * process, writing the pid into it. DV_EBUSY naming the other process's pid when another
 * `program` holds it, DV_EOS otherwise.
 */
int daemon_lock_dir(const char *dir, const char *program, int *fd, char *errmsg);

/* Starts a thread that ends the process with _exit(3) after `ns`, logging why. */
void daemon_watchdog(uint64_t ns);

/*
 * The sequence both daemons (dvec-shard, dvec-coord) run in main(), once:
 *   if (daemon_info(argc, argv, &spec)) return 0;          --help / --version
 *   daemon_config(&spec, schema, &cfg, &cfg.data_dir, ...)  defaults, file, flags, data_dir
 *   (the program's own checks of its settings)
 *   daemon_start(&d, &spec, cfg.log_level, cfg.data_dir)    logging, signals, the dir lock
 *   (start serving)
 *   daemon_wait(&d, tick, arg, cfg.shutdown_timeout_ns)     SIGTERM / SIGINT, then the watchdog
 *   (graceful stop)
 *   daemon_end(&d)                                          the lock goes with the process
 * Errors are printed as "<program>: <message>" on stderr; the caller exits with status 2.
 */
struct daemon_spec {
    const char *program;      /* "dvec-shard" */
    const char *version;      /* printed by --version with the protocol version */
    int protocol;             /* PROTO_VERSION */
    void (*usage)(FILE *out); /* printed by --help / -h */
};

struct daemon {
    const struct daemon_spec *spec;
    sigset_t stop; /* SIGTERM and SIGINT, blocked in every thread, taken by daemon_wait */
    int lock_fd;
};

/* --help / -h prints the usage, --version the version line; true when one did (exit 0). */
bool daemon_info(int argc, char **argv, const struct daemon_spec *spec);

/*
 * Fills obj with the schema's defaults, then the config file and the flags
 * (daemon_parse_args), and checks that *data_dir (a field of obj) is set. DV_* with the
 * message printed on stderr.
 */
int daemon_config(const struct daemon_spec *spec, const struct cfg_field *schema, void *obj,
                  int argc, char **argv, char *const *data_dir);

/*
 * Sets the log level (DVEC_LOG_LEVEL, when set, wins over `log_level`), ignores SIGPIPE (a
 * write to a dead peer must not kill a server: LIBRARY-NOTES, raft bug 1), blocks SIGTERM and
 * SIGINT in this thread and the threads it starts from now on (daemon_wait takes them), and
 * locks data_dir (daemon_lock_dir). Call before starting any thread. DV_* with the message
 * printed on stderr and logged.
 */
int daemon_start(struct daemon *d, const struct daemon_spec *spec, int log_level,
                 const char *data_dir);

/*
 * Waits for SIGTERM or SIGINT, running tick(arg) (may be NULL) about once a second meanwhile;
 * then logs "stopping" and arms the watchdog (daemon_watchdog(shutdown_ns)) behind the
 * graceful stop that follows. Returns the signal.
 */
int daemon_wait(struct daemon *d, void (*tick)(void *arg), void *arg, uint64_t shutdown_ns);

/* Releases the data directory's lock (at the very end of a graceful stop). */
void daemon_end(struct daemon *d);

#endif
