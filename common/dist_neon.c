/* dist_neon.c - placeholder, being written */
