/*
 * compact.c — leveled compaction.
 *
 * Picking.  Each level has a score: L0 by file count (files /
 * l0_compaction_trigger), deeper levels by size (bytes / target, the
 * target growing level_size_multiplier-fold per level from
 * max_bytes_for_level_base).  The highest score >= 1 is compacted:
 *   - L0: every L0 file (they overlap each other, so taking all is the
 *     only simple way never to leave an older version above a newer one),
 *     plus the L1 files they overlap;
 *   - Ln: the file after the level's compact pointer (round robin over the
 *     key space), widened to neighbours that share a boundary user key
 *     (moving one of them down alone would put newer versions of that key
 *     below older ones), plus the L(n+1) files overlapping them.
 * A single Ln file with nothing under it moves down by a manifest edit
 * alone (a trivial move): no bytes rewritten.
 *
 * Merging.  Inputs are read in internal-key order.  For each user key the
 * versions come newest first; with S the oldest sequence any reader may
 * still use (the oldest snapshot, iterators included, or the newest
 * sequence):
 *   - a version hidden by a newer version at or below S is dropped;
 *   - a version covered by a range tombstone at or below S with a larger
 *     sequence is dropped;
 *   - a point tombstone at or below S is dropped when no level below the
 *     output holds data in the compaction's range (nothing left to hide);
 *   - the compaction filter sees each surviving put at or below S, the
 *     newest of its key; "drop" turns it into a tombstone (or drops it at
 *     the bottom), since simply removing it would resurrect what it hid.
 * Range tombstones travel into every output whose range they meet, clipped
 * to it, so outputs never overlap; at the bottom, tombstones at or below S
 * are dropped.
 *
 * Outputs are split at target_file_size, only between user keys, so one
 * key's versions never straddle two of our outputs.
 *
 * Invariant: a compaction never changes what any read at a sequence >= S
 * returns; everything is logged in one manifest edit, so a crash leaves the
 * old inputs (the outputs are then unlisted and removed at open).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbint.h"

typedef struct compaction {
	int level;                     /* inputs from level and level + 1 */
	lsm_file_list in[2];
	int trivial;                   /* move in[0].v[0] down, nothing else */
	int bottom;                    /* nothing below level + 1 in range */
	uint8_t *lo, *hi;              /* user-key range of all inputs */
	size_t lolen, hilen;
	const lsm_rdel_set *held;      /* tombstones still only in memtables
	                                * (lsm_compact_range_tables; NULL: none) */
} compaction;

static uint64_t level_target(const lsm_db *db, int level)
{
	uint64_t t = db->opts.max_bytes_for_level_base;

	for (int l = 1; l < level; l++)
		t *= (uint64_t)db->opts.level_size_multiplier;
	return t;
}

/* The level that most needs compacting and its score (x1000). */
static int best_level(lsm_db *db, const lsm_version *v, uint64_t *score)
{
	int best = -1;

	*score = 0;
	for (int l = 0; l < LSM_MAX_LEVELS - 1; l++) {
		uint64_t s;

		if (l == 0)
			s = (uint64_t)v->nfiles[0] * 1000 / (uint64_t)db->opts.l0_compaction_trigger;
		else
			s = v->bytes[l] * 1000 / level_target(db, l);
		if (s > *score) {
			*score = s;
			best = l;
		}
	}
	return best;
}

int lsm_compaction_wanted(lsm_db *db)
{
	lsm_version *v = lsm_db_current_version(db);
	uint64_t score;

	best_level(db, v, &score);
	lsm_db_release_version(db, v);
	return score >= 1000;
}

static int dup_key(const uint8_t *k, size_t n, uint8_t **out, size_t *outlen)
{
	*out = malloc(n ? n : 1);
	if (*out == NULL)
		return LSM_NOMEM;
	memcpy(*out, k, n);
	*outlen = n;
	return LSM_OK;
}

/* Sets c->lo/hi to the user-key range of the files in l. */
static int range_of(compaction *c, const lsm_file_list *l)
{
	const lsm_ikey_ref *lo = NULL, *hi = NULL;

	for (size_t i = 0; i < l->n; i++) {
		const lsm_file_meta *f = l->v[i];

		if (!lo || lsm_key_compare(f->smallest.key, f->smallest.len, lo->key, lo->len) < 0)
			lo = &f->smallest;
		if (!hi || lsm_key_compare(f->largest.key, f->largest.len, hi->key, hi->len) > 0)
			hi = &f->largest;
	}
	free(c->lo);
	free(c->hi);
	c->lo = c->hi = NULL;
	if (lo == NULL)
		return LSM_OK;
	if (dup_key(lo->key, lo->len, &c->lo, &c->lolen) != LSM_OK ||
	    dup_key(hi->key, hi->len, &c->hi, &c->hilen) != LSM_OK)
		return LSM_NOMEM;
	return LSM_OK;
}

static int list_add(lsm_file_list *l, lsm_file_meta *f)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		lsm_file_meta **v = realloc(l->v, cap * sizeof *v);

		if (v == NULL)
			return LSM_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = f;
	return LSM_OK;
}

/* Appends files[first..last] of level >= 1, widened to the neighbours that
 * share a boundary user key with them. */
static int add_whole_keys(const lsm_version *v, int level, size_t first, size_t last,
                          lsm_file_list *out)
{
	lsm_file_meta *const *f = v->files[level];
	size_t n = v->nfiles[level];

	while (first > 0 && lsm_key_compare(f[first - 1]->largest.key, f[first - 1]->largest.len,
	                                    f[first]->smallest.key, f[first]->smallest.len) == 0)
		first--;
	while (last + 1 < n && lsm_key_compare(f[last]->largest.key, f[last]->largest.len,
	                                       f[last + 1]->smallest.key,
	                                       f[last + 1]->smallest.len) == 0)
		last++;
	for (size_t i = first; i <= last; i++)
		if (list_add(out, f[i]) != LSM_OK)
			return LSM_NOMEM;
	return LSM_OK;
}

/* Ln, n >= 1: the file after the compact pointer (round robin). */
static int pick_level_file(const lsm_version *v, int level, lsm_file_list *out)
{
	lsm_file_meta *const *f = v->files[level];
	size_t n = v->nfiles[level], first = 0;

	if (v->compact_mask & (1u << level)) {
		const lsm_ikey_ref *p = &v->compact_ptr[level];

		while (first < n && lsm_ikey_compare(f[first]->largest.key, f[first]->largest.len,
		                                     f[first]->largest.trailer, p->key, p->len,
		                                     p->trailer) <= 0)
			first++;
		if (first == n)
			first = 0;                     /* wrap around */
	}
	return add_whole_keys(v, level, first, first, out);
}

static void compaction_free(compaction *c)
{
	lsm_file_list_free(&c->in[0]);
	lsm_file_list_free(&c->in[1]);
	free(c->lo);
	free(c->hi);
}

/* Fills c->in[1] and c->bottom once c->level and c->in[0] are set. */
static int complete_inputs(const lsm_version *v, compaction *c)
{
	int rc;

	if ((rc = range_of(c, &c->in[0])) != LSM_OK)
		return rc;
	if ((rc = lsm_version_overlapping(v, c->level + 1, c->lo, c->lolen, c->hi, c->hilen,
	                                  0, &c->in[1])) != LSM_OK)
		return rc;
	if (c->in[1].n > 0) {
		lsm_file_list all;

		lsm_file_list_init(&all);
		for (int k = 0; k < 2 && rc == LSM_OK; k++)
			for (size_t i = 0; i < c->in[k].n && rc == LSM_OK; i++)
				rc = list_add(&all, c->in[k].v[i]);
		if (rc == LSM_OK)
			rc = range_of(c, &all);
		lsm_file_list_free(&all);
		if (rc != LSM_OK)
			return rc;
	}
	c->bottom = 1;
	for (int l = c->level + 2; l < LSM_MAX_LEVELS; l++)
		if (lsm_version_overlaps(v, l, c->lo, c->lolen, c->hi, c->hilen))
			c->bottom = 0;
	c->trivial = c->level > 0 && c->in[0].n == 1 && c->in[1].n == 0;
	return LSM_OK;
}

static int pick(lsm_db *db, const lsm_version *v, compaction *c)
{
	uint64_t score;
	int level = best_level(db, v, &score), rc;

	if (level < 0 || score < 1000)
		return LSM_NOTFOUND;
	c->level = level;
	if (level == 0) {
		for (size_t i = 0; i < v->nfiles[0]; i++)
			if ((rc = list_add(&c->in[0], v->files[0][i])) != LSM_OK)
				return rc;
	} else if ((rc = pick_level_file(v, level, &c->in[0])) != LSM_OK) {
		return rc;
	}
	return complete_inputs(v, c);
}

/* ------------------------------------------------------------- merging */

/* The oldest sequence any reader may still read at.  Under snap_mu, so a
 * snapshot taken concurrently is either seen here or takes a sequence at
 * least the visible one read here (see lsm_readview_acquire_latest for
 * unregistered reads). */
static uint64_t oldest_snapshot(lsm_db *db)
{
	lsm_region *r = db->region;
	uint64_t s;

	pthread_mutex_lock(&r->snap_mu);
	s = atomic_load(&r->visible_seq);
	for (int i = 0; i < LSM_MAX_SNAPSHOTS; i++) {
		uint64_t v = atomic_load(&r->snapshots[i]);

		if (v != 0 && v - 1 < s)
			s = v - 1;
	}
	pthread_mutex_unlock(&r->snap_mu);
	return s;
}

typedef struct output {
	lsm_db *db;
	compaction *c;
	const lsm_rdel_set *rdels;
	uint64_t smallest_snap;
	lsm_table_builder *b;
	uint64_t number;
	uint8_t *lo;                   /* user key this output's range starts at */
	size_t lolen;                  /* (NULL: unbounded below) */
	int has_lo;
	lsm_version_edit *edit;
	uint64_t bytes_written;
} output;

static int open_output(output *o)
{
	char path[4096];
	int rc;

	if ((rc = lsm_db_new_file(o->db, &o->number)) != LSM_OK)
		return rc;
	if ((rc = lsm_sst_path(o->db->dir, o->number, path, sizeof path)) != LSM_OK)
		return rc;
	return lsm_table_builder_open(o->db->env, path, &o->db->table_opts, &o->b);
}

/* Writes the tombstones meeting [o->lo, hi) (hi NULL: unbounded), clipped. */
static int add_clipped_rdels(output *o, const uint8_t *hi, size_t hilen)
{
	const lsm_rdel_set *s = o->rdels;
	int rc = LSM_OK;

	for (size_t i = 0; i < s->n && rc == LSM_OK; i++) {
		const lsm_rdel *t = &s->raw[i];
		const uint8_t *a = t->start, *b = t->end;
		size_t alen = t->slen, blen = t->elen;

		if (o->c->bottom && t->seq <= o->smallest_snap)
			continue;                          /* nothing left under it */
		if (o->has_lo && lsm_key_compare(a, alen, o->lo, o->lolen) < 0) {
			a = o->lo;
			alen = o->lolen;
		}
		if (hi && lsm_key_compare(b, blen, hi, hilen) > 0) {
			b = hi;
			blen = hilen;
		}
		if (lsm_key_compare(a, alen, b, blen) < 0)
			rc = lsm_table_builder_add_range_delete(o->b, a, alen, b, blen, t->seq);
	}
	return rc;
}

/* Finishes the open output, its range ending before hi (NULL: the last). */
static int close_output(output *o, const uint8_t *hi, size_t hilen)
{
	lsm_table_props props = {0};
	lsm_file_meta *m;
	char path[4096];
	uint64_t size = 0;
	lsm_file *f;
	int rc;

	if (o->b == NULL)
		return LSM_OK;
	if ((rc = add_clipped_rdels(o, hi, hilen)) != LSM_OK) {
		lsm_table_builder_abandon(o->b);
		o->b = NULL;
		return rc;
	}
	if (lsm_table_builder_entries(o->b) == 0) {
		lsm_table_builder_abandon(o->b);   /* everything in range was dropped */
		o->b = NULL;
		lsm_db_release_file(o->db, o->number);
		return LSM_OK;
	}
	rc = lsm_table_builder_finish(o->b, &props);
	o->b = NULL;
	if (rc != LSM_OK)
		return rc;
	if ((rc = lsm_sst_path(o->db->dir, o->number, path, sizeof path)) == LSM_OK &&
	    (rc = o->db->env->open(o->db->env, path, LSM_OPEN_READ, &f)) == LSM_OK) {
		rc = o->db->env->size(f, &size);
		o->db->env->close(f);
	}
	if (rc == LSM_OK) {
		m = lsm_meta_from_props(o->number, o->c->level + 1, size, &props);
		rc = m ? lsm_edit_add_file(o->edit, m) : LSM_NOMEM;
		lsm_file_meta_unref(m);
		o->bytes_written += size;
	}
	lsm_table_props_free(&props);
	return rc;
}

/* Starts a new output whose range begins at user key k. */
static int split_output(output *o, const uint8_t *k, size_t klen)
{
	int rc = close_output(o, k, klen);

	if (rc != LSM_OK)
		return rc;
	free(o->lo);
	if (dup_key(k, klen, &o->lo, &o->lolen) != LSM_OK)
		return LSM_NOMEM;
	o->has_lo = 1;
	return open_output(o);
}

static int make_input_iter(lsm_db *db, compaction *c, lsm_iiter **out)
{
	size_t n = c->in[0].n + c->in[1].n, k = 0;
	lsm_iiter **kids = malloc((n ? n : 1) * sizeof *kids);
	int rc = LSM_OK;

	if (kids == NULL)
		return LSM_NOMEM;
	for (int l = 0; l < 2 && rc == LSM_OK; l++)
		for (size_t i = 0; i < c->in[l].n && rc == LSM_OK; i++)
			if ((rc = lsm_tcache_iter(db, c->in[l].v[i]->number, 0, &kids[k])) == LSM_OK)
				k++;
	if (rc != LSM_OK) {
		while (k > 0) {
			k--;
			kids[k]->destroy(kids[k]);
		}
		free(kids);
		return rc;
	}
	*out = lsm_merge_iter_create(kids, (int)k);
	free(kids);
	return *out ? LSM_OK : LSM_NOMEM;
}

static int collect_input_rdels(lsm_db *db, compaction *c, lsm_rdel_set *s)
{
	int rc = LSM_OK;

	lsm_rdel_init(s, UINT64_MAX);
	for (int l = 0; l < 2 && rc == LSM_OK; l++)
		for (size_t i = 0; i < c->in[l].n && rc == LSM_OK; i++)
			if (c->in[l].v[i]->range_dels != 0)
				rc = lsm_tcache_add_rdels(db, c->in[l].v[i]->number, s);
	return rc == LSM_OK ? lsm_rdel_finish(s) : rc;
}

/* Whether a tombstone of s that every reader sees (at or below snap)
 * hides the version seq of key k. */
static int hidden_for_all(const lsm_rdel_set *s, const uint8_t *k, size_t klen,
                          uint64_t snap, uint64_t seq)
{
	return s->nfrag && lsm_rdel_covering_below(s, k, klen, snap + 1) > seq;
}

/* Asks the compaction filter about one put; returns the entry to write. */
static int apply_filter(lsm_db *db, int level, const uint8_t *k, size_t klen,
                        uint64_t *trailer, const uint8_t **v, size_t *vlen,
                        void **owned)
{
	void *nv = NULL;
	size_t nvlen = 0;
	int d = db->opts.compaction_filter(db->opts.compaction_filter_arg, level, k, klen,
	                                   *v, *vlen, lsm_trailer_seq(*trailer), &nv, &nvlen);

	if (d == LSM_FILTER_REMOVE) {
		*trailer = lsm_pack_trailer(lsm_trailer_seq(*trailer), LSM_TYPE_DELETE);
		*v = NULL;
		*vlen = 0;
	} else if (d == LSM_FILTER_CHANGE) {
		if (nv == NULL && nvlen)
			return LSM_INVALID;
		*owned = nv;
		*v = nv;
		*vlen = nvlen;
	}
	return LSM_OK;
}

static int merge_inputs(lsm_db *db, compaction *c, lsm_version_edit *edit,
                        uint64_t *written)
{
	lsm_rdel_set rdels;
	output o = {0};
	lsm_iiter *it = NULL;
	lsm_buf cur;                   /* current user key */
	uint64_t last_seq_for_key = 0;
	int rc, has_cur = 0;

	lsm_buf_init(&cur);
	o.db = db;
	o.c = c;
	o.rdels = &rdels;
	o.smallest_snap = oldest_snapshot(db);
	o.edit = edit;
	if ((rc = collect_input_rdels(db, c, &rdels)) == LSM_OK &&
	    (rc = make_input_iter(db, c, &it)) == LSM_OK)
		rc = open_output(&o);
	if (rc == LSM_OK)
		it->seek_to_first(it);
	for (; rc == LSM_OK && it->valid(it); it->next(it)) {
		size_t klen, vlen;
		const uint8_t *k = it->key(it, &klen), *v = it->value(it, &vlen);
		uint64_t tr = it->trailer(it), seq = lsm_trailer_seq(tr);
		void *owned = NULL;

		if (!has_cur || lsm_key_compare(k, klen, cur.data, cur.len) != 0) {
			/* a new user key: the only place an output may end */
			if (lsm_table_builder_file_size(o.b) >= db->opts.target_file_size &&
			    (rc = split_output(&o, k, klen)) != LSM_OK)
				break;
			lsm_buf_reset(&cur);
			lsm_buf_put_bytes(&cur, k, klen);
			if (cur.err) {
				rc = LSM_NOMEM;
				break;
			}
			has_cur = 1;
			last_seq_for_key = UINT64_MAX;
		}
		if (last_seq_for_key <= o.smallest_snap) {
			last_seq_for_key = seq;
			continue;                  /* hidden by a newer version all see */
		}
		last_seq_for_key = seq;
		if (seq <= o.smallest_snap &&
		    (hidden_for_all(&rdels, k, klen, o.smallest_snap, seq) ||
		     (c->held && hidden_for_all(c->held, k, klen, o.smallest_snap, seq))))
			continue;                  /* range-deleted for every reader */
		if (seq <= o.smallest_snap && lsm_trailer_type(tr) == LSM_TYPE_PUT &&
		    db->opts.compaction_filter &&
		    (rc = apply_filter(db, c->level + 1, k, klen, &tr, &v, &vlen, &owned)) != LSM_OK)
			break;
		if (lsm_trailer_type(tr) == LSM_TYPE_DELETE && seq <= o.smallest_snap && c->bottom)
			continue;                  /* nothing below for it to hide */
		rc = lsm_table_builder_add(o.b, k, klen, tr, v, vlen);
		free(owned);
	}
	if (rc == LSM_OK && it)
		rc = it->status(it);
	if (rc == LSM_OK)
		rc = close_output(&o, NULL, 0);
	if (o.b) {
		lsm_table_builder_abandon(o.b);
		lsm_db_release_file(db, o.number);
	}
	if (it)
		it->destroy(it);
	lsm_rdel_free(&rdels);
	lsm_buf_free(&cur);
	free(o.lo);
	*written = o.bytes_written;
	return rc;
}

/* ------------------------------------------------------------- running */

static int run(lsm_db *db, compaction *c)
{
	lsm_region *r = db->region;
	lsm_version_edit e;
	uint64_t written = 0, read = 0;
	int rc = LSM_OK;

	lsm_edit_init(&e);
	for (int l = 0; l < 2 && rc == LSM_OK; l++)
		for (size_t i = 0; i < c->in[l].n && rc == LSM_OK; i++) {
			rc = lsm_edit_delete_file(&e, c->level + l, c->in[l].v[i]->number);
			read += c->in[l].v[i]->size;
		}
	if (rc == LSM_OK && c->trivial) {
		lsm_file_meta m = *c->in[0].v[0], *moved;

		m.level = c->level + 1;
		moved = lsm_file_meta_new(&m);
		rc = moved ? lsm_edit_add_file(&e, moved) : LSM_NOMEM;
		lsm_file_meta_unref(moved);
		read = 0;
	} else if (rc == LSM_OK) {
		rc = merge_inputs(db, c, &e, &written);
	}
	if (rc == LSM_OK && c->level > 0) {
		const lsm_file_meta *last = c->in[0].v[c->in[0].n - 1];

		rc = lsm_edit_set_compact_pointer(&e, c->level, last->largest.key,
		                                  last->largest.len, last->largest.trailer);
	}
	if (rc == LSM_OK)
		rc = lsm_db_log_and_apply(db, &e);
	/* outputs are listed (or, on failure, garbage): no longer pending */
	for (size_t i = 0; i < e.nadded; i++)
		lsm_db_release_file(db, e.added[i]->number);
	lsm_edit_free(&e);
	if (rc != LSM_OK)
		return rc;
	atomic_fetch_add(&r->n_compactions, 1);
	atomic_fetch_add(&r->compact_read_bytes, read);
	atomic_fetch_add(&r->compact_write_bytes, written);
	pthread_mutex_lock(&r->bg_mu);
	pthread_cond_broadcast(&r->stall_cv);
	pthread_cond_broadcast(&r->flush_cv);
	pthread_mutex_unlock(&r->bg_mu);
	return LSM_OK;
}

int lsm_compact_step(lsm_db *db)
{
	compaction c;
	lsm_version *v;
	int rc;

	memset(&c, 0, sizeof c);
	lsm_file_list_init(&c.in[0]);
	lsm_file_list_init(&c.in[1]);
	pthread_mutex_lock(&db->region->compact_mu);
	v = lsm_db_current_version(db);
	rc = pick(db, v, &c);
	if (rc == LSM_OK)
		rc = run(db, &c);
	else if (rc == LSM_NOTFOUND)
		rc = LSM_OK;
	compaction_free(&c);
	/* the inputs' version let go first, or its files would look live */
	lsm_db_release_version(db, v);
	pthread_mutex_unlock(&db->region->compact_mu);
	if (rc == LSM_OK)
		lsm_db_remove_obsolete(db);
	return rc;
}

/* One manual step: level's files meeting [begin, end] into level + 1.
 * *did = 0 when the level holds nothing there. */
static int compact_level_range(lsm_db *db, int level, const void *begin, size_t blen,
                               const void *end, size_t elen, const lsm_rdel_set *held,
                               int *did)
{
	compaction c;
	lsm_version *v;
	int rc;

	memset(&c, 0, sizeof c);
	lsm_file_list_init(&c.in[0]);
	lsm_file_list_init(&c.in[1]);
	pthread_mutex_lock(&db->region->compact_mu);
	v = lsm_db_current_version(db);
	c.level = level;
	c.held = held;
	if (level == 0) {
		rc = lsm_version_overlapping(v, 0, begin, blen, end, elen, LSM_OVERLAP_EXPAND,
		                             &c.in[0]);
	} else {
		lsm_file_list hit;

		/* the overlapping files are consecutive: widen them to whole keys */
		lsm_file_list_init(&hit);
		rc = lsm_version_overlapping(v, level, begin, blen, end, elen, 0, &hit);
		if (rc == LSM_OK && hit.n > 0) {
			size_t first = 0;

			while (v->files[level][first] != hit.v[0])
				first++;
			rc = add_whole_keys(v, level, first, first + hit.n - 1, &c.in[0]);
		}
		lsm_file_list_free(&hit);
	}
	*did = rc == LSM_OK && c.in[0].n > 0;
	if (*did) {
		rc = complete_inputs(v, &c);
		/* a move would keep the garbage this call is for */
		c.trivial = 0;
		if (rc == LSM_OK)
			rc = run(db, &c);
	}
	compaction_free(&c);
	lsm_db_release_version(db, v);
	pthread_mutex_unlock(&db->region->compact_mu);
	if (rc == LSM_OK && *did)
		lsm_db_remove_obsolete(db);
	return rc;
}

/* Every level's files meeting [begin, end], down to the bottommost level
 * holding data there.  The memtables are left alone. */
static int compact_tables_in_range(lsm_db *db, const void *begin, size_t blen,
                                   const void *end, size_t elen, const lsm_rdel_set *held)
{
	lsm_version *v = lsm_db_current_version(db);
	int rc = LSM_OK, deepest = 0;

	for (int l = 0; l < LSM_MAX_LEVELS; l++)
		if (lsm_version_overlaps(v, l, begin, blen, end, elen))
			deepest = l;
	lsm_db_release_version(db, v);
	for (int l = 0; l < deepest && rc == LSM_OK; l++) {
		int did = 1;

		while (did && rc == LSM_OK)
			rc = compact_level_range(db, l, begin, blen, end, elen, held, &did);
	}
	/* the deepest level too, one further down, so its tombstones and
	 * garbage go (data all in L0 goes to L1) */
	if (rc == LSM_OK && deepest < LSM_MAX_LEVELS - 1) {
		int did;

		rc = compact_level_range(db, deepest, begin, blen, end, elen, held, &did);
	}
	return rc;
}

int lsm_compact_range(lsm_db *db, const void *begin, size_t blen,
                      const void *end, size_t elen)
{
	int rc;

	if (db == NULL)
		return LSM_INVALID;
	if ((rc = lsm_flush(db)) != LSM_OK)
		return rc;
	return compact_tables_in_range(db, begin, blen, end, elen, NULL);
}

/*
 * The range tombstones of the memtables are applied to the tables without
 * a flush.  Before a version they hide leaves the tables, the tombstones
 * must be as durable as a flush would have made them: the host's log
 * first (the flush hook: a host may write a tombstone only once its own
 * commit is logged), then our WAL, so a crash never brings back the
 * hidden versions nor loses a tombstone some table relies on.  The
 * tombstones themselves stay in their memtables (and reach a table with
 * its flush); the outputs do not carry them.  Only tombstones published
 * when this starts are taken: a later one may still fail its write.
 */
int lsm_compact_range_tables(lsm_db *db, const void *begin, size_t blen,
                             const void *end, size_t elen)
{
	lsm_rdel_set held;
	lsm_memview mv;
	int rc = LSM_OK;

	if (db == NULL)
		return LSM_INVALID;
	lsm_rdel_init(&held, atomic_load(&db->region->visible_seq));
	lsm_memview_acquire(db, &mv);
	for (int i = 0; i < mv.n && rc == LSM_OK; i++)
		rc = lsm_mem_collect_rdels(lsm_slot_arena(db->region, mv.slot[i]), &held);
	lsm_memview_release(db, &mv);
	if (rc == LSM_OK)
		rc = lsm_rdel_finish(&held);
	if (rc == LSM_OK && held.n > 0 && (rc = lsm_run_flush_hook(db)) == LSM_OK)
		rc = lsm_sync_wal(db);
	if (rc == LSM_OK)
		rc = compact_tables_in_range(db, begin, blen, end, elen, held.n > 0 ? &held : NULL);
	lsm_rdel_free(&held);
	return rc;
}
