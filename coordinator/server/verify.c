/* verify.c - `collections verify`: every replica of every partition compared by content. */
#include "verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "err.h"
#include "log.h"
#include "mpk.h"
#include "node_call.h"

#define VERIFY_TRIES    20 /* reads of a partition's replicas before fencing its primary */
#define VERIFY_PAUSE_MS 25
#define VERIFY_CALL_MS  10000

#define K(s) mpw_str(out, s, strlen(s))

/* One replica's answer. */
struct seen {
    uint32_t node;
    int state;
    int rc;
    uint64_t digest, points, lsn;
    char err[DV_ERRMSG_SIZE];
};

/* Reads every replica of partition p once; true when the in-sync ones answered at one LSN. */
static bool read_all(struct coord *c, const struct cmap *m, const struct cmap_coll *cl, uint32_t p,
                     struct seen *s)
{
    const struct cmap_part *pt = &cl->parts[p];
    uint64_t lsn = 0;
    bool same = true, first = true;
    for (uint32_t k = 0; k < pt->n; k++) {
        struct seen *x = &s[k];
        memset(x, 0, sizeof *x);
        x->node = pt->nodes[k];
        x->state = pt->state[k];
        struct msg req = ncall_addressed(MSG_REPLICA_DIGEST, cl->name, p, pt->epoch);
        struct msg_reply rep;
        x->rc = ncall(c, m, x->node, &req, &rep, VERIFY_CALL_MS, x->err);
        if (x->rc == DV_OK) {
            x->digest = rep.m.u.digest_rep.digest;
            x->points = rep.m.u.digest_rep.points;
            x->lsn = rep.m.u.digest_rep.lsn;
        }
        msg_reply_free(&rep);
        if (x->rc != DV_OK || x->state != CMAP_REPLICA_ACTIVE)
            continue;
        if (first)
            lsn = x->lsn, first = false;
        else
            same &= x->lsn == lsn;
    }
    return same;
}

int verify_collection(struct coord *c, const char *coll, struct buf *out, char *errmsg)
{
    struct cmap_ref *ref = craft_map(c->raft);
    const struct cmap *m = &ref->map;
    const struct cmap_coll *cl = cmap_coll_find(m, coll);
    int rc = DV_OK;
    if (cl == NULL) {
        craft_map_release(c->raft, ref);
        dv_errmsg_set(errmsg, "collection %s does not exist", coll);
        return DV_ENOTFOUND;
    }
    uint32_t np = cl->cfg.n_parts, n_same = 0;
    struct buf res = BUF_INIT, differ = BUF_INIT, gone = BUF_INIT;
    uint32_t n_differ = 0, n_gone = 0;
    struct seen s[CMAP_MAX_REPLICAS];
    int e = mpw_array(&res, np);
    for (uint32_t p = 0; p < np && e == DV_OK; p++) {
        const struct cmap_part *pt = &cl->parts[p];
        bool aligned = false, fenced = false;
        for (int t = 0; t < VERIFY_TRIES && !aligned; t++) {
            if (t > 0)
                clock_sleep_ms(VERIFY_PAUSE_MS);
            aligned = read_all(c, m, cl, p, s);
        }
        if (!aligned && pt->primary != CMAP_NONE) {
            /* Writes keep the replicas apart: pause them (in-flight ones finish on every
             * in-sync replica first), read, resume. */
            char err[DV_ERRMSG_SIZE];
            if (ncall_fence(c, m, cl->name, p, pt->primary, MSG_FENCE_ON, pt->epoch, NULL, err) ==
                DV_OK) {
                fenced = true;
                aligned = read_all(c, m, cl, p, s);
                ncall_fence(c, m, cl->name, p, pt->primary, MSG_FENCE_OFF, pt->epoch, NULL, err);
            }
        }
        /* Identical: every in-sync replica answered, at one LSN, with one digest and count. */
        bool identical = aligned, answered = true;
        const struct seen *ref0 = NULL;
        for (uint32_t k = 0; k < pt->n; k++) {
            if (s[k].state != CMAP_REPLICA_ACTIVE)
                continue;
            if (s[k].rc != DV_OK) {
                answered = false;
                continue;
            }
            if (ref0 == NULL)
                ref0 = &s[k];
            else if (s[k].digest != ref0->digest || s[k].points != ref0->points)
                identical = false;
        }
        identical &= answered && ref0 != NULL;
        n_same += identical;
        if (!answered || ref0 == NULL) {
            e |= mpw_u64(&gone, p);
            n_gone++;
        } else if (!identical) {
            e |= mpw_u64(&differ, p);
            n_differ++;
            log_warn("verify: replicas differ", "collection=%s partition=%u aligned=%d", coll, p,
                     aligned);
        }
        e |= mpw_map(&res, 5);
        e |= mpw_str(&res, "partition", 9) | mpw_u64(&res, p);
        e |= mpw_str(&res, "lsn", 3) | mpw_u64(&res, ref0 ? ref0->lsn : 0);
        e |= mpw_str(&res, "identical", 9) | mpw_bool(&res, identical);
        e |= mpw_str(&res, "fenced", 6) | mpw_bool(&res, fenced);
        e |= mpw_str(&res, "replicas", 8) | mpw_array(&res, pt->n);
        for (uint32_t k = 0; k < pt->n; k++) {
            const struct cmap_node *nd = cmap_node_get(m, s[k].node);
            const char *id = nd ? nd->id : "?", *st = cmap_replica_state_name(s[k].state);
            e |= mpw_map(&res, 6);
            e |= mpw_str(&res, "node", 4) | mpw_str(&res, id, strlen(id));
            e |= mpw_str(&res, "state", 5) | mpw_str(&res, st, strlen(st));
            e |= mpw_str(&res, "lsn", 3) | mpw_u64(&res, s[k].lsn);
            e |= mpw_str(&res, "points", 6) | mpw_u64(&res, s[k].points);
            char hex[17]; /* as text: JSON clients lose integers above 2^53 or 2^63 */
            snprintf(hex, sizeof hex, "%016" PRIx64, s[k].digest);
            e |= mpw_str(&res, "digest", 6) | mpw_str(&res, hex, 16);
            e |= mpw_str(&res, "error", 5);
            e |= s[k].rc == DV_OK ? mpw_nil(&res) : mpw_str(&res, s[k].err, strlen(s[k].err));
        }
    }
    craft_map_release(c->raft, ref);
    if (e != DV_OK) {
        rc = DV_ENOMEM;
        goto out;
    }
    rc = DV_ENOMEM;
    if (mpw_map(out, 6) || K("collection") || K(coll) || K("partitions") || mpw_u64(out, np) ||
        K("identical") || mpw_u64(out, n_same) || K("differ") || mpw_array(out, n_differ) ||
        buf_append(out, differ.data, differ.len) || K("unreachable") || mpw_array(out, n_gone) ||
        buf_append(out, gone.data, gone.len) || K("results") || buf_append(out, res.data, res.len))
        goto out;
    rc = DV_OK;
    log_info("verify", "collection=%s partitions=%u identical=%u differ=%u unreachable=%u", coll,
             np, n_same, n_differ, n_gone);
out:
    buf_free(&res);
    buf_free(&differ);
    buf_free(&gone);
    return rc;
}
