/*
 * hooks.c — the only file that installs PostgreSQL hooks, each once, each
 * calling the areas in a fixed order.
 *
 * ProcessUtility, around every utility statement:
 *   1. audit: refuse TRUNCATE of audit_log, list the table events the
 *      statement makes (a partition of an audited table truncated, attached,
 *      detached or dropped; an audit trigger altered or dropped; a new
 *      inheritance child of an audited table) (es_audit_utility_before);
 *   2. leaf writers: close the open partitions, except for BEGIN, SAVEPOINT,
 *      COMMIT and the like (es_leaf_close_for_utility); closing writes
 *      audit's deferred index entries, so the statement finds them complete;
 *   3. the previous hook, or standard_ProcessUtility, unless a restore asks
 *      for an index of an elfsofa partition that ATTACH already made
 *      (es_partitions_restore_skip); around it, a statement that needs a
 *      database to itself (DROP DATABASE, ...) first stops that database's
 *      event publisher and holds it off until the end
 *      (es_publisher_utility_before / _after);
 *   4. audit: write those events, audit the new child (es_audit_utility_after).
 * ExecutorStart: audit's deferred index entries are written before any query.
 * shmem_request / shmem_startup (with shared_preload_libraries only): the
 * publishers' slots, the event watermark, the rate limiter's buckets, then
 * the order-number lock.
 */
#include "postgres.h"

#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "tcop/utility.h"

#include "audit/audit.h"
#include "base/compat.h"
#include "base/leafwriter.h"
#include "events/events.h"
#include "partitions/partitions.h"
#include "hooks.h"
#include "orders/orders.h"
#include "security/security.h"

static ProcessUtility_hook_type prev_process_utility = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;
#if ES_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request = NULL;
#endif

/* Every utility statement: the steps of the file header, in that order. */
static void
es_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	List	   *audit_events = es_audit_utility_before(pstmt);
	Oid			held_db;

	es_leaf_close_for_utility(pstmt);
	if (es_partitions_restore_skip(pstmt))
		return;
	held_db = es_publisher_utility_before(pstmt);
	PG_TRY();
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		es_publisher_utility_after(held_db);
	}
	PG_END_TRY();
	es_audit_utility_after(audit_events);
}

/* Every query at any nesting level finds the audit indexes complete. */
static void
es_executor_start(QueryDesc *queryDesc, int eflags)
{
	es_audit_executor_start();
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* Shared memory of every area that keeps some. */
static void
es_shmem_request(void)
{
#if ES_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request)
		prev_shmem_request();
#endif
	es_launcher_shmem_request();
	es_watermark_shmem_request();
	es_ratelimit_shmem_request();
	es_orders_shmem_request();
}

static void
es_shmem_startup(void)
{
	if (prev_shmem_startup)
		prev_shmem_startup();
	es_launcher_shmem_startup();
	es_watermark_shmem_startup();
	es_ratelimit_shmem_startup();
	es_orders_shmem_startup();
}

/*
 * es_hooks_install installs the hooks; called once from _PG_init, after the
 * areas have defined their settings (the rate limiter's size is one).
 */
void
es_hooks_install(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = es_process_utility;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = es_executor_start;

	if (!process_shared_preload_libraries_in_progress)
		return;
#if ES_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = es_shmem_request;
#else
	/* PostgreSQL 14 takes the requests in _PG_init itself */
	es_shmem_request();
#endif
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = es_shmem_startup;
}
