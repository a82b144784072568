/*
 * fuzz.h — what the libFuzzer targets share: a read-only, one-file memory
 * env, so the engine's file readers (WAL segments, SSTables, manifests)
 * read the fuzzer's input exactly as they would read it from disk.
 *
 * Invariants
 *   - Every path opens the same bytes (the input); nothing is written:
 *     write, truncate, rename and remove fail with LSM_IOERR, so a reader
 *     that tried to repair a file would be caught, not obeyed.
 *   - A target returns 0 for every input the engine rejects with an error
 *     code; only a crash, a sanitizer report or a failed FUZZ_CHECK (an
 *     engine answer that contradicts itself or the reference library) is
 *     a finding.
 */
#ifndef LSM_FUZZ_H
#define LSM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "coding.h"
#include "crc32.h"
#include "logrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A finding that is not a crash: say what and abort (libFuzzer keeps the
 * input as a crash artifact). */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

typedef struct fuzz_env {
	lsm_env env;              /* first: the engine sees only this */
	const uint8_t *data;
	size_t size;
} fuzz_env;

typedef struct fuzz_file {
	fuzz_env *fe;
} fuzz_file;

static int fuzz_open(lsm_env *env, const char *path, int flags, lsm_file **out)
{
	fuzz_file *f;

	(void)path;
	if (flags & (LSM_OPEN_TRUNC | LSM_OPEN_CREATE))
		return LSM_IOERR;
	if ((f = malloc(sizeof *f)) == NULL)
		return LSM_NOMEM;
	f->fe = (fuzz_env *)env;
	*out = (lsm_file *)f;
	return LSM_OK;
}

static int fuzz_read(lsm_file *file, uint64_t off, void *buf, size_t n, size_t *got)
{
	fuzz_env *fe = ((fuzz_file *)file)->fe;

	*got = 0;
	if (off >= fe->size)
		return LSM_OK;
	if (n > fe->size - off)
		n = (size_t)(fe->size - off);
	memcpy(buf, fe->data + off, n);
	*got = n;
	return LSM_OK;
}

static int fuzz_size(lsm_file *file, uint64_t *size)
{
	*size = ((fuzz_file *)file)->fe->size;
	return LSM_OK;
}

static int fuzz_close(lsm_file *file)
{
	free(file);
	return LSM_OK;
}

static int fuzz_write(lsm_file *f, uint64_t off, const void *b, size_t n)
{
	(void)f, (void)off, (void)b, (void)n;
	return LSM_IOERR;
}

static int fuzz_sync(lsm_file *f)
{
	(void)f;
	return LSM_OK;
}

static int fuzz_truncate(lsm_file *f, uint64_t size)
{
	(void)f, (void)size;
	return LSM_IOERR;
}

static int fuzz_path_op(lsm_env *env, const char *path)
{
	(void)env, (void)path;
	return LSM_IOERR;
}

static int fuzz_rename(lsm_env *env, const char *from, const char *to)
{
	(void)env, (void)from, (void)to;
	return LSM_IOERR;
}

static uint64_t fuzz_now(lsm_env *env)
{
	(void)env;
	return 0;
}

static void fuzz_sleep(lsm_env *env, uint64_t micros)
{
	(void)env, (void)micros;
}

static inline lsm_env *fuzz_env_init(fuzz_env *fe, const uint8_t *data, size_t size)
{
	memset(fe, 0, sizeof *fe);
	fe->data = data;
	fe->size = size;
	fe->env.open = fuzz_open;
	fe->env.read = fuzz_read;
	fe->env.write = fuzz_write;
	fe->env.sync = fuzz_sync;
	fe->env.truncate = fuzz_truncate;
	fe->env.size = fuzz_size;
	fe->env.close = fuzz_close;
	fe->env.remove = fuzz_path_op;
	fe->env.rename = fuzz_rename;
	fe->env.mkdir = fuzz_path_op;
	fe->env.sync_dir = fuzz_path_op;
	fe->env.now_micros = fuzz_now;
	fe->env.sleep_micros = fuzz_sleep;
	return &fe->env;
}

/*
 * Rewrites every record frame (db/logrec.h) from buf[off] on so that its
 * checksums hold, clamping a length that runs past the end: mutated
 * payloads then reach the decoders behind the checksums instead of being
 * refused at the frame.
 */
static inline void fuzz_reseal_logrecs(uint8_t *buf, size_t size, size_t off)
{
	while (off <= size && size - off >= LSM_LOGREC_HEADER) {
		size_t room = size - off - LSM_LOGREC_HEADER;
		size_t len = lsm_get_fixed32(buf + off + 4);

		if (len > room)
			len = room;
		lsm_logrec_header(buf + off, len, lsm_crc32(buf + off + LSM_LOGREC_HEADER, len));
		off += LSM_LOGREC_HEADER + len;
	}
}

/* A malloc'd copy of the input (the fuzzer's bytes are read-only). */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);

	FUZZ_CHECK(p != NULL);
	if (size)
		memcpy(p, data, size);
	return p;
}

#endif
