# Sourced by the scripts that run PostgreSQL clusters.  PostgreSQL refuses
# to run as root: as root, commands run as the postgres user.  The caller
# sets WORK (a scratch directory), DATA and PORT; PGBIN defaults to
# pg_config's.
PGBIN=${PGBIN:-$(pg_config --bindir)}
pass=0
fail=0

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

# initdb in $DATA with lsm_am preloaded, listening on $WORK's socket only;
# further postgresql.conf lines come on stdin
init_cluster() {
	mkdir -p "$WORK"
	[ "$(id -u)" -eq 0 ] && chown -R postgres "$WORK"
	as_pg "$PGBIN/initdb -D $DATA -A trust" >/dev/null 2>&1 || return 1
	{
		echo "shared_preload_libraries = 'lsm_am'"
		echo "port = $PORT"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$WORK'"
		cat
	} >> "$DATA/postgresql.conf"
}

start_server() {
	as_pg "$PGBIN/pg_ctl -D $DATA -l $WORK/server.log -w -t 120 start" >/dev/null 2>&1
}

stop_server() {
	as_pg "$PGBIN/pg_ctl -D $DATA -w -t 120 stop -m ${1:-fast}" >/dev/null 2>&1
}

# kill -9 of the postmaster and every process it started
crash() {
	pm=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null)
	[ -z "$pm" ] && return
	procs="$pm $(pgrep -P "$pm" | tr '\n' ' ')"
	kill -9 $procs 2>/dev/null
	t=0
	while [ $t -lt 200 ]; do
		alive=0
		for p in $procs; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive -eq 0 ] && break
		sleep 0.05
		t=$((t + 1))
	done
}

check() {   # name, expected, got
	if [ "$2" = "$3" ]; then
		echo "ok   $1"
		pass=$((pass + 1))
	else
		echo "FAIL $1: expected \"$2\", got \"$3\""
		fail=$((fail + 1))
	fi
}

check_has() {   # name, text, extended regex the text must match
	if printf '%s\n' "$2" | grep -Eq "$3"; then
		echo "ok   $1"
		pass=$((pass + 1))
	else
		echo "FAIL $1: no /$3/ in:"
		printf '%s\n' "$2" | sed 's/^/     /'
		fail=$((fail + 1))
	fi
}

# query SQL...: one psql session ($PSQL) running each SQL in turn; errors,
# with their SQLSTATE (verbose), come on the same stream
query() {
	args=""
	for q in "$@"; do args="$args -c \"$q\""; done
	as_pg "$PSQL -v VERBOSITY=verbose $args" 2>&1
}

# stops the server, removes $WORK when all passed (unless an argument is
# given), prints the count line and exits with the verdict
finish() {
	stop_server
	[ "$fail" -eq 0 ] && [ -z "$1" ] && rm -rf "$WORK"
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}
