/* bench_transport.h - `dvec-bench transport`: dvec's NNG path against plain TCP. */
#ifndef DV_BENCH_TRANSPORT_H
#define DV_BENCH_TRANSPORT_H

/* Runs the benchmark with the arguments after "transport" (argv[0] is "transport"); the exit
 * status. */
int bench_transport_main(int argc, char **argv);

#endif
