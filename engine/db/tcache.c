/*
 * tcache.c — the table cache: this process's open SSTable readers.
 *
 * Each process opens its own file descriptors (DESIGN.md), so the table
 * cache is process-local: file number -> open lsm_table, opened on first
 * use, closed only when the file itself is deleted as obsolete.  That is
 * safe because every reader reaches a table through a version it holds a
 * reference on, and a file becomes obsolete only when no live version of
 * this process lists it (db.c keeps the list).
 *
 * Opening happens outside the lock (it reads the file); two threads racing
 * to open the same table both open it and the loser closes its copy.
 *
 * Invariants: slots[] is an open-addressing table (linear probing) with
 * load <= 1/2; a number appears at most once; deleted entries are
 * tombstoned (number UINT64_MAX) and swept on growth.
 */
#include <stdio.h>
#include <stdlib.h>

#include "dbint.h"
#include "status.h"
#include "version.h"

#define TOMBSTONE UINT64_MAX

static size_t slot_of(uint64_t number, size_t cap)
{
	return (size_t)((number * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

int lsm_tcache_init(lsm_tcache *tc)
{
	tc->cap = 64;
	tc->n = tc->used = 0;
	tc->slots = calloc(tc->cap, sizeof *tc->slots);
	if (tc->slots == NULL)
		return LSM_NOMEM;
	pthread_mutex_init(&tc->mu, NULL);
	return LSM_OK;
}

void lsm_tcache_free(lsm_tcache *tc)
{
	if (tc->slots == NULL)
		return;
	for (size_t i = 0; i < tc->cap; i++)
		if (tc->slots[i].table)
			lsm_table_close(tc->slots[i].table);
	free(tc->slots);
	tc->slots = NULL;
	pthread_mutex_destroy(&tc->mu);
}

/* The slot of number, or the first free one on its probe path. */
static lsm_tcache_slot *probe(lsm_tcache *tc, uint64_t number, int for_insert)
{
	size_t i = slot_of(number, tc->cap);
	lsm_tcache_slot *free_slot = NULL;

	for (;; i = (i + 1) & (tc->cap - 1)) {
		lsm_tcache_slot *s = &tc->slots[i];

		if (s->table == NULL && s->number != TOMBSTONE)
			return for_insert && free_slot ? free_slot : (for_insert ? s : NULL);
		if (s->number == TOMBSTONE) {
			if (free_slot == NULL)
				free_slot = s;
			continue;
		}
		if (s->number == number)
			return s;
	}
}

static int grow(lsm_tcache *tc)
{
	lsm_tcache_slot *old = tc->slots;
	size_t oldcap = tc->cap, cap = tc->n * 4 > 64 ? tc->n * 4 : 64;

	/* power of two */
	while (cap & (cap - 1))
		cap &= cap - 1;
	cap <<= 1;
	tc->slots = calloc(cap, sizeof *tc->slots);
	if (tc->slots == NULL) {
		tc->slots = old;
		return LSM_NOMEM;
	}
	tc->cap = cap;
	tc->used = tc->n;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].table)
			*probe(tc, old[i].number, 1) = old[i];
	free(old);
	return LSM_OK;
}

int lsm_tcache_get(lsm_db *db, uint64_t number, lsm_table **out)
{
	lsm_tcache *tc = &db->tcache;
	lsm_tcache_slot *s;
	lsm_table *t;
	char path[4096];
	int rc;

	pthread_mutex_lock(&tc->mu);
	s = probe(tc, number, 0);
	*out = s ? s->table : NULL;
	pthread_mutex_unlock(&tc->mu);
	if (*out)
		return LSM_OK;

	if ((rc = lsm_sst_path(db->dir, number, path, sizeof path)) != LSM_OK)
		return rc;
	rc = lsm_table_open(db->env, path, number, db->cache, &db->table_opts, &t);
	if (rc == LSM_NOTFOUND)        /* a live version names it: it must exist */
		rc = lsm_error_note(path, -1, "missing, though the manifest lists it");
	if (rc != LSM_OK)
		return rc;

	pthread_mutex_lock(&tc->mu);
	if ((s = probe(tc, number, 0)) != NULL) {
		/* lost the race: use the winner's (read under the lock: another
		 * thread's grow may free the slots once it is released) */
		*out = s->table;
		pthread_mutex_unlock(&tc->mu);
		lsm_table_close(t);
		return LSM_OK;
	}
	if ((tc->used + 1) * 2 > tc->cap && (rc = grow(tc)) != LSM_OK) {
		pthread_mutex_unlock(&tc->mu);
		lsm_table_close(t);
		return rc;
	}
	s = probe(tc, number, 1);
	if (s->number != TOMBSTONE)
		tc->used++;
	s->number = number;
	s->table = t;
	tc->n++;
	pthread_mutex_unlock(&tc->mu);
	*out = t;
	return LSM_OK;
}

void lsm_tcache_evict(lsm_db *db, uint64_t number)
{
	lsm_tcache *tc = &db->tcache;
	lsm_tcache_slot *s;
	lsm_table *t = NULL;

	pthread_mutex_lock(&tc->mu);
	if ((s = probe(tc, number, 0)) != NULL) {
		t = s->table;
		s->table = NULL;
		s->number = TOMBSTONE;
		tc->n--;
	}
	pthread_mutex_unlock(&tc->mu);
	if (t)
		lsm_table_close(t);
	if (db->cache)
		lsm_cache_erase_file(db->cache, number);
}

void lsm_tcache_prune(lsm_db *db, int (*keep)(void *arg, uint64_t number), void *arg)
{
	lsm_tcache *tc = &db->tcache;
	uint64_t drop[64];
	size_t n;

	do {                          /* at most 64 a round, outside the lock */
		n = 0;
		pthread_mutex_lock(&tc->mu);
		for (size_t i = 0; i < tc->cap && n < 64; i++) {
			uint64_t num = tc->slots[i].number;

			if (num != 0 && num != TOMBSTONE && !keep(arg, num))
				drop[n++] = num;
		}
		pthread_mutex_unlock(&tc->mu);
		for (size_t i = 0; i < n; i++) {
			lsm_tcache_slot *s;
			lsm_table *t = NULL;

			pthread_mutex_lock(&tc->mu);
			if ((s = probe(tc, drop[i], 0)) != NULL) {
				t = s->table;
				s->table = NULL;
				s->number = TOMBSTONE;
				tc->n--;
			}
			pthread_mutex_unlock(&tc->mu);
			if (t)
				lsm_table_close(t);
		}
	} while (n == 64);
}
