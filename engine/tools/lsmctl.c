/*
 * lsmctl.c — inspect an engine database without changing it.
 *
 *   lsmctl dump-wal FILE       every record of a WAL segment: sequence,
 *                              count, and each entry (key, value size)
 *   lsmctl dump-sst FILE       an SSTable's properties, then every point
 *                              entry and range deletion, one per line
 *   lsmctl dump-manifest DIR   the manifest CURRENT names: every edit, then
 *                              the version they build, level by level
 *   lsmctl verify DIR          CURRENT and the whole manifest; every table
 *                              the version lists (every block's CRC, key
 *                              order, size and key range against the
 *                              manifest, no overlap in L1+); every WAL
 *                              segment at or after log_number, and that
 *                              the WAL continues where last_sequence ends;
 *                              files the version does not account for
 *                              (unlisted tables, old logs) are warnings
 *   lsmctl stats DIR           WAL segments, records, entries, bytes; the
 *                              manifest's scalars and files/bytes per level
 *
 * Nothing here writes: the db is never opened with lsm_open (recovery
 * would replay the WAL and write); tables, the manifest and WAL segments
 * (LSM_WAL_READ_ONLY, so a torn tail is reported, not cut) are read with
 * their own readers, through the posix env opened read-only.
 *
 * Reports.  Each finding is one line "FILE: offset N: message" (without
 * "offset N" when no byte position applies, e.g. a key range that differs
 * from the manifest's); warnings say "warning:" and do not fail.  verify
 * and stats print findings on stdout (they are the report); the dump
 * commands print them on stderr, keeping stdout for the dump.  verify
 * reports every problem it finds, not just the first.
 *
 * Exit codes: 0 clean, 1 damage found, 2 usage or I/O error.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbint.h"
#include "logrec.h"

#define PATH_LEN 4096
#define ALL_SCALARS (LSM_EDIT_LOG_NUMBER | LSM_EDIT_NEXT_FILE | LSM_EDIT_LAST_SEQUENCE)

static lsm_env *env;

/* ------------------------------------------------------------ output */

/* Escapes the first max bytes of p[0..n) into buf (printable bytes as
 * they are, others and '\\' '"' as \xNN; "..." when cut); returns buf. */
static char *esc(char *buf, const uint8_t *p, size_t n, size_t max)
{
	size_t i, o = 0;

	for (i = 0; i < n && i < max; i++)
		if (isprint(p[i]) && p[i] != '\\' && p[i] != '"')
			buf[o++] = (char)p[i];
		else
			o += (size_t)sprintf(buf + o, "\\x%02x", p[i]);
	if (n > max)
		o += (size_t)sprintf(buf + o, "...");
	buf[o] = '\0';
	return buf;
}

#define ESC_LEN(max) (4 * (max) + 4)
#define KEY_MAX 64
#define PREVIEW_MAX 24
#define IKEY_LEN (ESC_LEN(KEY_MAX) + 64)

static const char *type_name(int type)
{
	switch (type) {
	case LSM_TYPE_PUT: return "PUT";
	case LSM_TYPE_DELETE: return "DEL";
	case LSM_TYPE_RANGE_DELETE: return "RANGE_DEL";
	default: return "BAD_TYPE";
	}
}

/* An internal key as  "key" seq N TYPE  (seq "max" for the sentinel). */
static char *fmt_ikey(char *buf, const uint8_t *key, size_t klen, uint64_t trailer)
{
	char k[ESC_LEN(KEY_MAX)], seq[24];

	if (lsm_trailer_seq(trailer) == LSM_MAX_SEQUENCE)
		snprintf(seq, sizeof seq, "max");
	else
		snprintf(seq, sizeof seq, "%" PRIu64, lsm_trailer_seq(trailer));
	snprintf(buf, IKEY_LEN, "\"%s\" seq %s %s", esc(k, key, klen, KEY_MAX), seq,
	         type_name(lsm_trailer_type(trailer)));
	return buf;
}

static char *fmt_ref(char *buf, const lsm_ikey_ref *r)
{
	return fmt_ikey(buf, r->key, r->len, r->trailer);
}

/* ------------------------------------------------------------ findings */

enum { PROBLEM, WARNING, ERROR };

typedef struct report {
	FILE *out;                    /* where problems and warnings go */
	unsigned problems, warnings, errors;
} report;

/* One finding: "path: offset N: [warning: ]message" (off < 0: no offset).
 * Problems are damage, warnings are not, errors are I/O failures (stderr). */
static void note(report *r, int kind, const char *path, int64_t off, const char *fmt, ...)
{
	FILE *f = kind == ERROR ? stderr : r->out;
	va_list ap;

	if (kind == PROBLEM)
		r->problems++;
	else if (kind == WARNING)
		r->warnings++;
	else
		r->errors++;
	fprintf(f, "%s: ", path);
	if (off >= 0)
		fprintf(f, "offset %" PRId64 ": ", off);
	if (kind == WARNING)
		fprintf(f, "warning: ");
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

/* Corruption is a problem; anything else (a missing file, I/O) an error. */
static void note_rc(report *r, int rc, const char *path, int64_t off, const char *msg)
{
	note(r, rc == LSM_CORRUPTION ? PROBLEM : ERROR, path, off,
	     "%s", msg && msg[0] ? msg : lsm_strerror(rc));
}

static int exit_code(const report *r)
{
	return r->problems ? 1 : r->errors ? 2 : 0;
}

/* ------------------------------------------------------------ directory */

typedef struct name_list {
	char **v;
	size_t n, cap;
} name_list;

static int add_name(void *arg, const char *name)
{
	name_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **v = realloc(l->v, cap * sizeof *v);

		if (v == NULL)
			return LSM_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	if ((l->v[l->n] = strdup(name)) == NULL)
		return LSM_NOMEM;
	l->n++;
	return LSM_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* The entries of dir, sorted; on failure prints why and returns non-zero. */
static int list_names(const char *dir, name_list *l)
{
	int rc;

	memset(l, 0, sizeof *l);
	rc = env->list_dir(env, dir, add_name, l);
	if (rc != LSM_OK) {
		fprintf(stderr, "%s: cannot list: %s\n", dir, lsm_strerror(rc));
		free_names(l);
		return rc;
	}
	if (l->n > 1)
		qsort(l->v, l->n, sizeof l->v[0], cmp_str);
	return LSM_OK;
}

static void join(char *out, const char *dir, const char *name)
{
	snprintf(out, PATH_LEN, "%s/%s", dir, name);
}

/* The size of path (LSM_NOTFOUND when it does not exist). */
static int file_size(const char *path, uint64_t *size)
{
	lsm_file *f;
	int rc = env->open(env, path, LSM_OPEN_READ, &f);

	if (rc != LSM_OK)
		return rc;
	rc = env->size(f, size);
	env->close(f);
	return rc;
}

/* ------------------------------------------------------------ WAL */

static int dump_entry(void *arg, uint64_t seq, const lsm_batch_entry *e)
{
	char k[ESC_LEN(KEY_MAX)];
	int put = e->type == LSM_TYPE_PUT, rdel = e->type == LSM_TYPE_RANGE_DELETE;

	(void)arg;
	printf("    seq %" PRIu64 " %s %s", seq, put ? "put" : rdel ? "range_del" : "del",
	       esc(k, e->key, e->klen, KEY_MAX));
	if (put)
		printf(" value %u bytes", e->vlen);
	if (rdel)
		printf(" end %s", esc(k, e->val, e->vlen, KEY_MAX));
	printf("\n");
	return LSM_OK;
}

typedef struct wal_totals {
	int verbose;
	uint64_t segments, records, entries, bytes;
	uint64_t seg;                 /* the segment being read */
	/* the first record holding a sequence above `after` (the manifest's
	 * last_sequence): its first sequence and segment (first_seq 0: none) */
	uint64_t after, first_seq, first_seg;
} wal_totals;

static int visit_record(void *arg, const uint8_t *rep, size_t len)
{
	wal_totals *t = arg;
	uint64_t seq = lsm_batch_rep_seq(rep);
	uint32_t count = lsm_batch_rep_count(rep);

	t->records++;
	t->entries += count;
	t->bytes += len;
	if (t->first_seq == 0 && count > 0 && seq + count - 1 > t->after) {
		t->first_seq = seq;
		t->first_seg = t->seg;
	}
	if (t->verbose) {
		printf("record seq %" PRIu64 " count %u bytes %zu\n", seq, count, len);
		lsm_batch_rep_iterate(rep, len, seq, dump_entry, NULL);
	}
	return LSM_OK;
}

/* Replays one segment read-only and reports damage or a torn tail. */
static void check_segment(const char *path, uint64_t seg, int tail_ok, wal_totals *t,
                          report *r)
{
	uint64_t records = 0, dropped = 0;
	int64_t bad = -1;
	int rc;

	t->segments++;
	t->seg = seg;
	rc = lsm_wal_replay_segment(env, path, seg,
	                            LSM_WAL_READ_ONLY | (tail_ok ? LSM_WAL_TAIL_OK : 0),
	                            visit_record, t, &records, &dropped, &bad);
	if (rc == LSM_CORRUPTION)
		note(r, PROBLEM, path, bad, "corrupt WAL record (after %" PRIu64 " good records)",
		     records);
	else if (rc != LSM_OK)
		note(r, ERROR, path, -1, "%s", lsm_strerror(rc));
	else if (dropped)
		note(r, WARNING, path, bad, "torn tail: %" PRIu64 " bytes would be cut at open",
		     dropped);
}

static int cmd_dump_wal(const char *path)
{
	wal_totals t = {.verbose = 1};
	report r = {stderr, 0, 0, 0};
	const char *base = strrchr(path, '/');
	uint64_t seg;

	if (!lsm_wal_parse_name(base ? base + 1 : path, &seg)) {
		fprintf(stderr, "%s: not a WAL segment name (NNNNNNNNNNNNNNNN.wal)\n", path);
		return 2;
	}
	check_segment(path, seg, 1, &t, &r);
	return exit_code(&r);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Checks every segment of dir numbered >= log_number, oldest first (only
 * the newest may have a torn tail). */
static void check_wal(const char *dir, const name_list *names, uint64_t log_number,
                      wal_totals *t, report *r)
{
	uint64_t *segs = malloc((names->n + 1) * sizeof *segs), seg;
	char path[PATH_LEN];
	size_t i, n = 0;

	if (segs == NULL) {
		note(r, ERROR, dir, -1, "%s", lsm_strerror(LSM_NOMEM));
		return;
	}
	for (i = 0; i < names->n; i++)
		if (lsm_wal_parse_name(names->v[i], &seg) && seg >= log_number)
			segs[n++] = seg;
	qsort(segs, n, sizeof segs[0], cmp_u64);
	for (i = 0; i < n; i++) {
		lsm_wal_path(dir, segs[i], path, sizeof path);
		check_segment(path, segs[i], i + 1 == n, t, r);
	}
	free(segs);
}

/* ------------------------------------------------------------ dump-sst */

static void print_props(const char *path, uint64_t size, const lsm_table_props *p)
{
	char a[IKEY_LEN], b[IKEY_LEN];

	printf("file             %s (%" PRIu64 " bytes)\nformat_version   %u\n"
	       "entries          %" PRIu64 "\ndeletions        %" PRIu64 "\n"
	       "range_deletions  %" PRIu64 "\ndata_blocks      %" PRIu64 " (%" PRIu64
	       " bytes)\nfilter_bytes     %" PRIu64 "\nraw_key_bytes    %" PRIu64
	       "\nraw_value_bytes  %" PRIu64 "\n", path, size, p->format_version, p->entries,
	       p->deletions, p->range_deletions, p->data_blocks, p->data_bytes,
	       p->filter_bytes, p->raw_key_bytes, p->raw_value_bytes);
	if (!p->has_bounds) {
		printf("smallest         (empty table)\nlargest          (empty table)\n");
		return;
	}
	printf("smallest         %s\n",
	       fmt_ikey(a, p->smallest_key, p->smallest_klen, p->smallest_trailer));
	printf("largest          %s\n",
	       fmt_ikey(b, p->largest_key, p->largest_klen, p->largest_trailer));
	printf("seq_range        %" PRIu64 " .. %" PRIu64 "\n", p->smallest_seq, p->largest_seq);
}

/* One line per entry:  "key" seq N TYPE vlen N "preview"  (a range
 * deletion shows its end key instead of a value). */
static int dump_sst_entry(void *arg, const uint8_t *key, size_t klen, uint64_t trailer,
                          const uint8_t *val, size_t vlen)
{
	char k[IKEY_LEN], v[ESC_LEN(KEY_MAX)];

	(void)arg;
	fmt_ikey(k, key, klen, trailer);
	if (lsm_trailer_type(trailer) == LSM_TYPE_RANGE_DELETE)
		printf("%s end \"%s\"\n", k, esc(v, val, vlen, KEY_MAX));
	else if (lsm_trailer_type(trailer) == LSM_TYPE_PUT)
		printf("%s vlen %zu \"%s\"\n", k, vlen, esc(v, val, vlen, PREVIEW_MAX));
	else
		printf("%s\n", k);
	return LSM_OK;
}

static int cmd_dump_sst(const char *path)
{
	report r = {stderr, 0, 0, 0};
	lsm_table_verify_info info;
	lsm_table *t;
	int rc;

	rc = lsm_table_open(env, path, 0, NULL, NULL, &t);
	if (rc == LSM_OK) {
		print_props(path, lsm_table_file_size(t), lsm_table_properties(t));
		lsm_table_close(t);
		fflush(stdout);
	}
	/* verify also finds the offset when the open failed */
	rc = lsm_table_verify(env, path, rc == LSM_OK ? dump_sst_entry : NULL, NULL, &info);
	fflush(stdout);
	if (rc != LSM_OK) {
		note_rc(&r, rc, path, rc == LSM_CORRUPTION ? (int64_t)info.bad_offset : -1,
		        info.message);
		return exit_code(&r);
	}
	printf("%" PRIu64 " entries, %" PRIu64 " range deletions, %" PRIu64
	       " data blocks: OK\n", info.entries, info.range_deletions, info.data_blocks);
	return 0;
}

/* ------------------------------------------------------------ manifest */

/* Replaying a manifest edit by edit into a state, printing when verbose. */
typedef struct replay {
	lsm_manifest_state st;
	uint64_t number;              /* MANIFEST-number */
	char path[PATH_LEN];
	int verbose;
	int refused;                  /* the last edit did not apply */
	uint64_t pos;                 /* where the next record starts */
	uint64_t dropped;             /* torn tail bytes */
} replay;

static void print_file(const char *prefix, const lsm_file_meta *m)
{
	char a[IKEY_LEN], b[IKEY_LEN];

	printf("%s%06" PRIu64 ".sst %" PRIu64 " bytes [%s .. %s] seqs %" PRIu64 "..%" PRIu64
	       " entries %" PRIu64 " range_dels %" PRIu64 "\n", prefix, m->number, m->size,
	       fmt_ref(a, &m->smallest), fmt_ref(b, &m->largest), m->smallest_seq,
	       m->largest_seq, m->entries, m->range_dels);
}

static void print_edit(const replay *rp, const lsm_version_edit *e, uint64_t end)
{
	char k[IKEY_LEN], lvl[32];
	size_t i;

	printf("edit %" PRIu64 " at offset %" PRIu64 " (%" PRIu64 " bytes)\n",
	       rp->st.edits + 1, rp->pos, end - rp->pos);
	if (e->has & LSM_EDIT_LOG_NUMBER)
		printf("  log_number %" PRIu64 "\n", e->log_number);
	if (e->has & LSM_EDIT_NEXT_FILE)
		printf("  next_file %" PRIu64 "\n", e->next_file_number);
	if (e->has & LSM_EDIT_LAST_SEQUENCE)
		printf("  last_sequence %" PRIu64 "\n", e->last_sequence);
	for (i = 0; i < LSM_MAX_LEVELS; i++)
		if (e->compact_mask & (1u << i))
			printf("  compact_pointer L%zu %s\n", i, fmt_ref(k, &e->compact_ptr[i]));
	for (i = 0; i < e->ndeleted; i++)
		printf("  delete L%d %06" PRIu64 ".sst\n", e->deleted[i].level,
		       e->deleted[i].number);
	for (i = 0; i < e->nadded; i++) {
		snprintf(lvl, sizeof lvl, "  add L%d ", e->added[i]->level);
		print_file(lvl, e->added[i]);
	}
}

static int replay_edit(void *arg, const lsm_version_edit *e, uint64_t end)
{
	replay *rp = arg;
	int rc;

	if (rp->verbose)
		print_edit(rp, e, end);
	rc = lsm_manifest_state_apply(&rp->st, e);
	if (rc != LSM_OK) {
		rp->refused = 1;
		return rc;
	}
	rp->st.edits++;
	rp->st.offset = rp->pos = end;
	return LSM_OK;
}

/* What the manifest record at off looks like (the reader stopped there). */
static const char *record_state(const char *path, uint64_t off)
{
	const char *why = "unreadable record";
	uint8_t *buf = NULL;
	uint64_t size = 0;
	uint32_t len = 0;
	size_t got = 0;
	lsm_file *f;

	if (env->open(env, path, LSM_OPEN_READ, &f) != LSM_OK)
		return why;
	if (env->size(f, &size) == LSM_OK && off < size && size < SIZE_MAX &&
	    (buf = malloc((size_t)size)) != NULL &&
	    env->read(f, 0, buf, (size_t)size, &got) == LSM_OK && off < got) {
		switch (lsm_logrec_check(buf, got, (size_t)off, &len)) {
		case LSM_LOGREC_OK:
			why = "the record does not decode as a version edit";
			break;
		case LSM_LOGREC_BAD_HEADER:
			why = "bad record header checksum";
			break;
		case LSM_LOGREC_BAD_PAYLOAD:
			why = "bad record payload checksum";
			break;
		default:
			why = "incomplete record";
		}
	}
	free(buf);
	env->close(f);
	return why;
}

/* Reads CURRENT; 0 and *number, or reports why not (missing: only when
 * tables or manifests exist, else a warning) and returns non-zero. */
static int read_current(const char *dir, const name_list *names, uint64_t *number,
                        report *r)
{
	char path[PATH_LEN];
	uint64_t n;
	size_t i, files = 0;
	int rc;

	join(path, dir, LSM_CURRENT_NAME);
	rc = lsm_current_read(env, dir, number);
	if (rc == LSM_OK)
		return 0;
	if (rc == LSM_CORRUPTION) {
		note(r, PROBLEM, path, 0, "not a single line \"MANIFEST-NNNNNN\"");
		return 1;
	}
	if (rc != LSM_NOTFOUND) {
		note(r, ERROR, path, -1, "%s", lsm_strerror(rc));
		return 1;
	}
	for (i = 0; i < names->n; i++)
		files += lsm_sst_parse_name(names->v[i], &n);
	if (files)
		note(r, PROBLEM, path, -1, "missing, but the directory holds %zu tables (an open "
		     "would start an empty manifest and drop them)", files);
	else
		note(r, WARNING, path, -1, "missing: no manifest named yet (WAL segments only, "
		     "or a creation that crashed)");
	return 1;
}

/* Replays the whole manifest CURRENT names into rp->st (initialised here;
 * the caller frees it).  0 when it replayed cleanly, else reports why. */
static int replay_manifest(const char *dir, const name_list *names, int verbose,
                           replay *rp, report *r)
{
	uint64_t end = 0;
	int rc;

	memset(rp, 0, sizeof *rp);
	rp->verbose = verbose;
	if ((rc = lsm_manifest_state_init(&rp->st)) != LSM_OK) {
		note(r, ERROR, dir, -1, "%s", lsm_strerror(rc));
		return 1;
	}
	if (read_current(dir, names, &rp->number, r))
		return 1;
	lsm_manifest_path(dir, rp->number, rp->path, sizeof rp->path);
	rp->st.manifest_number = rp->number;
	if (verbose)
		printf("CURRENT names MANIFEST-%06" PRIu64 "\n", rp->number);
	rc = lsm_manifest_read(env, dir, rp->number, 0, LSM_MANIFEST_ALL, replay_edit, rp,
	                       &end, &rp->dropped);
	if (rc == LSM_NOTFOUND) {
		note(r, PROBLEM, rp->path, -1, "missing (CURRENT names it)");
		return 1;
	}
	if (rc != LSM_OK) {
		if (rc != LSM_CORRUPTION)
			note(r, ERROR, rp->path, -1, "%s", lsm_strerror(rc));
		else if (rp->refused)
			note(r, PROBLEM, rp->path, (int64_t)rp->pos, "edit %" PRIu64 " does not "
			     "apply to the version (a missing file deleted, a file added twice, "
			     "or an overlap in L1+)", rp->st.edits + 1);
		else {
			const char *why = record_state(rp->path, rp->pos);

			note(r, PROBLEM, rp->path, (int64_t)rp->pos, "edit %" PRIu64 ": %s%s",
			     rp->st.edits + 1, why,
			     strstr(why, "checksum") ? "; valid records follow" : "");
		}
		return 1;
	}
	if (rp->dropped)
		note(r, WARNING, rp->path, (int64_t)end, "torn tail (%s): %" PRIu64 " bytes "
		     "would be cut at open", record_state(rp->path, end), rp->dropped);
	if ((rp->st.has & ALL_SCALARS) != ALL_SCALARS) {
		note(r, PROBLEM, rp->path, 0, "no edit sets log_number, next_file and "
		     "last_sequence (the first record must be a snapshot)");
		return 1;
	}
	return 0;
}

static void print_version(const replay *rp)
{
	const lsm_version *v = rp->st.version;
	char lvl[32];

	printf("version after %" PRIu64 " edits (%" PRIu64 " bytes): log_number %" PRIu64
	       ", next_file %" PRIu64 ", last_sequence %" PRIu64 "\n", rp->st.edits,
	       rp->st.offset, rp->st.log_number, rp->st.next_file_number,
	       rp->st.last_sequence);
	for (int l = 0; l < LSM_MAX_LEVELS; l++) {
		printf("  L%d: %zu files, %" PRIu64 " bytes\n", l, v->nfiles[l], v->bytes[l]);
		snprintf(lvl, sizeof lvl, "    L%d ", l);
		for (size_t i = 0; i < v->nfiles[l]; i++)
			print_file(lvl, v->files[l][i]);
	}
	printf("  total: %zu files, %" PRIu64 " bytes\n", lsm_version_total_files(v),
	       lsm_version_total_bytes(v));
}

static int cmd_dump_manifest(const char *dir)
{
	report r = {stderr, 0, 0, 0};
	name_list names;
	replay rp;

	if (list_names(dir, &names) != LSM_OK)
		return 2;
	fflush(stdout);
	if (replay_manifest(dir, &names, 1, &rp, &r) == 0)
		print_version(&rp);
	fflush(stdout);
	lsm_manifest_state_free(&rp.st);
	free_names(&names);
	return exit_code(&r);
}

/* ------------------------------------------------------------ verify */

typedef struct table_totals {
	uint64_t tables, entries, range_dels;
} table_totals;

/* One key bound of a table's properties against the manifest's (a table
 * with no entry has none: the manifest's is then empty). */
static void check_bound(const char *path, const char *what, int has, const uint8_t *key,
                        size_t klen, uint64_t trailer, const lsm_ikey_ref *m, report *r)
{
	char a[IKEY_LEN], b[IKEY_LEN];

	if (has ? lsm_ikey_compare(key, klen, trailer, m->key, m->len, m->trailer) == 0
	        : m->len == 0 && m->trailer == 0)
		return;
	note(r, PROBLEM, path, -1, "%s key %s, the manifest says %s", what,
	     has ? fmt_ikey(a, key, klen, trailer) : "(none)", fmt_ref(b, m));
}

/* The properties of a verified table against its manifest metadata. */
static void compare_meta(const char *path, const lsm_file_meta *m, report *r)
{
	const lsm_table_props *p;
	lsm_table *t;
	int rc = lsm_table_open(env, path, 0, NULL, NULL, &t);

	if (rc != LSM_OK) {
		note_rc(r, rc, path, -1, NULL);
		return;
	}
	p = lsm_table_properties(t);
	check_bound(path, "smallest", p->has_bounds, p->smallest_key, p->smallest_klen,
	            p->smallest_trailer, &m->smallest, r);
	check_bound(path, "largest", p->has_bounds, p->largest_key, p->largest_klen,
	            p->largest_trailer, &m->largest, r);
	if (p->smallest_seq != m->smallest_seq || p->largest_seq != m->largest_seq)
		note(r, PROBLEM, path, -1, "seqs %" PRIu64 "..%" PRIu64 ", the manifest says %"
		     PRIu64 "..%" PRIu64, p->smallest_seq, p->largest_seq, m->smallest_seq,
		     m->largest_seq);
	if (p->entries != m->entries || p->range_deletions != m->range_dels)
		note(r, PROBLEM, path, -1, "%" PRIu64 " entries and %" PRIu64 " range deletions"
		     ", the manifest says %" PRIu64 " and %" PRIu64, p->entries,
		     p->range_deletions, m->entries, m->range_dels);
	lsm_table_close(t);
}

/* One table the version lists: present, its size, every block, then its
 * key range against the manifest. */
static void verify_table(const char *dir, const lsm_file_meta *m, table_totals *tt,
                         report *r)
{
	lsm_table_verify_info info;
	char path[PATH_LEN];
	uint64_t size = 0;
	int rc;

	lsm_sst_path(dir, m->number, path, sizeof path);
	tt->tables++;
	if ((rc = file_size(path, &size)) != LSM_OK) {
		if (rc == LSM_NOTFOUND)
			note(r, PROBLEM, path, -1, "missing (the version lists it at L%d)", m->level);
		else
			note_rc(r, rc, path, -1, NULL);
		return;
	}
	if (size < m->size)
		note(r, PROBLEM, path, (int64_t)size, "the file ends here, but the manifest "
		     "says %" PRIu64 " bytes (truncated?)", m->size);
	else if (size > m->size)
		note(r, PROBLEM, path, (int64_t)m->size, "the manifest's size ends here, but the "
		     "file has %" PRIu64 " bytes", size);
	rc = lsm_table_verify(env, path, NULL, NULL, &info);
	if (rc != LSM_OK) {
		note_rc(r, rc, path, rc == LSM_CORRUPTION ? (int64_t)info.bad_offset : -1,
		        info.message);
		return;
	}
	tt->entries += info.entries;
	tt->range_dels += info.range_deletions;
	compare_meta(path, m, r);
}

/* Levels 1 and up: each file's range in order, neighbours disjoint. */
static void check_levels(const replay *rp, report *r)
{
	const lsm_version *v = rp->st.version;
	char a[IKEY_LEN], b[IKEY_LEN];

	for (int l = 0; l < LSM_MAX_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++) {
			const lsm_file_meta *m = v->files[l][i], *next;

			if (lsm_ikey_compare(m->smallest.key, m->smallest.len, m->smallest.trailer,
			                     m->largest.key, m->largest.len, m->largest.trailer) > 0)
				note(r, PROBLEM, rp->path, -1, "L%d %06" PRIu64 ".sst: smallest %s "
				     "after largest %s", l, m->number, fmt_ref(a, &m->smallest),
				     fmt_ref(b, &m->largest));
			if (l == 0 || i + 1 == v->nfiles[l])
				continue;
			next = v->files[l][i + 1];
			if (lsm_ikey_compare(m->largest.key, m->largest.len, m->largest.trailer,
			                     next->smallest.key, next->smallest.len,
			                     next->smallest.trailer) >= 0)
				note(r, PROBLEM, rp->path, -1, "L%d: %06" PRIu64 ".sst (up to %s) "
				     "overlaps %06" PRIu64 ".sst (from %s)", l, m->number,
				     fmt_ref(a, &m->largest), next->number, fmt_ref(b, &next->smallest));
		}
}

/* Files the live state does not account for: warnings only, since a crash
 * may leave them until the next open removes them. */
static void check_leftovers(const char *dir, const name_list *names, const replay *rp,
                            report *r)
{
	char path[PATH_LEN];
	uint64_t n;

	for (size_t i = 0; i < names->n; i++) {
		const char *name = names->v[i];
		size_t len = strlen(name);

		join(path, dir, name);
		if (lsm_sst_parse_name(name, &n) && !lsm_version_has_file(rp->st.version, n))
			note(r, WARNING, path, -1, "table not in the version (a crash may leave "
			     "one; the next open removes it)");
		else if (lsm_manifest_parse_name(name, &n) && n != rp->number)
			note(r, WARNING, path, -1, "obsolete manifest (CURRENT names "
			     "MANIFEST-%06" PRIu64 ")", rp->number);
		else if (lsm_wal_parse_name(name, &n) && n < rp->st.log_number)
			note(r, WARNING, path, -1, "obsolete WAL segment (below log_number %"
			     PRIu64 "), not checked", rp->st.log_number);
		else if (len > 4 && strcmp(name + len - 4, ".tmp") == 0)
			note(r, WARNING, path, -1, "temporary file of an unfinished write");
	}
}

/* Tables hold the sequences up to last_sequence and the live WAL the ones
 * after: a gap between them is data in neither (e.g. a lost manifest edit
 * whose WAL segments were already removed). */
static void check_sequences(const char *dir, const replay *rp, const wal_totals *t,
                            report *r)
{
	char path[PATH_LEN];

	if (t->first_seq == 0 || t->first_seq <= t->after + 1)
		return;
	lsm_wal_path(dir, t->first_seg, path, sizeof path);
	note(r, PROBLEM, path, -1, "sequences %" PRIu64 "..%" PRIu64 " are in no table "
	     "and no WAL segment: lost (the manifest's last_sequence is %" PRIu64
	     ", log_number %" PRIu64 ")", t->after + 1, t->first_seq - 1, t->after,
	     rp->st.log_number);
}

/* Every table the version lists, then the levels and leftover files. */
static void verify_version(const char *dir, const name_list *names, const replay *rp,
                           table_totals *tt, report *r)
{
	const lsm_version *v = rp->st.version;

	for (int l = 0; l < LSM_MAX_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			verify_table(dir, v->files[l][i], tt, r);
	check_levels(rp, r);
	check_leftovers(dir, names, rp, r);
}

static int cmd_verify(const char *dir)
{
	report r = {stdout, 0, 0, 0};
	wal_totals wt = {.verbose = 0};
	table_totals tt = {0, 0, 0};
	name_list names;
	replay rp;
	int manifest_ok;

	if (list_names(dir, &names) != LSM_OK)
		return 2;
	manifest_ok = replay_manifest(dir, &names, 0, &rp, &r) == 0;
	if (manifest_ok)
		verify_version(dir, &names, &rp, &tt, &r);
	/* without a manifest every segment is live (log_number 0) */
	wt.after = rp.st.last_sequence;
	check_wal(dir, &names, rp.st.log_number, &wt, &r);
	if (manifest_ok)
		check_sequences(dir, &rp, &wt, &r);
	if (r.problems || r.errors)
		printf("%s: FAILED: %u problem(s), %u error(s), %u warning(s)\n", dir,
		       r.problems, r.errors, r.warnings);
	else
		printf("%s: OK: %" PRIu64 " tables (%" PRIu64 " entries, %" PRIu64
		       " range deletions), %" PRIu64 " WAL segments (%" PRIu64 " records, %"
		       PRIu64 " entries), %u warning(s)\n", dir, tt.tables, tt.entries,
		       tt.range_dels, wt.segments, wt.records, wt.entries, r.warnings);
	lsm_manifest_state_free(&rp.st);
	free_names(&names);
	return exit_code(&r);
}

/* ------------------------------------------------------------ stats */

static int cmd_stats(const char *dir)
{
	report r = {stdout, 0, 0, 0};
	wal_totals t = {.verbose = 0};
	name_list names;
	replay rp;

	if (list_names(dir, &names) != LSM_OK)
		return 2;
	check_wal(dir, &names, 0, &t, &r);
	printf("wal_segments   %" PRIu64 "\nwal_records    %" PRIu64 "\nwal_entries    %"
	       PRIu64 "\nwal_payload    %" PRIu64 " bytes\n", t.segments, t.records,
	       t.entries, t.bytes);
	if (replay_manifest(dir, &names, 0, &rp, &r) == 0) {
		const lsm_version *v = rp.st.version;

		printf("manifest       MANIFEST-%06" PRIu64 " (%" PRIu64 " edits, %" PRIu64
		       " bytes)\n", rp.number, rp.st.edits, rp.st.offset);
		printf("log_number     %" PRIu64 "\nnext_file      %" PRIu64
		       "\nlast_sequence  %" PRIu64 "\n", rp.st.log_number,
		       rp.st.next_file_number, rp.st.last_sequence);
		for (int l = 0; l < LSM_MAX_LEVELS; l++)
			printf("level%d         %zu files, %" PRIu64 " bytes\n", l, v->nfiles[l],
			       v->bytes[l]);
		printf("tables         %zu files, %" PRIu64 " bytes\n",
		       lsm_version_total_files(v), lsm_version_total_bytes(v));
	}
	lsm_manifest_state_free(&rp.st);
	free_names(&names);
	return exit_code(&r);
}

/* ------------------------------------------------------------ main */

static int usage(void)
{
	fprintf(stderr,
	        "usage: lsmctl COMMAND ARG\n"
	        "  dump-wal FILE        list every record of a WAL segment\n"
	        "  dump-sst FILE        an SSTable's properties and every entry\n"
	        "  dump-manifest DIR    every manifest edit and the resulting version\n"
	        "  verify DIR           check CURRENT, the manifest, every table and WAL "
	        "segment\n"
	        "  stats DIR            WAL totals and files/bytes per level\n"
	        "exit: 0 clean, 1 damage found, 2 usage or I/O error\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(const char *arg);
	} cmds[] = {
		{"dump-wal", cmd_dump_wal},
		{"dump-sst", cmd_dump_sst},
		{"dump-manifest", cmd_dump_manifest},
		{"verify", cmd_verify},
		{"stats", cmd_stats},
	};

	env = lsm_env_posix();
	if (argc != 3)
		return usage();
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argv[2]);
	fprintf(stderr, "lsmctl: unknown command '%s'\n", argv[1]);
	return usage();
}
