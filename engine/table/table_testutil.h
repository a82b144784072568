/*
 * table_testutil.h — shared by the table tests (table_test.c,
 * table_damage_test.c): an in-memory model of a table's contents, random
 * keys and values, a builder driver, and checkers that compare a table with
 * the model.  Include after nothing else of the test framework: it pulls in
 * testutil.h (which supplies main()).
 *
 * The expected contents always come from the model (a sorted array of
 * entries), never from the code under test.
 */
#ifndef LSM_TABLE_TESTUTIL_H
#define LSM_TABLE_TESTUTIL_H

#include <errno.h>
#include <stdlib.h>

#include "lsm.h"
#include "cache.h"
#include "env_fault.h"
#include "format.h"
#include "table.h"

#include "testutil.h"

/* ------------------------------------------------------------ the model */

typedef struct ent {
	uint8_t  *key;
	size_t    klen;
	uint64_t  seq;
	int       type;
	uint8_t  *val;
	size_t    vlen;
} ent;

typedef struct rdel_m {
	uint8_t  *start;
	size_t    slen;
	uint8_t  *end;
	size_t    elen;
	uint64_t  seq;
} rdel_m;

typedef struct model {
	ent      *e;
	size_t    n;
	rdel_m   *r;
	size_t    nr;
} model;

static inline int ent_cmp(const void *x, const void *y)
{
	const ent *a = x, *b = y;

	return lsm_ikey_compare(a->key, a->klen, lsm_pack_trailer(a->seq, a->type),
	                        b->key, b->klen, lsm_pack_trailer(b->seq, b->type));
}

static inline uint8_t *dup_bytes(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	if (n)
		memcpy(d, p, n);
	return d;
}

static inline void model_free(model *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->e[i].key);
		free(m->e[i].val);
	}
	for (size_t i = 0; i < m->nr; i++) {
		free(m->r[i].start);
		free(m->r[i].end);
	}
	free(m->e);
	free(m->r);
	memset(m, 0, sizeof *m);
}

/* A key over a small alphabet (shared prefixes) with some 0x00 / 0xff. */
static inline size_t gen_key(test_rng *r, uint8_t *buf, size_t maxlen)
{
	size_t n = 1 + test_rng_uniform(r, maxlen);

	for (size_t i = 0; i < n; i++) {
		uint64_t c = test_rng_uniform(r, 10);

		buf[i] = c == 0 ? 0xff : c == 1 ? 0x00 : (uint8_t)('a' + c % 4);
	}
	return n;
}

/* Values: mostly small, some compressible, a few bigger than a block. */
static inline uint8_t *gen_value(test_rng *r, size_t block_size, size_t *vlen)
{
	uint64_t kind = test_rng_uniform(r, 100);
	size_t n;
	uint8_t *v;

	if (kind < 1)
		n = block_size + test_rng_uniform(r, 2 * block_size);
	else if (kind < 2)
		n = 2 * block_size + test_rng_uniform(r, 2 * block_size);
	else if (kind < 50)
		n = test_rng_uniform(r, 60);
	else
		n = test_rng_uniform(r, 200);
	v = malloc(n ? n : 1);
	if (kind < 1 || (kind >= 2 && kind < 50))
		test_rng_fill(r, v, n);
	else
		for (size_t i = 0; i < n; i++)
			v[i] = (uint8_t)('A' + (i / 7) % 3);
	*vlen = n;
	return v;
}

/*
 * nkeys distinct user keys, each with 1..maxver versions (distinct
 * sequences, PUT or DELETE), sorted in internal-key order.
 */
static inline void model_gen(model *m, test_rng *r, size_t nkeys, int maxver,
                      size_t maxklen, size_t block_size)
{
	uint8_t kb[256];
	size_t cap = nkeys * (size_t)maxver, n = 0;

	memset(m, 0, sizeof *m);
	m->e = calloc(cap ? cap : 1, sizeof *m->e);
	for (size_t i = 0; i < nkeys; i++) {
		size_t klen = gen_key(r, kb, maxklen);
		int nv = 1 + (int)test_rng_uniform(r, (uint64_t)maxver);
		uint64_t seq = 1 + test_rng_uniform(r, 1000000);

		for (int v = 0; v < nv; v++) {
			ent *e = &m->e[n++];

			e->key = dup_bytes(kb, klen);
			e->klen = klen;
			e->seq = seq + (uint64_t)v * (1 + test_rng_uniform(r, 5));
			e->type = test_rng_uniform(r, 5) == 0 ? LSM_TYPE_DELETE : LSM_TYPE_PUT;
			if (e->type == LSM_TYPE_PUT)
				e->val = gen_value(r, block_size, &e->vlen);
			else
				e->val = NULL;
		}
	}
	qsort(m->e, n, sizeof *m->e, ent_cmp);
	/* Random keys may repeat: drop duplicate (key, seq) pairs. */
	m->n = 0;
	for (size_t i = 0; i < n; i++) {
		if (m->n > 0 && m->e[m->n - 1].klen == m->e[i].klen &&
		    memcmp(m->e[m->n - 1].key, m->e[i].key, m->e[i].klen) == 0 &&
		    m->e[m->n - 1].seq == m->e[i].seq) {
			free(m->e[i].key);
			free(m->e[i].val);
			continue;
		}
		m->e[m->n++] = m->e[i];
	}
}

static inline void model_add_rdel(model *m, const char *s, const char *e, uint64_t seq)
{
	rdel_m *r;

	m->r = realloc(m->r, (m->nr + 1) * sizeof *m->r);
	r = &m->r[m->nr++];
	r->slen = strlen(s);
	r->start = dup_bytes(s, r->slen);
	r->elen = strlen(e);
	r->end = dup_bytes(e, r->elen);
	r->seq = seq;
}

static inline int build(lsm_env *env, const char *path, const lsm_table_options *o,
                 const model *m, lsm_table_props *props)
{
	lsm_table_builder *b;
	int rc = lsm_table_builder_open(env, path, o, &b);

	if (rc != LSM_OK)
		return rc;
	for (size_t i = 0; i < m->n && rc == LSM_OK; i++) {
		const ent *e = &m->e[i];

		rc = lsm_table_builder_add(b, e->key, e->klen,
		                           lsm_pack_trailer(e->seq, e->type), e->val, e->vlen);
	}
	for (size_t i = 0; i < m->nr && rc == LSM_OK; i++)
		rc = lsm_table_builder_add_range_delete(b, m->r[i].start, m->r[i].slen,
		                                        m->r[i].end, m->r[i].elen,
		                                        m->r[i].seq);
	if (rc != LSM_OK) {
		/* finish must report the sticky error and clean up */
		int frc = lsm_table_builder_finish(b, props);

		return frc == rc ? rc : -1000 - frc;
	}
	return lsm_table_builder_finish(b, props);
}

/*
 * Iterates the whole table and compares it with the model.  allow_corrupt:
 * the walk may stop early with LSM_CORRUPTION (entries so far must match).
 * Returns 0 when fine.
 */
static inline int check_iter_all(lsm_table *t, const model *m, int allow_corrupt)
{
	lsm_iiter *it;
	size_t i = 0;
	int rc;

	if (lsm_table_iter_create(t, 1, &it) != LSM_OK)
		return 1;
	for (it->seek_to_first(it); it->valid(it); it->next(it), i++) {
		size_t klen, vlen;
		const uint8_t *k = it->key(it, &klen), *v = it->value(it, &vlen);
		const ent *e = &m->e[i];

		if (i >= m->n || klen != e->klen || memcmp(k, e->key, klen) != 0 ||
		    it->trailer(it) != lsm_pack_trailer(e->seq, e->type) ||
		    vlen != e->vlen || (vlen && memcmp(v, e->val, vlen) != 0)) {
			TEST_FAIL_AT("entry %zu differs", i);
			it->destroy(it);
			return 1;
		}
	}
	rc = it->status(it);
	it->destroy(it);
	if (rc == LSM_CORRUPTION && allow_corrupt)
		return 0;
	if (rc != LSM_OK || i != m->n) {
		TEST_FAIL_AT("iteration ended at %zu of %zu with %d", i, m->n, rc);
		return 1;
	}
	return 0;
}

/* Index of the entry a get of (key, read_seq) must return, or -1. */
static inline long expect_get(const model *m, const uint8_t *key, size_t klen,
                       uint64_t read_seq)
{
	size_t lo = 0, hi = m->n;

	/* first entry >= (key, pack(read_seq, SEEK)) */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const ent *e = &m->e[mid];

		if (lsm_ikey_compare(e->key, e->klen, lsm_pack_trailer(e->seq, e->type),
		                     key, klen, lsm_pack_trailer(read_seq, LSM_TYPE_SEEK)) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->n && m->e[lo].klen == klen && memcmp(m->e[lo].key, key, klen) == 0)
		return (long)lo;
	return -1;
}

/* Checks one get against the model; allow_corrupt as above.  0 when fine. */
static inline int check_get(lsm_table *t, const model *m, const uint8_t *key,
                     size_t klen, uint64_t read_seq, int allow_corrupt)
{
	long x = expect_get(m, key, klen, read_seq);
	uint64_t tr;
	void *v;
	size_t vlen;
	int rc = lsm_table_get_copy(t, key, klen, read_seq, &tr, &v, &vlen);

	if (rc == LSM_CORRUPTION && allow_corrupt)
		return 0;
	if (x < 0) {
		if (rc != LSM_NOTFOUND) {
			TEST_FAIL_AT("get of an absent version returned %d", rc);
			free(v);
			return 1;
		}
		return 0;
	}
	if (rc != LSM_OK || tr != lsm_pack_trailer(m->e[x].seq, m->e[x].type) ||
	    vlen != m->e[x].vlen || (vlen && memcmp(v, m->e[x].val, vlen) != 0)) {
		TEST_FAIL_AT("get at seq %llu returned %d (want entry %ld)",
		             (unsigned long long)read_seq, rc, x);
		free(v);
		return 1;
	}
	free(v);
	return 0;
}

static inline char *path_in(const char *dir, const char *name)
{
	static char buf[4][600];
	static int k;
	char *p = buf[k++ & 3];

	snprintf(p, sizeof buf[0], "%s/%s", dir, name);
	return p;
}

static inline int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static inline uint8_t *read_whole(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	*n = 0;
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(len > 0 ? (size_t)len : 1);
	*n = fread(buf, 1, (size_t)len, f);
	fclose(f);
	return buf;
}

static inline void write_whole(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL)
		return;
	if (n)
		fwrite(p, 1, n, f);
	fclose(f);
}


static inline void opts_small(lsm_table_options *o)
{
	lsm_table_options_init(o);
	o->block_size = 256;
}

#endif
