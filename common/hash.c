/* hash.c - placeholder, being written */
