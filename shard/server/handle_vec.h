/* handle_vec.h - the node's conversions of named vectors between the protocol (msg.h) and a
 * replica (part.h): points, queries and hits. */
#ifndef DV_HANDLE_VEC_H
#define DV_HANDLE_VEC_H

#include "buf.h"
#include "msg.h"
#include "node.h"
#include "part.h"

/*
 * The replica's points of an upsert or vector update (u->n of them). With u->named, each
 * named vector is looked up by name and its lengths checked against the space's kind and
 * dimension (DV_EINVAL / DV_EDIM naming the point and the vector); without, the unnamed
 * vectors in u->vecs. *pts and *vecs are malloc'd (the caller frees both); the points point
 * into u.
 */
int hv_points(struct part *p, const struct msg_upsert_req *u, struct part_point **pts,
              struct part_vec **vecs, char *errmsg);

/* The spaces of a delete-vectors request's names (DV_EINVAL for an unknown one); out has room
 * for PART_MAX_SPACES. */
int hv_spaces(struct part *p, const struct msg_str *names, uint32_t n, uint32_t *out, char *errmsg);

/* Fills pq from mq for replica p: the space named by mq->using, the lengths checked against it
 * (DV_EDIM / DV_EINVAL), the mask of vec_names. pq->filter is left to the caller. */
int hv_query(struct part *p, const struct msg_query *mq, struct part_query *pq, char *errmsg);

/*
 * The hits of a replica's result (valid while r is), with the named vectors of each hit
 * (their names from the replica's spaces). Frees with hv_hits_free.
 */
int hv_hits(struct part *p, const struct part_result *r, struct msg_hits *out);
void hv_hits_free(struct msg_hits *h);

/* A sparse_stats request: per partition, part_sparse_stats of the named vector (errors per
 * partition, as a search's), encoded into out. */
int hv_sparse_stats(struct node *n, const struct msg *req, struct msg *rep, char *errmsg,
                    struct buf *out);

#endif
