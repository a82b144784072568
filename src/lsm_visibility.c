/*-------------------------------------------------------------------------
 *
 * lsm_visibility.c
 *	  Visibility of lsm row versions: heap's rules without hint bits.
 *
 * These follow HeapTupleSatisfiesMVCC / Self / Dirty / Update in
 * src/backend/access/heap/heapam_visibility.c, over the xmin, xmax, cmin,
 * cmax and flags of an lsm row header instead of a heap tuple header.
 * Records are never updated in place, so no hint bit is set: the commit
 * log answers, and a per-scan cache (LsmXidCache) remembers the last
 * committed transaction, since rows come in runs of one transaction.
 *
 * As in heap, "in the snapshot" (XidInMVCCSnapshot) or "in progress"
 * (TransactionIdIsInProgress) is asked before "committed"
 * (TransactionIdDidCommit): a transaction marks the commit log before it
 * leaves the proc array, so the other order could see a commit that the
 * snapshot must not.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/multixact.h"
#include "access/subtrans.h"
#include "access/xact.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "utils/snapmgr.h"

#include "lsm_visibility.h"

/* Whether xid committed; only a commit is remembered (it is final). */
static bool
xid_committed(TransactionId xid, LsmXidCache *cache)
{
	if (!TransactionIdIsNormal(xid))
		return xid == FrozenTransactionId || xid == BootstrapTransactionId;
	if (cache && cache->xid == xid)
		return cache->committed;
	if (!TransactionIdDidCommit(xid))
		return false;
	if (cache)
	{
		cache->xid = xid;
		cache->committed = true;
	}
	return true;
}

static inline bool
xmax_is_none(const LsmRowHeader *h)
{
	return !TransactionIdIsValid(h->xmax) || (h->flags & LSM_ROW_LOCK_ONLY);
}

/*
 * An xid below the snapshot's xmin finished before the snapshot was taken
 * and is not ours (our own xid counts in xmin): only whether it committed
 * matters.  Most rows of a settled table take this path, without the
 * subtransaction-stack walk and the snapshot probe.
 */
static inline bool
xid_settled_before(TransactionId xid, Snapshot snapshot)
{
	return TransactionIdIsNormal(xid) && TransactionIdPrecedes(xid, snapshot->xmin);
}

static bool
visible_mvcc(const LsmRowHeader *h, Snapshot snapshot, LsmXidCache *cache)
{
	if (!TransactionIdIsNormal(h->xmin) || xid_settled_before(h->xmin, snapshot))
	{
		if (!xid_committed(h->xmin, cache))
			return false;
	}
	else if (TransactionIdIsCurrentTransactionId(h->xmin))
	{
		if (h->cmin >= snapshot->curcid)
			return false;		/* inserted after the scan started */
		if (xmax_is_none(h))
			return true;
		if (!TransactionIdIsCurrentTransactionId(h->xmax))
			return true;		/* the deleting subtransaction aborted */
		return h->cmax >= snapshot->curcid; /* deleted after the scan started */
	}
	else if (XidInMVCCSnapshot(h->xmin, snapshot))
		return false;
	else if (!xid_committed(h->xmin, cache))
		return false;			/* aborted, or in progress at a crash */

	/* the inserter committed and the snapshot sees it */
	if (xmax_is_none(h))
		return true;
	if (xid_settled_before(h->xmax, snapshot))
		return !xid_committed(h->xmax, cache);
	if (TransactionIdIsCurrentTransactionId(h->xmax))
		return h->cmax >= snapshot->curcid;
	if (XidInMVCCSnapshot(h->xmax, snapshot))
		return true;
	return !xid_committed(h->xmax, cache);
}

bool
lsm_row_inserter_aborted(const LsmRowHeader *h)
{
	if (!TransactionIdIsNormal(h->xmin))
		return !xid_committed(h->xmin, NULL);
	if (TransactionIdIsCurrentTransactionId(h->xmin) || TransactionIdIsInProgress(h->xmin))
		return false;
	return !TransactionIdDidCommit(h->xmin);
}

bool
lsm_row_insert_visible(const LsmRowHeader *h, Snapshot snapshot)
{
	if (!TransactionIdIsNormal(h->xmin))
		return xid_committed(h->xmin, NULL);
	if (TransactionIdIsCurrentTransactionId(h->xmin))
		return h->cmin < snapshot->curcid;
	if (XidInMVCCSnapshot(h->xmin, snapshot))
		return false;
	return xid_committed(h->xmin, NULL);
}

/* Self (current == true) and Dirty: committed or our own, any command. */
static bool
visible_self_or_dirty(const LsmRowHeader *h, Snapshot snapshot, LsmXidCache *cache)
{
	bool		dirty = snapshot->snapshot_type == SNAPSHOT_DIRTY;

	if (dirty)
	{
		snapshot->xmin = snapshot->xmax = InvalidTransactionId;
		snapshot->speculativeToken = 0;
	}
	if (!TransactionIdIsNormal(h->xmin))
	{
		if (!xid_committed(h->xmin, cache))
			return false;
	}
	else if (TransactionIdIsCurrentTransactionId(h->xmin))
	{
		if (xmax_is_none(h))
			return true;
		return !TransactionIdIsCurrentTransactionId(h->xmax);
	}
	else if (TransactionIdIsInProgress(h->xmin))
	{
		if (dirty)
		{
			snapshot->xmin = h->xmin;
			return true;		/* being inserted by another */
		}
		return false;
	}
	else if (!xid_committed(h->xmin, cache))
		return false;

	if (xmax_is_none(h))
		return true;
	if (TransactionIdIsCurrentTransactionId(h->xmax))
		return false;
	if (TransactionIdIsInProgress(h->xmax))
	{
		if (dirty)
			snapshot->xmax = h->xmax;
		return true;
	}
	return !xid_committed(h->xmax, cache);
}

/*
 * Whether no snapshot, taken now or later, can see the version: its
 * inserter aborted (or was forgotten in a crash), or a deleter that every
 * snapshot sees as committed removed it (vistest: GlobalVisTestFor).  As
 * HeapTupleIsSurelyDead; a locker alone never kills a row.
 */
bool
lsm_row_surely_dead(const LsmRowHeader *h, GlobalVisState *vistest)
{
	if (!TransactionIdIsNormal(h->xmin))
	{
		if (!xid_committed(h->xmin, NULL))
			return true;
	}
	else if (TransactionIdIsCurrentTransactionId(h->xmin) ||
			 TransactionIdIsInProgress(h->xmin))
		return false;
	else if (!TransactionIdDidCommit(h->xmin))
		return true;
	if (xmax_is_none(h) || TransactionIdIsCurrentTransactionId(h->xmax) ||
		TransactionIdIsInProgress(h->xmax) || !TransactionIdDidCommit(h->xmax))
		return false;
	return GlobalVisTestIsRemovableXid(vistest, h->xmax);
}

/*
 * HeapTupleSatisfiesVacuum over a row header: DEAD once no snapshot can
 * see the version (its inserter aborted, or its deleter committed before
 * oldest_xmin).  An xid older than oldest_xmin cannot be running (every
 * running transaction of the database holds the horizon back), which
 * spares most rows the proc array.
 */
HTSV_Result
lsm_row_vacuum_state(const LsmRowHeader *h, TransactionId oldest_xmin, LsmXidCache *cache)
{
	if (!TransactionIdIsValid(h->xmin))
		return HEAPTUPLE_DEAD;	/* never inserted (lsm_recovery.c) */
	if (TransactionIdIsNormal(h->xmin))
	{
		if (TransactionIdIsCurrentTransactionId(h->xmin))
		{
			if (!xmax_is_none(h) && TransactionIdIsCurrentTransactionId(h->xmax))
				return HEAPTUPLE_DELETE_IN_PROGRESS;
			return HEAPTUPLE_INSERT_IN_PROGRESS;
		}
		if (!TransactionIdPrecedes(h->xmin, oldest_xmin) &&
			TransactionIdIsInProgress(h->xmin))
			return HEAPTUPLE_INSERT_IN_PROGRESS;
		if (!xid_committed(h->xmin, cache))
			return HEAPTUPLE_DEAD;
	}
	if (xmax_is_none(h))
		return HEAPTUPLE_LIVE;
	if (TransactionIdIsCurrentTransactionId(h->xmax) ||
		(!TransactionIdPrecedes(h->xmax, oldest_xmin) &&
		 TransactionIdIsInProgress(h->xmax)))
		return HEAPTUPLE_DELETE_IN_PROGRESS;
	if (!xid_committed(h->xmax, cache))
		return HEAPTUPLE_LIVE;	/* the deleter aborted */
	if (!TransactionIdPrecedes(h->xmax, oldest_xmin))
		return HEAPTUPLE_RECENTLY_DEAD;
	return HEAPTUPLE_DEAD;
}

/*
 * SERIALIZABLE: a read of a version that a concurrent transaction wrote
 * (an insert we do not see, or a delete we do not see) is a rw-conflict
 * out to that transaction; as HeapCheckForSerializableConflictOut.
 */
void
lsm_serializable_conflict_out(bool visible, Relation rel, const LsmRowHeader *h,
							  Snapshot snapshot)
{
	TransactionId xid;

	if (!CheckForSerializableConflictOutNeeded(rel, snapshot))
		return;
	switch (lsm_row_vacuum_state(h, TransactionXmin, NULL))
	{
		case HEAPTUPLE_LIVE:
			if (visible)
				return;
			xid = h->xmin;
			break;
		case HEAPTUPLE_RECENTLY_DEAD:
		case HEAPTUPLE_DELETE_IN_PROGRESS:
			xid = visible ? h->xmax : h->xmin;
			if (TransactionIdPrecedes(xid, TransactionXmin))
				return;
			break;
		case HEAPTUPLE_INSERT_IN_PROGRESS:
			xid = h->xmin;
			break;
		case HEAPTUPLE_DEAD:
		default:
			return;
	}
	if (!TransactionIdIsNormal(xid) || TransactionIdEquals(xid, GetTopTransactionIdIfAny()))
		return;
	xid = SubTransGetTopmostTransaction(xid);
	if (TransactionIdPrecedes(xid, TransactionXmin))
		return;
	CheckForSerializableConflictOut(rel, xid, snapshot);
}

bool
lsm_row_visible(const LsmRowHeader *h, Snapshot snapshot, LsmXidCache *cache)
{
	switch (snapshot->snapshot_type)
	{
		case SNAPSHOT_MVCC:
			return visible_mvcc(h, snapshot, cache);
		case SNAPSHOT_SELF:
		case SNAPSHOT_DIRTY:
			return visible_self_or_dirty(h, snapshot, cache);
		case SNAPSHOT_ANY:
			return true;
		case SNAPSHOT_NON_VACUUMABLE:
			return !lsm_row_surely_dead(h, snapshot->vistest);
		case SNAPSHOT_TOAST:
		case SNAPSHOT_HISTORIC_MVCC:
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("lsm tables do not support this kind of snapshot (%d)",
					(int) snapshot->snapshot_type)));
	return false;				/* keep the compiler quiet */
}

bool
lsm_row_alive(const LsmRowHeader *h, LsmXidCache *cache)
{
	if (!TransactionIdIsCurrentTransactionId(h->xmin) && !xid_committed(h->xmin, cache))
		return false;
	if (xmax_is_none(h))
		return true;
	if (TransactionIdIsCurrentTransactionId(h->xmax))
		return false;
	return !xid_committed(h->xmax, cache);
}

/*
 * Row lock strengths conflict as heap's do (heapam.c tupleLockExtraInfo):
 * [requested][held].
 */
static const bool lock_conflicts[4][4] = {
	[LockTupleKeyShare] = {false, false, false, true},
	[LockTupleShare] = {false, false, true, true},
	[LockTupleNoKeyExclusive] = {false, true, true, true},
	[LockTupleExclusive] = {true, true, true, true},
};

LockTupleMode
lsm_lock_mode_of_status(MultiXactStatus status)
{
	switch (status)
	{
		case MultiXactStatusForKeyShare:
			return LockTupleKeyShare;
		case MultiXactStatusForShare:
			return LockTupleShare;
		case MultiXactStatusForNoKeyUpdate:
		case MultiXactStatusNoKeyUpdate:
			return LockTupleNoKeyExclusive;
		case MultiXactStatusForUpdate:
		case MultiXactStatusUpdate:
			break;
	}
	return LockTupleExclusive;
}

MultiXactStatus
lsm_lock_status_of_mode(LockTupleMode mode)
{
	switch (mode)
	{
		case LockTupleKeyShare:
			return MultiXactStatusForKeyShare;
		case LockTupleShare:
			return MultiXactStatusForShare;
		case LockTupleNoKeyExclusive:
			return MultiXactStatusForNoKeyUpdate;
		case LockTupleExclusive:
			break;
	}
	return MultiXactStatusForUpdate;
}

/* Whether one of our (sub)transactions holds a lock of at least mode. */
bool
lsm_multi_has_our_lock(MultiXactId multi, LockTupleMode mode)
{
	MultiXactMember *members;
	int			n = GetMultiXactIdMembers(multi, &members, false, true);
	bool		found = false;

	for (int i = 0; i < n && !found; i++)
		found = lsm_lock_mode_of_status(members[i].status) >= mode &&
			TransactionIdIsCurrentTransactionId(members[i].xid);
	if (n > 0)
		pfree(members);
	return found;
}

bool
lsm_row_locked_by_us(const LsmRowHeader *h)
{
	if (!TransactionIdIsValid(h->xmax) || !(h->flags & LSM_ROW_LOCK_ONLY))
		return false;
	if (h->flags & LSM_ROW_MULTI)
		return lsm_multi_has_our_lock(h->xmax, LockTupleKeyShare);
	return TransactionIdIsCurrentTransactionId(h->xmax);
}

/*
 * A transaction other than ours that holds a lock on the row conflicting
 * with mode and is still running, or InvalidTransactionId.
 */
static TransactionId
conflicting_locker(const LsmRowHeader *h, LockTupleMode mode)
{
	if (h->flags & LSM_ROW_MULTI)
	{
		MultiXactMember *members;
		int			n = GetMultiXactIdMembers(h->xmax, &members, false, true);
		TransactionId found = InvalidTransactionId;

		for (int i = 0; i < n && !TransactionIdIsValid(found); i++)
			if (lock_conflicts[mode][lsm_lock_mode_of_status(members[i].status)] &&
				!TransactionIdIsCurrentTransactionId(members[i].xid) &&
				TransactionIdIsInProgress(members[i].xid))
				found = members[i].xid;
		if (n > 0)
			pfree(members);
		return found;
	}
	if (lock_conflicts[mode][lsm_row_lock_mode(h)] &&
		!TransactionIdIsCurrentTransactionId(h->xmax) &&
		TransactionIdIsInProgress(h->xmax))
		return h->xmax;
	return InvalidTransactionId;
}

TM_Result
lsm_row_modifiable(const LsmRowHeader *h, uint64 rowid, CommandId cid, LockTupleMode mode,
				   TM_FailureData *tmfd, TransactionId *xwait)
{
	*xwait = InvalidTransactionId;
	lsm_rowid_to_tid(rowid, &tmfd->ctid);
	tmfd->xmax = h->xmax;
	tmfd->cmax = InvalidCommandId;
	tmfd->traversed = false;

	if (!TransactionIdIsNormal(h->xmin))
	{
		if (!xid_committed(h->xmin, NULL))
			return TM_Invisible;	/* never inserted (lsm_recovery.c) */
	}
	else if (TransactionIdIsCurrentTransactionId(h->xmin))
	{
		if (h->cmin >= cid)
			return TM_Invisible;	/* inserted after the scan started */
	}
	else if (TransactionIdIsNormal(h->xmin) &&
			 (TransactionIdIsInProgress(h->xmin) || !xid_committed(h->xmin, NULL)))
		return TM_Invisible;

	if (!TransactionIdIsValid(h->xmax))
		return TM_Ok;
	if (h->flags & LSM_ROW_LOCK_ONLY)
	{
		/* ours, finished lockers' and compatible locks do not stand in the way */
		*xwait = conflicting_locker(h, mode);
		return TransactionIdIsValid(*xwait) ? TM_BeingModified : TM_Ok;
	}
	if (TransactionIdIsCurrentTransactionId(h->xmax))
	{
		tmfd->cmax = h->cmax;
		if (h->flags & LSM_ROW_UPDATED)
			lsm_rowid_to_tid(h->successor, &tmfd->ctid);
		return h->cmax >= cid ? TM_SelfModified : TM_Invisible;
	}
	if (TransactionIdIsInProgress(h->xmax))
	{
		*xwait = h->xmax;
		return TM_BeingModified;
	}
	if (!xid_committed(h->xmax, NULL))
		return TM_Ok;			/* the modifier aborted */
	if (h->flags & LSM_ROW_UPDATED)
	{
		lsm_rowid_to_tid(h->successor, &tmfd->ctid);
		return TM_Updated;
	}
	return TM_Deleted;
}
