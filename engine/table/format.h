/*
 * format.h — the SSTable file format, and the table layer's private
 * interfaces (blocks, handles, the reader's shared internals).
 *
 * ========================================================== file layout
 *
 *   [data block 0][trailer] ... [data block n-1][trailer]    offset 0 ..
 *   [filter block][trailer]          (absent when bloom_bits_per_key == 0)
 *   [range-deletion block][trailer]  (absent when there are none)
 *   [properties block][trailer]
 *   [metaindex block][trailer]
 *   [index block][trailer]
 *   [footer]                         (the last LSM_TABLE_FOOTER_SIZE bytes)
 *
 * Data blocks are contiguous from offset 0; the meta blocks follow them; the
 * metaindex ends where the index starts and the index ends where the footer
 * starts.  The reader insists on that layout, so a truncated or extended
 * file can never present a plausible footer/index pair.
 *
 * Integers: fixed32/fixed64 are little-endian; varints are LEB128
 * (varint32 at most 5 bytes, varint64 at most 10).
 *
 * Block handle: varint64 offset, varint64 size.  size counts the stored
 * block contents only; the 5-byte trailer follows them.
 *
 * ========================================================== blocks
 *
 * Every block (data, filter, range-deletion, properties, metaindex, index)
 * is stored as
 *
 *   stored contents | type (1 byte) | masked crc32 (fixed32)
 *
 * type 0: the stored contents are the block.  type 1 (LZ4): the stored
 * contents are varint32 uncompressed size, then one LZ4 block (raw block
 * format, no frame) that decompresses to exactly that many bytes.  The crc
 * is lsm_crc32_mask(crc32(stored contents || type byte)).  A block is kept
 * LZ4-compressed only when that saves at least 1/8 of its size.  The
 * reader rejects an uncompressed size above LSM_TABLE_MAX_BLOCK or above
 * 255 times the compressed size (LZ4 cannot expand more), so a damaged
 * size never makes it allocate much more than the file justifies.
 *
 * Block contents (all but the filter, whose contents are one bloom filter
 * as util/bloom.h builds it over lsm_xxh64(user key, seed 0) of every
 * distinct user key of the data blocks):
 *
 *   entry*  | restart offset (fixed32) * n | n (fixed32)
 *   entry = varint32 shared | varint32 non_shared | varint32 value_len
 *           | key bytes [shared, shared + non_shared) | value
 *
 * An entry's key is the previous entry's key's first `shared` bytes plus its
 * own delta.  Every restart_interval-th entry (the first one included) is a
 * restart point: shared == 0 and its offset is in the restart array.  n == 0
 * only for an empty block (no entries); otherwise restart[0] == 0 and the
 * offsets strictly increase, each below the start of the restart array.
 * Keys strictly increase within a block.
 *
 * Key kinds:
 *   internal-key blocks (data, index, range-deletion): key = user key |
 *     trailer (fixed64, seq << 8 | type), ordered by lsm_ikey_compare;
 *   bytewise blocks (metaindex, properties): keys are names, memcmp order.
 *
 * data block:        (user key, trailer) -> value; types PUT and DELETE
 *                    only (a DELETE's value is empty).
 * index block:       separator -> block handle of data block i; restart
 *                    interval 1.  last key of block i <= separator(i) <
 *                    first key of block i+1.  A separator is the block's last
 *                    key, or a shorter user key that still lies between,
 *                    with trailer pack(LSM_MAX_SEQUENCE, LSM_TYPE_SEEK) (the
 *                    smallest internal key of that user key).
 * range-deletion:    (start, pack(seq, RANGE_DELETE)) -> end key; start <
 *                    end; no two entries share (start, seq).
 * metaindex:         "lsm.filter" / "lsm.properties" / "lsm.rangedel" ->
 *                    block handle; properties is mandatory, unknown names are
 *                    ignored (a later version may add blocks).
 * properties:        name -> value, varint64 unless noted:
 *     lsm.data.blocks  lsm.data.bytes  lsm.deletions  lsm.entries
 *     lsm.filter.bytes lsm.format.version  lsm.range.deletions
 *     lsm.raw.key.bytes  lsm.raw.value.bytes  lsm.seq.largest
 *     lsm.seq.smallest
 *     lsm.key.largest, lsm.key.smallest: an internal key (user key |
 *       fixed64 trailer), present only when the table has any entry
 *   Unknown names are ignored; every name above is mandatory (the key names
 *   only when entries + range deletions > 0).  lsm.data.blocks and
 *   lsm.data.bytes must match the index (the data area is exactly
 *   [0, lsm.data.bytes)); lsm.filter.bytes the filter block's size.
 *
 * ========================================================== footer
 *
 *   offset  size
 *   0       40   metaindex handle, index handle, zero padding
 *   40      4    format version (fixed32) = LSM_TABLE_FORMAT_VERSION
 *   44      8    magic (fixed64) = LSM_TABLE_MAGIC ("LSMSSTB1" on disk)
 *   52      4    masked crc32 of bytes [0, 52)
 */
#ifndef LSM_TABLE_FORMAT_H
#define LSM_TABLE_FORMAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lsm.h"
#include "cache.h"
#include "coding.h"
#include "ikey.h"
#include "table.h"

#define LSM_TABLE_MAGIC            UINT64_C(0x3142545353534d4c) /* LSMSSTB1 */
#define LSM_TABLE_FORMAT_VERSION   1u
#define LSM_TABLE_FOOTER_SIZE      56
#define LSM_TABLE_FOOTER_HANDLES   40
#define LSM_BLOCK_TRAILER_SIZE     5
#define LSM_BLOCK_TYPE_NONE        0
#define LSM_BLOCK_TYPE_LZ4         1
#define LSM_BLOCK_HANDLE_MAX_LEN   20
#define LSM_TRAILER_SIZE           8   /* of an encoded internal key */
/* Uncompressed block contents never exceed this (restart offsets are
 * fixed32; the largest legal block is block_size + one max entry). */
#define LSM_TABLE_MAX_BLOCK        UINT32_C(0x7fffffff)
#define LSM_TABLE_MAX_BLOCK_SIZE_OPT ((size_t)64 << 20)
#define LSM_TABLE_BLOOM_SEED       0

#define LSM_META_FILTER      "lsm.filter"
#define LSM_META_PROPERTIES  "lsm.properties"
#define LSM_META_RANGEDEL    "lsm.rangedel"

#define LSM_PROP_DATA_BLOCKS    "lsm.data.blocks"
#define LSM_PROP_DATA_BYTES     "lsm.data.bytes"
#define LSM_PROP_DELETIONS      "lsm.deletions"
#define LSM_PROP_ENTRIES        "lsm.entries"
#define LSM_PROP_FILTER_BYTES   "lsm.filter.bytes"
#define LSM_PROP_FORMAT_VERSION "lsm.format.version"
#define LSM_PROP_KEY_LARGEST    "lsm.key.largest"
#define LSM_PROP_KEY_SMALLEST   "lsm.key.smallest"
#define LSM_PROP_RANGE_DELS     "lsm.range.deletions"
#define LSM_PROP_RAW_KEY_BYTES  "lsm.raw.key.bytes"
#define LSM_PROP_RAW_VAL_BYTES  "lsm.raw.value.bytes"
#define LSM_PROP_SEQ_LARGEST    "lsm.seq.largest"
#define LSM_PROP_SEQ_SMALLEST   "lsm.seq.smallest"

/* ---------------------------------------------------------- key helpers */

/* Compares two encoded internal keys (each >= 8 bytes): user keys in
 * memcmp order, shorter first, then trailers descending. */
static inline int lsm_enc_ikey_compare(const uint8_t *a, size_t alen,
                                       const uint8_t *b, size_t blen)
{
	size_t ua = alen - LSM_TRAILER_SIZE, ub = blen - LSM_TRAILER_SIZE;
	size_t n = ua < ub ? ua : ub;
	int c = n ? memcmp(a, b, n) : 0;
	uint64_t ta, tb;

	if (c != 0)
		return c;
	if (ua != ub)
		return ua < ub ? -1 : 1;
	ta = lsm_get_fixed64(a + ua);
	tb = lsm_get_fixed64(b + ub);
	return ta > tb ? -1 : (ta < tb ? 1 : 0);
}

static inline int lsm_bytewise_compare(const uint8_t *a, size_t alen,
                                       const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/* ---------------------------------------------------------- handles */

typedef struct lsm_block_handle {
	uint64_t offset;
	uint64_t size;          /* stored contents, trailer excluded */
} lsm_block_handle;

size_t lsm_block_handle_encode(uint8_t *p, const lsm_block_handle *h);
/* Decodes at *p (< limit); LSM_CORRUPTION when malformed. */
int lsm_block_handle_decode(const uint8_t **p, const uint8_t *limit,
                            lsm_block_handle *h);

/* ---------------------------------------------------------- block builder */

typedef struct lsm_block_builder {
	lsm_buf buf;            /* entries, then (after finish) restarts */
	lsm_buf restarts;       /* fixed32 offsets */
	lsm_buf last_key;
	int     interval;
	int     counter;        /* entries since the last restart */
	uint64_t nentries;
	int     finished;
} lsm_block_builder;

void lsm_block_builder_init(lsm_block_builder *b, int restart_interval);
void lsm_block_builder_reset(lsm_block_builder *b);
void lsm_block_builder_free(lsm_block_builder *b);
/* key must sort after the previous one (the caller checks); LSM_NOMEM,
 * LSM_TOOBIG past LSM_TABLE_MAX_BLOCK. */
int  lsm_block_builder_add(lsm_block_builder *b, const void *key, size_t klen,
                           const void *val, size_t vlen);
/* Size finish would produce now. */
size_t lsm_block_builder_estimate(const lsm_block_builder *b);
/* Appends the restart array; contents valid until reset/free. */
int  lsm_block_builder_finish(lsm_block_builder *b, const uint8_t **data,
                              size_t *len);
static inline int lsm_block_builder_empty(const lsm_block_builder *b)
{
	return b->nentries == 0;
}

/* ---------------------------------------------------------- block reader */

typedef struct lsm_block {
	const uint8_t *data;
	uint32_t size;
	uint32_t limit;         /* entries end / restart array begins */
	uint32_t nrestarts;
} lsm_block;

/* Checks the restart array (see the format); LSM_CORRUPTION if bad. */
int lsm_block_parse(lsm_block *b, const uint8_t *data, size_t size);

#define LSM_BLOCK_BYTEWISE 0
#define LSM_BLOCK_IKEYS    1    /* keys are >= 8 bytes, internal-key order */

typedef struct lsm_block_iter {
	lsm_block blk;
	int       kind;         /* LSM_BLOCK_BYTEWISE or LSM_BLOCK_IKEYS */
	int       valid;
	int       status;       /* sticky LSM_CORRUPTION / LSM_NOMEM */
	uint32_t  cur;          /* offset of the current entry */
	uint32_t  next;         /* offset just past it */
	uint32_t  shared;       /* the current entry's shared count */
	uint8_t  *kheap;        /* key storage when kinline is too small */
	size_t    kcap;
	size_t    klen;
	const uint8_t *val;
	size_t    vlen;
	uint8_t   kinline[80];
} lsm_block_iter;

void lsm_block_iter_init(lsm_block_iter *it, const lsm_block *b, int kind);
/* Points the iterator at another block (keeps the key storage). */
void lsm_block_iter_reset(lsm_block_iter *it, const lsm_block *b);
void lsm_block_iter_free(lsm_block_iter *it);
void lsm_block_iter_seek_to_first(lsm_block_iter *it);
/* First entry >= target (an encoded key of the block's kind). */
void lsm_block_iter_seek(lsm_block_iter *it, const uint8_t *target, size_t tlen);
void lsm_block_iter_next(lsm_block_iter *it);

static inline const uint8_t *lsm_block_iter_key(const lsm_block_iter *it,
                                                size_t *len)
{
	*len = it->klen;
	return it->kheap ? it->kheap : it->kinline;
}

/* Walks every entry of b: restart points at entry starts with shared == 0,
 * entries in bounds, keys strictly increasing.  Sets *why on failure and
 * returns LSM_CORRUPTION (or LSM_NOMEM). */
int lsm_block_check(const lsm_block *b, int kind, const char **why);

/* ---------------------------------------------------------- reader internals */

struct lsm_table {
	lsm_env   *env;
	lsm_file  *file;
	char       name[64];        /* the path's last component, for errors */
	uint64_t   file_number;
	uint64_t   file_size;
	lsm_cache *cache;
	lsm_block_handle metaindex_h;
	lsm_block_handle index_h;
	lsm_block_handle props_h;
	lsm_block_handle filter_h;  /* size 0 offset 0: none */
	lsm_block_handle rdel_h;
	int        has_filter;
	int        has_rdel;
	uint64_t   data_end;        /* data blocks tile [0, data_end) */
	uint8_t   *index_mem;
	lsm_block  index;
	uint64_t   index_entries;
	uint8_t   *filter;
	size_t     filter_len;
	uint8_t   *rdel_mem;
	size_t     rdel_bytes;
	lsm_table_rdel *rdels;
	size_t     nrdels;
	lsm_table_props props;
	_Atomic uint64_t st_block_reads;
	_Atomic uint64_t st_block_read_bytes;
	_Atomic uint64_t st_cache_hits;
	_Atomic uint64_t st_bloom_checks;
	_Atomic uint64_t st_bloom_negatives;
};

/* Counters are statistics only: relaxed atomics, no ordering implied. */
#define LSM_TABLE_STAT_ADD(t, field, n) \
	atomic_fetch_add_explicit(&(t)->field, (uint64_t)(n), memory_order_relaxed)

/* Where open found damage (for verify). */
typedef struct lsm_table_problem {
	uint64_t offset;
	char     msg[160];
} lsm_table_problem;

int lsm_table_open_internal(lsm_env *env, const char *path,
                            uint64_t file_number, lsm_cache *cache,
                            lsm_table_problem *prob, lsm_table **out);

/*
 * Reads the block at h from the file (checked against [0, limit)), checks
 * its crc and decompresses it: *mem is malloc'd, *data and *len its contents.
 * LSM_CORRUPTION (with *why) or an env error / LSM_NOMEM.
 */
/* Sequential readers (scans, compaction) read ahead: one read fills a
 * window of several blocks, later blocks are copied from it. */
typedef struct lsm_readahead {
	uint8_t *buf;
	size_t cap;
	uint64_t off;                 /* file offset of buf[0] */
	size_t len;                   /* bytes of the window */
} lsm_readahead;
#define LSM_READAHEAD_BYTES (256u << 10)

int lsm_table_read_raw(lsm_table *t, const lsm_block_handle *h,
                       uint64_t limit, uint8_t **mem, const uint8_t **data,
                       size_t *len, const char **why,
                       lsm_readahead *ra);

/* Decodes an index/metaindex value that must be exactly one handle. */
int lsm_block_iter_handle(const lsm_block_iter *it, lsm_block_handle *h);

/* A data block as used by a reader: pinned in cache or privately owned. */
typedef struct lsm_block_ref {
	const uint8_t *data;
	size_t len;
	uint8_t *owned;
	int cached;
	lsm_cache_handle ch;
} lsm_block_ref;

int  lsm_table_load_block(lsm_table *t, const lsm_block_handle *h,
                          int fill_cache, lsm_readahead *ra, lsm_block_ref *ref);
void lsm_table_release_block(lsm_table *t, lsm_block_ref *ref);

#endif
