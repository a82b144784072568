-- lsm_verify(regclass): every record read (CRCs, row ids), every index
-- checked against the live rows.
CREATE TABLE ver (id int PRIMARY KEY, v text, tags text[], ts int) USING lsm;
CREATE INDEX ver_v ON ver (v);
CREATE INDEX ver_tags ON ver USING gin (tags);
CREATE INDEX ver_ts ON ver USING brin (ts);
INSERT INTO ver SELECT g, 'v' || g, ARRAY['t' || g % 3], g FROM generate_series(1, 3000) g;
DELETE FROM ver WHERE id % 5 = 0;
UPDATE ver SET v = v || 'u' WHERE id % 7 = 0;
SELECT object, problems, checked > 0 AS read_some, split_part(detail, ';', 1) AS detail
  FROM lsm_verify('ver') ORDER BY object;
-- still clean after flush, compaction (which removes dead rows under
-- their entries) and VACUUM
SELECT lsm_flush();
SELECT lsm_compact('ver');
SELECT object, problems FROM lsm_verify('ver') ORDER BY object;
VACUUM ver;
SELECT object, problems FROM lsm_verify('ver') ORDER BY object;

-- A partial index whose predicate lies about being immutable: once the
-- predicate changes its mind, live rows lack entries, and lsm_verify says
-- which.
CREATE FUNCTION ver_pick(int) RETURNS bool IMMUTABLE LANGUAGE sql
  AS $$ SELECT $1 % 1000 = current_setting('ver.pick')::int $$;
SET ver.pick = 1;
CREATE INDEX ver_partial ON ver (id) WHERE ver_pick(id);
SELECT object, problems FROM lsm_verify('ver') WHERE object = 'ver_partial';
SET ver.pick = 2;
SELECT object, checked, problems, detail FROM lsm_verify('ver') WHERE object = 'ver_partial';
RESET ver.pick;
DROP INDEX ver_partial;
DROP FUNCTION ver_pick(int);

-- refused for what is not an lsm table, and for non-superusers
CREATE TABLE ver_heap (x int);
SELECT * FROM lsm_verify('ver_heap');
CREATE ROLE ver_user;
SET ROLE ver_user;
SELECT * FROM lsm_verify('ver');
RESET ROLE;
DROP ROLE ver_user;
DROP TABLE ver, ver_heap;
