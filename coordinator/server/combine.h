/* combine.h - searches bound for the same node, sent as one request when the node is busy.
 *
 * A request/reply through NNG costs about as much as an HNSW search here (docs/benchmarks.md),
 * so a coordinator serving many clients would spend the node's CPUs on messages. A combiner
 * keeps at most `max_inflight` search requests outstanding per node; a search that arrives
 * while that many are out waits for the next slot and joins the searches that arrived with it
 * (same collection, same partitions and epochs), which then travel as one request of several
 * queries. At low load every search goes out at once, alone: combining adds no latency there.
 */
#ifndef DV_COMBINE_H
#define DV_COMBINE_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"
#include "transport.h"

struct combiner;
struct cbatch;

/* A caller's share of a combined reply: its own queries' results in every partition. */
struct comb_share {
    struct cbatch *batch;       /* holds the reply's memory until released */
    struct msg_search_rep rep;  /* parts[j].results point into the batch's reply */
    struct msg_search_part *p_; /* the parts array (owned) */
};

struct combiner_stats {
    uint64_t requests; /* node requests sent */
    uint64_t searches; /* callers served */
    uint64_t queries;  /* queries sent */
};

/* A combiner for the node behind peer `r` (the caller keeps r open for the combiner's life). */
struct combiner *combiner_new(struct tr_peer *r, uint32_t max_inflight);
void combiner_free(struct combiner *cb);

/*
 * Runs `req` (MSG_SEARCH) on the node, alone or together with concurrent ones. On DV_OK
 * out->rep is the answer as if req had been sent alone; release it with comb_share_release.
 * Any other return: the node request failed, errmsg says why (the share is empty).
 * timeout_ms 0: the peer's timeout.
 */
int combiner_search(struct combiner *cb, const struct msg *req, uint32_t timeout_ms,
                    struct comb_share *out, char *errmsg);
void comb_share_release(struct comb_share *s);

/*
 * A slot for a search request of nq queries sent outside the combiner (router_async.c): true
 * when fewer than COMB_PLAIN_FACTOR x max_inflight requests are out and no batch waits, the
 * slot then counted as out until combiner_put (call it when the reply is in; it wakes waiting
 * batches); false when the node is busy, and the caller goes through combiner_search to be
 * combined. A plain search costs the coordinator no thread hand-off, so it pays to combine
 * only further out (docs/benchmarks.md, issue 18: with the limit at max_inflight, 8 clients
 * went at 0.39-0.56x of the node instead of 0.94x).
 */
#define COMB_PLAIN_FACTOR 4
bool combiner_try_take(struct combiner *cb, uint32_t nq);
void combiner_put(struct combiner *cb);

void combiner_stats(struct combiner *cb, struct combiner_stats *out);

#endif
