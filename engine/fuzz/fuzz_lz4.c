/*
 * fuzz_lz4.c — the LZ4 block decompressor (util/lz4.c) on arbitrary
 * bytes, against the reference liblz4, and the compressor on the same
 * bytes.
 *
 * Input: 2 bytes of output capacity (little-endian, 0..65535), then the
 * compressed stream.  Checked:
 *   - we agree exactly (accept or refuse, and the output) with a plain
 *     decoder of the format as lz4.c states it, written here for clarity
 *     rather than speed;
 *   - whatever liblz4's LZ4_decompress_safe accepts we accept too, with
 *     the same output, except two streams the format calls corrupt and
 *     liblz4 takes: a match offset of 0, and (with no room for output) any
 *     stream but "\0".  The converse does not hold: liblz4 also enforces
 *     the end-of-block rules a compressor must follow (last 5 bytes
 *     literals, last match 12 bytes before the end), which we do not need;
 *   - our compressor's output of the whole input decompresses, by us and by
 *     liblz4, to exactly the input.
 */
#include <lz4.h>

#include "fuzz.h"
#include "lz4block.h"

/* A 255-continued length: adds bytes to *len until one is not 255. */
static int plain_length(const uint8_t *s, size_t n, size_t *i, size_t *len)
{
	for (;;) {
		if (*i >= n)
			return -1;
		*len += s[*i];
		if (s[(*i)++] != 255)
			return 0;
	}
}

/* Output length, or -1 when the stream is corrupt; *zero_offset set when
 * it was refused for a match offset of 0. */
static long plain_decode(const uint8_t *s, size_t n, uint8_t *d, size_t cap, int *zero_offset)
{
	size_t i = 0, o = 0;

	*zero_offset = 0;
	for (;;) {
		size_t lit, ml, off;
		unsigned token;

		if (i >= n)
			return -1;
		token = s[i++];
		lit = token >> 4;
		if (lit == 15 && plain_length(s, n, &i, &lit) != 0)
			return -1;
		if (lit > n - i || lit > cap - o)
			return -1;
		memcpy(d + o, s + i, lit);
		i += lit;
		o += lit;
		if (i == n)
			return (long)o;             /* the last sequence: literals only */
		if (n - i < 2)
			return -1;
		off = (size_t)s[i] | ((size_t)s[i + 1] << 8);
		i += 2;
		if (off == 0) {
			*zero_offset = 1;
			return -1;
		}
		if (off > o)
			return -1;
		ml = (token & 15) + 4;
		if ((token & 15) == 15 && plain_length(s, n, &i, &ml) != 0)
			return -1;
		if (ml > cap - o)
			return -1;
		for (size_t k = 0; k < ml; k++, o++)
			d[o] = d[o - off];
	}
}

static void check_decompress(const uint8_t *src, size_t n, size_t cap)
{
	uint8_t *ours = malloc(cap + 1), *plain = malloc(cap + 1), *ref = malloc(cap + 1);
	size_t got = 0;
	int rc, r, zero_offset;
	long p;

	FUZZ_CHECK(ours && plain && ref);
	rc = lsm_lz4_decompress(src, n, ours, cap, &got);
	p = plain_decode(src, n, plain, cap, &zero_offset);
	r = LZ4_decompress_safe((const char *)src, (char *)ref, (int)n, (int)cap);
	FUZZ_CHECK(rc == LSM_OK || rc == LSM_CORRUPTION);
	FUZZ_CHECK((rc == LSM_OK) == (p >= 0));
	if (rc == LSM_OK)
		FUZZ_CHECK(got == (size_t)p && got <= cap && (got == 0 || memcmp(ours, plain, got) == 0));
	if (r >= 0 && !zero_offset && cap > 0) {
		FUZZ_CHECK(rc == LSM_OK);
		FUZZ_CHECK(got == (size_t)r && (got == 0 || memcmp(ours, ref, got) == 0));
	}
	free(ours);
	free(plain);
	free(ref);
}

static void check_roundtrip(const uint8_t *src, size_t n)
{
	size_t bound = lsm_lz4_compress_bound(n), clen = 0, got = 0;
	uint8_t *c = malloc(bound + 1), *d = malloc(n + 1);

	FUZZ_CHECK(c && d);
	FUZZ_CHECK(lsm_lz4_compress(src, n, c, bound, &clen) == LSM_OK);
	FUZZ_CHECK(lsm_lz4_decompress(c, clen, d, n, &got) == LSM_OK);
	FUZZ_CHECK(got == n && (n == 0 || memcmp(d, src, n) == 0));
	FUZZ_CHECK(LZ4_decompress_safe((const char *)c, (char *)d, (int)clen, (int)n) == (int)n);
	FUZZ_CHECK(n == 0 || memcmp(d, src, n) == 0);
	free(c);
	free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	check_decompress(data + 2, size - 2, (size_t)data[0] | ((size_t)data[1] << 8));
	check_roundtrip(data, size);
	return 0;
}
