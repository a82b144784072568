/*-------------------------------------------------------------------------
 *
 * lsm_row.h
 *	  Keys and row records of lsm tables.
 *
 * Key: spcNode | dbNode | relNode | rowid, big-endian (4+4+4+6 bytes), so a
 * relation is one contiguous key range and its rows sort by rowid.
 *
 * TID: block = rowid / LSM_ROWS_PER_BLOCK, offset = rowid % it + 1; 291 is
 * MaxHeapTuplesPerPage, the largest offset core code (tidbitmap, ...)
 * accepts.  LSM_ROWID_RESERVE, past every valid TID, holds the rowid
 * allocator's high-water mark inside the relation's range, so a range
 * delete takes it along.
 *
 * Row record (the value), little-endian, 28 bytes then the tuple body:
 *	 xmin, xmax, cmin, cmax	  4 bytes each (xmax 0: none)
 *	 infomask2, infomask		  as in the heap tuple (natts, nulls, varwidth,
 *							  external); no hint bits are ever stored
 *	 flags					  LSM_ROW_*; a single locker's strength is
 *							  stored as LockTupleExclusive - mode, so 0
 *							  (what records written before lock
 *							  strengths carry) means FOR UPDATE
 *	 hoff					  the heap tuple's t_hoff
 *	 successor				  6-byte rowid of the newer version
 *							  (LSM_ROW_UPDATED)
 *	 null bitmap (when HEAP_HASNULL), then the data as a heap tuple lays it
 *	 out from t_hoff (alignment padding included, relative to an aligned
 *	 start).
 * A row is rebuilt as a HeapTuple in aligned memory to be read.
 *
 * Versions in the record (updates that keep the TID, like heap's HOT): a
 * record is one or more versions, newest first, each a 28-byte header and
 * a body as above.  A version with LSM_ROW_OLDER set has a 4-byte body
 * length after its header, and an older version follows it.  Every
 * version but the first was updated by the one before it: LSM_ROW_UPDATED,
 * xmax the newer version's xmin, successor its own rowid.  Versions that
 * no snapshot can see any more are left out when the record is written
 * again (lsm_modify.c, lsm_vacuum.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LSM_ROW_H
#define LSM_ROW_H

#include "postgres.h"

#include "access/htup_details.h"
#include "nodes/lockoptions.h"
#include "storage/itemptr.h"
#include "storage/relfilenode.h"

#define LSM_KEY_LEN			18
#define LSM_ROWS_PER_BLOCK	MaxHeapTuplesPerPage
#define LSM_ROWID_MAX		((uint64) LSM_ROWS_PER_BLOCK * MaxBlockNumber)	/* exclusive */
#define LSM_ROWID_RESERVE	((UINT64CONST(1) << 48) - 1)

#define LSM_ROW_HEADER_LEN	28
#define LSM_ROW_FORMAT		1

/* flags */
#define LSM_ROW_UPDATED		0x01	/* xmax updated it: successor holds the newer row */
#define LSM_ROW_LOCK_ONLY	0x02	/* xmax only locked it */
#define LSM_ROW_MULTI		0x04	/* xmax is a MultiXactId of lockers (LOCK_ONLY) */
#define LSM_ROW_LOCK_MODE	0x18	/* a single locker's strength, see below */
#define LSM_ROW_LOCK_SHIFT	3
#define LSM_ROW_OLDER		0x20	/* a body length follows the header, then an older version */
#define LSM_ROW_OLDER_LEN	4

typedef struct LsmRowHeader
{
	TransactionId xmin;
	TransactionId xmax;
	CommandId	cmin;
	CommandId	cmax;
	uint16		infomask2;
	uint16		infomask;
	uint8		flags;
	uint8		hoff;
	uint64		successor;
} LsmRowHeader;

/* The strength of a single locker's lock (LSM_ROW_LOCK_ONLY, not MULTI). */
static inline LockTupleMode
lsm_row_lock_mode(const LsmRowHeader *h)
{
	return (LockTupleMode) (LockTupleExclusive -
							((h->flags & LSM_ROW_LOCK_MODE) >> LSM_ROW_LOCK_SHIFT));
}

static inline void
lsm_row_set_single_locker(LsmRowHeader *h, TransactionId xid, LockTupleMode mode)
{
	h->xmax = xid;
	h->flags = (h->flags & ~(LSM_ROW_UPDATED | LSM_ROW_MULTI | LSM_ROW_LOCK_MODE)) |
		LSM_ROW_LOCK_ONLY | ((LockTupleExclusive - mode) << LSM_ROW_LOCK_SHIFT);
}

static inline void
lsm_key_encode(uint8 *out, const RelFileNode *rn, uint64 rowid)
{
	uint32		parts[3] = {rn->spcNode, rn->dbNode, rn->relNode};

	for (int i = 0; i < 3; i++)
	{
		out[4 * i] = (uint8) (parts[i] >> 24);
		out[4 * i + 1] = (uint8) (parts[i] >> 16);
		out[4 * i + 2] = (uint8) (parts[i] >> 8);
		out[4 * i + 3] = (uint8) parts[i];
	}
	for (int i = 0; i < 6; i++)
		out[12 + i] = (uint8) (rowid >> (8 * (5 - i)));
}

static inline uint64
lsm_key_rowid(const uint8 *key)
{
	uint64		r = 0;

	for (int i = 0; i < 6; i++)
		r = (r << 8) | key[12 + i];
	return r;
}

static inline void
lsm_rowid_to_tid(uint64 rowid, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) (rowid / LSM_ROWS_PER_BLOCK),
				   (OffsetNumber) (rowid % LSM_ROWS_PER_BLOCK + 1));
}

/* false for a TID no row can have */
static inline bool
lsm_tid_to_rowid(ItemPointer tid, uint64 *rowid)
{
	BlockNumber blk = ItemPointerGetBlockNumberNoCheck(tid);
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	if (off < 1 || off > LSM_ROWS_PER_BLOCK || blk >= MaxBlockNumber)
		return false;
	*rowid = (uint64) blk * LSM_ROWS_PER_BLOCK + (off - 1);
	return true;
}

/* One version of a record: its header and its bytes (header, body length
 * if LSM_ROW_OLDER, body). */
typedef struct LsmRowVersion
{
	LsmRowHeader h;
	const uint8 *rec;
	size_t		len;
} LsmRowVersion;

/* Walks the versions of a record, newest first. */
typedef struct LsmRowIter
{
	const uint8 *rec;
	size_t		len;
	size_t		off;
} LsmRowIter;

static inline void
lsm_row_iter_init(LsmRowIter *it, const uint8 *rec, size_t len)
{
	it->rec = rec;
	it->len = len;
	it->off = 0;
}

/* lsm_row.c */
/* 1: *v is the next version; 0: no more; -1: the record is malformed. */
extern int	lsm_row_iter_next(LsmRowIter *it, LsmRowVersion *v);
/* Whether the record holds more than one version. */
static inline bool
lsm_row_has_older(const LsmRowHeader *h)
{
	return (h->flags & LSM_ROW_OLDER) != 0;
}
/*
 * Builds a record from versions given newest first: each is written when
 * the next one arrives (or at the end), so it knows whether an older one
 * follows.  The output is palloc'd.
 */
typedef struct LsmRowWriter
{
	uint8	   *out;
	size_t		len;
	size_t		cap;
	LsmRowVersion pending;		/* the next version's bytes */
	LsmRowHeader pending_h;		/* and the header to write for it */
	bool		have_pending;
} LsmRowWriter;

/* Adds the version src under header h (src's bytes, h's MVCC fields). */
extern void lsm_row_writer_add(LsmRowWriter *w, const LsmRowHeader *h, const LsmRowVersion *src);
/* The record (NULL when no version was added), *len bytes. */
extern uint8 *lsm_row_writer_finish(LsmRowWriter *w, size_t *len);
/* The version a record of one version (lsm_row_build's) holds. */
extern LsmRowVersion lsm_row_version_of(const uint8 *rec, size_t len);
extern void lsm_row_header_encode(uint8 *out, const LsmRowHeader *h);
/* false when the record is too short or malformed */
extern bool lsm_row_header_decode(const uint8 *rec, size_t len, LsmRowHeader *h);
/* The record of tuple under header h (h's infomask fields are taken from
 * the tuple), palloc'd, in *len bytes. */
extern uint8 *lsm_row_build(const LsmRowHeader *h, HeapTuple tuple, size_t *len);
/* Rebuilds the heap tuple of one version (rec, len: LsmRowVersion's) into *buf (palloc'd, grown as
 * needed, MAXALIGN'd), filling its header from h; tuple->t_data points
 * into *buf.  false when the record is malformed. */
extern bool lsm_row_to_tuple(const uint8 *rec, size_t len, const LsmRowHeader *h,
							 char **buf, Size *bufsize, HeapTuple tuple);

#endif							/* LSM_ROW_H */
