/*
 * env_fault.h — a fault-injecting lsm_env for tests, wrapping another env.
 *
 * What it can do
 *   - Fail a chosen call: the Nth (1-based, counted from when the rule is
 *     armed) call of one kind returns a chosen code (LSM_IOERR, LSM_NOSPACE)
 *     without reaching the base env; the rule fires once, or for every call
 *     from then on when `sticky` is set.
 *   - Tear a write: the next write of the kind passes only its first
 *     `keep` bytes to the base env, then reports LSM_IOERR.
 *   - Simulate power loss: lsm_fault_env_drop_unsynced() truncates every
 *     file written through this env back to the length it had at its last
 *     successful sync (files never synced go back to length 0, and files
 *     created since the last sync of their directory are removed).
 *
 * Assumption, true of the engine: files are written append-only (each write
 * at or past the current end), so "content as of the last sync" is a prefix.
 *
 * The env is thread-safe; counters are exact under concurrency.
 */
#ifndef LSM_ENV_FAULT_H
#define LSM_ENV_FAULT_H

#include "lsm.h"

enum lsm_fault_op {
	LSM_FAULT_OPEN = 0,
	LSM_FAULT_READ,
	LSM_FAULT_WRITE,
	LSM_FAULT_SYNC,
	LSM_FAULT_TRUNCATE,
	LSM_FAULT_RENAME,
	LSM_FAULT_REMOVE,
	LSM_FAULT_SYNC_DIR,
	LSM_FAULT_NOPS
};

/* NULL on allocation failure. */
lsm_env *lsm_fault_env_create(lsm_env *base);
void     lsm_fault_env_destroy(lsm_env *env);

/* Arms a rule: the nth call of op from now fails with code. */
void lsm_fault_env_fail(lsm_env *env, enum lsm_fault_op op, uint64_t nth,
                        int code, int sticky);
/* The next write keeps only its first `keep` bytes and fails (LSM_IOERR). */
void lsm_fault_env_tear_next_write(lsm_env *env, size_t keep);
/* Disarms every rule (counters are kept). */
void lsm_fault_env_clear(lsm_env *env);
/* Calls of op seen so far (failed ones included). */
uint64_t lsm_fault_env_calls(lsm_env *env, enum lsm_fault_op op);
/* Power loss: see above.  Returns LSM_OK or the base env's error. */
int  lsm_fault_env_drop_unsynced(lsm_env *env);

#endif
