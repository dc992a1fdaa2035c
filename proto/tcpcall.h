/* tcpcall.h - the client of a node's search port (tcpsrv.h): a pool of connections to one
 * server, and calls to several servers at once that the calling thread sends and waits for
 * itself (poll), so that no other thread wakes for them. Each connection serves one call at a
 * time. */
#ifndef DV_TCPCALL_H
#define DV_TCPCALL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "msg.h"

struct tcpcall;

/* Opens nothing yet: connections are made by calls and kept (at most max_idle idle; 0: 8).
 * DV_EINVAL (not tcp://HOST:PORT), DV_ENOMEM. */
int tcpcall_open(const char *url, uint32_t max_idle, struct tcpcall **out, char *errmsg);

/* Closes every idle connection and frees. No call may be running. NULL: no-op. */
void tcpcall_close(struct tcpcall *c);

/* One call of tcpcall_many. The caller sets c, req and timeout_ms; rc, rep and errmsg are the
 * outcome (rep as from tr_call: DV_OK or the reply's error code with its text, a transport
 * error DV_EIO / DV_ETIMEDOUT, DV_EPROTO for a reply that does not answer). */
struct tcpcall_job {
    struct tcpcall *c;
    const struct msg *req;
    uint32_t timeout_ms; /* 0: 10 s */
    int rc;
    struct msg_reply rep;
    char errmsg[DV_ERRMSG_SIZE];
    /* private */
    int fd_;
    struct msg sent_;
    struct buf out_;
    size_t put_, got_;
    uint32_t len_;
    uint8_t hdr_[4];
};

/* Sends every job's request, each on a connection of its own, and waits on this thread for
 * all replies (or each job's timeout). A connection that failed or timed out is closed; the
 * others go back to their pools. */
void tcpcall_many(struct tcpcall_job *jobs, size_t n);

#endif
