/* tcpsrv.h - the search port: native requests over plain TCP, each frame a 4-byte big-endian
 * length then one message, a thread per connection that reads a request, runs it with the
 * owner's handler (the same rpcsrv_handle_fn as NNG's server) and writes the reply. One wake-up
 * per request (the thread blocked in read); docs/architecture.md "What is left", and
 * `dvec-bench transport` for what it saves over NNG. */
#ifndef DV_TCPSRV_H
#define DV_TCPSRV_H

#include <stddef.h>
#include <stdint.h>

#include "rpcsrv.h"

struct tcpsrv;

struct tcpsrv_opts {
    const char *listen;   /* tcp://HOST:PORT (port 0: any, see tcpsrv_port) */
    uint32_t max_conns;   /* connections served at once; more are closed at accept (0: 256) */
    uint64_t max_message; /* a larger frame closes its connection */
    rpcsrv_handle_fn handle;
    void *handle_arg;
    rpcsrv_done_fn done; /* may be NULL */
    void *done_arg;
};

/* Listens and starts accepting. DV_EINVAL (a bad address), DV_EOS (socket, threads) with
 * errmsg. */
int tcpsrv_open(const struct tcpsrv_opts *o, struct tcpsrv **out, char *errmsg);

/* The port it listens on. */
uint16_t tcpsrv_port(const struct tcpsrv *s);

/* Connections open now. */
uint32_t tcpsrv_conns(struct tcpsrv *s);

/* Reads exactly n bytes from a blocking socket (EINTR retried); -1 at the end or on an
 * error. */
int tcp_read_full(int fd, void *p, size_t n);

/* Writes one frame to a blocking socket: the 4-byte big-endian length, then p[n], in one
 * sendmsg when the socket takes it all (MSG_NOSIGNAL); -1 on an error. */
int tcp_write_frame(int fd, const void *p, size_t n);

/* Stops accepting, closes every connection (a request being run finishes first, its reply
 * may be lost) and joins the threads. NULL: no-op. */
void tcpsrv_close(struct tcpsrv *s);

#endif
