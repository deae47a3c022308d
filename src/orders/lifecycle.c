/*
 * lifecycle.c — what happens to an order after process_order: status changes
 * along the transition table (README, "Order status") with their stock effects (release on
 * cancel, consume on ship, put back on return), the trigger that keeps direct
 * UPDATEs from breaking that table, payments recorded from webhooks, and the
 * expiry of stale unpaid transfer orders.
 */
#include "orders/orders.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(elfsofa_set_order_status);
PG_FUNCTION_INFO_V1(elfsofa_cancel_order);
PG_FUNCTION_INFO_V1(elfsofa_record_payment);
PG_FUNCTION_INFO_V1(elfsofa_expire_unpaid_orders);
PG_FUNCTION_INFO_V1(elfsofa_orders_status_guard);

/* True while this file's own UPDATE of orders.status runs (checked by the trigger). */
static bool in_status_change = false;

typedef enum StockEffect
{
	EFFECT_NONE,
	EFFECT_RELEASE,				/* reserved -= q */
	EFFECT_SHIP,				/* on_hand -= q, reserved -= q */
	EFFECT_RETURN				/* on_hand += q */
} StockEffect;

static const char *const order_statuses[] = {
	"pending", "confirmed", "packed", "shipped", "delivered", "cancelled", "returned", NULL
};

/* The transition table (README, "Order status"), and what each allowed step does to stock. */
static const struct
{
	const char *from;
	const char *to;
	StockEffect effect;
}			transitions[] = {
	{"pending", "confirmed", EFFECT_NONE},
	{"pending", "cancelled", EFFECT_RELEASE},
	{"confirmed", "packed", EFFECT_NONE},
	{"confirmed", "cancelled", EFFECT_RELEASE},
	{"packed", "shipped", EFFECT_SHIP},
	{"packed", "cancelled", EFFECT_RELEASE},
	{"shipped", "delivered", EFFECT_NONE},
	{"delivered", "returned", EFFECT_RETURN},
};

/* Whether from -> to is a step of the table; *effect (when given) says what it does to stock. */
static bool
transition(const char *from, const char *to, StockEffect *effect)
{
	for (int i = 0; i < lengthof(transitions); i++)
		if (strcmp(transitions[i].from, from) == 0 && strcmp(transitions[i].to, to) == 0)
		{
			if (effect)
				*effect = transitions[i].effect;
			return true;
		}
	return false;
}

/* The statuses the table allows after from, for messages: "packed or cancelled". */
static const char *
allowed_from(const char *from)
{
	StringInfoData s;
	int			n = 0;

	initStringInfo(&s);
	for (int i = 0; i < lengthof(transitions); i++)
		if (strcmp(transitions[i].from, from) == 0)
			appendStringInfo(&s, "%s%s", n++ > 0 ? " or " : "", transitions[i].to);
	return n > 0 ? s.data : "nothing (it is final)";
}

static EsPlan lock_order_plan = {
	"SELECT created_at, status, order_number, payment_status, total, payment_method "
	"FROM elfsofa.orders WHERE id = $1 FOR NO KEY UPDATE",
	1, {INT8OID}
};

static EsPlan lines_plan = {
	"SELECT l.product_id, l.location, l.quantity, l.sku "
	"FROM elfsofa.order_lines l WHERE l.order_id = $1 AND l.created_at = $2 "
	"ORDER BY l.product_id, l.location <> 'main', l.location COLLATE \"C\"",
	2, {INT8OID, TIMESTAMPTZOID}
};

static EsPlan set_status_plan = {
	"UPDATE elfsofa.orders SET status = $3, updated_at = now() WHERE id = $1 AND created_at = $2",
	3, {INT8OID, TIMESTAMPTZOID, TEXTOID}
};

static void
unknown_order(int64 order_id)
{
	ereport(ERROR,
			(errcode(ES_ERRCODE_NOT_FOUND),
			 errmsg("unknown order"),
			 errdetail("order_id " INT64_FORMAT " matches no order.", order_id)));
}

static int64
require_order_id(FunctionCallInfo fcinfo)
{
	es_arg_not_null(fcinfo, 0, "order_id");
	return PG_GETARG_INT64(0);
}

/* An optional note or reason: NULL when absent or empty. */
static char *
optional_note(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	char	   *s = es_optional_text(fcinfo, argno, argname, ES_MAX_TEXT_LEN);

	return s && s[0] ? s : NULL;
}

/*
 * Moves one order to status `to` with its stock effects and events; SPI must
 * be connected.  The result is built in retcxt.
 */
static Jsonb *
change_status(int64 order_id, const char *to, const char *note, bool cancel, MemoryContext retcxt)
{
	Datum		arg = Int64GetDatum(order_id);
	Datum		created_at;
	char	   *from;
	char	   *order_number;
	char	   *payment_status;
	StockEffect effect;
	char	   *actor = es_actor();
	char	   *key = psprintf(INT64_FORMAT, order_id);
	bool		isnull;
	JsonbParseState *st = NULL;
	Jsonb	   *result;
	MemoryContext oldcxt;

	es_exec(&lock_order_plan, &arg, NULL, false, 1);
	if (SPI_processed == 0)
		unknown_order(order_id);
	created_at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	from = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	order_number = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	payment_status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);

	if (!transition(from, to, &effect))
		ereport(ERROR,
				(errcode(ES_ERRCODE_CONFLICT),
				 errmsg("illegal order status transition"),
				 errdetail("Order " INT64_FORMAT " is %s and cannot become %s.", order_id, from, to),
				 errhint("From %s an order can become %s.", from, allowed_from(from))));

	if (effect != EFFECT_NONE)
	{
		Datum		la[2] = {arg, created_at};
		SPITupleTable *lines;
		uint64		nlines;
		const char *reason = effect == EFFECT_RELEASE ? "release" : effect == EFFECT_SHIP ? "ship" : "return";

		es_exec(&lines_plan, la, NULL, false, 0);
		lines = SPI_tuptable;
		nlines = SPI_processed;
		/* lines come sorted by product and location: the same global lock order as process_order */
		for (uint64 i = 0; i < nlines; i++)
		{
			HeapTuple	t = lines->vals[i];
			int32		q = DatumGetInt32(SPI_getbinval(t, lines->tupdesc, 3, &isnull));
			char	   *sku = SPI_getvalue(t, lines->tupdesc, 4);
			char	   *location = SPI_getvalue(t, lines->tupdesc, 2);
			int32		d_on_hand = effect == EFFECT_RELEASE ? 0 : effect == EFFECT_SHIP ? -q : q;
			int32		d_reserved = effect == EFFECT_RETURN ? 0 : -q;
			int32		available;
			int32		reserved;

			if (!es_stock_apply(DatumGetInt64(SPI_getbinval(t, lines->tupdesc, 1, &isnull)), location,
								d_on_hand, d_reserved, reason, order_id, actor, note, &available, &reserved))
				elog(ERROR, "elfsofa: stock row of order " INT64_FORMAT " line %s@%s is missing", order_id, sku, location);

			es_emit_event("inventory.updated", sku,
						  es_stock_updated_json(sku, location, available + reserved, reserved,
												d_on_hand, d_reserved, reason, order_id));
		}
	}

	{
		Datum		sv[3] = {arg, created_at, CStringGetTextDatum(to)};

		in_status_change = true;
		PG_TRY();
		{
			es_exec(&set_status_plan, sv, NULL, false, 0);
		}
		PG_FINALLY();
		{
			in_status_change = false;
		}
		PG_END_TRY();
	}

	st = NULL;
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	es_jb_int(&st, "order_id", order_id);
	es_jb_str(&st, "order_number", order_number);
	es_jb_str(&st, "from", from);
	es_jb_str(&st, "to", to);
	es_jb_str(&st, "note", note);
	es_jb_str(&st, "actor", actor);
	es_emit_event("order.status.updated", key, es_jb_finish(&st));
	if (cancel)
	{
		st = NULL;
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		es_jb_int(&st, "order_id", order_id);
		es_jb_str(&st, "order_number", order_number);
		es_jb_str(&st, "previous_status", from);
		es_jb_str(&st, "reason", note);
		es_jb_str(&st, "payment_status", payment_status);
		es_emit_event("order.cancelled", key, es_jb_finish(&st));
	}

	oldcxt = MemoryContextSwitchTo(retcxt);
	st = NULL;
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	es_jb_int(&st, "order_id", order_id);
	es_jb_str(&st, "order_number", order_number);
	es_jb_str(&st, "status", to);
	es_jb_str(&st, "previous_status", from);
	es_jb_str(&st, "payment_status", payment_status);
	result = es_jb_finish(&st);
	MemoryContextSwitchTo(oldcxt);
	return result;
}

/* elfsofa.set_order_status(order_id, status, note) */
Datum
elfsofa_set_order_status(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	int64		order_id = require_order_id(fcinfo);
	char	   *status = es_require_text(fcinfo, 1, "status", 32);
	char	   *note = optional_note(fcinfo, 2, "note");
	bool		known = false;
	Jsonb	   *result;

	for (const char *const *s = order_statuses; *s; s++)
		known |= strcmp(*s, status) == 0;
	if (!known)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown order status"),
				 errdetail("Argument \"status\" was \"%s\".", status),
				 errhint("Use pending, confirmed, packed, shipped, delivered, cancelled or returned.")));

	SPI_connect();
	result = change_status(order_id, status, note, strcmp(status, "cancelled") == 0, callcxt);
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

/* elfsofa.cancel_order(order_id, reason): cancel before shipping, releasing reserved stock */
Datum
elfsofa_cancel_order(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	int64		order_id = require_order_id(fcinfo);
	char	   *reason = optional_note(fcinfo, 1, "reason");
	Jsonb	   *result;

	SPI_connect();
	result = change_status(order_id, "cancelled", reason, true, callcxt);
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

/*
 * BEFORE UPDATE OF status trigger on elfsofa.orders: a direct UPDATE may take
 * only a step of the transition table, and only one that moves no stock.
 */
Datum
elfsofa_orders_status_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	int			col;
	char	   *from;
	char	   *to;
	StockEffect effect;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("orders status guard must be a BEFORE UPDATE row trigger")));

	desc = td->tg_relation->rd_att;
	col = SPI_fnumber(desc, "status");
	from = SPI_getvalue(td->tg_trigtuple, desc, col);
	to = SPI_getvalue(td->tg_newtuple, desc, col);
	if (from == NULL || to == NULL || strcmp(from, to) == 0)
		return PointerGetDatum(td->tg_newtuple);

	if (!transition(from, to, &effect))
		ereport(ERROR,
				(errcode(ES_ERRCODE_CONFLICT),
				 errmsg("illegal order status transition"),
				 errdetail("Order %s is %s and cannot become %s.",
						   SPI_getvalue(td->tg_trigtuple, desc, SPI_fnumber(desc, "id")), from, to),
				 errhint("From %s an order can become %s.", from, allowed_from(from))));
	if (effect != EFFECT_NONE && !in_status_change)
		ereport(ERROR,
				(errcode(ES_ERRCODE_CONFLICT),
				 errmsg("order status change needs stock changes"),
				 errdetail("Order %s going from %s to %s must %s stock.",
						   SPI_getvalue(td->tg_trigtuple, desc, SPI_fnumber(desc, "id")), from, to,
						   effect == EFFECT_RELEASE ? "release" : effect == EFFECT_SHIP ? "consume" : "put back"),
				 errhint("Use elfsofa.set_order_status() or elfsofa.cancel_order().")));
	return PointerGetDatum(td->tg_newtuple);
}

/* ------------------------------------------------------------------------
 * Payments
 * ------------------------------------------------------------------------ */

static EsPlan payment_by_ref_plan = {
	"SELECT id, order_id, status FROM elfsofa.payments WHERE provider = $1 AND provider_ref = $2 FOR UPDATE",
	2, {TEXTOID, TEXTOID}
};

static EsPlan payment_insert_plan = {
	"INSERT INTO elfsofa.payments (order_id, order_created_at, method, amount, provider, provider_ref, status) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
	7, {INT8OID, TIMESTAMPTZOID, TEXTOID, NUMERICOID, TEXTOID, TEXTOID, TEXTOID}
};

static EsPlan payment_update_plan = {
	"UPDATE elfsofa.payments SET status = $2, updated_at = now() WHERE id = $1",
	2, {INT8OID, TEXTOID}
};

static EsPlan order_payment_plan = {
	"UPDATE elfsofa.orders SET payment_status = $3, payment_method = COALESCE(payment_method, $4), updated_at = now() "
	"WHERE id = $1 AND created_at = $2",
	4, {INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID}
};

static const char *const all_payment_statuses[] = {"pending", "authorized", "captured", "failed", "refunded", NULL};

/* Forward steps a provider's webhooks can take for one charge. */
static bool
payment_step_ok(const char *from, const char *to)
{
	if (strcmp(from, "pending") == 0)
		return strcmp(to, "authorized") == 0 || strcmp(to, "captured") == 0 || strcmp(to, "failed") == 0;
	if (strcmp(from, "authorized") == 0)
		return strcmp(to, "captured") == 0 || strcmp(to, "failed") == 0;
	if (strcmp(from, "captured") == 0)
		return strcmp(to, "refunded") == 0;
	return false;
}

/*
 * elfsofa.record_payment(order_id, payment_info): idempotent by
 * (provider, provider_ref), so a provider re-sending a webhook changes nothing.
 */
Datum
elfsofa_record_payment(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	int64		order_id = require_order_id(fcinfo);
	EsPayment	pay;
	Datum		arg = Int64GetDatum(order_id);
	Datum		created_at;
	Numeric		total;
	char	   *order_status;
	char	   *payment_status;
	const char *new_status;
	int64		payment_id = 0;
	bool		replayed = false;
	bool		isnull;
	JsonbParseState *st = NULL;
	Jsonb	   *result;

	if (!es_parse_payment(PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1), &pay, all_payment_statuses))
		es_bad_input("payment_info", "payment_info is required", "was null");

	SPI_connect();
	es_exec(&lock_order_plan, &arg, NULL, false, 1);
	if (SPI_processed == 0)
		unknown_order(order_id);
	created_at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	order_status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	payment_status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	total = DatumGetNumericCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));

	if (pay.amount == NULL)
		pay.amount = total;
	else if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(pay.amount), NumericGetDatum(total))) != 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_UNPROCESSABLE),
				 errmsg("payment amount differs from the order total"),
				 errdetail("payment_info.amount was %s but order " INT64_FORMAT " totals %s.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(pay.amount))),
						   order_id, DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(total))))));

	if (pay.provider_ref)
	{
		Datum		ra[2] = {CStringGetTextDatum(pay.provider), CStringGetTextDatum(pay.provider_ref)};

		es_exec(&payment_by_ref_plan, ra, NULL, false, 1);
		if (SPI_processed > 0)
		{
			int64		other_order = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
			char	   *old_status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);

			payment_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			if (other_order != order_id)
				ereport(ERROR,
						(errcode(ES_ERRCODE_CONFLICT),
						 errmsg("payment reference belongs to another order"),
						 errdetail("payment_info.provider_ref \"%s\" of provider \"%s\" was recorded for order " INT64_FORMAT ".",
								   pay.provider_ref, pay.provider, other_order)));
			if (strcmp(old_status, pay.status) == 0)
				replayed = true;
			else if (!payment_step_ok(old_status, pay.status))
				ereport(ERROR,
						(errcode(ES_ERRCODE_CONFLICT),
						 errmsg("illegal payment status transition"),
						 errdetail("Payment \"%s\" is %s and cannot become %s.", pay.provider_ref, old_status, pay.status)));
			else
			{
				Datum		ua[2] = {Int64GetDatum(payment_id), CStringGetTextDatum(pay.status)};

				es_exec(&payment_update_plan, ua, NULL, false, 0);
			}
		}
	}

	if (payment_id == 0)
	{
		Datum		v[7];
		char		n[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

		v[0] = arg;
		v[1] = created_at;
		v[2] = CStringGetTextDatum(pay.method);
		v[3] = NumericGetDatum(pay.amount);
		if (pay.provider)
			v[4] = CStringGetTextDatum(pay.provider);
		else
			n[4] = 'n';
		if (pay.provider_ref)
			v[5] = CStringGetTextDatum(pay.provider_ref);
		else
			n[5] = 'n';
		v[6] = CStringGetTextDatum(pay.status);
		es_exec(&payment_insert_plan, v, n, false, 0);
		payment_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}

	if (!replayed)
	{
		new_status = es_payment_order_status(payment_status, pay.status);
		if (new_status && strcmp(new_status, payment_status) != 0)
		{
			Datum		oa[4] = {arg, created_at, CStringGetTextDatum(new_status), CStringGetTextDatum(pay.method)};

			es_exec(&order_payment_plan, oa, NULL, false, 0);
			payment_status = pstrdup(new_status);
		}
		st = NULL;
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		es_jb_int(&st, "payment_id", payment_id);
		es_jb_int(&st, "order_id", order_id);
		es_jb_str(&st, "method", pay.method);
		es_jb_num(&st, "amount", pay.amount);
		es_jb_str(&st, "provider", pay.provider);
		es_jb_str(&st, "provider_ref", pay.provider_ref);
		es_jb_str(&st, "status", pay.status);
		es_jb_str(&st, "payment_status", payment_status);
		es_jb_str(&st, "order_status", order_status);
		es_emit_event("payment.recorded", psprintf(INT64_FORMAT, order_id), es_jb_finish(&st));
	}

	MemoryContextSwitchTo(callcxt);
	st = NULL;
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	es_jb_int(&st, "payment_id", payment_id);
	es_jb_int(&st, "order_id", order_id);
	es_jb_str(&st, "status", pay.status);
	es_jb_str(&st, "payment_status", payment_status);
	es_jb_bool(&st, "replayed", replayed);
	result = es_jb_finish(&st);
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

static EsPlan stale_orders_plan = {
	"SELECT id FROM elfsofa.orders "
	"WHERE status = 'pending' AND payment_status = 'unpaid' AND payment_method IN ('promptpay', 'bank_transfer') "
	"  AND created_at < now() - $1 "
	"ORDER BY id FOR NO KEY UPDATE SKIP LOCKED",
	1, {INTERVALOID}
};

/*
 * Every stock row the given orders hold stock on, locked in the global order
 * (product id, then "main", then the other locations by name) in one
 * statement, so a run cancelling several orders never holds a row while
 * waiting for one that comes before it.
 */
static EsPlan lock_orders_stock_plan = {
	"SELECT s.product_id FROM elfsofa.stock_levels s "
	"WHERE (s.product_id, s.location) IN "
	"      (SELECT l.product_id, l.location FROM elfsofa.order_lines l WHERE l.order_id = ANY ($1)) "
	"ORDER BY s.product_id, s.location <> 'main', s.location COLLATE \"C\", s.bucket "
	"FOR NO KEY UPDATE OF s",
	1, {INT8ARRAYOID}
};

/* The same in a database still at the 1.0 schema (one row per location, no bucket). */
static EsPlan lock_orders_stock_v10_plan = {
	"SELECT s.product_id FROM elfsofa.stock_levels s "
	"WHERE (s.product_id, s.location) IN "
	"      (SELECT l.product_id, l.location FROM elfsofa.order_lines l WHERE l.order_id = ANY ($1)) "
	"ORDER BY s.product_id, s.location <> 'main', s.location COLLATE \"C\" "
	"FOR NO KEY UPDATE OF s",
	1, {INT8ARRAYOID}
};

/*
 * elfsofa.expire_unpaid_orders(older_than): upkeep; orders being worked on
 * right now (locked) are left for the next run.
 */
Datum
elfsofa_expire_unpaid_orders(PG_FUNCTION_ARGS)
{
	Interval   *older;
	Interval	zero = {0};
	SPITupleTable *stale;
	uint64		n;
	Datum		arg;
	char	   *reason;

	es_arg_not_null(fcinfo, 0, "older_than");
	older = PG_GETARG_INTERVAL_P(0);
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(older), IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative"),
				 errdetail("Argument \"older_than\" was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(older))))));

	SPI_connect();
	reason = "payment not received in time";
	arg = IntervalPGetDatum(older);
	es_exec(&stale_orders_plan, &arg, NULL, false, 0);
	stale = SPI_tuptable;
	n = SPI_processed;
	if (n > 0)
	{
		Datum	   *ids = palloc(sizeof(Datum) * n);
		Datum		la;

		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;

			ids[i] = SPI_getbinval(stale->vals[i], stale->tupdesc, 1, &isnull);
		}
		la = PointerGetDatum(construct_array(ids, (int) n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		/* all rows first: each order's own sorted release then only touches rows already held */
		es_exec(es_stock_has_buckets() ? &lock_orders_stock_plan : &lock_orders_stock_v10_plan, &la, NULL, false, 0);
	}
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(stale->vals[i], stale->tupdesc, 1, &isnull));

		change_status(id, "cancelled", reason, true, CurrentMemoryContext);
	}
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}
