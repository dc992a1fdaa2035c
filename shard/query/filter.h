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
 *             | {"has_id": [id...]}           (non-negative integers or UUID strings)
 *             | filter                        (nested)
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
 * is_empty holds when every value is null or [] (so also when the key is missing); is_null
 * when some value is null.
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
 * Planner support. `ix` holds `nix` payload indexes; an index serves a condition when its
 * key is the condition's key spelled the same way and its kind fits the condition (keyword:
 * match value/any with strings; integer: match value/any with integers, and range). The
 * caller holds the indexes' read lock (see pindex.h) during these calls.
 */
struct pindex;

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
 * value or of any of a list, on a key with an index of that value's type.
 */
bool filter_index_exact(const struct filter *f, struct pindex *const *ix, size_t nix);

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
