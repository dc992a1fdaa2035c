/* progress.h - the progress line of long dvecctl commands (points load): a bar, percent, rate
 * and ETA redrawn in place on a terminal, and the number formats it uses. */
#ifndef DVECCTL_PROGRESS_H
#define DVECCTL_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Formats one progress line into buf: done points, out of `total` when known (0: not), the
 * fraction of the work done (0..1, or negative when unknown), `elapsed` seconds; a bar of
 * bar_width cells when the fraction is known. Example:
 *   "[#########-----------]  45%  4,500/10,000 points  1,500/s  ETA 0:04"
 */
void progress_format(char *buf, size_t len, uint64_t done, uint64_t total, double frac,
                     double elapsed, int bar_width);

/* "1,234,567" */
void fmt_count(char *buf, size_t len, uint64_t n);
/* Seconds as "0:07", "12:34", "1:02:03"; "?" when negative or not finite. */
void fmt_duration(char *buf, size_t len, double s);

#endif
