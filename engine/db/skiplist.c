/*
 * skiplist.c — the memtable's lock-free skip list over an offset-addressed
 * arena (see skiplist.h for the interface).
 *
 * Invariants
 *   I1  Every next[] slot holds 0 or the offset of a node whose construction
 *       happens-before any load that returns that offset (see "Ordering").
 *   I2  Each level is a singly linked list sorted in internal-key order,
 *       starting at the head.  Links are only ever added, never removed or
 *       redirected backwards, and a node's key, trailer, lengths and height
 *       never change once it is linked.  Hence "prev < key" stays true
 *       forever once observed, and a CAS on prev->next[i] that still sees
 *       the value we read cannot suffer ABA: an offset is linked once.
 *   I3  A node is linked at level i only after it is linked at every level
 *       below i (insert links bottom-up, in program order).  So the list at
 *       level i is a sub-list of the list at level i - 1, and a reader that
 *       reaches a node at level i can descend from it: its lower next[]
 *       slots are already real links, never the 0 left by node_init, which
 *       would read as "end of list" and make a seek miss.
 *   I4  The arena holds no pointers: nodes name each other by 32-bit offset
 *       from the arena start, so a copy of the arena mapped elsewhere (or
 *       memcpy'd) is the same skip list.
 *
 * Ordering (why a reader never sees a half-built node)
 *   A node is built with plain stores (header, key, value) and relaxed
 *   stores (its next[] slots), all sequenced before the release CAS that
 *   first makes it reachable at level 0.  Every load of a next[] slot, by a
 *   reader or by an inserter looking for its splice, is an acquire load.
 *   An acquire load that returns offset X read either the value written by
 *   X's own release CAS (so it synchronizes with X's builder), or a value
 *   stored by another inserter Y that obtained X by an acquire load of its
 *   own and then published X through Y's release CAS (Y's node->next[i] =
 *   X is sequenced before that CAS).  Either way there is a chain of
 *   release/acquire pairs from X's construction to the reader, and
 *   happens-before is transitive, so the reader sees X complete (I1).  The
 *   same argument covers X's lower-level next[] slots: X's level-(i-1) CAS
 *   is sequenced before its level-i CAS, which gives I3 to readers.
 *
 *   Before its level-i CAS a node's next[i] is private: nothing can reach
 *   the node at level i, so the relaxed store of the successor (and its
 *   re-store after a failed CAS) is never read by anyone else.
 *
 * Insert (after RocksDB's InlineSkipList::InsertConcurrently)
 *   Find the splice (prev[i], next[i]) on every level in one descent, then
 *   link level 0 upwards: next[i] into the node, then CAS prev[i]->next[i]
 *   from next[i] to the node.  A failed CAS means someone linked a node
 *   between prev[i] and next[i]; by I2 prev[i] is still < the key, so the
 *   splice is recomputed by walking level i forward from prev[i] alone.
 *
 * The arena header has no "current height" field, so every descent starts
 * at the head's top level; the empty upper levels of the head cost a few
 * loads from two always-cached lines.
 *
 * Two equal internal keys are never inserted (skiplist.h).  If they were,
 * the newcomer would land just before its twin: the list stays sorted, only
 * not strictly.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lsm.h"
#include "skiplist.h"

#define ARENA_MAGIC 0x4c534d41u            /* "LSMA" */
#define ALIGN8(n)   (((n) + 7) & ~(size_t)7)
/* The header is padded to a cache line: `used` and `entries` are written by
 * every insert, and sharing their line with the head node, whose next[]
 * slots every search reads first, would bounce that line between cores. */
#define ARENA_HEADER_SIZE 64
_Static_assert(sizeof(lsm_arena) <= ARENA_HEADER_SIZE, "arena header too big");

/* ------------------------------------------------------------------ arena */

int lsm_arena_init(void *mem, size_t size)
{
	lsm_arena *a = mem;
	size_t head_size = lsm_sl_node_size(0, 0, LSM_SL_MAX_HEIGHT);
	uint32_t head;

	if (mem == NULL || ((uintptr_t)mem & 7) != 0 || size < 4096 ||
	    size > UINT32_MAX)
		return LSM_INVALID;
	/* A ragged tail could never be handed out whole; dropping it keeps
	 * every offset and `used` 8-aligned. */
	size &= ~(size_t)7;

	a->magic = ARENA_MAGIC;
	a->size = (uint32_t)size;
	a->head = 0;
	atomic_store_explicit(&a->side_head, 0, memory_order_relaxed);
	atomic_store_explicit(&a->used, (uint32_t)ARENA_HEADER_SIZE,
	                      memory_order_relaxed);
	atomic_store_explicit(&a->entries, 0, memory_order_relaxed);

	head = lsm_arena_alloc(a, head_size);
	if (head == 0)
		return LSM_INVALID;   /* unreachable for size >= 4096 */
	lsm_sl_node_init(a, head, NULL, 0, 0, NULL, 0, LSM_SL_MAX_HEIGHT);
	a->head = head;
	a->bloom_off = 0;
	a->bloom_lines = 0;
	return LSM_OK;
}

uint32_t lsm_arena_alloc(lsm_arena *a, size_t n)
{
	uint32_t size = a->size;
	uint32_t need, cur;

	/* Checked before rounding so that n near SIZE_MAX cannot wrap. */
	if (n > size)
		return 0;
	need = (uint32_t)ALIGN8(n);    /* size is 8-aligned: cannot pass it */

	/* A CAS loop rather than a bare fetch_add: a fetch_add that overshoots
	 * would leave `used` past `size` (and could wrap 32 bits), breaking
	 * every later allocation and lsm_arena_used().  Relaxed suffices: the
	 * bytes are private to the caller until it publishes them itself
	 * (lsm_sl_insert's release CAS). */
	cur = atomic_load_explicit(&a->used, memory_order_relaxed);
	do {
		if (size - cur < need)
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(&a->used, &cur, cur + need,
	                                                memory_order_relaxed,
	                                                memory_order_relaxed));
	return cur;
}

/* ------------------------------------------------------------------ nodes */

int lsm_sl_height_for(uint64_t sequence)
{
	/* splitmix64: consecutive sequences must give independent heights, and
	 * its low bits are as good as its high ones. */
	uint64_t z = sequence + 0x9e3779b97f4a7c15ull;
	int h = 1;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	/* Each run of LSM_SL_BRANCH_BITS zero bits is one growth event.  64
	 * bits cover LSM_SL_MAX_HEIGHT - 1 of them. */
	while (h < LSM_SL_MAX_HEIGHT &&
	       (z & ((1u << LSM_SL_BRANCH_BITS) - 1)) == 0) {
		h++;
		z >>= LSM_SL_BRANCH_BITS;
	}
	return h;
}

size_t lsm_sl_node_size(size_t klen, size_t vlen, int height)
{
	return ALIGN8(offsetof(lsm_sl_node, next) +
	              (size_t)height * sizeof(uint32_t) + klen + vlen);
}

void lsm_sl_node_init(lsm_arena *a, uint32_t off, const void *key, size_t klen,
                      uint64_t trailer, const void *val, size_t vlen, int height)
{
	lsm_sl_node *n = lsm_sl_node_at(a, off);
	size_t used = offsetof(lsm_sl_node, next) +
	              (size_t)height * sizeof(uint32_t) + klen + vlen;
	uint8_t *k;

	n->trailer = trailer;
	n->klen = (uint32_t)klen;
	n->vlen = (uint32_t)vlen;
	n->height = (uint8_t)height;
	memset(n->pad, 0, sizeof n->pad);
	for (int i = 0; i < height; i++)
		atomic_store_explicit(&n->next[i], 0, memory_order_relaxed);
	k = (uint8_t *)&n->next[height];
	/* Guarded: memcpy from NULL is undefined even for 0 bytes. */
	if (klen)
		memcpy(k, key, klen);
	if (vlen)
		memcpy(k + klen, val, vlen);
	/* Zero the alignment tail so an arena dumped or copied whole never
	 * carries stale bytes. */
	memset((char *)n + used, 0, ALIGN8(used) - used);
}

/* ---------------------------------------------------------------- compare */

/* memcmp order, eight bytes at a time: keys are short (16 to 30 bytes for
 * PostgreSQL rows), and a call into libc's memcmp costs more than the
 * comparison itself. */
static inline int bytes_cmp(const uint8_t *a, const uint8_t *b, size_t m)
{
	while (m >= 8) {
		uint64_t x, y;

		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			x = __builtin_bswap64(x);
			y = __builtin_bswap64(y);
#endif
			return x < y ? -1 : 1;
		}
		a += 8;
		b += 8;
		m -= 8;
	}
	for (; m; a++, b++, m--)
		if (*a != *b)
			return *a < *b ? -1 : 1;
	return 0;
}

static inline int key_cmp(const uint8_t *ak, size_t alen,
                          const uint8_t *bk, size_t blen)
{
	int r = bytes_cmp(ak, bk, alen < blen ? alen : blen);

	if (r)
		return r;
	return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

static inline int ikey_cmp(const uint8_t *ak, size_t alen, uint64_t atr,
                           const uint8_t *bk, size_t blen, uint64_t btr)
{
	int r = key_cmp(ak, alen, bk, blen);

	if (r)
		return r;
	/* Newest (largest trailer) first, so a seek at (key, snapshot) lands
	 * on the newest version visible at that snapshot. */
	if (atr != btr)
		return atr > btr ? -1 : 1;
	return 0;
}

int lsm_key_compare(const void *a, size_t alen, const void *b, size_t blen)
{
	return key_cmp(a, alen, b, blen);
}

int lsm_ikey_compare(const void *akey, size_t alen, uint64_t atrailer,
                     const void *bkey, size_t blen, uint64_t btrailer)
{
	return ikey_cmp(akey, alen, atrailer, bkey, blen, btrailer);
}

/* ---------------------------------------------------------------- search */

static inline uint32_t load_next(const lsm_sl_node *n, int level)
{
	/* Acquire: pairs with the release CAS that published the offset, so
	 * the node it names is seen fully built (see "Ordering").  The cast
	 * only drops const; C11 declares atomic loads on non-const objects. */
	return atomic_load_explicit((_Atomic uint32_t *)&n->next[level],
	                            memory_order_acquire);
}

/*
 * Walks `level` forward from `prev` (which is < the target) to the last node
 * < target.  Returns it and sets *nextp to its successor: the first node >=
 * target on this level, or 0.  `known_ge` is a node already known to be >=
 * target (the successor found one level up), so reaching it ends the walk
 * without comparing its key again.
 */
static inline uint32_t walk_level(const lsm_arena *a, uint32_t prev, int level,
                                  const uint8_t *key, size_t klen, uint64_t tr,
                                  uint32_t known_ge, uint32_t *nextp)
{
	uint32_t nx;

	for (;;) {
		const lsm_sl_node *n;

		nx = load_next(lsm_sl_node_at(a, prev), level);
		if (nx == 0 || nx == known_ge)
			break;
		n = lsm_sl_node_at(a, nx);
		/* The walk is a chain of cache misses, one per node.  While nx's
		 * key is fetched, also fetch the node we would visit next if nx
		 * turns out >= target and we step down: prev's line is already
		 * in cache, so this overlaps two misses (~10-20% per search).
		 * A hint only, so a relaxed load; the real step reloads with
		 * acquire. */
		if (level > 0) {
			uint32_t down = atomic_load_explicit(
				(_Atomic uint32_t *)&lsm_sl_node_at(a, prev)->next[level - 1],
				memory_order_relaxed);
			if (down != 0 && down != nx)
				__builtin_prefetch(lsm_sl_node_at(a, down));
		}
		if (ikey_cmp(lsm_sl_node_key(n), n->klen, n->trailer, key, klen, tr) >= 0)
			break;
		prev = nx;
	}
	*nextp = nx;
	return prev;
}

/* 1 when node nx is >= (key, tr): the splice level it ends still fits. */
static inline int node_ge(const lsm_arena *a, uint32_t nx, const uint8_t *key, size_t klen,
                          uint64_t tr)
{
	const lsm_sl_node *n;

	if (nx == 0)
		return 1;
	n = lsm_sl_node_at(a, nx);
	return ikey_cmp(lsm_sl_node_key(n), n->klen, n->trailer, key, klen, tr) >= 0;
}

/*
 * The splice of a key that follows s->last: every prev[i] is <= last, so
 * < key; the lowest level whose next[i] is >= key and every level above it
 * still bracket the key (a level's successor is never before the one of
 * the level below), so the descent starts there, not at the head.  Nodes
 * that others linked meanwhile between prev[i] and next[i] only make the
 * linking CAS fail and walk on, as with a fresh search.
 */
static void find_splice(const lsm_arena *a, lsm_sl_splice *s, const uint8_t *key,
                        size_t klen, uint64_t tr)
{
	uint32_t p = a->head, known_ge = 0;
	int top = LSM_SL_MAX_HEIGHT - 1;

	if (s->last != 0) {
		const lsm_sl_node *l = lsm_sl_node_at(a, s->last);

		if (ikey_cmp(lsm_sl_node_key(l), l->klen, l->trailer, key, klen, tr) < 0) {
			int lv = 0;

			while (lv < LSM_SL_MAX_HEIGHT && !node_ge(a, s->next[lv], key, klen, tr))
				lv++;
			if (lv == 0)
				return;                     /* every level fits */
			if (lv < LSM_SL_MAX_HEIGHT) {
				top = lv - 1;
				p = s->prev[lv];
				known_ge = s->next[lv];
			} else {
				p = s->prev[top];           /* still < key: walk on from it */
			}
		}
	}
	for (int i = top; i >= 0; i--) {
		p = walk_level(a, p, i, key, klen, tr, known_ge, &s->next[i]);
		s->prev[i] = p;
		known_ge = s->next[i];
	}
}

void lsm_sl_insert_splice(lsm_arena *a, uint32_t off, lsm_sl_splice *s)
{
	lsm_sl_node *x = lsm_sl_node_at(a, off);
	const uint8_t *key = lsm_sl_node_key(x);
	size_t klen = x->klen;
	uint64_t tr = x->trailer;
	int height = x->height;

	/* Heights come from lsm_sl_height_for, so this never fires; it only
	 * keeps a corrupt node from overrunning prev[]/next[]. */
	if (height > LSM_SL_MAX_HEIGHT)
		height = LSM_SL_MAX_HEIGHT;

	find_splice(a, s, key, klen, tr);
	for (int i = 0; i < height; i++) {
		for (;;) {
			uint32_t expect = s->next[i];
			lsm_sl_node *pn = lsm_sl_node_at(a, s->prev[i]);

			/* Private until the CAS below publishes it (see "Ordering"),
			 * so relaxed is enough; the release CAS orders it. */
			atomic_store_explicit(&x->next[i], expect, memory_order_relaxed);
			if (atomic_compare_exchange_strong_explicit(&pn->next[i], &expect,
			                                            off, memory_order_release,
			                                            memory_order_relaxed))
				break;
			/* Lost a race at this level: something now sits between
			 * prev[i] and next[i].  prev[i] is still < key (I2). */
			s->prev[i] = walk_level(a, s->prev[i], i, key, klen, tr, 0, &s->next[i]);
		}
		s->prev[i] = off;               /* next[i] is x's successor */
	}
	s->last = off;
	/* Statistics only; nothing synchronizes through it. */
	atomic_fetch_add_explicit(&a->entries, 1, memory_order_relaxed);
}

void lsm_sl_insert(lsm_arena *a, uint32_t off)
{
	lsm_sl_splice s;

	s.last = 0;
	lsm_sl_insert_splice(a, off, &s);
}

uint32_t lsm_sl_seek(const lsm_arena *a, const void *key, size_t klen,
                     uint64_t trailer)
{
	uint32_t p = a->head, nx = 0;

	for (int i = LSM_SL_MAX_HEIGHT - 1; i >= 0; i--)
		p = walk_level(a, p, i, key, klen, trailer, nx, &nx);
	return nx;
}

/*
 * Roughly how many entries have a user key below key: the search's path
 * down from the top, each step at level i standing for 2^i entries (the
 * branching factor is 2), as RocksDB's EstimateCount.  O(log n) loads.
 */
uint64_t lsm_sl_estimate_below(const lsm_arena *a, const void *key, size_t klen)
{
	uint32_t p = a->head;
	uint64_t count = 0;
	int level = LSM_SL_MAX_HEIGHT - 1;

	for (;;) {
		uint32_t nx = load_next(lsm_sl_node_at(a, p), level);

		if (nx != 0) {
			const lsm_sl_node *n = lsm_sl_node_at(a, nx);

			if (key_cmp(lsm_sl_node_key(n), n->klen, key, klen) < 0) {
				p = nx;
				count++;
				continue;
			}
		}
		if (level == 0)
			return count;
		count *= 2;
		level--;
	}
}

void lsm_sl_side_push(lsm_arena *a, uint32_t off)
{
	lsm_sl_node *x = lsm_sl_node_at(a, off);
	uint32_t head = atomic_load_explicit(&a->side_head, memory_order_relaxed);

	/* Release on success publishes the node's contents with it, as the
	 * skip list's CAS does (see "Ordering"). */
	do
		atomic_store_explicit(&x->next[0], head, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&a->side_head, &head, off,
	                                              memory_order_release,
	                                              memory_order_relaxed));
	atomic_fetch_add_explicit(&a->entries, 1, memory_order_relaxed);
}

uint32_t lsm_sl_side_first(const lsm_arena *a)
{
	return atomic_load_explicit((_Atomic uint32_t *)&a->side_head,
	                            memory_order_acquire);
}

uint32_t lsm_sl_first(const lsm_arena *a)
{
	return load_next(lsm_sl_node_at(a, a->head), 0);
}

uint32_t lsm_sl_next(const lsm_arena *a, uint32_t off)
{
	if (off == 0)
		return 0;
	return load_next(lsm_sl_node_at(a, off), 0);
}
