/* addr.c - listen versus advertise, identities from the host name (addr.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"

bool addr_split(const char *url, char *host, size_t n, unsigned *port)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *end = p + strcspn(p, "/");
    const char *colon = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return false;
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (colon == NULL && rb + 1 != end)
            return false;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
    }
    const char *hend = colon ? colon : end;
    if ((size_t)(hend - p) >= n)
        return false;
    memcpy(host, p, (size_t)(hend - p));
    host[hend - p] = '\0';
    unsigned v = 0;
    if (colon) {
        if (colon + 1 == end)
            return false;
        for (const char *q = colon + 1; q < end; q++) {
            if (*q < '0' || *q > '9' || v > 65535)
                return false;
            v = v * 10 + (unsigned)(*q - '0');
        }
        if (v == 0 || v > 65535)
            return false;
    }
    *port = v;
    return true;
}

bool addr_is_wildcard(const char *url)
{
    char host[ADDR_HOST_MAX];
    unsigned port;
    if (!addr_split(url, host, sizeof host, &port))
        return false;
    return host[0] == '\0' || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 ||
           strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0;
}

bool addr_is_loopback(const char *url)
{
    char host[ADDR_HOST_MAX];
    unsigned port;
    if (!addr_split(url, host, sizeof host, &port))
        return false;
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

int addr_advertise(const char *key, const char *listen, const char *advertise,
                   const char *fallback_host, char *out, size_t n, char *errmsg)
{
    char host[ADDR_HOST_MAX];
    unsigned port;
    if (advertise && advertise[0]) {
        if (!addr_split(advertise, host, sizeof host, &port) || port == 0) {
            dv_errmsg_set(errmsg, "%s '%s' is not an address with a host and a port", key,
                          advertise);
            return DV_EINVAL;
        }
        if (addr_is_wildcard(advertise)) {
            dv_errmsg_set(errmsg,
                          "%s '%s' names every interface: give the name or address others "
                          "reach this process on",
                          key, advertise);
            return DV_EINVAL;
        }
        if ((size_t)snprintf(out, n, "%s", advertise) >= n) {
            dv_errmsg_set(errmsg, "%s '%s' is too long", key, advertise);
            return DV_EINVAL;
        }
        return DV_OK;
    }
    if (!addr_split(listen, host, sizeof host, &port)) {
        dv_errmsg_set(errmsg, "listen address '%s' does not parse", listen);
        return DV_EINVAL;
    }
    if (!addr_is_wildcard(listen)) {
        if ((size_t)snprintf(out, n, "%s", listen) >= n) {
            dv_errmsg_set(errmsg, "listen address '%s' is too long", listen);
            return DV_EINVAL;
        }
        return DV_OK;
    }
    if (fallback_host && fallback_host[0] && port != 0) {
        const char *sep = strstr(listen, "://");
        int sl = sep ? (int)(sep - listen) + 3 : 0;
        if ((size_t)snprintf(out, n, "%.*s%s:%u", sl, listen, fallback_host, port) >= n) {
            dv_errmsg_set(errmsg, "%s for '%s' is too long", key, listen);
            return DV_EINVAL;
        }
        return DV_OK;
    }
    dv_errmsg_set(errmsg,
                  "'%s' listens on every interface, which cannot be told to others: set %s to "
                  "the name or address they reach this process on",
                  listen, key);
    return DV_EINVAL;
}

int addr_hostname(char *out, size_t n, char *errmsg)
{
    if (gethostname(out, n) != 0) {
        dv_errmsg_set(errmsg, "gethostname: %s", strerror(errno));
        return DV_EOS;
    }
    out[n - 1] = '\0';
    if (out[0] == '\0') {
        dv_errmsg_set(errmsg, "the host name is empty");
        return DV_EOS;
    }
    return DV_OK;
}

int addr_ordinal(const char *hostname, uint64_t *ord, char *errmsg)
{
    size_t len = strcspn(hostname, ".");
    size_t i = len;
    while (i > 0 && hostname[i - 1] >= '0' && hostname[i - 1] <= '9')
        i--;
    if (i == len || i < 2 || hostname[i - 1] != '-' || len - i > 9) {
        dv_errmsg_set(errmsg,
                      "host name '%.*s' does not end in -N (a StatefulSet pod's ordinal), so no "
                      "id can be taken from it",
                      (int)len, hostname);
        return DV_EINVAL;
    }
    uint64_t v = 0;
    for (size_t k = i; k < len; k++)
        v = v * 10 + (uint64_t)(hostname[k] - '0');
    *ord = v;
    return DV_OK;
}
