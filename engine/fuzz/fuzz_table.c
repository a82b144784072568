/*
 * fuzz_table.c — SSTable open, iteration, point lookups and verify
 * (table/table_reader.c, table_iter.c, table_verify.c) on an arbitrary
 * file: footer, metaindex, properties, filter, range deletions, index and
 * data blocks.
 *
 * Input: one mode byte, then the file.  Mode bit 0 reseals the file
 * first: the footer's checksum, then every block the footer, the index and
 * the metaindex point to gets a checksum that holds, so mutated contents
 * reach the decoders behind the checksums.
 *
 * Checked beyond "does not crash": a table that verifies clean opens, and
 * its iteration ends with no error; every key the iteration yields is
 * found by a point lookup; iteration yields internal keys in strictly
 * increasing order when verify says the file is sound.
 */
#include "fuzz.h"
#include "format.h"
#include "lz4block.h"

#define MAX_LOOKUPS 16
#define PATH "fuzz.sst"

/* ------------------------------------------------------------ resealing */

static int handle_ok(size_t size, const lsm_block_handle *h)
{
	return h->offset <= size && h->size <= size - h->offset &&
	       size - h->offset - h->size >= LSM_BLOCK_TRAILER_SIZE;
}

static void reseal_block(uint8_t *buf, size_t size, const lsm_block_handle *h)
{
	if (handle_ok(size, h)) {
		uint8_t *p = buf + h->offset;

		lsm_put_fixed32(p + h->size + 1, lsm_crc32_mask(lsm_crc32(p, h->size + 1)));
	}
}

/* The block's contents (decompressed when LZ4), malloc'd; NULL if bad. */
static uint8_t *block_contents(const uint8_t *buf, size_t size, const lsm_block_handle *h,
                               size_t *len)
{
	const uint8_t *p, *q, *end;
	uint32_t ulen;
	uint8_t *out;

	if (!handle_ok(size, h))
		return NULL;
	p = q = buf + h->offset;
	end = p + h->size;
	if (p[h->size] == LSM_BLOCK_TYPE_NONE) {
		*len = (size_t)h->size;
		return fuzz_copy(p, (size_t)h->size);
	}
	if (p[h->size] != LSM_BLOCK_TYPE_LZ4 || lsm_decode_varint32(&q, end, &ulen) != LSM_OK ||
	    ulen > (1u << 20) || (out = malloc(ulen ? ulen : 1)) == NULL)
		return NULL;
	if (lsm_lz4_decompress(q, (size_t)(end - q), out, ulen, len) != LSM_OK) {
		free(out);
		return NULL;
	}
	return out;
}

/* Reseals each block an index-like block (values are handles) names. */
static void reseal_children(uint8_t *buf, size_t size, const lsm_block_handle *h, int kind)
{
	size_t len = 0;
	uint8_t *c = block_contents(buf, size, h, &len);
	lsm_block blk;
	lsm_block_iter it;

	if (c == NULL)
		return;
	if (lsm_block_parse(&blk, c, len) == LSM_OK) {
		lsm_block_iter_init(&it, &blk, kind);
		for (lsm_block_iter_seek_to_first(&it); it.valid; lsm_block_iter_next(&it)) {
			const uint8_t *v = it.val;
			lsm_block_handle child;

			if (lsm_block_handle_decode(&v, it.val + it.vlen, &child) == LSM_OK)
				reseal_block(buf, size, &child);
		}
		lsm_block_iter_free(&it);
	}
	free(c);
}

static void reseal_table(uint8_t *buf, size_t size)
{
	uint8_t *footer;
	const uint8_t *p;
	lsm_block_handle meta, index;

	if (size < LSM_TABLE_FOOTER_SIZE)
		return;
	footer = buf + size - LSM_TABLE_FOOTER_SIZE;
	p = footer;
	if (lsm_block_handle_decode(&p, footer + LSM_TABLE_FOOTER_HANDLES, &meta) == LSM_OK &&
	    lsm_block_handle_decode(&p, footer + LSM_TABLE_FOOTER_HANDLES, &index) == LSM_OK) {
		reseal_children(buf, size, &meta, LSM_BLOCK_BYTEWISE);
		reseal_children(buf, size, &index, LSM_BLOCK_IKEYS);
		reseal_block(buf, size, &meta);
		reseal_block(buf, size, &index);
	}
	lsm_put_fixed32(footer + 52, lsm_crc32_mask(lsm_crc32(footer, 52)));
}

/* ------------------------------------------------------------ reading */

typedef struct seen {
	uint8_t *key[MAX_LOOKUPS];
	size_t klen[MAX_LOOKUPS];
	size_t n;
} seen;

/* Iterates the whole table; returns the iterator's final status. */
static int iterate(lsm_table *t, int sound, seen *s)
{
	lsm_iiter *it;
	uint8_t *prev = NULL;
	size_t prev_len = 0;
	int rc;

	if (lsm_table_iter_create(t, 0, &it) != LSM_OK)
		return LSM_NOMEM;
	for (it->seek_to_first(it); it->valid(it); it->next(it)) {
		size_t klen, vlen;
		const uint8_t *key = it->key(it, &klen);
		uint64_t trailer = it->trailer(it);
		uint8_t *ik = malloc(klen + 8);

		(void)it->value(it, &vlen);
		FUZZ_CHECK(ik != NULL);
		memcpy(ik, key, klen);
		lsm_put_fixed64(ik + klen, trailer);
		if (sound && prev)
			FUZZ_CHECK(lsm_enc_ikey_compare(prev, prev_len, ik, klen + 8) < 0);
		free(prev);
		prev = ik;
		prev_len = klen + 8;
		if (s->n < MAX_LOOKUPS) {
			s->key[s->n] = fuzz_copy(key, klen);
			s->klen[s->n++] = klen;
		}
	}
	free(prev);
	rc = it->status(it);
	it->destroy(it);
	return rc;
}

static void lookups(lsm_table *t, seen *s, int sound)
{
	for (size_t i = 0; i < s->n; i++) {
		uint64_t trailer = 0;
		void *val = NULL;
		size_t vlen = 0;
		int rc = lsm_table_get_copy(t, s->key[i], s->klen[i], LSM_MAX_SEQUENCE, &trailer,
		                            &val, &vlen);

		if (sound)
			FUZZ_CHECK(rc == LSM_OK);
		free(val);
		free(s->key[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lsm_table_verify_info info;
	lsm_table *t = NULL;
	fuzz_env fe;
	seen s = {{0}, {0}, 0};
	uint8_t *file;
	size_t n;
	int sound, rc;

	if (size < 1)
		return 0;
	n = size - 1;
	file = fuzz_copy(data + 1, n);
	if (data[0] & 1)
		reseal_table(file, n);
	fuzz_env_init(&fe, file, n);
	sound = lsm_table_verify(&fe.env, PATH, NULL, NULL, &info) == LSM_OK;
	rc = lsm_table_open(&fe.env, PATH, 1, NULL, NULL, &t);
	if (sound)
		FUZZ_CHECK(rc == LSM_OK);
	if (rc == LSM_OK) {
		rc = iterate(t, sound, &s);
		if (sound)
			FUZZ_CHECK(rc == LSM_OK);
		lookups(t, &s, sound);
		lsm_table_close(t);
	} else
		FUZZ_CHECK(rc == LSM_CORRUPTION || rc == LSM_NOMEM);
	free(file);
	return 0;
}
