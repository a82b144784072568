/*
 * manifest.c — the files on disk: their names, CURRENT, the manifest
 * writer and its rotation, the reader (recovery and tail-follow), and which
 * files are garbage.
 *
 * Format: MANIFEST-NNNNNN is a log of records framed as in logrec.h (the
 * WAL's framing), one encoded edit (version.c) per record, no file header.
 * The first record is a snapshot: every file, compact pointer and all three
 * scalars.  CURRENT holds exactly "MANIFEST-NNNNNN\n".
 *
 * Invariants
 *   - A manifest is named by CURRENT only after it was fsync'd whole, and a
 *     record is acknowledged only after its fsync; so at recovery a damaged
 *     final record was never acknowledged and is ignored, while damage
 *     followed by a valid record means acknowledged state was lost:
 *     LSM_CORRUPTION.
 *   - A record is written with a single write at the end of the file, so a
 *     reader racing the writer sees a prefix of it: an incomplete record,
 *     which the reader leaves for later without consuming it.
 *   - CURRENT changes only by rename of a fully written, fsync'd temp file,
 *     followed by an fsync of the directory: it names the old or the new
 *     manifest, never neither.
 *   - Scalars only grow (next file number, last sequence, log number): an
 *     edit carrying a smaller value does not lower them.
 *   - The writer never appends after a failed write or fsync (the file may
 *     end in a partial record, and appending after it would turn a torn
 *     tail into corruption): the error is sticky.
 *   - A name counts as ours only if it is exactly what a path helper makes
 *     ("0123.sst" is not), so the obsolete-file sweep never deletes a file
 *     it did not name.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "dbint.h"
#include "logrec.h"
#include "status.h"
#include "version.h"

_Static_assert(LSM_LOGREC_HEADER == LSM_WAL_RECORD_HEADER, "one record framing");

#define PATH_MAX_LEN 4096
#define ALL_SCALARS (LSM_EDIT_LOG_NUMBER | LSM_EDIT_NEXT_FILE | LSM_EDIT_LAST_SEQUENCE)

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* ---------------------------------------------------------------- names */

static int fmt_path(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= outlen ? LSM_INVALID : LSM_OK;
}

int lsm_sst_path(const char *dir, uint64_t number, char *out, size_t outlen)
{
	return fmt_path(out, outlen, "%s/%06" PRIu64 ".sst", dir, number);
}

int lsm_sst_tmp_path(const char *dir, uint64_t number, char *out, size_t outlen)
{
	return fmt_path(out, outlen, "%s/%06" PRIu64 ".sst.tmp", dir, number);
}

int lsm_manifest_path(const char *dir, uint64_t number, char *out, size_t outlen)
{
	return fmt_path(out, outlen, "%s/MANIFEST-%06" PRIu64, dir, number);
}

int lsm_current_path(const char *dir, char *out, size_t outlen)
{
	return fmt_path(out, outlen, "%s/" LSM_CURRENT_NAME, dir);
}

int lsm_current_tmp_path(const char *dir, char *out, size_t outlen)
{
	return fmt_path(out, outlen, "%s/" LSM_CURRENT_TMP_NAME, dir);
}

/* name == prefix + %06llu + suffix exactly (so "0123.sst" or "MANIFEST-7"
 * are not ours and are never touched), number >= 1. */
static int parse_exact(const char *name, const char *prefix, const char *suffix,
                       uint64_t *number)
{
	size_t pl = strlen(prefix), sl = strlen(suffix), nl = strlen(name), i;
	uint64_t v = 0;
	char again[64];

	if (nl <= pl + sl || nl - pl - sl > 20 ||
	    strncmp(name, prefix, pl) != 0 || strcmp(name + nl - sl, suffix) != 0)
		return 0;
	for (i = pl; i < nl - sl; i++) {
		unsigned d = (unsigned char)name[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	snprintf(again, sizeof again, "%s%06" PRIu64 "%s", prefix, v, suffix);
	if (v == 0 || strcmp(again, name) != 0)
		return 0;
	*number = v;
	return 1;
}

int lsm_sst_parse_name(const char *name, uint64_t *number)
{
	return parse_exact(name, "", ".sst", number);
}

int lsm_manifest_parse_name(const char *name, uint64_t *number)
{
	return parse_exact(name, "MANIFEST-", "", number);
}

/* ---------------------------------------------------------------- state */

int lsm_manifest_state_init(lsm_manifest_state *st)
{
	memset(st, 0, sizeof *st);
	return lsm_version_new(&st->version);
}

void lsm_manifest_state_free(lsm_manifest_state *st)
{
	lsm_version_unref(st->version);
	memset(st, 0, sizeof *st);
}

/* Scalars of e folded into st (never lowering one). */
static void apply_scalars(lsm_manifest_state *st, const lsm_version_edit *e)
{
	if (e->has & LSM_EDIT_LOG_NUMBER)
		st->log_number = max_u64(st->log_number, e->log_number);
	if (e->has & LSM_EDIT_NEXT_FILE)
		st->next_file_number = max_u64(st->next_file_number, e->next_file_number);
	if (e->has & LSM_EDIT_LAST_SEQUENCE)
		st->last_sequence = max_u64(st->last_sequence, e->last_sequence);
	st->has |= e->has;
}

int lsm_manifest_state_apply(lsm_manifest_state *st, const lsm_version_edit *e)
{
	lsm_version *v;
	int rc = lsm_version_apply(st->version, e, &v);

	if (rc != LSM_OK)
		return rc;
	lsm_version_unref(st->version);
	st->version = v;
	apply_scalars(st, e);
	return LSM_OK;
}

/* The snapshot edit of st: every file, pointer, and the three scalars. */
static int snapshot_edit(const lsm_manifest_state *st, lsm_version_edit *e)
{
	int rc;

	lsm_edit_init(e);
	if ((rc = lsm_version_snapshot(st->version, e)) != LSM_OK) {
		lsm_edit_free(e);
		return rc;
	}
	lsm_edit_set_log_number(e, st->log_number);
	lsm_edit_set_next_file(e, st->next_file_number);
	lsm_edit_set_last_sequence(e, st->last_sequence);
	return LSM_OK;
}

/* -------------------------------------------------------------- CURRENT */

#define CURRENT_MAX 64

int lsm_current_read(lsm_env *env, const char *dir, uint64_t *number)
{
	char path[PATH_MAX_LEN], buf[CURRENT_MAX];
	lsm_file *f;
	size_t got = 0;
	int rc;

	if ((rc = lsm_current_path(dir, path, sizeof path)) != LSM_OK)
		return rc;
	if ((rc = env->open(env, path, LSM_OPEN_READ, &f)) != LSM_OK)
		return rc;
	rc = env->read(f, 0, buf, sizeof buf, &got);
	env->close(f);
	if (rc != LSM_OK)
		return rc;
	/* exactly one line, no NUL inside, nothing after the newline */
	if (got < 2 || got == sizeof buf || buf[got - 1] != '\n' ||
	    memchr(buf, '\0', got - 1) != NULL)
		return lsm_error_note(path, -1, "not one line naming a manifest");
	buf[got - 1] = '\0';
	return lsm_manifest_parse_name(buf, number) ? LSM_OK
	       : lsm_error_note(path, -1, "names no manifest");
}

/* *renaming tells the caller whether the failure came at or after the
 * rename, when CURRENT may name either manifest. */
static int current_set(lsm_env *env, const char *dir, uint64_t number, int *renaming)
{
	char tmp[PATH_MAX_LEN], path[PATH_MAX_LEN], text[CURRENT_MAX];
	lsm_file *f;
	int rc, n;

	*renaming = 0;
	n = snprintf(text, sizeof text, "MANIFEST-%06" PRIu64 "\n", number);
	if (number == 0 || n < 0 || (size_t)n >= sizeof text)
		return LSM_INVALID;
	if ((rc = lsm_current_tmp_path(dir, tmp, sizeof tmp)) != LSM_OK ||
	    (rc = lsm_current_path(dir, path, sizeof path)) != LSM_OK)
		return rc;
	rc = env->open(env, tmp, LSM_OPEN_WRITE | LSM_OPEN_CREATE | LSM_OPEN_TRUNC, &f);
	if (rc != LSM_OK)
		return rc;
	rc = env->write(f, 0, text, (size_t)n);
	if (rc == LSM_OK)
		rc = env->sync(f);
	env->close(f);
	if (rc != LSM_OK) {
		env->remove(env, tmp);
		return rc;
	}
	*renaming = 1;
	if ((rc = env->rename(env, tmp, path)) != LSM_OK)
		return rc;
	return env->sync_dir(env, dir);
}

int lsm_current_set(lsm_env *env, const char *dir, uint64_t number)
{
	int renaming;

	return current_set(env, dir, number, &renaming);
}

/* --------------------------------------------------------------- reader */

/* Reads bytes [offset, EOF) of path. */
static int read_tail(lsm_env *env, const char *path, uint64_t offset,
                     uint8_t **out, size_t *n)
{
	lsm_file *f;
	uint64_t size;
	uint8_t *buf = NULL;
	size_t got = 0;
	int rc;

	*out = NULL;
	if ((rc = env->open(env, path, LSM_OPEN_READ, &f)) != LSM_OK)
		return rc;
	rc = env->size(f, &size);
	if (rc == LSM_OK && size < offset)     /* shorter than what was already consumed */
		rc = lsm_error_note(path, (int64_t)size, "manifest shorter than what was already read");
	if (rc == LSM_OK && size - offset > SIZE_MAX - 1)
		rc = LSM_NOMEM;
	if (rc == LSM_OK && (buf = malloc((size_t)(size - offset) + 1)) == NULL)
		rc = LSM_NOMEM;
	if (rc == LSM_OK)
		rc = env->read(f, offset, buf, (size_t)(size - offset), &got);
	env->close(f);
	if (rc != LSM_OK) {
		free(buf);
		return rc;
	}
	*out = buf;
	*n = got;                     /* a concurrent truncate only shortens it */
	return LSM_OK;
}

/* After a bad record at off (check result st, payload length len when the
 * header was valid): does any valid record start later?  A valid header
 * gives the damaged record's extent, so the search starts past it and never
 * mistakes bytes inside its payload for a record. */
static int valid_record_after(const uint8_t *buf, size_t n, size_t off, int st, uint32_t len)
{
	size_t p;
	uint32_t l;

	if (st == LSM_LOGREC_SHORT_HEADER || st == LSM_LOGREC_SHORT_PAYLOAD)
		return 0;             /* runs to the end of the file */
	p = st == LSM_LOGREC_BAD_PAYLOAD ? off + LSM_LOGREC_HEADER + len : off + 1;
	for (; p + LSM_LOGREC_HEADER <= n; p++)
		if (lsm_logrec_check(buf, n, p, &l) == LSM_LOGREC_OK)
			return 1;
	return 0;
}

/* Decodes the record payload at p and hands it to fn. */
static int deliver(const uint8_t *p, uint32_t len, lsm_manifest_edit_fn fn, void *arg,
                   uint64_t end)
{
	lsm_version_edit e;
	int rc = lsm_edit_decode(&e, p, len);

	if (rc != LSM_OK)
		return rc;
	rc = fn ? fn(arg, &e, end) : LSM_OK;
	lsm_edit_free(&e);
	return rc;
}

int lsm_manifest_read(lsm_env *env, const char *dir, uint64_t number,
                      uint64_t offset, uint64_t max_edits,
                      lsm_manifest_edit_fn fn, void *arg,
                      uint64_t *end_offset, uint64_t *dropped)
{
	char path[PATH_MAX_LEN];
	uint8_t *buf;
	size_t n, off = 0;
	uint64_t count = 0;
	int rc;

	*end_offset = offset;
	if (dropped)
		*dropped = 0;
	if ((rc = lsm_manifest_path(dir, number, path, sizeof path)) != LSM_OK ||
	    (rc = read_tail(env, path, offset, &buf, &n)) != LSM_OK)
		return rc;
	while (off < n && count < max_edits) {
		uint32_t len = 0;
		int st = lsm_logrec_check(buf, n, off, &len);

		if (st != LSM_LOGREC_OK) {
			if (valid_record_after(buf, n, off, st, len))
				rc = lsm_error_note(path, (int64_t)(offset + off),
				                    "damaged manifest record with valid records after it");
			else if (dropped)
				*dropped = n - off;
			break;
		}
		off += LSM_LOGREC_HEADER + (size_t)len;
		rc = deliver(buf + off - len, len, fn, arg, offset + off);
		if (rc == LSM_CORRUPTION)
			lsm_error_note(path, (int64_t)(offset + off - len - LSM_LOGREC_HEADER),
			               "manifest record that does not decode, or an edit the version refuses");
		if (rc != LSM_OK)
			break;
		*end_offset = offset + off;
		count++;
	}
	free(buf);
	return rc;
}

static int apply_cb(void *arg, const lsm_version_edit *e, uint64_t end)
{
	lsm_manifest_state *st = arg;
	int rc = lsm_manifest_state_apply(st, e);

	if (rc == LSM_OK) {
		st->offset = end;
		st->edits++;
	}
	return rc;
}

int lsm_manifest_catch_up(lsm_env *env, const char *dir, lsm_manifest_state *st,
                          uint64_t max_edits, uint64_t *dropped)
{
	uint64_t end;

	return lsm_manifest_read(env, dir, st->manifest_number, st->offset, max_edits,
	                         apply_cb, st, &end, dropped);
}

int lsm_manifest_load(lsm_env *env, const char *dir, uint64_t number,
                      lsm_manifest_state *st, uint64_t *dropped)
{
	int rc = lsm_manifest_state_init(st);

	if (rc != LSM_OK)
		return rc;
	st->manifest_number = number;
	rc = lsm_manifest_catch_up(env, dir, st, LSM_MANIFEST_ALL, dropped);
	/* no snapshot survived: the manifest cannot describe the database */
	if (rc == LSM_OK && (st->has & ALL_SCALARS) != ALL_SCALARS)
		rc = LSM_CORRUPTION;
	if (rc != LSM_OK) {
		lsm_manifest_state_free(st);
		return rc;
	}
	/* never hand out a number already in use */
	st->next_file_number = max_u64(st->next_file_number,
	                               max_u64(st->version->max_file_number, number) + 1);
	return LSM_OK;
}

int lsm_manifest_recover(lsm_env *env, const char *dir, lsm_manifest_state *st,
                         uint64_t *dropped)
{
	uint64_t number;
	int rc = lsm_current_read(env, dir, &number);

	if (rc != LSM_OK)
		return rc;
	return lsm_manifest_load(env, dir, number, st, dropped);
}

/* --------------------------------------------------------------- writer */

/* The framed record of e in b (header, then the encoded edit). */
static int frame_edit(const lsm_version_edit *e, lsm_buf *b)
{
	static const uint8_t zero[LSM_LOGREC_HEADER];
	size_t len;
	int rc;

	lsm_buf_put_bytes(b, zero, sizeof zero);
	if ((rc = lsm_edit_encode(e, b)) != LSM_OK)
		return rc;
	len = b->len - LSM_LOGREC_HEADER;
	if (len > UINT32_MAX)
		return LSM_TOOBIG;
	lsm_logrec_header(b->data, len, lsm_crc32(b->data + LSM_LOGREC_HEADER, len));
	return LSM_OK;
}

static int writer_alloc(lsm_env *env, const char *dir, uint64_t max_size,
                        lsm_manifest_writer **out)
{
	lsm_manifest_writer *w = calloc(1, sizeof *w);

	if (w == NULL || (w->dir = strdup(dir)) == NULL) {
		free(w);
		return LSM_NOMEM;
	}
	w->env = env;
	w->max_size = max_size;
	*out = w;
	return LSM_OK;
}

/* Writes manifest `number` holding snap, fsyncs it and switches CURRENT.
 * A failure before the rename removes the new file (*unknown = 0); at or
 * after it the new file must stay, as CURRENT may name it (*unknown = 1). */
static int install_manifest(lsm_env *env, const char *dir, uint64_t number,
                            const lsm_version_edit *snap, lsm_file **fout,
                            uint64_t *size, int *unknown)
{
	char path[PATH_MAX_LEN];
	lsm_buf b;
	lsm_file *f;
	int rc;

	*unknown = 0;
	lsm_buf_init(&b);
	if ((rc = lsm_manifest_path(dir, number, path, sizeof path)) != LSM_OK ||
	    (rc = frame_edit(snap, &b)) != LSM_OK)
		goto out;
	rc = env->open(env, path, LSM_OPEN_WRITE | LSM_OPEN_CREATE | LSM_OPEN_TRUNC, &f);
	if (rc != LSM_OK)
		goto out;
	rc = env->write(f, 0, b.data, b.len);
	if (rc == LSM_OK)
		rc = env->sync(f);
	if (rc == LSM_OK)
		rc = current_set(env, dir, number, unknown);
	if (rc != LSM_OK) {
		env->close(f);
		if (!*unknown)
			env->remove(env, path);
		goto out;
	}
	*fout = f;
	*size = b.len;
out:
	lsm_buf_free(&b);
	return rc;
}

int lsm_manifest_create(lsm_env *env, const char *dir, uint64_t number,
                        lsm_manifest_state *st, uint64_t max_size,
                        lsm_manifest_writer **out)
{
	lsm_manifest_state ns = *st;
	lsm_version_edit snap;
	lsm_manifest_writer *w;
	int rc, unknown;

	if (number == 0 || lsm_version_has_file(st->version, number))
		return LSM_INVALID;
	ns.next_file_number = max_u64(ns.next_file_number, number + 1);
	if ((rc = writer_alloc(env, dir, max_size, &w)) != LSM_OK)
		return rc;
	if ((rc = snapshot_edit(&ns, &snap)) != LSM_OK) {
		lsm_manifest_close(w);
		return rc;
	}
	rc = install_manifest(env, dir, number, &snap, &w->file, &w->size, &unknown);
	lsm_edit_free(&snap);
	if (rc != LSM_OK) {
		lsm_manifest_close(w);
		return rc;
	}
	w->number = number;
	w->snapshot_size = w->size;
	st->has = ALL_SCALARS;
	st->next_file_number = ns.next_file_number;
	st->manifest_number = number;
	st->offset = w->size;
	st->edits = 1;
	*out = w;
	return LSM_OK;
}

int lsm_manifest_resume(lsm_env *env, const char *dir, const lsm_manifest_state *st,
                        uint64_t max_size, lsm_manifest_writer **out)
{
	char path[PATH_MAX_LEN];
	lsm_manifest_writer *w;
	uint64_t size;
	int rc;

	if ((rc = lsm_manifest_path(dir, st->manifest_number, path, sizeof path)) != LSM_OK ||
	    (rc = writer_alloc(env, dir, max_size, &w)) != LSM_OK)
		return rc;
	rc = env->open(env, path, LSM_OPEN_WRITE, &w->file);
	if (rc == LSM_OK)
		rc = env->size(w->file, &size);
	if (rc == LSM_OK && size < st->offset)
		rc = LSM_CORRUPTION;
	/* cut the torn tail: appending after it would look like corruption */
	if (rc == LSM_OK && size > st->offset) {
		rc = env->truncate(w->file, st->offset);
		if (rc == LSM_OK)
			rc = env->sync(w->file);
	}
	if (rc != LSM_OK) {
		lsm_manifest_close(w);
		return rc;
	}
	w->number = st->manifest_number;
	w->size = st->offset;
	*out = w;
	return LSM_OK;
}

void lsm_manifest_close(lsm_manifest_writer *w)
{
	if (w == NULL)
		return;
	if (w->file)
		w->env->close(w->file);
	free(w->dir);
	free(w);
}

int lsm_manifest_append(lsm_manifest_writer *w, const lsm_version_edit *e)
{
	lsm_buf b;
	int rc;

	if (w->error)
		return w->error;
	lsm_buf_init(&b);
	if ((rc = frame_edit(e, &b)) == LSM_OK) {
		/* from here a failure leaves the file's end unknown */
		rc = w->env->write(w->file, w->size, b.data, b.len);
		if (rc == LSM_OK)
			rc = w->env->sync(w->file);
		if (rc == LSM_OK)
			w->size += b.len;
		else
			w->error = rc;
	}
	lsm_buf_free(&b);
	return rc;
}

int lsm_manifest_should_rotate(const lsm_manifest_writer *w)
{
	return w->size > w->max_size && w->size / 2 > w->snapshot_size;
}

/* Writes manifest `number` holding ns and makes it the writer's. */
static int rotate(lsm_manifest_writer *w, lsm_manifest_state *ns, uint64_t number)
{
	lsm_version_edit snap;
	lsm_file *f;
	uint64_t size;
	int rc, unknown;

	if (lsm_version_has_file(ns->version, number) || number == w->number)
		return LSM_INVALID;
	ns->next_file_number = max_u64(ns->next_file_number, number + 1);
	if ((rc = snapshot_edit(ns, &snap)) != LSM_OK)
		return rc;
	rc = install_manifest(w->env, w->dir, number, &snap, &f, &size, &unknown);
	lsm_edit_free(&snap);
	if (rc != LSM_OK) {
		if (unknown)
			w->error = rc;
		return rc;
	}
	w->env->close(w->file);
	w->file = f;
	w->number = number;
	w->size = size;
	w->snapshot_size = size;
	ns->manifest_number = number;
	ns->offset = size;
	ns->edits = 1;
	return LSM_OK;
}

int lsm_manifest_log_and_apply(lsm_manifest_writer *w, lsm_manifest_state *st,
                               const lsm_version_edit *e, uint64_t rotate_to)
{
	lsm_manifest_state ns = *st;
	int rc;

	if (w->error)
		return w->error;
	if (st->manifest_number != w->number || st->offset != w->size)
		return LSM_INVALID;   /* st must describe what this writer wrote */
	if ((rc = lsm_version_apply(st->version, e, &ns.version)) != LSM_OK)
		return rc;
	apply_scalars(&ns, e);
	if (rotate_to == 0) {
		rc = lsm_manifest_append(w, e);
		ns.offset = w->size;
		ns.edits++;
	} else
		rc = rotate(w, &ns, rotate_to);
	if (rc != LSM_OK) {
		lsm_version_unref(ns.version);
		return rc;
	}
	lsm_version_unref(st->version);
	*st = ns;
	return LSM_OK;
}

/* -------------------------------------------------------- obsolete files */

static int in_list(const uint64_t *v, size_t n, uint64_t x)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

static int in_sorted(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] == x)
			return 1;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int cmp_num(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The leading decimal number of name, if it starts with one. */
static int leading_number(const char *name, uint64_t *v)
{
	const char *p = name;

	*v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (*v > (UINT64_MAX - d) / 10)
			return 0;
		*v = *v * 10 + d;
	}
	return p != name;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int is_pending(const lsm_live_files *live, uint64_t num)
{
	return in_list(live->pending, live->npending, num) ||
	       (live->pending_floor && num >= live->pending_floor);
}

static int is_garbage(const char *name, const lsm_live_files *live,
                      const uint64_t *files, size_t nfiles)
{
	uint64_t num;

	if (lsm_sst_parse_name(name, &num))
		return !in_sorted(files, nfiles, num) && !is_pending(live, num);
	if (ends_with(name, ".tmp"))  /* an unfinished output, unless still being written */
		return !(leading_number(name, &num) && is_pending(live, num));
	if (lsm_manifest_parse_name(name, &num))
		return num != live->manifest_number && !is_pending(live, num);
	if (lsm_wal_parse_name(name, &num))
		return num < live->log_number;
	return 0;                     /* CURRENT, LOCK, IDENTITY, not ours */
}

int lsm_obsolete_decide(const lsm_live_files *live, const char *const *names,
                        size_t n, uint8_t *garbage)
{
	size_t total, k = 0, i;
	uint64_t *files;
	int l;

	/* without a live manifest every manifest would look like garbage */
	if (live->version == NULL || live->manifest_number == 0)
		return LSM_INVALID;
	total = lsm_version_total_files(live->version);
	if ((files = malloc((total + 1) * sizeof *files)) == NULL)
		return LSM_NOMEM;
	for (l = 0; l < LSM_MAX_LEVELS; l++)
		for (i = 0; i < live->version->nfiles[l]; i++)
			files[k++] = live->version->files[l][i]->number;
	qsort(files, total, sizeof *files, cmp_num);
	for (i = 0; i < n; i++)
		garbage[i] = (uint8_t)is_garbage(names[i], live, files, total);
	free(files);
	return LSM_OK;
}

typedef struct name_list {
	char **v;
	size_t n, cap;
} name_list;

static int collect_name(void *arg, const char *name)
{
	name_list *l = arg;

	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		char **p = realloc(l->v, ncap * sizeof *p);

		if (p == NULL)
			return LSM_NOMEM;
		l->v = p;
		l->cap = ncap;
	}
	if ((l->v[l->n] = strdup(name)) == NULL)
		return LSM_NOMEM;
	l->n++;
	return LSM_OK;
}

static void free_names(name_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

int lsm_obsolete_remove(lsm_env *env, const char *dir, const lsm_live_files *live,
                        uint64_t *removed)
{
	name_list names = { NULL, 0, 0 };
	uint8_t *garbage = NULL;
	char path[PATH_MAX_LEN];
	size_t i;
	int rc, rc2, decided;

	if (removed)
		*removed = 0;
	rc = env->list_dir(env, dir, collect_name, &names);
	if (rc == LSM_OK && (garbage = malloc(names.n + 1)) == NULL)
		rc = LSM_NOMEM;
	if (rc == LSM_OK)
		rc = lsm_obsolete_decide(live, (const char *const *)names.v, names.n, garbage);
	decided = rc == LSM_OK;
	for (i = 0; decided && i < names.n; i++) {
		if (!garbage[i])
			continue;
		if (snprintf(path, sizeof path, "%s/%s", dir, names.v[i]) >= (int)sizeof path)
			continue;
		rc2 = env->remove(env, path);
		if (rc2 == LSM_OK && removed)
			(*removed)++;
		/* another process may have removed it first */
		else if (rc2 != LSM_OK && rc2 != LSM_NOTFOUND && rc == LSM_OK)
			rc = rc2;
	}
	free(garbage);
	free_names(&names);
	return rc;
}
