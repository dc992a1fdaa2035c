/* tr_fake.h - an in-memory transport for tests: parties and servers of one process on a fake
 * network that loses, delays, refuses and partitions messages, deterministically from a seed. */
#ifndef DV_TR_FAKE_H
#define DV_TR_FAKE_H

#include <stdint.h>

#include "rpcsrv.h"
#include "transport.h"

/*
 * How to drive it (a coordinator in-process with two fake nodes):
 *
 *     struct tr_fake_net *net;
 *     tr_fake_net_new(42, &net);                       // the seed of every random decision
 *     tr_fake_serve(net, "node-1", "fake://n1", node_handle, &n1);
 *     tr_fake_serve(net, "node-2", "fake://n2", node_handle, &n2);
 *     struct tr *coord_tr = tr_fake_new(net, "coord-1");  // give it to the coordinator
 *     ...
 *     struct tr_fake_rule r = {.drop_rep_every = 3};   // every 3rd reply coord-1 -> n2 is lost
 *     tr_fake_set_rule(net, "coord-1", "fake://n2", &r);
 *     tr_fake_partition(net, (const char *[]){"node-2"}, 1);  // node-2 is cut off
 *     tr_fake_heal(net);
 *     struct tr_fake_counts k;
 *     tr_fake_counts(net, "coord-1", "fake://n2", &k);
 *     ...
 *     tr_free(coord_tr);                               // after closing its peers
 *     tr_fake_unserve(net, "fake://n1"); tr_fake_unserve(net, "fake://n2");
 *     tr_fake_net_free(net);
 *
 * Names and links. A party (tr_fake_new) calls from a name; a server is reached by URL and
 * belongs to a name (the same name as the party's transport when one process both serves and
 * calls). A link is (caller's name, server URL): rules, counters and the random sequence are
 * per link. URLs are any strings (the fake never dials).
 *
 * A call runs the server's handler on the caller's thread, through the real encoder and
 * decoder (tr_call encodes, the handler decodes and encodes its reply, tr_call decodes it into
 * the caller's struct msg_reply, which owns its memory as after a real call). Handlers run
 * concurrently when callers do: they must be thread-safe, like rpcsrv's.
 *
 * What a call meets, decided when it is sent, in this order:
 *  - no server at the URL, or a REFUSED one (a dead process): DV_EIO "not connected" at once
 *    when the peer has connect_wait_ms (the daemons' default), else it waits out its timeout
 *    (DV_ETIMEDOUT), as a call through NNG does; counted `refused`;
 *  - a partition between caller and server, or a SILENT server (a hung process): the request
 *    is lost, the caller gets DV_ETIMEDOUT after its timeout; counted `dropped`;
 *  - the link's rule (tr_fake_set_rule): the request may be dropped (handler not run) or the
 *    reply dropped (handler ran: its side effects happened), both ending in DV_ETIMEDOUT after
 *    the caller's timeout; or the request delayed (delay_ms + a seeded jitter in
 *    [0, jitter_ms]) before the handler runs, which reorders concurrent calls. A delay at or
 *    over the caller's timeout loses the request (DV_ETIMEDOUT, handler not run);
 *  - the handler returning an error (no reply, as rpcsrv does), a reply over the peer's
 *    recv_max, or a reply ready after the caller's deadline: DV_ETIMEDOUT, counted `dropped`.
 * Waits are real (the caller sleeps until its deadline): tests use timeouts of tens of ms.
 *
 * Determinism: each link has its own PRNG seeded from (seed, caller name, URL), advanced by a
 * fixed number of draws per message under the net's lock. The k-th message of a link meets the
 * same fate whatever other links do: interleaving across threads changes nothing (only calls
 * racing on one link, or a drop_*_next budget shared by a wildcard rule, depend on timing).
 *
 * Threading: every function may be called from any thread. tr_fake_unserve waits for the
 * handler calls in progress at that URL to return.
 */

struct tr_fake_net;

/* A network; `seed` drives every random decision. DV_ENOMEM. */
int tr_fake_net_new(uint64_t seed, struct tr_fake_net **out);

/* Frees the network: every party's transport freed, every server unserved, no call running. */
void tr_fake_net_free(struct tr_fake_net *net);

/* A party's transport on `net`: its calls come from `name` (copied, at most 63 bytes). NULL
 * when out of memory. Free it with tr_free after closing its peers. */
struct tr *tr_fake_new(struct tr_fake_net *net, const char *name);

/*
 * Serves `url` (at most 255 bytes) as the party `name`: calls to it run fn(arg, ...), which
 * appends an encoded reply to its buffer as an rpcsrv handler does (the `struct
 * rpcsrv_result` it fills is discarded). The server starts UP. DV_EEXIST when the URL is
 * served already, DV_ENOMEM.
 */
int tr_fake_serve(struct tr_fake_net *net, const char *name, const char *url, rpcsrv_handle_fn fn,
                  void *arg);

/* Stops serving `url` (calls to it are then refused); waits for handler calls in progress. */
void tr_fake_unserve(struct tr_fake_net *net, const char *url);

enum tr_fake_state {
    TR_FAKE_UP,      /* answers */
    TR_FAKE_SILENT,  /* connected, never answers: callers time out, handler not run */
    TR_FAKE_REFUSED, /* like a dead process: calls fail as "not connected" */
};

/* Sets the state of the server at `url`. DV_ENOTFOUND when nothing serves it. */
int tr_fake_set_state(struct tr_fake_net *net, const char *url, enum tr_fake_state st);

/*
 * Faults of a link. A zeroed rule changes nothing. Message k of a link (k = 1, 2, ... counting
 * every call on it) is dropped when k is a multiple of an `every`; probabilities and jitter
 * come from the link's PRNG; the `next` budgets are spent by the calls that meet the rule.
 */
struct tr_fake_rule {
    uint32_t drop_req_next;  /* the next n requests are lost */
    uint32_t drop_rep_next;  /* the next n replies are lost (handlers ran) */
    uint32_t drop_req_every; /* every n-th request of the link is lost (1: all) */
    uint32_t drop_rep_every; /* every n-th reply of the link is lost (1: all) */
    double drop_req_p;       /* each request is lost with this probability */
    double drop_rep_p;       /* each reply is lost with this probability */
    uint32_t delay_ms;       /* each request waits this long before it is delivered */
    uint32_t jitter_ms;      /* ... plus a seeded random [0, jitter_ms] */
};

/*
 * Sets the rule of calls from `from` to `to_url` (either NULL: any); rule NULL removes it.
 * A call meets one rule, the most specific: (from, to), then (from, any), (any, to),
 * (any, any). Setting a rule resets its `next` budgets to the given ones. DV_ENOMEM.
 */
int tr_fake_set_rule(struct tr_fake_net *net, const char *from, const char *to_url,
                     const struct tr_fake_rule *rule);

/* Removes every rule. */
void tr_fake_clear_rules(struct tr_fake_net *net);

/*
 * Cuts the n `names` off from the rest: they still reach each other, but calls between one
 * of them and any other name (including earlier partitions' sides) are lost. Each call makes a
 * new side. DV_ENOMEM.
 */
int tr_fake_partition(struct tr_fake_net *net, const char *const *names, size_t n);

/* Removes every partition. */
void tr_fake_heal(struct tr_fake_net *net);

/* What happened on a link (a call is `sent` and then exactly one of answered, dropped or
 * refused; `delivered` counts handler runs, including those whose reply was lost). */
struct tr_fake_counts {
    uint64_t sent, delivered, answered, dropped, refused;
};

/* The counts of link (from, to_url), summed over every link matching a NULL. */
void tr_fake_counts(struct tr_fake_net *net, const char *from, const char *to_url,
                    struct tr_fake_counts *out);

#endif
