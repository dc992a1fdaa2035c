/* handle_order.h - the node's facet and order_by scroll requests on one replica. */
#ifndef DV_HANDLE_ORDER_H
#define DV_HANDLE_ORDER_H

#include "buf.h"
#include "msg.h"
#include "part.h"

/*
 * A facet (MSG_FACET) or scroll_order (MSG_SCROLL_ORDER) request on replica p: compiles and
 * binds its filter, runs part_facet / part_scroll_ordered and encodes `rep` into `out`. On
 * error nothing is appended and errmsg says why (DV_EINVAL naming the key for an index of the
 * wrong kind). Everything allocated is freed before the return; `req` stays the caller's.
 */
int ho_facet(struct part *p, const struct msg *req, struct msg *rep, struct buf *out, char *errmsg);
int ho_scroll_order(struct part *p, const struct msg *req, struct msg *rep, struct buf *out,
                    char *errmsg);

#endif
