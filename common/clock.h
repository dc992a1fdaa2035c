/* clock.h - placeholder */
#ifndef DV_CLOCK_H
#define DV_CLOCK_H
#endif
