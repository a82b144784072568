/*
 * merge.c — one sorted cursor over many: the k-way merging iterator.
 *
 * Children (memtables, L0 tables, one iterator per deeper level) each yield
 * internal keys in internal-key order; the merge yields the union in the
 * same order.  A binary min-heap holds the valid children keyed by their
 * current entry, so next() costs O(log k) comparisons.
 *
 * Ties: two children never hold the same (user key, trailer) — sequences
 * are unique per entry — so the order among equal keys is the trailer
 * order and needs no tie-break.  If a corrupt source did repeat one, the
 * heap still yields both, each exactly once.
 *
 * Errors: a child that turns invalid with a non-OK status poisons the merge:
 * the merge becomes invalid and reports that status, because skipping the
 * child would silently hide its keys (a wrong answer, not an error).
 *
 * Invariants:
 *   - heap[0..n) holds exactly the valid children, heap-ordered;
 *   - the merge is valid iff n > 0 and status is LSM_OK;
 *   - the merge owns its children and destroys them with itself.
 */
#include <stdlib.h>

#include "dbint.h"

typedef struct merge_iter {
	lsm_iiter base;
	lsm_iiter **child;      /* all children, owned */
	int nchild;
	lsm_iiter **heap;       /* the valid ones, min-heap */
	int n;
	int status;
} merge_iter;

static int child_less(lsm_iiter *a, lsm_iiter *b)
{
	size_t alen, blen;
	const uint8_t *ak = a->key(a, &alen);
	const uint8_t *bk = b->key(b, &blen);

	return lsm_ikey_compare(ak, alen, a->trailer(a), bk, blen, b->trailer(b)) < 0;
}

static void sift_down(merge_iter *m, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, min = i;
		lsm_iiter *t;

		if (l < m->n && child_less(m->heap[l], m->heap[min]))
			min = l;
		if (r < m->n && child_less(m->heap[r], m->heap[min]))
			min = r;
		if (min == i)
			return;
		t = m->heap[i];
		m->heap[i] = m->heap[min];
		m->heap[min] = t;
		i = min;
	}
}

/* Rebuilds the heap from the children's positions, noting any failure. */
static void rebuild(merge_iter *m)
{
	m->n = 0;
	for (int i = 0; i < m->nchild; i++) {
		lsm_iiter *c = m->child[i];

		if (c->valid(c))
			m->heap[m->n++] = c;
		else if (c->status(c) != LSM_OK && m->status == LSM_OK)
			m->status = c->status(c);
	}
	for (int i = m->n / 2 - 1; i >= 0; i--)
		sift_down(m, i);
}

static int merge_valid(const lsm_iiter *it)
{
	const merge_iter *m = (const merge_iter *)it;

	return m->n > 0 && m->status == LSM_OK;
}

/* Whether child c stands at or after (key, trailer). */
static int child_at_or_after(lsm_iiter *c, const void *key, size_t klen, uint64_t trailer)
{
	size_t clen;
	const uint8_t *ck = c->key(c, &clen);

	return lsm_ikey_compare(ck, clen, c->trailer(c), key, klen, trailer) >= 0;
}

#define MERGE_STEPS_BEFORE_SEEK 4

/*
 * A seek forward from where the merge stands (a reader passing a run of
 * versions of one key) moves only the children still before the target,
 * and those by a few steps first (most hold one version of the key, a
 * step is cheaper than a seek): the others are there already, and an
 * exhausted child has nothing after it.  Any other seek moves every child.
 */
static void merge_seek(lsm_iiter *it, const void *key, size_t klen, uint64_t trailer)
{
	merge_iter *m = (merge_iter *)it;
	int forward = merge_valid(it) &&
		!child_at_or_after(m->heap[0], key, klen, trailer) ? 1 : 0;

	for (int i = 0; i < m->nchild; i++) {
		lsm_iiter *c = m->child[i];

		if (forward) {
			for (int step = 0; step < MERGE_STEPS_BEFORE_SEEK; step++) {
				if (!c->valid(c) || child_at_or_after(c, key, klen, trailer))
					break;
				c->next(c);
			}
			if (!c->valid(c) || child_at_or_after(c, key, klen, trailer))
				continue;
		}
		c->seek(c, key, klen, trailer);
	}
	rebuild(m);
}

static void merge_seek_to_first(lsm_iiter *it)
{
	merge_iter *m = (merge_iter *)it;

	for (int i = 0; i < m->nchild; i++)
		m->child[i]->seek_to_first(m->child[i]);
	rebuild(m);
}

static void merge_next(lsm_iiter *it)
{
	merge_iter *m = (merge_iter *)it;
	lsm_iiter *top;

	if (!merge_valid(it))
		return;
	top = m->heap[0];
	top->next(top);
	if (!top->valid(top)) {
		if (top->status(top) != LSM_OK) {
			m->status = top->status(top);
			return;
		}
		m->heap[0] = m->heap[--m->n];
	}
	if (m->n > 0)
		sift_down(m, 0);
}

static const uint8_t *merge_key(const lsm_iiter *it, size_t *klen)
{
	const merge_iter *m = (const merge_iter *)it;

	return m->heap[0]->key(m->heap[0], klen);
}

static uint64_t merge_trailer(const lsm_iiter *it)
{
	const merge_iter *m = (const merge_iter *)it;

	return m->heap[0]->trailer(m->heap[0]);
}

static const uint8_t *merge_value(const lsm_iiter *it, size_t *vlen)
{
	const merge_iter *m = (const merge_iter *)it;

	return m->heap[0]->value(m->heap[0], vlen);
}

static int merge_status(const lsm_iiter *it)
{
	return ((const merge_iter *)it)->status;
}

static void merge_destroy(lsm_iiter *it)
{
	merge_iter *m = (merge_iter *)it;

	for (int i = 0; i < m->nchild; i++)
		if (m->child[i])
			m->child[i]->destroy(m->child[i]);
	free(m->child);
	free(m->heap);
	free(m);
}

static const lsm_iiter merge_vtable = {
	merge_seek, merge_seek_to_first, merge_next, merge_valid, merge_key,
	merge_trailer, merge_value, merge_status, merge_destroy,
};

lsm_iiter *lsm_merge_iter_create(lsm_iiter **children, int n)
{
	merge_iter *m;

	if (n == 1)
		return children[0];
	m = calloc(1, sizeof *m);
	if (m)
		m->child = calloc((size_t)(n > 0 ? n : 1), sizeof *m->child);
	if (m && m->child)
		m->heap = calloc((size_t)(n > 0 ? n : 1), sizeof *m->heap);
	if (m == NULL || m->child == NULL || m->heap == NULL) {
		for (int i = 0; i < n; i++)
			children[i]->destroy(children[i]);
		if (m) {
			free(m->child);
			free(m);
		}
		return NULL;
	}
	m->base = merge_vtable;
	for (int i = 0; i < n; i++)
		m->child[i] = children[i];
	m->nchild = n;
	return &m->base;
}
