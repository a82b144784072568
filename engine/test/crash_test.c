/*
 * crash_test.c — SIGKILL a writer at random moments, recover, verify.
 *
 * Each cycle forks a child that opens the database and applies synced
 * batches (put A<i>, put B<i>, delete A<i-5>), reporting each acknowledged i
 * to the parent through a pipe.  The parent kills it with SIGKILL after a
 * random delay, reopens the database and checks, for this cycle and every
 * earlier one:
 *   - every acknowledged batch is present (nothing synced is lost);
 *   - at most the one batch in flight may also be present, whole or not at
 *     all (B<i> and the delete of A<i-5> together);
 *   - keys deleted by an applied batch stay deleted.
 * LSM_CRASH_CYCLES scales the run (default 60).
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "lsm.h"
#include "testutil.h"

#define MAX_CYCLES 1000

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

TEST(sigkill_writer_many_cycles)
{
	const char *dir = test_tmpdir("crash");
	long cycles = getenv("LSM_CRASH_CYCLES") ? atol(getenv("LSM_CRASH_CYCLES")) : 60;
	test_rng rng;
	int c, total_acked = 0;

	if (cycles > MAX_CYCLES)
		cycles = MAX_CYCLES;
	test_rng_seed(&rng, (uint64_t)time(NULL));
	for (c = 0; c < cycles; c++) {
		int fds[2], acked = -1, v, status, prev;
		lsm_options o = crash_options(c);
		struct timespec ts;
		lsm_db *db;
		pid_t pid;

		CHECK(pipe(fds) == 0);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child(dir, c, fds[1]);
		}
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
		          "cycle %d: %d acknowledged, state inconsistent", c, acked + 1);
		/* earlier cycles are untouched */
		for (v = 0; v < c; v++)
			CHECK_MSG(verify_cycle(db, v, applied[v]) == 0, "cycle %d damaged in cycle %d", v, c);
		CHECK_OK(lsm_close(db));
	}
	CHECK(total_acked > 0);
	printf("    %ld cycles, %d synced batches acknowledged\n", cycles, total_acked);
}
