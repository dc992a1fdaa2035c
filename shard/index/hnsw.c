/* hnsw.c - placeholder */
