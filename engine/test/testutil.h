/*
 * testutil.h — the engine's tiny test framework.
 *
 * A test file defines tests with TEST(name) { ... } and includes this header
 * once; the header supplies main().  Each test runs in order; CHECK* record a
 * failure with file:line and return from the test.  main() prints one line
 * per test and ends with the line "N passed, N failed"; it exits non-zero
 * when any test failed.  `./test_binary name` runs only the tests whose
 * name contains `name`.
 *
 * Helpers: a per-process temporary directory (test_tmpdir), a seeded
 * xorshift RNG, and rm -rf of a directory.
 */
#ifndef LSM_TESTUTIL_H
#define LSM_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef void (*test_fn)(void);
struct test_case { const char *name; test_fn fn; };

#define TEST_MAX 256
static struct test_case test_cases[TEST_MAX];
static int test_ncases;
static int test_failed_flag;

#define TEST(name) \
	static void test_##name(void); \
	__attribute__((constructor)) static void register_##name(void) \
	{ if (test_ncases < TEST_MAX) test_cases[test_ncases++] = (struct test_case){#name, test_##name}; } \
	static void test_##name(void)

#define TEST_FAIL_AT(fmt, ...) do { \
	fprintf(stderr, "    %s:%d: " fmt "\n", __FILE__, __LINE__, ##__VA_ARGS__); \
	test_failed_flag = 1; \
} while (0)

#define CHECK(cond) do { if (!(cond)) { TEST_FAIL_AT("CHECK(%s) failed", #cond); return; } } while (0)
#define CHECK_MSG(cond, fmt, ...) do { if (!(cond)) { TEST_FAIL_AT("CHECK(%s) failed: " fmt, #cond, ##__VA_ARGS__); return; } } while (0)
#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { TEST_FAIL_AT("%s == %s failed: %lld != %lld", #a, #b, _a, _b); return; } } while (0)
#define CHECK_EQ_U64(a, b) do { unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b); \
	if (_a != _b) { TEST_FAIL_AT("%s == %s failed: 0x%llx != 0x%llx", #a, #b, _a, _b); return; } } while (0)
/* An LSM_* call that must return LSM_OK. */
#define CHECK_OK(expr) do { int _rc = (expr); \
	if (_rc != 0) { TEST_FAIL_AT("%s returned %d (%s)", #expr, _rc, lsm_strerror(_rc)); return; } } while (0)
#define CHECK_MEM(a, alen, b, blen) do { size_t _al = (alen), _bl = (blen); \
	if (_al != _bl || memcmp((a), (b), _al) != 0) { TEST_FAIL_AT("bytes %s != %s (len %zu vs %zu)", #a, #b, _al, _bl); return; } } while (0)

/* ---- RNG: xorshift64*, never 0 state */
typedef struct test_rng { uint64_t s; } test_rng;
static inline void test_rng_seed(test_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 1; }
static inline uint64_t test_rng_next(test_rng *r)
{
	r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1Dull;
}
static inline uint64_t test_rng_uniform(test_rng *r, uint64_t n) { return n ? test_rng_next(r) % n : 0; }
static inline void test_rng_fill(test_rng *r, void *buf, size_t n)
{
	unsigned char *p = buf;
	for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(test_rng_next(r) >> 56);
}

/* ---- temporary directories */
static char test_tmp_root[256];

__attribute__((unused)) static int test_rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0) return 0;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		if (d) {
			struct dirent *e;
			char sub[1024];
			while ((e = readdir(d)) != NULL) {
				if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
				snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
				test_rm_rf(sub);
			}
			closedir(d);
		}
		return rmdir(path);
	}
	return unlink(path);
}

/* A fresh, empty directory path for this test (under the process's root). */
__attribute__((unused)) static const char *test_tmpdir(const char *name)
{
	static char path[512];
	if (!test_tmp_root[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(test_tmp_root, sizeof test_tmp_root, "%s/lsmtest.%d", base ? base : "/tmp", (int)getpid());
		mkdir(test_tmp_root, 0700);
	}
	snprintf(path, sizeof path, "%s/%s", test_tmp_root, name);
	test_rm_rf(path);
	mkdir(path, 0700);
	return path;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < test_ncases; i++) {
		if (argc > 1 && !strstr(test_cases[i].name, argv[1])) continue;
		test_failed_flag = 0;
		test_cases[i].fn();
		if (test_failed_flag) { failed++; printf("FAIL %s\n", test_cases[i].name); }
		else { passed++; printf("ok   %s\n", test_cases[i].name); }
	}
	if (test_tmp_root[0] && !failed) test_rm_rf(test_tmp_root);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif
