/*
 * launcher.c — one event publisher per database, with no setting to remember.
 *
 * With elfsofa in shared_preload_libraries, a launcher (a background worker
 * connected to no database, like autovacuum's launcher) keeps one publisher
 * (publisher.c) running for every database where elfsofa is installed:
 *
 *   - at server start it starts one for every database that allows
 *     connections; a publisher that finds no elfsofa in its database says so
 *     (ABSENT) and exits;
 *   - a transaction that writes events in a database with no running
 *     publisher (CREATE EXTENSION was just run, or the publisher died) NOTIFYs
 *     at commit itself and asks the launcher for one;
 *   - a publisher whose database drops the extension exits (ABSENT);
 *   - DROP DATABASE, ALTER DATABASE (RENAME, SET TABLESPACE) and CREATE
 *     DATABASE ... TEMPLATE need the database to themselves: the utility hook
 *     (es_publisher_utility_before) stops its publisher and holds it off
 *     until the statement is over;
 *   - every minute the launcher forgets databases that are gone.
 *
 * elfsofa.database restricts publishers to one database ('' to none), and
 * elfsofa.publisher = off (ALTER DATABASE ... SET) keeps one database in
 * commit mode.  Publishers are bounded by max_worker_processes: a database
 * that cannot get one stays in commit mode, the launcher logs it once, and
 * health() reports it.
 *
 * The slots live in shared memory, one per possible worker; a spinlock
 * guards them (writers read their slot's state without it: a stale read only
 * costs a NOTIFY twice, which subscribers drop by id).
 */
#include "events/events.h"

#include "access/htup_details.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void es_launcher_main(Datum arg);

typedef struct EsLauncherShared
{
	slock_t		mutex;
	Latch	   *latch;			/* the launcher's, NULL while it is not running */
	int			nslots;
	EsPublisherSlot slots[FLEXIBLE_ARRAY_MEMBER];
} EsLauncherShared;

static EsLauncherShared *es_launch = NULL;

bool		es_guc_publisher = true;
bool		es_publisher_wanted_at_commit = false;	/* events.c asks at commit */

/* This backend's slot, found once (its database never changes). */
static int	my_slot = -1;

/* How often the launcher looks for databases that are gone. */
#define ES_LAUNCHER_RESCAN_MS	60000

static Size
es_launcher_size(void)
{
	return add_size(offsetof(EsLauncherShared, slots),
					mul_size(max_worker_processes, sizeof(EsPublisherSlot)));
}

void
es_launcher_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(es_launcher_size()));
}

void
es_launcher_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	es_launch = ShmemInitStruct("elfsofa publishers", es_launcher_size(), &found);
	if (!found)
	{
		memset(es_launch, 0, es_launcher_size());
		SpinLockInit(&es_launch->mutex);
		es_launch->nslots = max_worker_processes;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Whether elfsofa.database lets a publisher serve this database name. */
static bool
es_database_allowed(const char *name)
{
	if (es_guc_database == NULL || es_guc_database[0] == '\0')
		return false;
	return strcmp(es_guc_database, "*") == 0 || (name != NULL && strcmp(es_guc_database, name) == 0);
}

/* The slot of db, or -1; with create, a free one is taken (state WANTED). Spinlock held. */
static int
es_slot_find(Oid db, bool create)
{
	int			free_slot = -1;

	for (int i = 0; i < es_launch->nslots; i++)
	{
		if (es_launch->slots[i].dboid == db)
			return i;
		if (free_slot < 0 && es_launch->slots[i].dboid == InvalidOid)
			free_slot = i;
	}
	if (create && free_slot >= 0)
	{
		EsPublisherSlot *s = &es_launch->slots[free_slot];

		memset(s, 0, sizeof(*s));
		s->dboid = db;
		s->state = ES_PUB_WANTED;
	}
	return create ? free_slot : -1;
}

/* The slot of the current database (cached), or NULL; may create it. */
EsPublisherSlot *
es_publisher_my_slot(bool create)
{
	if (es_launch == NULL)
		return NULL;
	if (my_slot < 0 || es_launch->slots[my_slot].dboid != MyDatabaseId)
	{
		SpinLockAcquire(&es_launch->mutex);
		my_slot = es_slot_find(MyDatabaseId, create);
		SpinLockRelease(&es_launch->mutex);
	}
	return my_slot < 0 ? NULL : &es_launch->slots[my_slot];
}

/* The slot a publisher for db uses (publisher.c, at start). */
EsPublisherSlot *
es_publisher_slot_of(Oid db)
{
	int			i;

	SpinLockAcquire(&es_launch->mutex);
	i = es_slot_find(db, true);
	SpinLockRelease(&es_launch->mutex);
	return i < 0 ? NULL : &es_launch->slots[i];
}

/* Sets a slot's state under the lock and wakes the launcher. */
void
es_publisher_slot_set(EsPublisherSlot *slot, int state)
{
	Latch	   *latch;

	SpinLockAcquire(&es_launch->mutex);
	slot->state = state;
	latch = es_launch->latch;
	SpinLockRelease(&es_launch->mutex);
	if (latch)
		SetLatch(latch);
}

/*
 * Whether a running publisher NOTIFYs this database's events; if none does
 * and one may, ask the launcher for one.  Needs no catalog access and raises
 * no error (it runs at commit too).
 */
bool
es_publisher_serves_this_database(void)
{
	EsPublisherSlot *slot;
	int			state;

	if (es_launch == NULL || es_guc_database == NULL || es_guc_database[0] == '\0')
		return false;
	slot = es_publisher_my_slot(es_guc_publisher);
	if (slot == NULL)
		return false;			/* none wanted here, or every slot taken: commit mode */
	state = *((volatile int *) &slot->state);
	if (state == ES_PUB_RUNNING)
		return true;
	if (es_guc_publisher && (state == ES_PUB_ABSENT || state == ES_PUB_DISABLED || state == ES_PUB_STOPPED))
		es_publisher_slot_set(slot, ES_PUB_WANTED);
	return false;
}

/* Whether publishers run at all (the preload, and elfsofa.database not empty). */
bool
es_publisher_available(void)
{
	return es_launch != NULL && es_guc_database != NULL && es_guc_database[0] != '\0';
}

/* The state of this database's publisher, for publisher_status() and health(). */
int
es_publisher_state(void)
{
	EsPublisherSlot *slot = es_publisher_my_slot(false);

	return slot == NULL ? ES_PUB_FREE : *((volatile int *) &slot->state);
}

/*
 * The utility statements that need a database to themselves: its publisher
 * is stopped and held off until the statement ends.  Returns the database's
 * OID (to release with es_publisher_utility_after), or InvalidOid.
 */
Oid
es_publisher_utility_before(PlannedStmt *pstmt)
{
	Node	   *stmt = pstmt->utilityStmt;
	const char *name = NULL;
	Oid			db;
	int			i;
	pid_t		pid = 0;

	if (es_launch == NULL || stmt == NULL)
		return InvalidOid;
	/*
	 * CREATE EXTENSION elfsofa: a publisher once it has committed; not in a
	 * restore (pg_dump's row_security = off, see 90_bootstrap_partitions.sql),
	 * whose publisher position comes from the dump: the first writer asks.
	 */
	if (IsA(stmt, CreateExtensionStmt) && strcmp(((CreateExtensionStmt *) stmt)->extname, "elfsofa") == 0)
	{
		es_publisher_wanted_at_commit = row_security;
		return InvalidOid;
	}
	if (IsA(stmt, DropdbStmt))
		name = ((DropdbStmt *) stmt)->dbname;
	else if (IsA(stmt, RenameStmt) && ((RenameStmt *) stmt)->renameType == OBJECT_DATABASE)
		name = ((RenameStmt *) stmt)->subname;
	else if (IsA(stmt, AlterDatabaseStmt))
		name = ((AlterDatabaseStmt *) stmt)->dbname;
	else if (IsA(stmt, CreatedbStmt))
	{
		ListCell   *lc;

		foreach(lc, ((CreatedbStmt *) stmt)->options)
		{
			DefElem    *d = lfirst_node(DefElem, lc);

			if (strcmp(d->defname, "template") == 0 && d->arg != NULL)
				name = defGetString(d);
		}
	}
	if (name == NULL || !OidIsValid(db = get_database_oid(name, true)))
		return InvalidOid;

	SpinLockAcquire(&es_launch->mutex);
	i = es_slot_find(db, false);
	if (i >= 0)
	{
		es_launch->slots[i].held = true;
		pid = es_launch->slots[i].pid;
	}
	SpinLockRelease(&es_launch->mutex);
	if (i < 0)
		return InvalidOid;
	/* stop it and wait (up to 10 s) until it has left the database */
	if (pid != 0)
	{
		kill(pid, SIGTERM);
		for (int n = 0; n < 1000 && *((volatile pid_t *) &es_launch->slots[i].pid) == pid; n++)
		{
			CHECK_FOR_INTERRUPTS();
			pg_usleep(10000L);
		}
	}
	return db;
}

/* After that statement (also when it failed): the launcher may start the publisher again. */
void
es_publisher_utility_after(Oid db)
{
	int			i;
	Latch	   *latch = NULL;

	if (es_launch == NULL || !OidIsValid(db))
		return;
	SpinLockAcquire(&es_launch->mutex);
	i = es_slot_find(db, false);
	if (i >= 0)
	{
		es_launch->slots[i].held = false;
		latch = es_launch->latch;
	}
	SpinLockRelease(&es_launch->mutex);
	if (latch)
		SetLatch(latch);
}

/* Registers the launcher (in _PG_init, with the preload only). */
void
es_launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "elfsofa");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "es_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "elfsofa publisher launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "elfsofa publisher launcher");
	RegisterBackgroundWorker(&worker);
}

static void
es_launcher_detach(int code, Datum arg)
{
	SpinLockAcquire(&es_launch->mutex);
	es_launch->latch = NULL;
	SpinLockRelease(&es_launch->mutex);
}

/*
 * Reads pg_database: with want, every database that allows connections (and
 * that elfsofa.database allows) gets a slot; slots of databases that are gone
 * are freed.
 */
static void
es_launcher_scan(bool want)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Oid		   *dbs = palloc(sizeof(Oid) * 1);
	int			ndbs = 0;
	int			cap = 1;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);

		if (ndbs == cap)
			dbs = repalloc(dbs, sizeof(Oid) * (cap *= 2));
		dbs[ndbs++] = d->oid;
		if (want && d->datallowconn && !d->datistemplate && es_database_allowed(NameStr(d->datname)))
		{
			bool		full;

			SpinLockAcquire(&es_launch->mutex);
			full = es_slot_find(d->oid, true) < 0;
			SpinLockRelease(&es_launch->mutex);
			/* (never ereport holding a spinlock) */
			if (full)
				ereport(LOG,
						(errmsg("elfsofa: no slot left for the event publisher of database \"%s\"",
								NameStr(d->datname)),
						 errdetail("Its events are NOTIFYed by each writer at commit."),
						 errhint("Raise max_worker_processes.")));
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();

	SpinLockAcquire(&es_launch->mutex);
	for (int i = 0; i < es_launch->nslots; i++)
	{
		EsPublisherSlot *s = &es_launch->slots[i];
		bool		exists = false;

		if (s->dboid == InvalidOid || s->pid != 0)
			continue;
		for (int j = 0; j < ndbs && !exists; j++)
			exists = dbs[j] == s->dboid;
		if (!exists)
			memset(s, 0, sizeof(*s));
	}
	SpinLockRelease(&es_launch->mutex);
	pfree(dbs);
}

/* A database for a log line: its name in quotes, or its OID when it is gone. */
static const char *
es_launcher_dbname(Oid db)
{
	static char name[NAMEDATALEN + 16];	/* (quotes, or "with OID " and digits) */
	char	   *found;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	found = get_database_name(db);
	if (found)
		snprintf(name, sizeof(name), "\"%s\"", found);
	else
		snprintf(name, sizeof(name), "with OID %u", db);
	CommitTransactionCommand();
	return name;
}

/* Starts the publisher of slot i; false when no worker slot is left. */
static bool
es_launcher_start(int i, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "elfsofa");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "es_publisher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "elfsofa event publisher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "elfsofa event publisher");
	worker.bgw_main_arg = ObjectIdGetDatum(es_launch->slots[i].dboid);
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/* The launcher: start what is wanted, restart what died, forget what is gone. */
void
es_launcher_main(Datum arg)
{
	BackgroundWorkerHandle **handles;
	TimestampTz last_scan;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("elfsofa publisher launcher");
	handles = palloc0(sizeof(BackgroundWorkerHandle *) * es_launch->nslots);

	SpinLockAcquire(&es_launch->mutex);
	es_launch->latch = MyLatch;
	/* after a crash restart of the launcher alone: what ran before is gone or will say so */
	for (int i = 0; i < es_launch->nslots; i++)
		if (es_launch->slots[i].dboid != InvalidOid && es_launch->slots[i].pid == 0 &&
			es_launch->slots[i].state != ES_PUB_ABSENT && es_launch->slots[i].state != ES_PUB_DISABLED)
			es_launch->slots[i].state = ES_PUB_WANTED;
	SpinLockRelease(&es_launch->mutex);
	on_shmem_exit(es_launcher_detach, (Datum) 0);
	es_launcher_scan(true);
	last_scan = GetCurrentTimestamp();

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (TimestampDifferenceExceeds(last_scan, GetCurrentTimestamp(), ES_LAUNCHER_RESCAN_MS))
		{
			es_launcher_scan(false);
			last_scan = GetCurrentTimestamp();
		}
		for (int i = 0; i < es_launch->nslots; i++)
		{
			EsPublisherSlot *s = &es_launch->slots[i];
			pid_t		pid;
			bool		start = false;
			bool		stopped = handles[i] != NULL &&
				GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED;

			SpinLockAcquire(&es_launch->mutex);
			if (stopped && s->state == ES_PUB_RUNNING)
				s->state = ES_PUB_WANTED;	/* it died: start another */
			if (stopped && s->state == ES_PUB_STARTING)
				s->state = ES_PUB_STOPPED;	/* it could not start (database gone?) */
			if (s->dboid != InvalidOid && !s->held &&
				(s->state == ES_PUB_WANTED || s->state == ES_PUB_NO_WORKER) &&
				(handles[i] == NULL || stopped))
			{
				start = true;
				s->state = ES_PUB_STARTING;
			}
			SpinLockRelease(&es_launch->mutex);
			if (stopped)
			{
				pfree(handles[i]);
				handles[i] = NULL;
			}
			if (start && !es_launcher_start(i, &handles[i]))
			{
				bool		first;

				SpinLockAcquire(&es_launch->mutex);
				first = !s->logged_no_worker;
				s->state = ES_PUB_NO_WORKER;
				s->logged_no_worker = true;
				SpinLockRelease(&es_launch->mutex);
				handles[i] = NULL;
				if (first)
					ereport(LOG,
							(errmsg("elfsofa: no background worker left for the event publisher of database %s",
									es_launcher_dbname(s->dboid)),
							 errdetail("Its events are NOTIFYed by each writer at commit until one is free."),
							 errhint("Raise max_worker_processes.")));
			}
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
