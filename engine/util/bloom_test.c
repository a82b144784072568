/*
 * bloom_test.c — tests of util/bloom.c.
 *
 * Keys are 8-byte little-endian integers hashed with the reference XXH64 of
 * libxxhash (what the engine's lsm_xxh64 reproduces).  Present keys are
 * 0..n-1 and absent keys start at 2^40, so the two sets never meet.
 *
 * The false-positive checks compare against (1 - e^(-k n / m))^k computed
 * with the filter's real m (after the 64-bit minimum and byte rounding), and
 * must land within a factor of 1.5 either way.  The absent-key counts are
 * chosen so the expected number of false positives is in the thousands or,
 * at 20 bits/key, at least a few hundred: the 1.5x band is then many
 * standard deviations wide and the test does not flake.
 */
#include <xxhash.h>

#include "lsm.h"
#include "bloom.h"

#include "testutil.h"

#define ABSENT_BASE	(1ull << 40)

static uint64_t
key_hash(uint64_t key)
{
	uint8_t		buf[8];

	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t) (key >> (8 * i));
	return XXH64(buf, sizeof buf, 0);
}

/* Builds a filter over keys 0..n-1; caller frees. */
static uint8_t *
build_filter(size_t n, int bits_per_key, size_t *len)
{
	uint64_t   *hashes = malloc((n ? n : 1) * sizeof *hashes);
	uint8_t    *filter;

	*len = lsm_bloom_filter_size(n, bits_per_key);
	filter = malloc(*len);
	if (hashes == NULL || filter == NULL)
	{
		free(hashes);
		free(filter);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		hashes[i] = key_hash(i);
	lsm_bloom_build(hashes, n, bits_per_key, filter);
	free(hashes);
	return filter;
}

/*
 * The build line links no libm, so the little floating-point this file needs
 * is done by hand.  my_exp is accurate to ~1e-12 relative for |x| <= 64,
 * far below the statistical noise of the measurements.
 */
static double
my_exp(double x)
{
	double		term = 1.0, sum = 1.0, r;
	int			halvings = 0;

	while (x > 0.5 || x < -0.5)
	{
		x /= 2;
		halvings++;
	}
	for (int i = 1; i < 30; i++)
	{
		term *= x / i;
		sum += term;
	}
	r = sum;
	while (halvings-- > 0)
		r *= r;
	return r;
}

static double
my_powi(double base, int k)
{
	double		r = 1.0;

	while (k-- > 0)
		r *= base;
	return r;
}

static int
expected_k(int bits_per_key)
{
	int			k = (int) (bits_per_key * 0.6931471805599453 + 0.5);

	return k < 1 ? 1 : (k > 30 ? 30 : k);
}

/*
 * Measures the FP rate over `absent` keys and checks it against theory.
 * Returns 0 on success so the calling TEST can CHECK it.
 */
static int
check_fp_rate(size_t n, int bits_per_key, size_t absent)
{
	size_t		len;
	uint8_t    *filter = build_filter(n, bits_per_key, &len);
	double		m, theory, measured;
	int			k;
	size_t		fp = 0;

	if (filter == NULL)
	{
		TEST_FAIL_AT("out of memory");
		return 1;
	}
	for (size_t i = 0; i < n; i++)
	{
		if (!lsm_bloom_may_contain(filter, len, key_hash(i)))
		{
			TEST_FAIL_AT("false negative for key %zu", i);
			free(filter);
			return 1;
		}
	}
	for (size_t i = 0; i < absent; i++)
		fp += (size_t) lsm_bloom_may_contain(filter, len,
											  key_hash(ABSENT_BASE + i));

	m = (double) (len - 1) * 8;
	k = filter[len - 1];
	theory = my_powi(1.0 - my_exp(-k * (double) n / m), k);
	measured = (double) fp / (double) absent;
	printf("    %2d bits/key k=%2d: fp %zu/%zu = %.6f%%, theory %.6f%%, ratio %.3f\n",
		   bits_per_key, k, fp, absent, 100.0 * measured, 100.0 * theory,
		   measured / theory);
	free(filter);
	if (measured > 1.5 * theory || measured < theory / 1.5)
	{
		TEST_FAIL_AT("fp rate %.6f not within 1.5x of theory %.6f",
					 measured, theory);
		return 1;
	}
	return 0;
}

TEST(sizes_and_k)
{
	/* The 64-bit minimum applies to tiny and empty key sets. */
	CHECK_EQ_U64(lsm_bloom_filter_size(0, 10), 8 + 1);
	CHECK_EQ_U64(lsm_bloom_filter_size(1, 10), 8 + 1);
	CHECK_EQ_U64(lsm_bloom_filter_size(6, 10), 8 + 1);
	/* 70 bits round up to 9 bytes. */
	CHECK_EQ_U64(lsm_bloom_filter_size(7, 10), 9 + 1);
	CHECK_EQ_U64(lsm_bloom_filter_size(100, 10), 125 + 1);
	CHECK_EQ_U64(lsm_bloom_filter_size(1000, 5), 625 + 1);
	/* Saturates instead of wrapping. */
	CHECK_EQ_U64(lsm_bloom_filter_size(SIZE_MAX / 2, 10), SIZE_MAX);

	for (int bpk = 1; bpk <= 60; bpk++)
	{
		size_t		len;
		uint8_t    *f = build_filter(10, bpk, &len);

		CHECK(f != NULL);
		CHECK_EQ_INT(len, lsm_bloom_filter_size(10, bpk));
		CHECK_MSG(f[len - 1] == expected_k(bpk), "bpk %d: k %d, want %d",
				  bpk, f[len - 1], expected_k(bpk));
		free(f);
	}
}

TEST(empty_filter_rejects)
{
	size_t		len;
	uint8_t    *f = build_filter(0, 10, &len);
	int			hits = 0;

	CHECK(f != NULL);
	for (uint64_t i = 0; i < 1000; i++)
		hits += lsm_bloom_may_contain(f, len, key_hash(i));
	free(f);
	CHECK_EQ_INT(hits, 0);
}

TEST(no_false_negatives)
{
	static const size_t counts[] = {1, 2, 7, 63, 64, 65, 1000, 100000};
	static const int bpks[] = {1, 2, 5, 10, 16, 20, 40};

	for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
	{
		for (size_t b = 0; b < sizeof bpks / sizeof bpks[0]; b++)
		{
			size_t		len;
			uint8_t    *f = build_filter(counts[c], bpks[b], &len);

			CHECK(f != NULL);
			for (size_t i = 0; i < counts[c]; i++)
				CHECK_MSG(lsm_bloom_may_contain(f, len, key_hash(i)),
						  "n %zu bpk %d key %zu", counts[c], bpks[b], i);
			free(f);
		}
	}
}

/*
 * A query hash whose high half is zero must still probe k distinct bits: a
 * zero step would test one bit k times and answer "yes" about half the time.
 */
TEST(zero_high_half_hashes)
{
	size_t		len;
	uint8_t    *f = build_filter(1000, 10, &len);
	int			fp = 0;

	CHECK(f != NULL);
	for (uint64_t i = 0; i < 10000; i++)
		fp += lsm_bloom_may_contain(f, len,
									key_hash(ABSENT_BASE + i) & 0xffffffffu);
	free(f);
	/* theory ~0.8%; a degenerate step would be ~50% */
	CHECK_MSG(fp < 300, "fp %d of 10000", fp);
}

TEST(deterministic)
{
	size_t		len1, len2;
	uint8_t    *a = build_filter(5000, 10, &len1);
	uint8_t    *b = build_filter(5000, 10, &len2);
	int			same;

	CHECK(a != NULL && b != NULL);
	same = len1 == len2 && memcmp(a, b, len1) == 0;
	free(a);
	free(b);
	CHECK(same);
}

TEST(fp_rate_10_bits)
{
	CHECK(check_fp_rate(100000, 10, 2000000) == 0);
}

TEST(fp_rate_5_bits)
{
	CHECK(check_fp_rate(100000, 5, 1000000) == 0);
}

TEST(fp_rate_20_bits)
{
	/* theory ~6.7e-5: 8M absent keys expect ~540 false positives */
	CHECK(check_fp_rate(100000, 20, 8000000) == 0);
}

TEST(fp_rate_small_filter)
{
	/* 1000 keys: the rate must hold for small filters too */
	CHECK(check_fp_rate(1000, 10, 1000000) == 0);
}

TEST(malformed_filters_may_contain)
{
	size_t		len;
	uint8_t    *f = build_filter(1000, 10, &len);
	uint8_t		one = 7;
	int			rejected = 0;

	CHECK(f != NULL);
	/* Sanity: the intact filter rejects most absent keys. */
	for (uint64_t i = 0; i < 1000; i++)
		rejected += !lsm_bloom_may_contain(f, len, key_hash(ABSENT_BASE + i));
	CHECK(rejected > 900);

	for (uint64_t i = 0; i < 1000; i++)
	{
		uint64_t	h = key_hash(ABSENT_BASE + i);

		CHECK(lsm_bloom_may_contain(NULL, 0, h));
		CHECK(lsm_bloom_may_contain(f, 0, h));
		CHECK(lsm_bloom_may_contain(&one, 1, h));
		f[len - 1] = 0;
		CHECK(lsm_bloom_may_contain(f, len, h));
		f[len - 1] = 31;
		CHECK(lsm_bloom_may_contain(f, len, h));
		f[len - 1] = 255;
		CHECK(lsm_bloom_may_contain(f, len, h));
		f[len - 1] = 7;
	}
	/* k = 30 is legal: answers come from the bits again. */
	f[len - 1] = 30;
	rejected = 0;
	for (uint64_t i = 0; i < 1000; i++)
		rejected += !lsm_bloom_may_contain(f, len, key_hash(ABSENT_BASE + i));
	free(f);
	CHECK(rejected > 0);
}
