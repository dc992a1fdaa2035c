/* bench_wal.h - `dvec-bench wal`: durable ingest through the write-ahead log. */
#ifndef DV_BENCH_WAL_H
#define DV_BENCH_WAL_H

/* Runs the benchmark with the arguments after "wal" (argv[0] is "wal"); the exit status. */
int bench_wal_main(int argc, char **argv);

#endif
