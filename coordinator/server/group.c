/* group.c - the raft group's membership: adding and removing coordinators (the leader), and a
 * coordinator outside the group asking to be added (group.h). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "craft.h"
#include "err.h"
#include "group.h"
#include "log.h"

#define JOIN_CALL_MS  40000 /* the leader waits up to 30 s for the new one to catch up */
#define JOIN_ROUND_MS 1000

int coord_group_change(struct coord *c, bool add, uint64_t id, const char *raft_addr,
                       const char *client_url, char *errmsg)
{
    const char *what = add ? "coord_add" : "coord_remove";
    if (id == 0 || (add && (raft_addr == NULL || client_url == NULL || raft_addr[0] == '\0' ||
                            client_url[0] == '\0' || strlen(raft_addr) > CMAP_URL_MAX ||
                            strlen(client_url) > CMAP_URL_MAX))) {
        dv_errmsg_set(errmsg,
                      "%s: id must be at least 1, raft address and client URL 1 to %d bytes", what,
                      CMAP_URL_MAX);
        return DV_EINVAL;
    }
    if (add && !cmap_raft_addr_valid(raft_addr)) {
        dv_errmsg_set(errmsg, "%s: raft address '%s' is not HOST:PORT", what, raft_addr);
        return DV_EINVAL;
    }
    if (add && !cmap_url_valid(client_url, false)) {
        dv_errmsg_set(errmsg, "%s: client URL '%s' is not a URL", what, client_url);
        return DV_EINVAL;
    }
    if (!add && id == c->o.id) {
        dv_errmsg_set(errmsg,
                      "coordinator %" PRIu64 " is the leader: remove it through another "
                      "after a new leader is elected",
                      id);
        return DV_EINVAL;
    }
    struct cmap_cmd cmd = {.req = coord_reqid(c)};
    int rc;
    if (add) {
        cmd.type = CMAP_CMD_COORD_SET;
        cmd.u.coord_set.id = id;
        snprintf(cmd.u.coord_set.raft_addr, sizeof cmd.u.coord_set.raft_addr, "%s", raft_addr);
        snprintf(cmd.u.coord_set.client_url, sizeof cmd.u.coord_set.client_url, "%s", client_url);
        cmd.u.coord_set.role = CMAP_COORD_VOTER;
        if ((rc = craft_change(c->raft, true, id, raft_addr, 30000, errmsg)) != DV_OK)
            return rc;
    } else {
        if ((rc = craft_change(c->raft, false, id, NULL, 30000, errmsg)) != DV_OK)
            return rc;
        struct cmap_ref *ref = craft_map(c->raft);
        bool known = cmap_coord_find(&ref->map, id) != NULL;
        craft_map_release(c->raft, ref);
        if (!known)
            return DV_OK; /* a coordinator of the bootstrap list, never recorded */
        cmd.type = CMAP_CMD_COORD_REMOVE;
        cmd.u.coord_remove.id = id;
    }
    struct cmap_result res;
    rc = coord_apply(c, &cmd, &res, errmsg);
    if (rc == DV_OK && res.code != DV_OK) {
        dv_errmsg_set(errmsg, "%s", res.msg);
        rc = res.code;
    }
    if (rc == DV_OK)
        log_info(add ? "coordinator added" : "coordinator removed", "id=%" PRIu64, id);
    return rc;
}

struct coord_join {
    struct coord *c;
    char urls[CRAFT_MAX_PEERS][CRAFT_ADDR_MAX];
    size_t n;
    uint64_t id;
    char raft_addr[CRAFT_ADDR_MAX], client_url[CRAFT_ADDR_MAX];
    pthread_t thread;
    atomic_bool stop;
};

static int ask(struct coord_join *j, const char *url, char *err)
{
    struct tr_peer *p = coord_conn(j->c, url, NULL, err);
    if (p == NULL)
        return DV_EIO;
    struct msg m = {.type = MSG_COORD_ADD};
    m.u.coord_req = (struct msg_coord_req){
        j->id,
        {j->raft_addr, (uint32_t)strlen(j->raft_addr)},
        {j->client_url, (uint32_t)strlen(j->client_url)},
    };
    struct msg_reply rep;
    int rc = tr_call(p, &m, &rep, JOIN_CALL_MS, err);
    msg_reply_free(&rep);
    return rc;
}

static void *join_main(void *arg)
{
    struct coord_join *j = arg;
    char err[DV_ERRMSG_SIZE];
    uint64_t t0 = clock_mono_ms(), rounds = 0;
    while (!atomic_load(&j->stop)) {
        for (size_t i = 0; i < j->n && !atomic_load(&j->stop); i++) {
            int rc = ask(j, j->urls[i], err);
            if (rc == DV_OK) {
                log_info("joined the raft group", "id=%" PRIu64 " via=%s ms=%" PRIu64, j->id,
                         j->urls[i], clock_mono_ms() - t0);
                return NULL;
            }
            /* Every few rounds, so that a misconfigured joiner says why without flooding. */
            if (rounds % 10 == 0)
                log_warn("asking to join the raft group", "id=%" PRIu64 " via=%s error=%s", j->id,
                         j->urls[i], err);
        }
        rounds++;
        for (int t = 0; t < JOIN_ROUND_MS / 50 && !atomic_load(&j->stop); t++)
            clock_sleep_ms(50);
    }
    return NULL;
}

int coord_join_start(struct coord *c, const char *const *urls, size_t n, uint64_t id,
                     const char *raft_addr, const char *client_url, struct coord_join **out)
{
    struct coord_join *j = calloc(1, sizeof *j);
    if (j == NULL)
        return DV_ENOMEM;
    j->c = c;
    for (size_t i = 0; i < n && j->n < CRAFT_MAX_PEERS; i++)
        snprintf(j->urls[j->n++], sizeof j->urls[0], "%s", urls[i]);
    j->id = id;
    snprintf(j->raft_addr, sizeof j->raft_addr, "%s", raft_addr);
    snprintf(j->client_url, sizeof j->client_url, "%s", client_url);
    atomic_init(&j->stop, false);
    if (pthread_create(&j->thread, NULL, join_main, j) != 0) {
        free(j);
        return DV_EOS;
    }
    *out = j;
    return DV_OK;
}

void coord_join_stop(struct coord_join *j)
{
    if (j == NULL)
        return;
    atomic_store(&j->stop, true);
    pthread_join(j->thread, NULL);
    free(j);
}
