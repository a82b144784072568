/*
 * ikey.h — internal keys and the internal iterator, shared by every layer
 * that stores or merges versions of keys (memtable, SSTables, merging,
 * compaction).
 *
 * An internal key is (user key, trailer); trailer = sequence << 8 | type.
 * Order: user keys ascending (memcmp, shorter first on a common prefix),
 * then trailers descending, so the newest version of a key comes first and
 * a seek to (key, pack(snapshot_seq, LSM_TYPE_SEEK)) lands on the newest
 * version visible at that snapshot.
 *
 * Types:
 *   LSM_TYPE_DELETE        a point tombstone (no value)
 *   LSM_TYPE_PUT           a value
 *   LSM_TYPE_RANGE_DELETE  key = start (inclusive), value = end (exclusive):
 *                          hides every version with a smaller sequence of
 *                          every key in [start, end).  Memtables keep them
 *                          beside the point entries; SSTables keep them in
 *                          their own block, never among the data blocks.
 * Types are never 0xff; LSM_TYPE_SEEK (0xff) only forms seek targets, and
 * sorts before every real type of the same sequence.
 */
#ifndef LSM_IKEY_H
#define LSM_IKEY_H

#include <stddef.h>
#include <stdint.h>

#define LSM_TYPE_DELETE       0
#define LSM_TYPE_PUT          1
#define LSM_TYPE_RANGE_DELETE 2
#define LSM_TYPE_SEEK         0xff
#define LSM_MAX_SEQUENCE ((UINT64_C(1) << 56) - 1)

static inline uint64_t lsm_pack_trailer(uint64_t seq, int type)
{
	return (seq << 8) | (uint64_t)type;
}
static inline uint64_t lsm_trailer_seq(uint64_t trailer) { return trailer >> 8; }
static inline int lsm_trailer_type(uint64_t trailer) { return (int)(trailer & 0xff); }

/* Compares user keys in memcmp order, shorter first on a common prefix. */
int lsm_key_compare(const void *a, size_t alen, const void *b, size_t blen);

/* Compares (akey, atrailer) with (bkey, btrailer) in internal-key order. */
int lsm_ikey_compare(const void *akey, size_t alen, uint64_t atrailer,
                     const void *bkey, size_t blen, uint64_t btrailer);

/*
 * A cursor over internal keys in internal-key order.  key/value pointers
 * stay valid until the next call that moves the cursor or destroy.  An
 * iterator that meets an error becomes invalid and reports it in status;
 * it never yields a wrong entry.
 */
typedef struct lsm_iiter lsm_iiter;
struct lsm_iiter {
	/* first entry >= (key, trailer) in internal-key order */
	void (*seek)(lsm_iiter *it, const void *key, size_t klen, uint64_t trailer);
	void (*seek_to_first)(lsm_iiter *it);
	void (*next)(lsm_iiter *it);
	int  (*valid)(const lsm_iiter *it);
	const uint8_t *(*key)(const lsm_iiter *it, size_t *klen);     /* user key */
	uint64_t (*trailer)(const lsm_iiter *it);
	const uint8_t *(*value)(const lsm_iiter *it, size_t *vlen);
	int  (*status)(const lsm_iiter *it);
	void (*destroy)(lsm_iiter *it);
};

#endif
