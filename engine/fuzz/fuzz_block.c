/*
 * fuzz_block.c — the SSTable block reader (table/block.c) and the bloom
 * filter reader (util/bloom.c), on block contents as they are once a
 * block's checksum has passed and it is decompressed.
 *
 * Input: one mode byte, then the contents.
 *   mode bit 1 clear: a block of internal keys (data, index, range
 *     deletions; bit 0 clear) or of names (metaindex, properties; bit 0
 *     set).  Parsed, walked and sought as the table reader does.  When
 *     lsm_block_check calls it sound, the walk must end cleanly with keys
 *     strictly increasing, and seeking each key must land on it.
 *   mode bit 1 set: a bloom filter.  Probing arbitrary bytes must not
 *     crash; and a filter built over hashes taken from the input must
 *     answer "may contain" for every one of them.
 */
#include "fuzz.h"
#include "bloom.h"
#include "format.h"
#include "hash.h"

#define MAX_SEEKS 32

static int key_compare(int kind, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return kind == LSM_BLOCK_IKEYS ? lsm_enc_ikey_compare(a, alen, b, blen)
	                               : lsm_bytewise_compare(a, alen, b, blen);
}

static void walk_block(const uint8_t *data, size_t size, int kind)
{
	lsm_block blk;
	lsm_block_iter it, seek_it;
	const char *why = NULL;
	uint8_t *keys[MAX_SEEKS];
	size_t klens[MAX_SEEKS], nkeys = 0, prev_len = 0, k;
	uint8_t *prev = NULL;
	int sound;

	if (lsm_block_parse(&blk, data, size) != LSM_OK)
		return;
	sound = lsm_block_check(&blk, kind, &why) == LSM_OK;
	lsm_block_iter_init(&it, &blk, kind);
	for (lsm_block_iter_seek_to_first(&it); it.valid; lsm_block_iter_next(&it)) {
		const uint8_t *key = lsm_block_iter_key(&it, &k);

		FUZZ_CHECK(it.val >= blk.data && it.val + it.vlen <= blk.data + blk.limit);
		if (sound && prev)
			FUZZ_CHECK(key_compare(kind, prev, prev_len, key, k) < 0);
		free(prev);
		prev = fuzz_copy(key, k);
		prev_len = k;
		if (nkeys < MAX_SEEKS) {
			keys[nkeys] = fuzz_copy(key, k);
			klens[nkeys++] = k;
		}
	}
	if (sound)
		FUZZ_CHECK(it.status == LSM_OK);
	free(prev);
	lsm_block_iter_init(&seek_it, &blk, kind);
	for (size_t i = 0; i < nkeys; i++) {
		lsm_block_iter_seek(&seek_it, keys[i], klens[i]);
		if (sound) {
			const uint8_t *key;

			FUZZ_CHECK(seek_it.valid && seek_it.status == LSM_OK);
			key = lsm_block_iter_key(&seek_it, &k);
			FUZZ_CHECK(k == klens[i] && memcmp(key, keys[i], k) == 0);
		}
		free(keys[i]);
	}
	lsm_block_iter_free(&seek_it);
	lsm_block_iter_free(&it);
}

static void probe_filter(const uint8_t *data, size_t size)
{
	size_t n = size / 8, bits = data[0] % 20 + 1, len;
	uint64_t *hashes;
	uint8_t *filter;

	for (size_t i = 0; i + 8 <= size; i += 8)
		(void)lsm_bloom_may_contain(data, size, lsm_get_fixed64(data + i));
	(void)lsm_bloom_may_contain(data, size, lsm_xxh64(data, size, 0));
	if (n == 0)
		return;
	hashes = malloc(n * sizeof *hashes);
	FUZZ_CHECK(hashes != NULL);
	for (size_t i = 0; i < n; i++)
		hashes[i] = lsm_get_fixed64(data + 8 * i);
	len = lsm_bloom_filter_size(n, (int)bits);
	filter = malloc(len ? len : 1);
	FUZZ_CHECK(filter != NULL);
	lsm_bloom_build(hashes, n, (int)bits, filter);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(lsm_bloom_may_contain(filter, len, hashes[i]));
	free(filter);
	free(hashes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size < 2)
		return 0;
	/* a copy of exactly the contents: ASan then sees any read past them */
	copy = fuzz_copy(data + 1, size - 1);
	if (data[0] & 2)
		probe_filter(copy, size - 1);
	else
		walk_block(copy, size - 1, (data[0] & 1) ? LSM_BLOCK_BYTEWISE : LSM_BLOCK_IKEYS);
	free(copy);
	return 0;
}
