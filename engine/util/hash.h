/*
 * hash.h — non-cryptographic hashes: xxHash64 (bit-exact with the reference
 * XXH64 of libxxhash for every input and seed) and FNV-1a 64.
 */
#ifndef LSM_HASH_H
#define LSM_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t lsm_xxh64(const void *data, size_t n, uint64_t seed);
uint64_t lsm_fnv1a64(const void *data, size_t n);

#endif
