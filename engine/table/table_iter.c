/*
 * table_iter.c — the two-level iterator (index block -> data block) over an
 * SSTable's point entries, and point lookups built on it.
 *
 * Invariants
 *   - The iterator holds at most one data block at a time (pinned in the
 *     cache or privately owned, see lsm_table_load_block) and releases it
 *     as soon as it moves to another block, stops, fails or is destroyed.
 *   - Every data entry it yields has been checked: a key with a trailer,
 *     type PUT or DELETE, a DELETE without value.
 *   - An error is sticky: the iterator becomes invalid and keeps the code,
 *     so it never resumes past damage or yields a wrong entry.
 *   - Lookups first ask the bloom filter (a "no" is final), then seek to
 *     (key, pack(read_seq, SEEK)): the first entry at or after that target
 *     is the newest version of the key visible at read_seq, if its user key
 *     matches.  Versions of one key may span blocks: the seek moves on to
 *     the next block when the target lies past a block's last entry.
 */
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "format.h"
#include "hash.h"
#include "status.h"

typedef struct table_iter {
	lsm_iiter      base;        /* first: the vtable callers see */
	lsm_table     *t;
	int            fill_cache;
	int            status;
	lsm_block_iter index_it;
	lsm_block_iter data_it;
	int            have_block;
	uint64_t       block_off;
	lsm_block      blk;
	lsm_block_ref  ref;
	lsm_readahead  ra;          /* without the cache: reads run sequentially */
	uint8_t       *target;      /* encoded seek key: tinline or heap */
	size_t         target_cap;  /* of the heap buffer */
	uint8_t        tinline[96]; /* most seeks (and gets) need no malloc */
	void         (*unpin)(void *arg);   /* called once destroyed; may be NULL */
	void          *unpin_arg;
} table_iter;

static void ti_init(table_iter *ti, lsm_table *t, int fill_cache)
{
	memset(ti, 0, offsetof(table_iter, index_it));
	ti->t = t;
	ti->fill_cache = fill_cache;
	lsm_block_iter_init(&ti->index_it, &t->index, LSM_BLOCK_IKEYS);
	memset(&ti->blk, 0, sizeof ti->blk);
	lsm_block_iter_init(&ti->data_it, &ti->blk, LSM_BLOCK_IKEYS);
	ti->have_block = 0;
	memset(&ti->ref, 0, sizeof ti->ref);
	memset(&ti->ra, 0, sizeof ti->ra);
	ti->target = NULL;
	ti->target_cap = 0;
}

static void ti_release(table_iter *ti)
{
	if (ti->have_block)
		lsm_table_release_block(ti->t, &ti->ref);
	ti->have_block = 0;
	ti->data_it.valid = 0;
}

static void ti_cleanup(table_iter *ti)
{
	ti_release(ti);
	lsm_block_iter_free(&ti->index_it);
	lsm_block_iter_free(&ti->data_it);
	free(ti->target);
	ti->target = NULL;
	free(ti->ra.buf);
	memset(&ti->ra, 0, sizeof ti->ra);
}

static void ti_fail(table_iter *ti, int rc)
{
	if (ti->status == LSM_OK)
		ti->status = rc;
	ti_release(ti);
}

/* Damage inside a block whose checksum held (a writer's bug, or memory
 * corrupted before the block was written): note where, then fail. */
static void ti_corrupt(table_iter *ti, uint64_t block_off, const char *reason)
{
	lsm_error_note(ti->t->name, (int64_t)block_off, "%s", reason);
	ti_fail(ti, LSM_CORRUPTION);
}

/* Status of a block cursor that stopped: corruption is noted at the block. */
static void ti_cursor_failed(table_iter *ti, int rc, uint64_t block_off, const char *reason)
{
	if (rc == LSM_CORRUPTION)
		ti_corrupt(ti, block_off, reason);
	else
		ti_fail(ti, rc);
}

/* Loads the data block the index cursor names (reusing the current one). */
static int ti_load(table_iter *ti)
{
	lsm_block_handle h;
	int rc;

	if (lsm_block_iter_handle(&ti->index_it, &h) != LSM_OK)
		return lsm_error_note(ti->t->name, (int64_t)ti->t->index_h.offset,
		                      "bad block handle in the index block");
	if (ti->have_block && ti->block_off == h.offset) {
		lsm_block_iter_reset(&ti->data_it, &ti->blk);
		return LSM_OK;
	}
	ti_release(ti);
	rc = lsm_table_load_block(ti->t, &h, ti->fill_cache,
	                          ti->fill_cache ? NULL : &ti->ra, &ti->ref);
	if (rc != LSM_OK)
		return rc;
	ti->have_block = 1;
	ti->block_off = h.offset;
	if (lsm_block_parse(&ti->blk, ti->ref.data, ti->ref.len) != LSM_OK ||
	    ti->blk.limit == 0)        /* the builder writes no empty data block */
		return lsm_error_note(ti->t->name, (int64_t)h.offset,
		                      "bad restart array in a data block");
	lsm_block_iter_reset(&ti->data_it, &ti->blk);
	return LSM_OK;
}

/* After positioning the data cursor: moves past exhausted blocks and checks
 * the entry it lands on. */
static void ti_settle(table_iter *ti)
{
	while (!ti->data_it.valid) {
		int rc;

		if (ti->data_it.status != LSM_OK) {
			ti_cursor_failed(ti, ti->data_it.status, ti->block_off,
			                 "malformed entry in a data block");
			return;
		}
		lsm_block_iter_next(&ti->index_it);
		if (!ti->index_it.valid) {
			if (ti->index_it.status != LSM_OK)
				ti_cursor_failed(ti, ti->index_it.status, ti->t->index_h.offset,
				                 "malformed entry in the index block");
			else
				ti_release(ti);
			return;
		}
		rc = ti_load(ti);
		if (rc != LSM_OK) {
			ti_fail(ti, rc);
			return;
		}
		lsm_block_iter_seek_to_first(&ti->data_it);
	}
	{
		size_t klen;
		const uint8_t *k = lsm_block_iter_key(&ti->data_it, &klen);
		int type = lsm_trailer_type(lsm_get_fixed64(k + klen - LSM_TRAILER_SIZE));

		if ((type != LSM_TYPE_PUT && type != LSM_TYPE_DELETE) ||
		    (type == LSM_TYPE_DELETE && ti->data_it.vlen != 0))
			ti_corrupt(ti, ti->block_off, "entry of a type data blocks do not hold");
	}
}

static void ti_seek(table_iter *ti, const void *key, size_t klen, uint64_t trailer)
{
	size_t n = klen + LSM_TRAILER_SIZE;
	uint8_t *tgt;
	int rc;

	if (ti->status != LSM_OK)
		return;
	ti->data_it.valid = 0;
	if (n > sizeof ti->tinline && n > ti->target_cap) {
		uint8_t *p = realloc(ti->target, n);

		if (p == NULL) {
			ti_fail(ti, LSM_NOMEM);
			return;
		}
		ti->target = p;
		ti->target_cap = n;
	}
	tgt = n > sizeof ti->tinline ? ti->target : ti->tinline;
	if (klen)
		memcpy(tgt, key, klen);
	lsm_put_fixed64(tgt + klen, trailer);
	lsm_block_iter_seek(&ti->index_it, tgt, n);
	if (!ti->index_it.valid) {
		if (ti->index_it.status != LSM_OK)
			ti_cursor_failed(ti, ti->index_it.status, ti->t->index_h.offset,
			                 "malformed entry in the index block");
		else
			ti_release(ti);
		return;
	}
	rc = ti_load(ti);
	if (rc != LSM_OK) {
		ti_fail(ti, rc);
		return;
	}
	lsm_block_iter_seek(&ti->data_it, tgt, n);
	ti_settle(ti);
}

static void ti_seek_to_first(table_iter *ti)
{
	int rc;

	if (ti->status != LSM_OK)
		return;
	ti->data_it.valid = 0;
	lsm_block_iter_seek_to_first(&ti->index_it);
	if (!ti->index_it.valid) {
		if (ti->index_it.status != LSM_OK)
			ti_cursor_failed(ti, ti->index_it.status, ti->t->index_h.offset,
			                 "malformed entry in the index block");
		else
			ti_release(ti);
		return;
	}
	rc = ti_load(ti);
	if (rc != LSM_OK) {
		ti_fail(ti, rc);
		return;
	}
	lsm_block_iter_seek_to_first(&ti->data_it);
	ti_settle(ti);
}

static void ti_next(table_iter *ti)
{
	if (ti->status != LSM_OK || !ti->data_it.valid)
		return;
	lsm_block_iter_next(&ti->data_it);
	ti_settle(ti);
}

static int ti_valid(const table_iter *ti)
{
	return ti->status == LSM_OK && ti->data_it.valid;
}

/* ---- the lsm_iiter vtable */

static void it_seek(lsm_iiter *it, const void *key, size_t klen, uint64_t trailer)
{
	ti_seek((table_iter *)it, key, klen, trailer);
}

static void it_seek_to_first(lsm_iiter *it)
{
	ti_seek_to_first((table_iter *)it);
}

static void it_next(lsm_iiter *it)
{
	ti_next((table_iter *)it);
}

static int it_valid(const lsm_iiter *it)
{
	return ti_valid((const table_iter *)it);
}

static const uint8_t *it_key(const lsm_iiter *it, size_t *klen)
{
	const table_iter *ti = (const table_iter *)it;
	const uint8_t *k = lsm_block_iter_key(&ti->data_it, klen);

	*klen -= LSM_TRAILER_SIZE;
	return k;
}

static uint64_t it_trailer(const lsm_iiter *it)
{
	const table_iter *ti = (const table_iter *)it;
	size_t klen;
	const uint8_t *k = lsm_block_iter_key(&ti->data_it, &klen);

	return lsm_get_fixed64(k + klen - LSM_TRAILER_SIZE);
}

static const uint8_t *it_value(const lsm_iiter *it, size_t *vlen)
{
	const table_iter *ti = (const table_iter *)it;

	*vlen = ti->data_it.vlen;
	return ti->data_it.val;
}

static int it_status(const lsm_iiter *it)
{
	return ((const table_iter *)it)->status;
}

static void it_destroy(lsm_iiter *it)
{
	table_iter *ti = (table_iter *)it;

	if (ti == NULL)
		return;
	void (*unpin)(void *) = ti->unpin;
	void *arg = ti->unpin_arg;

	if (ti == NULL)
		return;
	ti_cleanup(ti);
	free(ti);
	if (unpin)
		unpin(arg);
}

int lsm_table_iter_create(lsm_table *t, int fill_cache, lsm_iiter **out)
{
	return lsm_table_iter_create_pinned(t, fill_cache, NULL, NULL, out);
}

int lsm_table_iter_create_pinned(lsm_table *t, int fill_cache,
                                 void (*unpin)(void *arg), void *arg,
                                 lsm_iiter **out)
{
	table_iter *ti = malloc(sizeof *ti);

	*out = NULL;
	if (ti == NULL)
		return LSM_NOMEM;
	ti_init(ti, t, fill_cache);
	ti->unpin = unpin;
	ti->unpin_arg = arg;
	ti->base.seek = it_seek;
	ti->base.seek_to_first = it_seek_to_first;
	ti->base.next = it_next;
	ti->base.valid = it_valid;
	ti->base.key = it_key;
	ti->base.trailer = it_trailer;
	ti->base.value = it_value;
	ti->base.status = it_status;
	ti->base.destroy = it_destroy;
	*out = &ti->base;
	return LSM_OK;
}

/* ------------------------------------------------------------ get */

int lsm_table_get(lsm_table *t, const void *key, size_t klen,
                  uint64_t read_seq, lsm_table_get_fn fn, void *arg)
{
	table_iter ti;
	int rc = LSM_NOTFOUND;

	if (t->filter != NULL) {
		LSM_TABLE_STAT_ADD(t, st_bloom_checks, 1);
		if (!lsm_bloom_may_contain(t->filter, t->filter_len,
		                           lsm_xxh64(key, klen, LSM_TABLE_BLOOM_SEED))) {
			LSM_TABLE_STAT_ADD(t, st_bloom_negatives, 1);
			return LSM_NOTFOUND;
		}
	}
	if (read_seq > LSM_MAX_SEQUENCE)
		read_seq = LSM_MAX_SEQUENCE;
	ti_init(&ti, t, 1);
	ti_seek(&ti, key, klen, lsm_pack_trailer(read_seq, LSM_TYPE_SEEK));
	if (ti_valid(&ti)) {
		size_t fklen;
		const uint8_t *fk = lsm_block_iter_key(&ti.data_it, &fklen);

		fklen -= LSM_TRAILER_SIZE;
		if (lsm_bytewise_compare(fk, fklen, key, klen) == 0)
			rc = fn ? fn(arg, lsm_get_fixed64(fk + fklen), ti.data_it.val,
			             ti.data_it.vlen) : LSM_OK;
	} else if (ti.status != LSM_OK) {
		rc = ti.status;
	}
	ti_cleanup(&ti);
	return rc;
}

typedef struct copy_arg {
	uint64_t *trailer;
	void    **val;
	size_t   *vlen;
} copy_arg;

static int copy_value(void *arg, uint64_t trailer, const uint8_t *val, size_t vlen)
{
	copy_arg *c = arg;

	*c->trailer = trailer;
	*c->val = NULL;
	*c->vlen = vlen;
	if (vlen == 0)
		return LSM_OK;
	*c->val = malloc(vlen);
	if (*c->val == NULL)
		return LSM_NOMEM;
	memcpy(*c->val, val, vlen);
	return LSM_OK;
}

int lsm_table_get_copy(lsm_table *t, const void *key, size_t klen,
                       uint64_t read_seq, uint64_t *trailer,
                       void **val, size_t *vlen)
{
	copy_arg c = { trailer, val, vlen };

	*val = NULL;
	*vlen = 0;
	*trailer = 0;
	return lsm_table_get(t, key, klen, read_seq, copy_value, &c);
}

uint64_t lsm_table_approximate_offset(lsm_table *t, const void *key,
                                      size_t klen, uint64_t trailer)
{
	lsm_block_iter it;
	uint64_t off = t->data_end;
	uint8_t *target = malloc(klen + LSM_TRAILER_SIZE);
	lsm_block_handle h;

	if (target == NULL)
		return off;
	if (klen)
		memcpy(target, key, klen);
	lsm_put_fixed64(target + klen, trailer);
	lsm_block_iter_init(&it, &t->index, LSM_BLOCK_IKEYS);
	lsm_block_iter_seek(&it, target, klen + LSM_TRAILER_SIZE);
	if (it.valid && lsm_block_iter_handle(&it, &h) == LSM_OK)
		off = h.offset;
	lsm_block_iter_free(&it);
	free(target);
	return off;
}
