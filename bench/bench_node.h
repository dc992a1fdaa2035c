/* bench_node.h - `dvec-bench node` (bench_node.c). */
#ifndef DV_BENCH_NODE_H
#define DV_BENCH_NODE_H

int bench_node_main(int argc, char **argv);
int bench_cluster_main(int argc, char **argv);

#endif
