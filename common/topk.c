/* topk.c - placeholder, being written */
