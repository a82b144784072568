-- TABLESAMPLE on lsm tables: a block is 291 rowids (lsm_row.h), so every
-- row is offered to the sampling method once, and only visible rows come
-- back.  Also TID range scans over the same numbering.
CREATE TABLE smp (id int, v text) USING lsm;
INSERT INTO smp SELECT g, 'v' || g FROM generate_series(1, 3000) g;
DELETE FROM smp WHERE id % 2 = 0;

SELECT count(*) FROM smp TABLESAMPLE SYSTEM (100);
SELECT count(*) FROM smp TABLESAMPLE BERNOULLI (100);
SELECT count(*) FROM smp TABLESAMPLE SYSTEM (0);
SELECT count(*) FROM smp TABLESAMPLE BERNOULLI (0);
-- deleted rows never come back
SELECT count(*) FROM smp TABLESAMPLE BERNOULLI (50) REPEATABLE (7) WHERE id % 2 = 0;
-- about half, the same half each time with the same seed
SELECT count(*) BETWEEN 600 AND 900 AS about_half FROM smp TABLESAMPLE BERNOULLI (50) REPEATABLE (7);
SELECT count(*) AS differing FROM (
  (SELECT id FROM smp TABLESAMPLE BERNOULLI (50) REPEATABLE (7)
   EXCEPT SELECT id FROM smp TABLESAMPLE BERNOULLI (50) REPEATABLE (7))
  UNION ALL
  (SELECT id FROM smp TABLESAMPLE SYSTEM (30) REPEATABLE (3)
   EXCEPT SELECT id FROM smp TABLESAMPLE SYSTEM (30) REPEATABLE (3))) d;
-- SYSTEM takes whole blocks: the rows of a sampled block all come
SELECT bool_and(n = full_n) AS whole_blocks FROM (
  SELECT (ctid::text::point)[0] AS blk, count(*) AS n FROM smp TABLESAMPLE SYSTEM (40) REPEATABLE (11) GROUP BY 1) s
  JOIN (SELECT (ctid::text::point)[0] AS blk, count(*) AS full_n FROM smp GROUP BY 1) f USING (blk);
-- a sample holds real rows with their values
SELECT bool_and(v = 'v' || id) AS intact, count(DISTINCT id) = count(*) AS no_duplicates
  FROM smp TABLESAMPLE BERNOULLI (30) REPEATABLE (1);
-- the transaction's own new rows are in its samples; after ROLLBACK, gone
BEGIN;
INSERT INTO smp SELECT g, 'v' || g FROM generate_series(3001, 3100) g;
SELECT count(*) FROM smp TABLESAMPLE SYSTEM (100);
ROLLBACK;
SELECT count(*) FROM smp TABLESAMPLE SYSTEM (100);

-- TID range scans
EXPLAIN (COSTS OFF) SELECT count(*) FROM smp WHERE ctid >= '(1,0)' AND ctid < '(2,0)';
SELECT count(*), min(id), max(id) FROM smp WHERE ctid >= '(1,0)' AND ctid < '(2,0)';
SELECT count(*) FROM smp WHERE ctid < '(1,0)';
SELECT count(*) FROM smp WHERE ctid > '(9,0)';
SELECT count(*) FROM smp WHERE ctid >= '(0,3)' AND ctid <= '(0,7)';
SELECT count(*) FROM smp WHERE ctid > '(0,291)' AND ctid < '(1,5)';
SELECT count(*) FROM smp WHERE ctid > '(3,0)' AND ctid < '(2,0)';
SELECT id FROM smp WHERE ctid >= '(5,10)' AND ctid < '(5,16)' ORDER BY id;
-- the same rows as a filter over a sequential scan
SET enable_tidscan = off;
SELECT count(*), min(id), max(id) FROM smp WHERE ctid >= '(1,0)' AND ctid < '(2,0)';
SELECT count(*) FROM smp WHERE ctid >= '(0,3)' AND ctid <= '(0,7)';
SELECT count(*) FROM smp WHERE ctid > '(0,291)' AND ctid < '(1,5)';
SELECT id FROM smp WHERE ctid >= '(5,10)' AND ctid < '(5,16)' ORDER BY id;
RESET enable_tidscan;
DROP TABLE smp;
