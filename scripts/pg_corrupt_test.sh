#!/bin/sh
# Damaged lsm files under PGDATA/pg_lsm: the server names the file, keeps
# running, and loses nothing it did not have to.
#   - An SSTable with bytes overwritten in a data block: reading the table
#     whose rows it holds fails with SQLSTATE XX001 (data_corrupted) and a
#     message naming pg_lsm/<file>; another lsm table (in another file) and
#     a heap table still read correctly; the postmaster did not restart;
#     lsmctl verify names the file and the offset.
#   - The manifest with a record damaged before valid ones, and a WAL
#     segment damaged before valid records (after a crash, so the WAL is
#     replayed): the lsm storage refuses to open with XX001 naming that
#     file; heap tables keep working; with the file restored, every row is
#     back.
#   - A torn WAL tail after a crash (a record cut short after the last
#     whole one): recovered without an error, every committed row present.
# Usage: sh scripts/pg_corrupt_test.sh [workdir].  Ends "N passed, N failed".
WORK=${1:-$(mktemp -d /tmp/lsm_am_corrupt.XXXXXX)}
DATA=$WORK/data
LSMDIR=$DATA/pg_lsm
PORT=$((20000 + $$ % 20000))
. "$(dirname "$0")/pg_lib.sh"
PSQL="$PGBIN/psql -X -q -At -h $WORK -p $PORT -d postgres"
LSMCTL=$PGBIN/lsmctl

# overwrite FILE OFFSET: 8 bytes of 0xA5 at OFFSET
overwrite() {
	printf '\245\245\245\245\245\245\245\245' | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

postmaster_pid() {
	head -n 1 "$DATA/postmaster.pid" 2>/dev/null
}

ssts() {
	ls "$LSMDIR" | grep '\.sst$' | sort
}

init_cluster <<EOF || { echo "initdb failed"; echo "0 passed, 1 failed"; exit 1; }
lsm.l0_compaction_trigger = 64
lsm.compaction_workers = 1
synchronous_commit = on
restart_after_crash = on
EOF
start_server || { cat "$WORK/server.log"; echo "0 passed, 1 failed"; exit 1; }
as_pg "$PSQL -c 'CREATE EXTENSION lsm_am' -c 'CREATE TABLE h (id int, t text)' \
	-c 'INSERT INTO h SELECT g, md5(g::text) FROM generate_series(1, 1000) g'"

# ---- an SSTable: a's rows in one set of files, b's in another
as_pg "$PSQL -c 'CREATE TABLE a (id int, t text) USING lsm' \
	-c 'INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 20000) g' \
	-c 'SELECT lsm_flush()'" >/dev/null
ssts > "$WORK/ssts_a"
as_pg "$PSQL -c 'CREATE TABLE b (id int, t text) USING lsm' \
	-c 'INSERT INTO b SELECT g, md5(g::text) FROM generate_series(1, 20000) g' \
	-c 'SELECT lsm_flush()'" >/dev/null
stop_server
victim=""
for f in $(cat "$WORK/ssts_a"); do
	[ -z "$victim" ] || [ "$(stat -c %s "$LSMDIR/$f")" -gt "$(stat -c %s "$LSMDIR/$victim")" ] && victim=$f
done
cp -a "$LSMDIR" "$WORK/pg_lsm.good"
size=$(stat -c %s "$LSMDIR/$victim")
overwrite "$LSMDIR/$victim" $((size / 3))
start_server
pm=$(postmaster_pid)
out=$(query "SELECT count(*) FROM a")
check_has "reading a damaged SSTable: XX001 naming pg_lsm/$victim" "$out" \
	"ERROR: +XX001: .*corrupt data in file \"pg_lsm/$victim\""
check_has "... with the offset in the detail" "$out" "DETAIL: +The damage is at byte offset [0-9]+ of the file"
check "another lsm table reads whole" "20000" "$(query "SELECT count(*) FROM b")"
check "a heap table reads whole" "1000" "$(query "SELECT count(*) FROM h")"
check "the server did not restart" "$pm" "$(postmaster_pid)"
check "no server process crashed" "0" "$(grep -c 'terminated by signal' "$WORK/server.log")"
vout=$(as_pg "$LSMCTL verify $LSMDIR" 2>&1)
check_has "lsmctl verify names the file and the offset" "$vout" "$victim: offset [0-9]+: data block"
stop_server
rm -rf "$LSMDIR" && cp -a "$WORK/pg_lsm.good" "$LSMDIR"
start_server
check "with the file restored, a reads whole again" "20000" "$(query "SELECT count(*) FROM a")"

# ---- the manifest: damage before its last record
manifest=$(ls "$LSMDIR" | grep '^MANIFEST-' | tail -n 1)
stop_server
cp -a "$LSMDIR" "$WORK/pg_lsm.good2"
overwrite "$LSMDIR/$manifest" 20
start_server
out=$(query "SELECT count(*) FROM b")
check_has "a damaged manifest: XX001 naming pg_lsm/$manifest" "$out" \
	"ERROR: +XX001: could not open the lsm_am storage .*corrupt data in file \"pg_lsm/$manifest\""
check "a heap table still reads" "1000" "$(query "SELECT count(*) FROM h")"
check "no server process crashed" "0" "$(grep -c 'terminated by signal' "$WORK/server.log")"
stop_server
rm -rf "$LSMDIR" && cp -a "$WORK/pg_lsm.good2" "$LSMDIR"
start_server
check "with the manifest restored, b reads whole" "20000" "$(query "SELECT count(*) FROM b")"

# ---- the WAL: rows only in the log at a crash (no flush, kill -9)
as_pg "$PSQL -c 'CREATE TABLE c (id int, t text) USING lsm'" >/dev/null
for i in $(seq 1 40); do
	echo "INSERT INTO c SELECT g, md5(g::text) FROM generate_series($((i * 100 - 99)), $((i * 100))) g;"
done > "$WORK/c.sql"
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/c.sql"
as_pg "$PSQL -f $WORK/c.sql" >/dev/null
crash
wal=$(ls "$LSMDIR" | grep '\.wal$' | sort | tail -n 1)
cp -a "$LSMDIR" "$WORK/pg_lsm.crashed"
wsize=$(stat -c %s "$LSMDIR/$wal")
overwrite "$LSMDIR/$wal" $((wsize / 3))
start_server
out=$(query "SELECT count(*) FROM c")
check_has "a WAL segment damaged before valid records: XX001 naming pg_lsm/$wal" "$out" \
	"ERROR: +XX001: could not open the lsm_am storage .*corrupt data in file \"pg_lsm/$wal\""
check "a heap table still reads" "1000" "$(query "SELECT count(*) FROM h")"
stop_server
rm -rf "$LSMDIR" && cp -a "$WORK/pg_lsm.crashed" "$LSMDIR"
# a torn tail: a record cut short by the crash, after the last one written
# whole (its first 30 bytes: a valid header whose payload runs past the end)
dd if="$LSMDIR/$wal" bs=1 skip=32 count=30 2>/dev/null >> "$LSMDIR/$wal"
start_server
out=$(query "SELECT count(*) FROM c")
check "a torn WAL tail recovers without an error, every committed row present" "4000" "$out"
check "the tables flushed before read whole" "20000 20000" \
	"$(query "SELECT (SELECT count(*) FROM a) || ' ' || (SELECT count(*) FROM b)")"
finish "$1"
