/*
 * rangedel_test.c — fragmented range tombstones against brute force.
 *
 * Random overlapping tombstones over a small key space; for every key the
 * fragmented answers (covering, covering_below) must equal a direct scan
 * of the raw tombstones, and tombstones above the read sequence or empty
 * must be ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "dbint.h"

static void key_of(int v, char *k, size_t *len)
{
	/* variable length keys, so prefixes and "shorter first" are exercised */
	*len = (size_t)snprintf(k, 8, "%d", v);
}

TEST(fragmented_equals_brute_force)
{
	test_rng r;

	test_rng_seed(&r, 77);
	for (int round = 0; round < 200; round++) {
		lsm_rdel_set s;
		int n = (int)test_rng_uniform(&r, 20);
		int st[20], en[20];
		uint64_t sq[20], read_seq = 1 + test_rng_uniform(&r, 60);
		char a[8], b[8];
		size_t al, bl;

		lsm_rdel_init(&s, read_seq);
		for (int i = 0; i < n; i++) {
			st[i] = (int)test_rng_uniform(&r, 200);
			en[i] = (int)test_rng_uniform(&r, 200);
			sq[i] = 1 + test_rng_uniform(&r, 60);
			key_of(st[i], a, &al);
			key_of(en[i], b, &bl);
			CHECK_OK(lsm_rdel_add(&s, a, al, b, bl, sq[i]));
		}
		CHECK_OK(lsm_rdel_finish(&s));
		for (int k = 0; k < 200; k++) {
			char kk[8];
			size_t kl;
			uint64_t best = 0, below = 1 + test_rng_uniform(&r, 61), best_below = 0;

			key_of(k, kk, &kl);
			for (int i = 0; i < n; i++) {
				key_of(st[i], a, &al);
				key_of(en[i], b, &bl);
				if (sq[i] > read_seq || lsm_key_compare(a, al, kk, kl) > 0 ||
				    lsm_key_compare(kk, kl, b, bl) >= 0)
					continue;
				if (sq[i] > best)
					best = sq[i];
				if (sq[i] < below && sq[i] > best_below)
					best_below = sq[i];
			}
			CHECK_EQ_INT(lsm_rdel_covering(&s, kk, kl), best);
			CHECK_EQ_INT(lsm_rdel_raw_max(&s, kk, kl), best);
			CHECK_EQ_INT(lsm_rdel_covering_below(&s, kk, kl, below), best_below);
		}
		lsm_rdel_free(&s);
	}
}

TEST(empty_and_invisible_ignored)
{
	lsm_rdel_set s;

	lsm_rdel_init(&s, 10);
	CHECK_OK(lsm_rdel_add(&s, "b", 1, "b", 1, 5));     /* empty */
	CHECK_OK(lsm_rdel_add(&s, "c", 1, "a", 1, 5));     /* reversed */
	CHECK_OK(lsm_rdel_add(&s, "a", 1, "z", 1, 11));    /* after the read */
	CHECK_EQ_INT(s.n, 0);
	CHECK_OK(lsm_rdel_finish(&s));
	CHECK_EQ_INT(lsm_rdel_covering(&s, "m", 1), 0);
	lsm_rdel_free(&s);
}

TEST(end_is_exclusive_start_inclusive)
{
	lsm_rdel_set s;

	lsm_rdel_init(&s, UINT64_MAX);
	CHECK_OK(lsm_rdel_add(&s, "b", 1, "d", 1, 7));
	CHECK_OK(lsm_rdel_finish(&s));
	CHECK_EQ_INT(lsm_rdel_covering(&s, "a", 1), 0);
	CHECK_EQ_INT(lsm_rdel_covering(&s, "b", 1), 7);
	CHECK_EQ_INT(lsm_rdel_covering(&s, "c\xff", 2), 7);
	CHECK_EQ_INT(lsm_rdel_covering(&s, "d", 1), 0);
	CHECK_EQ_INT(lsm_rdel_covering(&s, "", 0), 0);
	lsm_rdel_free(&s);
}
