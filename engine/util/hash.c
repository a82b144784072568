/*
 * hash.c — xxHash64 and FNV-1a 64.
 *
 * lsm_xxh64 is the XXH64 algorithm of Yann Collet's xxHash specification
 * (doc/xxhash_spec.md), written from that description.  Its output is a
 * format: bloom filters store probes derived from it, so it must stay
 * bit-exact with the reference XXH64 for every length and seed, on every
 * host.  The tests compare it with libxxhash.
 *
 * Invariants
 *   - Input words are read with read64le()/read32le(): memcpy into a local
 *     (any alignment, no strict-aliasing hazard) and an explicit byte swap
 *     on big-endian hosts, so the value is always the little-endian reading
 *     the specification demands.
 *   - Exactly the bytes [data, data + n) are read; data may be NULL only
 *     when n == 0.  Lengths are tracked as counts, never as an end pointer,
 *     so a NULL data never takes part in pointer arithmetic.
 *   - All arithmetic is on uint64_t, where overflow wraps by definition.
 *
 * Speed comes from the four independent accumulators of the 32-byte stripe:
 * the four multiply chains overlap in the pipeline, so the loop runs at
 * several bytes per cycle without any SIMD.
 *
 * lsm_fnv1a64 is the 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3): a byte at a time, slow but trivially portable, for small
 * keys where a well-known fixed function matters more than speed.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hash.h"

#define P64_1 UINT64_C(0x9E3779B185EBCA87)
#define P64_2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define P64_3 UINT64_C(0x165667B19E3779F9)
#define P64_4 UINT64_C(0x85EBCA77C2B2AE63)
#define P64_5 UINT64_C(0x27D4EB2F165667C5)

#define FNV64_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME  UINT64_C(0x100000001b3)

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
	__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HASH_LITTLE_ENDIAN 1
#else
#define HASH_LITTLE_ENDIAN 0
#endif

static inline uint64_t read64le(const uint8_t *p)
{
#if HASH_LITTLE_ENDIAN
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return v;
#else
	/* Unknown or big-endian host: assemble the little-endian value. */
	return (uint64_t)p[0] | ((uint64_t)p[1] << 8) |
	       ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
	       ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
	       ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
#endif
}

static inline uint32_t read32le(const uint8_t *p)
{
#if HASH_LITTLE_ENDIAN
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return v;
#else
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
	       ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
#endif
}

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	/* Callers pass 1..63 only, so neither shift is by 64. */
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t xxh64_round(uint64_t acc, uint64_t input)
{
	acc += input * P64_2;
	acc = rotl64(acc, 31);
	return acc * P64_1;
}

static inline uint64_t xxh64_merge(uint64_t h, uint64_t acc)
{
	h ^= xxh64_round(0, acc);
	return h * P64_1 + P64_4;
}

static inline uint64_t xxh64_avalanche(uint64_t h)
{
	h ^= h >> 33;
	h *= P64_2;
	h ^= h >> 29;
	h *= P64_3;
	h ^= h >> 32;
	return h;
}

/* The bulk of the input, whole 32-byte stripes; *n is reduced to < 32. */
static uint64_t xxh64_stripes(const uint8_t **pp, size_t *n, uint64_t seed)
{
	const uint8_t *p = *pp;
	size_t left = *n;
	uint64_t v1 = seed + P64_1 + P64_2;
	uint64_t v2 = seed + P64_2;
	uint64_t v3 = seed;
	uint64_t v4 = seed - P64_1;
	uint64_t h;

	do {
		v1 = xxh64_round(v1, read64le(p));
		v2 = xxh64_round(v2, read64le(p + 8));
		v3 = xxh64_round(v3, read64le(p + 16));
		v4 = xxh64_round(v4, read64le(p + 24));
		p += 32;
		left -= 32;
	} while (left >= 32);

	h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
	h = xxh64_merge(h, v1);
	h = xxh64_merge(h, v2);
	h = xxh64_merge(h, v3);
	h = xxh64_merge(h, v4);
	*pp = p;
	*n = left;
	return h;
}

/* The last n < 32 bytes: 8-byte words, then at most one 4-byte word, then
 * single bytes, as the specification orders them. */
static uint64_t xxh64_tail(uint64_t h, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		h ^= xxh64_round(0, read64le(p));
		h = rotl64(h, 27) * P64_1 + P64_4;
		p += 8;
		n -= 8;
	}
	if (n >= 4) {
		h ^= (uint64_t)read32le(p) * P64_1;
		h = rotl64(h, 23) * P64_2 + P64_3;
		p += 4;
		n -= 4;
	}
	while (n > 0) {
		h ^= (uint64_t)*p * P64_5;
		h = rotl64(h, 11) * P64_1;
		p++;
		n--;
	}
	return h;
}

uint64_t lsm_xxh64(const void *data, size_t n, uint64_t seed)
{
	const uint8_t *p = data;
	size_t left = n;
	uint64_t h;

	if (left >= 32)
		h = xxh64_stripes(&p, &left, seed);
	else
		h = seed + P64_5;
	h += (uint64_t)n;
	return xxh64_avalanche(xxh64_tail(h, p, left));
}

uint64_t lsm_fnv1a64(const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t h = FNV64_OFFSET;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= FNV64_PRIME;
	}
	return h;
}
