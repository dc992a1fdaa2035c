/* msg_enc.h - the encoder's internals shared by msg.c (envelope, fields, requests) and
 * msg_encode_rep.c (replies); not for users. */
#ifndef DV_MSG_ENC_H
#define DV_MSG_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "msg.h"

#define W(x)                                                                                       \
    do {                                                                                           \
        if ((rc = (x)) != DV_OK)                                                                   \
            return rc;                                                                             \
    } while (0)

int msgw_str(struct buf *b, struct msg_str s);

/* A bin that is never nil: {NULL, 0} is the empty bin; DV_EINVAL for NULL with a length. */
int msgw_bin(struct buf *b, struct msg_bytes v);

/* One raw msgpack value or nil; DV_EINVAL unless the bytes are exactly one value. */
int msgw_raw_or_nil(struct buf *b, struct msg_bytes v);

int msgw_replicas(struct buf *b, const struct msg_replica *r, uint32_t n);

/* Hits: [id, score, vector | nil, payload | nil] and, when the point's named vectors were
 * asked for, a 5th element with them. */
int msgw_hits(struct buf *b, const struct msg_hits *h);

/* A collection's named vectors: [[name, kind, dim, metric, m, ef_construction, sq8, idf]...]. */
int msgw_spaces(struct buf *b, const struct msg_coll_cfg *c);

/* The collection config, the one encoder of struct msg_coll_cfg: dim, metric, m,
 * ef_construction, ef_search, sq8, fsync, then (with_placement) partitions, replication. With
 * them it is the body of coll_create after the name and the start of coll_info's reply;
 * without them the start of a replica create (and of a pull's create tail). */
int msgw_coll_cfg(struct buf *b, const struct msg_coll_cfg *c, bool with_placement);

int msgw_u32s(struct buf *b, const uint32_t *v, uint32_t n);

int msgw_strs(struct buf *b, const struct msg_str *s, uint32_t n);

int msgw_error(struct buf *b, const struct msg_error *e);

/* WAL records: [[lsn, type, bin body], ...] (a WAL read's reply, a replicate request). */
int msgw_wal_recs(struct buf *b, const struct msg_wal_rec *recs, uint32_t n);

/* The body of a reply without an error, after the envelope (msg_encode_rep.c). */
int msgw_reply_body(struct buf *b, const struct msg *m);

#endif
