/*
 * block.c — building and reading the blocks of an SSTable (format.h):
 * prefix-compressed entries, restart points, block handles.
 *
 * Invariants
 *   - The builder's output always parses: restart[0] == 0, offsets strictly
 *     increase and each starts an entry with shared == 0; the whole block
 *     stays within LSM_TABLE_MAX_BLOCK (an add that would pass it is
 *     refused with LSM_TOOBIG and changes nothing).
 *   - The reader trusts nothing in the bytes.  lsm_block_parse checks the
 *     restart array before any entry is looked at; every entry decode is
 *     bounded by the start of the restart array (varints included), checks
 *     shared <= the previous key's length and, for internal-key blocks,
 *     that the key holds a trailer.  A failure makes the iterator invalid
 *     with status LSM_CORRUPTION; it never reads outside the block.
 *   - An iterator's key lives in its own storage (inline, or a heap buffer
 *     when long), its value points into the block: both stay valid until
 *     the iterator moves.
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"

/* ------------------------------------------------------------ handles */

size_t lsm_block_handle_encode(uint8_t *p, const lsm_block_handle *h)
{
	size_t n = lsm_encode_varint64(p, h->offset);

	return n + lsm_encode_varint64(p + n, h->size);
}

int lsm_block_handle_decode(const uint8_t **p, const uint8_t *limit,
                            lsm_block_handle *h)
{
	const uint8_t *q = *p;

	if (lsm_decode_varint64(&q, limit, &h->offset) != LSM_OK ||
	    lsm_decode_varint64(&q, limit, &h->size) != LSM_OK)
		return LSM_CORRUPTION;
	*p = q;
	return LSM_OK;
}

/* ------------------------------------------------------------ builder */

void lsm_block_builder_init(lsm_block_builder *b, int restart_interval)
{
	memset(b, 0, sizeof *b);
	lsm_buf_init(&b->buf);
	lsm_buf_init(&b->restarts);
	lsm_buf_init(&b->last_key);
	b->interval = restart_interval < 1 ? 1 : restart_interval;
}

void lsm_block_builder_reset(lsm_block_builder *b)
{
	lsm_buf_reset(&b->buf);
	lsm_buf_reset(&b->restarts);
	lsm_buf_reset(&b->last_key);
	b->counter = 0;
	b->nentries = 0;
	b->finished = 0;
}

void lsm_block_builder_free(lsm_block_builder *b)
{
	lsm_buf_free(&b->buf);
	lsm_buf_free(&b->restarts);
	lsm_buf_free(&b->last_key);
}

size_t lsm_block_builder_estimate(const lsm_block_builder *b)
{
	if (b->finished)
		return b->buf.len;
	return b->buf.len + b->restarts.len + 4;
}

int lsm_block_builder_add(lsm_block_builder *b, const void *key, size_t klen,
                          const void *val, size_t vlen)
{
	size_t shared = 0;
	uint64_t need;
	int restart;

	if (b->finished)
		return LSM_INVALID;
	restart = b->counter == 0 || b->counter >= b->interval;
	if (!restart) {
		size_t n = klen < b->last_key.len ? klen : b->last_key.len;
		const uint8_t *k = key;

		while (shared < n && b->last_key.data[shared] == k[shared])
			shared++;
	}
	/* Worst case after this entry, restarts included: refuse rather than
	 * write a block whose offsets or size the reader would reject. */
	need = (uint64_t)b->buf.len + 3 * LSM_MAX_VARINT32_LEN +
	       (klen - shared) + (uint64_t)vlen + b->restarts.len + 8;
	if (klen > UINT32_MAX || vlen > UINT32_MAX || need > LSM_TABLE_MAX_BLOCK)
		return LSM_TOOBIG;
	if (restart) {
		lsm_buf_put_u32(&b->restarts, (uint32_t)b->buf.len);
		b->counter = 0;
	}
	lsm_buf_put_varint32(&b->buf, (uint32_t)shared);
	lsm_buf_put_varint32(&b->buf, (uint32_t)(klen - shared));
	lsm_buf_put_varint32(&b->buf, (uint32_t)vlen);
	lsm_buf_put_bytes(&b->buf, (const uint8_t *)key + shared, klen - shared);
	lsm_buf_put_bytes(&b->buf, val, vlen);
	/* last_key = key: keep the shared prefix, append the rest */
	b->last_key.len = shared;
	lsm_buf_put_bytes(&b->last_key, (const uint8_t *)key + shared, klen - shared);
	if (b->buf.err || b->restarts.err || b->last_key.err)
		return LSM_NOMEM;
	b->counter++;
	b->nentries++;
	return LSM_OK;
}

int lsm_block_builder_finish(lsm_block_builder *b, const uint8_t **data,
                             size_t *len)
{
	if (!b->finished) {
		size_t n = b->restarts.len / 4;

		lsm_buf_put_bytes(&b->buf, b->restarts.data, b->restarts.len);
		lsm_buf_put_u32(&b->buf, (uint32_t)n);
		if (b->buf.err)
			return LSM_NOMEM;
		b->finished = 1;
	}
	*data = b->buf.data;
	*len = b->buf.len;
	return LSM_OK;
}

/* ------------------------------------------------------------ reader */

int lsm_block_parse(lsm_block *b, const uint8_t *data, size_t size)
{
	uint32_t n, limit, prev = 0;

	memset(b, 0, sizeof *b);
	if (size < 4 || size > LSM_TABLE_MAX_BLOCK)
		return LSM_CORRUPTION;
	n = lsm_get_fixed32(data + size - 4);
	if (n > (size - 4) / 4)
		return LSM_CORRUPTION;
	limit = (uint32_t)(size - 4 - 4 * (size_t)n);
	if (n == 0 && limit != 0)
		return LSM_CORRUPTION;      /* entries but no restart point */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t r = lsm_get_fixed32(data + limit + 4 * (size_t)i);

		if ((i == 0 && r != 0) || (i > 0 && r <= prev) || r >= limit)
			return LSM_CORRUPTION;
		prev = r;
	}
	b->data = data;
	b->size = (uint32_t)size;
	b->limit = limit;
	b->nrestarts = n;
	return LSM_OK;
}

static inline uint32_t restart_at(const lsm_block *b, uint32_t i)
{
	return lsm_get_fixed32(b->data + b->limit + 4 * (size_t)i);
}

void lsm_block_iter_init(lsm_block_iter *it, const lsm_block *b, int kind)
{
	memset(it, 0, offsetof(lsm_block_iter, kinline));
	it->blk = *b;
	it->kind = kind;
}

void lsm_block_iter_reset(lsm_block_iter *it, const lsm_block *b)
{
	it->blk = *b;
	it->valid = 0;
	it->status = LSM_OK;
	it->klen = 0;
}

void lsm_block_iter_free(lsm_block_iter *it)
{
	free(it->kheap);
	it->kheap = NULL;
	it->kcap = 0;
	it->valid = 0;
}

static void fail(lsm_block_iter *it, int rc)
{
	it->valid = 0;
	it->status = rc;
}

/* Makes room for a key of n bytes, keeping the first `keep` bytes. */
static int key_reserve(lsm_block_iter *it, size_t n, size_t keep)
{
	uint8_t *p;
	size_t cap;

	if (n <= sizeof it->kinline && it->kheap == NULL)
		return LSM_OK;
	if (it->kheap != NULL && n <= it->kcap)
		return LSM_OK;
	cap = it->kcap ? it->kcap : 256;
	while (cap < n)
		cap *= 2;
	p = realloc(it->kheap, cap);
	if (p == NULL)
		return LSM_NOMEM;
	if (it->kheap == NULL && keep)
		memcpy(p, it->kinline, keep);
	it->kheap = p;
	it->kcap = cap;
	return LSM_OK;
}

/*
 * Decodes the entry at offset off into the iterator, building its key from
 * the current key's first `shared` bytes (so a caller that sets klen = 0
 * first, as seeks to restart points do, rejects any shared prefix).
 */
static int decode_entry(lsm_block_iter *it, uint32_t off)
{
	const uint8_t *base = it->blk.data;
	const uint8_t *p = base + off, *limit = base + it->blk.limit;
	uint32_t shared, nonshared, vlen;
	size_t klen;

	if (off >= it->blk.limit ||
	    lsm_decode_varint32(&p, limit, &shared) != LSM_OK ||
	    lsm_decode_varint32(&p, limit, &nonshared) != LSM_OK ||
	    lsm_decode_varint32(&p, limit, &vlen) != LSM_OK)
		return LSM_CORRUPTION;
	if (shared > it->klen ||
	    (uint64_t)nonshared + vlen > (uint64_t)(limit - p))
		return LSM_CORRUPTION;
	klen = (size_t)shared + nonshared;
	if (it->kind == LSM_BLOCK_IKEYS && klen < LSM_TRAILER_SIZE)
		return LSM_CORRUPTION;
	if (key_reserve(it, klen, shared) != LSM_OK)
		return LSM_NOMEM;
	memcpy((it->kheap ? it->kheap : it->kinline) + shared, p, nonshared);
	it->klen = klen;
	it->shared = shared;
	it->val = p + nonshared;
	it->vlen = vlen;
	it->cur = off;
	it->next = (uint32_t)(p + nonshared + vlen - base);
	it->valid = 1;
	return LSM_OK;
}

void lsm_block_iter_seek_to_first(lsm_block_iter *it)
{
	int rc;

	if (it->status != LSM_OK)
		return;
	it->valid = 0;
	it->klen = 0;
	if (it->blk.limit == 0)
		return;
	rc = decode_entry(it, 0);
	if (rc != LSM_OK)
		fail(it, rc);
}

void lsm_block_iter_next(lsm_block_iter *it)
{
	int rc;

	if (!it->valid)
		return;
	if (it->next >= it->blk.limit) {
		it->valid = 0;
		return;
	}
	rc = decode_entry(it, it->next);
	if (rc != LSM_OK)
		fail(it, rc);
}

static int compare(const lsm_block_iter *it, const uint8_t *a, size_t alen,
                   const uint8_t *b, size_t blen)
{
	if (it->kind == LSM_BLOCK_IKEYS)
		return lsm_enc_ikey_compare(a, alen, b, blen);
	return lsm_bytewise_compare(a, alen, b, blen);
}

void lsm_block_iter_seek(lsm_block_iter *it, const uint8_t *target, size_t tlen)
{
	uint32_t lo = 0, hi;
	const uint8_t *k;
	size_t klen;
	int rc;

	if (it->status != LSM_OK)
		return;
	it->valid = 0;
	if (it->kind == LSM_BLOCK_IKEYS && tlen < LSM_TRAILER_SIZE) {
		fail(it, LSM_INVALID);
		return;
	}
	if (it->blk.nrestarts == 0)
		return;
	/* Binary search for the last restart point whose key < target. */
	hi = it->blk.nrestarts - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo + 1) / 2;

		it->klen = 0;           /* restart entries have shared == 0 */
		rc = decode_entry(it, restart_at(&it->blk, mid));
		if (rc != LSM_OK) {
			fail(it, rc);
			return;
		}
		k = lsm_block_iter_key(it, &klen);
		if (compare(it, k, klen, target, tlen) < 0)
			lo = mid;
		else
			hi = mid - 1;
	}
	/* Linear scan from there to the first key >= target. */
	it->klen = 0;
	rc = decode_entry(it, restart_at(&it->blk, lo));
	while (rc == LSM_OK) {
		k = lsm_block_iter_key(it, &klen);
		if (compare(it, k, klen, target, tlen) >= 0)
			return;
		if (it->next >= it->blk.limit) {
			it->valid = 0;
			return;
		}
		rc = decode_entry(it, it->next);
	}
	fail(it, rc);
}

int lsm_block_check(const lsm_block *b, int kind, const char **why)
{
	lsm_block_iter it;
	uint8_t *prev = NULL;
	size_t prevlen = 0, cap = 0;
	uint32_t ri = 0;
	int rc = LSM_OK;

	lsm_block_iter_init(&it, b, kind);
	lsm_block_iter_seek_to_first(&it);
	for (; it.valid; lsm_block_iter_next(&it)) {
		const uint8_t *k;
		size_t klen;

		if (ri < b->nrestarts && it.cur == restart_at(b, ri)) {
			if (it.shared != 0) {
				*why = "restart point with a shared key prefix";
				rc = LSM_CORRUPTION;
				break;
			}
			ri++;
		} else if (ri < b->nrestarts && it.cur > restart_at(b, ri)) {
			*why = "restart point inside an entry";
			rc = LSM_CORRUPTION;
			break;
		}
		k = lsm_block_iter_key(&it, &klen);
		if (prev != NULL && compare(&it, prev, prevlen, k, klen) >= 0) {
			*why = "keys out of order within a block";
			rc = LSM_CORRUPTION;
			break;
		}
		if (klen > cap || prev == NULL) {
			uint8_t *p = realloc(prev, klen ? klen : 1);

			if (p == NULL) {
				rc = LSM_NOMEM;
				break;
			}
			prev = p;
			cap = klen;
		}
		if (klen)
			memcpy(prev, k, klen);
		prevlen = klen;
	}
	if (rc == LSM_OK && it.status != LSM_OK) {
		rc = it.status;
		*why = "malformed entry";
	}
	if (rc == LSM_OK && ri != b->nrestarts) {
		*why = "restart point not at an entry";
		rc = LSM_CORRUPTION;
	}
	free(prev);
	lsm_block_iter_free(&it);
	return rc;
}
