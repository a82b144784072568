/*
 * logrec.h — the record framing shared by the WAL and the manifest.
 *
 * A record is a 12-byte header followed by its payload:
 *   u32 masked crc32 of the next 8 header bytes | u32 payload length |
 *   u32 masked crc32 of the payload | payload
 * (fixed32 little-endian, masks as in crc32.h).
 *
 * Invariants
 *   - The header carries its own checksum, so "does a valid record start at
 *     this offset?" is an O(1) test and a reader can tell a torn tail (no
 *     valid record after the damage) from damage in the middle of a log.
 *   - lsm_logrec_check never reads at or past buf + size.
 */
#ifndef LSM_LOGREC_H
#define LSM_LOGREC_H

#include <stddef.h>
#include <stdint.h>

#define LSM_LOGREC_HEADER 12

/* Outcomes of lsm_logrec_check. */
enum {
	LSM_LOGREC_OK = 0,        /* a whole valid record; *len is its payload length */
	LSM_LOGREC_SHORT_HEADER,  /* fewer than LSM_LOGREC_HEADER bytes remain */
	LSM_LOGREC_BAD_HEADER,    /* the header checksum does not match */
	LSM_LOGREC_SHORT_PAYLOAD, /* valid header; its payload runs past size (*len set) */
	LSM_LOGREC_BAD_PAYLOAD,   /* valid header; the payload checksum fails (*len set) */
};

/* Fills hdr[LSM_LOGREC_HEADER] for a payload of len bytes whose (unmasked)
 * crc32 is payload_crc; len must fit 32 bits. */
void lsm_logrec_header(uint8_t *hdr, size_t len, uint32_t payload_crc);

/* Checks the record starting at buf[off] (off <= size); see the enum. */
int  lsm_logrec_check(const uint8_t *buf, size_t size, size_t off, uint32_t *len);

#endif
