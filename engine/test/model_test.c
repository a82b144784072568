/*
 * model_test.c — randomized operations against an in-memory model.
 *
 * model_random_ops_several_seeds: each seed runs a stream of operations on
 * the engine and on a plain array of values (the model), and checks after
 * every read that both agree:
 *   writes   puts (now and then large, or synced), deletes, range deletes
 *            with bounds that are keys, between keys or arbitrary strings,
 *            batches mixing all three (applied in order: a range delete
 *            deletes what its batch put before it), and bursts of a few
 *            thousand puts that outrun the flusher (write stalls, L0
 *            slowdowns and stops);
 *   reads    gets, bounded and unbounded scans, seeks (two on one
 *            iterator), at the latest state or through a snapshot;
 *   snapshots created (a copy of the model kept), read later by gets and
 *            full scans, released;
 *   a long-lived iterator, stepped a little at a time while everything
 *            else goes on (flushes retire the memtables it pinned, stalled
 *            writers make it re-open);
 *   lsm_flush, lsm_compact_range over random ranges, close and reopen
 *            (with other options: memtables, block size, compression,
 *            bloom filters, cache, level sizes, triggers, background).
 * The keys include the empty key, keys ending in 0x00 and 0xff bytes and
 * 3000-byte keys.  Seeds cycle through three configurations:
 *   seed % 3 == 1  "persist", background thread: 64 KiB memtables, tiny
 *                  levels (16-64 KiB L1, multiplier 2-4): flushes and
 *                  compactions run all the time, every level fills;
 *   seed % 3 == 2  "persist" without the background thread: the test
 *                  flushes when a write reports LSM_FULL, and small files
 *                  (8-32 KiB) make many per level;
 *   seed % 3 == 0  "memtable": the original test's 128 MiB memtable (WAL and
 *                  memtable, plus the explicit flushes and compactions).
 * fsync is a no-op in this test (durability is crash_test's and
 * fault_test's business).  The options are derived from the seed and
 * printed on failure with the seed; "persist" seeds must show flushes,
 * compactions and data below L1 in the stats.  A watchdog fails the test
 * (with the seed and op) when an op makes no progress for 120 s.
 *
 * The other tests are regression tests for engine bugs the random test
 * found (each with the bug it reproduces; fixed in 709b14a).
 *
 * LSM_MODEL_OPS (ops per seed, default 100000), LSM_MODEL_SEEDS (default
 * 9), LSM_MODEL_SEED (run only this seed) and LSM_MODEL_WATCHDOG (seconds)
 * scale it for long runs outside CI.
 */
#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdarg.h>

#include "lsm.h"
#include "testutil.h"

#define NKEYS     1500
#define MAXSNAPS  4
#define MAXVAL    6000
#define MAXKEY    3100
#define MAXBOUND  (MAXKEY + 2)

typedef struct model {
	char *val[NKEYS];        /* NULL: absent */
	size_t len[NKEYS];
} model;

typedef struct snap {
	const lsm_snapshot *s;
	model m;
} snap;

/* A bound of an iterator or a range delete; len < 0: none. */
typedef struct bound {
	char b[MAXBOUND];
	int len;
} bound;

/* The long-lived iterator and what it must show. */
typedef struct liter {
	lsm_iter *it;
	model m;
	bound lo, hi;
	int pos;                 /* rank the iterator is on; NKEYS: exhausted */
	const lsm_snapshot *snap;   /* read through (NULL: its own) */
} liter;

typedef struct cfg {
	const char *kind;
	lsm_options o;
	int filter;
} cfg;

static char *kstr[NKEYS];
static size_t klen_of[NKEYS];
static int sorted_ids[NKEYS];      /* key ids in key order */
static char fail_msg[512];

/* Records what went wrong; returns 1 (bad). */
__attribute__((format(printf, 1, 2)))
static int FAIL(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fail_msg, sizeof fail_msg, fmt, ap);
	va_end(ap);
	return 1;
}

static int cmp_bytes(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al < bl ? -1 : al > bl);
}

static void describe(char *out, size_t n, const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t i, o = 0;

	for (i = 0; i < len && o + 5 < n; i++)
		o += (size_t)snprintf(out + o, n - o, isprint(s[i]) ? "%c" : "\\x%02x", s[i]);
	out[o] = 0;
}

/* memcmp for possibly empty (and then possibly NULL) buffers */
static int same_bytes(const void *a, size_t al, const void *b, size_t bl)
{
	return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

/*
 * Key id k: "k" and k in 3 to 7 digits (varied lengths, one shared prefix:
 * exercises the comparator); id 0 is the empty key; every 13th ends in a
 * 0xff byte, every 17th in a 0x00 byte; every 211th is 3000 bytes long
 * (larger than a data block).
 */
static void key_of(int k, char *buf, size_t *len)
{
	if (k == 0) {
		*len = 0;
		return;
	}
	*len = (size_t)sprintf(buf, "k%0*d", 3 + k % 5, k);
	if (k % 13 == 0)
		buf[(*len)++] = (char)0xff;
	if (k % 17 == 0)
		buf[(*len)++] = 0;
	if (k % 211 == 0) {
		memset(buf + *len, 'q', 3000 - *len);
		*len = 3000;
	}
}

/* A printable name for key id k (for messages). */
static const char *kname(int k)
{
	static char buf[4][80];
	static int turn;
	char *b = buf[turn++ & 3];
	size_t n = klen_of[k] > 20 ? 20 : klen_of[k];

	describe(b, 60, kstr[k], n);
	if (klen_of[k] > 20)
		sprintf(b + strlen(b), "...(%zu bytes)", klen_of[k]);
	return b;
}

static void model_set(model *m, int k, const char *v, size_t n)
{
	free(m->val[k]);
	m->val[k] = NULL;
	if (v) {
		m->val[k] = malloc(n ? n : 1);
		memcpy(m->val[k], v, n);
	}
	m->len[k] = n;
}

static void model_copy(model *dst, const model *src)
{
	int k;

	for (k = 0; k < NKEYS; k++) {
		dst->val[k] = NULL;
		model_set(dst, k, src->val[k], src->len[k]);
	}
}

static void model_free(model *m)
{
	int k;

	for (k = 0; k < NKEYS; k++)
		free(m->val[k]);
	memset(m, 0, sizeof *m);
}

/* key id k lies in [lo, hi) (either may be absent) */
static int in_bounds(int k, const bound *lo, const bound *hi)
{
	if (lo->len >= 0 && cmp_bytes(kstr[k], klen_of[k], lo->b, (size_t)lo->len) < 0)
		return 0;
	if (hi->len >= 0 && cmp_bytes(kstr[k], klen_of[k], hi->b, (size_t)hi->len) >= 0)
		return 0;
	return 1;
}

static void model_delete_range(model *m, const bound *lo, const bound *hi)
{
	int k;

	for (k = 0; k < NKEYS; k++)
		if (m->val[k] && in_bounds(k, lo, hi))
			model_set(m, k, NULL, 0);
}

/*
 * The compaction filter of the seeds that have one decides by a value's
 * first byte: V_EXPIRE values are removed (the key then reads as deleted,
 * never as an older value), V_CHANGE values are rewritten with V_CHANGED
 * as first byte, anything else is kept.  A read may see a value before or
 * after the filter ran on it, so the model accepts both.
 */
#define V_EXPIRE  0xee
#define V_CHANGE  0xcc
#define V_CHANGED 0xcd

static int filter_on;               /* this seed's db has the filter */
static uint64_t seen_removed, seen_changed;   /* reads that saw the filter's work */

static void mark_value(test_rng *rng, char *buf, size_t n)
{
	uint64_t r = test_rng_uniform(rng, 100);

	if (n == 0)
		return;
	if (r < 3)
		buf[0] = (char)V_EXPIRE;
	else if (r < 6)
		buf[0] = (char)V_CHANGE;
	else if ((unsigned char)buf[0] == V_EXPIRE || (unsigned char)buf[0] == V_CHANGE ||
	         (unsigned char)buf[0] == V_CHANGED)
		buf[0] = 'A';
}

static int marker_filter(void *arg, int level, const void *key, size_t klen,
                         const void *val, size_t vlen, uint64_t seq,
                         void **new_val, size_t *new_vlen)
{
	const unsigned char *v = val;

	(void)arg; (void)level; (void)key; (void)klen; (void)seq;
	if (vlen == 0)
		return LSM_FILTER_KEEP;
	if (v[0] == V_EXPIRE)
		return LSM_FILTER_REMOVE;
	if (v[0] != V_CHANGE || (*new_val = malloc(vlen)) == NULL)
		return LSM_FILTER_KEEP;
	memcpy(*new_val, val, vlen);
	*(unsigned char *)*new_val = V_CHANGED;
	*new_vlen = vlen;
	return LSM_FILTER_CHANGE;
}

/* The model's value of k may read as absent (the filter removed it). */
static int may_vanish(const model *m, int k)
{
	return filter_on && m->val[k] && m->len[k] && (unsigned char)m->val[k][0] == V_EXPIRE;
}

/* v (n bytes) is what the model holds for k, or its filtered form. */
static int value_ok(const model *m, int k, const void *v, size_t n)
{
	const unsigned char *p = v, *w = (const unsigned char *)m->val[k];

	if (same_bytes(v, n, m->val[k], m->len[k]))
		return 1;
	if (filter_on && n == m->len[k] && n > 0 && w[0] == V_CHANGE && p[0] == V_CHANGED &&
	    memcmp(p + 1, w + 1, n - 1) == 0)
		return ++seen_changed > 0;
	return 0;
}

static void random_value(test_rng *rng, char *buf, size_t *n)
{
	uint64_t r = test_rng_uniform(rng, 100);

	if (r == 0)
		*n = 1000 + (size_t)test_rng_uniform(rng, MAXVAL - 1000);   /* > a block */
	else
		*n = (size_t)test_rng_uniform(rng, 120);
	test_rng_fill(rng, buf, *n);
	mark_value(rng, buf, *n);
}

/*
 * A bound: mostly a key (at rank r), sometimes a key with a byte appended
 * or cut off (just after / a prefix before it), sometimes an arbitrary
 * "k<digits>" string.  Ranks near `rank` keep ranges mostly small.
 */
static void gen_bound_at(test_rng *rng, int rank, bound *out)
{
	uint64_t r = test_rng_uniform(rng, 10);
	int k;

	if (rank >= NKEYS) {
		/* past every key */
		memcpy(out->b, "l", 1);
		out->len = 1;
		return;
	}
	k = sorted_ids[rank];
	memcpy(out->b, kstr[k], klen_of[k]);
	out->len = (int)klen_of[k];
	if (r == 0) {
		out->b[out->len++] = (char)test_rng_uniform(rng, 3);   /* 0, 1 or 2 */
	} else if (r == 1 && out->len > 2) {
		out->len -= 1 + (int)test_rng_uniform(rng, (uint64_t)out->len - 2);
	} else if (r == 2) {
		int i, n = 1 + (int)test_rng_uniform(rng, 8);

		out->b[0] = 'k';
		for (i = 0; i < n; i++)
			out->b[1 + i] = (char)('0' + test_rng_uniform(rng, 10));
		out->len = 1 + n;
	}
}

/* A range [lo, hi) with lo < hi; mostly a few keys wide. */
static void gen_range(test_rng *rng, bound *lo, bound *hi)
{
	uint64_t w = test_rng_uniform(rng, 20);
	int a = (int)test_rng_uniform(rng, NKEYS);
	int span = w < 15 ? 1 + (int)test_rng_uniform(rng, 12)
	         : w < 19 ? 1 + (int)test_rng_uniform(rng, 150)
	                  : 1 + (int)test_rng_uniform(rng, NKEYS);

	do {
		gen_bound_at(rng, a, lo);
		gen_bound_at(rng, a + span > NKEYS ? NKEYS : a + span, hi);
		if (cmp_bytes(lo->b, (size_t)lo->len, hi->b, (size_t)hi->len) > 0) {
			bound t = *lo;
			*lo = *hi;
			*hi = t;
		}
	} while (cmp_bytes(lo->b, (size_t)lo->len, hi->b, (size_t)hi->len) == 0);
}


/* 0 when the engine's value for k at s equals the model's. */
static int check_get(lsm_db *db, const lsm_snapshot *s, const model *m, int k)
{
	lsm_read_options ro = {0};
	size_t n;
	void *v;
	int rc, bad;

	ro.snapshot = s;
	rc = lsm_get(db, &ro, kstr[k], klen_of[k], &v, &n);
	if (m->val[k] == NULL) {
		if (rc == LSM_NOTFOUND)
			return 0;
		lsm_free(v);
		return FAIL("get %s%s: want absent, got rc %d len %zu", kname(k),
		            s ? " (snapshot)" : "", rc, n);
	}
	if (rc == LSM_NOTFOUND && may_vanish(m, k))
		return (int)(++seen_removed, 0);
	if (rc != LSM_OK)
		return FAIL("get %s%s: want %zu bytes, got rc %d (%s)", kname(k),
		            s ? " (snapshot)" : "", m->len[k], rc, lsm_strerror(rc));
	bad = !value_ok(m, k, v, n);
	lsm_free(v);
	if (bad)
		return FAIL("get %s%s: wrong value: %zu bytes, want %zu", kname(k),
		            s ? " (snapshot)" : "", n, m->len[k]);
	return 0;
}

/* First rank >= from whose key is present in m and inside [lo, hi) and
 * >= seek (NULL: no seek key); NKEYS when none. */
static int next_rank(const model *m, int from, const bound *lo, const bound *hi,
                     const bound *seek)
{
	int i;

	for (i = from; i < NKEYS; i++) {
		int k = sorted_ids[i];

		if (m->val[k] == NULL || !in_bounds(k, lo, hi))
			continue;
		if (seek && cmp_bytes(kstr[k], klen_of[k], seek->b, (size_t)seek->len) < 0)
			continue;
		return i;
	}
	return NKEYS;
}

/* 0 when the iterator's current entry is what rank `pos` of m says. */
static int check_entry(lsm_iter *it, const model *m, int pos, const char *what)
{
	char got[64];
	const void *key, *v;
	size_t kl, vl;
	int k;

	if (pos >= NKEYS) {
		if (lsm_iter_valid(it)) {
			key = lsm_iter_key(it, &kl);
			describe(got, sizeof got, key, kl);
			return FAIL("%s: iterator on '%s', model has no more keys", what, got);
		}
		if (lsm_iter_status(it) != LSM_OK)
			return FAIL("%s: iterator status %d", what, lsm_iter_status(it));
		return 0;
	}
	k = sorted_ids[pos];
	if (!lsm_iter_valid(it))
		return FAIL("%s: iterator ended (status %d), model has %s", what,
		            lsm_iter_status(it), kname(k));
	key = lsm_iter_key(it, &kl);
	v = lsm_iter_value(it, &vl);
	if (!same_bytes(key, kl, kstr[k], klen_of[k])) {
		describe(got, sizeof got, key, kl);
		return FAIL("%s: iterator on '%s', model on %s", what, got, kname(k));
	}
	if (!value_ok(m, k, v, vl))
		return FAIL("%s: %s has %zu bytes, model %zu", what, kname(k), vl, m->len[k]);
	return 0;
}

/* Moves pos past model keys the filter may have removed and the iterator
 * does not show. */
static void skip_vanished(lsm_iter *it, const model *m, int *pos, const bound *lo,
                          const bound *hi)
{
	while (*pos < NKEYS && may_vanish(m, sorted_ids[*pos])) {
		int k = sorted_ids[*pos];
		size_t kl;
		const void *key;

		if (lsm_iter_valid(it)) {
			key = lsm_iter_key(it, &kl);    /* (NULL for the empty key) */
			if (same_bytes(key, kl, kstr[k], klen_of[k]))
				return;
		}
		seen_removed++;
		*pos = next_rank(m, *pos + 1, lo, hi, NULL);
	}
}

static void set_ro(lsm_read_options *ro, const lsm_snapshot *s, const bound *lo, const bound *hi)
{
	memset(ro, 0, sizeof *ro);
	ro->snapshot = s;
	if (lo->len >= 0) {
		ro->lower_bound = lo->b;
		ro->lower_bound_len = (size_t)lo->len;
	}
	if (hi->len >= 0) {
		ro->upper_bound = hi->b;
		ro->upper_bound_len = (size_t)hi->len;
	}
}

/* Random iterator bounds: none, one or both. */
static void gen_iter_bounds(test_rng *rng, bound *lo, bound *hi)
{
	uint64_t r = test_rng_uniform(rng, 4);

	lo->len = hi->len = -1;
	if (r == 0)
		return;
	gen_range(rng, lo, hi);
	if (r == 1)
		lo->len = -1;
	else if (r == 2)
		hi->len = -1;
}

/* 0 when a scan over [lo, hi) equals the model's keys in order. */
static int check_scan(lsm_db *db, const lsm_snapshot *s, const model *m,
                      const bound *lo, const bound *hi)
{
	lsm_read_options ro;
	lsm_iter *it;
	int pos, bad = 0, rc;

	set_ro(&ro, s, lo, hi);
	if ((rc = lsm_iter_create(db, &ro, &it)) != LSM_OK)
		return FAIL("lsm_iter_create: %s", lsm_strerror(rc));
	lsm_iter_seek_to_first(it);
	for (pos = next_rank(m, 0, lo, hi, NULL); !bad; pos = next_rank(m, pos + 1, lo, hi, NULL)) {
		skip_vanished(it, m, &pos, lo, hi);
		bad = check_entry(it, m, pos, s ? "snapshot scan" : "scan");
		if (pos >= NKEYS)
			break;
		lsm_iter_next(it);
	}
	lsm_iter_destroy(it);
	return bad;
}

/* Seeks twice on one iterator and compares a few entries after each. */
static int check_seek(lsm_db *db, const lsm_snapshot *s, const model *m, test_rng *rng)
{
	lsm_read_options ro;
	bound lo, hi, target, dummy;
	lsm_iter *it;
	int round, i, pos, bad = 0, rc;

	gen_iter_bounds(rng, &lo, &hi);
	set_ro(&ro, s, &lo, &hi);
	if ((rc = lsm_iter_create(db, &ro, &it)) != LSM_OK)
		return FAIL("lsm_iter_create: %s", lsm_strerror(rc));
	for (round = 0; round < 2 && !bad; round++) {
		gen_range(rng, &target, &dummy);
		lsm_iter_seek(it, target.b, (size_t)target.len);
		pos = next_rank(m, 0, &lo, &hi, &target);
		for (i = 0; i < 25 && !bad; i++) {
			skip_vanished(it, m, &pos, &lo, &hi);
			bad = check_entry(it, m, pos, "seek");
			if (pos >= NKEYS)
				break;
			lsm_iter_next(it);
			pos = next_rank(m, pos + 1, &lo, &hi, NULL);
		}
	}
	lsm_iter_destroy(it);
	return bad;
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);

	return v && *v ? atol(v) : dflt;
}

static void release_snaps(lsm_db *db, snap *snaps, int *nsnaps)
{
	while (*nsnaps > 0) {
		(*nsnaps)--;
		lsm_snapshot_release(db, snaps[*nsnaps].s);
		model_free(&snaps[*nsnaps].m);
	}
}

static void liter_close(liter *li)
{
	if (li->it) {
		lsm_iter_destroy(li->it);
		li->it = NULL;
		model_free(&li->m);
	}
}

/*
 * The seeds flush and compact thousands of times; waiting for the disk at
 * every fsync would make them I/O bound without testing anything more (no
 * crash happens here: crash_test and fault_test cover durability).  The
 * env is the POSIX one with fsync made a no-op.
 */
static int nosync_sync(lsm_file *f)
{
	(void)f;
	return LSM_OK;
}

static int nosync_sync_dir(lsm_env *env, const char *path)
{
	(void)env; (void)path;
	return LSM_OK;
}

static lsm_env *nosync_env(void)
{
	static lsm_env e;

	if (e.open == NULL) {
		e = *lsm_env_posix();
		e.sync = nosync_sync;
		e.sync_dir = nosync_sync_dir;
	}
	return &e;
}

static cfg make_cfg(uint64_t seed)
{
	test_rng r;
	cfg c;

	test_rng_seed(&r, seed * 7919 + 13);
	memset(&c, 0, sizeof c);
	lsm_options_init(&c.o);
	c.o.wal_segment_size = 256 * 1024;
	if (seed % 3 == 0) {
		c.kind = "memtable";
		c.o.env = nosync_env();
		c.o.memtable_size = 128u << 20;
		c.o.max_bytes_for_level_base = 1u << 20;
		c.o.target_file_size = 256 * 1024;
		c.o.block_cache_size = 1u << 20;
		return c;
	}
	c.kind = "persist";
	c.o.env = nosync_env();
	c.o.memtable_size = 64 * 1024;
	c.o.max_memtables = 2 + (int)test_rng_uniform(&r, 3);
	c.o.background_thread = seed % 3 != 2;
	c.o.max_bytes_for_level_base = (16 + test_rng_uniform(&r, 48)) * 1024;
	c.o.level_size_multiplier = 2 + (int)test_rng_uniform(&r, 3);
	c.o.target_file_size = (8 + test_rng_uniform(&r, 24)) * 1024;
	c.o.l0_compaction_trigger = 1 + (int)test_rng_uniform(&r, 4);
	c.o.block_size = test_rng_uniform(&r, 2) ? 4096 : 256 + (size_t)test_rng_uniform(&r, 1024);
	c.o.block_cache_size = test_rng_uniform(&r, 3) == 0 ? 0 : (256u << 10);
	c.o.bloom_bits_per_key = test_rng_uniform(&r, 3) == 0 ? 0 : 10;
	c.o.compression = (int)test_rng_uniform(&r, 2);
	c.o.wal_segment_size = 4096 + test_rng_uniform(&r, 64 * 1024);
	if (test_rng_uniform(&r, 2)) {
		c.o.l0_slowdown_trigger = c.o.l0_compaction_trigger + (int)test_rng_uniform(&r, 4);
		c.o.l0_stop_trigger = c.o.l0_slowdown_trigger + 1 + (int)test_rng_uniform(&r, 4);
	}
	c.filter = test_rng_uniform(&r, 2) == 0;
	if (c.filter)
		c.o.compaction_filter = marker_filter;
	return c;
}

/* At a reopen, "persist" seeds change the options that may change between
 * opens of one database: tables written with one block size, compression
 * or filter setting are read with another, and so on. */
static void vary_options(lsm_options *o, test_rng *r)
{
	if (o->memtable_size > (1u << 20))
		return;
	o->memtable_size = (64 + 32 * test_rng_uniform(r, 3)) * 1024;
	o->max_memtables = 2 + (int)test_rng_uniform(r, 3);
	o->background_thread = test_rng_uniform(r, 3) != 0;
	o->max_bytes_for_level_base = (16 + test_rng_uniform(r, 48)) * 1024;
	o->level_size_multiplier = 2 + (int)test_rng_uniform(r, 3);
	o->target_file_size = (8 + test_rng_uniform(r, 24)) * 1024;
	o->l0_compaction_trigger = 1 + (int)test_rng_uniform(r, 4);
	o->block_size = test_rng_uniform(r, 2) ? 4096 : 256 + (size_t)test_rng_uniform(r, 1024);
	o->block_cache_size = test_rng_uniform(r, 3) == 0 ? 0 : (256u << 10);
	o->bloom_bits_per_key = test_rng_uniform(r, 3) == 0 ? 0 : 10;
	o->compression = (int)test_rng_uniform(r, 2);
	o->wal_sync_every_writes = test_rng_uniform(r, 4) == 0 ? 50 : 0;
	o->l0_slowdown_trigger = 20;
	o->l0_stop_trigger = 36;
	if (test_rng_uniform(r, 2)) {
		o->l0_slowdown_trigger = o->l0_compaction_trigger + (int)test_rng_uniform(r, 4);
		o->l0_stop_trigger = o->l0_slowdown_trigger + 1 + (int)test_rng_uniform(r, 4);
	}
}

static void print_cfg(uint64_t seed, const cfg *c)
{
	fprintf(stderr, "    seed %" PRIu64 " (%s): memtable %zu x%d, bg %d, L1 %" PRIu64
	        " x%d, file %" PRIu64 ", l0 trigger %d, block %zu, cache %zu, bloom %d,"
	        " lz4 %d, filter %d\n", seed, c->kind, c->o.memtable_size, c->o.max_memtables,
	        c->o.background_thread, c->o.max_bytes_for_level_base, c->o.level_size_multiplier,
	        c->o.target_file_size, c->o.l0_compaction_trigger, c->o.block_size,
	        c->o.block_cache_size, c->o.bloom_bits_per_key, c->o.compression, c->filter);
}

typedef struct totals {
	uint64_t flushes, compactions, stalls, slowdowns, reopens, rdels, snaps, scans, liter_steps,
	         bursts;
	int deepest;             /* deepest level seen holding files */
} totals;

static void add_stats(lsm_db *db, totals *t)
{
	lsm_stats st;
	int l;

	if (lsm_get_stats(db, &st) != LSM_OK)
		return;
	t->flushes += st.flushes;
	t->compactions += st.compactions;
	t->stalls += st.write_stalls;
	t->slowdowns += st.write_slowdowns;
	for (l = 0; l < 7; l++)
		if (st.level_files[l] && l > t->deepest)
			t->deepest = l;
}

static void deepest_now(lsm_db *db, totals *t)
{
	lsm_stats st;
	int l;

	if (lsm_get_stats(db, &st) != LSM_OK)
		return;
	for (l = 0; l < 7; l++)
		if (st.level_files[l] && l > t->deepest)
			t->deepest = l;
}

/* The watchdog: a hang must fail loudly, with the seed and the op. */
static volatile long wd_op = -1;
static volatile uint64_t wd_seed;
static volatile long wd_stamp;

static void *watchdog_main(void *arg)
{
	long limit = *(long *)arg, last = -2, still = 0;

	for (;;) {
		sleep(1);
		if (wd_stamp != last) {
			last = wd_stamp;
			still = 0;
		} else if (wd_op >= 0 && ++still >= limit) {
			fprintf(stderr, "    model_test: WATCHDOG: no progress for %ld s at seed %" PRIu64
			        " op %ld (rerun: LSM_MODEL_SEED=%" PRIu64 ")\n", limit, wd_seed,
			        wd_op, wd_seed);
			printf("FAIL model_random_ops_several_seeds (hang)\n0 passed, 1 failed\n");
			fflush(stdout);
			_exit(1);
		}
	}
	return NULL;
}

/* A write, retried once after a flush when the memtables are full (no
 * background thread to free one). */
#define WRITE_RETRY(db, expr, rcvar) do { \
	(rcvar) = (expr); \
	if ((rcvar) == LSM_FULL && !(db_bg)) { \
		int _frc = lsm_flush(db); \
		(rcvar) = _frc != LSM_OK ? _frc : (expr); \
	} \
} while (0)

/* Runs one seed; returns -1 when all went well, else the failing op
 * (fail_msg says what). */
static long run_seed(uint64_t seed, long ops, const cfg *c, totals *tot)
{
	const char *dir = test_tmpdir("model");
	static model m;
	static snap snaps[MAXSNAPS];
	static liter li;
	static char val[MAXVAL];
	lsm_options o = c->o;
	lsm_write_options wsync = {1};
	int nsnaps = 0, k, rc, db_bg = o.background_thread;
	lsm_db *db;
	lsm_batch *batch;
	test_rng rng;
	size_t vlen;
	long op, failed = -1;

	fail_msg[0] = 0;
	filter_on = c->filter;
	seen_removed = seen_changed = 0;
	wd_seed = seed;
	memset(tot, 0, sizeof *tot);
	test_rng_seed(&rng, seed);
	if ((rc = lsm_open(&o, dir, &db)) != LSM_OK || lsm_batch_create(&batch) != LSM_OK) {
		FAIL("open: %s", lsm_strerror(rc));
		return 0;
	}
	for (op = 0; op < ops; op++) {
		uint64_t r = test_rng_uniform(&rng, 1000);
		const lsm_write_options *wo = test_rng_uniform(&rng, 200) == 0 ? &wsync : NULL;
		int bad = 0;

		wd_op = op;
		wd_stamp++;
		k = (int)test_rng_uniform(&rng, NKEYS);
		if (r < 300) {
			random_value(&rng, val, &vlen);
			WRITE_RETRY(db, lsm_put(db, wo, kstr[k], klen_of[k], val, vlen), rc);
			if (rc != LSM_OK)
				bad = FAIL("put %s: %s", kname(k), lsm_strerror(rc));
			model_set(&m, k, val, vlen);
		} else if (r < 360) {
			WRITE_RETRY(db, lsm_delete(db, wo, kstr[k], klen_of[k]), rc);
			if (rc != LSM_OK)
				bad = FAIL("delete %s: %s", kname(k), lsm_strerror(rc));
			model_set(&m, k, NULL, 0);
		} else if (r < 375) {
			bound lo, hi;

			gen_range(&rng, &lo, &hi);
			WRITE_RETRY(db, lsm_delete_range(db, wo, lo.b, (size_t)lo.len, hi.b,
			                                 (size_t)hi.len), rc);
			if (rc != LSM_OK)
				bad = FAIL("delete_range: %s", lsm_strerror(rc));
			model_delete_range(&m, &lo, &hi);
			tot->rdels++;
		} else if (r < 455) {
			int i, n = 1 + (int)test_rng_uniform(&rng, 12);

			lsm_batch_clear(batch);
			for (i = 0; i < n; i++) {
				uint64_t t = test_rng_uniform(&rng, 10);

				k = (int)test_rng_uniform(&rng, NKEYS);
				if (t < 2) {
					lsm_batch_delete(batch, kstr[k], klen_of[k]);
					model_set(&m, k, NULL, 0);
				} else if (t < 3) {
					bound lo, hi;

					gen_range(&rng, &lo, &hi);
					lsm_batch_delete_range(batch, lo.b, (size_t)lo.len, hi.b, (size_t)hi.len);
					model_delete_range(&m, &lo, &hi);
					tot->rdels++;
				} else {
					random_value(&rng, val, &vlen);
					if (vlen > 500)
						vlen = 500;
					lsm_batch_put(batch, kstr[k], klen_of[k], val, vlen);
					model_set(&m, k, val, vlen);
				}
			}
			WRITE_RETRY(db, lsm_write(db, wo, batch), rc);
			if (rc != LSM_OK)
				bad = FAIL("batch of %d: %s", n, lsm_strerror(rc));
		} else if (r < 705) {
			bad = check_get(db, NULL, &m, k);
		} else if (r < 765) {
			if (nsnaps > 0) {
				snap *s = &snaps[test_rng_uniform(&rng, (uint64_t)nsnaps)];

				bad = check_get(db, s->s, &s->m, k);
			}
		} else if (r < 775) {
			/* new snapshot; the oldest goes when all are taken, after a
			 * last full check through it */
			if (nsnaps == MAXSNAPS) {
				bound none = {{0}, -1};

				bad = check_scan(db, snaps[0].s, &snaps[0].m, &none, &none);
				for (k = 0; k < 40 && !bad; k++)
					bad = check_get(db, snaps[0].s, &snaps[0].m,
					                (int)test_rng_uniform(&rng, NKEYS));
				if (bad)
					goto done_op;
				if (li.it && li.snap == snaps[0].s)
					liter_close(&li);
				nsnaps--;
				lsm_snapshot_release(db, snaps[0].s);
				model_free(&snaps[0].m);
				memmove(&snaps[0], &snaps[1], sizeof(snap) * (size_t)nsnaps);
				memset(&snaps[nsnaps], 0, sizeof(snap));
			}
			if ((rc = lsm_snapshot_create(db, &snaps[nsnaps].s)) != LSM_OK) {
				bad = FAIL("snapshot_create: %s", lsm_strerror(rc));
				goto done_op;
			}
			model_copy(&snaps[nsnaps].m, &m);
			nsnaps++;
			tot->snaps++;
		} else if (r < 779) {
			/* release a random snapshot after a full scan through it */
			if (nsnaps > 0) {
				int i = (int)test_rng_uniform(&rng, (uint64_t)nsnaps);
				bound none = {{0}, -1};

				bad = check_scan(db, snaps[i].s, &snaps[i].m, &none, &none);
				if (bad)
					goto done_op;
				if (li.it && li.snap == snaps[i].s)
					liter_close(&li);
				lsm_snapshot_release(db, snaps[i].s);
				model_free(&snaps[i].m);
				nsnaps--;
				memmove(&snaps[i], &snaps[i + 1], sizeof(snap) * (size_t)(nsnaps - i));
				memset(&snaps[nsnaps], 0, sizeof(snap));
			}
		} else if (r < 787) {
			bound lo, hi;
			snap *s = nsnaps && test_rng_uniform(&rng, 2)
			          ? &snaps[test_rng_uniform(&rng, (uint64_t)nsnaps)] : NULL;

			gen_iter_bounds(&rng, &lo, &hi);
			bad = check_scan(db, s ? s->s : NULL, s ? &s->m : &m, &lo, &hi);
			tot->scans++;
		} else if (r < 807) {
			snap *s = nsnaps && test_rng_uniform(&rng, 2)
			          ? &snaps[test_rng_uniform(&rng, (uint64_t)nsnaps)] : NULL;

			bad = check_seek(db, s ? s->s : NULL, s ? &s->m : &m, &rng);
		} else if (r < 857) {
			/* the long-lived iterator: create, or step it a little */
			if (li.it == NULL) {
				lsm_read_options ro;
				snap *s = nsnaps > 0 && test_rng_uniform(&rng, 3) == 0
				          ? &snaps[test_rng_uniform(&rng, (uint64_t)nsnaps)] : NULL;

				li.snap = s ? s->s : NULL;
				gen_iter_bounds(&rng, &li.lo, &li.hi);
				set_ro(&ro, li.snap, &li.lo, &li.hi);
				if ((rc = lsm_iter_create(db, &ro, &li.it)) != LSM_OK) {
					li.it = NULL;
					bad = FAIL("long iterator create: %s", lsm_strerror(rc));
					goto done_op;
				}
				model_copy(&li.m, s ? &s->m : &m);
				lsm_iter_seek_to_first(li.it);
				li.pos = next_rank(&li.m, 0, &li.lo, &li.hi, NULL);
				skip_vanished(li.it, &li.m, &li.pos, &li.lo, &li.hi);
				bad = check_entry(li.it, &li.m, li.pos, "long iterator first");
			} else {
				int i, n = 1 + (int)test_rng_uniform(&rng, 30);

				for (i = 0; i < n && !bad && li.pos < NKEYS; i++) {
					lsm_iter_next(li.it);
					li.pos = next_rank(&li.m, li.pos + 1, &li.lo, &li.hi, NULL);
					skip_vanished(li.it, &li.m, &li.pos, &li.lo, &li.hi);
					bad = check_entry(li.it, &li.m, li.pos, "long iterator");
					tot->liter_steps++;
				}
				if (!bad && (li.pos >= NKEYS || test_rng_uniform(&rng, 40) == 0))
					liter_close(&li);
			}
		} else if (r < 861) {
			if ((rc = lsm_flush(db)) != LSM_OK)
				bad = FAIL("lsm_flush: %s", lsm_strerror(rc));
			deepest_now(db, tot);
		} else if (r < 863) {
			bound lo, hi;
			uint64_t how = test_rng_uniform(&rng, 4);

			gen_range(&rng, &lo, &hi);
			/* [lo, hi], [NULL, hi], [lo, NULL] or everything */
			rc = lsm_compact_range(db, how & 1 ? NULL : lo.b, how & 1 ? 0 : (size_t)lo.len,
			                       how & 2 ? NULL : hi.b, how & 2 ? 0 : (size_t)hi.len);
			if (rc != LSM_OK)
				bad = FAIL("lsm_compact_range: %s", lsm_strerror(rc));
			deepest_now(db, tot);
		} else if (r < 865 && test_rng_uniform(&rng, 3) == 0) {
			/* a burst of writes: memtables fill faster than they flush,
			 * writers stall, L0 piles up (slowdown and stop triggers),
			 * and the long iterator's arenas are wanted back */
			int i, n = 200 + (int)test_rng_uniform(&rng, 1500);

			for (i = 0; i < n && !bad; i++) {
				k = (int)test_rng_uniform(&rng, NKEYS);
				vlen = 100 + (size_t)test_rng_uniform(&rng, 200);
				test_rng_fill(&rng, val, vlen);
				mark_value(&rng, val, vlen);
				WRITE_RETRY(db, lsm_put(db, NULL, kstr[k], klen_of[k], val, vlen), rc);
				if (rc != LSM_OK)
					bad = FAIL("burst put %d of %d (%s): %s", i, n, kname(k),
					           lsm_strerror(rc));
				model_set(&m, k, val, vlen);
			}
			tot->bursts++;
		} else if (r >= 865 && r < 867) {
			/* reopen: snapshots and iterators die with the handle */
			liter_close(&li);
			release_snaps(db, snaps, &nsnaps);
			add_stats(db, tot);
			vary_options(&o, &rng);
			db_bg = o.background_thread;
			if ((rc = lsm_close(db)) != LSM_OK)
				bad = FAIL("close: %s", lsm_strerror(rc));
			else if ((rc = lsm_open(&o, dir, &db)) != LSM_OK) {
				db = NULL;
				bad = FAIL("reopen: %s", lsm_strerror(rc));
			}
			tot->reopens++;
		}
done_op:
		if (bad) {
			failed = op;
			break;
		}
	}
	for (k = 0; k < NKEYS && failed < 0 && db; k++)
		if (check_get(db, NULL, &m, k))
			failed = ops;
	if (failed < 0 && db) {
		bound none = {{0}, -1};

		if (check_scan(db, NULL, &m, &none, &none))
			failed = ops;
	}
	wd_op = -1;
	liter_close(&li);
	if (db) {
		release_snaps(db, snaps, &nsnaps);
		add_stats(db, tot);
		lsm_close(db);
	}
	lsm_batch_destroy(batch);
	model_free(&m);
	return failed;
}

TEST(model_random_ops_several_seeds)
{
	long ops = env_long("LSM_MODEL_OPS", 100000);
	long seeds = env_long("LSM_MODEL_SEEDS", 9), s;
	long only = env_long("LSM_MODEL_SEED", 0);
	static long limit;
	pthread_t wd;
	int i;

	limit = env_long("LSM_MODEL_WATCHDOG", 120);
	CHECK(pthread_create(&wd, NULL, watchdog_main, &limit) == 0);
	pthread_detach(wd);

	for (i = 0; i < NKEYS; i++) {
		static char kb[MAXKEY];

		sorted_ids[i] = i;
		key_of(i, kb, &klen_of[i]);
		kstr[i] = malloc(klen_of[i] + 1);
		CHECK(kstr[i] != NULL);
		memcpy(kstr[i], kb, klen_of[i]);
	}
	/* key order: insertion sort on ids by their key strings */
	for (i = 1; i < NKEYS; i++) {
		int j = i, id = sorted_ids[i];

		while (j > 0 && cmp_bytes(kstr[sorted_ids[j - 1]], klen_of[sorted_ids[j - 1]],
		                          kstr[id], klen_of[id]) > 0) {
			sorted_ids[j] = sorted_ids[j - 1];
			j--;
		}
		sorted_ids[j] = id;
	}
	for (s = only ? only : 1; s <= (only ? only : seeds); s++) {
		cfg c = make_cfg((uint64_t)s);
		totals t;
		long failed = run_seed((uint64_t)s, ops, &c, &t);

		if (failed >= 0)
			print_cfg((uint64_t)s, &c);
		CHECK_MSG(failed < 0, "seed %ld (rerun: LSM_MODEL_SEED=%ld LSM_MODEL_OPS=%ld): "
		          "mismatch at op %ld: %s", s, s, ops, failed, fail_msg);
		printf("    seed %ld %-8s: %" PRIu64 " flushes, %" PRIu64 " compactions, deepest L%d, "
		       "%" PRIu64 " stalls, %" PRIu64 " slowdowns, %" PRIu64 " reopens, %" PRIu64
		       " range deletes, %" PRIu64 " snapshots, %" PRIu64 " long-iterator steps, %"
		       PRIu64 " bursts", s, c.kind, t.flushes, t.compactions, t.deepest, t.stalls,
		       t.slowdowns, t.reopens, t.rdels, t.snaps, t.liter_steps, t.bursts);
		if (c.filter)
			printf("; filter: %" PRIu64 " reads saw a removed value, %" PRIu64
			       " a changed one", seen_removed, seen_changed);
		printf("\n");
		if (strcmp(c.kind, "persist") == 0 && ops >= 20000) {
			CHECK_MSG(t.flushes >= 20, "seed %ld: only %" PRIu64 " flushes", s, t.flushes);
			CHECK_MSG(t.compactions >= 5, "seed %ld: only %" PRIu64 " compactions", s,
			          t.compactions);
			CHECK_MSG(t.deepest >= 2, "seed %ld: data never went below L%d", s, t.deepest);
		}
	}
}

/*
 * Regression (fixed in 709b14a): a thread holding an iterator calls
 * lsm_flush after enough writes that every other memtable slot is retired but pinned by
 * that iterator.  lsm_flush looped on lsm_db_switch_memtable (LSM_BUSY) and
 * lsm_flush_oldest (nothing immutable: LSM_OK) forever at 100% CPU.  Run
 * in a child so a hang becomes a failure after 4 s.
 */
static void flush_with_iterator_child(const char *dir)
{
	lsm_options o;
	lsm_db *db;
	lsm_iter *it;
	char k[32], v[100];
	int i;

	lsm_options_init(&o);
	o.memtable_size = 64 * 1024;
	o.max_memtables = 2;
	if (lsm_open(&o, dir, &db) != LSM_OK)
		_exit(2);
	memset(v, 'x', sizeof v);
	for (i = 0; i < 300; i++) {           /* some data in the first memtable */
		snprintf(k, sizeof k, "a%05d", i);
		if (lsm_put(db, NULL, k, strlen(k), v, sizeof v) != LSM_OK)
			_exit(3);
	}
	if (lsm_iter_create(db, NULL, &it) != LSM_OK)   /* pins it */
		_exit(4);
	lsm_iter_seek_to_first(it);
	if (lsm_flush(db) != LSM_OK)          /* first memtable: retired, pinned */
		_exit(5);
	for (i = 0; i < 100; i++) {           /* the other slot takes writes */
		snprintf(k, sizeof k, "b%05d", i);
		if (lsm_put(db, NULL, k, strlen(k), v, sizeof v) != LSM_OK)
			_exit(6);
	}
	if (lsm_flush(db) != LSM_OK)          /* hangs here */
		_exit(7);
	lsm_iter_destroy(it);
	_exit(lsm_close(db) == LSM_OK ? 0 : 8);
}

TEST(flush_with_open_iterator_does_not_hang)
{
	const char *dir = test_tmpdir("flushiter");
	int status = 0, waited;
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0)
		flush_with_iterator_child(dir);
	for (waited = 0; waited < 400; waited++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(10000);
	}
	if (waited == 400) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		CHECK_MSG(0, "lsm_flush did not return within 4 s while this thread's iterator "
		          "pins the retired memtable (the bug fixed in 709b14a: lsm_flush spinning "
		          "on lsm_db_switch_memtable == LSM_BUSY)");
	}
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "child failed: status %d (exit code = step that failed)", status);
}

/*
 * Regression (fixed in 709b14a): fileset.c lsm_db_new_file registered an
 * output file number as pending only while fewer than 8 were
 * (db->pending[8]); the rest went unprotected.  A compaction with more than 8 outputs (small
 * target_file_size) then had its .tmp files, or its finished .sst files
 * not yet in the version, deleted by the obsolete-file sweep a concurrent
 * flush runs: the compaction failed with LSM_NOTFOUND (rename of a vanished
 * .tmp), or the manifest listed tables that no longer existed (reads
 * failed with LSM_CORRUPTION, the data was gone).
 */
TEST(compaction_with_many_outputs_keeps_its_files)
{
	const char *dir = test_tmpdir("manyoutputs");
	lsm_options o;
	lsm_db *db;
	char k[32], v[200];
	int i, round, rc = LSM_OK, put_rc = LSM_OK, get_errors = 0, get_rc = LSM_OK, fail_round = -1;
	int open_rc;
	lsm_stats st;

	lsm_options_init(&o);
	o.memtable_size = 64 * 1024;
	o.max_bytes_for_level_base = 16 * 1024;
	o.level_size_multiplier = 2;
	o.target_file_size = 4096;
	o.l0_compaction_trigger = 1;
	CHECK_OK(lsm_open(&o, dir, &db));
	for (round = 0; round < 8 && put_rc == LSM_OK; round++)
		for (i = 0; i < 3000 && put_rc == LSM_OK; i++) {
			snprintf(k, sizeof k, "key%06d", (i * 7919 + round) % 3000);
			snprintf(v, sizeof v, "%d-%d-%0120d", round, i, i);
			put_rc = lsm_put(db, NULL, k, strlen(k), v, strlen(v));
			if (put_rc != LSM_OK)
				fail_round = round;
		}
	CHECK_OK(lsm_get_stats(db, &st));
	for (i = 0; i < 3000; i++) {
		void *val;
		size_t n;

		snprintf(k, sizeof k, "key%06d", i);
		rc = lsm_get(db, NULL, k, strlen(k), &val, &n);
		if (rc != LSM_OK) {
			get_errors++;
			get_rc = rc;
		}
		lsm_free(val);
	}
	lsm_close(db);
	open_rc = lsm_open(&o, dir, &db);
	if (open_rc == LSM_OK)
		lsm_close(db);
	CHECK_MSG(put_rc == LSM_OK && get_errors == 0 && open_rc == LSM_OK,
	          "put: %s (round %d; a background compaction lost one of its outputs), "
	          "%d of 3000 gets failed (last: %s: the version lists deleted tables), "
	          "reopen: %s; %" PRIu64 " compactions", lsm_strerror(put_rc), fail_round,
	          get_errors, lsm_strerror(get_rc), lsm_strerror(open_rc), st.compactions);
	CHECK(st.compactions > 0);
}

/*
 * Regression (fixed in 709b14a): recovery that needs more memtables than
 * the new open has (the database was written with more or larger
 * memtables) flushes the oldest one from inside the replay (recover.c
 * recovery_switch -> lsm_flush_oldest -> flush_slot -> wait_published),
 * but visible_seq was only set after the whole replay, so wait_published
 * slept forever and lsm_open never returned.  Run in a child so a hang
 * becomes a failure.
 */
static void shrink_reopen_child(const char *dir, int memtables, size_t memtable_size)
{
	lsm_options o;
	lsm_db *db;
	char k[32], v[300];
	int i, rc = LSM_OK;

	lsm_options_init(&o);
	o.memtable_size = 128 * 1024;
	o.max_memtables = 4;
	o.background_thread = 0;             /* nothing flushes: the WAL keeps it all */
	if (lsm_open(&o, dir, &db) != LSM_OK)
		_exit(2);
	memset(v, 'v', sizeof v);
	for (i = 0; rc == LSM_OK; i++) {
		snprintf(k, sizeof k, "key%06d", i);
		rc = lsm_put(db, NULL, k, strlen(k), v, sizeof v);
	}
	if (rc != LSM_FULL || lsm_close(db) != LSM_OK)   /* four full memtables */
		_exit(3);
	o.max_memtables = memtables;
	o.memtable_size = memtable_size;
	if (lsm_open(&o, dir, &db) != LSM_OK)            /* hangs here */
		_exit(4);
	for (int j = 0; j < i - 1; j += 97) {
		void *val;
		size_t n;

		snprintf(k, sizeof k, "key%06d", j);
		if (lsm_get(db, NULL, k, strlen(k), &val, &n) != LSM_OK)
			_exit(5);
		lsm_free(val);
	}
	_exit(lsm_close(db) == LSM_OK ? 0 : 6);
}

TEST(reopen_with_fewer_or_smaller_memtables_recovers)
{
	static const struct { int memtables; size_t size; } cases[] = {
		{4, 128 * 1024}, {2, 128 * 1024}, {4, 64 * 1024},
	};
	char msg[600] = "";
	size_t used = 0;

	for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const char *dir = test_tmpdir("shrink");
		int status = 0, waited;
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0)
			shrink_reopen_child(dir, cases[c].memtables, cases[c].size);
		for (waited = 0; waited < 400; waited++) {
			if (waitpid(pid, &status, WNOHANG) == pid)
				break;
			usleep(10000);
		}
		if (waited == 400) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			used += (size_t)snprintf(msg + used, sizeof msg - used,
			                         " [%d x %zu KiB: lsm_open hung]",
			                         cases[c].memtables, cases[c].size >> 10);
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			used += (size_t)snprintf(msg + used, sizeof msg - used,
			                         " [%d x %zu KiB: child status %d]",
			                         cases[c].memtables, cases[c].size >> 10, status);
		}
	}
	CHECK_MSG(used == 0, "written with 4 x 128 KiB memtables, reopened with:%s (the bug fixed "
	          "in 709b14a? recovery's flush waiting in flush.c wait_published for "
	          "visible_seq, which recover.c set only after the replay; exit code = failed "
	          "step)", msg);
}

/*
 * ENGINE BUG repro (found by the random test, seed 17 with 300000 ops):
 * iter.c lsm_iter_release_retired re-opens this thread's iterators that
 * pin retired memtables (a write or lsm_flush that stalls calls it) and
 * puts each back "on the same entry" by seeking to its key with
 * find_visible(it, 0).  When the compaction filter has meanwhile removed
 * that entry (its put became a tombstone, which the iterator's own
 * snapshot sees), the seek lands on the next key instead, silently; the
 * caller's next lsm_iter_next then skips that key.
 */
static int x_filter(void *arg, int level, const void *key, size_t klen, const void *val,
                    size_t vlen, uint64_t seq, void **new_val, size_t *new_vlen)
{
	(void)arg; (void)level; (void)key; (void)klen; (void)seq; (void)new_val; (void)new_vlen;
	return vlen > 0 && *(const char *)val == 'X' ? LSM_FILTER_REMOVE : LSM_FILTER_KEEP;
}

TEST(iterator_reopened_by_a_stall_skips_no_key)
{
	const char *dir = test_tmpdir("reopenskip");
	lsm_options o;
	lsm_db *db;
	lsm_iter *it;
	char k[16];
	const char *cur;
	size_t kl;
	int i;

	lsm_options_init(&o);
	o.memtable_size = 64 * 1024;
	o.max_memtables = 2;
	o.background_thread = 0;            /* the test flushes and compacts */
	o.compaction_filter = x_filter;
	CHECK_OK(lsm_open(&o, dir, &db));
	for (i = 0; i < 100; i++) {
		snprintf(k, sizeof k, "k%02d", i);
		CHECK_OK(lsm_put(db, NULL, k, 3, i == 50 ? "Xgone" : "kept", i == 50 ? 5 : 4));
	}
	CHECK_OK(lsm_iter_create(db, NULL, &it));   /* pins the memtable */
	lsm_iter_seek(it, "k50", 3);
	CHECK(lsm_iter_valid(it));
	cur = lsm_iter_key(it, &kl);
	CHECK_MEM(cur, kl, "k50", 3);
	CHECK_OK(lsm_flush(db));            /* that memtable: retired, still pinned */
	CHECK_OK(lsm_compact_range(db, NULL, 0, NULL, 0));   /* the filter removes k50 */
	CHECK_OK(lsm_put(db, NULL, "z", 1, "v", 1));
	CHECK_OK(lsm_flush(db));            /* no free slot: stalls, re-opens the iterator */
	{
		char after_stall[8] = "-", after_next[8] = "-";
		size_t nl;
		const char *p;

		if (lsm_iter_valid(it)) {
			p = lsm_iter_key(it, &nl);
			snprintf(after_stall, sizeof after_stall, "%.*s", (int)(nl < 7 ? nl : 7), p);
		}
		lsm_iter_next(it);
		if (lsm_iter_valid(it)) {
			p = lsm_iter_key(it, &nl);
			snprintf(after_next, sizeof after_next, "%.*s", (int)(nl < 7 ? nl : 7), p);
		}
		lsm_iter_destroy(it);
		CHECK_OK(lsm_close(db));
		CHECK_MSG(strcmp(after_next, "k51") == 0, "the iterator was on k50 (which the filter "
		          "then removed); after the stall's re-open it is on %s, after lsm_iter_next "
		          "on %s: k51 was skipped", after_stall, after_next);
	}
}
