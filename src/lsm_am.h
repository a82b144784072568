/*-------------------------------------------------------------------------
 *
 * lsm_am.h
 *	  The PostgreSQL glue of the lsm table access method: what its files
 *	  share.  The engine (engine/include/lsm.h) knows nothing of
 *	  PostgreSQL; only these files call ereport and palloc.
 *
 * One engine serves the whole cluster ($PGDATA/pg_lsm).  Its region lives
 * in PostgreSQL shared memory; each process attaches on first use
 * (lsm_am_db) and detaches at exit.  A relation's rows are the keys
 * relfilenode | rowid (lsm_row.h); a row's MVCC header travels with it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LSM_AM_H
#define LSM_AM_H

#include "postgres.h"

#include "access/tableam.h"
#include "utils/timestamp.h"
#include "storage/relfilenode.h"
#include "utils/rel.h"
#include "utils/snapshot.h"

#include "lsm.h"

#define LSM_AM_NAME "lsm"
#define LSM_DATA_DIR "pg_lsm"

/* GUCs (lsm_am.c) */
extern int	lsm_memtable_size_mb;
extern int	lsm_max_memtables;
extern int	lsm_block_cache_size_mb;
extern int	lsm_bloom_bits_per_key;
extern int	lsm_compression;
extern int	lsm_compaction_workers;
extern int	lsm_wal_sync_delay_ms;
extern int	lsm_l0_compaction_trigger;
extern int	lsm_target_file_size_mb;
extern int	lsm_table_cache_size_mb;
extern int	lsm_max_open_files;
extern bool lsm_pg_wal_flush_failed;	/* lsm_xact.c: the last flush hook failed */

/* lsm_am.c: the engine, attached on first use (errors if not preloaded) */
extern lsm_db *lsm_am_db(void);
extern bool lsm_am_preloaded(void);
/* Raises an ERROR for an engine code (rc != LSM_OK), naming what failed. */
extern void lsm_am_check(int rc, const char *what);
extern int	lsm_am_errmsg(int rc, const char *action);
/* when shared memory was last set up (server start or crash restart) */
extern TimestampTz lsm_shmem_started_at;

/* lsm_fault.c: I/O faults on demand, for tests */
extern void lsm_fault_define_gucs(void);
extern lsm_env *lsm_fault_env(void);
/* The engine options the GUCs describe. */
extern void lsm_am_options(lsm_options *o);
/* Oid of the lsm access method (InvalidOid before CREATE EXTENSION). */
extern Oid	lsm_am_oid(void);

/* lsm_gc.c: the compaction filter removing invisible row versions */
extern void lsm_gc_refresh_horizon(void);
extern int	lsm_gc_filter(void *arg, int level, const void *key, size_t klen,
						  const void *val, size_t vlen, uint64_t seq,
						  void **new_val, size_t *new_vlen);

/* lsm_recovery.c: rows of xids PostgreSQL forgot in a crash */
extern void lsm_recovery_set_start_horizon(TransactionId xid);
extern int	lsm_recovery_hook(void *arg, uint64_t first_segment, uint64_t new_segment);
extern void lsm_replay_filter(void *arg, uint64_t segment, const void *key, size_t klen,
							  void *val, size_t vlen);
/* lsm_xact.c: logs xid in PostgreSQL's WAL before its first row */
extern TransactionId lsm_xact_write_xid(void);
/* The engine's flush hook: PostgreSQL's WAL flushed as far as it is
 * written, before a memtable becomes a file (see lsm_recovery.c) */
extern int	lsm_flush_pg_wal(void *arg);

/* lsm_worker.c */
extern void lsm_register_workers(void);
extern Size lsm_worker_shmem_size(void);
extern void lsm_worker_shmem_init(void);
/* Asks a compaction worker to compact rnode's key range (after a DROP). */
extern void lsm_request_compaction(const RelFileNode *rnode);
PGDLLEXPORT extern void lsm_worker_main(Datum arg);

/* lsm_funcs.c: opens relid, an ERROR unless it is an lsm table */
extern Relation lsm_open_table(Oid relid, LOCKMODE mode);

/* lsm_handler.c */
extern const TableAmRoutine *lsm_tableam_routine(void);

/* lsm_xact.c: the engine WAL at commit, DROP/TRUNCATE of key ranges */
extern void lsm_xact_init(void);
extern void lsm_xact_wrote(void);	/* this transaction wrote rows */
/* The key range of rnode is deleted when the transaction commits (or,
 * on_commit false, when it aborts). */
extern void lsm_xact_drop_range(const RelFileNode *rnode, bool on_commit);
/* Engine iterators of scans, destroyed if their (sub)transaction aborts
 * before the scan ends: remember returns a handle for forget, which
 * destroys the iterator. */
extern void *lsm_xact_remember_iter(lsm_iter *it);
extern void lsm_xact_forget_iter(void *handle);
/* Range-deletes every key of rnode now (non-transactional). */
extern void lsm_delete_relation_range(const RelFileNode *rnode);

/* lsm_rowid.c: rowids, never reused */
extern Size lsm_rowid_shmem_size(void);
extern void lsm_rowid_shmem_init(void);
/* n consecutive fresh rowids of rel, the first in *first */
extern void lsm_rowid_alloc(Relation rel, int n, uint64 *first);
/* one past the largest rowid handed out (an upper bound of the rows) */
extern uint64 lsm_rowid_high(Relation rel);
extern void lsm_rowid_forget(const RelFileNode *rnode);

/* striped row locks serializing read-modify-write of one row record */
extern Size lsm_rowlock_shmem_size(void);
extern void lsm_rowlock_shmem_init(void);
extern void lsm_rowlock_acquire(const RelFileNode *rnode, uint64 rowid);
extern void lsm_rowlock_release(const RelFileNode *rnode, uint64 rowid);

#endif							/* LSM_AM_H */
