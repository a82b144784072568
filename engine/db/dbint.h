/*
 * dbint.h — the engine's private core: the shared region, the write batch
 * encoding, the WAL, the memtable and the iterators, and how they meet.
 *
 * The region
 *   Everything every user of one database must see lives in one region:
 *   sequence counters, locks, the WAL buffer and its group-commit state, the
 *   memtable arena, snapshot slots and counters.  The region is addressed by
 *   offsets from its start and never holds a raw pointer, so it can later be
 *   PostgreSQL shared memory mapped at a different address in every process.
 *   Its locks are process-shared pthread mutexes and condition variables.
 *   In private mode (today's only mode) the region is malloc'd by lsm_open.
 *
 * Process-local state (struct lsm_db): the options, the env, file handles
 *   (each process opens its own), and the region pointer.
 *
 * Sequences
 *   Every entry of a batch gets its own sequence: a batch of n entries
 *   written at first_seq uses first_seq .. first_seq + n - 1.  Sequences are
 *   handed out under write_mu in the same order as records are appended to
 *   the WAL.  `visible_seq` only moves forward, and only past a batch once
 *   the batch is wholly in the memtable: writers publish in sequence order,
 *   so a reader at visible_seq never sees part of a batch.
 *
 * Lock order: sync_mu, then write_mu, then publish_mu / snap_mu.  No lock is
 *   held while the caller's code runs.
 */
#ifndef LSM_DBINT_H
#define LSM_DBINT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "lsm.h"
#include "coding.h"
#include "skiplist.h"
#include "ikey.h"

/* ---- write batch: rep = [u64 first_seq][u32 count][entries]
 * entry = u8 type, varint32 klen, key, and for puts varint32 vlen, value.
 * The same bytes are the payload of a WAL record.  A batch in memory keeps
 * first_seq 0: the writer supplies the real one (lsm_batch_rep_iterate takes
 * it as an argument) and stamps it only into the WAL copy. */
#define LSM_BATCH_HEADER 12

struct lsm_batch {
	lsm_buf rep;
	uint32_t count;
};

typedef struct lsm_batch_entry {
	int type;
	const uint8_t *key;
	uint32_t klen;
	const uint8_t *val;
	uint32_t vlen;
} lsm_batch_entry;

/* lsm_batch_rep_validate checks a whole rep (header, sequence range, every
 * entry, count); lsm_batch_rep_iterate walks a rep's entries, stopping with
 * LSM_CORRUPTION at the first malformed one, so validate untrusted reps
 * first when a partial walk would matter. */
typedef int (*lsm_batch_visit_fn)(void *arg, uint64_t seq, const lsm_batch_entry *e);
int lsm_batch_rep_validate(const uint8_t *rep, size_t len);
int lsm_batch_rep_iterate(const uint8_t *rep, size_t len, uint64_t first_seq,
                          lsm_batch_visit_fn fn, void *arg);

static inline uint64_t lsm_batch_rep_seq(const uint8_t *rep) { return lsm_get_fixed64(rep); }
static inline uint32_t lsm_batch_rep_count(const uint8_t *rep) { return lsm_get_fixed32(rep + 8); }

/* ---- the region */
#define LSM_REGION_MAGIC   UINT64_C(0x4c534d5245474e31)   /* "LSMREGN1" */
#define LSM_MAX_SNAPSHOTS  1024

typedef struct lsm_wal_shared {
	/* under write_mu */
	uint64_t seg_no;          /* segment being appended to */
	uint64_t seg_written;     /* bytes of that segment already in the file */
	uint64_t buf_off;         /* offset of the WAL buffer in the region */
	uint64_t buf_cap;
	uint64_t buf_len;         /* bytes in the buffer, not yet written */
	uint64_t append_lsn;      /* total bytes appended (all segments) */
	uint64_t written_lsn;     /* total bytes handed to write() */
	uint64_t unsynced_writes; /* sync policy counters */
	uint64_t unsynced_bytes;
	int      error;           /* sticky: the first failed write/sync */
	/* group commit: writers inside a synced write, and how many of them
	 * have a record appended that no sync covers yet */
	_Atomic uint32_t sync_writers;
	_Atomic uint32_t sync_records;
	/* under sync_mu (synced_lsn also read with atomics elsewhere) */
	_Atomic uint64_t synced_lsn;
	int      sync_leader;     /* a writer is syncing for the group */
	int      sync_error;      /* the failure of a group's fsync, for its waiters */
} lsm_wal_shared;

typedef struct lsm_region {
	uint64_t magic;
	uint64_t size;

	pthread_mutex_t write_mu;     /* sequences, WAL append, arena alloc */
	pthread_mutex_t sync_mu;      /* group commit: leader election, waiters */
	pthread_cond_t  sync_cv;
	pthread_mutex_t publish_mu;   /* ordered publication of visible_seq */
	pthread_cond_t  publish_cv;
	pthread_mutex_t snap_mu;

	uint64_t last_seq;            /* under write_mu: last sequence handed out */
	_Atomic uint64_t visible_seq; /* readers read at this */
	_Atomic uint32_t publish_waiters; /* sleepers on publish_cv */

	lsm_wal_shared wal;

	uint64_t arena_off;           /* the memtable arena */
	uint64_t arena_size;

	_Atomic uint64_t snapshots[LSM_MAX_SNAPSHOTS];   /* seq + 1; 0 = free */

	/* counters */
	_Atomic uint64_t n_writes;
	_Atomic uint64_t n_wal_syncs;
	_Atomic uint64_t n_wal_synced_writes;
	_Atomic uint64_t n_wal_segments;
	uint64_t recovered_records;
	uint64_t recovered_bytes_dropped;
} lsm_region;

static inline lsm_arena *lsm_region_arena(lsm_region *r)
{
	return (lsm_arena *)((char *)r + r->arena_off);
}

/* ---- process-local handle */
struct lsm_db {
	lsm_options opts;
	lsm_env *env;
	char *dir;
	lsm_region *region;
	lsm_file *lock;
	/* this process's handle on the WAL segment being appended to */
	pthread_mutex_t wal_fd_mu;
	lsm_file *wal_file;
	uint64_t wal_file_seg;
	int closed;
};

struct lsm_snapshot {
	uint32_t slot;
	uint64_t seq;
};

/* ---- WAL (wal.c) */
#define LSM_WAL_HEADER_SIZE 32
#define LSM_WAL_RECORD_HEADER 12

/* Builds the path of segment seg_no in dir into out (size >= strlen(dir)+32). */
void lsm_wal_path(const char *dir, uint64_t seg_no, char *out, size_t outlen);
/* Parses "NNNNNNNNNNNNNNNN.wal"; 1 and *seg_no on success. */
int  lsm_wal_parse_name(const char *name, uint64_t *seg_no);

/* Creates segment seg_no (header written and synced, directory synced) and
 * makes it the append target.  Caller holds write_mu. */
int  lsm_wal_start_segment(lsm_db *db, uint64_t seg_no);
/* Appends one record (a batch rep, stamped with first_seq) to the WAL
 * buffer; may write the buffer out or rotate the segment.  Sets *end_lsn to
 * the LSN just past the record.  Caller holds write_mu. */
int  lsm_wal_append(lsm_db *db, const uint8_t *rep, size_t len, uint64_t first_seq,
                    uint64_t *end_lsn);
/* Makes the WAL durable at least up to lsn (group commit: one caller
 * writes and syncs for all waiting).  Takes sync_mu and write_mu. */
int  lsm_wal_sync_to(lsm_db *db, uint64_t lsn);
/* Writes the buffer out (no fsync).  Caller holds write_mu. */
int  lsm_wal_write_buffer(lsm_db *db);
/* Closes this process's segment handle. */
void lsm_wal_close_file(lsm_db *db);

/* Recovery: replays every record of segment `path` through fn.
 * LSM_WAL_TAIL_OK: this is the newest segment, so damage with no valid
 * record after it is a torn tail, cut off (the file is truncated unless
 * LSM_WAL_READ_ONLY).  LSM_WAL_SALVAGE: skip damaged records anywhere.
 * *records counts records replayed, *dropped bytes cut or skipped; when
 * bad_off is given it receives the offset of the first damage (or -1). */
#define LSM_WAL_TAIL_OK   0x1
#define LSM_WAL_SALVAGE   0x2
#define LSM_WAL_READ_ONLY 0x4
typedef int (*lsm_wal_record_fn)(void *arg, const uint8_t *payload, size_t len);
int  lsm_wal_replay_segment(lsm_env *env, const char *path, uint64_t seg_no,
                            int flags, lsm_wal_record_fn fn, void *arg,
                            uint64_t *records, uint64_t *dropped, int64_t *bad_off);

/* Encodes a record header for payload into hdr[LSM_WAL_RECORD_HEADER]. */
void lsm_wal_record_header(uint8_t *hdr, const uint8_t *payload, size_t len);

/* ---- memtable (memtable.c) */
/* Arena bytes the nodes of a batch rep (at first_seq) need. */
size_t lsm_mem_batch_bytes(const uint8_t *rep, size_t len, uint64_t first_seq);
/* Builds and links the nodes of a batch rep into arena memory starting at
 * chunk (allocated with lsm_mem_batch_bytes bytes). */
void lsm_mem_insert_batch(lsm_arena *a, uint32_t chunk, const uint8_t *rep,
                          size_t len, uint64_t first_seq);
/* Newest version of key at or below seq: LSM_OK with the value,
 * LSM_NOTFOUND when absent or deleted.  *deleted set when a tombstone hit. */
int  lsm_mem_get(const lsm_arena *a, const void *key, size_t klen, uint64_t seq,
                 const uint8_t **val, size_t *vlen, int *found_tombstone);

/* The sequence a read runs at: the snapshot's, or the latest visible. */
uint64_t lsm_db_read_sequence(lsm_db *db, const lsm_snapshot *snap);

/* ---- internal iterators: lsm_iiter is in ikey.h */
lsm_iiter *lsm_mem_iter_create(const lsm_arena *a);

#endif
