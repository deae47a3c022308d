/*
 * publisher.c — the background publisher: NOTIFY off the writers' path.
 *
 * One NOTIFY in every order transaction serialises commits on the global
 * notify queue lock (see the README's events benchmark).  So
 * when elfsofa is in shared_preload_libraries, one background worker connects
 * to the database named by elfsofa.database (default 'postgres', the database
 * Supabase uses; '' disables it).  Writers in that database only set the
 * worker's latch when a transaction that wrote events commits; the worker then
 * reads the newly committed outbox rows in id order with es_fetch_events()
 * (never past an id that an in-flight transaction may still commit), NOTIFYs
 * them from its own transaction, queues the customer messages they call for
 * (src/notifications.c), and advances its position in elfsofa.event_publisher
 * in that same transaction, so a restart neither loses nor repeats one.  Other databases, and servers without the
 * preload, use commit mode (src/events.c).
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

typedef struct EsPublisherShared
{
	slock_t		mutex;
	pid_t		pid;			/* 0 while no worker runs */
	Latch	   *latch;
	int64		last_id;
	int64		published;		/* since server start */
} EsPublisherShared;

char	   *es_guc_database = NULL;
/*
 * 20 ms by default: each publisher transaction has a fixed CPU cost, which a
 * short pause spreads over more commits for a few ms more latency.
 */
static int	es_guc_publisher_delay = 20;

static EsPublisherShared *es_shared = NULL;

/* -1 unknown, 0 commit mode, 1 worker mode; fixed for a backend's database */
static int	serves_this_db = -1;

/* The position, creating the row on first use (the install script leaves it out). */
static EsPlan position_plan = {
	"SELECT last_id FROM elfsofa.event_publisher",
	0, {InvalidOid}
};

static EsPlan position_init_plan = {
	"INSERT INTO elfsofa.event_publisher DEFAULT VALUES ON CONFLICT DO NOTHING",
	0, {InvalidOid}
};

static EsPlan advance_plan = {
	"UPDATE elfsofa.event_publisher SET last_id = $1, published = published + $2, updated_at = now()",
	2, {INT8OID, INT8OID}
};

/* Asks for the publisher's shared memory (src/hooks.c, when preloaded). */
void
es_publisher_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(EsPublisherShared)));
}

/* Creates (or attaches to) the publisher's shared state (src/hooks.c). */
void
es_publisher_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	es_shared = ShmemInitStruct("elfsofa publisher", sizeof(EsPublisherShared), &found);
	if (!found)
	{
		memset(es_shared, 0, sizeof(EsPublisherShared));
		SpinLockInit(&es_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Settings, shared memory and the worker registration; the worker only with the preload. */
void
es_publisher_init(void)
{
	BackgroundWorker worker;

	DefineCustomStringVariable("elfsofa.database",
							   "Database whose events the background publisher NOTIFYs.",
							   "Needs elfsofa in shared_preload_libraries; empty disables the worker. "
							   "Other databases NOTIFY from the writing transaction at commit.",
							   &es_guc_database,
							   "postgres",
							   PGC_POSTMASTER,
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
	if (!process_shared_preload_libraries_in_progress)
		return;

	if (es_guc_database == NULL || es_guc_database[0] == '\0')
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "elfsofa");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "es_publisher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "elfsofa event publisher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "elfsofa event publisher");
	RegisterBackgroundWorker(&worker);
}

/* Whether this backend's events are NOTIFYed by the worker (else at commit); needs a transaction. */
bool
es_publisher_serves_this_database(void)
{
	if (serves_this_db < 0)
	{
		char	   *name;

		if (es_shared == NULL || es_guc_database == NULL || es_guc_database[0] == '\0')
			serves_this_db = 0;
		else
		{
			name = get_database_name(MyDatabaseId);
			serves_this_db = (name != NULL && strcmp(name, es_guc_database) == 0) ? 1 : 0;
		}
	}
	return serves_this_db == 1;
}

/* Called at commit of a transaction that wrote events: no catalog access, no errors. */
void
es_publisher_wake(void)
{
	Latch	   *latch;

	if (serves_this_db != 1 || es_shared == NULL)
		return;
	SpinLockAcquire(&es_shared->mutex);
	latch = es_shared->latch;
	SpinLockRelease(&es_shared->mutex);
	if (latch)
		SetLatch(latch);
}

/* On exit, writers must stop setting our latch. */
static void
es_publisher_detach(int code, Datum arg)
{
	SpinLockAcquire(&es_shared->mutex);
	es_shared->latch = NULL;
	es_shared->pid = 0;
	SpinLockRelease(&es_shared->mutex);
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
		{
			es_exec(&position_init_plan, NULL, NULL, false, 0);
			last_id = 0;
		}
		else
			last_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		{
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
				SpinLockAcquire(&es_shared->mutex);
				es_shared->last_id = last_id;
				es_shared->published += n;
				SpinLockRelease(&es_shared->mutex);
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

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(es_guc_database, NULL, 0);
	pgstat_report_appname("elfsofa event publisher");
	serves_this_db = 1;
	/*
	 * Its position need not survive a crash the instant it commits: after a
	 * crash it re-sends at most the last few batches (subscribers dedupe by
	 * id), and not waiting for the WAL flush keeps it off the disk's queue.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	SpinLockAcquire(&es_shared->mutex);
	es_shared->latch = MyLatch;
	es_shared->pid = MyProcPid;
	SpinLockRelease(&es_shared->mutex);
	on_shmem_exit(es_publisher_detach, (Datum) 0);
	elog(LOG, "elfsofa event publisher started for database \"%s\"", es_guc_database);

	/* An ordinary error (say, the extension being dropped meanwhile) is logged and retried. */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
		MemoryContextSwitchTo(TopMemoryContext);
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
		/* Let a busy shop's commits gather: one transaction sends many NOTIFYs. */
		if (n > 0 && n < ES_PUBLISH_BATCH && es_guc_publisher_delay > 0)
			pg_usleep(es_guc_publisher_delay * 1000L);
		if (no_extension)
			timeout = 5000;
		else if (n == ES_PUBLISH_BATCH)
			timeout = 0;		/* more may be waiting */
		else if (blocked)
			timeout = 1;		/* an earlier id is still in flight: look again soon */
		else
			timeout = 1000;		/* commits wake us; this is only a safety net */
	}
}

/* SQL: elfsofa.publisher_status(), for operators and tests. */
Datum
es_publisher_status(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	bool		worker = es_publisher_serves_this_database();
	pid_t		pid = 0;
	int64		last_id = 0;
	int64		published = 0;

	if (es_shared)
	{
		SpinLockAcquire(&es_shared->mutex);
		pid = es_shared->pid;
		last_id = es_shared->last_id;
		published = es_shared->published;
		SpinLockRelease(&es_shared->mutex);
	}
	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"mode\": \"%s\", \"database\": ", worker ? "worker" : "commit");
	if (es_guc_database && es_guc_database[0] && es_shared)
		es_json_quote(&buf, es_guc_database);
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
