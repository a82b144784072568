/*
 * table_damage_test.c — the SSTable layer against damage and failure:
 * a flipped byte at every offset, truncation at every length, verify's
 * report, and an env that fails every write, sync, rename, directory sync
 * or open in turn (EIO and ENOSPC).
 *
 * The sweeps use a deliberately small table (a few KiB: ten data blocks,
 * LZ4 and plain, a filter, range deletions, properties) so that trying
 * every byte offset stays fast even under ASan.
 */
#include "crc32.h"
#include "table_testutil.h"

/* ------------------------------------------------------------ damage */

/* The small table of the sweeps: ~10 data blocks, LZ4 and plain ones. */
static void small_model(model *m)
{
	test_rng r;

	test_rng_seed(&r, 41);
	memset(m, 0, sizeof *m);
	m->e = calloc(80, sizeof *m->e);
	for (size_t i = 0; i < 60; i++) {
		ent *e = &m->e[m->n++];
		char k[16];
		size_t vl = i % 3 == 0 ? 40 : 12;

		snprintf(k, sizeof k, "key%03zu", i);
		e->klen = strlen(k);
		e->key = dup_bytes(k, e->klen);
		e->seq = 100 + i;
		e->type = i % 7 == 3 ? LSM_TYPE_DELETE : LSM_TYPE_PUT;
		if (e->type == LSM_TYPE_PUT) {
			e->val = malloc(vl);
			if (i % 2)
				test_rng_fill(&r, e->val, vl);
			else
				memset(e->val, 'v', vl);
			e->vlen = vl;
		}
	}
	model_add_rdel(m, "key010", "key020", 500);
	model_add_rdel(m, "key030", "key031", 90);
	model_add_rdel(m, "a", "b", 7);
}

typedef struct region {
	uint64_t off, len;
} region;

/* Every block (with its trailer) and the footer, in file order. */
static size_t table_regions(lsm_table *t, region *out, size_t cap)
{
	lsm_block_iter it;
	size_t n = 0;

	lsm_block_iter_init(&it, &t->index, LSM_BLOCK_IKEYS);
	for (lsm_block_iter_seek_to_first(&it); it.valid && n < cap; lsm_block_iter_next(&it)) {
		const uint8_t *p = it.val;
		lsm_block_handle h;

		lsm_block_handle_decode(&p, it.val + it.vlen, &h);
		out[n++] = (region){ h.offset, h.size + LSM_BLOCK_TRAILER_SIZE };
	}
	lsm_block_iter_free(&it);
	if (t->has_filter)
		out[n++] = (region){ t->filter_h.offset, t->filter_h.size + LSM_BLOCK_TRAILER_SIZE };
	if (t->has_rdel)
		out[n++] = (region){ t->rdel_h.offset, t->rdel_h.size + LSM_BLOCK_TRAILER_SIZE };
	out[n++] = (region){ t->props_h.offset, t->props_h.size + LSM_BLOCK_TRAILER_SIZE };
	out[n++] = (region){ t->metaindex_h.offset, t->metaindex_h.size + LSM_BLOCK_TRAILER_SIZE };
	out[n++] = (region){ t->index_h.offset, t->index_h.size + LSM_BLOCK_TRAILER_SIZE };
	out[n++] = (region){ t->file_size - LSM_TABLE_FOOTER_SIZE, LSM_TABLE_FOOTER_SIZE };
	return n;
}

static int same_rdels(lsm_table *t, lsm_table *ref)
{
	size_t n1, n2;
	const lsm_table_rdel *a = lsm_table_range_dels(t, &n1);
	const lsm_table_rdel *b = lsm_table_range_dels(ref, &n2);

	if (n1 != n2)
		return 0;
	for (size_t i = 0; i < n1; i++)
		if (a[i].seq != b[i].seq || a[i].slen != b[i].slen || a[i].elen != b[i].elen ||
		    memcmp(a[i].start, b[i].start, a[i].slen) != 0 ||
		    memcmp(a[i].end, b[i].end, a[i].elen) != 0)
			return 0;
	return 1;
}

/* After a call on bad.sst failed: the engine's note names that file, the
 * region (block or footer) holding the damage, and a reason. */
static int noted_at(size_t region_start)
{
	lsm_error_info e;

	return lsm_error_where(&e) && strcmp(e.file, "bad.sst") == 0 &&
	       e.offset == (int64_t)region_start && e.reason[0] != '\0';
}

/* Iterates all of t; its final status. */
static int iterate_status(lsm_table *t)
{
	lsm_iiter *it;
	int rc;

	if (lsm_table_iter_create(t, 0, &it) != LSM_OK)
		return LSM_NOMEM;
	for (it->seek_to_first(it); it->valid(it); it->next(it))
		;
	rc = it->status(it);
	it->destroy(it);
	return rc;
}

TEST(corruption_every_byte)
{
	const char *dir = test_tmpdir("corrupt");
	char *path = path_in(dir, "c.sst"), *bad = path_in(dir, "bad.sst");
	lsm_table_options o;
	lsm_table *ref, *t;
	lsm_table_verify_info vi;
	region reg[64];
	size_t size, nreg, opened = 0, lz4 = 0;
	uint8_t *orig, *buf;
	model m;

	small_model(&m);
	opts_small(&o);
	CHECK_OK(build(lsm_env_posix(), path, &o, &m, NULL));
	CHECK_OK(lsm_table_open(lsm_env_posix(), path, 1, NULL, NULL, &ref));
	CHECK(ref->props.data_blocks >= 4);
	CHECK(ref->has_filter && ref->has_rdel);
	nreg = table_regions(ref, reg, 60);
	orig = read_whole(path, &size);
	CHECK(orig != NULL && size == ref->file_size);
	/* the regions tile the file */
	for (size_t i = 0, at = 0; i < nreg; i++) {
		CHECK_EQ_U64(reg[i].off, at);
		at += reg[i].len;
		if (i + 1 == nreg)
			CHECK_EQ_U64(at, size);
	}
	for (size_t i = 0; i + 1 < nreg; i++)
		lz4 += orig[reg[i].off + reg[i].len - 5] == LSM_BLOCK_TYPE_LZ4;
	CHECK_MSG(lz4 > 0, "no LZ4 block in the sweep table");
	buf = malloc(size);
	for (size_t x = 0; x < size; x++) {
		static const uint8_t flips[] = { 0xff, 0x01, 0x80, 0x10, 0x5a };
		size_t region_start = 0;
		int rc;

		memcpy(buf, orig, size);
		buf[x] ^= flips[x % sizeof flips];
		write_whole(bad, buf, size);
		for (size_t i = 0; i < nreg; i++)
			if (x >= reg[i].off && x < reg[i].off + reg[i].len)
				region_start = reg[i].off;
		lsm_error_clear();
		rc = lsm_table_open(lsm_env_posix(), bad, 2, NULL, NULL, &t);
		if (rc != LSM_OK) {
			CHECK_MSG(rc == LSM_CORRUPTION, "offset %zu: open returned %d", x, rc);
			CHECK_MSG(noted_at(region_start), "offset %zu: open's note does not name "
			          "bad.sst at %zu", x, region_start);
		} else {
			opened++;
			lsm_error_clear();
			rc = iterate_status(t);
			CHECK_MSG(rc == LSM_OK || (rc == LSM_CORRUPTION && noted_at(region_start)),
			          "offset %zu: iteration returned %d without naming the block at %zu",
			          x, rc, region_start);
			CHECK_MSG(same_rdels(t, ref), "offset %zu: range deletions differ", x);
			CHECK_MSG(t->props.entries == m.n, "offset %zu: properties differ", x);
			CHECK_MSG(check_iter_all(t, &m, 1) == 0, "offset %zu", x);
			for (size_t i = 0; i < m.n; i++) {
				CHECK_MSG(check_get(t, &m, m.e[i].key, m.e[i].klen, LSM_MAX_SEQUENCE, 1) == 0,
				          "offset %zu key %zu", x, i);
				CHECK_MSG(check_get(t, &m, m.e[i].key, m.e[i].klen, m.e[i].seq - 1, 1) == 0,
				          "offset %zu key %zu", x, i);
			}
			lsm_table_close(t);
		}
		/* every byte is under some crc: verify must see the damage and
		 * name the block (or footer) that holds it */
		rc = lsm_table_verify(lsm_env_posix(), bad, NULL, NULL, &vi);
		CHECK_MSG(rc == LSM_CORRUPTION, "offset %zu: verify returned %d", x, rc);
		CHECK_MSG(vi.bad_offset == region_start, "offset %zu: verify blamed %llu, not %zu (%s)",
		          x, (unsigned long long)vi.bad_offset, region_start, vi.message);
		CHECK(vi.message[0] != '\0');
	}
	/* flips inside data blocks open fine and are caught on read */
	CHECK(opened > 0);
	free(buf);
	free(orig);
	lsm_table_close(ref);
	model_free(&m);
}

/*
 * Damage the checksums cannot see: flip a byte of a block (or the footer)
 * and then fix up that block's crc, so the garbage reaches the parsers, the
 * decompressor and the structural checks.  Values may then come back wrong
 * (nothing can tell), but nothing may crash, loop or read out of bounds
 * (ASan watches), and every call must return one of its normal codes.
 */
static int exercise(const char *path, const model *m, size_t *opened,
                    size_t *caught)
{
	static const uint64_t seqs[] = { LSM_MAX_SEQUENCE, 120, 0 };
	lsm_table *t;
	lsm_iiter *it;
	size_t steps = 0, n;
	int rc = lsm_table_open(lsm_env_posix(), path, 3, NULL, NULL, &t);

	if (rc != LSM_OK) {
		*caught += rc == LSM_CORRUPTION;
		return rc == LSM_CORRUPTION ? 0 : 1;
	}
	++*opened;
	lsm_table_range_dels(t, &n);
	if (lsm_table_iter_create(t, 1, &it) != LSM_OK)
		return 1;
	for (it->seek_to_first(it); it->valid(it) && steps < 100000; it->next(it))
		steps++;
	rc = it->status(it);
	if (steps >= 100000 || (rc != LSM_OK && rc != LSM_CORRUPTION))
		return 1;
	*caught += rc == LSM_CORRUPTION;
	for (size_t i = 0; i < m->n; i += 3) {
		it->seek(it, m->e[i].key, m->e[i].klen, lsm_pack_trailer(seqs[i % 3], LSM_TYPE_SEEK));
		for (int j = 0; j < 3 && it->valid(it); j++)
			it->next(it);
		rc = lsm_table_get(t, m->e[i].key, m->e[i].klen, seqs[i % 3], NULL, NULL);
		if (rc != LSM_OK && rc != LSM_NOTFOUND && rc != LSM_CORRUPTION)
			return 1;
		(void)lsm_table_approximate_offset(t, m->e[i].key, m->e[i].klen, 0);
	}
	it->destroy(it);
	lsm_table_close(t);
	rc = lsm_table_verify(lsm_env_posix(), path, NULL, NULL, NULL);
	return rc == LSM_OK || rc == LSM_CORRUPTION ? 0 : 1;
}

TEST(damage_behind_valid_checksums)
{
	const char *dir = test_tmpdir("crafted");
	char *path = path_in(dir, "c.sst"), *bad = path_in(dir, "bad.sst");
	lsm_table_options o;
	lsm_table *ref;
	region reg[64];
	size_t size, nreg, opened = 0, caught = 0, tries = 0;
	uint8_t *orig, *buf;
	model m;

	small_model(&m);
	opts_small(&o);
	CHECK_OK(build(lsm_env_posix(), path, &o, &m, NULL));
	CHECK_OK(lsm_table_open(lsm_env_posix(), path, 1, NULL, NULL, &ref));
	nreg = table_regions(ref, reg, 60);
	lsm_table_close(ref);
	orig = read_whole(path, &size);
	CHECK(orig != NULL);
	buf = malloc(size);
	for (size_t i = 0; i < nreg; i++) {
		int footer = i + 1 == nreg;
		/* stored bytes + type byte, or the footer before its crc */
		uint64_t covered = footer ? 52 : reg[i].len - 4;

		for (uint64_t x = 0; x < covered; x++) {
			static const uint8_t flips[] = { 0x01, 0x80, 0xff, 0x7e };
			uint8_t *b = buf + reg[i].off;

			memcpy(buf, orig, size);
			b[x] ^= flips[(x + i) % sizeof flips];
			lsm_put_fixed32(b + covered, lsm_crc32_mask(lsm_crc32(b, covered)));
			write_whole(bad, buf, size);
			CHECK_MSG(exercise(bad, &m, &opened, &caught) == 0,
			          "region %zu offset %llu", i, (unsigned long long)x);
			tries++;
		}
	}
	/* the structure checks, not just the crcs, caught much of it */
	CHECK_MSG(caught > tries / 4 && opened > tries / 4,
	          "%zu tries, %zu opened, %zu caught", tries, opened, caught);
	if (getenv("TABLE_TEST_VERBOSE"))
		printf("    %zu tries, %zu opened, %zu caught\n", tries, opened, caught);
	free(buf);
	free(orig);
	model_free(&m);
}

TEST(truncation_every_length)
{
	const char *dir = test_tmpdir("trunc");
	char *path = path_in(dir, "c.sst"), *bad = path_in(dir, "bad.sst");
	lsm_table_options o;
	lsm_table *t;
	size_t size;
	uint8_t *orig;
	model m;

	small_model(&m);
	opts_small(&o);
	CHECK_OK(build(lsm_env_posix(), path, &o, &m, NULL));
	orig = read_whole(path, &size);
	CHECK(orig != NULL);
	for (size_t len = 0; len < size; len++) {
		int rc;

		write_whole(bad, orig, len);
		rc = lsm_table_open(lsm_env_posix(), bad, 2, NULL, NULL, &t);
		CHECK_MSG(rc == LSM_CORRUPTION, "length %zu: open returned %d", len, rc);
		CHECK_EQ_INT(lsm_table_verify(lsm_env_posix(), bad, NULL, NULL, NULL), LSM_CORRUPTION);
	}
	/* and a byte too many */
	{
		uint8_t *more = malloc(size + 1);

		memcpy(more, orig, size);
		more[size] = 0;
		write_whole(bad, more, size + 1);
		free(more);
		CHECK_EQ_INT(lsm_table_open(lsm_env_posix(), bad, 2, NULL, NULL, &t), LSM_CORRUPTION);
	}
	free(orig);
	model_free(&m);
}

typedef struct dump_acc {
	size_t points, rdels;
	const model *m;
	int mismatch;
} dump_acc;

static int dump_cb(void *arg, const uint8_t *key, size_t klen, uint64_t trailer,
                   const uint8_t *val, size_t vlen)
{
	dump_acc *d = arg;

	(void)val;
	if (lsm_trailer_type(trailer) == LSM_TYPE_RANGE_DELETE) {
		d->rdels++;
		return LSM_OK;
	}
	if (d->points >= d->m->n || klen != d->m->e[d->points].klen ||
	    memcmp(key, d->m->e[d->points].key, klen) != 0 ||
	    vlen != d->m->e[d->points].vlen)
		d->mismatch = 1;
	d->points++;
	return LSM_OK;
}

TEST(verify_dump_and_offset)
{
	const char *dir = test_tmpdir("verify");
	char *path = path_in(dir, "v.sst");
	lsm_table_options o;
	lsm_table_verify_info vi;
	lsm_table *t;
	region reg[64];
	size_t size;
	uint8_t *orig;
	dump_acc d = {0};
	model m;

	small_model(&m);
	opts_small(&o);
	CHECK_OK(build(lsm_env_posix(), path, &o, &m, NULL));
	d.m = &m;
	CHECK_OK(lsm_table_verify(lsm_env_posix(), path, dump_cb, &d, &vi));
	CHECK(!d.mismatch);
	CHECK_EQ_INT(d.points, m.n);
	CHECK_EQ_INT(d.rdels, 3);
	CHECK_EQ_INT(vi.entries, m.n);
	CHECK_EQ_INT(vi.range_deletions, 3);
	CHECK(vi.data_blocks >= 4);
	CHECK_OK(lsm_table_open(lsm_env_posix(), path, 1, NULL, NULL, &t));
	table_regions(t, reg, 60);
	lsm_table_close(t);
	/* damage the third data block */
	orig = read_whole(path, &size);
	CHECK(orig != NULL && size > reg[2].off + 3);
	orig[reg[2].off + 3] ^= 0x40;
	write_whole(path, orig, size);
	memset(&d, 0, sizeof d);
	d.m = &m;
	CHECK_EQ_INT(lsm_table_verify(lsm_env_posix(), path, dump_cb, &d, &vi), LSM_CORRUPTION);
	CHECK_EQ_U64(vi.bad_offset, reg[2].off);
	CHECK(strstr(vi.message, "checksum") != NULL);
	CHECK_EQ_INT(vi.data_blocks, 2);
	CHECK(!d.mismatch && d.points > 0 && d.points < m.n);
	/* a missing file is not corruption */
	CHECK_EQ_INT(lsm_table_verify(lsm_env_posix(), path_in(dir, "nope.sst"), NULL, NULL, &vi),
	             LSM_NOTFOUND);
	free(orig);
	model_free(&m);
}

/* ------------------------------------------------------------ faults */

static const enum lsm_fault_op fault_ops[] = {
	LSM_FAULT_OPEN, LSM_FAULT_WRITE, LSM_FAULT_SYNC, LSM_FAULT_RENAME,
	LSM_FAULT_SYNC_DIR
};

TEST(fault_env_every_call)
{
	const char *dir = test_tmpdir("fault");
	char *path = path_in(dir, "f.sst"), tmp[700];
	lsm_env *env = lsm_fault_env_create(lsm_env_posix());
	uint64_t calls[LSM_FAULT_NOPS], before[LSM_FAULT_NOPS];
	lsm_table_options o;
	model m;
	test_rng r;
	size_t tried = 0;

	CHECK(env != NULL);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	test_rng_seed(&r, 51);
	/* ~300 KiB of incompressible values: several buffered writes */
	memset(&m, 0, sizeof m);
	m.e = calloc(3000, sizeof *m.e);
	for (size_t i = 0; i < 3000; i++) {
		ent *e = &m.e[m.n++];
		char k[16];

		snprintf(k, sizeof k, "k%06zu", i);
		e->klen = strlen(k);
		e->key = dup_bytes(k, e->klen);
		e->seq = i + 1;
		e->type = LSM_TYPE_PUT;
		e->vlen = 100;
		e->val = malloc(100);
		test_rng_fill(&r, e->val, 100);
	}
	model_add_rdel(&m, "k000100", "k000200", 5000);
	lsm_table_options_init(&o);
	for (int op = 0; op < LSM_FAULT_NOPS; op++)
		before[op] = lsm_fault_env_calls(env, (enum lsm_fault_op)op);
	CHECK_OK(build(env, path, &o, &m, NULL));
	for (int op = 0; op < LSM_FAULT_NOPS; op++)
		calls[op] = lsm_fault_env_calls(env, (enum lsm_fault_op)op) - before[op];
	CHECK(calls[LSM_FAULT_WRITE] >= 5);
	CHECK_EQ_INT(calls[LSM_FAULT_RENAME], 1);
	CHECK_EQ_INT(calls[LSM_FAULT_SYNC_DIR], 1);
	for (size_t oi = 0; oi < sizeof fault_ops / sizeof fault_ops[0]; oi++) {
		enum lsm_fault_op op = fault_ops[oi];

		for (int code = LSM_IOERR; code <= LSM_NOSPACE; code++) {
			for (uint64_t k = 1; k <= calls[op]; k++) {
				int rc;

				test_rm_rf(path);
				lsm_fault_env_fail(env, op, k, code, 0);
				rc = build(env, path, &o, &m, NULL);
				lsm_fault_env_clear(env);
				CHECK_MSG(rc == code, "op %d call %llu: build returned %d",
				          (int)op, (unsigned long long)k, rc);
				CHECK_MSG(!exists(path), "op %d call %llu: final file left", (int)op,
				          (unsigned long long)k);
				CHECK_MSG(!exists(tmp), "op %d call %llu: temp file left", (int)op,
				          (unsigned long long)k);
				tried++;
			}
		}
	}
	CHECK(tried >= 2 * (5 + 4));
	/* a torn write is an error too */
	lsm_fault_env_tear_next_write(env, 100);
	CHECK_EQ_INT(build(env, path, &o, &m, NULL), LSM_IOERR);
	lsm_fault_env_clear(env);
	CHECK(!exists(path) && !exists(tmp));
	/* and with no fault the same env builds a good table */
	CHECK_OK(build(env, path, &o, &m, NULL));
	CHECK_OK(lsm_table_verify(lsm_env_posix(), path, NULL, NULL, NULL));
	lsm_fault_env_destroy(env);
	model_free(&m);
}

