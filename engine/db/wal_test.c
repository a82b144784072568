/*
 * wal_test.c — the write-ahead log: torn tails cut at every byte,
 * corruption before the tail refused or salvaged, segment headers, sync
 * policies, and group commit under concurrent synced writers.
 */
#include <fcntl.h>
#include <pthread.h>

#include "lsm.h"
#include "testutil.h"

#define SEG1 "/0000000000000001.wal"

static int read_file(const char *path, char **buf, size_t *len)
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

static int write_file(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	size_t n;

	if (!f)
		return -1;
	n = fwrite(buf, 1, len, f);
	fclose(f);
	return n == len ? 0 : -1;
}

/* A database directory holding only IDENTITY and segment 1 = seg[0..len). */
static int make_db_with_segment(const char *dir, const char *identity, size_t idlen,
                                const char *seg, size_t len)
{
	char path[600];

	test_rm_rf(dir);
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/IDENTITY", dir);
	if (write_file(path, identity, idlen))
		return -1;
	snprintf(path, sizeof path, "%s" SEG1, dir);
	return write_file(path, seg, len);
}

static void key_of(int i, char *key) { sprintf(key, "key%04d", i); }

/* Number of keys key0000.. present as an unbroken prefix, or -1 when the
 * present keys are not a prefix. */
static int present_prefix(lsm_db *db, int n)
{
	int i, prefix = -1;
	char key[16];
	void *v;
	size_t vl;

	for (i = 0; i < n; i++) {
		int rc;

		key_of(i, key);
		rc = lsm_get(db, NULL, key, strlen(key), &v, &vl);
		if (rc == LSM_OK) {
			lsm_free(v);
			if (prefix >= 0)
				return -1;
		} else if (prefix < 0)
			prefix = i;
	}
	return prefix < 0 ? n : prefix;
}

/* Writes n one-key records into a fresh db and returns segment 1's bytes. */
static int build_segment(const char *dir, int n, char **seg, size_t *seglen,
                         char **ident, size_t *idlen)
{
	lsm_db *db;
	char key[16], path[600];
	int i;

	if (lsm_open(NULL, dir, &db) != LSM_OK)
		return -1;
	for (i = 0; i < n; i++) {
		key_of(i, key);
		if (lsm_put(db, NULL, key, strlen(key), "value-of-some-length", 20) != LSM_OK)
			return -1;
	}
	if (lsm_close(db) != LSM_OK)
		return -1;
	snprintf(path, sizeof path, "%s" SEG1, dir);
	if (read_file(path, seg, seglen))
		return -1;
	snprintf(path, sizeof path, "%s/IDENTITY", dir);
	return read_file(path, ident, idlen);
}

TEST(torn_tail_cut_at_every_byte)
{
	const char *src = test_tmpdir("torn-src");
	char dir[600];
	char *seg, *ident;
	size_t seglen, idlen, cut;
	int last = 0, n = 12;

	CHECK(build_segment(src, n, &seg, &seglen, &ident, &idlen) == 0);
	snprintf(dir, sizeof dir, "%s-cut", src);
	for (cut = 0; cut <= seglen; cut++) {
		lsm_db *db;
		lsm_stats st;
		int p;

		CHECK(make_db_with_segment(dir, ident, idlen, seg, cut) == 0);
		CHECK_OK(lsm_open(NULL, dir, &db));
		p = present_prefix(db, n);
		CHECK_MSG(p >= last, "cut %zu: prefix %d after %d", cut, p, last);
		CHECK_OK(lsm_get_stats(db, &st));
		CHECK_EQ_U64(st.recovered_records, (uint64_t)p);
		CHECK_OK(lsm_close(db));
		/* the cut tail is gone for good: the segment is no longer the
		 * newest, yet the next open finds it clean */
		CHECK_OK(lsm_open(NULL, dir, &db));
		CHECK_EQ_INT(present_prefix(db, n), p);
		CHECK_OK(lsm_get_stats(db, &st));
		CHECK_EQ_U64(st.recovered_bytes_dropped, 0);
		CHECK_OK(lsm_close(db));
		last = p;
	}
	CHECK_EQ_INT(last, n);
	test_rm_rf(dir);
	free(seg);
	free(ident);
}

TEST(corruption_before_tail_is_an_error_unless_salvaged)
{
	const char *src = test_tmpdir("mid-src");
	char dir[600];
	char *seg, *ident;
	size_t seglen, idlen, pos;
	int n = 20, bad = 0;
	lsm_error_info where;
	lsm_options o;

	CHECK(build_segment(src, n, &seg, &seglen, &ident, &idlen) == 0);
	snprintf(dir, sizeof dir, "%s-bad", src);
	/* flip each byte of the first half of the records, one at a time */
	for (pos = 32; pos < seglen / 2; pos += 7) {
		lsm_db *db;
		lsm_stats st;
		int i, present = 0;
		char key[16];
		void *v;
		size_t vl;

		seg[pos] ^= 0x40;
		CHECK(make_db_with_segment(dir, ident, idlen, seg, seglen) == 0);
		seg[pos] ^= 0x40;
		lsm_options_init(&o);
		db = NULL;
		lsm_error_clear();
		CHECK_EQ_INT(lsm_open(&o, dir, &db), LSM_CORRUPTION);
		CHECK(db == NULL);
		/* the error names the segment and the damaged record's offset */
		CHECK(lsm_error_where(&where));
		CHECK_MSG(strstr(where.file, ".wal") != NULL && where.offset >= 32 &&
		          where.offset <= (int64_t)pos && where.offset > (int64_t)pos - 64,
		          "flip at %zu: noted %s at %lld", pos, where.file, (long long)where.offset);
		o.wal_salvage = 1;
		CHECK_OK(lsm_open(&o, dir, &db));
		CHECK_OK(lsm_get_stats(db, &st));
		CHECK(st.recovered_bytes_dropped > 0);
		for (i = 0; i < n; i++) {
			key_of(i, key);
			if (lsm_get(db, NULL, key, strlen(key), &v, &vl) == LSM_OK) {
				CHECK_MEM(v, vl, "value-of-some-length", 20);
				lsm_free(v);
				present++;
			}
		}
		/* one damaged record lost, every other one kept */
		CHECK_MSG(present == n - 1, "flip at %zu: %d present", pos, present);
		CHECK_OK(lsm_close(db));
		bad++;
	}
	CHECK(bad > 10);
	/* a damaged segment header is corruption too */
	seg[3] ^= 1;
	CHECK(make_db_with_segment(dir, ident, idlen, seg, seglen) == 0);
	{
		lsm_db *db;

		lsm_options_init(&o);
		CHECK_EQ_INT(lsm_open(&o, dir, &db), LSM_CORRUPTION);
		CHECK(lsm_error_where(&where) && strstr(where.file, ".wal") && where.offset == 0);
	}
	test_rm_rf(dir);
	free(seg);
	free(ident);
}

TEST(damage_in_last_record_is_a_torn_tail)
{
	const char *src = test_tmpdir("lastrec-src");
	char dir[600];
	char *seg, *ident;
	size_t seglen, idlen;
	lsm_db *db;
	int n = 10;

	CHECK(build_segment(src, n, &seg, &seglen, &ident, &idlen) == 0);
	snprintf(dir, sizeof dir, "%s-x", src);
	seg[seglen - 3] ^= 0xff;
	CHECK(make_db_with_segment(dir, ident, idlen, seg, seglen) == 0);
	CHECK_OK(lsm_open(NULL, dir, &db));
	CHECK_EQ_INT(present_prefix(db, n), n - 1);
	CHECK_OK(lsm_close(db));
	/* zeros after the records (a preallocated or half-written tail) */
	seg[seglen - 3] ^= 0xff;
	{
		char *padded = calloc(1, seglen + 4096);

		memcpy(padded, seg, seglen);
		CHECK(make_db_with_segment(dir, ident, idlen, padded, seglen + 4096) == 0);
		free(padded);
	}
	CHECK_OK(lsm_open(NULL, dir, &db));
	CHECK_EQ_INT(present_prefix(db, n), n);
	CHECK_OK(lsm_close(db));
	test_rm_rf(dir);
	free(seg);
	free(ident);
}

TEST(sync_policy_every_n_writes)
{
	const char *dir = test_tmpdir("policy");
	lsm_options o;
	lsm_db *db;
	lsm_stats st;
	char key[16];
	int i;

	lsm_options_init(&o);
	o.wal_sync_every_writes = 10;
	CHECK_OK(lsm_open(&o, dir, &db));
	for (i = 0; i < 100; i++) {
		key_of(i, key);
		CHECK_OK(lsm_put(db, NULL, key, strlen(key), "v", 1));
	}
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_U64(st.wal_syncs, 10);
	CHECK_EQ_U64(st.wal_synced_writes, 100);
	CHECK_OK(lsm_close(db));

	lsm_options_init(&o);
	o.wal_sync_every_bytes = 1000;
	CHECK_OK(lsm_open(&o, dir, &db));
	for (i = 0; i < 100; i++) {
		key_of(i, key);
		CHECK_OK(lsm_put(db, NULL, key, strlen(key), "0123456789012345678901234567890123456789", 40));
	}
	CHECK_OK(lsm_get_stats(db, &st));
	/* about 70 bytes a record: a sync every 15 writes or so */
	CHECK(st.wal_syncs >= 5 && st.wal_syncs <= 10);
	CHECK_OK(lsm_close(db));

	/* manual: nothing synced until asked */
	lsm_options_init(&o);
	CHECK_OK(lsm_open(&o, dir, &db));
	for (i = 0; i < 50; i++) {
		key_of(i, key);
		CHECK_OK(lsm_put(db, NULL, key, strlen(key), "v", 1));
	}
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_U64(st.wal_syncs, 0);
	CHECK_OK(lsm_sync_wal(db));
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_U64(st.wal_syncs, 1);
	CHECK_EQ_U64(st.wal_synced_writes, 50);
	CHECK_OK(lsm_close(db));
}

struct gc_arg {
	lsm_db *db;
	int id;
	int n;
	int err;
};

static void *sync_writer(void *p)
{
	struct gc_arg *a = p;
	lsm_write_options wo = {1};
	char key[32];
	int i;

	for (i = 0; i < a->n; i++) {
		snprintf(key, sizeof key, "t%d-%05d", a->id, i);
		if (lsm_put(a->db, &wo, key, strlen(key), key, strlen(key)) != LSM_OK)
			a->err++;
	}
	return NULL;
}

TEST(group_commit_many_synced_writers)
{
	const char *dir = test_tmpdir("group");
	struct gc_arg args[4];
	pthread_t th[4];
	lsm_options o;
	lsm_db *db;
	lsm_stats st;
	int t, i;

	lsm_options_init(&o);
	o.wal_segment_size = 4096;            /* rotate under load too */
	CHECK_OK(lsm_open(&o, dir, &db));
	for (t = 0; t < 4; t++) {
		args[t] = (struct gc_arg){db, t, 150, 0};
		pthread_create(&th[t], NULL, sync_writer, &args[t]);
	}
	for (t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		CHECK_EQ_INT(args[t].err, 0);
	}
	CHECK_OK(lsm_get_stats(db, &st));
	CHECK_EQ_U64(st.writes, 600);
	CHECK(st.wal_syncs >= 1 && st.wal_syncs <= 600);
	CHECK(st.wal_segments > 2);
	CHECK_OK(lsm_close(db));
	CHECK_OK(lsm_open(&o, dir, &db));
	for (t = 0; t < 4; t++)
		for (i = 0; i < 150; i++) {
			char key[32];
			void *v;
			size_t n;

			snprintf(key, sizeof key, "t%d-%05d", t, i);
			CHECK_OK(lsm_get(db, NULL, key, strlen(key), &v, &n));
			CHECK_MEM(v, n, key, strlen(key));
			lsm_free(v);
		}
	CHECK_OK(lsm_close(db));
}
