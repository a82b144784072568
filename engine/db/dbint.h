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
#include "cache.h"
#include "table.h"
#include "version.h"

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
#define LSM_PUB_RING       4096   /* batches in flight at most */

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

/*
 * Memtable slots.  The region holds max_memtables arenas.  A slot's life:
 *
 *   FREE -> ACTIVE          a writer claims it (write_mu) when the active
 *                           one is full; the WAL starts a new segment
 *   ACTIVE -> IMMUTABLE     the next claim retires it from writing
 *   IMMUTABLE -> RETIRED    its flush is installed in the version
 *   RETIRED -> RESETTING -> ACTIVE
 *                           a claim reuses it once no reader pins it
 *
 * Readers pin in their process's slot (lsm_proc_slot.mem_pins: increment,
 * then check the state, both sequentially consistent; a claimer sets
 * RESETTING, then checks that no process pins it: one of the two always
 * sees the other).  Per-process counts, because one shared count per
 * memtable made every read of every process write the same cache lines
 * (two RMWs per memtable per get).  A reader pins the
 * memtables before the version, and a flush installs the version before
 * retiring the memtable, so every entry is in what a reader pinned.
 */
#define LSM_MAX_MEMTABLES 16
enum {
	LSM_MEM_FREE = 0,
	LSM_MEM_ACTIVE,
	LSM_MEM_IMMUTABLE,
	LSM_MEM_RETIRED,
	LSM_MEM_RESETTING,
};

typedef struct lsm_memslot {
	uint64_t arena_off;           /* fixed at region creation */
	_Atomic uint32_t state;
	/* under write_mu while ACTIVE; frozen from IMMUTABLE on */
	uint64_t gen;                 /* activation order: newer is larger */
	_Atomic uint64_t last_seq;    /* last sequence allocated into it; set when frozen */
	uint64_t wal_seg;             /* first WAL segment holding its records */
} lsm_memslot;

/*
 * Attached processes (shared mode; private mode uses slot 0).  Each says
 * which versions its readers use, so that a file dropped from the version
 * by edit E is deleted only once no process uses a version older than E:
 *   cur_pins   readers on the process's current version, whose edit is
 *              cur_edit;
 *   old_edit   the oldest edit among its older versions still in use
 *              (UINT64_MAX: none).
 * A version switch moves the current version's pins into old_edit before
 * zeroing cur_pins, and a deleter reads cur_pins, cur_edit, then old_edit,
 * so a pin is always seen in one of the two (fileset.c).
 * pending_floor: the smallest output number the process is writing
 * (UINT64_MAX: none); files at or above any floor are never garbage.
 * mem_pins: the process's readers on each memtable slot.
 * A slot fills whole cache lines: each process's reads write only its own.
 */
typedef struct lsm_proc_slot {
	_Atomic uint32_t pid;         /* 0: free */
	_Atomic uint32_t cur_pins;
	_Atomic uint64_t cur_edit;
	_Atomic uint64_t old_edit;
	_Atomic uint64_t pending_floor;
	_Atomic uint32_t mem_pins[LSM_MAX_MEMTABLES];
} __attribute__((aligned(64))) lsm_proc_slot;

/* A table a manifest edit dropped, awaiting deletion until no process
 * uses a version from before that edit. */
typedef struct lsm_zombie {
	uint64_t number;
	uint64_t drop_edit;
} lsm_zombie;
#define LSM_MAX_ZOMBIES 2048

enum { LSM_REGION_FORMATTED = 0, LSM_REGION_READY, LSM_REGION_FAILED };

typedef struct lsm_region {
	uint64_t magic;
	uint64_t size;
	int      shared;              /* caller's memory, many processes */

	/* opening: the first process recovers, the others wait (open_mu) */
	pthread_mutex_t open_mu;
	_Atomic uint32_t open_state;  /* LSM_REGION_* */
	int      open_error;          /* LSM_REGION_FAILED: why */
	int      open_error_noted;    /* ... and where, for corruption */
	lsm_error_info open_error_where;

	/* the file set, across processes (fileset.c).  flush_mu serializes
	 * flushes, compact_mu compactions; both before manifest_mu, which
	 * orders manifest writes, file numbers and deletions. */
	pthread_mutex_t flush_mu;
	pthread_mutex_t compact_mu;
	pthread_mutex_t manifest_mu;
	uint64_t manifest_number;     /* the live manifest */
	uint64_t next_file_number;
	_Atomic uint64_t edit_seq;    /* edits logged since the region was set up */
	uint32_t nzombies;
	int      manifest_failed;     /* a manifest write failed: delete nothing */
	int      zombies_lost;        /* the list overflowed: sweep by listing */
	lsm_zombie zombies[LSM_MAX_ZOMBIES];
	uint64_t procs_off;
	uint32_t n_procs;

	pthread_mutex_t write_mu;     /* sequences, WAL append, arena alloc */
	pthread_mutex_t sync_mu;      /* group commit: leader election, waiters */
	pthread_cond_t  sync_cv;
	pthread_mutex_t publish_mu;   /* ordered publication of visible_seq */
	pthread_cond_t  publish_cv;
	pthread_mutex_t snap_mu;

	uint64_t last_seq;            /* under write_mu: last sequence handed out */
	_Atomic uint64_t visible_seq; /* readers read at this */
	_Atomic uint32_t publish_waiters; /* sleepers on publish_cv */
	/* publication in ticket order (db.c): a done ticket's slot holds its
	 * batch's last sequence, 0 otherwise */
	uint64_t next_ticket;         /* under write_mu */
	_Atomic uint64_t pub_ticket;  /* the first ticket not yet published */
	_Atomic uint64_t pub_ring[LSM_PUB_RING];

	lsm_wal_shared wal;

	uint64_t cache_off;           /* the block cache (cache.h), 0 bytes: none */
	uint64_t cache_size;
	/* memtables: slots under write_mu, states atomic (see above) */
	uint64_t arena_size;          /* bytes per memtable arena */
	uint32_t n_mem;               /* slots in use: max_memtables */
	uint32_t active;              /* under write_mu: the slot writers fill */
	_Atomic uint64_t mem_gen;     /* last gen handed out (written under write_mu) */
	lsm_memslot mem[LSM_MAX_MEMTABLES];
	/* background work: flush_cv wakes the flusher (a memtable became
	 * immutable), stall_cv wakes stalled writers (a slot came free);
	 * both with bg_mu */
	pthread_mutex_t bg_mu;
	pthread_cond_t  flush_cv;
	pthread_cond_t  stall_cv;

	_Atomic uint64_t snapshots[LSM_MAX_SNAPSHOTS];   /* seq + 1; 0 = free */

	/* counters */
	_Atomic uint64_t n_writes;
	_Atomic uint64_t n_wal_syncs;
	_Atomic uint64_t n_wal_synced_writes;
	_Atomic uint64_t n_wal_segments;
	_Atomic uint64_t n_flushes;
	_Atomic uint64_t flush_bytes;
	_Atomic uint64_t n_compactions;
	_Atomic uint64_t compact_read_bytes;
	_Atomic uint64_t compact_write_bytes;
	_Atomic uint64_t n_slowdowns;
	_Atomic uint32_t l0_files;    /* of the current version: write throttling */
	_Atomic uint64_t n_retired;   /* memtables retired: iterators re-open on change */
	int      bg_error;            /* sticky: a failed flush/compaction (write_mu) */
	_Atomic uint64_t n_stalls;
	_Atomic uint64_t stall_micros;
	uint64_t recovered_records;
	uint64_t recovered_bytes_dropped;
} lsm_region;

static inline lsm_proc_slot *lsm_region_procs(lsm_region *r)
{
	return (lsm_proc_slot *)((char *)r + r->procs_off);
}

static inline void *lsm_region_cache_mem(lsm_region *r)
{
	return (char *)r + r->cache_off;
}

static inline lsm_arena *lsm_slot_arena(lsm_region *r, uint32_t slot)
{
	return (lsm_arena *)((char *)r + r->mem[slot].arena_off);
}

/* ---- the table cache (tcache.c): this process's open SSTables */
typedef struct lsm_tcache lsm_tcache;
typedef struct lsm_tcache_entry lsm_tcache_entry;
struct lsm_tcache_entry {
	lsm_tcache *tc;
	uint64_t number;
	lsm_table *table;
	size_t bytes;                 /* lsm_table_memory, taken at open */
	uint32_t refs;
	int listed;
	lsm_tcache_entry *older, *newer;   /* LRU links; victim chain */
};

typedef struct lsm_tcache_slot {
	uint64_t number;              /* 0: empty; UINT64_MAX: deleted */
	lsm_tcache_entry *e;
} lsm_tcache_slot;

struct lsm_tcache {
	pthread_mutex_t mu;
	lsm_tcache_slot *slots;
	size_t cap, n, used;          /* used = n + deleted slots */
	size_t bytes, budget, max_open;
	lsm_tcache_entry *lru_oldest, *lru_newest;
	uint64_t opens, evictions;
};

/* ---- process-local handle */
struct lsm_db {
	lsm_options opts;
	lsm_env *env;
	char *dir;
	lsm_region *region;
	lsm_file *lock;
	int shared;                   /* attached to a caller's region */
	lsm_proc_slot *proc;          /* this process's slot in the region */
	/* this process's handle on the WAL segment being appended to */
	pthread_mutex_t wal_fd_mu;
	lsm_file *wal_file;
	uint64_t wal_file_seg;
	int closed;
	_Atomic int flush_hook_failed; /* flush.c: the last flush's hook refused */
	/* from the manifest: every sequence <= flushed_seq is in an SSTable;
	 * WAL segments below log_number are no longer needed */
	uint64_t flushed_seq;
	uint64_t log_number;
	/* the background thread (private mode) */
	int bg_running;
	int bg_stop;                  /* under region bg_mu */
	pthread_t bg_thread[2];       /* flusher, compactor */
	/* SSTables */
	lsm_table_options table_opts;
	lsm_cache *cache;             /* in the region; NULL when size 0 */
	lsm_tcache tcache;
	/* the file set (this process's view; see ARCHITECTURE.md "Versions").
	 * version_mu guards all of it and is taken after the region's
	 * manifest_mu.  edit_seq: the region edit_seq mstate reflects. */
	pthread_mutex_t version_mu;
	uint64_t edit_seq;
	uint64_t unlisted_edit;       /* a version missing from live: pinned for good */
	lsm_manifest_state mstate;    /* mstate.version is the current version */
	lsm_manifest_writer *manifest;
	lsm_version **live;           /* versions handed out, one ref each */
	size_t nlive, live_cap;
	uint64_t *pending;            /* numbers of outputs being written */
	size_t npending, pending_cap;
	/* open iterators (iter.c) */
	pthread_mutex_t iters_mu;
	struct lsm_iter *open_iters;
	/* bytes of each memtable arena this process has mapped ahead of its
	 * writes (db.c, prefault_arena); a race only maps a window twice */
	_Atomic uint32_t prefaulted[LSM_MAX_MEMTABLES];
	/* the last sequence this handle wrote with defer_visibility (db.c):
	 * its reads wait until visible_seq covers it */
	_Atomic uint64_t deferred_seq;
};

/* db.c: marks ticket done (its batch ends at sequence last) and publishes
 * every done ticket at the head. */
void lsm_db_complete_ticket(lsm_region *r, uint64_t ticket, uint64_t last);

/* db.c: the caller's wait hook; non-zero means give up the wait. */
int  lsm_db_wait_hook(lsm_db *db);
/* pthread_cond_timedwait for ms milliseconds (CLOCK_REALTIME, as the
 * region's process-shared conditions use); 1 when it timed out. */
int  lsm_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, unsigned ms);

/* iter.c: re-opens, in place, this thread's iterators that pin retired
 * memtables, so a stalled writer can reuse those arenas. */
void lsm_iter_release_retired(lsm_db *db);

/* tcache.c */
int  lsm_tcache_init(lsm_tcache *tc, size_t budget, size_t max_open);
void lsm_tcache_free(lsm_tcache *tc);
/* Pins the open table for file number (opening it when needed): use
 * e->table until lsm_tcache_put(e).  The caller must hold a version
 * listing the file. */
int  lsm_tcache_get(lsm_db *db, uint64_t number, lsm_tcache_entry **e);
void lsm_tcache_put(lsm_tcache_entry *e);
/* An iterator over file number's table that keeps it pinned until it is
 * destroyed. */
int  lsm_tcache_iter(lsm_db *db, uint64_t number, int fill_cache, lsm_iiter **out);
struct lsm_rdel_set;
/* Adds file number's range deletions to set (lsm_rdel_add copies them). */
int  lsm_tcache_add_rdels(lsm_db *db, uint64_t number, struct lsm_rdel_set *set);
/* Closes number's table (or marks it to close at its last unpin) and drops
 * its cached blocks (file deleted). */
void lsm_tcache_evict(lsm_db *db, uint64_t number);
/* Closes every open table keep() says no version of this process uses
 * (another process deleted the file: its descriptor would hold the space). */
void lsm_tcache_prune(lsm_db *db, int (*keep)(void *arg, uint64_t number), void *arg);
/* Fills st's table cache fields. */
void lsm_tcache_get_stats(lsm_db *db, lsm_stats *st);

/* flush.c */
lsm_file_meta *lsm_meta_from_props(uint64_t number, int level, uint64_t size,
                                   const lsm_table_props *p);
int  lsm_bg_start(lsm_db *db);
void lsm_bg_stop(lsm_db *db);
/* db.c: freezes the active memtable for a new one (write_mu held);
 * LSM_BUSY when no slot is free */
int  lsm_db_switch_memtable(lsm_db *db);
void lsm_db_count_wal_segments(lsm_db *db);
/* A bounded wait for a memtable slot to come free (counted as a stall);
 * first lets this thread's iterators release retired memtables.  LSM_BUSY
 * when the wait hook says to give up. */
int  lsm_db_stall(lsm_db *db);

/* db.c: memtable switches */
void lsm_db_activate(lsm_region *r, int slot, uint64_t wal_seg);
void lsm_db_freeze_active(lsm_region *r);
/* recover.c: replays the WAL into memtables at open */
int  lsm_db_recover(lsm_db *db);

/* compact.c */
int  lsm_compaction_wanted(lsm_db *db);
int  lsm_compact_step(lsm_db *db);

/* fileset.c */
int  lsm_fileset_open(lsm_db *db);
void lsm_fileset_close(lsm_db *db);

/* versions (fileset.c) */
/* The current version (caught up with other processes' edits), pinned for
 * the caller until lsm_db_release_version. */
lsm_version *lsm_db_current_version(lsm_db *db);
void lsm_db_release_version(lsm_db *db, lsm_version *v);
/* Brings this process's version up to the manifest's last edit. */
int  lsm_db_catch_up(lsm_db *db);
/* Attaching: loads the live manifest named in the region. */
int  lsm_fileset_attach(lsm_db *db);
/* Publishes this process's opened (or recovered) file set in the region. */
void lsm_fileset_publish(lsm_db *db);
/* A new output file number in *number, registered as pending until
 * released (LSM_NOMEM when it cannot be registered). */
int  lsm_db_new_file(lsm_db *db, uint64_t *number);
void lsm_db_release_file(lsm_db *db, uint64_t number);
/* Logs e in the manifest and installs the resulting version. */
int  lsm_db_log_and_apply(lsm_db *db, lsm_version_edit *e);
/* Removes obsolete files (SSTables no live version lists, old WAL
 * segments, old manifests, temp files). */
void lsm_db_remove_obsolete(lsm_db *db);

/* ---- flush (flush.c) */
/* Writes the oldest immutable memtable to an L0 SSTable, installs it and
 * retires the memtable.  LSM_OK also when there was nothing to flush. */
int  lsm_flush_oldest(lsm_db *db);
/* The host's flush hook, before anything of the memtables reaches a
 * table: LSM_IOERR (not sticky) when it refuses. */
int  lsm_run_flush_hook(lsm_db *db);

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
/* Writes out and syncs the current segment and starts the next one (each
 * memtable's records begin in a fresh segment).  Caller holds write_mu. */
int  lsm_wal_rotate(lsm_db *db);
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
/* Roughly the arena bytes of entries with user keys in [start, end). */
uint64_t lsm_mem_approximate_size(const lsm_arena *a, const void *start, size_t slen,
                                  const void *end, size_t elen);
int  lsm_mem_get(const lsm_arena *a, const void *key, size_t klen, uint64_t seq,
                 const uint8_t **val, size_t *vlen, int *found_tombstone);
/* The memtable bloom filter: set up an arena's (after lsm_arena_init), and
 * 0 when key is certainly not in the arena. */
void lsm_mem_bloom_init(lsm_arena *a);
int  lsm_mem_may_contain(const lsm_arena *a, const void *key, size_t klen);
/* The newest version of key at or below seq, whatever its type:
 * LSM_OK with its trailer and value, or LSM_NOTFOUND. */
int  lsm_mem_get_version(const lsm_arena *a, const void *key, size_t klen,
                         uint64_t seq, uint64_t *trailer,
                         const uint8_t **val, size_t *vlen);

/* Memtable slots (memtable.c).  claim (write_mu held): a FREE slot, or a
 * RETIRED one no process pins, reset and returned as RESETTING; -1 when
 * none. */
int  lsm_memslot_claim(lsm_region *r);

/* The readable memtables, pinned, newest first. */
typedef struct lsm_memview {
	int n;
	uint32_t slot[LSM_MAX_MEMTABLES];
} lsm_memview;
void lsm_memview_acquire(lsm_db *db, lsm_memview *v);
void lsm_memview_release(lsm_db *db, lsm_memview *v);

/* ---- range tombstones (rangedel.c) */
typedef struct lsm_rdel {
	uint8_t *start, *end;
	size_t slen, elen;
	uint64_t seq;
} lsm_rdel;

typedef struct lsm_rdel_frag {
	const uint8_t *start, *end;   /* into the set's raw tombstones */
	size_t slen, elen;
	uint64_t *seqs;               /* every covering sequence, descending */
	size_t nseq;
} lsm_rdel_frag;

typedef struct lsm_rdel_set {
	uint64_t read_seq;            /* tombstones above it are not collected */
	lsm_rdel *raw;
	size_t n, cap;
	lsm_rdel_frag *frag;          /* after lsm_rdel_finish */
	size_t nfrag;
} lsm_rdel_set;

void lsm_rdel_init(lsm_rdel_set *s, uint64_t read_seq);
/* Copies a tombstone in (ignored when above read_seq or empty). */
int  lsm_rdel_add(lsm_rdel_set *s, const void *start, size_t slen,
                  const void *end, size_t elen, uint64_t seq);
/* Largest sequence of a collected tombstone covering key, 0 if none,
 * without fragmenting (a linear pass: for point reads). */
uint64_t lsm_rdel_raw_max(const lsm_rdel_set *s, const void *key, size_t klen);
/* Fragments what was collected; then the two lookups below work. */
int  lsm_rdel_finish(lsm_rdel_set *s);
uint64_t lsm_rdel_covering(const lsm_rdel_set *s, const void *key, size_t klen);
/* The newest covering tombstone with sequence < below, 0 if none. */
uint64_t lsm_rdel_covering_below(const lsm_rdel_set *s, const void *key, size_t klen,
                                 uint64_t below);
void lsm_rdel_free(lsm_rdel_set *s);
/* Adds a memtable's range tombstones (its side list) to s. */
int  lsm_mem_collect_rdels(const lsm_arena *a, lsm_rdel_set *s);

/* What a read sees: pinned memtables, newest first, and a version
 * (read.c).  Acquired memtables first: see "Memtable slots" above. */
struct lsm_version;
typedef struct lsm_readview {
	lsm_memview mem;
	struct lsm_version *version;
} lsm_readview;
void lsm_readview_acquire(lsm_db *db, lsm_readview *rv);
/* For a read without a registered snapshot: acquires rv and the sequence
 * to read at, in the order that keeps them consistent (read.c). */
void lsm_readview_acquire_latest(lsm_db *db, lsm_readview *rv, uint64_t *seq);
void lsm_readview_release(lsm_db *db, lsm_readview *rv);
/* One internal iterator over all of rv's point entries. */
/* fill_cache 0: blocks read are not added to the block cache (scans). */
int  lsm_readview_iter(lsm_db *db, const lsm_readview *rv, int fill_cache, lsm_iiter **out);
/* Collects rv's range tombstones visible at seq into out (initialised
 * here; free it even on error); with key non-NULL only sources whose range
 * holds key are read. */
int  lsm_readview_rdels(lsm_db *db, const lsm_readview *rv, uint64_t seq,
                        const void *key, size_t klen, lsm_rdel_set *out);
lsm_iiter *lsm_level_iter_create(lsm_db *db, const struct lsm_version *v, int level,
                                 int fill_cache);
/* The newest version of key at seq in rv: LSM_OK with a malloc'd copy,
 * LSM_NOTFOUND when absent or deleted, or an error. */
int  lsm_readview_get(lsm_db *db, const lsm_readview *rv, const void *key,
                      size_t klen, uint64_t seq, void **val, size_t *vlen);

/* The sequence a read runs at: the snapshot's, or the latest visible. */
uint64_t lsm_db_read_sequence(lsm_db *db, const lsm_snapshot *snap);

/* ---- internal iterators: lsm_iiter is in ikey.h */
lsm_iiter *lsm_mem_iter_create(const lsm_arena *a);
/* The k-way merge of children (merge.c).  Takes ownership of the children,
 * also when it fails (NULL: out of memory, children destroyed); with n == 1
 * returns the child itself. */
lsm_iiter *lsm_merge_iter_create(lsm_iiter **children, int n);

#endif
