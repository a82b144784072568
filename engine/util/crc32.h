/*
 * crc32.h — CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the same
 * function as zlib's crc32(): initial value ~0, final xor ~0.
 *
 * lsm_crc32_extend(c, p, n) continues a crc: lsm_crc32_extend(lsm_crc32(a), b)
 * equals lsm_crc32(a || b), exactly as zlib's crc32(crc, buf, len).
 *
 * Stored checksums are masked (LevelDB's trick) so that a crc computed over
 * data that itself contains crcs does not degenerate.
 */
#ifndef LSM_CRC32_H
#define LSM_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t lsm_crc32_extend(uint32_t crc, const void *data, size_t n);

static inline uint32_t lsm_crc32(const void *data, size_t n)
{
	return lsm_crc32_extend(0, data, n);
}

#define LSM_CRC32_MASK_DELTA 0xa282ead8u

static inline uint32_t lsm_crc32_mask(uint32_t crc)
{
	return ((crc >> 15) | (crc << 17)) + LSM_CRC32_MASK_DELTA;
}

static inline uint32_t lsm_crc32_unmask(uint32_t masked)
{
	uint32_t rot = masked - LSM_CRC32_MASK_DELTA;
	return (rot >> 17) | (rot << 15);
}

#endif
