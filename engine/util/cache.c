/*
 * cache.c — the sharded LRU block cache over one relocatable memory range
 * (see cache.h for the interface).
 *
 * Layout: [cache header][shard 0]...[shard n-1], each shard = [header:
 * mutex, LRU ends, free bins, counters][nbuckets x uint32][nunits x 64-byte
 * units of heap].  Every position is an offset, never a pointer, so a copy
 * of the range mapped elsewhere is the same cache.
 *
 * Inside a shard everything is named by a 32-bit unit index into its heap;
 * NIL (UINT32_MAX) is "none".  The heap is tiled by extents, each a run of
 * whole units that starts with a 48-byte struct ent.  A used extent is one
 * entry: header, then its len bytes.  A 4 KiB block takes 65 units (4160
 * bytes), so ~98% of the heap holds block bytes; the headers, buckets (4
 * bytes per KiB of heap) and shard headers cost ~2% of the range.
 *
 * Allocator: boundary tags (as in dlmalloc) plus segregated free lists.
 *   A1  Extents tile the heap: from unit 0, u + size(u) is the next extent,
 *       and the last one ends exactly at nunits.
 *   A2  No two free extents are adjacent (free coalesces both ways), so an
 *       extent carved from the start of a free one never has a free left
 *       neighbour.
 *   A3  F_PREV_FREE is set in an extent's flags iff the extent just before
 *       it is free, and a free extent's last 4 bytes hold its size (the
 *       footer), so free() finds its left neighbour in O(1).
 *   A4  Every free extent is on exactly one bin list, bin_of(size), linked
 *       through lprev/lnext; bit b of `bitmap` is set iff bin b is non-empty.
 *       Bins are exact below 16 units, then 8 per power of two.  bin_of is
 *       monotone, so any extent in a bin above bin_of(need) fits `need`.
 * An allocation takes a fitting extent from the request's own bin (a short
 * first-fit walk) or from any higher bin, splitting off the rest.  When none
 * fits it evicts LRU entries one at a time, and after each checks only the
 * extent the victim coalesced into: that is the only extent that changed.
 *
 * Entries
 *   E1  A used extent is in exactly one state: pending (bytes being copied,
 *       refs == 1, not in the table), live (in the hash table), or detached
 *       (erased or replaced while pinned: refs > 0, out of the table).
 *   E2  An entry is on the LRU list iff it is live with refs == 0.  So a
 *       pinned entry is never evicted, and an extent is reused only after
 *       its last handle is released: pending/detached entries are freed the
 *       moment refs drops to 0.
 *   E3  A bucket chain (hnext) holds live entries only, at most one per
 *       (file, offset): insert unlinks the older one as it links the new.
 *   E4  An entry becomes live only after its bytes are copied, and its bytes
 *       never change while it is used.
 * The LRU list runs oldest (head, the next victim) to newest (tail).  A
 * lookup pins an entry and takes it off the list; the last release puts it
 * back at the tail, so recency is the time of the last release.
 *
 * Locking: one process-shared mutex per shard guards all of the shard's
 * metadata and counters.  insert copies the block with the lock released
 * (the pending extent is private to it: E1, E2), then relocks to link it.
 * No call waits for a pin: the only waits are for these short critical
 * sections.  erase_file relocks every ERASE_BATCH buckets so a big shard's
 * table walk does not hold its lock for long.
 *
 * LSM_BUSY: an insert first checks that free + evictable units could hold
 * it, so when all is pinned it fails before evicting anything.  Only if
 * pinned entries fragment the heap can it evict and still fail; a cache may
 * drop unpinned entries at any time, so that is harmless.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lsm.h"
#include "cache.h"
#include "hash.h"

#define CACHE_MAGIC	0x434d534cu         /* "LSMC" */
#define CACHE_VERSION	1u
#define MAX_SHARDS	64
#define UNIT		64u
#define NIL		UINT32_MAX
#define NBINS		240                 /* bin_of(UINT32_MAX) + 1 */
#define WALK_BIN	16                  /* first-fit steps in the request's bin */
#define MIN_BUCKETS	16u
#define MIN_UNITS	64u                 /* heap of the smallest shard */
#define MAX_UNITS	(1u << 31)          /* 128 GiB per shard */
#define ERASE_BATCH	1024u
#define ALIGN64(n)	(((n) + 63) & ~(uint64_t)63)

#define F_USED		1u
#define F_PREV_FREE	2u
#define F_LIVE		4u                  /* in the hash table */

struct lsm_cache {
	uint32_t magic;
	uint32_t version;
	uint32_t nshards;
	uint32_t pad;
	uint64_t size;                      /* bytes of the range in use */
	uint64_t stride;                    /* bytes per shard slice */
	uint64_t max_len;                   /* largest entry, bytes */
};

typedef struct shard {
	pthread_mutex_t mu;
	uint32_t nbuckets;                  /* a power of two */
	uint32_t nunits;
	uint64_t heap_off;                  /* from the shard start */
	uint32_t lru_head, lru_tail;        /* oldest, newest */
	uint64_t free_units, lru_units, used_units;
	uint64_t entries, hits, misses, inserts, evictions, insert_busy;
	uint64_t bitmap[(NBINS + 63) / 64];
	uint32_t bins[NBINS];
} shard;

/* The head of every extent.  A free extent uses only size, flags and
 * lprev/lnext (its bin links), plus the footer in its last 4 bytes. */
typedef struct ent {
	uint32_t size;                      /* units, this header included */
	uint32_t flags;
	uint32_t refs;
	uint32_t hnext;                     /* bucket chain */
	uint32_t lprev, lnext;              /* LRU list, or bin list when free */
	uint64_t file, offset;
	uint64_t len;
} ent;

#define CACHE_HDR	ALIGN64(sizeof(struct lsm_cache))
#define SHARD_HDR	ALIGN64(sizeof(shard))
_Static_assert(sizeof(ent) == 48, "entry header is not 48 bytes");
_Static_assert(sizeof(ent) + sizeof(uint32_t) <= UNIT, "free extent too big");

/* ---------------------------------------------------------------- access */

static inline shard *shard_at(lsm_cache *c, uint32_t i)
{
	return (shard *)((char *)c + CACHE_HDR + (uint64_t)i * c->stride);
}

static inline uint32_t *buckets(shard *s)
{
	return (uint32_t *)((char *)s + SHARD_HDR);
}

static inline ent *E(shard *s, uint32_t u)
{
	return (ent *)((char *)s + s->heap_off + (uint64_t)u * UNIT);
}

static inline uint8_t *ent_data(ent *e)
{
	return (uint8_t *)(e + 1);
}

/* Units an entry of len bytes takes; len <= max_len keeps it in range. */
static inline uint32_t units_for(size_t len)
{
	return (uint32_t)((sizeof(ent) + (uint64_t)len + UNIT - 1) / UNIT);
}

static inline uint32_t *footer(shard *s, uint32_t u, uint32_t n)
{
	return (uint32_t *)((char *)E(s, u) + (uint64_t)n * UNIT) - 1;
}

static uint64_t key_hash(uint64_t file, uint64_t offset)
{
	uint64_t k[2] = { file, offset };

	return lsm_xxh64(k, sizeof k, 0);
}

/* Shard from the top bits, bucket from the low ones: independent. */
static inline uint32_t shard_of(lsm_cache *c, uint64_t h)
{
	return (uint32_t)(h >> 58) & (c->nshards - 1);
}

static inline uint32_t *bucket_of(shard *s, uint64_t h)
{
	return &buckets(s)[h & (s->nbuckets - 1)];
}

/* ------------------------------------------------------------ free bins */

static unsigned bin_of(uint32_t n)
{
	unsigned fl;

	if (n < 16)
		return n;
	fl = 31 - (unsigned)__builtin_clz(n);          /* 4..31 */
	return (fl - 2) * 8 + ((n >> (fl - 3)) & 7);
}

static void bin_insert(shard *s, uint32_t u)
{
	ent *e = E(s, u);
	unsigned b = bin_of(e->size);

	e->lprev = NIL;
	e->lnext = s->bins[b];
	if (e->lnext != NIL)
		E(s, e->lnext)->lprev = u;
	s->bins[b] = u;
	s->bitmap[b / 64] |= 1ull << (b % 64);
}

static void bin_remove(shard *s, uint32_t u)
{
	ent *e = E(s, u);
	unsigned b = bin_of(e->size);

	if (e->lprev != NIL)
		E(s, e->lprev)->lnext = e->lnext;
	else
		s->bins[b] = e->lnext;
	if (e->lnext != NIL)
		E(s, e->lnext)->lprev = e->lprev;
	if (s->bins[b] == NIL)
		s->bitmap[b / 64] &= ~(1ull << (b % 64));
}

/* The first non-empty bin >= b, or NBINS. */
static unsigned bin_next(shard *s, unsigned b)
{
	while (b < NBINS) {
		uint64_t w = s->bitmap[b / 64] >> (b % 64);

		if (w)
			return b + (unsigned)__builtin_ctzll(w);
		b = (b / 64 + 1) * 64;
	}
	return NBINS;
}

/* Writes a free extent [u, u+n) and files it; its left neighbour is used
 * (A2), its right one learns it is now preceded by a free extent (A3). */
static void make_free(shard *s, uint32_t u, uint32_t n)
{
	ent *e = E(s, u);

	e->size = n;
	e->flags = 0;
	*footer(s, u, n) = n;
	bin_insert(s, u);
	if (u + n < s->nunits)
		E(s, u + n)->flags |= F_PREV_FREE;
}

/* Allocates `need` units from the start of free extent u. */
static uint32_t carve(shard *s, uint32_t u, uint32_t need)
{
	uint32_t n = E(s, u)->size;

	bin_remove(s, u);
	if (n > need)
		make_free(s, u + need, n - need);
	else if (u + n < s->nunits)
		E(s, u + n)->flags &= ~F_PREV_FREE;
	E(s, u)->size = need;
	E(s, u)->flags = F_USED;
	s->free_units -= need;
	s->used_units += need;
	return u;
}

/* Frees used extent u, coalescing with free neighbours (A2).  Returns the
 * start of the free extent that now covers u. */
static uint32_t extent_free(shard *s, uint32_t u)
{
	uint32_t n = E(s, u)->size, nx = u + n;

	s->used_units -= n;
	s->free_units += n;
	if (nx < s->nunits && !(E(s, nx)->flags & F_USED)) {
		bin_remove(s, nx);
		n += E(s, nx)->size;
	}
	if ((E(s, u)->flags & F_PREV_FREE) && u > 0) {
		uint32_t ln = *footer(s, u - 1, 1);   /* the left one's footer */

		if (ln <= u) {                        /* only corruption fails this */
			bin_remove(s, u - ln);
			u -= ln;
			n += ln;
		}
	}
	make_free(s, u, n);
	return u;
}

/* ------------------------------------------------------------ LRU, table */

static void lru_append(shard *s, uint32_t u)
{
	ent *e = E(s, u);

	e->lnext = NIL;
	e->lprev = s->lru_tail;
	if (s->lru_tail != NIL)
		E(s, s->lru_tail)->lnext = u;
	else
		s->lru_head = u;
	s->lru_tail = u;
	s->lru_units += e->size;
}

static void lru_remove(shard *s, uint32_t u)
{
	ent *e = E(s, u);

	if (e->lprev != NIL)
		E(s, e->lprev)->lnext = e->lnext;
	else
		s->lru_head = e->lnext;
	if (e->lnext != NIL)
		E(s, e->lnext)->lprev = e->lprev;
	else
		s->lru_tail = e->lprev;
	s->lru_units -= e->size;
}

static uint32_t table_find(shard *s, uint64_t h, uint64_t file, uint64_t offset)
{
	uint32_t u = *bucket_of(s, h);

	while (u != NIL && (E(s, u)->file != file || E(s, u)->offset != offset))
		u = E(s, u)->hnext;
	return u;
}

/* Unlinks live entry u, whose chain starts at *head. */
static void table_unlink(shard *s, uint32_t *head, uint32_t u)
{
	while (*head != u)
		head = &E(s, *head)->hnext;
	*head = E(s, u)->hnext;
	E(s, u)->flags &= ~F_LIVE;
	s->entries--;
}

/* Takes live entry u out of the table: freed now if unpinned, else
 * detached, to be freed by its last release (E1, E2). */
static uint32_t drop_entry(shard *s, uint32_t *head, uint32_t u)
{
	table_unlink(s, head, u);
	if (E(s, u)->refs > 0)
		return NIL;
	lru_remove(s, u);
	return extent_free(s, u);
}

/* `need` units: from the free bins, else by evicting LRU entries. */
static uint32_t alloc_units(shard *s, uint32_t need)
{
	uint32_t u = s->bins[bin_of(need)];
	unsigned b;

	for (int i = 0; u != NIL && i < WALK_BIN; i++, u = E(s, u)->lnext)
		if (E(s, u)->size >= need)
			return carve(s, u, need);
	b = bin_next(s, bin_of(need) + 1);
	if (b < NBINS)
		return carve(s, s->bins[b], need);
	/* All pinned (or too little evictable): fail before evicting. */
	if (s->free_units + s->lru_units < need)
		return NIL;
	while (s->lru_head != NIL) {
		uint32_t v = s->lru_head;
		ent *e = E(s, v);

		s->evictions++;
		u = drop_entry(s, bucket_of(s, key_hash(e->file, e->offset)), v);
		if (E(s, u)->size >= need)
			return carve(s, u, need);
	}
	return NIL;
}

static void lock(shard *s)   { pthread_mutex_lock(&s->mu); }
static void unlock(shard *s) { pthread_mutex_unlock(&s->mu); }

static void fill_handle(lsm_cache_handle *h, shard *s, uint32_t si, uint32_t u)
{
	h->data = ent_data(E(s, u));
	h->len = (size_t)E(s, u)->len;
	h->shard = si;
	h->entry = u;
}

/* ------------------------------------------------------------------ setup */

/* Buckets for a shard slice of `stride` bytes: a power of two, one per 1-2
 * KiB, so chains stay short (load 1/4-1/2 with 4 KiB blocks) for 0.3%. */
static uint32_t buckets_for(uint64_t stride)
{
	uint32_t nb = MIN_BUCKETS;

	while (nb < (1u << 30) && (uint64_t)nb * 2 * 1024 <= stride)
		nb *= 2;
	return nb;
}

static int shards_ok(int shards)
{
	return shards >= 1 && shards <= MAX_SHARDS && (shards & (shards - 1)) == 0;
}

size_t lsm_cache_min_size(int shards)
{
	if (!shards_ok(shards))
		return 0;
	return CACHE_HDR + (size_t)shards *
	       (SHARD_HDR + ALIGN64(MIN_BUCKETS * sizeof(uint32_t)) +
	        MIN_UNITS * UNIT);
}

static int shard_init(shard *s, uint64_t stride)
{
	pthread_mutexattr_t attr;
	uint64_t units;
	int rc;

	memset(s, 0, SHARD_HDR);
	if (pthread_mutexattr_init(&attr) != 0)
		return LSM_NOMEM;
	rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (rc == 0)
		rc = pthread_mutex_init(&s->mu, &attr);
	pthread_mutexattr_destroy(&attr);
	if (rc != 0)
		return LSM_NOMEM;
	s->nbuckets = buckets_for(stride);
	s->heap_off = SHARD_HDR + ALIGN64((uint64_t)s->nbuckets * sizeof(uint32_t));
	units = (stride - s->heap_off) / UNIT;
	s->nunits = (uint32_t)(units < MAX_UNITS ? units : MAX_UNITS);
	s->lru_head = s->lru_tail = NIL;
	memset(buckets(s), 0xff, (size_t)s->nbuckets * sizeof(uint32_t));
	memset(s->bins, 0xff, sizeof s->bins);
	s->free_units = s->nunits;
	make_free(s, 0, s->nunits);
	return LSM_OK;
}

int lsm_cache_init(void *mem, size_t size, int shards)
{
	lsm_cache *c = mem;
	size_t min = lsm_cache_min_size(shards);

	if (mem == NULL || ((uintptr_t)mem & 7) != 0 || min == 0 || size < min)
		return LSM_INVALID;
	memset(c, 0, CACHE_HDR);
	c->nshards = (uint32_t)shards;
	c->stride = ((size - CACHE_HDR) / (uint64_t)shards) & ~(uint64_t)63;
	c->size = CACHE_HDR + c->stride * (uint64_t)shards;
	for (int i = 0; i < shards; i++) {
		int rc = shard_init(shard_at(c, (uint32_t)i), c->stride);

		if (rc != LSM_OK)
			return rc;
	}
	/* Every shard has the same nunits.  An eighth of a heap bounds the
	 * evictions one insert can cause and the memory one block can take. */
	c->max_len = (uint64_t)(shard_at(c, 0)->nunits / 8) * UNIT - sizeof(ent);
	c->version = CACHE_VERSION;
	/* Last, so a range left half-formatted never attaches. */
	c->magic = CACHE_MAGIC;
	return LSM_OK;
}

lsm_cache *lsm_cache_attach(void *mem)
{
	lsm_cache *c = mem;

	if (mem == NULL || ((uintptr_t)mem & 7) != 0 || c->magic != CACHE_MAGIC ||
	    c->version != CACHE_VERSION || !shards_ok((int)c->nshards) ||
	    c->stride == 0 || c->size != CACHE_HDR + c->stride * c->nshards)
		return NULL;
	return c;
}

/* ------------------------------------------------------------ operations */

int lsm_cache_lookup(lsm_cache *c, uint64_t file, uint64_t offset,
                     lsm_cache_handle *h)
{
	uint64_t hash = key_hash(file, offset);
	uint32_t si, u;
	shard *s;

	if (c == NULL || h == NULL)
		return LSM_INVALID;
	si = shard_of(c, hash);
	s = shard_at(c, si);
	lock(s);
	u = table_find(s, hash, file, offset);
	if (u == NIL) {
		s->misses++;
		unlock(s);
		return LSM_NOTFOUND;
	}
	if (E(s, u)->refs == UINT32_MAX) {   /* 4G handles: a miss, not a wrap */
		s->misses++;
		unlock(s);
		return LSM_NOTFOUND;
	}
	if (E(s, u)->refs++ == 0)
		lru_remove(s, u);
	s->hits++;
	fill_handle(h, s, si, u);
	unlock(s);
	return LSM_OK;
}

int lsm_cache_insert(lsm_cache *c, uint64_t file, uint64_t offset,
                     const void *data, size_t len, lsm_cache_handle *h)
{
	uint64_t hash = key_hash(file, offset);
	uint32_t si, u, old, *head;
	shard *s;
	ent *e;

	if (c == NULL || h == NULL || (data == NULL && len > 0))
		return LSM_INVALID;
	if (len > c->max_len)
		return LSM_TOOBIG;
	si = shard_of(c, hash);
	s = shard_at(c, si);

	lock(s);
	u = alloc_units(s, units_for(len));
	if (u == NIL) {
		s->insert_busy++;
		unlock(s);
		return LSM_BUSY;
	}
	e = E(s, u);
	e->refs = 1;                 /* pending: private to us (E1) */
	e->hnext = e->lprev = e->lnext = NIL;
	e->file = file;
	e->offset = offset;
	e->len = len;
	unlock(s);

	/* Outside the lock: nobody can reach a pending extent.  The critical
	 * section that links it publishes these bytes to every later lookup,
	 * which takes the same lock (E4). */
	if (len > 0)
		memcpy(ent_data(e), data, len);

	lock(s);
	head = bucket_of(s, hash);
	old = table_find(s, hash, file, offset);
	if (old != NIL)
		drop_entry(s, head, old);
	e->hnext = *head;
	*head = u;
	e->flags |= F_LIVE;
	s->entries++;
	s->inserts++;
	fill_handle(h, s, si, u);
	unlock(s);
	return LSM_OK;
}

void lsm_cache_release(lsm_cache *c, lsm_cache_handle *h)
{
	shard *s;
	ent *e;

	if (c == NULL || h == NULL || h->shard >= c->nshards)
		return;
	s = shard_at(c, h->shard);
	if (h->entry >= s->nunits)           /* also a released handle (NIL) */
		return;
	lock(s);
	e = E(s, h->entry);
	/* A handle that is not ours to release changes nothing. */
	if ((e->flags & F_USED) && e->refs > 0 && h->data == ent_data(e) &&
	    --e->refs == 0) {
		if (e->flags & F_LIVE)
			lru_append(s, h->entry);
		else
			extent_free(s, h->entry);
	}
	unlock(s);
	h->data = NULL;
	h->len = 0;
	h->entry = NIL;
}

void lsm_cache_erase_file(lsm_cache *c, uint64_t file)
{
	if (c == NULL)
		return;
	for (uint32_t si = 0; si < c->nshards; si++) {
		shard *s = shard_at(c, si);

		for (uint32_t b = 0; b < s->nbuckets; b += ERASE_BATCH) {
			uint32_t end = b + ERASE_BATCH < s->nbuckets ?
			               b + ERASE_BATCH : s->nbuckets;

			lock(s);
			for (uint32_t i = b; i < end; i++) {
				uint32_t *head = &buckets(s)[i], u = *head;

				while (u != NIL) {
					uint32_t next = E(s, u)->hnext;

					if (E(s, u)->file == file)
						drop_entry(s, head, u);
					u = next;
				}
			}
			unlock(s);
		}
	}
}

void lsm_cache_get_stats(lsm_cache *c, lsm_cache_stats *st)
{
	if (st == NULL)
		return;
	memset(st, 0, sizeof *st);
	if (c == NULL)
		return;
	for (uint32_t si = 0; si < c->nshards; si++) {
		shard *s = shard_at(c, si);

		lock(s);
		st->capacity += (uint64_t)s->nunits * UNIT;
		st->usage += s->used_units * UNIT;
		st->entries += s->entries;
		st->hits += s->hits;
		st->misses += s->misses;
		st->inserts += s->inserts;
		st->evictions += s->evictions;
		st->insert_busy += s->insert_busy;
		unlock(s);
	}
}

/* ------------------------------------------------------------------ check */

/* Checks A1-A4 and E1-E3 of one locked shard; every walk is bounded by
 * nunits, so a corrupt list cannot loop forever. */
static int shard_check(shard *s)
{
	uint64_t used = 0, freeu = 0, nfree = 0, live = 0, unpinned = 0;
	uint64_t lru = 0, lru_u = 0;
	uint32_t u, prev, n = s->nunits;
	int prev_free = 0;

	for (u = 0; u < n; u += E(s, u)->size) {            /* A1-A3, E1 */
		ent *e = E(s, u);
		int is_free = !(e->flags & F_USED);

		if (e->size == 0 || e->size > n - u ||
		    !!(e->flags & F_PREV_FREE) != prev_free ||
		    (is_free && (prev_free || *footer(s, u, e->size) != e->size)) ||
		    (!is_free && ((!(e->flags & F_LIVE) && e->refs == 0) ||
		                  units_for((size_t)e->len) != e->size)))
			return LSM_CORRUPTION;
		*(is_free ? &freeu : &used) += e->size;
		nfree += (uint64_t)is_free;
		prev_free = is_free;
	}
	if (u != n || used != s->used_units || freeu != s->free_units)
		return LSM_CORRUPTION;

	for (unsigned b = 0; b < NBINS; b++) {               /* A4 */
		if (!!(s->bitmap[b / 64] & (1ull << (b % 64))) != (s->bins[b] != NIL))
			return LSM_CORRUPTION;
		for (prev = NIL, u = s->bins[b]; u != NIL; prev = u, u = E(s, u)->lnext) {
			if (u >= n || nfree-- == 0 || (E(s, u)->flags & F_USED) ||
			    bin_of(E(s, u)->size) != b || E(s, u)->lprev != prev)
				return LSM_CORRUPTION;
		}
	}
	if (nfree != 0)
		return LSM_CORRUPTION;

	for (uint32_t b = 0; b < s->nbuckets; b++) {         /* E3 */
		for (u = buckets(s)[b]; u != NIL; u = E(s, u)->hnext) {
			ent *e = u < n ? E(s, u) : NULL;
			uint64_t k = 0;

			if (e == NULL || ++live > s->entries ||
			    (e->flags & (F_USED | F_LIVE)) != (F_USED | F_LIVE) ||
			    (key_hash(e->file, e->offset) & (s->nbuckets - 1)) != b)
				return LSM_CORRUPTION;
			unpinned += e->refs == 0;
			for (uint32_t v = e->hnext; v != NIL; v = E(s, v)->hnext)
				if (v >= n || ++k > s->entries ||
				    (E(s, v)->file == e->file && E(s, v)->offset == e->offset))
					return LSM_CORRUPTION;
		}
	}
	if (live != s->entries)
		return LSM_CORRUPTION;

	for (prev = NIL, u = s->lru_head; u != NIL; prev = u, u = E(s, u)->lnext) {
		ent *e = u < n ? E(s, u) : NULL;                  /* E2 */

		if (e == NULL || ++lru > unpinned || !(e->flags & F_LIVE) ||
		    e->refs != 0 || e->lprev != prev)
			return LSM_CORRUPTION;
		lru_u += e->size;
	}
	if (lru != unpinned || prev != s->lru_tail || lru_u != s->lru_units)
		return LSM_CORRUPTION;
	return LSM_OK;
}

int lsm_cache_check(lsm_cache *c)
{
	if (lsm_cache_attach(c) == NULL)
		return LSM_CORRUPTION;
	for (uint32_t si = 0; si < c->nshards; si++) {
		shard *s = shard_at(c, si);
		int rc;

		lock(s);
		rc = shard_check(s);
		unlock(s);
		if (rc != LSM_OK)
			return rc;
	}
	return LSM_OK;
}
