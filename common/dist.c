/* dist.c - placeholder, being written */
