/*
 * table.h — SSTables: the interface the rest of the engine uses (flush,
 * compaction, the read path, lsmctl).  The on-disk format is described in
 * format.h, the layer's private header.
 *
 * Writing.  lsm_table_builder_open creates "<path>.tmp"; entries are added
 * in strictly increasing internal-key order (user key ascending, trailer
 * descending), range deletions in any order; lsm_table_builder_finish
 * writes the meta blocks, index and footer, fsyncs, closes, renames the
 * temp file to <path> and fsyncs the directory.  Either <path> then exists
 * complete and durable and finish returned LSM_OK, or finish returned the
 * error and neither <path> nor the temp file is left behind (the removal is
 * best effort: a failing env may refuse it too).  Finish and abandon both
 * free the builder.  An error from add is sticky: every later call returns
 * it, and only finish (which then cleans up) or abandon remain useful.
 *
 * Reading.  An lsm_table is one open file with its index, filter, range
 * deletions and properties held in memory; data blocks are read on demand,
 * through the block cache when one is given.  Everything in it is
 * read-only after open, so any number of threads may call get and create
 * iterators on one table at once (the counters are atomic).  Every block is
 * CRC-checked when read from the file and every structure is bounds-checked
 * when parsed: damage gives LSM_CORRUPTION, never a crash or a wrong
 * answer.
 */
#ifndef LSM_TABLE_H
#define LSM_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "lsm.h"
#include "cache.h"
#include "ikey.h"

/* ------------------------------------------------------------ options */

#define LSM_TABLE_COMPRESSION_NONE 0
#define LSM_TABLE_COMPRESSION_LZ4  1

typedef struct lsm_table_options {
	size_t block_size;        /* data block target, bytes (default 4096;
	                           * 64 .. 64 MiB) */
	int    restart_interval;  /* entries between restart points (16; 1..1024) */
	int    bloom_bits_per_key;/* 10; 0 = no filter; at most 64 */
	int    compression;       /* LSM_TABLE_COMPRESSION_LZ4 (default) or NONE */
} lsm_table_options;

void lsm_table_options_init(lsm_table_options *o);

/* ------------------------------------------------------------ properties */

/*
 * What a table holds, written in its properties block and returned by
 * finish.  smallest/largest are internal keys (user key + trailer) bounding
 * every point entry and every range deletion of the table: a range
 * deletion [s, e)@q contributes (s, pack(q, RANGE_DELETE)) as a lower bound
 * and (e, pack(LSM_MAX_SEQUENCE, RANGE_DELETE)) as an upper bound, a
 * sentinel that sorts before every real version of e (e itself is not
 * deleted).  has_bounds is 0 only for a table with no entry at all.
 */
typedef struct lsm_table_props {
	uint32_t format_version;
	uint64_t entries;          /* point entries: puts + deletes */
	uint64_t deletions;        /* point tombstones among them */
	uint64_t range_deletions;
	uint64_t raw_key_bytes;    /* user key bytes of the point entries */
	uint64_t raw_value_bytes;  /* value bytes of the point entries */
	uint64_t data_blocks;
	uint64_t data_bytes;       /* on-disk bytes of data blocks, trailers in */
	uint64_t filter_bytes;     /* bloom filter size (0: no filter) */
	uint64_t smallest_seq;     /* over points and range deletions; */
	uint64_t largest_seq;      /* both 0 when has_bounds is 0 */
	int      has_bounds;
	uint8_t *smallest_key;     /* malloc'd user key bytes */
	size_t   smallest_klen;
	uint64_t smallest_trailer;
	uint8_t *largest_key;
	size_t   largest_klen;
	uint64_t largest_trailer;
} lsm_table_props;

/* Frees the key copies (safe on a zeroed struct; leaves it zeroed). */
void lsm_table_props_free(lsm_table_props *p);

/* ------------------------------------------------------------ builder */

typedef struct lsm_table_builder lsm_table_builder;

/* Creates (truncates) "<path>.tmp".  opts NULL: defaults.  LSM_INVALID on
 * bad options; env errors as returned by the env. */
int lsm_table_builder_open(lsm_env *env, const char *path,
                           const lsm_table_options *opts,
                           lsm_table_builder **out);

/* Adds a point entry; type(trailer) must be LSM_TYPE_PUT or LSM_TYPE_DELETE.
 * LSM_INVALID when (key, trailer) is not strictly after the previous entry
 * or the type is wrong, LSM_TOOBIG beyond LSM_MAX_KEY_SIZE /
 * LSM_MAX_VALUE_SIZE.  May write a full data block: env errors. */
int lsm_table_builder_add(lsm_table_builder *b, const void *key, size_t klen,
                          uint64_t trailer, const void *val, size_t vlen);

/* Adds the range deletion [start, end)@seq (any order; kept in memory until
 * finish, where two with the same start and seq merge into the one with the
 * larger end, which deletes exactly the same).  LSM_INVALID unless start <
 * end and seq <= LSM_MAX_SEQUENCE. */
int lsm_table_builder_add_range_delete(lsm_table_builder *b,
                                       const void *start, size_t slen,
                                       const void *end, size_t elen,
                                       uint64_t seq);

/* Estimated final file size so far (bytes written, buffered, and in the
 * open data block), for compaction's output splitting. */
uint64_t lsm_table_builder_file_size(const lsm_table_builder *b);

/* Point entries + range deletions added so far. */
uint64_t lsm_table_builder_entries(const lsm_table_builder *b);

/* Completes the file (see the top of this header) and frees b.  On LSM_OK
 * and props non-NULL, *props describes the table (free it with
 * lsm_table_props_free); on error *props is zeroed. */
int lsm_table_builder_finish(lsm_table_builder *b, lsm_table_props *props);

/* Closes and removes the temp file and frees b.  NULL is a no-op. */
void lsm_table_builder_abandon(lsm_table_builder *b);

/* ------------------------------------------------------------ reader */

typedef struct lsm_table lsm_table;

typedef struct lsm_table_stats {
	uint64_t block_reads;      /* data blocks read from the file */
	uint64_t block_read_bytes; /* their on-disk bytes */
	uint64_t cache_hits;       /* data blocks found in the block cache */
	uint64_t bloom_checks;     /* gets that consulted the filter */
	uint64_t bloom_negatives;  /* ... and were answered by it (no read) */
} lsm_table_stats;

/*
 * Opens path and loads footer, index, metaindex, filter, range deletions
 * and properties, checking each.  file_number keys the table's blocks in
 * cache (NULL: no cache).  opts is unused for reading today and may be
 * NULL.  LSM_CORRUPTION for any damage or truncation, env errors (e.g.
 * LSM_NOTFOUND for a missing file) as returned.
 */
int lsm_table_open(lsm_env *env, const char *path, uint64_t file_number,
                   lsm_cache *cache, const lsm_table_options *opts,
                   lsm_table **out);

/* Closes the file and frees everything.  Iterators must be gone.  NULL ok. */
void lsm_table_close(lsm_table *t);

/*
 * Point lookup: the newest entry of user key `key` whose sequence is <=
 * read_seq.  When there is one, calls fn(arg, trailer, value, vlen) once
 * (the value is valid only during the call; a DELETE has an empty value)
 * and returns fn's return code (normally LSM_OK); LSM_NOTFOUND when the
 * table holds no such entry; LSM_CORRUPTION / env errors otherwise.
 * Range deletions are not applied here: see lsm_table_range_dels.
 */
typedef int (*lsm_table_get_fn)(void *arg, uint64_t trailer,
                                const uint8_t *val, size_t vlen);
int lsm_table_get(lsm_table *t, const void *key, size_t klen,
                  uint64_t read_seq, lsm_table_get_fn fn, void *arg);

/* Same lookup with out parameters: *val is a malloc'd copy (free()) of the
 * value (NULL with *vlen 0 for an empty value); *trailer tells PUT from
 * DELETE. */
int lsm_table_get_copy(lsm_table *t, const void *key, size_t klen,
                       uint64_t read_seq, uint64_t *trailer,
                       void **val, size_t *vlen);

/*
 * An iterator over the point entries (never the range deletions), in
 * internal-key order.  The data block under the cursor stays pinned in the
 * cache (or privately owned) until the cursor leaves it.  fill_cache 0
 * reads blocks without inserting them (compaction scans), though blocks
 * already cached are still used.  The table must outlive the iterator.
 */
int lsm_table_iter_create(lsm_table *t, int fill_cache, lsm_iiter **out);
/* The same, and unpin(arg) runs right after the iterator is destroyed:
 * how the owner of t learns the iterator no longer needs it. */
int lsm_table_iter_create_pinned(lsm_table *t, int fill_cache,
                                 void (*unpin)(void *arg), void *arg,
                                 lsm_iiter **out);

/*
 * The range deletions, sorted by (start ascending, seq descending), start <
 * end in each; pointers stay valid until lsm_table_close.  NULL with *n 0
 * when there are none.
 */
typedef struct lsm_table_rdel {
	const uint8_t *start;
	size_t slen;
	const uint8_t *end;
	size_t elen;
	uint64_t seq;
} lsm_table_rdel;

const lsm_table_rdel *lsm_table_range_dels(const lsm_table *t, size_t *n);

const lsm_table_props *lsm_table_properties(const lsm_table *t);
uint64_t lsm_table_file_size(const lsm_table *t);
uint64_t lsm_table_file_number(const lsm_table *t);

/* File offset where (key, trailer) would be: the start of the data block
 * that holds it, or the end of the data area when past the last entry.
 * For size estimates of key ranges; never fails. */
uint64_t lsm_table_approximate_offset(lsm_table *t, const void *key,
                                      size_t klen, uint64_t trailer);

void lsm_table_get_stats(const lsm_table *t, lsm_table_stats *st);

/* Bytes of memory an open table holds (index, filter, range deletions,
 * properties): what a cache of open tables budgets. */
size_t lsm_table_memory(const lsm_table *t);

/* ------------------------------------------------------------ verify */

/*
 * Dump callback: each point entry in order, then each range deletion (type
 * LSM_TYPE_RANGE_DELETE in trailer, value = end key).  A non-zero return
 * stops the walk and becomes verify's result.
 */
typedef int (*lsm_table_dump_fn)(void *arg, const uint8_t *key, size_t klen,
                                 uint64_t trailer, const uint8_t *val,
                                 size_t vlen);

typedef struct lsm_table_verify_info {
	uint64_t file_size;
	uint64_t data_blocks;      /* data blocks checked */
	uint64_t entries;          /* point entries seen */
	uint64_t range_deletions;
	/* on LSM_CORRUPTION (or a read error): the file offset of the block,
	 * handle or footer found bad, and what was wrong */
	uint64_t bad_offset;
	char     message[160];
} lsm_table_verify_info;

/*
 * Walks the whole file without the cache: footer, every block's CRC and
 * structure (restart points, entry bounds), keys strictly increasing within
 * and across data blocks, index separators consistent with the blocks, data
 * blocks contiguous, and the counts and bounds of the properties.  fn may
 * be NULL.  info may be NULL.  LSM_OK when clean.
 */
int lsm_table_verify(lsm_env *env, const char *path, lsm_table_dump_fn fn,
                     void *arg, lsm_table_verify_info *info);

#endif
