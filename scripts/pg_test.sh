#!/bin/sh
# The PostgreSQL half of the test suite: builds and installs lsm_am, then
# runs the pg_regress suites (sql/ + expected/), the isolation specs
# (specs/ + expected/) and the crash-recovery tests, each against its own
# temporary cluster with lsm_am preloaded.  PostgreSQL refuses to run as
# root: as root, the clusters run as the `postgres` user in a scratch
# directory it owns.  Any sanitizer report in a suite's server log fails
# it.  Ends with "N passed, N failed".
#
# For other builds (scripts/pg_asan_test.sh): PG_CONFIG names the server,
# LSM_MAKE_FLAGS are passed to make (SANITIZE=1), LSM_SERVER_ENV is set in
# the suites' servers' environment, and LSM_SUITES_ONLY=1 leaves out the
# script tests.
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
PGBIN=$($PG_CONFIG --bindir)
PGXS_DIR=$(dirname "$($PG_CONFIG --pgxs)")/..
REGRESS="$PGXS_DIR/test/regress/pg_regress"
ISOLATION="$PGXS_DIR/test/isolation/pg_isolation_regress"
REGRESS_TESTS="setup basic mvcc ddl types stats indexes hot vacuum cluster cic sample constraints planner verify"
ISOLATION_TESTS="visibility update_conflict index_dead vacuum_snapshot cluster_chain cic_concurrent serializable row_locks hot_update"

make -s $LSM_MAKE_FLAGS PG_CONFIG="$PG_CONFIG" >/dev/null &&
	make -s $LSM_MAKE_FLAGS PG_CONFIG="$PG_CONFIG" install >/dev/null ||
	{ echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

WORK=$(mktemp -d /tmp/lsm_am_test.XXXXXX)
cp -r sql expected specs "$WORK"/
RUNAS=""
if [ "$(id -u)" -eq 0 ]; then
	chown -R postgres "$WORK"
	RUNAS="su postgres -s /bin/sh -c"
fi
as_pg() {
	if [ -n "$RUNAS" ]; then $RUNAS "$*"; else sh -c "$*"; fi
}

pass=0
fail=0
# pg_regress prints "ok" / "FAILED" per test (PG 15: "test name ... ok")
count() {
	p=$(grep -cE '^(test |     |ok )?.* \.\.\. ok' "$1")
	f=$(grep -cE '\.\.\. (FAILED|failed)' "$1")
	pass=$((pass + p))
	fail=$((fail + f))
	[ "$p" -eq 0 ] && [ "$f" -eq 0 ] && fail=$((fail + 1))
}

# sanitizer reports in a suite's server log (none unless the build has them)
reports() {
	n=$(cat "$1"/log/*.log 2>/dev/null | grep -cE 'AddressSanitizer|LeakSanitizer|runtime error:')
	if [ "$n" -eq 0 ]; then
		pass=$((pass + 1))
	else
		echo "FAIL $n sanitizer report lines in the $2 server's log:"
		cat "$1"/log/*.log | grep -E -A 40 'AddressSanitizer|runtime error:' | head -n 120
		fail=$((fail + 1))
	fi
}

echo "=== pg_regress: $REGRESS_TESTS"
as_pg "cd $WORK && $LSM_SERVER_ENV $REGRESS --inputdir=$WORK --outputdir=$WORK/regress \
	--temp-instance=$WORK/regress/tmp_check --temp-config=$WORK/sql/lsm_am.conf \
	--bindir=$PGBIN $REGRESS_TESTS" > "$WORK/regress.log" 2>&1
cat "$WORK/regress.log"
count "$WORK/regress.log"
[ -f "$WORK/regress/regression.diffs" ] && cat "$WORK/regress/regression.diffs"
reports "$WORK/regress" pg_regress

echo "=== pg_isolation_regress: $ISOLATION_TESTS"
as_pg "cd $WORK && $LSM_SERVER_ENV $ISOLATION --inputdir=$WORK --outputdir=$WORK/isolation \
	--temp-instance=$WORK/isolation/tmp_check --temp-config=$WORK/sql/lsm_am.conf \
	--bindir=$PGBIN $ISOLATION_TESTS" > "$WORK/isolation.log" 2>&1
cat "$WORK/isolation.log"
count "$WORK/isolation.log"
[ -f "$WORK/isolation/regression.diffs" ] && cat "$WORK/isolation/regression.diffs"
reports "$WORK/isolation" isolation

if [ "${LSM_SUITES_ONLY:-0}" = 1 ]; then
	[ "$fail" -eq 0 ] && rm -rf "$WORK"
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
fi

# a script test: its "N passed, N failed" line is added in
script_test() {
	echo "=== $1"
	out=$(sh "$2" "$3" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
	if [ -z "$line" ]; then
		fail=$((fail + 1))
		return
	fi
	pass=$((pass + $(echo "$line" | cut -d' ' -f1)))
	f=$(echo "$line" | cut -d' ' -f3)
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	fail=$((fail + f))
}
script_test "without shared_preload_libraries" scripts/pg_preload_test.sh "$WORK/preload"
script_test "crash recovery" scripts/pg_crash_test.sh "$WORK/crash"
script_test "xids PostgreSQL forgot in a crash" scripts/pg_xid_reuse_test.sh "$WORK/xid"
script_test "pg_dump and pg_restore" scripts/pg_dump_test.sh "$WORK/dump"
script_test "pgbench TPC-B, and kill -9 in the middle" scripts/pg_tpcb_test.sh "$WORK/tpcb"
script_test "xid wraparound" scripts/pg_wraparound_test.sh "$WORK/wrap"
script_test "damaged lsm files under PGDATA" scripts/pg_corrupt_test.sh "$WORK/corrupt"
script_test "disk full under pg_lsm" scripts/pg_diskfull_test.sh "$WORK/diskfull"
script_test "I/O errors injected into the lsm storage" scripts/pg_eio_test.sh "$WORK/eio"
script_test "pgbench -c 16 load" scripts/pg_load_test.sh "$WORK/load"

[ "$fail" -eq 0 ] && rm -rf "$WORK"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
