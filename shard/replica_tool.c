/* replica_tool.c - `dvec-replica`: inspect, check, checkpoint and repair a replica directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "part.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: dvec-replica info DIR        open the replica, print what it holds\n"
        "       dvec-replica check DIR       exit 0 when it opens, 1 (with the reason) when not\n"
        "       dvec-replica checkpoint DIR  write a checkpoint and drop the WAL it covers\n"
        "       dvec-replica repair DIR      cut the WAL at its first damaged record\n"
        "\n"
        "Stop the dvec-shard that owns DIR first. Opening replays the WAL and cuts a torn\n"
        "tail (a record half-written by a crash). repair drops every record from the first\n"
        "damaged one on: the points those writes touched revert to their earlier state, so\n"
        "restore the replica from another replica instead when one exists.\n");
}

static const char *metric_name(enum hnsw_metric m)
{
    switch (m) {
    case HNSW_L2:
        return "euclid";
    case HNSW_IP:
        return "dot";
    case HNSW_COSINE:
        return "cosine";
    default:
        return "manhattan";
    }
}

static int open_replica(const char *dir, struct part **p)
{
    char err[DV_ERRMSG_SIZE];
    struct part_opts o;
    part_opts_default(&o);
    o.background = false;
    int rc = part_open(io_posix(), dir, &o, p, err);
    if (rc != DV_OK) {
        fprintf(stderr, "dvec-replica: %s (%s)\n", err, dv_errname(rc));
        if (rc == DV_ECORRUPT && strstr(err, "wal:") != NULL)
            fprintf(stderr, "dvec-replica: `dvec-replica repair %s` cuts the WAL there\n", dir);
    }
    return rc;
}

int main(int argc, char **argv)
{
    char err[DV_ERRMSG_SIZE];
    struct part *p;
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 3) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1], *dir = argv[2];
    if (getenv("DVEC_LOG_LEVEL") == NULL)
        log_set_level(LOG_LEVEL_WARN);
    if (strcmp(cmd, "repair") == 0) {
        int rc = part_repair(io_posix(), dir, err);
        if (rc != DV_OK) {
            fprintf(stderr, "dvec-replica: repair: %s (%s)\n", err, dv_errname(rc));
            return 1;
        }
        printf("%s\n", err[0] ? err : "nothing to repair");
        if (open_replica(dir, &p) != DV_OK)
            return 1;
        part_close(p);
        printf("replica opens\n");
        return 0;
    }
    if (strcmp(cmd, "info") != 0 && strcmp(cmd, "check") != 0 && strcmp(cmd, "checkpoint") != 0) {
        usage(stderr);
        return 2;
    }
    if (open_replica(dir, &p) != DV_OK)
        return 1;
    int rc = 0;
    if (strcmp(cmd, "checkpoint") == 0) {
        if (part_checkpoint(p, err) != DV_OK) {
            fprintf(stderr, "dvec-replica: %s\n", err);
            rc = 1;
        }
    }
    struct part_info in;
    part_get_info(p, &in);
    if (strcmp(cmd, "check") == 0) {
        printf("ok: %llu points, LSN %llu\n", (unsigned long long)in.points,
               (unsigned long long)in.applied_lsn);
    } else {
        printf("dimension       %u\n"
               "metric          %s\n"
               "hnsw            m %u, ef_construction %u, ef_search %u, sq8 %s\n"
               "points          %llu (%llu deleted slots not yet compacted)\n"
               "payload bytes   %llu\n"
               "payload indexes %zu\n"
               "LSN             %llu (checkpoint at %llu)\n"
               "WAL bytes       %llu\n"
               "opened in       %llu ms\n",
               in.index.dim, metric_name(in.index.metric), in.index.m, in.index.ef_construction,
               in.index.ef_search, in.index.sq8 ? "on" : "off", (unsigned long long)in.points,
               (unsigned long long)in.deleted, (unsigned long long)in.payload_bytes, in.n_indexes,
               (unsigned long long)in.applied_lsn, (unsigned long long)in.ckpt_lsn,
               (unsigned long long)in.wal_bytes, (unsigned long long)in.open_ms);
    }
    part_close(p);
    return rc;
}
