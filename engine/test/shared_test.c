/*
 * shared_test.c — shared mode: many processes, one region, one database.
 *
 * The region is a POSIX shared memory object (shm_open, unlinked at once,
 * ftruncate, mmap MAP_SHARED).  The parent formats it with lsm_shared_init
 * at its own address; every child, right after fork, maps the object again
 * (no MAP_FIXED; a spacer mapping of a slot-dependent size first) and
 * unmaps the mapping it inherited, so every process sees the region at an
 * address of its own: a raw pointer left in the region breaks the tests.
 *
 * region_is_relocatable
 *   Three children map the region at different addresses (checked, and
 *   printed), open shared, each writes a key and reads the others' keys;
 *   then a fresh child attaches and reads them, and the parent formats the
 *   region again and opens it (recovery from disk) and reads them.
 *
 * many_processes_write_and_read
 *   4 writers, 2 readers and a background process (lsm_background_step /
 *   lsm_background_wait) on 256 KiB memtables, with tiny tables and L0
 *   triggers.  Writer w puts keys w<w>-<j> (j = n mod 1500, so keys are
 *   overwritten) with value "<w>.<n>", and every 4th put also writes an
 *   atomic batch setting s0..s7 to "<w>.<n>" plus b<w>-<n>.  Readers
 *   alternate between full scans (an iterator) and snapshot + lsm_get
 *   rounds (1 ms apart) and check, at each snapshot, exactly:
 *     - s0..s7 all hold one value, from writer a's batch n, and that batch
 *       is writer a's newest visible one (b<a>-<n> is there, no later b);
 *     - each writer's visible puts are a prefix of its sequence (every key
 *       holds the value of the newest visible put to it), consistent with
 *       its visible batches (batch n follows put n and precedes put n+1);
 *     - nothing goes back in time: a key once seen stays, with a value at
 *       least as new; prefixes and batch counts never shrink.
 *   Then a fresh process attaches and checks every key's last value and
 *   the exact key count; the region is formatted again and a fresh process
 *   recovers from disk and checks the same.  The background process's
 *   lsm_get_stats must show flushes > 0 and compactions > 0.
 *
 * crash_loop
 *   LSM_SHARED_CYCLES cycles (default 50).  Each cycle formats the region
 *   and forks 2 or 3 writers and a background process.  Writer s applies
 *   synced batches i = 0, 1, ...: each sets the six group keys g<s>-0..5
 *   to the tag (cycle, i) (but deletes g<s>-0 when i % 5 == 4) and adds
 *   the history key h<cycle>.<s>.<i>, and reports i through a pipe once
 *   lsm_write returns.  After 2..100 ms (0..3 ms in one cycle in eight,
 *   so that kills land in opens and recovery) one process is SIGKILLed (the
 *   background process in about one cycle in four), then, as PostgreSQL
 *   would, all the others.  The region is formatted again and a fresh
 *   process recovers and checks, per slot s with r the last reported i:
 *     - the group keys all carry one tag (g<s>-0 absent exactly when
 *       i % 5 == 4): no batch is half applied;
 *     - that tag is (cycle, r) or (cycle, r + 1) (the batch acknowledged
 *       but not reported yet, or in flight); without a report, the tag of
 *       the previous cycle or (cycle, 0); a slot without a writer this
 *       cycle keeps its tag;
 *     - the history keys of every cycle so far are exactly the batches
 *       applied (a scan compares them one by one).
 *   The database carries over from cycle to cycle.
 *
 * wait_hook_bounds_a_stall
 *   64 KiB memtables, two of them, no background process: a writer with a
 *   wait_hook that gives up at its 6th call fills both and must get
 *   LSM_BUSY right then (LSM_FULL accepted if the hook was called) within
 *   5 s, and the key of that put is not written.
 *   Then with a hook that never gives up it stalls again until a
 *   background process started 150 ms later flushes: the put succeeds, and
 *   the hook ran during the wait.
 *
 * LSM_SHARED_SEED sets the seed of crash_loop (default: time; printed).
 * A watchdog fails a test that hangs, and kills its children.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "lsm.h"
#include "testutil.h"

/* ------------------------------------------------------------ processes */

#define NSLOTS 16

/* Shared between the parent and its children (a plain anonymous shared
 * mapping, not the engine's region): barriers, results, messages. */
typedef struct control {
	atomic_int ready;              /* children that opened */
	atomic_int go;                 /* the parent's start signal */
	atomic_int stop;               /* background/readers: finish */
	atomic_int writers_left;
	atomic_int hook_calls;         /* wait_hook_bounds_a_stall */
	atomic_int hook_limit;         /* give up after this many calls (<0: never) */
	atomic_int phase;
	_Atomic uint64_t flushes;      /* the background process's stats */
	_Atomic uint64_t compactions;
	_Atomic uint64_t steps;
	int      rc1, rc2, calls1, calls2;
	long     us1, us2, puts1;
	long     scans[NSLOTS], gets[NSLOTS];
	atomic_int visible_puts[NSLOTS]; /* many_processes: puts every handle must see */
	uintptr_t addr[NSLOTS];
	int      tag_c[4], tag_i[4];   /* crash_loop: recovered group tags */
	uint64_t v_flushes, v_compactions, v_keys, v_stalls, v_stall_us, v_slowdowns;
	char     msg[NSLOTS][600];
} control;

static control *ctl;

/* The region: a shm object every process maps on its own. */
static struct {
	int fd;
	size_t size;
	void *mem;
} rg = {-1, 0, NULL};

static pid_t kids[NSLOTS];
static int child_slot = -1;

/* ---- the watchdog: a hang fails the test and kills the children */
static char wd_text[512];
static size_t wd_len;

static void on_alarm(int sig)
{
	static const char tail[] = "FAIL (hang)\n0 passed, 1 failed\n";
	int i;

	(void)sig;
	for (i = 0; i < NSLOTS; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	if (write(2, wd_text, wd_len) < 0 || write(1, tail, sizeof tail - 1) < 0)
		_exit(1);
	_exit(1);
}

static void watchdog(unsigned seconds, const char *what, int cycle)
{
	int n = snprintf(wd_text, sizeof wd_text, "    shared_test: WATCHDOG: %s (cycle %d) did not "
	                 "finish in %u s\n", what, cycle, seconds);

	wd_len = n > 0 && (size_t)n < sizeof wd_text ? (size_t)n : 0;
	signal(SIGALRM, on_alarm);
	alarm(seconds);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
	nanosleep(&ts, NULL);
}

/* A failure inside a child: the message goes to the parent, exit 1. */
__attribute__((format(printf, 1, 2), noreturn))
static void kid_fail(const char *fmt, ...)
{
	va_list ap;
	char *m = ctl->msg[child_slot >= 0 ? child_slot : 0];

	va_start(ap, fmt);
	vsnprintf(m, sizeof ctl->msg[0], fmt, ap);
	va_end(ap);
	_exit(1);
}

static int control_setup(void)
{
	if (ctl == NULL) {
		void *p = mmap(NULL, sizeof *ctl, PROT_READ | PROT_WRITE,
		               MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return -1;
		ctl = p;
	}
	memset(ctl, 0, sizeof *ctl);
	memset(kids, 0, sizeof kids);
	return 0;
}

/* Creates the shm object for `o` and maps it; 0 on success. */
static int region_create(const lsm_options *o)
{
	static int serial;
	char name[64];

	rg.size = lsm_shared_size(o);
	if (rg.size == 0)
		return -1;
	snprintf(name, sizeof name, "/lsm_shared_test.%d.%d", (int)getpid(), serial++);
	rg.fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (rg.fd < 0)
		return -1;
	shm_unlink(name);      /* the fd keeps it; nothing left behind */
	if (ftruncate(rg.fd, (off_t)rg.size) != 0)
		return -1;
	rg.mem = mmap(NULL, rg.size, PROT_READ | PROT_WRITE, MAP_SHARED, rg.fd, 0);
	if (rg.mem == MAP_FAILED) {
		rg.mem = NULL;
		return -1;
	}
	return 0;
}

static void region_destroy(void)
{
	if (rg.mem)
		munmap(rg.mem, rg.size);
	if (rg.fd >= 0)
		close(rg.fd);
	rg.mem = NULL;
	rg.fd = -1;
}

/* In a child: map the object again elsewhere and drop the inherited
 * mapping.  A spacer of a slot-dependent size goes first, so that sibling
 * children (whose address spaces are copies) differ from each other too. */
static void relocate(int slot)
{
	size_t spacer = (size_t)(slot % 61 + 1) << 22;   /* 4 MiB steps survive 2 MiB alignment */
	void *sp = mmap(NULL, spacer, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *p = mmap(NULL, rg.size, PROT_READ | PROT_WRITE, MAP_SHARED, rg.fd, 0);

	(void)sp;
	if (p == MAP_FAILED)
		kid_fail("mmap of the region: %s", strerror(errno));
	if (p == rg.mem)
		kid_fail("the new mapping landed at the inherited address %p", p);
	munmap(rg.mem, rg.size);
	rg.mem = p;
	ctl->addr[slot] = (uintptr_t)p;
}

/* Forks a child into `slot` running fn(arg) on a relocated region. */
static pid_t spawn(int slot, int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	ctl->msg[slot][0] = 0;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		signal(SIGALRM, SIG_DFL);
		child_slot = slot;
		memset(kids, 0, sizeof kids);
		relocate(slot);
		_exit(fn(arg));
	}
	kids[slot] = pid;
	return pid;
}

/* Waits for the child in `slot`; 0 when it exited with 0, else -1 and
 * a description in why. */
static int reap(int slot, char *why, size_t n)
{
	int st;
	pid_t pid = kids[slot];

	if (pid <= 0) {
		snprintf(why, n, "slot %d: no child", slot);
		return -1;
	}
	if (waitpid(pid, &st, 0) != pid) {
		snprintf(why, n, "slot %d: waitpid: %s", slot, strerror(errno));
		return -1;
	}
	kids[slot] = 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st))
		snprintf(why, n, "child %d exited %d: %s", slot, WEXITSTATUS(st), ctl->msg[slot]);
	else
		snprintf(why, n, "child %d killed by signal %d%s%s", slot, WTERMSIG(st),
		         ctl->msg[slot][0] ? ": " : "", ctl->msg[slot]);
	return -1;
}

static void kill_all(void)
{
	int i;

	for (i = 0; i < NSLOTS; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
}

/* Waits until *v >= target; -1 after `ms`. */
static int wait_for(atomic_int *v, int target, double ms)
{
	double t0 = now_ms();

	while (atomic_load(v) < target) {
		if (now_ms() - t0 > ms)
			return -1;
		sleep_ms(0.5);
	}
	return 0;
}

static lsm_db *kid_open(const lsm_options *o, const char *dir)
{
	lsm_db *db;
	int rc = lsm_open_shared(o, dir, rg.mem, &db);

	if (rc != LSM_OK)
		kid_fail("lsm_open_shared: %s", lsm_strerror(rc));
	return db;
}

/* Small everything, so that flushes and compactions happen all the time. */
static lsm_options shared_options(size_t memtable)
{
	lsm_options o;

	lsm_options_init(&o);
	o.memtable_size = memtable;
	o.max_memtables = 3;
	o.wal_buffer_size = 64u << 10;
	o.wal_segment_size = 1u << 20;
	o.block_cache_size = 2u << 20;
	o.l0_compaction_trigger = 2;
	o.l0_slowdown_trigger = 8;
	o.l0_stop_trigger = 24;
	o.max_bytes_for_level_base = 1u << 20;
	o.level_size_multiplier = 4;
	o.target_file_size = 256u << 10;
	o.max_processes = 16;
	return o;
}

/* ---- values: "<a>.<b>|" then filler derived from a and b */
static size_t make_val(char *buf, size_t len, int a, int b)
{
	int n = snprintf(buf, len + 1, "%d.%d|", a, b);
	size_t i;

	for (i = (size_t)n; i < len; i++)
		buf[i] = (char)('a' + ((unsigned)a * 7u + (unsigned)b * 13u + (unsigned)i) % 26u);
	buf[len] = 0;
	return len;
}

/* Parses a value made by make_val(len); 0 when it is exactly one. */
static int parse_val(const void *v, size_t vl, size_t len, int *a, int *b)
{
	char want[512], head[32];
	const char *p = v;
	size_t i;

	if (vl != len || len >= sizeof want)
		return -1;
	for (i = 0; i < vl && i < sizeof head - 1 && p[i] != '|'; i++)
		head[i] = p[i];
	head[i] = 0;
	if (sscanf(head, "%d.%d", a, b) != 2)
		return -1;
	make_val(want, len, *a, *b);
	return memcmp(want, v, vl) == 0 ? 0 : -1;
}

/* The background process: steps until told to stop and nothing waits. */
typedef struct bg_arg {
	const lsm_options *o;
	const char *dir;
	int publish;                   /* stats into ctl after every step */
} bg_arg;

static int bg_main(void *p)
{
	bg_arg *a = p;
	lsm_db *db = kid_open(a->o, a->dir);
	long after_stop = 0;
	lsm_stats st;
	int rc;

	atomic_fetch_add(&ctl->ready, 1);
	for (;;) {
		unsigned pending = 0;

		rc = lsm_background_step(db, LSM_WORK_ALL, &pending);
		if (rc != LSM_OK)
			kid_fail("lsm_background_step: %s", lsm_strerror(rc));
		atomic_fetch_add(&ctl->steps, 1);
		if (a->publish && lsm_get_stats(db, &st) == LSM_OK) {
			atomic_store(&ctl->flushes, st.flushes);
			atomic_store(&ctl->compactions, st.compactions);
		}
		if (atomic_load(&ctl->stop) && ++after_stop > 100000)
			kid_fail("lsm_background_step still reports work pending (0x%x) "
			         "100000 steps after the writers stopped", pending);
		if (pending == 0) {
			if (atomic_load(&ctl->stop))
				break;
			lsm_background_wait(db, 20);
		}
	}
	if ((rc = lsm_get_stats(db, &st)) != LSM_OK)
		kid_fail("lsm_get_stats: %s", lsm_strerror(rc));
	atomic_store(&ctl->flushes, st.flushes);
	atomic_store(&ctl->compactions, st.compactions);
	if ((rc = lsm_close(db)) != LSM_OK)
		kid_fail("lsm_close: %s", lsm_strerror(rc));
	return 0;
}

/* ------------------------------------------------- region_is_relocatable */

static const char *rl_dir;
static lsm_options rl_opts;

static int rl_child(void *arg)
{
	int id = (int)(intptr_t)arg, j, rc;
	lsm_write_options wo = {1};
	char k[32], v[32];
	lsm_db *db = kid_open(&rl_opts, rl_dir);

	snprintf(k, sizeof k, "reloc%d", id);
	snprintf(v, sizeof v, "from child %d", id);
	if ((rc = lsm_put(db, &wo, k, strlen(k), v, strlen(v))) != LSM_OK)
		kid_fail("lsm_put: %s", lsm_strerror(rc));
	atomic_fetch_add(&ctl->ready, 1);
	if (wait_for(&ctl->ready, 3, 20000) != 0)
		kid_fail("the other children never wrote");
	for (j = 0; j < 3; j++) {
		void *got;
		size_t n;

		snprintf(k, sizeof k, "reloc%d", j);
		snprintf(v, sizeof v, "from child %d", j);
		rc = lsm_get(db, NULL, k, strlen(k), &got, &n);
		if (rc != LSM_OK)
			kid_fail("child %d reads %s: %s", id, k, lsm_strerror(rc));
		if (n != strlen(v) || memcmp(got, v, n) != 0)
			kid_fail("child %d reads %s: wrong value", id, k);
		lsm_free(got);
	}
	if ((rc = lsm_close(db)) != LSM_OK)
		kid_fail("lsm_close: %s", lsm_strerror(rc));
	return 0;
}

static int rl_reader(void *arg)
{
	lsm_db *db = kid_open(&rl_opts, rl_dir);
	int j, rc;

	(void)arg;
	for (j = 0; j < 3; j++) {
		char k[32], v[32];
		void *got;
		size_t n;

		snprintf(k, sizeof k, "reloc%d", j);
		snprintf(v, sizeof v, "from child %d", j);
		rc = lsm_get(db, NULL, k, strlen(k), &got, &n);
		if (rc != LSM_OK)
			kid_fail("a later process reads %s: %s", k, lsm_strerror(rc));
		if (n != strlen(v) || memcmp(got, v, n) != 0)
			kid_fail("a later process reads %s: wrong value", k);
		lsm_free(got);
	}
	if ((rc = lsm_close(db)) != LSM_OK)
		kid_fail("lsm_close: %s", lsm_strerror(rc));
	return 0;
}

TEST(region_is_relocatable)
{
	char why[800];
	uintptr_t parent;
	lsm_db *db;
	int i, j;

	rl_opts = shared_options(256u << 10);
	rl_dir = test_tmpdir("reloc");
	CHECK(control_setup() == 0);
	CHECK_MSG(region_create(&rl_opts) == 0, "shm region: %s", strerror(errno));
	parent = (uintptr_t)rg.mem;
	CHECK_OK(lsm_shared_init(rg.mem, rg.size, &rl_opts));
	watchdog(60, "region_is_relocatable", 0);
	for (i = 0; i < 3; i++)
		CHECK(spawn(i, rl_child, (void *)(intptr_t)i) > 0);
	for (i = 0; i < 3; i++)
		if (reap(i, why, sizeof why) != 0) {
			kill_all();
			CHECK_MSG(0, "%s", why);
		}
	printf("    region %zu bytes: parent at %#lx, children at %#lx %#lx %#lx\n", rg.size,
	       (unsigned long)parent, (unsigned long)ctl->addr[0], (unsigned long)ctl->addr[1],
	       (unsigned long)ctl->addr[2]);
	for (i = 0; i < 3; i++) {
		CHECK_MSG(ctl->addr[i] != 0 && ctl->addr[i] != parent,
		          "child %d mapped the region at the parent's address", i);
		for (j = 0; j < i; j++)
			CHECK_MSG(ctl->addr[i] != ctl->addr[j], "children %d and %d share an address", i, j);
	}
	/* a later process attaches at yet another address */
	CHECK(spawn(5, rl_reader, NULL) > 0);
	CHECK_MSG(reap(5, why, sizeof why) == 0, "attach after close: %s", why);
	CHECK(ctl->addr[5] != parent);
	/* format again and recover from disk in the parent, at its address */
	CHECK_OK(lsm_shared_init(rg.mem, rg.size, &rl_opts));
	CHECK_OK(lsm_open_shared(&rl_opts, rl_dir, rg.mem, &db));
	for (j = 0; j < 3; j++) {
		char k[32], v[32];
		void *got;
		size_t n;

		snprintf(k, sizeof k, "reloc%d", j);
		snprintf(v, sizeof v, "from child %d", j);
		CHECK_OK(lsm_get(db, NULL, k, strlen(k), &got, &n));
		CHECK_MEM(got, n, v, strlen(v));
		lsm_free(got);
	}
	CHECK_OK(lsm_close(db));
	alarm(0);
	region_destroy();
}

/* --------------------------------------- many_processes_write_and_read */

#define MP_W      4
#define MP_R      2
#define MP_N      8000     /* puts per writer */
#define MP_M      1500     /* distinct w-keys per writer */
#define MP_VLEN   120
#define MP_SLEN   24
#define MP_BG     (MP_W + MP_R)
#define MP_VERIFY (MP_W + MP_R + 1)

static const char *mp_dir;
static lsm_options mp_opts;

static size_t wkey(char *k, int id, int j) { return (size_t)sprintf(k, "w%d-%05d", id, j); }
static size_t bkey(char *k, int id, int n) { return (size_t)sprintf(k, "b%d-%07d", id, n); }
static size_t skey(char *k, int j) { return (size_t)sprintf(k, "s%d", j); }

/* The newest put n < p to key j (n % M == j), or -1. */
static int newest_put(int p, int j)
{
	return j < p ? j + MP_M * ((p - 1 - j) / MP_M) : -1;
}

/* What a writer just put, it reads back through its own handle. */
static void mp_check_own_write(lsm_db *db, int id, int n, const char *key, size_t kl)
{
	void *got;
	size_t gl;
	int a, b, rc = lsm_get(db, NULL, key, kl, &got, &gl);

	if (rc != LSM_OK)
		kid_fail("writer %d: its own put #%d is not found: %s", id, n, lsm_strerror(rc));
	if (parse_val(got, gl, MP_VLEN, &a, &b) != 0 || a != id || b != n)
		kid_fail("writer %d: reads put %d.%d back right after its put #%d", id, a, b, n);
	lsm_free(got);
}

static int mp_writer(void *arg)
{
	int id = (int)(intptr_t)arg, n, k, rc;
	/* odd writers do not wait for the batches ordered ahead of theirs to
	 * be visible: readers must see the same prefixes, and the writer its
	 * own writes at once */
	lsm_write_options wo = {0, id % 2}, ws = {1, id % 2};
	char key[32], v[MP_VLEN + 1], sv[MP_SLEN + 1];
	lsm_db *db = kid_open(&mp_opts, mp_dir);
	lsm_batch *b;

	if (lsm_batch_create(&b) != LSM_OK)
		kid_fail("lsm_batch_create");
	atomic_fetch_add(&ctl->ready, 1);
	if (wait_for(&ctl->go, 1, 60000) != 0)
		kid_fail("no start signal");
	for (n = 0; n < MP_N; n++) {
		size_t kl = wkey(key, id, n % MP_M);

		make_val(v, MP_VLEN, id, n);
		rc = lsm_put(db, n % 64 == 63 ? &ws : &wo, key, kl, v, MP_VLEN);
		if (rc != LSM_OK)
			kid_fail("writer %d: lsm_put #%d: %s", id, n, lsm_strerror(rc));
		if (n % 16 == 5)
			mp_check_own_write(db, id, n, key, kl);
		if (n % 16 == 13) {
			/* from here on every process sees put n (a reader that
			 * looks in the moment between is rare: a weak check) */
			if (wo.defer_visibility)
				lsm_wait_visible(db);
			atomic_store(&ctl->visible_puts[id], n + 1);
		}
		if (n % 4 != 3)
			continue;
		lsm_batch_clear(b);
		make_val(sv, MP_SLEN, id, n);
		for (k = 0; k < 8; k++) {
			kl = skey(key, k);
			lsm_batch_put(b, key, kl, sv, MP_SLEN);
		}
		kl = bkey(key, id, n);
		lsm_batch_put(b, key, kl, v, MP_VLEN);
		if ((rc = lsm_write(db, &wo, b)) != LSM_OK)
			kid_fail("writer %d: lsm_write of batch %d: %s", id, n, lsm_strerror(rc));
	}
	lsm_batch_destroy(b);
	if ((rc = lsm_close(db)) != LSM_OK)
		kid_fail("writer %d: lsm_close: %s", id, lsm_strerror(rc));
	atomic_fetch_sub(&ctl->writers_left, 1);
	return 0;
}

/* A reader's memory of what it saw (per process). */
static int rd_last[MP_W][MP_M];   /* newest n seen per key (-1: never seen) */
static int rd_prog[MP_W];         /* puts seen: a prefix of that length */
static int rd_nb[MP_W];           /* batches seen */
static int rd_cur[MP_W][MP_M];

/* One full scan at the iterator's implied snapshot. */
static void mp_scan(lsm_db *db, int reader)
{
	int cb[MP_W] = {0}, maxn[MP_W], must_see[MP_W], s_seen = 0, s_a = -1, s_b = -1, id, j, a, b, rc;
	lsm_iter *it;
	long keys = 0;

	for (id = 0; id < MP_W; id++) {
		maxn[id] = -1;
		for (j = 0; j < MP_M; j++)
			rd_cur[id][j] = -1;
	}
	for (id = 0; id < MP_W; id++)
		must_see[id] = atomic_load(&ctl->visible_puts[id]);
	if ((rc = lsm_iter_create(db, NULL, &it)) != LSM_OK)
		kid_fail("reader %d: lsm_iter_create: %s", reader, lsm_strerror(rc));
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *kp = lsm_iter_key(it, &kl);
		const void *vp = lsm_iter_value(it, &vl);
		char key[32];

		keys++;
		if (kl == 0 || kl >= sizeof key)
			kid_fail("reader %d: unexpected key of %zu bytes", reader, kl);
		memcpy(key, kp, kl);
		key[kl] = 0;
		if (key[0] == 'b' && sscanf(key, "b%d-%d", &id, &j) == 2 && id >= 0 && id < MP_W) {
			if (j != 4 * cb[id] + 3)
				kid_fail("reader %d: %s follows %d batches of writer %d: a batch is "
				         "missing", reader, key, cb[id], id);
			if (parse_val(vp, vl, MP_VLEN, &a, &b) != 0 || a != id || b != j)
				kid_fail("reader %d: %s has a wrong value", reader, key);
			cb[id]++;
		} else if (key[0] == 's' && sscanf(key, "s%d", &j) == 1) {
			if (j != s_seen)
				kid_fail("reader %d: s%d missing in a snapshot holding %s (part of a "
				         "batch)", reader, s_seen, key);
			if (parse_val(vp, vl, MP_SLEN, &a, &b) != 0)
				kid_fail("reader %d: %s has a malformed value", reader, key);
			if (j == 0) {
				s_a = a;
				s_b = b;
			} else if (a != s_a || b != s_b)
				kid_fail("reader %d: s0 = %d.%d but %s = %d.%d: part of a batch", reader,
				         s_a, s_b, key, a, b);
			s_seen++;
		} else if (key[0] == 'w' && sscanf(key, "w%d-%d", &id, &j) == 2 && id >= 0 &&
		           id < MP_W && j >= 0 && j < MP_M) {
			if (parse_val(vp, vl, MP_VLEN, &a, &b) != 0 || a != id || b % MP_M != j)
				kid_fail("reader %d: %s has a wrong value", reader, key);
			rd_cur[id][j] = b;
			if (b > maxn[id])
				maxn[id] = b;
		} else
			kid_fail("reader %d: unexpected key %s", reader, key);
	}
	if ((rc = lsm_iter_status(it)) != LSM_OK)
		kid_fail("reader %d: iterator: %s", reader, lsm_strerror(rc));
	lsm_iter_destroy(it);

	if (s_seen != 0 && s_seen != 8)
		kid_fail("reader %d: %d of the 8 s keys (part of a batch)", reader, s_seen);
	if (s_seen == 0) {
		for (id = 0; id < MP_W; id++)
			if (cb[id])
				kid_fail("reader %d: batch b%d-%d visible without the s keys", reader, id,
				         4 * cb[id] - 1);
	} else if (s_a < 0 || s_a >= MP_W || cb[s_a] == 0 || 4 * cb[s_a] - 1 != s_b)
		kid_fail("reader %d: the s keys hold batch %d.%d, but writer %d's newest visible "
		         "batch is %d", reader, s_a, s_b, s_a,
		         s_a >= 0 && s_a < MP_W ? 4 * cb[s_a] - 1 : -2);
	for (id = 0; id < MP_W; id++) {
		int p = maxn[id] + 1, nb = 4 * cb[id] - 1;

		for (j = 0; j < MP_M; j++) {
			if (rd_cur[id][j] != newest_put(p, j))
				kid_fail("reader %d: writer %d's puts up to %d are visible but w%d-%05d "
				         "holds put %d (want %d): not a prefix", reader, id, p - 1, id, j,
				         rd_cur[id][j], newest_put(p, j));
			if (rd_cur[id][j] < rd_last[id][j])
				kid_fail("reader %d: w%d-%05d went back from put %d to %d", reader, id, j,
				         rd_last[id][j], rd_cur[id][j]);
			rd_last[id][j] = rd_cur[id][j];
		}
		if (p < nb + 1 || p > nb + 5)
			kid_fail("reader %d: writer %d: %d puts but %d batches visible (newest %d)",
			         reader, id, p, cb[id], nb);
		if (p < must_see[id])
			kid_fail("reader %d: writer %d said its put %d is visible to all, but a later "
			         "scan sees %d puts", reader, id, must_see[id] - 1, p);
		if (p < rd_prog[id] || cb[id] < rd_nb[id])
			kid_fail("reader %d: writer %d went back: %d puts, %d batches after %d, %d",
			         reader, id, p, cb[id], rd_prog[id], rd_nb[id]);
		rd_prog[id] = p;
		rd_nb[id] = cb[id];
	}
	(void)keys;
}

/* A snapshot and lsm_get: the s keys and what they imply, random keys. */
static void mp_gets(lsm_db *db, int reader, test_rng *rng)
{
	const lsm_snapshot *snap;
	lsm_read_options ro = {0};
	char key[32];
	int j, a = -1, b = -1, rc, i;
	void *v;
	size_t vl, kl;

	if ((rc = lsm_snapshot_create(db, &snap)) != LSM_OK)
		kid_fail("reader %d: lsm_snapshot_create: %s", reader, lsm_strerror(rc));
	ro.snapshot = snap;
	for (j = 0; j < 8; j++) {
		int x, y;

		kl = skey(key, j);
		rc = lsm_get(db, &ro, key, kl, &v, &vl);
		if (rc == LSM_NOTFOUND) {
			if (j != 0 && a >= 0)
				kid_fail("reader %d: s0 = %d.%d but s%d absent (part of a batch)", reader,
				         a, b, j);
			a = -2;
			continue;
		}
		if (rc != LSM_OK)
			kid_fail("reader %d: lsm_get %s: %s", reader, key, lsm_strerror(rc));
		if (parse_val(v, vl, MP_SLEN, &x, &y) != 0)
			kid_fail("reader %d: %s has a malformed value", reader, key);
		lsm_free(v);
		if (j == 0) {
			a = x;
			b = y;
		} else if (a != x || b != y)
			kid_fail("reader %d: s0 = %d.%d but s%d = %d.%d (part of a batch)", reader, a,
			         b, j, x, y);
	}
	if (a >= 0) {
		int x, y;

		if (a >= MP_W)
			kid_fail("reader %d: s keys from writer %d?", reader, a);
		kl = bkey(key, a, b);
		rc = lsm_get(db, &ro, key, kl, &v, &vl);
		if (rc != LSM_OK)
			kid_fail("reader %d: s keys hold batch %d.%d but %s: %s", reader, a, b, key,
			         lsm_strerror(rc));
		lsm_free(v);
		kl = wkey(key, a, b % MP_M);
		rc = lsm_get(db, &ro, key, kl, &v, &vl);
		if (rc != LSM_OK)
			kid_fail("reader %d: s keys hold batch %d.%d but %s: %s", reader, a, b, key,
			         lsm_strerror(rc));
		if (parse_val(v, vl, MP_VLEN, &x, &y) != 0 || x != a || y < b || y % MP_M != b % MP_M)
			kid_fail("reader %d: s keys hold batch %d.%d but %s holds put %d", reader, a, b,
			         key, y);
		lsm_free(v);
	}
	for (i = 0; i < 64; i++) {
		int id = (int)test_rng_uniform(rng, MP_W), x, y;

		j = (int)test_rng_uniform(rng, MP_M);
		kl = wkey(key, id, j);
		rc = lsm_get(db, &ro, key, kl, &v, &vl);
		if (rc == LSM_NOTFOUND) {
			if (rd_last[id][j] >= 0)
				kid_fail("reader %d: %s disappeared (it held put %d)", reader, key,
				         rd_last[id][j]);
			continue;
		}
		if (rc != LSM_OK)
			kid_fail("reader %d: lsm_get %s: %s", reader, key, lsm_strerror(rc));
		if (parse_val(v, vl, MP_VLEN, &x, &y) != 0 || x != id || y % MP_M != j)
			kid_fail("reader %d: %s has a wrong value", reader, key);
		lsm_free(v);
		if (y < rd_last[id][j])
			kid_fail("reader %d: %s went back from put %d to %d", reader, key,
			         rd_last[id][j], y);
		rd_last[id][j] = y;
	}
	lsm_snapshot_release(db, snap);
}

static int mp_reader(void *arg)
{
	int r = (int)(intptr_t)arg, id, j, last = 0, round = 0, rc;
	lsm_db *db = kid_open(&mp_opts, mp_dir);
	test_rng rng;

	test_rng_seed(&rng, 77 + (uint64_t)r);
	for (id = 0; id < MP_W; id++) {
		rd_prog[id] = rd_nb[id] = 0;
		for (j = 0; j < MP_M; j++)
			rd_last[id][j] = -1;
	}
	atomic_fetch_add(&ctl->ready, 1);
	if (wait_for(&ctl->go, 1, 60000) != 0)
		kid_fail("no start signal");
	while (!last) {
		last = atomic_load(&ctl->writers_left) == 0;   /* one more round after */
		/* A pause between rounds: readers that never pause starve the
		 * writers on a small machine (their publish() waits yield the CPU
		 * to the readers) and the test would take ~30x longer. */
		if (round > 0)
			sleep_ms(1);
		if ((round++ + r) % 2 == 0) {
			mp_scan(db, MP_W + r);
			ctl->scans[r]++;
		} else {
			mp_gets(db, MP_W + r, &rng);
			ctl->gets[r]++;
		}
	}
	mp_scan(db, MP_W + r);
	ctl->scans[r]++;
	for (id = 0; id < MP_W; id++)
		if (rd_prog[id] != MP_N)
			kid_fail("reader %d: after the writers ended, writer %d shows %d of %d puts",
			         r, id, rd_prog[id], MP_N);
	if ((rc = lsm_close(db)) != LSM_OK)
		kid_fail("lsm_close: %s", lsm_strerror(rc));
	return 0;
}

/* A fresh process: every key with its last value, nothing else. */
static int mp_verify(void *arg)
{
	lsm_db *db = kid_open(&mp_opts, mp_dir);
	int id, j, a, b, rc, last_batch = MP_N - 1 - ((MP_N - 4) % 4);
	char key[32];
	void *v;
	size_t vl, kl;
	lsm_iter *it;
	lsm_stats st;
	uint64_t keys = 0, want;

	(void)arg;
	for (id = 0; id < MP_W; id++) {
		for (j = 0; j < MP_M; j++) {
			kl = wkey(key, id, j);
			if ((rc = lsm_get(db, NULL, key, kl, &v, &vl)) != LSM_OK)
				kid_fail("%s: %s", key, lsm_strerror(rc));
			if (parse_val(v, vl, MP_VLEN, &a, &b) != 0 || a != id || b != newest_put(MP_N, j))
				kid_fail("%s holds put %d of writer %d, want %d", key, b, a,
				         newest_put(MP_N, j));
			lsm_free(v);
		}
		for (j = 3; j < MP_N; j += 4) {
			kl = bkey(key, id, j);
			if ((rc = lsm_get(db, NULL, key, kl, &v, &vl)) != LSM_OK)
				kid_fail("%s: %s", key, lsm_strerror(rc));
			if (parse_val(v, vl, MP_VLEN, &a, &b) != 0 || a != id || b != j)
				kid_fail("%s has a wrong value", key);
			lsm_free(v);
		}
	}
	for (j = 0; j < 8; j++) {
		int x, y;

		kl = skey(key, j);
		if ((rc = lsm_get(db, NULL, key, kl, &v, &vl)) != LSM_OK)
			kid_fail("%s: %s", key, lsm_strerror(rc));
		if (parse_val(v, vl, MP_SLEN, &x, &y) != 0)
			kid_fail("%s malformed", key);
		lsm_free(v);
		if (j == 0) {
			a = x;
			b = y;
		} else if (x != a || y != b)
			kid_fail("s0 = %d.%d but %s = %d.%d", a, b, key, x, y);
	}
	if (b != last_batch)
		kid_fail("the s keys hold batch %d of writer %d, not a writer's last (%d)", b, a,
		         last_batch);
	if ((rc = lsm_iter_create(db, NULL, &it)) != LSM_OK)
		kid_fail("lsm_iter_create: %s", lsm_strerror(rc));
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
		keys++;
	if ((rc = lsm_iter_status(it)) != LSM_OK)
		kid_fail("iterator: %s", lsm_strerror(rc));
	lsm_iter_destroy(it);
	want = (uint64_t)MP_W * MP_M + (uint64_t)MP_W * (MP_N / 4) + 8;
	if (keys != want)
		kid_fail("a scan shows %llu keys, want %llu", (unsigned long long)keys,
		         (unsigned long long)want);
	if ((rc = lsm_get_stats(db, &st)) != LSM_OK)
		kid_fail("lsm_get_stats: %s", lsm_strerror(rc));
	ctl->v_flushes = st.flushes;
	ctl->v_compactions = st.compactions;
	ctl->v_keys = keys;
	ctl->v_stalls = st.write_stalls;
	ctl->v_stall_us = st.write_stall_micros;
	ctl->v_slowdowns = st.write_slowdowns;
	if ((rc = lsm_close(db)) != LSM_OK)
		kid_fail("lsm_close: %s", lsm_strerror(rc));
	return 0;
}

TEST(many_processes_write_and_read)
{
	char why[800];
	bg_arg bga;
	double t0;
	uint64_t attach_flushes, attach_stalls, attach_stall_us, attach_slowdowns;
	int i;

	mp_opts = shared_options(256u << 10);
	mp_dir = test_tmpdir("many");
	CHECK(control_setup() == 0);
	CHECK_MSG(region_create(&mp_opts) == 0, "shm region: %s", strerror(errno));
	CHECK_OK(lsm_shared_init(rg.mem, rg.size, &mp_opts));
	watchdog(300, "many_processes_write_and_read", 0);
	t0 = now_ms();
	atomic_store(&ctl->writers_left, MP_W);
	bga = (bg_arg){&mp_opts, mp_dir, 0};
	CHECK(spawn(MP_BG, bg_main, &bga) > 0);
	for (i = 0; i < MP_R; i++)
		CHECK(spawn(MP_W + i, mp_reader, (void *)(intptr_t)i) > 0);
	for (i = 0; i < MP_W; i++)
		CHECK(spawn(i, mp_writer, (void *)(intptr_t)i) > 0);
	if (wait_for(&ctl->ready, MP_W + MP_R + 1, 60000) != 0) {
		for (i = 0; i < NSLOTS; i++)
			if (kids[i] > 0 && waitpid(kids[i], NULL, WNOHANG) == kids[i]) {
				kids[i] = 0;
				fprintf(stderr, "    child %d: %s\n", i, ctl->msg[i]);
			}
		kill_all();
		CHECK_MSG(0, "the children did not all open in 60 s");
	}
	atomic_store(&ctl->go, 1);
	for (i = 0; i < MP_W + MP_R; i++)
		if (reap(i, why, sizeof why) != 0) {
			kill_all();
			CHECK_MSG(0, "%s", why);
		}
	atomic_store(&ctl->stop, 1);
	if (reap(MP_BG, why, sizeof why) != 0) {
		kill_all();
		CHECK_MSG(0, "background process: %s", why);
	}
	printf("    %d writers x %d puts + %d batches, %.0f ms; readers: %ld+%ld scans, "
	       "%ld+%ld snapshot rounds; background: %llu steps, %llu flushes, %llu compactions\n",
	       MP_W, MP_N, MP_N / 4, now_ms() - t0, ctl->scans[0], ctl->scans[1], ctl->gets[0],
	       ctl->gets[1], (unsigned long long)ctl->steps, (unsigned long long)ctl->flushes,
	       (unsigned long long)ctl->compactions);
	CHECK_MSG(ctl->flushes > 0, "the background process flushed nothing");
	CHECK_MSG(ctl->compactions > 0, "the background process compacted nothing");
	CHECK_MSG(ctl->scans[0] + ctl->gets[0] >= 10 && ctl->scans[1] + ctl->gets[1] >= 10,
	          "the readers did too few rounds to overlap the writers");

	/* a fresh process attaches to the region as the others left it */
	CHECK(spawn(MP_VERIFY, mp_verify, NULL) > 0);
	CHECK_MSG(reap(MP_VERIFY, why, sizeof why) == 0, "attached after the run: %s", why);
	attach_flushes = ctl->v_flushes;
	attach_stalls = ctl->v_stalls;
	attach_stall_us = ctl->v_stall_us;
	attach_slowdowns = ctl->v_slowdowns;
	/* format again: a fresh process recovers from disk */
	CHECK_OK(lsm_shared_init(rg.mem, rg.size, &mp_opts));
	CHECK(spawn(MP_VERIFY, mp_verify, NULL) > 0);
	CHECK_MSG(reap(MP_VERIFY, why, sizeof why) == 0, "recovered after format: %s", why);
	printf("    verified %llu keys attached (its stats: %llu flushes, %llu stalls for %.0f ms, "
	       "%llu slowdowns) and after recovery\n", (unsigned long long)ctl->v_keys,
	       (unsigned long long)attach_flushes, (unsigned long long)attach_stalls,
	       (double)attach_stall_us / 1000, (unsigned long long)attach_slowdowns);
	alarm(0);
	region_destroy();
}

/* ------------------------------------------------------------ crash_loop */

#define CL_MAXCYC 2000
#define CL_SLOTS  3
#define CL_K      6
#define CL_GLEN   200
#define CL_HLEN   100
#define CL_BG     3
#define CL_VERIFY 4

static const char *cl_dir;
static lsm_options cl_opts;
static int cl_cycle;
static int cl_nw;                          /* writers this cycle */
static int cl_acked[CL_SLOTS];             /* last reported i this cycle (-1: none) */
static int cl_prev_c[CL_SLOTS], cl_prev_i[CL_SLOTS];   /* tag before this cycle (-1: none) */
static int cl_applied[CL_MAXCYC][CL_SLOTS]; /* batches of (cycle, slot) recovered */
static uint64_t cl_seed;

static size_t gkey(char *k, int s, int j) { return (size_t)sprintf(k, "g%d-%d", s, j); }
static size_t hkey(char *k, int c, int s, int i) { return (size_t)sprintf(k, "h%04d.%d.%07d", c, s, i); }

typedef struct cl_writer_arg {
	int slot;
	int fd;
} cl_writer_arg;

static int cl_writer(void *p)
{
	cl_writer_arg *a = p;
	/* odd slots defer visibility: what they are told is durable must be */
	lsm_write_options ws = {1, a->slot % 2};
	char key[40], v[CL_GLEN + 1];
	lsm_batch *b;
	lsm_db *db;
	int i, j, rc;

	if (lsm_batch_create(&b) != LSM_OK)
		kid_fail("lsm_batch_create");
	db = kid_open(&cl_opts, cl_dir);
	for (i = 0;; i++) {
		lsm_batch_clear(b);
		for (j = 0; j < CL_K; j++) {
			size_t kl = gkey(key, a->slot, j);

			if (j == 0 && i % 5 == 4) {
				lsm_batch_delete(b, key, kl);
				continue;
			}
			make_val(v, CL_GLEN, cl_cycle, i);
			lsm_batch_put(b, key, kl, v, CL_GLEN);
		}
		make_val(v, CL_HLEN, cl_cycle, i);
		lsm_batch_put(b, key, hkey(key, cl_cycle, a->slot, i), v, CL_HLEN);
		if ((rc = lsm_write(db, &ws, b)) != LSM_OK)
			kid_fail("cycle %d writer %d: lsm_write of batch %d: %s", cl_cycle, a->slot, i,
			         lsm_strerror(rc));
		if (write(a->fd, &i, sizeof i) != sizeof i)
			kid_fail("pipe write: %s", strerror(errno));
	}
}

static int tag_cmp(int c1, int i1, int c2, int i2)
{
	return c1 != c2 ? (c1 < c2 ? -1 : 1) : i1 != i2 ? (i1 < i2 ? -1 : 1) : 0;
}

/* Reads slot s's group: its one tag in *c, *i (-1: no group yet). */
static void cl_read_group(lsm_db *db, int s, int *c, int *i)
{
	int j, rc, x, y;
	char key[32];
	void *v;
	size_t vl, kl;

	*c = *i = -2;
	for (j = 1; j < CL_K; j++) {
		kl = gkey(key, s, j);
		rc = lsm_get(db, NULL, key, kl, &v, &vl);
		if (rc == LSM_NOTFOUND)
			x = y = -1;
		else if (rc != LSM_OK)
			kid_fail("lsm_get %s: %s", key, lsm_strerror(rc));
		else {
			if (parse_val(v, vl, CL_GLEN, &x, &y) != 0)
				kid_fail("%s has a malformed value", key);
			lsm_free(v);
		}
		if (j == 1) {
			*c = x;
			*i = y;
		} else if (x != *c || y != *i)
			kid_fail("slot %d: g%d-1 holds batch %d.%d but %s holds %d.%d: a batch is "
			         "half applied", s, s, *c, *i, key, x, y);
	}
	kl = gkey(key, s, 0);
	rc = lsm_get(db, NULL, key, kl, &v, &vl);
	if (rc == LSM_NOTFOUND) {
		if (*c >= 0 && *i % 5 != 4)
			kid_fail("slot %d: group at batch %d.%d but %s is absent: half applied", s, *c,
			         *i, key);
		return;
	}
	if (rc != LSM_OK)
		kid_fail("lsm_get %s: %s", key, lsm_strerror(rc));
	if (parse_val(v, vl, CL_GLEN, &x, &y) != 0)
		kid_fail("%s has a malformed value", key);
	lsm_free(v);
	if (*c < 0 || *i % 5 == 4 || x != *c || y != *i)
		kid_fail("slot %d: group at batch %d.%d but %s holds %d.%d: half applied", s, *c, *i,
		         key, x, y);
}

static int cl_verify(void *arg)
{
	lsm_db *db = kid_open(&cl_opts, cl_dir);
	int s, c, i, rc, ec, es, ei;
	lsm_read_options ro = {0};
	lsm_iter *it;
	long hkeys = 0;

	(void)arg;
	for (s = 0; s < CL_SLOTS; s++) {
		int ok, r = cl_acked[s];

		cl_read_group(db, s, &c, &i);
		if (s >= cl_nw)
			ok = c == cl_prev_c[s] && i == cl_prev_i[s];
		else if (r >= 0)
			ok = c == cl_cycle && (i == r || i == r + 1);
		else
			ok = (c == cl_prev_c[s] && i == cl_prev_i[s]) || (c == cl_cycle && i == 0);
		if (!ok)
			kid_fail("seed %llu cycle %d slot %d (%s): recovered batch %d.%d; last "
			         "acknowledged %d, before the cycle %d.%d",
			         (unsigned long long)cl_seed, cl_cycle, s,
			         s < cl_nw ? "writer" : "idle", c, i, r, cl_prev_c[s], cl_prev_i[s]);
		if (tag_cmp(c, i, cl_prev_c[s], cl_prev_i[s]) < 0)
			kid_fail("slot %d went back", s);
		ctl->tag_c[s] = c;
		ctl->tag_i[s] = i;
		cl_applied[cl_cycle][s] = c == cl_cycle ? i + 1 : 0;
	}
	/* history: exactly the applied batches of every cycle, in key order */
	ro.lower_bound = "h";
	ro.lower_bound_len = 1;
	ro.upper_bound = "i";
	ro.upper_bound_len = 1;
	if ((rc = lsm_iter_create(db, &ro, &it)) != LSM_OK)
		kid_fail("lsm_iter_create: %s", lsm_strerror(rc));
	lsm_iter_seek_to_first(it);
	for (ec = 0; ec <= cl_cycle; ec++)
		for (es = 0; es < CL_SLOTS; es++)
			for (ei = 0; ei < cl_applied[ec][es]; ei++) {
				char want[40], got[40];
				size_t kl, vl, wl = hkey(want, ec, es, ei);
				const void *kp, *vp;
				int x, y;

				if (!lsm_iter_valid(it))
					kid_fail("seed %llu cycle %d: history ends before %s (batch %d of "
					         "%d of cycle %d slot %d)", (unsigned long long)cl_seed,
					         cl_cycle, want, ei, cl_applied[ec][es], ec, es);
				kp = lsm_iter_key(it, &kl);
				vp = lsm_iter_value(it, &vl);
				snprintf(got, sizeof got, "%.*s", (int)(kl < 39 ? kl : 39), (const char *)kp);
				if (kl != wl || memcmp(kp, want, wl) != 0)
					kid_fail("seed %llu cycle %d: history holds %s where %s was expected "
					         "(cycle %d slot %d: %d batches applied)",
					         (unsigned long long)cl_seed, cl_cycle, got, want, ec, es,
					         cl_applied[ec][es]);
				if (parse_val(vp, vl, CL_HLEN, &x, &y) != 0 || x != ec || y != ei)
					kid_fail("%s has a wrong value", want);
				hkeys++;
				lsm_iter_next(it);
			}
	if (lsm_iter_valid(it)) {
		size_t kl;
		const char *kp = lsm_iter_key(it, &kl);

		kid_fail("seed %llu cycle %d: history key %.*s beyond the applied batches",
		         (unsigned long long)cl_seed, cl_cycle, (int)(kl < 39 ? kl : 39), kp);
	}
	if ((rc = lsm_iter_status(it)) != LSM_OK)
		kid_fail("iterator: %s", lsm_strerror(rc));
	lsm_iter_destroy(it);
	ctl->v_keys = (uint64_t)hkeys;
	if ((rc = lsm_close(db)) != LSM_OK)
		kid_fail("lsm_close: %s", lsm_strerror(rc));
	return 0;
}

/* Drains the ack pipes into cl_acked; until `ms` have passed (< 0: until
 * every pipe is at EOF). */
static void cl_drain(int *fds, int n, double ms)
{
	double t0 = now_ms();
	int open_n = 0, k;

	for (k = 0; k < n; k++)
		open_n += fds[k] >= 0;
	while (open_n > 0) {
		struct pollfd p[CL_SLOTS];
		int left = ms >= 0 ? (int)(ms - (now_ms() - t0)) : 1000;

		if (ms >= 0 && left <= 0)
			return;
		for (k = 0; k < n; k++)
			p[k] = (struct pollfd){fds[k], POLLIN, 0};
		if (poll(p, (nfds_t)n, left) <= 0)
			continue;
		for (k = 0; k < n; k++) {
			int buf[256];
			ssize_t got;

			if (fds[k] < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			got = read(fds[k], buf, sizeof buf);
			if (got <= 0) {
				close(fds[k]);
				fds[k] = -1;
				open_n--;
				continue;
			}
			/* writes of 4 bytes to a pipe are atomic: whole ints only */
			cl_acked[k] = buf[got / (ssize_t)sizeof(int) - 1];
		}
	}
}

TEST(crash_loop)
{
	const char *env = getenv("LSM_SHARED_CYCLES"), *senv = getenv("LSM_SHARED_SEED");
	long cycles = env && *env ? atol(env) : 50;
	long total_acked = 0, bg_victim = 0, early = 0;
	uint64_t flushes = 0, compactions = 0;
	double t0 = now_ms();
	char why[800];
	test_rng rng;
	bg_arg bga;
	int c, s;

	if (cycles > CL_MAXCYC)
		cycles = CL_MAXCYC;
	cl_seed = senv && *senv ? strtoull(senv, NULL, 0) : (uint64_t)time(NULL);
	printf("    seed %llu (LSM_SHARED_SEED), %ld cycles (LSM_SHARED_CYCLES)\n",
	       (unsigned long long)cl_seed, cycles);
	test_rng_seed(&rng, cl_seed);
	cl_opts = shared_options(256u << 10);
	cl_dir = test_tmpdir("crash");
	CHECK(control_setup() == 0);
	CHECK_MSG(region_create(&cl_opts) == 0, "shm region: %s", strerror(errno));
	for (s = 0; s < CL_SLOTS; s++)
		cl_prev_c[s] = cl_prev_i[s] = -1;
	bga = (bg_arg){&cl_opts, cl_dir, 1};
	for (c = 0; c < cycles; c++) {
		int fds[CL_SLOTS], victim;
		double delay;

		watchdog(60, "crash_loop", c);
		cl_cycle = c;
		cl_nw = 2 + (int)test_rng_uniform(&rng, 2);
		memset(ctl, 0, sizeof *ctl);
		CHECK_OK(lsm_shared_init(rg.mem, rg.size, &cl_opts));
		for (s = 0; s < cl_nw; s++) {
			int p[2];
			cl_writer_arg wa;

			CHECK(pipe(p) == 0);
			wa = (cl_writer_arg){s, p[1]};
			CHECK(spawn(s, cl_writer, &wa) > 0);
			close(p[1]);
			fds[s] = p[0];
			cl_acked[s] = -1;
		}
		CHECK(spawn(CL_BG, bg_main, &bga) > 0);
		/* one cycle in eight kills within 3 ms: during opens and recovery */
		if (test_rng_uniform(&rng, 8) == 0)
			delay = (double)test_rng_uniform(&rng, 3000) / 1000.0;
		else
			delay = 2 + (double)test_rng_uniform(&rng, 99);
		if (delay < 3)
			sleep_ms(delay);
		else
			cl_drain(fds, cl_nw, delay);
		victim = test_rng_uniform(&rng, 4) == 0 ? CL_BG : (int)test_rng_uniform(&rng, (uint64_t)cl_nw);
		bg_victim += victim == CL_BG;
		kill(kids[victim], SIGKILL);
		if (test_rng_uniform(&rng, 2))
			sleep_ms((double)test_rng_uniform(&rng, 3000) / 1000.0);
		for (s = 0; s < NSLOTS; s++)
			if (kids[s] > 0)
				kill(kids[s], SIGKILL);
		for (s = 0; s < NSLOTS; s++) {
			int st;

			if (kids[s] <= 0)
				continue;
			CHECK(waitpid(kids[s], &st, 0) == kids[s]);
			kids[s] = 0;
			if (!WIFSIGNALED(st)) {
				kill_all();
				CHECK_MSG(0, "seed %llu cycle %d: child %d exited %d before the kill: %s",
				          (unsigned long long)cl_seed, c, s, WEXITSTATUS(st), ctl->msg[s]);
			}
		}
		cl_drain(fds, cl_nw, -1);
		for (s = 0; s < cl_nw; s++) {
			total_acked += cl_acked[s] + 1;
			early += cl_acked[s] < 0;
		}
		flushes += atomic_load(&ctl->flushes);
		compactions += atomic_load(&ctl->compactions);

		/* as after a backend crash: format, recover from disk */
		CHECK_OK(lsm_shared_init(rg.mem, rg.size, &cl_opts));
		CHECK(spawn(CL_VERIFY, cl_verify, NULL) > 0);
		if (reap(CL_VERIFY, why, sizeof why) != 0)
			CHECK_MSG(0, "seed %llu cycle %d (kill after %.0f ms, victim %s): %s",
			          (unsigned long long)cl_seed, c, delay,
			          victim == CL_BG ? "background" : "a writer", why);
		for (s = 0; s < CL_SLOTS; s++) {
			cl_prev_c[s] = ctl->tag_c[s];
			cl_prev_i[s] = ctl->tag_i[s];
			cl_applied[c][s] = ctl->tag_c[s] == c ? ctl->tag_i[s] + 1 : 0;
		}
	}
	alarm(0);
	printf("    %ld cycles in %.1f s: %ld synced batches acknowledged, %llu history keys; "
	       "background killed first in %ld cycles; %ld writers killed before any ack; "
	       "background stats summed: %llu flushes, %llu compactions\n", cycles,
	       (now_ms() - t0) / 1000, total_acked, (unsigned long long)ctl->v_keys, bg_victim,
	       early, (unsigned long long)flushes, (unsigned long long)compactions);
	CHECK(total_acked > 0);
	CHECK_MSG(cycles < 10 || flushes > 0, "no flush seen in any cycle");
	CHECK_MSG(cycles < 10 || compactions > 0, "no compaction seen in any cycle");
	region_destroy();
}

/* ------------------------------------------------ wait_hook_bounds_a_stall */

static const char *wh_dir;
static lsm_options wh_opts;

static int wh_hook(void *arg)
{
	int n = atomic_fetch_add(&ctl->hook_calls, 1) + 1, lim = atomic_load(&ctl->hook_limit);

	(void)arg;
	return lim >= 0 && n > lim;
}

static int wh_writer(void *arg)
{
	lsm_write_options wo = {0};
	char key[32], v[1025];
	lsm_db *db;
	double t = 0;
	long n;
	int rc = LSM_OK;
	void *got;
	size_t gl;

	(void)arg;
	atomic_store(&ctl->hook_limit, 5);
	db = kid_open(&wh_opts, wh_dir);
	atomic_store(&ctl->hook_calls, 0);
	make_val(v, 1024, 1, 1);
	/* 64 KiB memtables, two: a stall within ~130 puts; 8 MiB is far beyond */
	for (n = 0; n < 8192; n++) {
		size_t kl = (size_t)sprintf(key, "k%06ld", n);

		t = now_ms();
		rc = lsm_put(db, &wo, key, kl, v, 1024);
		t = now_ms() - t;
		if (rc != LSM_OK)
			break;
	}
	ctl->rc1 = rc;
	ctl->us1 = (long)(t * 1000);
	ctl->puts1 = n;
	ctl->calls1 = atomic_load(&ctl->hook_calls);
	if (rc == LSM_OK)
		kid_fail("8192 puts of 1 KiB into two 64 KiB memtables without a background "
		         "process never stalled");
	if (rc != LSM_BUSY && rc != LSM_FULL)
		kid_fail("the stalled put returned %s", lsm_strerror(rc));
	rc = lsm_get(db, NULL, key, strlen(key), &got, &gl);
	if (rc != LSM_NOTFOUND)
		kid_fail("the put that returned %s wrote its key (lsm_get: %s)",
		         lsm_strerror(ctl->rc1), lsm_strerror(rc));

	/* a hook that never gives up: wait for the background process */
	atomic_store(&ctl->hook_limit, -1);
	atomic_store(&ctl->hook_calls, 0);
	atomic_store(&ctl->phase, 1);
	t = now_ms();
	rc = lsm_put(db, &wo, key, strlen(key), v, 1024);
	t = now_ms() - t;
	ctl->rc2 = rc;
	ctl->us2 = (long)(t * 1000);
	ctl->calls2 = atomic_load(&ctl->hook_calls);
	if (rc != LSM_OK)
		kid_fail("the put waiting for the background process: %s", lsm_strerror(rc));
	rc = lsm_get(db, NULL, key, strlen(key), &got, &gl);
	if (rc != LSM_OK)
		kid_fail("the key of the waiting put: %s", lsm_strerror(rc));
	lsm_free(got);
	if ((rc = lsm_close(db)) != LSM_OK)
		kid_fail("lsm_close: %s", lsm_strerror(rc));
	return 0;
}

TEST(wait_hook_bounds_a_stall)
{
	char why[800];
	bg_arg bga;

	wh_opts = shared_options(64u << 10);
	wh_opts.max_memtables = 2;
	wh_opts.wait_hook = wh_hook;
	wh_dir = test_tmpdir("hook");
	CHECK(control_setup() == 0);
	CHECK_MSG(region_create(&wh_opts) == 0, "shm region: %s", strerror(errno));
	CHECK_OK(lsm_shared_init(rg.mem, rg.size, &wh_opts));
	watchdog(30, "wait_hook_bounds_a_stall (a stalled put that never returns?)", 0);
	CHECK(spawn(0, wh_writer, NULL) > 0);
	/* phase 1 ends when the writer starts waiting again */
	while (atomic_load(&ctl->phase) == 0) {
		if (waitpid(kids[0], NULL, WNOHANG) == kids[0]) {
			kids[0] = 0;
			printf("    first put that failed: #%ld, %s after %.1f ms, hook called %d times\n",
			       ctl->puts1, lsm_strerror(ctl->rc1), (double)ctl->us1 / 1000, ctl->calls1);
			CHECK_MSG(0, "writer: %s", ctl->msg[0]);
		}
		sleep_ms(1);
	}
	sleep_ms(150);
	bga = (bg_arg){&wh_opts, wh_dir, 0};
	CHECK(spawn(1, bg_main, &bga) > 0);
	if (reap(0, why, sizeof why) != 0) {
		atomic_store(&ctl->stop, 1);
		kill_all();
		CHECK_MSG(0, "%s", why);
	}
	atomic_store(&ctl->stop, 1);
	CHECK_MSG(reap(1, why, sizeof why) == 0, "background: %s", why);
	alarm(0);
	printf("    put #%ld returned %s after %.1f ms, hook called %d times; with a patient "
	       "hook the put waited %.1f ms for the background process (hook called %d times)\n",
	       ctl->puts1, lsm_strerror(ctl->rc1), (double)ctl->us1 / 1000, ctl->calls1,
	       (double)ctl->us2 / 1000, ctl->calls2);
	CHECK_MSG(ctl->calls1 > 0, "lsm_put returned %s without calling wait_hook",
	          lsm_strerror(ctl->rc1));
	if (ctl->rc1 == LSM_BUSY)
		CHECK_MSG(ctl->calls1 == 6, "LSM_BUSY after %d hook calls; the hook said stop at "
		          "call 6", ctl->calls1);
	CHECK_MSG(ctl->us1 < 5000000, "the stalled put took %.1f ms", (double)ctl->us1 / 1000);
	CHECK_MSG(ctl->us2 >= 50000, "the second put did not wait for the flush (%.1f ms)",
	          (double)ctl->us2 / 1000);
	CHECK_MSG(ctl->calls2 > 0, "the hook never ran while the put waited %.1f ms",
	          (double)ctl->us2 / 1000);
	region_destroy();
}
