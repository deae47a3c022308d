/*
 * archive.c — archive_rows(): moves old rows of an unpartitioned table into
 * elfsofa_archive.<same name>, one atomic batch at a time.
 *
 * Each batch is a single statement — pick up to n old rows by ctid (SKIP
 * LOCKED), DELETE them RETURNING *, INSERT what was deleted — so a row is
 * either still in the source or already in the archive, never both and never
 * neither, whenever the backend dies.  The batches walk the heap forward with
 * a TID range scan (ctid > last one seen), so each batch reads only new pages
 * and the whole run stays linear.  As a function it runs in the caller's
 * transaction (killed: everything rolls back); called as the procedure
 * archive_rows_batched it commits after every batch (killed: earlier batches
 * stay, a rerun moves the rest).  Progress goes to pg_stat_activity.query.
 */
#include "partitions/partitions.h"

#include "access/xact.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(elfsofa_archive_rows);

/* elfsofa.archive_rows(tbl, time_column, older_than, batch_size) and the procedure archive_rows_batched */
Datum
elfsofa_archive_rows(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *column;
	Interval   *older;
	int32		batch;
	bool		nonatomic;
	char	   *nsp,
			   *relname,
			   *qsrc,
			   *qarch;
	AttrNumber	attnum;
	Oid			coltype;
	Oid			archive_nsp;
	TimestampTz cutoff;
	StringInfoData sql;
	SPIPlanPtr	plan;
	Oid			argtypes[3] = {TIMESTAMPTZOID, INT4OID, TIDOID};
	ItemPointerData last;
	int64		moved = 0;
	int64		batches = 0;
	char		activity[256];

	nonatomic = fcinfo->context && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;

	es_arg_not_null(fcinfo, 0, "tbl");
	relid = PG_GETARG_OID(0);
	column = es_require_text(fcinfo, 1, "time_column", NAMEDATALEN - 1);
	es_arg_not_null(fcinfo, 2, "older_than");
	older = PG_GETARG_INTERVAL_P(2);
	{
		Interval	zero;

		memset(&zero, 0, sizeof(zero));
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(older), IntervalPGetDatum(&zero))) < 0)
			es_invalid_arg("older_than must not be negative",
					psprintf("Argument \"older_than\" was %s.",
							 DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(older)))),
					NULL);
	}
	batch = PG_ARGISNULL(3) ? 10000 : PG_GETARG_INT32(3);
	if (batch < 1 || batch > 1000000)
		es_invalid_arg("batch_size must be between 1 and 1000000",
				psprintf("Argument \"batch_size\" was %d.", batch), NULL);

	relname = get_rel_name(relid);
	if (relname == NULL)
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("unknown table"),
				 errdetail("No relation has OID %u.", relid)));
	nsp = get_namespace_name(get_rel_namespace(relid));
	qsrc = quote_qualified_identifier(nsp, relname);
	archive_nsp = get_namespace_oid("elfsofa_archive", true);
	if (!OidIsValid(archive_nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema elfsofa_archive does not exist"),
				 errdetail("Rows of %s would be moved there.", qsrc)));
	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
		es_invalid_arg("table is partitioned",
				psprintf("Table %s is partitioned; its old rows leave by partition retention.", qsrc),
				"Use elfsofa.partition_table(..., retention => ...) and elfsofa.run_maintenance().");
	if (get_rel_relkind(relid) != RELKIND_RELATION)
		es_invalid_arg("not an ordinary table", psprintf("Relation %s is not a table.", qsrc), NULL);
	if (get_rel_namespace(relid) == archive_nsp)
		es_invalid_arg("table is already in the archive", psprintf("Table %s is in schema elfsofa_archive.", qsrc), NULL);
	if (!es_rel_ownercheck(relid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", qsrc),
				 errdetail("Only the owner of %s can archive its rows.", qsrc)));
	attnum = get_attnum(relid, column);
	if (attnum == InvalidAttrNumber || attnum < 0)
		es_invalid_arg("time column does not exist", psprintf("Table %s has no column \"%s\".", qsrc, column), NULL);
	coltype = get_atttype(relid, attnum);
	if (coltype != TIMESTAMPTZOID && coltype != TIMESTAMPOID && coltype != DATEOID)
		es_invalid_arg("time column must be timestamptz, timestamp or date",
				psprintf("Column \"%s\" of %s has type %s.", column, qsrc, format_type_be(coltype)), NULL);
	qarch = quote_qualified_identifier("elfsofa_archive", relname);

	cutoff = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
													 IntervalPGetDatum(older)));

	if (SPI_connect_ext(nonatomic ? SPI_OPT_NONATOMIC : 0) != SPI_OK_CONNECT)
		elog(ERROR, "elfsofa: SPI_connect failed");

	if (!OidIsValid(get_relname_relid(relname, archive_nsp)))
	{
		char	   *create = psprintf("CREATE TABLE %s (LIKE %s)", qarch, qsrc);

		if (SPI_execute(create, false, 0) < 0)
			elog(ERROR, "elfsofa: could not run \"%s\"", create);
	}

	/* one statement per batch: pick by ctid after the last one seen, move, report */
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH pick AS (SELECT ctid FROM ONLY %s WHERE ctid > $3 AND %s < $1 LIMIT $2 FOR UPDATE SKIP LOCKED), "
					 "moved AS (DELETE FROM ONLY %s WHERE ctid = ANY (ARRAY(SELECT ctid FROM pick)) RETURNING *), "
					 "ins AS (INSERT INTO %s SELECT * FROM moved RETURNING 1) "
					 "SELECT (SELECT count(*) FROM ins), (SELECT max(ctid) FROM pick), (SELECT count(*) FROM pick)",
					 qsrc, quote_identifier(column), qsrc, qarch);
	plan = SPI_prepare(sql.data, 3, argtypes);
	if (plan == NULL)
		elog(ERROR, "elfsofa: could not prepare \"%s\": %s", sql.data, SPI_result_code_string(SPI_result));
	if (nonatomic)
		SPI_keepplan(plan);		/* survives the commits between batches */

	ItemPointerSet(&last, 0, 0);
	for (;;)
	{
		Datum		v[3];
		bool		isnull;
		int64		got,
					picked;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		v[0] = TimestampTzGetDatum(cutoff);
		v[1] = Int32GetDatum(batch);
		v[2] = PointerGetDatum(&last);
		rc = SPI_execute_plan(plan, v, NULL, false, 0);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "elfsofa: archive batch failed (%s)", SPI_result_code_string(rc));
		got = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		picked = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		if (picked == 0)
			break;
		ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)),
						&last);
		moved += got;
		batches++;
		snprintf(activity, sizeof(activity), "elfsofa.archive_rows %s: %lld rows moved in %lld batches",
				 qsrc, (long long) moved, (long long) batches);
		pgstat_report_activity(STATE_RUNNING, activity);
		SPI_freetuptable(SPI_tuptable);
		if (nonatomic)
		{
			SPI_commit();
			ES_SPI_START_TRANSACTION();
		}
	}
	if (nonatomic)
		SPI_freeplan(plan);
	SPI_finish();

	if (nonatomic)
	{
		/* procedure: return the count through the INOUT parameter */
		TupleDesc	tupdesc;
		Datum		values[1];
		bool		nulls[1] = {false};
		HeapTuple	tuple;

		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "elfsofa: archive_rows_batched must have an INOUT parameter");
		tupdesc = BlessTupleDesc(tupdesc);
		values[0] = Int64GetDatum(moved);
		tuple = heap_form_tuple(tupdesc, values, nulls);
		PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
	}
	if (fcinfo->context && IsA(fcinfo->context, CallContext))
	{
		/* CALL inside a transaction block: same work, one transaction */
		TupleDesc	tupdesc;
		Datum		values[1];
		bool		nulls[1] = {false};

		if (get_call_result_type(fcinfo, NULL, &tupdesc) == TYPEFUNC_COMPOSITE)
		{
			tupdesc = BlessTupleDesc(tupdesc);
			values[0] = Int64GetDatum(moved);
			PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
		}
	}
	PG_RETURN_INT64(moved);
}
