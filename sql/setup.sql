-- The extension and its access method.
CREATE EXTENSION lsm_am;
SELECT amname, amtype FROM pg_am WHERE amname = 'lsm';
SELECT proname FROM pg_proc WHERE proname LIKE 'lsm\_%' ORDER BY proname;
-- background workers run and are listed under clear names
SELECT backend_type, count(*) FROM pg_stat_activity
 WHERE backend_type LIKE 'lsm_am%' GROUP BY 1 ORDER BY 1;
