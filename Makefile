# lsm_am — PGXS build of the extension.  The engine under engine/ is built
# first with its own Makefile and linked in statically (it needs only libc
# and pthreads).
#
#   make && make install       build and install the extension
#   make installcheck          pg_regress against a running server
#   make fuzz FUZZ_SECONDS=N   every engine fuzz target for N s (clang, libFuzzer)
#   sh scripts/test.sh         the whole suite (engine + PostgreSQL)

MODULE_big = lsm_am
OBJS = src/lsm_am.o src/lsm_fault.o src/lsm_funcs.o src/lsm_gc.o src/lsm_handler.o src/lsm_modify.o \
       src/lsm_recovery.o src/lsm_row.o src/lsm_rowid.o src/lsm_rowlock.o src/lsm_scan.o \
       src/lsm_vacuum.o src/lsm_verify.o src/lsm_visibility.o src/lsm_worker.o src/lsm_xact.o
EXTENSION = lsm_am
DATA = lsm_am--0.1.sql
PGFILEDESC = "lsm_am - LSM-tree table access method"

REGRESS = setup basic mvcc ddl types stats indexes hot vacuum cluster cic sample constraints planner verify
REGRESS_OPTS = --temp-config=$(srcdir)/sql/lsm_am.conf

# make SANITIZE=1: the extension and the engine under AddressSanitizer and
# UBSan, for a server built with ASan (scripts/pg_asan_test.sh)
ifeq ($(SANITIZE),1)
ENGINE_BUILD = build-asan
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer
else
ENGINE_BUILD = build
SANFLAGS =
endif
ENGINE_LIB = engine/$(ENGINE_BUILD)/liblsm.a
# the offline tool (verify, dump files) goes beside pg_ctl
SCRIPTS_built = engine/$(ENGINE_BUILD)/lsmctl
PG_CPPFLAGS = -I$(srcdir)/engine/include -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-sign-compare -Wno-clobbered -Werror
PG_CFLAGS = $(SANFLAGS)
SHLIB_LINK = $(ENGINE_LIB) -lpthread $(SANFLAGS)
EXTRA_CLEAN = $(ENGINE_LIB)

# no JIT bitcode: the extension's hot paths are not expressions, and
# clang is then not needed to build
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): src/lsm_am.h src/lsm_row.h src/lsm_tableam.h src/lsm_visibility.h engine/include/lsm.h
$(shlib): $(ENGINE_LIB)

.PHONY: engine engine-test fuzz
$(ENGINE_LIB): engine
engine:
	$(MAKE) -C engine $(ENGINE_BUILD)/liblsm.a SANITIZE=$(SANITIZE)

engine/$(ENGINE_BUILD)/lsmctl: engine
	$(MAKE) -C engine $(ENGINE_BUILD)/lsmctl SANITIZE=$(SANITIZE)

engine-test:
	$(MAKE) -C engine test

fuzz:
	$(MAKE) -C engine fuzz FUZZ_SECONDS=$(or $(FUZZ_SECONDS),10) FUZZ_RUNS=$(FUZZ_RUNS)

clean: engine-clean
engine-clean:
	$(MAKE) -C engine clean
