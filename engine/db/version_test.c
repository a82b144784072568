/*
 * version_test.c — file names, version edits (round trip of every field,
 * every truncation, random and mutated garbage, each rejection rule),
 * applying edits (add/delete, L0 order, L1+ order and overlap rejection,
 * missing deletions), overlap queries against brute force, and reference
 * counts keeping an old version valid.
 *
 * Invariant checked throughout: decoding never crashes or reads out of
 * bounds (run under SANITIZE=1), returns only LSM_OK or LSM_CORRUPTION, and
 * whatever it accepts re-encodes to the same bytes.
 */
#include "lsm.h"
#include "version.h"
#include "testutil.h"

/* A meta for user keys s..l (PUT entries at the given sequences). */
static lsm_file_meta *mk(int level, uint64_t num, const char *s, uint64_t sseq,
                         const char *l, uint64_t lseq, uint64_t size)
{
	lsm_file_meta t;

	memset(&t, 0, sizeof t);
	t.level = level;
	t.number = num;
	t.size = size;
	t.smallest = (lsm_ikey_ref){ (const uint8_t *)s, strlen(s), lsm_pack_trailer(sseq, LSM_TYPE_PUT) };
	t.largest = (lsm_ikey_ref){ (const uint8_t *)l, strlen(l), lsm_pack_trailer(lseq, LSM_TYPE_PUT) };
	t.smallest_seq = sseq < lseq ? sseq : lseq;
	t.largest_seq = sseq < lseq ? lseq : sseq;
	t.entries = num * 3;
	t.range_dels = num % 2;
	return lsm_file_meta_new(&t);
}

/* Adds mk(...) to e (the edit keeps the only reference). */
static int add(lsm_version_edit *e, int level, uint64_t num, const char *s, uint64_t sseq,
               const char *l, uint64_t lseq, uint64_t size)
{
	lsm_file_meta *m = mk(level, num, s, sseq, l, lseq, size);
	int rc;

	if (m == NULL)
		return LSM_NOMEM;
	rc = lsm_edit_add_file(e, m);
	lsm_file_meta_unref(m);
	return rc;
}

static int ikey_eq(const lsm_ikey_ref *a, const lsm_ikey_ref *b)
{
	return a->len == b->len && a->trailer == b->trailer &&
	       (a->len == 0 || memcmp(a->key, b->key, a->len) == 0);
}

static int meta_eq(const lsm_file_meta *a, const lsm_file_meta *b)
{
	return a->level == b->level && a->number == b->number && a->size == b->size &&
	       ikey_eq(&a->smallest, &b->smallest) && ikey_eq(&a->largest, &b->largest) &&
	       a->smallest_seq == b->smallest_seq && a->largest_seq == b->largest_seq &&
	       a->entries == b->entries && a->range_dels == b->range_dels;
}

static int edit_eq(const lsm_version_edit *a, const lsm_version_edit *b)
{
	size_t i;
	int l;

	if (a->has != b->has || a->compact_mask != b->compact_mask ||
	    a->ndeleted != b->ndeleted || a->nadded != b->nadded)
		return 0;
	if (((a->has & LSM_EDIT_LOG_NUMBER) && a->log_number != b->log_number) ||
	    ((a->has & LSM_EDIT_NEXT_FILE) && a->next_file_number != b->next_file_number) ||
	    ((a->has & LSM_EDIT_LAST_SEQUENCE) && a->last_sequence != b->last_sequence))
		return 0;
	for (l = 0; l < LSM_MAX_LEVELS; l++)
		if ((a->compact_mask & (1u << l)) && !ikey_eq(&a->compact_ptr[l], &b->compact_ptr[l]))
			return 0;
	for (i = 0; i < a->ndeleted; i++)
		if (a->deleted[i].level != b->deleted[i].level ||
		    a->deleted[i].number != b->deleted[i].number)
			return 0;
	for (i = 0; i < a->nadded; i++)
		if (!meta_eq(a->added[i], b->added[i]))
			return 0;
	return 1;
}

/* An edit using every field, with extreme values. */
static int full_edit(lsm_version_edit *e)
{
	static const uint8_t bin[] = { 0, 0xff, 0x80, 0 };
	int rc;

	lsm_edit_init(e);
	lsm_edit_set_log_number(e, 17);
	lsm_edit_set_next_file(e, UINT64_MAX);
	lsm_edit_set_last_sequence(e, LSM_MAX_SEQUENCE);
	if ((rc = lsm_edit_set_compact_pointer(e, 1, "mid", 3, lsm_pack_trailer(5, LSM_TYPE_PUT))) ||
	    (rc = lsm_edit_set_compact_pointer(e, 6, "", 0, UINT64_MAX)) ||
	    (rc = lsm_edit_set_compact_pointer(e, 0, bin, sizeof bin, 0)) ||
	    (rc = lsm_edit_delete_file(e, 0, 3)) ||
	    (rc = lsm_edit_delete_file(e, 6, UINT64_MAX)) ||
	    (rc = lsm_edit_delete_file(e, 2, 3)) ||
	    (rc = add(e, 0, 9, "a", 10, "z", 20, 4096)) ||
	    (rc = add(e, 6, UINT64_MAX - 1, "", LSM_MAX_SEQUENCE, "", 0, UINT64_MAX)) ||
	    (rc = add(e, 3, 300, "k1", 1, "k2", 1, 0)))
		return rc;
	return LSM_OK;
}

TEST(names_and_paths)
{
	char p[64];
	uint64_t n;

	CHECK_OK(lsm_sst_path("/d", 123, p, sizeof p));
	CHECK(strcmp(p, "/d/000123.sst") == 0);
	CHECK_OK(lsm_sst_path("/d", 12345678, p, sizeof p));
	CHECK(strcmp(p, "/d/12345678.sst") == 0);
	CHECK_OK(lsm_manifest_path("/d", 7, p, sizeof p));
	CHECK(strcmp(p, "/d/MANIFEST-000007") == 0);
	CHECK_OK(lsm_current_path("/d", p, sizeof p));
	CHECK(strcmp(p, "/d/CURRENT") == 0);
	CHECK_OK(lsm_sst_tmp_path("/d", 5, p, sizeof p));
	CHECK(strcmp(p, "/d/000005.sst.tmp") == 0);
	CHECK_EQ_INT(lsm_sst_path("/a/long/directory", 1, p, 10), LSM_INVALID);

	CHECK(lsm_sst_parse_name("000123.sst", &n) && n == 123);
	CHECK(lsm_sst_parse_name("12345678.sst", &n) && n == 12345678);
	CHECK(lsm_sst_parse_name("18446744073709551615.sst", &n) && n == UINT64_MAX);
	CHECK(!lsm_sst_parse_name("18446744073709551616.sst", &n));
	CHECK(!lsm_sst_parse_name("0123.sst", &n));
	CHECK(!lsm_sst_parse_name("0000123.sst", &n));
	CHECK(!lsm_sst_parse_name("000000.sst", &n));
	CHECK(!lsm_sst_parse_name("00012a.sst", &n));
	CHECK(!lsm_sst_parse_name("000123.sst.tmp", &n));
	CHECK(!lsm_sst_parse_name(".sst", &n));
	CHECK(lsm_manifest_parse_name("MANIFEST-000001", &n) && n == 1);
	CHECK(!lsm_manifest_parse_name("MANIFEST-1", &n));
	CHECK(!lsm_manifest_parse_name("MANIFEST-000001x", &n));
	CHECK(!lsm_manifest_parse_name("MANIFEST-", &n));
	CHECK(!lsm_manifest_parse_name("CURRENT", &n));
}

TEST(edit_roundtrip_every_field)
{
	lsm_version_edit e, d, empty;
	lsm_buf b, b2;

	CHECK_OK(full_edit(&e));
	lsm_buf_init(&b);
	lsm_buf_init(&b2);
	CHECK_OK(lsm_edit_encode(&e, &b));
	CHECK_OK(lsm_edit_decode(&d, b.data, b.len));
	CHECK(edit_eq(&e, &d));
	CHECK_OK(lsm_edit_encode(&d, &b2));
	CHECK_MEM(b.data, b.len, b2.data, b2.len);

	/* the empty edit is the empty string */
	lsm_edit_init(&empty);
	lsm_buf_reset(&b2);
	CHECK_OK(lsm_edit_encode(&empty, &b2));
	CHECK_EQ_INT(b2.len, 0);
	CHECK_OK(lsm_edit_decode(&empty, b2.data, 0));
	CHECK(empty.has == 0 && empty.nadded == 0 && empty.ndeleted == 0);
	lsm_edit_free(&e);
	lsm_edit_free(&d);
	lsm_buf_free(&b);
	lsm_buf_free(&b2);
}

/* Decodes p[0..n): only OK or CORRUPTION.  What it accepts must survive
 * encode + decode unchanged; with `canonical` (input the encoder wrote, or
 * a prefix of it) it must re-encode to exactly the same bytes. */
static int decode_check(const uint8_t *p, size_t n, int canonical, int *accepted)
{
	lsm_version_edit d, d2;
	lsm_buf b;
	int rc = lsm_edit_decode(&d, p, n), ok = 1;

	*accepted = rc == LSM_OK;
	if (rc != LSM_OK)
		return rc == LSM_CORRUPTION && d.nadded == 0 && d.ndeleted == 0;
	lsm_buf_init(&b);
	if (lsm_edit_encode(&d, &b) != LSM_OK)
		ok = 0;
	else if (canonical && (b.len != n || (n && memcmp(b.data, p, n) != 0)))
		ok = 0;
	else if (lsm_edit_decode(&d2, b.data, b.len) != LSM_OK)
		ok = 0;
	else {
		ok = edit_eq(&d, &d2);
		lsm_edit_free(&d2);
	}
	lsm_buf_free(&b);
	lsm_edit_free(&d);
	return ok;
}

TEST(edit_decode_every_truncation)
{
	lsm_version_edit e;
	lsm_buf b;
	size_t k, accepted_count = 0;
	int acc;

	CHECK_OK(full_edit(&e));
	lsm_buf_init(&b);
	CHECK_OK(lsm_edit_encode(&e, &b));
	for (k = 0; k <= b.len; k++) {
		/* a private copy so ASan catches any read past the prefix */
		uint8_t *p = malloc(k ? k : 1);

		memcpy(p, b.data, k);
		CHECK_MSG(decode_check(p, k, 1, &acc), "prefix %zu", k);
		accepted_count += acc;
		free(p);
	}
	/* prefixes ending on a field boundary decode: 0, 3 scalars, 3
	 * pointers, 3 deletions, 3 files */
	CHECK_EQ_INT(accepted_count, 13);
	lsm_edit_free(&e);
	lsm_buf_free(&b);
}

TEST(edit_decode_random_garbage)
{
	lsm_version_edit e;
	lsm_buf b;
	test_rng rng;
	int i, acc, accepted = 0;

	test_rng_seed(&rng, 42);
	for (i = 0; i < 20000; i++) {
		size_t n = (size_t)test_rng_uniform(&rng, 96);
		uint8_t *p = malloc(n ? n : 1);

		test_rng_fill(&rng, p, n);
		/* bias towards plausible tags so decoding goes deeper */
		if (n && (i & 1))
			p[0] = (uint8_t)(1 + test_rng_uniform(&rng, 7));
		CHECK_MSG(decode_check(p, n, 0, &acc), "random buffer %d", i);
		accepted += acc;
		free(p);
	}
	/* mutations of a valid encoding: random bytes changed, inserted, cut */
	CHECK_OK(full_edit(&e));
	lsm_buf_init(&b);
	CHECK_OK(lsm_edit_encode(&e, &b));
	for (i = 0; i < 20000; i++) {
		size_t n = b.len, j, flips = 1 + (size_t)test_rng_uniform(&rng, 3);
		uint8_t *p = malloc(n + 1);

		memcpy(p, b.data, n);
		for (j = 0; j < flips; j++)
			p[test_rng_uniform(&rng, n)] ^= (uint8_t)(1u << test_rng_uniform(&rng, 8));
		if (i % 3 == 0)
			n = (size_t)test_rng_uniform(&rng, n + 1);
		CHECK_MSG(decode_check(p, n, 0, &acc), "mutation %d", i);
		accepted += acc;
		free(p);
	}
	CHECK(accepted > 0);
	lsm_edit_free(&e);
	lsm_buf_free(&b);
}

/* Helpers that write raw encodings for the rejection table. */
static void put_ikey(lsm_buf *b, const char *k, uint64_t trailer)
{
	lsm_buf_put_varint32(b, (uint32_t)strlen(k) + 8);
	lsm_buf_put_bytes(b, k, strlen(k));
	lsm_buf_put_u64(b, trailer);
}

static void put_file(lsm_buf *b, uint32_t level, uint64_t num, const char *s, uint64_t st,
                     const char *l, uint64_t lt, uint64_t sseq, uint64_t lseq)
{
	lsm_buf_put_varint32(b, 6);
	lsm_buf_put_varint32(b, level);
	lsm_buf_put_varint64(b, num);
	lsm_buf_put_varint64(b, 100);
	put_ikey(b, s, st);
	put_ikey(b, l, lt);
	lsm_buf_put_varint64(b, sseq);
	lsm_buf_put_varint64(b, lseq);
	lsm_buf_put_varint64(b, 1);
	lsm_buf_put_varint64(b, 0);
}

static int decode_rc(lsm_buf *b)
{
	lsm_version_edit d;
	int rc = lsm_edit_decode(&d, b->data, b->len);

	if (rc == LSM_OK)
		lsm_edit_free(&d);
	lsm_buf_reset(b);
	return rc;
}

TEST(edit_decode_rejections)
{
	uint64_t t1 = lsm_pack_trailer(1, LSM_TYPE_PUT), t9 = lsm_pack_trailer(9, LSM_TYPE_PUT);
	lsm_buf b;

	lsm_buf_init(&b);
	/* a valid file, as a baseline */
	put_file(&b, 1, 5, "a", t1, "b", t1, 1, 1);
	CHECK_OK(decode_rc(&b));
	/* same user key: smallest must be the newer trailer */
	put_file(&b, 1, 5, "a", t9, "a", t1, 1, 9);
	CHECK_OK(decode_rc(&b));
	put_file(&b, 1, 5, "a", t1, "a", t9, 1, 9);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	put_file(&b, 1, 5, "b", t1, "a", t1, 1, 1);        /* smallest > largest */
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	put_file(&b, 1, 5, "a", t1, "b", t1, 2, 1);        /* seqs reversed */
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	put_file(&b, 1, 5, "a", t1, "b", t1, 1, LSM_MAX_SEQUENCE + 1);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	put_file(&b, LSM_MAX_LEVELS, 5, "a", t1, "b", t1, 1, 1);   /* level */
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	put_file(&b, 1, 0, "a", t1, "b", t1, 1, 1);        /* number 0 */
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	put_file(&b, 1, 5, "a", t1, "b", t1, 1, 1);        /* number twice */
	put_file(&b, 2, 5, "c", t1, "d", t1, 1, 1);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);

	/* internal key shorter than its trailer */
	lsm_buf_put_varint32(&b, 4);
	lsm_buf_put_varint32(&b, 1);
	lsm_buf_put_varint32(&b, 7);
	lsm_buf_put_bytes(&b, "abcdefg", 7);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	/* a key over LSM_MAX_KEY_SIZE */
	{
		size_t n = LSM_MAX_KEY_SIZE + 1 + 8;
		uint8_t *big = calloc(1, n);

		lsm_buf_put_varint32(&b, 4);
		lsm_buf_put_varint32(&b, 1);
		lsm_buf_put_varint32(&b, (uint32_t)n);
		lsm_buf_put_bytes(&b, big, n);
		free(big);
		CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	}
	/* scalars: repeated, or a sequence too large */
	lsm_buf_put_varint32(&b, 1);
	lsm_buf_put_varint64(&b, 3);
	lsm_buf_put_varint32(&b, 1);
	lsm_buf_put_varint64(&b, 3);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	lsm_buf_put_varint32(&b, 3);
	lsm_buf_put_varint64(&b, LSM_MAX_SEQUENCE + 1);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	lsm_buf_put_varint32(&b, 3);
	lsm_buf_put_varint64(&b, LSM_MAX_SEQUENCE);
	CHECK_OK(decode_rc(&b));
	/* two pointers for one level */
	lsm_buf_put_varint32(&b, 4);
	lsm_buf_put_varint32(&b, 2);
	put_ikey(&b, "x", t1);
	lsm_buf_put_varint32(&b, 4);
	lsm_buf_put_varint32(&b, 2);
	put_ikey(&b, "y", t1);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	/* deletions: repeated, level, number 0; one number at two levels is fine */
	lsm_buf_put_varint32(&b, 5);
	lsm_buf_put_varint32(&b, 1);
	lsm_buf_put_varint64(&b, 8);
	lsm_buf_put_varint32(&b, 5);
	lsm_buf_put_varint32(&b, 2);
	lsm_buf_put_varint64(&b, 8);
	CHECK_OK(decode_rc(&b));
	lsm_buf_put_varint32(&b, 5);
	lsm_buf_put_varint32(&b, 1);
	lsm_buf_put_varint64(&b, 8);
	lsm_buf_put_varint32(&b, 5);
	lsm_buf_put_varint32(&b, 1);
	lsm_buf_put_varint64(&b, 8);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	lsm_buf_put_varint32(&b, 5);
	lsm_buf_put_varint32(&b, 9);
	lsm_buf_put_varint64(&b, 8);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	lsm_buf_put_varint32(&b, 5);
	lsm_buf_put_varint32(&b, 1);
	lsm_buf_put_varint64(&b, 0);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	/* unknown tags, tag 0, an overlong varint */
	lsm_buf_put_varint32(&b, 7);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	lsm_buf_put_varint32(&b, 0);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	lsm_buf_put_bytes(&b, "\x81\x80\x80\x80\x80\x00", 6);
	CHECK_EQ_INT(decode_rc(&b), LSM_CORRUPTION);
	lsm_buf_free(&b);
}

/* ------------------------------------------------------------- apply */

static int apply_edit(lsm_version **v, lsm_version_edit *e)
{
	lsm_version *nv;
	int rc = lsm_version_apply(*v, e, &nv);

	lsm_edit_free(e);
	if (rc != LSM_OK)
		return rc;
	lsm_version_unref(*v);
	*v = nv;
	return LSM_OK;
}

TEST(apply_add_delete_and_sizes)
{
	lsm_version *v;
	lsm_version_edit e;

	CHECK_OK(lsm_version_new(&v));
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 0, 1, "a", 1, "c", 5, 100));
	CHECK_OK(add(&e, 1, 2, "a", 1, "b", 1, 200));
	CHECK_OK(add(&e, 1, 3, "c", 1, "d", 1, 300));
	CHECK_OK(add(&e, 4, 4, "a", 1, "z", 1, 400));
	CHECK_OK(apply_edit(&v, &e));
	CHECK_EQ_INT(lsm_version_total_files(v), 4);
	CHECK_EQ_U64(lsm_version_total_bytes(v), 1000);
	CHECK_EQ_INT(lsm_version_level_files(v, 1), 2);
	CHECK_EQ_U64(lsm_version_level_bytes(v, 1), 500);
	CHECK_EQ_U64(v->max_file_number, 4);
	CHECK(lsm_version_has_file(v, 3) && !lsm_version_has_file(v, 5));

	/* a compaction: 1 and 2 out, 5 in at level 1 */
	lsm_edit_init(&e);
	CHECK_OK(lsm_edit_delete_file(&e, 0, 1));
	CHECK_OK(lsm_edit_delete_file(&e, 1, 2));
	CHECK_OK(add(&e, 1, 5, "a", 1, "bz", 5, 250));
	CHECK_OK(apply_edit(&v, &e));
	CHECK_EQ_INT(lsm_version_level_files(v, 0), 0);
	CHECK_EQ_INT(lsm_version_level_files(v, 1), 2);
	CHECK_EQ_U64(v->files[1][0]->number, 5);
	CHECK_EQ_U64(v->files[1][1]->number, 3);
	CHECK_EQ_U64(lsm_version_total_bytes(v), 950);

	/* a trivial move: the same number leaves level 4 for level 5 */
	lsm_edit_init(&e);
	CHECK_OK(lsm_edit_delete_file(&e, 4, 4));
	CHECK_OK(add(&e, 5, 4, "a", 1, "z", 1, 400));
	CHECK_OK(apply_edit(&v, &e));
	CHECK_EQ_INT(lsm_version_level_files(v, 4), 0);
	CHECK_EQ_INT(lsm_version_level_files(v, 5), 1);
	lsm_version_unref(v);
}

TEST(apply_l0_newest_first)
{
	lsm_version *v;
	lsm_version_edit e;
	static const uint64_t want[] = { 4, 2, 5, 3, 1 };
	size_t i;

	CHECK_OK(lsm_version_new(&v));
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 0, 1, "a", 1, "z", 10, 1));
	CHECK_OK(add(&e, 0, 2, "a", 11, "z", 30, 1));
	CHECK_OK(add(&e, 0, 3, "m", 11, "n", 20, 1));
	CHECK_OK(apply_edit(&v, &e));
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 0, 4, "a", 31, "b", 40, 1));
	CHECK_OK(add(&e, 0, 5, "c", 21, "d", 20, 1));   /* ties 3 on largest_seq */
	CHECK_OK(apply_edit(&v, &e));
	CHECK_EQ_INT(lsm_version_level_files(v, 0), 5);
	for (i = 0; i < 5; i++)
		CHECK_EQ_U64(v->files[0][i]->number, want[i]);
	lsm_version_unref(v);
}

TEST(apply_l1_sorted_and_overlap_rejected)
{
	lsm_version *v, *before;
	lsm_version_edit e;
	uint64_t t1 = lsm_pack_trailer(1, LSM_TYPE_PUT);
	lsm_file_meta t, *m;
	int rc;

	CHECK_OK(lsm_version_new(&v));
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 2, 10, "p", 1, "r", 1, 1));
	CHECK_OK(add(&e, 2, 11, "a", 1, "c", 1, 1));
	CHECK_OK(add(&e, 2, 12, "g", 1, "k", 1, 1));
	CHECK_OK(apply_edit(&v, &e));
	CHECK_EQ_U64(v->files[2][0]->number, 11);
	CHECK_EQ_U64(v->files[2][1]->number, 12);
	CHECK_EQ_U64(v->files[2][2]->number, 10);

	before = v;
	lsm_version_ref(before);
	/* overlapping ranges, a shared boundary key at one sequence, a file
	 * inside another: all refused, and v stays as it was */
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 2, 20, "j", 1, "m", 1, 1));
	CHECK_EQ_INT(apply_edit(&v, &e), LSM_CORRUPTION);
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 2, 20, "k", 1, "m", 1, 1));
	CHECK_EQ_INT(apply_edit(&v, &e), LSM_CORRUPTION);
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 2, 20, "b", 1, "b", 1, 1));
	CHECK_EQ_INT(apply_edit(&v, &e), LSM_CORRUPTION);
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 2, 20, "s", 1, "t", 1, 1));
	CHECK_OK(add(&e, 2, 21, "s0", 1, "u", 1, 1));    /* two new ones overlap */
	CHECK_EQ_INT(apply_edit(&v, &e), LSM_CORRUPTION);
	CHECK(v == before);
	CHECK_EQ_INT(lsm_version_level_files(v, 2), 3);

	/* one user key straddling two files is fine when they are disjoint in
	 * internal order: file 12 ends at k@1, file 22 starts at the older k@0 */
	memset(&t, 0, sizeof t);
	t.level = 2;
	t.number = 22;
	t.smallest = (lsm_ikey_ref){ (const uint8_t *)"k", 1, lsm_pack_trailer(0, LSM_TYPE_PUT) };
	t.largest = (lsm_ikey_ref){ (const uint8_t *)"l", 1, t1 };
	m = lsm_file_meta_new(&t);
	CHECK(m != NULL);
	lsm_edit_init(&e);
	CHECK_OK(lsm_edit_add_file(&e, m));
	lsm_file_meta_unref(m);
	rc = apply_edit(&v, &e);
	CHECK_OK(rc);
	CHECK_EQ_U64(v->files[2][2]->number, 22);
	CHECK(before->nfiles[2] == 3);
	lsm_version_unref(before);
	lsm_version_unref(v);
}

TEST(apply_rejects_missing_delete_and_duplicate_number)
{
	lsm_version *v;
	lsm_version_edit e;

	CHECK_OK(lsm_version_new(&v));
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 1, 7, "a", 1, "b", 1, 1));
	CHECK_OK(add(&e, 0, 8, "a", 1, "b", 2, 1));
	CHECK_OK(apply_edit(&v, &e));

	lsm_edit_init(&e);
	CHECK_OK(lsm_edit_delete_file(&e, 1, 99));          /* not there */
	CHECK_EQ_INT(apply_edit(&v, &e), LSM_CORRUPTION);
	lsm_edit_init(&e);
	CHECK_OK(lsm_edit_delete_file(&e, 2, 7));           /* wrong level */
	CHECK_EQ_INT(apply_edit(&v, &e), LSM_CORRUPTION);
	lsm_edit_init(&e);
	CHECK_OK(lsm_edit_delete_file(&e, 1, 7));           /* twice */
	CHECK_OK(lsm_edit_delete_file(&e, 1, 7));
	CHECK_EQ_INT(apply_edit(&v, &e), LSM_CORRUPTION);
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 3, 8, "x", 1, "y", 1, 1));         /* number in use */
	CHECK_EQ_INT(apply_edit(&v, &e), LSM_CORRUPTION);
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 3, 9, "x", 1, "y", 1, 1));         /* added twice */
	CHECK_OK(add(&e, 4, 9, "x", 1, "y", 1, 1));
	CHECK_EQ_INT(apply_edit(&v, &e), LSM_CORRUPTION);
	CHECK_EQ_INT(lsm_version_total_files(v), 2);
	/* builders refuse what can never be valid */
	lsm_edit_init(&e);
	CHECK_EQ_INT(lsm_edit_delete_file(&e, LSM_MAX_LEVELS, 1), LSM_INVALID);
	CHECK_EQ_INT(lsm_edit_delete_file(&e, 0, 0), LSM_INVALID);
	CHECK_EQ_INT(lsm_edit_set_compact_pointer(&e, -1, "a", 1, 0), LSM_INVALID);
	lsm_edit_free(&e);
	lsm_version_unref(v);
}

TEST(compact_pointers_and_snapshot)
{
	lsm_version *v, *w;
	lsm_version_edit e, snap;
	size_t i;
	int l;

	CHECK_OK(lsm_version_new(&v));
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 0, 1, "a", 1, "c", 5, 100));
	CHECK_OK(add(&e, 2, 2, "a", 1, "b", 1, 200));
	CHECK_OK(lsm_edit_set_compact_pointer(&e, 2, "b", 1, 77));
	CHECK_OK(lsm_edit_set_compact_pointer(&e, 3, "q", 1, 78));
	CHECK_OK(apply_edit(&v, &e));
	lsm_edit_init(&e);
	CHECK_OK(lsm_edit_set_compact_pointer(&e, 2, "c", 1, 79));  /* replaces */
	CHECK_OK(apply_edit(&v, &e));
	CHECK_EQ_U64(v->compact_mask, (1u << 2) | (1u << 3));
	CHECK_MEM(v->compact_ptr[2].key, v->compact_ptr[2].len, "c", 1);
	CHECK_EQ_U64(v->compact_ptr[2].trailer, 79);
	CHECK_MEM(v->compact_ptr[3].key, v->compact_ptr[3].len, "q", 1);

	/* a snapshot applied to nothing rebuilds the same version */
	lsm_edit_init(&snap);
	CHECK_OK(lsm_version_snapshot(v, &snap));
	CHECK_OK(lsm_version_apply(NULL, &snap, &w));
	lsm_edit_free(&snap);
	CHECK_EQ_U64(w->compact_mask, v->compact_mask);
	for (l = 0; l < LSM_MAX_LEVELS; l++) {
		CHECK_EQ_INT(w->nfiles[l], v->nfiles[l]);
		for (i = 0; i < v->nfiles[l]; i++)
			CHECK(w->files[l][i] == v->files[l][i]);   /* shared metas */
	}
	lsm_version_unref(w);
	lsm_version_unref(v);
}

TEST(refcount_keeps_old_version_valid)
{
	lsm_version *cur, *old;
	lsm_version_edit e;
	lsm_file_meta *f;

	CHECK_OK(lsm_version_new(&cur));
	lsm_edit_init(&e);
	CHECK_OK(add(&e, 1, 1, "alpha", 1, "beta", 1, 10));
	CHECK_OK(apply_edit(&cur, &e));
	/* a reader pins the current version */
	old = cur;
	lsm_version_ref(old);
	f = old->files[1][0];
	/* the file is compacted away and a newer version installed; the
	 * installer drops its reference to the old one */
	lsm_edit_init(&e);
	CHECK_OK(lsm_edit_delete_file(&e, 1, 1));
	CHECK_OK(add(&e, 2, 2, "alpha", 1, "beta", 1, 10));
	CHECK_OK(apply_edit(&cur, &e));
	CHECK_EQ_INT(lsm_version_level_files(cur, 1), 0);
	/* the reader still sees the old file set, memory intact (ASan) */
	CHECK_EQ_INT(lsm_version_level_files(old, 1), 1);
	CHECK(old->files[1][0] == f);
	CHECK_MEM(f->smallest.key, f->smallest.len, "alpha", 5);
	CHECK(lsm_version_file_for_key(old, 1, "alpha", 5) == f);
	CHECK_EQ_INT(atomic_load(&f->refs), 1);
	lsm_version_unref(old);
	lsm_version_unref(cur);
}

/* ------------------------------------------------------------ queries */

static void key_at(char *buf, int i) { sprintf(buf, "k%05d", i); }

/* User key of an ikey as a C string (test keys have no NUL). */
static int ucmp(const lsm_ikey_ref *k, const char *s)
{
	return lsm_key_compare(k->key, k->len, s, strlen(s));
}

static int brute_meets(const lsm_file_meta *m, const char *b, const char *e)
{
	return !(b && ucmp(&m->largest, b) < 0) && !(e && ucmp(&m->smallest, e) > 0);
}

/* The L0 closure computed the slow way: widen until nothing changes. */
static void brute_l0_expand(const lsm_version *v, const char **b, const char **e,
                            char *bb, char *eb, int *take)
{
	size_t i;
	int changed = 1;

	while (changed) {
		changed = 0;
		for (i = 0; i < v->nfiles[0]; i++) {
			const lsm_file_meta *m = v->files[0][i];

			take[i] = brute_meets(m, *b, *e);
			if (!take[i])
				continue;
			if (*b && ucmp(&m->smallest, *b) < 0) {
				memcpy(bb, m->smallest.key, m->smallest.len);
				bb[m->smallest.len] = 0;
				*b = bb;
				changed = 1;
			}
			if (*e && ucmp(&m->largest, *e) > 0) {
				memcpy(eb, m->largest.key, m->largest.len);
				eb[m->largest.len] = 0;
				*e = eb;
				changed = 1;
			}
		}
	}
}

/* A random version: overlapping L0 files, disjoint files on L1..L3. */
static int random_version(test_rng *rng, lsm_version **v)
{
	lsm_version_edit e;
	char s[16], l[16];
	uint64_t num = 1;
	int i, lev, rc;

	lsm_edit_init(&e);
	for (i = 0; i < 8; i++) {
		int a = (int)test_rng_uniform(rng, 1000), w = (int)test_rng_uniform(rng, 200);

		key_at(s, a);
		key_at(l, a + w);
		if ((rc = add(&e, 0, num++, s, 100 + (uint64_t)i, l, 200 + (uint64_t)i, 10)))
			return rc;
	}
	for (lev = 1; lev <= 3; lev++) {
		int k = (int)test_rng_uniform(rng, 20);

		while (k < 1000) {
			int w = (int)test_rng_uniform(rng, 60);

			key_at(s, k);
			key_at(l, k + w);
			if ((rc = add(&e, lev, num++, s, 1, l, 1, 10)))
				return rc;
			k += w + 1 + (int)test_rng_uniform(rng, 40);
		}
	}
	rc = lsm_version_apply(NULL, &e, v);
	lsm_edit_free(&e);
	return rc;
}

TEST(overlap_queries_match_brute_force)
{
	test_rng rng;
	int round, q;

	test_rng_seed(&rng, 7);
	for (round = 0; round < 30; round++) {
		lsm_version *v;

		CHECK_OK(random_version(&rng, &v));
		for (q = 0; q < 200; q++) {
			char bb[16], eb[16], kb[16], xb[16], xe[16];
			int a = (int)test_rng_uniform(&rng, 1100), z = a + (int)test_rng_uniform(&rng, 150);
			const char *b = bb, *e = eb;
			int lev, take[16];
			size_t i, k;

			key_at(bb, a);
			key_at(eb, z);
			if (test_rng_uniform(&rng, 8) == 0)
				b = NULL;
			if (test_rng_uniform(&rng, 8) == 0)
				e = NULL;
			for (lev = 0; lev <= 4; lev++) {
				lsm_file_list out;

				lsm_file_list_init(&out);
				CHECK_OK(lsm_version_overlapping(v, lev, b, b ? strlen(b) : 0,
				                                 e, e ? strlen(e) : 0, 0, &out));
				for (i = 0, k = 0; i < v->nfiles[lev]; i++)
					if (brute_meets(v->files[lev][i], b, e)) {
						CHECK(k < out.n && out.v[k] == v->files[lev][i]);
						k++;
					}
				CHECK_EQ_INT(k, out.n);
				CHECK_EQ_INT(lsm_version_overlaps(v, lev, b, b ? strlen(b) : 0,
				                                  e, e ? strlen(e) : 0), k > 0);
				lsm_file_list_free(&out);
			}
			/* L0 with expansion */
			{
				const char *xb_p = b, *xe_p = e;
				lsm_file_list out;

				if (b)
					strcpy(xb, b), xb_p = xb;
				if (e)
					strcpy(xe, e), xe_p = xe;
				brute_l0_expand(v, &xb_p, &xe_p, xb, xe, take);
				lsm_file_list_init(&out);
				CHECK_OK(lsm_version_overlapping(v, 0, b, b ? strlen(b) : 0,
				                                 e, e ? strlen(e) : 0,
				                                 LSM_OVERLAP_EXPAND, &out));
				for (i = 0, k = 0; i < v->nfiles[0]; i++)
					if (take[i]) {
						CHECK(k < out.n && out.v[k] == v->files[0][i]);
						k++;
					}
				CHECK_EQ_INT(k, out.n);
				lsm_file_list_free(&out);
			}
			/* point lookups on L1..L3 */
			key_at(kb, a);
			for (lev = 1; lev <= 3; lev++) {
				lsm_file_meta *want = NULL;
				size_t idx = v->nfiles[lev];
				uint64_t tr = lsm_pack_trailer(50, LSM_TYPE_SEEK);

				for (i = 0; i < v->nfiles[lev]; i++)
					if (!want && brute_meets(v->files[lev][i], kb, kb))
						want = v->files[lev][i];
				CHECK(lsm_version_file_for_key(v, lev, kb, strlen(kb)) == want);
				for (i = 0; i < v->nfiles[lev]; i++) {
					const lsm_ikey_ref *l = &v->files[lev][i]->largest;

					if (lsm_ikey_compare(l->key, l->len, l->trailer, kb, strlen(kb), tr) >= 0) {
						idx = i;
						break;
					}
				}
				CHECK_EQ_INT(lsm_version_find_file(v, lev, kb, strlen(kb), tr), idx);
			}
		}
		lsm_version_unref(v);
	}
}
