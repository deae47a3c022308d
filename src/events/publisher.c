/*
 * publisher.c — the background publisher: NOTIFY off the writers' path.
 *
 * One NOTIFY in every order transaction serialises commits on the global
 * notify queue lock (see the README's events benchmark).  So when elfsofa is
 * in shared_preload_libraries, one background worker per database
 * (started by launcher.c) does it: writers only set the worker's latch when a
 * transaction that wrote events commits; the worker then reads the newly
 * committed outbox rows in id order with es_fetch_events() (never past an id
 * that an in-flight transaction may still commit), NOTIFYs them from its own
 * transaction, queues the customer messages they call for
 * (notifications.c), and advances its position in elfsofa.event_publisher in
 * that same transaction, so a restart neither loses nor repeats one.  While no
 * publisher serves a database (and without the preload) writers NOTIFY at
 * commit (commit mode, events.c).
 *
 * A publisher serves its database only once its position exists: a new
 * position starts below the watermark (every event final by then was
 * announced by its writer at commit), so no event falls between the two
 * modes; one in flight then may be announced twice (subscribers drop it by
 * id).
 */
#include "events/events.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "libpq/pqsignal.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void es_publisher_main(Datum arg);

PG_FUNCTION_INFO_V1(es_publisher_status);

/* How many events one publisher transaction sends at most. */
#define ES_PUBLISH_BATCH	1000

char	   *es_guc_database = NULL;
/*
 * 20 ms by default: each publisher transaction has a fixed CPU cost, which a
 * short pause spreads over more commits for a few ms more latency.
 */
static int	es_guc_publisher_delay = 20;

/* The publisher's own slot (launcher.c), and its database's name for the log. */
static EsPublisherSlot *my_pub = NULL;
static char my_dbname[NAMEDATALEN] = "?";

/* The position, creating the row on first use (the install script leaves it out). */
static EsPlan position_plan = {
	"SELECT last_id FROM elfsofa.event_publisher",
	0, {InvalidOid}
};

static EsPlan position_init_plan = {
	"INSERT INTO elfsofa.event_publisher (last_id) VALUES ($1) ON CONFLICT DO NOTHING",
	1, {INT8OID}
};

static EsPlan advance_plan = {
	"UPDATE elfsofa.event_publisher SET last_id = $1, published = published + $2, updated_at = now()",
	2, {INT8OID, INT8OID}
};

/* Settings, and the launcher (only with the preload). */
void
es_publisher_init(void)
{
	DefineCustomStringVariable("elfsofa.database",
							   "Databases whose events a background publisher NOTIFYs: * for every one where elfsofa is installed, a name for that one only, empty for none.",
							   "Needs elfsofa in shared_preload_libraries.  A database with no publisher "
							   "NOTIFYs from the writing transaction at commit.",
							   &es_guc_database,
							   "*",
							   ES_PGC_PRELOADED,
							   0,
							   NULL, NULL, NULL);
	DefineCustomBoolVariable("elfsofa.publisher",
							 "Whether a background publisher serves this database (ALTER DATABASE ... SET elfsofa.publisher = off keeps it in commit mode).",
							 NULL,
							 &es_guc_publisher,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("elfsofa.publisher_delay",
							"Milliseconds the publisher waits after sending a batch, so that more commits share the next one (0 to 100).",
							"Adds at most this much latency; saves a transaction per commit under load.",
							&es_guc_publisher_delay,
							20, 0, 100,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress &&
		es_guc_database != NULL && es_guc_database[0] != '\0')
		es_launcher_register();
}

/* Called at commit of a transaction that wrote events: no catalog access, no errors. */
void
es_publisher_wake(void)
{
	EsPublisherSlot *slot;
	Latch	   *latch;

	/* (also asks for a publisher when none runs) */
	if (!es_publisher_serves_this_database())
		return;
	slot = es_publisher_my_slot(false);
	latch = slot ? *((Latch *volatile *) &slot->latch) : NULL;
	if (latch)
		SetLatch(latch);
}

/* On exit, writers must stop setting our latch; unless it said why, the launcher starts another. */
static void
es_publisher_detach(int code, Datum arg)
{
	int			state = *((volatile int *) &my_pub->state);

	my_pub->latch = NULL;
	my_pub->pid = 0;
	es_publisher_slot_set(my_pub, (state == ES_PUB_RUNNING || state == ES_PUB_STARTING) ? ES_PUB_WANTED : state);
}

/* Leaves for good: the database has no elfsofa, or elfsofa.publisher is off there. */
static void
es_publisher_leave(int state)
{
	es_publisher_slot_set(my_pub, state);
	elog(LOG, "elfsofa event publisher for database \"%s\" stops: %s",
		 my_dbname,
		 state == ES_PUB_ABSENT ? "elfsofa is not installed there" : "elfsofa.publisher is off there");
	proc_exit(0);
}

/*
 * Before serving: the position, created below the watermark when there is
 * none.  Returns false when elfsofa is not installed.
 */
static bool
es_publisher_prepare(void)
{
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (get_database_name(MyDatabaseId))
		strlcpy(my_dbname, get_database_name(MyDatabaseId), sizeof(my_dbname));
	installed = OidIsValid(get_namespace_oid("elfsofa", true)) &&
		OidIsValid(get_relname_relid("event_publisher", get_namespace_oid("elfsofa", true)));
	if (installed)
	{
		es_exec(&position_plan, NULL, NULL, true, 1);
		if (SPI_processed == 0)
		{
			Datum		start = Int64GetDatum(es_events_watermark() - 1);

			es_exec(&position_init_plan, &start, NULL, false, 0);
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return installed;
}

/*
 * One publisher transaction: NOTIFY the committed events after our position
 * and advance it.  Returns the number sent; *blocked when an event exists
 * that is not yet safe to send (an earlier id may still commit).
 */
static int
es_publish_batch(bool *blocked, bool *no_extension)
{
	int			n = 0;
	uint64		fetched;
	int64		last_id;
	bool		isnull;
	SPITupleTable *events;

	*blocked = false;
	*no_extension = false;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "publishing events");

	/* (the tables it needs, from the syscache: not an index scan of pg_extension per batch) */
	if (!OidIsValid(get_namespace_oid("elfsofa", true)) ||
		!OidIsValid(get_relname_relid("event_publisher", get_namespace_oid("elfsofa", true))))
		*no_extension = true;
	else
	{
		es_exec(&position_plan, NULL, NULL, true, 1);
		if (SPI_processed == 0)
			*no_extension = true;	/* (a restore's TRUNCATE?) prepare it again */
		else
		{
			last_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			n = es_fetch_events(last_id, ES_PUBLISH_BATCH);
			events = SPI_tuptable;	/* kept until SPI_finish */

			fetched = SPI_processed;
			es_queue_batch_begin(n);
			for (int i = 0; i < n; i++)
			{
				HeapTuple	tup = events->vals[i];
				TupleDesc	desc = events->tupdesc;
				int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
				/* columns of elfsofa.events: (id, topic, key, data, ...); only key may be null */
				char	   *topic = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
				Datum		keyd = SPI_getbinval(tup, desc, 3, &isnull);
				char	   *key = isnull ? NULL : TextDatumGetCString(keyd);
				Jsonb	   *data = DatumGetJsonbP(SPI_getbinval(tup, desc, 4, &isnull));

				Async_Notify(ES_EVENTS_CHANNEL,
							 es_event_payload(id, topic, key, es_guc_notify_data ? es_jsonb_text(data) : NULL));
				es_queue_notifications(id, topic, key, data);
				last_id = id;
			}
			es_queue_batch_flush();
			*blocked = (uint64) n < fetched;
			if (n > 0)
			{
				Datum		values[2];

				values[0] = Int64GetDatum(last_id);
				values[1] = Int64GetDatum(n);
				es_exec(&advance_plan, values, NULL, false, 0);
				my_pub->last_id = last_id;
				my_pub->published += n;
			}
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/*
	 * A background worker reports its table statistics only when asked: without
	 * this, the queue's inserts never reach pg_stat_user_tables and autovacuum
	 * never analyzes or vacuums elfsofa.notifications for them.  (At most once a
	 * second: it returns early otherwise.)
	 */
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return n;
}

/* The worker: wait for a commit (or a short timeout), publish, repeat; errors are logged and retried. */
void
es_publisher_main(Datum arg)
{
	sigjmp_buf	local_sigjmp_buf;
	volatile long timeout = 0;
	Oid			db = DatumGetObjectId(arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	my_pub = es_publisher_slot_of(db);
	if (my_pub == NULL)
		proc_exit(0);
	my_pub->pid = MyProcPid;
	on_shmem_exit(es_publisher_detach, (Datum) 0);
	BackgroundWorkerInitializeConnectionByOid(db, InvalidOid, 0);
	pgstat_report_appname("elfsofa event publisher");
	/*
	 * Its position need not survive a crash the instant it commits: after a
	 * crash it re-sends at most the last few batches (subscribers dedupe by
	 * id), and not waiting for the WAL flush keeps it off the disk's queue.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	if (!es_publisher_prepare())
		es_publisher_leave(ES_PUB_ABSENT);
	/* (elfsofa.publisher as ALTER DATABASE ... SET left it) */
	if (!es_guc_publisher)
		es_publisher_leave(ES_PUB_DISABLED);

	my_pub->latch = MyLatch;
	my_pub->last_id = 0;
	my_pub->published = 0;
	es_publisher_slot_set(my_pub, ES_PUB_RUNNING);
	elog(LOG, "elfsofa event publisher started for database \"%s\"", my_dbname);

	/*
	 * An ordinary error (say, the extension being dropped meanwhile) is logged
	 * and retried.  The error context callbacks of the frames the error left
	 * (SPI's, the parser's) are gone with them: error_context_stack must not
	 * keep pointing there, or the next message walks dead stack (a loop in
	 * errfinish that ignores every signal, or a segfault).
	 */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		error_context_stack = NULL;
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(TopMemoryContext);
		FlushErrorState();
		RESUME_INTERRUPTS();
		timeout = 1000;
	}
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		bool		blocked;
		bool		no_extension;
		int			n;

		if (timeout != 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 timeout, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		n = es_publish_batch(&blocked, &no_extension);
		if (no_extension && !es_publisher_prepare())
			es_publisher_leave(ES_PUB_ABSENT);
		/* Let a busy shop's commits gather: one transaction sends many NOTIFYs. */
		if (n > 0 && n < ES_PUBLISH_BATCH && es_guc_publisher_delay > 0)
			pg_usleep(es_guc_publisher_delay * 1000L);
		if (no_extension)
			timeout = 0;
		else if (n == ES_PUBLISH_BATCH)
			timeout = 0;		/* more may be waiting */
		else if (blocked)
			timeout = 1;		/* an earlier id is still in flight: look again soon */
		else
			timeout = 1000;		/* commits wake us; this is only a safety net */
	}
}

/* Names of EsPublisherState, as publisher_status() shows them. */
const char *
es_publisher_state_name(int state)
{
	switch (state)
	{
		case ES_PUB_WANTED:
			return "wanted";
		case ES_PUB_STARTING:
			return "starting";
		case ES_PUB_RUNNING:
			return "running";
		case ES_PUB_ABSENT:
			return "absent";
		case ES_PUB_DISABLED:
			return "disabled";
		case ES_PUB_STOPPED:
			return "stopped";
		case ES_PUB_NO_WORKER:
			return "no_worker";
		default:
			return "none";
	}
}

/* SQL: elfsofa.publisher_status(), for operators and tests. */
Datum
es_publisher_status(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	bool		worker = es_publisher_serves_this_database();
	EsPublisherSlot *slot = es_publisher_my_slot(false);
	pid_t		pid = slot ? slot->pid : 0;
	int64		last_id = slot ? slot->last_id : 0;
	int64		published = slot ? slot->published : 0;
	char	   *dbname = get_database_name(MyDatabaseId);

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"mode\": \"%s\", \"publisher\": \"%s\", \"publishers\": %s, \"database\": ",
					 worker ? "worker" : "commit", es_publisher_state_name(es_publisher_state()),
					 es_publisher_available() ? "true" : "false");
	if (dbname)
		es_json_quote(&buf, dbname);
	else
		appendStringInfoString(&buf, "null");
	if (worker && pid != 0)
		appendStringInfo(&buf, ", \"worker_pid\": %d, \"last_id\": " INT64_FORMAT ", \"published\": " INT64_FORMAT,
						 (int) pid, last_id, published);
	else
		appendStringInfoString(&buf, ", \"worker_pid\": null, \"last_id\": null, \"published\": null");
	/* how events_since decides what is final: see watermark.c */
	if (es_watermark_precise())
		appendStringInfo(&buf, ", \"watermark\": \"precise\", \"final_below\": " INT64_FORMAT "}",
						 es_events_watermark());
	else
		appendStringInfoString(&buf, ", \"watermark\": \"xid\", \"final_below\": null}");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
