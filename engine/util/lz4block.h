/*
 * lz4block.h — the LZ4 block format, written from scratch, byte-compatible with
 * the reference liblz4 both ways (LZ4_compress_default / LZ4_decompress_safe).
 *
 * Invariants
 *   - The compressor's output always decompresses with LZ4_decompress_safe
 *     and it never writes past dst + cap.
 *   - The decompressor never reads past src + n nor writes past dst + cap;
 *     any malformed input (truncated sequence, match offset 0 or before the
 *     start of the output, length overflow, output overflow) returns
 *     LSM_CORRUPTION.  It is safe on hostile input.
 */
#ifndef LSM_LZ4BLOCK_H
#define LSM_LZ4BLOCK_H

#include <stddef.h>

/* Worst-case compressed size of n input bytes (same as LZ4_compressBound). */
size_t lsm_lz4_compress_bound(size_t n);

/* LSM_OK with *out_len set, or LSM_INVALID when cap is too small or
 * n exceeds LZ4's maximum input size (0x7E000000). */
int lsm_lz4_compress(const void *src, size_t n, void *dst, size_t cap,
                     size_t *out_len);

/* LSM_OK with *out_len = bytes produced, or LSM_CORRUPTION. */
int lsm_lz4_decompress(const void *src, size_t n, void *dst, size_t cap,
                       size_t *out_len);

#endif
