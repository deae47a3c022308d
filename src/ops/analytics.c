/*
 * analytics.c — reports from the shop's own data: sales per
 * period, co-purchase recommendations, restock suggestions and cart
 * conversion.  Every report is one SQL statement run through a cached plan;
 * C validates the arguments and streams the rows into a tuplestore.
 */
#include "ops/ops.h"

#include "utils/guc.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(elfsofa_sales_summary);
PG_FUNCTION_INFO_V1(elfsofa_recommend);
PG_FUNCTION_INFO_V1(elfsofa_restock_suggestions);
PG_FUNCTION_INFO_V1(elfsofa_cart_conversion);

int			es_guc_recommend_window_days = 365;
int			es_guc_restock_lookback_days = 28;

/* Called from _PG_init: the analytics settings. */
void
es_analytics_init(void)
{
	DefineCustomIntVariable("elfsofa.analytics_recommend_window_days",
							"recommend(): co-purchases of the last this many days (1-3650) count.",
							NULL, &es_guc_recommend_window_days, 365, 1, 3650, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("elfsofa.analytics_restock_lookback_days",
							"restock_suggestions(): daily rate is measured over the last this many days (1-365).",
							NULL, &es_guc_restock_lookback_days, 28, 1, 365, PGC_USERSET, 0, NULL, NULL, NULL);
}

#define ES_MAX_BUCKETS		100000

/*
 * Both range predicates sit on created_at, the partition key, so only the
 * partitions of the period are read (plan-time pruning for custom plans,
 * executor-start pruning for the generic one).  Cancelled orders are left
 * out: their stock went back and no money was taken.  Returned orders stay:
 * they were sales in their period.  Empty buckets are reported as zeros.
 */
static EsPlan sales_plan = {
	"WITH o AS (SELECT date_trunc($3, created_at) AS b, count(*) AS n, sum(total) AS revenue "
	"             FROM elfsofa.orders "
	"            WHERE created_at >= $1 AND created_at < $2 AND status <> 'cancelled' "
	"            GROUP BY 1), "
	"u AS (SELECT date_trunc($3, l.created_at) AS b, sum(l.quantity) AS units "
	"        FROM elfsofa.order_lines l "
	"       WHERE l.created_at >= $1 AND l.created_at < $2 "
	"         AND NOT EXISTS (SELECT 1 FROM elfsofa.orders c "
	"                          WHERE c.id = l.order_id AND c.created_at = l.created_at "
	"                            AND c.created_at >= $1 AND c.created_at < $2 "
	"                            AND c.status = 'cancelled') "
	"       GROUP BY 1), "
	"s AS (SELECT b FROM generate_series(date_trunc($3, $1), $2, ('1 ' || $3)::interval) AS b "
	"       WHERE b < $2) "
	"SELECT s.b, COALESCE(o.n, 0)::bigint, COALESCE(u.units, 0)::bigint, "
	"       COALESCE(o.revenue, 0)::numeric, round(o.revenue / o.n, 2)::numeric "
	"  FROM s LEFT JOIN o ON o.b = s.b LEFT JOIN u ON u.b = s.b ORDER BY s.b",
	3, {TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID}
};

/*
 * score = share of the sku's orders (in the window, not cancelled) that also
 * held the product.  Runs with hash and merge joins off (see 70_ops.sql): the
 * co-lines are then found by one primary-key probe per order, in the one
 * partition its created_at prunes to, instead of hashing every line.
 */
static EsPlan recommend_plan = {
	"WITH t AS (SELECT id FROM elfsofa.products WHERE sku = $1), "
	"b AS MATERIALIZED (SELECT l.order_id, l.created_at FROM elfsofa.order_lines l, t "
	"       WHERE l.product_id = t.id AND l.created_at >= now() - make_interval(days => $3) "
	"         AND NOT EXISTS (SELECT 1 FROM elfsofa.orders c WHERE c.id = l.order_id "
	"                          AND c.created_at = l.created_at AND c.status = 'cancelled')), "
	"co AS (SELECT l2.product_id, count(*) AS n "
	"         FROM b CROSS JOIN LATERAL (SELECT x.product_id FROM elfsofa.order_lines x "
	"                                     WHERE x.order_id = b.order_id AND x.created_at = b.created_at) l2 "
	"        WHERE l2.product_id <> (SELECT id FROM t) GROUP BY 1) "
	"SELECT p.sku, round(co.n::numeric / (SELECT count(*) FROM b), 4) AS score "
	"  FROM co JOIN elfsofa.products p ON p.id = co.product_id "
	" WHERE p.is_active ORDER BY score DESC, p.sku LIMIT $2",
	3, {TEXTOID, INT4OID, INT4OID}
};

static EsPlan sku_exists_plan = {
	"SELECT 1 FROM elfsofa.products WHERE sku = $1",
	1, {TEXTOID}
};

/*
 * Demand per product and location over the look-back window; suggest enough
 * to cover horizon_days of that demand plus the product's low-stock threshold.
 */
static EsPlan restock_plan = {
	"WITH sold AS (SELECT l.product_id, l.location, sum(l.quantity) AS units "
	"                FROM elfsofa.order_lines l "
	"               WHERE l.created_at >= now() - make_interval(days => $2) "
	"                 AND NOT EXISTS (SELECT 1 FROM elfsofa.orders c WHERE c.id = l.order_id "
	"                                  AND c.created_at = l.created_at AND c.status = 'cancelled') "
	"               GROUP BY 1, 2), "
	"k AS (SELECT product_id, location FROM elfsofa.stock_levels "
	"      UNION SELECT product_id, location FROM sold), "
	"r AS (SELECT p.sku, k.location, COALESCE(sl.on_hand - sl.reserved, 0) AS available, "
	"             round(COALESCE(s.units, 0)::numeric / $2, 3) AS daily_rate, p.low_stock_threshold AS threshold "
	"        FROM k JOIN elfsofa.products p ON p.id = k.product_id "
	"        LEFT JOIN (SELECT product_id, location, sum(on_hand) AS on_hand, sum(reserved) AS reserved "
	"                     FROM elfsofa.stock_levels GROUP BY 1, 2) sl "
	"               ON sl.product_id = k.product_id AND sl.location = k.location "
	"        LEFT JOIN sold s ON s.product_id = k.product_id AND s.location = k.location "
	"       WHERE p.is_active) "
	"SELECT sku, location, available::int, daily_rate, "
	"       CASE WHEN daily_rate > 0 THEN round(available / daily_rate, 1) END, "
	"       ceil(daily_rate * $1 + threshold - available)::int "
	"  FROM r WHERE daily_rate * $1 + threshold - available > 0 "
	" ORDER BY 5 NULLS LAST, 6 DESC, sku, location",
	2, {INT4OID, INT4OID}
};

static EsPlan conversion_plan = {
	"SELECT count(*), count(*) FILTER (WHERE status = 'checked_out'), "
	"       count(*) FILTER (WHERE status = 'abandoned'), count(*) FILTER (WHERE status = 'open'), "
	"       CASE WHEN count(*) = 0 THEN 0.0000 "
	"            ELSE round(count(*) FILTER (WHERE status = 'checked_out')::numeric / count(*), 4) END "
	"  FROM elfsofa.carts WHERE created_at >= $1 AND created_at < $2",
	2, {TIMESTAMPTZOID, TIMESTAMPTZOID}
};

/* Runs plan and returns its rows as the function's result set (materialize mode). */
static void
return_rows(FunctionCallInfo fcinfo, EsPlan *plan, Datum *values, const char *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	MemoryContext oldcxt;
	Datum	   *row;
	bool	   *rownulls;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) || !(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "elfsofa: return type must be a row type");

	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	tupdesc = CreateTupleDescCopy(tupdesc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcxt);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = tupdesc;

	row = palloc(sizeof(Datum) * tupdesc->natts);
	rownulls = palloc(sizeof(bool) * tupdesc->natts);

	SPI_connect();
	es_exec(plan, values, nulls, true, 0);
	if (SPI_tuptable->tupdesc->natts != tupdesc->natts)
		elog(ERROR, "elfsofa: report returned %d columns, expected %d",
			 SPI_tuptable->tupdesc->natts, tupdesc->natts);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		for (int c = 0; c < tupdesc->natts; c++)
			row[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1, &rownulls[c]);
		tuplestore_putvalues(store, tupdesc, row, rownulls);
	}
	SPI_finish();
}

/* from_ts/to_ts must be finite with from_ts < to_ts; sets *span to the width in µs. */
static void
require_period(FunctionCallInfo fcinfo, TimestampTz *from, TimestampTz *to)
{
	es_arg_not_null(fcinfo, 0, "from_ts");
	es_arg_not_null(fcinfo, 1, "to_ts");
	*from = PG_GETARG_TIMESTAMPTZ(0);
	*to = PG_GETARG_TIMESTAMPTZ(1);
	if (TIMESTAMP_NOT_FINITE(*from) || TIMESTAMP_NOT_FINITE(*to))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("period bounds must be finite"),
				 errdetail("Arguments \"from_ts\" and \"to_ts\" were %s and %s.",
						   pstrdup(timestamptz_to_str(*from)), pstrdup(timestamptz_to_str(*to)))));
	if (*from >= *to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_ts must be before to_ts"),
				 errdetail("Arguments \"from_ts\" and \"to_ts\" were %s and %s.",
						   pstrdup(timestamptz_to_str(*from)), pstrdup(timestamptz_to_str(*to)))));
}

/* An int argument within [lo, hi], or dflt when NULL. */
static int32
int_arg(FunctionCallInfo fcinfo, int argno, const char *argname, int32 dflt, int32 lo, int32 hi)
{
	int32		v;

	if (PG_ARGISNULL(argno))
		return dflt;
	v = PG_GETARG_INT32(argno);
	if (v < lo || v > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %d and %d", argname, lo, hi),
				 errdetail("Argument \"%s\" was %d.", argname, v)));
	return v;
}

/* elfsofa.sales_summary(from_ts, to_ts, grain) */
Datum
elfsofa_sales_summary(PG_FUNCTION_ARGS)
{
	static const struct
	{
		const char *name;
		int64		usecs;		/* shortest bucket, for the bucket-count limit */
	}			grains[] = {
		{"hour", USECS_PER_HOUR},
		{"day", USECS_PER_DAY},
		{"week", 7 * USECS_PER_DAY},
		{"month", 28 * USECS_PER_DAY},
	};
	TimestampTz from,
				to;
	char	   *grain = es_require_text(fcinfo, 2, "grain", 16);
	int64		width = 0;
	int64		span;
	Datum		values[3];

	require_period(fcinfo, &from, &to);
	for (int i = 0; i < (int) lengthof(grains); i++)
		if (strcmp(grain, grains[i].name) == 0)
			width = grains[i].usecs;
	if (width == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid grain"),
				 errdetail("Argument \"grain\" was \"%s\".", grain),
				 errhint("Grains are hour, day, week and month.")));
	/* the widest finite period (4713 BC .. 294276 AD) overflows to - from */
	if (pg_sub_s64_overflow(to, from, &span) || span / width + 2 > ES_MAX_BUCKETS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("period has too many %s buckets", grain),
				 errdetail("From %s to %s by %s exceeds %d buckets.",
						   pstrdup(timestamptz_to_str(from)), pstrdup(timestamptz_to_str(to)), grain, ES_MAX_BUCKETS),
				 errhint("Use a coarser grain or a shorter period.")));

	values[0] = TimestampTzGetDatum(from);
	values[1] = TimestampTzGetDatum(to);
	values[2] = CStringGetTextDatum(grain);
	return_rows(fcinfo, &sales_plan, values, NULL);
	return (Datum) 0;
}

/* elfsofa.recommend(sku, max_results) */
Datum
elfsofa_recommend(PG_FUNCTION_ARGS)
{
	char	   *sku = es_require_text(fcinfo, 0, "sku", 64);
	int32		max_results = int_arg(fcinfo, 1, "max_results", 5, 1, 100);
	Datum		values[3];

	values[0] = CStringGetTextDatum(sku);
	SPI_connect();
	es_exec(&sku_exists_plan, values, NULL, true, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("unknown sku"),
				 errdetail("No product has sku \"%s\".", sku)));
	SPI_finish();

	values[1] = Int32GetDatum(max_results);
	values[2] = Int32GetDatum(es_guc_recommend_window_days);
	return_rows(fcinfo, &recommend_plan, values, NULL);
	return (Datum) 0;
}

/* elfsofa.restock_suggestions(horizon_days) */
Datum
elfsofa_restock_suggestions(PG_FUNCTION_ARGS)
{
	Datum		values[2];

	values[0] = Int32GetDatum(int_arg(fcinfo, 0, "horizon_days", 14, 1, 365));
	values[1] = Int32GetDatum(es_guc_restock_lookback_days);
	return_rows(fcinfo, &restock_plan, values, NULL);
	return (Datum) 0;
}

/* elfsofa.cart_conversion(from_ts, to_ts) */
Datum
elfsofa_cart_conversion(PG_FUNCTION_ARGS)
{
	TimestampTz from,
				to;
	Datum		values[2];

	require_period(fcinfo, &from, &to);
	values[0] = TimestampTzGetDatum(from);
	values[1] = TimestampTzGetDatum(to);
	return_rows(fcinfo, &conversion_plan, values, NULL);
	return (Datum) 0;
}
