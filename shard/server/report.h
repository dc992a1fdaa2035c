/* report.h - the node's registration and heartbeat: a MSG_NODE_REPORT to a coordinator every
 * interval, carrying the replicas it holds with their LSNs. */
#ifndef DV_REPORT_H
#define DV_REPORT_H

#include <stdint.h>

#include "cfg.h"
#include "node.h"

struct tr;

struct report_opts {
    const char *node_id, *url, *http_url, *search_url; /* search_url "": none */
    double weight;
    uint64_t capacity;
    const struct cfg_strlist *coordinators; /* tried in turn until one answers */
    uint32_t interval_ms;
    uint32_t timeout_ms;
    uint64_t flags; /* MSG_REPORT_* */
    struct tr *tr;  /* the transport of the reports (transport.h; the caller keeps it) */
};

struct reporter;

/* Starts the reporting thread (nothing when there are no coordinators). */
int report_start(const struct report_opts *o, struct node *n, struct reporter **out);
void report_stop(struct reporter *r);

#endif
