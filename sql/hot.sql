-- Updates that keep the TID.  An UPDATE that changes no indexed column
-- puts the new version in front of the old one in the row's record (as
-- heap's HOT keeps it on the page): same TID, no new index entries.  An
-- UPDATE of an indexed column takes a new rowid and new entries.
CREATE EXTENSION IF NOT EXISTS pageinspect;
CREATE TABLE h (id int PRIMARY KEY, k int, pad text, big text) USING lsm;
ALTER TABLE h ALTER big SET STORAGE EXTERNAL;
CREATE INDEX h_k ON h (k);
INSERT INTO h SELECT g, g, 'p', CASE WHEN g = 3 THEN repeat(md5('x'), 200) END
  FROM generate_series(1, 5) g;
CREATE TEMP TABLE tids AS SELECT id, ctid AS tid FROM h;
UPDATE h SET pad = 'q' WHERE id <= 3;
UPDATE h SET pad = pad || 'r' WHERE id <= 3;
SELECT h.id, h.ctid = t.tid AS same_tid, pad FROM h JOIN tids t USING (id) ORDER BY id;
SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'h';
-- still one entry a row in each index
SELECT (SELECT count(*) FROM bt_page_items('h_pkey', 1)) AS pkey_items,
       (SELECT count(*) FROM bt_page_items('h_k', 1)) AS k_items;
-- the TOAST value is shared by the versions and intact
SELECT length(big), big = repeat(md5('x'), 200) AS intact FROM h WHERE id = 3;
-- an indexed column moves the row to a new TID and adds entries
UPDATE h SET k = k + 100 WHERE id = 1;
SELECT h.ctid = t.tid AS same_tid, k FROM h JOIN tids t USING (id) WHERE id = 1;
SELECT (SELECT count(*) FROM bt_page_items('h_k', 1)) AS k_items;
SET enable_seqscan = off;
SELECT id, k, pad FROM h WHERE k = 101;
SELECT id, pad FROM h WHERE id = 2;
RESET enable_seqscan;

-- within one transaction: a cursor keeps seeing the version of its
-- snapshot, a rolled-back savepoint's version is no one's
BEGIN;
DECLARE c CURSOR FOR SELECT id, pad FROM h WHERE id = 2;
UPDATE h SET pad = 'in xact' WHERE id = 2;
FETCH c;
CLOSE c;
SAVEPOINT s;
UPDATE h SET pad = 'rolled back' WHERE id = 2;
SELECT pad FROM h WHERE id = 2;
ROLLBACK TO s;
SELECT pad FROM h WHERE id = 2;
UPDATE h SET pad = 'committed' WHERE id = 2;
COMMIT;
SELECT h.ctid = t.tid AS same_tid, pad FROM h JOIN tids t USING (id) WHERE id = 2;

-- one command reaching the same row twice: the second is ignored, as heap
CREATE TABLE twice (id int) USING lsm;
INSERT INTO twice VALUES (4), (4);
UPDATE h SET pad = pad || '+' FROM twice WHERE h.id = twice.id;
SELECT pad FROM h WHERE id = 4;
CREATE FUNCTION mark_pad() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.pad := NEW.pad || '#'; RETURN NEW; END $$;
CREATE TRIGGER h_mark BEFORE UPDATE ON h FOR EACH ROW EXECUTE FUNCTION mark_pad();
UPDATE h SET pad = pad || '+' FROM twice WHERE h.id = twice.id;
SELECT pad FROM h WHERE id = 4;
DROP TRIGGER h_mark ON h;
DROP FUNCTION mark_pad();

-- a transaction's own versions stay until it ends; past 8 kB of them an
-- update takes a new rowid instead of growing the record further
BEGIN;
DO $$ BEGIN FOR i IN 1..200 LOOP UPDATE h SET pad = repeat('z', 100) || i WHERE id = 5; END LOOP; END $$;
SELECT right(pad, 3) AS last FROM h WHERE id = 5;
COMMIT;
SELECT h.ctid = t.tid AS same_tid, right(pad, 3) AS last FROM h JOIN tids t USING (id) WHERE id = 5;
SELECT count(*) FROM h;

-- after-row triggers get old and new versions by TID, so their tables'
-- updates take a new TID; foreign keys' own triggers do not stop it
CREATE TABLE audit (id int, old_pad text, new_pad text);
CREATE FUNCTION log_pad() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit VALUES (NEW.id, OLD.pad, NEW.pad); RETURN NULL; END $$;
CREATE TRIGGER h_audit AFTER UPDATE ON h FOR EACH ROW EXECUTE FUNCTION log_pad();
UPDATE h SET pad = 'audited' WHERE id = 4;
SELECT * FROM audit;
SELECT h.ctid = t.tid AS same_tid FROM h JOIN tids t USING (id) WHERE id = 4;
DROP TRIGGER h_audit ON h;
CREATE TABLE child (id int PRIMARY KEY, parent int REFERENCES h, note text) USING lsm;
INSERT INTO child VALUES (1, 2, 'a');
UPDATE child SET note = 'b' WHERE id = 1;
UPDATE child SET parent = 3 WHERE id = 1;
UPDATE child SET parent = 99 WHERE id = 1;
SELECT * FROM child;

-- upserts of a column no index covers
CREATE TABLE up (id int PRIMARY KEY, n int) USING lsm;
INSERT INTO up SELECT g, 0 FROM generate_series(1, 3) g;
INSERT INTO up SELECT g, 1 FROM generate_series(1, 4) g
  ON CONFLICT (id) DO UPDATE SET n = up.n + excluded.n;
INSERT INTO up SELECT g, 1 FROM generate_series(1, 4) g
  ON CONFLICT (id) DO UPDATE SET n = up.n + excluded.n;
SELECT id, n, ctid FROM up ORDER BY id;
-- the same key twice in one command is an error, as on heap
INSERT INTO up VALUES (1, 1), (1, 1) ON CONFLICT (id) DO UPDATE SET n = up.n + excluded.n;
INSERT INTO up VALUES (9, 1), (9, 1) ON CONFLICT (id) DO UPDATE SET n = up.n + excluded.n;
SELECT id, n FROM up ORDER BY id;

-- VACUUM prunes versions no snapshot needs; the engine agrees with the
-- indexes; VACUUM FULL and CLUSTER keep the newest versions
VACUUM h;
SELECT object, problems FROM lsm_verify('h') ORDER BY object;
VACUUM FULL h;
SELECT id, k, left(pad, 10), length(big) FROM h ORDER BY id;
CLUSTER h USING h_k;
SELECT id, k, left(pad, 10), length(big) FROM h ORDER BY id;
SELECT object, problems FROM lsm_verify('h') ORDER BY object;
DROP TABLE h, twice, audit, child, up;
DROP FUNCTION log_pad();
DROP EXTENSION pageinspect;
