/*
 * table_builder.c — writes an SSTable (format.h) to "<path>.tmp", then
 * makes it durable and gives it its final name.
 *
 * Invariants
 *   - Point entries arrive in strictly increasing internal-key order (add
 *     refuses anything else with LSM_INVALID, changing nothing), so data
 *     blocks, and the index built over them, are sorted.
 *   - A data block's index entry is written only once the next key is
 *     known (or at finish), so its separator can be shortened:
 *     last key of block i <= separator < first key of block i+1.
 *   - The file is append-only: `flushed` bytes were handed to env->write at
 *     offsets [0, flushed), and wbuf holds the bytes that follow.  Offsets
 *     in block handles are logical (flushed + wbuf.len at the time).
 *   - After the first failure past argument checking, `status` is sticky:
 *     what reached the file is unknown, so the table can only be abandoned
 *     (finish then removes the temp file and returns the error).
 *   - <path> appears only by the rename of a complete, fsync'd file, and
 *     only then is the directory fsync'd; a failure of that last step
 *     removes <path> again, so an error never leaves a final file.
 */
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "crc32.h"
#include "format.h"
#include "hash.h"
#include "lz4block.h"

/* Writes are gathered up to this size so small blocks cost one syscall per
 * 64 KiB rather than one each; bigger blocks bypass the buffer. */
#define WBUF_SIZE ((size_t)64 << 10)

typedef struct pending_rdel {
	uint8_t *start;         /* start bytes, then end bytes, one malloc */
	size_t   slen;
	size_t   elen;
	uint64_t seq;
} pending_rdel;

struct lsm_table_builder {
	lsm_env    *env;
	lsm_table_options o;
	char       *path;
	char       *tmp;
	lsm_file   *file;
	uint64_t    flushed;
	lsm_buf     wbuf;
	int         status;
	lsm_block_builder data;
	lsm_block_builder index;
	lsm_buf     last;           /* encoded internal key of the last entry */
	lsm_buf     key;            /* scratch: the entry being added */
	lsm_buf     sep;            /* scratch: index separators */
	lsm_buf     cbuf;           /* scratch: compressed block */
	lsm_buf     smallest;       /* the first entry's encoded key */
	int         pending_index;
	lsm_block_handle pending_h;
	uint64_t   *hashes;         /* one per distinct user key */
	size_t      nhashes;
	size_t      hcap;
	pending_rdel *rdels;
	size_t      nrdels;
	size_t      rcap;
	lsm_table_props p;          /* counters; keys are filled at finish */
};

void lsm_table_options_init(lsm_table_options *o)
{
	o->block_size = 4096;
	o->restart_interval = 16;
	o->bloom_bits_per_key = 10;
	o->compression = LSM_TABLE_COMPRESSION_LZ4;
}

void lsm_table_props_free(lsm_table_props *p)
{
	if (p == NULL)
		return;
	free(p->smallest_key);
	free(p->largest_key);
	memset(p, 0, sizeof *p);
}

static int options_ok(const lsm_table_options *o)
{
	return o->block_size >= 64 && o->block_size <= LSM_TABLE_MAX_BLOCK_SIZE_OPT &&
	       o->restart_interval >= 1 && o->restart_interval <= 1024 &&
	       o->bloom_bits_per_key >= 0 && o->bloom_bits_per_key <= 64 &&
	       (o->compression == LSM_TABLE_COMPRESSION_NONE ||
	        o->compression == LSM_TABLE_COMPRESSION_LZ4);
}

static void builder_free(lsm_table_builder *b)
{
	lsm_buf_free(&b->wbuf);
	lsm_block_builder_free(&b->data);
	lsm_block_builder_free(&b->index);
	lsm_buf_free(&b->last);
	lsm_buf_free(&b->key);
	lsm_buf_free(&b->sep);
	lsm_buf_free(&b->cbuf);
	lsm_buf_free(&b->smallest);
	free(b->hashes);
	for (size_t i = 0; i < b->nrdels; i++)
		free(b->rdels[i].start);
	free(b->rdels);
	free(b->path);
	free(b->tmp);
	free(b);
}

static char *str_dup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

int lsm_table_builder_open(lsm_env *env, const char *path,
                           const lsm_table_options *opts,
                           lsm_table_builder **out)
{
	lsm_table_builder *b;
	size_t plen;
	int rc;

	*out = NULL;
	if (env == NULL || path == NULL || path[0] == '\0')
		return LSM_INVALID;
	b = calloc(1, sizeof *b);
	if (b == NULL)
		return LSM_NOMEM;
	if (opts)
		b->o = *opts;
	else
		lsm_table_options_init(&b->o);
	if (!options_ok(&b->o)) {
		free(b);
		return LSM_INVALID;
	}
	b->env = env;
	lsm_buf_init(&b->wbuf);
	lsm_block_builder_init(&b->data, b->o.restart_interval);
	/* Interval 1: every index lookup is a pure binary search. */
	lsm_block_builder_init(&b->index, 1);
	lsm_buf_init(&b->last);
	lsm_buf_init(&b->key);
	lsm_buf_init(&b->sep);
	lsm_buf_init(&b->cbuf);
	lsm_buf_init(&b->smallest);
	plen = strlen(path);
	b->path = str_dup(path);
	b->tmp = malloc(plen + 5);
	if (b->path == NULL || b->tmp == NULL) {
		builder_free(b);
		return LSM_NOMEM;
	}
	memcpy(b->tmp, path, plen);
	memcpy(b->tmp + plen, ".tmp", 5);
	b->p.format_version = LSM_TABLE_FORMAT_VERSION;
	rc = env->open(env, b->tmp, LSM_OPEN_WRITE | LSM_OPEN_CREATE | LSM_OPEN_TRUNC,
	               &b->file);
	if (rc != LSM_OK) {
		b->file = NULL;
		builder_free(b);
		return rc;
	}
	*out = b;
	return LSM_OK;
}

/* ------------------------------------------------------------ file output */

static uint64_t cur_offset(const lsm_table_builder *b)
{
	return b->flushed + b->wbuf.len;
}

static int set_status(lsm_table_builder *b, int rc)
{
	if (rc != LSM_OK && b->status == LSM_OK)
		b->status = rc;
	return rc;
}

static int flush_wbuf(lsm_table_builder *b)
{
	int rc;

	if (b->wbuf.len == 0)
		return LSM_OK;
	rc = b->env->write(b->file, b->flushed, b->wbuf.data, b->wbuf.len);
	if (rc != LSM_OK)
		return set_status(b, rc);
	b->flushed += b->wbuf.len;
	lsm_buf_reset(&b->wbuf);
	return LSM_OK;
}

static int write_bytes(lsm_table_builder *b, const void *p, size_t n)
{
	int rc;

	if (n >= WBUF_SIZE) {
		rc = flush_wbuf(b);
		if (rc != LSM_OK)
			return rc;
		rc = b->env->write(b->file, b->flushed, p, n);
		if (rc != LSM_OK)
			return set_status(b, rc);
		b->flushed += n;
		return LSM_OK;
	}
	lsm_buf_put_bytes(&b->wbuf, p, n);
	if (b->wbuf.err)
		return set_status(b, LSM_NOMEM);
	if (b->wbuf.len >= WBUF_SIZE)
		return flush_wbuf(b);
	return LSM_OK;
}

/*
 * Stores one block: LZ4 when allowed and at least 1/8 smaller, then the
 * trailer (type, masked crc of stored bytes + type).  *h gets its place.
 */
static int write_block(lsm_table_builder *b, const uint8_t *contents,
                       size_t len, int compress, lsm_block_handle *h)
{
	const uint8_t *stored = contents;
	size_t slen = len;
	uint8_t trailer[LSM_BLOCK_TRAILER_SIZE];
	uint8_t type = LSM_BLOCK_TYPE_NONE;
	uint32_t crc;
	int rc;

	if (compress && b->o.compression == LSM_TABLE_COMPRESSION_LZ4 && len >= 64) {
		size_t bound = lsm_lz4_compress_bound(len), hdr, clen;

		lsm_buf_reset(&b->cbuf);
		if (bound > 0 && lsm_buf_reserve(&b->cbuf, bound + LSM_MAX_VARINT32_LEN) == LSM_OK) {
			hdr = lsm_encode_varint32(b->cbuf.data, (uint32_t)len);
			if (lsm_lz4_compress(contents, len, b->cbuf.data + hdr, bound,
			                     &clen) == LSM_OK &&
			    hdr + clen <= len - len / 8) {
				stored = b->cbuf.data;
				slen = hdr + clen;
				type = LSM_BLOCK_TYPE_LZ4;
			}
		}
		/* On NOMEM the block is simply stored uncompressed. */
		lsm_buf_reset(&b->cbuf);
	}
	crc = lsm_crc32_extend(lsm_crc32(stored, slen), &type, 1);
	trailer[0] = type;
	lsm_put_fixed32(trailer + 1, lsm_crc32_mask(crc));
	h->offset = cur_offset(b);
	h->size = slen;
	rc = write_bytes(b, stored, slen);
	if (rc == LSM_OK)
		rc = write_bytes(b, trailer, sizeof trailer);
	return rc;
}

/* Finishes and writes a builder's block, then empties the builder. */
static int write_built(lsm_table_builder *b, lsm_block_builder *bb,
                       int compress, lsm_block_handle *h)
{
	const uint8_t *data;
	size_t len;
	int rc = lsm_block_builder_finish(bb, &data, &len);

	if (rc == LSM_OK)
		rc = write_block(b, data, len, compress, h);
	lsm_block_builder_reset(bb);
	return set_status(b, rc);
}

/* ------------------------------------------------------------ separators */

static void put_seek_key(lsm_buf *out, const uint8_t *ukey, size_t n,
                         uint8_t last)
{
	lsm_buf_put_bytes(out, ukey, n);
	lsm_buf_put_u8(out, last);
	lsm_buf_put_u64(out, lsm_pack_trailer(LSM_MAX_SEQUENCE, LSM_TYPE_SEEK));
}

/* out = a short key k with a <= k < b (encoded internal keys, a < b). */
static void make_separator(lsm_buf *out, const uint8_t *a, size_t alen,
                           const uint8_t *b, size_t blen)
{
	size_t ua = alen - LSM_TRAILER_SIZE, ub = blen - LSM_TRAILER_SIZE;
	size_t n = ua < ub ? ua : ub, i = 0;

	lsm_buf_reset(out);
	while (i < n && a[i] == b[i])
		i++;
	/* ua[0..i] + (a[i] + 1) is > ua and < ub; worth it only if shorter. */
	if (i < n && a[i] + 1 < b[i] && i + 1 < ua) {
		put_seek_key(out, a, i, (uint8_t)(a[i] + 1));
		return;
	}
	lsm_buf_put_bytes(out, a, alen);
}

/* out = a short key k >= a (for the last block). */
static void make_successor(lsm_buf *out, const uint8_t *a, size_t alen)
{
	size_t ua = alen - LSM_TRAILER_SIZE, i = 0;

	lsm_buf_reset(out);
	while (i < ua && a[i] == 0xff)
		i++;
	if (i + 1 < ua) {
		put_seek_key(out, a, i, (uint8_t)(a[i] + 1));
		return;
	}
	lsm_buf_put_bytes(out, a, alen);
}

static int add_index_entry(lsm_table_builder *b, const lsm_block_handle *h)
{
	uint8_t hv[LSM_BLOCK_HANDLE_MAX_LEN];
	size_t hn = lsm_block_handle_encode(hv, h);

	if (b->sep.err)
		return set_status(b, LSM_NOMEM);
	return set_status(b, lsm_block_builder_add(&b->index, b->sep.data,
	                                           b->sep.len, hv, hn));
}

/* ------------------------------------------------------------ adding */

static int flush_data_block(lsm_table_builder *b)
{
	lsm_block_handle h;
	int rc;

	if (lsm_block_builder_empty(&b->data))
		return LSM_OK;
	rc = write_built(b, &b->data, 1, &h);
	if (rc != LSM_OK)
		return rc;
	b->p.data_blocks++;
	b->p.data_bytes += h.size + LSM_BLOCK_TRAILER_SIZE;
	b->pending_index = 1;
	b->pending_h = h;
	return LSM_OK;
}

static int push_hash(lsm_table_builder *b, const void *key, size_t klen)
{
	if (b->nhashes == b->hcap) {
		size_t cap = b->hcap ? 2 * b->hcap : 1024;
		uint64_t *v = realloc(b->hashes, cap * sizeof *v);

		if (v == NULL)
			return LSM_NOMEM;
		b->hashes = v;
		b->hcap = cap;
	}
	b->hashes[b->nhashes++] = lsm_xxh64(key, klen, LSM_TABLE_BLOOM_SEED);
	return LSM_OK;
}

int lsm_table_builder_add(lsm_table_builder *b, const void *key, size_t klen,
                          uint64_t trailer, const void *val, size_t vlen)
{
	int type = lsm_trailer_type(trailer);
	uint64_t seq = lsm_trailer_seq(trailer);
	int have_last = b->p.entries > 0;
	lsm_buf tmp;
	int rc;

	if (b->status != LSM_OK)
		return b->status;
	if ((key == NULL && klen) || (val == NULL && vlen) ||
	    (type != LSM_TYPE_PUT && type != LSM_TYPE_DELETE) ||
	    (type == LSM_TYPE_DELETE && vlen != 0))
		return LSM_INVALID;
	if (klen > LSM_MAX_KEY_SIZE || vlen > LSM_MAX_VALUE_SIZE)
		return LSM_TOOBIG;
	lsm_buf_reset(&b->key);
	lsm_buf_put_bytes(&b->key, key, klen);
	lsm_buf_put_u64(&b->key, trailer);
	if (b->key.err)
		return LSM_NOMEM;
	if (have_last && lsm_enc_ikey_compare(b->last.data, b->last.len,
	                                      b->key.data, b->key.len) >= 0)
		return LSM_INVALID;

	/* From here on a failure leaves partial state: it is sticky. */
	if (b->pending_index) {
		make_separator(&b->sep, b->last.data, b->last.len, b->key.data, b->key.len);
		rc = add_index_entry(b, &b->pending_h);
		if (rc != LSM_OK)
			return rc;
		b->pending_index = 0;
	}
	if (b->o.bloom_bits_per_key > 0 &&
	    (!have_last || lsm_bytewise_compare(b->last.data, b->last.len - LSM_TRAILER_SIZE,
	                                        key, klen) != 0)) {
		rc = push_hash(b, key, klen);
		if (rc != LSM_OK)
			return set_status(b, rc);
	}
	rc = lsm_block_builder_add(&b->data, b->key.data, b->key.len, val, vlen);
	if (rc != LSM_OK)
		return set_status(b, rc);
	if (!have_last) {
		lsm_buf_put_bytes(&b->smallest, b->key.data, b->key.len);
		if (b->smallest.err)
			return set_status(b, LSM_NOMEM);
		b->p.smallest_seq = seq;
	}
	tmp = b->last;
	b->last = b->key;
	b->key = tmp;
	b->p.entries++;
	if (type == LSM_TYPE_DELETE)
		b->p.deletions++;
	b->p.raw_key_bytes += klen;
	b->p.raw_value_bytes += vlen;
	if (seq < b->p.smallest_seq)
		b->p.smallest_seq = seq;
	if (seq > b->p.largest_seq)
		b->p.largest_seq = seq;
	if (lsm_block_builder_estimate(&b->data) >= b->o.block_size)
		return flush_data_block(b);
	return LSM_OK;
}

int lsm_table_builder_add_range_delete(lsm_table_builder *b,
                                       const void *start, size_t slen,
                                       const void *end, size_t elen,
                                       uint64_t seq)
{
	pending_rdel *r;

	if (b->status != LSM_OK)
		return b->status;
	if ((start == NULL && slen) || (end == NULL && elen) ||
	    seq > LSM_MAX_SEQUENCE ||
	    lsm_bytewise_compare(start, slen, end, elen) >= 0)
		return LSM_INVALID;
	if (slen > LSM_MAX_KEY_SIZE || elen > LSM_MAX_KEY_SIZE)
		return LSM_TOOBIG;
	if (b->nrdels == b->rcap) {
		size_t cap = b->rcap ? 2 * b->rcap : 16;
		pending_rdel *v = realloc(b->rdels, cap * sizeof *v);

		if (v == NULL)
			return LSM_NOMEM;
		b->rdels = v;
		b->rcap = cap;
	}
	r = &b->rdels[b->nrdels];
	r->start = malloc(slen + elen + 1);
	if (r->start == NULL)
		return LSM_NOMEM;
	if (slen)
		memcpy(r->start, start, slen);
	if (elen)
		memcpy(r->start + slen, end, elen);
	r->slen = slen;
	r->elen = elen;
	r->seq = seq;
	b->nrdels++;
	return LSM_OK;
}

uint64_t lsm_table_builder_file_size(const lsm_table_builder *b)
{
	return cur_offset(b) + (lsm_block_builder_empty(&b->data) ? 0 :
	                        lsm_block_builder_estimate(&b->data));
}

uint64_t lsm_table_builder_entries(const lsm_table_builder *b)
{
	return b->p.entries + b->nrdels;
}

/* ------------------------------------------------------------ finishing */

/* (start asc, seq desc, end asc). */
static int rdel_cmp(const void *x, const void *y)
{
	const pending_rdel *a = x, *b = y;
	int c = lsm_bytewise_compare(a->start, a->slen, b->start, b->slen);

	if (c != 0)
		return c;
	if (a->seq != b->seq)
		return a->seq > b->seq ? -1 : 1;
	return lsm_bytewise_compare(a->start + a->slen, a->elen,
	                            b->start + b->slen, b->elen);
}

/*
 * Sorts the range deletions and merges those with the same (start, seq):
 * [s, e1)@q and [s, e2)@q delete exactly what [s, max(e1, e2))@q does, so
 * only the last (largest end) of each run is kept.
 */
static void sort_rdels(lsm_table_builder *b)
{
	size_t out = 0;

	if (b->nrdels > 1)
		qsort(b->rdels, b->nrdels, sizeof *b->rdels, rdel_cmp);
	for (size_t i = 0; i < b->nrdels; i++) {
		pending_rdel *r = &b->rdels[i];

		if (i + 1 < b->nrdels && r->seq == r[1].seq &&
		    lsm_bytewise_compare(r->start, r->slen, r[1].start, r[1].slen) == 0) {
			free(r->start);
			continue;
		}
		b->rdels[out++] = *r;
	}
	b->nrdels = out;
}

static int write_rdel_block(lsm_table_builder *b, lsm_block_handle *h)
{
	lsm_block_builder bb;
	int rc = LSM_OK;

	lsm_block_builder_init(&bb, b->o.restart_interval);
	for (size_t i = 0; i < b->nrdels && rc == LSM_OK; i++) {
		const pending_rdel *r = &b->rdels[i];

		lsm_buf_reset(&b->key);
		lsm_buf_put_bytes(&b->key, r->start, r->slen);
		lsm_buf_put_u64(&b->key, lsm_pack_trailer(r->seq, LSM_TYPE_RANGE_DELETE));
		rc = b->key.err ? LSM_NOMEM :
		     lsm_block_builder_add(&bb, b->key.data, b->key.len,
		                           r->start + r->slen, r->elen);
	}
	if (rc == LSM_OK)
		rc = write_built(b, &bb, 1, h);
	lsm_block_builder_free(&bb);
	return set_status(b, rc);
}

static int set_key(uint8_t **dst, size_t *dlen, uint64_t *dtrailer,
                   const uint8_t *enc, size_t len)
{
	free(*dst);
	*dst = malloc(len);
	if (*dst == NULL)
		return LSM_NOMEM;
	memcpy(*dst, enc, len);
	*dlen = len - LSM_TRAILER_SIZE;
	*dtrailer = lsm_get_fixed64(enc + *dlen);
	return LSM_OK;
}

/* Fills the bounds and sequence range of b->p from points + rdels. */
static int compute_bounds(lsm_table_builder *b)
{
	lsm_buf lo, hi;
	const pending_rdel *maxend = NULL;
	int rc = LSM_OK;

	b->p.range_deletions = b->nrdels;
	if (b->p.entries == 0 && b->nrdels == 0)
		return LSM_OK;
	lsm_buf_init(&lo);
	lsm_buf_init(&hi);
	if (b->p.entries > 0) {
		lsm_buf_put_bytes(&lo, b->smallest.data, b->smallest.len);
		lsm_buf_put_bytes(&hi, b->last.data, b->last.len);
	} else {
		b->p.smallest_seq = UINT64_MAX;
	}
	for (size_t i = 0; i < b->nrdels; i++) {
		const pending_rdel *r = &b->rdels[i];

		if (r->seq < b->p.smallest_seq)
			b->p.smallest_seq = r->seq;
		if (r->seq > b->p.largest_seq)
			b->p.largest_seq = r->seq;
		if (maxend == NULL || lsm_bytewise_compare(r->start + r->slen, r->elen,
		                                           maxend->start + maxend->slen,
		                                           maxend->elen) > 0)
			maxend = r;
	}
	if (b->nrdels > 0) {
		/* rdels[0] is the smallest (start, trailer) after sorting */
		lsm_buf_reset(&b->sep);
		lsm_buf_put_bytes(&b->sep, b->rdels[0].start, b->rdels[0].slen);
		lsm_buf_put_u64(&b->sep, lsm_pack_trailer(b->rdels[0].seq, LSM_TYPE_RANGE_DELETE));
		if (b->sep.err)
			rc = LSM_NOMEM;
		else if (lo.len == 0 || lsm_enc_ikey_compare(b->sep.data, b->sep.len,
		                                             lo.data, lo.len) < 0) {
			lsm_buf_reset(&lo);
			lsm_buf_put_bytes(&lo, b->sep.data, b->sep.len);
		}
		lsm_buf_reset(&b->sep);
		lsm_buf_put_bytes(&b->sep, maxend->start + maxend->slen, maxend->elen);
		lsm_buf_put_u64(&b->sep, lsm_pack_trailer(LSM_MAX_SEQUENCE, LSM_TYPE_RANGE_DELETE));
		if (b->sep.err)
			rc = LSM_NOMEM;
		else if (hi.len == 0 || lsm_enc_ikey_compare(b->sep.data, b->sep.len,
		                                             hi.data, hi.len) > 0) {
			lsm_buf_reset(&hi);
			lsm_buf_put_bytes(&hi, b->sep.data, b->sep.len);
		}
	}
	if (lo.err || hi.err)
		rc = LSM_NOMEM;
	if (rc == LSM_OK)
		rc = set_key(&b->p.smallest_key, &b->p.smallest_klen,
		             &b->p.smallest_trailer, lo.data, lo.len);
	if (rc == LSM_OK)
		rc = set_key(&b->p.largest_key, &b->p.largest_klen,
		             &b->p.largest_trailer, hi.data, hi.len);
	if (rc == LSM_OK)
		b->p.has_bounds = 1;
	lsm_buf_free(&lo);
	lsm_buf_free(&hi);
	return rc;
}

static void add_prop_u64(lsm_block_builder *bb, int *rc, const char *name,
                         uint64_t v)
{
	uint8_t tmp[LSM_MAX_VARINT64_LEN];
	size_t n = lsm_encode_varint64(tmp, v);

	if (*rc == LSM_OK)
		*rc = lsm_block_builder_add(bb, name, strlen(name), tmp, n);
}

static void add_prop_key(lsm_block_builder *bb, int *rc, const char *name,
                         lsm_buf *scratch, const uint8_t *k, size_t klen,
                         uint64_t trailer)
{
	lsm_buf_reset(scratch);
	lsm_buf_put_bytes(scratch, k, klen);
	lsm_buf_put_u64(scratch, trailer);
	if (*rc == LSM_OK && scratch->err)
		*rc = LSM_NOMEM;
	if (*rc == LSM_OK)
		*rc = lsm_block_builder_add(bb, name, strlen(name), scratch->data,
		                            scratch->len);
}

/* Names in memcmp order, as the block format requires. */
static int write_props_block(lsm_table_builder *b, lsm_block_handle *h)
{
	const lsm_table_props *p = &b->p;
	lsm_block_builder bb;
	int rc = LSM_OK;

	lsm_block_builder_init(&bb, b->o.restart_interval);
	add_prop_u64(&bb, &rc, LSM_PROP_DATA_BLOCKS, p->data_blocks);
	add_prop_u64(&bb, &rc, LSM_PROP_DATA_BYTES, p->data_bytes);
	add_prop_u64(&bb, &rc, LSM_PROP_DELETIONS, p->deletions);
	add_prop_u64(&bb, &rc, LSM_PROP_ENTRIES, p->entries);
	add_prop_u64(&bb, &rc, LSM_PROP_FILTER_BYTES, p->filter_bytes);
	add_prop_u64(&bb, &rc, LSM_PROP_FORMAT_VERSION, p->format_version);
	if (p->has_bounds) {
		add_prop_key(&bb, &rc, LSM_PROP_KEY_LARGEST, &b->sep, p->largest_key,
		             p->largest_klen, p->largest_trailer);
		add_prop_key(&bb, &rc, LSM_PROP_KEY_SMALLEST, &b->sep, p->smallest_key,
		             p->smallest_klen, p->smallest_trailer);
	}
	add_prop_u64(&bb, &rc, LSM_PROP_RANGE_DELS, p->range_deletions);
	add_prop_u64(&bb, &rc, LSM_PROP_RAW_KEY_BYTES, p->raw_key_bytes);
	add_prop_u64(&bb, &rc, LSM_PROP_RAW_VAL_BYTES, p->raw_value_bytes);
	add_prop_u64(&bb, &rc, LSM_PROP_SEQ_LARGEST, p->largest_seq);
	add_prop_u64(&bb, &rc, LSM_PROP_SEQ_SMALLEST, p->smallest_seq);
	if (rc == LSM_OK)
		rc = write_built(b, &bb, 1, h);
	lsm_block_builder_free(&bb);
	return set_status(b, rc);
}

static void add_meta(lsm_block_builder *bb, int *rc, const char *name,
                     const lsm_block_handle *h)
{
	uint8_t hv[LSM_BLOCK_HANDLE_MAX_LEN];
	size_t hn = lsm_block_handle_encode(hv, h);

	if (*rc == LSM_OK)
		*rc = lsm_block_builder_add(bb, name, strlen(name), hv, hn);
}

/* Everything after the last data block, up to and including the footer. */
static int write_tail(lsm_table_builder *b)
{
	lsm_block_handle fh = {0, 0}, rh = {0, 0}, ph, mh, ih;
	uint8_t footer[LSM_TABLE_FOOTER_SIZE];
	lsm_block_builder meta;
	size_t n;
	int rc;

	if (b->status != LSM_OK)
		return b->status;
	rc = flush_data_block(b);
	if (rc != LSM_OK)
		return rc;
	if (b->pending_index) {
		make_successor(&b->sep, b->last.data, b->last.len);
		rc = add_index_entry(b, &b->pending_h);
		if (rc != LSM_OK)
			return rc;
		b->pending_index = 0;
	}
	if (b->o.bloom_bits_per_key > 0) {
		size_t flen = lsm_bloom_filter_size(b->nhashes, b->o.bloom_bits_per_key);
		uint8_t *f = flen < LSM_TABLE_MAX_BLOCK ? malloc(flen) : NULL;

		if (f == NULL)
			return set_status(b, LSM_NOMEM);
		lsm_bloom_build(b->hashes, b->nhashes, b->o.bloom_bits_per_key, f);
		/* random bits: compression would only cost time */
		rc = set_status(b, write_block(b, f, flen, 0, &fh));
		free(f);
		if (rc != LSM_OK)
			return rc;
		b->p.filter_bytes = flen;
	}
	sort_rdels(b);
	if (b->nrdels > 0) {
		rc = write_rdel_block(b, &rh);
		if (rc != LSM_OK)
			return rc;
	}
	rc = compute_bounds(b);
	if (rc != LSM_OK)
		return set_status(b, rc);
	rc = write_props_block(b, &ph);
	if (rc != LSM_OK)
		return rc;

	lsm_block_builder_init(&meta, 1);
	if (b->o.bloom_bits_per_key > 0)
		add_meta(&meta, &rc, LSM_META_FILTER, &fh);
	add_meta(&meta, &rc, LSM_META_PROPERTIES, &ph);
	if (b->nrdels > 0)
		add_meta(&meta, &rc, LSM_META_RANGEDEL, &rh);
	if (rc == LSM_OK)
		rc = write_built(b, &meta, 1, &mh);
	lsm_block_builder_free(&meta);
	if (rc != LSM_OK)
		return set_status(b, rc);
	rc = write_built(b, &b->index, 1, &ih);
	if (rc != LSM_OK)
		return rc;

	memset(footer, 0, sizeof footer);
	n = lsm_block_handle_encode(footer, &mh);
	lsm_block_handle_encode(footer + n, &ih);
	lsm_put_fixed32(footer + 40, LSM_TABLE_FORMAT_VERSION);
	lsm_put_fixed64(footer + 44, LSM_TABLE_MAGIC);
	lsm_put_fixed32(footer + 52, lsm_crc32_mask(lsm_crc32(footer, 52)));
	rc = write_bytes(b, footer, sizeof footer);
	if (rc == LSM_OK)
		rc = flush_wbuf(b);
	return rc;
}

/* The directory holding path, spelled as the text before its last '/'. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n;
	char *d;

	if (slash == NULL)
		return str_dup(".");
	n = slash == path ? 1 : (size_t)(slash - path);
	d = malloc(n + 1);
	if (d) {
		memcpy(d, path, n);
		d[n] = '\0';
	}
	return d;
}

int lsm_table_builder_finish(lsm_table_builder *b, lsm_table_props *props)
{
	lsm_env *env = b->env;
	char *dir = NULL;
	int renamed = 0, rc;

	if (props)
		memset(props, 0, sizeof *props);
	rc = write_tail(b);
	if (rc == LSM_OK)
		rc = env->sync(b->file);
	if (rc == LSM_OK) {
		rc = env->close(b->file);
		b->file = NULL;
	}
	if (rc == LSM_OK) {
		dir = dir_of(b->path);
		rc = dir ? LSM_OK : LSM_NOMEM;
	}
	if (rc == LSM_OK)
		rc = env->rename(env, b->tmp, b->path);
	if (rc == LSM_OK) {
		renamed = 1;
		rc = env->sync_dir(env, dir);
	}
	if (rc != LSM_OK) {
		/* Best effort: the caller learns the error either way. */
		if (b->file)
			env->close(b->file);
		b->file = NULL;
		env->remove(env, b->tmp);
		if (renamed)
			env->remove(env, b->path);
	} else if (props) {
		*props = b->p;
		memset(&b->p, 0, sizeof b->p);    /* the keys now belong to props */
	}
	free(dir);
	lsm_table_props_free(&b->p);
	builder_free(b);
	return rc;
}

void lsm_table_builder_abandon(lsm_table_builder *b)
{
	if (b == NULL)
		return;
	if (b->file)
		b->env->close(b->file);
	b->env->remove(b->env, b->tmp);
	lsm_table_props_free(&b->p);
	builder_free(b);
}
