/* node_meta.c - a replica's node.meta file (epoch, fsync policy, incarnation, primary term,
 * fence) and the primary term check. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "node_int.h"

const char *const node_sync_names_[3] = {"always", "interval", "never"};

/* The incarnation line comes after the fsync line: a build that predates it reads the first
 * three lines and ignores it. The term and fenced lines are written only when the replica has
 * seen a primary term / is fenced, so the file of a replica that has neither is the same as
 * before they existed. */
int node_meta_write_(struct node *n, const char *dir, const struct node_meta *m,
                     enum wal_sync fsync)
{
    char path[PATH_MAX + 16], text[320], term[80] = "";
    snprintf(path, sizeof path, "%s/node.meta", dir);
    if (m->term > 0)
        snprintf(term, sizeof term, "term %" PRIu64 "\nterm_lsn %" PRIu64 "\n", m->term,
                 m->term_lsn);
    int len = snprintf(
        text, sizeof text,
        "dvec-node-meta 1\nepoch %" PRIu64 "\nfsync %s\nincarnation %" PRIu64 "\n%s%s", m->epoch,
        node_sync_names_[fsync], m->incarnation, term, m->fenced ? "fenced 1\n" : "");
    return io_replace_file(n->io, path, text, (size_t)len);
}

/* Reads the line "<key> <decimal>\n" at *at into *v and moves *at past it; false when the
 * text at *at is not that line. */
static bool meta_line(const char **at, const char *key, uint64_t *v)
{
    size_t kl = strlen(key);
    const char *s = *at;
    if (strncmp(s, key, kl) != 0 || s[kl] != ' ' || s[kl + 1] < '0' || s[kl + 1] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s + kl + 1, &end, 10);
    if (errno != 0 || *end != '\n')
        return false;
    *v = x;
    *at = end + 1;
    return true;
}

/* The optional lines after the fsync line, in this order: "incarnation N" (absent in a file
 * written before incarnations existed: 0), "term N" (absent: no primary term seen, 0) and
 * "fenced 0|1" (absent: not fenced). */
static int meta_optional(const char *rest, struct node_meta *m)
{
    uint64_t v;
    m->incarnation = 0;
    m->term = 0;
    m->term_lsn = 0;
    m->fenced = false;
    if (meta_line(&rest, "incarnation", &v))
        m->incarnation = v;
    if (meta_line(&rest, "term", &v)) {
        m->term = v;
        if (!meta_line(&rest, "term_lsn", &v))
            return DV_ECORRUPT;
        m->term_lsn = v;
    }
    if (meta_line(&rest, "fenced", &v)) {
        if (v > 1)
            return DV_ECORRUPT;
        m->fenced = v == 1;
    }
    return *rest == '\0' ? DV_OK : DV_ECORRUPT;
}

int node_meta_read_(struct node *n, const char *dir, struct node_meta *m, enum wal_sync *fsync,
                    char *errmsg)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/node.meta", dir);
    void *buf;
    size_t len;
    int rc = io_read_file(n->io, path, 4096, &buf, &len);
    if (rc != 0) {
        dv_errmsg_set(errmsg, "%s: %s", path, strerror(-rc));
        return DV_EOS;
    }
    char text[4097], sync[16];
    memcpy(text, buf, len);
    text[len] = '\0';
    free(buf);
    unsigned long long e;
    int used = 0;
    if (sscanf(text, "dvec-node-meta 1\nepoch %llu\nfsync %15s\n%n", &e, sync, &used) != 2 ||
        used == 0 || text[used - 1] != '\n') {
        dv_errmsg_set(errmsg, "%s: not a node meta file", path);
        return DV_ECORRUPT;
    }
    if (meta_optional(text + used, m) != DV_OK) {
        dv_errmsg_set(errmsg,
                      "%s: bad lines after the fsync line (want \"incarnation N\", "
                      "\"term N\", \"fenced 0|1\", in this order, each optional)",
                      path);
        return DV_ECORRUPT;
    }
    for (int i = 0; i < 3; i++)
        if (strcmp(sync, node_sync_names_[i]) == 0) {
            m->epoch = e;
            *fsync = (enum wal_sync)i;
            return DV_OK;
        }
    dv_errmsg_set(errmsg, "%s: unknown fsync policy '%s'", path, sync);
    return DV_ECORRUPT;
}

/* ---- the term history file ---------------------------------------------------------------- */

#define TERMS_HEADER "dvec-terms 1\n"

int node_terms_write_(struct node *n, const char *dir, const struct msg_term *h, uint32_t nh)
{
    char path[PATH_MAX + 16], text[sizeof TERMS_HEADER + NODE_MAX_TERMS * 44];
    snprintf(path, sizeof path, "%s/terms", dir);
    size_t len = (size_t)snprintf(text, sizeof text, "%s", TERMS_HEADER);
    for (uint32_t i = 0; i < nh && i < NODE_MAX_TERMS; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%" PRIu64 " %" PRIu64 "\n",
                                h[i].term, h[i].start);
    return io_replace_file(n->io, path, text, len);
}

int node_terms_read_(struct node *n, const char *dir, uint64_t term, struct msg_term *h,
                     uint32_t *nh)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/terms", dir);
    *nh = 0;
    void *buf;
    size_t len;
    int rc = io_read_file(n->io, path, 8192, &buf, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    char *text = malloc(len + 1);
    if (text == NULL) {
        free(buf);
        return -ENOMEM;
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    free(buf);
    rc = DV_ECORRUPT;
    const char *at = text;
    if (strncmp(at, TERMS_HEADER, strlen(TERMS_HEADER)) != 0)
        goto out;
    at += strlen(TERMS_HEADER);
    while (*at != '\0') {
        char *end;
        errno = 0;
        unsigned long long t = strtoull(at, &end, 10);
        if (errno != 0 || end == at || *end != ' ')
            goto out;
        at = end + 1;
        unsigned long long st = strtoull(at, &end, 10);
        if (errno != 0 || end == at || *end != '\n' || st == 0)
            goto out;
        at = end + 1;
        if (*nh > 0 && (t <= h[*nh - 1].term || st < h[*nh - 1].start))
            goto out; /* terms rise, starts never fall */
        if (term == 0 || t < term)
            terms_push(h, nh, t, st);
    }
    rc = 0;
out:
    if (rc != 0)
        *nh = 0;
    free(text);
    return rc;
}

uint32_t node_terms(struct node *n, const struct node_replica *pub, struct msg_term *out)
{
    const struct rep *r = (const struct rep *)pub;
    pthread_mutex_lock(&n->mu);
    uint32_t k = r->n_hist;
    memcpy(out, r->hist, k * sizeof *out);
    if (pub->term > 0)
        out[k++] = (struct msg_term){pub->term, pub->term_lsn + 1};
    pthread_mutex_unlock(&n->mu);
    return k;
}

/* Moves r to `term` if it is newer (persisted first, with the LSN r has applied: where its own
 * history of that term begins). Called with r's apply_mu held, so that no record of an older
 * term is applied after the term changed. */
static int term_locked(struct node *n, struct node_replica *pub, uint64_t term, char *errmsg)
{
    struct rep *r = (struct rep *)pub;
    pthread_mutex_lock(&n->mu);
    uint64_t known = pub->term;
    pthread_mutex_unlock(&n->mu);
    if (term == known)
        return DV_OK;
    if (term < known) {
        dv_errmsg_set(errmsg,
                      "stale primary term: collection %s partition %u: request names term %" PRIu64
                      ", this replica has seen term %" PRIu64 " (a newer primary exists)",
                      pub->coll, pub->partition, term, known);
        return DV_ESTALE;
    }
    struct part_info info;
    part_get_info(pub->part, &info);
    pthread_mutex_lock(&r->meta_mu);
    pthread_mutex_lock(&n->mu);
    struct node_meta m = {pub->epoch, node_incarnation(pub), term, info.applied_lsn, r->fenced};
    struct msg_term hist[NODE_MAX_TERMS];
    uint32_t nh = r->n_hist;
    memcpy(hist, r->hist, sizeof hist);
    if (known > 0)
        terms_push(hist, &nh, known, pub->term_lsn + 1);
    pthread_mutex_unlock(&n->mu);
    /* The history first: a crash between the two writes leaves an entry of the current term
     * in it, which the next read leaves out. */
    int rc = known > 0 ? node_terms_write_(n, r->dir, hist, nh) : 0;
    if (rc == 0)
        rc = node_meta_write_(n, r->dir, &m, pub->fsync);
    if (rc == 0) {
        pthread_mutex_lock(&n->mu);
        pub->term = term;
        pub->term_lsn = info.applied_lsn;
        memcpy(r->hist, hist, sizeof hist);
        r->n_hist = nh;
        pthread_mutex_unlock(&n->mu);
    }
    pthread_mutex_unlock(&r->meta_mu);
    if (rc != 0) {
        dv_errmsg_set(errmsg, "%s: cannot record primary term %" PRIu64 ": %s", r->dir, term,
                      strerror(-rc));
        return io_dv_code(rc); /* DV_EFULL on a full disk: not a failing one */
    }
    log_info("replica primary term raised",
             "collection=%s partition=%u term=%" PRIu64 " lsn=%" PRIu64, pub->coll, pub->partition,
             term, info.applied_lsn);
    return DV_OK;
}

int node_term(struct node *n, struct node_replica *pub, uint64_t term, char *errmsg)
{
    struct rep *r = (struct rep *)pub;
    if (term == 0)
        return DV_OK;
    pthread_mutex_lock(&n->mu);
    uint64_t known = pub->term;
    pthread_mutex_unlock(&n->mu);
    if (term == known)
        return DV_OK;
    pthread_mutex_lock(&r->apply_mu);
    int rc = term_locked(n, pub, term, errmsg);
    pthread_mutex_unlock(&r->apply_mu);
    return rc;
}

int node_replicate(struct node *n, struct node_replica *pub, uint64_t term, uint64_t term_start,
                   const struct msg_wal_rec *recs, uint32_t nrecs, uint64_t *applied, char *errmsg)
{
    struct rep *r = (struct rep *)pub;
    int rc = DV_OK;
    *applied = 0;
    pthread_mutex_lock(&r->apply_mu);
    if (term != 0)
        rc = term_locked(n, pub, term, errmsg);
    pthread_mutex_lock(&n->mu);
    uint64_t held = pub->term_lsn;
    bool same = pub->term == term;
    pthread_mutex_unlock(&n->mu);
    if (rc == DV_OK && term != 0 && same && term_start != 0 && held >= term_start) {
        /* It held records from term_start on before it learned this term: records of an
         * older primary that the new one does not have. */
        dv_errmsg_set(errmsg,
                      "diverged: this replica held records up to LSN %" PRIu64
                      " before it learned term %" PRIu64 ", whose primary starts at LSN %" PRIu64
                      "; it must catch up",
                      held, term, term_start);
        rc = DV_ESTALE;
    }
    if (rc == DV_OK)
        rc = repl_apply(pub->part, recs, nrecs, applied, errmsg);
    pthread_mutex_unlock(&r->apply_mu);
    return rc;
}

uint64_t node_term_start(struct node *n, const struct node_replica *pub)
{
    pthread_mutex_lock(&n->mu);
    uint64_t s = pub->term_lsn + 1;
    pthread_mutex_unlock(&n->mu);
    return s;
}
