/*
 * fuzz_manifest.c — the manifest reader (db/manifest.c) and the version
 * edit decoder (db/version.c) on arbitrary bytes.
 *
 * Input: one mode byte, then
 *   mode bit 0 clear: a manifest file, read whole and every edit applied
 *     to a manifest state, as recovery does (bit 1 reseals the frames
 *     first, so mutated edits reach the decoder and the version checks);
 *   mode bit 0 set: one edit's encoding.  What decodes must re-encode to
 *     bytes that decode to the same encoding again (canonical form).
 */
#include "fuzz.h"
#include "version.h"

static int apply_edit(void *arg, const lsm_version_edit *e, uint64_t end)
{
	(void)end;
	/* a state that refuses an edit keeps its old version: no check here
	 * beyond the sanitizers */
	(void)lsm_manifest_state_apply(arg, e);
	return LSM_OK;
}

static void read_file(uint8_t *file, size_t n, int reseal)
{
	lsm_manifest_state st;
	uint64_t end = 0, dropped = 0;
	fuzz_env fe;
	int rc;

	if (reseal)
		fuzz_reseal_logrecs(file, n, 0);
	FUZZ_CHECK(lsm_manifest_state_init(&st) == LSM_OK);
	rc = lsm_manifest_read(fuzz_env_init(&fe, file, n), "fuzzdir", 1, 0, LSM_MANIFEST_ALL,
	                       apply_edit, &st, &end, &dropped);
	FUZZ_CHECK(rc == LSM_OK || rc == LSM_CORRUPTION || rc == LSM_NOMEM);
	FUZZ_CHECK(end <= n && dropped <= n - end);
	lsm_manifest_state_free(&st);
}

static void decode_edit(const uint8_t *p, size_t n)
{
	lsm_version_edit e, e2;
	lsm_buf b1, b2;

	if (lsm_edit_decode(&e, p, n) != LSM_OK)
		return;
	lsm_buf_init(&b1);
	lsm_buf_init(&b2);
	FUZZ_CHECK(lsm_edit_encode(&e, &b1) == LSM_OK);
	FUZZ_CHECK(lsm_edit_decode(&e2, b1.data, b1.len) == LSM_OK);
	FUZZ_CHECK(lsm_edit_encode(&e2, &b2) == LSM_OK);
	FUZZ_CHECK(b1.len == b2.len && (b1.len == 0 || memcmp(b1.data, b2.data, b1.len) == 0));
	lsm_buf_free(&b1);
	lsm_buf_free(&b2);
	lsm_edit_free(&e);
	lsm_edit_free(&e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size < 1)
		return 0;
	copy = fuzz_copy(data + 1, size - 1);
	if (data[0] & 1)
		decode_edit(copy, size - 1);
	else
		read_file(copy, size - 1, data[0] & 2);
	free(copy);
	return 0;
}
