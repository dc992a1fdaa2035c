/* tcpcall.c - calls to nodes' search ports (tcpcall.h): non-blocking sockets driven by poll on
 * the calling thread; a pool of idle connections per server. */
#include "tcpcall.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "addr.h"
#include "clock.h"
#include "proto_limits.h"
#include "transport.h"

#define TCPCALL_TIMEOUT_MS 10000
#define TCPCALL_MAX_REPLY  ((uint64_t)2 * PROTO_MAX_MSG) /* a node's own limit on a frame */

struct tcpcall {
    char url[256];
    struct sockaddr_storage sa;
    socklen_t salen;
    atomic_uint_least64_t next_id;
    pthread_mutex_t mu;
    int *idle; /* connected sockets, non-blocking */
    uint32_t n_idle, max_idle;
};

int tcpcall_open(const char *url, uint32_t max_idle, struct tcpcall **out, char *errmsg)
{
    char host[ADDR_HOST_MAX], ps[8];
    unsigned port;
    if (strncmp(url, "tcp://", 6) != 0 || !addr_split(url, host, sizeof host, &port) ||
        strlen(url) >= sizeof((struct tcpcall *)0)->url) {
        dv_errmsg_set(errmsg, "search port: `%s` is not tcp://HOST:PORT", url);
        return DV_EINVAL;
    }
    const char *h = host;
    if (host[0] == '[') {
        host[strlen(host) - 1] = '\0';
        h = host + 1;
    }
    snprintf(ps, sizeof ps, "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(h, ps, &hints, &ai);
    if (gai != 0) {
        dv_errmsg_set(errmsg, "search port %s: %s", url, gai_strerror(gai));
        return DV_EINVAL;
    }
    struct tcpcall *c = calloc(1, sizeof *c);
    if (max_idle == 0)
        max_idle = 8;
    if (c == NULL || (c->idle = calloc(max_idle, sizeof *c->idle)) == NULL) {
        free(c);
        freeaddrinfo(ai);
        return DV_ENOMEM;
    }
    snprintf(c->url, sizeof c->url, "%s", url);
    memcpy(&c->sa, ai->ai_addr, ai->ai_addrlen);
    c->salen = ai->ai_addrlen;
    freeaddrinfo(ai);
    c->max_idle = max_idle;
    atomic_init(&c->next_id, 1);
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return DV_OK;
}

void tcpcall_close(struct tcpcall *c)
{
    if (c == NULL)
        return;
    for (uint32_t i = 0; i < c->n_idle; i++)
        close(c->idle[i]);
    pthread_mutex_destroy(&c->mu);
    free(c->idle);
    free(c);
}

/* A connection from the pool, or a new one (connected within timeout_ms); -1 with errmsg. */
static int conn_get(struct tcpcall *c, uint32_t timeout_ms, char *errmsg)
{
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int fd = c->n_idle ? c->idle[--c->n_idle] : -1;
        pthread_mutex_unlock(&c->mu);
        if (fd < 0)
            break;
        /* An idle connection the server closed (it restarted, or dropped idle ones) has its
         * end of file waiting: not used. Nothing else can be waiting on an idle one. */
        char b;
        ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return fd;
        close(fd);
    }
    int fd = socket(c->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        dv_errmsg_set(errmsg, "search port %s: socket: %s", c->url, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* one frame, one segment */
    if (connect(fd, (struct sockaddr *)&c->sa, c->salen) != 0) {
        int e = errno;
        struct pollfd p = {fd, POLLOUT, 0};
        socklen_t el = sizeof e;
        if (e != EINPROGRESS || poll(&p, 1, (int)timeout_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) {
            dv_errmsg_set(errmsg, "search port %s: cannot connect: %s", c->url,
                          e == EINPROGRESS ? "timed out" : strerror(e));
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Back to the pool (closed when the pool is full). */
static void conn_put(struct tcpcall *c, int fd)
{
    pthread_mutex_lock(&c->mu);
    bool kept = c->n_idle < c->max_idle;
    if (kept)
        c->idle[c->n_idle++] = fd;
    pthread_mutex_unlock(&c->mu);
    if (!kept)
        close(fd);
}

/* Ends a job: its connection back to the pool when it can serve again, else closed. */
static void job_end(struct tcpcall_job *j, int rc, bool reusable)
{
    j->rc = rc;
    if (j->fd_ >= 0) {
        if (reusable)
            conn_put(j->c, j->fd_);
        else
            close(j->fd_);
        j->fd_ = -1;
    }
    buf_free(&j->out_);
}

/* Sends what is left of the frame; false when the connection failed. */
static bool job_send(struct tcpcall_job *j)
{
    uint32_t be = htonl((uint32_t)j->out_.len);
    size_t total = 4 + j->out_.len;
    while (j->put_ < total) {
        struct iovec iov[2];
        int n = 0;
        if (j->put_ < 4)
            iov[n++] = (struct iovec){(char *)&be + j->put_, 4 - j->put_};
        size_t off = j->put_ < 4 ? 0 : j->put_ - 4;
        iov[n++] = (struct iovec){j->out_.data + off, j->out_.len - off};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t r = sendmsg(j->fd_, &mh, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true; /* poll says when to go on */
        if (r <= 0)
            return false;
        j->put_ += (size_t)r;
    }
    return true;
}

/* Reads what has come of the reply; 1 when it is whole, 0 for more, -1 on failure. */
static int job_recv(struct tcpcall_job *j)
{
    for (;;) {
        void *p;
        size_t want;
        if (j->got_ < 4) {
            p = j->hdr_ + j->got_;
            want = 4 - j->got_;
        } else {
            if (j->rep.mem_ == NULL) { /* the header is in: room for the body */
                uint32_t be;
                memcpy(&be, j->hdr_, 4);
                j->len_ = ntohl(be);
                if (j->len_ > TCPCALL_MAX_REPLY ||
                    (j->rep.mem_ = malloc(j->len_ ? j->len_ : 1)) == NULL)
                    return -1;
            }
            if (j->got_ == 4 + (size_t)j->len_)
                return 1;
            p = (char *)j->rep.mem_ + (j->got_ - 4);
            want = 4 + (size_t)j->len_ - j->got_;
        }
        ssize_t r = read(j->fd_, p, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r <= 0)
            return -1;
        j->got_ += (size_t)r;
    }
}

void tcpcall_many(struct tcpcall_job *jobs, size_t n)
{
    uint64_t now = clock_mono_ms();
    uint64_t *deadline = calloc(n ? n : 1, sizeof *deadline);
    struct pollfd *pf = calloc(n ? n : 1, sizeof *pf);
    size_t *which = calloc(n ? n : 1, sizeof *which);
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
        struct tcpcall_job *j = &jobs[i];
        uint32_t tmo = j->timeout_ms ? j->timeout_ms : TCPCALL_TIMEOUT_MS;
        memset(&j->rep, 0, sizeof j->rep);
        j->errmsg[0] = '\0';
        j->fd_ = -1;
        j->put_ = j->got_ = 0;
        j->len_ = 0;
        buf_init(&j->out_);
        if (deadline == NULL || pf == NULL || which == NULL) {
            dv_errmsg_set(j->errmsg, "out of memory");
            job_end(j, DV_ENOMEM, false);
            continue;
        }
        deadline[i] = now + tmo;
        int rc = tr_req_encode(j->req, &j->c->next_id, &j->sent_, &j->out_, j->errmsg);
        if (rc != DV_OK) {
            job_end(j, rc, false);
            continue;
        }
        if ((j->fd_ = conn_get(j->c, tmo, j->errmsg)) < 0) {
            job_end(j, DV_EIO, false);
            continue;
        }
        if (!job_send(j)) {
            dv_errmsg_set(j->errmsg, "search port %s: %s", j->c->url, "connection lost");
            job_end(j, DV_EIO, false);
            continue;
        }
        j->rc = 1; /* in flight */
        left++;
    }
    while (left > 0) {
        size_t np = 0;
        uint64_t first = UINT64_MAX;
        now = clock_mono_ms();
        for (size_t i = 0; i < n; i++) {
            struct tcpcall_job *j = &jobs[i];
            if (j->rc != 1)
                continue;
            if (now >= deadline[i]) {
                dv_errmsg_set(j->errmsg, "waiting for: no reply from %s within %u ms", j->c->url,
                              j->timeout_ms ? j->timeout_ms : TCPCALL_TIMEOUT_MS);
                msg_reply_free(&j->rep);
                job_end(j, DV_ETIMEDOUT, false);
                left--;
                continue;
            }
            if (deadline[i] < first)
                first = deadline[i];
            short ev = POLLIN;
            if (j->put_ < 4 + j->out_.len)
                ev |= POLLOUT;
            pf[np] = (struct pollfd){j->fd_, ev, 0};
            which[np++] = i;
        }
        if (np == 0)
            break;
        int r = poll(pf, (nfds_t)np, (int)(first - now));
        if (r < 0 && errno != EINTR)
            break;
        for (size_t k = 0; r > 0 && k < np; k++) {
            struct tcpcall_job *j = &jobs[which[k]];
            if (pf[k].revents == 0)
                continue;
            bool ok = true;
            if (pf[k].revents & POLLOUT)
                ok = job_send(j);
            int got = ok && (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) ? job_recv(j) : 0;
            if (!ok || got < 0) {
                dv_errmsg_set(j->errmsg, "search port %s: connection lost", j->c->url);
                msg_reply_free(&j->rep);
                job_end(j, DV_EIO, false);
                left--;
            } else if (got == 1) {
                int rc = tr_reply_take(&j->rep, j->len_, &j->sent_, j->c->url, j->errmsg);
                job_end(j, rc, rc != DV_EPROTO);
                left--;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (jobs[i].rc == 1) { /* poll failed */
            dv_errmsg_set(jobs[i].errmsg, "search port %s: poll: %s", jobs[i].c->url,
                          strerror(errno));
            msg_reply_free(&jobs[i].rep);
            job_end(&jobs[i], DV_EIO, false);
        }
    free(deadline);
    free(pf);
    free(which);
}
