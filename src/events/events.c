/*
 * events.c — the durable event outbox.
 *
 * Business functions append events in their own transaction with
 * es_emit_event().  Once the transaction commits, each event is announced
 * with NOTIFY on channel elfsofa_events, in one of two ways:
 *
 *   worker mode  elfsofa is in shared_preload_libraries and this database is
 *                elfsofa.database: the commit only sets the publisher's latch
 *                (src/publisher.c), which reads the new rows and NOTIFYs them
 *                in id order, off the writers' path;
 *   commit mode  otherwise: the writer queues the NOTIFY itself, and
 *                PostgreSQL delivers it only if the transaction commits.
 *
 * Outbox rows go straight into the current events partition (no SQL, so no
 * right on elfsofa.events is needed); the commit-mode notification queue is
 * written with the rights of the outbox's owner.  So any role allowed to
 * change a table that emits events can, without any right on the outbox or
 * the queue.
 *
 * events_since() hands out committed events in id order without a gap: ids
 * come from a sequence before commit, so an event is only handed out once no
 * transaction that could still commit a smaller id is in flight.  With the
 * preload that is decided precisely, from the event ids in flight
 * (watermark.c): a transaction that took no event id delays nothing.  Without
 * it, each row's xid_horizon (the next xid read after its id was taken; every
 * writer holding a smaller id already had an xid below it, as next_event_id
 * assigns the xid before nextval) decides: the row is safe once no
 * transaction of this database that was in progress for the snapshot (its
 * xip) has an xid below it.  The same rule, applied to prepared transactions
 * only, covers two-phase commit in both cases.
 */
#include "events/events.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(es_next_event_id);
PG_FUNCTION_INFO_V1(es_emit_event_sql);
PG_FUNCTION_INFO_V1(es_next_xid);
PG_FUNCTION_INFO_V1(es_events_since);
PG_FUNCTION_INFO_V1(es_consumer_poll);
PG_FUNCTION_INFO_V1(es_consumer_ack);

int			es_guc_event_max_bytes = 1024 * 1024;
bool		es_guc_notify_data = false;
bool		es_guc_emit_events = true;

/* Did the current transaction write an event?  Reset at every transaction end. */
static bool xact_emitted = false;

/*
 * The outbox row goes straight into the events partition of the transaction's
 * start time (src/leafwriter.c), opened once per transaction: a process_order
 * pays a heap and an index insert per event, not a statement.  The column
 * values are those the table's defaults would give (see src/sql/20_events.sql).
 */
static const char *const outbox_cols[] = {"id", "topic", "key", "data", "created_at", "xid_horizon"};
static EsLeafWriter outbox_leaf = {"events", lengthof(outbox_cols), outbox_cols};
static Oid	outbox_rootid = InvalidOid;	/* elfsofa.events and events_id_seq: looked up */
static Oid	outbox_seqid = InvalidOid;	/* once, forgotten when either is invalidated */
static bool outbox_closing = false;	/* past PRE_COMMIT: close after each row */

static EsPlan since_plan = {
	"SELECT id, topic, key, data, created_at, xid_horizon FROM elfsofa.events"
	" WHERE id > $1 ORDER BY id LIMIT $2",
	2, {INT8OID, INT8OID}, .generic = true	/* a Merge Append of the partitions' key scans */
};

static EsPlan consumer_get_plan = {
	"SELECT last_id FROM elfsofa.event_consumers WHERE name = $1",
	1, {TEXTOID}
};

static EsPlan consumer_new_plan = {
	"INSERT INTO elfsofa.event_consumers (name) VALUES ($1)"
	" ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING last_id",
	1, {TEXTOID}
};

static EsPlan consumer_ack_plan = {
	"UPDATE elfsofa.event_consumers SET last_id = greatest(last_id, $2), updated_at = now()"
	" WHERE name = $1 RETURNING last_id",
	2, {TEXTOID, INT8OID}
};

/*
 * Closes the outbox partition before commit; wakes the publisher after
 * commits that wrote events; forgets both at every end.
 */
static void
es_events_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			es_leaf_close(&outbox_leaf);
			outbox_closing = true;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			es_watermark_xact_end();
			if (es_publisher_wanted_at_commit)
				(void) es_publisher_serves_this_database();	/* asks the launcher */
			es_publisher_wanted_at_commit = false;
			if (xact_emitted)
				es_publisher_wake();
			xact_emitted = false;
			es_leaf_forget(&outbox_leaf);
			outbox_closing = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			es_watermark_xact_end();
			es_publisher_wanted_at_commit = false;
			/* later ids may have waited for ours: let the publisher look again */
			if (xact_emitted)
				es_publisher_wake();
			xact_emitted = false;
			es_leaf_forget(&outbox_leaf);
			outbox_closing = false;
			break;
		default:
			break;
	}
}

/* A relcache invalidation of events or its partition: reopen before the next row. */
static void
es_events_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == outbox_rootid || relid == outbox_seqid)
		outbox_rootid = outbox_seqid = InvalidOid;
	es_leaf_invalidate(&outbox_leaf, relid);
}

/* Settings and the commit hook; called once from _PG_init. */
void
es_events_init(void)
{
	DefineCustomBoolVariable("elfsofa.emit_events",
							 "Whether business functions and change triggers write events to the outbox.",
							 "Off skips the outbox entirely (no events, no NOTIFY, no notification queue); "
							 "meant for bulk loads and for measuring the cost of events.",
							 &es_guc_emit_events,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("elfsofa.event_max_bytes",
							"Sets the largest row a change event keeps whole in the outbox.",
							"A changed row whose JSON is larger is replaced by a marker (its key stays) and a "
							"WARNING names the table and key; NOTIFY payloads are cut far earlier, by PostgreSQL's "
							"limit, and say \"truncated\": true. Range 1 kB to 1 GB.",
							&es_guc_event_max_bytes,
							1024 * 1024, 1024, 1024 * 1024 * 1024 - 1,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("elfsofa.notify_data",
							 "Whether NOTIFY payloads on elfsofa_events carry the event's data.",
							 "Any role that can connect may LISTEN, so by default a payload says only which "
							 "event committed (id, topic, key) and subscribers read the data through "
							 "events_since or consumer_poll, which need a grant.  On: the data rides along "
							 "when it fits, for servers where every role that can connect may see every event.",
							 &es_guc_notify_data,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	RegisterXactCallback(es_events_xact_callback, NULL);
	CacheRegisterRelcacheCallback(es_events_relcache_callback, (Datum) 0);
	es_publisher_init();
	es_notifications_init();
}

/*
 * The NOTIFY payload for one event: {"id", "topic", "key"}, and with
 * elfsofa.notify_data its data, or "truncated": true when that would not fit.
 * data_json is only read with elfsofa.notify_data (callers may pass NULL
 * otherwise).
 */
char *
es_event_payload(int64 id, const char *topic, const char *key, const char *data_json)
{
	StringInfoData buf;
	char		num[MAXINT8LEN + 1];

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, "{\"id\": ", 7);
	appendBinaryStringInfo(&buf, num, pg_lltoa(id, num));
	appendBinaryStringInfo(&buf, ", \"topic\": ", 11);
	es_json_string(&buf, topic, strlen(topic));
	appendBinaryStringInfo(&buf, ", \"key\": ", 9);
	if (key)
		es_json_string(&buf, key, strlen(key));
	else
		appendBinaryStringInfo(&buf, "null", 4);
	if (!es_guc_notify_data)
		appendStringInfoChar(&buf, '}');
	else if (data_json != NULL &&
			 buf.len + strlen(data_json) + sizeof(", \"data\": }") - 1 < ES_NOTIFY_MAX_PAYLOAD)
	{
		appendStringInfoString(&buf, ", \"data\": ");
		appendStringInfoString(&buf, data_json);
		appendStringInfoChar(&buf, '}');
	}
	else
		appendStringInfoString(&buf, ", \"truncated\": true}");
	/* topic and key are bounded by the table's checks, but be sure. */
	if (buf.len >= ES_NOTIFY_MAX_PAYLOAD)
	{
		resetStringInfo(&buf);
		appendStringInfo(&buf, "{\"id\": " INT64_FORMAT ", \"topic\": null, \"key\": null, \"truncated\": true}", id);
	}
	return buf.data;
}

/* Owner of elfsofa.events: the outbox is written with its rights. */
static Oid
es_outbox_owner(void)
{
	Oid			nsp = get_namespace_oid("elfsofa", false);
	Oid			relid = get_relname_relid("events", nsp);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "elfsofa: table elfsofa.events is missing");
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "elfsofa: cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * The OIDs of elfsofa.events and its sequence, looked up once.  (Relcache
 * invalidations of either forget them; callers keep the value returned, since
 * the locks they take next may read such invalidations.)
 */
static void
es_outbox_lookup(void)
{
	if (!OidIsValid(outbox_rootid) || !OidIsValid(outbox_seqid))
	{
		Oid			nsp = get_namespace_oid("elfsofa", false);
		Oid			rootid = get_relname_relid("events", nsp);
		Oid			seqid = get_relname_relid("events_id_seq", nsp);

		if (!OidIsValid(rootid) || !OidIsValid(seqid))
			elog(ERROR, "elfsofa: table elfsofa.events or its sequence is missing");
		outbox_rootid = rootid;
		outbox_seqid = seqid;
	}
}

/* Opens the events partition for the transaction's start time. */
static void
es_outbox_open(void)
{
	TimestampTz ts = GetCurrentTransactionStartTimestamp();

	es_outbox_lookup();
	if (!es_leaf_open(&outbox_leaf, outbox_rootid, ts))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("no partition of elfsofa.events for the current transaction"),
				 errdetail("Events go to the partition covering the transaction start time, %s.",
						   timestamptz_to_str(ts)),
				 errhint("Run elfsofa.run_maintenance() to create events partitions ahead.")));
}

/*
 * Appends n outbox rows (one heap multi-insert) and sets their ids.  Like the
 * column defaults: the transaction's xid exists before the ids are taken
 * (events_since relies on it), created_at is now(), xid_horizon the next xid
 * read after the ids (read once after the last one: a later horizon is only
 * more careful).
 */
void
es_outbox_write_many(int n, const char *const *topics, const char *const *keys, Jsonb *const *data, int64 *ids)
{
	Datum	   *values = palloc(sizeof(Datum) * n * lengthof(outbox_cols));
	bool	   *nulls = palloc0(sizeof(bool) * n * lengthof(outbox_cols));
	Datum		horizon;
	Datum		created = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	Oid			seqid;

	if (outbox_leaf.stale)
		es_leaf_close(&outbox_leaf);
	if (outbox_leaf.leaf == NULL)
		es_outbox_open();
	es_outbox_lookup();
	seqid = outbox_seqid;		/* (nextval's lock may read invalidations that forget it) */
	(void) GetTopTransactionId();
	for (int i = 0; i < n; i++)
		ids[i] = es_event_nextval(seqid, false);
	horizon = FullTransactionIdGetDatum(ReadNextFullTransactionId());
	for (int i = 0; i < n; i++)
	{
		Datum	   *v = values + i * lengthof(outbox_cols);
		bool	   *nl = nulls + i * lengthof(outbox_cols);

		v[0] = Int64GetDatum(ids[i]);
		v[1] = CStringGetTextDatum(topics[i]);
		if (keys[i])
			v[2] = CStringGetTextDatum(keys[i]);
		else
			nl[2] = true;
		v[3] = data[i] ? JsonbPGetDatum(data[i]) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
		v[4] = created;
		v[5] = horizon;
	}
	if (n == 1)
		es_leaf_insert(&outbox_leaf, values, nulls);
	else
		es_leaf_insert_many(&outbox_leaf, n, values, nulls);
	if (outbox_closing)
		es_leaf_close(&outbox_leaf);
	pfree(values);
	pfree(nulls);
}

/* Appends one outbox row and returns its id. */
int64
es_outbox_write(const char *topic, const char *key, Jsonb *data)
{
	int64		id;

	es_outbox_write_many(1, &topic, &key, &data, &id);
	return id;
}

/* The C entry to the outbox (see elfsofa.h); SPI must be connected. */
int64
es_emit_event(const char *topic, const char *key, Jsonb *data)
{
	int64		id;

	if (!es_guc_emit_events)
		return 0;
	es_check_topic(topic);
	id = es_outbox_write(topic, key, data);
	es_event_written(id, topic, key, data);
	return id;
}

/* Marks the transaction for a wake-up, or (commit mode) queues the NOTIFY and customer messages. */
void
es_event_written(int64 id, const char *topic, const char *key, Jsonb *data)
{
	xact_emitted = true;
	/* In worker mode the publisher queues customer messages too, after commit. */
	if (!es_publisher_serves_this_database())
	{
		char	   *json = !es_guc_notify_data ? NULL : data ? es_jsonb_text(data) : "{}";
		/* callers may be walking their own SPI result (e.g. RETURNING ids): keep it */
		SPITupleTable *save_tuptable = SPI_tuptable;
		uint64		save_processed = SPI_processed;
		Oid			save_userid;
		int			save_sec;

		/*
		 * The queue is the extension's own bookkeeping: a role allowed to
		 * change a table that emits events need not be allowed to write it.
		 * An error restores the user at abort.
		 */
		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(es_outbox_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
		es_queue_notifications(id, topic, key, data);
		SetUserIdAndSecContext(save_userid, save_sec);
		SPI_tuptable = save_tuptable;
		SPI_processed = save_processed;
		Async_Notify(ES_EVENTS_CHANNEL, es_event_payload(id, topic, key, json));
	}
}

/* Topics: dot-separated words of a-z, 0-9 and _, as the events table checks. */
void
es_check_topic(const char *topic)
{
	bool		ok = topic[0] != '\0' && strlen(topic) <= 100;
	char		prev = '.';

	for (const char *p = topic; ok && *p; p++)
	{
		if (*p == '.')
			ok = prev != '.';
		else
			ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
		prev = *p;
	}
	if (!ok || prev == '.')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event topic"),
				 errdetail("Argument \"topic\" was \"%s\".", topic),
				 errhint("Topics are 1 to 100 characters: dot-separated words of a-z, 0-9 and \"_\", e.g. \"shipment.changed\".")));
}

/* SQL entry to the outbox, for PL/pgSQL and apps: same path as the C callers. */
Datum
es_emit_event_sql(PG_FUNCTION_ARGS)
{
	char	   *topic = es_require_text(fcinfo, 0, "topic", 100);
	char	   *key = NULL;
	int64		id;

	es_check_topic(topic);
	if (!PG_ARGISNULL(1))
	{
		key = text_to_cstring(PG_GETARG_TEXT_PP(1));
		if (strlen(key) > ES_MAX_TEXT_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key is too long"),
					 errdetail("Argument \"key\" has %zu bytes; at most %d are allowed.", strlen(key), ES_MAX_TEXT_LEN)));
	}
	SPI_connect();
	id = es_emit_event(topic, key, PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2));
	SPI_finish();
	if (id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(id);
}

/* Column default of events.id: the writer's xid exists before its id does. */
Datum
es_next_event_id(PG_FUNCTION_ARGS)
{
	Oid			seqid = PG_GETARG_OID(0);

	if (get_rel_relkind(seqid) != RELKIND_SEQUENCE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("relation is not a sequence"),
				 get_rel_name(seqid) ?
				 errdetail("Argument \"seq\" was \"%s\", which is not a sequence.", get_rel_name(seqid)) :
				 errdetail("Argument \"seq\" was OID %u, which names no relation.", seqid)));
	(void) GetTopTransactionId();
	/*
	 * Every outbox row takes its id here, whoever inserts it (a business
	 * function, a change trigger or the shop's own SQL): the publisher is
	 * woken at commit for all of them, not only at its next poll.
	 */
	xact_emitted = true;
	return Int64GetDatum(es_event_nextval(seqid, true));
}

/* Column default of events.xid_horizon, evaluated after the id. */
Datum
es_next_xid(PG_FUNCTION_ARGS)
{
	PG_RETURN_FULLTRANSACTIONID(ReadNextFullTransactionId());
}

/*
 * Whether xid is the running top-level transaction of a backend connected to
 * another database: such a transaction cannot write our outbox.  Read without
 * locks; a transaction we cannot place (it ended, or its slot was reused)
 * counts as ours, which only makes the horizon more cautious.
 */
static bool
es_xid_in_other_database(TransactionId xid)
{
	for (uint32 i = 0; i < ProcGlobal->allProcCount; i++)
	{
		PGPROC	   *proc = &ProcGlobal->allProcs[i];

		if (TransactionIdEquals(*((volatile TransactionId *) &proc->xid), xid))
		{
			Oid			db = *((volatile Oid *) &proc->databaseId);

			return OidIsValid(db) && db != MyDatabaseId;
		}
	}
	return false;
}

/*
 * The smallest xid that may still be running for this snapshot, as a full
 * xid, ignoring transactions of other databases; our own transaction
 * counts, so its own uncommitted events wait.
 */
static FullTransactionId
es_snapshot_horizon(Snapshot snap)
{
	FullTransactionId next = ReadNextFullTransactionId();
	TransactionId horizon = snap->xmin;
	TransactionId own = GetTopTransactionIdIfAny();
	uint32		behind;

	if (!snap->takenDuringRecovery && snap->xcnt > 0)
	{
		horizon = snap->xmax;
		for (uint32 i = 0; i < snap->xcnt; i++)
		{
			TransactionId xid = snap->xip[i];

			if (TransactionIdPrecedes(xid, horizon) && !es_xid_in_other_database(xid))
				horizon = xid;
		}
	}
	if (TransactionIdIsValid(own) && TransactionIdPrecedes(own, horizon))
		horizon = own;
	behind = XidFromFullTransactionId(next) - horizon;
	return FullTransactionIdFromU64(U64FromFullTransactionId(next) - behind);
}

/*
 * The precise watermark (see watermark.c): every event id below it is final.
 * Only when es_watermark_precise().
 */
int64
es_events_watermark(void)
{
	es_outbox_lookup();
	return es_watermark_read(outbox_seqid, es_outbox_owner());
}

int
es_fetch_events(int64 after_id, int max_events)
{
	Datum		values[2];
	uint64		n;

	values[0] = Int64GetDatum(after_id);
	values[1] = Int64GetDatum(max_events);
	if (es_watermark_precise() && !RecoveryInProgress() && !IsolationUsesXactSnapshot())
	{
		/*
		 * The watermark first, then the query under a snapshot of its own
		 * (SPI takes one per query when not read-only): every id below the
		 * watermark is then visible or rolled back.
		 */
		int64		watermark = es_events_watermark();
		FullTransactionId prepared = es_watermark_prepared_xid();

		es_exec(&since_plan, values, NULL, false, 0);
		for (n = 0; n < SPI_processed; n++)
		{
			bool		isnull;
			HeapTuple	tup = SPI_tuptable->vals[n];

			if (DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull)) >= watermark)
				break;
			if (FullTransactionIdIsValid(prepared) &&
				FullTransactionIdFollows(DatumGetFullTransactionId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 6, &isnull)),
										 prepared))
				break;
		}
		return (int) n;
	}
	else
	{
		FullTransactionId horizon;

		/* read-only: the query runs under the active snapshot, whose xmin we use */
		es_exec(&since_plan, values, NULL, true, 0);
		horizon = es_snapshot_horizon(GetActiveSnapshot());
		for (n = 0; n < SPI_processed; n++)
		{
			bool		isnull;
			FullTransactionId h = DatumGetFullTransactionId(
															SPI_getbinval(SPI_tuptable->vals[n], SPI_tuptable->tupdesc, 6, &isnull));

			if (FullTransactionIdFollows(h, horizon))
				break;
		}
		return (int) n;
	}
}

/* max_events: 1..100000, NULL meaning the default 1000. */
static int
es_check_max_events(FunctionCallInfo fcinfo, int argno)
{
	int32		max;

	if (PG_ARGISNULL(argno))
		return 1000;
	max = PG_GETARG_INT32(argno);
	if (max < 1 || max > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_events must be between 1 and 100000"),
				 errdetail("Argument \"max_events\" was %d.", max)));
	return max;
}

/* Copies the first n rows of SPI_tuptable into the SRF's tuplestore. */
static void
es_return_events(FunctionCallInfo fcinfo, int n)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int i = 0; i < n; i++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
}

/* SQL: elfsofa.events_since(after_id, max_events). */
Datum
es_events_since(PG_FUNCTION_ARGS)
{
	int64		after_id;
	int			max = es_check_max_events(fcinfo, 1);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("after_id must not be null"),
				 errdetail("Argument \"after_id\" was null."),
				 errhint("Pass 0 to start from the oldest retained event.")));
	after_id = PG_GETARG_INT64(0);
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	es_return_events(fcinfo, es_fetch_events(after_id, max));
	SPI_finish();
	return (Datum) 0;
}

/* Consumer names: 1 to 63 of A-Z a-z 0-9 . _ : - starting with a letter or digit. */
static char *
es_require_consumer_name(FunctionCallInfo fcinfo)
{
	char	   *name = es_require_text(fcinfo, 0, "name", 63);

	for (const char *p = name; *p; p++)
	{
		bool		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			(p != name && (*p == '.' || *p == '_' || *p == ':' || *p == '-'));

		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid consumer name"),
					 errdetail("Argument \"name\" was \"%s\".", name),
					 errhint("Consumer names are 1 to 63 characters of A-Z, a-z, 0-9, \".\", \"_\", \":\" and \"-\", starting with a letter or digit.")));
	}
	return name;
}

/* SQL: elfsofa.consumer_poll(name, max_events): at-least-once, the position moves only on ack. */
Datum
es_consumer_poll(PG_FUNCTION_ARGS)
{
	char	   *name = es_require_consumer_name(fcinfo);
	int			max = es_check_max_events(fcinfo, 1);
	Datum		arg = CStringGetTextDatum(name);
	bool		isnull;
	int64		last_id;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	es_exec(&consumer_get_plan, &arg, NULL, false, 1);
	if (SPI_processed == 0)
		es_exec(&consumer_new_plan, &arg, NULL, false, 1);
	last_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	es_return_events(fcinfo, es_fetch_events(last_id, max));
	SPI_finish();
	return (Datum) 0;
}

/* SQL: elfsofa.consumer_ack(name, last_id): positions only move forward, so a repeated ack is harmless. */
Datum
es_consumer_ack(PG_FUNCTION_ARGS)
{
	char	   *name = es_require_consumer_name(fcinfo);
	Datum		values[2];
	bool		isnull;
	int64		last_id;

	if (PG_ARGISNULL(1) || PG_GETARG_INT64(1) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("last_id must be a non-negative event id"),
				 errdetail("Argument \"last_id\" was %s.",
						   PG_ARGISNULL(1) ? "null" : psprintf(INT64_FORMAT, PG_GETARG_INT64(1)))));
	values[0] = CStringGetTextDatum(name);
	values[1] = PG_GETARG_DATUM(1);
	SPI_connect();
	es_exec(&consumer_ack_plan, values, NULL, false, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_NOT_FOUND),
				 errmsg("unknown event consumer"),
				 errdetail("No consumer is named \"%s\".", name),
				 errhint("A consumer is created by its first consumer_poll.")));
	last_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(last_id);
}

/*
 * The inventory.updated payload, made here for every stock change (orders,
 * lifecycle, restock, adjust_stock): the location's totals after it, the
 * deltas and why; order_id 0 when no order made it.
 */
Jsonb *
es_stock_updated_json(const char *sku, const char *location, int32 on_hand, int32 reserved,
					  int32 delta_on_hand, int32 delta_reserved, const char *reason, int64 order_id)
{
	EsJo		ev = {0};

	es_jo_str(&ev, "sku", sku);
	es_jo_str(&ev, "location", location);
	es_jo_int(&ev, "on_hand", on_hand);
	es_jo_int(&ev, "reserved", reserved);
	es_jo_int(&ev, "available", (int64) on_hand - reserved);
	es_jo_int(&ev, "delta_on_hand", delta_on_hand);
	es_jo_int(&ev, "delta_reserved", delta_reserved);
	es_jo_str(&ev, "reason", reason);
	if (order_id != 0)
		es_jo_int(&ev, "order_id", order_id);
	return es_jo_finish(&ev);
}

/*
 * The inventory.low_stock payload when a change that took `taken` units off
 * available (a negative count: added them) left it below threshold (>= 0) and it was not below before;
 * NULL otherwise (so it is sent once per crossing).
 */
Jsonb *
es_low_stock_json(const char *sku, const char *location, int64 available, int64 taken, int32 threshold)
{
	EsJo		low = {0};

	if (threshold < 0 || available >= threshold || available + taken < threshold)
		return NULL;
	es_jo_str(&low, "sku", sku);
	es_jo_str(&low, "location", location);
	es_jo_int(&low, "available", available);
	es_jo_int(&low, "threshold", threshold);
	return es_jo_finish(&low);
}

/*
 * es_events_stock_changed announces a stock change the inventory area made
 * itself (restock, adjust_stock): inventory.updated, and inventory.low_stock
 * when available fell below threshold (-1: none to check) with this change,
 * as an order's reservation does.  SPI must be connected.
 */
void
es_events_stock_changed(const char *sku, const char *location, int32 on_hand, int32 reserved,
						int32 delta_on_hand, int32 delta_reserved, const char *reason, int32 threshold)
{
	Jsonb	   *low;

	if (!es_guc_emit_events)
		return;
	(void) es_emit_event("inventory.updated", sku,
						 es_stock_updated_json(sku, location, on_hand, reserved, delta_on_hand, delta_reserved, reason, 0));
	low = es_low_stock_json(sku, location, (int64) on_hand - reserved,
							(int64) delta_reserved - delta_on_hand, threshold);
	if (low)
		(void) es_emit_event("inventory.low_stock", sku, low);
}
