#!/bin/sh
# Main job: installs what is missing, builds and installs lsm_am, starts a
# local cluster with lsm_am preloaded, and runs a write-heavy pgbench
# (insert-only, 30 s) on an lsm table and on a heap table in the same
# server, then prints both rates and lsm_stats().
#   LSM_RUN_SECONDS (30), LSM_RUN_CLIENTS (4), LSM_RUN_PGDATA (./pgdata)
set -e
cd "$(dirname "$0")/.."
REPO=$(pwd)
sh scripts/deps.sh
make -s >/dev/null
make -s install >/dev/null
PGBIN=$(pg_config --bindir)
SECONDS_EACH=${LSM_RUN_SECONDS:-30}
CLIENTS=${LSM_RUN_CLIENTS:-4}
PORT=${LSM_RUN_PORT:-54329}

. scripts/pg_lib.sh
# the cluster lives in ./pgdata; as root it must belong to postgres, which
# also needs to reach it (else a directory under /tmp)
PGDATA=${LSM_RUN_PGDATA:-$REPO/pgdata}
if [ "$(id -u)" -eq 0 ]; then
	mkdir -p "$PGDATA" && chown postgres "$PGDATA"
	if ! su postgres -s /bin/sh -c "test -w '$PGDATA'"; then
		PGDATA=/tmp/lsm_am_pgdata
		mkdir -p "$PGDATA" && chown postgres "$PGDATA"
	fi
fi
SOCK=$PGDATA
if [ ! -f "$PGDATA/PG_VERSION" ]; then
	as_pg "$PGBIN/initdb -D '$PGDATA' -A trust" >/dev/null
	cat >> "$PGDATA/postgresql.conf" <<CONF
shared_preload_libraries = 'lsm_am'
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
max_connections = 50
shared_buffers = 256MB
lsm.memtable_size = 64
lsm.block_cache_size = 128
CONF
fi
as_pg "$PGBIN/pg_ctl -D '$PGDATA' -l '$PGDATA/server.log' -w start" >/dev/null
trap 'as_pg "$PGBIN/pg_ctl -D \"$PGDATA\" -w stop -m fast" >/dev/null' EXIT
PSQL="$PGBIN/psql -X -q -h $SOCK -p $PORT -d postgres -v ON_ERROR_STOP=1"
as_pg "$PSQL" <<'SQL'
CREATE EXTENSION IF NOT EXISTS lsm_am;
DROP TABLE IF EXISTS events_lsm, events_heap;
CREATE TABLE events_lsm (id bigserial, at timestamptz DEFAULT now(), kind int, payload text) USING lsm;
CREATE TABLE events_heap (id bigserial, at timestamptz DEFAULT now(), kind int, payload text) USING heap;
SQL
for t in lsm heap; do
	printf '%s\n' "INSERT INTO events_$t (kind, payload) VALUES (:client_id, md5(random()::text) || ' event payload');" > "$PGDATA/insert_$t.sql"
done
[ "$(id -u)" -eq 0 ] && chown postgres "$PGDATA"/insert_*.sql
run_pgbench() {
	as_pg "$PGBIN/pgbench -n -h $SOCK -p $PORT -c $CLIENTS -j 2 -T $SECONDS_EACH -f $PGDATA/insert_$1.sql postgres" 2>&1 |
		awk '/^tps/ { printf "%.0f", $3 }'
}
echo "== pgbench -n, insert-only, $CLIENTS clients, ${SECONDS_EACH}s each, synchronous_commit on (same server)"
tps_lsm=$(run_pgbench lsm)
tps_heap=$(run_pgbench heap)
echo "lsm table:  $tps_lsm tps"
echo "heap table: $tps_heap tps"
awk -v a="$tps_lsm" -v b="$tps_heap" 'BEGIN { if (b > 0) printf "lsm / heap: %.2fx\n", a / b }'
echo "== rows"
as_pg "$PSQL -c 'SELECT (SELECT count(*) FROM events_lsm) AS lsm_rows, (SELECT count(*) FROM events_heap) AS heap_rows'"
echo "== lsm_stats()"
as_pg "$PSQL -c 'SELECT name, value FROM lsm_stats()'"
