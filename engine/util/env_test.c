/*
 * env_test.c — tests of the POSIX env (util/env_posix.c) and of the
 * fault-injecting env (util/env_fault.c) wrapped around it.
 *
 * Every test works in its own test_tmpdir and checks results through the
 * env under test and, where the point is what reached the disk, through
 * plain stat()/open() as well, so a bug in the env cannot vouch for itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/wait.h>

#include "lsm.h"
#include "env_fault.h"

#include "testutil.h"

#define RW_CREATE	(LSM_OPEN_WRITE | LSM_OPEN_CREATE)

/* ------------------------------------------------------------- helpers */

static char *
join(char *buf, size_t cap, const char *dir, const char *name)
{
	snprintf(buf, cap, "%s/%s", dir, name);
	return buf;
}

static const char *
fresh_dir(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s", test_tmpdir(name));
	return buf;
}

/* Size as the kernel sees it, or -1 when the file is missing. */
static long long
disk_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long) st.st_size : -1;
}

/* Creates (or truncates) path through env and writes n bytes of data. */
static int
put_file(lsm_env *env, const char *path, const void *data, size_t n)
{
	lsm_file   *f;
	int			rc;

	rc = env->open(env, path, RW_CREATE | LSM_OPEN_TRUNC, &f);
	if (rc != LSM_OK)
		return rc;
	rc = env->write(f, 0, data, n);
	if (rc == LSM_OK)
		rc = env->close(f);
	else
		env->close(f);
	return rc;
}

/* Reads the whole file through plain POSIX calls into buf (cap bytes). */
static long long
disk_read(const char *path, void *buf, size_t cap)
{
	int			fd = open(path, O_RDONLY);
	ssize_t		r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, cap);
	close(fd);
	return r;
}

struct names
{
	int			count;
	char		name[16][32];
	int			stop_after;		/* 0: never stop */
};

static int
collect_name(void *arg, const char *name)
{
	struct names *n = arg;

	if (n->count < 16)
		snprintf(n->name[n->count], sizeof n->name[0], "%s", name);
	n->count++;
	return n->stop_after && n->count >= n->stop_after ? 42 : 0;
}

static int
has_name(const struct names *n, const char *name)
{
	for (int i = 0; i < n->count && i < 16; i++)
		if (strcmp(n->name[i], name) == 0)
			return 1;
	return 0;
}

/*
 * Counts this process's descriptors open on path (found through
 * /proc/self/fd; -1 when that is unavailable) and whether all of them are
 * close-on-exec.
 */
static int
cloexec_fds_on(const char *path, int *all_cloexec)
{
	char		want[PATH_MAX], link[64], got[PATH_MAX];
	int			found = 0;

	*all_cloexec = 1;
	if (realpath(path, want) == NULL || access("/proc/self/fd", R_OK) != 0)
		return -1;
	for (int fd = 0; fd < 1024; fd++)
	{
		ssize_t		n;

		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		if ((n = readlink(link, got, sizeof got - 1)) < 0)
			continue;
		got[n] = '\0';
		if (strcmp(got, want) != 0)
			continue;
		found++;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			*all_cloexec = 0;
	}
	return found;
}

/* ----------------------------------------------------------- posix env */

TEST(posix_write_read_roundtrip)
{
	lsm_env    *env = lsm_env_posix();
	char		dir[512], path[600];
	static uint8_t data[300000], back[300000];
	test_rng	rng;
	lsm_file   *f;
	size_t		got;
	uint64_t	size;

	fresh_dir(dir, sizeof dir, "posix_rw");
	join(path, sizeof path, dir, "f");
	test_rng_seed(&rng, 1);
	test_rng_fill(&rng, data, sizeof data);

	CHECK_OK(env->open(env, path, RW_CREATE, &f));
	/* appended in uneven pieces, as a log writer would */
	CHECK_OK(env->write(f, 0, data, 1));
	CHECK_OK(env->write(f, 1, data + 1, 99999));
	CHECK_OK(env->write(f, 100000, data + 100000, 200000));
	CHECK_OK(env->size(f, &size));
	CHECK_EQ_U64(size, sizeof data);
	CHECK_OK(env->read(f, 0, back, sizeof back, &got));
	CHECK_EQ_U64(got, sizeof data);
	CHECK_MEM(back, got, data, sizeof data);
	CHECK_OK(env->read(f, 12345, back, 1000, &got));
	CHECK_MEM(back, got, data + 12345, 1000);
	/* an overwrite in the middle lands where asked */
	CHECK_OK(env->write(f, 5, "hello", 5));
	CHECK_OK(env->sync(f));
	CHECK_OK(env->close(f));

	CHECK_EQ_INT(disk_size(path), sizeof data);
	CHECK_EQ_INT(disk_read(path, back, sizeof back), sizeof data);
	CHECK_MEM(back + 5, 5, "hello", 5);
	CHECK_MEM(back + 10, sizeof data - 10, data + 10, sizeof data - 10);
}

TEST(posix_short_read_only_at_eof)
{
	lsm_env    *env = lsm_env_posix();
	char		dir[512], path[600];
	uint8_t		buf[64];
	lsm_file   *f;
	size_t		got = 99;

	fresh_dir(dir, sizeof dir, "posix_eof");
	join(path, sizeof path, dir, "f");
	CHECK_OK(put_file(env, path, "0123456789", 10));

	CHECK_OK(env->open(env, path, LSM_OPEN_READ, &f));
	CHECK_OK(env->read(f, 4, buf, sizeof buf, &got));
	CHECK_EQ_U64(got, 6);
	CHECK_MEM(buf, got, "456789", 6);
	CHECK_OK(env->read(f, 10, buf, sizeof buf, &got));
	CHECK_EQ_U64(got, 0);
	CHECK_OK(env->read(f, 1000, buf, sizeof buf, &got));
	CHECK_EQ_U64(got, 0);
	CHECK_OK(env->read(f, 0, buf, 0, &got));
	CHECK_EQ_U64(got, 0);
	/* an offset past what off_t holds is a bad argument, not a crash */
	CHECK_EQ_INT(env->read(f, UINT64_MAX - 2, buf, 8, &got), LSM_INVALID);
	CHECK_OK(env->close(f));
}

TEST(posix_size_and_truncate)
{
	lsm_env    *env = lsm_env_posix();
	char		dir[512], path[600];
	uint8_t		buf[16];
	lsm_file   *f;
	uint64_t	size;
	size_t		got;

	fresh_dir(dir, sizeof dir, "posix_trunc");
	join(path, sizeof path, dir, "f");
	CHECK_OK(env->open(env, path, RW_CREATE, &f));
	CHECK_OK(env->size(f, &size));
	CHECK_EQ_U64(size, 0);
	CHECK_OK(env->write(f, 0, "abcdefghij", 10));
	CHECK_OK(env->truncate(f, 4));
	CHECK_OK(env->size(f, &size));
	CHECK_EQ_U64(size, 4);
	CHECK_OK(env->read(f, 0, buf, sizeof buf, &got));
	CHECK_MEM(buf, got, "abcd", 4);
	/* growing fills with zeros */
	CHECK_OK(env->truncate(f, 6));
	CHECK_OK(env->read(f, 0, buf, sizeof buf, &got));
	CHECK_MEM(buf, got, "abcd\0\0", 6);
	CHECK_OK(env->close(f));
	CHECK_EQ_INT(disk_size(path), 6);

	/* LSM_OPEN_TRUNC empties an existing file */
	CHECK_OK(env->open(env, path, RW_CREATE | LSM_OPEN_TRUNC, &f));
	CHECK_OK(env->size(f, &size));
	CHECK_EQ_U64(size, 0);
	CHECK_OK(env->close(f));
}

TEST(posix_open_flags_and_mode)
{
	lsm_env    *env = lsm_env_posix();
	char		dir[512], path[600], missing[600];
	struct stat st;
	lsm_file   *f = (lsm_file *) &st;
	int			found;
	int			all_cloexec;

	fresh_dir(dir, sizeof dir, "posix_flags");
	join(path, sizeof path, dir, "f");
	join(missing, sizeof missing, dir, "missing");

	CHECK_EQ_INT(env->open(env, missing, LSM_OPEN_READ, &f), LSM_NOTFOUND);
	CHECK(f == NULL);
	CHECK_EQ_INT(env->open(env, missing, LSM_OPEN_WRITE, &f), LSM_NOTFOUND);
	CHECK_EQ_INT(disk_size(missing), -1);
	CHECK_EQ_INT(env->open(env, path, 0, &f), LSM_INVALID);
	CHECK_EQ_INT(env->open(env, path, LSM_OPEN_READ | 0x100, &f), LSM_INVALID);
	CHECK_EQ_INT(env->open(env, path, LSM_OPEN_READ | LSM_OPEN_TRUNC, &f),
				 LSM_INVALID);
	CHECK_EQ_INT(disk_size(path), -1);

	CHECK_OK(env->open(env, path, RW_CREATE, &f));
	CHECK_OK(env->close(f));
	CHECK(stat(path, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);

	/* a read-only handle refuses writes */
	CHECK_OK(env->open(env, path, LSM_OPEN_READ, &f));
	CHECK(env->write(f, 0, "x", 1) != LSM_OK);
	CHECK_OK(env->close(f));
	CHECK_EQ_INT(disk_size(path), 0);

	/* O_CLOEXEC: every descriptor open on the file carries FD_CLOEXEC */
	CHECK_OK(env->open(env, path, LSM_OPEN_READ, &f));
	found = cloexec_fds_on(path, &all_cloexec);
	CHECK_OK(env->close(f));
	if (found >= 0)
	{
		CHECK_EQ_INT(found, 1);
		CHECK(all_cloexec);
	}
}

TEST(posix_rename_and_remove)
{
	lsm_env    *env = lsm_env_posix();
	char		dir[512], a[600], b[600], c[600];
	uint8_t		buf[16];

	fresh_dir(dir, sizeof dir, "posix_rename");
	join(a, sizeof a, dir, "a");
	join(b, sizeof b, dir, "b");
	join(c, sizeof c, dir, "c");
	CHECK_OK(put_file(env, a, "AAA", 3));
	CHECK_OK(put_file(env, c, "CCCCC", 5));

	CHECK_OK(env->rename(env, a, b));
	CHECK_EQ_INT(disk_size(a), -1);
	CHECK_EQ_INT(disk_read(b, buf, sizeof buf), 3);
	CHECK_MEM(buf, 3, "AAA", 3);
	/* rename over an existing file replaces it */
	CHECK_OK(env->rename(env, b, c));
	CHECK_EQ_INT(disk_read(c, buf, sizeof buf), 3);
	CHECK_MEM(buf, 3, "AAA", 3);
	CHECK_EQ_INT(env->rename(env, a, b), LSM_NOTFOUND);

	CHECK_OK(env->remove(env, c));
	CHECK_EQ_INT(disk_size(c), -1);
	CHECK_EQ_INT(env->remove(env, c), LSM_NOTFOUND);
}

TEST(posix_mkdir_and_list_dir)
{
	lsm_env    *env = lsm_env_posix();
	char		dir[512], path[600], sub[600], missing[600];
	struct names names = {0};

	fresh_dir(dir, sizeof dir, "posix_list");
	join(sub, sizeof sub, dir, "sub");
	CHECK_OK(env->mkdir(env, sub));
	CHECK_OK(env->mkdir(env, sub));		/* existing directory: fine */
	CHECK_OK(put_file(env, join(path, sizeof path, dir, "one"), "1", 1));
	CHECK_OK(put_file(env, join(path, sizeof path, dir, "two"), "2", 1));
	/* a file where a directory is wanted is an error */
	CHECK(env->mkdir(env, path) != LSM_OK);
	join(missing, sizeof missing, dir, "no/such");
	CHECK_EQ_INT(env->mkdir(env, missing), LSM_NOTFOUND);

	CHECK_OK(env->list_dir(env, dir, collect_name, &names));
	CHECK_EQ_INT(names.count, 3);
	CHECK(has_name(&names, "one"));
	CHECK(has_name(&names, "two"));
	CHECK(has_name(&names, "sub"));
	CHECK(!has_name(&names, "."));
	CHECK(!has_name(&names, ".."));

	/* a non-zero return from fn stops the walk and is passed back */
	memset(&names, 0, sizeof names);
	names.stop_after = 2;
	CHECK_EQ_INT(env->list_dir(env, dir, collect_name, &names), 42);
	CHECK_EQ_INT(names.count, 2);

	join(missing, sizeof missing, dir, "nodir");
	CHECK_EQ_INT(env->list_dir(env, missing, collect_name, &names),
				 LSM_NOTFOUND);
}

TEST(posix_sync_dir)
{
	lsm_env    *env = lsm_env_posix();
	char		dir[512], missing[600];

	fresh_dir(dir, sizeof dir, "posix_syncdir");
	CHECK_OK(env->sync_dir(env, dir));
	join(missing, sizeof missing, dir, "nodir");
	CHECK_EQ_INT(env->sync_dir(env, missing), LSM_NOTFOUND);
}

TEST(posix_lock_conflicts)
{
	lsm_env    *env = lsm_env_posix();
	char		dir[512], path[600];
	lsm_file   *lock1, *lock2;
	pid_t		pid;
	int			status;

	fresh_dir(dir, sizeof dir, "posix_lock");
	join(path, sizeof path, dir, "LOCK");
	CHECK_OK(env->lock(env, path, &lock1));
	CHECK(disk_size(path) >= 0);		/* created */
	/* the same process, a second open: refused */
	CHECK_EQ_INT(env->lock(env, path, &lock2), LSM_LOCKED);
	CHECK(lock2 == NULL);

	/* another process: refused too */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
	{
		lsm_file   *l;

		_exit(env->lock(env, path, &l) == LSM_LOCKED ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	CHECK_OK(env->unlock(env, lock1));
	CHECK_OK(env->lock(env, path, &lock2));
	CHECK_EQ_INT(env->lock(env, path, &lock1), LSM_LOCKED);
	CHECK_OK(env->unlock(env, lock2));
}

/* /dev/full fails every write with ENOSPC: the mapping to LSM_NOSPACE. */
TEST(posix_nospace_code)
{
	lsm_env    *env = lsm_env_posix();
	lsm_file   *f;
	int			rc;

	if (access("/dev/full", W_OK) != 0)
		return;					/* nothing to test against */
	CHECK_OK(env->open(env, "/dev/full", LSM_OPEN_WRITE, &f));
	rc = env->write(f, 0, "x", 1);
	env->close(f);
	CHECK_EQ_INT(rc, LSM_NOSPACE);
}

TEST(posix_clock)
{
	lsm_env    *env = lsm_env_posix();
	uint64_t	t0 = env->now_micros(env);
	uint64_t	t1;

	env->sleep_micros(env, 3000);
	t1 = env->now_micros(env);
	CHECK_MSG(t1 - t0 >= 3000, "slept %llu us", (unsigned long long) (t1 - t0));
	CHECK(t1 - t0 < 5000000);
}

/* ----------------------------------------------------------- fault env */

TEST(fault_nth_write_fails_once)
{
	lsm_env    *fenv = lsm_fault_env_create(lsm_env_posix());
	char		dir[512], path[600];
	lsm_file   *f;
	uint64_t	size;

	CHECK(fenv != NULL);
	fresh_dir(dir, sizeof dir, "fault_nth");
	join(path, sizeof path, dir, "f");
	CHECK_OK(fenv->open(fenv, path, RW_CREATE, &f));

	lsm_fault_env_fail(fenv, LSM_FAULT_WRITE, 3, LSM_IOERR, 0);
	CHECK_OK(fenv->write(f, 0, "aa", 2));
	CHECK_OK(fenv->write(f, 2, "bb", 2));
	CHECK_EQ_INT(fenv->write(f, 4, "cc", 2), LSM_IOERR);
	/* the failed write never reached the file */
	CHECK_EQ_INT(disk_size(path), 4);
	CHECK_OK(fenv->write(f, 4, "dd", 2));
	CHECK_OK(fenv->write(f, 6, "ee", 2));
	CHECK_OK(fenv->size(f, &size));
	CHECK_EQ_U64(size, 8);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_WRITE), 5);
	CHECK_OK(fenv->close(f));
	lsm_fault_env_destroy(fenv);
}

TEST(fault_sticky_nospace)
{
	lsm_env    *fenv = lsm_fault_env_create(lsm_env_posix());
	char		dir[512], path[600];
	lsm_file   *f;

	CHECK(fenv != NULL);
	fresh_dir(dir, sizeof dir, "fault_sticky");
	join(path, sizeof path, dir, "f");
	CHECK_OK(fenv->open(fenv, path, RW_CREATE, &f));

	lsm_fault_env_fail(fenv, LSM_FAULT_WRITE, 2, LSM_NOSPACE, 1);
	CHECK_OK(fenv->write(f, 0, "a", 1));
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(fenv->write(f, 1, "b", 1), LSM_NOSPACE);
	CHECK_EQ_INT(disk_size(path), 1);
	/* other ops are untouched by a write rule */
	CHECK_OK(fenv->sync(f));
	lsm_fault_env_clear(fenv);
	CHECK_OK(fenv->write(f, 1, "b", 1));
	CHECK_EQ_INT(disk_size(path), 2);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_WRITE), 7);
	CHECK_OK(fenv->close(f));
	lsm_fault_env_destroy(fenv);
}

/* Each kind of call can be failed, and a failed call does not happen. */
TEST(fault_every_op)
{
	lsm_env    *fenv = lsm_fault_env_create(lsm_env_posix());
	char		dir[512], a[600], b[600];
	uint8_t		buf[8];
	lsm_file   *f;
	size_t		got = 7;

	CHECK(fenv != NULL);
	fresh_dir(dir, sizeof dir, "fault_ops");
	join(a, sizeof a, dir, "a");
	join(b, sizeof b, dir, "b");

	lsm_fault_env_fail(fenv, LSM_FAULT_OPEN, 1, LSM_IOERR, 0);
	CHECK_EQ_INT(fenv->open(fenv, a, RW_CREATE, &f), LSM_IOERR);
	CHECK(f == NULL);
	CHECK_EQ_INT(disk_size(a), -1);
	CHECK_OK(fenv->open(fenv, a, RW_CREATE, &f));
	CHECK_OK(fenv->write(f, 0, "abcd", 4));

	lsm_fault_env_fail(fenv, LSM_FAULT_READ, 1, LSM_IOERR, 0);
	CHECK_EQ_INT(fenv->read(f, 0, buf, 4, &got), LSM_IOERR);
	CHECK_EQ_U64(got, 0);
	CHECK_OK(fenv->read(f, 0, buf, 4, &got));
	CHECK_MEM(buf, got, "abcd", 4);

	lsm_fault_env_fail(fenv, LSM_FAULT_SYNC, 1, LSM_IOERR, 0);
	CHECK_EQ_INT(fenv->sync(f), LSM_IOERR);
	CHECK_OK(fenv->sync(f));

	lsm_fault_env_fail(fenv, LSM_FAULT_TRUNCATE, 1, LSM_NOSPACE, 0);
	CHECK_EQ_INT(fenv->truncate(f, 2), LSM_NOSPACE);
	CHECK_EQ_INT(disk_size(a), 4);
	CHECK_OK(fenv->close(f));

	lsm_fault_env_fail(fenv, LSM_FAULT_SYNC_DIR, 1, LSM_IOERR, 0);
	CHECK_EQ_INT(fenv->sync_dir(fenv, dir), LSM_IOERR);
	CHECK_OK(fenv->sync_dir(fenv, dir));

	lsm_fault_env_fail(fenv, LSM_FAULT_RENAME, 1, LSM_IOERR, 0);
	CHECK_EQ_INT(fenv->rename(fenv, a, b), LSM_IOERR);
	CHECK_EQ_INT(disk_size(a), 4);
	CHECK_EQ_INT(disk_size(b), -1);
	CHECK_OK(fenv->rename(fenv, a, b));

	lsm_fault_env_fail(fenv, LSM_FAULT_REMOVE, 1, LSM_IOERR, 0);
	CHECK_EQ_INT(fenv->remove(fenv, b), LSM_IOERR);
	CHECK_EQ_INT(disk_size(b), 4);
	CHECK_OK(fenv->remove(fenv, b));
	CHECK_EQ_INT(disk_size(b), -1);

	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_OPEN), 2);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_READ), 2);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_WRITE), 1);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_SYNC), 2);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_TRUNCATE), 1);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_SYNC_DIR), 2);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_RENAME), 2);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_REMOVE), 2);
	lsm_fault_env_destroy(fenv);
}

TEST(fault_torn_write)
{
	lsm_env    *fenv = lsm_fault_env_create(lsm_env_posix());
	char		dir[512], path[600];
	uint8_t		data[100], back[256];
	lsm_file   *f;

	CHECK(fenv != NULL);
	for (int i = 0; i < 100; i++)
		data[i] = (uint8_t) (i + 1);
	fresh_dir(dir, sizeof dir, "fault_torn");
	join(path, sizeof path, dir, "f");
	CHECK_OK(fenv->open(fenv, path, RW_CREATE, &f));
	CHECK_OK(fenv->write(f, 0, "head", 4));

	lsm_fault_env_tear_next_write(fenv, 37);
	CHECK_EQ_INT(fenv->write(f, 4, data, sizeof data), LSM_IOERR);
	CHECK_EQ_INT(disk_read(path, back, sizeof back), 4 + 37);
	CHECK_MEM(back, 4, "head", 4);
	CHECK_MEM(back + 4, 37, data, 37);

	/* only one write is torn */
	CHECK_OK(fenv->write(f, 41, data, sizeof data));
	CHECK_EQ_INT(disk_size(path), 141);

	/* keep 0 writes nothing; keep >= n writes everything, still fails */
	lsm_fault_env_tear_next_write(fenv, 0);
	CHECK_EQ_INT(fenv->write(f, 141, data, 10), LSM_IOERR);
	CHECK_EQ_INT(disk_size(path), 141);
	lsm_fault_env_tear_next_write(fenv, 1000);
	CHECK_EQ_INT(fenv->write(f, 141, data, 10), LSM_IOERR);
	CHECK_EQ_INT(disk_size(path), 151);

	/* a failure rule wins over a tear, which then waits for the next write */
	lsm_fault_env_fail(fenv, LSM_FAULT_WRITE, 1, LSM_NOSPACE, 0);
	lsm_fault_env_tear_next_write(fenv, 3);
	CHECK_EQ_INT(fenv->write(f, 151, data, 10), LSM_NOSPACE);
	CHECK_EQ_INT(disk_size(path), 151);
	CHECK_EQ_INT(fenv->write(f, 151, data, 10), LSM_IOERR);
	CHECK_EQ_INT(disk_size(path), 154);

	/* clear disarms a pending tear */
	lsm_fault_env_tear_next_write(fenv, 1);
	lsm_fault_env_clear(fenv);
	CHECK_OK(fenv->write(f, 154, data, 10));
	CHECK_EQ_INT(disk_size(path), 164);
	CHECK_OK(fenv->close(f));
	lsm_fault_env_destroy(fenv);
}

TEST(fault_drop_unsynced)
{
	lsm_env    *posix = lsm_env_posix();
	lsm_env    *fenv = lsm_fault_env_create(posix);
	char		dir[512], synced[600], partial[600], nosync[600];
	char		late[600], old[600], tmp[600], moved[600];
	uint8_t		back[64];
	lsm_file   *fs, *fp, *fn, *fl, *fo;
	uint64_t	size;

	CHECK(fenv != NULL);
	fresh_dir(dir, sizeof dir, "fault_drop");
	join(synced, sizeof synced, dir, "synced");
	join(partial, sizeof partial, dir, "partial");
	join(nosync, sizeof nosync, dir, "nosync");
	join(late, sizeof late, dir, "late");
	join(old, sizeof old, dir, "old");
	join(tmp, sizeof tmp, dir, "tmp");
	join(moved, sizeof moved, dir, "moved");

	/* a file that existed before the env saw it counts as synced */
	CHECK_OK(put_file(posix, old, "0123456789", 10));

	CHECK_OK(fenv->open(fenv, synced, RW_CREATE, &fs));
	CHECK_OK(fenv->write(fs, 0, "durable!", 8));
	CHECK_OK(fenv->sync(fs));
	CHECK_OK(fenv->open(fenv, partial, RW_CREATE, &fp));
	CHECK_OK(fenv->write(fp, 0, "keep", 4));
	CHECK_OK(fenv->sync(fp));
	CHECK_OK(fenv->write(fp, 4, "lose", 4));
	CHECK_OK(fenv->open(fenv, nosync, RW_CREATE, &fn));
	CHECK_OK(fenv->write(fn, 0, "never synced", 12));
	CHECK_OK(fenv->open(fenv, old, LSM_OPEN_WRITE, &fo));
	CHECK_OK(fenv->write(fo, 10, "appended", 8));
	CHECK_OK(put_file(fenv, tmp, "renamed-early", 13));
	CHECK_OK(fenv->rename(fenv, tmp, moved));

	/* the directory entries made so far become durable... */
	CHECK_OK(fenv->sync_dir(fenv, dir));
	/* ...but not this file's, created after the sync_dir */
	CHECK_OK(fenv->open(fenv, late, RW_CREATE, &fl));
	CHECK_OK(fenv->write(fl, 0, "late", 4));
	CHECK_OK(fenv->sync(fl));

	CHECK_OK(lsm_fault_env_drop_unsynced(fenv));

	CHECK_EQ_INT(disk_size(synced), 8);
	CHECK_EQ_INT(disk_read(partial, back, sizeof back), 4);
	CHECK_MEM(back, 4, "keep", 4);
	CHECK_EQ_INT(disk_size(nosync), 0);
	CHECK_EQ_INT(disk_read(old, back, sizeof back), 10);
	CHECK_MEM(back, 10, "0123456789", 10);
	CHECK_EQ_INT(disk_size(moved), 0);
	CHECK_EQ_INT(disk_size(tmp), -1);
	CHECK_EQ_INT(disk_size(late), -1);

	/* handles opened before the loss still work on the cut files */
	CHECK_OK(fenv->size(fp, &size));
	CHECK_EQ_U64(size, 4);
	CHECK_OK(fenv->write(fp, 4, "more", 4));
	CHECK_OK(fenv->sync(fp));
	CHECK_OK(fenv->close(fs));
	CHECK_OK(fenv->close(fp));
	CHECK_OK(fenv->close(fn));
	CHECK_OK(fenv->close(fl));
	CHECK_OK(fenv->close(fo));

	/* a second loss keeps what was synced since */
	CHECK_OK(lsm_fault_env_drop_unsynced(fenv));
	CHECK_EQ_INT(disk_read(partial, back, sizeof back), 8);
	CHECK_MEM(back, 8, "keepmore", 8);
	CHECK_EQ_INT(disk_size(synced), 8);
	lsm_fault_env_destroy(fenv);
}

/*
 * A file renamed before its creation was made durable is still not durable
 * under its new name, until that directory is synced.
 */
TEST(fault_drop_rename_and_subdir)
{
	lsm_env    *fenv = lsm_fault_env_create(lsm_env_posix());
	char		dir[512], sub[600], subslash[700], a[700], b[700], c[700];

	CHECK(fenv != NULL);
	fresh_dir(dir, sizeof dir, "fault_subdir");
	join(sub, sizeof sub, dir, "sub");
	snprintf(subslash, sizeof subslash, "%s/", sub);
	CHECK_OK(fenv->mkdir(fenv, sub));
	join(a, sizeof a, sub, "a");
	join(b, sizeof b, sub, "b");
	join(c, sizeof c, dir, "c");

	CHECK_OK(put_file(fenv, a, "AAAA", 4));
	CHECK_OK(put_file(fenv, c, "CCCC", 4));
	/* syncing the parent does not make entries of the subdirectory durable */
	CHECK_OK(fenv->sync_dir(fenv, dir));
	CHECK_OK(fenv->rename(fenv, a, b));
	CHECK_OK(lsm_fault_env_drop_unsynced(fenv));
	CHECK_EQ_INT(disk_size(b), -1);
	CHECK_EQ_INT(disk_size(a), -1);
	CHECK_EQ_INT(disk_size(c), 0);

	/* a trailing slash on sync_dir's path names the same directory */
	CHECK_OK(put_file(fenv, a, "AAAA", 4));
	CHECK_OK(fenv->sync_dir(fenv, subslash));
	CHECK_OK(fenv->rename(fenv, a, b));
	CHECK_OK(lsm_fault_env_drop_unsynced(fenv));
	CHECK_EQ_INT(disk_size(b), 0);	/* name durable, content never synced */
	CHECK_EQ_INT(disk_size(a), -1);

	/* removal through the env forgets the file: it is not resurrected */
	CHECK_OK(fenv->remove(fenv, b));
	CHECK_OK(lsm_fault_env_drop_unsynced(fenv));
	CHECK_EQ_INT(disk_size(b), -1);
	lsm_fault_env_destroy(fenv);
}

TEST(fault_passthrough)
{
	lsm_env    *fenv = lsm_fault_env_create(lsm_env_posix());
	char		dir[512], path[600], lockp[600];
	struct names names = {0};
	lsm_file   *l1, *l2;

	CHECK(fenv != NULL);
	fresh_dir(dir, sizeof dir, "fault_pass");
	CHECK_OK(fenv->mkdir(fenv, join(path, sizeof path, dir, "d")));
	CHECK_OK(put_file(fenv, join(path, sizeof path, dir, "f"), "x", 1));
	CHECK_OK(fenv->list_dir(fenv, dir, collect_name, &names));
	CHECK_EQ_INT(names.count, 2);
	CHECK(has_name(&names, "d") && has_name(&names, "f"));

	join(lockp, sizeof lockp, dir, "LOCK");
	CHECK_OK(fenv->lock(fenv, lockp, &l1));
	CHECK_EQ_INT(fenv->lock(fenv, lockp, &l2), LSM_LOCKED);
	CHECK_OK(fenv->unlock(fenv, l1));
	CHECK_OK(fenv->lock(fenv, lockp, &l2));
	CHECK_OK(fenv->unlock(fenv, l2));
	CHECK(fenv->now_micros(fenv) > 0);
	lsm_fault_env_destroy(fenv);
}

/* ---- counters under concurrency */

#define CONC_THREADS	4
#define CONC_WRITES		2000

struct conc_arg
{
	lsm_env    *env;
	lsm_file   *f;
	int			failures;
	int			other_errors;
};

static void *
conc_writer(void *p)
{
	struct conc_arg *a = p;

	for (int i = 0; i < CONC_WRITES; i++)
	{
		int			rc = a->env->write(a->f, (uint64_t) i * 8, "12345678", 8);

		if (rc == LSM_NOSPACE)
			a->failures++;
		else if (rc != LSM_OK)
			a->other_errors++;
		if (i % 100 == 99 && a->env->sync(a->f) != LSM_OK)
			a->other_errors++;
	}
	return NULL;
}

TEST(fault_counters_exact_under_threads)
{
	lsm_env    *fenv = lsm_fault_env_create(lsm_env_posix());
	char		dir[512], path[600];
	struct conc_arg args[CONC_THREADS];
	pthread_t	th[CONC_THREADS];
	int			failures = 0;

	CHECK(fenv != NULL);
	fresh_dir(dir, sizeof dir, "fault_conc");
	for (int i = 0; i < CONC_THREADS; i++)
	{
		char		name[16];

		snprintf(name, sizeof name, "f%d", i);
		args[i] = (struct conc_arg) {fenv, NULL, 0, 0};
		CHECK_OK(fenv->open(fenv, join(path, sizeof path, dir, name),
							RW_CREATE, &args[i].f));
	}
	/* exactly one of all the threads' writes must fail */
	lsm_fault_env_fail(fenv, LSM_FAULT_WRITE, 3333, LSM_NOSPACE, 0);
	for (int i = 0; i < CONC_THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, conc_writer, &args[i]) == 0);
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < CONC_THREADS; i++)
	{
		CHECK_EQ_INT(args[i].other_errors, 0);
		failures += args[i].failures;
		CHECK_OK(fenv->close(args[i].f));
	}
	CHECK_EQ_INT(failures, 1);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_WRITE),
				 CONC_THREADS * CONC_WRITES);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_SYNC),
				 CONC_THREADS * CONC_WRITES / 100);
	CHECK_EQ_U64(lsm_fault_env_calls(fenv, LSM_FAULT_OPEN), CONC_THREADS);
	lsm_fault_env_destroy(fenv);
}
