/*-------------------------------------------------------------------------
 *
 * lsm_gc.c
 *	  The compaction filter: row versions no transaction can see go away.
 *
 * Compaction shows the filter every row version that no engine snapshot
 * still needs in its old form.  Removed are:
 *	 - rows whose inserting transaction aborted (or was in progress at a
 *	   crash): no snapshot ever sees them;
 *	 - rows deleted or updated by a transaction that committed before the
 *	   oldest snapshot of the cluster (GetOldestNonRemovableTransactionId,
 *	   sampled by lsm_gc_refresh_horizon before each compaction step).
 * Index entries may still point at a removed row: a fetch then finds
 * nothing, and row ids are never reused, so it can find no stranger.
 *
 * The filter runs inside an engine compaction, holding no engine lock
 * that matters to others but on the engine's stack: a PostgreSQL error in
 * a commit-log lookup must not unwind through it, so it is caught here
 * and the row is kept.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "storage/procarray.h"
#include "utils/memutils.h"

#include "lsm_am.h"
#include "lsm_row.h"

static TransactionId gc_horizon = InvalidTransactionId;
static TransactionId forgotten_from = InvalidTransactionId;

void
lsm_gc_refresh_horizon(void)
{
	gc_horizon = GetOldestNonRemovableTransactionId(NULL);
}

static bool
aborted(TransactionId xid)
{
	return TransactionIdIsNormal(xid) && !TransactionIdIsInProgress(xid) &&
		!TransactionIdDidCommit(xid);
}

int
lsm_gc_filter(void *arg, int level, const void *key, size_t klen,
			  const void *val, size_t vlen, uint64_t seq,
			  void **new_val, size_t *new_vlen)
{
	MemoryContext cxt = CurrentMemoryContext;
	LsmRowHeader h;
	volatile int verdict = LSM_FILTER_KEEP;

	if (klen != LSM_KEY_LEN || lsm_key_rowid(key) == LSM_ROWID_RESERVE ||
		!lsm_row_header_decode(val, vlen, &h))
		return LSM_FILTER_KEEP;
	PG_TRY();
	{
		if (h.xmin == InvalidTransactionId || aborted(h.xmin))
			verdict = LSM_FILTER_REMOVE;
		else if (TransactionIdIsNormal(h.xmax) && !(h.flags & LSM_ROW_LOCK_ONLY) &&
				 TransactionIdIsValid(gc_horizon) &&
				 TransactionIdPrecedes(h.xmax, gc_horizon) &&
				 TransactionIdDidCommit(h.xmax))
			verdict = LSM_FILTER_REMOVE;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		verdict = LSM_FILTER_KEEP;
	}
	PG_END_TRY();
	return verdict;
}

/*
 * Recovery.  A transaction that wrote only to lsm tables may have left no
 * trace in PostgreSQL's WAL that survived the crash; PostgreSQL then hands
 * its xid out again, and if the new owner commits, the old rows would turn
 * visible.  Every xid is logged (lsm_xact_write_xid) before its first row,
 * and a memtable becomes a file only after PostgreSQL's WAL is flushed (the
 * engine's flush hook, lsm_flush_pg_wal), so such rows can only be in the
 * part of the engine WAL that is replayed.
 * The replay filter sees each of them: an xid at or past the next xid of
 * PostgreSQL's checkpoint after its own recovery never committed, so a row
 * it inserted becomes invisible (xmin invalid; compaction removes it) and
 * a delete, update or lock of it is undone.
 */
void
lsm_gc_set_forgotten_from(TransactionId xid)
{
	forgotten_from = xid;
}

static bool
forgotten(TransactionId xid)
{
	return TransactionIdIsNormal(xid) && TransactionIdIsNormal(forgotten_from) &&
		TransactionIdFollowsOrEquals(xid, forgotten_from);
}

void
lsm_replay_filter(void *arg, const void *key, size_t klen, void *val, size_t vlen)
{
	LsmRowHeader h;
	bool		changed = false;

	if (klen != LSM_KEY_LEN || lsm_key_rowid(key) == LSM_ROWID_RESERVE ||
		!lsm_row_header_decode(val, vlen, &h))
		return;
	if (forgotten(h.xmin))
	{
		h.xmin = InvalidTransactionId;
		changed = true;
	}
	if (forgotten(h.xmax))
	{
		h.xmax = InvalidTransactionId;
		h.cmax = 0;
		h.flags &= ~(LSM_ROW_UPDATED | LSM_ROW_LOCK_ONLY);
		h.successor = 0;
		changed = true;
	}
	if (changed)
		lsm_row_header_encode(val, &h);
}
