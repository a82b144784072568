/*
 * skiplist.h — a lock-free skip list of internal keys, living in an arena
 * that is addressed by 32-bit offsets so it can sit in shared memory mapped
 * at a different address in every process.
 *
 * Arena
 *   An arena is one contiguous, 8-byte-aligned piece of memory of at most
 *   4 GiB: an lsm_arena header, then bytes handed out by an atomic bump
 *   pointer.  Offset 0 is the header, so 0 never names a node and serves as
 *   NULL.  Nothing in the arena is a raw pointer.  Memory is never freed
 *   piecemeal: the owner reclaims the arena whole.
 *
 * Internal keys
 *   (user key, trailer) with trailer = sequence << 8 | type.  Order: user key
 *   ascending by memcmp (shorter first on a common prefix), then trailer
 *   descending, so the newest version of a key comes first.
 *
 * Skip list
 *   Branching factor 2, at most LSM_SL_MAX_HEIGHT levels.  A node's height
 *   is a pure function of its sequence number (lsm_sl_height_for), so a
 *   writer can size a batch's nodes before linking them.  Nodes are built in
 *   place (lsm_sl_node_init) and then linked by lsm_sl_insert, which many
 *   threads or processes may call at once: each level is linked by CAS,
 *   bottom level first, and a reader that finds a node at any level finds it
 *   complete.  Readers take no lock and never wait.  Two nodes with equal
 *   internal keys are never inserted (sequences are unique).
 */
#ifndef LSM_SKIPLIST_H
#define LSM_SKIPLIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "ikey.h"

/*
 * P(a node reaches the next level) = 2^-LSM_SL_BRANCH_BITS.  1/2 rather
 * than LevelDB's 1/4: a search visits about as many nodes either way, but
 * with 1/2 fewer of them sit on the bottom levels, which are the ones too
 * big for the CPU caches -- random inserts into a 1M-entry memtable run
 * ~15% faster and lookups ~25% (docs/PERFORMANCE.md).  The cost is one
 * more 4-byte link per node on average.  24 levels keep the top level
 * sparse up to 2^24 entries, beyond any arena (32-bit offsets).
 */
#define LSM_SL_BRANCH_BITS 1
#define LSM_SL_MAX_HEIGHT 24

typedef struct lsm_arena {
	uint32_t magic;
	uint32_t size;                 /* total bytes, header included */
	_Atomic uint32_t used;         /* bump pointer: bytes handed out */
	uint32_t head;                 /* offset of the skip list's head node */
	_Atomic uint32_t side_head;    /* the side list (range tombstones), 0: empty */
	_Atomic uint64_t entries;      /* nodes linked */
	uint32_t bloom_off;            /* the memtable's bloom filter (memtable.c): */
	uint32_t bloom_lines;          /* 64-byte lines at bloom_off, 0: none */
} lsm_arena;

typedef struct lsm_sl_node {
	uint64_t trailer;              /* sequence << 8 | type */
	uint32_t klen;                 /* user key bytes */
	uint32_t vlen;                 /* value bytes */
	uint8_t  height;
	uint8_t  pad[3];
	_Atomic uint32_t next[];       /* height entries; then key, then value */
} lsm_sl_node;

/* Roughly how many entries have a user key below key (O(log n)). */
uint64_t lsm_sl_estimate_below(const lsm_arena *a, const void *key, size_t klen);

/* Formats an arena over mem[0..size) (size >= 4096, <= UINT32_MAX, mem
 * 8-aligned) with an empty skip list.  Returns LSM_OK or LSM_INVALID. */
int lsm_arena_init(void *mem, size_t size);

/* Bump-allocates n bytes (rounded up to 8); 0 when the arena is full. */
uint32_t lsm_arena_alloc(lsm_arena *a, size_t n);

static inline size_t lsm_arena_used(const lsm_arena *a)
{
	return atomic_load_explicit(&((lsm_arena *)a)->used, memory_order_relaxed);
}

static inline void *lsm_arena_ptr(const lsm_arena *a, uint32_t off)
{
	return (char *)a + off;
}

/* Height in [1, LSM_SL_MAX_HEIGHT], P(h >= i+1 | h >= i) = 2^-LSM_SL_BRANCH_BITS. */
int lsm_sl_height_for(uint64_t sequence);

/* Arena bytes (multiple of 8) a node with these sizes occupies. */
size_t lsm_sl_node_size(size_t klen, size_t vlen, int height);

/* Builds a node at off (which has lsm_sl_node_size bytes) without linking. */
void lsm_sl_node_init(lsm_arena *a, uint32_t off, const void *key, size_t klen,
                      uint64_t trailer, const void *val, size_t vlen, int height);

/* Links the node at off.  Lock-free, safe from many threads/processes. */
void lsm_sl_insert(lsm_arena *a, uint32_t off);

/*
 * Where the last insert through it went, per level: a run of inserts in
 * ascending key order (a batch of new rows) starts each search at the
 * lowest level that still brackets the key instead of at the head.  Any
 * order stays correct (a key below the last one searches from the head).
 * One splice serves one thread, one arena; last = 0 starts it empty.
 */
typedef struct lsm_sl_splice {
	uint32_t prev[LSM_SL_MAX_HEIGHT];
	uint32_t next[LSM_SL_MAX_HEIGHT];
	uint32_t last;                 /* node inserted last, 0: none */
} lsm_sl_splice;

void lsm_sl_insert_splice(lsm_arena *a, uint32_t off, lsm_sl_splice *s);

static inline lsm_sl_node *lsm_sl_node_at(const lsm_arena *a, uint32_t off)
{
	return (lsm_sl_node *)((char *)a + off);
}
static inline const uint8_t *lsm_sl_node_key(const lsm_sl_node *n)
{
	return (const uint8_t *)&n->next[n->height];
}
static inline const uint8_t *lsm_sl_node_value(const lsm_sl_node *n)
{
	return lsm_sl_node_key(n) + n->klen;
}

/* lsm_key_compare and lsm_ikey_compare (ikey.h) are defined in skiplist.c,
 * beside the inline comparator the search loop uses. */

/* Offset of the first node >= (key, trailer), or 0 when there is none. */
uint32_t lsm_sl_seek(const lsm_arena *a, const void *key, size_t klen,
                     uint64_t trailer);
/* Offset of the first node, or 0. */
uint32_t lsm_sl_first(const lsm_arena *a);

/*
 * The side list: an unordered, prepend-only, lock-free list of nodes kept
 * apart from the skip list (the memtable keeps range tombstones there: they
 * are rare, and a reader needs all of those that overlap a key, which a
 * sorted-by-start search cannot give).  Nodes are built as usual, height 1.
 * Walk with lsm_sl_side_first / lsm_sl_next.
 */
void lsm_sl_side_push(lsm_arena *a, uint32_t off);
uint32_t lsm_sl_side_first(const lsm_arena *a);
/* Offset of the node after off, or 0. */
uint32_t lsm_sl_next(const lsm_arena *a, uint32_t off);

#endif
