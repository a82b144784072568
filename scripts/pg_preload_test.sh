#!/bin/sh
# lsm_am without shared_preload_libraries: CREATE EXTENSION, and the use of
# an lsm table made while it was preloaded, both fail with an error that
# says what to put in postgresql.conf; with it back, the rows are there.
# As root, the cluster runs as the postgres user.  Ends "N passed, N failed".
WORK=${1:-$(mktemp -d /tmp/lsm_am_preload.XXXXXX)}
PGBIN=$(pg_config --bindir)
DATA=$WORK/data
PORT=$((40000 + $$ % 20000))
mkdir -p "$WORK"
. "$(dirname "$0")/pg_lib.sh"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$WORK"
PSQL="$PGBIN/psql -X -q -At -h $WORK -p $PORT -d postgres"
pass=0
fail=0
check() {   # name, expected substring, output
	if printf '%s' "$3" | grep -q "$2"; then
		echo "ok   $1"
		pass=$((pass + 1))
	else
		echo "FAIL $1: expected \"$2\", got: $3"
		fail=$((fail + 1))
	fi
}
start() { as_pg "$PGBIN/pg_ctl -D $DATA -l $WORK/server.log -w $1" >/dev/null 2>&1; }

as_pg "$PGBIN/initdb -D $DATA -A trust" >/dev/null 2>&1
cat >> "$DATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
EOF
start start
out=$(as_pg "$PSQL -c 'CREATE EXTENSION lsm_am'" 2>&1)
check "CREATE EXTENSION without the preload is refused" \
	"Add lsm_am to shared_preload_libraries in postgresql.conf" "$out"
out=$(as_pg "$PSQL -c \"SELECT count(*) FROM pg_am WHERE amname = 'lsm'\"" 2>&1)
check "and leaves no access method behind" "^0$" "$out"

echo "shared_preload_libraries = 'lsm_am'" >> "$DATA/postgresql.conf"
start restart
as_pg "$PSQL -c 'CREATE EXTENSION lsm_am' -c 'CREATE TABLE t (x int) USING lsm' \
	-c 'INSERT INTO t SELECT generate_series(1, 100)'" >/dev/null 2>&1

sed -i "s/^shared_preload_libraries = 'lsm_am'$//" "$DATA/postgresql.conf"
start restart
out=$(as_pg "$PSQL -c 'SELECT count(*) FROM t'" 2>&1)
check "an lsm table without the preload is refused" \
	"Add lsm_am to shared_preload_libraries in postgresql.conf" "$out"

echo "shared_preload_libraries = 'lsm_am'" >> "$DATA/postgresql.conf"
start restart
out=$(as_pg "$PSQL -c 'SELECT count(*) FROM t'" 2>&1)
check "with the preload back, the rows are there" "^100$" "$out"
as_pg "$PGBIN/pg_ctl -D $DATA -w stop -m fast" >/dev/null 2>&1
[ "$fail" -eq 0 ] && [ -z "$1" ] && rm -rf "$WORK"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
