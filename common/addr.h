/* addr.h - the address a process listens on versus the one it tells others (advertise), and
 * identities taken from the host name (a StatefulSet's pod name). */
#ifndef DV_ADDR_H
#define DV_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADDR_HOST_MAX 256

/* The host of "scheme://HOST:PORT[/path]" or "HOST:PORT" ("[::1]" keeps its brackets) into
 * host (n bytes), and the port (0: none) into *port. False when it does not parse or does
 * not fit. */
bool addr_split(const char *url, char *host, size_t n, unsigned *port);

/* Whether url listens on every interface: its host is empty, "*", "0.0.0.0", "::" or
 * "[::]". Such an address cannot be told to others. */
bool addr_is_wildcard(const char *url);

/* Whether url's host is a loopback address ("localhost", 127.x.x.x, "::1"). */
bool addr_is_loopback(const char *url);

/*
 * The address others should use for a process listening on `listen`: `advertise` when set
 * (it must name a host, not a wildcard), else `listen` when it names a host, else
 * `fallback_host` (may be NULL) with listen's scheme and port, else DV_EINVAL with errmsg
 * naming `key` ("listen binds every interface: set advertise to ..."). Writes out (n bytes).
 */
int addr_advertise(const char *key, const char *listen, const char *advertise,
                   const char *fallback_host, char *out, size_t n, char *errmsg);

/* This machine's host name (gethostname, the pod name in Kubernetes). DV_EOS with errmsg. */
int addr_hostname(char *out, size_t n, char *errmsg);

/* The ordinal a StatefulSet gives a pod: the number after the last '-' of the host name's first
 * label ("dvec-coord-2" and "dvec-coord-2.dvec-coord.ns.svc" give 2). DV_EINVAL with errmsg
 * when there is none. */
int addr_ordinal(const char *hostname, uint64_t *ord, char *errmsg);

#endif
