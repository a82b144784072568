#!/bin/sh
# I/O errors injected into the lsm storage (lsm.debug_io_faults on, then
# lsm.debug_fail_io = read | write | sync in one session).  Passes when:
#   - a read error fails that session's statement with SQLSTATE 58030
#     (io_error); other sessions read the same table whole meanwhile, and
#     the failing session reads it whole once the fault is gone;
#   - a write or sync error of the lsm files fails the writing
#     transaction with 58030, nothing of it becomes visible, the cluster
#     stays up (heap tables keep working, lsm tables still read), and after
#     a restart every committed row is there and writes work again;
#   - no server process crashed, and lsm_verify is clean at the end.
# Usage: sh scripts/pg_eio_test.sh [workdir].  Ends "N passed, N failed".
WORK=${1:-$(mktemp -d /tmp/lsm_am_eio.XXXXXX)}
DATA=$WORK/data
PORT=$((20000 + $$ % 20000))
. "$(dirname "$0")/pg_lib.sh"
PSQL="$PGBIN/psql -X -q -At -h $WORK -p $PORT -d postgres"

init_cluster <<EOF || { echo "initdb failed"; echo "0 passed, 1 failed"; exit 1; }
lsm.debug_io_faults = on
synchronous_commit = on
EOF
start_server || { cat "$WORK/server.log"; echo "0 passed, 1 failed"; exit 1; }
query "CREATE EXTENSION lsm_am" "CREATE TABLE h (x int)" \
	"CREATE TABLE t (id int, payload text) USING lsm" \
	"INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g" \
	"SELECT lsm_flush()" >/dev/null
# a restart empties the block cache: the next scan reads the files
stop_server
start_server

out=$(query "SET lsm.debug_fail_io = 'read'" "SELECT count(*) FROM t" \
	"RESET lsm.debug_fail_io" "SELECT count(*) FROM t")
# (the error comes from attaching to the storage or from the scan,
# whichever reads a file first in the session)
check_has "a read error fails the statement with io_error" "$out" "ERROR: +58030: .*: I/O error"
check_has "... and the same session reads the table whole once the fault is gone" "$out" "^20000$"
check "another session reads the table whole" "20000" "$(query "SELECT count(*) FROM t")"

out=$(query "SET lsm.debug_fail_io = 'write'" \
	"INSERT INTO t SELECT g, 'lost' FROM generate_series(20001, 20100) g")
check_has "a log write error fails the transaction with io_error" "$out" "ERROR: +58030: lsm storage could not"
check "nothing of the failed transaction is visible" "0" \
	"$(query "SELECT count(*) FROM t WHERE payload = 'lost'")"
out=$(query "INSERT INTO t VALUES (0, 'after')")
check_has "later lsm writes fail too, with io_error (the log is unusable until a restart)" "$out" \
	"ERROR: +58030: "
check "heap tables keep working" "1" "$(query "INSERT INTO h VALUES (1)" "SELECT count(*) FROM h")"
check "lsm tables still read" "20000" "$(query "SELECT count(*) FROM t")"
stop_server
start_server || tail -n 20 "$WORK/server.log"
check "after a restart: every committed row, writes work again" "20001 0" \
	"$(query "INSERT INTO t VALUES (0, 'after')" \
		"SELECT count(*) || ' ' || count(*) FILTER (WHERE payload = 'lost') FROM t")"

out=$(query "SET lsm.debug_fail_io = 'sync'" \
	"INSERT INTO t SELECT g, 'lost' FROM generate_series(30001, 30100) g")
check_has "a log sync error fails the transaction with io_error" "$out" "ERROR: +58030: lsm storage could not"
check "nothing of it is visible" "0" "$(query "SELECT count(*) FROM t WHERE payload = 'lost'")"
stop_server
start_server || tail -n 20 "$WORK/server.log"
check "after a restart: every committed row, nothing of the failed ones" "20001 0" \
	"$(query "SELECT count(*) || ' ' || count(*) FILTER (WHERE payload = 'lost') FROM t")"
check "no server process crashed" "0" "$(grep -c 'terminated by signal' "$WORK/server.log")"
check "lsm_verify is clean" "0" "$(query "SELECT sum(problems) FROM lsm_verify('t')")"
finish "$1"
