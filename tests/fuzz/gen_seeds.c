/* gen_seeds.c - writes the seed corpus of fuzz_msg: one valid encoding of every request and
 * reply type of proto/msg.h (node messages, the client API, node reports; and a few variants)
 * into a directory, one file each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "err.h"
#include "msg.h"
#include "pid.h"

#define S(lit) ((struct msg_str){lit, sizeof(lit) - 1})
#define B(arr) ((struct msg_bytes){arr, sizeof arr})

static const uint8_t filter[] = {0x81, 0xa3, 't', 'a', 'g', 0xa1, 'x'}; /* {"tag":"x"} */
static const uint8_t range[] = {0x81, 0xa1, 'n', 0x81, 0xa3,
                                'g',  't',  'e', 0x05}; /* {"n":{"gte":5}} */
static const uint8_t payload[] = {0x82, 0xa3, 't', 'a', 'g', 0xa1, 'x', 0xa1, 'n', 0x07};
static const uint8_t keys[] = {0x91, 0xa1, 'n'}; /* ["n"]: set_payload delete keys */

static const char *dir;
static int written;

/* Encodes m into dir/NN-name-kind[-variant]; exits on failure. */
static void put(const struct msg *m, const char *variant)
{
    char errmsg[DV_ERRMSG_SIZE], path[4096];
    struct buf b = BUF_INIT;
    int rc = msg_encode(m, &b, errmsg);
    if (rc != DV_OK) {
        fprintf(stderr, "gen_seeds: %s\n", errmsg);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%02d-%s-%s%s%s", dir, m->type, msg_type_name(m->type),
             m->reply ? "rep" : "req", variant ? "-" : "", variant ? variant : "");
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f) != 0) {
        fprintf(stderr, "gen_seeds: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    buf_free(&b);
    written++;
}

static struct msg req(int type)
{
    struct msg m = {.type = type, .req_id = 1000 + (uint64_t)type};
    if (msg_type_addressed(type))
        m.addr = (struct msg_addr){S("docs"), 3, 7, 0};
    else if (msg_type_collection(type))
        m.addr.coll = S("docs");
    return m;
}

static struct msg rep(int type)
{
    struct msg m = {.type = type, .reply = true, .req_id = 1000 + (uint64_t)type};
    return m;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds DIR\n");
        return 2;
    }
    dir = argv[1];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_seeds: %s: %s\n", dir, strerror(errno));
        return 1;
    }

    struct pid ids[3] = {
        pid_num(1), pid_num(UINT64_MAX), {0x0123456789abcdefULL, 0xfedcba9876543210ULL, PID_UUID}};
    float vecs[12] = {0.5f, -1, 2, 0, 1, 1, 1, 1, -0.25f, 3e30f, 1e-30f, 0};
    struct msg_bytes pls[3] = {B(payload), {NULL, 0}, B(payload)};
    struct msg_replica reps[2] = {{S("docs"), 3, 41}, {S("images"), 0, 0}};
    struct msg_hit hits[3] = {{ids[0], 0.9f, vecs, 4, B(payload), {NULL, 0}},
                              {ids[2], 0.5f, NULL, 0, {NULL, 0}, {NULL, 0}},
                              {ids[1], -1.5f, vecs + 4, 4, {NULL, 0}, {NULL, 0}}};
    struct msg m;

    /* ---- requests ---- */
    m = req(MSG_HELLO);
    put(&m, NULL);
    m = req(MSG_REPLICA_CREATE);
    m.u.create_req = (struct msg_create_req){{.dim = 4,
                                              .metric = 1,
                                              .m = 16,
                                              .ef_construction = 200,
                                              .ef_search = 64,
                                              .fsync = 0,
                                              .sq8 = true},
                                             12};
    put(&m, NULL);
    m = req(MSG_REPLICA_DROP);
    put(&m, NULL);
    m = req(MSG_REPLICA_LIST);
    put(&m, NULL);
    m = req(MSG_REPLICA_INFO);
    put(&m, NULL);
    m = req(MSG_UPSERT);
    m.u.upsert_req = (struct msg_upsert_req){ids, vecs, pls, 3, 4, NULL};
    put(&m, NULL);
    m = req(MSG_DELETE);
    m.u.delete_req = (struct msg_ids_req){ids, 3};
    put(&m, NULL);
    m = req(MSG_GET);
    m.u.get_req = (struct msg_get_req){ids, 2, true, true};
    put(&m, NULL);
    m = req(MSG_SET_PAYLOAD);
    m.u.set_payload_req = (struct msg_set_payload_req){1, ids, 2, B(payload)};
    put(&m, "set");
    m.u.set_payload_req = (struct msg_set_payload_req){3, ids + 2, 1, B(keys)};
    put(&m, "delete-keys");
    m = req(MSG_COUNT);
    m.u.count_req.filter = B(range);
    put(&m, NULL);
    m.u.count_req.filter = (struct msg_bytes){NULL, 0};
    put(&m, "all");
    m = req(MSG_SCROLL);
    m.u.scroll_req = (struct msg_scroll_req){true, ids[2], 100, B(filter), true, true};
    put(&m, "from");
    m.u.scroll_req = (struct msg_scroll_req){false, {0}, 10, {NULL, 0}, false, false};
    put(&m, "start");
    m = req(MSG_FACET);
    m.u.facet_req = (struct msg_facet_req){S("city"), B(range), 0, true};
    put(&m, "filter");
    m = req(MSG_SCROLL_ORDER);
    m.u.oscroll_req = (struct msg_oscroll_req){
        S("ts"), true, {MSG_START_STR, 0, 0, S("2024-03-01")}, 10, B(range), false, true, 0};
    put(&m, "time");
    m.u.oscroll_req = (struct msg_oscroll_req){
        S("n"), false, {MSG_START_FLOAT, 0, 1.5, {NULL, 0}}, 3, {NULL, 0}, true, false, 0};
    put(&m, "float");
    m.u.oscroll_req = (struct msg_oscroll_req){
        S(""), false, {MSG_START_NONE, 0, 0, {NULL, 0}}, 5, B(range), false, false, 42};
    put(&m, "sample");
    struct msg_target parts[3] = {{0, 7}, {3, 7}, {9, 8}};
    struct msg_query qs[3] = {
        {vecs, 4, 10, 0, B(filter), true, false, {NULL, 0}, NULL, 0, NULL, 0, NULL, 0},
        {vecs + 4, 4, 1, 128, {NULL, 0}, false, true, {NULL, 0}, NULL, 0, NULL, 0, NULL, 0},
        {vecs + 8, 4, 5, 64, B(range), true, true, {NULL, 0}, NULL, 0, NULL, 0, NULL, 0}};
    m = req(MSG_SEARCH);
    m.addr.coll = S("docs");
    m.u.search_req = (struct msg_search_req){parts, 3, qs, 3};
    put(&m, NULL);
    m = req(MSG_STATS);
    put(&m, NULL);
    m = req(MSG_SNAPSHOT_READ);
    m.u.snapshot_req = (struct msg_snapshot_req){0, 0, 4u << 20};
    put(&m, "new");
    m.u.snapshot_req = (struct msg_snapshot_req){17, 4u << 20, 4u << 20};
    put(&m, "next");
    m = req(MSG_WAL_READ);
    m.u.wal_req = (struct msg_wal_req){42, 1u << 20};
    put(&m, NULL);
    m = req(MSG_PAYLOAD_INDEX);
    m.u.index_req = (struct msg_index_req){MSG_INDEX_CREATE, 1, S("n"), {NULL, 0}};
    put(&m, "create");
    m.u.index_req = (struct msg_index_req){MSG_INDEX_DROP, 0, S("tag"), {NULL, 0}};
    put(&m, "drop");

    /* ---- client API and node report requests ---- */
    m = req(MSG_COLL_CREATE);
    m.u.coll_cfg = (struct msg_coll_cfg){.dim = 4,
                                         .metric = 2,
                                         .m = 16,
                                         .ef_construction = 200,
                                         .ef_search = 64,
                                         .fsync = 1,
                                         .partitions = 8,
                                         .replication = 2,
                                         .sq8 = false};
    put(&m, NULL);
    m.u.coll_cfg = (struct msg_coll_cfg){.dim = 4,
                                         .metric = 0,
                                         .m = 0,
                                         .ef_construction = 0,
                                         .ef_search = 0,
                                         .fsync = 0,
                                         .partitions = 0,
                                         .replication = 0,
                                         .sq8 = true};
    put(&m, "defaults");
    m = req(MSG_COLL_DROP);
    put(&m, NULL);
    m = req(MSG_COLL_LIST);
    put(&m, NULL);
    m = req(MSG_COLL_INFO);
    put(&m, NULL);
    m = req(MSG_P_UPSERT);
    m.u.upsert_req = (struct msg_upsert_req){ids, vecs, pls, 3, 4, NULL};
    put(&m, NULL);
    m = req(MSG_P_DELETE);
    m.u.delete_req = (struct msg_ids_req){ids, 3};
    put(&m, NULL);
    m = req(MSG_P_GET);
    m.u.get_req = (struct msg_get_req){ids + 1, 2, false, true};
    put(&m, NULL);
    m = req(MSG_P_SET_PAYLOAD);
    m.u.set_payload_req = (struct msg_set_payload_req){2, ids, 3, B(payload)};
    put(&m, NULL);
    m = req(MSG_P_COUNT);
    m.u.count_req.filter = B(filter);
    put(&m, NULL);
    m = req(MSG_P_SCROLL);
    m.u.scroll_req = (struct msg_scroll_req){true, ids[0], 50, B(range), false, true};
    put(&m, NULL);
    m = req(MSG_P_FACET);
    m.u.facet_req = (struct msg_facet_req){S("tag"), {NULL, 0}, 10, false};
    put(&m, NULL);
    m = req(MSG_P_SCROLL_ORDER);
    m.u.oscroll_req = (struct msg_oscroll_req){
        S("price"), false, {MSG_START_INT, -7, 0, {NULL, 0}}, 50, B(range), false, true, 0};
    put(&m, NULL);
    m = req(MSG_P_SEARCH);
    m.u.csearch_req = (struct msg_csearch_req){qs, 3, true, 2500};
    put(&m, "partial");
    m.u.csearch_req = (struct msg_csearch_req){qs + 1, 1, false, 0};
    put(&m, "strict");
    m = req(MSG_P_INDEX);
    m.u.index_req = (struct msg_index_req){MSG_INDEX_CREATE, 0, S("tag"), {NULL, 0}};
    put(&m, NULL);
    m = req(MSG_CLUSTER);
    put(&m, NULL);
    struct msg_replica_report rrs[2] = {{S("docs"), 3, 41, 3, 12}, {S("images"), 0, 0, 0, 0}};
    m = req(MSG_NODE_REPORT);
    m.u.node_report_req = (struct msg_node_report_req){
        S("node-1"), S("tcp://127.0.0.1:7001"), S("http://127.0.0.1:8001"), 1.0, 1000000, rrs, 2, 0,
        {NULL, 0}};
    put(&m, NULL);
    m.u.node_report_req = (struct msg_node_report_req){
        S("node-2"), S("tcp://127.0.0.1:7002"), {NULL, 0}, 0.5, 0, NULL,
        0,           MSG_REPORT_REJOIN,         {NULL, 0}};
    put(&m, "new");
    m.u.node_report_req.search_url = S("tcp://127.0.0.1:7401");
    put(&m, "search");
    m = req(MSG_COORD_ADD);
    m.u.coord_req = (struct msg_coord_req){4, S("127.0.0.1:7313"), S("tcp://127.0.0.1:7303")};
    put(&m, NULL);
    m = req(MSG_COORD_REMOVE);
    m.u.coord_req.id = 4;
    put(&m, NULL);

    /* ---- replies ---- */
    m = rep(MSG_ERROR);
    m.err = (struct msg_error){DV_EPROTO, S("msg: unknown message type 99"), 0};
    put(&m, NULL);
    m = rep(MSG_UPSERT);
    m.err = (struct msg_error){DV_ESTALE, S("partition 3: map epoch 7 < 9"), 9};
    put(&m, "stale");
    m = rep(MSG_SNAPSHOT_READ);
    m.err = (struct msg_error){DV_ENOTFOUND, S("snapshot session 17 expired"), 0};
    put(&m, "expired");
    m = rep(MSG_HELLO);
    m.u.hello_rep = (struct msg_hello_rep){S("node-1"), S("0.1.0"), 1000000, reps, 2};
    put(&m, NULL);
    m = rep(MSG_REPLICA_CREATE);
    put(&m, NULL);
    m = rep(MSG_REPLICA_DROP);
    put(&m, NULL);
    m = rep(MSG_REPLICA_LIST);
    m.u.list_rep = (struct msg_list_rep){reps, 2};
    put(&m, NULL);
    m = rep(MSG_REPLICA_INFO);
    m.u.info_rep = (struct msg_info_rep){4, 1, 16, 200, 64, true, 3, 1, 41, 40, 32, 4096, 30};
    put(&m, NULL);
    int writes[] = {MSG_UPSERT, MSG_DELETE, MSG_SET_PAYLOAD, MSG_PAYLOAD_INDEX};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        m = rep(writes[i]);
        m.u.write_rep = (struct msg_write_rep){41 + i, 3, NULL, 0};
        put(&m, NULL);
    }
    m = rep(MSG_GET);
    m.u.get_rep = (struct msg_hits){hits, 3};
    put(&m, NULL);
    m = rep(MSG_COUNT);
    m.u.count_rep.count = 123456;
    put(&m, NULL);
    m = rep(MSG_SCROLL);
    m.u.scroll_rep = (struct msg_scroll_rep){{hits, 2}, true, ids[1]};
    put(&m, "more");
    m.u.scroll_rep = (struct msg_scroll_rep){{hits + 2, 1}, false, {0}};
    put(&m, "end");
    struct msg_facet_hit fh[3] = {{MSG_FV_STR, S("Paris"), 0, 9},
                                  {MSG_FV_INT, {NULL, 0}, -3, 2},
                                  {MSG_FV_BOOL, {NULL, 0}, 1, 1}};
    m = rep(MSG_FACET);
    m.u.facet_rep = (struct msg_facet_rep){fh, 3};
    put(&m, NULL);
    struct msg_ordval ov[2] = {{false, 1709251200000000, 0}, {true, 0, 2.5}};
    m = rep(MSG_SCROLL_ORDER);
    m.u.oscroll_rep = (struct msg_oscroll_rep){{hits, 2}, ov};
    put(&m, NULL);
    struct msg_hits res[3] = {{hits, 3}, {hits + 1, 1}, {hits, 0}}; /* one per query */
    struct msg_hits res9[3] = {{hits + 2, 1}, {hits, 0}, {hits, 2}};
    struct msg_search_part sps[3] = {
        {0, {0}, res, 3}, {3, {DV_ESTALE, S("stale map"), 8}, NULL, 0}, {9, {0}, res9, 3}};
    m = rep(MSG_SEARCH);
    m.u.search_rep = (struct msg_search_rep){sps, 3};
    put(&m, NULL);
    struct msg_stat st[2] = {{S("requests"), 12}, {S("points"), 3}};
    m = rep(MSG_STATS);
    m.u.stats_rep = (struct msg_stats_rep){st, 2};
    put(&m, NULL);
    uint8_t lz4[32] = {0x04, 0x22, 0x4d, 0x18}; /* an LZ4 frame starts with its magic */
    m = rep(MSG_SNAPSHOT_READ);
    m.u.snapshot_rep = (struct msg_snapshot_rep){17, 41, 64, B(lz4), false};
    put(&m, "chunk");
    m.u.snapshot_rep = (struct msg_snapshot_rep){17, 41, 64, {NULL, 0}, true};
    put(&m, "done");
    struct msg_wal_rec recs[3] = {
        {42, 1, B(payload)}, {43, 2, {NULL, 0}}, {44, 3, {keys, sizeof keys}}};
    m = rep(MSG_WAL_READ);
    struct msg_term terms[2] = {{1, 1}, {3, 40}};
    m.u.wal_rep = (struct msg_wal_rep){recs, 3, 44, terms, 2};
    put(&m, NULL);
    m.u.wal_rep = (struct msg_wal_rep){NULL, 0, 44, NULL, 0};
    put(&m, "empty");

    /* ---- client API and node report replies ---- */
    m = rep(MSG_COLL_CREATE);
    put(&m, NULL);
    m.err = (struct msg_error){DV_EEXIST, S("collection \"docs\" exists"), 0};
    put(&m, "exists");
    m = rep(MSG_COLL_DROP);
    put(&m, NULL);
    struct msg_str names[2] = {S("docs"), S("images")};
    m = rep(MSG_COLL_LIST);
    m.u.coll_list_rep = (struct msg_coll_list_rep){names, 2};
    put(&m, NULL);
    struct msg_str nodes[3] = {S("node-1"), S("node-2"), S("node-3")};
    struct msg_coll_part cps[3] = {{0, 5, nodes, 2, 10, 1, NULL},
                                   {1, 6, nodes + 1, 2, 0, 2, NULL},
                                   {2, 7, NULL, 0, 3, 0, NULL}};
    m = rep(MSG_COLL_INFO);
    m.u.coll_info_rep = (struct msg_coll_info_rep){{.dim = 4,
                                                    .metric = 2,
                                                    .m = 16,
                                                    .ef_construction = 200,
                                                    .ef_search = 64,
                                                    .fsync = 1,
                                                    .partitions = 3,
                                                    .replication = 2,
                                                    .sq8 = false},
                                                   13,
                                                   cps,
                                                   3};
    put(&m, NULL);
    int pwrites[] = {MSG_P_UPSERT, MSG_P_DELETE, MSG_P_SET_PAYLOAD, MSG_P_INDEX};
    for (size_t i = 0; i < sizeof pwrites / sizeof pwrites[0]; i++) {
        m = rep(pwrites[i]);
        m.u.write_rep = (struct msg_write_rep){0, 3 - i, NULL, 0};
        put(&m, NULL);
    }
    m = rep(MSG_P_GET);
    m.u.get_rep = (struct msg_hits){hits, 2};
    put(&m, NULL);
    m = rep(MSG_P_COUNT);
    m.u.count_rep.count = 42;
    put(&m, NULL);
    m = rep(MSG_P_SCROLL);
    m.u.scroll_rep = (struct msg_scroll_rep){{hits + 1, 2}, true, ids[0]};
    put(&m, NULL);
    uint32_t failed[2] = {3, 9};
    m = rep(MSG_P_SEARCH);
    m.u.csearch_rep = (struct msg_csearch_rep){res, 3, true, failed, 2};
    put(&m, "partial");
    m.u.csearch_rep = (struct msg_csearch_rep){res9, 3, false, NULL, 0};
    put(&m, "full");
    m = rep(MSG_P_SEARCH);
    m.err = (struct msg_error){DV_ETIMEDOUT, S("partition 3: no answer within 2500 ms"), 0};
    put(&m, "timeout");
    static const uint8_t status[] = {0x82, 0xa6, 'l', 'e', 'a', 'd', 'e',  'r',  0xa1, 'a',
                                     0xa5, 'n',  'o', 'd', 'e', 's', 0x91, 0xa1, 'b'};
    m = rep(MSG_CLUSTER);
    m.u.cluster_rep.status = B(status);
    put(&m, NULL);
    m = rep(MSG_NODE_REPORT);
    m.u.node_report_rep = (struct msg_node_report_rep){12, S("tcp://127.0.0.1:7000")};
    put(&m, NULL);
    m.u.node_report_rep = (struct msg_node_report_rep){0, {NULL, 0}};
    put(&m, "no-leader");
    m = rep(MSG_COORD_ADD);
    put(&m, NULL);
    m = rep(MSG_COORD_REMOVE);
    put(&m, NULL);

    /* ---- named, sparse and multi vectors (issue 19) ---- */
    {
        struct pid nids[2] = {pid_num(1), pid_num(2)};
        float dv[4] = {1, 2, 3, 4}, sw[2] = {0.5f, 1.5f}, mrows[4] = {1, 0, 0, 1};
        uint32_t vterms[2] = {7, 9000};
        struct msg_nvec a[2] = {{S("text"), 4, 4, dv, NULL}, {S("bm25"), 2, 2, sw, vterms}};
        struct msg_nvec b2[1] = {{S("colbert"), 2, 4, mrows, NULL}};
        struct msg_nvecs named[2] = {{a, 2}, {b2, 1}};
        struct msg_bytes npl[2] = {{NULL, 0}, {NULL, 0}};
        const int wtypes[] = {MSG_UPSERT, MSG_P_UPSERT, MSG_UPDATE_VECTORS, MSG_P_UPDATE_VECTORS};
        for (int t = 0; t < 4; t++) {
            m = req(wtypes[t]);
            m.u.upsert_req = (struct msg_upsert_req){nids, NULL, npl, 2, 0, named};
            put(&m, "named");
        }
        struct msg_str vnames[2] = {S("text"), S("bm25")};
        m = req(MSG_DELETE_VECTORS);
        m.u.delvec_req = (struct msg_delvec_req){nids, 2, vnames, 2};
        put(&m, NULL);
        m = req(MSG_P_DELETE_VECTORS);
        m.u.delvec_req = (struct msg_delvec_req){nids, 2, vnames, 2};
        put(&m, NULL);
        uint64_t counts[2] = {3, 40};
        struct msg_query nq[2] = {
            {.vec = sw,
             .dim = 2,
             .k = 5,
             .using = S("bm25"),
             .idx = vterms,
             .idf_df = counts,
             .idf_docs = 100,
             .vec_names = vnames,
             .n_vec_names = 1},
            {.vec = mrows, .dim = 4, .k = 3, .using = S("colbert"), .rows = 2}};
        struct msg_target nt[1] = {{0, 7}};
        m = req(MSG_SEARCH);
        m.addr.coll = S("docs");
        m.u.search_req = (struct msg_search_req){nt, 1, nq, 2};
        put(&m, "named");
        m = req(MSG_SPARSE_STATS);
        m.addr.coll = S("docs");
        m.u.sstats_req = (struct msg_sstats_req){nt, 1, S("bm25"), vterms, 2};
        put(&m, NULL);
        struct msg_sstats_part sp = {0, {0, {NULL, 0}, 0}, 100, counts, 2};
        m = rep(MSG_SPARSE_STATS);
        m.u.sstats_rep = (struct msg_sstats_rep){&sp, 1};
        put(&m, NULL);
        struct msg_hit nh[1] = {{nids[0], 0.5f, NULL, 0, {NULL, 0}, {a, 2}}};
        m = rep(MSG_GET);
        m.u.get_rep = (struct msg_hits){nh, 1};
        put(&m, "named");
        m = req(MSG_COLL_CREATE);
        m.u.coll_cfg = (struct msg_coll_cfg){.partitions = 2, .n_spaces = 2};
        m.u.coll_cfg.spaces[0] = (struct msg_vspace){"text", 0, 4, 2, 16, 100, false, false};
        m.u.coll_cfg.spaces[1] = (struct msg_vspace){"bm25", 1, 0, 0, 0, 0, false, true};
        put(&m, "named");
        const uint8_t schema[] = {0x81, 0xa4, 't', 'y', 'p', 'e', 0xa4, 't', 'e', 'x', 't'};
        m = req(MSG_P_INDEX);
        m.u.index_req = (struct msg_index_req){MSG_INDEX_CREATE, 5, S("title"), B(schema)};
        put(&m, "params");
    }

    printf("gen_seeds: %d seeds in %s\n", written, dir);
    return 0;
}
