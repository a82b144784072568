/*-------------------------------------------------------------------------
 *
 * lsm_scan.c
 *	  Reading lsm tables: sequential and parallel scans, fetches by TID,
 *	  TID range scans, ANALYZE sampling, TABLESAMPLE and bitmap scans.
 *
 * A scan is one engine iterator over the relation's key range, created
 * after the PostgreSQL snapshot was taken, so it holds every row version
 * the snapshot may need; lsm_row_visible decides which one it sees.  The
 * iterator's own sequence also keeps the scan from seeing what its own
 * statement writes (INSERT INTO t SELECT * FROM t ends).
 *
 * Block-wise access (parallel scans, TID ranges, ANALYZE, TABLESAMPLE,
 * bitmap scans) maps block b
 * to the rowids [b * 291, (b + 1) * 291): see lsm_row.h.  A parallel scan
 * shares heap's block allocator (table_block_parallelscan_*) over the
 * block count lsm_rowid_high implies.
 *
 * Rows are rebuilt into a buffer the scan owns; the slot points into it
 * until the next row (as a heap scan's slot points into a pinned buffer).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/relscan.h"
#include "access/tsmapi.h"
#include "access/valid.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "nodes/tidbitmap.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/predicate.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "lsm_tableam.h"

typedef struct LsmScanDescData
{
	TableScanDescData base;
	lsm_iter   *it;
	void	   *it_owner;		/* lsm_xact.c: destroys it if the transaction aborts */
	uint8		lo[LSM_KEY_LEN];
	uint8		hi[LSM_KEY_LEN];
	LsmXidCache xids;
	MemoryContext cxt;			/* the scan's: buf lives as long as it */
	char	   *buf;
	Size		bufsize;
	HeapTupleData tuple;

	/* block-wise: rows of rowids [block_first, block_end) */
	bool		blockwise;
	uint64		block_first;
	uint64		block_end;
	bool		positioned;		/* the iterator stands inside the block */
	ParallelBlockTableScanWorkerData pworker;
	bool		pstarted;

	/* TABLESAMPLE: blocks as TIDs number them */
	bool		sample_started;
	BlockNumber sample_nblocks;
	BlockNumber sample_block;

	/* bitmap scans: the offsets of the current block */
	BlockNumber bm_block;
	int			bm_next;
	int			bm_count;
	OffsetNumber bm_offsets[MaxHeapTuplesPerPage];
} LsmScanDescData;

typedef LsmScanDescData *LsmScanDesc;

void
lsm_report_bad_row(Relation rel, uint64 rowid)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("malformed row record in lsm table \"%s\" (row id " UINT64_FORMAT ")",
					RelationGetRelationName(rel), rowid)));
}

bool
lsm_fetch_row(const RelFileNode *rnode, uint64 rowid, uint8 **rec, size_t *len,
			  LsmRowHeader *h)
{
	uint8		key[LSM_KEY_LEN];
	void	   *val = NULL;
	size_t		vlen = 0;
	int			rc;

	lsm_key_encode(key, rnode, rowid);
	rc = lsm_get(lsm_am_db(), NULL, key, LSM_KEY_LEN, &val, &vlen);
	if (rc == LSM_NOTFOUND)
		return false;
	lsm_am_check(rc, "read a row");
	if (!lsm_row_header_decode(val, vlen, h))
	{
		lsm_free(val);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed lsm row record (relation %u, row id " UINT64_FORMAT ")",
						rnode->relNode, rowid)));
	}
	*rec = val;
	*len = vlen;
	return true;
}

bool
lsm_next_version(Relation rel, uint64 rowid, LsmRowIter *it, LsmRowVersion *v)
{
	int			r = lsm_row_iter_next(it, v);

	if (r < 0)
		lsm_report_bad_row(rel, rowid);
	return r > 0;
}

/*
 * SnapshotAny asks for "the" version at a TID, which the versions of one
 * record share.  The newest whose inserter did not abort, unless another
 * transaction wrote it after the active snapshot and we hold no lock on
 * it: an UPDATE re-reading its row after EvalPlanQual locked the newest
 * version gets that one, an after-trigger what this transaction wrote,
 * and EvalPlanQual's row marks of other tables what the statement read
 * (the version its snapshot sees).
 */
static bool
any_version(Relation rel, uint64 rowid, const uint8 *rec, size_t len, LsmXidCache *xids,
			LsmRowVersion *v)
{
	LsmRowIter	it;
	LsmRowVersion first = {0};
	bool		have_first = false;
	Snapshot	active = ActiveSnapshotSet() ? GetActiveSnapshot() : NULL;

	lsm_row_iter_init(&it, rec, len);
	if (active && !IsMVCCSnapshot(active))
		active = NULL;
	while (lsm_next_version(rel, rowid, &it, v))
	{
		if (lsm_row_inserter_aborted(&v->h))
			continue;
		if (active == NULL || TransactionIdIsCurrentTransactionId(v->h.xmin) ||
			lsm_row_locked_by_us(&v->h) || lsm_row_visible(&v->h, active, xids))
			return true;
		if (!have_first)
		{
			first = *v;
			have_first = true;
		}
	}
	if (!have_first)
		return false;
	*v = first;
	return true;
}

bool
lsm_record_visible_version(Relation rel, uint64 rowid, const uint8 *rec, size_t len,
						   Snapshot snapshot, LsmXidCache *xids, LsmRowVersion *v)
{
	LsmRowIter	it;

	if (snapshot->snapshot_type == SNAPSHOT_ANY)
		return any_version(rel, rowid, rec, len, xids, v);
	lsm_row_iter_init(&it, rec, len);
	while (lsm_next_version(rel, rowid, &it, v))
	{
		bool		visible = lsm_row_visible(&v->h, snapshot, xids);

		if (IsolationIsSerializable())
			lsm_serializable_conflict_out(visible, rel, &v->h, snapshot);
		if (visible)
			return true;
	}
	return false;
}

bool
lsm_record_surely_dead(Relation rel, uint64 rowid, const uint8 *rec, size_t len,
					   GlobalVisState *vistest, TransactionId *newest_deleter)
{
	LsmRowIter	it;
	LsmRowVersion v;

	lsm_row_iter_init(&it, rec, len);
	while (lsm_next_version(rel, rowid, &it, &v))
	{
		if (!lsm_row_surely_dead(&v.h, vistest))
			return false;
		if (newest_deleter && TransactionIdIsNormal(v.h.xmax) &&
			!(v.h.flags & LSM_ROW_LOCK_ONLY) &&
			(!TransactionIdIsValid(*newest_deleter) ||
			 TransactionIdFollows(v.h.xmax, *newest_deleter)))
			*newest_deleter = v.h.xmax;
	}
	return true;
}

HeapTuple
lsm_row_copy_tuple(Relation rel, uint64 rowid, const uint8 *rec, size_t len,
				   const LsmRowHeader *h)
{
	char	   *buf = NULL;
	Size		bufsize = 0;
	HeapTupleData tmp;
	HeapTuple	copy;

	if (!lsm_row_to_tuple(rec, len, h, &buf, &bufsize, &tmp))
		lsm_report_bad_row(rel, rowid);
	lsm_rowid_to_tid(rowid, &tmp.t_self);
	tmp.t_data->t_ctid = tmp.t_self;
	tmp.t_tableOid = RelationGetRelid(rel);
	copy = heap_copytuple(&tmp);
	pfree(buf);
	return copy;
}

/* Stores a palloc'd copy of the row in slot. */
static void
store_copy(Relation rel, TupleTableSlot *slot, uint64 rowid, const uint8 *rec, size_t len,
		   const LsmRowHeader *h)
{
	HeapTuple	tuple = lsm_row_copy_tuple(rel, rowid, rec, len, h);

	ExecStoreHeapTuple(tuple, slot, true);
	slot->tts_tableOid = RelationGetRelid(rel);
	slot->tts_tid = tuple->t_self;
}

const TupleTableSlotOps *
lsm_slot_callbacks(Relation rel)
{
	return &TTSOpsHeapTuple;
}

/* ------------------------------------------------------------- scans */

static void
open_iterator(LsmScanDesc scan)
{
	Relation	rel = scan->base.rs_rd;
	lsm_read_options ro = {0};

	lsm_key_encode(scan->lo, &rel->rd_node, 0);
	lsm_key_encode(scan->hi, &rel->rd_node, LSM_ROWID_MAX);
	ro.lower_bound = scan->lo;
	ro.lower_bound_len = LSM_KEY_LEN;
	ro.upper_bound = scan->hi;
	ro.upper_bound_len = LSM_KEY_LEN;
	/* like heap's bulk-read strategy: a sequential scan of a table larger
	 * than a quarter of the block cache reads around it, not through it */
	ro.no_fill_cache = (scan->base.rs_flags & SO_TYPE_SEQSCAN) &&
		lsm_rowid_high(rel) * 128 > ((uint64) lsm_block_cache_size_mb << 20) / 4;
	lsm_am_check(lsm_iter_create(lsm_am_db(), &ro, &scan->it), "start a scan");
	scan->it_owner = lsm_xact_remember_iter(scan->it);
	scan->positioned = false;
}

static void
close_iterator(LsmScanDesc scan)
{
	if (scan->it)
		lsm_xact_forget_iter(scan->it_owner);	/* destroys it */
	scan->it = NULL;
	scan->it_owner = NULL;
}

TableScanDesc
lsm_scan_begin(Relation rel, Snapshot snapshot, int nkeys, struct ScanKeyData *key,
			   ParallelTableScanDesc pscan, uint32 flags)
{
	LsmScanDesc scan;

	RelationIncrementReferenceCount(rel);
	scan = palloc0(sizeof(LsmScanDescData));
	scan->base.rs_rd = rel;
	scan->base.rs_snapshot = snapshot;
	scan->base.rs_nkeys = nkeys;
	scan->base.rs_flags = flags;
	scan->base.rs_parallel = pscan;
	scan->cxt = CurrentMemoryContext;
	if (nkeys > 0)
	{
		scan->base.rs_key = palloc(sizeof(ScanKeyData) * nkeys);
		memcpy(scan->base.rs_key, key, sizeof(ScanKeyData) * nkeys);
	}
	lsm_xid_cache_init(&scan->xids);
	scan->blockwise = pscan != NULL ||
		(flags & (SO_TYPE_ANALYZE | SO_TYPE_BITMAPSCAN)) != 0;
	open_iterator(scan);
	if (flags & SO_TYPE_SEQSCAN)
		pgstat_count_heap_scan(rel);
	/* SERIALIZABLE: a scan of the whole table (or of a range of it) reads
	 * what a later insert anywhere would add, as with heap */
	if (flags & (SO_TYPE_SEQSCAN | SO_TYPE_SAMPLESCAN | SO_TYPE_TIDRANGESCAN))
		PredicateLockRelation(rel, snapshot);
	return (TableScanDesc) scan;
}

void
lsm_scan_end(TableScanDesc sscan)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;

	close_iterator(scan);
	if (scan->buf)
		pfree(scan->buf);
	if (scan->base.rs_key)
		pfree(scan->base.rs_key);
	if (scan->base.rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(scan->base.rs_snapshot);
	RelationDecrementReferenceCount(scan->base.rs_rd);
	pfree(scan);
}

void
lsm_scan_rescan(TableScanDesc sscan, struct ScanKeyData *key, bool set_params,
				bool allow_strat, bool allow_sync, bool allow_pagemode)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;

	if (key && scan->base.rs_nkeys > 0)
		memcpy(scan->base.rs_key, key, sizeof(ScanKeyData) * scan->base.rs_nkeys);
	/* a fresh iterator: what the transaction wrote since is in it */
	close_iterator(scan);
	open_iterator(scan);
	scan->pstarted = false;
	scan->block_first = scan->block_end = 0;
	scan->sample_started = false;
}

/* Rebuilds a row as scan->tuple in the scan's buffer (callers may run in
 * a per-tuple context that is reset under them). */
static void
decode_into_scan(LsmScanDesc scan, const uint8 *rec, size_t len, const LsmRowHeader *h,
				 uint64 rowid)
{
	MemoryContext old = MemoryContextSwitchTo(scan->cxt);
	bool		ok = lsm_row_to_tuple(rec, len, h, &scan->buf, &scan->bufsize, &scan->tuple);

	MemoryContextSwitchTo(old);
	if (!ok)
		lsm_report_bad_row(scan->base.rs_rd, rowid);
}

/*
 * The row the iterator stands on, if the scan's snapshot sees it: decoded
 * into the scan's buffer as scan->tuple.  The iterator is not moved.
 */
static bool
current_row_visible(LsmScanDesc scan, uint64 *rowid)
{
	Relation	rel = scan->base.rs_rd;
	size_t		klen,
				vlen;
	const uint8 *k = lsm_iter_key(scan->it, &klen);
	const uint8 *v = lsm_iter_value(scan->it, &vlen);
	LsmRowVersion ver;

	*rowid = lsm_key_rowid(k);
	if (klen != LSM_KEY_LEN)
		lsm_report_bad_row(rel, *rowid);
	if (!lsm_record_visible_version(rel, *rowid, v, vlen, scan->base.rs_snapshot,
									&scan->xids, &ver))
		return false;
	decode_into_scan(scan, ver.rec, ver.len, &ver.h, *rowid);
	lsm_rowid_to_tid(*rowid, &scan->tuple.t_self);
	scan->tuple.t_data->t_ctid = scan->tuple.t_self;
	scan->tuple.t_tableOid = RelationGetRelid(rel);
	if (scan->base.rs_nkeys > 0)
	{
		bool		match;

		HeapKeyTest(&scan->tuple, RelationGetDescr(rel), scan->base.rs_nkeys,
					scan->base.rs_key, match);
		if (!match)
			return false;
	}
	return true;
}

static void
check_iterator(LsmScanDesc scan)
{
	lsm_am_check(lsm_iter_status(scan->it), "scan a table");
}

static void
store_current(LsmScanDesc scan, TupleTableSlot *slot)
{
	ExecStoreHeapTuple(&scan->tuple, slot, false);
	slot->tts_tableOid = RelationGetRelid(scan->base.rs_rd);
	slot->tts_tid = scan->tuple.t_self;
	pgstat_count_heap_getnext(scan->base.rs_rd);
}

/* Rows come in rowid order only; a SCROLL cursor is refused with a hint. */
static void
refuse_backward(ScanDirection direction)
{
	if (ScanDirectionIsBackward(direction))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("lsm tables cannot be scanned backward"),
				 errhint("Declare the cursor without SCROLL.")));
}

/* Moves the iterator to the first row of [block_first, block_end). */
static void
seek_block(LsmScanDesc scan)
{
	uint8		key[LSM_KEY_LEN];

	lsm_key_encode(key, &scan->base.rs_rd->rd_node, scan->block_first);
	lsm_iter_seek(scan->it, key, LSM_KEY_LEN);
	scan->positioned = true;
}

/* The next visible row of the current block range, or false at its end. */
static bool
next_in_block(LsmScanDesc scan)
{
	while (lsm_iter_valid(scan->it))
	{
		size_t		klen;
		uint64		rowid = lsm_key_rowid(lsm_iter_key(scan->it, &klen));
		bool		visible;

		if (rowid >= scan->block_end)
			return false;
		CHECK_FOR_INTERRUPTS();
		visible = current_row_visible(scan, &rowid);
		lsm_iter_next(scan->it);
		if (visible)
			return true;
	}
	check_iterator(scan);
	return false;
}

/* Parallel scans and index builds: the next block heap's allocator hands
 * this worker, as rowids. */
bool
lsm_parallel_next_rowids(TableScanDesc sscan, uint64 *first, uint64 *end)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;
	Relation	rel = scan->base.rs_rd;
	ParallelBlockTableScanDesc pbscan = (ParallelBlockTableScanDesc) scan->base.rs_parallel;
	BlockNumber blk;

	if (!scan->pstarted)
	{
		table_block_parallelscan_startblock_init(rel, &scan->pworker, pbscan);
		scan->pstarted = true;
	}
	blk = table_block_parallelscan_nextpage(rel, &scan->pworker, pbscan);
	if (blk == InvalidBlockNumber)
		return false;
	*first = (uint64) blk * LSM_ROWS_PER_BLOCK;
	*end = *first + LSM_ROWS_PER_BLOCK;
	return true;
}

static bool
next_parallel_range(LsmScanDesc scan)
{
	uint64		first,
				end;

	if (!lsm_parallel_next_rowids(&scan->base, &first, &end))
		return false;
	/* consecutive blocks continue where the iterator is */
	if (first != scan->block_end || !scan->positioned)
	{
		scan->block_first = first;
		scan->block_end = end;
		seek_block(scan);
	}
	else
		scan->block_end = end;
	return true;
}

bool
lsm_scan_getnextslot(TableScanDesc sscan, ScanDirection direction, TupleTableSlot *slot)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;

	refuse_backward(direction);
	if (scan->base.rs_parallel)
	{
		for (;;)
		{
			if (scan->block_end > 0 && next_in_block(scan))
			{
				store_current(scan, slot);
				return true;
			}
			if (!next_parallel_range(scan))
				break;
		}
		ExecClearTuple(slot);
		return false;
	}
	if (!scan->positioned)
	{
		lsm_iter_seek_to_first(scan->it);
		scan->positioned = true;
	}
	while (lsm_iter_valid(scan->it))
	{
		uint64		rowid;
		bool		visible;

		CHECK_FOR_INTERRUPTS();
		visible = current_row_visible(scan, &rowid);
		lsm_iter_next(scan->it);
		if (visible)
		{
			store_current(scan, slot);
			return true;
		}
	}
	check_iterator(scan);
	ExecClearTuple(slot);
	return false;
}

/* ------------------------------------------------------ TID ranges */

/* The first rowid at or after tid, and the first one past it. */
static uint64
rowid_at_or_after(ItemPointer tid)
{
	uint64		blk = ItemPointerGetBlockNumberNoCheck(tid);
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	if (off > LSM_ROWS_PER_BLOCK)
		return (blk + 1) * LSM_ROWS_PER_BLOCK;
	return blk * LSM_ROWS_PER_BLOCK + Max(off, 1) - 1;
}

static uint64
rowid_past(ItemPointer tid)
{
	uint64		blk = ItemPointerGetBlockNumberNoCheck(tid);
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	return blk * LSM_ROWS_PER_BLOCK + Min(off, LSM_ROWS_PER_BLOCK);
}

void
lsm_scan_set_tidrange(TableScanDesc sscan, ItemPointer mintid, ItemPointer maxtid)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;

	scan->block_first = rowid_at_or_after(mintid);
	scan->block_end = Max(rowid_past(maxtid), scan->block_first);
	seek_block(scan);
}

bool
lsm_scan_getnextslot_tidrange(TableScanDesc sscan, ScanDirection direction,
							  TupleTableSlot *slot)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;

	refuse_backward(direction);
	if (next_in_block(scan))
	{
		store_current(scan, slot);
		return true;
	}
	ExecClearTuple(slot);
	return false;
}

/* ----------------------------------------------------------- analyze */

bool
lsm_scan_analyze_next_block(TableScanDesc sscan, BlockNumber blockno,
							BufferAccessStrategy bstrategy)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;

	scan->block_first = (uint64) blockno * LSM_ROWS_PER_BLOCK;
	scan->block_end = scan->block_first + LSM_ROWS_PER_BLOCK;
	seek_block(scan);
	return true;
}

bool
lsm_scan_analyze_next_tuple(TableScanDesc sscan, TransactionId OldestXmin,
							double *liverows, double *deadrows, TupleTableSlot *slot)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;
	Relation	rel = scan->base.rs_rd;

	while (lsm_iter_valid(scan->it))
	{
		size_t		klen,
					vlen;
		uint64		rowid = lsm_key_rowid(lsm_iter_key(scan->it, &klen));
		const uint8 *v;
		LsmRowIter	vit;
		LsmRowVersion ver;
		bool		alive = false;

		if (rowid >= scan->block_end)
			break;
		v = lsm_iter_value(scan->it, &vlen);
		lsm_row_iter_init(&vit, v, vlen);
		while (!alive && lsm_next_version(rel, rowid, &vit, &ver))
		{
			alive = lsm_row_alive(&ver.h, &scan->xids);
			if (!alive)
				*deadrows += 1;
		}
		if (alive)
		{
			decode_into_scan(scan, ver.rec, ver.len, &ver.h, rowid);
			lsm_rowid_to_tid(rowid, &scan->tuple.t_self);
			scan->tuple.t_tableOid = RelationGetRelid(rel);
			lsm_iter_next(scan->it);
			*liverows += 1;
			/* the sample outlives the scan's buffer */
			ExecStoreHeapTuple(heap_copytuple(&scan->tuple), slot, true);
			slot->tts_tableOid = RelationGetRelid(rel);
			slot->tts_tid = scan->tuple.t_self;
			return true;
		}
		lsm_iter_next(scan->it);
	}
	check_iterator(scan);
	ExecClearTuple(slot);
	return false;
}

/* -------------------------------------------------------- TABLESAMPLE */

/*
 * The method picks blocks (SYSTEM) or walks them in order (BERNOULLI), and
 * offsets within a block; a block is LSM_ROWS_PER_BLOCK rowids, so every
 * row is offered to the method exactly once, as on a heap page.
 */
bool
lsm_scan_sample_next_block(TableScanDesc sscan, struct SampleScanState *scanstate)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;
	TsmRoutine *tsm = scanstate->tsmroutine;
	BlockNumber blockno;

	if (!scan->sample_started)
	{
		scan->sample_nblocks = RelationGetNumberOfBlocks(scan->base.rs_rd);
		scan->sample_block = InvalidBlockNumber;
		scan->sample_started = true;
	}
	if (scan->sample_nblocks == 0)
		return false;
	if (tsm->NextSampleBlock)
		blockno = tsm->NextSampleBlock(scanstate, scan->sample_nblocks);
	else if (scan->sample_block == InvalidBlockNumber)
		blockno = 0;
	else if (scan->sample_block + 1 < scan->sample_nblocks)
		blockno = scan->sample_block + 1;
	else
		blockno = InvalidBlockNumber;
	scan->sample_block = blockno;
	if (!BlockNumberIsValid(blockno))
		return false;
	scan->block_first = (uint64) blockno * LSM_ROWS_PER_BLOCK;
	scan->block_end = scan->block_first + LSM_ROWS_PER_BLOCK;
	seek_block(scan);
	return true;
}

bool
lsm_scan_sample_next_tuple(TableScanDesc sscan, struct SampleScanState *scanstate,
						   TupleTableSlot *slot)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;
	TsmRoutine *tsm = scanstate->tsmroutine;

	for (;;)
	{
		/* offsets come in ascending order; the method wants all of them */
		OffsetNumber off = tsm->NextSampleTuple(scanstate, scan->sample_block,
												LSM_ROWS_PER_BLOCK);
		uint64		want,
					rowid = 0;
		size_t		klen;

		if (!OffsetNumberIsValid(off))
			break;
		CHECK_FOR_INTERRUPTS();
		want = scan->block_first + off - 1;
		while (lsm_iter_valid(scan->it) &&
			   (rowid = lsm_key_rowid(lsm_iter_key(scan->it, &klen))) < want)
			lsm_iter_next(scan->it);
		if (!lsm_iter_valid(scan->it) || rowid != want)
			continue;
		if (current_row_visible(scan, &rowid))
		{
			store_current(scan, slot);
			return true;
		}
	}
	check_iterator(scan);
	ExecClearTuple(slot);
	return false;
}

/* ------------------------------------------------------------ bitmap */

bool
lsm_scan_bitmap_next_block(TableScanDesc sscan, struct TBMIterateResult *tbmres)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;

	scan->bm_block = tbmres->blockno;
	scan->bm_next = 0;
	if (tbmres->ntuples >= 0)
	{
		scan->bm_count = tbmres->ntuples;
		memcpy(scan->bm_offsets, tbmres->offsets, sizeof(OffsetNumber) * tbmres->ntuples);
	}
	else
	{
		/* lossy: every row of the block */
		scan->bm_count = LSM_ROWS_PER_BLOCK;
		for (int i = 0; i < LSM_ROWS_PER_BLOCK; i++)
			scan->bm_offsets[i] = (OffsetNumber) (i + 1);
	}
	return (uint64) tbmres->blockno * LSM_ROWS_PER_BLOCK < lsm_rowid_high(scan->base.rs_rd);
}

static bool fetch_visible(Relation rel, ItemPointer tid, Snapshot snapshot,
						  LsmXidCache *xids, LsmScanDesc scan, TupleTableSlot *slot,
						  bool *all_dead);

bool
lsm_scan_bitmap_next_tuple(TableScanDesc sscan, struct TBMIterateResult *tbmres,
						   TupleTableSlot *slot)
{
	LsmScanDesc scan = (LsmScanDesc) sscan;

	while (scan->bm_next < scan->bm_count)
	{
		ItemPointerData tid;

		ItemPointerSet(&tid, scan->bm_block, scan->bm_offsets[scan->bm_next++]);
		if (fetch_visible(scan->base.rs_rd, &tid, scan->base.rs_snapshot, &scan->xids,
						  scan, slot, NULL))
		{
			store_current(scan, slot);
			return true;
		}
	}
	ExecClearTuple(slot);
	return false;
}

/* ----------------------------------------------------- fetch by TID */

typedef struct LsmIndexFetchData
{
	IndexFetchTableData base;
	LsmXidCache xids;
} LsmIndexFetchData;

struct IndexFetchTableData *
lsm_index_fetch_begin(Relation rel)
{
	LsmIndexFetchData *f = palloc0(sizeof(LsmIndexFetchData));

	f->base.rel = rel;
	lsm_xid_cache_init(&f->xids);
	return &f->base;
}

void
lsm_index_fetch_reset(struct IndexFetchTableData *data)
{
}

void
lsm_index_fetch_end(struct IndexFetchTableData *data)
{
	pfree(data);
}

/*
 * The row at tid, if snapshot sees it: rebuilt in the scan's buffer (scan
 * given; the caller stores it) or stored in slot as a copy.  all_dead (if
 * given) is set when no snapshot can ever see the row: gone (compaction
 * removed it; rowids are never reused), never inserted, or deleted for
 * everyone.  An index scan then marks its entry dead (kill_prior_tuple),
 * and later scans skip it without a fetch, as with heap's dead tuples:
 * without that, a row updated N times cost every lookup N fetches.
 */
static bool
fetch_visible(Relation rel, ItemPointer tid, Snapshot snapshot, LsmXidCache *xids,
			  LsmScanDesc scan, TupleTableSlot *slot, bool *all_dead)
{
	uint64		rowid;
	uint8	   *rec;
	size_t		len;
	LsmRowHeader h;
	LsmRowVersion v;
	bool		visible;

	if (!lsm_tid_to_rowid(tid, &rowid))
		return false;
	if (!lsm_fetch_row(&rel->rd_node, rowid, &rec, &len, &h))
	{
		if (all_dead && rowid < lsm_rowid_high(rel))
			*all_dead = true;
		return false;
	}
	PG_TRY();
	{
		visible = lsm_record_visible_version(rel, rowid, rec, len, snapshot, xids, &v);
		if (visible)
			PredicateLockTID(rel, tid, snapshot, v.h.xmin);
		if (!visible && all_dead)
			*all_dead = lsm_record_surely_dead(rel, rowid, rec, len, GlobalVisTestFor(rel),
											   NULL);
		if (visible && scan)
			decode_into_scan(scan, v.rec, v.len, &v.h, rowid);
		else if (visible)
			store_copy(rel, slot, rowid, v.rec, v.len, &v.h);
	}
	PG_FINALLY();
	{
		lsm_free(rec);
	}
	PG_END_TRY();
	if (visible && scan)
	{
		scan->tuple.t_self = *tid;
		scan->tuple.t_data->t_ctid = *tid;
		scan->tuple.t_tableOid = RelationGetRelid(rel);
	}
	return visible;
}

bool
lsm_index_fetch_tuple(struct IndexFetchTableData *data, ItemPointer tid, Snapshot snapshot,
					  TupleTableSlot *slot, bool *call_again, bool *all_dead)
{
	LsmIndexFetchData *f = (LsmIndexFetchData *) data;

	*call_again = false;
	if (all_dead)
		*all_dead = false;
	return fetch_visible(f->base.rel, tid, snapshot, &f->xids, NULL, slot, all_dead);
}

bool
lsm_tuple_fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot,
							TupleTableSlot *slot)
{
	return fetch_visible(rel, tid, snapshot, NULL, NULL, slot, NULL);
}

bool
lsm_tuple_tid_valid(TableScanDesc scan, ItemPointer tid)
{
	uint64		rowid;

	return lsm_tid_to_rowid(tid, &rowid) && rowid < lsm_rowid_high(scan->rs_rd);
}

void
lsm_tuple_get_latest_tid(TableScanDesc scan, ItemPointer tid)
{
	Relation	rel = scan->rs_rd;
	uint64		rowid;

	if (!lsm_tid_to_rowid(tid, &rowid))
		return;
	/* follow the update chain while the snapshot sees its versions */
	for (int hops = 0; hops < 1000000; hops++)
	{
		uint8	   *rec;
		size_t		len;
		LsmRowHeader h;
		LsmRowVersion v;
		bool		visible;

		if (!lsm_fetch_row(&rel->rd_node, rowid, &rec, &len, &h))
			return;
		PG_TRY();
		{
			visible = lsm_record_visible_version(rel, rowid, rec, len, scan->rs_snapshot,
												 NULL, &v);
		}
		PG_FINALLY();
		{
			lsm_free(rec);
		}
		PG_END_TRY();
		if (visible)
			lsm_rowid_to_tid(rowid, tid);
		/* the newest version (first) says whether a newer row follows */
		if (!(h.flags & LSM_ROW_UPDATED) || !TransactionIdIsValid(h.xmax) ||
			h.successor == rowid)
			return;
		rowid = h.successor;
	}
}

bool
lsm_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot, Snapshot snapshot)
{
	uint64		rowid;
	uint8	   *rec;
	size_t		len;
	LsmRowHeader h;
	HeapTuple	tuple = NULL;
	bool		visible = false;

	if (!lsm_tid_to_rowid(&slot->tts_tid, &rowid) ||
		!lsm_fetch_row(&rel->rd_node, rowid, &rec, &len, &h))
		return false;
	if (TTS_IS_HEAPTUPLE(slot))
		tuple = ((HeapTupleTableSlot *) slot)->tuple;
	PG_TRY();
	{
		LsmRowIter	it;
		LsmRowVersion v;

		/* the versions of a record share the TID: judge the slot's own,
		 * known by its inserting command (as heap judges the tuple) */
		lsm_row_iter_init(&it, rec, len);
		while (lsm_next_version(rel, rowid, &it, &v))
		{
			if (tuple != NULL &&
				(v.h.xmin != HeapTupleHeaderGetRawXmin(tuple->t_data) ||
				 v.h.cmin != HeapTupleHeaderGetRawCommandId(tuple->t_data)))
				continue;
			visible = lsm_row_visible(&v.h, snapshot, NULL);
			if (visible || tuple != NULL)
				break;
		}
	}
	PG_FINALLY();
	{
		lsm_free(rec);
	}
	PG_END_TRY();
	return visible;
}

/* ------------------------------------------------ index builds */

void
lsm_scan_rowids(Relation rel, uint64 first, uint64 end, lsm_row_visit_fn fn, void *arg)
{
	lsm_read_options ro = {0};
	uint8		lo[LSM_KEY_LEN],
				hi[LSM_KEY_LEN];
	lsm_iter   *it;
	LsmXidCache xids;

	lsm_xid_cache_init(&xids);
	lsm_key_encode(lo, &rel->rd_node, first);
	lsm_key_encode(hi, &rel->rd_node, Min(end, LSM_ROWID_MAX));
	ro.lower_bound = lo;
	ro.lower_bound_len = LSM_KEY_LEN;
	ro.upper_bound = hi;
	ro.upper_bound_len = LSM_KEY_LEN;
	lsm_am_check(lsm_iter_create(lsm_am_db(), &ro, &it), "start a scan");
	PG_TRY();
	{
		for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
		{
			size_t		klen,
						vlen;
			uint64		rowid = lsm_key_rowid(lsm_iter_key(it, &klen));
			const uint8 *v = lsm_iter_value(it, &vlen);
			LsmRowHeader h;

			CHECK_FOR_INTERRUPTS();
			if (!lsm_row_header_decode(v, vlen, &h))
				lsm_report_bad_row(rel, rowid);
			if (!fn(arg, rowid, v, vlen, &h))
				break;
		}
		lsm_am_check(lsm_iter_status(it), "scan a table");
	}
	PG_FINALLY();
	{
		lsm_iter_destroy(it);
	}
	PG_END_TRY();
}
