/*
 * status.c — names for the engine's return codes.
 */
#include "lsm.h"

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
