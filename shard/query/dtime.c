/* dtime.c - parsing and formatting RFC 3339 datetimes (and Qdrant's lenient forms). */
#include "dtime.h"

#include <stdio.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Reads exactly k digits at s[*i]. */
static bool digits(const char *s, size_t n, size_t *i, int k, unsigned *out)
{
    unsigned v = 0;
    for (int j = 0; j < k; j++) {
        if (*i >= n || s[*i] < '0' || s[*i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[(*i)++] - '0');
    }
    *out = v;
    return true;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool dtime_parse(const char *s, size_t n, int64_t *us)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t i = 0;
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (!digits(s, n, &i, 4, &y) || i == n || s[i++] != '-' || !digits(s, n, &i, 2, &mo) ||
        i == n || s[i++] != '-' || !digits(s, n, &i, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)))
        return false;
    if (i < n && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
        i++;
        if (!digits(s, n, &i, 2, &h) || i == n || s[i++] != ':' || !digits(s, n, &i, 2, &mi))
            return false;
        if (i < n && s[i] == ':') {
            i++;
            if (!digits(s, n, &i, 2, &sec))
                return false;
            if (i < n && s[i] == '.') {
                i++;
                int k = 0;
                while (i < n && s[i] >= '0' && s[i] <= '9') {
                    if (k < 6)
                        frac = frac * 10 + (unsigned)(s[i] - '0');
                    k++;
                    i++;
                }
                if (k == 0 || k > 9)
                    return false;
                for (; k < 6; k++)
                    frac *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return false;
    }
    int64_t off = 0; /* seconds east of UTC */
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1;
        unsigned oh, om = 0;
        if (!digits(s, n, &i, 2, &oh))
            return false;
        if (i < n && s[i] == ':')
            i++;
        if (i < n && !digits(s, n, &i, 2, &om))
            return false;
        if (oh > 23 || om > 59)
            return false;
        off = sign * (int64_t)(oh * 3600 + om * 60);
    }
    if (i != n)
        return false;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    *us = t * 1000000 + frac;
    return true;
}

size_t dtime_format(int64_t us, char *buf)
{
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t frac = us - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0)
        y = 0;
    if (y > 9999)
        y = 9999;
    int k = snprintf(buf, 32, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)y, m, d,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    if (frac != 0)
        k += snprintf(buf + k, 32 - (size_t)k, ".%06lld", (long long)frac);
    k += snprintf(buf + k, 32 - (size_t)k, "Z");
    return (size_t)k;
}
