/*-------------------------------------------------------------------------
 *
 * lsm_vacuum.c
 *	  VACUUM of lsm tables: index entries of dead rows, freezing, and the
 *	  statistics VACUUM keeps.
 *
 * Compaction already drops dead row versions from the engine (lsm_gc.c).
 * Two things it cannot do are VACUUM's work here:
 *
 *	 - Index entries.  VACUUM scans the table under OldestXmin and hands
 *	   every index the rowids it found DEAD.  A rowid it did not find is
 *	   answered by a point lookup at the time the index asks: an index
 *	   entry is made only after its row was written, so a row absent then
 *	   was removed (and rowids are never reused); a row written after the
 *	   scan passed its place is found and kept.
 *
 *	 - relfrozenxid.  A live row keeps its xids for ever, and the commit log
 *	   they need goes once relfrozenxid passes them.  So every record with
 *	   an xid older than FreezeLimit is rewritten: a committed inserter
 *	   becomes FrozenTransactionId, a finished locker or an aborted deleter
 *	   is cleared, and a row that is dead for good is deleted; a multixact of
 *	   lockers older than the multixact cutoff is cleared, so relminmxid
 *	   moves too.  The rewrite
 *	   fetches the record again under its row lock (lsm_rowlock.c), so it
 *	   never undoes a concurrent change.  The engine log is synced before
 *	   pg_class says relfrozenxid moved: the commit log may be truncated
 *	   right after this VACUUM.  relfrozenxid becomes the oldest xid left
 *	   in the table (at most OldestXmin).
 *
 * The table is visited in windows of rowids that fit maintenance_work_mem
 * (two bits a rowid: seen, dead), each followed by one pass over each
 * index, as heap does when its dead TIDs overflow the same memory.  With
 * INDEX_CLEANUP AUTO an index pass is skipped when the window holds no
 * dead row and the table reported no deletes or updates since the last
 * VACUUM (allocation leaves gaps of rowids that never had a row).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heaptoast.h"
#include "access/relscan.h"
#include "access/multixact.h"
#include "access/transam.h"
#include "commands/dbcommands.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/autovacuum.h"
#include "storage/bufmgr.h"
#include "utils/lsyscache.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"

#include "lsm_tableam.h"

#define MIN_WINDOW		(UINT64CONST(1) << 16)

typedef struct VacWindow
{
	RelFileNode rnode;
	uint64		lo;				/* rowids [lo, hi) */
	uint64		hi;
	uint64	   *seen;			/* a bit per rowid: the scan found a record */
	uint64	   *dead;			/* ... and it was DEAD */
	uint64		nseen;
	uint64		ndead;
	uint64		nmissing;		/* entries whose row was gone (lookups) */
} VacWindow;

typedef struct VacState
{
	Relation	rel;
	lsm_db	   *db;
	TransactionId oldest_xmin;
	TransactionId freeze_limit;
	MultiXactId multi_limit;
	TransactionId new_frozen_xid;	/* oldest xid left in the table */
	MultiXactId new_min_mxid;	/* oldest multixact left in the table */
	LsmXidCache xids;
	VacWindow  *w;
	double		live;
	double		recently_dead;
	double		dead;
	double		frozen;
	double		removed;
	bool		wrote;
} VacState;

static inline void
bit_set(uint64 *bits, uint64 i)
{
	bits[i / 64] |= UINT64CONST(1) << (i % 64);
}

static inline bool
bit_test(const uint64 *bits, uint64 i)
{
	return (bits[i / 64] >> (i % 64)) & 1;
}

static inline bool
old_xid(TransactionId xid, TransactionId limit)
{
	return TransactionIdIsNormal(xid) && TransactionIdPrecedes(xid, limit);
}

/* Whether the header holds an xid or a multixact older than the limits. */
static inline bool
has_old_ids(const LsmRowHeader *h, TransactionId limit, MultiXactId multi_limit)
{
	if (old_xid(h->xmin, limit))
		return true;
	if (h->flags & LSM_ROW_MULTI)
		return MultiXactIdPrecedes(h->xmax, multi_limit);
	return old_xid(h->xmax, limit);
}

static void
keep_oldest(VacState *vs, const LsmRowHeader *h)
{
	if (TransactionIdIsNormal(h->xmin) && TransactionIdPrecedes(h->xmin, vs->new_frozen_xid))
		vs->new_frozen_xid = h->xmin;
	if (h->flags & LSM_ROW_MULTI)
	{
		if (MultiXactIdPrecedes(h->xmax, vs->new_min_mxid))
			vs->new_min_mxid = h->xmax;
	}
	else if (TransactionIdIsNormal(h->xmax) && TransactionIdPrecedes(h->xmax, vs->new_frozen_xid))
		vs->new_frozen_xid = h->xmax;
}

typedef enum
{
	OLD_KEEP,					/* nothing older than FreezeLimit */
	OLD_REWRITE,				/* *h now has its old xids frozen or cleared */
	OLD_DELETE					/* dead for good */
} OldXidAction;

/*
 * What becomes of a header's xids older than limit (which precedes every
 * running transaction, so each of them has finished).
 */
static OldXidAction
freeze_header(LsmRowHeader *h, TransactionId limit, MultiXactId multi_limit)
{
	bool		changed = false;

	if (old_xid(h->xmin, limit))
	{
		if (!TransactionIdDidCommit(h->xmin))
			return OLD_DELETE;	/* aborted, or in progress at a crash */
		h->xmin = FrozenTransactionId;
		h->cmin = FirstCommandId;
		changed = true;
	}
	if ((h->flags & LSM_ROW_MULTI) ? MultiXactIdPrecedes(h->xmax, multi_limit) :
		old_xid(h->xmax, limit))
	{
		if (!(h->flags & LSM_ROW_LOCK_ONLY) && TransactionIdDidCommit(h->xmax))
			return OLD_DELETE;	/* deleted or updated before every snapshot */
		/* a finished locker (all of a multixact's are) or an aborted updater */
		h->xmax = InvalidTransactionId;
		h->cmax = FirstCommandId;
		h->flags &= ~(LSM_ROW_LOCK_ONLY | LSM_ROW_UPDATED | LSM_ROW_MULTI | LSM_ROW_LOCK_MODE);
		h->successor = 0;
		changed = true;
	}
	return changed ? OLD_REWRITE : OLD_KEEP;
}

/*
 * Rewrites or deletes the record of rowid, fetched again under its row
 * lock: versions dead to every snapshot go, the others' old xids are
 * frozen.  Returns whether the row is gone.
 */
static bool
freeze_row(VacState *vs, uint64 rowid)
{
	Relation	rel = vs->rel;
	const RelFileNode *rnode = &rel->rd_node;
	uint8		key[LSM_KEY_LEN];
	uint8	   *rec = NULL;
	size_t		len;
	LsmRowHeader h;
	bool		gone = false;

	lsm_key_encode(key, rnode, rowid);
	lsm_rowlock_acquire(rnode, rowid);
	PG_TRY();
	{
		if (!lsm_fetch_row(rnode, rowid, &rec, &len, &h))
			gone = true;
		else
		{
			LsmRowIter	it;
			LsmRowVersion v;
			LsmRowWriter w = {0};
			bool		changed = false;
			uint8	   *out;
			size_t		used;
			int			rc = LSM_OK;

			lsm_row_iter_init(&it, rec, len);
			while (lsm_next_version(rel, rowid, &it, &v))
			{
				if (lsm_row_vacuum_state(&v.h, vs->oldest_xmin, &vs->xids) == HEAPTUPLE_DEAD)
				{
					changed = true;
					continue;
				}
				switch (freeze_header(&v.h, vs->freeze_limit, vs->multi_limit))
				{
					case OLD_KEEP:
						break;
					case OLD_REWRITE:
						vs->frozen += 1;
						changed = true;
						break;
					case OLD_DELETE:
						changed = true;
						continue;
				}
				lsm_row_writer_add(&w, &v.h, &v);
				keep_oldest(vs, &v.h);
			}
			out = lsm_row_writer_finish(&w, &used);
			if (out == NULL)
			{
				rc = lsm_delete(vs->db, NULL, key, LSM_KEY_LEN);
				vs->removed += 1;
				gone = true;
			}
			else if (changed)
				rc = lsm_put(vs->db, NULL, key, LSM_KEY_LEN, out, used);
			if (out)
				pfree(out);
			vs->wrote |= changed;
			lsm_free(rec);
			rec = NULL;
			lsm_am_check(rc, "rewrite a row for VACUUM");
		}
	}
	PG_FINALLY();
	{
		if (rec)
			lsm_free(rec);
		lsm_rowlock_release(rnode, rowid);
	}
	PG_END_TRY();
	return gone;
}

/*
 * One record of the scan: DEAD when every version is; rewritten (pruned
 * and frozen) when it holds old xids or dead versions beside live ones.
 */
static bool
vacuum_one_row(void *arg, uint64 rowid, const uint8 *rec, size_t len, const LsmRowHeader *hdr)
{
	VacState   *vs = arg;
	VacWindow  *w = vs->w;
	uint64		bit = rowid - w->lo;
	LsmRowIter	it;
	LsmRowVersion v;
	bool		needed = false,
				live = false,
				old_ids = false,
				dead;
	int			dead_versions = 0;

	vacuum_delay_point();
	bit_set(w->seen, bit);
	w->nseen++;
	lsm_row_iter_init(&it, rec, len);
	while (lsm_next_version(vs->rel, rowid, &it, &v))
	{
		switch (lsm_row_vacuum_state(&v.h, vs->oldest_xmin, &vs->xids))
		{
			case HEAPTUPLE_DEAD:
				dead_versions++;
				break;
			case HEAPTUPLE_RECENTLY_DEAD:
				vs->recently_dead += 1;
				needed = true;
				break;
			case HEAPTUPLE_LIVE:
			case HEAPTUPLE_INSERT_IN_PROGRESS:
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				live = needed = true;
				break;
		}
		old_ids |= has_old_ids(&v.h, vs->freeze_limit, vs->multi_limit);
	}
	if (live)
		vs->live += 1;
	dead = !needed;
	if (old_ids || (needed && dead_versions > 0))
		dead = freeze_row(vs, rowid) || dead;
	else
	{
		lsm_row_iter_init(&it, rec, len);
		while (lsm_next_version(vs->rel, rowid, &it, &v))
			keep_oldest(vs, &v.h);
	}
	if (dead)
	{
		bit_set(w->dead, bit);
		w->ndead++;
		vs->dead += 1;
	}
	return true;
}

/* IndexBulkDeleteCallback: whether the entry's row is dead */
static bool
entry_is_dead(ItemPointer itemptr, void *arg)
{
	VacWindow  *w = arg;
	uint64		rowid;
	uint8	   *rec;
	size_t		len;
	LsmRowHeader h;

	if (!lsm_tid_to_rowid(itemptr, &rowid) || rowid < w->lo || rowid >= w->hi)
		return false;
	if (bit_test(w->dead, rowid - w->lo))
		return true;
	if (bit_test(w->seen, rowid - w->lo))
		return false;
	/* not seen: removed by compaction, or written after the scan passed */
	if (lsm_fetch_row(&w->rnode, rowid, &rec, &len, &h))
	{
		lsm_free(rec);
		return false;
	}
	w->nmissing++;
	return true;
}

static uint64
window_rows(void)
{
	int			mem_kb = (IsAutoVacuumWorkerProcess() && autovacuum_work_mem != -1) ?
		autovacuum_work_mem : maintenance_work_mem;

	/* two bits a rowid */
	return Max(MIN_WINDOW, (uint64) mem_kb * 1024 * 4) & ~UINT64CONST(63);
}

static bool
deletes_reported(Relation rel)
{
	PgStat_StatTabEntry *tab = pgstat_fetch_stat_tabentry(RelationGetRelid(rel));

	return tab == NULL || tab->n_dead_tuples > 0;
}

void
lsm_init_ivinfo(IndexVacuumInfo *iv, Relation index, double reltuples, int elevel,
			BufferAccessStrategy bstrategy)
{
	memset(iv, 0, sizeof(*iv));
	iv->index = index;
	iv->analyze_only = false;
	iv->report_progress = false;
	iv->estimated_count = false;
	iv->message_level = elevel;
	iv->num_heap_tuples = reltuples;
	iv->strategy = bstrategy;
}

void
lsm_relation_vacuum(Relation rel, struct VacuumParams *params, BufferAccessStrategy bstrategy)
{
	int			elevel = (params->options & VACOPT_VERBOSE) ? INFO : DEBUG2;
	VacState	vs = {0};
	VacWindow	w = {0};
	MultiXactId oldest_mxact;
	uint64		high = lsm_rowid_high(rel);
	uint64		span = window_rows();
	int			nindexes;
	Relation   *indexes;
	IndexBulkDeleteResult **istats;
	bool		do_indexes;
	bool		reported_deletes = deletes_reported(rel);
	int			index_passes = 0;
	BlockNumber relpages;
	bool		frozenxid_updated;

	ereport(elevel,
			(errmsg("vacuuming \"%s.%s.%s\"",
					get_database_name(MyDatabaseId),
					get_namespace_name(RelationGetNamespace(rel)),
					RelationGetRelationName(rel))));

	vs.rel = rel;
	vs.db = lsm_am_db();
	(void) vacuum_set_xid_limits(rel, params->freeze_min_age, params->freeze_table_age,
								 params->multixact_freeze_min_age,
								 params->multixact_freeze_table_age,
								 &vs.oldest_xmin, &oldest_mxact,
								 &vs.freeze_limit, &vs.multi_limit);
	vs.new_frozen_xid = vs.oldest_xmin;
	vs.new_min_mxid = oldest_mxact;
	lsm_xid_cache_init(&vs.xids);
	vs.w = &w;

	vac_open_indexes(rel, RowExclusiveLock, &nindexes, &indexes);
	do_indexes = nindexes > 0 && params->index_cleanup != VACOPTVALUE_DISABLED;
	istats = palloc0(sizeof(IndexBulkDeleteResult *) * Max(nindexes, 1));

	w.rnode = rel->rd_node;
	w.seen = MemoryContextAllocHuge(CurrentMemoryContext, Min(span, Max(high, 64)) / 8 + 8);
	w.dead = MemoryContextAllocHuge(CurrentMemoryContext, Min(span, Max(high, 64)) / 8 + 8);
	for (w.lo = 0; w.lo < high; w.lo = w.hi)
	{
		uint64		gaps;

		w.hi = Min(w.lo + span, high);
		memset(w.seen, 0, (w.hi - w.lo) / 8 + 8);
		memset(w.dead, 0, (w.hi - w.lo) / 8 + 8);
		w.nseen = w.ndead = 0;
		lsm_scan_rowids(rel, w.lo, w.hi, vacuum_one_row, &vs);

		gaps = (w.hi - w.lo) - w.nseen;
		if (!do_indexes || (w.ndead == 0 && gaps == 0) ||
			(params->index_cleanup == VACOPTVALUE_AUTO && w.ndead == 0 && !reported_deletes))
			continue;
		index_passes++;
		for (int i = 0; i < nindexes; i++)
		{
			IndexVacuumInfo iv;
			double		before = istats[i] ? istats[i]->tuples_removed : 0;

			lsm_init_ivinfo(&iv, indexes[i], vs.live + vs.recently_dead, elevel, bstrategy);
			istats[i] = index_bulk_delete(&iv, istats[i], entry_is_dead, &w);
			ereport(elevel,
					(errmsg("scanned index \"%s\" to remove %.0f row versions",
							RelationGetRelationName(indexes[i]),
							istats[i] ? istats[i]->tuples_removed - before : 0)));
		}
	}

	/* what was frozen or deleted is durable before pg_class says so */
	if (vs.wrote)
		lsm_am_check(lsm_sync_wal(vs.db), "sync its log after VACUUM");

	for (int i = 0; do_indexes && i < nindexes; i++)
	{
		IndexVacuumInfo iv;

		lsm_init_ivinfo(&iv, indexes[i], vs.live + vs.recently_dead, elevel, bstrategy);
		istats[i] = index_vacuum_cleanup(&iv, istats[i]);
		if (istats[i] == NULL)
			continue;
		if (!istats[i]->estimated_count)
			vac_update_relstats(indexes[i], istats[i]->num_pages, istats[i]->num_index_tuples,
								0, false, InvalidTransactionId, InvalidMultiXactId,
								NULL, NULL, false);
		ereport(elevel,
				(errmsg("index \"%s\" now contains %.0f row versions in %u pages",
						RelationGetRelationName(indexes[i]),
						istats[i]->num_index_tuples, istats[i]->num_pages)));
		pfree(istats[i]);
	}
	vac_close_indexes(nindexes, indexes, NoLock);

	relpages = RelationGetNumberOfBlocks(rel);
	vac_update_relstats(rel, relpages, vs.live, 0, nindexes > 0, vs.new_frozen_xid,
						vs.new_min_mxid, &frozenxid_updated, NULL, false);
	pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared,
						 (PgStat_Counter) vs.live, (PgStat_Counter) vs.recently_dead);

	ereport(elevel,
			(errmsg("finished vacuuming \"%s\": %.0f live row versions, %.0f dead row versions not yet removable, %.0f dead",
					RelationGetRelationName(rel), vs.live, vs.recently_dead, vs.dead),
			 errdetail("index scans: %d; index entries of rows already gone: " UINT64_FORMAT "; rows frozen: %.0f, removed: %.0f%s.",
					   index_passes, w.nmissing, vs.frozen, vs.removed,
					   frozenxid_updated ? "; relfrozenxid advanced" : "")));
	pfree(w.seen);
	pfree(w.dead);
	pfree(istats);
}

/* ------------------------------------------------ VACUUM FULL, CLUSTER */

/*
 * VACUUM FULL and CLUSTER write the versions still needed into the new
 * relfilenode's key range; the caller swaps the relfilenodes and rebuilds
 * the indexes, and the old range goes when the transient table is dropped
 * at commit.  Each record keeps its MVCC header, with xids older than the
 * caller's cutoff frozen (it sets relfrozenxid to the cutoff), and its
 * tuple is formed again, so values of dropped columns go and wide values
 * move to the new TOAST table.
 *
 * VACUUM FULL keeps every rowid: update chains (successor rowids) stay
 * valid.  CLUSTER numbers the rows afresh in index order; a version that
 * was updated links to its successor's new rowid, so such versions wait
 * until every row is placed.  Only a version inserted after OldestXmin can
 * be the successor of one still needed, so only those are remembered.  A
 * successor that was dead is not written, and its predecessor then reads
 * as deleted (heap's rewrite does the same).
 */
typedef struct RowidMapEntry
{
	uint64		old_rowid;		/* hash key */
	uint64		new_rowid;
} RowidMapEntry;

/* A version to write, with its tuple. */
typedef struct KeptVersion
{
	LsmRowHeader h;
	HeapTuple	tuple;
} KeptVersion;

typedef struct PendingRow
{
	uint64		new_rowid;
	int			nversions;
	KeptVersion *versions;		/* newest first */
} PendingRow;

typedef struct ClusterState
{
	Relation	old_rel;
	Relation	new_rel;
	TransactionId oldest_xmin;
	TransactionId freeze_xid;
	MultiXactId multi_cutoff;
	bool		keep_rowids;
	LsmXidCache xids;
	HTAB	   *map;			/* CLUSTER: old -> new rowid of late inserts */
	List	   *pending;		/* CLUSTER: updated versions (PendingRow) */
	lsm_batch  *batch;
	int			batched;
	Datum	   *values;
	bool	   *isnull;
	double		num_tuples;
	double		vacuumed;
	double		recently_dead;
} ClusterState;

#define CLUSTER_BATCH_ROWS	512

static void
flush_batch(ClusterState *cs)
{
	if (cs->batched == 0)
		return;
	lsm_am_check(lsm_write(lsm_am_db(), NULL, cs->batch), "write rows of a rewritten table");
	lsm_batch_clear(cs->batch);
	cs->batched = 0;
}

/* The tuple again, without dropped columns' values, toasted into new_rel. */
static HeapTuple
reform_tuple(ClusterState *cs, HeapTuple tuple)
{
	TupleDesc	olddesc = RelationGetDescr(cs->old_rel);
	TupleDesc	newdesc = RelationGetDescr(cs->new_rel);
	HeapTuple	copy,
				toasted;

	heap_deform_tuple(tuple, olddesc, cs->values, cs->isnull);
	for (int i = 0; i < newdesc->natts; i++)
		if (TupleDescAttr(newdesc, i)->attisdropped)
			cs->isnull[i] = true;
	copy = heap_form_tuple(newdesc, cs->values, cs->isnull);
	if (!HeapTupleHasExternal(copy) && copy->t_len <= TOAST_TUPLE_THRESHOLD)
		return copy;
	toasted = heap_toast_insert_or_update(cs->new_rel, copy, NULL, 0);
	if (toasted != copy)
		heap_freetuple(copy);
	return toasted;
}

/* Writes the versions of one record (newest first) under rowid. */
static void
write_row(ClusterState *cs, uint64 rowid, const KeptVersion *versions, int n)
{
	uint8		key[LSM_KEY_LEN];
	LsmRowWriter w = {0};
	uint8	   *out,
			   *prev = NULL;
	size_t		used;

	for (int i = 0; i < n; i++)
	{
		HeapTuple	formed = reform_tuple(cs, versions[i].tuple);
		size_t		len;
		uint8	   *rec = lsm_row_build(&versions[i].h, formed, &len);
		LsmRowVersion v = lsm_row_version_of(rec, len);

		lsm_row_writer_add(&w, &v.h, &v);	/* writes out the one before */
		if (prev)
			pfree(prev);
		prev = rec;
		heap_freetuple(formed);
	}
	out = lsm_row_writer_finish(&w, &used);
	if (prev)
		pfree(prev);
	lsm_key_encode(key, &cs->new_rel->rd_node, rowid);
	lsm_am_check(lsm_batch_put(cs->batch, key, LSM_KEY_LEN, out, used), "batch a row");
	pfree(out);
	if (++cs->batched >= CLUSTER_BATCH_ROWS)
		flush_batch(cs);
}

static void
free_versions(KeptVersion *versions, int n)
{
	for (int i = 0; i < n; i++)
		heap_freetuple(versions[i].tuple);
	pfree(versions);
}

/*
 * The versions of one record of the old table still needed, newest first,
 * with old xids frozen; NULL (and *n 0) when none is.
 */
static KeptVersion *
versions_to_keep(ClusterState *cs, uint64 rowid, const uint8 *rec, size_t len, int *n)
{
	LsmRowIter	it;
	LsmRowVersion v;
	KeptVersion *kept = NULL;
	int			cap = 0;

	*n = 0;
	lsm_row_iter_init(&it, rec, len);
	while (lsm_next_version(cs->old_rel, rowid, &it, &v))
	{
		LsmRowHeader h = v.h;

		switch (lsm_row_vacuum_state(&h, cs->oldest_xmin, &cs->xids))
		{
			case HEAPTUPLE_DEAD:
				cs->vacuumed += 1;
				continue;
			case HEAPTUPLE_RECENTLY_DEAD:
				cs->recently_dead += 1;
				break;
			case HEAPTUPLE_LIVE:
				/* an aborted updater's link leads nowhere */
				if (TransactionIdIsValid(h.xmax) && !(h.flags & LSM_ROW_LOCK_ONLY))
				{
					h.xmax = InvalidTransactionId;
					h.flags &= ~LSM_ROW_UPDATED;
					h.successor = 0;
				}
				break;
			case HEAPTUPLE_INSERT_IN_PROGRESS:
			case HEAPTUPLE_DELETE_IN_PROGRESS:
				break;			/* only this transaction's, under its lock */
		}
		if (freeze_header(&h, cs->freeze_xid, cs->multi_cutoff) == OLD_DELETE)
		{
			cs->vacuumed += 1;
			continue;
		}
		cs->num_tuples += 1;
		if (*n == cap)
		{
			cap = Max(4, cap * 2);
			kept = kept ? repalloc(kept, sizeof(KeptVersion) * cap) :
				palloc(sizeof(KeptVersion) * cap);
		}
		kept[*n].h = h;
		kept[*n].tuple = lsm_row_copy_tuple(cs->old_rel, rowid, v.rec, v.len, &h);
		(*n)++;
	}
	return kept;
}

/* Writes (or, for CLUSTER, places) one record of the old table. */
static bool
rewrite_one_row(void *arg, uint64 rowid, const uint8 *rec, size_t len, const LsmRowHeader *hdr)
{
	ClusterState *cs = arg;
	uint64		new_rowid = rowid;
	int			n;
	KeptVersion *kept;

	CHECK_FOR_INTERRUPTS();
	kept = versions_to_keep(cs, rowid, rec, len, &n);
	if (n == 0)
		return true;
	if (!cs->keep_rowids)
	{
		const LsmRowHeader *oldest = &kept[n - 1].h;

		lsm_rowid_alloc(cs->new_rel, 1, &new_rowid);
		/* versions updated within the record point at it */
		for (int i = 1; i < n; i++)
			if ((kept[i].h.flags & LSM_ROW_UPDATED) && kept[i].h.successor == rowid)
				kept[i].h.successor = new_rowid;
		if (TransactionIdIsNormal(oldest->xmin) &&
			!TransactionIdPrecedes(oldest->xmin, cs->oldest_xmin))
		{
			bool		found;
			RowidMapEntry *e = hash_search(cs->map, &rowid, HASH_ENTER, &found);

			e->new_rowid = new_rowid;
		}
		if ((kept[0].h.flags & LSM_ROW_UPDATED) && kept[0].h.successor != rowid)
		{
			PendingRow *p = palloc(sizeof(PendingRow));

			p->new_rowid = new_rowid;
			p->nversions = n;
			p->versions = kept;
			cs->pending = lappend(cs->pending, p);
			return true;
		}
		if (kept[0].h.flags & LSM_ROW_UPDATED)
			kept[0].h.successor = new_rowid;
	}
	write_row(cs, new_rowid, kept, n);
	free_versions(kept, n);
	return true;
}

static void
write_pending(ClusterState *cs)
{
	ListCell   *lc;

	foreach(lc, cs->pending)
	{
		PendingRow *p = lfirst(lc);
		LsmRowHeader *h = &p->versions[0].h;
		RowidMapEntry *e = hash_search(cs->map, &h->successor, HASH_FIND, NULL);

		if (e != NULL)
			h->successor = e->new_rowid;
		else
		{
			h->flags &= ~LSM_ROW_UPDATED;	/* the successor was dead */
			h->successor = 0;
		}
		write_row(cs, p->new_rowid, p->versions, p->nversions);
		free_versions(p->versions, p->nversions);
	}
	list_free_deep(cs->pending);
	cs->pending = NIL;
}

/* VACUUM FULL: rowids [0, high) stay the new table's, none handed out again. */
static void
reserve_rowids(Relation rel, uint64 high)
{
	uint64		reserved = 0;

	while (reserved < high)
	{
		int			n = (int) Min(high - reserved, (uint64) 1 << 30);
		uint64		first;

		lsm_rowid_alloc(rel, n, &first);
		if (first != reserved)
			elog(ERROR, "rowids of a new lsm relation start at " UINT64_FORMAT, first);
		reserved += n;
	}
}

/* CLUSTER: the old table's versions in index order (through a sort or the index). */
static void
rewrite_in_index_order(ClusterState *cs, Relation old_index, bool use_sort)
{
	Tuplesortstate *sort = NULL;
	IndexScanDesc iscan = NULL;
	TupleTableSlot *slot = table_slot_create(cs->old_rel, NULL);

	if (use_sort)
	{
		TableScanDesc scan = table_beginscan(cs->old_rel, SnapshotAny, 0, NULL);

		sort = tuplesort_begin_cluster(RelationGetDescr(cs->old_rel), old_index,
									   maintenance_work_mem, NULL, TUPLESORT_NONE);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool		should_free;
			HeapTuple	t = ExecFetchSlotHeapTuple(slot, false, &should_free);

			CHECK_FOR_INTERRUPTS();
			tuplesort_putheaptuple(sort, t);
			if (should_free)
				heap_freetuple(t);
		}
		table_endscan(scan);
		tuplesort_performsort(sort);
	}
	else
	{
		iscan = index_beginscan(cs->old_rel, old_index, SnapshotAny, 0, 0);
		index_rescan(iscan, NULL, 0, NULL, 0);
	}

	for (;;)
	{
		ItemPointerData tid;
		uint64		rowid;
		uint8	   *rec;
		size_t		len;
		LsmRowHeader h;

		if (sort != NULL)
		{
			HeapTuple	t = tuplesort_getheaptuple(sort, true);

			if (t == NULL)
				break;
			tid = t->t_self;
		}
		else
		{
			if (!index_getnext_slot(iscan, ForwardScanDirection, slot))
				break;
			tid = slot->tts_tid;
		}
		/* the record, header and all, as the old table has it */
		if (!lsm_tid_to_rowid(&tid, &rowid) ||
			!lsm_fetch_row(&cs->old_rel->rd_node, rowid, &rec, &len, &h))
			continue;
		PG_TRY();
		{
			rewrite_one_row(cs, rowid, rec, len, &h);
		}
		PG_FINALLY();
		{
			lsm_free(rec);
		}
		PG_END_TRY();
	}
	if (sort != NULL)
		tuplesort_end(sort);
	if (iscan != NULL)
		index_endscan(iscan);
	ExecDropSingleTupleTableSlot(slot);
	write_pending(cs);
}

void
lsm_relation_copy_for_cluster(Relation OldTable, Relation NewTable, Relation OldIndex,
							  bool use_sort, TransactionId OldestXmin,
							  TransactionId *xid_cutoff, MultiXactId *multi_cutoff,
							  double *num_tuples, double *tups_vacuumed,
							  double *tups_recently_dead)
{
	ClusterState cs = {0};
	int			natts = RelationGetDescr(OldTable)->natts;

	cs.old_rel = OldTable;
	cs.new_rel = NewTable;
	cs.oldest_xmin = OldestXmin;
	cs.freeze_xid = *xid_cutoff;
	cs.multi_cutoff = *multi_cutoff;
	cs.keep_rowids = OldIndex == NULL;
	lsm_xid_cache_init(&cs.xids);
	cs.values = palloc(sizeof(Datum) * natts);
	cs.isnull = palloc(sizeof(bool) * natts);
	lsm_am_check(lsm_batch_create(&cs.batch), "start a batch");
	PG_TRY();
	{
		if (cs.keep_rowids)
		{
			uint64		high = lsm_rowid_high(OldTable);

			reserve_rowids(NewTable, high);
			lsm_scan_rowids(OldTable, 0, high, rewrite_one_row, &cs);
		}
		else
		{
			HASHCTL		ctl = {0};

			ctl.keysize = sizeof(uint64);
			ctl.entrysize = sizeof(RowidMapEntry);
			ctl.hcxt = CurrentMemoryContext;
			cs.map = hash_create("lsm CLUSTER rowids", 1024, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
			rewrite_in_index_order(&cs, OldIndex, use_sort);
		}
		flush_batch(&cs);
	}
	PG_FINALLY();
	{
		lsm_batch_destroy(cs.batch);
	}
	PG_END_TRY();
	lsm_xact_wrote();
	if (cs.map)
		hash_destroy(cs.map);
	pfree(cs.values);
	pfree(cs.isnull);
	*num_tuples = cs.num_tuples;
	*tups_vacuumed = cs.vacuumed;
	*tups_recently_dead = cs.recently_dead;
}
