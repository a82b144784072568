/*
 * lsm_bench.c — db_bench-style benchmarks of the engine and its primitives.
 *
 *   lsm_bench --benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq,
 *             waitforcompaction,recover,crc32,xxh64,lz4,bloom --num=N --key_size=16 --value_size=100
 *             [--sync] [--threads=T] [--processes=P] [--db=DIR] [--memtable_mb=M]
 *             [--wal_sync_ms=MS] [--defer_visibility=0|1]
 *
 * Each of T threads performs --num operations; a line per workload gives
 * micros/op (per thread) and the total ops/sec.  fill* start from an empty
 * database; overwrite, readrandom and readseq use what the previous
 * benchmarks left.  Values are half compressible, as in db_bench.  Until
 * SSTables exist every write stays in the memtable, so the memtable is sized
 * to hold the whole run unless --memtable_mb says otherwise.
 *
 * --processes=P (P > 0) runs fillseq, fillrandom, overwrite, readrandom and
 * readseq in shared mode instead: the database lives in an anonymous
 * MAP_SHARED region (lsm_shared_size / lsm_shared_init) that the main
 * process keeps attached; P forked worker processes open it with
 * lsm_open_shared and do --num/P operations each (fill* and overwrite on
 * disjoint key ranges, one per worker; readrandom over all keys; readseq
 * scans the worker's range), and one more process runs lsm_background_step
 * / lsm_background_wait for as long as the database lives, as lsm_am's
 * flush worker does: it flushes and compacts as soon as there is work,
 * and fsyncs the WAL every --wal_sync_ms (default 200, lsm.wal_sync_delay's
 * default; 0 = after every step, which makes it fsync back to back while
 * anyone writes: thousands of fsyncs a second on a core the workers
 * need).  The workers
 * start together (a barrier in shared memory); ops/sec is all operations
 * over the wall time from the start to the last worker's end, micros/op is
 * per worker.  Memtables are --memtable_mb (default 64) each; recover is
 * skipped.
 *
 * waitforcompaction (as in RocksDB's db_bench) waits until no flush or
 * compaction is pending and prints how long that took, so that a read
 * workload after it runs on a settled database rather than beside the
 * background work the writes before it left.
 *
 * recover writes --recover_mb of WAL into memtables big enough that nothing
 * is flushed, closes, and times the lsm_open that replays it.
 *
 * --defer_visibility=1 makes the writes return before the writes ordered
 * ahead of them are visible (lsm_write_options.defer_visibility): a
 * writer then no longer waits for the slowest batch ahead of it.
 *
 * The primitive benchmarks print MB/s for ours and, on the same data, for
 * the reference library (zlib, libxxhash, liblz4) with the ratio.
 */
#include <lz4.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include "lsm.h"
#include "crc32.h"
#include "hash.h"
#include "lz4block.h"
#include "bloom.h"

static struct {
	const char *benchmarks;
	long num;
	int key_size;
	int value_size;
	int sync;
	int threads;
	const char *db;
	long memtable_mb;
	long recover_mb;
	int processes;
	long wal_sync_ms;
	int defer_visibility;
} cfg = {"fillseq,fillrandom,overwrite,readrandom,readseq,crc32,xxh64,lz4,bloom",
         1000000, 16, 100, 0, 1, NULL, 0, 100, 0, 200, 0};

static lsm_db *db;
static char *value_pool;
static size_t value_pool_len = 1 << 20;

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

/* Half-compressible data: each 100-byte piece is 50 random bytes twice. */
static void make_value_pool(void)
{
	uint64_t s = 301;
	size_t i;

	value_pool = malloc(value_pool_len + 4096);
	for (i = 0; i < value_pool_len + 4096; i += 100) {
		size_t j;

		for (j = 0; j < 50 && i + j < value_pool_len + 4096; j++)
			value_pool[i + j] = (char)(' ' + rng_next(&s) % 95);
		for (; j < 100 && i + j < value_pool_len + 4096; j++)
			value_pool[i + j] = value_pool[i + j - 50];
	}
}

/* Zero-padded decimal, like db_bench's "%016d" keys (no printf: it would
 * show up in the profile of a memtable benchmark). */
static void make_key(char *buf, uint64_t k)
{
	int i;

	for (i = cfg.key_size - 1; i >= 0; i--) {
		buf[i] = (char)('0' + k % 10);
		k /= 10;
	}
}

typedef enum { W_FILLSEQ, W_FILLRANDOM, W_OVERWRITE, W_READRANDOM, W_READSEQ } workload;

typedef struct thread_arg {
	workload w;
	int id;
	long done;
	long found;
	int err;
	double secs;
	pthread_barrier_t *start;
} thread_arg;

static void *run_thread(void *p)
{
	thread_arg *a = p;
	lsm_write_options wo = {cfg.sync, cfg.defer_visibility};
	uint64_t seed = 1000 + (uint64_t)a->id * 7919 + (uint64_t)a->w;
	char key[256];
	long i;
	double t0;

	pthread_barrier_wait(a->start);
	t0 = now_sec();
	if (a->w == W_READSEQ) {
		lsm_iter *it;
		size_t kl, vl;

		if (lsm_iter_create(db, NULL, &it) != LSM_OK) {
			a->err = 1;
			return NULL;
		}
		for (lsm_iter_seek_to_first(it); lsm_iter_valid(it) && a->done < cfg.num;
		     lsm_iter_next(it)) {
			lsm_iter_key(it, &kl);
			lsm_iter_value(it, &vl);
			a->done++;
		}
		lsm_iter_destroy(it);
	} else {
		for (i = 0; i < cfg.num; i++) {
			uint64_t k = a->w == W_FILLSEQ ? (uint64_t)a->id * (uint64_t)cfg.num + (uint64_t)i
			                              : rng_next(&seed) % (uint64_t)cfg.num;
			int rc;

			make_key(key, k);
			if (a->w == W_READRANDOM) {
				void *v;
				size_t vl;

				rc = lsm_get(db, NULL, key, (size_t)cfg.key_size, &v, &vl);
				if (rc == LSM_OK) {
					a->found++;
					lsm_free(v);
				} else if (rc != LSM_NOTFOUND)
					a->err = rc;
			} else {
				size_t off = (size_t)(rng_next(&seed) % (value_pool_len - (size_t)cfg.value_size));

				rc = lsm_put(db, &wo, key, (size_t)cfg.key_size, value_pool + off,
				             (size_t)cfg.value_size);
				if (rc != LSM_OK) {
					a->err = rc;
					break;
				}
			}
			a->done++;
		}
	}
	a->secs = now_sec() - t0;
	return NULL;
}

static int open_db(int fresh)
{
	lsm_options o;
	char cmd[600];
	long mb = cfg.memtable_mb;
	int rc;

	if (db && !fresh)
		return LSM_OK;
	if (db) {
		lsm_close(db);
		db = NULL;
	}
	if (fresh) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", cfg.db);
		if (system(cmd) != 0)
			return LSM_IOERR;
	}
	if (mb == 0) {
		/* a fill plus an overwrite of every key, with node overhead */
		double need = 2.2 * (double)cfg.num * cfg.threads * (cfg.key_size + cfg.value_size + 48);

		mb = (long)(need / (1 << 20)) + 64;
		if (mb > 4000)
			mb = 4000;
	}
	lsm_options_init(&o);
	o.memtable_size = (size_t)mb << 20;
	rc = lsm_open(&o, cfg.db, &db);
	if (rc != LSM_OK)
		fprintf(stderr, "lsm_open(%s): %s\n", cfg.db, lsm_strerror(rc));
	return rc;
}

static void run_workload_procs(const char *name, workload w);

static void run_workload(const char *name, workload w)
{
	pthread_t th[64];
	thread_arg args[64];
	pthread_barrier_t start;
	long done = 0, found = 0;
	double secs = 0;
	int t, err = 0;

	if (cfg.processes > 0) {
		run_workload_procs(name, w);
		return;
	}

	if (open_db(w == W_FILLSEQ || w == W_FILLRANDOM) != LSM_OK)
		exit(1);
	pthread_barrier_init(&start, NULL, (unsigned)cfg.threads);
	for (t = 0; t < cfg.threads; t++) {
		args[t] = (thread_arg){w, t, 0, 0, 0, 0, &start};
		pthread_create(&th[t], NULL, run_thread, &args[t]);
	}
	for (t = 0; t < cfg.threads; t++) {
		pthread_join(th[t], NULL);
		done += args[t].done;
		found += args[t].found;
		if (args[t].secs > secs)
			secs = args[t].secs;
		if (args[t].err)
			err = args[t].err;
	}
	pthread_barrier_destroy(&start);
	if (err) {
		fprintf(stderr, "%s: error %s\n", name, lsm_strerror(err));
		exit(1);
	}
	printf("%-12s : %11.3f micros/op %10.0f ops/sec", name,
	       secs * 1e6 / ((double)done / cfg.threads), (double)done / secs);
	if (w == W_READRANDOM)
		printf(" (%ld of %ld found)", found, done);
	if (w != W_READRANDOM && w != W_READSEQ)
		printf(" %7.1f MB/s", (double)done * (cfg.key_size + cfg.value_size) / secs / 1e6);
	if (cfg.sync && w != W_READRANDOM && w != W_READSEQ) {
		lsm_stats st;

		lsm_get_stats(db, &st);
		printf(" (%.2f writes per fsync)", st.wal_syncs ? (double)st.wal_synced_writes / (double)st.wal_syncs : 0.0);
	}
	printf("\n");
}

/* ---- shared mode (--processes): workers are processes on one region */

#define MAX_PROCS 64

typedef struct proc_result {
	long done;
	long found;
	int err;
	double t_end;                 /* now_sec() when the worker finished */
} proc_result;

/* Barrier and results, in an anonymous shared mapping. */
typedef struct proc_ctl {
	atomic_int ready;             /* workers that opened the database */
	atomic_int go;
	atomic_int stop;              /* the background process: exit */
	atomic_int bg_err;
	proc_result r[MAX_PROCS];
} proc_ctl;

static struct {
	void *mem;                    /* the region */
	size_t size;
	lsm_options o;
	proc_ctl *ctl;
	pid_t bg;                     /* the background process (0: none) */
} sh;

static void bg_process(void)
{
	lsm_db *h;
	int rc = lsm_open_shared(&sh.o, cfg.db, sh.mem, &h);
	double last_sync = now_sec(), period = (double)cfg.wal_sync_ms / 1000.0;

	if (rc != LSM_OK) {
		atomic_store(&sh.ctl->bg_err, rc);
		_exit(1);
	}
	while (!atomic_load(&sh.ctl->stop)) {
		unsigned pending = 0, work = LSM_WORK_FLUSH | LSM_WORK_COMPACT;
		double now = now_sec();

		if (now - last_sync >= period) {
			work |= LSM_WORK_SYNC;
			last_sync = now;
		}
		rc = lsm_background_step(h, work, &pending);
		if (rc != LSM_OK) {
			atomic_store(&sh.ctl->bg_err, rc);
			break;
		}
		if (cfg.wal_sync_ms > 0)
			pending &= ~(unsigned)LSM_WORK_SYNC;    /* it waits for its turn */
		if (pending == 0)
			lsm_background_wait(h, cfg.wal_sync_ms > 0 && cfg.wal_sync_ms < 50
			                           ? (unsigned)cfg.wal_sync_ms : 50);
	}
	lsm_close(h);
	_exit(rc == LSM_OK ? 0 : 1);
}

/* Detaches the background process and the main handle. */
static void close_shared(void)
{
	int st;

	if (sh.bg > 0) {
		atomic_store(&sh.ctl->stop, 1);
		waitpid(sh.bg, &st, 0);
		sh.bg = 0;
		if (atomic_load(&sh.ctl->bg_err))
			fprintf(stderr, "background process: %s\n",
			        lsm_strerror(atomic_load(&sh.ctl->bg_err)));
	}
	if (db) {
		lsm_close(db);
		db = NULL;
	}
}

/* The region (created once), formatted and opened by the main process,
 * which stays attached; then the background process. */
static int open_shared(int fresh)
{
	char cmd[600];
	int rc;

	if (db && !fresh)
		return LSM_OK;
	close_shared();
	if (fresh) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", cfg.db);
		if (system(cmd) != 0)
			return LSM_IOERR;
	}
	if (sh.mem == NULL) {
		lsm_options_init(&sh.o);
		sh.o.memtable_size = (size_t)(cfg.memtable_mb ? cfg.memtable_mb : 64) << 20;
		sh.o.max_processes = cfg.processes + 2;
		sh.size = lsm_shared_size(&sh.o);
		if (sh.size == 0) {
			fprintf(stderr, "lsm_shared_size: bad options\n");
			return LSM_INVALID;
		}
		sh.mem = mmap(NULL, sh.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		sh.ctl = mmap(NULL, sizeof *sh.ctl, PROT_READ | PROT_WRITE,
		              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (sh.mem == MAP_FAILED || sh.ctl == MAP_FAILED) {
			fprintf(stderr, "mmap of %zu bytes: %s\n", sh.size, strerror(errno));
			return LSM_NOMEM;
		}
	}
	rc = lsm_shared_init(sh.mem, sh.size, &sh.o);
	if (rc != LSM_OK) {
		fprintf(stderr, "lsm_shared_init: %s\n", lsm_strerror(rc));
		return rc;
	}
	rc = lsm_open_shared(&sh.o, cfg.db, sh.mem, &db);
	if (rc != LSM_OK) {
		fprintf(stderr, "lsm_open_shared(%s): %s\n", cfg.db, lsm_strerror(rc));
		return rc;
	}
	memset(sh.ctl, 0, sizeof *sh.ctl);
	fflush(stdout);
	sh.bg = fork();
	if (sh.bg < 0)
		return LSM_NOMEM;
	if (sh.bg == 0)
		bg_process();
	return LSM_OK;
}

/* One worker process: its share of the operations, then it detaches. */
static void proc_worker(workload w, int id)
{
	proc_result *r = &sh.ctl->r[id];
	lsm_write_options wo = {cfg.sync, cfg.defer_visibility};
	uint64_t seed = 1000 + (uint64_t)id * 7919 + (uint64_t)w;
	uint64_t lo = (uint64_t)cfg.num * (uint64_t)id / (uint64_t)cfg.processes;
	uint64_t hi = (uint64_t)cfg.num * (uint64_t)(id + 1) / (uint64_t)cfg.processes;
	long n = (long)(hi - lo), i;
	char key[256];
	lsm_db *h;
	int rc = lsm_open_shared(&sh.o, cfg.db, sh.mem, &h);

	if (rc != LSM_OK) {
		r->err = rc;
		atomic_fetch_add(&sh.ctl->ready, 1);
		_exit(1);
	}
	atomic_fetch_add(&sh.ctl->ready, 1);
	while (!atomic_load(&sh.ctl->go)) {
		struct timespec ts = {0, 50000};

		nanosleep(&ts, NULL);
	}
	if (w == W_READSEQ) {
		lsm_iter *it;
		size_t kl, vl;

		if (lsm_iter_create(h, NULL, &it) != LSM_OK) {
			r->err = LSM_IOERR;
			_exit(1);
		}
		make_key(key, lo);
		for (lsm_iter_seek(it, key, (size_t)cfg.key_size); lsm_iter_valid(it) && r->done < n;
		     lsm_iter_next(it)) {
			lsm_iter_key(it, &kl);
			lsm_iter_value(it, &vl);
			r->done++;
		}
		lsm_iter_destroy(it);
	} else {
		for (i = 0; i < n; i++) {
			uint64_t k = w == W_FILLSEQ ? lo + (uint64_t)i
			           : w == W_READRANDOM ? rng_next(&seed) % (uint64_t)cfg.num
			           : lo + rng_next(&seed) % (hi - lo);

			make_key(key, k);
			if (w == W_READRANDOM) {
				void *v;
				size_t vl;

				rc = lsm_get(h, NULL, key, (size_t)cfg.key_size, &v, &vl);
				if (rc == LSM_OK) {
					r->found++;
					lsm_free(v);
				} else if (rc != LSM_NOTFOUND)
					r->err = rc;
			} else {
				size_t off = (size_t)(rng_next(&seed) % (value_pool_len - (size_t)cfg.value_size));

				rc = lsm_put(h, &wo, key, (size_t)cfg.key_size, value_pool + off,
				             (size_t)cfg.value_size);
				if (rc != LSM_OK) {
					r->err = rc;
					break;
				}
			}
			r->done++;
		}
	}
	r->t_end = now_sec();
	lsm_close(h);
	_exit(0);
}

static void run_workload_procs(const char *name, workload w)
{
	pid_t pids[MAX_PROCS];
	long done = 0, found = 0;
	double t0, secs = 0;
	int p, err = 0, st;

	if (open_shared(w == W_FILLSEQ || w == W_FILLRANDOM) != LSM_OK)
		exit(1);
	atomic_store(&sh.ctl->ready, 0);
	atomic_store(&sh.ctl->go, 0);
	memset(sh.ctl->r, 0, sizeof sh.ctl->r);
	fflush(stdout);
	for (p = 0; p < cfg.processes; p++) {
		pids[p] = fork();
		if (pids[p] < 0) {
			perror("fork");
			exit(1);
		}
		if (pids[p] == 0)
			proc_worker(w, p);
	}
	while (atomic_load(&sh.ctl->ready) < cfg.processes) {
		struct timespec ts = {0, 100000};

		nanosleep(&ts, NULL);
	}
	t0 = now_sec();
	atomic_store(&sh.ctl->go, 1);
	for (p = 0; p < cfg.processes; p++) {
		proc_result *r = &sh.ctl->r[p];

		if (waitpid(pids[p], &st, 0) != pids[p] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			err = r->err ? r->err : LSM_IOERR;
		done += r->done;
		found += r->found;
		if (r->err)
			err = r->err;
		if (r->t_end - t0 > secs)
			secs = r->t_end - t0;
	}
	if (err) {
		fprintf(stderr, "%s: error %s\n", name, lsm_strerror(err));
		close_shared();
		exit(1);
	}
	printf("%-12s : %11.3f micros/op %10.0f ops/sec", name,
	       secs * 1e6 / ((double)done / cfg.processes), (double)done / secs);
	if (w == W_READRANDOM)
		printf(" (%ld of %ld found)", found, done);
	if (w != W_READRANDOM && w != W_READSEQ)
		printf(" %7.1f MB/s", (double)done * (cfg.key_size + cfg.value_size) / secs / 1e6);
	if (cfg.sync && w != W_READRANDOM && w != W_READSEQ) {
		lsm_stats st2;

		lsm_get_stats(db, &st2);
		printf(" (%.2f writes per fsync)", st2.wal_syncs ? (double)st2.wal_synced_writes / (double)st2.wal_syncs : 0.0);
	}
	if (w != W_READRANDOM && w != W_READSEQ) {
		lsm_stats st3;

		lsm_get_stats(db, &st3);
		printf(" (stalls %llu, %.1f ms)", (unsigned long long)st3.write_stalls,
		       (double)st3.write_stall_micros / 1000.0);
	}
	printf(" [%d processes]\n", cfg.processes);
}

/* Polls (work = 0: nothing is done, only reported) until the background
 * process or threads have no flush or compaction left. */
static void wait_for_compaction(void)
{
	unsigned pending = LSM_WORK_FLUSH;
	double t0 = now_sec();
	int rc = LSM_OK;

	if (db == NULL) {
		printf("%-17s : no database open\n", "waitforcompaction");
		return;
	}
	while (rc == LSM_OK && (pending & (LSM_WORK_FLUSH | LSM_WORK_COMPACT))) {
		struct timespec ts = {0, 5000000};

		nanosleep(&ts, NULL);
		rc = lsm_background_step(db, 0, &pending);
	}
	if (rc != LSM_OK) {
		fprintf(stderr, "waitforcompaction: %s\n", lsm_strerror(rc));
		exit(1);
	}
	printf("%-17s : %11.1f ms\n", "waitforcompaction", (now_sec() - t0) * 1000.0);
}

/* ---- recovery: the time lsm_open takes to replay a WAL of recover_mb */

static void bench_recover(void)
{
	lsm_options o;
	lsm_write_options wo = {0};
	lsm_stats st;
	char key[256], cmd[600];
	uint64_t seed = 77, target = (uint64_t)cfg.recover_mb << 20, written = 0, wal_bytes;
	double t0, secs;
	long n = 0;

	if (db) {
		lsm_close(db);
		db = NULL;
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", cfg.db);
	if (system(cmd) != 0)
		exit(1);
	lsm_options_init(&o);
	/* room for the whole log in memtables: nothing flushed, all replayed */
	o.memtable_size = (size_t)(target / 2 + (64u << 20));
	o.max_memtables = 3;
	if (lsm_open(&o, cfg.db, &db) != LSM_OK)
		exit(1);
	while (written < target) {
		size_t off = (size_t)(rng_next(&seed) % (value_pool_len - (size_t)cfg.value_size));

		make_key(key, rng_next(&seed) % 100000000);
		if (lsm_put(db, &wo, key, (size_t)cfg.key_size, value_pool + off,
		            (size_t)cfg.value_size) != LSM_OK)
			exit(1);
		written += (uint64_t)cfg.key_size + (uint64_t)cfg.value_size + 16;
		n++;
	}
	lsm_get_stats(db, &st);
	wal_bytes = st.wal_bytes;
	if (st.flushes != 0)
		fprintf(stderr, "recover: a flush happened; the figure is not a pure replay\n");
	lsm_close(db);
	db = NULL;
	t0 = now_sec();
	if (lsm_open(&o, cfg.db, &db) != LSM_OK)
		exit(1);
	secs = now_sec() - t0;
	lsm_get_stats(db, &st);
	printf("%-12s : %9.3f s to replay %.1f MB of WAL (%ld records, %.0f MB/s)\n", "recover",
	       secs, (double)wal_bytes / 1e6, (long)st.recovered_records,
	       (double)wal_bytes / secs / 1e6);
	if ((long)st.recovered_records != n)
		fprintf(stderr, "recover: replayed %ld of %ld records\n",
		        (long)st.recovered_records, n);
	lsm_close(db);
	db = NULL;
}

/* ---- primitives: ours beside the reference on the same data */

#define PRIM_BYTES (256u << 20)

static void report_pair(const char *name, double ours, double ref, const char *refname)
{
	printf("%-12s : %9.1f MB/s (%s %9.1f MB/s, ratio %.2f)\n", name, ours, refname,
	       ref, ours / ref);
}

static void bench_crc32(void)
{
	size_t blk = 4096, n = PRIM_BYTES / blk, i;
	volatile uint32_t sink = 0;
	double t0, a, b;

	t0 = now_sec();
	for (i = 0; i < n; i++)
		sink += lsm_crc32(value_pool + (i * 64) % (value_pool_len - blk), blk);
	a = PRIM_BYTES / (now_sec() - t0) / 1e6;
	t0 = now_sec();
	for (i = 0; i < n; i++)
		sink += (uint32_t)crc32(0, (const Bytef *)value_pool + (i * 64) % (value_pool_len - blk), (uInt)blk);
	b = PRIM_BYTES / (now_sec() - t0) / 1e6;
	(void)sink;
	report_pair("crc32", a, b, "zlib");
}

static void bench_xxh64(void)
{
	size_t blk = 4096, n = PRIM_BYTES / blk, i;
	volatile uint64_t sink = 0;
	double t0, a, b;

	t0 = now_sec();
	for (i = 0; i < n; i++)
		sink += lsm_xxh64(value_pool + (i * 64) % (value_pool_len - blk), blk, 0);
	a = PRIM_BYTES / (now_sec() - t0) / 1e6;
	t0 = now_sec();
	for (i = 0; i < n; i++)
		sink += XXH64(value_pool + (i * 64) % (value_pool_len - blk), blk, 0);
	b = PRIM_BYTES / (now_sec() - t0) / 1e6;
	(void)sink;
	report_pair("xxh64", a, b, "libxxhash");
}

static void bench_lz4(void)
{
	size_t blk = 4096, nblk = value_pool_len / blk, rounds = 64, i, r;
	size_t cap = lsm_lz4_compress_bound(blk), ours_total = 0, ref_total = 0, outlen;
	char *comp = malloc(cap * nblk), *ref = malloc(cap * nblk), *out = malloc(blk);
	size_t *clen = malloc(nblk * sizeof *clen), *rlen = malloc(nblk * sizeof *rlen);
	double t0, c_ours, c_ref, d_ours, d_ref, bytes = (double)(blk * nblk * rounds);

	t0 = now_sec();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < nblk; i++)
			lsm_lz4_compress(value_pool + i * blk, blk, comp + i * cap, cap, &clen[i]);
	c_ours = bytes / (now_sec() - t0) / 1e6;
	t0 = now_sec();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < nblk; i++)
			rlen[i] = (size_t)LZ4_compress_default(value_pool + i * blk, ref + i * cap,
			                                       (int)blk, (int)cap);
	c_ref = bytes / (now_sec() - t0) / 1e6;
	t0 = now_sec();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < nblk; i++)
			if (lsm_lz4_decompress(comp + i * cap, clen[i], out, blk, &outlen) != LSM_OK ||
			    outlen != blk) {
				fprintf(stderr, "lz4: our round trip failed\n");
				exit(1);
			}
	d_ours = bytes / (now_sec() - t0) / 1e6;
	t0 = now_sec();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < nblk; i++)
			if (LZ4_decompress_safe(ref + i * cap, out, (int)rlen[i], (int)blk) != (int)blk) {
				fprintf(stderr, "lz4: liblz4 round trip failed\n");
				exit(1);
			}
	d_ref = bytes / (now_sec() - t0) / 1e6;
	for (i = 0; i < nblk; i++) {
		ours_total += clen[i];
		ref_total += rlen[i];
	}
	report_pair("lz4_compress", c_ours, c_ref, "liblz4");
	report_pair("lz4_decomp", d_ours, d_ref, "liblz4");
	printf("%-12s : %9.3f (liblz4 %.3f) compressed/original on 4 KiB blocks\n", "lz4_ratio",
	       (double)ours_total / (double)(blk * nblk), (double)ref_total / (double)(blk * nblk));
	free(comp); free(ref); free(out); free(clen); free(rlen);
}

/* Builds a filter over --num keys at 10 bits/key, then probes it with as
 * many absent keys: probe cost and the measured false-positive rate beside
 * the theoretical one. */
static void bench_bloom(void)
{
	size_t n = (size_t)cfg.num, i, fp = 0, bytes = lsm_bloom_filter_size(n, 10);
	uint64_t *h = malloc(n * sizeof *h);
	uint8_t *f = malloc(bytes);
	char key[256];
	double t0, build, probe, k = 7, theory;
	volatile int sink = 0;

	for (i = 0; i < n; i++) {
		make_key(key, i);
		h[i] = lsm_xxh64(key, (size_t)cfg.key_size, 0);
	}
	t0 = now_sec();
	lsm_bloom_build(h, n, 10, f);
	build = now_sec() - t0;
	for (i = 0; i < n; i++) {
		make_key(key, i + (uint64_t)n);        /* never added */
		h[i] = lsm_xxh64(key, (size_t)cfg.key_size, 0);
	}
	t0 = now_sec();
	for (i = 0; i < n; i++) {
		int m = lsm_bloom_may_contain(f, bytes, h[i]);

		fp += (size_t)m;
		sink += m;
	}
	probe = now_sec() - t0;
	(void)sink;
	/* (1 - e^(-k n / m))^k with m = 8 * (bytes - 1) bits */
	{
		double x = -k * (double)n / (8.0 * (double)(bytes - 1)), e = 1, term = 1;
		int j;

		for (j = 1; j < 40; j++) {      /* e^x without libm */
			term *= x / j;
			e += term;
		}
		theory = 1;
		for (j = 0; j < 7; j++)
			theory *= 1 - e;
	}
	printf("%-12s : %11.3f micros/op (probe) %6.1f ns/key (build); false positives %.4f%% "
	       "(theory %.4f%%, ratio %.2f)\n", "bloom", probe * 1e6 / (double)n,
	       build * 1e9 / (double)n, 100.0 * (double)fp / (double)n, 100.0 * theory,
	       (double)fp / (double)n / theory);
	free(h);
	free(f);
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
		*val = "1";
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char tmpdb[256], *list, *name, *save;
	const char *v;
	int i;

	for (i = 1; i < argc; i++) {
		if (parse_flag(argv[i], "--benchmarks", &v)) cfg.benchmarks = v;
		else if (parse_flag(argv[i], "--num", &v)) cfg.num = atol(v);
		else if (parse_flag(argv[i], "--key_size", &v)) cfg.key_size = atoi(v);
		else if (parse_flag(argv[i], "--value_size", &v)) cfg.value_size = atoi(v);
		else if (parse_flag(argv[i], "--sync", &v)) cfg.sync = atoi(v);
		else if (parse_flag(argv[i], "--threads", &v)) cfg.threads = atoi(v);
		else if (parse_flag(argv[i], "--processes", &v)) cfg.processes = atoi(v);
		else if (parse_flag(argv[i], "--db", &v)) cfg.db = v;
		else if (parse_flag(argv[i], "--memtable_mb", &v)) cfg.memtable_mb = atol(v);
		else if (parse_flag(argv[i], "--wal_sync_ms", &v)) cfg.wal_sync_ms = atol(v);
		else if (parse_flag(argv[i], "--defer_visibility", &v)) cfg.defer_visibility = atoi(v);
		else if (parse_flag(argv[i], "--recover_mb", &v)) cfg.recover_mb = atol(v);
		else {
			fprintf(stderr, "usage: %s [--benchmarks=a,b,...] [--num=N] [--key_size=K] "
			        "[--value_size=V] [--sync] [--threads=T] [--processes=P] [--db=DIR] "
			        "[--memtable_mb=M] [--wal_sync_ms=MS] [--defer_visibility=0|1]\n",
			        argv[0]);
			return 2;
		}
	}
	if (cfg.num < 1 || cfg.threads < 1 || cfg.threads > 64 || cfg.key_size < 8 ||
	    cfg.key_size > 255 || cfg.value_size < 0 || cfg.value_size > 65536 ||
	    cfg.processes < 0 || cfg.processes > MAX_PROCS ||
	    (cfg.processes > 0 && (cfg.threads != 1 || cfg.num < cfg.processes))) {
		fprintf(stderr, "lsm_bench: option out of range\n");
		return 2;
	}
	if (cfg.db == NULL) {
		snprintf(tmpdb, sizeof tmpdb, "/tmp/lsm_bench.%d", (int)getpid());
		cfg.db = tmpdb;
	}
	make_value_pool();
	printf("lsm_bench: num=%ld key_size=%d value_size=%d threads=%d sync=%d db=%s",
	       cfg.num, cfg.key_size, cfg.value_size, cfg.threads, cfg.sync, cfg.db);
	if (cfg.processes > 0)
		printf(" processes=%d memtable_mb=%ld wal_sync_ms=%ld defer_visibility=%d (shared mode)",
		       cfg.processes, cfg.memtable_mb ? cfg.memtable_mb : 64, cfg.wal_sync_ms,
		       cfg.defer_visibility);
	printf("\n");
	list = strdup(cfg.benchmarks);
	for (name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		if (!strcmp(name, "fillseq")) run_workload(name, W_FILLSEQ);
		else if (!strcmp(name, "fillrandom")) run_workload(name, W_FILLRANDOM);
		else if (!strcmp(name, "overwrite")) run_workload(name, W_OVERWRITE);
		else if (!strcmp(name, "readrandom")) run_workload(name, W_READRANDOM);
		else if (!strcmp(name, "readseq")) run_workload(name, W_READSEQ);
		else if (!strcmp(name, "waitforcompaction")) wait_for_compaction();
		else if (!strcmp(name, "recover")) {
			if (cfg.processes > 0)
				printf("%-12s : skipped with --processes\n", name);
			else
				bench_recover();
		}
		else if (!strcmp(name, "crc32")) bench_crc32();
		else if (!strcmp(name, "xxh64")) bench_xxh64();
		else if (!strcmp(name, "lz4")) bench_lz4();
		else if (!strcmp(name, "bloom")) bench_bloom();
		else {
			fprintf(stderr, "unknown benchmark %s\n", name);
			return 2;
		}
		fflush(stdout);
	}
	free(list);
	if (cfg.processes > 0)
		close_shared();
	else if (db)
		lsm_close(db);
	if (cfg.db == tmpdb) {
		char cmd[300];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdb);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}
