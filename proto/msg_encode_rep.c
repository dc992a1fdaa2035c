/* msg_encode_rep.c - the encoder of the native protocol's reply bodies (msg.c writes the
 * envelope and calls it). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mpk.h"
#include "msg_enc.h"
#include "msg_int.h"

int msgw_reply_body(struct buf *b, const struct msg *m)
{
    int rc;
    switch (m->type) {
    case MSG_REPLICA_DIGEST:
        W(mpw_array(b, 3));
        W(mpw_u64(b, m->u.digest_rep.digest));
        W(mpw_u64(b, m->u.digest_rep.points));
        return mpw_u64(b, m->u.digest_rep.lsn);
    case MSG_HELLO: {
        const struct msg_hello_rep *h = &m->u.hello_rep;
        W(mpw_array(b, 4));
        W(msgw_str(b, h->node_id));
        W(msgw_str(b, h->version));
        W(mpw_u64(b, h->capacity));
        return msgw_replicas(b, h->replicas, h->n_replicas);
    }
    case MSG_REPLICA_LIST:
        W(mpw_array(b, 1));
        return msgw_replicas(b, m->u.list_rep.replicas, m->u.list_rep.n);
    case MSG_REPLICA_INFO: {
        const struct msg_info_rep *f = &m->u.info_rep;
        const uint64_t v[] = {f->dim,         f->metric,   f->m,         f->ef_construction,
                              f->ef_search,   f->points,   f->deleted,   f->applied_lsn,
                              f->durable_lsn, f->ckpt_lsn, f->wal_bytes, f->payload_bytes};
        W(mpw_array(b, 13));
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
            W(mpw_u64(b, v[i]));
        return mpw_bool(b, f->sq8);
    }
    case MSG_UPSERT:
    case MSG_DELETE:
    case MSG_SET_PAYLOAD:
    case MSG_PAYLOAD_INDEX:
    case MSG_REPLICA_FENCE:
    case MSG_P_UPSERT:
    case MSG_P_DELETE:
    case MSG_P_SET_PAYLOAD:
    case MSG_P_INDEX:
    case MSG_UPDATE_VECTORS:
    case MSG_DELETE_VECTORS:
    case MSG_P_UPDATE_VECTORS:
    case MSG_P_DELETE_VECTORS:
    case MSG_REPLICATE: {
        const struct msg_write_rep *w = &m->u.write_rep;
        W(mpw_array(b, 3));
        W(mpw_u64(b, w->lsn));
        W(mpw_u64(b, w->affected));
        W(mpw_array(b, w->n_failed));
        for (uint32_t i = 0; i < w->n_failed; i++) {
            if (!msg_code_known(w->failed[i].code))
                return DV_EINVAL;
            W(mpw_array(b, 3));
            W(msgw_str(b, w->failed[i].node_id));
            W(mpw_i64(b, w->failed[i].code));
            W(msgw_str(b, w->failed[i].text));
        }
        return DV_OK;
    }
    case MSG_GET:
    case MSG_P_GET:
        W(mpw_array(b, 1));
        return msgw_hits(b, &m->u.get_rep);
    case MSG_COUNT:
    case MSG_P_COUNT:
        W(mpw_array(b, 1));
        return mpw_u64(b, m->u.count_rep.count);
    case MSG_SCROLL:
    case MSG_P_SCROLL: {
        const struct msg_scroll_rep *s = &m->u.scroll_rep;
        W(mpw_array(b, 2));
        W(msgw_hits(b, &s->hits));
        return s->more ? mpw_pid(b, &s->next) : mpw_nil(b);
    }
    case MSG_FACET:
    case MSG_P_FACET: {
        const struct msg_facet_rep *f = &m->u.facet_rep;
        W(mpw_array(b, 1));
        W(mpw_array(b, f->n));
        for (uint32_t i = 0; i < f->n; i++) {
            const struct msg_facet_hit *h = &f->hits[i];
            W(mpw_array(b, 2));
            if (h->type == MSG_FV_STR)
                W(msgw_str(b, h->s));
            else if (h->type == MSG_FV_INT)
                W(mpw_i64(b, h->i));
            else if (h->type == MSG_FV_BOOL)
                W(mpw_bool(b, h->i != 0));
            else
                return DV_EINVAL;
            W(mpw_u64(b, h->count));
        }
        return DV_OK;
    }
    case MSG_SCROLL_ORDER:
    case MSG_P_SCROLL_ORDER: {
        const struct msg_oscroll_rep *o = &m->u.oscroll_rep;
        W(mpw_array(b, 2));
        W(msgw_hits(b, &o->hits));
        W(mpw_array(b, o->hits.n));
        for (uint32_t i = 0; i < o->hits.n; i++)
            W(o->vals[i].is_float ? mpw_f64(b, o->vals[i].f) : mpw_i64(b, o->vals[i].i));
        return DV_OK;
    }
    case MSG_SPARSE_STATS: {
        const struct msg_sstats_rep *s = &m->u.sstats_rep;
        W(mpw_array(b, 1));
        W(mpw_array(b, s->n_parts));
        for (uint32_t i = 0; i < s->n_parts; i++) {
            const struct msg_sstats_part *sp = &s->parts[i];
            W(mpw_array(b, 4));
            W(mpw_u64(b, sp->part));
            W(sp->err.code ? msgw_error(b, &sp->err) : mpw_nil(b));
            W(mpw_u64(b, sp->docs));
            W(mpw_bin(b, sp->df, sp->err.code ? 0 : (size_t)sp->n * 8));
        }
        return DV_OK;
    }
    case MSG_SEARCH: {
        const struct msg_search_rep *s = &m->u.search_rep;
        W(mpw_array(b, 1));
        W(mpw_array(b, s->n_parts));
        for (uint32_t i = 0; i < s->n_parts; i++) {
            const struct msg_search_part *sp = &s->parts[i];
            W(mpw_array(b, 3));
            W(mpw_u64(b, sp->part));
            W(sp->err.code ? msgw_error(b, &sp->err) : mpw_nil(b));
            W(mpw_array(b, sp->err.code ? 0 : sp->n));
            for (uint32_t j = 0; !sp->err.code && j < sp->n; j++)
                W(msgw_hits(b, &sp->results[j]));
        }
        return DV_OK;
    }
    case MSG_STATS:
        W(mpw_array(b, 1));
        W(mpw_array(b, m->u.stats_rep.n));
        for (uint32_t i = 0; i < m->u.stats_rep.n; i++) {
            W(mpw_array(b, 2));
            W(msgw_str(b, m->u.stats_rep.stats[i].name));
            W(mpw_u64(b, m->u.stats_rep.stats[i].value));
        }
        return DV_OK;
    case MSG_SNAPSHOT_READ: {
        const struct msg_snapshot_rep *s = &m->u.snapshot_rep;
        W(mpw_array(b, 5));
        W(mpw_u64(b, s->session));
        W(mpw_u64(b, s->lsn));
        W(mpw_u64(b, s->total));
        W(msgw_bin(b, s->data));
        return mpw_bool(b, s->done);
    }
    case MSG_WAL_READ: {
        const struct msg_wal_rep *w = &m->u.wal_rep;
        W(mpw_array(b, 3));
        W(msgw_wal_recs(b, w->recs, w->n));
        W(mpw_u64(b, w->applied_lsn));
        W(mpw_array(b, w->n_terms));
        for (uint32_t i = 0; i < w->n_terms; i++) {
            W(mpw_array(b, 2));
            W(mpw_u64(b, w->terms[i].term));
            W(mpw_u64(b, w->terms[i].start));
        }
        return DV_OK;
    }
    case MSG_COLL_LIST:
        W(mpw_array(b, 1));
        return msgw_strs(b, m->u.coll_list_rep.names, m->u.coll_list_rep.n);
    case MSG_COLL_INFO: {
        const struct msg_coll_info_rep *f = &m->u.coll_info_rep;
        W(mpw_array(b, f->cfg.n_spaces ? 12 : 11));
        W(msgw_coll_cfg(b, &f->cfg, true));
        W(mpw_u64(b, f->points));
        W(mpw_array(b, f->n_parts));
        for (uint32_t i = 0; i < f->n_parts; i++) {
            const struct msg_coll_part *p = &f->parts[i];
            W(mpw_array(b, 6));
            W(mpw_u64(b, p->part));
            W(mpw_u64(b, p->epoch));
            W(msgw_strs(b, p->nodes, p->n_nodes));
            W(mpw_u64(b, p->points));
            W(mpw_u64(b, p->term));
            W(mpw_array(b, p->n_nodes));
            for (uint32_t j = 0; j < p->n_nodes; j++)
                W(mpw_u64(b, p->states ? p->states[j] : 0));
        }
        if (f->cfg.n_spaces) /* 12th: the named vectors */
            W(msgw_spaces(b, &f->cfg));
        return DV_OK;
    }
    case MSG_ROUTE: {
        const struct msg_route_rep *r = &m->u.route_rep;
        /* 5th: the collection's name when asked by an alias ("" otherwise), 6th: the named
         * vectors */
        W(mpw_array(b, r->cfg.n_spaces ? 6 : r->coll.len ? 5 : 4));
        W(mpw_u64(b, r->map_epoch));
        W(msgw_coll_cfg(b, &r->cfg, true));
        W(mpw_array(b, r->n_nodes));
        for (uint32_t i = 0; i < r->n_nodes; i++) {
            bool search = r->search_urls && r->search_urls[i].len > 0;
            W(mpw_array(b, search ? 3 : 2));
            W(msgw_str(b, r->nodes[i].node_id));
            W(msgw_str(b, r->nodes[i].url));
            if (search)
                W(msgw_str(b, r->search_urls[i]));
        }
        W(mpw_array(b, r->n_parts));
        for (uint32_t i = 0; i < r->n_parts; i++) {
            const struct msg_route_part *p = &r->parts[i];
            W(mpw_array(b, 6));
            W(mpw_u64(b, p->epoch));
            W(mpw_u64(b, p->term));
            W(p->primary == UINT32_MAX ? mpw_nil(b) : mpw_u64(b, p->primary));
            W(msgw_u32s(b, p->readers, p->n_readers));
            W(mpw_bool(b, p->writable));
            W(msgw_u32s(b, p->secondaries, p->n_secondaries));
        }
        if (r->coll.len || r->cfg.n_spaces)
            W(msgw_str(b, r->coll));
        if (r->cfg.n_spaces)
            W(msgw_spaces(b, &r->cfg));
        return DV_OK;
    }
    case MSG_P_SEARCH: {
        const struct msg_csearch_rep *s = &m->u.csearch_rep;
        W(mpw_array(b, 3));
        W(mpw_array(b, s->n));
        for (uint32_t i = 0; i < s->n; i++)
            W(msgw_hits(b, &s->results[i]));
        W(mpw_bool(b, s->partial));
        W(mpw_array(b, s->n_failed));
        for (uint32_t i = 0; i < s->n_failed; i++)
            W(mpw_u64(b, s->failed[i]));
        return DV_OK;
    }
    case MSG_CLUSTER:
    case MSG_ADMIN:
        W(mpw_array(b, 1));
        return msgw_raw_or_nil(b, m->u.cluster_rep.status);
    case MSG_REPLICA_PULL: {
        const struct msg_pull_rep *p = &m->u.pull_rep;
        W(mpw_array(b, 6));
        W(mpw_u64(b, p->state));
        W(mpw_u64(b, p->bytes_done));
        W(mpw_u64(b, p->bytes_total));
        W(mpw_u64(b, p->applied_lsn));
        W(mpw_u64(b, p->source_lsn));
        return msgw_str(b, p->error);
    }
    case MSG_NODE_REPORT:
        W(mpw_array(b, 2));
        W(mpw_u64(b, m->u.node_report_rep.map_epoch));
        return msgw_str(b, m->u.node_report_rep.leader_url);
    default: /* create, drop, coll_create, coll_drop */
        return mpw_array(b, 0);
    }
}
