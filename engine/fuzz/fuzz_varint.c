/*
 * fuzz_varint.c — the varint and block-handle decoders (util/coding.h,
 * table/format.h) on arbitrary bytes.
 *
 * Checked beyond "does not crash": a decode that fails leaves the cursor
 * where it was; one that succeeds consumes 1..10 bytes inside the input,
 * and the value's canonical encoding is no longer than what was consumed
 * and decodes back to the same value.
 */
#include "fuzz.h"
#include "coding.h"
#include "format.h"

static void check_roundtrip(uint64_t v, size_t consumed)
{
	uint8_t buf[16];
	const uint8_t *q = buf;
	uint64_t w = 0;
	size_t n = lsm_encode_varint64(buf, v);

	FUZZ_CHECK(n == lsm_varint_length(v));
	FUZZ_CHECK(n >= 1 && n <= consumed);
	FUZZ_CHECK(lsm_decode_varint64(&q, buf + n, &w) == LSM_OK && w == v && q == buf + n);
	FUZZ_CHECK(lsm_zigzag_decode(lsm_zigzag_encode((int64_t)v)) == (int64_t)v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *limit = data + size;

	while (p < limit) {
		const uint8_t *start = p;
		int kind = (int)((size_t)(p - data) % 3);
		int rc;

		if (kind == 0) {
			uint32_t v;

			rc = lsm_decode_varint32(&p, limit, &v);
			if (rc == LSM_OK) {
				FUZZ_CHECK(p - start <= 5);
				check_roundtrip(v, (size_t)(p - start));
			}
		} else if (kind == 1) {
			uint64_t v;

			rc = lsm_decode_varint64(&p, limit, &v);
			if (rc == LSM_OK) {
				FUZZ_CHECK(p - start <= 10);
				check_roundtrip(v, (size_t)(p - start));
			}
		} else {
			lsm_block_handle h;

			rc = lsm_block_handle_decode(&p, limit, &h);
			if (rc == LSM_OK) {
				uint8_t buf[LSM_BLOCK_HANDLE_MAX_LEN];
				const uint8_t *q = buf;
				lsm_block_handle h2;
				size_t n = lsm_block_handle_encode(buf, &h);

				FUZZ_CHECK(n <= (size_t)(p - start));
				FUZZ_CHECK(lsm_block_handle_decode(&q, buf + n, &h2) == LSM_OK);
				FUZZ_CHECK(h2.offset == h.offset && h2.size == h.size && q == buf + n);
			}
		}
		if (rc != LSM_OK) {
			FUZZ_CHECK(rc == LSM_CORRUPTION && p == start);
			p = start + 1;
		}
		FUZZ_CHECK(p > start && p <= limit);
	}
	return 0;
}
