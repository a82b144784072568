/*
 * coding.h — fixed-width little-endian integers, varints (LEB128, as in
 * protobuf and LevelDB), zigzag, and bounded buffer readers and growable
 * buffer writers.
 *
 * Invariants
 *   - No decoder reads a byte at or past its `limit`.  A truncated varint,
 *     or one longer than its type allows (more than 5 bytes for 32 bits,
 *     10 for 64, or high bits set beyond the type), is an error.
 *   - A lsm_reader error is sticky: after the first failure every get_*
 *     returns LSM_CORRUPTION and yields zeros, so a parser may check once at
 *     the end.
 *   - A lsm_buf error is sticky too (LSM_NOMEM after a failed realloc).
 */
#ifndef LSM_CODING_H
#define LSM_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LSM_MAX_VARINT32_LEN 5
#define LSM_MAX_VARINT64_LEN 10

static inline void lsm_put_fixed32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static inline void lsm_put_fixed64(uint8_t *p, uint64_t v)
{
	lsm_put_fixed32(p, (uint32_t)v);
	lsm_put_fixed32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t lsm_get_fixed32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
	       ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t lsm_get_fixed64(const uint8_t *p)
{
	return (uint64_t)lsm_get_fixed32(p) | ((uint64_t)lsm_get_fixed32(p + 4) << 32);
}

static inline uint64_t lsm_zigzag_encode(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t lsm_zigzag_decode(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Writes v at p (room for LSM_MAX_VARINT*_LEN bytes); returns bytes written. */
size_t lsm_encode_varint32(uint8_t *p, uint32_t v);
size_t lsm_encode_varint64(uint8_t *p, uint64_t v);
/* Bytes lsm_encode_varint64(v) writes. */
size_t lsm_varint_length(uint64_t v);

/* Decodes at *p, never reading at or past limit.  On LSM_OK advances *p;
 * on LSM_CORRUPTION (truncated or overlong) leaves *p alone. */
int lsm_decode_varint32_slow(const uint8_t **p, const uint8_t *limit, uint32_t *v);
/* Inline for the common one-byte case: block entries decode three varints
 * per entry, and a call each was 6% of a random read. */
static inline int lsm_decode_varint32(const uint8_t **p, const uint8_t *limit, uint32_t *v)
{
	if (*p < limit && **p < 0x80) {
		*v = **p;
		(*p)++;
		return 0;   /* LSM_OK */
	}
	return lsm_decode_varint32_slow(p, limit, v);
}
int lsm_decode_varint64(const uint8_t **p, const uint8_t *limit, uint64_t *v);

/* ---- bounded reader */
typedef struct lsm_reader {
	const uint8_t *p;
	const uint8_t *end;
	int err;            /* LSM_OK or LSM_CORRUPTION, sticky */
} lsm_reader;

static inline void lsm_reader_init(lsm_reader *r, const void *data, size_t n)
{
	r->p = (const uint8_t *)data;
	r->end = n ? r->p + n : r->p;   /* (NULL, 0) is a valid empty input */
	r->err = 0;
}

static inline size_t lsm_reader_remaining(const lsm_reader *r)
{
	return r->err ? 0 : (size_t)(r->end - r->p);
}

uint8_t  lsm_reader_u8(lsm_reader *r);
uint32_t lsm_reader_u32(lsm_reader *r);          /* little-endian */
uint64_t lsm_reader_u64(lsm_reader *r);          /* little-endian */
uint32_t lsm_reader_varint32(lsm_reader *r);
uint64_t lsm_reader_varint64(lsm_reader *r);
/* n bytes in place (no copy); NULL (and the error set) when fewer remain. */
const uint8_t *lsm_reader_bytes(lsm_reader *r, size_t n);
/* varint length followed by that many bytes. */
const uint8_t *lsm_reader_lenprefixed(lsm_reader *r, size_t *n);

/* ---- growable writer */
typedef struct lsm_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int err;            /* LSM_OK or LSM_NOMEM, sticky */
} lsm_buf;

void lsm_buf_init(lsm_buf *b);
void lsm_buf_free(lsm_buf *b);
static inline void lsm_buf_reset(lsm_buf *b) { b->len = 0; b->err = 0; }
/* Makes room for n more bytes; returns LSM_OK or LSM_NOMEM. */
int  lsm_buf_reserve(lsm_buf *b, size_t n);
void lsm_buf_put_u8(lsm_buf *b, uint8_t v);
void lsm_buf_put_u32(lsm_buf *b, uint32_t v);
void lsm_buf_put_u64(lsm_buf *b, uint64_t v);
void lsm_buf_put_varint32(lsm_buf *b, uint32_t v);
void lsm_buf_put_varint64(lsm_buf *b, uint64_t v);
void lsm_buf_put_bytes(lsm_buf *b, const void *p, size_t n);
void lsm_buf_put_lenprefixed(lsm_buf *b, const void *p, size_t n);

#endif
