/* crc32c.c - placeholder, being written */
