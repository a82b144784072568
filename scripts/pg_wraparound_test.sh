#!/bin/sh
# An lsm table lives through xid wraparound.  The xid counter is moved
# ahead twice by 1.2 billion with pg_resetwal (after a clean shutdown,
# with every database vacuumed with FREEZE first, as a DBA would), so the
# xids of the first rows end up more than 2^31 behind: unfrozen, they would
# read as "in the future" and vanish, and the commit log that knew them is
# truncated in between.  VACUUM freezes them (lsm_vacuum.c), so after both
# jumps every row reads as before, through a scan and the index, and the
# table takes updates, deletes and a compaction.
# As root, the cluster runs as the postgres user.  Ends "N passed, N failed".
WORK=${1:-$(mktemp -d /tmp/lsm_am_wrap.XXXXXX)}
DATA=$WORK/data
PORT=$((45000 + $$ % 10000))
. "$(dirname "$0")/pg_lib.sh"
PSQL="$PGBIN/psql -X -q -At -h $WORK -p $PORT -d postgres"
STEP=1200000000

init_cluster <<EOF || { echo "initdb failed"; echo "0 passed, 1 failed"; exit 1; }
lsm.memtable_size = 4
EOF
start_server || { cat "$WORK/server.log"; echo "0 passed, 1 failed"; exit 1; }
as_pg "$PSQL -v ON_ERROR_STOP=1" >/dev/null <<'SQL'
CREATE EXTENSION lsm_am;
CREATE TABLE w (id int PRIMARY KEY, v text, batch int) USING lsm;
INSERT INTO w SELECT g, 'first ' || g, 1 FROM generate_series(1, 2000) g;
UPDATE w SET v = v || ' updated' WHERE id % 5 = 0;
DELETE FROM w WHERE id % 7 = 0;
SELECT id FROM w WHERE id = 1 FOR SHARE;
SQL

fingerprint() {
	as_pg "$PSQL -c \"SELECT count(*), md5(string_agg(id || v || batch, ',' ORDER BY id)) FROM w\""
}
fingerprint_by_index() {
	as_pg "$PSQL -c \"SET enable_seqscan = off; SET enable_bitmapscan = off;
		SELECT count(*), md5(string_agg(id || v || batch, ',' ORDER BY id)) FROM w WHERE id > 0\""
}
next_xid() {
	as_pg "$PGBIN/pg_controldata -D $DATA" | sed -n "s/^Latest checkpoint's NextXID: *[0-9]*:\([0-9]*\)$/\1/p"
}
# every database vacuumed with FREEZE, template0 included
freeze_all() {
	as_pg "$PSQL -c 'ALTER DATABASE template0 WITH ALLOW_CONNECTIONS true'"
	as_pg "$PGBIN/vacuumdb -h $WORK -p $PORT --all --freeze -q" >/dev/null 2>&1
	as_pg "$PSQL -c 'ALTER DATABASE template0 WITH ALLOW_CONNECTIONS false'"
}
# the xid counter STEP further on, at a commit-log segment boundary (the
# first xid handed out then starts a fresh page, as pg_resetwal asks)
jump() {
	freeze_all
	stop_server
	cur=$(next_xid)
	target=$(( (cur + STEP) / 1048576 * 1048576 + 1048576 ))
	as_pg "$PGBIN/pg_resetwal -x $target -D $DATA" >/dev/null 2>&1 || return 1
	start_server || return 1
	echo "xid counter moved from $cur to $target"
}

before=$(fingerprint)
first_xid=$(as_pg "$PSQL -c 'SELECT min(xmin::text::bigint) FROM w'")
jump
check "first jump: the server starts" "0" "$?"
check "first jump: the rows read as before" "$before" "$(fingerprint)"
as_pg "$PSQL -c \"INSERT INTO w SELECT g, 'second ' || g, 2 FROM generate_series(3001, 4000) g\""
as_pg "$PSQL -c \"UPDATE w SET v = v || ' again' WHERE id % 11 = 0\""
middle=$(fingerprint)
freeze_all
check "relfrozenxid of the lsm table moved past the first rows' xids" "t" \
	"$(as_pg "$PSQL -c \"SELECT age(relfrozenxid) < $STEP FROM pg_class WHERE relname = 'w'\"")"
check "the commit log of the first rows is truncated" "yes" \
	"$([ ! -e "$DATA/pg_xact/0000" ] && echo yes)"
check "the first rows are frozen" "0" \
	"$(as_pg "$PSQL -c 'SELECT count(*) FROM w WHERE batch = 1 AND xmin::text::bigint > 2'")"

jump
check "second jump: the server starts" "0" "$?"
now=$(next_xid)
check "the first rows' xids are now more than 2^31 behind" "yes" \
	"$([ $((now - first_xid)) -gt 2147483648 ] && echo yes)"
check "second jump: every row reads as before" "$middle" "$(fingerprint)"
check "second jump: and through the index" "$middle" "$(fingerprint_by_index)"
out=$(as_pg "$PSQL -v ON_ERROR_STOP=1" 2>&1 <<'SQL'
UPDATE w SET v = 'third' WHERE id <= 100;
DELETE FROM w WHERE id > 3900;
SELECT lsm_flush();
SELECT lsm_compact('w');
VACUUM w;
SELECT count(*), count(*) FILTER (WHERE v = 'third'), max(id) FROM w;
SQL
)
# 100 rows of the second batch go; of ids 1..100, 14 were deleted at the start
check "updates, deletes, compaction and VACUUM work after the wraparound" \
	"$(( $(echo "$middle" | cut -d'|' -f1) - 100 ))|86|3900" "$(printf '%s\n' "$out" | tail -n 1)"
finish "$1"
