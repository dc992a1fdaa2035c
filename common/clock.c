/* clock.c - monotonic and wall-clock time, and a sleep that survives signals. */
#include "clock.h"

#include <errno.h>
#include <time.h>

#include "err.h"

static uint64_t ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * CLOCK_NS_PER_S + (uint64_t)ts->tv_nsec;
}

uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts_ns(&ts);
}

uint64_t clock_mono_ms(void)
{
    return clock_mono_ns() / CLOCK_NS_PER_MS;
}

uint64_t clock_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts_ns(&ts);
}

uint64_t clock_wall_ms(void)
{
    return clock_wall_ns() / CLOCK_NS_PER_MS;
}

int clock_sleep_ns(uint64_t ns)
{
    struct timespec deadline;
    uint64_t now = clock_mono_ns();
    /* Saturate instead of wrapping for absurd durations. */
    uint64_t end = ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
    deadline.tv_sec = (time_t)(end / CLOCK_NS_PER_S);
    deadline.tv_nsec = (long)(end % CLOCK_NS_PER_S);
    for (;;) {
        /* An absolute deadline makes resumption after EINTR exact. */
        int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
        if (rc == 0)
            return DV_OK;
        if (rc != EINTR)
            return DV_EOS;
    }
}

int clock_sleep_ms(uint64_t ms)
{
    uint64_t ns = ms > UINT64_MAX / CLOCK_NS_PER_MS ? UINT64_MAX : ms * CLOCK_NS_PER_MS;
    return clock_sleep_ns(ns);
}

void clock_deadline_ms(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}
