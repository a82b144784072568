/*
 * cache_test.c — tests of util/cache.c.
 *
 * Entry bytes are a pure function of (file, offset, version): when len >= 24
 * the first 24 bytes are file, offset and version themselves and the rest
 * is a splitmix64 stream seeded by the three, so any hit can be checked
 * against its key alone, even when another thread or process inserted it
 * (verify_any).  A torn copy, a reused extent or a wrong key all show up as
 * a mismatch.
 *
 * The cache is white-box in one respect only: lsm_cache_check() walks its
 * internal invariants, and every test calls it.  Sizes are learned from the
 * stats (capacity) or by filling, not from the layout constants.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "lsm.h"
#include "cache.h"

#include "testutil.h"

#define HDR_LEN 24

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t key_seed(uint64_t file, uint64_t off, uint64_t ver)
{
	return mix(mix(mix(file) ^ off) ^ ver);
}

/* Byte i of the stream is byte i % 8 of mix(seed + i / 8). */
static void fill(uint8_t *p, size_t len, uint64_t file, uint64_t off, uint64_t ver)
{
	uint64_t seed = key_seed(file, off, ver), w = 0;
	size_t i = 0;

	if (len >= HDR_LEN) {
		memcpy(p, &file, 8);
		memcpy(p + 8, &off, 8);
		memcpy(p + 16, &ver, 8);
		i = HDR_LEN;
	}
	for (; i < len; i++) {
		if (i % 8 == 0)
			w = mix(seed + i / 8);
		p[i] = (uint8_t)(w >> (8 * (i % 8)));
	}
}

static int same(const uint8_t *p, size_t len, uint64_t file, uint64_t off, uint64_t ver)
{
	uint8_t buf[8192];

	if (len > sizeof buf)
		return 0;
	fill(buf, len, file, off, ver);
	return memcmp(p, buf, len) == 0;
}

/* A length in [lo, hi] that is a function of the key and version. */
static size_t len_for(uint64_t file, uint64_t off, uint64_t ver, size_t lo, size_t hi)
{
	return lo + (size_t)(mix(key_seed(file, off, ver) + 1) % (hi - lo + 1));
}

/* Checks a hit of (file, off) whose version is unknown: the version is in
 * the bytes, and the length must be the one that version was given. */
static int verify_any(const lsm_cache_handle *h, uint64_t file, uint64_t off,
                      size_t lo, size_t hi)
{
	uint64_t ver;

	if (h->len < HDR_LEN || h->data == NULL)
		return 0;
	memcpy(&ver, h->data + 16, 8);
	return h->len == len_for(file, off, ver, lo, hi) &&
	       same(h->data, h->len, file, off, ver);
}

static int put(lsm_cache *c, uint64_t file, uint64_t off, uint64_t ver, size_t len,
               lsm_cache_handle *h)
{
	uint8_t *buf = malloc(len ? len : 1);
	int rc;

	fill(buf, len, file, off, ver);
	rc = lsm_cache_insert(c, file, off, buf, len, h);
	free(buf);
	return rc;
}

/* put + release. */
static int put_rel(lsm_cache *c, uint64_t file, uint64_t off, uint64_t ver, size_t len)
{
	lsm_cache_handle h;
	int rc = put(c, file, off, ver, len, &h);

	if (rc == LSM_OK)
		lsm_cache_release(c, &h);
	return rc;
}

/* LSM_OK when (file, off) is cached with exactly (ver, len). */
static int has(lsm_cache *c, uint64_t file, uint64_t off, uint64_t ver, size_t len)
{
	lsm_cache_handle h;
	int rc = lsm_cache_lookup(c, file, off, &h);

	if (rc != LSM_OK)
		return rc;
	if (h.len != len || !same(h.data, h.len, file, off, ver))
		rc = LSM_CORRUPTION;
	lsm_cache_release(c, &h);
	return rc;
}

static lsm_cache *new_cache(size_t size, int shards)
{
	void *mem = aligned_alloc(64, size);

	if (mem == NULL || lsm_cache_init(mem, size, shards) != LSM_OK) {
		free(mem);
		return NULL;
	}
	return lsm_cache_attach(mem);
}

static lsm_cache_stats stats(lsm_cache *c)
{
	lsm_cache_stats st;

	lsm_cache_get_stats(c, &st);
	return st;
}

/* ---------------------------------------------------------------- basics */

TEST(args)
{
	uint64_t buf[4096];
	size_t min1 = lsm_cache_min_size(1);

	CHECK(min1 > 0 && min1 <= 8192);
	CHECK(lsm_cache_min_size(64) >= 64 * min1 / 2);
	CHECK_EQ_INT(lsm_cache_min_size(0), 0);
	CHECK_EQ_INT(lsm_cache_min_size(3), 0);
	CHECK_EQ_INT(lsm_cache_min_size(128), 0);
	CHECK_EQ_INT(lsm_cache_init(buf, sizeof buf, 3), LSM_INVALID);
	CHECK_EQ_INT(lsm_cache_init(buf, sizeof buf, 0), LSM_INVALID);
	CHECK_EQ_INT(lsm_cache_init(buf, sizeof buf, 128), LSM_INVALID);
	CHECK_EQ_INT(lsm_cache_init(NULL, sizeof buf, 1), LSM_INVALID);
	CHECK_EQ_INT(lsm_cache_init((char *)buf + 4, sizeof buf - 8, 1), LSM_INVALID);
	CHECK_EQ_INT(lsm_cache_init(buf, min1 - 1, 1), LSM_INVALID);
	CHECK(lsm_cache_attach(NULL) == NULL);
	memset(buf, 0, sizeof buf);
	CHECK(lsm_cache_attach(buf) == NULL);
	memset(buf, 0xa5, sizeof buf);
	CHECK(lsm_cache_attach(buf) == NULL);

	/* The smallest cache works. */
	CHECK_OK(lsm_cache_init(buf, min1, 1));
	lsm_cache *c = lsm_cache_attach(buf);
	CHECK(c != NULL);
	CHECK_OK(put_rel(c, 1, 0, 0, 100));
	CHECK_OK(has(c, 1, 0, 0, 100));
	CHECK_OK(lsm_cache_check(c));
	CHECK_EQ_INT(lsm_cache_insert(c, 1, 0, NULL, 5, &(lsm_cache_handle){0}),
	             LSM_INVALID);
	CHECK_EQ_INT(lsm_cache_lookup(NULL, 1, 0, &(lsm_cache_handle){0}), LSM_INVALID);
	CHECK_EQ_INT(lsm_cache_lookup(c, 1, 0, NULL), LSM_INVALID);
	/* Bogus handles are ignored. */
	lsm_cache_release(c, NULL);
	lsm_cache_release(c, &(lsm_cache_handle){ .shard = 7, .entry = 0 });
	lsm_cache_release(c, &(lsm_cache_handle){ .shard = 0, .entry = 1u << 30 });
	lsm_cache_release(c, &(lsm_cache_handle){ .shard = 0, .entry = 0 });
	CHECK_OK(lsm_cache_check(c));
	/* Also with a size that is no multiple of anything. */
	CHECK_OK(lsm_cache_init(buf, sizeof buf - 24, 2));
	CHECK_OK(lsm_cache_check(lsm_cache_attach(buf)));
}

TEST(insert_lookup_release)
{
	lsm_cache *c = new_cache(1 << 20, 4);
	lsm_cache_handle h, h2;
	lsm_cache_stats st;
	uint8_t data[100];

	CHECK(c != NULL);
	st = stats(c);
	CHECK(st.capacity >= (1 << 20) * 95ull / 100 && st.capacity <= 1 << 20);
	CHECK_EQ_INT(st.usage, 0);
	CHECK_EQ_INT(st.entries, 0);

	CHECK_EQ_INT(lsm_cache_lookup(c, 1, 0, &h), LSM_NOTFOUND);
	CHECK_EQ_INT(stats(c).misses, 1);

	fill(data, sizeof data, 1, 0, 7);
	CHECK_OK(lsm_cache_insert(c, 1, 0, data, sizeof data, &h));
	CHECK(h.data != NULL && h.data != data);
	CHECK_MEM(h.data, h.len, data, sizeof data);
	/* Two pins on one entry. */
	CHECK_OK(lsm_cache_lookup(c, 1, 0, &h2));
	CHECK(h2.data == h.data);
	lsm_cache_release(c, &h);
	CHECK(h.data == NULL);
	lsm_cache_release(c, &h);                 /* a second release: no-op */
	CHECK_MEM(h2.data, h2.len, data, sizeof data);
	lsm_cache_release(c, &h2);

	CHECK_OK(has(c, 1, 0, 7, sizeof data));
	CHECK_EQ_INT(lsm_cache_lookup(c, 1, 1, &h), LSM_NOTFOUND);
	CHECK_EQ_INT(lsm_cache_lookup(c, 2, 0, &h), LSM_NOTFOUND);
	st = stats(c);
	CHECK_EQ_INT(st.entries, 1);
	CHECK_EQ_INT(st.inserts, 1);
	CHECK_EQ_INT(st.hits, 2);
	CHECK_EQ_INT(st.misses, 3);
	CHECK_EQ_INT(st.evictions, 0);
	CHECK(st.usage >= sizeof data && st.usage <= sizeof data + 128);
	CHECK_OK(lsm_cache_check(c));
	free(c);
}

TEST(replace)
{
	lsm_cache *c = new_cache(1 << 20, 2);
	lsm_cache_handle h1, h2;
	uint64_t one;

	CHECK(c != NULL);
	CHECK_OK(put(c, 5, 4096, 1, 1000, &h1));
	one = stats(c).usage;
	/* Replaced while pinned: the old bytes live on until released. */
	CHECK_OK(put(c, 5, 4096, 2, 3000, &h2));
	CHECK(same(h1.data, 1000, 5, 4096, 1) && h1.len == 1000);
	CHECK_OK(has(c, 5, 4096, 2, 3000));
	CHECK_EQ_INT(stats(c).entries, 1);
	CHECK(stats(c).usage > one + 3000);
	CHECK_OK(lsm_cache_check(c));
	lsm_cache_release(c, &h1);
	CHECK(stats(c).usage < 3200);
	lsm_cache_release(c, &h2);
	/* Replaced while unpinned: freed at once. */
	CHECK_OK(put_rel(c, 5, 4096, 3, 1000));
	CHECK_EQ_INT(stats(c).usage, one);
	CHECK_OK(has(c, 5, 4096, 3, 1000));
	CHECK_EQ_INT(stats(c).entries, 1);
	CHECK_EQ_INT(stats(c).inserts, 3);
	CHECK_EQ_INT(stats(c).evictions, 0);
	CHECK_OK(lsm_cache_check(c));
	free(c);
}

TEST(erase_file)
{
	lsm_cache *c = new_cache(1 << 20, 4);
	lsm_cache_handle pin;
	uint64_t usage_f2;

	CHECK(c != NULL);
	for (uint64_t off = 0; off < 20; off++)
		CHECK_OK(put_rel(c, 2, off * 4096, 0, 500));
	usage_f2 = stats(c).usage;
	for (uint64_t off = 0; off < 20; off++)
		CHECK_OK(put_rel(c, 1, off * 4096, 0, 700));
	CHECK_OK(lsm_cache_lookup(c, 1, 3 * 4096, &pin));

	lsm_cache_erase_file(c, 1);
	for (uint64_t off = 0; off < 20; off++) {
		lsm_cache_handle h;

		CHECK_EQ_INT(lsm_cache_lookup(c, 1, off * 4096, &h), LSM_NOTFOUND);
		CHECK_OK(has(c, 2, off * 4096, 0, 500));
	}
	CHECK_EQ_INT(stats(c).entries, 20);
	CHECK(stats(c).usage > usage_f2);          /* the pinned one still holds memory */
	CHECK(same(pin.data, pin.len, 1, 3 * 4096, 0) && pin.len == 700);
	CHECK_OK(lsm_cache_check(c));
	lsm_cache_release(c, &pin);
	CHECK_EQ_INT(stats(c).usage, usage_f2);
	CHECK_OK(lsm_cache_check(c));
	lsm_cache_erase_file(c, 2);
	lsm_cache_erase_file(c, 99);
	CHECK_EQ_INT(stats(c).entries, 0);
	CHECK_EQ_INT(stats(c).usage, 0);
	CHECK_OK(lsm_cache_check(c));
	free(c);
}

/* ------------------------------------------------------------- eviction */

/* How many 1000-byte entries one shard of `size` bytes holds. */
static int fill_count(size_t size)
{
	lsm_cache *c = new_cache(size, 1);
	int n = 0;

	if (c == NULL)
		return -1;
	while (stats(c).evictions == 0 && n < 100000)
		if (put_rel(c, 1, (uint64_t)n++, 0, 1000) != LSM_OK)
			break;
	free(c);
	return n - 1;
}

TEST(lru_order)
{
	size_t size = 64 << 10;
	int n = fill_count(size);
	lsm_cache *c = new_cache(size, 1);

	CHECK(c != NULL);
	CHECK_MSG(n >= 40, "n = %d", n);
	for (int i = 0; i < n; i++)
		CHECK_OK(put_rel(c, 1, (uint64_t)i, 0, 1000));
	CHECK_EQ_INT(stats(c).evictions, 0);
	CHECK_OK(has(c, 1, 0, 0, 1000));          /* 0 is now the newest */
	CHECK_OK(put_rel(c, 1, (uint64_t)n, 0, 1000));
	CHECK_EQ_INT(stats(c).evictions, 1);
	CHECK_EQ_INT(has(c, 1, 1, 0, 1000), LSM_NOTFOUND);
	CHECK_OK(has(c, 1, 0, 0, 1000));
	CHECK_OK(put_rel(c, 1, (uint64_t)n + 1, 0, 1000));
	CHECK_EQ_INT(has(c, 1, 2, 0, 1000), LSM_NOTFOUND);
	for (int i = 3; i <= n + 1; i++)
		CHECK_OK(has(c, 1, (uint64_t)i, 0, 1000));
	CHECK_OK(has(c, 1, 0, 0, 1000));
	CHECK_EQ_INT(stats(c).entries, n);
	/* A pinned entry is not the victim even when it is the oldest. */
	lsm_cache_handle pin;
	CHECK_OK(lsm_cache_lookup(c, 1, 3, &pin));   /* oldest after this: 4 */
	CHECK_OK(put_rel(c, 1, (uint64_t)n + 2, 0, 1000));
	CHECK_EQ_INT(has(c, 1, 4, 0, 1000), LSM_NOTFOUND);
	lsm_cache_release(c, &pin);
	CHECK_OK(has(c, 1, 3, 0, 1000));
	CHECK_OK(lsm_cache_check(c));
	free(c);
}

TEST(pinned_never_evicted_busy)
{
	size_t size = 64 << 10;
	lsm_cache *c = new_cache(size, 1);
	lsm_cache_handle hs[200], zs[2000], h;
	lsm_cache_stats before, after;
	int n = 0, nz = 0, rc;

	CHECK(c != NULL);
	while ((rc = put(c, 1, (uint64_t)n, 0, 1000, &hs[n])) == LSM_OK && n < 199)
		n++;
	CHECK_EQ_INT(rc, LSM_BUSY);
	CHECK(n >= 40);
	CHECK_EQ_INT(stats(c).insert_busy, 1);
	/* Too little is unpinned for a bigger block: it fails up front,
	 * without evicting the one entry it could have. */
	lsm_cache_release(c, &hs[n - 1]);
	CHECK_EQ_INT(put(c, 1, 1000, 0, 3000, &h), LSM_BUSY);
	CHECK_EQ_INT(stats(c).evictions, 0);
	CHECK_OK(lsm_cache_lookup(c, 1, (uint64_t)n - 1, &hs[n - 1]));
	CHECK_EQ_INT(stats(c).insert_busy, 2);
	/* Then the smallest entries, until not one unit is left. */
	while ((rc = put(c, 3, (uint64_t)nz, 0, 0, &zs[nz])) == LSM_OK && nz < 1999)
		nz++;
	CHECK_EQ_INT(rc, LSM_BUSY);
	before = stats(c);
	CHECK_EQ_INT(before.insert_busy, 3);
	CHECK_EQ_INT(before.evictions, 0);
	/* All pinned: fails again and changes nothing, whatever the size. */
	CHECK_EQ_INT(put(c, 1, 1000, 0, 100, &h), LSM_BUSY);
	CHECK_EQ_INT(put(c, 1, 0, 9, 1000, &h), LSM_BUSY);   /* a replace too */
	CHECK_EQ_INT(put(c, 1, 0, 9, 0, &h), LSM_BUSY);
	after = stats(c);
	CHECK_EQ_INT(after.insert_busy, 6);
	CHECK_EQ_INT(after.entries, before.entries);
	CHECK_EQ_INT(after.usage, before.usage);
	CHECK_EQ_INT(after.usage, after.capacity);
	CHECK_EQ_INT(after.inserts, before.inserts);
	CHECK_EQ_INT(after.evictions, 0);
	CHECK_EQ_INT(lsm_cache_lookup(c, 1, 1000, &h), LSM_NOTFOUND);
	for (int i = 0; i < n; i++)
		CHECK(same(hs[i].data, hs[i].len, 1, (uint64_t)i, 0));
	CHECK_OK(has(c, 1, 0, 0, 1000));          /* the replace did not happen */
	CHECK_OK(lsm_cache_check(c));
	for (int i = 0; i < nz; i++)
		lsm_cache_release(c, &zs[i]);

	/* Unpin the odd ones and churn: the even ones must survive intact. */
	for (int i = 1; i < n; i += 2)
		lsm_cache_release(c, &hs[i]);
	for (int i = 0; i < 500; i++) {
		rc = put_rel(c, 2, (uint64_t)i, 0, 200 + (size_t)i % 1500);
		CHECK(rc == LSM_OK || rc == LSM_BUSY);  /* BUSY: pins fragment it */
	}
	CHECK(stats(c).inserts > before.inserts + 400);
	for (int i = 0; i < n; i += 2) {
		CHECK(same(hs[i].data, hs[i].len, 1, (uint64_t)i, 0));
		CHECK_OK(has(c, 1, (uint64_t)i, 0, 1000));
		lsm_cache_release(c, &hs[i]);
	}
	CHECK_OK(lsm_cache_check(c));
	free(c);
}

TEST(toobig_and_zero_length)
{
	lsm_cache *c = new_cache(1 << 20, 4);
	lsm_cache_handle h;
	uint64_t shard_cap;
	uint8_t *big;

	CHECK(c != NULL);
	shard_cap = stats(c).capacity / 4;
	big = malloc(shard_cap);
	CHECK(big != NULL);
	memset(big, 0x5a, shard_cap);
	CHECK_EQ_INT(lsm_cache_insert(c, 1, 0, big, shard_cap / 8 + 64, &h), LSM_TOOBIG);
	CHECK_EQ_INT(lsm_cache_insert(c, 1, 0, big, shard_cap, &h), LSM_TOOBIG);
	CHECK_EQ_INT(lsm_cache_insert(c, 1, 0, big, SIZE_MAX, &h), LSM_TOOBIG);
	CHECK_EQ_INT(stats(c).entries, 0);
	CHECK_EQ_INT(stats(c).insert_busy, 0);
	CHECK_OK(lsm_cache_insert(c, 1, 0, big, shard_cap / 8 - 128, &h));
	CHECK_MEM(h.data, h.len, big, shard_cap / 8 - 128);
	lsm_cache_release(c, &h);
	free(big);

	CHECK_OK(lsm_cache_insert(c, 2, 0, NULL, 0, &h));
	CHECK(h.data != NULL);
	CHECK_EQ_INT(h.len, 0);
	lsm_cache_release(c, &h);
	CHECK_OK(lsm_cache_insert(c, 2, 1, "x", 0, &h));
	lsm_cache_release(c, &h);
	CHECK_OK(lsm_cache_lookup(c, 2, 0, &h));
	CHECK_EQ_INT(h.len, 0);
	lsm_cache_release(c, &h);
	CHECK_OK(has(c, 2, 1, 0, 0));
	/* Many zero-length entries still cost memory: they get evicted. */
	for (uint64_t i = 0; i < 30000; i++)
		CHECK_OK(put_rel(c, 3, i, 0, 0));
	CHECK(stats(c).evictions > 0);
	CHECK_OK(lsm_cache_check(c));
	free(c);
}

/* ------------------------------------------------------------ relocation */

TEST(relocation)
{
	size_t size = 256 << 10;
	void *a = aligned_alloc(64, size), *b = aligned_alloc(64, size);
	lsm_cache *c;
	lsm_cache_handle h;

	CHECK(a != NULL && b != NULL);
	CHECK_OK(lsm_cache_init(a, size, 4));
	c = lsm_cache_attach(a);
	for (uint64_t i = 0; i < 100; i++)
		CHECK_OK(put_rel(c, 1 + i % 3, i * 4096, i, len_for(1, i, i, 0, 1500)));
	lsm_cache_erase_file(c, 3);
	memcpy(b, a, size);
	memset(a, 0xdb, size);                    /* nothing may point into A */
	free(a);

	c = lsm_cache_attach(b);
	CHECK(c == b);
	CHECK_OK(lsm_cache_check(c));
	CHECK_EQ_INT(stats(c).entries, 67);
	for (uint64_t i = 0; i < 100; i++) {
		int rc = lsm_cache_lookup(c, 1 + i % 3, i * 4096, &h);

		if (i % 3 == 2) {
			CHECK_EQ_INT(rc, LSM_NOTFOUND);
			continue;
		}
		CHECK_OK(rc);
		CHECK(h.data >= (uint8_t *)b && h.data + h.len <= (uint8_t *)b + size);
		CHECK_EQ_INT(h.len, len_for(1, i, i, 0, 1500));
		CHECK(same(h.data, h.len, 1 + i % 3, i * 4096, i));
		lsm_cache_release(c, &h);
	}
	/* B is a working cache in its own right. */
	for (uint64_t i = 0; i < 1000; i++)
		CHECK_OK(put_rel(c, 4, i, 0, 300));
	CHECK_OK(has(c, 4, 999, 0, 300));
	CHECK_OK(lsm_cache_check(c));
	free(b);
}

/* ------------------------------------------------------------- space use */

TEST(space_efficiency)
{
	size_t size = 8 << 20;
	lsm_cache *c = new_cache(size, 8);
	lsm_cache_stats st;
	uint64_t keys;

	CHECK(c != NULL);
	st = stats(c);
	keys = 3 * st.capacity / 4096;
	for (uint64_t i = 0; i < keys; i++)
		CHECK_OK(put_rel(c, 1, i * 4096, 0, 4096));
	st = stats(c);
	CHECK_MSG(st.entries * 4096 >= size * 8 / 10, "%" PRIu64 " entries", st.entries);
	CHECK(st.usage * 10 >= st.capacity * 8);
	CHECK(st.usage <= st.capacity);
	/* Every shard is full but for less than one entry. */
	CHECK(st.capacity - st.usage < 8 * (4096 + 128));
	CHECK_EQ_INT(st.evictions, keys - st.entries);
	CHECK_OK(lsm_cache_check(c));

	/* Realistic block sizes (a 4 KiB target, cut after the key that
	 * crosses it) under churn: fragmentation must stay modest. */
	test_rng rng;
	uint64_t held = 0, *lens = calloc(keys, sizeof *lens);

	CHECK(lens != NULL);
	test_rng_seed(&rng, 42);
	lsm_cache_erase_file(c, 1);
	for (uint64_t i = 0; i < 2 * keys; i++) {
		uint64_t k = test_rng_uniform(&rng, keys);
		size_t len = 3900 + test_rng_uniform(&rng, 700);

		CHECK_OK(put_rel(c, 2, k, i, len));
		lens[k] = len;
	}
	for (uint64_t k = 0; k < keys; k++) {
		lsm_cache_handle h;

		if (lsm_cache_lookup(c, 2, k, &h) == LSM_OK) {
			CHECK_EQ_INT(h.len, lens[k]);
			held += h.len;
			lsm_cache_release(c, &h);
		}
	}
	free(lens);
	CHECK_MSG(held * 10 >= size * 8, "held %" PRIu64 " of %zu", held, size);
	CHECK_OK(lsm_cache_check(c));
	free(c);
}

/* ------------------------------------------------------------ model test */

#define M_FILES 4
#define M_OFFS  150
#define M_HOLD  8

struct mkey { uint64_t ver; size_t len; int present; int pins; };

TEST(random_model)
{
	lsm_cache *c = new_cache(512 << 10, 4);
	static struct mkey m[M_FILES][M_OFFS];
	struct { lsm_cache_handle h; uint64_t f, o, ver; } held[M_HOLD];
	uint64_t lookups = 0, ok_inserts = 0, busy = 0, ver = 0;
	int nheld = 0;
	test_rng rng;

	CHECK(c != NULL);
	memset(m, 0, sizeof m);
	test_rng_seed(&rng, 7);
	for (int op = 0; op < 50000; op++) {
		uint64_t f = test_rng_uniform(&rng, M_FILES), o = test_rng_uniform(&rng, M_OFFS);
		struct mkey *k = &m[f][o];
		uint64_t r = test_rng_uniform(&rng, 100);
		lsm_cache_handle h;
		int rc;

		if (op % 5000 == 0)
			CHECK_OK(lsm_cache_check(c));
		if (r < 45) {                                 /* lookup */
			lookups++;
			rc = lsm_cache_lookup(c, f, o, &h);
			if (k->pins > 0)                          /* pinned and live */
				CHECK_EQ_INT(rc, LSM_OK);
			if (rc == LSM_NOTFOUND) {
				k->present = 0;
				continue;
			}
			CHECK_OK(rc);
			CHECK_MSG(k->present, "hit on absent key %d/%d", (int)f, (int)o);
			CHECK_EQ_INT(h.len, k->len);
			CHECK(same(h.data, h.len, f, o, k->ver));
		} else if (r < 85) {                          /* insert */
			uint64_t v = ++ver;
			size_t len = r < 47 ? 0 : r < 50 ? test_rng_uniform(&rng, 30)
			             : len_for(f, o, v, 24, 6000);

			rc = put(c, f, o, v, len, &h);
			if (rc == LSM_BUSY) {
				busy++;
				continue;
			}
			CHECK_OK(rc);
			CHECK(same(h.data, h.len, f, o, v) && h.len == len);
			ok_inserts++;
			*k = (struct mkey){ v, len, 1, 0 };     /* old pins now detached */
		} else if (r < 99) {                          /* release one */
			if (nheld > 0) {
				int i = (int)test_rng_uniform(&rng, (uint64_t)nheld);
				struct mkey *hk = &m[held[i].f][held[i].o];

				CHECK(same(held[i].h.data, held[i].h.len, held[i].f, held[i].o,
				           held[i].ver));
				if (hk->present && hk->ver == held[i].ver && hk->pins > 0)
					hk->pins--;
				lsm_cache_release(c, &held[i].h);
				held[i] = held[--nheld];
			}
			continue;
		} else {                                      /* erase a file */
			lsm_cache_erase_file(c, f);
			for (int j = 0; j < M_OFFS; j++)
				m[f][j].present = m[f][j].pins = 0;
			continue;
		}
		/* Keep the handle for a while, or release it now. */
		if (nheld < M_HOLD && test_rng_uniform(&rng, 3) == 0) {
			held[nheld].h = h;
			held[nheld].f = f;
			held[nheld].o = o;
			held[nheld].ver = k->ver;
			k->pins++;
			nheld++;
		} else {
			lsm_cache_release(c, &h);
		}
	}
	while (nheld > 0)
		lsm_cache_release(c, &held[--nheld].h);
	CHECK_OK(lsm_cache_check(c));

	lsm_cache_stats st = stats(c);
	uint64_t present = 0, bytes = 0;

	CHECK_EQ_INT(st.hits + st.misses, lookups);
	CHECK_EQ_INT(st.inserts, ok_inserts);
	CHECK_EQ_INT(st.insert_busy, busy);
	CHECK(st.evictions > 0 && st.evictions <= st.inserts);
	for (uint64_t f = 0; f < M_FILES; f++)
		for (uint64_t o = 0; o < M_OFFS; o++) {
			int rc = has(c, f, o, m[f][o].ver, m[f][o].len);

			if (rc == LSM_NOTFOUND)
				continue;
			CHECK_OK(rc);
			CHECK(m[f][o].present);
			present++;
			bytes += m[f][o].len;
		}
	CHECK_EQ_INT(st.entries, present);
	/* Nothing is pinned: usage is the live entries with their overhead. */
	CHECK(st.usage >= bytes && st.usage <= bytes + present * 128);
	CHECK(st.usage <= st.capacity);
	free(c);
}

/* ----------------------------------------------------------- concurrency */

#define R_FILES 3
#define R_OFFS  40
#define R_LO    24
#define R_HI    3000

struct racer {
	lsm_cache *c;
	uint64_t seed, ops, lookups, bad;
};

/* Random lookups, inserts, releases and erases; every byte of every hit
 * is checked when it arrives and again just before it is released. */
static void race(struct racer *r)
{
	struct { lsm_cache_handle h; uint64_t f, o; } held[3];
	int nheld = 0;
	test_rng rng;

	test_rng_seed(&rng, r->seed);
	for (uint64_t op = 0; op < r->ops; op++) {
		uint64_t f = 1 + test_rng_uniform(&rng, R_FILES);
		uint64_t o = test_rng_uniform(&rng, R_OFFS), x = test_rng_uniform(&rng, 1000);
		lsm_cache_handle h;
		int rc;

		if (nheld == 3 || (nheld > 0 && x < 300)) {
			int i = (int)test_rng_uniform(&rng, (uint64_t)nheld);

			r->bad += !verify_any(&held[i].h, held[i].f, held[i].o, R_LO, R_HI);
			lsm_cache_release(r->c, &held[i].h);
			held[i] = held[--nheld];
			continue;
		}
		if (x < 700) {
			r->lookups++;
			rc = lsm_cache_lookup(r->c, f, o, &h);
		} else if (x < 999) {
			uint64_t ver = r->seed << 40 | op;

			rc = put(r->c, f, o, ver, len_for(f, o, ver, R_LO, R_HI), &h);
		} else {
			lsm_cache_erase_file(r->c, f);
			continue;
		}
		if (rc != LSM_OK) {
			r->bad += rc != LSM_NOTFOUND && rc != LSM_BUSY;
			continue;
		}
		r->bad += !verify_any(&h, f, o, R_LO, R_HI);
		held[nheld].h = h;
		held[nheld].f = f;
		held[nheld].o = o;
		nheld++;
	}
	while (nheld > 0) {
		nheld--;
		r->bad += !verify_any(&held[nheld].h, held[nheld].f, held[nheld].o, R_LO, R_HI);
		lsm_cache_release(r->c, &held[nheld].h);
	}
}

static void *race_thread(void *arg)
{
	race(arg);
	return NULL;
}

/* Every entry left in the cache has the right bytes for its key. */
static int scan_ok(lsm_cache *c)
{
	for (uint64_t f = 1; f <= R_FILES; f++)
		for (uint64_t o = 0; o < R_OFFS; o++) {
			lsm_cache_handle h;

			if (lsm_cache_lookup(c, f, o, &h) != LSM_OK)
				continue;
			int good = verify_any(&h, f, o, R_LO, R_HI);
			lsm_cache_release(c, &h);
			if (!good)
				return 0;
		}
	return 1;
}

TEST(threads)
{
	lsm_cache *c = new_cache(96 << 10, 2);
	struct racer r[4];
	pthread_t t[4];
	uint64_t lookups = 0;
	lsm_cache_stats st;

	CHECK(c != NULL);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){ .c = c, .seed = (uint64_t)i + 1, .ops = 25000 };
		CHECK(pthread_create(&t[i], NULL, race_thread, &r[i]) == 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++) {
		CHECK_MSG(r[i].bad == 0, "thread %d: %" PRIu64 " bad results", i, r[i].bad);
		lookups += r[i].lookups;
	}
	CHECK_OK(lsm_cache_check(c));
	st = stats(c);
	CHECK_EQ_INT(st.hits + st.misses, lookups);
	CHECK(st.hits > 0 && st.evictions > 0);
	CHECK(scan_ok(c));
	free(c);
}

TEST(processes)
{
	size_t size = 96 << 10;
	uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
	                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t *lookups = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pids[3];
	lsm_cache *c;
	uint64_t total = 0;

	CHECK(mem != MAP_FAILED && lookups != MAP_FAILED);
	CHECK_OK(lsm_cache_init(mem, size, 2));
	c = lsm_cache_attach(mem);
	for (uint64_t o = 0; o < R_OFFS; o++)
		CHECK_OK(put_rel(c, 1, o, 0, len_for(1, o, 0, R_LO, R_HI)));
	fflush(NULL);
	for (int i = 0; i < 3; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0);
		if (pids[i] == 0) {
			/* Move this process's view of the shared pages elsewhere,
			 * as PostgreSQL backends may map them: the child works at
			 * an address the parent never used. */
			void *hole = mmap(NULL, size + 4096 * (size_t)(i + 1), PROT_NONE,
			                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			void *moved = hole == MAP_FAILED ? MAP_FAILED :
			              mremap(mem, size, size, MREMAP_MAYMOVE | MREMAP_FIXED,
			                     (char *)hole + 4096 * (size_t)(i + 1));
			struct racer r = { .seed = 100 + (uint64_t)i, .ops = 15000 };

			if (moved == MAP_FAILED || moved == (void *)mem)
				_exit(2);
			r.c = lsm_cache_attach(moved);
			if (r.c == NULL)
				_exit(3);
			race(&r);
			lookups[i] = r.lookups;
			_exit(r.bad == 0 && scan_ok(r.c) ? 0 : 1);
		}
	}
	/* A child that dies holding a shard lock would block the others for
	 * ever: give up after a minute rather than hang the suite. */
	for (int i = 0, waited = 0; i < 3; i++) {
		int status;
		pid_t got;

		while ((got = waitpid(pids[i], &status, WNOHANG)) == 0 && waited < 6000) {
			usleep(10000);
			waited++;
		}
		if (got == 0) {
			for (int j = i; j < 3; j++) {
				kill(pids[j], SIGKILL);
				waitpid(pids[j], NULL, 0);
			}
			CHECK_MSG(0, "child %d still running after 60 s", i);
		}
		CHECK(got == pids[i]);
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		          "child %d: status 0x%x", i, status);
		total += lookups[i];
	}
	CHECK_OK(lsm_cache_check(c));
	CHECK(scan_ok(c));
	lsm_cache_stats st = stats(c);
	CHECK_EQ_INT(st.hits + st.misses, total + 3 * R_FILES * R_OFFS + R_FILES * R_OFFS);
	CHECK(st.usage <= st.capacity);
	munmap(mem, size);
	munmap(lookups, 4096);
}
