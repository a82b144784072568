#!/bin/sh
# lsmctl_test.sh — the inspection CLI on a real database written by
# lsm_bench: verify is clean, names file and offset of a flipped byte (exit
# 1), reports a torn tail without failing, and dump-wal lists the records.
# Prints one line per check and "N passed, N failed".
BUILD=${1:-build}
CTL=$BUILD/lsmctl
DIR=${TMPDIR:-/tmp}/lsmctl_test.$$
pass=0
fail=0
check() {   # check NAME COMMAND...: passes when COMMAND succeeds
	name=$1
	shift
	if "$@"; then pass=$((pass + 1)); echo "ok   $name"
	else fail=$((fail + 1)); echo "FAIL $name"; fi
}
rm -rf "$DIR"
$BUILD/lsm_bench --benchmarks=fillrandom --num=2000 --db="$DIR" >/dev/null || exit 1
SEG=$(ls "$DIR"/*.wal | head -n 1)
SIZE=$(stat -c %s "$SEG")

out=$($CTL verify "$DIR"); rc=$?
check verify_clean_exit_0 test "$rc" -eq 0
check verify_counts_entries sh -c "echo '$out' | grep -q '2000 entries'"

out=$($CTL dump-wal "$SEG"); rc=$?
check dump_wal_lists_records test "$(echo "$out" | grep -c '^record seq')" -eq 2000

cp "$SEG" "$DIR/seg.bak"
printf '\377' | dd of="$SEG" bs=1 seek=$((SIZE / 2)) conv=notrunc 2>/dev/null
out=$($CTL verify "$DIR"); rc=$?
check verify_corrupt_exit_1 test "$rc" -eq 1
check verify_names_file_and_offset sh -c "echo '$out' | grep -q '$(basename "$SEG"): corrupt at offset [0-9]'"

cp "$DIR/seg.bak" "$SEG"
truncate -s $((SIZE - 7)) "$SEG"
out=$($CTL verify "$DIR"); rc=$?
check torn_tail_is_not_corruption test "$rc" -eq 0
check torn_tail_is_reported sh -c "echo '$out' | grep -q 'torn tail'"
check verify_does_not_modify test "$(stat -c %s "$SEG")" -eq $((SIZE - 7))

$CTL bogus >/dev/null 2>&1; rc=$?
check usage_exit_2 test "$rc" -eq 2

rm -rf "$DIR"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
