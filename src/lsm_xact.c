/*-------------------------------------------------------------------------
 *
 * lsm_xact.c
 *	  lsm tables and transactions: the engine WAL at commit, key ranges
 *	  dropped at commit or abort, and engine iterators of aborted scans.
 *
 * Durability.  Rows are written to the engine without waiting for its
 * WAL.  Before the transaction's commit record (XACT_EVENT_PRE_COMMIT,
 * PRE_PREPARE), a transaction that wrote rows makes the engine WAL
 * durable: fsync (group commit across backends) when synchronous_commit
 * is on, else a write to the OS (it then survives a crash of PostgreSQL;
 * the lsm worker fsyncs within lsm.wal_sync_delay).  So a transaction
 * whose commit record is durable has durable rows; one that never
 * committed is invisible through the commit log whatever reached disk.
 *
 * DROP TABLE and TRUNCATE.  No table AM callback runs at DROP, so the
 * object access hook notes the dropped relation's relfilenode, and
 * relation_set_new_filenode notes a truncated one; at commit their key
 * ranges are range-deleted (one tombstone each) and their row-id
 * allocators forgotten.  A new relfilenode's range is deleted if the
 * transaction aborts.  Pending ranges belong to the subtransaction that
 * noted them and move to the parent when it commits.
 *
 * Iterators.  A scan's engine iterator pins memtables and a snapshot; if
 * the transaction errors out before the scan ends, the abort destroys it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "replication/message.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "lsm_am.h"
#include "lsm_row.h"

typedef struct PendingRange
{
	dlist_node	node;
	RelFileNode rnode;
	bool		on_commit;		/* else: on abort */
	SubTransactionId subid;
} PendingRange;

typedef struct OpenIter
{
	dlist_node	node;
	lsm_iter   *it;
	SubTransactionId subid;
} OpenIter;

static dlist_head pending_ranges = DLIST_STATIC_INIT(pending_ranges);
static TransactionId logged_xid = InvalidTransactionId;
static dlist_head open_iters = DLIST_STATIC_INIT(open_iters);
static bool xact_wrote = false;
static object_access_hook_type prev_object_access_hook = NULL;

/*
 * The (sub)transaction's xid, logged in PostgreSQL's WAL before its first
 * row: a record carries the xid of the transaction inserting it, and redo
 * advances the next xid past it.  Once that record is durable, a crash
 * cannot make PostgreSQL hand the xid out again; a memtable becomes a file
 * only after it is (lsm_flush_pg_wal), and rows still in the engine WAL
 * are judged at replay (lsm_recovery.c).  The record is a
 * non-transactional logical message: no flush, redo does nothing with it.
 */
TransactionId
lsm_xact_write_xid(void)
{
	TransactionId xid = GetCurrentTransactionId();

	if (xid != logged_xid)
	{
		(void) LogLogicalMessage("lsm_am", "", 0, false);
		logged_xid = xid;
	}
	return xid;
}

/*
 * The end of the WAL inserted so far.  GetXLogInsertRecPtr names the first
 * byte the next record would take, and when the last record ended on a
 * page boundary that lies past the next page's header, WAL no one has
 * written: XLogFlush refuses to flush that far ("xlog flush request ... is
 * not satisfied").  The records before it all end at the boundary.
 */
static XLogRecPtr
inserted_wal_end(void)
{
	XLogRecPtr	upto = GetXLogInsertRecPtr();

	if (XLogSegmentOffset(upto, wal_segment_size) == SizeOfXLogLongPHD)
		upto -= SizeOfXLogLongPHD;
	else if (upto % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		upto -= SizeOfXLogShortPHD;
	return upto;
}

/*
 * The engine's flush hook: before a memtable becomes a file, PostgreSQL's
 * WAL is flushed as far as it was written, which covers the xid record of
 * every row in the memtable (each was logged before its row).  An error
 * must not unwind through the engine: it fails the flush instead.
 */
bool		lsm_pg_wal_flush_failed = false;

int
lsm_flush_pg_wal(void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int failed = 0;

	PG_TRY();
	{
		if (!RecoveryInProgress())
			XLogFlush(inserted_wal_end());
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		failed = 1;
	}
	PG_END_TRY();
	lsm_pg_wal_flush_failed = failed;
	return failed;
}

void
lsm_xact_wrote(void)
{
	xact_wrote = true;
}

void
lsm_delete_relation_range(const RelFileNode *rnode)
{
	uint8		lo[LSM_KEY_LEN],
				hi[LSM_KEY_LEN];
	RelFileNode next = *rnode;

	lsm_key_encode(lo, rnode, 0);
	/* the whole range, the row-id mark included: up to the next relNode */
	if (next.relNode == PG_UINT32_MAX)
	{
		memset(hi, 0xff, LSM_KEY_LEN);
	}
	else
	{
		next.relNode++;
		lsm_key_encode(hi, &next, 0);
	}
	lsm_am_check(lsm_delete_range(lsm_am_db(), NULL, lo, LSM_KEY_LEN, hi, LSM_KEY_LEN),
				 "delete a table's rows");
	xact_wrote = true;
}

void
lsm_xact_drop_range(const RelFileNode *rnode, bool on_commit)
{
	PendingRange *p = MemoryContextAlloc(TopMemoryContext, sizeof(PendingRange));

	p->rnode = *rnode;
	p->on_commit = on_commit;
	p->subid = GetCurrentSubTransactionId();
	dlist_push_tail(&pending_ranges, &p->node);
}

void *
lsm_xact_remember_iter(lsm_iter *it)
{
	OpenIter   *o = MemoryContextAlloc(TopMemoryContext, sizeof(OpenIter));

	o->it = it;
	o->subid = GetCurrentSubTransactionId();
	dlist_push_tail(&open_iters, &o->node);
	return o;
}

void
lsm_xact_forget_iter(void *handle)
{
	OpenIter   *o = handle;

	dlist_delete(&o->node);
	lsm_iter_destroy(o->it);
	pfree(o);
}

/* Destroys the iterators of subtransaction subid (all: Invalid). */
static void
destroy_iters(SubTransactionId subid)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &open_iters)
	{
		OpenIter   *o = dlist_container(OpenIter, node, iter.cur);

		if (subid == InvalidSubTransactionId || o->subid == subid)
			lsm_xact_forget_iter(o);
	}
}

/* Deletes a dropped range; after the commit, a failure is only reported. */
static void
carry_out(PendingRange *p, bool after_commit)
{
	PG_TRY();
	{
		lsm_delete_relation_range(&p->rnode);
		lsm_rowid_forget(&p->rnode);
		if (after_commit)
			lsm_request_compaction(&p->rnode);	/* the space comes back */
	}
	PG_CATCH();
	{
		if (!after_commit)
			PG_RE_THROW();
		EmitErrorReport();
		FlushErrorState();
	}
	PG_END_TRY();
}

/*
 * Carries out (when the transaction ends, `committed` says how) or passes
 * to the parent (a subtransaction commit) the pending ranges.  Runs after
 * the point of no return on commit: a failure is only a warning, and what
 * is left is space, never a visible row (the relfilenode is gone).
 */
static void
end_ranges(bool top, bool committed, SubTransactionId subid, SubTransactionId parent)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &pending_ranges)
	{
		PendingRange *p = dlist_container(PendingRange, node, iter.cur);

		if (!top && p->subid != subid)
			continue;
		if (!top && committed)
		{
			p->subid = parent;
			continue;
		}
		dlist_delete(&p->node);
		if (p->on_commit == committed)
			carry_out(p, top && committed);
		pfree(p);
	}
}

/* Makes what this transaction wrote durable before its commit record. */
static void
make_durable(void)
{
	lsm_db	   *db;

	if (!xact_wrote)
		return;
	db = lsm_am_db();
	if (synchronous_commit > SYNCHRONOUS_COMMIT_OFF)
		lsm_am_check(lsm_sync_wal(db), "sync its log at commit");
	else
		lsm_am_check(lsm_write_wal(db), "write its log at commit");
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			make_durable();
			break;
		case XACT_EVENT_COMMIT:
			destroy_iters(InvalidSubTransactionId);	/* none should be left */
			end_ranges(true, true, InvalidSubTransactionId, InvalidSubTransactionId);
			/* the range deletes are logged; the worker syncs them */
			xact_wrote = false;
			break;
		case XACT_EVENT_ABORT:
			destroy_iters(InvalidSubTransactionId);
			end_ranges(true, false, InvalidSubTransactionId, InvalidSubTransactionId);
			xact_wrote = false;
			break;
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			destroy_iters(InvalidSubTransactionId);
			break;
		case XACT_EVENT_PREPARE:
			/* DROP/TRUNCATE are refused in prepared transactions by core */
			xact_wrote = false;
			break;
		default:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		destroy_iters(mySubid);
		end_ranges(false, false, mySubid, parentSubid);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		end_ranges(false, true, mySubid, parentSubid);
}

/* DROP TABLE of an lsm table: its rows go when the transaction commits. */
static void
object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == RelationRelationId && subId == 0 &&
		OidIsValid(lsm_am_oid()))
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(objectId));

		if (HeapTupleIsValid(tup))
		{
			Form_pg_class form = (Form_pg_class) GETSTRUCT(tup);

			if (form->relam == lsm_am_oid() && OidIsValid(form->relfilenode))
			{
				RelFileNode rnode;

				rnode.spcNode = OidIsValid(form->reltablespace) ?
					form->reltablespace : MyDatabaseTableSpace;
				rnode.dbNode = MyDatabaseId;
				rnode.relNode = form->relfilenode;
				lsm_xact_drop_range(&rnode, true);
			}
			ReleaseSysCache(tup);
		}
	}
}

void
lsm_xact_init(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
	prev_object_access_hook = object_access_hook;
	object_access_hook = object_access;
}
