/*
 * fileset.c — the database's files as every process sees them: the
 * current version, versions still in use, new file numbers, manifest
 * writes, and the removal of files nothing needs any more.
 *
 * Versions.  Each process builds its own versions from the manifest
 * (ARCHITECTURE.md, "Versions").  The region counts the edits logged
 * (edit_seq) and names the live manifest; a process whose edit_seq is
 * behind reads the edits it missed (catch_up) before it hands out a
 * version or logs an edit of its own.  Every manifest write happens under
 * the region's manifest_mu, after catching up, so the manifest is one
 * sequence of edits whoever wrote them.
 *
 * Pins.  A reader's version is pinned in the process's region slot
 * (lsm_proc_slot, dbint.h); a table some edit drops becomes a zombie,
 * deleted only when every process's oldest pinned edit is at or past the
 * edit that dropped it.  A reader pins, then re-checks that no edit came
 * after its version (both sequentially consistent, the deleter reading the
 * slots after the edit is published), so either the reader sees the new
 * edit and retries on it, or the deleter sees the pin.
 *
 * Each process also keeps every version that has been its current one in
 * db->live (one reference of its own) until no reader uses it: its table
 * cache keeps a table open while any of them lists it.
 *
 * Locks: the region's flush_mu / compact_mu (around a whole job), then its
 * manifest_mu, then this process's version_mu (held briefly).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbint.h"

#define MANIFEST_MAX_SIZE (64u << 20)

/* ------------------------------------------------------------------ pins */

/* Recomputes the oldest edit among this process's non-current versions in
 * use (more than the live list's own reference).  version_mu held. */
static void recompute_old_edit(lsm_db *db)
{
	uint64_t m = db->unlisted_edit;

	for (size_t i = 0; i < db->nlive; i++) {
		lsm_version *lv = db->live[i];

		if (lv != db->mstate.version && atomic_load(&lv->refs) > 1 && lv->edit_seq < m)
			m = lv->edit_seq;
	}
	atomic_store(&db->proc->old_edit, m);
}

/* Keeps v (already referenced for the list) among the live versions. */
static int remember(lsm_db *db, lsm_version *v)
{
	if (db->nlive == db->live_cap) {
		size_t cap = db->live_cap ? 2 * db->live_cap : 16;
		lsm_version **nv = realloc(db->live, cap * sizeof *nv);

		if (nv == NULL)
			return LSM_NOMEM;
		db->live = nv;
		db->live_cap = cap;
	}
	db->live[db->nlive++] = v;
	return LSM_OK;
}

/* mstate.version just became current, reflecting region edit `tag`: the
 * old current version's pins move to old_edit (before cur_pins drops, see
 * the top comment), and the new one is remembered.  version_mu held. */
static void install_current(lsm_db *db, uint64_t tag)
{
	lsm_proc_slot *p = db->proc;
	lsm_version *v = db->mstate.version;
	uint64_t cur = atomic_load(&p->cur_edit);

	v->edit_seq = tag;
	if (atomic_load(&p->cur_pins) > 0 && cur < atomic_load(&p->old_edit))
		atomic_store(&p->old_edit, cur);
	atomic_store(&p->cur_pins, 0);
	atomic_store(&p->cur_edit, tag);
	lsm_version_ref(v);
	if (remember(db, v) != LSM_OK) {
		/* unlisted, its readers could not be found: pin its edit for good */
		lsm_version_unref(v);
		if (tag < db->unlisted_edit)
			db->unlisted_edit = tag;
		recompute_old_edit(db);
	}
	db->flushed_seq = db->mstate.last_sequence;
	db->log_number = db->mstate.log_number;
}

/* Whether a slot's process is attached (a process that died attached is
 * not: what it read no longer matters). */
static int slot_alive(lsm_proc_slot *p)
{
	uint32_t pid = atomic_load(&p->pid);

	return pid != 0 && !(kill((pid_t)pid, 0) != 0 && errno == ESRCH);
}

/* The oldest edit any process's readers may be using (UINT64_MAX: none). */
static uint64_t oldest_pinned_edit(lsm_region *r)
{
	lsm_proc_slot *procs = lsm_region_procs(r);
	uint64_t min = UINT64_MAX;

	for (uint32_t i = 0; i < r->n_procs; i++) {
		lsm_proc_slot *p = &procs[i];
		uint64_t e;

		if (!slot_alive(p))
			continue;
		/* this order: see install_current */
		if (atomic_load(&p->cur_pins) > 0 && (e = atomic_load(&p->cur_edit)) < min)
			min = e;
		if ((e = atomic_load(&p->old_edit)) < min)
			min = e;
	}
	return min;
}

/* The smallest output number any process is writing (UINT64_MAX: none). */
static uint64_t lowest_pending_floor(lsm_region *r)
{
	lsm_proc_slot *procs = lsm_region_procs(r);
	uint64_t min = UINT64_MAX, f;

	for (uint32_t i = 0; i < r->n_procs; i++)
		if (atomic_load(&procs[i].pid) != 0 &&
		    (f = atomic_load(&procs[i].pending_floor)) < min)
			min = f;
	return min;
}

/* --------------------------------------------------------------- catch-up */

static void close_unlisted_tables(lsm_db *db);

/* Reads the edits other processes logged since this process's last look.
 * manifest_mu held. */
static int catch_up_locked(lsm_db *db)
{
	lsm_region *r = db->region;
	uint64_t target = atomic_load(&r->edit_seq);
	lsm_manifest_state st;
	lsm_version *before;
	int rc, moved;

	if (db->edit_seq == target)
		return LSM_OK;
	if (db->mstate.manifest_number != r->manifest_number) {
		/* rotated: the new manifest starts with a snapshot */
		if ((rc = lsm_manifest_load(db->env, db->dir, r->manifest_number, &st, NULL)) != LSM_OK)
			return rc;
		pthread_mutex_lock(&db->version_mu);
		lsm_manifest_state_free(&db->mstate);
		db->mstate = st;
		lsm_manifest_close(db->manifest);   /* it wrote the old one */
		db->manifest = NULL;
		install_current(db, target);
		db->edit_seq = target;
		close_unlisted_tables(db);
		pthread_mutex_unlock(&db->version_mu);
		return LSM_OK;
	}
	pthread_mutex_lock(&db->version_mu);
	before = db->mstate.version;
	lsm_version_ref(before);
	rc = lsm_manifest_catch_up(db->env, db->dir, &db->mstate, LSM_MANIFEST_ALL, NULL);
	moved = db->mstate.version != before;
	if (moved)
		/* after a failure part-way, tagging it older than it is only
		 * protects more */
		install_current(db, rc == LSM_OK ? target : db->edit_seq);
	if (rc == LSM_OK)
		db->edit_seq = target;
	lsm_version_unref(before);
	if (moved)
		close_unlisted_tables(db);
	pthread_mutex_unlock(&db->version_mu);
	return rc;
}

int lsm_db_catch_up(lsm_db *db)
{
	lsm_region *r = db->region;
	int rc;

	pthread_mutex_lock(&r->manifest_mu);
	rc = catch_up_locked(db);
	pthread_mutex_unlock(&r->manifest_mu);
	return rc;
}

lsm_version *lsm_db_current_version(lsm_db *db)
{
	lsm_region *r = db->region;
	int stale_ok = 0;

	for (;;) {
		lsm_version *v = NULL;
		uint64_t e;

		pthread_mutex_lock(&db->version_mu);
		e = db->edit_seq;
		if (stale_ok || e == atomic_load(&r->edit_seq)) {
			v = db->mstate.version;
			lsm_version_ref(v);
			atomic_fetch_add(&db->proc->cur_pins, 1);
		}
		pthread_mutex_unlock(&db->version_mu);
		if (v != NULL) {
			if (stale_ok || atomic_load(&r->edit_seq) == e)
				return v;             /* pinned before any later edit */
			lsm_db_release_version(db, v);
		}
		/* Reading the manifest failed: read on what this process has;
		 * a table deleted meanwhile fails the read, never misleads it. */
		if (lsm_db_catch_up(db) != LSM_OK)
			stale_ok = 1;
	}
}

void lsm_db_release_version(lsm_db *db, lsm_version *v)
{
	if (v == NULL)
		return;
	pthread_mutex_lock(&db->version_mu);
	if (v == db->mstate.version) {
		atomic_fetch_sub(&db->proc->cur_pins, 1);
		lsm_version_unref(v);
	} else {
		lsm_version_unref(v);
		recompute_old_edit(db);
	}
	pthread_mutex_unlock(&db->version_mu);
}

/* ------------------------------------------------------- numbers, writes */

/* The smallest of this process's pending outputs, published as its floor.
 * version_mu held. */
static void publish_floor(lsm_db *db)
{
	uint64_t m = UINT64_MAX;

	for (size_t i = 0; i < db->npending; i++)
		if (db->pending[i] < m)
			m = db->pending[i];
	atomic_store(&db->proc->pending_floor, m);
}

int lsm_db_new_file(lsm_db *db, uint64_t *number)
{
	lsm_region *r = db->region;
	int rc = LSM_OK;

	pthread_mutex_lock(&r->manifest_mu);
	pthread_mutex_lock(&db->version_mu);
	if (db->npending == db->pending_cap) {
		size_t cap = db->pending_cap ? 2 * db->pending_cap : 16;
		uint64_t *v = realloc(db->pending, cap * sizeof *v);

		if (v == NULL)
			rc = LSM_NOMEM;
		else {
			db->pending = v;
			db->pending_cap = cap;
		}
	}
	if (rc == LSM_OK) {
		/* unregistered, a file being written could be judged garbage */
		*number = r->next_file_number++;
		db->pending[db->npending++] = *number;
		publish_floor(db);
	}
	pthread_mutex_unlock(&db->version_mu);
	pthread_mutex_unlock(&r->manifest_mu);
	return rc;
}

void lsm_db_release_file(lsm_db *db, uint64_t number)
{
	pthread_mutex_lock(&db->version_mu);
	for (size_t i = 0; i < db->npending; i++)
		if (db->pending[i] == number) {
			db->pending[i] = db->pending[--db->npending];
			break;
		}
	publish_floor(db);
	pthread_mutex_unlock(&db->version_mu);
}

/* This process's manifest writer, positioned after the last edit (other
 * processes may have appended since it last wrote).  manifest_mu held,
 * caught up. */
static int ready_writer(lsm_db *db)
{
	lsm_manifest_writer *w = db->manifest;

	if (w && w->error)
		return w->error;
	if (w && w->number == db->mstate.manifest_number) {
		w->size = db->mstate.offset;
		return LSM_OK;
	}
	lsm_manifest_close(w);
	db->manifest = NULL;
	return lsm_manifest_resume(db->env, db->dir, &db->mstate, MANIFEST_MAX_SIZE,
	                           &db->manifest);
}

/* The tables e drops for good (a trivial move drops and re-adds one). */
static void add_zombies(lsm_region *r, const lsm_version_edit *e, uint64_t edit)
{
	for (size_t i = 0; i < e->ndeleted; i++) {
		uint64_t num = e->deleted[i].number;
		size_t j = 0;

		while (j < e->nadded && e->added[j]->number != num)
			j++;
		if (j < e->nadded)
			continue;
		if (r->nzombies == LSM_MAX_ZOMBIES) {
			r->zombies_lost = 1;      /* the listing sweep finds it later */
			continue;
		}
		r->zombies[r->nzombies++] = (lsm_zombie){num, edit};
	}
}

int lsm_db_log_and_apply(lsm_db *db, lsm_version_edit *e)
{
	lsm_region *r = db->region;
	uint64_t rotate_to = 0, tag;
	int rc;

	pthread_mutex_lock(&r->manifest_mu);
	if ((rc = catch_up_locked(db)) != LSM_OK || (rc = ready_writer(db)) != LSM_OK) {
		pthread_mutex_unlock(&r->manifest_mu);
		return rc;
	}
	pthread_mutex_lock(&db->version_mu);
	if (lsm_manifest_should_rotate(db->manifest))
		rotate_to = r->next_file_number++;
	lsm_edit_set_next_file(e, r->next_file_number);
	rc = lsm_manifest_log_and_apply(db->manifest, &db->mstate, e, rotate_to);
	if (rc != LSM_OK && db->manifest->error)
		/* the edit may or may not be on disk: its tables may be live
		 * after a reopen, so nothing is deleted any more (manifest.h) */
		r->manifest_failed = 1;
	if (rc == LSM_OK) {
		tag = atomic_load(&r->edit_seq) + 1;
		add_zombies(r, e, tag);
		r->manifest_number = db->mstate.manifest_number;
		atomic_store(&r->edit_seq, tag);
		db->edit_seq = tag;
		install_current(db, tag);
		atomic_store(&r->l0_files, (uint32_t)db->mstate.version->nfiles[0]);
	}
	pthread_mutex_unlock(&db->version_mu);
	pthread_mutex_unlock(&r->manifest_mu);
	return rc;
}

/* --------------------------------------------------------- obsolete files */

/* Drops dead versions (no reader, not current); returns the file numbers
 * of the other live non-current versions in *extra (malloc'd).
 * version_mu held. */
static int live_extra_files(lsm_db *db, uint64_t **extra, size_t *nextra)
{
	size_t n = 0, cap = 0, kept = 0;
	uint64_t *v = NULL;

	for (size_t i = 0; i < db->nlive; i++) {
		lsm_version *lv = db->live[i];

		if (lv != db->mstate.version && atomic_load(&lv->refs) == 1) {
			lsm_version_unref(lv);
			continue;
		}
		db->live[kept++] = lv;
		if (lv == db->mstate.version)
			continue;
		for (int l = 0; l < LSM_MAX_LEVELS; l++)
			for (size_t f = 0; f < lv->nfiles[l]; f++) {
				if (n == cap) {
					uint64_t *nv;

					cap = cap ? 2 * cap : 64;
					if ((nv = realloc(v, cap * sizeof *nv)) == NULL) {
						free(v);
						return LSM_NOMEM;
					}
					v = nv;
				}
				v[n++] = lv->files[l][f]->number;
			}
	}
	db->nlive = kept;
	*extra = v;
	*nextra = n;
	return LSM_OK;
}

typedef struct sst_scan {
	lsm_db *db;
	const lsm_version *current;
	const uint64_t *keep;
	size_t nkeep;
} sst_scan;

static int kept(const sst_scan *s, uint64_t number)
{
	if (lsm_version_has_file(s->current, number))
		return 1;
	for (size_t i = 0; i < s->nkeep; i++)
		if (s->keep[i] == number)
			return 1;
	return 0;
}

static int keep_open(void *arg, uint64_t number)
{
	return kept(arg, number);
}

/* Closes the tables no version of this process lists: files other
 * processes' compactions dropped (an open descriptor would hold a deleted
 * file's space, and its index and filter this process's memory).  The
 * files the other live versions list go to *keep.  version_mu held. */
static int prune_tables(lsm_db *db, uint64_t **keep, size_t *nkeep)
{
	sst_scan scan;
	int rc = live_extra_files(db, keep, nkeep);

	if (rc != LSM_OK)
		return rc;
	scan = (sst_scan){db, db->mstate.version, *keep, *nkeep};
	lsm_tcache_prune(db, keep_open, &scan);
	return LSM_OK;
}

/* After this process moved to a newer version.  version_mu held. */
static void close_unlisted_tables(lsm_db *db)
{
	uint64_t *keep = NULL;
	size_t nkeep = 0;

	if (prune_tables(db, &keep, &nkeep) == LSM_OK)
		free(keep);
}

/* Deletes the zombies no process can be reading any more; the others
 * are kept (appended to *keep).  manifest_mu held. */
static void bury_zombies(lsm_db *db, uint64_t oldest, uint64_t **keep, size_t *nkeep)
{
	lsm_region *r = db->region;
	uint32_t left = 0;
	char path[4096];

	for (uint32_t i = 0; i < r->nzombies; i++) {
		lsm_zombie z = r->zombies[i];
		uint64_t *nv;

		if (z.drop_edit <= oldest) {
			lsm_tcache_evict(db, z.number);
			if (lsm_sst_path(db->dir, z.number, path, sizeof path) == LSM_OK)
				(void)db->env->remove(db->env, path);   /* a failure: the sweep retries */
			continue;
		}
		r->zombies[left++] = z;
		if ((nv = realloc(*keep, (*nkeep + 1) * sizeof *nv)) != NULL) {
			*keep = nv;
			(*keep)[(*nkeep)++] = z.number;
		}
	}
	r->nzombies = left;
}

void lsm_db_remove_obsolete(lsm_db *db)
{
	lsm_region *r = db->region;
	uint64_t *keep = NULL, oldest, floor;
	size_t nkeep = 0;
	lsm_live_files live;
	uint64_t removed = 0;
	int sweep;

	pthread_mutex_lock(&r->manifest_mu);
	if (r->manifest_failed || catch_up_locked(db) != LSM_OK) {
		pthread_mutex_unlock(&r->manifest_mu);
		return;                               /* try again next time */
	}
	pthread_mutex_lock(&db->version_mu);
	if (prune_tables(db, &keep, &nkeep) != LSM_OK) {
		pthread_mutex_unlock(&db->version_mu);
		pthread_mutex_unlock(&r->manifest_mu);
		return;
	}
	oldest = oldest_pinned_edit(r);
	bury_zombies(db, oldest, &keep, &nkeep);
	/* Every table a version drops is a zombie, so what the listing finds
	 * beyond the current version, the zombies, this process's live
	 * versions and anyone's outputs is debris of a crash.  If zombies were
	 * lost, their readers must be gone first. */
	sweep = !r->zombies_lost || oldest >= db->edit_seq;
	if (sweep)
		r->zombies_lost = 0;
	if (db->npending) {
		uint64_t *nv = realloc(keep, (nkeep + db->npending) * sizeof *nv);

		if (nv == NULL)
			sweep = 0;
		else {
			keep = nv;
			memcpy(keep + nkeep, db->pending, db->npending * sizeof *keep);
			nkeep += db->npending;
		}
	}
	floor = lowest_pending_floor(r);
	live = (lsm_live_files){db->mstate.version, db->log_number, db->mstate.manifest_number,
	                        keep, nkeep, floor == UINT64_MAX ? 0 : floor};
	/* Still under the locks: a file created after the directory is listed
	 * must not be judged by a live set taken before its number was handed
	 * out (lsm_db_new_file takes them).  Unlinks are cheap metadata
	 * operations.  Errors are not fatal: a file left behind goes next
	 * time. */
	if (sweep)
		(void)lsm_obsolete_remove(db->env, db->dir, &live, &removed);
	pthread_mutex_unlock(&db->version_mu);
	pthread_mutex_unlock(&r->manifest_mu);
	free(keep);
	lsm_db_count_wal_segments(db);
}

static int has_table(void *arg, const char *name)
{
	uint64_t n;

	if (lsm_sst_parse_name(name, &n))
		*(int *)arg = 1;
	return LSM_OK;
}

typedef struct present {
	uint64_t *v;
	size_t n, cap;
	int nomem;
} present;

static int note_table(void *arg, const char *name)
{
	present *p = arg;
	uint64_t n;

	if (!lsm_sst_parse_name(name, &n))
		return LSM_OK;
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		uint64_t *v = realloc(p->v, cap * sizeof *v);

		if (v == NULL) {
			p->nomem = 1;
			return LSM_NOMEM;
		}
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = n;
	return LSM_OK;
}

/*
 * Every table the version lists must exist.  One missing means the
 * manifest is behind what was done (its last edit damaged, which reads
 * exactly like a torn tail, after that edit's inputs were deleted) or that
 * files were removed behind our back; either way opening would lose data,
 * and the obsolete-file sweep would make it worse by deleting the tables
 * the lost edit had added.
 */
static int check_tables_present(lsm_db *db)
{
	const lsm_version *v = db->mstate.version;
	present p = {0};
	int rc = db->env->list_dir(db->env, db->dir, note_table, &p);

	for (int l = 0; l < LSM_MAX_LEVELS && rc == LSM_OK; l++)
		for (size_t i = 0; i < v->nfiles[l] && rc == LSM_OK; i++) {
			size_t j = 0;

			while (j < p.n && p.v[j] != v->files[l][i]->number)
				j++;
			if (j == p.n)
				rc = LSM_CORRUPTION;
		}
	free(p.v);
	return rc;
}

/*
 * Opens the file set at lsm_open: the manifest CURRENT names, or a new one
 * for a new database (or one written before SSTables existed, which has
 * only WAL segments: they are all replayed, log_number 0).
 */
int lsm_fileset_open(lsm_db *db)
{
	uint64_t dropped = 0;
	int rc;

	rc = lsm_manifest_recover(db->env, db->dir, &db->mstate, &dropped);
	if (rc == LSM_OK && (rc = check_tables_present(db)) != LSM_OK) {
		lsm_manifest_state_free(&db->mstate);
		memset(&db->mstate, 0, sizeof db->mstate);
		return rc;
	}
	if (rc == LSM_OK) {
		rc = lsm_manifest_resume(db->env, db->dir, &db->mstate,
		                         MANIFEST_MAX_SIZE, &db->manifest);
	} else if (rc == LSM_NOTFOUND) {
		/* No CURRENT: a new database, or one from before SSTables (WAL
		 * segments only).  The engine never removes CURRENT, only
		 * renames over it, so a manifest without one is a creation that
		 * crashed before naming it (it is replaced).  With tables around,
		 * CURRENT was lost: starting over would drop them, so refuse. */
		int found = 0;

		if ((rc = db->env->list_dir(db->env, db->dir, has_table, &found)) != LSM_OK)
			return rc;
		if (found)
			return LSM_CORRUPTION;
		if ((rc = lsm_manifest_state_init(&db->mstate)) != LSM_OK)
			return rc;
		db->mstate.has = LSM_EDIT_LOG_NUMBER | LSM_EDIT_NEXT_FILE | LSM_EDIT_LAST_SEQUENCE;
		db->mstate.log_number = 0;
		db->mstate.last_sequence = 0;
		db->mstate.next_file_number = 2;
		rc = lsm_manifest_create(db->env, db->dir, 1, &db->mstate,
		                         MANIFEST_MAX_SIZE, &db->manifest);
	}
	if (rc != LSM_OK)
		return rc;
	pthread_mutex_lock(&db->version_mu);
	install_current(db, 0);
	pthread_mutex_unlock(&db->version_mu);
	atomic_store(&db->region->l0_files, (uint32_t)db->mstate.version->nfiles[0]);
	return LSM_OK;
}

void lsm_fileset_publish(lsm_db *db)
{
	lsm_region *r = db->region;

	pthread_mutex_lock(&r->manifest_mu);
	r->manifest_number = db->mstate.manifest_number;
	if (db->mstate.next_file_number > r->next_file_number)
		r->next_file_number = db->mstate.next_file_number;
	db->edit_seq = atomic_load(&r->edit_seq);
	db->mstate.version->edit_seq = db->edit_seq;
	atomic_store(&db->proc->cur_edit, db->edit_seq);
	pthread_mutex_unlock(&r->manifest_mu);
}

int lsm_fileset_attach(lsm_db *db)
{
	lsm_region *r = db->region;
	int rc;

	pthread_mutex_lock(&r->manifest_mu);
	rc = lsm_manifest_load(db->env, db->dir, r->manifest_number, &db->mstate, NULL);
	if (rc == LSM_OK) {
		db->edit_seq = atomic_load(&r->edit_seq);
		pthread_mutex_lock(&db->version_mu);
		install_current(db, db->edit_seq);
		pthread_mutex_unlock(&db->version_mu);
	} else {
		memset(&db->mstate, 0, sizeof db->mstate);
	}
	pthread_mutex_unlock(&r->manifest_mu);
	return rc;
}

void lsm_fileset_close(lsm_db *db)
{
	for (size_t i = 0; i < db->nlive; i++)
		lsm_version_unref(db->live[i]);
	free(db->live);
	db->live = NULL;
	db->nlive = 0;
	lsm_manifest_close(db->manifest);
	db->manifest = NULL;
	free(db->pending);
	db->pending = NULL;
	db->npending = db->pending_cap = 0;
	if (db->mstate.version)
		lsm_manifest_state_free(&db->mstate);
}
