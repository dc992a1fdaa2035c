/* bench_rest.h - `dvec-bench rest` (bench_rest.c). */
#ifndef DV_BENCH_REST_H
#define DV_BENCH_REST_H

int bench_rest_main(int argc, char **argv);

#endif
