/* plan.c - the rebalance plan: ideal placement (place.c) against the map's. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "place.h"
#include "plan.h"

const char *plan_why_name(int why)
{
    switch (why) {
    case PLAN_SOURCE_DOWN:
        return "source_down";
    case PLAN_UNAVAILABLE:
        return "unavailable";
    case PLAN_MOVING:
        return "moving";
    case PLAN_TARGET_DOWN:
        return "target_down";
    default:
        return "unknown";
    }
}

int plan_part_moving(const struct cmap *m, const char *coll, uint32_t part)
{
    for (uint32_t i = 0; i < m->n_moves; i++) {
        const struct cmap_move *mv = &m->moves[i];
        if (mv->part == part && mv->state != CMAP_MOVE_DONE && mv->state != CMAP_MOVE_FAILED &&
            strcmp(mv->coll, coll) == 0)
            return 1;
    }
    return 0;
}

static bool serving(const struct cmap *m, uint32_t num)
{
    const struct cmap_node *n = cmap_node_get(m, num);
    return n && (n->state == CMAP_NODE_ALIVE || n->state == CMAP_NODE_JOINING ||
                 n->state == CMAP_NODE_DRAINING);
}

static bool in(const uint32_t *a, uint32_t n, uint32_t x)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i] == x)
            return true;
    return false;
}

static int push_move(struct plan *p, size_t *cap, struct plan_move mv)
{
    if (p->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        void *q = realloc(p->moves, nc * sizeof *p->moves);
        if (q == NULL)
            return DV_ENOMEM;
        p->moves = q;
        *cap = nc;
    }
    p->moves[p->n++] = mv;
    return DV_OK;
}

static int push_stuck(struct plan *p, size_t *cap, struct plan_stuck st)
{
    if (p->n_stuck == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        void *q = realloc(p->stuck, nc * sizeof *p->stuck);
        if (q == NULL)
            return DV_ENOMEM;
        p->stuck = q;
        *cap = nc;
    }
    p->stuck[p->n_stuck++] = st;
    return DV_OK;
}

int plan_make(const struct cmap *m, struct plan *out)
{
    memset(out, 0, sizeof *out);
    /* Down nodes keep their share: plan on a copy where they count as alive. */
    struct cmap view;
    int rc = cmap_copy(&view, m);
    if (rc != DV_OK)
        return rc;
    for (uint32_t i = 0; i < view.n_nodes; i++)
        if (view.nodes[i].state == CMAP_NODE_SUSPECT || view.nodes[i].state == CMAP_NODE_DEAD)
            view.nodes[i].state = CMAP_NODE_ALIVE;
    struct place_plan ideal;
    rc = place_ideal_map(&view, &ideal);
    cmap_free(&view);
    if (rc == DV_EINVAL) /* no eligible node: nothing can move */
        return DV_OK;
    if (rc != DV_OK)
        return rc;
    size_t cap = 0, cap_stuck = 0;
    for (uint32_t c = 0; c < m->n_colls && rc == DV_OK; c++) {
        const struct cmap_coll *cl = m->colls[c];
        for (uint32_t p = 0; p < cl->cfg.n_parts && rc == DV_OK; p++) {
            const struct cmap_part *pt = &cl->parts[p];
            const struct place_part *want = &ideal.colls[c][p];
            if (pt->n == 0) {
                rc = push_stuck(out, &cap_stuck,
                                (struct plan_stuck){cl, p, CMAP_NONE, PLAN_UNAVAILABLE});
                continue;
            }
            uint32_t extra[CMAP_MAX_REPLICAS], missing[CMAP_MAX_REPLICAS], ne = 0, nm = 0;
            for (uint32_t k = 0; k < pt->n; k++)
                if (!in(want->nodes, want->n, pt->nodes[k]))
                    extra[ne++] = pt->nodes[k];
            for (uint32_t k = 0; k < want->n; k++)
                if (!in(pt->nodes, pt->n, want->nodes[k]))
                    missing[nm++] = want->nodes[k];
            uint32_t pairs = ne < nm ? ne : nm;
            if (pairs == 0)
                continue;
            if (plan_part_moving(m, cl->name, p)) {
                rc = push_stuck(out, &cap_stuck, (struct plan_stuck){cl, p, extra[0], PLAN_MOVING});
                continue;
            }
            for (uint32_t k = 0; k < pairs && rc == DV_OK; k++) {
                if (!serving(m, extra[k]))
                    rc = push_stuck(out, &cap_stuck,
                                    (struct plan_stuck){cl, p, extra[k], PLAN_SOURCE_DOWN});
                else if (!place_eligible(cmap_node_get(m, missing[k])))
                    rc = push_stuck(out, &cap_stuck,
                                    (struct plan_stuck){cl, p, missing[k], PLAN_TARGET_DOWN});
                else
                    rc = push_move(out, &cap, (struct plan_move){cl, p, extra[k], missing[k]});
            }
        }
    }
    place_plan_free(&ideal);
    if (rc != DV_OK)
        plan_free(out);
    return rc;
}

void plan_free(struct plan *p)
{
    free(p->moves);
    free(p->stuck);
    memset(p, 0, sizeof *p);
}
