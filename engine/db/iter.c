/*
 * iter.c — the user-facing iterator: internal keys to user keys.
 *
 * It walks the merged internal iterator of a read view (memtables and
 * SSTables, lsm_readview_iter) and shows, for each user key, only the newest
 * version at or below its sequence, skipping keys whose newest such
 * version is a tombstone.  Bounds are applied here: a seek below the lower
 * bound starts at it, and iteration stops at the first key >= the upper
 * bound, so no caller ever sees a key outside [lower, upper).
 *
 * Re-opening: an iterator pins its memtables, and a pinned arena cannot be
 * reused.  When a flush retires one of them (its contents are now in an
 * SSTable), the next step re-acquires a fresh read view and seeks past the
 * current key, at the same sequence, so the view is unchanged and the arena
 * is released.  Without this a scan that writes (UPDATE ... SET x = x + 1)
 * would stall its own writes forever.
 *
 * A writer that stalls because the only reusable arenas are pinned by its
 * own thread's iterators (the scan-and-update case again, when the writes
 * come before the scan's next step) makes those iterators re-open in
 * place first (lsm_iter_release_retired): they stay on the same entry,
 * whose key and value pointers therefore change — documented in lsm.h.
 *
 * A run of versions of one key that the iterator cannot show (older than
 * the one it showed, or newer than its sequence) is passed by a re-seek
 * once LSM_ITER_MAX_SKIPS of them were stepped over, as RocksDB's
 * max_sequential_skip_in_iterations: a row updated in place thousands of
 * times since the last flush otherwise costs every scan thousands of steps.
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
	lsm_readview rv;
	lsm_iiter *in;
	uint64_t seq;
	uint64_t retired_seen;  /* region n_retired when rv was acquired */
	lsm_rdel_set rdels;     /* range tombstones visible at seq, fragmented */
	/* Without a caller's snapshot the iterator takes its own: it re-opens
	 * its sources as flushes go by, and compaction must keep what a read
	 * at `seq` needs until it is done. */
	const lsm_snapshot *own_snap;
	int valid;
	int status;
	lsm_buf key;            /* current user key */
	lsm_buf skip_to;        /* where a re-seek past a run of versions goes */
	/* Parked: a re-open in place found the current entry gone (a
	 * compaction filter removed it); the caller still sees the entry as it
	 * was (held_key, held_value) while the sources already stand on the
	 * next visible entry (`valid`, `key`), where lsm_iter_next arrives. */
	int parked;
	lsm_buf held_key, held_value;
	lsm_buf lower, upper;
	int has_lower, has_upper;
	int fill_cache;         /* 0: a scan that should not evict the cache */
	/* the db's list of open iterators, for lsm_iter_release_retired */
	pthread_t owner;
	int registered;
	lsm_iter *prev_open, *next_open;
};

/* Moves to the first visible entry at or after the internal position,
 * skipping every version of `skip` (if given) and of deleted keys. */
#define LSM_ITER_MAX_SKIPS 8

/* After a run of passed-over entries, the current one k included: seek to
 * the first entry of k at or below the sequence, or past every version of
 * k when it is the key already shown.  0: out of memory. */
static int reseek_past_run(lsm_iter *it, const uint8_t *k, size_t klen, int shown)
{
	lsm_buf_reset(&it->skip_to);
	lsm_buf_put_bytes(&it->skip_to, k, klen);
	if (it->skip_to.err) {
		it->status = LSM_NOMEM;
		return 0;
	}
	/* trailer 0 sorts after every version of the key */
	it->in->seek(it->in, it->skip_to.data, it->skip_to.len,
	             shown ? 0 : lsm_pack_trailer(it->seq, LSM_TYPE_SEEK));
	return 1;
}

static void find_visible(lsm_iter *it, int skipping)
{
	lsm_iiter *in = it->in;
	const uint8_t *k;
	size_t klen;
	uint64_t t;
	int passed = 0;

	it->valid = 0;
	for (; in->valid(in); in->next(in)) {
		int shown;

		k = in->key(in, &klen);
		t = in->trailer(in);
		shown = skipping && lsm_key_compare(k, klen, it->key.data, it->key.len) == 0;
		if (shown || lsm_trailer_seq(t) > it->seq) {
			if (++passed < LSM_ITER_MAX_SKIPS)
				continue;
			passed = 0;
			if (!reseek_past_run(it, k, klen, shown))
				return;
			if (!in->valid(in))
				break;
			k = in->key(in, &klen);
			t = in->trailer(in);
			shown = skipping && lsm_key_compare(k, klen, it->key.data, it->key.len) == 0;
			if (shown || lsm_trailer_seq(t) > it->seq)
				continue;	/* (the for's next) */
		}
		passed = 0;
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
		if (it->rdels.nfrag &&
		    lsm_rdel_covering(&it->rdels, k, klen) > lsm_trailer_seq(t))
			continue;
		it->valid = 1;
		return;
	}
	if (it->status == LSM_OK)
		it->status = in->status(in);
}

/* The tombstones stay right for the iterator's whole life: later ones
 * are above its sequence, and a flush only moves them between sources. */
static int load_rdels(lsm_iter *it)
{
	int rc = lsm_readview_rdels(it->db, &it->rv, it->seq, NULL, 0, &it->rdels);

	return rc == LSM_OK ? lsm_rdel_finish(&it->rdels) : rc;
}

int lsm_iter_create(lsm_db *db, const lsm_read_options *ro, lsm_iter **out)
{
	lsm_iter *it;
	int rc;

	*out = NULL;
	if (db == NULL)
		return LSM_INVALID;
	if ((it = calloc(1, sizeof *it)) == NULL)
		return LSM_NOMEM;
	it->db = db;
	lsm_buf_init(&it->key);
	lsm_buf_init(&it->skip_to);
	lsm_buf_init(&it->held_key);
	lsm_buf_init(&it->held_value);
	lsm_buf_init(&it->lower);
	lsm_buf_init(&it->upper);
	if (ro && ro->lower_bound) {
		it->has_lower = 1;
		lsm_buf_put_bytes(&it->lower, ro->lower_bound, ro->lower_bound_len);
	}
	it->fill_cache = !(ro && ro->no_fill_cache);
	if (ro && ro->upper_bound) {
		it->has_upper = 1;
		lsm_buf_put_bytes(&it->upper, ro->upper_bound, ro->upper_bound_len);
	}
	if (ro && ro->snapshot) {
		it->seq = lsm_snapshot_sequence(ro->snapshot);
	} else {
		if ((rc = lsm_snapshot_create(db, &it->own_snap)) != LSM_OK) {
			lsm_iter_destroy(it);
			return rc;
		}
		it->seq = lsm_snapshot_sequence(it->own_snap);
	}
	it->retired_seen = atomic_load(&db->region->n_retired);
	lsm_readview_acquire(db, &it->rv);
	if (it->lower.err || it->upper.err)
		rc = LSM_NOMEM;
	else if ((rc = lsm_readview_iter(db, &it->rv, it->fill_cache, &it->in)) == LSM_OK)
		rc = load_rdels(it);
	if (rc != LSM_OK) {
		lsm_iter_destroy(it);
		return rc;
	}
	it->owner = pthread_self();
	it->registered = 1;
	pthread_mutex_lock(&db->iters_mu);
	it->next_open = db->open_iters;
	if (db->open_iters)
		db->open_iters->prev_open = it;
	db->open_iters = it;
	pthread_mutex_unlock(&db->iters_mu);
	*out = it;
	return LSM_OK;
}

static int view_is_stale(lsm_iter *it);
static int reopen(lsm_iter *it);

void lsm_iter_seek(lsm_iter *it, const void *key, size_t klen)
{
	/* a repositioning is the cheap moment to let go of retired arenas;
	 * if that fails the old view is still whole and correct */
	it->parked = 0;
	if (view_is_stale(it))
		(void)reopen(it);
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
	it->parked = 0;
	if (view_is_stale(it))
		(void)reopen(it);
	it->in->seek_to_first(it->in);
	find_visible(it, 0);
}

/* Whether a memtable this iterator pins was retired since it looked. */
static int view_is_stale(lsm_iter *it)
{
	lsm_region *r = it->db->region;
	uint64_t n = atomic_load(&r->n_retired);

	if (n == it->retired_seen)
		return 0;
	it->retired_seen = n;
	for (int i = 0; i < it->rv.mem.n; i++)
		if (atomic_load(&r->mem[it->rv.mem.slot[i]].state) == LSM_MEM_RETIRED)
			return 1;
	return 0;
}

/* Swaps in a fresh read view and its internal iterator (unpositioned);
 * on failure keeps the old ones and returns the error. */
static int reopen(lsm_iter *it)
{
	lsm_readview rv;
	lsm_iiter *in;

	int rc;

	lsm_readview_acquire(it->db, &rv);
	if ((rc = lsm_readview_iter(it->db, &rv, it->fill_cache, &in)) != LSM_OK) {
		lsm_readview_release(it->db, &rv);
		return rc;
	}
	it->in->destroy(it->in);
	lsm_readview_release(it->db, &it->rv);
	it->rv = rv;
	it->in = in;
	return LSM_OK;
}

/* Re-opens the sources and positions after the current key. */
static void reopen_after_current(lsm_iter *it)
{
	int rc = reopen(it);

	if (rc != LSM_OK) {
		it->valid = 0;
		it->status = rc;
		return;
	}
	it->in->seek(it->in, it->key.data, it->key.len,
	             lsm_pack_trailer(it->seq, LSM_TYPE_SEEK));
	find_visible(it, 1);
}

void lsm_iter_next(lsm_iter *it)
{
	if (it->parked) {
		it->parked = 0;               /* the sources are already there */
		return;
	}
	if (!it->valid)
		return;
	if (view_is_stale(it)) {
		reopen_after_current(it);
		return;
	}
	it->in->next(it->in);
	find_visible(it, 1);
}

int lsm_iter_valid(const lsm_iter *it)
{
	return it->parked || it->valid;
}

const void *lsm_iter_key(const lsm_iter *it, size_t *klen)
{
	if (it->parked) {
		*klen = it->held_key.len;
		return it->held_key.data;
	}
	*klen = it->valid ? it->key.len : 0;
	return it->valid ? it->key.data : NULL;
}

const void *lsm_iter_value(const lsm_iter *it, size_t *vlen)
{
	if (it->parked) {
		*vlen = it->held_value.len;
		return it->held_value.data;
	}
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
	if (it->registered) {
		pthread_mutex_lock(&it->db->iters_mu);
		if (it->prev_open)
			it->prev_open->next_open = it->next_open;
		else
			it->db->open_iters = it->next_open;
		if (it->next_open)
			it->next_open->prev_open = it->prev_open;
		pthread_mutex_unlock(&it->db->iters_mu);
	}
	if (it->in)
		it->in->destroy(it->in);
	lsm_readview_release(it->db, &it->rv);
	if (it->own_snap)
		lsm_snapshot_release(it->db, it->own_snap);
	lsm_rdel_free(&it->rdels);
	lsm_buf_free(&it->key);
	lsm_buf_free(&it->skip_to);
	lsm_buf_free(&it->held_key);
	lsm_buf_free(&it->held_value);
	lsm_buf_free(&it->lower);
	lsm_buf_free(&it->upper);
	free(it);
}

/* Whether the iterator pins a memtable that has been retired. */
static int pins_retired(const lsm_iter *it)
{
	lsm_region *r = it->db->region;

	for (int i = 0; i < it->rv.mem.n; i++)
		if (atomic_load(&r->mem[it->rv.mem.slot[i]].state) == LSM_MEM_RETIRED)
			return 1;
	return 0;
}

/* Keeps a copy of the current entry, which the caller may be looking at
 * while the sources under it are swapped; 0 if out of memory. */
static int hold_current(lsm_iter *it)
{
	size_t vlen;
	const void *v = it->in->value(it->in, &vlen);

	lsm_buf_reset(&it->held_key);
	lsm_buf_put_bytes(&it->held_key, it->key.data, it->key.len);
	lsm_buf_reset(&it->held_value);
	lsm_buf_put_bytes(&it->held_value, v, vlen);
	return !it->held_key.err && !it->held_value.err;
}

/*
 * Re-opens the iterator on a fresh view and puts it back on the entry it
 * was on (same key, same sequence).  If that entry is gone, it parks: the
 * caller keeps seeing the held copy, and the next step lands on the entry
 * after it.  An already parked iterator only moves its sources.
 */
static void reopen_in_place(lsm_iter *it)
{
	int was_on_entry = it->valid && !it->parked;

	if (was_on_entry && !hold_current(it))
		return;                       /* keeps its old, still valid view */
	if (reopen(it) != LSM_OK)
		return;
	it->retired_seen = atomic_load(&it->db->region->n_retired);
	if (!it->valid)
		return;
	it->in->seek(it->in, it->key.data, it->key.len,
	             lsm_pack_trailer(it->seq, LSM_TYPE_SEEK));
	find_visible(it, 0);
	if (was_on_entry && (!it->valid || lsm_key_compare(it->key.data, it->key.len,
	                                                   it->held_key.data,
	                                                   it->held_key.len) != 0))
		it->parked = 1;
}

void lsm_iter_release_retired(lsm_db *db)
{
	pthread_t self = pthread_self();

	pthread_mutex_lock(&db->iters_mu);
	for (lsm_iter *it = db->open_iters; it; it = it->next_open)
		if (pthread_equal(it->owner, self) && pins_retired(it))
			reopen_in_place(it);
	pthread_mutex_unlock(&db->iters_mu);
}
