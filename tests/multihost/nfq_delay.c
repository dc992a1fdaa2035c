/* nfq_delay - a fixed delay for every packet of an NFQUEUE queue, for kernels without netem.
 *
 * Usage: nfq_delay --queue N --delay-ms D
 *
 * Binds queue N of the network namespace it runs in (nfqueue is per namespace) and accepts
 * each packet D ms (fractions allowed) after it arrived, in arrival order. The packets come
 * from a rule such as (tests/multihost/netsim.py)
 *
 *   iptables -A OUTPUT -o eth0 -j NFQUEUE --queue-num 0 --queue-bypass
 *
 * ("--queue-bypass": packets pass undelayed while no delayer listens). Only metadata is copied
 * (the payload stays in the kernel), the queue holds up to QUEUE_MAXLEN packets and fails open
 * when full (those packets pass undelayed instead of being dropped).
 *
 * Prints one line on stdout once the queue is bound (wait for it before adding the rule), then
 * nothing more there; errors go to stderr.
 *
 * One thread: ppoll on the netlink socket with a timeout until the next due verdict, a ring of
 * (packet id, due time). SIGTERM or SIGINT: every held packet is accepted, the queue unbound,
 * exit 0. Exit 1 on a setup error, 2 on bad usage.
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

/* The kernel holds at most this many packets for us; more fail open. */
#define QUEUE_MAXLEN 10000u
/* Every held packet has one slot: the ring never fills while the kernel's limit holds. */
#define RING_SLOTS (QUEUE_MAXLEN + 1024u)
/* Each packet message is ~100 bytes (metadata only): 8 MiB holds far more than the queue. */
#define RCVBUF_BYTES   (8 << 20)
#define RECV_BUF_BYTES 65536
#define RECV_BURST     64

struct held {
    uint32_t id;
    int64_t due_ns;
};

struct delayer {
    struct nfq_q_handle *qh;
    int64_t delay_ns;
    struct held ring[RING_SLOTS];
    uint32_t head; /* oldest held packet */
    uint32_t count;
    uint64_t n_packets; /* queued to us, over the whole run */
    uint64_t n_early;   /* accepted before their time: the ring was full */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Accepts every packet up to and including `id` (ids grow in queue order, so these are
 * exactly the packets that arrived before it and are still held). */
static int accept_through(struct delayer *d, uint32_t id)
{
    if (nfq_set_verdict_batch(d->qh, id, NF_ACCEPT) < 0) {
        fprintf(stderr, "nfq_delay: verdict for packet %" PRIu32 ": %s\n", id, strerror(errno));
        return -1;
    }
    return 0;
}

/* Releases every held packet whose time has come (all of them if `all`): one batch verdict for
 * the newest due id. */
static int release_due(struct delayer *d, int all)
{
    int64_t now = now_ns();
    uint32_t n = 0, last = 0;

    while (n < d->count) {
        const struct held *h = &d->ring[(d->head + n) % RING_SLOTS];
        if (!all && h->due_ns > now)
            break;
        last = h->id;
        n++;
    }
    if (n == 0)
        return 0;
    d->head = (d->head + n) % RING_SLOTS;
    d->count -= n;
    return accept_through(d, last);
}

/* Called by nfq_handle_packet for each packet message: remembers its id and due time. */
static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *data)
{
    struct delayer *d = data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    uint32_t id;

    (void)qh;
    (void)msg;
    if (ph == NULL)
        return 0;
    id = ntohl(ph->packet_id);
    d->n_packets++;
    if (d->count == RING_SLOTS) {
        /* Cannot happen while the kernel keeps to QUEUE_MAXLEN; never hold a packet forever. */
        d->n_early++;
        return nfq_set_verdict(d->qh, id, NF_ACCEPT, 0, NULL) < 0 ? -1 : 0;
    }
    d->ring[(d->head + d->count) % RING_SLOTS] = (struct held){id, now_ns() + d->delay_ns};
    d->count++;
    return 0;
}

static int parse_args(int argc, char **argv, uint16_t *queue, int64_t *delay_ns)
{
    int have_q = 0, have_d = 0;

    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc) {
            unsigned long q = strtoul(argv[++i], &end, 10);
            if (*argv[i] == '\0' || *end != '\0' || q > 65535)
                return -1;
            *queue = (uint16_t)q;
            have_q = 1;
        } else if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc) {
            double ms = strtod(argv[++i], &end);
            if (*argv[i] == '\0' || *end != '\0' || !(ms >= 0 && ms <= 60000))
                return -1;
            *delay_ns = (int64_t)(ms * 1e6 + 0.5);
            have_d = 1;
        } else {
            return -1;
        }
    }
    return have_q && have_d ? 0 : -1;
}

/* Binds the queue with metadata-only copies, a long queue, fail-open and whole GSO packets. */
static int setup_queue(struct nfq_handle *h, uint16_t queue, struct delayer *d)
{
    uint32_t flags = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO;
    int fd = nfq_fd(h), one = 1, rcvbuf = RCVBUF_BYTES;

    d->qh = nfq_create_queue(h, queue, on_packet, d);
    if (d->qh == NULL) {
        fprintf(stderr, "nfq_delay: bind queue %u: %s (another listener? not root?)\n",
                (unsigned)queue, strerror(errno));
        return -1;
    }
    if (nfq_set_mode(d->qh, NFQNL_COPY_META, 0) < 0) {
        fprintf(stderr, "nfq_delay: copy mode: %s\n", strerror(errno));
        return -1;
    }
    if (nfq_set_queue_maxlen(d->qh, QUEUE_MAXLEN) < 0)
        fprintf(stderr, "nfq_delay: queue maxlen: %s (kept the default)\n", strerror(errno));
    if (nfq_set_queue_flags(d->qh, flags, flags) < 0)
        fprintf(stderr, "nfq_delay: fail-open/GSO flags: %s (a full queue drops)\n",
                strerror(errno));
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
        fprintf(stderr, "nfq_delay: receive buffer: %s\n", strerror(errno));
    /* An overrun is survivable (see the recv loop): do not report it as an error. */
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
    return 0;
}

/* Reads the messages waiting on the socket (without blocking, at most RECV_BURST so that due
 * verdicts are not starved by a flood) and hands each to the library, which calls on_packet. */
static int drain_socket(struct nfq_handle *h, char *buf, size_t len)
{
    for (int i = 0; i < RECV_BURST; i++) {
        ssize_t n = recv(nfq_fd(h), buf, len, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            if (errno == ENOBUFS) {
                fprintf(stderr, "nfq_delay: socket overrun: some packets stay queued\n");
                continue;
            }
            fprintf(stderr, "nfq_delay: recv: %s\n", strerror(errno));
            return -1;
        }
        nfq_handle_packet(h, buf, (int)n);
    }
    return 0;
}

static struct delayer dl;
static char recv_buf[RECV_BUF_BYTES];

int main(int argc, char **argv)
{
    struct nfq_handle *h;
    struct sigaction sa;
    sigset_t block, orig;
    uint16_t queue = 0;
    int rc = 1;

    if (parse_args(argc, argv, &queue, &dl.delay_ns) < 0) {
        fprintf(stderr, "usage: nfq_delay --queue N --delay-ms D\n");
        return 2;
    }
    /* Signals arrive only inside ppoll: no race between the flag check and the wait. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &orig);
    /* Wake up on time: the default timer slack (50 us) is a twentieth of a 1 ms delay. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

    h = nfq_open();
    if (h == NULL) {
        fprintf(stderr, "nfq_delay: nfq_open: %s\n", strerror(errno));
        return 1;
    }
    if (setup_queue(h, queue, &dl) < 0)
        goto err_destroy;
    /* The one line on stdout: whoever starts us may now route packets to the queue. */
    printf("nfq_delay: queue %u bound, delay %.3f ms\n", (unsigned)queue, dl.delay_ns / 1e6);
    fflush(stdout);

    while (!stop_requested) {
        struct pollfd pfd = {.fd = nfq_fd(h), .events = POLLIN};
        struct timespec ts, *tsp = NULL;

        if (dl.count > 0) {
            int64_t wait = dl.ring[dl.head].due_ns - now_ns();
            if (wait < 0)
                wait = 0;
            ts.tv_sec = wait / 1000000000;
            ts.tv_nsec = wait % 1000000000;
            tsp = &ts;
        }
        if (ppoll(&pfd, 1, tsp, &orig) < 0 && errno != EINTR) {
            fprintf(stderr, "nfq_delay: ppoll: %s\n", strerror(errno));
            goto err_release;
        }
        if ((pfd.revents & POLLIN) && drain_socket(h, recv_buf, sizeof(recv_buf)) < 0)
            goto err_release;
        if (release_due(&dl, 0) < 0)
            goto err_release;
    }
    rc = 0;
err_release:
    /* Unbinding drops what the kernel still holds: accept it first. */
    release_due(&dl, 1);
    if (dl.n_early > 0)
        fprintf(stderr, "nfq_delay: %" PRIu64 " of %" PRIu64 " packets passed early\n", dl.n_early,
                dl.n_packets);
err_destroy:
    if (dl.qh != NULL)
        nfq_destroy_queue(dl.qh);
    nfq_close(h);
    return rc;
}
