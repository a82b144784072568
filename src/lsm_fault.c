/*-------------------------------------------------------------------------
 *
 * lsm_fault.c
 *	  I/O faults on demand, for testing: the engine's env in this process
 *	  made to fail its reads, writes or syncs with EIO.
 *
 * lsm.debug_io_faults (server start) puts the engine's fault-injecting env
 * (engine/util/env_fault.h) between the engine and the file system in
 * every process; off, the engine talks to the file system directly and
 * nothing here costs anything.  lsm.debug_fail_io (superuser, any time)
 * then names what fails from the next call on, in the processes where it
 * is set: a SET fails one session's I/O, ALTER SYSTEM and a reload fail
 * every process's.  The engine treats the failures as it would real ones
 * (a failed log write or sync stops all lsm writes until a restart; a
 * failed read fails that statement), which is what the tests observe.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "lsm_am.h"
#include "../engine/util/env_fault.h"

typedef enum FailIo
{
	FAIL_IO_NONE,
	FAIL_IO_READ,
	FAIL_IO_WRITE,
	FAIL_IO_SYNC
} FailIo;

static const struct config_enum_entry fail_io_options[] = {
	{"none", FAIL_IO_NONE, false},
	{"read", FAIL_IO_READ, false},
	{"write", FAIL_IO_WRITE, false},
	{"sync", FAIL_IO_SYNC, false},
	{NULL, 0, false}
};

static bool debug_io_faults = false;
static int	debug_fail_io = FAIL_IO_NONE;
static lsm_env *fault_env = NULL;

static void
arm(int what)
{
	lsm_fault_env_clear(fault_env);
	if (what == FAIL_IO_READ)
		lsm_fault_env_fail(fault_env, LSM_FAULT_READ, 1, LSM_IOERR, 1);
	else if (what == FAIL_IO_WRITE)
		lsm_fault_env_fail(fault_env, LSM_FAULT_WRITE, 1, LSM_IOERR, 1);
	else if (what == FAIL_IO_SYNC)
		lsm_fault_env_fail(fault_env, LSM_FAULT_SYNC, 1, LSM_IOERR, 1);
}

static void
assign_fail_io(int newval, void *extra)
{
	if (fault_env != NULL)
		arm(newval);
}

void
lsm_fault_define_gucs(void)
{
	DefineCustomBoolVariable("lsm.debug_io_faults",
							 "Lets lsm.debug_fail_io inject I/O errors into the lsm storage (for tests).",
							 NULL,
							 &debug_io_faults, false,
							 PGC_POSTMASTER, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomEnumVariable("lsm.debug_fail_io",
							 "Which lsm file operations fail with an I/O error (for tests).",
							 "Takes effect only with lsm.debug_io_faults on.",
							 &debug_fail_io, FAIL_IO_NONE, fail_io_options,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, assign_fail_io, NULL);
}

lsm_env *
lsm_fault_env(void)
{
	if (!debug_io_faults)
		return NULL;
	if (fault_env == NULL)
	{
		fault_env = lsm_fault_env_create(lsm_env_posix());
		if (fault_env == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		arm(debug_fail_io);
	}
	return fault_env;
}
