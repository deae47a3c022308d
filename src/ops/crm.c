/*
 * crm.c — CRM: interaction tracking and per-customer insights
 * (orders, lifetime value, RFM segment, favourite products).
 */
#include "ops/ops.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(elfsofa_record_interaction);
PG_FUNCTION_INFO_V1(elfsofa_customer_insights);

#define ES_MAX_INTERACTION_BODY		65536

static EsPlan interaction_plan = {
	"INSERT INTO elfsofa.customer_interactions (customer_id, kind, channel, body) "
	"SELECT id, $2, $3, $4 FROM elfsofa.customers WHERE id = $1 RETURNING id",
	4, {UUIDOID, TEXTOID, TEXTOID, JSONBOID}
};

/*
 * One statement so the figures come from one snapshot.  RFM scores use fixed
 * shop-sized bands (not quintiles over all customers), so one customer's
 * profile costs only that customer's orders.
 */
static EsPlan insights_plan = {
	"WITH c AS (SELECT id, email, full_name, created_at FROM elfsofa.customers WHERE id = $1), "
	"o AS (SELECT count(*) FILTER (WHERE status NOT IN ('cancelled', 'returned')) AS n, "
	"             count(*) FILTER (WHERE status = 'cancelled') AS n_cancelled, "
	"             count(*) FILTER (WHERE status = 'returned') AS n_returned, "
	"             COALESCE(sum(total) FILTER (WHERE status NOT IN ('cancelled', 'returned')), 0.00) AS ltv, "
	"             min(created_at) FILTER (WHERE status NOT IN ('cancelled', 'returned')) AS first_at, "
	"             max(created_at) FILTER (WHERE status NOT IN ('cancelled', 'returned')) AS last_at "
	"        FROM elfsofa.orders WHERE customer_id = $1), "
	"fav AS (SELECT p.sku, p.name, sum(l.quantity) AS units, count(*) AS orders "
	"          FROM elfsofa.orders o "
	"          JOIN elfsofa.order_lines l ON l.order_id = o.id AND l.created_at = o.created_at "
	"          JOIN elfsofa.products p ON p.id = l.product_id "
	"         WHERE o.customer_id = $1 AND o.status NOT IN ('cancelled', 'returned') "
	"         GROUP BY p.sku, p.name ORDER BY units DESC, orders DESC, p.sku LIMIT 5), "
	"i AS (SELECT count(*) AS n, max(created_at) AS last_at "
	"        FROM elfsofa.customer_interactions WHERE customer_id = $1), "
	"s AS (SELECT CASE WHEN o.n = 0 THEN NULL "
	"                  WHEN now() - o.last_at <= interval '30 days' THEN 5 "
	"                  WHEN now() - o.last_at <= interval '60 days' THEN 4 "
	"                  WHEN now() - o.last_at <= interval '90 days' THEN 3 "
	"                  WHEN now() - o.last_at <= interval '180 days' THEN 2 ELSE 1 END AS r, "
	"             CASE WHEN o.n = 0 THEN NULL WHEN o.n >= 10 THEN 5 WHEN o.n >= 5 THEN 4 "
	"                  WHEN o.n >= 3 THEN 3 WHEN o.n >= 2 THEN 2 ELSE 1 END AS f, "
	"             CASE WHEN o.n = 0 THEN NULL WHEN o.ltv >= 20000 THEN 5 WHEN o.ltv >= 10000 THEN 4 "
	"                  WHEN o.ltv >= 5000 THEN 3 WHEN o.ltv >= 2000 THEN 2 ELSE 1 END AS m "
	"        FROM o) "
	"SELECT jsonb_build_object("
	"  'customer_id', c.id, 'email', c.email, 'full_name', c.full_name, 'customer_since', c.created_at, "
	"  'orders', o.n, 'cancelled_orders', o.n_cancelled, 'returned_orders', o.n_returned, "
	"  'lifetime_value', o.ltv, "
	"  'average_order', CASE WHEN o.n > 0 THEN round(o.ltv / o.n, 2) END, "
	"  'first_order_at', o.first_at, 'last_order_at', o.last_at, "
	"  'days_since_last_order', floor(extract(epoch FROM now() - o.last_at) / 86400)::int, "
	"  'rfm', jsonb_build_object('recency', s.r, 'frequency', s.f, 'monetary', s.m, "
	"         'segment', CASE WHEN o.n = 0 THEN 'prospect' "
	"                         WHEN s.r >= 4 AND s.f >= 4 THEN 'champion' "
	"                         WHEN s.r >= 3 AND s.f >= 3 THEN 'loyal' "
	"                         WHEN s.r >= 4 AND s.f = 1 THEN 'new' "
	"                         WHEN s.r >= 3 THEN 'promising' "
	"                         WHEN s.f >= 3 OR s.m >= 4 THEN 'at_risk' "
	"                         WHEN s.r = 2 THEN 'hibernating' ELSE 'lost' END), "
	"  'favourite_products', COALESCE((SELECT jsonb_agg(jsonb_build_object('sku', sku, 'name', name, "
	"         'units', units, 'orders', orders) ORDER BY units DESC, orders DESC, sku) FROM fav), '[]'), "
	"  'interactions', i.n, 'last_interaction_at', i.last_at) "
	"FROM c, o, i, s",
	1, {UUIDOID}
};

/* kind and channel are short lower-case words: note, call, line, chat, ... */
static char *
require_word(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	char	   *s = es_require_text(fcinfo, argno, argname, 50);

	for (const char *c = s; *c; c++)
	{
		if (!((*c >= 'a' && *c <= 'z') || (c > s && ((*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.'))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid %s", argname),
					 errdetail("Argument \"%s\" was \"%s\".", argname, s),
					 errhint("Use a lower-case word of a-z, 0-9, \"_\", \"-\" and \".\" starting with a letter, e.g. \"line\" or \"complaint\".")));
	}
	return s;
}

static void
unknown_customer(Datum id)
{
	ereport(ERROR,
			(errcode(ES_ERRCODE_NOT_FOUND),
			 errmsg("unknown customer"),
			 errdetail("No customer has id \"%s\".",
					   DatumGetCString(DirectFunctionCall1(uuid_out, id)))));
}

static Datum
require_customer_id(FunctionCallInfo fcinfo)
{
	es_arg_not_null(fcinfo, 0, "customer_id");
	return PG_GETARG_DATUM(0);
}

/* elfsofa.record_interaction(customer_id, kind, channel, body) returns the new id */
Datum
elfsofa_record_interaction(PG_FUNCTION_ARGS)
{
	Datum		values[4];
	bool		isnull;
	int64		id;

	values[0] = require_customer_id(fcinfo);
	values[1] = CStringGetTextDatum(require_word(fcinfo, 1, "kind"));
	values[2] = CStringGetTextDatum(require_word(fcinfo, 2, "channel"));
	if (PG_ARGISNULL(3))
		values[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	else
	{
		Jsonb	   *body = PG_GETARG_JSONB_P(3);

		es_require_object(body, "body", ES_MAX_INTERACTION_BODY);
		values[3] = JsonbPGetDatum(body);
	}

	SPI_connect();
	es_exec(&interaction_plan, values, NULL, false, 0);
	if (SPI_processed == 0)
		unknown_customer(values[0]);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* elfsofa.customer_insights(customer_id) returns the profile as jsonb */
Datum
elfsofa_customer_insights(PG_FUNCTION_ARGS)
{
	Datum		id = require_customer_id(fcinfo);
	bool		isnull;
	Datum		result;

	SPI_connect();
	es_exec(&insights_plan, &id, NULL, true, 0);
	if (SPI_processed == 0)
		unknown_customer(id);
	result = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
							   false, -1);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
