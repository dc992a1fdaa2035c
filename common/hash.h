/* hash.h - placeholder */
#ifndef DV_HASH_H
#define DV_HASH_H
#endif
