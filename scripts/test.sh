#!/bin/sh
# The whole test suite: engine tests (plain, under ASan+UBSan, and the
# concurrency tests under TSan), each fuzz target briefly from its seed
# corpus (FUZZ_SECONDS, default 15), the peer benchmark harness at a small
# size (it checks all engines' reads agree), and the PostgreSQL suites
# (pg_regress, isolation specs, crash recovery: scripts/pg_test.sh), and
# the pg_regress and isolation suites again with the extension and engine
# under ASan+UBSan in a server built with ASan (scripts/pg_asan_test.sh;
# the server build takes a few minutes the first time).  Ends with "N passed, N failed"; exits
# non-zero when anything failed.
cd "$(dirname "$0")/.." || exit 2
sh scripts/deps.sh || exit 2

pass=0
fail=0
run() {
	label=$1
	shift
	echo "=== $label: $*"
	out=$("$@" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
	if [ -z "$line" ]; then
		echo "=== $label: no result line (exit $rc): counted as 1 failure"
		fail=$((fail + 1))
		return
	fi
	p=$(echo "$line" | cut -d' ' -f1)
	f=$(echo "$line" | cut -d' ' -f3)
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	pass=$((pass + p))
	fail=$((fail + f))
}

run "engine" make -s -C engine test
run "engine under ASan+UBSan" make -s -C engine test SANITIZE=1
run "engine concurrency under TSan" make -s -C engine test TSAN=1
run "engine fuzz targets (${FUZZ_SECONDS:=15} s each)" make -s -C engine fuzz FUZZ_SECONDS=$FUZZ_SECONDS
run "peer benchmark harness" sh bench/smoke_test.sh
run "postgres" sh scripts/pg_test.sh
run "postgres suites, extension and engine under ASan+UBSan" sh scripts/pg_asan_test.sh

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
