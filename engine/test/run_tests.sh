#!/bin/sh
# Runs each engine test binary (or test/*.sh script), shows its output, and sums the per-binary
# "N passed, N failed" lines.  A binary that dies before its summary (crash,
# sanitizer report) counts as one failure.  Ends with the total line.
total_pass=0
total_fail=0
for bin in "$@"; do
	name=$(basename "$bin")
	echo "== $name"
	case "$bin" in
	*.sh) out=$(sh "$bin" "${LSM_BUILD:-build}" 2>&1) ;;   # script tests take the build dir
	*) out=$("$bin" 2>&1) ;;
	esac
	rc=$?
	printf '%s\n' "$out" | sed 's/^/   /'
	summary=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
	if [ -z "$summary" ]; then
		echo "   $name: no summary (exit $rc): counted as 1 failure"
		total_fail=$((total_fail + 1))
		continue
	fi
	p=$(echo "$summary" | cut -d' ' -f1)
	f=$(echo "$summary" | cut -d' ' -f3)
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
