/* cmap.c - the cluster map's lifetime, lookups, copy and comparison, and shared helpers. */
#include "cmap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmap_int.h"
#include "err.h"

static const char *const node_state_names[] = {"joining", "alive",    "suspect",
                                               "dead",    "draining", "removed"};
static const char *const move_state_names[] = {"planned",   "copying", "catching_up",
                                               "switching", "done",    "failed"};
static const char *const coord_role_names[] = {"standby", "voter", "spare", "removed"};
static const char *const cmd_type_names[] = {
    "none",        "node_register",  "node_state", "node_weight",   "node_remove",  "coll_create",
    "coll_drop",   "part_set",       "move_add",   "move_update",   "move_remove",  "batch",
    "coord_set",   "coord_remove",   "settings",   "replica_state", "part_promote", "replica_move",
    "replica_add", "replica_remove", "coll_set",   "alias",         "coll_index",
};
static const char *const replica_state_names[] = {"active", "dead", "partial", "initializing",
                                                  "recovery"};

const char *cmap_replica_state_name(int state)
{
    return state >= 0 && state < CMAP_REPLICA_STATE_COUNT ? replica_state_names[state] : "unknown";
}

const char *cmap_node_state_name(int state)
{
    return state >= 0 && state < CMAP_NODE_STATE_COUNT ? node_state_names[state] : "unknown";
}

const char *cmap_move_state_name(int state)
{
    return state >= 0 && state < CMAP_MOVE_STATE_COUNT ? move_state_names[state] : "unknown";
}

const char *cmap_coord_role_name(int role)
{
    return role >= 0 && role < CMAP_COORD_ROLE_COUNT ? coord_role_names[role] : "unknown";
}

const char *cmap_cmd_type_name(int type)
{
    return type > 0 && type < CMAP_CMD_TYPE_COUNT ? cmd_type_names[type] : "unknown";
}

/* ---- validation -------------------------------------------------------------------------- */

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool cmap_id_valid(const char *s)
{
    size_t n = strnlen(s, CMAP_ID_MAX + 1);
    if (n == 0 || n > CMAP_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != ':' && s[i] != '-')
            return false;
    return true;
}

bool cmap_name_valid(const char *s)
{
    size_t n = strnlen(s, CMAP_NAME_MAX + 1);
    if (n == 0 || n > CMAP_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!alnum(s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

bool cmap_url_valid(const char *s, bool may_be_empty)
{
    size_t n = strnlen(s, CMAP_URL_MAX + 1);
    if (n > CMAP_URL_MAX || (n == 0 && !may_be_empty))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

bool cmap_weight_valid(double w)
{
    return isfinite(w) && w > 0;
}

bool cmap_raft_addr_valid(const char *s)
{
    if (!cmap_url_valid(s, false))
        return false;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || colon[1] == '\0' || strlen(colon + 1) > 5)
        return false;
    unsigned port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (unsigned)(*p - '0');
    }
    return port >= 1 && port <= 65535;
}

bool cmap_cfg_valid(const struct cmap_coll_cfg *c, char *msg)
{
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            snprintf(msg, CMAP_MSG_MAX, __VA_ARGS__);                                              \
            return false;                                                                          \
        }                                                                                          \
    } while (0)
    CHECK(c->n_spaces <= PROTO_MAX_VECTORS, "%u named vectors, at most %u", c->n_spaces,
          PROTO_MAX_VECTORS);
    CHECK(c->n_spaces > 0 || (c->dim >= 1 && c->dim <= PROTO_MAX_DIM), "dimension %u not in 1..%u",
          c->dim, PROTO_MAX_DIM);
    CHECK(c->n_spaces == 0 || c->dim == 0, "dimension %u with named vectors (0 expected)", c->dim);
    for (uint32_t i = 0; i < c->n_spaces; i++) {
        const struct cmap_vspace *v = &c->spaces[i];
        size_t nl = strnlen(v->name, sizeof v->name);
        CHECK(nl < sizeof v->name, "vector name longer than %u bytes", PROTO_MAX_VNAME);
        for (uint32_t j = 0; j < i; j++)
            CHECK(strcmp(c->spaces[j].name, v->name) != 0, "vector \"%s\" defined twice", v->name);
        CHECK(v->kind <= 2, "vector \"%s\": unknown kind %u", v->name, v->kind);
        CHECK(v->kind == 1 || (v->dim >= 1 && v->dim <= PROTO_MAX_DIM),
              "vector \"%s\": dimension %u not in 1..%u", v->name, v->dim, PROTO_MAX_DIM);
        CHECK(v->kind != 1 || v->dim == 0, "sparse vector \"%s\" with dimension %u", v->name,
              v->dim);
        CHECK(v->metric <= CMAP_METRIC_L1, "vector \"%s\": unknown metric %u", v->name, v->metric);
        CHECK(v->kind == 1 || (v->m >= 2 && v->m <= PROTO_MAX_M),
              "vector \"%s\": m %u not in 2..%u", v->name, v->m, PROTO_MAX_M);
        CHECK(v->ef_construction <= PROTO_MAX_CFG_EF, "vector \"%s\": ef_construction %u over %u",
              v->name, v->ef_construction, PROTO_MAX_CFG_EF);
    }
    CHECK(c->metric <= CMAP_METRIC_L1, "unknown metric %u", c->metric);
    CHECK(c->m >= 2 && c->m <= PROTO_MAX_M, "m %u not in 2..%u", c->m, PROTO_MAX_M);
    CHECK(c->ef_construction >= 1 && c->ef_construction <= PROTO_MAX_CFG_EF,
          "ef_construction %u not in 1..%u", c->ef_construction, PROTO_MAX_CFG_EF);
    CHECK(c->ef_search >= 1 && c->ef_search <= PROTO_MAX_CFG_EF, "ef_search %u not in 1..%u",
          c->ef_search, PROTO_MAX_CFG_EF);
    CHECK(c->n_parts >= 1 && c->n_parts <= CMAP_MAX_PARTS, "partition count %u not in 1..%u",
          c->n_parts, CMAP_MAX_PARTS);
    CHECK(c->rf >= 1 && c->rf <= CMAP_MAX_RF, "replication factor %u not in 1..%u", c->rf,
          CMAP_MAX_RF);
    CHECK(c->fsync <= CMAP_FSYNC_NEVER, "unknown fsync policy %u", c->fsync);
    CHECK(c->write_consistency_factor >= 1 && c->write_consistency_factor <= CMAP_MAX_RF,
          "write_consistency_factor %u not in 1..%u", c->write_consistency_factor, CMAP_MAX_RF);
#undef CHECK
    return true;
}

void cmap_strlcpy(char *dst, const char *src, size_t max)
{
    size_t n = strnlen(src, max - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

char *cmap_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* ---- memory ------------------------------------------------------------------------------ */

int cmap_grow(void **arr, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return DV_OK;
    uint64_t ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    if (ncap > UINT32_MAX)
        ncap = UINT32_MAX;
    void *p = realloc(*arr, (size_t)ncap * size);
    if (!p)
        return DV_ENOMEM;
    *arr = p;
    *cap = (uint32_t)ncap;
    return DV_OK;
}

void cmap_reports_free(struct cmap_report *r, uint32_t n)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < n; i++)
        free(r[i].coll);
    free(r);
}

int cmap_reports_copy(const struct cmap_report *src, uint32_t n, struct cmap_report **out)
{
    *out = NULL;
    if (n == 0)
        return DV_OK;
    struct cmap_report *r = calloc(n, sizeof *r);
    if (!r)
        return DV_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        r[i].coll = cmap_strdup(src[i].coll ? src[i].coll : "");
        if (!r[i].coll) {
            cmap_reports_free(r, i);
            return DV_ENOMEM;
        }
        r[i].part = src[i].part;
        r[i].lsn = src[i].lsn;
    }
    *out = r;
    return DV_OK;
}

void cmap_coll_destroy(struct cmap_coll *c)
{
    if (!c)
        return;
    free(c->parts);
    free(c->indexes);
    free(c);
}

int cmap_init(struct cmap *m, uint32_t dedup_cap)
{
    memset(m, 0, sizeof *m);
    if (dedup_cap == 0)
        dedup_cap = CMAP_DEDUP_DEFAULT;
    if (dedup_cap > CMAP_DEDUP_MAX)
        return DV_EINVAL;
    m->seen = calloc(dedup_cap, sizeof *m->seen);
    if (!m->seen)
        return DV_ENOMEM;
    m->dedup_cap = dedup_cap;
    m->settings = (struct cmap_settings){false, true, CMAP_RATE_DEFAULT, CMAP_MOVES_PER_NODE};
    return DV_OK;
}

void cmap_free(struct cmap *m)
{
    for (uint32_t i = 0; i < m->n_nodes; i++)
        cmap_reports_free(m->nodes[i].reports, m->nodes[i].n_reports);
    free(m->nodes);
    free(m->by_id);
    for (uint32_t i = 0; i < m->n_colls; i++)
        cmap_coll_destroy(m->colls[i]);
    free(m->colls);
    free(m->moves);
    free(m->seen);
    free(m->coords);
    free(m->aliases);
    memset(m, 0, sizeof *m);
}

int cmap_copy(struct cmap *dst, const struct cmap *src)
{
    int rc = cmap_init(dst, src->dedup_cap);
    if (rc != DV_OK)
        return rc;
    dst->epoch = src->epoch;
    dst->settings = src->settings;
    if (src->n_nodes) {
        dst->nodes = calloc(src->n_nodes, sizeof *dst->nodes);
        dst->by_id = malloc(src->n_nodes * sizeof *dst->by_id);
        if (!dst->nodes || !dst->by_id)
            goto err_free;
        dst->cap_nodes = src->n_nodes;
        memcpy(dst->by_id, src->by_id, src->n_nodes * sizeof *dst->by_id);
        for (uint32_t i = 0; i < src->n_nodes; i++) {
            dst->nodes[i] = src->nodes[i];
            dst->nodes[i].reports = NULL;
            dst->nodes[i].n_reports = 0;
            rc = cmap_reports_copy(src->nodes[i].reports, src->nodes[i].n_reports,
                                   &dst->nodes[i].reports);
            if (rc != DV_OK)
                goto err_free;
            dst->nodes[i].n_reports = src->nodes[i].n_reports;
            dst->n_nodes = i + 1;
        }
        dst->n_nodes = src->n_nodes;
    }
    if (src->n_colls) {
        dst->colls = calloc(src->n_colls, sizeof *dst->colls);
        if (!dst->colls)
            goto err_free;
        dst->cap_colls = src->n_colls;
        for (uint32_t i = 0; i < src->n_colls; i++) {
            const struct cmap_coll *s = src->colls[i];
            struct cmap_coll *c = malloc(sizeof *c);
            if (!c)
                goto err_free;
            *c = *s;
            c->parts = malloc(s->cfg.n_parts * sizeof *c->parts);
            c->indexes = s->n_indexes ? malloc(s->n_indexes * sizeof *c->indexes) : NULL;
            if (!c->parts || (s->n_indexes && !c->indexes)) {
                free(c->parts);
                free(c->indexes);
                free(c);
                goto err_free;
            }
            memcpy(c->parts, s->parts, s->cfg.n_parts * sizeof *c->parts);
            if (s->n_indexes)
                memcpy(c->indexes, s->indexes, s->n_indexes * sizeof *c->indexes);
            dst->colls[i] = c;
            dst->n_colls = i + 1;
        }
    }
    if (src->n_moves) {
        dst->moves = malloc(src->n_moves * sizeof *dst->moves);
        if (!dst->moves)
            goto err_free;
        memcpy(dst->moves, src->moves, src->n_moves * sizeof *dst->moves);
        dst->n_moves = dst->cap_moves = src->n_moves;
    }
    if (src->n_coords) {
        dst->coords = malloc(src->n_coords * sizeof *dst->coords);
        if (!dst->coords)
            goto err_free;
        memcpy(dst->coords, src->coords, src->n_coords * sizeof *dst->coords);
        dst->n_coords = dst->cap_coords = src->n_coords;
    }
    if (src->n_aliases) {
        dst->aliases = malloc(src->n_aliases * sizeof *dst->aliases);
        if (!dst->aliases)
            goto err_free;
        memcpy(dst->aliases, src->aliases, src->n_aliases * sizeof *dst->aliases);
        dst->n_aliases = dst->cap_aliases = src->n_aliases;
    }
    memcpy(dst->seen, src->seen, src->dedup_cap * sizeof *dst->seen);
    dst->n_seen = src->n_seen;
    dst->seen_head = src->seen_head;
    return DV_OK;

err_free:
    cmap_free(dst);
    return DV_ENOMEM;
}

/* ---- comparison -------------------------------------------------------------------------- */

static bool reports_equal(const struct cmap_node *a, const struct cmap_node *b)
{
    if (a->n_reports != b->n_reports)
        return false;
    for (uint32_t i = 0; i < a->n_reports; i++) {
        const struct cmap_report *x = &a->reports[i], *y = &b->reports[i];
        if (x->part != y->part || x->lsn != y->lsn || strcmp(x->coll, y->coll) != 0)
            return false;
    }
    return true;
}

static bool node_equal(const struct cmap_node *a, const struct cmap_node *b)
{
    return a->num == b->num && strcmp(a->id, b->id) == 0 && strcmp(a->url, b->url) == 0 &&
           strcmp(a->http_url, b->http_url) == 0 && strcmp(a->search_url, b->search_url) == 0 &&
           memcmp(&a->weight, &b->weight, sizeof a->weight) == 0 && a->state == b->state &&
           a->heartbeat_ms == b->heartbeat_ms && reports_equal(a, b);
}

static bool cfg_equal(const struct cmap_coll_cfg *a, const struct cmap_coll_cfg *b)
{
    return a->dim == b->dim && a->metric == b->metric && a->m == b->m &&
           a->ef_construction == b->ef_construction && a->ef_search == b->ef_search &&
           a->n_parts == b->n_parts && a->rf == b->rf && a->fsync == b->fsync && a->sq8 == b->sq8 &&
           a->write_consistency_factor == b->write_consistency_factor &&
           a->n_spaces == b->n_spaces &&
           memcmp(a->spaces, b->spaces, a->n_spaces * sizeof a->spaces[0]) == 0;
}

static bool part_equal(const struct cmap_part *a, const struct cmap_part *b)
{
    if (a->epoch != b->epoch || a->term != b->term || a->primary != b->primary || a->n != b->n)
        return false;
    return memcmp(a->nodes, b->nodes, a->n * sizeof a->nodes[0]) == 0 &&
           memcmp(a->state, b->state, a->n * sizeof a->state[0]) == 0;
}

static bool coll_equal(const struct cmap_coll *a, const struct cmap_coll *b)
{
    if (strcmp(a->name, b->name) != 0 || !cfg_equal(&a->cfg, &b->cfg) || a->epoch != b->epoch ||
        a->n_indexes != b->n_indexes)
        return false;
    for (uint32_t i = 0; i < a->n_indexes; i++)
        if (strcmp(a->indexes[i].key, b->indexes[i].key) != 0 ||
            a->indexes[i].kind != b->indexes[i].kind)
            return false;
    for (uint32_t i = 0; i < a->cfg.n_parts; i++)
        if (!part_equal(&a->parts[i], &b->parts[i]))
            return false;
    return true;
}

static bool move_equal(const struct cmap_move *a, const struct cmap_move *b)
{
    return strcmp(a->coll, b->coll) == 0 && a->part == b->part && a->from == b->from &&
           a->to == b->to && a->state == b->state && a->epoch == b->epoch;
}

static bool coord_equal(const struct cmap_coord *a, const struct cmap_coord *b)
{
    return a->id == b->id && strcmp(a->raft_addr, b->raft_addr) == 0 &&
           strcmp(a->client_url, b->client_url) == 0 && a->role == b->role;
}

static const struct cmap_seen *seen_at(const struct cmap *m, uint32_t i)
{
    return &m->seen[(m->seen_head + i) % m->dedup_cap];
}

bool cmap_equal(const struct cmap *a, const struct cmap *b)
{
    if (a->epoch != b->epoch || a->n_nodes != b->n_nodes || a->n_colls != b->n_colls ||
        a->n_moves != b->n_moves || a->dedup_cap != b->dedup_cap || a->n_seen != b->n_seen ||
        a->n_coords != b->n_coords || a->n_aliases != b->n_aliases ||
        a->settings.paused != b->settings.paused ||
        a->settings.auto_rebalance != b->settings.auto_rebalance ||
        a->settings.rate != b->settings.rate ||
        a->settings.moves_per_node != b->settings.moves_per_node)
        return false;
    for (uint32_t i = 0; i < a->n_coords; i++)
        if (!coord_equal(&a->coords[i], &b->coords[i]))
            return false;
    for (uint32_t i = 0; i < a->n_aliases; i++)
        if (strcmp(a->aliases[i].name, b->aliases[i].name) != 0 ||
            strcmp(a->aliases[i].coll, b->aliases[i].coll) != 0)
            return false;
    for (uint32_t i = 0; i < a->n_nodes; i++)
        if (!node_equal(&a->nodes[i], &b->nodes[i]))
            return false;
    for (uint32_t i = 0; i < a->n_colls; i++)
        if (!coll_equal(a->colls[i], b->colls[i]))
            return false;
    for (uint32_t i = 0; i < a->n_moves; i++)
        if (!move_equal(&a->moves[i], &b->moves[i]))
            return false;
    for (uint32_t i = 0; i < a->n_seen; i++) {
        const struct cmap_seen *x = seen_at(a, i), *y = seen_at(b, i);
        if (x->id.hi != y->id.hi || x->id.lo != y->id.lo || x->code != y->code ||
            x->epoch != y->epoch || strcmp(x->msg, y->msg) != 0)
            return false;
    }
    return true;
}

/* ---- request-id memory ------------------------------------------------------------------- */

const struct cmap_seen *cmap_seen_find(const struct cmap *m, const struct cmap_reqid *id)
{
    /* Newest first: a retry usually follows its first attempt closely. */
    for (uint32_t i = m->n_seen; i-- > 0;) {
        const struct cmap_seen *s = seen_at(m, i);
        if (s->id.lo == id->lo && s->id.hi == id->hi)
            return s;
    }
    return NULL;
}

void cmap_seen_add(struct cmap *m, const struct cmap_reqid *id, const struct cmap_result *r)
{
    struct cmap_seen *s;
    if (m->n_seen < m->dedup_cap) {
        s = &m->seen[(m->seen_head + m->n_seen) % m->dedup_cap];
        m->n_seen++;
    } else {
        s = &m->seen[m->seen_head];
        m->seen_head = (m->seen_head + 1) % m->dedup_cap;
    }
    memset(s, 0, sizeof *s);
    s->id = *id;
    s->code = r->code;
    s->epoch = r->epoch;
    cmap_strlcpy(s->msg, r->msg, sizeof s->msg);
}

/* ---- lookups ----------------------------------------------------------------------------- */

uint32_t cmap_node_slot(const struct cmap *m, const char *id, bool *found)
{
    uint32_t lo = 0, hi = m->n_nodes;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->nodes[m->by_id[mid]].id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

uint32_t cmap_coll_slot(const struct cmap *m, const char *name, bool *found)
{
    uint32_t lo = 0, hi = m->n_colls;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->colls[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

uint32_t cmap_coord_slot(const struct cmap *m, uint64_t id, bool *found)
{
    uint32_t lo = 0, hi = m->n_coords;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->coords[mid].id == id) {
            *found = true;
            return mid;
        }
        if (m->coords[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const struct cmap_coord *cmap_coord_find(const struct cmap *m, uint64_t id)
{
    bool found;
    uint32_t i = cmap_coord_slot(m, id, &found);
    return found ? &m->coords[i] : NULL;
}

const struct cmap_node *cmap_node_find(const struct cmap *m, const char *id)
{
    bool found;
    uint32_t i = cmap_node_slot(m, id, &found);
    return found ? &m->nodes[m->by_id[i]] : NULL;
}

const struct cmap_node *cmap_node_get(const struct cmap *m, uint32_t num)
{
    return num < m->n_nodes ? &m->nodes[num] : NULL;
}

const struct cmap_coll *cmap_coll_find(const struct cmap *m, const char *name)
{
    bool found;
    uint32_t i = cmap_coll_slot(m, name, &found);
    return found ? m->colls[i] : NULL;
}

const struct cmap_part *cmap_part_find(const struct cmap *m, const char *coll, uint32_t part)
{
    const struct cmap_coll *c = cmap_coll_find(m, coll);
    return c && part < c->cfg.n_parts ? &c->parts[part] : NULL;
}

const struct cmap_move *cmap_move_find(const struct cmap *m, const char *coll, uint32_t part,
                                       uint32_t from, uint32_t to)
{
    for (uint32_t i = 0; i < m->n_moves; i++) {
        const struct cmap_move *mv = &m->moves[i];
        if (mv->part == part && mv->from == from && mv->to == to && strcmp(mv->coll, coll) == 0)
            return mv;
    }
    return NULL;
}

int cmap_node_parts(const struct cmap *m, uint32_t num, struct cmap_held **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t count = 0;
    for (uint32_t c = 0; c < m->n_colls; c++)
        for (uint32_t p = 0; p < m->colls[c]->cfg.n_parts; p++) {
            const struct cmap_part *part = &m->colls[c]->parts[p];
            for (uint32_t k = 0; k < part->n; k++)
                count += part->nodes[k] == num;
        }
    if (count == 0)
        return DV_OK;
    struct cmap_held *h = malloc(count * sizeof *h);
    if (!h)
        return DV_ENOMEM;
    size_t j = 0;
    for (uint32_t c = 0; c < m->n_colls; c++)
        for (uint32_t p = 0; p < m->colls[c]->cfg.n_parts; p++) {
            const struct cmap_part *part = &m->colls[c]->parts[p];
            for (uint32_t k = 0; k < part->n; k++)
                if (part->nodes[k] == num) {
                    h[j].coll = m->colls[c];
                    h[j].part = p;
                    h[j].primary = part->primary == num;
                    h[j].state = part->state[k];
                    h[j].epoch = part->epoch;
                    j++;
                }
        }
    *out = h;
    *n = count;
    return DV_OK;
}
