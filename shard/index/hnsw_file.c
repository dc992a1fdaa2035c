/* hnsw_file.c - saving an index as three parts (graph, vectors, SQ8 codes) and loading it. */
#include "hnsw_int.h"

#include <stdio.h>

#include "buf.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the saved index format is little-endian; dvec supports little-endian machines only"
#endif

#define GRAPH_VERSION 1
#define HEAD_BYTES    128 /* fixed-size state block at the start of the GRAPH part */

/* The state block (see docs/formats.md, "Index graph"). */
struct head {
    uint32_t version, dim, metric, m, sq8, sq8_ready, sq8_shared;
    int32_t max_level;
    uint32_t ep;
    uint64_t n_slots, upper_used, n_free, live, deleted, rng_ctr, sq8_next_at;
};

static void head_encode(const struct head *h, uint8_t *b)
{
    memset(b, 0, HEAD_BYTES);
    buf_wr_le32(b + 0, h->version);
    buf_wr_le32(b + 4, h->dim);
    buf_wr_le32(b + 8, h->metric);
    buf_wr_le32(b + 12, h->m);
    buf_wr_le32(b + 16, h->sq8);
    buf_wr_le32(b + 20, h->sq8_ready);
    buf_wr_le32(b + 24, h->sq8_shared);
    buf_wr_le32(b + 28, (uint32_t)h->max_level);
    buf_wr_le32(b + 32, h->ep);
    buf_wr_le64(b + 40, h->n_slots);
    buf_wr_le64(b + 48, h->upper_used);
    buf_wr_le64(b + 56, h->n_free);
    buf_wr_le64(b + 64, h->live);
    buf_wr_le64(b + 72, h->deleted);
    buf_wr_le64(b + 80, h->rng_ctr);
    buf_wr_le64(b + 88, h->sq8_next_at);
}

static void head_decode(const uint8_t *b, struct head *h)
{
    h->version = buf_rd_le32(b + 0);
    h->dim = buf_rd_le32(b + 4);
    h->metric = buf_rd_le32(b + 8);
    h->m = buf_rd_le32(b + 12);
    h->sq8 = buf_rd_le32(b + 16);
    h->sq8_ready = buf_rd_le32(b + 20);
    h->sq8_shared = buf_rd_le32(b + 24);
    h->max_level = (int32_t)buf_rd_le32(b + 28);
    h->ep = buf_rd_le32(b + 32);
    h->n_slots = buf_rd_le64(b + 40);
    h->upper_used = buf_rd_le64(b + 48);
    h->n_free = buf_rd_le64(b + 56);
    h->live = buf_rd_le64(b + 64);
    h->deleted = buf_rd_le64(b + 72);
    h->rng_ctr = buf_rd_le64(b + 80);
    h->sq8_next_at = buf_rd_le64(b + 88);
}

int hnsw_save(struct hnsw_index *ix, hnsw_save_fn fn, void *arg)
{
    struct head h;
    uint8_t hb[HEAD_BYTES];
    int rc;

    pthread_rwlock_rdlock(&ix->rw);
    size_t n = ix->n_slots, d = ix->dim;
    h.version = GRAPH_VERSION;
    h.dim = ix->dim;
    h.metric = ix->p.metric;
    h.m = ix->m;
    h.sq8 = ix->p.sq8;
    h.sq8_ready = (uint32_t)__atomic_load_n(&ix->sq8_ready, __ATOMIC_ACQUIRE);
    h.sq8_shared = (uint32_t)ix->sq8.shared;
    h.max_level = ix->max_level;
    h.ep = ix->ep;
    h.n_slots = n;
    h.upper_used = ix->upper_used;
    h.n_free = ix->n_free;
    h.live = ix->live;
    h.deleted = ix->deleted;
    h.rng_ctr = ix->rng_ctr;
    h.sq8_next_at = ix->sq8_next_at;
    head_encode(&h, hb);

#define PUT(part, ptr, bytes)                                                                      \
    do {                                                                                           \
        if ((bytes) > 0 && (rc = fn(arg, part, ptr, bytes)) != DV_OK)                              \
            goto out;                                                                              \
    } while (0)
    rc = DV_OK;
    PUT(HNSW_PART_GRAPH, hb, sizeof hb);
    if (ix->p.sq8) {
        PUT(HNSW_PART_GRAPH, ix->sq8.min, d * sizeof(float));
        PUT(HNSW_PART_GRAPH, ix->sq8.max, d * sizeof(float));
        PUT(HNSW_PART_GRAPH, ix->sq8.step, d * sizeof(float));
        PUT(HNSW_PART_GRAPH, ix->sq8.w2, d * sizeof(float));
        PUT(HNSW_PART_GRAPH, &ix->sq8.step2, sizeof(float));
    }
    PUT(HNSW_PART_GRAPH, ix->levels, n);
    PUT(HNSW_PART_GRAPH, ix->ucap, n);
    PUT(HNSW_PART_GRAPH, ix->flags, n);
    PUT(HNSW_PART_GRAPH, ix->upper_off, n * sizeof(uint32_t));
    PUT(HNSW_PART_GRAPH, ix->level0, n * ix->stride0 * sizeof(uint32_t));
    PUT(HNSW_PART_GRAPH, ix->upper, ix->upper_used * sizeof(uint32_t));
    PUT(HNSW_PART_GRAPH, ix->free_slots, ix->n_free * sizeof(uint32_t));
    PUT(HNSW_PART_VECTORS, ix->vecs, n * d * sizeof(float));
    if (ix->p.sq8)
        PUT(HNSW_PART_CODES, ix->codes, n * d);
#undef PUT
out:
    pthread_rwlock_unlock(&ix->rw);
    return rc;
}

/* Checks that the loaded graph only references slots and blocks that exist. */
static int check_graph(const struct hnsw_index *ix, char *errmsg)
{
    size_t n = ix->n_slots;
    uint64_t live = 0, deleted = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t f = ix->flags[i];
        if (f & ~(FLAG_USED | FLAG_DELETED) || f == FLAG_DELETED) {
            dv_errmsg_set(errmsg, "index: slot %zu: bad flags %u", i, f);
            return DV_ECORRUPT;
        }
        if (f == FLAG_USED)
            live++;
        else if (f)
            deleted++;
        if (ix->levels[i] >= HNSW_MAX_LEVEL || ix->ucap[i] >= HNSW_MAX_LEVEL ||
            (f && ix->levels[i] > ix->ucap[i] && ix->levels[i] > 0)) {
            dv_errmsg_set(errmsg, "index: slot %zu: bad level %u", i, ix->levels[i]);
            return DV_ECORRUPT;
        }
        if (ix->ucap[i] > 0 &&
            (uint64_t)ix->upper_off[i] + (uint64_t)ix->ucap[i] * ix->stride_up > ix->upper_used) {
            dv_errmsg_set(errmsg, "index: slot %zu: upper links out of range", i);
            return DV_ECORRUPT;
        }
        if (!f)
            continue;
        for (int lev = ix->levels[i]; lev >= 0; lev--) {
            const uint32_t *l = links_of(ix, (uint32_t)i, lev);
            uint32_t max = lev == 0 ? ix->m0 : ix->m;
            if (l[0] > max) {
                dv_errmsg_set(errmsg, "index: slot %zu level %d: %u links", i, lev, l[0]);
                return DV_ECORRUPT;
            }
            for (uint32_t j = 0; j < l[0]; j++) {
                if (l[1 + j] >= n || !ix->flags[l[1 + j]] || ix->levels[l[1 + j]] < lev) {
                    dv_errmsg_set(errmsg, "index: slot %zu level %d: bad link to %u", i, lev,
                                  l[1 + j]);
                    return DV_ECORRUPT;
                }
            }
        }
    }
    if (live != ix->live || deleted != ix->deleted) {
        dv_errmsg_set(errmsg, "index: counts differ from the flags (%llu/%llu live)",
                      (unsigned long long)ix->live, (unsigned long long)live);
        return DV_ECORRUPT;
    }
    for (size_t i = 0; i < ix->n_free; i++) {
        if (ix->free_slots[i] >= n || ix->flags[ix->free_slots[i]]) {
            dv_errmsg_set(errmsg, "index: free list holds a used slot");
            return DV_ECORRUPT;
        }
    }
    if (ix->ep != HNSW_NO_SLOT &&
        (ix->ep >= n || !ix->flags[ix->ep] || ix->levels[ix->ep] != (uint32_t)ix->max_level)) {
        dv_errmsg_set(errmsg, "index: bad entry point %u", ix->ep);
        return DV_ECORRUPT;
    }
    if (ix->ep == HNSW_NO_SLOT && (ix->max_level != -1 || live + deleted > 0)) {
        dv_errmsg_set(errmsg, "index: no entry point in a non-empty graph");
        return DV_ECORRUPT;
    }
    return DV_OK;
}

int hnsw_load(const struct hnsw_params *p, hnsw_load_fn fn, void *arg, struct hnsw_index **out,
              char *errmsg)
{
    struct hnsw_index *ix = NULL;
    struct hnsw_params q = *p;
    struct head h;
    uint8_t hb[HEAD_BYTES];
    int rc;

    *out = NULL;
    rc = fn(arg, HNSW_PART_GRAPH, hb, sizeof hb);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "index: cannot read the graph header");
        return rc;
    }
    head_decode(hb, &h);
    if (h.version != GRAPH_VERSION) {
        dv_errmsg_set(errmsg, "index: graph version %u, expected %u", h.version, GRAPH_VERSION);
        return DV_ECORRUPT;
    }
    if (h.dim != p->dim || h.metric != (uint32_t)p->metric || h.m != p->m ||
        h.sq8 != (uint32_t)p->sq8) {
        dv_errmsg_set(errmsg,
                      "index: saved with dim %u metric %u m %u sq8 %u, opened with dim %u "
                      "metric %u m %u sq8 %d",
                      h.dim, h.metric, h.m, h.sq8, p->dim, p->metric, p->m, p->sq8);
        return DV_ECORRUPT;
    }
    if (h.n_slots >= UINT32_MAX || h.upper_used >= UINT32_MAX || h.n_free > h.n_slots ||
        h.live + h.deleted > h.n_slots || h.max_level >= HNSW_MAX_LEVEL || h.max_level < -1) {
        dv_errmsg_set(errmsg, "index: bad counts in the graph header");
        return DV_ECORRUPT;
    }
    size_t n = h.n_slots;
    size_t cap = n + n / 4 + 16;
    if (cap < p->capacity)
        cap = p->capacity;
    if (cap > UINT32_MAX - 1)
        cap = UINT32_MAX - 1;
    q.capacity = (uint32_t)cap;
    rc = hnsw_create(&q, &ix);
    if (rc != DV_OK) {
        dv_errmsg_set(errmsg, "index: cannot allocate %zu slots", cap);
        return rc;
    }
    ix->p.capacity = p->capacity;
    size_t upcap = h.upper_used + (size_t)HNSW_MAX_LEVEL * ix->stride_up;
    if (upcap > ix->upper_cap) {
        uint32_t *u = realloc(ix->upper, upcap * sizeof(uint32_t));
        if (u == NULL) {
            rc = DV_ENOMEM;
            goto err_destroy;
        }
        ix->upper = u;
        ix->upper_cap = upcap;
    }
    if (h.n_free > 0) {
        ix->free_slots = malloc(h.n_free * sizeof(uint32_t));
        if (ix->free_slots == NULL) {
            rc = DV_ENOMEM;
            goto err_destroy;
        }
        ix->free_cap = h.n_free;
    }
    size_t d = ix->dim;
#define GET(part, ptr, bytes)                                                                      \
    do {                                                                                           \
        if ((bytes) > 0 && (rc = fn(arg, part, ptr, bytes)) != DV_OK) {                            \
            dv_errmsg_set(errmsg, "index: %s part is short or unreadable",                         \
                          part == HNSW_PART_GRAPH     ? "graph"                                    \
                          : part == HNSW_PART_VECTORS ? "vectors"                                  \
                                                      : "codes");                                  \
            goto err_destroy;                                                                      \
        }                                                                                          \
    } while (0)
    if (p->sq8) {
        GET(HNSW_PART_GRAPH, ix->sq8.min, d * sizeof(float));
        GET(HNSW_PART_GRAPH, ix->sq8.max, d * sizeof(float));
        GET(HNSW_PART_GRAPH, ix->sq8.step, d * sizeof(float));
        GET(HNSW_PART_GRAPH, ix->sq8.w2, d * sizeof(float));
        GET(HNSW_PART_GRAPH, &ix->sq8.step2, sizeof(float));
        ix->sq8.shared = (int)h.sq8_shared;
    }
    GET(HNSW_PART_GRAPH, ix->levels, n);
    GET(HNSW_PART_GRAPH, ix->ucap, n);
    GET(HNSW_PART_GRAPH, ix->flags, n);
    GET(HNSW_PART_GRAPH, ix->upper_off, n * sizeof(uint32_t));
    GET(HNSW_PART_GRAPH, ix->level0, n * ix->stride0 * sizeof(uint32_t));
    GET(HNSW_PART_GRAPH, ix->upper, h.upper_used * sizeof(uint32_t));
    GET(HNSW_PART_GRAPH, ix->free_slots, h.n_free * sizeof(uint32_t));
    GET(HNSW_PART_VECTORS, ix->vecs, n * d * sizeof(float));
    if (p->sq8)
        GET(HNSW_PART_CODES, ix->codes, n * d);
#undef GET
    ix->n_slots = n;
    ix->upper_used = h.upper_used;
    ix->n_free = h.n_free;
    ix->live = h.live;
    ix->deleted = h.deleted;
    ix->ep = h.ep;
    ix->max_level = h.max_level;
    ix->rng_ctr = h.rng_ctr;
    ix->sq8_ready = p->sq8 && h.sq8_ready;
    ix->sq8_next_at = h.sq8_next_at;
    rc = check_graph(ix, errmsg);
    if (rc != DV_OK)
        goto err_destroy;
    *out = ix;
    return DV_OK;

err_destroy:
    hnsw_destroy(ix);
    return rc;
}
