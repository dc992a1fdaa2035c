/* bench_filters.h - `dvec-bench filters`: filtered search per payload index kind. */
#ifndef DV_BENCH_FILTERS_H
#define DV_BENCH_FILTERS_H

int bench_filters_main(int argc, char **argv);

#endif
