/* bench_part.h - `dvec-bench storage` (bench_part.c). */
#ifndef DV_BENCH_PART_H
#define DV_BENCH_PART_H

int bench_part_main(int argc, char **argv);

#endif
