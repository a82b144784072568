/*-------------------------------------------------------------------------
 *
 * lsm_worker.c
 *	  Background workers: memtable flushes, WAL syncs, compaction.
 *
 * The engine starts no thread inside PostgreSQL; these workers run its
 * background steps.  Worker 0 ("lsm_am flush") writes full memtables out
 * and fsyncs the engine WAL every lsm.wal_sync_delay (for transactions
 * committed with synchronous_commit off); workers 1..N ("lsm_am
 * compaction") compact, so a long compaction never holds back a flush.
 * They start once PostgreSQL is consistent, so the first of them normally
 * recovers the engine before the first client uses it, and they are
 * restarted after a crash.  They connect to no database, which lists them
 * in pg_stat_activity.  At shutdown worker 0 flushes every memtable, so a clean
 * restart replays nothing.
 *
 * Each step is bounded; between steps a worker checks for shutdown and
 * sleeps on its latch (or, for flushes, on the engine's own condition,
 * woken when a memtable fills) for at most 100 ms.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/statvfs.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "lsm_am.h"
#include "lsm_row.h"

/*
 * Compaction requests: a committed DROP or TRUNCATE asks for its old key
 * range to be compacted, so its space comes back without waiting for
 * enough new writes to trigger a compaction there.  A full queue drops
 * the request (the space then comes back with ordinary compactions).
 */
#define MAX_REQUESTS 64

typedef struct CompactRequests
{
	slock_t		mutex;
	int			n;
	RelFileNode ranges[MAX_REQUESTS];
} CompactRequests;

static CompactRequests *requests = NULL;

Size
lsm_worker_shmem_size(void)
{
	return sizeof(CompactRequests);
}

void
lsm_worker_shmem_init(void)
{
	bool		found;

	requests = ShmemInitStruct("lsm_am compaction requests", sizeof(CompactRequests), &found);
	if (!found)
	{
		SpinLockInit(&requests->mutex);
		requests->n = 0;
	}
}

void
lsm_request_compaction(const RelFileNode *rnode)
{
	if (requests == NULL)
		return;
	SpinLockAcquire(&requests->mutex);
	if (requests->n < MAX_REQUESTS)
		requests->ranges[requests->n++] = *rnode;
	SpinLockRelease(&requests->mutex);
}

static bool
take_request(RelFileNode *rnode)
{
	bool		got = false;

	SpinLockAcquire(&requests->mutex);
	if (requests->n > 0)
	{
		*rnode = requests->ranges[--requests->n];
		got = true;
	}
	SpinLockRelease(&requests->mutex);
	return got;
}

/*
 * Compacts every key of a dropped rnode (rows, row-id mark) out of the
 * tables.  No flush: the range's tombstone, still in a memtable, applies
 * to the tables directly, and everyone else's rows stay in the memtables
 * (a flush per DROP or TRUNCATE would make an L0 file of each).
 */
static int
compact_relation_range(lsm_db *db, const RelFileNode *rnode)
{
	uint8		lo[LSM_KEY_LEN],
				hi[LSM_KEY_LEN];

	lsm_key_encode(lo, rnode, 0);
	lsm_key_encode(hi, rnode, LSM_ROWID_RESERVE);
	return lsm_compact_range_tables(db, lo, LSM_KEY_LEN, hi, LSM_KEY_LEN);
}

void
lsm_register_workers(void)
{
	BackgroundWorker w;

	for (int i = 0; i <= lsm_compaction_workers; i++)
	{
		memset(&w, 0, sizeof(w));
		/* a connection to no database: listed in pg_stat_activity */
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = BgWorkerStart_ConsistentState;
		w.bgw_restart_time = 1;
		snprintf(w.bgw_library_name, BGW_MAXLEN, "lsm_am");
		snprintf(w.bgw_function_name, BGW_MAXLEN, "lsm_worker_main");
		if (i == 0)
			snprintf(w.bgw_name, BGW_MAXLEN, "lsm_am flush");
		else
			snprintf(w.bgw_name, BGW_MAXLEN, "lsm_am compaction %d", i);
		snprintf(w.bgw_type, BGW_MAXLEN, i == 0 ? "lsm_am flush" : "lsm_am compaction");
		w.bgw_main_arg = Int32GetDatum(i);
		RegisterBackgroundWorker(&w);
	}
}

#define RESUME_MIN_UPTIME_MS 60000

/*
 * Free space under pg_lsm enough to write every memtable out and go on:
 * all of them, plus room for a new log segment's first records.
 */
static bool
space_is_back(void)
{
	struct statvfs st;
	char	   *dir = psprintf("%s/%s", DataDir, LSM_DATA_DIR);
	uint64		need = ((uint64) lsm_memtable_size_mb * lsm_max_memtables + 16) << 20;
	bool		back = statvfs(dir, &st) == 0 &&
		(uint64) st.f_bavail * st.f_frsize >= need;

	pfree(dir);
	return back;
}

/*
 * A failed step is sticky in the engine: say so once, and retry slowly
 * (every later step fails at once: without the wait the worker would spin).
 *
 * The engine stops writing for good after a failed write, since the log's
 * tail is then unknown; only recovery from the files can go on.  When the
 * failure was a full disk, the flush worker watches for space to come back
 * and then exits as a crashed process would: the postmaster restarts every
 * process, the engine recovers (every committed row is in its log), and
 * writes resume, as PostgreSQL itself restarts after running out of space
 * for its WAL.
 */
static void
step_failed(int rc, const char *what, bool *failed, bool resume_when_space)
{
	bool		watch = rc == LSM_NOSPACE && resume_when_space;

	if (!*failed)
		ereport(LOG,
				(errcode(rc == LSM_NOSPACE ? ERRCODE_DISK_FULL :
						 rc == LSM_CORRUPTION ? ERRCODE_DATA_CORRUPTED : ERRCODE_IO_ERROR),
				 lsm_am_errmsg(rc, psprintf("lsm_am could not %s", what)),
				 watch ? errhint("Writes to lsm tables fail until space is freed; the server "
								 "then restarts its processes and writes resume.") :
				 errhint("Writes to lsm tables fail until the server is restarted.")));
	*failed = true;
	/* at most one such restart a minute: space that statvfs reports but
	 * writes cannot use (a quota) must not make the server cycle */
	if (watch && space_is_back() &&
		TimestampDifferenceExceeds(lsm_shmem_started_at, GetCurrentTimestamp(),
								   RESUME_MIN_UPTIME_MS))
	{
		ereport(LOG,
				(errmsg("lsm_am: space is free again under \"%s/%s\": restarting the server's processes so that lsm writes resume",
						DataDir, LSM_DATA_DIR)));
		proc_exit(2);			/* the postmaster's crash restart */
	}
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 watch ? 1000L : 10000L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

static void
flush_worker(lsm_db *db)
{
	TimestampTz last_sync = GetCurrentTimestamp();
	bool		failed = false;

	while (!ShutdownRequestPending)
	{
		unsigned	pending = 0;
		int			rc;

		HandleMainLoopInterrupts();
		if (ShutdownRequestPending)
			break;
		lsm_pg_wal_flush_failed = false;
		rc = lsm_background_step(db, LSM_WORK_FLUSH, &pending);
		if (rc == LSM_OK && TimestampDifferenceExceeds(last_sync, GetCurrentTimestamp(),
													   lsm_wal_sync_delay_ms))
		{
			rc = lsm_sync_wal(db);
			last_sync = GetCurrentTimestamp();
		}
		if (rc != LSM_OK && lsm_pg_wal_flush_failed)
		{
			/* the engine keeps the memtable and lets a later flush retry */
			ereport(LOG,
					(errmsg("lsm_am could not flush PostgreSQL's WAL before writing a memtable out; retrying in 1 s")));
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}
		if (rc != LSM_OK)
		{
			step_failed(rc, "write a memtable out", &failed, true);
			continue;
		}
		if (!(pending & LSM_WORK_FLUSH))
			lsm_background_wait(db, Min(100, lsm_wal_sync_delay_ms));
	}
	/* clean shutdown: everything into tables, the log synced */
	if (!failed)
	{
		int			rc = lsm_flush(db);

		if (rc == LSM_OK)
			rc = lsm_sync_wal(db);
		if (rc != LSM_OK)
			ereport(LOG,
					(errmsg("lsm_am could not flush at shutdown: %s", lsm_strerror(rc))));
	}
}

static void
compaction_worker(lsm_db *db)
{
	bool		failed = false;

	while (!ShutdownRequestPending)
	{
		unsigned	pending = 0;
		int			rc;

		HandleMainLoopInterrupts();
		if (ShutdownRequestPending)
			break;
		lsm_gc_refresh_horizon();
		{
			RelFileNode rnode;

			if (take_request(&rnode))
			{
				rc = compact_relation_range(db, &rnode);
				if (rc != LSM_OK)
					step_failed(rc, "compact a dropped table's range", &failed, false);
				continue;
			}
		}
		rc = lsm_background_step(db, LSM_WORK_COMPACT, &pending);
		if (rc != LSM_OK)
		{
			step_failed(rc, "compact", &failed, false);
			continue;
		}
		if (!(pending & LSM_WORK_COMPACT))
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 100L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}

void
lsm_worker_main(Datum arg)
{
	int			role = DatumGetInt32(arg);
	lsm_db	   *db;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	db = lsm_am_db();			/* the first to attach recovers the engine */
	if (role == 0)
		flush_worker(db);
	else
		compaction_worker(db);
	proc_exit(0);
}
