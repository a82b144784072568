/*
 * table_test.c — tests of the SSTable layer (table/): blocks, builder,
 * reader, iterator, filter, range deletions, properties, the block cache,
 * concurrent readers.  Damage and I/O faults are in table_damage_test.c.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "table_testutil.h"

/* ------------------------------------------------------------ blocks */

static void block_round_trip(int interval)
{
	lsm_block_builder bb;
	lsm_block blk;
	lsm_block_iter it;
	const uint8_t *data;
	size_t len, n = 3000;
	char key[32], val[64];
	test_rng r;

	test_rng_seed(&r, 7 + (uint64_t)interval);
	lsm_block_builder_init(&bb, interval);
	for (size_t i = 0; i < n; i++) {
		/* even numbers only, so odd ones fall between keys */
		int kl = snprintf(key, sizeof key, "key%08zu", 2 * i);
		size_t vl = test_rng_uniform(&r, sizeof val);

		memset(val, (int)('a' + i % 26), vl);
		CHECK_OK(lsm_block_builder_add(&bb, key, (size_t)kl, val, vl));
	}
	CHECK_OK(lsm_block_builder_finish(&bb, &data, &len));
	CHECK_EQ_INT(len, lsm_block_builder_estimate(&bb));
	CHECK_OK(lsm_block_parse(&blk, data, len));
	CHECK_EQ_INT(blk.nrestarts, (n + (size_t)interval - 1) / (size_t)interval);
	{
		const char *why = NULL;

		CHECK_OK(lsm_block_check(&blk, LSM_BLOCK_BYTEWISE, &why));
	}
	lsm_block_iter_init(&it, &blk, LSM_BLOCK_BYTEWISE);
	/* full scan */
	{
		size_t i = 0;

		for (lsm_block_iter_seek_to_first(&it); it.valid; lsm_block_iter_next(&it), i++) {
			size_t klen;
			const uint8_t *k = lsm_block_iter_key(&it, &klen);
			int kl = snprintf(key, sizeof key, "key%08zu", 2 * i);

			CHECK_MEM(k, klen, key, (size_t)kl);
			for (size_t j = 0; j < it.vlen; j++)
				CHECK(it.val[j] == (uint8_t)('a' + i % 26));
		}
		CHECK_EQ_INT(i, n);
		CHECK_OK(it.status);
	}
	/* seek to every key and between keys */
	for (size_t x = 0; x < 2 * n + 1; x++) {
		int kl = snprintf(key, sizeof key, "key%08zu", x);
		size_t want = (x + 1) / 2, klen;
		const uint8_t *k;

		lsm_block_iter_seek(&it, (const uint8_t *)key, (size_t)kl);
		if (want >= n) {
			CHECK(!it.valid);
			continue;
		}
		CHECK(it.valid);
		kl = snprintf(key, sizeof key, "key%08zu", 2 * want);
		k = lsm_block_iter_key(&it, &klen);
		CHECK_MEM(k, klen, key, (size_t)kl);
	}
	lsm_block_iter_seek(&it, (const uint8_t *)"", 0);
	CHECK(it.valid);
	lsm_block_iter_seek(&it, (const uint8_t *)"kez", 3);
	CHECK(!it.valid);
	CHECK_OK(it.status);
	lsm_block_iter_free(&it);
	lsm_block_builder_free(&bb);
}

TEST(block_round_trip_interval_1) { block_round_trip(1); }
TEST(block_round_trip_interval_16) { block_round_trip(16); }

TEST(block_empty_and_bad_restarts)
{
	lsm_block_builder bb;
	lsm_block blk;
	lsm_block_iter it;
	const uint8_t *data;
	size_t len;
	uint8_t bad[16];

	lsm_block_builder_init(&bb, 16);
	CHECK_OK(lsm_block_builder_finish(&bb, &data, &len));
	CHECK_EQ_INT(len, 4);
	CHECK_OK(lsm_block_parse(&blk, data, len));
	lsm_block_iter_init(&it, &blk, LSM_BLOCK_IKEYS);
	lsm_block_iter_seek_to_first(&it);
	CHECK(!it.valid);
	lsm_block_iter_free(&it);
	lsm_block_builder_free(&bb);

	CHECK_EQ_INT(lsm_block_parse(&blk, bad, 3), LSM_CORRUPTION);
	memset(bad, 0, sizeof bad);
	lsm_put_fixed32(bad + 12, 5);           /* more restarts than room */
	CHECK_EQ_INT(lsm_block_parse(&blk, bad, 16), LSM_CORRUPTION);
	lsm_put_fixed32(bad + 12, 1);
	lsm_put_fixed32(bad + 8, 4);            /* restart[0] != 0 */
	CHECK_EQ_INT(lsm_block_parse(&blk, bad, 16), LSM_CORRUPTION);
	lsm_put_fixed32(bad + 8, 0);
	CHECK_OK(lsm_block_parse(&blk, bad, 16));
	/* entries of zeros: a key shorter than a trailer in an ikey block */
	lsm_block_iter_init(&it, &blk, LSM_BLOCK_IKEYS);
	lsm_block_iter_seek_to_first(&it);
	CHECK(!it.valid);
	CHECK_EQ_INT(it.status, LSM_CORRUPTION);
	lsm_block_iter_free(&it);
}

/* ------------------------------------------------------------ tables */

static int round_trip_k(const char *name, const lsm_table_options *o,
                        size_t nkeys, int maxver, size_t maxklen, uint64_t seed)
{
	const char *dir = test_tmpdir(name);
	char *path = path_in(dir, "t.sst");
	lsm_table_props props;
	lsm_table_verify_info vi;
	lsm_table *t;
	lsm_iiter *it;
	model m;
	test_rng r;
	int fails = 0;

	test_rng_seed(&r, seed);
	model_gen(&m, &r, nkeys, maxver, maxklen, o->block_size);
	if (build(lsm_env_posix(), path, o, &m, &props) != LSM_OK) {
		TEST_FAIL_AT("build failed");
		model_free(&m);
		return 1;
	}
	if (exists(path_in(dir, "t.sst.tmp")) || props.entries != m.n) {
		TEST_FAIL_AT("temp file left or bad entry count");
		fails++;
	}
	if (lsm_table_open(lsm_env_posix(), path, 1, NULL, NULL, &t) != LSM_OK) {
		TEST_FAIL_AT("open failed");
		lsm_table_props_free(&props);
		model_free(&m);
		return 1;
	}
	fails += check_iter_all(t, &m, 0);
	/* gets: at each version's sequence, just below it, and the newest */
	for (size_t i = 0; i < m.n && !fails; i++) {
		const ent *e = &m.e[i];

		fails += check_get(t, &m, e->key, e->klen, e->seq, 0);
		fails += check_get(t, &m, e->key, e->klen, e->seq - 1, 0);
		fails += check_get(t, &m, e->key, e->klen, LSM_MAX_SEQUENCE, 0);
	}
	/* absent keys and seeks to random targets */
	if (lsm_table_iter_create(t, 1, &it) != LSM_OK)
		fails++;
	for (int i = 0; i < 2000 && !fails; i++) {
		uint8_t kb[64];
		size_t klen = gen_key(&r, kb, 26);
		uint64_t seq = test_rng_uniform(&r, 1000010);
		long x = expect_get(&m, kb, klen, seq);
		size_t lo = 0, hi = m.n;

		fails += check_get(t, &m, kb, klen, seq, 0);
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (lsm_ikey_compare(m.e[mid].key, m.e[mid].klen,
			                     lsm_pack_trailer(m.e[mid].seq, m.e[mid].type),
			                     kb, klen, lsm_pack_trailer(seq, LSM_TYPE_PUT)) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		it->seek(it, kb, klen, lsm_pack_trailer(seq, LSM_TYPE_PUT));
		if (lo == m.n) {
			if (it->valid(it) || it->status(it) != LSM_OK) {
				TEST_FAIL_AT("seek past the end is valid");
				fails++;
			}
		} else {
			size_t k2;
			const uint8_t *k = it->valid(it) ? it->key(it, &k2) : NULL;

			if (k == NULL || k2 != m.e[lo].klen || memcmp(k, m.e[lo].key, k2) != 0 ||
			    it->trailer(it) != lsm_pack_trailer(m.e[lo].seq, m.e[lo].type)) {
				TEST_FAIL_AT("seek landed on the wrong entry");
				fails++;
			}
		}
		(void)x;
	}
	it->destroy(it);
	/* approximate offsets: 0 at the start, data end past the last key,
	 * never decreasing */
	if (!fails && m.n > 0) {
		uint64_t prev = 0;

		if (lsm_table_approximate_offset(t, m.e[0].key, m.e[0].klen,
		                                 lsm_pack_trailer(LSM_MAX_SEQUENCE,
		                                                  LSM_TYPE_SEEK)) != 0 ||
		    lsm_table_approximate_offset(t, "\xff\xff\xff\xff\xff\xff\xff\xff"
		                                 "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
		                                 "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
		                                 "\xff\xff", 28, 0) != props.data_bytes) {
			TEST_FAIL_AT("approximate offsets at the ends");
			fails++;
		}
		for (size_t i = 0; i < m.n && !fails; i += 1 + m.n / 100) {
			uint64_t off = lsm_table_approximate_offset(t, m.e[i].key, m.e[i].klen,
			                                            lsm_pack_trailer(m.e[i].seq,
			                                                             m.e[i].type));

			if (off < prev || off > props.data_bytes) {
				TEST_FAIL_AT("approximate offset %llu after %llu",
				             (unsigned long long)off, (unsigned long long)prev);
				fails++;
			}
			prev = off;
		}
	}
	if (!fails && lsm_table_verify(lsm_env_posix(), path, NULL, NULL, &vi) != LSM_OK) {
		TEST_FAIL_AT("verify: %s at %llu", vi.message, (unsigned long long)vi.bad_offset);
		fails++;
	}
	if (!fails && vi.entries != m.n) {
		TEST_FAIL_AT("verify saw %llu entries", (unsigned long long)vi.entries);
		fails++;
	}
	lsm_table_close(t);
	lsm_table_props_free(&props);
	model_free(&m);
	return fails;
}

static int round_trip(const char *name, const lsm_table_options *o,
                      size_t nkeys, int maxver, uint64_t seed)
{
	return round_trip_k(name, o, nkeys, maxver, 24, seed);
}

TEST(table_empty)
{
	const char *dir = test_tmpdir("empty");
	char *path = path_in(dir, "e.sst");
	lsm_table_props props;
	lsm_table *t;
	lsm_iiter *it;
	model m;
	uint64_t tr;
	void *v;
	size_t vl, n;

	memset(&m, 0, sizeof m);
	CHECK_OK(build(lsm_env_posix(), path, NULL, &m, &props));
	CHECK_EQ_INT(props.entries, 0);
	CHECK_EQ_INT(props.has_bounds, 0);
	CHECK_OK(lsm_table_open(lsm_env_posix(), path, 1, NULL, NULL, &t));
	CHECK_OK(lsm_table_iter_create(t, 1, &it));
	it->seek_to_first(it);
	CHECK(!it->valid(it));
	it->seek(it, "a", 1, lsm_pack_trailer(5, LSM_TYPE_SEEK));
	CHECK(!it->valid(it));
	CHECK_OK(it->status(it));
	it->destroy(it);
	CHECK_EQ_INT(lsm_table_get_copy(t, "a", 1, 100, &tr, &v, &vl), LSM_NOTFOUND);
	CHECK(lsm_table_range_dels(t, &n) == NULL && n == 0);
	CHECK_EQ_INT(lsm_table_properties(t)->has_bounds, 0);
	lsm_table_close(t);
	CHECK_OK(lsm_table_verify(lsm_env_posix(), path, NULL, NULL, NULL));
	lsm_table_props_free(&props);
}

TEST(table_one_entry)
{
	lsm_table_options o;

	lsm_table_options_init(&o);
	CHECK(round_trip("one", &o, 1, 1, 11) == 0);
}

TEST(table_50k_entries)
{
	lsm_table_options o;

	lsm_table_options_init(&o);
	CHECK(round_trip("big", &o, 25000, 3, 12) == 0);
}

TEST(table_small_blocks_no_compression)
{
	lsm_table_options o;

	opts_small(&o);
	o.restart_interval = 1;
	o.compression = LSM_TABLE_COMPRESSION_NONE;
	o.bloom_bits_per_key = 0;
	CHECK(round_trip("small", &o, 3000, 6, 13) == 0);
}

TEST(table_versions_across_blocks)
{
	lsm_table_options o;

	/* tiny blocks, many versions: one key's versions span blocks */
	lsm_table_options_init(&o);
	o.block_size = 64;
	o.restart_interval = 3;
	CHECK(round_trip("versions", &o, 300, 40, 14) == 0);
}

TEST(table_long_keys)
{
	lsm_table_options o;

	/* keys past the iterators' inline buffers */
	lsm_table_options_init(&o);
	o.block_size = 1024;
	CHECK(round_trip_k("longkeys", &o, 1500, 2, 250, 15) == 0);
}

TEST(table_huge_entries)
{
	const char *dir = test_tmpdir("huge");
	char *path = path_in(dir, "h.sst");
	lsm_table_props props;
	lsm_table *t;
	model m;
	test_rng r;

	test_rng_seed(&r, 16);
	memset(&m, 0, sizeof m);
	m.e = calloc(4, sizeof *m.e);
	for (int i = 0; i < 4; i++) {
		ent *e = &m.e[m.n++];

		e->klen = LSM_MAX_KEY_SIZE;
		e->key = malloc(e->klen);
		memset(e->key, 'k', e->klen);
		e->key[e->klen - 1] = (uint8_t)('a' + i);
		e->seq = 10 + (uint64_t)i;
		e->type = LSM_TYPE_PUT;
		e->vlen = (size_t)(3 << 20) + (size_t)i;
		e->val = malloc(e->vlen);
		if (i % 2)
			test_rng_fill(&r, e->val, e->vlen);
		else
			memset(e->val, 'z', e->vlen);
	}
	CHECK_OK(build(lsm_env_posix(), path, NULL, &m, &props));
	CHECK_EQ_INT(props.data_blocks, 4);
	/* the compressible ones shrank */
	CHECK(props.data_bytes < 2 * (3u << 20) + 4 * LSM_MAX_KEY_SIZE);
	CHECK_OK(lsm_table_open(lsm_env_posix(), path, 1, NULL, NULL, &t));
	CHECK(check_iter_all(t, &m, 0) == 0);
	for (size_t i = 0; i < m.n; i++)
		CHECK(check_get(t, &m, m.e[i].key, m.e[i].klen, LSM_MAX_SEQUENCE, 0) == 0);
	lsm_table_close(t);
	CHECK_OK(lsm_table_verify(lsm_env_posix(), path, NULL, NULL, NULL));
	lsm_table_props_free(&props);
	model_free(&m);
}

TEST(builder_rejects_bad_input)
{
	const char *dir = test_tmpdir("reject");
	char *path = path_in(dir, "r.sst");
	lsm_table_builder *b;
	lsm_table_options o;

	lsm_table_options_init(&o);
	o.block_size = 10;
	CHECK_EQ_INT(lsm_table_builder_open(lsm_env_posix(), path, &o, &b), LSM_INVALID);
	CHECK_OK(lsm_table_builder_open(lsm_env_posix(), path, NULL, &b));
	CHECK(exists(path_in(dir, "r.sst.tmp")));
	CHECK_OK(lsm_table_builder_add(b, "b", 1, lsm_pack_trailer(5, LSM_TYPE_PUT), "x", 1));
	CHECK_EQ_INT(lsm_table_builder_add(b, "b", 1, lsm_pack_trailer(5, LSM_TYPE_PUT), "x", 1),
	             LSM_INVALID);
	CHECK_EQ_INT(lsm_table_builder_add(b, "b", 1, lsm_pack_trailer(6, LSM_TYPE_PUT), "x", 1),
	             LSM_INVALID);
	CHECK_EQ_INT(lsm_table_builder_add(b, "a", 1, lsm_pack_trailer(1, LSM_TYPE_PUT), "x", 1),
	             LSM_INVALID);
	CHECK_EQ_INT(lsm_table_builder_add(b, "c", 1, lsm_pack_trailer(1, LSM_TYPE_RANGE_DELETE),
	                                   "x", 1), LSM_INVALID);
	CHECK_EQ_INT(lsm_table_builder_add(b, "c", 1, lsm_pack_trailer(1, LSM_TYPE_DELETE),
	                                   "x", 1), LSM_INVALID);
	CHECK_EQ_INT(lsm_table_builder_add_range_delete(b, "b", 1, "b", 1, 3), LSM_INVALID);
	CHECK_EQ_INT(lsm_table_builder_add_range_delete(b, "c", 1, "b", 1, 3), LSM_INVALID);
	/* still usable after refusals */
	CHECK_OK(lsm_table_builder_add(b, "b", 1, lsm_pack_trailer(4, LSM_TYPE_DELETE), NULL, 0));
	CHECK_EQ_INT(lsm_table_builder_entries(b), 2);
	CHECK(lsm_table_builder_file_size(b) > 0);
	lsm_table_builder_abandon(b);
	CHECK(!exists(path_in(dir, "r.sst.tmp")));
	CHECK(!exists(path));
}

/* ------------------------------------------------------------ bloom */

TEST(bloom_skips_absent_keys)
{
	const char *dir = test_tmpdir("bloom");
	char *path = path_in(dir, "b.sst");
	lsm_table_stats st;
	lsm_table *t;
	model m;
	test_rng r;
	size_t absent = 0;

	test_rng_seed(&r, 21);
	model_gen(&m, &r, 5000, 1, 12, 4096);
	CHECK_OK(build(lsm_env_posix(), path, NULL, &m, NULL));
	CHECK_OK(lsm_table_open(lsm_env_posix(), path, 1, NULL, NULL, &t));
	for (int i = 0; i < 5000; i++) {
		char k[32];
		int kl = snprintf(k, sizeof k, "absent-%d", i);   /* '-' never in model */
		uint64_t tr;
		void *v;
		size_t vl;

		CHECK_EQ_INT(lsm_table_get_copy(t, k, (size_t)kl, LSM_MAX_SEQUENCE, &tr, &v, &vl),
		             LSM_NOTFOUND);
		absent++;
	}
	lsm_table_get_stats(t, &st);
	CHECK_EQ_INT(st.bloom_checks, absent);
	/* 10 bits/key: ~1% false positives; allow 5% */
	CHECK_MSG(st.bloom_negatives >= absent * 95 / 100, "negatives %llu",
	          (unsigned long long)st.bloom_negatives);
	CHECK(st.block_reads <= absent - st.bloom_negatives);
	/* present keys are never filtered out */
	for (size_t i = 0; i < m.n; i++)
		CHECK(check_get(t, &m, m.e[i].key, m.e[i].klen, LSM_MAX_SEQUENCE, 0) == 0);
	lsm_table_close(t);
	model_free(&m);
}

/* ------------------------------------------------------------ range dels */

static int rdel_cmp_m(const void *x, const void *y)
{
	const rdel_m *a = x, *b = y;
	size_t n = a->slen < b->slen ? a->slen : b->slen;
	int c = memcmp(a->start, b->start, n);

	if (c == 0 && a->slen != b->slen)
		c = a->slen < b->slen ? -1 : 1;
	if (c == 0 && a->seq != b->seq)
		c = a->seq > b->seq ? -1 : 1;
	return c;
}

TEST(range_deletions_and_properties)
{
	const char *dir = test_tmpdir("rdel");
	char *path = path_in(dir, "r.sst");
	lsm_table_props props;
	const lsm_table_props *p;
	const lsm_table_rdel *td;
	lsm_table *t;
	model m;
	test_rng r;
	size_t n, i;
	uint64_t dels = 0, rk = 0, rv = 0, minseq = UINT64_MAX, maxseq = 0;

	test_rng_seed(&r, 31);
	model_gen(&m, &r, 500, 2, 10, 4096);
	/* out of order, one duplicate (start, seq) with two ends */
	model_add_rdel(&m, "m", "p", 2000000);
	model_add_rdel(&m, "b", "c", 7);
	model_add_rdel(&m, "b", "d", 9);
	model_add_rdel(&m, "zz", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 3);
	model_add_rdel(&m, "m", "o", 2000000);      /* merged into [m, p)@2000000 */
	CHECK_OK(build(lsm_env_posix(), path, NULL, &m, &props));
	for (i = 0; i < m.n; i++) {
		dels += m.e[i].type == LSM_TYPE_DELETE;
		rk += m.e[i].klen;
		rv += m.e[i].vlen;
		if (m.e[i].seq < minseq)
			minseq = m.e[i].seq;
		if (m.e[i].seq > maxseq)
			maxseq = m.e[i].seq;
	}
	if (3 < minseq)
		minseq = 3;
	maxseq = 2000000 > maxseq ? 2000000 : maxseq;
	CHECK_OK(lsm_table_open(lsm_env_posix(), path, 1, NULL, NULL, &t));
	p = lsm_table_properties(t);
	for (int pass = 0; pass < 2; pass++, p = &props) {
		CHECK_EQ_INT(p->format_version, LSM_TABLE_FORMAT_VERSION);
		CHECK_EQ_INT(p->entries, m.n);
		CHECK_EQ_INT(p->deletions, dels);
		CHECK_EQ_INT(p->range_deletions, 4);
		CHECK_EQ_INT(p->raw_key_bytes, rk);
		CHECK_EQ_INT(p->raw_value_bytes, rv);
		CHECK(p->data_blocks > 1);
		CHECK(p->data_bytes > 0 && p->data_bytes < lsm_table_file_size(t));
		CHECK(p->filter_bytes > 0);
		CHECK_EQ_U64(p->smallest_seq, minseq);
		CHECK_EQ_U64(p->largest_seq, maxseq);
		CHECK(p->has_bounds);
		/* smallest: the first point entry or (b, 9) */
		if (lsm_ikey_compare(m.e[0].key, m.e[0].klen,
		                     lsm_pack_trailer(m.e[0].seq, m.e[0].type),
		                     "b", 1, lsm_pack_trailer(9, LSM_TYPE_RANGE_DELETE)) < 0) {
			CHECK_MEM(p->smallest_key, p->smallest_klen, m.e[0].key, m.e[0].klen);
			CHECK_EQ_U64(p->smallest_trailer, lsm_pack_trailer(m.e[0].seq, m.e[0].type));
		} else {
			CHECK_MEM(p->smallest_key, p->smallest_klen, "b", 1);
			CHECK_EQ_U64(p->smallest_trailer, lsm_pack_trailer(9, LSM_TYPE_RANGE_DELETE));
		}
		/* largest: the 0xff.. end of the zz tombstone, as a sentinel */
		CHECK_EQ_INT(p->largest_klen, 13);
		CHECK_EQ_U64(p->largest_trailer,
		             lsm_pack_trailer(LSM_MAX_SEQUENCE, LSM_TYPE_RANGE_DELETE));
	}
	td = lsm_table_range_dels(t, &n);
	CHECK_EQ_INT(n, 4);
	qsort(m.r, m.nr, sizeof *m.r, rdel_cmp_m);
	CHECK_MEM(td[0].start, td[0].slen, "b", 1);
	CHECK_MEM(td[0].end, td[0].elen, "d", 1);
	CHECK_EQ_INT(td[0].seq, 9);
	CHECK_MEM(td[1].start, td[1].slen, "b", 1);
	CHECK_MEM(td[1].end, td[1].elen, "c", 1);
	CHECK_EQ_INT(td[1].seq, 7);
	CHECK_MEM(td[2].start, td[2].slen, "m", 1);
	CHECK_MEM(td[2].end, td[2].elen, "p", 1);
	CHECK_EQ_U64(td[2].seq, 2000000);
	CHECK_MEM(td[3].start, td[3].slen, "zz", 2);
	CHECK_EQ_INT(td[3].elen, 13);
	CHECK_EQ_INT(td[3].seq, 3);
	/* point entries are unaffected by the tombstones at this layer */
	CHECK(check_iter_all(t, &m, 0) == 0);
	lsm_table_close(t);
	CHECK_OK(lsm_table_verify(lsm_env_posix(), path, NULL, NULL, NULL));
	lsm_table_props_free(&props);
	model_free(&m);
}

TEST(range_deletions_only)
{
	const char *dir = test_tmpdir("rdelonly");
	char *path = path_in(dir, "r.sst");
	lsm_table_props props;
	lsm_table *t;
	model m;
	size_t n;

	memset(&m, 0, sizeof m);
	model_add_rdel(&m, "k", "q", 40);
	model_add_rdel(&m, "a", "c", 50);
	CHECK_OK(build(lsm_env_posix(), path, NULL, &m, &props));
	CHECK_EQ_INT(props.entries, 0);
	CHECK_EQ_INT(props.range_deletions, 2);
	CHECK(props.has_bounds);
	CHECK_MEM(props.smallest_key, props.smallest_klen, "a", 1);
	CHECK_EQ_U64(props.smallest_trailer, lsm_pack_trailer(50, LSM_TYPE_RANGE_DELETE));
	CHECK_MEM(props.largest_key, props.largest_klen, "q", 1);
	CHECK_EQ_INT(props.smallest_seq, 40);
	CHECK_EQ_INT(props.largest_seq, 50);
	CHECK_OK(lsm_table_open(lsm_env_posix(), path, 1, NULL, NULL, &t));
	CHECK(lsm_table_range_dels(t, &n) != NULL && n == 2);
	CHECK(check_iter_all(t, &m, 0) == 0);
	lsm_table_close(t);
	CHECK_OK(lsm_table_verify(lsm_env_posix(), path, NULL, NULL, NULL));
	lsm_table_props_free(&props);
	model_free(&m);
}

/* ------------------------------------------------------------ cache */

TEST(block_cache_hits)
{
	const char *dir = test_tmpdir("cache");
	char *path = path_in(dir, "c.sst");
	size_t csize = lsm_cache_min_size(4) + ((size_t)8 << 20);
	void *mem = aligned_alloc(64, (csize + 63) / 64 * 64);
	lsm_cache *cache;
	lsm_table_stats st;
	lsm_cache_stats cs;
	lsm_table *t;
	lsm_iiter *it;
	model m;
	test_rng r;
	size_t n;

	CHECK(mem != NULL);
	CHECK_OK(lsm_cache_init(mem, csize, 4));
	cache = lsm_cache_attach(mem);
	CHECK(cache != NULL);
	test_rng_seed(&r, 61);
	model_gen(&m, &r, 2000, 2, 16, 4096);
	CHECK_OK(build(lsm_env_posix(), path, NULL, &m, NULL));
	CHECK_OK(lsm_table_open(lsm_env_posix(), path, 77, cache, NULL, &t));
	CHECK(check_get(t, &m, m.e[5].key, m.e[5].klen, LSM_MAX_SEQUENCE, 0) == 0);
	lsm_table_get_stats(t, &st);
	CHECK_EQ_INT(st.block_reads, 1);
	CHECK_EQ_INT(st.cache_hits, 0);
	CHECK(check_get(t, &m, m.e[5].key, m.e[5].klen, LSM_MAX_SEQUENCE, 0) == 0);
	lsm_table_get_stats(t, &st);
	CHECK_EQ_INT(st.block_reads, 1);
	CHECK_EQ_INT(st.cache_hits, 1);
	/* a no-fill scan reads the other blocks without caching them */
	lsm_cache_get_stats(cache, &cs);
	n = cs.entries;
	CHECK_OK(lsm_table_iter_create(t, 0, &it));
	for (it->seek_to_first(it); it->valid(it); it->next(it))
		;
	CHECK_OK(it->status(it));
	it->destroy(it);
	lsm_cache_get_stats(cache, &cs);
	CHECK_EQ_INT(cs.entries, n);
	/* a filling scan caches them all; a second is all hits */
	CHECK(check_iter_all(t, &m, 0) == 0);
	lsm_table_get_stats(t, &st);
	n = st.block_reads;
	CHECK(check_iter_all(t, &m, 0) == 0);
	for (size_t i = 0; i < m.n; i++)
		CHECK(check_get(t, &m, m.e[i].key, m.e[i].klen, m.e[i].seq, 0) == 0);
	lsm_table_get_stats(t, &st);
	CHECK_EQ_INT(st.block_reads, n);
	CHECK_EQ_INT(lsm_cache_check(cache), LSM_OK);
	lsm_table_close(t);
	lsm_cache_erase_file(cache, 77);
	lsm_cache_get_stats(cache, &cs);
	CHECK_EQ_INT(cs.entries, 0);     /* nothing left pinned */
	free(mem);
	model_free(&m);
}

/* Several threads share one table and a cache too small for it: gets and
 * scans race on eviction and pinning, and every answer must be right. */
typedef struct reader_arg {
	lsm_table *t;
	const model *m;
	int id;
	atomic_int *errors;
} reader_arg;

static void *reader_main(void *p)
{
	reader_arg *a = p;
	const model *m = a->m;
	test_rng r;

	test_rng_seed(&r, 100 + (uint64_t)a->id);
	for (int round = 0; round < 3000; round++) {
		size_t i = test_rng_uniform(&r, m->n);
		long x = expect_get(m, m->e[i].key, m->e[i].klen, m->e[i].seq);
		uint64_t tr;
		void *v;
		size_t vl;
		int rc = lsm_table_get_copy(a->t, m->e[i].key, m->e[i].klen, m->e[i].seq,
		                            &tr, &v, &vl);

		if (rc != LSM_OK || x != (long)i || vl != m->e[i].vlen ||
		    (vl && memcmp(v, m->e[i].val, vl) != 0))
			atomic_fetch_add(a->errors, 1);
		free(v);
		if (round % 1000 == 0) {
			lsm_iiter *it;
			size_t n = 0;

			if (lsm_table_iter_create(a->t, 1, &it) != LSM_OK) {
				atomic_fetch_add(a->errors, 1);
				continue;
			}
			for (it->seek_to_first(it); it->valid(it); it->next(it))
				n++;
			if (n != m->n || it->status(it) != LSM_OK)
				atomic_fetch_add(a->errors, 1);
			it->destroy(it);
		}
	}
	return NULL;
}

static void concurrent_readers(int use_cache)
{
	const char *dir = test_tmpdir("threads");
	char *path = path_in(dir, "c.sst");
	size_t csize = lsm_cache_min_size(2) + ((size_t)128 << 10);
	void *mem = aligned_alloc(64, (csize + 63) / 64 * 64);
	lsm_cache *cache = NULL;
	reader_arg args[4];
	pthread_t th[4];
	atomic_int errors = 0;
	lsm_table_stats st;
	lsm_table *t;
	model m;
	test_rng r;

	CHECK(mem != NULL);
	if (use_cache) {
		CHECK_OK(lsm_cache_init(mem, csize, 2));
		cache = lsm_cache_attach(mem);
	}
	test_rng_seed(&r, 71);
	model_gen(&m, &r, 4000, 2, 16, 4096);
	CHECK_OK(build(lsm_env_posix(), path, NULL, &m, NULL));
	CHECK_OK(lsm_table_open(lsm_env_posix(), path, 5, cache, NULL, &t));
	for (int i = 0; i < 4; i++) {
		args[i] = (reader_arg){ t, &m, i, &errors };
		CHECK(pthread_create(&th[i], NULL, reader_main, &args[i]) == 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(atomic_load(&errors), 0);
	lsm_table_get_stats(t, &st);
	CHECK(st.block_reads > 0);
	if (use_cache) {
		CHECK(st.cache_hits > 0);
		CHECK_EQ_INT(lsm_cache_check(cache), LSM_OK);
	}
	lsm_table_close(t);
	free(mem);
	model_free(&m);
}

TEST(concurrent_readers_no_cache) { concurrent_readers(0); }
TEST(concurrent_readers_small_cache) { concurrent_readers(1); }

