/* jsonmp.h - JSON <-> msgpack conversion (payloads, filters) using jansson. */
#ifndef DV_JSONMP_H
#define DV_JSONMP_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"

/*
 * Mapping: null, bool, string and array map one to one; a JSON integer becomes a msgpack
 * int (negative) or uint (shortest encoding), a JSON real a float64, an object a map with
 * string keys in the object's order. Nesting deeper than MPK_MAX_DEPTH (64) is refused
 * both ways, so whatever these functions write the msgpack reader can read back.
 *
 * All functions write a message into `errmsg` (DV_ERRMSG_SIZE bytes, may be NULL) on
 * failure. On failure `out` keeps its previous length (the msgpack writers) or is left
 * untouched (the JSON outputs).
 */

/* Appends the msgpack form of `v` to `out`. DV_EINVAL for nesting too deep, DV_ENOMEM. */
int jsonmp_from_json(const json_t *v, struct buf *out, char *errmsg);

/* Parses `n` bytes of JSON text (any value at the top, not only objects) and appends its
 * msgpack form. DV_EPARSE with "json: line L column C: ..." when the text is not JSON. */
int jsonmp_from_text(const char *json, size_t n, struct buf *out, char *errmsg);

/*
 * Decodes exactly one msgpack value of `n` bytes into a new jansson value, which the caller
 * owns (json_decref). DV_ECORRUPT for malformed bytes, nesting deeper than MPK_MAX_DEPTH, or
 * bytes left after the value;
 * DV_EUNSUPPORTED for bin, ext, or a map key that is not a string; DV_ERANGE for an integer
 * above INT64_MAX or a non-finite float (JSON has neither); DV_EPARSE for a string that is
 * not valid UTF-8.
 */
int jsonmp_to_json(const void *mp, size_t n, json_t **out, char *errmsg);

/*
 * Like jsonmp_to_json but writes compact JSON text (no spaces, keys in stored order, floats
 * in the shortest form that reads back to the same value, always with a '.' or exponent so
 * they stay reals) into a malloc'd NUL-terminated string the caller frees.
 */
int jsonmp_to_text(const void *mp, size_t n, char **text, char *errmsg);

#endif
