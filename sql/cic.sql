-- CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY on lsm tables: the
-- build indexes what its snapshot sees, the validation adds the rest.
CREATE TABLE cic (id int, v text) USING lsm;
INSERT INTO cic SELECT g, 'v' || (g % 100) FROM generate_series(1, 2000) g;
DELETE FROM cic WHERE id % 4 = 0;
UPDATE cic SET v = 'updated' WHERE id % 7 = 0;
CREATE INDEX CONCURRENTLY cic_v ON cic (v);
CREATE UNIQUE INDEX CONCURRENTLY cic_id ON cic (id);
SELECT c.relname, i.indisvalid, i.indisready
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'cic'::regclass ORDER BY 1;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM cic WHERE v = 'updated';
SELECT count(*) FROM cic WHERE v = 'updated';
SELECT count(*), sum(id) FROM cic WHERE id > 0;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT count(*) FILTER (WHERE v = 'updated'), count(*), sum(id) FROM cic;

-- a unique index over duplicates fails and stays invalid, as on heap
CREATE UNIQUE INDEX CONCURRENTLY cic_v_unique ON cic (v);
SELECT indisvalid FROM pg_index WHERE indexrelid = 'cic_v_unique'::regclass;
DROP INDEX cic_v_unique;
-- the unique index built concurrently refuses duplicates
INSERT INTO cic VALUES (2, 'dup');
SELECT count(*) FROM cic WHERE id = 2;

-- partial and expression indexes
CREATE INDEX CONCURRENTLY cic_part ON cic (id) WHERE v = 'updated';
CREATE INDEX CONCURRENTLY cic_expr ON cic (lower(v));
SET enable_seqscan = off;
SELECT count(*) FROM cic WHERE v = 'updated' AND id < 500;
SELECT count(*) FROM cic WHERE lower(v) = 'v1';
RESET enable_seqscan;
SELECT count(*) FROM cic WHERE lower(v) = 'v1';

REINDEX INDEX CONCURRENTLY cic_v;
REINDEX TABLE CONCURRENTLY cic;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM cic WHERE v = 'updated';
SELECT count(*), sum(id) FROM cic WHERE id > 0;
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP TABLE cic;

-- Parallel index builds: btree hands the workers a shared parallel scan;
-- each visits the blocks it is given (SnapshotAny, or the MVCC snapshot of
-- a concurrent build).
CREATE TABLE pib (id int, v text) USING lsm;
INSERT INTO pib SELECT g, 'v' || g FROM generate_series(1, 20000) g;
DELETE FROM pib WHERE id % 3 = 0;
SET maintenance_work_mem = '256MB';
SET max_parallel_maintenance_workers = 2;
SET min_parallel_table_scan_size = 0;
SET client_min_messages = debug1;
SET log_temp_files = -1;
CREATE INDEX pib_id ON pib (id);
CREATE UNIQUE INDEX CONCURRENTLY pib_v ON pib (v);
RESET client_min_messages;
RESET log_temp_files;
RESET maintenance_work_mem;
RESET max_parallel_maintenance_workers;
RESET min_parallel_table_scan_size;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*), sum(id) FROM pib WHERE id > 0;
SELECT count(*) FROM pib WHERE v > '';
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT count(*), sum(id) FROM pib;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('pib_id', 'pib_v') ORDER BY 1;
DROP TABLE pib;
