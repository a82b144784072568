/*
 * bloom.h — bloom filters over 64-bit key hashes (the caller hashes keys
 * with lsm_xxh64), k probes derived by double hashing from one hash.
 *
 * Filter format: the bit array (a whole number of bytes) followed by one
 * byte holding k.  A filter whose k byte is 0 or > 30, or that is shorter
 * than 2 bytes, is treated as "may contain everything" (so corruption never
 * produces a false negative).
 *
 * Invariants: no false negatives; at b bits/key the false-positive rate is
 * close to (1 - e^(-k/b))^k with k = round(b * ln 2), clamped to [1, 30].
 */
#ifndef LSM_BLOOM_H
#define LSM_BLOOM_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of the filter for n keys at bits_per_key (>= 1). */
size_t lsm_bloom_filter_size(size_t n, int bits_per_key);

/* Writes the filter for hashes[0..n) into out (lsm_bloom_filter_size bytes). */
void lsm_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key,
                     uint8_t *out);

/* 0 only when the hash was certainly not added. */
int lsm_bloom_may_contain(const uint8_t *filter, size_t len, uint64_t hash);

#endif
