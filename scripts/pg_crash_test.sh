#!/bin/sh
# Crash recovery of lsm tables: concurrent inserting transactions and a
# pgbench TPC-B run (its four tables lsm too), kill -9 of the postmaster
# (and every server process) at a random moment, restart, verify; every
# 4th cycle instead kills one backend, and the postmaster itself resets
# shared memory and restarts (workers included).  Each cycle passes when,
# after the restart:
#   - every transaction whose COMMIT was acknowledged is in the ledger
#     (a heap table: PostgreSQL's own account of what committed);
#   - every ledger transaction has exactly its rows in the lsm table;
#   - no row belongs to a transaction missing from the ledger (uncommitted
#     at the crash, or rolled back on purpose);
#   - TPC-B's balance invariant holds: sum(abalance) = sum(bbalance) =
#     sum(tbalance) = sum(delta) of pgbench_history (a transaction cut by
#     the crash left all of its four writes or none);
#   - lsm_verify finds every record of the five lsm tables readable and
#     every live row in each index.
# The database carries over from cycle to cycle.  Usage:
#   sh scripts/pg_crash_test.sh [workdir]     (LSM_PG_CRASH_CYCLES, default 20)
# As root, the cluster runs as the postgres user.  Ends "N passed, N failed".
WORK=${1:-$(mktemp -d /tmp/lsm_am_crash.XXXXXX)}
CYCLES=${LSM_PG_CRASH_CYCLES:-20}
WRITERS=3
DATA=$WORK/data
PORT=$((20000 + $$ % 20000))
. "$(dirname "$0")/pg_lib.sh"
PSQL="$PGBIN/psql -X -q -h $WORK -p $PORT -d postgres -v ON_ERROR_STOP=1"

init_cluster <<EOF || { echo "initdb failed"; echo "0 passed, 1 failed"; exit 1; }
lsm.memtable_size = 2
lsm.l0_compaction_trigger = 2
lsm.target_file_size = 1
synchronous_commit = on
restart_after_crash = on
EOF
start_server || { cat "$WORK/server.log"; echo "0 passed, 1 failed"; exit 1; }
as_pg "$PSQL -c 'CREATE EXTENSION lsm_am' \
	-c 'CREATE TABLE data (tx int, n int, payload text) USING lsm' \
	-c 'CREATE INDEX data_tx ON data (tx)' \
	-c 'CREATE TABLE ledger (tx int PRIMARY KEY, nrows int)'"
PGBENCH="PGOPTIONS='-c default_table_access_method=lsm' $PGBIN/pgbench -h $WORK -p $PORT"
as_pg "$PGBENCH -i -q -s 1 postgres" >"$WORK/pgbench_init.log" 2>&1 ||
	{ cat "$WORK/pgbench_init.log"; echo "0 passed, 1 failed"; exit 1; }
TPCB_BALANCED="SELECT (SELECT sum(abalance) FROM pgbench_accounts) =
	(SELECT sum(bbalance) FROM pgbench_branches) AND
	(SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers) AND
	(SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)"
VERIFY_ALL="SELECT sum(problems) FROM unnest(ARRAY['data', 'pgbench_accounts', 'pgbench_branches',
	'pgbench_tellers', 'pgbench_history']::regclass[]) t, lsm_verify(t)"

# a writer's script: transactions tx = base + i with 1..20 rows each, every
# 7th rolled back; after each COMMIT returns, "ACK tx" (RB for rollbacks)
write_script() {
	base=$1
	i=0
	while [ $i -lt 4000 ]; do
		tx=$((base + i))
		n=$((i % 20 + 1))
		echo "BEGIN;"
		echo "INSERT INTO data SELECT $tx, g, repeat('p', 40) FROM generate_series(1, $n) g;"
		if [ $((i % 7)) -eq 3 ]; then
			echo "ROLLBACK;"
			printf "%s\n" "\\echo RB $tx"
		else
			echo "INSERT INTO ledger VALUES ($tx, $n);"
			echo "COMMIT;"
			printf "%s\n" "\\echo ACK $tx"
		fi
		i=$((i + 1))
	done
}

# kill -9 of one backend: the postmaster resets shared memory and restarts
kill_backend() {
	pm=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null)
	victim=$(pgrep -P "$pm" -f "postgres: postgres postgres" | head -n 1)
	[ -n "$victim" ] && kill -9 "$victim"
	sleep 0.5
	t=0
	until as_pg "$PGBIN/pg_isready -q -h $WORK -p $PORT" && [ "$(as_pg "$PSQL -At -c \"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'lsm_am%'\"" 2>/dev/null)" = "2" ]; do
		sleep 0.2
		t=$((t + 1))
		[ $t -gt 300 ] && return 1
	done
	return 0
}

cycle=1
prev_high=0
while [ $cycle -le "$CYCLES" ]; do
	ledger_before=$(as_pg "$PSQL -At -c 'SELECT count(*) FROM ledger'" 2>/dev/null)
	w=1
	while [ $w -le $WRITERS ]; do
		write_script $((cycle * 100000 + w * 10000)) > "$WORK/w$w.sql"
		[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/w$w.sql"
		as_pg "$PSQL -f $WORK/w$w.sql" > "$WORK/w$w.out" 2>/dev/null &
		w=$((w + 1))
	done
	# TPC-B beside the inserts; -n: no VACUUM of its tables first.  Its
	# connections die in the crash, so its exit status says nothing.
	as_pg "$PGBENCH -n -c 2 -T 30 postgres" >"$WORK/pgbench.out" 2>&1 &
	# the crash comes once the writers commit (the ledger grows; on a
	# loaded machine they may take a while to connect; up to 30 s), 0.3 ..
	# 2.3 s later
	t=0
	until [ "$(as_pg "$PSQL -At -c 'SELECT count(*) FROM ledger'" 2>/dev/null)" != "$ledger_before" ] ||
		[ $t -ge 300 ]; do
		sleep 0.1
		t=$((t + 1))
	done
	# 0.3 .. 2.3 s of writing, then the crash
	sleep "$(awk -v s="$$$cycle" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 2 }')"
	how="postmaster killed"
	if [ $((cycle % 4)) -eq 0 ]; then
		how="a backend killed, postmaster reset"
		kill_backend
		restarted=$?
		wait
	else
		crash
		wait
		start_server
		restarted=$?
	fi
	cat "$WORK"/w*.out | grep '^ACK ' | cut -d' ' -f2 | sort > "$WORK/acked"
	cat "$WORK"/w*.out | grep '^RB ' | cut -d' ' -f2 | sort > "$WORK/rolledback"
	if [ "$restarted" -ne 0 ]; then
		echo "not ok cycle $cycle: the server did not come back"
		tail -n 20 "$WORK/server.log"
		fail=$((fail + 1))
		break
	fi
	as_pg "$PSQL -At -c 'SELECT tx FROM ledger ORDER BY tx' | sort" > "$WORK/ledger" 2>&1
	lost=$(comm -23 "$WORK/acked" "$WORK/ledger" | wc -l)
	bad=$(as_pg "$PSQL -At -c \"SELECT count(*) FROM ledger l LEFT JOIN
		(SELECT tx, count(*) AS c FROM data GROUP BY tx) d USING (tx) WHERE coalesce(d.c, 0) <> l.nrows\"" 2>&1)
	orphans=$(as_pg "$PSQL -At -c 'SELECT count(*) FROM data d WHERE NOT EXISTS
		(SELECT 1 FROM ledger l WHERE l.tx = d.tx)'" 2>&1)
	acked=$(wc -l < "$WORK/acked")
	# lsm_verify: every record readable, the index holds every live row
	# row ids are never reused, but a restart may skip at most a
	# reservation (1M ids) plus each backend's unused chunk: the highest
	# one grows by at most what the cycle inserted plus that
	high=$(as_pg "$PSQL -At -c \"SELECT coalesce(max((ctid::text::point)[0]::bigint * 291 + (ctid::text::point)[1]::bigint), 0) FROM data\"" 2>&1)
	inserted=$(($(wc -l < "$WORK/acked") * 20 + $(wc -l < "$WORK/rolledback") * 20 + 300000))
	ids_ok=$([ "$high" -le $((prev_high + inserted + 1048576 + 16384)) ] 2>/dev/null && echo 1 || echo 0)
	prev_high=$high
	problems=$(as_pg "$PSQL -At -c \"$VERIFY_ALL\"" 2>&1)
	balanced=$(as_pg "$PSQL -At -c \"$TPCB_BALANCED\"" 2>&1)
	tpcb=$(as_pg "$PSQL -At -c 'SELECT count(*) FROM pgbench_history'" 2>&1)
	if [ "$lost" -eq 0 ] && [ "$bad" = "0" ] && [ "$orphans" = "0" ] && [ "$acked" -gt 0 ] &&
		[ "$problems" = "0" ] && [ "$balanced" = "t" ] && [ "$ids_ok" = 1 ]; then
		echo "ok cycle $cycle ($how): $acked commits acknowledged, all present and whole; $(wc -l < "$WORK/rolledback") rollbacks absent; TPC-B balanced over $tpcb transactions"
		pass=$((pass + 1))
	else
		echo "not ok cycle $cycle ($how): acknowledged $acked, lost $lost, ledger rows wrong: $bad, rows of uncommitted transactions: $orphans, lsm_verify: $problems, TPC-B balanced: $balanced, highest row id $high (row ids grew linearly: $ids_ok)"
		fail=$((fail + 1))
	fi
	cycle=$((cycle + 1))
done
as_pg "$PSQL -At -c \"SELECT 'rows ' || count(*) FROM data\"" 2>/dev/null
as_pg "$PGBIN/pg_ctl -D $DATA -w stop -m fast" >/dev/null 2>&1
[ "$fail" -eq 0 ] && [ -z "$1" ] && rm -rf "$WORK"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
