/* craft_tr.h - raft's TCP transport with host names: a peer's name is resolved at every
 * connect, so a coordinator that comes back under the same name with a new IP is reached. */
#ifndef DV_CRAFT_TR_H
#define DV_CRAFT_TR_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

/*
 * raft 0.15's own TCP transport (raft_uv_tcp) takes IPv4 literals only: it parses every
 * address with uv_ip4_addr, so "dvec-coord-1.dvec-coord:7310" can neither be dialed nor
 * listened on. This transport wraps it:
 *
 * - connect: the peer's "HOST:PORT" is resolved with uv_getaddrinfo (IPv4, on libuv's thread
 *   pool: a slow DNS server never blocks the raft loop), then handed to raft_uv_tcp as
 *   "A.B.C.D:PORT". raft retries a failed connection every connect-retry delay and reconnects
 *   a broken one through this call, so every attempt resolves the name again. A name that
 *   does not resolve fails the attempt with RAFT_NOCONNECTION (raft retries).
 * - listen: on `bind` ("A.B.C.D:PORT", e.g. "0.0.0.0:7310"), which need not be the address
 *   raft was initialised with (the advertised one, a name). The port must be the same.
 * - the handshake carries the advertised address, so peers see names, never IPs.
 * - close cancels resolutions in flight (their connects fail with RAFT_CANCELED).
 *
 * Loop thread only, like everything raft does.
 */

/* Initialises `t` on `loop`. `bind` is the listening address (copied); NULL listens on the
 * address raft_init is given, which must then be an IPv4 literal. Returns 0 or a raft error
 * code (RAFT_NOMEM, RAFT_INVALID for a bind address that is not an IPv4 literal with a port)
 * with t->errmsg set. */
int craft_tr_init(struct raft_uv_transport *t, uv_loop_t *loop, const char *bind);

/* Releases what craft_tr_init allocated, after raft closed the transport. */
void craft_tr_close(struct raft_uv_transport *t);

/* How many connects resolved a name (counters for tests and logs). */
unsigned long craft_tr_resolved(const struct raft_uv_transport *t);

#endif
