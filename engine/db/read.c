/*
 * read.c — read views: what a get or an iterator sees.
 *
 * A read view pins the readable memtables (newest first) and then takes a
 * reference on the current version; see "Memtable slots" in dbint.h for
 * why in that order.
 *
 * Point reads search newest to oldest and stop at the first version of the
 * key at or below the read sequence: memtables (newest first), L0 tables
 * (newest first: flushes give them disjoint, ordered sequence ranges), then
 * one file per level.  Within a level >= 1 the versions of one user key may
 * straddle two adjacent files, so a miss in the file that holds the key
 * goes on into the next while that one starts with the same user key.
 *
 * Range tombstones may sit in any source and delete versions in any older
 * one, so a found version is deleted when some tombstone visible at the
 * read sequence covers the key with a larger sequence.  Tombstones are
 * rare: sources without any are skipped without a look.
 *
 * Iterators merge one cursor per memtable, per L0 table, and per level
 * (a concatenation of the level's files, opened lazily through the table
 * cache).
 */
#include <stdlib.h>
#include <string.h>

#include "dbint.h"

void lsm_readview_acquire(lsm_db *db, lsm_readview *rv)
{
	lsm_memview_acquire(db, &rv->mem);
	rv->version = lsm_db_current_version(db);
}

/*
 * A read at the latest sequence takes the sequence *after* the version: a
 * compaction drops versions older than what every reader it knows of can
 * see, and a sequence read before it started but not registered is not
 * among those; taking the version first means every compaction in it
 * started earlier, when the visible sequence was at most ours.  And if a
 * memtable was activated after we pinned ours, a write in it may be at or
 * below our sequence: then start again.  (A registered snapshot needs
 * neither: compactions honour it, and memtables activated after it hold
 * only later sequences.)
 */
void lsm_readview_acquire_latest(lsm_db *db, lsm_readview *rv, uint64_t *seq)
{
	lsm_region *r = db->region;

	for (;;) {
		uint64_t gen = atomic_load(&r->mem_gen);

		lsm_readview_acquire(db, rv);
		*seq = atomic_load_explicit(&r->visible_seq, memory_order_acquire);
		if (atomic_load(&r->mem_gen) == gen)
			return;
		lsm_readview_release(db, rv);
	}
}

void lsm_readview_release(lsm_db *db, lsm_readview *rv)
{
	lsm_memview_release(db, &rv->mem);
	lsm_db_release_version(db, rv->version);
	rv->version = NULL;
}

static int key_in_file(const lsm_file_meta *f, const void *key, size_t klen)
{
	return lsm_key_compare(key, klen, f->smallest.key, f->smallest.len) >= 0 &&
	       lsm_key_compare(key, klen, f->largest.key, f->largest.len) <= 0;
}

/* ------------------------------------------------------- range tombstones */

int lsm_readview_rdels(lsm_db *db, const lsm_readview *rv, uint64_t seq,
                       const void *key, size_t klen, lsm_rdel_set *out)
{
	const lsm_version *v = rv->version;
	int rc = LSM_OK;

	lsm_rdel_init(out, seq);
	for (int i = 0; i < rv->mem.n && rc == LSM_OK; i++)
		rc = lsm_mem_collect_rdels(lsm_slot_arena(db->region, rv->mem.slot[i]), out);
	for (int l = 0; l < LSM_MAX_LEVELS && rc == LSM_OK; l++)
		for (size_t i = 0; i < v->nfiles[l] && rc == LSM_OK; i++) {
			const lsm_file_meta *f = v->files[l][i];
			if (f->range_dels == 0 || (key && !key_in_file(f, key, klen)))
				continue;
			rc = lsm_tcache_add_rdels(db, f->number, out);
		}
	return rc;
}

/* ---------------------------------------------------------------- get */

typedef struct found {
	int hit;
	uint64_t trailer;
	void *val;
	size_t vlen;
} found;

static int table_lookup(lsm_db *db, const lsm_file_meta *f, const void *key,
                        size_t klen, uint64_t seq, found *out)
{
	lsm_tcache_entry *e;
	int rc = lsm_tcache_get(db, f->number, &e);

	if (rc != LSM_OK)
		return rc;
	rc = lsm_table_get_copy(e->table, key, klen, seq, &out->trailer, &out->val, &out->vlen);
	lsm_tcache_put(e);
	if (rc == LSM_OK)
		out->hit = 1;
	return rc == LSM_NOTFOUND ? LSM_OK : rc;
}

/* The newest version of key at seq among the version's tables. */
static int version_lookup(lsm_db *db, const lsm_version *v, const void *key,
                          size_t klen, uint64_t seq, found *out)
{
	int rc;

	for (size_t i = 0; i < v->nfiles[0]; i++) {
		const lsm_file_meta *f = v->files[0][i];

		if (!key_in_file(f, key, klen))
			continue;
		if ((rc = table_lookup(db, f, key, klen, seq, out)) != LSM_OK || out->hit)
			return rc;
	}
	for (int l = 1; l < LSM_MAX_LEVELS; l++) {
		size_t i = lsm_version_find_file(v, l, key, klen,
		                                 lsm_pack_trailer(LSM_MAX_SEQUENCE, LSM_TYPE_SEEK));

		for (; i < v->nfiles[l]; i++) {
			const lsm_file_meta *f = v->files[l][i];

			if (lsm_key_compare(key, klen, f->smallest.key, f->smallest.len) < 0)
				break;
			if ((rc = table_lookup(db, f, key, klen, seq, out)) != LSM_OK || out->hit)
				return rc;
			/* only a file ending in this very key can continue it */
			if (lsm_key_compare(key, klen, f->largest.key, f->largest.len) != 0)
				break;
		}
	}
	return LSM_OK;
}

static int any_range_dels(lsm_db *db, const lsm_readview *rv)
{
	const lsm_version *v = rv->version;

	for (int i = 0; i < rv->mem.n; i++)
		if (lsm_sl_side_first(lsm_slot_arena(db->region, rv->mem.slot[i])))
			return 1;
	for (int l = 0; l < LSM_MAX_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			if (v->files[l][i]->range_dels)
				return 1;
	return 0;
}

int lsm_readview_get(lsm_db *db, const lsm_readview *rv, const void *key,
                     size_t klen, uint64_t seq, void **val, size_t *vlen)
{
	found f = {0};
	int rc = LSM_OK, tomb = 0;

	for (int i = 0; i < rv->mem.n && !f.hit; i++) {
		const lsm_arena *a = lsm_slot_arena(db->region, rv->mem.slot[i]);
		const uint8_t *v;
		size_t n;
		uint64_t tr;

		if (lsm_mem_may_contain(a, key, klen) &&
		    lsm_mem_get_version(a, key, klen, seq, &tr, &v, &n) == LSM_OK) {
			f.hit = 1;
			f.trailer = tr;
			if (lsm_trailer_type(tr) == LSM_TYPE_PUT) {
				if ((f.val = malloc(n ? n : 1)) == NULL)
					return LSM_NOMEM;
				memcpy(f.val, v, n);
				f.vlen = n;
			}
		}
	}
	if (!f.hit && (rc = version_lookup(db, rv->version, key, klen, seq, &f)) != LSM_OK)
		return rc;
	if (!f.hit)
		return LSM_NOTFOUND;
	tomb = lsm_trailer_type(f.trailer) != LSM_TYPE_PUT;
	if (!tomb && any_range_dels(db, rv)) {
		lsm_rdel_set s;

		rc = lsm_readview_rdels(db, rv, seq, key, klen, &s);
		if (rc == LSM_OK && lsm_rdel_raw_max(&s, key, klen) > lsm_trailer_seq(f.trailer))
			tomb = 1;
		lsm_rdel_free(&s);
		if (rc != LSM_OK) {
			free(f.val);
			return rc;
		}
	}
	if (tomb) {
		free(f.val);
		return LSM_NOTFOUND;
	}
	if (f.val == NULL && (f.val = malloc(1)) == NULL)
		return LSM_NOMEM;
	*val = f.val;
	*vlen = f.vlen;
	return LSM_OK;
}

/* -------------------------------------------------------- level iterator */

/* The files of one level >= 1 as one cursor: they do not overlap and are
 * in key order, so it is their concatenation. */
typedef struct level_iter {
	lsm_iiter base;
	lsm_db *db;
	const lsm_version *v;        /* the read view holds the reference */
	int level;
	int fill_cache;
	size_t idx;                  /* file under the cursor */
	lsm_iiter *cur;              /* its table iterator, or NULL */
	int status;
} level_iter;

/* Positions on file idx (closing the previous one); NULL cursor past the
 * end.  Returns the error of opening it. */
static int level_open(level_iter *li, size_t idx)
{
	int rc;

	if (li->cur) {
		li->cur->destroy(li->cur);
		li->cur = NULL;
	}
	li->idx = idx;
	if (idx >= li->v->nfiles[li->level])
		return LSM_OK;
	rc = lsm_tcache_iter(li->db, li->v->files[li->level][idx]->number, li->fill_cache,
	                     &li->cur);
	if (rc != LSM_OK)
		li->status = rc;
	return rc;
}

/* Moves to the first entry of the next files while the current one is
 * exhausted. */
static void level_skip_empty(level_iter *li)
{
	while (li->cur && !li->cur->valid(li->cur)) {
		int rc = li->cur->status(li->cur);

		if (rc != LSM_OK) {
			li->status = rc;
			return;
		}
		if (level_open(li, li->idx + 1) != LSM_OK || li->cur == NULL)
			return;
		li->cur->seek_to_first(li->cur);
	}
}

static void level_seek(lsm_iiter *it, const void *key, size_t klen, uint64_t trailer)
{
	level_iter *li = (level_iter *)it;

	li->status = LSM_OK;
	if (level_open(li, lsm_version_find_file(li->v, li->level, key, klen, trailer)) != LSM_OK ||
	    li->cur == NULL)
		return;
	li->cur->seek(li->cur, key, klen, trailer);
	level_skip_empty(li);
}

static void level_seek_to_first(lsm_iiter *it)
{
	level_iter *li = (level_iter *)it;

	li->status = LSM_OK;
	if (level_open(li, 0) != LSM_OK || li->cur == NULL)
		return;
	li->cur->seek_to_first(li->cur);
	level_skip_empty(li);
}

static int level_valid(const lsm_iiter *it)
{
	const level_iter *li = (const level_iter *)it;

	return li->status == LSM_OK && li->cur && li->cur->valid(li->cur);
}

static void level_next(lsm_iiter *it)
{
	level_iter *li = (level_iter *)it;

	if (!level_valid(it))
		return;
	li->cur->next(li->cur);
	level_skip_empty(li);
}

static const uint8_t *level_key(const lsm_iiter *it, size_t *klen)
{
	const level_iter *li = (const level_iter *)it;

	return li->cur->key(li->cur, klen);
}

static uint64_t level_trailer(const lsm_iiter *it)
{
	const level_iter *li = (const level_iter *)it;

	return li->cur->trailer(li->cur);
}

static const uint8_t *level_value(const lsm_iiter *it, size_t *vlen)
{
	const level_iter *li = (const level_iter *)it;

	return li->cur->value(li->cur, vlen);
}

static int level_status(const lsm_iiter *it)
{
	return ((const level_iter *)it)->status;
}

static void level_destroy(lsm_iiter *it)
{
	level_iter *li = (level_iter *)it;

	if (li->cur)
		li->cur->destroy(li->cur);
	free(li);
}

static const lsm_iiter level_vtable = {
	level_seek, level_seek_to_first, level_next, level_valid, level_key,
	level_trailer, level_value, level_status, level_destroy,
};

lsm_iiter *lsm_level_iter_create(lsm_db *db, const lsm_version *v, int level,
                                 int fill_cache)
{
	level_iter *li = calloc(1, sizeof *li);

	if (li == NULL)
		return NULL;
	li->base = level_vtable;
	li->db = db;
	li->v = v;
	li->level = level;
	li->fill_cache = fill_cache;
	return &li->base;
}

/* ------------------------------------------------------- merged iterator */

int lsm_readview_iter(lsm_db *db, const lsm_readview *rv, int fill_cache, lsm_iiter **out)
{
	const lsm_version *v = rv->version;
	size_t cap = (size_t)rv->mem.n + v->nfiles[0] + LSM_MAX_LEVELS;
	lsm_iiter **kids = malloc(cap * sizeof *kids);
	int n = 0, rc = LSM_OK;

	*out = NULL;
	if (kids == NULL)
		return LSM_NOMEM;
	for (int i = 0; i < rv->mem.n && rc == LSM_OK; i++)
		if ((kids[n] = lsm_mem_iter_create(lsm_slot_arena(db->region, rv->mem.slot[i]))) != NULL)
			n++;
		else
			rc = LSM_NOMEM;
	for (size_t i = 0; i < v->nfiles[0] && rc == LSM_OK; i++)
		if ((rc = lsm_tcache_iter(db, v->files[0][i]->number, fill_cache,
		                          &kids[n])) == LSM_OK)
			n++;
	for (int l = 1; l < LSM_MAX_LEVELS && rc == LSM_OK; l++)
		if (v->nfiles[l] > 0) {
			if ((kids[n] = lsm_level_iter_create(db, v, l, fill_cache)) != NULL)
				n++;
			else
				rc = LSM_NOMEM;
		}
	if (rc != LSM_OK) {
		while (n > 0) {
			n--;
			kids[n]->destroy(kids[n]);
		}
		free(kids);
		return rc;
	}
	*out = lsm_merge_iter_create(kids, n);
	free(kids);
	return *out ? LSM_OK : LSM_NOMEM;
}

/* ------------------------------------------------------ size estimates */

int lsm_approximate_size(lsm_db *db, const void *start, size_t slen,
                         const void *end, size_t elen, int include_memtables,
                         uint64_t *bytes)
{
	lsm_version *v;
	int rc = LSM_OK;

	*bytes = 0;
	if (db == NULL || lsm_key_compare(start, slen, end, elen) > 0)
		return LSM_INVALID;
	if (include_memtables) {
		lsm_memview mv;

		lsm_memview_acquire(db, &mv);
		for (int i = 0; i < mv.n; i++)
			*bytes += lsm_mem_approximate_size(lsm_slot_arena(db->region, mv.slot[i]),
			                                   start, slen, end, elen);
		lsm_memview_release(db, &mv);
	}
	v = lsm_db_current_version(db);
	for (int l = 0; l < LSM_MAX_LEVELS && rc == LSM_OK; l++)
		for (size_t i = 0; i < v->nfiles[l] && rc == LSM_OK; i++) {
			const lsm_file_meta *f = v->files[l][i];
			uint64_t lo = 0, hi = f->size;
			lsm_tcache_entry *e;

			if (lsm_key_compare(f->largest.key, f->largest.len, start, slen) < 0 ||
			    lsm_key_compare(f->smallest.key, f->smallest.len, end, elen) >= 0)
				continue;             /* no overlap */
			if ((rc = lsm_tcache_get(db, f->number, &e)) != LSM_OK)
				break;
			if (lsm_key_compare(f->smallest.key, f->smallest.len, start, slen) < 0)
				lo = lsm_table_approximate_offset(e->table, start, slen,
				                                  lsm_pack_trailer(LSM_MAX_SEQUENCE, LSM_TYPE_SEEK));
			if (lsm_key_compare(f->largest.key, f->largest.len, end, elen) >= 0)
				hi = lsm_table_approximate_offset(e->table, end, elen,
				                                  lsm_pack_trailer(LSM_MAX_SEQUENCE, LSM_TYPE_SEEK));
			lsm_tcache_put(e);
			if (hi > lo)
				*bytes += hi - lo;
		}
	lsm_db_release_version(db, v);
	return rc;
}
