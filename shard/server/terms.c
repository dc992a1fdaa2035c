/* terms.c - a replica's primary-term history and the log-matching rule (terms.h). */
#include "terms.h"

#include <string.h>

/* The LSN range [*lo, *hi] that entry i of h covers, given the replica's last record. */
static void range(const struct msg_term *h, uint32_t n, uint32_t i, uint64_t last, uint64_t *lo,
                  uint64_t *hi)
{
    *lo = h[i].start;
    *hi = i + 1 < n ? h[i + 1].start - 1 : last;
    if (*hi > last)
        *hi = last;
}

uint64_t terms_common(const struct msg_term *a, uint32_t na, uint64_t a_last,
                      const struct msg_term *b, uint32_t nb, uint64_t b_last)
{
    if (a_last == 0 || b_last == 0)
        return 0; /* one of them holds nothing: nothing to cut from what the other holds */
    uint64_t best = 0;
    for (uint32_t i = 0; i < na; i++)
        for (uint32_t j = 0; j < nb; j++) {
            if (a[i].term != b[j].term || a[i].start == 0 || b[j].start == 0)
                continue;
            uint64_t alo, ahi, blo, bhi;
            range(a, na, i, a_last, &alo, &ahi);
            range(b, nb, j, b_last, &blo, &bhi);
            uint64_t lo = alo > blo ? alo : blo, hi = ahi < bhi ? ahi : bhi;
            if (lo <= hi && hi > best)
                best = hi;
        }
    return best;
}

void terms_push(struct msg_term *h, uint32_t *n, uint64_t term, uint64_t start)
{
    if (*n == NODE_MAX_TERMS) {
        memmove(h, h + 1, (NODE_MAX_TERMS - 1) * sizeof *h);
        (*n)--;
    }
    h[*n].term = term;
    h[*n].start = start;
    (*n)++;
}
