/*
 * db.c — opening, writing, reading and closing a database.
 *
 * Write path (lsm_write)
 *   1. Under write_mu: hand out the batch's sequences, allocate its memtable
 *      nodes as one arena chunk (LSM_FULL, with nothing logged, when they do
 *      not fit) and append its record to the WAL buffer.  All three are
 *      cheap copies; the lock is never held across an fsync except when a
 *      WAL segment rotates.
 *   2. Without any engine lock: make the record durable when the write or
 *      the sync policy asks for it (group commit), then build and link the
 *      nodes into the lock-free skip list, concurrently with other writers.
 *   3. Publish: mark the ticket done; visible_seq moves past it once every
 *      earlier batch is in too.  Readers read at visible_seq, so a batch
 *      becomes visible all at once and never before an earlier one.  The
 *      writer returns when visible_seq covers its batch or, with
 *      defer_visibility, at once: then the handle remembers the sequence,
 *      and its own reads (get, iterator, snapshot) and lsm_close wait for
 *      it first.  Two writers on two cores finish their inserts in random
 *      order, so the one holding the later ticket waits for the other half
 *      the time: a fifth of a 2-process fillrandom went on that wait.
 *   A batch whose WAL append or sync failed is not inserted, but its
 *   sequences are still published (as empty) so later writers never wait on
 *   it; the WAL error is sticky and further writes fail until reopen.
 *
 * Open: lock the directory, replay every WAL segment in order into the
 * memtable, then start a new segment.  At this stage data lives only in the
 * memtable and the WAL, so segments are kept until the database is removed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "dbint.h"
#include "status.h"

#define IDENTITY_NAME "IDENTITY"
#define IDENTITY_TEXT "lsm engine database, format 1\n"
#define REGION_ALIGN  64
#define CACHE_SHARDS  16

void lsm_options_init(lsm_options *o)
{
	memset(o, 0, sizeof *o);
	o->create_if_missing = 1;
	o->memtable_size = 64u << 20;
	o->wal_buffer_size = 1u << 20;
	o->wal_segment_size = 64u << 20;
	o->wal_group_wait_micros = 500;
	o->max_memtables = 3;
	o->background_thread = 1;
	o->block_size = 4096;
	o->bloom_bits_per_key = 10;
	o->compression = 1;
	o->block_cache_size = 32u << 20;
	o->table_cache_size = 64u << 20;
	o->max_open_files = 1000;
	o->l0_compaction_trigger = 4;
	o->l0_slowdown_trigger = 20;
	o->l0_stop_trigger = 36;
	o->max_bytes_for_level_base = 256u << 20;
	o->level_size_multiplier = 10;
	o->target_file_size = 64u << 20;
	o->max_processes = 64;
}

static int check_options(const lsm_options *o)
{
	if (o->memtable_size < 64 * 1024 || o->memtable_size > UINT32_MAX)
		return LSM_INVALID;
	if (o->wal_buffer_size < 4096 || o->wal_buffer_size > (1u << 30))
		return LSM_INVALID;
	if (o->wal_segment_size < 4096)
		return LSM_INVALID;
	if (o->max_memtables < 2 || o->max_memtables > LSM_MAX_MEMTABLES)
		return LSM_INVALID;
	if (o->block_size < 256 || o->block_size > (4u << 20) ||
	    o->bloom_bits_per_key < 0 || o->bloom_bits_per_key > 64 ||
	    (o->compression != 0 && o->compression != 1) ||
	    (o->block_cache_size != 0 && o->block_cache_size < lsm_cache_min_size(CACHE_SHARDS)) ||
	    o->l0_compaction_trigger < 1 || o->l0_slowdown_trigger < o->l0_compaction_trigger ||
	    o->l0_stop_trigger < o->l0_slowdown_trigger ||
	    o->max_bytes_for_level_base < 4096 || o->level_size_multiplier < 2 ||
	    o->target_file_size < 4096 || o->max_open_files < 1 ||
	    o->max_processes < 1 || o->max_processes > 4096)
		return LSM_INVALID;
	return LSM_OK;
}

static size_t align_up(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

/* ---------------------------------------------------------------- region */

static int init_mutex(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	/* Critical sections are a few hundred nanoseconds: spin a little
	 * before sleeping in the kernel. */
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return rc == 0 ? LSM_OK : LSM_NOMEM;
}

static int init_cond(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int rc;

	pthread_condattr_init(&a);
	pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	rc = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return rc == 0 ? LSM_OK : LSM_NOMEM;
}

/* Region layout: header, WAL buffer, process slots, block cache, then
 * max_memtables arenas, each starting on a 2 MiB boundary so huge pages
 * can back them. */
#define ARENA_ALIGN ((size_t)2 << 20)

typedef struct region_layout {
	size_t wal_off, procs_off, cache_off, arena_off, size;
	uint32_t n_procs;
} region_layout;

static void region_plan(const lsm_options *o, int shared, region_layout *l)
{
	size_t n = align_up(sizeof(lsm_region), REGION_ALIGN);

	l->n_procs = shared ? (uint32_t)o->max_processes : 1;
	l->wal_off = n;
	n = align_up(n + o->wal_buffer_size, REGION_ALIGN);
	l->procs_off = n;
	n = align_up(n + l->n_procs * sizeof(lsm_proc_slot), REGION_ALIGN);
	l->cache_off = n;
	n = align_up(n + o->block_cache_size, ARENA_ALIGN);
	l->arena_off = n;
	l->size = n + (size_t)o->max_memtables * align_up(o->memtable_size, ARENA_ALIGN);
}

/* Lays out a region in mem (l->size bytes) and initialises its locks,
 * first arena and cache: no I/O. */
static int region_format(lsm_region *r, const region_layout *l, const lsm_options *o,
                         int shared)
{
	pthread_mutex_t *mutexes[] = {&r->write_mu, &r->bg_mu, &r->sync_mu, &r->publish_mu,
	                              &r->snap_mu, &r->open_mu, &r->flush_mu,
	                              &r->compact_mu, &r->manifest_mu};
	pthread_cond_t *conds[] = {&r->flush_cv, &r->stall_cv, &r->publish_cv, &r->sync_cv};
	int rc = LSM_OK;

	memset(r, 0, sizeof *r);
	r->size = l->size;
	r->shared = shared;
	r->wal.buf_off = l->wal_off;
	r->wal.buf_cap = o->wal_buffer_size;
	r->procs_off = l->procs_off;
	r->n_procs = l->n_procs;
	memset(lsm_region_procs(r), 0, l->n_procs * sizeof(lsm_proc_slot));
	r->cache_off = l->cache_off;
	r->cache_size = o->block_cache_size;
	r->arena_size = o->memtable_size & ~(size_t)7;
	r->n_mem = (uint32_t)o->max_memtables;
	for (uint32_t i = 0; i < r->n_mem; i++)
		r->mem[i].arena_off = l->arena_off + i * align_up(o->memtable_size, ARENA_ALIGN);
	for (size_t i = 0; i < sizeof mutexes / sizeof *mutexes && rc == LSM_OK; i++)
		rc = init_mutex(mutexes[i]);
	for (size_t i = 0; i < sizeof conds / sizeof *conds && rc == LSM_OK; i++)
		rc = init_cond(conds[i]);
	if (rc == LSM_OK)
		rc = lsm_arena_init(lsm_slot_arena(r, 0), r->arena_size);
	if (rc == LSM_OK && r->cache_size)
		rc = lsm_cache_init(lsm_region_cache_mem(r), r->cache_size, CACHE_SHARDS);
	if (rc == LSM_OK)
		r->magic = LSM_REGION_MAGIC;     /* last: a region is usable once set */
	return rc;
}

static int region_create(const lsm_options *o, lsm_region **out)
{
	region_layout l;
	lsm_region *r;
	int rc;

	*out = NULL;
	region_plan(o, 0, &l);
	/* Anonymous pages, huge where the kernel allows: a skip-list search is
	 * a chain of cache misses over the whole arena, and TLB misses on top
	 * of them cost 10-20%. */
	r = mmap(NULL, l.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return LSM_NOMEM;
	madvise(r, l.size, MADV_HUGEPAGE);
	if ((rc = region_format(r, &l, o, 0)) != LSM_OK) {
		munmap(r, l.size);
		return rc;
	}
	*out = r;
	return LSM_OK;
}

/* Private mode only: the region is this handle's. */
static void region_destroy(lsm_region *r)
{
	pthread_mutex_t *mutexes[] = {&r->write_mu, &r->bg_mu, &r->sync_mu, &r->publish_mu,
	                              &r->snap_mu, &r->open_mu, &r->flush_mu,
	                              &r->compact_mu, &r->manifest_mu};
	pthread_cond_t *conds[] = {&r->flush_cv, &r->stall_cv, &r->publish_cv, &r->sync_cv};

	for (size_t i = 0; i < sizeof mutexes / sizeof *mutexes; i++)
		pthread_mutex_destroy(mutexes[i]);
	for (size_t i = 0; i < sizeof conds / sizeof *conds; i++)
		pthread_cond_destroy(conds[i]);
	munmap(r, r->size);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/*
 * Shared mode: the initializing process allocates the arenas' pages once,
 * up front.  Otherwise the first writer to touch a page allocates and
 * zeroes it while holding its folio lock, and a second process faulting
 * the same page (writers fill one arena side by side) sleeps on that lock:
 * a tenth of the context switches of two-process fillrandom.  Each process
 * still maps the pages it writes (prefault_arena), but mapping a page that
 * exists is cheap.  Best effort: kernels before 5.14 say EINVAL and the
 * pages are allocated on first touch, as before.
 */
static void populate_arenas(void *mem, const region_layout *l)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	/* the region itself need not start on a page (PostgreSQL's does not) */
	uintptr_t from = ((uintptr_t)mem + l->arena_off + page - 1) & ~(page - 1);
	uintptr_t to = ((uintptr_t)mem + l->size) & ~(page - 1);

	if (to > from)
		(void)madvise((void *)from, (size_t)(to - from), MADV_POPULATE_WRITE);
}

size_t lsm_shared_size(const lsm_options *opts)
{
	region_layout l;

	if (opts == NULL || check_options(opts) != LSM_OK)
		return 0;
	region_plan(opts, 1, &l);
	return l.size;
}

int lsm_shared_init(void *mem, size_t size, const lsm_options *opts)
{
	region_layout l;
	int rc;

	if (mem == NULL || opts == NULL || check_options(opts) != LSM_OK ||
	    ((uintptr_t)mem & (REGION_ALIGN - 1)) != 0)
		return LSM_INVALID;
	region_plan(opts, 1, &l);
	if (size < l.size)
		return LSM_INVALID;
	rc = region_format(mem, &l, opts, 1);
	if (rc == LSM_OK)
		populate_arenas(mem, &l);
	return rc;
}

/* A slot in the region for this process (shared: one per attached
 * process; a slot whose process is gone is reused). */
static int claim_proc_slot(lsm_db *db)
{
	lsm_region *r = db->region;
	lsm_proc_slot *procs = lsm_region_procs(r);
	uint32_t pid = (uint32_t)getpid();

	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < r->n_procs; i++) {
			uint32_t expect = atomic_load(&procs[i].pid);

			if (pass == 1 && expect != 0 && kill((pid_t)expect, 0) != 0 && errno == ESRCH)
				;                 /* its process is gone: take it over */
			else if (expect != 0)
				continue;
			if (!atomic_compare_exchange_strong(&procs[i].pid, &expect, pid))
				continue;
			atomic_store(&procs[i].cur_pins, 0);
			atomic_store(&procs[i].cur_edit, 0);
			atomic_store(&procs[i].old_edit, UINT64_MAX);
			atomic_store(&procs[i].pending_floor, UINT64_MAX);
			/* a dead process's pins went with it */
			for (int m = 0; m < LSM_MAX_MEMTABLES; m++)
				atomic_store(&procs[i].mem_pins[m], 0);
			db->proc = &procs[i];
			return LSM_OK;
		}
	return LSM_BUSY;
}

static void release_proc_slot(lsm_db *db)
{
	if (db->proc == NULL)
		return;
	atomic_store(&db->proc->pending_floor, UINT64_MAX);
	atomic_store(&db->proc->old_edit, UINT64_MAX);
	atomic_store(&db->proc->cur_pins, 0);
	atomic_store(&db->proc->pid, 0);
	db->proc = NULL;
}

/* ---------------------------------------------------------------- open */

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* The identity file marks a directory as a database. */
static int check_identity(lsm_db *db, int *exists)
{
	char *path = path_join(db->dir, IDENTITY_NAME);
	char buf[64];
	size_t got = 0;
	lsm_file *f;
	int rc;

	*exists = 0;
	if (path == NULL)
		return LSM_NOMEM;
	rc = db->env->open(db->env, path, LSM_OPEN_READ, &f);
	free(path);
	if (rc == LSM_NOTFOUND)
		return LSM_OK;
	if (rc != LSM_OK)
		return rc;
	rc = db->env->read(f, 0, buf, sizeof buf, &got);
	db->env->close(f);
	if (rc != LSM_OK)
		return rc;
	if (got != strlen(IDENTITY_TEXT) || memcmp(buf, IDENTITY_TEXT, got) != 0)
		return LSM_CORRUPTION;
	*exists = 1;
	return LSM_OK;
}

/* Written whole under a temporary name and renamed: a crash leaves either
 * no identity (the creation starts over) or a complete one. */
static int write_identity(lsm_db *db)
{
	char *path = path_join(db->dir, IDENTITY_NAME);
	char *tmp = path_join(db->dir, IDENTITY_NAME ".tmp");
	lsm_file *f;
	int rc;

	if (path == NULL || tmp == NULL) {
		rc = LSM_NOMEM;
		goto out;
	}
	rc = db->env->open(db->env, tmp, LSM_OPEN_WRITE | LSM_OPEN_CREATE | LSM_OPEN_TRUNC, &f);
	if (rc != LSM_OK)
		goto out;
	rc = db->env->write(f, 0, IDENTITY_TEXT, strlen(IDENTITY_TEXT));
	if (rc == LSM_OK)
		rc = db->env->sync(f);
	db->env->close(f);
	if (rc == LSM_OK)
		rc = db->env->rename(db->env, tmp, path);
	if (rc == LSM_OK)
		rc = db->env->sync_dir(db->env, db->dir);
out:
	free(path);
	free(tmp);
	return rc;
}

/* Makes `slot` (claimed, RESETTING) the active memtable, its records
 * starting in WAL segment wal_seg.  Caller holds write_mu (or recovers). */
void lsm_db_activate(lsm_region *r, int slot, uint64_t wal_seg)
{
	lsm_memslot *m = &r->mem[slot];

	m->gen = atomic_fetch_add(&r->mem_gen, 1) + 1;
	m->wal_seg = wal_seg;
	r->active = (uint32_t)slot;
	atomic_store(&m->state, LSM_MEM_ACTIVE);
}

/* Retires the active memtable from writing and wakes the flusher. */
void lsm_db_freeze_active(lsm_region *r)
{
	/* every sequence handed out so far went into it or an older one: set
	 * once here, not by each write (a store per write made the slot's
	 * cache line travel between the writers' cores) */
	atomic_store_explicit(&r->mem[r->active].last_seq, r->last_seq, memory_order_relaxed);
	atomic_store(&r->mem[r->active].state, LSM_MEM_IMMUTABLE);
	pthread_mutex_lock(&r->bg_mu);
	pthread_cond_broadcast(&r->flush_cv);
	pthread_mutex_unlock(&r->bg_mu);
}

static void db_free(lsm_db *db)
{
	lsm_bg_stop(db);
	lsm_tcache_free(&db->tcache);
	lsm_fileset_close(db);
	release_proc_slot(db);
	if (db->lock)
		db->env->unlock(db->env, db->lock);
	pthread_mutex_destroy(&db->wal_fd_mu);
	pthread_mutex_destroy(&db->iters_mu);
	pthread_mutex_destroy(&db->version_mu);
	if (!db->shared && db->region)
		region_destroy(db->region);
	free(db->dir);
	free(db);
}

/* A handle with its process-local parts; no region yet. */
static int db_new(const lsm_options *opts, const char *dir, lsm_db **out)
{
	lsm_db *db;

	*out = NULL;
	if (dir == NULL || check_options(opts) != LSM_OK)
		return LSM_INVALID;
	if ((db = calloc(1, sizeof *db)) == NULL)
		return LSM_NOMEM;
	db->opts = *opts;
	db->env = opts->env ? opts->env : lsm_env_posix();
	db->opts.env = db->env;
	db->unlisted_edit = UINT64_MAX;
	pthread_mutex_init(&db->wal_fd_mu, NULL);
	pthread_mutex_init(&db->iters_mu, NULL);
	pthread_mutex_init(&db->version_mu, NULL);
	lsm_table_options_init(&db->table_opts);
	db->table_opts.block_size = opts->block_size;
	db->table_opts.bloom_bits_per_key = opts->bloom_bits_per_key;
	db->table_opts.compression = opts->compression;
	if (lsm_tcache_init(&db->tcache, opts->table_cache_size,
	                    (size_t)opts->max_open_files) != LSM_OK || (db->dir = strdup(dir)) == NULL) {
		db_free(db);
		return LSM_NOMEM;
	}
	*out = db;
	return LSM_OK;
}

/* Joins the region: its cache and a process slot. */
static int db_attach_region(lsm_db *db, lsm_region *r)
{
	db->region = r;
	db->cache = r->cache_size ? lsm_cache_attach(lsm_region_cache_mem(r)) : NULL;
	return claim_proc_slot(db);
}

/* The identity check, the file set, WAL recovery into the region's
 * memtables, and the removal of what a crash left behind: everything the
 * first opener of a region does. */
static int recover_from_disk(lsm_db *db)
{
	const lsm_options *opts = &db->opts;
	int rc, exists;

	if ((rc = check_identity(db, &exists)) != LSM_OK)
		return rc;
	if (exists && opts->error_if_exists)
		return LSM_EXISTS;
	if (!exists) {
		if (!opts->create_if_missing)
			return LSM_NOTFOUND;
		if ((rc = write_identity(db)) != LSM_OK)
			return rc;
	}
	if ((rc = lsm_fileset_open(db)) != LSM_OK)
		return rc;
	lsm_fileset_publish(db);
	if ((rc = lsm_db_recover(db)) != LSM_OK)
		return rc;
	/* what a crash left behind: temp files, unlisted tables, old logs */
	lsm_db_remove_obsolete(db);
	return LSM_OK;
}

int lsm_open(const lsm_options *opts, const char *dir, lsm_db **out)
{
	lsm_options defaults;
	lsm_region *r;
	lsm_db *db;
	char *lock_path;
	int rc;

	*out = NULL;
	if (opts == NULL) {
		lsm_options_init(&defaults);
		opts = &defaults;
	}
	if ((rc = db_new(opts, dir, &db)) != LSM_OK)
		return rc;
	if (opts->create_if_missing && (rc = db->env->mkdir(db->env, dir)) != LSM_OK)
		goto fail;
	if ((lock_path = path_join(dir, "LOCK")) == NULL) {
		rc = LSM_NOMEM;
		goto fail;
	}
	rc = db->env->lock(db->env, lock_path, &db->lock);
	free(lock_path);
	if (rc != LSM_OK)
		goto fail;
	if ((rc = region_create(&db->opts, &r)) != LSM_OK)
		goto fail;
	if ((rc = db_attach_region(db, r)) != LSM_OK || (rc = recover_from_disk(db)) != LSM_OK)
		goto fail;
	atomic_store(&r->open_state, LSM_REGION_READY);
	if (opts->background_thread && (rc = lsm_bg_start(db)) != LSM_OK)
		goto fail;
	*out = db;
	return LSM_OK;

fail:
	lsm_wal_close_file(db);
	db_free(db);
	return rc;
}

/* Calls the wait hook; non-zero: the caller gives up its wait. */
int lsm_db_wait_hook(lsm_db *db)
{
	return db->opts.wait_hook ? db->opts.wait_hook(db->opts.wait_hook_arg) : 0;
}

/* open_mu, waiting for another process's recovery through the hook. */
static int lock_open_mu(lsm_db *db)
{
	lsm_region *r = db->region;

	for (;;) {
		struct timespec ts;
		int e;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if ((e = pthread_mutex_timedlock(&r->open_mu, &ts)) == 0)
			return LSM_OK;
		if (e != ETIMEDOUT)
			return LSM_INVALID;
		if (lsm_db_wait_hook(db))
			return LSM_BUSY;
	}
}

int lsm_open_shared(const lsm_options *opts, const char *dir, void *mem, lsm_db **out)
{
	lsm_region *r = mem;
	lsm_db *db;
	int rc;

	*out = NULL;
	if (opts == NULL || r == NULL || r->magic != LSM_REGION_MAGIC || !r->shared)
		return LSM_INVALID;
	if ((rc = db_new(opts, dir, &db)) != LSM_OK)
		return rc;
	db->shared = 1;
	if ((rc = db_attach_region(db, r)) != LSM_OK || (rc = lock_open_mu(db)) != LSM_OK)
		goto fail;
	switch (atomic_load(&r->open_state)) {
	case LSM_REGION_FORMATTED:
		if (db->opts.create_if_missing && (rc = db->env->mkdir(db->env, dir)) != LSM_OK) {
			pthread_mutex_unlock(&r->open_mu);
			goto fail;
		}
		lsm_error_clear();
		rc = recover_from_disk(db);
		/* a failed recovery may have filled memtables part-way: only a
		 * fresh format may try again */
		r->open_error = rc;
		/* every later opener reports the damage the way this one does */
		r->open_error_noted = rc == LSM_CORRUPTION && lsm_error_where(&r->open_error_where);
		atomic_store(&r->open_state, rc == LSM_OK ? LSM_REGION_READY : LSM_REGION_FAILED);
		break;
	case LSM_REGION_READY:
		rc = lsm_fileset_attach(db);
		break;
	default:
		rc = r->open_error;
		if (r->open_error_noted)
			lsm_error_restore(&r->open_error_where);
		break;
	}
	pthread_mutex_unlock(&r->open_mu);
	if (rc != LSM_OK)
		goto fail;
	*out = db;
	return LSM_OK;

fail:
	lsm_wal_close_file(db);
	db_free(db);
	return rc;
}

int lsm_close(lsm_db *db)
{
	int rc;

	if (db == NULL)
		return LSM_OK;
	lsm_wait_visible(db);
	rc = lsm_sync_wal(db);
	lsm_wal_close_file(db);
	db_free(db);
	return rc;
}

/* ---------------------------------------------------------------- write */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * Publication: visible_seq moves past a batch only once it and every
 * earlier batch are wholly in the memtable, so a reader at visible_seq
 * never sees part of a batch.
 *
 * Each batch takes a ticket in sequence order (under write_mu).  A writer
 * that has linked its nodes marks its ticket done in pub_ring, then
 * advances visible_seq over every done ticket at the head, in order,
 * whoever wrote them: a writer whose predecessor was descheduled does not
 * wait for it to publish and then publish itself; the predecessor, when it
 * runs again, publishes the whole run at once and wakes everyone with one
 * broadcast.  (Publishing each batch in turn made every writer wait for
 * the one before: a convoy of wake-ups with more writers than cores, as
 * PostgreSQL's backends are.)
 *
 * Claiming the head: a slot is cleared by CAS (one advancer wins), then
 * pub_ticket moves on; a slot is reused only by a ticket RING later, which
 * is not handed out before pub_ticket has passed it.  A completer stores
 * its slot then reads pub_ticket; an advancer stores pub_ticket then reads
 * the next slot (sequentially consistent): one of them sees the other, so
 * no done ticket is left unpublished.
 *
 * A writer (unless it defers) returns once visible_seq covers its batch,
 * and a reader waits for its handle's deferred writes the same way:
 * spinning briefly, yielding a few times (on a busy core the publisher may
 * be the next to run: synced writers with 8 threads on 2 cores lost a
 * third of their rate without the yields), then sleeping on publish_cv.
 * Sleeper and advancer meet Dekker-style (publish_waiters, then
 * visible_seq; visible_seq, then publish_waiters).
 */
void lsm_db_complete_ticket(lsm_region *r, uint64_t ticket, uint64_t last)
{
	atomic_store(&r->pub_ring[ticket % LSM_PUB_RING], last);
	for (;;) {
		uint64_t head = atomic_load(&r->pub_ticket);
		_Atomic uint64_t *slot = &r->pub_ring[head % LSM_PUB_RING];
		uint64_t l = atomic_load(slot), v;

		if (l == 0)
			break;                /* the head is not done yet */
		if (!atomic_compare_exchange_strong(slot, &l, 0))
			continue;             /* another advancer took it */
		atomic_store(&r->pub_ticket, head + 1);
		v = atomic_load(&r->visible_seq);
		while (v < l && !atomic_compare_exchange_weak(&r->visible_seq, &v, l))
			;
	}
	if (atomic_load(&r->publish_waiters) > 0) {
		pthread_mutex_lock(&r->publish_mu);
		pthread_cond_broadcast(&r->publish_cv);
		pthread_mutex_unlock(&r->publish_mu);
	}
}

static void wait_visible(lsm_region *r, uint64_t last)
{
	for (int i = 0; atomic_load(&r->visible_seq) < last; i++) {
		if (i < 200) {
			cpu_relax();
			continue;
		}
		if (i < 210) {
			sched_yield();
			continue;
		}
		pthread_mutex_lock(&r->publish_mu);
		atomic_fetch_add(&r->publish_waiters, 1);
		while (atomic_load(&r->visible_seq) < last)
			pthread_cond_wait(&r->publish_cv, &r->publish_mu);
		atomic_fetch_sub(&r->publish_waiters, 1);
		pthread_mutex_unlock(&r->publish_mu);
		break;
	}
}

/* The handle's highest deferred sequence only grows. */
static void defer_visible(lsm_db *db, uint64_t last)
{
	uint64_t cur = atomic_load(&db->deferred_seq);

	while (cur < last && !atomic_compare_exchange_weak(&db->deferred_seq, &cur, last))
		;
}

void lsm_wait_visible(lsm_db *db)
{
	uint64_t last;

	if (db == NULL)
		return;
	last = atomic_load(&db->deferred_seq);
	if (last != 0 && atomic_load(&db->region->visible_seq) < last)
		wait_visible(db->region, last);
}

static int sync_policy_says_sync(const lsm_db *db, const lsm_wal_shared *w)
{
	return (db->opts.wal_sync_every_writes &&
	        w->unsynced_writes >= db->opts.wal_sync_every_writes) ||
	       (db->opts.wal_sync_every_bytes &&
	        w->unsynced_bytes >= db->opts.wal_sync_every_bytes);
}

/*
 * The active memtable is full: freeze it and make a free slot active, in a
 * new WAL segment.  LSM_BUSY when no slot is free (every other memtable
 * still awaits its flush, or a reader pins it): the caller stalls.
 * Caller holds write_mu.
 */
int lsm_db_switch_memtable(lsm_db *db)
{
	lsm_region *r = db->region;
	int slot = lsm_memslot_claim(r), rc;

	if (slot < 0)
		return LSM_BUSY;
	if ((rc = lsm_wal_rotate(db)) != LSM_OK) {
		atomic_store(&r->mem[slot].state, LSM_MEM_FREE);
		return rc;
	}
	lsm_db_freeze_active(r);
	lsm_db_activate(r, slot, r->wal.seg_no);
	return LSM_OK;
}

/* Waits (bounded) for a flush to free a memtable slot; the caller
 * retries.  Counted as stall time. */
int lsm_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT;
}

int lsm_db_stall(lsm_db *db)
{
	lsm_region *r = db->region;
	uint64_t t0 = db->env->now_micros(db->env);

	atomic_fetch_add(&r->n_stalls, 1);
	/* our own scans may be what holds the arenas */
	lsm_iter_release_retired(db);
	pthread_mutex_lock(&r->bg_mu);
	pthread_cond_broadcast(&r->flush_cv);
	(void)lsm_cond_wait_ms(&r->stall_cv, &r->bg_mu, 10);
	pthread_mutex_unlock(&r->bg_mu);
	atomic_fetch_add(&r->stall_micros, db->env->now_micros(db->env) - t0);
	return lsm_db_wait_hook(db) ? LSM_BUSY : LSM_OK;
}

/*
 * Allocates the batch's nodes in the active memtable, switching memtables
 * when it is full.  Returns with write_mu held on LSM_OK; on LSM_BUSY the
 * caller must stall (write_mu released) and retry; other codes are final
 * (write_mu held).
 */
static int reserve_nodes(lsm_db *db, size_t need, uint32_t *slot, uint32_t *chunk)
{
	lsm_region *r = db->region;
	int rc;

	if (need > r->arena_size - 4096)
		return LSM_TOOBIG;             /* would not fit even an empty one */
	while ((*chunk = lsm_arena_alloc(lsm_slot_arena(r, r->active), (uint32_t)need)) == 0) {
		if ((rc = lsm_db_switch_memtable(db)) != LSM_OK) {
			if (rc == LSM_BUSY)
				pthread_mutex_unlock(&r->write_mu);
			return rc;
		}
	}
	*slot = r->active;
	return LSM_OK;
}

/*
 * Too many L0 files make every read probe them all: from
 * l0_slowdown_trigger on, each write is delayed 1 ms (LevelDB's gentle
 * push-back, giving compaction the CPU), and from l0_stop_trigger on
 * writes wait for compaction.  Bounded waits; a background error ends them.
 */
static int throttle_l0(lsm_db *db)
{
	lsm_region *r = db->region;
	uint32_t n = atomic_load(&r->l0_files);

	if (!db->bg_running || n < (uint32_t)db->opts.l0_slowdown_trigger)
		return LSM_OK;
	if (n < (uint32_t)db->opts.l0_stop_trigger) {
		atomic_fetch_add(&r->n_slowdowns, 1);
		db->env->sleep_micros(db->env, 1000);
		return LSM_OK;
	}
	while (atomic_load(&r->l0_files) >= (uint32_t)db->opts.l0_stop_trigger) {
		if (r->bg_error)
			return r->bg_error;
		if (lsm_db_stall(db) != LSM_OK)
			return LSM_BUSY;
	}
	return LSM_OK;
}

/*
 * Maps the arena window a write is about to fill, 2 MiB at a time.  A
 * process touching shared memory first takes a page fault per 4 KiB page,
 * even when another process faulted the page in long ago; a COPY into a
 * fresh backend spent a tenth of its time in such faults, one per few
 * rows.  One madvise(MADV_POPULATE_WRITE) per window maps 512 pages in a
 * single call.  A process maps each arena once: the mapping stays valid
 * when the arena is reused.  Kernels before 5.14 say EINVAL; the pages
 * then fault one by one, as before.
 */
#define PREFAULT_WINDOW (2u << 20)

static void prefault_arena(lsm_db *db, uint32_t slot, uint32_t chunk, size_t need)
{
	lsm_region *r = db->region;
	uint32_t done = atomic_load_explicit(&db->prefaulted[slot], memory_order_relaxed);
	uint64_t end = (uint64_t)chunk + need, to;
	char *base = (char *)lsm_slot_arena(r, slot);

	if (end <= done)
		return;
	to = (end + PREFAULT_WINDOW - 1) / PREFAULT_WINDOW * PREFAULT_WINDOW;
	if (to > r->arena_size)
		to = r->arena_size;
	/* the region itself need not start on a page */
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t from = (uintptr_t)(base + done) & ~(page - 1);

	if (madvise((void *)from, (size_t)((uintptr_t)(base + to) - from), MADV_POPULATE_WRITE) != 0 &&
	    errno == EINVAL)
		to = r->arena_size;         /* not supported: stop asking */
	atomic_store_explicit(&db->prefaulted[slot], (uint32_t)to, memory_order_relaxed);
}

static int write_rep(lsm_db *db, const lsm_write_options *wo,
                     const uint8_t *rep, size_t len, uint32_t count)
{
	lsm_region *r = db->region;
	uint64_t first, end_lsn = 0, ticket;
	uint32_t chunk = 0, slot = 0;
	size_t need;
	int rc, need_sync, synced_write = wo && wo->sync;

	if ((rc = throttle_l0(db)) != LSM_OK)
		return rc;
	if (synced_write)
		atomic_fetch_add(&r->wal.sync_writers, 1);
	for (;;) {
		pthread_mutex_lock(&r->write_mu);
		if (r->next_ticket - atomic_load(&r->pub_ticket) >= LSM_PUB_RING) {
			/* that many batches in flight: let some publish */
			pthread_mutex_unlock(&r->write_mu);
			sched_yield();
			continue;
		}
		first = r->last_seq + 1;
		if (r->wal.error || r->bg_error) {
			rc = r->wal.error ? r->wal.error : r->bg_error;
			goto unlock;
		}
		if (count > LSM_MAX_SEQUENCE - r->last_seq) {
			rc = LSM_TOOBIG;
			goto unlock;
		}
		need = lsm_mem_batch_bytes(rep, len, first);
		rc = reserve_nodes(db, need, &slot, &chunk);
		if (rc != LSM_BUSY)
			break;
		/* write_mu already released */
		if (!db->bg_running && !db->shared) {
			/* nobody would ever free a slot: the caller must flush */
			rc = LSM_FULL;
		} else if (lsm_db_stall(db) == LSM_OK) {
			continue;
		} else {
			rc = LSM_BUSY;            /* the wait hook gave up */
		}
		if (synced_write)
			atomic_fetch_sub(&r->wal.sync_writers, 1);
		return rc;
	}
	if (rc != LSM_OK)
		goto unlock;
	if ((rc = lsm_wal_append(db, rep, len, first, &end_lsn)) != LSM_OK)
		goto unlock;   /* sequences not consumed; the chunk stays unused */
	r->last_seq += count;
	ticket = r->next_ticket++;
	if (synced_write)
		atomic_fetch_add(&r->wal.sync_records, 1);
	need_sync = synced_write || sync_policy_says_sync(db, &r->wal);
	pthread_mutex_unlock(&r->write_mu);

	prefault_arena(db, slot, chunk, need);
	rc = need_sync ? lsm_wal_sync_to(db, end_lsn) : LSM_OK;
	/* LSM_BUSY: the hook cut the wait for another process's fsync short;
	 * the record is logged and will be durable with the next sync */
	if (rc == LSM_OK || rc == LSM_BUSY)
		lsm_mem_insert_batch(lsm_slot_arena(r, slot), chunk, rep, len, first);
	lsm_db_complete_ticket(r, ticket, first + count - 1);
	if (wo && wo->defer_visibility)
		defer_visible(db, first + count - 1);
	else
		wait_visible(r, first + count - 1);
	atomic_fetch_add_explicit(&r->n_writes, 1, memory_order_relaxed);
	/* counted until the very end: a leader gathering its group waits for
	 * writers that are about to come back with their next record */
	if (synced_write)
		atomic_fetch_sub(&r->wal.sync_writers, 1);
	return rc;

unlock:
	pthread_mutex_unlock(&r->write_mu);
	if (synced_write)
		atomic_fetch_sub(&r->wal.sync_writers, 1);
	return rc;
}

int lsm_write(lsm_db *db, const lsm_write_options *wo, const lsm_batch *b)
{
	if (db == NULL || b == NULL)
		return LSM_INVALID;
	if (b->rep.err)
		return LSM_NOMEM;
	if (b->count == 0)
		return LSM_OK;
	return write_rep(db, wo, b->rep.data, b->rep.len, b->count);
}

/* Single-entry writes encode their one-entry rep on the stack when small. */
static int write_one(lsm_db *db, const lsm_write_options *wo, int type,
                     const void *key, size_t klen, const void *val, size_t vlen)
{
	uint8_t stack[512];
	uint8_t *rep = stack, *p;
	size_t need = LSM_BATCH_HEADER + 1 + 2 * LSM_MAX_VARINT32_LEN + klen + vlen;
	int rc;

	if (db == NULL || (klen && key == NULL) || (vlen && val == NULL))
		return LSM_INVALID;
	if (klen > LSM_MAX_KEY_SIZE || vlen > LSM_MAX_VALUE_SIZE)
		return LSM_TOOBIG;
	if (need > sizeof stack && (rep = malloc(need)) == NULL)
		return LSM_NOMEM;
	memset(rep, 0, LSM_BATCH_HEADER);
	lsm_put_fixed32(rep + 8, 1);
	p = rep + LSM_BATCH_HEADER;
	*p++ = (uint8_t)type;
	p += lsm_encode_varint32(p, (uint32_t)klen);
	memcpy(p, key, klen);
	p += klen;
	if (type != LSM_TYPE_DELETE) {
		p += lsm_encode_varint32(p, (uint32_t)vlen);
		memcpy(p, val, vlen);
		p += vlen;
	}
	rc = write_rep(db, wo, rep, (size_t)(p - rep), 1);
	if (rep != stack)
		free(rep);
	return rc;
}

int lsm_put(lsm_db *db, const lsm_write_options *wo,
            const void *key, size_t klen, const void *val, size_t vlen)
{
	return write_one(db, wo, LSM_TYPE_PUT, key, klen, val, vlen);
}

int lsm_delete(lsm_db *db, const lsm_write_options *wo,
               const void *key, size_t klen)
{
	return write_one(db, wo, LSM_TYPE_DELETE, key, klen, NULL, 0);
}

int lsm_delete_range(lsm_db *db, const lsm_write_options *wo,
                     const void *start, size_t slen, const void *end, size_t elen)
{
	if ((slen && start == NULL) || (elen && end == NULL) ||
	    lsm_key_compare(start, slen, end, elen) >= 0)
		return LSM_INVALID;
	return write_one(db, wo, LSM_TYPE_RANGE_DELETE, start, slen, end, elen);
}

int lsm_sync_wal(lsm_db *db)
{
	lsm_region *r = db->region;
	uint64_t lsn;
	int rc;

	pthread_mutex_lock(&r->write_mu);
	lsn = r->wal.append_lsn;
	rc = r->wal.error;
	pthread_mutex_unlock(&r->write_mu);
	return rc != LSM_OK ? rc : lsm_wal_sync_to(db, lsn);
}

int lsm_write_wal(lsm_db *db)
{
	lsm_region *r;
	int rc;

	if (db == NULL)
		return LSM_INVALID;
	r = db->region;
	pthread_mutex_lock(&r->write_mu);
	rc = r->wal.error ? r->wal.error : lsm_wal_write_buffer(db);
	pthread_mutex_unlock(&r->write_mu);
	return rc;
}

/* ---------------------------------------------------------------- read */

uint64_t lsm_db_read_sequence(lsm_db *db, const lsm_snapshot *snap)
{
	return snap ? snap->seq
	            : atomic_load_explicit(&db->region->visible_seq, memory_order_acquire);
}

int lsm_get(lsm_db *db, const lsm_read_options *ro,
            const void *key, size_t klen, void **val, size_t *vlen)
{
	lsm_readview rv;
	uint64_t seq;
	int rc;

	*val = NULL;
	*vlen = 0;
	if (db == NULL || (klen && key == NULL))
		return LSM_INVALID;
	lsm_wait_visible(db);
	if (ro && ro->snapshot) {
		seq = lsm_snapshot_sequence(ro->snapshot);
		lsm_readview_acquire(db, &rv);
	} else {
		lsm_readview_acquire_latest(db, &rv, &seq);
	}
	rc = lsm_readview_get(db, &rv, key, klen, seq, val, vlen);
	lsm_readview_release(db, &rv);
	return rc;
}

void lsm_free(void *p)
{
	free(p);
}

/* ---------------------------------------------------------------- snapshots */

int lsm_snapshot_create(lsm_db *db, const lsm_snapshot **out)
{
	lsm_region *r = db->region;
	lsm_snapshot *s = malloc(sizeof *s);
	uint32_t i;

	*out = NULL;
	if (s == NULL)
		return LSM_NOMEM;
	lsm_wait_visible(db);
	pthread_mutex_lock(&r->snap_mu);
	for (i = 0; i < LSM_MAX_SNAPSHOTS; i++)
		if (atomic_load(&r->snapshots[i]) == 0)
			break;
	if (i == LSM_MAX_SNAPSHOTS) {
		pthread_mutex_unlock(&r->snap_mu);
		free(s);
		return LSM_BUSY;
	}
	s->slot = i;
	s->seq = atomic_load(&r->visible_seq);
	atomic_store(&r->snapshots[i], s->seq + 1);
	pthread_mutex_unlock(&r->snap_mu);
	*out = s;
	return LSM_OK;
}

void lsm_snapshot_release(lsm_db *db, const lsm_snapshot *snap)
{
	if (snap == NULL)
		return;
	atomic_store(&db->region->snapshots[snap->slot], 0);
	free((void *)snap);
}

uint64_t lsm_snapshot_sequence(const lsm_snapshot *snap)
{
	return snap->seq;
}

/* ---------------------------------------------------------------- stats */

int lsm_get_stats(lsm_db *db, lsm_stats *st)
{
	lsm_region *r = db->region;
	lsm_memview mv;

	memset(st, 0, sizeof *st);
	st->last_sequence = atomic_load(&r->visible_seq);
	lsm_memview_acquire(db, &mv);
	for (int i = 0; i < mv.n; i++) {
		lsm_arena *a = lsm_slot_arena(r, mv.slot[i]);

		st->memtable_bytes += lsm_arena_used(a);
		st->memtable_entries += atomic_load(&a->entries);
		if (atomic_load(&r->mem[mv.slot[i]].state) == LSM_MEM_IMMUTABLE)
			st->immutable_memtables++;
	}
	lsm_memview_release(db, &mv);
	st->memtable_capacity = (uint64_t)r->arena_size * r->n_mem;
	st->flushes = atomic_load(&r->n_flushes);
	st->flush_bytes = atomic_load(&r->flush_bytes);
	st->compactions = atomic_load(&r->n_compactions);
	st->compact_read_bytes = atomic_load(&r->compact_read_bytes);
	st->compact_write_bytes = atomic_load(&r->compact_write_bytes);
	st->write_slowdowns = atomic_load(&r->n_slowdowns);
	lsm_tcache_get_stats(db, st);
	{
		lsm_version *v = lsm_db_current_version(db);

		for (int l = 0; l < LSM_MAX_LEVELS && l < 7; l++) {
			st->level_files[l] = v->nfiles[l];
			st->level_bytes[l] = v->bytes[l];
		}
		lsm_db_release_version(db, v);
	}
	if (db->cache) {
		lsm_cache_stats cs;

		lsm_cache_get_stats(db->cache, &cs);
		st->block_cache_hits = cs.hits;
		st->block_cache_misses = cs.misses;
		st->block_cache_usage = cs.usage;
		st->block_cache_capacity = cs.capacity;
	}
	st->write_stalls = atomic_load(&r->n_stalls);
	st->write_stall_micros = atomic_load(&r->stall_micros);
	pthread_mutex_lock(&r->write_mu);
	st->wal_bytes = r->wal.append_lsn;
	pthread_mutex_unlock(&r->write_mu);
	st->wal_syncs = atomic_load(&r->n_wal_syncs);
	st->wal_synced_writes = atomic_load(&r->n_wal_synced_writes);
	st->wal_segments = atomic_load(&r->n_wal_segments);
	st->writes = atomic_load(&r->n_writes);
	st->recovered_records = r->recovered_records;
	st->recovered_bytes_dropped = r->recovered_bytes_dropped;
	st->write_amplification = st->wal_bytes
		? (double)(st->flush_bytes + st->compact_write_bytes) / (double)st->wal_bytes : 0;
	return LSM_OK;
}
