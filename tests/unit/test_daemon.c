/* test_daemon.c - the processes' settings (schemas, file + flags) and the data dir lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "coord_cfg.h"
#include "daemon.h"
#include "err.h"
#include "shard_cfg.h"

static void test_schemas(void **state)
{
    (void)state;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(cfg_check_schema(shard_cfg_schema, err), DV_OK);
    assert_int_equal(cfg_check_schema(coord_cfg_schema, err), DV_OK);
    struct shard_cfg s;
    struct coord_cfg c;
    assert_int_equal(cfg_defaults(shard_cfg_schema, &s), DV_OK);
    assert_int_equal(cfg_defaults(coord_cfg_schema, &c), DV_OK);
    assert_string_equal(s.listen, "tcp://127.0.0.1:7400");
    assert_int_equal(s.max_message, 64u << 20);
    assert_int_equal(c.election_timeout_ns, 150000000ull);
    assert_int_equal(c.group.n, 1);
    cfg_free(shard_cfg_schema, &s);
    cfg_free(coord_cfg_schema, &c);
}

/* A file, then flags that override it, wherever --config is. */
static void test_file_then_flags(void **state)
{
    (void)state;
    char path[] = "/tmp/dvec-daemon-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml = "data_dir: /tmp/from-file\nworkers: 3\ncheckpoint:\n  interval: 2m\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    struct shard_cfg s;
    char err[DV_ERRMSG_SIZE];
    assert_int_equal(cfg_defaults(shard_cfg_schema, &s), DV_OK);
    char *argv[] = {"dvec-shard", "--workers", "5", "--config", path, "--log_level=warn", NULL};
    assert_int_equal(daemon_parse_args(shard_cfg_schema, &s, 6, argv, err), DV_OK);
    assert_string_equal(s.data_dir, "/tmp/from-file");
    assert_int_equal(s.workers, 5);                        /* the flag wins */
    assert_int_equal(s.ckpt_interval_ns, 120000000000ull); /* from the file */
    assert_int_equal(s.log_level, 2);
    cfg_free(shard_cfg_schema, &s);
    unlink(path);
}

static void expect_error(char **argv, int argc, int code, const char *text)
{
    struct coord_cfg c;
    char err[DV_ERRMSG_SIZE] = "";
    assert_int_equal(cfg_defaults(coord_cfg_schema, &c), DV_OK);
    int rc = daemon_parse_args(coord_cfg_schema, &c, argc, argv, err);
    if (rc != code || strstr(err, text) == NULL)
        fail_msg("got %s \"%s\", want %s with \"%s\"", dv_errname(rc), err, dv_errname(code), text);
    cfg_free(coord_cfg_schema, &c);
}

static void test_bad_flags(void **state)
{
    (void)state;
    char *a1[] = {"dvec-coord", "--no_such_key", "1", NULL};
    expect_error(a1, 3, DV_EUNKNOWN_KEY, "--no_such_key");
    char *a2[] = {"dvec-coord", "--workers", NULL};
    expect_error(a2, 2, DV_EINVAL, "--workers needs a value");
    char *a3[] = {"dvec-coord", "--raft.election_timeout", "5", NULL};
    expect_error(a3, 3, DV_ETYPE, "expected a duration");
    char *a4[] = {"dvec-coord", "stray", NULL};
    expect_error(a4, 2, DV_EINVAL, "unexpected argument 'stray'");
    char *a5[] = {"dvec-coord", "--config", "/nonexistent/dvec.yaml", NULL};
    expect_error(a5, 3, DV_EOS, "/nonexistent/dvec.yaml");
}

/* A second holder of the lock (another process) is refused, naming the first one's pid. */
static void test_lock(void **state)
{
    (void)state;
    char dir[] = "/tmp/dvec-lock-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[DV_ERRMSG_SIZE];
    int fd;
    assert_int_equal(daemon_lock_dir(dir, "dvec-test", &fd, err), DV_OK);
    pid_t child = fork();
    if (child == 0) {
        int fd2;
        char e2[DV_ERRMSG_SIZE];
        char pid[32];
        snprintf(pid, sizeof pid, "pid %ld", (long)getppid());
        int rc = daemon_lock_dir(dir, "dvec-test", &fd2, e2);
        _exit(rc == DV_EBUSY && strstr(e2, "in use by another dvec-test") && strstr(e2, pid) ? 0
                                                                                             : 1);
    }
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fd);
    char lock[64];
    snprintf(lock, sizeof lock, "%s/LOCK", dir);
    unlink(lock);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemas),
        cmocka_unit_test(test_file_then_flags),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
