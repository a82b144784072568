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
		/* an aborted update that kept the TID leaves older versions live
		 * (the next change of the row or VACUUM prunes it) */
		if (lsm_row_has_older(&h) && (h.xmin == InvalidTransactionId || aborted(h.xmin)))
			verdict = LSM_FILTER_KEEP;
		else if (h.xmin == InvalidTransactionId || aborted(h.xmin))
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
