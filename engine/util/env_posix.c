/*
 * env_posix.c — the default lsm_env: POSIX files through pread/pwrite.
 *
 * Each env owns the meaning of the lsm_file pointers it hands out; this one
 * defines struct lsm_file (the only definition of that type in the engine)
 * as a wrapper around a file descriptor.  Other envs (env_fault.c) use
 * their own structs behind lsm_file * and never look inside ours.
 *
 * Invariants
 *   - Every descriptor is opened O_CLOEXEC, so a fork+exec elsewhere in the
 *     process (e.g. the PostgreSQL postmaster) never inherits engine files.
 *   - read returns fewer bytes than asked only at end of file; write
 *     returns LSM_OK only when every byte was handed to the kernel.  Both
 *     retry EINTR and continue partial transfers.
 *   - Every errno becomes an LSM_* code through errno_to_code; nothing here
 *     prints, aborts or leaves errno meaningful to the caller.
 *   - Locks are flock() locks, which belong to the open file description:
 *     two lock calls on one path conflict even inside one process (fcntl
 *     locks would not), so a second lsm_open of a directory in the same
 *     process is refused like one from another process.
 *   - A failed fdatasync is reported, never retried: after a failed flush
 *     the kernel may have dropped the dirty pages, so only the caller can
 *     decide what is still durable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>			/* rename */
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lsm.h"

struct lsm_file
{
	int			fd;
};

/* Largest single pread/pwrite: keeps each transfer within ssize_t. */
#define MAX_IO_CHUNK	((size_t) 1 << 30)

static int
errno_to_code(int err)
{
	switch (err)
	{
		case 0:
			return LSM_OK;
		case ENOSPC:
		case EDQUOT:
			return LSM_NOSPACE;
		case ENOENT:
			return LSM_NOTFOUND;
		case ENOMEM:
			return LSM_NOMEM;
		case EINVAL:
		case ENAMETOOLONG:
		case EBADF:
			return LSM_INVALID;
		default:
			/* EIO, EACCES, EPERM, EROFS, ENOTDIR, ... */
			return LSM_IOERR;
	}
}

/* off must fit off_t, and so must off + n, or pread/pwrite would wrap. */
static int
io_range_ok(uint64_t off, size_t n)
{
	const uint64_t max_off = (uint64_t) INT64_MAX;

	return off <= max_off && (uint64_t) n <= max_off - off;
}

static int
open_flags(int flags, int *oflags)
{
	int			of = O_CLOEXEC;

	if ((flags & ~(LSM_OPEN_READ | LSM_OPEN_WRITE |
				   LSM_OPEN_CREATE | LSM_OPEN_TRUNC)) != 0)
		return LSM_INVALID;
	if (flags & LSM_OPEN_WRITE)
		of |= O_RDWR;
	else if (flags & LSM_OPEN_READ)
		of |= O_RDONLY;
	else
		return LSM_INVALID;
	/* O_TRUNC on a read-only descriptor is unspecified by POSIX. */
	if ((flags & LSM_OPEN_TRUNC) && !(flags & LSM_OPEN_WRITE))
		return LSM_INVALID;
	if (flags & LSM_OPEN_CREATE)
		of |= O_CREAT;
	if (flags & LSM_OPEN_TRUNC)
		of |= O_TRUNC;
	*oflags = of;
	return LSM_OK;
}

static int
wrap_fd(int fd, lsm_file **out)
{
	lsm_file   *f = malloc(sizeof *f);

	if (f == NULL)
	{
		close(fd);
		return LSM_NOMEM;
	}
	f->fd = fd;
	*out = f;
	return LSM_OK;
}

static int
posix_open(lsm_env *env, const char *path, int flags, lsm_file **out)
{
	int			oflags;
	int			fd;
	int			rc;

	(void) env;
	if (out == NULL)
		return LSM_INVALID;
	*out = NULL;
	if (path == NULL)
		return LSM_INVALID;
	if ((rc = open_flags(flags, &oflags)) != LSM_OK)
		return rc;
	do
		fd = open(path, oflags, 0600);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno_to_code(errno);
	return wrap_fd(fd, out);
}

static int
posix_read(lsm_file *f, uint64_t off, void *buf, size_t n, size_t *got)
{
	size_t		done = 0;

	*got = 0;
	if (!io_range_ok(off, n))
		return LSM_INVALID;
	while (done < n)
	{
		size_t		chunk = n - done < MAX_IO_CHUNK ? n - done : MAX_IO_CHUNK;
		ssize_t		r = pread(f->fd, (char *) buf + done, chunk,
							  (off_t) (off + done));

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			*got = done;
			return errno_to_code(errno);
		}
		if (r == 0)
			break;				/* end of file */
		done += (size_t) r;
	}
	*got = done;
	return LSM_OK;
}

static int
posix_write(lsm_file *f, uint64_t off, const void *buf, size_t n)
{
	size_t		done = 0;

	if (!io_range_ok(off, n))
		return LSM_INVALID;
	while (done < n)
	{
		size_t		chunk = n - done < MAX_IO_CHUNK ? n - done : MAX_IO_CHUNK;
		ssize_t		r = pwrite(f->fd, (const char *) buf + done, chunk,
							   (off_t) (off + done));

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return errno_to_code(errno);
		}
		/* No progress and no errno: retrying would spin forever. */
		if (r == 0)
			return LSM_IOERR;
		done += (size_t) r;
	}
	return LSM_OK;
}

static int
posix_sync(lsm_file *f)
{
	int			r;

	do
		r = fdatasync(f->fd);
	while (r != 0 && errno == EINTR);
	return r == 0 ? LSM_OK : errno_to_code(errno);
}

static int
posix_truncate(lsm_file *f, uint64_t size)
{
	int			r;

	if (size > (uint64_t) INT64_MAX)
		return LSM_INVALID;
	do
		r = ftruncate(f->fd, (off_t) size);
	while (r != 0 && errno == EINTR);
	return r == 0 ? LSM_OK : errno_to_code(errno);
}

static int
posix_size(lsm_file *f, uint64_t *size)
{
	struct stat st;

	if (fstat(f->fd, &st) != 0)
		return errno_to_code(errno);
	*size = (uint64_t) st.st_size;
	return LSM_OK;
}

/*
 * close() is not retried on EINTR: Linux releases the descriptor anyway,
 * and a retry could close a descriptor another thread just opened.
 */
static int
posix_close(lsm_file *f)
{
	int			rc = LSM_OK;

	if (f == NULL)
		return LSM_OK;
	if (close(f->fd) != 0 && errno != EINTR)
		rc = errno_to_code(errno);
	free(f);
	return rc;
}

static int
posix_remove(lsm_env *env, const char *path)
{
	(void) env;
	if (path == NULL)
		return LSM_INVALID;
	return unlink(path) == 0 ? LSM_OK : errno_to_code(errno);
}

static int
posix_rename(lsm_env *env, const char *from, const char *to)
{
	(void) env;
	if (from == NULL || to == NULL)
		return LSM_INVALID;
	return rename(from, to) == 0 ? LSM_OK : errno_to_code(errno);
}

/* An existing directory is success; an existing non-directory is not. */
static int
posix_mkdir(lsm_env *env, const char *path)
{
	struct stat st;

	(void) env;
	if (path == NULL)
		return LSM_INVALID;
	if (mkdir(path, 0700) == 0)
		return LSM_OK;
	if (errno != EEXIST)
		return errno_to_code(errno);
	if (stat(path, &st) != 0)
		return errno_to_code(errno);
	return S_ISDIR(st.st_mode) ? LSM_OK : LSM_IOERR;
}

/* Makes the directory's entries (creates, renames, removes) durable. */
static int
posix_sync_dir(lsm_env *env, const char *path)
{
	int			fd;
	int			r;
	int			rc;

	(void) env;
	if (path == NULL)
		return LSM_INVALID;
	do
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno_to_code(errno);
	do
		r = fsync(fd);
	while (r != 0 && errno == EINTR);
	rc = r == 0 ? LSM_OK : errno_to_code(errno);
	close(fd);
	return rc;
}

static int
posix_list_dir(lsm_env *env, const char *dir,
			   int (*fn) (void *arg, const char *name), void *arg)
{
	DIR		   *d;
	int			rc = LSM_OK;

	(void) env;
	if (dir == NULL || fn == NULL)
		return LSM_INVALID;
	if ((d = opendir(dir)) == NULL)
		return errno_to_code(errno);
	for (;;)
	{
		struct dirent *e;

		/* readdir reports errors only through errno, and NULL means both. */
		errno = 0;
		if ((e = readdir(d)) == NULL)
		{
			if (errno != 0)
				rc = errno_to_code(errno);
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((rc = fn(arg, e->d_name)) != 0)
			break;
	}
	closedir(d);
	return rc;
}

static int
posix_lock(lsm_env *env, const char *path, lsm_file **out)
{
	int			fd;
	int			r;

	(void) env;
	if (out == NULL)
		return LSM_INVALID;
	*out = NULL;
	if (path == NULL)
		return LSM_INVALID;
	do
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno_to_code(errno);
	do
		r = flock(fd, LOCK_EX | LOCK_NB);
	while (r != 0 && errno == EINTR);
	if (r != 0)
	{
		int			err = errno;

		close(fd);
		return err == EWOULDBLOCK ? LSM_LOCKED : errno_to_code(err);
	}
	return wrap_fd(fd, out);
}

/* Closing the descriptor releases the flock; LOCK_UN first makes it explicit. */
static int
posix_unlock(lsm_env *env, lsm_file *lock)
{
	int			rc = LSM_OK;
	int			crc;

	(void) env;
	if (lock == NULL)
		return LSM_INVALID;
	if (flock(lock->fd, LOCK_UN) != 0)
		rc = errno_to_code(errno);
	crc = posix_close(lock);
	return rc != LSM_OK ? rc : crc;
}

static uint64_t
posix_now_micros(lsm_env *env)
{
	struct timespec ts;

	(void) env;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* Sleeps the whole interval even if signals interrupt it. */
static void
posix_sleep_micros(lsm_env *env, uint64_t micros)
{
	struct timespec req;
	struct timespec rem;

	(void) env;
	req.tv_sec = (time_t) (micros / 1000000u);
	req.tv_nsec = (long) (micros % 1000000u) * 1000;
	while (nanosleep(&req, &rem) != 0 && errno == EINTR)
		req = rem;
}

static lsm_env posix_env = {
	.ctx = NULL,
	.open = posix_open,
	.read = posix_read,
	.write = posix_write,
	.sync = posix_sync,
	.truncate = posix_truncate,
	.size = posix_size,
	.close = posix_close,
	.remove = posix_remove,
	.rename = posix_rename,
	.mkdir = posix_mkdir,
	.sync_dir = posix_sync_dir,
	.list_dir = posix_list_dir,
	.lock = posix_lock,
	.unlock = posix_unlock,
	.now_micros = posix_now_micros,
	.sleep_micros = posix_sleep_micros,
};

lsm_env *
lsm_env_posix(void)
{
	return &posix_env;
}
