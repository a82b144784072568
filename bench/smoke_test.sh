#!/bin/sh
# The peer benchmark harness works: it builds against Debian's LevelDB and
# RocksDB, runs every workload on all three engines at a small size, and
# prints one line per workload with all three figures and both ratios; the
# reads of all three engines must find exactly the same keys.
# (Its figures are not checked here: timing belongs in bench runs.)
cd "$(dirname "$0")" || exit 2
pass=0
fail=0
check() {
	if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; fi
}
make -s >/dev/null 2>&1
check "harness builds" "[ -x build/engine_vs_peers ]"
out=$(./build/engine_vs_peers --num=20000 --write_buffer_mb=1 --cache_mb=1 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/   /'
check "harness exits 0" "[ $rc -eq 0 ]"
for w in fillseq fillrandom overwrite readrandom readmissing readseq; do
	check "$w: three engines and two ratios" \
		"printf '%s\n' \"\$out\" | grep -E \"^$w +lsm +[0-9]+ ops/s +leveldb +[0-9]+ ops/s +rocksdb +[0-9]+ ops/s +lsm/leveldb [0-9.]+x +lsm/rocksdb [0-9.]+x\$\" >/dev/null"
done
# the harness itself exits 1 when the engines' reads find different keys
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
