/*
 * memtable.c — the memtable: batches become skip-list nodes in an arena.
 *
 * A writer sizes a batch's nodes (lsm_mem_batch_bytes) while it holds the
 * write lock and allocates them as one chunk, so a batch either fits whole
 * or is refused before anything is logged.  It then builds and links the
 * nodes without any lock (lsm_mem_insert_batch); node heights depend only on
 * sequences, so both steps agree on every node's size.
 *
 * Reads (lsm_mem_get, the memtable iterator) never block and see a node
 * only once it is fully built; readers filter by sequence themselves, so a
 * node of a batch that is not yet published is simply skipped.
 */
#include <stdlib.h>
#include <string.h>

#include "dbint.h"
#include "hash.h"

/*
 * The memtable's bloom filter.  A point read that misses a memtable still
 * pays a whole skip-list descent, a chain of cache misses; with several
 * memtables in front of the SSTables that was a third of a random read.
 * One bit array per arena (1/64 of it, ~16 bits per typical entry),
 * blocked: the k = 4 bits of a key sit in one 64-byte line, so an insert
 * costs one cache miss and a lookup at most one.  Bits are set before the
 * node is linked, and the node is visible only after its batch is
 * published (release/acquire on visible_seq), so a reader that could see
 * the key always sees its bits.  Concurrent writers OR bits in atomically.
 */
#define BLOOM_K 4

void lsm_mem_bloom_init(lsm_arena *a)
{
	size_t lines = a->size / 64 / 64;       /* 1/64 of the arena */
	uint32_t off;

	a->bloom_lines = 0;
	if (lines == 0 || (off = lsm_arena_alloc(a, lines * 64 + 64)) == 0)
		return;
	off = (off + 63) & ~63u;
	memset((char *)a + off, 0, lines * 64);
	a->bloom_off = off;
	a->bloom_lines = (uint32_t)lines;
}

static _Atomic uint64_t *bloom_line(const lsm_arena *a, uint64_t h)
{
	return (_Atomic uint64_t *)((char *)a + a->bloom_off) +
	       (size_t)((h >> 32) % a->bloom_lines) * 8;
}

static void bloom_set(lsm_arena *a, uint64_t h)
{
	_Atomic uint64_t *line = bloom_line(a, h);
	uint64_t delta = (h >> 17) | (h << 47);

	for (int i = 0; i < BLOOM_K; i++, h += delta) {
		unsigned bit = (unsigned)(h & 511);

		atomic_fetch_or_explicit(&line[bit >> 6], UINT64_C(1) << (bit & 63),
		                         memory_order_relaxed);
	}
}

int lsm_mem_may_contain(const lsm_arena *a, const void *key, size_t klen)
{
	uint64_t h, delta;
	_Atomic uint64_t *line;

	if (a->bloom_lines == 0)
		return 1;
	h = lsm_xxh64(key, klen, 0);
	line = bloom_line(a, h);
	delta = (h >> 17) | (h << 47);
	for (int i = 0; i < BLOOM_K; i++, h += delta) {
		unsigned bit = (unsigned)(h & 511);

		if (!(atomic_load_explicit(&line[bit >> 6], memory_order_relaxed) &
		      (UINT64_C(1) << (bit & 63))))
			return 0;
	}
	return 1;
}

static int size_visit(void *arg, uint64_t seq, const lsm_batch_entry *e)
{
	*(size_t *)arg += lsm_sl_node_size(e->klen, e->vlen, lsm_sl_height_for(seq));
	return LSM_OK;
}

size_t lsm_mem_batch_bytes(const uint8_t *rep, size_t len, uint64_t first_seq)
{
	size_t total = 0;

	lsm_batch_rep_iterate(rep, len, first_seq, size_visit, &total);
	return total;
}

/*
 * Inserting a batch.  Each entry's bloom line is a cache miss, and the
 * locked ORs that set its bits let no other memory access overtake them:
 * a COPY spent a fifth of its time waiting for bloom lines one at a time.
 * So entries are staged STAGE at a time, their lines prefetched (misses
 * that overlap), then built, marked in the bloom and linked in order.
 */
#define STAGE 32

typedef struct staged_entry {
	uint64_t seq;
	uint64_t hash;                 /* of the key, for the bloom */
	lsm_batch_entry e;             /* points into the batch's rep */
} staged_entry;

struct insert_arg {
	lsm_arena *arena;
	uint32_t off;
	lsm_sl_splice splice;          /* a batch's rows often ascend */
	int n;
	staged_entry st[STAGE];
};

static void insert_staged(struct insert_arg *ia)
{
	lsm_arena *a = ia->arena;

	for (int i = 0; i < ia->n; i++) {
		const staged_entry *s = &ia->st[i];
		int height = lsm_sl_height_for(s->seq);
		uint32_t off = ia->off;

		lsm_sl_node_init(a, off, s->e.key, s->e.klen, lsm_pack_trailer(s->seq, s->e.type),
		                 s->e.val, s->e.vlen, height);
		ia->off += (uint32_t)lsm_sl_node_size(s->e.klen, s->e.vlen, height);
		if (s->e.type == LSM_TYPE_RANGE_DELETE) {
			lsm_sl_side_push(a, off);
		} else {
			if (a->bloom_lines != 0)
				bloom_set(a, s->hash);   /* before the node is linked */
			lsm_sl_insert_splice(a, off, &ia->splice);
		}
	}
	ia->n = 0;
}

static int stage_visit(void *arg, uint64_t seq, const lsm_batch_entry *e)
{
	struct insert_arg *ia = arg;
	staged_entry *s = &ia->st[ia->n];

	s->seq = seq;
	s->e = *e;
	if (e->type != LSM_TYPE_RANGE_DELETE && ia->arena->bloom_lines != 0) {
		s->hash = lsm_xxh64(e->key, e->klen, 0);
		__builtin_prefetch(bloom_line(ia->arena, s->hash), 1);
	}
	if (++ia->n == STAGE)
		insert_staged(ia);
	return LSM_OK;
}

void lsm_mem_insert_batch(lsm_arena *a, uint32_t chunk, const uint8_t *rep,
                          size_t len, uint64_t first_seq)
{
	struct insert_arg ia;

	ia.arena = a;
	ia.off = chunk;
	ia.splice.last = 0;
	ia.n = 0;
	lsm_batch_rep_iterate(rep, len, first_seq, stage_visit, &ia);
	insert_staged(&ia);
}

int lsm_mem_get_version(const lsm_arena *a, const void *key, size_t klen,
                        uint64_t seq, uint64_t *trailer,
                        const uint8_t **val, size_t *vlen)
{
	uint32_t off = lsm_sl_seek(a, key, klen, lsm_pack_trailer(seq, LSM_TYPE_SEEK));
	const lsm_sl_node *n;

	if (off == 0)
		return LSM_NOTFOUND;
	n = lsm_sl_node_at(a, off);
	if (n->klen != klen || (klen && memcmp(lsm_sl_node_key(n), key, klen) != 0))
		return LSM_NOTFOUND;
	*trailer = n->trailer;
	*val = lsm_sl_node_value(n);
	*vlen = n->vlen;
	return LSM_OK;
}

uint64_t lsm_mem_approximate_size(const lsm_arena *a, const void *start, size_t slen,
                                  const void *end, size_t elen)
{
	uint64_t entries = atomic_load_explicit(&a->entries, memory_order_relaxed);
	uint64_t used = atomic_load_explicit(&a->used, memory_order_relaxed);
	uint64_t lo, hi;

	if (entries == 0)
		return 0;
	lo = lsm_sl_estimate_below(a, start, slen);
	hi = lsm_sl_estimate_below(a, end, elen);
	if (hi <= lo)
		return 0;
	if (hi - lo > entries)
		return used;
	return (hi - lo) * (used / entries);
}

int lsm_mem_get(const lsm_arena *a, const void *key, size_t klen, uint64_t seq,
                const uint8_t **val, size_t *vlen, int *found_tombstone)
{
	uint32_t off = lsm_sl_seek(a, key, klen, lsm_pack_trailer(seq, LSM_TYPE_SEEK));
	const lsm_sl_node *n;

	*found_tombstone = 0;
	if (off == 0)
		return LSM_NOTFOUND;
	n = lsm_sl_node_at(a, off);
	if (n->klen != klen || memcmp(lsm_sl_node_key(n), key, klen) != 0)
		return LSM_NOTFOUND;
	if (lsm_trailer_type(n->trailer) == LSM_TYPE_DELETE) {
		*found_tombstone = 1;
		return LSM_NOTFOUND;
	}
	*val = lsm_sl_node_value(n);
	*vlen = n->vlen;
	return LSM_OK;
}

/* ---- the memtable as an internal iterator */
typedef struct mem_iter {
	lsm_iiter base;
	const lsm_arena *arena;
	uint32_t node;
	uint32_t ahead;                /* a node up to PREFETCH_DEPTH after node, or 0 */
	uint32_t gap;                  /* how many steps after node ahead is */
} mem_iter;

/*
 * Walking a memtable in key order visits nodes in random arena order, a
 * cache and TLB miss each.  A second cursor runs up to PREFETCH_DEPTH
 * nodes ahead and prefetches as it goes, so a node has been on its way
 * for several steps when the walk reaches it (with one step of lead a
 * flush spent a fifth of its time in these misses; six took a twentieth
 * off its CPU).  The cursor only hints: the
 * real step reloads the link, so a node linked meanwhile is not skipped.
 * After a seek the lead grows by one node per step, so a short scan pays
 * for few nodes it never reads.
 */
#define PREFETCH_DEPTH 6

static void advance_ahead(mem_iter *m)
{
	uint32_t nx = lsm_sl_next(m->arena, m->ahead);

	if (nx == 0)
		return;
	m->ahead = nx;
	m->gap++;
	__builtin_prefetch(lsm_sl_node_at(m->arena, nx));
}

static void start_ahead(mem_iter *m)
{
	m->ahead = m->node;
	m->gap = 0;
	if (m->node)
		advance_ahead(m);
}

static void step_ahead(mem_iter *m)
{
	if (m->gap <= 1) {
		start_ahead(m);          /* caught up (or at the end): restart */
		return;
	}
	m->gap--;
	advance_ahead(m);
	if (m->gap < PREFETCH_DEPTH)
		advance_ahead(m);
}

static const lsm_sl_node *mem_node(const lsm_iiter *it)
{
	const mem_iter *m = (const mem_iter *)it;

	return lsm_sl_node_at(m->arena, m->node);
}

static void mem_seek(lsm_iiter *it, const void *key, size_t klen, uint64_t trailer)
{
	mem_iter *m = (mem_iter *)it;

	m->node = lsm_sl_seek(m->arena, key, klen, trailer);
	start_ahead(m);
}

static void mem_seek_to_first(lsm_iiter *it)
{
	mem_iter *m = (mem_iter *)it;

	m->node = lsm_sl_first(m->arena);
	start_ahead(m);
}

static void mem_next(lsm_iiter *it)
{
	mem_iter *m = (mem_iter *)it;

	m->node = lsm_sl_next(m->arena, m->node);
	step_ahead(m);
}

static int mem_valid(const lsm_iiter *it)
{
	return ((const mem_iter *)it)->node != 0;
}

static const uint8_t *mem_key(const lsm_iiter *it, size_t *klen)
{
	const lsm_sl_node *n = mem_node(it);

	*klen = n->klen;
	return lsm_sl_node_key(n);
}

static uint64_t mem_trailer(const lsm_iiter *it)
{
	return mem_node(it)->trailer;
}

static const uint8_t *mem_value(const lsm_iiter *it, size_t *vlen)
{
	const lsm_sl_node *n = mem_node(it);

	*vlen = n->vlen;
	return lsm_sl_node_value(n);
}

static int mem_status(const lsm_iiter *it)
{
	(void)it;
	return LSM_OK;
}

static void mem_destroy(lsm_iiter *it)
{
	free(it);
}

lsm_iiter *lsm_mem_iter_create(const lsm_arena *a)
{
	mem_iter *m = calloc(1, sizeof *m);

	if (m == NULL)
		return NULL;
	m->base.seek = mem_seek;
	m->base.seek_to_first = mem_seek_to_first;
	m->base.next = mem_next;
	m->base.valid = mem_valid;
	m->base.key = mem_key;
	m->base.trailer = mem_trailer;
	m->base.value = mem_value;
	m->base.status = mem_status;
	m->base.destroy = mem_destroy;
	m->arena = a;
	return &m->base;
}

int lsm_mem_collect_rdels(const lsm_arena *a, lsm_rdel_set *s)
{
	for (uint32_t x = lsm_sl_side_first(a); x; x = lsm_sl_next(a, x)) {
		const lsm_sl_node *n = lsm_sl_node_at(a, x);
		int rc = lsm_rdel_add(s, lsm_sl_node_key(n), n->klen, lsm_sl_node_value(n),
		                      n->vlen, lsm_trailer_seq(n->trailer));

		if (rc != LSM_OK)
			return rc;
	}
	return LSM_OK;
}

/* ---- memtable slots (the life cycle is in dbint.h) */

/* 1 and pinned (in process slot p) when the slot holds a readable
 * memtable (ACTIVE or IMMUTABLE), else 0. */
static int memslot_pin(lsm_region *r, lsm_proc_slot *p, uint32_t slot)
{
	lsm_memslot *m = &r->mem[slot];
	uint32_t st = atomic_load(&m->state);

	if (st != LSM_MEM_ACTIVE && st != LSM_MEM_IMMUTABLE)
		return 0;                     /* nothing to read: no pin to undo */
	/* Increment first, then look: a claimer sets RESETTING first, then
	 * looks at the pins.  With both sides sequentially consistent, either
	 * we see RESETTING (and back off) or it sees our pin (and skips). */
	atomic_fetch_add(&p->mem_pins[slot], 1);
	st = atomic_load(&m->state);
	if (st == LSM_MEM_ACTIVE || st == LSM_MEM_IMMUTABLE)
		return 1;
	atomic_fetch_sub(&p->mem_pins[slot], 1);
	return 0;
}

static void memslot_unpin(lsm_proc_slot *p, uint32_t slot)
{
	atomic_fetch_sub(&p->mem_pins[slot], 1);
}

static int memslot_pinned(lsm_region *r, uint32_t slot)
{
	lsm_proc_slot *procs = lsm_region_procs(r);

	for (uint32_t i = 0; i < r->n_procs; i++)
		if (atomic_load(&procs[i].mem_pins[slot]) != 0)
			return 1;
	return 0;
}

int lsm_memslot_claim(lsm_region *r)
{
	for (uint32_t i = 0; i < r->n_mem; i++) {
		lsm_memslot *m = &r->mem[i];
		uint32_t st = atomic_load(&m->state);

		if (st != LSM_MEM_FREE && st != LSM_MEM_RETIRED)
			continue;
		atomic_store(&m->state, LSM_MEM_RESETTING);
		if (memslot_pinned(r, i)) {
			/* a reader still walks the old contents: not yet */
			atomic_store(&m->state, st);
			continue;
		}
		lsm_arena_init(lsm_slot_arena(r, i), r->arena_size);
		lsm_mem_bloom_init(lsm_slot_arena(r, i));
		atomic_store(&m->last_seq, 0);
		return (int)i;
	}
	return -1;
}

void lsm_memview_acquire(lsm_db *db, lsm_memview *v)
{
	lsm_region *r = db->region;

	v->n = 0;
	for (uint32_t i = 0; i < r->n_mem; i++)
		if (memslot_pin(r, db->proc, i))
			v->slot[v->n++] = i;
	/* newest first: insertion sort on gen, n is tiny.  gen is stable while
	 * pinned (only a claim, which needs readers == 0, changes it). */
	for (int i = 1; i < v->n; i++) {
		uint32_t s = v->slot[i];
		int j = i;

		while (j > 0 && r->mem[v->slot[j - 1]].gen < r->mem[s].gen) {
			v->slot[j] = v->slot[j - 1];
			j--;
		}
		v->slot[j] = s;
	}
}

void lsm_memview_release(lsm_db *db, lsm_memview *v)
{
	for (int i = 0; i < v->n; i++)
		memslot_unpin(db->proc, v->slot[i]);
	v->n = 0;
}
