/*
 * logrec.c — record framing shared by the WAL and the manifest (see
 * logrec.h for the format).
 *
 * Invariants: a check reads only bytes in [off, size); the header checksum
 * is verified before its length is trusted, and the length before the
 * payload is read.
 */
#include "coding.h"
#include "crc32.h"
#include "logrec.h"

void lsm_logrec_header(uint8_t *hdr, size_t len, uint32_t payload_crc)
{
	lsm_put_fixed32(hdr + 4, (uint32_t)len);
	lsm_put_fixed32(hdr + 8, lsm_crc32_mask(payload_crc));
	lsm_put_fixed32(hdr, lsm_crc32_mask(lsm_crc32(hdr + 4, 8)));
}

int lsm_logrec_check(const uint8_t *buf, size_t size, size_t off, uint32_t *len)
{
	const uint8_t *h = buf + off;

	if (size - off < LSM_LOGREC_HEADER)
		return LSM_LOGREC_SHORT_HEADER;
	if (lsm_crc32_unmask(lsm_get_fixed32(h)) != lsm_crc32(h + 4, 8))
		return LSM_LOGREC_BAD_HEADER;
	*len = lsm_get_fixed32(h + 4);
	if (*len > size - off - LSM_LOGREC_HEADER)
		return LSM_LOGREC_SHORT_PAYLOAD;
	if (lsm_crc32_unmask(lsm_get_fixed32(h + 8)) != lsm_crc32(h + LSM_LOGREC_HEADER, *len))
		return LSM_LOGREC_BAD_PAYLOAD;
	return LSM_LOGREC_OK;
}
