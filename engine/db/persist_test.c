/*
 * persist_test.c — the engine with SSTables: flushes, compactions, range
 * deletions, snapshots and iterators across them, the compaction filter,
 * manual compaction (with and without a flush) and obsolete-file removal.
 *
 * Small memtables (64 KiB) and a small level base make a few thousand
 * writes go through several flushes and compactions, so every test here
 * crosses the memtable/SSTable boundary many times.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "testutil.h"
#include "lsm.h"

static lsm_options small_options(void)
{
	lsm_options o;

	lsm_options_init(&o);
	o.memtable_size = 64 * 1024;
	o.max_bytes_for_level_base = 256 * 1024;
	o.target_file_size = 64 * 1024;
	o.block_cache_size = 1 << 20;
	return o;
}

static lsm_db *open_small(const char *dir)
{
	lsm_options o = small_options();
	lsm_db *db = NULL;

	if (lsm_open(&o, dir, &db) != LSM_OK)
		return NULL;
	return db;
}

static void key_of(int i, char *k)
{
	snprintf(k, 32, "key%06d", i);
}

static void val_of(int i, int gen, char *v)
{
	snprintf(v, 200, "v%d.%d-%0100d", i, gen, i * 7 + gen);
}

/* 1 when key holds exactly want (NULL: absent) at snap. */
static int holds(lsm_db *db, const lsm_snapshot *snap, const char *key, const char *want)
{
	lsm_read_options ro = {0};
	void *v;
	size_t n;
	int rc, ok;

	ro.snapshot = snap;
	rc = lsm_get(db, &ro, key, strlen(key), &v, &n);
	if (want == NULL)
		return rc == LSM_NOTFOUND;
	ok = rc == LSM_OK && n == strlen(want) && memcmp(v, want, n) == 0;
	lsm_free(v);
	return ok;
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	size_t sl = strlen(suffix);

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);

		if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

TEST(overwrites_and_deletes_through_compactions)
{
	const char *dir = test_tmpdir("overwrite");
	lsm_db *db = open_small(dir);
	enum { N = 3000, GENS = 3 };
	static int gen_of[N];           /* -1: deleted */
	char k[32], v[200];
	lsm_stats st;
	test_rng r;

	CHECK(db != NULL);
	test_rng_seed(&r, 5);
	for (int g = 0; g < GENS; g++)
		for (int i = 0; i < N; i++) {
			key_of(i, k);
			if (g > 0 && test_rng_uniform(&r, 5) == 0) {
				CHECK_OK(lsm_delete(db, NULL, k, strlen(k)));
				gen_of[i] = -1;
			} else {
				val_of(i, g, v);
				CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
				gen_of[i] = g;
			}
		}
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK(st.flushes >= 10);
	CHECK(st.compactions >= 1);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < N; i++) {
			key_of(i, k);
			if (gen_of[i] < 0) {
				CHECK(holds(db, NULL, k, NULL));
			} else {
				val_of(i, gen_of[i], v);
				CHECK(holds(db, NULL, k, v));
			}
		}
		CHECK_OK(lsm_close(db));
		db = open_small(dir);
		CHECK(db != NULL);
	}
	/* a full scan agrees with the model */
	{
		lsm_iter *it;
		int i = 0, seen = 0;

		CHECK_OK(lsm_iter_create(db, NULL, &it));
		for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
			size_t kl, vl;
			const char *kk = lsm_iter_key(it, &kl);
			const char *vv = lsm_iter_value(it, &vl);

			while (i < N && gen_of[i] < 0)
				i++;
			CHECK(i < N);
			if (i >= N)
				break;
			key_of(i, k);
			val_of(i, gen_of[i], v);
			CHECK_MEM(kk, kl, k, strlen(k));
			CHECK_MEM(vv, vl, v, strlen(v));
			i++;
			seen++;
		}
		CHECK_OK(lsm_iter_status(it));
		while (i < N && gen_of[i] < 0)
			i++;
		CHECK_EQ_INT(i, N);
		lsm_iter_destroy(it);
		CHECK(seen > N / 2);
	}
	CHECK_OK(lsm_close(db));
}

TEST(snapshot_keeps_old_versions_through_compaction)
{
	const char *dir = test_tmpdir("snap");
	lsm_db *db = open_small(dir);
	const lsm_snapshot *snap;
	char k[32], v[200];

	CHECK(db != NULL);
	for (int i = 0; i < 1000; i++) {
		key_of(i, k);
		val_of(i, 0, v);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
	}
	CHECK_OK(lsm_snapshot_create(db, &snap));
	for (int g = 1; g < 4; g++)
		for (int i = 0; i < 1000; i++) {
			key_of(i, k);
			val_of(i, g, v);
			CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
		}
	for (int i = 0; i < 1000; i += 10)
		CHECK_OK(lsm_delete(db, NULL, (key_of(i, k), k), strlen(k)));
	CHECK_OK(lsm_compact_range(db, NULL, 0, NULL, 0));
	for (int i = 0; i < 1000; i++) {
		key_of(i, k);
		val_of(i, 0, v);
		CHECK(holds(db, snap, k, v));
		val_of(i, 3, v);
		CHECK(holds(db, NULL, k, i % 10 == 0 ? NULL : v));
	}
	lsm_snapshot_release(db, snap);
	CHECK_OK(lsm_close(db));
}

TEST(range_deletes_in_memtable_tables_and_after_compaction)
{
	const char *dir = test_tmpdir("rdel");
	lsm_db *db = open_small(dir);
	const lsm_snapshot *before;
	char k[32], v[200], a[32], b[32];

	CHECK(db != NULL);
	for (int i = 0; i < 2000; i++) {
		key_of(i, k);
		val_of(i, 0, v);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
	}
	CHECK_OK(lsm_snapshot_create(db, &before));
	key_of(100, a);
	key_of(1100, b);
	CHECK_EQ_INT(lsm_delete_range(db, NULL, b, strlen(b), a, strlen(a)), LSM_INVALID);
	CHECK_OK(lsm_delete_range(db, NULL, a, strlen(a), b, strlen(b)));
	/* rewrite a few inside the range: newer than the tombstone, visible */
	for (int i = 500; i < 510; i++) {
		key_of(i, k);
		val_of(i, 1, v);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
	}
	for (int stage = 0; stage < 3; stage++) {
		if (stage == 1)
			CHECK_OK(lsm_flush(db));
		if (stage == 2)
			CHECK_OK(lsm_compact_range(db, NULL, 0, NULL, 0));
		for (int i = 0; i < 2000; i += 3) {
			key_of(i, k);
			val_of(i, 0, v);
			CHECK(holds(db, before, k, v));
			if (i >= 500 && i < 510) {
				val_of(i, 1, v);
				CHECK(holds(db, NULL, k, v));
			} else {
				CHECK(holds(db, NULL, k, i >= 100 && i < 1100 ? NULL : v));
			}
		}
		/* iterators apply the tombstone too */
		{
			lsm_iter *it;
			int n = 0;

			CHECK_OK(lsm_iter_create(db, NULL, &it));
			for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
				n++;
			CHECK_OK(lsm_iter_status(it));
			CHECK_EQ_INT(n, 2000 - 1000 + 10);
			lsm_iter_destroy(it);
		}
	}
	lsm_snapshot_release(db, before);
	CHECK_OK(lsm_close(db));
	db = open_small(dir);
	CHECK(db != NULL);
	key_of(600, k);
	CHECK(holds(db, NULL, k, NULL));
	key_of(1500, k);
	val_of(1500, 0, v);
	CHECK(holds(db, NULL, k, v));
	CHECK_OK(lsm_close(db));
}

TEST(iterator_survives_flushes_while_writing)
{
	const char *dir = test_tmpdir("iterwrite");
	lsm_db *db = open_small(dir);
	char k[32], v[200];
	lsm_iter *it;
	int n = 0;

	CHECK(db != NULL);
	for (int i = 0; i < 1500; i++) {
		key_of(i, k);
		val_of(i, 0, v);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
	}
	/* like UPDATE t SET x = x + 1: scan and rewrite every row; the scan
	 * must see the old rows only, and the writes must not stall on the
	 * memtables the scan started with */
	CHECK_OK(lsm_iter_create(db, NULL, &it));
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *kk = lsm_iter_key(it, &kl);
		const char *vv = lsm_iter_value(it, &vl);

		key_of(n, k);
		val_of(n, 0, v);
		CHECK_MEM(kk, kl, k, strlen(k));
		CHECK_MEM(vv, vl, v, strlen(v));
		val_of(n, 1, v);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
		n++;
	}
	CHECK_OK(lsm_iter_status(it));
	CHECK_EQ_INT(n, 1500);
	lsm_iter_destroy(it);
	for (int i = 0; i < 1500; i += 11) {
		key_of(i, k);
		val_of(i, 1, v);
		CHECK(holds(db, NULL, k, v));
	}
	CHECK_OK(lsm_close(db));
}

/* ---- lsm_compact_range_tables: a memtable's range tombstone, no flush */

static int hook_calls;
static int hook_refuse;

static int counting_hook(void *arg)
{
	(void)arg;
	hook_calls++;
	return hook_refuse;
}

static lsm_db *open_roomy(const char *dir)
{
	lsm_options o = small_options();
	lsm_db *db = NULL;

	o.memtable_size = 4 << 20;         /* the test's later writes stay in it */
	o.wal_sync_every_writes = 0;
	o.wal_sync_every_bytes = 0;
	o.flush_hook = counting_hook;
	if (lsm_open(&o, dir, &db) != LSM_OK)
		return NULL;
	return db;
}

static uint64_t table_bytes(lsm_db *db)
{
	lsm_stats st;
	uint64_t bytes = 0;

	if (lsm_get_stats(db, &st) != LSM_OK)
		return UINT64_MAX;
	for (int l = 0; l < 7; l++)
		bytes += st.level_bytes[l];
	return bytes;
}

/* 2000 keys, all in tables. */
static void load_tables(lsm_db *db)
{
	char k[32], v[200];

	for (int i = 0; i < 2000; i++) {
		key_of(i, k);
		val_of(i, 0, v);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
	}
	CHECK_OK(lsm_compact_range(db, NULL, 0, NULL, 0));
}

/* 50 "other" keys and the tombstone over [100, 1100), in the memtable. */
static void delete_in_memtable(lsm_db *db)
{
	char k[32], a[32], b[32];

	for (int i = 0; i < 50; i++) {
		snprintf(k, sizeof k, "other%03d", i);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), "o", 1));
	}
	key_of(100, a);
	key_of(1100, b);
	CHECK_OK(lsm_delete_range(db, NULL, a, strlen(a), b, strlen(b)));
}

static void load_then_delete_in_memtable(lsm_db *db)
{
	load_tables(db);
	delete_in_memtable(db);
}

static void check_after_delete(lsm_db *db, const lsm_snapshot *snap)
{
	char k[32], v[200];

	for (int i = 0; i < 2000; i += 7) {
		key_of(i, k);
		val_of(i, 0, v);
		CHECK(holds(db, snap, k, !snap && i >= 100 && i < 1100 ? NULL : v));
	}
	for (int i = 0; i < 50; i++) {
		snprintf(k, sizeof k, "other%03d", i);
		CHECK(holds(db, snap, k, "o"));
	}
}

TEST(compact_range_tables_applies_memtable_tombstones_without_flush)
{
	const char *dir = test_tmpdir("rdel_noflush");
	lsm_db *db = open_roomy(dir);
	char a[32], b[32];
	uint64_t full, kept;
	lsm_stats st;

	CHECK(db != NULL);
	load_then_delete_in_memtable(db);
	full = table_bytes(db);
	CHECK(full > 0);
	key_of(0, a);
	key_of(1999, b);

	/* a refused hook: LSM_IOERR, nothing changed, and not sticky */
	hook_calls = 0;
	hook_refuse = 1;
	CHECK_EQ_INT(lsm_compact_range_tables(db, a, strlen(a), b, strlen(b)), LSM_IOERR);
	CHECK_EQ_INT(hook_calls, 1);
	CHECK_EQ_U64(table_bytes(db), full);
	hook_refuse = 0;

	CHECK_OK(lsm_get_stats(db, &st));
	{
		uint64_t flushes = st.flushes, syncs = st.wal_syncs, entries = st.memtable_entries;

		CHECK_OK(lsm_compact_range_tables(db, a, strlen(a), b, strlen(b)));
		CHECK_EQ_INT(hook_calls, 2);
		CHECK_OK(lsm_get_stats(db, &st));
		CHECK_EQ_U64(st.flushes, flushes);     /* the memtable stayed */
		CHECK_EQ_U64(st.memtable_entries, entries);
		CHECK(st.wal_syncs > syncs);           /* the tombstone is durable */
	}
	kept = table_bytes(db);
	/* half the keys went from the tables */
	CHECK(kept < full * 6 / 10);
	CHECK(kept > full * 4 / 10);
	check_after_delete(db, NULL);
	CHECK_OK(lsm_close(db));
}

TEST(compact_range_tables_keeps_what_a_snapshot_sees)
{
	const char *dir = test_tmpdir("rdel_noflush_snap");
	lsm_db *db = open_roomy(dir);
	const lsm_snapshot *snap;
	uint64_t full;

	CHECK(db != NULL);
	load_tables(db);
	CHECK_OK(lsm_snapshot_create(db, &snap));
	full = table_bytes(db);
	delete_in_memtable(db);
	CHECK_OK(lsm_compact_range_tables(db, NULL, 0, NULL, 0));
	CHECK(table_bytes(db) >= full * 9 / 10);   /* the snapshot needs them */
	{
		char k[32], v[200];

		for (int i = 0; i < 2000; i += 7) {
			key_of(i, k);
			val_of(i, 0, v);
			CHECK(holds(db, snap, k, v));
			CHECK(holds(db, NULL, k, i >= 100 && i < 1100 ? NULL : v));
		}
	}
	lsm_snapshot_release(db, snap);
	CHECK_OK(lsm_compact_range_tables(db, NULL, 0, NULL, 0));
	CHECK(table_bytes(db) < full * 6 / 10);
	check_after_delete(db, NULL);
	CHECK_OK(lsm_close(db));
}

/* A process dies (no close, unsynced writes) right after the call: the
 * reopened database has the tombstone and every write before it, and a
 * key rewritten in the range afterwards is visible. */
TEST(compact_range_tables_then_crash)
{
	const char *dir = test_tmpdir("rdel_noflush_crash");
	char k[32], v[200];
	lsm_db *db;
	pid_t pid;
	int status;

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		db = open_roomy(dir);
		if (db == NULL)
			_exit(2);
		load_then_delete_in_memtable(db);
		_exit(lsm_compact_range_tables(db, NULL, 0, NULL, 0) == LSM_OK ? 0 : 3);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
	db = open_roomy(dir);
	CHECK(db != NULL);
	check_after_delete(db, NULL);
	key_of(500, k);
	val_of(500, 9, v);
	CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
	CHECK(holds(db, NULL, k, v));
	CHECK_OK(lsm_flush(db));
	CHECK_OK(lsm_compact_range(db, NULL, 0, NULL, 0));
	CHECK(holds(db, NULL, k, v));
	check_after_delete(db, NULL);      /* (key 500 is not among those checked) */
	CHECK_OK(lsm_close(db));
}

static int filter_fn(void *arg, int level, const void *key, size_t klen,
                     const void *val, size_t vlen, uint64_t seq,
                     void **new_val, size_t *new_vlen)
{
	(void)arg; (void)level; (void)val; (void)vlen; (void)seq;
	if (klen > 3 && memcmp(key, "tmp", 3) == 0)
		return LSM_FILTER_REMOVE;
	if (klen > 3 && memcmp(key, "chg", 3) == 0) {
		*new_val = malloc(7);
		memcpy(*new_val, "changed", 7);
		*new_vlen = 7;
		return LSM_FILTER_CHANGE;
	}
	return LSM_FILTER_KEEP;
}

TEST(compaction_filter_removes_and_rewrites)
{
	const char *dir = test_tmpdir("filter");
	lsm_options o = small_options();
	lsm_db *db;
	char k[32];

	o.compaction_filter = filter_fn;
	CHECK_OK(lsm_open(&o, dir, &db));
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof k, "tmp%04d", i);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), "old", 3));
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), "new", 3));   /* hides "old" */
		snprintf(k, sizeof k, "chg%04d", i);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), "orig", 4));
		snprintf(k, sizeof k, "keep%04d", i);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), "kept", 4));
	}
	CHECK_OK(lsm_compact_range(db, NULL, 0, NULL, 0));
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof k, "tmp%04d", i);
		CHECK(holds(db, NULL, k, NULL));        /* removed, and "old" not back */
		snprintf(k, sizeof k, "chg%04d", i);
		CHECK(holds(db, NULL, k, "changed"));
		snprintf(k, sizeof k, "keep%04d", i);
		CHECK(holds(db, NULL, k, "kept"));
	}
	CHECK_OK(lsm_close(db));
}

TEST(compact_range_drops_garbage_and_obsolete_files_go)
{
	const char *dir = test_tmpdir("garbage");
	lsm_db *db = open_small(dir);
	char k[32], v[200];
	lsm_stats st;
	uint64_t files = 0, bytes = 0;

	CHECK(db != NULL);
	for (int i = 0; i < 3000; i++) {
		key_of(i, k);
		val_of(i, 0, v);
		CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
	}
	for (int i = 0; i < 3000; i++)
		CHECK_OK(lsm_delete(db, NULL, (key_of(i, k), k), strlen(k)));
	CHECK_OK(lsm_compact_range(db, NULL, 0, NULL, 0));
	CHECK_OK(lsm_get_stats(db, &st));
	for (int l = 0; l < 7; l++) {
		files += st.level_files[l];
		bytes += st.level_bytes[l];
	}
	CHECK_EQ_U64(files, 0);            /* every version and tombstone gone */
	CHECK_EQ_U64(bytes, 0);
	CHECK_EQ_INT(count_files(dir, ".sst"), 0);
	CHECK_EQ_INT(count_files(dir, ".tmp"), 0);
	CHECK(st.compactions >= 1);
	CHECK(st.write_amplification > 0);
	CHECK_OK(lsm_close(db));
}
