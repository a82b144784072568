/*
 * lsm.h — the public API of the lsm engine.
 *
 * This header is the whole contract between the engine and its users (the
 * PostgreSQL glue in src/, the tools, the tests).  Everything else in engine/
 * is private.
 *
 * Conventions
 *   - Every fallible call returns an int code: LSM_OK (0) or one of the
 *     LSM_* codes below.  lsm_strerror() names a code.  The engine never
 *     aborts, exits or prints on bad input or corrupt files.
 *   - Keys and values are byte strings compared with memcmp() order.
 *   - Buffers returned by lsm_get() are malloc'd and released with lsm_free().
 *   - A db handle may be used from many threads at once; a batch or an
 *     iterator belongs to one thread at a time.
 */
#ifndef LSM_H
#define LSM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ codes */
#define LSM_OK          0
#define LSM_NOTFOUND    1   /* key absent (not an error for lsm_get callers) */
#define LSM_CORRUPTION  2   /* a checksum or a structure on disk is wrong */
#define LSM_IOERR       3   /* the OS failed a read/write/fsync (EIO, ...) */
#define LSM_NOSPACE     4   /* the disk is full (ENOSPC, EDQUOT) */
#define LSM_BUSY        5   /* try again: a bounded wait expired */
#define LSM_INVALID     6   /* bad argument or option */
#define LSM_NOMEM       7   /* malloc or region allocation failed */
#define LSM_FULL        8   /* every memtable is full: nothing was written */
#define LSM_LOCKED      9   /* the directory is in use by another open */
#define LSM_EXISTS     10   /* the database exists and error_if_exists is set */
#define LSM_TOOBIG     11   /* a key, value or batch exceeds a hard limit */
#define LSM_CLOSED     12   /* the handle is no longer usable */

const char *lsm_strerror(int code);

/*
 * Where the calling thread's last LSM_CORRUPTION was found: the file
 * (a name inside the database directory: "000026.sst", "MANIFEST-000001",
 * "0000000000000023.wal"), the byte offset in it of the damaged block or
 * record (-1 when it is the file as a whole), and what was wrong.
 * lsm_error_where returns 1 and fills *out when the engine noted one since
 * the thread's last lsm_error_clear, else 0.  Per thread, so a caller reads
 * it right after the call that failed.
 */
typedef struct lsm_error_info {
	char    file[64];
	int64_t offset;
	char    reason[128];
} lsm_error_info;

int  lsm_error_where(lsm_error_info *out);
void lsm_error_clear(void);

/* Hard limits, so that lengths always fit their on-disk fields. */
#define LSM_MAX_KEY_SIZE    (64u * 1024u)          /* 64 KiB */
#define LSM_MAX_VALUE_SIZE  (1024u * 1024u * 1024u) /* 1 GiB */

/* ------------------------------------------------------------------- env */
/*
 * The engine reaches the OS only through an lsm_env.  lsm_env_posix() is the
 * default; tests wrap it in a fault-injecting env.  Every function returns an
 * LSM_* code.  Paths are plain C strings.
 */
typedef struct lsm_env  lsm_env;
typedef struct lsm_file lsm_file;

#define LSM_OPEN_READ    0x01
#define LSM_OPEN_WRITE   0x02   /* read-write */
#define LSM_OPEN_CREATE  0x04   /* create if missing */
#define LSM_OPEN_TRUNC   0x08   /* truncate to 0 on open */

struct lsm_env {
	void *ctx;
	int  (*open)(lsm_env *env, const char *path, int flags, lsm_file **out);
	/* Reads up to n bytes at off; *got < n only at end of file. */
	int  (*read)(lsm_file *f, uint64_t off, void *buf, size_t n, size_t *got);
	/* Writes all n bytes at off (or returns an error). */
	int  (*write)(lsm_file *f, uint64_t off, const void *buf, size_t n);
	int  (*sync)(lsm_file *f);                  /* fdatasync */
	int  (*truncate)(lsm_file *f, uint64_t size);
	int  (*size)(lsm_file *f, uint64_t *size);
	int  (*close)(lsm_file *f);
	int  (*remove)(lsm_env *env, const char *path);
	int  (*rename)(lsm_env *env, const char *from, const char *to);
	int  (*mkdir)(lsm_env *env, const char *path);   /* LSM_OK if exists */
	int  (*sync_dir)(lsm_env *env, const char *path);
	/* Calls fn(arg, name) for every entry of dir except "." and "..";
	 * stops early and returns fn's code when fn returns non-zero. */
	int  (*list_dir)(lsm_env *env, const char *dir,
	                 int (*fn)(void *arg, const char *name), void *arg);
	/* An exclusive advisory lock on path (created if missing). */
	int  (*lock)(lsm_env *env, const char *path, lsm_file **out);
	int  (*unlock)(lsm_env *env, lsm_file *lock);
	uint64_t (*now_micros)(lsm_env *env);
	void (*sleep_micros)(lsm_env *env, uint64_t micros);
};

/* The process-wide default env (POSIX files, pread/pwrite, fdatasync). */
lsm_env *lsm_env_posix(void);

/* --------------------------------------------------------------- options */
/*
 * A compaction filter sees each put that no snapshot still needs in its
 * old form (its sequence is at or below the oldest reader's), the newest
 * version of its key, as compaction rewrites it, and decides:
 *   LSM_FILTER_KEEP    as is;
 *   LSM_FILTER_REMOVE  the key reads as deleted from then on (the entry
 *                      becomes a tombstone, so no older version shows);
 *   LSM_FILTER_CHANGE  *new_val (malloc'd; the engine frees it) of
 *                      *new_vlen bytes replaces the value.
 * It runs in the background thread, concurrently with everything else, and
 * must not call into the database.
 */
#define LSM_FILTER_KEEP   0
#define LSM_FILTER_REMOVE 1
#define LSM_FILTER_CHANGE 2
typedef int (*lsm_compaction_filter_fn)(void *arg, int level,
                                        const void *key, size_t klen,
                                        const void *val, size_t vlen, uint64_t seq,
                                        void **new_val, size_t *new_vlen);

typedef struct lsm_options {
	lsm_env *env;                  /* NULL: lsm_env_posix() */
	int      create_if_missing;    /* default 1 */
	int      error_if_exists;      /* default 0 */
	size_t   memtable_size;        /* bytes of arena per memtable; default 64 MiB */
	size_t   wal_buffer_size;      /* bytes buffered before a write(); default 1 MiB */
	uint64_t wal_segment_size;     /* a new WAL segment after this; default 64 MiB */
	/* Sync policy for writes whose lsm_write_options.sync is 0:
	 * sync when this many writes, or this many bytes, went unsynced
	 * (0 = never: only explicit sync writes and lsm_sync_wal() sync). */
	uint32_t wal_sync_every_writes;
	uint64_t wal_sync_every_bytes;
	/* Group commit: before an fsync, the syncing writer waits up to this
	 * long for other writers already inside a synced write to append their
	 * records, so that one fsync covers them all (default 500; 0 = never). */
	uint32_t wal_group_wait_micros;
	/* Recovery: 0 = stop with LSM_CORRUPTION on damage before the tail
	 * of the log; 1 = skip damaged records and keep every good one. */
	int      wal_salvage;
	/* Memtables held in memory: one takes writes, the others wait for or
	 * undergo their flush.  When all are full, writes stall until a flush
	 * ends (default 3, 2..16). */
	int      max_memtables;
	/* Start a flush/compaction thread (private mode; default 1).  With 0
	 * the caller runs background work itself through lsm_flush and
	 * lsm_compact_range. */
	int      background_thread;
	/* SSTables */
	size_t   block_size;           /* data block target (default 4096) */
	int      bloom_bits_per_key;   /* default 10; 0: no filters */
	int      compression;          /* 1: LZ4 per block when it saves 1/8 (default), 0: none */
	size_t   block_cache_size;     /* bytes of uncompressed blocks (default 32 MiB; 0: none) */
	/* Open tables, per process: each holds its file's index, filter and
	 * range deletions in this process's memory.  Beyond either bound the
	 * least recently used table no call is using is closed (and opened
	 * again when next needed).  Tables in use are never closed, so a
	 * process exceeds the bounds only by the tables its running calls
	 * hold at once.  Defaults 64 MiB and 1000; 0 bytes keeps no unused
	 * table open. */
	size_t   table_cache_size;
	int      max_open_files;
	/* leveled compaction */
	int      l0_compaction_trigger;  /* L0 files that start a compaction (4) */
	int      l0_slowdown_trigger;    /* L0 files that slow writes (20) */
	int      l0_stop_trigger;        /* L0 files that stop writes (36) */
	uint64_t max_bytes_for_level_base; /* L1 target size (default 256 MiB) */
	int      level_size_multiplier;  /* each level 10x the one above */
	uint64_t target_file_size;       /* compaction outputs split here (64 MiB) */
	lsm_compaction_filter_fn compaction_filter;   /* NULL: none */
	void    *compaction_filter_arg;
	/* Recovery: sees the value of every put replayed from the WAL, with
	 * the number of the WAL segment that holds it, and may rewrite its
	 * bytes in place (same length) before it is applied: how a host undoes
	 * what its own recovery forgot.  The rewrite lives in memory only: a
	 * segment is replayed again at every open until a flush retires it.
	 * NULL: none. */
	void   (*replay_filter)(void *arg, uint64_t segment, const void *key,
	                        size_t klen, void *val, size_t vlen);
	void    *replay_filter_arg;
	/* Recovery: called once per recovering open, before the first record
	 * is replayed.  Segments first_segment .. new_segment - 1 are about to
	 * be replayed (none when equal); every write after the open goes to
	 * new_segment or later, so every open starts a segment of its own.
	 * How a host ties what it learnt at this start to the segments
	 * written before it.  Non-zero fails the open with LSM_IOERR.
	 * NULL: none. */
	int    (*recovery_hook)(void *arg, uint64_t first_segment,
	                        uint64_t new_segment);
	void    *recovery_hook_arg;
	/* Called before a memtable is written to a table, once all its
	 * writes are in it (how a host makes its own log durable first);
	 * non-zero fails the flush with LSM_IOERR before anything is
	 * written.  Unlike other background failures this one is not
	 * sticky: the memtable stays, and the next flush calls the hook
	 * again.  NULL: none. */
	int    (*flush_hook)(void *arg);
	void    *flush_hook_arg;
	/* Shared mode: processes that may attach at once (default 64,
	 * 1..4096; private mode uses one). */
	int      max_processes;
	/* Called at least every 10 ms while a call waits for something that
	 * can last (a write stall, another process's WAL fsync, a recovery by
	 * another process): non-zero gives up the wait and the call returns
	 * LSM_BUSY.  No engine lock is held while it runs.  NULL: wait.
	 * A synced write cut short while waiting for another writer's fsync
	 * is applied and logged (durable with the next sync) but returns
	 * LSM_BUSY; a write cut short in a stall was not written at all. */
	int    (*wait_hook)(void *arg);
	void    *wait_hook_arg;
} lsm_options;

void lsm_options_init(lsm_options *opts);

typedef struct lsm_write_options {
	int sync;                      /* 1: durable (fsync'd) before return */
	/* 1: return once the write is in the memtable, without waiting for
	 * the writes ordered before it (other handles' batches still being
	 * inserted) to be in too.  Until they are, only this handle's own
	 * reads see it (they wait for it); other handles see it once they
	 * are, which lsm_wait_visible() waits for.  Order, atomicity and
	 * durability are unchanged.  For writers that do not make others
	 * read right away what they wrote (a bulk load): a writer that waits
	 * for the slowest batch ahead of it idles a core for it. */
	int defer_visibility;
} lsm_write_options;

typedef struct lsm_snapshot lsm_snapshot;

typedef struct lsm_read_options {
	const lsm_snapshot *snapshot;  /* NULL: the latest committed state */
	const void *lower_bound;       /* iterators: first key >= lower (NULL: none) */
	size_t      lower_bound_len;
	const void *upper_bound;       /* iterators: keys < upper (NULL: none) */
	size_t      upper_bound_len;
	int         no_fill_cache;     /* iterators: blocks read do not enter the block
	                                * cache (a large scan would only evict it) */
} lsm_read_options;

/* --------------------------------------------------------------- the db */
typedef struct lsm_db lsm_db;

int  lsm_open(const lsm_options *opts, const char *dir, lsm_db **out);
int  lsm_close(lsm_db *db);            /* syncs the WAL; NULL is a no-op */

int  lsm_put(lsm_db *db, const lsm_write_options *wo,
             const void *key, size_t klen, const void *val, size_t vlen);
int  lsm_delete(lsm_db *db, const lsm_write_options *wo,
                const void *key, size_t klen);
/* Deletes every key in [start, end) at this point in time (one tombstone,
 * whatever the number of keys).  LSM_INVALID unless start < end. */
int  lsm_delete_range(lsm_db *db, const lsm_write_options *wo,
                      const void *start, size_t slen, const void *end, size_t elen);

/* Atomic write batches: all of a batch is visible, durable and recovered, or
 * none of it. */
typedef struct lsm_batch lsm_batch;
int  lsm_batch_create(lsm_batch **out);
int  lsm_batch_put(lsm_batch *b, const void *key, size_t klen,
                   const void *val, size_t vlen);
int  lsm_batch_delete(lsm_batch *b, const void *key, size_t klen);
/* Deletes every key in [start, end) that exists when the batch is written
 * (keys written later are not affected).  LSM_INVALID unless start < end. */
int  lsm_batch_delete_range(lsm_batch *b, const void *start, size_t slen,
                            const void *end, size_t elen);
void lsm_batch_clear(lsm_batch *b);
uint32_t lsm_batch_count(const lsm_batch *b);
void lsm_batch_destroy(lsm_batch *b);
int  lsm_write(lsm_db *db, const lsm_write_options *wo, const lsm_batch *b);

/* On LSM_OK *val is a malloc'd copy (free with lsm_free); LSM_NOTFOUND when
 * the key is absent or deleted at the read's snapshot. */
int  lsm_get(lsm_db *db, const lsm_read_options *ro,
             const void *key, size_t klen, void **val, size_t *vlen);
void lsm_free(void *p);
/* Waits until every write this handle made with defer_visibility is
 * visible to every handle (lsm_close does it too). */
void lsm_wait_visible(lsm_db *db);

/* Writes every memtable holding data to L0 SSTables and waits for it
 * (then the WAL holds nothing that is not also in a table). */
int  lsm_flush(lsm_db *db);

/* Compacts every level over the user keys [begin, end] (NULL: unbounded)
 * down to the bottommost level holding data there: overwritten versions,
 * tombstones and range-deleted keys no snapshot needs are dropped. */
int  lsm_compact_range(lsm_db *db, const void *begin, size_t blen,
                       const void *end, size_t elen);
/* The same over the SSTables only: the memtables are not flushed, and the
 * range tombstones in them (published when the call starts) drop what
 * they hide from the tables.  How to reclaim a deleted range's space at
 * once without cutting every other key's memtable short.  The flush hook
 * runs and the WAL is synced first, when a memtable holds a tombstone. */
int  lsm_compact_range_tables(lsm_db *db, const void *begin, size_t blen,
                              const void *end, size_t elen);

/* Bytes the SSTables spend on user keys [start, end) (estimated from
 * their block indexes), and with include_memtables the memtables' bytes
 * there too (estimated from their skip lists' upper levels): about what
 * a scan of the range reads. */
int  lsm_approximate_size(lsm_db *db, const void *start, size_t slen,
                          const void *end, size_t elen, int include_memtables,
                          uint64_t *bytes);

/* Makes every write so far durable (manual sync policy). */
int  lsm_sync_wal(lsm_db *db);
/* Hands every write so far to the OS without fsync: it then survives a
 * crash of the process (and, in shared mode, the loss of the region), not
 * of the machine. */
int  lsm_write_wal(lsm_db *db);

/* ---------------------------------------------------------- shared mode */
/*
 * Many processes, one database: the caller provides the region (shared
 * memory, which may be mapped at a different address in every process),
 * formats it once with lsm_shared_init (no I/O), and every process then
 * calls lsm_open_shared on it.  The first one recovers the database from
 * disk into the region (the others wait for it, through wait_hook); later
 * ones attach, each with its own file descriptors and table cache.
 * lsm_close detaches.  In shared mode the engine starts no thread and
 * takes no directory lock (the caller guarantees one region per
 * directory): the caller's processes run the background work with
 * lsm_background_step.  If a process dies while attached, the region must
 * be formatted again and every process must open again (recovery from
 * disk), as PostgreSQL does after a backend crash.
 *
 * The region's layout (memtable_size, max_memtables, wal_buffer_size,
 * block_cache_size, max_processes) comes from the options given to
 * lsm_shared_size/lsm_shared_init; the other options apply per process
 * and should be the same in all of them.
 */
size_t lsm_shared_size(const lsm_options *opts);
int  lsm_shared_init(void *mem, size_t size, const lsm_options *opts);
int  lsm_open_shared(const lsm_options *opts, const char *dir, void *mem, lsm_db **out);

/* Background work, one bounded step per call (shared mode, or private
 * mode with background_thread = 0): flush the oldest full memtable, or
 * run one compaction, or write out and fsync the WAL buffer, as `work`
 * allows, then delete files no process uses any more.  *pending (may be
 * NULL) receives the LSM_WORK_* bits of work still waiting.  A failed
 * flush or compaction is sticky: writes fail with it from then on. */
#define LSM_WORK_FLUSH   0x1
#define LSM_WORK_COMPACT 0x2
#define LSM_WORK_SYNC    0x4
#define LSM_WORK_ALL     0x7
int  lsm_background_step(lsm_db *db, unsigned work, unsigned *pending);
/* Sleeps until a memtable fills (flush work) or timeout_ms pass. */
void lsm_background_wait(lsm_db *db, unsigned timeout_ms);

/* Snapshots pin a sequence number: reads through one see the db as it was. */
int  lsm_snapshot_create(lsm_db *db, const lsm_snapshot **out);
void lsm_snapshot_release(lsm_db *db, const lsm_snapshot *snap);
uint64_t lsm_snapshot_sequence(const lsm_snapshot *snap);

/* Iterators walk keys in ascending order at one snapshot (the read options',
 * or the latest at creation), honouring the bounds.  The pointers key and
 * value return stay valid until the iterator moves, or until the same
 * thread writes to the database (a write may make the iterator let go of
 * memory it pinned; it stays on the same entry).  An iterator is used by
 * one thread at a time, and is destroyed before its database is closed. */
typedef struct lsm_iter lsm_iter;
int  lsm_iter_create(lsm_db *db, const lsm_read_options *ro, lsm_iter **out);
void lsm_iter_seek_to_first(lsm_iter *it);
void lsm_iter_seek(lsm_iter *it, const void *key, size_t klen); /* first >= key */
void lsm_iter_next(lsm_iter *it);
int  lsm_iter_valid(const lsm_iter *it);
const void *lsm_iter_key(const lsm_iter *it, size_t *klen);
const void *lsm_iter_value(const lsm_iter *it, size_t *vlen);
int  lsm_iter_status(const lsm_iter *it);   /* LSM_OK unless an error stopped it */
void lsm_iter_destroy(lsm_iter *it);

/* --------------------------------------------------------------- stats */
typedef struct lsm_stats {
	uint64_t last_sequence;        /* newest visible sequence */
	uint64_t memtable_bytes;       /* arena bytes in use, all memtables */
	uint64_t memtable_capacity;    /* arena bytes, all memtables */
	uint64_t memtable_entries;
	uint64_t immutable_memtables;  /* full, awaiting or under flush */
	uint64_t flushes;              /* memtables written to L0 */
	uint64_t write_stalls;         /* writes that waited for a free memtable */
	uint64_t write_stall_micros;   /* time they waited */
	uint64_t write_slowdowns;      /* writes delayed 1 ms: many L0 files */
	uint64_t flush_bytes;          /* bytes of L0 tables written by flushes */
	uint64_t compactions;
	uint64_t compact_read_bytes;   /* table bytes compactions read */
	uint64_t compact_write_bytes;  /* table bytes compactions wrote */
	/* (flush_bytes + compact_write_bytes) / wal_bytes: bytes written to
	 * tables per byte logged */
	double   write_amplification;
	uint64_t level_files[7];       /* per level: files and bytes */
	uint64_t level_bytes[7];
	uint64_t block_cache_hits;
	uint64_t block_cache_misses;
	uint64_t block_cache_usage;    /* bytes held */
	uint64_t block_cache_capacity;
	uint64_t wal_bytes;            /* bytes appended to the WAL since open */
	uint64_t wal_syncs;            /* fsyncs of the WAL */
	uint64_t wal_synced_writes;    /* writes made durable by those fsyncs */
	uint64_t wal_segments;         /* live WAL segment files */
	uint64_t writes;               /* write calls (batches) */
	uint64_t recovered_records;    /* WAL records replayed at open */
	uint64_t recovered_bytes_dropped; /* torn tail / salvaged bytes cut */
	/* this process's open tables (options.table_cache_size) */
	uint64_t open_tables;
	uint64_t table_cache_bytes;    /* their index, filter, ... bytes */
	uint64_t table_opens;          /* tables opened since lsm_open */
	uint64_t table_cache_evictions; /* closed to stay within the bounds */
} lsm_stats;

int  lsm_get_stats(lsm_db *db, lsm_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* LSM_H */
