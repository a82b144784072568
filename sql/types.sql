-- Every kind of value: compared with the same rows in a heap table.
CREATE TABLE h (
  id int, b boolean, i2 smallint, i4 int, i8 bigint, f4 real, f8 double precision,
  n numeric, c char(5), vc varchar(20), t text, by bytea, d date, ts timestamp,
  tz timestamptz, iv interval, u uuid, j jsonb, arr int[], ta text[], ip inet,
  pt point, rng int4range, bits bit varying(16), m money, x xml
) USING heap;
INSERT INTO h SELECT g,
  g % 2 = 0, (g % 30000)::int2, g * 7, g::int8 * 1000000007, g / 3.0, g / 7.0,
  (g * 1.25)::numeric, 'c' || (g % 10), 'vc' || g, repeat('t', g % 50), decode(md5(g::text), 'hex'),
  date '2000-01-01' + g, timestamp '2020-01-01' + g * interval '1 minute',
  timestamptz '2020-01-01 00:00+00' + g * interval '1 hour', g * interval '1 second',
  md5(g::text)::uuid, jsonb_build_object('g', g, 'a', jsonb_build_array(g, g + 1)),
  ARRAY[g, g + 1, g + 2], ARRAY['x' || g, NULL], ('10.0.' || (g % 256) || '.1')::inet,
  point(g, -g), int4range(g, g + 10), (g % 65536)::bit(16)::varbit, (g * 0.01)::money,
  ('<r>' || g || '</r>')::xml
FROM generate_series(1, 2000) g;
-- NULLs in every column
INSERT INTO h (id) VALUES (0);
CREATE TABLE l (LIKE h) USING lsm;
INSERT INTO l SELECT * FROM h;
SELECT count(*) FROM l;
SELECT (SELECT md5(string_agg(h::text, '|' ORDER BY id)) FROM h) =
       (SELECT md5(string_agg(l::text, '|' ORDER BY id)) FROM l) AS same_rows;
SELECT * FROM l WHERE id = 0;
-- wide values go to the TOAST table; up to many megabytes
CREATE TABLE w (id int, big text, bin bytea) USING lsm;
SELECT reltoastrelid <> 0 AS has_toast FROM pg_class WHERE relname = 'w';
INSERT INTO w SELECT 1, repeat('a', 10000000), NULL;
INSERT INTO w SELECT 2, string_agg(md5(g::text), '') , NULL FROM generate_series(1, 200000) g;
INSERT INTO w SELECT 3, NULL, decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(1, 400000) g;
SELECT id, length(big), length(bin), md5(coalesce(big, '')), md5(coalesce(bin, ''::bytea)) FROM w ORDER BY id;
UPDATE w SET big = big || 'z' WHERE id = 2;
SELECT id, length(big), right(big, 3) FROM w WHERE id = 2;
SELECT count(*) FROM w;
DROP TABLE h, l, w;
