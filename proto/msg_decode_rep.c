/* msg_decode_rep.c - the bounds-checked decoder of the native protocol's reply bodies
 * (msg_decode.c reads the envelope and calls it). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "msg_dec.h"
#include "msg_int.h"

int msgd_reply_body(struct dec *d)
{
    struct msg *m = d->m;
    int rc;
    switch (m->type) {
    case MSG_REPLICA_DIGEST: {
        struct msg_digest_rep *g = &m->u.digest_rep;
        if ((rc = mpk_dec_tuple(&d->k, 3, "body")) ||
            (rc = mpk_dec_u64(&d->k, &g->digest, "digest")) ||
            (rc = mpk_dec_u64(&d->k, &g->points, "points")) ||
            (rc = mpk_dec_u64(&d->k, &g->lsn, "lsn")))
            return rc;
        return DV_OK;
    }
    case MSG_HELLO: {
        struct msg_hello_rep *h = &m->u.hello_rep;
        if ((rc = mpk_dec_tuple(&d->k, 4, "body")) || (rc = msgd_str(d, &h->node_id, "node id")) ||
            (rc = msgd_str(d, &h->version, "version")) ||
            (rc = mpk_dec_u64(&d->k, &h->capacity, "capacity")))
            return rc;
        return msgd_replicas(d, &h->replicas, &h->n_replicas);
    }
    case MSG_REPLICA_LIST:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        return msgd_replicas(d, &m->u.list_rep.replicas, &m->u.list_rep.n);
    case MSG_REPLICA_INFO: {
        struct msg_info_rep *f = &m->u.info_rep;
        uint32_t *u32s[] = {&f->dim, &f->metric, &f->m, &f->ef_construction, &f->ef_search};
        uint64_t *u64s[] = {&f->points,   &f->deleted,   &f->applied_lsn,  &f->durable_lsn,
                            &f->ckpt_lsn, &f->wal_bytes, &f->payload_bytes};
        if ((rc = mpk_dec_tuple(&d->k, 13, "body")))
            return rc;
        for (size_t i = 0; i < 5; i++)
            if ((rc = mpk_dec_u32(&d->k, u32s[i], "info")))
                return rc;
        for (size_t i = 0; i < 7; i++)
            if ((rc = mpk_dec_u64(&d->k, u64s[i], "info")))
                return rc;
        return mpk_dec_bool(&d->k, &f->sq8, "sq8");
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
        struct msg_write_rep *w = &m->u.write_rep;
        if ((rc = mpk_dec_tuple(&d->k, 3, "body")) || (rc = mpk_dec_u64(&d->k, &w->lsn, "lsn")) ||
            (rc = mpk_dec_u64(&d->k, &w->affected, "affected")) ||
            (rc = mpk_dec_list(&d->k, &w->n_failed, MIN_PEER_FAIL, PROTO_MAX_REPLICAS,
                               "failed secondaries")))
            return rc;
        w->failed = msgd_alloc(d, w->n_failed, sizeof *w->failed);
        if (!w->failed)
            return msgd_fail(d, DV_ENOMEM, "failed secondaries");
        for (uint32_t i = 0; i < w->n_failed; i++) {
            int64_t code;
            if ((rc = mpk_dec_tuple(&d->k, 3, "failed secondary")) ||
                (rc = msgd_str(d, &w->failed[i].node_id, "failed secondary node id")))
                return rc;
            TRY(mpk_dec_i64(&d->k, &code, "failed secondary code"));
            if (!msg_code_known(code))
                return msgd_fail(d, DV_ERANGE, "failed secondary code");
            w->failed[i].code = (int)code;
            if ((rc = msgd_str(d, &w->failed[i].text, "failed secondary message")))
                return rc;
        }
        return DV_OK;
    }
    case MSG_GET:
    case MSG_P_GET:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        return msgd_hits(d, &m->u.get_rep);
    case MSG_COUNT:
    case MSG_P_COUNT:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        return mpk_dec_u64(&d->k, &m->u.count_rep.count, "count");
    case MSG_SCROLL:
    case MSG_P_SCROLL: {
        struct msg_scroll_rep *s = &m->u.scroll_rep;
        if ((rc = mpk_dec_tuple(&d->k, 2, "body")) || (rc = msgd_hits(d, &s->hits)))
            return rc;
        s->more = mpk_peek(&d->k.r) != MPK_NIL;
        if (s->more)
            TRY(mpk_dec_pid(&d->k, &s->next, "next"));
        else
            TRY(mpk_dec_nil(&d->k, "next"));
        return DV_OK;
    }
    case MSG_FACET:
    case MSG_P_FACET: {
        struct msg_facet_rep *f = &m->u.facet_rep;
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")) ||
            (rc = mpk_dec_list(&d->k, &f->n, MIN_FACET_HIT, UINT32_MAX, "facet hits")))
            return rc;
        f->hits = msgd_alloc(d, f->n ? f->n : 1, sizeof *f->hits);
        if (!f->hits)
            return msgd_fail(d, DV_ENOMEM, "facet hits");
        for (uint32_t i = 0; i < f->n; i++) {
            struct msg_facet_hit *h = &f->hits[i];
            bool b;
            memset(h, 0, sizeof *h);
            TRY(mpk_dec_tuple(&d->k, 2, "facet hit"));
            switch (mpk_peek(&d->k.r)) {
            case MPK_STR:
                h->type = MSG_FV_STR;
                TRY(msgd_str(d, &h->s, "facet value"));
                break;
            case MPK_BOOL:
                h->type = MSG_FV_BOOL;
                TRY(mpk_dec_bool(&d->k, &b, "facet value"));
                h->i = b;
                break;
            default:
                h->type = MSG_FV_INT;
                TRY(mpk_dec_i64(&d->k, &h->i, "facet value"));
            }
            TRY(mpk_dec_u64(&d->k, &h->count, "facet count"));
        }
        return DV_OK;
    }
    case MSG_SCROLL_ORDER:
    case MSG_P_SCROLL_ORDER: {
        struct msg_oscroll_rep *o = &m->u.oscroll_rep;
        uint32_t nv;
        if ((rc = mpk_dec_tuple(&d->k, 2, "body")) || (rc = msgd_hits(d, &o->hits)) ||
            (rc = mpk_dec_list(&d->k, &nv, MIN_ORDVAL, UINT32_MAX, "order values")))
            return rc;
        if (nv != o->hits.n)
            return msgd_fail(d, DV_ECORRUPT, "order values count");
        o->vals = msgd_alloc(d, nv ? nv : 1, sizeof *o->vals);
        if (!o->vals)
            return msgd_fail(d, DV_ENOMEM, "order values");
        for (uint32_t i = 0; i < nv; i++) {
            memset(&o->vals[i], 0, sizeof o->vals[i]);
            o->vals[i].is_float = mpk_peek(&d->k.r) == MPK_FLOAT;
            if (o->vals[i].is_float)
                TRY(mpk_dec_f64(&d->k, &o->vals[i].f, "order value"));
            else
                TRY(mpk_dec_i64(&d->k, &o->vals[i].i, "order value"));
        }
        return DV_OK;
    }
    case MSG_SPARSE_STATS: {
        struct msg_sstats_rep *s = &m->u.sstats_rep;
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")) ||
            (rc = mpk_dec_list(&d->k, &s->n_parts, MIN_PART, UINT32_MAX, "partitions")))
            return rc;
        s->parts = msgd_alloc(d, s->n_parts, sizeof *s->parts);
        if (!s->parts)
            return msgd_fail(d, DV_ENOMEM, "partitions");
        for (uint32_t i = 0; i < s->n_parts; i++) {
            struct msg_sstats_part *sp = &s->parts[i];
            const void *dp;
            uint32_t dl;
            memset(sp, 0, sizeof *sp);
            if ((rc = mpk_dec_tuple(&d->k, 4, "partition stats")) ||
                (rc = mpk_dec_u32(&d->k, &sp->part, "partition")))
                return rc;
            if (mpk_peek(&d->k.r) == MPK_NIL)
                TRY(mpk_dec_nil(&d->k, "partition error"));
            else if ((rc = msgd_error(d, &sp->err)))
                return rc;
            if ((rc = mpk_dec_u64(&d->k, &sp->docs, "docs")) ||
                (rc = mpk_dec_bin(&d->k, &dp, &dl, "term counts")))
                return rc;
            if (dl % 8)
                return msgd_fail(d, DV_ECORRUPT, "term counts");
            sp->n = dl / 8;
            sp->df = msgd_alloc(d, sp->n ? sp->n : 1, sizeof *sp->df);
            if (!sp->df)
                return msgd_fail(d, DV_ENOMEM, "term counts");
            memcpy(sp->df, dp, dl);
        }
        return DV_OK;
    }
    case MSG_SEARCH: {
        struct msg_search_rep *s = &m->u.search_rep;
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        if ((rc = mpk_dec_list(&d->k, &s->n_parts, MIN_PART, UINT32_MAX, "partitions")))
            return rc;
        s->parts = msgd_alloc(d, s->n_parts, sizeof *s->parts);
        if (!s->parts)
            return msgd_fail(d, DV_ENOMEM, "partitions");
        for (uint32_t i = 0; i < s->n_parts; i++) {
            struct msg_search_part *sp = &s->parts[i];
            memset(sp, 0, sizeof *sp);
            if ((rc = mpk_dec_tuple(&d->k, 3, "partition result")) ||
                (rc = mpk_dec_u32(&d->k, &sp->part, "partition")))
                return rc;
            if (mpk_peek(&d->k.r) == MPK_NIL)
                TRY(mpk_dec_nil(&d->k, "partition error"));
            else if ((rc = msgd_error(d, &sp->err)))
                return rc;
            if ((rc = mpk_dec_list(&d->k, &sp->n, MIN_HITS, UINT32_MAX, "results")))
                return rc;
            if (sp->err.code && sp->n)
                return msgd_fail(d, DV_ECORRUPT, "results");
            sp->results = msgd_alloc(d, sp->n, sizeof *sp->results);
            if (!sp->results)
                return msgd_fail(d, DV_ENOMEM, "results");
            for (uint32_t j = 0; j < sp->n; j++)
                if ((rc = msgd_hits(d, &sp->results[j])))
                    return rc;
        }
        return DV_OK;
    }
    case MSG_STATS: {
        struct msg_stats_rep *s = &m->u.stats_rep;
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        if ((rc = mpk_dec_list(&d->k, &s->n, MIN_STAT, UINT32_MAX, "stats")))
            return rc;
        s->stats = msgd_alloc(d, s->n, sizeof *s->stats);
        if (!s->stats)
            return msgd_fail(d, DV_ENOMEM, "stats");
        for (uint32_t i = 0; i < s->n; i++)
            if ((rc = mpk_dec_tuple(&d->k, 2, "stat")) ||
                (rc = msgd_str(d, &s->stats[i].name, "stat name")) ||
                (rc = mpk_dec_u64(&d->k, &s->stats[i].value, "stat value")))
                return rc;
        return DV_OK;
    }
    case MSG_SNAPSHOT_READ: {
        struct msg_snapshot_rep *s = &m->u.snapshot_rep;
        if ((rc = mpk_dec_tuple(&d->k, 5, "body")) ||
            (rc = mpk_dec_u64(&d->k, &s->session, "session")) ||
            (rc = mpk_dec_u64(&d->k, &s->lsn, "lsn")) ||
            (rc = mpk_dec_u64(&d->k, &s->total, "total")) || (rc = msgd_bin(d, &s->data, "data")) ||
            (rc = mpk_dec_bool(&d->k, &s->done, "done")))
            return rc;
        return DV_OK;
    }
    case MSG_WAL_READ: {
        struct msg_wal_rep *w = &m->u.wal_rep;
        uint32_t fields;
        /* 2 fields: a node that predates term histories */
        R(mpk_array(&d->k.r, &fields), "body");
        if (fields != 2 && fields != 3)
            return msgd_fail(d, DV_ECORRUPT, "body");
        if ((rc = msgd_wal_recs(d, &w->recs, &w->n)) ||
            (rc = mpk_dec_u64(&d->k, &w->applied_lsn, "applied_lsn")))
            return rc;
        w->terms = NULL;
        w->n_terms = 0;
        if (fields == 2)
            return DV_OK;
        if ((rc = mpk_dec_list(&d->k, &w->n_terms, MIN_TERM, PROTO_MAX_TERMS, "terms")))
            return rc;
        w->terms = msgd_alloc(d, w->n_terms, sizeof *w->terms);
        if (!w->terms)
            return msgd_fail(d, DV_ENOMEM, "terms");
        for (uint32_t i = 0; i < w->n_terms; i++)
            if ((rc = mpk_dec_tuple(&d->k, 2, "term")) ||
                (rc = mpk_dec_u64(&d->k, &w->terms[i].term, "term")) ||
                (rc = mpk_dec_u64(&d->k, &w->terms[i].start, "term start")))
                return rc;
        return DV_OK;
    }
    case MSG_COLL_LIST:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        return msgd_strs(d, &m->u.coll_list_rep.names, &m->u.coll_list_rep.n, "names");
    case MSG_COLL_INFO: {
        struct msg_coll_info_rep *f = &m->u.coll_info_rep;
        uint32_t body;
        /* 12 fields: with the named vectors */
        R(mpk_array(&d->k.r, &body), "body");
        if (body != 11 && body != 12)
            return msgd_fail(d, DV_ECORRUPT, "body");
        if ((rc = msgd_coll_cfg(d, &f->cfg, true)) ||
            (rc = mpk_dec_u64(&d->k, &f->points, "points")) ||
            (rc = mpk_dec_list(&d->k, &f->n_parts, MIN_COLL_PART, UINT32_MAX, "partition list")))
            return rc;
        f->parts = msgd_alloc(d, f->n_parts, sizeof *f->parts);
        if (!f->parts)
            return msgd_fail(d, DV_ENOMEM, "partition list");
        for (uint32_t i = 0; i < f->n_parts; i++) {
            struct msg_coll_part *p = &f->parts[i];
            uint32_t fields;
            /* 4 fields: a coordinator that predates terms and replica states */
            R(mpk_array(&d->k.r, &fields), "partition");
            if (fields != 4 && fields != 6)
                return msgd_fail(d, DV_ECORRUPT, "partition");
            if ((rc = mpk_dec_u32(&d->k, &p->part, "partition")) ||
                (rc = mpk_dec_u64(&d->k, &p->epoch, "partition epoch")) ||
                (rc = msgd_strs(d, &p->nodes, &p->n_nodes, "partition nodes")) ||
                (rc = mpk_dec_u64(&d->k, &p->points, "partition points")))
                return rc;
            p->states = msgd_alloc(d, p->n_nodes, 1);
            if (!p->states)
                return msgd_fail(d, DV_ENOMEM, "replica states");
            memset(p->states, 0, p->n_nodes);
            p->term = 0;
            if (fields == 6) {
                uint32_t ns;
                if ((rc = mpk_dec_u64(&d->k, &p->term, "partition term")) ||
                    (rc = mpk_dec_list(&d->k, &ns, MIN_U32, UINT32_MAX, "replica states")))
                    return rc;
                if (ns != p->n_nodes)
                    return msgd_fail(d, DV_ECORRUPT, "replica states");
                for (uint32_t j = 0; j < ns; j++) {
                    uint32_t st;
                    if ((rc = mpk_dec_u32(&d->k, &st, "replica state")))
                        return rc;
                    if (st > 255)
                        return msgd_fail(d, DV_ERANGE, "replica state");
                    p->states[j] = (uint8_t)st;
                }
            }
        }
        return body == 12 ? msgd_spaces(d, &f->cfg) : DV_OK;
    }
    case MSG_ROUTE: {
        struct msg_route_rep *r = &m->u.route_rep;
        uint32_t body;
        /* 4 fields: not asked by an alias (or a coordinator that predates aliases) */
        R(mpk_array(&d->k.r, &body), "body");
        if (body < 4 || body > 6)
            return msgd_fail(d, DV_ECORRUPT, "body");
        if ((rc = mpk_dec_u64(&d->k, &r->map_epoch, "map epoch")) ||
            (rc = msgd_coll_cfg(d, &r->cfg, true)) ||
            (rc = mpk_dec_list(&d->k, &r->n_nodes, MIN_PEER, PROTO_MAX_ROUTE_NODES, "nodes")))
            return rc;
        if (!(r->nodes = msgd_alloc(d, r->n_nodes, sizeof *r->nodes)) ||
            !(r->search_urls = msgd_alloc(d, r->n_nodes, sizeof *r->search_urls)))
            return msgd_fail(d, DV_ENOMEM, "nodes");
        for (uint32_t i = 0; i < r->n_nodes; i++) {
            uint32_t fields;
            /* 2 fields: a node without a search port */
            R(mpk_array(&d->k.r, &fields), "node");
            if (fields != 2 && fields != 3)
                return msgd_fail(d, DV_ECORRUPT, "node");
            if ((rc = msgd_str(d, &r->nodes[i].node_id, "node id")) ||
                (rc = msgd_str(d, &r->nodes[i].url, "node url")))
                return rc;
            r->search_urls[i] = (struct msg_str){NULL, 0};
            if (fields == 3 && (rc = msgd_str(d, &r->search_urls[i], "node search url")))
                return rc;
        }
        if ((rc = mpk_dec_list(&d->k, &r->n_parts, MIN_ROUTE_PART, UINT32_MAX, "partitions")))
            return rc;
        if (!(r->parts = msgd_alloc(d, r->n_parts, sizeof *r->parts)))
            return msgd_fail(d, DV_ENOMEM, "partitions");
        for (uint32_t i = 0; i < r->n_parts; i++) {
            struct msg_route_part *p = &r->parts[i];
            if ((rc = mpk_dec_tuple(&d->k, 6, "partition")) ||
                (rc = mpk_dec_u64(&d->k, &p->epoch, "partition epoch")) ||
                (rc = mpk_dec_u64(&d->k, &p->term, "partition term")))
                return rc;
            p->primary = UINT32_MAX;
            if (mpk_peek(&d->k.r) == MPK_NIL)
                TRY(mpk_dec_nil(&d->k, "primary"));
            else if ((rc = msgd_node_index(d, r->n_nodes, &p->primary, "primary")))
                return rc;
            if ((rc = msgd_node_indexes(d, r->n_nodes, &p->readers, &p->n_readers, "readers")) ||
                (rc = mpk_dec_bool(&d->k, &p->writable, "writable")) ||
                (rc = msgd_node_indexes(d, r->n_nodes, &p->secondaries, &p->n_secondaries,
                                        "secondaries")))
                return rc;
        }
        if (body >= 5 && (rc = msgd_str(d, &r->coll, "collection")))
            return rc;
        return body == 6 ? msgd_spaces(d, &r->cfg) : DV_OK;
    }
    case MSG_P_SEARCH: {
        struct msg_csearch_rep *s = &m->u.csearch_rep;
        if ((rc = mpk_dec_tuple(&d->k, 3, "body")) ||
            (rc = mpk_dec_list(&d->k, &s->n, MIN_HITS, UINT32_MAX, "results")))
            return rc;
        s->results = msgd_alloc(d, s->n, sizeof *s->results);
        if (!s->results)
            return msgd_fail(d, DV_ENOMEM, "results");
        for (uint32_t i = 0; i < s->n; i++)
            if ((rc = msgd_hits(d, &s->results[i])))
                return rc;
        if ((rc = mpk_dec_bool(&d->k, &s->partial, "partial")) ||
            (rc = mpk_dec_list(&d->k, &s->n_failed, MIN_U32, UINT32_MAX, "failed partitions")))
            return rc;
        s->failed = msgd_alloc(d, s->n_failed, sizeof *s->failed);
        if (!s->failed)
            return msgd_fail(d, DV_ENOMEM, "failed partitions");
        for (uint32_t i = 0; i < s->n_failed; i++)
            if ((rc = mpk_dec_u32(&d->k, &s->failed[i], "failed partition")))
                return rc;
        return DV_OK;
    }
    case MSG_CLUSTER:
    case MSG_ADMIN:
        if ((rc = mpk_dec_tuple(&d->k, 1, "body")))
            return rc;
        return msgd_raw_or_nil(d, &m->u.cluster_rep.status, "status");
    case MSG_REPLICA_PULL: {
        struct msg_pull_rep *p = &m->u.pull_rep;
        if ((rc = mpk_dec_tuple(&d->k, 6, "body")) ||
            (rc = mpk_dec_u32(&d->k, &p->state, "state")) ||
            (rc = mpk_dec_u64(&d->k, &p->bytes_done, "bytes_done")) ||
            (rc = mpk_dec_u64(&d->k, &p->bytes_total, "bytes_total")) ||
            (rc = mpk_dec_u64(&d->k, &p->applied_lsn, "applied_lsn")) ||
            (rc = mpk_dec_u64(&d->k, &p->source_lsn, "source_lsn")) ||
            (rc = msgd_str(d, &p->error, "error")))
            return rc;
        return DV_OK;
    }
    case MSG_NODE_REPORT: {
        struct msg_node_report_rep *r = &m->u.node_report_rep;
        if ((rc = mpk_dec_tuple(&d->k, 2, "body")) ||
            (rc = mpk_dec_u64(&d->k, &r->map_epoch, "map_epoch")) ||
            (rc = msgd_str(d, &r->leader_url, "leader_url")))
            return rc;
        return DV_OK;
    }
    default: /* create, drop, coll_create, coll_drop */
        return mpk_dec_tuple(&d->k, 0, "body");
    }
}
