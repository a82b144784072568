/*-------------------------------------------------------------------------
 *
 * lsm_handler.c
 *	  The lsm table access method: its routine, storage-level callbacks
 *	  (new relfilenode, truncate, copy), sizes and estimates, and index
 *	  builds.  Scans are in lsm_scan.c, writes in lsm_modify.c.
 *
 * A relation is a key range of the engine (lsm_row.h).  It still gets an
 * (empty) file through RelationCreateStorage, as heap does: PostgreSQL's
 * own machinery then WAL-logs its creation, and no new relfilenode can
 * reuse its number until the file is unlinked after the DROP commits,
 * which is after the range is deleted (lsm_xact.c).
 *
 * Temporary and unlogged lsm tables are refused: their lifetime (session
 * end, crash reset) is tied to files the engine does not use.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/multixact.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "access/genam.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/procarray.h"
#include "storage/smgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplesort.h"

#include "lsm_tableam.h"

PG_FUNCTION_INFO_V1(lsm_am_handler);

/* ------------------------------------------------ storage callbacks */

static void
lsm_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode, char persistence,
							  TransactionId *freezeXid, MultiXactId *minmulti)
{
	SMgrRelation srel;

	if (persistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("lsm tables cannot be temporary"),
				 errhint("Create the temporary table with USING heap.")));
	if (persistence == RELPERSISTENCE_UNLOGGED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("lsm tables cannot be unlogged"),
				 errhint("Create the table without UNLOGGED, or with USING heap.")));
	(void) lsm_am_db();			/* a clear error now if not preloaded */
	*freezeXid = RecentXmin;
	*minmulti = GetOldestMultiXactId();
	srel = RelationCreateStorage(*newrnode, persistence, true);
	smgrclose(srel);

	/* a reused relfilenode must show nothing of its past */
	lsm_delete_relation_range(newrnode);
	lsm_rowid_forget(newrnode);
	lsm_xact_drop_range(newrnode, false);
	/* TRUNCATE: the old rows go when it commits */
	if (!RelFileNodeEquals(rel->rd_node, *newrnode) && OidIsValid(rel->rd_node.relNode))
		lsm_xact_drop_range(&rel->rd_node, true);
}

static void
lsm_relation_nontransactional_truncate(Relation rel)
{
	/* its indexes are truncated too: no entry points at a reused id */
	lsm_delete_relation_range(&rel->rd_node);
	lsm_rowid_forget(&rel->rd_node);
}

/* ALTER TABLE SET TABLESPACE: the rows move to newrnode's key range. */
static void
lsm_relation_copy_data(Relation rel, const RelFileNode *newrnode)
{
	lsm_read_options ro = {0};
	uint8		lo[LSM_KEY_LEN],
				hi[LSM_KEY_LEN];
	lsm_db	   *db = lsm_am_db();
	lsm_iter   *it;
	SMgrRelation srel;

	srel = RelationCreateStorage(*newrnode, rel->rd_rel->relpersistence, true);
	smgrclose(srel);
	lsm_delete_relation_range(newrnode);
	lsm_xact_drop_range(newrnode, false);
	lsm_key_encode(lo, &rel->rd_node, 0);
	lsm_key_encode(hi, &rel->rd_node, LSM_ROWID_RESERVE + 1);
	ro.lower_bound = lo;
	ro.lower_bound_len = LSM_KEY_LEN;
	ro.upper_bound = hi;
	ro.upper_bound_len = LSM_KEY_LEN;
	lsm_am_check(lsm_iter_create(db, &ro, &it), "start a copy");
	PG_TRY();
	{
		for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
		{
			size_t		klen,
						vlen;
			const uint8 *k = lsm_iter_key(it, &klen);
			const void *v = lsm_iter_value(it, &vlen);
			uint8		nk[LSM_KEY_LEN];

			CHECK_FOR_INTERRUPTS();
			lsm_key_encode(nk, newrnode, lsm_key_rowid(k));
			lsm_am_check(lsm_put(db, NULL, nk, LSM_KEY_LEN, v, vlen), "copy a row");
		}
		lsm_am_check(lsm_iter_status(it), "copy a table");
	}
	PG_FINALLY();
	{
		lsm_iter_destroy(it);
	}
	PG_END_TRY();
	lsm_xact_wrote();
	lsm_xact_drop_range(&rel->rd_node, true);
}

static uint64
lsm_relation_size(Relation rel, ForkNumber forkNumber)
{
	uint64		high;

	if (forkNumber != MAIN_FORKNUM && forkNumber != InvalidForkNumber)
		return 0;
	high = lsm_rowid_high(rel);
	/* blocks as TIDs number them: what ANALYZE and parallel scans walk */
	return ((high + LSM_ROWS_PER_BLOCK - 1) / LSM_ROWS_PER_BLOCK) * (uint64) BLCKSZ;
}

/* heap's rule: a TOAST table when a row could exceed the threshold */
static bool
lsm_relation_needs_toast_table(Relation rel)
{
	TupleDesc	tupdesc = rel->rd_att;
	int32		data_length = 0;
	bool		maxlength_unknown = false;
	bool		has_toastable_attrs = false;
	int32		tuple_length;

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (att->attisdropped)
			continue;
		data_length = att_align_nominal(data_length, att->attalign);
		if (att->attlen > 0)
			data_length += att->attlen;
		else
		{
			int32		maxlen = type_maximum_size(att->atttypid, att->atttypmod);

			if (maxlen < 0)
				maxlength_unknown = true;
			else
				data_length += maxlen;
			if (att->attstorage != TYPSTORAGE_PLAIN)
				has_toastable_attrs = true;
		}
	}
	if (!has_toastable_attrs)
		return false;
	if (maxlength_unknown)
		return true;
	tuple_length = MAXALIGN(SizeofHeapTupleHeader + BITMAPLEN(tupdesc->natts)) +
		MAXALIGN(data_length);
	return tuple_length > TOAST_TUPLE_THRESHOLD;
}

static Oid
lsm_relation_toast_am(Relation rel)
{
	return HEAP_TABLE_AM_OID;
}

/*
 * What a sequential scan reads, in pages: the engine's bytes in the
 * table's key range, memtables included.  Every version written since the
 * last compaction is there, so a small table updated in place thousands
 * of times costs its scan far more than its row count says (as heap's
 * bloat raises relpages), and the planner then prefers an index: without
 * this, pgbench's branches and tellers were scanned on every update.
 * Row counts still come from the rowids (curpages).  Kept for a second
 * in the relcache entry: pgbench plans every statement.
 */
typedef struct ScannedPagesCache
{
	TimestampTz at;
	BlockNumber pages;
} ScannedPagesCache;

#define SCANNED_PAGES_TTL_MS	1000	/* planning is per statement; the size moves slowly */

static BlockNumber
scanned_pages(Relation rel)
{
	ScannedPagesCache *c = (ScannedPagesCache *) rel->rd_amcache;
	TimestampTz now = GetCurrentTimestamp();
	uint8		lo[LSM_KEY_LEN],
				hi[LSM_KEY_LEN];
	uint64		bytes = 0;

	if (c != NULL && !TimestampDifferenceExceeds(c->at, now, SCANNED_PAGES_TTL_MS))
		return c->pages;
	lsm_key_encode(lo, &rel->rd_node, 0);
	lsm_key_encode(hi, &rel->rd_node, LSM_ROWID_MAX);
	if (lsm_approximate_size(lsm_am_db(), lo, LSM_KEY_LEN, hi, LSM_KEY_LEN, 1, &bytes) != LSM_OK)
		return 0;
	if (c == NULL)
	{
		/* the relcache frees it with the entry */
		c = MemoryContextAlloc(CacheMemoryContext, sizeof(ScannedPagesCache));
		rel->rd_amcache = c;
	}
	c->at = now;
	c->pages = (BlockNumber) Min(bytes / BLCKSZ, (uint64) MaxBlockNumber);
	return c->pages;
}

static void
lsm_relation_estimate_size(Relation rel, int32 *attr_widths, BlockNumber *pages,
						   double *tuples, double *allvisfrac)
{
	BlockNumber curpages = (BlockNumber) (lsm_relation_size(rel, MAIN_FORKNUM) / BLCKSZ);
	double		reltuples = rel->rd_rel->reltuples;
	BlockNumber relpages = rel->rd_rel->relpages;

	*pages = Max(curpages, scanned_pages(rel));
	*allvisfrac = 0;
	if (curpages == 0)
		*tuples = 0;
	else if (reltuples >= 0 && relpages > 0)
		*tuples = Max(1, rint(reltuples / relpages * curpages));	/* density as measured */
	else
		*tuples = (double) curpages * LSM_ROWS_PER_BLOCK;
}

/* ------------------------------------------------------ index builds */

typedef struct BuildState
{
	Relation	table;
	Relation	index;
	IndexInfo  *info;
	IndexBuildCallback callback;
	void	   *callback_state;
	EState	   *estate;
	ExprContext *econtext;
	TupleTableSlot *slot;
	ExprState  *predicate;
	Snapshot	snapshot;		/* CREATE INDEX CONCURRENTLY: rows it sees */
	TransactionId oldest_xmin;	/* otherwise: what is dead to all goes */
	LsmXidCache xids;
	double		reltuples;
} BuildState;

/*
 * The version of a record an index build indexes (one entry a TID, as
 * heap indexes a HOT chain by its root): the one the concurrent build's
 * snapshot sees, else the newest no snapshot has given up on.  Older
 * versions some snapshot still needs may hold other values of the new
 * index's columns: as heap's broken HOT chains, that makes the index
 * unusable for transactions older than it (indcheckxmin).
 */
static bool
version_to_index(BuildState *bs, uint64 rowid, const uint8 *rec, size_t len,
				 LsmRowVersion *v, bool *alive)
{
	LsmRowIter	it;
	bool		found = false;

	if (bs->snapshot != NULL)
	{
		*alive = true;
		return lsm_record_visible_version(bs->table, rowid, rec, len, bs->snapshot,
										  &bs->xids, v);
	}
	lsm_row_iter_init(&it, rec, len);
	for (;;)
	{
		LsmRowVersion cur;

		if (!lsm_next_version(bs->table, rowid, &it, found ? &cur : v))
			break;
		if (!found)
		{
			/* as heap: what no snapshot can see is not indexed; a version
			 * an older snapshot may still need is, but not as alive */
			switch (lsm_row_vacuum_state(&v->h, bs->oldest_xmin, &bs->xids))
			{
				case HEAPTUPLE_DEAD:
					continue;
				case HEAPTUPLE_RECENTLY_DEAD:
					*alive = false;
					break;
				case HEAPTUPLE_LIVE:
				case HEAPTUPLE_INSERT_IN_PROGRESS:
					*alive = true;
					break;
				default:
					*alive = lsm_row_alive(&v->h, &bs->xids);
					break;
			}
			found = true;
		}
		else if (lsm_row_vacuum_state(&cur.h, bs->oldest_xmin, &bs->xids) != HEAPTUPLE_DEAD)
		{
			bs->info->ii_BrokenHotChain = true;
			break;
		}
	}
	return found;
}

static bool
build_one(void *arg, uint64 rowid, const uint8 *rec, size_t len, const LsmRowHeader *h)
{
	BuildState *bs = arg;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	HeapTuple	tuple;
	bool		alive;
	LsmRowVersion v;
	ItemPointerData tid;

	if (!version_to_index(bs, rowid, rec, len, &v, &alive))
		return true;
	if (alive)
		bs->reltuples += 1;
	MemoryContextReset(bs->econtext->ecxt_per_tuple_memory);
	tuple = lsm_row_copy_tuple(bs->table, rowid, v.rec, v.len, &v.h);
	ExecStoreHeapTuple(tuple, bs->slot, true);
	if (bs->predicate && !ExecQual(bs->predicate, bs->econtext))
		return true;
	FormIndexDatum(bs->info, bs->slot, bs->estate, values, isnull);
	tid = tuple->t_self;
	bs->callback(bs->index, &tid, values, isnull, alive, bs->callback_state);
	return true;
}

static double
lsm_index_build_range_scan(Relation table_rel, Relation index_rel, IndexInfo *index_info,
						   bool allow_sync, bool anyvisible, bool progress,
						   BlockNumber start_blockno, BlockNumber numblocks,
						   IndexBuildCallback callback, void *callback_state,
						   TableScanDesc scan)
{
	BuildState	bs = {0};
	uint64		first = (uint64) start_blockno * LSM_ROWS_PER_BLOCK,
				end = LSM_ROWID_MAX;

	if (numblocks != InvalidBlockNumber)
		end = (uint64) (start_blockno + numblocks) * LSM_ROWS_PER_BLOCK;
	bs.table = table_rel;
	bs.index = index_rel;
	bs.info = index_info;
	bs.callback = callback;
	bs.callback_state = callback_state;
	bs.estate = CreateExecutorState();
	bs.econtext = GetPerTupleExprContext(bs.estate);
	bs.slot = table_slot_create(table_rel, NULL);
	bs.econtext->ecxt_scantuple = bs.slot;
	bs.predicate = ExecPrepareQual(index_info->ii_Predicate, bs.estate);
	lsm_xid_cache_init(&bs.xids);
	bs.oldest_xmin = GetOldestNonRemovableTransactionId(table_rel);
	if (scan != NULL)
	{
		/* a worker of a parallel build: the blocks the shared scan hands
		 * out, consecutive ones visited as one range; its snapshot is MVCC
		 * for a concurrent build, else SnapshotAny */
		uint64		f,
					e,
					run_first = 0,
					run_end = 0;

		if (IsMVCCSnapshot(scan->rs_snapshot))
			bs.snapshot = scan->rs_snapshot;
		while (lsm_parallel_next_rowids(scan, &f, &e))
		{
			if (run_end > run_first && f == run_end)
			{
				run_end = e;
				continue;
			}
			if (run_end > run_first)
				lsm_scan_rowids(table_rel, run_first, run_end, build_one, &bs);
			run_first = f;
			run_end = e;
		}
		if (run_end > run_first)
			lsm_scan_rowids(table_rel, run_first, run_end, build_one, &bs);
		bs.snapshot = NULL;
		table_endscan(scan);	/* as heap's: the scan is ours to end */
	}
	else
	{
		/* as heap: a concurrent build indexes what its MVCC snapshot sees */
		if (index_info->ii_Concurrent)
			bs.snapshot = RegisterSnapshot(GetTransactionSnapshot());
		lsm_scan_rowids(table_rel, first, end, build_one, &bs);
		if (bs.snapshot != NULL)
			UnregisterSnapshot(bs.snapshot);
	}
	ExecDropSingleTupleTableSlot(bs.slot);
	FreeExecutorState(bs.estate);
	index_info->ii_ExpressionsState = NIL;
	index_info->ii_PredicateState = NULL;
	return bs.reltuples;
}

/* The next TID of the index (sorted), false when there is none. */
static bool
next_index_tid(ValidateIndexState *state, ItemPointer tid)
{
	Datum		val;
	bool		isnull;

	if (!tuplesort_getdatum(state->tuplesort, true, &val, &isnull, NULL))
		return false;
	Assert(!isnull);
	itemptr_decode(tid, DatumGetInt64(val));
	state->itups += 1;
	return true;
}

/*
 * The last phase of CREATE INDEX CONCURRENTLY: every row the reference
 * snapshot sees that the index lacks is inserted.  The index's TIDs come
 * sorted, and an lsm scan returns rows in rowid (TID) order, so one merge
 * pass suffices.  A record's versions share one TID and one entry (the
 * index's columns are the same in all that the snapshot may see, since
 * updates that keep the TID change no indexed column).
 */
static void
lsm_index_validate_scan(Relation table_rel, Relation index_rel, IndexInfo *index_info,
						Snapshot snapshot, ValidateIndexState *state)
{
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	TupleTableSlot *slot = table_slot_create(table_rel, NULL);
	ExprState  *predicate;
	TableScanDesc scan;
	ItemPointerData itid;
	bool		more;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];

	econtext->ecxt_scantuple = slot;
	predicate = ExecPrepareQual(index_info->ii_Predicate, estate);
	scan = table_beginscan_strat(table_rel, snapshot, 0, NULL, true, false);
	more = next_index_tid(state, &itid);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		state->htups += 1;
		while (more && ItemPointerCompare(&itid, &slot->tts_tid) < 0)
			more = next_index_tid(state, &itid);
		if (more && ItemPointerEquals(&itid, &slot->tts_tid))
			continue;
		MemoryContextReset(econtext->ecxt_per_tuple_memory);
		if (predicate != NULL && !ExecQual(predicate, econtext))
			continue;
		FormIndexDatum(index_info, slot, estate, values, isnull);
		index_insert(index_rel, values, isnull, &slot->tts_tid, table_rel,
					 index_info->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, index_info);
		state->tups_inserted += 1;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	index_info->ii_ExpressionsState = NIL;
	index_info->ii_PredicateState = NULL;
}

/*
 * Which index entries point at rows no snapshot can see (btree asks before
 * it splits a page, for entries already marked dead and for likely ones).
 * Each TID is one point lookup; a bottom-up pass stops once the index AM's
 * free-space target is met.  The returned horizon is the newest deleter
 * among the rows still there (a row compaction removed had a deleter older
 * than every snapshot).
 */
static TransactionId
lsm_index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate)
{
	GlobalVisState *vistest = GlobalVisTestFor(rel);
	TransactionId horizon = InvalidTransactionId;
	uint64		high = lsm_rowid_high(rel);
	int			freed = 0;
	int			checked = 0;

	for (int i = 0; i < delstate->ndeltids; i++)
	{
		TM_IndexStatus *st = &delstate->status[delstate->deltids[i].id];
		uint64		rowid;
		uint8	   *rec;
		size_t		len;
		LsmRowHeader h;
		bool		dead;

		checked = i + 1;
		if (!lsm_tid_to_rowid(&delstate->deltids[i].tid, &rowid) || rowid >= high)
			continue;			/* not a row of ours: never deleted */
		if (!lsm_fetch_row(&rel->rd_node, rowid, &rec, &len, &h))
			dead = true;
		else
		{
			PG_TRY();
			{
				TransactionId newest = InvalidTransactionId;

				dead = lsm_record_surely_dead(rel, rowid, rec, len, vistest, &newest) ||
					st->knowndeletable;
				if (dead && TransactionIdIsValid(newest) &&
					(!TransactionIdIsValid(horizon) || TransactionIdFollows(newest, horizon)))
					horizon = newest;
			}
			PG_FINALLY();
			{
				lsm_free(rec);
			}
			PG_END_TRY();
		}
		if (!dead)
			continue;
		st->knowndeletable = true;
		if (delstate->bottomup && (freed += st->freespace) >= delstate->bottomupfreespace)
			break;
	}
	delstate->ndeltids = checked;
	return horizon;
}

static void
lsm_finish_bulk_insert(Relation rel, int options)
{
}

static const TableAmRoutine lsm_methods = {
	.type = T_TableAmRoutine,

	.slot_callbacks = lsm_slot_callbacks,
	.scan_begin = lsm_scan_begin,
	.scan_end = lsm_scan_end,
	.scan_rescan = lsm_scan_rescan,
	.scan_getnextslot = lsm_scan_getnextslot,
	.scan_set_tidrange = lsm_scan_set_tidrange,
	.scan_getnextslot_tidrange = lsm_scan_getnextslot_tidrange,

	.parallelscan_estimate = table_block_parallelscan_estimate,
	.parallelscan_initialize = table_block_parallelscan_initialize,
	.parallelscan_reinitialize = table_block_parallelscan_reinitialize,

	.index_fetch_begin = lsm_index_fetch_begin,
	.index_fetch_reset = lsm_index_fetch_reset,
	.index_fetch_end = lsm_index_fetch_end,
	.index_fetch_tuple = lsm_index_fetch_tuple,

	.tuple_insert = lsm_tuple_insert,
	.tuple_insert_speculative = lsm_tuple_insert_speculative,
	.tuple_complete_speculative = lsm_tuple_complete_speculative,
	.multi_insert = lsm_multi_insert,
	.tuple_delete = lsm_tuple_delete,
	.tuple_update = lsm_tuple_update,
	.tuple_lock = lsm_tuple_lock,
	.finish_bulk_insert = lsm_finish_bulk_insert,

	.tuple_fetch_row_version = lsm_tuple_fetch_row_version,
	.tuple_get_latest_tid = lsm_tuple_get_latest_tid,
	.tuple_tid_valid = lsm_tuple_tid_valid,
	.tuple_satisfies_snapshot = lsm_tuple_satisfies_snapshot,
	.index_delete_tuples = lsm_index_delete_tuples,

	.relation_set_new_filenode = lsm_relation_set_new_filenode,
	.relation_nontransactional_truncate = lsm_relation_nontransactional_truncate,
	.relation_copy_data = lsm_relation_copy_data,
	.relation_copy_for_cluster = lsm_relation_copy_for_cluster,
	.relation_vacuum = lsm_relation_vacuum,
	.scan_analyze_next_block = lsm_scan_analyze_next_block,
	.scan_analyze_next_tuple = lsm_scan_analyze_next_tuple,
	.index_build_range_scan = lsm_index_build_range_scan,
	.index_validate_scan = lsm_index_validate_scan,

	.relation_size = lsm_relation_size,
	.relation_needs_toast_table = lsm_relation_needs_toast_table,
	.relation_toast_am = lsm_relation_toast_am,
	.relation_fetch_toast_slice = heap_fetch_toast_slice,

	.relation_estimate_size = lsm_relation_estimate_size,

	.scan_bitmap_next_block = lsm_scan_bitmap_next_block,
	.scan_bitmap_next_tuple = lsm_scan_bitmap_next_tuple,
	.scan_sample_next_block = lsm_scan_sample_next_block,
	.scan_sample_next_tuple = lsm_scan_sample_next_tuple,
};

const TableAmRoutine *
lsm_tableam_routine(void)
{
	return &lsm_methods;
}

Datum
lsm_am_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&lsm_methods);
}
