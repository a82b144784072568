#!/bin/sh
# pg_dump / pg_restore of a database with lsm tables: the tables come back
# USING lsm with their rows, indexes, constraints (primary, unique, check,
# exclusion, foreign keys both ways) and sequences; custom format through
# pg_restore and plain format through psql.  As root, the cluster runs as
# the postgres user.  Ends "N passed, N failed".
WORK=${1:-$(mktemp -d /tmp/lsm_am_dump.XXXXXX)}
DATA=$WORK/data
PORT=$((25000 + $$ % 10000))
. "$(dirname "$0")/pg_lib.sh"
PSQL="$PGBIN/psql -X -q -At -h $WORK -p $PORT"

init_cluster </dev/null || { echo "initdb failed"; echo "0 passed, 1 failed"; exit 1; }
start_server || { cat "$WORK/server.log"; echo "0 passed, 1 failed"; exit 1; }
as_pg "$PSQL -d postgres -c 'CREATE DATABASE src'"
as_pg "$PSQL -d src -v ON_ERROR_STOP=1" >/dev/null <<'SQL'
CREATE EXTENSION lsm_am;
CREATE EXTENSION btree_gist;
CREATE TABLE accounts (id serial PRIMARY KEY, email text UNIQUE NOT NULL,
                       balance numeric(12,2) CHECK (balance >= 0), tags text[],
                       meta jsonb, created timestamptz DEFAULT '2026-01-01') USING lsm;
CREATE TABLE transfers (id bigserial PRIMARY KEY, src int REFERENCES accounts,
                        dst int REFERENCES accounts ON DELETE CASCADE, amount numeric(12,2),
                        note text) USING lsm;
CREATE TABLE rooms (room int, during int4range,
                    EXCLUDE USING gist (room WITH =, during WITH &&)) USING lsm;
CREATE TABLE audit (id int PRIMARY KEY, account int REFERENCES accounts) USING heap;
CREATE INDEX transfers_src ON transfers (src, amount);
CREATE INDEX accounts_tags ON accounts USING gin (tags);
CREATE INDEX accounts_lower ON accounts (lower(email)) WHERE balance > 100;
INSERT INTO accounts (email, balance, tags, meta)
  SELECT 'user' || g || '@example.com', g * 1.5, ARRAY['t' || g % 5],
         jsonb_build_object('n', g, 'big', repeat('x', CASE WHEN g % 97 = 0 THEN 5000 ELSE 10 END))
    FROM generate_series(1, 3000) g;
INSERT INTO transfers (src, dst, amount, note)
  SELECT g % 3000 + 1, (g * 7) % 3000 + 1, g % 100, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END
    FROM generate_series(1, 20000) g;
DELETE FROM transfers WHERE id % 10 = 0;
UPDATE accounts SET balance = balance + 1 WHERE id % 4 = 0;
INSERT INTO rooms VALUES (1, '[1,5)'), (1, '[5,9)'), (2, '[1,9)');
INSERT INTO audit SELECT g, g FROM generate_series(1, 100) g;
SQL

# what a database holds, independent of physical order
fingerprint() {
	as_pg "$PSQL -d $1" <<'SQL'
SELECT 'accounts', count(*), md5(string_agg(format('%s|%s|%s|%s|%s|%s', id, email, balance, tags, meta, created), ',' ORDER BY id)) FROM accounts;
SELECT 'transfers', count(*), md5(string_agg(format('%s|%s|%s|%s|%s', id, src, dst, amount, note), ',' ORDER BY id)) FROM transfers;
SELECT 'rooms', count(*), md5(string_agg(format('%s|%s', room, during), ',' ORDER BY room, during)) FROM rooms;
SELECT 'audit', count(*) FROM audit;
SELECT 'seq', last_value FROM transfers_id_seq;
SELECT c.relname, a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam
 WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace ORDER BY 1;
SELECT conname, contype FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1;
SELECT indexrelid::regclass, indisvalid FROM pg_index WHERE indrelid IN
  ('accounts'::regclass, 'transfers'::regclass, 'rooms'::regclass) ORDER BY indexrelid::regclass::text;
SQL
}
# what the constraints and indexes still do
behaviour() {
	as_pg "$PSQL -d $1" 2>&1 <<'SQL'
INSERT INTO accounts (email, balance) VALUES ('user1@example.com', 1);
INSERT INTO accounts (email, balance) VALUES ('neg@example.com', -1);
INSERT INTO transfers (src, dst, amount) VALUES (99999, 1, 1);
INSERT INTO rooms VALUES (1, '[4,6)');
DELETE FROM accounts WHERE id = 2;
SET enable_seqscan = off;
SELECT count(*) FROM transfers WHERE src = 5;
SELECT count(*) FROM accounts WHERE tags @> ARRAY['t3'];
SELECT count(*) FROM accounts WHERE lower(email) = 'user2000@example.com' AND balance > 100;
SQL
}
fingerprint src > "$WORK/src.print"

as_pg "$PGBIN/pg_dump -h $WORK -p $PORT -Fc -f $WORK/src.dump src" 2>"$WORK/dump.err"
check "pg_dump -Fc succeeds" "" "$(cat "$WORK/dump.err")"
check "the dump creates the tables USING lsm" "yes" \
	"$(as_pg "$PGBIN/pg_restore -f - $WORK/src.dump" | grep -q "default_table_access_method = lsm" && echo yes)"
as_pg "$PSQL -d postgres -c 'CREATE DATABASE dst'"
as_pg "$PGBIN/pg_restore -h $WORK -p $PORT -d dst --exit-on-error $WORK/src.dump" 2>"$WORK/restore.err"
check "pg_restore succeeds" "" "$(cat "$WORK/restore.err")"
fingerprint dst > "$WORK/dst.print"
check "custom format: the same rows, access methods, constraints and indexes" \
	"" "$(diff "$WORK/src.print" "$WORK/dst.print")"
check "three tables are lsm after the restore" "3" "$(grep -c '|lsm$' "$WORK/dst.print")"
behaviour dst > "$WORK/dst.behaviour"

as_pg "$PGBIN/pg_dump -h $WORK -p $PORT -Fp -f $WORK/src.sql src"
as_pg "$PSQL -d postgres -c 'CREATE DATABASE dst2'"
as_pg "$PSQL -d dst2 -v ON_ERROR_STOP=1 -f $WORK/src.sql" >/dev/null 2>"$WORK/plain.err"
check "plain format restores through psql" "" "$(cat "$WORK/plain.err")"
fingerprint dst2 > "$WORK/dst2.print"
check "plain format: the same rows, access methods, constraints and indexes" \
	"" "$(diff "$WORK/src.print" "$WORK/dst2.print")"
behaviour dst2 > "$WORK/dst2.behaviour"
check "the restored constraints refuse what they refused" "5" \
	"$(grep -c ERROR "$WORK/dst.behaviour")"
check "both restores behave alike" "" "$(diff "$WORK/dst.behaviour" "$WORK/dst2.behaviour")"
check "indexes answer after the restore" "$(behaviour src | grep -E '^[0-9]+$' | tr '\n' ' ')" \
	"$(grep -E '^[0-9]+$' "$WORK/dst.behaviour" | tr '\n' ' ')"
finish "$1"
