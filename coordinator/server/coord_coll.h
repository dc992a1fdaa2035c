/* coord_coll.h - the collection config between the protocol (msg_coll_cfg) and the map. */
#ifndef DV_COORD_COLL_H
#define DV_COORD_COLL_H

#include "cmap.h"
#include "msg.h"

/*
 * A collection's config is struct msg_coll_cfg on the wire (coll_create, coll_info's reply,
 * replica create and pull) and struct cmap_coll_cfg in the map; these are the only places the
 * coordinator turns one into the other.
 */

/* A coll_create's config as the map's: the coordinator's defaults for what the client left 0
 * (m 16, ef_construction 200, ef_search 64, replication 1; partitions 0 stays 0 for
 * place_fill_create to choose). No validation: the map's command does it. */
void coord_coll_cfg_from_msg(const struct msg_coll_cfg *in, struct cmap_coll_cfg *out);

/* The map's config as coll_info's reply carries it. */
void coord_coll_cfg_to_msg(const struct cmap_coll_cfg *in, struct msg_coll_cfg *out);

/* The replica create (or a pull's create tail) of collection `cl`: its config and its
 * incarnation, the map epoch of its creation. */
struct msg_create_req coord_coll_create_req(const struct cmap_coll *cl);

#endif
