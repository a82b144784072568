#!/bin/sh
# lsmctl_test.sh — the inspection CLI on real databases written by
# lsm_bench.  A WAL-only one: verify is clean, names file and offset of a
# flipped byte (exit 1), reports a torn tail without failing, and dump-wal
# lists the records.  One with SSTables (1 MiB memtables force flushes):
# verify is clean, dump-sst prints every entry, dump-manifest lists the
# tables on disk, stats shows the levels; a flipped or truncated table, a
# bad CURRENT, a damaged manifest are each reported (exit 1), a stray table
# only warned about (exit 0).  Every command leaves the directory exactly as
# it was (a checksum listing before and after).
# Prints one line per check and "N passed, N failed".
BUILD=${1:-build}
CTL=$BUILD/lsmctl
DIR=${TMPDIR:-/tmp}/lsmctl_test.$$
TDB=$DIR.tables      # the database with SSTables, kept pristine
W=$DIR.work          # a damaged copy of it
pass=0
fail=0
check() {   # check NAME COMMAND...: passes when COMMAND succeeds
	name=$1
	shift
	if "$@"; then pass=$((pass + 1)); echo "ok   $name"
	else fail=$((fail + 1)); echo "FAIL $name"; fi
}
has() {     # has REGEX: the last command's output has a matching line
	printf '%s\n' "$out" | grep -qE -- "$1"
}
listing() { # listing DIR: every file's name, size, mtime and checksum
	(cd "$1" && stat -c '%n %s %Y' . * && md5sum -- *)
}
run() {     # run NAME DIR COMMAND...: $out (stdout+stderr) and $rc of
	rname=$1    # COMMAND, and a check that DIR did not change
	rdir=$2
	shift 2
	before=$(listing "$rdir")
	out=$("$@" 2>&1)
	rc=$?
	check "${rname}_read_only" test "$before" = "$(listing "$rdir")"
}
keys_sorted() { # the point entries of the last dump-sst: keys ascending
	printf '%s\n' "$out" | grep -E '^".*" seq [0-9]+ (PUT|DEL)( |$)' | cut -d'"' -f2 |
		LC_ALL=C sort -c
}
fresh() {   # fresh: W becomes a copy of the pristine database
	rm -rf "$W"
	cp -a "$TDB" "$W"
}
rm -rf "$DIR" "$TDB" "$W"

# ---- a WAL-only database
$BUILD/lsm_bench --benchmarks=fillrandom --num=2000 --db="$DIR" >/dev/null || exit 1
SEG=$(ls "$DIR"/*.wal | head -n 1)
SIZE=$(stat -c %s "$SEG")

run verify "$DIR" $CTL verify "$DIR"
check verify_clean_exit_0 test "$rc" -eq 0
check verify_counts_entries has '2000 entries'

run dump_wal "$DIR" $CTL dump-wal "$SEG"
check dump_wal_lists_records test "$(printf '%s\n' "$out" | grep -c '^record seq')" -eq 2000

cp "$SEG" "$DIR.seg"
printf '\377' | dd of="$SEG" bs=1 seek=$((SIZE / 2)) conv=notrunc 2>/dev/null
run verify_corrupt "$DIR" $CTL verify "$DIR"
check verify_corrupt_exit_1 test "$rc" -eq 1
check verify_names_file_and_offset has "$(basename "$SEG"): offset [0-9]+: corrupt"

cp "$DIR.seg" "$SEG"
rm -f "$DIR.seg"
truncate -s $((SIZE - 7)) "$SEG"
run torn_tail "$DIR" $CTL verify "$DIR"
check torn_tail_is_not_corruption test "$rc" -eq 0
check torn_tail_is_reported has 'warning: torn tail'
check verify_does_not_modify test "$(stat -c %s "$SEG")" -eq $((SIZE - 7))

# ---- usage
$CTL bogus "$DIR" >/dev/null 2>&1; rc=$?
check usage_exit_2 test "$rc" -eq 2
$CTL verify >/dev/null 2>&1; rc=$?
check missing_arg_exit_2 test "$rc" -eq 2
out=$($CTL 2>&1)
check usage_lists_dump_wal has 'dump-wal FILE'
check usage_lists_dump_sst has 'dump-sst FILE'
check usage_lists_dump_manifest has 'dump-manifest DIR'
check usage_lists_verify has 'verify DIR'
check usage_lists_stats has 'stats DIR'

# ---- a database with SSTables
$BUILD/lsm_bench --benchmarks=fillrandom --num=40000 --memtable_mb=1 --db="$TDB" >/dev/null ||
	exit 1
NSST=$(ls "$TDB" | grep -c '^[0-9]*\.sst$')
SST=$(ls "$TDB"/*.sst | head -n 1)
SSTNAME=$(basename "$SST")
SSTSIZE=$(stat -c %s "$SST")
MAN=$(cat "$TDB/CURRENT")
# compaction may already have merged them into one L1 table
check tables_db_has_tables test "$NSST" -ge 1

run sst_verify "$TDB" $CTL verify "$TDB"
check sst_verify_clean_exit_0 test "$rc" -eq 0
check sst_verify_counts_tables has "OK: $NSST tables \\([0-9]+ entries"

run dump_sst "$TDB" $CTL dump-sst "$SST"
check dump_sst_exit_0 test "$rc" -eq 0
entries=$(printf '%s\n' "$out" | sed -n 's/^entries  *//p')
rdels=$(printf '%s\n' "$out" | sed -n 's/^range_deletions  *//p')
lines=$(printf '%s\n' "$out" | grep -cE '^".*" seq [0-9]+ (PUT|DEL|RANGE_DEL)')
check dump_sst_has_properties test -n "$entries" -a "$entries" -gt 0
check dump_sst_one_line_per_entry test "$lines" -eq $((entries + rdels))
check dump_sst_summary has "^$entries entries, $rdels range deletions, [0-9]+ data blocks: OK"
check dump_sst_keys_in_order keys_sorted

run dump_manifest "$TDB" $CTL dump-manifest "$TDB"
check dump_manifest_exit_0 test "$rc" -eq 0
check dump_manifest_names_current has "^CURRENT names $MAN\$"
missing=0
for f in "$TDB"/*.sst; do
	has "^  add L[0-9] $(basename "$f") [0-9]+ bytes \\[" || missing=$((missing + 1))
done
check dump_manifest_adds_every_table test "$missing" -eq 0
listed=$(printf '%s\n' "$out" | sed -n 's/^    L[0-9] \([0-9]*\.sst\) .*/\1/p' | sort)
check dump_manifest_version_is_dir test "$listed" = "$(cd "$TDB" && ls *.sst | sort)"
check dump_manifest_summary has "^  total: $NSST files, [0-9]+ bytes"

run stats "$TDB" $CTL stats "$TDB"
check stats_exit_0 test "$rc" -eq 0
check stats_keeps_wal_lines has '^wal_records +[0-9]+$'
check stats_per_level has '^level0 +[0-9]+ files, [0-9]+ bytes$'
check stats_total_tables has "^tables +$NSST files"

fresh
printf '\377' | dd of="$W/$SSTNAME" bs=1 seek=$((SSTSIZE / 2)) conv=notrunc 2>/dev/null
run sst_flip "$W" $CTL verify "$W"
check sst_flip_exit_1 test "$rc" -eq 1
check sst_flip_names_file_and_offset has "$SSTNAME: offset [0-9]+: "
run dump_sst_flip "$W" $CTL dump-sst "$W/$SSTNAME"
check dump_sst_flip_exit_1 test "$rc" -eq 1
check dump_sst_flip_names_offset has "$SSTNAME: offset [0-9]+: "

fresh
truncate -s $((SSTSIZE - 100)) "$W/$SSTNAME"
run sst_truncated "$W" $CTL verify "$W"
check sst_truncated_exit_1 test "$rc" -eq 1
check sst_truncated_reported has "$SSTNAME: offset $((SSTSIZE - 100)): .*truncated"

fresh
cp "$SST" "$W/999999.sst"
run stray "$W" $CTL verify "$W"
check stray_table_exit_0 test "$rc" -eq 0
check stray_table_is_a_warning has '999999.sst: warning: table not in the version'

fresh
echo "not a manifest name" >"$W/CURRENT"
run bad_current "$W" $CTL verify "$W"
check bad_current_exit_1 test "$rc" -eq 1
check bad_current_reported has 'CURRENT: offset 0: '
run dump_manifest_bad_current "$W" $CTL dump-manifest "$W"
check dump_manifest_bad_current_exit_1 test "$rc" -eq 1

fresh
echo "MANIFEST-999999" >"$W/CURRENT"
run current_names_missing "$W" $CTL verify "$W"
check current_names_missing_exit_1 test "$rc" -eq 1
check current_names_missing_reported has 'MANIFEST-999999: missing'

fresh
rm "$W/CURRENT"
run no_current "$W" $CTL verify "$W"
check no_current_with_tables_exit_1 test "$rc" -eq 1

# a byte of the first record's payload (12-byte header): later records are
# intact, so this is damage, not a torn tail
fresh
check manifest_has_several_edits test "$(stat -c %s "$W/$MAN")" -gt 100
printf '\377' | dd of="$W/$MAN" bs=1 seek=14 conv=notrunc 2>/dev/null
run manifest_flip "$W" $CTL verify "$W"
check manifest_flip_exit_1 test "$rc" -eq 1
check manifest_flip_names_offset has "$MAN: offset 0: edit 1: bad record payload checksum"
run dump_manifest_flip "$W" $CTL dump-manifest "$W"
check dump_manifest_flip_exit_1 test "$rc" -eq 1
check dump_manifest_flip_names_offset has "$MAN: offset 0: "

# the last edit cut short: an open would drop it, but the files it made
# obsolete are gone already, so what it recorded is lost
fresh
truncate -s $(($(stat -c %s "$W/$MAN") - 5)) "$W/$MAN"
run manifest_tail "$W" $CTL verify "$W"
check manifest_tail_is_reported has "$MAN: offset [0-9]+: warning: torn tail"
check manifest_tail_loss_exit_1 test "$rc" -eq 1

rm -rf "$DIR" "$TDB" "$W"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
