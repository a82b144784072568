/*
 * bloom.c — bloom filters over 64-bit key hashes.
 *
 * Layout: nbits = 8 * (len - 1) bits, bit b at byte b / 8, mask 1 << (b % 8),
 * then one byte holding k.
 *
 * Probes: h1 = low 32 bits of the hash, h2 = high 32 bits forced odd; probe
 * i (0 <= i < k) tests bit (h1 + i * h2) mod nbits.  h2 is forced odd so the
 * step is never zero (a zero step would test one bit k times and turn the
 * filter into a 1-probe filter for that key).  The position is advanced
 * incrementally (two divisions per key, not k), which gives exactly the
 * same bits as evaluating the formula in 64-bit arithmetic.
 *
 * Invariants
 *   - Build and probe share probe_start/probe_next, so every bit a build
 *     sets for a hash is a bit may_contain tests for it: no false negatives.
 *   - A filter that cannot have come from lsm_bloom_build (len < 2, k == 0
 *     or k > 30) answers "may contain": corruption costs reads, never keys.
 *   - Nothing here allocates or depends on libm.
 */
#include <stdint.h>
#include <string.h>

#include "bloom.h"

#define BLOOM_MIN_BITS	64
#define BLOOM_MAX_K		30

struct probe
{
	uint64_t	pos;
	uint64_t	step;
	uint64_t	nbits;
};

/*
 * k = round(bits_per_key * ln 2), clamped to [1, 30].  Integer arithmetic
 * (ln 2 ~= 0.693147) keeps libm out and makes k identical on every platform.
 */
static int
bloom_k(int bits_per_key)
{
	uint64_t	k;

	if (bits_per_key < 1)
		bits_per_key = 1;
	k = ((uint64_t) bits_per_key * 693147u + 500000u) / 1000000u;
	if (k < 1)
		k = 1;
	if (k > BLOOM_MAX_K)
		k = BLOOM_MAX_K;
	return (int) k;
}

static void
probe_start(struct probe *p, uint64_t hash, uint64_t nbits)
{
	uint64_t	h1 = hash & 0xffffffffu;
	uint64_t	h2 = (hash >> 32) | 1u;

	p->nbits = nbits;
	p->pos = h1 % nbits;
	p->step = h2 % nbits;
}

/* pos and step are both < nbits, so one subtraction reduces the sum. */
static void
probe_next(struct probe *p)
{
	p->pos += p->step;
	if (p->pos >= p->nbits)
		p->pos -= p->nbits;
}

size_t
lsm_bloom_filter_size(size_t n, int bits_per_key)
{
	size_t		bpk = bits_per_key < 1 ? 1 : (size_t) bits_per_key;
	size_t		bits;

	/* Saturate rather than wrap: an absurd n must not yield a tiny filter. */
	if (n > (SIZE_MAX - 8) / bpk)
		return SIZE_MAX;
	bits = n * bpk;
	if (bits < BLOOM_MIN_BITS)
		bits = BLOOM_MIN_BITS;
	return (bits + 7) / 8 + 1;
}

void
lsm_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key,
				uint8_t *out)
{
	size_t		len = lsm_bloom_filter_size(n, bits_per_key);
	uint64_t	nbits = (uint64_t) (len - 1) * 8;
	int			k = bloom_k(bits_per_key);

	memset(out, 0, len - 1);
	out[len - 1] = (uint8_t) k;

	for (size_t i = 0; i < n; i++)
	{
		struct probe p;

		probe_start(&p, hashes[i], nbits);
		for (int j = 0; j < k; j++)
		{
			out[p.pos >> 3] |= (uint8_t) (1u << (p.pos & 7));
			probe_next(&p);
		}
	}
}

int
lsm_bloom_may_contain(const uint8_t *filter, size_t len, uint64_t hash)
{
	struct probe p;
	int			k;

	if (filter == NULL || len < 2)
		return 1;
	k = filter[len - 1];
	if (k == 0 || k > BLOOM_MAX_K)
		return 1;

	probe_start(&p, hash, (uint64_t) (len - 1) * 8);
	for (int j = 0; j < k; j++)
	{
		if ((filter[p.pos >> 3] & (1u << (p.pos & 7))) == 0)
			return 0;
		probe_next(&p);
	}
	return 1;
}
