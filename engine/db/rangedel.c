/*
 * rangedel.c — range tombstones, gathered and fragmented.
 *
 * A range tombstone (start, end, seq) hides every version with sequence
 * < seq of every user key in [start, end).  Tombstones come from many
 * sources (memtables' side lists, SSTables' range-deletion blocks) and may
 * overlap each other arbitrarily.  A set collects the ones a read or a
 * compaction cares about, then fragments them: the key space is cut at
 * every start and end, and each piece keeps the largest sequence of the
 * tombstones that cover it.  Then "which sequence deletes key k" is one
 * binary search.
 *
 * Only tombstones at or below the set's read sequence are collected: a
 * tombstone written after a snapshot must not hide what the snapshot sees.
 * Compaction, which must respect every live snapshot, asks with
 * lsm_rdel_covering_below instead: the newest tombstone over k below a
 * given sequence (the fragments remember every covering sequence).
 *
 * Invariants after lsm_rdel_finish: frag[] is sorted by start, fragments
 * do not overlap, each has start < end, and seqs[] of a fragment are every
 * collected sequence covering it, descending.
 */
#include <stdlib.h>
#include <string.h>

#include "dbint.h"

static int bytes_dup(const void *p, size_t n, uint8_t **out)
{
	*out = malloc(n ? n : 1);
	if (*out == NULL)
		return LSM_NOMEM;
	if (n)
		memcpy(*out, p, n);
	return LSM_OK;
}

void lsm_rdel_init(lsm_rdel_set *s, uint64_t read_seq)
{
	memset(s, 0, sizeof *s);
	s->read_seq = read_seq;
}

int lsm_rdel_add(lsm_rdel_set *s, const void *start, size_t slen,
                 const void *end, size_t elen, uint64_t seq)
{
	lsm_rdel *t;

	if (seq > s->read_seq || lsm_key_compare(start, slen, end, elen) >= 0)
		return LSM_OK;                 /* invisible, or empty */
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		lsm_rdel *v = realloc(s->raw, cap * sizeof *v);

		if (v == NULL)
			return LSM_NOMEM;
		s->raw = v;
		s->cap = cap;
	}
	t = &s->raw[s->n];
	if (bytes_dup(start, slen, &t->start) != LSM_OK)
		return LSM_NOMEM;
	if (bytes_dup(end, elen, &t->end) != LSM_OK) {
		free(t->start);
		return LSM_NOMEM;
	}
	t->slen = slen;
	t->elen = elen;
	t->seq = seq;
	s->n++;
	return LSM_OK;
}

uint64_t lsm_rdel_raw_max(const lsm_rdel_set *s, const void *key, size_t klen)
{
	uint64_t best = 0;

	for (size_t i = 0; i < s->n; i++) {
		const lsm_rdel *t = &s->raw[i];

		if (t->seq > best &&
		    lsm_key_compare(t->start, t->slen, key, klen) <= 0 &&
		    lsm_key_compare(key, klen, t->end, t->elen) < 0)
			best = t->seq;
	}
	return best;
}

/* ---- fragmenting */

typedef struct bound {
	const uint8_t *k;
	size_t len;
} bound;

static int bound_cmp(const void *a, const void *b)
{
	const bound *x = a, *y = b;

	return lsm_key_compare(x->k, x->len, y->k, y->len);
}

static int seq_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Appends the fragment [b0, b1) covered by the raw tombstones that span it. */
static int add_fragment(lsm_rdel_set *s, const bound *b0, const bound *b1)
{
	lsm_rdel_frag *f;
	size_t cover = 0;

	for (size_t i = 0; i < s->n; i++)
		if (lsm_key_compare(s->raw[i].start, s->raw[i].slen, b0->k, b0->len) <= 0 &&
		    lsm_key_compare(b1->k, b1->len, s->raw[i].end, s->raw[i].elen) <= 0)
			cover++;
	if (cover == 0)
		return LSM_OK;
	f = &s->frag[s->nfrag];
	f->seqs = malloc(cover * sizeof *f->seqs);
	if (f->seqs == NULL)
		return LSM_NOMEM;
	f->nseq = 0;
	for (size_t i = 0; i < s->n; i++)
		if (lsm_key_compare(s->raw[i].start, s->raw[i].slen, b0->k, b0->len) <= 0 &&
		    lsm_key_compare(b1->k, b1->len, s->raw[i].end, s->raw[i].elen) <= 0)
			f->seqs[f->nseq++] = s->raw[i].seq;
	qsort(f->seqs, f->nseq, sizeof *f->seqs, seq_desc);
	/* bounds point into raw[], which lives as long as the set */
	f->start = b0->k;
	f->slen = b0->len;
	f->end = b1->k;
	f->elen = b1->len;
	s->nfrag++;
	return LSM_OK;
}

int lsm_rdel_finish(lsm_rdel_set *s)
{
	bound *b;
	size_t nb = 0;
	int rc = LSM_OK;

	if (s->n == 0)
		return LSM_OK;
	b = malloc(2 * s->n * sizeof *b);
	s->frag = calloc(2 * s->n, sizeof *s->frag);
	if (b == NULL || s->frag == NULL) {
		free(b);
		return LSM_NOMEM;
	}
	for (size_t i = 0; i < s->n; i++) {
		b[nb++] = (bound){s->raw[i].start, s->raw[i].slen};
		b[nb++] = (bound){s->raw[i].end, s->raw[i].elen};
	}
	qsort(b, nb, sizeof *b, bound_cmp);
	/* n tombstones give at most 2n - 1 elementary pieces; quadratic in n
	 * to find each piece's cover, and n is small (tombstones are rare and
	 * compaction drops them) */
	for (size_t i = 0; i + 1 < nb && rc == LSM_OK; i++)
		if (bound_cmp(&b[i], &b[i + 1]) < 0)
			rc = add_fragment(s, &b[i], &b[i + 1]);
	free(b);
	return rc;
}

/* The fragment holding key, or NULL. */
static const lsm_rdel_frag *find_fragment(const lsm_rdel_set *s, const void *key,
                                          size_t klen)
{
	size_t lo = 0, hi = s->nfrag;

	/* last fragment with start <= key */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (lsm_key_compare(s->frag[mid].start, s->frag[mid].slen, key, klen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	if (lsm_key_compare(key, klen, s->frag[lo - 1].end, s->frag[lo - 1].elen) >= 0)
		return NULL;
	return &s->frag[lo - 1];
}

uint64_t lsm_rdel_covering(const lsm_rdel_set *s, const void *key, size_t klen)
{
	const lsm_rdel_frag *f = find_fragment(s, key, klen);

	return f ? f->seqs[0] : 0;
}

uint64_t lsm_rdel_covering_below(const lsm_rdel_set *s, const void *key, size_t klen,
                                 uint64_t below)
{
	const lsm_rdel_frag *f = find_fragment(s, key, klen);

	if (f == NULL)
		return 0;
	for (size_t i = 0; i < f->nseq; i++)
		if (f->seqs[i] < below)
			return f->seqs[i];
	return 0;
}

void lsm_rdel_free(lsm_rdel_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->raw[i].start);
		free(s->raw[i].end);
	}
	for (size_t i = 0; i < s->nfrag; i++)
		free(s->frag[i].seqs);
	free(s->raw);
	free(s->frag);
	memset(s, 0, sizeof *s);
}
