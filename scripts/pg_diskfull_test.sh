#!/bin/sh
# Disk full under the lsm storage: PGDATA/pg_lsm lives on a small tmpfs
# (PostgreSQL's own files stay on the normal disk), and a load of
# transactions fills it.  Passes when:
#   - writes fail with SQLSTATE 53100 (disk_full) and a message saying
#     what to do, and nothing else goes wrong (no crash, no other error);
#   - while the disk is full the cluster stays up: heap tables read and
#     write, and lsm tables still read;
#   - once space is freed, lsm writes resume by themselves (the flush
#     worker sees the space and has the postmaster restart every process,
#     so the engine recovers from its files), every committed batch (the
#     ledger, a heap table written in the same transactions) has exactly
#     its rows, and no row of a failed transaction shows.
# Mounting needs root (CI runs as root); otherwise this test fails, saying
# so.  Usage: sh scripts/pg_diskfull_test.sh [workdir].
# Ends "N passed, N failed".
WORK=${1:-$(mktemp -d /tmp/lsm_am_diskfull.XXXXXX)}
DATA=$WORK/data
FS=$WORK/lsmfs
PORT=$((20000 + $$ % 20000))
. "$(dirname "$0")/pg_lib.sh"
PSQL="$PGBIN/psql -X -q -At -h $WORK -p $PORT -d postgres"

if [ "$(id -u)" -ne 0 ]; then
	echo "not ok mounting a small tmpfs for pg_lsm needs root"
	echo "0 passed, 1 failed"
	exit 1
fi
init_cluster <<EOF || { echo "initdb failed"; echo "0 passed, 1 failed"; exit 1; }
lsm.memtable_size = 2
synchronous_commit = on
EOF
mkdir -p "$FS"
mount -t tmpfs -o size=64m tmpfs "$FS" || { echo "not ok mount tmpfs"; echo "0 passed, 1 failed"; exit 1; }
trap 'umount "$FS" 2>/dev/null' EXIT
mkdir "$FS/pg_lsm"
# room to give back once the disk is full: more than the 3 memtables of
# 2 MB + 16 MB the flush worker waits for
dd if=/dev/zero of="$FS/reserve" bs=1M count=28 2>/dev/null
chown -R postgres "$FS"
ln -s "$FS/pg_lsm" "$DATA/pg_lsm"
start_server || { cat "$WORK/server.log"; echo "0 passed, 1 failed"; exit 1; }
as_pg "$PSQL -c 'CREATE EXTENSION lsm_am' -c 'CREATE TABLE t (batch int, n int, payload text) USING lsm' \
	-c 'CREATE TABLE ledger (batch int PRIMARY KEY, nrows int)' -c 'CREATE TABLE h (x int)'"

# batches of 500 rows (~100 KB), each with its ledger row, until long past full
i=1
while [ $i -le 800 ]; do
	echo "BEGIN;"
	echo "INSERT INTO t SELECT $i, g, repeat(md5(g::text), 6) FROM generate_series(1, 500) g;"
	echo "INSERT INTO ledger VALUES ($i, 500);"
	echo "COMMIT;"
	i=$((i + 1))
done > "$WORK/load.sql"
chown postgres "$WORK/load.sql"
as_pg "$PSQL -v VERBOSITY=verbose -f $WORK/load.sql" > "$WORK/load.out" 2>&1
errors=$(grep -c 'ERROR:' "$WORK/load.out")
full=$(grep -c 'ERROR: *53100: ' "$WORK/load.out")
echo "     $(as_pg "$PSQL -c 'SELECT count(*) FROM ledger'") of 800 batches committed before the disk filled; $errors errors"
grep -m 1 -A 2 'ERROR: *53100' "$WORK/load.out" | sed 's/^/     /'
check "the disk filled: writes failed with disk_full" "1" "$([ "$full" -gt 0 ] && echo 1 || echo 0)"
check "every error was disk_full (or a statement of an aborted transaction)" "$errors" \
	"$((full + $(grep -c 'ERROR: *25P02' "$WORK/load.out")))"
check "no server process crashed" "0" "$(grep -c 'terminated by signal' "$WORK/server.log")"
check "while full: a heap table takes writes" "1" \
	"$(as_pg "$PSQL -c 'INSERT INTO h VALUES (1)' -c 'SELECT count(*) FROM h'")"
committed=$(as_pg "$PSQL -c 'SELECT count(*) FROM ledger'")
check "while full: the lsm table reads every committed row" "$((committed * 500))" \
	"$(as_pg "$PSQL -c 'SELECT count(*) FROM t'")"

rm -f "$FS/reserve"
# the flush worker sees the space within a second, and restarts the
# processes once the server has been up a minute (no faster cycling)
t=0
until as_pg "$PSQL -c 'INSERT INTO t SELECT 100000, g, 1 FROM generate_series(1, 500) g'" >/dev/null 2>&1; do
	sleep 1
	t=$((t + 1))
	[ $t -ge 120 ] && break
done
check "once space is freed, lsm writes resume by themselves" "1" "$([ $t -lt 120 ] && echo 1 || echo 0)"
check "... through one restart of the server's processes" "1" \
	"$(grep -c 'space is free again' "$WORK/server.log")"
check "every committed batch whole, nothing else" "0 0" \
	"$(as_pg "$PSQL -c \"SELECT (SELECT count(*) FROM ledger l LEFT JOIN (SELECT batch, count(*) AS c FROM t GROUP BY batch) x USING (batch) WHERE coalesce(x.c, 0) <> l.nrows) || ' ' || (SELECT count(*) FROM t WHERE batch <> 100000 AND batch NOT IN (SELECT batch FROM ledger))\"")"
check "... and the row written after the restart" "500" \
	"$(as_pg "$PSQL -c 'SELECT count(*) FROM t WHERE batch = 100000'")"
check "lsm_verify is clean" "0" "$(as_pg "$PSQL -c \"SELECT sum(problems) FROM lsm_verify('t')\"")"
stop_server
umount "$FS"
trap - EXIT
finish "$1"
