-- VACUUM FULL and CLUSTER rewrite an lsm table into a new key range:
-- dead versions go, values of dropped columns go, wide values move to the
-- new TOAST table, the indexes are rebuilt, and the answers stay the same.
CREATE TABLE cl (id int PRIMARY KEY, k int, pad text, big text, gone int) USING lsm;
ALTER TABLE cl ALTER big SET STORAGE EXTERNAL;
INSERT INTO cl SELECT g, (g * 7919) % 1000, repeat('p', 50),
       CASE WHEN g % 100 = 0 THEN repeat(md5(g::text), 300) END, g
  FROM generate_series(1, 1000) g;
CREATE INDEX cl_k ON cl (k);
DELETE FROM cl WHERE id % 3 = 0;
UPDATE cl SET pad = 'u' WHERE id % 10 = 1;
ALTER TABLE cl DROP COLUMN gone;
CREATE TEMP TABLE cl_before AS SELECT * FROM cl;
SELECT count(*), sum(id), sum(k), sum(length(big)), count(*) FILTER (WHERE pad = 'u') FROM cl;
SELECT pg_relation_filenode('cl') AS filenode_before \gset

-- 333 deleted and 67 superseded versions are removable (terse: the
-- DETAIL carries CPU times)
\set VERBOSITY terse
VACUUM (FULL, VERBOSE) cl;
\set VERBOSITY default
SELECT pg_relation_filenode('cl') <> :filenode_before AS rewritten;
SELECT count(*), sum(id), sum(k), sum(length(big)), count(*) FILTER (WHERE pad = 'u') FROM cl;
SELECT count(*) AS differing FROM ((TABLE cl EXCEPT TABLE cl_before) UNION ALL (TABLE cl_before EXCEPT TABLE cl)) d;
-- the TOAST values were copied, not shared
SELECT count(*) AS wide, bool_and(big = repeat(md5(id::text), 300)) AS intact
  FROM cl WHERE big IS NOT NULL;
-- VACUUM FULL keeps the TIDs
SELECT ctid, id FROM cl WHERE id IN (1, 2, 4) ORDER BY id;
-- the rebuilt indexes answer
SET enable_seqscan = off;
SELECT count(*), sum(id) FROM cl WHERE k < 500;
SELECT id, k FROM cl WHERE id = 500;
RESET enable_seqscan;
SELECT count(*), sum(id) FROM cl WHERE k < 500;
SELECT reltuples FROM pg_class WHERE relname = 'cl';
-- relfrozenxid moved to the rewrite's horizon
SELECT age(relfrozenxid) < 5 AS young FROM pg_class WHERE relname = 'cl';

-- CLUSTER: rows in index order, numbered afresh
SELECT pg_relation_filenode('cl') AS filenode_before \gset
CLUSTER cl USING cl_k;
SELECT pg_relation_filenode('cl') <> :filenode_before AS rewritten;
SELECT count(*), sum(id), sum(k), sum(length(big)), count(*) FILTER (WHERE pad = 'u') FROM cl;
SELECT count(*) AS differing FROM ((TABLE cl EXCEPT TABLE cl_before) UNION ALL (TABLE cl_before EXCEPT TABLE cl)) d;
-- a sequential scan now returns k in order
SELECT bool_and(k >= prev_k) AS ordered
  FROM (SELECT k, lag(k) OVER () AS prev_k FROM cl) s WHERE prev_k IS NOT NULL;
SELECT ctid, k FROM cl LIMIT 3;
SET enable_seqscan = off;
SELECT id, k, pad FROM cl WHERE id IN (1, 11, 500) ORDER BY id;
RESET enable_seqscan;
-- writes go on after the rewrite, with fresh TIDs
INSERT INTO cl (id, k, pad) VALUES (2000, 1, 'new');
UPDATE cl SET pad = 'again' WHERE id = 1;
SELECT id, k, pad FROM cl WHERE id IN (1, 2000) ORDER BY id;
SELECT count(*) AS row_count, count(DISTINCT ctid) AS tid_count FROM cl;
-- CLUSTER again uses the remembered index (a sort or an index scan)
SET enable_indexscan = off;
CLUSTER cl;
RESET enable_indexscan;
SELECT count(*), sum(id) FROM cl;
SELECT bool_and(k >= prev_k) AS ordered
  FROM (SELECT k, lag(k) OVER () AS prev_k FROM cl) s WHERE prev_k IS NOT NULL;

-- in a transaction: a ROLLBACK keeps the old rows and key range
BEGIN;
DELETE FROM cl WHERE id < 100;
CLUSTER cl USING cl_pkey;
SELECT count(*) FROM cl;
ROLLBACK;
SELECT count(*), sum(id) FROM cl;

DROP TABLE cl;
