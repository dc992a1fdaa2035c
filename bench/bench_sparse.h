/* bench_sparse.h - `dvec-bench sparse`: sparse and named vectors in a replica. */
#ifndef DV_BENCH_SPARSE_H
#define DV_BENCH_SPARSE_H

int bench_sparse_main(int argc, char **argv);

#endif
