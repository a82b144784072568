/*
 * lsmctl.c — inspect an engine database without changing it.
 *
 *   lsmctl dump-wal FILE     every record of a WAL segment: sequence,
 *                            count, and each entry (key, value size)
 *   lsmctl verify DIR        checks every WAL segment (CRCs, record
 *                            structure); on damage prints the file and
 *                            offset and exits 1
 *   lsmctl stats DIR         segments, records, entries, bytes
 *
 * Nothing here writes: segments are read with LSM_WAL_READ_ONLY, so a
 * torn tail is reported, not cut.  Exit codes: 0 clean, 1 damage found,
 * 2 usage or I/O error.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbint.h"

static void print_bytes(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < 64; i++)
		if (isprint(p[i]) && p[i] != '\\')
			putchar(p[i]);
		else
			printf("\\x%02x", p[i]);
	if (n > 64)
		printf("...(%zu bytes)", n);
}

static int dump_entry(void *arg, uint64_t seq, const lsm_batch_entry *e)
{
	(void)arg;
	printf("    seq %" PRIu64 " %s ", seq, e->type == LSM_TYPE_PUT ? "put" : "del");
	print_bytes(e->key, e->klen);
	if (e->type == LSM_TYPE_PUT)
		printf(" value %u bytes", e->vlen);
	printf("\n");
	return LSM_OK;
}

typedef struct wal_totals {
	int verbose;
	uint64_t records, entries, bytes;
} wal_totals;

static int visit_record(void *arg, const uint8_t *rep, size_t len)
{
	wal_totals *t = arg;
	uint64_t seq = lsm_batch_rep_seq(rep);
	uint32_t count = lsm_batch_rep_count(rep);

	t->records++;
	t->entries += count;
	t->bytes += len;
	if (t->verbose) {
		printf("record seq %" PRIu64 " count %u bytes %zu\n", seq, count, len);
		lsm_batch_rep_iterate(rep, len, seq, dump_entry, NULL);
	}
	return LSM_OK;
}

/* Replays one segment read-only; prints damage; returns 0 clean, 1 damaged,
 * 2 error. */
static int check_segment(const char *path, uint64_t seg, int tail_ok, wal_totals *t)
{
	uint64_t records = 0, dropped = 0;
	int64_t bad = -1;
	int rc;

	rc = lsm_wal_replay_segment(lsm_env_posix(), path, seg,
	                            LSM_WAL_READ_ONLY | (tail_ok ? LSM_WAL_TAIL_OK : 0),
	                            visit_record, t, &records, &dropped, &bad);
	if (rc == LSM_CORRUPTION) {
		printf("%s: corrupt at offset %" PRId64 " (after %" PRIu64 " good records)\n",
		       path, bad, records);
		return 1;
	}
	if (rc != LSM_OK) {
		printf("%s: %s\n", path, lsm_strerror(rc));
		return 2;
	}
	if (dropped)
		printf("%s: torn tail at offset %" PRId64 ": %" PRIu64 " bytes would be cut at open\n",
		       path, bad, dropped);
	return 0;
}

static int parse_seg_from_path(const char *path, uint64_t *seg)
{
	const char *base = strrchr(path, '/');

	return lsm_wal_parse_name(base ? base + 1 : path, seg);
}

static int cmd_dump_wal(const char *path)
{
	wal_totals t = {1, 0, 0, 0};
	uint64_t seg;

	if (!parse_seg_from_path(path, &seg)) {
		fprintf(stderr, "%s: not a WAL segment name (NNNNNNNNNNNNNNNN.wal)\n", path);
		return 2;
	}
	return check_segment(path, seg, 1, &t);
}

typedef struct seg_list {
	uint64_t v[4096];
	size_t n;
} seg_list;

static int collect(void *arg, const char *name)
{
	seg_list *l = arg;
	uint64_t seg;

	if (lsm_wal_parse_name(name, &seg) && l->n < 4096)
		l->v[l->n++] = seg;
	return LSM_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int walk_dir(const char *dir, wal_totals *t, size_t *nsegs)
{
	static seg_list l;
	char path[4096];
	size_t i;
	int rc, worst = 0;

	l.n = 0;
	rc = lsm_env_posix()->list_dir(lsm_env_posix(), dir, collect, &l);
	if (rc != LSM_OK) {
		fprintf(stderr, "%s: %s\n", dir, lsm_strerror(rc));
		return 2;
	}
	qsort(l.v, l.n, sizeof l.v[0], cmp_u64);
	for (i = 0; i < l.n; i++) {
		lsm_wal_path(dir, l.v[i], path, sizeof path);
		rc = check_segment(path, l.v[i], i + 1 == l.n, t);
		if (rc > worst)
			worst = rc;
	}
	*nsegs = l.n;
	return worst;
}

static int cmd_verify(const char *dir)
{
	wal_totals t = {0, 0, 0, 0};
	size_t n;
	int rc = walk_dir(dir, &t, &n);

	if (rc == 0)
		printf("%s: OK: %zu WAL segments, %" PRIu64 " records, %" PRIu64 " entries\n",
		       dir, n, t.records, t.entries);
	return rc;
}

static int cmd_stats(const char *dir)
{
	wal_totals t = {0, 0, 0, 0};
	size_t n;
	int rc = walk_dir(dir, &t, &n);

	printf("wal_segments   %zu\nwal_records    %" PRIu64 "\nwal_entries    %" PRIu64
	       "\nwal_payload    %" PRIu64 " bytes\n", n, t.records, t.entries, t.bytes);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "dump-wal") == 0)
		return cmd_dump_wal(argv[2]);
	if (argc == 3 && strcmp(argv[1], "verify") == 0)
		return cmd_verify(argv[2]);
	if (argc == 3 && strcmp(argv[1], "stats") == 0)
		return cmd_stats(argv[2]);
	fprintf(stderr, "usage: lsmctl dump-wal FILE | verify DIR | stats DIR\n");
	return 2;
}
