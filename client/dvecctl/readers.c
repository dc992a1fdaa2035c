/* readers.c - .fvecs, .npy and JSON Lines vector files read in batches; .ivecs for bench. */
#include "readers.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the .fvecs/.npy readers assume a little-endian host"
#endif

/* Per-point overhead on the wire besides the vector and the payload (id, framing). */
#define RD_POINT_OVERHEAD 24

struct reader {
    char *path;
    enum rd_format fmt;
    FILE *f;
    uint32_t dim;
    uint64_t rows;      /* .fvecs/.npy: total rows */
    uint64_t next_row;  /* .fvecs/.npy: the next row to read */
    uint64_t data_off;  /* .npy: where the data start */
    uint64_t id_offset; /* .fvecs/.npy */
    uint64_t size;
    uint64_t line; /* .jsonl: the last line read (1-based) */
    char *linebuf; /* .jsonl */
    size_t linecap;
};

enum rd_format rd_format_parse(const char *name)
{
    if (strcmp(name, "fvecs") == 0)
        return RD_FVECS;
    if (strcmp(name, "npy") == 0)
        return RD_NPY;
    if (strcmp(name, "jsonl") == 0 || strcmp(name, "json") == 0 || strcmp(name, "ndjson") == 0)
        return RD_JSONL;
    return RD_AUTO;
}

enum rd_format rd_format_guess(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot == NULL || (slash && dot < slash))
        return RD_AUTO;
    return rd_format_parse(dot + 1);
}

const char *rd_format_name(enum rd_format f)
{
    switch (f) {
    case RD_FVECS:
        return "fvecs";
    case RD_NPY:
        return "npy";
    case RD_JSONL:
        return "jsonl";
    default:
        return "auto";
    }
}

enum rd_format rd_format_of(const struct reader *r)
{
    return r->fmt;
}

uint32_t rd_dim(const struct reader *r)
{
    return r->dim;
}

uint64_t rd_rows(const struct reader *r)
{
    return r->fmt == RD_JSONL ? 0 : r->rows;
}

uint64_t rd_size(const struct reader *r)
{
    return r->size;
}

uint64_t rd_offset(const struct reader *r)
{
    if (r->fmt == RD_JSONL) {
        off_t o = ftello(r->f);
        return o < 0 ? 0 : (uint64_t)o;
    }
    return r->fmt == RD_NPY ? r->data_off + r->next_row * r->dim * 4
                            : r->next_row * (4 + (uint64_t)r->dim * 4);
}

const char *rd_unit(const struct reader *r)
{
    return r->fmt == RD_JSONL ? "line" : "row";
}

/* ---- .fvecs ---------------------------------------------------------------------------- */

static int fvecs_open(struct reader *r, char *errmsg, size_t errlen)
{
    int32_t d;
    if (r->size == 0) {
        snprintf(errmsg, errlen, "%s: empty file", r->path);
        return -1;
    }
    if (fread(&d, 4, 1, r->f) != 1) {
        snprintf(errmsg, errlen, "%s: too short for .fvecs (a row starts with a 4-byte dimension)",
                 r->path);
        return -1;
    }
    if (d <= 0 || d > RD_MAX_DIM) {
        snprintf(errmsg, errlen,
                 "%s: row 0: dimension %d is not in 1 .. %d (is this an .fvecs file?)", r->path,
                 (int)d, RD_MAX_DIM);
        return -1;
    }
    r->dim = (uint32_t)d;
    uint64_t row_bytes = 4 + 4 * (uint64_t)r->dim;
    if (r->size % row_bytes != 0) {
        snprintf(errmsg, errlen,
                 "%s: %llu bytes is not a whole number of %u-dimensional rows (%llu bytes each): "
                 "truncated, or rows of different dimensions",
                 r->path, (unsigned long long)r->size, r->dim, (unsigned long long)row_bytes);
        return -1;
    }
    r->rows = r->size / row_bytes;
    if (fseeko(r->f, 0, SEEK_SET) != 0) {
        snprintf(errmsg, errlen, "%s: %s", r->path, strerror(errno));
        return -1;
    }
    return 0;
}

static int check_finite(const struct reader *r, const float *v, uint64_t row, char *errmsg,
                        size_t errlen)
{
    for (uint32_t j = 0; j < r->dim; j++) {
        if (!isfinite(v[j])) {
            snprintf(errmsg, errlen, "%s: row %llu: component %u is %s", r->path,
                     (unsigned long long)row, j, isnan(v[j]) ? "NaN" : "infinite");
            return -1;
        }
    }
    return 0;
}

/* Reads row r->next_row of a .fvecs file (positioned there) into v. */
static int fvecs_row(struct reader *r, float *v, char *errmsg, size_t errlen)
{
    int32_t d;
    uint64_t row = r->next_row;
    if (fread(&d, 4, 1, r->f) != 1 || fread(v, 4, r->dim, r->f) != r->dim) {
        snprintf(errmsg, errlen, "%s: row %llu: %s", r->path, (unsigned long long)row,
                 ferror(r->f) ? strerror(errno) : "truncated");
        return -1;
    }
    if (d != (int32_t)r->dim) {
        snprintf(errmsg, errlen,
                 "%s: row %llu: dimension %d, but row 0 has %u (every row must have the same)",
                 r->path, (unsigned long long)row, (int)d, r->dim);
        return -1;
    }
    r->next_row++;
    return check_finite(r, v, row, errmsg, errlen);
}

/* ---- .npy ------------------------------------------------------------------------------ */

/* Finds the value of 'key' in a numpy header dict; returns a pointer past the ':' or NULL. */
static const char *npy_value(const char *h, const char *key)
{
    char q1[64], q2[64];
    snprintf(q1, sizeof q1, "'%s'", key);
    snprintf(q2, sizeof q2, "\"%s\"", key);
    const char *p = strstr(h, q1);
    if (p == NULL)
        p = strstr(h, q2);
    if (p == NULL)
        return NULL;
    p += strlen(q1);
    while (isspace((unsigned char)*p))
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

/* Parses the header dict of a .npy file: descr, fortran_order and a 2-D shape. */
static int npy_header(struct reader *r, const char *h, char *errmsg, size_t errlen)
{
    const char *d = npy_value(h, "descr");
    if (d == NULL || (*d != '\'' && *d != '"')) {
        snprintf(errmsg, errlen, "%s: .npy header has no 'descr' (dtype)", r->path);
        return -1;
    }
    char q = *d++;
    const char *e = strchr(d, q);
    if (e == NULL || e - d > 30) {
        snprintf(errmsg, errlen, "%s: .npy header: bad 'descr'", r->path);
        return -1;
    }
    char descr[32];
    snprintf(descr, sizeof descr, "%.*s", (int)(e - d), d);
    if (strcmp(descr, "<f4") != 0) {
        const char *why = "dvecctl reads float32 only";
        if (strcmp(descr, ">f4") == 0)
            why = "big-endian float32; save a.astype('<f4')";
        else if (strcmp(descr, "<f8") == 0 || strcmp(descr, ">f8") == 0)
            why = "float64; save a.astype(numpy.float32)";
        else if (strcmp(descr, "<f2") == 0)
            why = "float16; save a.astype(numpy.float32)";
        snprintf(errmsg, errlen, "%s: dtype '%s' is not little-endian float32 ('<f4'): %s", r->path,
                 descr, why);
        return -1;
    }
    const char *fo = npy_value(h, "fortran_order");
    if (fo == NULL || (strncmp(fo, "False", 5) != 0 && strncmp(fo, "True", 4) != 0)) {
        snprintf(errmsg, errlen, "%s: .npy header has no 'fortran_order'", r->path);
        return -1;
    }
    if (strncmp(fo, "True", 4) == 0) {
        snprintf(errmsg, errlen,
                 "%s: the array is in Fortran (column-major) order; save "
                 "numpy.ascontiguousarray(a)",
                 r->path);
        return -1;
    }
    const char *s = npy_value(h, "shape");
    if (s == NULL || *s != '(') {
        snprintf(errmsg, errlen, "%s: .npy header has no 'shape'", r->path);
        return -1;
    }
    const char *close = strchr(s, ')');
    if (close == NULL) {
        snprintf(errmsg, errlen, "%s: .npy header: bad 'shape'", r->path);
        return -1;
    }
    uint64_t dims[8];
    int nd = 0;
    const char *p = s + 1;
    while (p < close) {
        while (p < close && (isspace((unsigned char)*p) || *p == ','))
            p++;
        if (p >= close)
            break;
        if (!isdigit((unsigned char)*p) || nd == 8) {
            snprintf(errmsg, errlen, "%s: .npy header: bad 'shape' %.*s", r->path,
                     (int)(close - s + 1), s);
            return -1;
        }
        errno = 0;
        char *end;
        dims[nd++] = strtoull(p, &end, 10);
        if (errno != 0) {
            snprintf(errmsg, errlen, "%s: .npy header: bad 'shape'", r->path);
            return -1;
        }
        p = end;
        /* numpy writes 1L on some old versions */
        if (*p == 'L')
            p++;
    }
    if (nd != 2) {
        snprintf(errmsg, errlen,
                 "%s: shape %.*s is not 2-D; dvecctl reads a (rows, dim) matrix of float32",
                 r->path, (int)(close - s + 1), s);
        return -1;
    }
    if (dims[1] == 0 || dims[1] > RD_MAX_DIM) {
        snprintf(errmsg, errlen, "%s: dimension %llu is not in 1 .. %d", r->path,
                 (unsigned long long)dims[1], RD_MAX_DIM);
        return -1;
    }
    r->rows = dims[0];
    r->dim = (uint32_t)dims[1];
    return 0;
}

static int npy_open(struct reader *r, char *errmsg, size_t errlen)
{
    unsigned char pre[12];
    if (fread(pre, 1, 10, r->f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        snprintf(errmsg, errlen, "%s: not a .npy file (no \\x93NUMPY magic)", r->path);
        return -1;
    }
    uint32_t hlen;
    uint64_t start;
    if (pre[6] == 1) {
        hlen = pre[8] | (uint32_t)pre[9] << 8;
        start = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, r->f) != 2) {
            snprintf(errmsg, errlen, "%s: truncated .npy header", r->path);
            return -1;
        }
        hlen = pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
        start = 12;
    } else {
        snprintf(errmsg, errlen, "%s: .npy format version %u.%u is not supported (1, 2 or 3)",
                 r->path, pre[6], pre[7]);
        return -1;
    }
    if (hlen > 1 << 20 || start + hlen > r->size) {
        snprintf(errmsg, errlen, "%s: .npy header length %u is past the end of the file", r->path,
                 hlen);
        return -1;
    }
    char *h = malloc(hlen + 1);
    if (h == NULL) {
        snprintf(errmsg, errlen, "%s: out of memory", r->path);
        return -1;
    }
    if (fread(h, 1, hlen, r->f) != hlen) {
        free(h);
        snprintf(errmsg, errlen, "%s: truncated .npy header", r->path);
        return -1;
    }
    h[hlen] = '\0';
    int rc = npy_header(r, h, errmsg, errlen);
    free(h);
    if (rc != 0)
        return rc;
    r->data_off = start + hlen;
    uint64_t want = r->data_off + r->rows * r->dim * 4;
    if (want != r->size) {
        snprintf(errmsg, errlen,
                 "%s: %llu x %u float32 need %llu bytes after the header, the file has %llu%s",
                 r->path, (unsigned long long)r->rows, r->dim,
                 (unsigned long long)(r->rows * r->dim * 4),
                 (unsigned long long)(r->size - r->data_off), want > r->size ? " (truncated)" : "");
        return -1;
    }
    return 0;
}

static int npy_row(struct reader *r, float *v, char *errmsg, size_t errlen)
{
    uint64_t row = r->next_row;
    if (fread(v, 4, r->dim, r->f) != r->dim) {
        snprintf(errmsg, errlen, "%s: row %llu: %s", r->path, (unsigned long long)row,
                 ferror(r->f) ? strerror(errno) : "truncated");
        return -1;
    }
    r->next_row++;
    return check_finite(r, v, row, errmsg, errlen);
}

/* ---- JSON Lines ------------------------------------------------------------------------ */

/* Reads the next non-blank line into r->linebuf; 1 when one was read, 0 at the end. */
static int jsonl_line(struct reader *r, char *errmsg, size_t errlen)
{
    for (;;) {
        ssize_t n = getline(&r->linebuf, &r->linecap, r->f);
        if (n < 0) {
            if (ferror(r->f)) {
                snprintf(errmsg, errlen, "%s: line %llu: %s", r->path,
                         (unsigned long long)r->line + 1, strerror(errno));
                return -1;
            }
            return 0;
        }
        r->line++;
        const char *p = r->linebuf;
        while (isspace((unsigned char)*p))
            p++;
        if (*p)
            return 1;
    }
}

int rd_parse_vector(const char *json, float **vec, uint32_t *dim, char *errmsg, size_t errlen)
{
    json_error_t je;
    json_t *a = json_loads(json, JSON_DECODE_ANY, &je);
    if (a == NULL) {
        snprintf(errmsg, errlen, "not JSON: %s (column %d)", je.text, je.column);
        return -1;
    }
    int rc = -1;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > RD_MAX_DIM) {
        snprintf(errmsg, errlen, "expected an array of 1 .. %d numbers", RD_MAX_DIM);
        goto out;
    }
    size_t n = json_array_size(a);
    float *v = malloc(n * sizeof *v);
    if (v == NULL) {
        snprintf(errmsg, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(a, i);
        float f = (float)json_number_value(x);
        if (!json_is_number(x) || !isfinite(f)) {
            snprintf(errmsg, errlen, "element %zu is not a finite float32 number", i);
            free(v);
            goto out;
        }
        v[i] = f;
    }
    *vec = v;
    *dim = (uint32_t)n;
    rc = 0;
out:
    json_decref(a);
    return rc;
}

/*
 * Parses one JSON line: id, vector (dim floats into v; *dim set when 0), payload (malloc'd
 * compact text or NULL). Errors name the line.
 */
static int jsonl_parse(struct reader *r, dvec_id *id, float *v, uint32_t *dim, char **payload,
                       char *errmsg, size_t errlen)
{
    json_error_t je;
    char msg[300];
    *payload = NULL;
    json_t *o = json_loads(r->linebuf, 0, &je);
    if (o == NULL) {
        if (je.column > 0)
            snprintf(errmsg, errlen, "%s: line %llu: not JSON: %s (column %d)", r->path,
                     (unsigned long long)r->line, je.text, je.column);
        else
            snprintf(errmsg, errlen, "%s: line %llu: not JSON: %s", r->path,
                     (unsigned long long)r->line, je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(o)) {
        snprintf(msg, sizeof msg, "expected an object {\"id\": ..., \"vector\": [...]}");
        goto bad;
    }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        if (strcmp(key, "id") != 0 && strcmp(key, "vector") != 0 && strcmp(key, "payload") != 0) {
            snprintf(msg, sizeof msg, "unknown key \"%.100s\" (expected id, vector, payload)", key);
            goto bad;
        }
    }
    json_t *jid = json_object_get(o, "id");
    if (jid == NULL) {
        snprintf(msg, sizeof msg, "no \"id\"");
        goto bad;
    }
    if (json_is_integer(jid) && json_integer_value(jid) >= 0) {
        *id = dvec_id_num((uint64_t)json_integer_value(jid));
    } else if (!json_is_string(jid) || dvec_id_parse(json_string_value(jid), id) != DVEC_OK) {
        snprintf(msg, sizeof msg, "\"id\" must be an unsigned integer or a UUID string");
        goto bad;
    }
    json_t *jv = json_object_get(o, "vector");
    if (jv == NULL || !json_is_array(jv) || json_array_size(jv) == 0) {
        snprintf(msg, sizeof msg, "\"vector\" must be a non-empty array of numbers");
        goto bad;
    }
    size_t n = json_array_size(jv);
    if (*dim == 0 && n > RD_MAX_DIM) {
        snprintf(msg, sizeof msg, "the vector has %zu dimensions, more than %d", n, RD_MAX_DIM);
        goto bad;
    }
    if (*dim != 0 && n != *dim) {
        snprintf(msg, sizeof msg, "the vector has %zu dimensions, the file's first one has %u", n,
                 *dim);
        goto bad;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(jv, i);
        float f = (float)json_number_value(x);
        if (!json_is_number(x) || !isfinite(f)) {
            snprintf(msg, sizeof msg, "vector[%zu] is not a finite float32 number", i);
            goto bad;
        }
        if (v)
            v[i] = f;
    }
    *dim = (uint32_t)n;
    json_t *jp = json_object_get(o, "payload");
    if (jp && !json_is_null(jp)) {
        if (!json_is_object(jp)) {
            snprintf(msg, sizeof msg, "\"payload\" must be an object");
            goto bad;
        }
        *payload = json_dumps(jp, JSON_COMPACT);
        if (*payload == NULL) {
            snprintf(msg, sizeof msg, "out of memory");
            goto bad;
        }
    }
    rc = 0;
    goto out;
bad:
    snprintf(errmsg, errlen, "%s: line %llu: %s", r->path, (unsigned long long)r->line, msg);
out:
    json_decref(o);
    return rc;
}

static int jsonl_open(struct reader *r, char *errmsg, size_t errlen)
{
    int got = jsonl_line(r, errmsg, errlen);
    if (got < 0)
        return -1;
    if (got == 0) {
        snprintf(errmsg, errlen, "%s: no points (the file is empty)", r->path);
        return -1;
    }
    dvec_id id;
    char *payload;
    uint32_t dim = 0;
    if (jsonl_parse(r, &id, NULL, &dim, &payload, errmsg, errlen) != 0)
        return -1;
    free(payload);
    r->dim = dim;
    r->line = 0;
    if (fseeko(r->f, 0, SEEK_SET) != 0) {
        snprintf(errmsg, errlen, "%s: %s", r->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- common ---------------------------------------------------------------------------- */

int rd_open(const char *path, enum rd_format fmt, uint64_t id_offset, struct reader **out,
            char *errmsg, size_t errlen)
{
    if (fmt == RD_AUTO)
        fmt = rd_format_guess(path);
    if (fmt == RD_AUTO) {
        snprintf(errmsg, errlen,
                 "%s: unknown format (name it .fvecs, .npy or .jsonl, or give --format)", path);
        return -1;
    }
    struct reader *r = calloc(1, sizeof *r);
    if (r == NULL || (r->path = strdup(path)) == NULL) {
        free(r);
        snprintf(errmsg, errlen, "out of memory");
        return -1;
    }
    r->fmt = fmt;
    r->id_offset = id_offset;
    r->f = fopen(path, "rb");
    struct stat st;
    if (r->f == NULL || fstat(fileno(r->f), &st) != 0) {
        snprintf(errmsg, errlen, "%s: %s", path, strerror(errno));
        goto err;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(errmsg, errlen, "%s: is a directory", path);
        goto err;
    }
    r->size = (uint64_t)st.st_size;
    int rc = fmt == RD_FVECS ? fvecs_open(r, errmsg, errlen)
             : fmt == RD_NPY ? npy_open(r, errmsg, errlen)
                             : jsonl_open(r, errmsg, errlen);
    if (rc != 0)
        goto err;
    *out = r;
    return 0;
err:
    rd_close(r);
    return -1;
}

void rd_close(struct reader *r)
{
    if (r == NULL)
        return;
    if (r->f)
        fclose(r->f);
    free(r->linebuf);
    free(r->path);
    free(r);
}

void rd_batch_free(struct rd_batch *b)
{
    if (b->payloads)
        for (size_t i = 0; i < b->n; i++)
            free(b->payloads[i]);
    free(b->payloads);
    free(b->ids);
    free(b->vecs);
    memset(b, 0, sizeof *b);
}

long rd_next(struct reader *r, size_t max, size_t max_bytes, struct rd_batch *b, char *errmsg,
             size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (max == 0)
        max = 1;
    if (r->fmt != RD_JSONL) {
        uint64_t left = r->rows - r->next_row;
        if (left < max)
            max = (size_t)left;
        size_t per = (size_t)r->dim * 4 + RD_POINT_OVERHEAD;
        if (max_bytes && max > 1 && max * per > max_bytes)
            max = max_bytes / per ? max_bytes / per : 1;
    }
    if (max == 0)
        return 0;
    b->cap = max;
    b->dim = r->dim;
    b->ids = malloc(max * sizeof *b->ids);
    b->vecs = malloc(max * (size_t)r->dim * sizeof *b->vecs);
    if (b->ids == NULL || b->vecs == NULL) {
        snprintf(errmsg, errlen, "%s: out of memory for a batch of %zu", r->path, max);
        goto err;
    }
    if (r->fmt != RD_JSONL) {
        b->first = r->next_row;
        for (size_t i = 0; i < max; i++) {
            uint64_t row = r->next_row;
            float *v = b->vecs + i * r->dim;
            int rc = r->fmt == RD_FVECS ? fvecs_row(r, v, errmsg, errlen)
                                        : npy_row(r, v, errmsg, errlen);
            if (rc != 0)
                goto err;
            b->ids[i] = dvec_id_num(r->id_offset + row);
            b->n++;
        }
        b->last = r->next_row - 1;
        b->bytes = b->n * ((size_t)r->dim * 4 + RD_POINT_OVERHEAD);
        return (long)b->n;
    }
    while (b->n < max && (b->n == 0 || !max_bytes || b->bytes < max_bytes)) {
        int got = jsonl_line(r, errmsg, errlen);
        if (got < 0)
            goto err;
        if (got == 0)
            break;
        uint32_t dim = r->dim;
        char *payload;
        if (jsonl_parse(r, &b->ids[b->n], b->vecs + b->n * r->dim, &dim, &payload, errmsg,
                        errlen) != 0)
            goto err;
        if (payload) {
            if (b->payloads == NULL && (b->payloads = calloc(max, sizeof *b->payloads)) == NULL) {
                free(payload);
                snprintf(errmsg, errlen, "%s: out of memory", r->path);
                goto err;
            }
            b->payloads[b->n] = payload;
            b->bytes += strlen(payload);
        }
        if (b->n == 0)
            b->first = r->line;
        b->last = r->line;
        b->bytes += (size_t)r->dim * 4 + RD_POINT_OVERHEAD;
        b->n++;
    }
    if (b->n == 0)
        rd_batch_free(b);
    return (long)b->n;
err:
    rd_batch_free(b);
    return -1;
}

int rd_read_row(const char *path, uint64_t row, float **vec, uint32_t *dim, char *errmsg,
                size_t errlen)
{
    struct reader *r;
    if (rd_open(path, RD_AUTO, 0, &r, errmsg, errlen) != 0)
        return -1;
    int rc = -1;
    float *v = NULL;
    if (r->fmt != RD_JSONL) {
        if (row >= r->rows) {
            snprintf(errmsg, errlen, "%s: row %llu does not exist (%llu rows)", path,
                     (unsigned long long)row, (unsigned long long)r->rows);
            goto out;
        }
        uint64_t off =
            r->fmt == RD_NPY ? r->data_off + row * r->dim * 4 : row * (4 + (uint64_t)r->dim * 4);
        if (fseeko(r->f, (off_t)off, SEEK_SET) != 0) {
            snprintf(errmsg, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        r->next_row = row;
        if ((v = malloc((size_t)r->dim * sizeof *v)) == NULL) {
            snprintf(errmsg, errlen, "out of memory");
            goto out;
        }
        if ((r->fmt == RD_FVECS ? fvecs_row(r, v, errmsg, errlen)
                                : npy_row(r, v, errmsg, errlen)) != 0)
            goto out;
    } else {
        struct rd_batch b;
        for (uint64_t i = 0;; i++) {
            long n = rd_next(r, 1, 0, &b, errmsg, errlen);
            if (n < 0)
                goto out;
            if (n == 0) {
                snprintf(errmsg, errlen, "%s: point %llu does not exist (%llu points)", path,
                         (unsigned long long)row, (unsigned long long)i);
                goto out;
            }
            if (i == row) {
                v = b.vecs;
                b.vecs = NULL;
                rd_batch_free(&b);
                break;
            }
            rd_batch_free(&b);
        }
    }
    *vec = v;
    v = NULL;
    *dim = r->dim;
    rc = 0;
out:
    free(v);
    rd_close(r);
    return rc;
}

int rd_read_all(const char *path, float **vecs, size_t *n, uint32_t *dim, char *errmsg,
                size_t errlen)
{
    struct reader *r;
    if (rd_open(path, RD_AUTO, 0, &r, errmsg, errlen) != 0)
        return -1;
    float *all = NULL;
    size_t have = 0, cap = 0;
    struct rd_batch b;
    long got;
    while ((got = rd_next(r, 4096, 0, &b, errmsg, errlen)) > 0) {
        if (have + b.n > cap) {
            size_t nc = cap ? cap * 2 : 4096;
            while (nc < have + b.n)
                nc *= 2;
            float *p = realloc(all, nc * (size_t)r->dim * sizeof *p);
            if (p == NULL) {
                rd_batch_free(&b);
                snprintf(errmsg, errlen, "%s: out of memory", path);
                got = -1;
                break;
            }
            all = p;
            cap = nc;
        }
        memcpy(all + have * r->dim, b.vecs, b.n * (size_t)r->dim * sizeof *all);
        have += b.n;
        rd_batch_free(&b);
    }
    if (got == 0 && have == 0) {
        snprintf(errmsg, errlen, "%s: no vectors", path);
        got = -1;
    }
    if (got < 0) {
        free(all);
        rd_close(r);
        return -1;
    }
    *vecs = all;
    *n = have;
    *dim = r->dim;
    rd_close(r);
    return 0;
}

int rd_read_ivecs(const char *path, int32_t **vals, size_t *n, uint32_t *dim, char *errmsg,
                  size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        snprintf(errmsg, errlen, "%s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    int32_t d;
    uint64_t size = (uint64_t)st.st_size;
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > RD_MAX_DIM) {
        snprintf(errmsg, errlen, "%s: not an .ivecs file (bad first row length)", path);
        fclose(f);
        return -1;
    }
    uint64_t row_bytes = 4 + 4 * (uint64_t)d;
    if (size % row_bytes != 0) {
        snprintf(errmsg, errlen, "%s: %llu bytes is not a whole number of rows of %d ints", path,
                 (unsigned long long)size, (int)d);
        fclose(f);
        return -1;
    }
    size_t rows = (size_t)(size / row_bytes);
    int32_t *v = malloc(rows * (size_t)d * sizeof *v);
    if (v == NULL) {
        snprintf(errmsg, errlen, "%s: out of memory", path);
        fclose(f);
        return -1;
    }
    rewind(f);
    for (size_t i = 0; i < rows; i++) {
        int32_t di;
        if (fread(&di, 4, 1, f) != 1 || di != d ||
            fread(v + i * (size_t)d, 4, (size_t)d, f) != (size_t)d) {
            snprintf(errmsg, errlen, "%s: row %zu: truncated or of another length than row 0", path,
                     i);
            free(v);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    *vals = v;
    *n = rows;
    *dim = (uint32_t)d;
    return 0;
}
