/*
 * fault_test.c — I/O errors in the persistence paths, then recovery.
 *
 * Through the fault env (util/env_fault.h), the Nth call of one kind of
 * operation fails, for every N the phase performs (measured by a dry run
 * first), with LSM_IOERR (once: a transient error) or LSM_NOSPACE (from
 * then on: the disk stays full), or the Nth write is torn (a prefix
 * reaches the file, then LSM_IOERR).  Kinds: write, fsync (WAL segments,
 * tables, manifests, CURRENT), directory fsync, rename, open/create, read,
 * remove.  Phases, all without the background thread so that "the Nth
 * call" is the same call in the dry run and in the real one:
 *   open     lsm_open of a database written with three memtables, opened
 *            with two: reading CURRENT, the manifest and the WAL, a flush
 *            from inside the recovery, the new WAL segment, the removal of
 *            obsolete files (a failed open returns the injected code);
 *   flush    lsm_flush of the recovered memtables: WAL rotation, the L0
 *            table (write, fsync, rename, directory fsync), the manifest
 *            edit, obsolete-file removal;
 *   compact  lsm_compact_range over a range, then over everything: the
 *            outputs of compactions into L1 and below, their manifest edits;
 *   writes   400 writes (one in 8 synced; puts, deletes, range deletes,
 *            batches): WAL buffer writes, group-commit fsyncs, segment
 *            rotations, memtable switches and the flushes a full memtable
 *            needs (LSM_FULL, then lsm_flush).
 * After the phase a tail of writes, a flush and a compaction run with the
 * fault still armed (retries after transient errors; refusals while the
 * disk is full).  Then each run ends one of two ways, alternately:
 *   close    lsm_close (possibly failing), then reopen with the plain POSIX
 *            env;
 *   power    every further call fails, the handle is closed, and all data
 *            not fsync'd is dropped (power loss), then reopen with the plain
 *            POSIX env.
 * Checks: nothing crashes; a fault that fired made some call fail, with the
 * injected code; a write that failed leaves every later write failing
 * (the WAL error is sticky); `lsmctl verify` is clean before the reopen;
 * the reopen succeeds; the database then equals the model after a prefix of
 * the operations that contains every write acknowledged as durable (synced,
 * or before a successful lsm_flush/lsm_compact_range, or everything
 * acknowledged when lsm_close succeeded), so nothing durable is lost,
 * nothing deleted returns, no batch is half applied and no key has a value
 * it never had; every other run, it also takes a synced write and a full
 * compaction, and lsmctl verifies it again after the close.  (The reopen
 * runs with the background thread.)
 *
 * background_error_is_sticky_for_writers runs the same with the background
 * thread: a failed background flush or compaction must make later writes
 * fail with its code, and recovery must be as above.
 *
 * power_loss_at_every_call cuts the power at many mutating I/O calls in
 * turn (the first 30, then about 40 spread to the end; all with
 * LSM_FAULT_STRIDE=1): of the creation of a database, of a recovery (with its
 * flush), of compactions and of a workload of writes and flushes.  From
 * that call on every call fails; then whatever was not fsync'd is dropped,
 * and the checks are those of a power-loss end above.
 *
 * The base env under the fault env makes fsync a no-op: the fault env
 * tracks what was synced itself (that is what power loss drops), and the
 * disk's fsync latency would only slow the thousands of runs down.
 * Each (phase, kind, code) tries N = 1..16 and then about 16 more spread
 * evenly up to the last call of that kind; LSM_FAULT_STRIDE=1 tries every
 * N (LSM_FAULT_STRIDE=n: every nth).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "lsm.h"
#include "testutil.h"
#include "env_fault.h"

#define FT_KEYS    600
#define FT_MAXENT  8
#define FT_MAXVAL  320
#define FT_MAXOPS  8000

/* ------------------------------------------------------------- the env */

static int nosync_sync(lsm_file *f)
{
	(void)f;
	return LSM_OK;
}

static int nosync_sync_dir(lsm_env *env, const char *path)
{
	(void)env; (void)path;
	return LSM_OK;
}

static lsm_env *nosync_posix(void)
{
	static lsm_env e;

	if (e.open == NULL) {
		e = *lsm_env_posix();
		e.sync = nosync_sync;
		e.sync_dir = nosync_sync_dir;
	}
	return &e;
}

/* The fault env, seen through a wrapper that can tear the Nth write. */
static lsm_env *fenv;              /* the fault env */
static lsm_env tenv;               /* its wrapper: what the engine gets */
static long tear_nth, tear_seen;   /* 0: no tear armed */
static size_t tear_keep;

static int tear_write(lsm_file *f, uint64_t off, const void *buf, size_t n)
{
	if (tear_nth && ++tear_seen == tear_nth)
		lsm_fault_env_tear_next_write(fenv, tear_keep);
	return fenv->write(f, off, buf, n);
}

/*
 * Power cuts at a chosen call: the wrapper counts every mutating call
 * (open for writing, write, fsync, truncate, rename, remove, directory
 * fsync); at the pl_at-th, before passing it on, it makes every call of
 * every kind fail from then on (LSM_IOERR): the machine is off.  What was
 * not fsync'd is dropped at the end of the run.
 */
static long pl_at, pl_seen;

static void pl_count(void)
{
	if (++pl_seen == pl_at)
		for (int i = 0; i < LSM_FAULT_NOPS; i++)
			if (i != LSM_FAULT_READ)
				lsm_fault_env_fail(fenv, (enum lsm_fault_op)i, 1, LSM_IOERR, 1);
}

static int pl_open(lsm_env *env, const char *path, int flags, lsm_file **out)
{
	(void)env;
	if (flags & (LSM_OPEN_WRITE | LSM_OPEN_CREATE))
		pl_count();
	return fenv->open(fenv, path, flags, out);
}

static int pl_write(lsm_file *f, uint64_t off, const void *buf, size_t n)
{
	pl_count();
	return tear_write(f, off, buf, n);
}

static int pl_sync(lsm_file *f)
{
	pl_count();
	return fenv->sync(f);
}

static int pl_truncate(lsm_file *f, uint64_t size)
{
	pl_count();
	return fenv->truncate(f, size);
}

static int pl_remove(lsm_env *env, const char *path)
{
	(void)env;
	pl_count();
	return fenv->remove(fenv, path);
}

static int pl_rename(lsm_env *env, const char *from, const char *to)
{
	(void)env;
	pl_count();
	return fenv->rename(fenv, from, to);
}

static int pl_sync_dir(lsm_env *env, const char *path)
{
	(void)env;
	pl_count();
	return fenv->sync_dir(fenv, path);
}

/* A fresh fault env for each run: its tracking of what was synced must
 * not outlive the files of the previous run (same names). */
static int env_setup(void)
{
	if (fenv)
		lsm_fault_env_destroy(fenv);
	if ((fenv = lsm_fault_env_create(nosync_posix())) == NULL)
		return LSM_NOMEM;
	tenv = *fenv;
	tenv.open = pl_open;
	tenv.write = pl_write;
	tenv.sync = pl_sync;
	tenv.truncate = pl_truncate;
	tenv.remove = pl_remove;
	tenv.rename = pl_rename;
	tenv.sync_dir = pl_sync_dir;
	tear_nth = tear_seen = 0;
	pl_at = 0;
	pl_seen = 0;
	return LSM_OK;
}

/* The watchdog: a hang fails the test loudly instead of stalling CI. */
static char wd_text[512];
static size_t wd_len;

static void on_alarm(int sig)
{
	static const char tail[] = "FAIL (hang)\n0 passed, 1 failed\n";

	(void)sig;
	if (write(2, wd_text, wd_len) < 0 || write(1, tail, sizeof tail - 1) < 0)
		_exit(1);
	_exit(1);
}

static void watchdog(unsigned seconds, const char *what, const char *kind, long nth)
{
	int n = snprintf(wd_text, sizeof wd_text, "    fault_test: WATCHDOG: %s, %s #%ld: "
	                 "did not finish in %u s\n", what, kind, nth, seconds);

	wd_len = n > 0 && (size_t)n < sizeof wd_text ? (size_t)n : 0;
	signal(SIGALRM, on_alarm);
	alarm(seconds);
}

/* ------------------------------------------------------------ lsmctl */

static char lsmctl_path[1100];

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
	/* this binary is BUILD/test/fault_test: lsmctl is BUILD/lsmctl */
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

/* `lsmctl verify dir`: its exit code (-1: not run; 128 + n: signal n),
 * its output in out. */
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
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		alarm(0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execl(ctl, ctl, "verify", dir, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (used + 1 < outlen && (n = read(fds[0], out + used, outlen - 1 - used)) > 0)
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
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* --------------------------------------------------- operations, model */

enum { FT_PUT, FT_DEL, FT_RDEL };
enum { OP_WRITE, OP_FLUSH, OP_COMPACT };

typedef struct ft_entry {
	int type;
	int a, b;                /* key a; range [a, b) */
	uint32_t id;             /* puts: the value's id (never 0) */
} ft_entry;

typedef struct ft_op {
	int kind;
	int sync;
	int n;
	ft_entry e[FT_MAXENT];
	int lo, hi;              /* compactions: key range (-1: unbounded) */
} ft_op;

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static size_t ft_key(int k, char *buf)
{
	return (size_t)sprintf(buf, "key%04d", k);
}

/* The value of put `id` to key k: "v<id>.<k>." and filler. */
static size_t ft_value(uint32_t id, int k, char *buf)
{
	uint64_t h = mix64(id);
	size_t n = (size_t)sprintf(buf, "v%u.%d.", id, k), len = 30 + h % 280, i;

	for (i = n; i < len; i++)
		buf[i] = (char)('a' + (h >> (i % 53)) % 26);
	return len;
}

/* A stream of writes; ids count up from *next_id. */
static void ft_gen(test_rng *r, uint32_t *next_id, int sync_one_in, ft_op *op)
{
	uint64_t x = test_rng_uniform(r, 100);
	int i;

	memset(op, 0, sizeof *op);
	op->kind = OP_WRITE;
	op->sync = sync_one_in && test_rng_uniform(r, (uint64_t)sync_one_in) == 0;
	op->n = x < 76 ? 1 : 2 + (int)test_rng_uniform(r, FT_MAXENT - 1);
	for (i = 0; i < op->n; i++) {
		ft_entry *e = &op->e[i];
		uint64_t t = test_rng_uniform(r, 100);

		e->a = (int)test_rng_uniform(r, FT_KEYS);
		if (t < 78) {
			e->type = FT_PUT;
			e->id = (*next_id)++;
		} else if (t < 95) {
			e->type = FT_DEL;
		} else {
			e->type = FT_RDEL;
			e->b = e->a + 1 + (int)test_rng_uniform(r, 25);
			if (e->b > FT_KEYS)
				e->b = FT_KEYS;
		}
	}
}

static void ft_apply(uint32_t *m, const ft_op *op)
{
	for (int j = 0; op->kind == OP_WRITE && j < op->n; j++) {
		const ft_entry *e = &op->e[j];

		if (e->type == FT_RDEL)
			for (int k = e->a; k < e->b; k++)
				m[k] = 0;
		else
			m[e->a] = e->type == FT_PUT ? e->id : 0;
	}
}

static int no_full_retry;

/* Runs one op; LSM_FULL (memtables full, no background thread) is
 * answered by a flush and one retry (unless no_full_retry), and *flush_rc gets that flush's code
 * (LSM_OK when none was needed). */
static int ft_do(lsm_db *db, const ft_op *op, int *flush_rc)
{
	static char v[FT_MAXVAL];
	lsm_write_options wo = {op->sync};
	char k[16], k2[16];
	lsm_batch *b;
	int rc, attempt;

	*flush_rc = LSM_OK;
	if (op->kind == OP_FLUSH)
		return lsm_flush(db);
	if (op->kind == OP_COMPACT) {
		size_t l1 = op->lo >= 0 ? ft_key(op->lo, k) : 0;
		size_t l2 = op->hi >= 0 ? ft_key(op->hi, k2) : 0;

		return lsm_compact_range(db, op->lo >= 0 ? k : NULL, l1, op->hi >= 0 ? k2 : NULL, l2);
	}
	if (lsm_batch_create(&b) != LSM_OK)
		return LSM_NOMEM;
	for (int j = 0; j < op->n; j++) {
		const ft_entry *e = &op->e[j];
		size_t kl = ft_key(e->a, k);

		if (e->type == FT_PUT)
			lsm_batch_put(b, k, kl, v, ft_value(e->id, e->a, v));
		else if (e->type == FT_DEL)
			lsm_batch_delete(b, k, kl);
		else
			lsm_batch_delete_range(b, k, kl, k2, ft_key(e->b, k2));
	}
	for (attempt = 0;; attempt++) {
		if (op->n == 1 && op->e[0].type == FT_PUT)
			rc = lsm_put(db, &wo, k, ft_key(op->e[0].a, k), v, ft_value(op->e[0].id, op->e[0].a, v));
		else if (op->n == 1 && op->e[0].type == FT_DEL)
			rc = lsm_delete(db, &wo, k, ft_key(op->e[0].a, k));
		else
			rc = lsm_write(db, &wo, b);
		if (rc != LSM_FULL || attempt > 0 || no_full_retry)
			break;
		if ((*flush_rc = lsm_flush(db)) != LSM_OK)
			break;
	}
	lsm_batch_destroy(b);
	return rc;
}

static char msg[10000];

/* Reads the whole database into st (scan, then gets of every key must
 * agree); 0 when fine, else msg says why. */
static int read_state(lsm_db *db, uint32_t *st)
{
	static char want[FT_MAXVAL];
	lsm_iter *it;
	int prev = -1, rc, k;

	memset(st, 0, FT_KEYS * sizeof *st);
	if ((rc = lsm_iter_create(db, NULL, &it)) != LSM_OK)
		return snprintf(msg, sizeof msg, "iter_create: %s", lsm_strerror(rc)), 1;
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *kp = lsm_iter_key(it, &kl), *vp = lsm_iter_value(it, &vl);
		char vb[16];
		unsigned id;

		if (kl != 7 || memcmp(kp, "key", 3) != 0 || sscanf(kp + 3, "%4d", &k) != 1 ||
		    k < 0 || k >= FT_KEYS || k <= prev) {
			lsm_iter_destroy(it);
			return snprintf(msg, sizeof msg, "scan: unexpected key (%zu bytes) after key%04d",
			                kl, prev), 1;
		}
		memcpy(vb, vp, vl < 15 ? vl : 15);
		vb[vl < 15 ? vl : 15] = 0;
		if (vl < 2 || vb[0] != 'v' || sscanf(vb + 1, "%u", &id) != 1 || id == 0 ||
		    ft_value(id, k, want) != vl || memcmp(want, vp, vl) != 0) {
			lsm_iter_destroy(it);
			return snprintf(msg, sizeof msg, "scan: key%04d holds a value never written to "
			                "it (%zu bytes, '%s')", k, vl, vb), 1;
		}
		st[k] = id;
		prev = k;
	}
	rc = lsm_iter_status(it);
	lsm_iter_destroy(it);
	if (rc != LSM_OK)
		return snprintf(msg, sizeof msg, "scan: status %s", lsm_strerror(rc)), 1;
	for (k = 0; k < FT_KEYS; k++) {
		char kb[16];
		void *v;
		size_t n;

		rc = lsm_get(db, NULL, kb, ft_key(k, kb), &v, &n);
		if (rc == LSM_NOTFOUND && st[k] == 0)
			continue;
		if (rc != LSM_OK || st[k] == 0 || n != ft_value(st[k], k, want) ||
		    memcmp(v, want, n) != 0) {
			lsm_free(v);
			return snprintf(msg, sizeof msg, "get key%04d: %s, but the scan has %s", k,
			                lsm_strerror(rc), st[k] ? "a value" : "nothing"), 1;
		}
		lsm_free(v);
	}
	return 0;
}

/* ---------------------------------------------------------- the runs */

enum { PH_OPEN, PH_FLUSH, PH_COMPACT, PH_WRITES, PH_CREATE, NPHASES };
static const char *const phase_name[NPHASES] = {
	"open", "flush", "compact", "writes", "create"
};

enum {
	K_WRITE, K_SYNC, K_SYNC_DIR, K_RENAME, K_OPEN, K_READ, K_REMOVE, K_TEAR, NKINDS
};
static const char *const kind_name[NKINDS] = {
	"write", "fsync", "dir-fsync", "rename", "open", "read", "remove", "torn-write"
};
static const enum lsm_fault_op kind_op[NKINDS] = {
	LSM_FAULT_WRITE, LSM_FAULT_SYNC, LSM_FAULT_SYNC_DIR, LSM_FAULT_RENAME,
	LSM_FAULT_OPEN, LSM_FAULT_READ, LSM_FAULT_REMOVE, LSM_FAULT_WRITE
};

/* The template database every run starts from (copied), and its model. */
static char tmpl_dir[600];
static uint32_t tmpl_model[FT_KEYS];
static const uint32_t zero_model[FT_KEYS];
static const uint32_t *base_model = tmpl_model;   /* the state a run starts from */
static uint32_t tmpl_next_id;

static lsm_options ft_options(lsm_env *env, int background)
{
	lsm_options o;

	lsm_options_init(&o);
	o.env = env;
	o.memtable_size = 64 * 1024;
	o.max_memtables = 2;
	o.background_thread = background;
	o.wal_buffer_size = 4096;
	o.wal_segment_size = 16 * 1024;
	o.max_bytes_for_level_base = 32 * 1024;
	o.level_size_multiplier = 4;
	o.target_file_size = 16 * 1024;
	o.l0_compaction_trigger = 2;
	o.block_size = 2048;
	o.block_cache_size = 0;        /* every read reaches the env */
	return o;
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	close(in);
	close(out);
	return n < 0 ? -1 : 0;
}

static int copy_dir(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *e;
	char a[1200], b[1200];
	int rc = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL && rc == 0) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "LOCK") == 0)
			continue;
		snprintf(a, sizeof a, "%s/%s", from, e->d_name);
		snprintf(b, sizeof b, "%s/%s", to, e->d_name);
		rc = copy_file(a, b);
	}
	closedir(d);
	return rc;
}

/* Builds the template: tables in L0..L2 and, unflushed, up to three
 * memtables' worth of WAL (it is written with three memtables and opened
 * with two: every open flushes one from inside the recovery). */
static int build_template(void)
{
	lsm_options o = ft_options(nosync_posix(), 0);
	test_rng r;
	lsm_db *db;
	ft_op op;
	int i, rc, frc;

	snprintf(tmpl_dir, sizeof tmpl_dir, "%s", test_tmpdir("fault-template"));
	memset(tmpl_model, 0, sizeof tmpl_model);
	tmpl_next_id = 1;
	o.max_memtables = 3;
	if ((rc = lsm_open(&o, tmpl_dir, &db)) != LSM_OK)
		return rc;
	test_rng_seed(&r, 4242);
	for (i = 0; i < 2000 && rc == LSM_OK; i++) {
		if (i == 1500) {
			op.kind = OP_COMPACT;
			op.lo = op.hi = -1;
		} else if (i % 500 == 499) {
			op.kind = OP_FLUSH;
		} else {
			ft_gen(&r, &tmpl_next_id, 20, &op);
		}
		rc = ft_do(db, &op, &frc);
		if (rc == LSM_OK && frc != LSM_OK)
			rc = frc;
		ft_apply(tmpl_model, &op);
	}
	/* then writes until all three memtables are full (LSM_FULL: that
	 * last write did not happen) */
	no_full_retry = 1;
	while (rc == LSM_OK) {
		uint32_t id = tmpl_next_id;

		ft_gen(&r, &id, 20, &op);
		rc = ft_do(db, &op, &frc);
		if (rc == LSM_OK) {
			ft_apply(tmpl_model, &op);
			tmpl_next_id = id;
		}
	}
	no_full_retry = 0;
	if (rc != LSM_FULL) {
		lsm_close(db);
		return rc;
	}
	return lsm_close(db);
}

/* One entry of a run's log: an op, its result. */
typedef struct logent {
	ft_op op;
	int rc;
	int flush_rc;            /* of the flush an LSM_FULL write asked for */
} logent;

static logent runlog[FT_MAXOPS];

/* The ops of a phase and its tail (deterministic). */
static int phase_ops(int phase, ft_op *ops)
{
	test_rng r;
	uint32_t next_id = tmpl_next_id;
	int n = 0, i;

	test_rng_seed(&r, 777 + (uint64_t)phase);
	if (phase == PH_OPEN || phase == PH_CREATE) {
		/* the open is the phase: only the tail follows */
	} else if (phase == PH_FLUSH) {
		ops[n++].kind = OP_FLUSH;
	} else if (phase == PH_COMPACT) {
		ops[n].kind = OP_COMPACT;
		ops[n].lo = 100;
		ops[n++].hi = 300;
		ops[n].kind = OP_COMPACT;
		ops[n].lo = ops[n].hi = -1;
		n++;
	} else {
		for (i = 0; i < 400; i++)
			ft_gen(&r, &next_id, 8, &ops[n++]);
	}
	/* the tail */
	for (i = 0; i < 60; i++)
		ft_gen(&r, &next_id, 6, &ops[n++]);
	ops[n++].kind = OP_FLUSH;
	for (i = 0; i < 20; i++)
		ft_gen(&r, &next_id, 6, &ops[n++]);
	ops[n].kind = OP_COMPACT;
	ops[n].lo = ops[n].hi = -1;
	n++;
	return n;
}

static int phase_len(int phase)
{
	return phase == PH_OPEN || phase == PH_CREATE ? 0 : phase == PH_FLUSH ? 1
	     : phase == PH_COMPACT ? 2 : 400;
}

static void arm(int kind, long nth, int code, int sticky, size_t keep)
{
	if (kind == K_TEAR) {
		tear_keep = keep;
		tear_seen = 0;
		tear_nth = nth;
	} else {
		lsm_fault_env_fail(fenv, kind_op[kind], (uint64_t)nth, code, sticky);
	}
}

/* Prepares a run's directory (a copy of the template) and, unless the
 * phase is the open itself, opens it through the fault env. */
static int start_run(int phase, const char *dir, lsm_db **db)
{
	lsm_options o = ft_options(&tenv, 0);
	int rc;

	*db = NULL;
	if ((rc = env_setup()) != LSM_OK)
		return rc;
	if (phase == PH_CREATE) {
		/* a new database: the open creates it (inside the phase) */
		base_model = zero_model;
		rmdir(dir);
		return LSM_OK;
	}
	base_model = tmpl_model;
	if (copy_dir(tmpl_dir, dir) != 0)
		return LSM_IOERR;
	if (phase != PH_OPEN && (rc = lsm_open(&o, dir, db)) != LSM_OK)
		return rc;
	return LSM_OK;
}

/* Dry run: how many calls of each kind the phase itself makes. */
static int dry_run(int phase, long counts[NKINDS])
{
	static ft_op ops[FT_MAXOPS];
	const char *dir = test_tmpdir("fault-dry");
	uint64_t before[LSM_FAULT_NOPS];
	lsm_db *db;
	int n = phase_ops(phase, ops), i, rc, frc;

	if ((rc = start_run(phase, dir, &db)) != LSM_OK)
		return rc;
	if (phase == PH_COMPACT && (rc = lsm_flush(db)) != LSM_OK)
		return rc;
	for (i = 0; i < LSM_FAULT_NOPS; i++)
		before[i] = lsm_fault_env_calls(fenv, (enum lsm_fault_op)i);
	if (phase == PH_OPEN || phase == PH_CREATE) {
		lsm_options o = ft_options(&tenv, 0);

		rc = lsm_open(&o, dir, &db);
	}
	for (i = 0; i < phase_len(phase) && i < n && rc == LSM_OK; i++)
		rc = ft_do(db, &ops[i], &frc);
	for (i = 0; i < NKINDS; i++)
		counts[i] = (long)(lsm_fault_env_calls(fenv, kind_op[i]) - before[kind_op[i]]);
	if (rc == LSM_OK)
		rc = lsm_close(db);
	else
		lsm_close(db);
	return rc;
}

typedef struct totals {
	long runs, fired, power, failed_calls;
	long lost_unsynced;      /* acknowledged, unsynced writes lost (allowed) */
	long failed_write_kept;  /* the failed write was recovered (allowed) */
} totals;

/*
 * One run: the fault (kind, nth, code), the phase and its tail, the end
 * (power loss or close), lsmctl verify, reopen with POSIX, the model check.
 * 0 when fine, else msg says what went wrong.
 */
/* Whether the log's write `idx` changed the model (it is not a no-op
 * such as deleting absent keys): m is the model after it; redo without. */
static int model_differs_without(const uint32_t *m, long idx)
{
	static uint32_t without[FT_KEYS];
	long i;

	memcpy(without, base_model, sizeof without);
	for (i = 0; i < idx; i++)
		if (runlog[i].op.kind == OP_WRITE && runlog[i].rc == LSM_OK)
			ft_apply(without, &runlog[i].op);
	return memcmp(without, m, sizeof without) != 0;
}

/*
 * The end of a run: a power loss or a close, lsmctl verify, the reopen
 * with POSIX and the model check against runlog[0, nlog) (first_fail: the
 * first write that failed, -1: none).  0 when fine, else msg says why.
 */
static int end_and_verify(lsm_db *db, const char *dir, long nlog, long first_fail,
                          int power, totals *t)
{
	static uint32_t model[FT_KEYS], state[FT_KEYS];
	static char out[8192];
	lsm_options plain = ft_options(nosync_posix(), 1);
	long i, durable = 0, maybe_end, last_ok = 0;
	int rc, close_rc;

	plain.block_cache_size = 1u << 20;   /* the reads of the check, not the test */

	/* the end: a power loss, or a close (the fault still armed) */
	if (power) {
		for (i = 0; i < LSM_FAULT_NOPS; i++)
			if (i != LSM_FAULT_READ)
				lsm_fault_env_fail(fenv, (enum lsm_fault_op)i, 1, LSM_IOERR, 1);
		tear_nth = 0;
		lsm_close(db);
		lsm_fault_env_clear(fenv);
		if ((rc = lsm_fault_env_drop_unsynced(fenv)) != LSM_OK)
			return snprintf(msg, sizeof msg, "drop_unsynced: %s", lsm_strerror(rc)), 1;
		close_rc = LSM_IOERR;
		t->power++;
	} else {
		close_rc = lsm_close(db);
		lsm_fault_env_clear(fenv);
		tear_nth = 0;
	}

	/* what must be there: synced writes, writes before a successful
	 * flush or compaction, everything acknowledged if close succeeded */
	for (i = 0; i < nlog; i++) {
		const logent *l = &runlog[i];
		int ok = l->rc == LSM_OK && (l->op.kind != OP_WRITE || l->op.sync ||
		                             (!power && close_rc == LSM_OK));

		/* everything logged before it (never the failed write, which may
		 * or may not have reached the log) */
		if (ok)
			durable = first_fail >= 0 && i >= first_fail ? first_fail : i + 1;
	}
	/* what may be there: writes up to and including the first failed one */
	maybe_end = first_fail >= 0 ? first_fail + 1 : nlog;

	rc = run_verify(dir, out, sizeof out);
	if (rc != 0)
		return snprintf(msg, sizeof msg, "lsmctl verify exited %d before the reopen:\n%s",
		                rc, out), 1;
	if ((rc = lsm_open(&plain, dir, &db)) != LSM_OK)
		return snprintf(msg, sizeof msg, "reopen with the POSIX env: %s", lsm_strerror(rc)), 1;
	if (read_state(db, state) != 0) {
		lsm_close(db);
		return 1;
	}
	/* a prefix [0, p) of the log (writes that were refused excluded),
	 * p >= durable, p <= maybe_end, must give the state */
	memcpy(model, base_model, sizeof model);
	{
		long p, found = -1;

		for (p = 0; p <= maybe_end; p++) {
			if (p >= durable && memcmp(model, state, sizeof model) == 0) {
				found = p;
				for (i = 0; i < nlog; i++)
					if (runlog[i].op.kind == OP_WRITE && runlog[i].rc == LSM_OK)
						last_ok = i + 1;
				t->lost_unsynced += found < last_ok;
				t->failed_write_kept += first_fail >= 0 && found == first_fail + 1 &&
				                        model_differs_without(model, first_fail);
				break;
			}
			if (p < maybe_end) {
				const logent *l = &runlog[p];

				if (l->op.kind == OP_WRITE && (l->rc == LSM_OK || p == first_fail))
					ft_apply(model, &l->op);
			}
		}
		if (found < 0) {
			int k, shown = 0;
			size_t used;

			/* show the differences from the model at `durable` */
			memcpy(model, base_model, sizeof model);
			for (p = 0; p < durable; p++)
				if (runlog[p].op.kind == OP_WRITE && runlog[p].rc == LSM_OK)
					ft_apply(model, &runlog[p].op);
			used = (size_t)snprintf(msg, sizeof msg, "recovered state is no prefix of %ld..%ld "
			                        "ops (%ld logged, first failed write #%ld, close %s); "
			                        "against the durable point:", durable, maybe_end, nlog,
			                        first_fail, lsm_strerror(close_rc));
			for (k = 0; k < FT_KEYS && shown < 5 && used < sizeof msg - 100; k++)
				if (model[k] != state[k]) {
					used += (size_t)snprintf(msg + used, sizeof msg - used,
					                         " key%04d want v%u got v%u;", k, model[k],
					                         state[k]);
					shown++;
				}
			lsm_close(db);
			return 1;
		}
	}
	/* every other run: the recovered database works (a durable write, a
	 * compaction) and verifies after it */
	if (mix64((uint64_t)t->runs) % 2 == 0) {
		lsm_write_options wo = {1};
		char v[FT_MAXVAL];
		uint32_t id = 0xfffffff0u;

		rc = lsm_put(db, &wo, "key0000", 7, v, ft_value(id, 0, v));
		if (rc == LSM_FULL && (rc = lsm_flush(db)) == LSM_OK)   /* memtables full */
			rc = lsm_put(db, &wo, "key0000", 7, v, ft_value(id, 0, v));
		if (rc == LSM_OK)
			rc = lsm_compact_range(db, NULL, 0, NULL, 0);
		model[0] = id;
		if (rc == LSM_OK && read_state(db, state) != 0)
			rc = -1;
		if (rc == LSM_OK && memcmp(model, state, sizeof model) != 0)
			rc = -2;
		if (rc != LSM_OK) {
			lsm_close(db);
			if (rc != -1)
				snprintf(msg, sizeof msg, "after recovery: a write and a compaction: %d (%s)",
				         rc, rc > 0 ? lsm_strerror(rc) : "state changed");
			return 1;
		}
	}
	if ((rc = lsm_close(db)) != LSM_OK)
		return snprintf(msg, sizeof msg, "close after recovery: %s", lsm_strerror(rc)), 1;
	if (mix64((uint64_t)t->runs) % 2 == 0 && (rc = run_verify(dir, out, sizeof out)) != 0)
		return snprintf(msg, sizeof msg, "lsmctl verify exited %d after recovery:\n%s", rc,
		                out), 1;
	return 0;
}

static int one_run(int phase, int kind, long nth, int code, int power, totals *t)
{
	static ft_op ops[FT_MAXOPS];
	const char *dir = test_tmpdir("fault-run");
	int sticky = code == LSM_NOSPACE;
	long n = phase_ops(phase, ops), i, nlog = 0;
	long first_fail = -1, calls0;
	int rc, frc, errors = 0, bad_code = 0;
	lsm_db *db;

	if ((rc = start_run(phase, dir, &db)) != LSM_OK)
		return snprintf(msg, sizeof msg, "open before the fault: %s", lsm_strerror(rc)), 1;
	if (phase == PH_COMPACT && (rc = lsm_flush(db)) != LSM_OK) {
		lsm_close(db);
		return snprintf(msg, sizeof msg, "flush before the fault: %s", lsm_strerror(rc)), 1;
	}
	calls0 = (long)lsm_fault_env_calls(fenv, kind_op[kind]);
	arm(kind, nth, kind == K_TEAR ? LSM_IOERR : code, kind == K_TEAR ? 0 : sticky,
	    (size_t)(nth * 37 % 300));
	t->runs++;
	if (phase == PH_OPEN || phase == PH_CREATE) {
		/* the fault hits the recovery: replay, its flush, the new WAL
		 * segment, the manifest edit, the removal of obsolete files (or
		 * the creation of a new database) */
		lsm_options o = ft_options(&tenv, 0);

		rc = lsm_open(&o, dir, &db);
		if (rc != LSM_OK) {
			db = NULL;
			errors++;
			if (rc != (kind == K_TEAR ? LSM_IOERR : code))
				return snprintf(msg, sizeof msg, "lsm_open failed with %s, not the injected "
				                "%s", lsm_strerror(rc), lsm_strerror(code)), 1;
			n = 0;               /* no tail without a handle */
		}
	}

	/* the phase and its tail; the log keeps every op, refused or not */
	for (i = 0; i < n; i++) {
		rc = ft_do(db, &ops[i], &frc);
		runlog[nlog].op = ops[i];
		runlog[nlog].rc = rc;
		runlog[nlog].flush_rc = frc;
		nlog++;
		if (frc != LSM_OK && frc != LSM_FULL) {
			errors++;
			bad_code += frc != (kind == K_TEAR ? LSM_IOERR : code);
		}
		if (rc != LSM_OK && rc != LSM_FULL) {
			errors++;
			bad_code += rc != (kind == K_TEAR ? LSM_IOERR : code);
		}
		if (ops[i].kind == OP_WRITE && rc != LSM_OK && rc != LSM_FULL && first_fail < 0)
			first_fail = i;
		if (ops[i].kind == OP_WRITE && rc == LSM_OK && first_fail >= 0) {
			lsm_close(db);
			return snprintf(msg, sizeof msg, "write #%ld failed (%s), but write #%ld after "
			                "it succeeded: a failed write must leave the WAL refusing "
			                "writes until reopen", first_fail,
			                lsm_strerror(runlog[first_fail].rc), i), 1;
		}
	}
	{
		int fired = kind == K_TEAR ? tear_seen >= nth
		          : (long)lsm_fault_env_calls(fenv, kind_op[kind]) - calls0 >= nth;

		t->fired += fired;
		if (fired && errors == 0 && kind != K_REMOVE) {
			/* (a removal failing is harmless: the file goes next time) */
			lsm_close(db);
			return snprintf(msg, sizeof msg, "the fault fired but every call returned "
			                "LSM_OK: the error was swallowed"), 1;
		}
		if (bad_code) {
			lsm_close(db);
			return snprintf(msg, sizeof msg, "%d calls failed with a code other than the "
			                "injected %s (first failing write #%ld: %s)", bad_code,
			                lsm_strerror(code), first_fail,
			                first_fail >= 0 ? lsm_strerror(runlog[first_fail].rc) : "-"), 1;
		}
	}
	t->failed_calls += errors;

	return end_and_verify(db, dir, nlog, first_fail, power, t);
}

/* Every N up to 16, then about 16 more spread evenly to the last (all of
 * them with LSM_FAULT_STRIDE=1... n: every nth). */
static long next_nth(long nth, long count, long stride)
{
	long step;

	if (stride > 0)
		return nth + stride;
	if (nth < 16)
		return nth + 1;
	step = (count - 16) / 16;
	return nth == count ? count + 1 : nth + step < count && step > 0 ? nth + step : count;
}

static long stride_env(void)
{
	const char *v = getenv("LSM_FAULT_STRIDE");

	return v && *v && atol(v) > 0 ? atol(v) : 0;
}

/* Every kind, both codes, every N of the phase, power loss or close
 * alternating. */
static void fault_matrix(int phase)
{
	static const int codes[2] = {LSM_IOERR, LSM_NOSPACE};
	long counts[NKINDS], stride = stride_env();
	totals t = {0};
	int kind, rc;

	if (tmpl_dir[0] == 0) {
		rc = build_template();
		CHECK_MSG(rc == LSM_OK, "building the template database: %s", lsm_strerror(rc));
	}
	rc = dry_run(phase, counts);
	CHECK_MSG(rc == LSM_OK, "dry run of phase %s: %s", phase_name[phase], lsm_strerror(rc));
	CHECK_MSG(counts[K_WRITE] > 0 && counts[K_SYNC] > 0,
	          "phase %s made %ld writes, %ld fsyncs", phase_name[phase], counts[K_WRITE],
	          counts[K_SYNC]);
	printf("    %-7s calls:", phase_name[phase]);
	for (kind = 0; kind < NKINDS; kind++)
		printf(" %s %ld", kind_name[kind], counts[kind]);
	printf("\n");
	for (kind = 0; kind < NKINDS; kind++)
		for (int c = 0; c < (kind == K_TEAR ? 1 : 2); c++)
			for (long nth = 1; nth <= counts[kind]; nth = next_nth(nth, counts[kind], stride)) {
				int power = (int)((nth + c + kind) % 2);

				watchdog(60, phase_name[phase], kind_name[kind], nth);
				rc = one_run(phase, kind, nth, codes[c], power, &t);
				alarm(0);
				CHECK_MSG(rc == 0, "phase %s, %s #%ld fails with %s (%s), then %s (db left "
				          "in %s/fault-run): %s", phase_name[phase], kind_name[kind], nth,
				          lsm_strerror(kind == K_TEAR ? LSM_IOERR : codes[c]),
				          kind == K_TEAR ? "torn" : c ? "sticky" : "once",
				          power ? "power loss" : "close", test_tmp_root, msg);
			}
	printf("    %-7s %ld runs, %ld faults fired, %ld calls failed, %ld power losses; "
	       "unsynced writes lost in %ld, the failed write recovered in %ld\n",
	       phase_name[phase], t.runs, t.fired, t.failed_calls, t.power, t.lost_unsynced,
	       t.failed_write_kept);
	CHECK(t.fired > 0);
}

/* (fault_matrix returns early on a failed CHECK: the watchdog is disarmed
 * here) */
TEST(faults_during_recovery)
{
	fault_matrix(PH_OPEN);
	alarm(0);
}

TEST(faults_during_flush)
{
	fault_matrix(PH_FLUSH);
	alarm(0);
}

TEST(faults_during_compaction)
{
	fault_matrix(PH_COMPACT);
	alarm(0);
}

TEST(faults_during_writes)
{
	fault_matrix(PH_WRITES);
	alarm(0);
}

/*
 * With the background thread: whatever a fault hits (the WAL in the
 * writer, or a flush or compaction in the background), the first write
 * that fails returns the injected code, every later one fails too, and
 * recovery is as above.
 */
static int bg_run(int kind, long nth, int code, int power, totals *t)
{
	const char *dir = test_tmpdir("fault-bg");
	lsm_options o = ft_options(&tenv, 1);
	uint32_t next_id = tmpl_next_id;
	test_rng r;
	long i, nlog = 0, first_fail = -1, after = 0, calls0;
	int rc, frc, fired;
	lsm_db *db;

	if ((rc = env_setup()) != LSM_OK || copy_dir(tmpl_dir, dir) != 0)
		return snprintf(msg, sizeof msg, "setup failed"), 1;
	if ((rc = lsm_open(&o, dir, &db)) != LSM_OK)
		return snprintf(msg, sizeof msg, "open: %s", lsm_strerror(rc)), 1;
	calls0 = (long)lsm_fault_env_calls(fenv, kind_op[kind]);
	arm(kind, nth, code, code == LSM_NOSPACE, 0);
	t->runs++;
	test_rng_seed(&r, 99 + (uint64_t)nth);
	/* write until a write fails, then three more that must fail too; when
	 * the fault fires late, give the background a moment to report it */
	for (i = 0; i < FT_MAXOPS - 1 && after < 4; i++) {
		ft_gen(&r, &next_id, 10, &runlog[nlog].op);
		rc = ft_do(db, &runlog[nlog].op, &frc);
		runlog[nlog].rc = rc;
		runlog[nlog].flush_rc = frc;
		if (rc != LSM_OK && first_fail < 0)
			first_fail = nlog;
		if (first_fail >= 0)
			after++;
		if (rc != LSM_OK && rc != code) {
			lsm_close(db);
			return snprintf(msg, sizeof msg, "write #%ld failed with %s, not the injected %s",
			                nlog, lsm_strerror(rc), lsm_strerror(code)), 1;
		}
		if (rc == LSM_OK && first_fail >= 0) {
			lsm_close(db);
			return snprintf(msg, sizeof msg, "write #%ld failed (%s), but write #%ld after "
			                "it succeeded", first_fail, lsm_strerror(runlog[first_fail].rc),
			                nlog), 1;
		}
		nlog++;
		fired = (long)lsm_fault_env_calls(fenv, kind_op[kind]) - calls0 >= nth;
		if (fired && first_fail < 0 && i > 3000)
			usleep(2000);
	}
	fired = (long)lsm_fault_env_calls(fenv, kind_op[kind]) - calls0 >= nth;
	t->fired += fired;
	if (fired && first_fail < 0) {
		lsm_close(db);
		return snprintf(msg, sizeof msg, "the fault fired but %ld writes later none had "
		                "failed", nlog), 1;
	}
	if (first_fail >= 0)
		t->failed_calls++;
	return end_and_verify(db, dir, nlog, first_fail, power, t);
}

static void background_error_is_sticky_for_writers(void)
{
	static const int kinds[] = {K_WRITE, K_SYNC, K_SYNC_DIR, K_RENAME, K_OPEN};
	static const int codes[2] = {LSM_IOERR, LSM_NOSPACE};
	static const long nths[] = {1, 2, 3, 4, 6, 9, 13, 20, 30, 45};
	totals t = {0};
	int rc;

	if (tmpl_dir[0] == 0) {
		rc = build_template();
		CHECK_MSG(rc == LSM_OK, "building the template database: %s", lsm_strerror(rc));
	}
	for (unsigned k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
		for (int c = 0; c < 2; c++)
			for (unsigned j = 0; j < sizeof nths / sizeof nths[0]; j++) {
				int power = (int)((j + (unsigned)c) % 2);

				watchdog(60, "background", kind_name[kinds[k]], nths[j]);
				rc = bg_run(kinds[k], nths[j], codes[c], power, &t);
				alarm(0);
				CHECK_MSG(rc == 0, "background: %s #%ld fails with %s (%s), then %s (db "
				          "left in %s/fault-bg): %s", kind_name[kinds[k]], nths[j],
				          lsm_strerror(codes[c]), c ? "sticky" : "once",
				          power ? "power loss" : "close", test_tmp_root, msg);
			}
	printf("    background: %ld runs, %ld faults fired, %ld runs where writes failed, %ld "
	       "power losses; unsynced writes lost in %ld, the failed write recovered in %ld\n",
	       t.runs, t.fired, t.failed_calls, t.power, t.lost_unsynced, t.failed_write_kept);
	CHECK(t.fired > 0);
}

TEST(background_error_is_sticky_for_writers)
{
	background_error_is_sticky_for_writers();
	alarm(0);
}

/* ---------------------------------------------- power loss at every call */

/*
 * The phase and its tail with the power cut at mutating call `at` (see
 * pl_count), then the power-loss end of end_and_verify.  With at == 0,
 * a dry run: *calls gets the number of mutating calls.
 */
static int power_run(int phase, long at, long *calls, totals *t)
{
	static ft_op ops[FT_MAXOPS];
	const char *dir = test_tmpdir("fault-power");
	long n = phase_ops(phase, ops), i, nlog = 0, first_fail = -1;
	int rc, frc;
	lsm_db *db;

	if ((rc = start_run(phase, dir, &db)) != LSM_OK)
		return snprintf(msg, sizeof msg, "open before the power cut: %s",
		                lsm_strerror(rc)), 1;
	if (phase == PH_COMPACT && (rc = lsm_flush(db)) != LSM_OK) {
		lsm_close(db);
		return snprintf(msg, sizeof msg, "flush before the power cut: %s", lsm_strerror(rc)), 1;
	}
	pl_seen = 0;
	pl_at = at;
	if (phase == PH_CREATE || phase == PH_OPEN) {
		lsm_options o = ft_options(&tenv, 0);

		if ((rc = lsm_open(&o, dir, &db)) != LSM_OK) {
			db = NULL;
			n = 0;
			if (rc != LSM_IOERR || at == 0)
				return snprintf(msg, sizeof msg, "creating the database: %s",
				                lsm_strerror(rc)), 1;
		}
	}
	for (i = 0; i < n; i++) {
		rc = ft_do(db, &ops[i], &frc);
		runlog[nlog].op = ops[i];
		runlog[nlog].rc = rc;
		runlog[nlog].flush_rc = frc;
		nlog++;
		if ((rc != LSM_OK && rc != LSM_FULL && rc != LSM_IOERR) ||
		    (frc != LSM_OK && frc != LSM_IOERR)) {
			lsm_close(db);
			return snprintf(msg, sizeof msg, "op #%ld failed with %s (flush %s), not "
			                "LSM_IOERR", i, lsm_strerror(rc), lsm_strerror(frc)), 1;
		}
		if (ops[i].kind == OP_WRITE && rc == LSM_IOERR && first_fail < 0)
			first_fail = i;
		if (ops[i].kind == OP_WRITE && rc == LSM_OK && first_fail >= 0) {
			lsm_close(db);
			return snprintf(msg, sizeof msg, "write #%ld failed, but write #%ld after it "
			                "succeeded", first_fail, i), 1;
		}
	}
	if (at == 0) {
		*calls = pl_seen;
		rc = lsm_close(db);
		return rc != LSM_OK ? (snprintf(msg, sizeof msg, "dry run: close: %s",
		                                lsm_strerror(rc)), 1) : 0;
	}
	t->runs++;
	t->fired += pl_seen >= at;
	return end_and_verify(db, dir, nlog, first_fail, 1, t);
}

/* The creation of a database, the recovery of the template (with its
 * flush), compactions, and a workload (writes, flushes), each followed by
 * the tail of writes, a flush and a compaction, and each with the power
 * cut at (nearly) every mutating call in turn: every call for the first
 * 30, then about 40 more spread to the end (LSM_FAULT_STRIDE=1: every
 * call). */
static void power_loss_at_every_call(void)
{
	static const int phases[] = {PH_CREATE, PH_OPEN, PH_COMPACT, PH_WRITES};
	int rc;

	if (tmpl_dir[0] == 0) {
		rc = build_template();
		CHECK_MSG(rc == LSM_OK, "building the template database: %s", lsm_strerror(rc));
	}
	for (unsigned p = 0; p < sizeof phases / sizeof phases[0]; p++) {
		int ph = phases[p];
		long calls = 0, at, stride = stride_env();
		totals t = {0};

		watchdog(60, "power loss: dry run", phase_name[ph], 0);
		rc = power_run(ph, 0, &calls, &t);
		CHECK_MSG(rc == 0 && calls > 0, "power loss, %s: dry run: %s", phase_name[ph], msg);
		for (at = 1; at <= calls;
		     at = stride ? at + stride : at < 30 ? at + 1 : at + (calls - 30) / 40 + 1) {
			watchdog(60, "power loss", phase_name[ph], at);
			rc = power_run(ph, at, &calls, &t);
			alarm(0);
			CHECK_MSG(rc == 0, "power loss at mutating call %ld of %ld, phase %s (db left in "
			          "%s/fault-power): %s", at, calls, phase_name[ph], test_tmp_root, msg);
		}
		printf("    power loss in %-7s %ld runs over %ld calls; unsynced writes lost in %ld, "
		       "the failed write recovered in %ld\n", phase_name[ph], t.runs, calls,
		       t.lost_unsynced, t.failed_write_kept);
	}
}

TEST(power_loss_at_every_call)
{
	power_loss_at_every_call();
	alarm(0);
}
