/*
 * coding_test.c — varints, zigzag, fixed-width integers, lsm_reader and
 * lsm_buf.
 *
 * Invariants checked
 *   - every varint boundary (2^(7k) - 1, 2^(7k), 2^(7k) + 1, and the type
 *     maxima) round-trips, has the expected length, and the encoder writes
 *     no byte beyond the length it returns;
 *   - every proper prefix of every encoding is rejected without advancing;
 *   - overlong encodings and bits beyond the type are rejected, while the
 *     longest legal encodings are accepted;
 *   - decoders never read at or past limit: inputs live in malloc'd buffers
 *     of exactly their length, so under AddressSanitizer any over-read
 *     aborts the run;
 *   - reader errors are sticky, yield zeros, and do not move the cursor;
 *   - lsm_buf grows by at least doubling, keeps its contents, and an
 *     impossible reservation sets a sticky LSM_NOMEM that only reset clears.
 */
#include "testutil.h"

#include <stddef.h>

#include "coding.h"
#include "lsm.h"

/* A heap copy of exactly n bytes; for n == 0 a 1-byte allocation whose
 * byte is never meant to be read (limit == start). */
static uint8_t *exact_copy(const void *src, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	if (p != NULL && n > 0)
		memcpy(p, src, n);
	return p;
}

/* 0, 1, then 2^(7k) - 1, 2^(7k), 2^(7k) + 1 for k = 1..9, then the edges
 * of 32 and 64 bits.  Returns the count written to out. */
static size_t boundaries(uint64_t *out)
{
	size_t n = 0;
	int k;

	out[n++] = 0;
	out[n++] = 1;
	for (k = 1; k <= 9; k++) {
		uint64_t p = UINT64_C(1) << (7 * k);

		out[n++] = p - 1;
		out[n++] = p;
		out[n++] = p + 1;
	}
	out[n++] = UINT32_MAX - 1;
	out[n++] = UINT32_MAX;
	out[n++] = (uint64_t)UINT32_MAX + 1;
	out[n++] = (UINT64_C(1) << 63) - 1;
	out[n++] = UINT64_C(1) << 63;
	out[n++] = UINT64_MAX - 1;
	out[n++] = UINT64_MAX;
	return n;
}

/* Length of the minimal encoding, computed without the code under test. */
static size_t expected_len(uint64_t v)
{
	size_t bits = 0;

	while (bits < 64 && (v >> bits) != 0)
		bits++;
	return bits == 0 ? 1 : (bits + 6) / 7;
}

TEST(varint_known_encodings)
{
	static const struct {
		uint64_t v;
		size_t len;
		uint8_t bytes[10];
	} cases[] = {
		{0, 1, {0x00}},
		{1, 1, {0x01}},
		{127, 1, {0x7f}},
		{128, 2, {0x80, 0x01}},
		{300, 2, {0xac, 0x02}},
		{16383, 2, {0xff, 0x7f}},
		{16384, 3, {0x80, 0x80, 0x01}},
		{UINT32_MAX, 5, {0xff, 0xff, 0xff, 0xff, 0x0f}},
		{UINT64_MAX, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t buf[LSM_MAX_VARINT64_LEN];
		size_t n = lsm_encode_varint64(buf, cases[i].v);

		CHECK_MEM(buf, n, cases[i].bytes, cases[i].len);
		if (cases[i].v <= UINT32_MAX) {
			n = lsm_encode_varint32(buf, (uint32_t)cases[i].v);
			CHECK_MEM(buf, n, cases[i].bytes, cases[i].len);
		}
	}
}

TEST(varint64_boundaries)
{
	uint64_t vals[64];
	size_t nv = boundaries(vals), i, k;

	for (i = 0; i < nv; i++) {
		uint8_t enc[LSM_MAX_VARINT64_LEN + 4];
		size_t len;
		uint8_t *heap;
		const uint8_t *p;
		uint64_t got = 0;

		memset(enc, 0xa5, sizeof enc);
		len = lsm_encode_varint64(enc, vals[i]);
		CHECK_EQ_U64(len, expected_len(vals[i]));
		CHECK_EQ_U64(lsm_varint_length(vals[i]), len);
		for (k = len; k < sizeof enc; k++)
			CHECK_MSG(enc[k] == 0xa5, "encoder wrote byte %zu of %zu", k, len);

		heap = exact_copy(enc, len);
		CHECK(heap != NULL);
		p = heap;
		CHECK_OK(lsm_decode_varint64(&p, heap + len, &got));
		CHECK_EQ_U64(got, vals[i]);
		CHECK(p == heap + len);
		free(heap);

		/* Every proper prefix: truncated, rejected, cursor unmoved. */
		for (k = 0; k < len; k++) {
			heap = exact_copy(enc, k);
			CHECK(heap != NULL);
			p = heap;
			CHECK_MSG(lsm_decode_varint64(&p, heap + k, &got) == LSM_CORRUPTION,
			          "value 0x%" PRIx64 " prefix %zu", vals[i], k);
			CHECK(p == heap);
			free(heap);
		}
	}
}

TEST(varint32_boundaries)
{
	uint64_t vals[64];
	size_t nv = boundaries(vals), i, k;

	for (i = 0; i < nv; i++) {
		uint8_t enc[LSM_MAX_VARINT64_LEN + 4];
		size_t len;
		uint8_t *heap;
		const uint8_t *p;
		uint32_t got = 0;

		memset(enc, 0xa5, sizeof enc);
		if (vals[i] > UINT32_MAX) {
			/* A valid varint64 too large for 32 bits must be refused. */
			len = lsm_encode_varint64(enc, vals[i]);
			heap = exact_copy(enc, len);
			CHECK(heap != NULL);
			p = heap;
			CHECK_MSG(lsm_decode_varint32(&p, heap + len, &got) == LSM_CORRUPTION,
			          "value 0x%" PRIx64, vals[i]);
			CHECK(p == heap);
			free(heap);
			continue;
		}
		len = lsm_encode_varint32(enc, (uint32_t)vals[i]);
		CHECK_EQ_U64(len, expected_len(vals[i]));
		CHECK(len <= LSM_MAX_VARINT32_LEN);
		for (k = len; k < sizeof enc; k++)
			CHECK_MSG(enc[k] == 0xa5, "encoder wrote byte %zu of %zu", k, len);

		heap = exact_copy(enc, len);
		CHECK(heap != NULL);
		p = heap;
		CHECK_OK(lsm_decode_varint32(&p, heap + len, &got));
		CHECK_EQ_U64(got, vals[i]);
		CHECK(p == heap + len);
		free(heap);

		for (k = 0; k < len; k++) {
			heap = exact_copy(enc, k);
			CHECK(heap != NULL);
			p = heap;
			CHECK_MSG(lsm_decode_varint32(&p, heap + k, &got) == LSM_CORRUPTION,
			          "value 0x%" PRIx64 " prefix %zu", vals[i], k);
			CHECK(p == heap);
			free(heap);
		}
	}
}

/* Decoding stops at the end of the varint, not at limit. */
TEST(varint_followed_by_data)
{
	uint8_t buf[32];
	const uint8_t *p = buf;
	uint64_t a = 0, b = 0;
	uint32_t c = 0;
	size_t n;

	n = lsm_encode_varint64(buf, UINT64_MAX);
	n += lsm_encode_varint64(buf + n, 0);
	n += lsm_encode_varint32(buf + n, 16384);
	CHECK_OK(lsm_decode_varint64(&p, buf + n, &a));
	CHECK(p == buf + 10);
	CHECK_OK(lsm_decode_varint64(&p, buf + n, &b));
	CHECK(p == buf + 11);
	CHECK_OK(lsm_decode_varint32(&p, buf + n, &c));
	CHECK(p == buf + n);
	CHECK_EQ_U64(a, UINT64_MAX);
	CHECK_EQ_U64(b, 0);
	CHECK_EQ_U64(c, 16384);
	/* At limit, and with limit before p: nothing to read. */
	CHECK_EQ_INT(lsm_decode_varint64(&p, buf + n, &a), LSM_CORRUPTION);
	CHECK(p == buf + n);
	p = buf + 1;
	CHECK_EQ_INT(lsm_decode_varint32(&p, buf, &c), LSM_CORRUPTION);
	CHECK(p == buf + 1);
}

struct form {
	size_t len;
	uint8_t b[12];
	int ok;          /* expected: 1 accepted, 0 rejected */
	uint64_t v;      /* value when accepted */
	size_t used;     /* bytes consumed when accepted */
};

static int check_forms(const struct form *f, size_t nf, int is32)
{
	size_t i;

	for (i = 0; i < nf; i++) {
		uint8_t *heap = exact_copy(f[i].b, f[i].len);
		const uint8_t *p = heap;
		uint64_t v64 = 0;
		uint32_t v32 = 0;
		int rc;

		if (heap == NULL)
			return 0;
		if (is32) {
			rc = lsm_decode_varint32(&p, heap + f[i].len, &v32);
			v64 = v32;
		} else
			rc = lsm_decode_varint64(&p, heap + f[i].len, &v64);
		if (f[i].ok ? (rc != LSM_OK || v64 != f[i].v || p != heap + f[i].used)
		            : (rc != LSM_CORRUPTION || p != heap)) {
			fprintf(stderr, "    varint%d form %zu: rc %d value 0x%" PRIx64
			        " used %td\n", is32 ? 32 : 64, i, rc, v64, p - heap);
			free(heap);
			return 0;
		}
		free(heap);
	}
	return 1;
}

TEST(varint32_overlong)
{
	static const struct form forms[] = {
		/* The longest legal forms. */
		{5, {0xff, 0xff, 0xff, 0xff, 0x0f}, 1, UINT32_MAX, 5},
		{5, {0x80, 0x80, 0x80, 0x80, 0x0f}, 1, 0xf0000000u, 5},
		/* Non-minimal but within 5 bytes: accepted (see coding.c). */
		{2, {0x80, 0x00}, 1, 0, 2},
		{5, {0x80, 0x80, 0x80, 0x80, 0x00}, 1, 0, 5},
		/* 5th byte with bit 32 or above set. */
		{5, {0xff, 0xff, 0xff, 0xff, 0x10}, 0, 0, 0},
		{5, {0xff, 0xff, 0xff, 0xff, 0x1f}, 0, 0, 0},
		{5, {0x80, 0x80, 0x80, 0x80, 0x7f}, 0, 0, 0},
		/* 5th byte continues: more than 5 bytes.  The 5-byte buffers
		 * also prove the decoder does not look for a 6th. */
		{5, {0x80, 0x80, 0x80, 0x80, 0x80}, 0, 0, 0},
		{5, {0xff, 0xff, 0xff, 0xff, 0xff}, 0, 0, 0},
		{6, {0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, 0, 0},
		{6, {0xff, 0xff, 0xff, 0xff, 0x8f, 0x00}, 0, 0, 0},
	};

	CHECK(check_forms(forms, sizeof forms / sizeof forms[0], 1));
}

TEST(varint64_overlong)
{
	static const struct form forms[] = {
		{10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 1, UINT64_MAX, 10},
		{10, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 1, UINT64_C(1) << 63, 10},
		{2, {0x80, 0x00}, 1, 0, 2},
		{10, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 1, 0, 10},
		/* 10th byte with bits beyond 64. */
		{10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 0, 0, 0},
		{10, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, 0, 0, 0},
		/* 10th byte continues. */
		{10, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, 0, 0, 0},
		{10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81}, 0, 0, 0},
		{11, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, 0, 0},
		{12, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0, 0, 0},
	};

	CHECK(check_forms(forms, sizeof forms / sizeof forms[0], 0));
}

TEST(varint_random_stream)
{
	enum { N = 20000 };
	static uint64_t vals[N];
	lsm_buf b;
	lsm_reader r;
	test_rng rng;
	uint8_t *heap;
	size_t i, total = 0;

	test_rng_seed(&rng, 21);
	lsm_buf_init(&b);
	for (i = 0; i < N; i++) {
		/* Uniform bit width, so short and long encodings are equally common. */
		unsigned bits = (unsigned)test_rng_uniform(&rng, 65);

		vals[i] = bits == 0 ? 0 : test_rng_next(&rng) >> (64 - bits);
		if (i % 2) {
			vals[i] &= UINT32_MAX;
			lsm_buf_put_varint32(&b, (uint32_t)vals[i]);
		} else
			lsm_buf_put_varint64(&b, vals[i]);
		total += lsm_varint_length(vals[i]);
	}
	CHECK_OK(b.err);
	CHECK_EQ_U64(b.len, total);
	heap = exact_copy(b.data, b.len);
	CHECK(heap != NULL);
	lsm_reader_init(&r, heap, b.len);
	for (i = 0; i < N; i++) {
		uint64_t got = i % 2 ? lsm_reader_varint32(&r) : lsm_reader_varint64(&r);

		CHECK_MSG(got == vals[i] && r.err == 0, "value %zu", i);
	}
	CHECK_EQ_U64(lsm_reader_remaining(&r), 0);
	free(heap);
	lsm_buf_free(&b);
}

TEST(zigzag)
{
	static const struct { int64_t s; uint64_t u; } cases[] = {
		{0, 0}, {-1, 1}, {1, 2}, {-2, 3}, {2, 4}, {-64, 127}, {64, 128},
		{INT32_MAX, UINT64_C(0xfffffffe)}, {INT32_MIN, UINT64_C(0xffffffff)},
		{INT64_MAX, UINT64_MAX - 1}, {INT64_MIN, UINT64_MAX},
	};
	test_rng r;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECK_EQ_U64(lsm_zigzag_encode(cases[i].s), cases[i].u);
		CHECK_EQ_INT(lsm_zigzag_decode(cases[i].u), cases[i].s);
	}
	test_rng_seed(&r, 22);
	for (i = 0; i < 100000; i++) {
		int64_t v = (int64_t)test_rng_next(&r) >> test_rng_uniform(&r, 64);

		CHECK_EQ_INT(lsm_zigzag_decode(lsm_zigzag_encode(v)), v);
	}
	/* Small magnitudes of either sign stay short. */
	CHECK_EQ_U64(lsm_varint_length(lsm_zigzag_encode(-64)), 1);
	CHECK_EQ_U64(lsm_varint_length(lsm_zigzag_encode(-65)), 2);
}

TEST(fixed_little_endian)
{
	uint8_t b[8];

	lsm_put_fixed32(b, 0x04030201u);
	CHECK_MEM(b, 4, "\x01\x02\x03\x04", 4);
	CHECK_EQ_U64(lsm_get_fixed32(b), 0x04030201u);
	lsm_put_fixed64(b, UINT64_C(0x0807060504030201));
	CHECK_MEM(b, 8, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	CHECK_EQ_U64(lsm_get_fixed64(b), UINT64_C(0x0807060504030201));
	lsm_put_fixed64(b, UINT64_MAX);
	CHECK_EQ_U64(lsm_get_fixed64(b), UINT64_MAX);
}

TEST(reader_sequence)
{
	static const uint8_t src[] = {
		0x7a,                                           /* u8 */
		0x01, 0x02, 0x03, 0x04,                         /* u32 */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88, /* u64 */
		0xac, 0x02,                                     /* varint32 300 */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, /* varint64 */
		'a', 'b', 'c',                                  /* bytes(3) */
		0x02, 'x', 'y',                                 /* lenprefixed */
		0x00,                                           /* empty lenprefixed */
	};
	uint8_t *heap = exact_copy(src, sizeof src);
	lsm_reader r;
	const uint8_t *q;
	size_t n = 99;

	CHECK(heap != NULL);
	lsm_reader_init(&r, heap, sizeof src);
	CHECK_EQ_U64(lsm_reader_remaining(&r), sizeof src);
	CHECK_EQ_U64(lsm_reader_u8(&r), 0x7a);
	CHECK_EQ_U64(lsm_reader_u32(&r), 0x04030201u);
	CHECK_EQ_U64(lsm_reader_u64(&r), UINT64_C(0x8807060504030201));
	CHECK_EQ_U64(lsm_reader_varint32(&r), 300);
	CHECK_EQ_U64(lsm_reader_varint64(&r), UINT64_MAX);
	q = lsm_reader_bytes(&r, 3);
	CHECK(q == heap + 25);
	q = lsm_reader_lenprefixed(&r, &n);
	CHECK_MEM(q, n, "xy", 2);
	q = lsm_reader_lenprefixed(&r, &n);
	CHECK(q == heap + sizeof src);
	CHECK_EQ_U64(n, 0);
	CHECK_OK(r.err);
	CHECK_EQ_U64(lsm_reader_remaining(&r), 0);
	/* Zero bytes at the very end are still available... */
	CHECK(lsm_reader_bytes(&r, 0) == heap + sizeof src);
	CHECK_OK(r.err);
	/* ...one more is not. */
	CHECK_EQ_U64(lsm_reader_u8(&r), 0);
	CHECK_EQ_INT(r.err, LSM_CORRUPTION);
	free(heap);
}

/* Each getter on input one byte too short: error, zero, cursor unmoved. */
TEST(reader_each_getter_short)
{
	static const uint8_t src[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	enum { U8, U32, U64, V32, V64, BYTES, LENP, NKIND };
	int kind;

	for (kind = 0; kind < NKIND; kind++) {
		/* Bytes available: one fewer than the getter needs. */
		static const size_t avail[NKIND] = {0, 3, 7, 4, 9, 5, 3};
		uint8_t lp[3] = {0x05, 'a', 'b'};  /* length 5, only 2 bytes */
		uint8_t *heap = exact_copy(kind == LENP ? lp : src, avail[kind]);
		lsm_reader r;
		uint64_t v = 1;
		const uint8_t *q = heap;
		size_t n = 7;

		CHECK(heap != NULL);
		lsm_reader_init(&r, heap, avail[kind]);
		switch (kind) {
		case U8: v = lsm_reader_u8(&r); break;
		case U32: v = lsm_reader_u32(&r); break;
		case U64: v = lsm_reader_u64(&r); break;
		case V32: v = lsm_reader_varint32(&r); break;
		case V64: v = lsm_reader_varint64(&r); break;
		case BYTES: q = lsm_reader_bytes(&r, 6); v = 0; break;
		case LENP: q = lsm_reader_lenprefixed(&r, &n); v = n; break;
		}
		CHECK_MSG(r.err == LSM_CORRUPTION, "kind %d", kind);
		CHECK_MSG(v == 0, "kind %d", kind);
		CHECK_MSG(r.p == heap, "kind %d moved the cursor", kind);
		CHECK_MSG(q == heap || q == NULL, "kind %d", kind);
		if (kind == BYTES || kind == LENP)
			CHECK_MSG(q == NULL, "kind %d", kind);
		CHECK_EQ_U64(lsm_reader_remaining(&r), 0);
		free(heap);
	}
}

TEST(reader_sticky_error)
{
	uint8_t src[12];
	uint8_t *heap;
	lsm_reader r;
	const uint8_t *at;
	size_t n = 5;

	memset(src, 0x01, sizeof src);
	heap = exact_copy(src, sizeof src);
	CHECK(heap != NULL);
	lsm_reader_init(&r, heap, sizeof src);
	CHECK_EQ_U64(lsm_reader_u64(&r), UINT64_C(0x0101010101010101));
	CHECK_EQ_U64(lsm_reader_bytes(&r, 5) == NULL, 1);   /* 4 left */
	CHECK_EQ_INT(r.err, LSM_CORRUPTION);
	at = r.p;
	CHECK(at == heap + 8);
	/* Bytes remain, but every get now fails and yields zero. */
	CHECK_EQ_U64(lsm_reader_remaining(&r), 0);
	CHECK_EQ_U64(lsm_reader_u8(&r), 0);
	CHECK_EQ_U64(lsm_reader_u32(&r), 0);
	CHECK_EQ_U64(lsm_reader_u64(&r), 0);
	CHECK_EQ_U64(lsm_reader_varint32(&r), 0);
	CHECK_EQ_U64(lsm_reader_varint64(&r), 0);
	CHECK(lsm_reader_bytes(&r, 0) == NULL);
	CHECK(lsm_reader_bytes(&r, 1) == NULL);
	CHECK(lsm_reader_lenprefixed(&r, &n) == NULL);
	CHECK_EQ_U64(n, 0);
	CHECK(r.p == at);
	CHECK_EQ_INT(r.err, LSM_CORRUPTION);
	/* A malformed varint sets the same error. */
	lsm_reader_init(&r, "\xff\xff\xff\xff\x10", 5);
	CHECK_EQ_U64(lsm_reader_varint32(&r), 0);
	CHECK_EQ_INT(r.err, LSM_CORRUPTION);
	CHECK_EQ_U64(lsm_reader_u8(&r), 0);
	free(heap);
}

/* A length prefix claiming more than the input holds, even an absurd one,
 * fails cleanly and leaves the cursor before the length. */
TEST(reader_lenprefixed_huge)
{
	uint8_t src[16];
	uint8_t *heap;
	size_t len, n = 1;
	lsm_reader r;

	len = lsm_encode_varint64(src, UINT64_C(1) << 40);
	memcpy(src + len, "data", 4);
	heap = exact_copy(src, len + 4);
	CHECK(heap != NULL);
	lsm_reader_init(&r, heap, len + 4);
	CHECK(lsm_reader_lenprefixed(&r, &n) == NULL);
	CHECK_EQ_U64(n, 0);
	CHECK_EQ_INT(r.err, LSM_CORRUPTION);
	CHECK(r.p == heap);
	free(heap);

	len = lsm_encode_varint64(src, UINT64_MAX);
	heap = exact_copy(src, len);
	CHECK(heap != NULL);
	lsm_reader_init(&r, heap, len);
	CHECK(lsm_reader_lenprefixed(&r, &n) == NULL);
	CHECK_EQ_INT(r.err, LSM_CORRUPTION);
	free(heap);
}

TEST(buf_contents)
{
	static const uint8_t want[] = {
		0x7a,
		0x01, 0x02, 0x03, 0x04,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88,
		0xac, 0x02,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
		'a', 'b', 'c',
		0x02, 'x', 'y',
		0x00,
	};
	lsm_buf b;

	lsm_buf_init(&b);
	CHECK(b.data == NULL && b.len == 0 && b.cap == 0 && b.err == 0);
	lsm_buf_put_u8(&b, 0x7a);
	lsm_buf_put_u32(&b, 0x04030201u);
	lsm_buf_put_u64(&b, UINT64_C(0x8807060504030201));
	lsm_buf_put_varint32(&b, 300);
	lsm_buf_put_varint64(&b, UINT64_MAX);
	lsm_buf_put_bytes(&b, "abc", 3);
	lsm_buf_put_bytes(&b, NULL, 0);
	lsm_buf_put_lenprefixed(&b, "xy", 2);
	lsm_buf_put_lenprefixed(&b, NULL, 0);
	CHECK_OK(b.err);
	CHECK_MEM(b.data, b.len, want, sizeof want);
	CHECK(b.cap >= b.len);

	/* reset keeps the allocation and starts over. */
	lsm_buf_reset(&b);
	CHECK_EQ_U64(b.len, 0);
	CHECK(b.cap >= sizeof want);
	lsm_buf_put_u8(&b, 9);
	CHECK_MEM(b.data, b.len, "\x09", 1);

	lsm_buf_free(&b);
	CHECK(b.data == NULL && b.len == 0 && b.cap == 0 && b.err == 0);
	lsm_buf_free(&b);   /* freeing a freed (zeroed) buffer is harmless */
	CHECK(b.data == NULL);
}

TEST(buf_growth)
{
	enum { N = 200000 };
	lsm_buf b;
	size_t i, last_cap = 0;
	int grows = 0;

	lsm_buf_init(&b);
	for (i = 0; i < N; i++) {
		lsm_buf_put_u8(&b, (uint8_t)(i * 7));
		CHECK(b.cap >= b.len);
		if (b.cap != last_cap) {
			/* Amortised O(1): every growth at least doubles. */
			CHECK_MSG(last_cap == 0 || b.cap >= 2 * last_cap,
			          "cap %zu -> %zu", last_cap, b.cap);
			last_cap = b.cap;
			grows++;
		}
	}
	CHECK_OK(b.err);
	CHECK_EQ_U64(b.len, N);
	CHECK(grows <= 20);                 /* log2(200000) ~ 17.6 */
	for (i = 0; i < N; i++)
		CHECK_MSG(b.data[i] == (uint8_t)(i * 7), "byte %zu", i);

	/* reserve makes room without changing len or contents. */
	CHECK_OK(lsm_buf_reserve(&b, 3 * b.cap));
	CHECK(b.cap - b.len >= 3 * last_cap);
	CHECK_EQ_U64(b.len, N);
	CHECK(b.data[N - 1] == (uint8_t)((N - 1) * 7));
	lsm_buf_free(&b);

	/* One large put from empty. */
	{
		uint8_t *big = malloc(1 << 20);

		CHECK(big != NULL);
		memset(big, 0x5c, 1 << 20);
		lsm_buf_put_bytes(&b, big, 1 << 20);
		CHECK_OK(b.err);
		CHECK_MEM(b.data, b.len, big, (size_t)1 << 20);
		free(big);
		lsm_buf_free(&b);
	}
}

TEST(buf_sticky_nomem)
{
	lsm_buf b;
	uint8_t *data_before;

	lsm_buf_init(&b);
	lsm_buf_put_bytes(&b, "hello", 5);
	CHECK_OK(b.err);
	data_before = b.data;

	/* Sizes no allocator can satisfy fail without calling it. */
	CHECK_EQ_INT(lsm_buf_reserve(&b, SIZE_MAX), LSM_NOMEM);
	CHECK_EQ_INT(b.err, LSM_NOMEM);
	CHECK(b.data == data_before);
	CHECK_MEM(b.data, b.len, "hello", 5);

	/* Sticky: even a tiny request, and every put, now fails. */
	CHECK_EQ_INT(lsm_buf_reserve(&b, 0), LSM_NOMEM);
	CHECK_EQ_INT(lsm_buf_reserve(&b, 1), LSM_NOMEM);
	lsm_buf_put_u8(&b, 1);
	lsm_buf_put_u32(&b, 1);
	lsm_buf_put_u64(&b, 1);
	lsm_buf_put_varint32(&b, 1);
	lsm_buf_put_varint64(&b, 1);
	lsm_buf_put_bytes(&b, "x", 1);
	lsm_buf_put_lenprefixed(&b, "x", 1);
	CHECK_MEM(b.data, b.len, "hello", 5);
	CHECK_EQ_INT(b.err, LSM_NOMEM);

	/* reset clears it. */
	lsm_buf_reset(&b);
	CHECK_OK(b.err);
	lsm_buf_put_bytes(&b, "ok", 2);
	CHECK_MEM(b.data, b.len, "ok", 2);

	/* A length-prefixed field too large to exist writes nothing at all
	 * (not even its length); the pointer is never read. */
	lsm_buf_put_lenprefixed(&b, "", (size_t)PTRDIFF_MAX + 1);
	CHECK_EQ_INT(b.err, LSM_NOMEM);
	CHECK_MEM(b.data, b.len, "ok", 2);
	lsm_buf_reset(&b);
	CHECK_EQ_INT(lsm_buf_reserve(&b, (size_t)PTRDIFF_MAX + 1), LSM_NOMEM);
	lsm_buf_free(&b);
	CHECK_OK(b.err);
}

TEST(buf_reader_roundtrip)
{
	test_rng r;
	lsm_buf b;
	lsm_reader rd;
	uint8_t payload[300];
	uint8_t *heap;
	int i;

	test_rng_seed(&r, 23);
	test_rng_fill(&r, payload, sizeof payload);
	lsm_buf_init(&b);
	for (i = 0; i < 300; i++)
		lsm_buf_put_lenprefixed(&b, payload, (size_t)i);
	CHECK_OK(b.err);
	heap = exact_copy(b.data, b.len);
	CHECK(heap != NULL);
	lsm_reader_init(&rd, heap, b.len);
	for (i = 0; i < 300; i++) {
		size_t n;
		const uint8_t *q = lsm_reader_lenprefixed(&rd, &n);

		CHECK_MSG(rd.err == 0, "field %d", i);
		CHECK_MEM(q, n, payload, (size_t)i);
	}
	CHECK_EQ_U64(lsm_reader_remaining(&rd), 0);
	free(heap);
	lsm_buf_free(&b);
}
