#!/bin/sh
# pgbench TPC-B on lsm tables (default_table_access_method = lsm for
# pgbench -i): a run with 4 clients ends without errors and the balance
# invariant holds, sum(abalance) = sum(bbalance) = sum(tbalance) =
# sum(delta of pgbench_history); then a second run is cut by kill -9 of
# the postmaster, and after the restart the invariant still holds and the
# workload goes on.  The server flushes and compacts under the run (small
# memtables), and pgbench's own VACUUMs run on the lsm tables.
#   LSM_TPCB_SCALE (default 2), LSM_TPCB_SECONDS (default 20)
# As root, the cluster runs as the postgres user.  Ends "N passed, N failed".
WORK=${1:-$(mktemp -d /tmp/lsm_am_tpcb.XXXXXX)}
SCALE=${LSM_TPCB_SCALE:-2}
SECONDS_RUN=${LSM_TPCB_SECONDS:-20}
DATA=$WORK/data
PORT=$((35000 + $$ % 10000))
. "$(dirname "$0")/pg_lib.sh"
PSQL="$PGBIN/psql -X -q -At -h $WORK -p $PORT -d postgres"
PGBENCH="PGOPTIONS='-c default_table_access_method=lsm' $PGBIN/pgbench -h $WORK -p $PORT"

init_cluster <<EOF || { echo "initdb failed"; echo "0 passed, 1 failed"; exit 1; }
shared_buffers = 256MB
lsm.memtable_size = 4
lsm.l0_compaction_trigger = 2
lsm.target_file_size = 2
max_connections = 50
restart_after_crash = on
EOF
start_server || { cat "$WORK/server.log"; echo "0 passed, 1 failed"; exit 1; }
as_pg "$PSQL -c 'CREATE EXTENSION lsm_am'"
as_pg "$PGBENCH -i -q -s $SCALE postgres" > "$WORK/init.log" 2>&1
check "pgbench -i -s $SCALE on lsm tables" "0" "$?"
check "the four pgbench tables are lsm" "4" \
	"$(as_pg "$PSQL -c \"SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
		WHERE c.relname LIKE 'pgbench_%' AND c.relkind = 'r' AND a.amname = 'lsm'\"")"

invariant() {
	as_pg "$PSQL -c \"SELECT (SELECT sum(abalance) FROM pgbench_accounts) =
		(SELECT sum(bbalance) FROM pgbench_branches) AND
		(SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers) AND
		(SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)\""
}

as_pg "$PGBENCH -c 4 -j 2 -T $SECONDS_RUN postgres" > "$WORK/run.log" 2>&1
rc=$?
check "TPC-B for ${SECONDS_RUN}s with 4 clients: no error" "0|" \
	"$rc|$(grep -E 'aborted|ERROR' "$WORK/run.log" | head -n 3)"
grep -E '^(tps|number of transactions actually processed)' "$WORK/run.log"
check "balances agree after the run" "t" "$(invariant)"
check "history holds every processed transaction" \
	"$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/run.log")" \
	"$(as_pg "$PSQL -c 'SELECT count(*) FROM pgbench_history'")"

# kill -9 in the middle of a run (-n: pgbench would otherwise empty the
# history table before it starts, and the balances would not add up)
as_pg "$PGBENCH -n -c 4 -j 2 -T 60 postgres" > "$WORK/crash_run.log" 2>&1 &
sleep "$(awk -v s="$$" 'BEGIN { srand(s); printf "%.1f", 3 + rand() * 4 }')"
before=$(as_pg "$PSQL -c 'SELECT count(*) FROM pgbench_history'")
crash
wait
start_server
check "the server restarts after kill -9 mid-run" "0" "$?"
after=$(as_pg "$PSQL -c 'SELECT count(*) FROM pgbench_history'")
check "the run had committed work before the crash" "yes" "$([ "$before" -gt 0 ] && echo yes)"
check "balances agree after the crash" "t" "$(invariant)"
check "lsm_verify finds the four tables and their indexes clean" "0" \
	"$(as_pg "$PSQL -c \"SELECT sum(problems) FROM unnest(ARRAY['pgbench_accounts', 'pgbench_branches',
		'pgbench_tellers', 'pgbench_history']::regclass[]) t, lsm_verify(t)\"")"
as_pg "$PGBENCH -n -c 4 -j 2 -T 5 postgres" > "$WORK/rerun.log" 2>&1
check "TPC-B runs on after the restart" "0" "$?"
check "balances agree after that" "t" "$(invariant)"
echo "history rows: $before seen before the crash, $after after it"
finish "$1"
