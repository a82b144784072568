/*
 * cache.h — the sharded LRU block cache.
 *
 * The cache lives entirely inside one caller-provided memory range and holds
 * no pointers, only offsets from its start, so the same bytes can be
 * PostgreSQL shared memory mapped at a different address in every process
 * (DESIGN.md, "Shared, relocatable state").  Its locks are process-shared.
 *
 * Entries are keyed by (file number, block offset) and hold the block's
 * uncompressed, CRC-checked bytes.  A lookup or insert pins the entry and
 * returns a handle; the bytes stay valid and unchanged until the handle is
 * released, even if the entry is erased or would be evicted meanwhile.
 * Eviction takes the least recently used unpinned entry of the shard.
 * Capacity is counted in bytes of the range; when every candidate is pinned
 * an insert fails with LSM_BUSY and the caller reads the block uncached.
 *
 * Invariants:
 *   - lookup never returns bytes of another (file, offset) or a partially
 *     written entry: an entry is visible only after its bytes are copied;
 *   - a pinned entry is never reused;
 *   - every call is bounded: no call waits for another caller's pin.
 */
#ifndef LSM_CACHE_H
#define LSM_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lsm_cache lsm_cache;   /* = the start of the memory range */

typedef struct lsm_cache_handle {
	const uint8_t *data;
	size_t len;
	uint32_t shard;                   /* private to the cache */
	uint32_t entry;
} lsm_cache_handle;

typedef struct lsm_cache_stats {
	uint64_t capacity;                /* bytes usable for entries */
	uint64_t usage;                   /* bytes held by entries, their
	                                   * headers and rounding included,
	                                   * erased-but-pinned ones too */
	uint64_t entries;                 /* entries a lookup can find */
	uint64_t hits, misses, inserts, evictions;
	uint64_t insert_busy;             /* inserts refused: all pinned */
} lsm_cache_stats;

/* Smallest range lsm_cache_init accepts for `shards` shards. */
size_t lsm_cache_min_size(int shards);

/* Formats mem[0..size) (8-aligned) as an empty cache with `shards` shards
 * (a power of two, 1..64).  LSM_INVALID on bad arguments. */
int  lsm_cache_init(void *mem, size_t size, int shards);

/* Returns the cache formatted at mem (by this or another process), or
 * NULL when mem does not hold one. */
lsm_cache *lsm_cache_attach(void *mem);

/* LSM_OK and a pinned handle when (file, offset) is cached, else
 * LSM_NOTFOUND. */
int  lsm_cache_lookup(lsm_cache *c, uint64_t file, uint64_t offset,
                      lsm_cache_handle *h);

/* Copies len bytes in as (file, offset), replacing any older entry, and
 * returns it pinned.  LSM_TOOBIG when len exceeds what one shard can hold
 * (an eighth of its heap), LSM_BUSY when no room can be freed now.  Either
 * way no entry was added or replaced.  (A BUSY insert may have evicted some
 * unpinned entries trying, only when pinned entries fragment the shard;
 * when too much is pinned it fails before evicting anything.) */
int  lsm_cache_insert(lsm_cache *c, uint64_t file, uint64_t offset,
                      const void *data, size_t len, lsm_cache_handle *h);

void lsm_cache_release(lsm_cache *c, lsm_cache_handle *h);

/* Drops every unpinned entry of file (a deleted SSTable); pinned ones
 * go when released. */
void lsm_cache_erase_file(lsm_cache *c, uint64_t file);

void lsm_cache_get_stats(lsm_cache *c, lsm_cache_stats *st);

/* Walks the whole cache under each shard's lock and checks its internal
 * invariants (allocator, table, LRU, counters): LSM_OK or LSM_CORRUPTION.
 * O(size of the range); for tests and inspection tools. */
int  lsm_cache_check(lsm_cache *c);

#endif
