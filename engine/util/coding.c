/*
 * coding.c — varints, the bounded reader and the growable buffer declared
 * in coding.h.  Everything that parses bytes from disk goes through here,
 * so this file is where a corrupt file is stopped from becoming a crash.
 *
 * Invariants
 *   - A decoder dereferences p only after checking p < limit, so it never
 *     reads at or past limit whatever the input.  A varint is rejected when
 *     the input ends before its last byte, or when its last permitted byte
 *     (the 5th for 32 bits, the 10th for 64) carries bits beyond the type or
 *     a continuation bit; so each value has at most one accepted length per
 *     prefix and a decoder never consumes more than LSM_MAX_VARINT*_LEN.
 *     Non-minimal forms within those lengths (0x80 0x00 for 0) are accepted,
 *     as protobuf and LevelDB accept them; the encoders never produce them.
 *   - A failed decode leaves *p where it was.  A failed lsm_reader_* call
 *     leaves r->p where that call started and sets r->err; from then on
 *     every get returns 0 / NULL and lsm_reader_remaining() is 0.
 *   - A length-prefixed field's length is read as a varint64 and must fit
 *     size_t; for lengths below 2^32 (all the engine writes) the bytes are
 *     identical to a varint32, so formats documented as "varint32 len" are
 *     read correctly, and a larger length fails on the bytes that follow.
 *   - lsm_buf: data has cap bytes of which len are used; cap grows by
 *     doubling (amortised O(1) appends) and never past PTRDIFF_MAX, the
 *     largest object C lets us index.  When growth fails err becomes
 *     LSM_NOMEM, the old contents stay valid, and every put is a no-op until
 *     lsm_buf_reset.  A put writes all of its bytes or none of them, so a
 *     failed buffer never ends in half a field.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "lsm.h"

#define BUF_MIN_CAP 64
#define BUF_MAX_CAP ((size_t)PTRDIFF_MAX)

/* ------------------------------------------------------------ varints */

size_t lsm_encode_varint64(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

size_t lsm_encode_varint32(uint8_t *p, uint32_t v)
{
	return lsm_encode_varint64(p, v);
}

size_t lsm_varint_length(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/*
 * Decodes at most maxlen bytes; the maxlen-th byte must be <= lastmax, which
 * both forbids a continuation bit there and bounds the value to the type
 * (0x0f: 4 + 4*7 = 32 bits; 0x01: 1 + 9*7 = 64 bits).
 */
static int decode_varint(const uint8_t **pp, const uint8_t *limit,
                         unsigned maxlen, uint8_t lastmax, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t result = 0;
	unsigned i;

	for (i = 0; i < maxlen; i++) {
		uint8_t b;

		if (p >= limit)
			return LSM_CORRUPTION;
		b = *p++;
		if (i == maxlen - 1 && b > lastmax)
			return LSM_CORRUPTION;
		result |= (uint64_t)(b & 0x7f) << (7 * i);
		if (b < 0x80) {
			*pp = p;
			*v = result;
			return LSM_OK;
		}
	}
	return LSM_CORRUPTION;	/* not reached: lastmax < 0x80 ends the loop */
}

int lsm_decode_varint32_slow(const uint8_t **p, const uint8_t *limit, uint32_t *v)
{
	uint64_t r;
	int rc;

	rc = decode_varint(p, limit, LSM_MAX_VARINT32_LEN, 0x0f, &r);
	if (rc == LSM_OK)
		*v = (uint32_t)r;
	return rc;
}

int lsm_decode_varint64(const uint8_t **p, const uint8_t *limit, uint64_t *v)
{
	if (*p < limit && **p < 0x80) {
		*v = **p;
		(*p)++;
		return LSM_OK;
	}
	return decode_varint(p, limit, LSM_MAX_VARINT64_LEN, 0x01, v);
}

/* ------------------------------------------------------------ reader */

static void reader_fail(lsm_reader *r)
{
	r->err = LSM_CORRUPTION;
}

/* 1 when n more bytes can be read; otherwise sets the sticky error. */
static int reader_need(lsm_reader *r, size_t n)
{
	if (r->err)
		return 0;
	if ((size_t)(r->end - r->p) < n) {
		reader_fail(r);
		return 0;
	}
	return 1;
}

uint8_t lsm_reader_u8(lsm_reader *r)
{
	if (!reader_need(r, 1))
		return 0;
	return *r->p++;
}

uint32_t lsm_reader_u32(lsm_reader *r)
{
	uint32_t v;

	if (!reader_need(r, 4))
		return 0;
	v = lsm_get_fixed32(r->p);
	r->p += 4;
	return v;
}

uint64_t lsm_reader_u64(lsm_reader *r)
{
	uint64_t v;

	if (!reader_need(r, 8))
		return 0;
	v = lsm_get_fixed64(r->p);
	r->p += 8;
	return v;
}

uint32_t lsm_reader_varint32(lsm_reader *r)
{
	uint32_t v;

	if (r->err)
		return 0;
	if (lsm_decode_varint32(&r->p, r->end, &v) != LSM_OK) {
		reader_fail(r);
		return 0;
	}
	return v;
}

uint64_t lsm_reader_varint64(lsm_reader *r)
{
	uint64_t v;

	if (r->err)
		return 0;
	if (lsm_decode_varint64(&r->p, r->end, &v) != LSM_OK) {
		reader_fail(r);
		return 0;
	}
	return v;
}

const uint8_t *lsm_reader_bytes(lsm_reader *r, size_t n)
{
	const uint8_t *q;

	if (!reader_need(r, n))
		return NULL;
	q = r->p;
	r->p += n;
	return q;
}

const uint8_t *lsm_reader_lenprefixed(lsm_reader *r, size_t *n)
{
	const uint8_t *start = r->p;
	const uint8_t *q;
	uint64_t len;

	*n = 0;
	len = lsm_reader_varint64(r);
	if (r->err)
		return NULL;
#if SIZE_MAX < UINT64_MAX
	if (len > SIZE_MAX) {
		reader_fail(r);
		r->p = start;
		return NULL;
	}
#endif
	q = lsm_reader_bytes(r, (size_t)len);
	if (q == NULL && r->err) {
		r->p = start;
		return NULL;
	}
	*n = (size_t)len;
	return q;
}

/* ------------------------------------------------------------ buffer */

void lsm_buf_init(lsm_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = LSM_OK;
}

void lsm_buf_free(lsm_buf *b)
{
	free(b->data);
	lsm_buf_init(b);
}

static int buf_fail(lsm_buf *b)
{
	b->err = LSM_NOMEM;
	return LSM_NOMEM;
}

/* Grows cap to at least need (> cap, <= BUF_MAX_CAP). */
static int buf_grow(lsm_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
	uint8_t *data;

	while (cap < need) {
		if (cap > BUF_MAX_CAP / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	data = realloc(b->data, cap);
	if (data == NULL)
		return buf_fail(b);
	b->data = data;
	b->cap = cap;
	return LSM_OK;
}

int lsm_buf_reserve(lsm_buf *b, size_t n)
{
	if (b->err)
		return b->err;
	if (n <= b->cap - b->len)
		return LSM_OK;
	if (n > BUF_MAX_CAP - b->len)
		return buf_fail(b);
	return buf_grow(b, b->len + n);
}

void lsm_buf_put_u8(lsm_buf *b, uint8_t v)
{
	if (lsm_buf_reserve(b, 1) != LSM_OK)
		return;
	b->data[b->len++] = v;
}

void lsm_buf_put_u32(lsm_buf *b, uint32_t v)
{
	if (lsm_buf_reserve(b, 4) != LSM_OK)
		return;
	lsm_put_fixed32(b->data + b->len, v);
	b->len += 4;
}

void lsm_buf_put_u64(lsm_buf *b, uint64_t v)
{
	if (lsm_buf_reserve(b, 8) != LSM_OK)
		return;
	lsm_put_fixed64(b->data + b->len, v);
	b->len += 8;
}

void lsm_buf_put_varint32(lsm_buf *b, uint32_t v)
{
	if (lsm_buf_reserve(b, LSM_MAX_VARINT32_LEN) != LSM_OK)
		return;
	b->len += lsm_encode_varint32(b->data + b->len, v);
}

void lsm_buf_put_varint64(lsm_buf *b, uint64_t v)
{
	if (lsm_buf_reserve(b, LSM_MAX_VARINT64_LEN) != LSM_OK)
		return;
	b->len += lsm_encode_varint64(b->data + b->len, v);
}

void lsm_buf_put_bytes(lsm_buf *b, const void *p, size_t n)
{
	if (lsm_buf_reserve(b, n) != LSM_OK || n == 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void lsm_buf_put_lenprefixed(lsm_buf *b, const void *p, size_t n)
{
	/* Reserve the whole field first so a failure leaves no bare length. */
	if (n > BUF_MAX_CAP) {
		buf_fail(b);
		return;
	}
	if (lsm_buf_reserve(b, lsm_varint_length(n) + n) != LSM_OK)
		return;
	b->len += lsm_encode_varint64(b->data + b->len, n);
	if (n > 0) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
	}
}
