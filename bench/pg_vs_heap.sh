#!/bin/sh
# lsm tables beside heap tables, same server, same run (issue 5, §8):
#   - INSERT ... SELECT of N rows (bigint, bigint, 100-byte text)
#   - COPY of the same N rows
#   - pgbench insert-only, 2 clients, synchronous_commit off, then on
#   - SELECT count(*) over the N rows
#   - size on disk after the load (heap: pg_relation_size; lsm: its files,
#     after lsm_flush() and lsm_compact())
#   - pgbench TPC-B, scale LSM_BENCH_TPCB_SCALE (10), 4 clients,
#     LSM_BENCH_TPCB_SECONDS (60), synchronous_commit off then on, each
#     access method in its own database made by pgbench -i; then the
#     balance invariant on the lsm database (the sums of account, teller
#     and branch balances and of the history's deltas agree)
#   - pgbench -S (select-only) on the same databases, 4 clients
#   - mixed: half inserts, half point reads by primary key (pgbench
#     scripts weighted 1:1) on a table of N rows, 4 clients, sync off
# Prints each figure for heap and lsm and the ratio lsm/heap (for times,
# heap/lsm, so > 1 always means lsm is better).  Machines are noisy: read
# the ratios, not the absolute figures.
#   sh bench/pg_vs_heap.sh [rows (1000000)] [pgbench seconds (20)]
set -e
cd "$(dirname "$0")/.."
REPO=$(pwd)
ROWS=${1:-1000000}
SECS=${2:-20}
PGBIN=$(pg_config --bindir)
PORT=${LSM_BENCH_PORT:-54339}
make -s >/dev/null && make -s install >/dev/null

. scripts/pg_lib.sh
WORK=$(mktemp -d /tmp/lsm_am_bench.XXXXXX)
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK"
as_pg "$PGBIN/initdb -D $WORK/data -A trust" >/dev/null
cat >> "$WORK/data/postgresql.conf" <<EOF
shared_preload_libraries = 'lsm_am'
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
shared_buffers = 512MB
max_wal_size = 4GB
checkpoint_timeout = 30min
lsm.memtable_size = 64
lsm.block_cache_size = 256
EOF
as_pg "$PGBIN/pg_ctl -D $WORK/data -l $WORK/server.log -w start" >/dev/null
trap 'as_pg "$PGBIN/pg_ctl -D $WORK/data -w stop -m fast" >/dev/null; rm -rf "$WORK"' EXIT
PSQL="$PGBIN/psql -X -q -At -h $WORK -p $PORT -d postgres -v ON_ERROR_STOP=1"
sql() { as_pg "$PSQL -c \"$1\""; }
# wall-clock milliseconds of one statement (psql's \timing)
timed() { as_pg "$PGBIN/psql -X -q -h $WORK -p $PORT -d postgres -v ON_ERROR_STOP=1" <<EOF | awk '/^Time:/ { t = $2 } END { print t }'
\\timing on
$1
EOF
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

sql "CREATE EXTENSION lsm_am"
for am in heap lsm; do
	sql "CREATE TABLE ins_$am (a bigint, b bigint, c text) USING $am"
	sql "CREATE TABLE copy_$am (a bigint, b bigint, c text) USING $am"
	sql "CREATE TABLE pgb_$am (a bigint, b bigint, c text) USING $am"
done
sql "COPY (SELECT g, g * 7, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) || left(md5((g + 3)::text), 4)
	FROM generate_series(1, $ROWS) g) TO '$WORK/rows.copy'"

echo "lsm_am vs heap, same server: $ROWS rows of (bigint, bigint, 100-byte text); pgbench ${SECS}s, 2 clients"
printf '%-34s %14s %14s %10s\n' "figure" "heap" "lsm" "lsm/heap"
for am in heap lsm; do
	eval "ins_$am=\$(timed \"INSERT INTO ins_$am SELECT g, g * 7, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) || left(md5((g + 3)::text), 4) FROM generate_series(1, $ROWS) g\")"
done
printf '%-34s %12s ms %12s ms %9sx\n' "INSERT ... SELECT (time)" "$ins_heap" "$ins_lsm" "$(ratio "$ins_heap" "$ins_lsm")"
for am in heap lsm; do
	eval "copy_$am=\$(timed \"COPY copy_$am FROM '$WORK/rows.copy'\")"
done
printf '%-34s %12s ms %12s ms %9sx\n' "COPY (time)" "$copy_heap" "$copy_lsm" "$(ratio "$copy_heap" "$copy_lsm")"
for sc in off on; do
	for am in heap lsm; do
		printf '%s\n' "INSERT INTO pgb_$am VALUES (:client_id, random() * 1000000, md5(random()::text) || md5(random()::text) || md5(random()::text) || 'abcd');" > "$WORK/pgb_$am.sql"
		[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/pgb_$am.sql"
		eval "tps_$am=\$(as_pg \"PGOPTIONS='-c synchronous_commit=$sc' $PGBIN/pgbench -n -h $WORK -p $PORT -c 2 -j 2 -T $SECS -f $WORK/pgb_$am.sql postgres\" 2>&1 | awk '/^tps/ { printf \"%.0f\", \$3 }')"
	done
	printf '%-34s %11s/s %11s/s %9sx\n' "pgbench insert (sync commit $sc)" "$tps_heap" "$tps_lsm" "$(ratio "$tps_lsm" "$tps_heap")"
done
for am in heap lsm; do
	timed "SELECT count(*) FROM ins_$am" >/dev/null    # warm
	eval "scan_$am=\$(timed \"SELECT count(*) FROM ins_$am\")"
done
printf '%-34s %12s ms %12s ms %9sx\n' "SELECT count(*) (time)" "$scan_heap" "$scan_lsm" "$(ratio "$scan_heap" "$scan_lsm")"
sql "SELECT lsm_flush()" >/dev/null
sql "SELECT lsm_compact('ins_lsm')" >/dev/null
size_heap=$(sql "SELECT pg_relation_size('ins_heap')")
size_lsm=$(sql "SELECT lsm_relation_size('ins_lsm')")
printf '%-34s %11s MB %11s MB %9sx\n' "size after the load" "$((size_heap / 1048576))" "$((size_lsm / 1048576))" "$(ratio "$size_lsm" "$size_heap")"

TPCB_SCALE=${LSM_BENCH_TPCB_SCALE:-10}
TPCB_SECS=${LSM_BENCH_TPCB_SECONDS:-60}
for am in heap lsm; do
	sql "CREATE DATABASE tpcb_$am"
	as_pg "$PGBIN/psql -X -q -h $WORK -p $PORT -d tpcb_$am -c 'CREATE EXTENSION lsm_am'"
	as_pg "PGOPTIONS='-c default_table_access_method=$am' $PGBIN/pgbench -i -q -s $TPCB_SCALE -h $WORK -p $PORT tpcb_$am" >/dev/null 2>&1
done
for sc in off on; do
	for am in heap lsm; do
		eval "tps_$am=\$(as_pg \"PGOPTIONS='-c synchronous_commit=$sc' $PGBIN/pgbench -n -h $WORK -p $PORT -c 4 -j 2 -T $TPCB_SECS tpcb_$am\" 2>&1 | awk '/^tps/ { printf \"%.0f\", \$3 }')"
	done
	printf '%-34s %11s/s %11s/s %9sx\n' "pgbench TPC-B s$TPCB_SCALE (sync $sc)" "$tps_heap" "$tps_lsm" "$(ratio "$tps_lsm" "$tps_heap")"
done
sums=$(as_pg "$PGBIN/psql -X -q -At -h $WORK -p $PORT -d tpcb_lsm -c \"SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' || (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT sum(delta) FROM pgbench_history)\"")
# pgbench -n keeps the history across both runs: all four sums agree
echo "$sums" | awk '{ v = ($1 == $2 && $2 == $3 && $3 == $4) ? "holds" : "BROKEN"; print "TPC-B on lsm: sum of balances (accounts, tellers, branches) and of history deltas: " $1 ", " $2 ", " $3 ", " $4 ": invariant " v }'
for am in heap lsm; do
	eval "tps_$am=\$(as_pg \"$PGBIN/pgbench -n -S -h $WORK -p $PORT -c 4 -j 2 -T $SECS tpcb_$am\" 2>&1 | awk '/^tps/ { printf \"%.0f\", \$3 }')"
done
printf '%-34s %11s/s %11s/s %9sx\n' "pgbench -S s$TPCB_SCALE" "$tps_heap" "$tps_lsm" "$(ratio "$tps_lsm" "$tps_heap")"

for am in heap lsm; do
	sql "CREATE TABLE mixed_$am (id bigserial PRIMARY KEY, v text) USING $am"
	sql "INSERT INTO mixed_$am (v) SELECT md5(g::text) || md5((g + 1)::text) FROM generate_series(1, $ROWS) g"
	sql "VACUUM ANALYZE mixed_$am"
	printf '%s\n' "INSERT INTO mixed_$am (v) VALUES (md5(random()::text) || md5(random()::text));" > "$WORK/mixed_ins_$am.sql"
	printf '%s\n' "\\set r random(1, $ROWS)" "SELECT v FROM mixed_$am WHERE id = :r;" > "$WORK/mixed_get_$am.sql"
	[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/mixed_ins_$am.sql" "$WORK/mixed_get_$am.sql"
done
for am in heap lsm; do
	eval "tps_$am=\$(as_pg \"PGOPTIONS='-c synchronous_commit=off' $PGBIN/pgbench -n -h $WORK -p $PORT -c 4 -j 2 -T $SECS -f $WORK/mixed_ins_$am.sql@1 -f $WORK/mixed_get_$am.sql@1 postgres\" 2>&1 | awk '/^tps/ { printf \"%.0f\", \$3 }')"
done
printf '%-34s %11s/s %11s/s %9sx\n' "mixed 50% insert / 50% read" "$tps_heap" "$tps_lsm" "$(ratio "$tps_lsm" "$tps_heap")"
