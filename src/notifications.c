/*
 * notifications.c — the outbound notification queue (order confirmation,
 * shipping notice), fed from the outbox and drained by external senders.
 *
 * An AFTER INSERT trigger on elfsofa.events queues one row per (order, kind)
 * in the transaction that wrote the event, so a rolled-back order sends
 * nothing.  Senders claim due rows with FOR UPDATE SKIP LOCKED (each claim
 * counts an attempt and leases the row for elfsofa.notification_lease
 * seconds, so a sender that dies does not lose it), then complete or fail
 * them.  A failure is retried after base * 2^(attempts-1) seconds, capped;
 * after elfsofa.notification_max_attempts attempts the row is dead (the
 * dead-letter state), kept for a human to look at.
 */
#include "elfsofa.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/guc.h"

PG_FUNCTION_INFO_V1(es_queue_notifications);
PG_FUNCTION_INFO_V1(es_claim_notifications);
PG_FUNCTION_INFO_V1(es_complete_notification);
PG_FUNCTION_INFO_V1(es_fail_notification);

static int	es_guc_max_attempts = 5;
static int	es_guc_backoff_base = 30;
static int	es_guc_backoff_max = 3600;
static int	es_guc_lease = 300;

static EsPlan queue_plan = {
	"INSERT INTO elfsofa.notifications (kind, channel, recipient, customer_id, order_id, event_id, payload)"
	" SELECT $1, d.channel, d.recipient, o.customer_id, o.id, $3,"
	"        jsonb_build_object('order_id', o.id, 'order_number', o.order_number, 'status', o.status,"
	"                           'total', o.total, 'currency', o.currency, 'customer_name', c.full_name)"
	"   FROM elfsofa.orders o"
	"   JOIN elfsofa.customers c ON c.id = o.customer_id"
	"   LEFT JOIN elfsofa.notification_preferences p ON p.customer_id = c.id"
	"  CROSS JOIN LATERAL (SELECT CASE"
	"          WHEN p.channel = 'sms' AND coalesce(p.address, c.phone) IS NOT NULL THEN 'sms'"
	"          WHEN p.channel = 'line' AND p.address IS NOT NULL THEN 'line'"
	"          ELSE 'email' END) ch(channel)"
	"  CROSS JOIN LATERAL (SELECT ch.channel, CASE ch.channel"
	"          WHEN 'sms' THEN coalesce(p.address, c.phone)"
	"          WHEN 'line' THEN p.address"
	"          ELSE CASE WHEN p.channel = 'email' THEN coalesce(p.address, c.email) ELSE c.email END END) d(channel, recipient)"
	"  WHERE o.id = $2"
	" ON CONFLICT (order_id, kind) DO NOTHING",
	3, {TEXTOID, INT8OID, INT8OID}
};

static EsPlan expire_plan = {
	"UPDATE elfsofa.notifications SET status = 'dead', locked_by = NULL, updated_at = now(),"
	"       last_error = coalesce(last_error, 'lease expired after the last attempt')"
	" WHERE status = 'processing' AND visible_at <= now() AND attempts >= $1",
	1, {INT4OID}
};

static EsPlan claim_plan = {
	"UPDATE elfsofa.notifications n"
	"   SET status = 'processing', attempts = n.attempts + 1, locked_by = $1,"
	"       visible_at = now() + make_interval(secs => $3), updated_at = now()"
	"  FROM (SELECT id FROM elfsofa.notifications"
	"         WHERE status IN ('pending', 'processing') AND visible_at <= now()"
	"         ORDER BY visible_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) due"
	" WHERE n.id = due.id"
	" RETURNING n.*",
	3, {TEXTOID, INT4OID, INT4OID}
};

static EsPlan complete_plan = {
	"UPDATE elfsofa.notifications SET status = 'sent', sent_at = now(), updated_at = now()"
	" WHERE id = $1 AND status = 'processing'"
	" RETURNING jsonb_build_object('id', id, 'status', status, 'attempts', attempts)",
	1, {INT8OID}
};

static EsPlan fail_plan = {
	"UPDATE elfsofa.notifications"
	"   SET status = CASE WHEN attempts >= $3 THEN 'dead' ELSE 'pending' END,"
	"       visible_at = CASE WHEN attempts >= $3 THEN now()"
	"                         ELSE now() + make_interval(secs => least($5::float8, $4 * power(2::float8, attempts - 1))) END,"
	"       last_error = $2, locked_by = NULL, updated_at = now()"
	" WHERE id = $1 AND status = 'processing'"
	" RETURNING jsonb_build_object('id', id, 'status', status, 'attempts', attempts,"
	"           'retry_in_seconds', CASE WHEN status = 'pending' THEN extract(epoch FROM visible_at - now()) END)",
	5, {INT8OID, TEXTOID, INT4OID, INT4OID, INT4OID}
};

static EsPlan status_plan = {
	"SELECT status FROM elfsofa.notifications WHERE id = $1",
	1, {INT8OID}
};

void
es_notifications_init(void)
{
	DefineCustomIntVariable("elfsofa.notification_max_attempts",
							"Delivery attempts before a notification is dead (1 to 100).",
							NULL, &es_guc_max_attempts, 5, 1, 100,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("elfsofa.notification_backoff_base",
							"Seconds before the first retry of a failed notification; doubles per attempt (1 to 86400).",
							NULL, &es_guc_backoff_base, 30, 1, 86400,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("elfsofa.notification_backoff_max",
							"Longest wait between retries of a failed notification, in seconds (1 to 604800).",
							NULL, &es_guc_backoff_max, 3600, 1, 604800,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("elfsofa.notification_lease",
							"Seconds a claimed notification stays invisible to other senders (1 to 86400).",
							"After the lease, a notification that was neither completed nor failed is claimed again.",
							&es_guc_lease, 300, 1, 86400,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
}

/* The order status an order.status.updated event moved to, whatever the field is called. */
static char *
es_event_new_status(Jsonb *data)
{
	static const char *const names[] = {"status", "to", "new_status", "to_status"};

	for (int i = 0; i < lengthof(names); i++)
	{
		char	   *v = es_jsonb_get_text(data, names[i]);

		if (v)
			return v;
	}
	return NULL;
}

static bool
es_parse_id(const char *s, int64 *out)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v <= 0)
		return false;
	*out = (int64) v;
	return true;
}

/* Queues the customer messages an order event calls for. */
Datum
es_queue_notifications(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *topic;
	char	   *key;
	Jsonb	   *data;
	const char *kind = NULL;
	int64		order_id;
	Datum		values[3];

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(((TriggerData *) fcinfo->context)->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(((TriggerData *) fcinfo->context)->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(((TriggerData *) fcinfo->context)->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("queue_notifications must be fired AFTER INSERT ... FOR EACH ROW")));
	td = (TriggerData *) fcinfo->context;
	tup = td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);

	topic = TextDatumGetCString(heap_getattr(tup, 2, desc, &isnull));
	data = DatumGetJsonbP(heap_getattr(tup, 4, desc, &isnull));
	if (strcmp(topic, "order.created") == 0)
		kind = "order_confirmation";
	else if (strcmp(topic, "order.shipped") == 0)
		kind = "shipping_notice";
	else if (strcmp(topic, "order.status.updated") == 0)
	{
		char	   *status = es_event_new_status(data);

		if (status && strcmp(status, "shipped") == 0)
			kind = "shipping_notice";
	}
	if (kind == NULL)
		return PointerGetDatum(NULL);

	/* The order: the event key, else data.order_id. */
	key = es_jsonb_get_text(data, "order_id");
	{
		Datum		k = heap_getattr(tup, 3, desc, &isnull);

		if (!isnull)
			key = TextDatumGetCString(k);
	}
	if (key == NULL || !es_parse_id(key, &order_id))
		return PointerGetDatum(NULL);

	values[0] = CStringGetTextDatum(kind);
	values[1] = Int64GetDatum(order_id);
	values[2] = heap_getattr(tup, 1, desc, &isnull);
	SPI_connect();
	es_exec(&queue_plan, values, NULL, false, 0);
	SPI_finish();
	return PointerGetDatum(NULL);
}

Datum
es_claim_notifications(PG_FUNCTION_ARGS)
{
	char	   *worker = es_require_text(fcinfo, 0, "worker", 100);
	int32		max = PG_ARGISNULL(1) ? 10 : PG_GETARG_INT32(1);
	Datum		values[3];
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (max < 1 || max > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must be between 1 and 1000"),
				 errdetail("Argument \"max\" was %d.", max)));
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	values[0] = Int32GetDatum(es_guc_max_attempts);
	es_exec(&expire_plan, values, NULL, false, 0);
	values[0] = CStringGetTextDatum(worker);
	values[1] = Int32GetDatum(max);
	values[2] = Int32GetDatum(es_guc_lease);
	es_exec(&claim_plan, values, NULL, false, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
	SPI_finish();
	return (Datum) 0;
}

static int64
es_require_notification_id(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("id must not be null"),
				 errdetail("Argument \"id\" was null.")));
	return PG_GETARG_INT64(0);
}

/* After an UPDATE that matched nothing: say whether the id is unknown or in the wrong state. */
static void
es_notification_not_claimed(int64 id, const char *action)
{
	Datum		arg = Int64GetDatum(id);

	es_exec(&status_plan, &arg, NULL, true, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("unknown notification"),
				 errdetail("No notification has id " INT64_FORMAT ".", id)));
	ereport(ERROR,
			(errcode(ES_ERRCODE_CONFLICT),
			 errmsg("notification is not claimed"),
			 errdetail("Notification " INT64_FORMAT " is %s; only a claimed (processing) one can be %s.",
					   id, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), action),
			 errhint("Claim it first with elfsofa.claim_notifications().")));
}

/* The jsonb in the first column of the last SPI result, copied out of SPI's memory. */
static Datum
es_result_jsonb(void)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	return SPI_datumTransfer(d, false, -1);
}

Datum
es_complete_notification(PG_FUNCTION_ARGS)
{
	int64		id = es_require_notification_id(fcinfo);
	Datum		arg = Int64GetDatum(id);
	Datum		result;

	SPI_connect();
	es_exec(&complete_plan, &arg, NULL, false, 1);
	if (SPI_processed == 0)
		es_notification_not_claimed(id, "completed");
	result = es_result_jsonb();
	SPI_finish();
	PG_RETURN_DATUM(result);
}

Datum
es_fail_notification(PG_FUNCTION_ARGS)
{
	int64		id = es_require_notification_id(fcinfo);
	char	   *error = es_require_text(fcinfo, 1, "error", 0);
	Datum		values[5];
	Datum		result;

	if (strlen(error) > 2000)
		error[pg_mbcliplen(error, strlen(error), 2000)] = '\0';
	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(error);
	values[2] = Int32GetDatum(es_guc_max_attempts);
	values[3] = Int32GetDatum(es_guc_backoff_base);
	values[4] = Int32GetDatum(es_guc_backoff_max);
	SPI_connect();
	es_exec(&fail_plan, values, NULL, false, 1);
	if (SPI_processed == 0)
		es_notification_not_claimed(id, "failed");
	result = es_result_jsonb();
	SPI_finish();
	PG_RETURN_DATUM(result);
}
