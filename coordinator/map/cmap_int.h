/* cmap_int.h - helpers shared by the files of the cluster map (not for users of cmap.h). */
#ifndef DV_CMAP_INT_H
#define DV_CMAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmap.h"

/* Version of the command encoding (first element of every command) and of the snapshot. */
#define CMAP_CMD_VERSION  1
#define CMAP_SNAP_VERSION 1
#define CMAP_SNAP_MAGIC   "CMAP"
#define CMAP_SNAP_HDR     24

/* Names and URLs: the rules of cmap.h. `s` is NUL-terminated. */
bool cmap_id_valid(const char *s);
bool cmap_name_valid(const char *s);
bool cmap_weight_valid(double w);

/* Checks collection parameters; false with a message in `msg` (CMAP_MSG_MAX bytes). */
bool cmap_cfg_valid(const struct cmap_coll_cfg *c, char *msg);

/* Deep copy of n reports (NULL when n == 0), and freeing them. DV_ENOMEM. */
int cmap_reports_copy(const struct cmap_report *src, uint32_t n, struct cmap_report **out);
void cmap_reports_free(struct cmap_report *r, uint32_t n);

/* Frees a collection and its partitions. */
void cmap_coll_destroy(struct cmap_coll *c);

/* Index in m->colls where `name` is, or would be inserted; *found says which. */
uint32_t cmap_coll_slot(const struct cmap *m, const char *name, bool *found);

/* Position in m->by_id where `id` is, or would be inserted; *found says which. */
uint32_t cmap_node_slot(const struct cmap *m, const char *id, bool *found);

/* Index in m->coords where `id` is, or would be inserted; *found says which. */
uint32_t cmap_coord_slot(const struct cmap *m, uint64_t id, bool *found);

/* Grows an array of `*cap` elements of `size` bytes to hold at least `need`. DV_ENOMEM. */
int cmap_grow(void **arr, uint32_t *cap, uint32_t need, size_t size);

/* The request-id memory. */
const struct cmap_seen *cmap_seen_find(const struct cmap *m, const struct cmap_reqid *id);
void cmap_seen_add(struct cmap *m, const struct cmap_reqid *id, const struct cmap_result *r);

/*
 * Looks at an entry of n bytes: DV_ENOTFOUND when it is not a batch (decode it as one command),
 * DV_EPROTO (errmsg says why) when it is a malformed batch, else DV_OK with `*items`/`*len`
 * the bytes of its `*count` commands, each checked to span one msgpack value.
 */
int cmap_batch_open(const void *p, size_t n, const uint8_t **items, size_t *len, uint32_t *count,
                    char *errmsg);

/* strdup through malloc (so that tests that wrap malloc see it). NULL on failure. */
char *cmap_strdup(const char *s);

/* Copies at most max-1 bytes of the NUL-terminated `src` into dst and terminates it. */
void cmap_strlcpy(char *dst, const char *src, size_t max);

/* Writes a collection's configuration as the 9-element array commands and snapshots share:
 * [dim, metric, m, ef_construction, ef_search, partitions, rf, fsync, sq8]. */
struct buf;
int cmap_write_cfg(struct buf *b, const struct cmap_coll_cfg *g);

/* Reads what cmap_write_cfg writes; `field` names the array in errors (each format words its
 * failures through k->fail). Checks types and the u32 range only: validity is the caller's. */
struct mpk_dec;
int cmap_read_cfg(struct mpk_dec *k, struct cmap_coll_cfg *g, const char *field);

/* Results for apply functions outside cmap_apply.c: success moves the map epoch on; a failure
 * records code and message in `res` and returns DV_OK (applying went well). */
void cmap_apply_ok(struct cmap *m, struct cmap_result *res);
int cmap_apply_fail(const struct cmap *m, struct cmap_result *res, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Aliases (cmap_alias.c): the alias command's shape check, body bytes and apply; the
 * snapshot's alias list (read after the collections); forgetting a dropped collection's. */
bool cmap_alias_shape_ok(const struct cmap_cmd *c);
int cmap_alias_write(struct buf *b, const struct cmap_cmd *c);
int cmap_alias_read(struct mpk_dec *k, struct cmap_cmd *c);
int cmap_alias_apply(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res);
int cmap_alias_snap_write(struct buf *b, const struct cmap *m);
int cmap_alias_snap_read(struct mpk_dec *k, struct cmap *m);
void cmap_alias_drop_coll(struct cmap *m, const char *coll);

/* Payload index definitions (cmap_index.c), the same for the coll_index command and a
 * collection's index list in snapshots. */
bool cmap_index_shape_ok(const struct cmap_cmd *c);
int cmap_index_write(struct buf *b, const struct cmap_cmd *c);
int cmap_index_read(struct mpk_dec *k, struct cmap_cmd *c);
int cmap_index_apply(struct cmap *m, const struct cmap_cmd *cmd, struct cmap_result *res);
int cmap_index_snap_write(struct buf *b, const struct cmap_coll *c);
int cmap_index_snap_read(struct mpk_dec *k, struct cmap_coll *c);

#endif
