/* test_combine.c - the coordinator's search combiner (coordinator/server/combine.c) against a real
 * rpcsrv on 127.0.0.1 standing in for a node: each query's answer names the query (its
 * first coordinate), so a caller given another caller's slice is caught. Many threads, one
 * slot per node: searches must travel together and each caller must get exactly its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "clock.h"
#include "combine.h"
#include "err.h"
#include "msg.h"
#include "net_util.h"
#include "rpcsrv.h"
#include "transport.h"

#define DIM     4
#define THREADS 8
#define CALLS   60 /* per thread */

static atomic_uint node_requests, node_queries, max_seen;

/* The node: for each partition and query, 3 hits with ids q*10 + {0,1,2} where q is the
 * query's first coordinate; partition 7 answers an error instead. */
static int node(void *arg, const void *in, size_t n, struct buf *out, struct rpcsrv_result *res)
{
    (void)arg;
    struct msg m;
    char err[DV_ERRMSG_SIZE];
    if (msg_decode(in, n, &m, err) != DV_OK || m.type != MSG_SEARCH)
        return DV_EPROTO;
    const struct msg_search_req *s = &m.u.search_req;
    atomic_fetch_add(&node_requests, 1);
    atomic_fetch_add(&node_queries, s->n_queries);
    unsigned prev = atomic_load(&max_seen);
    while (s->n_queries > prev && !atomic_compare_exchange_weak(&max_seen, &prev, s->n_queries))
        ;
    clock_sleep_ms(2); /* a search takes time: callers pile up behind the slot */
    struct msg_search_part *parts = calloc(s->n_parts, sizeof *parts);
    struct msg_hits *hits = calloc((size_t)s->n_parts * s->n_queries, sizeof *hits);
    struct msg_hit *h = calloc((size_t)s->n_parts * s->n_queries * 3, sizeof *h);
    for (uint32_t j = 0; j < s->n_parts; j++) {
        parts[j].part = s->parts[j].part;
        if (s->parts[j].part == 7) {
            parts[j].err = (struct msg_error){DV_ESTALE, {"stale map", 9}, 3};
            continue;
        }
        parts[j].results = hits + (size_t)j * s->n_queries;
        parts[j].n = s->n_queries;
        for (uint32_t q = 0; q < s->n_queries; q++) {
            struct msg_hit *x = h + ((size_t)j * s->n_queries + q) * 3;
            for (int i = 0; i < 3; i++)
                x[i] = (struct msg_hit){.id = pid_num((uint64_t)s->queries[q].vec[0] * 10 + i),
                                        .score = (float)i};
            parts[j].results[q] = (struct msg_hits){x, 3};
        }
    }
    struct msg r = {.type = MSG_SEARCH, .reply = true, .req_id = m.req_id};
    r.u.search_rep = (struct msg_search_rep){parts, s->n_parts};
    int rc = msg_encode(&r, out, err);
    res->type = MSG_SEARCH;
    res->code = DV_OK;
    free(parts);
    free(hits);
    free(h);
    msg_free(&m);
    return rc;
}

struct worker {
    pthread_t th;
    struct combiner *cb;
    uint32_t id;
    unsigned wrong, failed;
};

/* Searches partitions {0, 1} (or {0, 7} for odd calls of odd threads: another target, so
 * two kinds of batch queue at once) with 1 to 3 queries per call. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (uint32_t c = 0; c < CALLS; c++) {
        uint32_t nq = c % 3 + 1;
        float v[3][DIM];
        struct msg_query q[3];
        for (uint32_t i = 0; i < nq; i++) {
            v[i][0] = (float)(w->id * 1000 + c * 3 + i);
            q[i] = (struct msg_query){.vec = v[i], .dim = DIM, .k = 3};
        }
        bool other = (w->id & 1) && (c & 1);
        struct msg_target t[2] = {{0, 1}, {other ? 7u : 1u, 1}};
        struct msg req = {.type = MSG_SEARCH};
        req.addr.coll = (struct msg_str){"c", 1};
        req.u.search_req = (struct msg_search_req){t, 2, q, nq};
        struct comb_share sh;
        char err[DV_ERRMSG_SIZE];
        if (combiner_search(w->cb, &req, 0, &sh, err) != DV_OK) {
            w->failed++;
            continue;
        }
        if (sh.rep.n_parts != 2 || sh.rep.parts[0].n != nq)
            w->wrong++;
        for (uint32_t j = 0; j < sh.rep.n_parts && j < 2; j++) {
            if (sh.rep.parts[j].part != t[j].part)
                w->wrong++;
            if (t[j].part == 7) {
                if (sh.rep.parts[j].err.code != DV_ESTALE)
                    w->wrong++;
                continue;
            }
            for (uint32_t i = 0; i < nq && i < sh.rep.parts[j].n; i++) {
                const struct msg_hits *x = &sh.rep.parts[j].results[i];
                if (x->n != 3 || x->hits[0].id.lo != (uint64_t)v[i][0] * 10 ||
                    x->hits[2].id.lo != (uint64_t)v[i][0] * 10 + 2)
                    w->wrong++;
            }
        }
        comb_share_release(&sh);
    }
    return NULL;
}

static void test_combined_slices(void **state)
{
    (void)state;
    char url[64], err[DV_ERRMSG_SIZE];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", (unsigned)net_free_port());
    struct rpcsrv_opts so = {
        .listen = url, .workers = 4, .contexts = 16, .recv_max = 1 << 20, .handle = node};
    struct rpcsrv *s;
    assert_int_equal(rpcsrv_new(&so, &s, err), DV_OK);
    assert_int_equal(rpcsrv_listen(s, err), DV_OK);
    struct tr_opts o;
    tr_opts_default(&o);
    o.connect_wait_ms = 2000;
    struct tr *tr;
    assert_int_equal(tr_nng_new(&tr), DV_OK);
    struct tr_peer *r;
    assert_int_equal(tr_open(tr, url, &o, &r, err), DV_OK);
    struct combiner *cb = combiner_new(r, 1);
    assert_non_null(cb);

    struct worker w[THREADS];
    for (uint32_t i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.cb = cb, .id = i};
        assert_int_equal(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
    }
    unsigned wrong = 0, failed = 0;
    for (uint32_t i = 0; i < THREADS; i++) {
        pthread_join(w[i].th, NULL);
        wrong += w[i].wrong;
        failed += w[i].failed;
    }
    struct combiner_stats st;
    combiner_stats(cb, &st);
    printf("# %u callers: %llu node requests carrying %llu queries (largest %u); %u wrong, "
           "%u failed\n",
           THREADS * CALLS, (unsigned long long)st.requests, (unsigned long long)st.queries,
           atomic_load(&max_seen), wrong, failed);
    assert_int_equal(failed, 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(st.searches, THREADS * CALLS);
    assert_int_equal(st.requests, atomic_load(&node_requests));
    assert_int_equal(st.queries, atomic_load(&node_queries));
    assert_true(st.requests < st.searches / 2); /* they did travel together */
    assert_true(atomic_load(&max_seen) <= 64);

    /* The node gone: every caller gets the error, nothing hangs. */
    assert_int_equal(rpcsrv_drain(s, 1000), 0);
    rpcsrv_stop(s);
    float v[DIM] = {1};
    struct msg_query q = {.vec = v, .dim = DIM, .k = 3};
    struct msg_target t = {0, 1};
    struct msg req = {.type = MSG_SEARCH};
    req.addr.coll = (struct msg_str){"c", 1};
    req.u.search_req = (struct msg_search_req){&t, 1, &q, 1};
    struct comb_share sh;
    int rc = DV_OK;
    for (int i = 0; i < 50 && rc == DV_OK; i++) {
        rc = combiner_search(cb, &req, 500, &sh, err);
        if (rc == DV_OK)
            comb_share_release(&sh);
    }
    assert_int_not_equal(rc, DV_OK);
    assert_true(err[0] != '\0');
    combiner_free(cb);
    tr_peer_close(r);
    tr_free(tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combined_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
