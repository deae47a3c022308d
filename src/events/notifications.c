/*
 * notifications.c — the outbound notification queue (order confirmation,
 * shipping notice), fed from the outbox and drained by external senders.
 *
 * es_emit_event queues one row per (order, kind) in the transaction that
 * wrote the event, so a rolled-back order sends
 * nothing.  Senders claim due rows with FOR UPDATE SKIP LOCKED (each claim
 * counts an attempt and leases the row for elfsofa.notification_lease
 * seconds, so a sender that dies does not lose it), then complete or fail
 * them.  A failure is retried after base * 2^(attempts-1) seconds, capped;
 * after elfsofa.notification_max_attempts attempts the row is dead (the
 * dead-letter state), kept for a human to look at.
 */
#include "events/events.h"

#include "access/htup_details.h"
#include "utils/snapmgr.h"
#include "utils/relcache.h"
#include "utils/rel.h"
#include "utils/fmgroids.h"
#include "parser/parse_relation.h"
#include "executor/tuptable.h"
#include "catalog/pg_index.h"
#include "catalog/pg_am.h"
#include "access/tableam.h"
#include "access/table.h"
#include "access/stratnum.h"
#include "access/relscan.h"
#include "access/genam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "commands/sequence.h"
#include "utils/uuid.h"
#include "utils/guc.h"

PG_FUNCTION_INFO_V1(es_claim_notifications);
PG_FUNCTION_INFO_V1(es_complete_notification);
PG_FUNCTION_INFO_V1(es_fail_notification);

static int	es_guc_max_attempts = 5;
static int	es_guc_backoff_base = 30;
static int	es_guc_backoff_max = 3600;
static int	es_guc_lease = 300;

/* The recipient of customer c: preference channel and address, else the customer's e-mail. */
#define ES_RECIPIENT_JOINS \
	"   LEFT JOIN elfsofa.notification_preferences p ON p.customer_id = c.id" \
	"  CROSS JOIN LATERAL (SELECT CASE" \
	"          WHEN p.channel = 'sms' AND coalesce(p.address, c.phone) IS NOT NULL THEN 'sms'" \
	"          WHEN p.channel = 'line' AND p.address IS NOT NULL THEN 'line'" \
	"          ELSE 'email' END) ch(channel)" \
	"  CROSS JOIN LATERAL (SELECT ch.channel, CASE ch.channel" \
	"          WHEN 'sms' THEN coalesce(p.address, c.phone)" \
	"          WHEN 'line' THEN p.address" \
	"          ELSE CASE WHEN p.channel = 'email' THEN coalesce(p.address, c.email) ELSE c.email END END) d(channel, recipient)"

/* order.created carries the customer and the order's figures: no order lookup needed. */
static EsPlan queue_from_event_plan = {
	"INSERT INTO elfsofa.notifications (kind, channel, recipient, customer_id, order_id, event_id, payload)"
	" SELECT $1, d.channel, d.recipient, c.id, $2, $3,"
	"        ($5 - 'items') || jsonb_build_object('order_id', $2, 'customer_name', c.full_name)"
	"   FROM elfsofa.customers c"
	ES_RECIPIENT_JOINS
	"  WHERE c.id = $4"
	" ON CONFLICT (order_id, kind) DO NOTHING",
	5, {TEXTOID, INT8OID, INT8OID, UUIDOID, JSONBOID}, .generic = true
};

/*
 * The publisher's batched form of queue_from_event_plan, in C: for each
 * collected (customer, order, kind) it leaves out what the queue already holds
 * (ON CONFLICT DO NOTHING of the single form) with a probe of the (order_id,
 * kind) index, finds the recipient as ES_RECIPIENT_JOINS does with two
 * unique-key lookups, and inserts the rows directly (src/leafwriter.c).  A
 * statement per batch cost more than all the rest the publisher does per
 * event (executor start-up of a join, then per row a join and a subquery).
 */
static EsKeyLookup queue_customer = {"customers", "id", 3, {"full_name", "email", "phone"}};
static EsKeyLookup queue_preference = {"notification_preferences", "customer_id", 2, {"channel", "address"}};

/* The queue's unique index on (order_id, kind), among those the writer opened. */
static Relation
es_queue_key_index(EsLeafWriter *w)
{
	AttrNumber	order_att = attnameAttNum(w->leaf, "order_id", false);
	AttrNumber	kind_att = attnameAttNum(w->leaf, "kind", false);

	for (int i = 0; i < w->rri->ri_NumIndices; i++)
	{
		Relation	irel = w->rri->ri_IndexRelationDescs[i];
		Form_pg_index ix = irel->rd_index;

		if (ix->indisunique && ix->indnkeyatts == 2 &&
			ix->indkey.values[0] == order_att && ix->indkey.values[1] == kind_att &&
			irel->rd_rel->relam == BTREE_AM_OID && w->rri->ri_IndexRelationInfo[i]->ii_Predicate == NIL)
			return irel;
	}
	elog(ERROR, "elfsofa: elfsofa.notifications has no unique index on (order_id, kind)");
	return NULL;				/* keep compiler quiet */
}

/* Whether the queue already holds (order_id, kind): a probe of that index with an open scan. */
static bool
es_queue_holds(IndexScanDesc scan, TupleTableSlot *slot, int64 order_id, Datum kind)
{
	ScanKeyData sk[2];
	bool		found;

	ScanKeyEntryInitialize(&sk[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   scan->indexRelation->rd_indcollation[0], F_INT8EQ, Int64GetDatum(order_id));
	ScanKeyEntryInitialize(&sk[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   scan->indexRelation->rd_indcollation[1], F_TEXTEQ, kind);
	index_rescan(scan, sk, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	ExecClearTuple(slot);
	return found;
}

/* The text of a looked-up column, or NULL. */
static char *
es_lookup_text(Datum *values, bool *nulls, int i)
{
	return nulls[i] ? NULL : TextDatumGetCString(values[i]);
}

/* The columns the publisher fills; the others are NULL (locked_by, last_error, sent_at). */
enum
{
	NQ_ID, NQ_KIND, NQ_CHANNEL, NQ_RECIPIENT, NQ_CUSTOMER, NQ_ORDER, NQ_EVENT, NQ_PAYLOAD,
	NQ_STATUS, NQ_ATTEMPTS, NQ_VISIBLE_AT, NQ_CREATED_AT, NQ_UPDATED_AT, NQ_NCOLS
};
static const char *const nq_cols[NQ_NCOLS] = {
	"id", "kind", "channel", "recipient", "customer_id", "order_id", "event_id", "payload",
	"status", "attempts", "visible_at", "created_at", "updated_at"
};
static EsLeafWriter queue_writer = {"notifications", NQ_NCOLS, nq_cols};

/* Rows collected between es_queue_batch_begin() and es_queue_batch_flush(). */
typedef struct EsQueueBatch
{
	int			n;
	int			cap;
	Datum	   *kind;
	Datum	   *order_id;
	Datum	   *event_id;
	Datum	   *customer;
	Datum	   *data;
} EsQueueBatch;

static EsQueueBatch *queue_batch = NULL;

/* Closed before commit; forgotten at every end (an error may leave it open). */
static void
es_queue_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			es_leaf_close(&queue_writer);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			es_leaf_forget(&queue_writer);
			queue_batch = NULL; /* (an error between begin and flush: its memory is gone) */
			break;
		default:
			break;
	}
}

/* Whether a key of the event data is left out of the queued payload (|| replaces order_id and customer_name). */
static bool
es_payload_skips(const JsonbValue *k)
{
	return (k->val.string.len == 5 && memcmp(k->val.string.val, "items", 5) == 0) ||
		(k->val.string.len == 8 && memcmp(k->val.string.val, "order_id", 8) == 0) ||
		(k->val.string.len == 13 && memcmp(k->val.string.val, "customer_name", 13) == 0);
}

/* The queued payload: the event data without its items, plus order_id and customer_name. */
static Jsonb *
es_queue_payload(Jsonb *data, int64 order_id, Datum name, bool name_null)
{
	JsonbParseState *st = NULL;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	k;
	JsonbValue	v;
	JsonbValue	id;
	JsonbValue	who;
	bool		skip = false;
	EsJo		o;

	id.type = jbvNumeric;
	id.val.numeric = int64_to_numeric(order_id);
	if (name_null)
		who.type = jbvNull;
	else
	{
		text	   *t = DatumGetTextPP(name);

		who.type = jbvString;
		who.val.string.val = VARDATA_ANY(t);
		who.val.string.len = VARSIZE_ANY_EXHDR(t);
	}

	/*
	 * data is an object (it named the customer); its values come one level
	 * deep (skipNested: a nested one as a binary value).  Usually, as
	 * process_order writes order.created, only the skipped items is nested:
	 * the pairs are then taken as they are and converted once.
	 */
	o.n = 0;
	it = JsonbIteratorInit(&data->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			k = v;
			skip = es_payload_skips(&k);
		}
		else if (tok == WJB_VALUE && !skip)
		{
			if (v.type == jbvBinary || o.n == ES_JO_MAXPAIRS - 2)
				break;
			es_jo_keyval(&o, k.val.string.val, k.val.string.len, &v);
		}
	}
	if (tok == WJB_DONE)
	{
		es_jo_val(&o, "order_id", &id);
		es_jo_val(&o, "customer_name", &who);
		return es_jo_finish(&o);
	}

	/* otherwise pushJsonbValue, which unpacks nested values */
	it = JsonbIteratorInit(&data->root);
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			skip = es_payload_skips(&v);
			if (!skip)
				pushJsonbValue(&st, WJB_KEY, &v);
		}
		else if (tok == WJB_VALUE && !skip)
			pushJsonbValue(&st, WJB_VALUE, &v);
	}
	k.type = jbvString;
	k.val.string.val = "order_id";
	k.val.string.len = 8;
	pushJsonbValue(&st, WJB_KEY, &k);
	pushJsonbValue(&st, WJB_VALUE, &id);
	k.val.string.val = "customer_name";
	k.val.string.len = 13;
	pushJsonbValue(&st, WJB_KEY, &k);
	pushJsonbValue(&st, WJB_VALUE, &who);
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}


/* From now on queue rows are collected (in the current memory context) until the flush. */
void
es_queue_batch_begin(int capacity)
{
	queue_batch = palloc0(sizeof(EsQueueBatch));
	queue_batch->cap = capacity;
	queue_batch->kind = palloc(sizeof(Datum) * capacity);
	queue_batch->order_id = palloc(sizeof(Datum) * capacity);
	queue_batch->event_id = palloc(sizeof(Datum) * capacity);
	queue_batch->customer = palloc(sizeof(Datum) * capacity);
	queue_batch->data = palloc(sizeof(Datum) * capacity);
}

/* Queues the collected rows (see queue_customer above); SPI must be connected. */
void
es_queue_batch_flush(void)
{
	EsQueueBatch *b = queue_batch;
	Datum		values[NQ_NCOLS];
	bool		nulls[NQ_NCOLS] = {false};
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Oid			nsp;
	Oid			relid;
	Oid			seqid;
	int		   *done;
	int			ndone = 0;
	Datum	   *rows;
	bool	   *rownulls;
	IndexScanDesc keyscan;
	TupleTableSlot *probe;
	EsKeyScan	custscan;
	EsKeyScan	prefscan;

	queue_batch = NULL;
	if (b == NULL || b->n == 0)
		return;
	nsp = get_namespace_oid("elfsofa", false);
	relid = get_relname_relid("notifications", nsp);
	seqid = get_relname_relid("notifications_id_seq", nsp);
	if (!OidIsValid(relid) || !OidIsValid(seqid))
		elog(ERROR, "elfsofa: table elfsofa.notifications or its sequence is missing");
	if (!es_leaf_open(&queue_writer, relid, now))
		elog(ERROR, "elfsofa: could not open elfsofa.notifications");
	/* the probe and the two lookups: one scan each for the whole batch */
	keyscan = ES_INDEX_BEGINSCAN(queue_writer.leaf, es_queue_key_index(&queue_writer), GetActiveSnapshot(), 2);
	probe = table_slot_create(queue_writer.leaf, NULL);
	es_key_scan_begin(&custscan, &queue_customer);
	es_key_scan_begin(&prefscan, &queue_preference);
	done = palloc(sizeof(int) * b->n);
	rows = palloc(sizeof(Datum) * NQ_NCOLS * b->n);
	rownulls = palloc0(sizeof(bool) * NQ_NCOLS * b->n);
	values[NQ_STATUS] = CStringGetTextDatum("pending");
	values[NQ_ATTEMPTS] = Int32GetDatum(0);
	values[NQ_VISIBLE_AT] = TimestampTzGetDatum(now);
	values[NQ_CREATED_AT] = TimestampTzGetDatum(now);
	values[NQ_UPDATED_AT] = TimestampTzGetDatum(now);
	for (int i = 0; i < b->n; i++)
	{
		Datum		cust[3];
		bool		cust_null[3];
		Datum		pref[2];
		bool		pref_null[2] = {true, true};
		char	   *phone;
		char	   *pchannel;
		char	   *paddress;
		const char *channel;
		char	   *recipient;
		bool		dup = false;

		/* one row per (order, kind), as ON CONFLICT DO NOTHING within one statement */
		for (int k = 0; k < ndone && !dup; k++)
			dup = DatumGetInt64(b->order_id[done[k]]) == DatumGetInt64(b->order_id[i]) &&
				datumIsEqual(b->kind[done[k]], b->kind[i], false, -1);
		if (dup || es_queue_holds(keyscan, probe, DatumGetInt64(b->order_id[i]), b->kind[i]))
			continue;
		/* the recipient, as ES_RECIPIENT_JOINS finds it; no customer, no message */
		if (!es_key_scan_get(&custscan, b->customer[i], cust, cust_null))
			continue;
		if (!es_key_scan_get(&prefscan, b->customer[i], pref, pref_null))
			pref_null[0] = pref_null[1] = true;
		phone = es_lookup_text(cust, cust_null, 2);
		pchannel = es_lookup_text(pref, pref_null, 0);
		paddress = es_lookup_text(pref, pref_null, 1);
		if (pchannel && strcmp(pchannel, "sms") == 0 && (paddress || phone))
		{
			channel = "sms";
			recipient = paddress ? paddress : phone;
		}
		else if (pchannel && strcmp(pchannel, "line") == 0 && paddress)
		{
			channel = "line";
			recipient = paddress;
		}
		else
		{
			channel = "email";
			recipient = (pchannel && strcmp(pchannel, "email") == 0 && paddress) ?
				paddress : es_lookup_text(cust, cust_null, 1);
		}
		if (recipient == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("no recipient for the notification of order " INT64_FORMAT,
							DatumGetInt64(b->order_id[i]))));
		values[NQ_ID] = Int64GetDatum(nextval_internal(seqid, false));
		values[NQ_KIND] = b->kind[i];
		values[NQ_CHANNEL] = CStringGetTextDatum(channel);
		values[NQ_RECIPIENT] = CStringGetTextDatum(recipient);
		values[NQ_CUSTOMER] = b->customer[i];
		values[NQ_ORDER] = b->order_id[i];
		values[NQ_EVENT] = b->event_id[i];
		values[NQ_PAYLOAD] = JsonbPGetDatum(es_queue_payload(DatumGetJsonbP(b->data[i]), DatumGetInt64(b->order_id[i]),
															 cust[0], cust_null[0]));
		memcpy(rows + (size_t) ndone * NQ_NCOLS, values, sizeof(values));
		memcpy(rownulls + (size_t) ndone * NQ_NCOLS, nulls, sizeof(nulls));
		done[ndone++] = i;
	}
	es_key_scan_end(&prefscan);
	es_key_scan_end(&custscan);
	index_endscan(keyscan);
	ExecDropSingleTupleTableSlot(probe);
	/* the batch's rows in one heap multi-insert */
	es_leaf_insert_many(&queue_writer, ndone, rows, rownulls);
	es_leaf_close(&queue_writer);
}

/* Other events name only the order: read it. */
static EsPlan queue_from_order_plan = {
	"INSERT INTO elfsofa.notifications (kind, channel, recipient, customer_id, order_id, event_id, payload)"
	" SELECT $1, d.channel, d.recipient, c.id, o.id, $3,"
	"        jsonb_build_object('order_id', o.id, 'order_number', o.order_number, 'status', o.status,"
	"                           'total', o.total, 'currency', o.currency, 'customer_name', c.full_name)"
	"   FROM elfsofa.orders o"
	"   JOIN elfsofa.customers c ON c.id = o.customer_id"
	ES_RECIPIENT_JOINS
	"  WHERE o.id = $2"
	" ON CONFLICT (order_id, kind) DO NOTHING",
	3, {TEXTOID, INT8OID, INT8OID}, .generic = true
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
	"           'retry_in_seconds', CASE WHEN status = 'pending' THEN extract(epoch FROM visible_at - now())::int END)",
	5, {INT8OID, TEXTOID, INT4OID, INT4OID, INT4OID}
};

static EsPlan status_plan = {
	"SELECT status FROM elfsofa.notifications WHERE id = $1",
	1, {INT8OID}
};

/* The queue's settings; called from es_events_init. */
void
es_notifications_init(void)
{
	DefineCustomIntVariable("elfsofa.notification_max_attempts",
							"Delivery attempts before a notification is dead (1 to 100).",
							NULL, &es_guc_max_attempts, 5, 1, 100,
							PGC_USERSET, 0, NULL, NULL, NULL);
	RegisterXactCallback(es_queue_xact_callback, NULL);
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

/* A positive bigint in text, else false (an event key that names no order). */
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

/*
 * Queues the customer messages an order event calls for; called by
 * es_emit_event for every event (SPI connected), so it must be cheap for
 * the topics it ignores.
 */
void
es_queue_notifications(int64 event_id, const char *topic, const char *key, Jsonb *data)
{
	const char *kind = NULL;
	int64		order_id;
	char	   *customer;
	pg_uuid_t  *uuid;
	Datum		values[5];

	if (strncmp(topic, "order.", 6) != 0)
		return;
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
		return;

	/* The order: the event key, else data.order_id. */
	if (key == NULL)
		key = es_jsonb_get_text(data, "order_id");
	if (key == NULL || !es_parse_id(key, &order_id))
		return;

	values[0] = CStringGetTextDatum(kind);
	values[1] = Int64GetDatum(order_id);
	values[2] = Int64GetDatum(event_id);
	customer = es_jsonb_get_text(data, "customer_id");
	uuid = palloc(sizeof(pg_uuid_t));
	if (data != NULL && customer != NULL && es_parse_uuid(customer, uuid))
	{
		bool		alone = (queue_batch == NULL);

		values[3] = UUIDPGetDatum(uuid);
		values[4] = JsonbPGetDatum(data);
		/*
		 * A writer in commit mode queues its one message as a batch of one:
		 * the direct path costs a fraction of the statement's executor
		 * start-up.  A full publisher batch falls back to the statement.
		 * The batch's probe must see what this writer queued earlier in the
		 * same command (as ON CONFLICT DO NOTHING does): so a new command id
		 * and a snapshot taken after it.
		 */
		if (alone)
			es_queue_batch_begin(1);
		if (queue_batch->n < queue_batch->cap)
		{
			EsQueueBatch *b = queue_batch;

			b->kind[b->n] = values[0];
			b->order_id[b->n] = values[1];
			b->event_id[b->n] = values[2];
			b->customer[b->n] = values[3];
			b->data[b->n] = values[4];
			b->n++;
		}
		else
			es_exec(&queue_from_event_plan, values, NULL, false, 0);
		if (alone)
		{
			CommandCounterIncrement();
			PushActiveSnapshot(GetLatestSnapshot());
			es_queue_batch_flush();
			PopActiveSnapshot();
		}
	}
	else
		es_exec(&queue_from_order_plan, values, NULL, false, 0);
}

/* SQL: elfsofa.claim_notifications(worker, max); expired leases at their last attempt go dead first. */
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

/* The id argument, which must not be NULL. */
static int64
es_require_notification_id(FunctionCallInfo fcinfo)
{
	es_arg_not_null(fcinfo, 0, "id");
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

/* SQL: elfsofa.complete_notification(id). */
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

/* SQL: elfsofa.fail_notification(id, error); the error text is kept, cut to 2000 bytes. */
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
