/* pindex.h - a payload index on one key, of one of Qdrant's field_schema kinds (keyword,
 * integer, float, bool, geo, text, datetime, uuid): value -> slots, ordered enumeration for
 * ranges and order_by, facet counts, and the index parameters with their msgpack forms. */
#ifndef DV_PINDEX_H
#define DV_PINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ftext.h"
#include "pid.h"

/*
 * The index maps each value found at its key (filter.h's path rules; every element of an
 * array counts) to the sorted set of slots whose payload holds it. A keyword index takes the
 * strings and ignores the rest; an integer index takes the integers that fit int64 and keeps
 * the slots holding other numbers (floats, integers above INT64_MAX) in one side list, which
 * every range enumeration includes so that candidates stay a superset.
 *
 * The other kinds: float takes every number (as a double; NaN is skipped, -0.0 is 0.0);
 * bool takes bools; datetime takes strings that parse as datetimes (dtime.h; their instants
 * in microseconds); uuid takes strings that parse as UUIDs (pid_parse_uuid: any case, with or
 * without dashes); text takes strings and indexes their tokens (ftext.h, with the index's
 * tokenizer settings, case-folded when lowercase is on; the prefix tokenizer also indexes
 * every prefix of each token); geo takes geo points ({"lon", "lat"} maps, geo.h) and files
 * each under its grid cell at every level of geo.h's grid.
 *
 * Wiring into a replica (the calls, in order):
 *   create index: pindex_params_parse(field_schema) -> pindex_create_params; log the bytes of
 *     pindex_params_encode in the WAL record and the meta file; on replay and load,
 *     pindex_params_decode -> pindex_create_params (an old record holding only kind 0/1 is
 *     pindex_create(key, kind)).
 *   search/scroll/count: filter_compile, then under the indexes' read lock filter_bind(f, ix,
 *     nix) once, filter_estimate / filter_candidates, and filter_match_point with a
 *     has_vector callback on each candidate.
 *   payload_schema: pindex_schema per index.  facet: the sorted matching slots (or NULL for
 *     no filter) -> pindex_facet.  order_by: pindex_order with a callback that checks the
 *     filter on each slot and stops after `limit` hits.
 *
 * Threads: not internally locked. The owner serialises writers (add, remove) and excludes
 * readers while one runs, e.g. with its own rwlock: writers take it exclusively; readers
 * (pindex_key, pindex_mem, the lookups below, filter_estimate, filter_candidates) share it.
 * Readers never modify the index.
 */
enum pindex_kind {
    PINDEX_KEYWORD = 0, /* values 0 and 1 are on disk (WAL records, meta files): keep them */
    PINDEX_INTEGER = 1,
    PINDEX_FLOAT = 2,
    PINDEX_BOOL = 3,
    PINDEX_GEO = 4,
    PINDEX_TEXT = 5,
    PINDEX_DATETIME = 6,
    PINDEX_UUID = 7,
};
#define PINDEX_KIND_COUNT 8

struct pindex;

/*
 * An index's parameters: Qdrant's field_schema. A kind given as a bare string ("keyword")
 * has `has_params` false and the defaults; the object form ({"type": "text", ...}) sets it
 * and is what payload_schema reports under "params".
 */
struct pindex_params {
    uint8_t kind;          /* enum pindex_kind */
    bool has_params;       /* given as an object */
    bool on_disk;          /* every kind: accepted and kept (indexes live in memory) */
    bool is_tenant;        /* keyword, uuid: accepted and kept */
    bool is_principal;     /* integer, float, datetime: accepted and kept */
    bool lookup, range;    /* integer: serves match value/any, range (both default true) */
    bool phrase_matching;  /* text: accepted and kept (phrase is served either way) */
    struct ftext_opts tok; /* text: tokenizer (default word), lowercase (default true),
                              min_token_len, max_token_len (0 = none) */
};

/* The defaults of `kind` (has_params false). */
struct pindex_params pindex_params_default(enum pindex_kind kind);

/* Qdrant's name of a kind ("keyword", "integer", "float", "bool", "geo", "text", "datetime",
 * "uuid"); "?" for an unknown value. */
const char *pindex_kind_name(enum pindex_kind kind);

/*
 * Parses Qdrant's field_schema from msgpack: a kind name ("keyword") or an object
 * {"type": name, ...params}. Known params: keyword {is_tenant, on_disk}; integer {lookup,
 * range, is_principal, on_disk}; float, datetime {is_principal, on_disk}; bool, geo
 * {on_disk}; uuid {is_tenant, on_disk}; text {tokenizer: "word"|"whitespace"|"prefix"|
 * "multilingual", lowercase, min_token_len, max_token_len, phrase_matching, on_disk}. Null
 * values mean the default. DV_EINVAL with a message like "field_schema: text: tokenizer must
 * be one of word, whitespace, prefix, multilingual" for anything else (an integer index with
 * lookup and range both false, min_token_len above max_token_len, unknown keys and the
 * unsupported stopwords/stemmer/ascii_folding included).
 */
int pindex_params_parse(const void *mp, size_t n, struct pindex_params *out, char *errmsg);

/*
 * The msgpack form for the replica's WAL record and meta file: exactly the field_schema that
 * pindex_params_parse reads back (a string when !has_params, else an object holding every
 * param of the kind). pindex_params_decode is pindex_params_parse with "index params" in its
 * messages. Encode: DV_EINVAL for a kind out of range, DV_ENOMEM (`out` then keeps its
 * length).
 */
int pindex_params_encode(const struct pindex_params *p, struct buf *out);
int pindex_params_decode(const void *mp, size_t n, struct pindex_params *out, char *errmsg);

/*
 * Appends the payload_schema entry of an index, as a msgpack map the REST layer renders as
 * JSON: {"data_type": kind name, "params": {"type": ..., params} (only when has_params),
 * "points": number of points holding an indexed value}. DV_ENOMEM.
 */
int pindex_schema(const struct pindex *ix, struct buf *out);

struct pindex;

/* Creates an empty index on `key` (a path as filter.h describes) with the default params of
 * `kind`. DV_EINVAL for a bad key or kind, DV_ENOMEM. The caller owns `*out` (pindex_free). */
int pindex_create(const char *key, enum pindex_kind kind, struct pindex **out);

/* Like pindex_create with explicit params (copied). DV_EINVAL for a bad key, kind or params. */
int pindex_create_params(const char *key, const struct pindex_params *p, struct pindex **out);

/* The index's params (valid until pindex_free). */
const struct pindex_params *pindex_params_of(const struct pindex *ix);

/* Number of slots holding at least one indexed value. */
size_t pindex_points(const struct pindex *ix);

void pindex_free(struct pindex *ix);

/* The key as given to pindex_create (valid until pindex_free), and the kind. */
const char *pindex_key(const struct pindex *ix);
enum pindex_kind pindex_kind_of(const struct pindex *ix);

/*
 * Indexes every value of the right type at the key in `payload` (a msgpack map of `len`
 * bytes; len 0 means none) under `slot`. Adding a slot again with the same values is a no-op.
 * On DV_ENOMEM some values may be indexed: pindex_remove with the same payload undoes it.
 */
int pindex_add(struct pindex *ix, uint32_t slot, const void *payload, size_t len);

/* Removes `slot` from the values in `payload`, which must be the bytes given to pindex_add
 * (values that are not indexed under the slot are passed over). */
void pindex_remove(struct pindex *ix, uint32_t slot, const void *payload, size_t len);

/* Bytes of memory the index holds (approximate: allocator overhead not counted). */
size_t pindex_mem(const struct pindex *ix);

/* Number of distinct values indexed. */
size_t pindex_values(const struct pindex *ix);

/*
 * Lookups for the planner. A posting list is a sorted array of distinct slots, valid until
 * the next write to the index. Missing values give an empty list.
 */
struct pindex_list {
    const uint32_t *slots;
    size_t n;
};

/* Keyword index: the slots holding string s. Text index: the slots holding token s (give it
 * case-folded when the index lowercases). UUID index: the slots holding the UUID whose 16
 * bytes are s (pid_uuid_bytes). */
struct pindex_list pindex_get_str(const struct pindex *ix, const char *s, size_t n);

/* Integer index: the slots holding integer v. Bool index: v 0 (false) or 1 (true). Datetime
 * index: the instant v (microseconds). Float index: pindex_float_key(d). Geo index: cell v
 * (geo_cell). */
struct pindex_list pindex_get_int(const struct pindex *ix, int64_t v);

/* The order-preserving int64 a float index files a double under (-0.0 as 0.0; not NaN), and
 * back. */
int64_t pindex_float_key(double d);
double pindex_float_of_key(int64_t k);

/* Integer index: the slots holding numbers that are not int64 (floats, big integers). */
struct pindex_list pindex_other_numbers(const struct pindex *ix);

/* Integer, float and datetime indexes: calls fn with the posting list of every value (key)
 * in [lo, hi] (in no particular order) until it returns true. */
typedef bool (*pindex_list_fn)(void *ctx, struct pindex_list l);
void pindex_range(const struct pindex *ix, int64_t lo, int64_t hi, pindex_list_fn fn, void *ctx);

/*
 * Facets (Qdrant's facet API) on a keyword, integer, bool or uuid index: the values with the
 * number of slots holding each, counting only the slots in `slots` (sorted, distinct; nslots
 * of them) unless `slots` is NULL (every slot). A slot holding several values counts once for
 * each. The `limit` values with the highest counts, ordered by count descending then value
 * ascending (strings bytewise, uuids by pid_cmp), zero counts left out; limit 0 means all.
 * `*hits` is malloc'd (the caller frees it; NULL when *n is 0); a keyword hit's string points
 * into the index, valid until its next write. DV_EINVAL for another kind, DV_ENOMEM.
 */
struct pindex_facet_hit {
    const char *s; /* keyword */
    uint32_t n;
    int64_t i;     /* integer; bool: 0 or 1 */
    struct pid id; /* uuid */
    uint64_t count;
};
int pindex_facet(const struct pindex *ix, const uint32_t *slots, size_t nslots, size_t limit,
                 struct pindex_facet_hit **hits, size_t *n);

/*
 * order_by: calls fn(ctx, slot, value) for the slots of an integer, float or datetime index
 * in value order (ascending, or descending when `desc`), from `start_from` on (values >= it
 * ascending, <= it descending; NULL: from the first), until fn returns true. As in Qdrant, a
 * slot holding several values is reported once per value; within a value slots come in
 * ascending order. Values of another type (floats in an integer index) are not reported.
 * Lazy: the cost is O(log n + sqrt n) to start plus what fn consumes. DV_EINVAL for another
 * kind, DV_ENOMEM (the scan allocates a copy of the unmerged recent values).
 */
struct pindex_ordval {
    int64_t i; /* integer; datetime: microseconds since the epoch */
    double f;  /* float */
};
typedef bool (*pindex_order_fn)(void *ctx, uint32_t slot, struct pindex_ordval v);
int pindex_order(const struct pindex *ix, bool desc, const struct pindex_ordval *start_from,
                 pindex_order_fn fn, void *ctx);

#endif
