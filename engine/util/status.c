/*
 * status.c — names for the engine's return codes, and the per-thread note
 * of where the last corruption was found (status.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "status.h"

static _Thread_local lsm_error_info last_error;
static _Thread_local int have_error;

static void note_file(const char *file, int64_t offset)
{
	const char *slash = strrchr(file, '/');

	snprintf(last_error.file, sizeof last_error.file, "%s", slash ? slash + 1 : file);
	last_error.offset = offset;
	have_error = 1;
}

int lsm_error_note(const char *file, int64_t offset, const char *fmt, ...)
{
	va_list ap;

	note_file(file, offset);
	va_start(ap, fmt);
	vsnprintf(last_error.reason, sizeof last_error.reason, fmt, ap);
	va_end(ap);
	return LSM_CORRUPTION;
}

int lsm_error_where(lsm_error_info *out)
{
	if (!have_error)
		return 0;
	*out = last_error;
	return 1;
}

void lsm_error_restore(const lsm_error_info *e)
{
	last_error = *e;
	have_error = 1;
}

void lsm_error_clear(void)
{
	have_error = 0;
}

const char *lsm_strerror(int code)
{
	switch (code) {
	case LSM_OK:         return "ok";
	case LSM_NOTFOUND:   return "not found";
	case LSM_CORRUPTION: return "data corruption";
	case LSM_IOERR:      return "I/O error";
	case LSM_NOSPACE:    return "no space left on device";
	case LSM_BUSY:       return "busy: a bounded wait expired";
	case LSM_INVALID:    return "invalid argument";
	case LSM_NOMEM:      return "out of memory";
	case LSM_FULL:       return "memtable full";
	case LSM_LOCKED:     return "database directory locked by another process";
	case LSM_EXISTS:     return "database already exists";
	case LSM_TOOBIG:     return "key, value or batch too large";
	case LSM_CLOSED:     return "database closed";
	default:             return "unknown error code";
	}
}
