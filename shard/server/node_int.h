/* node_int.h - node internals shared by node.c and node_snap.c. */
#ifndef DV_NODE_INT_H
#define DV_NODE_INT_H

#include <limits.h>
#include <pthread.h>

#include "node.h"

#define NODE_BUCKETS 1024

struct rep {
    struct node_replica pub;    /* first: node_replica pointers are rep pointers */
    struct rep *next;           /* hash chain */
    pthread_mutex_t meta_mu;    /* serialises node.meta rewrites */
    char dir[PATH_MAX];         /* replicas/<coll>.<part> */
    bool fenced;                /* writes refused; changed under meta_mu and n->mu */
    int writes;                 /* writes in flight (node_write_begin), under n->mu */
    pthread_cond_t writes_done; /* signalled when writes drops to 0 */
    uint64_t hold_used_ms;      /* atomic: last peer read that set the WAL hold, 0: no hold */
};

struct snap_session;

#define NODE_DIR_MAX 2048 /* longest data dir path */

struct node {
    char dir[NODE_DIR_MAX];
    struct node_opts opts;
    struct io *io;
    pthread_mutex_t mu; /* the table, refs_, dropped_, epochs */
    pthread_cond_t released;
    struct rep *buckets[NODE_BUCKETS];
    size_t n_replicas;
    size_t open_failures;
    /* snapshot sessions (node_snap.c) */
    pthread_mutex_t snap_mu;
    struct snap_session *sessions;
    uint64_t next_session;
};

/* Removes every snapshot session and its file (node_close). */
void node_snapshot_expire_all_(struct node *n);

#endif
