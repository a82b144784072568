/*
 * table_reader.c — opening an SSTable: footer, index, metaindex, filter,
 * range deletions and properties; reading data blocks (through the cache).
 * Lookups and iterators are in table_iter.c.
 *
 * Invariants
 *   - Nothing read from the file is trusted before it is checked: the
 *     footer by magic, crc and version; every block by its crc before it is
 *     decompressed or parsed; every handle against the region of the file
 *     it must lie in (data blocks in [0, data_end), meta blocks below the
 *     metaindex, metaindex right before the index, index right before the
 *     footer); decompressed sizes exactly; every block structure by
 *     lsm_block_parse / the bounded entry decoder.  So damage yields
 *     LSM_CORRUPTION, never an out-of-bounds access or a wrong answer.
 *   - At open the index, metaindex, properties and range-deletion blocks are
 *     fully checked (lsm_block_check: order, restart points, bounds), the
 *     data block handles are checked to tile [0, data_end) exactly, and the
 *     properties are checked against what was found.  After open the
 *     table's memory is read-only: concurrent readers need no lock.
 *   - Data blocks are read per use: a cache hit pins the cached copy; a miss
 *     reads, checks and (when allowed) inserts it, and keeps the private
 *     copy only if the cache refused it.  Either way the bytes stay valid
 *     until lsm_table_release_block, which every path calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "crc32.h"
#include "format.h"
#include "hash.h"
#include "lz4block.h"
#include "status.h"

static int corrupt(lsm_table_problem *prob, uint64_t off, const char *msg)
{
	if (prob) {
		prob->offset = off;
		snprintf(prob->msg, sizeof prob->msg, "%s", msg);
	}
	return LSM_CORRUPTION;
}

/* ------------------------------------------------------------ raw blocks */

/* A block at h is damaged: say why, to the caller and to lsm_error_where. */
static int block_corrupt(const lsm_table *t, const lsm_block_handle *h, const char **why,
                         const char *reason)
{
	*why = reason;
	return lsm_error_note(t->name, (int64_t)h->offset, "%s", reason);
}

/* n bytes at off, through the read-ahead window when there is one (the
 * window never extends past limit). */
static int read_block_bytes(lsm_table *t, lsm_readahead *ra, uint64_t off, uint64_t limit,
                            uint8_t *buf, size_t n, size_t *got)
{
	size_t want;
	int rc;

	if (ra == NULL)
		return t->env->read(t->file, off, buf, n, got);
	if (off < ra->off || off + n > ra->off + ra->len) {
		want = n > LSM_READAHEAD_BYTES ? n : LSM_READAHEAD_BYTES;
		if (want > limit - off)
			want = (size_t)(limit - off);
		if (want < n)
			want = n;
		if (want > ra->cap) {
			uint8_t *nb = realloc(ra->buf, want);

			if (nb == NULL)
				return t->env->read(t->file, off, buf, n, got);
			ra->buf = nb;
			ra->cap = want;
		}
		ra->len = 0;
		if ((rc = t->env->read(t->file, off, ra->buf, want, &ra->len)) != LSM_OK) {
			ra->len = 0;
			return rc;
		}
		ra->off = off;
	}
	*got = off + n <= ra->off + ra->len ? n : (size_t)(ra->off + ra->len - off);
	memcpy(buf, ra->buf + (off - ra->off), *got);
	return LSM_OK;
}

int lsm_table_read_raw(lsm_table *t, const lsm_block_handle *h,
                       uint64_t limit, uint8_t **mem, const uint8_t **data,
                       size_t *len, const char **why, lsm_readahead *ra)
{
	uint8_t *buf, *out;
	const uint8_t *p, *end;
	uint32_t ulen;
	size_t got, n, outlen;
	int rc;

	*mem = NULL;
	/* offset + size + trailer <= limit, without overflow */
	if (h->size > LSM_TABLE_MAX_BLOCK || limit < LSM_BLOCK_TRAILER_SIZE ||
	    h->offset > limit - LSM_BLOCK_TRAILER_SIZE ||
	    h->size > limit - LSM_BLOCK_TRAILER_SIZE - h->offset) {
		return block_corrupt(t, h, why, "block handle out of range");
	}
	n = (size_t)h->size + LSM_BLOCK_TRAILER_SIZE;
	buf = malloc(n);
	if (buf == NULL)
		return LSM_NOMEM;
	rc = read_block_bytes(t, ra, h->offset, limit, buf, n, &got);
	if (rc != LSM_OK) {
		free(buf);
		*why = "read error";
		return rc;
	}
	if (got != n) {
		free(buf);
		return block_corrupt(t, h, why, "block past end of file");
	}
	/* The type byte follows the stored bytes: one crc covers both. */
	if (lsm_crc32_mask(lsm_crc32(buf, (size_t)h->size + 1)) !=
	    lsm_get_fixed32(buf + h->size + 1)) {
		free(buf);
		return block_corrupt(t, h, why, "block checksum mismatch");
	}
	switch (buf[h->size]) {
	case LSM_BLOCK_TYPE_NONE:
		*mem = buf;
		*data = buf;
		*len = (size_t)h->size;
		return LSM_OK;
	case LSM_BLOCK_TYPE_LZ4:
		p = buf;
		end = buf + h->size;
		if (lsm_decode_varint32(&p, end, &ulen) != LSM_OK ||
		    ulen > LSM_TABLE_MAX_BLOCK ||
		    (uint64_t)ulen > 255 * (uint64_t)(end - p) + 64) {
			free(buf);
			return block_corrupt(t, h, why, "bad uncompressed block size");
		}
		out = malloc(ulen ? ulen : 1);
		if (out == NULL) {
			free(buf);
			return LSM_NOMEM;
		}
		rc = lsm_lz4_decompress(p, (size_t)(end - p), out, ulen, &outlen);
		free(buf);
		if (rc != LSM_OK || outlen != ulen) {
			free(out);
			return block_corrupt(t, h, why, "bad compressed block");
		}
		*mem = out;
		*data = out;
		*len = ulen;
		return LSM_OK;
	default:
		free(buf);
		return block_corrupt(t, h, why, "unknown block type");
	}
}

int lsm_table_load_block(lsm_table *t, const lsm_block_handle *h,
                         int fill_cache, lsm_readahead *ra, lsm_block_ref *ref)
{
	const char *why;
	uint8_t *mem;
	const uint8_t *data;
	size_t len;
	int rc;

	memset(ref, 0, sizeof *ref);
	if (t->cache != NULL &&
	    lsm_cache_lookup(t->cache, t->file_number, h->offset, &ref->ch) == LSM_OK) {
		ref->cached = 1;
		ref->data = ref->ch.data;
		ref->len = ref->ch.len;
		LSM_TABLE_STAT_ADD(t, st_cache_hits, 1);
		return LSM_OK;
	}
	rc = lsm_table_read_raw(t, h, t->data_end, &mem, &data, &len, &why, ra);
	if (rc != LSM_OK)
		return rc;
	LSM_TABLE_STAT_ADD(t, st_block_reads, 1);
	LSM_TABLE_STAT_ADD(t, st_block_read_bytes, h->size + LSM_BLOCK_TRAILER_SIZE);
	if (t->cache != NULL && fill_cache &&
	    lsm_cache_insert(t->cache, t->file_number, h->offset, data, len,
	                     &ref->ch) == LSM_OK) {
		free(mem);
		ref->cached = 1;
		ref->data = ref->ch.data;
		ref->len = ref->ch.len;
		return LSM_OK;
	}
	/* No cache, or it refused (busy, too big): use the private copy. */
	ref->owned = mem;
	ref->data = data;
	ref->len = len;
	return LSM_OK;
}

void lsm_table_release_block(lsm_table *t, lsm_block_ref *ref)
{
	if (ref->cached)
		lsm_cache_release(t->cache, &ref->ch);
	free(ref->owned);
	memset(ref, 0, sizeof *ref);
}

/* ------------------------------------------------------------ open */

/* Reads, checks and parses a meta block; *mem owns the contents. */
static int read_meta(lsm_table *t, const lsm_block_handle *h, uint64_t limit,
                     int kind, lsm_table_problem *prob, uint8_t **mem,
                     lsm_block *blk)
{
	const char *why = NULL;
	const uint8_t *data;
	size_t len;
	int rc = lsm_table_read_raw(t, h, limit, mem, &data, &len, &why, NULL);

	if (rc != LSM_OK) {
		if (prob && why) {
			prob->offset = h->offset;
			snprintf(prob->msg, sizeof prob->msg, "%s", why);
		}
		return rc;
	}
	if (lsm_block_parse(blk, data, len) != LSM_OK)
		return corrupt(prob, h->offset, "bad block restart array");
	if (kind >= 0) {
		rc = lsm_block_check(blk, kind, &why);
		if (rc == LSM_CORRUPTION)
			return corrupt(prob, h->offset, why);
	}
	return rc;
}

int lsm_block_iter_handle(const lsm_block_iter *it, lsm_block_handle *h)
{
	const uint8_t *p = it->val, *end = it->val + it->vlen;

	if (lsm_block_handle_decode(&p, end, h) != LSM_OK || p != end)
		return LSM_CORRUPTION;
	return LSM_OK;
}

static int read_footer(lsm_table *t, lsm_table_problem *prob)
{
	uint8_t f[LSM_TABLE_FOOTER_SIZE];
	uint64_t foff;
	const uint8_t *p = f, *end = f + LSM_TABLE_FOOTER_HANDLES;
	size_t got;
	int rc;

	if (t->file_size < LSM_TABLE_FOOTER_SIZE)
		return corrupt(prob, 0, "file shorter than a footer");
	foff = t->file_size - LSM_TABLE_FOOTER_SIZE;
	rc = t->env->read(t->file, foff, f, sizeof f, &got);
	if (rc != LSM_OK) {
		if (prob)
			prob->offset = foff;
		return rc;
	}
	if (got != sizeof f)
		return corrupt(prob, foff, "short footer read");
	if (lsm_get_fixed64(f + 44) != LSM_TABLE_MAGIC)
		return corrupt(prob, foff, "bad magic number (not an sstable, or truncated)");
	if (lsm_crc32_mask(lsm_crc32(f, 52)) != lsm_get_fixed32(f + 52))
		return corrupt(prob, foff, "footer checksum mismatch");
	if (lsm_get_fixed32(f + 40) != LSM_TABLE_FORMAT_VERSION)
		return corrupt(prob, foff, "unsupported format version");
	if (lsm_block_handle_decode(&p, end, &t->metaindex_h) != LSM_OK ||
	    lsm_block_handle_decode(&p, end, &t->index_h) != LSM_OK)
		return corrupt(prob, foff, "bad footer handles");
	for (; p < end; p++)
		if (*p != 0)
			return corrupt(prob, foff, "footer padding not zero");
	/* index ends at the footer; metaindex ends at the index */
	if (t->index_h.size > foff || foff - t->index_h.size < LSM_BLOCK_TRAILER_SIZE ||
	    t->index_h.offset != foff - t->index_h.size - LSM_BLOCK_TRAILER_SIZE)
		return corrupt(prob, foff, "index handle not before the footer");
	if (t->metaindex_h.size > t->index_h.offset ||
	    t->index_h.offset - t->metaindex_h.size < LSM_BLOCK_TRAILER_SIZE ||
	    t->metaindex_h.offset != t->index_h.offset - t->metaindex_h.size -
	                             LSM_BLOCK_TRAILER_SIZE)
		return corrupt(prob, foff, "metaindex handle not before the index");
	return LSM_OK;
}

static int read_metaindex(lsm_table *t, lsm_table_problem *prob)
{
	lsm_block blk;
	lsm_block_iter it;
	uint8_t *mem = NULL;
	int have_props = 0;
	int rc = read_meta(t, &t->metaindex_h, t->index_h.offset, LSM_BLOCK_BYTEWISE,
	                   prob, &mem, &blk);

	if (rc != LSM_OK) {
		free(mem);
		return rc;
	}
	t->data_end = t->metaindex_h.offset;
	lsm_block_iter_init(&it, &blk, LSM_BLOCK_BYTEWISE);
	for (lsm_block_iter_seek_to_first(&it); it.valid && rc == LSM_OK;
	     lsm_block_iter_next(&it)) {
		size_t klen;
		const uint8_t *k = lsm_block_iter_key(&it, &klen);
		lsm_block_handle h, *dst = NULL;

		if (lsm_bytewise_compare(k, klen, (const uint8_t *)LSM_META_FILTER,
		                         strlen(LSM_META_FILTER)) == 0) {
			dst = &t->filter_h;
			t->has_filter = 1;
		} else if (lsm_bytewise_compare(k, klen, (const uint8_t *)LSM_META_PROPERTIES,
		                                strlen(LSM_META_PROPERTIES)) == 0) {
			dst = &t->props_h;
			have_props = 1;
		} else if (lsm_bytewise_compare(k, klen, (const uint8_t *)LSM_META_RANGEDEL,
		                                strlen(LSM_META_RANGEDEL)) == 0) {
			dst = &t->rdel_h;
			t->has_rdel = 1;
		}
		if (lsm_block_iter_handle(&it, &h) != LSM_OK)
			rc = corrupt(prob, t->metaindex_h.offset, "bad metaindex handle");
		else if (h.size > t->metaindex_h.offset ||
		         t->metaindex_h.offset - h.size < LSM_BLOCK_TRAILER_SIZE ||
		         h.offset > t->metaindex_h.offset - h.size - LSM_BLOCK_TRAILER_SIZE)
			rc = corrupt(prob, t->metaindex_h.offset, "meta block handle out of range");
		else if (dst != NULL) {
			*dst = h;
			if (h.offset < t->data_end)
				t->data_end = h.offset;
		}
	}
	if (rc == LSM_OK && it.status != LSM_OK)
		rc = it.status == LSM_NOMEM ? LSM_NOMEM :
		     corrupt(prob, t->metaindex_h.offset, "malformed metaindex");
	if (rc == LSM_OK && !have_props)
		rc = corrupt(prob, t->metaindex_h.offset, "no properties block");
	lsm_block_iter_free(&it);
	free(mem);
	return rc;
}

enum {
	P_DATA_BLOCKS, P_DATA_BYTES, P_DELETIONS, P_ENTRIES, P_FILTER_BYTES,
	P_FORMAT_VERSION, P_KEY_LARGEST, P_KEY_SMALLEST, P_RANGE_DELS,
	P_RAW_KEY_BYTES, P_RAW_VAL_BYTES, P_SEQ_LARGEST, P_SEQ_SMALLEST, P_COUNT
};

static const char *const prop_names[P_COUNT] = {
	LSM_PROP_DATA_BLOCKS, LSM_PROP_DATA_BYTES, LSM_PROP_DELETIONS,
	LSM_PROP_ENTRIES, LSM_PROP_FILTER_BYTES, LSM_PROP_FORMAT_VERSION,
	LSM_PROP_KEY_LARGEST, LSM_PROP_KEY_SMALLEST, LSM_PROP_RANGE_DELS,
	LSM_PROP_RAW_KEY_BYTES, LSM_PROP_RAW_VAL_BYTES, LSM_PROP_SEQ_LARGEST,
	LSM_PROP_SEQ_SMALLEST
};

static int prop_key(const lsm_block_iter *it, uint8_t **dst, size_t *dlen,
                    uint64_t *dtrailer)
{
	if (it->vlen < LSM_TRAILER_SIZE || *dst != NULL)
		return LSM_CORRUPTION;
	*dst = malloc(it->vlen);
	if (*dst == NULL)
		return LSM_NOMEM;
	memcpy(*dst, it->val, it->vlen);
	*dlen = it->vlen - LSM_TRAILER_SIZE;
	*dtrailer = lsm_get_fixed64(it->val + *dlen);
	return LSM_OK;
}

static int parse_props(lsm_table *t, const lsm_block *blk)
{
	lsm_table_props *p = &t->props;
	uint64_t v[P_COUNT] = {0};
	unsigned seen = 0, need;
	lsm_block_iter it;
	int rc = LSM_OK;

	lsm_block_iter_init(&it, blk, LSM_BLOCK_BYTEWISE);
	for (lsm_block_iter_seek_to_first(&it); it.valid && rc == LSM_OK;
	     lsm_block_iter_next(&it)) {
		size_t klen;
		const uint8_t *k = lsm_block_iter_key(&it, &klen);
		int i;

		for (i = 0; i < P_COUNT; i++)
			if (lsm_bytewise_compare(k, klen, (const uint8_t *)prop_names[i],
			                         strlen(prop_names[i])) == 0)
				break;
		if (i == P_COUNT)
			continue;          /* a later version's property */
		seen |= 1u << i;
		if (i == P_KEY_LARGEST)
			rc = prop_key(&it, &p->largest_key, &p->largest_klen,
			              &p->largest_trailer);
		else if (i == P_KEY_SMALLEST)
			rc = prop_key(&it, &p->smallest_key, &p->smallest_klen,
			              &p->smallest_trailer);
		else {
			const uint8_t *q = it.val, *end = it.val + it.vlen;

			if (lsm_decode_varint64(&q, end, &v[i]) != LSM_OK || q != end)
				rc = LSM_CORRUPTION;
		}
	}
	if (rc == LSM_OK)
		rc = it.status;
	lsm_block_iter_free(&it);
	if (rc != LSM_OK)
		return rc;
	need = (1u << P_COUNT) - 1;
	if (v[P_ENTRIES] + v[P_RANGE_DELS] == 0)
		need &= ~((1u << P_KEY_LARGEST) | (1u << P_KEY_SMALLEST));
	if ((seen & need) != need || v[P_FORMAT_VERSION] != LSM_TABLE_FORMAT_VERSION ||
	    v[P_DELETIONS] > v[P_ENTRIES])
		return LSM_CORRUPTION;
	p->format_version = (uint32_t)v[P_FORMAT_VERSION];
	p->entries = v[P_ENTRIES];
	p->deletions = v[P_DELETIONS];
	p->range_deletions = v[P_RANGE_DELS];
	p->raw_key_bytes = v[P_RAW_KEY_BYTES];
	p->raw_value_bytes = v[P_RAW_VAL_BYTES];
	p->data_blocks = v[P_DATA_BLOCKS];
	p->data_bytes = v[P_DATA_BYTES];
	p->filter_bytes = v[P_FILTER_BYTES];
	p->smallest_seq = v[P_SEQ_SMALLEST];
	p->largest_seq = v[P_SEQ_LARGEST];
	p->has_bounds = p->smallest_key != NULL && p->largest_key != NULL;
	if (p->has_bounds &&
	    lsm_ikey_compare(p->smallest_key, p->smallest_klen, p->smallest_trailer,
	                     p->largest_key, p->largest_klen, p->largest_trailer) > 0)
		return LSM_CORRUPTION;
	return LSM_OK;
}

/* Copies the range deletions out of their block into one allocation. */
static int parse_rdels(lsm_table *t, const lsm_block *blk)
{
	lsm_block_iter it;
	size_t n = 0, bytes = 0, pos = 0;
	uint8_t *mem = NULL;
	int rc, pass;

	lsm_block_iter_init(&it, blk, LSM_BLOCK_IKEYS);
	for (pass = 0; pass < 2; pass++) {
		size_t i = 0;

		for (lsm_block_iter_seek_to_first(&it); it.valid; lsm_block_iter_next(&it)) {
			size_t klen;
			const uint8_t *k = lsm_block_iter_key(&it, &klen);
			size_t slen = klen - LSM_TRAILER_SIZE;
			uint64_t tr = lsm_get_fixed64(k + slen);

			if (pass == 0) {
				if (lsm_trailer_type(tr) != LSM_TYPE_RANGE_DELETE ||
				    lsm_bytewise_compare(k, slen, it.val, it.vlen) >= 0)
					break;
				n++;
				bytes += slen + it.vlen;
				continue;
			}
			lsm_table_rdel *r = &t->rdels[i++];

			memcpy(mem + pos, k, slen);
			r->start = mem + pos;
			r->slen = slen;
			pos += slen;
			if (it.vlen)
				memcpy(mem + pos, it.val, it.vlen);
			r->end = mem + pos;
			r->elen = it.vlen;
			pos += it.vlen;
			r->seq = lsm_trailer_seq(tr);
		}
		rc = it.status;
		if (rc == LSM_OK && it.valid)
			rc = LSM_CORRUPTION;   /* pass 0 stopped at a bad entry */
		if (rc != LSM_OK || pass == 1)
			break;
		mem = malloc(bytes ? bytes : 1);
		t->rdels = malloc((n ? n : 1) * sizeof *t->rdels);
		t->rdel_mem = mem;
		t->rdel_bytes = bytes;
		if (mem == NULL || t->rdels == NULL) {
			rc = LSM_NOMEM;
			break;
		}
		t->nrdels = n;
	}
	lsm_block_iter_free(&it);
	return rc;
}

/* The index: its handles must tile [0, data_end) in order. */
static int check_index(lsm_table *t, lsm_table_problem *prob)
{
	lsm_block_iter it;
	uint64_t expect = 0, n = 0;
	int rc = LSM_OK;

	lsm_block_iter_init(&it, &t->index, LSM_BLOCK_IKEYS);
	for (lsm_block_iter_seek_to_first(&it); it.valid; lsm_block_iter_next(&it)) {
		lsm_block_handle h;

		if (lsm_block_iter_handle(&it, &h) != LSM_OK || h.offset != expect ||
		    h.size > t->data_end - expect ||
		    t->data_end - expect - h.size < LSM_BLOCK_TRAILER_SIZE) {
			rc = corrupt(prob, t->index_h.offset, "index handle does not follow the previous block");
			break;
		}
		expect += h.size + LSM_BLOCK_TRAILER_SIZE;
		n++;
	}
	if (rc == LSM_OK && it.status != LSM_OK)
		rc = corrupt(prob, t->index_h.offset, "malformed index block");
	if (rc == LSM_OK && expect != t->data_end)
		rc = corrupt(prob, t->index_h.offset, "data blocks do not reach the meta blocks");
	if (rc == LSM_OK && (n != t->props.data_blocks || t->props.data_bytes != t->data_end))
		rc = corrupt(prob, t->props_h.offset, "data block count or size differs from the index");
	t->index_entries = n;
	lsm_block_iter_free(&it);
	return rc;
}

static int load_tables(lsm_table *t, lsm_table_problem *prob)
{
	lsm_block blk;
	uint8_t *mem = NULL;
	const char *why = NULL;
	const uint8_t *data;
	size_t len;
	int rc;

	rc = read_footer(t, prob);
	if (rc == LSM_OK)
		rc = read_metaindex(t, prob);
	if (rc != LSM_OK)
		return rc;

	rc = read_meta(t, &t->props_h, t->metaindex_h.offset, LSM_BLOCK_BYTEWISE,
	               prob, &mem, &blk);
	if (rc == LSM_OK) {
		rc = parse_props(t, &blk);
		if (rc == LSM_CORRUPTION)
			corrupt(prob, t->props_h.offset, "bad properties");
	}
	free(mem);
	mem = NULL;
	if (rc != LSM_OK)
		return rc;

	if (t->has_filter) {
		rc = lsm_table_read_raw(t, &t->filter_h, t->metaindex_h.offset, &mem,
		                        &data, &len, &why, NULL);
		if (rc != LSM_OK) {
			if (rc == LSM_CORRUPTION)
				corrupt(prob, t->filter_h.offset, why);
			free(mem);
			return rc;
		}
		/* Keep the contents where they are (no copy): data == mem for an
		 * uncompressed block and for a decompressed one alike. */
		t->filter = mem;
		t->filter_len = len;
		mem = NULL;
		if (len != t->props.filter_bytes)
			return corrupt(prob, t->filter_h.offset, "filter size differs from the properties");
	} else if (t->props.filter_bytes != 0) {
		return corrupt(prob, t->metaindex_h.offset, "filter block missing");
	}

	if (t->has_rdel) {
		rc = read_meta(t, &t->rdel_h, t->metaindex_h.offset, LSM_BLOCK_IKEYS,
		               prob, &mem, &blk);
		if (rc == LSM_OK) {
			rc = parse_rdels(t, &blk);
			if (rc == LSM_CORRUPTION)
				corrupt(prob, t->rdel_h.offset, "bad range deletion entry");
		}
		free(mem);
		mem = NULL;
		if (rc != LSM_OK)
			return rc;
	}
	if (t->nrdels != t->props.range_deletions)
		return corrupt(prob, t->props_h.offset, "range deletion count differs from the properties");

	rc = read_meta(t, &t->index_h, t->file_size - LSM_TABLE_FOOTER_SIZE,
	               LSM_BLOCK_IKEYS, prob, &t->index_mem, &t->index);
	if (rc == LSM_OK)
		rc = check_index(t, prob);
	return rc;
}

int lsm_table_open_internal(lsm_env *env, const char *path,
                            uint64_t file_number, lsm_cache *cache,
                            lsm_table_problem *prob, lsm_table **out)
{
	lsm_table_problem own = {0, ""};
	const char *slash;
	lsm_table *t;
	int rc;

	*out = NULL;
	if (env == NULL || path == NULL)
		return LSM_INVALID;
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return LSM_NOMEM;
	t->env = env;
	slash = strrchr(path, '/');
	snprintf(t->name, sizeof t->name, "%s", slash ? slash + 1 : path);
	t->file_number = file_number;
	t->cache = cache;
	rc = env->open(env, path, LSM_OPEN_READ, &t->file);
	if (rc != LSM_OK) {
		free(t);
		return rc;
	}
	if (prob == NULL)
		prob = &own;
	rc = env->size(t->file, &t->file_size);
	if (rc == LSM_OK)
		rc = load_tables(t, prob);
	if (rc == LSM_CORRUPTION)
		lsm_error_note(path, prob->msg[0] ? (int64_t)prob->offset : -1, "%s",
		               prob->msg[0] ? prob->msg : "damaged table");
	if (rc != LSM_OK) {
		lsm_table_close(t);
		return rc;
	}
	*out = t;
	return LSM_OK;
}

int lsm_table_open(lsm_env *env, const char *path, uint64_t file_number,
                   lsm_cache *cache, const lsm_table_options *opts,
                   lsm_table **out)
{
	(void)opts;
	return lsm_table_open_internal(env, path, file_number, cache, NULL, out);
}

void lsm_table_close(lsm_table *t)
{
	if (t == NULL)
		return;
	if (t->file)
		t->env->close(t->file);
	free(t->index_mem);
	free(t->filter);
	free(t->rdel_mem);
	free(t->rdels);
	lsm_table_props_free(&t->props);
	free(t);
}

const lsm_table_rdel *lsm_table_range_dels(const lsm_table *t, size_t *n)
{
	*n = t->nrdels;
	return t->nrdels ? t->rdels : NULL;
}

const lsm_table_props *lsm_table_properties(const lsm_table *t)
{
	return &t->props;
}

uint64_t lsm_table_file_size(const lsm_table *t)
{
	return t->file_size;
}

size_t lsm_table_memory(const lsm_table *t)
{
	return sizeof *t + t->index.size + t->filter_len +
	       t->nrdels * sizeof *t->rdels + t->rdel_bytes +
	       t->props.smallest_klen + t->props.largest_klen + 2 * LSM_TRAILER_SIZE;
}

uint64_t lsm_table_file_number(const lsm_table *t)
{
	return t->file_number;
}

void lsm_table_get_stats(const lsm_table *t, lsm_table_stats *st)
{
	lsm_table *m = (lsm_table *)t;   /* atomic loads want non-const */

	st->block_reads = atomic_load_explicit(&m->st_block_reads, memory_order_relaxed);
	st->block_read_bytes = atomic_load_explicit(&m->st_block_read_bytes, memory_order_relaxed);
	st->cache_hits = atomic_load_explicit(&m->st_cache_hits, memory_order_relaxed);
	st->bloom_checks = atomic_load_explicit(&m->st_bloom_checks, memory_order_relaxed);
	st->bloom_negatives = atomic_load_explicit(&m->st_bloom_negatives, memory_order_relaxed);
}
