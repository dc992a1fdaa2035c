/* daemon.h - what every dvec process does the same way: settings from a YAML file and flags,
 * a locked data directory, a watchdog behind a graceful stop. */
#ifndef DV_DAEMON_H
#define DV_DAEMON_H

#include <stdint.h>

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

#endif
