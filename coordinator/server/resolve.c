/* resolve.c - the answers of several replicas to one read resolved into one (resolve.h). */
#include "resolve.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

struct entry {
    const struct msg_hit *h;
    uint32_t list;
};

/* Orders by id, then by content (vector, then payload): equal entries are the same point. */
static int cmp_content(const struct msg_hit *x, const struct msg_hit *y)
{
    int c = pid_cmp(&x->id, &y->id);
    if (c != 0)
        return c;
    if (x->dim != y->dim)
        return x->dim < y->dim ? -1 : 1;
    if (x->dim > 0 && x->vec && y->vec && (c = memcmp(x->vec, y->vec, x->dim * sizeof(float))))
        return c;
    if (x->payload.len != y->payload.len)
        return x->payload.len < y->payload.len ? -1 : 1;
    if (x->payload.len > 0 && (c = memcmp(x->payload.p, y->payload.p, x->payload.len)))
        return c;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = cmp_content(x->h, y->h);
    return c != 0 ? c : (x->list > y->list) - (x->list < y->list);
}

int resolve_hits(const struct msg_hits *lists, uint32_t r, uint32_t need, struct msg_hit *out,
                 uint32_t *n)
{
    size_t total = 0;
    *n = 0;
    for (uint32_t i = 0; i < r; i++)
        total += lists[i].n;
    struct entry *e = malloc((total ? total : 1) * sizeof *e);
    if (e == NULL)
        return DV_ENOMEM;
    size_t k = 0;
    for (uint32_t i = 0; i < r; i++)
        for (uint32_t j = 0; j < lists[i].n; j++)
            e[k++] = (struct entry){&lists[i].hits[j], i};
    qsort(e, total, sizeof *e, cmp_entry);
    for (size_t a = 0; a < total;) {
        size_t b = a + 1;
        uint32_t seen = 1; /* distinct lists in the group (sorted by list within it) */
        while (b < total && cmp_content(e[a].h, e[b].h) == 0) {
            seen += e[b].list != e[b - 1].list;
            b++;
        }
        if (seen >= need)
            out[(*n)++] = *e[a].h;
        a = b;
    }
    free(e);
    return DV_OK;
}

static int cmp_pid_ptr(const void *a, const void *b)
{
    return pid_cmp(*(const struct pid *const *)a, *(const struct pid *const *)b);
}

uint32_t resolve_distinct(const struct msg_hits *lists, uint32_t r, const struct pid *below)
{
    size_t total = 0, k = 0;
    for (uint32_t i = 0; i < r; i++)
        total += lists[i].n;
    const struct pid **ids = malloc((total ? total : 1) * sizeof *ids);
    if (ids == NULL)
        return 0;
    for (uint32_t i = 0; i < r; i++)
        for (uint32_t j = 0; j < lists[i].n; j++)
            if (below == NULL || pid_cmp(&lists[i].hits[j].id, below) < 0)
                ids[k++] = &lists[i].hits[j].id;
    qsort(ids, k, sizeof *ids, cmp_pid_ptr);
    uint32_t d = 0;
    for (size_t a = 0; a < k; a++)
        d += a == 0 || pid_cmp(ids[a - 1], ids[a]) != 0;
    free(ids);
    return d;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

uint64_t resolve_count(const uint64_t *counts, uint32_t r, uint32_t need)
{
    uint64_t c[16];
    if (r == 0)
        return 0;
    if (r > 16)
        r = 16;
    if (need == 0 || need > r)
        need = r;
    memcpy(c, counts, r * sizeof *c);
    qsort(c, r, sizeof *c, cmp_u64);
    return c[r - need];
}
