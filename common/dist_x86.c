/* dist_x86.c - placeholder, being written */
