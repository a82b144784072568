/*
 * batch.c — write batches: a process-local buffer of puts and deletes that
 * is applied atomically.
 *
 * The rep is exactly the payload of a WAL record (see dbint.h), so writing a
 * batch copies it once into the WAL buffer and once into memtable nodes.
 * The first 8 bytes (first sequence) are filled in by the writer at commit
 * time; a batch is never modified by lsm_write, so one batch may be written
 * repeatedly.
 *
 * Invariant: rep.len >= LSM_BATCH_HEADER and the count field equals the
 * number of entries, except after an allocation failure (rep.err set), which
 * lsm_write refuses.
 */
#include <stdlib.h>

#include "dbint.h"

int lsm_batch_create(lsm_batch **out)
{
	lsm_batch *b = calloc(1, sizeof *b);

	*out = NULL;
	if (b == NULL)
		return LSM_NOMEM;
	lsm_buf_init(&b->rep);
	lsm_batch_clear(b);
	if (b->rep.err) {
		lsm_batch_destroy(b);
		return LSM_NOMEM;
	}
	*out = b;
	return LSM_OK;
}

void lsm_batch_clear(lsm_batch *b)
{
	static const uint8_t zero[LSM_BATCH_HEADER];

	lsm_buf_reset(&b->rep);
	lsm_buf_put_bytes(&b->rep, zero, sizeof zero);
	b->count = 0;
}

uint32_t lsm_batch_count(const lsm_batch *b)
{
	return b->count;
}

void lsm_batch_destroy(lsm_batch *b)
{
	if (b == NULL)
		return;
	lsm_buf_free(&b->rep);
	free(b);
}

static int batch_add(lsm_batch *b, int type, const void *key, size_t klen,
                     const void *val, size_t vlen)
{
	if (klen > LSM_MAX_KEY_SIZE || vlen > LSM_MAX_VALUE_SIZE)
		return LSM_TOOBIG;
	if (b->count == UINT32_MAX || b->rep.len + klen + vlen > (size_t)UINT32_MAX - 64)
		return LSM_TOOBIG;
	if (b->rep.err)
		return LSM_NOMEM;
	lsm_buf_put_u8(&b->rep, (uint8_t)type);
	lsm_buf_put_lenprefixed(&b->rep, key, klen);
	if (type != LSM_TYPE_DELETE)
		lsm_buf_put_lenprefixed(&b->rep, val, vlen);
	if (b->rep.err)
		return LSM_NOMEM;
	b->count++;
	lsm_put_fixed32(b->rep.data + 8, b->count);
	return LSM_OK;
}

int lsm_batch_put(lsm_batch *b, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
	return batch_add(b, LSM_TYPE_PUT, key, klen, val, vlen);
}

int lsm_batch_delete(lsm_batch *b, const void *key, size_t klen)
{
	return batch_add(b, LSM_TYPE_DELETE, key, klen, NULL, 0);
}

int lsm_batch_delete_range(lsm_batch *b, const void *start, size_t slen,
                           const void *end, size_t elen)
{
	/* An empty range deletes nothing; refusing it keeps every stored
	 * tombstone meaningful (start < end), which readers rely on. */
	if (lsm_key_compare(start, slen, end, elen) >= 0)
		return LSM_INVALID;
	return batch_add(b, LSM_TYPE_RANGE_DELETE, start, slen, end, elen);
}

/* Decodes one entry; LSM_CORRUPTION on any malformed byte. */
static int read_entry(lsm_reader *r, lsm_batch_entry *e)
{
	size_t n;

	e->type = lsm_reader_u8(r);
	e->key = lsm_reader_lenprefixed(r, &n);
	e->klen = (uint32_t)n;
	e->val = NULL;
	e->vlen = 0;
	if (e->type == LSM_TYPE_PUT || e->type == LSM_TYPE_RANGE_DELETE) {
		e->val = lsm_reader_lenprefixed(r, &n);
		e->vlen = (uint32_t)n;
	} else if (e->type != LSM_TYPE_DELETE)
		return LSM_CORRUPTION;
	if (r->err || e->klen > LSM_MAX_KEY_SIZE)
		return LSM_CORRUPTION;
	if (e->type == LSM_TYPE_RANGE_DELETE &&
	    (e->vlen > LSM_MAX_KEY_SIZE ||
	     lsm_key_compare(e->key, e->klen, e->val, e->vlen) >= 0))
		return LSM_CORRUPTION;
	return LSM_OK;
}

int lsm_batch_rep_iterate(const uint8_t *rep, size_t len, uint64_t seq,
                          lsm_batch_visit_fn fn, void *arg)
{
	lsm_reader r;
	lsm_batch_entry e;
	uint32_t count, i;
	int rc;

	if (len < LSM_BATCH_HEADER)
		return LSM_CORRUPTION;
	count = lsm_batch_rep_count(rep);
	lsm_reader_init(&r, rep + LSM_BATCH_HEADER, len - LSM_BATCH_HEADER);
	for (i = 0; i < count; i++) {
		if (read_entry(&r, &e) != LSM_OK)
			return LSM_CORRUPTION;
		if (fn && (rc = fn(arg, seq + i, &e)) != LSM_OK)
			return rc;
	}
	return lsm_reader_remaining(&r) == 0 ? LSM_OK : LSM_CORRUPTION;
}

int lsm_batch_rep_validate(const uint8_t *rep, size_t len)
{
	uint64_t seq;
	uint32_t count;

	if (len < LSM_BATCH_HEADER)
		return LSM_CORRUPTION;
	seq = lsm_batch_rep_seq(rep);
	count = lsm_batch_rep_count(rep);
	if (seq == 0 || seq > LSM_MAX_SEQUENCE || count > LSM_MAX_SEQUENCE - seq + 1)
		return LSM_CORRUPTION;
	return lsm_batch_rep_iterate(rep, len, seq, NULL, NULL);
}
