/* filter_int.h - the compiled form of a filter, shared by filter_compile.c, filter_match.c and
 * filter_plan.c (planning against payload indexes). Internal to shard/storage. */
#ifndef DV_FILTER_INT_H
#define DV_FILTER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"
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

enum cond_kind { C_VALUE, C_ANY, C_EXCEPT, C_RANGE, C_COUNT, C_EMPTY, C_NULL, C_HASID, C_FILTER };
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
