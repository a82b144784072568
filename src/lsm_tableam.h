/*-------------------------------------------------------------------------
 *
 * lsm_tableam.h
 *	  What the table access method's files (lsm_handler.c, lsm_scan.c,
 *	  lsm_modify.c) share: fetching one row and the scan callbacks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LSM_TABLEAM_H
#define LSM_TABLEAM_H

#include "postgres.h"

#include "access/relscan.h"
#include "access/tableam.h"
#include "executor/tuptable.h"

#include "lsm_am.h"
#include "lsm_row.h"
#include "lsm_visibility.h"

/*
 * The row rowid of rnode: true with its record (malloc'd: free with
 * lsm_free) and decoded header, false when there is none.  A malformed
 * record or an engine failure is an ERROR.
 */
extern bool lsm_fetch_row(const RelFileNode *rnode, uint64 rowid,
						  uint8 **rec, size_t *len, LsmRowHeader *h);
/* A palloc'd copy of the row as a heap tuple of rel (one chunk). */
extern HeapTuple lsm_row_copy_tuple(Relation rel, uint64 rowid, const uint8 *rec,
									size_t len, const LsmRowHeader *h);
/* The next version of rowid's record (lsm_row_iter_next), or false at the
 * end; a malformed record is an ERROR. */
extern bool lsm_next_version(Relation rel, uint64 rowid, LsmRowIter *it, LsmRowVersion *v);
/* The version of a record that snapshot sees (at most one, for MVCC),
 * with SERIALIZABLE's conflict checks for the versions looked at. */
extern bool lsm_record_visible_version(Relation rel, uint64 rowid, const uint8 *rec,
									   size_t len, Snapshot snapshot, LsmXidCache *xids,
									   LsmRowVersion *v);
/* Whether no snapshot can see any version of the record; *newest_deleter
 * (if given) is raised to the newest xid that deleted one. */
struct GlobalVisState;
extern bool lsm_record_surely_dead(Relation rel, uint64 rowid, const uint8 *rec, size_t len,
								   struct GlobalVisState *vistest,
								   TransactionId *newest_deleter);
/* Raises the error for a record that does not decode. */
extern void lsm_report_bad_row(Relation rel, uint64 rowid) pg_attribute_noreturn();

/* lsm_scan.c */
extern const TupleTableSlotOps *lsm_slot_callbacks(Relation rel);
extern TableScanDesc lsm_scan_begin(Relation rel, Snapshot snapshot, int nkeys,
									struct ScanKeyData *key,
									ParallelTableScanDesc pscan, uint32 flags);
extern void lsm_scan_end(TableScanDesc scan);
extern void lsm_scan_rescan(TableScanDesc scan, struct ScanKeyData *key,
							bool set_params, bool allow_strat, bool allow_sync,
							bool allow_pagemode);
extern bool lsm_scan_getnextslot(TableScanDesc scan, ScanDirection direction,
								 TupleTableSlot *slot);
extern struct IndexFetchTableData *lsm_index_fetch_begin(Relation rel);
extern void lsm_index_fetch_reset(struct IndexFetchTableData *data);
extern void lsm_index_fetch_end(struct IndexFetchTableData *data);
extern bool lsm_index_fetch_tuple(struct IndexFetchTableData *scan, ItemPointer tid,
								  Snapshot snapshot, TupleTableSlot *slot,
								  bool *call_again, bool *all_dead);
extern bool lsm_tuple_fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot,
										TupleTableSlot *slot);
extern bool lsm_tuple_tid_valid(TableScanDesc scan, ItemPointer tid);
extern void lsm_tuple_get_latest_tid(TableScanDesc scan, ItemPointer tid);
extern bool lsm_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot,
										 Snapshot snapshot);
extern bool lsm_scan_analyze_next_block(TableScanDesc scan, BlockNumber blockno,
										BufferAccessStrategy bstrategy);
extern bool lsm_scan_analyze_next_tuple(TableScanDesc scan, TransactionId OldestXmin,
										double *liverows, double *deadrows,
										TupleTableSlot *slot);
extern bool lsm_scan_bitmap_next_block(TableScanDesc scan, struct TBMIterateResult *tbmres);
extern bool lsm_scan_bitmap_next_tuple(TableScanDesc scan, struct TBMIterateResult *tbmres,
									   TupleTableSlot *slot);
extern void lsm_scan_set_tidrange(TableScanDesc scan, ItemPointer mintid, ItemPointer maxtid);
extern bool lsm_scan_getnextslot_tidrange(TableScanDesc scan, ScanDirection direction,
										  TupleTableSlot *slot);
extern bool lsm_scan_sample_next_block(TableScanDesc scan, struct SampleScanState *scanstate);
extern bool lsm_scan_sample_next_tuple(TableScanDesc scan, struct SampleScanState *scanstate,
									   TupleTableSlot *slot);
/* Rows of [first, end) rowids, for index builds: visits each row whose
 * inserter did not abort; false from fn stops. */
typedef bool (*lsm_row_visit_fn) (void *arg, uint64 rowid, const uint8 *rec, size_t len,
								  const LsmRowHeader *h);
extern void lsm_scan_rowids(Relation rel, uint64 first, uint64 end,
							lsm_row_visit_fn fn, void *arg);
/* A parallel scan's next block for this worker, as rowids [first, end). */
extern bool lsm_parallel_next_rowids(TableScanDesc scan, uint64 *first, uint64 *end);

/* lsm_modify.c */
extern void lsm_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid,
							 int options, struct BulkInsertStateData *bistate);
extern void lsm_tuple_insert_speculative(Relation rel, TupleTableSlot *slot,
										 CommandId cid, int options,
										 struct BulkInsertStateData *bistate,
										 uint32 specToken);
extern void lsm_tuple_complete_speculative(Relation rel, TupleTableSlot *slot,
										   uint32 specToken, bool succeeded);
extern void lsm_multi_insert(Relation rel, TupleTableSlot **slots, int nslots,
							 CommandId cid, int options,
							 struct BulkInsertStateData *bistate);
extern TM_Result lsm_tuple_delete(Relation rel, ItemPointer tid, CommandId cid,
								  Snapshot snapshot, Snapshot crosscheck, bool wait,
								  TM_FailureData *tmfd, bool changingPart);
extern TM_Result lsm_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
								  CommandId cid, Snapshot snapshot, Snapshot crosscheck,
								  bool wait, TM_FailureData *tmfd,
								  LockTupleMode *lockmode, bool *update_indexes);
extern TM_Result lsm_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot,
								TupleTableSlot *slot, CommandId cid, LockTupleMode mode,
								LockWaitPolicy wait_policy, uint8 flags,
								TM_FailureData *tmfd);

/* lsm_vacuum.c */
struct VacuumParams;
struct IndexVacuumInfo;
/* The IndexVacuumInfo of a pass over index (bulk delete or cleanup). */
extern void lsm_init_ivinfo(struct IndexVacuumInfo *iv, Relation index, double reltuples,
							int elevel, BufferAccessStrategy bstrategy);
extern void lsm_relation_vacuum(Relation rel, struct VacuumParams *params,
								BufferAccessStrategy bstrategy);
extern void lsm_relation_copy_for_cluster(Relation OldTable, Relation NewTable,
										  Relation OldIndex, bool use_sort,
										  TransactionId OldestXmin,
										  TransactionId *xid_cutoff,
										  MultiXactId *multi_cutoff, double *num_tuples,
										  double *tups_vacuumed,
										  double *tups_recently_dead);

#endif							/* LSM_TABLEAM_H */
