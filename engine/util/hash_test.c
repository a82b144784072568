/*
 * hash_test.c — lsm_xxh64 against libxxhash's XXH64, FNV-1a against its
 * published vectors, and a distribution check of lsm_xxh64.
 *
 * Invariants checked
 *   - lsm_xxh64 == XXH64 for every length 0..1024, for seeds 0, 1,
 *     0x9E3779B97F4A7C15 and random ones, on exactly-sized heap buffers
 *     (so ASan sees any over-read) and at every alignment 0..7;
 *   - the same on random long inputs at random offsets;
 *   - FNV-1a 64 gives the published vectors;
 *   - sequential integer keys land uniformly in 1024 buckets (chi-squared
 *     both not too large, which would mean clustering, and not too small,
 *     which would mean the hash merely preserves the keys' own regularity),
 *     and flipping one input bit flips each output bit about half the time.
 *     The inputs are fixed, so these are deterministic; the bounds are wide
 *     (tens of standard deviations) so that only a broken hash fails them.
 */
#include "testutil.h"

#include <xxhash.h>

#include "hash.h"
#include "lsm.h"

#define MAX_LEN 1024

static uint8_t *exact_copy(const uint8_t *src, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	if (p != NULL && n > 0)
		memcpy(p, src, n);
	return p;
}

TEST(xxh64_known_vectors)
{
	/* From the xxHash sanity tests: empty input, seeds 0 and PRIME32_1. */
	CHECK_EQ_U64(lsm_xxh64("", 0, 0), UINT64_C(0xEF46DB3751D8E999));
	CHECK_EQ_U64(lsm_xxh64(NULL, 0, 0), UINT64_C(0xEF46DB3751D8E999));
	CHECK_EQ_U64(lsm_xxh64("", 0, 0x9E3779B1u), UINT64_C(0xAC75FDA2929B17EF));
	CHECK_EQ_U64(lsm_xxh64("abc", 3, 0), XXH64("abc", 3, 0));
}

TEST(xxh64_matches_reference_every_length)
{
	static uint8_t src[MAX_LEN + 8];
	uint64_t seeds[4] = {0, 1, UINT64_C(0x9E3779B97F4A7C15), 0};
	test_rng r;
	size_t len;
	int s;

	test_rng_seed(&r, 11);
	test_rng_fill(&r, src, sizeof src);
	for (len = 0; len <= MAX_LEN; len++) {
		uint8_t *p = exact_copy(src, len);

		CHECK(p != NULL);
		seeds[3] = test_rng_next(&r);
		for (s = 0; s < 4; s++) {
			size_t off = (len + (size_t)s) % 8;

			CHECK_MSG(lsm_xxh64(p, len, seeds[s]) == XXH64(p, len, seeds[s]),
			          "len %zu seed 0x%" PRIx64, len, seeds[s]);
			CHECK_MSG(lsm_xxh64(src + off, len, seeds[s]) ==
			          XXH64(src + off, len, seeds[s]),
			          "len %zu off %zu seed 0x%" PRIx64, len, off, seeds[s]);
		}
		free(p);
	}
}

TEST(xxh64_matches_reference_long_random)
{
	static uint8_t src[1 << 17];
	test_rng r;
	int i;

	test_rng_seed(&r, 12);
	test_rng_fill(&r, src, sizeof src);
	for (i = 0; i < 2000; i++) {
		size_t len = test_rng_uniform(&r, sizeof src / 2);
		size_t off = test_rng_uniform(&r, sizeof src / 2);
		uint64_t seed = test_rng_next(&r);

		CHECK_MSG(lsm_xxh64(src + off, len, seed) == XXH64(src + off, len, seed),
		          "len %zu off %zu", len, off);
	}
}

/* Each of the 4 accumulators and each tail step sees a single changed bit. */
TEST(xxh64_matches_reference_single_bits)
{
	uint8_t buf[71];
	size_t bit;

	for (bit = 0; bit < 8 * sizeof buf; bit++) {
		memset(buf, 0, sizeof buf);
		buf[bit / 8] = (uint8_t)(1u << (bit % 8));
		CHECK_MSG(lsm_xxh64(buf, sizeof buf, 7) == XXH64(buf, sizeof buf, 7),
		          "bit %zu", bit);
	}
	memset(buf, 0xff, sizeof buf);
	CHECK_EQ_U64(lsm_xxh64(buf, sizeof buf, UINT64_MAX), XXH64(buf, sizeof buf, UINT64_MAX));
}

TEST(fnv1a64_vectors)
{
	CHECK_EQ_U64(lsm_fnv1a64("", 0), UINT64_C(0xcbf29ce484222325));
	CHECK_EQ_U64(lsm_fnv1a64(NULL, 0), UINT64_C(0xcbf29ce484222325));
	CHECK_EQ_U64(lsm_fnv1a64("a", 1), UINT64_C(0xaf63dc4c8601ec8c));
	CHECK_EQ_U64(lsm_fnv1a64("foobar", 6), UINT64_C(0x85944171f73967e8));
	/* Bytes >= 0x80 must be XORed in as unsigned values. */
	CHECK_EQ_U64(lsm_fnv1a64("\xff", 1),
	             (UINT64_C(0xcbf29ce484222325) ^ 0xff) * UINT64_C(0x100000001b3));
}

#define NBUCKETS 1024
#define NKEYS    (NBUCKETS * 1024)

/* Chi-squared of NKEYS sequential 8-byte little-endian keys over NBUCKETS
 * buckets chosen by bits [shift, shift + 10) of the hash. */
static double chi_squared(unsigned shift)
{
	static uint32_t count[NBUCKETS];
	const double expect = (double)NKEYS / NBUCKETS;
	double chi = 0;
	uint64_t k;
	uint8_t key[8];
	int i;

	memset(count, 0, sizeof count);
	for (k = 0; k < NKEYS; k++) {
		for (i = 0; i < 8; i++)
			key[i] = (uint8_t)(k >> (8 * i));
		count[(lsm_xxh64(key, 8, 0) >> shift) % NBUCKETS]++;
	}
	for (i = 0; i < NBUCKETS; i++) {
		double d = count[i] - expect;

		chi += d * d / expect;
	}
	return chi;
}

TEST(xxh64_bucket_uniformity)
{
	/* 1023 degrees of freedom: mean 1023, sd ~45.  [600, 1500] is about
	 * ten sd each way.  The identity function scores 0 here. */
	unsigned shifts[] = {0, 27, 54};
	size_t i;

	for (i = 0; i < sizeof shifts / sizeof shifts[0]; i++) {
		double chi = chi_squared(shifts[i]);

		CHECK_MSG(chi > 600 && chi < 1500, "shift %u chi2 %.1f", shifts[i], chi);
	}
}

TEST(xxh64_avalanche)
{
	/* 64 output-bit flip counters over 2000 keys x 64 input bits: each
	 * should flip with probability 1/2, i.e. 64000 +- 253; accept
	 * [0.45, 0.55], over 25 sd. */
	static uint32_t flips[64];
	test_rng r;
	int k, b, o;

	test_rng_seed(&r, 13);
	memset(flips, 0, sizeof flips);
	for (k = 0; k < 2000; k++) {
		uint64_t key = test_rng_next(&r);
		uint64_t h = lsm_xxh64(&key, 8, 0);

		for (b = 0; b < 64; b++) {
			uint64_t key2 = key ^ (UINT64_C(1) << b);
			uint64_t d = h ^ lsm_xxh64(&key2, 8, 0);

			for (o = 0; o < 64; o++)
				flips[o] += (uint32_t)((d >> o) & 1);
		}
	}
	for (o = 0; o < 64; o++)
		CHECK_MSG(flips[o] > 57600 && flips[o] < 70400, "bit %d flipped %u", o, flips[o]);
}
