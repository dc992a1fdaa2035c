/* readers.h - the vector files dvecctl loads: .fvecs, .npy (float32, 2-D, little-endian, C
 * order) and JSON Lines ({"id": ..., "vector": [...], "payload": {...}}), read in batches;
 * .ivecs ground truth for bench. */
#ifndef DVECCTL_READERS_H
#define DVECCTL_READERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dvec.h"

enum rd_format {
    RD_AUTO = 0, /* from the file name's extension */
    RD_FVECS,
    RD_NPY,
    RD_JSONL,
};

/* The largest vector dvec takes (PROTO_MAX_DIM). */
#define RD_MAX_DIM 65536

/* A batch of points read from a file; the caller owns it (rd_batch_free). */
struct rd_batch {
    size_t n, cap;
    uint32_t dim;
    dvec_id *ids;
    float *vecs;     /* n * dim */
    char **payloads; /* n entries, NULL for a point without payload; NULL when none has one */
    size_t bytes;    /* about what the batch weighs on the wire */
    /* Where the batch came from: rows (0-based, .fvecs/.npy) or lines (1-based, .jsonl). */
    uint64_t first, last;
};

struct reader;

/* Parses "fvecs", "npy", "jsonl" (also "json", "ndjson"); RD_AUTO for anything else. */
enum rd_format rd_format_parse(const char *name);
/* The format a path's extension says (.fvecs, .npy, .jsonl/.ndjson/.json), else RD_AUTO. */
enum rd_format rd_format_guess(const char *path);
const char *rd_format_name(enum rd_format f);

/*
 * Opens `path` and reads enough to know the vectors' dimension (the header, the first row or
 * the first JSON line). Rows of .fvecs/.npy get ids id_offset + row. Returns 0, or -1 with a
 * message naming the file (and the line or row) in errmsg.
 */
int rd_open(const char *path, enum rd_format fmt, uint64_t id_offset, struct reader **out,
            char *errmsg, size_t errlen);
void rd_close(struct reader *r);

enum rd_format rd_format_of(const struct reader *r);
uint32_t rd_dim(const struct reader *r);
/* Total rows when the format tells (.fvecs, .npy), else 0. */
uint64_t rd_rows(const struct reader *r);
/* File size, and bytes read so far (progress of a .jsonl file). */
uint64_t rd_size(const struct reader *r);
uint64_t rd_offset(const struct reader *r);
/* "row" or "line": what rd_batch.first/last count. */
const char *rd_unit(const struct reader *r);

/*
 * Reads the next points: at most `max` of them and, past the first, at most about max_bytes.
 * Returns the number read (b then holds them; free with rd_batch_free), 0 at the end of the
 * file, -1 on bad input with a message naming the line or row.
 */
long rd_next(struct reader *r, size_t max, size_t max_bytes, struct rd_batch *b, char *errmsg,
             size_t errlen);
void rd_batch_free(struct rd_batch *b);

/*
 * Reads point number `row` (0-based; the row of .fvecs/.npy, the n-th point of .jsonl) of a
 * file into *vec (malloc'd, *dim floats). Returns 0, or -1 with a message.
 */
int rd_read_row(const char *path, uint64_t row, float **vec, uint32_t *dim, char *errmsg,
                size_t errlen);

/* Reads a whole vector file (any format above) into *vecs (malloc'd, n x dim floats). */
int rd_read_all(const char *path, float **vecs, size_t *n, uint32_t *dim, char *errmsg,
                size_t errlen);

/* Reads a whole .ivecs file (rows of int32 with a dimension prefix, as .fvecs). */
int rd_read_ivecs(const char *path, int32_t **vals, size_t *n, uint32_t *dim, char *errmsg,
                  size_t errlen);

/* Parses a JSON array of numbers ("[0.1, 2, -3e4]") into *vec (malloc'd, *dim floats). */
int rd_parse_vector(const char *json, float **vec, uint32_t *dim, char *errmsg, size_t errlen);

#endif
