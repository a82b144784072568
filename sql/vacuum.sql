-- VACUUM of lsm tables: index entries of dead rows go, the statistics and
-- relfrozenxid move, and rows with old xids are frozen.
-- An empty memtable first, so no flush (and no compaction) runs under the
-- test and the counts below are exact.
SELECT lsm_flush();

CREATE TABLE vac (id int PRIMARY KEY, v text) USING lsm;
CREATE INDEX vac_v ON vac (v);
INSERT INTO vac SELECT g, 'v' || g FROM generate_series(1, 1000) g;
DELETE FROM vac WHERE id % 2 = 0;
-- the 100 odd multiples of 5: each update adds an entry to both indexes
UPDATE vac SET v = v || 'x' WHERE id % 5 = 0;
-- 1100 entries in each index, 500 rows alive, 600 versions dead
VACUUM (VERBOSE, INDEX_CLEANUP ON, PROCESS_TOAST false) vac;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('vac', 'vac_pkey', 'vac_v')
 ORDER BY relname;
SELECT pg_stat_clear_snapshot();
SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'vac';

-- the answers stay the same, through either index or none
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*), sum(id) FROM vac WHERE id > 0;
SELECT id, v FROM vac WHERE v IN ('v15x', 'v16', 'v17') ORDER BY id;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE '%x') AS updated FROM vac;

-- rows compaction removed before VACUUM came: the entries still go
DELETE FROM vac WHERE id <= 100;
SELECT lsm_flush();
SELECT lsm_compact('vac');
VACUUM (VERBOSE, INDEX_CLEANUP ON, PROCESS_TOAST false) vac;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('vac', 'vac_pkey', 'vac_v')
 ORDER BY relname;
SELECT count(*), min(id) FROM vac WHERE id > 0;

-- INDEX_CLEANUP OFF leaves the indexes alone
DELETE FROM vac WHERE id <= 200;
VACUUM (VERBOSE, INDEX_CLEANUP OFF, PROCESS_TOAST false) vac;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('vac', 'vac_pkey')
 ORDER BY relname;
VACUUM (INDEX_CLEANUP ON) vac;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('vac', 'vac_pkey')
 ORDER BY relname;

-- Freezing: an old inserter becomes FrozenTransactionId, relfrozenxid
-- moves up to the horizon, and the rows read as before.
CREATE TABLE frz (id int, v text) USING lsm;
INSERT INTO frz SELECT g, 'f' || g FROM generate_series(1, 200) g;
DELETE FROM frz WHERE id > 150;
SELECT id FROM frz WHERE id = 1 FOR UPDATE;
-- 40 transactions later the table's xids are old
DO $$ BEGIN FOR i IN 1..40 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$;
SELECT age(relfrozenxid) >= 40 AS old FROM pg_class WHERE relname = 'frz';
VACUUM (FREEZE, VERBOSE, PROCESS_TOAST false) frz;
SELECT age(relfrozenxid) < 5 AS young FROM pg_class WHERE relname = 'frz';
SELECT count(*) AS frozen FROM frz WHERE xmin::text = '2';
SELECT count(*), sum(id) FROM frz;
-- frozen rows update, delete and roll back as any other
BEGIN;
UPDATE frz SET v = 'new' WHERE id <= 10;
DELETE FROM frz WHERE id > 140;
SELECT count(*), count(*) FILTER (WHERE v = 'new') FROM frz;
ROLLBACK;
SELECT count(*), count(*) FILTER (WHERE v = 'new') FROM frz;
UPDATE frz SET v = 'new' WHERE id <= 10;
SELECT count(*), count(*) FILTER (WHERE v = 'new'), count(*) FILTER (WHERE xmin::text = '2') FROM frz;
-- a second VACUUM FREEZE with nothing old to do keeps relfrozenxid young
VACUUM FREEZE frz;
SELECT age(relfrozenxid) < 5 AS young FROM pg_class WHERE relname = 'frz';

-- the database's horizon follows its tables
VACUUM FREEZE;
SELECT age(datfrozenxid) < 5 AS young FROM pg_database WHERE datname = current_database();

DROP TABLE vac, frz;
