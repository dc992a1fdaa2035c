/* place.c - jump hashing of points onto partitions and weighted rendezvous of partitions. */
#include "place.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"

/* Seed of the collection-name hash, so that a collection and a node with the same name do not
 * hash alike ("cmap" in ASCII). */
#define PLACE_COLL_SEED 0x636d6170ULL

uint32_t place_partition_of(const struct pid *id, uint32_t n_parts)
{
    return pid_partition(id, n_parts);
}

bool place_eligible(const struct cmap_node *n)
{
    return n->state == CMAP_NODE_ALIVE || n->state == CMAP_NODE_JOINING;
}

uint32_t place_default_parts(const struct cmap *map)
{
    uint64_t eligible = 0;
    for (uint32_t i = 0; i < map->n_nodes; i++)
        eligible += place_eligible(&map->nodes[i]);
    uint64_t p = eligible; /* docs/benchmarks.md, issue 18: fewer walks per query */
    if (p < CMAP_MIN_PARTS)
        p = CMAP_MIN_PARTS;
    if (p > CMAP_MAX_PARTS)
        p = CMAP_MAX_PARTS;
    return (uint32_t)p;
}

static uint64_t node_key(const char *node_id)
{
    return hash64_bytes(node_id, strlen(node_id), 0);
}

static uint64_t part_key(uint64_t coll_hash, uint32_t part)
{
    return hash64_u64(coll_hash + part);
}

static uint64_t combine(uint64_t node, uint64_t part)
{
    return hash64_u64(node ^ part);
}

uint64_t place_hash(const char *node_id, const char *coll, uint32_t part)
{
    uint64_t ch = hash64_bytes(coll, strlen(coll), PLACE_COLL_SEED);
    return combine(node_key(node_id), part_key(ch, part));
}

double place_score(uint64_t hash, double weight)
{
    /* The top 52 bits, centred in their interval: u is in (0, 1) exactly (with 53 bits the
     * largest value would round to 1.0), so ln(u) < 0. */
    double u = ((double)(hash >> 12) + 0.5) * 0x1p-52;
    return -weight / log(u);
}

struct cand {
    uint32_t num;
    const char *id;
    double weight;
    uint64_t key;
};

struct ranked {
    double score;
    const struct cand *c;
};

/* True when a ranks before b: higher score, then the smaller id. */
static bool before(const struct ranked *a, const struct ranked *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    return strcmp(a->c->id, b->c->id) < 0;
}

/* The eligible nodes of a map, in a malloc'd array (NULL and *n = 0 when there are none). */
static int candidates(const struct cmap *map, struct cand **out, uint32_t *n)
{
    *out = NULL;
    *n = 0;
    struct cand *c = malloc((map->n_nodes ? map->n_nodes : 1) * sizeof *c);
    if (!c)
        return DV_ENOMEM;
    uint32_t k = 0;
    for (uint32_t i = 0; i < map->n_nodes; i++) {
        const struct cmap_node *nd = &map->nodes[i];
        if (!place_eligible(nd) || !(nd->weight > 0))
            continue;
        c[k].num = nd->num;
        c[k].id = nd->id;
        c[k].weight = nd->weight;
        c[k].key = node_key(nd->id);
        k++;
    }
    *out = c;
    *n = k;
    return DV_OK;
}

static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

/* ceil(total * w / sum) as an integer, robust to the rounding of an exact quotient. */
static uint32_t share(uint32_t total, double w, double sum)
{
    double x = (double)total * w / sum;
    double f = floor(x);
    return (uint32_t)(x - f < 1e-9 ? f : f + 1);
}

int place_ideal(const struct cmap *map, const char *coll, uint32_t n_parts, uint32_t rf,
                struct place_part *parts)
{
    if (n_parts < 1 || n_parts > CMAP_MAX_PARTS || rf < 1 || rf > CMAP_MAX_REPLICAS)
        return DV_EINVAL;
    struct cand *c;
    uint32_t nc;
    if (candidates(map, &c, &nc) != DV_OK)
        return DV_ENOMEM;
    memset(parts, 0, n_parts * sizeof *parts);
    if (nc == 0) {
        free(c);
        return DV_OK;
    }
    uint32_t r = rf < nc ? rf : nc;
    struct ranked *rank = malloc(nc * sizeof *rank);
    uint32_t *load = calloc(2 * (size_t)nc, sizeof *load), *pload = load + nc;
    uint32_t *cap = malloc(2 * (size_t)nc * sizeof *cap), *pcap = cap + nc;
    if (!rank || !load || !cap) {
        free(rank);
        free(load);
        free(cap);
        free(c);
        return DV_ENOMEM;
    }
    /* Bounded loads: node i holds at most ceil(P * r * w_i / W) replicas and is primary of
     * at most ceil(P * w_i / W) partitions. Each partition takes, in its rendezvous order, the
     * first nodes under their bounds; the order keeps the placement consistent (a node
     * joining or leaving moves about P/N partitions), the bounds keep it balanced even for a
     * few partitions, where plain rendezvous can leave a node empty. */
    double wsum = 0;
    for (uint32_t i = 0; i < nc; i++)
        wsum += c[i].weight;
    for (uint32_t i = 0; i < nc; i++) {
        cap[i] = share(n_parts * r, c[i].weight, wsum);
        pcap[i] = share(n_parts, c[i].weight, wsum);
    }
    uint64_t ch = hash64_bytes(coll, strlen(coll), PLACE_COLL_SEED);
    for (uint32_t p = 0; p < n_parts; p++) {
        uint64_t pkey = part_key(ch, p);
        for (uint32_t i = 0; i < nc; i++)
            rank[i] = (struct ranked){place_score(combine(c[i].key, pkey), c[i].weight), &c[i]};
        qsort(rank, nc, sizeof *rank, cmp_ranked);
        uint32_t chosen[CMAP_MAX_REPLICAS], n = 0;
        /* The replicas: first the nodes whose room left equals the partitions left (skipping
         * them now would leave them short at the end), then in rendezvous order the nodes
         * under their bound, then (when too few have room) the ones least over it. */
        uint32_t left = n_parts - p;
        for (uint32_t k = 0; k < nc && n < r; k++) {
            uint32_t i = (uint32_t)(rank[k].c - c);
            if (load[i] < cap[i] && (cap[i] - load[i] >= left || pcap[i] - pload[i] >= left))
                chosen[n++] = k;
        }
        for (uint32_t k = 0; k < nc && n < r; k++) {
            uint32_t i = (uint32_t)(rank[k].c - c);
            bool dup = false;
            for (uint32_t j = 0; j < n; j++)
                dup = dup || chosen[j] == k;
            if (!dup && load[i] < cap[i])
                chosen[n++] = k;
        }
        while (n < r) {
            uint32_t best = 0;
            int64_t over = INT64_MAX;
            for (uint32_t k = 0; k < nc; k++) {
                uint32_t i = (uint32_t)(rank[k].c - c);
                bool dup = false;
                for (uint32_t j = 0; j < n; j++)
                    dup = dup || chosen[j] == k;
                if (!dup && (int64_t)load[i] - cap[i] < over) {
                    over = (int64_t)load[i] - cap[i];
                    best = k;
                }
            }
            chosen[n++] = best;
        }
        /* In rendezvous order; the primary is the first under its primary bound. */
        for (uint32_t j = 1; j < n; j++)
            for (uint32_t q = j; q > 0 && chosen[q] < chosen[q - 1]; q--) {
                uint32_t t = chosen[q];
                chosen[q] = chosen[q - 1];
                chosen[q - 1] = t;
            }
        int prim = -1;
        for (uint32_t j = 0; j < n && prim < 0; j++) {
            uint32_t i = (uint32_t)(rank[chosen[j]].c - c);
            if (pload[i] < pcap[i] && pcap[i] - pload[i] >= left)
                prim = (int)j;
        }
        for (uint32_t j = 0; j < n && prim < 0; j++) {
            uint32_t i = (uint32_t)(rank[chosen[j]].c - c);
            if (pload[i] < pcap[i])
                prim = (int)j;
        }
        if (prim > 0) {
            uint32_t t = chosen[prim];
            memmove(chosen + 1, chosen, (size_t)prim * sizeof *chosen);
            chosen[0] = t;
        }
        parts[p].n = n;
        for (uint32_t j = 0; j < n; j++) {
            uint32_t i = (uint32_t)(rank[chosen[j]].c - c);
            load[i]++;
            pload[i] += j == 0;
            parts[p].nodes[j] = c[i].num;
        }
    }
    free(rank);
    free(load);
    free(cap);
    free(c);
    return DV_OK;
}

void place_plan_free(struct place_plan *plan)
{
    if (plan->colls)
        for (uint32_t i = 0; i < plan->n_colls; i++)
            free(plan->colls[i]);
    free(plan->colls);
    plan->colls = NULL;
    plan->n_colls = 0;
}

int place_ideal_map(const struct cmap *map, struct place_plan *out)
{
    out->n_colls = 0;
    out->colls = NULL;
    if (map->n_colls == 0)
        return DV_OK;
    out->colls = calloc(map->n_colls, sizeof *out->colls);
    if (!out->colls)
        return DV_ENOMEM;
    out->n_colls = map->n_colls;
    for (uint32_t i = 0; i < map->n_colls; i++) {
        const struct cmap_coll *c = map->colls[i];
        out->colls[i] = malloc(c->cfg.n_parts * sizeof *out->colls[i]);
        int rc = out->colls[i] ? place_ideal(map, c->name, c->cfg.n_parts, c->cfg.rf, out->colls[i])
                               : DV_ENOMEM;
        if (rc != DV_OK) {
            place_plan_free(out);
            return rc;
        }
    }
    return DV_OK;
}

int place_fill_create(const struct cmap *map, struct cmap_cmd *cmd, char *errmsg)
{
    typeof(cmd->u.coll_create) *cc = &cmd->u.coll_create;
    if (cmd->type != CMAP_CMD_COLL_CREATE || cc->node_ids || cc->parts) {
        dv_errmsg_set(errmsg, "place: not an empty collection-create command");
        return DV_EINVAL;
    }
    if (cc->cfg.rf < 1 || cc->cfg.rf > CMAP_MAX_RF) {
        dv_errmsg_set(errmsg, "place: replication factor %u not in 1..%u", cc->cfg.rf, CMAP_MAX_RF);
        return DV_EINVAL;
    }
    uint32_t n_parts = cc->cfg.n_parts ? cc->cfg.n_parts : place_default_parts(map);
    if (n_parts > CMAP_MAX_PARTS) {
        dv_errmsg_set(errmsg, "place: partition count %u not in 1..%u", n_parts, CMAP_MAX_PARTS);
        return DV_EINVAL;
    }
    struct place_part *ideal = malloc(n_parts * sizeof *ideal);
    uint32_t *slot = malloc((map->n_nodes ? map->n_nodes : 1) * sizeof *slot);
    int rc = DV_ENOMEM;
    if (!ideal || !slot)
        goto err_free;
    if ((rc = place_ideal(map, cc->name, n_parts, cc->cfg.rf, ideal)) != DV_OK)
        goto err_free;
    if (ideal[0].n == 0) {
        dv_errmsg_set(errmsg, "place: collection \"%s\": no alive or joining node", cc->name);
        rc = DV_EINVAL;
        goto err_free;
    }
    /* The node table: the nodes used, by number. */
    for (uint32_t i = 0; i < map->n_nodes; i++)
        slot[i] = CMAP_NONE;
    for (uint32_t p = 0; p < n_parts; p++)
        for (uint32_t k = 0; k < ideal[p].n; k++)
            slot[ideal[p].nodes[k]] = 0;
    uint32_t used = 0;
    for (uint32_t i = 0; i < map->n_nodes; i++)
        if (slot[i] != CMAP_NONE)
            slot[i] = used++;
    rc = DV_ENOMEM;
    cc->node_ids = calloc(used, sizeof *cc->node_ids);
    cc->parts = calloc(n_parts, sizeof *cc->parts);
    if (!cc->node_ids || !cc->parts) {
        free(cc->node_ids);
        free(cc->parts);
        cc->node_ids = NULL;
        cc->parts = NULL;
        goto err_free;
    }
    for (uint32_t i = 0; i < map->n_nodes; i++)
        if (slot[i] != CMAP_NONE)
            memcpy(cc->node_ids[slot[i]], map->nodes[i].id, sizeof cc->node_ids[0]);
    cc->n_node_ids = used;
    cc->cfg.n_parts = n_parts;
    for (uint32_t p = 0; p < n_parts; p++) {
        cc->parts[p].n = ideal[p].n;
        cc->parts[p].primary = 0;
        for (uint32_t k = 0; k < ideal[p].n; k++)
            cc->parts[p].nodes[k] = slot[ideal[p].nodes[k]];
    }
    rc = DV_OK;
err_free:
    if (rc == DV_ENOMEM)
        dv_errmsg_set(errmsg, "place: out of memory");
    free(ideal);
    free(slot);
    return rc;
}
