/* sq8.c - placeholder */
