/* group.h - the raft group's membership: adding and removing coordinators (the leader), and a
 * coordinator outside the group asking to be added until one does. */
#ifndef DV_GROUP_H
#define DV_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct coord;
struct coord_join;

/*
 * On the ready leader: adds coordinator `id` (raft address "HOST:PORT", a name or an IPv4
 * address, and its client URL) to the raft group, as a spare caught up and then a voter, and
 * records its URLs in the map so that every coordinator can forward to it; or removes it
 * (raft_addr, client_url unused). Adding a voter already there at that address is a no-op
 * (idempotent: a joiner may ask again). The leader cannot remove itself. DV_EINVAL naming the
 * bad argument, DV_ESTALE (not the leader), DV_EBUSY (another change in progress),
 * DV_ETIMEDOUT (30 s), DV_EIO with raft's reason.
 */
int coord_group_change(struct coord *c, bool add, uint64_t id, const char *raft_addr,
                       const char *client_url, char *errmsg);

/*
 * Starts a thread that sends MSG_COORD_ADD {id, raft_addr, client_url} to the coordinators at
 * `urls` (their client URLs; n of them, copied) in turn, one round a second, until one
 * answers OK: the leader added it as a spare, caught it up and made it a voter (adding is
 * idempotent, so asking again after a lost answer or a restart is harmless). A coordinator
 * that started with `join`, or whose id is not in `group` (a StatefulSet scaled up: pod
 * dvec-coord-3 is coordinator 4), runs it. *out is freed by coord_join_stop.
 */
int coord_join_start(struct coord *c, const char *const *urls, size_t n, uint64_t id,
                     const char *raft_addr, const char *client_url, struct coord_join **out);

/* Stops asking (waits for a call in flight, at most its timeout) and frees j (NULL: no-op). */
void coord_join_stop(struct coord_join *j);

#endif
