/*
 * status.h — the engine's side of lsm_error_where: code that returns
 * LSM_CORRUPTION notes first which file, where, and why.
 *
 * Invariants
 *   - The note is per thread (PostgreSQL's processes and the engine's own
 *     threads never see each other's); a later note replaces an earlier
 *     one, so only the code that found the damage notes it, never a
 *     caller passing the code on.
 */
#ifndef LSM_STATUS_H
#define LSM_STATUS_H

#include <stdint.h>

#include "lsm.h"

#if defined(__GNUC__)
#define LSM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LSM_PRINTF(a, b)
/* Makes e the thread's note (a note another process made, kept in shared
 * memory). */
void lsm_error_restore(const lsm_error_info *e);

#endif

/* Notes a corruption in file (a path: only its last component is kept) at
 * offset (-1: the whole file); returns LSM_CORRUPTION. */
int lsm_error_note(const char *file, int64_t offset, const char *fmt, ...) LSM_PRINTF(3, 4);

/* Makes e the thread's note (a note another process made, kept in shared
 * memory). */
void lsm_error_restore(const lsm_error_info *e);

#endif
