/* filter_int.h - the compiled form of a filter, shared by filter_compile.c, filter_match.c and
 * filter_plan.c (planning against payload indexes). Internal to shard/storage. */
#ifndef DV_FILTER_INT_H
#define DV_FILTER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"
#include "ftext.h"
#include "geo.h"
#include "pid.h"

/* Numbers compared exactly whatever their encoding. */
enum { NUM_I64, NUM_U64 /* above INT64_MAX */, NUM_F64 };

struct num {
    uint8_t k;
    union {
        int64_t i;
        uint64_t u;
        double f;
    } v;
};

enum cond_kind {
    C_VALUE,
    C_ANY,
    C_EXCEPT,
    C_RANGE,
    C_COUNT,
    C_EMPTY,
    C_NULL,
    C_HASID,
    C_FILTER,
    C_TEXT,       /* match text */
    C_PHRASE,     /* match phrase */
    C_DTRANGE,    /* range with datetime bounds */
    C_GEO_RADIUS, /* geo_radius */
    C_GEO_BOX,    /* geo_bounding_box */
    C_GEO_POLY,   /* geo_polygon */
    C_NESTED,     /* nested: path is the array's key, u.sub the per-element filter */
    C_HASVEC,     /* has_vector */
};
enum { V_STR, V_INT, V_BOOL };
enum { B_GT, B_GTE, B_LT, B_LTE };

struct strref {
    const char *s;
    uint32_t n;
};

struct cond {
    uint8_t kind; /* enum cond_kind */
    uint8_t vt;   /* C_VALUE, C_ANY, C_EXCEPT: V_STR, V_INT or V_BOOL */
    struct filter_path path;
    union {
        struct {
            char *s;
            uint32_t n;
            int64_t i;
            bool b;
        } val;
        struct {
            struct strref *strs; /* sorted, V_STR */
            int64_t *ints;       /* sorted, V_INT */
            char *blob;          /* the string bytes */
            uint32_t n;
        } set;
        struct {
            struct num b[4];
            uint8_t has; /* bit B_* set when that bound is given */
        } range;
        struct {
            uint64_t b[4];
            uint8_t has;
        } count;
        struct {
            struct pid *ids; /* sorted by pid_cmp, distinct */
            size_t n;
        } ids;
        struct filter *sub;
        struct {
            char *s; /* the query text */
            uint32_t n;
            bool bound; /* a text index on the key: token semantics with `opts` */
            struct ftext_opts opts;
            struct strref *toks; /* bound: the query's tokens, pointing into s */
            uint32_t ntok;
        } text;
        struct {
            int64_t b[4]; /* microseconds since the epoch */
            uint8_t has;
        } dt;
        struct {
            struct geo_point c;
            double radius;
            struct geo_box box;    /* geo_bounding_box, and the bounds of the others */
            struct geo_point *pts; /* geo_polygon: every ring's points */
            uint32_t *ring_end;    /* ring r is pts[r ? ring_end[r-1] : 0 .. ring_end[r]) */
            uint32_t nring;        /* ring 0 is the exterior, the others holes */
        } geo;
        struct {
            char *s;
            uint32_t n;
        } vec;
    } u;
};

struct clist {
    struct cond *v;
    uint32_t n;
};

struct filter {
    struct clist must, should, must_not, min_should;
    uint32_t min_count;
    bool has_min;
};

/* Helpers shared by filter_compile.c and filter_match.c. */
bool filter_num_read(struct mpk r, struct num *out); /* an integer or float at r */
int filter_strref_cmp(const void *a, const void *b); /* qsort/bsearch on struct strref */
int filter_i64_cmp(const void *a, const void *b);
int filter_pid_qcmp(const void *a, const void *b);

#endif
