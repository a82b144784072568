-- Constraints and index kinds on lsm tables: foreign keys both ways,
-- CHECK and NOT NULL, exclusion constraints, and hash, gin, gist and brin
-- indexes serving queries (with bitmap scans).
CREATE TABLE par (id int PRIMARY KEY, name text NOT NULL CHECK (name <> '')) USING lsm;
CREATE TABLE chi (id int PRIMARY KEY, pid int REFERENCES par ON DELETE CASCADE,
                  qty int CHECK (qty > 0)) USING lsm;
CREATE TABLE heap_chi (id int PRIMARY KEY, pid int REFERENCES par ON UPDATE CASCADE) USING heap;
CREATE TABLE heap_par (id int PRIMARY KEY) USING heap;
CREATE TABLE chi_of_heap (id int PRIMARY KEY, hid int REFERENCES heap_par ON DELETE SET NULL) USING lsm;
INSERT INTO par SELECT g, 'p' || g FROM generate_series(1, 10) g;
INSERT INTO chi SELECT g, g % 10 + 1, g FROM generate_series(1, 100) g;
INSERT INTO heap_chi VALUES (1, 1), (2, 2);
INSERT INTO heap_par VALUES (1), (2);
INSERT INTO chi_of_heap VALUES (1, 1), (2, 2);

-- violations are refused with heap's errors
INSERT INTO par VALUES (11, '');
INSERT INTO par VALUES (11, NULL);
INSERT INTO chi VALUES (1000, 99, 1);
INSERT INTO chi VALUES (1000, 1, 0);
UPDATE chi SET pid = 42 WHERE id = 1;
INSERT INTO chi_of_heap VALUES (3, 3);
DELETE FROM par WHERE id = 2;	-- heap_chi still points at it
-- actions
DELETE FROM par WHERE id = 3;
SELECT count(*) FROM chi WHERE pid = 3;
UPDATE par SET id = 20 WHERE id = 1;
SELECT * FROM heap_chi ORDER BY id;
SELECT count(*) FROM chi WHERE pid = 1;
DELETE FROM chi WHERE pid = 1;
UPDATE par SET id = 20 WHERE id = 1;
SELECT * FROM heap_chi ORDER BY id;
DELETE FROM heap_par WHERE id = 1;
SELECT * FROM chi_of_heap ORDER BY id;

-- A row inserted and then updated in one transaction: the deferred check
-- must still run (core code asks the row's xmin whether it is our own).
CREATE TABLE dpar (id int PRIMARY KEY) USING lsm;
CREATE TABLE dchi (id int, pid int REFERENCES dpar DEFERRABLE INITIALLY DEFERRED, note text) USING lsm;
BEGIN;
INSERT INTO dchi VALUES (1, 42, 'a');
UPDATE dchi SET note = 'b' WHERE id = 1;
COMMIT;
SELECT count(*) FROM dchi;
BEGIN;
INSERT INTO dchi VALUES (1, 42, 'a');
INSERT INTO dpar VALUES (42);
UPDATE dchi SET note = 'b' WHERE id = 1;
COMMIT;
SELECT * FROM dchi;
SELECT xmin::text::bigint > 2 AS real_xmin, xmax FROM dchi;

-- exclusion constraint (gist)
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE TABLE booking (room int, during int4range,
                      EXCLUDE USING gist (room WITH =, during WITH &&)) USING lsm;
INSERT INTO booking VALUES (1, '[1,5)'), (1, '[5,9)'), (2, '[1,9)');
INSERT INTO booking VALUES (1, '[4,6)');
DELETE FROM booking WHERE room = 1 AND during = '[5,9)';
INSERT INTO booking VALUES (1, '[6,8)');
SELECT room, during FROM booking ORDER BY room, during;

-- hash, gin, gist and brin indexes
CREATE TABLE kinds (id int, tag text, words text[], pos point, ts int) USING lsm;
INSERT INTO kinds SELECT g, 't' || (g % 50), ARRAY['w' || (g % 7), 'w' || (g % 11)],
       point(g % 100, g / 100), g FROM generate_series(1, 5000) g;
DELETE FROM kinds WHERE id % 10 = 0;
CREATE INDEX kinds_hash ON kinds USING hash (tag);
CREATE INDEX kinds_gin ON kinds USING gin (words);
CREATE INDEX kinds_gist ON kinds USING gist (pos);
CREATE INDEX kinds_brin ON kinds USING brin (ts) WITH (pages_per_range = 1);
ANALYZE kinds;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM kinds WHERE tag = 't7';
SELECT count(*) FROM kinds WHERE tag = 't7';
EXPLAIN (COSTS OFF) SELECT count(*) FROM kinds WHERE words @> ARRAY['w3', 'w5'];
SELECT count(*) FROM kinds WHERE words @> ARRAY['w3', 'w5'];
EXPLAIN (COSTS OFF) SELECT count(*) FROM kinds WHERE pos <@ box '((10,10),(20,20))';
SELECT count(*) FROM kinds WHERE pos <@ box '((10,10),(20,20))';
EXPLAIN (COSTS OFF) SELECT count(*) FROM kinds WHERE ts BETWEEN 1000 AND 1999;
SELECT count(*) FROM kinds WHERE ts BETWEEN 1000 AND 1999;
SELECT id FROM (SELECT id FROM kinds ORDER BY pos <-> point(50, 25) LIMIT 2) s ORDER BY id;
RESET enable_seqscan;
-- the same answers without indexes
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM kinds WHERE tag = 't7';
SELECT count(*) FROM kinds WHERE words @> ARRAY['w3', 'w5'];
SELECT count(*) FROM kinds WHERE pos <@ box '((10,10),(20,20))';
SELECT count(*) FROM kinds WHERE ts BETWEEN 1000 AND 1999;
RESET enable_indexscan;
RESET enable_bitmapscan;
-- indexes follow updates
UPDATE kinds SET tag = 'moved', words = ARRAY['zz'] WHERE id % 7 = 0;
SET enable_seqscan = off;
SELECT count(*) FROM kinds WHERE tag = 'moved';
SELECT count(*) FROM kinds WHERE words @> ARRAY['zz'];
SELECT count(*) FROM kinds WHERE tag = 't7';
RESET enable_seqscan;
SELECT count(*) FROM kinds WHERE tag = 't7';

DROP TABLE chi, heap_chi, chi_of_heap, par, heap_par, dchi, dpar, booking, kinds;
DROP EXTENSION btree_gist;
