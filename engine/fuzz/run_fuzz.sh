#!/bin/sh
# Runs each fuzz target from its seed corpus (fuzz/corpus/<target>, read
# only) plus a working corpus in the build dir (where libFuzzer keeps the
# inputs it finds), for FUZZ_SECONDS each, or for FUZZ_RUNS inputs when
# that is set.  A target passes when libFuzzer exits 0: no crash, no
# sanitizer report, no failed FUZZ_CHECK, no input slower than 10 s, no
# run over 2 GB.  A finding is saved as <build>/artifacts/<target>-crash-*.
# Usage: sh fuzz/run_fuzz.sh BUILD_DIR TARGET...   Ends "N passed, N failed".
B=$1
shift
cd "$(dirname "$0")/.." || exit 2
pass=0
fail=0
mkdir -p "$B/artifacts"
for t in "$@"; do
	work="$B/corpus/$t"
	mkdir -p "$work"
	if [ -n "$FUZZ_RUNS" ]; then
		limit="-runs=$FUZZ_RUNS"
	else
		limit="-max_total_time=${FUZZ_SECONDS:-10}"
	fi
	start=$(date +%s)
	"$B/fuzz_$t" $limit -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$B/artifacts/$t-" "$work" "fuzz/corpus/$t" >"$B/fuzz_$t.log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$B/fuzz_$t.log" | tail -n 1)
	cov=$(grep -E '^#[0-9]+.*(DONE|INITED).*cov:' "$B/fuzz_$t.log" | tail -n 1 | sed 's/.*cov: \([0-9]*\).*/\1/')
	if [ "$rc" -eq 0 ]; then
		echo "ok   fuzz_$t: ${execs:-?} inputs in ${secs} s, coverage ${cov:-?} edges, corpus $(ls "$work" | wc -l) + $(ls "fuzz/corpus/$t" | wc -l) seeds"
		pass=$((pass + 1))
	else
		echo "FAIL fuzz_$t (exit $rc) after ${execs:-?} inputs; log $B/fuzz_$t.log:"
		grep -E 'ERROR|FUZZ_CHECK|SUMMARY|Test unit written' "$B/fuzz_$t.log" | head -n 20
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
