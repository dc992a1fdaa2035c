/* err.c - names and messages of dvec's error codes, and layered error messages. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *dv_errname(int code)
{
    switch (code) {
#define DV_ERR_NAME(c, v, name, msg)                                                               \
    case v:                                                                                        \
        return name;
        DV_ERR_TABLE(DV_ERR_NAME)
#undef DV_ERR_NAME
    default:
        return "unknown";
    }
}

const char *dv_strerror(int code)
{
    switch (code) {
#define DV_ERR_MSG(c, v, name, msg)                                                                \
    case v:                                                                                        \
        return msg;
        DV_ERR_TABLE(DV_ERR_MSG)
#undef DV_ERR_MSG
    default:
        return "unknown error";
    }
}

void dv_errmsg_set(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, DV_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

void dv_errmsg_prefix(char *buf, const char *fmt, ...)
{
    char pre[DV_ERRMSG_SIZE];
    va_list ap;
    size_t plen, olen;

    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    buf[DV_ERRMSG_SIZE - 1] = '\0';
    olen = strlen(buf);
    plen = strlen(pre);
    if (olen > 0 && plen + 2 < DV_ERRMSG_SIZE) {
        /* Shift the old message right to make room for "<prefix>: ", cutting its end. */
        size_t keep = DV_ERRMSG_SIZE - 1 - plen - 2;
        if (olen > keep)
            olen = keep;
        memmove(buf + plen + 2, buf, olen);
        memcpy(buf, pre, plen);
        buf[plen] = ':';
        buf[plen + 1] = ' ';
        buf[plen + 2 + olen] = '\0';
    } else {
        memcpy(buf, pre, plen + 1);
    }
}
