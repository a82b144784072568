/*
 * model_test.c — randomized operations against an in-memory model.
 *
 * Each seed runs MODEL_OPS operations (puts, deletes, batches, gets,
 * snapshot reads, bounded iterator scans, and reopens that recover from the
 * WAL) on the engine and on a plain array of values, and checks after every
 * read that both agree.  LSM_MODEL_OPS and LSM_MODEL_SEEDS in the
 * environment scale it up for long runs outside CI.
 */
#include "lsm.h"
#include "testutil.h"

#define NKEYS     1500
#define MAXSNAPS  4

typedef struct model {
	char *val[NKEYS];        /* NULL: absent */
	size_t len[NKEYS];
} model;

typedef struct snap {
	const lsm_snapshot *s;
	model m;
} snap;

static void key_of(int k, char *buf, size_t *len)
{
	/* varied lengths, one shared prefix: exercises the comparator */
	*len = (size_t)sprintf(buf, "k%0*d", 3 + k % 5, k);
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

static void random_value(test_rng *rng, char *buf, size_t *n)
{
	*n = (size_t)test_rng_uniform(rng, 120);
	test_rng_fill(rng, buf, *n);
}

/* 0 when the engine's value for k at snap equals the model's. */
static int check_get(lsm_db *db, const lsm_snapshot *s, const model *m, int k)
{
	lsm_read_options ro = {0};
	char key[16];
	size_t klen, n;
	void *v;
	int rc, bad;

	ro.snapshot = s;
	key_of(k, key, &klen);
	rc = lsm_get(db, &ro, key, klen, &v, &n);
	if (m->val[k] == NULL)
		return rc != LSM_NOTFOUND;
	bad = rc != LSM_OK || n != m->len[k] || memcmp(v, m->val[k], n) != 0;
	lsm_free(v);
	return bad;
}

static int cmp_keys(const void *a, const void *b)
{
	char ka[16], kb[16];
	size_t la, lb;
	int c;

	key_of(*(const int *)a, ka, &la);
	key_of(*(const int *)b, kb, &lb);
	c = memcmp(ka, kb, la < lb ? la : lb);
	return c ? c : (la < lb ? -1 : la > lb);
}

static int sorted_ids[NKEYS];

/* 0 when a bounded scan equals the model's keys in [lo, hi) in order. */
static int check_scan(lsm_db *db, const lsm_snapshot *s, const model *m, test_rng *rng)
{
	lsm_read_options ro = {0};
	char lo[16], hi[16];
	size_t lol, hil, kl, vl;
	int a = (int)test_rng_uniform(rng, NKEYS), b = (int)test_rng_uniform(rng, NKEYS);
	int i, bad = 0, use_bounds = (int)test_rng_uniform(rng, 3);
	lsm_iter *it;

	if (a > b) { int t = a; a = b; b = t; }
	key_of(sorted_ids[a], lo, &lol);
	key_of(sorted_ids[b], hi, &hil);
	ro.snapshot = s;
	if (use_bounds) {
		ro.lower_bound = lo; ro.lower_bound_len = lol;
		ro.upper_bound = hi; ro.upper_bound_len = hil;
	} else
		a = 0, b = NKEYS;
	if (lsm_iter_create(db, &ro, &it) != LSM_OK)
		return 1;
	lsm_iter_seek_to_first(it);
	for (i = a; i < b && !bad; i++) {
		int k = sorted_ids[i];
		char key[16];
		size_t klen;
		const void *key2, *v;

		if (m->val[k] == NULL)
			continue;
		key_of(k, key, &klen);
		if (!lsm_iter_valid(it))
			return lsm_iter_destroy(it), 1;
		key2 = lsm_iter_key(it, &kl);
		v = lsm_iter_value(it, &vl);
		bad = kl != klen || memcmp(key2, key, kl) != 0 || vl != m->len[k] ||
		      memcmp(v, m->val[k], vl) != 0;
		lsm_iter_next(it);
	}
	if (!bad && lsm_iter_valid(it))
		bad = 1;
	if (lsm_iter_status(it) != LSM_OK)
		bad = 1;
	lsm_iter_destroy(it);
	return bad;
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);

	return v ? atol(v) : dflt;
}

static void release_snaps(lsm_db *db, snap *snaps, int *nsnaps)
{
	while (*nsnaps > 0) {
		(*nsnaps)--;
		lsm_snapshot_release(db, snaps[*nsnaps].s);
		model_free(&snaps[*nsnaps].m);
	}
}

static void run_seed(uint64_t seed, long ops, int *failed_op)
{
	const char *dir = test_tmpdir("model");
	static model m;
	static snap snaps[MAXSNAPS];
	int nsnaps = 0, k;
	lsm_options o;
	lsm_db *db;
	lsm_batch *batch;
	test_rng rng;
	char key[16], val[128];
	size_t klen, vlen;
	long op;

	*failed_op = -1;
	test_rng_seed(&rng, seed);
	lsm_options_init(&o);
	o.memtable_size = 128u << 20;
	o.wal_segment_size = 256 * 1024;
	if (lsm_open(&o, dir, &db) != LSM_OK || lsm_batch_create(&batch) != LSM_OK) {
		*failed_op = 0;
		return;
	}
	for (op = 0; op < ops; op++) {
		uint64_t r = test_rng_uniform(&rng, 1000);
		int bad = 0;

		k = (int)test_rng_uniform(&rng, NKEYS);
		key_of(k, key, &klen);
		if (r < 350) {
			random_value(&rng, val, &vlen);
			bad = lsm_put(db, NULL, key, klen, val, vlen) != LSM_OK;
			model_set(&m, k, val, vlen);
		} else if (r < 450) {
			bad = lsm_delete(db, NULL, key, klen) != LSM_OK;
			model_set(&m, k, NULL, 0);
		} else if (r < 550) {
			int i, n = 1 + (int)test_rng_uniform(&rng, 12);

			lsm_batch_clear(batch);
			for (i = 0; i < n; i++) {
				k = (int)test_rng_uniform(&rng, NKEYS);
				key_of(k, key, &klen);
				if (test_rng_uniform(&rng, 4) == 0) {
					lsm_batch_delete(batch, key, klen);
					model_set(&m, k, NULL, 0);
				} else {
					random_value(&rng, val, &vlen);
					lsm_batch_put(batch, key, klen, val, vlen);
					model_set(&m, k, val, vlen);
				}
			}
			bad = lsm_write(db, NULL, batch) != LSM_OK;
		} else if (r < 850) {
			bad = check_get(db, NULL, &m, k);
		} else if (r < 920) {
			if (nsnaps > 0) {
				snap *s = &snaps[test_rng_uniform(&rng, (uint64_t)nsnaps)];

				bad = check_get(db, s->s, &s->m, k);
			}
		} else if (r < 940) {
			if (nsnaps == MAXSNAPS) {
				nsnaps--;
				lsm_snapshot_release(db, snaps[0].s);
				model_free(&snaps[0].m);
				memmove(&snaps[0], &snaps[1], sizeof(snap) * (size_t)nsnaps);
				memset(&snaps[nsnaps], 0, sizeof(snap));
			}
			bad = lsm_snapshot_create(db, &snaps[nsnaps].s) != LSM_OK;
			model_copy(&snaps[nsnaps].m, &m);
			nsnaps++;
		} else if (r < 943) {
			snap *s = nsnaps && test_rng_uniform(&rng, 2) ? &snaps[nsnaps - 1] : NULL;

			bad = check_scan(db, s ? s->s : NULL, s ? &s->m : &m, &rng);
		} else if (r < 944) {
			/* reopen: snapshots die with the handle */
			release_snaps(db, snaps, &nsnaps);
			bad = lsm_close(db) != LSM_OK || lsm_open(&o, dir, &db) != LSM_OK;
		}
		if (bad) {
			*failed_op = (int)op;
			break;
		}
	}
	for (k = 0; k < NKEYS && *failed_op < 0; k++)
		if (check_get(db, NULL, &m, k))
			*failed_op = (int)ops;
	release_snaps(db, snaps, &nsnaps);
	lsm_batch_destroy(batch);
	lsm_close(db);
	model_free(&m);
}

TEST(model_random_ops_several_seeds)
{
	long ops = env_long("LSM_MODEL_OPS", 120000);
	long seeds = env_long("LSM_MODEL_SEEDS", 3), s;
	int failed_op, i;

	for (i = 0; i < NKEYS; i++)
		sorted_ids[i] = i;
	qsort(sorted_ids, NKEYS, sizeof sorted_ids[0], cmp_keys);
	for (s = 1; s <= seeds; s++) {
		run_seed((uint64_t)s, ops, &failed_op);
		CHECK_MSG(failed_op < 0, "seed %ld: mismatch at op %d", s, failed_op);
	}
}
