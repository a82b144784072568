/*-------------------------------------------------------------------------
 *
 * lsm_rowlock.c
 *	  Striped locks serializing the read-modify-write of one row record.
 *
 * DELETE, UPDATE and row locks read a record, decide, and write it back;
 * two backends doing so at once on one row must not both succeed.  A
 * stripe (an LWLock chosen by hashing relfilenode and rowid) is held only
 * across that read and write, never while waiting for another
 * transaction (lsm_modify.c waits with XactLockTableWait outside it), so
 * a stripe shared by unrelated rows costs a moment, not a deadlock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "lsm_am.h"

#define ROW_LOCK_STRIPES 1024

typedef struct RowLocks
{
	int			tranche_id;
	LWLockPadded locks[ROW_LOCK_STRIPES];
} RowLocks;

static RowLocks *row_locks = NULL;
static bool tranche_registered = false;

Size
lsm_rowlock_shmem_size(void)
{
	return sizeof(RowLocks);
}

void
lsm_rowlock_shmem_init(void)
{
	bool		found;

	row_locks = ShmemInitStruct("lsm_am row locks", sizeof(RowLocks), &found);
	if (!found)
	{
		row_locks->tranche_id = LWLockNewTrancheId();
		for (int i = 0; i < ROW_LOCK_STRIPES; i++)
			LWLockInitialize(&row_locks->locks[i].lock, row_locks->tranche_id);
	}
}

static LWLock *
stripe(const RelFileNode *rnode, uint64 rowid)
{
	uint32		h = hash_bytes_uint32(rnode->relNode) ^
		hash_bytes_uint32((uint32) rowid) ^ hash_bytes_uint32((uint32) (rowid >> 32));

	if (!tranche_registered)
	{
		(void) lsm_am_db();		/* errors unless preloaded */
		LWLockRegisterTranche(row_locks->tranche_id, "lsm_row");
		tranche_registered = true;
	}
	return &row_locks->locks[h % ROW_LOCK_STRIPES].lock;
}

void
lsm_rowlock_acquire(const RelFileNode *rnode, uint64 rowid)
{
	LWLockAcquire(stripe(rnode, rowid), LW_EXCLUSIVE);
}

void
lsm_rowlock_release(const RelFileNode *rnode, uint64 rowid)
{
	LWLockRelease(stripe(rnode, rowid));
}
