-- ANALYZE and the planner: the same data in a heap and an lsm table, both
-- analyzed; the planner picks the same kind of scan for each query on
-- both, and ANALYZE's sample spans the whole lsm table.
CREATE TABLE pl_heap (id int PRIMARY KEY, grp int, pad text) USING heap;
CREATE TABLE pl_lsm (id int PRIMARY KEY, grp int, pad text) USING lsm;
INSERT INTO pl_heap SELECT g, g % 200, repeat('x', 60) FROM generate_series(1, 100000) g;
INSERT INTO pl_lsm SELECT * FROM pl_heap;
CREATE INDEX pl_heap_grp ON pl_heap (grp);
CREATE INDEX pl_lsm_grp ON pl_lsm (grp);
ANALYZE pl_heap;
ANALYZE pl_lsm;
-- estimates close to the truth
SELECT reltuples BETWEEN 95000 AND 105000 AS reltuples_ok, relpages > 0 AS has_pages
  FROM pg_class WHERE relname = 'pl_lsm';
-- the sample covers the whole table: both ends of the id range are in it
SELECT (histogram_bounds::text::int[])[1] < 2000 AS low_end,
       (histogram_bounds::text::int[])[array_length(histogram_bounds::text::int[], 1)] > 98000 AS high_end
  FROM pg_stats WHERE tablename = 'pl_lsm' AND attname = 'id';
SELECT n_distinct FROM pg_stats WHERE tablename = 'pl_lsm' AND attname = 'grp';

-- the first scan node of a query's plan
CREATE FUNCTION scan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		IF line ~ 'Scan' THEN
			RETURN substring(line from '((Index Only|Index|Bitmap Heap|Seq|Tid Range|Tid) Scan)');
		END IF;
	END LOOP;
	RETURN NULL;
END $$;
SET max_parallel_workers_per_gather = 0;
SELECT q, scan_of(replace(q, '%T', 'pl_heap')) AS heap, scan_of(replace(q, '%T', 'pl_lsm')) AS lsm,
       scan_of(replace(q, '%T', 'pl_heap')) = scan_of(replace(q, '%T', 'pl_lsm')) AS same
  FROM (VALUES ('SELECT * FROM %T WHERE id = 42'),
               ('SELECT * FROM %T WHERE id < 50'),
               ('SELECT * FROM %T WHERE id > 20000'),
               ('SELECT * FROM %T WHERE grp = 7'),
               ('SELECT count(*) FROM %T'),
               ('SELECT * FROM %T ORDER BY id LIMIT 10'),
               ('SELECT * FROM %T WHERE pad = ''y''')) AS qs(q);
RESET max_parallel_workers_per_gather;
DROP FUNCTION scan_of(text);
DROP TABLE pl_heap, pl_lsm;
