-- Index entries of dead row versions.  An UPDATE of an indexed column
-- writes a new rowid and new index entries; an index scan that meets an entry whose
-- row no snapshot can see marks it dead (kill_prior_tuple), and btree asks
-- the table (index_delete_tuples) which entries it may remove before it
-- splits a page.  Without both, a row updated N times cost every lookup N
-- fetches and N index entries.
CREATE EXTENSION IF NOT EXISTS pageinspect;
CREATE TABLE kd (id int PRIMARY KEY, v int) USING lsm;
CREATE INDEX kd_v ON kd (v);
INSERT INTO kd VALUES (1, 0), (2, 0);
DO $$ BEGIN FOR i IN 1..20 LOOP UPDATE kd SET v = v + 1 WHERE id = 1; END LOOP; END $$;
-- 22 entries: 21 for id 1 (20 of them dead), 1 for id 2; none marked yet
SELECT count(*) AS items, count(*) FILTER (WHERE dead) AS dead
  FROM bt_page_items('kd_pkey', 1);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT v FROM kd WHERE id = 1;
SELECT v FROM kd WHERE id = 1;
-- the scan marked the 20 dead ones; the answers stay the same
SELECT count(*) AS items, count(*) FILTER (WHERE dead) AS dead
  FROM bt_page_items('kd_pkey', 1);
SELECT v FROM kd WHERE id = 1;
SELECT id, v FROM kd WHERE id IN (1, 2) ORDER BY id;
-- a deleted row's entry dies the same way
DELETE FROM kd WHERE id = 2;
SELECT count(*) FROM kd WHERE id = 2;
SELECT count(*) AS items, count(*) FILTER (WHERE dead) AS dead
  FROM bt_page_items('kd_pkey', 1);

-- 3000 updates of one row, each its own transaction: btree removes dead
-- entries instead of splitting its one leaf page (about 400 entries fit)
CREATE TABLE hot1 (id int PRIMARY KEY, v int) USING lsm;
CREATE INDEX hot1_v ON hot1 (v);
INSERT INTO hot1 VALUES (1, 0);
CREATE PROCEDURE bump(n int) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..n LOOP
		UPDATE hot1 SET v = v + 1 WHERE id = 1;
		COMMIT;
	END LOOP;
END $$;
CALL bump(3000);
SELECT v FROM hot1 WHERE id = 1;
SELECT pg_relation_size('hot1_pkey') / current_setting('block_size')::int <= 3 AS index_stayed_small;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT id, v FROM hot1;
DROP PROCEDURE bump(int);
DROP TABLE kd, hot1;
DROP EXTENSION pageinspect;
