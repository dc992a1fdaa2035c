/* msg_search.c - what every sender of a search to nodes shares (a coordinator's router, its
 * worker-less path, libdvec's one hop): the order of hits, one request per node naming its
 * partitions, and the nodes' hits merged per query. */
#include <stdlib.h>
#include <string.h>

#include "msg.h"

static int hit_desc(const void *a, const void *b)
{
    const struct msg_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return pid_cmp(&x->id, &y->id);
}

static int hit_asc(const void *a, const void *b)
{
    const struct msg_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? 1 : -1;
    return pid_cmp(&x->id, &y->id);
}

int (*msg_hit_order(uint32_t metric))(const void *, const void *)
{
    return metric == 1 || metric == 2 ? hit_desc : hit_asc; /* ip, cosine: higher is closer */
}

uint32_t msg_search_group(uint32_t *via, uint32_t np, struct msg_target *targets,
                          struct msg_search_group *groups)
{
    uint32_t ng = 0, nt = 0;
    for (uint32_t p = 0; p < np; p++) {
        if (via[p] == UINT32_MAX)
            continue;
        uint32_t node = via[p];
        groups[ng] = (struct msg_search_group){node, nt, 0};
        for (uint32_t p2 = p; p2 < np; p2++)
            if (via[p2] == node) {
                targets[nt++] = (struct msg_target){p2, 0};
                via[p2] = UINT32_MAX;
            }
        groups[ng].n = nt - groups[ng].first;
        ng++;
    }
    return ng;
}

/* The list of query q in partition answer sp, or NULL when it has none. */
static const struct msg_hits *list_of(const struct msg_search_part *sp, uint32_t q)
{
    return sp->err.code == 0 && q < sp->n ? &sp->results[q] : NULL;
}

size_t msg_hits_total(const struct msg_search_rep *const *reps, size_t n, uint32_t nq)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; reps[i] && k < reps[i]->n_parts; k++)
            for (uint32_t q = 0; q < nq; q++) {
                const struct msg_hits *x = list_of(&reps[i]->parts[k], q);
                total += x ? x->n : 0;
            }
    return total;
}

void msg_hits_merge(const struct msg_search_rep *const *reps, size_t n,
                    const struct msg_query *queries, uint32_t nq, uint32_t metric,
                    const uint32_t *metrics, struct msg_hits *results, struct msg_hit *pool)
{
    size_t used = 0;
    for (uint32_t q = 0; q < nq; q++) {
        int (*order)(const void *, const void *) = msg_hit_order(metrics ? metrics[q] : metric);
        struct msg_hit *h = pool + used;
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++)
            for (uint32_t k = 0; reps[i] && k < reps[i]->n_parts; k++) {
                const struct msg_hits *x = list_of(&reps[i]->parts[k], q);
                if (x == NULL)
                    continue;
                memcpy(h + cnt, x->hits, x->n * sizeof *h);
                cnt += x->n;
            }
        qsort(h, cnt, sizeof *h, order); /* ties as every sender breaks them: by id */
        uint32_t k = queries[q].k;
        results[q] = (struct msg_hits){h, (uint32_t)(cnt < k ? cnt : k)};
        used += cnt;
    }
}

uint32_t msg_query_metric(const struct msg_coll_cfg *cfg, const struct msg_query *q)
{
    for (uint32_t i = 0; i < cfg->n_spaces; i++)
        if (strlen(cfg->spaces[i].name) == q->using.len &&
            memcmp(cfg->spaces[i].name, q->using.p, q->using.len) == 0)
            return cfg->spaces[i].kind == 1 ? 1u : cfg->spaces[i].metric; /* sparse: dot */
    return cfg->metric;
}
