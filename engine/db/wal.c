/*
 * wal.c — the write-ahead log: segments, records, group commit, recovery.
 *
 * Format
 *   A segment file NNNNNNNNNNNNNNNN.wal starts with a 32-byte header:
 *     "LSMWAL01" | u32 version | u32 header size | u64 segment number |
 *     u32 reserved | u32 masked crc32 of the 28 bytes before it
 *   then records, each
 *     u32 masked crc32(len, payload crc) | u32 len | u32 masked crc32(payload)
 *     | payload (a batch rep, first sequence stamped in)
 *   The header crc lets recovery test any offset for "a record starts here"
 *   in O(1), so telling a torn tail from damage in the middle costs one
 *   linear scan.
 *
 * Invariants
 *   - Records are appended in sequence order under write_mu; a batch is one
 *     record, so it is recovered whole or not at all.
 *   - LSNs count record bytes only (segment headers excluded): append_lsn >=
 *     written_lsn >= synced_lsn.  Every byte below synced_lsn is on disk.
 *   - A segment other than the newest is complete and synced: rotation
 *     writes out and fsyncs the old segment before starting the next.
 *   - After the first failed write or fsync the WAL refuses every append
 *     (error is sticky): what reached the disk is unknown, so the db must be
 *     reopened and recovered, as PostgreSQL does after a failed fsync.
 *
 * Group commit: a writer that needs durability becomes the leader unless one
 * is already syncing, in which case it waits on sync_cv.  The leader lets
 * writers already inside a synced write append first (gather_group), then
 * writes out everything buffered and fsyncs once, without holding sync_mu;
 * waiters its fsync covered wake and leave, the first one left uncovered
 * leads the next round.
 *
 * Recovery: records are replayed in order.  At a damaged record, recovery
 * looks for any valid record after it: if there is one, the damage is not a
 * torn tail and is LSM_CORRUPTION (or, with salvage, skipped); if there is
 * none and this is the newest segment, it is a torn tail: the file is cut
 * back to the last good record.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "dbint.h"
#include "status.h"
#include "logrec.h"

#define WAL_MAGIC   "LSMWAL01"
#define WAL_VERSION 1

void lsm_wal_path(const char *dir, uint64_t seg_no, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%016" PRIu64 ".wal", dir, seg_no);
}

int lsm_wal_parse_name(const char *name, uint64_t *seg_no)
{
	uint64_t v = 0;
	int i;

	if (strlen(name) != 20 || strcmp(name + 16, ".wal") != 0)
		return 0;
	for (i = 0; i < 16; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	*seg_no = v;
	return 1;
}

static void encode_segment_header(uint8_t *h, uint64_t seg_no)
{
	memset(h, 0, LSM_WAL_HEADER_SIZE);
	memcpy(h, WAL_MAGIC, 8);
	lsm_put_fixed32(h + 8, WAL_VERSION);
	lsm_put_fixed32(h + 12, LSM_WAL_HEADER_SIZE);
	lsm_put_fixed64(h + 16, seg_no);
	lsm_put_fixed32(h + 28, lsm_crc32_mask(lsm_crc32(h, 28)));
}

static int check_segment_header(const uint8_t *h, uint64_t seg_no)
{
	if (memcmp(h, WAL_MAGIC, 8) != 0 ||
	    lsm_get_fixed32(h + 28) != lsm_crc32_mask(lsm_crc32(h, 28)) ||
	    lsm_get_fixed32(h + 8) != WAL_VERSION ||
	    lsm_get_fixed32(h + 12) != LSM_WAL_HEADER_SIZE ||
	    lsm_get_fixed64(h + 16) != seg_no)
		return LSM_CORRUPTION;
	return LSM_OK;
}

void lsm_wal_record_header(uint8_t *hdr, const uint8_t *payload, size_t len)
{
	lsm_logrec_header(hdr, len, lsm_crc32(payload, len));
}

/* ------------------------------------------------------------ writing */

static uint8_t *wal_buffer(lsm_db *db)
{
	return (uint8_t *)db->region + db->region->wal.buf_off;
}

/* This process's handle on the current segment; caller holds write_mu. */
static int current_file(lsm_db *db, lsm_file **out)
{
	lsm_wal_shared *w = &db->region->wal;
	char path[4096];
	int rc = LSM_OK;

	pthread_mutex_lock(&db->wal_fd_mu);
	if (db->wal_file == NULL || db->wal_file_seg != w->seg_no) {
		if (db->wal_file)
			db->env->close(db->wal_file);
		db->wal_file = NULL;
		lsm_wal_path(db->dir, w->seg_no, path, sizeof path);
		rc = db->env->open(db->env, path, LSM_OPEN_WRITE, &db->wal_file);
		if (rc == LSM_OK)
			db->wal_file_seg = w->seg_no;
	}
	*out = db->wal_file;
	pthread_mutex_unlock(&db->wal_fd_mu);
	return rc;
}

void lsm_wal_close_file(lsm_db *db)
{
	pthread_mutex_lock(&db->wal_fd_mu);
	if (db->wal_file)
		db->env->close(db->wal_file);
	db->wal_file = NULL;
	pthread_mutex_unlock(&db->wal_fd_mu);
}

static int fail(lsm_wal_shared *w, int rc)
{
	if (w->error == LSM_OK)
		w->error = rc;
	return rc;
}

static void advance_synced(lsm_region *r, uint64_t lsn)
{
	uint64_t cur = atomic_load(&r->wal.synced_lsn);

	while (cur < lsn && !atomic_compare_exchange_weak(&r->wal.synced_lsn, &cur, lsn))
		;
}

static int write_at_end(lsm_db *db, const void *p, size_t n)
{
	lsm_wal_shared *w = &db->region->wal;
	lsm_file *f;
	int rc = current_file(db, &f);

	if (rc == LSM_OK)
		rc = db->env->write(f, w->seg_written, p, n);
	if (rc != LSM_OK)
		return fail(w, rc);
	w->seg_written += n;
	w->written_lsn += n;
	return LSM_OK;
}

int lsm_wal_write_buffer(lsm_db *db)
{
	lsm_wal_shared *w = &db->region->wal;
	int rc;

	if (w->error)
		return w->error;
	if (w->buf_len == 0)
		return LSM_OK;
	rc = write_at_end(db, wal_buffer(db), w->buf_len);
	if (rc == LSM_OK)
		w->buf_len = 0;
	return rc;
}

int lsm_wal_start_segment(lsm_db *db, uint64_t seg_no)
{
	lsm_wal_shared *w = &db->region->wal;
	uint8_t h[LSM_WAL_HEADER_SIZE];
	char path[4096];
	lsm_file *f;
	int rc;

	lsm_wal_path(db->dir, seg_no, path, sizeof path);
	rc = db->env->open(db->env, path, LSM_OPEN_WRITE | LSM_OPEN_CREATE | LSM_OPEN_TRUNC, &f);
	if (rc != LSM_OK)
		return fail(w, rc);
	encode_segment_header(h, seg_no);
	rc = db->env->write(f, 0, h, sizeof h);
	if (rc == LSM_OK)
		rc = db->env->sync(f);
	db->env->close(f);
	if (rc == LSM_OK)
		rc = db->env->sync_dir(db->env, db->dir);
	if (rc != LSM_OK)
		return fail(w, rc);
	w->seg_no = seg_no;
	w->seg_written = LSM_WAL_HEADER_SIZE;
	atomic_fetch_add(&db->region->n_wal_segments, 1);
	return LSM_OK;
}

/* Closes the current segment durably and starts the next. */
int lsm_wal_rotate(lsm_db *db)
{
	lsm_wal_shared *w = &db->region->wal;
	lsm_file *f;
	int rc = lsm_wal_write_buffer(db);

	if (rc == LSM_OK)
		rc = current_file(db, &f);
	if (rc == LSM_OK) {
		/* wal_fd_mu keeps a concurrent syncer's fsync off a closed handle */
		pthread_mutex_lock(&db->wal_fd_mu);
		rc = db->env->sync(f);
		pthread_mutex_unlock(&db->wal_fd_mu);
	}
	if (rc != LSM_OK)
		return fail(w, rc);
	atomic_fetch_add(&db->region->n_wal_syncs, 1);
	advance_synced(db->region, w->append_lsn);
	w->unsynced_writes = 0;
	w->unsynced_bytes = 0;
	return lsm_wal_start_segment(db, w->seg_no + 1);
}

int lsm_wal_append(lsm_db *db, const uint8_t *rep, size_t len, uint64_t first_seq,
                   uint64_t *end_lsn)
{
	lsm_wal_shared *w = &db->region->wal;
	uint8_t hdr[LSM_WAL_RECORD_HEADER + 8];
	uint8_t *seqp = hdr + LSM_WAL_RECORD_HEADER;
	size_t reclen = LSM_WAL_RECORD_HEADER + len;
	uint32_t crc;
	int rc;

	if (w->error)
		return w->error;
	if (len < LSM_BATCH_HEADER || len > UINT32_MAX)
		return LSM_TOOBIG;
	/* the stored payload is the rep with its real first sequence */
	lsm_put_fixed64(seqp, first_seq);
	crc = lsm_crc32_extend(lsm_crc32(seqp, 8), rep + 8, len - 8);
	lsm_logrec_header(hdr, len, crc);

	if (w->seg_written + w->buf_len > LSM_WAL_HEADER_SIZE &&
	    w->seg_written + w->buf_len + reclen > db->opts.wal_segment_size &&
	    (rc = lsm_wal_rotate(db)) != LSM_OK)
		return rc;
	if (w->buf_len + reclen > w->buf_cap && (rc = lsm_wal_write_buffer(db)) != LSM_OK)
		return rc;
	if (reclen > w->buf_cap) {
		/* too big to buffer: straight to the file, in three pieces */
		if ((rc = write_at_end(db, hdr, LSM_WAL_RECORD_HEADER + 8)) != LSM_OK ||
		    (rc = write_at_end(db, rep + 8, len - 8)) != LSM_OK)
			return rc;
	} else {
		uint8_t *dst = wal_buffer(db) + w->buf_len;

		memcpy(dst, hdr, LSM_WAL_RECORD_HEADER + 8);
		memcpy(dst + LSM_WAL_RECORD_HEADER + 8, rep + 8, len - 8);
		w->buf_len += reclen;
	}
	w->append_lsn += reclen;
	w->unsynced_writes++;
	w->unsynced_bytes += reclen;
	*end_lsn = w->append_lsn;
	return LSM_OK;
}

/* Lets writers that are already inside a synced write append their records
 * before the fsync, so one fsync serves all of them.  Without this, synced
 * writers settle into two groups that alternate between appending and
 * waiting, and each fsync covers only half of them. */
static void gather_group(lsm_db *db)
{
	lsm_wal_shared *w = &db->region->wal;
	uint64_t limit = db->opts.wal_group_wait_micros, t0 = 0;

	if (limit == 0)
		return;
	while (atomic_load(&w->sync_records) < atomic_load(&w->sync_writers)) {
		uint64_t now = db->env->now_micros(db->env);

		if (t0 == 0)
			t0 = now;
		else if (now - t0 >= limit)
			break;
		sched_yield();
	}
}

/* One fsync as the group's leader: write out the buffer, sync, and return
 * the LSN now durable in *target.  Called without sync_mu. */
static int lead_sync(lsm_db *db, uint64_t *target)
{
	lsm_region *r = db->region;
	lsm_wal_shared *w = &r->wal;
	uint64_t seg, writes;
	int rc;

	gather_group(db);
	pthread_mutex_lock(&r->write_mu);
	rc = lsm_wal_write_buffer(db);
	*target = w->append_lsn;
	atomic_store(&w->sync_records, 0);
	seg = w->seg_no;
	writes = w->unsynced_writes;
	w->unsynced_writes = 0;
	w->unsynced_bytes = 0;
	pthread_mutex_unlock(&r->write_mu);
	if (rc != LSM_OK)
		return rc;

	pthread_mutex_lock(&db->wal_fd_mu);
	/* if the segment rotated meanwhile, rotation already synced it */
	if (db->wal_file != NULL && db->wal_file_seg == seg)
		rc = db->env->sync(db->wal_file);
	pthread_mutex_unlock(&db->wal_fd_mu);
	if (rc != LSM_OK) {
		pthread_mutex_lock(&r->write_mu);
		fail(w, rc);
		pthread_mutex_unlock(&r->write_mu);
		return rc;
	}
	atomic_fetch_add(&r->n_wal_syncs, 1);
	atomic_fetch_add(&r->n_wal_synced_writes, writes);
	return LSM_OK;
}

int lsm_wal_sync_to(lsm_db *db, uint64_t lsn)
{
	lsm_region *r = db->region;
	lsm_wal_shared *w = &r->wal;
	uint64_t target;
	int rc = LSM_OK;

	if (atomic_load(&w->synced_lsn) >= lsn)
		return LSM_OK;
	pthread_mutex_lock(&r->sync_mu);
	while (atomic_load(&w->synced_lsn) < lsn && rc == LSM_OK) {
		if (w->sync_leader) {
			/* a leader is syncing; its fsync may cover us (group commit).
			 * With a wait hook the wait is cut in 10 ms slices. */
			if (db->opts.wait_hook == NULL) {
				pthread_cond_wait(&r->sync_cv, &r->sync_mu);
			} else if (lsm_cond_wait_ms(&r->sync_cv, &r->sync_mu, 10) &&
			           atomic_load(&w->synced_lsn) < lsn) {
				pthread_mutex_unlock(&r->sync_mu);
				if (lsm_db_wait_hook(db))
					return LSM_BUSY;
				pthread_mutex_lock(&r->sync_mu);
			}
			if (w->sync_error)
				rc = w->sync_error;
			continue;
		}
		w->sync_leader = 1;
		pthread_mutex_unlock(&r->sync_mu);
		rc = lead_sync(db, &target);
		pthread_mutex_lock(&r->sync_mu);
		w->sync_leader = 0;
		if (rc == LSM_OK)
			advance_synced(r, target);
		else
			w->sync_error = rc;
		pthread_cond_broadcast(&r->sync_cv);
	}
	pthread_mutex_unlock(&r->sync_mu);
	return rc;
}

/* ------------------------------------------------------------ recovery */

/* Length of the valid record at off, or 0 when none starts there. */
static size_t record_at(const uint8_t *buf, size_t size, size_t off)
{
	uint32_t len;

	if (lsm_logrec_check(buf, size, off, &len) != LSM_LOGREC_OK)
		return 0;
	if (lsm_batch_rep_validate(buf + off + LSM_WAL_RECORD_HEADER, len) != LSM_OK)
		return 0;
	return LSM_WAL_RECORD_HEADER + (size_t)len;
}

/* First offset after off where a valid record starts, or size. */
static size_t next_record(const uint8_t *buf, size_t size, size_t off)
{
	size_t p;

	for (p = off + 1; p + LSM_WAL_RECORD_HEADER <= size; p++)
		if (record_at(buf, size, p) != 0)
			return p;
	return size;
}

static int read_whole(lsm_env *env, lsm_file *f, uint8_t **out, size_t *size)
{
	uint64_t sz;
	size_t got;
	uint8_t *buf;
	int rc;

	*out = NULL;
	if ((rc = env->size(f, &sz)) != LSM_OK)
		return rc;
	if (sz > SIZE_MAX - 1)
		return LSM_NOMEM;
	if ((buf = malloc(sz ? sz : 1)) == NULL)
		return LSM_NOMEM;
	if ((rc = env->read(f, 0, buf, sz, &got)) != LSM_OK || got != sz) {
		free(buf);
		return rc != LSM_OK ? rc : LSM_IOERR;
	}
	*out = buf;
	*size = sz;
	return LSM_OK;
}

/* Cuts the torn tail of the newest segment so that later opens, when this
 * segment is no longer the newest, find it complete. */
static int cut_tail(lsm_env *env, lsm_file *f, uint64_t keep)
{
	int rc = env->truncate(f, keep);

	return rc == LSM_OK ? env->sync(f) : rc;
}

int lsm_wal_replay_segment(lsm_env *env, const char *path, uint64_t seg_no,
                           int flags, lsm_wal_record_fn fn, void *arg,
                           uint64_t *records, uint64_t *dropped, int64_t *bad_off)
{
	int tail_ok = flags & LSM_WAL_TAIL_OK, salvage = flags & LSM_WAL_SALVAGE;
	int cut = !(flags & LSM_WAL_READ_ONLY);
	lsm_file *f;
	uint8_t *buf = NULL;
	size_t size = 0, off, n;
	int rc;

	if (bad_off)
		*bad_off = -1;
	rc = env->open(env, path, cut ? LSM_OPEN_WRITE : LSM_OPEN_READ, &f);
	if (rc != LSM_OK)
		return rc;
	if ((rc = read_whole(env, f, &buf, &size)) != LSM_OK)
		goto out;
	if (size < LSM_WAL_HEADER_SIZE || check_segment_header(buf, seg_no) != LSM_OK) {
		/* an empty file or a header cut short: a crash while creating it */
		if (size == 0)
			goto out;
		if (bad_off)
			*bad_off = 0;
		if ((tail_ok && size < LSM_WAL_HEADER_SIZE) || salvage) {
			*dropped += size;
			rc = cut ? cut_tail(env, f, 0) : LSM_OK;
		} else
			rc = lsm_error_note(path, 0, "bad WAL segment header");
		goto out;
	}
	off = LSM_WAL_HEADER_SIZE;
	while (off < size) {
		n = record_at(buf, size, off);
		if (n != 0) {
			lsm_error_clear();
			if (fn && (rc = fn(arg, buf + off + LSM_WAL_RECORD_HEADER,
			                   n - LSM_WAL_RECORD_HEADER)) != LSM_OK) {
				lsm_error_info inner;

				if (rc == LSM_CORRUPTION)
					lsm_error_note(path, (int64_t)off, "WAL record refused: %s",
					               lsm_error_where(&inner) ? inner.reason
					                                       : "it does not decode");
				goto out;
			}
			(*records)++;
			off += n;
			continue;
		}
		if (bad_off && *bad_off < 0)
			*bad_off = (int64_t)off;
		n = next_record(buf, size, off);
		if (n < size && salvage) {
			*dropped += n - off;
			off = n;
			continue;
		}
		if (n < size || !(tail_ok || salvage)) {
			rc = lsm_error_note(path, (int64_t)off, n < size
			                    ? "damaged WAL record with valid records after it"
			                    : "damaged WAL record at the end of a segment that is not the newest");
			goto out;
		}
		*dropped += size - off;
		rc = cut ? cut_tail(env, f, off) : LSM_OK;
		break;
	}
out:
	free(buf);
	env->close(f);
	return rc;
}
