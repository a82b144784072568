-- Loading and reading lsm tables.
CREATE TABLE t (id bigint, v text) USING lsm;
INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, NULL);
SELECT * FROM t ORDER BY id;
INSERT INTO t SELECT g, 'row ' || g FROM generate_series(4, 20000) g;
SELECT count(*), sum(id), count(v) FROM t;
-- fetch by ctid: rows are numbered 291 to a block, in insertion order
SELECT ctid, * FROM t WHERE ctid = '(0,1)';
SELECT ctid, * FROM t WHERE ctid = '(1,1)';
SELECT count(*) FROM t WHERE ctid = '(100000,1)';
-- COPY goes through multi_insert
COPY t FROM STDIN;
20001	copied one
20002	copied two
\.
SELECT * FROM t WHERE id > 20000 ORDER BY id;
-- CREATE TABLE AS and default_table_access_method
SET default_table_access_method = lsm;
CREATE TABLE t_ctas AS SELECT id, v FROM t WHERE id <= 1000;
RESET default_table_access_method;
SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.relname = 't_ctas';
SELECT count(*) FROM t_ctas;
\set HIDE_TABLEAM off
\d+ t_ctas
\set HIDE_TABLEAM on
-- INSERT ... SELECT from itself ends (the scan does not see its own inserts)
INSERT INTO t_ctas SELECT * FROM t_ctas;
SELECT count(*) FROM t_ctas;
-- UPDATE and DELETE, with RETURNING
UPDATE t SET v = 'changed' WHERE id = 2 RETURNING *;
DELETE FROM t WHERE id = 3 RETURNING *;
SELECT * FROM t WHERE id <= 3 ORDER BY id;
UPDATE t SET v = v || '!' WHERE id % 1000 = 0;
SELECT count(*) FROM t WHERE v LIKE '%!';
DELETE FROM t WHERE id > 15000;
SELECT count(*), max(id) FROM t;
-- indexes: built over existing rows, kept up by inserts and updates
CREATE INDEX t_id ON t (id);
INSERT INTO t VALUES (30000, 'after the index');
SET enable_seqscan = off;
SELECT * FROM t WHERE id = 30000;
SELECT * FROM t WHERE id = 2;
SELECT count(*) FROM t WHERE id BETWEEN 100 AND 199;
UPDATE t SET id = 40000 WHERE id = 30000;
SELECT * FROM t WHERE id = 30000;
SELECT * FROM t WHERE id = 40000;
RESET enable_seqscan;
-- unique constraints and ON CONFLICT
CREATE TABLE u (k int PRIMARY KEY, v text) USING lsm;
INSERT INTO u VALUES (1, 'a'), (2, 'b');
INSERT INTO u VALUES (1, 'dup');
INSERT INTO u VALUES (1, 'dup') ON CONFLICT DO NOTHING;
INSERT INTO u VALUES (2, 'new') ON CONFLICT (k) DO UPDATE SET v = excluded.v;
SELECT * FROM u ORDER BY k;
-- parallel sequential scan
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT count(*) FROM t;
SELECT count(*), sum(id) FROM t;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
-- a cursor: backward scans are refused with a hint
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM t WHERE id < 5 ORDER BY id;
FETCH 2 FROM c;
COMMIT;
BEGIN;
DECLARE s SCROLL CURSOR FOR SELECT id FROM t;
FETCH 1 FROM s;
FETCH BACKWARD 1 FROM s;
ROLLBACK;
-- ANALYZE sees the rows
ANALYZE t;
SELECT reltuples BETWEEN 14000 AND 16000 AS estimate_ok FROM pg_class WHERE relname = 't';
DROP TABLE t, t_ctas, u;
