/*
 * fileset.c — this process's view of the database's files: the current
 * version, the versions still in use, new file numbers, manifest writes,
 * and the removal of files nothing needs any more.
 *
 * Versions in use.  Readers take the current version with a reference.
 * Every version that has ever been current is also kept in db->live with
 * one reference of its own; a version whose only reference is that one,
 * and which is no longer current, is dead and dropped when obsolete files
 * are removed.  An SSTable is obsolete when no live version lists it and
 * it is not an output being written (db->pending): only then is it
 * deleted, its reader closed and its cached blocks dropped.
 *
 * Locks: flush_mu / compact_mu (held by a flush / compaction around its
 * whole job) before version_mu (held briefly for every field here).  No env call that waits
 * on the disk runs under version_mu except the manifest append itself,
 * which must be ordered with the in-memory install.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbint.h"

#define MANIFEST_MAX_SIZE (64u << 20)

lsm_version *lsm_db_current_version(lsm_db *db)
{
	lsm_version *v;

	pthread_mutex_lock(&db->version_mu);
	v = db->mstate.version;
	lsm_version_ref(v);
	pthread_mutex_unlock(&db->version_mu);
	return v;
}

int lsm_db_new_file(lsm_db *db, uint64_t *number)
{
	int rc = LSM_OK;

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
		*number = db->mstate.next_file_number++;
		db->pending[db->npending++] = *number;
	}
	pthread_mutex_unlock(&db->version_mu);
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
	pthread_mutex_unlock(&db->version_mu);
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

int lsm_db_log_and_apply(lsm_db *db, lsm_version_edit *e)
{
	uint64_t rotate_to = 0;
	int rc;

	pthread_mutex_lock(&db->version_mu);
	if (lsm_manifest_should_rotate(db->manifest))
		rotate_to = db->mstate.next_file_number++;
	lsm_edit_set_next_file(e, db->mstate.next_file_number);
	rc = lsm_manifest_log_and_apply(db->manifest, &db->mstate, e, rotate_to);
	if (rc == LSM_OK) {
		atomic_store(&db->region->l0_files, (uint32_t)db->mstate.version->nfiles[0]);
		lsm_version_ref(db->mstate.version);
		if (remember(db, db->mstate.version) != LSM_OK)
			lsm_version_unref(db->mstate.version);   /* only costs a late delete */
	}
	pthread_mutex_unlock(&db->version_mu);
	return rc;
}

/* Drops dead versions; returns the file numbers of live non-current
 * versions in *extra (malloc'd) for the obsolete decision.  version_mu. */
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

/* Before the files go, close their readers: a closed reader never
 * outlives the version that listed the file, see the top comment. */
static int evict_obsolete(void *arg, const char *name)
{
	sst_scan *s = arg;
	uint64_t number;

	if (lsm_sst_parse_name(name, &number) && !kept(s, number))
		lsm_tcache_evict(s->db, number);
	return LSM_OK;
}

void lsm_db_remove_obsolete(lsm_db *db)
{
	uint64_t *extra = NULL, *keep;
	size_t nextra = 0, nkeep;
	lsm_live_files live;
	lsm_version *cur;
	sst_scan scan;
	uint64_t removed = 0;

	pthread_mutex_lock(&db->version_mu);
	if (live_extra_files(db, &extra, &nextra) != LSM_OK) {
		pthread_mutex_unlock(&db->version_mu);
		return;                               /* try again next time */
	}
	nkeep = nextra + db->npending;
	keep = realloc(extra, (nkeep ? nkeep : 1) * sizeof *keep);
	if (keep == NULL) {
		free(extra);
		pthread_mutex_unlock(&db->version_mu);
		return;
	}
	if (db->npending)
		memcpy(keep + nextra, db->pending, db->npending * sizeof *keep);
	cur = db->mstate.version;
	live = (lsm_live_files){cur, db->log_number, db->mstate.manifest_number, keep, nkeep};
	scan = (sst_scan){db, cur, keep, nkeep};
	/* Still under version_mu: a file created after the directory is
	 * listed must not be judged by a live set taken before its number was
	 * handed out (lsm_db_new_file takes version_mu).  Unlinks are cheap
	 * metadata operations, so holding it is fine.  Errors are not fatal:
	 * a file left behind goes next time. */
	db->env->list_dir(db->env, db->dir, evict_obsolete, &scan);
	(void)lsm_obsolete_remove(db->env, db->dir, &live, &removed);
	pthread_mutex_unlock(&db->version_mu);
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
	db->flushed_seq = db->mstate.last_sequence;
	db->log_number = db->mstate.log_number;
	atomic_store(&db->region->l0_files, (uint32_t)db->mstate.version->nfiles[0]);
	lsm_version_ref(db->mstate.version);
	if ((rc = remember(db, db->mstate.version)) != LSM_OK)
		lsm_version_unref(db->mstate.version);
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
