/*-------------------------------------------------------------------------
 *
 * lsm_row.c
 *	  Row records of lsm tables: encoding, and rebuilding heap tuples.
 *
 * The format is in lsm_row.h.  Invariants: a record is at least
 * LSM_ROW_HEADER_LEN bytes; hoff is MAXALIGN'd and at least the heap
 * header plus the null bitmap; a rebuilt tuple never reads past the record
 * (every length is checked, since records come from disk).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"

#include "lsm_row.h"

static inline void
put32(uint8 *p, uint32 v)
{
	p[0] = (uint8) v;
	p[1] = (uint8) (v >> 8);
	p[2] = (uint8) (v >> 16);
	p[3] = (uint8) (v >> 24);
}

static inline uint32
get32(const uint8 *p)
{
	return (uint32) p[0] | ((uint32) p[1] << 8) | ((uint32) p[2] << 16) |
		((uint32) p[3] << 24);
}

static inline void
put16(uint8 *p, uint16 v)
{
	p[0] = (uint8) v;
	p[1] = (uint8) (v >> 8);
}

static inline uint16
get16(const uint8 *p)
{
	return (uint16) (p[0] | (p[1] << 8));
}

void
lsm_row_header_encode(uint8 *out, const LsmRowHeader *h)
{
	put32(out, h->xmin);
	put32(out + 4, h->xmax);
	put32(out + 8, h->cmin);
	put32(out + 12, h->cmax);
	put16(out + 16, h->infomask2);
	put16(out + 18, h->infomask);
	out[20] = h->flags;
	out[21] = h->hoff;
	for (int i = 0; i < 6; i++)
		out[22 + i] = (uint8) (h->successor >> (8 * (5 - i)));
}

bool
lsm_row_header_decode(const uint8 *rec, size_t len, LsmRowHeader *h)
{
	if (len < LSM_ROW_HEADER_LEN)
		return false;
	h->xmin = get32(rec);
	h->xmax = get32(rec + 4);
	h->cmin = get32(rec + 8);
	h->cmax = get32(rec + 12);
	h->infomask2 = get16(rec + 16);
	h->infomask = get16(rec + 18);
	h->flags = rec[20];
	h->hoff = rec[21];
	h->successor = 0;
	for (int i = 0; i < 6; i++)
		h->successor = (h->successor << 8) | rec[22 + i];
	return h->hoff >= SizeofHeapTupleHeader && h->hoff == MAXALIGN(h->hoff);
}

/* Where a version's null bitmap starts. */
static inline size_t
body_offset(const LsmRowHeader *h)
{
	return LSM_ROW_HEADER_LEN + (lsm_row_has_older(h) ? LSM_ROW_OLDER_LEN : 0);
}

int
lsm_row_iter_next(LsmRowIter *it, LsmRowVersion *v)
{
	size_t		left = it->len - it->off;

	if (it->off >= it->len)
		return 0;
	if (!lsm_row_header_decode(it->rec + it->off, left, &v->h))
		return -1;
	v->rec = it->rec + it->off;
	if (lsm_row_has_older(&v->h))
	{
		size_t		body;

		if (left < LSM_ROW_HEADER_LEN + LSM_ROW_OLDER_LEN)
			return -1;
		body = get32(v->rec + LSM_ROW_HEADER_LEN);
		if (body >= left - LSM_ROW_HEADER_LEN - LSM_ROW_OLDER_LEN)
			return -1;			/* an older version must follow */
		v->len = LSM_ROW_HEADER_LEN + LSM_ROW_OLDER_LEN + body;
	}
	else
		v->len = left;
	it->off += v->len;
	return 1;
}

/* Appends version src with header h, marked as followed by an older
 * version or not. */
static void
append_version(LsmRowWriter *w, const LsmRowHeader *h, const LsmRowVersion *src,
			   bool older_follows)
{
	LsmRowHeader hdr = *h;
	size_t		from = body_offset(&src->h),
				body = src->len - from,
				need;

	if (older_follows)
		hdr.flags |= LSM_ROW_OLDER;
	else
		hdr.flags &= ~LSM_ROW_OLDER;
	need = w->len + body_offset(&hdr) + body;
	if (w->out == NULL || need > w->cap)
	{
		size_t		newcap = Max(need, Max(w->cap * 2, 256));

		w->out = w->out ? repalloc(w->out, newcap) : palloc(newcap);
		w->cap = newcap;
	}
	lsm_row_header_encode(w->out + w->len, &hdr);
	if (older_follows)
		put32(w->out + w->len + LSM_ROW_HEADER_LEN, (uint32) body);
	memcpy(w->out + w->len + body_offset(&hdr), src->rec + from, body);
	w->len = need;
}

void
lsm_row_writer_add(LsmRowWriter *w, const LsmRowHeader *h, const LsmRowVersion *src)
{
	if (w->have_pending)
		append_version(w, &w->pending_h, &w->pending, true);
	w->pending = *src;
	w->pending_h = *h;
	w->have_pending = true;
}

uint8 *
lsm_row_writer_finish(LsmRowWriter *w, size_t *len)
{
	if (w->have_pending)
		append_version(w, &w->pending_h, &w->pending, false);
	w->have_pending = false;
	*len = w->len;
	return w->out;
}

LsmRowVersion
lsm_row_version_of(const uint8 *rec, size_t len)
{
	LsmRowVersion v;

	v.rec = rec;
	v.len = len;
	if (!lsm_row_header_decode(rec, len, &v.h))
		elog(ERROR, "an lsm row record just built does not decode");
	return v;
}

/* Bytes of null bitmap the record carries. */
static size_t
bitmap_len(const LsmRowHeader *h)
{
	return (h->infomask & HEAP_HASNULL) ?
		BITMAPLEN(h->infomask2 & HEAP_NATTS_MASK) : 0;
}

uint8 *
lsm_row_build(const LsmRowHeader *h, HeapTuple tuple, size_t *len)
{
	HeapTupleHeader td = tuple->t_data;
	LsmRowHeader hdr = *h;
	size_t		bits,
				data = tuple->t_len - td->t_hoff;
	uint8	   *rec;

	hdr.infomask2 = td->t_infomask2 & (HEAP_NATTS_MASK | HEAP_KEYS_UPDATED);
	hdr.infomask = td->t_infomask & (HEAP_HASNULL | HEAP_HASVARWIDTH | HEAP_HASEXTERNAL);
	hdr.hoff = td->t_hoff;
	hdr.flags &= ~LSM_ROW_OLDER;	/* a record of this one version */
	bits = bitmap_len(&hdr);
	*len = LSM_ROW_HEADER_LEN + bits + data;
	rec = palloc(*len);
	lsm_row_header_encode(rec, &hdr);
	if (bits)
		memcpy(rec + LSM_ROW_HEADER_LEN, td->t_bits, bits);
	memcpy(rec + LSM_ROW_HEADER_LEN + bits, (char *) td + td->t_hoff, data);
	return rec;
}

bool
lsm_row_to_tuple(const uint8 *rec, size_t len, const LsmRowHeader *h,
				 char **buf, Size *bufsize, HeapTuple tuple)
{
	size_t		bits = bitmap_len(h),
				start = body_offset(h),
				data;
	Size		need;
	HeapTupleHeader td;

	if (len < start + bits || SizeofHeapTupleHeader + bits > h->hoff)
		return false;
	data = len - start - bits;
	need = h->hoff + data;
	if (*buf == NULL || *bufsize < need)
	{
		Size		newsize = Max(need, 1024);

		if (*buf)
			pfree(*buf);
		*buf = palloc(newsize);	/* palloc'd memory is MAXALIGN'd */
		*bufsize = newsize;
	}
	td = (HeapTupleHeader) *buf;
	memset(td, 0, h->hoff);
	HeapTupleHeaderSetXmin(td, h->xmin);
	HeapTupleHeaderSetXmax(td, h->xmax);
	HeapTupleHeaderSetCmin(td, h->cmin);
	td->t_infomask2 = h->infomask2;
	td->t_infomask = h->infomask;
	if (h->xmax == InvalidTransactionId)
		td->t_infomask |= HEAP_XMAX_INVALID;
	else if (h->flags & LSM_ROW_MULTI)
		td->t_infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_IS_MULTI;
	else if (h->flags & LSM_ROW_LOCK_ONLY)
	{
		static const uint16 lock_bits[] = {
			[LockTupleKeyShare] = HEAP_XMAX_KEYSHR_LOCK,
			[LockTupleShare] = HEAP_XMAX_SHR_LOCK,
			[LockTupleNoKeyExclusive] = HEAP_XMAX_EXCL_LOCK,
			[LockTupleExclusive] = HEAP_XMAX_EXCL_LOCK,
		};

		td->t_infomask |= HEAP_XMAX_LOCK_ONLY | lock_bits[lsm_row_lock_mode(h)];
	}
	td->t_hoff = h->hoff;
	if (bits)
		memcpy(td->t_bits, rec + start, bits);
	memcpy((char *) td + h->hoff, rec + start + bits, data);
	tuple->t_len = (uint32) need;
	tuple->t_data = td;
	return true;
}
