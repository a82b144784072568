-- Observability functions and who may call them.
CREATE TABLE s (id int, v text) USING lsm;
INSERT INTO s SELECT g, repeat('x', 100) FROM generate_series(1, 50000) g;
SELECT lsm_flush();
SELECT count(*) > 20 AS has_figures FROM lsm_stats();
SELECT value > 0 AS flushed FROM lsm_stats() WHERE name = 'flushes';
SELECT sum(value) > 0 AS has_files FROM lsm_stats() WHERE name LIKE 'level%_files';
SELECT value > 0 AS has_wa FROM lsm_stats() WHERE name = 'write_amplification';
SELECT lsm_relation_size('s') BETWEEN 100000 AND 20000000 AS plausible_size;
SELECT lsm_compact('s');
SELECT count(*) FROM s;
-- this backend keeps the file it read open, within lsm.table_cache_size
SELECT value >= 1 AS file_open FROM lsm_stats() WHERE name = 'open_tables';
SELECT value > 0 AND value <= (SELECT setting::bigint * 1048576 FROM pg_settings
                                     WHERE name = 'lsm.table_cache_size')
       AS within_budget FROM lsm_stats() WHERE name = 'table_cache_bytes';
SELECT lsm_relation_size('pg_class');
-- privileges: statistics for pg_monitor, flush for superusers,
-- compaction for the table's owner
CREATE ROLE lsm_plain;
CREATE ROLE lsm_monitor IN ROLE pg_monitor;
GRANT SELECT ON s TO lsm_plain;
SET ROLE lsm_plain;
SELECT count(*) FROM lsm_stats();
SELECT lsm_flush();
SELECT lsm_compact('s');
SELECT lsm_relation_size('s') > 0 AS anyone_sees_sizes;
RESET ROLE;
SET ROLE lsm_monitor;
SELECT count(*) > 0 AS monitor_sees FROM lsm_stats();
RESET ROLE;
ALTER TABLE s OWNER TO lsm_plain;
SET ROLE lsm_plain;
SELECT lsm_compact('s');
RESET ROLE;
DROP TABLE s;
DROP ROLE lsm_plain, lsm_monitor;
