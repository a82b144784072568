/*
 * version.h — the file set of a database: file metadata, version edits,
 * versions, the manifest that logs them, CURRENT, and which files are
 * garbage.  (version.c: metadata, edits, versions, queries; manifest.c:
 * files on disk.)
 *
 * Ownership and lifetimes
 *   - lsm_file_meta is immutable once made and reference counted (atomic):
 *     every version and every edit that lists a file holds one reference.
 *     Its two boundary keys live in the same allocation, after the struct.
 *     A file that changes level (a trivial move) is a new meta.
 *   - lsm_version is immutable and reference counted (atomic).  Versions are
 *     process-local: each process builds its own from the manifest and
 *     catches up by applying the edits appended since (lsm_version_apply
 *     makes a new version from an old one and an edit; the old one stays
 *     valid while referenced).  Pointers a query hands out (file metas,
 *     keys) live as long as the version they came from.
 *   - lsm_version_edit owns what it holds: one reference per added file,
 *     malloc'd copies of compact-pointer keys.  lsm_edit_free releases them.
 *
 * Version invariants (lsm_version_apply refuses with LSM_CORRUPTION any edit
 * that would break one, and leaves the old version untouched)
 *   - A file number appears at most once in a version; numbers are >= 1.
 *   - Level 0 is ordered newest first: largest_seq descending, then file
 *     number descending.  L0 files may overlap.
 *   - Levels >= 1 are ordered by smallest key and do not overlap in
 *     internal-key order: files[i].largest < files[i+1].smallest.  One user
 *     key's versions may therefore straddle two adjacent files (newer ones
 *     at the end of the first); a point read that reaches the end of a file
 *     whose largest user key equals its key goes on into the next file.
 *   - smallest <= largest (internal order), smallest_seq <= largest_seq.
 *
 * User-key ranges in queries are inclusive; a NULL key pointer means
 * unbounded on that side (pass the empty key as a non-NULL pointer).
 */
#ifndef LSM_VERSION_H
#define LSM_VERSION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lsm.h"
#include "coding.h"
#include "ikey.h"

#ifndef LSM_MAX_LEVELS
#define LSM_MAX_LEVELS 7
#endif

/* ---------------------------------------------------------------- names */
#define LSM_CURRENT_NAME     "CURRENT"
#define LSM_CURRENT_TMP_NAME "CURRENT.tmp"

/* Each builds dir/name into out; LSM_INVALID when it does not fit outlen. */
int  lsm_sst_path(const char *dir, uint64_t number, char *out, size_t outlen);      /* %06llu.sst */
int  lsm_sst_tmp_path(const char *dir, uint64_t number, char *out, size_t outlen);  /* %06llu.sst.tmp */
int  lsm_manifest_path(const char *dir, uint64_t number, char *out, size_t outlen); /* MANIFEST-%06llu */
int  lsm_current_path(const char *dir, char *out, size_t outlen);
int  lsm_current_tmp_path(const char *dir, char *out, size_t outlen);
/* 1 and *number when name is exactly what the path helper makes, else 0. */
int  lsm_sst_parse_name(const char *name, uint64_t *number);
int  lsm_manifest_parse_name(const char *name, uint64_t *number);

/* ------------------------------------------------------------ file meta */
/* An internal key by reference: user key bytes and the trailer. */
typedef struct lsm_ikey_ref {
	const uint8_t *key;
	size_t len;
	uint64_t trailer;
} lsm_ikey_ref;

typedef struct lsm_file_meta {
	_Atomic uint32_t refs;
	int level;
	uint64_t number;
	uint64_t size;                /* bytes of the .sst file */
	lsm_ikey_ref smallest;        /* keys point into this allocation */
	lsm_ikey_ref largest;
	uint64_t smallest_seq;
	uint64_t largest_seq;
	uint64_t entries;
	uint64_t range_dels;          /* range tombstones in the file */
} lsm_file_meta;

/* A new meta (refs = 1) with tmpl's fields and copies of the keys tmpl
 * points to (tmpl->refs is ignored).  NULL when out of memory. */
lsm_file_meta *lsm_file_meta_new(const lsm_file_meta *tmpl);
void lsm_file_meta_ref(lsm_file_meta *m);
void lsm_file_meta_unref(lsm_file_meta *m);   /* NULL is a no-op */

/* --------------------------------------------------------- version edit */
#define LSM_EDIT_LOG_NUMBER    0x1u
#define LSM_EDIT_NEXT_FILE     0x2u
#define LSM_EDIT_LAST_SEQUENCE 0x4u

typedef struct lsm_deleted_file {
	int level;
	uint64_t number;
} lsm_deleted_file;

typedef struct lsm_version_edit {
	unsigned has;                 /* LSM_EDIT_* bits: which scalars are set */
	uint64_t log_number;          /* WAL segments below it are not needed */
	uint64_t next_file_number;
	uint64_t last_sequence;
	unsigned compact_mask;        /* bit L: compact_ptr[L] is set */
	lsm_ikey_ref compact_ptr[LSM_MAX_LEVELS];   /* keys malloc'd, owned */
	lsm_deleted_file *deleted;
	size_t ndeleted, deleted_cap;
	lsm_file_meta **added;        /* one reference each; level in the meta */
	size_t nadded, added_cap;
} lsm_version_edit;

void lsm_edit_init(lsm_version_edit *e);
/* Releases everything e holds and leaves it empty (initialised). */
void lsm_edit_free(lsm_version_edit *e);
void lsm_edit_set_log_number(lsm_version_edit *e, uint64_t n);
void lsm_edit_set_next_file(lsm_version_edit *e, uint64_t n);
void lsm_edit_set_last_sequence(lsm_version_edit *e, uint64_t seq);
/* LSM_INVALID for a bad level, LSM_NOMEM. */
int  lsm_edit_set_compact_pointer(lsm_version_edit *e, int level,
                                  const void *key, size_t klen, uint64_t trailer);
int  lsm_edit_delete_file(lsm_version_edit *e, int level, uint64_t number);
/* Takes a new reference to m (m->level says where it goes). */
int  lsm_edit_add_file(lsm_version_edit *e, lsm_file_meta *m);

/* Appends e's encoding to out (LSM_NOMEM from the buffer). */
int  lsm_edit_encode(const lsm_version_edit *e, lsm_buf *out);
/* Decodes p[0..n) into e (initialised here).  LSM_CORRUPTION for anything
 * malformed; e is left empty on any error. */
int  lsm_edit_decode(lsm_version_edit *e, const uint8_t *p, size_t n);

/* -------------------------------------------------------------- version */
typedef struct lsm_version {
	_Atomic uint32_t refs;
	lsm_file_meta **files[LSM_MAX_LEVELS];  /* ordered as described above */
	size_t nfiles[LSM_MAX_LEVELS];
	uint64_t bytes[LSM_MAX_LEVELS];
	/* where the next size-triggered compaction of each level starts */
	unsigned compact_mask;
	lsm_ikey_ref compact_ptr[LSM_MAX_LEVELS];  /* keys malloc'd, owned */
	uint64_t max_file_number;                 /* 0 when empty */
	uint64_t edit_seq;            /* set by the db: the region edit it reflects */
} lsm_version;

/* An empty version (refs = 1). */
int  lsm_version_new(lsm_version **out);
void lsm_version_ref(lsm_version *v);
void lsm_version_unref(lsm_version *v);    /* NULL is a no-op */

/* A new version (refs = 1) = base (NULL: empty) with e applied.  Scalars
 * of e are not version state (see lsm_manifest_state).  LSM_CORRUPTION
 * when e deletes a file not in base at that level, adds a number already
 * present, or leaves an L1+ level overlapping; LSM_NOMEM. */
int  lsm_version_apply(const lsm_version *base, const lsm_version_edit *e,
                       lsm_version **out);
/* Adds every file and compact pointer of v to e (a snapshot edit; the
 * caller sets the scalars). */
int  lsm_version_snapshot(const lsm_version *v, lsm_version_edit *e);

static inline size_t lsm_version_level_files(const lsm_version *v, int level)
{
	return v->nfiles[level];
}
static inline uint64_t lsm_version_level_bytes(const lsm_version *v, int level)
{
	return v->bytes[level];
}
uint64_t lsm_version_total_bytes(const lsm_version *v);
size_t   lsm_version_total_files(const lsm_version *v);

/* A list of borrowed file pointers (valid while the version is). */
typedef struct lsm_file_list {
	lsm_file_meta **v;
	size_t n, cap;
} lsm_file_list;
void lsm_file_list_init(lsm_file_list *l);
void lsm_file_list_free(lsm_file_list *l);

/* Files of `level` whose user-key range meets [begin, end] are appended to
 * out in level order.  With LSM_OVERLAP_EXPAND on level 0, the range grows
 * to cover every file taken until no other L0 file meets it (what a
 * compaction must take so an older L0 version of a key is never left
 * above a newer one).  LSM_INVALID for a bad level; LSM_NOMEM. */
#define LSM_OVERLAP_EXPAND 0x1
int  lsm_version_overlapping(const lsm_version *v, int level,
                             const void *begin, size_t blen,
                             const void *end, size_t elen,
                             int flags, lsm_file_list *out);
/* 1 when some file of level meets [begin, end], else 0 (no allocation). */
int  lsm_version_overlaps(const lsm_version *v, int level,
                          const void *begin, size_t blen,
                          const void *end, size_t elen);
/* Level >= 1: index of the first file whose largest key is >= (key,
 * trailer) in internal order (nfiles when none); binary search. */
size_t lsm_version_find_file(const lsm_version *v, int level,
                             const void *key, size_t klen, uint64_t trailer);
/* Level >= 1: the first file whose user-key range contains key, or NULL. */
lsm_file_meta *lsm_version_file_for_key(const lsm_version *v, int level,
                                        const void *key, size_t klen);
/* 1 when file `number` is in v (any level). */
int  lsm_version_has_file(const lsm_version *v, uint64_t number);

/* ------------------------------------------------------------- manifest */
/*
 * A manifest MANIFEST-NNNNNN is a log of records framed as in logrec.h,
 * each payload one encoded edit.  Its first record is a snapshot of a
 * version with all three scalars set.  CURRENT holds exactly
 * "MANIFEST-NNNNNN\n" and names the live manifest.
 */

/* What replaying a manifest yields: a version plus the scalars, and where
 * the reading stopped, so a process can later catch up from there. */
typedef struct lsm_manifest_state {
	lsm_version *version;         /* one reference, owned */
	unsigned has;                 /* LSM_EDIT_* scalars seen so far */
	uint64_t log_number;
	uint64_t next_file_number;
	uint64_t last_sequence;
	uint64_t manifest_number;     /* the manifest these came from */
	uint64_t offset;              /* bytes of it consumed: the next record */
	uint64_t edits;               /* records of it applied */
} lsm_manifest_state;

/* An empty version, no scalars; LSM_NOMEM. */
int  lsm_manifest_state_init(lsm_manifest_state *st);
void lsm_manifest_state_free(lsm_manifest_state *st);
/* Applies e to st: a new version, and the scalars e sets, each only ever
 * raised (an edit carrying a smaller value does not lower it).  st is
 * unchanged on error. */
int  lsm_manifest_state_apply(lsm_manifest_state *st, const lsm_version_edit *e);

/* CURRENT.  read: LSM_NOTFOUND when absent, LSM_CORRUPTION unless the
 * content is exactly "MANIFEST-NNNNNN\n" with a number >= 1.  set: writes
 * CURRENT.tmp, fsyncs it, renames it over CURRENT, fsyncs the directory. */
int  lsm_current_read(lsm_env *env, const char *dir, uint64_t *number);
int  lsm_current_set(lsm_env *env, const char *dir, uint64_t number);

/* The tail-follow reader.  Decodes records of manifest `number` from byte
 * `offset` (where a record starts: 0 or an end offset returned before),
 * calling fn(arg, edit, end offset of its record) for each, at most
 * max_edits of them.  Stops cleanly at an incomplete final record (one
 * being written, or torn by a crash): *end_offset is where that record
 * starts and *dropped its bytes.  Damage followed by a valid record, a
 * checksummed record that does not decode, or offset past the end of the
 * file is LSM_CORRUPTION.  *end_offset always ends the last record passed
 * to fn.  fn may return non-zero to stop with that code. */
typedef int (*lsm_manifest_edit_fn)(void *arg, const lsm_version_edit *e,
                                    uint64_t end_offset);
#define LSM_MANIFEST_ALL UINT64_MAX   /* max_edits: no limit */
int  lsm_manifest_read(lsm_env *env, const char *dir, uint64_t number,
                       uint64_t offset, uint64_t max_edits,
                       lsm_manifest_edit_fn fn, void *arg,
                       uint64_t *end_offset, uint64_t *dropped);
/* Catch-up: applies the edits of st's manifest after st->offset (at most
 * max_edits) to st.  *dropped as above (NULL: not wanted). */
int  lsm_manifest_catch_up(lsm_env *env, const char *dir, lsm_manifest_state *st,
                           uint64_t max_edits, uint64_t *dropped);
/* Replays manifest `number` whole into a fresh st (initialised here; freed
 * on error).  LSM_CORRUPTION when a scalar never appears.  next_file_number
 * is raised above every file number in use, the manifest's own included. */
int  lsm_manifest_load(lsm_env *env, const char *dir, uint64_t number,
                       lsm_manifest_state *st, uint64_t *dropped);
/* Recovery: CURRENT, then lsm_manifest_load of the manifest it names. */
int  lsm_manifest_recover(lsm_env *env, const char *dir, lsm_manifest_state *st,
                          uint64_t *dropped);

/*
 * The writer.  One writer per database at a time (the caller serializes
 * it, across processes too, with the same lock as the obsolete-file
 * executor).  Every record is written with one write and fsync'd before a
 * call returns LSM_OK.  After a failed write or fsync of the live manifest,
 * or a failed CURRENT rename or directory sync, what is on disk is
 * unknown (old or new state): the writer refuses everything from then on
 * (sticky error), and the caller must stop deleting files and recover by
 * reopening.  A failure while building a new manifest before its CURRENT
 * rename leaves the old manifest live and the writer usable.
 */
typedef struct lsm_manifest_writer {
	lsm_env *env;
	char *dir;
	uint64_t number;              /* the live manifest */
	lsm_file *file;
	uint64_t size;                /* bytes written: where the next record goes */
	uint64_t max_size;            /* lsm_manifest_should_rotate past this */
	uint64_t snapshot_size;       /* its first record (0: unknown, resumed) */
	int error;                    /* sticky */
} lsm_manifest_writer;

/* Writes manifest `number` holding a snapshot of st, fsyncs it and points
 * CURRENT at it; st->manifest_number/offset/edits then describe it.
 * number must be >= 1 and not used by a file of st's version. */
int  lsm_manifest_create(lsm_env *env, const char *dir, uint64_t number,
                         lsm_manifest_state *st, uint64_t max_size,
                         lsm_manifest_writer **out);
/* Continues appending to st's manifest after recovery: cuts the file back
 * to st->offset (a torn tail) and syncs it. */
int  lsm_manifest_resume(lsm_env *env, const char *dir, const lsm_manifest_state *st,
                         uint64_t max_size, lsm_manifest_writer **out);
void lsm_manifest_close(lsm_manifest_writer *w);  /* NULL is a no-op */
/* Appends e as one record and fsyncs (no validation: see log_and_apply). */
int  lsm_manifest_append(lsm_manifest_writer *w, const lsm_version_edit *e);
/* 1 when the live manifest is past max_size and more than twice its
 * snapshot (so a large file set does not rotate on every edit). */
int  lsm_manifest_should_rotate(const lsm_manifest_writer *w);
/* The write path: applies e to st in memory (refusing an invalid edit
 * before anything is written), then either appends e (rotate_to == 0) or
 * writes manifest rotate_to holding a snapshot of the new state and
 * switches CURRENT to it.  rotate_to is a file number the caller allocated
 * (e.g. st->next_file_number++ when lsm_manifest_should_rotate says so);
 * the snapshot's next_file_number is raised above it.  st must be the
 * state this writer last wrote (LSM_INVALID otherwise).  On LSM_OK st holds
 * the new state; on error st is unchanged. */
int  lsm_manifest_log_and_apply(lsm_manifest_writer *w, lsm_manifest_state *st,
                                const lsm_version_edit *e, uint64_t rotate_to);

/* -------------------------------------------------------- obsolete files */
typedef struct lsm_live_files {
	const lsm_version *version;   /* files it lists are live */
	uint64_t log_number;          /* WAL segments >= it are live */
	uint64_t manifest_number;     /* the live manifest */
	const uint64_t *pending;      /* numbers of outputs being written */
	size_t npending;
	uint64_t pending_floor;       /* numbers >= it count as pending (0: none) */
} lsm_live_files;

/* The pure decision: garbage[i] = 1 when names[i] may be deleted —
 * NNNNNN.sst not in the version nor pending (listed, or >= the floor); *.tmp unless its leading
 * number is pending (CURRENT.tmp is always garbage); MANIFEST-NNNNNN other
 * than the live one and not pending; NNNN.wal below log_number.  Anything
 * else (CURRENT, LOCK, IDENTITY, unknown names) is kept.  LSM_NOMEM. */
int  lsm_obsolete_decide(const lsm_live_files *live, const char *const *names,
                         size_t n, uint8_t *garbage);
/* Lists dir, decides, removes the garbage (a file already gone is fine).
 * Returns the first error but tries every removal; *removed counts them
 * (NULL: not wanted). */
int  lsm_obsolete_remove(lsm_env *env, const char *dir, const lsm_live_files *live,
                         uint64_t *removed);

#endif
