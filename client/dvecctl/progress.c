/* progress.c - dvecctl's progress line and number formats. */
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void fmt_count(char *buf, size_t len, uint64_t n)
{
    char digits[24];
    int nd = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
    size_t o = 0;
    if (len == 0)
        return;
    for (int i = 0; i < nd && o + 2 < len; i++) {
        if (i > 0 && (nd - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

void fmt_duration(char *buf, size_t len, double s)
{
    if (!isfinite(s) || s < 0 || s > 360000000.0) {
        snprintf(buf, len, "?");
        return;
    }
    unsigned long long t = (unsigned long long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%llu:%02llu:%02llu", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%llu:%02llu", t / 60, t % 60);
}

void progress_format(char *buf, size_t len, uint64_t done, uint64_t total, double frac,
                     double elapsed, int bar_width)
{
    char d[64], t[32], rate[32], eta[32], bar[256];
    size_t o = 0;
    if (total && frac < 0)
        frac = (double)done / (double)total;
    if (frac > 1)
        frac = 1;
    fmt_count(d, sizeof d, done);
    double r = elapsed > 0 ? (double)done / elapsed : 0;
    fmt_count(rate, sizeof rate, (uint64_t)(r + 0.5));
    bar[0] = '\0';
    if (frac >= 0 && bar_width > 0) {
        if (bar_width > 200)
            bar_width = 200;
        int fill = (int)(frac * bar_width);
        bar[o++] = '[';
        for (int i = 0; i < bar_width; i++)
            bar[o++] = i < fill ? '#' : '-';
        bar[o++] = ']';
        bar[o++] = ' ';
        bar[o++] = ' ';
        bar[o] = '\0';
    }
    char pct[16] = "";
    if (frac >= 0)
        snprintf(pct, sizeof pct, "%3d%%  ", (int)(frac * 100));
    if (total) {
        fmt_count(t, sizeof t, total);
        snprintf(d + strlen(d), sizeof d - strlen(d), "/%s", t);
    }
    if (frac > 0 && frac < 1 && elapsed > 0.5)
        fmt_duration(eta, sizeof eta, elapsed * (1 - frac) / frac);
    else if (frac >= 1)
        snprintf(eta, sizeof eta, "0:00");
    else
        snprintf(eta, sizeof eta, "?");
    snprintf(buf, len, "%s%s%s points  %s/s  ETA %s", bar, pct, d, rate, eta);
}
