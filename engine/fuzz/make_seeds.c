/*
 * make_seeds.c — writes the fuzzers' seed corpora (fuzz/corpus/<target>/)
 * from real engine output: a database written through the public API
 * gives WAL segments, SSTables and a manifest; blocks, filters, varints
 * and LZ4 streams come from the engine's own encoders.  Each seed starts
 * with the target's mode byte (see each fuzz_*.c).  Run by
 * `make fuzz-seeds`; the corpora are kept in the repository, so this runs
 * only when a format changes.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lsm.h"
#include "bloom.h"
#include "coding.h"
#include "format.h"
#include "lz4block.h"

static const char *out_dir;
static int nseeds;

static void die(const char *what, int rc)
{
	fprintf(stderr, "make_seeds: %s: %s\n", what, rc ? lsm_strerror(rc) : strerror(errno));
	exit(1);
}

static void put_seed(const char *target, const char *name, int mode,
                     const uint8_t *data, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", out_dir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
	if ((f = fopen(path, "wb")) == NULL)
		die(path, 0);
	if (mode >= 0)
		fputc(mode, f);
	if (len && fwrite(data, 1, len, f) != len)
		die(path, 0);
	fclose(f);
	nseeds++;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0)
		die(path, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
		die(path, 0);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* A small database: some flushed into SSTables, the rest left in the WAL. */
static void write_db(const char *dir, int compression, int bloom_bits)
{
	lsm_options o;
	lsm_db *db;
	char key[32], val[64];
	int rc;

	lsm_options_init(&o);
	o.block_size = 256;
	o.compression = compression;
	o.bloom_bits_per_key = bloom_bits;
	o.background_thread = 0;
	if ((rc = lsm_open(&o, dir, &db)) != LSM_OK)
		die("lsm_open", rc);
	for (int i = 0; i < 300; i++) {
		int kl = snprintf(key, sizeof key, "key%06d", i * 7 % 300);
		int vl = snprintf(val, sizeof val, "value-%d-%s", i, i % 3 ? "aaaaaaaaaaaa" : "b");

		if ((rc = lsm_put(db, NULL, key, (size_t)kl, val, (size_t)vl)) != LSM_OK)
			die("lsm_put", rc);
		if (i % 17 == 0 && (rc = lsm_delete(db, NULL, key, (size_t)kl)) != LSM_OK)
			die("lsm_delete", rc);
	}
	if ((rc = lsm_delete_range(db, NULL, "key000100", 9, "key000120", 9)) != LSM_OK)
		die("lsm_delete_range", rc);
	if ((rc = lsm_flush(db)) != LSM_OK)
		die("lsm_flush", rc);
	for (int i = 0; i < 40; i++) {
		lsm_batch *b;
		int kl = snprintf(key, sizeof key, "wal%04d", i);

		if ((rc = lsm_batch_create(&b)) != LSM_OK)
			die("lsm_batch_create", rc);
		lsm_batch_put(b, key, (size_t)kl, "v", 1);
		if (i % 5 == 0)
			lsm_batch_delete(b, "key000003", 9);
		if (i % 9 == 0)
			lsm_batch_delete_range(b, "key1", 4, "key2", 4);
		if ((rc = lsm_write(db, NULL, b)) != LSM_OK)
			die("lsm_write", rc);
		lsm_batch_destroy(b);
	}
	if ((rc = lsm_close(db)) != LSM_OK)
		die("lsm_close", rc);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Each record's payload of a manifest: one encoded edit per seed. */
static void put_edits(const uint8_t *m, size_t len, const char *tag)
{
	char name[160];
	size_t off = 0;
	int i = 0;

	while (len - off >= 12) {
		uint32_t plen = lsm_get_fixed32(m + off + 4);

		if (plen > len - off - 12)
			break;
		snprintf(name, sizeof name, "%s-edit%d", tag, i++);
		put_seed("manifest", name, 1, m + off + 12, plen);
		off += 12 + (size_t)plen;
	}
}

static void harvest_db(const char *dir, const char *tag)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[1024], name[128];
	int nsst = 0;

	if (d == NULL)
		die(dir, 0);
	while ((e = readdir(d)) != NULL) {
		uint8_t *buf;
		size_t len;

		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (ends_with(e->d_name, ".wal")) {
			buf = slurp(path, &len);
			if (len <= 32)
				goto next;       /* the empty segment opened last */
			snprintf(name, sizeof name, "%s-wal", tag);
			put_seed("wal", name, 0, buf, len);
			snprintf(name, sizeof name, "%s-wal-resealed-tail", tag);
			put_seed("wal", name, 3, buf, len);
		} else if (ends_with(e->d_name, ".sst") && nsst++ == 0) {
			buf = slurp(path, &len);
			snprintf(name, sizeof name, "%s-sst", tag);
			put_seed("table", name, 0, buf, len);
			snprintf(name, sizeof name, "%s-sst-resealed", tag);
			put_seed("table", name, 1, buf, len);
		} else if (strncmp(e->d_name, "MANIFEST", 8) == 0) {
			buf = slurp(path, &len);
			snprintf(name, sizeof name, "%s-manifest", tag);
			put_seed("manifest", name, 0, buf, len);
			snprintf(name, sizeof name, "%s-manifest-resealed", tag);
			put_seed("manifest", name, 2, buf, len);
			put_edits(buf, len, tag);
		} else
			continue;
next:
		free(buf);
	}
	closedir(d);
}

static void block_seeds(void)
{
	lsm_block_builder b;
	const uint8_t *data;
	uint64_t hashes[64];
	uint8_t filter[256];
	size_t len;
	char key[40];

	lsm_block_builder_init(&b, 4);
	for (int i = 0; i < 40; i++) {
		int kl = snprintf(key, sizeof key, "user%04d", i * 3);

		lsm_put_fixed64((uint8_t *)key + kl, (uint64_t)(1000 - i) << 8 | 1);
		lsm_block_builder_add(&b, key, (size_t)kl + 8, "val", 3);
	}
	lsm_block_builder_finish(&b, &data, &len);
	put_seed("block", "ikeys", 0, data, len);
	lsm_block_builder_reset(&b);
	lsm_block_builder_add(&b, "lsm.filter", 10, "\x10\x20", 2);
	lsm_block_builder_add(&b, "lsm.properties", 14, "\x30\x40", 2);
	lsm_block_builder_finish(&b, &data, &len);
	put_seed("block", "names", 1, data, len);
	lsm_block_builder_free(&b);
	for (int i = 0; i < 64; i++)
		hashes[i] = (uint64_t)i * 0x9e3779b97f4a7c15ull;
	len = lsm_bloom_filter_size(20, 10);
	if (len <= sizeof filter) {
		lsm_bloom_build(hashes, 20, 10, filter);
		put_seed("block", "filter", 2, filter, len);
	}
	put_seed("block", "hashes", 2, (const uint8_t *)hashes, sizeof hashes);
}

static void codec_seeds(void)
{
	static const char text[] =
	    "lsm_am lsm_am lsm_am: rows, rows, rows and more rows; the same words "
	    "again and again so that LZ4 finds matches, matches, matches.";
	uint64_t vals[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX,
	                   (uint64_t)UINT32_MAX + 1, UINT64_MAX};
	uint8_t buf[512], c[512];
	size_t n = 0, clen = 0;

	for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
		n += lsm_encode_varint64(buf + n, vals[i]);
	put_seed("varint", "values", -1, buf, n);
	c[0] = (uint8_t)sizeof text;
	c[1] = 0;
	if (lsm_lz4_compress(text, sizeof text, c + 2, sizeof c - 2, &clen) != LSM_OK)
		die("lsm_lz4_compress", LSM_INVALID);
	put_seed("lz4", "text", -1, c, clen + 2);
	put_seed("lz4", "raw-text", -1, (const uint8_t *)text, sizeof text);
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/lsm_seeds.XXXXXX", cmd[600], dir[300];
	const char *tmp;

	if (argc != 2) {
		fprintf(stderr, "usage: make_seeds OUTDIR\n");
		return 2;
	}
	out_dir = argv[1];
	mkdir(out_dir, 0755);
	if ((tmp = mkdtemp(tmpl)) == NULL)
		die("mkdtemp", 0);
	snprintf(dir, sizeof dir, "%s/lz4", tmp);
	write_db(dir, 1, 10);
	harvest_db(dir, "lz4");
	snprintf(dir, sizeof dir, "%s/plain", tmp);
	write_db(dir, 0, 0);
	harvest_db(dir, "plain");
	block_seeds();
	codec_seeds();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		return 1;
	printf("%d seeds in %s\n", nseeds, out_dir);
	return 0;
}
