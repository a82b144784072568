/*
 * tcache.c — the table cache: this process's open SSTables, within a
 * byte budget and a count of files.
 *
 * Each process opens its own file descriptors (DESIGN.md), and an open
 * table keeps its index, filter and range deletions in process memory, so
 * the cache is process-local and bounded: options.table_cache_size bytes
 * (lsm_table_memory) and options.max_open_files tables.  Callers pin a
 * table for the length of a use (lsm_tcache_get ... lsm_tcache_put, or an
 * iterator from lsm_tcache_iter, which unpins when destroyed).  When the
 * cache is over a bound it closes the least recently used unpinned tables;
 * a pinned table is never closed, so the bounds are exceeded only by what
 * the running calls hold at once.
 *
 * Opening happens outside the lock (it reads the file); two threads racing
 * to open the same table both open it and the loser closes its copy.
 *
 * Invariants
 *   T1  slots[] is an open-addressing table (linear probing) with load
 *       <= 1/2; a number appears at most once; deleted entries are
 *       tombstoned (number UINT64_MAX) and swept on growth.
 *   T2  An entry is listed (in slots[]) or detached.  A listed entry with
 *       refs == 0 is on the LRU list (oldest first); no other entry is.
 *   T3  bytes and n count the listed entries exactly.
 *   T4  A detached entry is closed by whoever drops its last pin: the file
 *       was deleted (lsm_tcache_evict) or pruned while a call still used it.
 *   All of it is guarded by mu; tables are opened and closed without it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbint.h"
#include "status.h"
#include "version.h"

#define TOMBSTONE UINT64_MAX

static size_t slot_of(uint64_t number, size_t cap)
{
	return (size_t)((number * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

int lsm_tcache_init(lsm_tcache *tc, size_t budget, size_t max_open)
{
	memset(tc, 0, sizeof *tc);
	tc->cap = 64;
	tc->budget = budget;
	tc->max_open = max_open;
	tc->slots = calloc(tc->cap, sizeof *tc->slots);
	if (tc->slots == NULL)
		return LSM_NOMEM;
	pthread_mutex_init(&tc->mu, NULL);
	return LSM_OK;
}

static void close_entry(lsm_tcache_entry *e)
{
	lsm_table_close(e->table);
	free(e);
}

void lsm_tcache_free(lsm_tcache *tc)
{
	if (tc->slots == NULL)
		return;
	for (size_t i = 0; i < tc->cap; i++)
		if (tc->slots[i].e)
			close_entry(tc->slots[i].e);
	free(tc->slots);
	tc->slots = NULL;
	pthread_mutex_destroy(&tc->mu);
}

/* The slot of number, or (for_insert) the first free one on its path. */
static lsm_tcache_slot *probe(lsm_tcache *tc, uint64_t number, int for_insert)
{
	size_t i = slot_of(number, tc->cap);
	lsm_tcache_slot *free_slot = NULL;

	for (;; i = (i + 1) & (tc->cap - 1)) {
		lsm_tcache_slot *s = &tc->slots[i];

		if (s->e == NULL && s->number != TOMBSTONE)
			return for_insert ? (free_slot ? free_slot : s) : NULL;
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

	while (cap & (cap - 1))       /* round down to a power of two, then double */
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
		if (old[i].e)
			*probe(tc, old[i].number, 1) = old[i];
	free(old);
	return LSM_OK;
}

static void lru_remove(lsm_tcache *tc, lsm_tcache_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		tc->lru_oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		tc->lru_newest = e->older;
	e->older = e->newer = NULL;
}

static void lru_append(lsm_tcache *tc, lsm_tcache_entry *e)
{
	e->newer = NULL;
	e->older = tc->lru_newest;
	if (tc->lru_newest)
		tc->lru_newest->newer = e;
	else
		tc->lru_oldest = e;
	tc->lru_newest = e;
}

/* Takes s's entry out of the table (T1, T3); it stays on the LRU list. */
static lsm_tcache_entry *unlist(lsm_tcache *tc, lsm_tcache_slot *s)
{
	lsm_tcache_entry *e = s->e;

	s->e = NULL;
	s->number = TOMBSTONE;
	e->listed = 0;
	tc->n--;
	tc->bytes -= e->bytes;
	return e;
}

/* Unlists unpinned tables, oldest first, while the cache is over a bound;
 * returns them chained through `older`, for the caller to close unlocked. */
static lsm_tcache_entry *over_budget(lsm_tcache *tc)
{
	lsm_tcache_entry *victims = NULL;

	while (tc->lru_oldest && (tc->bytes > tc->budget || tc->n > tc->max_open)) {
		lsm_tcache_entry *e = tc->lru_oldest;

		lru_remove(tc, e);
		unlist(tc, probe(tc, e->number, 0));
		tc->evictions++;
		e->older = victims;
		victims = e;
	}
	return victims;
}

static void close_chain(lsm_tcache_entry *e)
{
	while (e) {
		lsm_tcache_entry *next = e->older;

		close_entry(e);
		e = next;
	}
}

static void pin(lsm_tcache *tc, lsm_tcache_entry *e)
{
	if (e->refs++ == 0)
		lru_remove(tc, e);
}

int lsm_tcache_get(lsm_db *db, uint64_t number, lsm_tcache_entry **out)
{
	lsm_tcache *tc = &db->tcache;
	lsm_tcache_entry *e, *victims;
	lsm_tcache_slot *s;
	lsm_table *t;
	char path[4096];
	int rc;

	*out = NULL;
	pthread_mutex_lock(&tc->mu);
	if ((s = probe(tc, number, 0)) != NULL) {
		pin(tc, s->e);
		*out = s->e;
	}
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
	if ((e = calloc(1, sizeof *e)) == NULL) {
		lsm_table_close(t);
		return LSM_NOMEM;
	}
	e->tc = tc;
	e->number = number;
	e->table = t;
	e->bytes = lsm_table_memory(t);
	e->refs = 1;
	e->listed = 1;

	pthread_mutex_lock(&tc->mu);
	if ((s = probe(tc, number, 0)) != NULL) {
		/* lost the race: use the winner's */
		pin(tc, s->e);
		*out = s->e;
		pthread_mutex_unlock(&tc->mu);
		close_entry(e);
		return LSM_OK;
	}
	if ((tc->used + 1) * 2 > tc->cap && (rc = grow(tc)) != LSM_OK) {
		pthread_mutex_unlock(&tc->mu);
		close_entry(e);
		return rc;
	}
	s = probe(tc, number, 1);
	if (s->number != TOMBSTONE)
		tc->used++;
	s->number = number;
	s->e = e;
	tc->n++;
	tc->bytes += e->bytes;
	tc->opens++;
	victims = over_budget(tc);
	pthread_mutex_unlock(&tc->mu);
	close_chain(victims);
	*out = e;
	return LSM_OK;
}

void lsm_tcache_put(lsm_tcache_entry *e)
{
	lsm_tcache *tc = e->tc;
	lsm_tcache_entry *victims = NULL;

	pthread_mutex_lock(&tc->mu);
	if (--e->refs == 0) {
		if (e->listed) {
			lru_append(tc, e);
			victims = over_budget(tc);
		} else {
			victims = e;          /* detached: ours to close (T4) */
			e->older = NULL;
		}
	}
	pthread_mutex_unlock(&tc->mu);
	close_chain(victims);
}

static void unpin_iter(void *arg)
{
	lsm_tcache_put(arg);
}

int lsm_tcache_iter(lsm_db *db, uint64_t number, int fill_cache, lsm_iiter **out)
{
	lsm_tcache_entry *e;
	int rc = lsm_tcache_get(db, number, &e);

	*out = NULL;
	if (rc != LSM_OK)
		return rc;
	rc = lsm_table_iter_create_pinned(e->table, fill_cache, unpin_iter, e, out);
	if (rc != LSM_OK)
		lsm_tcache_put(e);
	return rc;
}

int lsm_tcache_add_rdels(lsm_db *db, uint64_t number, struct lsm_rdel_set *set)
{
	const lsm_table_rdel *td;
	lsm_tcache_entry *e;
	size_t n;
	int rc = lsm_tcache_get(db, number, &e);

	if (rc != LSM_OK)
		return rc;
	td = lsm_table_range_dels(e->table, &n);
	for (size_t j = 0; j < n && rc == LSM_OK; j++)
		rc = lsm_rdel_add(set, td[j].start, td[j].slen, td[j].end, td[j].elen, td[j].seq);
	lsm_tcache_put(e);
	return rc;
}

/* Unlists number's entry; returns it when nobody pins it (to be closed by
 * the caller, unlocked), NULL when absent or pinned (then T4). */
static lsm_tcache_entry *drop_number(lsm_tcache *tc, uint64_t number)
{
	lsm_tcache_slot *s = probe(tc, number, 0);
	lsm_tcache_entry *e;

	if (s == NULL)
		return NULL;
	e = unlist(tc, s);
	if (e->refs != 0)
		return NULL;
	lru_remove(tc, e);
	return e;
}

void lsm_tcache_evict(lsm_db *db, uint64_t number)
{
	lsm_tcache *tc = &db->tcache;
	lsm_tcache_entry *e;

	pthread_mutex_lock(&tc->mu);
	e = drop_number(tc, number);
	pthread_mutex_unlock(&tc->mu);
	if (e)
		close_entry(e);
	if (db->cache)
		lsm_cache_erase_file(db->cache, number);
}

void lsm_tcache_prune(lsm_db *db, int (*keep)(void *arg, uint64_t number), void *arg)
{
	lsm_tcache *tc = &db->tcache;
	uint64_t drop[64];
	size_t n;

	do {                          /* at most 64 a round; closed unlocked */
		lsm_tcache_entry *victims = NULL;

		n = 0;
		pthread_mutex_lock(&tc->mu);
		for (size_t i = 0; i < tc->cap && n < 64; i++) {
			uint64_t num = tc->slots[i].number;

			if (tc->slots[i].e != NULL && !keep(arg, num))
				drop[n++] = num;
		}
		for (size_t i = 0; i < n; i++) {
			lsm_tcache_entry *e = drop_number(tc, drop[i]);

			if (e) {
				e->older = victims;
				victims = e;
			}
		}
		pthread_mutex_unlock(&tc->mu);
		close_chain(victims);
	} while (n == 64);
}

void lsm_tcache_get_stats(lsm_db *db, lsm_stats *st)
{
	lsm_tcache *tc = &db->tcache;

	pthread_mutex_lock(&tc->mu);
	st->open_tables = tc->n;
	st->table_cache_bytes = tc->bytes;
	st->table_opens = tc->opens;
	st->table_cache_evictions = tc->evictions;
	pthread_mutex_unlock(&tc->mu);
}
