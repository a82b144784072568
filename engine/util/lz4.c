/*
 * lz4.c — the LZ4 block format: a greedy single-pass compressor and a
 * decompressor that is safe on hostile input.
 *
 * Format (one block, no frame): a series of sequences, each
 *   token     high nibble = literal count, low nibble = match length - 4;
 *             a nibble of 15 is continued by bytes that are added to it,
 *             every 255 meaning "another byte follows";
 *   literals  the literal bytes, copied as is;
 *   offset    2 bytes little-endian, 1..65535: the match starts this many
 *             bytes back in the output;
 *   match ext the 255-continued bytes of the match length, if its nibble
 *             was 15.
 * The last sequence stops after its literals (no offset, no match).
 *
 * Invariants of the compressor (what makes LZ4_decompress_safe accept us)
 *   - the last 5 bytes of the input are always literals (LASTLITERALS),
 *     so no match ends past n - 5;
 *   - no match starts at a position > n - 12 (MFLIMIT); inputs shorter than
 *     13 bytes are one literal-only sequence;
 *   - every offset is in 1..65535: candidates from the hash table further
 *     back than that are dropped, never clamped;
 *   - nothing is written past dst + cap: each sequence's exact encoded size
 *     is computed before any byte of it is stored, and the 8-byte literal
 *     wildcopy is used only when 8 spare bytes remain; when a sequence does
 *     not fit we return LSM_INVALID (dst then holds garbage);
 *   - nothing is read past src + n: matches are counted up to n - 5 and the
 *     wildcopy source never goes beyond a match start + 7 <= n - 5.
 *
 * Invariants of the decompressor
 *   - every length is checked against the bytes left in *both* buffers
 *     before it is used, so no read passes src + n and no write passes
 *     dst + cap; lengths are checked while their 255-runs are summed, so
 *     they cannot overflow size_t;
 *   - an offset of 0 or one reaching before dst, a stream that stops
 *     inside a sequence or right after a match, and output that would not
 *     fit in cap are all LSM_CORRUPTION;
 *   - over-long copies (8/16-byte chunks that may run past the end of a
 *     literal run or a match) happen only when both buffers have that much
 *     room left; so bytes of dst between *out_len and dst + cap may be
 *     overwritten, but never a byte outside [dst, dst + cap);
 *   - it is lenient where the end-of-block rules only bind encoders (last
 *     5 bytes literal, last match 12 bytes from the end): such streams are
 *     decoded, since safety does not depend on those rules;
 *   - src and dst must not overlap.
 *
 * Both entry points return LSM_INVALID, not a data error, for a NULL
 * out_len or a NULL buffer with a nonzero length: that is a caller bug.
 *
 * Positions in the compressor's hash table are offsets from src: uint16 when
 * every position that can be stored fits (n <= 65535 + MFLIMIT), which
 * doubles the entries for the same 16 KiB of stack, uint32 otherwise.
 */
#include "lz4block.h"
#include "lsm.h"

#include <stdint.h>
#include <string.h>

#define MINMATCH      4
#define LASTLITERALS  5
#define MFLIMIT       12
#define MAX_INPUT     0x7E000000u
#define MAX_OFFSET    65535u
#define RUN_MASK      15u

/* The search step grows by one every 2^SKIP_TRIGGER failed probes, so that
 * incompressible data is skipped over quickly instead of hashed byte by byte,
 * while a single miss inside compressible data costs nothing extra. */
#define SKIP_TRIGGER  6

#define SMALL_HASH_BITS 13      /* 8192 x uint16 = 16 KiB */
#define LARGE_HASH_BITS 12      /* 4096 x uint32 = 16 KiB */
#define SMALL_LIMIT     (65535u + MFLIMIT)

#if defined(__GNUC__) || defined(__clang__)
#define LZ4_INLINE static inline __attribute__((always_inline))
#define LIKELY(x)   __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LZ4_INLINE static inline
#define LIKELY(x)   (x)
#define UNLIKELY(x) (x)
#endif

/* Unaligned loads and stores through memcpy: one instruction at -O2 and no
 * alignment or aliasing undefined behaviour. */
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline void copy8(uint8_t *d, const uint8_t *s) { memcpy(d, s, 8); }
static inline void copy16(uint8_t *d, const uint8_t *s) { memcpy(d, s, 16); }

/* Little-endian by construction so that the count of equal leading bytes
 * is a count of trailing zero bits on every host; GCC folds it into one
 * load on little-endian machines. */
static inline uint64_t rd64le(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	       (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline unsigned ctz64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
	return (unsigned)__builtin_ctzll(x);
#else
	unsigned n = 0;
	while (!(x & 1)) { x >>= 1; n++; }
	return n;
#endif
}

size_t lsm_lz4_compress_bound(size_t n)
{
	return n > MAX_INPUT ? 0 : n + n / 255 + 16;
}

/* ------------------------------------------------------------ compressor */

/* Fibonacci hashing: the multiply spreads the 4 bytes into the top bits. */
LZ4_INLINE uint32_t hash4(uint32_t v, unsigned bits)
{
	return (v * 2654435761u) >> (32 - bits);
}

/* Number of equal bytes at p and m, not looking at or past limit. */
LZ4_INLINE size_t count_equal(const uint8_t *p, const uint8_t *m, const uint8_t *limit)
{
	const uint8_t *start = p;
	while ((size_t)(limit - p) >= 8) {
		uint64_t x = rd64le(p) ^ rd64le(m);
		if (x)
			return (size_t)(p - start) + (ctz64(x) >> 3);
		p += 8;
		m += 8;
	}
	while (p < limit && *p == *m) {
		p++;
		m++;
	}
	return (size_t)(p - start);
}

/* Bytes that follow a nibble of 15 to carry the rest of a length. */
LZ4_INLINE size_t ext_bytes(size_t len)
{
	return len >= RUN_MASK ? (len - RUN_MASK) / 255 + 1 : 0;
}

/* Stores len - 15 as 255-continued bytes; the caller reserved the room. */
LZ4_INLINE uint8_t *put_ext(uint8_t *op, size_t rest)
{
	size_t k = rest / 255;
	memset(op, 255, k);
	op += k;
	*op++ = (uint8_t)(rest - k * 255);
	return op;
}

union hash_table {
	uint16_t small[1u << SMALL_HASH_BITS];
	uint32_t large[1u << LARGE_HASH_BITS];
};

/* One body for both table widths: `small` is a constant at each call site
 * so the untaken variant folds away. */
LZ4_INLINE int compress_body(const uint8_t *const src, size_t n,
                             uint8_t *const dst, size_t cap,
                             size_t *out_len, union hash_table *t,
                             const int small)
{
	const uint8_t *ip = src;
	const uint8_t *anchor = src;            /* first byte not yet emitted */
	const uint8_t *const iend = src + n;
	uint8_t *op = dst;
	uint8_t *const oend = dst + cap;
	const unsigned bits = small ? SMALL_HASH_BITS : LARGE_HASH_BITS;

#define T_GET(h)      ((size_t)(small ? t->small[h] : t->large[h]))
#define T_PUT(h, pos) do { if (small) t->small[h] = (uint16_t)(pos); \
                           else t->large[h] = (uint32_t)(pos); } while (0)

	if (n > MFLIMIT) {
		/* Last position where a match may start, and the bound its
		 * length is counted to: both leave the block's tail literal. */
		const uint8_t *const mflimit = iend - MFLIMIT;
		const uint8_t *const matchlimit = iend - LASTLITERALS;

		T_PUT(hash4(rd32(ip), bits), 0);
		ip++;

		for (;;) {
			const uint8_t *ref;
			size_t lit, ml, need;
			uint8_t *token;

			/* Search.  Positions in the table are always < ip, so a
			 * candidate's offset is >= 1. */
			{
				unsigned probes = 1u << SKIP_TRIGGER;
				if (ip > mflimit)
					break;
				for (;;) {
					uint32_t h = hash4(rd32(ip), bits);
					size_t step;
					ref = src + T_GET(h);
					T_PUT(h, ip - src);
					/* A small table holds positions < 65536, so every
					 * candidate is within the window. */
					if ((small || (size_t)(ip - ref) <= MAX_OFFSET) &&
					    rd32(ref) == rd32(ip))
						break;
					step = probes++ >> SKIP_TRIGGER;
					if ((size_t)(mflimit - ip) < step)
						goto last_literals;
					ip += step;
				}
			}

			/* Grow the match backwards over bytes we would otherwise
			 * emit as literals. */
			while (ip > anchor && ref > src && ip[-1] == ref[-1]) {
				ip--;
				ref--;
			}

emit_match:
			ml = MINMATCH + count_equal(ip + MINMATCH, ref + MINMATCH, matchlimit);
			lit = (size_t)(ip - anchor);
			need = 1 + ext_bytes(lit) + lit + 2 + ext_bytes(ml - MINMATCH);
			if (need > (size_t)(oend - op))
				return LSM_INVALID;

			token = op++;
			if (lit >= RUN_MASK) {
				*token = (uint8_t)(RUN_MASK << 4);
				op = put_ext(op, lit - RUN_MASK);
			} else {
				*token = (uint8_t)(lit << 4);
			}
			/* Wildcopy overshoots by up to 7 bytes on both sides: the
			 * source side is safe since ip <= n - 12. */
			if ((size_t)(oend - op) >= lit + 8) {
				uint8_t *d = op, *e = op + lit;
				const uint8_t *s = anchor;
				do {
					copy8(d, s);
					d += 8;
					s += 8;
				} while (d < e);
			} else {
				memcpy(op, anchor, lit);
			}
			op += lit;

			{
				size_t off = (size_t)(ip - ref);
				op[0] = (uint8_t)off;
				op[1] = (uint8_t)(off >> 8);
				op += 2;
			}
			if (ml - MINMATCH >= RUN_MASK) {
				*token |= (uint8_t)RUN_MASK;
				op = put_ext(op, ml - MINMATCH - RUN_MASK);
			} else {
				*token |= (uint8_t)(ml - MINMATCH);
			}

			ip += ml;
			anchor = ip;
			if (ip > mflimit)
				break;

			/* Index a position inside the match we just skipped, so
			 * that the data it covered stays findable. */
			T_PUT(hash4(rd32(ip - 2), bits), ip - 2 - src);

			/* Runs of matches are common in compressible data: try the
			 * very next position before going back to the search. */
			{
				uint32_t h = hash4(rd32(ip), bits);
				ref = src + T_GET(h);
				T_PUT(h, ip - src);
				if ((small || (size_t)(ip - ref) <= MAX_OFFSET) &&
				    rd32(ref) == rd32(ip))
					goto emit_match;
			}
			ip++;
		}
	}

last_literals:
	{
		size_t lit = (size_t)(iend - anchor);
		if (1 + ext_bytes(lit) + lit > (size_t)(oend - op))
			return LSM_INVALID;
		if (lit >= RUN_MASK) {
			*op++ = (uint8_t)(RUN_MASK << 4);
			op = put_ext(op, lit - RUN_MASK);
		} else {
			*op++ = (uint8_t)(lit << 4);
		}
		memcpy(op, anchor, lit);
		op += lit;
	}
	*out_len = (size_t)(op - dst);
	return LSM_OK;
#undef T_GET
#undef T_PUT
}

int lsm_lz4_compress(const void *src, size_t n, void *dst, size_t cap,
                     size_t *out_len)
{
	union hash_table t;

	if (out_len == NULL || (src == NULL && n) || (dst == NULL && cap))
		return LSM_INVALID;
	if (n > MAX_INPUT)
		return LSM_INVALID;
	if (n == 0) {
		/* Kept apart so that a NULL src never meets pointer arithmetic. */
		if (cap < 1)
			return LSM_INVALID;
		*(uint8_t *)dst = 0;
		*out_len = 1;
		return LSM_OK;
	}
	if (cap == 0)
		return LSM_INVALID;
	/* Table entries start at position 0: a stale candidate is harmless
	 * because every candidate's bytes are compared before use. */
	if (n <= SMALL_LIMIT) {
		memset(t.small, 0, sizeof t.small);
		return compress_body(src, n, dst, cap, out_len, &t, 1);
	}
	memset(t.large, 0, sizeof t.large);
	return compress_body(src, n, dst, cap, out_len, &t, 0);
}

/* ---------------------------------------------------------- decompressor */

/*
 * Copies a match of ml bytes from op - off to op, where the caller checked
 * that off <= op - dst and ml <= oend - op.  When off < 8 the source
 * overlaps the bytes being written, so 8-byte chunks would read bytes not
 * written yet; instead the first bytes are copied one at a time until the
 * distance can be widened to a multiple of off that is >= 8 — the output
 * repeats with period off, so reading from that far back yields the same
 * bytes, and chunked copies become exact.
 */
LZ4_INLINE void copy_match(uint8_t *op, size_t off, size_t ml, uint8_t *oend)
{
	static const uint8_t widened[8] = { 0, 8, 8, 9, 8, 10, 12, 14 };
	uint8_t *const end = op + ml;
	const uint8_t *m = op - off;

	if (UNLIKELY(off < 8)) {
		size_t d = widened[off];
		if (ml <= d) {
			for (size_t i = 0; i < ml; i++)
				op[i] = m[i];
			return;
		}
		for (size_t i = 0; i < d; i++)
			op[i] = m[i];
		op += d;
		m = op - d;
	}
	/* From here op - m >= 8.  16-byte chunks need op - m >= 16 so that a
	 * chunk never reads what it writes. */
	if (LIKELY((size_t)(oend - end) >= 15) && (size_t)(op - m) >= 16) {
		do {
			copy16(op, m);
			op += 16;
			m += 16;
		} while (op < end);
	} else if (LIKELY((size_t)(oend - end) >= 7)) {
		do {
			copy8(op, m);
			op += 8;
			m += 8;
		} while (op < end);
	} else {
		while ((size_t)(end - op) >= 8) {
			copy8(op, m);
			op += 8;
			m += 8;
		}
		while (op < end)
			*op++ = *m++;
	}
}

int lsm_lz4_decompress(const void *src, size_t n, void *dst, size_t cap,
                       size_t *out_len)
{
	uint8_t dummy;
	const uint8_t *ip = src;
	const uint8_t *iend;
	uint8_t *base, *op, *oend;

	if (out_len == NULL || (src == NULL && n) || (dst == NULL && cap))
		return LSM_INVALID;
	if (n == 0)
		return LSM_CORRUPTION;          /* even an empty block has a token */
	iend = ip + n;
	/* A NULL dst with cap 0 still needs a real address to subtract from. */
	base = cap ? (uint8_t *)dst : &dummy;
	op = base;
	oend = base + cap;

	for (;;) {
		/* Here ip < iend: a token is available. */
		unsigned token = *ip++;
		size_t lit = token >> 4;
		size_t off, ml;

		/* Fast path for the common short sequence far from both ends:
		 * fixed-size copies with no per-length checks.  32 input bytes
		 * cover 16 literal bytes + 2 offset bytes + the next token; 40
		 * output bytes cover 14 literals + a 24-byte match copy. */
		if (lit != RUN_MASK && (size_t)(iend - ip) >= 32 &&
		    (size_t)(oend - op) >= 40) {
			copy16(op, ip);
			op += lit;
			ip += lit;
			off = (size_t)ip[0] | (size_t)ip[1] << 8;
			ip += 2;
			ml = token & RUN_MASK;
			if (ml != RUN_MASK && off >= 8 && off <= (size_t)(op - base)) {
				const uint8_t *m = op - off;
				/* off >= 8: each chunk reads only bytes already
				 * written by the chunks before it. */
				copy8(op, m);
				copy8(op + 8, m + 8);
				copy8(op + 16, m + 16);
				op += ml + MINMATCH;
				continue;
			}
			goto match;
		}

		if (lit == RUN_MASK) {
			unsigned b;
			do {
				if (UNLIKELY(ip >= iend))
					goto corrupt;
				b = *ip++;
				lit += b;
				/* Bounded at every step, so the sum cannot wrap. */
				if (UNLIKELY(lit > (size_t)(oend - op)))
					goto corrupt;
			} while (b == 255);
		}
		if (UNLIKELY(lit > (size_t)(iend - ip) || lit > (size_t)(oend - op)))
			goto corrupt;
		if ((size_t)(iend - ip) - lit >= 15 && (size_t)(oend - op) - lit >= 15) {
			uint8_t *d = op, *e = op + lit;
			const uint8_t *s = ip;
			while (d < e) {
				copy16(d, s);
				d += 16;
				s += 16;
			}
		} else {
			memcpy(op, ip, lit);
		}
		op += lit;
		ip += lit;
		if (ip == iend)
			break;                  /* the literal-only last sequence */
		if (UNLIKELY((size_t)(iend - ip) < 2))
			goto corrupt;
		off = (size_t)ip[0] | (size_t)ip[1] << 8;
		ip += 2;
		ml = token & RUN_MASK;

match:
		if (UNLIKELY(off == 0 || off > (size_t)(op - base)))
			goto corrupt;
		if (ml == RUN_MASK) {
			unsigned b;
			do {
				if (UNLIKELY(ip >= iend))
					goto corrupt;
				b = *ip++;
				ml += b;
				if (UNLIKELY(ml > (size_t)(oend - op)))
					goto corrupt;
			} while (b == 255);
		}
		ml += MINMATCH;
		if (UNLIKELY(ml > (size_t)(oend - op)))
			goto corrupt;
		copy_match(op, off, ml, oend);
		op += ml;
		/* A match never ends a block: a token must follow. */
		if (UNLIKELY(ip >= iend))
			goto corrupt;
	}
	*out_len = (size_t)(op - base);
	return LSM_OK;

corrupt:
	return LSM_CORRUPTION;
}
