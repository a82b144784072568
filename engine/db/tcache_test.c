/*
 * tcache_test.c — the table cache keeps a process's open tables within
 * options.table_cache_size and options.max_open_files: tables no call uses
 * are closed (and reopened on demand) without changing any answer, tables
 * in use are never closed, and a file deleted while a reader holds it is
 * closed when that reader lets go.
 */
#include <dirent.h>
#include <pthread.h>

#include "lsm.h"
#include "testutil.h"

#define NKEYS  6000
#define BATCH  500              /* keys per L0 table */

static void key_of(int i, char *k, size_t n)
{
	snprintf(k, n, "key%06d", i);
}

static void val_of(int i, int gen, char *v, size_t n)
{
	snprintf(v, n, "v%d-%d-%080d", gen, i, i);
}

/* A db whose keys lie in NKEYS / BATCH L0 tables (no compaction runs). */
static lsm_db *open_tables(const char *dir, size_t budget, int max_open, int gen)
{
	lsm_options o;
	lsm_db *db = NULL;
	char k[32], v[128];

	lsm_options_init(&o);
	o.background_thread = 0;
	o.l0_compaction_trigger = 100;
	o.l0_slowdown_trigger = 100;
	o.l0_stop_trigger = 100;
	o.table_cache_size = budget;
	o.max_open_files = max_open;
	if (lsm_open(&o, dir, &db) != LSM_OK)
		return NULL;
	for (int i = 0; i < NKEYS; i++) {
		key_of(i, k, sizeof k);
		val_of(i, gen, v, sizeof v);
		if (lsm_put(db, NULL, k, strlen(k), v, strlen(v)) != LSM_OK ||
		    ((i + 1) % BATCH == 0 && lsm_flush(db) != LSM_OK)) {
			lsm_close(db);
			return NULL;
		}
	}
	return db;
}

static int value_is(lsm_db *db, int i, int gen)
{
	char k[32], v[128];
	void *got;
	size_t n;
	int ok;

	key_of(i, k, sizeof k);
	val_of(i, gen, v, sizeof v);
	if (lsm_get(db, NULL, k, strlen(k), &got, &n) != LSM_OK)
		return 0;
	ok = n == strlen(v) && memcmp(got, v, n) == 0;
	lsm_free(got);
	return ok;
}

/* Every key once, in order, with its value; returns the count or -1. */
static int scan_all(lsm_db *db, int gen)
{
	lsm_iter *it;
	int i = 0;

	if (lsm_iter_create(db, NULL, &it) != LSM_OK)
		return -1;
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it), i++) {
		char k[32], v[128];
		size_t kl, vl;
		const void *kp = lsm_iter_key(it, &kl), *vp = lsm_iter_value(it, &vl);

		key_of(i, k, sizeof k);
		val_of(i, gen, v, sizeof v);
		if (kl != strlen(k) || memcmp(kp, k, kl) || vl != strlen(v) || memcmp(vp, v, vl))
			break;
	}
	if (lsm_iter_status(it) != LSM_OK)
		i = -1;
	lsm_iter_destroy(it);
	return i;
}

TEST(zero_budget_closes_every_table_once_unused)
{
	const char *dir = test_tmpdir("tc_zero");
	lsm_db *db = open_tables(dir, 0, 1000, 1);
	lsm_stats st;
	lsm_iter *it;

	CHECK(db != NULL);
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_INT(st.level_files[0], NKEYS / BATCH);
	for (int i = 0; i < NKEYS; i += 7)
		CHECK_MSG(value_is(db, i, 1), "key %d", i);
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_INT(st.open_tables, 0);
	CHECK_EQ_INT(st.table_cache_bytes, 0);
	CHECK(st.table_opens >= NKEYS / 7);        /* each get reopened its table */
	CHECK_EQ_INT(scan_all(db, 1), NKEYS);

	/* an open iterator pins every L0 table it merges */
	CHECK_OK(lsm_iter_create(db, NULL, &it));
	lsm_iter_seek_to_first(it);
	CHECK(lsm_iter_valid(it));
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_INT(st.open_tables, NKEYS / BATCH);
	lsm_iter_destroy(it);
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_INT(st.open_tables, 0);
	CHECK_OK(lsm_close(db));
}

TEST(max_open_files_bounds_the_tables_kept)
{
	const char *dir = test_tmpdir("tc_files");
	lsm_db *db = open_tables(dir, 64u << 20, 3, 1);
	lsm_stats st;
	test_rng rng;

	CHECK(db != NULL);
	test_rng_seed(&rng, 7);
	for (int n = 0; n < 3000; n++) {
		int i = (int)test_rng_uniform(&rng, NKEYS);

		CHECK_MSG(value_is(db, i, 1), "key %d", i);
		CHECK_OK(lsm_get_stats(db, &st));
		CHECK(st.open_tables <= 3);
	}
	CHECK(st.table_cache_evictions > 0);
	CHECK_EQ_INT(scan_all(db, 1), NKEYS);
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK(st.open_tables <= 3);
	CHECK_OK(lsm_close(db));
}

TEST(byte_budget_bounds_the_tables_kept)
{
	const char *dir = test_tmpdir("tc_bytes");
	lsm_db *db = open_tables(dir, 64u << 20, 1000, 1);
	lsm_stats st;
	uint64_t one, budget;

	CHECK(db != NULL);
	for (int i = 0; i < NKEYS; i += BATCH)
		CHECK(value_is(db, i, 1));
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_INT(st.open_tables, NKEYS / BATCH);   /* all fit: none closed */
	CHECK_EQ_INT(st.table_cache_evictions, 0);
	one = st.table_cache_bytes / st.open_tables;
	CHECK(one > 1000);                             /* index + filter + keys */
	CHECK_OK(lsm_close(db));

	budget = one * 5 / 2;                          /* room for two tables */
	db = open_tables(test_tmpdir("tc_bytes2"), budget, 1000, 1);
	CHECK(db != NULL);
	for (int n = 0; n < 2; n++)
		for (int i = 0; i < NKEYS; i += 11) {
			CHECK_MSG(value_is(db, i, 1), "key %d", i);
			CHECK_OK(lsm_get_stats(db, &st));
			CHECK(st.table_cache_bytes <= budget);
			CHECK(st.open_tables <= 2);
		}
	CHECK(st.table_cache_evictions > 0);
	CHECK_OK(lsm_close(db));
}

/* Compaction deletes tables a reader still iterates over; the reader's
 * view stays whole and the files go once it is destroyed. */
TEST(tables_deleted_under_a_reader_close_when_it_ends)
{
	const char *dir = test_tmpdir("tc_deleted");
	lsm_db *db = open_tables(dir, 0, 1000, 1);
	lsm_stats st;
	lsm_iter *it;
	int i = 0;

	CHECK(db != NULL);
	CHECK_OK(lsm_iter_create(db, NULL, &it));
	lsm_iter_seek_to_first(it);
	CHECK_OK(lsm_compact_range(db, NULL, 0, NULL, 0));
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_INT(st.level_files[0], 0);
	for (; lsm_iter_valid(it); lsm_iter_next(it))
		i++;
	CHECK_OK(lsm_iter_status(it));
	CHECK_EQ_INT(i, NKEYS);
	lsm_iter_destroy(it);
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_INT(st.open_tables, 0);
	CHECK_EQ_INT(scan_all(db, 1), NKEYS);
	CHECK_OK(lsm_close(db));
}

/* Threads read and scan through a cache too small for their tables while
 * another thread rewrites and compacts them. */
typedef struct reader_arg {
	lsm_db *db;
	int id;
	int errors;
	_Atomic int *stop;
} reader_arg;

static void *reader(void *p)
{
	reader_arg *a = p;
	test_rng rng;

	test_rng_seed(&rng, 11 + (uint64_t)a->id);
	while (!*a->stop) {
		int i = (int)test_rng_uniform(&rng, NKEYS);
		char k[32];
		void *v;
		size_t n;

		key_of(i, k, sizeof k);
		if (lsm_get(a->db, NULL, k, strlen(k), &v, &n) != LSM_OK || n < 4)
			a->errors++;
		else
			lsm_free(v);
		if (i % 97 == 0 && scan_all(a->db, -1) < 0)   /* values change: count only */
			a->errors++;
	}
	return NULL;
}

TEST(concurrent_readers_and_compaction_under_a_tiny_budget)
{
	const char *dir = test_tmpdir("tc_threads");
	lsm_db *db = open_tables(dir, 4096, 2, 1);
	pthread_t th[3];
	reader_arg args[3];
	_Atomic int stop = 0;
	lsm_stats st;

	CHECK(db != NULL);
	for (int t = 0; t < 3; t++) {
		args[t] = (reader_arg){db, t, 0, &stop};
		CHECK(pthread_create(&th[t], NULL, reader, &args[t]) == 0);
	}
	for (int gen = 2; gen < 5; gen++) {
		for (int i = 0; i < NKEYS; i++) {
			char k[32], v[128];

			key_of(i, k, sizeof k);
			val_of(i, gen, v, sizeof v);
			CHECK_OK(lsm_put(db, NULL, k, strlen(k), v, strlen(v)));
			if ((i + 1) % BATCH == 0)
				CHECK_OK(lsm_flush(db));
		}
		CHECK_OK(lsm_compact_range(db, NULL, 0, NULL, 0));
	}
	stop = 1;
	for (int t = 0; t < 3; t++) {
		pthread_join(th[t], NULL);
		CHECK_EQ_INT(args[t].errors, 0);
	}
	for (int i = 0; i < NKEYS; i += 3)
		CHECK_MSG(value_is(db, i, 4), "key %d", i);
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK(st.open_tables <= 2);
	CHECK(st.table_cache_evictions > 0);
	CHECK_OK(lsm_close(db));
}

/* Descriptors this process holds on deleted table files. */
static int deleted_sst_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char link[300], target[4096];
		ssize_t len;

		snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
		if ((len = readlink(link, target, sizeof target - 1)) <= 0)
			continue;
		target[len] = '\0';
		if (strstr(target, ".sst") && strstr(target, "(deleted)"))
			n++;
	}
	closedir(d);
	return n;
}

/* Shared mode: a reader's process closes the tables another process's
 * compaction dropped as soon as it moves to the new version, so it holds
 * neither their memory nor their deleted files' space. */
TEST(another_process_compaction_closes_the_readers_tables)
{
	const char *dir = test_tmpdir("tc_shared");
	lsm_options o;
	lsm_db *writer = NULL, *reader = NULL;
	lsm_stats st;
	void *mem;
	size_t size;
	char k[32], v[128];

	lsm_options_init(&o);
	o.memtable_size = 1u << 20;
	o.block_cache_size = 1u << 20;
	o.max_processes = 4;
	o.l0_compaction_trigger = 100;
	o.l0_slowdown_trigger = 100;
	o.l0_stop_trigger = 100;
	size = lsm_shared_size(&o);
	CHECK(size > 0);
	CHECK(posix_memalign(&mem, 4096, size) == 0);
	CHECK_OK(lsm_shared_init(mem, size, &o));
	CHECK_OK(lsm_open_shared(&o, dir, mem, &writer));
	CHECK_OK(lsm_open_shared(&o, dir, mem, &reader));
	for (int i = 0; i < NKEYS; i++) {
		key_of(i, k, sizeof k);
		val_of(i, 1, v, sizeof v);
		CHECK_OK(lsm_put(writer, NULL, k, strlen(k), v, strlen(v)));
		if ((i + 1) % BATCH == 0)
			CHECK_OK(lsm_flush(writer));
	}
	CHECK_EQ_INT(scan_all(reader, 1), NKEYS);
	CHECK_OK(lsm_get_stats(reader, &st));
	CHECK_EQ_INT(st.open_tables, NKEYS / BATCH);

	CHECK_OK(lsm_compact_range(writer, NULL, 0, NULL, 0));
	CHECK_OK(lsm_get_stats(writer, &st));
	CHECK(st.level_files[0] == 0);
	for (int i = 0; i < NKEYS; i += 13)           /* the reader moves on */
		CHECK_MSG(value_is(reader, i, 1), "key %d", i);
	CHECK_OK(lsm_get_stats(reader, &st));
	CHECK_MSG(st.open_tables <= st.level_files[1] + st.level_files[2] + st.level_files[3],
	          "%llu tables open", (unsigned long long)st.open_tables);
	CHECK_EQ_INT(deleted_sst_fds(), 0);
	CHECK_OK(lsm_close(reader));
	CHECK_OK(lsm_close(writer));
	free(mem);
}
