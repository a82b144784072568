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
 * lock with XactLockTableWait, as heap does, before looking again.
 *
 * An UPDATE that changes no indexed column keeps the TID: the new version
 * goes in front of the old one in the same record (lsm_row.h), and the
 * indexes get nothing (heap's HOT).  An UPDATE of an indexed column writes
 * the new version under a new rowid and links it from the old record
 * (LSM_ROW_UPDATED + successor) in one atomic engine batch, so READ
 * COMMITTED can follow the chain (EvalPlanQual).  Every write of a record
 * leaves out the versions no snapshot can see any more.
 *
 * The versions of a record share its TID, so a TID does not say which
 * version the caller read: see version_to_judge and lsm_tuple_lock.
 *
 * Row locks have heap's four strengths and conflict as heap's do; several
 * compatible lockers share xmax as a MultiXactId (add_locker).  A DELETE
 * or an UPDATE of a key column waits for every running locker; an UPDATE
 * of other columns (LockTupleNoKeyExclusive) passes FOR KEY SHARE lockers
 * (foreign-key checks), whose locks move to the new version
 * (carry_key_share_lockers), as heap's do.
 *
 * Values wider than TOAST_TUPLE_THRESHOLD go through heap's toaster into
 * the table's TOAST relation, which is a heap table (relation_toast_am).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heaptoast.h"
#include "access/multixact.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

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
 * A record being changed: its bytes, the version a change replaces (the
 * newest whose inserter did not abort) and the versions older than that.
 */
typedef struct RowForChange
{
	uint8	   *rec;			/* lsm_free */
	size_t		len;
	LsmRowVersion target;
	LsmRowIter	older;
	HeapTuple	newtup;			/* UPDATE: the new row (its key decides mode) */
	HeapTuple	oldtup;			/* UPDATE: the target as a tuple (palloc'd) */
	LockTupleMode mode;			/* the strength the change needs */
} RowForChange;

/* Which version the caller means (its versions share the TID). */
typedef enum
{
	VERSION_AS_SEEN,			/* the one the caller's snapshot saw */
	VERSION_FOLLOW,				/* the newest, following updates (FIND_LAST_VERSION) */
	VERSION_NEWEST				/* the newest, as a dirty snapshot found it (ON CONFLICT) */
} WhichVersion;

#define LSM_INPLACE_MAX_BYTES	8192	/* past it, an UPDATE takes a new rowid */

static void
locate_target(Relation rel, uint64 rowid, RowForChange *rc)
{
	LsmRowIter	it;

	lsm_row_iter_init(&it, rc->rec, rc->len);
	if (!lsm_next_version(rel, rowid, &it, &rc->target))
		lsm_report_bad_row(rel, rowid);
	/* versions of aborted updates are no one's */
	while (lsm_row_has_older(&rc->target.h) && lsm_row_inserter_aborted(&rc->target.h))
		if (!lsm_next_version(rel, rowid, &it, &rc->target))
			lsm_report_bad_row(rel, rowid);
	rc->older = it;
}

/*
 * The version whose state answers the caller: the target, or the one it
 * replaced when the caller still holds that one: its snapshot predates
 * the target (when it names what it saw), the target is of this very
 * command (unless the caller wants what a dirty snapshot found: ON
 * CONFLICT then reports "cannot affect row a second time"), or of a
 * transaction still running, which must be waited for.  Such an older version was
 * updated, so it never yields TM_Ok.
 */
static const LsmRowVersion *
version_to_judge(Relation rel, uint64 rowid, RowForChange *rc, Snapshot snapshot,
				 CommandId cid, WhichVersion which, LsmRowVersion *prev)
{
	const LsmRowHeader *t = &rc->target.h;
	LsmRowIter	it = rc->older;
	bool		older;

	if (!lsm_row_has_older(t))
		return &rc->target;
	if (TransactionIdIsCurrentTransactionId(t->xmin))
		older = which != VERSION_NEWEST && t->cmin >= cid;
	else if (TransactionIdIsNormal(t->xmin) && TransactionIdIsInProgress(t->xmin))
		older = true;
	else
		older = which == VERSION_AS_SEEN && snapshot != NULL && IsMVCCSnapshot(snapshot) &&
			!lsm_row_insert_visible(t, snapshot) && !lsm_row_locked_by_us(t);
	if (!older || !lsm_next_version(rel, rowid, &it, prev))
		return &rc->target;
	return prev;
}

/*
 * Whether newtup differs from oldtup in one of the index columns of kind
 * (INDEX_ATTR_BITMAP_*), by binary equality of the values, as heap
 * decides HOT and lock strength; a whole-row or system column reference
 * counts as a change.
 */
static bool
index_columns_change(Relation rel, IndexAttrBitmapKind kind, HeapTuple oldtup,
					 HeapTuple newtup)
{
	Bitmapset  *attrs = RelationGetIndexAttrBitmap(rel, kind);
	TupleDesc	desc = RelationGetDescr(rel);
	bool		changed = false;
	int			i = -1;

	while (!changed && (i = bms_next_member(attrs, i)) >= 0)
	{
		AttrNumber	attnum = i + FirstLowInvalidHeapAttributeNumber;
		Form_pg_attribute att;
		bool		oldnull,
					newnull;
		Datum		oldval,
					newval;

		if (attnum <= 0)
		{
			changed = true;
			break;
		}
		att = TupleDescAttr(desc, attnum - 1);
		oldval = heap_getattr(oldtup, attnum, desc, &oldnull);
		newval = heap_getattr(newtup, attnum, desc, &newnull);
		changed = oldnull != newnull ||
			(!oldnull && !datumIsEqual(oldval, newval, att->attbyval, att->attlen));
	}
	bms_free(attrs);
	return changed;
}

/*
 * Locks row rowid and fetches it, waiting out a transaction in progress
 * on it (wait_policy says how).  Returns with the row lock held only for
 * TM_Ok (rc filled, rc->rec to be lsm_free'd); for every other result the
 * lock is released and tmfd filled.
 */
static TM_Result
lock_row_for_change(Relation rel, uint64 rowid, CommandId cid, LockTupleMode mode,
					Snapshot snapshot, WhichVersion which, Snapshot crosscheck,
					LockWaitPolicy wait_policy, XLTW_Oper oper, TM_FailureData *tmfd,
					RowForChange *rc)
{
	for (;;)
	{
		TransactionId xwait;
		ItemPointerData tid;
		TM_Result	res;
		LsmRowHeader h;
		LsmRowVersion prev;
		const LsmRowVersion *judged;

		lsm_rowlock_acquire(&rel->rd_node, rowid);
		if (!lsm_fetch_row(&rel->rd_node, rowid, &rc->rec, &rc->len, &h))
		{
			lsm_rowlock_release(&rel->rd_node, rowid);
			lsm_rowid_to_tid(rowid, &tmfd->ctid);
			tmfd->xmax = InvalidTransactionId;
			tmfd->cmax = InvalidCommandId;
			return TM_Deleted;
		}
		locate_target(rel, rowid, rc);
		rc->mode = mode;
		if (rc->newtup != NULL)
		{
			/* heap's rule: changing a column a unique index (so a foreign
			 * key) may use needs LockTupleExclusive */
			if (rc->oldtup)
				heap_freetuple(rc->oldtup);
			rc->oldtup = lsm_row_copy_tuple(rel, rowid, rc->target.rec, rc->target.len,
											&rc->target.h);
			rc->mode = index_columns_change(rel, INDEX_ATTR_BITMAP_KEY, rc->oldtup,
											rc->newtup) ?
				LockTupleExclusive : LockTupleNoKeyExclusive;
		}
		judged = version_to_judge(rel, rowid, rc, snapshot, cid, which, &prev);
		res = lsm_row_modifiable(&judged->h, rowid, cid, rc->mode, tmfd, &xwait);
		if (res == TM_Ok && judged != &rc->target)
			res = lsm_row_modifiable(&rc->target.h, rowid, cid, rc->mode, tmfd, &xwait);
		if (res == TM_Ok && crosscheck != InvalidSnapshot &&
			!lsm_row_visible(&rc->target.h, crosscheck, NULL))
			res = TM_Updated;	/* RI check in REPEATABLE READ: as heap */
		if (res == TM_Ok)
			return TM_Ok;
		lsm_free(rc->rec);
		lsm_rowlock_release(&rel->rd_node, rowid);
		if (rc->oldtup)
		{
			heap_freetuple(rc->oldtup);
			rc->oldtup = NULL;
		}
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

/*
 * The record after a change to its target: newv (if given) first, then
 * the target under header th, then the older versions some snapshot may
 * still see.  Pruning stops at the first version dead to every snapshot:
 * the ones after it are older still.  palloc'd, *len bytes.
 */
static uint8 *
rebuild_record(Relation rel, uint64 rowid, const RowForChange *rc, const LsmRowVersion *newv,
			   const LsmRowHeader *th, size_t *len)
{
	GlobalVisState *vistest = GlobalVisTestFor(rel);
	LsmRowIter	it = rc->older;
	LsmRowWriter w = {0};
	LsmRowVersion v;

	if (newv)
		lsm_row_writer_add(&w, &newv->h, newv);
	lsm_row_writer_add(&w, th, &rc->target);
	while (lsm_next_version(rel, rowid, &it, &v) && !lsm_row_surely_dead(&v.h, vistest))
		lsm_row_writer_add(&w, &v.h, &v);
	return lsm_row_writer_finish(&w, len);
}

/* The target's header once transaction xid (command cid) deleted or
 * updated it: lockers are gone with it. */
static LsmRowHeader
replaced_header(const RowForChange *rc, TransactionId xid, CommandId cid, bool updated,
				uint64 successor)
{
	LsmRowHeader h = rc->target.h;

	h.xmax = xid;
	h.cmax = cid;
	h.flags &= ~(LSM_ROW_LOCK_ONLY | LSM_ROW_UPDATED | LSM_ROW_MULTI | LSM_ROW_LOCK_MODE);
	h.successor = 0;
	if (updated)
	{
		h.flags |= LSM_ROW_UPDATED;
		h.successor = successor;
	}
	return h;
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
	RowForChange rc = {0};
	uint8	   *newrec;
	size_t		len;
	LsmRowHeader h;
	TransactionId xid = lsm_xact_write_xid();
	TM_Result	res;

	if (!lsm_tid_to_rowid(tid, &rowid))
		error_invisible("delete");
	CheckForSerializableConflictIn(rel, tid, ItemPointerGetBlockNumber(tid));
	res = lock_row_for_change(rel, rowid, cid, LockTupleExclusive, snapshot, VERSION_AS_SEEN,
							  crosscheck, wait ? LockWaitBlock : LockWaitSkip, XLTW_Delete,
							  tmfd, &rc);
	if (res == TM_Invisible)
		error_invisible("delete");
	if (res == TM_WouldBlock)
		return TM_BeingModified;
	if (res != TM_Ok)
		return res;
	h = replaced_header(&rc, xid, cid, false, 0);
	newrec = rebuild_record(rel, rowid, &rc, NULL, &h, &len);
	lsm_free(rc.rec);
	put_row(rel, rowid, newrec, len);
	lsm_rowlock_release(&rel->rd_node, rowid);
	pfree(newrec);
	pgstat_count_heap_delete(rel);
	return TM_Ok;
}

/*
 * Whether an update may keep the row's TID: no indexed column changed
 * (heap's HOT rule, by binary equality of the values), and no after-row
 * trigger will fetch the old and the new version by TID (they would be
 * the same).  Foreign keys' triggers only read the new version.
 */
static bool
update_keeps_tid(Relation rel, HeapTuple oldtup, HeapTuple newtup)
{
	TriggerDesc *td = rel->trigdesc;

	if (td != NULL && td->trig_update_after_row)
	{
		for (int t = 0; t < td->numtriggers; t++)
		{
			Trigger    *trig = &td->triggers[t];

			if (TRIGGER_TYPE_MATCHES(trig->tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_AFTER,
									 TRIGGER_TYPE_UPDATE) &&
				RI_FKey_trigger_type(trig->tgfoid) == RI_TRIGGER_NONE)
				return false;
		}
	}
	return !index_columns_change(rel, INDEX_ATTR_BITMAP_ALL, oldtup, newtup);
}

/* Writes an update that keeps the TID; false if the record would grow
 * past LSM_INPLACE_MAX_BYTES (old snapshots hold many versions). */
static bool
write_update_in_place(Relation rel, uint64 rowid, const RowForChange *rc,
					  const LsmRowVersion *newv, TransactionId xid, CommandId cid)
{
	LsmRowHeader th = replaced_header(rc, xid, cid, true, rowid);
	size_t		len;
	uint8	   *rec = rebuild_record(rel, rowid, rc, newv, &th, &len);

	if (len > LSM_INPLACE_MAX_BYTES && len > newv->len + rc->target.len)
	{
		pfree(rec);
		return false;
	}
	put_row(rel, rowid, rec, len);
	pfree(rec);
	return true;
}

/* Writes an update to a new rowid, linked from the old record, in one
 * atomic batch. */
static void
write_update_to_new_rowid(Relation rel, uint64 rowid, uint64 newrowid,
						  const RowForChange *rc, const LsmRowVersion *newv,
						  TransactionId xid, CommandId cid)
{
	LsmRowHeader th = replaced_header(rc, xid, cid, true, newrowid);
	size_t		oldlen;
	uint8	   *oldrec = rebuild_record(rel, rowid, rc, NULL, &th, &oldlen);
	lsm_batch  *batch;
	uint8		key[LSM_KEY_LEN];
	int			res;

	lsm_am_check(lsm_batch_create(&batch), "start a batch");
	lsm_key_encode(key, &rel->rd_node, newrowid);
	res = lsm_batch_put(batch, key, LSM_KEY_LEN, newv->rec, newv->len);
	lsm_key_encode(key, &rel->rd_node, rowid);
	if (res == LSM_OK)
		res = lsm_batch_put(batch, key, LSM_KEY_LEN, oldrec, oldlen);
	if (res == LSM_OK)
		res = lsm_write(lsm_am_db(), NULL, batch);
	lsm_batch_destroy(batch);
	pfree(oldrec);
	lsm_am_check(res, "write an updated row");
	lsm_xact_wrote();
}

/*
 * An update that changes no key column waits for no FOR KEY SHARE locker
 * (heap's rule: a foreign key check does not block it); the lockers still
 * running, and ours, move to the new version, which is the row they
 * protect from now on (heap keeps them in the new tuple's xmax too).
 */
static void
carry_key_share_lockers(const LsmRowHeader *old, LsmRowHeader *nh)
{
	if (!TransactionIdIsValid(old->xmax) || !(old->flags & LSM_ROW_LOCK_ONLY))
		return;
	if (old->flags & LSM_ROW_MULTI)
	{
		MultiXactMember *members;
		int			n = GetMultiXactIdMembers(old->xmax, &members, false, true);
		int			kept = 0;

		for (int i = 0; i < n; i++)
			if (TransactionIdIsCurrentTransactionId(members[i].xid) ||
				TransactionIdIsInProgress(members[i].xid))
				members[kept++] = members[i];
		if (kept == 1)
			lsm_row_set_single_locker(nh, members[0].xid,
									  lsm_lock_mode_of_status(members[0].status));
		else if (kept > 1)
		{
			nh->xmax = MultiXactIdCreateFromMembers(kept, members);
			nh->flags |= LSM_ROW_LOCK_ONLY | LSM_ROW_MULTI;
		}
		if (n > 0)
			pfree(members);
		return;
	}
	if (TransactionIdIsCurrentTransactionId(old->xmax) || TransactionIdIsInProgress(old->xmax))
		lsm_row_set_single_locker(nh, old->xmax, lsm_row_lock_mode(old));
}

TM_Result
lsm_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot, CommandId cid,
				 Snapshot snapshot, Snapshot crosscheck, bool wait, TM_FailureData *tmfd,
				 LockTupleMode *lockmode, bool *update_indexes)
{
	uint64		rowid,
				newrowid;
	RowForChange rc = {0};
	uint8	   *newrec;
	size_t		newlen;
	LsmRowHeader nh = {0};
	LsmRowVersion newv;
	TransactionId xid = lsm_xact_write_xid();
	HeapTuple	oldtup,
				tuple;
	bool		should_free;
	bool		in_place;
	TM_Result	res;

	*lockmode = LockTupleExclusive;
	*update_indexes = true;
	if (!lsm_tid_to_rowid(otid, &rowid))
		error_invisible("update");
	CheckForSerializableConflictIn(rel, otid, ItemPointerGetBlockNumber(otid));
	MultiXactIdSetOldestMember();	/* the new version may carry a multixact of lockers */
	rc.newtup = ExecFetchSlotHeapTuple(slot, true, &should_free);
	res = lock_row_for_change(rel, rowid, cid, LockTupleExclusive, snapshot, VERSION_AS_SEEN,
							  crosscheck, wait ? LockWaitBlock : LockWaitSkip, XLTW_Update,
							  tmfd, &rc);
	if (should_free)
		heap_freetuple(rc.newtup);
	rc.newtup = NULL;
	*lockmode = rc.mode;
	if (res == TM_Invisible)
		error_invisible("update");
	if (res == TM_WouldBlock)
		return TM_BeingModified;
	if (res != TM_Ok)
		return res;

	/* the toaster needs the old tuple to reuse or drop its values */
	oldtup = rc.oldtup;
	tuple = tuple_to_store(rel, slot, oldtup, 0, &should_free);
	nh.xmin = xid;
	nh.cmin = cid;
	if (rc.mode == LockTupleNoKeyExclusive)
		carry_key_share_lockers(&rc.target.h, &nh);
	newrec = lsm_row_build(&nh, tuple, &newlen);
	newv = lsm_row_version_of(newrec, newlen);
	in_place = update_keeps_tid(rel, oldtup, tuple) &&
		write_update_in_place(rel, rowid, &rc, &newv, xid, cid);
	if (in_place)
	{
		newrowid = rowid;
		*update_indexes = false;
	}
	else
	{
		lsm_rowid_alloc(rel, 1, &newrowid);
		write_update_to_new_rowid(rel, rowid, newrowid, &rc, &newv, xid, cid);
	}
	lsm_free(rc.rec);
	lsm_rowlock_release(&rel->rd_node, rowid);
	pgstat_count_heap_update(rel, in_place);

	pfree(newrec);
	heap_freetuple(oldtup);
	if (should_free)
		heap_freetuple(tuple);
	slot->tts_tableOid = RelationGetRelid(rel);
	lsm_rowid_to_tid(newrowid, &slot->tts_tid);
	return TM_Ok;
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
			if (lsm_multi_has_our_lock(h->xmax, mode))
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

/* Stores a copy of rc's target under header h in slot; frees rc->rec. */
static void
store_target(Relation rel, uint64 rowid, RowForChange *rc, const LsmRowHeader *h,
			 TupleTableSlot *slot)
{
	PG_TRY();
	{
		HeapTuple	tuple = lsm_row_copy_tuple(rel, rowid, rc->target.rec, rc->target.len, h);

		ExecStoreHeapTuple(tuple, slot, true);
		slot->tts_tableOid = RelationGetRelid(rel);
		slot->tts_tid = tuple->t_self;
	}
	PG_FINALLY();
	{
		lsm_free(rc->rec);
	}
	PG_END_TRY();
}

/* The version a lock did not get (heap's callers read its xmin). */
static void
store_newest(Relation rel, uint64 rowid, TupleTableSlot *slot)
{
	RowForChange rc = {0};
	LsmRowHeader h;

	if (!lsm_fetch_row(&rel->rd_node, rowid, &rc.rec, &rc.len, &h))
		return;
	PG_TRY();
	{
		locate_target(rel, rowid, &rc);
	}
	PG_CATCH();
	{
		lsm_free(rc.rec);
		PG_RE_THROW();
	}
	PG_END_TRY();
	store_target(rel, rowid, &rc, &rc.target.h, slot);
}

/*
 * Row locks.  Versions of one record share its TID, so the caller's TID
 * does not say which one it read: FIND_LAST_VERSION (and READ COMMITTED's
 * ON CONFLICT, which locks what its dirty snapshot found) lock the newest,
 * reporting "traversed" when the caller's snapshot did not see that one;
 * otherwise (REPEATABLE READ) the version the snapshot saw must still be
 * the newest, as heap's TID-exact lock demands.
 */
TM_Result
lsm_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot,
			   CommandId cid, LockTupleMode mode, LockWaitPolicy wait_policy, uint8 flags,
			   TM_FailureData *tmfd)
{
	uint64		rowid;
	bool		traversed = false;
	bool		find_last = (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION) != 0;
	WhichVersion which = find_last ? VERSION_FOLLOW :
		!IsolationUsesXactSnapshot() ? VERSION_NEWEST : VERSION_AS_SEEN;

	if (!lsm_tid_to_rowid(tid, &rowid))
		error_invisible("lock");
	MultiXactIdSetOldestMember();	/* before this transaction joins a multixact */
	for (;;)
	{
		RowForChange rc = {0};
		LsmRowHeader h;
		TM_Result	res;

		res = lock_row_for_change(rel, rowid, cid, mode, snapshot, which, InvalidSnapshot,
								  wait_policy, XLTW_Lock, tmfd, &rc);
		tmfd->traversed = traversed;
		if (res == TM_Updated && find_last && ItemPointerIsValid(&tmfd->ctid) &&
			lsm_tid_to_rowid(&tmfd->ctid, &rowid))
		{
			/* lock the newest version instead; like heap, *tid follows
			 * it, so the caller's retry acts on that version */
			traversed = true;
			*tid = tmfd->ctid;
			continue;
		}
		if (res == TM_Invisible)
			store_newest(rel, rowid, slot);
		if (res != TM_Ok)
			return res;
		h = rc.target.h;
		if (find_last && snapshot != NULL && IsMVCCSnapshot(snapshot) &&
			!TransactionIdIsCurrentTransactionId(h.xmin) && !lsm_row_insert_visible(&h, snapshot))
			traversed = true;	/* written after the caller's snapshot */
		PG_TRY();
		{
			if (add_locker(&h, mode))
			{
				size_t		len;
				uint8	   *newrec;

				h.cmax = cid;
				newrec = rebuild_record(rel, rowid, &rc, NULL, &h, &len);
				put_row(rel, rowid, newrec, len);
				pfree(newrec);
			}
		}
		PG_CATCH();
		{
			lsm_free(rc.rec);
			PG_RE_THROW();
		}
		PG_END_TRY();
		lsm_rowlock_release(&rel->rd_node, rowid);
		store_target(rel, rowid, &rc, &h, slot);
		tmfd->traversed = traversed;
		return TM_Ok;
	}
}
