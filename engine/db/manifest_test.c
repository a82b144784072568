/*
 * manifest_test.c — the manifest on disk: create, append, reopen; the
 * tail-follow reader; a torn last record cut at every byte; damage in a
 * middle record; CURRENT's strict format; rotation; EIO/ENOSPC and torn
 * writes at every write/sync/rename step of append and rotation (reopening
 * must give the old or the new state, never a broken one); the obsolete-file
 * decision table and its executor.
 */
#include "lsm.h"
#include "env_fault.h"
#include "version.h"
#include "testutil.h"

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*buf = malloc((size_t)n + 1);
	*len = fread(*buf, 1, (size_t)n, f);
	fclose(f);
	return *len == (size_t)n ? 0 : -1;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	size_t n;

	if (!f)
		return -1;
	n = fwrite(buf, 1, len, f);
	fclose(f);
	return n == len ? 0 : -1;
}

static int file_exists(const char *dir, const char *name)
{
	char path[600];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

static int add_file(lsm_version_edit *e, int level, uint64_t num, const char *s,
                    const char *l, uint64_t seq)
{
	lsm_file_meta t, *m;
	int rc;

	memset(&t, 0, sizeof t);
	t.level = level;
	t.number = num;
	t.size = 1000 + num;
	t.smallest = (lsm_ikey_ref){ (const uint8_t *)s, strlen(s), lsm_pack_trailer(seq, LSM_TYPE_PUT) };
	t.largest = (lsm_ikey_ref){ (const uint8_t *)l, strlen(l), lsm_pack_trailer(seq, LSM_TYPE_PUT) };
	t.smallest_seq = t.largest_seq = seq;
	t.entries = num;
	if ((m = lsm_file_meta_new(&t)) == NULL)
		return LSM_NOMEM;
	rc = lsm_edit_add_file(e, m);
	lsm_file_meta_unref(m);
	return rc;
}

/* Edit i of the standard history: a flush to L0 each time, every third
 * time a move of the previous L0 file's data to L1, now and then a compact
 * pointer.  Numbers stay below next_file_number (2000 + i). */
static int make_edit(int i, lsm_version_edit *e)
{
	char a[16], b[16];
	int rc;

	lsm_edit_init(e);
	lsm_edit_set_log_number(e, 1 + (uint64_t)i);
	lsm_edit_set_next_file(e, 2000 + (uint64_t)i);
	lsm_edit_set_last_sequence(e, 100 * (uint64_t)(i + 1));
	if ((rc = add_file(e, 0, 10 + (uint64_t)i, "a", "z", 100 * (uint64_t)i + 1)))
		return rc;
	if (i % 3 == 2) {
		sprintf(a, "k%04d0", i);
		sprintf(b, "k%04d5", i);
		if ((rc = lsm_edit_delete_file(e, 0, 10 + (uint64_t)i - 1)) ||
		    (rc = add_file(e, 1, 1000 + (uint64_t)i, a, b, 5)))
			return rc;
	}
	if (i % 4 == 1) {
		sprintf(a, "k%04d", i);
		if ((rc = lsm_edit_set_compact_pointer(e, 1, a, strlen(a), 9)))
			return rc;
	}
	return LSM_OK;
}

static int ikey_eq(const lsm_ikey_ref *a, const lsm_ikey_ref *b)
{
	return a->len == b->len && a->trailer == b->trailer &&
	       (a->len == 0 || memcmp(a->key, b->key, a->len) == 0);
}

static int same_state(const lsm_manifest_state *a, const lsm_manifest_state *b)
{
	const lsm_version *x = a->version, *y = b->version;
	size_t i;
	int l;

	if (a->log_number != b->log_number || a->next_file_number != b->next_file_number ||
	    a->last_sequence != b->last_sequence || x->compact_mask != y->compact_mask)
		return 0;
	for (l = 0; l < LSM_MAX_LEVELS; l++) {
		if (x->nfiles[l] != y->nfiles[l])
			return 0;
		if ((x->compact_mask & (1u << l)) && !ikey_eq(&x->compact_ptr[l], &y->compact_ptr[l]))
			return 0;
		for (i = 0; i < x->nfiles[l]; i++) {
			const lsm_file_meta *p = x->files[l][i], *q = y->files[l][i];

			if (p->number != q->number || p->level != q->level || p->size != q->size ||
			    !ikey_eq(&p->smallest, &q->smallest) || !ikey_eq(&p->largest, &q->largest) ||
			    p->smallest_seq != q->smallest_seq || p->largest_seq != q->largest_seq ||
			    p->entries != q->entries || p->range_dels != q->range_dels)
				return 0;
		}
	}
	return 1;
}

/* A copy sharing the version (one more reference). */
static lsm_manifest_state clone_state(const lsm_manifest_state *st)
{
	lsm_manifest_state c = *st;

	lsm_version_ref(c.version);
	return c;
}

/* Manifest 1 with `edits` edits of the standard history logged. */
static int setup(lsm_env *env, const char *dir, int edits, uint64_t max_size,
                 lsm_manifest_state *st, lsm_manifest_writer **w)
{
	lsm_version_edit e;
	int i, rc;

	if ((rc = lsm_manifest_state_init(st)) != LSM_OK)
		return rc;
	st->log_number = 1;
	st->next_file_number = 2;
	if ((rc = lsm_manifest_create(env, dir, 1, st, max_size, w)) != LSM_OK)
		return rc;
	for (i = 0; i < edits; i++) {
		if ((rc = make_edit(i, &e)) == LSM_OK)
			rc = lsm_manifest_log_and_apply(*w, st, &e, 0);
		lsm_edit_free(&e);
		if (rc != LSM_OK)
			return rc;
	}
	return LSM_OK;
}

TEST(create_append_reopen)
{
	const char *dir = test_tmpdir("reopen");
	lsm_env *env = lsm_env_posix();
	lsm_manifest_state st, got;
	lsm_manifest_writer *w;
	uint64_t cur, dropped = 99;

	CHECK_OK(setup(env, dir, 12, 1 << 20, &st, &w));
	CHECK_OK(lsm_current_read(env, dir, &cur));
	CHECK_EQ_U64(cur, 1);
	CHECK(file_exists(dir, "CURRENT") && file_exists(dir, "MANIFEST-000001"));
	CHECK(!file_exists(dir, "CURRENT.tmp"));
	CHECK_EQ_U64(st.edits, 13);
	CHECK_EQ_U64(st.offset, w->size);
	CHECK_EQ_U64(st.log_number, 12);
	CHECK_EQ_U64(st.next_file_number, 2011);
	CHECK_EQ_U64(st.last_sequence, 1200);
	CHECK_EQ_INT(lsm_version_level_files(st.version, 1), 4);
	CHECK_EQ_INT(lsm_version_level_files(st.version, 0), 8);

	CHECK_OK(lsm_manifest_recover(env, dir, &got, &dropped));
	CHECK_EQ_U64(dropped, 0);
	CHECK(same_state(&st, &got));
	CHECK_EQ_U64(got.manifest_number, 1);
	CHECK_EQ_U64(got.offset, st.offset);
	CHECK_EQ_U64(got.edits, 13);
	lsm_manifest_state_free(&got);

	/* a refused edit writes nothing and changes nothing */
	{
		lsm_version_edit e;
		uint64_t size = w->size;

		lsm_edit_init(&e);
		CHECK_OK(lsm_edit_delete_file(&e, 3, 12345));
		CHECK_EQ_INT(lsm_manifest_log_and_apply(w, &st, &e, 0), LSM_CORRUPTION);
		lsm_edit_free(&e);
		CHECK_EQ_U64(w->size, size);
		CHECK_EQ_INT(w->error, LSM_OK);
	}
	/* the writer carries on after a reopen (resume) */
	lsm_manifest_close(w);
	CHECK_OK(lsm_manifest_recover(env, dir, &got, NULL));
	CHECK_OK(lsm_manifest_resume(env, dir, &got, 1 << 20, &w));
	{
		lsm_version_edit e;

		CHECK_OK(make_edit(12, &e));
		CHECK_OK(lsm_manifest_log_and_apply(w, &got, &e, 0));
		CHECK_OK(lsm_manifest_state_apply(&st, &e));
		lsm_edit_free(&e);
	}
	lsm_manifest_state_free(&got);
	CHECK_OK(lsm_manifest_recover(env, dir, &got, NULL));
	CHECK(same_state(&st, &got));
	lsm_manifest_state_free(&got);
	lsm_manifest_close(w);
	lsm_manifest_state_free(&st);
}

struct counter {
	int n;
	uint64_t last_end;
	uint64_t files_added;
};

static int count_cb(void *arg, const lsm_version_edit *e, uint64_t end)
{
	struct counter *c = arg;

	c->n++;
	c->last_end = end;
	c->files_added += e->nadded;
	return LSM_OK;
}

TEST(tail_follow_returns_only_new_edits)
{
	const char *dir = test_tmpdir("tail");
	lsm_env *env = lsm_env_posix();
	lsm_manifest_state st, reader;
	lsm_manifest_writer *w;
	lsm_version *pinned;
	struct counter c = { 0, 0, 0 };
	uint64_t mark, end, dropped;
	int i;

	CHECK_OK(setup(env, dir, 3, 1 << 20, &st, &w));
	CHECK_OK(lsm_manifest_recover(env, dir, &reader, NULL));
	mark = reader.offset;
	pinned = reader.version;
	lsm_version_ref(pinned);
	for (i = 3; i < 8; i++) {
		lsm_version_edit e;

		CHECK_OK(make_edit(i, &e));
		CHECK_OK(lsm_manifest_log_and_apply(w, &st, &e, 0));
		lsm_edit_free(&e);
	}
	/* nothing new at the end */
	CHECK_OK(lsm_manifest_read(env, dir, 1, st.offset, LSM_MANIFEST_ALL, count_cb, &c,
	                           &end, &dropped));
	CHECK_EQ_INT(c.n, 0);
	CHECK_EQ_U64(end, st.offset);
	/* from the mark: exactly the five new edits */
	CHECK_OK(lsm_manifest_read(env, dir, 1, mark, LSM_MANIFEST_ALL, count_cb, &c,
	                           &end, &dropped));
	CHECK_EQ_INT(c.n, 5);
	CHECK_EQ_U64(c.files_added, 5 + 1);
	CHECK_EQ_U64(end, st.offset);
	CHECK_EQ_U64(c.last_end, st.offset);
	CHECK_EQ_U64(dropped, 0);
	/* catch up two at a time, as a process told "N more edits" would */
	CHECK_OK(lsm_manifest_catch_up(env, dir, &reader, 2, NULL));
	CHECK_EQ_U64(reader.edits, 6);
	CHECK(!same_state(&reader, &st));
	CHECK_OK(lsm_manifest_catch_up(env, dir, &reader, 2, NULL));
	CHECK_OK(lsm_manifest_catch_up(env, dir, &reader, 2, NULL));
	CHECK_EQ_U64(reader.edits, 9);
	CHECK_EQ_U64(reader.offset, st.offset);
	CHECK(same_state(&reader, &st));
	/* the version the reader had before catching up is still intact */
	CHECK_EQ_INT(lsm_version_level_files(pinned, 0), 2);
	CHECK_EQ_INT(lsm_version_level_files(pinned, 1), 1);
	lsm_version_unref(pinned);
	/* an offset past the end means the file lost what was read */
	CHECK_EQ_INT(lsm_manifest_read(env, dir, 1, st.offset + 1, LSM_MANIFEST_ALL,
	                               count_cb, &c, &end, &dropped), LSM_CORRUPTION);
	lsm_manifest_close(w);
	lsm_manifest_state_free(&reader);
	lsm_manifest_state_free(&st);
}

TEST(torn_last_record_ignored_at_every_byte)
{
	const char *dir = test_tmpdir("torn");
	lsm_env *env = lsm_env_posix();
	lsm_manifest_state st, before, got;
	lsm_manifest_writer *w;
	lsm_version_edit e;
	char path[600];
	uint8_t *full;
	size_t len, prev, cut;

	CHECK_OK(setup(env, dir, 5, 1 << 20, &st, &w));
	before = clone_state(&st);
	prev = (size_t)st.offset;
	CHECK_OK(make_edit(5, &e));
	CHECK_OK(lsm_manifest_log_and_apply(w, &st, &e, 0));
	lsm_edit_free(&e);
	lsm_manifest_close(w);
	snprintf(path, sizeof path, "%s/MANIFEST-000001", dir);
	CHECK(read_file(path, &full, &len) == 0);
	CHECK_EQ_U64(len, st.offset);

	for (cut = prev; cut <= len; cut++) {
		uint64_t dropped = 0, end;
		struct counter c = { 0, 0, 0 };

		CHECK(write_file(path, full, cut) == 0);
		CHECK_OK(lsm_manifest_recover(env, dir, &got, &dropped));
		CHECK_MSG(same_state(&got, cut == len ? &st : &before), "cut at %zu", cut);
		CHECK_EQ_U64(dropped, cut == len ? 0 : cut - prev);
		CHECK_EQ_U64(got.offset, cut == len ? len : prev);
		lsm_manifest_state_free(&got);
		/* a follower at prev sees nothing yet, and consumes nothing */
		CHECK_OK(lsm_manifest_read(env, dir, 1, prev, LSM_MANIFEST_ALL, count_cb, &c,
		                           &end, &dropped));
		CHECK_EQ_INT(c.n, cut == len ? 1 : 0);
		CHECK_EQ_U64(end, cut == len ? len : prev);
	}

	/* a torn tail with a zeroed payload (valid header) is a tail too */
	memset(full + prev + 12, 0, len - prev - 12);
	CHECK(write_file(path, full, len) == 0);
	CHECK_OK(lsm_manifest_recover(env, dir, &got, NULL));
	CHECK(same_state(&got, &before));
	/* resume cuts the tail, so the next append is not after damage */
	CHECK_OK(lsm_manifest_resume(env, dir, &got, 1 << 20, &w));
	CHECK_OK(make_edit(5, &e));
	CHECK_OK(lsm_manifest_log_and_apply(w, &got, &e, 0));
	lsm_edit_free(&e);
	lsm_manifest_close(w);
	lsm_manifest_state_free(&got);
	CHECK_OK(lsm_manifest_recover(env, dir, &got, NULL));
	CHECK(same_state(&got, &st));
	lsm_manifest_state_free(&got);
	free(full);
	lsm_manifest_state_free(&before);
	lsm_manifest_state_free(&st);
}

TEST(damaged_middle_record_is_corruption)
{
	const char *dir = test_tmpdir("middle");
	lsm_env *env = lsm_env_posix();
	lsm_manifest_state st, got;
	lsm_manifest_writer *w;
	uint64_t start, end;
	char path[600];
	uint8_t *full;
	size_t len, i;

	CHECK_OK(setup(env, dir, 2, 1 << 20, &st, &w));
	start = st.offset;
	{
		lsm_version_edit e;

		CHECK_OK(make_edit(2, &e));
		CHECK_OK(lsm_manifest_log_and_apply(w, &st, &e, 0));
		end = st.offset;
		lsm_edit_free(&e);
		CHECK_OK(make_edit(3, &e));
		CHECK_OK(lsm_manifest_log_and_apply(w, &st, &e, 0));
		lsm_edit_free(&e);
	}
	lsm_manifest_close(w);
	snprintf(path, sizeof path, "%s/MANIFEST-000001", dir);
	CHECK(read_file(path, &full, &len) == 0);
	/* every byte of the middle record, and of the first (snapshot) one */
	for (i = 0; i < end; i++) {
		if (i >= 64 && i < start)
			i = start;   /* a sample of the snapshot is enough */
		full[i] ^= 0x20;
		CHECK(write_file(path, full, len) == 0);
		CHECK_MSG(lsm_manifest_recover(env, dir, &got, NULL) == LSM_CORRUPTION,
		          "flipped byte %zu", i);
		full[i] ^= 0x20;
	}
	/* the same damage in the last record is a torn tail */
	full[len - 1] ^= 0x20;
	CHECK(write_file(path, full, len) == 0);
	CHECK_OK(lsm_manifest_recover(env, dir, &got, NULL));
	CHECK_EQ_U64(got.offset, end);
	lsm_manifest_state_free(&got);
	/* a manifest with no whole record (no snapshot) is unusable */
	CHECK(write_file(path, full, 10) == 0);
	CHECK_EQ_INT(lsm_manifest_recover(env, dir, &got, NULL), LSM_CORRUPTION);
	free(full);
	lsm_manifest_state_free(&st);
}

TEST(current_strict_content)
{
	const char *dir = test_tmpdir("current");
	lsm_env *env = lsm_env_posix();
	static const struct { const char *text; size_t len; } bad[] = {
		{ "", 0 },
		{ "\n", 1 },
		{ "MANIFEST-000001", 15 },
		{ "MANIFEST-000001\n\n", 17 },
		{ "MANIFEST-000001\nx", 17 },
		{ "MANIFEST-1\n", 11 },
		{ "MANIFEST-0000001\n", 17 },
		{ "MANIFEST-000000\n", 16 },
		{ "manifest-000001\n", 16 },
		{ "MANIFEST-000001 \n", 17 },
		{ "MANIFEST-00000a\n", 16 },
		{ "MANIFEST-000001\r\n", 17 },
		{ "MANIFEST-000001\0\n", 17 },
		{ "MANIFEST-99999999999999999999\n", 30 },
		{ "MANIFEST-000001\nMANIFEST-000001\nMANIFEST-000001\nMANIFEST-000001\n", 64 },
	};
	char path[600];
	uint64_t n;
	size_t i;

	CHECK_EQ_INT(lsm_current_read(env, dir, &n), LSM_NOTFOUND);
	snprintf(path, sizeof path, "%s/CURRENT", dir);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK(write_file(path, bad[i].text, bad[i].len) == 0);
		CHECK_MSG(lsm_current_read(env, dir, &n) == LSM_CORRUPTION, "case %zu", i);
		CHECK_EQ_INT(lsm_manifest_recover(env, dir, &(lsm_manifest_state){ 0 }, NULL),
		             LSM_CORRUPTION);
	}
	CHECK(write_file(path, "MANIFEST-1234567\n", 17) == 0);
	CHECK_OK(lsm_current_read(env, dir, &n));
	CHECK_EQ_U64(n, 1234567);
	CHECK_OK(lsm_current_set(env, dir, 42));
	CHECK_OK(lsm_current_read(env, dir, &n));
	CHECK_EQ_U64(n, 42);
	CHECK(!file_exists(dir, "CURRENT.tmp"));
	/* CURRENT naming a manifest that is not there */
	CHECK_EQ_INT(lsm_manifest_recover(env, dir, &(lsm_manifest_state){ 0 }, NULL),
	             LSM_NOTFOUND);
}

static int live_of(const lsm_manifest_state *st, lsm_live_files *live)
{
	live->version = st->version;
	live->log_number = st->log_number;
	live->manifest_number = st->manifest_number;
	live->pending = NULL;
	live->npending = 0;
	return LSM_OK;
}

TEST(rotation_switches_current)
{
	const char *dir = test_tmpdir("rotate");
	lsm_env *env = lsm_env_posix();
	lsm_manifest_state st, got;
	lsm_manifest_writer *w;
	lsm_live_files live;
	uint64_t cur, removed;
	int i, rotations = 0;

	CHECK_OK(setup(env, dir, 0, 600, &st, &w));
	for (i = 0; i < 40; i++) {
		lsm_version_edit e;
		uint64_t to = 0;

		if (lsm_manifest_should_rotate(w))
			to = st.next_file_number++;   /* the caller allocates the number */
		CHECK_OK(make_edit(i, &e));
		CHECK_OK(lsm_manifest_log_and_apply(w, &st, &e, to));
		lsm_edit_free(&e);
		if (to) {
			rotations++;
			CHECK_EQ_U64(w->number, to);
			CHECK_EQ_U64(st.manifest_number, to);
			CHECK_EQ_U64(st.edits, 1);
			CHECK(st.next_file_number > to);
			CHECK_OK(lsm_current_read(env, dir, &cur));
			CHECK_EQ_U64(cur, to);
		}
		CHECK_OK(lsm_manifest_recover(env, dir, &got, NULL));
		CHECK_MSG(same_state(&got, &st), "after edit %d", i);
		CHECK_EQ_U64(got.manifest_number, st.manifest_number);
		lsm_manifest_state_free(&got);
	}
	CHECK(rotations >= 3);
	CHECK(file_exists(dir, "MANIFEST-000001"));
	/* the old manifests are garbage now, the live one is not */
	live_of(&st, &live);
	CHECK_OK(lsm_obsolete_remove(env, dir, &live, &removed));
	CHECK_EQ_U64(removed, (uint64_t)rotations);
	CHECK(!file_exists(dir, "MANIFEST-000001"));
	CHECK_OK(lsm_current_read(env, dir, &cur));
	CHECK_OK(lsm_manifest_recover(env, dir, &got, NULL));
	CHECK(same_state(&got, &st));
	lsm_manifest_state_free(&got);
	/* a number in use cannot become the manifest */
	{
		lsm_version_edit e;

		lsm_edit_init(&e);
		CHECK_EQ_INT(lsm_manifest_log_and_apply(w, &st, &e, 10 + 39), LSM_INVALID);
		lsm_edit_free(&e);
	}
	lsm_manifest_close(w);
	lsm_manifest_state_free(&st);
}

/* ------------------------------------------------------------- faults */

/* After a failure: reopen (after a power loss when asked) and require the
 * old or the new state.  Returns 1 (old), 2 (new), 0 (broken). */
static int reopen_state(lsm_env *fenv, const char *dir, int power_loss,
                        const lsm_manifest_state *old, const lsm_manifest_state *nw)
{
	lsm_manifest_state got;
	int which = 0;

	lsm_fault_env_clear(fenv);
	if (power_loss && lsm_fault_env_drop_unsynced(fenv) != LSM_OK)
		return 0;
	if (lsm_manifest_recover(lsm_env_posix(), dir, &got, NULL) != LSM_OK)
		return 0;
	if (same_state(&got, old))
		which = 1;
	else if (same_state(&got, nw))
		which = 2;
	lsm_manifest_state_free(&got);
	return which;
}

static const int codes[] = { LSM_IOERR, LSM_NOSPACE };

TEST(fault_during_append_gives_old_or_new)
{
	static const enum lsm_fault_op ops[] = { LSM_FAULT_WRITE, LSM_FAULT_SYNC };
	size_t o, c;
	int pl, keep;

	for (o = 0; o < 2; o++)
		for (c = 0; c < 2; c++)
			for (pl = 0; pl < 2; pl++) {
				const char *dir = test_tmpdir("fault_append");
				lsm_env *fenv = lsm_fault_env_create(lsm_env_posix());
				lsm_manifest_state st, old, nw;
				lsm_manifest_writer *w;
				lsm_version_edit e;
				int rc, which;

				CHECK(fenv != NULL);
				CHECK_OK(setup(fenv, dir, 4, 1 << 20, &st, &w));
				old = clone_state(&st);
				nw = clone_state(&st);
				CHECK_OK(make_edit(4, &e));
				CHECK_OK(lsm_manifest_state_apply(&nw, &e));
				lsm_fault_env_fail(fenv, ops[o], 1, codes[c], 0);
				rc = lsm_manifest_log_and_apply(w, &st, &e, 0);
				CHECK_EQ_INT(rc, codes[c]);
				CHECK(same_state(&st, &old) && st.offset == old.offset);
				/* sticky: nothing more is appended after unknown bytes */
				CHECK_EQ_INT(lsm_manifest_log_and_apply(w, &st, &e, 0), codes[c]);
				lsm_edit_free(&e);
				lsm_manifest_close(w);
				which = reopen_state(fenv, dir, pl, &old, &nw);
				CHECK_MSG(which != 0, "op %zu code %zu power loss %d", o, c, pl);
				/* a failed write leaves the old state; an unsynced record
				 * vanishes with power */
				if (ops[o] == LSM_FAULT_WRITE || pl)
					CHECK_EQ_INT(which, 1);
				lsm_manifest_state_free(&st);
				lsm_manifest_state_free(&old);
				lsm_manifest_state_free(&nw);
				lsm_fault_env_destroy(fenv);
			}
	/* a torn write: any prefix of the record reached the file */
	for (keep = 0; keep < 60; keep += 3) {
		const char *dir = test_tmpdir("fault_tear");
		lsm_env *fenv = lsm_fault_env_create(lsm_env_posix());
		lsm_manifest_state st, old, nw;
		lsm_manifest_writer *w;
		lsm_version_edit e;

		CHECK_OK(setup(fenv, dir, 4, 1 << 20, &st, &w));
		old = clone_state(&st);
		nw = clone_state(&st);
		CHECK_OK(make_edit(4, &e));
		CHECK_OK(lsm_manifest_state_apply(&nw, &e));
		lsm_fault_env_tear_next_write(fenv, (size_t)keep);
		CHECK(lsm_manifest_log_and_apply(w, &st, &e, 0) != LSM_OK);
		lsm_manifest_close(w);
		{
			lsm_buf b;
			size_t reclen;

			lsm_buf_init(&b);
			CHECK_OK(lsm_edit_encode(&e, &b));
			reclen = 12 + b.len;
			lsm_buf_free(&b);
			/* a prefix is a torn tail; the whole record is the new state */
			CHECK_MSG(reopen_state(fenv, dir, 0, &old, &nw) == ((size_t)keep < reclen ? 1 : 2),
			          "keep %d of %zu", keep, reclen);
		}
		lsm_edit_free(&e);
		lsm_manifest_state_free(&st);
		lsm_manifest_state_free(&old);
		lsm_manifest_state_free(&nw);
		lsm_fault_env_destroy(fenv);
	}
}

TEST(fault_during_rotation_gives_old_or_new)
{
	static const enum lsm_fault_op ops[] = {
		LSM_FAULT_OPEN, LSM_FAULT_WRITE, LSM_FAULT_SYNC, LSM_FAULT_RENAME, LSM_FAULT_SYNC_DIR
	};
	size_t o, c;
	int nth, pl, cases = 0;

	for (o = 0; o < sizeof ops / sizeof ops[0]; o++)
		for (c = 0; c < 2; c++)
			for (pl = 0; pl < 2; pl++)
				for (nth = 1;; nth++) {
					const char *dir = test_tmpdir("fault_rotate");
					lsm_env *fenv = lsm_fault_env_create(lsm_env_posix());
					lsm_manifest_state st, old, nw;
					lsm_manifest_writer *w;
					lsm_version_edit e;
					uint64_t to, calls;
					int rc, which, late;

					CHECK(fenv != NULL);
					CHECK_OK(setup(fenv, dir, 4, 1 << 20, &st, &w));
					to = st.next_file_number;
					old = clone_state(&st);
					nw = clone_state(&st);
					CHECK_OK(make_edit(4, &e));
					CHECK_OK(lsm_manifest_state_apply(&nw, &e));
					if (nw.next_file_number <= to)
						nw.next_file_number = to + 1;
					calls = lsm_fault_env_calls(fenv, ops[o]);
					lsm_fault_env_fail(fenv, ops[o], (uint64_t)nth, codes[c], 0);
					rc = lsm_manifest_log_and_apply(w, &st, &e, to);
					if (lsm_fault_env_calls(fenv, ops[o]) - calls < (uint64_t)nth) {
						/* the rotation makes fewer such calls: done */
						CHECK_OK(rc);
						lsm_edit_free(&e);
						lsm_manifest_close(w);
						lsm_manifest_state_free(&st);
						lsm_manifest_state_free(&old);
						lsm_manifest_state_free(&nw);
						lsm_fault_env_destroy(fenv);
						break;
					}
					cases++;
					CHECK_EQ_INT(rc, codes[c]);
					CHECK(same_state(&st, &old) && st.manifest_number == 1);
					late = ops[o] == LSM_FAULT_RENAME || ops[o] == LSM_FAULT_SYNC_DIR;
					CHECK_EQ_INT(w->error != LSM_OK, late);
					if (!late) {
						/* the old manifest is still live: appending works,
						 * and the half-made new manifest is gone */
						char name[32];

						CHECK_OK(lsm_manifest_log_and_apply(w, &st, &e, 0));
						CHECK(same_state(&st, &nw));
						snprintf(name, sizeof name, "MANIFEST-%06llu", (unsigned long long)to);
						CHECK(!file_exists(dir, name));
						lsm_manifest_state_free(&old);
						old = clone_state(&st);
					}
					lsm_edit_free(&e);
					lsm_manifest_close(w);
					/* the fault env makes renames durable at once and drops
					 * a renamed file whose directory was never synced, so
					 * power loss is simulated only before the rename */
					which = reopen_state(fenv, dir, pl && !late, &old, &nw);
					CHECK_MSG(which != 0, "op %zu code %zu nth %d power loss %d",
					          o, c, nth, pl);
					lsm_manifest_state_free(&st);
					lsm_manifest_state_free(&old);
					lsm_manifest_state_free(&nw);
					lsm_fault_env_destroy(fenv);
				}
	CHECK(cases >= 2 * 2 * 7);
}

TEST(fault_during_create_leaves_no_current)
{
	static const enum lsm_fault_op ops[] = {
		LSM_FAULT_OPEN, LSM_FAULT_WRITE, LSM_FAULT_SYNC, LSM_FAULT_RENAME
	};
	size_t o;
	int nth;

	for (o = 0; o < sizeof ops / sizeof ops[0]; o++)
		for (nth = 1; nth <= 2; nth++) {
			const char *dir = test_tmpdir("fault_create");
			lsm_env *fenv = lsm_fault_env_create(lsm_env_posix());
			lsm_manifest_state st, got;
			lsm_manifest_writer *w = NULL;
			uint64_t calls = lsm_fault_env_calls(fenv, ops[o]);
			int rc;

			CHECK_OK(lsm_manifest_state_init(&st));
			st.next_file_number = 2;
			lsm_fault_env_fail(fenv, ops[o], (uint64_t)nth, LSM_IOERR, 0);
			rc = lsm_manifest_create(fenv, dir, 1, &st, 1 << 20, &w);
			if (lsm_fault_env_calls(fenv, ops[o]) - calls < (uint64_t)nth) {
				CHECK_OK(rc);
				lsm_manifest_close(w);
			} else {
				CHECK_EQ_INT(rc, LSM_IOERR);
				CHECK(w == NULL && st.manifest_number == 0);
				/* no CURRENT: the database was never created */
				CHECK_EQ_INT(lsm_manifest_recover(lsm_env_posix(), dir, &got, NULL),
				             LSM_NOTFOUND);
				/* before the rename the new manifest is removed; a failed
				 * rename may have happened, so the file stays */
				CHECK_EQ_INT(file_exists(dir, "MANIFEST-000001"), ops[o] == LSM_FAULT_RENAME);
			}
			lsm_manifest_state_free(&st);
			lsm_fault_env_destroy(fenv);
		}
}

/* ---------------------------------------------------------- obsolete */

TEST(obsolete_decision_table)
{
	static const struct { const char *name; int garbage; } table[] = {
		{ "CURRENT", 0 },
		{ "LOCK", 0 },
		{ "IDENTITY", 0 },
		{ "LOG", 0 },
		{ "000010.sst", 0 },              /* live, L0 */
		{ "000011.sst", 0 },              /* live, L3 */
		{ "000012.sst", 1 },              /* compacted away */
		{ "000013.sst", 0 },              /* an output being written */
		{ "000013.sst.tmp", 0 },          /* ... and its temp file */
		{ "000014.sst.tmp", 1 },          /* an abandoned output */
		{ "000015.tmp", 1 },
		{ "CURRENT.tmp", 1 },             /* a stray CURRENT temp */
		{ "junk.tmp", 1 },
		{ "0010.sst", 0 },                /* not a name we make: kept */
		{ "000010.sst.bak", 0 },
		{ "MANIFEST-000005", 0 },         /* live */
		{ "MANIFEST-000004", 1 },         /* superseded */
		{ "MANIFEST-000007", 1 },         /* a failed rotation's leftover */
		{ "MANIFEST-000016", 0 },         /* a rotation in progress (pending) */
		{ "MANIFEST-5", 0 },
		{ "0000000000000006.wal", 1 },    /* below log_number */
		{ "0000000000000007.wal", 0 },
		{ "0000000000000008.wal", 0 },
		{ "000000000000007.wal", 0 },
		{ "000007.wal", 0 },
	};
	static const uint64_t pending[] = { 13, 16 };
	enum { N = sizeof table / sizeof table[0] };
	const char *names[N];
	uint8_t garbage[N];
	lsm_version *v;
	lsm_version_edit e;
	lsm_live_files live;
	size_t i;

	lsm_edit_init(&e);
	CHECK_OK(add_file(&e, 0, 10, "a", "b", 1));
	CHECK_OK(add_file(&e, 3, 11, "a", "b", 1));
	CHECK_OK(lsm_version_apply(NULL, &e, &v));
	lsm_edit_free(&e);
	for (i = 0; i < N; i++)
		names[i] = table[i].name;
	live = (lsm_live_files){ v, 7, 5, pending, 2 };
	CHECK_OK(lsm_obsolete_decide(&live, names, N, garbage));
	for (i = 0; i < N; i++)
		CHECK_MSG(garbage[i] == table[i].garbage, "%s", table[i].name);
	/* without a live manifest the decision is refused */
	live.manifest_number = 0;
	CHECK_EQ_INT(lsm_obsolete_decide(&live, names, N, garbage), LSM_INVALID);
	/* log_number 0: no WAL segment is garbage */
	live = (lsm_live_files){ v, 0, 5, NULL, 0 };
	CHECK_OK(lsm_obsolete_decide(&live, names, N, garbage));
	CHECK_EQ_INT(garbage[20], 0);
	CHECK_EQ_INT(garbage[7], 1);    /* 000013.sst, no longer pending */
	lsm_version_unref(v);
}

TEST(obsolete_executor_removes_only_garbage)
{
	const char *dir = test_tmpdir("obsolete");
	static const char *keep[] = { "CURRENT", "IDENTITY", "000010.sst", "MANIFEST-000005",
	                              "0000000000000007.wal" };
	static const char *drop[] = { "000012.sst", "CURRENT.tmp", "MANIFEST-000004",
	                              "0000000000000006.wal", "000014.sst.tmp" };
	lsm_version *v;
	lsm_version_edit e;
	lsm_live_files live;
	char path[600];
	uint64_t removed;
	size_t i;

	for (i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, keep[i]);
		CHECK(write_file(path, "x", 1) == 0);
		snprintf(path, sizeof path, "%s/%s", dir, drop[i]);
		CHECK(write_file(path, "x", 1) == 0);
	}
	lsm_edit_init(&e);
	CHECK_OK(add_file(&e, 1, 10, "a", "b", 1));
	CHECK_OK(lsm_version_apply(NULL, &e, &v));
	lsm_edit_free(&e);
	live = (lsm_live_files){ v, 7, 5, NULL, 0 };
	CHECK_OK(lsm_obsolete_remove(lsm_env_posix(), dir, &live, &removed));
	CHECK_EQ_U64(removed, 5);
	for (i = 0; i < 5; i++) {
		CHECK_MSG(file_exists(dir, keep[i]), "%s", keep[i]);
		CHECK_MSG(!file_exists(dir, drop[i]), "%s", drop[i]);
	}
	CHECK_OK(lsm_obsolete_remove(lsm_env_posix(), dir, &live, &removed));
	CHECK_EQ_U64(removed, 0);
	lsm_version_unref(v);
}
