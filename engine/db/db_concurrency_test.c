/*
 * db_concurrency_test.c — many threads on one db: writers apply two-key
 * batches while readers check, at their snapshot, that a batch is seen
 * whole or not at all (by get and by iterator), and that every write a
 * writer finished is visible afterwards.  Odd writers defer visibility:
 * the same must hold for their batches.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "lsm.h"
#include "testutil.h"

#define NKEYS    500
#define NWRITERS 3
#define NREADERS 2
#define WRITES   4000

typedef struct shared {
	lsm_db *db;
	atomic_int writers_left;
	atomic_int failures;
	atomic_ullong reads;
} shared;

typedef struct warg { shared *s; int id; } warg;

static void pair_keys(int k, char *a, char *b)
{
	sprintf(a, "a%05d", k);
	sprintf(b, "b%05d", k);
}

static void *writer(void *p)
{
	warg *w = p;
	lsm_write_options wo = {0, w->id % 2};
	lsm_batch *b;
	test_rng rng;
	char ka[16], kb[16], val[32];
	int i;

	test_rng_seed(&rng, 1000 + (uint64_t)w->id);
	if (lsm_batch_create(&b) != LSM_OK) {
		atomic_fetch_add(&w->s->failures, 1);
		return NULL;
	}
	for (i = 0; i < WRITES; i++) {
		int k = (int)test_rng_uniform(&rng, NKEYS);

		pair_keys(k, ka, kb);
		lsm_batch_clear(b);
		if (test_rng_uniform(&rng, 10) == 0) {
			lsm_batch_delete(b, ka, strlen(ka));
			lsm_batch_delete(b, kb, strlen(kb));
		} else {
			snprintf(val, sizeof val, "w%d-%d", w->id, i);
			lsm_batch_put(b, ka, strlen(ka), val, strlen(val));
			lsm_batch_put(b, kb, strlen(kb), val, strlen(val));
		}
		if (lsm_write(w->s->db, &wo, b) != LSM_OK)
			atomic_fetch_add(&w->s->failures, 1);
	}
	/* a finished write is visible to everyone from now on */
	snprintf(val, sizeof val, "done%d", w->id);
	if (lsm_put(w->s->db, &wo, val, strlen(val), "1", 1) != LSM_OK)
		atomic_fetch_add(&w->s->failures, 1);
	else {
		void *v;
		size_t n;

		if (lsm_get(w->s->db, NULL, val, strlen(val), &v, &n) != LSM_OK)
			atomic_fetch_add(&w->s->failures, 1);
		else
			lsm_free(v);
	}
	lsm_batch_destroy(b);
	atomic_fetch_sub(&w->s->writers_left, 1);
	return NULL;
}

/* Both halves of pair k at snap: equal, or both absent.  (Two reads
 * without a snapshot may straddle a write, so callers racing writers pass
 * one.) */
static int pair_consistent(lsm_db *db, const lsm_snapshot *snap, int k)
{
	lsm_read_options ro = {0};
	char ka[16], kb[16];
	void *va = NULL, *vb = NULL;
	size_t na = 0, nb = 0;
	int ra, rb, ok;

	ro.snapshot = snap;
	pair_keys(k, ka, kb);
	ra = lsm_get(db, &ro, ka, strlen(ka), &va, &na);
	rb = lsm_get(db, &ro, kb, strlen(kb), &vb, &nb);
	ok = ra == rb && (ra == LSM_NOTFOUND || (ra == LSM_OK && na == nb && memcmp(va, vb, na) == 0));
	lsm_free(va);
	lsm_free(vb);
	return ok;
}

/* One iterator pass: the a-half and the b-half list the same pairs. */
static int scan_consistent(lsm_db *db)
{
	static __thread char vals[NKEYS][32];
	static __thread int seen[NKEYS];
	lsm_iter *it;
	size_t kl, vl;
	int ok = 1, k;
	const char *key, *v;
	char prev[64];
	size_t prevlen = 0;
	int first = 1;

	memset(seen, 0, sizeof seen);
	if (lsm_iter_create(db, NULL, &it) != LSM_OK)
		return 0;
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		int c;

		key = lsm_iter_key(it, &kl);
		v = lsm_iter_value(it, &vl);
		if (kl > sizeof prev)
			return 0;
		c = memcmp(prev, key, prevlen < kl ? prevlen : kl);
		if (!first && (c > 0 || (c == 0 && prevlen >= kl)))
			ok = 0;                         /* not strictly ascending */
		memcpy(prev, key, kl);
		prevlen = kl;
		first = 0;
		if (kl != 6 || (key[0] != 'a' && key[0] != 'b'))
			continue;
		k = atoi(key + 1);
		if (key[0] == 'a') {
			seen[k] = 1;
			snprintf(vals[k], sizeof vals[k], "%.*s", (int)vl, v);
		} else if (!seen[k] || strlen(vals[k]) != vl || memcmp(vals[k], v, vl) != 0)
			ok = 0;
		else
			seen[k] = 2;
	}
	for (k = 0; k < NKEYS; k++)
		if (seen[k] == 1)
			ok = 0;
	if (lsm_iter_status(it) != LSM_OK)
		ok = 0;
	lsm_iter_destroy(it);
	return ok;
}

static void *reader(void *p)
{
	shared *s = p;
	test_rng rng;
	const lsm_snapshot *snap;
	int i;

	test_rng_seed(&rng, (uint64_t)(uintptr_t)&rng);
	while (atomic_load(&s->writers_left) > 0) {
		if (lsm_snapshot_create(s->db, &snap) != LSM_OK) {
			atomic_fetch_add(&s->failures, 1);
			return NULL;
		}
		for (i = 0; i < 200; i++)
			if (!pair_consistent(s->db, snap, (int)test_rng_uniform(&rng, NKEYS)))
				atomic_fetch_add(&s->failures, 1);
		lsm_snapshot_release(s->db, snap);
		if (!scan_consistent(s->db))
			atomic_fetch_add(&s->failures, 1);
		atomic_fetch_add(&s->reads, 1);
	}
	return NULL;
}

TEST(batches_are_seen_whole_under_concurrency)
{
	const char *dir = test_tmpdir("conc");
	pthread_t w[NWRITERS], r[NREADERS];
	warg wa[NWRITERS];
	shared s;
	lsm_stats st;
	int i;

	memset(&s, 0, sizeof s);
	CHECK_OK(lsm_open(NULL, dir, &s.db));
	atomic_store(&s.writers_left, NWRITERS);
	for (i = 0; i < NREADERS; i++)
		pthread_create(&r[i], NULL, reader, &s);
	for (i = 0; i < NWRITERS; i++) {
		wa[i] = (warg){&s, i};
		pthread_create(&w[i], NULL, writer, &wa[i]);
	}
	for (i = 0; i < NWRITERS; i++)
		pthread_join(w[i], NULL);
	for (i = 0; i < NREADERS; i++)
		pthread_join(r[i], NULL);
	CHECK_EQ_INT(atomic_load(&s.failures), 0);
	CHECK(atomic_load(&s.reads) > 0);
	CHECK_OK(lsm_get_stats(s.db, &st));
	CHECK_EQ_U64(st.writes, NWRITERS * (WRITES + 1));
	CHECK_EQ_U64(st.memtable_entries, NWRITERS * (2 * WRITES + 1));
	CHECK(scan_consistent(s.db));
	CHECK_OK(lsm_close(s.db));
	/* and the same after recovery */
	CHECK_OK(lsm_open(NULL, dir, &s.db));
	for (i = 0; i < NKEYS; i++)
		CHECK(pair_consistent(s.db, NULL, i));
	CHECK(scan_consistent(s.db));
	CHECK_OK(lsm_close(s.db));
}
