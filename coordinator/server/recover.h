/* recover.h - the leader brings replicas that left the in-sync set back (recover.c). */
#ifndef DV_RECOVER_H
#define DV_RECOVER_H

#include "cmap.h"

struct coord;

/* One step of every recovery the map calls for (replicas DEAD or RECOVERY); called by the
 * leader's mover thread each tick. Node calls are made here: never from a raft callback. */
void recover_tick(struct coord *c, const struct cmap *m);

/* Frees the leader's recovery jobs (at shutdown). */
void recover_free(struct coord *c);

#endif
