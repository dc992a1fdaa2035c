/* crc32c.h - placeholder */
#ifndef DV_CRC32C_H
#define DV_CRC32C_H
#endif
