/*
 * table_verify.c — the whole-file check behind `lsmctl verify` and
 * `lsmctl dump-sst`.
 *
 * Opening the table already checks the footer, the index, the metaindex,
 * the filter, the range deletions and the properties (table_reader.c); this
 * adds every data block: its crc and structure (lsm_block_check), entry
 * types, keys strictly increasing across blocks, each block between its
 * index separators (previous separator < first key, last key <= its own
 * separator), every user key answered "may contain" by the filter (a
 * filter that denies a key hides it from point lookups), and the totals
 * and key bounds the properties claim.
 *
 * Invariants
 *   - Reads go straight to the file, never through a cache: verify must see
 *     the bytes on disk.
 *   - On LSM_CORRUPTION, info->bad_offset is the file offset of the block
 *     (or the footer) found bad and info->message says what was wrong; the
 *     dump callback has then seen only entries that precede the damage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "format.h"
#include "hash.h"

typedef struct keybuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	int set;
} keybuf;

static int keybuf_set(keybuf *b, const uint8_t *k, size_t n)
{
	if (n > b->cap || b->p == NULL) {
		uint8_t *q = realloc(b->p, n ? n : 1);

		if (q == NULL)
			return LSM_NOMEM;
		b->p = q;
		b->cap = n;
	}
	if (n)
		memcpy(b->p, k, n);
	b->len = n;
	b->set = 1;
	return LSM_OK;
}

static int bad(lsm_table_verify_info *info, uint64_t off, const char *msg)
{
	info->bad_offset = off;
	snprintf(info->message, sizeof info->message, "%s", msg);
	return LSM_CORRUPTION;
}

typedef struct walk {
	lsm_table *t;
	lsm_table_verify_info *info;
	lsm_table_dump_fn fn;
	void *arg;
	keybuf prev_key;           /* last key of the previous data block */
	keybuf prev_sep;           /* previous index separator */
	keybuf first;              /* the first key of the table */
	uint64_t deletions, raw_key, raw_val, data_bytes;
	uint64_t min_seq, max_seq;
} walk;

/* One data block: read, check, and hand its entries to the callback. */
static int walk_block(walk *w, const lsm_block_handle *h, const uint8_t *sep,
                      size_t seplen)
{
	lsm_table_verify_info *info = w->info;
	const char *why = "";
	uint8_t *mem = NULL;
	const uint8_t *data;
	size_t len;
	lsm_block blk;
	lsm_block_iter it;
	int rc, first = 1;

	rc = lsm_table_read_raw(w->t, h, w->t->data_end, &mem, &data, &len, &why, NULL);
	if (rc != LSM_OK) {
		info->bad_offset = h->offset;
		snprintf(info->message, sizeof info->message, "data block: %s", why);
		return rc;
	}
	if (lsm_block_parse(&blk, data, len) != LSM_OK) {
		free(mem);
		return bad(info, h->offset, "data block: bad restart array");
	}
	if (blk.limit == 0) {
		free(mem);
		return bad(info, h->offset, "empty data block");
	}
	rc = lsm_block_check(&blk, LSM_BLOCK_IKEYS, &why);
	if (rc != LSM_OK) {
		free(mem);
		if (rc == LSM_CORRUPTION) {
			info->bad_offset = h->offset;
			snprintf(info->message, sizeof info->message, "data block: %s", why);
		}
		return rc;
	}
	lsm_block_iter_init(&it, &blk, LSM_BLOCK_IKEYS);
	for (lsm_block_iter_seek_to_first(&it); it.valid && rc == LSM_OK;
	     lsm_block_iter_next(&it)) {
		size_t klen;
		const uint8_t *k = lsm_block_iter_key(&it, &klen);
		uint64_t tr = lsm_get_fixed64(k + klen - LSM_TRAILER_SIZE);
		int type = lsm_trailer_type(tr);
		uint64_t seq = lsm_trailer_seq(tr);

		if (type != LSM_TYPE_PUT && type != LSM_TYPE_DELETE) {
			rc = bad(info, h->offset, "data entry of a bad type");
			break;
		}
		if (type == LSM_TYPE_DELETE && it.vlen != 0) {
			rc = bad(info, h->offset, "deletion with a value");
			break;
		}
		if (first) {
			if (w->prev_key.set &&
			    lsm_enc_ikey_compare(w->prev_key.p, w->prev_key.len, k, klen) >= 0) {
				rc = bad(info, h->offset, "keys out of order across data blocks");
				break;
			}
			if (w->prev_sep.set &&
			    lsm_enc_ikey_compare(w->prev_sep.p, w->prev_sep.len, k, klen) >= 0) {
				rc = bad(info, h->offset, "first key not after the previous index separator");
				break;
			}
			if (!w->first.set && (rc = keybuf_set(&w->first, k, klen)) != LSM_OK)
				break;
			first = 0;
		}
		info->entries++;
		if (type == LSM_TYPE_DELETE)
			w->deletions++;
		w->raw_key += klen - LSM_TRAILER_SIZE;
		w->raw_val += it.vlen;
		if (seq < w->min_seq)
			w->min_seq = seq;
		if (seq > w->max_seq)
			w->max_seq = seq;
		if (w->t->filter != NULL &&
		    !lsm_bloom_may_contain(w->t->filter, w->t->filter_len,
		                           lsm_xxh64(k, klen - LSM_TRAILER_SIZE, LSM_TABLE_BLOOM_SEED))) {
			rc = bad(info, w->t->filter_h.offset, "the filter denies a key the data holds");
			break;
		}
		if (w->fn)
			rc = w->fn(w->arg, k, klen - LSM_TRAILER_SIZE, tr, it.val, it.vlen);
		if (rc == LSM_OK)
			rc = keybuf_set(&w->prev_key, k, klen);
	}
	if (rc == LSM_OK && it.status != LSM_OK)
		rc = bad(info, h->offset, "data block: malformed entry");
	if (rc == LSM_OK &&
	    lsm_enc_ikey_compare(w->prev_key.p, w->prev_key.len, sep, seplen) > 0)
		rc = bad(info, h->offset, "last key after its index separator");
	if (rc == LSM_OK)
		rc = keybuf_set(&w->prev_sep, sep, seplen);
	lsm_block_iter_free(&it);
	free(mem);
	w->data_bytes += h->size + LSM_BLOCK_TRAILER_SIZE;
	return rc;
}

/* The totals and bounds of the properties against what the walk saw. */
static int check_props(walk *w)
{
	const lsm_table_props *p = &w->t->props;
	lsm_table_verify_info *info = w->info;
	uint64_t off = w->t->props_h.offset;
	uint64_t min_seq = w->min_seq, max_seq = w->max_seq;

	if (p->entries != info->entries || p->deletions != w->deletions ||
	    p->raw_key_bytes != w->raw_key || p->raw_value_bytes != w->raw_val ||
	    p->data_blocks != info->data_blocks || p->data_bytes != w->data_bytes)
		return bad(info, off, "properties: counts differ from the data blocks");
	for (size_t i = 0; i < w->t->nrdels; i++) {
		const lsm_table_rdel *r = &w->t->rdels[i];

		if (r->seq < min_seq)
			min_seq = r->seq;
		if (r->seq > max_seq)
			max_seq = r->seq;
		if (p->has_bounds &&
		    (lsm_ikey_compare(r->start, r->slen,
		                      lsm_pack_trailer(r->seq, LSM_TYPE_RANGE_DELETE),
		                      p->smallest_key, p->smallest_klen,
		                      p->smallest_trailer) < 0 ||
		     lsm_ikey_compare(r->end, r->elen,
		                      lsm_pack_trailer(LSM_MAX_SEQUENCE, LSM_TYPE_RANGE_DELETE),
		                      p->largest_key, p->largest_klen,
		                      p->largest_trailer) > 0))
			return bad(info, off, "properties: range deletion outside the key bounds");
	}
	if (info->entries + w->t->nrdels == 0)
		return p->has_bounds ? bad(info, off, "properties: bounds on an empty table")
		                     : LSM_OK;
	if (!p->has_bounds)
		return bad(info, off, "properties: key bounds missing");
	if (p->smallest_seq != min_seq || p->largest_seq != max_seq)
		return bad(info, off, "properties: sequence range differs");
	if (info->entries > 0 &&
	    (lsm_ikey_compare(w->first.p, w->first.len - LSM_TRAILER_SIZE,
	                      lsm_get_fixed64(w->first.p + w->first.len - LSM_TRAILER_SIZE),
	                      p->smallest_key, p->smallest_klen, p->smallest_trailer) < 0 ||
	     lsm_ikey_compare(w->prev_key.p, w->prev_key.len - LSM_TRAILER_SIZE,
	                      lsm_get_fixed64(w->prev_key.p + w->prev_key.len - LSM_TRAILER_SIZE),
	                      p->largest_key, p->largest_klen, p->largest_trailer) > 0))
		return bad(info, off, "properties: a key lies outside the key bounds");
	return LSM_OK;
}

int lsm_table_verify(lsm_env *env, const char *path, lsm_table_dump_fn fn,
                     void *arg, lsm_table_verify_info *info)
{
	lsm_table_verify_info local;
	lsm_table_problem prob;
	lsm_block_iter idx;
	lsm_table *t;
	walk w;
	int rc;

	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof *info);
	memset(&prob, 0, sizeof prob);
	rc = lsm_table_open_internal(env, path, 0, NULL, &prob, &t);
	if (rc != LSM_OK) {
		info->bad_offset = prob.offset;
		snprintf(info->message, sizeof info->message, "%s",
		         prob.msg[0] ? prob.msg : lsm_strerror(rc));
		return rc;
	}
	info->file_size = t->file_size;
	memset(&w, 0, sizeof w);
	w.t = t;
	w.info = info;
	w.fn = fn;
	w.arg = arg;
	w.min_seq = UINT64_MAX;
	lsm_block_iter_init(&idx, &t->index, LSM_BLOCK_IKEYS);
	for (lsm_block_iter_seek_to_first(&idx); idx.valid; lsm_block_iter_next(&idx)) {
		const uint8_t *p = idx.val;
		lsm_block_handle h;
		size_t seplen;
		const uint8_t *sep = lsm_block_iter_key(&idx, &seplen);

		/* open checked every index value already */
		if (lsm_block_handle_decode(&p, idx.val + idx.vlen, &h) != LSM_OK) {
			rc = bad(info, t->index_h.offset, "bad index handle");
			break;
		}
		rc = walk_block(&w, &h, sep, seplen);
		if (rc != LSM_OK)
			break;
		info->data_blocks++;
	}
	if (rc == LSM_OK && idx.status != LSM_OK)
		rc = bad(info, t->index_h.offset, "malformed index block");
	if (rc == LSM_OK)
		rc = check_props(&w);
	for (size_t i = 0; rc == LSM_OK && i < t->nrdels; i++) {
		const lsm_table_rdel *r = &t->rdels[i];

		info->range_deletions++;
		if (fn)
			rc = fn(arg, r->start, r->slen,
			        lsm_pack_trailer(r->seq, LSM_TYPE_RANGE_DELETE),
			        r->end, r->elen);
	}
	lsm_block_iter_free(&idx);
	free(w.prev_key.p);
	free(w.prev_sep.p);
	free(w.first.p);
	lsm_table_close(t);
	return rc;
}
