/* lsm_am--0.1.sql: the lsm table access method and its functions */

\echo Use "CREATE EXTENSION lsm_am" to load this file. \quit

CREATE FUNCTION lsm_am_check_preloaded() RETURNS void
AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
-- refuses right here unless lsm_am is in shared_preload_libraries
SELECT lsm_am_check_preloaded();

CREATE FUNCTION lsm_am_handler(internal) RETURNS table_am_handler
AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

CREATE ACCESS METHOD lsm TYPE TABLE HANDLER lsm_am_handler;
COMMENT ON ACCESS METHOD lsm IS 'LSM-tree table access method';

CREATE FUNCTION lsm_stats(OUT name text, OUT value numeric) RETURNS SETOF record
AS 'MODULE_PATHNAME', 'lsm_stats_sql' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION lsm_stats() IS 'statistics of the lsm storage: levels, memtables, compaction, cache, log';

CREATE FUNCTION lsm_relation_size(regclass) RETURNS bigint
AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION lsm_relation_size(regclass) IS 'bytes an lsm table takes in lsm files';

CREATE FUNCTION lsm_flush() RETURNS void
AS 'MODULE_PATHNAME', 'lsm_flush_all' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION lsm_flush() IS 'writes every lsm memtable out to files';

CREATE FUNCTION lsm_compact(regclass) RETURNS void
AS 'MODULE_PATHNAME', 'lsm_compact_table' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION lsm_compact(regclass) IS 'compacts an lsm table, dropping row versions no one can see';

CREATE FUNCTION lsm_verify(regclass, OUT object text, OUT checked bigint,
                           OUT problems bigint, OUT detail text) RETURNS SETOF record
AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION lsm_verify(regclass) IS 'reads every row of an lsm table and checks its indexes against it';

REVOKE ALL ON FUNCTION lsm_am_check_preloaded() FROM PUBLIC;
REVOKE ALL ON FUNCTION lsm_verify(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION lsm_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lsm_stats() TO pg_monitor;
REVOKE ALL ON FUNCTION lsm_flush() FROM PUBLIC;
