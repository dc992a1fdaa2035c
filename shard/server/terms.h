/* terms.h - a replica's primary-term history and the log-matching rule over two of them.
 *
 * An entry (term, start) says: this replica's records from LSN `start` on, up to the next
 * entry's start, are those the primary of `term` wrote under that LSN. A replica adds an
 * entry when it learns a newer term (start = its applied LSN + 1), so an entry's range is
 * empty when no record of that term reached it. A copy taken from a primary is all of that
 * primary's log: (term, 1). Because a partition has one primary per term and a secondary
 * takes a term's records only while it is in that primary's in-sync set, two replicas whose
 * records at LSN x are both attributed to one term hold the same records up to x. */
#ifndef DV_TERMS_H
#define DV_TERMS_H

#include <stdint.h>

#include "msg.h"

/* Entries a replica keeps, the newest (the oldest are dropped first: a replica that cannot
 * match an old enough point takes a snapshot instead). */
#define NODE_MAX_TERMS 32

/*
 * The last LSN up to which two replicas hold the same records: a's history (na entries,
 * oldest first) and its last record a_last, b's likewise. 0 when they share no point (or
 * either history is empty while it holds records).
 */
uint64_t terms_common(const struct msg_term *a, uint32_t na, uint64_t a_last,
                      const struct msg_term *b, uint32_t nb, uint64_t b_last);

/* Appends (term, start) to h (n entries, room for NODE_MAX_TERMS), dropping the oldest when it
 * is full. */
void terms_push(struct msg_term *h, uint32_t *n, uint64_t term, uint64_t start);

#endif
