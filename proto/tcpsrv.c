/* tcpsrv.c - the search port (tcpsrv.h): an accept thread, and a thread per connection that
 * reads a frame, runs it, writes the reply frame. Closing shuts every socket down, which wakes
 * the threads blocked in accept or read. */
#include "tcpsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "msg.h"

/* One connection and its thread. */
struct conn {
    struct tcpsrv *s;
    int fd;
    pthread_t thread;
    bool done; /* its thread ended: joined by the next accept or by close */
    struct conn *next;
};

struct tcpsrv {
    struct tcpsrv_opts o;
    int lfd;
    uint16_t port;
    pthread_t acceptor;
    pthread_mutex_t mu;
    struct conn *conns; /* every connection whose thread is not joined yet */
    uint32_t live;      /* connections not done */
    bool closing;
};

int tcp_read_full(int fd, void *p, size_t n)
{
    for (char *c = p; n > 0;) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

int tcp_write_frame(int fd, const void *p, size_t n)
{
    uint32_t be = htonl((uint32_t)n);
    struct iovec iov[2] = {{&be, 4}, {(void *)p, n}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    size_t left = 4 + n;
    while (left > 0) {
        ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        left -= (size_t)r;
        for (size_t done = (size_t)r; done > 0 && mh.msg_iovlen > 0;) { /* skip what went */
            size_t take = done < mh.msg_iov->iov_len ? done : mh.msg_iov->iov_len;
            mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + take;
            mh.msg_iov->iov_len -= take;
            done -= take;
            if (mh.msg_iov->iov_len == 0) {
                mh.msg_iov++;
                mh.msg_iovlen--;
            }
        }
    }
    return 0;
}

/* Serves one connection until it closes, sends a frame over the limit, or the server closes. */
static void *conn_main(void *arg)
{
    struct conn *k = arg;
    struct tcpsrv *s = k->s;
    struct buf in = BUF_INIT, out = BUF_INIT;
    uint32_t be;
    while (tcp_read_full(k->fd, &be, 4) == 0) {
        uint32_t len = ntohl(be);
        if (len > s->o.max_message) {
            log_warn("search port: frame over max_message; closing the connection",
                     "bytes=%" PRIu32 " max=%" PRIu64, len, s->o.max_message);
            break;
        }
        buf_reset(&in);
        if (buf_reserve(&in, len ? len : 1) != DV_OK || tcp_read_full(k->fd, in.data, len) != 0)
            break;
        buf_reset(&out); /* the handler appends to an empty buffer */
        struct rpcsrv_result res;
        memset(&res, 0, sizeof res);
        uint64_t t0 = clock_mono_ns();
        int rc = s->o.handle(s->o.handle_arg, in.data, len, &out, &res);
        if (res.code != DV_OK && res.code != DV_ESTALE && res.code != DV_ESHUTDOWN)
            log_warn("request failed", "op=%s req_id=%" PRIu64 " code=%s error=%s",
                     msg_type_name(res.type), res.req_id, dv_errname(res.code), res.errmsg);
        if (s->o.done)
            s->o.done(s->o.done_arg, &res, clock_mono_ns() - t0);
        if (rc != DV_OK)
            break; /* no reply: the client sees the connection close */
        if (out.len > UINT32_MAX || tcp_write_frame(k->fd, out.data, out.len) != 0)
            break;
    }
    buf_free(&in);
    buf_free(&out);
    /* The client sees the end now; the descriptor is closed after the join (reap, close), so
     * its number cannot be reused by an accept while this thread still holds it. */
    shutdown(k->fd, SHUT_RDWR);
    pthread_mutex_lock(&s->mu);
    k->done = true;
    s->live--;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Joins and frees the connections whose threads ended (s->mu held). */
static void reap(struct tcpsrv *s)
{
    for (struct conn **pp = &s->conns; *pp;) {
        struct conn *k = *pp;
        if (!k->done) {
            pp = &k->next;
            continue;
        }
        *pp = k->next;
        pthread_join(k->thread, NULL); /* it has returned or is returning */
        close(k->fd);
        free(k);
    }
}

static void *accept_main(void *arg)
{
    struct tcpsrv *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                clock_sleep_ms(10); /* out of descriptors: let connections end */
                continue;
            }
            break; /* shut down by tcpsrv_close */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock(&s->mu);
        reap(s);
        struct conn *k = NULL;
        if (!s->closing && s->live < s->o.max_conns && (k = calloc(1, sizeof *k)) != NULL) {
            *k = (struct conn){.s = s, .fd = fd};
            if (pthread_create(&k->thread, NULL, conn_main, k) != 0) {
                free(k);
                k = NULL;
            } else {
                k->next = s->conns;
                s->conns = k;
                s->live++;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (k == NULL)
            close(fd); /* over max_conns: the client goes another way */
    }
    return NULL;
}

int tcpsrv_open(const struct tcpsrv_opts *o, struct tcpsrv **out, char *errmsg)
{
    char host[ADDR_HOST_MAX], url[ADDR_HOST_MAX + 32];
    unsigned port;
    /* Port 0 (any free one) is not an address addr_split takes: parse it as port 1. */
    size_t ul = strlen(o->listen);
    bool any = ul > 2 && ul < sizeof url && strcmp(o->listen + ul - 2, ":0") == 0;
    snprintf(url, sizeof url, "%s", o->listen);
    if (any)
        url[ul - 1] = '1';
    if (o->handle == NULL || !addr_split(url, host, sizeof host, &port) ||
        strncmp(o->listen, "tcp://", 6) != 0) {
        dv_errmsg_set(errmsg, "search port: `%s` is not tcp://HOST:PORT", o->listen);
        return DV_EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", any ? 0 : port);
    const char *h = host;
    if (addr_is_wildcard(o->listen))
        h = NULL;
    else if (host[0] == '[') { /* "[::1]" */
        host[strlen(host) - 1] = '\0';
        h = host + 1;
    }
    int gai = getaddrinfo(h, ps, &hints, &ai);
    if (gai != 0) {
        dv_errmsg_set(errmsg, "search port: %s: %s", o->listen, gai_strerror(gai));
        return DV_EINVAL;
    }
    struct tcpsrv *s = calloc(1, sizeof *s);
    if (s == NULL) {
        freeaddrinfo(ai);
        return DV_ENOMEM;
    }
    s->o = *o;
    if (s->o.max_conns == 0)
        s->o.max_conns = 256;
    s->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    bool ok = s->lfd >= 0 && setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
              bind(s->lfd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s->lfd, 128) == 0 &&
              getsockname(s->lfd, (struct sockaddr *)&sa, &sl) == 0;
    freeaddrinfo(ai);
    if (!ok) {
        dv_errmsg_set(errmsg, "search port: cannot listen on %s: %s", o->listen, strerror(errno));
        if (s->lfd >= 0)
            close(s->lfd);
        free(s);
        return DV_EOS;
    }
    s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    pthread_mutex_init(&s->mu, NULL);
    if (pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
        dv_errmsg_set(errmsg, "search port: cannot start its thread");
        close(s->lfd);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return DV_EOS;
    }
    *out = s;
    return DV_OK;
}

uint16_t tcpsrv_port(const struct tcpsrv *s)
{
    return s->port;
}

uint32_t tcpsrv_conns(struct tcpsrv *s)
{
    pthread_mutex_lock(&s->mu);
    uint32_t n = s->live;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void tcpsrv_close(struct tcpsrv *s)
{
    if (s == NULL)
        return;
    shutdown(s->lfd, SHUT_RDWR); /* accept returns */
    pthread_join(s->acceptor, NULL);
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    for (struct conn *k = s->conns; k; k = k->next)
        shutdown(k->fd, SHUT_RDWR); /* read returns; a request running finishes first */
    pthread_mutex_unlock(&s->mu);
    for (struct conn *k = s->conns, *next; k; k = next) {
        next = k->next;
        pthread_join(k->thread, NULL);
        close(k->fd);
        free(k);
    }
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
