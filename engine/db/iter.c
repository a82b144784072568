/*
 * iter.c — the user-facing iterator: internal keys to user keys.
 *
 * It walks an internal iterator (today the memtable's; later a merge of
 * memtables and tables) and shows, for each user key, only the newest
 * version at or below its sequence, skipping keys whose newest such
 * version is a tombstone.  Bounds are applied here: a seek below the lower
 * bound starts at it, and iteration stops at the first key >= the upper
 * bound, so no caller ever sees a key outside [lower, upper).
 *
 * Invariant: when valid, `key` holds a copy of the current user key (the
 * internal iterator's memory may move on) and the internal iterator is
 * positioned on the entry whose value is current.
 */
#include <stdlib.h>
#include <string.h>

#include "dbint.h"

struct lsm_iter {
	lsm_db *db;
	lsm_iiter *in;
	uint64_t seq;
	int valid;
	int status;
	lsm_buf key;            /* current user key */
	lsm_buf lower, upper;
	int has_lower, has_upper;
};

/* Moves to the first visible entry at or after the internal position,
 * skipping every version of `skip` (if given) and of deleted keys. */
static void find_visible(lsm_iter *it, int skipping)
{
	lsm_iiter *in = it->in;
	const uint8_t *k;
	size_t klen;
	uint64_t t;

	it->valid = 0;
	for (; in->valid(in); in->next(in)) {
		k = in->key(in, &klen);
		t = in->trailer(in);
		if (lsm_trailer_seq(t) > it->seq)
			continue;
		if (skipping && lsm_key_compare(k, klen, it->key.data, it->key.len) == 0)
			continue;
		if (it->has_upper && lsm_key_compare(k, klen, it->upper.data, it->upper.len) >= 0)
			break;
		lsm_buf_reset(&it->key);
		lsm_buf_put_bytes(&it->key, k, klen);
		if (it->key.err) {
			it->status = LSM_NOMEM;
			return;
		}
		skipping = 1;
		if (lsm_trailer_type(t) == LSM_TYPE_DELETE)
			continue;
		it->valid = 1;
		return;
	}
	if (it->status == LSM_OK)
		it->status = in->status(in);
}

int lsm_iter_create(lsm_db *db, const lsm_read_options *ro, lsm_iter **out)
{
	lsm_iter *it;

	*out = NULL;
	if (db == NULL)
		return LSM_INVALID;
	if ((it = calloc(1, sizeof *it)) == NULL)
		return LSM_NOMEM;
	it->db = db;
	lsm_buf_init(&it->key);
	lsm_buf_init(&it->lower);
	lsm_buf_init(&it->upper);
	if (ro && ro->lower_bound) {
		it->has_lower = 1;
		lsm_buf_put_bytes(&it->lower, ro->lower_bound, ro->lower_bound_len);
	}
	if (ro && ro->upper_bound) {
		it->has_upper = 1;
		lsm_buf_put_bytes(&it->upper, ro->upper_bound, ro->upper_bound_len);
	}
	it->seq = lsm_db_read_sequence(db, ro ? ro->snapshot : NULL);
	it->in = lsm_mem_iter_create(lsm_region_arena(db->region));
	if (it->in == NULL || it->lower.err || it->upper.err) {
		lsm_iter_destroy(it);
		return LSM_NOMEM;
	}
	*out = it;
	return LSM_OK;
}

void lsm_iter_seek(lsm_iter *it, const void *key, size_t klen)
{
	if (it->has_lower && lsm_key_compare(key, klen, it->lower.data, it->lower.len) < 0) {
		key = it->lower.data;
		klen = it->lower.len;
	}
	it->in->seek(it->in, key, klen, lsm_pack_trailer(it->seq, LSM_TYPE_SEEK));
	find_visible(it, 0);
}

void lsm_iter_seek_to_first(lsm_iter *it)
{
	if (it->has_lower) {
		lsm_iter_seek(it, it->lower.data, it->lower.len);
		return;
	}
	it->in->seek_to_first(it->in);
	find_visible(it, 0);
}

void lsm_iter_next(lsm_iter *it)
{
	if (!it->valid)
		return;
	it->in->next(it->in);
	find_visible(it, 1);
}

int lsm_iter_valid(const lsm_iter *it)
{
	return it->valid;
}

const void *lsm_iter_key(const lsm_iter *it, size_t *klen)
{
	*klen = it->valid ? it->key.len : 0;
	return it->valid ? it->key.data : NULL;
}

const void *lsm_iter_value(const lsm_iter *it, size_t *vlen)
{
	if (!it->valid) {
		*vlen = 0;
		return NULL;
	}
	return it->in->value(it->in, vlen);
}

int lsm_iter_status(const lsm_iter *it)
{
	return it->status;
}

void lsm_iter_destroy(lsm_iter *it)
{
	if (it == NULL)
		return;
	if (it->in)
		it->in->destroy(it->in);
	lsm_buf_free(&it->key);
	lsm_buf_free(&it->lower);
	lsm_buf_free(&it->upper);
	free(it);
}
