-- Table-level commands on lsm tables.
CREATE TABLE d (id int, v text) USING lsm;
INSERT INTO d SELECT g, 'v' || g FROM generate_series(1, 100) g;
-- ADD COLUMN with a default: old rows show it
ALTER TABLE d ADD COLUMN flag boolean DEFAULT true;
ALTER TABLE d ADD COLUMN n int;
INSERT INTO d VALUES (101, 'new', false, 7);
SELECT id, v, flag, n FROM d WHERE id IN (1, 100, 101) ORDER BY id;
-- DROP COLUMN
ALTER TABLE d DROP COLUMN v;
SELECT * FROM d WHERE id IN (1, 101) ORDER BY id;
-- a rewrite (column type change) keeps the rows
ALTER TABLE d ALTER COLUMN id TYPE bigint;
SELECT count(*), sum(id) FROM d;
SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.relname = 'd';
-- TRUNCATE is transactional
BEGIN;
TRUNCATE d;
SELECT count(*) FROM d;
ROLLBACK;
SELECT count(*) FROM d;
TRUNCATE d;
SELECT count(*) FROM d;
INSERT INTO d (id) VALUES (1);
SELECT id, flag FROM d;
-- TRUNCATE of a table created in the same transaction
BEGIN;
CREATE TABLE d2 (x int) USING lsm;
INSERT INTO d2 VALUES (1), (2);
TRUNCATE d2;
INSERT INTO d2 VALUES (3);
SELECT * FROM d2;
COMMIT;
SELECT * FROM d2;
-- DROP TABLE is transactional
BEGIN;
DROP TABLE d2;
ROLLBACK;
SELECT * FROM d2;
DROP TABLE d2;
SELECT count(*) FROM pg_class WHERE relname = 'd2';
-- a new table shows nothing of a dropped one
CREATE TABLE d3 (x int) USING lsm;
INSERT INTO d3 SELECT generate_series(1, 1000);
DROP TABLE d3;
CREATE TABLE d3 (x int) USING lsm;
SELECT count(*) FROM d3;
DROP TABLE d3;
-- DROP gives the space back: a worker compacts the dropped key range
CREATE TABLE big (id int, pad text) USING lsm;
INSERT INTO big SELECT g, md5((g * 6)::text) || md5((g * 6 + 1)::text) || md5((g * 6 + 2)::text) ||
  md5((g * 6 + 3)::text) || md5((g * 6 + 4)::text) || md5((g * 6 + 5)::text)
  FROM generate_series(1, 40000) g;
SELECT lsm_flush();
CREATE TEMP TABLE level_bytes AS
  SELECT sum(value) AS before FROM lsm_stats() WHERE name LIKE 'level%_bytes';
SELECT before > 4000000 AS on_disk FROM level_bytes;
DROP TABLE big;
DO $$
BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN (SELECT sum(value) FROM lsm_stats() WHERE name LIKE 'level%_bytes') <
              (SELECT before FROM level_bytes) - 4000000;
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SELECT (SELECT sum(value) FROM lsm_stats() WHERE name LIKE 'level%_bytes') <
       (SELECT before FROM level_bytes) - 4000000 AS space_reclaimed;
DROP TABLE level_bytes;
-- refused, with a clear error
CREATE TEMP TABLE tt (x int) USING lsm;
CREATE UNLOGGED TABLE ut (x int) USING lsm;
SELECT lsm_compact('pg_class');
-- VACUUM and ANALYZE work
VACUUM d;
VACUUM ANALYZE d;
ANALYZE d;
DROP TABLE d;
