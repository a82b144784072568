/*-------------------------------------------------------------------------
 *
 * lsm_verify.c
 *	  lsm_verify(regclass): reads every record of an lsm table and checks
 *	  its indexes against it.
 *
 * The table: every record of its key range is read, so every block that
 * holds one passes the engine's CRC check (a failure is an ERROR naming
 * the file), every row id must lie below the allocator's high-water mark,
 * and every live row must rebuild as a tuple.
 *
 * Each index: its row ids are collected (ambulkdelete with a callback that
 * deletes nothing, as CREATE INDEX CONCURRENTLY does), then
 *	 - an entry must not point past the table's row ids (a stranger's TID);
 *	 - every LIVE row (inserted by a committed transaction, not deleted)
 *	   must have an entry, unless a partial index's predicate excludes it.
 * An entry whose row is gone is fine: compaction removed a dead row, and
 * row ids are never reused.  Versions that are dead or recently dead are
 * not asked for: btree may already have dropped their entries.  ShareLock
 * on the table keeps writers out while it runs, as CREATE INDEX does.
 * BRIN indexes hold no row ids and are reported as not checked.
 *
 * One row per object: what, checked (records or entries), problems, and a
 * detail naming the first row ids at fault.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
#include "commands/vacuum.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "lsm_tableam.h"

PG_FUNCTION_INFO_V1(lsm_verify);

#define MAX_NAMED	5				/* row ids named in a detail */

typedef struct IndexCheck
{
	Relation	index;
	IndexInfo  *info;
	ExprState  *predicate;
	bool		skipped;
	uint64	   *rowids;			/* sorted, distinct */
	int64		nrowids;
	int64		cap;
	int64		entries;
	int64		beyond;
	int64		missing;
	StringInfoData detail;
	int			named;
} IndexCheck;

typedef struct VerifyState
{
	Relation	rel;
	uint64		high;
	TransactionId oldest_xmin;
	LsmXidCache xids;
	int			nindexes;
	IndexCheck *checks;
	EState	   *estate;
	ExprContext *econtext;
	TupleTableSlot *slot;
	int64		records;
	int64		live;
	int64		versions;		/* row versions in all the records */
	int64		beyond;			/* records past the high-water mark */
} VerifyState;

static bool
collect_entry(ItemPointer tid, void *arg)
{
	IndexCheck *ic = arg;
	uint64		rowid;

	ic->entries++;
	if (!lsm_tid_to_rowid(tid, &rowid))
		rowid = LSM_ROWID_MAX;	/* no row can have it: counted as beyond */
	if (ic->nrowids == ic->cap)
	{
		ic->cap = Max(1024, ic->cap * 2);
		ic->rowids = repalloc_huge(ic->rowids, sizeof(uint64) * ic->cap);
	}
	ic->rowids[ic->nrowids++] = rowid;
	return false;				/* delete nothing */
}

static int
cmp_rowid(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a,
				y = *(const uint64 *) b;

	return x < y ? -1 : x > y;
}

static void
name_rowid(IndexCheck *ic, const char *what, uint64 rowid)
{
	ItemPointerData tid;

	if (ic->named++ >= MAX_NAMED)
		return;
	lsm_rowid_to_tid(rowid, &tid);
	appendStringInfo(&ic->detail, "%s%s (%u,%u)", ic->detail.len > 0 ? "; " : "", what,
					 ItemPointerGetBlockNumberNoCheck(&tid),
					 ItemPointerGetOffsetNumberNoCheck(&tid));
}

static void
collect_index(VerifyState *vs, IndexCheck *ic)
{
	IndexVacuumInfo iv;
	IndexBulkDeleteResult *stats;
	int64		distinct = 0;

	initStringInfo(&ic->detail);
	if (ic->index->rd_rel->relam == BRIN_AM_OID || !ic->index->rd_index->indisvalid)
	{
		ic->skipped = true;
		appendStringInfoString(&ic->detail, ic->index->rd_index->indisvalid ?
							   "not checked: a brin index holds no row ids" :
							   "not checked: the index is not valid");
		return;
	}
	ic->info = BuildIndexInfo(ic->index);
	ic->predicate = ExecPrepareQual(ic->info->ii_Predicate, vs->estate);
	ic->cap = 1024;
	ic->rowids = palloc_extended(sizeof(uint64) * ic->cap, MCXT_ALLOC_HUGE);
	lsm_init_ivinfo(&iv, ic->index, vs->high, DEBUG2, NULL);
	stats = index_bulk_delete(&iv, NULL, collect_entry, ic);
	if (stats)
		pfree(stats);
	qsort(ic->rowids, ic->nrowids, sizeof(uint64), cmp_rowid);
	for (int64 i = 0; i < ic->nrowids; i++)
	{
		if (i > 0 && ic->rowids[i] == ic->rowids[i - 1])
			continue;			/* gin: an entry per key */
		if (ic->rowids[i] >= vs->high)
		{
			ic->beyond++;
			name_rowid(ic, "entry past the table's row ids at", ic->rowids[i]);
		}
		ic->rowids[distinct++] = ic->rowids[i];
	}
	ic->nrowids = distinct;
}

static bool
has_entry(const IndexCheck *ic, uint64 rowid)
{
	return bsearch(&rowid, ic->rowids, ic->nrowids, sizeof(uint64), cmp_rowid) != NULL;
}

static bool
verify_row(void *arg, uint64 rowid, const uint8 *rec, size_t len, const LsmRowHeader *h)
{
	VerifyState *vs = arg;
	HeapTuple	tuple = NULL;
	LsmRowIter	it;
	LsmRowVersion v;

	vs->records++;
	if (rowid >= vs->high)
		vs->beyond++;
	MemoryContextReset(vs->econtext->ecxt_per_tuple_memory);
	/* every version's body must rebuild (an ERROR names the row
	 * otherwise); the live one, if any, must be in every index */
	lsm_row_iter_init(&it, rec, len);
	while (lsm_next_version(vs->rel, rowid, &it, &v))
	{
		HeapTuple	t = lsm_row_copy_tuple(vs->rel, rowid, v.rec, v.len, &v.h);

		vs->versions++;
		if (tuple == NULL &&
			lsm_row_vacuum_state(&v.h, vs->oldest_xmin, &vs->xids) == HEAPTUPLE_LIVE)
			tuple = t;
		else
			heap_freetuple(t);
	}
	if (tuple == NULL)
		return true;
	vs->live++;
	ExecStoreHeapTuple(tuple, vs->slot, true);
	for (int i = 0; i < vs->nindexes; i++)
	{
		IndexCheck *ic = &vs->checks[i];

		if (ic->skipped || has_entry(ic, rowid))
			continue;
		if (ic->predicate && !ExecQual(ic->predicate, vs->econtext))
			continue;
		ic->missing++;
		name_rowid(ic, "live row without an entry at", rowid);
	}
	return true;
}

static void
emit(ReturnSetInfo *rsinfo, const char *what, int64 checked, int64 problems, const char *detail)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, detail == NULL};

	values[0] = CStringGetTextDatum(what);
	values[1] = Int64GetDatum(checked);
	values[2] = Int64GetDatum(problems);
	values[3] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

Datum
lsm_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	VerifyState vs = {0};
	Relation   *indexes;
	char	   *detail;

	InitMaterializedSRF(fcinfo, 0);
	vs.rel = lsm_open_table(PG_GETARG_OID(0), ShareLock);
	vs.high = lsm_rowid_high(vs.rel);
	vs.oldest_xmin = GetOldestNonRemovableTransactionId(vs.rel);
	lsm_xid_cache_init(&vs.xids);
	vs.estate = CreateExecutorState();
	vs.econtext = GetPerTupleExprContext(vs.estate);
	vs.slot = table_slot_create(vs.rel, NULL);
	vs.econtext->ecxt_scantuple = vs.slot;

	vac_open_indexes(vs.rel, RowExclusiveLock, &vs.nindexes, &indexes);
	vs.checks = palloc0(sizeof(IndexCheck) * Max(vs.nindexes, 1));
	for (int i = 0; i < vs.nindexes; i++)
	{
		vs.checks[i].index = indexes[i];
		collect_index(&vs, &vs.checks[i]);
	}
	lsm_scan_rowids(vs.rel, 0, LSM_ROWID_MAX, verify_row, &vs);

	detail = psprintf("%lld live rows; %lld row versions; %lld records past the row id mark " UINT64_FORMAT,
					  (long long) vs.live, (long long) vs.versions, (long long) vs.beyond, vs.high);
	emit(rsinfo, RelationGetRelationName(vs.rel), vs.records, vs.beyond, detail);
	for (int i = 0; i < vs.nindexes; i++)
	{
		IndexCheck *ic = &vs.checks[i];

		emit(rsinfo, RelationGetRelationName(ic->index), ic->entries, ic->beyond + ic->missing,
			 ic->detail.len > 0 ? ic->detail.data : NULL);
	}
	vac_close_indexes(vs.nindexes, indexes, RowExclusiveLock);
	ExecDropSingleTupleTableSlot(vs.slot);
	FreeExecutorState(vs.estate);
	table_close(vs.rel, ShareLock);
	return (Datum) 0;
}
