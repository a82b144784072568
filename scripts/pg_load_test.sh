#!/bin/sh
# Sustained load on lsm tables: pgbench TPC-B with 16 clients on this
# machine's cores, for LSM_LOAD_SECONDS (default 60; docs/TESTING.md
# records 300), its four tables lsm (default_table_access_method = lsm
# for pgbench -i).  Passes when:
#   - no transaction failed (pgbench's "failed" count, and its exit code);
#   - no transaction took longer than LSM_LOAD_MAX_STALL_MS (default 5000):
#     the longest latency in pgbench's per-transaction log is the longest
#     stall any client saw;
#   - the cluster's memory stayed bounded by its configured sizes: the sum
#     of the server processes' proportional set sizes, sampled every
#     second, never exceeded the shared memory (shared_memory_size, which
#     holds the lsm region) plus, for each server process, what
#     lsm.table_cache_size lets it keep and 16 MB for the rest of a
#     backend (catalog caches, plans, libc);
#   - the balance invariant holds afterwards and lsm_verify is clean.
# Usage: sh scripts/pg_load_test.sh [workdir].  Ends "N passed, N failed".
WORK=${1:-$(mktemp -d /tmp/lsm_am_load.XXXXXX)}
SECONDS_RUN=${LSM_LOAD_SECONDS:-60}
MAX_STALL_MS=${LSM_LOAD_MAX_STALL_MS:-5000}
CLIENTS=16
TABLE_CACHE_MB=4
PER_PROCESS_MB=$((TABLE_CACHE_MB + 16))
DATA=$WORK/data
PORT=$((20000 + $$ % 20000))
. "$(dirname "$0")/pg_lib.sh"
PSQL="$PGBIN/psql -X -q -At -h $WORK -p $PORT -d postgres"
PGBENCH="PGOPTIONS='-c default_table_access_method=lsm' $PGBIN/pgbench -h $WORK -p $PORT"

init_cluster <<EOF || { echo "initdb failed"; echo "0 passed, 1 failed"; exit 1; }
shared_buffers = 128MB
max_connections = 40
lsm.memtable_size = 16
lsm.block_cache_size = 64
lsm.table_cache_size = $TABLE_CACHE_MB
EOF
start_server || { cat "$WORK/server.log"; echo "0 passed, 1 failed"; exit 1; }
as_pg "$PSQL -c 'CREATE EXTENSION lsm_am'"
as_pg "$PGBENCH -i -q -s 10 postgres" >"$WORK/init.log" 2>&1
check "pgbench -i -s 10 on lsm tables" "0" "$?"
shm_mb=$(as_pg "$PSQL -c 'SHOW shared_memory_size'" | sed 's/MB$//')

# the cluster's memory: the sum of Pss over the postmaster and its children,
# and its parts: anonymous (process-private) and shared memory
cluster_pss_kb() {
	pm=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null)
	for p in $pm $(pgrep -P "$pm"); do
		cat "/proc/$p/smaps_rollup" 2>/dev/null
	done | awk '/^Pss:/ { t += $2; n++ } /^Pss_Anon:/ { a += $2 } /^Pss_Shmem:/ { s += $2 }
		END { print t + 0, n + 0, a + 0, s + 0 }'
}

: > "$WORK/memory"
(
	while [ ! -f "$WORK/done" ]; do
		cluster_pss_kb >> "$WORK/memory"
		sleep 1
	done
) &
sampler=$!
mkdir -p "$WORK/log"
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/log"
as_pg "cd $WORK/log && $PGBENCH -n -c $CLIENTS -j 2 -T $SECONDS_RUN -P 10 -l postgres" \
	>"$WORK/pgbench.out" 2>&1
rc=$?
touch "$WORK/done"
wait "$sampler"
grep -E '^progress|^tps|failed|latency' "$WORK/pgbench.out"
check "pgbench -c $CLIENTS for $SECONDS_RUN s exits 0" "0" "$rc"
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/pgbench.out")
check "no failed transactions" "0" "${failed:-missing}"
# per-transaction log: client, transaction no, latency in microseconds, ...
max_us=$(cat "$WORK"/log/pgbench_log.* | awk '$3 > m { m = $3 } END { print m + 0 }')
txs=$(cat "$WORK"/log/pgbench_log.* | wc -l)
echo "     $txs transactions logged; the longest took $((max_us / 1000)) ms"
check "no transaction stalled longer than $MAX_STALL_MS ms" "1" \
	"$([ $((max_us / 1000)) -le "$MAX_STALL_MS" ] && [ "$txs" -gt 0 ] && echo 1 || echo 0)"
peak=$(awk '$1 > m { m = $1; n = $2; a = $3; s = $4 } END { print m + 0, n + 0, a + 0, s + 0 }' "$WORK/memory")
set -- $peak
peak_kb=$1 nproc=$2
bound_kb=$(((shm_mb + PER_PROCESS_MB * nproc) * 1024))
echo "     peak cluster memory (sum of Pss) $((peak_kb / 1024)) MB over $(wc -l < "$WORK/memory") samples" \
	"($(($3 / 1024)) MB anonymous, $(($4 / 1024)) MB shared);" \
	"bound: shared memory $shm_mb MB + $PER_PROCESS_MB MB x $nproc processes = $((bound_kb / 1024)) MB"
awk 'NR == 1 || NR % 30 == 0 { printf "       %4d s: %d MB (%d anonymous, %d shared), %d processes\n",
	NR, $1 / 1024, $3 / 1024, $4 / 1024, $2 }' "$WORK/memory"
check "cluster memory within the configured sizes" "1" \
	"$([ "$peak_kb" -gt 0 ] && [ "$peak_kb" -le "$bound_kb" ] && echo 1 || echo 0)"
check "TPC-B balance invariant" "t" "$(as_pg "$PSQL -c \"SELECT (SELECT sum(abalance) FROM pgbench_accounts) =
	(SELECT sum(bbalance) FROM pgbench_branches) AND
	(SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers) AND
	(SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)\"")"
check "lsm_verify clean on the four tables" "0" \
	"$(as_pg "$PSQL -c \"SELECT sum(problems) FROM unnest(ARRAY['pgbench_accounts', 'pgbench_branches',
		'pgbench_tellers', 'pgbench_history']::regclass[]) t, lsm_verify(t)\"")"
finish "$1"
