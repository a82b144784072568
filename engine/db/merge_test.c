/*
 * merge_test.c — the k-way merging iterator against a sorted reference.
 *
 * Children are array-backed iterators over random internal keys; the merge
 * must yield exactly the sorted union, seek must land where a linear scan
 * of the union says, and a failing child must make the merge fail rather
 * than silently drop its keys.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "dbint.h"

typedef struct entry {
	char key[12];
	size_t klen;
	uint64_t trailer;
} entry;

typedef struct array_iter {
	lsm_iiter base;
	entry *e;
	int n, pos;
	int fail_at;            /* position at which next() fails, or -1 */
	int status;
} array_iter;

static int entry_cmp(const void *a, const void *b)
{
	const entry *x = a, *y = b;

	return lsm_ikey_compare(x->key, x->klen, x->trailer, y->key, y->klen, y->trailer);
}

static void a_seek(lsm_iiter *it, const void *key, size_t klen, uint64_t tr)
{
	array_iter *a = (array_iter *)it;

	for (a->pos = 0; a->pos < a->n; a->pos++)
		if (lsm_ikey_compare(a->e[a->pos].key, a->e[a->pos].klen, a->e[a->pos].trailer,
		                     key, klen, tr) >= 0)
			break;
}
static void a_first(lsm_iiter *it) { ((array_iter *)it)->pos = 0; }
static void a_next(lsm_iiter *it)
{
	array_iter *a = (array_iter *)it;

	if (++a->pos == a->fail_at)
		a->status = LSM_CORRUPTION;
}
static int a_valid(const lsm_iiter *it)
{
	const array_iter *a = (const array_iter *)it;

	return a->status == LSM_OK && a->pos < a->n;
}
static const uint8_t *a_key(const lsm_iiter *it, size_t *klen)
{
	const array_iter *a = (const array_iter *)it;

	*klen = a->e[a->pos].klen;
	return (const uint8_t *)a->e[a->pos].key;
}
static uint64_t a_trailer(const lsm_iiter *it)
{
	const array_iter *a = (const array_iter *)it;

	return a->e[a->pos].trailer;
}
static const uint8_t *a_value(const lsm_iiter *it, size_t *vlen)
{
	*vlen = 0;
	(void)it;
	return (const uint8_t *)"";
}
static int a_status(const lsm_iiter *it) { return ((const array_iter *)it)->status; }
static void a_destroy(lsm_iiter *it)
{
	free(((array_iter *)it)->e);
	free(it);
}

static const lsm_iiter array_vtable = {a_seek, a_first, a_next, a_valid, a_key,
                                       a_trailer, a_value, a_status, a_destroy};

static void random_key(test_rng *r, entry *e)
{
	e->klen = 1 + test_rng_next(r) % 4;
	for (size_t i = 0; i < e->klen; i++)
		e->key[i] = (char)('a' + test_rng_next(r) % 3);
}

/* k children with random sizes; every entry also goes to all[], with a
 * sequence unique across children. */
static lsm_iiter *build(test_rng *r, int k, entry *all, int *nall, int fail_child)
{
	lsm_iiter *kids[16];
	uint64_t seq = 1;

	*nall = 0;
	for (int c = 0; c < k; c++) {
		array_iter *a = calloc(1, sizeof *a);
		int n = (int)(test_rng_next(r) % 40);

		a->base = array_vtable;
		a->e = calloc((size_t)n + 1, sizeof(entry));
		a->n = n;
		a->fail_at = c == fail_child && n > 2 ? n / 2 : -1;
		for (int i = 0; i < n; i++) {
			random_key(r, &a->e[i]);
			a->e[i].trailer = lsm_pack_trailer(seq++, (int)(test_rng_next(r) % 2));
			all[(*nall)++] = a->e[i];
		}
		qsort(a->e, (size_t)n, sizeof(entry), entry_cmp);
		kids[c] = &a->base;
	}
	qsort(all, (size_t)*nall, sizeof(entry), entry_cmp);
	return lsm_merge_iter_create(kids, k);
}

static int same(lsm_iiter *m, const entry *e)
{
	size_t klen;
	const uint8_t *k = m->key(m, &klen);

	return klen == e->klen && memcmp(k, e->key, klen) == 0 && m->trailer(m) == e->trailer;
}

TEST(union_in_order)
{
	test_rng r;
	entry all[16 * 40];
	int nall;

	test_rng_seed(&r, 11);
	for (int round = 0; round < 300; round++) {
		int k = 1 + (int)(test_rng_next(&r) % 16);
		lsm_iiter *m = build(&r, k, all, &nall, -1);
		int i = 0;

		CHECK(m != NULL);
		for (m->seek_to_first(m); m->valid(m); m->next(m), i++) {
			CHECK(i < nall);
			CHECK(same(m, &all[i]));
		}
		CHECK_EQ_INT(i, nall);
		CHECK_OK(m->status(m));
		m->destroy(m);
	}
}

TEST(seek_lands_on_first_not_less)
{
	test_rng r;
	entry all[16 * 40];
	int nall;

	test_rng_seed(&r, 12);
	for (int round = 0; round < 200; round++) {
		lsm_iiter *m = build(&r, 1 + (int)(test_rng_next(&r) % 8), all, &nall, -1);

		for (int q = 0; q < 20; q++) {
			entry t;
			int i = 0;

			random_key(&r, &t);
			t.trailer = lsm_pack_trailer(test_rng_next(&r) % 400, LSM_TYPE_SEEK);
			while (i < nall && entry_cmp(&all[i], &t) < 0)
				i++;
			m->seek(m, t.key, t.klen, t.trailer);
			for (; i < nall; i++, m->next(m)) {
				CHECK(m->valid(m));
				CHECK(same(m, &all[i]));
			}
			CHECK(!m->valid(m));
		}
		m->destroy(m);
	}
}

TEST(failing_child_fails_the_merge)
{
	test_rng r;
	entry all[16 * 40];
	int nall, failed = 0;

	test_rng_seed(&r, 13);
	for (int round = 0; round < 100; round++) {
		lsm_iiter *m = build(&r, 4, all, &nall, 2);
		int i = 0;

		for (m->seek_to_first(m); m->valid(m); m->next(m), i++)
			CHECK(same(m, &all[i]));      /* never a wrong entry before */
		if (m->status(m) != LSM_OK) {
			CHECK_EQ_INT(m->status(m), LSM_CORRUPTION);
			CHECK(i < nall);
			failed++;
		} else {
			CHECK_EQ_INT(i, nall);        /* child 2 was too short to fail */
		}
		m->destroy(m);
	}
	CHECK(failed > 50);
}

TEST(no_children)
{
	lsm_iiter *m = lsm_merge_iter_create(NULL, 0);

	CHECK(m != NULL);
	m->seek_to_first(m);
	CHECK(!m->valid(m));
	CHECK_OK(m->status(m));
	m->destroy(m);
}

