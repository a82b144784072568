/*
 * skiplist_test.c — the offset-addressed arena and the lock-free skip list.
 *
 * The concurrent tests check what a reader may rely on while writers race:
 * every node it reaches is complete (its value is a function of its key and
 * sequence, which a half-built node would fail), iteration is always sorted,
 * and a node once seen stays reachable.  At the end no insert may be lost.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "skiplist.h"
#include "testutil.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t key_hash(const uint8_t *k, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 0x100000001b3ull;
	return h;
}

/* Value contents and length are a function of (key, seq), so a reader can
 * tell a complete node from a half-built one. */
static size_t value_len(uint64_t seq) { return (size_t)(seq % 61); }

static void value_fill(uint8_t *v, const uint8_t *k, size_t klen, uint64_t seq)
{
	uint64_t h = mix64(key_hash(k, klen) ^ (seq * 0x9e3779b97f4a7c15ull));

	for (size_t i = 0, n = value_len(seq); i < n; i++)
		v[i] = (uint8_t)((h >> (8 * (i % 8))) + i);
}

static int node_is_complete(const lsm_sl_node *n)
{
	uint8_t v[64];
	uint64_t seq = n->trailer >> 8;

	if (n->height < 1 || n->height != lsm_sl_height_for(seq))
		return 0;
	if ((n->trailer & 0xff) != (seq & 1))
		return 0;
	if (n->vlen != value_len(seq) || n->klen > 32)
		return 0;
	value_fill(v, lsm_sl_node_key(n), n->klen, seq);
	return memcmp(v, lsm_sl_node_value(n), n->vlen) == 0;
}

/* Allocates, builds and links one node; 0 when the arena is full. */
static uint32_t put(lsm_arena *a, const void *key, size_t klen, uint64_t seq)
{
	uint8_t v[64];
	int h = lsm_sl_height_for(seq);
	uint32_t off = lsm_arena_alloc(a, lsm_sl_node_size(klen, value_len(seq), h));

	if (off == 0)
		return 0;
	value_fill(v, key, klen, seq);
	lsm_sl_node_init(a, off, key, klen, (seq << 8) | (seq & 1), v,
	                 value_len(seq), h);
	lsm_sl_insert(a, off);
	return off;
}

static int node_cmp(const lsm_arena *a, uint32_t x, uint32_t y)
{
	const lsm_sl_node *p = lsm_sl_node_at(a, x), *q = lsm_sl_node_at(a, y);

	return lsm_ikey_compare(lsm_sl_node_key(p), p->klen, p->trailer,
	                        lsm_sl_node_key(q), q->klen, q->trailer);
}

/*
 * Checks the quiescent structure: every level strictly sorted, only nodes
 * tall enough on each level, each level a sub-list of the one below, and
 * level 0 holding `expect` nodes.  Returns a description of the first fault,
 * or NULL.
 */
static const char *check_structure(const lsm_arena *a, uint64_t expect)
{
	const lsm_sl_node *head = lsm_sl_node_at(a, a->head);
	uint64_t count[LSM_SL_MAX_HEIGHT] = {0};

	for (int lvl = 0; lvl < LSM_SL_MAX_HEIGHT; lvl++) {
		uint32_t prev = 0, below = lvl ? head->next[lvl - 1] : 0;

		for (uint32_t x = head->next[lvl]; x; x = lsm_sl_node_at(a, x)->next[lvl]) {
			if (lsm_sl_node_at(a, x)->height <= lvl)
				return "node linked above its height";
			if (prev && node_cmp(a, prev, x) >= 0)
				return "level not strictly sorted";
			if (lvl) {
				/* x must appear on the level below, after `below`. */
				while (below && below != x)
					below = lsm_sl_node_at(a, below)->next[lvl - 1];
				if (below != x)
					return "level is not a sub-list of the level below";
			}
			prev = x;
			count[lvl]++;
		}
		if (lvl && count[lvl] > count[lvl - 1])
			return "upper level longer than lower";
	}
	if (count[0] != expect)
		return "level 0 has the wrong number of nodes";
	if (atomic_load(&((lsm_arena *)a)->entries) != expect)
		return "entries counter wrong";
	return NULL;
}

/* ------------------------------------------------------------------ arena */

TEST(arena_init_rejects_bad_args)
{
	uint64_t buf[1024];   /* 8 KiB, 8-aligned */
	lsm_arena *a = (lsm_arena *)buf;

	CHECK_EQ_INT(lsm_arena_init(NULL, 8192), LSM_INVALID);
	CHECK_EQ_INT(lsm_arena_init(buf, 4095), LSM_INVALID);
	CHECK_EQ_INT(lsm_arena_init(buf, 0), LSM_INVALID);
	CHECK_EQ_INT(lsm_arena_init((char *)buf + 4, 4096), LSM_INVALID);
	CHECK_EQ_INT(lsm_arena_init((char *)buf + 1, 4096), LSM_INVALID);
	if (sizeof(size_t) > 4)
		CHECK_EQ_INT(lsm_arena_init(buf, (size_t)UINT32_MAX + 1), LSM_INVALID);

	CHECK_OK(lsm_arena_init(buf, 4096));
	CHECK_EQ_INT(a->size, 4096);
	CHECK(a->head != 0);
	CHECK_EQ_INT(a->head % 8, 0);
	CHECK_EQ_INT(lsm_arena_used(a) % 8, 0);
	CHECK(lsm_arena_used(a) >= a->head +
	      lsm_sl_node_size(0, 0, LSM_SL_MAX_HEIGHT));
	CHECK_EQ_INT(lsm_sl_node_at(a, a->head)->height, LSM_SL_MAX_HEIGHT);
	CHECK_EQ_U64(atomic_load(&a->entries), 0);
	CHECK_EQ_INT(lsm_sl_first(a), 0);
	CHECK_EQ_INT(lsm_sl_seek(a, "", 0, UINT64_MAX), 0);
	CHECK_EQ_INT(lsm_sl_seek(a, "zz", 2, 0), 0);

	/* A ragged size is usable; the tail is dropped so offsets stay
	 * aligned. */
	CHECK_OK(lsm_arena_init(buf, 8191));
	CHECK_EQ_INT(a->size, 8184);
}

TEST(arena_alloc_alignment_and_limits)
{
	size_t size = 64 * 1024;
	uint64_t *buf = malloc(size);
	lsm_arena *a = (lsm_arena *)buf;
	test_rng r;
	uint32_t last = 0;

	CHECK(buf != NULL);
	CHECK_OK(lsm_arena_init(buf, size));
	test_rng_seed(&r, 1);
	CHECK_EQ_INT(lsm_arena_alloc(a, size + 1), 0);
	CHECK_EQ_INT(lsm_arena_alloc(a, SIZE_MAX), 0);
	CHECK_EQ_INT(lsm_arena_alloc(a, SIZE_MAX - 3), 0);
	CHECK_EQ_INT(lsm_arena_alloc(a, (size_t)UINT32_MAX), 0);

	for (;;) {
		size_t n = 1 + test_rng_uniform(&r, 300);
		size_t before = lsm_arena_used(a);
		uint32_t off = lsm_arena_alloc(a, n);

		if (off == 0) {
			/* Refused only when it really does not fit, and without
			 * consuming anything. */
			CHECK(before + ((n + 7) & ~(size_t)7) > size);
			CHECK_EQ_INT(lsm_arena_used(a), before);
			break;
		}
		CHECK_EQ_INT(off % 8, 0);
		CHECK_EQ_INT(off, before);
		CHECK(off > last);
		CHECK_EQ_INT(lsm_arena_used(a), before + ((n + 7) & ~(size_t)7));
		CHECK(lsm_arena_used(a) <= size);
		memset(lsm_arena_ptr(a, off), 0xab, n);   /* ASan: in bounds */
		last = off;
	}
	/* Whatever is left is still handed out exactly, then nothing. */
	size_t rest = size - lsm_arena_used(a);
	if (rest) {
		uint32_t off = lsm_arena_alloc(a, rest);
		CHECK(off != 0);
		memset(lsm_arena_ptr(a, off), 0xcd, rest);
	}
	CHECK_EQ_INT(lsm_arena_used(a), size);
	CHECK_EQ_INT(lsm_arena_alloc(a, 1), 0);
	CHECK_EQ_INT(lsm_arena_used(a), size);
	free(buf);
}

struct alloc_arg {
	lsm_arena *a;
	uint64_t seed;
	uint32_t off[20000];
	uint32_t len[20000];
	int n;
};

static void *alloc_thread(void *p)
{
	struct alloc_arg *arg = p;
	test_rng r;

	test_rng_seed(&r, arg->seed);
	while (arg->n < 20000) {
		uint32_t len = 1 + (uint32_t)test_rng_uniform(&r, 200);
		uint32_t off = lsm_arena_alloc(arg->a, len);

		if (off == 0)
			break;
		arg->off[arg->n] = off;
		arg->len[arg->n++] = len;
	}
	return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

TEST(arena_alloc_concurrent_never_overlaps)
{
	enum { T = 4 };
	size_t size = 1 << 20;
	uint64_t *buf = malloc(size);
	lsm_arena *a = (lsm_arena *)buf;
	struct alloc_arg *args = calloc(T, sizeof *args);
	pthread_t th[T];
	uint64_t *spans, total = 0;
	size_t base, n = 0;

	CHECK(buf != NULL && args != NULL);
	CHECK_OK(lsm_arena_init(buf, size));
	base = lsm_arena_used(a);
	for (int t = 0; t < T; t++) {
		args[t].a = a;
		args[t].seed = 100 + t;
		CHECK(pthread_create(&th[t], NULL, alloc_thread, &args[t]) == 0);
	}
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);

	CHECK(lsm_arena_used(a) <= size);
	/* Every thread stopped on a refusal, so the arena is nearly full. */
	CHECK(size - lsm_arena_used(a) < 200);
	for (int t = 0; t < T; t++)
		n += (size_t)args[t].n;
	spans = malloc(n * sizeof *spans);
	CHECK(spans != NULL);
	n = 0;
	for (int t = 0; t < T; t++)
		for (int i = 0; i < args[t].n; i++) {
			uint64_t len = (args[t].len[i] + 7) & ~7u;
			spans[n++] = (uint64_t)args[t].off[i] << 32 | len;
			total += len;
		}
	CHECK_EQ_U64(total, lsm_arena_used(a) - base);
	qsort(spans, n, sizeof *spans, cmp_u64);
	for (size_t i = 0; i < n; i++) {
		uint64_t off = spans[i] >> 32, len = spans[i] & 0xffffffff;

		CHECK_EQ_INT(off % 8, 0);
		CHECK(off >= base && off + len <= size);
		if (i + 1 < n)
			CHECK_MSG(off + len <= spans[i + 1] >> 32, "overlap at %llu",
			          (unsigned long long)off);
	}
	free(spans);
	free(args);
	free(buf);
}

/* ----------------------------------------------------------------- nodes */

TEST(height_distribution)
{
	enum { N = 1 << 20 };
	uint64_t at_least[LSM_SL_MAX_HEIGHT + 2] = {0};
	uint64_t both_tall = 0;
	int prev_h = 1;

	for (uint64_t s = 0; s < N; s++) {
		int h = lsm_sl_height_for(s);

		CHECK(h >= 1 && h <= LSM_SL_MAX_HEIGHT);
		CHECK_EQ_INT(h, lsm_sl_height_for(s));   /* deterministic */
		for (int k = 1; k <= h; k++)
			at_least[k]++;
		if (h > 1 && prev_h > 1)
			both_tall++;
		prev_h = h;
	}
	/* P(h >= k) = 2^-(B(k-1)); allow ~6 sigma plus 2%. */
	for (int k = 2; k <= 16 / LSM_SL_BRANCH_BITS; k++) {
		double expect = (double)N / (double)(1ull << (LSM_SL_BRANCH_BITS * (k - 1)));
		double diff = (double)at_least[k] - expect;
		double sigma = 1;

		while (sigma * sigma < expect)
			sigma += 1;
		if (diff < 0)
			diff = -diff;
		CHECK_MSG(diff <= 6 * sigma + 0.02 * expect,
		          "P(h >= %d): %llu nodes, expected %.0f", k,
		          (unsigned long long)at_least[k], expect);
	}
	CHECK(at_least[16 / LSM_SL_BRANCH_BITS + 1] > 0);   /* expected 16 */
	/* Consecutive sequences must not be correlated: P(both > 1) = P(>1)^2. */
	uint64_t pair = N >> (2 * LSM_SL_BRANCH_BITS);
	CHECK(both_tall > pair - pair / 10 && both_tall < pair + pair / 10);
	/* Large and strided sequences still spread. */
	uint64_t tall = 0;
	for (uint64_t s = 0; s < 65536; s++)
		tall += lsm_sl_height_for((s << 40) | 12345) > 1;
	uint64_t want = 65536 >> LSM_SL_BRANCH_BITS;
	CHECK(tall > want - want / 10 && tall < want + want / 10);
}

TEST(node_layout)
{
	uint64_t buf[1024];
	lsm_arena *a = (lsm_arena *)buf;
	uint32_t off;
	const lsm_sl_node *n;

	CHECK_OK(lsm_arena_init(buf, sizeof buf));
	for (int h = 1; h <= LSM_SL_MAX_HEIGHT; h++)
		for (size_t k = 0; k < 20; k++) {
			size_t s = lsm_sl_node_size(k, 3, h);

			CHECK_EQ_INT(s % 8, 0);
			CHECK(s >= offsetof(lsm_sl_node, next) + 4 * (size_t)h + k + 3);
			CHECK(s < offsetof(lsm_sl_node, next) + 4 * (size_t)h + k + 3 + 8);
		}
	off = lsm_arena_alloc(a, lsm_sl_node_size(5, 7, 3));
	CHECK(off != 0);
	memset(lsm_arena_ptr(a, off), 0xee, lsm_sl_node_size(5, 7, 3));
	lsm_sl_node_init(a, off, "hello", 5, 0x1234501, "world!!", 7, 3);
	n = lsm_sl_node_at(a, off);
	CHECK_EQ_U64(n->trailer, 0x1234501);
	CHECK_EQ_INT(n->klen, 5);
	CHECK_EQ_INT(n->vlen, 7);
	CHECK_EQ_INT(n->height, 3);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(n->next[i], 0);
	CHECK_MEM(lsm_sl_node_key(n), 5, "hello", 5);
	CHECK_MEM(lsm_sl_node_value(n), 7, "world!!", 7);
	/* Empty key and value with NULL pointers are fine. */
	off = lsm_arena_alloc(a, lsm_sl_node_size(0, 0, 1));
	lsm_sl_node_init(a, off, NULL, 0, 7, NULL, 0, 1);
	lsm_sl_insert(a, off);
	CHECK_EQ_INT(lsm_sl_first(a), off);
	CHECK_EQ_INT(lsm_sl_seek(a, NULL, 0, UINT64_MAX), off);
	CHECK_EQ_INT(lsm_sl_seek(a, NULL, 0, 7), off);
	CHECK_EQ_INT(lsm_sl_seek(a, NULL, 0, 6), 0);
	CHECK_EQ_INT(lsm_sl_next(a, off), 0);
}

static int sgn(int x) { return (x > 0) - (x < 0); }

TEST(ikey_compare_order)
{
	/* (a, b, expected sign of compare(a, b)) */
	static const struct { const char *ak; size_t al; uint64_t at;
	                      const char *bk; size_t bl; uint64_t bt; int want; } c[] = {
		{"a", 1, 5, "a", 1, 5, 0},
		{"a", 1, 5, "b", 1, 5, -1},
		{"b", 1, 5, "a", 1, 5, 1},
		{"a", 1, 9, "b", 1, 1, -1},       /* user key before trailer */
		{"ab", 2, 1, "b", 1, 9, -1},
		{"a", 1, 1, "ab", 2, 9, -1},      /* prefix: shorter first */
		{"ab", 2, 9, "a", 1, 1, 1},
		{"", 0, 1, "a", 1, 9, -1},        /* empty key first */
		{"", 0, 9, "", 0, 1, -1},         /* newer first */
		{"k", 1, (7 << 8) | 1, "k", 1, (7 << 8) | 0, -1},
		{"k", 1, 3 << 8, "k", 1, 4 << 8, 1},
		{"k", 1, UINT64_MAX, "k", 1, 0, -1},
		{"\x80", 1, 1, "\x7f", 1, 1, 1},  /* bytes are unsigned */
		{"\xff", 1, 1, "\x00\xff", 2, 1, 1},
		{"a\0", 2, 1, "a", 1, 1, 1},      /* NUL is a byte, not an end */
		{"a\0b", 3, 1, "a\0c", 3, 1, -1},
	};

	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int got = lsm_ikey_compare(c[i].ak, c[i].al, c[i].at,
		                           c[i].bk, c[i].bl, c[i].bt);
		int rev = lsm_ikey_compare(c[i].bk, c[i].bl, c[i].bt,
		                           c[i].ak, c[i].al, c[i].at);

		CHECK_MSG(sgn(got) == c[i].want, "case %zu: got %d", i, got);
		CHECK_MSG(sgn(rev) == -c[i].want, "case %zu reversed: got %d", i, rev);
	}
	CHECK_EQ_INT(lsm_ikey_compare(NULL, 0, 1, NULL, 0, 1), 0);
}

/* --------------------------------------------------------- single thread */

static const lsm_arena *sort_arena;

static int cmp_ref_off(const void *x, const void *y)
{
	return node_cmp(sort_arena, *(const uint32_t *)x, *(const uint32_t *)y);
}

/* Index of the first of sorted[0..n) that is >= (key, tr), or n. */
static size_t lower_bound(const lsm_arena *a, const uint32_t *sorted, size_t n,
                          const void *key, size_t klen, uint64_t tr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const lsm_sl_node *m = lsm_sl_node_at(a, sorted[mid]);

		if (lsm_ikey_compare(lsm_sl_node_key(m), m->klen, m->trailer,
		                     key, klen, tr) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Random keys over a tiny alphabet, so equal keys, prefixes, NULs and 0xff
 * bytes all occur often. */
static size_t random_key(test_rng *r, uint8_t *k)
{
	static const uint8_t alpha[] = {'a', 'b', 0, 0xff};
	size_t n = (size_t)test_rng_uniform(r, 9);

	for (size_t i = 0; i < n; i++)
		k[i] = alpha[test_rng_uniform(r, sizeof alpha)];
	return n;
}

/* Checks iteration against the sorted reference and seeks against a
 * binary search over it. */
static const char *check_against_ref(const lsm_arena *a, uint32_t *sorted,
                                     size_t n, test_rng *r, int seeks)
{
	size_t i = 0;
	uint8_t k[16];

	sort_arena = a;
	qsort(sorted, n, sizeof *sorted, cmp_ref_off);
	for (uint32_t x = lsm_sl_first(a); x; x = lsm_sl_next(a, x), i++)
		if (i >= n || x != sorted[i])
			return "iteration differs from the sorted reference";
	if (i != n)
		return "iteration is missing nodes";
	for (int s = 0; s < seeks; s++) {
		size_t klen;
		uint64_t tr;

		if (n && test_rng_uniform(r, 2)) {
			/* an existing key, at, above or below a present trailer */
			const lsm_sl_node *p = lsm_sl_node_at(a, sorted[test_rng_uniform(r, n)]);
			klen = p->klen;
			memcpy(k, lsm_sl_node_key(p), klen);
			tr = p->trailer + test_rng_uniform(r, 3) - 1;
		} else {
			klen = random_key(r, k);
			tr = test_rng_next(r) >> (test_rng_uniform(r, 64));
		}
		size_t lb = lower_bound(a, sorted, n, k, klen, tr);
		uint32_t want = lb < n ? sorted[lb] : 0;
		if (lsm_sl_seek(a, k, klen, tr) != want)
			return "seek differs from the reference lower bound";
	}
	if (lsm_sl_seek(a, NULL, 0, UINT64_MAX) != (n ? sorted[0] : 0))
		return "seek to the smallest key is not the first node";
	return NULL;
}

TEST(single_thread_random)
{
	enum { N = 60000 };
	size_t size = 16 << 20;
	uint64_t *buf = malloc(size);
	lsm_arena *a = (lsm_arena *)buf;
	uint32_t *sorted = malloc(N * sizeof *sorted);
	uint64_t *seqs = malloc(N * sizeof *seqs);
	uint8_t (*prev_keys)[16] = malloc(N * sizeof *prev_keys);
	size_t *prev_len = malloc(N * sizeof *prev_len);
	test_rng r;
	const char *err;

	CHECK(buf && sorted && seqs && prev_keys && prev_len);
	CHECK_OK(lsm_arena_init(buf, size));
	test_rng_seed(&r, 42);
	/* unique sequences in random order */
	for (size_t i = 0; i < N; i++)
		seqs[i] = i + 1;
	for (size_t i = N - 1; i > 0; i--) {
		size_t j = (size_t)test_rng_uniform(&r, i + 1);
		uint64_t t = seqs[i];
		seqs[i] = seqs[j];
		seqs[j] = t;
	}
	for (size_t i = 0; i < N; i++) {
		uint8_t k[16];
		size_t klen;

		if (i && test_rng_uniform(&r, 4) == 0) {
			/* a new version of a key inserted before */
			size_t j = (size_t)test_rng_uniform(&r, i);
			klen = prev_len[j];
			memcpy(k, prev_keys[j], klen);
		} else {
			klen = random_key(&r, k);
			/* widen the key space beyond the tiny alphabet */
			if (test_rng_uniform(&r, 2)) {
				uint64_t x = test_rng_next(&r);
				memcpy(k + klen, &x, 6);
				klen += 6;
			}
		}
		memcpy(prev_keys[i], k, klen);
		prev_len[i] = klen;
		sorted[i] = put(a, k, klen, seqs[i]);
		CHECK(sorted[i] != 0);
	}
	CHECK_MSG((err = check_structure(a, N)) == NULL, "%s", err);
	CHECK_MSG((err = check_against_ref(a, sorted, N, &r, 50000)) == NULL, "%s", err);
	for (uint32_t x = lsm_sl_first(a); x; x = lsm_sl_next(a, x))
		CHECK(node_is_complete(lsm_sl_node_at(a, x)));

	free(prev_len);
	free(prev_keys);
	free(seqs);
	free(sorted);
	free(buf);
}

TEST(single_thread_ordered_and_full)
{
	size_t size = 1 << 20;
	uint64_t *buf = malloc(size);
	lsm_arena *a = (lsm_arena *)buf;
	uint32_t *sorted = malloc(size / 32 * sizeof *sorted);
	size_t n = 0;
	test_rng r;
	const char *err;

	CHECK(buf && sorted);
	test_rng_seed(&r, 7);
	/* ascending keys: always the tail; descending: always the front */
	for (int dir = 0; dir < 2; dir++) {
		CHECK_OK(lsm_arena_init(buf, size));
		n = 0;
		for (uint32_t i = 0; i < 3000; i++) {
			uint32_t v = dir ? 3000 - i : i;
			uint8_t k[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			                (uint8_t)(v >> 8), (uint8_t)v};
			CHECK((sorted[n++] = put(a, k, 4, i + 1)) != 0);
		}
		CHECK_MSG((err = check_structure(a, n)) == NULL, "%s", err);
		CHECK_MSG((err = check_against_ref(a, sorted, n, &r, 2000)) == NULL, "%s", err);
	}
	/* fill to the last byte: a refused allocation leaves the list intact */
	CHECK_OK(lsm_arena_init(buf, size));
	n = 0;
	for (uint64_t seq = 1;; seq++) {
		uint8_t k[16];
		size_t klen = random_key(&r, k);
		uint32_t off = put(a, k, klen, seq);

		if (off == 0)
			break;
		sorted[n++] = off;
	}
	CHECK(size - lsm_arena_used(a) < 256);
	CHECK_MSG((err = check_structure(a, n)) == NULL, "%s", err);
	CHECK_MSG((err = check_against_ref(a, sorted, n, &r, 2000)) == NULL, "%s", err);
	free(sorted);
	free(buf);
}

/* ------------------------------------------------------------ concurrent */

enum { CW = 4, CR = 2, OVERLAP_KEYS = 97 };

struct conc {
	lsm_arena *a;
	int per_writer;
	_Atomic uint64_t next_seq;
	_Atomic int writers_left;
	_Atomic int go;              /* all threads start together */
	_Atomic int failed;
	char msg[256];
	uint32_t *by_seq;            /* by_seq[seq] = offset, written by its writer */
	uint64_t reader_passes[CR];
	uint64_t reader_seeks[CR];
	uint64_t reader_partial[CR]; /* passes that overlapped the inserts */
};

struct conc_thread {
	struct conc *c;
	int id;
};

static void conc_fail(struct conc *c, const char *what, uint64_t x)
{
	int expect = 0;

	if (atomic_compare_exchange_strong(&c->failed, &expect, 1))
		snprintf(c->msg, sizeof c->msg, "%s (%llu)", what, (unsigned long long)x);
}

static void *conc_writer(void *p)
{
	struct conc_thread *t = p;
	struct conc *c = t->c;
	test_rng r;

	test_rng_seed(&r, 1000 + (uint64_t)t->id);
	while (!atomic_load(&c->go))
		;
	for (int j = 0; j < c->per_writer && !atomic_load(&c->failed); j++) {
		uint64_t seq = atomic_fetch_add(&c->next_seq, 1);
		uint8_t k[16];
		size_t klen;
		uint32_t off;

		if (j % 2) {
			/* shared keys: many threads add versions of the same key
			 * at once, and the keys are prefixes of one another */
			uint64_t idx = test_rng_uniform(&r, OVERLAP_KEYS);
			uint64_t h = mix64(idx % 13);
			k[0] = 'o';
			memcpy(k + 1, &h, 8);
			klen = 2 + (size_t)(idx % 8);
			k[klen - 1] = (uint8_t)idx;
		} else {
			/* this writer's own keys, in random order */
			uint64_t h = mix64((uint64_t)j);
			k[0] = 'd';
			k[1] = (uint8_t)t->id;
			memcpy(k + 2, &h, 8);
			memcpy(k + 10, &j, 4);
			klen = 14;
		}
		off = put(c->a, k, klen, seq);
		if (off == 0) {
			conc_fail(c, "arena full at seq", seq);
			break;
		}
		c->by_seq[seq] = off;
	}
	atomic_fetch_sub(&c->writers_left, 1);
	return NULL;
}

static void *conc_reader(void *p)
{
	struct conc_thread *t = p;
	struct conc *c = t->c;
	const lsm_arena *a = c->a;
	enum { SAMPLE = 512 };
	uint32_t sample[SAMPLE];
	uint64_t last_count = 0;
	int nsample = 0;
	test_rng r;

	test_rng_seed(&r, 2000 + (uint64_t)t->id);
	while (!atomic_load(&c->go))
		;
	for (;;) {
		/* read before the pass, so the final pass sees every insert */
		int done = atomic_load(&c->writers_left) == 0;
		uint64_t count = 0;
		uint32_t prev = 0;

		if (atomic_load(&c->failed))
			return NULL;
		/* Every node seen in the last pass must still be found by a
		 * seek to its own internal key, and a seek to its user key at
		 * the newest trailer must land on a version of that key no
		 * older than it. */
		for (int s = 0; s < nsample; s++) {
			const lsm_sl_node *n = lsm_sl_node_at(a, sample[s]);
			uint32_t got = lsm_sl_seek(a, lsm_sl_node_key(n), n->klen, n->trailer);
			const lsm_sl_node *g;

			if (got != sample[s]) {
				conc_fail(c, "seek to a present node missed it", n->trailer >> 8);
				return NULL;
			}
			got = lsm_sl_seek(a, lsm_sl_node_key(n), n->klen, UINT64_MAX);
			g = got ? lsm_sl_node_at(a, got) : NULL;
			if (!g || g->klen != n->klen ||
			    memcmp(lsm_sl_node_key(g), lsm_sl_node_key(n), n->klen) != 0 ||
			    g->trailer < n->trailer || !node_is_complete(g)) {
				conc_fail(c, "seek to the newest version is wrong", n->trailer >> 8);
				return NULL;
			}
			c->reader_seeks[t->id] += 2;
		}
		/* Short scans from random seeks reach freshly linked nodes far
		 * more often than whole passes do. */
		for (int s = 0; s < 256; s++) {
			uint8_t k[16];
			uint64_t h = test_rng_next(&r), tr = test_rng_next(&r) >> 8;
			size_t klen = 1 + (size_t)test_rng_uniform(&r, 14);
			uint32_t x, px = 0;

			k[0] = test_rng_uniform(&r, 2) ? 'o' : 'd';
			memcpy(k + 1, &h, 8);
			memcpy(k + 9, &tr, 7);
			x = lsm_sl_seek(a, k, klen, tr);
			if (x && lsm_ikey_compare(lsm_sl_node_key(lsm_sl_node_at(a, x)),
			                          lsm_sl_node_at(a, x)->klen,
			                          lsm_sl_node_at(a, x)->trailer,
			                          k, klen, tr) < 0) {
				conc_fail(c, "seek returned a node below the target", x);
				return NULL;
			}
			for (int step = 0; x && step < 32; step++, px = x, x = lsm_sl_next(a, x)) {
				if (!node_is_complete(lsm_sl_node_at(a, x))) {
					conc_fail(c, "scan saw an incomplete node at offset", x);
					return NULL;
				}
				if (step && node_cmp(a, px, x) >= 0) {
					conc_fail(c, "scan out of order at offset", x);
					return NULL;
				}
			}
			c->reader_seeks[t->id]++;
		}
		nsample = 0;
		for (uint32_t x = lsm_sl_first(a); x; x = lsm_sl_next(a, x)) {
			if (!node_is_complete(lsm_sl_node_at(a, x))) {
				conc_fail(c, "reader saw an incomplete node at offset", x);
				return NULL;
			}
			if (prev && node_cmp(a, prev, x) >= 0) {
				conc_fail(c, "iteration out of order at offset", x);
				return NULL;
			}
			/* reservoir-ish sample for the next round of seeks */
			if (nsample < SAMPLE)
				sample[nsample++] = x;
			else if (test_rng_uniform(&r, count + 1) < SAMPLE)
				sample[test_rng_uniform(&r, SAMPLE)] = x;
			prev = x;
			count++;
		}
		if (count < last_count) {
			conc_fail(c, "a pass saw fewer nodes than the one before", count);
			return NULL;
		}
		if (count > atomic_load(&c->next_seq)) {
			conc_fail(c, "a pass saw more nodes than were handed out", count);
			return NULL;
		}
		last_count = count;
		c->reader_passes[t->id]++;
		if (count && count < (uint64_t)c->per_writer * CW)
			c->reader_partial[t->id]++;
		if (done)
			break;
		if (count == 0)
			sched_yield();   /* let the writers at the CPUs */
	}
	if (last_count != (uint64_t)c->per_writer * CW)
		conc_fail(c, "final reader pass count", last_count);
	return NULL;
}

static void run_concurrent(struct conc *c, int per_writer)
{
	size_t size = 64 << 20;
	uint64_t *buf = malloc(size);
	uint64_t total = (uint64_t)per_writer * CW;
	struct conc_thread w[CW], rd[CR];
	pthread_t wt[CW], rt[CR];
	uint8_t *seen;
	uint64_t count = 0;
	uint32_t prev = 0;
	const char *err;

	CHECK(buf != NULL);
	c->by_seq = calloc(total + 1, sizeof *c->by_seq);
	seen = calloc(total + 1, 1);
	CHECK(c->by_seq && seen);
	CHECK_OK(lsm_arena_init(buf, size));
	c->a = (lsm_arena *)buf;
	c->per_writer = per_writer;
	atomic_store(&c->next_seq, 1);
	atomic_store(&c->writers_left, CW);
	for (int i = 0; i < CR; i++) {
		rd[i] = (struct conc_thread){c, i};
		CHECK(pthread_create(&rt[i], NULL, conc_reader, &rd[i]) == 0);
	}
	for (int i = 0; i < CW; i++) {
		w[i] = (struct conc_thread){c, i};
		CHECK(pthread_create(&wt[i], NULL, conc_writer, &w[i]) == 0);
	}
	atomic_store(&c->go, 1);
	for (int i = 0; i < CW; i++)
		pthread_join(wt[i], NULL);
	for (int i = 0; i < CR; i++)
		pthread_join(rt[i], NULL);
	CHECK_MSG(!atomic_load(&c->failed), "%s", c->msg);
	for (int i = 0; i < CR; i++)
		CHECK(c->reader_passes[i] >= 1);

	/* No insert lost: every sequence exactly once, at the offset its
	 * writer built it. */
	for (uint32_t x = lsm_sl_first(c->a); x; x = lsm_sl_next(c->a, x)) {
		const lsm_sl_node *n = lsm_sl_node_at(c->a, x);
		uint64_t seq = n->trailer >> 8;

		CHECK(node_is_complete(n));
		CHECK_MSG(seq >= 1 && seq <= total, "seq %llu", (unsigned long long)seq);
		CHECK_MSG(!seen[seq], "seq %llu seen twice", (unsigned long long)seq);
		CHECK_EQ_INT(c->by_seq[seq], x);
		CHECK(!prev || node_cmp(c->a, prev, x) < 0);
		seen[seq] = 1;
		prev = x;
		count++;
	}
	CHECK_EQ_U64(count, total);
	CHECK_MSG((err = check_structure(c->a, total)) == NULL, "%s", err);
	for (uint64_t s = 1; s <= total; s++) {
		const lsm_sl_node *n = lsm_sl_node_at(c->a, c->by_seq[s]);
		CHECK_EQ_INT(lsm_sl_seek(c->a, lsm_sl_node_key(n), n->klen, n->trailer),
		             c->by_seq[s]);
	}
	free(seen);
	free(c->by_seq);
	free(buf);
}

TEST(concurrent_writers_and_readers)
{
	static struct conc c;

	memset(&c, 0, sizeof c);
	run_concurrent(&c, SANITIZED ? 40000 : 150000);
	printf("    (reader passes %llu+%llu, %llu+%llu during inserts; seeks %llu+%llu)\n",
	       (unsigned long long)c.reader_passes[0], (unsigned long long)c.reader_passes[1],
	       (unsigned long long)c.reader_partial[0], (unsigned long long)c.reader_partial[1],
	       (unsigned long long)c.reader_seeks[0], (unsigned long long)c.reader_seeks[1]);
}

/* All writers append at the tail at once: every CAS races for the same
 * prev on level 0, so the retry path runs constantly. */
struct tail_arg {
	lsm_arena *a;
	int id, n;
};

static void *tail_writer(void *p)
{
	struct tail_arg *t = p;

	for (int i = 0; i < t->n; i++) {
		uint32_t v = (uint32_t)(i * CW + t->id);
		uint8_t k[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
		                (uint8_t)(v >> 8), (uint8_t)v};
		if (put(t->a, k, 4, v + 1) == 0)
			break;
	}
	return NULL;
}

TEST(concurrent_tail_appends)
{
	int per = SANITIZED ? 10000 : 40000;
	size_t size = 32 << 20;
	uint64_t *buf = malloc(size);
	lsm_arena *a = (lsm_arena *)buf;
	struct tail_arg args[CW];
	pthread_t th[CW];
	uint32_t expect = 0;
	const char *err;

	CHECK(buf != NULL);
	CHECK_OK(lsm_arena_init(buf, size));
	for (int i = 0; i < CW; i++) {
		args[i] = (struct tail_arg){a, i, per};
		CHECK(pthread_create(&th[i], NULL, tail_writer, &args[i]) == 0);
	}
	for (int i = 0; i < CW; i++)
		pthread_join(th[i], NULL);
	/* keys 0 .. per*CW-1, each once, in order */
	for (uint32_t x = lsm_sl_first(a); x; x = lsm_sl_next(a, x), expect++) {
		const uint8_t *k = lsm_sl_node_key(lsm_sl_node_at(a, x));
		uint32_t v = (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 |
		             (uint32_t)k[2] << 8 | k[3];
		CHECK_EQ_INT(v, expect);
	}
	CHECK_EQ_INT(expect, per * CW);
	CHECK_MSG((err = check_structure(a, expect)) == NULL, "%s", err);
	free(buf);
}

/* Ascending runs through a splice, from every writer at once: a run's keys
 * interleave with other writers' runs, runs jump back and forth, and keys
 * repeat across runs (a newer version sorts before the older, so it is
 * "below" the last insert and searches from the head).  The list stays
 * sorted and whole. */
struct splice_arg {
	lsm_arena *a;
	int id, runs;
	_Atomic uint64_t *seq;
	int full;
};

static void *splice_writer(void *p)
{
	struct splice_arg *t = p;
	lsm_sl_splice sp;
	test_rng r;

	sp.last = 0;
	test_rng_seed(&r, 300 + (uint64_t)t->id);
	for (int run = 0; run < t->runs && !t->full; run++) {
		uint32_t base = (uint32_t)test_rng_uniform(&r, 1u << 14) * 64;

		for (int i = 0; i < 32; i++) {
			uint32_t v = base + (uint32_t)(i * CW + t->id);
			uint8_t k[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			                (uint8_t)(v >> 8), (uint8_t)v};
			uint64_t seq = atomic_fetch_add(t->seq, 1) + 1;
			uint8_t val[64];
			int h = lsm_sl_height_for(seq);
			uint32_t off = lsm_arena_alloc(t->a, lsm_sl_node_size(4, value_len(seq), h));

			if (off == 0) {
				t->full = 1;
				break;
			}
			value_fill(val, k, 4, seq);
			lsm_sl_node_init(t->a, off, k, 4, (seq << 8) | (seq & 1), val,
			                 value_len(seq), h);
			lsm_sl_insert_splice(t->a, off, &sp);
		}
	}
	return NULL;
}

TEST(concurrent_splice_runs)
{
	int runs = SANITIZED ? 300 : 1500;
	size_t size = 32 << 20;
	uint64_t *buf = malloc(size);
	lsm_arena *a = (lsm_arena *)buf;
	struct splice_arg args[CW];
	pthread_t th[CW];
	_Atomic uint64_t seq = 0;
	uint64_t n = 0;
	const char *err;

	CHECK(buf != NULL);
	CHECK_OK(lsm_arena_init(buf, size));
	for (int i = 0; i < CW; i++) {
		args[i] = (struct splice_arg){a, i, runs, &seq, 0};
		CHECK(pthread_create(&th[i], NULL, splice_writer, &args[i]) == 0);
	}
	for (int i = 0; i < CW; i++) {
		pthread_join(th[i], NULL);
		CHECK(!args[i].full);
	}
	for (uint32_t x = lsm_sl_first(a); x; x = lsm_sl_next(a, x), n++)
		CHECK(node_is_complete(lsm_sl_node_at(a, x)));
	CHECK(n == (uint64_t)runs * 32 * CW);
	CHECK_MSG((err = check_structure(a, n)) == NULL, "%s", err);
	free(buf);
}

/* ------------------------------------------------------------ relocation */

TEST(relocated_copy_is_the_same_list)
{
	enum { N = 5000, M = 3000 };
	size_t size = 2 << 20;
	uint64_t *orig = malloc(size);
	uint64_t *copy;
	lsm_arena *a = (lsm_arena *)orig, *b;
	uint32_t *sorted = malloc((N + M) * sizeof *sorted);
	test_rng r;
	const char *err;
	uint64_t seq = 1;

	CHECK(orig && sorted);
	CHECK_OK(lsm_arena_init(orig, size));
	test_rng_seed(&r, 99);
	for (int i = 0; i < N; i++) {
		uint8_t k[16];
		size_t klen = random_key(&r, k);
		CHECK((sorted[i] = put(a, k, klen, seq++)) != 0);
	}
	/* Copy to a different address and free the original: any pointer
	 * stored in the arena would now dangle (and ASan would say so), and
	 * poisoning the original makes a stale read visible without ASan. */
	copy = malloc(size);
	CHECK(copy != NULL && copy != orig);
	memcpy(copy, orig, size);
	memset(orig, 0x5a, size);
	free(orig);
	b = (lsm_arena *)copy;

	CHECK_MSG((err = check_structure(b, N)) == NULL, "%s", err);
	CHECK_MSG((err = check_against_ref(b, sorted, N, &r, 5000)) == NULL, "%s", err);
	for (int i = 0; i < M; i++) {
		uint8_t k[16];
		size_t klen = random_key(&r, k);
		CHECK((sorted[N + i] = put(b, k, klen, seq++)) != 0);
	}
	CHECK_MSG((err = check_structure(b, N + M)) == NULL, "%s", err);
	CHECK_MSG((err = check_against_ref(b, sorted, N + M, &r, 5000)) == NULL, "%s", err);
	for (uint32_t x = lsm_sl_first(b); x; x = lsm_sl_next(b, x))
		CHECK(node_is_complete(lsm_sl_node_at(b, x)));
	free(sorted);
	free(copy);
}
