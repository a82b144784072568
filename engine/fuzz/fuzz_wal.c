/*
 * fuzz_wal.c — WAL segment replay (db/wal.c) and the batch decoder behind
 * it (db/batch.c), on arbitrary bytes.
 *
 * Input: one mode byte, then a WAL segment file.  Bit 0 of the mode
 * reseals the record frames first (fuzz.h), so mutated batches get past
 * the checksums; bits 1-2 pick the replay policy (newest segment: torn tail
 * allowed; salvage).  Checked beyond "does not crash": every record replay
 * hands over is a batch that validates, walks without error, and holds
 * exactly the entries its header counts, at consecutive sequences; a
 * replay that succeeds accounts for every byte (records + dropped) only
 * when it stopped at no error.
 */
#include "fuzz.h"
#include "dbint.h"

typedef struct walk {
	uint64_t next_seq;
	uint32_t entries;
} walk;

static int count_entry(void *arg, uint64_t seq, const lsm_batch_entry *e)
{
	walk *w = arg;

	(void)e;
	FUZZ_CHECK(seq == w->next_seq);
	w->next_seq++;
	w->entries++;
	return LSM_OK;
}

/* What recovery does with a record: refuse a malformed batch, else walk it. */
static int replay_record(void *arg, const uint8_t *rep, size_t len)
{
	walk w = {0, 0};
	int rc;

	(void)arg;
	if (lsm_batch_rep_validate(rep, len) != LSM_OK)
		return LSM_CORRUPTION;
	w.next_seq = lsm_batch_rep_seq(rep);
	rc = lsm_batch_rep_iterate(rep, len, lsm_batch_rep_seq(rep), count_entry, &w);
	FUZZ_CHECK(rc == LSM_OK);
	FUZZ_CHECK(w.entries == lsm_batch_rep_count(rep));
	return LSM_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int policies[4] = {0, LSM_WAL_TAIL_OK, LSM_WAL_SALVAGE,
	                                LSM_WAL_TAIL_OK | LSM_WAL_SALVAGE};
	fuzz_env fe;
	uint8_t *file;
	uint64_t seg_no = 1, records = 0, dropped = 0;
	int64_t bad_off = -1;
	size_t n;
	int mode, rc;

	if (size < 1)
		return 0;
	mode = data[0];
	n = size - 1;
	file = fuzz_copy(data + 1, n);
	if (n >= LSM_WAL_HEADER_SIZE)
		seg_no = lsm_get_fixed64(file + 16);
	if ((mode & 1) && n >= LSM_WAL_HEADER_SIZE)
		fuzz_reseal_logrecs(file, n, LSM_WAL_HEADER_SIZE);
	rc = lsm_wal_replay_segment(fuzz_env_init(&fe, file, n), "fuzz.wal", seg_no,
	                            policies[(mode >> 1) & 3] | LSM_WAL_READ_ONLY,
	                            replay_record, NULL, &records, &dropped, &bad_off);
	FUZZ_CHECK(rc == LSM_OK || rc == LSM_CORRUPTION || rc == LSM_NOMEM);
	FUZZ_CHECK(dropped <= n);
	FUZZ_CHECK(bad_off >= -1 && (bad_off == -1 || (uint64_t)bad_off <= n));
	free(file);
	return 0;
}
