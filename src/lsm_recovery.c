/*-------------------------------------------------------------------------
 *
 * lsm_recovery.c
 *	  Rows of transactions PostgreSQL forgot in a crash: the xid horizon of
 *	  each engine WAL segment, and the replay filter that applies it.
 *
 * A transaction that wrote only to lsm tables may have left no trace in
 * PostgreSQL's WAL that survived a crash; PostgreSQL then hands its xid out
 * again, and once the new owner commits, the old rows would turn visible.
 * Every xid is logged (lsm_xact_write_xid) before its first row, and a
 * memtable becomes a file only after PostgreSQL's WAL is flushed (the flush
 * hook, lsm_flush_pg_wal), so such rows can only be in the part of the
 * engine WAL that an open replays.
 *
 * The horizon of a server start is the next xid of PostgreSQL's checkpoint
 * when the engine opens (after a crash, the end-of-recovery checkpoint; the
 * lsm worker opens the engine as soon as the server accepts connections).
 * A row written before that start whose xid is at or past the horizon
 * belongs to a transaction that never committed: the replay filter makes
 * it invisible (xmin invalid; compaction removes it) and undoes a delete,
 * update or lock by such a transaction.
 *
 * Invariant: a segment is judged by the horizon of the first start after
 * it was written, at every replay.  The filter rewrites rows in memory
 * only, and a segment is replayed at each start until a flush retires it;
 * by a later start its forgotten xids may belong to committed transactions
 * (the horizon has moved past them).  Every open writes to a segment of its
 * own (the engine's recovery hook names it), and the file lsm/xid_horizons
 * holds one line "S X" per start still relevant: segments below S that no
 * earlier line covers have horizon X.  A start's line is durable before its
 * open ends, hence before anything is written to its segment.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/transam.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "lsm_am.h"
#include "lsm_row.h"

#define HORIZONS_FILE	"xid_horizons"
#define MAX_HORIZONS	4096	/* one per crash a segment outlived */

typedef struct SegmentHorizon
{
	uint64		start;			/* segments below it ... */
	TransactionId xid;			/* ... have this horizon */
} SegmentHorizon;

static TransactionId start_horizon = InvalidTransactionId;
static SegmentHorizon *horizons = NULL;	/* ascending start */
static int	nhorizons = 0;

void
lsm_recovery_set_start_horizon(TransactionId xid)
{
	start_horizon = xid;
}

static char *
horizons_path(const char *suffix)
{
	return psprintf("%s/%s/%s%s", DataDir, LSM_DATA_DIR, HORIZONS_FILE, suffix);
}

/* Reads the file into horizons[] (none if it does not exist). */
static void
read_horizons(void)
{
	char	   *path = horizons_path("");
	FILE	   *f = AllocateFile(path, "r");
	char		line[128];
	int			lineno = 0;

	nhorizons = 0;
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open file \"%s\": %m", path)));
		return;
	}
	while (fgets(line, sizeof line, f) != NULL)
	{
		unsigned long long start;
		unsigned int xid;
		char		end;

		lineno++;
		if (sscanf(line, "%llu %u%c", &start, &xid, &end) != 3 || end != '\n' ||
			nhorizons == MAX_HORIZONS ||
			(nhorizons > 0 && start <= horizons[nhorizons - 1].start) ||
			!TransactionIdIsNormal(xid))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("lsm_am recovery file \"%s\" is damaged at line %d", path, lineno),
					 errdetail("Each line holds a WAL segment number and an xid, segments ascending.")));
		horizons[nhorizons].start = start;
		horizons[nhorizons].xid = xid;
		nhorizons++;
	}
	if (ferror(f))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", path)));
	FreeFile(f);
}

/* Writes horizons[] to a temporary file and renames it into place. */
static void
write_horizons(void)
{
	char	   *tmp = horizons_path(".tmp");
	char	   *path = horizons_path("");
	StringInfoData buf;
	int			fd;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < nhorizons; i++)
		appendStringInfo(&buf, UINT64_FORMAT " %u\n", horizons[i].start, horizons[i].xid);
	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	errno = 0;
	if (write(fd, buf.data, buf.len) != buf.len)
	{
		if (errno == 0)
			errno = ENOSPC;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	}
	if (pg_fsync(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", tmp)));
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", tmp)));
	(void) durable_rename(tmp, path, ERROR);
	pfree(buf.data);
}

/*
 * Lines for segments that are gone (no segment at or past first is below
 * their start) are dropped; so are lines past new_segment, which can only
 * come from a data directory put together from different times.  A line
 * for new_segment itself is from an open that failed before writing to it,
 * whose horizon is the older, so the right one.
 */
static void
add_start(uint64 first, uint64 new_segment)
{
	int			keep = 0;
	int			i;

	for (i = 0; i < nhorizons; i++)
		if (horizons[i].start > first && horizons[i].start <= new_segment)
			horizons[keep++] = horizons[i];
	nhorizons = keep;
	if (nhorizons > 0 && horizons[nhorizons - 1].start == new_segment)
		return;
	if (nhorizons == MAX_HORIZONS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the lsm_am WAL outlived more than %d server starts", MAX_HORIZONS),
				 errhint("Run SELECT lsm_flush() to retire old WAL segments.")));
	horizons[nhorizons].start = new_segment;
	horizons[nhorizons].xid = start_horizon;
	nhorizons++;
}

/*
 * The engine's recovery hook, before the first replayed record.  An error
 * must not unwind through the engine: it fails the open instead.
 */
int
lsm_recovery_hook(void *arg, uint64_t first_segment, uint64_t new_segment)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int failed = 0;

	PG_TRY();
	{
		if (!TransactionIdIsNormal(start_horizon))
			elog(ERROR, "lsm_am: no xid horizon for this start");
		if (horizons == NULL)
			horizons = MemoryContextAlloc(TopMemoryContext,
										  MAX_HORIZONS * sizeof(SegmentHorizon));
		read_horizons();
		add_start(first_segment, new_segment);
		write_horizons();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		nhorizons = 0;
		failed = 1;
	}
	PG_END_TRY();
	return failed;
}

/* The horizon of the first start after segment was written. */
static TransactionId
segment_horizon(uint64 segment)
{
	int			i;

	for (i = 0; i < nhorizons; i++)
		if (horizons[i].start > segment)
			return horizons[i].xid;
	return start_horizon;
}

static bool
forgotten(TransactionId xid, TransactionId horizon)
{
	return TransactionIdIsNormal(xid) && TransactionIdIsNormal(horizon) &&
		TransactionIdFollowsOrEquals(xid, horizon);
}

/* Undoes the forgotten xids of one version's header, in place. */
static void
filter_version(uint8 *ver, size_t len, TransactionId horizon)
{
	LsmRowHeader h;
	bool		changed = false;

	if (!lsm_row_header_decode(ver, len, &h))
		return;
	if (forgotten(h.xmin, horizon))
	{
		h.xmin = InvalidTransactionId;
		changed = true;
	}
	/* lockers do not outlive a crash; a multixact's id is no xid */
	if ((h.flags & LSM_ROW_MULTI) || forgotten(h.xmax, horizon))
	{
		h.xmax = InvalidTransactionId;
		h.cmax = 0;
		h.flags &= ~(LSM_ROW_UPDATED | LSM_ROW_LOCK_ONLY | LSM_ROW_MULTI | LSM_ROW_LOCK_MODE);
		h.successor = 0;
		changed = true;
	}
	if (changed)
		lsm_row_header_encode(ver, &h);
}

void
lsm_replay_filter(void *arg, uint64_t segment, const void *key, size_t klen,
				  void *val, size_t vlen)
{
	TransactionId horizon;
	LsmRowIter	it;
	LsmRowVersion v;

	if (klen != LSM_KEY_LEN || lsm_key_rowid(key) == LSM_ROWID_RESERVE)
		return;
	horizon = segment_horizon(segment);
	/* every version of the record: an update that kept the TID by a
	 * forgotten transaction leaves the version before it live again */
	lsm_row_iter_init(&it, val, vlen);
	while (lsm_row_iter_next(&it, &v) > 0)
		filter_version((uint8 *) val + (v.rec - (const uint8 *) val), v.len, horizon);
}
