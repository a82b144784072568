/*-------------------------------------------------------------------------
 *
 * lsm_rowid.c
 *	  Row ids of lsm tables: handed out once, never again.
 *
 * A rowid is a row's TID (lsm_row.h), and index entries point at TIDs, so
 * a rowid must never be reused, not even after a crash that lost the row:
 * an index entry logged in PostgreSQL's WAL could point at it.  Each
 * relation's allocator lives in shared memory (a hash keyed by
 * RelFileNode, under one LWLock) and persists a high-water mark, the key
 * LSM_ROWID_RESERVE of the relation's range, written with fsync before
 * any rowid beyond the previous mark is handed out.  After a restart the
 * allocator starts at the mark, so at most a reservation's worth of ids
 * (an eighth of the ids handed out so far, at least 1024 and at most
 * MAX_AHEAD) is skipped.  The cap matters: each restart starts at the
 * mark, so a gap proportional to the counter compounded, by 1.125 per
 * crash, and a crash loop used up all 1.25e12 ids of a table in about
 * 145 restarts.  With the cap a restart costs at most a million ids.
 *
 * Backends take ids from the shared allocator in chunks that grow from 1
 * to 1024, and keep the rest of a chunk for their next inserts into the
 * same relation; relcache invalidations (TRUNCATE, DROP) throw that
 * local cache away.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "lsm_am.h"
#include "lsm_row.h"

#define MAX_TABLES		4096
#define MAX_CHUNK		1024
#define MAX_AHEAD		(1 << 20)	/* ids a mark reserves ahead, at most */

typedef struct SharedRowids
{
	RelFileNode rnode;			/* hash key */
	uint64		next;			/* the next id to hand out */
	uint64		reserved;		/* ids below it are covered by the mark on disk */
} SharedRowids;

typedef struct LocalRowids
{
	RelFileNode rnode;			/* hash key */
	Oid			relid;
	uint64		next;
	uint64		end;
	int			chunk;
} LocalRowids;

static HTAB *shared_rowids = NULL;
static LWLock *rowid_lock = NULL;
static HTAB *local_rowids = NULL;

Size
lsm_rowid_shmem_size(void)
{
	return hash_estimate_size(MAX_TABLES, sizeof(SharedRowids));
}

void
lsm_rowid_shmem_init(void)
{
	HASHCTL		info;

	info.keysize = sizeof(RelFileNode);
	info.entrysize = sizeof(SharedRowids);
	shared_rowids = ShmemInitHash("lsm_am rowids", MAX_TABLES, MAX_TABLES, &info,
								  HASH_ELEM | HASH_BLOBS);
	rowid_lock = &(GetNamedLWLockTranche("lsm_am"))->lock;
}

/* The high-water mark on disk (0 when the relation has none). */
static uint64
read_mark(const RelFileNode *rnode)
{
	uint8		key[LSM_KEY_LEN];
	void	   *val;
	size_t		vlen;
	uint64		mark = 0;
	int			rc;

	lsm_key_encode(key, rnode, LSM_ROWID_RESERVE);
	rc = lsm_get(lsm_am_db(), NULL, key, LSM_KEY_LEN, &val, &vlen);
	if (rc == LSM_NOTFOUND)
		return 0;
	lsm_am_check(rc, "read a row id mark");
	if (vlen != 8)
	{
		lsm_free(val);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed row id mark of lsm relation %u", rnode->relNode)));
	}
	for (int i = 0; i < 8; i++)
		mark = (mark << 8) | ((uint8 *) val)[i];
	lsm_free(val);
	return mark;
}

static void
write_mark(const RelFileNode *rnode, uint64 mark)
{
	lsm_write_options wo = {.sync = 1};
	uint8		key[LSM_KEY_LEN],
				val[8];

	lsm_key_encode(key, rnode, LSM_ROWID_RESERVE);
	for (int i = 0; i < 8; i++)
		val[i] = (uint8) (mark >> (8 * (7 - i)));
	lsm_am_check(lsm_put(lsm_am_db(), &wo, key, LSM_KEY_LEN, val, 8), "reserve row ids");
}

/* The shared allocator of rnode, loaded from disk on first use.  The
 * caller holds rowid_lock exclusively. */
static SharedRowids *
shared_entry(const RelFileNode *rnode)
{
	SharedRowids *e;
	bool		found;
	uint64		mark;

	e = hash_search(shared_rowids, rnode, HASH_FIND, NULL);
	if (e)
		return e;
	mark = read_mark(rnode);
	e = hash_search(shared_rowids, rnode, HASH_ENTER_NULL, &found);
	if (e == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("too many lsm tables in use since the server started"),
				 errhint("At most %d lsm tables can be written or read between restarts.",
						 MAX_TABLES)));
	e->next = e->reserved = mark;
	return e;
}

static void
forget_local(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	LocalRowids *e;

	if (local_rowids == NULL)
		return;
	hash_seq_init(&status, local_rowids);
	while ((e = hash_seq_search(&status)) != NULL)
		if (!OidIsValid(relid) || e->relid == relid)
			hash_search(local_rowids, &e->rnode, HASH_REMOVE, NULL);
}

static LocalRowids *
local_entry(Relation rel)
{
	LocalRowids *e;
	bool		found;

	if (local_rowids == NULL)
	{
		HASHCTL		info;

		info.keysize = sizeof(RelFileNode);
		info.entrysize = sizeof(LocalRowids);
		info.hcxt = TopMemoryContext;
		local_rowids = hash_create("lsm_am local rowids", 64, &info,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(forget_local, (Datum) 0);
	}
	e = hash_search(local_rowids, &rel->rd_node, HASH_ENTER, &found);
	if (!found)
	{
		e->relid = RelationGetRelid(rel);
		e->next = e->end = 0;
		e->chunk = 1;
	}
	return e;
}

void
lsm_rowid_alloc(Relation rel, int n, uint64 *first)
{
	LocalRowids *local;
	SharedRowids *e;
	uint64		want;

	(void) lsm_am_db();			/* the shared state exists (preloaded) */
	local = local_entry(rel);

	if (local->end - local->next >= (uint64) n)
	{
		*first = local->next;
		local->next += n;
		return;
	}
	want = Max((uint64) n, (uint64) local->chunk);
	local->chunk = Min(local->chunk * 2, MAX_CHUNK);

	LWLockAcquire(rowid_lock, LW_EXCLUSIVE);
	e = shared_entry(&rel->rd_node);
	if (e->next + want > LSM_ROWID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("lsm table \"%s\" has used up its row ids",
						RelationGetRelationName(rel))));
	if (e->next + want > e->reserved)
	{
		uint64		mark = e->next + want + Min(Max(1024, e->next / 8), MAX_AHEAD);

		write_mark(&rel->rd_node, Min(mark, LSM_ROWID_MAX));
		e->reserved = Min(mark, LSM_ROWID_MAX);
	}
	*first = e->next;
	e->next += want;
	LWLockRelease(rowid_lock);

	local->next = *first + n;
	local->end = *first + want;
}

uint64
lsm_rowid_high(Relation rel)
{
	SharedRowids *e;
	uint64		high;

	(void) lsm_am_db();			/* the shared state exists (preloaded) */
	LWLockAcquire(rowid_lock, LW_SHARED);
	e = hash_search(shared_rowids, &rel->rd_node, HASH_FIND, NULL);
	if (e)
	{
		high = e->next;
		LWLockRelease(rowid_lock);
		return high;
	}
	LWLockRelease(rowid_lock);
	LWLockAcquire(rowid_lock, LW_EXCLUSIVE);
	high = shared_entry(&rel->rd_node)->next;
	LWLockRelease(rowid_lock);
	return high;
}

void
lsm_rowid_forget(const RelFileNode *rnode)
{
	(void) lsm_am_db();
	LWLockAcquire(rowid_lock, LW_EXCLUSIVE);
	hash_search(shared_rowids, rnode, HASH_REMOVE, NULL);
	LWLockRelease(rowid_lock);
	if (local_rowids)
		hash_search(local_rowids, rnode, HASH_REMOVE, NULL);
}
