/*-------------------------------------------------------------------------
 *
 * lsm_modify.c
 *	  Writing lsm tables: INSERT, COPY (multi_insert), DELETE, UPDATE and
 *	  row locks.
 *
 * An insert puts a new record under a fresh rowid (never reused, so an
 * index entry can never point at a stranger).  DELETE, UPDATE and row
 * locks rewrite the row's record with xmax set: the read-modify-write of
 * one record is serialized by a striped row lock (lsm_rowlock.c), and a
 * conflicting transaction still in progress is waited for outside that
 * lock with XactLockTableWait, as heap does, before looking again.  An
 * UPDATE writes the new version under a new rowid and links it from the
 * old record (LSM_ROW_UPDATED + successor) in one atomic engine batch, so
 * READ COMMITTED can follow the chain (EvalPlanQual).
 *
 * Row locks have heap's four strengths and conflict as heap's do; several
 * compatible lockers share xmax as a MultiXactId (add_locker).  An UPDATE
 * or DELETE waits for every running locker, even a FOR KEY SHARE one that
 * heap would let a non-key UPDATE pass (a record has one xmax, so an
 * updater cannot sit beside lockers): correct, with less concurrency.
 *
 * Values wider than TOAST_TUPLE_THRESHOLD go through heap's toaster into
 * the table's TOAST relation, which is a heap table (relation_toast_am).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heaptoast.h"
#include "access/multixact.h"
#include "access/xact.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "utils/rel.h"

#include "lsm_tableam.h"

/* The tuple to store for slot, toasted when wide (maybe a new copy). */
static HeapTuple
tuple_to_store(Relation rel, TupleTableSlot *slot, HeapTuple oldtup, int options,
			   bool *should_free)
{
	HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, true, should_free);

	if (rel->rd_rel->relkind != RELKIND_MATVIEW && rel->rd_rel->relkind != RELKIND_RELATION)
		return tuple;
	if (HeapTupleHasExternal(tuple) || tuple->t_len > TOAST_TUPLE_THRESHOLD)
	{
		HeapTuple	toasted = heap_toast_insert_or_update(rel, tuple, oldtup, options);

		if (toasted != tuple)
		{
			if (*should_free)
				heap_freetuple(tuple);
			*should_free = true;
			return toasted;
		}
	}
	return tuple;
}

static void
put_row(Relation rel, uint64 rowid, const uint8 *rec, size_t len)
{
	uint8		key[LSM_KEY_LEN];

	lsm_key_encode(key, &rel->rd_node, rowid);
	lsm_am_check(lsm_put(lsm_am_db(), NULL, key, LSM_KEY_LEN, rec, len), "write a row");
	lsm_xact_wrote();
}

void
lsm_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid, int options,
				 struct BulkInsertStateData *bistate)
{
	LsmRowHeader h = {0};
	bool		should_free;
	HeapTuple	tuple;
	uint64		rowid;
	uint8	   *rec;
	size_t		len;

	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);
	h.xmin = lsm_xact_write_xid();
	h.cmin = cid;
	tuple = tuple_to_store(rel, slot, NULL, options, &should_free);
	lsm_rowid_alloc(rel, 1, &rowid);
	rec = lsm_row_build(&h, tuple, &len);
	put_row(rel, rowid, rec, len);
	pgstat_count_heap_insert(rel, 1);
	pfree(rec);
	if (should_free)
		heap_freetuple(tuple);
	slot->tts_tableOid = RelationGetRelid(rel);
	lsm_rowid_to_tid(rowid, &slot->tts_tid);
}

/*
 * Speculative insertion (INSERT ... ON CONFLICT): the row is inserted as
 * usual; a concurrent inserter of the same key sees it through its dirty
 * snapshot and waits for this whole transaction instead of the token.
 */
void
lsm_tuple_insert_speculative(Relation rel, TupleTableSlot *slot, CommandId cid,
							 int options, struct BulkInsertStateData *bistate,
							 uint32 specToken)
{
	lsm_tuple_insert(rel, slot, cid, options, bistate);
}

void
lsm_tuple_complete_speculative(Relation rel, TupleTableSlot *slot, uint32 specToken,
							   bool succeeded)
{
	uint8		key[LSM_KEY_LEN];
	uint64		rowid;

	if (succeeded || !lsm_tid_to_rowid(&slot->tts_tid, &rowid))
		return;
	/* a conflict was found after all: the row never existed */
	lsm_key_encode(key, &rel->rd_node, rowid);
	lsm_am_check(lsm_delete(lsm_am_db(), NULL, key, LSM_KEY_LEN), "remove a row");
}

void
lsm_multi_insert(Relation rel, TupleTableSlot **slots, int nslots, CommandId cid,
				 int options, struct BulkInsertStateData *bistate)
{
	LsmRowHeader h = {0};
	lsm_batch  *batch;
	uint64		first;
	int			rc;

	if (nslots <= 0)
		return;
	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);
	h.xmin = lsm_xact_write_xid();
	h.cmin = cid;
	lsm_rowid_alloc(rel, nslots, &first);
	lsm_am_check(lsm_batch_create(&batch), "start a batch");
	PG_TRY();
	{
		for (int i = 0; i < nslots; i++)
		{
			bool		should_free;
			HeapTuple	tuple = tuple_to_store(rel, slots[i], NULL, options, &should_free);
			uint8		key[LSM_KEY_LEN];
			uint8	   *rec;
			size_t		len;

			rec = lsm_row_build(&h, tuple, &len);
			lsm_key_encode(key, &rel->rd_node, first + i);
			lsm_am_check(lsm_batch_put(batch, key, LSM_KEY_LEN, rec, len), "batch a row");
			pfree(rec);
			if (should_free)
				heap_freetuple(tuple);
			slots[i]->tts_tableOid = RelationGetRelid(rel);
			lsm_rowid_to_tid(first + i, &slots[i]->tts_tid);
		}
		rc = lsm_write(lsm_am_db(), NULL, batch);
		lsm_am_check(rc, "write rows");
		lsm_xact_wrote();
		pgstat_count_heap_insert(rel, nslots);
	}
	PG_FINALLY();
	{
		lsm_batch_destroy(batch);
	}
	PG_END_TRY();
}

/* ----------------------------------------------- read-modify-write */

/*
 * Locks row rowid and fetches it, waiting out a transaction in progress
 * on it (wait_policy says how).  Returns with the row lock held only for
 * TM_Ok (*rec, *len, *h valid, *rec to be lsm_free'd); for every other
 * result the lock is released and tmfd filled.
 */
static TM_Result
lock_row_for_change(Relation rel, uint64 rowid, CommandId cid, LockTupleMode mode,
					Snapshot crosscheck, LockWaitPolicy wait_policy, XLTW_Oper oper,
					TM_FailureData *tmfd, uint8 **rec, size_t *len, LsmRowHeader *h)
{
	for (;;)
	{
		TransactionId xwait;
		ItemPointerData tid;
		TM_Result	res;

		lsm_rowlock_acquire(&rel->rd_node, rowid);
		if (!lsm_fetch_row(&rel->rd_node, rowid, rec, len, h))
		{
			lsm_rowlock_release(&rel->rd_node, rowid);
			lsm_rowid_to_tid(rowid, &tmfd->ctid);
			tmfd->xmax = InvalidTransactionId;
			tmfd->cmax = InvalidCommandId;
			return TM_Deleted;
		}
		res = lsm_row_modifiable(h, rowid, cid, mode, tmfd, &xwait);
		if (res == TM_Ok && crosscheck != InvalidSnapshot &&
			!lsm_row_visible(h, crosscheck, NULL))
			res = TM_Updated;	/* RI check in REPEATABLE READ: as heap */
		if (res == TM_Ok)
			return TM_Ok;
		lsm_free(*rec);
		lsm_rowlock_release(&rel->rd_node, rowid);
		if (res != TM_BeingModified)
			return res;
		switch (wait_policy)
		{
			case LockWaitSkip:
				return TM_WouldBlock;
			case LockWaitError:
				ereport(ERROR,
						(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
						 errmsg("could not obtain lock on row in relation \"%s\"",
								RelationGetRelationName(rel))));
				break;
			case LockWaitBlock:
				lsm_rowid_to_tid(rowid, &tid);
				XactLockTableWait(xwait, rel, &tid, oper);
				break;
		}
	}
}

static void
error_invisible(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("attempted to %s invisible tuple", what)));
}

TM_Result
lsm_tuple_delete(Relation rel, ItemPointer tid, CommandId cid, Snapshot snapshot,
				 Snapshot crosscheck, bool wait, TM_FailureData *tmfd, bool changingPart)
{
	uint64		rowid;
	uint8	   *rec,
			   *newrec;
	size_t		len;
	LsmRowHeader h;
	TransactionId xid = lsm_xact_write_xid();
	TM_Result	res;

	if (!lsm_tid_to_rowid(tid, &rowid))
		error_invisible("delete");
	CheckForSerializableConflictIn(rel, tid, ItemPointerGetBlockNumber(tid));
	res = lock_row_for_change(rel, rowid, cid, LockTupleExclusive, crosscheck,
							  wait ? LockWaitBlock : LockWaitSkip, XLTW_Delete, tmfd,
							  &rec, &len, &h);
	if (res == TM_Invisible)
		error_invisible("delete");
	if (res == TM_WouldBlock)
		return TM_BeingModified;
	if (res != TM_Ok)
		return res;
	h.xmax = xid;
	h.cmax = cid;
	h.flags &= ~(LSM_ROW_LOCK_ONLY | LSM_ROW_UPDATED);
	newrec = lsm_row_rewrite(rec, len, &h);
	lsm_free(rec);
	put_row(rel, rowid, newrec, len);
	lsm_rowlock_release(&rel->rd_node, rowid);
	pfree(newrec);
	pgstat_count_heap_delete(rel);
	return TM_Ok;
}

TM_Result
lsm_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot, CommandId cid,
				 Snapshot snapshot, Snapshot crosscheck, bool wait, TM_FailureData *tmfd,
				 LockTupleMode *lockmode, bool *update_indexes)
{
	uint64		rowid,
				newrowid;
	uint8	   *rec,
			   *oldrec,
			   *newrec;
	size_t		len,
				newlen;
	LsmRowHeader h,
				nh = {0};
	TransactionId xid = lsm_xact_write_xid();
	HeapTuple	oldtup,
				tuple;
	bool		should_free;
	lsm_batch  *batch;
	uint8		key[LSM_KEY_LEN];
	TM_Result	res;

	*lockmode = LockTupleExclusive;
	*update_indexes = true;
	if (!lsm_tid_to_rowid(otid, &rowid))
		error_invisible("update");
	CheckForSerializableConflictIn(rel, otid, ItemPointerGetBlockNumber(otid));
	res = lock_row_for_change(rel, rowid, cid, LockTupleExclusive, crosscheck,
							  wait ? LockWaitBlock : LockWaitSkip, XLTW_Update, tmfd,
							  &rec, &len, &h);
	if (res == TM_Invisible)
		error_invisible("update");
	if (res == TM_WouldBlock)
		return TM_BeingModified;
	if (res != TM_Ok)
		return res;

	/* the toaster needs the old tuple to reuse or drop its values */
	oldtup = lsm_row_copy_tuple(rel, rowid, rec, len, &h);
	tuple = tuple_to_store(rel, slot, oldtup, 0, &should_free);
	lsm_rowid_alloc(rel, 1, &newrowid);
	nh.xmin = xid;
	nh.cmin = cid;
	newrec = lsm_row_build(&nh, tuple, &newlen);
	h.xmax = xid;
	h.cmax = cid;
	h.flags = (h.flags & ~LSM_ROW_LOCK_ONLY) | LSM_ROW_UPDATED;
	h.successor = newrowid;
	oldrec = lsm_row_rewrite(rec, len, &h);
	lsm_free(rec);

	lsm_am_check(lsm_batch_create(&batch), "start a batch");
	lsm_key_encode(key, &rel->rd_node, newrowid);
	res = lsm_batch_put(batch, key, LSM_KEY_LEN, newrec, newlen);
	lsm_key_encode(key, &rel->rd_node, rowid);
	if (res == LSM_OK)
		res = lsm_batch_put(batch, key, LSM_KEY_LEN, oldrec, len);
	if (res == LSM_OK)
		res = lsm_write(lsm_am_db(), NULL, batch);
	lsm_batch_destroy(batch);
	lsm_am_check(res, "write an updated row");
	lsm_xact_wrote();
	lsm_rowlock_release(&rel->rd_node, rowid);
	pgstat_count_heap_update(rel, false);

	pfree(newrec);
	pfree(oldrec);
	heap_freetuple(oldtup);
	if (should_free)
		heap_freetuple(tuple);
	slot->tts_tableOid = RelationGetRelid(rel);
	lsm_rowid_to_tid(newrowid, &slot->tts_tid);
	return TM_Ok;
}

/* Whether one of our (sub)transactions holds a lock of at least mode. */
static bool
multi_has_our_lock(MultiXactId multi, LockTupleMode mode)
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

/*
 * Adds this transaction's lock of strength mode to the row's lockers (no
 * conflicting one is running: lsm_row_modifiable said so).  A single
 * locker is kept in xmax; a second running one makes xmax a MultiXactId
 * of both, as heap does.  false when a lock of ours at least as strong is
 * already there (nothing to write).
 */
static bool
add_locker(LsmRowHeader *h, LockTupleMode mode)
{
	TransactionId me;

	if (TransactionIdIsValid(h->xmax) && (h->flags & LSM_ROW_LOCK_ONLY))
	{
		if (h->flags & LSM_ROW_MULTI)
		{
			if (multi_has_our_lock(h->xmax, mode))
				return false;
			me = lsm_xact_write_xid();
			h->xmax = MultiXactIdExpand(h->xmax, me, lsm_lock_status_of_mode(mode));
			return true;
		}
		if (TransactionIdIsCurrentTransactionId(h->xmax) && lsm_row_lock_mode(h) >= mode)
			return false;
		me = lsm_xact_write_xid();
		if (h->xmax == me)
		{
			lsm_row_set_single_locker(h, me, mode); /* a stronger lock */
			return true;
		}
		if (TransactionIdIsCurrentTransactionId(h->xmax) || TransactionIdIsInProgress(h->xmax))
		{
			/* a parent's lock survives our abort; another's stays too */
			h->xmax = MultiXactIdCreate(h->xmax, lsm_lock_status_of_mode(lsm_row_lock_mode(h)),
										me, lsm_lock_status_of_mode(mode));
			h->flags = (h->flags & ~(LSM_ROW_UPDATED | LSM_ROW_LOCK_MODE)) |
				LSM_ROW_LOCK_ONLY | LSM_ROW_MULTI;
			return true;
		}
	}
	/* no locker left, or an updater that aborted */
	lsm_row_set_single_locker(h, lsm_xact_write_xid(), mode);
	return true;
}

TM_Result
lsm_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot,
			   CommandId cid, LockTupleMode mode, LockWaitPolicy wait_policy, uint8 flags,
			   TM_FailureData *tmfd)
{
	uint64		rowid;
	bool		traversed = false;

	if (!lsm_tid_to_rowid(tid, &rowid))
		error_invisible("lock");
	MultiXactIdSetOldestMember();	/* before this transaction joins a multixact */
	for (;;)
	{
		uint8	   *rec;
		size_t		len;
		LsmRowHeader h;
		TM_Result	res;

		res = lock_row_for_change(rel, rowid, cid, mode, InvalidSnapshot, wait_policy,
								  XLTW_Lock, tmfd, &rec, &len, &h);
		tmfd->traversed = traversed;
		if (res == TM_Invisible)
			error_invisible("lock");
		if (res == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION) &&
			ItemPointerIsValid(&tmfd->ctid) && lsm_tid_to_rowid(&tmfd->ctid, &rowid))
		{
			/* lock the newest version instead; like heap, *tid follows
			 * it, so the caller's retry acts on that version */
			traversed = true;
			*tid = tmfd->ctid;
			continue;
		}
		if (res != TM_Ok)
			return res;
		if (add_locker(&h, mode))
		{
			uint8	   *newrec;

			h.cmax = cid;
			newrec = lsm_row_rewrite(rec, len, &h);
			PG_TRY();
			{
				put_row(rel, rowid, newrec, len);
			}
			PG_CATCH();
			{
				lsm_free(rec);
				PG_RE_THROW();
			}
			PG_END_TRY();
			pfree(newrec);
		}
		lsm_rowlock_release(&rel->rd_node, rowid);
		PG_TRY();
		{
			HeapTuple	tuple = lsm_row_copy_tuple(rel, rowid, rec, len, &h);

			ExecStoreHeapTuple(tuple, slot, true);
			slot->tts_tableOid = RelationGetRelid(rel);
			slot->tts_tid = tuple->t_self;
		}
		PG_FINALLY();
		{
			lsm_free(rec);
		}
		PG_END_TRY();
		tmfd->traversed = traversed;
		return TM_Ok;
	}
}
