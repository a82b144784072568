/*
 * flush.c — memtables become L0 SSTables; the background thread.
 *
 * A flush takes the oldest IMMUTABLE memtable, waits until every batch
 * allocated in it is published (writers link their nodes after they let go
 * of the write lock, so a frozen memtable may still be receiving its last
 * inserts), writes every entry and range tombstone into one L0 table, and
 * logs one manifest edit: the new file, last_sequence = the memtable's last
 * sequence, and log_number = the first WAL segment of the oldest memtable
 * still unflushed.  Only after the edit is durable and the version
 * installed is the memtable RETIRED, so a reader always finds each entry
 * in a memtable it pinned or in the version it took after.
 *
 * Flushes go strictly oldest first (flush_mu serializes them), which is
 * what makes "every sequence <= last_sequence is in an SSTable" true, and
 * recovery relies on it.
 *
 * The flush keeps every version of every key: which versions no snapshot
 * needs is compaction's business, and a flush must be quick.
 *
 * Background threads (private mode): one flushes, one compacts, so a long
 * compaction never keeps a full memtable from its flush (writers would
 * stall).  Both sleep on flush_cv, which every memtable freeze and every
 * installed flush or compaction broadcasts.  A failure is sticky in
 * region->bg_error: writers then fail with it instead of stalling forever.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dbint.h"

/* The oldest IMMUTABLE slot, or -1. */
static int oldest_immutable(lsm_region *r)
{
	int best = -1;

	for (uint32_t i = 0; i < r->n_mem; i++)
		if (atomic_load(&r->mem[i].state) == LSM_MEM_IMMUTABLE &&
		    (best < 0 || r->mem[i].gen < r->mem[best].gen))
			best = (int)i;
	return best;
}

/* Waits until every batch allocated in the frozen memtable is linked. */
static void wait_published(lsm_db *db, uint64_t last_seq)
{
	int spins = 0;

	while (atomic_load(&db->region->visible_seq) < last_seq) {
		if (++spins < 100)
			sched_yield();
		else
			db->env->sleep_micros(db->env, 50);
	}
}

/* Writes the memtable's entries and tombstones to table `number`. */
static int write_table(lsm_db *db, const lsm_arena *a, uint64_t number,
                       lsm_table_props *props, int *empty)
{
	char path[4096];
	lsm_table_builder *b;
	lsm_iiter *it;
	int rc;

	*empty = atomic_load(&a->entries) == 0;
	if (*empty)
		return LSM_OK;
	if ((rc = lsm_sst_path(db->dir, number, path, sizeof path)) != LSM_OK)
		return rc;
	if ((rc = lsm_table_builder_open(db->env, path, &db->table_opts, &b)) != LSM_OK)
		return rc;
	if ((it = lsm_mem_iter_create(a)) == NULL) {
		lsm_table_builder_abandon(b);
		return LSM_NOMEM;
	}
	for (it->seek_to_first(it); rc == LSM_OK && it->valid(it); it->next(it)) {
		size_t klen, vlen;
		const uint8_t *k = it->key(it, &klen), *v = it->value(it, &vlen);

		rc = lsm_table_builder_add(b, k, klen, it->trailer(it), v, vlen);
	}
	it->destroy(it);
	for (uint32_t x = lsm_sl_side_first(a); x && rc == LSM_OK; x = lsm_sl_next(a, x)) {
		const lsm_sl_node *n = lsm_sl_node_at(a, x);

		rc = lsm_table_builder_add_range_delete(b, lsm_sl_node_key(n), n->klen,
		                                        lsm_sl_node_value(n), n->vlen,
		                                        lsm_trailer_seq(n->trailer));
	}
	if (rc != LSM_OK) {
		lsm_table_builder_abandon(b);
		return rc;
	}
	return lsm_table_builder_finish(b, props);
}

/* A file meta for a finished table (refs = 1). */
lsm_file_meta *lsm_meta_from_props(uint64_t number, int level, uint64_t size,
                                   const lsm_table_props *p)
{
	lsm_file_meta m = {0};

	m.level = level;
	m.number = number;
	m.size = size;
	m.smallest = (lsm_ikey_ref){p->smallest_key, p->smallest_klen, p->smallest_trailer};
	m.largest = (lsm_ikey_ref){p->largest_key, p->largest_klen, p->largest_trailer};
	m.smallest_seq = p->smallest_seq;
	m.largest_seq = p->largest_seq;
	m.entries = p->entries;
	m.range_dels = p->range_deletions;
	return lsm_file_meta_new(&m);
}

/* The first WAL segment any memtable other than `except` still needs. */
static uint64_t oldest_needed_segment(lsm_db *db, int except)
{
	lsm_region *r = db->region;
	uint64_t min = UINT64_MAX;

	pthread_mutex_lock(&r->write_mu);
	for (uint32_t i = 0; i < r->n_mem; i++) {
		uint32_t st = atomic_load(&r->mem[i].state);

		if ((int)i != except && (st == LSM_MEM_ACTIVE || st == LSM_MEM_IMMUTABLE) &&
		    r->mem[i].wal_seg < min)
			min = r->mem[i].wal_seg;
	}
	if (min == UINT64_MAX)
		min = r->wal.seg_no;
	pthread_mutex_unlock(&r->write_mu);
	return min;
}

static int file_size_of(lsm_db *db, uint64_t number, uint64_t *size)
{
	char path[4096];
	lsm_file *f;
	int rc;

	if ((rc = lsm_sst_path(db->dir, number, path, sizeof path)) != LSM_OK)
		return rc;
	if ((rc = db->env->open(db->env, path, LSM_OPEN_READ, &f)) != LSM_OK)
		return rc;
	rc = db->env->size(f, size);
	db->env->close(f);
	return rc;
}

int lsm_run_flush_hook(lsm_db *db)
{
	db->flush_hook_failed = 0;
	if (db->opts.flush_hook && db->opts.flush_hook(db->opts.flush_hook_arg) != 0) {
		db->flush_hook_failed = 1;    /* nothing was written: not sticky */
		return LSM_IOERR;
	}
	return LSM_OK;
}

static int flush_slot(lsm_db *db, int slot)
{
	lsm_region *r = db->region;
	lsm_memslot *m = &r->mem[slot];
	uint64_t last = atomic_load(&m->last_seq), number, size = 0;
	lsm_table_props props = {0};
	lsm_version_edit e;
	lsm_file_meta *meta = NULL;
	int rc, empty;

	wait_published(db, last);
	if ((rc = lsm_run_flush_hook(db)) != LSM_OK)
		return rc;
	if ((rc = lsm_db_new_file(db, &number)) != LSM_OK)
		return rc;
	rc = write_table(db, lsm_slot_arena(r, slot), number, &props, &empty);
	if (rc == LSM_OK && !empty && (rc = file_size_of(db, number, &size)) == LSM_OK &&
	    (meta = lsm_meta_from_props(number, 0, size, &props)) == NULL)
		rc = LSM_NOMEM;
	lsm_table_props_free(&props);

	lsm_edit_init(&e);
	if (rc == LSM_OK && meta)
		rc = lsm_edit_add_file(&e, meta);
	if (rc == LSM_OK) {
		uint64_t log_number = oldest_needed_segment(db, slot);

		/* applying only ever raises these (and sets db->flushed_seq and
		 * db->log_number from the result) */
		lsm_edit_set_log_number(&e, log_number);
		lsm_edit_set_last_sequence(&e, last);
		rc = lsm_db_log_and_apply(db, &e);
	}
	lsm_edit_free(&e);
	lsm_file_meta_unref(meta);
	lsm_db_release_file(db, number);
	if (rc != LSM_OK)
		return rc;

	/* now in the version: readers that pin memtables from here on find
	 * it there, and the arena may be reused once unpinned */
	atomic_store(&m->state, LSM_MEM_RETIRED);
	atomic_fetch_add(&r->n_retired, 1);
	atomic_fetch_add(&r->n_flushes, 1);
	atomic_fetch_add(&r->flush_bytes, size);
	pthread_mutex_lock(&r->bg_mu);
	pthread_cond_broadcast(&r->stall_cv);
	pthread_mutex_unlock(&r->bg_mu);
	lsm_db_remove_obsolete(db);
	return LSM_OK;
}

int lsm_flush_oldest(lsm_db *db)
{
	int slot, rc;

	pthread_mutex_lock(&db->region->flush_mu);
	slot = oldest_immutable(db->region);
	rc = slot < 0 ? LSM_OK : flush_slot(db, slot);
	pthread_mutex_unlock(&db->region->flush_mu);
	return rc;
}

/* Freezes the active memtable (when it holds anything) and flushes every
 * immutable one: after it returns LSM_OK, everything written before the
 * call is in SSTables. */
int lsm_flush(lsm_db *db)
{
	lsm_region *r;
	int rc = LSM_OK;

	if (db == NULL)
		return LSM_INVALID;
	r = db->region;
	pthread_mutex_lock(&r->write_mu);
	if (atomic_load(&lsm_slot_arena(r, r->active)->entries) > 0) {
		while ((rc = lsm_db_switch_memtable(db)) == LSM_BUSY) {
			/* No free slot: flush one here if one awaits its flush;
			 * otherwise retired ones are pinned by readers, so wait
			 * as a writer would (our own iterators let go first). */
			pthread_mutex_unlock(&r->write_mu);
			if (oldest_immutable(r) >= 0) {
				if ((rc = lsm_flush_oldest(db)) != LSM_OK)
					return rc;
			} else if (lsm_db_stall(db) != LSM_OK) {
				return LSM_BUSY;
			}
			pthread_mutex_lock(&r->write_mu);
		}
	}
	pthread_mutex_unlock(&r->write_mu);
	while (rc == LSM_OK && oldest_immutable(r) >= 0)
		rc = lsm_flush_oldest(db);
	return rc;
}

/* ------------------------------------------------------- background threads */

static void set_bg_error(lsm_db *db, int rc)
{
	lsm_region *r = db->region;

	pthread_mutex_lock(&r->write_mu);
	if (r->bg_error == LSM_OK)
		r->bg_error = rc;
	pthread_mutex_unlock(&r->write_mu);
	pthread_mutex_lock(&r->bg_mu);
	pthread_cond_broadcast(&r->stall_cv);
	pthread_cond_broadcast(&r->flush_cv);
	pthread_mutex_unlock(&r->bg_mu);
}

/* Whether the failure just returned was the flush hook's (which leaves
 * the memtable as it was: a later flush retries).  Every flush and every
 * background step clears the flag first. */
static int hook_refused(lsm_db *db)
{
	return db->flush_hook_failed;
}

/* Sleeps until `ready` or stop; returns 0 on stop (or a sticky error). */
static int wait_for(lsm_db *db, int (*ready)(lsm_db *))
{
	lsm_region *r = db->region;
	int go;

	pthread_mutex_lock(&r->bg_mu);
	while (!db->bg_stop && r->bg_error == LSM_OK && !ready(db))
		pthread_cond_wait(&r->flush_cv, &r->bg_mu);
	go = !db->bg_stop && r->bg_error == LSM_OK;
	pthread_mutex_unlock(&r->bg_mu);
	return go;
}

static int flush_ready(lsm_db *db)
{
	return oldest_immutable(db->region) >= 0;
}

static void wake_all(lsm_db *db)
{
	pthread_mutex_lock(&db->region->bg_mu);
	pthread_cond_broadcast(&db->region->flush_cv);
	pthread_mutex_unlock(&db->region->bg_mu);
}

static void *flush_main(void *arg)
{
	lsm_db *db = arg;

	while (wait_for(db, flush_ready)) {
		int rc = lsm_flush_oldest(db);

		if (rc != LSM_OK && hook_refused(db)) {
			struct timespec pause = {0, 100 * 1000 * 1000};

			nanosleep(&pause, NULL);
			continue;
		}
		if (rc != LSM_OK) {
			set_bg_error(db, rc);
			break;
		}
		wake_all(db);          /* the compactor: L0 grew */
	}
	return NULL;
}

static void *compact_main(void *arg)
{
	lsm_db *db = arg;

	while (wait_for(db, lsm_compaction_wanted)) {
		int rc = lsm_compact_step(db);

		if (rc != LSM_OK) {
			set_bg_error(db, rc);
			break;
		}
	}
	return NULL;
}

int lsm_bg_start(lsm_db *db)
{
	void *(*mains[2])(void *) = {flush_main, compact_main};

	db->bg_stop = 0;
	for (int i = 0; i < 2; i++) {
		if (pthread_create(&db->bg_thread[i], NULL, mains[i], db) != 0) {
			lsm_bg_stop(db);
			return LSM_NOMEM;
		}
		db->bg_running = i + 1;
	}
	return LSM_OK;
}

void lsm_bg_stop(lsm_db *db)
{
	lsm_region *r = db->region;

	if (!db->bg_running)
		return;
	pthread_mutex_lock(&r->bg_mu);
	db->bg_stop = 1;
	pthread_cond_broadcast(&r->flush_cv);
	pthread_mutex_unlock(&r->bg_mu);
	for (int i = 0; i < db->bg_running; i++)
		pthread_join(db->bg_thread[i], NULL);
	db->bg_running = 0;
}

/* ------------------------------------------------ background work, by step */

/* Whether the WAL holds appended records no fsync covers yet. */
static int wal_unsynced(lsm_region *r)
{
	uint64_t appended;

	pthread_mutex_lock(&r->write_mu);
	appended = r->wal.append_lsn;
	pthread_mutex_unlock(&r->write_mu);
	return atomic_load(&r->wal.synced_lsn) < appended;
}

int lsm_background_step(lsm_db *db, unsigned work, unsigned *pending)
{
	lsm_region *r;
	int rc = LSM_OK;

	if (pending)
		*pending = 0;
	if (db == NULL)
		return LSM_INVALID;
	r = db->region;
	if (r->bg_error)
		return r->bg_error;
	db->flush_hook_failed = 0;
	if ((work & LSM_WORK_FLUSH) && oldest_immutable(r) >= 0) {
		if ((rc = lsm_flush_oldest(db)) == LSM_OK)
			wake_all(db);
	} else if ((work & LSM_WORK_COMPACT) && lsm_compaction_wanted(db)) {
		rc = lsm_compact_step(db);
	} else if (__atomic_load_n(&r->nzombies, __ATOMIC_RELAXED) != 0) {
		lsm_db_remove_obsolete(db);   /* readers that held them may be gone */
	}
	if (rc != LSM_OK) {
		if (!hook_refused(db))
			set_bg_error(db, rc);
		return rc;
	}
	if ((work & LSM_WORK_SYNC) && (rc = lsm_sync_wal(db)) != LSM_OK)
		return rc;
	if (pending) {
		*pending |= oldest_immutable(r) >= 0 ? LSM_WORK_FLUSH : 0;
		*pending |= lsm_compaction_wanted(db) ? LSM_WORK_COMPACT : 0;
		*pending |= wal_unsynced(r) ? LSM_WORK_SYNC : 0;
	}
	return LSM_OK;
}

void lsm_background_wait(lsm_db *db, unsigned timeout_ms)
{
	lsm_region *r;

	if (db == NULL)
		return;
	r = db->region;
	pthread_mutex_lock(&r->bg_mu);
	if (r->bg_error == LSM_OK && oldest_immutable(r) < 0)
		(void)lsm_cond_wait_ms(&r->flush_cv, &r->bg_mu, timeout_ms);
	pthread_mutex_unlock(&r->bg_mu);
}
