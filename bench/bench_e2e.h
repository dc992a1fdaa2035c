/* bench_e2e.h - `dvec-bench e2e` (bench_e2e.c). */
#ifndef DV_BENCH_E2E_H
#define DV_BENCH_E2E_H

int bench_e2e_main(int argc, char **argv);

#endif
