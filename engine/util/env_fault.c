/*
 * env_fault.c — a fault-injecting lsm_env wrapping another env (see
 * env_fault.h for what it can do).
 *
 * Handles.  Each env owns the meaning of its lsm_file pointers.  struct
 * lsm_file is defined only by env_posix.c; this env hands out pointers to
 * its own struct fault_file, cast to lsm_file *, and casts them back in
 * every file call.  Inside, fault_file->base is the base env's handle and is
 * passed only to the base env.  Lock handles are the exception: lock and
 * unlock pass straight through, so a lock handle is the base env's own and
 * must only be given back to this env's unlock.
 *
 * Tracking.  Every path opened for writing or creation through this env has
 * one live struct tracked, which records
 *   len            bytes as far as the furthest write through the env;
 *   synced_len     the file's size when its last successful sync began (a
 *                  file that existed before this env first opened it counts
 *                  as synced at the size it had then; a file truncated to
 *                  0 on open counts as synced at 0);
 *   needs_dir_sync set when this env created the file, cleared by a
 *                  successful sync_dir of its directory.
 * Directories are matched by spelling: the text of the path before its
 * last '/' ("." when there is none) against sync_dir's argument without
 * trailing slashes.  Callers must spell one directory one way.
 *
 * Simplifications, all true of how the engine uses files:
 *   - Renames and removes are durable at once.  A rename moves the tracking
 *     to the new name, including needs_dir_sync: a file renamed before its
 *     creation was made durable still disappears on drop_unsynced (under
 *     its new name) until the new name's directory is synced.  A file
 *     whose name was already durable keeps a durable name after a rename,
 *     so drop_unsynced never destroys both an old and a new name.
 *   - Shrinking truncates are durable at once for the content they cut.
 *   - Directories made by mkdir are not tracked.
 *
 * Concurrency.  One mutex guards the rules, counters and tracking; the base
 * env is called outside it except by drop_unsynced, which holds it so that
 * no tracking changes under it.  Power loss is simulated meaningfully only
 * while no other thread is writing.  Entries are reference-counted by open
 * handles, so an entry whose file was removed or renamed over stays valid
 * for the handles still open on it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "env_fault.h"

struct fault_rule
{
	int			armed;
	int			sticky;
	int			code;
	uint64_t	nth;			/* 1-based, counted from arming */
	uint64_t	seen;			/* calls of the op since arming */
};

struct tracked
{
	char	   *path;
	uint64_t	len;
	uint64_t	synced_len;
	int			needs_dir_sync;
	int			live;			/* on the list: path names this file */
	int			refs;			/* open fault_files pointing here */
	struct tracked *next;
};

struct fault_env
{
	lsm_env		env;			/* what callers see; env.ctx == this */
	lsm_env    *base;
	pthread_mutex_t mu;
	struct fault_rule rules[LSM_FAULT_NOPS];
	uint64_t	calls[LSM_FAULT_NOPS];
	int			tear_armed;
	size_t		tear_keep;
	struct tracked *files;		/* live entries only */
};

struct fault_file
{
	struct fault_env *fe;
	lsm_file   *base;
	struct tracked *t;			/* NULL for read-only handles */
};

static struct fault_env *
fe_of(lsm_env *env)
{
	return (struct fault_env *) env->ctx;
}

static struct fault_file *
ff_of(lsm_file *f)
{
	return (struct fault_file *) f;
}

/* ---------------------------------------------------------------- rules */

/* Counts one call of op and says which code, if any, it must fail with. */
static int
count_call_locked(struct fault_env *fe, enum lsm_fault_op op)
{
	struct fault_rule *r = &fe->rules[op];

	fe->calls[op]++;
	if (!r->armed)
		return LSM_OK;
	r->seen++;
	if (r->seen < r->nth)
		return LSM_OK;
	if (!r->sticky)
		r->armed = 0;
	return r->code;
}

static int
count_call(struct fault_env *fe, enum lsm_fault_op op)
{
	int			rc;

	pthread_mutex_lock(&fe->mu);
	rc = count_call_locked(fe, op);
	pthread_mutex_unlock(&fe->mu);
	return rc;
}

/* ------------------------------------------------------------- tracking */

static struct tracked *
find_locked(struct fault_env *fe, const char *path)
{
	for (struct tracked *t = fe->files; t != NULL; t = t->next)
		if (strcmp(t->path, path) == 0)
			return t;
	return NULL;
}

static void
free_tracked(struct tracked *t)
{
	free(t->path);
	free(t);
}

/* Takes t off the list; it lives on until its last open handle closes. */
static void
untrack_locked(struct fault_env *fe, struct tracked *t)
{
	for (struct tracked **pp = &fe->files; *pp != NULL; pp = &(*pp)->next)
	{
		if (*pp == t)
		{
			*pp = t->next;
			break;
		}
	}
	t->next = NULL;
	t->live = 0;
	if (t->refs == 0)
		free_tracked(t);
}

static void
release_locked(struct tracked *t)
{
	if (--t->refs == 0 && !t->live)
		free_tracked(t);
}

/* Length of dir without trailing slashes ("/" keeps its slash). */
static size_t
dir_len(const char *dir)
{
	size_t		n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return n;
}

static int
in_dir(const char *path, const char *dir)
{
	const char *slash = strrchr(path, '/');
	size_t		dn = dir_len(dir);

	if (slash == NULL)
		return (dn == 1 && dir[0] == '.') || dn == 0;
	if (slash == path)
		return dn == 1 && dir[0] == '/';
	return (size_t) (slash - path) == dn && memcmp(path, dir, dn) == 0;
}

/*
 * Records an open for writing: `size` is the file's size just after the
 * open, `created` whether this open created it.
 */
static int
track_open_locked(struct fault_env *fe, const char *path, uint64_t size,
				  int created, struct tracked **out)
{
	struct tracked *t = find_locked(fe, path);

	if (t == NULL)
	{
		if ((t = calloc(1, sizeof *t)) == NULL)
			return LSM_NOMEM;
		if ((t->path = strdup(path)) == NULL)
		{
			free(t);
			return LSM_NOMEM;
		}
		t->synced_len = size;
		t->live = 1;
		t->next = fe->files;
		fe->files = t;
	}
	t->len = size;
	if (t->synced_len > size)
		t->synced_len = size;
	if (created)
		t->needs_dir_sync = 1;
	t->refs++;
	*out = t;
	return LSM_OK;
}

/* --------------------------------------------------------------- files */

/*
 * Opens through the base env, learning whether this open created the file:
 * a first attempt without LSM_OPEN_CREATE fails with LSM_NOTFOUND exactly
 * when the file is missing.
 */
static int
base_open(struct fault_env *fe, const char *path, int flags,
		  lsm_file **bf, int *created)
{
	int			rc;

	*created = 0;
	if (!(flags & LSM_OPEN_CREATE))
		return fe->base->open(fe->base, path, flags, bf);
	rc = fe->base->open(fe->base, path, flags & ~LSM_OPEN_CREATE, bf);
	if (rc != LSM_NOTFOUND)
		return rc;
	rc = fe->base->open(fe->base, path, flags, bf);
	*created = rc == LSM_OK;
	return rc;
}

static int
fault_open(lsm_env *env, const char *path, int flags, lsm_file **out)
{
	struct fault_env *fe = fe_of(env);
	struct fault_file *ff;
	lsm_file   *bf;
	uint64_t	size;
	int			created;
	int			rc;

	if (out == NULL || path == NULL)
		return LSM_INVALID;
	*out = NULL;
	if ((rc = count_call(fe, LSM_FAULT_OPEN)) != LSM_OK)
		return rc;
	if ((ff = calloc(1, sizeof *ff)) == NULL)
		return LSM_NOMEM;
	ff->fe = fe;
	if ((rc = base_open(fe, path, flags, &bf, &created)) != LSM_OK)
	{
		free(ff);
		return rc;
	}
	ff->base = bf;
	if (flags & (LSM_OPEN_WRITE | LSM_OPEN_CREATE))
	{
		rc = fe->base->size(bf, &size);
		if (rc == LSM_OK)
		{
			pthread_mutex_lock(&fe->mu);
			rc = track_open_locked(fe, path, size, created, &ff->t);
			pthread_mutex_unlock(&fe->mu);
		}
		if (rc != LSM_OK)
		{
			fe->base->close(bf);
			free(ff);
			return rc;
		}
	}
	*out = (lsm_file *) ff;
	return LSM_OK;
}

static int
fault_read(lsm_file *f, uint64_t off, void *buf, size_t n, size_t *got)
{
	struct fault_file *ff = ff_of(f);
	int			rc;

	*got = 0;
	if ((rc = count_call(ff->fe, LSM_FAULT_READ)) != LSM_OK)
		return rc;
	return ff->fe->base->read(ff->base, off, buf, n, got);
}

/*
 * An injected failure writes nothing.  A torn write passes a prefix to the
 * base env and then fails; an armed failure rule takes precedence over an
 * armed tear, which then waits for the next write.
 */
static int
fault_write(lsm_file *f, uint64_t off, const void *buf, size_t n)
{
	struct fault_file *ff = ff_of(f);
	struct fault_env *fe = ff->fe;
	size_t		pass = n;
	int			torn = 0;
	int			rc;

	pthread_mutex_lock(&fe->mu);
	rc = count_call_locked(fe, LSM_FAULT_WRITE);
	if (rc == LSM_OK && fe->tear_armed)
	{
		fe->tear_armed = 0;
		torn = 1;
		if (fe->tear_keep < n)
			pass = fe->tear_keep;
	}
	pthread_mutex_unlock(&fe->mu);
	if (rc != LSM_OK)
		return rc;

	rc = pass > 0 ? fe->base->write(ff->base, off, buf, pass) : LSM_OK;
	if (rc == LSM_OK && ff->t != NULL)
	{
		pthread_mutex_lock(&fe->mu);
		if (ff->t->len < off + pass)
			ff->t->len = off + pass;
		pthread_mutex_unlock(&fe->mu);
	}
	if (rc == LSM_OK && torn)
		rc = LSM_IOERR;
	return rc;
}

/*
 * The size is read before the base sync starts: every byte present then is
 * covered by the sync, whatever concurrent writes do meanwhile.  The real
 * size (not len) is used so that a base write that failed half-way is
 * still accounted for.
 */
static int
fault_sync(lsm_file *f)
{
	struct fault_file *ff = ff_of(f);
	struct fault_env *fe = ff->fe;
	uint64_t	size = 0;
	int			rc;

	if ((rc = count_call(fe, LSM_FAULT_SYNC)) != LSM_OK)
		return rc;
	if (ff->t != NULL && (rc = fe->base->size(ff->base, &size)) != LSM_OK)
		return rc;
	if ((rc = fe->base->sync(ff->base)) != LSM_OK)
		return rc;
	if (ff->t != NULL)
	{
		pthread_mutex_lock(&fe->mu);
		if (ff->t->synced_len < size)
			ff->t->synced_len = size;
		pthread_mutex_unlock(&fe->mu);
	}
	return LSM_OK;
}

static int
fault_truncate(lsm_file *f, uint64_t size)
{
	struct fault_file *ff = ff_of(f);
	struct fault_env *fe = ff->fe;
	int			rc;

	if ((rc = count_call(fe, LSM_FAULT_TRUNCATE)) != LSM_OK)
		return rc;
	if ((rc = fe->base->truncate(ff->base, size)) != LSM_OK)
		return rc;
	if (ff->t != NULL)
	{
		pthread_mutex_lock(&fe->mu);
		ff->t->len = size;
		if (ff->t->synced_len > size)
			ff->t->synced_len = size;
		pthread_mutex_unlock(&fe->mu);
	}
	return LSM_OK;
}

static int
fault_size(lsm_file *f, uint64_t *size)
{
	struct fault_file *ff = ff_of(f);

	return ff->fe->base->size(ff->base, size);
}

static int
fault_close(lsm_file *f)
{
	struct fault_file *ff = ff_of(f);
	struct fault_env *fe;
	int			rc;

	if (ff == NULL)
		return LSM_OK;
	fe = ff->fe;
	rc = fe->base->close(ff->base);
	if (ff->t != NULL)
	{
		pthread_mutex_lock(&fe->mu);
		release_locked(ff->t);
		pthread_mutex_unlock(&fe->mu);
	}
	free(ff);
	return rc;
}

/* ---------------------------------------------------------- namespace */

static int
fault_remove(lsm_env *env, const char *path)
{
	struct fault_env *fe = fe_of(env);
	struct tracked *t;
	int			rc;

	if (path == NULL)
		return LSM_INVALID;
	if ((rc = count_call(fe, LSM_FAULT_REMOVE)) != LSM_OK)
		return rc;
	if ((rc = fe->base->remove(fe->base, path)) != LSM_OK)
		return rc;
	pthread_mutex_lock(&fe->mu);
	if ((t = find_locked(fe, path)) != NULL)
		untrack_locked(fe, t);
	pthread_mutex_unlock(&fe->mu);
	return LSM_OK;
}

static int
fault_rename(lsm_env *env, const char *from, const char *to)
{
	struct fault_env *fe = fe_of(env);
	struct tracked *src;
	struct tracked *dst;
	char	   *to_copy;
	int			rc;

	if (from == NULL || to == NULL)
		return LSM_INVALID;
	if ((rc = count_call(fe, LSM_FAULT_RENAME)) != LSM_OK)
		return rc;
	/* Allocated first: after the base rename the tracking must not fail. */
	if ((to_copy = strdup(to)) == NULL)
		return LSM_NOMEM;
	if ((rc = fe->base->rename(fe->base, from, to)) != LSM_OK ||
		strcmp(from, to) == 0)
	{
		free(to_copy);
		return rc;
	}
	pthread_mutex_lock(&fe->mu);
	if ((dst = find_locked(fe, to)) != NULL)
		untrack_locked(fe, dst);
	if ((src = find_locked(fe, from)) != NULL)
	{
		free(src->path);
		src->path = to_copy;
		to_copy = NULL;
	}
	pthread_mutex_unlock(&fe->mu);
	free(to_copy);
	return LSM_OK;
}

static int
fault_mkdir(lsm_env *env, const char *path)
{
	lsm_env    *base = fe_of(env)->base;

	return base->mkdir(base, path);
}

static int
fault_sync_dir(lsm_env *env, const char *path)
{
	struct fault_env *fe = fe_of(env);
	int			rc;

	if (path == NULL)
		return LSM_INVALID;
	if ((rc = count_call(fe, LSM_FAULT_SYNC_DIR)) != LSM_OK)
		return rc;
	if ((rc = fe->base->sync_dir(fe->base, path)) != LSM_OK)
		return rc;
	pthread_mutex_lock(&fe->mu);
	for (struct tracked *t = fe->files; t != NULL; t = t->next)
		if (in_dir(t->path, path))
			t->needs_dir_sync = 0;
	pthread_mutex_unlock(&fe->mu);
	return LSM_OK;
}

static int
fault_list_dir(lsm_env *env, const char *dir,
			   int (*fn) (void *arg, const char *name), void *arg)
{
	lsm_env    *base = fe_of(env)->base;

	return base->list_dir(base, dir, fn, arg);
}

static int
fault_lock(lsm_env *env, const char *path, lsm_file **out)
{
	lsm_env    *base = fe_of(env)->base;

	return base->lock(base, path, out);
}

static int
fault_unlock(lsm_env *env, lsm_file *lock)
{
	lsm_env    *base = fe_of(env)->base;

	return base->unlock(base, lock);
}

static uint64_t
fault_now_micros(lsm_env *env)
{
	lsm_env    *base = fe_of(env)->base;

	return base->now_micros(base);
}

static void
fault_sleep_micros(lsm_env *env, uint64_t micros)
{
	lsm_env    *base = fe_of(env)->base;

	base->sleep_micros(base, micros);
}

/* ---------------------------------------------------------- public API */

lsm_env *
lsm_fault_env_create(lsm_env *base)
{
	struct fault_env *fe;

	if (base == NULL)
		return NULL;
	if ((fe = calloc(1, sizeof *fe)) == NULL)
		return NULL;
	if (pthread_mutex_init(&fe->mu, NULL) != 0)
	{
		free(fe);
		return NULL;
	}
	fe->base = base;
	fe->env = (lsm_env) {
		.ctx = fe,
		.open = fault_open,
		.read = fault_read,
		.write = fault_write,
		.sync = fault_sync,
		.truncate = fault_truncate,
		.size = fault_size,
		.close = fault_close,
		.remove = fault_remove,
		.rename = fault_rename,
		.mkdir = fault_mkdir,
		.sync_dir = fault_sync_dir,
		.list_dir = fault_list_dir,
		.lock = fault_lock,
		.unlock = fault_unlock,
		.now_micros = fault_now_micros,
		.sleep_micros = fault_sleep_micros,
	};
	return &fe->env;
}

/* Every file handle must be closed first: their entries are freed here. */
void
lsm_fault_env_destroy(lsm_env *env)
{
	struct fault_env *fe;
	struct tracked *t;

	if (env == NULL)
		return;
	fe = fe_of(env);
	while ((t = fe->files) != NULL)
	{
		fe->files = t->next;
		free_tracked(t);
	}
	pthread_mutex_destroy(&fe->mu);
	free(fe);
}

/*
 * nth 0 is taken as 1 (the next call).  code LSM_OK disarms op's rule, since
 * a "failure" that returns success without doing the call would only
 * hide writes.
 */
void
lsm_fault_env_fail(lsm_env *env, enum lsm_fault_op op, uint64_t nth,
				   int code, int sticky)
{
	struct fault_env *fe = fe_of(env);
	struct fault_rule *r;

	if ((unsigned) op >= LSM_FAULT_NOPS)
		return;
	r = &fe->rules[op];
	pthread_mutex_lock(&fe->mu);
	r->armed = code != LSM_OK;
	r->sticky = sticky != 0;
	r->code = code;
	r->nth = nth == 0 ? 1 : nth;
	r->seen = 0;
	pthread_mutex_unlock(&fe->mu);
}

void
lsm_fault_env_tear_next_write(lsm_env *env, size_t keep)
{
	struct fault_env *fe = fe_of(env);

	pthread_mutex_lock(&fe->mu);
	fe->tear_armed = 1;
	fe->tear_keep = keep;
	pthread_mutex_unlock(&fe->mu);
}

void
lsm_fault_env_clear(lsm_env *env)
{
	struct fault_env *fe = fe_of(env);

	pthread_mutex_lock(&fe->mu);
	for (int i = 0; i < LSM_FAULT_NOPS; i++)
		fe->rules[i].armed = 0;
	fe->tear_armed = 0;
	pthread_mutex_unlock(&fe->mu);
}

uint64_t
lsm_fault_env_calls(lsm_env *env, enum lsm_fault_op op)
{
	struct fault_env *fe = fe_of(env);
	uint64_t	n;

	if ((unsigned) op >= LSM_FAULT_NOPS)
		return 0;
	pthread_mutex_lock(&fe->mu);
	n = fe->calls[op];
	pthread_mutex_unlock(&fe->mu);
	return n;
}

/*
 * Cuts one tracked file back to its synced length.  It is opened afresh
 * by path through the base env, so handles still open on it (through this
 * env) need not be found; they keep working on the shortened file.
 */
static int
drop_file_locked(struct fault_env *fe, struct tracked *t)
{
	lsm_env    *base = fe->base;
	lsm_file   *bf;
	uint64_t	size;
	int			rc;

	rc = base->open(base, t->path, LSM_OPEN_WRITE, &bf);
	if (rc == LSM_NOTFOUND)
	{
		/* removed behind this env's back: nothing left to cut */
		untrack_locked(fe, t);
		return LSM_OK;
	}
	if (rc != LSM_OK)
		return rc;
	rc = base->size(bf, &size);
	/* Only ever shrink: growing would invent zero bytes. */
	if (rc == LSM_OK && size > t->synced_len)
		rc = base->truncate(bf, t->synced_len);
	if (rc == LSM_OK)
		t->len = t->synced_len < size ? t->synced_len : size;
	if (base->close(bf) != LSM_OK && rc == LSM_OK)
		rc = LSM_IOERR;
	return rc;
}

int
lsm_fault_env_drop_unsynced(lsm_env *env)
{
	struct fault_env *fe = fe_of(env);
	struct tracked *t;
	struct tracked *next;
	int			first_rc = LSM_OK;

	pthread_mutex_lock(&fe->mu);
	for (t = fe->files; t != NULL; t = next)
	{
		int			rc;

		next = t->next;
		if (t->needs_dir_sync)
		{
			rc = fe->base->remove(fe->base, t->path);
			if (rc == LSM_OK || rc == LSM_NOTFOUND)
			{
				untrack_locked(fe, t);
				rc = LSM_OK;
			}
		}
		else
			rc = drop_file_locked(fe, t);
		/* Keep going: a partial power loss is no use to a test. */
		if (first_rc == LSM_OK)
			first_rc = rc;
	}
	pthread_mutex_unlock(&fe->mu);
	return first_rc;
}
