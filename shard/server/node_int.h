/* node_int.h - node internals shared by node.c and node_snap.c. */
#ifndef DV_NODE_INT_H
#define DV_NODE_INT_H

#include <limits.h>
#include <pthread.h>

#include "node.h"
#include "repl.h"

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
    pthread_mutex_t apply_mu;   /* a replicate's term check and apply vs a term change */
    /* The primary-term history before pub.term (terms.h), oldest first, under n->mu; the
     * current entry is (pub.term, pub.term_lsn + 1). Kept in the replica's file "terms". */
    struct msg_term hist[NODE_MAX_TERMS];
    uint32_t n_hist;
};

struct snap_session;
struct pull_set;

/* What node.meta holds besides the fsync policy (node_meta.c). */
struct node_meta {
    uint64_t epoch, incarnation;
    uint64_t term;     /* highest primary term seen, 0: none */
    uint64_t term_lsn; /* the replica's applied LSN when it learned `term` */
    bool fenced;
};

extern const char *const node_sync_names_[3]; /* enum wal_sync -> "always", ... */

/* Replaces dir/node.meta (tmp + fsync + rename); 0 or a negative errno. */
int node_meta_write_(struct node *n, const char *dir, const struct node_meta *m,
                     enum wal_sync fsync);
/* Reads dir/node.meta. DV_EOS (cannot read), DV_ECORRUPT (not one), with errmsg. */
int node_meta_read_(struct node *n, const char *dir, struct node_meta *m, enum wal_sync *fsync,
                    char *errmsg);

/* The file dir/terms: a replica's primary-term history before its current term (node.meta's
 * term). Read: a missing file is an empty history; entries of `term` or later (left by a crash
 * between the two files' writes) are left out. 0 or a negative errno / DV_ECORRUPT. */
int node_terms_write_(struct node *n, const char *dir, const struct msg_term *h, uint32_t nh);
int node_terms_read_(struct node *n, const char *dir, uint64_t term, struct msg_term *h,
                     uint32_t *nh);

/*
 * Takes the replica of (coll, partition) out of the node without deleting it: out of the
 * table (once no request uses it), its directory renamed to `dest` (replaced if it exists),
 * still open: *out is the replica rebased there (WAL_SYNC_NEVER, no replication tap), the
 * caller's to close. *hist gets its history (room for NODE_MAX_TERMS + 1). DV_ENOTFOUND when
 * the node does not hold it, DV_ESTALE (with *known) when `epoch` is older than the replica's,
 * DV_EEXIST (nothing changed) when it is of another incarnation than `incarnation` (both not
 * 0: its history would match the new collection's by accident); other errors after it left
 * the table (its files removed).
 */
int node_detach_(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                 uint64_t epoch, uint64_t incarnation, const char *dest, struct part **out,
                 struct msg_term *hist, uint32_t *nh, uint64_t *known, char *errmsg);

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
    struct pull_set *pulls; /* replica pulls (pull.c) */
    struct repl_net *net;   /* connections to secondaries (repl.h) */
};

/* pull.c: the node's pull jobs, set up by node_open; node_close stops them (joins their
 * threads, deletes their copies) before it closes the replicas. */
int pull_init_(struct node *n);
void pull_close_(struct node *n);

/* For pull.c: remove a directory tree; the part options of a replica with that fsync policy. */
void node_remove_tree_(struct node *n, const char *dir);
void node_replica_opts_(struct node *n, enum wal_sync fsync, struct part_opts *o);

/* Whether the node holds (coll, partition) as a replica; *applied (may be NULL) gets its
 * applied LSN. No epoch check, no epoch change. */
bool node_holds_(struct node *n, const char *coll, size_t coll_len, uint32_t partition,
                 uint64_t *applied);

/*
 * Makes the directory `tmp` (under replicas/, holding a replica in data/) the node's replica
 * of (coll, partition): writes its node.meta, renames it to replicas/<coll>.<part>, fsyncs
 * replicas/, and registers it. `open` is that replica still open (its background thread
 * paused, nothing else using it): it is rebased onto the new path and served as it is, with
 * no checkpoint or reopen (part_rebase); NULL opens the closed replica from disk. Takes `open`
 * whatever happens (closed on failure). DV_EEXIST (tmp left as it was) when the node holds
 * that partition already. On another failure after the rename the files are removed.
 */
int node_install_(struct node *n, const char *tmp, const char *coll, size_t coll_len,
                  uint32_t partition, uint64_t epoch, uint64_t incarnation, uint64_t term,
                  enum wal_sync fsync, struct part *open, char *errmsg);

/* Removes every snapshot session and its file (node_close). */
void node_snapshot_expire_all_(struct node *n);

#endif
