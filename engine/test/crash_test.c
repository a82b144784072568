/*
 * crash_test.c — SIGKILL a writer at random moments, recover, verify.
 *
 * sigkill_writer_many_cycles (large memtables: WAL recovery)
 *   Each cycle forks a child that opens the database and applies synced
 *   batches (put A<i>, put B<i>, delete A<i-5>), reporting each
 *   acknowledged i to the parent through a pipe.  The parent kills it with
 *   SIGKILL after a random delay, reopens the database and checks, for this
 *   cycle and every earlier one:
 *     - every acknowledged batch is present (nothing synced is lost);
 *     - at most the one batch in flight may also be present, whole or not
 *       at all (B<i> and the delete of A<i-5> together);
 *     - keys deleted by an applied batch stay deleted.
 *
 * sigkill_during_flush_and_compaction (64 KiB memtables, tiny levels)
 *   The child writes continuously a deterministic stream of operations
 *   (from the cycle's seed): puts, deletes, range deletes, batches mixing
 *   them, now and then lsm_flush or lsm_compact_range; about one write in
 *   60 is synced, and its index goes to the parent through the pipe once
 *   acknowledged.  Background flushes and compactions run all the time, so
 *   kills land in the middle of table writes, manifest edits, obsolete-file
 *   removal and recovery itself (some kills come a few ms after the start;
 *   the number of memtables changes from cycle to cycle, so recoveries
 *   often flush).
 *   After the kill the parent
 *     - runs `lsmctl verify DIR` on the directory as the crash left it, and
 *       requires exit 0;
 *     - reopens, reads everything (a scan, plus gets), and requires the
 *       state to be exactly the model after some prefix of the stream that
 *       contains every acknowledged synced write: nothing synced is lost,
 *       nothing deleted comes back, no value is one the key never had, and
 *       no batch is partly applied (the WAL is a log: recovery yields a
 *       prefix);
 *     - every 8th cycle compacts everything and checks again.
 *   The database carries over from cycle to cycle.
 *
 * crash_at_every_io_call
 *   A process crash at each mutating I/O call in turn (before it, and just
 *   after it): every call of the creation of a new database (open, a
 *   synced put, a flush, close), and about 100 calls spread over a
 *   single-threaded workload of 1500 ops (writes, range deletes, flushes,
 *   compactions).  After each: lsmctl verify exit 0, the reopen succeeds,
 *   and the state is a prefix holding every acknowledged synced write.  All
 *   points run; the failing ones are listed (what call, what went wrong).
 *
 * LSM_CRASH_CYCLES sets the cycles of the first two (defaults 60 and 250);
 * LSM_CRASH_SEED the seed (default: time; printed).  lsmctl is found via
 * LSM_LSMCTL, else next to this binary's build directory, else
 * $LSM_BUILD/lsmctl, else build/lsmctl; a missing lsmctl fails the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "lsm.h"
#include "testutil.h"

#define MAX_CYCLES 1000

static uint64_t crash_seed;

/* The watchdog: a hang (a recovery or a child that never ends) fails the
 * test loudly instead of stalling CI; the child in flight is killed. */
static char wd_text[512];
static size_t wd_len;
static volatile pid_t wd_child;

static void on_alarm(int sig)
{
	static const char tail[] = "FAIL (hang)\n0 passed, 1 failed\n";

	(void)sig;
	if (wd_child > 0)
		kill(wd_child, SIGKILL);
	if (write(2, wd_text, wd_len) < 0 || write(1, tail, sizeof tail - 1) < 0)
		_exit(1);
	_exit(1);
}

/* Arms the watchdog for `seconds` with a message naming what hangs. */
static void watchdog(unsigned seconds, const char *what, int cycle)
{
	int n = snprintf(wd_text, sizeof wd_text, "    crash_test: WATCHDOG: %s, cycle %d, seed %"
	                 PRIu64 ", did not finish in %u s\n", what, cycle, crash_seed, seconds);

	wd_len = n > 0 && (size_t)n < sizeof wd_text ? (size_t)n : 0;
	signal(SIGALRM, on_alarm);
	alarm(seconds);
}

static void init_seed(void)
{
	const char *s = getenv("LSM_CRASH_SEED");

	if (crash_seed)
		return;
	crash_seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
	printf("    seed %" PRIu64 " (LSM_CRASH_SEED)\n", crash_seed);
}

static long cycles_env(long dflt)
{
	const char *v = getenv("LSM_CRASH_CYCLES");

	return v && *v ? atol(v) : dflt;
}

static int applied[MAX_CYCLES];   /* batches of cycle c present after recovery */

static void key(char *buf, size_t *n, char half, int cycle, int i)
{
	*n = (size_t)sprintf(buf, "%c%03d-%06d", half, cycle, i);
}

static lsm_options crash_options(int cycle)
{
	lsm_options o;

	lsm_options_init(&o);
	o.memtable_size = 32u << 20;
	/* every third cycle rotates segments often, so kills land there too */
	o.wal_segment_size = cycle % 3 == 0 ? 4096 : 1u << 20;
	o.wal_buffer_size = 4096;
	return o;
}

static void child(const char *dir, int cycle, int fd)
{
	lsm_options o = crash_options(cycle);
	lsm_write_options wo = {1};
	lsm_batch *b;
	lsm_db *db;
	char k[32], v[64];
	size_t kl;
	int i;

	if (lsm_open(&o, dir, &db) != LSM_OK || lsm_batch_create(&b) != LSM_OK)
		_exit(2);
	for (i = 0;; i++) {
		lsm_batch_clear(b);
		snprintf(v, sizeof v, "value-%d-%d", cycle, i);
		key(k, &kl, 'A', cycle, i);
		lsm_batch_put(b, k, kl, v, strlen(v));
		key(k, &kl, 'B', cycle, i);
		lsm_batch_put(b, k, kl, v, strlen(v));
		if (i >= 5) {
			key(k, &kl, 'A', cycle, i - 5);
			lsm_batch_delete(b, k, kl);
		}
		if (lsm_write(db, &wo, b) != LSM_OK)
			_exit(3);
		if (write(fd, &i, sizeof i) != sizeof i)
			_exit(4);
	}
}

static int present(lsm_db *db, char half, int cycle, int i)
{
	char k[32], want[64];
	size_t kl, n;
	void *v;
	int rc, ok;

	key(k, &kl, half, cycle, i);
	rc = lsm_get(db, NULL, k, kl, &v, &n);
	if (rc == LSM_NOTFOUND)
		return 0;
	if (rc != LSM_OK)
		return -1;
	snprintf(want, sizeof want, "value-%d-%d", cycle, i);
	ok = n == strlen(want) && memcmp(v, want, n) == 0;
	lsm_free(v);
	return ok ? 1 : -1;
}

/* Checks cycle c given `n` applied batches; 0 when consistent. */
static int verify_cycle(lsm_db *db, int c, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (present(db, 'B', c, i) != 1 ||
		    present(db, 'A', c, i) != (i + 5 >= n ? 1 : 0))
			return -1;
	/* nothing beyond */
	for (i = n; i < n + 3; i++)
		if (present(db, 'A', c, i) != 0 || present(db, 'B', c, i) != 0)
			return -1;
	return 0;
}

/* Drains the pipe until the deadline (ms from now) and then to EOF after
 * the caller's kill; *last gets the last value read. */
static long read_acks(int fd, long *last, int ms)
{
	long count = 0;
	struct pollfd p = {fd, POLLIN, 0};
	struct timespec t0, t;
	long v;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long left;

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return count;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		if (read(fd, &v, sizeof v) != sizeof v)
			return count;
		*last = v;
		count++;
	}
}

/* Looks at the files a crash left: the largest table number, and whether
 * an unfinished table (.sst.tmp) is there. */
static void scan_files(const char *dir, uint64_t *max_sst, int *tmp)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	*tmp = 0;
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		unsigned long long n;

		if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0)
			*tmp = 1;
		if (l > 4 && strcmp(e->d_name + l - 4, ".sst") == 0 &&
		    sscanf(e->d_name, "%llu", &n) == 1 && n > *max_sst)
			*max_sst = n;
	}
	closedir(d);
}

static void sigkill_writer_many_cycles(void)
{
	const char *dir = test_tmpdir("crash");
	long cycles = cycles_env(60);
	test_rng rng;
	int c, total_acked = 0;

	init_seed();
	if (cycles > MAX_CYCLES)
		cycles = MAX_CYCLES;
	test_rng_seed(&rng, crash_seed);
	for (c = 0; c < cycles; c++) {
		int fds[2], acked = -1, v, status, prev;
		lsm_options o = crash_options(c);
		struct timespec ts;
		lsm_db *db;
		pid_t pid;

		CHECK(pipe(fds) == 0);
		watchdog(120, "sigkill_writer_many_cycles", c);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			alarm(0);
			close(fds[0]);
			child(dir, c, fds[1]);
		}
		wd_child = pid;
		close(fds[1]);
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(5 + test_rng_uniform(&rng, 60)) * 1000000L;
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK_MSG(WIFSIGNALED(status), "child exited early with %d", WEXITSTATUS(status));
		while (read(fds[0], &v, sizeof v) == sizeof v)
			acked = v;
		close(fds[0]);

		CHECK_OK(lsm_open(&o, dir, &db));
		/* the batch in flight may have made it: whole or not at all */
		prev = acked + 1;
		if (present(db, 'B', c, acked + 1) == 1)
			prev = acked + 2;
		applied[c] = prev;
		total_acked += acked + 1;
		CHECK_MSG(verify_cycle(db, c, applied[c]) == 0,
		          "seed %" PRIu64 " cycle %d: %d acknowledged, state inconsistent",
		          crash_seed, c, acked + 1);
		/* earlier cycles are untouched */
		for (v = 0; v < c; v++)
			CHECK_MSG(verify_cycle(db, v, applied[v]) == 0, "seed %" PRIu64
			          ": cycle %d damaged in cycle %d", crash_seed, v, c);
		CHECK_OK(lsm_close(db));
	}
	alarm(0);
	CHECK(total_acked > 0);
	printf("    %ld cycles, %d synced batches acknowledged\n", cycles, total_acked);
}

/* ------------------------------------------------------------------ lsmctl */

static char lsmctl_path[1100];

/* Finds lsmctl (see the top comment); "" when there is none. */
static const char *find_lsmctl(void)
{
	char exe[1024];
	const char *e;
	ssize_t n;

	if (lsmctl_path[0])
		return lsmctl_path;
	if ((e = getenv("LSM_LSMCTL")) != NULL && *e) {
		snprintf(lsmctl_path, sizeof lsmctl_path, "%s", e);
		return lsmctl_path;
	}
	/* this binary is BUILD/test/crash_test: lsmctl is BUILD/lsmctl */
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		char *s;

		exe[n] = 0;
		if ((s = strrchr(exe, '/')) != NULL) {
			*s = 0;
			if ((s = strrchr(exe, '/')) != NULL) {
				*s = 0;
				snprintf(lsmctl_path, sizeof lsmctl_path, "%s/lsmctl", exe);
				if (access(lsmctl_path, X_OK) == 0)
					return lsmctl_path;
			}
		}
	}
	e = getenv("LSM_BUILD");
	snprintf(lsmctl_path, sizeof lsmctl_path, "%s/lsmctl", e && *e ? e : "build");
	return lsmctl_path;
}

/* Runs `lsmctl verify dir`; returns its exit code (-1: could not run it,
 * 128 + n: killed by signal n) and its output in out. */
static int run_verify(const char *dir, char *out, size_t outlen)
{
	const char *ctl = find_lsmctl();
	int fds[2], status;
	size_t used = 0;
	ssize_t n;
	pid_t pid;

	out[0] = 0;
	if (access(ctl, X_OK) != 0) {
		snprintf(out, outlen, "lsmctl not found at %s (set LSM_LSMCTL or LSM_BUILD)", ctl);
		return -1;
	}
	if (pipe(fds) != 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execl(ctl, ctl, "verify", dir, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], out + used, outlen - 1 - used)) > 0 && used + 1 < outlen)
		used += (size_t)n;
	out[used] = 0;
	{
		char sink[4096];

		while (read(fds[0], sink, sizeof sink) > 0)
			;
	}
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* -------------------------------------- kills during flushes and compactions */

#define KD_KEYS     2000
#define KD_MAXENT   10
#define KD_MAXVAL   320

enum { KD_PUT, KD_DEL, KD_RDEL };
enum { KD_WRITE, KD_FLUSH, KD_COMPACT };

typedef struct kd_entry {
	int type;
	int a, b;                /* key a; range [a, b) */
	uint64_t id;             /* puts: the value's id (never 0) */
} kd_entry;

typedef struct kd_op {
	int kind;
	int sync;
	int n;
	kd_entry e[KD_MAXENT];
} kd_op;

static uint64_t kd_model[KD_KEYS];    /* value id per key; 0: absent */
static uint64_t kd_state[KD_KEYS];    /* what recovery shows */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static size_t kd_key(int k, char *buf)
{
	return (size_t)sprintf(buf, "k%05d", k);
}

/* The value of put `id` to key k: "e<id>.k<k>." and filler, 40-300 bytes. */
static size_t kd_value(uint64_t id, int k, char *buf)
{
	uint64_t h = mix64(id);
	size_t n = (size_t)sprintf(buf, "e%" PRIu64 ".k%d.", id, k), len = 40 + h % 260, i;

	for (i = n; i < len; i++)
		buf[i] = (char)('a' + (h >> (i % 50)) % 26);
	return len;
}

/* The next op of a cycle's stream; ids are (cycle + 1) << 32 | counter. */
static void kd_gen(test_rng *r, uint64_t *next_id, kd_op *op)
{
	uint64_t x = test_rng_uniform(r, 1000);
	int i;

	memset(op, 0, sizeof *op);
	if (x < 2) {
		op->kind = KD_FLUSH;
		return;
	}
	if (x < 3) {
		op->kind = KD_COMPACT;
		op->e[0].a = (int)test_rng_uniform(r, KD_KEYS);
		op->e[0].b = op->e[0].a + (int)test_rng_uniform(r, KD_KEYS / 4);
		return;
	}
	op->kind = KD_WRITE;
	op->sync = test_rng_uniform(r, 60) == 0;
	op->n = x < 750 ? 1 : 2 + (int)test_rng_uniform(r, KD_MAXENT - 1);
	for (i = 0; i < op->n; i++) {
		kd_entry *e = &op->e[i];
		uint64_t t = test_rng_uniform(r, 100);

		e->a = (int)test_rng_uniform(r, KD_KEYS);
		if (t < 75) {
			e->type = KD_PUT;
			e->id = (*next_id)++;
		} else if (t < 94) {
			e->type = KD_DEL;
		} else {
			e->type = KD_RDEL;
			e->b = e->a + 1 + (int)test_rng_uniform(r, t < 99 ? 20 : 300);
			if (e->b > KD_KEYS)
				e->b = KD_KEYS;
		}
	}
}

static lsm_options kd_options(uint64_t cycle_seed)
{
	lsm_options o;

	lsm_options_init(&o);
	o.memtable_size = 64 * 1024;
	/* 2 to 4: a cycle after one with more memtables flushes from inside
	 * its recovery, and early kills land there */
	o.max_memtables = 2 + (int)(mix64(cycle_seed + 2) % 3);
	o.max_bytes_for_level_base = 128 * 1024;
	o.level_size_multiplier = 4;
	o.target_file_size = 32 * 1024;     /* many files a level, many outputs */
	o.l0_compaction_trigger = 2;
	o.block_size = 1024;
	o.block_cache_size = 256 * 1024;
	o.wal_buffer_size = 4096 + (size_t)(mix64(cycle_seed) % 4) * 16384;
	o.wal_segment_size = mix64(cycle_seed + 1) % 3 == 0 ? 16 * 1024 : 1u << 20;
	return o;
}

static uint64_t kd_cycle_seed(int cycle)
{
	return mix64(crash_seed * 1000003u + (uint64_t)cycle + 1);
}

static void kd_child(const char *dir, int cycle, int fd)
{
	uint64_t cs = kd_cycle_seed(cycle), next_id = ((uint64_t)cycle + 1) << 32;
	lsm_options o = kd_options(cs);
	lsm_write_options wsync = {1};
	lsm_batch *b;
	lsm_db *db;
	test_rng r;
	kd_op op;
	char k[16], k2[16], v[KD_MAXVAL];
	long i;
	int rc;

	test_rng_seed(&r, cs);
	if ((rc = lsm_open(&o, dir, &db)) != LSM_OK || lsm_batch_create(&b) != LSM_OK) {
		fprintf(stderr, "    kd child %d: open: %s\n", cycle, lsm_strerror(rc));
		_exit(2);
	}
	for (i = 0;; i++) {
		kd_gen(&r, &next_id, &op);
		if (op.kind == KD_FLUSH) {
			rc = lsm_flush(db);
		} else if (op.kind == KD_COMPACT) {
			size_t l1 = kd_key(op.e[0].a, k), l2 = kd_key(op.e[0].b, k2);

			rc = lsm_compact_range(db, k, l1, k2, l2);
		} else if (op.n == 1 && op.e[0].type == KD_PUT) {
			size_t kl = kd_key(op.e[0].a, k), vl = kd_value(op.e[0].id, op.e[0].a, v);

			rc = lsm_put(db, op.sync ? &wsync : NULL, k, kl, v, vl);
		} else if (op.n == 1 && op.e[0].type == KD_DEL) {
			rc = lsm_delete(db, op.sync ? &wsync : NULL, k, kd_key(op.e[0].a, k));
		} else if (op.n == 1) {
			size_t l1 = kd_key(op.e[0].a, k), l2 = kd_key(op.e[0].b, k2);

			rc = lsm_delete_range(db, op.sync ? &wsync : NULL, k, l1, k2, l2);
		} else {
			lsm_batch_clear(b);
			for (int j = 0; j < op.n; j++) {
				kd_entry *e = &op.e[j];
				size_t kl = kd_key(e->a, k);

				if (e->type == KD_PUT)
					lsm_batch_put(b, k, kl, v, kd_value(e->id, e->a, v));
				else if (e->type == KD_DEL)
					lsm_batch_delete(b, k, kl);
				else
					lsm_batch_delete_range(b, k, kl, k2, kd_key(e->b, k2));
			}
			rc = lsm_write(db, op.sync ? &wsync : NULL, b);
		}
		if (rc != LSM_OK) {
			fprintf(stderr, "    kd child %d: op %ld (kind %d): %s\n", cycle, i, op.kind,
			        lsm_strerror(rc));
			_exit(3);
		}
		if (op.kind == KD_WRITE && op.sync && write(fd, &i, sizeof i) != sizeof i)
			_exit(4);
	}
}

/* Applies op to the model, keeping *mism = keys where model != kd_state. */
static void kd_apply(const kd_op *op, long *mism)
{
	for (int j = 0; op->kind == KD_WRITE && j < op->n; j++) {
		const kd_entry *e = &op->e[j];
		int lo = e->a, hi = e->type == KD_RDEL ? e->b : e->a + 1;

		for (int k = lo; k < hi; k++) {
			uint64_t nv = e->type == KD_PUT ? e->id : 0;

			if (kd_model[k] == nv)
				continue;
			*mism += (kd_model[k] != kd_state[k] ? -1 : 0) + (nv != kd_state[k] ? 1 : 0);
			kd_model[k] = nv;
		}
	}
}

static char kd_msg[1024];

/* Reads the whole database into kd_state (scan), checks every value's
 * bytes and a sample of gets; 0 when fine, else kd_msg says why. */
static int kd_read_state(lsm_db *db, test_rng *r)
{
	static char want[KD_MAXVAL];
	lsm_iter *it;
	int prev = -1, rc, i;

	memset(kd_state, 0, sizeof kd_state);
	if ((rc = lsm_iter_create(db, NULL, &it)) != LSM_OK)
		return snprintf(kd_msg, sizeof kd_msg, "iter_create: %s", lsm_strerror(rc)), 1;
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *kp = lsm_iter_key(it, &kl), *vp = lsm_iter_value(it, &vl);
		char kb[32];
		uint64_t id;
		int k;

		if (kl != 6 || kp[0] != 'k' || sscanf(kp + 1, "%5d", &k) != 1 || k < 0 ||
		    k >= KD_KEYS || k <= prev) {
			lsm_iter_destroy(it);
			return snprintf(kd_msg, sizeof kd_msg, "scan: unexpected key (%zu bytes) after "
			                "k%05d", kl, prev), 1;
		}
		memcpy(kb, vp, vl < 31 ? vl : 31);       /* "e<id>.k<k>." and more */
		kb[vl < 31 ? vl : 31] = 0;
		if (vl < 2 || vp[0] != 'e' || sscanf(kb + 1, "%" SCNu64, &id) != 1 ||
		    kd_value(id, k, want) != vl || memcmp(want, vp, vl) != 0) {
			lsm_iter_destroy(it);
			return snprintf(kd_msg, sizeof kd_msg, "scan: k%05d holds a value never "
			                "written to it (%zu bytes, starts '%s')", k, vl, kb), 1;
		}
		kd_state[k] = id;
		prev = k;
	}
	rc = lsm_iter_status(it);
	lsm_iter_destroy(it);
	if (rc != LSM_OK)
		return snprintf(kd_msg, sizeof kd_msg, "scan: status %s", lsm_strerror(rc)), 1;
	for (i = 0; i < 300; i++) {
		int k = (int)test_rng_uniform(r, KD_KEYS);
		char kb[16];
		void *v;
		size_t n;

		rc = lsm_get(db, NULL, kb, kd_key(k, kb), &v, &n);
		if (rc == LSM_NOTFOUND && kd_state[k] == 0)
			continue;
		if (rc != LSM_OK || kd_state[k] == 0 || n != kd_value(kd_state[k], k, want) ||
		    memcmp(v, want, n) != 0) {
			lsm_free(v);
			return snprintf(kd_msg, sizeof kd_msg, "get k%05d: rc %s, disagrees with the "
			                "scan (which has %s)", k, lsm_strerror(rc),
			                kd_state[k] ? "a value" : "nothing"), 1;
		}
		lsm_free(v);
	}
	return 0;
}

static void kd_describe_id(uint64_t id, char *buf, size_t n)
{
	if (id == 0)
		snprintf(buf, n, "absent");
	else
		snprintf(buf, n, "put #%" PRIu64 " of cycle %" PRIu64, id & 0xffffffffu,
		         (id >> 32) - 1);
}

/*
 * Finds a prefix length P in [lo, hi] of cycle c's stream such that the
 * model after it equals kd_state; leaves the model there.  0 when found,
 * else kd_msg describes the closest miss.
 */
static int kd_match_prefix(int c, long lo, long hi)
{
	static uint64_t base[KD_KEYS], at_lo[KD_KEYS];
	uint64_t next_id = ((uint64_t)c + 1) << 32;
	test_rng r;
	kd_op op;
	long p, mism = 0, best = -1, best_mism = -1;
	int k;

	memcpy(base, kd_model, sizeof base);
	test_rng_seed(&r, kd_cycle_seed(c));
	for (p = 0; p < lo; p++) {
		kd_gen(&r, &next_id, &op);
		kd_apply(&op, &mism);        /* mism not yet meaningful */
	}
	memcpy(at_lo, kd_model, sizeof at_lo);
	mism = 0;
	for (k = 0; k < KD_KEYS; k++)
		mism += kd_model[k] != kd_state[k];
	for (p = lo;; p++) {
		if (best_mism < 0 || mism < best_mism) {
			best_mism = mism;
			best = p;
		}
		if (mism == 0)
			return 0;
		if (p == hi)
			break;
		kd_gen(&r, &next_id, &op);
		kd_apply(&op, &mism);
	}
	/* describe: the keys that differ from the state at lo */
	{
		size_t used = (size_t)snprintf(kd_msg, sizeof kd_msg,
		                               "no prefix of %ld..%ld ops matches (closest: %ld ops, "
		                               "%ld keys differ); at %ld:", lo, hi, best, best_mism, lo);
		int shown = 0;

		for (k = 0; k < KD_KEYS && shown < 4 && used < sizeof kd_msg - 200; k++) {
			char w[64], g[64];

			if (at_lo[k] == kd_state[k])
				continue;
			kd_describe_id(at_lo[k], w, sizeof w);
			kd_describe_id(kd_state[k], g, sizeof g);
			used += (size_t)snprintf(kd_msg + used, sizeof kd_msg - used,
			                         " k%05d want %s, got %s;", k, w, g);
			shown++;
		}
	}
	memcpy(kd_model, base, sizeof base);
	return 1;
}

/* The first synced write at or after op index from, in cycle c's stream. */
static long kd_next_synced(int c, long from)
{
	uint64_t next_id = ((uint64_t)c + 1) << 32;
	test_rng r;
	kd_op op;
	long p;

	test_rng_seed(&r, kd_cycle_seed(c));
	for (p = 0;; p++) {
		kd_gen(&r, &next_id, &op);
		if (p >= from && op.kind == KD_WRITE && op.sync)
			return p;
	}
}

static void sigkill_during_flush_and_compaction(void)
{
	const char *dir = test_tmpdir("crashkd");
	long cycles = cycles_env(250);
	static char out[8192];
	uint64_t acked_total = 0, deepest = 0, max_sst = 0;
	long early = 0, tmp_left = 0, torn = 0;
	test_rng rng;
	int c, rc;

	init_seed();
	test_rng_seed(&rng, crash_seed ^ 0x5eed);
	memset(kd_model, 0, sizeof kd_model);
	rc = run_verify(dir, out, sizeof out);
	CHECK_MSG(rc == 0, "lsmctl verify on an empty directory: exit %d: %s", rc, out);
	for (c = 0; c < cycles; c++) {
		uint64_t cs = kd_cycle_seed(c);
		lsm_options o = kd_options(cs);
		int fds[2], status, ms, tmp;
		long acked = -1, nacked, lo, hi;
		lsm_stats st;
		lsm_db *db;
		pid_t pid;

		/* mostly 10-150 ms; one cycle in 8 dies within 4 ms (in recovery) */
		ms = test_rng_uniform(&rng, 8) == 0 ? 1 + (int)test_rng_uniform(&rng, 4)
		                                    : 10 + (int)test_rng_uniform(&rng, 140);
		early += ms < 5;
		CHECK(pipe(fds) == 0);
		fflush(stdout);
		fflush(stderr);
		watchdog(120, "sigkill_during_flush_and_compaction", c);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			alarm(0);
			close(fds[0]);
			kd_child(dir, c, fds[1]);
		}
		wd_child = pid;
		close(fds[1]);
		nacked = read_acks(fds[0], &acked, ms);
		kill(pid, SIGKILL);
		CHECK(waitpid(pid, &status, 0) == pid);
		{
			long v;

			while (read(fds[0], &v, sizeof v) == sizeof v) {
				acked = v;
				nacked++;
			}
		}
		close(fds[0]);
		CHECK_MSG(WIFSIGNALED(status), "seed %" PRIu64 " cycle %d: child exited by itself "
		          "with %d (2: open failed, 3: an operation failed; see its message)",
		          crash_seed, c, WEXITSTATUS(status));

		scan_files(dir, &max_sst, &tmp);
		tmp_left += tmp;
		rc = run_verify(dir, out, sizeof out);
		CHECK_MSG(rc == 0, "seed %" PRIu64 " cycle %d (killed after %d ms): lsmctl verify "
		          "%s exited %d after the crash:\n%s", crash_seed, c, ms, dir, rc, out);
		torn += strstr(out, "torn") != NULL;

		rc = lsm_open(&o, dir, &db);
		CHECK_MSG(rc == LSM_OK, "seed %" PRIu64 " cycle %d (killed after %d ms; db kept in "
		          "%s): reopen: %s", crash_seed, c, ms, dir, lsm_strerror(rc));
		rc = kd_read_state(db, &rng);
		if (rc != 0)
			lsm_close(db);
		CHECK_MSG(rc == 0, "seed %" PRIu64 " cycle %d (killed after %d ms): %s", crash_seed,
		          c, ms, kd_msg);
		lo = acked + 1;
		hi = kd_next_synced(c, lo) + 1;
		rc = kd_match_prefix(c, lo, hi);
		if (rc != 0)
			lsm_close(db);
		CHECK_MSG(rc == 0, "seed %" PRIu64 " cycle %d (killed after %d ms, %ld synced ops "
		          "acknowledged, last #%ld; db kept in %s): recovered state is not a "
		          "prefix holding them: %s", crash_seed, c, ms, nacked, acked, dir, kd_msg);
		acked_total += (uint64_t)nacked;
		if (c % 8 == 7) {
			/* rewrite everything after recovery and look again */
			rc = lsm_compact_range(db, NULL, 0, NULL, 0);
			if (rc == LSM_OK)
				rc = kd_read_state(db, &rng) ? -1 : LSM_OK;
			for (int k = 0; rc == LSM_OK && k < KD_KEYS; k++)
				if (kd_state[k] != kd_model[k])
					rc = -2;
			if (rc != LSM_OK)
				lsm_close(db);
			CHECK_MSG(rc == LSM_OK, "seed %" PRIu64 " cycle %d: after compacting the "
			          "recovered database: %d %s", crash_seed, c, rc, kd_msg);
		}
		CHECK_OK(lsm_get_stats(db, &st));
		for (int l = 0; l < 7; l++)
			if (st.level_files[l] && (uint64_t)l > deepest)
				deepest = (uint64_t)l;
		CHECK_OK(lsm_close(db));
	}
	alarm(0);
	rc = run_verify(dir, out, sizeof out);
	CHECK_MSG(rc == 0, "lsmctl verify at the end: exit %d: %s", rc, out);
	printf("    %ld cycles (%ld killed within 4 ms): %" PRIu64 " synced writes acknowledged, "
	       "table numbers up to %" PRIu64 ", an unfinished table left by %ld kills, a torn "
	       "WAL tail by %ld, deepest level L%" PRIu64 "\n", cycles, early, acked_total,
	       max_sst, tmp_left, torn, deepest);
	CHECK_MSG(max_sst >= (uint64_t)cycles, "table numbers only reached %" PRIu64 " in %ld "
	          "cycles: the kills did not land among flushes", max_sst, cycles);
}

/* ------------------------------------------------ crashes at every I/O call */

/*
 * A process crash at a chosen I/O call: this env is the POSIX one, but its
 * Nth mutating call (an open for writing, write, fsync, truncate, rename,
 * remove, directory fsync, mkdir) ends the process with _exit(77), before
 * the call or just after it, having written what the call was to
 * cp_desc_fd.  Counting starts when cp_armed is set.
 */
static long cp_count, cp_at;
static int cp_after, cp_armed, cp_desc_fd = -1;

/* Which file each open handle is (for the description of a crash point). */
static struct { lsm_file *f; char path[160]; } cp_files[64];

static const char *cp_path_of(lsm_file *f)
{
	for (int i = 0; i < 64; i++)
		if (cp_files[i].f == f)
			return cp_files[i].path;
	return "?";
}

static int cp_hit(const char *what, const char *path)
{
	char d[256];
	const char *base = strrchr(path, '/');
	int n;

	if (!cp_armed || ++cp_count != cp_at)
		return 0;
	n = snprintf(d, sizeof d, "%s %s %s", cp_after ? "after" : "before", what,
	             base ? base + 1 : path);
	if (cp_desc_fd >= 0 && n > 0 && write(cp_desc_fd, d, (size_t)n) < 0)
		_exit(4);
	if (!cp_after)
		_exit(77);
	return 1;
}

#define CP_DONE(hit, rc) do { if (hit) _exit(77); return (rc); } while (0)

static int cp_open(lsm_env *env, const char *path, int flags, lsm_file **out)
{
	int hit = (flags & (LSM_OPEN_WRITE | LSM_OPEN_CREATE)) ? cp_hit("open", path) : 0;
	int rc = lsm_env_posix()->open(lsm_env_posix(), path, flags, out);

	(void)env;
	if (rc == LSM_OK)
		for (int i = 0; i < 64; i++)
			if (cp_files[i].f == NULL) {
				cp_files[i].f = *out;
				snprintf(cp_files[i].path, sizeof cp_files[i].path, "%s", path);
				break;
			}
	CP_DONE(hit, rc);
}

static int cp_close(lsm_file *f)
{
	for (int i = 0; i < 64; i++)
		if (cp_files[i].f == f)
			cp_files[i].f = NULL;
	return lsm_env_posix()->close(f);
}

static int cp_write(lsm_file *f, uint64_t off, const void *buf, size_t n)
{
	int hit = cp_hit("write", cp_path_of(f)), rc = lsm_env_posix()->write(f, off, buf, n);

	CP_DONE(hit, rc);
}

static int cp_sync(lsm_file *f)
{
	int hit = cp_hit("fsync", cp_path_of(f)), rc = lsm_env_posix()->sync(f);

	CP_DONE(hit, rc);
}

static int cp_truncate(lsm_file *f, uint64_t size)
{
	int hit = cp_hit("truncate", cp_path_of(f)), rc = lsm_env_posix()->truncate(f, size);

	CP_DONE(hit, rc);
}

static int cp_remove(lsm_env *env, const char *path)
{
	int hit = cp_hit("remove", path), rc = lsm_env_posix()->remove(lsm_env_posix(), path);

	(void)env;
	CP_DONE(hit, rc);
}

static int cp_rename(lsm_env *env, const char *from, const char *to)
{
	int hit = cp_hit("rename to", to);
	int rc = lsm_env_posix()->rename(lsm_env_posix(), from, to);

	(void)env;
	CP_DONE(hit, rc);
}

static int cp_sync_dir(lsm_env *env, const char *path)
{
	int hit = cp_hit("fsync of the directory", "");
	int rc = lsm_env_posix()->sync_dir(lsm_env_posix(), path);

	(void)env;
	CP_DONE(hit, rc);
}

static int cp_mkdir(lsm_env *env, const char *path)
{
	int hit = cp_hit("mkdir", ""), rc = lsm_env_posix()->mkdir(lsm_env_posix(), path);

	(void)env;
	CP_DONE(hit, rc);
}

static lsm_env *crash_env(void)
{
	static lsm_env e;

	if (e.open == NULL) {
		e = *lsm_env_posix();
		e.open = cp_open;
		e.close = cp_close;
		e.write = cp_write;
		e.sync = cp_sync;
		e.truncate = cp_truncate;
		e.remove = cp_remove;
		e.rename = cp_rename;
		e.sync_dir = cp_sync_dir;
		e.mkdir = cp_mkdir;
	}
	return &e;
}

#define CP_OPS 1500

static lsm_options cp_options(void)
{
	lsm_options o;

	lsm_options_init(&o);
	o.env = crash_env();
	o.background_thread = 0;            /* one thread: the Nth call is one call */
	o.memtable_size = 64 * 1024;
	o.max_memtables = 2;
	o.max_bytes_for_level_base = 64 * 1024;
	o.level_size_multiplier = 4;
	o.target_file_size = 16 * 1024;
	o.wal_buffer_size = 4096;
	o.wal_segment_size = 16 * 1024;
	o.block_size = 1024;
	return o;
}

/*
 * The child of a crash point: with `create`, the first open of a new
 * database, a synced put, a flush and a close; else (counting from after
 * the open) CP_OPS ops of the stream of `cycle` (flushing when the
 * memtables are full, compacting everything every 300 ops), then a
 * close.  Synced writes are acknowledged on fd; at the end (no crash) the
 * negated call count (minus 1) follows.
 */
static void cp_child(const char *dir, int cycle, int create, int fd)
{
	uint64_t next_id = ((uint64_t)cycle + 1) << 32;
	lsm_options o = cp_options();
	lsm_write_options wsync = {1};
	lsm_batch *b;
	lsm_db *db;
	test_rng r;
	kd_op op;
	char k[16], k2[16], v[KD_MAXVAL];
	long i, end;
	int rc;

	cp_armed = create;
	if ((rc = lsm_open(&o, dir, &db)) != LSM_OK || lsm_batch_create(&b) != LSM_OK) {
		fprintf(stderr, "    crash-point child: open: %s\n", lsm_strerror(rc));
		_exit(2);
	}
	cp_armed = 1;
	if (create) {
		i = 0;
		if ((rc = lsm_put(db, &wsync, "k00000", 6, "created", 7)) != LSM_OK ||
		    write(fd, &i, sizeof i) != sizeof i || (rc = lsm_flush(db)) != LSM_OK) {
			fprintf(stderr, "    crash-point child: %s\n", lsm_strerror(rc));
			_exit(3);
		}
	}
	test_rng_seed(&r, kd_cycle_seed(cycle));
	for (i = 0; !create && i < CP_OPS; i++) {
		kd_gen(&r, &next_id, &op);
		for (int attempt = 0; attempt < 2; attempt++) {
			if (op.kind == KD_FLUSH) {
				rc = lsm_flush(db);
			} else if (op.kind == KD_COMPACT) {
				size_t l1 = kd_key(op.e[0].a, k), l2 = kd_key(op.e[0].b, k2);

				rc = lsm_compact_range(db, k, l1, k2, l2);
			} else {
				lsm_batch_clear(b);
				for (int j = 0; j < op.n; j++) {
					kd_entry *e = &op.e[j];
					size_t kl = kd_key(e->a, k);

					if (e->type == KD_PUT)
						lsm_batch_put(b, k, kl, v, kd_value(e->id, e->a, v));
					else if (e->type == KD_DEL)
						lsm_batch_delete(b, k, kl);
					else
						lsm_batch_delete_range(b, k, kl, k2, kd_key(e->b, k2));
				}
				rc = lsm_write(db, op.sync ? &wsync : NULL, b);
			}
			if (rc != LSM_FULL || (rc = lsm_flush(db)) != LSM_OK)
				break;
		}
		if (rc == LSM_OK && i % 300 == 299)
			rc = lsm_compact_range(db, NULL, 0, NULL, 0);
		if (rc != LSM_OK) {
			fprintf(stderr, "    crash-point child: op %ld: %s\n", i, lsm_strerror(rc));
			_exit(3);
		}
		if (op.kind == KD_WRITE && op.sync && write(fd, &i, sizeof i) != sizeof i)
			_exit(4);
	}
	if ((rc = lsm_close(db)) != LSM_OK)
		_exit(5);
	end = -cp_count - 1;
	_exit(write(fd, &end, sizeof end) == sizeof end ? 0 : 4);
}

/* Runs one crash point (at 0: none); *acked gets the last acknowledged
 * op (-1: none), *calls the call count of a run without a crash.  Returns
 * the child's exit code (77: crashed as planned), -1 on a fork failure. */
static int cp_run(const char *dir, int cycle, int create, long at, int after, long *acked,
                  long *calls)
{
	int fds[2], status;
	long v;
	pid_t pid;

	*acked = -1;
	*calls = 0;
	if (pipe(fds) != 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		alarm(0);
		close(fds[0]);
		cp_count = 0;
		cp_at = at;
		cp_after = after;
		cp_child(dir, cycle, create, fds[1]);
	}
	wd_child = pid;
	close(fds[1]);
	while (read(fds[0], &v, sizeof v) == sizeof v) {
		if (v < 0)
			*calls = -v - 1;
		else
			*acked = v;
	}
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	wd_child = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * One crash point: the child crashes at I/O call `at` (before or after
 * it), then lsmctl verify, the reopen and the model check.  0 when fine,
 * else why[] says what failed.
 */
static int cp_point(int cycle, int create, long at, int after, test_rng *rng, int *crashed,
                    char *why, size_t whylen)
{
	static char out[8192];
	char desc[256] = "", descpath[600];
	const char *dir = test_tmpdir("crashpoint");
	long acked, calls, lo, hi;
	lsm_options o;
	lsm_db *db;
	ssize_t n;
	int rc;

	snprintf(descpath, sizeof descpath, "%s.point", dir);
	cp_desc_fd = open(descpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	rc = cp_run(dir, cycle, create, at, after, &acked, &calls);
	if (cp_desc_fd >= 0) {
		n = pread(cp_desc_fd, desc, sizeof desc - 1, 0);
		desc[n > 0 ? n : 0] = 0;
		close(cp_desc_fd);
		cp_desc_fd = -1;
	}
	if (rc != 77 && rc != 0)
		return snprintf(why, whylen, "the child failed with exit %d", rc), 1;
	*crashed = rc == 77;
	snprintf(why, whylen, "[%s] ", desc);
	n = (ssize_t)strlen(why);
	if ((rc = run_verify(dir, out, sizeof out)) != 0) {
		char *nl = strchr(out, '\n');

		if (nl)
			*nl = 0;             /* the first finding is enough here */
		return snprintf(why + n, whylen - (size_t)n, "lsmctl verify exited %d: %.600s", rc,
		                out), 1;
	}
	o = cp_options();
	o.env = NULL;
	o.background_thread = 1;
	if ((rc = lsm_open(&o, dir, &db)) != LSM_OK)
		return snprintf(why + n, whylen - (size_t)n, "reopen: %s", lsm_strerror(rc)), 1;
	memset(kd_model, 0, sizeof kd_model);
	if (create) {
		/* the synced put, once acknowledged, must be there */
		void *val;
		size_t vn;
		int grc = lsm_get(db, NULL, "k00000", 6, &val, &vn);

		rc = grc == LSM_NOTFOUND ? acked >= 0
		   : grc != LSM_OK || vn != 7 || memcmp(val, "created", 7) != 0;
		if (grc == LSM_OK)
			lsm_free(val);
		if (rc)
			snprintf(kd_msg, sizeof kd_msg, "the synced put (%s) reads %s",
			         acked >= 0 ? "acknowledged" : "in flight",
			         grc == LSM_OK ? "a wrong value" : lsm_strerror(grc));
	} else if ((rc = kd_read_state(db, rng)) == 0) {
		lo = calls ? CP_OPS : acked + 1;     /* closed cleanly: everything */
		hi = calls ? CP_OPS : kd_next_synced(cycle, lo) + 1;
		if (hi > CP_OPS)
			hi = CP_OPS;
		rc = kd_match_prefix(cycle, lo, hi);
	}
	lsm_close(db);
	if (rc)
		return snprintf(why + n, whylen - (size_t)n, "%s", kd_msg), 1;
	return 0;
}

static void crash_at_every_io_call(void)
{
	static char report[8192];
	char why[1400];
	long total, acked, at, points = 0, crashed = 0, failed = 0;
	size_t used = 0;
	int create, rc, after, hit;
	test_rng rng;

	init_seed();
	test_rng_seed(&rng, crash_seed ^ 0xc4a5);
	report[0] = 0;
	for (create = 1; create >= 0; create--) {
		int cycle = 900 + create;     /* (its own stream of ids) */
		const char *what = create ? "creation" : "workload";
		long step, failed_before = failed;

		test_tmpdir("crashpoint");
		watchdog(120, "crash points: a dry run", cycle);
		rc = cp_run(test_tmpdir("crashpoint"), cycle, create, 0, 0, &acked, &total);
		CHECK_MSG(rc == 0 && total > 0, "crash-point dry run (%s): child exit %d, %ld calls",
		          what, rc, total);
		/* every call of a creation; about 100 of a workload */
		step = create ? 1 : total / 100 + 1;
		for (at = 1; at <= total; at += step)
			for (after = 0; after < 2; after++) {
				watchdog(120, create ? "crash point in a creation"
				                     : "crash point in a workload", (int)at);
				hit = 0;
				rc = cp_point(cycle, create, at, after, &rng, &hit, why, sizeof why);
				points++;
				crashed += hit;
				if (rc == 0)
					continue;
				/* go on: count every failing point, show a few of each phase */
				if (failed++ - failed_before < 16 && used < sizeof report - 200)
					used += (size_t)snprintf(report + used, sizeof report - used,
					                         "\n      %s, I/O call %ld of %ld: %s", what,
					                         at, total, why);
			}
	}
	alarm(0);
	printf("    %ld crash points (%ld crashed there) in the creation of a database and in "
	       "a workload of %d ops\n", points, crashed, CP_OPS);
	CHECK_MSG(failed == 0, "seed %" PRIu64 ": %ld of %ld crash points leave a database that "
	          "is damaged, unopenable or lost acknowledged writes:%s", crash_seed, failed,
	          points, report);
}

/* (a body returns early on a failed CHECK: the watchdog is disarmed here) */
TEST(sigkill_writer_many_cycles)
{
	sigkill_writer_many_cycles();
	alarm(0);
}

TEST(sigkill_during_flush_and_compaction)
{
	sigkill_during_flush_and_compaction();
	alarm(0);
}

TEST(crash_at_every_io_call)
{
	crash_at_every_io_call();
	alarm(0);
}
