/* fsm.c - raft glue of the cluster map: apply, snapshot and restore on a struct cmap. */
#include "fsm.h"

#include <assert.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "log.h"

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct cmap_fsm *f = fsm->data;
    int rc = cmap_apply(&f->map, buf->base, buf->len, &f->results);
    if (rc != DV_OK) {
        *result = NULL;
        return RAFT_NOMEM;
    }
    f->n_applied++;
    *result = &f->results;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct cmap_fsm *f = fsm->data;
    struct buf b = BUF_INIT;
    int rc = cmap_encode(&f->map, &b);
    if (rc != DV_OK) {
        dv_errmsg_set(f->errmsg, "cmap fsm: snapshot: %s", dv_strerror(rc));
        buf_free(&b);
        return rc == DV_ENOMEM ? RAFT_NOMEM : RAFT_TOOBIG;
    }
    struct raft_buffer *arr = raft_malloc(sizeof *arr);
    void *base = raft_malloc(b.len);
    if (!arr || !base) {
        raft_free(arr);
        raft_free(base);
        buf_free(&b);
        dv_errmsg_set(f->errmsg, "cmap fsm: snapshot: out of memory");
        return RAFT_NOMEM;
    }
    memcpy(base, b.data, b.len);
    arr[0].base = base;
    arr[0].len = b.len;
    buf_free(&b);
    *bufs = arr;
    *n_bufs = 1;
    f->n_snapshots++;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct cmap_fsm *f = fsm->data;
    struct cmap m;
    int rc = cmap_decode(buf->base, buf->len, &m, f->errmsg);
    if (rc != DV_OK) {
        log_error("cluster map snapshot rejected", "error=%s", f->errmsg);
        return rc == DV_ENOMEM ? RAFT_NOMEM : RAFT_CORRUPT;
    }
    cmap_free(&f->map);
    f->map = m;
    f->n_restores++;
    raft_free(buf->base);
    return 0;
}

int cmap_fsm_init(struct cmap_fsm *f, struct raft_fsm *fsm, uint32_t dedup_cap)
{
    memset(f, 0, sizeof *f);
    int rc = cmap_init(&f->map, dedup_cap);
    if (rc != DV_OK)
        return rc;
    memset(fsm, 0, sizeof *fsm);
    fsm->version = 1;
    fsm->data = f;
    fsm->apply = fsm_apply;
    fsm->snapshot = fsm_snapshot;
    fsm->restore = fsm_restore;
    return DV_OK;
}

void cmap_fsm_close(struct cmap_fsm *f)
{
    cmap_free(&f->map);
    cmap_results_free(&f->results);
}

int cmap_fsm_entry(const void *p, size_t n, struct raft_buffer *out)
{
    /* raft 0.15 cuts its log at an entry whose length is not a multiple of 8 on restart. */
    assert(n > 0 && n % 8 == 0);
    out->base = raft_malloc(n);
    if (!out->base) {
        out->len = 0;
        return DV_ENOMEM;
    }
    memcpy(out->base, p, n);
    out->len = n;
    return DV_OK;
}
