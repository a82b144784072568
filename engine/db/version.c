/*
 * version.c — file metadata, version edits (encoding and decoding),
 * versions (applying edits) and the queries on them.
 *
 * Edit encoding: a sequence of fields, each a varint32 tag and its data,
 * so that fields can be added later under new tags.  Integers are varints;
 * an internal key is varint32 (user key length + 8), the user key, then the
 * trailer as fixed64.
 *   1 log number         varint64
 *   2 next file number   varint64
 *   3 last sequence      varint64 (<= LSM_MAX_SEQUENCE)
 *   4 compact pointer    varint32 level, internal key
 *   5 deleted file       varint32 level, varint64 number
 *   6 new file           varint32 level, varint64 number, varint64 size,
 *                        ikey smallest, ikey largest, varint64 smallest_seq,
 *                        varint64 largest_seq, varint64 entries,
 *                        varint64 range deletions
 * The encoder writes them in that order (scalars, pointers by level,
 * deletions, additions), so encode(decode(x)) == x for what it produced.
 *
 * Decoding invariants: every read is bounded by lsm_reader; an unknown tag,
 * a repeated scalar, a second pointer for one level, a repeated deletion or
 * added number, a level >= LSM_MAX_LEVELS, a file number 0, a key longer
 * than LSM_MAX_KEY_SIZE, smallest > largest or smallest_seq > largest_seq
 * is LSM_CORRUPTION.  Nothing decoded is trusted before it is checked.
 *
 * Version invariants: see version.h.  lsm_version_apply builds the whole new
 * version aside and checks it before returning it, so a refused edit leaves
 * nothing behind.
 */
#include <stdlib.h>
#include <string.h>

#include "version.h"

/* ------------------------------------------------------------ file meta */

lsm_file_meta *lsm_file_meta_new(const lsm_file_meta *t)
{
	size_t sl = t->smallest.len, ll = t->largest.len;
	lsm_file_meta *m = malloc(sizeof *m + sl + ll + 1);
	uint8_t *keys;

	if (m == NULL)
		return NULL;
	keys = (uint8_t *)(m + 1);
	if (sl)
		memcpy(keys, t->smallest.key, sl);
	if (ll)
		memcpy(keys + sl, t->largest.key, ll);
	atomic_init(&m->refs, 1);
	m->level = t->level;
	m->number = t->number;
	m->size = t->size;
	m->smallest = (lsm_ikey_ref){ keys, sl, t->smallest.trailer };
	m->largest = (lsm_ikey_ref){ keys + sl, ll, t->largest.trailer };
	m->smallest_seq = t->smallest_seq;
	m->largest_seq = t->largest_seq;
	m->entries = t->entries;
	m->range_dels = t->range_dels;
	return m;
}

void lsm_file_meta_ref(lsm_file_meta *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void lsm_file_meta_unref(lsm_file_meta *m)
{
	if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}

/* ------------------------------------------------------- key helpers */

/* Copies a key into dst (malloc'd; never a NULL pointer, even when empty,
 * so comparisons never see NULL). */
static int key_set(lsm_ikey_ref *dst, const void *key, size_t len, uint64_t trailer)
{
	uint8_t *p = malloc(len + 1);

	if (p == NULL)
		return LSM_NOMEM;
	if (len)
		memcpy(p, key, len);
	free((void *)dst->key);
	*dst = (lsm_ikey_ref){ p, len, trailer };
	return LSM_OK;
}

static void key_clear(lsm_ikey_ref *k)
{
	free((void *)k->key);
	*k = (lsm_ikey_ref){ NULL, 0, 0 };
}

static int ikey_cmp(const lsm_ikey_ref *a, const lsm_ikey_ref *b)
{
	return lsm_ikey_compare(a->key, a->len, a->trailer, b->key, b->len, b->trailer);
}

/* ------------------------------------------------------- edit building */

void lsm_edit_init(lsm_version_edit *e)
{
	memset(e, 0, sizeof *e);
}

void lsm_edit_free(lsm_version_edit *e)
{
	size_t i;
	int l;

	for (l = 0; l < LSM_MAX_LEVELS; l++)
		key_clear(&e->compact_ptr[l]);
	for (i = 0; i < e->nadded; i++)
		lsm_file_meta_unref(e->added[i]);
	free(e->added);
	free(e->deleted);
	lsm_edit_init(e);
}

void lsm_edit_set_log_number(lsm_version_edit *e, uint64_t n)
{
	e->log_number = n;
	e->has |= LSM_EDIT_LOG_NUMBER;
}

void lsm_edit_set_next_file(lsm_version_edit *e, uint64_t n)
{
	e->next_file_number = n;
	e->has |= LSM_EDIT_NEXT_FILE;
}

void lsm_edit_set_last_sequence(lsm_version_edit *e, uint64_t seq)
{
	e->last_sequence = seq;
	e->has |= LSM_EDIT_LAST_SEQUENCE;
}

int lsm_edit_set_compact_pointer(lsm_version_edit *e, int level,
                                 const void *key, size_t klen, uint64_t trailer)
{
	int rc;

	if (level < 0 || level >= LSM_MAX_LEVELS || klen > LSM_MAX_KEY_SIZE)
		return LSM_INVALID;
	if ((rc = key_set(&e->compact_ptr[level], key, klen, trailer)) == LSM_OK)
		e->compact_mask |= 1u << level;
	return rc;
}

/* Grows *arr (elements of size sz) to hold one more. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return LSM_OK;
	ncap = *cap ? *cap * 2 : 8;
	if ((p = realloc(*arr, ncap * sz)) == NULL)
		return LSM_NOMEM;
	*arr = p;
	*cap = ncap;
	return LSM_OK;
}

int lsm_edit_delete_file(lsm_version_edit *e, int level, uint64_t number)
{
	if (level < 0 || level >= LSM_MAX_LEVELS || number == 0)
		return LSM_INVALID;
	if (grow((void **)&e->deleted, &e->deleted_cap, e->ndeleted, sizeof *e->deleted))
		return LSM_NOMEM;
	e->deleted[e->ndeleted++] = (lsm_deleted_file){ level, number };
	return LSM_OK;
}

int lsm_edit_add_file(lsm_version_edit *e, lsm_file_meta *m)
{
	if (m->level < 0 || m->level >= LSM_MAX_LEVELS || m->number == 0)
		return LSM_INVALID;
	if (grow((void **)&e->added, &e->added_cap, e->nadded, sizeof *e->added))
		return LSM_NOMEM;
	lsm_file_meta_ref(m);
	e->added[e->nadded++] = m;
	return LSM_OK;
}

/* ------------------------------------------------------------ encoding */

enum {
	TAG_LOG_NUMBER = 1,
	TAG_NEXT_FILE = 2,
	TAG_LAST_SEQUENCE = 3,
	TAG_COMPACT_POINTER = 4,
	TAG_DELETED_FILE = 5,
	TAG_NEW_FILE = 6,
};

static void put_ikey(lsm_buf *b, const lsm_ikey_ref *k)
{
	lsm_buf_put_varint32(b, (uint32_t)(k->len + 8));
	if (k->len)
		lsm_buf_put_bytes(b, k->key, k->len);
	lsm_buf_put_u64(b, k->trailer);
}

static void put_new_file(lsm_buf *b, const lsm_file_meta *m)
{
	lsm_buf_put_varint32(b, TAG_NEW_FILE);
	lsm_buf_put_varint32(b, (uint32_t)m->level);
	lsm_buf_put_varint64(b, m->number);
	lsm_buf_put_varint64(b, m->size);
	put_ikey(b, &m->smallest);
	put_ikey(b, &m->largest);
	lsm_buf_put_varint64(b, m->smallest_seq);
	lsm_buf_put_varint64(b, m->largest_seq);
	lsm_buf_put_varint64(b, m->entries);
	lsm_buf_put_varint64(b, m->range_dels);
}

int lsm_edit_encode(const lsm_version_edit *e, lsm_buf *b)
{
	size_t i;
	int l;

	if (e->has & LSM_EDIT_LOG_NUMBER) {
		lsm_buf_put_varint32(b, TAG_LOG_NUMBER);
		lsm_buf_put_varint64(b, e->log_number);
	}
	if (e->has & LSM_EDIT_NEXT_FILE) {
		lsm_buf_put_varint32(b, TAG_NEXT_FILE);
		lsm_buf_put_varint64(b, e->next_file_number);
	}
	if (e->has & LSM_EDIT_LAST_SEQUENCE) {
		lsm_buf_put_varint32(b, TAG_LAST_SEQUENCE);
		lsm_buf_put_varint64(b, e->last_sequence);
	}
	for (l = 0; l < LSM_MAX_LEVELS; l++) {
		if (!(e->compact_mask & (1u << l)))
			continue;
		lsm_buf_put_varint32(b, TAG_COMPACT_POINTER);
		lsm_buf_put_varint32(b, (uint32_t)l);
		put_ikey(b, &e->compact_ptr[l]);
	}
	for (i = 0; i < e->ndeleted; i++) {
		lsm_buf_put_varint32(b, TAG_DELETED_FILE);
		lsm_buf_put_varint32(b, (uint32_t)e->deleted[i].level);
		lsm_buf_put_varint64(b, e->deleted[i].number);
	}
	for (i = 0; i < e->nadded; i++)
		put_new_file(b, e->added[i]);
	return b->err;
}

/* ------------------------------------------------------------ decoding */

static int get_level(lsm_reader *r, int *level)
{
	uint32_t l = lsm_reader_varint32(r);

	if (r->err || l >= LSM_MAX_LEVELS)
		return LSM_CORRUPTION;
	*level = (int)l;
	return LSM_OK;
}

/* The key points into the reader's buffer: callers copy it. */
static int get_ikey(lsm_reader *r, lsm_ikey_ref *k)
{
	uint32_t n = lsm_reader_varint32(r);
	const uint8_t *p;

	if (r->err || n < 8 || n - 8 > LSM_MAX_KEY_SIZE)
		return LSM_CORRUPTION;
	if ((p = lsm_reader_bytes(r, n)) == NULL)
		return LSM_CORRUPTION;
	*k = (lsm_ikey_ref){ p, n - 8, lsm_get_fixed64(p + n - 8) };
	return LSM_OK;
}

static int get_scalar(lsm_reader *r, lsm_version_edit *e, unsigned bit, uint64_t *field)
{
	uint64_t v = lsm_reader_varint64(r);

	if (r->err || (e->has & bit))
		return LSM_CORRUPTION;
	if (bit == LSM_EDIT_LAST_SEQUENCE && v > LSM_MAX_SEQUENCE)
		return LSM_CORRUPTION;
	*field = v;
	e->has |= bit;
	return LSM_OK;
}

static int get_compact_pointer(lsm_reader *r, lsm_version_edit *e)
{
	lsm_ikey_ref k;
	int level;

	if (get_level(r, &level) != LSM_OK || get_ikey(r, &k) != LSM_OK ||
	    (e->compact_mask & (1u << level)))
		return LSM_CORRUPTION;
	return lsm_edit_set_compact_pointer(e, level, k.key, k.len, k.trailer);
}

static int get_deleted_file(lsm_reader *r, lsm_version_edit *e)
{
	uint64_t number;
	int level;

	if (get_level(r, &level) != LSM_OK)
		return LSM_CORRUPTION;
	number = lsm_reader_varint64(r);
	if (r->err || number == 0)
		return LSM_CORRUPTION;
	return lsm_edit_delete_file(e, level, number);
}

static int get_new_file(lsm_reader *r, lsm_version_edit *e)
{
	lsm_file_meta t, *m;
	int rc;

	memset(&t, 0, sizeof t);
	if (get_level(r, &t.level) != LSM_OK)
		return LSM_CORRUPTION;
	t.number = lsm_reader_varint64(r);
	t.size = lsm_reader_varint64(r);
	if (r->err || t.number == 0 ||
	    get_ikey(r, &t.smallest) != LSM_OK || get_ikey(r, &t.largest) != LSM_OK)
		return LSM_CORRUPTION;
	t.smallest_seq = lsm_reader_varint64(r);
	t.largest_seq = lsm_reader_varint64(r);
	t.entries = lsm_reader_varint64(r);
	t.range_dels = lsm_reader_varint64(r);
	if (r->err || t.smallest_seq > t.largest_seq || t.largest_seq > LSM_MAX_SEQUENCE ||
	    ikey_cmp(&t.smallest, &t.largest) > 0)
		return LSM_CORRUPTION;
	if ((m = lsm_file_meta_new(&t)) == NULL)
		return LSM_NOMEM;
	rc = lsm_edit_add_file(e, m);
	lsm_file_meta_unref(m);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_deleted(const void *a, const void *b)
{
	const lsm_deleted_file *x = a, *y = b;

	if (x->level != y->level)
		return x->level < y->level ? -1 : 1;
	return cmp_u64(&x->number, &y->number);
}

/* LSM_CORRUPTION when a sorted array has two equal neighbours. */
static int sorted_unique(const void *arr, size_t n, size_t sz,
                         int (*cmp)(const void *, const void *))
{
	const char *p = arr;
	size_t i;

	for (i = 1; i < n; i++)
		if (cmp(p + (i - 1) * sz, p + i * sz) == 0)
			return LSM_CORRUPTION;
	return LSM_OK;
}

/* Deletions name distinct (level, number) pairs; additions distinct numbers. */
static int check_edit_unique(const lsm_version_edit *e)
{
	lsm_deleted_file *d = NULL;
	uint64_t *nums = NULL;
	size_t i;
	int rc = LSM_NOMEM;

	if (e->ndeleted > 1) {
		if ((d = malloc(e->ndeleted * sizeof *d)) == NULL)
			goto out;
		memcpy(d, e->deleted, e->ndeleted * sizeof *d);
		qsort(d, e->ndeleted, sizeof *d, cmp_deleted);
	}
	if (e->nadded > 1) {
		if ((nums = malloc(e->nadded * sizeof *nums)) == NULL)
			goto out;
		for (i = 0; i < e->nadded; i++)
			nums[i] = e->added[i]->number;
		qsort(nums, e->nadded, sizeof *nums, cmp_u64);
	}
	rc = sorted_unique(d, d ? e->ndeleted : 0, sizeof *d, cmp_deleted);
	if (rc == LSM_OK)
		rc = sorted_unique(nums, nums ? e->nadded : 0, sizeof *nums, cmp_u64);
out:
	free(d);
	free(nums);
	return rc;
}

int lsm_edit_decode(lsm_version_edit *e, const uint8_t *p, size_t n)
{
	lsm_reader r;
	int rc = LSM_OK;

	lsm_edit_init(e);
	lsm_reader_init(&r, p, n);
	while (rc == LSM_OK && lsm_reader_remaining(&r) > 0) {
		uint32_t tag = lsm_reader_varint32(&r);

		if (r.err)
			rc = LSM_CORRUPTION;
		else if (tag == TAG_LOG_NUMBER)
			rc = get_scalar(&r, e, LSM_EDIT_LOG_NUMBER, &e->log_number);
		else if (tag == TAG_NEXT_FILE)
			rc = get_scalar(&r, e, LSM_EDIT_NEXT_FILE, &e->next_file_number);
		else if (tag == TAG_LAST_SEQUENCE)
			rc = get_scalar(&r, e, LSM_EDIT_LAST_SEQUENCE, &e->last_sequence);
		else if (tag == TAG_COMPACT_POINTER)
			rc = get_compact_pointer(&r, e);
		else if (tag == TAG_DELETED_FILE)
			rc = get_deleted_file(&r, e);
		else if (tag == TAG_NEW_FILE)
			rc = get_new_file(&r, e);
		else
			rc = LSM_CORRUPTION;   /* unknown: a newer format or damage */
	}
	if (rc == LSM_OK)
		rc = check_edit_unique(e);
	if (rc != LSM_OK) {
		lsm_edit_free(e);
		/* builders' LSM_INVALID means a bad field: corruption here */
		return rc == LSM_NOMEM ? LSM_NOMEM : LSM_CORRUPTION;
	}
	return LSM_OK;
}

/* -------------------------------------------------------------- version */

int lsm_version_new(lsm_version **out)
{
	lsm_version *v = calloc(1, sizeof *v);

	if (v == NULL)
		return LSM_NOMEM;
	atomic_init(&v->refs, 1);
	*out = v;
	return LSM_OK;
}

void lsm_version_ref(lsm_version *v)
{
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

static void version_destroy(lsm_version *v)
{
	size_t i;
	int l;

	for (l = 0; l < LSM_MAX_LEVELS; l++) {
		for (i = 0; i < v->nfiles[l]; i++)
			lsm_file_meta_unref(v->files[l][i]);
		free(v->files[l]);
		key_clear(&v->compact_ptr[l]);
	}
	free(v);
}

void lsm_version_unref(lsm_version *v)
{
	if (v != NULL && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
		version_destroy(v);
}

/* L0: newest first (largest_seq, then number, descending). */
static int cmp_l0(const void *a, const void *b)
{
	const lsm_file_meta *x = *(lsm_file_meta *const *)a, *y = *(lsm_file_meta *const *)b;

	if (x->largest_seq != y->largest_seq)
		return x->largest_seq > y->largest_seq ? -1 : 1;
	return cmp_u64(&y->number, &x->number);
}

/* L1+: by smallest key (number breaks ties so the order is total). */
static int cmp_by_key(const void *a, const void *b)
{
	const lsm_file_meta *x = *(lsm_file_meta *const *)a, *y = *(lsm_file_meta *const *)b;
	int c = ikey_cmp(&x->smallest, &y->smallest);

	return c ? c : cmp_u64(&x->number, &y->number);
}

static int is_deleted(const lsm_deleted_file *sorted, size_t n, int level, uint64_t number)
{
	lsm_deleted_file k = { level, number };

	return n && bsearch(&k, sorted, n, sizeof k, cmp_deleted) != NULL;
}

/* Builds level l of v from base minus deletions plus additions. */
static int build_level(lsm_version *v, const lsm_version *base, const lsm_version_edit *e,
                       const lsm_deleted_file *del, size_t *found, int l)
{
	size_t i, cap = e->nadded + (base ? base->nfiles[l] : 0);

	if (cap && (v->files[l] = malloc(cap * sizeof *v->files[l])) == NULL)
		return LSM_NOMEM;
	for (i = 0; base && i < base->nfiles[l]; i++) {
		lsm_file_meta *m = base->files[l][i];

		if (is_deleted(del, e->ndeleted, l, m->number)) {
			(*found)++;
			continue;
		}
		lsm_file_meta_ref(m);
		v->files[l][v->nfiles[l]++] = m;
	}
	for (i = 0; i < e->nadded; i++) {
		if (e->added[i]->level != l)
			continue;
		lsm_file_meta_ref(e->added[i]);
		v->files[l][v->nfiles[l]++] = e->added[i];
	}
	return LSM_OK;
}

/* Sorts level l and checks L1+ for overlaps; sums bytes and numbers. */
static int finish_level(lsm_version *v, int l)
{
	lsm_file_meta **f = v->files[l];
	size_t i, n = v->nfiles[l];

	if (n > 1)
		qsort(f, n, sizeof *f, l == 0 ? cmp_l0 : cmp_by_key);
	for (i = 0; i < n; i++) {
		if (f[i]->level != l)
			return LSM_CORRUPTION;
		if (l > 0 && i + 1 < n && ikey_cmp(&f[i]->largest, &f[i + 1]->smallest) >= 0)
			return LSM_CORRUPTION;
		v->bytes[l] += f[i]->size;
		if (f[i]->number > v->max_file_number)
			v->max_file_number = f[i]->number;
	}
	return LSM_OK;
}

/* A file number may appear only once in a whole version. */
static int check_numbers_unique(const lsm_version *v)
{
	size_t total = lsm_version_total_files(v), k = 0, i;
	uint64_t *nums;
	int l, rc;

	if (total < 2)
		return LSM_OK;
	if ((nums = malloc(total * sizeof *nums)) == NULL)
		return LSM_NOMEM;
	for (l = 0; l < LSM_MAX_LEVELS; l++)
		for (i = 0; i < v->nfiles[l]; i++)
			nums[k++] = v->files[l][i]->number;
	qsort(nums, total, sizeof *nums, cmp_u64);
	rc = sorted_unique(nums, total, sizeof *nums, cmp_u64);
	free(nums);
	return rc;
}

static int copy_compact_pointers(lsm_version *v, const lsm_version *base,
                                 const lsm_version_edit *e)
{
	const lsm_ikey_ref *k;
	int l, rc;

	for (l = 0; l < LSM_MAX_LEVELS; l++) {
		unsigned bit = 1u << l;

		if (e->compact_mask & bit)
			k = &e->compact_ptr[l];
		else if (base && (base->compact_mask & bit))
			k = &base->compact_ptr[l];
		else
			continue;
		if ((rc = key_set(&v->compact_ptr[l], k->key, k->len, k->trailer)) != LSM_OK)
			return rc;
		v->compact_mask |= bit;
	}
	return LSM_OK;
}

static int apply_into(lsm_version *v, const lsm_version *base, const lsm_version_edit *e)
{
	lsm_deleted_file *del = NULL;
	size_t found = 0;
	int l, rc = LSM_OK;

	if (e->ndeleted) {
		if ((del = malloc(e->ndeleted * sizeof *del)) == NULL)
			return LSM_NOMEM;
		memcpy(del, e->deleted, e->ndeleted * sizeof *del);
		qsort(del, e->ndeleted, sizeof *del, cmp_deleted);
		rc = sorted_unique(del, e->ndeleted, sizeof *del, cmp_deleted);
	}
	for (l = 0; l < LSM_MAX_LEVELS && rc == LSM_OK; l++)
		rc = build_level(v, base, e, del, &found, l);
	free(del);
	/* each deletion is distinct, so it matched at most one file */
	if (rc == LSM_OK && found != e->ndeleted)
		rc = LSM_CORRUPTION;
	for (l = 0; l < LSM_MAX_LEVELS && rc == LSM_OK; l++)
		rc = finish_level(v, l);
	if (rc == LSM_OK)
		rc = check_numbers_unique(v);
	if (rc == LSM_OK)
		rc = copy_compact_pointers(v, base, e);
	return rc;
}

int lsm_version_apply(const lsm_version *base, const lsm_version_edit *e,
                      lsm_version **out)
{
	lsm_version *v;
	size_t i;
	int rc;

	for (i = 0; i < e->nadded; i++)
		if (e->added[i]->level < 0 || e->added[i]->level >= LSM_MAX_LEVELS)
			return LSM_CORRUPTION;
	for (i = 0; i < e->ndeleted; i++)
		if (e->deleted[i].level < 0 || e->deleted[i].level >= LSM_MAX_LEVELS)
			return LSM_CORRUPTION;
	if ((rc = lsm_version_new(&v)) != LSM_OK)
		return rc;
	if ((rc = apply_into(v, base, e)) != LSM_OK) {
		version_destroy(v);
		return rc;
	}
	*out = v;
	return LSM_OK;
}

int lsm_version_snapshot(const lsm_version *v, lsm_version_edit *e)
{
	size_t i;
	int l, rc;

	for (l = 0; l < LSM_MAX_LEVELS; l++) {
		for (i = 0; i < v->nfiles[l]; i++)
			if ((rc = lsm_edit_add_file(e, v->files[l][i])) != LSM_OK)
				return rc;
		if ((v->compact_mask & (1u << l)) &&
		    (rc = lsm_edit_set_compact_pointer(e, l, v->compact_ptr[l].key,
		                                       v->compact_ptr[l].len,
		                                       v->compact_ptr[l].trailer)) != LSM_OK)
			return rc;
	}
	return LSM_OK;
}

uint64_t lsm_version_total_bytes(const lsm_version *v)
{
	uint64_t sum = 0;
	int l;

	for (l = 0; l < LSM_MAX_LEVELS; l++)
		sum += v->bytes[l];
	return sum;
}

size_t lsm_version_total_files(const lsm_version *v)
{
	size_t sum = 0;
	int l;

	for (l = 0; l < LSM_MAX_LEVELS; l++)
		sum += v->nfiles[l];
	return sum;
}

int lsm_version_has_file(const lsm_version *v, uint64_t number)
{
	size_t i;
	int l;

	for (l = 0; l < LSM_MAX_LEVELS; l++)
		for (i = 0; i < v->nfiles[l]; i++)
			if (v->files[l][i]->number == number)
				return 1;
	return 0;
}

/* -------------------------------------------------------------- queries */

void lsm_file_list_init(lsm_file_list *l)
{
	memset(l, 0, sizeof *l);
}

void lsm_file_list_free(lsm_file_list *l)
{
	free(l->v);
	lsm_file_list_init(l);
}

static int list_push(lsm_file_list *l, lsm_file_meta *m)
{
	if (grow((void **)&l->v, &l->cap, l->n, sizeof *l->v))
		return LSM_NOMEM;
	l->v[l->n++] = m;
	return LSM_OK;
}

/* A user key against an inclusive bound; a NULL bound is never exceeded. */
static int ukey_before(const lsm_ikey_ref *k, const void *bound, size_t blen)
{
	return bound != NULL && lsm_key_compare(k->key, k->len, bound, blen) < 0;
}

static int ukey_after(const lsm_ikey_ref *k, const void *bound, size_t blen)
{
	return bound != NULL && lsm_key_compare(k->key, k->len, bound, blen) > 0;
}

static int file_meets(const lsm_file_meta *m, const void *b, size_t blen,
                      const void *e, size_t elen)
{
	return !ukey_before(&m->largest, b, blen) && !ukey_after(&m->smallest, e, elen);
}

/* Level >= 1: first file whose largest user key is >= key (NULL: 0).
 * Largest user keys are non-decreasing in a non-overlapping level. */
static size_t first_not_before(const lsm_version *v, int level, const void *key, size_t klen)
{
	size_t lo = 0, hi = v->nfiles[level];

	if (key == NULL)
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ukey_before(&v->files[level][mid]->largest, key, klen))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Level 0 with expansion: whenever a taken file sticks out of the range,
 * widen the range and start over (LevelDB's GetOverlappingInputs). */
static int overlapping_l0(const lsm_version *v, const void *b, size_t blen,
                          const void *e, size_t elen, int expand, lsm_file_list *out)
{
	size_t i, start = out->n;
	int rc;

	for (i = 0; i < v->nfiles[0]; i++) {
		lsm_file_meta *m = v->files[0][i];

		if (!file_meets(m, b, blen, e, elen))
			continue;
		if (expand && ukey_before(&m->smallest, b, blen)) {
			b = m->smallest.key, blen = m->smallest.len;
			out->n = start, i = (size_t)-1;
			continue;
		}
		if (expand && ukey_after(&m->largest, e, elen)) {
			e = m->largest.key, elen = m->largest.len;
			out->n = start, i = (size_t)-1;
			continue;
		}
		if ((rc = list_push(out, m)) != LSM_OK)
			return rc;
	}
	return LSM_OK;
}

int lsm_version_overlapping(const lsm_version *v, int level,
                            const void *begin, size_t blen,
                            const void *end, size_t elen,
                            int flags, lsm_file_list *out)
{
	size_t i;
	int rc;

	if (level < 0 || level >= LSM_MAX_LEVELS)
		return LSM_INVALID;
	if (level == 0)
		return overlapping_l0(v, begin, blen, end, elen, flags & LSM_OVERLAP_EXPAND, out);
	for (i = first_not_before(v, level, begin, blen); i < v->nfiles[level]; i++) {
		if (ukey_after(&v->files[level][i]->smallest, end, elen))
			break;
		if ((rc = list_push(out, v->files[level][i])) != LSM_OK)
			return rc;
	}
	return LSM_OK;
}

int lsm_version_overlaps(const lsm_version *v, int level,
                         const void *begin, size_t blen,
                         const void *end, size_t elen)
{
	size_t i;

	if (level < 0 || level >= LSM_MAX_LEVELS)
		return 0;
	if (level == 0) {
		for (i = 0; i < v->nfiles[0]; i++)
			if (file_meets(v->files[0][i], begin, blen, end, elen))
				return 1;
		return 0;
	}
	i = first_not_before(v, level, begin, blen);
	return i < v->nfiles[level] && !ukey_after(&v->files[level][i]->smallest, end, elen);
}

size_t lsm_version_find_file(const lsm_version *v, int level,
                             const void *key, size_t klen, uint64_t trailer)
{
	size_t lo = 0, hi = v->nfiles[level];

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const lsm_ikey_ref *l = &v->files[level][mid]->largest;

		if (lsm_ikey_compare(l->key, l->len, l->trailer, key, klen, trailer) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

lsm_file_meta *lsm_version_file_for_key(const lsm_version *v, int level,
                                        const void *key, size_t klen)
{
	size_t i;

	if (level < 1 || level >= LSM_MAX_LEVELS)
		return NULL;
	i = first_not_before(v, level, key, klen);
	if (i < v->nfiles[level] && !ukey_after(&v->files[level][i]->smallest, key, klen))
		return v->files[level][i];
	return NULL;
}
