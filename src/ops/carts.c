/*
 * carts.c — the add-to-cart flow: one open cart per customer, items
 * priced from the catalog, checkout through process_order in the caller's
 * transaction.  Checked-out and abandoned carts stay for conversion analytics.
 */
#include "ops/ops.h"
#include "customers/customers.h"
#include "utils/guc.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(elfsofa_cart_add);
PG_FUNCTION_INFO_V1(elfsofa_cart_remove);
PG_FUNCTION_INFO_V1(elfsofa_cart_checkout);
PG_FUNCTION_INFO_V1(elfsofa_abandon_carts);
PG_FUNCTION_INFO_V1(elfsofa_cart_get);

int			es_guc_cart_abandon_hours = 72;

/* Called from _PG_init: the carts' settings. */
void
es_carts_init(void)
{
	DefineCustomIntVariable("elfsofa.cart_abandon_after_hours",
							"abandon_carts(): open carts untouched this long (1-87600 hours) are abandoned.",
							NULL, &es_guc_cart_abandon_hours, 72, 1, 87600, PGC_USERSET, 0, NULL, NULL, NULL);
}

static EsPlan product_plan = {
	"SELECT id, is_active FROM elfsofa.products WHERE sku = $1",
	1, {TEXTOID}
};

/* Opens the cart if needed (locking it) and adds to the line in one statement. */
static EsPlan add_plan = {
	"WITH c AS (INSERT INTO elfsofa.carts AS c (customer_id) VALUES ($1) "
	"           ON CONFLICT (customer_id) WHERE status = 'open' "
	"           DO UPDATE SET updated_at = now() RETURNING c.id) "
	"INSERT INTO elfsofa.cart_items AS ci (cart_id, product_id, quantity) "
	"SELECT c.id, $2, $3 FROM c "
	"ON CONFLICT (cart_id, product_id) DO UPDATE "
	"   SET quantity = ci.quantity + EXCLUDED.quantity, updated_at = now() "
	"   WHERE ci.quantity + EXCLUDED.quantity <= $4 "
	"RETURNING ci.cart_id",
	4, {UUIDOID, INT8OID, INT4OID, INT4OID}
};

static EsPlan current_cart_plan = {
	"SELECT id FROM elfsofa.carts WHERE customer_id = $1 AND status = 'open'",
	1, {UUIDOID}
};

static EsPlan open_cart_plan = {
	"SELECT id FROM elfsofa.carts WHERE customer_id = $1 AND status = 'open' FOR UPDATE",
	1, {UUIDOID}
};

/* Exactly one of the two branches matches: take some units, or the whole line. */
static EsPlan remove_plan = {
	"WITH d AS (DELETE FROM elfsofa.cart_items WHERE cart_id = $1 AND product_id = $2 "
	"           AND ($3::int IS NULL OR quantity <= $3) RETURNING 1), "
	"u AS (UPDATE elfsofa.cart_items SET quantity = quantity - $3, updated_at = now() "
	"      WHERE cart_id = $1 AND product_id = $2 AND quantity > $3 RETURNING 1), "
	"t AS (UPDATE elfsofa.carts SET updated_at = now() WHERE id = $1) "
	"SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM u)",
	3, {INT8OID, INT8OID, INT4OID}
};

static EsPlan cart_json_plan = {
	"SELECT jsonb_build_object("
	"  'cart_id', c.id, 'customer_id', c.customer_id, 'status', c.status, "
	"  'items', COALESCE(jsonb_agg(jsonb_build_object('sku', p.sku, 'name', p.name, "
	"           'quantity', ci.quantity, 'unit_price', p.price, 'line_total', p.price * ci.quantity) "
	"           ORDER BY p.sku) FILTER (WHERE ci.product_id IS NOT NULL), '[]'), "
	"  'item_count', COALESCE(sum(ci.quantity), 0), "
	"  'total', COALESCE(sum(p.price * ci.quantity), 0.00), 'currency', 'THB') "
	"FROM elfsofa.carts c "
	"LEFT JOIN elfsofa.cart_items ci ON ci.cart_id = c.id "
	"LEFT JOIN elfsofa.products p ON p.id = ci.product_id "
	"WHERE c.id = $1 GROUP BY c.id",
	1, {INT8OID}
};

static EsPlan order_data_plan = {
	"SELECT jsonb_build_object('customer_id', $1::uuid, "
	"  'items', jsonb_agg(jsonb_build_object('sku', p.sku, 'quantity', ci.quantity) ORDER BY p.sku), "
	"  'idempotency_key', 'cart-' || $2::bigint) "
	"FROM elfsofa.cart_items ci JOIN elfsofa.products p ON p.id = ci.product_id "
	"WHERE ci.cart_id = $2 HAVING count(*) > 0",
	2, {UUIDOID, INT8OID}
};

static EsPlan process_order_plan = {
	"SELECT elfsofa.process_order(order_data => $1, payment_info => $2)",
	2, {JSONBOID, JSONBOID}
};

static EsPlan close_cart_plan = {
	"UPDATE elfsofa.carts SET status = 'checked_out', order_id = ($2::jsonb ->> 'order_id')::bigint, "
	"       closed_at = now(), updated_at = now() "
	" WHERE id = $1 "
	"RETURNING $2::jsonb || jsonb_build_object('cart_id', id)",
	2, {INT8OID, JSONBOID}
};

static EsPlan abandon_plan = {
	"WITH a AS (UPDATE elfsofa.carts SET status = 'abandoned', closed_at = now() "
	"           WHERE status = 'open' AND updated_at < now() - $1 RETURNING 1) "
	"SELECT count(*) FROM a",
	1, {INTERVALOID}
};

/*
 * The customer the call acts for (orders.c rules): customer_id, or the
 * signed-in user's own customer when it is NULL; another user's customer is
 * 42501, an unknown one PT404, neither given nor signed in 22023.  The
 * functions run as the owner (98_security.sql), so this is the only guard.
 * SPI must be connected.
 */
static Datum
require_customer(FunctionCallInfo fcinfo, int argno)
{
	const char *given = NULL;

	if (!PG_ARGISNULL(argno))
		given = DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(argno)));
	return es_caller_customer(given, "customer_id");
}

/* Product id of sku (PT404 when unknown, or inactive when active_only). */
static int64
require_product(const char *sku, bool active_only)
{
	Datum		arg = CStringGetTextDatum(sku);
	bool		isnull;

	es_exec(&product_plan, &arg, NULL, true, 1);
	if (SPI_processed == 0 ||
		(active_only && !DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull))))
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("unknown sku"),
				 errdetail(SPI_processed == 0 ? "No product has sku \"%s\"." : "Product \"%s\" is not for sale.", sku)));
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* The cart as jsonb, copied out of SPI memory; call before SPI_finish. */
static Datum
cart_json(int64 cart_id)
{
	Datum		arg = Int64GetDatum(cart_id);
	bool		isnull;

	es_exec(&cart_json_plan, &arg, NULL, false, 1);
	return SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
							 false, -1);
}

/* elfsofa.cart_add(customer_id, sku, quantity) returns the cart */
Datum
elfsofa_cart_add(PG_FUNCTION_ARGS)
{
	char	   *sku = es_require_text(fcinfo, 1, "sku", 64);
	int32		qty = es_require_quantity(fcinfo, 2, "quantity");
	Datum		values[4];
	bool		isnull;
	int64		cart_id;
	Datum		result;

	SPI_connect();
	values[0] = require_customer(fcinfo, 0);
	values[1] = Int64GetDatum(require_product(sku, true));
	values[2] = Int32GetDatum(qty);
	values[3] = Int32GetDatum(ES_MAX_QUANTITY);
	es_exec(&add_plan, values, NULL, false, 0);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cart quantity must not exceed %d", ES_MAX_QUANTITY),
				 errdetail("Adding %d of \"%s\" would take the cart line past %d.", qty, sku, ES_MAX_QUANTITY)));
	cart_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	result = cart_json(cart_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/* elfsofa.cart_remove(customer_id, sku, quantity) returns the cart */
Datum
elfsofa_cart_remove(PG_FUNCTION_ARGS)
{
	char	   *sku = es_require_text(fcinfo, 1, "sku", 64);
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	Datum		customer;
	bool		isnull;
	int64		cart_id;
	Datum		result;

	if (PG_ARGISNULL(2))
		nulls[2] = 'n';
	else
		values[2] = Int32GetDatum(es_require_quantity(fcinfo, 2, "quantity"));

	SPI_connect();
	customer = require_customer(fcinfo, 0);
	values[1] = Int64GetDatum(require_product(sku, false));
	es_exec(&open_cart_plan, &customer, NULL, false, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("sku is not in the cart"),
				 errdetail("Customer \"%s\" has no open cart.",
						   DatumGetCString(DirectFunctionCall1(uuid_out, customer)))));
	cart_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	values[0] = Int64GetDatum(cart_id);
	es_exec(&remove_plan, values, nulls, false, 0);
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) == 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("sku is not in the cart"),
				 errdetail("The open cart of customer \"%s\" holds no \"%s\".",
						   DatumGetCString(DirectFunctionCall1(uuid_out, customer)), sku)));
	result = cart_json(cart_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/* elfsofa.cart_checkout(customer_id, payment_info): cart → process_order → checked_out */
Datum
elfsofa_cart_checkout(PG_FUNCTION_ARGS)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	Datum		customer;
	bool		isnull;
	int64		cart_id = 0;
	Datum		order_data = (Datum) 0;
	Datum		response;
	Datum		result;

	SPI_connect();
	customer = require_customer(fcinfo, 0);
	es_exec(&open_cart_plan, &customer, NULL, false, 1);
	if (SPI_processed > 0)
	{
		cart_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		values[0] = customer;
		values[1] = Int64GetDatum(cart_id);
		es_exec(&order_data_plan, values, NULL, true, 1);
		if (SPI_processed > 0)
			order_data = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	}
	if (order_data == (Datum) 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cart is empty"),
				 errdetail("Customer \"%s\" has no items in an open cart.",
						   DatumGetCString(DirectFunctionCall1(uuid_out, customer))),
				 errhint("Add items with cart_add first.")));

	values[0] = order_data;
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	else
		values[1] = PG_GETARG_DATUM(1);
	es_exec(&process_order_plan, values, nulls, false, 1);
	response = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "elfsofa: process_order returned null");

	values[0] = Int64GetDatum(cart_id);
	values[1] = response;
	nulls[1] = ' ';
	es_exec(&close_cart_plan, values, nulls, false, 0);
	if (SPI_processed != 1)
		elog(ERROR, "elfsofa: cart %lld vanished during checkout", (long long) cart_id);
	result = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
							   false, -1);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/* elfsofa.cart_get(customer_id) returns the open cart, or an empty one (cart_id null) */
Datum
elfsofa_cart_get(PG_FUNCTION_ARGS)
{
	Datum		customer;
	bool		isnull;
	Datum		result;

	SPI_connect();
	customer = require_customer(fcinfo, 0);
	es_exec(&current_cart_plan, &customer, NULL, true, 1);
	if (SPI_processed > 0)
		result = cart_json(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
	else
	{
		char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out, customer));

		result = SPI_datumTransfer(DirectFunctionCall1(jsonb_in, CStringGetDatum(psprintf(
			"{\"cart_id\": null, \"customer_id\": \"%s\", \"status\": \"open\", \"items\": [], "
			"\"item_count\": 0, \"total\": 0.00, \"currency\": \"THB\"}", id))), false, -1);
	}
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/* elfsofa.abandon_carts(idle) marks stale open carts abandoned */
Datum
elfsofa_abandon_carts(PG_FUNCTION_ARGS)
{
	Datum		idle;
	Interval   *iv;
	bool		isnull;
	int64		n;

	if (PG_ARGISNULL(0))
	{
		iv = palloc0(sizeof(Interval));
		iv->time = (int64) es_guc_cart_abandon_hours * USECS_PER_HOUR;
		idle = IntervalPGetDatum(iv);
	}
	else
		idle = PG_GETARG_DATUM(0);
	iv = DatumGetIntervalP(idle);
	if (iv->month < 0 || iv->day < 0 || iv->time < 0 ||
		(iv->month == 0 && iv->day == 0 && iv->time == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idle must be a positive interval"),
				 errdetail("Argument \"idle\" was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out, idle)))));

	SPI_connect();
	es_exec(&abandon_plan, &idle, NULL, false, 0);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(n);
}
