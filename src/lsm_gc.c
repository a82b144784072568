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
 * A record of several versions (updates that kept the TID) loses the
 * versions of aborted updates in front and every version from the first
 * one replaced before the horizon on; the rest is written back
 * (LSM_FILTER_CHANGE).
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

static bool
deleted_before_horizon(const LsmRowHeader *h)
{
	return TransactionIdIsNormal(h->xmax) && !(h->flags & LSM_ROW_LOCK_ONLY) &&
		TransactionIdIsValid(gc_horizon) && TransactionIdPrecedes(h->xmax, gc_horizon) &&
		TransactionIdDidCommit(h->xmax);
}

/*
 * What of the record no snapshot can see: versions of aborted updates in
 * front, and every version from the first one deleted or updated before
 * the horizon on (the older ones were replaced earlier still).  Returns
 * the verdict; for LSM_FILTER_CHANGE the record that is left, palloc'd.
 */
static int
prune_record(const uint8 *val, size_t vlen, uint8 **out, size_t *outlen)
{
	LsmRowIter	it;
	LsmRowVersion v;
	LsmRowWriter w = {0};
	bool		dropped = false;
	int			r;

	*out = NULL;
	*outlen = 0;
	lsm_row_iter_init(&it, val, vlen);
	while ((r = lsm_row_iter_next(&it, &v)) > 0)
	{
		if (!w.have_pending && (v.h.xmin == InvalidTransactionId || aborted(v.h.xmin)))
		{
			dropped = true;
			continue;
		}
		if (deleted_before_horizon(&v.h))
		{
			dropped = true;
			break;
		}
		lsm_row_writer_add(&w, &v.h, &v);
	}
	if (r < 0 || (w.have_pending && !dropped))
	{
		if (w.out)
			pfree(w.out);
		return LSM_FILTER_KEEP;	/* malformed (a read reports it), or intact */
	}
	if (!w.have_pending)
		return LSM_FILTER_REMOVE;
	*out = lsm_row_writer_finish(&w, outlen);
	return LSM_FILTER_CHANGE;
}

int
lsm_gc_filter(void *arg, int level, const void *key, size_t klen,
			  const void *val, size_t vlen, uint64_t seq,
			  void **new_val, size_t *new_vlen)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int verdict = LSM_FILTER_KEEP;

	if (klen != LSM_KEY_LEN || lsm_key_rowid(key) == LSM_ROWID_RESERVE)
		return LSM_FILTER_KEEP;
	PG_TRY();
	{
		uint8	   *out;
		size_t		outlen;

		verdict = prune_record(val, vlen, &out, &outlen);
		if (verdict == LSM_FILTER_CHANGE)
		{
			*new_val = malloc(outlen);
			if (*new_val == NULL)
				verdict = LSM_FILTER_KEEP;
			else
			{
				memcpy(*new_val, out, outlen);
				*new_vlen = outlen;
			}
		}
		if (out)
			pfree(out);
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
