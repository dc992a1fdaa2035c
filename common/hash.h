/* hash.h - 64-bit hashing of ids and bytes, and jump consistent hashing onto buckets. */
#ifndef DV_HASH_H
#define DV_HASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * The outputs of these functions are part of dvec's on-disk and on-wire contract: a point's
 * partition is jump_consistent_hash(hash64_u64(id), P). They must never change between
 * versions or platforms; tests/unit/test_hash.c pins them.
 */

/* Well-mixed 64-bit hash of a 64-bit id. A bijection: distinct ids never collide. */
uint64_t hash64_u64(uint64_t x);

/*
 * Hash of `len` bytes at `p` with a seed. Reads bytes as little-endian words, so the result
 * is the same on every platform. Not the same function as hash64_u64() on 8 bytes.
 * Not cryptographic: do not use it where an attacker may choose keys to collide.
 */
uint64_t hash64_bytes(const void *p, size_t len, uint64_t seed);

/*
 * Lamping & Veach's jump consistent hash: maps `key` to a bucket in [0, buckets). Growing
 * from n to n + 1 buckets moves about 1/(n + 1) of the keys, all of them to bucket n.
 * Returns DV_EINVAL (negative) if buckets < 1.
 */
int32_t jump_consistent_hash(uint64_t key, int32_t buckets);

#endif
