-- Transactions on lsm tables, seen from one session (isolation specs in
-- specs/ cover several sessions).
CREATE TABLE m (id int, v text) USING lsm;
-- a rolled-back transaction leaves nothing
BEGIN;
INSERT INTO m SELECT g, 'aborted' FROM generate_series(1, 1000) g;
SELECT count(*) FROM m;
ROLLBACK;
SELECT count(*) FROM m;
-- savepoints
BEGIN;
INSERT INTO m VALUES (1, 'kept');
SAVEPOINT a;
INSERT INTO m VALUES (2, 'rolled back');
SELECT count(*) FROM m;
ROLLBACK TO SAVEPOINT a;
INSERT INTO m VALUES (3, 'kept too');
SAVEPOINT b;
UPDATE m SET v = 'updated in b' WHERE id = 1;
RELEASE SAVEPOINT b;
SAVEPOINT c;
DELETE FROM m WHERE id = 3;
ROLLBACK TO SAVEPOINT c;
COMMIT;
SELECT * FROM m ORDER BY id;
-- a statement sees the rows as they were when it started (command ids)
WITH ins AS (INSERT INTO m VALUES (4, 'new') RETURNING id)
SELECT (SELECT count(*) FROM m) AS seen_by_the_statement, (SELECT count(*) FROM ins) AS inserted;
SELECT count(*) FROM m;
-- the transaction sees its own earlier commands
BEGIN;
INSERT INTO m VALUES (5, 'five');
SELECT count(*) FROM m WHERE id = 5;
UPDATE m SET v = 'five again' WHERE id = 5;
SELECT v FROM m WHERE id = 5;
DELETE FROM m WHERE id = 5;
SELECT count(*) FROM m WHERE id = 5;
COMMIT;
-- updating a row twice in one transaction, and a cursor keeps its snapshot
BEGIN;
UPDATE m SET v = 'x' WHERE id = 1;
UPDATE m SET v = 'y' WHERE id = 1;
DECLARE cur CURSOR FOR SELECT id, v FROM m WHERE id = 1;
UPDATE m SET v = 'z' WHERE id = 1;
FETCH ALL FROM cur;
SELECT v FROM m WHERE id = 1;
COMMIT;
-- an error aborts the transaction's rows
BEGIN;
INSERT INTO m VALUES (6, 'doomed');
SELECT 1 / 0;
COMMIT;
SELECT count(*) FROM m WHERE id = 6;
-- REPEATABLE READ: one snapshot for the whole transaction
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM m;
INSERT INTO m VALUES (7, 'seven');
SELECT count(*) FROM m;
COMMIT;
-- compaction removes the rows of aborted transactions
CREATE TABLE g (id int, pad text) USING lsm;
BEGIN;
INSERT INTO g SELECT x, repeat(md5(x::text), 4) FROM generate_series(1, 20000) x;
ROLLBACK;
INSERT INTO g VALUES (1, 'survivor');
SELECT lsm_flush();
SELECT lsm_compact('g');
SELECT lsm_relation_size('g') < 50000 AS aborted_rows_gone;
SELECT * FROM g;
DROP TABLE m, g;
