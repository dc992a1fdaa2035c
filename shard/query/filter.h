/* filter.h - payload filters with Qdrant's semantics: compiled from msgpack, matched against
 * msgpack payloads, and planned against payload indexes (pindex.h). */
#ifndef DV_FILTER_H
#define DV_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpk.h"
#include "pid.h"

/*
 * A compiled filter. The input is Qdrant's REST filter (the JSON shape) encoded as msgpack:
 *
 *   filter    = {"must": conds, "should": conds, "must_not": conds,
 *                "min_should": {"conditions": [cond...], "min_count": n}}   (all optional)
 *   conds     = [cond...] or a single cond (or nil, same as absent)
 *   cond      = {"key": K, "match": {"value": string|integer|bool}}
 *             | {"key": K, "match": {"any": [strings] or [integers]}}
 *             | {"key": K, "match": {"except": [strings] or [integers]}}
 *             | {"key": K, "range": {"gt"|"gte"|"lt"|"lte": number, ...}}
 *             | {"key": K, "values_count": {"gt"|"gte"|"lt"|"lte": n, ...}}
 *             | {"is_empty": {"key": K}} | {"is_null": {"key": K}}
 *             | {"key": K, "match": {"text": string}}     (full text)
 *             | {"key": K, "match": {"phrase": string}}   (full text, consecutive tokens)
 *             | {"key": K, "range": {"gt"|"gte"|"lt"|"lte": datetime string, ...}}
 *             | {"key": K, "geo_radius": {"center": point, "radius": meters}}
 *             | {"key": K, "geo_bounding_box": {"top_left": point, "bottom_right": point}}
 *             | {"key": K, "geo_polygon": {"exterior": ring, "interiors": [ring...]}}
 *             | {"has_id": [id...]}           (non-negative integers or UUID strings)
 *             | {"nested": {"key": K, "filter": filter}}
 *             | {"has_vector": name}
 *             | filter                        (nested)
 *   point     = {"lon": number in [-180, 180], "lat": number in [-90, 90]}
 *   ring      = {"points": [point...]}       (at least 4 points, the last equal to the first)
 *
 * A filter matches when every must-condition matches, at least one should-condition does
 * (if there are any), at least min_count of the min_should conditions do, and no
 * must_not-condition does. The empty filter matches everything.
 *
 * Keys are paths: "a.b.c" descends into maps; "a[]" takes every element of the array at
 * "a", "a[3]" one of them. When a named step meets an array, it looks into every element that
 * is a map ("items.n" equals "items[].n" for an array of maps). The values found at the end
 * of the path are what conditions look at; a value that is an array counts through its
 * elements (one level). Field conditions hold when any value or element holds:
 *   match value: a string equals, an integer equals (an integer-encoded payload value only:
 *     1.0 does not match 1), a bool equals; anything else is false.
 *   match any:  the value is a string (integer) in the list of strings (integers).
 *   match except: the value is not null, and either of another type than the list or not
 *     in it.
 *   range:      the value is a number (integer or float, compared exactly) within all
 *     bounds.
 *   values_count: the number of values, counting an array as its length and null as 0, is
 *     within all bounds (a missing key counts 0).
 *   match text: with a text index on the key (see filter_bind), every token of the query
 *     (tokenized with the index's settings, ftext.h) is among the tokens of a string value;
 *     a query without tokens matches nothing. Without a text index: the query is a substring
 *     of a string value (Qdrant's rule).
 *   match phrase: with a text index, the query's tokens appear consecutively and in order in
 *     a string value; without one, a substring like match text.
 *   range with datetime bounds (all bounds strings, dtime.h's formats: RFC 3339 and Qdrant's
 *     lenient forms; no zone means UTC): the value is a string that parses as a datetime and
 *     whose instant (microseconds) is within all bounds.
 *   geo_radius: the value is a geo point (a map with numbers lon, lat) within radius meters
 *     of center by the haversine distance; geo_bounding_box: within the box (top_left.lon >
 *     bottom_right.lon crosses the antimeridian); geo_polygon: inside the exterior ring and
 *     outside every interior ring (ray casting on lon/lat).
 * is_empty holds when every value is null or [] (so also when the key is missing); is_null
 * when some value is null. nested holds when some element of the array at K (each map
 * element; a map value counts as one element) matches the filter on its own, its keys
 * relative to the element: all its conditions hold for the SAME element. has_id and
 * has_vector are refused inside nested. has_vector holds when the point has the named vector
 * ("" is the unnamed one): filter_match_point asks the caller; filter_match never holds it.
 *
 * A compiled filter is immutable: any number of threads may match with it at once.
 */
struct filter;

/*
 * Compiles the msgpack-encoded filter of `n` bytes. On success the caller owns `*out`
 * (filter_free) and `mp` may go away. DV_EINVAL with a message naming the bad part (e.g.
 * "filter: must[2]: range: gt must be a number") for anything that is not a valid filter,
 * malformed msgpack included; DV_ENOMEM.
 */
int filter_compile(const void *mp, size_t n, struct filter **out, char *errmsg);

void filter_free(struct filter *f);

/*
 * Whether the point `id` (may be NULL: has_id then never holds) with `payload` (a msgpack
 * map of `len` bytes, or len 0 for no payload) matches. Allocates nothing. The payload is
 * trusted to be well-formed (it was validated when stored); malformed bytes are never read
 * out of bounds, and the values past the damage are treated as missing.
 */
bool filter_match(const struct filter *f, const struct pid *id, const void *payload, size_t len);

/*
 * What filter_match_point knows about one point: its id (may be NULL), its payload (a msgpack
 * map of len bytes, len 0 for none) and, for has_vector, a callback saying whether the point
 * has the vector `name` (n bytes, not NUL-terminated; NULL callback: it has none). The
 * callback runs on the matching thread, must not allocate, and sees `arg`.
 */
struct filter_point {
    const struct pid *id;
    const void *payload;
    size_t len;
    bool (*has_vector)(void *arg, const char *name, size_t n);
    void *arg;
};

/* filter_match with has_vector support. Allocates nothing. */
bool filter_match_point(const struct filter *f, const struct filter_point *pt);

/*
 * Planner support. `ix` holds `nix` payload indexes; an index serves a condition when its
 * key is the condition's key spelled the same way and its kind fits the condition:
 *   keyword: match value/any with strings;  uuid: match value/any with UUID strings;
 *   integer: match value/any with integers (unless its lookup flag is off), range with
 *     numbers (unless its range flag is off);
 *   float: range with numbers;  bool: match value with a bool;
 *   datetime: range with datetimes;  geo: geo_radius, geo_bounding_box, geo_polygon;
 *   text: match text and phrase (candidates: the intersection of the query tokens' lists).
 * nested conditions are not served. The caller holds the indexes' read lock (see pindex.h)
 * during these calls.
 */
struct pindex;

/*
 * Binds the full-text conditions of f to the text indexes among `ix` (nix indexes): a match
 * text/phrase on a key with a PINDEX_TEXT index gets that index's tokenizer settings and
 * token semantics; one without keeps the substring rule. Inside nested, a condition on key k
 * of nested key K binds to an index on "K[].k". The replica calls it once per request after
 * filter_compile, under its indexes' read lock, before the filter is used by other threads
 * (binding writes to f; matching never does). The filter keeps copies, not pointers: the
 * indexes may go away afterwards. Binding again replaces the previous binding. DV_ENOMEM
 * (f then keeps the substring rule for the conditions not bound yet; it stays usable).
 */
int filter_bind(struct filter *f, struct pindex *const *ix, size_t nix);

/*
 * Upper bound of the number of points matching f, from the indexes, when the must-conditions
 * (the most selective indexed one, nested filters included) or a should/min_should list whose
 * every condition is indexed allow it; then *exact_ok = true (filter_candidates can enumerate
 * them). Otherwise returns `total` (the live points) and *exact_ok = false.
 */
uint64_t filter_estimate(const struct filter *f, struct pindex *const *ix, size_t nix,
                         uint64_t total, bool *exact_ok);

/*
 * Enumerates a superset of the slots matching f from the indexes, chosen as filter_estimate
 * does: a malloc'd, sorted, de-duplicated array the caller frees (NULL when *n is 0). The
 * caller still checks filter_match on each. DV_EUNSUPPORTED when no index applies,
 * DV_ENOMEM.
 */
int filter_candidates(const struct filter *f, struct pindex *const *ix, size_t nix,
                      uint32_t **slots, size_t *n);

/*
 * True when the candidates of filter_candidates() are exactly the matching points, so the
 * caller may skip filter_match() on them: the filter is one must-condition, a match of a
 * value or of any of a list, on a key with a keyword index (strings), an integer index with
 * lookup (integers) or a bool index (a bool value).
 */
bool filter_index_exact(const struct filter *f, struct pindex *const *ix, size_t nix);

/*
 * The ids of the smallest has_id condition among f's top-level must-conditions (sorted by
 * pid_cmp, distinct, owned by f), or NULL when it has none. A point matching f is one of
 * them: the planner looks them up in the replica's id map (a re-scoring query is a search
 * restricted to the ids of its candidates).
 */
const struct pid *filter_must_ids(const struct filter *f, size_t *n);

/*
 * Key paths, shared with the payload index. A parsed path owns a copy of its text.
 */
enum filter_seg_kind {
    FILTER_SEG_KEY = 0, /* a map key */
    FILTER_SEG_ALL = 1, /* [] : every element */
    FILTER_SEG_IDX = 2, /* [i] */
};

struct filter_seg {
    uint8_t kind;
    uint32_t len;     /* FILTER_SEG_KEY: length of name */
    const char *name; /* FILTER_SEG_KEY: points into filter_path.text */
    uint32_t index;   /* FILTER_SEG_IDX */
};

struct filter_path {
    char *text; /* the key as given, NUL-terminated */
    size_t textlen;
    struct filter_seg *seg;
    uint32_t nseg;
};

/* Parses a key. DV_EINVAL (with a message) for an empty key, an empty step ("a..b"), a
 * bracket that is not [] or [digits], or more than 32 steps; DV_ENOMEM. */
int filter_path_parse(const char *key, size_t n, struct filter_path *out, char *errmsg);

void filter_path_free(struct filter_path *p);

/* Called with a cursor at each value found; returns true to stop the walk. */
typedef bool (*filter_visit_fn)(void *ctx, const struct mpk *val);

/* Walks the values at path p in the payload map (len 0: none) as described above, without
 * expanding a final array (the callback sees it whole). Returns true when fn stopped it. */
bool filter_path_visit(const struct filter_path *p, const void *payload, size_t len,
                       filter_visit_fn fn, void *ctx);

#endif
