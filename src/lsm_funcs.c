/*-------------------------------------------------------------------------
 *
 * lsm_funcs.c
 *	  SQL functions of lsm_am: statistics, sizes, flush and compaction.
 *
 * Privileges are granted in the install script: statistics to pg_monitor,
 * lsm_flush to superusers; lsm_compact checks ownership of its table
 * itself (superusers or the owner), as VACUUM does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"

#include "lsm_am.h"
#include "lsm_row.h"

PG_FUNCTION_INFO_V1(lsm_am_check_preloaded);
PG_FUNCTION_INFO_V1(lsm_stats_sql);
PG_FUNCTION_INFO_V1(lsm_relation_size);
PG_FUNCTION_INFO_V1(lsm_flush_all);
PG_FUNCTION_INFO_V1(lsm_compact_table);

/* Called by CREATE EXTENSION: refuses unless lsm_am was preloaded. */
Datum
lsm_am_check_preloaded(PG_FUNCTION_ARGS)
{
	if (!lsm_am_preloaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("lsm_am must be loaded at server start"),
				 errhint("Add lsm_am to shared_preload_libraries in postgresql.conf and restart the server.")));
	PG_RETURN_VOID();
}

static void
emit(Tuplestorestate *ts, TupleDesc desc, const char *name, double value)
{
	Datum		values[2];
	bool		nulls[2] = {false, false};

	values[0] = CStringGetTextDatum(name);
	values[1] = DirectFunctionCall1(float8_numeric, Float8GetDatum(value));
	tuplestore_putvalues(ts, desc, values, nulls);
}

/* lsm_stats(): one row per figure, name and value. */
Datum
lsm_stats_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	lsm_stats	st;
	char		name[64];

	InitMaterializedSRF(fcinfo, 0);
	lsm_am_check(lsm_get_stats(lsm_am_db(), &st), "read its statistics");
#define EMIT(n, v) emit(rsinfo->setResult, rsinfo->setDesc, (n), (double) (v))
	EMIT("memtable_bytes", st.memtable_bytes);
	EMIT("memtable_capacity", st.memtable_capacity);
	EMIT("memtable_entries", st.memtable_entries);
	EMIT("immutable_memtables", st.immutable_memtables);
	for (int l = 0; l < 7; l++)
	{
		snprintf(name, sizeof(name), "level%d_files", l);
		EMIT(name, st.level_files[l]);
		snprintf(name, sizeof(name), "level%d_bytes", l);
		EMIT(name, st.level_bytes[l]);
	}
	EMIT("flushes", st.flushes);
	EMIT("flush_bytes", st.flush_bytes);
	EMIT("compactions", st.compactions);
	EMIT("compact_read_bytes", st.compact_read_bytes);
	EMIT("compact_write_bytes", st.compact_write_bytes);
	EMIT("write_amplification", st.write_amplification);
	EMIT("write_stalls", st.write_stalls);
	EMIT("write_stall_micros", st.write_stall_micros);
	EMIT("write_slowdowns", st.write_slowdowns);
	EMIT("block_cache_hits", st.block_cache_hits);
	EMIT("block_cache_misses", st.block_cache_misses);
	EMIT("block_cache_usage", st.block_cache_usage);
	EMIT("block_cache_capacity", st.block_cache_capacity);
	EMIT("wal_bytes", st.wal_bytes);
	EMIT("wal_syncs", st.wal_syncs);
	EMIT("wal_synced_writes", st.wal_synced_writes);
	EMIT("wal_segments", st.wal_segments);
	EMIT("writes", st.writes);
	EMIT("last_sequence", st.last_sequence);
	EMIT("recovered_records", st.recovered_records);
	/* this backend's own open files (lsm.table_cache_size) */
	EMIT("open_tables", st.open_tables);
	EMIT("table_cache_bytes", st.table_cache_bytes);
	EMIT("table_opens", st.table_opens);
	EMIT("table_cache_evictions", st.table_cache_evictions);
#undef EMIT
	return (Datum) 0;
}

Relation
lsm_open_table(Oid relid, LOCKMODE mode)
{
	Relation	rel = table_open(relid, mode);

	if (rel->rd_rel->relam != lsm_am_oid())
	{
		const char *name = RelationGetRelationName(rel);

		table_close(rel, mode);
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an lsm table", name)));
	}
	return rel;
}

/* lsm_relation_size(regclass): bytes of the table in lsm files. */
Datum
lsm_relation_size(PG_FUNCTION_ARGS)
{
	Relation	rel = lsm_open_table(PG_GETARG_OID(0), AccessShareLock);
	uint8		lo[LSM_KEY_LEN],
				hi[LSM_KEY_LEN];
	uint64		bytes;

	lsm_key_encode(lo, &rel->rd_node, 0);
	lsm_key_encode(hi, &rel->rd_node, LSM_ROWID_RESERVE);
	lsm_am_check(lsm_approximate_size(lsm_am_db(), lo, LSM_KEY_LEN, hi, LSM_KEY_LEN, 0, &bytes),
				 "estimate a table's size");
	table_close(rel, AccessShareLock);
	PG_RETURN_INT64((int64) bytes);
}

/* lsm_flush(): every memtable into files (superusers). */
Datum
lsm_flush_all(PG_FUNCTION_ARGS)
{
	lsm_am_check(lsm_flush(lsm_am_db()), "flush its memtables");
	PG_RETURN_VOID();
}

/* lsm_compact(regclass): compacts the table's key range (owner). */
Datum
lsm_compact_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel = lsm_open_table(relid, ShareUpdateExclusiveLock);
	uint8		lo[LSM_KEY_LEN],
				hi[LSM_KEY_LEN];

	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, RelationGetRelationName(rel));
	lsm_key_encode(lo, &rel->rd_node, 0);
	lsm_key_encode(hi, &rel->rd_node, LSM_ROWID_RESERVE);
	lsm_gc_refresh_horizon();
	lsm_am_check(lsm_compact_range(lsm_am_db(), lo, LSM_KEY_LEN, hi, LSM_KEY_LEN),
				 "compact a table");
	table_close(rel, ShareUpdateExclusiveLock);
	PG_RETURN_VOID();
}
