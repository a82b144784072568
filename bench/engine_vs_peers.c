/*
 * engine_vs_peers.c -- our engine beside LevelDB and RocksDB, same run.
 *
 * Each workload runs against every engine in turn, on the same keys (the
 * db_bench scheme: zero-padded decimal, 16 bytes by default), the same
 * value bytes and the same thread count, in fresh directories under one
 * parent.  The figure that matters is the ratio printed last on each line:
 * lsm ops/s divided by the peer's ops/s.  Absolute times on these shared
 * machines drift by 20% from run to run; ratios taken seconds apart do not.
 *
 * Peers are configured to be comparable, not crippled: the same memtable
 * size (--write_buffer_mb), their WAL on, the same sync setting, one
 * LRU block cache of the same size, 10-bit bloom filters, LZ4 (RocksDB) /
 * Snappy (LevelDB, which has no LZ4) block compression.
 *
 * Usage:
 *   engine_vs_peers [--benchmarks=fillseq,fillrandom,overwrite,readrandom,readmissing,readseq]
 *                   [--engines=lsm,leveldb,rocksdb] [--num=N] [--key_size=16]
 *                   [--value_size=100] [--threads=T] [--sync]
 *                   [--write_buffer_mb=M] [--dir=PATH]
 *
 * Invariants: every engine sees the identical operation sequence (the
 * random streams are seeded by workload and thread only); a failed call
 * aborts the run with the engine's message rather than printing a figure
 * for work that was not done.
 */

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <leveldb/c.h>
#include <rocksdb/c.h>

#include "lsm.h"

/* ------------------------------------------------------------ configuration */

static struct {
	long num;
	int key_size;
	int value_size;
	int threads;
	int sync;
	long write_buffer_mb;
	const char *benchmarks;
	const char *engines;
	char dir[512];
	long cache_mb;
} cfg = {1000000, 16, 100, 1, 0, 64,
         "fillseq,fillrandom,overwrite,readrandom,readmissing,readseq",
         "lsm,leveldb,rocksdb", "", 64};

static char *value_pool;
static size_t value_pool_len;

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void make_key(char *buf, uint64_t k)
{
	for (int i = cfg.key_size - 1; i >= 0; i--) {
		buf[i] = (char)('0' + k % 10);
		k /= 10;
	}
}

static void die(const char *engine, const char *what, const char *msg)
{
	fprintf(stderr, "%s: %s: %s\n", engine, what, msg ? msg : "failed");
	exit(1);
}

/* ------------------------------------------------------------------ engines */

typedef struct engine {
	const char *name;
	void (*open)(struct engine *e, const char *path);
	void (*put)(struct engine *e, const char *k, size_t kl, const char *v, size_t vl);
	int (*get)(struct engine *e, const char *k, size_t kl);     /* 1 found */
	long (*scan)(struct engine *e, long limit);
	void (*close)(struct engine *e);
	void *db, *opts, *wopts, *ropts, *cache, *filter;
} engine;

static size_t write_buffer_bytes(void)
{
	long mb = cfg.write_buffer_mb;

	if (mb == 0) {
		/* --write_buffer_mb=0: a memtable-only comparison, room for a fill
		 * plus an overwrite of every key, so no engine flushes. */
		double need = 2.2 * (double)cfg.num * cfg.threads *
		              (cfg.key_size + cfg.value_size + 48);

		mb = (long)(need / (1 << 20)) + 64;
		if (mb > 4000)
			mb = 4000;
	}
	return (size_t)mb << 20;
}

static size_t cache_bytes(void)
{
	return (size_t)cfg.cache_mb << 20;
}

/* lsm */

static void lsm_e_open(engine *e, const char *path)
{
	lsm_options o;
	lsm_db *db;
	int rc;

	lsm_options_init(&o);
	o.memtable_size = write_buffer_bytes();
	o.block_cache_size = cache_bytes();
	o.bloom_bits_per_key = 10;
	rc = lsm_open(&o, path, &db);
	if (rc != LSM_OK)
		die(e->name, "open", lsm_strerror(rc));
	e->db = db;
}

static void lsm_e_put(engine *e, const char *k, size_t kl, const char *v, size_t vl)
{
	lsm_write_options wo = {cfg.sync};
	int rc = lsm_put(e->db, &wo, k, kl, v, vl);

	if (rc != LSM_OK)
		die(e->name, "put", lsm_strerror(rc));
}

static int lsm_e_get(engine *e, const char *k, size_t kl)
{
	void *v;
	size_t vl;
	int rc = lsm_get(e->db, NULL, k, kl, &v, &vl);

	if (rc == LSM_NOTFOUND)
		return 0;
	if (rc != LSM_OK)
		die(e->name, "get", lsm_strerror(rc));
	lsm_free(v);
	return 1;
}

static long lsm_e_scan(engine *e, long limit)
{
	lsm_iter *it;
	long n = 0;
	size_t kl, vl;

	if (lsm_iter_create(e->db, NULL, &it) != LSM_OK)
		die(e->name, "iterator", NULL);
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it) && n < limit; lsm_iter_next(it)) {
		lsm_iter_key(it, &kl);
		lsm_iter_value(it, &vl);
		n++;
	}
	lsm_iter_destroy(it);
	return n;
}

static void lsm_e_close(engine *e)
{
	lsm_close(e->db);
	e->db = NULL;
}

/* leveldb */

static void ldb_open(engine *e, const char *path)
{
	char *err = NULL;

	e->opts = leveldb_options_create();
	leveldb_options_set_create_if_missing(e->opts, 1);
	leveldb_options_set_write_buffer_size(e->opts, write_buffer_bytes());
	e->cache = leveldb_cache_create_lru(cache_bytes());
	leveldb_options_set_cache(e->opts, e->cache);
	e->filter = leveldb_filterpolicy_create_bloom(10);
	leveldb_options_set_filter_policy(e->opts, e->filter);
	e->db = leveldb_open(e->opts, path, &err);
	if (err)
		die(e->name, "open", err);
	e->wopts = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(e->wopts, (unsigned char)cfg.sync);
	e->ropts = leveldb_readoptions_create();
}

static void ldb_put(engine *e, const char *k, size_t kl, const char *v, size_t vl)
{
	char *err = NULL;

	leveldb_put(e->db, e->wopts, k, kl, v, vl, &err);
	if (err)
		die(e->name, "put", err);
}

static int ldb_get(engine *e, const char *k, size_t kl)
{
	char *err = NULL;
	size_t vl;
	char *v = leveldb_get(e->db, e->ropts, k, kl, &vl, &err);

	if (err)
		die(e->name, "get", err);
	if (!v)
		return 0;
	leveldb_free(v);
	return 1;
}

static long ldb_scan(engine *e, long limit)
{
	leveldb_iterator_t *it = leveldb_create_iterator(e->db, e->ropts);
	long n = 0;
	size_t kl, vl;

	for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it) && n < limit;
	     leveldb_iter_next(it)) {
		leveldb_iter_key(it, &kl);
		leveldb_iter_value(it, &vl);
		n++;
	}
	leveldb_iter_destroy(it);
	return n;
}

static void ldb_close(engine *e)
{
	leveldb_close(e->db);
	leveldb_options_destroy(e->opts);
	leveldb_cache_destroy(e->cache);
	leveldb_filterpolicy_destroy(e->filter);
	leveldb_writeoptions_destroy(e->wopts);
	leveldb_readoptions_destroy(e->ropts);
	e->db = NULL;
}

/* rocksdb */

static void rdb_open(engine *e, const char *path)
{
	char *err = NULL;
	rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();

	e->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(e->opts, 1);
	rocksdb_options_set_write_buffer_size(e->opts, write_buffer_bytes());
	rocksdb_options_set_compression(e->opts, rocksdb_lz4_compression);
	e->cache = rocksdb_cache_create_lru(cache_bytes());
	rocksdb_block_based_options_set_block_cache(t, e->cache);
	e->filter = rocksdb_filterpolicy_create_bloom(10);
	rocksdb_block_based_options_set_filter_policy(t, e->filter);
	rocksdb_options_set_block_based_table_factory(e->opts, t);
	rocksdb_block_based_options_destroy(t);       /* the factory holds a copy */
	e->db = rocksdb_open(e->opts, path, &err);
	if (err)
		die(e->name, "open", err);
	e->wopts = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(e->wopts, (unsigned char)cfg.sync);
	e->ropts = rocksdb_readoptions_create();
}

static void rdb_put(engine *e, const char *k, size_t kl, const char *v, size_t vl)
{
	char *err = NULL;

	rocksdb_put(e->db, e->wopts, k, kl, v, vl, &err);
	if (err)
		die(e->name, "put", err);
}

static int rdb_get(engine *e, const char *k, size_t kl)
{
	char *err = NULL;
	size_t vl;
	char *v = rocksdb_get(e->db, e->ropts, k, kl, &vl, &err);

	if (err)
		die(e->name, "get", err);
	if (!v)
		return 0;
	rocksdb_free(v);
	return 1;
}

static long rdb_scan(engine *e, long limit)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator(e->db, e->ropts);
	long n = 0;
	size_t kl, vl;

	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && n < limit;
	     rocksdb_iter_next(it)) {
		rocksdb_iter_key(it, &kl);
		rocksdb_iter_value(it, &vl);
		n++;
	}
	rocksdb_iter_destroy(it);
	return n;
}

static void rdb_close(engine *e)
{
	rocksdb_close(e->db);
	rocksdb_options_destroy(e->opts);
	rocksdb_cache_destroy(e->cache);
	/* The filter policy is owned by the table factory since RocksDB 6.x. */
	rocksdb_writeoptions_destroy(e->wopts);
	rocksdb_readoptions_destroy(e->ropts);
	e->db = NULL;
}

static engine engines[] = {
	{"lsm", lsm_e_open, lsm_e_put, lsm_e_get, lsm_e_scan, lsm_e_close},
	{"leveldb", ldb_open, ldb_put, ldb_get, ldb_scan, ldb_close},
	{"rocksdb", rdb_open, rdb_put, rdb_get, rdb_scan, rdb_close},
};
#define N_ENGINES ((int)(sizeof engines / sizeof engines[0]))

/* ---------------------------------------------------------------- workloads */

typedef enum {
	W_FILLSEQ, W_FILLRANDOM, W_OVERWRITE, W_READRANDOM, W_READMISSING, W_READSEQ
} workload;

static const char *const workload_names[] = {
	"fillseq", "fillrandom", "overwrite", "readrandom", "readmissing", "readseq"};

typedef struct worker {
	engine *e;
	workload w;
	int id;
	long done, found;
	pthread_barrier_t *start;
	double secs;
} worker;

static void *run_worker(void *p)
{
	worker *a = p;
	uint64_t seed = 1000 + (uint64_t)a->id * 7919 + (uint64_t)a->w;
	char key[256];
	double t0;

	pthread_barrier_wait(a->start);
	t0 = now_sec();
	if (a->w == W_READSEQ) {
		a->done = a->e->scan(a->e, cfg.num);
	} else {
		for (long i = 0; i < cfg.num; i++) {
			uint64_t space = (uint64_t)cfg.num * (uint64_t)cfg.threads;
			uint64_t k = a->w == W_FILLSEQ
				? (uint64_t)a->id * (uint64_t)cfg.num + (uint64_t)i
				: rng_next(&seed) % space;

			if (a->w == W_READMISSING)
				k += space;           /* never written: above every key */
			make_key(key, k);
			if (a->w == W_READRANDOM || a->w == W_READMISSING) {
				a->found += a->e->get(a->e, key, (size_t)cfg.key_size);
			} else {
				size_t off = (size_t)(rng_next(&seed) %
				                      (value_pool_len - (size_t)cfg.value_size));

				a->e->put(a->e, key, (size_t)cfg.key_size, value_pool + off,
				          (size_t)cfg.value_size);
			}
			a->done++;
		}
	}
	a->secs = now_sec() - t0;
	return NULL;
}

static double run_one(engine *e, workload w, long *found)
{
	pthread_t th[64];
	worker ws[64];
	pthread_barrier_t start;
	long done = 0;
	double secs = 0;

	*found = 0;
	pthread_barrier_init(&start, NULL, (unsigned)cfg.threads);
	for (int t = 0; t < cfg.threads; t++) {
		ws[t] = (worker){e, w, t, 0, 0, &start, 0};
		pthread_create(&th[t], NULL, run_worker, &ws[t]);
	}
	for (int t = 0; t < cfg.threads; t++) {
		pthread_join(th[t], NULL);
		done += ws[t].done;
		*found += w == W_READSEQ ? ws[t].done : ws[t].found;
		if (ws[t].secs > secs)
			secs = ws[t].secs;
	}
	pthread_barrier_destroy(&start);
	return secs > 0 ? (double)done / secs : 0;
}

static int listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
			return 1;
	return 0;
}

static void fresh_dir(const char *path)
{
	char cmd[1200];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0)
		die("bench", "rm -rf", path);
}

/*
 * A fill workload starts from an empty directory; the others run on what
 * the previous ones left, in the same open database, as in db_bench.  All
 * engines stay open for the whole run, and each workload runs on them one
 * after another (never at once, so they do not share the cores), so the
 * ratios compare figures taken seconds apart.
 */
static void run_workload(workload w)
{
	double ops[N_ENGINES] = {0};
	long found[N_ENGINES] = {0};
	int fill = w == W_FILLSEQ || w == W_FILLRANDOM, first = -1;

	for (int i = 0; i < N_ENGINES; i++) {
		engine *e = &engines[i];
		char path[1024];

		if (!listed(cfg.engines, e->name))
			continue;
		snprintf(path, sizeof path, "%s/%s", cfg.dir, e->name);
		if (fill || e->db == NULL) {
			if (e->db)
				e->close(e);
			if (fill)
				fresh_dir(path);
			e->open(e, path);
		}
		ops[i] = run_one(e, w, &found[i]);
		/* Every engine ran the same operations: reads must find the same
		 * keys.  A difference is a wrong answer somewhere, not noise. */
		if (first < 0) {
			first = i;
		} else if (found[i] != found[first]) {
			fprintf(stderr, "%s: %s found %ld keys, %s found %ld\n", workload_names[w],
			        engines[first].name, found[first], e->name, found[i]);
			exit(1);
		}
	}
	printf("%-11s", workload_names[w]);
	for (int i = 0; i < N_ENGINES; i++)
		if (listed(cfg.engines, engines[i].name))
			printf("  %s %9.0f ops/s", engines[i].name, ops[i]);
	for (int i = 1; i < N_ENGINES; i++)
		if (ops[0] > 0 && ops[i] > 0)
			printf("  lsm/%s %.2fx", engines[i].name, ops[0] / ops[i]);
	printf("\n");
	fflush(stdout);
}

static int parse_flag(const char *arg, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n) != 0)
		return 0;
	if (arg[n] == '=') {
		*val = arg + n + 1;
		return 1;
	}
	if (arg[n] == 0) {
		*val = NULL;
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *v;
	uint64_t seed = 42;
	int own_dir = 0;

	for (int i = 1; i < argc; i++) {
		if (parse_flag(argv[i], "--benchmarks", &v) && v) cfg.benchmarks = v;
		else if (parse_flag(argv[i], "--engines", &v) && v) cfg.engines = v;
		else if (parse_flag(argv[i], "--num", &v) && v) cfg.num = atol(v);
		else if (parse_flag(argv[i], "--key_size", &v) && v) cfg.key_size = atoi(v);
		else if (parse_flag(argv[i], "--value_size", &v) && v) cfg.value_size = atoi(v);
		else if (parse_flag(argv[i], "--threads", &v) && v) cfg.threads = atoi(v);
		else if (parse_flag(argv[i], "--write_buffer_mb", &v) && v) cfg.write_buffer_mb = atol(v);
		else if (parse_flag(argv[i], "--cache_mb", &v) && v) cfg.cache_mb = atol(v);
		else if (parse_flag(argv[i], "--dir", &v) && v) snprintf(cfg.dir, sizeof cfg.dir, "%s", v);
		else if (parse_flag(argv[i], "--sync", &v)) cfg.sync = v ? atoi(v) : 1;
		else {
			fprintf(stderr, "usage: %s [--benchmarks=a,b] [--engines=lsm,leveldb,rocksdb] "
			        "[--num=N] [--key_size=K] [--value_size=V] [--threads=T] [--sync] "
			        "[--write_buffer_mb=M] [--dir=PATH]\n", argv[0]);
			return 2;
		}
	}
	if (cfg.num < 1 || cfg.threads < 1 || cfg.threads > 64 || cfg.key_size < 8 ||
	    cfg.key_size > 255 || cfg.value_size < 1 || cfg.value_size > 65536 ||
	    !listed(cfg.engines, "lsm")) {
		fprintf(stderr, "%s: bad arguments (lsm must be among --engines)\n", argv[0]);
		return 2;
	}
	if (!cfg.dir[0]) {
		snprintf(cfg.dir, sizeof cfg.dir, "/tmp/engine_vs_peers.%d", (int)getpid());
		own_dir = 1;
	}
	if (mkdir(cfg.dir, 0755) != 0 && errno != EEXIST)
		die("bench", "mkdir", cfg.dir);

	/* Half random, half repeated bytes: compresses about 2:1, like
	 * db_bench's default, so block compression does real work. */
	value_pool_len = 1 << 20;
	value_pool = malloc(value_pool_len);
	if (!value_pool)
		die("bench", "malloc", NULL);
	for (size_t i = 0; i < value_pool_len; i++)
		value_pool[i] = (i / 16) % 2 ? 'x' : (char)(' ' + rng_next(&seed) % 95);

	printf("engine_vs_peers: num=%ld key_size=%d value_size=%d threads=%d sync=%d "
	       "write_buffer=%zuMiB cache=%zuMiB bloom=10 dir=%s\n", cfg.num, cfg.key_size,
	       cfg.value_size, cfg.threads, cfg.sync, write_buffer_bytes() >> 20,
	       cache_bytes() >> 20, cfg.dir);
	for (int w = W_FILLSEQ; w <= W_READSEQ; w++)
		if (listed(cfg.benchmarks, workload_names[w]))
			run_workload((workload)w);
	for (int i = 0; i < N_ENGINES; i++)
		if (engines[i].db)
			engines[i].close(&engines[i]);
	if (own_dir)
		fresh_dir(cfg.dir);
	free(value_pool);
	return 0;
}
