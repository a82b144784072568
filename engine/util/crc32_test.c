/*
 * crc32_test.c — lsm_crc32_extend against zlib's crc32(), the reference the
 * header promises to match.
 *
 * Invariants checked
 *   - the standard check value crc32("123456789") = 0xCBF43926;
 *   - equality with zlib for every length 0..4096, at every alignment 0..15
 *     in turn, from both a zero and a random previous crc (this walks every
 *     path of the slice-by-8 loop and every table entry);
 *   - extend is composable at every split point and over many pieces;
 *   - mask/unmask are inverse and mask is not the identity.
 *
 * Every buffer handed to the crc is malloc'd at its exact length, so under
 * AddressSanitizer a read one byte too far fails the run.
 */
#include "testutil.h"

#include <zlib.h>

#include "crc32.h"
#include "lsm.h"

#define MAX_LEN 4096

static uint32_t zlib_crc(uint32_t crc, const uint8_t *p, size_t n)
{
	return (uint32_t)crc32((uLong)crc, p, (uInt)n);
}

/* A heap copy of exactly n bytes (at least 1 byte allocated for n == 0). */
static uint8_t *exact_copy(const uint8_t *src, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	if (p != NULL && n > 0)
		memcpy(p, src, n);
	return p;
}

TEST(check_value)
{
	CHECK_EQ_U64(lsm_crc32("123456789", 9), 0xCBF43926u);
	CHECK_EQ_U64(lsm_crc32("", 0), 0);
	CHECK_EQ_U64(lsm_crc32(NULL, 0), 0);
	CHECK_EQ_U64(lsm_crc32_extend(0x12345678u, NULL, 0), 0x12345678u);
	/* 32 zero bytes and "a": values published with the IEEE polynomial. */
	{
		uint8_t z[32] = {0};

		CHECK_EQ_U64(lsm_crc32(z, sizeof z), 0x190A55ADu);
		CHECK_EQ_U64(lsm_crc32("a", 1), 0xE8B7BE43u);
	}
}

TEST(matches_zlib_every_length)
{
	static uint8_t src[MAX_LEN + 16];
	test_rng r;
	size_t len;

	test_rng_seed(&r, 1);
	test_rng_fill(&r, src, sizeof src);
	for (len = 0; len <= MAX_LEN; len++) {
		size_t off = len % 16;
		uint32_t prev = (uint32_t)test_rng_next(&r);
		uint8_t *p = exact_copy(src + off, len);

		CHECK(p != NULL);
		CHECK_MSG(lsm_crc32(p, len) == zlib_crc(0, p, len),
		          "len %zu off %zu", len, off);
		CHECK_MSG(lsm_crc32_extend(prev, p, len) == zlib_crc(prev, p, len),
		          "len %zu prev 0x%08x", len, prev);
		/* And in place at an odd address within a larger buffer. */
		CHECK_MSG(lsm_crc32(src + off, len) == zlib_crc(0, src + off, len),
		          "len %zu off %zu (in place)", len, off);
		free(p);
	}
}

TEST(matches_zlib_random_offsets)
{
	static uint8_t src[3 * MAX_LEN];
	test_rng r;
	int i;

	test_rng_seed(&r, 2);
	for (i = 0; i < 20000; i++) {
		size_t off = test_rng_uniform(&r, MAX_LEN);
		size_t len = test_rng_uniform(&r, 2 * MAX_LEN + 1);
		uint32_t prev = i % 2 ? (uint32_t)test_rng_next(&r) : 0;

		if (i % 1000 == 0)
			test_rng_fill(&r, src, sizeof src);
		CHECK_MSG(lsm_crc32_extend(prev, src + off, len) ==
		          zlib_crc(prev, src + off, len), "off %zu len %zu", off, len);
	}
}

/* Low-entropy inputs (all 0x00, all 0xff, one bit set) stress single table
 * rows that random data only visits occasionally. */
TEST(matches_zlib_patterns)
{
	static uint8_t buf[1024];
	size_t len, bit;

	memset(buf, 0xff, sizeof buf);
	for (len = 0; len <= sizeof buf; len += 7)
		CHECK_EQ_U64(lsm_crc32(buf, len), zlib_crc(0, buf, len));
	memset(buf, 0, sizeof buf);
	for (len = 0; len <= sizeof buf; len += 7)
		CHECK_EQ_U64(lsm_crc32(buf, len), zlib_crc(0, buf, len));
	for (bit = 0; bit < 8 * 64; bit++) {
		memset(buf, 0, 64);
		buf[bit / 8] = (uint8_t)(1u << (bit % 8));
		CHECK_MSG(lsm_crc32(buf, 64) == zlib_crc(0, buf, 64), "bit %zu", bit);
	}
}

TEST(extend_every_split)
{
	static uint8_t buf[300];
	test_rng r;
	size_t split;
	uint32_t whole;

	test_rng_seed(&r, 3);
	test_rng_fill(&r, buf, sizeof buf);
	whole = lsm_crc32(buf, sizeof buf);
	for (split = 0; split <= sizeof buf; split++) {
		uint32_t a = lsm_crc32(buf, split);

		CHECK_MSG(lsm_crc32_extend(a, buf + split, sizeof buf - split) == whole,
		          "split %zu", split);
	}
}

TEST(extend_many_pieces)
{
	static uint8_t buf[64 * 1024];
	test_rng r;
	int round;

	test_rng_seed(&r, 4);
	test_rng_fill(&r, buf, sizeof buf);
	for (round = 0; round < 50; round++) {
		size_t len = test_rng_uniform(&r, sizeof buf + 1);
		size_t pos = 0;
		uint32_t c = 0;

		while (pos < len) {
			size_t step = test_rng_uniform(&r, 40) + 1;

			if (step > len - pos)
				step = len - pos;
			c = lsm_crc32_extend(c, buf + pos, step);
			pos += step;
		}
		CHECK_MSG(c == zlib_crc(0, buf, len), "round %d len %zu", round, len);
	}
}

TEST(mask_roundtrip)
{
	static const uint32_t edges[] = {
		0, 1, 0x7fffffffu, 0x80000000u, 0xffffffffu, 0xCBF43926u,
		LSM_CRC32_MASK_DELTA,
	};
	test_rng r;
	size_t i;
	int distinct = 0;

	/* rotr(0, 15) == 0, so mask(0) is exactly the delta. */
	CHECK_EQ_U64(lsm_crc32_mask(0), LSM_CRC32_MASK_DELTA);
	CHECK_EQ_U64(lsm_crc32_unmask(LSM_CRC32_MASK_DELTA), 0);
	/* rotr(0x00008000, 15) == 1. */
	CHECK_EQ_U64(lsm_crc32_mask(0x00008000u), LSM_CRC32_MASK_DELTA + 1);

	for (i = 0; i < sizeof edges / sizeof edges[0]; i++) {
		CHECK_EQ_U64(lsm_crc32_unmask(lsm_crc32_mask(edges[i])), edges[i]);
		CHECK_EQ_U64(lsm_crc32_mask(lsm_crc32_unmask(edges[i])), edges[i]);
		CHECK_MSG(lsm_crc32_mask(edges[i]) != edges[i], "mask fixes 0x%08x", edges[i]);
	}
	test_rng_seed(&r, 5);
	for (i = 0; i < 100000; i++) {
		uint32_t v = (uint32_t)test_rng_next(&r);

		CHECK_EQ_U64(lsm_crc32_unmask(lsm_crc32_mask(v)), v);
		if (lsm_crc32_mask(v) != v)
			distinct++;
	}
	CHECK_EQ_INT(distinct, 100000);
}

/* The reason for masking: the crc of a buffer holding its own (unmasked)
 * crc is data-independent, while with the mask stored it is not. */
TEST(mask_breaks_self_crc)
{
	uint8_t a[12], b[12];
	uint32_t ca, cb;

	memcpy(a, "abcdefgh", 8);
	memcpy(b, "ijklmnop", 8);
	ca = lsm_crc32(a, 8);
	cb = lsm_crc32(b, 8);
	/* Little-endian crc appended: the residue is the same constant. */
	a[8] = (uint8_t)ca; a[9] = (uint8_t)(ca >> 8);
	a[10] = (uint8_t)(ca >> 16); a[11] = (uint8_t)(ca >> 24);
	b[8] = (uint8_t)cb; b[9] = (uint8_t)(cb >> 8);
	b[10] = (uint8_t)(cb >> 16); b[11] = (uint8_t)(cb >> 24);
	CHECK_EQ_U64(lsm_crc32(a, 12), lsm_crc32(b, 12));
	CHECK_EQ_U64(lsm_crc32(a, 12), 0x2144DF1Cu);

	ca = lsm_crc32_mask(ca);
	cb = lsm_crc32_mask(cb);
	a[8] = (uint8_t)ca; a[9] = (uint8_t)(ca >> 8);
	a[10] = (uint8_t)(ca >> 16); a[11] = (uint8_t)(ca >> 24);
	b[8] = (uint8_t)cb; b[9] = (uint8_t)(cb >> 8);
	b[10] = (uint8_t)(cb >> 16); b[11] = (uint8_t)(cb >> 24);
	CHECK(lsm_crc32(a, 12) != lsm_crc32(b, 12));
}
