/*
 * quickstart.c - the C SDK in one page: connect, create a collection, upsert 1,000 vectors with
 * payloads, search with and without a filter, get, count, scroll, drop.
 *
 *   cc quickstart.c $(pkg-config --cflags --libs dvec) -o quickstart
 *   ./quickstart tcp://127.0.0.1:7300,tcp://127.0.0.1:7310,tcp://127.0.0.1:7320
 *
 * The coordinators come from argv[1], else from DVEC_COORDINATORS, else tcp://127.0.0.1:7300.
 * Any error ends the program with its message and exit status 1.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dvec.h>

#define COLL  "quickstart"
#define DIM   64
#define N     1000
#define BATCH 250

static dvec_client *client;

/* Prints what failed and why, closes the client and exits 1. */
static void check(int rc, const dvec_error *e, const char *what)
{
    if (rc == DVEC_OK)
        return;
    fprintf(stderr, "quickstart: %s failed: %s (%s)\n", what, e->message, dvec_code_name(rc));
    dvec_close(client);
    exit(1);
}

/* A deterministic pseudo-random vector for point i. */
static void vector_of(uint64_t i, float *v)
{
    uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
    for (int d = 0; d < DIM; d++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[d] = (float)(x >> 40) / (float)(1 << 24) - 0.5f;
    }
}

static void print_records(const char *title, const dvec_records *r, bool scores)
{
    printf("%s: %zu\n", title, r->n);
    for (size_t i = 0; i < r->n; i++) {
        char id[DVEC_ID_TEXT_MAX];
        dvec_id_format(&r->items[i].id, id);
        if (scores)
            printf("  id %-5s score %8.4f  %s\n", id, r->items[i].score,
                   r->items[i].payload_json ? r->items[i].payload_json : "");
        else
            printf("  id %-5s %s\n", id, r->items[i].payload_json ? r->items[i].payload_json : "");
    }
}

int main(int argc, char **argv)
{
    const char *urls = argc > 1 ? argv[1] : getenv("DVEC_COORDINATORS");
    if (urls == NULL || urls[0] == '\0')
        urls = "tcp://127.0.0.1:7300";
    dvec_error e;
    check(dvec_connect(urls, NULL, &client, &e), &e, "connect");
    printf("connected to %s\n", urls);

    /* A collection of 64-dimensional vectors, Euclidean distance, the default layout. A
     * previous run that stopped half way may have left it: drop it first. */
    int rc = dvec_collection_drop(client, COLL, &e);
    if (rc != DVEC_ENOTFOUND)
        check(rc, &e, "drop the old collection");
    dvec_collection_config cfg;
    dvec_collection_config_init(&cfg, DIM);
    check(dvec_collection_create(client, COLL, &cfg, &e), &e, "create collection " COLL);
    printf("created collection %s (%d dimensions)\n", COLL, DIM);

    /* 1,000 points in batches of 250, each with a payload. */
    static const char *const colors[] = {"red", "green", "blue"};
    static float vecs[BATCH][DIM];
    static char payloads[BATCH][96];
    dvec_point pts[BATCH];
    for (uint64_t at = 0; at < N; at += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            uint64_t id = at + (uint64_t)i;
            vector_of(id, vecs[i]);
            snprintf(payloads[i], sizeof payloads[i], "{\"n\":%" PRIu64 ",\"color\":\"%s\"}", id,
                     colors[id % 3]);
            pts[i] = (dvec_point){dvec_id_num(id), vecs[i], payloads[i]};
        }
        check(dvec_upsert(client, COLL, pts, BATCH, DIM, &e), &e, "upsert");
    }
    printf("upserted %d points\n", N);

    /* The 5 nearest to point 42's vector (42 itself first, at distance 0). */
    float q[DIM];
    vector_of(42, q);
    dvec_search_params sp;
    dvec_search_params_init(&sp);
    sp.k = 5;
    sp.with_payload = true;
    dvec_records r;
    check(dvec_search(client, COLL, q, DIM, &sp, &r, NULL, &e), &e, "search");
    print_records("search, k 5", &r, true);
    if (r.n == 0 || r.items[0].id.num != 42) {
        fprintf(stderr, "quickstart: point 42 is not the nearest to its own vector\n");
        dvec_records_free(&r);
        dvec_close(client);
        return 1;
    }
    dvec_records_free(&r);

    /* The same, only among red points. */
    const char *red = "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}";
    sp.filter_json = red;
    check(dvec_search(client, COLL, q, DIM, &sp, &r, NULL, &e), &e, "filtered search");
    print_records("search, k 5, color red", &r, true);
    dvec_records_free(&r);

    /* Points by id, in the order asked; 5000 does not exist and is left out. */
    dvec_id ids[] = {dvec_id_num(7), dvec_id_num(5000), dvec_id_num(0), dvec_id_num(999)};
    check(dvec_get(client, COLL, ids, 4, false, true, &r, &e), &e, "get");
    print_records("get 7, 5000, 0, 999", &r, false);
    dvec_records_free(&r);

    uint64_t all, reds;
    check(dvec_count(client, COLL, NULL, &all, &e), &e, "count");
    check(dvec_count(client, COLL, red, &reds, &e), &e, "count red");
    printf("count: %" PRIu64 " points, %" PRIu64 " red\n", all, reds);

    /* Every point, 300 per page, in id order. */
    dvec_scroll_params sc = {.limit = 300};
    dvec_id next;
    bool more = true;
    size_t pages = 0, seen = 0;
    while (more) {
        check(dvec_scroll(client, COLL, &sc, &r, &next, &more, &e), &e, "scroll");
        pages++;
        seen += r.n;
        dvec_records_free(&r);
        sc.offset = &next;
    }
    printf("scroll: %zu points in %zu pages\n", seen, pages);
    if (all != N || seen != N) {
        fprintf(stderr, "quickstart: expected %d points, count says %" PRIu64 ", scroll %zu\n", N,
                all, seen);
        dvec_close(client);
        return 1;
    }

    check(dvec_collection_drop(client, COLL, &e), &e, "drop collection " COLL);
    printf("dropped collection %s\n", COLL);
    dvec_close(client);
    return 0;
}
