/*-------------------------------------------------------------------------
 *
 * lsm_visibility.h
 *	  Which row versions a snapshot sees, and whether a row may be
 *	  modified: heap's rules (heapam_visibility.c) over lsm row headers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LSM_VISIBILITY_H
#define LSM_VISIBILITY_H

#include "postgres.h"

#include "access/heapam.h"
#include "access/multixact.h"
#include "access/tableam.h"
#include "utils/rel.h"
#include "utils/snapshot.h"

#include "lsm_row.h"

/*
 * Rows come in runs written by one transaction, so a scan remembers the
 * last transaction whose fate it looked up in the commit log.
 */
typedef struct LsmXidCache
{
	TransactionId xid;
	bool		committed;
} LsmXidCache;

static inline void
lsm_xid_cache_init(LsmXidCache *c)
{
	c->xid = InvalidTransactionId;
	c->committed = false;
}

/* Whether snapshot sees the row (MVCC, self, any, dirty, non-vacuumable). */
extern bool lsm_row_visible(const LsmRowHeader *h, Snapshot snapshot, LsmXidCache *cache);

/* Whether the row is live for an index build: inserted by a committed or
 * the current transaction, and not deleted or updated by one. */
extern bool lsm_row_alive(const LsmRowHeader *h, LsmXidCache *cache);

/* Whether the version's inserter aborted (or was forgotten in a crash):
 * no snapshot ever sees it. */
extern bool lsm_row_inserter_aborted(const LsmRowHeader *h);

/* Whether an MVCC snapshot sees the version's insertion (its deletion
 * aside). */
extern bool lsm_row_insert_visible(const LsmRowHeader *h, Snapshot snapshot);

struct GlobalVisState;
extern bool lsm_row_surely_dead(const LsmRowHeader *h, struct GlobalVisState *vistest);

/* HeapTupleSatisfiesVacuum: LIVE, DEAD, RECENTLY_DEAD, INSERT_ or
 * DELETE_IN_PROGRESS under the horizon oldest_xmin (VACUUM, CLUSTER). */
extern HTSV_Result lsm_row_vacuum_state(const LsmRowHeader *h, TransactionId oldest_xmin,
										LsmXidCache *cache);

/* SERIALIZABLE: the rw-conflict a read of this version implies, if any. */
extern void lsm_serializable_conflict_out(bool visible, Relation rel, const LsmRowHeader *h,
										  Snapshot snapshot);

/*
 * Whether command cid of this transaction may update, delete or lock (with
 * strength mode; LockTupleExclusive for UPDATE and DELETE) the row: TM_Ok,
 * TM_Invisible, TM_SelfModified, TM_Updated, TM_Deleted, or
 * TM_BeingModified with *xwait the transaction to wait for.  tmfd is
 * filled for every result but TM_Ok.
 */
extern TM_Result lsm_row_modifiable(const LsmRowHeader *h, uint64 rowid, CommandId cid,
									LockTupleMode mode, TM_FailureData *tmfd,
									TransactionId *xwait);

/* Whether one of our (sub)transactions holds a lock of at least mode in
 * multi; whether we hold any lock on the version. */
extern bool lsm_multi_has_our_lock(MultiXactId multi, LockTupleMode mode);
extern bool lsm_row_locked_by_us(const LsmRowHeader *h);

/* Row lock strengths and the multixact member statuses of lockers. */
extern LockTupleMode lsm_lock_mode_of_status(MultiXactStatus status);
extern MultiXactStatus lsm_lock_status_of_mode(LockTupleMode mode);

#endif							/* LSM_VISIBILITY_H */
