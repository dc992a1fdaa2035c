/* msg_dec.h - the decoder's internals shared by msg_decode.c (envelope, fields, requests) and
 * msg_decode_rep.c (replies); not for users. */
#ifndef DV_MSG_DEC_H
#define DV_MSG_DEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "mpk.h"
#include "msg.h"

/* Decode allocations: a chain of blocks, each aligned like max_align_t. */
union arena_hdr {
    void *next;
    max_align_t align_;
};

struct dec {
    struct mpk_dec k; /* first: msg_fail gets back to the struct dec from it */
    struct msg *m;
    bool typed; /* m->type has been read: messages name it */
};

#define R(x, field)                                                                                \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            return msgd_fail(d, rc, field);                                                        \
    } while (0)

/* For mpk_dec_* calls, which have reported the failure already. */
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            return rc;                                                                             \
    } while (0)

/*
 * The smallest encoding of one element of each list, used to bound a declared count by the
 * bytes left before allocating for it (mpk_array alone allows one byte per element, and a
 * decoded element takes up to 64 bytes of memory).
 */
enum {
    MIN_ID = 1,         /* a positive fixint */
    MIN_PAYLOAD = 1,    /* nil */
    MIN_REPLICA = 4,    /* [coll "", part, lsn] */
    MIN_HIT = 5,        /* [id, score, nil, nil] */
    MIN_HITS = 1,       /* [] */
    MIN_TARGET = 3,     /* [part, epoch] */
    MIN_QUERY = 8,      /* [bin8 "", k, ef, nil, false, false] */
    MIN_PART = 4,       /* [part, nil, []] */
    MIN_STAT = 3,       /* [name "", value] */
    MIN_WAL_REC = 5,    /* [lsn, type, bin8 ""] */
    MIN_NAME = 1,       /* "" */
    MIN_U32 = 1,        /* a positive fixint */
    MIN_COLL_PART = 5,  /* [part, epoch, [], points] */
    MIN_REPORT = 5,     /* [coll "", part, lsn, points] */
    MIN_PEER = 3,       /* [id "", url ""] */
    MIN_PEER_FAIL = 4,  /* [id "", code, text ""] */
    MIN_TERM = 3,       /* [term, start] */
    MIN_ROUTE_PART = 7, /* [epoch, term, nil, [], false, []] */
    MIN_NVEC = 5,       /* [name "", n, bin8 "", nil] */
    MIN_NVECS = 1,      /* [] */
    MIN_VSPACE = 9,     /* [name "", kind, dim, metric, m, ef_construction, sq8, idf] */
    MIN_FACET_HIT = 3,  /* [0, count] */
    MIN_ORDVAL = 1,     /* a positive fixint */
};

void *msgd_alloc(struct dec *d, size_t count, size_t size);

int msgd_fail(struct dec *d, int rc, const char *field);

int msgd_str(struct dec *d, struct msg_str *s, const char *field);

int msgd_bin(struct dec *d, struct msg_bytes *v, const char *field);

int msgd_bin_or_nil(struct dec *d, struct msg_bytes *v, const char *field);

int msgd_raw_or_nil(struct dec *d, struct msg_bytes *v, const char *field);

/* A bin of exactly `count` little-endian float32 (count == UINT32_MAX + 1 or more is an
 * error), copied into aligned memory; *out is NULL when count is 0. */
int msgd_floats(struct dec *d, uint64_t count, float **out, const char *field);

int msgd_ids(struct dec *d, struct pid **ids, uint32_t *n, const char *field);

/* A list of strings (names, node ids). */
int msgd_strs(struct dec *d, struct msg_str **out, uint32_t *n, const char *field);

/* The collection config (see msgw_coll_cfg); without placement, partitions and replication
 * read as 0. */
int msgd_coll_cfg(struct dec *d, struct msg_coll_cfg *c, bool with_placement);

/* A bin of a float count not known ahead (a multiple of 4 bytes, at most max floats). */
int msgd_floats_any(struct dec *d, uint32_t max, float **out, uint32_t *count, const char *field);

/* A bin of exactly n uint32 (little-endian), copied into aligned memory. */
int msgd_u32_bin(struct dec *d, uint32_t n, uint32_t **out, const char *field);

/* A point's named vectors (msg.c's w_nvecs). */
int msgd_nvecs(struct dec *d, struct msg_nvecs *nv);

/* A collection's named vectors (msg.c's w_spaces). */
int msgd_spaces(struct dec *d, struct msg_coll_cfg *c);

/* The partitions a search or sparse_stats names: [[partition, epoch]...]. */
int msgd_targets(struct dec *d, struct msg_target **out, uint32_t *n);

int msgd_replicas(struct dec *d, struct msg_replica **out, uint32_t *n);

int msgd_hits(struct dec *d, struct msg_hits *h);

int msgd_error(struct dec *d, struct msg_error *e);

/* WAL records [[lsn, type, bin body], ...] (a WAL read's reply, a replicate request). */
int msgd_wal_recs(struct dec *d, struct msg_wal_rec **out, uint32_t *n);

/* A route's node index: below n_nodes (DV_ERANGE otherwise). */
int msgd_node_index(struct dec *d, uint32_t n_nodes, uint32_t *out, const char *field);

int msgd_node_indexes(struct dec *d, uint32_t n_nodes, uint32_t **out, uint32_t *n,
                      const char *field);

int msgd_secondaries(struct dec *d, struct msg *m);

int msgd_query(struct dec *d, struct msg_query *q);

int msgd_queries(struct dec *d, struct msg_query **out, uint32_t *n);

int msgd_node_report(struct dec *d, struct msg_node_report_req *r);

/* The 8 fields of a replica create (7 when the sender predates incarnations). */
int msgd_create(struct dec *d, struct msg_create_req *c, bool with_incarnation);

/* The body of a reply without an error, after the envelope (msg_decode_rep.c). */
int msgd_reply_body(struct dec *d);

#endif
