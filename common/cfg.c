/* cfg.c - placeholder, being written */
