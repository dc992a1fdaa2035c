/* clock.h - monotonic and wall-clock time in ns/ms, and a sleep helper. */
#ifndef DV_CLOCK_H
#define DV_CLOCK_H

#include <stdint.h>

#define CLOCK_NS_PER_US 1000ULL
#define CLOCK_NS_PER_MS 1000000ULL
#define CLOCK_NS_PER_S  1000000000ULL

/* Nanoseconds on CLOCK_MONOTONIC: never goes back, unrelated to the calendar. */
uint64_t clock_mono_ns(void);

/* Milliseconds on CLOCK_MONOTONIC (clock_mono_ns() / 1e6). */
uint64_t clock_mono_ms(void);

/* Nanoseconds since the Unix epoch on CLOCK_REALTIME: for timestamps, never for timeouts. */
uint64_t clock_wall_ns(void);

/* Milliseconds since the Unix epoch on CLOCK_REALTIME. */
uint64_t clock_wall_ms(void);

/*
 * Sleeps at least `ns` nanoseconds, resuming after signals until the full time has passed
 * (measured on CLOCK_MONOTONIC). Returns DV_OK, or DV_EOS if the OS refuses to sleep.
 */
int clock_sleep_ns(uint64_t ns);

/* clock_sleep_ns() in milliseconds. */
int clock_sleep_ms(uint64_t ms);

/* Sets *ts to CLOCK_MONOTONIC now + ms: the absolute deadline for pthread_cond_timedwait on a
 * condition variable created with pthread_condattr_setclock(CLOCK_MONOTONIC). */
struct timespec;
void clock_deadline_ms(struct timespec *ts, uint64_t ms);

#endif
