# lsm_am — PGXS build of the extension; the engine under engine/ is built
# first with its own Makefile (make -C engine) and linked in statically.
#
# The table access method (src/) and its SQL (sql/, expected/) arrive with
# the PostgreSQL integration; until then this builds and tests the engine.

EXTENSION = lsm_am
PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

all: engine

.PHONY: engine engine-test
engine:
	$(MAKE) -C engine

engine-test:
	$(MAKE) -C engine test

clean: engine-clean
engine-clean:
	$(MAKE) -C engine clean
