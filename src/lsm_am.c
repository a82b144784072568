/*-------------------------------------------------------------------------
 *
 * lsm_am.c
 *	  Start-up of the lsm table access method: GUCs, the engine's shared
 *	  memory, attaching each process, and engine errors as ereports.
 *
 * lsm_am must be in shared_preload_libraries: the engine's region is
 * requested in shmem_request_hook and formatted in shmem_startup_hook,
 * which also runs after a crash restart, when the postmaster has thrown
 * the old shared memory away.  The first process to attach after that
 * recovers the engine from its files (normally the background worker,
 * which starts with the postmaster); the others wait for it and attach.
 * Every process detaches in its on_shmem_exit callback.
 *
 * No engine lock is held across an ereport: engine calls return codes,
 * and lsm_am_check turns one into an error only after the call returned.
 * Waits that can last go through the engine's wait hook, which gives up
 * when an interrupt is pending, so that cancel and terminate work.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/amapi.h"
#include "catalog/pg_control.h"
#include "commands/defrem.h"
#include "common/controldata_utils.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "lsm_am.h"

PG_MODULE_MAGIC;

int			lsm_memtable_size_mb = 32;
int			lsm_max_memtables = 3;
int			lsm_block_cache_size_mb = 64;
int			lsm_bloom_bits_per_key = 10;
int			lsm_compression = 1;
int			lsm_compaction_workers = 1;
int			lsm_wal_sync_delay_ms = 200;
int			lsm_l0_compaction_trigger = 4;
int			lsm_target_file_size_mb = 32;
int			lsm_table_cache_size_mb = 16;
int			lsm_max_open_files = 200;

static const struct config_enum_entry compression_options[] = {
	{"lz4", 1, false},
	{"none", 0, false},
	{NULL, 0, false}
};

static bool preloaded = false;
static void *engine_region = NULL;
static Size engine_region_size = 0;
static lsm_db *engine_db = NULL;
TimestampTz lsm_shmem_started_at = 0;
static Oid	cached_am_oid = InvalidOid;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

static int
max_engine_processes(void)
{
	/* backends, autovacuum, background and parallel workers, plus ours */
	return Min(MaxBackends + 16, 4096);
}

void
lsm_am_options(lsm_options *o)
{
	lsm_options_init(o);
	o->memtable_size = (size_t) lsm_memtable_size_mb << 20;
	o->max_memtables = lsm_max_memtables;
	o->block_cache_size = (size_t) lsm_block_cache_size_mb << 20;
	o->bloom_bits_per_key = lsm_bloom_bits_per_key;
	o->compression = lsm_compression;
	o->l0_compaction_trigger = lsm_l0_compaction_trigger;
	if (o->l0_slowdown_trigger < o->l0_compaction_trigger)
		o->l0_slowdown_trigger = o->l0_compaction_trigger;
	if (o->l0_stop_trigger < o->l0_slowdown_trigger)
		o->l0_stop_trigger = o->l0_slowdown_trigger;
	o->target_file_size = (uint64) lsm_target_file_size_mb << 20;
	o->table_cache_size = (size_t) lsm_table_cache_size_mb << 20;
	o->max_open_files = lsm_max_open_files;
	o->background_thread = 0;	/* PostgreSQL's processes do the work */
	o->wal_sync_every_writes = 0;	/* commits decide (lsm_xact.c) */
	o->wal_sync_every_bytes = 0;
	o->max_processes = max_engine_processes();
}

static void
lsm_shmem_request(void)
{
	lsm_options o;

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	lsm_am_options(&o);
	engine_region_size = lsm_shared_size(&o);
	if (engine_region_size == 0)
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid lsm_am settings"),
				 errhint("Check lsm.memtable_size, lsm.max_memtables and lsm.block_cache_size.")));
	/* room to align the region to a cache line */
	RequestAddinShmemSpace(add_size(engine_region_size, PG_CACHE_LINE_SIZE));
	RequestAddinShmemSpace(lsm_rowid_shmem_size());
	RequestAddinShmemSpace(lsm_rowlock_shmem_size());
	RequestAddinShmemSpace(lsm_worker_shmem_size());
	RequestNamedLWLockTranche("lsm_am", 1);
}

static void
lsm_shmem_startup(void)
{
	lsm_options o;
	bool		found;
	char	   *mem;
	int			rc;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	/* the postmaster's, inherited by every process it forks after this */
	lsm_shmem_started_at = GetCurrentTimestamp();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	mem = ShmemInitStruct("lsm_am engine region",
						  add_size(engine_region_size, PG_CACHE_LINE_SIZE), &found);
	engine_region = (void *) TYPEALIGN(PG_CACHE_LINE_SIZE, mem);
	if (!found)
	{
		lsm_am_options(&o);
		rc = lsm_shared_init(engine_region, engine_region_size, &o);
		if (rc != LSM_OK)
			ereport(FATAL,
					(errmsg("could not set up the lsm_am shared memory: %s",
							lsm_strerror(rc))));
	}
	lsm_rowid_shmem_init();
	lsm_rowlock_shmem_init();
	lsm_worker_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

bool
lsm_am_preloaded(void)
{
	return preloaded;
}

static void
detach_engine(int code, Datum arg)
{
	if (engine_db)
	{
		(void) lsm_close(engine_db);
		engine_db = NULL;
	}
}

/*
 * The next xid of PostgreSQL's latest checkpoint: after a crash, that of
 * the end-of-recovery checkpoint, below which every xid PostgreSQL still
 * knows lies (lsm_recovery.c).  The engine is opened right after start-up,
 * before a later checkpoint could move it.  The file is read without the
 * lock the checkpointer writes it under, so a torn read (bad CRC) is read
 * again.
 */
static TransactionId
checkpoint_next_xid(void)
{
	int			attempt;

	for (attempt = 0; attempt < 100; attempt++)
	{
		bool		crc_ok;
		ControlFileData *cf = get_controlfile(DataDir, &crc_ok);
		TransactionId xid = XidFromFullTransactionId(cf->checkPointCopy.nextXid);

		pfree(cf);
		if (crc_ok && TransactionIdIsNormal(xid))
			return xid;
		pg_usleep(10000L);
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("could not read the next transaction ID from \"%s/global/pg_control\"",
					DataDir),
			 errdetail("The lsm_am storage needs it to recover.")));
	return InvalidTransactionId;	/* keep the compiler quiet */
}

/* The engine's wait hook: give up a long wait when an interrupt is due. */
static int
interrupt_pending(void *arg)
{
	return (QueryCancelPending || ProcDiePending) ? 1 : 0;
}

lsm_db *
lsm_am_db(void)
{
	lsm_options o;
	char	   *dir;
	int			rc;

	if (engine_db)
		return engine_db;
	if (!preloaded || engine_region == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("lsm_am is not loaded at server start"),
				 errhint("Add lsm_am to shared_preload_libraries in postgresql.conf and restart the server.")));
	lsm_am_options(&o);
	o.env = lsm_fault_env();	/* NULL (the file system itself) unless testing */
	o.wait_hook = interrupt_pending;
	o.compaction_filter = lsm_gc_filter;
	o.replay_filter = lsm_replay_filter;
	o.recovery_hook = lsm_recovery_hook;
	o.flush_hook = lsm_flush_pg_wal;
	lsm_recovery_set_start_horizon(checkpoint_next_xid());
	dir = psprintf("%s/%s", DataDir, LSM_DATA_DIR);
	for (;;)
	{
		rc = lsm_open_shared(&o, dir, engine_region, &engine_db);
		if (rc != LSM_BUSY)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	pfree(dir);
	if (rc != LSM_OK)
	{
		engine_db = NULL;
		ereport(ERROR,
				(errcode(rc == LSM_CORRUPTION ? ERRCODE_DATA_CORRUPTED : ERRCODE_IO_ERROR),
				 lsm_am_errmsg(rc, psprintf("could not open the lsm_am storage in \"%s/%s\"",
											DataDir, LSM_DATA_DIR))));
	}
	on_shmem_exit(detach_engine, (Datum) 0);
	return engine_db;
}

void
lsm_am_check(int rc, const char *what)
{
	int			code;

	if (rc == LSM_OK)
		return;
	if (rc == LSM_BUSY)
	{
		/* the wait hook saw an interrupt: let it happen */
		CHECK_FOR_INTERRUPTS();
	}
	switch (rc)
	{
		case LSM_CORRUPTION:
			code = ERRCODE_DATA_CORRUPTED;
			break;
		case LSM_NOSPACE:
			code = ERRCODE_DISK_FULL;
			break;
		case LSM_NOMEM:
			code = ERRCODE_OUT_OF_MEMORY;
			break;
		case LSM_TOOBIG:
			code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
			break;
		case LSM_BUSY:
			code = ERRCODE_QUERY_CANCELED;
			break;
		case LSM_INVALID:
			code = ERRCODE_INTERNAL_ERROR;
			break;
		default:
			code = ERRCODE_IO_ERROR;
			break;
	}
	ereport(ERROR,
			(errcode(code),
			 lsm_am_errmsg(rc, psprintf("lsm storage could not %s", what)),
			 rc == LSM_TOOBIG ? errhint("A row must fit in a quarter of lsm.memtable_size.") :
			 rc == LSM_NOSPACE ? errhint("Free space on the file system of \"%s/%s\": lsm tables can be read "
										 "but not written until then, and the server restarts its processes "
										 "by itself once there is room.",
										 DataDir, LSM_DATA_DIR) : 0));
}

/*
 * The message of an engine failure, inside an ereport: "<action>: <cause>".
 * For corruption the cause is the file under pg_lsm the engine found
 * damaged, and the detail where in it and what was wrong, so that a DBA
 * knows what to restore.  The engine's note is per process and is used
 * up here, so that a later failure cannot repeat it.
 */
int
lsm_am_errmsg(int rc, const char *action)
{
	lsm_error_info where;

	if (rc != LSM_CORRUPTION || !lsm_error_where(&where))
		return errmsg("%s: %s", action, lsm_strerror(rc));
	lsm_error_clear();
	errmsg("%s: corrupt data in file \"%s/%s\"", action, LSM_DATA_DIR, where.file);
	if (where.offset >= 0)
		return errdetail("The damage is at byte offset %lld of the file: %s.",
						 (long long) where.offset, where.reason);
	return errdetail("The file as a whole is damaged: %s.", where.reason);
}

Oid
lsm_am_oid(void)
{
	if (!OidIsValid(cached_am_oid))
		cached_am_oid = get_am_oid(LSM_AM_NAME, true);
	return cached_am_oid;
}

static void
forget_am_oid(Datum arg, int cacheid, uint32 hashvalue)
{
	cached_am_oid = InvalidOid;
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;					/* lsm_am_db() explains what to do */
	preloaded = true;

	DefineCustomIntVariable("lsm.memtable_size",
							"Size of one lsm memtable.",
							"Rows are collected in memory up to this size, then written out as one sorted file.",
							&lsm_memtable_size_mb, 32, 1, 4095,
							PGC_POSTMASTER, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("lsm.max_memtables",
							"Number of lsm memtables in shared memory.",
							"One takes writes while the others are written out; writes wait when all are full.",
							&lsm_max_memtables, 3, 2, 16,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("lsm.block_cache_size",
							"Shared memory caching uncompressed lsm file blocks.",
							NULL,
							&lsm_block_cache_size_mb, 64, 0, 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("lsm.bloom_bits_per_key",
							"Bloom filter bits per key in lsm files (0: no filters).",
							NULL,
							&lsm_bloom_bits_per_key, 10, 0, 64,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("lsm.compression",
							 "Compression of lsm file blocks.",
							 NULL,
							 &lsm_compression, 1, compression_options,
							 PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("lsm.compaction_workers",
							"Background workers compacting lsm files.",
							"A separate worker always writes memtables out and syncs the log.",
							&lsm_compaction_workers, 1, 1, 8,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("lsm.wal_sync_delay",
							"How often the lsm worker syncs the lsm log for transactions committed with synchronous_commit off.",
							NULL,
							&lsm_wal_sync_delay_ms, 200, 1, 10000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("lsm.l0_compaction_trigger",
							"Number of freshly written lsm files that starts a compaction.",
							NULL,
							&lsm_l0_compaction_trigger, 4, 1, 64,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("lsm.target_file_size",
							"Size at which compaction starts a new lsm file.",
							NULL,
							&lsm_target_file_size_mb, 32, 1, 4096,
							PGC_POSTMASTER, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("lsm.table_cache_size",
							"Memory each process may keep for the lsm files it has open.",
							"An open file keeps its index and bloom filter in the process's own memory; beyond this size the least recently used files are closed, and opened again when next read.",
							&lsm_table_cache_size_mb, 16, 0, 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("lsm.max_open_files",
							"Number of lsm files each process may keep open.",
							"These descriptors come on top of max_files_per_process.",
							&lsm_max_open_files, 200, 1, 100000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	lsm_fault_define_gucs();
	MarkGUCPrefixReserved("lsm");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = lsm_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = lsm_shmem_startup;

	lsm_register_workers();
	lsm_xact_init();
	CacheRegisterSyscacheCallback(AMNAME, forget_am_oid, (Datum) 0);
}
