/* dist_neon.c - arm64 Advanced SIMD distance kernels. */
#include "dist.h"

/* Not arm64: nothing here, but ISO C wants at least one declaration per file. */
typedef int dist_neon_unused;
