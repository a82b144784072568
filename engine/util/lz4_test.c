/*
 * lz4_test.c — the LZ4 block codec against the reference liblz4, both ways,
 * plus hostile-input tests for the decompressor.
 *
 * Every buffer handed to the codec is malloc'd at exactly the size passed
 * as its length or capacity, so that AddressSanitizer sees any access past
 * it.  A cap of 0 passes malloc(0), which ASan treats as a 0-byte block.
 */
#include "testutil.h"

#include "lsm.h"
#include "lz4block.h"

/* the reference liblz4 */
#include <lz4.h>
#include <lz4hc.h>

#define LZ4_MAX_IN 0x7E000000u
#define MINMATCH_T 4


enum kind { K_TEXT, K_RANDOM, K_ZEROS, K_MIXED, K_NKINDS };
static const char *const kind_name[K_NKINDS] = { "text", "random", "zeros", "mixed" };

/* ------------------------------------------------------------- data */

/* A fixed vocabulary, drawn with a skew toward the first words, gives
 * text whose ratio under LZ4 resembles English prose (about 2x). */
#define VOCAB 600
static char vocab[VOCAB][16];
static size_t vocab_len[VOCAB];

static void vocab_init(void)
{
	static int done;
	test_rng r;
	if (done)
		return;
	done = 1;
	test_rng_seed(&r, 424242);
	for (int i = 0; i < VOCAB; i++) {
		size_t len = 1 + test_rng_uniform(&r, 4) + test_rng_uniform(&r, 4) +
		             test_rng_uniform(&r, 5);
		for (size_t j = 0; j < len; j++)
			vocab[i][j] = (char)('a' + test_rng_uniform(&r, 26));
		vocab_len[i] = len;
	}
}

static void gen_text(test_rng *r, uint8_t *p, size_t n)
{
	static const char punct[] = ",,,..;:!?";
	size_t i = 0;
	int cap_next = 1;
	vocab_init();
	while (i < n) {
		uint64_t a = test_rng_uniform(r, VOCAB), b = test_rng_uniform(r, VOCAB);
		size_t w = (size_t)(a * b / VOCAB);
		for (size_t j = 0; j < vocab_len[w] && i < n; j++) {
			char c = vocab[w][j];
			if (j == 0 && cap_next)
				c = (char)(c - 'a' + 'A');
			p[i++] = (uint8_t)c;
		}
		cap_next = 0;
		if (i < n && test_rng_uniform(r, 8) == 0) {
			char c = punct[test_rng_uniform(r, sizeof punct - 1)];
			p[i++] = (uint8_t)c;
			cap_next = c == '.' || c == '!' || c == '?';
		}
		if (i < n && test_rng_uniform(r, 50) == 0) {
			int k = (int)test_rng_uniform(r, 100000);
			char num[16];
			int len = snprintf(num, sizeof num, " %d", k);
			for (int j = 0; j < len && i < n; j++)
				p[i++] = (uint8_t)num[j];
		}
		if (i < n)
			p[i++] = test_rng_uniform(r, 14) == 0 ? '\n' : ' ';
	}
}

/* Mixed: runs of text, noise, zeros and copies of earlier bytes from up to
 * ~100 KiB back, so matches straddle the 64 KiB window limit. */
static void gen_mixed(test_rng *r, uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t len = 1 + test_rng_uniform(r, 1 + test_rng_uniform(r, 3000));
		if (len > n - i)
			len = n - i;
		switch (test_rng_uniform(r, 5)) {
		case 0: gen_text(r, p + i, len); break;
		case 1: test_rng_fill(r, p + i, len); break;
		case 2: memset(p + i, (int)test_rng_uniform(r, 3) * 0x55, len); break;
		default:
			if (i == 0) {
				test_rng_fill(r, p, len);
			} else {
				size_t back = 1 + test_rng_uniform(r, i < 100000 ? i : 100000);
				/* byte at a time: the copy may overlap itself */
				for (size_t j = 0; j < len; j++)
					p[i + j] = p[i + j - back];
			}
			break;
		}
		i += len;
	}
}

static uint8_t *gen(enum kind k, size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	test_rng r;
	test_rng_seed(&r, seed * 7919 + (uint64_t)k * 104729 + n);
	switch (k) {
	case K_TEXT:   gen_text(&r, p, n); break;
	case K_RANDOM: test_rng_fill(&r, p, n); break;
	case K_ZEROS:  memset(p, 0, n); break;
	default:       gen_mixed(&r, p, n); break;
	}
	return p;
}

/* Exact-size copy, so that ASan bounds a read of n bytes. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n);
	if (n)
		memcpy(q, p, n);
	return q;
}

/* Our compression into an exact-size buffer of our own output length. */
static uint8_t *ours_compress(const uint8_t *src, size_t n, size_t *clen)
{
	size_t bound = lsm_lz4_compress_bound(n);
	uint8_t *tmp = malloc(bound);
	uint8_t *out;
	if (lsm_lz4_compress(src, n, tmp, bound, clen) != LSM_OK) {
		free(tmp);
		return NULL;
	}
	out = dup_exact(tmp, *clen);
	free(tmp);
	return out;
}

/* liblz4's compressor; level > 0 selects LZ4HC, whose streams use longer
 * and more distant matches than a greedy parser produces. */
static uint8_t *ref_compress_level(const uint8_t *src, size_t n, size_t *clen, int level)
{
	int bound = LZ4_compressBound((int)n);
	uint8_t *tmp = malloc((size_t)bound);
	int r = level ? LZ4_compress_HC((const char *)src, (char *)tmp, (int)n, bound, level)
	              : LZ4_compress_default((const char *)src, (char *)tmp, (int)n, bound);
	uint8_t *out;
	if (r <= 0) {
		free(tmp);
		return NULL;
	}
	*clen = (size_t)r;
	out = dup_exact(tmp, *clen);
	free(tmp);
	return out;
}

static uint8_t *ref_compress(const uint8_t *src, size_t n, size_t *clen)
{
	return ref_compress_level(src, n, clen, 0);
}

/* Both directions and both decoders for one input. */
static void check_roundtrip(enum kind k, const uint8_t *data, size_t n)
{
	uint8_t *src = dup_exact(data, n);
	size_t clen = 0, rlen = 0, got = 0;
	uint8_t *c = ours_compress(src, n, &clen);
	uint8_t *rc = ref_compress(src, n, &rlen);
	uint8_t *out = malloc(n);
	int r;

	CHECK_MSG(c != NULL, "%s n=%zu: compress failed", kind_name[k], n);
	CHECK_MSG(rc != NULL, "%s n=%zu: liblz4 compress failed", kind_name[k], n);
	CHECK_MSG(clen <= lsm_lz4_compress_bound(n), "%s n=%zu", kind_name[k], n);

	/* ours -> liblz4 */
	r = LZ4_decompress_safe((const char *)c, (char *)out, (int)clen, (int)n);
	CHECK_MSG(r == (int)n, "%s n=%zu: liblz4 rejected our stream (%d)", kind_name[k], n, r);
	CHECK_MSG(n == 0 || memcmp(out, src, n) == 0, "%s n=%zu: liblz4 decoded other bytes", kind_name[k], n);

	/* ours -> ours */
	if (n) memset(out, 0xAA, n);
	CHECK_OK(lsm_lz4_decompress(c, clen, out, n, &got));
	CHECK_MEM(out, got, src, n);

	/* liblz4 -> ours */
	if (n) memset(out, 0xAA, n);
	got = 0;
	r = lsm_lz4_decompress(rc, rlen, out, n, &got);
	CHECK_MSG(r == LSM_OK, "%s n=%zu: we rejected liblz4's stream (%d)", kind_name[k], n, r);
	CHECK_MEM(out, got, src, n);

	/* liblz4 HC -> ours */
	{
		size_t hlen = 0;
		uint8_t *hc = ref_compress_level(src, n, &hlen, 9);
		CHECK(hc != NULL);
		if (n) memset(out, 0xAA, n);
		got = 0;
		r = lsm_lz4_decompress(hc, hlen, out, n, &got);
		CHECK_MSG(r == LSM_OK, "%s n=%zu: we rejected LZ4HC's stream (%d)", kind_name[k], n, r);
		CHECK_MEM(out, got, src, n);
		free(hc);
	}

	/* one byte short of room must be an error, not a short success */
	if (n) {
		uint8_t *small = malloc(n - 1);
		CHECK_EQ_INT(lsm_lz4_decompress(c, clen, small, n - 1, &got), LSM_CORRUPTION);
		CHECK_EQ_INT(lsm_lz4_decompress(rc, rlen, small, n - 1, &got), LSM_CORRUPTION);
		free(small);
	}

	free(src);
	free(c);
	free(rc);
	free(out);
}

/* ------------------------------------------------------------- tests */

TEST(bound_matches_liblz4)
{
	static const size_t ns[] = { 0, 1, 12, 13, 254, 255, 256, 4096, 65536,
	                             1u << 20, LZ4_MAX_IN - 1, LZ4_MAX_IN };
	for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
		CHECK_EQ_U64(lsm_lz4_compress_bound(ns[i]), (uint64_t)LZ4_compressBound((int)ns[i]));
	CHECK_EQ_U64(lsm_lz4_compress_bound((size_t)LZ4_MAX_IN + 1), 0);
}

TEST(too_large_input_is_invalid)
{
	uint8_t in[16] = { 0 }, out[64];
	size_t got = 0;
	/* The size is checked before anything is read. */
	CHECK_EQ_INT(lsm_lz4_compress(in, (size_t)LZ4_MAX_IN + 1, out, sizeof out, &got), LSM_INVALID);
	CHECK_EQ_INT(lsm_lz4_compress(in, SIZE_MAX, out, sizeof out, &got), LSM_INVALID);
}

TEST(empty_input)
{
	uint8_t *dst = malloc(1);
	uint8_t *none = malloc(0);
	size_t got = 99;
	CHECK_OK(lsm_lz4_compress(NULL, 0, dst, 1, &got));
	CHECK_EQ_INT(got, 1);
	CHECK_EQ_INT(dst[0], 0);
	CHECK_EQ_INT(LZ4_decompress_safe((const char *)dst, (char *)none, 1, 0), 0);
	CHECK_EQ_INT(lsm_lz4_compress(NULL, 0, none, 0, &got), LSM_INVALID);
	CHECK_EQ_INT(lsm_lz4_compress(NULL, 0, NULL, 0, &got), LSM_INVALID);
	got = 99;
	CHECK_OK(lsm_lz4_decompress(dst, 1, none, 0, &got));
	CHECK_EQ_INT(got, 0);
	got = 99;
	CHECK_OK(lsm_lz4_decompress(dst, 1, NULL, 0, &got));
	CHECK_EQ_INT(got, 0);
	CHECK_EQ_INT(lsm_lz4_decompress(dst, 0, none, 0, &got), LSM_CORRUPTION);
	CHECK_EQ_INT(lsm_lz4_decompress(NULL, 0, NULL, 0, &got), LSM_CORRUPTION);
	free(dst);
	free(none);
}

TEST(roundtrip_every_size_to_300)
{
	for (int k = 0; k < K_NKINDS; k++) {
		for (size_t n = 0; n <= 300; n++) {
			uint8_t *d = gen((enum kind)k, n, 1);
			check_roundtrip((enum kind)k, d, n);
			free(d);
			if (test_failed_flag)
				return;
		}
	}
}

TEST(roundtrip_spread_of_sizes)
{
	static const size_t ns[] = {
		301, 333, 500, 777, 1000, 1023, 1024, 1025, 2047, 4095, 4096, 4097,
		8191, 8192, 12345, 16384, 32768, 50000, 65535, 65536, 65537,
		65546, 65547, 65548, 65549, 70000, 100000, 131072, 200003,
		1u << 20, (1u << 20) + 7, 3u << 20,
	};
	for (int k = 0; k < K_NKINDS; k++) {
		for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
			uint8_t *d = gen((enum kind)k, ns[i], 2);
			check_roundtrip((enum kind)k, d, ns[i]);
			free(d);
			if (test_failed_flag)
				return;
		}
	}
}

/* Inputs built so that the only possible matches sit exactly at, or just
 * past, the largest encodable offset. */
TEST(window_limit)
{
	for (size_t dist = 65530; dist <= 65540; dist++) {
		size_t n = 2 * dist;
		uint8_t *d = malloc(n);
		test_rng r;
		size_t clen;
		uint8_t *c;
		test_rng_seed(&r, dist);
		test_rng_fill(&r, d, dist);
		memcpy(d + dist, d, dist);
		check_roundtrip(K_MIXED, d, n);
		if (test_failed_flag)
			return;
		c = ours_compress(d, n, &clen);
		CHECK(c != NULL);
		if (dist <= 65535)
			/* the copy costs one sequence; the literals dist/255 run bytes */
			CHECK_MSG(clen < dist + dist / 100 + 64, "dist %zu: %zu bytes, repeat not found", dist, clen);
		else
			CHECK_MSG(clen > n, "dist %zu: %zu bytes from out-of-window data", dist, clen);
		free(c);
		free(d);
	}

	/* A 70000-byte random period across 4 MiB: every hash candidate one
	 * period back is out of the window and must be dropped. */
	{
		size_t n = 4u << 20, period = 70000;
		uint8_t *d = malloc(n);
		test_rng r;
		test_rng_seed(&r, 77);
		test_rng_fill(&r, d, period);
		for (size_t i = period; i < n; i++)
			d[i] = d[i - period];
		check_roundtrip(K_MIXED, d, n);
		free(d);
	}
}

/* Around the switch from 16- to 32-bit table positions (n = 65547/65548):
 * 600 random bytes, zeros, then the 600 bytes again at distance D.  The
 * zero run ends in one long match, so the search restarts right at D and
 * probes every position of the repeat, whose copy at D - j is in the table
 * since the start was probed densely too. */
TEST(window_limit_at_table_switch)
{
	static const size_t ds[] = { 65534, 65535, 65536, 65537 };
	static const size_t extra[] = { 13, 50, 600, 1500, 3000 };
	for (size_t a = 0; a < sizeof ds / sizeof ds[0]; a++) {
		for (size_t b = 0; b < sizeof extra / sizeof extra[0]; b++) {
			size_t dist = ds[a], n = dist + extra[b], clen, tail;
			size_t rep = extra[b] < 600 ? extra[b] : 600;
			uint8_t *d = malloc(n);
			uint8_t *c;
			test_rng r;
			test_rng_seed(&r, n);
			test_rng_fill(&r, d, n);
			memset(d + 600, 0, dist - 600);
			memcpy(d + dist, d, rep);
			check_roundtrip(K_MIXED, d, n);
			if (test_failed_flag) {
				fprintf(stderr, "    dist %zu n %zu\n", dist, n);
				return;
			}
			c = ours_compress(d, n, &clen);
			CHECK(c != NULL);
			tail = n - dist - rep;          /* random bytes after the repeat */
			if (rep == 600 && dist <= 65535)
				CHECK_MSG(clen < 600 + tail + 300, "dist %zu n %zu: %zu bytes", dist, n, clen);
			if (rep == 600 && dist > 65535)
				CHECK_MSG(clen > 1200 + tail, "dist %zu n %zu: %zu bytes", dist, n, clen);
			free(c);
			free(d);
		}
	}
}

/* Every cap below our output size fails cleanly; the exact size and a few
 * bytes more (where the wildcopy would start to fit) give the same bytes. */
static void check_caps(enum kind k, size_t n, int every_cap)
{
	uint8_t *d = gen(k, n, 3);
	size_t clen, got;
	uint8_t *c = ours_compress(d, n, &clen);
	CHECK(c != NULL);

	for (size_t cap = 0; cap < clen; cap++) {
		if (!every_cap && cap > 20 && cap + 20 < clen && cap != clen / 2 && cap != n)
			continue;
		uint8_t *out = malloc(cap);
		int r = lsm_lz4_compress(d, n, out, cap, &got);
		free(out);
		CHECK_MSG(r == LSM_INVALID, "%s n=%zu cap=%zu (need %zu): rc %d",
		          kind_name[k], n, cap, clen, r);
	}
	for (size_t cap = clen; cap <= clen + 16; cap++) {
		uint8_t *out = malloc(cap);
		int r = lsm_lz4_compress(d, n, out, cap, &got);
		CHECK_MSG(r == LSM_OK, "%s n=%zu cap=%zu: rc %d", kind_name[k], n, cap, r);
		CHECK_MEM(out, got, c, clen);
		free(out);
	}
	free(c);
	free(d);
}

TEST(compress_small_caps_every_cap)
{
	for (int k = 0; k < K_NKINDS; k++) {
		for (size_t n = 0; n <= 300; n += (n < 40 ? 1 : 7)) {
			check_caps((enum kind)k, n, 1);
			if (test_failed_flag)
				return;
		}
	}
}

TEST(compress_large_caps)
{
	static const size_t ns[] = { 1000, 4096, 65536, 65547, 65548, 1u << 20 };
	for (int k = 0; k < K_NKINDS; k++) {
		for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
			check_caps((enum kind)k, ns[i], 0);
			if (test_failed_flag)
				return;
		}
	}
}

/* Decodes src[0..len) into an exact-size dst of cap bytes; an error, or a
 * success whose output is no longer than cap and (when `orig` is known) is
 * a prefix of it, is the only acceptable outcome.  When liblz4 also
 * accepts, both must produce the same bytes. */
static int hostile_ok = 0, hostile_both = 0;
static void check_hostile(const uint8_t *in, size_t len, size_t cap,
                          const uint8_t *orig, size_t orig_n)
{
	uint8_t *src = dup_exact(in, len);
	uint8_t *dst = malloc(cap);
	size_t got = (size_t)-1;
	int r = lsm_lz4_decompress(src, len, dst, cap, &got);

	CHECK_MSG(r == LSM_OK || r == LSM_CORRUPTION, "rc %d", r);
	if (r == LSM_OK) {
		hostile_ok++;
		CHECK_MSG(got <= cap, "len %zu cap %zu: got %zu", len, cap, got);
		if (orig)
			CHECK_MSG(got <= orig_n && memcmp(dst, orig, got) == 0,
			          "len %zu: accepted output is not a prefix of the original", len);
		if (cap <= INT32_MAX && len <= INT32_MAX) {
			uint8_t *ref = malloc(cap);
			int rr = LZ4_decompress_safe((const char *)src, (char *)ref, (int)len, (int)cap);
			if (rr >= 0) {
				hostile_both++;
				CHECK_MEM(dst, got, ref, (size_t)rr);
			}
			free(ref);
		}
	}
	free(src);
	free(dst);
}

TEST(decompress_every_truncation)
{
	static const size_t ns[] = { 20, 200, 3000, 9000 };
	for (int k = 0; k < K_NKINDS; k++) {
		for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
			size_t n = ns[i], clen, rlen;
			uint8_t *d = gen((enum kind)k, n, 4);
			uint8_t *streams[2] = { ours_compress(d, n, &clen), ref_compress(d, n, &rlen) };
			size_t lens[2] = { clen, rlen };
			for (int s = 0; s < 2; s++) {
				CHECK(streams[s] != NULL);
				for (size_t p = 0; p < lens[s]; p++) {
					check_hostile(streams[s], p, n, d, n);
					if (test_failed_flag) {
						fprintf(stderr, "    %s n=%zu stream %d prefix %zu\n",
						        kind_name[k], n, s, p);
						return;
					}
				}
				/* and with output room to spare */
				for (size_t p = 0; p < lens[s]; p += 1 + p / 16) {
					check_hostile(streams[s], p, n + 100, d, n);
					if (test_failed_flag)
						return;
				}
				free(streams[s]);
			}
			free(d);
		}
	}
}

TEST(decompress_output_overflow)
{
	size_t n = 20000, clen, got;
	for (int k = 0; k < K_NKINDS; k++) {
		uint8_t *d = gen((enum kind)k, n, 5);
		uint8_t *c = ours_compress(d, n, &clen);
		static const size_t caps[] = { 0, 1, 7, 8, 15, 16, 100, 10000, 19980, 19990, 19995, 19999 };
		for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
			uint8_t *out = malloc(caps[i]);
			CHECK_EQ_INT(lsm_lz4_decompress(c, clen, out, caps[i], &got), LSM_CORRUPTION);
			free(out);
		}
		/* room to spare is fine */
		{
			uint8_t *out = malloc(n + 33);
			CHECK_OK(lsm_lz4_decompress(c, clen, out, n + 33, &got));
			CHECK_MEM(out, got, d, n);
			free(out);
		}
		free(c);
		free(d);
	}
}

static int dec(const void *s, size_t n, size_t cap, uint8_t *expect, size_t expect_n)
{
	uint8_t *src = dup_exact(s, n);
	uint8_t *dst = malloc(cap);
	size_t got = 0;
	int r = lsm_lz4_decompress(src, n, dst, cap, &got);
	if (r == LSM_OK && expect && (got != expect_n || memcmp(dst, expect, got) != 0))
		r = -1;
	free(src);
	free(dst);
	return r;
}

TEST(decompress_crafted)
{
	/* controls: offset 1 inside the output is fine */
	CHECK_EQ_INT(dec("\x10" "a\x01\x00" "\x50" "hello", 10, 10, (uint8_t *)"aaaaahello", 10), LSM_OK);
	CHECK_EQ_INT(dec("\x00", 1, 0, (uint8_t *)"", 0), LSM_OK);
	CHECK_EQ_INT(dec("\x30" "abc", 4, 3, (uint8_t *)"abc", 3), LSM_OK);

	/* offset 0 */
	CHECK_EQ_INT(dec("\x10" "a\x00\x00" "\x50" "hello", 10, 100, NULL, 0), LSM_CORRUPTION);
	CHECK_EQ_INT(dec("\x00\x00\x00" "\x50" "hello", 9, 100, NULL, 0), LSM_CORRUPTION);
	/* offsets reaching before the start of the output */
	CHECK_EQ_INT(dec("\x10" "a\x02\x00" "\x50" "hello", 10, 100, NULL, 0), LSM_CORRUPTION);
	CHECK_EQ_INT(dec("\x00\x01\x00" "\x50" "hello", 9, 100, NULL, 0), LSM_CORRUPTION);
	CHECK_EQ_INT(dec("\x10" "a\xff\xff" "\x50" "hello", 10, 100000, NULL, 0), LSM_CORRUPTION);
	/* truncated token/offset/length bytes */
	/* (a last sequence's match nibble is ignored: "\x10" "a" is just "a") */
	CHECK_EQ_INT(dec("\x10" "a", 2, 100, (uint8_t *)"a", 1), LSM_OK);
	CHECK_EQ_INT(dec("\x10" "a\x01", 3, 100, NULL, 0), LSM_CORRUPTION);
	CHECK_EQ_INT(dec("\x10" "a\x01\x00", 4, 100, NULL, 0), LSM_CORRUPTION);   /* ends on a match */
	CHECK_EQ_INT(dec("\xf0", 1, 100, NULL, 0), LSM_CORRUPTION);
	CHECK_EQ_INT(dec("\xf0\xff", 2, 1000, NULL, 0), LSM_CORRUPTION);
	CHECK_EQ_INT(dec("\x1f" "a\x01\x00", 4, 100, NULL, 0), LSM_CORRUPTION);
	CHECK_EQ_INT(dec("\x1f" "a\x01\x00\xff", 5, 1000, NULL, 0), LSM_CORRUPTION);
	CHECK_EQ_INT(dec("\x50" "hell", 5, 100, NULL, 0), LSM_CORRUPTION);

	/* huge 255-runs: lengths far beyond both buffers, and beyond 32 bits */
	{
		size_t runs[] = { 1000, 100000, (size_t)1 << 20 };
		for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
			size_t m = runs[i] + 16;
			uint8_t *s = malloc(m);
			memset(s, 0xff, m);
			s[0] = 0xf0;                    /* literal run of ~255 * m */
			CHECK_EQ_INT(dec(s, m, 1u << 20, NULL, 0), LSM_CORRUPTION);
			CHECK_EQ_INT(dec(s, m, 64u << 20, NULL, 0), LSM_CORRUPTION);
			s[0] = 0x1f; s[1] = 'a'; s[2] = 1; s[3] = 0;   /* match run */
			CHECK_EQ_INT(dec(s, m, 1u << 20, NULL, 0), LSM_CORRUPTION);
			/* Terminated, the same run is a valid stream of 'a's: it
			 * decodes exactly when the output has room for all of it. */
			s[m - 2] = 0;
			s[m - 1] = 0x00;                /* empty last sequence */
			{
				size_t total = 1 + MINMATCH_T + 15 + 255 * (m - 6);
				if (total > (1u << 20))
					CHECK_EQ_INT(dec(s, m, 1u << 20, NULL, 0), LSM_CORRUPTION);
				if (total <= (64u << 20)) {
					uint8_t *expect = malloc(total);
					memset(expect, 'a', total);
					CHECK_EQ_INT(dec(s, m, total - 1, NULL, 0), LSM_CORRUPTION);
					CHECK_EQ_INT(dec(s, m, total, expect, total), LSM_OK);
					free(expect);
				}
			}
			free(s);
		}
	}
	/* a literal run whose length fits the output but not the input */
	CHECK_EQ_INT(dec("\xf0\x10" "abcdefg", 9, 100, NULL, 0), LSM_CORRUPTION);
	/* a match longer than the room left */
	CHECK_EQ_INT(dec("\x1f" "a\x01\x00\x20" "\x00", 6, 30, NULL, 0), LSM_CORRUPTION);
	CHECK_EQ_INT(dec("\x1f" "a\x01\x00\x20" "\x00", 6, 51, NULL, 0), LSM_CORRUPTION);
	CHECK_EQ_INT(dec("\x1f" "a\x01\x00\x20" "\x00", 6, 52, NULL, 0), LSM_OK);
}

/* Overlapping matches (offset < match length) at every small offset and
 * many lengths, both far from and flush against the end of the output. */
TEST(decompress_overlapping_matches)
{
	for (size_t off = 1; off <= 20; off++) {
		for (size_t ml = 4; ml <= 300; ml += (ml < 40 ? 1 : 13)) {
			for (int tail = 0; tail <= 5; tail += 5) {
				uint8_t s[512], expect[1024];
				size_t sn = 0, en = 0, rest;
				/* off literals */
				if (off >= 15) { s[sn++] = (uint8_t)(0xf0); s[sn++] = (uint8_t)(off - 15); }
				else s[sn++] = (uint8_t)(off << 4);
				for (size_t i = 0; i < off; i++) {
					s[sn++] = (uint8_t)('A' + i);
					expect[en++] = (uint8_t)('A' + i);
				}
				s[sn++] = (uint8_t)off;
				s[sn++] = 0;
				rest = ml - 4;
				if (rest >= 15) {
					s[0] |= 15;
					rest -= 15;
					while (rest >= 255) { s[sn++] = 255; rest -= 255; }
					s[sn++] = (uint8_t)rest;
				} else {
					s[0] |= (uint8_t)rest;
				}
				for (size_t i = 0; i < ml; i++, en++)
					expect[en] = expect[en - off];
				s[sn++] = (uint8_t)(tail << 4);
				for (int i = 0; i < tail; i++)
					s[sn++] = expect[en++] = (uint8_t)('a' + i);
				CHECK_MSG(dec(s, sn, en, expect, en) == LSM_OK, "off %zu ml %zu tail %d", off, ml, tail);
				CHECK_MSG(dec(s, sn, en + 64, expect, en) == LSM_OK, "off %zu ml %zu tail %d", off, ml, tail);
				CHECK_EQ_INT(dec(s, sn, en - 1, NULL, 0), LSM_CORRUPTION);
			}
		}
	}
}

TEST(fuzz_random_garbage)
{
	test_rng r;
	uint8_t buf[600];
	test_rng_seed(&r, 2024);
	hostile_ok = hostile_both = 0;
	for (int iter = 0; iter < 150000; iter++) {
		size_t len = 1 + test_rng_uniform(&r, test_rng_uniform(&r, 4) ? 48 : 600);
		size_t cap = test_rng_uniform(&r, test_rng_uniform(&r, 2) ? 64 : 4096);
		test_rng_fill(&r, buf, len);
		if (iter & 1) {
			/* Plausible streams get further: small lengths, near
			 * offsets, occasional 255-runs. */
			for (size_t i = 0; i < len; i++) {
				uint64_t x = test_rng_uniform(&r, 16);
				if (x < 6) buf[i] = (uint8_t)(buf[i] & 0x37);
				else if (x < 8) buf[i] = (uint8_t)(buf[i] & 0x0f);
				else if (x < 9) buf[i] = 0xff;
				else if (x < 10) buf[i] = 0;
			}
		}
		check_hostile(buf, len, cap, NULL, 0);
		if (test_failed_flag) {
			fprintf(stderr, "    iteration %d len %zu cap %zu\n", iter, len, cap);
			return;
		}
	}
	/* The fuzz must reach the success path, not only the first check. */
	CHECK_MSG(hostile_ok > 1000, "only %d accepted", hostile_ok);
	CHECK_MSG(hostile_both > 1000, "only %d accepted by both", hostile_both);
}

TEST(fuzz_bit_flips)
{
	test_rng r;
	test_rng_seed(&r, 99);
	hostile_ok = hostile_both = 0;
	for (int k = 0; k < K_NKINDS; k++) {
		for (int src_kind = 0; src_kind < 2; src_kind++) {
			size_t n = 1000 + test_rng_uniform(&r, 20000), clen;
			uint8_t *d = gen((enum kind)k, n, 6);
			uint8_t *c = src_kind ? ref_compress(d, n, &clen) : ours_compress(d, n, &clen);
			uint8_t *m = malloc(clen);
			CHECK(c != NULL);
			for (int iter = 0; iter < 6000; iter++) {
				int flips = 1 + (int)test_rng_uniform(&r, 4);
				memcpy(m, c, clen);
				for (int f = 0; f < flips; f++) {
					size_t at = test_rng_uniform(&r, clen);
					if (test_rng_uniform(&r, 4))
						m[at] ^= (uint8_t)(1u << test_rng_uniform(&r, 8));
					else
						m[at] = (uint8_t)test_rng_next(&r);
				}
				check_hostile(m, clen, test_rng_uniform(&r, 3) ? n : n + 77, NULL, 0);
				if (test_failed_flag) {
					fprintf(stderr, "    %s iteration %d\n", kind_name[k], iter);
					return;
				}
			}
			free(m);
			free(c);
			free(d);
		}
	}
	CHECK_MSG(hostile_ok > 100, "only %d accepted", hostile_ok);
}

TEST(ratio_close_to_liblz4)
{
	static const size_t ns[] = { 4096, 16384, 65536, 1u << 20 };
	for (int k = 0; k < K_NKINDS; k++) {
		if (k == K_RANDOM)
			continue;
		for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
			size_t n = ns[i], ours, theirs;
			uint8_t *d = gen((enum kind)k, n, 7);
			uint8_t *a = ours_compress(d, n, &ours);
			uint8_t *b = ref_compress(d, n, &theirs);
			CHECK(a && b);
			CHECK_MSG(ours * 100 <= theirs * 110 + 100,
			          "%s n=%zu: ours %zu vs liblz4 %zu", kind_name[k], n, ours, theirs);
			if (k == K_TEXT)
				CHECK_MSG(ours * 10 < n * 8, "text n=%zu: ratio only %zu/%zu", n, ours, n);
			free(a);
			free(b);
			free(d);
		}
	}
}
